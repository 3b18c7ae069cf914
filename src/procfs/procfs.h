/*
 * procfs.h: a process's memory mappings as /proc/PID/smaps gives them,
 * parsed, classified and grouped the way a person reads them: the heap, the
 * program's own mappings, anonymous memory, thread stacks, each library's
 * code and data together, other files. `heapscope maps PID` reads a live
 * process; the model (src/analyze) classifies the snapshots a trace recorded.
 *
 * The parser takes text from anywhere (a file, a trace, a fuzzer): it is
 * bounded by the length it is given, checks every field, skips what it does
 * not understand and never reads past the end.
 */
#ifndef HS_PROCFS_H
#define HS_PROCFS_H

#include <stddef.h>
#include <stdint.h>

/* What a mapping is for. The order is the order of the grouped view. */
enum procfs_kind {
	PROCFS_HEAP = 0, /* the allocator's: [heap], malloc arenas, mmapped chunks */
	PROCFS_MMAP,     /* mapped by the program itself (known from a trace only) */
	PROCFS_ANON,     /* anonymous memory heapscope cannot name */
	PROCFS_STACK,    /* [stack] and thread stacks, with their guard pages */
	PROCFS_LIB,      /* an executable or shared library: code, data and .bss */
	PROCFS_FILE,     /* any other file: data files, locales, caches */
	PROCFS_KERNEL,   /* [vdso], [vvar], [vsyscall] */
	PROCFS_SELF,     /* heapscope's own: libheapscope.so and its shared buffers */
	PROCFS_KINDS
};

/* One mapping; sizes in bytes. */
struct procfs_map {
	uint64_t start, end, offset;
	char perms[5];        /* "rw-p", NUL-terminated */
	const char *path;     /* "" for anonymous memory, "[heap]", "[anon:name]", a file */
	uint64_t rss, pss, shared_clean, shared_dirty, private_clean, private_dirty, anonymous, swap;
	/* set by procfs_classify() */
	enum procfs_kind kind;
	uint32_t owner;       /* PROCFS_LIB: index of the mapping whose path names the library */
};

/* Hints a trace gives procfs_classify(), one byte per mapping. */
#define PROCFS_HINT_HEAP 1u /* holds a block malloc returned and that is still live */
#define PROCFS_HINT_MMAP 2u /* overlaps a mapping the program made with mmap and the like */

/* A parsed smaps: the mappings in address order and the strings they use. */
struct procfs_maps {
	struct procfs_map *v;
	size_t n, cap;
	char **paths;         /* the paths the parser copied (freed with the set) */
	size_t npaths, paths_cap;
	size_t skipped;       /* lines that were neither a mapping nor a field */
};

/* The columns of `pmap -x` and then some, summed over mappings. */
struct procfs_totals {
	uint64_t size, rss, pss, dirty, anonymous, swap;
	size_t maps;
};

/* A group of the grouped view. */
struct procfs_group {
	enum procfs_kind kind;
	const char *name;     /* PROCFS_LIB: the library's path; NULL for the other kinds */
	struct procfs_totals t;
};

/*
 * Parses len bytes of /proc/PID/smaps text into out (zeroed by the caller, or
 * reused after procfs_maps_free). Lines that do not parse are skipped and
 * counted in out->skipped; a mapping line must parse whole to count. Returns
 * 0 or -ENOMEM.
 */
int procfs_smaps_parse(struct procfs_maps *out, const char *text, size_t len);

/*
 * Reads /proc/PID/smaps (pid 0: this process) and parses it. Returns 0, or
 * -errno (-ENOENT: no such process, -EACCES: not ours to read) with a one-line
 * reason in err.
 */
int procfs_smaps_read(struct procfs_maps *out, int pid, char *err, size_t errlen);

void procfs_maps_free(struct procfs_maps *m);

/* Dirty as pmap -x counts it: shared and private dirty pages. */
static inline uint64_t procfs_dirty(const struct procfs_map *m)
{
	return m->shared_dirty + m->private_dirty;
}

/*
 * Sets kind and owner of each of the n mappings (in address order). hints
 * (NULL, or one PROCFS_HINT_* byte per mapping) come from a trace; without
 * them the heap is what its names and glibc's arena layout show. The rules,
 * first match wins, are in docs/definitions.md ("mappings by kind").
 */
void procfs_classify(struct procfs_map *v, size_t n, const uint8_t *hints);

/* Adds m to t. */
void procfs_total_add(struct procfs_totals *t, const struct procfs_map *m);

/*
 * Groups classified mappings: one group per kind, except one per library.
 * Writes at most max groups to out (n + PROCFS_KINDS is always enough) in the
 * order of enum procfs_kind, libraries by resident bytes, most first. Groups
 * without mappings are left out. Returns how many it wrote.
 */
size_t procfs_group(const struct procfs_map *v, size_t n, struct procfs_group *out, size_t max);

/* "heap", "mmap", "anonymous", "stacks", "library", "files", "kernel", "heapscope". */
const char *procfs_kind_name(enum procfs_kind k);

/* pmap's mode column: "r-x--", "rw-s-". Returns buf (6 bytes). */
const char *procfs_mode(const struct procfs_map *m, char buf[6]);

/* The name a mapping is shown by: a file's base name, "[anon]" for anonymous
 * memory, else the kernel's name ("[heap]", "[stack]", "[anon:x]"). */
const char *procfs_map_name(const struct procfs_map *m);

/* A path's last component, " (deleted)" kept. */
const char *procfs_basename(const char *path);

#endif
