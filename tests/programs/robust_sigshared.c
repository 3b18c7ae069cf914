/* robust_sigshared.c: more threads alive at once than heapscope has
 * buffers, so that many of them write to its shared buffer under its lock,
 * while a kicker thread sends SIGUSR1 to each in turn, and each worker to
 * its neighbour; the handler makes
 * one malloc(40) and frees it, also when it interrupts a thread holding
 * that lock. THREADS threads each make at least ITER malloc(200)/free
 * pairs, and go on until the handler has run ENOUGH_HANDLER times (or for
 * ENOUGH_NS): a fast machine would otherwise finish before the signals
 * come. All stay alive until every one is done. Prints what it counted:
 *	robust_sigshared: threads T mallocs M handler H
 * usage: robust_sigshared [THREADS [ITER]]   (default 1100, 100)
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_long mallocs, handler_allocs;
static atomic_int stop, enough;
#define ENOUGH_HANDLER 100
#define ENOUGH_NS 30000000000LL
static pthread_barrier_t started, done;
static pthread_t th[4096];
static long nthreads, iter;

static void on_signal(int sig)
{
	(void)sig;
	void *p = malloc(40); /* LINE:handler */
	if (p) {
		*(volatile char *)p = 1;
		free(p);
		/* here, not in the kicker: with 1 100 threads busy it may wait
		 * long for a CPU, and the workers with it */
		if (atomic_fetch_add(&handler_allocs, 1) + 1 >= ENOUGH_HANDLER)
			atomic_store(&enough, 1);
	}
}

static void *worker(void *arg)
{
	/* created with SIGUSR1 held: both sizes come from this thread's cache
	 * from now on, so the handler never waits for a lock the code it
	 * interrupted holds (glibc's signal safety is not what is tested);
	 * the blocks are used, or the compiler drops each pair */
	for (size_t size = 40; size <= 200; size += 160) {
		void *p = malloc(size);
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	pthread_barrier_wait(&started);
	long next = ((long)(intptr_t)arg + 1) % nthreads;
	for (long i = 0; i < iter || !atomic_load(&enough); i++) {
		/* and each kicks its neighbour: the kicker alone, one thread
		 * among 1 100 busy ones, seldom gets a CPU */
		if (i % 64 == 63)
			pthread_kill(th[next], SIGUSR1);
		void *p = malloc(200); /* LINE:worker */
		if (!p)
			abort();
		*(volatile char *)p = 1;
		free(p);
		atomic_fetch_add(&mallocs, 1);
	}
	/* held again before exit: glibc frees the thread's cache under the
	 * arena lock there, where the handler's malloc would wait for it */
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	pthread_barrier_wait(&done); /* every thread alive until all are done */
	return NULL;
}

static void *kicker(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 20000 }, t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; !atomic_load(&stop); i++) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long ns = (now.tv_sec - t0.tv_sec) * 1000000000LL + (now.tv_nsec - t0.tv_nsec);
		if (ns >= ENOUGH_NS)
			atomic_store(&enough, 1);
		pthread_kill(th[i % nthreads], SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	nthreads = argc > 1 ? atol(argv[1]) : 1100;
	iter = argc > 2 ? atol(argv[2]) : 100;
	if (nthreads < 1 || nthreads > 4096)
		return 2;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	pthread_barrier_init(&started, NULL, (unsigned)nthreads + 1);
	pthread_barrier_init(&done, NULL, (unsigned)nthreads + 1);
	/* the workers take the signal once warmed up; the main thread and the
	 * kicker never */
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	for (long i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i))
			return 1;
	pthread_t k;
	if (pthread_create(&k, NULL, kicker, NULL))
		return 1;
	pthread_barrier_wait(&started);
	pthread_barrier_wait(&done);
	atomic_store(&stop, 1);
	pthread_join(k, NULL);
	for (long i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	printf("robust_sigshared: threads %ld mallocs %ld handler %ld\n", nthreads, atomic_load(&mallocs),
	       atomic_load(&handler_allocs));
	return 0;
}
