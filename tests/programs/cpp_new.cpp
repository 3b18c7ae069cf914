// cpp_new.cpp: the C++ allocation operators, each with known sizes.
//
//   new Node            40 bytes, then delete (sized: operator delete(p, 40))
//   new int[25]        100 bytes, then delete[]
//   new Wide[3]        Wide has a destructor: 3 * 16 + an 8-byte count = 56
//   new Aligned         alignas(64): operator new(size, align_val_t), 128 bytes
//   new Node (leaked)   40 bytes, never deleted
//
// Totals from the program: 5 allocations, 4 frees, 364 bytes, 40 leaked in
// 1 block. libstdc++ allocates its exception pool at startup and frees it at
// exit: compare totals with valgrind, the operators' part exactly.
#include <cstddef>
#include <new>
#include <unistd.h>

struct Node {
	long value[5];
};

struct Wide {
	long a, b;
	~Wide() { a = 0; }
};

struct alignas(64) Aligned {
	char bytes[128];
};

static Node *leaked;

static inline void use(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

int main()
{
	Node *n = new Node(); // LINE:new
	use(n);
	delete n; // LINE:delete

	int *a = new int[25]; // LINE:new_array
	use(a);
	delete[] a;

	Wide *w = new Wide[3]; // LINE:new_cookie
	use(w);
	delete[] w;

	Aligned *al = new Aligned(); // LINE:new_aligned
	use(al);
	delete al;

	leaked = new Node(); // LINE:leak
	use(leaked);

	static const char msg[] = "cpp_new: done\n";
	if (write(1, msg, sizeof(msg) - 1) < 0)
		return 1;
	return 0;
}
