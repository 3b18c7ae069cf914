/* threads.c: THREADS threads, each with a known pattern, joined by main.
 *
 * Thread t (0-based) makes PAIRS temporary blocks of PAIR_SIZE + t bytes
 * (malloc, then free at once), then leaks t + 1 blocks of LEAK_SIZE bytes.
 * From the workers: 4 000 temporaries; 10 leaked blocks, 640 bytes.
 * pthread_create itself allocates (the thread's TLS vector) and glibc frees
 * that at exit: compare totals with valgrind, the workers' part exactly.
 * No stdio until every thread has been joined.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define THREADS 4
#define PAIRS 1000
#define PAIR_SIZE 100
#define LEAK_SIZE 64

static void *leaked[THREADS][THREADS];

static inline void use(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static void *worker(void *arg)
{
	long t = (long)arg;
	for (int i = 0; i < PAIRS; i++) {
		char *p = malloc(PAIR_SIZE + (size_t)t); /* LINE:pair */
		p[0] = (char)i;
		use(p);
		free(p);
	}
	for (long i = 0; i <= t; i++) {
		leaked[t][i] = malloc(LEAK_SIZE); /* LINE:leak */
		use(leaked[t][i]);
	}
	return NULL;
}

int main(void)
{
	pthread_t th[THREADS];
	for (long t = 0; t < THREADS; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)t))
			return 1;
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);

	static const char msg[] = "threads: joined\n";
	if (write(1, msg, sizeof(msg) - 1) < 0)
		return 1;
	return 0;
}
