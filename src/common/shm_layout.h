/*
 * shm_layout.h: the memory shared between libheapscope.so (in the target) and
 * `heapscope record` (the recorder). This is the whole contract between them.
 *
 * The recorder creates a memfd, sizes it with ftruncate (sparse: only touched
 * pages cost memory), fills in the header, and passes the fd number to the
 * target in HEAPSCOPE_SHM_FD. The library maps it MAP_SHARED and closes the fd.
 * Because events live in shared memory, whatever the target wrote is still
 * readable by the recorder after the target crashes or is killed.
 *
 * Sections, at the offsets named in the header:
 *   rings    one single-producer/single-consumer ring of fixed-size events per
 *            live thread (claimed on a thread's first event, recycled after exit)
 *   nodes    the stack trie: node id -> (parent id, instruction pointer),
 *            appended lock-free by any thread (id from an atomic counter)
 *   hash     open-addressing index (parent, ip) -> node id, for interning
 *   modules  the loaded objects (dl_iterate_phdr), rewritten after dlopen/dlclose
 *   smaps    /proc/self/smaps as the program's exit path saw it (text)
 */
#ifndef HS_SHM_LAYOUT_H
#define HS_SHM_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#define HS_SHM_MAGIC 0x314d4853u /* "HSM1" */
#define HS_SHM_VERSION 2u

#define HS_RING_EVENTS (1u << 15)  /* 32768 events x 32 B = 1 MiB per ring */
#define HS_MAX_RINGS 1024u
#define HS_MAX_NODES (1u << 21)    /* stack trie nodes; id 0 is "no stack" */
#define HS_HASH_SLOTS (1u << 22)   /* power of two, 2x nodes: load <= 0.5 */
#define HS_MAX_MODULES 1024u
#define HS_MAX_DEPTH 256           /* frames captured per event */
#define HS_SMAPS_BYTES (16u << 20) /* room for the exit snapshot of smaps */

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
	uint64_t time;   /* CLOCK_MONOTONIC ns */
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
 *   producer: store busy=1 (seq_cst), read clock, write ev[head % N],
 *             store head+1 (release), store busy=0 (release).
 *             If head - tail == N it waits for the consumer (never drops),
 *             unless the recorder has gone, then it stops recording.
 *   consumer: read clock T (then seq_cst fence), load busy, load head (acquire),
 *             copy events, store tail (release).
 * Any event published later by a ring that was not busy has time > T; a busy
 * ring's next event has time >= its last published one. The recorder merges
 * rings in time order up to that watermark.
 * Claim: a thread CASes a FREE ring to OWNED, sets tid, increments gen
 * (release) before publishing any event. The consumer loads head (acquire)
 * and then gen: events it sees belong to that gen's thread. At thread exit
 * the owner stores CLOSED; the recorder drains a CLOSED ring and stores FREE.
 * A realloc publishes two events (free, then allocation) at once.
 */
struct hs_ring {
	_Atomic uint32_t state;
	uint32_t tid;            /* kernel thread id of the owner */
	_Atomic uint32_t gen;    /* bumped at every claim: a new thread */
	_Atomic uint32_t busy;
	_Atomic uint64_t head;   /* events published (producer) */
	char pad0[40];
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

struct hs_module {
	uint64_t bias;           /* load bias (dlpi_addr) */
	uint64_t start, end;     /* extent of PT_LOAD segments, absolute */
	uint32_t build_id_len;
	uint8_t build_id[32];
	char path[488];
};

struct hs_shm_header {
	uint32_t magic, version;
	uint64_t total_size;
	uint64_t rings_off, nodes_off, hash_off, modules_off, smaps_off;
	int32_t recorder_pid;
	uint32_t options;                  /* HS_OPT_* set by the recorder */
	_Atomic uint32_t target_pid;       /* set by the library at init */
	_Atomic uint32_t nodes_used;       /* next node id; starts at 1 */
	_Atomic uint64_t dropped;          /* events that could not be recorded */
	_Atomic uint64_t truncated;        /* stacks cut short */
	_Atomic uint32_t modules_seq;      /* seqlock: odd while the list is rewritten */
	_Atomic uint32_t modules_lock;
	uint32_t nmodules;
	_Atomic uint32_t exit_seen;        /* library destructor ran */
	uint64_t sample_ns;                /* allocator statistics at most this often */
	_Atomic uint64_t mallinfo_due;     /* CLOCK_MONOTONIC ns of the next mallinfo2 sample */
	_Atomic uint64_t smaps_len;        /* bytes of smaps text at smaps_off, set last */
	char exe[512];                     /* /proc/self/exe of the target */
};

#define HS_OPT_NO_FREERES 1u

static inline uint64_t hs_shm_size(void)
{
	uint64_t off = 4096;
	off += (uint64_t)HS_MAX_MODULES * sizeof(struct hs_module);
	off = (off + 4095) & ~4095ull;
	off += (uint64_t)HS_MAX_NODES * sizeof(struct hs_node);
	off += (uint64_t)HS_HASH_SLOTS * sizeof(uint32_t);
	off = (off + 4095) & ~4095ull;
	off += (uint64_t)HS_MAX_RINGS * sizeof(struct hs_ring);
	off += HS_SMAPS_BYTES;
	return off;
}

/* Fill in the header's offsets; the recorder calls this on a zeroed mapping. */
static inline void hs_shm_init_header(struct hs_shm_header *h, int recorder_pid)
{
	uint64_t off = 4096;
	h->magic = HS_SHM_MAGIC;
	h->version = HS_SHM_VERSION;
	h->modules_off = off;
	off += (uint64_t)HS_MAX_MODULES * sizeof(struct hs_module);
	off = (off + 4095) & ~4095ull;
	h->nodes_off = off;
	off += (uint64_t)HS_MAX_NODES * sizeof(struct hs_node);
	h->hash_off = off;
	off += (uint64_t)HS_HASH_SLOTS * sizeof(uint32_t);
	off = (off + 4095) & ~4095ull;
	h->rings_off = off;
	off += (uint64_t)HS_MAX_RINGS * sizeof(struct hs_ring);
	h->smaps_off = off;
	off += HS_SMAPS_BYTES;
	h->total_size = off;
	h->recorder_pid = recorder_pid;
	atomic_store(&h->nodes_used, 1);
}

#define HS_SHM_AT(h, off, type) ((type *)((char *)(h) + (off)))

#endif
