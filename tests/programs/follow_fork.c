/* follow_fork.c: fork without exec, with known allocations in each process.
 * The parent allocates a block it keeps (a leak) and one it frees after the
 * forks. Each child frees its copy of that second block too (the same
 * address, another process), allocates three blocks, frees two and exits
 * with status 3: one leak of its own. No stdio: its buffers would add
 * allocations. Prints "child PID" per child, then "done".
 * usage: follow_fork [CHILDREN]   (default 2)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* kept where the compiler cannot see: a malloc whose result is never used
 * may be left out */
void *volatile sink[4];

static void say(const char *what, long n)
{
	char buf[64];
	int k = snprintf(buf, sizeof(buf), "%s %ld\n", what, n);
	if (write(1, buf, (size_t)k) < 0)
		_exit(2);
}

static void child(void *shared)
{
	void *a = malloc(200); /* LINE:child */
	void *b = malloc(200); /* LINE:child2 */
	void *c = malloc(200); /* LINE:child3 */
	sink[0] = a;
	sink[1] = b;
	sink[2] = c;
	free(shared); /* its own copy: the parent's block is still live in the parent */
	free(sink[0]);
	free(sink[1]);
	exit(3);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2;
	void *keep = malloc(100); /* LINE:keep */
	void *shared = malloc(1000); /* LINE:shared */
	sink[3] = keep;
	memset(shared, 2, 1000);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0)
			child(shared);
		say("child", pid);
	}
	for (int i = 0; i < n; i++) {
		int st;
		pid_t pid = wait(&st);
		if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 3)
			return 1;
	}
	free(shared);
	say("done", 0);
	return 0;
}
