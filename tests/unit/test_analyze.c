/*
 * test_analyze.c: the analysis model on synthetic traces with known numbers,
 * and the text/JSON reports built from it. Each check prints one line; the
 * last line is "N passed, M failed" and the exit status is 1 on any failure.
 */
#include "analyze/model.h"
#include "analyze/model_priv.h"
#include "analyze/model_proc.h"
#include "report/report.h"
#include "common/shm_layout.h"
#include "synth_trace.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char dir[256];

static char *tpath(const char *name)
{
	static char buf[8][512];
	static int k;
	char *p = buf[k++ % 8];
	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

/* ---- a small JSON syntax checker, so the report is known to parse -------- */

static const char *js;

static void ws(void)
{
	while (*js == ' ' || *js == '\n' || *js == '\t' || *js == '\r')
		js++;
}

static int value(int depth);

static int string(void)
{
	if (*js++ != '"')
		return 0;
	while (*js && *js != '"') {
		unsigned char c = (unsigned char)*js++;
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			char e = *js++;
			if (e == 'u') {
				for (int i = 0; i < 4; i++)
					if (!strchr("0123456789abcdefABCDEF", *js++) || !js[-1])
						return 0;
			} else if (!e || !strchr("\"\\/bfnrt", e)) {
				return 0;
			}
		}
	}
	return *js++ == '"';
}

static int value(int depth)
{
	ws();
	if (depth > 64)
		return 0;
	if (*js == '{' || *js == '[') {
		char close = *js == '{' ? '}' : ']';
		int obj = *js == '{';
		js++;
		ws();
		if (*js == close) {
			js++;
			return 1;
		}
		for (;;) {
			if (obj) {
				ws();
				if (!string())
					return 0;
				ws();
				if (*js++ != ':')
					return 0;
			}
			if (!value(depth + 1))
				return 0;
			ws();
			if (*js == ',') {
				js++;
				continue;
			}
			return *js++ == close;
		}
	}
	if (*js == '"')
		return string();
	if (!strncmp(js, "true", 4) || !strncmp(js, "null", 4)) {
		js += 4;
		return 1;
	}
	if (!strncmp(js, "false", 5)) {
		js += 5;
		return 1;
	}
	const char *start = js;
	if (*js == '-')
		js++;
	while ((*js >= '0' && *js <= '9') || *js == '.' || *js == 'e' || *js == 'E' || *js == '+' || *js == '-')
		js++;
	return js > start;
}

static int json_valid(const char *s)
{
	js = s;
	if (!value(0))
		return 0;
	ws();
	return *js == 0;
}

/* ---- rendering into memory ------------------------------------------------- */

static char *render(const struct model *m, int json, size_t top, size_t depth)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct report_opts o = { top, depth, "t.hst" };
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

/* ---- the main synthetic trace ---------------------------------------------- */

enum { S_ROOT = 1, S_BUF = 2, S_WORKER = 3, S_LIBC = 4, S_RAW = 5, S_UNDEF = 77 };

#define IP_MAIN 0x401000ull
#define IP_BUF 0x402000ull
#define IP_WORKER 0x403000ull
#define LIBC_BIAS 0x7f0000000000ull
#define IP_LIBC (LIBC_BIAS + 0x1234)
#define IP_RAW 0x999999ull

/*
 * Two threads (0 and 1); times in ns. Live bytes after each event in [].
 *  1000 T0 malloc  S_BUF   100 @1000  [100]
 *  2000 T0 free    @1000              [0]     temporary (T0's last)
 *  3000 T0 malloc  S_BUF   200 @2000  [200]
 *  4000 T1 calloc  S_WORKER 1000 @3000 [1200]
 *  5000 T0 malloc  S_ROOT   50 @4000  [1250]
 *  6000 T1 free    @2000 (T0's block) [1050]  not temporary
 *  7000 T0 free    @4000              [1000]  temporary
 *  8000 T1 realloc @3000 -> @5000 3000: REALLOC_FREE [0] temporary, REALLOC [3000]
 *  8500 RSS 10,000,000
 *  9000 T0 malloc  S_LIBC  500 @6000  [3500]
 *  9500 T0 malloc  S_UNDEF   7 @7000  [3507]  peak
 * 10000 T1 free    @5000              [507]   temporary
 * 11000 T0 malloc  S_BUF    64 @8000  [571]
 * 11500 RSS 12,000,000 (peak RSS)
 * 12000 T0 free    @9999 (unknown)
 * 12500 T1 malloc  S_RAW     0 @a000  [571]
 * 12600 T1 malloc  stack 0   8 @c000  [579]
 * 12700 T1 free    @c000              [571]   temporary
 * 13000 exit mark: leaked @6000 500, @7000 7, @8000 64, @a000 0 = 571 B in 4 blocks
 * 14000 T0 free    @8000              [507]   temporary (T0 allocated nothing since)
 * 15000 end: exited 0, dropped 3, truncated 1
 */
static int write_main_trace(const char *path)
{
	struct trace_writer *w;
	if (trace_writer_open(&w, path, 1) < 0)
		return -1;
	const char *argv[] = { "demo", "--size", "two words", "tab\there" };
	st_process(w, 4242, "/usr/bin/demo", 4, argv);
	st_module(w, 0, 0, 0x400000, 0x500000, "/usr/bin/demo");
	st_module(w, 1, LIBC_BIAS, LIBC_BIAS, LIBC_BIAS + 0x200000, "/lib/x86_64-linux-gnu/libc.so.6");
	st_thread(w, 0, 0, 100);
	st_thread(w, 0, 1, 101);
	st_stack(w, S_ROOT, 0, IP_MAIN);
	st_stack(w, S_BUF, S_ROOT, IP_BUF);
	st_stack(w, S_WORKER, S_ROOT, IP_WORKER);
	st_stack(w, S_LIBC, S_BUF, IP_LIBC);
	st_stack(w, S_RAW, S_ROOT, IP_RAW);

	st_alloc(w, 1000, 0, HS_EV_MALLOC, S_BUF, 100, 0x1000);
	st_free(w, 2000, 0, HS_EV_FREE, 0x1000);
	st_alloc(w, 3000, 0, HS_EV_MALLOC, S_BUF, 200, 0x2000);
	st_alloc(w, 4000, 1, HS_EV_CALLOC, S_WORKER, 1000, 0x3000);
	st_alloc(w, 5000, 0, HS_EV_MALLOC, S_ROOT, 50, 0x4000);
	st_free(w, 6000, 1, HS_EV_FREE, 0x2000);
	st_free(w, 7000, 0, HS_EV_FREE, 0x4000);
	st_free(w, 8000, 1, HS_EV_REALLOC_FREE, 0x3000);
	st_alloc(w, 8000, 1, HS_EV_REALLOC, S_WORKER, 3000, 0x5000);
	st_sample(w, 8500, 10000000);
	st_alloc(w, 9000, 0, HS_EV_MALLOC, S_LIBC, 500, 0x6000);
	st_alloc(w, 9500, 0, HS_EV_MALLOC, S_UNDEF, 7, 0x7000);
	st_free(w, 10000, 1, HS_EV_FREE, 0x5000);
	st_alloc(w, 11000, 0, HS_EV_MALLOC, S_BUF, 64, 0x8000);
	st_sample(w, 11500, 12000000);
	st_free(w, 12000, 0, HS_EV_FREE, 0x9999);
	st_alloc(w, 12500, 1, HS_EV_MALLOC, S_RAW, 0, 0xa000);
	st_alloc(w, 12600, 1, HS_EV_MALLOC, 0, 8, 0xc000);
	st_free(w, 12700, 1, HS_EV_FREE, 0xc000);
	st_exit_mark(w, 13000);
	st_free(w, 14000, 0, HS_EV_FREE, 0x8000);

	/* symbols, appended at the end as the recorder does */
	st_string(w, 1, "main");
	st_string(w, 2, "/src/demo/main.c");
	st_string(w, 3, "make_buffer");
	st_string(w, 4, "/src/demo/buf.c");
	st_string(w, 5, "grow_inline");
	st_string(w, 6, "/src/demo/grow.h");
	st_string(w, 7, "worker \"quoted\" \\ \x01\xff\xc3\xa9");
	st_string(w, 8, "/src/demo/worker.c");
	struct synth_frame fmain = { 1, 2, 10, 0 };
	struct synth_frame fbuf[2] = { { 5, 6, 7, TRACE_FRAME_INLINED }, { 3, 4, 42, 0 } };
	struct synth_frame fworker = { 7, 8, 20, 0 };
	st_symbol(w, IP_MAIN, 0, IP_MAIN, 1, &fmain);
	st_symbol(w, IP_BUF, 0, IP_BUF, 2, fbuf);
	st_symbol(w, IP_WORKER, 0, IP_WORKER, 1, &fworker);
	st_end(w, 15000, TRACE_EXITED, 0, 30, 3, 1, 0);
	return trace_writer_close(w) < 0 ? -1 : 0;
}

static const struct model_stack *stack_by_id(const struct model *m, uint64_t id)
{
	for (size_t i = 0; i < m->nstacks; i++)
		if (m->stacks[i].id == id)
			return &m->stacks[i];
	return NULL;
}

static size_t index_of(const struct model *m, uint64_t id)
{
	const struct model_stack *s = stack_by_id(m, id);
	return s ? (size_t)(s - m->stacks) : (size_t)-1;
}

static void test_main_trace(void)
{
	char err[512] = "";
	struct model *m = NULL;
	const char *path = tpath("main.hst");
	check(write_main_trace(path) == 0, "write the synthetic trace");
	int ret = model_load(&m, path, err, sizeof(err));
	check(ret == 0, "model_load: %d %s", ret, err);
	if (ret)
		return;
	const struct model_summary *s = &m->sum;
	check(s->complete == 1, "complete");
	check_s("program", s->program, "/usr/bin/demo");
	check_u("argc", s->argc, 4);
	check_s("argv[2]", s->argc > 2 ? s->argv[2] : NULL, "two words");
	check_u("pid", s->pid, 4242);
	check_u("threads", s->threads, 2);
	check_u("allocations", s->allocations, 10);
	check_u("frees", s->frees, 7); /* the unknown free is counted apart */
	check_u("allocated bytes", s->allocated_bytes, 4929);
	check_u("malloc calls", s->by_kind[HS_EV_MALLOC], 8);
	check_u("calloc calls", s->by_kind[HS_EV_CALLOC], 1);
	check_u("realloc calls", s->by_kind[HS_EV_REALLOC], 1);
	check_u("realloc frees", s->by_kind[HS_EV_REALLOC_FREE], 1);
	check_u("temporary", s->temporary, 6);
	check_u("temporary bytes", s->temporary_bytes, 4222);
	check_u("peak heap", s->peak_heap, 3507);
	check_u("peak time", s->peak_time_ns, 9500);
	check_u("peak blocks", s->peak_blocks, 3);
	check_u("peak RSS", s->peak_rss, 12000000);
	check_u("peak RSS time", s->peak_rss_time_ns, 11500);
	check_u("RSS samples", s->rss_samples, 2);
	check_u("leaked bytes", s->leaked_bytes, 571);
	check_u("leaked blocks", s->leaked_blocks, 4);
	check(s->leaks_at_exit, "leaks counted at the exit mark");
	check_u("leak time", s->leak_time_ns, 13000);
	check_u("live bytes at end", s->live_bytes, 507);
	check_u("live blocks at end", s->live_blocks, 3);
	check_u("unknown frees", s->unknown_frees, 1);
	check_u("reused live", s->reused_live, 0);
	check_u("dropped events", s->dropped_events, 3);
	check_u("truncated stacks", s->truncated_stacks, 1);
	check_u("run time", s->run_time_ns, 15000);
	check(s->exit_kind == MODEL_EXITED && s->exit_code == 0, "exited with 0");
	check(s->allocations_per_sec > 666666.0 && s->allocations_per_sec < 666667.0, "calls per second %.1f",
	      s->allocations_per_sec);
	check_u("stacks", m->nstacks, 7);

	const struct model_stack *b = stack_by_id(m, S_BUF), *wk = stack_by_id(m, S_WORKER);
	const struct model_stack *r = stack_by_id(m, S_ROOT), *l = stack_by_id(m, S_LIBC);
	const struct model_stack *u = stack_by_id(m, S_UNDEF), *raw = stack_by_id(m, S_RAW);
	const struct model_stack *none = stack_by_id(m, 0);
	check(b && wk && r && l && u && raw && none, "every allocating stack has totals");
	if (!(b && wk && r && l && u && raw && none))
		goto out;
	check_u("S_BUF allocations", b->allocations, 3);
	check_u("S_BUF bytes", b->allocated_bytes, 364);
	check_u("S_BUF temporary", b->temporary, 2);
	check_u("S_BUF frees", b->frees, 3);
	check_u("S_BUF peak", b->peak_bytes, 0);
	check_u("S_BUF leaked", b->leaked_bytes, 64);
	check_u("S_BUF leaked blocks", b->leaked_blocks, 1);
	check_u("S_BUF live at end", b->live_bytes, 0);
	check_u("S_WORKER allocations", wk->allocations, 2);
	check_u("S_WORKER bytes", wk->allocated_bytes, 4000);
	check_u("S_WORKER temporary", wk->temporary, 2);
	check_u("S_WORKER temporary bytes", wk->temporary_bytes, 4000);
	check_u("S_WORKER peak", wk->peak_bytes, 3000);
	check_u("S_WORKER peak blocks", wk->peak_blocks, 1);
	check_u("S_WORKER leaked", wk->leaked_bytes, 0);
	check_u("S_ROOT temporary", r->temporary, 1);
	check_u("S_ROOT peak", r->peak_bytes, 0);
	check_u("S_LIBC peak", l->peak_bytes, 500);
	check_u("S_LIBC leaked", l->leaked_bytes, 500);
	check_u("S_UNDEF peak", u->peak_bytes, 7);
	check_u("S_UNDEF leaked", u->leaked_bytes, 7);
	check_u("S_RAW leaked blocks (malloc(0))", raw->leaked_blocks, 1);
	check_u("S_RAW peak (after the peak)", raw->peak_bytes, 0);
	check_u("no-stack temporary", none->temporary, 1);

	/* sizes: 0, 7, 8, 50, 64, 100, 200, 500, 1000, 3000 */
	check_u("histogram size 0", m->hist[0].count, 1);
	check_u("histogram 4-7", m->hist[3].count, 1);
	check_u("histogram 8-15", m->hist[4].count, 1);
	check_u("histogram 32-63", m->hist[6].count, 1);
	check_u("histogram 64-127", m->hist[7].count, 2);
	check_u("histogram 64-127 bytes", m->hist[7].bytes, 164);
	check_u("histogram 2048-4095", m->hist[12].count, 1);
	uint64_t lo, hi;
	model_bucket_range(7, &lo, &hi);
	check(lo == 64 && hi == 127, "bucket 7 is [64, 127]");

	/* rankings */
	size_t idx[8];
	size_t n = model_top(m, MODEL_BY_PEAK, 8, idx);
	check(n == 3 && m->stacks[idx[0]].id == S_WORKER && m->stacks[idx[1]].id == S_LIBC &&
		      m->stacks[idx[2]].id == S_UNDEF,
	      "peak ranking: worker, libc, undefined (%zu)", n);
	n = model_top(m, MODEL_BY_ALLOCATIONS, 2, idx);
	check(n == 2 && m->stacks[idx[0]].id == S_BUF && m->stacks[idx[1]].id == S_WORKER,
	      "allocation ranking: top 2 is buf, worker");
	n = model_top(m, MODEL_BY_LEAKED, 0, idx);
	check(n == 4 && m->stacks[idx[0]].id == S_LIBC && m->stacks[idx[1]].id == S_BUF &&
		      m->stacks[idx[2]].id == S_UNDEF && m->stacks[idx[3]].id == S_RAW,
	      "leak ranking: libc 500, buf 64, undefined 7, raw 0 B (%zu)", n);
	check_u("ranked for temporary", model_ranked(m, MODEL_BY_TEMPORARY), 4);

	/* frames */
	struct model_frame f[16];
	char label[128];
	n = model_stack_frames(m, index_of(m, S_LIBC), f, 16);
	check_u("S_LIBC frames", n, 4);
	check(f[0].function == NULL && (f[0].flags & MODEL_FRAME_NO_SYMBOL) && f[0].offset == 0x1234,
	      "leaf without symbol: module offset 0x%" PRIx64, f[0].offset);
	check_s("leaf label", model_frame_label(&f[0], label, sizeof(label)), "libc.so.6+0x1234");
	check_s("frame 1 inlined function", f[1].function, "grow_inline");
	check(f[1].flags & MODEL_FRAME_INLINED, "frame 1 flagged inlined");
	check_u("frame 1 line", f[1].line, 7);
	check_s("frame 2 function", f[2].function, "make_buffer");
	check(!(f[2].flags & MODEL_FRAME_INLINED), "frame 2 not inlined");
	check_s("frame 2 file", f[2].file, "/src/demo/buf.c");
	check_s("frame 2 module", f[2].module, "/usr/bin/demo");
	check_s("frame 3 function", f[3].function, "main");
	n = model_stack_frames(m, index_of(m, S_LIBC), f, 2);
	check(n == 4 && f[1].function && !strcmp(f[1].function, "grow_inline"), "depth-limited walk still counts 4");
	n = model_stack_frames(m, index_of(m, S_RAW), f, 16);
	check(n == 2 && !f[0].module, "raw address without module");
	check_s("raw label", model_frame_label(&f[0], label, sizeof(label)), "0x999999");
	n = model_stack_frames(m, index_of(m, S_UNDEF), f, 16);
	check(n == 1 && (f[0].flags & MODEL_FRAME_UNKNOWN_STACK), "undefined stack id -> one unknown frame");
	check_s("unknown label", model_frame_label(&f[0], label, sizeof(label)), "[unknown stack]");
	n = model_stack_frames(m, index_of(m, 0), f, 16);
	check(n == 1 && (f[0].flags & MODEL_FRAME_NO_STACK), "stack 0 -> no stack");

	/* timeline: bounded, and its maximum is the peak */
	uint64_t tmax = 0, rmax = 0;
	for (size_t i = 0; i < m->ntimeline; i++) {
		tmax = m->timeline[i].heap > tmax ? m->timeline[i].heap : tmax;
		rmax = m->timeline[i].rss > rmax ? m->timeline[i].rss : rmax;
	}
	check(m->ntimeline > 0 && m->ntimeline <= MODEL_TIMELINE_MAX, "timeline has %zu points", m->ntimeline);
	check_u("timeline max heap", tmax, 3507);
	check_u("timeline max rss", rmax, 12000000);

	/* reports */
	char *j = render(m, 1, 20, 0);
	check(j && json_valid(j), "JSON report parses");
	check_contains("JSON", j, "\"allocations\": 10,");
	check_contains("JSON", j, "\"frees\": 7,");
	check_contains("JSON", j, "\"allocated_bytes\": 4929,");
	check_contains("JSON", j, "\"temporary\": 6,");
	check_contains("JSON", j, "\"peak_heap_bytes\": 3507,");
	check_contains("JSON", j, "\"peak_rss_bytes\": 12000000,");
	check_contains("JSON", j, "\"leaked_bytes\": 571,");
	check_contains("JSON", j, "\"leaked_blocks\": 4,");
	check_contains("JSON", j, "\"complete\": true");
	check_contains("JSON", j, "\"exit_code\": 0,");
	check_contains("JSON", j, "\"argv\": [\"demo\", \"--size\", \"two words\", \"tab\\there\"]");
	check_contains("JSON escapes", j, "\"worker \\\"quoted\\\" \\\\ \\u0001\\ufffd\xc3\xa9\"");
	check_contains("JSON peak entry", j, "{\"bytes\": 3000, \"count\": 1, \"stack_id\": 3");
	check_contains("JSON inlined frame", j, "\"function\": \"grow_inline\", \"file\": \"/src/demo/grow.h\", "
					       "\"line\": 7, \"module\": \"/usr/bin/demo\", \"inlined\": true");
	check_contains("JSON histogram", j, "{\"min\": 64, \"max\": 127, \"count\": 2, \"bytes\": 164}");
	free(j);
	j = render(m, 1, 1, 1);
	check(j && json_valid(j), "JSON with --top 1 --depth 1 parses");
	int entries = 0;
	for (const char *q = j; q && (q = strstr(q, "\"stack_id\"")); q++)
		entries++;
	check(entries == 4, "JSON --top 1: one entry in each of the 4 sections (%d)", entries);
	check_contains("JSON --depth 1", j, "\"frames_total\": 2, \"stack\": [\n        {\"function\": \"worker ");
	free(j);

	char *t = render(m, 0, 5, 8);
	check(t != NULL, "text report renders");
	check_contains("text", t, "heapscope report of t.hst");
	check_contains("text", t, "demo --size 'two words' 'tab?here'");
	check_contains("text", t, "exited with status 0");
	check_contains("text", t, "allocation calls");
	check_contains("text", t, "3.4 KiB");
	check_contains("text", t, "3,507 B in 3 blocks at 9.5 us");
	check_contains("text", t, "571 B   in 4 blocks, at exit (after __libc_freeres)");
	check_contains("text", t, "grow_inline [inlined]");
	check_contains("text", t, "libc.so.6+0x1234");
	check_contains("text", t, "[unknown stack]");
	check_contains("text", t, "LEAKS");
	check_contains("text", t, "SIZES");
	check(t && !strstr(t, "INCOMPLETE"), "complete trace: no INCOMPLETE");
	check(t && !strchr(t, '\x01'), "text report has no control characters from names");
	free(t);
out:
	model_free(m);
}

/* ---- edge cases: lost frees, cycles, no process, no end -------------------- */

static void test_edges(void)
{
	char err[512] = "";
	struct model *m = NULL;
	const char *path = tpath("edges.hst");
	struct trace_writer *w;
	check(trace_writer_open(&w, path, 1) == 0, "write the edge trace");
	st_stack(w, 6, 6, 0x1111);          /* a parent cycle must not hang the walk */
	st_alloc(w, 100, 0, HS_EV_MALLOC, 6, 10, 0x100);
	st_alloc(w, 200, 0, HS_EV_MALLOC, 6, 30, 0x100); /* free of the first was lost */
	st_alloc(w, 300, 0, HS_EV_MALLOC, 6, 5, 0);      /* address 0: counted, not kept */
	st_alloc(w, 5000000000ull, 0, HS_EV_MALLOC, 6, 1, 0x200); /* far: the timeline compacts */
	trace_writer_close(w);
	int ret = model_load(&m, path, err, sizeof(err));
	check(ret == 0, "model_load edges: %d %s", ret, err);
	if (ret)
		return;
	check(!m->sum.complete && m->sum.gap == MODEL_GAP_NO_END, "no end record -> incomplete (NO_END)");
	check_contains("reason", m->sum.incomplete_reason, "no end record");
	check(m->sum.program == NULL && m->sum.argc == 0, "no process record");
	check_u("allocations", m->sum.allocations, 4);
	check_u("reused live", m->sum.reused_live, 1);
	check_u("peak", m->sum.peak_heap, 31);
	check_u("leaked (end of trace)", m->sum.leaked_bytes, 31);
	check(!m->sum.leaks_at_exit, "leaks at end of trace, not at exit");
	check(m->ntimeline <= MODEL_TIMELINE_MAX && m->timeline_step_ns > 1024, "timeline compacted: %zu points of %"
	      PRIu64 " ns", m->ntimeline, m->timeline_step_ns);
	struct model_frame f[8];
	size_t n = model_stack_frames(m, 0, f, 8);
	check(n >= 1 && n <= 3, "cyclic stack walk ends (%zu frames)", n);
	char *t = render(m, 0, 5, 8);
	check_contains("text", t, "INCOMPLETE: no end record");
	check_contains("text", t, "exit status unknown");
	free(t);
	t = render(m, 1, 5, 0);
	check(t && json_valid(t), "JSON of an incomplete trace parses");
	check_contains("JSON", t, "\"complete\": false");
	check_contains("JSON", t, "\"exit_code\": null");
	free(t);
	model_free(m);
}

/* ---- random events against a naive reference ------------------------------- */

#define R_EVENTS 20000
#define R_SLOTS 300
#define R_STACKS 40
#define R_THREADS 3

/* The reference keeps every block in a slot array and, at each new peak,
 * copies every stack's live bytes: slow, obviously right. */
struct ref {
	uint64_t addr[R_SLOTS], size[R_SLOTS];
	int stack[R_SLOTS], thread[R_SLOTS];
	uint64_t live[R_STACKS + 1], at_peak[R_STACKS + 1], leaked[R_STACKS + 1], temp[R_STACKS + 1];
	uint64_t last[R_THREADS];
	int has_last[R_THREADS];
	uint64_t total, peak, allocs, frees, temporary, leaked_total;
};

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	return check_rnd(&rnd_state);
}

static void ref_free(struct ref *r, int slot, int thread)
{
	int st = r->stack[slot];
	if (r->thread[slot] == thread && r->has_last[thread] && r->last[thread] == r->addr[slot]) {
		r->temporary++;
		r->temp[st]++;
		r->has_last[thread] = 0;
	}
	r->live[st] -= r->size[slot];
	r->total -= r->size[slot];
	r->addr[slot] = 0;
	r->frees++;
}

static void ref_alloc(struct ref *r, int slot, int thread, int stack, uint64_t size, uint64_t addr)
{
	r->addr[slot] = addr;
	r->size[slot] = size;
	r->stack[slot] = stack;
	r->thread[slot] = thread;
	r->live[stack] += size;
	r->total += size;
	r->last[thread] = addr;
	r->has_last[thread] = 1;
	r->allocs++;
	if (r->total > r->peak) {
		r->peak = r->total;
		memcpy(r->at_peak, r->live, sizeof(r->live));
	}
}

static void test_random(void)
{
	static struct ref r;
	uint64_t next_addr = 0x100000, t = 0;
	char err[512] = "";
	struct model *m = NULL;
	struct trace_writer *w;
	const char *path = tpath("random.hst");
	check(trace_writer_open(&w, path, 1) == 0, "write a random trace");
	for (int i = 1; i <= R_STACKS; i++)
		st_stack(w, (uint64_t)i, (uint64_t)(i > 4 ? i % 4 + 1 : 0), 0x400000 + (uint64_t)i);
	for (int i = 0; i < R_EVENTS; i++) {
		int slot = (int)(rnd() % R_SLOTS), thread = (int)(rnd() % R_THREADS);
		int stack = (int)(rnd() % R_STACKS) + 1;
		uint64_t size = rnd() % 5000;
		t += rnd() % 100;
		if (i == R_EVENTS * 3 / 4) {
			st_exit_mark(w, t);
			memcpy(r.leaked, r.live, sizeof(r.live));
			r.leaked_total = r.total;
		}
		if (!r.addr[slot]) {
			st_alloc(w, t, (uint64_t)thread, HS_EV_MALLOC, (uint64_t)stack, size, next_addr);
			ref_alloc(&r, slot, thread, stack, size, next_addr);
			next_addr += 16;
		} else if (rnd() % 4 == 0) {
			/* realloc by this thread: a free then an allocation */
			st_free(w, t, (uint64_t)thread, HS_EV_REALLOC_FREE, r.addr[slot]);
			ref_free(&r, slot, thread);
			st_alloc(w, t, (uint64_t)thread, HS_EV_REALLOC, (uint64_t)stack, size, next_addr);
			ref_alloc(&r, slot, thread, stack, size, next_addr);
			next_addr += 16;
		} else {
			st_free(w, t, (uint64_t)thread, HS_EV_FREE, r.addr[slot]);
			ref_free(&r, slot, thread);
		}
	}
	st_end(w, t, TRACE_EXITED, 0, 0, 0, 0, 0);
	trace_writer_close(w);

	int ret = model_load(&m, path, err, sizeof(err));
	check(ret == 0 && m->sum.complete, "random trace loads complete");
	if (ret)
		return;
	check_u("random: allocations", m->sum.allocations, r.allocs);
	check_u("random: frees", m->sum.frees, r.frees);
	check_u("random: temporary", m->sum.temporary, r.temporary);
	check_u("random: peak", m->sum.peak_heap, r.peak);
	check_u("random: leaked", m->sum.leaked_bytes, r.leaked_total);
	int bad_peak = 0, bad_leak = 0, bad_temp = 0, bad_live = 0;
	uint64_t sum_peak = 0, sum_peak_blocks = 0, sum_leak = 0;
	for (size_t i = 0; i < m->nstacks; i++) {
		const struct model_stack *st = &m->stacks[i];
		bad_peak += st->peak_bytes != r.at_peak[st->id];
		bad_leak += st->leaked_bytes != r.leaked[st->id];
		bad_temp += st->temporary != r.temp[st->id];
		bad_live += st->live_bytes != r.live[st->id];
		sum_peak += st->peak_bytes;
		sum_peak_blocks += st->peak_blocks;
		sum_leak += st->leaked_bytes;
	}
	check(bad_peak == 0, "random: every stack's peak contribution matches (%d differ)", bad_peak);
	check(bad_leak == 0, "random: every stack's leaked bytes match (%d differ)", bad_leak);
	check(bad_temp == 0, "random: every stack's temporary count matches (%d differ)", bad_temp);
	check(bad_live == 0, "random: every stack's live bytes at the end match (%d differ)", bad_live);
	check_u("random: peak contributions add up to the peak", sum_peak, m->sum.peak_heap);
	check_u("random: peak blocks add up", sum_peak_blocks, m->sum.peak_blocks);
	check_u("random: leaks add up", sum_leak, m->sum.leaked_bytes);
	model_free(m);
}

/* Blocks at few addresses, freed by any thread, some frees lost: the model
 * keeps no thread per block, so a temporary is found through the claims of
 * each thread's latest allocation (model.c). The reference keeps the thread
 * of each block and applies the definition as it reads. */
#define U_EVENTS 60000
#define U_ADDRS 48
#define U_THREADS 6

static void test_reuse(void)
{
	static uint64_t size[U_ADDRS], last[U_THREADS];
	static int live[U_ADDRS], thread[U_ADDRS], stack[U_ADDRS], has_last[U_THREADS];
	static uint64_t temp[R_STACKS + 1], temp_bytes[R_STACKS + 1], stack_live[R_STACKS + 1];
	uint64_t temporary = 0, temporary_bytes = 0, frees = 0, unknown = 0, reused = 0, t = 0;
	char err[512] = "";
	struct model *m = NULL;
	struct trace_writer *w;
	const char *path = tpath("reuse.hst");
	check(trace_writer_open(&w, path, 1) == 0, "write the address-reuse trace");
	for (int i = 1; i <= R_STACKS; i++)
		st_stack(w, (uint64_t)i, 0, 0x400000 + (uint64_t)i);
	for (int i = 0; i < U_EVENTS; i++) {
		/* one thread only at first: the claims start with the second */
		int a = (int)(rnd() % U_ADDRS), th = i < U_EVENTS / 10 ? 0 : (int)(rnd() % U_THREADS);
		uint64_t addr = 0x7f0000001000ull + (uint64_t)a * 48 + (a & 1); /* some not 16-byte aligned */
		t += rnd() % 50;
		if (rnd() % 2) {
			int st = (int)(rnd() % R_STACKS) + 1;
			uint64_t sz = rnd() % 3000;
			st_alloc(w, t, (uint64_t)th, HS_EV_MALLOC, (uint64_t)st, sz, addr);
			if (live[a]) {
				reused++; /* its free was lost */
				stack_live[stack[a]] -= size[a];
			}
			live[a] = 1;
			size[a] = sz;
			thread[a] = th;
			stack[a] = st;
			stack_live[st] += sz;
			last[th] = addr;
			has_last[th] = 1;
		} else {
			st_free(w, t, (uint64_t)th, HS_EV_FREE, addr);
			if (!live[a]) {
				unknown++;
				continue;
			}
			frees++;
			if (thread[a] == th && has_last[th] && last[th] == addr) {
				temporary++;
				temporary_bytes += size[a];
				temp[stack[a]]++;
				temp_bytes[stack[a]] += size[a];
				has_last[th] = 0;
			}
			live[a] = 0;
			stack_live[stack[a]] -= size[a];
		}
	}
	st_end(w, t, TRACE_EXITED, 0, 0, 0, 0, 0);
	trace_writer_close(w);
	int ret = model_load(&m, path, err, sizeof(err));
	check(ret == 0 && m->sum.complete, "address-reuse trace loads complete");
	if (ret)
		return;
	check(temporary > 100 && reused > 100, "the trace has temporaries (%" PRIu64 ") and lost frees (%" PRIu64 ")",
	      temporary, reused);
	check_u("reuse: temporary", m->sum.temporary, temporary);
	check_u("reuse: temporary bytes", m->sum.temporary_bytes, temporary_bytes);
	check_u("reuse: frees", m->sum.frees, frees);
	check_u("reuse: unknown frees", m->sum.unknown_frees, unknown);
	check_u("reuse: allocations at a live address", m->sum.reused_live, reused);
	int bad = 0;
	for (size_t i = 0; i < m->nstacks; i++) {
		const struct model_stack *st = &m->stacks[i];
		bad += st->temporary != temp[st->id] || st->temporary_bytes != temp_bytes[st->id] ||
		       st->live_bytes != stack_live[st->id];
	}
	check(bad == 0, "reuse: every stack's temporaries and live bytes match (%d differ)", bad);
	model_free(m);
}

/* ---- truncated and corrupt files ------------------------------------------- */

#define PER_BLOCK 1000

/* Three blocks of PER_BLOCK allocations each; *ends gets each block's end. */
static int write_blocks(const char *path, uint64_t ends[3])
{
	struct trace_writer *w;
	if (trace_writer_open(&w, path, 1) < 0)
		return -1;
	st_stack(w, 1, 0, 0x1000);
	uint64_t t = 0, a = 0x10000;
	for (int b = 0; b < 3; b++) {
		for (int i = 0; i < PER_BLOCK; i++)
			st_alloc(w, t += 10, 0, HS_EV_MALLOC, 1, 16, a += 16);
		if (b == 2)
			st_end(w, t, TRACE_EXITED, 0, 3 * PER_BLOCK, 0, 0, 0);
		if (trace_writer_flush(w) < 0)
			return -1;
		ends[b] = trace_writer_bytes(w);
	}
	return trace_writer_close(w);
}

static int copy_prefix(const char *from, const char *to, uint64_t len)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	int ok = in && out;
	for (uint64_t i = 0; ok && i < len; i++) {
		int c = getc(in);
		ok = c != EOF && putc(c, out) != EOF;
	}
	if (in)
		fclose(in);
	if (out && fclose(out))
		ok = 0;
	return ok ? 0 : -1;
}

static void test_truncated(void)
{
	uint64_t ends[3];
	char err[512] = "";
	struct model *m = NULL;
	const char *full = tpath("blocks.hst"), *cut = tpath("cut.hst"), *bad = tpath("corrupt.hst");
	check(write_blocks(full, ends) == 0, "write a 3-block trace");

	int ret = model_load(&m, full, err, sizeof(err));
	check(ret == 0 && m->sum.complete && m->sum.allocations == 3 * PER_BLOCK, "whole file: complete, %d allocations",
	      3 * PER_BLOCK);
	model_free(m);
	m = NULL;

	/* cut in the middle of the third block's data */
	check(copy_prefix(full, cut, (ends[1] + ends[2]) / 2) == 0, "cut the trace mid-block");
	ret = model_load(&m, cut, err, sizeof(err));
	check(ret == 0, "truncated trace still loads: %d %s", ret, err);
	if (!ret) {
		check(!m->sum.complete && m->sum.gap == MODEL_GAP_TRUNCATED, "marked incomplete (TRUNCATED)");
		check_u("allocations of the whole blocks", m->sum.allocations, 2 * PER_BLOCK);
		check_u("peak of the whole blocks", m->sum.peak_heap, 2 * PER_BLOCK * 16);
		check_contains("reason", m->sum.incomplete_reason, "truncated at offset");
		check(strncmp(m->sum.incomplete_reason, cut, strlen(cut)) != 0, "reason does not repeat the path");
		char *t = render(m, 0, 5, 8);
		check_contains("text", t, "INCOMPLETE: truncated at offset");
		free(t);
		t = render(m, 1, 5, 0);
		check(t && json_valid(t), "JSON of a truncated trace parses");
		check_contains("JSON", t, "\"incomplete_reason\": \"truncated at offset");
		free(t);
		model_free(m);
		m = NULL;
	}

	/* cut inside a block header */
	check(copy_prefix(full, cut, ends[0] + 3) == 0, "cut the trace inside a block header");
	ret = model_load(&m, cut, err, sizeof(err));
	check(ret == 0 && !m->sum.complete && m->sum.gap == MODEL_GAP_TRUNCATED && m->sum.allocations == PER_BLOCK,
	      "header cut: first block kept, incomplete");
	model_free(m);
	m = NULL;

	/* flip a byte inside the second block's compressed data */
	check(copy_prefix(full, bad, ends[2]) == 0, "copy the trace");
	FILE *f = fopen(bad, "r+b");
	int c = EOF;
	if (f && fseek(f, (long)((ends[0] + ends[1]) / 2), SEEK_SET) == 0)
		c = getc(f);
	if (c != EOF && fseek(f, (long)((ends[0] + ends[1]) / 2), SEEK_SET) == 0)
		putc(c ^ 0x5a, f);
	if (f)
		fclose(f);
	ret = model_load(&m, bad, err, sizeof(err));
	check(ret == 0 && !m->sum.complete && m->sum.gap == MODEL_GAP_CORRUPT,
	      "corrupt block: loads, marked incomplete (CORRUPT)");
	if (!ret) {
		check_u("allocations before the corrupt block", m->sum.allocations, PER_BLOCK);
		check_contains("reason", m->sum.incomplete_reason, "corrupt");
		model_free(m);
	}
}

/* A trace big enough for the reader's read-ahead thread (4 MiB): every
 * record comes back in order, and a cut or a damaged block ends the records
 * after the same whole blocks, with the same error, as read inline. */
#define RA_BLOCKS 12
#define RA_PER_BLOCK 40000

static void ra_record(uint64_t *state, uint64_t i, uint64_t *size, uint64_t *addr)
{
	*size = check_rnd(state) % 100000;
	*addr = (check_rnd(state) & 0x7ffffffffff0ull) | (i & 1);
}

/* Reads path to its end or error: records that match what was written. */
static uint64_t ra_read(const char *path, int *ret, char *err, size_t errlen, uint64_t *bad)
{
	struct trace_reader *r;
	struct trace_record rec;
	uint64_t n = 0, state = 77;
	*bad = 0;
	if ((*ret = trace_reader_open(&r, path, err, errlen)) < 0)
		return 0;
	while ((*ret = trace_reader_next(r, &rec)) > 0) {
		uint64_t size, addr;
		if (rec.type != TR_ALLOC)
			continue;
		ra_record(&state, n, &size, &addr);
		*bad += rec.u.alloc.size != size || rec.u.alloc.addr != addr || rec.time != n + 1;
		n++;
	}
	if (*ret == 0 && trace_reader_next(r, &rec) != 0)
		*ret = 99; /* the end stays the end */
	snprintf(err, errlen, "%s", *ret < 0 ? trace_reader_error(r) : "");
	trace_reader_close(r);
	return n;
}

static void test_read_ahead(void)
{
	uint64_t ends[RA_BLOCKS], state = 77, bad, n;
	char err[512] = "", want[256];
	int ret;
	const char *full = tpath("ahead.hst"), *cut = tpath("ahead-cut.hst");
	struct trace_writer *w;
	check(trace_writer_open(&w, full, 1) == 0, "write a trace of %d blocks", RA_BLOCKS);
	for (uint64_t b = 0, i = 0; b < RA_BLOCKS; b++) {
		for (int k = 0; k < RA_PER_BLOCK; k++, i++) {
			uint64_t size, addr;
			ra_record(&state, i, &size, &addr);
			st_alloc(w, i + 1, 0, HS_EV_MALLOC, 1, size, addr);
		}
		trace_writer_flush(w);
		ends[b] = trace_writer_bytes(w);
	}
	check(trace_writer_close(w) == 0 && ends[RA_BLOCKS - 1] >= (4u << 20),
	      "the trace is %" PRIu64 " bytes: read ahead by a thread", ends[RA_BLOCKS - 1]);

	n = ra_read(full, &ret, err, sizeof(err), &bad);
	check(ret == 0, "read to its end: %d %s", ret, err);
	check_u("records read", n, (uint64_t)RA_BLOCKS * RA_PER_BLOCK);
	check_u("records that differ from what was written", bad, 0);

	/* cut in the middle of block 9: the whole blocks, then the cut */
	check(copy_prefix(full, cut, (ends[8] + ends[9]) / 2) == 0, "cut the big trace in block 9");
	n = ra_read(cut, &ret, err, sizeof(err), &bad);
	check_u("records of the whole blocks", n, 9u * RA_PER_BLOCK);
	snprintf(want, sizeof(want), "truncated at offset %" PRIu64 ":", ends[8]);
	check(ret < 0 && strstr(err, want), "then the cut: %s", err);

	/* a byte flipped in block 5: blocks 0 to 4, then the damage */
	FILE *f = fopen(cut, "r+b");
	int c = EOF;
	long at = (long)(ends[4] + ends[5]) / 2;
	if (f && fseek(f, at, SEEK_SET) == 0)
		c = getc(f);
	if (c != EOF && fseek(f, at, SEEK_SET) == 0)
		putc(c ^ 0x5a, f);
	if (f)
		fclose(f);
	n = ra_read(cut, &ret, err, sizeof(err), &bad);
	check_u("records before the damaged block", n, 5u * RA_PER_BLOCK);
	snprintf(want, sizeof(want), "corrupt block at offset %" PRIu64 ":", ends[4]);
	check(ret < 0 && strstr(err, want), "then the damage: %s", err);
	check_u("records that differ from what was written", bad, 0);

	/* closed after one record: the thread stops */
	struct trace_reader *r;
	struct trace_record rec;
	ret = trace_reader_open(&r, full, err, sizeof(err));
	if (!ret) {
		ret = trace_reader_next(r, &rec);
		trace_reader_close(r);
	}
	check(ret == 1, "a reader closed early returns");
}

static void test_not_a_trace(void)
{
	char err[512] = "";
	struct model *m = NULL;
	const char *path = tpath("text.hst");
	FILE *f = fopen(path, "w");
	if (f) {
		fputs("this is not a heapscope trace, just some text\n", f);
		fclose(f);
	}
	int ret = model_load(&m, path, err, sizeof(err));
	check(ret < 0, "a text file is refused (%d)", ret);
	check_contains("error", err, "not a heapscope trace");

	/* a real trace with its version field changed */
	uint64_t ends[3];
	const char *v = tpath("version.hst");
	write_blocks(v, ends);
	f = fopen(v, "r+b");
	if (f) {
		fseek(f, 8, SEEK_SET);
		putc(TRACE_VERSION + 1, f);
		fclose(f);
	}
	err[0] = 0;
	ret = model_load(&m, v, err, sizeof(err));
	check(ret < 0, "another format version is refused (%d)", ret);
	check_contains("error", err, "version");

	err[0] = 0;
	ret = model_load(&m, tpath("missing.hst"), err, sizeof(err));
	check(ret == -ENOENT, "a missing file gives -ENOENT (%d)", ret);
	check_contains("error", err, "missing.hst");

	/* an empty trace (header only): loads, incomplete, all zero */
	struct trace_writer *w;
	const char *e = tpath("empty.hst");
	if (trace_writer_open(&w, e, 1) == 0)
		trace_writer_close(w);
	ret = model_load(&m, e, err, sizeof(err));
	check(ret == 0 && !m->sum.complete && m->sum.allocations == 0 && m->nstacks == 0,
	      "header-only trace: loads, incomplete, empty");
	if (!ret) {
		char *t = render(m, 0, 5, 8);
		check_contains("text", t, "nothing was allocated");
		free(t);
		t = render(m, 1, 20, 0);
		check(t && json_valid(t), "JSON of an empty trace parses");
		free(t);
		model_free(m);
	}
}

/* ---- formatting helpers ---------------------------------------------------- */

static void test_format(void)
{
	char b[64];
	check_s("bytes 0", report_bytes(b, sizeof(b), 0), "0 B");
	check_s("bytes 1023", report_bytes(b, sizeof(b), 1023), "1023 B");
	check_s("bytes 1024", report_bytes(b, sizeof(b), 1024), "1.0 KiB");
	check_s("bytes 1.5 MiB", report_bytes(b, sizeof(b), 1572864), "1.5 MiB");
	check_s("bytes just under 1 MiB", report_bytes(b, sizeof(b), 1048575), "1.0 MiB");
	check_s("count", report_count(b, sizeof(b), 1234567), "1,234,567");
	check_s("count small", report_count(b, sizeof(b), 12), "12");
	check_s("duration ns", report_duration(b, sizeof(b), 850), "850 ns");
	check_s("duration s", report_duration(b, sizeof(b), 7890000000ull), "7.890 s");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	rjson_string(f, "a\"b\\c\n\x1f\x7f\xe2\x82\xac\xed\xa0\x80\xf0\x9f\x98\x80\xc0\xaf\xe2\x82");
	rjson_string(f, NULL);
	fclose(f);
	check_s("JSON escaping", buf,
		"\"a\\\"b\\\\c\\n\\u001f\\u007f\xe2\x82\xac\\ufffd\\ufffd\\ufffd\xf0\x9f\x98\x80\\ufffd\\ufffd\\ufffd\\ufffd\"null");
	free(buf);
}

/* A TR_MAP whose fd+1 no int can hold: the record is corrupt (it was
 * undefined behaviour in the reader: (int64_t)2^63 - 1). */
static void test_map_fd(void)
{
	char err[512] = "";
	struct model *m = NULL;
	const char *path = tpath("mapfd.hst");
	struct trace_writer *w;
	check(trace_writer_open(&w, path, 1) == 0, "write the map trace");
	st_alloc(w, 10, 0, HS_EV_MALLOC, 1, 10, 0x100);
	tw_begin(w, TR_MAP);
	tw_time(w, 20);
	for (int i = 0; i < 9; i++) /* thread, kind ... flags */
		tw_u(w, 0);
	tw_u(w, 1ull << 63);
	tw_end(w);
	trace_writer_close(w);
	int ret = model_load(&m, path, err, sizeof(err));
	check(ret == 0 && !m->sum.complete && m->sum.gap == MODEL_GAP_CORRUPT, "fd+1 2^63: loads, marked incomplete (CORRUPT)");
	if (!ret) {
		check_u("allocations before it", m->sum.allocations, 1);
		check_contains("reason", m->sum.incomplete_reason, "corrupt map record: fd+1 9223372036854775808");
		model_free(m);
	}
}

/* Ids far apart, as a damaged or hostile trace may name them: the model's
 * tables hold what the trace has (3 processes, 3 threads, 1 stack), not
 * every index up to the largest, and the processes come out in index order
 * though named out of it. */
static void test_sparse_ids(void)
{
	char err[512] = "";
	struct model *m = NULL;
	const char *path = tpath("sparse.hst");
	struct trace_writer *w;
	static const char *const argv[] = { "prog" };
	check(trace_writer_open(&w, path, 1) == 0, "write the sparse trace");
	st_process_n(w, 0, 100, 0, TR_PROC_ROOT, 0, 0, "/bin/prog", 1, argv);
	st_process_n(w, 900000, 200, 1, TR_PROC_FORK, 0, 50, "/bin/prog", 1, argv);
	st_process_n(w, 7, 300, 1, TR_PROC_SPAWN, 0, 60, "/bin/other", 1, argv);
	st_stack(w, 3000000, 0, 0x1234);
	st_thread_of(w, 10, 0, 100, 0);
	st_alloc(w, 10, 0, HS_EV_MALLOC, 3000000, 10, 0x100);
	st_thread_of(w, 20, 5000000, 200, 900000);
	st_alloc(w, 20, 5000000, HS_EV_MALLOC, 3000000, 20, 0x100); /* same address, other process */
	st_thread_of(w, 30, 3, 300, 7);
	st_alloc(w, 30, 3, HS_EV_MALLOC, 3000000, 40, 0x200);
	st_free(w, 40, 5000000, HS_EV_FREE, 0x100);
	st_end(w, 50, 0, 0, 4, 0, 0, 0);
	trace_writer_close(w);
	int ret = model_load(&m, path, err, sizeof(err));
	check(ret == 0, "model_load sparse: %d %s", ret, err);
	if (ret)
		return;
	size_t n;
	const struct model_process *v = model_processes(m, &n);
	check_u("processes listed", n, 3);
	if (n == 3) {
		check_u("process 1 index", v[1].index, 7);
		check_u("process 2 index", v[2].index, 900000);
		check_u("pids", v[0].pid * 1000000 + v[1].pid * 1000 + v[2].pid, 100300200);
		check_u("threads", v[0].threads * 100 + v[1].threads * 10 + v[2].threads, 111);
		check_u("index 900000: allocations, frees, live", v[2].allocations * 100 + v[2].frees * 10 + v[2].live_blocks,
			110);
		check_u("index 7: allocated bytes", v[1].allocated_bytes, 40);
		check_u("index 0: leaked bytes", v[0].leaked_bytes, 10);
		check_i("index 900000: parent", v[2].parent, 0);
	}
	const struct model_process *p = model_process_at(m, 900000);
	check_u("model_process_at(900000) pid", p ? p->pid : 0, 200);
	check(model_process_at(m, 8) == NULL, "model_process_at(8): never named");
	check_u("allocations", m->sum.allocations, 3);
	check_u("frees", m->sum.frees, 1);
	check_u("stacks", m->nstacks, 1);
	check_u("stack id", m->nstacks ? m->stacks[0].id : 0, 3000000);
	/* one id of 3 000 000 goes to the hash, not into a 3-million-slot array */
	check_u("stack id table: direct slots", m->priv->stack_ids.dense_cap, 0);
	model_free(m);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/hs-test-analyze-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_main_trace();
	test_edges();
	test_random();
	test_reuse();
	test_truncated();
	test_read_ahead();
	test_not_a_trace();
	test_format();
	test_sparse_ids();
	test_map_fd();

	const char *names[] = { "main.hst", "edges.hst", "blocks.hst", "cut.hst", "corrupt.hst",
				"text.hst", "version.hst", "empty.hst", "random.hst", "sparse.hst", "mapfd.hst",
				"reuse.hst", "ahead.hst", "ahead-cut.hst" };
	/* HS_KEEP=1 keeps the traces, to look at them with 'heapscope report' */
	if (getenv("HS_KEEP")) {
		fprintf(stderr, "traces kept in %s\n", dir);
	} else {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			unlink(tpath(names[i]));
		rmdir(dir);
	}
	return check_done();
}
