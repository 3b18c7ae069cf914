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

/* ---- live blocks: addr -> (stack, size, thread); addr 0 marks an empty slot */

struct live_ent {
	uint64_t addr, size;
	uint32_t stack, thread;
	uint32_t slack;   /* usable - size, from TR_ALLOC (0 when unknown) */
	uint32_t chain;   /* its growth chain (model_growth.c), 0 = none */
};

struct live_tab {
	struct live_ent *e;
	size_t cap, used; /* cap is a power of two */
};

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
	const struct live_ent *e;  /* the live table, cap slots (addr 0: empty) */
	size_t cap;
	uint64_t bytes, slack, blocks;
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
/* The chain of block e, started now if it has none; 0 when out of memory. */
uint32_t model_growth_chain(struct model *m, const struct live_ent *e);
/* One step: e is the new block of a realloc of the block at old_addr. */
void model_growth_step(struct model *m, uint32_t chain, uint64_t old_addr, struct live_ent *e);
/* The chain's block was freed (or the trace ended): count it at its site. */
void model_growth_end(struct model *m, uint32_t chain);
/* Ends the chains still open and ranks the sites into m->growth. 0 or -ENOMEM. */
int model_growth_finish(struct model *m);
void model_growth_free(struct model *m);

#endif
