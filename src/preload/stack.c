/*
 * stack.c: captures the caller's stack with libunwind and interns it in the
 * shared trie, so an event carries one node id. Interning is lock-free: a new
 * node takes an id from an atomic counter, is written, then published into the
 * hash slot with a CAS. Each thread keeps its last stack: frames shared with
 * it from the outermost side are not looked up again.
 *
 * The walk is unwind.c's; it hands a stack it cannot walk exactly (a complex
 * frame, its cache busy) to libunwind's unw_backtrace, which gives the same
 * frames (HEAPSCOPE_UNWIND=libunwind uses it always, =check both, counting
 * the stacks that differ).
 *
 * Each image hangs its stacks under its own root node, so that stacks of two
 * address spaces (exec'd programs) never share a node: an address means
 * something in one space only. A fork child keeps the root of its parent.
 */
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <sched.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <unwind.h>

#include "preload.h"

static struct hs_node *nodes;
static _Atomic uint32_t *slots;
uint32_t pl_root;

int pl_stack_init(void)
{
	nodes = HS_SHM_AT(pl_shm, pl_shm->nodes_off, struct hs_node);
	slots = HS_SHM_AT(pl_shm, pl_shm->hash_off, _Atomic uint32_t);
	pl_unwind_init();
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

/* A new address outside every known object: a dlopen happened, log it.
 * Not when this thread holds the log's lock already: a nested capture
 * interrupted its own snapshot, which would wait for itself. */
static void new_object(uint64_t ip, int nested)
{
	if (pl_modules_contains(ip))
		return;
	if (nested && atomic_load_explicit(&pl_shm->modules_lock, memory_order_relaxed) ==
			      (uint32_t)syscall(SYS_gettid))
		return;
	pl_modules_snapshot();
}

/* Returns the node id of (parent, ip), inserting it if new; 0 when full. */
static uint32_t intern(uint64_t ip, uint32_t parent, int nested)
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
				new_object(ip, nested);
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
 *
 * Each thread says so in its own ring (`unwinding`, a line no other thread
 * writes), and the fork scans the rings of this image: Dekker's handshake.
 * The thread stores its flag, then loads fork_pending; the fork stores
 * fork_pending, then loads each flag; both seq_cst, so at least one sees the
 * other's store. (Nested captures, below, do not enter libunwind.) The fast
 * walk takes no lock, and says so only while it parses a new address's
 * rule (dl_iterate_phdr, the cache's fill lock).
 * Threads without a ring of their own (more alive than rings: they write to
 * the shared one) count themselves in `unringed` instead.
 */
static _Atomic unsigned fork_pending, unringed;

/* flag: the ring's `unwinding`, or unringed; returns what to clear */
_Atomic unsigned *pl_unwind_busy_enter(struct hs_ring *r)
{
	for (;;) {
		if (r)
			atomic_store(&r->unwinding, 1);
		else
			atomic_fetch_add(&unringed, 1);
		if (!atomic_load(&fork_pending))
			return r ? &r->unwinding : &unringed;
		if (r)
			atomic_store_explicit(&r->unwinding, 0, memory_order_release);
		else
			atomic_fetch_sub(&unringed, 1);
		while (atomic_load(&fork_pending))
			sched_yield();
	}
}

void pl_unwind_busy_leave(_Atomic unsigned *flag)
{
	if (flag == &unringed)
		atomic_fetch_sub(&unringed, 1);
	else
		atomic_store_explicit(flag, 0, memory_order_release);
}

void pl_unwind_fork_prepare(void)
{
	atomic_store(&fork_pending, 1);
	pl_rings_wait_unwinding();
	while (atomic_load(&unringed))
		sched_yield();
}

void pl_unwind_fork_done(int child)
{
	/* the child's flags are its parent's threads': its scan skips them */
	if (child) {
		atomic_store(&unringed, 0);
		pl_unwind_forked();
	}
	atomic_store(&fork_pending, 0);
}

/* Frames of this library come first: the capture and the hook. */
static int skip_self(void *const *buf, int n)
{
	int k = 0;
	while (k < n && pl_in_self((uint64_t)(uintptr_t)buf[k]))
		k++;
	return k;
}

/* HEAPSCOPE_UNWIND=check: the walk's frames against libunwind's, as they
 * would be recorded (the frames of this library differ: each unwinder
 * starts at its own call). */
static int same_stack(void *const *a, int na, void *const *b, int nb)
{
	int ka = skip_self(a, na), kb = skip_self(b, nb);
	return na == nb && ka == kb && !memcmp(a + ka, b + kb, (size_t)(na - ka) * sizeof(void *));
}

uint32_t pl_stack_capture(struct pl_thread *t, uint16_t *flags)
{
	void *buf[HS_MAX_DEPTH + 16];
	if (!pl_active)
		return 0; /* the recorder is gone: the event will be dropped */
	/* both unwinders are called from this frame: each leaves out its own */
	int n = pl_unwind_mode == PL_UNWIND_LIBUNWIND ? -1 : pl_unwind_walk(t, buf, HS_MAX_DEPTH + 16);
	if (__builtin_expect(n < 0 || pl_unwind_mode == PL_UNWIND_CHECK, 0)) {
		void **walked = buf;
		if (n >= 0) { /* check: libunwind's stack is recorded, the walk's compared */
			walked = __builtin_alloca((size_t)n * sizeof(void *));
			memcpy(walked, buf, (size_t)n * sizeof(void *));
		}
		/* the ring pl_event_begin claims: until it has one, the thread
		 * counts itself in unringed (a second claim here would count the
		 * shared ring's retry twice per event) */
		_Atomic unsigned *flag = pl_unwind_busy_enter(t->ring);
		t->in_unwind = 1;
		int m = unw_backtrace(buf, HS_MAX_DEPTH + 16);
		t->in_unwind = 0;
		pl_unwind_busy_leave(flag);
		if (n >= 0)
			pl_unwind_checked(same_stack(walked, n, buf, m), walked, n, buf, m);
		n = m;
	}
	int k = skip_self(buf, n);
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
		uint32_t id = intern(ip, parent, 0);
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

/*
 * Nested captures: a signal handler allocates while its thread is inside one
 * of our events, maybe inside libunwind. libunwind's per-thread caches (the
 * trace cache of unw_backtrace, and with UNW_CACHE_PER_THREAD the register
 * state cache of unw_step, which then takes no lock and masks no signal) are
 * not re-entrant: a second unwind on the same thread could corrupt them
 * under the first. So these stacks are taken with libgcc's unwinder, which
 * shares nothing with libunwind and on its fast path takes no lock
 * (_dl_find_object); it holds none of libunwind's mutexes either, so a
 * nested capture does not count as inside libunwind for fork. It is set up
 * by the constructor, before the program runs; without it a nested event
 * has no stack.
 */
typedef _Unwind_Reason_Code (*gcc_backtrace_fn)(_Unwind_Trace_Fn, void *);
typedef _Unwind_Ptr (*gcc_get_ip_info_fn)(struct _Unwind_Context *, int *);
static gcc_backtrace_fn gcc_backtrace;
static gcc_get_ip_info_fn gcc_get_ip_info;

struct walk {
	uint64_t ip[HS_MAX_DEPTH + 16];
	int n;
	int resumed;  /* index of the frame a signal interrupted, -1 */
};

static _Unwind_Reason_Code walk_frame(struct _Unwind_Context *ctx, void *arg)
{
	struct walk *w = arg;
	int exact = 0;
	uint64_t ip = (uint64_t)gcc_get_ip_info(ctx, &exact);
	if (w->n == HS_MAX_DEPTH + 16)
		return _URC_END_OF_STACK;
	/* the frame above a signal frame is at the interrupted instruction */
	if (exact && w->resumed < 0)
		w->resumed = w->n;
	w->ip[w->n++] = ip;
	return _URC_NO_REASON;
}

static void walk_stack(struct walk *w)
{
	w->n = 0;
	w->resumed = -1;
	if (gcc_backtrace)
		gcc_backtrace(walk_frame, w);
}

void pl_stack_init_nested(void)
{
	if (!pl_active || gcc_backtrace)
		return;
	pl_self.in_hook += PL_IN_INTERNAL;
	/* libunwind exports the same names, unversioned: asking for libgcc's
	 * versions finds its own (a dependency of ours, so loaded) */
	gcc_get_ip_info_fn ip_info = (gcc_get_ip_info_fn)dlvsym(RTLD_DEFAULT, "_Unwind_GetIPInfo", "GCC_4.2.0");
	gcc_backtrace_fn bt = (gcc_backtrace_fn)dlvsym(RTLD_DEFAULT, "_Unwind_Backtrace", "GCC_3.3");
	if (bt && ip_info) {
		struct walk w;
		gcc_get_ip_info = ip_info;
		gcc_backtrace = bt;
		walk_stack(&w); /* its one-time set-up, here */
	}
	pl_self.in_hook -= PL_IN_INTERNAL;
}

uint32_t pl_stack_capture_nested(uint16_t *flags)
{
	struct walk w;
	walk_stack(&w);
	/* Innermost first: our nested hook, the handler up to the signal frame,
	 * then the event it interrupted (libunwind, libc, our hook) and the
	 * program outside it. The interrupted event is ours: it is left out, up
	 * to the outermost frame of this library. */
	int n = w.n, k = 0, m = 0;
	while (k < n && pl_in_self(w.ip[k]))
		k++;
	int last = -1;
	for (int j = w.resumed >= k ? w.resumed : n; j < n; j++)
		if (pl_in_self(w.ip[j]))
			last = j;
	for (int j = k; j < n; j++)
		if (last < 0 || j < w.resumed || j > last)
			w.ip[m++] = w.ip[j];
	if (w.n == HS_MAX_DEPTH + 16 || m > HS_MAX_DEPTH) {
		*flags |= HS_EVF_TRUNCATED;
		atomic_fetch_add_explicit(&pl_shm->truncated, 1, memory_order_relaxed);
		if (m > HS_MAX_DEPTH)
			m = HS_MAX_DEPTH;
	}
	/* outermost first, from the root. The thread's cached stack is the
	 * interrupted event's: not used, not changed. */
	uint32_t parent = pl_root, depth = 0;
	for (int j = m - 1; j >= 0; j--) {
		uint32_t id = intern(w.ip[j], parent, 1);
		if (!id) {
			*flags |= HS_EVF_TRUNCATED;
			atomic_fetch_add_explicit(&pl_shm->truncated, 1, memory_order_relaxed);
			break;
		}
		parent = id;
		depth++;
	}
	return depth ? parent : 0;
}
