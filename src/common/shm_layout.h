/*
 * shm_layout.h: the memory shared between libheapscope.so (in the target) and
 * `heapscope record` (the recorder). This is the whole contract between them.
 *
 * The recorder creates a memfd, sizes it with ftruncate (sparse: only touched
 * pages cost memory), fills in the header and keeps the fd open. It names it
 * in HEAPSCOPE_SHM=<recorder pid>:<fd>:<nonce>; the library opens
 * /proc/<recorder pid>/fd/<fd> (allowed for a process of the same user),
 * checks the header, maps it MAP_SHARED and closes its fd at once, so the
 * program's own fd table is never touched. Every process of the recorded tree
 * (forks, exec'd images, spawned children) maps the same memory: one stack
 * trie, one module log, one process table, one ring per thread.
 * Because events live in shared memory, whatever a process wrote is still
 * readable by the recorder after it crashes or is killed.
 *
 * Sections, at the offsets named in the header:
 *   procs    the process table: one entry per process image (appended)
 *   modules  the loaded objects of every address space, an append-only log
 *   nodes    the stack trie: node id -> (parent id, instruction pointer),
 *            appended lock-free by any thread (id from an atomic counter)
 *   hash     open-addressing index (parent, ip) -> node id, for interning
 *   rings    one single-producer/single-consumer ring of fixed-size events per
 *            live thread (claimed on a thread's first event, recycled after
 *            exit), and a second one for a thread whose signal handler
 *            allocated while it was recording an event; after the
 *            HS_MAX_RINGS of them, one ring shared under a lock by the
 *            threads that found none free
 *   smaps    /proc/self/smaps of one exiting process at a time (text)
 *
 * Address spaces: a stack node means something only in the address space
 * that interned it. Each image (the program at start, and each exec) takes
 * one root node (ip 0, parent 0, never interned) when it attaches and hangs
 * its stacks under it; a fork child keeps its parent's root (same layout,
 * same code). A node's space is its root; modules are logged per space.
 */
#ifndef HS_SHM_LAYOUT_H
#define HS_SHM_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include "hs_clock.h"

#define HS_SHM_MAGIC 0x314d4853u /* "HSM1" */
#define HS_SHM_VERSION 8u
#define HS_SHM_ENV "HEAPSCOPE_SHM"   /* <recorder pid>:<fd>:<nonce> */

#define HS_RING_EVENTS (1u << 15)  /* 32768 events x 32 B = 1 MiB per ring */
#define HS_MAX_RINGS 1024u           /* rings of their own: threads alive at once */
#define HS_SHARED_RING HS_MAX_RINGS /* index of the ring shared by the threads beyond them */
#define HS_MAX_NODES (1u << 21)    /* stack trie nodes; id 0 is "no stack" */
#define HS_HASH_SLOTS (1u << 22)   /* power of two, 2x nodes: load <= 0.5 */
#define HS_MAX_MODULES 8192u      /* module log entries, all spaces together */
#define HS_MAX_PROCS 4096u        /* process table entries (images) */
#define HS_MAX_DEPTH 256           /* frames captured per event */
#define HS_SMAPS_BYTES (16u << 20) /* room for one exit snapshot of smaps */

/* Event kinds in a ring. Allocation kinds carry size+addr, free kinds addr. */
enum hs_ev_kind {
	HS_EV_NONE = 0,
	/* allocations: returned memory */
	HS_EV_MALLOC = 1,
	HS_EV_CALLOC = 2,
	HS_EV_REALLOC = 3,          /* new block of a realloc (also realloc(NULL,n)) */
	HS_EV_REALLOCARRAY = 4,
	HS_EV_POSIX_MEMALIGN = 5,
	HS_EV_ALIGNED_ALLOC = 6,
	HS_EV_MEMALIGN = 7,
	HS_EV_VALLOC = 8,
	HS_EV_PVALLOC = 9,
	/* frees: released memory */
	HS_EV_FREE = 32,
	HS_EV_REALLOC_FREE = 33,    /* old block of a realloc, recorded before the call */
	HS_EV_FREE_SIZED = 34,
	HS_EV_FREE_ALIGNED_SIZED = 35,
	/* markers */
	HS_EV_EXIT = 64,            /* library destructor ran (after __libc_freeres): leaks counted here */
	HS_EV_THREAD = 65,          /* shared ring only: the events after it are this thread's;
				       addr = serial, size = tid | pid << 32, stack = proc */
	/* mapping calls the program made: addr/size as the result; one HS_EV_CONT
	 * follows with time = flags, addr = old address or break, size = old
	 * length or fd + 1, stack = prot */
	HS_EV_MMAP = 80,
	HS_EV_MUNMAP = 81,
	HS_EV_MREMAP = 82,
	HS_EV_BRK = 83,
	HS_EV_SBRK = 84,
	/* mallinfo2(): addr = arena, size = hblkhd, stack = hblks; one HS_EV_CONT
	 * follows with time = keepcost, addr = uordblks, size = fordblks, stack = ordblks */
	HS_EV_MALLINFO = 90,
	/* more fields of the event before it, published with it; its time field
	 * is payload, not a time */
	HS_EV_CONT = 100,
};

static inline int hs_ev_has_cont(unsigned k) { return (k >= HS_EV_MMAP && k <= HS_EV_SBRK) || k == HS_EV_MALLINFO; }

static inline int hs_ev_is_alloc(unsigned k) { return k >= 1 && k < 32; }
static inline int hs_ev_is_free(unsigned k) { return k >= 32 && k < 64; }

/* One event: fixed size so the hot path does no encoding. */
struct hs_event {
	uint64_t time;   /* ns on the recording's clock (hs_clock.h) */
	uint64_t addr;
	uint64_t size;   /* allocations: requested bytes in the low HS_SIZE_BITS,
			    usable - requested (malloc_usable_size) above, saturated */
	uint32_t stack;  /* leaf node id of the allocating stack, 0 = none */
	uint16_t kind;   /* enum hs_ev_kind */
	uint16_t flags;  /* HS_EVF_* */
};

#define HS_SIZE_BITS 48
#define HS_SIZE_MASK ((1ull << HS_SIZE_BITS) - 1)
#define HS_SLACK_MAX 0xffffull

#define HS_EVF_TRUNCATED 1u /* stack deeper than HS_MAX_DEPTH or trie full */

enum hs_ring_state { HS_RING_FREE = 0, HS_RING_OWNED = 1, HS_RING_CLOSED = 2 };

/*
 * Ring protocol (producer = the owning thread, consumer = the recorder):
 *   producer: store busy=1, read clock (hs_clock.h), write ev[head % N],
 *             store head+1 (release), store busy=0 (release).
 *             If head - tail == N it waits for the consumer (never drops),
 *             unless the recorder has gone, then it stops recording.
 *   consumer: read clock T (then hs_clock_fence, seq_cst fence), and when
 *             ring_light > 0, membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED);
 *             load busy, load head (acquire), copy events, store tail
 *             (release). A round without the membarrier (it interrupts
 *             the target: one every few ms) keeps the last watermark.
 * Watermark: when the consumer does not see a producer's busy=1 (or its
 * claim of the ring), that store and every later clock read of the thread
 * come after T: its events have time >= T. A busy ring's next event has
 * time >= its last published one. The recorder merges rings in time order
 * up to that watermark. Each process stores busy=1 in one of two ways,
 * chosen when it attaches (and in a fork child) and counted in the header
 * before its first event:
 *   light (ring_light): the process registered with
 *     MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED; busy=1 is a plain store,
 *     kept before the clock read by a compiler barrier only. The consumer's
 *     membarrier returns once each thread of every registered process has
 *     been interrupted (IPI) at an instruction boundary B after the call
 *     began, so after T, or was off its CPU: switched out before and in
 *     after that moment. The full barrier at B makes every store before B
 *     visible to the consumer's loads that follow the call; a store it does
 *     not see comes after B. The instructions after B, the clock read
 *     included, execute after B: an interrupt or a switch discards what
 *     the CPU ran of them ahead of the boundary. So the TSC (rdtscp, or
 *     lfence; rdtsc) reads a later count than the consumer's T, on any
 *     CPU (the counters are in step, hs_clock.h), and clock_gettime
 *     (vDSO: the same TSC read, or a syscall) a later CLOCK_MONOTONIC.
 *   fenced (ring_fenced): busy=1 is stored seq_cst (xchg: a full barrier),
 *     and the ordered clock read waits for it to complete; the consumer's
 *     fence after T orders its load of busy. Used where the recorder sets
 *     HS_OPT_RING_FENCE (HEAPSCOPE_RING=fence, or it cannot call
 *     membarrier) or where the process's registration failed (an older
 *     kernel, seccomp).
 * A process counted in ring_light is counted (seq_cst) before its first
 * event: a consumer that loads 0 after its fence sees none of its stores,
 * so they come after T as in the fenced case.
 * Claim: a thread CASes a FREE ring to OWNED, sets tid, pid, proc, serial
 * and unwinding = 0, increments gen (release) before publishing any event.
 * The consumer
 * loads head (acquire) and then gen: events it sees belong to that gen's
 * thread. At thread exit the owner stores CLOSED; the recorder drains a
 * CLOSED ring and stores FREE. A ring whose thread died without closing it
 * (killed, or its image replaced by exec) is drained and freed by the
 * recorder. A realloc publishes two events (free, then allocation) at once.
 *
 * Nested events: a signal handler that allocates while its thread is between
 * busy=1 and busy=0 cannot write to that ring (one event at a time). Its
 * event goes to the thread's second ring, claimed the same way the first
 * time it is needed and closed at thread exit like the first. Each ring keeps
 * the protocol above on its own, so the recorder merges the two by time like
 * any others. A thread's rings carry the same serial (a number the thread
 * takes from the header's threads counter before its first claim): the
 * recorder knows its events by it, whatever ring they came from. A handler
 * that allocates during a nested event (a third level) is counted dropped.
 *
 * The shared ring (index HS_SHARED_RING, never claimed): a thread that finds
 * no ring free (more than HS_MAX_RINGS threads alive) takes shared_lock,
 * then follows the producer protocol above with one more event first, an
 * HS_EV_THREAD naming it, published at once; it publishes its events and
 * unlocks. Within the lock it is the ring's one producer, so the protocol
 * and the time order hold as for any ring. Such a thread tries to claim a
 * ring of its own again every so many events. A signal handler of a
 * thread that holds or is taking the lock has its events counted dropped
 * (it cannot wait for its own thread). The lock lives in this memory: after
 * a fork its holder, in the parent, still releases it; a holder that was
 * killed is taken over (see the locks below).
 */
struct hs_ring {
	_Atomic uint32_t state;
	uint32_t tid;            /* kernel thread id of the owner */
	_Atomic uint32_t gen;    /* bumped at every claim: a new thread */
	_Atomic uint32_t busy;
	_Atomic uint64_t head;   /* events published (producer) */
	uint32_t pid;            /* its process (thread group) id */
	uint32_t proc;           /* its process table index */
	uint32_t serial;         /* its thread, numbered across the whole tree (1, 2, ...) */
	_Atomic uint32_t unwinding; /* the owner is inside libunwind (its own process
				       reads it before a fork; not the recorder) */
	char pad0[24];
	_Atomic uint64_t tail;   /* events consumed (recorder) */
	char pad1[56];
	struct hs_event ev[HS_RING_EVENTS];
};

/* A stack trie node. ready is set (release) after ip/parent are written. */
struct hs_node {
	uint64_t ip;             /* return address (as captured, not adjusted) */
	uint32_t parent;         /* 0 = outermost frame */
	_Atomic uint32_t ready;
};

/* One entry of the module log: an object loaded in one address space. An
 * image appends what dl_iterate_phdr lists at attach, and again what is new
 * whenever a stack holds an address outside its known objects (dlopen). */
struct hs_module {
	uint64_t bias;           /* load bias (dlpi_addr) */
	uint64_t start, end;     /* extent of PT_LOAD segments, absolute */
	uint32_t space;          /* root node id of the address space */
	uint32_t build_id_len;
	uint8_t build_id[32];
	char path[480];          /* the main program: its /proc/self/exe */
};

/* How a process image came to be recorded. */
enum hs_proc_how {
	HS_PROC_ROOT = 0,        /* the program the recorder started */
	HS_PROC_FORK = 1,        /* fork (pthread_atfork child handler): shares its parent's space */
	HS_PROC_EXEC = 2,        /* exec by an image of the same pid: replaces it */
	HS_PROC_SPAWN = 3,       /* a new pid that exec'd at once: posix_spawn, vfork, system() */
};

enum hs_proc_state {
	HS_PROCS_EMPTY = 0,      /* index taken, entry being written */
	HS_PROCS_RESERVED = 1,   /* entry 0 before the program attached (the recorder's) */
	HS_PROCS_READY = 2,      /* published */
	HS_PROCS_PENDING = 3,    /* an exec the library could not follow, before the call */
	HS_PROCS_VOID = 4,       /* that exec failed: nothing happened */
};

/* HS_PROCF_*: why a process is in the table without being recorded. */
#define HS_PROCF_UNTRACED 1u    /* runs without the library: nothing recorded */
#define HS_PROCF_STATIC 2u      /* its program is statically linked */
#define HS_PROCF_SETID 4u       /* set-user/group-id: the loader ignores LD_PRELOAD */
#define HS_PROCF_ARGV_CUT 8u    /* cmdline did not fit */

/*
 * One process image. Appended (index from nprocs) and published by storing
 * state READY (release) last; entry 0 is the program's, reserved by the
 * recorder and completed by the program when it attaches. The exit status is
 * filled in by a recorded parent that reaped the process (wait hooks).
 */
struct hs_proc {
	_Atomic uint32_t state;  /* enum hs_proc_state */
	uint32_t pid, ppid;
	uint32_t parent;         /* table index of the parent image + 1; 0 = none recorded */
	uint32_t how;            /* enum hs_proc_how */
	uint32_t flags;          /* HS_PROCF_* */
	uint32_t space;          /* root node id of its address space */
	uint32_t cmdline_len;    /* bytes of cmdline: NUL-separated arguments */
	uint64_t start;          /* clock ns (hs_clock.h) when it attached */
	uint64_t starttime;      /* /proc/PID/stat field 22: tells a reused pid apart */
	_Atomic uint32_t wstatus_set;  /* 1: wstatus holds what the parent's wait returned */
	int32_t wstatus;
	char exe[512];           /* /proc/self/exe */
	char cmdline[1024];      /* /proc/self/cmdline, cut at the end */
};

/*
 * Locks in the shared memory hold the kernel thread id of their holder, so a
 * waiter can take over the lock of a thread that was killed while holding it.
 *
 * The smaps area holds one exiting process's /proc/self/smaps at a time: the
 * library takes smaps_lock, waits (briefly) for smaps_state FREE, writes the
 * text, smaps_len, smaps_proc and smaps_time, stores smaps_state READY
 * (release) and unlocks; the recorder copies it out and stores FREE.
 */
enum hs_smaps_state { HS_SMAPS_FREE = 0, HS_SMAPS_READY = 1 };

struct hs_shm_header {
	uint32_t magic, version;
	uint64_t total_size;
	uint64_t procs_off, modules_off, nodes_off, hash_off, rings_off, smaps_off;
	int32_t recorder_pid;
	uint32_t options;                  /* HS_OPT_* set by the recorder */
	uint64_t nonce;                    /* as in HS_SHM_ENV: this recording's memory */
	uint64_t sample_ns;                /* allocator statistics at most this often */
	_Atomic uint32_t nodes_used;       /* next node id; starts at 1 */
	_Atomic uint32_t nprocs;           /* next process index; starts at 1 (0 is the program) */
	_Atomic uint64_t dropped;          /* events that could not be recorded */
	_Atomic uint64_t truncated;        /* stacks cut short */
	_Atomic uint64_t procs_lost;       /* images not recorded: the process table was full */
	_Atomic uint32_t modules_lock;     /* holder's tid, 0 = free */
	_Atomic uint32_t nmodules;         /* log entries published (release, under the lock) */
	_Atomic uint32_t smaps_lock;       /* holder's tid, 0 = free */
	_Atomic uint32_t smaps_state;      /* enum hs_smaps_state */
	uint32_t smaps_proc;               /* process index of the snapshot */
	_Atomic uint32_t starts;           /* child processes started through the library (fork,
					      posix_spawn, system, popen, exec in a vfork child),
					      counted before they start: while 0, the program's
					      exit ends the recorded tree */
	uint64_t smaps_time;               /* clock ns when it was read */
	uint64_t smaps_len;                /* bytes of text at smaps_off */
	struct hs_clock clock;             /* every time in this memory is read with it */
	_Atomic uint32_t threads;          /* serial numbers taken (hs_ring.serial) */
	_Atomic uint32_t shared_lock;      /* holder's tid, 0 = free: the shared ring's producer */
	_Atomic uint32_t ring_light;       /* processes writing rings with the light protocol */
	_Atomic uint32_t ring_fenced;      /* and with the fenced one (ring protocol above) */
};

#define HS_OPT_NO_FREERES 1u
#define HS_OPT_FOLLOW 2u    /* children are recorded: keep LD_PRELOAD and HS_SHM_ENV for them */
#define HS_OPT_RING_FENCE 4u /* every process writes rings with the fenced protocol */

/* Lays out the sections after the header page; each starts on a page. Fills
 * in h's offsets when h is not NULL. Returns the total size. */
static inline uint64_t hs_shm_layout(struct hs_shm_header *h)
{
	const uint64_t size[] = {
		(uint64_t)HS_MAX_PROCS * sizeof(struct hs_proc),
		(uint64_t)HS_MAX_MODULES * sizeof(struct hs_module),
		(uint64_t)HS_MAX_NODES * sizeof(struct hs_node),
		(uint64_t)HS_HASH_SLOTS * sizeof(uint32_t),
		(uint64_t)(HS_MAX_RINGS + 1) * sizeof(struct hs_ring),
		HS_SMAPS_BYTES,
	};
	uint64_t off = 4096, at[6];
	for (int i = 0; i < 6; i++) {
		at[i] = off;
		off = (off + size[i] + 4095) & ~4095ull;
	}
	if (h) {
		h->procs_off = at[0];
		h->modules_off = at[1];
		h->nodes_off = at[2];
		h->hash_off = at[3];
		h->rings_off = at[4];
		h->smaps_off = at[5];
		h->total_size = off;
	}
	return off;
}

static inline uint64_t hs_shm_size(void)
{
	return hs_shm_layout((struct hs_shm_header *)0);
}

/* Fills in the header; the recorder calls this on a zeroed mapping. */
static inline void hs_shm_init_header(struct hs_shm_header *h, int recorder_pid)
{
	h->magic = HS_SHM_MAGIC;
	h->version = HS_SHM_VERSION;
	hs_shm_layout(h);
	h->recorder_pid = recorder_pid;
	atomic_store(&h->nodes_used, 1);
	atomic_store(&h->nprocs, 1);
}

#define HS_SHM_AT(h, off, type) ((type *)((char *)(h) + (off)))

#endif
