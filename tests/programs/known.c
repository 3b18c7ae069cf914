/* known.c: a program whose every allocation is known in advance.
 *
 * 1. TEMPS temporary blocks of TEMP_SIZE: malloc, then free at once.
 * 2. BIG1 then BIG2 bytes live together (the peak: BIG1 + BIG2), BIG1 freed.
 * 3. N blocks of S bytes from the noinline f() through the always_inline g().
 * 4. BIG2 freed, then all but the last K of the N blocks: K are leaked.
 *
 * Totals: allocations 127, frees 117, allocated 3 155 528 bytes,
 * temporary 25, peak 3 145 728 bytes, leaked 480 bytes in 10 blocks.
 * No stdio: its buffers would add allocations; the output goes via write(2).
 * The integration tests find the lines by the LINE: markers, not by number.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 100
#define S 48
#define K 10
#define TEMPS 25
#define TEMP_SIZE 200
#define BIG1 (1u << 20)
#define BIG2 (2u << 20)

static void *keep[N];
static volatile unsigned long made;

/* Keeps the compiler from removing a malloc/free pair whose block is unused. */
static inline void use(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static inline __attribute__((always_inline)) void *g(void)
{
	void *p = malloc(S); /* LINE:alloc */
	made++; /* after the call: malloc is no tail call, f stays on the stack */
	return p;
}

static __attribute__((noinline)) void *f(void)
{
	void *p = g(); /* LINE:call_g */
	use(p);
	return p;
}

static __attribute__((noinline)) void temporaries(void)
{
	for (int i = 0; i < TEMPS; i++) {
		char *p = malloc(TEMP_SIZE); /* LINE:temp */
		p[0] = (char)i;
		use(p);
		free(p);
	}
}

int main(void)
{
	temporaries();

	char *big1 = malloc(BIG1); /* LINE:big1 */
	char *big2 = malloc(BIG2); /* LINE:big2 */
	if (!big1 || !big2)
		return 1;
	memset(big1, 1, BIG1);
	memset(big2, 2, BIG2);
	use(big1);
	use(big2);
	free(big1);

	for (int i = 0; i < N; i++)
		keep[i] = f(); /* LINE:call_f */

	free(big2);
	for (int i = 0; i < N - K; i++)
		free(keep[i]);

	char msg[64];
	int len = snprintf(msg, sizeof(msg), "known: %lu blocks made\n", made);
	if (write(1, msg, (size_t)len) != len)
		return 1;
	return 0;
}
