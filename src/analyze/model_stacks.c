/*
 * model_stacks.c: the symbol side of the model (stack nodes, symbols,
 * modules, interned strings), stack -> frames resolution, and the ranking of
 * stacks that every output shares.
 */
#include "analyze/model_priv.h"
#include "analyze/model_proc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- idmap ---------------------------------------------------------------- */

uint32_t model_map_get_hashed(const struct idmap *m, uint64_t key)
{
	if (!m->cap)
		return IDMAP_NONE;
	size_t mask = m->cap - 1;
	for (size_t i = model_hash64(key) & mask;; i = (i + 1) & mask) {
		if (m->e[i].val == IDMAP_NONE)
			return IDMAP_NONE;
		if (m->e[i].key == key)
			return m->e[i].val;
	}
}

static int model_map_grow(struct idmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	struct idmap_ent *e = malloc(cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		e[i].val = IDMAP_NONE;
	for (size_t j = 0; j < m->cap; j++) {
		if (m->e[j].val == IDMAP_NONE)
			continue;
		size_t i = model_hash64(m->e[j].key) & (cap - 1);
		while (e[i].val != IDMAP_NONE)
			i = (i + 1) & (cap - 1);
		e[i] = m->e[j];
	}
	free(m->e);
	m->e = e;
	m->cap = cap;
	return 0;
}

/* Room in the direct array for key: only while the array stays within 8
 * slots per key stored (the hash costs as much memory per key). */
static int model_map_dense_room(struct idmap *m, uint64_t key)
{
	size_t cap = m->dense_cap ? m->dense_cap : 1024;
	while (cap <= key)
		cap *= 2;
	if (cap > 1024 && cap / 8 > m->dense_used + m->used + 1)
		return 0;
	uint32_t *d = realloc(m->dense, cap * sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (size_t i = m->dense_cap; i < cap; i++)
		d[i] = IDMAP_NONE;
	m->dense = d;
	m->dense_cap = cap;
	return 1;
}

int model_map_put(struct idmap *m, uint64_t key, uint32_t val)
{
	int room = key < m->dense_cap;
	if (!room && key < IDMAP_DENSE_MAX && (room = model_map_dense_room(m, key)) < 0)
		return -ENOMEM;
	if (room) {
		/* a key the hash got before the array reached it: the array's
		 * value is found first, so the hash's is dead */
		m->dense_used += m->dense[key] == IDMAP_NONE;
		m->dense[key] = val;
		return 0;
	}
	/* load factor <= 1/2 keeps linear probing short */
	if ((m->used + 1) * 2 > m->cap && model_map_grow(m) < 0)
		return -ENOMEM;
	size_t mask = m->cap - 1;
	size_t i = model_hash64(key) & mask;
	while (m->e[i].val != IDMAP_NONE && m->e[i].key != key)
		i = (i + 1) & mask;
	if (m->e[i].val == IDMAP_NONE)
		m->used++;
	m->e[i].key = key;
	m->e[i].val = val;
	return 0;
}

void model_map_free(struct idmap *m)
{
	free(m->dense);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* ---- string pool ----------------------------------------------------------- */

#define POOL_CHUNK (64u << 10)

struct pool_chunk {
	struct pool_chunk *next;
	size_t used, cap;
	char data[];
};

static uint64_t str_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
	return h;
}

static char *model_pool_copy(struct pool *p, const char *s, size_t n)
{
	struct pool_chunk *c = p->chunks;
	if (!c || c->cap - c->used < n + 1) {
		size_t cap = n + 1 > POOL_CHUNK ? n + 1 : POOL_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = p->chunks;
		p->chunks = c;
	}
	char *d = c->data + c->used;
	memcpy(d, s, n);
	d[n] = 0;
	c->used += n + 1;
	return d;
}

static int model_pool_grow(struct pool *p)
{
	size_t cap = p->cap ? p->cap * 2 : 1024;
	struct pool_slot *set = calloc(cap, sizeof(*set));
	if (!set)
		return -ENOMEM;
	for (size_t j = 0; j < p->cap; j++) {
		if (!p->set[j].s)
			continue;
		size_t i = p->set[j].hash & (cap - 1);
		while (set[i].s)
			i = (i + 1) & (cap - 1);
		set[i] = p->set[j];
	}
	free(p->set);
	p->set = set;
	p->cap = cap;
	return 0;
}

const char *model_pool_intern(struct pool *p, const char *s, int *oom)
{
	if (!s)
		return NULL;
	if ((p->used + 1) * 2 > p->cap && model_pool_grow(p) < 0) {
		*oom = 1;
		return NULL;
	}
	size_t n = strlen(s);
	uint64_t h = str_hash(s, n);
	size_t mask = p->cap - 1, i = h & mask;
	for (; p->set[i].s; i = (i + 1) & mask)
		if (p->set[i].hash == h && !strcmp(p->set[i].s, s))
			return p->set[i].s;
	char *d = model_pool_copy(p, s, n);
	if (!d) {
		*oom = 1;
		return NULL;
	}
	p->set[i].hash = h;
	p->set[i].s = d;
	p->used++;
	return d;
}

void model_pool_free(struct pool *p)
{
	while (p->chunks) {
		struct pool_chunk *c = p->chunks;
		p->chunks = c->next;
		free(c);
	}
	free(p->set);
	memset(p, 0, sizeof(*p));
}

/* ---- building the symbol side during the pass ------------------------------ */

int model_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 256;
	while (n < need)
		n *= 2;
	void *p = realloc(*arr, n * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

int model_add_node(struct model *m, uint64_t id, uint64_t parent, uint64_t ip)
{
	struct model_priv *p = m->priv;
	uint32_t i = model_map_get(&p->node_ids, id);
	if (i == IDMAP_NONE) {
		if (p->nnodes >= IDMAP_NONE - 1)
			return -ENOMEM;
		if (model_grow((void **)&p->nodes, &p->nodes_cap, p->nnodes + 1, sizeof(*p->nodes)) < 0)
			return -ENOMEM;
		i = (uint32_t)p->nnodes++;
		if (model_map_put(&p->node_ids, id, i) < 0)
			return -ENOMEM;
	}
	p->nodes[i].parent = parent;
	p->nodes[i].ip = ip;
	return 0;
}

int model_add_module(struct model *m, uint64_t id, uint64_t bias, uint64_t start, uint64_t end, const char *path,
		     const uint8_t *build_id, uint32_t build_id_len)
{
	struct model_priv *p = m->priv;
	int oom = 0;
	/* hex, as readelf, file(1) and pprof show a GNU build-id */
	char hex[2 * 64 + 1];
	uint32_t n = !build_id ? 0 : build_id_len < 64 ? build_id_len : 64;
	for (uint32_t k = 0; k < n; k++)
		snprintf(hex + 2 * k, 3, "%02x", build_id[k]);
	hex[2 * n] = 0;
	const char *s = model_pool_intern(&p->strings, path, &oom);
	const char *bid = model_pool_intern(&p->strings, hex, &oom);
	if (oom)
		return -ENOMEM;
	/* A module list is rewritten after dlopen/dlclose: the same id replaces. */
	size_t i;
	for (i = 0; i < p->nmodules; i++)
		if (p->modules[i].id == id)
			break;
	if (i == p->nmodules) {
		if (model_grow((void **)&p->modules, &p->modules_cap, p->nmodules + 1, sizeof(*p->modules)) < 0)
			return -ENOMEM;
		p->nmodules++;
	}
	p->modules[i] = (struct module_ent){ id, bias, start, end, s, bid };
	return 0;
}

int model_add_symbol(struct model *m, uint64_t ip, uint64_t module, uint64_t offset, uint32_t nframes,
		     const struct trace_frame *frames)
{
	struct model_priv *p = m->priv;
	int oom = 0;
	if (p->nsyms >= IDMAP_NONE - 1 || p->nframes + nframes >= UINT32_MAX)
		return -ENOMEM;
	if (model_grow((void **)&p->frames, &p->frames_cap, p->nframes + nframes, sizeof(*p->frames)) < 0)
		return -ENOMEM;
	uint32_t first = (uint32_t)p->nframes;
	for (uint32_t k = 0; k < nframes; k++) {
		struct sym_frame_rec *f = &p->frames[first + k];
		f->function = model_pool_intern(&p->strings, frames[k].function, &oom);
		f->file = model_pool_intern(&p->strings, frames[k].file, &oom);
		f->line = frames[k].line;
		f->flags = (frames[k].flags & TRACE_FRAME_INLINED) ? MODEL_FRAME_INLINED : 0;
	}
	if (oom)
		return -ENOMEM;
	p->nframes += nframes;
	uint32_t i = model_map_get(&p->sym_ips, ip);
	if (i == IDMAP_NONE) {
		if (model_grow((void **)&p->syms, &p->syms_cap, p->nsyms + 1, sizeof(*p->syms)) < 0)
			return -ENOMEM;
		i = (uint32_t)p->nsyms++;
		if (model_map_put(&p->sym_ips, ip, i) < 0)
			return -ENOMEM;
	}
	p->syms[i] = (struct sym_ent){ module, offset, first, nframes };
	return 0;
}

void model_priv_free(struct model_priv *p)
{
	if (!p)
		return;
	model_pool_free(&p->strings);
	model_map_free(&p->node_ids);
	model_map_free(&p->sym_ips);
	model_map_free(&p->stack_ids);
	free(p->nodes);
	free(p->syms);
	free(p->frames);
	free(p->modules);
	free(p->snaps);
	free(p->argv_store);
	free(p);
}

size_t model_modules(const struct model *m, struct model_module *out, size_t max)
{
	const struct model_priv *p = m->priv;
	for (size_t i = 0; i < p->nmodules && i < max; i++) {
		const struct module_ent *e = &p->modules[i];
		out[i] = (struct model_module){ e->id, e->bias, e->start, e->end, e->path, e->build_id };
	}
	return p->nmodules;
}

/* ---- stack -> frames ------------------------------------------------------- */

static const struct module_ent *module_by_id(const struct model_priv *p, uint64_t id)
{
	for (size_t i = 0; i < p->nmodules; i++)
		if (p->modules[i].id == id)
			return &p->modules[i];
	return NULL;
}

static const struct module_ent *module_by_addr(const struct model_priv *p, uint64_t ip)
{
	for (size_t i = 0; i < p->nmodules; i++)
		if (ip >= p->modules[i].start && ip < p->modules[i].end)
			return &p->modules[i];
	return NULL;
}

/* Appends f when there is room; always counts it. */
static void emit(struct model_frame *out, size_t max, size_t *n, const struct model_frame *f)
{
	if (*n < max)
		out[*n] = *f;
	(*n)++;
}

static void emit_ip(const struct model_priv *p, uint64_t key, struct model_frame *out, size_t max, size_t *n)
{
	/* key: the address, tagged with its address space (model_proc.h) */
	uint64_t ip = model_proc_raw_ip(key);
	struct model_frame f = { .ip = ip };
	uint32_t si = model_map_get(&p->sym_ips, key);
	if (si != IDMAP_NONE && p->syms[si].n) {
		const struct sym_ent *s = &p->syms[si];
		const struct module_ent *mod = module_by_id(p, s->module);
		f.module = mod ? mod->path : NULL;
		f.offset = mod ? s->offset : ip;
		for (uint32_t k = 0; k < s->n; k++) {
			const struct sym_frame_rec *r = &p->frames[s->first + k];
			f.function = r->function;
			f.file = r->file;
			f.line = r->line;
			f.flags = r->flags;
			emit(out, max, n, &f);
		}
		return;
	}
	/* No symbol: place the address in its module when the map knows it. */
	const struct module_ent *mod = module_by_addr(p, ip);
	f.flags = MODEL_FRAME_NO_SYMBOL;
	f.module = mod ? mod->path : NULL;
	f.offset = mod ? ip - mod->bias : ip;
	emit(out, max, n, &f);
}

size_t model_stack_frames(const struct model *m, size_t index, struct model_frame *out, size_t max)
{
	const struct model_priv *p = m->priv;
	size_t n = 0;
	if (index >= m->nstacks)
		return 0;
	uint64_t id = m->stacks[index].id;
	if (id == 0) {
		struct model_frame f = { .flags = MODEL_FRAME_NO_STACK };
		emit(out, max, &n, &f);
		return n;
	}
	/* Parent 0 ends the walk; the step bound stops a corrupt parent cycle. */
	for (size_t steps = 0; id != 0 && steps <= p->nnodes; steps++) {
		uint32_t ni = model_map_get(&p->node_ids, id);
		if (ni == IDMAP_NONE) {
			struct model_frame f = { .flags = MODEL_FRAME_UNKNOWN_STACK };
			emit(out, max, &n, &f);
			break;
		}
		emit_ip(p, p->nodes[ni].ip, out, max, &n);
		id = p->nodes[ni].parent;
	}
	return n;
}

const char *model_frame_label(const struct model_frame *f, char *buf, size_t len)
{
	if (f->function)
		return f->function;
	if (f->flags & MODEL_FRAME_NO_STACK)
		snprintf(buf, len, "[no stack]");
	else if (f->flags & MODEL_FRAME_UNKNOWN_STACK)
		snprintf(buf, len, "[unknown stack]");
	else if (f->module) {
		const char *base = strrchr(f->module, '/');
		snprintf(buf, len, "%s+0x%" PRIx64, base ? base + 1 : f->module, f->offset);
	} else
		snprintf(buf, len, "0x%" PRIx64, f->ip);
	return buf;
}

void model_bucket_range(unsigned i, uint64_t *lo, uint64_t *hi)
{
	if (i == 0) {
		*lo = *hi = 0;
		return;
	}
	*lo = 1ull << (i - 1);
	*hi = i >= 64 ? UINT64_MAX : (1ull << i) - 1;
}

/* ---- ranking --------------------------------------------------------------- */

uint64_t model_stack_value(const struct model_stack *s, enum model_key key)
{
	switch (key) {
	case MODEL_BY_PEAK:
		return s->peak_bytes;
	case MODEL_BY_ALLOCATIONS:
		return s->allocations;
	case MODEL_BY_BYTES:
		return s->allocated_bytes;
	case MODEL_BY_TEMPORARY:
		return s->temporary;
	case MODEL_BY_LEAKED:
		return s->leaked_bytes;
	}
	return 0;
}

struct ranked {
	uint64_t val;
	size_t idx;
};

/* a ranks below b: smaller value, or equal value and later index */
static int below(const struct ranked *a, const struct ranked *b)
{
	return a->val < b->val || (a->val == b->val && a->idx > b->idx);
}

static int cmp_ranked(const void *x, const void *y)
{
	const struct ranked *a = x, *b = y;
	return below(a, b) ? 1 : below(b, a) ? -1 : 0;
}

/* Min-heap on rank: the root is the weakest of the best n kept so far. */
static void sift_down(struct ranked *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, w = i;
		if (l < n && below(&h[l], &h[w]))
			w = l;
		if (r < n && below(&h[r], &h[w]))
			w = r;
		if (w == i)
			return;
		struct ranked t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

/* The rule model_top() skips by: a stack with nothing to show for key. */
static int ranks(const struct model_stack *s, enum model_key key)
{
	/* a leaked malloc(0) block is still a leak: rank it, last */
	return key == MODEL_BY_LEAKED ? s->leaked_blocks != 0 : model_stack_value(s, key) != 0;
}

size_t model_ranked(const struct model *m, enum model_key key)
{
	size_t n = 0;
	for (size_t i = 0; i < m->nstacks; i++)
		n += ranks(&m->stacks[i], key);
	return n;
}

size_t model_top(const struct model *m, enum model_key key, size_t n, size_t *out)
{
	if (n == 0 || n > m->nstacks)
		n = m->nstacks;
	if (n == 0)
		return 0;
	/* n <= nstacks, whose array exists already: failing here is unlikely,
	 * and an empty ranking is the honest answer if it happens. */
	struct ranked *h = malloc(n * sizeof(*h));
	size_t k = 0;
	if (!h)
		return 0;
	for (size_t i = 0; i < m->nstacks; i++) {
		const struct model_stack *s = &m->stacks[i];
		struct ranked r = { model_stack_value(s, key), i };
		if (!ranks(s, key))
			continue;
		if (k < n) {
			h[k++] = r;
			if (k == n)
				for (size_t j = n / 2; j-- > 0;)
					sift_down(h, n, j);
		} else if (below(&h[0], &r)) {
			h[0] = r;
			sift_down(h, n, 0);
		}
	}
	qsort(h, k, sizeof(*h), cmp_ranked);
	for (size_t i = 0; i < k; i++)
		out[i] = h[i].idx;
	free(h);
	return k;
}
