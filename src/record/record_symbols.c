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
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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

/* Node i's space, from those of nodes before it: the root it hangs from, a
 * node with ip 0 and no parent (space 0 holds stacks without a root). */
static uint32_t node_space(const struct hs_node *nodes, const uint32_t *space, uint32_t i)
{
	uint32_t parent = nodes[i].parent;
	if (parent >= i) /* the drain wrote it without a parent */
		parent = 0;
	return parent ? space[parent] : nodes[i].ip ? 0 : i;
}

/* The distinct (space, ip) of nodes 1..nnodes-1 with an ip, sorted. */
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
		space[i] = node_space(nodes, space, i);
		if (nodes[i].ip)
			v[k++] = (struct sip){ space[i], nodes[i].ip };
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

/* A symbolizer over modules of mods; map[idx] = index into mods. */
struct symctx {
	struct sym_ctx *c;
	size_t *map;
	size_t offered;   /* mods[0..offered) were looked at */
	uint64_t space;
};

static int ctx_open(struct symctx *x, uint64_t space, int cache_dir)
{
	int ret = sym_open(&x->c);
	if (ret)
		return ret;
	sym_use_cache(x->c, cache_dir);
	x->space = space;
	return 0;
}

/* Adds mods[x->offered..nmods) to x: every one (all), or those of its space.
 * Adding in steps gives the same symbolizer as adding at once. */
static int ctx_add(struct symctx *x, const struct rec_module *mods, size_t nmods, int all)
{
	if (nmods <= x->offered)
		return 0;
	size_t *map = realloc(x->map, nmods * sizeof(*map));
	if (!map)
		return -ENOMEM;
	memset(map + x->offered, 0, (nmods - x->offered) * sizeof(*map));
	x->map = map;
	/* sym_add_module numbers modules 0, 1, ... in call order; keep the map
	 * to ours rather than assume it */
	for (size_t i = x->offered; i < nmods; i++) {
		x->offered = i + 1;
		if (!all && mods[i].space != x->space)
			continue;
		int idx = sym_add_module(x->c, mods[i].path, mods[i].bias, mods[i].start, mods[i].end);
		if (idx == -ENOMEM)
			return idx;
		if (idx >= 0 && (size_t)idx < nmods)
			map[idx] = i;
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

/* The symbol table, with all: empty, or ready with mods[0..all.offered). */
static int write_symbols(struct trace_writer *w, const struct hs_shm_header *h, uint32_t nnodes,
			 const struct rec_module *mods, size_t nmods, int cache_dir, struct symctx all,
			 uint64_t *nsyms)
{
	struct symctx *own = NULL;
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
	ret = all.c ? 0 : ctx_open(&all, 0, cache_dir);
	if (!ret)
		ret = ctx_add(&all, mods, nmods, 1);
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
					ret = ctx_open(x, space, cache_dir);
					if (!ret)
						ret = ctx_add(x, mods, nmods, 0);
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

int rec_symbols_write(struct trace_writer *w, const struct hs_shm_header *h, uint32_t nnodes,
		      const struct rec_module *mods, size_t nmods, int cache_dir, uint64_t *nsyms)
{
	return write_symbols(w, h, nnodes, mods, nmods, cache_dir, (struct symctx){ 0 }, nsyms);
}

/* ---- ahead of the end ------------------------------------------------- */

/*
 * While the program runs, a thread resolves each new stack address once
 * with the symbolizer that the end will use: what costs is loading and
 * indexing an object's debug info the first time (libc's separate debug
 * file, decompressed whole by elfutils: ~37 ms; a Rust binary's units:
 * ~14 ms), and that is then done. The end resolves every address again in
 * the same symbolizer, so the table is the same as without the thread.
 * The thread keeps the program's priority: the end waits for it, and below
 * other work a busy machine would starve it.
 */
struct rec_syms {
	const struct hs_shm_header *h;
	int cache_dir;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* fed, under mu */
	struct rec_module *fed;
	size_t nfed, capfed;
	uint32_t fed_nodes;
	_Atomic int stop;
	/* the thread's */
	struct rec_module *mods;   /* its copy of fed[0..nmods) */
	size_t nmods;
	struct symctx all;
	uint32_t nodes;            /* nodes 1..nodes-1 looked at */
	uint32_t *space;           /* per node: node_space */
	size_t capspace;
	struct sip *seen;          /* open addressing; ip 0 = empty */
	size_t capseen, nseen;
	struct sym_frame *frames;
	int err;                   /* out of memory: the end starts afresh */
	_Atomic size_t ahead;      /* addresses resolved */
};

static int seen_add(struct rec_syms *s, uint64_t space, uint64_t ip)
{
	if (2 * (s->nseen + 1) > s->capseen) {
		size_t cap = s->capseen ? 2 * s->capseen : 1024;
		struct sip *v = calloc(cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < s->capseen; i++) {
			if (!s->seen[i].ip)
				continue;
			size_t j = (s->seen[i].ip * 0x9E3779B97F4A7C15ull ^ s->seen[i].space) & (cap - 1);
			while (v[j].ip)
				j = (j + 1) & (cap - 1);
			v[j] = s->seen[i];
		}
		free(s->seen);
		s->seen = v;
		s->capseen = cap;
	}
	size_t j = (ip * 0x9E3779B97F4A7C15ull ^ space) & (s->capseen - 1);
	for (; s->seen[j].ip; j = (j + 1) & (s->capseen - 1))
		if (s->seen[j].ip == ip && s->seen[j].space == space)
			return 0;
	s->seen[j] = (struct sip){ space, ip };
	s->nseen++;
	return 1;
}

/* Resolves the new addresses of nodes [s->nodes, n). */
static int warm_nodes(struct rec_syms *s, uint32_t n)
{
	const struct hs_node *nodes = HS_SHM_AT(s->h, s->h->nodes_off, const struct hs_node);
	if (n > s->capspace) {
		size_t cap = s->capspace ? s->capspace : 1024;
		while (cap < n)
			cap *= 2;
		uint32_t *v = realloc(s->space, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->space = v;
		s->capspace = cap;
	}
	if (!s->nodes)
		s->nodes = 1;
	for (; s->nodes < n && !atomic_load_explicit(&s->stop, memory_order_relaxed); s->nodes++) {
		uint32_t i = s->nodes;
		uint64_t ip = nodes[i].ip;
		s->space[i] = node_space(nodes, s->space, i);
		if (!ip)
			continue;
		int fresh = seen_add(s, s->space[i], ip);
		if (fresh < 0)
			return fresh;
		if (!fresh || !module_of(s->mods, s->nmods, s->space[i], ip))
			continue;
		int module;
		uint64_t offset;
		if (sym_resolve(s->all.c, ip, 1, s->frames, MAX_FRAMES, &module, &offset) == -ENOMEM)
			return -ENOMEM;
		atomic_fetch_add(&s->ahead, 1);
	}
	return 0;
}

static void *warm_thread(void *arg)
{
	struct rec_syms *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!atomic_load(&s->stop) && !s->err) {
		if (s->nfed == s->nmods && s->fed_nodes == s->nodes) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		/* modules first: a node's address is looked up among those */
		size_t nm = s->nfed;
		uint32_t nn = s->fed_nodes;
		struct rec_module *v = realloc(s->mods, (nm ? nm : 1) * sizeof(*v));
		if (!v) {
			s->err = -ENOMEM;
			break;
		}
		if (nm > s->nmods)
			memcpy(v + s->nmods, s->fed + s->nmods, (nm - s->nmods) * sizeof(*v));
		s->mods = v;
		s->nmods = nm;
		pthread_mutex_unlock(&s->mu);
		int err = ctx_add(&s->all, s->mods, s->nmods, 1);
		if (!err)
			err = warm_nodes(s, nn);
		pthread_mutex_lock(&s->mu);
		s->err = err;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int rec_syms_start(struct rec_syms **out, const struct hs_shm_header *h, int cache_dir)
{
	struct rec_syms *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->h = h;
	s->cache_dir = cache_dir;
	s->frames = malloc(MAX_FRAMES * sizeof(*s->frames));
	int ret = s->frames ? ctx_open(&s->all, 0, cache_dir) : -ENOMEM;
	if (ret) {
		ctx_close(&s->all);
		free(s->frames);
		free(s);
		return ret;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	/* signals are the main thread's */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&s->thread, NULL, warm_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		ctx_close(&s->all);
		free(s->frames);
		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void rec_syms_feed(struct rec_syms *s, const struct rec_module *mods, size_t nmods, uint32_t nnodes)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	if (nmods > s->capfed) {
		size_t cap = s->capfed ? s->capfed : 32;
		while (cap < nmods)
			cap *= 2;
		struct rec_module *v = realloc(s->fed, cap * sizeof(*v));
		if (v) {
			s->fed = v;
			s->capfed = cap;
		}
	}
	if (nmods <= s->capfed && (nmods != s->nfed || nnodes != s->fed_nodes)) {
		if (nmods > s->nfed)
			memcpy(s->fed + s->nfed, mods + s->nfed, (nmods - s->nfed) * sizeof(*mods));
		s->nfed = nmods;
		s->fed_nodes = nnodes;
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
}

size_t rec_syms_ahead(struct rec_syms *s)
{
	return atomic_load(&s->ahead);
}

/* Stops the thread where it is; returns its symbolizer, or an empty one. */
static struct symctx syms_stop(struct rec_syms *s)
{
	atomic_store(&s->stop, 1);
	pthread_mutex_lock(&s->mu);
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	struct symctx all = s->all;
	if (s->err) {
		ctx_close(&all);
		all = (struct symctx){ 0 };
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->fed);
	free(s->mods);
	free(s->space);
	free(s->seen);
	free(s->frames);
	free(s);
	return all;
}

int rec_syms_write(struct rec_syms *s, struct trace_writer *w, const struct hs_shm_header *h, uint32_t nnodes,
		   const struct rec_module *mods, size_t nmods, uint64_t *nsyms)
{
	int cache_dir = s->cache_dir;
	return write_symbols(w, h, nnodes, mods, nmods, cache_dir, syms_stop(s), nsyms);
}

void rec_syms_free(struct rec_syms *s)
{
	if (!s)
		return;
	struct symctx all = syms_stop(s);
	ctx_close(&all);
}
