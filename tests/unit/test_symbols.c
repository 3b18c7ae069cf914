/*
 * test_symbols.c: the symbols module against programs compiled here with a
 * known inline chain (tests/unit/symbols/inline_chain.c, and its C++ twin
 * when a C++ compiler is there), plus demangling, clone-suffixed symbol
 * names and the odd cases (no module, unreadable module, overlaps). One line
 * per check; the last line is "N passed, M failed" and the exit status is 1
 * on any failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbols/symbols.h"
#include "symbols/symcache.h"

#include "check.h"


static int streq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static const char *show(const char *s)
{
	return s ? s : "(null)";
}

static void check_demangle(const char *mangled, const char *want)
{
	char *got = sym_demangle(mangled);

	if (want)
		check(streq(got, want), "demangle %s -> %s (got %s)", mangled, want, show(got));
	else
		check(!got, "demangle %s -> not mangled (got %s)", mangled, show(got));
	free(got);
}

static void test_demangle(void)
{
	check_demangle("_ZN3foo3barEv", "foo::bar()");
	check_demangle("_ZNSt6vectorIiSaIiEE9push_backERKi",
		       "std::vector<int, std::allocator<int> >::push_back(int const&)");
	check_demangle("_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write");
	check_demangle("_ZN5alloc7raw_vec11finish_grow17h9a3f1c2b4d5e6f70E", "alloc::raw_vec::finish_grow");
	/* Rust v0 examples from the v0 mangling RFC. */
	check_demangle("_RNvCs15kBYyAo9fc_7mycrate7example", "mycrate::example");
	check_demangle("_RINvNtC3std3mem8align_ofdE", "std::mem::align_of::<f64>");
	check_demangle("malloc", NULL);
	check_demangle("_Z", NULL);
	check_demangle("", NULL);
}

/* Directory holding inline_chain.c: next to this source when run from the
 * top of the tree, else found from the binary's place in build/tests/. */
static int find_srcdir(char *dir, size_t size)
{
	char exe[PATH_MAX], path[PATH_MAX];
	ssize_t len;
	char *slash;

	snprintf(dir, size, "%s", __FILE__);
	slash = strrchr(dir, '/');
	snprintf(slash ? slash + 1 : dir, size - (slash ? (size_t)(slash + 1 - dir) : 0), "symbols");
	if (snprintf(path, sizeof(path), "%s/inline_chain.c", dir) < (int)sizeof(path) && !access(path, R_OK))
		return 0;

	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
		return -ENOENT;
	exe[len] = '\0';
	for (int up = 0; up < 3 && (slash = strrchr(exe, '/')); up++)
		*slash = '\0';
	if (snprintf(dir, size, "%s/tests/unit/symbols", exe) >= (int)size ||
	    snprintf(path, sizeof(path), "%s/inline_chain.c", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	return access(path, R_OK) ? -ENOENT : 0;
}

/* The line holding marker in file, or 0. */
static unsigned marker_line(const char *file, const char *marker)
{
	char buf[512];
	unsigned line = 0, found = 0;
	FILE *f = fopen(file, "r");

	if (!f)
		return 0;
	while (!found && fgets(buf, sizeof(buf), f)) {
		line++;
		if (strstr(buf, marker))
			found = line;
	}
	fclose(f);
	return found;
}

static int same_file(const char *a, const char *b)
{
	struct stat x, y;

	return a && b && !stat(a, &x) && !stat(b, &y) && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* What a test program printed: the return address inside the inline
 * chain, the containing function's address, where the program is loaded,
 * and symbols with the names they must be reported as. */
struct run {
	uint64_t ra, f, bias, start, end;
	int nsyms;
	struct {
		char name[64];
		uint64_t addr;
	} syms[8];
};

static int run_program(const char *exe, struct run *r)
{
	char line[256];
	int got = 0;
	FILE *p = popen(exe, "r");

	if (!p)
		return -errno;
	while (fgets(line, sizeof(line), p)) {
		unsigned long long a, b, c;

		if (sscanf(line, "ra %llx", &a) == 1) {
			r->ra = a;
			got |= 1;
		} else if (sscanf(line, "f %llx", &a) == 1) {
			r->f = a;
			got |= 2;
		} else if (r->nsyms < 8 && sscanf(line, "sym %63s %llx", r->syms[r->nsyms].name, &a) == 2) {
			r->syms[r->nsyms++].addr = a;
		} else if (sscanf(line, "bias %llx start %llx end %llx", &a, &b, &c) == 3) {
			r->bias = a;
			r->start = b;
			r->end = c;
			got |= 4;
		}
	}
	if (pclose(p) != 0 || got != 7)
		return -EIO;
	return 0;
}

/*
 * Compiles srcdir/name into tmpdir with -O2 -g and runs it. The compile runs
 * in srcdir on the bare name, so the DWARF file name is relative and the
 * resolver must join it with the compilation directory.
 */
static int build_and_run(const char *srcdir, const char *tmpdir, const char *name, const char *compiler,
			 char *exe, size_t exe_size, struct run *r)
{
	char cmd[3 * PATH_MAX];
	int err;

	if (snprintf(exe, exe_size, "%s/%s.bin", tmpdir, name) >= (int)exe_size ||
	    snprintf(cmd, sizeof(cmd), "cd '%s' && %s -O2 -g -o '%s' %s", srcdir, compiler, exe, name) >=
		    (int)sizeof(cmd)) {
		check(0, "paths fit in PATH_MAX");
		return -ENAMETOOLONG;
	}
	err = system(cmd);
	check(err == 0, "compile %s with %s -O2 -g", name, compiler);
	if (err)
		return -EIO;
	err = run_program(exe, r);
	check(err == 0, "run %s: return address, function and load bias printed", name);
	return err;
}

static const char *env_or(const char *var, const char *dflt)
{
	const char *v = getenv(var);

	return v && *v ? v : dflt;
}

static void test_inline_chain(const char *srcdir, const char *tmpdir)
{
	char src[PATH_MAX], exe[PATH_MAX];
	struct sym_frame fr[8], again[8];
	struct sym_ctx *c = NULL;
	unsigned line_h, line_g, line_f;
	uint64_t off;
	struct run r = { 0 };
	int n, mod, idx, err;

	if (snprintf(src, sizeof(src), "%s/inline_chain.c", srcdir) >= (int)sizeof(src)) {
		check(0, "paths fit in PATH_MAX");
		return;
	}
	line_h = marker_line(src, "MARK_H_CALL");
	line_g = marker_line(src, "MARK_G_CALL");
	line_f = marker_line(src, "MARK_F_CALL");
	check(line_h && line_g && line_f, "markers found in %s (h at %u, g at %u, f at %u)", src, line_h, line_g,
	      line_f);
	if (build_and_run(srcdir, tmpdir, "inline_chain.c", env_or("CC", "cc"), exe, sizeof(exe), &r))
		return;

	err = sym_open(&c);
	check(err == 0 && c, "sym_open");
	if (err)
		return;
	idx = sym_add_module(c, exe, r.bias, r.start, r.end);
	check(idx == 0, "sym_add_module(program) -> 0 (got %d)", idx);

	n = sym_resolve(c, r.ra, 1, fr, 8, &mod, &off);
	check(n == 3, "return address in h in g in f: 3 frames (got %d)", n);
	check(mod == 0 && off == r.ra - r.bias, "module 0, offset ra - bias (got %d, %#" PRIx64 ")", mod, off);
	if (n == 3) {
		check(streq(fr[0].function, "h") && fr[0].inlined == 1, "frame 0 is h, inlined (got %s, %d)",
		      show(fr[0].function), fr[0].inlined);
		check(fr[0].file && fr[0].file[0] == '/' && same_file(fr[0].file, src),
		      "frame 0 file is inline_chain.c, absolute (got %s)", show(fr[0].file));
		check(fr[0].line == line_h, "frame 0 line %u, from the line table (got %u)", line_h, fr[0].line);
		check(streq(fr[1].function, "g") && fr[1].inlined == 1, "frame 1 is g, inlined (got %s, %d)",
		      show(fr[1].function), fr[1].inlined);
		check(fr[1].line == line_g, "frame 1 line %u, the call of h (got %u)", line_g, fr[1].line);
		check(streq(fr[2].function, "f") && fr[2].inlined == 0, "frame 2 is f, not inlined (got %s, %d)",
		      show(fr[2].function), fr[2].inlined);
		check(same_file(fr[2].file, src), "frame 2 file is inline_chain.c (got %s)", show(fr[2].file));
		check(fr[2].line == line_f, "frame 2 line %u, the call of g (got %u)", line_f, fr[2].line);
		check(fr[0].file == fr[1].file && fr[1].file == fr[2].file, "same file name is one interned pointer");

		n = sym_resolve(c, r.ra, 1, again, 8, NULL, NULL);
		check(n == 3 && again[0].function == fr[0].function && again[2].function == fr[2].function &&
			      again[0].file == fr[0].file,
		      "second lookup returns the same interned strings");
		n = sym_resolve(c, r.ra, 1, again, 2, NULL, NULL);
		check(n == 2 && again[0].function == fr[0].function && again[1].function == fr[2].function &&
			      again[1].inlined == 0,
		      "max 2 keeps the innermost frame and the containing function (got %d)", n);
		n = sym_resolve(c, r.ra, 1, again, 1, NULL, NULL);
		check(n == 1 && again[0].function == fr[2].function && again[0].inlined == 0,
		      "max 1 keeps the containing function (got %d, %s)", n, show(again[0].function));
	}

	n = sym_resolve(c, r.f, 0, again, 8, &mod, &off);
	check(n >= 1 && streq(again[n - 1].function, "f") && again[n - 1].inlined == 0 && mod == 0 &&
		      off == r.f - r.bias,
	      "f's entry (not a return address) resolves to f (got %s)", n >= 1 ? show(again[n - 1].function) : "-");
	if (n >= 1 && fr[2].function)
		check(again[n - 1].function == fr[2].function, "f is one interned pointer across addresses");

	check(r.nsyms == 4, "program printed 4 named symbols (got %d)", r.nsyms);
	for (int i = 0; i < r.nsyms; i++) {
		n = sym_resolve(c, r.syms[i].addr, 0, again, 8, NULL, NULL);
		check(n >= 1 && streq(again[n - 1].function, r.syms[i].name), "symbol reported as %s (got %s)",
		      r.syms[i].name, n >= 1 ? show(again[n - 1].function) : "-");
	}

	/* An address below every module. */
	n = sym_resolve(c, 0x1000, 1, again, 8, &mod, &off);
	check(n == 1 && !again[0].function && !again[0].file && again[0].line == 0 && mod == -1 && off == 0x1000,
	      "address in no module: no function, module -1, offset is the address");

	/* A module that does not exist keeps its index and gives offsets. */
	idx = sym_add_module(c, "/nonexistent/libnothing.so", 0x7f0000000000ULL, 0x7f0000000000ULL,
			     0x7f0000100000ULL);
	check(idx == 1, "sym_add_module(missing file) -> 1 (got %d)", idx);
	n = sym_resolve(c, 0x7f0000001234ULL, 1, again, 8, &mod, &off);
	check(n == 1 && !again[0].function && mod == 1 && off == 0x1234,
	      "address in missing module: no function, module 1, offset 0x1234 (got %d, %s, %d, %#" PRIx64 ")", n,
	      show(again[0].function), mod, off);

	/* A readable file that is not ELF. */
	idx = sym_add_module(c, src, 0x7e0000000000ULL, 0x7e0000000000ULL, 0x7e0000100000ULL);
	n = sym_resolve(c, 0x7e0000000010ULL, 0, again, 8, &mod, &off);
	check(idx == 2 && n == 1 && !again[0].function && mod == 2 && off == 0x10,
	      "address in a non-ELF module: no function, offset only");

	/* The program declared again at the same place (dlclose, dlopen):
	 * the last declaration wins and still resolves. */
	idx = sym_add_module(c, exe, r.bias, r.start, r.end);
	n = sym_resolve(c, r.ra, 1, again, 8, &mod, &off);
	check(idx == 3 && n == 3 && mod == 3 && again[2].function == fr[2].function,
	      "module declared twice: the last one wins (got idx %d, module %d)", idx, mod);

	check(sym_add_module(c, exe, 0, 10, 10) == -EINVAL, "empty range is -EINVAL");
	check(sym_resolve(c, r.ra, 1, again, 0, NULL, NULL) == -EINVAL, "max 0 is -EINVAL");
	sym_close(c);
}

/* The same chain in C++: names come qualified, with their parameters. */
static void test_cxx_chain(const char *srcdir, const char *tmpdir)
{
	const char *cxx = env_or("CXX", "c++");
	char src[PATH_MAX], exe[PATH_MAX], probe[PATH_MAX + 64];
	struct sym_frame fr[8];
	struct sym_ctx *c = NULL;
	unsigned line_grab, line_load;
	struct run r = { 0 };
	int n;

	snprintf(probe, sizeof(probe), "command -v '%s' >/dev/null 2>&1", cxx);
	if (system(probe) != 0) {
		printf("skip: no C++ compiler (%s), C++ names not checked\n", cxx);
		return;
	}
	if (snprintf(src, sizeof(src), "%s/inline_chain_cxx.cc", srcdir) >= (int)sizeof(src)) {
		check(0, "paths fit in PATH_MAX");
		return;
	}
	line_grab = marker_line(src, "MARK_GRAB_CALL");
	line_load = marker_line(src, "MARK_LOAD_CALL");
	check(line_grab && line_load, "markers found in %s (grab at %u, load at %u)", src, line_grab, line_load);
	if (build_and_run(srcdir, tmpdir, "inline_chain_cxx.cc", cxx, exe, sizeof(exe), &r))
		return;
	if (sym_open(&c)) {
		check(0, "sym_open");
		return;
	}
	sym_add_module(c, exe, r.bias, r.start, r.end);
	n = sym_resolve(c, r.ra, 1, fr, 8, NULL, NULL);
	check(n == 2, "C++: return address in grab inside load: 2 frames (got %d)", n);
	if (n == 2) {
		check(streq(fr[0].function, "app::Pool::grab(unsigned long)") && fr[0].inlined == 1 &&
			      fr[0].line == line_grab && same_file(fr[0].file, src),
		      "C++ frame 0: app::Pool::grab(unsigned long), inlined, line %u (got %s, %d, %s:%u)", line_grab,
		      show(fr[0].function), fr[0].inlined, show(fr[0].file), fr[0].line);
		check(streq(fr[1].function, "app::load(app::Pool&, unsigned long)") && fr[1].inlined == 0 &&
			      fr[1].line == line_load && same_file(fr[1].file, src),
		      "C++ frame 1: app::load(app::Pool&, unsigned long), line %u (got %s, %d, %s:%u)", line_load,
		      show(fr[1].function), fr[1].inlined, show(fr[1].file), fr[1].line);
	}
	sym_close(c);
}

/* The one cache file in dir: its name into name; -1 when not exactly one. */
static int only_cache_file(const char *dir, char *name, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "sym-", 4) && n++ == 0)
			snprintf(name, size, "%s/%s", dir, e->d_name);
	closedir(d);
	return n == 1 ? 0 : -1;
}

/* Whether the key of the cache file at path holds needle. */
static int cache_key_has(const char *path, const char *needle)
{
	unsigned char buf[1 << 16];
	uint32_t key_len;
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;

	if (fd >= 0)
		close(fd);
	if (n < 12)
		return 0;
	memcpy(&key_len, buf + 8, 4);
	return 12 + (size_t)key_len <= (size_t)n && memmem(buf + 12, key_len, needle, strlen(needle)) != NULL;
}

/* The innermost function name at the program's return address, resolved
 * through a fresh context using the cache in dirfd (-1: none). */
static const char *resolve_h(int dirfd, const char *exe, const struct run *r, char *buf, size_t size)
{
	struct sym_ctx *c = NULL;
	struct sym_frame fr[8];
	int n;

	if (sym_open(&c))
		return NULL;
	sym_use_cache(c, dirfd);
	sym_add_module(c, exe, r->bias, r->start, r->end);
	n = sym_resolve(c, r->ra, 1, fr, 8, NULL, NULL);
	snprintf(buf, size, "%s", n == 3 ? show(fr[0].function) : "(not 3 frames)");
	check(sym_save_cache(c) == 0, "sym_save_cache");
	sym_close(c);
	return buf;
}

/* Strings of a cache file loaded by the test itself: copies, freed at the end. */
struct dups {
	char *v[256];
	int n;
};

static const char *intern_dup(void *ctx, const char *s, size_t len)
{
	struct dups *d = ctx;

	if (d->n == 256)
		return NULL;
	return d->v[d->n++] = strndup(s, len);
}

static int any_key(void *ctx, const char *key, size_t len)
{
	(void)ctx;
	(void)key;
	(void)len;
	return 0;
}

static int key_is_k1(void *ctx, const char *key, size_t len)
{
	(void)ctx;
	return len == 2 && !memcmp(key, "k1", 2) ? 0 : -1;
}

/*
 * A cache file's bytes, without a file: written, read back the same; another
 * key refused before any string is taken; a file cut short, or one whose
 * checksum holds over an index out of range, leaves nothing.
 */
static void test_cache_format(void)
{
	struct sym_frame two[2] = { { "inner", "a.c", 7, 1 }, { "outer", NULL, 0, 0 } }, one = { "outer", "a.c", 3, 0 };
	struct symcache sc = { 0 }, back = { 0 };
	struct dups d = { .n = 0 };
	unsigned char *buf = NULL;
	size_t len = 0;

	/* a zeroed table: empty, and written as a file of no entries */
	check(symcache_format(&sc, "k1", 2, &buf, &len) == 0 && symcache_parse(buf, len, key_is_k1, NULL, &back,
									     intern_dup, &d) == 0 && back.n == 0,
	      "an empty table is written and read back empty");
	free(buf);
	check(symcache_put(&sc, 0x2000, two, 2) == 0 && symcache_put(&sc, 0x1000, &one, 1) == 0, "two entries put");
	check(symcache_format(&sc, "k1", 2, &buf, &len) == 0, "symcache_format");
	if (!buf)
		return;

	int r = symcache_parse(buf, len, key_is_k1, NULL, &back, intern_dup, &d);
	const struct symcache_entry *a = symcache_get(&back, 0x1000), *b = symcache_get(&back, 0x2000);
	check(r == 0 && back.n == 2 && a && b && a->n == 1 && b->n == 2 && streq(a->frames[0].function, "outer") &&
		      streq(a->frames[0].file, "a.c") && a->frames[0].line == 3 && !a->frames[0].inlined &&
		      streq(b->frames[0].function, "inner") && b->frames[0].line == 7 && b->frames[0].inlined == 1 &&
		      streq(b->frames[1].function, "outer") && !b->frames[1].file && !b->frames[1].line,
	      "read back: both entries, every field (parse %d, %zu entries)", r, back.n);
	/* the strings once each: 3 of them */
	check(d.n == 3, "each string interned once (got %d)", d.n);
	symcache_clear(&back);
	while (d.n)
		free(d.v[--d.n]);

	check(symcache_parse(buf, len, any_key, NULL, &back, intern_dup, &d) == 0 && back.n == 2,
	      "any key accepted: read");
	symcache_clear(&back);
	while (d.n)
		free(d.v[--d.n]);

	/* another key: refused, and no string was taken for it */
	memcpy(buf + 12, "k2", 2);
	uint64_t sum = symcache_checksum(buf, len - 8);
	memcpy(buf + len - 8, &sum, 8);
	check(symcache_parse(buf, len, key_is_k1, NULL, &back, intern_dup, &d) == -1 && back.n == 0 && d.n == 0,
	      "another key is refused before any string is interned (%d interned)", d.n);
	memcpy(buf + 12, "k1", 2);
	sum = symcache_checksum(buf, len - 8);
	memcpy(buf + len - 8, &sum, 8);

	/* one byte short: its checksum is not where it was */
	check(symcache_parse(buf, len - 1, key_is_k1, NULL, &back, intern_dup, &d) == -1 && back.n == 0,
	      "a file cut short is refused");
	/* the last frame's file index (0: none) made 4 of 3 strings, the
	 * checksum made to hold: refused whole */
	uint32_t bad = 4;
	memcpy(buf + len - 8 - 12, &bad, 4);
	sum = symcache_checksum(buf, len - 8);
	memcpy(buf + len - 8, &sum, 8);
	check(symcache_parse(buf, len, key_is_k1, NULL, &back, intern_dup, &d) == -1 && back.n == 0,
	      "a string index beyond the strings is refused, nothing kept");
	while (d.n)
		free(d.v[--d.n]);
	free(buf);
	symcache_clear(&sc);
}

/* Rewrites the cache file at path with h renamed to name: the same key, a
 * valid file. 0 on success. */
static int rename_h_in_cache(int dirfd, const char *exe, const char *path, const char *name)
{
	unsigned char buf[1 << 16];
	struct symcache sc = { 0 };
	struct dups dups = { .n = 0 };
	uint32_t key_len;
	int fd = open(path, O_RDONLY), ret = -1;
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;

	if (fd >= 0)
		close(fd);
	if (n < 12)
		return -1;
	memcpy(&key_len, buf + 8, 4);
	if (12 + (size_t)key_len > (size_t)n ||
	    symcache_load(dirfd, exe, any_key, NULL, &sc, intern_dup, &dups))
		ret = -2;
	for (size_t i = 0; i < sc.n; i++)
		for (int k = 0; k < sc.v[i].n; k++)
			if (streq(sc.v[i].frames[k].function, "h")) {
				sc.v[i].frames[k].function = name;
				ret = 0;
			}
	if (!ret)
		ret = symcache_save(dirfd, exe, (char *)buf + 12, key_len, &sc);
	symcache_clear(&sc);
	while (dups.n)
		free(dups.v[--dups.n]);
	return ret;
}

/*
 * The on-disk cache: a second context answers from it; a file that is
 * corrupt, a link, open to others, or made for another version of the
 * program is not believed.
 */
static void test_cache(const char *srcdir, const char *tmpdir)
{
	char exe[PATH_MAX], xdg[PATH_MAX], dir[PATH_MAX + 16], file[PATH_MAX + 300], other[PATH_MAX + 16], got[128];
	struct run r = { 0 };
	struct stat st;
	int dirfd;

	if (build_and_run(srcdir, tmpdir, "inline_chain.c", env_or("CC", "cc"), exe, sizeof(exe), &r))
		return;
	snprintf(xdg, sizeof(xdg), "%s/xdg", tmpdir);
	snprintf(dir, sizeof(dir), "%s/heapscope", xdg);
	mkdir(xdg, 0755);
	setenv("XDG_CACHE_HOME", xdg, 1);
	dirfd = symcache_open_dir();
	memset(&st, 0, sizeof(st));
	stat(dir, &st);
	check(dirfd >= 0 && (st.st_mode & 0777) == 0700, "cache directory created under XDG_CACHE_HOME, mode 0700 (got %o)",
	      (unsigned)(st.st_mode & 0777));
	if (dirfd < 0)
		return;

	check(streq(resolve_h(dirfd, exe, &r, got, sizeof(got)), "h"), "first run resolves h (got %s)", got);
	check(only_cache_file(dir, file, sizeof(file)) == 0 && !stat(file, &st) && (st.st_mode & 0777) == 0600,
	      "one cache file, mode 0600");
	/* its DWARF and .symtab are its own: libdwfl reads no other file, so
	 * none is searched for */
	check(cache_key_has(file, "\ndebug self\n"), "a program with its own debug info is keyed as such (debug self)");
	check(streq(resolve_h(dirfd, exe, &r, got, sizeof(got)), "h"), "second run, from the cache: h (got %s)", got);

	/* a valid file that says otherwise is what the cache answers: proof
	 * that the second run read it */
	check(rename_h_in_cache(dirfd, exe, file, "h_from_cache") == 0, "cache file rewritten with h renamed");
	check(streq(resolve_h(dirfd, exe, &r, got, sizeof(got)), "h_from_cache"),
	      "the cache answers when its key matches (got %s)", got);

	/* one byte changed: the checksum fails, the DWARF answers (and the
	 * file is written again) */
	int fd = open(file, O_RDWR);
	unsigned char b = 0;
	check(fd >= 0 && pread(fd, &b, 1, 20) == 1, "read a byte of the cache file");
	b ^= 0x20;
	check(fd >= 0 && pwrite(fd, &b, 1, 20) == 1, "change a byte of the cache file");
	if (fd >= 0)
		close(fd);
	check(streq(resolve_h(dirfd, exe, &r, got, sizeof(got)), "h"), "a corrupt file is ignored (got %s)", got);

	/* open to others: ignored */
	check(rename_h_in_cache(dirfd, exe, file, "h_from_cache") == 0 && chmod(file, 0644) == 0,
	      "cache file rewritten, then made readable by others");
	check(streq(resolve_h(dirfd, exe, &r, got, sizeof(got)), "h"), "a file open to others is ignored (got %s)",
	      got);

	/* a link to a valid file: not followed */
	snprintf(other, sizeof(other), "%s/elsewhere", tmpdir);
	check(rename_h_in_cache(dirfd, exe, file, "h_from_cache") == 0 && rename(file, other) == 0 &&
		      symlink(other, file) == 0,
	      "cache file moved away, a link in its place");
	check(streq(resolve_h(dirfd, exe, &r, got, sizeof(got)), "h"), "a link is not followed (got %s)", got);
	check(!lstat(file, &st) && S_ISREG(st.st_mode), "the link is replaced by a file of ours");

	/* the program rebuilt (here: its time changed): another key */
	check(rename_h_in_cache(dirfd, exe, file, "h_from_cache") == 0, "cache file rewritten with h renamed");
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 12345, 0 } };
	check(utimensat(AT_FDCWD, exe, ts, 0) == 0, "program's mtime changed");
	check(streq(resolve_h(dirfd, exe, &r, got, sizeof(got)), "h"), "a changed program is resolved afresh (got %s)",
	      got);

	/* without its DWARF: the separate debug file searched for, none found */
	char cmd[2 * PATH_MAX];
	snprintf(cmd, sizeof(cmd), "objcopy --strip-debug '%s'", exe);
	check(system(cmd) == 0, "objcopy --strip-debug");
	resolve_h(dirfd, exe, &r, got, sizeof(got));
	check(cache_key_has(file, "\ndebug -\n-\n") && !cache_key_has(file, "debug self"),
	      "a program without its DWARF is keyed by the debug file search (none found)");
	close(dirfd);

	/* a cache directory open to others is not used */
	chmod(dir, 0755);
	dirfd = symcache_open_dir();
	check(dirfd < 0, "a cache directory open to others is refused");
	if (dirfd >= 0)
		close(dirfd);
	unsetenv("XDG_CACHE_HOME");
}

int main(void)
{
	char srcdir[PATH_MAX], tmpdir[] = "/tmp/test_symbols.XXXXXX", cmd[PATH_MAX + 32];
	const char *t = getenv("TMPDIR");
	char tmpl[PATH_MAX];
	char *dir;

	test_demangle();
	test_cache_format();

	snprintf(tmpl, sizeof(tmpl), "%s/test_symbols.XXXXXX", t && *t ? t : "/tmp");
	dir = mkdtemp(tmpl);
	if (!dir)
		dir = mkdtemp(tmpdir);
	check(dir != NULL, "temporary directory");
	check(find_srcdir(srcdir, sizeof(srcdir)) == 0, "find tests/unit/symbols");
	if (dir) {
		test_inline_chain(srcdir, dir);
		test_cxx_chain(srcdir, dir);
		test_cache(srcdir, dir);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}

	return check_done();
}
