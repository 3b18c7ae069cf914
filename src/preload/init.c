/*
 * init.c: attaches to the recorder's shared memory, restores the program's
 * environment, and at exit frees libc's own buffers (as valgrind does) before
 * marking the point where leaks are counted.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

struct hs_shm_header *pl_shm;
volatile int pl_active;

static atomic_int init_state; /* 0 not started, 1 running, 2 done */

extern void __libc_freeres(void);

/* Parses a non-negative decimal; -1 if s is not one. */
static int parse_fd(const char *s)
{
	int v = 0;
	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 100000)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
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

static void after_fork_child(void)
{
	/* the child's events would land in the parent's rings: not traced (yet);
	 * and its thread must not close the parent's ring when it exits */
	pl_active = 0;
	pl_self.ring = NULL;
}

static void attach(void)
{
	int fd = parse_fd(getenv("HEAPSCOPE_SHM_FD"));
	if (fd < 0)
		return;
	unsetenv("HEAPSCOPE_SHM_FD");
	restore_ld_preload();
	/* raw syscalls: our own mmap hook is not ready to be called from here */
	struct hs_shm_header *h = (void *)syscall(SYS_mmap, NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED) {
		close(fd);
		return;
	}
	uint64_t size = h->magic == HS_SHM_MAGIC && h->version == HS_SHM_VERSION ? h->total_size : 0;
	syscall(SYS_munmap, h, 4096);
	if (size != hs_shm_size()) {
		close(fd);
		return;
	}
	h = (void *)syscall(SYS_mmap, NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	close(fd);
	if (h == MAP_FAILED)
		return;
	pl_shm = h;
	atomic_store(&h->target_pid, (uint32_t)getpid());
	pl_modules_init();
	pl_stack_init();
	if (pl_ring_init() != 0)
		return;
	pthread_atfork(NULL, NULL, after_fork_child);
	pl_active = 1;
}

void pl_ensure_init(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong(&init_state, &expect, 1))
		return;
	pl_self.in_hook++;
	if (pl_resolve_real() == 0)
		attach();
	pl_self.in_hook--;
	atomic_store(&init_state, 2);
}

__attribute__((constructor)) static void pl_constructor(void)
{
	pl_ensure_init();
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
		t->in_hook++;
		void (*cxx_freeres)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "_ZN9__gnu_cxx9__freeresEv");
		t->in_hook--;
		if (cxx_freeres)
			cxx_freeres();
		__libc_freeres();
	}
	uint64_t now;
	t->in_hook++;
	atomic_store(&pl_shm->mallinfo_due, 0); /* one last allocator sample, now */
	pl_sample_allocator(t, pl_now());
	pl_snapshot_smaps();
	if (pl_event_begin(t, 1, &now) == 0) {
		struct hs_event *e = pl_event_slot(t, 0);
		*e = (struct hs_event){ .time = now, .kind = HS_EV_EXIT };
		pl_event_publish(t, 1);
	}
	atomic_store(&pl_shm->exit_seen, 1);
	t->in_hook--;
}
