// unwind_exc.cpp: allocations on the way of C++ exceptions: the exception
// object itself (__cxa_allocate_exception), allocations in constructors of
// frames that throw, in destructors run while the exception unwinds them,
// and in the catch handler. Prints "unwind_exc: N caught".
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

struct Holder {
	std::vector<int> v;
	explicit Holder(int n) : v((size_t)n + 1, n) {}
	~Holder() { volatile void *p = std::malloc(8 + v.size()); std::free((void *)p); } // LINE:dtor
};

__attribute__((noinline)) static int thrower(int depth, int n)
{
	Holder h(n);
	if (depth == 0)
		throw std::runtime_error(std::string(40 + (size_t)n % 7, 'x')); // LINE:throw
	return thrower(depth - 1, n) + (int)h.v.size();
}

int main()
{
	int caught = 0;
	for (int i = 0; i < 200; i++) {
		try {
			thrower(i % 12, i);
		} catch (const std::exception &e) {
			std::string copy(e.what()); // LINE:catch
			caught += copy.size() > 0;
		}
	}
	std::printf("unwind_exc: %d caught\n", caught);
	return 0;
}
