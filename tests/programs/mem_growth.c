/* mem_growth.c: growth chains whose numbers the program works out itself.
 *
 * grow() makes a 16-byte buffer and doubles it with realloc up to 64 KiB:
 * 12 reallocs per chain, 3 chains from one call site (LINE:first). The second
 * chain leaves a small block after each step, so its buffer cannot grow in
 * place and moves every time; the others move when glibc decides. The program
 * counts the moves and the bytes they copied (the smaller of the old and new
 * size, only when the address changed) and the usable bytes beyond 64 KiB of
 * each last buffer (malloc_usable_size), then prints one line, without stdio:
 *   chains 3 reallocs 36 moves M copied C max 65536 final 196608 slack S
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHAINS 3
#define START 16
#define END 65536

static unsigned long moves, copied, slack;
static volatile int chains = CHAINS; /* not a constant: one call site, not an unrolled three */
static void *fences[CHAINS * 16];
static int nfences;

__attribute__((noinline)) static char *grow(int fence)
{
	char *p = malloc(START); /* LINE:first */
	if (!p)
		exit(1);
	memset(p, 1, START);
	for (size_t size = 2 * START; size <= END; size *= 2) {
		char *q = realloc(p, size); /* LINE:grow */
		if (!q)
			exit(1);
		if (q != p) {
			moves++;
			copied += size / 2; /* the old size: doubling, the smaller one */
		}
		p = q;
		memset(p, 2, size);
		if (fence)
			fences[nfences++] = malloc(1); /* LINE:fence */
	}
	slack += malloc_usable_size(p) - END;
	return p;
}

int main(void)
{
	char *keep[CHAINS];
	for (int i = 0; i < chains; i++)
		keep[i] = grow(i == 1); /* LINE:call */
	char line[160];
	int n = snprintf(line, sizeof(line), "chains %d reallocs %d moves %lu copied %lu max %d final %d slack %lu\n",
			 CHAINS, CHAINS * 12, moves, copied, END, CHAINS * END, slack);
	for (int i = 0; i < CHAINS; i++)
		free(keep[i]);
	for (int i = 0; i < nfences; i++)
		free(fences[i]);
	return write(1, line, (size_t)n) == n ? 0 : 1;
}
