/*
 * record_drain.c: moves events from the target's rings into the trace, in
 * time order across threads.
 *
 * Each round copies every published event out of the rings into one pending
 * queue per ring (so the producers never wait on our merging or compression),
 * then writes, in time order, the pending events that no ring can still
 * undercut: those older than the watermark. The watermark is the round's
 * clock T for rings that were idle when we looked (their next event is later
 * than T) and, for a ring caught mid-event, a lower bound on that event's
 * time (its last event, see shm_layout.h). Ties across rings put frees
 * before allocations: a block freed and taken again in the same nanosecond
 * is freed first. Within a ring the order is the ring's.
 *
 * Several processes (the recorded tree) share the memory: each ring names
 * its process, each thread belongs to one, and a process's TR_PROCESS
 * (record_proc.c) is written before anything names it. Modules are read
 * from the shared log as they are appended, each with its address space.
 */
#include "record/record.h"
#include "procfs/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NRINGS (HS_MAX_RINGS + 1)        /* and the shared one, HS_SHARED_RING */
#define NQUEUES (NRINGS + 2)              /* one per ring, then: */
#define SAMPLE_QUEUE NRINGS               /* the recorder's own RSS samples and peak smaps */
#define SMAPS_QUEUE (NRINGS + 1)          /* smaps the processes left at exit */
#define KIND_SAMPLE 0xffffu               /* never a ring kind: marks a sample */
#define KIND_SMAPS 0xfffeu                /* addr: struct procfs_maps *, size: reason */
#define SMAPS_GROWTH 1.10                 /* RSS growth between two peak snapshots */
#define SMAPS_MAX_MAPS 30000              /* mappings written per snapshot: one record < 2 MiB */
#define LIVE_CHECK_NS 100000000ull       /* how often OWNED rings' threads are checked */
#define NODE_WAIT_NS 1000000000ull       /* a node unfilled this long lost its writer */
#define BUSY_STALL_NS 250000000ull       /* mid-event this long: stop holding others back */
#define BARRIER_NS 2000000ull            /* membarrier at most this often: it interrupts the target */
#define NO_INDEX UINT32_MAX
#define MAX_SERIAL (1u << 24)             /* thread serials mapped (64 MiB at most) */

static int ring_want_light; /* HEAPSCOPE_RING=membarrier: say where it was not used */

/* An event copied out of a ring, tagged with the thread that wrote it (a
 * ring can change owner while its old events still wait here). */
struct pend {
	uint64_t time;                    /* CLOCK_MONOTONIC ns */
	uint64_t addr;
	uint64_t size;                    /* the RSS for a sample */
	uint32_t stack;
	uint16_t kind;
	uint16_t stalled;                 /* from a ring held back no more (BUSY_STALL_NS) */
	uint32_t thread;                  /* index into d->thr; a sample's process */
	uint64_t x[3];                    /* from an HS_EV_CONT: time, addr, size */
	uint32_t x_stack;                 /* and its stack field */
};

/* FIFO of pending events: v[head..len). */
struct queue {
	struct pend *v;
	size_t head, len, cap;
};

struct ring_st {
	uint64_t tail;                    /* events consumed: we are the only writer */
	uint64_t last;                    /* time of the last event copied */
	uint64_t lb;                      /* no event not yet copied is older */
	uint32_t gen;                     /* owner generation last seen */
	uint32_t thread;                  /* d->thr index of that owner */
	int busy;                         /* caught mid-event this round */
	uint64_t busy_head, busy_since;   /* caught mid-event at this head since */
	int have_thread;                  /* thread is valid */
};

struct thr {
	uint32_t tid, pid;
	uint32_t proc;                    /* process table index */
	uint32_t index;                   /* dense trace index, NO_INDEX until written */
};

/* The recorder's per-process state of the stream. */
struct pstate {
	int exit_written;                 /* its TR_EXIT_MARK is out */
	uint64_t peak_rss, snap_rss;      /* highest sample, and the RSS of the last peak snapshot */
};

struct rec_drain {
	struct hs_shm_header *h;
	struct hs_ring *rings;
	struct hs_node *nodes;
	struct hs_module *shm_modules;
	struct trace_writer *w;
	uint64_t t0;
	pid_t pid;
	long page;
	int ring_hi;                      /* highest ring ever seen claimed, -1 */
	uint64_t prev_T;
	uint64_t limit;                   /* the last round's watermark */
	uint64_t barrier_T;               /* T of the last round with membarrier */
	uint64_t last_time;               /* of the last entry merged */
	uint64_t next_live_check;
	struct ring_st rs[NRINGS];
	int shared_seen;                  /* the shared ring was written to */
	struct queue q[NQUEUES];
	uint32_t heap[NQUEUES];
	struct thr *thr;
	size_t nthr, capthr;
	uint32_t *by_serial;              /* thread serial -> d->thr index + 1, 0 = none yet */
	size_t nserial;
	uint32_t next_index;
	uint32_t nodes_done;              /* next stack node id to write */
	uint64_t node_wait_since;         /* when nodes_done was first seen unfilled */
	uint32_t mods_done;               /* module log entries read */
	struct rec_module *mods;
	size_t nmods, capmods;
	struct rec_procs *procs;
	struct pstate *ps;                /* per process */
	size_t ps_cap;
	int shm_fd;                       /* the memfd behind h, -1 unknown */
	uint64_t hole_T;                  /* in round hole_T, pages in [hole_lo, hole_hi) are untouched */
	off_t hole_lo, hole_hi;
	struct rec_drain_stats st;
};

uint64_t rec_drain_now(const struct rec_drain *d)
{
	uint64_t t = rec_clock_now();
	return t > d->t0 ? t - d->t0 : 0;
}

static uint64_t trace_time(const struct rec_drain *d, uint64_t t)
{
	return t > d->t0 ? t - d->t0 : 0;
}

int rec_drain_new(struct rec_drain **out, struct hs_shm_header *h, struct trace_writer *w, uint64_t t0, pid_t pid)
{
	struct rec_drain *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->h = h;
	d->rings = HS_SHM_AT(h, h->rings_off, struct hs_ring);
	d->nodes = HS_SHM_AT(h, h->nodes_off, struct hs_node);
	d->shm_modules = HS_SHM_AT(h, h->modules_off, struct hs_module);
	d->w = w;
	d->t0 = t0;
	d->prev_T = t0;
	d->pid = pid;
	d->page = sysconf(_SC_PAGESIZE);
	d->ring_hi = -1;
	d->nodes_done = 1;
	d->shm_fd = -1;
	if (rec_procs_new(&d->procs, h, t0, pid)) {
		free(d);
		return -ENOMEM;
	}
	*out = d;
	return 0;
}

int rec_drain_program(struct rec_drain *d, uint64_t start_unix_ns, uint64_t interval_ns, const char *exe,
		      char **argv)
{
	return rec_procs_root(d->procs, d->w, start_unix_ns, interval_ns, exe, argv);
}

void rec_drain_program_exit(struct rec_drain *d, int st)
{
	/* its last image may have registered since the last round: the status is that one's */
	rec_procs_scan(d->procs, d->w, 0);
	rec_procs_root_exit(d->procs, st, rec_clock_now());
}

size_t rec_drain_running(struct rec_drain *d)
{
	/* the entries registered since the last round count too */
	if (rec_procs_scan(d->procs, d->w, 0))
		return 1; /* out of memory: say some run, the grace time ends it */
	rec_procs_check(d->procs, rec_clock_now());
	return rec_procs_running(d->procs);
}

int rec_drain_finish(struct rec_drain *d)
{
	size_t running = 0;
	uint32_t fenced = atomic_load(&d->h->ring_fenced);
	if (ring_want_light && fenced)
		rec_error("HEAPSCOPE_RING=membarrier, but %u process%s could not register with membarrier(2) and used the fenced ring protocol",
			  fenced, fenced == 1 ? "" : "es");
	if (d->st.late)
		rec_error("%llu event%s came after later ones (a broken ring protocol): written at the time of the one before",
			  (unsigned long long)d->st.late, d->st.late == 1 ? "" : "s");
	int ret = rec_procs_finish(d->procs, d->w, rec_clock_now(), &running);
	d->st.processes = rec_procs_count(d->procs);
	d->st.untraced = rec_procs_untraced(d->procs);
	d->st.running = running;
	return ret;
}

void rec_drain_set_shm_fd(struct rec_drain *d, int fd)
{
	d->shm_fd = fd;
}

void rec_drain_free(struct rec_drain *d)
{
	if (!d)
		return;
	free(d->thr);
	free(d->by_serial);
	free(d->mods);
	for (size_t i = 0; i < NQUEUES; i++)
		for (size_t k = d->q[i].head; k < d->q[i].len; k++)
			if (d->q[i].v[k].kind == KIND_SMAPS) {
				procfs_maps_free((struct procfs_maps *)(uintptr_t)d->q[i].v[k].addr);
				free((void *)(uintptr_t)d->q[i].v[k].addr);
			}
	for (size_t i = 0; i < NQUEUES; i++)
		free(d->q[i].v);
	free(d->ps);
	rec_procs_free(d->procs);
	free(d);
}

void rec_drain_get_stats(const struct rec_drain *d, struct rec_drain_stats *st)
{
	*st = d->st;
	st->pending = 0;
	for (size_t i = 0; i < NQUEUES; i++)
		st->pending += d->q[i].len - d->q[i].head;
}

const struct rec_module *rec_drain_modules(const struct rec_drain *d, size_t *n)
{
	*n = d->nmods;
	return d->mods;
}

uint32_t rec_drain_nodes(const struct rec_drain *d)
{
	return d->nodes_done;
}

/* ---- pending queues -------------------------------------------------- */

/* Room for n more entries at v[len]. Compacts only when at least half the
 * buffer is consumed, so a long backlog is not moved every round. */
static struct pend *q_reserve(struct queue *q, size_t n)
{
	if (q->head == q->len)
		q->head = q->len = 0;
	if (q->len + n <= q->cap)
		return q->v + q->len;
	if (q->cap && q->head >= q->cap / 2) {
		memmove(q->v, q->v + q->head, (q->len - q->head) * sizeof(*q->v));
		q->len -= q->head;
		q->head = 0;
		if (q->len + n <= q->cap)
			return q->v + q->len;
	}
	size_t cap = q->cap ? q->cap * 2 : 4096;
	while (cap < q->len + n)
		cap *= 2;
	struct pend *v = realloc(q->v, cap * sizeof(*v));
	if (!v)
		return NULL;
	q->v = v;
	q->cap = cap;
	return q->v + q->len;
}

static inline int q_empty(const struct queue *q)
{
	return q->head == q->len;
}

static inline const struct pend *q_front(const struct queue *q)
{
	return &q->v[q->head];
}

/* ---- records --------------------------------------------------------- */

static struct pstate *pstate_of(struct rec_drain *d, uint32_t proc)
{
	if (proc >= d->ps_cap) {
		size_t cap = d->ps_cap ? d->ps_cap : 64;
		while (cap <= proc)
			cap *= 2;
		struct pstate *v = realloc(d->ps, cap * sizeof(*v));
		if (!v)
			return NULL;
		memset(v + d->ps_cap, 0, (cap - d->ps_cap) * sizeof(*v));
		d->ps = v;
		d->ps_cap = cap;
	}
	return &d->ps[proc];
}

static void write_smaps(struct rec_drain *d, uint64_t t, uint32_t proc, unsigned reason, struct procfs_maps *m)
{
	struct trace_writer *w = d->w;
	size_t n = m->n < SMAPS_MAX_MAPS ? m->n : SMAPS_MAX_MAPS;
	tw_begin(w, TR_SMAPS);
	tw_time(w, t);
	tw_u(w, proc);
	tw_u(w, reason);
	tw_u(w, n);
	for (size_t i = 0; i < n; i++) {
		const struct procfs_map *p = &m->v[i];
		tw_u(w, p->start);
		tw_u(w, p->end);
		tw_u(w, p->offset);
		tw_str(w, p->perms);
		tw_str(w, p->path);
		tw_u(w, p->rss);
		tw_u(w, p->pss);
		tw_u(w, p->shared_clean);
		tw_u(w, p->shared_dirty);
		tw_u(w, p->private_clean);
		tw_u(w, p->private_dirty);
		tw_u(w, p->anonymous);
		tw_u(w, p->swap);
	}
	tw_end(w);
	d->st.smaps++;
}

/* Queues a parsed snapshot on q (times in q must not decrease). */
static int queue_smaps(struct rec_drain *d, int q, uint64_t time, uint32_t proc, unsigned reason,
		       struct procfs_maps *m)
{
	struct pend *e = q_reserve(&d->q[q], 1);
	if (!e) {
		procfs_maps_free(m);
		free(m);
		return -ENOMEM;
	}
	*e = (struct pend){ .time = time, .addr = (uintptr_t)m, .size = reason, .kind = KIND_SMAPS, .thread = proc };
	d->q[q].len++;
	return 0;
}

/* The snapshot an exiting process left in the shared area: parsed, queued,
 * and the area handed back. */
static int read_exit_smaps(struct rec_drain *d)
{
	struct hs_shm_header *h = d->h;
	if (atomic_load_explicit(&h->smaps_state, memory_order_acquire) != HS_SMAPS_READY)
		return 0;
	uint64_t len = h->smaps_len < HS_SMAPS_BYTES ? h->smaps_len : HS_SMAPS_BYTES;
	struct procfs_maps *m = calloc(1, sizeof(*m));
	int ret = m ? procfs_smaps_parse(m, HS_SHM_AT(h, h->smaps_off, const char), (size_t)len) : -ENOMEM;
	uint64_t time = h->smaps_time;
	uint32_t proc = h->smaps_proc;
	atomic_store_explicit(&h->smaps_state, HS_SMAPS_FREE, memory_order_release);
	if (ret) {
		if (m)
			procfs_maps_free(m);
		free(m);
		return ret;
	}
	/* the queue keeps time order: a late one is written at the latest time */
	struct queue *q = &d->q[SMAPS_QUEUE];
	if (q->len > q->head && q->v[q->len - 1].time > time)
		time = q->v[q->len - 1].time;
	/* A process that ended before the recorder sampled it: its RSS at
	 * exit, from these mappings (less our memory), is its sample. */
	struct pstate *ps = pstate_of(d, proc);
	struct pend *e = q_reserve(q, 1);
	if (!ps || !e) {
		procfs_maps_free(m);
		free(m);
		return -ENOMEM;
	}
	if (!ps->peak_rss) {
		uint64_t rss = 0;
		for (size_t i = 0; i < m->n; i++)
			if (!strstr(m->v[i].path, "memfd:heapscope"))
				rss += m->v[i].rss;
		*e = (struct pend){ .time = time, .size = rss, .kind = KIND_SAMPLE, .thread = proc };
		q->len++;
		ps->peak_rss = rss;
	}
	return queue_smaps(d, SMAPS_QUEUE, time, proc, TR_SMAPS_EXIT, m);
}

static int new_thread(struct rec_drain *d, uint32_t tid, uint32_t pid, uint32_t proc, uint32_t *idx)
{
	if (d->nthr == d->capthr) {
		size_t cap = d->capthr ? d->capthr * 2 : 64;
		struct thr *t = realloc(d->thr, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		d->thr = t;
		d->capthr = cap;
	}
	d->thr[d->nthr] = (struct thr){ .tid = tid, .pid = pid, .proc = proc, .index = NO_INDEX };
	*idx = (uint32_t)d->nthr++;
	return 0;
}

/* The thread of a ring's owner. A thread's rings (its own and the one for
 * its signal handlers' events) carry its serial number: the first one seen
 * makes the entry, the others find it. A serial past MAX_SERIAL (a broken
 * producer) makes an entry per claim. */
static int thread_of(struct rec_drain *d, uint32_t serial, uint32_t tid, uint32_t pid, uint32_t proc,
		     uint32_t *idx)
{
	if (!serial || serial >= MAX_SERIAL)
		return new_thread(d, tid, pid, proc, idx);
	if (serial >= d->nserial) {
		size_t n = d->nserial ? d->nserial : 1024;
		while (n <= serial)
			n *= 2;
		uint32_t *v = realloc(d->by_serial, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + d->nserial, 0, (n - d->nserial) * sizeof(*v));
		d->by_serial = v;
		d->nserial = n;
	}
	if (d->by_serial[serial]) {
		*idx = d->by_serial[serial] - 1;
		return 0;
	}
	int ret = new_thread(d, tid, pid, proc, idx);
	if (!ret)
		d->by_serial[serial] = *idx + 1;
	return ret;
}

/* Writes stack nodes up to the trie's counter, stopping at the first one
 * not yet filled in (its writer is between taking the id and setting
 * ready). When the target is gone, or the node stayed unfilled for a second
 * (its thread died in between), it will never be filled: it is written
 * empty so that its id is still defined and the events behind it flow. */
static void write_nodes(struct rec_drain *d, int final)
{
	uint32_t used = atomic_load_explicit(&d->h->nodes_used, memory_order_acquire);
	if (used > HS_MAX_NODES)
		used = HS_MAX_NODES; /* the counter runs past the end once the trie is full */
	while (d->nodes_done < used) {
		uint32_t id = d->nodes_done;
		struct hs_node *n = &d->nodes[id];
		uint64_t ip = 0;
		uint32_t parent = 0;
		if (atomic_load_explicit(&n->ready, memory_order_acquire)) {
			ip = n->ip;
			parent = n->parent;
		} else if (!final) {
			uint64_t now = rec_clock_now();
			if (d->node_wait_since == 0) {
				d->node_wait_since = now;
				break;
			}
			if (now - d->node_wait_since < NODE_WAIT_NS)
				break;
			d->st.anomalies++;
		}
		d->node_wait_since = 0;
		if (parent >= id) {
			/* a parent is always interned before its child */
			d->st.anomalies++;
			parent = 0;
		}
		tw_begin(d->w, TR_STACK);
		tw_u(d->w, id);
		tw_u(d->w, parent);
		tw_u(d->w, ip);
		tw_end(d->w);
		d->nodes_done++;
		d->st.stacks++;
	}
}

static int module_known(const struct rec_drain *d, uint64_t space, const char *path, uint64_t bias)
{
	for (size_t i = d->nmods; i-- > 0;)
		if (d->mods[i].bias == bias && d->mods[i].space == space && !strcmp(d->mods[i].path, path))
			return 1;
	return 0;
}

static int add_module(struct rec_drain *d, const struct hs_module *m)
{
	if (d->nmods == d->capmods) {
		size_t cap = d->capmods ? d->capmods * 2 : 32;
		struct rec_module *v = realloc(d->mods, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->mods = v;
		d->capmods = cap;
	}
	struct rec_module *r = &d->mods[d->nmods++];
	memset(r, 0, sizeof(*r));
	r->id = d->nmods;
	r->space = m->space;
	r->bias = m->bias;
	r->start = m->start;
	r->end = m->end;
	r->build_id_len = m->build_id_len <= sizeof(r->build_id) ? m->build_id_len : sizeof(r->build_id);
	memcpy(r->build_id, m->build_id, r->build_id_len);
	size_t len = strnlen(m->path, sizeof(r->path) - 1);
	memcpy(r->path, m->path, len);
	r->path[len] = 0;
	tw_begin(d->w, TR_MODULE);
	tw_u(d->w, r->id);
	tw_u(d->w, r->space);
	tw_u(d->w, r->bias);
	tw_u(d->w, r->start);
	tw_u(d->w, r->end);
	tw_bytes(d->w, r->build_id, r->build_id_len);
	tw_str(d->w, r->path);
	tw_end(d->w);
	d->st.modules++;
	return 0;
}

/*
 * Reads the module log entries appended since the last round. An entry is
 * published (the count stored with release) after it is written. A module
 * is new when its (space, path, bias) was not seen before: unloaded modules
 * stay in our list, their addresses still need symbols.
 */
static int read_modules(struct rec_drain *d)
{
	uint32_t n = atomic_load_explicit(&d->h->nmodules, memory_order_acquire);
	if (n > HS_MAX_MODULES)
		n = HS_MAX_MODULES;
	for (; d->mods_done < n; d->mods_done++) {
		struct hs_module m = d->shm_modules[d->mods_done];
		m.path[sizeof(m.path) - 1] = 0;
		if (m.start > m.end || module_known(d, m.space, m.path, m.bias))
			continue;
		int ret = add_module(d, &m);
		if (ret)
			return ret;
	}
	return 0;
}

static inline int ev_class(unsigned kind)
{
	return hs_ev_is_free(kind) ? 0 : hs_ev_is_alloc(kind) ? 1 : 2;
}

/* Writes one pending entry. Returns 1 when written or skipped, 0 when it
 * must wait for its stack node (not yet filled in), -errno on error. */
static int write_event(struct rec_drain *d, const struct pend *e, int final)
{
	struct trace_writer *w = d->w;
	uint64_t t = trace_time(d, e->time);
	unsigned kind = e->kind;
	if (kind == KIND_SAMPLE) {
		if (rec_procs_need(d->procs, w, e->thread, 0))
			return -ENOMEM;
		tw_begin(w, TR_SAMPLE);
		tw_time(w, t);
		tw_u(w, e->thread);
		tw_u(w, e->size);
		tw_end(w);
		d->st.samples++;
		return 1;
	}
	if (kind == KIND_SMAPS) {
		struct procfs_maps *m = (struct procfs_maps *)(uintptr_t)e->addr;
		int ret = rec_procs_need(d->procs, w, e->thread, 0);
		if (!ret)
			write_smaps(d, t, e->thread, (unsigned)e->size, m);
		procfs_maps_free(m);
		free(m);
		return ret ? ret : 1;
	}
	struct thr *th = &d->thr[e->thread];
	if (rec_procs_need(d->procs, w, th->proc, th->pid))
		return -ENOMEM;
	if (kind == HS_EV_EXIT) {
		/* leaks are counted at the first exit path; a second one is noise */
		struct pstate *ps = pstate_of(d, th->proc);
		if (!ps)
			return -ENOMEM;
		if (!ps->exit_written) {
			tw_begin(w, TR_EXIT_MARK);
			tw_time(w, t);
			tw_u(w, th->proc);
			tw_end(w);
			ps->exit_written = 1;
			d->st.exit_marks++;
		}
		return 1;
	}
	int is_map = kind >= HS_EV_MMAP && kind <= HS_EV_SBRK;
	if (kind == HS_EV_MALLINFO) {
		tw_begin(w, TR_MALLINFO);
		tw_time(w, t);
		tw_u(w, th->proc);
		tw_u(w, e->addr);     /* arena */
		tw_u(w, e->x_stack);  /* ordblks */
		tw_u(w, e->stack);    /* hblks */
		tw_u(w, e->size);     /* hblkhd */
		tw_u(w, e->x[1]);     /* uordblks */
		tw_u(w, e->x[2]);     /* fordblks */
		tw_u(w, e->x[0]);     /* keepcost */
		tw_end(w);
		d->st.mallinfos++;
		return 1;
	}
	if (!hs_ev_is_alloc(kind) && !hs_ev_is_free(kind) && !is_map) {
		d->st.skipped++;
		return 1;
	}
	uint32_t stack = hs_ev_is_alloc(kind) || is_map ? e->stack : 0;
	if (stack >= d->nodes_done) {
		write_nodes(d, final);
		if (stack >= d->nodes_done) {
			if (!final && stack < HS_MAX_NODES)
				return 0;
			d->st.anomalies++;
			stack = 0;
		}
	}
	if (th->index == NO_INDEX) {
		th->index = d->next_index++;
		tw_begin(w, TR_THREAD);
		tw_time(w, t);
		tw_u(w, th->index);
		tw_u(w, th->tid);
		tw_u(w, th->proc);
		tw_end(w);
		d->st.threads++;
	}
	if (is_map) {
		tw_begin(w, TR_MAP);
		tw_time(w, t);
		tw_u(w, th->index);
		tw_u(w, kind - HS_EV_MMAP + TR_MAP_MMAP);
		tw_u(w, stack);
		tw_u(w, e->addr);
		tw_u(w, e->size);
		tw_u(w, e->x[1]);    /* old address or break */
		tw_u(w, kind == HS_EV_MREMAP ? e->x[2] : 0);
		tw_u(w, e->x_stack); /* prot */
		tw_u(w, e->x[0]);    /* flags */
		tw_u(w, kind == HS_EV_MMAP ? e->x[2] : 0); /* fd + 1 */
		tw_end(w);
		d->st.maps++;
	} else if (hs_ev_is_alloc(kind)) {
		uint64_t v[] = { th->index, kind, stack, e->size & HS_SIZE_MASK, e->addr, e->size >> HS_SIZE_BITS };
		tw_timed(w, TR_ALLOC, t, v, 6);
		d->st.allocs++;
	} else {
		uint64_t v[] = { th->index, kind, e->addr };
		tw_timed(w, TR_FREE, t, v, 3);
		d->st.frees++;
	}
	d->st.events++;
	return 1;
}

/* ---- merge ----------------------------------------------------------- */

/* Queue a's front goes before queue b's: time, then frees first, then the
 * lower ring (any fixed order keeps the output deterministic). */
static inline int before(const struct rec_drain *d, uint32_t a, uint32_t b)
{
	const struct pend *x = q_front(&d->q[a]), *y = q_front(&d->q[b]);
	if (x->time != y->time)
		return x->time < y->time;
	int cx = ev_class(x->kind), cy = ev_class(y->kind);
	if (cx != cy)
		return cx < cy;
	return a < b;
}

static void sift_down(struct rec_drain *d, size_t n, size_t i)
{
	uint32_t *hp = d->heap;
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < n && before(d, hp[l], hp[m]))
			m = l;
		if (l + 1 < n && before(d, hp[l + 1], hp[m]))
			m = l + 1;
		if (m == i)
			return;
		uint32_t t = hp[i];
		hp[i] = hp[m];
		hp[m] = t;
		i = m;
	}
}

/* Writes every pending entry older than limit (exclusive), in order. */
static int merge(struct rec_drain *d, uint64_t limit, int final)
{
	size_t n = 0;
	for (uint32_t i = 0; i < NQUEUES; i++)
		if (!q_empty(&d->q[i]) && q_front(&d->q[i])->time < limit)
			d->heap[n++] = i;
	for (size_t i = n / 2; i-- > 0;)
		sift_down(d, n, i);
	while (n) {
		struct queue *q = &d->q[d->heap[0]];
		int ret = write_event(d, q_front(q), final);
		if (ret < 0)
			return ret;
		if (ret == 0)
			break; /* its stack node is not filled in yet: next round */
		/* the writer puts it at the time of the last one: the watermark
		 * failed, unless the ring was let go as stalled */
		if (q_front(q)->time < d->last_time)
			d->st.late += !q_front(q)->stalled;
		else
			d->last_time = q_front(q)->time;
		q->head++;
		if (q_empty(q) || q_front(q)->time >= limit)
			d->heap[0] = d->heap[--n];
		sift_down(d, n, 0);
	}
	return 0;
}

/* ---- rings ----------------------------------------------------------- */

/*
 * Whether the program touched the page at p. The memfd says where its next
 * page in use is (lseek SEEK_DATA), and the pages up to there are untouched
 * for the rest of round T without another call: the last round looks at
 * each of the ~1 000 rings past the highest claimed one, which cost ~1 ms
 * as one mincore each. Without the memfd, mincore.
 */
static int page_resident(struct rec_drain *d, const void *p, uint64_t T)
{
	unsigned char v = 0;
	uintptr_t a = (uintptr_t)p & ~((uintptr_t)d->page - 1);
	off_t off = (off_t)(a - (uintptr_t)d->h);
	if (d->shm_fd >= 0) {
		if (d->hole_T == T && off >= d->hole_lo && off < d->hole_hi)
			return 0;
		off_t next = lseek(d->shm_fd, off, SEEK_DATA);
		if (next == off)
			return 1;
		if (next > off || (next < 0 && errno == ENXIO)) {
			d->hole_T = T;
			d->hole_lo = off;
			d->hole_hi = next > off ? next : (off_t)d->h->total_size;
			return 0;
		}
	}
	if (mincore((void *)a, (size_t)d->page, &v) < 0)
		return 1; /* cannot tell: look */
	return v & 1;
}

/* The ring's thread will publish nothing more: it is gone, or its image
 * was replaced by exec (which keeps the main thread's tid). */
static int thread_gone(const struct rec_drain *d, const struct thr *th)
{
	if (rec_procs_ended(d->procs, th->proc))
		return 1;
	return th->pid > 0 && syscall(SYS_tgkill, th->pid, th->tid, 0) < 0 && errno == ESRCH;
}

/* Copies ring i's published events into its queue. Returns the number
 * copied, 0 for a free ring, -1 when it is the end of the claimed rings,
 * or -ENOMEM. The shared ring has no owner and no state: each thread's
 * events follow an HS_EV_THREAD naming it; it is looked at once the target
 * touched it (see i > ring_hi below). */
static long drain_ring(struct rec_drain *d, int i, uint64_t T, int final, int live_check, int watch)
{
	struct hs_ring *r = &d->rings[i];
	struct ring_st *rs = &d->rs[i];
	int shared = i == HS_SHARED_RING;
	if (shared && !d->shared_seen) {
		if (!page_resident(d, &r->busy, T))
			return 0;
		d->shared_seen = 1;
		rs->lb = d->prev_T;
	} else if (!shared && i > d->ring_hi) {
		/* The library claims the lowest free ring, so past the highest ring
		 * ever claimed, the first free one ends the search: a claim beyond
		 * it came after we looked, later than T. We look at the page first
		 * so that our read does not make it resident: RSS samples subtract
		 * our shared memory and must not count pages the target never
		 * touched. */
		if (!page_resident(d, &r->state, T))
			return final ? 0 : -1;
		rs->lb = d->prev_T; /* it was free when we last looked */
	}
	uint32_t state = shared ? HS_RING_OWNED : atomic_load_explicit(&r->state, memory_order_acquire);
	if (state == HS_RING_FREE) {
		rs->busy = 0;
		rs->lb = T;
		return i > d->ring_hi && !final ? -1 : 0;
	}
	if (!shared && i > d->ring_hi)
		d->ring_hi = i;
	/* busy before head: a producer we see idle publishes later than T */
	uint32_t busy = atomic_load_explicit(&r->busy, memory_order_seq_cst);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	/* gen after head: a published event implies its owner's gen and tid */
	uint32_t gen = atomic_load_explicit(&r->gen, memory_order_acquire);
	if (!shared && (gen != rs->gen || !rs->have_thread)) {
		int ret = thread_of(d, r->serial, r->tid, r->pid, r->proc, &rs->thread);
		if (ret)
			return ret;
		rs->gen = gen;
		rs->have_thread = 1;
	}
	int dead = 0;
	if (!shared && state == HS_RING_OWNED && (final || live_check) && thread_gone(d, &d->thr[rs->thread]))
		dead = 1; /* exited without closing: whatever it reserved never comes */
	uint64_t n = head - rs->tail;
	if (n > HS_RING_EVENTS) {
		/* only we move tail: more than a ring's worth is a broken producer */
		d->st.skipped += n - HS_RING_EVENTS;
		rs->tail = head - HS_RING_EVENTS;
		n = HS_RING_EVENTS;
	}
	if (n) {
		struct queue *q = &d->q[i];
		struct pend *dst = q_reserve(q, n);
		if (!dst)
			return -ENOMEM;
		uint64_t j = 0;
		for (uint64_t k = 0; k < n; k++) {
			const struct hs_event *e = &r->ev[(rs->tail + k) % HS_RING_EVENTS];
			if (e->kind == HS_EV_CONT) {
				/* published with the event before it: more of its fields */
				if (j && hs_ev_has_cont(dst[j - 1].kind)) {
					struct pend *p = &dst[j - 1];
					p->x[0] = e->time;
					p->x[1] = e->addr;
					p->x[2] = e->size;
					p->x_stack = e->stack;
				} else {
					d->st.anomalies++;
				}
				continue;
			}
			if (e->kind == HS_EV_THREAD && shared) {
				/* the shared ring's events up to the next are this thread's */
				int ret = thread_of(d, (uint32_t)e->addr, (uint32_t)e->size, (uint32_t)(e->size >> 32),
						    e->stack, &rs->thread);
				if (ret)
					return ret;
				rs->have_thread = 1;
				continue;
			}
			if (e->kind == HS_EV_THREAD || !rs->have_thread) {
				d->st.anomalies++;
				continue;
			}
			dst[j++] = (struct pend){ .time = e->time, .addr = e->addr, .size = e->size,
						  .stack = e->stack, .kind = e->kind, .thread = rs->thread,
						  .stalled = rs->busy_since == UINT64_MAX };
		}
		q->len += j;
		if (j)
			rs->last = dst[j - 1].time;
		rs->tail = head;
		atomic_store_explicit(&r->tail, head, memory_order_release);
	}
	if (!watch) {
		/* busy loaded without the barrier tells nothing: the last
		 * watermark stands until the next round with one */
	} else if ((rs->busy = busy && !dead && !final) && (head != rs->busy_head || !rs->busy_since)) {
		rs->busy_head = head;
		rs->busy_since = T;
	} else if (rs->busy && T - rs->busy_since > BUSY_STALL_NS) {
		/* Stuck mid-event (a thread stopped, or dead with its tid
		 * reused): holding every other thread back would grow our queues
		 * without bound. Its event, if it ever comes, is written at the
		 * time of the events around it. */
		if (rs->busy_since != UINT64_MAX)
			d->st.anomalies++;
		rs->busy_since = UINT64_MAX;
		rs->busy = 0;
	} else if (!rs->busy) {
		rs->busy_since = 0;
	}
	if (!watch) {
	} else if (rs->busy) {
		if (rs->last > rs->lb)
			rs->lb = rs->last;
	} else {
		rs->lb = T;
	}
	if (shared) {
	} else if (state == HS_RING_CLOSED) {
		atomic_store_explicit(&r->state, HS_RING_FREE, memory_order_release);
	} else if (dead) {
		uint32_t expect = HS_RING_OWNED;
		atomic_compare_exchange_strong(&r->state, &expect, HS_RING_FREE);
	}
	return (long)n;
}

/* ---- the ring protocol ---------------------------------------------- */

static int membarrier_global(void)
{
	return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0 ? 0 : -errno;
}

int rec_ring_start(struct hs_shm_header *h, const char *mode)
{
	int want = -1; /* auto */
	if (mode && *mode && strcmp(mode, "auto")) {
		want = !strcmp(mode, "membarrier") ? 1 : !strcmp(mode, "fence") ? 0 : 2;
		if (want == 2) {
			rec_error("HEAPSCOPE_RING is '%s'; use membarrier, fence or auto", mode);
			return -1;
		}
	}
	/* one call tells what a round needs: the command, not only the kernel's word */
	int err = want ? membarrier_global() : 0;
	if (want == 1 && err) {
		rec_error("HEAPSCOPE_RING=membarrier, but membarrier(2) cannot be used here: %s", strerror(-err));
		return -1;
	}
	if (!want || err)
		h->options |= HS_OPT_RING_FENCE;
	ring_want_light = want == 1;
	return 0;
}

long rec_drain_round(struct rec_drain *d, int final)
{
	/* The clock first, then a full fence, then (when a process writes busy
	 * without one) membarrier, then the rings: see shm_layout.h. Rounds
	 * between two membarriers copy events out but keep the last
	 * watermark. */
	uint64_t T = rec_clock_now();
	hs_clock_fence();
	atomic_thread_fence(memory_order_seq_cst);
	int watch = 1; /* the busy flags tell where the watermark is */
	if (atomic_load_explicit(&d->h->ring_light, memory_order_relaxed)) {
		if (!final && T - d->barrier_T < BARRIER_NS) {
			watch = 0;
		} else {
			watch = membarrier_global() == 0;
			d->st.anomalies += !watch;
			d->st.barriers++;
			d->barrier_T = T;
		}
	}
	int live_check = 0;
	long moved = 0;
	if (T >= d->next_live_check) {
		live_check = 1;
		d->next_live_check = T + LIVE_CHECK_NS;
		rec_procs_check(d->procs, T);
	}
	for (int i = 0; i < (int)HS_MAX_RINGS; i++) {
		long n = drain_ring(d, i, T, final, live_check, watch);
		if (n == -1)
			break;
		if (n < 0)
			return n;
		moved += n;
	}
	long n = drain_ring(d, HS_SHARED_RING, T, final, live_check, watch);
	if (n < 0)
		return n;
	moved += n;
	/* after the rings: an event seen implies its process entry is readable */
	int ret = rec_procs_scan(d->procs, d->w, final);
	if (!ret)
		ret = read_modules(d);
	if (!ret)
		ret = read_exit_smaps(d);
	if (ret)
		return ret;
	write_nodes(d, final);
	uint64_t limit = T + 1;
	for (int i = 0; i < (int)NRINGS; i++)
		if (d->rs[i].busy && d->rs[i].lb < limit)
			limit = d->rs[i].lb;
	if (!watch)
		limit = d->limit; /* still true: nothing below it can come */
	d->limit = limit;
	ret = merge(d, final ? UINT64_MAX : limit, final);
	if (ret)
		return ret;
	d->prev_T = T;
	d->st.rounds++;
	return moved;
}

/* ---- RSS samples ----------------------------------------------------- */

/*
 * Bytes of our shared memory in use: the memfd's allocated blocks. We only
 * ever read pages the target wrote (see drain_ring), so these are the shared
 * pages in its RSS (and swapped ones, which RssShmem leaves out). One fstat
 * instead of mincore over the regions, which cost ~1 ms of the seed CSV's
 * 30 ms of recorder CPU.
 */
static uint64_t shm_resident(struct rec_drain *d)
{
	struct stat st;
	if (d->shm_fd < 0 || fstat(d->shm_fd, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

/* A "Name:   123 kB" line of /proc/PID/status, in bytes; 0 when missing. */
static uint64_t status_kb(const char *buf, const char *name)
{
	const char *p = strstr(buf, name);
	return p ? strtoull(p + strlen(name), NULL, 10) * 1024 : 0;
}

/*
 * A process's RSS as the kernel counts it (/proc/PID/status), less the pages
 * of our shared memory it maps: RssAnon + RssFile + max(0, RssShmem - the
 * resident part of our memory). Our pages are only touched by the processes
 * that wrote them, so for one process this is exact; for several, a
 * program's own shared memory is undercounted by at most our size.
 */
static int sample_one(struct rec_drain *d, uint32_t i, uint32_t pid, uint64_t shm)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* gone: the next check says so */
	uint64_t t = rec_clock_now();
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (!strstr(buf, "\nRssAnon:"))
		return 0; /* a zombie has no memory to show */
	uint64_t shmem = status_kb(buf, "\nRssShmem:");
	uint64_t rss = status_kb(buf, "\nRssAnon:") + status_kb(buf, "\nRssFile:") + (shmem > shm ? shmem - shm : 0);
	struct pend *e = q_reserve(&d->q[SAMPLE_QUEUE], 1);
	struct pstate *ps = pstate_of(d, i);
	if (!e || !ps)
		return -ENOMEM;
	*e = (struct pend){ .time = t, .size = rss, .kind = KIND_SAMPLE, .thread = i };
	d->q[SAMPLE_QUEUE].len++;
	if (rss <= ps->peak_rss)
		return 0;
	ps->peak_rss = rss;
	/* the mappings at a new peak, when it grew enough since the last look:
	 * reading smaps costs, and a few percent tell nothing new */
	if (ps->snap_rss && (double)rss < (double)ps->snap_rss * SMAPS_GROWTH)
		return 0;
	struct procfs_maps *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (procfs_smaps_read(m, (int)pid, NULL, 0)) {
		procfs_maps_free(m);
		free(m);
		return 0; /* gone, or not ours to read */
	}
	ps->snap_rss = rss;
	return queue_smaps(d, SAMPLE_QUEUE, rec_clock_now(), i, TR_SMAPS_PEAK_RSS, m);
}

int rec_drain_sample(struct rec_drain *d)
{
	uint64_t shm = shm_resident(d);
	size_t n = rec_procs_count(d->procs);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t pid;
		if (!rec_procs_live(d->procs, i, &pid))
			continue;
		int ret = sample_one(d, i, pid, shm);
		if (ret)
			return ret;
	}
	return 0;
}
