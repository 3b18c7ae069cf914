/*
 * test_clock.c: the recording's clock (hs_clock.h, record_clock.c). With the
 * clock the recorder chooses (the calibrated TSC where it is usable) and with
 * CLOCK_MONOTONIC forced: a reading lies between two CLOCK_MONOTONIC
 * readings around it, readings never go back in a thread, and a reading
 * taken after seeing another thread's reading through memory is never
 * earlier than it, with the two threads on two CPUs (what keeps a block
 * freed in one thread and allocated in another in order). The library's
 * copy of the header converts as the recorder does. Bad modes are refused.
 *
 * Prints one line per check; the last line is "N passed, M failed".
 */
#include "record/record.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"

#define PINGS 200000

static const struct hs_clock *clock_under_test;
static _Atomic uint64_t last_reading;
static _Atomic int turn;
static uint64_t back_steps[2], back_in_thread[2];

static void pin(int cpu)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(n > 1 ? cpu % (int)n : 0, &set);
	sched_setaffinity(0, sizeof(set), &set); /* best effort: unpinned still tests */
}

/* Two threads take turns: read the other's last reading, read the clock,
 * compare, publish, hand over. */
static void *ping(void *arg)
{
	int me = (int)(intptr_t)arg;
	uint64_t mine = 0;
	pin(me);
	for (int i = 0; i < PINGS; i++) {
		while (atomic_load(&turn) != me)
			;
		uint64_t seen = atomic_load(&last_reading);
		uint64_t t = hs_clock_now(clock_under_test);
		if (t < seen)
			back_steps[me]++;
		if (t < mine)
			back_in_thread[me]++;
		mine = t;
		atomic_store(&last_reading, t);
		atomic_store(&turn, 1 - me);
	}
	return NULL;
}

static void check_clock(const char *name, const struct hs_clock *c)
{
	/* against CLOCK_MONOTONIC: a reading between two of its readings, the
	 * tightest pair of a few (a preempted try says nothing) */
	int64_t worst = INT64_MAX;
	for (int round = 0; round < 5; round++) {
		if (round) {
			struct timespec ts = { 0, 20000000 };
			nanosleep(&ts, NULL);
		}
		int64_t best = INT64_MAX;
		for (int k = 0; k < 20; k++) {
			uint64_t a = hs_clock_mono(), t = hs_clock_now(c), b = hs_clock_mono();
			int64_t off = t < a ? (int64_t)(a - t) : t > b ? (int64_t)(t - b) : 0;
			if (b - a < 20000 && off < best)
				best = off;
		}
		if (worst == INT64_MAX || best > worst)
			worst = best;
	}
	check(worst <= 2000, "%s: readings over 100 ms lie between CLOCK_MONOTONIC's around them (worst %" PRId64
	      " ns outside; at most 2000)", name, worst);

	clock_under_test = c;
	atomic_store(&last_reading, 0);
	atomic_store(&turn, 0);
	memset(back_steps, 0, sizeof(back_steps));
	memset(back_in_thread, 0, sizeof(back_in_thread));
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, ping, (void *)(intptr_t)i);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	check(back_steps[0] + back_steps[1] == 0,
	      "%s: %d readings on two CPUs, each after seeing the other's: %" PRIu64 " earlier than the one seen",
	      name, 2 * PINGS, back_steps[0] + back_steps[1]);
	check(back_in_thread[0] + back_in_thread[1] == 0, "%s: readings never go back in a thread (%" PRIu64 " did)",
	      name, back_in_thread[0] + back_in_thread[1]);
}

int main(void)
{
	struct hs_clock shared;

	memset(&shared, 0, sizeof(shared));
	check(rec_clock_start("bogus") == -1, "HEAPSCOPE_CLOCK=bogus is refused");
	check(rec_clock_start("monotonic") == 0, "HEAPSCOPE_CLOCK=monotonic is taken");
	rec_clock_share(&shared);
	check(atomic_load(&shared.kind) == HS_CLOCK_MONOTONIC, "HEAPSCOPE_CLOCK=monotonic: kind %u",
	      (unsigned)atomic_load(&shared.kind));
	check_clock("monotonic", &shared);

	memset(&shared, 0, sizeof(shared));
	check(rec_clock_start(NULL) == 0, "the default clock is chosen");
	rec_clock_share(&shared);
	unsigned kind = atomic_load(&shared.kind);
	if (kind == HS_CLOCK_MONOTONIC) {
		printf("(no usable TSC here: the default is CLOCK_MONOTONIC)\n");
		check(rec_clock_start("tsc") == -1, "HEAPSCOPE_CLOCK=tsc is refused where the TSC cannot be used");
		return check_done();
	}
	check(kind == HS_CLOCK_PENDING, "TSC: pending until calibrated (kind %u)", kind);
	uint64_t t0 = hs_clock_mono();
	rec_clock_finish(&shared);
	uint64_t took = hs_clock_mono() - t0;
	kind = atomic_load(&shared.kind);
	check(kind == HS_CLOCK_RDTSCP || kind == HS_CLOCK_LFENCE, "TSC: calibrated (kind %u)", kind);
	check(took < 50000000, "the calibration took %" PRIu64 " us (a few ms at most)", took / 1000);
	check(shared.mult > 0 && shared.ns0 >= t0, "mult %" PRIu64 " (ns per tick x 2^32), ns0 after the start",
	      shared.mult);
	check_clock("TSC", &shared);
	/* the recorder's own copy and the shared one are one conversion */
	uint64_t a = rec_clock_now(), b = hs_clock_now(&shared), c = rec_clock_now();
	check(a <= b && b <= c, "the recorder's reading and the header's agree (%" PRIu64 " <= %" PRIu64 " <= %" PRIu64 ")",
	      a, b, c);
	return check_done();
}
