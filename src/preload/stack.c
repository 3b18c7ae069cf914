/*
 * stack.c: captures the caller's stack with libunwind and interns it in the
 * shared trie, so an event carries one node id. Interning is lock-free: a new
 * node takes an id from an atomic counter, is written, then published into the
 * hash slot with a CAS. Each thread keeps its last stack: frames shared with
 * it from the outermost side are not looked up again.
 *
 * Each image hangs its stacks under its own root node, so that stacks of two
 * address spaces (exec'd programs) never share a node: an address means
 * something in one space only. A fork child keeps the root of its parent.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <sched.h>
#include <stdatomic.h>

#include "preload.h"

static struct hs_node *nodes;
static _Atomic uint32_t *slots;
uint32_t pl_root;

int pl_stack_init(void)
{
	nodes = HS_SHM_AT(pl_shm, pl_shm->nodes_off, struct hs_node);
	slots = HS_SHM_AT(pl_shm, pl_shm->hash_off, _Atomic uint32_t);
	/* the global cache takes a lock per unwind; a per-thread one does not */
	pl_self.in_unwind = 1; /* libunwind starts here */
	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
	pl_self.in_unwind = 0;
	/* the root: ip 0, parent 0, not in the hash (never looked up) */
	uint32_t id = atomic_fetch_add_explicit(&pl_shm->nodes_used, 1, memory_order_relaxed);
	if (id >= HS_MAX_NODES)
		return -1;
	nodes[id].ip = 0;
	nodes[id].parent = 0;
	atomic_store_explicit(&nodes[id].ready, 1, memory_order_release);
	pl_root = id;
	return 0;
}

static inline uint32_t slot_of(uint64_t ip, uint32_t parent)
{
	uint64_t h = ip * 0x9E3779B97F4A7C15ull ^ (uint64_t)parent * 0xC2B2AE3D27D4EB4Full;
	h ^= h >> 31;
	return (uint32_t)h & (HS_HASH_SLOTS - 1);
}

/* Returns the node id of (parent, ip), inserting it if new; 0 when full. */
static uint32_t intern(uint64_t ip, uint32_t parent)
{
	uint32_t i = slot_of(ip, parent), mine = 0;
	for (uint32_t probes = 0; probes < HS_HASH_SLOTS; probes++, i = (i + 1) & (HS_HASH_SLOTS - 1)) {
		uint32_t id = atomic_load_explicit(&slots[i], memory_order_acquire);
		if (id == 0) {
			if (!mine) {
				mine = atomic_fetch_add_explicit(&pl_shm->nodes_used, 1, memory_order_relaxed);
				if (mine >= HS_MAX_NODES)
					return 0;
				nodes[mine].ip = ip;
				nodes[mine].parent = parent;
				atomic_store_explicit(&nodes[mine].ready, 1, memory_order_release);
				/* a new address outside every known object: a dlopen happened */
				if (!pl_modules_contains(ip))
					pl_modules_snapshot();
			}
			uint32_t expect = 0;
			if (atomic_compare_exchange_strong_explicit(&slots[i], &expect, mine, memory_order_acq_rel,
								    memory_order_acquire))
				return mine;
			id = expect; /* another thread filled this slot first */
		}
		if (nodes[id].ip == ip && nodes[id].parent == parent)
			return id; /* if we had taken an id, it stays an unused node */
	}
	return 0;
}

/*
 * libunwind takes mutexes of its own while it unwinds. A fork while another
 * thread holds one leaves it locked forever in the child, whose first unwind
 * then hangs. So a fork waits until no thread is inside libunwind, and no
 * thread enters while a fork is under way (pthread_atfork, init.c).
 */
static _Atomic unsigned unwinding, fork_pending;

void pl_unwind_enter(void)
{
	for (;;) {
		atomic_fetch_add(&unwinding, 1);
		if (!atomic_load(&fork_pending))
			return;
		atomic_fetch_sub(&unwinding, 1);
		while (atomic_load(&fork_pending))
			sched_yield();
	}
}

void pl_unwind_leave(void)
{
	atomic_fetch_sub(&unwinding, 1);
}

void pl_unwind_fork_prepare(void)
{
	atomic_store(&fork_pending, 1);
	while (atomic_load(&unwinding))
		sched_yield();
}

void pl_unwind_fork_done(int child)
{
	if (child)
		atomic_store(&unwinding, 0); /* the other threads are not in the child */
	atomic_store(&fork_pending, 0);
}

uint32_t pl_stack_capture(struct pl_thread *t, uint16_t *flags)
{
	void *buf[HS_MAX_DEPTH + 16];
	pl_unwind_enter();
	t->in_unwind = 1;
	int n = unw_backtrace(buf, HS_MAX_DEPTH + 16);
	t->in_unwind = 0;
	pl_unwind_leave();
	int k = 0;
	while (k < n && pl_in_self((uint64_t)(uintptr_t)buf[k]))
		k++;
	uint32_t depth = (uint32_t)(n - k);
	if (n == HS_MAX_DEPTH + 16 || depth > HS_MAX_DEPTH) {
		*flags |= HS_EVF_TRUNCATED;
		atomic_fetch_add_explicit(&pl_shm->truncated, 1, memory_order_relaxed);
		if (depth > HS_MAX_DEPTH)
			depth = HS_MAX_DEPTH;
	}
	/* buf is innermost first; the trie and the cache are outermost first */
	void **frames = buf + k;
	uint32_t same = 0, lim = depth < t->depth ? depth : t->depth;
	while (same < lim && t->ips[same] == (uint64_t)(uintptr_t)frames[depth - 1 - same])
		same++;
	uint32_t parent = same ? t->ids[same - 1] : pl_root;
	for (uint32_t j = same; j < depth; j++) {
		uint64_t ip = (uint64_t)(uintptr_t)frames[depth - 1 - j];
		uint32_t id = intern(ip, parent);
		if (!id) {
			*flags |= HS_EVF_TRUNCATED;
			atomic_fetch_add_explicit(&pl_shm->truncated, 1, memory_order_relaxed);
			depth = j;
			break;
		}
		t->ips[j] = ip;
		t->ids[j] = id;
		parent = id;
	}
	t->depth = depth;
	return depth ? t->ids[depth - 1] : 0;
}
