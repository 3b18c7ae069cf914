/*
 * model_live.c: the live blocks of a pass over a trace, address -> block
 * (struct live_tab, model_priv.h).
 *
 * One open-addressing table of 16-byte entries: the address and an 8-byte
 * payload that holds size, stack and slack when they fit (32, 24 and 7
 * bits), else names an extended record; a block in a growth chain names its
 * chain, whose record (model_growth.c) holds the block's numbers and which
 * the pass reads anyway. A block's home slot keeps the address's low bits
 * within a 128-byte window (8 granules of 16 bytes), so blocks an allocator
 * handed out side by side share cache lines; wider windows cluster the
 * table (a 4 KiB window took 131 probes per lookup on the CSV loader).
 *
 * Beside it, once the table is big, each 4 KiB page that holds a block keeps
 * its blocks' count and bytes: a smaps snapshot adds up pages, not blocks.
 * A small table is walked whole in less time than the pages cost to keep.
 */
#include "analyze/model_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE_SHIFT 12
#define PAGES_FROM (1u << 20) /* slots (16 MiB of entries) from which pages are kept */
#define WINDOW_SHIFT 7 /* addresses within 128 bytes get neighbouring slots */
#define P_EXT 1u       /* bits 32-63: an index into ext[] */
#define P_CHAIN 2u     /* with P_EXT: the index is a growth chain's */

static size_t home(uint64_t addr, size_t mask)
{
	return (size_t)(model_hash64(addr >> WINDOW_SHIFT) + (addr >> 4)) & mask;
}

static inline uint64_t page_key(uint64_t addr)
{
	return (addr >> PAGE_SHIFT) + 1;
}

/* ---- payloads -------------------------------------------------------------- */

/* The payload of b in *p: 0, or -ENOMEM when it needs an extended record
 * and none can be had. */
static int pack(struct live_tab *t, const struct live_blk *b, uint64_t *p)
{
	if (b->chain) {
		*p = (uint64_t)b->chain << 32 | P_CHAIN | P_EXT;
		t->ext_live++;
		return 0;
	}
	if (b->size <= UINT32_MAX && b->stack < (1u << 24) && b->slack < 128) {
		*p = b->size << 32 | (uint64_t)b->stack << 8 | (uint64_t)b->slack << 1;
		return 0;
	}
	uint32_t i = t->ext_free;
	if (i) {
		t->ext_free = t->ext[i].next;
	} else {
		/* ext[0] is never used: index 0 ends the free list */
		if (t->ext_n + 1 >= UINT32_MAX ||
		    model_grow((void **)&t->ext, &t->ext_cap, t->ext_n ? t->ext_n + 1 : 2, sizeof(*t->ext)) < 0)
			return -ENOMEM;
		if (!t->ext_n)
			t->ext_n = 1;
		i = (uint32_t)t->ext_n++;
	}
	t->ext[i] = (struct live_ext){ b->size, b->stack, b->slack, 0 };
	*p = (uint64_t)i << 32 | P_EXT;
	t->ext_live++;
	return 0;
}

/* The block of payload p; its extended record, if any, is released. */
static void unpack_release(struct live_tab *t, uint64_t p, struct live_blk *b)
{
	if (!(p & P_EXT)) {
		*b = (struct live_blk){ p >> 32, (uint32_t)(p >> 8) & 0xffffff, (uint32_t)(p >> 1) & 127, 0 };
		return;
	}
	uint32_t i = (uint32_t)(p >> 32);
	t->ext_live--;
	if (p & P_CHAIN) {
		t->chain_blk(t->chain_ctx, i, b);
		return;
	}
	const struct live_ext *x = &t->ext[i];
	*b = (struct live_blk){ x->size, x->stack, x->slack, 0 };
	t->ext[i].next = t->ext_free;
	t->ext_free = i;
}

static uint64_t payload_size(const struct live_tab *t, uint64_t p)
{
	struct live_blk b;
	if (!(p & P_EXT))
		return p >> 32;
	if (!(p & P_CHAIN))
		return t->ext[p >> 32].size;
	t->chain_blk(t->chain_ctx, (uint32_t)(p >> 32), &b);
	return b.size;
}

/* Zeroed table memory. A big table is probed at random places on every
 * event: on huge pages those probes stop missing the TLB as well. */
static void *table_alloc(size_t n, size_t size)
{
	const size_t huge = 2u << 20;
	size_t bytes = n * size;
	if (bytes < huge)
		return calloc(n, size);
	void *p = NULL;
	if (posix_memalign(&p, huge, bytes))
		return NULL;
	madvise(p, bytes, MADV_HUGEPAGE);
	memset(p, 0, bytes);
	return p;
}

/* ---- pages: blocks and bytes per 4 KiB page ------------------------------------ */

static size_t page_find(struct live_tab *t, uint64_t key)
{
	if (!t->pg_cap)
		return SIZE_MAX;
	size_t mask = t->pg_cap - 1;
	/* most events fall in the page of the one before */
	if (t->pg[t->pg_last & mask].key == key)
		return t->pg_last & mask;
	for (size_t i = model_hash64(key) & mask;; i = (i + 1) & mask) {
		if (t->pg[i].key == key)
			return t->pg_last = i;
		if (!t->pg[i].key)
			return SIZE_MAX;
	}
}

/* The page with key, made when absent; SIZE_MAX when out of memory. */
static size_t page_slot(struct live_tab *t, uint64_t key)
{
	size_t i = page_find(t, key);
	if (i != SIZE_MAX)
		return i;
	if ((t->pg_used + 1) * 2 > t->pg_cap) {
		size_t cap = t->pg_cap ? t->pg_cap * 2 : 256;
		struct live_page *pg = table_alloc(cap, sizeof(*pg));
		if (!pg)
			return SIZE_MAX;
		model_oa_rehash(pg, cap, t->pg, t->pg_cap, sizeof(*pg), model_oa_hashed);
		free(t->pg);
		t->pg = pg;
		t->pg_cap = cap;
	}
	size_t mask = t->pg_cap - 1;
	for (i = model_hash64(key) & mask; t->pg[i].key; i = (i + 1) & mask)
		;
	t->pg[i].key = key;
	t->pg_used++;
	return t->pg_last = i;
}

/* Counts a block of size bytes in its page: 0, or -ENOMEM. */
static int page_add(struct live_tab *t, uint64_t addr, uint64_t size)
{
	size_t pi = page_slot(t, page_key(addr));
	if (pi == SIZE_MAX)
		return -ENOMEM;
	t->pg[pi].bytes += size;
	t->pg[pi].blocks++;
	return 0;
}

/* ---- the blocks -------------------------------------------------------------- */

static int grow(struct live_tab *t)
{
	size_t cap = t->cap ? t->cap * 2 : 4096;
	struct live_ent *e = table_alloc(cap, sizeof(*e));
	if (!e)
		return -ENOMEM;
	model_oa_rehash(e, cap, t->e, t->cap, sizeof(*e), home);
	free(t->e);
	t->e = e;
	t->cap = cap;
	if (!t->pages && cap >= (t->pages_from ? t->pages_from : PAGES_FROM)) {
		/* from now on pages are kept: count the blocks so far */
		t->pages = 1;
		for (size_t i = 0; i < cap; i++)
			if (e[i].addr && page_add(t, e[i].addr, payload_size(t, e[i].p)) < 0)
				return -ENOMEM;
	}
	return 0;
}

int model_live_put(struct live_tab *t, uint64_t addr, const struct live_blk *b, struct live_blk *old)
{
	if ((t->used + 1) * 10 > t->cap * 7 && grow(t) < 0)
		return -ENOMEM;
	uint64_t p;
	if (pack(t, b, &p) < 0)
		return -ENOMEM;
	size_t pi = t->pages ? page_slot(t, page_key(addr)) : 0;
	if (pi == SIZE_MAX) {
		struct live_blk drop;
		unpack_release(t, p, &drop);
		return -ENOMEM;
	}
	size_t mask = t->cap - 1, i = home(addr, mask);
	while (t->e[i].addr && t->e[i].addr != addr)
		i = (i + 1) & mask;
	if (t->e[i].addr) {
		/* still live: its free was lost; the new block replaces it */
		unpack_release(t, t->e[i].p, old);
		t->e[i].p = p;
		if (t->pages)
			t->pg[pi].bytes += b->size - old->size;
		return 1;
	}
	t->e[i] = (struct live_ent){ addr, p };
	t->used++;
	if (t->pages) {
		t->pg[pi].bytes += b->size;
		t->pg[pi].blocks++;
	}
	return 0;
}

int model_live_take(struct live_tab *t, uint64_t addr, struct live_blk *b)
{
	if (!t->cap)
		return 0;
	size_t mask = t->cap - 1, i = home(addr, mask);
	for (; t->e[i].addr != addr; i = (i + 1) & mask)
		if (!t->e[i].addr)
			return 0;
	unpack_release(t, t->e[i].p, b);
	model_oa_remove(t->e, sizeof(*t->e), t->cap, i, home);
	t->used--;
	if (!t->pages)
		return 1;
	size_t pi = page_find(t, page_key(addr));
	t->pg[pi].bytes -= b->size;
	if (!--t->pg[pi].blocks) {
		model_oa_remove(t->pg, sizeof(*t->pg), t->pg_cap, pi, model_oa_hashed);
		t->pg_used--;
	}
	return 1;
}

void model_live_prefetch(const struct live_tab *t, uint64_t addr)
{
	if (t->cap)
		__builtin_prefetch(&t->e[home(addr, t->cap - 1)], 1);
	if (t->pg_cap)
		__builtin_prefetch(&t->pg[model_hash64(page_key(addr)) & (t->pg_cap - 1)], 1);
}

uint32_t model_live_prefetch2(const struct live_tab *t, uint64_t addr)
{
	if (!t->cap)
		return UINT32_MAX;
	size_t mask = t->cap - 1, i = home(addr, mask);
	for (; t->e[i].addr != addr; i = (i + 1) & mask)
		if (!t->e[i].addr)
			return UINT32_MAX;
	uint64_t p = t->e[i].p;
	if (!(p & P_EXT))
		return (uint32_t)(p >> 8) & 0xffffff; /* the numbers are in the entry */
	if (p & P_CHAIN)
		t->chain_blk(t->chain_ctx, (uint32_t)(p >> 32), NULL);
	else
		__builtin_prefetch(&t->ext[p >> 32]);
	return UINT32_MAX;
}

void model_live_walk(const struct live_tab *t, int by_page, void (*fn)(void *ctx, uint64_t addr, uint64_t bytes),
		     void *ctx)
{
	if (by_page && t->pages) {
		for (size_t i = 0; i < t->pg_cap; i++)
			if (t->pg[i].key)
				fn(ctx, (t->pg[i].key - 1) << PAGE_SHIFT, t->pg[i].bytes);
		return;
	}
	for (size_t i = 0; i < t->cap; i++)
		if (t->e[i].addr)
			fn(ctx, t->e[i].addr, payload_size(t, t->e[i].p));
}

void model_live_free(struct live_tab *t)
{
	free(t->e);
	free(t->pg);
	free(t->ext);
	memset(t, 0, sizeof(*t));
}
