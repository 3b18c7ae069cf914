/*
 * exec.c: the calls that start programs, when children are followed. The
 * program's environment has no trace of us (init.c takes our variables
 * out); each of these calls gives them to the child, so a program that
 * cleared its environment, or hands execve an environment of its own, still
 * has its children recorded. Each also notes a program the library cannot enter
 * (statically linked, set-id) in the process table, so the report shows the
 * gap instead of a silent hole. The wait family tells a child's exit status
 * to the process table.
 *
 * exec may run in a vfork child, which shares the parent's memory: no malloc
 * here, the new environment is built on the stack (or in a private mapping
 * when it is big), and every real function is resolved at attach.
 * Nothing here is on the allocation path.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preload.h"

#define STACK_ENV 256   /* entries an environment may have to be rebuilt on the stack */
#define MAX_PHDRS 64    /* program headers read to find PT_INTERP */

extern char **environ;

static int (*real_execve)(const char *, char *const[], char *const[]);
static int (*real_execvpe)(const char *, char *const[], char *const[]);
static int (*real_fexecve)(int, char *const[], char *const[]);
static int (*real_execveat)(int, const char *, char *const[], char *const[], int);
static int (*real_posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
			       char *const[], char *const[]);
static int (*real_posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
				const posix_spawnattr_t *, char *const[], char *const[]);
static int (*real_system)(const char *);
static FILE *(*real_popen)(const char *, const char *);
static pid_t (*real_waitpid)(pid_t, int *, int);
static pid_t (*real_wait)(int *);
static pid_t (*real_wait3)(int *, int, struct rusage *);
static pid_t (*real_wait4)(pid_t, int *, int, struct rusage *);
static int (*real_waitid)(idtype_t, id_t, siginfo_t *, int);

/* "LD_PRELOAD=<this library>" and "HEAPSCOPE_SHM=<...>": what a child needs. */
static char env_preload[sizeof(pl_self_path) + 16];
static char env_shm[128];
static const char *lib;   /* the library's path, inside env_preload */
static size_t lib_len;

#define RESOLVE(name) (real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name))

static void resolve_all(void)
{
	RESOLVE(execve);
	RESOLVE(execvpe);
	RESOLVE(fexecve);
	RESOLVE(execveat);
	RESOLVE(posix_spawn);
	RESOLVE(posix_spawnp);
	RESOLVE(system);
	RESOLVE(popen);
	RESOLVE(waitpid);
	RESOLVE(wait);
	RESOLVE(wait3);
	RESOLVE(wait4);
	RESOLVE(waitid);
}

/* Called before our constructor (another library's constructor forks):
 * resolve now. dlsym may allocate, which is fine outside a vfork child. */
#define REAL(name) (real_##name ? real_##name : (resolve_all(), real_##name))

void pl_exec_resolve(void)
{
	resolve_all();
}

void pl_exec_init(const char *v)
{
	if (!pl_follow || !pl_self_path[0])
		return;
	if (!v || strlen(v) + sizeof(HS_SHM_ENV) + 1 > sizeof(env_shm))
		return;
	strcpy(env_shm, HS_SHM_ENV "=");
	strcat(env_shm, v);
	strcpy(env_preload, "LD_PRELOAD=");
	strcat(env_preload, pl_self_path);
	lib = env_preload + strlen("LD_PRELOAD=");
	lib_len = strlen(lib);
}

static int following(void)
{
	return pl_active && pl_follow && lib;
}

/* ---- environments ---------------------------------------------------- */

/* LD_PRELOAD's value lists our library (the loader splits at ':' and ' '). */
static int lists_us(const char *v)
{
	for (const char *p = v; (p = strstr(p, lib)); p++)
		if ((p == v || p[-1] == ':' || p[-1] == ' ') && (p[lib_len] == 0 || p[lib_len] == ':' || p[lib_len] == ' '))
			return 1;
	return 0;
}

struct envfix {
	char *const *env;       /* what to pass on */
	void *map;              /* a mapping to give back, when the stack was too small */
	size_t map_len;
};

static size_t env_count(char *const *envp)
{
	size_t n = 0;
	while (envp && envp[n])
		n++;
	return n;
}

/* Size of what fix_env needs for an environment of n entries whose
 * LD_PRELOAD (if any) is pre bytes long. */
static size_t fix_size(size_t n, size_t pre)
{
	return (n + 3) * sizeof(char *) + pre + lib_len + 16;
}

/*
 * Fills mem (fix_size bytes) with envp, LD_PRELOAD and HS_SHM_ENV as a
 * child needs them: ours first in LD_PRELOAD, the program's own after it.
 * Returns envp itself when nothing needs changing.
 */
static char *const *fix_env(char *const *envp, size_t n, void *mem)
{
	int shm_ok = 0, pre_ok = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(envp[i], env_shm))
			shm_ok = 1;
		else if (!strncmp(envp[i], "LD_PRELOAD=", 11) && lists_us(envp[i] + 11))
			pre_ok = 1;
	}
	if (shm_ok && pre_ok)
		return envp;
	char **out = mem;
	char *pre = (char *)(out + n + 3);
	size_t k = 0;
	int seen_pre = 0;
	strcpy(pre, env_preload);
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(envp[i], HS_SHM_ENV "=", sizeof(HS_SHM_ENV)))
			continue;
		if (!strncmp(envp[i], "LD_PRELOAD=", 11)) {
			if (seen_pre++)
				continue; /* the loader reads the first one; so does fix_size */
			if (envp[i][11] && !lists_us(envp[i] + 11)) {
				strcat(pre, ":");
				strcat(pre, envp[i] + 11);
			} else if (envp[i][11]) {
				strcpy(pre, envp[i]); /* ours is in it already: keep their order */
			}
			continue;
		}
		out[k++] = envp[i];
	}
	out[k++] = pre;
	out[k++] = env_shm;
	out[k] = NULL;
	return out;
}

static size_t preload_len(char *const *envp, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strncmp(envp[i], "LD_PRELOAD=", 11))
			return strlen(envp[i]);
	return 0;
}

/* The environment a child gets: on the stack when small (stack is the
 * caller's buffer of STACK_BYTES), else in a private mapping. A failure
 * passes envp on as it is: the child then runs unrecorded. */
#define STACK_BYTES (STACK_ENV * sizeof(char *) + 4096)

static void env_for_child(struct envfix *f, char *const *envp, void *stack)
{
	f->env = envp;
	f->map = NULL;
	if (!following())
		return;
	size_t n = env_count(envp), need = fix_size(n, preload_len(envp, n));
	void *mem = stack;
	if (need > STACK_BYTES) {
		mem = (void *)syscall(SYS_mmap, NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			return;
		f->map = mem;
		f->map_len = need;
	}
	f->env = fix_env(envp, n, mem);
}

static void env_done(struct envfix *f)
{
	if (f->map)
		syscall(SYS_munmap, f->map, f->map_len);
	f->map = NULL;
}

/* ---- programs the library cannot enter -------------------------------- */

/* HS_PROCF_STATIC or HS_PROCF_SETID when exec'ing path runs without us;
 * 0 when it loads the library (or we cannot tell: then the recorder checks). */
static uint32_t untraceable(const char *path)
{
	ElfW(Ehdr) e;
	ElfW(Phdr) ph[MAX_PHDRS];
	struct stat st;
	uint32_t flags = 0;
	int saved = errno;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	if (syscall(SYS_fstat, fd, &st) == 0 &&
	    (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) || ((st.st_mode & S_ISGID) && st.st_gid != getegid())))
		flags = HS_PROCF_SETID;
	else if (syscall(SYS_pread64, fd, &e, sizeof(e), 0) == (long)sizeof(e) && !memcmp(e.e_ident, ELFMAG, SELFMAG) &&
		 e.e_phentsize == sizeof(ElfW(Phdr)) && e.e_phnum > 0 && e.e_phnum <= MAX_PHDRS &&
		 syscall(SYS_pread64, fd, ph, e.e_phnum * sizeof(ph[0]), (off_t)e.e_phoff) ==
			 (long)(e.e_phnum * sizeof(ph[0]))) {
		int interp = 0;
		for (int i = 0; i < e.e_phnum; i++)
			interp |= ph[i].p_type == PT_INTERP;
		if (!interp)
			flags = HS_PROCF_STATIC;
	}
	syscall(SYS_close, fd);
out:
	errno = saved;
	return flags;
}

/* execvp's search: the first executable file named file on PATH. */
static const char *search_path(const char *file, char *buf, size_t len)
{
	if (!*file || strchr(file, '/'))
		return file;
	const char *path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin";
	size_t flen = strlen(file);
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t dlen = end ? (size_t)(end - p) : strlen(p);
		if (dlen + flen + 2 <= len) {
			memcpy(buf, dlen ? p : ".", dlen ? dlen : 1);
			size_t k = dlen ? dlen : 1;
			buf[k] = '/';
			memcpy(buf + k + 1, file, flen + 1);
			if (syscall(SYS_faccessat, AT_FDCWD, buf, X_OK) == 0)
				return buf;
		}
		if (!end)
			return file;
		p = end;
	}
}

/* Before an exec: an entry for the image that will run unrecorded, voided
 * if the exec fails. -1 when there is nothing to note. In a vfork child
 * (another pid in our memory) the exec starts a new process. */
static int note_exec(const char *path, char *const argv[])
{
	if (!following())
		return -1;
	uint32_t flags = untraceable(path);
	if (!flags)
		return -1;
	uint32_t me = (uint32_t)syscall(SYS_getpid);
	if (me != pl_pid)
		return pl_proc_untraced(me, pl_pid, HS_PROC_SPAWN, flags, HS_PROCS_PENDING, path, argv);
	return pl_proc_untraced(me, (uint32_t)syscall(SYS_getppid), HS_PROC_EXEC, flags, HS_PROCS_PENDING, path, argv);
}

/* A child process is about to start: the recorder waits for the tree to
 * settle after the program exits only when one has (record.c). */
static void count_start(void)
{
	if (pl_shm)
		atomic_fetch_add_explicit(&pl_shm->starts, 1, memory_order_relaxed);
}

/* An exec in a vfork child (another pid in our memory) starts a process. */
static void count_vfork_exec(void)
{
	if (pl_shm && (uint32_t)syscall(SYS_getpid) != pl_pid)
		count_start();
}

/* ---- exec -------------------------------------------------------------- */

static int do_execve(const char *path, char *const argv[], char *const envp[], int search)
{
	char stack[STACK_BYTES] __attribute__((aligned(16)));
	char found[4096];
	struct envfix f;
	int saved = errno;
	count_vfork_exec();
	int note = note_exec(search ? search_path(path, found, sizeof(found)) : path, argv);
	env_for_child(&f, envp, stack);
	errno = saved;
	int ret = search ? REAL(execvpe)(path, argv, f.env) : REAL(execve)(path, argv, f.env);
	int err = errno;
	env_done(&f);
	pl_proc_void(note);
	errno = err;
	return ret;
}

PL_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return do_execve(path, argv, envp, 0);
}

PL_EXPORT int execv(const char *path, char *const argv[])
{
	return do_execve(path, argv, environ, 0);
}

PL_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return do_execve(file, argv, envp, 1);
}

PL_EXPORT int execvp(const char *file, char *const argv[])
{
	return do_execve(file, argv, environ, 1);
}

/* execl and friends: the arguments into an array on the stack. */
#define VA_ARGV(first, ap, argv)                                  \
	size_t argc_ = 1;                                         \
	va_start(ap, first);                                      \
	while (va_arg(ap, char *))                                \
		argc_++;                                          \
	va_end(ap);                                               \
	char *argv[argc_ + 1];                                    \
	argv[0] = (char *)(first);                                \
	va_start(ap, first);                                      \
	for (size_t i_ = 1; i_ <= argc_; i_++)                    \
		argv[i_] = va_arg(ap, char *);

PL_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	VA_ARGV(arg, ap, argv);
	va_end(ap);
	return do_execve(path, argv, environ, 0);
}

PL_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	VA_ARGV(arg, ap, argv);
	va_end(ap);
	return do_execve(file, argv, environ, 1);
}

PL_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	VA_ARGV(arg, ap, argv);
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return do_execve(path, argv, envp, 0);
}

PL_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	char stack[STACK_BYTES] __attribute__((aligned(16)));
	struct envfix f;
	count_vfork_exec();
	env_for_child(&f, envp, stack);
	int ret = REAL(fexecve)(fd, argv, f.env);
	int err = errno;
	env_done(&f);
	errno = err;
	return ret;
}

PL_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	char stack[STACK_BYTES] __attribute__((aligned(16)));
	struct envfix f;
	if (!REAL(execveat)) {
		errno = ENOSYS;
		return -1;
	}
	count_vfork_exec();
	env_for_child(&f, envp, stack);
	int ret = real_execveat(dirfd, path, argv, f.env, flags);
	int err = errno;
	env_done(&f);
	errno = err;
	return ret;
}

/* ---- spawn ------------------------------------------------------------- */

/* posix_spawn returns once the child has exec'd (glibc reports exec errors),
 * so an unrecorded child is known for certain here. */
static int do_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
		    const posix_spawnattr_t *attr, char *const argv[], char *const envp[], int search)
{
	char stack[STACK_BYTES] __attribute__((aligned(16)));
	char found[4096];
	struct envfix f;
	pid_t child = 0;
	count_start();
	env_for_child(&f, envp, stack);
	int ret = search ? REAL(posix_spawnp)(&child, path, fa, attr, argv, f.env)
			 : REAL(posix_spawn)(&child, path, fa, attr, argv, f.env);
	env_done(&f);
	if (pid)
		*pid = child;
	if (ret == 0 && following()) {
		const char *file = search ? search_path(path, found, sizeof(found)) : path;
		uint32_t flags = untraceable(file);
		if (flags)
			pl_proc_untraced((uint32_t)child, pl_pid, HS_PROC_SPAWN, flags, HS_PROCS_READY, file, argv);
	}
	return ret;
}

PL_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			  const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	return do_spawn(pid, path, fa, attr, argv, envp, 0);
}

PL_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	return do_spawn(pid, file, fa, attr, argv, envp, 1);
}

/*
 * system() and popen() start /bin/sh with environ from inside libc, where no
 * hook reaches. For the length of the call, environ is a copy with our
 * variables; then the program's own comes back (unless the program changed
 * it meanwhile: its change is kept). Other threads could see our variables
 * during the call.
 */
struct env_swap {
	struct envfix f;
	char **saved;
};

static void swap_in(struct env_swap *s, void *stack)
{
	s->saved = environ;
	env_for_child(&s->f, environ, stack);
	if (s->f.env != environ)
		environ = (char **)s->f.env;
}

static void swap_out(struct env_swap *s)
{
	if (environ == (char **)s->f.env)
		environ = s->saved;
	env_done(&s->f);
}

/* A child of this image, spawned (not forked) since the table had first
 * entries: the shell of a system() call. 0 when there is not exactly one. */
static uint32_t spawned_since(uint32_t first)
{
	uint32_t found = 0;
	for (uint32_t i = first; i < pl_proc_count(); i++) {
		struct hs_proc *p = pl_proc_entry(i);
		if (atomic_load_explicit(&p->state, memory_order_acquire) == HS_PROCS_READY && p->how == HS_PROC_SPAWN &&
		    p->parent == pl_proc + 1) {
			if (found && found != p->pid)
				return 0;
			found = p->pid;
		}
	}
	return found;
}

PL_EXPORT int system(const char *cmd)
{
	char stack[STACK_BYTES] __attribute__((aligned(16)));
	struct env_swap sw;
	if (!REAL(system))
		return -1;
	uint32_t first = pl_shm ? pl_proc_count() : 0;
	count_start();
	swap_in(&sw, stack);
	int ret = real_system(cmd);
	int e = errno;
	swap_out(&sw);
	errno = e;
	/* libc reaps the shell itself: its status is what system returns */
	if (cmd && ret != -1 && following()) {
		int err = errno;
		uint32_t pid = spawned_since(first);
		if (pid)
			pl_proc_status(pid, ret);
		errno = err;
	}
	return ret;
}

PL_EXPORT FILE *popen(const char *cmd, const char *mode)
{
	char stack[STACK_BYTES] __attribute__((aligned(16)));
	struct env_swap sw;
	if (!REAL(popen))
		return NULL;
	count_start();
	swap_in(&sw, stack);
	FILE *f = real_popen(cmd, mode);
	int e = errno;
	swap_out(&sw);
	errno = e;
	return f;
}

/* ---- wait -------------------------------------------------------------- */

static void reaped(pid_t pid, int st)
{
	if (pid > 0 && (WIFEXITED(st) || WIFSIGNALED(st)) && pl_shm)
		pl_proc_status((uint32_t)pid, st);
}

PL_EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
	int st = 0;
	pid_t r = REAL(waitpid)(pid, &st, options);
	if (r > 0 && status)
		*status = st;
	reaped(r, st);
	return r;
}

PL_EXPORT pid_t wait(int *status)
{
	int st = 0;
	pid_t r = REAL(wait)(&st);
	if (r > 0 && status)
		*status = st;
	reaped(r, st);
	return r;
}

PL_EXPORT pid_t wait3(int *status, int options, struct rusage *ru)
{
	int st = 0;
	pid_t r = REAL(wait3)(&st, options, ru);
	if (r > 0 && status)
		*status = st;
	reaped(r, st);
	return r;
}

PL_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	int st = 0;
	pid_t r = REAL(wait4)(pid, &st, options, ru);
	if (r > 0 && status)
		*status = st;
	reaped(r, st);
	return r;
}

PL_EXPORT int waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
	int r = REAL(waitid)(type, id, info, options);
	if (r == 0 && info && info->si_pid > 0 && !(options & WNOWAIT)) {
		if (info->si_code == CLD_EXITED)
			reaped(info->si_pid, (info->si_status & 0xff) << 8);
		else if (info->si_code == CLD_KILLED || info->si_code == CLD_DUMPED)
			reaped(info->si_pid, (info->si_status & 0x7f) | (info->si_code == CLD_DUMPED ? 0x80 : 0));
	}
	return r;
}
