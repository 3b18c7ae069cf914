/*
 * hs_clock.h: the one clock of a recording. Every process and thread of the
 * recorded tree and the recorder read time through hs_clock_now with the
 * same struct hs_clock (in the shared memory header), so all their times lie
 * on one time line and events of different threads and processes order
 * totally.
 *
 * That time line is CLOCK_MONOTONIC nanoseconds. Where the TSC is usable
 * (x86-64; /proc/cpuinfo says constant_tsc and nonstop_tsc, and the kernel
 * itself keeps time with it: its clocksource is "tsc", so it found the
 * counters of all CPUs in step), a reading is the TSC converted with the
 * recorder's calibration,
 *     ns = ns0 + (tsc - tsc0) * mult / 2^32,
 * which costs no call and no clock data page. Elsewhere it is
 * clock_gettime(CLOCK_MONOTONIC). The recorder decides once, before the
 * program starts; children map the same header and inherit the choice.
 *
 * The read is ordered: rdtscp (or lfence; rdtsc) does not sample the counter
 * before every earlier instruction has completed, so a reading taken after
 * a locked store (a fenced ring's `busy`, shm_layout.h) is later than that
 * store, and one after the real allocator's return later than its loads;
 * CLOCK_MONOTONIC's vDSO reads the TSC the same way. A reading that must
 * also precede later loads (the recorder's watermark T before it looks at
 * `busy`) is followed by hs_clock_fence().
 */
#ifndef HS_CLOCK_H
#define HS_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

enum hs_clock_kind {
	HS_CLOCK_MONOTONIC = 0,  /* clock_gettime(CLOCK_MONOTONIC) */
	HS_CLOCK_PENDING = 1,    /* TSC, calibration not finished: wait for one of the others */
	HS_CLOCK_RDTSCP = 2,     /* TSC read with rdtscp */
	HS_CLOCK_LFENCE = 3,     /* TSC read with lfence; rdtsc (no rdtscp) */
};

struct hs_clock {
	_Atomic uint32_t kind;   /* enum hs_clock_kind; stored last (release) */
	uint32_t pad;
	uint64_t mult;           /* ns per TSC tick, times 2^32 */
	uint64_t tsc0, ns0;      /* a TSC reading and CLOCK_MONOTONIC at that moment */
};

static inline uint64_t hs_clock_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#if defined(__x86_64__)
static inline uint64_t hs_rdtsc(unsigned kind)
{
	uint32_t lo, hi, aux;
	if (kind == HS_CLOCK_RDTSCP)
		__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux) : : "memory");
	else
		__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

/* TSC ticks to clock nanoseconds; a reading before tsc0 (none should be:
 * tsc0 was read before the program started) counts as tsc0. */
static inline uint64_t hs_clock_convert(const struct hs_clock *c, uint64_t tsc)
{
	uint64_t d = tsc > c->tsc0 ? tsc - c->tsc0 : 0;
	return c->ns0 + (uint64_t)(((unsigned __int128)d * c->mult) >> 32);
}
#endif

/* c->kind must be final (not PENDING): the library reads a copy taken once
 * calibration ended (pl_clock_init), the recorder its own. */
static inline uint64_t hs_clock_now(const struct hs_clock *c)
{
#if defined(__x86_64__)
	unsigned kind = atomic_load_explicit(&c->kind, memory_order_relaxed);
	if (kind >= HS_CLOCK_RDTSCP)
		return hs_clock_convert(c, hs_rdtsc(kind));
#else
	(void)c;
#endif
	return hs_clock_mono();
}

/* After a reading: later loads do not run before it (lfence, whatever the
 * clock: the vDSO's own read of the TSC needs it as much). */
static inline void hs_clock_fence(void)
{
#if defined(__x86_64__)
	__asm__ volatile("lfence" : : : "memory");
#endif
}

#endif
