/*
 * model_diff.h: two models compared stack by stack. A stack is matched by
 * its symbols, not its addresses: the chain of (function, file name) pairs
 * from the allocation site to the outermost frame, so two builds of a
 * program, or two runs with different load addresses, compare. Line numbers
 * are left out on purpose (an edit above a function moves them); the stacks
 * of one trace that share a chain are summed into one entry.
 *
 * Usage:
 *	struct model_diff *d;
 *	if (model_diff_build(&d, base, new) < 0) -> out of memory
 *	for (size_t i = 0; i < d->nentries; i++)
 *		d->entries[i].base.peak_bytes, d->entries[i].new.peak_bytes, ...
 *	model_diff_top(d, MODEL_BY_PEAK, +1, 10, idx) -> the 10 largest growths
 *	model_diff_frames(d, idx[0], frames, 64) -> innermost frame first
 *	model_diff_free(d);   (before the two models)
 *
 * For a differential flame graph: walk every entry, take its frames (root =
 * the last one) and add model_diff_value(e, key, 0) and (e, key, 1) to each
 * node of the path the frames' labels (model_frame_label) name.
 */
#ifndef HS_MODEL_DIFF_H
#define HS_MODEL_DIFF_H

#include "analyze/model.h"

#include <stddef.h>
#include <stdint.h>

#define MODEL_DIFF_NONE ((size_t)-1)

/* One symbolic stack and its totals on either side. */
struct model_diff_entry {
	size_t base_index;      /* a stack of base->stacks with this chain, or MODEL_DIFF_NONE */
	size_t new_index;       /* the same in new->stacks */
	uint32_t base_stacks;   /* how many stacks of each trace the totals sum */
	uint32_t new_stacks;
	struct model_stack base; /* summed totals; all zero on a side without the chain */
	struct model_stack new;  /* (.id is the representative stack's id) */
	const char *key;        /* the chain, for equality tests only (not for display) */
};

struct model_diff {
	const struct model *base, *new;
	struct model_diff_entry *entries; /* sorted by key */
	size_t nentries;
	size_t matched;         /* entries present in both traces */
	size_t base_only, new_only;
};

/*
 * Compares base with new. Both models must outlive the diff. Returns 0 with
 * *out set, or -ENOMEM.
 */
int model_diff_build(struct model_diff **out, const struct model *base, const struct model *new);
void model_diff_free(struct model_diff *d);

/* An entry's value for key on one side (0 = base, 1 = new), as model_stack_value. */
uint64_t model_diff_value(const struct model_diff_entry *e, enum model_key key, int side);

/*
 * Writes to out the indices (into d->entries) of up to n entries whose value
 * for key changed most in one direction: dir > 0 the largest growths
 * (new - base > 0), dir < 0 the largest shrinkages. Entries that did not
 * change that way are skipped; ties go to the lower index. n == 0 means all.
 * out must hold min(n, d->nentries) entries (d->nentries when n == 0).
 * Returns how many were written.
 */
size_t model_diff_top(const struct model_diff *d, enum model_key key, int dir, size_t n, size_t *out);

/*
 * The frames of entry i, innermost first, from its stack in the new trace if
 * it has one, else from the base trace (so file:line are the newer ones).
 * Returns the total as model_stack_frames does.
 */
size_t model_diff_frames(const struct model_diff *d, size_t i, struct model_frame *out, size_t max);

#endif
