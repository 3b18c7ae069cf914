/*
 * proc.c: this process in the shared process table. An image registers when
 * it attaches (the program, an exec, a spawned child) and a fork child in
 * its atfork handler; each entry names its parent image, so the recorder and
 * the report can tell the tree. Raw syscalls and no malloc: this runs in
 * constructors and fork children. Never on the allocation path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

uint32_t pl_proc;

struct hs_proc *pl_proc_entry(uint32_t index)
{
	return &HS_SHM_AT(pl_shm, pl_shm->procs_off, struct hs_proc)[index];
}

uint32_t pl_proc_count(void)
{
	uint32_t n = atomic_load_explicit(&pl_shm->nprocs, memory_order_acquire);
	return n < HS_MAX_PROCS ? n : HS_MAX_PROCS;
}

/* Reads a small /proc/self file into buf; returns the bytes read. */
static size_t read_self(const char *path, char *buf, size_t len)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	if (fd < 0)
		return 0;
	while (got < len) {
		long n = syscall(SYS_read, fd, buf + got, len - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	syscall(SYS_close, fd);
	return got;
}

/* Field 22 of /proc/self/stat, the start time in clock ticks since boot:
 * with the pid, it names one process (pids are reused, start times are not;
 * exec keeps both). 0 when it cannot be read. */
static uint64_t self_starttime(void)
{
	char buf[1024];
	size_t n = read_self("/proc/self/stat", buf, sizeof(buf) - 1);
	buf[n] = 0;
	/* the command name may hold spaces and parentheses: start after the last ')' */
	char *p = NULL;
	for (size_t i = 0; i < n; i++)
		if (buf[i] == ')')
			p = buf + i;
	if (!p)
		return 0;
	int field = 2;
	for (p++; *p && field < 21; p++)
		if (*p == ' ')
			field++;
	uint64_t v = 0;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	return v;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = 0;
}

/* The parts every entry of this process has. */
static void fill_self(struct hs_proc *p, uint32_t how, uint32_t parent)
{
	p->pid = pl_pid;
	p->ppid = (uint32_t)syscall(SYS_getppid);
	p->parent = parent;
	p->how = how;
	p->flags = 0;
	p->space = pl_root;
	p->start = pl_now();
	p->starttime = self_starttime();
	atomic_store_explicit(&p->wstatus_set, 0, memory_order_relaxed);
}

/* Takes a new index, or counts the image as lost when the table is full. */
static struct hs_proc *append(uint32_t *index)
{
	uint32_t i = atomic_fetch_add(&pl_shm->nprocs, 1);
	if (i >= HS_MAX_PROCS) {
		atomic_fetch_add(&pl_shm->procs_lost, 1);
		return NULL;
	}
	*index = i;
	return pl_proc_entry(i);
}

static void publish(struct hs_proc *p)
{
	atomic_store_explicit(&p->state, HS_PROCS_READY, memory_order_release);
}

/* The latest published image of pid (of that start time, when known), or -1. */
static int latest_of(uint32_t pid, uint64_t starttime)
{
	for (uint32_t i = pl_proc_count(); i-- > 0;) {
		struct hs_proc *p = pl_proc_entry(i);
		uint32_t st = atomic_load_explicit(&p->state, memory_order_acquire);
		if (st == HS_PROCS_READY && p->pid == pid && (!starttime || !p->starttime || p->starttime == starttime) &&
		    !(p->flags & HS_PROCF_UNTRACED))
			return (int)i;
	}
	return -1;
}

int pl_proc_attach(void)
{
	uint64_t st = self_starttime();
	struct hs_proc *p;
	uint32_t index, how, parent = 0;

	pl_exe_init();
	/* the program itself: the recorder reserved entry 0 for its pid */
	p = pl_proc_entry(0);
	uint32_t expect = HS_PROCS_RESERVED;
	if (p->pid == pl_pid && atomic_compare_exchange_strong(&p->state, &expect, HS_PROCS_EMPTY)) {
		index = 0;
		how = HS_PROC_ROOT;
	} else {
		/* An exec the previous image thought we could not follow: we did. */
		for (uint32_t i = pl_proc_count(); i-- > 0;) {
			struct hs_proc *q = pl_proc_entry(i);
			uint32_t pending = HS_PROCS_PENDING;
			if (q->pid == pl_pid)
				atomic_compare_exchange_strong(&q->state, &pending, HS_PROCS_VOID);
		}
		int prev = latest_of(pl_pid, st);
		if (prev >= 0) {
			how = HS_PROC_EXEC; /* same pid: this image replaced that one */
			parent = (uint32_t)prev + 1;
		} else {
			int pp = latest_of((uint32_t)syscall(SYS_getppid), 0);
			how = HS_PROC_SPAWN;
			parent = pp >= 0 ? (uint32_t)pp + 1 : 0;
		}
		p = append(&index);
		if (!p)
			return -1;
	}
	fill_self(p, how, parent);
	p->starttime = st;
	copy_str(p->exe, sizeof(p->exe), pl_exe);
	size_t n = read_self("/proc/self/cmdline", p->cmdline, sizeof(p->cmdline));
	p->cmdline_len = (uint32_t)n;
	if (n == sizeof(p->cmdline))
		p->flags |= HS_PROCF_ARGV_CUT;
	pl_proc = index;
	publish(p);
	return 0;
}

int pl_proc_forked(void)
{
	uint32_t index;
	struct hs_proc *parent = pl_proc_entry(pl_proc);
	struct hs_proc *p = append(&index);
	if (!p)
		return -1;
	fill_self(p, HS_PROC_FORK, pl_proc + 1);
	/* the same image: its program and arguments */
	memcpy(p->exe, parent->exe, sizeof(p->exe));
	memcpy(p->cmdline, parent->cmdline, sizeof(p->cmdline));
	p->cmdline_len = parent->cmdline_len;
	p->flags = parent->flags & HS_PROCF_ARGV_CUT;
	pl_proc = index;
	publish(p);
	return 0;
}

int pl_proc_untraced(uint32_t pid, uint32_t ppid, uint32_t how, uint32_t flags, uint32_t state, const char *exe,
		     char *const argv[])
{
	uint32_t index;
	struct hs_proc *p = append(&index);
	if (!p)
		return -1;
	p->pid = pid;
	p->ppid = ppid;
	p->parent = pl_proc + 1;
	p->how = how;
	p->flags = flags | HS_PROCF_UNTRACED;
	p->space = 0;
	p->start = pl_now();
	p->starttime = 0;
	atomic_store_explicit(&p->wstatus_set, 0, memory_order_relaxed);
	copy_str(p->exe, sizeof(p->exe), exe);
	size_t k = 0;
	for (size_t i = 0; argv && argv[i]; i++) {
		size_t n = strlen(argv[i]) + 1;
		if (k + n > sizeof(p->cmdline)) {
			p->flags |= HS_PROCF_ARGV_CUT;
			break;
		}
		memcpy(p->cmdline + k, argv[i], n);
		k += n;
	}
	p->cmdline_len = (uint32_t)k;
	atomic_store_explicit(&p->state, state, memory_order_release);
	return (int)index;
}

void pl_proc_void(int index)
{
	if (index >= 0)
		atomic_store_explicit(&pl_proc_entry((uint32_t)index)->state, HS_PROCS_VOID, memory_order_release);
}

void pl_proc_status(uint32_t pid, int st)
{
	if (!pl_shm)
		return;
	for (uint32_t i = pl_proc_count(); i-- > 0;) {
		struct hs_proc *p = pl_proc_entry(i);
		uint32_t s = atomic_load_explicit(&p->state, memory_order_acquire);
		if (p->pid != pid || (s != HS_PROCS_READY && s != HS_PROCS_PENDING))
			continue;
		/* the latest image of that pid is the one that ended */
		if (!atomic_load_explicit(&p->wstatus_set, memory_order_relaxed)) {
			p->wstatus = st;
			atomic_store_explicit(&p->wstatus_set, 1, memory_order_release);
		}
		return;
	}
}
