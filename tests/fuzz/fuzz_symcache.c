/*
 * fuzz_symcache.c: the symbol cache's file reader (symcache_parse in
 * src/symbols/symcache.c) on hostile bytes. Its files are read back by every
 * later recording, from a directory that anything running as the user can
 * write to.
 *
 * Each input is parsed three times, from exact-size copies (a read past the
 * end is a finding):
 *  - as it is, any key accepted: the checksum turns most mutations away;
 *  - with its last 8 bytes replaced by the checksum of the bytes before
 *    them, so that what lies behind the checksum gets the mutations: once
 *    accepting any key, once only FZ_SYMCACHE_KEY (the seeds' key; a key
 *    that differs stops the parse before any string is interned).
 * What a parse accepts is then looked up at each of its addresses and
 * written again (symcache_format), which must parse back to the same
 * entries: a difference aborts.
 */
#include "symbols/symcache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FZ_SYMCACHE_KEY "heapscope symbols\nfuzz\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The strings a parse interned: each its own copy, freed after the input. */
struct strs {
	char **v;
	size_t n, cap;
};

static const char *intern(void *ctx, const char *s, size_t len)
{
	struct strs *t = ctx;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 256;
		char **v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	char *c = malloc(len + 1);
	if (!c)
		return NULL;
	memcpy(c, s, len);
	c[len] = 0;
	return t->v[t->n++] = c;
}

static void strs_free(struct strs *t)
{
	while (t->n)
		free(t->v[--t->n]);
	free(t->v);
	t->v = NULL;
	t->cap = 0;
}

static int any_key(void *ctx, const char *key, size_t len)
{
	(void)ctx;
	(void)key;
	(void)len;
	return 0;
}

static int fixed_key(void *ctx, const char *key, size_t len)
{
	(void)ctx;
	return len == sizeof(FZ_SYMCACHE_KEY) - 1 && !memcmp(key, FZ_SYMCACHE_KEY, len) ? 0 : -1;
}

static int same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* sc written again and read back: the same entries, in the same order. */
static void round_trip(struct symcache *sc)
{
	unsigned char *out;
	size_t len;

	for (size_t i = 0; i < sc->n; i++)
		if (symcache_get(sc, sc->v[i].addr) != &sc->v[i])
			abort();
	if (symcache_format(sc, FZ_SYMCACHE_KEY, sizeof(FZ_SYMCACHE_KEY) - 1, &out, &len))
		return; /* out of memory */
	struct symcache back = { 0 };
	struct strs t = { 0 };
	if (symcache_parse(out, len, fixed_key, NULL, &back, intern, &t) || back.n != sc->n)
		abort();
	for (size_t i = 0; i < sc->n; i++) {
		const struct symcache_entry *a = &sc->v[i], *b = &back.v[i];
		if (a->addr != b->addr || a->n != b->n)
			abort();
		for (int k = 0; k < a->n; k++)
			if (!same_str(a->frames[k].function, b->frames[k].function) ||
			    !same_str(a->frames[k].file, b->frames[k].file) || a->frames[k].line != b->frames[k].line ||
			    a->frames[k].inlined != b->frames[k].inlined)
				abort();
	}
	symcache_clear(&back);
	strs_free(&t);
	free(out);
}

static void parse(const uint8_t *buf, size_t size, symcache_key_fn key_ok)
{
	struct symcache sc = { 0 };
	struct strs t = { 0 };

	if (symcache_parse(buf, size, key_ok, NULL, &sc, intern, &t) == 0)
		round_trip(&sc);
	else if (sc.n)
		abort(); /* a file refused leaves nothing */
	symcache_clear(&sc);
	strs_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	parse(copy, size, any_key);
	if (size >= 8) {
		uint64_t sum = symcache_checksum(copy, size - 8);
		memcpy(copy + size - 8, &sum, 8);
		parse(copy, size, any_key);
		parse(copy, size, fixed_key);
	}
	free(copy);
	return 0;
}
