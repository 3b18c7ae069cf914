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
 */
#include "record/record.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NQUEUES (HS_MAX_RINGS + 1)
#define SAMPLE_QUEUE HS_MAX_RINGS        /* the recorder's own RSS samples */
#define KIND_SAMPLE 0xffffu               /* never a ring kind: marks a sample */
#define LIVE_CHECK_NS 100000000ull       /* how often OWNED rings' threads are checked */
#define NODE_WAIT_NS 1000000000ull       /* a node unfilled this long lost its writer */
#define BUSY_STALL_NS 250000000ull       /* mid-event this long: stop holding others back */
#define NO_INDEX UINT32_MAX
#define CHUNK_PAGES 256                  /* residency is cached per chunk of pages */
#define HASH_RECOUNT_NS 100000000ull     /* how often the sparse hash is recounted */

/* An event copied out of a ring, tagged with the thread that wrote it (a
 * ring can change owner while its old events still wait here). */
struct pend {
	uint64_t time;                    /* CLOCK_MONOTONIC ns */
	uint64_t addr;
	uint64_t size;                    /* the RSS for a sample */
	uint32_t stack;
	uint16_t kind;
	uint16_t pad;
	uint32_t thread;                  /* index into d->thr */
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
	uint32_t tid;
	uint32_t index;                   /* dense trace index, NO_INDEX until written */
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
	uint64_t next_live_check;
	struct ring_st rs[HS_MAX_RINGS];
	struct queue q[NQUEUES];
	uint32_t heap[NQUEUES];
	struct thr *thr;
	size_t nthr, capthr;
	uint32_t next_index;
	uint32_t nodes_done;              /* next stack node id to write */
	uint64_t node_wait_since;         /* when nodes_done was first seen unfilled */
	uint32_t modules_seq;             /* seqlock value of the last read */
	struct hs_module *mscratch;       /* a consistent copy of the module list */
	struct rec_module *mods;
	size_t nmods, capmods;
	int exit_written;
	int statm_fd;
	unsigned char mvec[CHUNK_PAGES];  /* mincore vector */
	uint8_t *chunk_full;              /* per chunk of our mapping: all resident */
	uint64_t hash_pages, hash_recount;
	struct rec_drain_stats st;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t rec_drain_now(const struct rec_drain *d)
{
	uint64_t t = mono_ns();
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
	d->statm_fd = -1;
	if (pid > 0) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/statm", (int)pid);
		d->statm_fd = open(p, O_RDONLY | O_CLOEXEC);
	}
	*out = d;
	return 0;
}

void rec_drain_free(struct rec_drain *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < NQUEUES; i++)
		free(d->q[i].v);
	free(d->thr);
	free(d->mscratch);
	free(d->mods);
	free(d->chunk_full);
	if (d->statm_fd >= 0)
		close(d->statm_fd);
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
	if (q->head >= q->cap / 2) {
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

static int new_thread(struct rec_drain *d, uint32_t tid, uint32_t *idx)
{
	if (d->nthr == d->capthr) {
		size_t cap = d->capthr ? d->capthr * 2 : 64;
		struct thr *t = realloc(d->thr, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		d->thr = t;
		d->capthr = cap;
	}
	d->thr[d->nthr] = (struct thr){ .tid = tid, .index = NO_INDEX };
	*idx = (uint32_t)d->nthr++;
	return 0;
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
			uint64_t now = mono_ns();
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

static int module_known(const struct rec_drain *d, const char *path, uint64_t bias)
{
	for (size_t i = d->nmods; i-- > 0;)
		if (d->mods[i].bias == bias && !strcmp(d->mods[i].path, path))
			return 1;
	return 0;
}

static int add_module(struct rec_drain *d, const struct hs_module *m, const char *path)
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
	r->bias = m->bias;
	r->start = m->start;
	r->end = m->end;
	r->build_id_len = m->build_id_len <= sizeof(r->build_id) ? m->build_id_len : sizeof(r->build_id);
	memcpy(r->build_id, m->build_id, r->build_id_len);
	size_t len = strnlen(path, sizeof(r->path) - 1); /* h->exe may be longer: cut */
	memcpy(r->path, path, len);
	r->path[len] = 0;
	tw_begin(d->w, TR_MODULE);
	tw_u(d->w, r->id);
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
 * Reads the module list when its seqlock moved: copy, then check the
 * sequence did not change under us. The copy races with the writer by
 * design (a seqlock); a torn copy is thrown away. A module is new when its
 * (path, bias) was not seen before: unloaded modules stay in our list, their
 * addresses still need symbols.
 */
static int read_modules(struct rec_drain *d, int final)
{
	struct hs_shm_header *h = d->h;
	uint32_t s1 = atomic_load_explicit(&h->modules_seq, memory_order_acquire), n = 0;
	if (s1 == d->modules_seq)
		return 0;
	if (!d->mscratch) {
		d->mscratch = malloc(HS_MAX_MODULES * sizeof(*d->mscratch));
		if (!d->mscratch)
			return -ENOMEM;
	}
	for (int tries = 0;; tries++) {
		if (s1 & 1) {
			/* being rewritten: next round, unless the writer died mid-way */
			if (!final)
				return 0;
			if (tries < 1000) {
				sched_yield();
				s1 = atomic_load_explicit(&h->modules_seq, memory_order_acquire);
				continue;
			}
		}
		n = *(volatile uint32_t *)&h->nmodules;
		if (n > HS_MAX_MODULES)
			n = HS_MAX_MODULES;
		memcpy(d->mscratch, d->shm_modules, n * sizeof(*d->mscratch));
		atomic_thread_fence(memory_order_acquire);
		uint32_t s2 = atomic_load_explicit(&h->modules_seq, memory_order_relaxed);
		if (s2 == s1 || (final && tries >= 1000))
			break;
		s1 = s2;
	}
	d->modules_seq = s1;
	for (uint32_t i = 0; i < n; i++) {
		struct hs_module *m = &d->mscratch[i];
		m->path[sizeof(m->path) - 1] = 0;
		/* the loader names the main program ""; the library fills in exe */
		const char *path = m->path[0] || i ? m->path : h->exe;
		if (m->start > m->end || module_known(d, path, m->bias))
			continue;
		int ret = add_module(d, m, path);
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
		tw_begin(w, TR_SAMPLE);
		tw_time(w, t);
		tw_u(w, e->size);
		tw_end(w);
		d->st.samples++;
		return 1;
	}
	if (kind == HS_EV_EXIT) {
		/* leaks are counted at the first exit path; a second one is noise */
		if (!d->exit_written) {
			tw_begin(w, TR_EXIT_MARK);
			tw_time(w, t);
			tw_end(w);
			d->exit_written = 1;
			d->st.exit_marks++;
		}
		return 1;
	}
	int is_map = kind >= HS_EV_MMAP && kind <= HS_EV_SBRK;
	if (kind == HS_EV_MALLINFO) {
		tw_begin(w, TR_MALLINFO);
		tw_time(w, t);
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
	struct thr *th = &d->thr[e->thread];
	if (th->index == NO_INDEX) {
		th->index = d->next_index++;
		tw_begin(w, TR_THREAD);
		tw_time(w, t);
		tw_u(w, th->index);
		tw_u(w, th->tid);
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
		tw_begin(w, TR_ALLOC);
		tw_time(w, t);
		tw_u(w, th->index);
		tw_u(w, kind);
		tw_u(w, stack);
		tw_u(w, e->size & HS_SIZE_MASK);
		tw_u(w, e->addr);
		tw_u(w, e->size >> HS_SIZE_BITS);
		tw_end(w);
		d->st.allocs++;
	} else {
		tw_begin(w, TR_FREE);
		tw_time(w, t);
		tw_u(w, th->index);
		tw_u(w, kind);
		tw_u(w, e->addr);
		tw_end(w);
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
		q->head++;
		if (q_empty(q) || q_front(q)->time >= limit)
			d->heap[0] = d->heap[--n];
		sift_down(d, n, 0);
	}
	return 0;
}

/* ---- rings ----------------------------------------------------------- */

static int page_resident(struct rec_drain *d, const void *p)
{
	unsigned char v = 0;
	uintptr_t a = (uintptr_t)p & ~((uintptr_t)d->page - 1);
	if (mincore((void *)a, (size_t)d->page, &v) < 0)
		return 1; /* cannot tell: look */
	return v & 1;
}

static int thread_gone(const struct rec_drain *d, uint32_t tid)
{
	return d->pid > 0 && syscall(SYS_tgkill, d->pid, tid, 0) < 0 && errno == ESRCH;
}

/* Copies ring i's published events into its queue. Returns the number
 * copied, 0 for a free ring, -1 when it is the end of the claimed rings,
 * or -ENOMEM. */
static long drain_ring(struct rec_drain *d, int i, uint64_t T, int final, int live_check)
{
	struct hs_ring *r = &d->rings[i];
	struct ring_st *rs = &d->rs[i];
	if (i > d->ring_hi) {
		/* The library claims the lowest free ring, so past the highest ring
		 * ever claimed, the first free one ends the search: a claim beyond
		 * it came after we looked, later than T. We look at the page first
		 * so that our read does not make it resident: RSS samples subtract
		 * our shared memory and must not count pages the target never
		 * touched. */
		if (!page_resident(d, &r->state))
			return final ? 0 : -1;
		rs->lb = d->prev_T; /* it was free when we last looked */
	}
	uint32_t state = atomic_load_explicit(&r->state, memory_order_acquire);
	if (state == HS_RING_FREE) {
		rs->busy = 0;
		rs->lb = T;
		return i > d->ring_hi && !final ? -1 : 0;
	}
	if (i > d->ring_hi)
		d->ring_hi = i;
	/* busy before head: a producer we see idle publishes later than T */
	uint32_t busy = atomic_load_explicit(&r->busy, memory_order_seq_cst);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	/* gen after head: a published event implies its owner's gen and tid */
	uint32_t gen = atomic_load_explicit(&r->gen, memory_order_acquire);
	if (gen != rs->gen || !rs->have_thread) {
		int ret = new_thread(d, r->tid, &rs->thread);
		if (ret)
			return ret;
		rs->gen = gen;
		rs->have_thread = 1;
	}
	int dead = 0;
	if (state == HS_RING_OWNED && (final || live_check) && thread_gone(d, r->tid))
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
			dst[j++] = (struct pend){ .time = e->time, .addr = e->addr, .size = e->size,
						  .stack = e->stack, .kind = e->kind, .thread = rs->thread };
		}
		q->len += j;
		if (j)
			rs->last = dst[j - 1].time;
		rs->tail = head;
		atomic_store_explicit(&r->tail, head, memory_order_release);
	}
	rs->busy = busy && !dead && !final;
	if (rs->busy && (head != rs->busy_head || !rs->busy_since)) {
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
	if (rs->busy) {
		if (rs->last > rs->lb)
			rs->lb = rs->last;
	} else {
		rs->lb = T;
	}
	if (state == HS_RING_CLOSED) {
		atomic_store_explicit(&r->state, HS_RING_FREE, memory_order_release);
	} else if (dead) {
		uint32_t expect = HS_RING_OWNED;
		atomic_compare_exchange_strong(&r->state, &expect, HS_RING_FREE);
	}
	return (long)n;
}

long rec_drain_round(struct rec_drain *d, int final)
{
	/* The clock first, then a full fence, then the rings: see shm_layout.h. */
	uint64_t T = mono_ns();
	atomic_thread_fence(memory_order_seq_cst);
	int live_check = 0;
	long moved = 0;
	if (T >= d->next_live_check) {
		live_check = 1;
		d->next_live_check = T + LIVE_CHECK_NS;
	}
	for (int i = 0; i < (int)HS_MAX_RINGS; i++) {
		long n = drain_ring(d, i, T, final, live_check);
		if (n == -1)
			break;
		if (n < 0)
			return n;
		moved += n;
	}
	int ret = read_modules(d, final);
	if (ret)
		return ret;
	write_nodes(d, final);
	uint64_t limit = T + 1;
	for (int i = 0; i <= d->ring_hi; i++)
		if (d->rs[i].busy && d->rs[i].lb < limit)
			limit = d->rs[i].lb;
	ret = merge(d, final ? UINT64_MAX : limit, final);
	if (ret)
		return ret;
	d->prev_T = T;
	d->st.rounds++;
	return moved;
}

/* ---- RSS samples ----------------------------------------------------- */

/* Resident pages in [first, first + n) of our mapping. Pages stay resident
 * once touched (shared memory is only swapped under pressure), so a chunk
 * found full is not asked about again: mincore walks the page cache page by
 * page and would otherwise cost more than the rest of the recorder. */
static uint64_t resident_pages(struct rec_drain *d, size_t first, size_t n)
{
	uint64_t count = 0;
	size_t end = first + n;
	for (size_t c = first / CHUNK_PAGES; c * CHUNK_PAGES < end; c++) {
		size_t lo = c * CHUNK_PAGES > first ? c * CHUNK_PAGES : first;
		size_t hi = (c + 1) * CHUNK_PAGES < end ? (c + 1) * CHUNK_PAGES : end;
		if (d->chunk_full[c] && hi - lo == CHUNK_PAGES) {
			count += CHUNK_PAGES;
			continue;
		}
		if (mincore((char *)d->h + lo * (size_t)d->page, (hi - lo) * (size_t)d->page, d->mvec) < 0)
			continue;
		size_t k = 0;
		for (size_t i = 0; i < hi - lo; i++)
			k += d->mvec[i] & 1;
		d->chunk_full[c] = hi - lo == CHUNK_PAGES && k == CHUNK_PAGES;
		count += k;
	}
	return count;
}

/*
 * Bytes of our shared memory that are resident. We only ever read pages the
 * target wrote (see drain_ring), so these are exactly the shared pages in its
 * RSS. Only what can have been touched is looked at: the header and modules,
 * the nodes in use, the hash (sparse, so recounted every HASH_RECOUNT_NS
 * only) and the rings up to the highest claimed one.
 */
static uint64_t shm_resident(struct rec_drain *d, uint64_t now)
{
	struct hs_shm_header *h = d->h;
	size_t pg = (size_t)d->page;
	if (!d->chunk_full) {
		d->chunk_full = calloc(h->total_size / pg / CHUNK_PAGES + 1, 1);
		if (!d->chunk_full)
			return 0;
	}
	uint32_t used = atomic_load_explicit(&h->nodes_used, memory_order_relaxed);
	if (used > HS_MAX_NODES)
		used = HS_MAX_NODES;
	uint64_t nodes_end = h->nodes_off + (uint64_t)used * sizeof(struct hs_node);
	uint64_t pages = resident_pages(d, 0, (size_t)((nodes_end + pg - 1) / pg));
	if (now >= d->hash_recount) {
		d->hash_pages = resident_pages(d, (size_t)(h->hash_off / pg),
					       (size_t)((uint64_t)HS_HASH_SLOTS * sizeof(uint32_t) / pg));
		d->hash_recount = now + HASH_RECOUNT_NS;
	}
	pages += d->hash_pages;
	uint64_t rings_end = h->rings_off + (uint64_t)(d->ring_hi + 2) * sizeof(struct hs_ring);
	if (rings_end > h->total_size)
		rings_end = h->total_size;
	pages += resident_pages(d, (size_t)(h->rings_off / pg), (size_t)((rings_end - h->rings_off + pg - 1) / pg));
	return pages * pg;
}

int rec_drain_sample(struct rec_drain *d)
{
	char buf[256];
	uint64_t t = mono_ns();
	if (d->statm_fd < 0)
		return -ESRCH;
	/* statm is regenerated on every read from offset 0 */
	ssize_t n = pread(d->statm_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return n < 0 ? -errno : -ESRCH;
	buf[n] = 0;
	unsigned long long size, resident;
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return -EINVAL;
	uint64_t rss = (uint64_t)resident * (uint64_t)d->page, shm = shm_resident(d, t);
	struct pend *e = q_reserve(&d->q[SAMPLE_QUEUE], 1);
	if (!e)
		return -ENOMEM;
	*e = (struct pend){ .time = t, .size = rss > shm ? rss - shm : 0, .kind = KIND_SAMPLE };
	d->q[SAMPLE_QUEUE].len++;
	return 0;
}
