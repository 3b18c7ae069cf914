/*
 * preload.h: internals of libheapscope.so, the part of heapscope that runs
 * inside the profiled program. Everything here obeys the hot-path rules of
 * DESIGN.md: no malloc, no stdio, no lock per event, errno preserved, never
 * fail the host's call.
 */
#ifndef HS_PRELOAD_H
#define HS_PRELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "shm_layout.h"

#define PL_EXPORT __attribute__((visibility("default")))

/* The allocator functions we forward to, found with dlsym(RTLD_NEXT). */
struct pl_real {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
};

extern struct pl_real pl_real;

/* Per-thread state, initial-exec TLS so touching it never allocates. */
struct pl_thread {
	struct hs_ring *ring;   /* the ring pl_event_* write to */
	struct hs_ring *ring2;  /* its second ring, for events nested in one on the first */
	uint32_t serial;    /* this thread in the trace (hs_ring.serial); 0 until its first ring */
	uint32_t tid;       /* its kernel thread id, taken with the serial */
	uint32_t shared;    /* holding, or taking, the shared ring's lock */
	uint32_t claim_wait; /* events to write to the shared ring before claiming again */
	uint32_t in_hook;   /* reentrancy guard: nested calls pass through untracked */
	uint32_t in_unwind; /* inside libunwind: its pipe is made our way (hooks_fd.c) */
	uint32_t depth;     /* frames in the cached stack below */
	uint64_t ips[HS_MAX_DEPTH];  /* last captured stack, outermost first */
	uint32_t ids[HS_MAX_DEPTH];  /* its node ids */
};

/* in_hook values: recording an event (a call nested in it can only come
 * from a signal handler: it is recorded on the thread's second ring, see
 * hooks.c), recording such a nested event (a call nested in that is counted
 * as dropped), or our own code that may allocate (nested calls are ours,
 * not the program's). */
#define PL_IN_EVENT 1u
#define PL_IN_NESTED 2u
#define PL_IN_INTERNAL 0x100u

extern __thread struct pl_thread pl_self __attribute__((tls_model("initial-exec")));

/* Process-wide state. */
extern struct hs_shm_header *pl_shm;     /* NULL when not recording */
extern volatile int pl_active;           /* 0 before init, in an unfollowed child, or once the recorder is gone */
extern int pl_follow;                    /* children are recorded too (HS_OPT_FOLLOW) */
extern uint32_t pl_proc;                 /* this image's process table index */
extern uint32_t pl_pid;                  /* getpid(), kept current across fork */
extern uint32_t pl_root;                 /* root node of this address space */

/* bootstrap.c */
int pl_resolve_real(void);               /* 0 when every function is found */
int pl_in_bootstrap(void);
void *pl_boot_alloc(size_t size, size_t align);
int pl_is_boot_ptr(const void *p);
char *pl_boot_limit(void);              /* end of the arena: bounds a copy out of it */

/* init.c */
void pl_ensure_init(void);
/* A spin lock in the shared memory holding the holder's tid; taken over
 * from a holder that died. */
void pl_shm_lock(_Atomic uint32_t *lock);
void pl_shm_unlock(_Atomic uint32_t *lock);

/* proc.c: the process table. */
int pl_proc_attach(void);                /* a new image: program, exec or spawn */
int pl_proc_forked(void);                /* in a fork child: its own entry */
struct hs_proc *pl_proc_entry(uint32_t index);
/* Adds an image the library cannot enter (flags HS_PROCF_*): state PENDING
 * before an exec (then pl_proc_void if it fails), READY after a spawn.
 * Returns the index or -1. */
int pl_proc_untraced(uint32_t pid, uint32_t ppid, uint32_t how, uint32_t flags, uint32_t state, const char *exe,
		     char *const argv[]);
void pl_proc_void(int index);
/* A recorded parent reaped pid with wait status st. */
void pl_proc_status(uint32_t pid, int st);
uint32_t pl_proc_count(void);

/* exec.c: exec, spawn, system and wait in follow mode. */
void pl_exec_resolve(void);              /* every real function, before any vfork */
void pl_exec_init(const char *shm_value); /* the environment children get */

/* ring.c: n events are begun (busy set, time read, room made), filled
 * through pl_event_slot, then published together or aborted. */
int pl_ring_init(void);                  /* chooses the ring protocol: before the first event */
void pl_ring_forked(void);               /* and again in a fork child */
int pl_event_begin(struct pl_thread *t, unsigned n, uint64_t *time_out);
struct hs_event *pl_event_slot(struct pl_thread *t, unsigned i);
void pl_event_publish(struct pl_thread *t, unsigned n);
void pl_event_abort(struct pl_thread *t);
uint64_t pl_now(void);
int pl_clock_init(void);                 /* the recording's clock, from the header */
void pl_thread_release(void);            /* the thread is exiting */
void pl_rings_wait_unwinding(void);      /* no thread of this image inside libunwind */
int pl_recorder_alive(void);             /* not gone, not a zombie (a syscall or three) */

/* stack.c: captures the caller's stack and interns it; returns the leaf node id. */
uint32_t pl_stack_capture(struct pl_thread *t, uint16_t *flags);
/* The same from a signal handler that interrupted one of our events: no
 * libunwind, and the thread's cached stack is left alone. */
uint32_t pl_stack_capture_nested(uint16_t *flags);
int pl_stack_init(void);                 /* takes this image's root node; -1 when the trie is full */
void pl_stack_init_nested(void);         /* loads the unwinder of nested captures: from the constructor */
void pl_unwind_fork_prepare(void);       /* no thread inside libunwind across fork */
/* A thread enters libunwind, or parses unwind rules: fork waits for it.
 * Returns what to pass to pl_unwind_busy_leave. */
_Atomic unsigned *pl_unwind_busy_enter(struct hs_ring *r);
void pl_unwind_busy_leave(_Atomic unsigned *flag);
void pl_unwind_fork_done(int child);

/* unwind.c: the stack walk (a cache of per-address rules from .eh_frame).
 * pl_unwind_walk fills buf like unw_backtrace(buf, max) called from the same
 * frame, or returns -1: unwind with libunwind instead. */
enum { PL_UNWIND_FAST, PL_UNWIND_LIBUNWIND, PL_UNWIND_CHECK };
extern int pl_unwind_mode;               /* HEAPSCOPE_UNWIND=fast|libunwind|check */
void pl_unwind_init(void);
int pl_unwind_walk(struct pl_thread *t, void **buf, int max);
void pl_unwind_checked(int same, void *const *walked, int nw, void *const *lib, int nl);
void pl_unwind_forked(void);             /* in a fork child */
/* Around a munmap (or a mapping over) [addr, addr+len): code whose rules are
 * cached goes, so the cache is invalidated. end takes what begin returned. */
int pl_unwind_unmap_begin(uint64_t addr, uint64_t len);
void pl_unwind_unmap_end(int hit);

/* sample.c */
void pl_sample_allocator(struct pl_thread *t, uint64_t now);
void pl_snapshot_smaps(void);

/* modules.c */
void pl_modules_snapshot(void);
int pl_modules_contains(uint64_t ip);
int pl_in_self(uint64_t ip);
int pl_in_unwinder(uint64_t ip);         /* in libunwind's code (known once the modules were read) */
void pl_modules_init(void);
void pl_exe_init(void);                 /* reads pl_exe */
extern char pl_exe[512];                 /* /proc/self/exe of this image */
extern char pl_self_path[4096];          /* libheapscope.so as the loader named it */

/* Text without stdio or malloc (error paths, /proc paths): each writes at p
 * and returns the end; the caller sizes the buffer. */
static inline char *pl_put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static inline char *pl_put_u(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*p++ = tmp[--n];
	return p;
}

static inline char *pl_put_x(char *p, uint64_t v)
{
	char tmp[16];
	int n = 0;
	do
		tmp[n++] = "0123456789abcdef"[v & 15];
	while ((v >>= 4));
	p = pl_put_str(p, "0x");
	while (n)
		*p++ = tmp[--n];
	return p;
}

#endif
