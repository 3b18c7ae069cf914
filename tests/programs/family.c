/* family.c: one call of each allocation function, with known sizes.
 *
 * Every block is freed, so nothing leaks; the numbers each call must add are
 * next to it. realloc is counted as valgrind counts it: a successful
 * realloc(p, n > 0) frees the old block and allocates n bytes, whether it
 * grows in place or moves. Calls that fail return no memory and count
 * nothing. Totals: 11 allocations, 11 frees, 11 504 bytes.
 * pvalloc has its own program (pvalloc.c): valgrind aborts on it.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void use(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* A size no allocator can satisfy; volatile so the compiler cannot see it. */
static volatile size_t huge = SIZE_MAX - 4095;

static void fail(const char *what)
{
	if (write(2, what, strlen(what)) < 0)
		_exit(2);
	_exit(1);
}

int main(void)
{
	char *p;
	void *q;

	p = calloc(10, 12); /* LINE:calloc           +1 alloc, 120 bytes */
	if (!p)
		fail("calloc\n");
	use(p);
	free(p); /*                                 +1 free */

	p = realloc(NULL, 40); /* LINE:realloc_null  +1 alloc, 40 bytes */
	if (!p)
		fail("realloc(NULL)\n");
	use(p);
	p = realloc(p, 0); /* LINE:realloc_zero      +1 free: glibc frees, returns NULL */
	use(p);

	/* Grow in place: a block at the top of the heap can be extended. */
	p = malloc(1000); /* LINE:grow_base          +1 alloc, 1000 bytes */
	if (!p)
		fail("malloc\n");
	memset(p, 'a', 1000);
	p = realloc(p, 2000); /* LINE:grow_inplace   +1 alloc 2000 bytes, +1 free */
	if (!p)
		fail("realloc grow\n");
	use(p);

	/* Move: a neighbour pins the block, so realloc must copy it elsewhere. */
	char *pin = malloc(16); /* LINE:pin          +1 alloc, 16 bytes */
	if (!pin)
		fail("malloc pin\n");
	use(pin);
	char *moved = realloc(p, 4000); /* LINE:realloc_move  +1 alloc 4000 bytes, +1 free */
	if (!moved)
		fail("realloc move\n");
	use(moved);

	/* Failing realloc: NULL, the old block untouched and still ours. */
	p = realloc(moved, huge); /* LINE:realloc_fail  nothing */
	if (p)
		fail("realloc huge succeeded\n");
	use(moved);

	/* reallocarray: realloc of nmemb * size, with the overflow check. */
	p = reallocarray(moved, 100, 30); /* LINE:reallocarray  +1 alloc 3000 bytes, +1 free */
	if (!p)
		fail("reallocarray\n");
	use(p);
	free(p); /*                                 +1 free */
	free(pin); /*                               +1 free */

	if (posix_memalign(&q, 64, 100)) /* LINE:posix_memalign  +1 alloc, 100 bytes */
		fail("posix_memalign\n");
	use(q);
	free(q);

	q = aligned_alloc(64, 128); /* LINE:aligned_alloc   +1 alloc, 128 bytes */
	if (!q)
		fail("aligned_alloc\n");
	use(q);
	free(q);

	q = memalign(32, 100); /* LINE:memalign      +1 alloc, 100 bytes */
	if (!q)
		fail("memalign\n");
	use(q);
	free(q);

	q = valloc(1000); /* LINE:valloc              +1 alloc, 1000 bytes */
	if (!q)
		fail("valloc\n");
	use(q);
	free(q);

	q = malloc(huge); /* LINE:malloc_fail         nothing */
	if (q)
		fail("malloc huge succeeded\n");

	static const char msg[] = "family: done\n";
	if (write(1, msg, sizeof(msg) - 1) < 0)
		return 1;
	return 0;
}
