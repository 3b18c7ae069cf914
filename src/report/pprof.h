/*
 * pprof.h: the model as a pprof profile (`heapscope export --format pprof`),
 * the gzip-compressed profile.proto message that `go tool pprof`, pprof's
 * web UI, Pyroscope and others read. Encoded by protobuf-c from
 * proto/profile.proto. docs/outputs.md says what each sample type holds.
 */
#ifndef HS_PPROF_H
#define HS_PPROF_H

#include "analyze/model.h"

#include <stdio.h>

/*
 * Writes the profile of m to out. One sample per stack of the model, its
 * locations leaf first; one location per instruction address with its
 * inlined functions as Line entries (innermost first); one mapping per
 * module, with its build-id. Returns 0, -ENOMEM, or -errno / -EIO when
 * writing failed.
 */
int pprof_write(FILE *out, const struct model *m);

#endif
