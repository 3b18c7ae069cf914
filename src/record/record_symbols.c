/*
 * record_symbols.c: the symbol table appended at the end of a recording.
 * Every distinct instruction address among the stack nodes of each address
 * space is resolved once, so the trace can be reported on without the
 * binaries. Strings (function and file names) are written once each as
 * TR_STRING and referred to by id from TR_SYMBOL.
 *
 * Address spaces: a node's space is its root node (shm_layout.h); an address
 * is looked up among the modules of its space only. One symbolizer holds
 * every module of every space, so a library loaded at the same place in
 * several processes is read once; where two spaces put different objects
 * at one address, that space gets a symbolizer of its own.
 */
#include "record/record.h"
#include "symbols/symbols.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 128 /* inline chain of one address; deeper is cut */

/* Open-addressing set: string contents -> trace string id (from 1; 0 is
 * "none" in TR_SYMBOL). Keys point into the sym_ctx, alive until sym_close. */
struct strset {
	const char **keys;
	uint32_t *ids;
	size_t cap, count;
	uint32_t next_id;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static int strset_grow(struct strset *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024;
	const char **keys = calloc(cap, sizeof(*keys));
	uint32_t *ids = calloc(cap, sizeof(*ids));
	if (!keys || !ids) {
		free(keys);
		free(ids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->keys[i])
			continue;
		size_t j = hash_str(t->keys[i]) & (cap - 1);
		while (keys[j])
			j = (j + 1) & (cap - 1);
		keys[j] = t->keys[i];
		ids[j] = t->ids[i];
	}
	free(t->keys);
	free(t->ids);
	t->keys = keys;
	t->ids = ids;
	t->cap = cap;
	return 0;
}

/* The id of s, writing its TR_STRING the first time. 0 for NULL. */
static int intern(struct trace_writer *w, struct strset *t, const char *s, uint32_t *id)
{
	if (!s) {
		*id = 0;
		return 0;
	}
	if (2 * (t->count + 1) > t->cap) {
		int ret = strset_grow(t);
		if (ret)
			return ret;
	}
	size_t j = hash_str(s) & (t->cap - 1);
	while (t->keys[j]) {
		if (t->keys[j] == s || !strcmp(t->keys[j], s)) {
			*id = t->ids[j];
			return 0;
		}
		j = (j + 1) & (t->cap - 1);
	}
	t->keys[j] = s;
	t->ids[j] = *id = ++t->next_id;
	t->count++;
	tw_begin(w, TR_STRING);
	tw_u(w, *id);
	tw_str(w, s);
	tw_end(w);
	return 0;
}

struct sip {
	uint64_t space, ip;
};

static int cmp_sip(const void *a, const void *b)
{
	const struct sip *x = a, *y = b;
	if (x->space != y->space)
		return x->space < y->space ? -1 : 1;
	return x->ip < y->ip ? -1 : x->ip > y->ip;
}

/* The distinct (space, ip) of nodes 1..nnodes-1 with an ip, sorted. A
 * node's space is the root it hangs from: a node with ip 0 and no parent
 * (space 0 holds stacks without a root). */
static int distinct_ips(const struct hs_shm_header *h, uint32_t nnodes, struct sip **out, size_t *n)
{
	const struct hs_node *nodes = HS_SHM_AT(h, h->nodes_off, const struct hs_node);
	uint32_t *space = calloc(nnodes ? nnodes : 1, sizeof(*space));
	struct sip *v = malloc((nnodes ? nnodes : 1) * sizeof(*v));
	size_t k = 0;
	if (!space || !v) {
		free(space);
		free(v);
		return -ENOMEM;
	}
	for (uint32_t i = 1; i < nnodes; i++) {
		uint32_t parent = nodes[i].parent;
		uint64_t ip = nodes[i].ip;
		if (parent >= i) /* the drain wrote it without a parent */
			parent = 0;
		space[i] = parent ? space[parent] : ip ? 0 : i;
		if (ip)
			v[k++] = (struct sip){ space[i], ip };
	}
	free(space);
	qsort(v, k, sizeof(*v), cmp_sip);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (!u || v[u - 1].space != v[i].space || v[u - 1].ip != v[i].ip)
			v[u++] = v[i];
	*out = v;
	*n = u;
	return 0;
}

/* A symbolizer over the given modules; map[idx] = index into mods. */
struct symctx {
	struct sym_ctx *c;
	size_t *map;
	uint64_t space;
};

static int ctx_open(struct symctx *x, const struct rec_module *mods, size_t nmods, int all, uint64_t space,
		    int cache_dir)
{
	int ret = sym_open(&x->c);
	if (ret)
		return ret;
	sym_use_cache(x->c, cache_dir);
	x->space = space;
	x->map = calloc(nmods ? nmods : 1, sizeof(*x->map));
	if (!x->map)
		return -ENOMEM;
	/* sym_add_module numbers modules 0, 1, ... in call order; keep the map
	 * to ours rather than assume it */
	for (size_t i = 0; i < nmods; i++) {
		if (!all && mods[i].space != space)
			continue;
		int idx = sym_add_module(x->c, mods[i].path, mods[i].bias, mods[i].start, mods[i].end);
		if (idx == -ENOMEM)
			return idx;
		if (idx >= 0 && (size_t)idx < nmods)
			x->map[idx] = i;
	}
	return 0;
}

static void ctx_close(struct symctx *x)
{
	if (x->c)
		sym_close(x->c);
	free(x->map);
}

/* The module of space holding the return address ip (the call is at ip-1);
 * the one logged last wins, as after a dlclose and dlopen at one place. */
static const struct rec_module *module_of(const struct rec_module *mods, size_t nmods, uint64_t space, uint64_t ip)
{
	uint64_t a = ip - 1;
	for (size_t i = nmods; i-- > 0;)
		if (mods[i].space == space && a >= mods[i].start && a < mods[i].end)
			return &mods[i];
	return NULL;
}

int rec_symbols_write(struct trace_writer *w, const struct hs_shm_header *h, uint32_t nnodes,
		      const struct rec_module *mods, size_t nmods, int cache_dir, uint64_t *nsyms)
{
	struct symctx all = { 0 }, *own = NULL;
	size_t nown = 0;
	struct strset strs = { 0 };
	struct sym_frame *frames = NULL;
	struct sip *ips = NULL;
	size_t nips = 0;
	int ret;

	*nsyms = 0;
	ret = distinct_ips(h, nnodes, &ips, &nips);
	if (ret)
		goto out;
	ret = ctx_open(&all, mods, nmods, 1, 0, cache_dir);
	if (ret)
		goto out;
	frames = malloc(MAX_FRAMES * sizeof(*frames));
	if (!frames) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nips; i++) {
		uint64_t space = ips[i].space, ip = ips[i].ip, offset = ip;
		const struct rec_module *m = module_of(mods, nmods, space, ip);
		int module = -1, n = 1;
		frames[0] = (struct sym_frame){ NULL, NULL, 0, 0 };
		if (m) {
			struct symctx *x = &all;
			n = sym_resolve(x->c, ip, 1, frames, MAX_FRAMES, &module, &offset);
			const struct rec_module *got = module >= 0 ? &mods[x->map[module]] : NULL;
			if (n >= 0 && (!got || got->bias != m->bias || strcmp(got->path, m->path))) {
				/* another space has another object here: this space's own */
				x = NULL;
				for (size_t k = 0; k < nown && !x; k++)
					if (own[k].space == space)
						x = &own[k];
				if (!x) {
					struct symctx *v = realloc(own, (nown + 1) * sizeof(*v));
					if (!v) {
						ret = -ENOMEM;
						goto out;
					}
					own = v;
					x = &own[nown++];
					memset(x, 0, sizeof(*x));
					ret = ctx_open(x, mods, nmods, 0, space, cache_dir);
					if (ret)
						goto out;
				}
				n = sym_resolve(x->c, ip, 1, frames, MAX_FRAMES, &module, &offset);
			}
			offset = ip - m->bias;
		}
		if (n == -ENOMEM) {
			ret = n;
			goto out;
		}
		if (n < 0)
			n = 0; /* unresolved: the symbol says so with no frames */
		if (n > MAX_FRAMES)
			n = MAX_FRAMES;
		uint32_t fn[MAX_FRAMES], file[MAX_FRAMES];
		for (int k = 0; k < n; k++) {
			ret = intern(w, &strs, frames[k].function, &fn[k]);
			if (!ret)
				ret = intern(w, &strs, frames[k].file, &file[k]);
			if (ret)
				goto out;
		}
		tw_begin(w, TR_SYMBOL);
		tw_u(w, space);
		tw_u(w, ip);
		tw_u(w, m ? m->id : 0);
		tw_u(w, offset);
		tw_u(w, (uint64_t)n);
		for (int k = 0; k < n; k++) {
			tw_u(w, fn[k]);
			tw_u(w, file[k]);
			tw_u(w, frames[k].line);
			tw_u(w, frames[k].inlined ? TRACE_FRAME_INLINED : 0);
		}
		tw_end(w);
		(*nsyms)++;
	}
	ret = 0;
	/* a cache that cannot be written costs the next run time, nothing else */
	sym_save_cache(all.c);
	for (size_t k = 0; k < nown; k++)
		sym_save_cache(own[k].c);
out:
	/* the strings interned point into the symbolizers: close them last */
	ctx_close(&all);
	for (size_t k = 0; k < nown; k++)
		ctx_close(&own[k]);
	free(own);
	free(strs.keys);
	free(strs.ids);
	free(frames);
	free(ips);
	return ret;
}
