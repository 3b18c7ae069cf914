/*
 * model_proc.c: the processes of a trace (see model_proc.h).
 *
 * One pass, shared with model.c: each record goes through
 * model_proc_record first, which learns the processes, threads and address
 * spaces, and rewrites what the model must tell apart:
 *   - blocks: the address of a block of any process but the first (the
 *     base) gets a tag in bits the user address space never uses (bit 63,
 *     and the process index from bit 47), so the model's one table of live
 *     blocks keeps the same address in two processes as two blocks;
 *   - stacks: a root node (ip 0, parent 0: an address space) is taken out,
 *     its children become outermost frames; the instruction addresses of
 *     every space but the first get the same kind of tag, in TR_STACK and
 *     TR_SYMBOL alike, so the model's symbol table, keyed by address, keeps
 *     two programs apart (model_proc_raw_ip gives the address back);
 *   - RSS: a sample becomes the sum over the processes at that moment (the
 *     recorder samples them all in one sweep, in index order).
 * With several processes, model_proc_finish reads the trace a second time
 * for each process's own numbers, and counts the leaks per process: at its
 * own exit mark, nothing for an image that exec replaced.
 */
#include "analyze/model_proc.h"
#include "analyze/model_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROCS (1u << 20)      /* process indices a trace may use */
#define MAX_THREADS (1u << 24)    /* thread indices kept */
#define MAX_NODES (1u << 24)      /* stack node ids kept */
#define USER_BITS 47              /* user addresses below 2^47: tags go above */
#define TAG_BIT (1ull << 63)
#define ROOT 0x80000000u          /* node_tag: this node is a root */
#define NO_PROC UINT32_MAX

/* Per process, what the passes keep besides the public numbers. */
struct pstate {
	int known, selected, execd, marked;
	uint64_t tag;              /* of its blocks' addresses, 0 for the base */
	uint64_t sweep, last_rss;  /* its last RSS sample, and the sweep it came in */
	/* second pass */
	uint64_t live_slack;
	uint64_t extra_bytes, extra_blocks; /* freed after its exit mark: still leaks */
};

/* Every table is sized by the processes, threads and nodes the trace has,
 * not by the largest index it names: pub and st hold one slot per process
 * index named, in the order first named (sorted by index at the end). */
struct model_proc {
	struct model_process *pub;
	struct pstate *st;
	size_t np, cap;
	struct idmap slot_of;      /* process index -> slot */
	struct idmap thread_slot;  /* thread index -> thread slot */
	uint32_t *thread_proc;     /* thread slot -> process slot */
	size_t nthreads, threads_cap;
	struct idmap node_tag;     /* node id -> space tag index (ROOT: a root) */
	uint32_t ntags;            /* space tag indices given (0: the first space) */
	int filter;
	uint64_t filter_pid;
	int64_t base;              /* the first process taken, -1 before */
	uint32_t nselected;
	uint64_t sweep, prev_sample, total_rss;
};

/* The pid model_load_pid asks the next model_load of this thread for. */
static _Thread_local struct {
	int on;
	uint64_t pid;
} want;

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *p = realloc(*arr, n * elem);
	if (!p)
		return -ENOMEM;
	memset((char *)p + *cap * elem, 0, (n - *cap) * elem);
	*arr = p;
	*cap = n;
	return 0;
}

static struct model_proc *state(struct model *m)
{
	if (!m->proc) {
		m->proc = calloc(1, sizeof(*m->proc));
		if (m->proc) {
			m->proc->base = -1;
			m->proc->filter = want.on;
			m->proc->filter_pid = want.pid;
		}
	}
	return m->proc;
}

/* The slot of process index i, NO_PROC when it was never named. */
static uint32_t proc_find(const struct model_proc *s, uint64_t i)
{
	return model_map_get(&s->slot_of, i);
}

/* The slot of process index i (< MAX_PROCS), made on first use; NO_PROC
 * when out of memory. */
static uint32_t proc_slot(struct model_proc *s, uint64_t i)
{
	uint32_t k = proc_find(s, i);
	if (k != NO_PROC)
		return k;
	size_t cap_pub = s->cap, need = s->np + 1;
	if (grow((void **)&s->pub, &cap_pub, need, sizeof(*s->pub)) ||
	    grow((void **)&s->st, &s->cap, need, sizeof(*s->st)) || model_map_put(&s->slot_of, i, (uint32_t)s->np))
		return NO_PROC;
	k = (uint32_t)s->np++;
	s->pub[k].index = i;
	s->pub[k].parent = -1;
	s->pub[k].end = MODEL_PEND_NONE;
	return k;
}

static uint32_t proc_of_thread(const struct model_proc *s, uint64_t thread)
{
	uint32_t t = model_map_get(&s->thread_slot, thread);
	uint32_t k = t != IDMAP_NONE ? s->thread_proc[t] : NO_PROC;
	return k == NO_PROC ? proc_find(s, 0) : k; /* a thread never named: the program's */
}

static int selected(const struct model_proc *s, uint32_t k)
{
	return !s->filter || (k < s->np && s->st[k].selected);
}

static uint64_t addr_key(const struct model_proc *s, uint32_t k, uint64_t addr)
{
	uint64_t tag = k < s->np ? s->st[k].tag : 0;
	return addr && tag && addr < (1ull << USER_BITS) ? addr ^ tag : addr;
}

static uint64_t space_tag(uint32_t t)
{
	return t ? TAG_BIT | (uint64_t)(t & 0xffff) << USER_BITS : 0;
}

static uint64_t ip_key(uint32_t t, uint64_t ip)
{
	return t && ip < (1ull << USER_BITS) ? ip ^ space_tag(t) : ip;
}

/* The tag word of node id: its space's tag index, ROOT for a root; 0 for
 * a node never seen. */
static uint32_t node_word(const struct model_proc *s, uint64_t id)
{
	uint32_t w = model_map_get(&s->node_tag, id);
	return w == IDMAP_NONE ? 0 : w;
}

static uint32_t node_tag(const struct model_proc *s, uint64_t id)
{
	return node_word(s, id) & ~ROOT;
}

static int on_process(struct model *m, struct model_proc *s, struct trace_record *rec)
{
	uint64_t i = rec->u.process.index;
	if (i >= MAX_PROCS)
		return 0;
	uint32_t k = proc_slot(s, i);
	if (k == NO_PROC)
		return -ENOMEM;
	struct model_process *p = &s->pub[k];
	struct pstate *st = &s->st[k];
	if (st->known)
		return 0; /* described once */
	int oom = 0;
	st->known = 1;
	p->pid = rec->u.process.pid;
	p->parent = rec->u.process.parent && rec->u.process.parent - 1 < i ? (int64_t)rec->u.process.parent - 1 : -1;
	p->how = rec->u.process.how <= TR_PROC_SPAWN ? (unsigned)rec->u.process.how : TR_PROC_SPAWN;
	p->flags = (unsigned)rec->u.process.flags;
	p->start_ns = rec->u.process.start;
	p->exe = model_pool_intern(&m->priv->strings, rec->u.process.exe, &oom);
	p->argv = calloc((size_t)rec->u.process.argc + 1, sizeof(*p->argv));
	if (!p->argv)
		return -ENOMEM;
	for (uint32_t a = 0; a < rec->u.process.argc; a++)
		p->argv[a] = model_pool_intern(&m->priv->strings, rec->u.process.argv[a], &oom);
	p->argc = rec->u.process.argc;
	if (oom)
		return -ENOMEM;
	st->selected = !s->filter || p->pid == s->filter_pid;
	p->in_model = st->selected;
	if (!st->selected)
		return 0;
	s->nselected++;
	if (s->base < 0)
		s->base = (int64_t)i;
	st->tag = (int64_t)i == s->base ? 0 : TAG_BIT | ((i + 1) & 0xffff) << USER_BITS;
	return 1;
}

static int on_thread(struct model_proc *s, const struct trace_record *rec)
{
	uint64_t t = rec->u.thread.index, k = rec->u.thread.process;
	if (t >= MAX_THREADS || k >= MAX_PROCS)
		return 1;
	uint32_t slot = proc_slot(s, k), ts = model_map_get(&s->thread_slot, t);
	if (slot == NO_PROC)
		return -ENOMEM;
	if (ts == IDMAP_NONE) {
		if (grow((void **)&s->thread_proc, &s->threads_cap, s->nthreads + 1, sizeof(*s->thread_proc)) ||
		    model_map_put(&s->thread_slot, t, (uint32_t)s->nthreads))
			return -ENOMEM;
		ts = (uint32_t)s->nthreads++;
	}
	s->thread_proc[ts] = slot;
	s->pub[slot].threads++;
	return 1;
}

/* Root nodes go; their children become outermost frames; addresses of the
 * spaces after the first get their tag. */
static int on_stack(struct model_proc *s, struct trace_record *rec)
{
	uint64_t id = rec->u.stack.id, parent = rec->u.stack.parent;
	if (!parent && !rec->u.stack.ip) {
		/* an address space (or a node never filled in: it names nothing) */
		if (id < MAX_NODES && s->ntags < ROOT - 1 && model_map_put(&s->node_tag, id, ROOT | s->ntags++))
			return -ENOMEM;
		return 0;
	}
	uint32_t t = 0;
	if (parent) {
		uint32_t w = node_word(s, parent);
		t = w & ~ROOT;
		if (w & ROOT)
			rec->u.stack.parent = 0;
	}
	if (id < MAX_NODES && model_map_put(&s->node_tag, id, t))
		return -ENOMEM;
	rec->u.stack.ip = ip_key(t, rec->u.stack.ip);
	return 1;
}

/* The running sum of every process's last sample: the recorder samples them
 * in index order, so a lower index starts a sweep, and a process left out
 * of a whole sweep has ended. */
static void sum_sample(struct model_proc *s, uint32_t k, struct trace_record *rec)
{
	struct pstate *st = &s->st[k];
	uint64_t index = s->pub[k].index;
	if (index <= s->prev_sample || !s->sweep) {
		for (size_t j = 0; j < s->np; j++)
			if (s->st[j].last_rss && s->st[j].sweep < s->sweep) {
				s->total_rss -= s->st[j].last_rss;
				s->st[j].last_rss = 0;
			}
		s->sweep++;
	}
	s->prev_sample = index;
	s->total_rss += rec->u.sample.rss - st->last_rss;
	st->last_rss = rec->u.sample.rss;
	st->sweep = s->sweep;
	struct model_process *p = &s->pub[k];
	p->rss_samples++;
	if (rec->u.sample.rss > p->peak_rss) {
		p->peak_rss = rec->u.sample.rss;
		p->peak_rss_time_ns = rec->time;
	}
	rec->u.sample.rss = s->total_rss;
}

int model_proc_record(struct model *m, struct trace_record *rec)
{
	struct model_proc *s = state(m);
	uint32_t k;
	uint64_t i;
	if (!s)
		return -ENOMEM;
	switch (rec->type) {
	case TR_PROCESS:
		return on_process(m, s, rec);
	case TR_PROCESS_END: {
		i = rec->u.process_end.index;
		if (i >= MAX_PROCS)
			return 0;
		if ((k = proc_slot(s, i)) == NO_PROC)
			return -ENOMEM;
		if (rec->u.process_end.how <= TR_PEND_RUNNING) {
			s->pub[k].end = (enum model_pend)rec->u.process_end.how;
			s->pub[k].end_code = rec->u.process_end.code;
			s->pub[k].end_ns = rec->u.process_end.end;
		}
		return 0;
	}
	case TR_THREAD:
		return on_thread(s, rec);
	case TR_STACK:
		return on_stack(s, rec);
	case TR_SYMBOL: {
		uint64_t space = rec->u.symbol.space;
		uint32_t t = space && (node_word(s, space) & ROOT) ? node_tag(s, space) : 0;
		rec->u.symbol.ip = ip_key(t, rec->u.symbol.ip);
		return 1;
	}
	case TR_SAMPLE:
		k = proc_slot(s, rec->u.sample.process < MAX_PROCS ? rec->u.sample.process : 0);
		if (k == NO_PROC)
			return -ENOMEM;
		if (!selected(s, k))
			return 0;
		sum_sample(s, k, rec);
		return 1;
	case TR_EXIT_MARK:
		k = proc_slot(s, rec->u.exit_mark.process < MAX_PROCS ? rec->u.exit_mark.process : 0);
		if (k == NO_PROC)
			return -ENOMEM;
		if (!selected(s, k))
			return 0;
		s->pub[k].exit_mark = 1;
		return 1;
	case TR_MALLINFO:
	case TR_SMAPS:
		/* what the allocator and the kernel show of one process: the base */
		i = rec->type == TR_MALLINFO ? rec->u.mallinfo.process : rec->u.smaps.process;
		return s->base < 0 ? !s->filter && i == 0 : i == (uint64_t)s->base;
	default:
		return model_proc_replay(m, rec);
	}
}

int model_proc_plain(const struct model *m)
{
	const struct model_proc *s = m->proc;
	/* one process, all of it taken: nothing to tell apart */
	return !s || (s->np <= 1 && !s->filter);
}

int model_proc_replay(const struct model *m, struct trace_record *rec)
{
	const struct model_proc *s = m->proc;
	uint32_t k;
	if (model_proc_plain(m))
		return 1;
	switch (rec->type) {
	case TR_ALLOC:
		k = proc_of_thread(s, rec->u.alloc.thread);
		rec->u.alloc.addr = addr_key(s, k, rec->u.alloc.addr);
		return selected(s, k);
	case TR_FREE:
		k = proc_of_thread(s, rec->u.free.thread);
		rec->u.free.addr = addr_key(s, k, rec->u.free.addr);
		return selected(s, k);
	case TR_MAP:
		k = proc_of_thread(s, rec->u.map.thread);
		rec->u.map.addr = addr_key(s, k, rec->u.map.addr);
		rec->u.map.old_addr = addr_key(s, k, rec->u.map.old_addr);
		return selected(s, k);
	case TR_SAMPLE:
		return selected(s, proc_find(s, rec->u.sample.process < MAX_PROCS ? rec->u.sample.process : 0));
	default:
		return 1;
	}
}

/* ---- the second pass: each process's own numbers ------------------------ */

struct blk {
	uint64_t key, size, time;
	uint32_t stack;            /* index into m->stacks, UINT32_MAX: none */
	uint32_t proc;             /* slot */
	uint32_t thread;           /* thread slot, UINT32_MAX: none */
	uint16_t slack;
	uint8_t after_mark;        /* allocated after its process's exit mark */
};

/* addr-keyed open addressing, key 0 = empty, backward-shift deletion */
struct blocks {
	struct blk *e;
	size_t cap, used;
};

static struct blk *blk_find(const struct blocks *t, uint64_t key)
{
	if (!t->cap)
		return NULL;
	for (size_t i = model_hash64(key) & (t->cap - 1); t->e[i].key; i = (i + 1) & (t->cap - 1))
		if (t->e[i].key == key)
			return &t->e[i];
	return NULL;
}

static struct blk *blk_slot(struct blocks *t, uint64_t key)
{
	if ((t->used + 1) * 10 > t->cap * 7) {
		size_t cap = t->cap ? t->cap * 2 : 4096;
		struct blk *e = calloc(cap, sizeof(*e));
		if (!e)
			return NULL;
		model_oa_rehash(e, cap, t->e, t->cap, sizeof(*e), model_oa_hashed);
		free(t->e);
		t->e = e;
		t->cap = cap;
	}
	size_t i = model_hash64(key) & (t->cap - 1);
	while (t->e[i].key && t->e[i].key != key)
		i = (i + 1) & (t->cap - 1);
	return &t->e[i];
}

static void blk_remove(struct blocks *t, struct blk *b)
{
	model_oa_remove(t->e, sizeof(*t->e), t->cap, (size_t)(b - t->e), model_oa_hashed);
	t->used--;
}

struct thr {
	uint64_t last;             /* key of its latest allocation */
	int has_last;
};

struct pass2 {
	struct model *m;
	struct model_proc *s;
	struct blocks live;
	struct thr *thr;           /* per thread slot */
	size_t nthr;
	uint64_t *leak_bytes, *leak_blocks; /* per stack index */
	uint64_t *extra_bytes, *extra_blocks;
};

static uint32_t stack_index(const struct model *m, uint64_t id)
{
	uint32_t i = model_map_get(&m->priv->stack_ids, id);
	return i < m->nstacks ? i : UINT32_MAX;
}

/* A block a fork child frees that it had from its parent: live in an
 * ancestor of the same address space, allocated before the fork. */
static int inherited(struct pass2 *ps, uint32_t k, uint64_t addr)
{
	const struct model_proc *s = ps->s;
	uint64_t since = s->pub[k].start_ns;
	for (uint32_t c = k, steps = 0; steps < 64 && s->pub[c].how == TR_PROC_FORK && s->pub[c].parent >= 0; steps++) {
		if ((c = proc_find(s, (uint64_t)s->pub[c].parent)) == NO_PROC)
			return 0;
		const struct blk *b = blk_find(&ps->live, addr_key(s, c, addr));
		if (b && b->proc == c && b->time <= since)
			return 1;
	}
	return 0;
}

static int p2_alloc(struct pass2 *ps, const struct trace_record *rec)
{
	struct model_proc *s = ps->s;
	uint32_t k = proc_of_thread(s, rec->u.alloc.thread);
	if (!selected(s, k) || k >= s->np)
		return 0;
	struct model_process *p = &s->pub[k];
	uint64_t size = rec->u.alloc.size, key = addr_key(s, k, rec->u.alloc.addr);
	p->allocations++;
	p->allocated_bytes += size;
	uint32_t t = model_map_get(&s->thread_slot, rec->u.alloc.thread);
	if (t < ps->nthr) {
		ps->thr[t].last = key;
		ps->thr[t].has_last = 1;
	}
	if (!key)
		return 0;
	struct blk *b = blk_slot(&ps->live, key);
	if (!b)
		return -ENOMEM;
	if (b->key) {
		/* still live: its free was lost; the new block replaces it */
		struct model_process *q = &s->pub[b->proc];
		q->live_bytes -= b->size;
		q->live_blocks--;
	} else {
		ps->live.used++;
	}
	*b = (struct blk){ key, size, rec->time, stack_index(ps->m, rec->u.alloc.stack), k, t,
			   rec->u.alloc.slack < 0xffff ? (uint16_t)rec->u.alloc.slack : 0xffff, (uint8_t)s->st[k].marked };
	p->live_bytes += size;
	p->live_blocks++;
	s->st[k].live_slack += b->slack;
	if (p->live_bytes > p->peak_heap) {
		p->peak_heap = p->live_bytes;
		p->peak_time_ns = rec->time;
		p->peak_blocks = p->live_blocks;
	}
	return 0;
}

static void p2_free(struct pass2 *ps, const struct trace_record *rec)
{
	struct model_proc *s = ps->s;
	uint32_t k = proc_of_thread(s, rec->u.free.thread);
	if (!selected(s, k) || k >= s->np || !rec->u.free.addr)
		return;
	struct model_process *p = &s->pub[k];
	uint64_t key = addr_key(s, k, rec->u.free.addr);
	uint32_t t = model_map_get(&s->thread_slot, rec->u.free.thread);
	struct blk *b = blk_find(&ps->live, key);
	if (!b) {
		if (inherited(ps, k, rec->u.free.addr))
			p->inherited_frees++;
		else
			p->unknown_frees++;
		return;
	}
	p->frees++;
	p->live_bytes -= b->size;
	p->live_blocks--;
	s->st[k].live_slack -= b->slack;
	if (t < ps->nthr && b->thread == t && ps->thr[t].has_last && ps->thr[t].last == key) {
		p->temporary++;
		p->temporary_bytes += b->size;
		ps->thr[t].has_last = 0;
	}
	/* live at its exit mark: a leak, even if a later destructor freed it */
	if (s->st[k].marked && !b->after_mark) {
		s->st[k].extra_bytes += b->size;
		s->st[k].extra_blocks++;
		if (b->stack != UINT32_MAX) {
			ps->extra_bytes[b->stack] += b->size;
			ps->extra_blocks[b->stack]++;
		}
	}
	blk_remove(&ps->live, b);
}

static int second_pass(struct model *m, const char *path)
{
	struct model_proc *s = m->proc;
	struct pass2 ps = { .m = m, .s = s };
	struct trace_reader *r = NULL;
	struct trace_record rec;
	int ret = trace_reader_open(&r, path, NULL, 0);
	if (ret)
		return ret == -ENOMEM ? ret : 0; /* what the first pass read stands */
	size_t ns = m->nstacks ? m->nstacks : 1;
	ps.nthr = s->nthreads;
	ps.thr = calloc(ps.nthr ? ps.nthr : 1, sizeof(*ps.thr));
	ps.leak_bytes = calloc(ns, sizeof(uint64_t));
	ps.leak_blocks = calloc(ns, sizeof(uint64_t));
	ps.extra_bytes = calloc(ns, sizeof(uint64_t));
	ps.extra_blocks = calloc(ns, sizeof(uint64_t));
	ret = -ENOMEM;
	if (!ps.thr || !ps.leak_bytes || !ps.leak_blocks || !ps.extra_bytes || !ps.extra_blocks)
		goto out;
	for (size_t i = 0; i < s->np; i++) {
		struct model_process *p = &s->pub[i];
		/* the first pass counted samples and threads; these are this pass's */
		p->allocations = p->frees = p->allocated_bytes = p->temporary = p->temporary_bytes = 0;
		p->peak_heap = p->peak_time_ns = p->peak_blocks = 0;
		p->live_bytes = p->live_blocks = 0;
		s->st[i].marked = 0;
		/* exec: what the replaced image still had is no leak of anyone's */
		uint32_t parent = p->parent >= 0 ? proc_find(s, (uint64_t)p->parent) : NO_PROC;
		if (s->st[i].selected && p->how == TR_PROC_EXEC && parent != NO_PROC)
			s->st[parent].execd = 1;
	}
	for (;;) {
		rec.type = 0;
		ret = trace_reader_next(r, &rec);
		if (ret == 0 && rec.type == TR_STRING)
			continue;
		if (ret <= 0)
			break;
		if (rec.type == TR_ALLOC) {
			if ((ret = p2_alloc(&ps, &rec)) < 0)
				goto out;
		} else if (rec.type == TR_FREE) {
			p2_free(&ps, &rec);
		} else if (rec.type == TR_EXIT_MARK) {
			uint32_t k = proc_find(s, rec.u.exit_mark.process);
			if (k != NO_PROC)
				s->st[k].marked = 1;
		} else if (rec.type == TR_SYMBOL) {
			break; /* the symbol table follows every event */
		}
	}
	/* what is live now: leaks, but for the images exec replaced and the
	 * blocks a process allocated after its exit mark */
	for (size_t i = 0; i < ps.live.cap; i++) {
		const struct blk *b = &ps.live.e[i];
		if (!b->key || b->proc >= s->np || s->st[b->proc].execd || b->after_mark)
			continue;
		struct model_process *p = &s->pub[b->proc];
		p->leaked_bytes += b->size;
		p->leaked_blocks++;
		if (b->stack != UINT32_MAX) {
			ps.leak_bytes[b->stack] += b->size;
			ps.leak_blocks[b->stack]++;
		}
	}
	uint64_t lb = 0, lk = 0, inh = 0, slack = 0;
	int all_marked = 1;
	for (size_t i = 0; i < s->np; i++) {
		struct model_process *p = &s->pub[i];
		if (!s->st[i].known || !s->st[i].selected)
			continue;
		if (s->st[i].execd) {
			/* nothing happens to an image after its exec: live at the end
			 * is live at the exec */
			p->exec_live_bytes = p->live_bytes;
			p->exec_live_blocks = p->live_blocks;
		}
		p->leaked_bytes += s->st[i].extra_bytes;
		p->leaked_blocks += s->st[i].extra_blocks;
		lb += p->leaked_bytes;
		lk += p->leaked_blocks;
		inh += p->inherited_frees;
		if (!s->st[i].execd && !(p->flags & TR_PROC_UNTRACED)) {
			slack += s->st[i].live_slack;
			all_marked &= p->exit_mark;
		}
	}
	/* the model's leaks, counted per process */
	struct model_summary *sum = &m->sum;
	sum->leaked_bytes = lb;
	sum->leaked_blocks = lk;
	sum->leaked_usable = lb + slack;
	sum->leaks_at_exit = all_marked;
	sum->frees += inh;
	sum->unknown_frees = sum->unknown_frees > inh ? sum->unknown_frees - inh : 0;
	for (size_t i = 0; i < m->nstacks; i++) {
		m->stacks[i].leaked_bytes = ps.leak_bytes[i] + ps.extra_bytes[i];
		m->stacks[i].leaked_blocks = ps.leak_blocks[i] + ps.extra_blocks[i];
	}
	ret = 0;
out:
	trace_reader_close(r);
	free(ps.live.e);
	free(ps.thr);
	free(ps.leak_bytes);
	free(ps.leak_blocks);
	free(ps.extra_bytes);
	free(ps.extra_blocks);
	return ret == -ENOMEM ? ret : 0;
}

/* One process: its numbers are the model's. */
static void from_model(struct model *m, struct model_process *p)
{
	const struct model_summary *s = &m->sum;
	p->allocations = s->allocations;
	p->frees = s->frees;
	p->allocated_bytes = s->allocated_bytes;
	p->temporary = s->temporary;
	p->temporary_bytes = s->temporary_bytes;
	p->peak_heap = s->peak_heap;
	p->peak_time_ns = s->peak_time_ns;
	p->peak_blocks = s->peak_blocks;
	p->leaked_bytes = s->leaked_bytes;
	p->leaked_blocks = s->leaked_blocks;
	p->live_bytes = s->live_bytes;
	p->live_blocks = s->live_blocks;
	p->unknown_frees = s->unknown_frees;
}

static int by_index(const void *a, const void *b)
{
	uint64_t x = ((const struct model_process *)a)->index, y = ((const struct model_process *)b)->index;
	return x < y ? -1 : x > y;
}

/* The slots in index order, as model_processes gives them: the threads'
 * and the index map's slots follow. */
static int sort_slots(struct model_proc *s)
{
	size_t i;
	for (i = 1; i < s->np && s->pub[i - 1].index < s->pub[i].index; i++)
		;
	if (i >= s->np)
		return 0; /* named in index order: the usual trace */
	struct { struct model_process p; struct pstate st; } *v = malloc(s->np * sizeof(*v));
	uint32_t *to = malloc(s->np * sizeof(*to));
	if (!v || !to) {
		free(v);
		free(to);
		return -ENOMEM;
	}
	for (i = 0; i < s->np; i++)
		v[i].p = s->pub[i], v[i].st = s->st[i];
	qsort(v, s->np, sizeof(*v), by_index); /* the struct starts with its model_process */
	for (i = 0; i < s->np; i++) {
		s->pub[i] = v[i].p;
		s->st[i] = v[i].st;
		uint32_t old = proc_find(s, v[i].p.index);
		to[old] = (uint32_t)i;
	}
	int ret = 0;
	for (i = 0; i < s->np && !ret; i++)
		ret = model_map_put(&s->slot_of, s->pub[i].index, (uint32_t)i);
	for (i = 0; i < s->nthreads; i++)
		if (s->thread_proc[i] != NO_PROC)
			s->thread_proc[i] = to[s->thread_proc[i]];
	free(v);
	free(to);
	return ret;
}

int model_proc_finish(struct model *m, const char *path)
{
	struct model_proc *s = state(m);
	if (!s)
		return -ENOMEM;
	uint32_t first = proc_slot(s, 0); /* index 0 is always listed */
	if (first == NO_PROC)
		return -ENOMEM;
	for (size_t i = 0; i < s->np; i++)
		if (s->pub[i].end == MODEL_PEND_NONE || s->pub[i].end == MODEL_PEND_RUNNING)
			s->pub[i].end_ns = m->sum.run_time_ns;
	if (s->nselected > 1) {
		int ret = second_pass(m, path);
		if (ret)
			return ret;
	} else {
		from_model(m, &s->pub[s->base >= 0 ? proc_find(s, (uint64_t)s->base) : first]);
	}
	if (s->filter && s->base >= 0) {
		/* the process's exit is its last image's */
		const struct model_process *last = NULL;
		for (size_t i = 0; i < s->np; i++)
			if (s->st[i].selected && s->pub[i].end != MODEL_PEND_EXEC)
				last = &s->pub[i];
		if (last && last->end != MODEL_PEND_NONE) {
			m->sum.has_end = 1;
			m->sum.exit_kind = last->end == MODEL_PEND_EXITED	? MODEL_EXITED
					   : last->end == MODEL_PEND_SIGNALED ? MODEL_SIGNALED
									    : MODEL_EXIT_UNKNOWN;
			m->sum.exit_code = last->end_code;
		}
	}
	return sort_slots(s);
}

void model_proc_free(struct model *m)
{
	struct model_proc *s = m->proc;
	if (!s)
		return;
	for (size_t i = 0; i < s->np; i++)
		free(s->pub[i].argv);
	free(s->pub);
	free(s->st);
	free(s->thread_proc);
	model_map_free(&s->slot_of);
	model_map_free(&s->thread_slot);
	model_map_free(&s->node_tag);
	free(s);
	m->proc = NULL;
}

/* ---- for outputs ---------------------------------------------------------- */

const struct model_process *model_processes(const struct model *m, size_t *n)
{
	const struct model_proc *s = m->proc;
	*n = s ? s->np : 0;
	return s ? s->pub : NULL;
}

const struct model_process *model_process_at(const struct model *m, uint64_t index)
{
	const struct model_proc *s = m->proc;
	uint32_t k = s ? proc_find(s, index) : NO_PROC;
	return k != NO_PROC && s->st[k].known ? &s->pub[k] : NULL;
}

int model_load_pid(struct model **out, const char *path, uint64_t pid, char *err, size_t errlen)
{
	want.on = 1;
	want.pid = pid;
	int ret = model_load(out, path, err, errlen);
	want.on = 0;
	if (ret < 0)
		return ret;
	if (!(*out)->proc || !(*out)->proc->nselected) {
		if (err)
			snprintf(err, errlen, "%s: no process with pid %llu in the trace; 'heapscope report %s' lists them",
				 path, (unsigned long long)pid, path);
		model_free(*out);
		*out = NULL;
		return -ESRCH;
	}
	return 0;
}

const char *model_proc_how_name(unsigned how)
{
	static const char *const names[] = { "program", "fork", "exec", "spawn" };
	return how < 4 ? names[how] : "?";
}
