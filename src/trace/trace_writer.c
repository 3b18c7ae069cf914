/*
 * trace_writer.c: builds records into a raw block and writes each full block
 * as one standalone zstd frame behind an 8-byte header, so a reader can stop
 * cleanly at the last whole block of a truncated file.
 *
 * A thread of the writer compresses and writes each full block while the
 * caller builds the next one in a second buffer: the recorder's drain never
 * stops for compression (a 1 MiB block takes ~3 ms at level 1), which on a
 * busy program let its rings fill and the program wait. Blocks keep their
 * order: a block is handed over only once the previous one is written.
 * Without the thread (it could not be started), blocks are written inline.
 */
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

struct trace_writer {
	int fd;
	int err;            /* a record too big for a block (the caller's side) */
	uint8_t *raw;       /* the block being built */
	size_t raw_len;
	size_t rec_start;
	uint64_t last_time;
	/* the compressing side: the thread's alone while it runs */
	ZSTD_CCtx *cctx;
	uint8_t *comp;
	size_t comp_cap;
	/* the hand-over, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int threaded;
	int stop;
	uint8_t *job;       /* a block handed over and not yet written */
	size_t job_len;
	uint8_t *spare;     /* the other raw buffer, while the thread does not hold it */
	int io_err;         /* the first compression or write error */
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

/* Compresses and writes one block; after an error, blocks are dropped. */
static int write_block(struct trace_writer *w, const uint8_t *raw, size_t len, int err)
{
	if (err)
		return err;
	size_t n = ZSTD_compress2(w->cctx, w->comp, w->comp_cap, raw, len);
	if (ZSTD_isError(n))
		return -EIO;
	uint8_t hdr[8];
	for (int i = 0; i < 4; i++) {
		hdr[i] = (uint8_t)(n >> (8 * i));
		hdr[4 + i] = (uint8_t)(len >> (8 * i));
	}
	int ret = write_all(w->fd, hdr, sizeof(hdr));
	if (!ret)
		ret = write_all(w->fd, w->comp, n);
	if (!ret) {
		pthread_mutex_lock(&w->mu);
		w->written += sizeof(hdr) + n;
		pthread_mutex_unlock(&w->mu);
	}
	return ret;
}

static void *compress_thread(void *arg)
{
	struct trace_writer *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->job && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->job)
			break;
		uint8_t *buf = w->job;
		size_t len = w->job_len;
		int err = w->io_err;
		pthread_mutex_unlock(&w->mu);
		err = write_block(w, buf, len, err);
		pthread_mutex_lock(&w->mu);
		if (err && !w->io_err)
			w->io_err = err;
		w->spare = buf;
		w->job = NULL;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Hands the block built so far to the thread (or writes it) and starts the
 * next one. Waits only while the thread still writes the previous block. */
static void hand_over(struct trace_writer *w)
{
	if (w->raw_len == 0 || w->err) {
		w->raw_len = w->err ? 0 : w->raw_len; /* a cut record: nothing more is written */
		return;
	}
	if (!w->threaded) {
		int err = write_block(w, w->raw, w->raw_len, w->io_err);
		if (err && !w->io_err)
			w->io_err = err;
		w->raw_len = 0;
		return;
	}
	pthread_mutex_lock(&w->mu);
	while (w->job)
		pthread_cond_wait(&w->cv, &w->mu);
	w->job = w->raw;
	w->job_len = w->raw_len;
	w->raw = w->spare;
	w->spare = NULL;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	w->raw_len = 0;
}

static int first_error(struct trace_writer *w)
{
	pthread_mutex_lock(&w->mu);
	int err = w->err ? w->err : w->io_err;
	pthread_mutex_unlock(&w->mu);
	return err;
}

static void free_writer(struct trace_writer *w)
{
	ZSTD_freeCCtx(w->cctx);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->raw);
	free(w->spare);
	free(w->comp);
	free(w);
}

int trace_writer_open(struct trace_writer **out, const char *path, int force)
{
	struct trace_writer *w = calloc(1, sizeof(*w));
	int ret = -ENOMEM;
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->raw = malloc(TRACE_BLOCK_RAW_CAP);
	w->spare = malloc(TRACE_BLOCK_RAW_CAP);
	w->comp_cap = ZSTD_compressBound(TRACE_BLOCK_RAW_CAP);
	w->comp = malloc(w->comp_cap);
	w->cctx = ZSTD_createCCtx();
	if (!w->raw || !w->spare || !w->comp || !w->cctx)
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
	/* the caller's signals are its own business: none comes to the thread */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	w->threaded = pthread_create(&w->thread, NULL, compress_thread, w) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	*out = w;
	return 0;
fail:
	free_writer(w);
	return ret;
}

int trace_writer_push(struct trace_writer *w)
{
	hand_over(w);
	return first_error(w);
}

int trace_writer_flush(struct trace_writer *w)
{
	hand_over(w);
	if (w->threaded) {
		pthread_mutex_lock(&w->mu);
		while (w->job)
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
	}
	return first_error(w);
}

int trace_writer_close(struct trace_writer *w)
{
	int ret = trace_writer_flush(w);
	if (w->threaded) {
		pthread_mutex_lock(&w->mu);
		w->stop = 1;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	if (close(w->fd) < 0 && !ret)
		ret = -errno;
	free_writer(w);
	return ret;
}

uint64_t trace_writer_bytes(struct trace_writer *w)
{
	pthread_mutex_lock(&w->mu);
	uint64_t n = w->written;
	pthread_mutex_unlock(&w->mu);
	return n + w->raw_len;
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

static inline uint8_t *put_u(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

void tw_u(struct trace_writer *w, uint64_t v)
{
	if (!room(w, 10))
		return;
	w->raw_len = (size_t)(put_u(w->raw + w->raw_len, v) - w->raw);
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

/* t as a delta from the last time; a time before it counts as no later */
static inline uint64_t time_delta(struct trace_writer *w, uint64_t t)
{
	uint64_t dt = t >= w->last_time ? t - w->last_time : 0;
	w->last_time += dt;
	return dt;
}

void tw_time(struct trace_writer *w, uint64_t t)
{
	tw_u(w, time_delta(w, t));
}

void tw_timed(struct trace_writer *w, unsigned type, uint64_t t, const uint64_t *v, unsigned n)
{
	if (w->raw_len + 11 + 10 * (size_t)n > TRACE_BLOCK_RAW_CAP) {
		tw_begin(w, type); /* the long way, which fails the writer */
		tw_time(w, t);
		for (unsigned i = 0; i < n; i++)
			tw_u(w, v[i]);
		tw_end(w);
		return;
	}
	uint8_t *p = w->raw + w->raw_len;
	w->rec_start = w->raw_len;
	*p++ = (uint8_t)type;
	p = put_u(p, time_delta(w, t));
	for (unsigned i = 0; i < n; i++)
		p = put_u(p, v[i]);
	w->raw_len = (size_t)(p - w->raw);
	tw_end(w);
}

void tw_end(struct trace_writer *w)
{
	if (w->raw_len >= TRACE_BLOCK_RAW_MAX)
		hand_over(w);
}
