/* pvalloc.c: pvalloc, apart from family.c because valgrind 3.19 aborts on it.
 *
 * pvalloc's contract is to allocate whole pages: pvalloc(n) asks for n
 * rounded up to the page size, and heapscope counts that. With 4 KiB pages:
 * 2 allocations, 2 frees, 16 384 bytes (8 192 + 8 192), peak 16 384 bytes,
 * nothing leaked.
 */
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

static inline void use(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

int main(void)
{
	void *a = pvalloc(5000); /* LINE:pvalloc_5000 */
	void *b = pvalloc(8192); /* LINE:pvalloc_8192 */
	if (!a || !b)
		return 1;
	use(a);
	use(b);
	free(a);
	free(b);
	static const char msg[] = "pvalloc: done\n";
	if (write(1, msg, sizeof(msg) - 1) < 0)
		return 1;
	return 0;
}
