/*
 * trace_reader.c: reads a trace block by block and decodes one record at a
 * time. Memory is bounded by two blocks plus the string table (symbol
 * names), never by the number of events. Every length read from the file is
 * checked before it is used: the reader is fuzzed.
 *
 * On a big trace a thread of the reader reads and decompresses the next
 * block while the caller decodes this one (zstd is a sixth of a report's
 * time): blocks, and the error that ends them, come in file order as
 * without it. Without the thread (a small file, or none could be started),
 * blocks are read when the last one is used up.
 */
#include "trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#define READ_AHEAD_MIN (4u << 20) /* files at least this big get the thread */

/* A block read and decompressed, or why not. */
struct rblock {
	uint8_t *raw;
	size_t raw_len, raw_cap;  /* grown to the largest block read */
	uint64_t off;             /* its offset in the file */
	int status;               /* 1 read, 0 the clean end, -EINVAL (err says why) */
	char err[512];
};

struct trace_reader {
	char *path;
	/* the reading side: the thread's alone while it runs */
	FILE *f;
	ZSTD_DCtx *dctx;
	uint8_t *comp;
	size_t comp_cap;
	uint64_t next_off;                /* where the next block starts */
	/* the block being decoded */
	uint8_t *raw;
	size_t raw_cap, raw_len, pos;
	uint64_t block_off;
	/* the hand-over, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int threaded, stop, ahead_full;
	struct rblock ahead;
	int at_end;                       /* the clean end was read */
	uint64_t time;
	char err[512];
	int failed;
	/* per-record scratch for NUL-terminated strings, argv and frames */
	char *scratch;
	size_t scratch_len, scratch_cap;
	const char **argv;
	size_t argv_cap;
	struct trace_frame *frames;
	size_t frames_cap;
	struct trace_mapping *maps;
	size_t maps_cap;
	/* TR_STRING table, indexed by id */
	char **strings;
	size_t nstrings;
	uint64_t strings_read; /* TR_STRING records so far: bounds the next id */
};

static void vformat(char *err, size_t len, const char *path, const char *fmt, va_list ap)
{
	int n = snprintf(err, len, "%s: ", path);
	vsnprintf(err + n, len - (size_t)n, fmt, ap);
}

static int fail(struct trace_reader *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vformat(r->err, sizeof(r->err), r->path, fmt, ap);
	va_end(ap);
	r->failed = 1;
	return -EINVAL;
}

/* The reading side's fail(): the error goes with the block. */
static int block_fail(struct trace_reader *r, struct rblock *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vformat(b->err, sizeof(b->err), r->path, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void *read_thread(void *arg);

/* The decompression context the last reader of this thread closed: a
 * model reads its trace two or three times, and a context costs as much to
 * set up as a small trace does to decode. */
static _Thread_local ZSTD_DCtx *spare_dctx;

int trace_reader_open(struct trace_reader **out, const char *path, char *err, size_t errlen)
{
	uint8_t hdr[16];
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		if (err)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
		return -e;
	}
	size_t n = fread(hdr, 1, sizeof(hdr), f);
	if (n < sizeof(hdr) || memcmp(hdr, TRACE_MAGIC, TRACE_MAGIC_LEN) != 0) {
		if (err)
			snprintf(err, errlen, "%s: not a heapscope trace (bad magic); record one with 'heapscope record'", path);
		fclose(f);
		return -EINVAL;
	}
	uint32_t v = le32(hdr + 8);
	if (v != TRACE_VERSION) {
		if (err)
			snprintf(err, errlen, "%s: trace format version %u, this heapscope reads version %u; use the heapscope that recorded it",
				 path, v, TRACE_VERSION);
		fclose(f);
		return -EINVAL;
	}
	struct trace_reader *r = calloc(1, sizeof(*r));
	if (!r) {
		fclose(f);
		return -ENOMEM;
	}
	r->f = f;
	r->path = strdup(path);
	r->dctx = spare_dctx ? spare_dctx : ZSTD_createDCtx();
	spare_dctx = NULL;
	r->next_off = sizeof(hdr);
	if (!r->path || !r->dctx) {
		trace_reader_close(r);
		return -ENOMEM;
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && st.st_size >= READ_AHEAD_MIN && !pthread_mutex_init(&r->mu, NULL)) {
		if (pthread_cond_init(&r->cv, NULL))
			pthread_mutex_destroy(&r->mu);
		else if (pthread_create(&r->thread, NULL, read_thread, r) == 0)
			r->threaded = 1;
		else
			pthread_cond_destroy(&r->cv), pthread_mutex_destroy(&r->mu);
	}
	*out = r;
	return 0;
}

void trace_reader_close(struct trace_reader *r)
{
	if (!r)
		return;
	if (r->threaded) {
		pthread_mutex_lock(&r->mu);
		r->stop = 1;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->thread, NULL);
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		free(r->ahead.raw);
	}
	if (r->f)
		fclose(r->f);
	if (r->dctx && !spare_dctx && !ZSTD_isError(ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_and_parameters)))
		spare_dctx = r->dctx;
	else
		ZSTD_freeDCtx(r->dctx);
	free(r->comp);
	free(r->raw);
	free(r->scratch);
	free(r->argv);
	free(r->frames);
	free(r->maps);
	for (size_t i = 0; i < r->nstrings; i++)
		free(r->strings[i]);
	free(r->strings);
	free(r->path);
	free(r);
}

const char *trace_reader_error(const struct trace_reader *r)
{
	return r->err;
}

uint64_t trace_reader_offset(const struct trace_reader *r)
{
	return r->block_off;
}

const char *trace_reader_string(const struct trace_reader *r, uint64_t id)
{
	return id < r->nstrings ? r->strings[id] : NULL;
}

/* Reads and decompresses the block at next_off into b: 1, 0 at a clean
 * end, -EINVAL with the reason in b->err. */
static int read_block(struct trace_reader *r, struct rblock *b)
{
	uint8_t hdr[8];
	size_t n = fread(hdr, 1, sizeof(hdr), r->f);
	b->off = r->next_off;
	if (n == 0 && feof(r->f))
		return 0;
	if (n < sizeof(hdr))
		return block_fail(r, b, "truncated at offset %llu: block header cut short (the recording was interrupted)",
				  (unsigned long long)b->off);
	uint32_t clen = le32(hdr), rlen = le32(hdr + 4);
	if (clen == 0 || clen > TRACE_BLOCK_COMP_MAX || rlen == 0 || rlen > TRACE_BLOCK_RAW_CAP)
		return block_fail(r, b, "corrupt block header at offset %llu (sizes %u/%u out of range)",
				  (unsigned long long)b->off, clen, rlen);
	/* buffers as big as the blocks are, not as big as they may be */
	if (clen > r->comp_cap) {
		uint8_t *c = realloc(r->comp, clen);
		if (!c)
			return block_fail(r, b, "out of memory for a block of %u bytes", clen);
		r->comp = c;
		r->comp_cap = clen;
	}
	if (rlen > b->raw_cap) {
		uint8_t *raw = realloc(b->raw, rlen);
		if (!raw)
			return block_fail(r, b, "out of memory for a block of %u bytes", rlen);
		b->raw = raw;
		b->raw_cap = rlen;
	}
	n = fread(r->comp, 1, clen, r->f);
	if (n < clen)
		return block_fail(r, b,
				  "truncated at offset %llu: block of %u bytes has only %zu (the recording was interrupted)",
				  (unsigned long long)b->off, clen, n);
	size_t got = ZSTD_decompressDCtx(r->dctx, b->raw, rlen, r->comp, clen);
	if (ZSTD_isError(got) || got != rlen)
		return block_fail(r, b, "corrupt block at offset %llu: %s", (unsigned long long)b->off,
				  ZSTD_isError(got) ? ZSTD_getErrorName(got) : "size mismatch");
	b->raw_len = rlen;
	r->next_off = b->off + sizeof(hdr) + clen;
	return 1;
}

static void *read_thread(void *arg)
{
	struct trace_reader *r = arg;
	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		pthread_mutex_unlock(&r->mu);
		int status = read_block(r, &r->ahead);
		pthread_mutex_lock(&r->mu);
		r->ahead.status = status;
		r->ahead_full = 1;
		pthread_cond_broadcast(&r->cv);
		if (status <= 0)
			break; /* nothing comes after the end or an error */
		while (r->ahead_full && !r->stop)
			pthread_cond_wait(&r->cv, &r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* The next block becomes the one decoded: 1, 0 at a clean end, <0 on error. */
static int load_block(struct trace_reader *r)
{
	struct rblock b = { .raw = r->raw, .raw_cap = r->raw_cap };
	if (r->at_end)
		return 0;
	if (r->threaded) {
		pthread_mutex_lock(&r->mu);
		while (!r->ahead_full)
			pthread_cond_wait(&r->cv, &r->mu);
		/* the thread gets this block's buffer for the one after it */
		b = r->ahead;
		r->ahead.raw = r->raw;
		r->ahead.raw_cap = r->raw_cap;
		r->ahead_full = 0;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	} else {
		b.status = read_block(r, &b);
	}
	r->raw = b.raw;
	r->raw_cap = b.raw_cap;
	r->block_off = b.off;
	if (b.status < 0) {
		memcpy(r->err, b.err, sizeof(r->err));
		r->failed = 1;
		return -EINVAL;
	}
	r->raw_len = b.status ? b.raw_len : 0;
	r->pos = 0;
	r->at_end = !b.status;
	return b.status;
}

/* Decoding helpers: each sets r->failed on malformed input. */
static uint64_t get_u(struct trace_reader *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->pos >= r->raw_len) {
			fail(r, "corrupt record in block at offset %llu: field runs past the block",
			     (unsigned long long)r->block_off);
			return 0;
		}
		uint8_t b = r->raw[r->pos++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	fail(r, "corrupt record in block at offset %llu: varint too long", (unsigned long long)r->block_off);
	return 0;
}

static void *scratch_alloc(struct trace_reader *r, size_t n)
{
	if (r->scratch_len + n > r->scratch_cap) {
		/* Pointers into scratch must stay valid during a record, so grow
		 * only when the record starts over (see get_str's caller reset). */
		size_t cap = r->scratch_cap ? r->scratch_cap : 4096;
		while (cap < r->scratch_len + n)
			cap *= 2;
		char *p = realloc(r->scratch, cap);
		if (!p)
			return NULL;
		r->scratch = p;
		r->scratch_cap = cap;
	}
	void *p = r->scratch + r->scratch_len;
	r->scratch_len += n;
	return p;
}

/* Returns an offset into scratch (strings are fixed up after the record is
 * decoded, because scratch may move while it grows). */
static size_t get_str_off(struct trace_reader *r, uint32_t *len_out)
{
	uint64_t len = get_u(r);
	if (r->failed)
		return 0;
	if (len > r->raw_len - r->pos) {
		fail(r, "corrupt record in block at offset %llu: string runs past the block",
		     (unsigned long long)r->block_off);
		return 0;
	}
	size_t off = r->scratch_len;
	char *p = scratch_alloc(r, len + 1);
	if (!p) {
		fail(r, "out of memory");
		return 0;
	}
	memcpy(p, r->raw + r->pos, len);
	p[len] = 0;
	r->pos += len;
	if (len_out)
		*len_out = (uint32_t)len;
	return off;
}

static int store_string(struct trace_reader *r, uint64_t id, const char *s, size_t len)
{
	/* Ids are dense (1, 2, 3, ...): a larger one would size the table from
	 * a few bytes of input (8 bytes per id), so it is corrupt. */
	if (id > r->strings_read + 1 || id > (1u << 28))
		return fail(r, "corrupt string id %llu", (unsigned long long)id);
	r->strings_read++;
	if (id >= r->nstrings) {
		size_t n = r->nstrings ? r->nstrings : 64;
		while (n <= id)
			n *= 2;
		char **t = realloc(r->strings, n * sizeof(*t));
		if (!t)
			return fail(r, "out of memory");
		memset(t + r->nstrings, 0, (n - r->nstrings) * sizeof(*t));
		r->strings = t;
		r->nstrings = n;
	}
	free(r->strings[id]);
	r->strings[id] = strndup(s, len);
	return r->strings[id] ? 0 : fail(r, "out of memory");
}

/* A varint of a record that has at least 10 bytes left in the block for
 * each of its varints (the longest one takes 10): no bounds checks. */
static inline uint64_t get_u_in(struct trace_reader *r, const uint8_t **pp)
{
	const uint8_t *p = *pp;
	uint64_t b = *p++, v = b & 0x7f;
	for (int shift = 7; b & 0x80; shift += 7) {
		if (shift >= 64) {
			fail(r, "corrupt record in block at offset %llu: varint too long", (unsigned long long)r->block_off);
			break;
		}
		b = *p++;
		v |= (b & 0x7f) << shift;
	}
	*pp = p;
	return v;
}

/* The events, most of a trace, when the block surely holds them whole: as
 * decode() does, without a bounds check per byte. */
static int decode_event(struct trace_reader *r, unsigned type, struct trace_record *rec)
{
	const uint8_t *p = r->raw + r->pos;
	rec->type = type;
	r->time += get_u_in(r, &p);
	if (type == TR_ALLOC) {
		rec->u.alloc.thread = get_u_in(r, &p);
		rec->u.alloc.kind = get_u_in(r, &p);
		rec->u.alloc.stack = get_u_in(r, &p);
		rec->u.alloc.size = get_u_in(r, &p);
		rec->u.alloc.addr = get_u_in(r, &p);
		rec->u.alloc.slack = get_u_in(r, &p);
	} else {
		rec->u.free.thread = get_u_in(r, &p);
		rec->u.free.kind = get_u_in(r, &p);
		rec->u.free.addr = get_u_in(r, &p);
	}
	r->pos = (size_t)(p - r->raw);
	rec->time = r->time;
	return r->failed ? -EINVAL : 1;
}

static int decode(struct trace_reader *r, struct trace_record *rec)
{
	unsigned type = r->raw[r->pos++];
	if ((type == TR_ALLOC && r->raw_len - r->pos >= 7 * 10) || (type == TR_FREE && r->raw_len - r->pos >= 4 * 10))
		return decode_event(r, type, rec);
	memset(rec, 0, sizeof(*rec));
	rec->type = type;
	r->scratch_len = 0;
	switch (type) {
	case TR_PROCESS: {
		rec->u.process.index = get_u(r);
		rec->u.process.pid = get_u(r);
		rec->u.process.parent = get_u(r);
		rec->u.process.how = get_u(r);
		rec->u.process.flags = get_u(r);
		rec->u.process.start = get_u(r);
		rec->u.process.start_unix_ns = get_u(r);
		rec->u.process.page_size = get_u(r);
		rec->u.process.interval_ns = get_u(r);
		size_t exe = get_str_off(r, NULL);
		uint64_t argc = get_u(r);
		if (r->failed)
			break;
		if (argc > r->raw_len - r->pos)
			return fail(r, "corrupt process record: argc %llu", (unsigned long long)argc);
		if (argc + 1 > r->argv_cap) {
			const char **a = realloc(r->argv, (argc + 1) * sizeof(*a));
			if (!a)
				return fail(r, "out of memory");
			r->argv = a;
			r->argv_cap = argc + 1;
		}
		size_t *offs = calloc(argc + 1, sizeof(*offs));
		if (!offs)
			return fail(r, "out of memory");
		for (uint64_t i = 0; i < argc && !r->failed; i++)
			offs[i] = get_str_off(r, NULL);
		if (!r->failed) {
			for (uint64_t i = 0; i < argc; i++)
				r->argv[i] = r->scratch + offs[i];
			r->argv[argc] = NULL;
			rec->u.process.exe = r->scratch + exe;
			rec->u.process.argc = (uint32_t)argc;
			rec->u.process.argv = r->argv;
		}
		free(offs);
		break;
	}
	case TR_PROCESS_END:
		rec->u.process_end.index = get_u(r);
		rec->u.process_end.end = get_u(r);
		rec->u.process_end.how = get_u(r);
		rec->u.process_end.code = get_u(r);
		break;
	case TR_MODULE: {
		rec->u.module.id = get_u(r);
		rec->u.module.space = get_u(r);
		rec->u.module.bias = get_u(r);
		rec->u.module.start = get_u(r);
		rec->u.module.end = get_u(r);
		uint32_t blen = 0;
		size_t bid = get_str_off(r, &blen);
		size_t path = get_str_off(r, NULL);
		if (!r->failed) {
			rec->u.module.build_id = (const uint8_t *)r->scratch + bid;
			rec->u.module.build_id_len = blen;
			rec->u.module.path = r->scratch + path;
		}
		break;
	}
	case TR_THREAD:
		r->time += get_u(r);
		rec->u.thread.index = get_u(r);
		rec->u.thread.tid = get_u(r);
		rec->u.thread.process = get_u(r);
		break;
	case TR_STACK:
		rec->u.stack.id = get_u(r);
		rec->u.stack.parent = get_u(r);
		rec->u.stack.ip = get_u(r);
		break;
	case TR_ALLOC:
		r->time += get_u(r);
		rec->u.alloc.thread = get_u(r);
		rec->u.alloc.kind = get_u(r);
		rec->u.alloc.stack = get_u(r);
		rec->u.alloc.size = get_u(r);
		rec->u.alloc.addr = get_u(r);
		rec->u.alloc.slack = get_u(r);
		break;
	case TR_MAP: {
		r->time += get_u(r);
		rec->u.map.thread = get_u(r);
		rec->u.map.kind = get_u(r);
		rec->u.map.stack = get_u(r);
		rec->u.map.addr = get_u(r);
		rec->u.map.size = get_u(r);
		rec->u.map.old_addr = get_u(r);
		rec->u.map.old_size = get_u(r);
		rec->u.map.prot = get_u(r);
		rec->u.map.flags = get_u(r);
		/* fd + 1: a descriptor is an int */
		uint64_t fd = get_u(r);
		if (fd > (uint64_t)INT32_MAX + 1)
			return fail(r, "corrupt map record: fd+1 %llu", (unsigned long long)fd);
		rec->u.map.fd = (int64_t)fd - 1;
		break;
	}
	case TR_MALLINFO:
		r->time += get_u(r);
		rec->u.mallinfo.process = get_u(r);
		rec->u.mallinfo.arena = get_u(r);
		rec->u.mallinfo.ordblks = get_u(r);
		rec->u.mallinfo.hblks = get_u(r);
		rec->u.mallinfo.hblkhd = get_u(r);
		rec->u.mallinfo.uordblks = get_u(r);
		rec->u.mallinfo.fordblks = get_u(r);
		rec->u.mallinfo.keepcost = get_u(r);
		break;
	case TR_SMAPS: {
		r->time += get_u(r);
		rec->u.smaps.process = get_u(r);
		rec->u.smaps.reason = get_u(r);
		uint64_t n = get_u(r);
		if (r->failed)
			break;
		if (n > (r->raw_len - r->pos) / 13)
			return fail(r, "corrupt smaps record: %llu mappings", (unsigned long long)n);
		if (n > r->maps_cap) {
			struct trace_mapping *mp = realloc(r->maps, n * sizeof(*mp));
			if (!mp)
				return fail(r, "out of memory");
			r->maps = mp;
			r->maps_cap = n;
		}
		/* strings go to scratch, which may move: keep offsets, fix up after */
		size_t *offs = calloc(2 * n + 1, sizeof(*offs));
		if (!offs)
			return fail(r, "out of memory");
		for (uint64_t i = 0; i < n && !r->failed; i++) {
			struct trace_mapping *mp = &r->maps[i];
			mp->start = get_u(r);
			mp->end = get_u(r);
			mp->offset = get_u(r);
			offs[2 * i] = get_str_off(r, NULL);
			offs[2 * i + 1] = get_str_off(r, NULL);
			mp->rss = get_u(r);
			mp->pss = get_u(r);
			mp->shared_clean = get_u(r);
			mp->shared_dirty = get_u(r);
			mp->private_clean = get_u(r);
			mp->private_dirty = get_u(r);
			mp->anonymous = get_u(r);
			mp->swap = get_u(r);
		}
		if (!r->failed) {
			for (uint64_t i = 0; i < n; i++) {
				r->maps[i].perms = r->scratch + offs[2 * i];
				r->maps[i].path = r->scratch + offs[2 * i + 1];
			}
			rec->u.smaps.n = (uint32_t)n;
			rec->u.smaps.maps = r->maps;
		}
		free(offs);
		break;
	}
	case TR_FREE:
		r->time += get_u(r);
		rec->u.free.thread = get_u(r);
		rec->u.free.kind = get_u(r);
		rec->u.free.addr = get_u(r);
		break;
	case TR_SAMPLE:
		r->time += get_u(r);
		rec->u.sample.process = get_u(r);
		rec->u.sample.rss = get_u(r);
		break;
	case TR_EXIT_MARK:
		r->time += get_u(r);
		rec->u.exit_mark.process = get_u(r);
		break;
	case TR_STRING: {
		rec->u.string.id = get_u(r);
		uint32_t len = 0;
		size_t s = get_str_off(r, &len);
		if (r->failed)
			break;
		rec->u.string.str = r->scratch + s;
		rec->u.string.len = len;
		if (store_string(r, rec->u.string.id, r->scratch + s, len) < 0)
			return -EINVAL;
		break;
	}
	case TR_SYMBOL: {
		rec->u.symbol.space = get_u(r);
		rec->u.symbol.ip = get_u(r);
		rec->u.symbol.module = get_u(r);
		rec->u.symbol.offset = get_u(r);
		uint64_t n = get_u(r);
		if (r->failed)
			break;
		if (n > r->raw_len - r->pos)
			return fail(r, "corrupt symbol record: %llu frames", (unsigned long long)n);
		if (n > r->frames_cap) {
			struct trace_frame *f = realloc(r->frames, n * sizeof(*f));
			if (!f)
				return fail(r, "out of memory");
			r->frames = f;
			r->frames_cap = n;
		}
		for (uint64_t i = 0; i < n && !r->failed; i++) {
			uint64_t fn = get_u(r), file = get_u(r);
			r->frames[i].function = trace_reader_string(r, fn);
			r->frames[i].file = trace_reader_string(r, file);
			r->frames[i].line = (uint32_t)get_u(r);
			r->frames[i].flags = (uint32_t)get_u(r);
		}
		rec->u.symbol.nframes = (uint32_t)n;
		rec->u.symbol.frames = r->frames;
		break;
	}
	case TR_END:
		r->time += get_u(r);
		rec->u.end.exit_kind = get_u(r);
		rec->u.end.exit_code = get_u(r);
		rec->u.end.events = get_u(r);
		rec->u.end.dropped = get_u(r);
		rec->u.end.truncated = get_u(r);
		rec->u.end.flags = get_u(r);
		rec->u.end.lost_processes = get_u(r);
		break;
	default:
		return fail(r, "corrupt block at offset %llu: unknown record type %u", (unsigned long long)r->block_off,
			    type);
	}
	rec->time = r->time;
	return r->failed ? -EINVAL : 1;
}

int trace_reader_next(struct trace_reader *r, struct trace_record *rec)
{
	if (r->failed)
		return -EINVAL;
	if (r->pos >= r->raw_len) {
		int ret = load_block(r);
		if (ret <= 0)
			return ret;
	}
	return decode(r, rec);
}
