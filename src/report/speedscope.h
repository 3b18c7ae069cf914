/*
 * speedscope.h: the model in speedscope's file format (`heapscope export
 * --format speedscope`), the JSON that www.speedscope.app and its npm
 * package open (https://www.speedscope.app/file-format-schema.json).
 */
#ifndef HS_SPEEDSCOPE_H
#define HS_SPEEDSCOPE_H

#include "analyze/model.h"

#include <stdio.h>

/*
 * Writes m to out: one "sampled" profile per metric (peak, leaked,
 * allocations, temporary, bytes, in that order), each with one sample per
 * stack whose value is not 0, outermost frame first, weighted by the value.
 * Frames are shared by all profiles. name is the file's title (the trace's
 * name). Returns 0, -ENOMEM, or -errno / -EIO when writing failed.
 */
int speedscope_write(FILE *out, const struct model *m, const char *name);

#endif
