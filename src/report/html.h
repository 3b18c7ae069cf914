/*
 * html.h: the self-contained HTML report (`heapscope html`). One file with
 * its CSS, script and data inline: it loads nothing, so it works offline
 * and its Content-Security-Policy forbids any network access outright.
 * The data are aggregates of the model (summary, timeline, call tree, top
 * stacks, size histogram), never events, so a trace of millions of events
 * gives a file of a few MB.
 */
#ifndef HS_HTML_H
#define HS_HTML_H

#include "analyze/model.h"

#include <stddef.h>
#include <stdio.h>

#define HTML_TOP 25           /* stacks per table */
#define HTML_SERIES 6         /* call sites stacked in the memory chart */
#define HTML_TREE_NODES 40000 /* call tree nodes kept; the smallest go first */

struct html_opts {
	const char *trace;   /* the trace m was loaded from: read again for the chart's call sites */
	size_t top;          /* stacks per table; 0 = HTML_TOP */
	size_t tree_nodes;   /* 0 = HTML_TREE_NODES */
	enum model_key key;  /* the flame graph's first metric */
};

/*
 * Writes the report of m. Returns 0, -ENOMEM, -errno when writing failed,
 * or -errno when the trace could not be read again (err says why).
 */
int html_write(FILE *out, const struct model *m, const struct html_opts *o, char *err, size_t errlen);

#endif
