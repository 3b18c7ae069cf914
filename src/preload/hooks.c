/*
 * hooks.c: the malloc family as the program sees it. Each hook forwards to
 * the real function and records what happened; it never changes the result,
 * the errno on success, or fails the call. Frees are time-stamped before the
 * real call and allocations after it, so when another thread gets the same
 * address back, its allocation is always later than this free.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "preload.h"

/* Until the real allocator is known, serve from the bootstrap arena. */
#define ENSURE_REAL(fn, fallback)                   \
	do {                                        \
		if (__builtin_expect(!pl_real.fn, 0)) { \
			if (!pl_in_bootstrap())     \
				pl_ensure_init();   \
			if (!pl_real.fn)            \
				return fallback;    \
		}                                   \
	} while (0)

static inline int tracking(const struct pl_thread *t)
{
	return pl_active && !t->in_hook;
}

/*
 * A call nested in one of our events comes from a signal handler: the real
 * functions the hooks call do not call the public ones (see reallocarray).
 * The ring is mid-event, so the nested event goes to the thread's second
 * ring: t->ring points there while it is recorded, and back at the first
 * one after, before the interrupted event goes on. Its stack is captured
 * without libunwind, which the interrupted event may be inside of
 * (stack.c). A call nested in that again is counted as dropped.
 */
static inline int nestable(const struct pl_thread *t)
{
	return pl_active && t->in_hook == PL_IN_EVENT;
}

static inline void nested_drop(const struct pl_thread *t, unsigned n)
{
	if (pl_active && t->in_hook == PL_IN_NESTED)
		atomic_fetch_add_explicit(&pl_shm->dropped, n, memory_order_relaxed);
}

static inline struct hs_ring *nested_enter(struct pl_thread *t)
{
	struct hs_ring *outer = t->ring;
	t->in_hook = PL_IN_NESTED;
	t->ring = t->ring2;
	return outer;
}

static inline void nested_leave(struct pl_thread *t, struct hs_ring *outer)
{
	t->ring2 = t->ring;
	t->ring = outer;
	t->in_hook = PL_IN_EVENT;
}

/* Requested size, and above it what the allocator's rounding added. */
static uint64_t pack_size(void *p, size_t size)
{
	size_t usable = malloc_usable_size(p);
	uint64_t slack = usable > size ? usable - size : 0;
	if (slack > HS_SLACK_MAX)
		slack = HS_SLACK_MAX;
	return ((uint64_t)size & HS_SIZE_MASK) | slack << HS_SIZE_BITS;
}

/* A stack for the event: a nested one is captured the signal-safe way. */
static inline uint32_t capture(struct pl_thread *t, uint16_t *flags)
{
	return t->in_hook == PL_IN_NESTED ? pl_stack_capture_nested(flags) : pl_stack_capture(t, flags);
}

static void record_alloc(struct pl_thread *t, unsigned kind, void *p, size_t size)
{
	int saved = errno;
	uint16_t flags = 0;
	uint64_t now;
	uint32_t stack = capture(t, &flags);
	if (pl_event_begin(t, 1, &now) == 0) {
		*pl_event_slot(t, 0) = (struct hs_event){ .time = now, .addr = (uintptr_t)p,
							 .size = pack_size(p, size), .stack = stack,
							 .kind = (uint16_t)kind, .flags = flags };
		pl_event_publish(t, 1);
		/* not in a signal handler: mallinfo2 takes the arena locks */
		if (t->in_hook == PL_IN_EVENT)
			pl_sample_allocator(t, now);
	}
	errno = saved;
}

/*
 * The real allocation runs inside the event: in_hook is set before the call.
 * A signal handler that allocates while the allocator holds its arena lock
 * (glibc's tcache lets such a call succeed) is then a nested event, which
 * never calls mallinfo2(): that would wait forever on the lock the
 * interrupted call holds. Returns whether this call owns the event.
 */
static inline int alloc_enter(struct pl_thread *t)
{
	if (!tracking(t))
		return 0;
	t->in_hook = PL_IN_EVENT;
	return 1;
}

static void *track_alloc(struct pl_thread *t, int entered, unsigned kind, void *p, size_t size)
{
	if (entered) {
		if (p)
			record_alloc(t, kind, p, size);
		t->in_hook = 0;
	} else if (p && nestable(t)) {
		struct hs_ring *outer = nested_enter(t);
		record_alloc(t, kind, p, size);
		nested_leave(t, outer);
	} else if (p) {
		nested_drop(t, 1);
	}
	return p;
}

/* The allocation `call` of `kind`, recorded as `size` bytes requested. */
#define TRACK_ALLOC(kind, call, size)                                  \
	({                                                             \
		struct pl_thread *t_ = &pl_self;                       \
		int entered_ = alloc_enter(t_);                        \
		void *p_ = (call);                                     \
		track_alloc(t_, entered_, (kind), p_, (size));         \
	})

/* The free event is stamped before the block goes back to the allocator. */
static void record_free(struct pl_thread *t, unsigned kind, void *p)
{
	uint64_t now;
	int saved = errno;
	if (pl_event_begin(t, 1, &now) == 0) {
		*pl_event_slot(t, 0) = (struct hs_event){ .time = now, .addr = (uintptr_t)p, .kind = (uint16_t)kind };
		pl_real.free(p);
		pl_event_publish(t, 1);
	} else {
		pl_real.free(p);
	}
	errno = saved;
}

static void track_free(unsigned kind, void *p)
{
	struct pl_thread *t = &pl_self;
	if (tracking(t)) {
		t->in_hook = PL_IN_EVENT;
		record_free(t, kind, p);
		t->in_hook = 0;
	} else if (nestable(t)) {
		struct hs_ring *outer = nested_enter(t);
		record_free(t, kind, p);
		nested_leave(t, outer);
	} else {
		nested_drop(t, 1);
		pl_real.free(p);
	}
}

PL_EXPORT void *malloc(size_t size)
{
	if (__builtin_expect(!pl_real.malloc, 0)) {
		if (!pl_in_bootstrap())
			pl_ensure_init();
		if (!pl_real.malloc)
			return pl_boot_alloc(size, 16);
	}
	return TRACK_ALLOC(HS_EV_MALLOC, pl_real.malloc(size), size);
}

PL_EXPORT void *calloc(size_t n, size_t size)
{
	if (__builtin_expect(!pl_real.calloc, 0)) {
		if (!pl_in_bootstrap())
			pl_ensure_init();
		if (!pl_real.calloc) {
			size_t total;
			if (__builtin_mul_overflow(n, size, &total))
				return NULL;
			return pl_boot_alloc(total, 16);
		}
	}
	return TRACK_ALLOC(HS_EV_CALLOC, pl_real.calloc(n, size), n * size);
}

PL_EXPORT void free(void *p)
{
	if (!p || pl_is_boot_ptr(p))
		return;
	ENSURE_REAL(free, );
	track_free(HS_EV_FREE, p);
}

PL_EXPORT void free_sized(void *p, size_t size)
{
	(void)size;
	if (!p || pl_is_boot_ptr(p))
		return;
	ENSURE_REAL(free, );
	track_free(HS_EV_FREE_SIZED, p);
}

PL_EXPORT void free_aligned_sized(void *p, size_t align, size_t size)
{
	(void)align;
	(void)size;
	if (!p || pl_is_boot_ptr(p))
		return;
	ENSURE_REAL(free, );
	track_free(HS_EV_FREE_ALIGNED_SIZED, p);
}

/* A bootstrap block cannot be resized in place: move it to the real heap. */
static void *realloc_boot(void *p, size_t size)
{
	void *q = pl_real.malloc ? malloc(size) : pl_boot_alloc(size, 16);
	if (q && p) {
		size_t room = (size_t)(pl_boot_limit() - (char *)p);
		memcpy(q, p, size < room ? size : room);
	}
	return q;
}

/*
 * realloc = one free and one allocation, even in place (valgrind's count).
 * Both events are reserved before the call, so the free is stamped before the
 * old block can be reused; a failed realloc changed nothing and is aborted.
 */
static void *record_realloc(struct pl_thread *t, unsigned kind, void *p, size_t size)
{
	uint64_t t_free, t_alloc;
	int saved = errno;
	uint16_t flags = 0;
	uint32_t stack = capture(t, &flags);
	if (pl_event_begin(t, 2, &t_free) != 0) {
		errno = saved;
		return pl_real.realloc(p, size);
	}
	errno = saved;
	void *q = pl_real.realloc(p, size);
	int err = errno;
	if (!q && size) {
		pl_event_abort(t); /* failed: the old block is untouched */
	} else {
		*pl_event_slot(t, 0) = (struct hs_event){ .time = t_free, .addr = (uintptr_t)p,
							 .kind = HS_EV_REALLOC_FREE };
		unsigned nev = 1;
		if (q) {
			t_alloc = pl_now();
			*pl_event_slot(t, 1) = (struct hs_event){ .time = t_alloc, .addr = (uintptr_t)q,
								 .size = pack_size(q, size),
								 .stack = stack, .kind = (uint16_t)kind,
								 .flags = flags };
			nev = 2;
		}
		pl_event_publish(t, nev);
	}
	errno = err;
	return q;
}

static void *track_realloc(unsigned kind, void *p, size_t size)
{
	struct pl_thread *t = &pl_self;
	if (!p) {
		return TRACK_ALLOC(kind, pl_real.realloc(p, size), size);
	}
	if (tracking(t)) {
		t->in_hook = PL_IN_EVENT;
		void *q = record_realloc(t, kind, p, size);
		t->in_hook = 0;
		return q;
	}
	if (nestable(t)) {
		struct hs_ring *outer = nested_enter(t);
		void *q = record_realloc(t, kind, p, size);
		nested_leave(t, outer);
		return q;
	}
	void *q = pl_real.realloc(p, size);
	if (q || !size)
		nested_drop(t, 1u + (q ? 1u : 0u));
	return q;
}

PL_EXPORT void *realloc(void *p, size_t size)
{
	if (pl_is_boot_ptr(p))
		return realloc_boot(p, size);
	ENSURE_REAL(realloc, pl_boot_alloc(size, 16));
	return track_realloc(HS_EV_REALLOC, p, size);
}

/* The overflow check here, then the real realloc: libc's reallocarray would
 * call realloc through its public symbol, into our hook again, nested in
 * this event like a signal handler's call. */
PL_EXPORT void *reallocarray(void *p, size_t n, size_t elem)
{
	size_t size;
	if (__builtin_mul_overflow(n, elem, &size)) {
		errno = ENOMEM;
		return NULL;
	}
	if (pl_is_boot_ptr(p))
		return realloc_boot(p, size);
	ENSURE_REAL(realloc, NULL);
	return track_realloc(HS_EV_REALLOCARRAY, p, size);
}

PL_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	ENSURE_REAL(posix_memalign, ENOMEM);
	int ret = 0;
	TRACK_ALLOC(HS_EV_POSIX_MEMALIGN, (ret = pl_real.posix_memalign(out, align, size)) == 0 ? *out : NULL, size);
	return ret;
}

PL_EXPORT void *aligned_alloc(size_t align, size_t size)
{
	ENSURE_REAL(memalign, pl_boot_alloc(size, align));
	return TRACK_ALLOC(HS_EV_ALIGNED_ALLOC,
			   pl_real.aligned_alloc ? pl_real.aligned_alloc(align, size) : pl_real.memalign(align, size), size);
}

PL_EXPORT void *memalign(size_t align, size_t size)
{
	ENSURE_REAL(memalign, pl_boot_alloc(size, align));
	return TRACK_ALLOC(HS_EV_MEMALIGN, pl_real.memalign(align, size), size);
}

PL_EXPORT void *valloc(size_t size)
{
	ENSURE_REAL(valloc, NULL);
	return TRACK_ALLOC(HS_EV_VALLOC, pl_real.valloc(size), size);
}

/* pvalloc rounds the request up to whole pages: that is what it asks for. */
PL_EXPORT void *pvalloc(size_t size)
{
	ENSURE_REAL(pvalloc, NULL);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t rounded = size ? (size + page - 1) & ~(page - 1) : page;
	return TRACK_ALLOC(HS_EV_PVALLOC, pl_real.pvalloc(size), rounded);
}
