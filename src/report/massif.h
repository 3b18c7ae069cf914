/*
 * massif.h: the model as valgrind massif's output file (`heapscope export
 * --format massif`), which ms_print and massif-visualizer read.
 */
#ifndef HS_MASSIF_H
#define HS_MASSIF_H

#include "analyze/model.h"

#include <stdio.h>

/*
 * Writes m to out as a massif.out file: snapshots along the model's timeline
 * (at most 96, each the highest live heap of the steps it covers), a
 * detailed tree of what was live at the peak heap (heap_tree=peak) and one
 * of what was live at exit (the leaks, the last detailed one). Times are in
 * milliseconds since the start; mem_heap_extra_B and mem_stacks_B are 0
 * (heapscope counts requested bytes). Returns 0, -ENOMEM, or -errno / -EIO
 * when writing failed.
 */
int massif_write(FILE *out, const struct model *m);

#endif
