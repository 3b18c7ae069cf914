/*
 * unwind_loop.c: the cost of one stack capture in isolation, by depth: the
 * preload library's walk (src/preload/unwind.c, compiled in here with the
 * few library symbols it needs stubbed) against libunwind's unw_backtrace,
 * both called from the same frame at the bottom of a recursion, in
 * alternating batches; the walk also with its per-thread memo of the last
 * stack emptied before each call (every frame from the shared table).
 * Checks that both give the same frames.
 *
 *   cc -O2 -g -Isrc -Isrc/common -o unwind_loop bench/tools/unwind_loop.c -lunwind
 *   unwind_loop [ITERATIONS]   prints: depth N: walk X ns (no memo: Z ns), unw_backtrace Y ns
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "preload/eh_frame.c"
#include "preload/unwind.c"

/* what unwind.c takes from the rest of the library */
__thread struct pl_thread pl_self __attribute__((tls_model("initial-exec")));
struct hs_shm_header *pl_shm;
static _Atomic unsigned busy_flag;
_Atomic unsigned *pl_unwind_busy_enter(struct hs_ring *r)
{
	(void)r;
	return &busy_flag;
}
void pl_unwind_busy_leave(_Atomic unsigned *flag)
{
	(void)flag;
}

#define MAXF 272
static long iterations = 200000;
static double ns_walk, ns_cold, ns_unw;
static int same = 1;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Both unwinders from this one frame, as pl_stack_capture calls them. */
__attribute__((noinline)) static void measure(void)
{
	void *a[MAXF], *b[MAXF];
	int na = 0, nb = 0;
	double best_w = 1e30, best_c = 1e30, best_u = 1e30;
	for (int batch = 0; batch < 10; batch++) {
		double t0 = now();
		for (long i = 0; i < iterations / 10; i++)
			na = pl_unwind_walk(&pl_self, a, MAXF);
		double t1 = now();
		for (long i = 0; i < iterations / 10; i++) {
			memo.gen = 0;
			na = pl_unwind_walk(&pl_self, a, MAXF);
		}
		double t2 = now();
		for (long i = 0; i < iterations / 10; i++)
			nb = unw_backtrace(b, MAXF);
		double t3 = now();
		if (t1 - t0 < best_w)
			best_w = t1 - t0;
		if (t2 - t1 < best_c)
			best_c = t2 - t1;
		if (t3 - t2 < best_u)
			best_u = t3 - t2;
	}
	ns_walk = best_w / (double)(iterations / 10);
	ns_cold = best_c / (double)(iterations / 10);
	ns_unw = best_u / (double)(iterations / 10);
	/* the first frame is each call's own return address in this function */
	same = na == nb && na > 1 && !memcmp(a + 1, b + 1, (size_t)(na - 1) * sizeof(void *));
}

__attribute__((noinline)) static int descend(int depth)
{
	if (depth <= 0) {
		measure();
		return 0;
	}
	int r = descend(depth - 1);
	__asm__ volatile("" : : "r"(&r) : "memory"); /* not a tail call */
	return r + 1;
}

int main(int argc, char **argv)
{
	static const int depths[] = { 8, 23, 43 };
	if (argc > 1)
		iterations = atol(argv[1]);
	if (iterations < 10) {
		fprintf(stderr, "unwind_loop: ITERATIONS must be at least 10\n");
		return 2;
	}
	for (unsigned i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		/* frames below main: measure, the recursion, main, libc's two, _start */
		descend(depths[i] - 5);
		printf("depth %d: walk %.1f ns (no memo: %.1f ns), unw_backtrace %.1f ns%s\n", depths[i], ns_walk, ns_cold, ns_unw,
		       same ? "" : " (stacks differ!)");
	}
	return 0;
}
