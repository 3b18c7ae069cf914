/*
 * record_spawn.c: everything about the program before and around its run:
 * checks that LD_PRELOAD can work on it, the shared memory, the child's
 * environment, fork/exec, signal forwarding and waiting.
 */
#include "record/record.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

void rec_error(const char *fmt, ...)
{
	va_list ap;
	fputs("heapscope: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- program checks -------------------------------------------------- */

static char *join(const char *dir, size_t dlen, const char *name)
{
	size_t n = strlen(name);
	char *p = malloc(dlen + n + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, dlen);
	p[dlen] = '/';
	memcpy(p + dlen + 1, name, n + 1);
	return p;
}

/* The ELF header of our own binary: the program must match its class and
 * machine, or the loader rejects our library ("wrong ELF class") and the
 * program runs unrecorded. */
static int own_elf(unsigned char *cls, uint16_t *machine)
{
	ElfW(Ehdr) e;
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = pread(fd, &e, sizeof(e), 0);
	close(fd);
	if (n != (ssize_t)sizeof(e))
		return -EIO;
	*cls = e.e_ident[EI_CLASS];
	*machine = e.e_machine;
	return 0;
}

/* Reads the program's ELF header and program headers to tell a
 * dynamically linked program (PT_INTERP) from a static one, which
 * LD_PRELOAD cannot enter. */
static int check_elf(const char *path, int fd)
{
	unsigned char ident[EI_NIDENT];
	ssize_t n = pread(fd, ident, sizeof(ident), 0);
	if (n >= 2 && ident[0] == '#' && ident[1] == '!')
		return 0; /* a script: its interpreter is what gets the library */
	if (n < (ssize_t)sizeof(ident) || memcmp(ident, ELFMAG, SELFMAG) != 0) {
		rec_error("%s is neither an ELF program nor a '#!' script; give a program to run", path);
		return -ENOEXEC;
	}
	unsigned char cls = 0;
	uint16_t machine = 0;
	ElfW(Ehdr) e;
	if (own_elf(&cls, &machine) == 0 && ident[EI_CLASS] != cls) {
		rec_error("%s is a %s-bit program and this heapscope records %s-bit ones; use a heapscope built for it",
			  path, ident[EI_CLASS] == ELFCLASS32 ? "32" : "64", cls == ELFCLASS32 ? "32" : "64");
		return -ENOEXEC;
	}
	if (pread(fd, &e, sizeof(e), 0) != (ssize_t)sizeof(e)) {
		rec_error("%s: truncated ELF header; give a program to run", path);
		return -ENOEXEC;
	}
	if (machine && e.e_machine != machine) {
		rec_error("%s is built for another processor (ELF machine %u, heapscope's is %u); use a heapscope built for it",
			  path, e.e_machine, machine);
		return -ENOEXEC;
	}
	if (e.e_type != ET_EXEC && e.e_type != ET_DYN) {
		rec_error("%s is not an executable (ELF type %u); give a program to run", path, e.e_type);
		return -ENOEXEC;
	}
	if (e.e_phentsize != sizeof(ElfW(Phdr)) || e.e_phnum == 0 || e.e_phnum > 4096) {
		rec_error("%s has no usable program headers; give a program to run", path);
		return -ENOEXEC;
	}
	size_t len = (size_t)e.e_phnum * sizeof(ElfW(Phdr));
	ElfW(Phdr) *ph = malloc(len);
	if (!ph)
		return -ENOMEM;
	int interp = 0;
	if (pread(fd, ph, len, (off_t)e.e_phoff) == (ssize_t)len)
		for (unsigned i = 0; i < e.e_phnum; i++)
			interp |= ph[i].p_type == PT_INTERP;
	free(ph);
	if (!interp) {
		rec_error("%s is statically linked: heapscope preloads a library into the program, which needs a dynamically linked one; rebuild it without -static",
			  path);
		return -ENOEXEC;
	}
	return 0;
}

static int check_program(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		int e = errno;
		rec_error("cannot run %s: %s; check the path", path, strerror(e));
		return -e;
	}
	if (S_ISDIR(st.st_mode)) {
		rec_error("%s is a directory; give a program to run", path);
		return -EISDIR;
	}
	if (!S_ISREG(st.st_mode)) {
		rec_error("%s is not a regular file; give a program to run", path);
		return -EACCES;
	}
	if (access(path, X_OK) < 0) {
		rec_error("%s is not executable; make it executable (chmod +x) or run its interpreter", path);
		return -EACCES;
	}
	/* A set-id exec that changes our ids is a secure exec: the loader
	 * ignores LD_PRELOAD and the program would run unrecorded. */
	if (((st.st_mode & S_ISUID) && st.st_uid != getuid()) || ((st.st_mode & S_ISGID) && st.st_gid != getgid())) {
		rec_error("%s is %s: the loader ignores LD_PRELOAD for it; record a copy without that bit", path,
			  (st.st_mode & S_ISUID) ? "setuid" : "setgid");
		return -EPERM;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* executable but unreadable (mode --x): the kernel can still run
		 * it, we just cannot look inside */
		return 0;
	}
	int ret = check_elf(path, fd);
	close(fd);
	return ret;
}

/* Like execvp's search: PATH entries in order, an empty one is the current
 * directory; a file that exists but cannot be executed is remembered. */
static int search_path(const char *name, char **out)
{
	const char *path = getenv("PATH");
	char def[256];
	int saw_noexec = 0;
	if (!path) {
		size_t n = confstr(_CS_PATH, def, sizeof(def));
		path = n > 0 && n <= sizeof(def) ? def : "/bin:/usr/bin";
	}
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char *cand = len ? join(p, len, name) : join(".", 1, name);
		if (!cand)
			return -ENOMEM;
		struct stat st;
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(cand, X_OK) == 0) {
				*out = cand;
				return 0;
			}
			saw_noexec = 1;
		}
		free(cand);
		if (!end)
			break;
		p = end;
	}
	if (saw_noexec) {
		rec_error("'%s' is on PATH but not executable; make it executable (chmod +x) or give another path", name);
		return -EACCES;
	}
	rec_error("'%s' not found on PATH; check the name, or give the program's path", name);
	return -ENOENT;
}

int rec_resolve_program(const char *name, char **path)
{
	char *found = NULL;
	int ret;
	if (!name || !*name) {
		rec_error("empty program name; give the program to run after the options");
		return -EINVAL;
	}
	if (strchr(name, '/')) {
		found = strdup(name);
		if (!found)
			return -ENOMEM;
	} else {
		ret = search_path(name, &found);
		if (ret)
			return ret;
	}
	ret = check_program(found);
	if (ret) {
		free(found);
		return ret;
	}
	if (found[0] != '/') {
		/* absolute for the trace; not realpath: a symlink's name is what
		 * the program (and a script's interpreter) was asked to run as */
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd))) {
			int e = errno;
			rec_error("cannot get the current directory: %s; run from an existing directory", strerror(e));
			free(found);
			return -e;
		}
		const char *rel = found;
		while (rel[0] == '.' && rel[1] == '/')
			rel += 2;
		char *abs = join(cwd, strlen(cwd), rel);
		free(found);
		if (!abs)
			return -ENOMEM;
		found = abs;
	}
	*path = found;
	return 0;
}

int rec_find_preload(char **path)
{
	static const char *const where[] = { "libheapscope.so", "../lib/heapscope/libheapscope.so" };
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		rec_error("cannot find where heapscope runs from (/proc/self/exe): %s; is /proc mounted?",
			  strerror(errno));
		return -ENOENT;
	}
	self[n] = 0;
	char *slash = strrchr(self, '/');
	size_t dlen = slash ? (size_t)(slash - self) : 0;
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		char *cand = join(self, dlen, where[i]);
		if (!cand)
			return -ENOMEM;
		char *real = access(cand, R_OK) == 0 ? realpath(cand, NULL) : NULL;
		free(cand);
		if (!real)
			continue;
		/* the loader splits LD_PRELOAD at spaces and colons */
		if (strpbrk(real, ": ")) {
			rec_error("%s: the path has a space or colon, which LD_PRELOAD cannot hold; install heapscope elsewhere",
				  real);
			free(real);
			return -EINVAL;
		}
		*path = real;
		return 0;
	}
	self[dlen] = 0;
	rec_error("libheapscope.so not found in %s nor in %s/../lib/heapscope; build it with 'make' or reinstall heapscope",
		  self, self);
	return -ENOENT;
}

/* ---- shared memory --------------------------------------------------- */

int rec_shm_create(struct rec_shm *s, uint32_t options)
{
	s->size = hs_shm_size();
	s->h = NULL;
	s->fd = memfd_create("heapscope", MFD_CLOEXEC);
	if (s->fd < 0) {
		int e = errno;
		rec_error("cannot create the shared memory (memfd_create): %s; heapscope needs Linux 3.17 or later",
			  strerror(e));
		return -e;
	}
	/* sparse: only the pages the target touches cost memory */
	if (ftruncate(s->fd, (off_t)s->size) < 0) {
		int e = errno;
		rec_error("cannot size the shared memory to %zu bytes: %s", s->size, strerror(e));
		close(s->fd);
		return -e;
	}
	void *p = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, s->fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		rec_error("cannot map the shared memory (%zu bytes): %s; check 'ulimit -v'", s->size, strerror(e));
		close(s->fd);
		return -e;
	}
	s->h = p;
	madvise(p, s->size, MADV_DONTDUMP); /* nor in the recorder's */
	hs_shm_init_header(s->h, (int)getpid());
	s->h->options = options;
	/* tells this memory from another recorder's that got the same pid and fd */
	uint64_t nonce = 0;
	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != (ssize_t)sizeof(nonce)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		nonce = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 32;
	}
	s->h->nonce = nonce;
	snprintf(s->env, sizeof(s->env), HS_SHM_ENV "=%d:%d:%llu", (int)getpid(), s->fd, (unsigned long long)nonce);
	return 0;
}

void rec_shm_destroy(struct rec_shm *s)
{
	if (s->h)
		munmap(s->h, s->size);
	if (s->fd >= 0)
		close(s->fd);
	s->h = NULL;
	s->fd = -1;
}

/* ---- signals --------------------------------------------------------- */

/* The signals whose handling the recorder changes; the child gets back the
 * dispositions heapscope was started with, so the program runs as it would
 * without us (nohup's ignored SIGHUP stays ignored, for instance). */
static const int managed[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGCHLD, SIGPIPE };
#define NMANAGED (sizeof(managed) / sizeof(managed[0]))

static struct sigaction saved_act[NMANAGED];
static sigset_t saved_mask;
static volatile sig_atomic_t fwd_pid;   /* the child while it can be signalled, else 0 */
static volatile sig_atomic_t term_count;

static void on_forward(int sig)
{
	int e = errno;
	if (sig == SIGTERM)
		term_count++;
	if (fwd_pid > 0)
		kill((pid_t)fwd_pid, sig);
	errno = e;
}

static void forwarded_set(sigset_t *s)
{
	sigemptyset(s);
	sigaddset(s, SIGTERM);
	sigaddset(s, SIGHUP);
}

void rec_signals_setup(void)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, dfl = { .sa_handler = SIG_DFL };
	struct sigaction fwd = { .sa_handler = on_forward, .sa_flags = SA_RESTART };
	sigset_t block;
	forwarded_set(&block);
	/* held until the child's pid is known (rec_spawn) */
	sigprocmask(SIG_BLOCK, &block, &saved_mask);
	for (size_t i = 0; i < NMANAGED; i++)
		sigaction(managed[i], NULL, &saved_act[i]);
	sigemptyset(&fwd.sa_mask);
	/* a Ctrl-C goes to the whole foreground group: the program decides,
	 * and we finish the trace once it has ended */
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGQUIT, &ign, NULL);
	sigaction(SIGTERM, &fwd, NULL);
	sigaction(SIGHUP, &fwd, NULL);
	/* inherited SIG_IGN would auto-reap the child and hide its status */
	sigaction(SIGCHLD, &dfl, NULL);
	/* a child gone before its release, or a closed stderr: an error, not death */
	sigaction(SIGPIPE, &ign, NULL);
}

unsigned rec_signals_term_count(void)
{
	return (unsigned)term_count;
}

/* ---- the child ------------------------------------------------------- */

/* The program's environment: ours with LD_PRELOAD = our library first, then
 * the user's own, and HS_SHM_ENV. Unless children are followed, the library
 * takes both out again. */
static char **child_env(const char *preload, const char *shm_env)
{
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **env = calloc(n + 3, sizeof(*env));
	const char *user = getenv("LD_PRELOAD");
	size_t k = 0;
	if (!env)
		return NULL;
	if (user && *user) {
		env[k] = malloc(strlen("LD_PRELOAD=") + strlen(preload) + strlen(user) + 2);
		if (env[k])
			sprintf(env[k], "LD_PRELOAD=%s:%s", preload, user);
	} else {
		env[k] = malloc(strlen("LD_PRELOAD=") + strlen(preload) + 1);
		if (env[k])
			sprintf(env[k], "LD_PRELOAD=%s", preload);
	}
	if (!env[k++])
		goto fail;
	env[k] = strdup(shm_env);
	if (!env[k])
		goto fail;
	k++;
	/* a heapscope recording heapscope: the inner one's variables are its own */
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) && strncmp(environ[i], HS_SHM_ENV "=", sizeof(HS_SHM_ENV)))
			env[k++] = environ[i];
	env[k] = NULL;
	return env;
fail:
	free(env[0]);
	free(env);
	return NULL;
}

/* In the child: no return. Only async-signal-safe calls after fork. */
static void child_main(int go_fd, int err_fd, const char *path, char **argv, char **env)
{
	char b = 0;
	ssize_t n;
	int e;
	for (size_t i = 0; i < NMANAGED; i++)
		sigaction(managed[i], &saved_act[i], NULL);
	sigprocmask(SIG_SETMASK, &saved_mask, NULL);
	while ((n = read(go_fd, &b, 1)) < 0 && errno == EINTR)
		;
	if (n != 1 || b != 'g')
		_exit(127); /* the recorder gave up before the program started */
	execve(path, argv, env);
	e = errno;
	while (write(err_fd, &e, sizeof(e)) < 0 && errno == EINTR)
		;
	_exit(127);
}

int rec_spawn(struct rec_child *c, const char *path, char **argv, const char *preload, const char *shm_env)
{
	int go[2], err[2];
	char **env = child_env(preload, shm_env);
	if (!env)
		return -ENOMEM;
	if (pipe2(go, O_CLOEXEC) < 0) {
		int e = errno;
		free(env[0]);
		free(env[1]);
		free(env);
		rec_error("cannot create a pipe: %s", strerror(e));
		return -e;
	}
	if (pipe2(err, O_CLOEXEC) < 0) {
		int e = errno;
		close(go[0]);
		close(go[1]);
		free(env[0]);
		free(env[1]);
		free(env);
		rec_error("cannot create a pipe: %s", strerror(e));
		return -e;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(err[0]);
		child_main(go[0], err[1], path, argv, env);
	}
	int e = errno;
	close(go[0]);
	close(err[1]);
	free(env[0]);
	free(env[1]);
	free(env);
	if (pid < 0) {
		close(go[1]);
		close(err[0]);
		rec_error("cannot start %s (fork): %s", path, strerror(e));
		return -e;
	}
	c->pid = pid;
	c->go_fd = go[1];
	c->err_fd = err[0];
	/* Linux 5.3: the loop wakes when the program ends, not up to 1 ms later */
	c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	fwd_pid = pid;
	/* a SIGTERM held since rec_signals_setup is delivered (forwarded) now */
	sigset_t unblock;
	forwarded_set(&unblock);
	sigprocmask(SIG_UNBLOCK, &unblock, NULL);
	return 0;
}

int rec_spawn_release(struct rec_child *c, int abort)
{
	int e = 0;
	ssize_t n;
	if (!abort)
		while (write(c->go_fd, "g", 1) < 0 && errno == EINTR)
			;
	close(c->go_fd);
	c->go_fd = -1;
	/* EOF: execve succeeded and closed the close-on-exec write end */
	while ((n = read(c->err_fd, &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close(c->err_fd);
	c->err_fd = -1;
	if (abort || n == (ssize_t)sizeof(e)) {
		int status;
		sigset_t block, old;
		forwarded_set(&block);
		sigprocmask(SIG_BLOCK, &block, &old);
		while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
			;
		fwd_pid = 0;
		sigprocmask(SIG_SETMASK, &old, NULL);
		c->pid = 0;
		rec_child_close(c);
		return abort ? 0 : -(e ? e : EIO);
	}
	return 0;
}

int rec_child_poll(struct rec_child *c, int *status)
{
	sigset_t block, old;
	forwarded_set(&block);
	/* no forwarding between the reap and forgetting the pid: it could be
	 * reused by then */
	sigprocmask(SIG_BLOCK, &block, &old);
	pid_t r = waitpid(c->pid, status, WNOHANG);
	int e = errno;
	if (r == c->pid)
		fwd_pid = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		return -e;
	if (r == c->pid)
		rec_child_close(c); /* a reaped child's pidfd stays readable */
	return r == c->pid;
}

int rec_child_sleep(struct rec_child *c, long ns)
{
	struct timespec ts = { 0, ns };
	struct pollfd p = { .fd = c->pidfd, .events = POLLIN };
	/* a signal cuts it short: fine, the caller looks again */
	return ppoll(&p, c->pidfd >= 0, &ts, NULL) > 0;
}

void rec_child_close(struct rec_child *c)
{
	if (c->pidfd >= 0)
		close(c->pidfd);
	c->pidfd = -1;
}
