/* grow.c: one program, two builds. The base build (cc grow.c) and the new
 * one (cc -DNEW grow.c) allocate from the same functions, and the new one
 * allocates exactly this much more, which `heapscope diff` must show:
 *
 *   function     base                          new
 *   leak_some    10 x 64 B, never freed        15 x 64 B, never freed
 *   buffers      4 x 512 B, live at the peak   2 x 512 B, live at the peak
 *   table        1 x 4096 B, live at the peak  the same
 *   cache        -                             1 x 8192 B, live at the peak
 *   churn        50 x 100 B temporaries        70 x 100 B temporaries
 *
 * The peak is the first churn block: leaks + buffers + table (+ cache) + 100.
 * Totals, base / new: allocations 65 / 89, frees 55 / 74, allocated
 * 11,784 / 21,272 B, temporary 50 / 70, peak 6,884 / 14,372 B, leaked
 * 640 / 960 B in 10 / 15 blocks.
 * test_diff.py builds the new one from a copy with lines added at the top:
 * every address and line number moves, and the diff still matches stacks
 * by function and file. No stdio: its buffers would add allocations.
 */
#include <stdlib.h>
#include <unistd.h>

#ifdef NEW
#define LEAKS 15
#define BUFFERS 2
#define TEMPS 70

static __attribute__((noinline)) void *cache(void)
{
	void *p = malloc(8192);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}
#else
#define LEAKS 10
#define BUFFERS 4
#define TEMPS 50
#endif

static void *leaked[LEAKS];
static void *bufs[BUFFERS];

static inline void use(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static __attribute__((noinline)) void leak_some(void)
{
	for (int i = 0; i < LEAKS; i++) {
		leaked[i] = malloc(64);
		use(leaked[i]);
	}
}

static __attribute__((noinline)) void buffers(void)
{
	for (int i = 0; i < BUFFERS; i++) {
		bufs[i] = malloc(512);
		use(bufs[i]);
	}
}

static __attribute__((noinline)) void *table(void)
{
	void *p = malloc(4096);
	use(p);
	return p;
}

static __attribute__((noinline)) void churn(void)
{
	for (int i = 0; i < TEMPS; i++) {
		char *p = malloc(100);
		p[0] = (char)i;
		use(p);
		free(p);
	}
}

int main(void)
{
	leak_some();
	buffers();
	void *t = table();
#ifdef NEW
	void *c = cache();
#endif
	churn();
#ifdef NEW
	free(c);
#endif
	free(t);
	for (int i = 0; i < BUFFERS; i++)
		free(bufs[i]);
	if (write(1, "grow: done\n", 11) != 11)
		return 1;
	return 0;
}
