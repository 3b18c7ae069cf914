/*
 * model.c: the single streaming pass over a trace that builds the model.
 *
 * State per event is O(1): the live blocks (address -> stack, size;
 * model_live.c), per-stack totals keyed by leaf stack id, per-thread "last
 * allocation" for temporaries, and a fixed-size timeline. Nothing is
 * allocated per event; tables grow by doubling.
 *
 * Peak contribution in one pass: the global peak_epoch counts how many times
 * a new maximum of live bytes was reached. Before a stack's live value
 * changes, if its snapshot is from an older epoch, the snapshot takes the
 * current (pre-change) value: that is its value at the latest peak, since it
 * has not changed since. At the end, a stack whose snapshot is of the final
 * epoch has changed since the peak and the snapshot is its value at the peak;
 * any other stack still holds its value at the peak.
 */
#include "analyze/model_priv.h"
#include "analyze/model_proc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the pass ------------------------------------------------------------- */

struct thread_state {
	uint64_t last; /* address of its latest allocation, if has_last */
	int has_last;
	uint32_t pend_chain; /* its last event freed a block by realloc: the chain */
	uint64_t pend_addr;  /* and that block's address */
};

/* Temporaries without a thread per block: a thread's latest allocation is
 * its claim for as long as that block lives, and a block that leaves (freed,
 * or replaced after a lost free) takes the claim with it. So a free is of a
 * temporary exactly when the freeing thread holds the claim. With several
 * threads, claims maps each claimed address to its thread, so that a free
 * by another thread can drop the claim. */
struct claim {
	uint64_t addr; /* 0: an empty slot */
	uint32_t thread;
};

struct claims {
	struct claim *e;
	size_t cap, used; /* cap a power of two */
};

struct pass {
	struct model *m;
	struct live_tab live;
	uint64_t live_bytes, live_blocks;
	uint64_t live_slack; /* usable - requested of the live blocks */
	uint64_t tag_bytes, tag_slack, tag_blocks; /* of blocks of other processes (address bit 63) */
	struct claims claims; /* used once a second thread is seen */
	uint64_t epoch; /* peak epoch, see the top of this file */
	int exit_seen;
	struct idmap thread_ids; /* thread -> threads[] */
	struct thread_state *threads;
	size_t nthreads, threads_cap;
	uint64_t cached_stack_id; /* one-entry cache in front of stack_ids */
	uint32_t cached_stack;
	uint64_t tl_next; /* start of the step after the last timeline point */
	uint64_t last_time;
};

static struct claim *claim_find(const struct claims *c, uint64_t addr)
{
	if (!c->cap)
		return NULL;
	size_t mask = c->cap - 1;
	for (size_t i = model_hash64(addr) & mask; c->e[i].addr; i = (i + 1) & mask)
		if (c->e[i].addr == addr)
			return &c->e[i];
	return NULL;
}

static int claim_put(struct claims *c, uint64_t addr, uint32_t thread)
{
	if ((c->used + 1) * 2 > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct claim *e = calloc(cap, sizeof(*e));
		if (!e)
			return -ENOMEM;
		model_oa_rehash(e, cap, c->e, c->cap, sizeof(*e), model_oa_hashed);
		free(c->e);
		c->e = e;
		c->cap = cap;
	}
	size_t mask = c->cap - 1, i = model_hash64(addr) & mask;
	while (c->e[i].addr && c->e[i].addr != addr)
		i = (i + 1) & mask;
	c->used += !c->e[i].addr;
	c->e[i] = (struct claim){ addr, thread };
	return 0;
}

/* Removes the claim on addr; returns its thread, UINT32_MAX when none. */
static uint32_t claim_drop(struct claims *c, uint64_t addr)
{
	struct claim *ent = claim_find(c, addr);
	if (!ent)
		return UINT32_MAX;
	uint32_t thread = ent->thread;
	model_oa_remove(c->e, sizeof(*c->e), c->cap, (size_t)(ent - c->e), model_oa_hashed);
	c->used--;
	return thread;
}

/* The block at addr left: whoever claimed it loses the claim. */
static void claim_lost(struct pass *ps, uint64_t addr)
{
	if (ps->nthreads < 2)
		return; /* the one thread's claim is on its latest block, which did not leave */
	uint32_t t = claim_drop(&ps->claims, addr);
	if (t != UINT32_MAX)
		ps->threads[t].has_last = 0;
}

/* Index of the per-stack totals for leaf id, created on first use. */
static int stack_for(struct pass *ps, uint64_t id, uint32_t *out)
{
	struct model *m = ps->m;
	struct model_priv *p = m->priv;
	if (m->nstacks && ps->cached_stack_id == id) {
		*out = ps->cached_stack;
		return 0;
	}
	uint32_t i = model_map_get(&p->stack_ids, id);
	if (i == IDMAP_NONE) {
		if (m->nstacks >= IDMAP_NONE - 1)
			return -ENOMEM;
		if (m->nstacks == p->stacks_cap) {
			/* stacks[] and snaps[] are parallel: grow both to one capacity */
			size_t cap = p->stacks_cap ? p->stacks_cap * 2 : 256;
			struct model_stack *st = realloc(m->stacks, cap * sizeof(*st));
			if (!st)
				return -ENOMEM;
			m->stacks = st;
			struct stack_snap *sn = realloc(p->snaps, cap * sizeof(*sn));
			if (!sn)
				return -ENOMEM;
			p->snaps = sn;
			p->stacks_cap = cap;
		}
		i = (uint32_t)m->nstacks;
		memset(&m->stacks[i], 0, sizeof(m->stacks[i]));
		m->stacks[i].id = id;
		p->snaps[i] = (struct stack_snap){ 0, 0, 0 };
		if (model_map_put(&p->stack_ids, id, i) < 0)
			return -ENOMEM;
		m->nstacks++;
	}
	ps->cached_stack_id = id;
	ps->cached_stack = i;
	*out = i;
	return 0;
}

static int thread_for(struct pass *ps, uint64_t thread, uint32_t *out)
{
	uint32_t i = model_map_get(&ps->thread_ids, thread);
	if (i == IDMAP_NONE) {
		if (model_grow((void **)&ps->threads, &ps->threads_cap, ps->nthreads + 1, sizeof(*ps->threads)) < 0)
			return -ENOMEM;
		i = (uint32_t)ps->nthreads++;
		ps->threads[i] = (struct thread_state){ 0, 0, 0, 0 };
		if (model_map_put(&ps->thread_ids, thread, i) < 0)
			return -ENOMEM;
		/* from the second thread on, claims are kept by address */
		const struct thread_state *first = &ps->threads[0];
		if (i == 1 && first->has_last && first->last && claim_put(&ps->claims, first->last, 0) < 0)
			return -ENOMEM;
	}
	*out = i;
	return 0;
}

/* Called before a stack's live value changes: keep its value at the peak. */
static inline void touch(struct pass *ps, uint32_t si)
{
	struct stack_snap *sn = &ps->m->priv->snaps[si];
	if (sn->epoch != ps->epoch) {
		sn->val = ps->m->stacks[si].live_bytes;
		sn->blocks = ps->m->stacks[si].live_blocks;
		sn->epoch = ps->epoch;
	}
}

/* Merges timeline points pairwise and doubles the step. */
static void tl_compact(struct model *m)
{
	size_t n = m->ntimeline, k = 0;
	for (size_t i = 0; i < n; i += 2, k++) {
		struct model_point p = m->timeline[i];
		if (i + 1 < n) {
			const struct model_point *q = &m->timeline[i + 1];
			p.heap = q->heap > p.heap ? q->heap : p.heap;
			p.rss = q->rss > p.rss ? q->rss : p.rss;
		}
		m->timeline[k] = p;
	}
	m->ntimeline = k;
	m->timeline_step_ns *= 2;
}

/* Makes the timeline's last point the one that holds time t. */
static void tl_advance(struct pass *ps, uint64_t t)
{
	struct model *m = ps->m;
	if (t < ps->tl_next)
		return;
	while (t / m->timeline_step_ns >= MODEL_TIMELINE_MAX)
		tl_compact(m);
	uint64_t b = t / m->timeline_step_ns;
	/* steps without events hold the live bytes from before them */
	while (m->ntimeline <= b) {
		m->timeline[m->ntimeline] = (struct model_point){ m->ntimeline * m->timeline_step_ns, ps->live_bytes, 0 };
		m->ntimeline++;
	}
	ps->tl_next = m->ntimeline * m->timeline_step_ns;
}

static int on_alloc(struct pass *ps, const struct trace_record *rec)
{
	struct model *m = ps->m;
	struct model_summary *s = &m->sum;
	uint64_t size = rec->u.alloc.size, addr = rec->u.alloc.addr;
	uint32_t si, ti;
	if (stack_for(ps, rec->u.alloc.stack, &si) < 0 || thread_for(ps, rec->u.alloc.thread, &ti) < 0)
		return -ENOMEM;
	tl_advance(ps, rec->time);

	s->allocations++;
	s->allocated_bytes += size;
	if (rec->u.alloc.kind < MODEL_KINDS)
		s->by_kind[rec->u.alloc.kind]++;
	unsigned b = size ? 64 - (unsigned)__builtin_clzll(size) : 0;
	m->hist[b].count++;
	m->hist[b].bytes += size;

	struct model_stack *st = &m->stacks[si];
	st->allocations++;
	st->allocated_bytes += size;
	struct thread_state *th = &ps->threads[ti];
	if (ps->nthreads > 1 && th->has_last && th->last)
		claim_drop(&ps->claims, th->last); /* its latest allocation is this one now */
	th->last = addr;
	th->has_last = 1;
	/* A realloc's new block right after its free continues the old block's
	 * growth chain; anything else ends the chain. */
	uint32_t chain = th->pend_chain;
	int step = chain && addr && (rec->u.alloc.kind == MODEL_KIND_REALLOC ||
				     rec->u.alloc.kind == MODEL_KIND_REALLOCARRAY);
	th->pend_chain = 0;
	if (chain && !step)
		model_growth_end(m, chain);
	/* A block at address 0 cannot be freed by address: count it, do not keep it. */
	if (!addr)
		return 0;
	uint32_t slack = rec->u.alloc.slack > UINT32_MAX ? UINT32_MAX : (uint32_t)rec->u.alloc.slack;

	struct live_blk nb = { size, si, slack, step ? chain : 0 }, old;
	if (step)
		model_growth_step(m, chain, th->pend_addr, addr, &nb);
	int had = model_live_put(&ps->live, addr, &nb, &old);
	if (had < 0)
		return -ENOMEM;
	if (had) {
		/* Still live: its free was lost (dropped). The new block replaces it. */
		s->reused_live++;
		touch(ps, old.stack);
		m->stacks[old.stack].live_bytes -= old.size;
		m->stacks[old.stack].live_blocks--;
		ps->live_bytes -= old.size;
		ps->live_blocks--;
		ps->live_slack -= old.slack;
		if (addr >> 63) {
			ps->tag_bytes -= old.size;
			ps->tag_slack -= old.slack;
			ps->tag_blocks--;
		}
		if (old.chain)
			model_growth_end(m, old.chain);
		claim_lost(ps, addr);
	}
	if (ps->nthreads > 1 && claim_put(&ps->claims, addr, ti) < 0)
		return -ENOMEM;
	touch(ps, si);
	st->live_bytes += size;
	st->live_blocks++;
	if (addr >> 63) {
		ps->tag_bytes += size;
		ps->tag_slack += slack;
		ps->tag_blocks++;
	}
	ps->live_bytes += size;
	ps->live_blocks++;
	ps->live_slack += slack;

	if (ps->live_bytes > s->peak_heap) {
		s->peak_heap = ps->live_bytes;
		s->peak_time_ns = rec->time;
		s->peak_blocks = ps->live_blocks;
		s->peak_usable = ps->live_bytes + ps->live_slack;
		ps->epoch++;
	}
	struct model_point *pt = &m->timeline[m->ntimeline - 1];
	if (ps->live_bytes > pt->heap)
		pt->heap = ps->live_bytes;
	return 0;
}

static int on_free(struct pass *ps, const struct trace_record *rec)
{
	struct model *m = ps->m;
	struct model_summary *s = &m->sum;
	uint64_t addr = rec->u.free.addr;
	uint32_t ti;
	if (thread_for(ps, rec->u.free.thread, &ti) < 0)
		return -ENOMEM;
	tl_advance(ps, rec->time);
	if (rec->u.free.kind < MODEL_KINDS)
		s->by_kind[rec->u.free.kind]++;
	struct thread_state *th = &ps->threads[ti];
	if (th->pend_chain) {
		/* a realloc that freed and returned nothing: its chain ends */
		model_growth_end(m, th->pend_chain);
		th->pend_chain = 0;
	}
	if (!addr)
		return 0; /* free(NULL) releases nothing */
	struct live_blk e;
	if (!model_live_take(&ps->live, addr, &e)) {
		s->unknown_frees++;
		return 0;
	}
	s->frees++; /* like valgrind: frees of blocks this recording saw allocated */
	struct model_stack *st = &m->stacks[e.stack];
	touch(ps, e.stack);
	st->live_bytes -= e.size;
	st->live_blocks--;
	st->frees++;
	ps->live_bytes -= e.size;
	ps->live_blocks--;
	ps->live_slack -= e.slack;
	if (addr >> 63) {
		ps->tag_bytes -= e.size;
		ps->tag_slack -= e.slack;
		ps->tag_blocks--;
	}
	if (rec->u.free.kind == MODEL_KIND_REALLOC_FREE) {
		/* the new block, if the realloc returned one, is the thread's next event */
		th->pend_chain = model_growth_chain(m, &e);
		th->pend_addr = addr;
		if (!th->pend_chain)
			return -ENOMEM;
	} else if (e.chain) {
		model_growth_end(m, e.chain);
	}
	/* Temporary: the same thread allocated it and allocated nothing since. */
	if (th->has_last && th->last == addr) {
		s->temporary++;
		s->temporary_bytes += e.size;
		st->temporary++;
		st->temporary_bytes += e.size;
		th->has_last = 0;
		if (ps->nthreads > 1)
			claim_drop(&ps->claims, addr);
	} else {
		claim_lost(ps, addr);
	}
	return 0;
}

/* Leaks are what is live when the program's exit path ran. */
static void snapshot_leaks(struct pass *ps, uint64_t t)
{
	struct model *m = ps->m;
	for (size_t i = 0; i < m->nstacks; i++) {
		m->stacks[i].leaked_bytes = m->stacks[i].live_bytes;
		m->stacks[i].leaked_blocks = m->stacks[i].live_blocks;
	}
	m->sum.leaked_bytes = ps->live_bytes;
	m->sum.leaked_blocks = ps->live_blocks;
	m->sum.leaked_usable = ps->live_bytes + ps->live_slack;
	m->sum.leak_time_ns = t;
	model_mem_exit_mark(m);
}

static int on_process(struct model *m, const struct trace_record *rec)
{
	struct model_priv *p = m->priv;
	struct model_summary *s = &m->sum;
	int oom = 0;
	if (s->program || p->argv_store)
		return 0; /* the first process record describes the program */
	s->pid = rec->u.process.pid;
	s->start_unix_ns = rec->u.process.start_unix_ns;
	s->page_size = rec->u.process.page_size;
	s->sample_interval_ns = rec->u.process.interval_ns;
	s->program = model_pool_intern(&p->strings, rec->u.process.exe, &oom);
	p->argv_store = calloc((size_t)rec->u.process.argc + 1, sizeof(*p->argv_store));
	if (!p->argv_store)
		return -ENOMEM;
	for (uint32_t i = 0; i < rec->u.process.argc; i++)
		p->argv_store[i] = model_pool_intern(&p->strings, rec->u.process.argv[i], &oom);
	s->argv = p->argv_store;
	s->argc = rec->u.process.argc;
	return oom ? -ENOMEM : 0;
}

static void on_end(struct model *m, const struct trace_record *rec)
{
	struct model_summary *s = &m->sum;
	s->has_end = 1;
	s->exit_kind = rec->u.end.exit_kind <= TRACE_EXIT_UNKNOWN ? (enum model_exit)rec->u.end.exit_kind
								  : MODEL_EXIT_UNKNOWN;
	s->exit_code = rec->u.end.exit_code;
	s->recorded_events = rec->u.end.events;
	s->dropped_events = rec->u.end.dropped;
	s->truncated_stacks = rec->u.end.truncated;
	s->end_flags = rec->u.end.flags;
}

static int apply(struct pass *ps, const struct trace_record *rec)
{
	struct model *m = ps->m;
	if (rec->time > ps->last_time)
		ps->last_time = rec->time;
	switch (rec->type) {
	case TR_ALLOC:
		return on_alloc(ps, rec);
	case TR_FREE:
		return on_free(ps, rec);
	case TR_STACK:
		return model_add_node(m, rec->u.stack.id, rec->u.stack.parent, rec->u.stack.ip);
	case TR_SAMPLE:
		tl_advance(ps, rec->time);
		m->sum.rss_samples++;
		if (rec->u.sample.rss > m->sum.peak_rss) {
			m->sum.peak_rss = rec->u.sample.rss;
			m->sum.peak_rss_time_ns = rec->time;
		}
		if (rec->u.sample.rss > m->timeline[m->ntimeline - 1].rss)
			m->timeline[m->ntimeline - 1].rss = rec->u.sample.rss;
		return 0;
	case TR_EXIT_MARK:
		/* the last mark wins: it is the closest to the real end */
		ps->exit_seen = 1;
		snapshot_leaks(ps, rec->time);
		return 0;
	case TR_SYMBOL:
		return model_add_symbol(m, rec->u.symbol.ip, rec->u.symbol.module, rec->u.symbol.offset,
					rec->u.symbol.nframes, rec->u.symbol.frames);
	case TR_MODULE:
		return model_add_module(m, rec->u.module.id, rec->u.module.bias, rec->u.module.start,
					rec->u.module.end, rec->u.module.path, rec->u.module.build_id,
					rec->u.module.build_id_len);
	case TR_PROCESS:
		return on_process(m, rec);
	case TR_END:
		on_end(m, rec);
		return 0;
	case TR_MAP: {
		uint32_t si;
		if (stack_for(ps, rec->u.map.stack, &si) < 0)
			return -ENOMEM;
		return model_mem_map(m, rec, si);
	}
	case TR_MALLINFO:
		model_mem_mallinfo(m, rec);
		return 0;
	case TR_SMAPS: {
		struct model_live_view v = { &ps->live, ps->live_bytes - ps->tag_bytes, ps->live_slack - ps->tag_slack,
					     ps->live_blocks - ps->tag_blocks };
		return model_mem_smaps(m, rec, &v);
	}
	default:
		/* TR_THREAD, TR_STRING: the reader keeps what symbols need */
		return 0;
	}
}

static int finish(struct pass *ps)
{
	struct model *m = ps->m;
	struct model_summary *s = &m->sum;
	tl_advance(ps, ps->last_time); /* the timeline spans the whole run */
	for (size_t i = 0; i < m->nstacks; i++) {
		struct model_stack *st = &m->stacks[i];
		const struct stack_snap *sn = &m->priv->snaps[i];
		int changed = sn->epoch == ps->epoch;
		st->peak_bytes = changed ? sn->val : st->live_bytes;
		st->peak_blocks = changed ? sn->blocks : st->live_blocks;
		if (!ps->exit_seen) {
			st->leaked_bytes = st->live_bytes;
			st->leaked_blocks = st->live_blocks;
		}
	}
	if (!ps->exit_seen) {
		s->leaked_bytes = ps->live_bytes;
		s->leaked_blocks = ps->live_blocks;
		s->leaked_usable = ps->live_bytes + ps->live_slack;
		s->leak_time_ns = ps->last_time;
	}
	s->live_usable = ps->live_bytes + ps->live_slack;
	model_mem_finish(m);
	s->leaks_at_exit = ps->exit_seen;
	s->live_bytes = ps->live_bytes;
	s->live_blocks = ps->live_blocks;
	s->run_time_ns = ps->last_time;
	s->threads = ps->nthreads;
	s->allocations_per_sec = s->run_time_ns ? (double)s->allocations * 1e9 / (double)s->run_time_ns : 0.0;
	return model_growth_finish(m);
}

/* The reader's message without its leading "path: ", which the report names. */
static void set_reason(struct model *m, enum model_gap gap, const char *path, const char *msg)
{
	size_t n = strlen(path);
	if (!strncmp(msg, path, n) && !strncmp(msg + n, ": ", 2))
		msg += n + 2;
	m->sum.complete = 0;
	m->sum.gap = gap;
	snprintf(m->sum.incomplete_reason, sizeof(m->sum.incomplete_reason), "%s", msg);
}

void model_free(struct model *m)
{
	if (!m)
		return;
	model_mem_free(m);
	model_growth_free(m);
	model_proc_free(m);
	model_priv_free(m->priv);
	free(m->stacks);
	free(m->timeline);
	free(m);
}

/* Events wait in a short queue while what the live table will read for the
 * ones behind them is prefetched, in two steps (the table's entry, then the
 * record it may point to): on a big run the table is far larger than the
 * caches, and each lookup would otherwise stall on memory in turn. Only
 * allocations and frees queue; any other record drains the queue first, so
 * records still apply in the order of the trace. The reader decodes into
 * the slot after the queue's last, so that no record is copied. */
#define QUEUE_LEN 15   /* a power of two, less the slot the reader decodes into */
#define QUEUE_MASK 15
#define QUEUE_STAGE2 8 /* queued events behind the one whose second prefetch starts */

struct event_queue {
	struct trace_record ev[QUEUE_LEN + 1];
	unsigned head, n;
};

static inline uint64_t event_addr(const struct trace_record *rec)
{
	return rec->type == TR_ALLOC ? rec->u.alloc.addr : rec->u.free.addr;
}

static struct trace_record *queue_tail(struct event_queue *q)
{
	return &q->ev[(q->head + q->n) & QUEUE_MASK];
}

static int queue_drain(struct pass *ps, struct event_queue *q)
{
	for (; q->n; q->n--, q->head = (q->head + 1) & QUEUE_MASK) {
		int ret = apply(ps, &q->ev[q->head]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The second step: what the live block's entry points to, and the totals
 * of the stack the event changes (a program with many stacks keeps them
 * out of the caches). */
static void prefetch_stack(struct pass *ps, const struct trace_record *rec)
{
	const struct model *m = ps->m;
	uint32_t si = rec->type == TR_ALLOC ? model_map_get(&m->priv->stack_ids, rec->u.alloc.stack)
					    : model_live_prefetch2(&ps->live, rec->u.free.addr);
	if (si < m->nstacks) {
		__builtin_prefetch(&m->stacks[si].allocations, 1);
		__builtin_prefetch(&m->stacks[si].live_blocks, 1);
		__builtin_prefetch(&m->priv->snaps[si], 1);
	}
}

/* The tail joins the queue; the queue's first applies when it is full. */
static int queue_push(struct pass *ps, struct event_queue *q)
{
	model_live_prefetch(&ps->live, event_addr(queue_tail(q)));
	if (q->n >= QUEUE_STAGE2)
		prefetch_stack(ps, &q->ev[(q->head + q->n - QUEUE_STAGE2) & QUEUE_MASK]);
	if (++q->n > QUEUE_LEN) {
		int ret = apply(ps, &q->ev[q->head]);
		q->head = (q->head + 1) & QUEUE_MASK;
		q->n--;
		return ret;
	}
	return 0;
}

int model_load(struct model **out, const char *path, char *err, size_t errlen)
{
	struct trace_reader *r = NULL;
	struct pass ps = { 0 };
	char buf[512] = "";
	int ret = trace_reader_open(&r, path, buf, sizeof(buf));
	if (ret < 0) {
		if (err)
			snprintf(err, errlen, "%s", ret == -ENOMEM && !buf[0] ? "out of memory" : buf);
		return ret;
	}
	struct model *m = calloc(1, sizeof(*m));
	if (m)
		m->priv = calloc(1, sizeof(*m->priv));
	if (m && m->priv)
		m->timeline = malloc(MODEL_TIMELINE_MAX * sizeof(*m->timeline));
	if (!m || !m->priv || !m->timeline || model_mem_init(m) < 0 || model_growth_init(m) < 0) {
		ret = -ENOMEM;
		goto fail;
	}
	m->timeline_step_ns = 1024; /* doubles as the run grows: <= MODEL_TIMELINE_MAX points */
	ps.m = m;
	ps.live.chain_blk = model_growth_block;
	ps.live.chain_ctx = m;

	struct event_queue q = { .n = 0 };
	int plain = 0; /* events go as they are: one process (model_proc_plain) */
	for (;;) {
		struct trace_record *rec = queue_tail(&q);
		rec->type = 0;
		ret = trace_reader_next(r, rec);
		/* The reader returns 0 (not 1) after a TR_STRING record; only a
		 * call that decoded nothing is the end of the file. */
		if (ret == 0 && rec->type == TR_STRING)
			ret = 1;
		if (ret <= 0)
			break;
		int qret = 0;
		if (rec->type == TR_ALLOC || rec->type == TR_FREE) {
			/* processes: may rewrite the record, or skip it (model_proc.h) */
			if (plain || (qret = model_proc_record(m, rec)) > 0)
				qret = queue_push(&ps, &q);
		} else if ((qret = queue_drain(&ps, &q)) == 0) {
			qret = model_proc_record(m, rec);
			plain = model_proc_plain(m);
			if (qret > 0)
				qret = apply(&ps, rec);
		}
		if (qret < 0)
			goto fail;
	}
	if (queue_drain(&ps, &q) < 0)
		goto fail;
	int fret = finish(&ps);
	if (fret < 0)
		goto fail;
	if (model_proc_finish(m, path) < 0)
		goto fail;

	m->sum.complete = 1;
	if (ret < 0) {
		const char *msg = trace_reader_error(r);
		/* The reader reports a short read as "truncated", anything else as corrupt. */
		enum model_gap gap = strstr(msg, ": truncated at offset") ? MODEL_GAP_TRUNCATED : MODEL_GAP_CORRUPT;
		if (strstr(msg, "out of memory")) {
			ret = -ENOMEM;
			goto fail;
		}
		set_reason(m, gap, path, msg);
	} else if (!m->sum.has_end) {
		set_reason(m, MODEL_GAP_NO_END, path, "no end record: the recording was interrupted");
	} else if (m->sum.end_flags & TRACE_END_RECORDER_INTERRUPTED) {
		set_reason(m, MODEL_GAP_INTERRUPTED, path, "the recorder stopped before the program did");
	}
	trace_reader_close(r);
	model_live_free(&ps.live);
	free(ps.claims.e);
	free(ps.threads);
	model_map_free(&ps.thread_ids);
	*out = m;
	return 0;
fail:
	if (err)
		snprintf(err, errlen, "%s: out of memory while reading the trace", path);
	trace_reader_close(r);
	model_live_free(&ps.live);
	free(ps.claims.e);
	free(ps.threads);
	model_map_free(&ps.thread_ids);
	model_free(m);
	return -ENOMEM;
}

/* ---- per-stack series along the timeline: a second pass ------------------ */

/* Copies the chosen stacks' live bytes into timeline point p of out. */
static void series_put(uint64_t *out, const uint64_t *cur, size_t n, size_t np, size_t p)
{
	for (size_t i = 0; i < n; i++)
		out[i * np + p] = cur[i];
}

int model_stack_series(const struct model *m, const char *path, const size_t *idx, size_t n, uint64_t *out,
		       char *err, size_t errlen)
{
	const struct model_priv *priv = m->priv;
	size_t np = m->ntimeline, pt = 0;
	struct trace_reader *r = NULL;
	struct trace_record rec;
	struct live_tab live = { 0 };
	struct live_blk e;
	uint64_t live_bytes = 0, step_max = 0;
	uint32_t *slot = NULL;
	uint64_t *cur = NULL;
	int ret;

	if (!n || !np)
		return 0;
	memset(out, 0, n * np * sizeof(*out));
	char buf[512] = "";
	ret = trace_reader_open(&r, path, buf, sizeof(buf));
	if (ret < 0) {
		if (err)
			snprintf(err, errlen, "%s", buf[0] ? buf : "out of memory");
		return ret;
	}
	/* slot[stack index]: its place among the chosen, or UINT32_MAX */
	slot = malloc((m->nstacks ? m->nstacks : 1) * sizeof(*slot));
	cur = calloc(n, sizeof(*cur));
	if (!slot || !cur)
		goto oom;
	memset(slot, 0xff, (m->nstacks ? m->nstacks : 1) * sizeof(*slot));
	for (size_t i = 0; i < n; i++)
		if (idx[i] < m->nstacks)
			slot[idx[i]] = (uint32_t)i;

	for (;;) {
		rec.type = 0;
		ret = trace_reader_next(r, &rec);
		if (ret == 0 && rec.type == TR_STRING)
			continue;
		if (ret <= 0)
			break;
		if (rec.type != TR_ALLOC && rec.type != TR_FREE && rec.type != TR_SAMPLE)
			continue;
		if (!model_proc_replay(m, &rec))
			continue; /* another process than the model's */
		/* The same points as the first pass's tl_advance: a record never
		 * moves the timeline back, and a new point starts from the values
		 * the previous one ended with. */
		size_t b = rec.time / m->timeline_step_ns;
		if (b >= np)
			b = np - 1;
		if (b > pt) {
			for (; pt < b; pt++)
				series_put(out, cur, n, np, pt + 1);
			step_max = live_bytes;
		}
		if (rec.type == TR_ALLOC) {
			uint64_t addr = rec.u.alloc.addr, size = rec.u.alloc.size;
			uint32_t si = model_map_get(&priv->stack_ids, rec.u.alloc.stack);
			if (!addr || si == IDMAP_NONE)
				continue;
			int had = model_live_put(&live, addr, &(struct live_blk){ size, si, 0, 0 }, &e);
			if (had < 0)
				goto oom;
			if (had) {
				if (slot[e.stack] != UINT32_MAX)
					cur[slot[e.stack]] -= e.size;
				live_bytes -= e.size;
			}
			if (slot[si] != UINT32_MAX)
				cur[slot[si]] += size;
			live_bytes += size;
			if (live_bytes > step_max) {
				step_max = live_bytes;
				series_put(out, cur, n, np, pt);
			}
		} else if (rec.type == TR_FREE && rec.u.free.addr) {
			if (!model_live_take(&live, rec.u.free.addr, &e))
				continue;
			if (slot[e.stack] != UINT32_MAX)
				cur[slot[e.stack]] -= e.size;
			live_bytes -= e.size;
		}
	}
	for (; pt + 1 < np; pt++)
		series_put(out, cur, n, np, pt + 1);
	trace_reader_close(r);
	model_live_free(&live);
	free(slot);
	free(cur);
	return 0;
oom:
	if (err)
		snprintf(err, errlen, "%s: out of memory while reading the trace", path);
	trace_reader_close(r);
	model_live_free(&live);
	free(slot);
	free(cur);
	return -ENOMEM;
}
