/* follow_exec.c: the ways a program starts other programs, each with known
 * allocations. The started program is this one again in mode "leaf" (or
 * another given after the mode): it allocates four blocks of 300 bytes,
 * frees two, and exits with status 5. The starter allocates 64 bytes it
 * keeps. No stdio before the end: its buffers would add allocations.
 * Prints "child PID" for each child it starts, "status N" for its status.
 *
 * usage: follow_exec MODE [PROGRAM]
 *	leaf        the started program itself
 *	fork-exec   fork, then execv in the child
 *	spawn       posix_spawn, then waitpid
 *	vfork       vfork, then execv in the child
 *	system      system("PROGRAM leaf")
 *	self        exec itself (no fork): the first image keeps 3 x 50 bytes
 *	clearenv    clearenv(), then fork-exec
 *	emptyenv    fork, then execve with an empty environment
 *	daemon      fork a child that detaches and sleeps 30 s, exit at once
 *	env         print whether heapscope's variables are in the environment
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* where the compiler cannot see: a malloc never used may be left out */
void *volatile sink[8];

static const char *self;
static const char *prog;

static void say(const char *what, long n)
{
	char buf[64];
	int k = snprintf(buf, sizeof(buf), "%s %ld\n", what, n);
	if (write(1, buf, (size_t)k) < 0)
		_exit(2);
}

static int leaf(void)
{
	for (int i = 0; i < 4; i++)
		sink[i] = malloc(300); /* LINE:leaf */
	free(sink[0]);
	free(sink[2]);
	return 5;
}

static int waited(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	say("status", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}

static int fork_exec(char *const env[])
{
	char *args[] = { (char *)prog, "leaf", NULL };
	pid_t pid = fork();
	if (pid == 0) {
		if (env)
			execve(prog, args, env);
		else
			execv(prog, args);
		_exit(127);
	}
	say("child", pid);
	return waited(pid);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "leaf";
	self = argv[0];
	prog = argc > 2 ? argv[2] : self;
	char *args[] = { (char *)prog, "leaf", NULL };
	if (!strcmp(mode, "leaf"))
		return leaf();
	if (!strcmp(mode, "env")) {
		say(getenv("HEAPSCOPE_SHM") ? "HEAPSCOPE_SHM set" : "HEAPSCOPE_SHM unset", 0);
		say(getenv("LD_PRELOAD") ? "LD_PRELOAD set" : "LD_PRELOAD unset", 0);
		return 0;
	}
	sink[4] = malloc(64); /* LINE:keep */
	if (!strcmp(mode, "fork-exec"))
		return fork_exec(NULL) ? 1 : 0;
	if (!strcmp(mode, "clearenv")) {
		clearenv();
		return fork_exec(NULL) ? 1 : 0;
	}
	if (!strcmp(mode, "emptyenv")) {
		char *none[] = { NULL };
		return fork_exec(none) ? 1 : 0;
	}
	if (!strcmp(mode, "spawn")) {
		pid_t pid;
		if (posix_spawn(&pid, prog, NULL, NULL, args, environ))
			return 1;
		say("child", pid);
		return waited(pid) ? 1 : 0;
	}
	if (!strcmp(mode, "vfork")) {
		pid_t pid = vfork();
		if (pid == 0) {
			execv(prog, args);
			_exit(127);
		}
		say("child", pid);
		return waited(pid) ? 1 : 0;
	}
	if (!strcmp(mode, "system")) {
		char cmd[4096];
		snprintf(cmd, sizeof(cmd), "'%s' leaf", prog);
		int st = system(cmd);
		say("status", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return 0;
	}
	if (!strcmp(mode, "self")) {
		for (int i = 0; i < 3; i++)
			sink[5 + i] = malloc(50); /* LINE:before_exec */
		execv(prog, args);
		return 127;
	}
	if (!strcmp(mode, "daemon")) {
		pid_t pid = fork();
		if (pid == 0) {
			setsid();
			int fd = open("/dev/null", 2);
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			sink[0] = malloc(777); /* LINE:daemon */
			sleep(30);
			_exit(0);
		}
		say("child", pid);
		return 0;
	}
	return 2;
}
