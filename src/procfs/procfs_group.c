/*
 * procfs_group.c: what each mapping is for, and the grouped view. The kernel
 * names only some mappings ([heap], [stack], files); the others are told
 * apart by the shapes glibc and the dynamic loader give them, and by what a
 * trace knows (live malloc blocks, the program's own mmap calls). The rules
 * are documented in docs/definitions.md; keep the two in step.
 */
#include "procfs/procfs.h"

#include <stdlib.h>
#include <string.h>

/* glibc's non-main malloc arenas are 64 MiB regions aligned to 64 MiB
 * (HEAP_MAX_SIZE on 64-bit): a read-write part, then PROT_NONE up to the end. */
#define ARENA_SIZE (64ull << 20)

static int starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* A path the kernel made up: "", "[heap]", "[anon:x]", ... */
static int is_special(const char *path)
{
	return !path[0] || path[0] == '[';
}

static int is_anon(const struct procfs_map *m)
{
	return !m->path[0] || starts(m->path, "[anon:") || starts(m->path, "[anon_shmem:");
}

static int is_self(const char *path)
{
	return strstr(path, "libheapscope") || starts(path, "/memfd:heapscope") || starts(path, "[anon:heapscope");
}

static int is_kernel(const char *path)
{
	return starts(path, "[vdso") || starts(path, "[vvar") || starts(path, "[vsyscall") || starts(path, "[uprobes");
}

static int rw(const struct procfs_map *m)
{
	return m->perms[0] == 'r' && m->perms[1] == 'w';
}

static int no_access(const struct procfs_map *m)
{
	return m->perms[0] == '-' && m->perms[1] == '-' && m->perms[2] == '-';
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/*
 * For each file-backed mapping, the index of the first mapping with the same
 * path, and whether any mapping of that path is executable: a file with code
 * is a program or a library. One hash table over the paths, O(n).
 */
static int index_files(const struct procfs_map *v, size_t n, uint32_t *first, uint8_t *code)
{
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	uint32_t *tab = malloc(cap * sizeof(*tab));
	if (!tab)
		return -1;
	memset(tab, 0xff, cap * sizeof(*tab));
	for (size_t i = 0; i < n; i++) {
		first[i] = (uint32_t)i;
		code[i] = 0;
		if (is_special(v[i].path))
			continue;
		size_t j = hash_str(v[i].path) & (cap - 1);
		while (tab[j] != UINT32_MAX && strcmp(v[tab[j]].path, v[i].path))
			j = (j + 1) & (cap - 1);
		if (tab[j] == UINT32_MAX)
			tab[j] = (uint32_t)i;
		first[i] = tab[j];
		if (v[i].perms[2] == 'x')
			code[tab[j]] = 1;
	}
	free(tab);
	return 0;
}

/* The shapes of anonymous memory: glibc arenas and thread stacks. */
static void shapes(struct procfs_map *v, size_t n, uint8_t *decided)
{
	for (size_t i = 0; i < n; i++) {
		struct procfs_map *a = &v[i], *b = i + 1 < n ? &v[i + 1] : NULL;
		if (decided[i] || a->path[0])
			continue;
		int next_adjacent = b && !b->path[0] && !decided[i + 1] && b->start == a->end;
		/* arena: rw from a 64 MiB boundary, PROT_NONE to the next one */
		if (a->start % ARENA_SIZE == 0 && rw(a) &&
		    (a->end - a->start == ARENA_SIZE ||
		     (next_adjacent && no_access(b) && b->end == a->start + ARENA_SIZE))) {
			a->kind = PROCFS_HEAP;
			decided[i] = 1;
			if (a->end - a->start != ARENA_SIZE) {
				b->kind = PROCFS_HEAP;
				decided[i + 1] = 1;
			}
			continue;
		}
		/* thread stack: a PROT_NONE guard right below a read-write stack */
		if (no_access(a) && next_adjacent && rw(b)) {
			a->kind = b->kind = PROCFS_STACK;
			decided[i] = decided[i + 1] = 1;
		}
	}
}

static enum procfs_kind named_anon(const char *path)
{
	if (strstr(path, "malloc"))
		return PROCFS_HEAP;
	if (strstr(path, "stack"))
		return PROCFS_STACK;
	return PROCFS_ANON;
}

void procfs_classify(struct procfs_map *v, size_t n, const uint8_t *hints)
{
	uint32_t *first = malloc((n ? n : 1) * sizeof(*first));
	uint8_t *code = malloc(n ? n : 1), *decided = calloc(n ? n : 1, 1);
	if (!first || !code || !decided || index_files(v, n, first, code) < 0) {
		/* out of memory: what the names alone say */
		for (size_t i = 0; i < n; i++) {
			v[i].owner = (uint32_t)i;
			v[i].kind = is_self(v[i].path) ? PROCFS_SELF : is_kernel(v[i].path) ? PROCFS_KERNEL
				  : !strcmp(v[i].path, "[heap]") ? PROCFS_HEAP
				  : starts(v[i].path, "[stack") ? PROCFS_STACK
				  : is_special(v[i].path) ? PROCFS_ANON : PROCFS_FILE;
		}
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		v[i].owner = (uint32_t)i;
		v[i].kind = PROCFS_ANON;
	}
	/* a trace's hints decide first; the shapes only for what is left */
	if (hints)
		for (size_t i = 0; i < n; i++)
			decided[i] = is_anon(&v[i]) && (hints[i] & (PROCFS_HINT_HEAP | PROCFS_HINT_MMAP));
	shapes(v, n, decided);
	for (size_t i = 0; i < n; i++) {
		struct procfs_map *m = &v[i];
		uint8_t h = hints ? hints[i] : 0;
		const char *p = m->path;
		if (is_self(p))
			m->kind = PROCFS_SELF;
		else if (is_kernel(p))
			m->kind = PROCFS_KERNEL;
		else if (!strcmp(p, "[heap]"))
			m->kind = PROCFS_HEAP;
		else if (starts(p, "[stack"))
			m->kind = PROCFS_STACK;
		else if (is_anon(m) && (h & PROCFS_HINT_HEAP))
			m->kind = PROCFS_HEAP;
		else if (!is_special(p) && code[first[i]]) {
			m->kind = PROCFS_LIB;
			m->owner = first[i];
		} else if (h & PROCFS_HINT_MMAP)
			m->kind = PROCFS_MMAP;
		else if (!is_special(p))
			m->kind = PROCFS_FILE;
		else if (decided[i])
			; /* an arena or a thread stack, from its shape */
		else if (p[0])
			m->kind = is_anon(m) ? named_anon(p) : PROCFS_ANON;
		else if (i && (v[i - 1].kind == PROCFS_LIB || v[i - 1].kind == PROCFS_SELF) && v[i - 1].end == m->start &&
			 v[i - 1].perms[1] == 'w' && v[i - 1].perms[3] == 'p' && rw(m)) {
			/* .bss: the loader maps it anonymous, right after the file's data */
			m->kind = v[i - 1].kind;
			m->owner = v[i - 1].owner;
		} else
			m->kind = PROCFS_ANON;
	}
out:
	free(first);
	free(code);
	free(decided);
}

void procfs_total_add(struct procfs_totals *t, const struct procfs_map *m)
{
	t->size += m->end - m->start;
	t->rss += m->rss;
	t->pss += m->pss;
	t->dirty += procfs_dirty(m);
	t->anonymous += m->anonymous;
	t->swap += m->swap;
	t->maps++;
}

static int cmp_lib(const void *a, const void *b)
{
	const struct procfs_group *x = a, *y = b;
	if (x->t.rss != y->t.rss)
		return x->t.rss > y->t.rss ? -1 : 1;
	return strcmp(x->name, y->name);
}

size_t procfs_group(const struct procfs_map *v, size_t n, struct procfs_group *out, size_t max)
{
	struct procfs_group kinds[PROCFS_KINDS];
	struct procfs_group *libs = malloc((n ? n : 1) * sizeof(*libs));
	uint32_t *slot = malloc((n ? n : 1) * sizeof(*slot));
	size_t nlibs = 0, k = 0;
	memset(kinds, 0, sizeof(kinds));
	for (int i = 0; i < PROCFS_KINDS; i++)
		kinds[i].kind = (enum procfs_kind)i;
	if (slot)
		memset(slot, 0xff, (n ? n : 1) * sizeof(*slot));
	for (size_t i = 0; i < n; i++) {
		const struct procfs_map *m = &v[i];
		if (m->kind == PROCFS_LIB && libs && slot && m->owner < n) {
			if (slot[m->owner] == UINT32_MAX) {
				slot[m->owner] = (uint32_t)nlibs;
				libs[nlibs] = (struct procfs_group){ PROCFS_LIB, v[m->owner].path, { 0 } };
				nlibs++;
			}
			procfs_total_add(&libs[slot[m->owner]].t, m);
		} else {
			/* out of memory for the libraries: one group of them all */
			procfs_total_add(&kinds[m->kind < PROCFS_KINDS ? m->kind : PROCFS_ANON].t, m);
		}
	}
	if (libs)
		qsort(libs, nlibs, sizeof(*libs), cmp_lib);
	for (int i = 0; i < PROCFS_KINDS; i++) {
		if (i == PROCFS_LIB)
			for (size_t j = 0; j < nlibs && k < max; j++)
				out[k++] = libs[j];
		if (kinds[i].t.maps && k < max)
			out[k++] = kinds[i];
	}
	free(libs);
	free(slot);
	return k;
}

const char *procfs_kind_name(enum procfs_kind k)
{
	static const char *const names[PROCFS_KINDS] = { "heap",    "mmap",  "anonymous", "stacks",
							 "library", "files", "kernel",    "heapscope" };
	return (unsigned)k < PROCFS_KINDS ? names[k] : "unknown";
}

const char *procfs_mode(const struct procfs_map *m, char buf[6])
{
	buf[0] = m->perms[0] == 'r' ? 'r' : '-';
	buf[1] = m->perms[1] == 'w' ? 'w' : '-';
	buf[2] = m->perms[2] == 'x' ? 'x' : '-';
	buf[3] = m->perms[3] == 's' || m->perms[3] == 'S' ? 's' : '-';
	buf[4] = '-';
	buf[5] = 0;
	return buf;
}

const char *procfs_basename(const char *path)
{
	/* "/a/b (deleted)": the slash before the name, not one in a suffix */
	const char *s = strrchr(path, '/');
	return s && s[1] ? s + 1 : path;
}

const char *procfs_map_name(const struct procfs_map *m)
{
	if (!m->path[0])
		return "[anon]";
	if (m->path[0] == '[')
		return m->path;
	return procfs_basename(m->path);
}
