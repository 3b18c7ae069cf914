/*
 * benchrun.c: runs one command for the benchmark and prints what it cost.
 *
 * usage: benchrun [-m MAX_MB] [-T TIMEOUT_S] [-C DIR] [-i IN] [-o OUT] [-e ERR] -- CMD [ARG...]
 *   -m  cap the command's address space (RLIMIT_AS, as `ulimit -v` does),
 *       so a profiler that grows without bound fails instead of taking the
 *       machine's memory
 *   -T  kill the command (its whole process group) after this many seconds
 *   -C  run in DIR
 *   -i, -o, -e  standard input, output, error of the command (default
 *       /dev/null, /dev/null, inherited)
 *   -p LIB -s FILE  preload LIB (procstat.so) into the command and every
 *       process it starts, each appending its own figures to FILE at exit
 *
 * Prints one line to standard output:
 *   wall_ns=N status=N user_us=N sys_us=N maxrss_kb=N timed_out=0|1
 * status is the exit code, or 128 + N for a signal N; user/sys and maxrss
 * cover the command and all its descendants (maxrss is the largest single
 * process's peak, as getrusage reports it). benchrun's own exit status is 0
 * when it could run the command at all.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t timed_out;
static pid_t child;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
	if (child > 0)
		kill(-child, SIGKILL);
}

static int redirect(const char *path, int fd, int flags)
{
	if (!path)
		return 0;
	int f = open(path, flags, 0644);
	if (f < 0)
		return -1;
	if (f != fd) {
		dup2(f, fd);
		close(f);
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long max_mb = 0, timeout = 0;
	const char *dir = NULL, *in = "/dev/null", *out = "/dev/null", *err = NULL, *lib = NULL, *stats = NULL;
	int c;
	while ((c = getopt(argc, argv, "+m:T:C:i:o:e:p:s:")) != -1) {
		switch (c) {
		case 'm': max_mb = strtoul(optarg, NULL, 10); break;
		case 'T': timeout = strtoul(optarg, NULL, 10); break;
		case 'C': dir = optarg; break;
		case 'i': in = optarg; break;
		case 'o': out = optarg; break;
		case 'e': err = optarg; break;
		case 'p': lib = optarg; break;
		case 's': stats = optarg; break;
		default:
			fprintf(stderr, "usage: benchrun [-m MAX_MB] [-T TIMEOUT_S] [-C DIR] [-i IN] [-o OUT] [-e ERR] [-p LIB -s FILE] -- CMD [ARG...]\n");
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "benchrun: no command\n");
		return 2;
	}
	uint64_t t0 = mono_ns();
	child = fork();
	if (child < 0) {
		perror("benchrun: fork");
		return 1;
	}
	if (child == 0) {
		setpgid(0, 0);
		if (max_mb) {
			struct rlimit rl = { (rlim_t)max_mb << 20, (rlim_t)max_mb << 20 };
			setrlimit(RLIMIT_AS, &rl);
		}
		/* the files are named from where benchrun was started */
		if (redirect(in, 0, O_RDONLY) < 0 || redirect(out, 1, O_WRONLY | O_CREAT | O_TRUNC) < 0 ||
		    redirect(err, 2, O_WRONLY | O_CREAT | O_TRUNC) < 0 || (dir && chdir(dir) < 0)) {
			perror("benchrun: setup");
			_exit(126);
		}
		if (lib && stats) {
			const char *old = getenv("LD_PRELOAD");
			char *v = malloc(strlen(lib) + (old ? strlen(old) : 0) + 2);
			if (!v)
				_exit(126);
			sprintf(v, old && *old ? "%s:%s" : "%s", lib, old);
			setenv("LD_PRELOAD", v, 1);
			setenv("HSBENCH_PROCSTAT", stats, 1);
		}
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "benchrun: cannot run %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	setpgid(child, child);
	if (timeout) {
		struct sigaction sa = { .sa_handler = on_alarm };
		sigaction(SIGALRM, &sa, NULL);
		alarm((unsigned)timeout);
	}
	int st = 0;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	uint64_t wall = mono_ns() - t0;
	alarm(0);
	/* what the command left behind in its group (a profiler's helpers) */
	kill(-child, SIGKILL);
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	int status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
	printf("wall_ns=%llu status=%d user_us=%llu sys_us=%llu maxrss_kb=%ld timed_out=%d\n",
	       (unsigned long long)wall, status,
	       (unsigned long long)ru.ru_utime.tv_sec * 1000000ull + (unsigned long long)ru.ru_utime.tv_usec,
	       (unsigned long long)ru.ru_stime.tv_sec * 1000000ull + (unsigned long long)ru.ru_stime.tv_usec,
	       ru.ru_maxrss, (int)timed_out);
	return 0;
}
