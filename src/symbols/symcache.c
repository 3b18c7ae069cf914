/*
 * symcache.c: resolved addresses kept across recordings, one file per object
 * file, so a program recorded again does not pay for reading its libraries'
 * DWARF again (libc's separate debug info alone takes ~40 ms to decompress).
 * One file per object path: an object that changed gets its file rewritten.
 *
 * Safety: the directory is $XDG_CACHE_HOME/heapscope (else ~/.cache/heapscope),
 * created 0700; it and every file in it must belong to us, with no group or
 * other access, and are opened without following links. A file is used only
 * when its key, the full identity of everything its answers came from (this
 * heapscope binary; the object file and the file its debug info came from:
 * path, device, inode, size, mtime, ctime), matches byte for byte, its
 * checksum holds and every field is in bounds: a stale, truncated or foreign
 * file is ignored and rewritten, never believed. Files are replaced whole
 * (written aside, then renamed).
 *
 * File layout, little-endian as the host writes it (a file from another
 * byte order fails its magic):
 *   u32 magic, u32 version, u32 key_len, key bytes
 *   u32 nstrings, then each: u32 len, bytes (no NUL)
 *   u32 nentries, then each: u64 addr, u32 nframes, then each frame:
 *       u32 function (string index + 1, 0 = none), u32 file (same), u32 line, u32 inlined
 *   u64 FNV-1a of everything before it
 */
#include "symbols/symcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SC_MAGIC 0x43535348u /* "HSSC" */
#define SC_VERSION 1u
#define SC_MAX_BYTES (64u << 20)
#define SC_MAX_FRAMES 1024u

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

uint64_t symcache_checksum(const void *p, size_t n)
{
	return fnv(FNV_INIT, p, n);
}

/* A directory or file of ours alone: owned by us, no group or other access. */
static int private_to_us(const struct stat *st)
{
	return st->st_uid == geteuid() && !(st->st_mode & 077);
}

/* Opens (creating) name under dirfd as a directory of ours, no link followed. */
static int open_dir_at(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return -1;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())) {
		close(fd);
		return -1;
	}
	return fd;
}

int symcache_open_dir(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int base;
	/* the base is the user's to choose (it may be a link, like a home);
	 * what we create below it is ours and checked */
	if (xdg && xdg[0] == '/') {
		base = open(xdg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else if (home && home[0] == '/') {
		int h = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (h < 0)
			return -1;
		base = open_dir_at(h, ".cache");
		close(h);
	} else {
		return -1;
	}
	if (base < 0)
		return -1;
	int fd = open_dir_at(base, "heapscope");
	close(base);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !private_to_us(&st))) {
		close(fd);
		return -1;
	}
	return fd;
}

void symcache_file_name(const char *path, char name[SYMCACHE_NAME_MAX])
{
	snprintf(name, SYMCACHE_NAME_MAX, "sym-%016llx.v%u", (unsigned long long)fnv(FNV_INIT, path, strlen(path)),
		 SC_VERSION);
}

static void sort_entries(struct symcache *sc);

/* ---- reading -------------------------------------------------------------- */

struct rd {
	const unsigned char *p, *end;
};

static int rd_u32(struct rd *r, uint32_t *v)
{
	if (r->end - r->p < 4)
		return -1;
	memcpy(v, r->p, 4);
	r->p += 4;
	return 0;
}

static int rd_u64(struct rd *r, uint64_t *v)
{
	if (r->end - r->p < 8)
		return -1;
	memcpy(v, r->p, 8);
	r->p += 8;
	return 0;
}

static int read_all(int fd, unsigned char **out, size_t *len)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !private_to_us(&st) || st.st_nlink != 1 ||
	    st.st_size < 16 || st.st_size > SC_MAX_BYTES)
		return -1;
	size_t n = (size_t)st.st_size, got = 0;
	unsigned char *buf = malloc(n);
	if (!buf)
		return -1;
	while (got < n) {
		ssize_t k = read(fd, buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			free(buf);
			return -1;
		}
		got += (size_t)k;
	}
	*out = buf;
	*len = n;
	return 0;
}

int symcache_parse(const unsigned char *buf, size_t len, symcache_key_fn key_ok, void *key_ctx,
		   struct symcache *sc, symcache_intern_fn intern, void *ctx)
{
	const char **strs = NULL;
	uint32_t v, nstr = 0, nent = 0, key_len;
	uint64_t sum;
	int ret = -1;

	if (len < 16 || len > SC_MAX_BYTES)
		return -1;
	memcpy(&sum, buf + len - 8, 8);
	if (symcache_checksum(buf, len - 8) != sum)
		return -1;
	struct rd r = { buf, buf + len - 8 };
	if (rd_u32(&r, &v) || v != SC_MAGIC || rd_u32(&r, &v) || v != SC_VERSION || rd_u32(&r, &key_len) ||
	    key_len > (size_t)(r.end - r.p) || key_ok(key_ctx, (const char *)r.p, key_len))
		return -1;
	r.p += key_len;
	if (rd_u32(&r, &nstr) || nstr > (size_t)(r.end - r.p) / 4)
		goto out;
	strs = calloc(nstr ? nstr : 1, sizeof(*strs));
	if (!strs)
		goto out;
	for (uint32_t i = 0; i < nstr; i++) {
		if (rd_u32(&r, &v) || v > (size_t)(r.end - r.p) || memchr(r.p, 0, v))
			goto out;
		strs[i] = intern(ctx, (const char *)r.p, v);
		if (!strs[i])
			goto out;
		r.p += v;
	}
	if (rd_u32(&r, &nent) || nent > (size_t)(r.end - r.p) / 12)
		goto out;
	for (uint32_t i = 0; i < nent; i++) {
		uint64_t addr;
		uint32_t n;
		if (rd_u64(&r, &addr) || rd_u32(&r, &n) || n == 0 || n > SC_MAX_FRAMES ||
		    n > (size_t)(r.end - r.p) / 16)
			goto out;
		struct sym_frame f[SC_MAX_FRAMES];
		for (uint32_t k = 0; k < n; k++) {
			uint32_t fn, file, line, inl;
			if (rd_u32(&r, &fn) || rd_u32(&r, &file) || rd_u32(&r, &line) || rd_u32(&r, &inl) || fn > nstr || file > nstr || inl > 1)
				goto out;
			f[k] = (struct sym_frame){ fn ? strs[fn - 1] : NULL, file ? strs[file - 1] : NULL, line, (int)inl };
		}
		if (symcache_put(sc, addr, f, (int)n))
			goto out;
	}
	ret = r.p == r.end ? 0 : -1;
	/* one entry per address */
	sort_entries(sc);
	for (size_t i = 1; !ret && i < sc->n; i++)
		if (sc->v[i - 1].addr == sc->v[i].addr)
			ret = -1;
out:
	if (ret)
		symcache_clear(sc); /* nothing from a file that fails anywhere */
	free(strs);
	return ret;
}

int symcache_load(int dirfd, const char *path, symcache_key_fn key_ok, void *key_ctx, struct symcache *sc,
		  symcache_intern_fn intern, void *ctx)
{
	char name[SYMCACHE_NAME_MAX];
	unsigned char *buf = NULL;
	size_t len = 0;

	symcache_file_name(path, name);
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ret = read_all(fd, &buf, &len);
	close(fd);
	if (!ret)
		ret = symcache_parse(buf, len, key_ok, key_ctx, sc, intern, ctx);
	free(buf);
	return ret;
}

/* ---- the table -------------------------------------------------------------- */

static int cmp_entry(const void *a, const void *b)
{
	const struct symcache_entry *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void sort_entries(struct symcache *sc)
{
	/* a table zeroed by its user is unsorted and may be empty: v NULL,
	 * which qsort must not be given */
	if (sc->sorted || sc->n < 2) {
		sc->sorted = 1;
		return;
	}
	qsort(sc->v, sc->n, sizeof(*sc->v), cmp_entry);
	sc->sorted = 1;
}

const struct symcache_entry *symcache_get(struct symcache *sc, uint64_t addr)
{
	size_t lo = 0, hi;
	sort_entries(sc);
	hi = sc->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sc->v[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < sc->n && sc->v[lo].addr == addr ? &sc->v[lo] : NULL;
}

int symcache_put(struct symcache *sc, uint64_t addr, const struct sym_frame *f, int n)
{
	if (n < 1 || (unsigned)n > SC_MAX_FRAMES)
		return -EINVAL;
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;
		struct symcache_entry *v = realloc(sc->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		sc->v = v;
		sc->cap = cap;
	}
	struct sym_frame *copy = malloc((size_t)n * sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, f, (size_t)n * sizeof(*copy));
	if (sc->n && sc->v[sc->n - 1].addr >= addr)
		sc->sorted = 0;
	sc->v[sc->n++] = (struct symcache_entry){ addr, n, copy };
	return 0;
}

void symcache_clear(struct symcache *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		free(sc->v[i].frames);
	free(sc->v);
	memset(sc, 0, sizeof(*sc));
	sc->sorted = 1;
}

/* ---- writing -------------------------------------------------------------- */

struct wr {
	unsigned char *p;
	size_t n, cap;
	int failed;
};

static void wr_bytes(struct wr *w, const void *s, size_t n)
{
	if (w->failed)
		return;
	if (w->n + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->n + n)
			cap *= 2;
		unsigned char *p = cap <= SC_MAX_BYTES ? realloc(w->p, cap) : NULL;
		if (!p) {
			w->failed = 1;
			return;
		}
		w->p = p;
		w->cap = cap;
	}
	memcpy(w->p + w->n, s, n);
	w->n += n;
}

static void wr_u32(struct wr *w, uint32_t v)
{
	wr_bytes(w, &v, 4);
}

/* Strings by pointer (they are interned: one pointer per content) to index. */
struct sidx {
	const char **keys;
	uint32_t *idx;
	size_t cap;
	uint32_t n;
};

static uint32_t sidx_get(struct sidx *t, struct wr *w, const char *s)
{
	if (!s)
		return 0;
	size_t j = (size_t)(((uintptr_t)s >> 3) * 0x9e3779b97f4a7c15ull) & (t->cap - 1);
	while (t->keys[j]) {
		if (t->keys[j] == s)
			return t->idx[j];
		j = (j + 1) & (t->cap - 1);
	}
	t->keys[j] = s;
	t->idx[j] = ++t->n;
	size_t len = strlen(s);
	wr_u32(w, (uint32_t)len);
	wr_bytes(w, s, len);
	return t->idx[j];
}

int symcache_format(struct symcache *sc, const char *key, size_t key_len, unsigned char **out, size_t *len)
{
	struct wr w = { 0 }, body = { 0 };
	struct sidx t = { 0 };
	size_t nframes = 0;
	int ret = -ENOMEM;

	sort_entries(sc);
	for (size_t i = 0; i < sc->n; i++)
		nframes += (size_t)sc->v[i].n;
	t.cap = 64;
	while (t.cap < 2 * (2 * nframes + 1))
		t.cap *= 2;
	t.keys = calloc(t.cap, sizeof(*t.keys));
	t.idx = calloc(t.cap, sizeof(*t.idx));
	if (!t.keys || !t.idx)
		goto out;
	/* strings go to w as they are first met; entries to body */
	wr_u32(&w, SC_MAGIC);
	wr_u32(&w, SC_VERSION);
	wr_u32(&w, (uint32_t)key_len);
	wr_bytes(&w, key, key_len);
	size_t count_at = w.n;
	wr_u32(&w, 0);
	wr_u32(&body, (uint32_t)sc->n);
	for (size_t i = 0; i < sc->n; i++) {
		const struct symcache_entry *e = &sc->v[i];
		wr_bytes(&body, &e->addr, 8);
		wr_u32(&body, (uint32_t)e->n);
		for (int k = 0; k < e->n; k++) {
			wr_u32(&body, sidx_get(&t, &w, e->frames[k].function));
			wr_u32(&body, sidx_get(&t, &w, e->frames[k].file));
			wr_u32(&body, e->frames[k].line);
			wr_u32(&body, e->frames[k].inlined ? 1 : 0);
		}
	}
	if (w.failed || body.failed)
		goto out;
	memcpy(w.p + count_at, &t.n, 4);
	wr_bytes(&w, body.p, body.n);
	uint64_t sum = w.failed ? 0 : symcache_checksum(w.p, w.n);
	wr_bytes(&w, &sum, 8);
	if (w.failed)
		goto out;

	*out = w.p;
	*len = w.n;
	w.p = NULL;
	ret = 0;
out:
	free(t.keys);
	free(t.idx);
	free(w.p);
	free(body.p);
	return ret;
}

int symcache_save(int dirfd, const char *path, const char *key, size_t key_len, struct symcache *sc)
{
	unsigned char *p;
	size_t n;
	int ret = symcache_format(sc, key, key_len, &p, &n);

	if (ret)
		return ret;
	char name[SYMCACHE_NAME_MAX], tmp[SYMCACHE_NAME_MAX + 32];
	symcache_file_name(path, name);
	snprintf(tmp, sizeof(tmp), ".%s.%d", name, (int)getpid());
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	size_t done = 0;
	ret = 0;
	while (done < n) {
		ssize_t k = write(fd, p + done, n - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			ret = k < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)k;
	}
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && renameat(dirfd, tmp, dirfd, name) < 0)
		ret = -errno;
	if (ret)
		unlinkat(dirfd, tmp, 0);
out:
	free(p);
	return ret;
}
