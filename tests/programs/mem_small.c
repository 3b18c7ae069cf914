/* mem_small.c: the allocator's overhead on the smallest blocks.
 *
 * 1000 calls of malloc(1) (LINE:alloc), all kept to the end: glibc on x86_64
 * gives each a 32-byte chunk with 24 usable bytes, so 23 bytes of rounding
 * and an 8-byte header apiece. No stdio, so nothing else is allocated.
 */
#include <stdlib.h>

#define N 1000

static void *keep[N];

int main(void)
{
	for (int i = 0; i < N; i++) {
		keep[i] = malloc(1); /* LINE:alloc */
		if (!keep[i])
			return 1;
	}
	__asm__ volatile("" : : "r"(keep) : "memory");
	return 0;
}
