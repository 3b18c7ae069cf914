/*
 * flame.c: the call tree of flame graphs, built from the model's stacks
 * (model_stack_frames, model_stack_value) or from a diff's entries. Nodes
 * are found by (parent, label) in an open-addressing table; labels that the
 * model does not hold (addresses without symbols) are copied into chunks
 * that live as long as the tree.
 */
#include "report/flame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct name_chunk {
	struct name_chunk *next;
	size_t used, cap;
	char data[];
};

/* A slot holds what a probe compares first, so that a miss does not touch
 * the node (a cache miss in a big tree). */
struct slot {
	uint32_t node;       /* FLAME_NONE = empty */
	uint32_t parent;
	uint64_t hash;
};

#define HASH_CACHE 4096

struct flame_priv {
	struct slot *slots;  /* cap is a power of two */
	size_t cap;
	/* name -> hash by address: the model interns its names, and hashing a
	 * long C++ name at every level of every stack would dominate */
	const char *hkey[HASH_CACHE];
	uint64_t hval[HASH_CACHE];
	struct name_chunk *names;
	const char *exe;     /* the executable's path: its own frames are FLAME_APP */
	struct model_frame *frames;
	size_t frames_cap;
};

static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static uint64_t key_hash(uint32_t parent, uint64_t name_h)
{
	uint64_t h = name_h ^ ((uint64_t)parent * 0x9e3779b97f4a7c15ull);
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h;
}

static const char *copy_name(struct flame_priv *p, const char *s)
{
	size_t n = strlen(s) + 1;
	struct name_chunk *c = p->names;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > 16384 ? n : 16384;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = p->names;
		p->names = c;
	}
	char *d = c->data + c->used;
	memcpy(d, s, n);
	c->used += n;
	return d;
}

static int slots_grow(struct flame_tree *t)
{
	struct flame_priv *p = t->priv;
	size_t cap = p->cap ? p->cap * 2 : 1024;
	struct slot *s = malloc(cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		s[i].node = FLAME_NONE;
	for (size_t j = 0; j < p->cap; j++) {
		if (p->slots[j].node == FLAME_NONE)
			continue;
		size_t i = p->slots[j].hash & (cap - 1);
		while (s[i].node != FLAME_NONE)
			i = (i + 1) & (cap - 1);
		s[i] = p->slots[j];
	}
	free(p->slots);
	p->slots = s;
	p->cap = cap;
	return 0;
}

static uint64_t cached_name_hash(struct flame_priv *p, const char *name)
{
	size_t k = ((uintptr_t)name >> 3) & (HASH_CACHE - 1);
	if (p->hkey[k] != name) {
		p->hkey[k] = name;
		p->hval[k] = name_hash(name);
	}
	return p->hval[k];
}

/* Files of the toolchain and the system: inlined into the program, but not its code. */
static int system_file(const char *f)
{
	return !strncmp(f, "/rustc/", 7) || !strncmp(f, "/usr/", 5) || strstr(f, "/.cargo/registry/") ||
	       strstr(f, "/.rustup/") || strstr(f, "/rustlib/");
}

static enum flame_origin origin_of(const struct flame_priv *p, const struct model_frame *f)
{
	if (!f->function)
		return FLAME_UNKNOWN;
	if (!p->exe || !f->module || strcmp(f->module, p->exe))
		return FLAME_LIB;
	return f->file && system_file(f->file) ? FLAME_LIB : FLAME_APP;
}

enum flame_origin flame_frame_origin(const struct flame_tree *t, const struct model_frame *f)
{
	return origin_of(t->priv, f);
}

/* Merged frames keep a location only where they all agree. */
static void merge_frame(struct flame_node *nd, const struct model_frame *f)
{
	if (nd->file && (!f->file || (nd->file != f->file && strcmp(nd->file, f->file))))
		nd->file = NULL;
	if (nd->line != f->line)
		nd->line = 0;
	if (!(f->flags & MODEL_FRAME_INLINED))
		nd->inlined = 0;
}

/* The child of parent named by f, created when missing. */
static int child_for(struct flame_tree *t, uint32_t parent, const struct model_frame *f, uint32_t *out)
{
	struct flame_priv *p = t->priv;
	char buf[256];
	const char *name = model_frame_label(f, buf, sizeof(buf));
	if ((t->n + 1) * 2 > p->cap && slots_grow(t) < 0)
		return -ENOMEM;
	/* Most nodes of deep stacks have one child: try the newest before the
	 * table, whose slots are cache misses in a big tree. */
	uint32_t first = t->nodes[parent].child;
	if (first != FLAME_NONE && t->nodes[first].name == name) {
		merge_frame(&t->nodes[first], f);
		*out = first;
		return 0;
	}
	uint64_t h = key_hash(parent, name == buf ? name_hash(name) : cached_name_hash(p, name));
	size_t mask = p->cap - 1, i = h & mask;
	for (; p->slots[i].node != FLAME_NONE; i = (i + 1) & mask) {
		if (p->slots[i].hash != h || p->slots[i].parent != parent)
			continue;
		struct flame_node *nd = &t->nodes[p->slots[i].node];
		if (nd->name != name && strcmp(nd->name, name))
			continue;
		merge_frame(nd, f);
		*out = p->slots[i].node;
		return 0;
	}
	if (t->n >= FLAME_NONE - 1)
		return -ENOMEM;
	if (t->n == t->cap) {
		size_t cap = t->cap * 2;
		struct flame_node *nn = realloc(t->nodes, cap * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		t->nodes = nn;
		t->cap = cap;
	}
	if (name == buf && !(name = copy_name(p, buf)))
		return -ENOMEM;
	uint32_t ni = (uint32_t)t->n++;
	struct flame_node *nd = &t->nodes[ni], *pn = &t->nodes[parent];
	memset(nd, 0, sizeof(*nd));
	nd->name = name;
	nd->file = f->file;
	nd->line = f->line;
	nd->inlined = !!(f->flags & MODEL_FRAME_INLINED);
	nd->origin = origin_of(p, f);
	nd->parent = parent;
	nd->depth = pn->depth + 1;
	nd->child = FLAME_NONE;
	/* newest sibling first; drawing sorts them (flame_children) */
	nd->next = pn->child;
	pn->child = ni;
	if (nd->depth > t->max_depth)
		t->max_depth = nd->depth;
	p->slots[i] = (struct slot){ ni, parent, h };
	*out = ni;
	return 0;
}

static struct flame_tree *tree_new(const char *exe)
{
	struct flame_tree *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->priv = calloc(1, sizeof(*t->priv));
	t->cap = 1024;
	t->nodes = malloc(t->cap * sizeof(*t->nodes));
	if (!t->priv || !t->nodes) {
		flame_free(t);
		return NULL;
	}
	t->priv->exe = exe;
	memset(&t->nodes[0], 0, sizeof(t->nodes[0]));
	t->nodes[0].name = "all";
	t->nodes[0].parent = FLAME_NONE;
	t->nodes[0].child = FLAME_NONE;
	t->nodes[0].next = FLAME_NONE;
	t->nodes[0].origin = FLAME_LIB;
	t->n = 1;
	return t;
}

/* Frames of one stack, outermost last; the buffer grows to the deepest stack. */
static int frames_of(struct flame_priv *p, size_t (*get)(const void *, size_t, struct model_frame *, size_t),
		     const void *src, size_t i, size_t *n)
{
	if (!p->frames_cap) {
		p->frames_cap = 256;
		if (!(p->frames = malloc(p->frames_cap * sizeof(*p->frames))))
			return -ENOMEM;
	}
	size_t total = get(src, i, p->frames, p->frames_cap);
	if (total > p->frames_cap) {
		struct model_frame *f = realloc(p->frames, total * sizeof(*f));
		if (!f)
			return -ENOMEM;
		p->frames = f;
		p->frames_cap = total;
		total = get(src, i, p->frames, p->frames_cap);
	}
	*n = total;
	return 0;
}

/* Adds one stack's numbers to every node of its path, root first. */
static int add_path(struct flame_tree *t, size_t nframes, const uint64_t *v, const uint64_t *c, const uint64_t *b)
{
	uint32_t cur = 0;
	for (size_t k = 0; k < FLAME_KEYS; k++) {
		t->nodes[0].v[k] += v[k];
		t->nodes[0].c[k] += c[k];
		t->nodes[0].b[k] += b[k];
	}
	for (size_t j = nframes; j-- > 0;) {
		if (child_for(t, cur, &t->priv->frames[j], &cur) < 0)
			return -ENOMEM;
		struct flame_node *nd = &t->nodes[cur];
		for (size_t k = 0; k < FLAME_KEYS; k++) {
			nd->v[k] += v[k];
			nd->c[k] += c[k];
			nd->b[k] += b[k];
		}
	}
	return 0;
}

/* What stands beside key's value: blocks for bytes, bytes for counts. */
static uint64_t companion(const struct model_stack *s, enum model_key key)
{
	switch (key) {
	case MODEL_BY_PEAK: return s->peak_blocks;
	case MODEL_BY_ALLOCATIONS: return s->allocated_bytes;
	case MODEL_BY_BYTES: return s->allocations;
	case MODEL_BY_TEMPORARY: return s->temporary_bytes;
	case MODEL_BY_LEAKED: return s->leaked_blocks;
	}
	return 0;
}

static size_t get_model(const void *src, size_t i, struct model_frame *out, size_t max)
{
	return model_stack_frames(src, i, out, max);
}

static size_t get_diff(const void *src, size_t i, struct model_frame *out, size_t max)
{
	return model_diff_frames(src, i, out, max);
}

/* The executable: the first module the trace names, else the process record's path. */
static const char *exe_of(const struct model *m)
{
	struct model_module mod;
	if (model_modules(m, &mod, 1) && mod.path)
		return mod.path;
	return m->sum.program;
}

int flame_build(struct flame_tree **out, const struct model *m)
{
	struct flame_tree *t = tree_new(exe_of(m));
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < m->nstacks; i++) {
		const struct model_stack *s = &m->stacks[i];
		uint64_t v[FLAME_KEYS], c[FLAME_KEYS], b[FLAME_KEYS] = { 0 }, any = 0;
		size_t n;
		for (int k = 0; k < FLAME_KEYS; k++) {
			v[k] = model_stack_value(s, (enum model_key)k);
			c[k] = companion(s, (enum model_key)k);
			any |= v[k] | c[k];
		}
		if (!any)
			continue;
		if (frames_of(t->priv, get_model, m, i, &n) < 0 || add_path(t, n, v, c, b) < 0) {
			flame_free(t);
			return -ENOMEM;
		}
	}
	*out = t;
	return 0;
}

int flame_build_diff(struct flame_tree **out, const struct model_diff *d)
{
	struct flame_tree *t = tree_new(exe_of(d->new));
	if (!t)
		return -ENOMEM;
	t->diff = 1;
	for (size_t i = 0; i < d->nentries; i++) {
		const struct model_diff_entry *e = &d->entries[i];
		uint64_t v[FLAME_KEYS], c[FLAME_KEYS], b[FLAME_KEYS], any = 0;
		size_t n;
		for (int k = 0; k < FLAME_KEYS; k++) {
			v[k] = model_diff_value(e, (enum model_key)k, 1);
			b[k] = model_diff_value(e, (enum model_key)k, 0);
			c[k] = companion(&e->new, (enum model_key)k);
			any |= v[k] | b[k] | c[k];
		}
		if (!any)
			continue;
		if (frames_of(t->priv, get_diff, d, i, &n) < 0 || add_path(t, n, v, c, b) < 0) {
			flame_free(t);
			return -ENOMEM;
		}
	}
	*out = t;
	return 0;
}

void flame_free(struct flame_tree *t)
{
	if (!t)
		return;
	if (t->priv) {
		while (t->priv->names) {
			struct name_chunk *c = t->priv->names;
			t->priv->names = c->next;
			free(c);
		}
		free(t->priv->slots);
		free(t->priv->frames);
		free(t->priv);
	}
	free(t->nodes);
	free(t);
}

/* Sorting context: qsort has none, and the tree is read-only meanwhile. */
static const struct flame_tree *sort_tree;
static enum model_key sort_key;

static int cmp_child(const void *x, const void *y)
{
	const struct flame_node *a = &sort_tree->nodes[*(const uint32_t *)x];
	const struct flame_node *b = &sort_tree->nodes[*(const uint32_t *)y];
	uint64_t va = a->v[sort_key] > a->b[sort_key] ? a->v[sort_key] : a->b[sort_key];
	uint64_t vb = b->v[sort_key] > b->b[sort_key] ? b->v[sort_key] : b->b[sort_key];
	if (va != vb)
		return va > vb ? -1 : 1;
	return strcmp(a->name, b->name);
}

size_t flame_children(const struct flame_tree *t, uint32_t i, enum model_key key, uint32_t *out, size_t max)
{
	size_t n = 0;
	for (uint32_t c = t->nodes[i].child; c != FLAME_NONE; c = t->nodes[c].next) {
		if (n < max)
			out[n] = c;
		n++;
	}
	if (!max)
		return n; /* only counted */
	sort_tree = t;
	sort_key = key;
	qsort(out, n < max ? n : max, sizeof(*out), cmp_child);
	return n;
}

const char *flame_key_title(enum model_key key)
{
	switch (key) {
	case MODEL_BY_PEAK: return "heap at the peak";
	case MODEL_BY_ALLOCATIONS: return "allocations";
	case MODEL_BY_BYTES: return "allocated bytes";
	case MODEL_BY_TEMPORARY: return "temporary allocations";
	case MODEL_BY_LEAKED: return "leaked bytes";
	}
	return "";
}

int flame_key_is_bytes(enum model_key key)
{
	return key == MODEL_BY_PEAK || key == MODEL_BY_BYTES || key == MODEL_BY_LEAKED;
}
