/*
 * trace_writer.c: builds records into a raw block and writes each full block
 * as one standalone zstd frame behind an 8-byte header, so a reader can stop
 * cleanly at the last whole block of a truncated file.
 */
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>


struct trace_writer {
	int fd;
	int err;
	ZSTD_CCtx *cctx;
	uint8_t *raw;
	size_t raw_len;
	size_t rec_start;
	uint8_t *comp;
	size_t comp_cap;
	uint64_t last_time;
	uint64_t written;
};

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t k = write(fd, c, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

static int open_exclusive(const char *path, int force)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST && force) {
		struct stat st;
		/* --force replaces a regular file, never a link or a device */
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && unlink(path) == 0)
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	return fd < 0 ? -errno : fd;
}

int trace_writer_open(struct trace_writer **out, const char *path, int force)
{
	struct trace_writer *w = calloc(1, sizeof(*w));
	int ret = -ENOMEM;
	if (!w)
		return -ENOMEM;
	w->raw = malloc(TRACE_BLOCK_RAW_CAP);
	w->comp_cap = ZSTD_compressBound(TRACE_BLOCK_RAW_CAP);
	w->comp = malloc(w->comp_cap);
	w->cctx = ZSTD_createCCtx();
	if (!w->raw || !w->comp || !w->cctx)
		goto fail;
	/* level 1: about 50 ns less per event than level 3, for traces about 14% larger (bench/RESULTS.md) */
	ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, 1);
	ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
	w->fd = open_exclusive(path, force);
	if (w->fd < 0) {
		ret = w->fd;
		goto fail;
	}
	uint8_t hdr[16];
	memcpy(hdr, TRACE_MAGIC, TRACE_MAGIC_LEN);
	uint32_t v = TRACE_VERSION, flags = 0;
	for (int i = 0; i < 4; i++) {
		hdr[8 + i] = (uint8_t)(v >> (8 * i));
		hdr[12 + i] = (uint8_t)(flags >> (8 * i));
	}
	ret = write_all(w->fd, hdr, sizeof(hdr));
	if (ret < 0) {
		close(w->fd);
		goto fail;
	}
	w->written = sizeof(hdr);
	*out = w;
	return 0;
fail:
	ZSTD_freeCCtx(w->cctx);
	free(w->raw);
	free(w->comp);
	free(w);
	return ret;
}

int trace_writer_flush(struct trace_writer *w)
{
	if (w->raw_len == 0 || w->err)
		return w->err;
	size_t n = ZSTD_compress2(w->cctx, w->comp, w->comp_cap, w->raw, w->raw_len);
	if (ZSTD_isError(n)) {
		w->err = -EIO;
		return w->err;
	}
	uint8_t hdr[8];
	for (int i = 0; i < 4; i++) {
		hdr[i] = (uint8_t)(n >> (8 * i));
		hdr[4 + i] = (uint8_t)(w->raw_len >> (8 * i));
	}
	int ret = write_all(w->fd, hdr, sizeof(hdr));
	if (!ret)
		ret = write_all(w->fd, w->comp, n);
	if (ret) {
		w->err = ret;
		return ret;
	}
	w->written += sizeof(hdr) + n;
	w->raw_len = 0;
	return 0;
}

int trace_writer_close(struct trace_writer *w)
{
	int ret = trace_writer_flush(w);
	if (close(w->fd) < 0 && !ret)
		ret = -errno;
	ZSTD_freeCCtx(w->cctx);
	free(w->raw);
	free(w->comp);
	free(w);
	return ret;
}

uint64_t trace_writer_bytes(const struct trace_writer *w)
{
	return w->written + w->raw_len;
}

void tw_begin(struct trace_writer *w, unsigned type)
{
	w->rec_start = w->raw_len;
	w->raw[w->raw_len++] = (uint8_t)type;
}

/* A block is flushed once it holds TRACE_BLOCK_RAW_MAX; the buffer has room
 * for one more record of up to the rest of TRACE_BLOCK_RAW_CAP past that.
 * A record bigger than that is a bug in the caller: it fails the writer. */
static int room(struct trace_writer *w, size_t n)
{
	if (w->raw_len + n <= TRACE_BLOCK_RAW_CAP)
		return 1;
	w->err = w->err ? w->err : -E2BIG;
	return 0;
}

void tw_u(struct trace_writer *w, uint64_t v)
{
	if (!room(w, 10))
		return;
	while (v >= 0x80) {
		w->raw[w->raw_len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	w->raw[w->raw_len++] = (uint8_t)v;
}

void tw_bytes(struct trace_writer *w, const void *p, size_t n)
{
	tw_u(w, n);
	if (!room(w, n))
		return;
	memcpy(w->raw + w->raw_len, p, n);
	w->raw_len += n;
}

void tw_str(struct trace_writer *w, const char *s)
{
	tw_bytes(w, s ? s : "", s ? strlen(s) : 0);
}

void tw_time(struct trace_writer *w, uint64_t t)
{
	uint64_t dt = t >= w->last_time ? t - w->last_time : 0;
	tw_u(w, dt);
	w->last_time += dt;
}

void tw_end(struct trace_writer *w)
{
	if (w->raw_len >= TRACE_BLOCK_RAW_MAX)
		trace_writer_flush(w);
}
