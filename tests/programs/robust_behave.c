/* robust_behave.c: what a program can see of its own process, to compare
 * with and without heapscope, and ways to end.
 *	state    prints its environment, open fds, signal dispositions and mask
 *	         (/proc/self/status), core limit and dumpable flag
 *	echo     copies stdin to stdout through malloc'd buffers, then prints
 *	         "robust_behave: echoed N bytes in M reads"
 *	flood    writes lines to stdout until a write fails (SIGPIPE ends it)
 *	segv     allocates, then dies of SIGSEGV
 *	term     allocates, then raise(SIGTERM)
 *	exit N   allocates, then exit(N)
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

extern char **environ;

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void state(void)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = malloc(n * sizeof(*env));
	memcpy(env, environ, n * sizeof(*env));
	qsort(env, n, sizeof(*env), cmp);
	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], "_=", 2)) /* the shell's last command: differs by design */
			printf("env %s\n", env[i]);
	free(env);
	DIR *d = opendir("/proc/self/fd");
	int dfd = d ? dirfd(d) : -1;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == dfd)
			continue;
		char link[256] = "", path[300];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(path, link, sizeof(link) - 1);
		link[k > 0 ? k : 0] = 0;
		/* pipes and ttys are the caller's business; the fd numbers are ours */
		printf("fd %s%s\n", e->d_name, strncmp(link, "/memfd:", 7) ? "" : " memfd");
	}
	if (d)
		closedir(d);
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Sig", 3) || !strncmp(line, "Shd", 3))
			fputs(line, stdout);
	if (f)
		fclose(f);
	struct rlimit rl;
	getrlimit(RLIMIT_CORE, &rl);
	printf("core %llu %llu dumpable %d\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
	       prctl(PR_GET_DUMPABLE));
}

static void echo(void)
{
	size_t total = 0, reads = 0;
	for (;;) {
		char *buf = malloc(4096); /* LINE:echo */
		ssize_t n = read(0, buf, 4096);
		if (n <= 0) {
			free(buf);
			break;
		}
		if (write(1, buf, (size_t)n) != n)
			exit(1);
		free(buf);
		total += (size_t)n;
		reads++;
	}
	fprintf(stderr, "robust_behave: echoed %zu bytes in %zu reads\n", total, reads);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "state";
	for (int i = 0; i < 10; i++) {
		void *p = malloc(100); /* LINE:before */
		*(volatile char *)p = 1;
	}
	if (!strcmp(mode, "state")) {
		state();
	} else if (!strcmp(mode, "echo")) {
		echo();
	} else if (!strcmp(mode, "flood")) {
		static const char line[] = "robust_behave: flood\n";
		for (;;) {
			char *p = malloc(sizeof(line)); /* LINE:flood */
			memcpy(p, line, sizeof(line));
			ssize_t n = write(1, p, sizeof(line) - 1);
			free(p);
			if (n < 0)
				return 4; /* SIGPIPE ignored: the write failed instead */
		}
	} else if (!strcmp(mode, "segv")) {
		fflush(stdout);
		*(volatile int *)(argc - 2 + (char *)0) = 1; /* argc is 2: a null write */
	} else if (!strcmp(mode, "term")) {
		raise(SIGTERM);
	} else if (!strcmp(mode, "exit")) {
		exit(argc > 2 ? atoi(argv[2]) : 0);
	}
	return 0;
}
