/*
 * test_mem.c: memory beyond the heap, on synthetic traces with known numbers:
 * usable bytes (slack), growth chains, the program's own mappings, allocator
 * samples, smaps snapshots, their classification and the waterfall; then the
 * smaps parser on captured text, odd paths and damaged input. Each check
 * prints one line; the last is "N passed, M failed", exit status 1 on any
 * failure.
 */
#include "analyze/model.h"
#include "procfs/procfs.h"
#include "report/report.h"
#include "synth_trace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static char dir[256];

static char *tpath(const char *name)
{
	static char buf[4][512];
	static int k;
	char *p = buf[k++ % 4];
	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

/* ---- records synth_trace.h does not write ---------------------------------- */

static void w_map(struct trace_writer *w, uint64_t t, uint64_t kind, uint64_t stack, uint64_t addr, uint64_t size,
		  uint64_t old_addr, uint64_t old_size, uint64_t flags)
{
	tw_begin(w, TR_MAP);
	tw_time(w, t);
	tw_u(w, 0);
	tw_u(w, kind);
	tw_u(w, stack);
	tw_u(w, addr);
	tw_u(w, size);
	tw_u(w, old_addr);
	tw_u(w, old_size);
	tw_u(w, 3); /* PROT_READ | PROT_WRITE */
	tw_u(w, flags);
	tw_u(w, 0);
	tw_end(w);
}

static void w_mallinfo(struct trace_writer *w, uint64_t t, uint64_t arena, uint64_t hblkhd, uint64_t uordblks)
{
	tw_begin(w, TR_MALLINFO);
	tw_time(w, t);
	tw_u(w, 0); /* process */
	tw_u(w, arena);
	tw_u(w, 3);
	tw_u(w, hblkhd ? 1 : 0);
	tw_u(w, hblkhd);
	tw_u(w, uordblks);
	tw_u(w, arena - uordblks);
	tw_u(w, 1000);
	tw_end(w);
}

struct smap {
	uint64_t start, end;
	const char *perms, *path;
	uint64_t rss, anon;
};

static void w_smaps(struct trace_writer *w, uint64_t t, uint64_t reason, const struct smap *v, size_t n)
{
	tw_begin(w, TR_SMAPS);
	tw_time(w, t);
	tw_u(w, 0); /* process */
	tw_u(w, reason);
	tw_u(w, n);
	for (size_t i = 0; i < n; i++) {
		tw_u(w, v[i].start);
		tw_u(w, v[i].end);
		tw_u(w, 0);
		tw_str(w, v[i].perms);
		tw_str(w, v[i].path);
		tw_u(w, v[i].rss);
		tw_u(w, v[i].rss);                /* pss */
		tw_u(w, 0);                       /* shared clean */
		tw_u(w, 0);                       /* shared dirty */
		tw_u(w, v[i].rss - v[i].anon);    /* private clean */
		tw_u(w, v[i].anon);               /* private dirty */
		tw_u(w, v[i].anon);
		tw_u(w, 0);                       /* swap */
	}
	tw_end(w);
}

/* ---- the synthetic trace ---------------------------------------------------- */

enum { S_MAIN = 1, S_VEC = 2, S_GROW = 3, S_MAP_A = 4, S_MAP_B = 5, S_MAP_C = 6, S_SMALL = 7, S_BRK = 8, S_BIG = 9 };

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define HEAP 0x1000000ull
#define MAPS 0x7f0000000000ull
#define CHUNK 0x7e0000000000ull

/* The mappings at peak RSS. */
static const struct smap peak_maps[] = {
	{ 0x400000, 0x401000, "r--p", "/usr/bin/demo", 4096, 0 },
	{ 0x401000, 0x403000, "r-xp", "/usr/bin/demo", 8192, 0 },
	{ 0x403000, 0x404000, "rw-p", "/usr/bin/demo", 4096, 4096 },
	{ HEAP, HEAP + 0x22000, "rw-p", "[heap]", 20480, 20480 },
	{ CHUNK, CHUNK + 0x31000, "rw-p", "", 200704, 200704 },          /* malloc's mmapped chunk */
	{ MAPS, MAPS + 0x80000, "rw-p", "", 512 * KiB, 512 * KiB },       /* A, cut in two */
	{ MAPS + 0xa0000, MAPS + 0x102000, "rw-p", "", 392 * KiB, 392 * KiB }, /* + 8 KiB of nobody's */
	{ MAPS + 0x800000, MAPS + 0xc00000, "rw-p", "", 4 * MiB, 4 * MiB }, /* B and C, merged */
	{ 0x7f1000000000, 0x7f1000003000, "rw-p", "", 8192, 8192 },      /* nobody's */
	{ 0x7f2000000000, 0x7f2000057000, "r--p", "/usr/lib/locale/C.utf8/LC_CTYPE", 131072, 0 },
	{ 0x7f3000000000, 0x7f3000026000, "r--p", "/usr/lib/libc.so.6", 155648, 0 },
	{ 0x7f3000026000, 0x7f300017c000, "r-xp", "/usr/lib/libc.so.6", 655360, 0 },
	{ 0x7f300017c000, 0x7f3000180000, "rw-p", "/usr/lib/libc.so.6", 16384, 8192 },
	{ 0x7f3000180000, 0x7f300018d000, "rw-p", "", 20480, 20480 },    /* libc's .bss */
	{ 0x7f4000000000, 0x7f4000001000, "---p", "", 0, 0 },            /* thread stack guard */
	{ 0x7f4000001000, 0x7f4000801000, "rw-p", "", 16384, 16384 },    /* thread stack */
	{ 0x7f4004000000, 0x7f4004021000, "rw-p", "", 8192, 8192 },      /* arena */
	{ 0x7f4004021000, 0x7f4008000000, "---p", "", 0, 0 },
	{ 0x7f5000000000, 0x7f5000010000, "r-xp", "/opt/hs/libheapscope.so", 65536, 0 },
	{ 0x7f5100000000, 0x7f5100100000, "rw-s", "/memfd:heapscope (deleted)", 1048576, 0 },
	{ 0x7f5200000000, 0x7f5200001000, "rw-p", "[anon:my pool]", 4096, 4096 },
	{ 0x7f5300000000, 0x7f5300001000, "r--p", "/tmp/my data file.bin (deleted)", 4096, 0 },
	{ 0x7ffd00000000, 0x7ffd00021000, "rw-p", "[stack]", 24576, 24576 },
	{ 0x7ffe00000000, 0x7ffe00004000, "r--p", "[vvar]", 0, 0 },
	{ 0x7ffe00004000, 0x7ffe00006000, "r-xp", "[vdso]", 4096, 0 },
};

static const enum procfs_kind peak_kinds[] = {
	PROCFS_LIB,  PROCFS_LIB,  PROCFS_LIB,   PROCFS_HEAP,  PROCFS_HEAP, PROCFS_MMAP,   PROCFS_MMAP,
	PROCFS_MMAP, PROCFS_ANON, PROCFS_FILE,  PROCFS_LIB,   PROCFS_LIB,  PROCFS_LIB,    PROCFS_LIB,
	PROCFS_STACK, PROCFS_STACK, PROCFS_HEAP, PROCFS_HEAP, PROCFS_SELF, PROCFS_SELF,   PROCFS_ANON,
	PROCFS_FILE, PROCFS_STACK, PROCFS_KERNEL, PROCFS_KERNEL,
};

static const struct smap exit_maps[] = {
	{ HEAP, HEAP + 0x22000, "rw-p", "[heap]", 8192, 8192 },
	{ MAPS, MAPS + 0x80000, "rw-p", "", 512 * KiB, 512 * KiB },
	{ MAPS + 0xa0000, MAPS + 0x100000, "rw-p", "", 384 * KiB, 384 * KiB },
	{ MAPS + 0x800000, MAPS + 0xc00000, "rw-p", "", 4 * MiB, 4 * MiB },
	{ 0x7ffd00000000, 0x7ffd00021000, "rw-p", "[stack]", 24576, 24576 },
};

/*
 * Thread 0 and 1. Heap (requested/slack):
 *   1000  T0 10 x malloc(1) S_SMALL, slack 23 each, at HEAP+0x10+32i
 *   2000  T0 malloc(16) S_VEC @A1 slack 8; realloc 32 in place; 64 moved; 128 moved
 *         chain 1: 3 reallocs, 2 moves, copied 32 + 64 = 96, ends when freed at 9000
 *   2500  T1 malloc(16) S_VEC @B1 slack 8
 *   2600  T1 realloc-free @B1; T0 malloc(24) S_SMALL (another thread between);
 *         T1 realloc 100 @B2 slack 12: chain 2, copied 16, live at the end
 *   3000  T0 malloc(8) S_VEC, realloc-free, then T1's realloc (not T0's), then
 *         T0 frees T1's block: T0's realloc returned nothing, no chain
 *   5050  T0 malloc(200000) S_BIG @CHUNK+16 slack 688: the peak heap
 *   7000  T0 frees it
 * Mappings (thread 0):
 *   4000 mmap A 1 MiB; 4100 mmap B 2 MiB; 4200 mmap C 3 MiB - 100 (peak: 6 MiB)
 *   4300 munmap B; 4400 mremap C 3 MiB -> 4 MiB, moved; 4500 munmap 128 KiB in A
 *   4600 mmap MAP_FIXED over C's first MiB (S_MAP_B); 4700 sbrk +12 KiB; 4800 brk -8 KiB
 */
static int write_trace(const char *path)
{
	struct trace_writer *w;
	if (trace_writer_open(&w, path, 1) < 0)
		return -1;
	const char *argv[] = { "demo" };
	st_process(w, 77, "/usr/bin/demo", 1, argv);
	st_thread(w, 0, 0, 100);
	st_thread(w, 0, 1, 101);
	st_stack(w, S_MAIN, 0, 0x401000);
	for (uint64_t s = S_VEC; s <= S_BIG; s++)
		st_stack(w, s, S_MAIN, 0x400000 + 0x1000 * s);

	for (uint64_t i = 0; i < 10; i++)
		st_alloc_slack(w, 1000, 0, 1, S_SMALL, 1, HEAP + 0x10 + 32 * i, 23);
	/* chain 1 */
	st_alloc_slack(w, 2000, 0, 1, S_VEC, 16, HEAP + 0x1000, 8);
	st_free(w, 2100, 0, 33, HEAP + 0x1000);
	st_alloc_slack(w, 2100, 0, 3, S_GROW, 32, HEAP + 0x1000, 8);
	st_free(w, 2200, 0, 33, HEAP + 0x1000);
	st_alloc_slack(w, 2200, 0, 3, S_GROW, 64, HEAP + 0x2000, 8);
	st_free(w, 2300, 0, 33, HEAP + 0x2000);
	st_alloc_slack(w, 2300, 0, 4, S_GROW, 128, HEAP + 0x3000, 8);
	/* chain 2, with another thread's event between free and allocation */
	st_alloc_slack(w, 2500, 1, 1, S_VEC, 16, HEAP + 0x5000, 8);
	st_free(w, 2600, 1, 33, HEAP + 0x5000);
	st_alloc_slack(w, 2600, 0, 1, S_SMALL, 24, HEAP + 0x200, 0);
	st_alloc_slack(w, 2600, 1, 3, S_GROW, 100, HEAP + 0x6000, 12);
	/* no chain: T0's realloc-free is followed by T0's free */
	st_alloc_slack(w, 3000, 0, 1, S_VEC, 8, HEAP + 0x8000, 16);
	st_free(w, 3100, 0, 33, HEAP + 0x8000);
	st_alloc_slack(w, 3100, 1, 3, S_GROW, 40, HEAP + 0x7000, 8);
	st_free(w, 3200, 0, 32, HEAP + 0x7000);

	w_map(w, 4000, TR_MAP_MMAP, S_MAP_A, MAPS, 1 * MiB, 0, 0, 0x22);
	w_map(w, 4100, TR_MAP_MMAP, S_MAP_B, MAPS + 0x100000, 2 * MiB, 0, 0, 0x22);
	w_map(w, 4200, TR_MAP_MMAP, S_MAP_C, MAPS + 0x300000, 3 * MiB - 100, 0, 0, 0x22);
	w_map(w, 4300, TR_MAP_MUNMAP, S_MAP_B, MAPS + 0x100000, 2 * MiB, 0, 0, 0);
	w_map(w, 4400, TR_MAP_MREMAP, S_MAP_C, MAPS + 0x800000, 4 * MiB, MAPS + 0x300000, 3 * MiB, 1);
	w_map(w, 4500, TR_MAP_MUNMAP, S_MAP_A, MAPS + 0x80000, 0x20000, 0, 0, 0);
	w_map(w, 4600, TR_MAP_MMAP, S_MAP_B, MAPS + 0x800000, 1 * MiB, 0, 0, 0x32);
	w_map(w, 4700, TR_MAP_SBRK, S_BRK, HEAP + 0x24000, 0, HEAP + 0x21000, 0, 0);
	w_map(w, 4800, TR_MAP_BRK, S_BRK, HEAP + 0x22000, 0, HEAP + 0x24000, 0, 0);

	w_mallinfo(w, 5000, 135168, 200704, 1400);
	st_alloc_slack(w, 5050, 0, 1, S_BIG, 200000, CHUNK + 16, 688);
	st_sample(w, 5100, 7520256);
	w_smaps(w, 5100, TR_SMAPS_PEAK_RSS, peak_maps, sizeof(peak_maps) / sizeof(peak_maps[0]));
	st_free(w, 7000, 0, 32, CHUNK + 16);
	w_mallinfo(w, 7900, 135168, 0, 1000);
	st_exit_mark(w, 8000);
	w_smaps(w, 8100, TR_SMAPS_EXIT, exit_maps, sizeof(exit_maps) / sizeof(exit_maps[0]));
	st_free(w, 9000, 0, 32, HEAP + 0x3000);
	st_end(w, 10000, TRACE_EXITED, 0, 40, 0, 0, 0);
	return trace_writer_close(w) < 0 ? -1 : 0;
}

static const struct model_stack *stack_by_id(const struct model *m, uint64_t id)
{
	for (size_t i = 0; i < m->nstacks; i++)
		if (m->stacks[i].id == id)
			return &m->stacks[i];
	return NULL;
}

static int64_t step_sum(const struct model_waterfall *w, int last)
{
	int64_t s = 0;
	for (int i = 0; i <= last; i++)
		s += w->step[i];
	return s;
}

static char *render(const struct model *m, int json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct report_opts o = { 10, 8, "mem.hst" };
	if (!f)
		return NULL;
	int ret = json ? report_json(f, m, &o) : report_text(f, m, &o);
	fclose(f);
	if (ret) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void test_model(void)
{
	char err[512] = "";
	struct model *m = NULL;
	const char *path = tpath("mem.hst");
	check(write_trace(path) == 0, "write the synthetic trace");
	int ret = model_load(&m, path, err, sizeof(err));
	check(ret == 0, "model_load: %d %s", ret, err);
	if (ret)
		return;
	const struct model_summary *s = &m->sum;
	check(s->complete, "complete");

	/* usable bytes */
	check_u("peak heap", s->peak_heap, 200262);
	check_u("usable at peak", s->peak_usable, 201200);
	check_u("leaked", s->leaked_bytes, 262);
	check_u("leaked usable", s->leaked_usable, 512);
	check_u("live usable at end", s->live_usable, 10 * 24 + 24 + 112);

	/* growth chains */
	check_u("growth sites", m->ngrowth, 1);
	if (m->ngrowth == 1) {
		const struct model_growth *g = &m->growth[0];
		check_u("growth site stack id (first allocation's)", m->stacks[g->stack].id, S_VEC);
		check_u("chains", g->chains, 2);
		check_u("reallocs", g->reallocs, 4);
		check_u("moves", g->moves, 3);
		check_u("longest", g->longest, 3);
		check_u("max bytes", g->max_bytes, 128);
		check_u("copied bytes", g->copied_bytes, 32 + 64 + 16);
		check_u("final bytes", g->final_bytes, 128 + 100);
		check_u("slack bytes", g->slack_bytes, 8 + 12);
	}

	/* the program's mappings */
	check_u("mmap calls", s->map_calls[TR_MAP_MMAP], 4);
	check_u("munmap calls", s->map_calls[TR_MAP_MUNMAP], 2);
	check_u("mremap calls", s->map_calls[TR_MAP_MREMAP], 1);
	check_u("brk calls", s->map_calls[TR_MAP_BRK], 1);
	check_u("sbrk calls", s->map_calls[TR_MAP_SBRK], 1);
	check_u("peak mapped", s->peak_mapped, 6 * MiB);
	check_u("peak mapped time", s->peak_mapped_time_ns, 4200);
	uint64_t at_exit = 896 * KiB + 1 * MiB + 3 * MiB + 4096;
	check_u("leaked mapped", s->leaked_mapped, at_exit);
	check_u("leaked mapped regions", s->leaked_mapped_regions, 5);
	check_u("mapped at end", s->mapped_bytes, at_exit);
	const struct model_stack *a = stack_by_id(m, S_MAP_A), *b = stack_by_id(m, S_MAP_B);
	const struct model_stack *c = stack_by_id(m, S_MAP_C), *k = stack_by_id(m, S_BRK);
	check(a && b && c && k, "every mapping stack has totals");
	if (a && b && c && k) {
		check_u("A at peak", a->mapped_peak, 1 * MiB);
		check_u("B at peak", b->mapped_peak, 2 * MiB);
		check_u("C at peak", c->mapped_peak, 3 * MiB);
		check_u("brk at peak", k->mapped_peak, 0);
		check_u("A leaked", a->mapped_leaked, 896 * KiB);
		check_u("A leaked regions (cut in two)", a->mapped_leaked_regions, 2);
		check_u("B leaked (MAP_FIXED over C)", b->mapped_leaked, 1 * MiB);
		check_u("C leaked", c->mapped_leaked, 3 * MiB);
		check_u("brk leaked", k->mapped_leaked, 4096);
		check_u("C mapped in total", c->mapped_total, 7 * MiB);
		check_u("B map calls", b->map_calls, 3);
		check_u("A allocations (none)", a->allocations, 0);
	}
	size_t idx[8];
	size_t n = model_top_mapped(m, 0, 8, idx);
	check(n == 3 && m->stacks[idx[0]].id == S_MAP_C && m->stacks[idx[1]].id == S_MAP_B &&
		      m->stacks[idx[2]].id == S_MAP_A,
	      "mapped peak ranking: C, B, A (%zu)", n);
	n = model_top_mapped(m, 1, 8, idx);
	check(n == 4 && m->stacks[idx[0]].id == S_MAP_C && m->stacks[idx[3]].id == S_BRK,
	      "mapped leak ranking: C, B, A, brk (%zu)", n);
	check_u("mapped stacks ranked at exit", model_ranked_mapped(m, 1), 4);

	/* allocator samples */
	check(s->mallinfo.present && s->mallinfo.time_ns == 7900 && s->mallinfo.uordblks == 1000,
	      "latest mallinfo is the exit one");
	check_u("mallinfo samples", s->mallinfo_samples, 2);

	/* the peak snapshot */
	const struct model_snapshot *sp = &m->snap[MODEL_AT_PEAK];
	check(sp->present, "peak snapshot present");
	check_u("peak snapshot maps", sp->nmaps, sizeof(peak_maps) / sizeof(peak_maps[0]));
	for (size_t i = 0; i < sp->nmaps && i < sizeof(peak_kinds) / sizeof(peak_kinds[0]); i++)
		check(sp->maps[i].kind == peak_kinds[i], "map %zu %s is %s (got %s)", i, procfs_map_name(&sp->maps[i]),
		      procfs_kind_name(peak_kinds[i]), procfs_kind_name(sp->maps[i].kind));
	check_u("libc .bss owner is libc", sp->maps[13].owner, 10);
	check_u("live requested in the mmapped chunk", sp->map_live[4], 200000);
	check_u("live requested in [heap]", sp->map_live[3], 10 + 24 + 128 + 100);
	check_u("snapshot time", sp->time_ns, 5100);
	check_u("snapshot mapped", sp->mapped, at_exit);
	check(sp->mallinfo.present && sp->mallinfo.time_ns == 5000, "peak snapshot has the 5000 ns mallinfo");

	const struct model_waterfall *w = &sp->w;
	check_i("requested", w->step[MODEL_W_REQUESTED], 200262);
	check_i("rounding", w->step[MODEL_W_USABLE], 938);
	check_i("headers", w->step[MODEL_W_HEADERS], 14 * 8);
	check_i("allocator in use", w->step[MODEL_W_ALLOC_IN_USE], 202104 - 201312);
	check_i("allocator free", w->step[MODEL_W_ALLOC_FREE], 133768);
	/* the program's sbrk'd 4 KiB in [heap] count as its own mapping */
	check_i("not resident", w->step[MODEL_W_NOT_RESIDENT], 225280 - 335872);
	check_i("mmap", w->step[MODEL_W_MMAP], 5111808 + 4096);
	check_i("thread stacks", w->step[MODEL_W_STACKS], 40960);
	check_i("library data", w->step[MODEL_W_LIB_DATA], 32768);
	check_i("file copies", w->step[MODEL_W_FILE_COPIES], 0);
	check_i("heapscope", w->step[MODEL_W_SELF], 0);
	check_i("unexplained (with 8 KiB merged into A)", w->step[MODEL_W_UNEXPLAINED], 12288 + 8192);
	check_i("library files", w->step[MODEL_W_LIB_FILES], 831488);
	check_i("other files", w->step[MODEL_W_FILES], 135168);
	check_i("kernel", w->step[MODEL_W_KERNEL], 4096);
	check_i("heapscope files", w->step[MODEL_W_SELF_FILES], 1114112);
	check_u("usable", w->usable, 201200);
	check_u("chunks", w->chunks, 201312);
	check_u("allocator held", w->allocator_held, 335872);
	check_u("heap RSS", w->heap_rss, 225280);
	check_u("anonymous RSS", w->anon_rss, 5435392);
	check_u("RSS", w->rss, 7520256);
	check_u("unexplained bytes", w->unexplained, 20480);
	check_i("steps to heap RSS", step_sum(w, MODEL_W_NOT_RESIDENT), (int64_t)w->heap_rss);
	check_i("steps to anonymous RSS", step_sum(w, MODEL_W_UNEXPLAINED), (int64_t)w->anon_rss);
	check_i("all steps: RSS", step_sum(w, MODEL_W_STEPS - 1), (int64_t)w->rss);
	check_u("totals: RSS", sp->total.rss, 7520256);
	check_u("program's bytes in A's second part", sp->map_mapped[6], 384 * KiB);
	check_u("program's bytes in [heap] (sbrk)", sp->map_mapped[3], 4096);

	/* groups: heap, mmap, anonymous, stacks, libc, demo, files, kernel, heapscope */
	const char *want[] = { "heap", "mmap", "anonymous", "stacks", "library", "library", "files", "kernel",
			       "heapscope" };
	check_u("groups", sp->ngroups, 9);
	for (size_t i = 0; i < sp->ngroups && i < 9; i++)
		check(!strcmp(procfs_kind_name(sp->groups[i].kind), want[i]), "group %zu is %s", i, want[i]);
	if (sp->ngroups >= 6) {
		check(sp->groups[4].name && !strcmp(sp->groups[4].name, "/usr/lib/libc.so.6"), "libc first (most RSS)");
		check_u("libc group maps (with .bss)", sp->groups[4].t.maps, 4);
		check_u("libc group RSS", sp->groups[4].t.rss, 155648 + 655360 + 16384 + 20480);
	}

	/* the exit snapshot */
	const struct model_snapshot *sx = &m->snap[MODEL_AT_EXIT];
	check(sx->present, "exit snapshot present");
	w = &sx->w;
	check_i("exit requested", w->step[MODEL_W_REQUESTED], 262);
	check_i("exit rounding", w->step[MODEL_W_USABLE], 250);
	check_i("exit headers", w->step[MODEL_W_HEADERS], 104);
	check_i("exit allocator in use", w->step[MODEL_W_ALLOC_IN_USE], 1000 - 616);
	check_i("exit allocator free", w->step[MODEL_W_ALLOC_FREE], 134168);
	check_i("exit not resident", w->step[MODEL_W_NOT_RESIDENT], 8192 - 4096 - 135168);
	check_i("exit mmap", w->step[MODEL_W_MMAP], 5111808 + 4096);
	check_u("exit unexplained", w->unexplained, 0);
	check_i("exit steps: RSS", step_sum(w, MODEL_W_STEPS - 1), (int64_t)w->rss);

	/* outputs */
	char *t = render(m, 0);
	check(t != NULL, "text report renders");
	check_contains("text", t, "WATERFALL");
	check_contains("text", t, "at peak RSS");
	check_contains("text", t, "at exit");
	check_contains("text", t, "requested by the program");
	check_contains("text", t, "unexplained");
	check_contains("text", t, "GROWTH");
	check_contains("text", t, "2 chains, 4 reallocs");
	check_contains("text", t, "reserve capacity up front");
	check_contains("text", t, "[mmap]");
	check_contains("text", t, "mapped by the program");
	free(t);
	char *j = render(m, 1);
	check(j != NULL, "JSON report renders");
	check_contains("JSON", j, "\"waterfall\": {");
	check_contains("JSON", j, "{\"step\": \"requested\", \"bytes\": 200262");
	check_contains("JSON", j, "{\"step\": \"not_resident\", \"bytes\": -110592");
	check_contains("JSON", j, "\"anon_rss_bytes\": 5435392");
	check_contains("JSON", j, "\"rss_bytes\": 7520256");
	check_contains("JSON", j, "\"unexplained_bytes\": 20480");
	check_contains("JSON", j, "\"growth\": [");
	check_contains("JSON", j, "\"chains\": 2, \"reallocs\": 4");
	check_contains("JSON", j, "\"copied_bytes\": 112");
	check_contains("JSON", j, "\"slack_bytes\": 20");
	check_contains("JSON", j, "\"peak_mapped\": [");
	check_contains("JSON", j, "\"kind\": \"mmap\"");
	check_contains("JSON", j, "\"peak_usable_bytes\": 201200");
	free(j);
	model_free(m);
}

/* Live bytes per mapping come from per-page sums when every bound is on a
 * page boundary; a bound inside a page (a damaged trace) must still split
 * that page's blocks between its two mappings. */
static void test_split_page(void)
{
	char err[512] = "";
	struct model *m = NULL;
	const char *path = tpath("split.hst");
	struct trace_writer *w;
	check(trace_writer_open(&w, path, 1) == 0, "write the trace with a mapping bound inside a page");
	st_stack(w, 1, 0, 0x401000);
	st_alloc_slack(w, 100, 0, 1, 1, 100, HEAP + 0x10, 8);
	st_alloc_slack(w, 110, 0, 1, 1, 200, HEAP + 0x900, 8);
	st_alloc_slack(w, 120, 0, 1, 1, 400, HEAP + 0x1010, 8);
	st_alloc_slack(w, 130, 0, 1, 1, 800, HEAP + 0x1fff, 1); /* not 16-byte aligned */
	static const struct smap split[] = { { HEAP, HEAP + 0x800, "rw-p", "[heap]", 4096, 4096 },
					     { HEAP + 0x800, HEAP + 0x2000, "rw-p", "", 4096, 4096 } };
	static const struct smap whole[] = { { HEAP, HEAP + 0x1000, "rw-p", "[heap]", 4096, 4096 },
					     { HEAP + 0x1000, HEAP + 0x2000, "rw-p", "", 4096, 4096 } };
	w_smaps(w, 200, TR_SMAPS_PEAK_RSS, split, 2);
	w_smaps(w, 300, TR_SMAPS_EXIT, whole, 2);
	st_end(w, 400, TRACE_EXITED, 0, 4, 0, 0, 0);
	trace_writer_close(w);
	int ret = model_load(&m, path, err, sizeof(err));
	check(ret == 0, "model_load: %d %s", ret, err);
	if (ret)
		return;
	const struct model_snapshot *a = &m->snap[MODEL_AT_PEAK], *b = &m->snap[MODEL_AT_EXIT];
	check(a->present && a->nmaps == 2 && b->present && b->nmaps == 2, "both snapshots, two mappings each");
	if (a->nmaps == 2 && b->nmaps == 2) {
		check_u("bound inside a page: live bytes below it", a->map_live[0], 100);
		check_u("bound inside a page: live bytes above it", a->map_live[1], 200 + 400 + 800);
		check_u("bounds on pages: first page", b->map_live[0], 100 + 200);
		check_u("bounds on pages: second page", b->map_live[1], 400 + 800);
	}
	check_u("live blocks in the snapshot", b->live_blocks, 4);
	check_u("requested bytes in the snapshot", b->requested, 1500);
	model_free(m);
}

/* A trace without allocator samples nor mappings: the waterfall still adds up. */
static void test_no_mallinfo(void)
{
	char err[512] = "";
	struct model *m = NULL;
	const char *path = tpath("nomi.hst");
	struct trace_writer *w;
	check(trace_writer_open(&w, path, 1) == 0, "write the trace without mallinfo");
	st_stack(w, 1, 0, 0x401000);
	st_alloc_slack(w, 100, 0, 1, 1, 1000, HEAP + 0x10, 8);
	static const struct smap maps[] = { { HEAP, HEAP + 0x21000, "rw-p", "[heap]", 8192, 8192 } };
	w_smaps(w, 200, TR_SMAPS_EXIT, maps, 1);
	st_end(w, 300, TRACE_EXITED, 0, 1, 0, 0, 0);
	trace_writer_close(w);
	int ret = model_load(&m, path, err, sizeof(err));
	check(ret == 0, "model_load: %d %s", ret, err);
	if (ret)
		return;
	const struct model_waterfall *wf = &m->snap[MODEL_AT_EXIT].w;
	check(!m->snap[MODEL_AT_PEAK].present, "no peak snapshot");
	check(!wf->allocator_stats, "no allocator statistics");
	check_i("allocator step (heap RSS - chunks)", wf->step[MODEL_W_ALLOC_FREE], 8192 - 1016);
	check_i("steps: heap RSS", step_sum(wf, MODEL_W_NOT_RESIDENT), 8192);
	model_free(m);
}

/* ---- the smaps parser ------------------------------------------------------ */

static const char captured[] =
	"5574a6352000-5574a6354000 r--p 00000000 fe:00 248056                     /usr/bin/sleep\n"
	"Size:                  8 kB\n"
	"KernelPageSize:        4 kB\n"
	"Rss:                   8 kB\n"
	"Pss:                   8 kB\n"
	"Pss_Dirty:             0 kB\n"
	"Shared_Clean:          0 kB\n"
	"Shared_Dirty:          0 kB\n"
	"Private_Clean:         8 kB\n"
	"Private_Dirty:         0 kB\n"
	"Referenced:            8 kB\n"
	"Anonymous:             0 kB\n"
	"Swap:                  0 kB\n"
	"THPeligible:           0\n"
	"VmFlags: rd mr mw me sd \n"
	"5574d59b3000-5574d59d4000 rw-p 00000000 00:00 0                          [heap]\n"
	"Rss:                  16 kB\n"
	"Shared_Dirty:          4 kB\n"
	"Private_Dirty:        12 kB\n"
	"Anonymous:            16 kB\n"
	"Swap:                  8 kB\n"
	"7fb252883000-7fb252886000 rw-p 00000000 00:00 0 \n"
	"Rss:                   8 kB\n"
	"7fb252a6b000-7fb252a72000 r--s 00000000 fe:00 332280                     /tmp/a dir/with  two spaces.bin (deleted)\n"
	"Rss:                  28 kB\n"
	"7fb252a73000-7fb252a75000 rw-p 00000000 00:00 0                          [anon:glibc: malloc arena]\n"
	"Rss:                   4 kB\n"
	"7ffd72d36000-7ffd72d57000 rw-p 00000000 00:00 0                          [stack]\n"
	"Rss:                  12 kB\n"
	"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
	"Rss:                   0 kB\n";

static void test_parser(void)
{
	struct procfs_maps m = { 0 };
	check(procfs_smaps_parse(&m, captured, sizeof(captured) - 1) == 0, "parse the captured smaps");
	check_u("mappings", m.n, 7);
	check_u("skipped lines", m.skipped, 0);
	if (m.n == 7) {
		check_u("first start", m.v[0].start, 0x5574a6352000ull);
		check_u("first rss", m.v[0].rss, 8192);
		check_u("first private clean", m.v[0].private_clean, 8192);
		check(!strcmp(m.v[0].perms, "r--p") && !strcmp(m.v[0].path, "/usr/bin/sleep"), "first perms and path");
		check_u("heap dirty (shared + private)", procfs_dirty(&m.v[1]), 16384);
		check_u("heap swap", m.v[1].swap, 8192);
		check(!strcmp(m.v[2].path, ""), "anonymous: empty path (trailing space dropped)");
		check(!strcmp(m.v[3].path, "/tmp/a dir/with  two spaces.bin (deleted)"), "path with spaces kept: '%s'",
		      m.v[3].path);
		check(!strcmp(procfs_map_name(&m.v[3]), "with  two spaces.bin (deleted)"), "its name");
		char mode[6];
		check(!strcmp(procfs_mode(&m.v[3], mode), "r--s-"), "shared mode r--s-");
		check(!strcmp(m.v[4].path, "[anon:glibc: malloc arena]"), "named anonymous memory");
		check_u("vsyscall end", m.v[6].end, 0xffffffffff601000ull);
		procfs_classify(m.v, m.n, NULL);
		check(m.v[0].kind == PROCFS_FILE, "a file seen without its code is a file");
		check(m.v[1].kind == PROCFS_HEAP && m.v[2].kind == PROCFS_ANON && m.v[3].kind == PROCFS_FILE &&
			      m.v[4].kind == PROCFS_HEAP && m.v[5].kind == PROCFS_STACK && m.v[6].kind == PROCFS_KERNEL,
		      "kinds: heap, anon, file, glibc arena by name, stack, kernel");
	}
	procfs_maps_free(&m);

	/* damaged input: what parses is kept, the rest is counted */
	static const char bad[] =
		"Rss: 4 kB\n"                                          /* a field before any mapping */
		"1000-2000 rw-p 00000000 00:00 0\n"
		"Rss: 99999999999999999999 kB\n"                       /* overflow: not a field */
		"Pss: 18014398509481984 kB\n"                          /* saturates */
		"2000-1000 rw-p 00000000 00:00 0 [backwards]\n"        /* end before start */
		"3000-4000 rwzp 00000000 00:00 0\n"                    /* bad perms */
		"3000-4000 rw-p 0 00:00 0x [bad inode]\n"
		"fffffffffffffffff-1 rw-p 0 0:0 0\n"                   /* 17 hex digits */
		"garbage line\n"
		"\n"
		"5000-6000 r-xp 00000000 08:01 12 /lib/x.so\n"
		"Rss:                  4 kB";                          /* last line without newline */
	memset(&m, 0, sizeof(m));
	check(procfs_smaps_parse(&m, bad, sizeof(bad) - 1) == 0, "parse damaged smaps");
	check_u("mappings kept", m.n, 2);
	check_u("lines skipped", m.skipped, 6);
	if (m.n == 2) {
		check_u("overflowing Rss left 0", m.v[0].rss, 0);
		check_u("huge Pss saturates", m.v[0].pss, UINT64_MAX);
		check_u("last Rss without newline", m.v[1].rss, 4096);
	}
	procfs_maps_free(&m);

	/* mutations of the captured text: never a crash, always sane results */
	char buf[sizeof(captured)];
	unsigned seed = 12345;
	int sane = 1;
	for (int round = 0; round < 3000; round++) {
		memcpy(buf, captured, sizeof(buf));
		size_t len = sizeof(captured) - 1;
		int edits = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 8;
		for (int e = 0; e < edits; e++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = (seed >> 8) % len;
			static const char pick[] = "0f-: \n\tkB[]x\0\xff";
			buf[at] = pick[(seed >> 20) % (sizeof(pick) - 1)];
		}
		seed = seed * 1103515245u + 12345u;
		if (seed & 0x100)
			len = (seed >> 9) % len; /* cut short */
		memset(&m, 0, sizeof(m));
		if (procfs_smaps_parse(&m, buf, len) < 0) {
			sane = 0;
			break;
		}
		for (size_t i = 0; i < m.n; i++)
			if (m.v[i].end < m.v[i].start || !m.v[i].path || strlen(m.v[i].perms) != 4)
				sane = 0;
		procfs_classify(m.v, m.n, NULL);
		struct procfs_group g[32];
		if (procfs_group(m.v, m.n, g, 32) > m.n + PROCFS_KINDS)
			sane = 0;
		procfs_maps_free(&m);
	}
	check(sane, "3000 mutated inputs parse without harm");

	/* this process: parses, and its totals are what the mappings add up to */
	char err[256];
	memset(&m, 0, sizeof(m));
	int ret = procfs_smaps_read(&m, 0, err, sizeof(err));
	check(ret == 0 && m.n > 5 && m.skipped == 0, "read /proc/self/smaps: %d mappings, %zu skipped (%s)", (int)m.n,
	      m.skipped, ret ? err : "ok");
	procfs_maps_free(&m);
	ret = procfs_smaps_read(&m, 999999999, err, sizeof(err));
	check(ret == -ENOENT && strstr(err, "no such process"), "a process that does not exist: %s", err);
	procfs_maps_free(&m);
}

/* Shapes without names: a glibc arena, a thread stack, .bss. */
static void test_shapes(void)
{
	struct procfs_map v[] = {
		{ .start = 0x100000, .end = 0x101000, .perms = "r-xp", .path = "/bin/x" },
		{ .start = 0x101000, .end = 0x102000, .perms = "rw-p", .path = "/bin/x" },
		{ .start = 0x102000, .end = 0x103000, .perms = "rw-p", .path = "" },           /* .bss */
		{ .start = 0x7f0000000000, .end = 0x7f0000001000, .perms = "---p", .path = "" }, /* guard */
		{ .start = 0x7f0000001000, .end = 0x7f0000801000, .perms = "rw-p", .path = "" }, /* stack */
		{ .start = 0x7f0004000000, .end = 0x7f0008000000, .perms = "rw-p", .path = "" }, /* full arena */
		{ .start = 0x7f0008000000, .end = 0x7f0008001000, .perms = "---p", .path = "" }, /* reserved */
		{ .start = 0x7f0009000000, .end = 0x7f0009001000, .perms = "rw-p", .path = "" },
		{ .start = 0x7f000a000000, .end = 0x7f000a001000, .perms = "rw-p", .path = "/dev/shm/x" },
		{ .start = 0x7f000b000000, .end = 0x7f000b001000, .perms = "r-xp", .path = "/x/libheapscope.so" },
		{ .start = 0x7f000b001000, .end = 0x7f000b002000, .perms = "rw-p", .path = "/x/libheapscope.so" },
		{ .start = 0x7f000b002000, .end = 0x7f000b003000, .perms = "rw-p", .path = "" }, /* its .bss */
	};
	size_t n = sizeof(v) / sizeof(v[0]);
	uint8_t hints[12] = { 0, 0, 0, 0, 0, 0, 0, PROCFS_HINT_MMAP, PROCFS_HINT_MMAP, 0, 0, 0 };
	procfs_classify(v, n, hints);
	static const enum procfs_kind want[] = { PROCFS_LIB,  PROCFS_LIB, PROCFS_LIB,  PROCFS_STACK, PROCFS_STACK,
						 PROCFS_HEAP, PROCFS_ANON, PROCFS_MMAP, PROCFS_MMAP,
						 PROCFS_SELF, PROCFS_SELF, PROCFS_SELF };
	for (size_t i = 0; i < n; i++)
		check(v[i].kind == want[i], "shape %zu is %s (got %s)", i, procfs_kind_name(want[i]),
		      procfs_kind_name(v[i].kind));
	check_u(".bss owner", v[2].owner, 0);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/hs-test-mem-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_model();
	test_no_mallinfo();
	test_split_page();
	test_parser();
	test_shapes();
	if (getenv("HS_KEEP")) {
		fprintf(stderr, "traces kept in %s\n", dir);
	} else {
		unlink(tpath("mem.hst"));
		unlink(tpath("nomi.hst"));
		unlink(tpath("split.hst"));
		rmdir(dir);
	}
	return check_done();
}
