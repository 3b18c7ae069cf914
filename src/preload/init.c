/*
 * init.c: attaches to the recorder's shared memory, registers this process,
 * restores the program's environment, hands a fork child its own stream,
 * and at exit frees libc's own buffers (as valgrind does) before marking the
 * point where leaks are counted. The program never sees our variables: when
 * children are followed, the exec and spawn hooks (exec.c) give them back
 * to each child.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

struct hs_shm_header *pl_shm;
volatile int pl_active;
int pl_follow;
uint32_t pl_pid;

static atomic_int init_state; /* 0 not started, 1 running, 2 done */

extern void __libc_freeres(void);

/* Parses a decimal up to its end or sep; returns the position after it, or
 * NULL if there is no number there. */
static const char *parse_u64(const char *s, char sep, uint64_t *out)
{
	uint64_t v = 0;
	const char *start = s;
	for (; *s && *s != sep; s++) {
		if (*s < '0' || *s > '9' || v > UINT64_MAX / 10 - 10)
			return NULL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (s == start)
		return NULL;
	*out = v;
	return *s ? s + 1 : s;
}

/* HS_SHM_ENV is "<recorder pid>:<fd>:<nonce>". */
static int parse_shm_env(const char *v, uint64_t *pid, uint64_t *fd, uint64_t *nonce)
{
	if (!v || !(v = parse_u64(v, ':', pid)) || !(v = parse_u64(v, ':', fd)) || !(v = parse_u64(v, 0, nonce)))
		return -1;
	return *pid > 0 && *pid < (1u << 30) && *fd < (1u << 30) ? 0 : -1;
}

/* Writes "/proc/<pid>/fd/<fd>" without stdio. */
static void fd_path(char *buf, uint64_t pid, uint64_t fd)
{
	char *p = pl_put_u(pl_put_str(buf, "/proc/"), pid);
	*pl_put_u(pl_put_str(p, "/fd/"), fd) = 0;
}

/* The recorder put our library first in LD_PRELOAD; take it out again so the
 * program sees its own environment and its children do not inherit us. */
static void restore_ld_preload(void)
{
	char *v = getenv("LD_PRELOAD");
	if (!v)
		return;
	char *sep = strpbrk(v, ": ");
	if (!sep) {
		unsetenv("LD_PRELOAD");
		return;
	}
	memmove(v, sep + 1, strlen(sep + 1) + 1); /* the string lives in the environment block */
	if (!*v)
		unsetenv("LD_PRELOAD");
}

/* Lock words hold the holder's tid. A holder killed in the section would
 * stop every process of the tree: after a while, a waiter checks it and
 * takes the lock over from a dead one. */
void pl_shm_lock(_Atomic uint32_t *lock)
{
	uint32_t me = (uint32_t)syscall(SYS_gettid);
	for (unsigned spins = 0;; spins++) {
		uint32_t holder = 0;
		if (atomic_compare_exchange_weak(lock, &holder, me))
			return;
		if (holder && (spins & 4095) == 4095) {
			int saved = errno;
			int gone = syscall(SYS_kill, holder, 0) < 0 && errno == ESRCH;
			errno = saved;
			if (gone && atomic_compare_exchange_strong(lock, &holder, me))
				return;
		}
		sched_yield();
	}
}

void pl_shm_unlock(_Atomic uint32_t *lock)
{
	atomic_store_explicit(lock, 0, memory_order_release);
}

/* fork: allocations between our prepare and child handlers are not
 * recorded (whose ring would they go to?); the child then takes its own
 * process entry and, on its first event, its own ring. */
static void before_fork(void)
{
	pl_self.in_hook += PL_IN_INTERNAL;
	atomic_fetch_add_explicit(&pl_shm->starts, 1, memory_order_relaxed);
	pl_unwind_fork_prepare();
}

static void after_fork_parent(void)
{
	pl_unwind_fork_done(0);
	pl_self.in_hook -= PL_IN_INTERNAL;
}

static void after_fork_child(void)
{
	/* its thread must not publish into, or close, the parent's rings; it is
	 * a new thread of the trace */
	pl_self.ring = NULL;
	pl_self.ring2 = NULL;
	pl_self.serial = 0;
	pl_self.claim_wait = 0;
	pl_unwind_fork_done(1);
	pl_pid = (uint32_t)syscall(SYS_getpid);
	if (!pl_follow || pl_proc_forked() < 0)
		pl_active = 0;
	else
		pl_ring_forked();
	pl_self.in_hook -= PL_IN_INTERNAL;
}

static void attach(void)
{
	uint64_t rpid, rfd, nonce;
	const char *env = getenv(HS_SHM_ENV);
	char path[64], v[96];
	if (!env || strlen(env) >= sizeof(v))
		return;
	strcpy(v, env);
	/* the variables are ours: whatever happens, the program does not see
	 * them (a failed attach leaves its children unrecorded) */
	unsetenv(HS_SHM_ENV);
	restore_ld_preload();
	if (parse_shm_env(v, &rpid, &rfd, &nonce) < 0)
		return;
	/* raw syscalls: our own mmap hook is not ready to be called from here */
	fd_path(path, rpid, rfd);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return; /* the recorder is gone, or this process may not look at it */
	struct hs_shm_header *h = (void *)syscall(SYS_mmap, NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED) {
		syscall(SYS_close, fd);
		return;
	}
	/* the fd number may have been reused by another recorder, the pid too */
	int ok = h->magic == HS_SHM_MAGIC && h->version == HS_SHM_VERSION && h->total_size == hs_shm_size() &&
		 h->nonce == nonce && (uint64_t)h->recorder_pid == rpid;
	syscall(SYS_munmap, h, 4096);
	if (!ok) {
		syscall(SYS_close, fd);
		return;
	}
	h = (void *)syscall(SYS_mmap, NULL, hs_shm_size(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
			    0);
	syscall(SYS_close, fd);
	if (h == MAP_FAILED)
		return;
	/* a GiB of our buffers is not the program's memory: keep it out of its core */
	syscall(SYS_madvise, h, hs_shm_size(), MADV_DONTDUMP);
	pl_shm = h;
	pl_follow = !!(h->options & HS_OPT_FOLLOW);
	pl_pid = (uint32_t)syscall(SYS_getpid);
	if (pl_clock_init() < 0 || pl_stack_init() < 0 || pl_proc_attach() < 0)
		return;
	pl_modules_init();
	pl_exec_init(v);
	if (pl_ring_init() != 0)
		return;
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
	pl_active = 1;
}

void pl_ensure_init(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong(&init_state, &expect, 1))
		return;
	pl_self.in_hook += PL_IN_INTERNAL;
	pl_exec_resolve();
	if (pl_resolve_real() == 0)
		attach();
	pl_self.in_hook -= PL_IN_INTERNAL;
	atomic_store(&init_state, 2);
}

__attribute__((constructor)) static void pl_constructor(void)
{
	pl_ensure_init();
	pl_stack_init_nested();
}

/* Threads of the process, from /proc/self/status, read without stdio. */
static int thread_count(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *p = strstr(buf, "\nThreads:");
	return p ? atoi(p + 9) : -1;
}

/*
 * Runs late in exit, after the program's atexit handlers and static
 * destructors. Like valgrind, free libc's (and libstdc++'s) own buffers so a
 * leak is the program's memory; only when no other thread could still be
 * using them.
 */
__attribute__((destructor)) static void pl_destructor(void)
{
	struct pl_thread *t = &pl_self;
	if (!pl_active || t->in_hook)
		return;
	if (!(pl_shm->options & HS_OPT_NO_FREERES) && thread_count() == 1) {
		t->in_hook += PL_IN_INTERNAL;
		void (*cxx_freeres)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "_ZN9__gnu_cxx9__freeresEv");
		t->in_hook -= PL_IN_INTERNAL;
		if (cxx_freeres)
			cxx_freeres();
		__libc_freeres();
	}
	uint64_t now;
	t->in_hook += PL_IN_INTERNAL;
	pl_sample_allocator(t, 0); /* one last allocator sample, now */
	pl_snapshot_smaps();
	if (pl_event_begin(t, 1, &now) == 0) {
		struct hs_event *e = pl_event_slot(t, 0);
		*e = (struct hs_event){ .time = now, .kind = HS_EV_EXIT };
		pl_event_publish(t, 1);
	}
	t->in_hook -= PL_IN_INTERNAL;
}
