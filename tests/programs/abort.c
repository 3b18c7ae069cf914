/* abort.c: allocates known blocks, writes a line, and dies of SIGABRT.
 *
 * ALLOCS blocks of SIZE bytes, none freed: a recorder must keep what the
 * target did before it died. No stdio, so libc adds no allocation.
 */
#include <stdlib.h>
#include <unistd.h>

#define ALLOCS 5
#define SIZE 1000

static void *keep[ALLOCS];

int main(void)
{
	for (int i = 0; i < ALLOCS; i++) {
		keep[i] = malloc(SIZE); /* LINE:alloc */
		__asm__ volatile("" : : "r"(keep[i]) : "memory");
	}
	static const char out[] = "abort: about to abort\n";
	static const char err[] = "abort: stderr before abort\n";
	if (write(1, out, sizeof(out) - 1) < 0 || write(2, err, sizeof(err) - 1) < 0)
		return 1;
	abort();
}
