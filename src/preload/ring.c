/*
 * ring.c: each thread owns one ring in the shared memory and appends fixed
 * size events to it; the recorder drains it. No syscall, lock or malloc per
 * event: a plain store of `busy` (a seq_cst one where the process could not
 * register with membarrier: see the ring protocol in shm_layout.h), the
 * clock, a copy, a release store. The clock is the recording's (hs_clock.h):
 * the TSC, where the recorder calibrated it.
 * The functions write to t->ring; for an event nested in another (a signal
 * handler's), hooks.c points it at the thread's second ring meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "preload.h"

__thread struct pl_thread pl_self __attribute__((tls_model("initial-exec")));

static pthread_key_t exit_key;
static _Atomic unsigned rings_hi; /* rings this process looked at to claim one: their pages are resident */
#define CLAIM_RETRY 64 /* events on the shared ring between two claims */
static struct hs_clock clock_copy; /* the header's, final: read without a trip to the shared page */
static int light; /* this process writes `busy` without a barrier: the recorder's membarrier orders it */

uint64_t pl_now(void)
{
	return hs_clock_now(&clock_copy);
}

/* The recorder finishes calibrating the TSC while the program loads: wait
 * for it (a few ms at most), unless the recorder is gone. */
int pl_clock_init(void)
{
	int saved = errno;
	unsigned kind;
	for (unsigned spins = 0;
	     (kind = atomic_load_explicit(&pl_shm->clock.kind, memory_order_acquire)) == HS_CLOCK_PENDING; spins++) {
		if ((spins & 255) == 255 && !pl_recorder_alive()) {
			errno = saved;
			return -1;
		}
		struct timespec ts = { 0, 20000 };
		syscall(SYS_nanosleep, &ts, NULL);
	}
	errno = saved;
	clock_copy.mult = pl_shm->clock.mult;
	clock_copy.tsc0 = pl_shm->clock.tsc0;
	clock_copy.ns0 = pl_shm->clock.ns0;
	atomic_store_explicit(&clock_copy.kind, kind, memory_order_relaxed);
	return 0;
}

/* Called by pthread at thread exit: the ring goes back to the recorder. */
static void on_thread_exit(void *arg)
{
	(void)arg;
	pl_thread_release();
}

/* Both rings go back; each is dropped from the thread before it is closed,
 * so that a signal handler running meanwhile claims a new one rather than
 * write to a closed ring. */
void pl_thread_release(void)
{
	struct pl_thread *t = &pl_self;
	struct hs_ring *r = t->ring, *r2 = t->ring2;
	t->ring = NULL;
	t->ring2 = NULL;
	if (r)
		atomic_store_explicit(&r->state, HS_RING_CLOSED, memory_order_release);
	if (r2)
		atomic_store_explicit(&r2->state, HS_RING_CLOSED, memory_order_release);
	t->depth = 0;
}

/* Light or fenced, decided before the process's first event and counted in
 * the header, where the recorder sees it. A fork child inherits its parent's
 * registration; registering again costs a syscall and makes sure of it. */
static void choose_protocol(void)
{
	int saved = errno;
	light = !(pl_shm->options & HS_OPT_RING_FENCE) &&
		syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
	errno = saved;
	atomic_fetch_add(light ? &pl_shm->ring_light : &pl_shm->ring_fenced, 1);
}

int pl_ring_init(void)
{
	choose_protocol();
	return pthread_key_create(&exit_key, on_thread_exit);
}

void pl_ring_forked(void)
{
	choose_protocol();
}

/* busy before the clock (see the ring protocol in shm_layout.h): light, the
 * store only has to come first in program order; fenced, it must be visible
 * before the clock is read. */
static inline void busy_begin(struct hs_ring *r)
{
	if (__builtin_expect(light, 1)) {
		atomic_store_explicit(&r->busy, 1, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		atomic_store_explicit(&r->busy, 1, memory_order_seq_cst);
	}
}

/* The thread's serial number, taken before its first claim. A CAS on the
 * thread's own field: a signal handler's nested claim may take one first,
 * and then both rings must carry the same. */
static uint32_t thread_serial(struct pl_thread *t)
{
	if (!t->serial) {
		uint32_t none = 0, s = atomic_fetch_add_explicit(&pl_shm->threads, 1, memory_order_relaxed) + 1;
		t->tid = (uint32_t)syscall(SYS_gettid);
		atomic_compare_exchange_strong((_Atomic uint32_t *)&t->serial, &none, s);
	}
	return t->serial;
}

static struct hs_ring *claim_once(uint32_t serial, int *closed)
{
	struct hs_ring *rings = HS_SHM_AT(pl_shm, pl_shm->rings_off, struct hs_ring);
	*closed = 0;
	for (unsigned i = 0; i < HS_MAX_RINGS; i++) {
		struct hs_ring *r = &rings[i];
		uint32_t expect = HS_RING_FREE, state = atomic_load_explicit(&r->state, memory_order_relaxed);
		if (state == HS_RING_CLOSED)
			(*closed)++;
		if (state != HS_RING_FREE ||
		    !atomic_compare_exchange_strong(&r->state, &expect, HS_RING_OWNED))
			continue;
		r->tid = pl_self.tid;
		r->pid = pl_pid;
		r->proc = pl_proc;
		r->serial = serial;
		atomic_store_explicit(&r->unwinding, 0, memory_order_relaxed); /* a thread that died inside */
		unsigned hi = atomic_load_explicit(&rings_hi, memory_order_relaxed);
		while (hi <= i && !atomic_compare_exchange_weak(&rings_hi, &hi, i + 1))
			;
		/* gen is bumped before any event of this thread is published */
		atomic_fetch_add_explicit(&r->gen, 1, memory_order_release);
		/* keys below PTHREAD_KEY_2NDLEVEL_SIZE live in the thread: no malloc */
		pthread_setspecific(exit_key, r);
		return r;
	}
	return NULL;
}

/* No free ring: when some belong to threads that have exited, the recorder
 * frees them on its next round, so wait for that rather than lose events.
 * When every ring is owned by a live thread, NULL: the shared ring then. */
static struct hs_ring *claim(struct pl_thread *t)
{
	int closed;
	uint32_t serial = thread_serial(t);
	for (unsigned spins = 0;; spins++) {
		struct hs_ring *r = claim_once(serial, &closed);
		if (r || !closed)
			return r;
		if ((spins & 255) == 255 && !pl_recorder_alive()) {
			pl_active = 0;
			return NULL;
		}
		struct timespec ts = { 0, 100000 };
		int saved = errno;
		syscall(SYS_nanosleep, &ts, NULL);
		errno = saved;
	}
}

/* The recorder is gone when its pid no longer exists, or is a zombie (dead,
 * not yet reaped by whoever started it): stop recording rather than wait
 * forever. Only asked while a ring is full. errno is the program's: keep it. */
int pl_recorder_alive(void)
{
	int saved = errno, alive = 1;
	if (syscall(SYS_kill, pl_shm->recorder_pid, 0) < 0) {
		alive = errno != ESRCH;
	} else {
		char path[40], buf[512];
		*pl_put_str(pl_put_u(pl_put_str(path, "/proc/"), (uint32_t)pl_shm->recorder_pid), "/stat") = 0;
		int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
		long got = fd < 0 ? -1 : syscall(SYS_read, fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			syscall(SYS_close, fd);
		if (got > 0) {
			buf[got] = 0;
			/* the state follows the last ')': the name may hold any */
			char *p = strrchr(buf, ')');
			alive = !p || !p[1] || (p[2] != 'Z' && p[2] != 'X');
		}
	}
	errno = saved;
	return alive;
}

/* The ring is full: wait for the recorder to drain it; events are never
 * dropped while the recorder lives. Raw nanosleep: not a cancellation point. */
static int wait_for_room(struct hs_ring *r, uint64_t head, unsigned n)
{
	for (unsigned spins = 0;; spins++) {
		if (head + n - atomic_load_explicit(&r->tail, memory_order_acquire) <= HS_RING_EVENTS)
			return 0;
		if ((spins & 1023) == 1023 && !pl_recorder_alive()) {
			pl_active = 0;
			return -1;
		}
		if (spins < 64)
			continue;
		struct timespec ts = { 0, 50000 };
		int saved = errno;
		syscall(SYS_nanosleep, &ts, NULL);
		errno = saved;
	}
}

/* Without a ring (more threads alive than rings), the thread writes to the
 * shared one, and claims (a scan of every ring) only every CLAIM_RETRY
 * calls. */
static struct hs_ring *ring_of(struct pl_thread *t)
{
	if (!t->ring) {
		if (t->claim_wait) {
			t->claim_wait--;
			return NULL;
		}
		t->ring = claim(t);
		if (!t->ring)
			t->claim_wait = CLAIM_RETRY - 1;
	}
	return t->ring;
}

/* Waits until no thread of this image is inside libunwind (the caller has
 * stopped new ones from entering; see stack.c). Its flag is read first: a
 * thread's ring was claimed before it was set. */
void pl_rings_wait_unwinding(void)
{
	struct hs_ring *rings = HS_SHM_AT(pl_shm, pl_shm->rings_off, struct hs_ring);
	unsigned hi = atomic_load(&rings_hi);
	for (unsigned i = 0; i < hi; i++) {
		struct hs_ring *r = &rings[i];
		while (atomic_load(&r->unwinding) && atomic_load_explicit(&r->state, memory_order_relaxed) == HS_RING_OWNED &&
		       r->pid == pl_pid && r->proc == pl_proc)
			sched_yield();
	}
}

/* The shared ring's lock is released, and the thread has no ring again. */
static void shared_end(struct pl_thread *t)
{
	t->ring = NULL;
	pl_shm_unlock(&pl_shm->shared_lock);
	t->shared = 0;
}

/* The event on r ends: the lock goes with it if r is the shared ring. Not
 * when t->shared is the interrupted event's: a signal handler's event on
 * the thread's second ring would release a lock its thread holds, or is
 * about to take and then never give back. */
static inline void shared_end_of(struct pl_thread *t, const struct hs_ring *r)
{
	if (__builtin_expect(t->shared, 0) &&
	    r == &HS_SHM_AT(pl_shm, pl_shm->rings_off, struct hs_ring)[HS_SHARED_RING])
		shared_end(t);
}

/*
 * More threads alive than rings: this one writes to the shared ring under
 * its lock, its events after a marker naming it (see shm_layout.h). Only
 * threads without a ring come here. A signal handler of a thread holding
 * the lock, or taking it, finds t->shared set: its events are dropped and
 * counted rather than wait for their own thread.
 */
static int shared_begin(struct pl_thread *t, unsigned n, uint64_t *time_out)
{
	if (t->shared || !pl_active) {
		atomic_fetch_add_explicit(&pl_shm->dropped, n, memory_order_relaxed);
		return -1;
	}
	uint32_t serial = thread_serial(t);
	t->shared = 1;
	pl_shm_lock(&pl_shm->shared_lock);
	struct hs_ring *r = &HS_SHM_AT(pl_shm, pl_shm->rings_off, struct hs_ring)[HS_SHARED_RING];
	t->ring = r;
	busy_begin(r);
	*time_out = pl_now();
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	if (head + n + 1 - atomic_load_explicit(&r->tail, memory_order_acquire) > HS_RING_EVENTS &&
	    wait_for_room(r, head, n + 1) < 0) {
		atomic_store_explicit(&r->busy, 0, memory_order_release);
		shared_end(t);
		atomic_fetch_add_explicit(&pl_shm->dropped, n, memory_order_relaxed);
		return -1;
	}
	r->ev[head % HS_RING_EVENTS] = (struct hs_event){ .time = *time_out, .addr = serial,
							  .size = t->tid | (uint64_t)pl_pid << 32,
							  .stack = pl_proc, .kind = HS_EV_THREAD };
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return 0;
}

int pl_event_begin(struct pl_thread *t, unsigned n, uint64_t *time_out)
{
	struct hs_ring *r = ring_of(t);
	if (!r)
		return shared_begin(t, n, time_out);
	busy_begin(r);
	*time_out = pl_now();
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	if (head + n - atomic_load_explicit(&r->tail, memory_order_acquire) > HS_RING_EVENTS &&
	    wait_for_room(r, head, n) < 0) {
		atomic_store_explicit(&r->busy, 0, memory_order_release);
		atomic_fetch_add_explicit(&pl_shm->dropped, n, memory_order_relaxed);
		return -1;
	}
	return 0;
}

struct hs_event *pl_event_slot(struct pl_thread *t, unsigned i)
{
	struct hs_ring *r = t->ring;
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	return &r->ev[(head + i) % HS_RING_EVENTS];
}

void pl_event_publish(struct pl_thread *t, unsigned n)
{
	struct hs_ring *r = t->ring;
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	atomic_store_explicit(&r->head, head + n, memory_order_release);
	atomic_store_explicit(&r->busy, 0, memory_order_release);
	shared_end_of(t, r);
}

void pl_event_abort(struct pl_thread *t)
{
	atomic_store_explicit(&t->ring->busy, 0, memory_order_release);
	shared_end_of(t, t->ring);
}
