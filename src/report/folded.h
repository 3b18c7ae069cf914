/*
 * folded.h: folded stacks, the text format of FlameGraph's flamegraph.pl,
 * inferno and speedscope: one line per stack, its frames from the outermost
 * to the allocation site separated by ';', a space and its value:
 *
 *	main;parse;split_str 4096
 *
 * Shared by `export --format folded` and `flamegraph --folded`, and the
 * metric names (--metric) of both.
 */
#ifndef HS_FOLDED_H
#define HS_FOLDED_H

#include "analyze/model.h"

#include <stddef.h>
#include <stdio.h>

/*
 * The metric called name ("peak", "leaked", "allocations", "temporary",
 * "bytes") as a model key. Returns 0, or -1 for another name.
 */
int folded_metric_parse(const char *name, enum model_key *key);
/* The name of key's metric ("peak", ...), the inverse of folded_metric_parse. */
const char *folded_metric_name(enum model_key key);
/* "bytes" or "count": what the values of key's metric count. */
const char *folded_metric_unit(enum model_key key);
/* "peak|leaked|allocations|temporary|bytes", for usage lines. */
#define FOLDED_METRICS "peak|leaked|allocations|temporary|bytes"

/*
 * Writes frame f's label as a folded line holds it: model_frame_label()
 * with ';' (the separator) turned into ':' and control characters and
 * invalid UTF-8 into '?'. Returns buf, which holds the result (len bytes,
 * cut at a character boundary if need be).
 */
const char *folded_label(const struct model_frame *f, char *buf, size_t len);

/*
 * Writes the folded stacks of m for key, the value of each stack being
 * model_stack_value(stack, key). Stacks with value 0 are left out, stacks
 * whose lines read the same (they differ in addresses or line numbers only)
 * are summed into one line, and lines come sorted, so the same trace gives
 * the same bytes. Returns 0, -ENOMEM, or -EIO (-errno) when writing failed.
 */
int folded_write(FILE *out, const struct model *m, enum model_key key);

#endif
