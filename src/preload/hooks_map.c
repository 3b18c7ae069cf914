/*
 * hooks_map.c: mmap, munmap, mremap, brk and sbrk as the program calls them.
 * Each records one event and a continuation with the rest of its arguments.
 * glibc's malloc maps memory through internal calls that never reach these
 * hooks: what it holds is sampled with mallinfo2 instead (sample.c).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "preload.h"

static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static void *(*real_mremap)(void *, size_t, size_t, int, ...);
static int (*real_brk)(void *);
static void *(*real_sbrk)(intptr_t);

/* Resolved on first use: these can be called before our constructor. */
#define REAL(name) (real_##name ? real_##name : (real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name)))

/* Who called the hook: its return address (in a hook, not a helper). */
#define CALLER() ((uint64_t)(uintptr_t)__builtin_return_address(0))

/* caller: CALLER() of the hook. */
static void record_map(unsigned kind, uint64_t addr, uint64_t size, uint64_t old_addr, uint64_t old_size,
		       uint32_t prot, uint64_t flags, uint64_t caller)
{
	struct pl_thread *t = &pl_self;
	if (!pl_active)
		return;
	if (t->in_hook) {
		/* Nested in one of our events: libunwind mapping its cache is ours;
		 * anything else is a signal handler's call, lost and counted. */
		if ((t->in_hook == PL_IN_EVENT || t->in_hook == PL_IN_NESTED) && !pl_in_unwinder(caller))
			atomic_fetch_add_explicit(&pl_shm->dropped, 1, memory_order_relaxed);
		return;
	}
	/* libunwind unmaps a thread's trace cache when the thread exits,
	 * outside our events: its call, not the program's */
	if (pl_in_unwinder(caller))
		return;
	t->in_hook = PL_IN_EVENT;
	int saved = errno;
	uint16_t evflags = 0;
	uint64_t now;
	uint32_t stack = pl_stack_capture(t, &evflags);
	if (pl_event_begin(t, 2, &now) == 0) {
		*pl_event_slot(t, 0) = (struct hs_event){ .time = now, .addr = addr, .size = size, .stack = stack,
							 .kind = (uint16_t)kind, .flags = evflags };
		*pl_event_slot(t, 1) = (struct hs_event){ .time = flags, .addr = old_addr, .size = old_size,
							 .stack = prot, .kind = HS_EV_CONT };
		pl_event_publish(t, 2);
	}
	errno = saved;
	t->in_hook = 0;
}

PL_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!REAL(mmap)) {
		errno = ENOSYS;
		return MAP_FAILED;
	}
	/* a fixed mapping may replace code whose unwind rules are cached */
	int code = flags & MAP_FIXED ? pl_unwind_unmap_begin((uintptr_t)addr, len) : 0;
	void *p = real_mmap(addr, len, prot, flags, fd, off);
	pl_unwind_unmap_end(code);
	if (p != MAP_FAILED)
		record_map(HS_EV_MMAP, (uintptr_t)p, len, 0, fd >= 0 && !(flags & MAP_ANONYMOUS) ? (uint64_t)fd + 1 : 0,
			   (uint32_t)prot, (uint32_t)flags, CALLER());
	return p;
}

PL_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!REAL(mmap64)) {
		errno = ENOSYS;
		return MAP_FAILED;
	}
	int code = flags & MAP_FIXED ? pl_unwind_unmap_begin((uintptr_t)addr, len) : 0;
	void *p = real_mmap64(addr, len, prot, flags, fd, off);
	pl_unwind_unmap_end(code);
	if (p != MAP_FAILED)
		record_map(HS_EV_MMAP, (uintptr_t)p, len, 0, fd >= 0 && !(flags & MAP_ANONYMOUS) ? (uint64_t)fd + 1 : 0,
			   (uint32_t)prot, (uint32_t)flags, CALLER());
	return p;
}

PL_EXPORT int munmap(void *addr, size_t len)
{
	if (!REAL(munmap)) {
		errno = ENOSYS;
		return -1;
	}
	/* stamped after the call: a later mmap can only be given the range after it */
	int code = pl_unwind_unmap_begin((uintptr_t)addr, len);
	int ret = real_munmap(addr, len);
	pl_unwind_unmap_end(code);
	if (ret == 0)
		record_map(HS_EV_MUNMAP, (uintptr_t)addr, len, 0, 0, 0, 0, CALLER());
	return ret;
}

PL_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *fixed = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		fixed = va_arg(ap, void *);
		va_end(ap);
	}
	if (!REAL(mremap)) {
		errno = ENOSYS;
		return MAP_FAILED;
	}
	int code = pl_unwind_unmap_begin((uintptr_t)old, old_len);
	if (!code && (flags & MREMAP_FIXED))
		code = pl_unwind_unmap_begin((uintptr_t)fixed, new_len);
	void *p = real_mremap(old, old_len, new_len, flags, fixed);
	pl_unwind_unmap_end(code);
	if (p != MAP_FAILED)
		record_map(HS_EV_MREMAP, (uintptr_t)p, new_len, (uintptr_t)old, old_len, 0, (uint32_t)flags, CALLER());
	return p;
}

PL_EXPORT int brk(void *addr)
{
	if (!REAL(brk) || !REAL(sbrk)) {
		errno = ENOMEM;
		return -1;
	}
	void *before = real_sbrk(0);
	int ret = real_brk(addr);
	if (ret == 0)
		record_map(HS_EV_BRK, (uintptr_t)addr, 0, (uintptr_t)before, 0, 0, 0, CALLER());
	return ret;
}

PL_EXPORT void *sbrk(intptr_t incr)
{
	if (!REAL(sbrk)) {
		errno = ENOMEM;
		return (void *)-1;
	}
	void *before = real_sbrk(incr);
	if (before != (void *)-1 && incr)
		record_map(HS_EV_SBRK, (uintptr_t)before + (uintptr_t)incr, 0, (uintptr_t)before, 0, 0, 0, CALLER());
	return before;
}
