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

/* Keys below this live in a direct array: stack and thread ids are small
 * and dense, and an index beats a hash on every event. */
#define IDMAP_DENSE_MAX (1u << 22)

struct idmap {
	uint32_t *dense;  /* dense[key] for key < dense_cap */
	size_t dense_cap;
	struct idmap_ent *e;
	size_t cap, used; /* cap is a power of two */
};

uint32_t model_map_get_hashed(const struct idmap *m, uint64_t key);

static inline uint32_t model_map_get(const struct idmap *m, uint64_t key)
{
	if (key < m->dense_cap)
		return m->dense[key];
	return key < IDMAP_DENSE_MAX ? IDMAP_NONE : model_map_get_hashed(m, key);
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

#endif
