/*
 * flame.h: the call tree behind flame graphs. The stacks of a model (or of
 * a diff of two models) are merged from the outermost frame inwards into a
 * tree whose nodes are frames named by model_frame_label(), inlined frames
 * being nodes of their own. Each node holds, for every metric (the model
 * keys), the sum over the stacks that pass through it, so one tree serves
 * the SVG of any --metric and the HTML report's metric switch.
 *
 * Usage:
 *	struct flame_tree *t;
 *	if (flame_build(&t, m) < 0) -> out of memory
 *	t->nodes[0] is the root ("all"); children follow their parent
 *	flame_write_svg(stdout, t, MODEL_BY_PEAK, &opts);
 *	flame_free(t);   (before the model: names point into it)
 */
#ifndef HS_FLAME_H
#define HS_FLAME_H

#include "analyze/model.h"
#include "analyze/model_diff.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FLAME_KEYS 5          /* enum model_key values */
#define FLAME_NONE UINT32_MAX

/* Where a frame's code comes from, for colours: the program's own code,
 * a library or runtime, or an address without a symbol. */
enum flame_origin { FLAME_APP, FLAME_LIB, FLAME_UNKNOWN };

struct flame_node {
	const char *name;        /* model_frame_label(); "all" for the root */
	const char *file;        /* a file:line where every merged frame agrees, else NULL / 0 */
	uint32_t line;
	uint32_t inlined;        /* 1 when every merged frame was inlined */
	uint32_t origin;         /* enum flame_origin */
	uint32_t parent;         /* FLAME_NONE for the root */
	uint32_t child, next;    /* first child, next sibling (FLAME_NONE ends) */
	uint32_t depth;          /* root 0 */
	uint64_t v[FLAME_KEYS];  /* model_stack_value() summed, per key (new side of a diff) */
	uint64_t c[FLAME_KEYS];  /* the companion number: blocks for byte keys, bytes for counts */
	uint64_t b[FLAME_KEYS];  /* diff only: the base side's value */
};

struct flame_tree {
	struct flame_node *nodes; /* [0] is the root; a parent comes before its children */
	size_t n, cap;
	uint32_t max_depth;
	int diff;                 /* built by flame_build_diff: b[] holds the base side */
	struct flame_priv *priv;
};

/* Builds the tree of every stack of m. 0 or -ENOMEM. */
int flame_build(struct flame_tree **out, const struct model *m);
/* Builds the tree of a diff: v[] and c[] from the new trace, b[] from the
 * base, per frame path as the entries' symbols name it. 0 or -ENOMEM. */
int flame_build_diff(struct flame_tree **out, const struct model_diff *d);
void flame_free(struct flame_tree *t);

/* Where frame f's code comes from, by the rule the tree's nodes follow: the
 * executable's own code unless its file is the toolchain's or the system's. */
enum flame_origin flame_frame_origin(const struct flame_tree *t, const struct model_frame *f);

/* The children of node i ordered for drawing: highest value of key first,
 * then by name. Writes up to max indices, returns how many children i has. */
size_t flame_children(const struct flame_tree *t, uint32_t i, enum model_key key, uint32_t *out, size_t max);

/*
 * A name made short enough to read in a narrow frame, the full one staying
 * in tooltips: template and generic arguments become "<…>", parameter lists
 * "(…)", and leading namespace or module segments (lowercase identifiers)
 * are dropped while more than two segments are left:
 *   alloc::raw_vec::RawVecInner<A>::reserve     -> RawVecInner<…>::reserve
 *   <alloc::vec::Vec<T> as core::iter::traits::collect::FromIterator<T>>::from_iter
 *                                               -> <Vec<…> as FromIterator<…>>::from_iter
 *   std::vector<int, std::allocator<int> >::_M_realloc_insert(...)
 *                                               -> vector<…>::_M_realloc_insert(…)
 * A name whose brackets do not pair is kept whole. Writes at most len bytes
 * with the terminating NUL to buf and returns buf.
 */
const char *flame_short_name(const char *name, char *buf, size_t len);

struct flame_svg_opts {
	const char *title;    /* heading; NULL: "Flame graph: <metric>" */
	const char *subtitle; /* a second line (the trace, the totals), may be NULL */
	unsigned width;       /* pixels; 0 = 1200 */
};

/*
 * Writes a standalone interactive SVG of the tree for key: frames wider than
 * a tenth of a pixel, labels fitted to their width, a tooltip per frame with
 * its full name, value, companion number and share, and an inline script
 * for click-to-zoom and search (no network: everything is in the file).
 * Every name is escaped for XML. A diff tree is coloured by change: red
 * where the value grew, blue where it shrank. Returns 0 or -errno.
 */
int flame_write_svg(FILE *out, const struct flame_tree *t, enum model_key key, const struct flame_svg_opts *o);

/* "peak heap", "leaked bytes", "allocations", "temporary allocations",
 * "allocated bytes": what key's values are, for headings. */
const char *flame_key_title(enum model_key key);
/* 1 when key's values are bytes, 0 when they count allocations. */
int flame_key_is_bytes(enum model_key key);

#endif
