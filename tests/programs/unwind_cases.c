/* unwind_cases.c: allocations from stack shapes the fast unwinder must walk
 * exactly as libunwind does, or hand back to it. One part per run:
 *	plain     deep recursion (past the 256-frame cut), a VLA and alloca
 *	          (frames whose CFA is RBP-based), a loop of plain calls
 *	realign N N allocations from a function that realigns its stack with
 *	          a DRAP register (its CFA rule is an expression: must fall back)
 *	signal N  N allocations from a SIGUSR1 handler (raise), through the
 *	          kernel's signal frame (must fall back)
 *	threads N 4 threads, N allocations each, through a few frames
 * Prints "unwind_cases: PART N allocations".
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef __clang__
#define NOCLONE __attribute__((noclone))
#else
#define NOCLONE
#endif
#define KEEP __attribute__((noinline)) NOCLONE

static void *volatile sink;
static int count;

KEEP static void alloc_here(size_t n)
{
	/* a local: threads and the signal handler share sink, and a free of
	 * it could free another's block twice */
	void *volatile p = malloc(n); /* LINE:alloc_here */
	free(p);
	count++;
}

KEEP static int recurse(int depth, size_t n)
{
	if (depth == 0) {
		alloc_here(n);
		return 0;
	}
	int r = recurse(depth - 1, n);
	sink = &r; /* not a tail call */
	return r + 1;
}

KEEP static void with_vla(int n)
{
	char vla[n];
	memset(vla, n, (size_t)n);
	__asm__ volatile("" : : "r"(vla) : "memory");
	alloc_here((size_t)n + (size_t)vla[0] % 2);
}

KEEP static void with_alloca(int n)
{
	char *a = __builtin_alloca((size_t)n);
	memset(a, n, (size_t)n);
	__asm__ volatile("" : : "r"(a) : "memory");
	alloc_here((size_t)n + (size_t)a[0] % 2);
}

/* An over-aligned local and a VLA: gcc realigns through a DRAP register. */
KEEP static void realigned(int n)
{
	char aligned[64] __attribute__((aligned(64)));
	char vla[n];
	memset(aligned, n, sizeof(aligned));
	memset(vla, n, (size_t)n);
	__asm__ volatile("" : : "r"(aligned), "r"(vla) : "memory");
	void *volatile p = malloc((size_t)n + (size_t)(aligned[1] + vla[0]) % 2); /* LINE:realigned */
	free(p);
	count++;
}

static void on_signal(int sig)
{
	(void)sig;
	void *volatile p = malloc(48); /* LINE:handler */
	free(p);
	count++;
}

static int per_thread;

static void *thread_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < per_thread; i++)
		recurse(i % 8, 24);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 0;
	const char *part = argc > 1 ? argv[1] : "";
	if (!strcmp(part, "plain")) {
		for (int d = 0; d < 300; d += 7)
			recurse(d, 32);
		for (int i = 1; i <= 50; i++) {
			with_vla(i);
			with_alloca(i);
			alloc_here((size_t)i);
		}
	} else if (!strcmp(part, "realign")) {
		for (int i = 1; i <= n; i++)
			realigned(i);
	} else if (!strcmp(part, "signal")) {
		signal(SIGUSR1, on_signal);
		for (int i = 0; i < n; i++)
			raise(SIGUSR1);
	} else if (!strcmp(part, "threads")) {
		pthread_t t[4];
		per_thread = n;
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, thread_main, NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		count = 4 * n;
	} else {
		fprintf(stderr, "usage: unwind_cases plain|realign N|signal N|threads N\n");
		return 2;
	}
	printf("unwind_cases: %s %d allocations\n", part, count);
	return 0;
}
