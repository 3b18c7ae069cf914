/*
 * model_priv.h: the analysis model's internal tables, shared by model.c (the
 * pass over events) and model_stacks.c (stacks, symbols, modules, ranking).
 * Not for outputs: they read model.h only.
 */
#ifndef HS_MODEL_PRIV_H
#define HS_MODEL_PRIV_H

#include "analyze/model.h"
#include "trace/trace.h"

#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* ---- u64 key -> u32 value, open addressing, no deletion ---------------- */

#define IDMAP_NONE UINT32_MAX

struct idmap_ent {
	uint64_t key;
	uint32_t val; /* IDMAP_NONE: empty slot */
};

/* Keys below this may live in a direct array: stack and thread ids are
 * small and dense, and an index beats a hash on every event. The array
 * grows only while it stays within a few slots per key stored, so one large
 * id from a hostile trace goes to the hash instead of sizing the array. */
#define IDMAP_DENSE_MAX (1u << 22)

struct idmap {
	uint32_t *dense;  /* dense[key] for key < dense_cap */
	size_t dense_cap, dense_used;
	struct idmap_ent *e;
	size_t cap, used; /* cap is a power of two */
};

uint32_t model_map_get_hashed(const struct idmap *m, uint64_t key);

static inline uint32_t model_map_get(const struct idmap *m, uint64_t key)
{
	if (key < m->dense_cap && (m->dense[key] != IDMAP_NONE || !m->used))
		return m->dense[key];
	return m->used ? model_map_get_hashed(m, key) : IDMAP_NONE;
}
/* Sets key -> val, replacing an old value. 0 or -ENOMEM. */
int model_map_put(struct idmap *m, uint64_t key, uint32_t val);
void model_map_free(struct idmap *m);

static inline uint64_t model_hash64(uint64_t k)
{
	/* splitmix64 finalizer: addresses and ids share low bits, mix them all */
	k ^= k >> 30;
	k *= 0xbf58476d1ce4e5b9ull;
	k ^= k >> 27;
	k *= 0x94d049bb133111ebull;
	k ^= k >> 31;
	return k;
}

/* ---- open addressing: linear probing, backward-shift deletion -------------- */

/* Tables of records of size bytes whose first field is a uint64_t key, 0 in
 * an empty slot; home(key, mask) is a key's first slot, cap a power of two.
 * Static inline: each table's home is inlined into its own copy. */

static inline uint64_t model_oa_key(const void *e, size_t size, size_t i)
{
	uint64_t k;
	memcpy(&k, (const char *)e + i * size, sizeof(k));
	return k;
}

/* Empties slot i, moving later records of its run back: no tombstones, so a
 * table with heavy churn never degrades. */
static inline void model_oa_remove(void *e, size_t size, size_t cap, size_t i, size_t (*home)(uint64_t, size_t))
{
	size_t mask = cap - 1, j = i;
	for (;;) {
		j = (j + 1) & mask;
		uint64_t k = model_oa_key(e, size, j);
		if (!k)
			break;
		size_t h = home(k, mask);
		/* j moves into the hole at i unless its home lies in (i, j] */
		if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
			memcpy((char *)e + i * size, (char *)e + j * size, size);
			i = j;
		}
	}
	memset((char *)e + i * size, 0, size);
}

/* Puts the records of old (cap slots) into e (ncap zeroed slots). */
static inline void model_oa_rehash(void *e, size_t ncap, const void *old, size_t cap, size_t size,
				   size_t (*home)(uint64_t, size_t))
{
	for (size_t j = 0; j < cap; j++) {
		uint64_t k = model_oa_key(old, size, j);
		if (!k)
			continue;
		size_t i = home(k, ncap - 1);
		while (model_oa_key(e, size, i))
			i = (i + 1) & (ncap - 1);
		memcpy((char *)e + i * size, (const char *)old + j * size, size);
	}
}

/* The home of a key hashed whole. */
static inline size_t model_oa_hashed(uint64_t key, size_t mask)
{
	return (size_t)model_hash64(key) & mask;
}

/* ---- interned strings: pointers stay valid until model_pool_free ------------ */

struct pool_chunk;

struct pool_slot {
	uint64_t hash;
	const char *s; /* NULL: empty slot */
};

struct pool {
	struct pool_chunk *chunks;
	struct pool_slot *set; /* open addressing on content */
	size_t cap, used;
};

/* Returns the pool's copy of s (NULL for NULL), or NULL with *oom set. */
const char *model_pool_intern(struct pool *p, const char *s, int *oom);
void model_pool_free(struct pool *p);

/* ---- stacks, symbols, modules ------------------------------------------ */

struct stack_node {
	uint64_t parent, ip;
};

struct sym_frame_rec {
	const char *function, *file; /* interned */
	uint32_t line, flags;
};

struct sym_ent {
	uint64_t module, offset;
	uint32_t first, n; /* frames[first .. first+n) */
};

struct module_ent {
	uint64_t id, bias, start, end;
	const char *path;     /* interned */
	const char *build_id; /* interned lowercase hex, "" when none */
};

/* TR_ALLOC and TR_FREE kinds the pass tells apart (docs/trace-format.md). */
enum {
	MODEL_KIND_REALLOC = 3,
	MODEL_KIND_REALLOCARRAY = 4,
	MODEL_KIND_REALLOC_FREE = 33,
};

/* ---- live blocks: address -> block (model_live.c) --------------------------- */

struct live_blk {
	uint64_t size;
	uint32_t stack;
	uint32_t slack;   /* usable - size, from TR_ALLOC (0 when unknown) */
	uint32_t chain;   /* its growth chain (model_growth.c), 0 = none */
};

struct live_ent {
	uint64_t addr;    /* 0: an empty slot */
	uint64_t p;       /* the block, packed (model_live.c) */
};

/* The live blocks that start in one 4 KiB page. */
struct live_page {
	uint64_t key;     /* (address >> 12) + 1; 0: an empty slot */
	uint64_t bytes;   /* their requested bytes */
	uint64_t blocks;
};

struct live_ext {
	uint64_t size;
	uint32_t stack, slack;
	uint32_t next;    /* the free list, while unused */
};

struct live_tab {
	struct live_ent *e;   /* open addressing, cap a power of two */
	size_t cap, used;
	struct live_page *pg; /* open addressing by page, pg_cap a power of two */
	size_t pg_cap, pg_used, pg_last;
	int pages;            /* pages are kept (the table reached pages_from slots) */
	size_t pages_from;    /* 0: model_live.c's default */
	struct live_ext *ext; /* blocks whose numbers do not fit 8 bytes */
	size_t ext_n, ext_cap;
	uint32_t ext_free;
	uint64_t ext_live;    /* live blocks with an extended record or a chain */
	/* the numbers of a block in growth chain c (set when chains are put);
	 * with b NULL, only starts fetching the chain's record */
	void (*chain_blk)(void *ctx, uint32_t c, struct live_blk *b);
	void *chain_ctx;
};

/* Adds the block at addr. A block still live there is replaced: returns 1
 * with it in *old; else 0; -ENOMEM (then the table is unchanged). A block
 * with a chain keeps only the chain: chain_blk gives its numbers back. */
int model_live_put(struct live_tab *t, uint64_t addr, const struct live_blk *b, struct live_blk *old);
/* Removes the block at addr: 1 with it in *b, 0 when none is live there. */
int model_live_take(struct live_tab *t, uint64_t addr, struct live_blk *b);
/* Starts fetching what a put or take of addr will read. */
void model_live_prefetch(const struct live_tab *t, uint64_t addr);
/* The same, later: once what the first call fetched has come, what the
 * block's entry points to. Returns the block's stack when the entry holds
 * it (the caller prefetches its totals), else UINT32_MAX. */
uint32_t model_live_prefetch2(const struct live_tab *t, uint64_t addr);
/* Calls fn for every live block (by_page == 0) with its address and
 * requested bytes; or (by_page == 1) for every 4 KiB page that holds a
 * block, with the page's address and the bytes of the blocks in it, when
 * the table keeps pages (t->pages), else for every block. */
void model_live_walk(const struct live_tab *t, int by_page, void (*fn)(void *ctx, uint64_t addr, uint64_t bytes),
		     void *ctx);
void model_live_free(struct live_tab *t);

/* Per-stack state of the peak snapshot (see model.c). */
struct stack_snap {
	uint64_t val, blocks, epoch;
};

struct model_priv {
	struct pool strings;

	struct idmap node_ids; /* stack id -> nodes[] */
	struct stack_node *nodes;
	size_t nnodes, nodes_cap;

	struct idmap sym_ips;  /* ip -> syms[] */
	struct sym_ent *syms;
	size_t nsyms, syms_cap;
	struct sym_frame_rec *frames;
	size_t nframes, frames_cap;

	struct module_ent *modules;
	size_t nmodules, modules_cap;

	struct idmap stack_ids; /* leaf stack id -> model.stacks[] */
	struct stack_snap *snaps; /* parallel to model.stacks */
	size_t stacks_cap;

	const char **argv_store; /* sum.argv: pointers into strings */

	struct mem_state *mem;       /* model_mem.c: mappings, allocator, snapshots */
	struct growth_state *growth; /* model_growth.c: realloc chains */
};

/* Grows *arr (of elem-sized items, capacity *cap) to hold need items,
 * doubling. 0 or -ENOMEM (then *arr is unchanged). */
int model_grow(void **arr, size_t *cap, size_t need, size_t elem);

/* model_stacks.c: the parts of the pass that build the symbol side. */
int model_add_node(struct model *m, uint64_t id, uint64_t parent, uint64_t ip);
int model_add_module(struct model *m, uint64_t id, uint64_t bias, uint64_t start, uint64_t end,
		     const char *path, const uint8_t *build_id, uint32_t build_id_len);
int model_add_symbol(struct model *m, uint64_t ip, uint64_t module, uint64_t offset, uint32_t nframes,
		     const struct trace_frame *frames);
void model_priv_free(struct model_priv *p);

/* model_mem.c: memory beyond the heap. The pass hands it the records it
 * does not handle itself and what it knows when a snapshot comes. */
struct model_live_view {
	const struct live_tab *t;  /* the live blocks, all processes' */
	uint64_t bytes, slack, blocks; /* of the blocks below 2^63: the snapshot's process */
};
int model_mem_init(struct model *m);
int model_mem_map(struct model *m, const struct trace_record *rec, uint32_t si);
void model_mem_mallinfo(struct model *m, const struct trace_record *rec);
int model_mem_smaps(struct model *m, const struct trace_record *rec, const struct model_live_view *live);
void model_mem_exit_mark(struct model *m);
void model_mem_finish(struct model *m);
void model_mem_free(struct model *m);

/* model_growth.c: realloc chains. A TR_FREE of kind realloc_free followed
 * by the same thread's next event, a TR_ALLOC of kind realloc or
 * reallocarray, is one step: the new block continues the old one's chain. */
int model_growth_init(struct model *m);
/* The chain of block b, started now if it has none; 0 when out of memory. */
uint32_t model_growth_chain(struct model *m, const struct live_blk *b);
/* One step: b, the block at addr, is the new block of a realloc of the block
 * at old_addr; it continues chain, which holds its numbers while it lives. */
void model_growth_step(struct model *m, uint32_t chain, uint64_t old_addr, uint64_t addr, const struct live_blk *b);
/* The numbers of the block that chain's record holds (live_tab.chain_blk;
 * b NULL: only a prefetch of the record). */
void model_growth_block(void *m, uint32_t chain, struct live_blk *b);
/* The chain's block was freed (or the trace ended): count it at its site. */
void model_growth_end(struct model *m, uint32_t chain);
/* Ends the chains still open and ranks the sites into m->growth. 0 or -ENOMEM. */
int model_growth_finish(struct model *m);
void model_growth_free(struct model *m);

#endif
