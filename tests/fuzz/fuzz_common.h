/*
 * fuzz_common.h: what the fuzz targets share. The readers take a path, so
 * each input is written to one memfd and opened again as /proc/self/fd/N:
 * no disk, no temp file left behind by a crash. Raw record bytes are wrapped
 * into a valid trace (header + zstd block) so that the decoder after the
 * checksum is what gets exercised, not zstd's rejection of random frames.
 *
 * Header-only: each target is one .c file, built either with libFuzzer's
 * main (-fsanitize=fuzzer) or with replay.c's (corpus replay in CI).
 */
#ifndef HS_FUZZ_COMMON_H
#define HS_FUZZ_COMMON_H

#include "analyze/model.h"
#include "report/report.h"
#include "trace/trace.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

/* ---- a growable byte buffer ------------------------------------------- */

struct fz_buf {
	uint8_t *p;
	size_t len, cap;
};

static inline void fz_put(struct fz_buf *b, const void *p, size_t n)
{
	if (!n)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *q = realloc(b->p, cap);
		if (!q)
			abort(); /* the harness itself: out of memory is not a finding */
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static inline void fz_u(struct fz_buf *b, uint64_t v)
{
	uint8_t c;
	do {
		c = v & 0x7f;
		v >>= 7;
		if (v)
			c |= 0x80;
		fz_put(b, &c, 1);
	} while (v);
}

static inline void fz_str(struct fz_buf *b, const char *s)
{
	size_t n = strlen(s);
	fz_u(b, n);
	fz_put(b, s, n);
}

static inline void fz_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void fz_file_header(struct fz_buf *out)
{
	uint8_t hdr[16];
	memcpy(hdr, TRACE_MAGIC, TRACE_MAGIC_LEN);
	fz_le32(hdr + 8, TRACE_VERSION);
	fz_le32(hdr + 12, 0);
	fz_put(out, hdr, sizeof(hdr));
}

/* Appends raw records as one block, as the writer would (level 1 is enough:
 * the reader does not care how well a frame compresses). Longer input is cut
 * to the largest block a reader accepts. */
static inline void fz_block(struct fz_buf *out, const uint8_t *raw, size_t n)
{
	static uint8_t *comp;
	static size_t comp_cap;
	if (n > TRACE_BLOCK_RAW_CAP)
		n = TRACE_BLOCK_RAW_CAP;
	size_t bound = ZSTD_compressBound(n);
	if (bound > comp_cap) {
		free(comp);
		comp = malloc(bound);
		if (!comp)
			abort();
		comp_cap = bound;
	}
	static ZSTD_CCtx *cctx;
	if (!cctx && !(cctx = ZSTD_createCCtx()))
		abort();
	size_t c = ZSTD_compressCCtx(cctx, comp, comp_cap, raw, n, 1);
	if (ZSTD_isError(c))
		abort();
	uint8_t bh[8];
	fz_le32(bh, (uint32_t)c);
	fz_le32(bh + 4, (uint32_t)n);
	fz_put(out, bh, sizeof(bh));
	fz_put(out, comp, c);
}

/* ---- running the readers on bytes ------------------------------------- */

/* The input as a file: one memfd for the whole run, rewritten each time. */
static inline const char *fz_path(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		fd = memfd_create("hs-fuzz", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	size_t done = 0;
	while (done < size) {
		ssize_t k = pwrite(fd, data + done, size - done, (off_t)done);
		if (k <= 0)
			abort();
		done += (size_t)k;
	}
	/* cut what a longer input left; its pages stay for the next */
	if (ftruncate(fd, (off_t)size) < 0)
		abort();
	return path;
}

static ssize_t fz_discard(void *cookie, const char *buf, size_t n)
{
	(void)cookie;
	(void)buf;
	return (ssize_t)n;
}

/* Where the reports go: a stream that drops what it is given, in 64 KiB
 * chunks, without a system call (a report is formatted all the same). */
static inline FILE *fz_null(void)
{
	static FILE *f;
	if (!f) {
		f = fopencookie(NULL, "w", (cookie_io_functions_t){ .write = fz_discard });
		if (!f || setvbuf(f, NULL, _IOFBF, 64 << 10))
			abort();
	}
	return f;
}

/* Every record the reader gives, then the model and every output of it:
 * the outputs walk stacks and symbols in ways the pass alone does not. */
static inline void fz_read_all(const char *path)
{
	struct trace_reader *r;
	struct trace_record rec;
	char err[512];
	if (trace_reader_open(&r, path, err, sizeof(err)) == 0) {
		int ret;
		uint64_t n = 0;
		while ((ret = trace_reader_next(r, &rec)) > 0 || (ret == 0 && rec.type == TR_STRING)) {
			/* touch what the record points to, as a consumer would */
			if (rec.type == TR_STRING && rec.u.string.str)
				n += strlen(rec.u.string.str);
			rec.type = 0;
		}
		(void)trace_reader_error(r);
		(void)trace_reader_offset(r);
		trace_reader_close(r);
		(void)n;
	}

	struct model *m;
	if (model_load(&m, path, err, sizeof(err)) < 0)
		return;
	struct model_frame frames[32];
	char label[256];
	for (size_t i = 0; i < m->nstacks; i++) {
		size_t k = model_stack_frames(m, i, frames, 32);
		for (size_t j = 0; j < k && j < 32; j++)
			(void)model_frame_label(&frames[j], label, sizeof(label));
	}
	/* Bounded outputs: every code path of both, at a fraction of the cost
	 * of all stacks and all frames (a fuzzed symbol can have thousands).
	 * Three stacks a section: more print the same code paths again, and
	 * the labels of every frame were made above (6 cost fuzz_symbols 30%
	 * of its executions). */
	struct report_opts o = { .top = 3, .depth = 12, .trace = "fuzz.hst" };
	FILE *null = fz_null();
	report_text(null, m, &o);
	/* the timeline is most of the JSON and all of it plain numbers */
	if (m->ntimeline > 8)
		m->ntimeline = 8;
	report_json(null, m, &o);
	fflush(null);
	model_free(m);
}

#endif
