/*
 * record_symbols.c: the symbol table appended at the end of a recording.
 * Every distinct instruction address among the stack nodes is resolved
 * once, so the trace can be reported on without the binaries. Strings
 * (function and file names) are written once each as TR_STRING and referred
 * to by id from TR_SYMBOL.
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

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The distinct non-zero ips of nodes 1..nnodes-1, sorted. */
static int distinct_ips(const struct hs_shm_header *h, uint32_t nnodes, uint64_t **out, size_t *n)
{
	const struct hs_node *nodes = HS_SHM_AT(h, h->nodes_off, const struct hs_node);
	uint64_t *ips = malloc((nnodes ? nnodes : 1) * sizeof(*ips));
	size_t k = 0;
	if (!ips)
		return -ENOMEM;
	for (uint32_t i = 1; i < nnodes; i++)
		if (nodes[i].ip)
			ips[k++] = nodes[i].ip;
	qsort(ips, k, sizeof(*ips), cmp_u64);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (!u || ips[u - 1] != ips[i])
			ips[u++] = ips[i];
	*out = ips;
	*n = u;
	return 0;
}

int rec_symbols_write(struct trace_writer *w, const struct hs_shm_header *h, uint32_t nnodes,
		      const struct rec_module *mods, size_t nmods, uint64_t *nsyms)
{
	struct sym_ctx *c = NULL;
	struct strset strs = { 0 };
	struct sym_frame *frames = NULL;
	uint64_t *ips = NULL, *idmap = NULL;
	size_t nips = 0;
	int ret;

	*nsyms = 0;
	ret = distinct_ips(h, nnodes, &ips, &nips);
	if (ret)
		goto out;
	ret = sym_open(&c);
	if (ret)
		goto out;
	frames = malloc(MAX_FRAMES * sizeof(*frames));
	idmap = calloc(nmods ? nmods : 1, sizeof(*idmap));
	if (!frames || !idmap) {
		ret = -ENOMEM;
		goto out;
	}
	/* sym_add_module numbers modules 0, 1, ... in call order; keep the map
	 * to our trace ids rather than assume it */
	for (size_t i = 0; i < nmods; i++) {
		int idx = sym_add_module(c, mods[i].path, mods[i].bias, mods[i].start, mods[i].end);
		if (idx == -ENOMEM) {
			ret = idx;
			goto out;
		}
		if (idx >= 0 && (size_t)idx < nmods)
			idmap[idx] = mods[i].id;
	}
	for (size_t i = 0; i < nips; i++) {
		int module = -1;
		uint64_t offset = ips[i];
		int n = sym_resolve(c, ips[i], 1, frames, MAX_FRAMES, &module, &offset);
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
		tw_u(w, ips[i]);
		tw_u(w, module >= 0 && (size_t)module < nmods ? idmap[module] : 0);
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
out:
	if (c)
		sym_close(c);
	free(strs.keys);
	free(strs.ids);
	free(frames);
	free(idmap);
	free(ips);
	return ret;
}
