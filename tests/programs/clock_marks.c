/* clock_marks.c: allocations at moments the program knows on the wall
 * clock, to check that the trace's times are that clock. A thread of the
 * program, then a fork child, each: waits 30 ms, then reads CLOCK_REALTIME
 * (R1), allocates one big block (64 MiB in the thread, 32 MiB in the child),
 * reads the clock (R2), touches every page, reads it (R3), holds the block
 * 80 ms, reads it (R4), frees the block and reads it (R5). Each prints
 * "marks PID R1 R2 R3 R4 R5" (ns since 1970), once done, with write(2).
 * usage: clock_marks
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void pause_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

static void *hold(void *arg)
{
	size_t size = (size_t)arg;
	long long r[5];
	pause_ms(30);
	r[0] = now();
	char *p = malloc(size);
	r[1] = now();
	if (!p)
		exit(2);
	for (size_t i = 0; i < size; i += 4096)
		((volatile char *)p)[i] = 1; /* a memset before free could be left out */
	r[2] = now();
	pause_ms(80);
	r[3] = now();
	free(p);
	r[4] = now();
	char buf[160];
	int k = snprintf(buf, sizeof(buf), "marks %d %lld %lld %lld %lld %lld\n", (int)getpid(), r[0], r[1], r[2],
			 r[3], r[4]);
	if (write(1, buf, (size_t)k) != k)
		exit(2);
	return NULL;
}

int main(void)
{
	pthread_t th;
	if (pthread_create(&th, NULL, hold, (void *)(64ul << 20)) || pthread_join(th, NULL))
		return 2;
	pid_t pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		hold((void *)(32ul << 20));
		_exit(0);
	}
	int st;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 2;
}
