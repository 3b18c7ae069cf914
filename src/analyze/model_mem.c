/*
 * model_mem.c: memory beyond the heap. The mappings the program made itself
 * (TR_MAP), what the allocator holds (TR_MALLINFO), and the process's
 * mappings at peak RSS and at exit (TR_SMAPS), joined with the live blocks of
 * that moment into the waterfall from bytes requested to resident memory.
 * Every number is defined in docs/definitions.md; keep the two in step.
 *
 * The program's live mappings are a sorted array of disjoint intervals, each
 * charged to the stack that mapped it: an munmap may cut any of them, and
 * the kernel bounds how many a process has (vm.max_map_count, 65530 by
 * default), so the array stays small. Per-stack values at the peak of mapped
 * bytes come from the same epoch trick as the heap's peak (model.c).
 */
#include "analyze/model_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define IV_MAX (1u << 18)    /* live mappings tracked; far above the kernel's limit */
#define CHUNK_HEADER 8       /* glibc: the size field before each in-use chunk */

/* Blocks and mappings of other processes than the one a snapshot is of carry
 * bit 63 in their address (model_proc.c): a snapshot counts only its own. */
static int own_addr(uint64_t addr)
{
	return !(addr >> 63);
}

struct map_iv {
	uint64_t start, end;
	uint32_t stack;
};

struct msnap {
	uint64_t val, regions, epoch;
};

struct mem_state {
	struct map_iv *iv;   /* sorted by start, disjoint */
	size_t niv, ivcap;
	uint64_t live, regions;
	uint64_t epoch;      /* how many times a new peak of mapped bytes was reached */
	struct msnap *snap;  /* per stack index, grown on first use */
	size_t snapcap;
	int exit_seen;
};

int model_mem_init(struct model *m)
{
	m->priv->mem = calloc(1, sizeof(*m->priv->mem));
	return m->priv->mem ? 0 : -ENOMEM;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* A length as the kernel maps it: whole pages. */
static uint64_t pages(const struct model *m, uint64_t len)
{
	uint64_t page = m->sum.page_size && !(m->sum.page_size & (m->sum.page_size - 1)) ? m->sum.page_size : 4096;
	return len > UINT64_MAX - (page - 1) ? UINT64_MAX & ~(page - 1) : (len + page - 1) & ~(page - 1);
}

/* Before a stack's mapped bytes change: keep its value at the latest peak. */
static int touch(struct model *m, struct mem_state *ms, uint32_t si)
{
	if (si >= ms->snapcap) {
		size_t cap = ms->snapcap ? ms->snapcap : 64;
		while (cap <= si)
			cap *= 2;
		struct msnap *s = realloc(ms->snap, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		memset(s + ms->snapcap, 0, (cap - ms->snapcap) * sizeof(*s));
		ms->snap = s;
		ms->snapcap = cap;
	}
	struct msnap *sn = &ms->snap[si];
	if (sn->epoch != ms->epoch) {
		sn->val = m->stacks[si].mapped_live;
		sn->regions = m->stacks[si].mapped_live_regions;
		sn->epoch = ms->epoch;
	}
	return 0;
}

/* Index of the first interval that ends after a. */
static size_t iv_lower(const struct mem_state *ms, uint64_t a)
{
	size_t lo = 0, hi = ms->niv;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ms->iv[mid].end > a)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static int iv_reserve(struct mem_state *ms)
{
	return model_grow((void **)&ms->iv, &ms->ivcap, ms->niv + 1, sizeof(*ms->iv));
}

/* Unmaps [a, b) from the program's live mappings, cutting them as needed. */
static int iv_remove(struct model *m, struct mem_state *ms, uint64_t a, uint64_t b)
{
	if (a >= b || !ms->niv)
		return 0;
	if (iv_reserve(ms) < 0)
		return -ENOMEM; /* room for one split, before any pointer is taken */
	for (size_t i = iv_lower(ms, a); i < ms->niv && ms->iv[i].start < b;) {
		struct map_iv *v = &ms->iv[i];
		uint32_t si = v->stack;
		struct model_stack *st = &m->stacks[si];
		uint64_t lo = a > v->start ? a : v->start, hi = b < v->end ? b : v->end;
		if (touch(m, ms, si) < 0)
			return -ENOMEM;
		st->mapped_live -= hi - lo;
		ms->live -= hi - lo;
		if (a <= v->start && v->end <= b) {
			memmove(v, v + 1, (ms->niv - i - 1) * sizeof(*v));
			ms->niv--;
			st->mapped_live_regions--;
			ms->regions--;
			continue;
		}
		if (a > v->start && b < v->end) {
			/* a hole in the middle: two regions now */
			memmove(v + 2, v + 1, (ms->niv - i - 1) * sizeof(*v));
			v[1] = (struct map_iv){ b, v->end, si };
			v->end = a;
			ms->niv++;
			st->mapped_live_regions++;
			ms->regions++;
			return 0;
		}
		if (a > v->start)
			v->end = a;
		else
			v->start = b;
		i++;
	}
	return 0;
}

/* Maps [a, b) for stack si, replacing what was mapped there (MAP_FIXED). */
static int iv_add(struct model *m, struct mem_state *ms, uint64_t a, uint64_t b, uint32_t si, uint64_t t)
{
	struct model_summary *s = &m->sum;
	if (a >= b)
		return 0;
	if (iv_remove(m, ms, a, b) < 0)
		return -ENOMEM;
	if (ms->niv >= IV_MAX)
		return 0; /* a damaged trace: stop tracking rather than go quadratic */
	if (iv_reserve(ms) < 0 || touch(m, ms, si) < 0)
		return -ENOMEM;
	size_t i = iv_lower(ms, a);
	memmove(&ms->iv[i + 1], &ms->iv[i], (ms->niv - i) * sizeof(*ms->iv));
	ms->iv[i] = (struct map_iv){ a, b, si };
	ms->niv++;
	m->stacks[si].mapped_live += b - a;
	m->stacks[si].mapped_live_regions++;
	ms->live += b - a;
	ms->regions++;
	if (ms->live > s->peak_mapped) {
		s->peak_mapped = ms->live;
		s->peak_mapped_time_ns = t;
		ms->epoch++;
	}
	return 0;
}

int model_mem_map(struct model *m, const struct trace_record *rec, uint32_t si)
{
	struct mem_state *ms = m->priv->mem;
	struct model_stack *st = &m->stacks[si];
	uint64_t kind = rec->u.map.kind, addr = rec->u.map.addr, old = rec->u.map.old_addr, len;
	uint64_t t = rec->time;
	if (kind < MODEL_MAP_KINDS)
		m->sum.map_calls[kind]++;
	st->map_calls++;
	switch (kind) {
	case TR_MAP_MMAP:
		len = pages(m, rec->u.map.size);
		st->mapped_total += len;
		return iv_add(m, ms, addr, sat_add(addr, len), si, t);
	case TR_MAP_MUNMAP:
		return iv_remove(m, ms, addr, sat_add(addr, pages(m, rec->u.map.size)));
	case TR_MAP_MREMAP:
		/* old_size 0 duplicates a shared mapping; DONTUNMAP keeps the old one */
		if (rec->u.map.old_size && !(rec->u.map.flags & MREMAP_DONTUNMAP) &&
		    iv_remove(m, ms, old, sat_add(old, pages(m, rec->u.map.old_size))) < 0)
			return -ENOMEM;
		len = pages(m, rec->u.map.size);
		st->mapped_total += len;
		return iv_add(m, ms, addr, sat_add(addr, len), si, t);
	case TR_MAP_BRK:
	case TR_MAP_SBRK:
		/* the program moved the break itself: what it added is its own */
		if (addr > old) {
			st->mapped_total += addr - old;
			return iv_add(m, ms, old, addr, si, t);
		}
		return iv_remove(m, ms, addr, old);
	}
	return 0;
}

void model_mem_mallinfo(struct model *m, const struct trace_record *rec)
{
	struct model_mallinfo *mi = &m->sum.mallinfo;
	*mi = (struct model_mallinfo){ 1,
				       rec->time,
				       rec->u.mallinfo.arena,
				       rec->u.mallinfo.ordblks,
				       rec->u.mallinfo.hblks,
				       rec->u.mallinfo.hblkhd,
				       rec->u.mallinfo.uordblks,
				       rec->u.mallinfo.fordblks,
				       rec->u.mallinfo.keepcost };
	m->sum.mallinfo_samples++;
}

/* ---- snapshots and the waterfall ----------------------------------------- */

static void snapshot_clear(struct model_snapshot *sn)
{
	free(sn->maps);
	free(sn->map_live);
	free(sn->map_mapped);
	free(sn->groups);
	memset(sn, 0, sizeof(*sn));
}

static int cmp_map(const void *a, const void *b)
{
	const struct procfs_map *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Index of the mapping that holds addr, or n. */
static size_t map_at(const struct procfs_map *v, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && addr < v[lo - 1].end ? lo - 1 : n;
}

struct by_map {
	const struct procfs_map *maps;
	size_t n, last;
	uint64_t *bytes;
	uint8_t *hints;
};

/* Live bytes at addr (a block, or a page of them) go to the mapping that
 * holds addr, if it is this process's (bit 63 clear: model_proc.c). */
static void add_live(void *ctx, uint64_t addr, uint64_t bytes)
{
	struct by_map *c = ctx;
	if (!own_addr(addr))
		return;
	/* most blocks lie in the mapping of the one before: try it first (the
	 * one map_at would find: no later mapping starts at or below addr) */
	size_t j = c->last;
	if (!(j < c->n && addr >= c->maps[j].start && addr < c->maps[j].end &&
	      (j + 1 == c->n || c->maps[j + 1].start > addr)))
		c->last = map_at(c->maps, c->n, addr);
	if (c->last < c->n) {
		c->hints[c->last] |= PROCFS_HINT_HEAP;
		c->bytes[c->last] += bytes;
	}
}

static int64_t diff(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b); /* two's complement: exact for |a - b| < 2^63 */
}

static void waterfall(struct model_snapshot *sn)
{
	struct model_waterfall *w = &sn->w;
	uint64_t anon[PROCFS_KINDS] = { 0 }, other[PROCFS_KINDS] = { 0 };
	for (size_t i = 0; i < sn->nmaps; i++) {
		const struct procfs_map *p = &sn->maps[i];
		/* Anonymous <= Rss in a real smaps; clamp so the steps still add up */
		uint64_t a = p->anonymous < p->rss ? p->anonymous : p->rss, o = p->rss - a;
		uint64_t own = sn->map_mapped[i];
		w->anon_rss += a;
		w->rss += p->rss;
		if (own && (p->kind == PROCFS_MMAP || p->kind == PROCFS_HEAP)) {
			/* The kernel merges adjacent anonymous mappings: the program's
			 * part is at most its bytes, the rest is malloc's (a mapping
			 * that holds live blocks) or nobody's we know */
			uint64_t own_a = a < own ? a : own, own_o = o < own - own_a ? o : own - own_a;
			enum procfs_kind rest = p->kind == PROCFS_HEAP ? PROCFS_HEAP : PROCFS_ANON;
			anon[PROCFS_MMAP] += own_a;
			other[PROCFS_MMAP] += own_o;
			anon[rest] += a - own_a;
			other[rest] += o - own_o;
			continue;
		}
		anon[p->kind] += a;
		other[p->kind] += o;
	}
	w->requested = sn->requested;
	w->usable = sn->usable;
	w->chunks = sn->usable + CHUNK_HEADER * sn->live_blocks;
	w->heap_rss = anon[PROCFS_HEAP];
	w->step[MODEL_W_REQUESTED] = (int64_t)w->requested;
	w->step[MODEL_W_USABLE] = diff(w->usable, w->requested);
	w->step[MODEL_W_HEADERS] = diff(w->chunks, w->usable);
	if (sn->mallinfo.present) {
		const struct model_mallinfo *mi = &sn->mallinfo;
		w->allocator_stats = 1;
		w->allocator_in_use = mi->uordblks + mi->hblkhd;
		w->allocator_held = mi->arena + mi->hblkhd;
		w->step[MODEL_W_ALLOC_IN_USE] = diff(w->allocator_in_use, w->chunks);
		w->step[MODEL_W_ALLOC_FREE] = diff(w->allocator_held, w->allocator_in_use);
		w->step[MODEL_W_NOT_RESIDENT] = diff(w->heap_rss, w->allocator_held);
	} else {
		/* no allocator statistics: its overhead and free memory in one step */
		w->step[MODEL_W_ALLOC_FREE] = diff(w->heap_rss, w->chunks);
	}
	w->step[MODEL_W_MMAP] = (int64_t)anon[PROCFS_MMAP];
	w->step[MODEL_W_STACKS] = (int64_t)anon[PROCFS_STACK];
	w->step[MODEL_W_LIB_DATA] = (int64_t)anon[PROCFS_LIB];
	w->step[MODEL_W_FILE_COPIES] = (int64_t)anon[PROCFS_FILE];
	w->step[MODEL_W_SELF] = (int64_t)anon[PROCFS_SELF];
	w->step[MODEL_W_UNEXPLAINED] = (int64_t)(anon[PROCFS_ANON] + anon[PROCFS_KERNEL]);
	w->step[MODEL_W_LIB_FILES] = (int64_t)other[PROCFS_LIB];
	w->step[MODEL_W_FILES] = (int64_t)other[PROCFS_FILE];
	w->step[MODEL_W_MMAP_FILES] = (int64_t)other[PROCFS_MMAP];
	w->step[MODEL_W_KERNEL] = (int64_t)other[PROCFS_KERNEL];
	w->step[MODEL_W_SELF_FILES] = (int64_t)other[PROCFS_SELF];
	w->step[MODEL_W_UNEXPLAINED_SHARED] =
		(int64_t)(other[PROCFS_ANON] + other[PROCFS_HEAP] + other[PROCFS_STACK]);
	w->unexplained = (uint64_t)w->step[MODEL_W_UNEXPLAINED] + (uint64_t)w->step[MODEL_W_UNEXPLAINED_SHARED];
}

int model_mem_smaps(struct model *m, const struct trace_record *rec, const struct model_live_view *live)
{
	struct mem_state *ms = m->priv->mem;
	uint64_t reason = rec->u.smaps.reason;
	if (reason != TR_SMAPS_PEAK_RSS && reason != TR_SMAPS_EXIT)
		return 0;
	/* the last snapshot of each kind wins: the closest to the peak, or the end */
	struct model_snapshot *sn = &m->snap[reason == TR_SMAPS_PEAK_RSS ? MODEL_AT_PEAK : MODEL_AT_EXIT];
	size_t n = rec->u.smaps.n;
	uint8_t *hints = NULL;
	int oom = 0;
	snapshot_clear(sn);
	sn->maps = malloc((n ? n : 1) * sizeof(*sn->maps));
	sn->map_live = calloc(n ? n : 1, sizeof(*sn->map_live));
	sn->map_mapped = calloc(n ? n : 1, sizeof(*sn->map_mapped));
	sn->groups = malloc((n + PROCFS_KINDS) * sizeof(*sn->groups));
	hints = calloc(n ? n : 1, 1);
	if (!sn->maps || !sn->map_live || !sn->map_mapped || !sn->groups || !hints)
		goto oom;
	int sorted = 1;
	for (size_t i = 0; i < n; i++) {
		const struct trace_mapping *t = &rec->u.smaps.maps[i];
		struct procfs_map *p = &sn->maps[i];
		memset(p, 0, sizeof(*p));
		p->start = t->start;
		p->end = t->end > t->start ? t->end : t->start;
		p->offset = t->offset;
		if (t->perms)
			strncpy(p->perms, t->perms, sizeof(p->perms) - 1);
		p->path = model_pool_intern(&m->priv->strings, t->path ? t->path : "", &oom);
		if (oom)
			goto oom;
		p->rss = t->rss;
		p->pss = t->pss;
		p->shared_clean = t->shared_clean;
		p->shared_dirty = t->shared_dirty;
		p->private_clean = t->private_clean;
		p->private_dirty = t->private_dirty;
		p->anonymous = t->anonymous;
		p->swap = t->swap;
		if (i && p->start < sn->maps[i - 1].start)
			sorted = 0;
	}
	if (!sorted)
		qsort(sn->maps, n, sizeof(*sn->maps), cmp_map);
	sn->nmaps = n;

	/* what the trace knows about each mapping: live malloc blocks in it, the
	 * program's own mappings over it */
	if (live) {
		sn->live_blocks = live->blocks;
		sn->requested = live->bytes;
		sn->usable = live->bytes + live->slack;
		/* mappings of whole pages hold whole pages of blocks: add up pages */
		int by_page = 1;
		for (size_t i = 0; i < n && by_page; i++)
			by_page = !(sn->maps[i].start & 4095) && !(sn->maps[i].end & 4095);
		struct by_map ctx = { sn->maps, n, n, sn->map_live, hints };
		model_live_walk(live->t, by_page, add_live, &ctx);
	}
	for (size_t k = 0; k < ms->niv; k++) {
		const struct map_iv *v = &ms->iv[k];
		if (!own_addr(v->start))
			continue;
		sn->mapped += v->end - v->start;
		size_t lo = 0, hi = n;
		while (lo < hi) { /* the first mapping that ends after v->start */
			size_t mid = lo + (hi - lo) / 2;
			if (sn->maps[mid].end > v->start)
				hi = mid;
			else
				lo = mid + 1;
		}
		for (size_t j = lo; j < n && sn->maps[j].start < v->end; j++) {
			const struct procfs_map *p = &sn->maps[j];
			hints[j] |= PROCFS_HINT_MMAP;
			sn->map_mapped[j] += (v->end < p->end ? v->end : p->end) - (v->start > p->start ? v->start : p->start);
		}
	}
	procfs_classify(sn->maps, n, hints);
	sn->ngroups = procfs_group(sn->maps, n, sn->groups, n + PROCFS_KINDS);
	for (size_t i = 0; i < n; i++)
		procfs_total_add(&sn->total, &sn->maps[i]);

	sn->present = 1;
	sn->time_ns = rec->time;
	sn->mallinfo = m->sum.mallinfo;
	waterfall(sn);
	free(hints);
	return 0;
oom:
	free(hints);
	snapshot_clear(sn);
	return -ENOMEM;
}

void model_mem_exit_mark(struct model *m)
{
	struct mem_state *ms = m->priv->mem;
	for (size_t i = 0; i < m->nstacks; i++) {
		m->stacks[i].mapped_leaked = m->stacks[i].mapped_live;
		m->stacks[i].mapped_leaked_regions = m->stacks[i].mapped_live_regions;
	}
	m->sum.leaked_mapped = ms->live;
	m->sum.leaked_mapped_regions = ms->regions;
	ms->exit_seen = 1;
}

void model_mem_finish(struct model *m)
{
	struct mem_state *ms = m->priv->mem;
	for (size_t i = 0; i < m->nstacks; i++) {
		struct model_stack *st = &m->stacks[i];
		/* as for the heap: a snapshot of the last epoch means the stack
		 * changed after the peak, and holds its value at the peak */
		int changed = i < ms->snapcap && ms->snap[i].epoch == ms->epoch;
		st->mapped_peak = changed ? ms->snap[i].val : st->mapped_live;
		st->mapped_peak_regions = changed ? ms->snap[i].regions : st->mapped_live_regions;
		if (!ms->exit_seen) {
			st->mapped_leaked = st->mapped_live;
			st->mapped_leaked_regions = st->mapped_live_regions;
		}
	}
	if (!ms->exit_seen) {
		m->sum.leaked_mapped = ms->live;
		m->sum.leaked_mapped_regions = ms->regions;
	}
	m->sum.mapped_bytes = ms->live;
	m->sum.mapped_regions = ms->regions;
}

void model_mem_free(struct model *m)
{
	for (int i = 0; i < MODEL_AT_N; i++)
		snapshot_clear(&m->snap[i]);
	struct mem_state *ms = m->priv ? m->priv->mem : NULL;
	if (!ms)
		return;
	free(ms->iv);
	free(ms->snap);
	free(ms);
	m->priv->mem = NULL;
}

/* ---- ranking and names ----------------------------------------------------- */

struct mranked {
	uint64_t val;
	size_t idx;
};

static int cmp_mranked(const void *a, const void *b)
{
	const struct mranked *x = a, *y = b;
	if (x->val != y->val)
		return x->val > y->val ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int mranks(const struct model_stack *s, int leaked)
{
	return leaked ? s->mapped_leaked_regions != 0 : s->mapped_peak_regions != 0;
}

size_t model_ranked_mapped(const struct model *m, int leaked)
{
	size_t n = 0;
	for (size_t i = 0; i < m->nstacks; i++)
		n += mranks(&m->stacks[i], leaked);
	return n;
}

size_t model_top_mapped(const struct model *m, int leaked, size_t n, size_t *out)
{
	size_t k = model_ranked_mapped(m, leaked);
	if (!k)
		return 0;
	struct mranked *r = malloc(k * sizeof(*r));
	if (!r)
		return 0; /* as model_top(): an empty ranking when memory runs out */
	k = 0;
	for (size_t i = 0; i < m->nstacks; i++)
		if (mranks(&m->stacks[i], leaked))
			r[k++] = (struct mranked){ leaked ? m->stacks[i].mapped_leaked : m->stacks[i].mapped_peak, i };
	qsort(r, k, sizeof(*r), cmp_mranked);
	if (n && n < k)
		k = n;
	for (size_t i = 0; i < k; i++)
		out[i] = r[i].idx;
	free(r);
	return k;
}

const char *model_wstep_name(enum model_wstep s)
{
	static const char *const names[MODEL_W_STEPS] = {
		[MODEL_W_REQUESTED] = "requested",
		[MODEL_W_USABLE] = "usable",
		[MODEL_W_HEADERS] = "headers",
		[MODEL_W_ALLOC_IN_USE] = "allocator_in_use",
		[MODEL_W_ALLOC_FREE] = "allocator_free",
		[MODEL_W_NOT_RESIDENT] = "not_resident",
		[MODEL_W_MMAP] = "mmap",
		[MODEL_W_STACKS] = "thread_stacks",
		[MODEL_W_LIB_DATA] = "library_data",
		[MODEL_W_FILE_COPIES] = "file_copies",
		[MODEL_W_SELF] = "heapscope",
		[MODEL_W_UNEXPLAINED] = "unexplained",
		[MODEL_W_LIB_FILES] = "library_files",
		[MODEL_W_FILES] = "other_files",
		[MODEL_W_MMAP_FILES] = "mmap_files",
		[MODEL_W_KERNEL] = "kernel",
		[MODEL_W_SELF_FILES] = "heapscope_files",
		[MODEL_W_UNEXPLAINED_SHARED] = "unexplained_shared",
	};
	return (unsigned)s < MODEL_W_STEPS ? names[s] : "unknown";
}
