/*
 * sample.c: what the allocator holds (glibc's mallinfo2), sampled from the
 * program's own threads at most once per interval when they allocate, and
 * /proc/self/smaps copied into the shared memory on the exit path. Both run
 * outside the allocator's locks: after the real call returned.
 */
#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

extern struct mallinfo2 mallinfo2(void) __attribute__((weak));

void pl_sample_allocator(struct pl_thread *t, uint64_t now)
{
	uint64_t due = atomic_load_explicit(&pl_shm->mallinfo_due, memory_order_relaxed);
	if (now < due || !mallinfo2)
		return;
	/* one thread takes the turn; the others go on */
	if (!atomic_compare_exchange_strong(&pl_shm->mallinfo_due, &due, now + pl_shm->sample_ns))
		return;
	struct mallinfo2 mi = mallinfo2();
	uint64_t t_now;
	if (pl_event_begin(t, 2, &t_now) != 0)
		return;
	*pl_event_slot(t, 0) = (struct hs_event){ .time = t_now, .addr = mi.arena, .size = mi.hblkhd,
						 .stack = (uint32_t)mi.hblks, .kind = HS_EV_MALLINFO };
	*pl_event_slot(t, 1) = (struct hs_event){ .time = mi.keepcost, .addr = mi.uordblks, .size = mi.fordblks,
						 .stack = (uint32_t)mi.ordblks, .kind = HS_EV_CONT };
	pl_event_publish(t, 2);
}

/* Copies smaps text with raw syscalls: no stdio, no malloc on the exit path. */
void pl_snapshot_smaps(void)
{
	char *dst = HS_SHM_AT(pl_shm, pl_shm->smaps_off, char);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
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
	atomic_store_explicit(&pl_shm->smaps_len, len, memory_order_release);
}
