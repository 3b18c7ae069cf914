/*
 * symcache.h: resolved addresses of one object file kept on disk between
 * recordings (symcache.c has the safety rules and the file layout). The
 * symbolizer (symbols.c) decides what a key covers; this file only stores
 * and checks.
 */
#ifndef HS_SYMCACHE_H
#define HS_SYMCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "symbols/symbols.h"

#define SYMCACHE_NAME_MAX 40

/* One address (relative to its object's load bias) and what it resolved to.
 * The frames' strings belong to the symbolizer (interned). */
struct symcache_entry {
	uint64_t addr;
	int n;
	struct sym_frame *frames;
};

struct symcache {
	struct symcache_entry *v;
	size_t n, cap;
	int sorted;
};

/* The cache directory, created if need be, as an O_DIRECTORY fd; -1 when
 * there is none we may trust (no home, not ours, open to others). */
int symcache_open_dir(void);
/* The file name for an object's path: a hash of it. One file per path, so
 * the cache grows with the objects recorded, not with their versions: the
 * file of an object that changed is rewritten under its new key. */
void symcache_file_name(const char *path, char name[SYMCACHE_NAME_MAX]);
/* Whether a file's key is one whose answers hold now: 0 to use the file. */
typedef int (*symcache_key_fn)(void *ctx, const char *key, size_t len);
/* The one copy of s[0..len), or NULL when out of memory. */
typedef const char *(*symcache_intern_fn)(void *ctx, const char *s, size_t len);

/* Adds the entries of path's file to sc if the file is ours alone and
 * key_ok accepts its key, strings through intern. 0, or -1 when there is
 * no such valid file: sc is left empty then. */
int symcache_load(int dirfd, const char *path, symcache_key_fn key_ok, void *key_ctx, struct symcache *sc,
		  symcache_intern_fn intern, void *ctx);
/* The same on a file's bytes buf[0..len), from wherever they came: the
 * checksum, the key (before any string is interned), every count and index
 * checked. */
int symcache_parse(const unsigned char *buf, size_t len, symcache_key_fn key_ok, void *key_ctx,
		   struct symcache *sc, symcache_intern_fn intern, void *ctx);
/* The bytes of the file for sc under key (malloc'd) into *out, *len. 0 or -ENOMEM. */
int symcache_format(struct symcache *sc, const char *key, size_t key_len, unsigned char **out, size_t *len);
/* Writes sc with its key as path's file, replacing it whole. 0 or -errno. */
int symcache_save(int dirfd, const char *path, const char *key, size_t key_len, struct symcache *sc);
/* The checksum a file ends with, of the bytes before it. */
uint64_t symcache_checksum(const void *p, size_t n);

const struct symcache_entry *symcache_get(struct symcache *sc, uint64_t addr);
/* Copies f[0..n) as addr's entry. 0 or -errno. */
int symcache_put(struct symcache *sc, uint64_t addr, const struct sym_frame *f, int n);
void symcache_clear(struct symcache *sc);

#endif
