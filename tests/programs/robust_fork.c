/* robust_fork.c: fork from a multi-threaded program while other threads
 * allocate. WORKERS threads run malloc/free pairs until told to stop; the
 * main thread forks FORKS children meanwhile. Each child allocates and frees
 * a few blocks and exits; the parent waits for each with a deadline, so a
 * child that deadlocks (a lock held by a thread that does not exist in the
 * child) is counted, killed, and the program still ends. Prints:
 *	robust_fork: forks F ok K hung H workers W mallocs M
 * usage: robust_fork [FORKS]   (default 50)
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 3

static atomic_int stop;
static long counts[WORKERS];

static void *worker(void *arg)
{
	long id = (long)arg, n = 0;
	while (!atomic_load(&stop)) {
		void *p = malloc(48 + (size_t)id); /* LINE:worker */
		if (!p)
			abort();
		*(volatile char *)p = 1;
		free(p);
		n++;
	}
	counts[id] = n;
	return NULL;
}

static int child(void)
{
	for (int i = 0; i < 100; i++) {
		void *p = malloc(1000 + (size_t)i); /* LINE:child */
		if (!p)
			return 3;
		free(p);
	}
	return 0;
}

/* waitpid with a deadline: 1 when the child exited 0, 0 otherwise */
static int wait_ok(pid_t pid, int *hung)
{
	struct timespec ts = { 0, 1000000 };
	for (int ms = 0; ms < 10000; ms++) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) && WEXITSTATUS(st) == 0;
		if (r < 0)
			return 0;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	(*hung)++;
	return 0;
}

int main(int argc, char **argv)
{
	int forks = argc > 1 ? atoi(argv[1]) : 50, ok = 0, hung = 0;
	pthread_t th[WORKERS];
	for (long i = 0; i < WORKERS; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)i))
			return 1;
	struct timespec ts = { 0, 2000000 };
	for (int i = 0; i < forks; i++) {
		nanosleep(&ts, NULL);
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0)
			exit(child()); /* exit, not _exit: atexit handlers and destructors run */
		ok += wait_ok(pid, &hung);
	}
	atomic_store(&stop, 1);
	long mallocs = 0;
	for (int i = 0; i < WORKERS; i++) {
		pthread_join(th[i], NULL);
		mallocs += counts[i];
	}
	printf("robust_fork: forks %d ok %d hung %d workers %d mallocs %ld\n", forks, ok, hung, WORKERS, mallocs);
	return ok == forks ? 0 : 1;
}
