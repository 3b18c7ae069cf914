/* robust_signal.c: allocation inside signal handlers. SIGALRM (an interval
 * timer) and SIGUSR1 (sent by a second thread) interrupt the main thread
 * wherever it is, including inside malloc, free and heapscope's hooks; each
 * handler run makes one malloc(40) and frees it. The main loop makes
 * malloc(200)/free pairs. Both sizes come from glibc's per-thread cache
 * after the warm-up, so the handler never waits for a lock the interrupted
 * code holds: what is tested is the profiler, not glibc's signal safety.
 * Each handler may be interrupted by the other signal's; with "masked",
 * both signals are held while either handler runs, so handlers never nest.
 * "mapped" is "masked" with the handler making one mmap(4096)/munmap pair
 * instead of its malloc (counted as handler runs too).
 * "locked" is "masked" with malloc(5000)/free in the main loop instead: too
 * big for the per-thread cache, so the main thread is mostly inside glibc
 * holding its arena lock when a handler allocates (from the cache).
 * Prints what it counted:
 *	robust_signal: main M handler H
 * usage: robust_signal [ITERATIONS [masked|locked|mapped]]   (default 3000000)
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>

/* one instruction (lock xadd): a handler interrupting another cannot lose a count */
static atomic_long handler_allocs;
static atomic_int stop;
static pthread_t main_thread;

static int mapped;

static void on_signal(int sig)
{
	(void)sig;
	if (mapped) {
		void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* LINE:mapped */
		if (m != MAP_FAILED) {
			munmap(m, 4096);
			atomic_fetch_add(&handler_allocs, 1);
		}
		return;
	}
	void *p = malloc(40); /* LINE:handler */
	if (p) {
		*(volatile char *)p = 1;
		free(p);
		atomic_fetch_add(&handler_allocs, 1);
	}
}

static void *kicker(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 30000 };
	while (!atomic_load(&stop)) {
		pthread_kill(main_thread, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 3000000;
	sigset_t all, old;
	sigemptyset(&all);
	sigaddset(&all, SIGALRM);
	sigaddset(&all, SIGUSR1);
	/* warm both size classes of the cache with the signals held (the
	 * blocks are used, or the compiler drops each pair) */
	sigprocmask(SIG_BLOCK, &all, &old);
	for (size_t size = 40; size <= 200; size += 160) {
		void *p = malloc(size);
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	int locked = argc > 2 && !strcmp(argv[2], "locked");
	mapped = argc > 2 && !strcmp(argv[2], "mapped");
	if (locked || mapped || (argc > 2 && !strcmp(argv[2], "masked")))
		sa.sa_mask = all;
	size_t size = locked ? 5000 : 200;
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	main_thread = pthread_self();
	pthread_t k;
	/* the kicker must not take the signals itself */
	if (pthread_create(&k, NULL, kicker, NULL))
		return 1;
	struct itimerval it = { { 0, 100 }, { 0, 100 } };
	setitimer(ITIMER_REAL, &it, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);

	long main_allocs = 0;
	for (long i = 0; i < n; i++) {
		void *p = malloc(size); /* LINE:main */
		if (!p)
			abort();
		*(volatile char *)p = 1;
		free(p);
		main_allocs++;
	}

	sigprocmask(SIG_BLOCK, &all, NULL);
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	atomic_store(&stop, 1);
	pthread_join(k, NULL);
	printf("robust_signal: main %ld handler %ld\n", main_allocs, atomic_load(&handler_allocs));
	return 0;
}
