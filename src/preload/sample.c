/*
 * sample.c: what the allocator holds (glibc's mallinfo2), sampled from the
 * program's own threads at most once per interval when they allocate, and
 * /proc/self/smaps copied into the shared memory on the exit path. Both run
 * outside the allocator's locks: after the real call returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "preload.h"

#define SMAPS_WAIT_NS 200000000ull /* how long an exiting process waits for the area */

extern struct mallinfo2 mallinfo2(void) __attribute__((weak));

/* Clock ns of this process's next sample (each process has its
 * own allocator). */
static _Atomic uint64_t mallinfo_due;

/* now == 0: sample now whatever the interval (the exit path). */
void pl_sample_allocator(struct pl_thread *t, uint64_t now)
{
	uint64_t due = atomic_load_explicit(&mallinfo_due, memory_order_relaxed);
	if ((now && now < due) || !mallinfo2)
		return;
	if (!now)
		now = pl_now();
	/* one thread takes the turn; the others go on */
	if (!atomic_compare_exchange_strong(&mallinfo_due, &due, now + pl_shm->sample_ns))
		return;
	struct mallinfo2 mi = mallinfo2();
	uint64_t t_now;
	if (pl_event_begin(t, 2, &t_now) != 0)
		return;
	/* mallinfo2 walks every free chunk under the arena lock: with many
	 * blocks it costs milliseconds. Keep it under 1% of the run by waiting
	 * at least 100 times what this call took before the next one. */
	uint64_t cost = t_now > now ? t_now - now : 0;
	if (cost * 100 > pl_shm->sample_ns)
		atomic_store_explicit(&mallinfo_due, now + cost * 100, memory_order_relaxed);
	*pl_event_slot(t, 0) = (struct hs_event){ .time = t_now, .addr = mi.arena, .size = mi.hblkhd,
						 .stack = (uint32_t)mi.hblks, .kind = HS_EV_MALLINFO };
	*pl_event_slot(t, 1) = (struct hs_event){ .time = mi.keepcost, .addr = mi.uordblks, .size = mi.fordblks,
						 .stack = (uint32_t)mi.ordblks, .kind = HS_EV_CONT };
	pl_event_publish(t, 2);
}

/* Waits until the recorder has taken the previous snapshot out; 0 when the
 * area is free, -1 when it did not come in time (the recorder is gone). */
static int wait_area(void)
{
	uint64_t until = pl_now() + SMAPS_WAIT_NS;
	for (unsigned k = 0; atomic_load_explicit(&pl_shm->smaps_state, memory_order_acquire) != HS_SMAPS_FREE; k++) {
		if (pl_now() > until || ((k & 63) == 63 && !pl_recorder_alive()))
			return -1;
		struct timespec ts = { 0, 200000 };
		syscall(SYS_nanosleep, &ts, NULL);
	}
	return 0;
}

/* Copies smaps text with raw syscalls: no stdio, no malloc on the exit path.
 * One process at a time has the area (see shm_layout.h). */
void pl_snapshot_smaps(void)
{
	char *dst = HS_SHM_AT(pl_shm, pl_shm->smaps_off, char);
	int saved = errno;
	pl_shm_lock(&pl_shm->smaps_lock);
	if (wait_area() < 0)
		goto out;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	uint64_t len = 0;
	for (;;) {
		long n = syscall(SYS_read, fd, dst + len, (size_t)(HS_SMAPS_BYTES - len));
		if (n <= 0)
			break;
		len += (uint64_t)n;
		if (len == HS_SMAPS_BYTES)
			break;
	}
	syscall(SYS_close, fd);
	pl_shm->smaps_len = len;
	pl_shm->smaps_proc = pl_proc;
	pl_shm->smaps_time = pl_now();
	atomic_store_explicit(&pl_shm->smaps_state, HS_SMAPS_READY, memory_order_release);
out:
	pl_shm_unlock(&pl_shm->smaps_lock);
	errno = saved;
}
