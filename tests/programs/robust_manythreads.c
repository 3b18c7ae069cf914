/* robust_manythreads.c: THREADS short-lived threads, at most BATCH alive at
 * once. Each makes PER blocks of 24 + (i % 8) bytes and frees them, then
 * exits. With "together", the threads of a batch wait for each other
 * before allocating and again before freeing, so BATCH threads hold their
 * blocks, and the profiler its per-thread buffers, at once. With "fork",
 * the main thread waits with them, then forks a child while they free
 * their blocks, and they wait for the child to end before they exit: the
 * child starts with every buffer taken and the shared one in use. The
 * child makes PER blocks and frees them. Prints
 * what it counted:
 *	robust_manythreads: threads T mallocs M frees F children C
 * usage: robust_manythreads [THREADS [BATCH [together [fork]]]]   (default 10000, 16)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PER 3

static atomic_long mallocs, frees;
static pthread_barrier_t together;
static int use_barrier, forking;

static void *worker(void *arg)
{
	long id = (long)arg;
	void *p[PER];
	if (use_barrier)
		pthread_barrier_wait(&together);
	for (int i = 0; i < PER; i++) {
		p[i] = malloc(24 + (size_t)((id + i) % 8)); /* LINE:alloc */
		if (!p[i])
			abort();
		*(volatile char *)p[i] = 1;
		atomic_fetch_add(&mallocs, 1);
	}
	if (use_barrier) /* every thread of the batch holds its blocks (and its ring) */
		pthread_barrier_wait(&together);
	for (int i = 0; i < PER; i++) {
		free(p[i]);
		atomic_fetch_add(&frees, 1);
	}
	if (forking) /* alive until the child is done */
		pthread_barrier_wait(&together);
	return NULL;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000;
	int batch = argc > 2 ? atoi(argv[2]) : 16;
	static pthread_t th[4096];
	if (batch < 1 || batch > 4096 || (argc > 3 && n % batch))
		return 2;
	use_barrier = argc > 3;
	forking = use_barrier && argc > 4 && !strcmp(argv[4], "fork");
	if (use_barrier)
		pthread_barrier_init(&together, NULL, (unsigned)batch + (forking ? 1 : 0));
	long started = 0, children = 0;
	while (started < n) {
		int k = 0;
		for (; k < batch && started < n; k++, started++)
			if (pthread_create(&th[k], NULL, worker, (void *)started))
				return 1;
		if (forking) {
			pthread_barrier_wait(&together); /* all started */
			pthread_barrier_wait(&together); /* all hold their blocks */
			pid_t pid = fork();
			if (pid == 0) {
				for (int i = 0; i < PER; i++) {
					void *p = malloc(100); /* LINE:child */
					*(volatile char *)p = 1;
					free(p);
				}
				_exit(0);
			}
			int st;
			if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
				return 3;
			children++;
			pthread_barrier_wait(&together);
		}
		for (int i = 0; i < k; i++)
			pthread_join(th[i], NULL);
	}
	printf("robust_manythreads: threads %ld mallocs %ld frees %ld children %ld\n", started,
	       atomic_load(&mallocs), atomic_load(&frees), children);
	return 0;
}
