/*
 * report_text.c: the terminal report. A summary, then the stacks that held
 * the most at the peak, allocated most often, made the most temporary
 * allocations and leaked the most, then the sizes. Reads the model only.
 */
#include "report/report.h"
#include "report/report_proc.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES_CAP 4096   /* deeper stacks are cut and say so */
#define FUNC_COL_MAX 48   /* function column width; a longer name puts its location below */
#define BAR_WIDTH 32

static void put_safe(FILE *out, const char *s)
{
	report_put_text(out, s);
}

/* An argument as a shell would need it: bare when safe, else single-quoted. */
static void put_arg(FILE *out, const char *a)
{
	if (*a && strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") ==
			  strlen(a)) {
		put_safe(out, a);
		return;
	}
	/* inside single quotes only the quote itself needs care */
	putc('\'', out);
	for (const char *q; (q = strchr(a, '\'')); a = q + 1) {
		report_put_textn(out, a, (size_t)(q - a));
		fputs("'\\''", out);
	}
	put_safe(out, a);
	putc('\'', out);
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* A long path keeps its last three components: the ones that identify it. */
static const char *short_path(const char *p)
{
	size_t n = strlen(p);
	if (n <= 60)
		return p;
	const char *s = p + n;
	for (int slashes = 0; s > p; s--)
		if (s[-1] == '/' && ++slashes == 3)
			break;
	return s > p ? s : p;
}

static void location(char *buf, size_t len, const struct model_frame *f)
{
	buf[0] = 0;
	if (f->file && f->line)
		snprintf(buf, len, "%s%s:%" PRIu32, short_path(f->file) == f->file ? "" : ".../",
			 short_path(f->file), f->line);
	else if (f->file)
		snprintf(buf, len, "%s%s", short_path(f->file) == f->file ? "" : ".../", short_path(f->file));
	else if (f->module && f->function) {
		const char *b = strrchr(f->module, '/');
		snprintf(buf, len, "in %s", b ? b + 1 : f->module);
	}
}

/* C++ names spell std::string out in full; the text shows the short form
 * (JSON keeps the names as the trace has them). */
static const struct {
	const char *from, *to;
} cxx_short[] = {
	{ "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >", "std::string" },
	{ "std::basic_string<char, std::char_traits<char>, std::allocator<char> >", "std::string" },
	{ "std::__cxx11::", "std::" },
};

static const char *display_name(const char *name, char *buf, size_t len)
{
	size_t o = 0;
	if (!strchr(name, ':'))
		return name;
	while (*name && o + 1 < len) {
		size_t k;
		for (k = 0; k < sizeof(cxx_short) / sizeof(cxx_short[0]); k++) {
			size_t n = strlen(cxx_short[k].from);
			if (!strncmp(name, cxx_short[k].from, n)) {
				size_t t = strlen(cxx_short[k].to);
				if (o + t + 1 > len)
					t = len - o - 1;
				memcpy(buf + o, cxx_short[k].to, t);
				o += t;
				name += n;
				break;
			}
		}
		if (k < sizeof(cxx_short) / sizeof(cxx_short[0]))
			continue;
		/* "vector<string> >" -> "vector<string>>": the space is C++98 spelling */
		if (!(*name == ' ' && name[1] == '>'))
			buf[o++] = *name;
		name++;
	}
	buf[o] = 0;
	return buf;
}

/* The frame's name as the text shows it, and its width in characters. */
static const char *frame_name(const struct model_frame *f, char *label, size_t llen, char *name, size_t nlen,
			      size_t *width)
{
	const char *l = model_frame_label(f, label, llen);
	if (f->function)
		l = display_name(l, name, nlen);
	*width = report_put_text(NULL, l) + ((f->flags & MODEL_FRAME_INLINED) ? strlen(" [inlined]") : 0);
	return l;
}

/* Code the user did not write: another object than the program, or
 * library source compiled into it (Rust's std, C++ headers, crates). */
static int library_frame(const struct model *m, const struct model_frame *f)
{
	static const char *const lib_dirs[] = { "/rustc/", "/.cargo/registry/", "/usr/include/", "/usr/lib/" };
	struct model_module exe;
	/* the trace names the executable first, as the loader saw it: the
	 * command line may have named it another way ("dir/../prog") */
	const char *program = model_modules(m, &exe, 1) && exe.path ? exe.path : m->sum.program;
	if (!f->module || !program || strcmp(f->module, program))
		return 1;
	if (!f->file)
		return 0;
	for (size_t i = 0; i < sizeof(lib_dirs) / sizeof(lib_dirs[0]); i++)
		if (!strncmp(f->file, lib_dirs[i], strlen(lib_dirs[i])) || strstr(f->file, lib_dirs[i]))
			return 1;
	return 0;
}

/*
 * When a stack is deeper than --depth and starts with library frames (the
 * allocator, Vec's growth, std::string), keep the first one, fold the rest
 * into one line and spend the depth on the program's own frames: that is
 * where the user can change something.
 */
static size_t fold_library(const struct model *m, struct model_frame *frames, size_t n, size_t depth,
			   size_t *folded)
{
	size_t own = 0;
	*folded = 0;
	if (!depth || n <= depth)
		return 0;
	while (own < n && library_frame(m, &frames[own]))
		own++;
	if (own < 2 || own == n)
		return 0;
	*folded = own - 1;
	return 1;
}

static void put_stack(FILE *out, const struct model *m, size_t idx, size_t depth, struct model_frame *frames)
{
	char label[256], name[4096], loc[512];
	size_t total = model_stack_frames(m, idx, frames, FRAMES_CAP);
	size_t n = total < FRAMES_CAP ? total : FRAMES_CAP;
	size_t width = 0, w, folded = 0;
	/* What runs main (__libc_start_main, _start) is the same in every
	 * stack: the text stops at main; JSON keeps every frame. */
	for (size_t i = 0; i < n; i++) {
		if (frames[i].function && !strcmp(frames[i].function, "main") &&
		    !(frames[i].flags & MODEL_FRAME_INLINED)) {
			total = n = i + 1;
			break;
		}
	}
	if (fold_library(m, frames, n, depth, &folded)) {
		memmove(frames + 1, frames + 1 + folded, (n - 1 - folded) * sizeof(*frames));
		n -= folded;
	}
	size_t shown_total = n;
	if (depth && n > depth)
		n = depth;
	/* names up to FUNC_COL_MAX set the column; longer ones put their
	 * location on the next line */
	for (size_t i = 0; i < n; i++) {
		frame_name(&frames[i], label, sizeof(label), name, sizeof(name), &w);
		if (w <= FUNC_COL_MAX && w > width)
			width = w;
	}
	for (size_t i = 0; i < n; i++) {
		const struct model_frame *f = &frames[i];
		const char *l = frame_name(f, label, sizeof(label), name, sizeof(name), &w);
		if (i == 1 && folded)
			fprintf(out, "        ... %zu library %s (--depth 0 shows them)\n", folded,
				plural(folded, "frame", "frames"));
		fputs("        ", out);
		report_put_text(out, l);
		if (f->flags & MODEL_FRAME_INLINED)
			fputs(" [inlined]", out);
		location(loc, sizeof(loc), f);
		if (loc[0] && w > FUNC_COL_MAX)
			fputs("\n            ", out);
		else if (loc[0])
			fprintf(out, "%*s  ", (int)(width - w), "");
		put_safe(out, loc);
		putc('\n', out);
	}
	if (shown_total > n)
		fprintf(out, "        ... %zu more %s (--depth %zu shows them)\n", shown_total - n,
			plural(shown_total - n, "frame", "frames"), total);
}

static void heading(FILE *out, const char *name, const char *what)
{
	fprintf(out, "\n%s%s%s\n", name, *what ? "  " : "", what);
}

/* "  (3,000 B)" when the human unit rounds, nothing when it is exact already. */
static const char *exact(char *buf, size_t len, uint64_t bytes)
{
	char n[32];
	if (bytes < 1024)
		buf[0] = 0;
	else
		snprintf(buf, len, "  (%s B)", report_count(n, sizeof(n), bytes));
	return buf;
}

/* "3,000 B " for a summary row's detail, when the unit rounds. */
static const char *exact_lead(char *buf, size_t len, uint64_t bytes)
{
	char n[32];
	if (bytes < 1024)
		buf[0] = 0;
	else
		snprintf(buf, len, "%s B ", report_count(n, sizeof(n), bytes));
	return buf;
}

static void put_entry(FILE *out, const struct model *m, enum model_key key, size_t rank, size_t idx)
{
	const struct model_stack *s = &m->stacks[idx];
	char a[32], b[32], c[32];
	switch (key) {
	case MODEL_BY_PEAK:
		fprintf(out, "  #%-3zu %10s  %5.1f%% of peak  in %s %s%s\n", rank,
			report_bytes(a, sizeof(a), s->peak_bytes), pct(s->peak_bytes, m->sum.peak_heap),
			report_count(b, sizeof(b), s->peak_blocks), plural(s->peak_blocks, "block", "blocks"),
			exact(c, sizeof(c), s->peak_bytes));
		break;
	case MODEL_BY_TEMPORARY:
		fprintf(out, "  #%-3zu %10s  %5.1f%% of its %s %s, %s\n", rank,
			report_count(a, sizeof(a), s->temporary), pct(s->temporary, s->allocations),
			report_count(b, sizeof(b), s->allocations), plural(s->allocations, "call", "calls"),
			report_bytes(c, sizeof(c), s->temporary_bytes));
		break;
	case MODEL_BY_LEAKED:
		fprintf(out, "  #%-3zu %10s  in %s %s%s\n", rank, report_bytes(a, sizeof(a), s->leaked_bytes),
			report_count(b, sizeof(b), s->leaked_blocks), plural(s->leaked_blocks, "block", "blocks"),
			exact(c, sizeof(c), s->leaked_bytes));
		break;
	default:
		fprintf(out, "  #%-3zu %10s  %5.1f%% of calls  %s in total, %s at peak\n", rank,
			report_count(a, sizeof(a), s->allocations), pct(s->allocations, m->sum.allocations),
			report_bytes(b, sizeof(b), s->allocated_bytes), report_bytes(c, sizeof(c), s->peak_bytes));
		break;
	}
}

static int section(FILE *out, const struct model *m, const struct report_opts *o, enum model_key key,
		   const char *name, const char *what, const char *none, struct model_frame *frames)
{
	size_t ranked = model_ranked(m, key);
	size_t want = o->top && o->top < ranked ? o->top : ranked;
	heading(out, name, what);
	if (!ranked) {
		fprintf(out, "  %s\n", none);
		return 0;
	}
	size_t *idx = malloc(want * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	size_t n = model_top(m, key, want, idx);
	for (size_t i = 0; i < n; i++) {
		if (i)
			putc('\n', out);
		put_entry(out, m, key, i + 1, idx[i]);
		put_stack(out, m, idx[i], o->depth, frames);
	}
	if (ranked > n) {
		char more[32];
		fprintf(out, "  ... %s more %s (--top N shows more)\n", report_count(more, sizeof(more), ranked - n),
			plural(ranked - n, "stack", "stacks"));
	}
	free(idx);
	return 0;
}

static void row(FILE *out, const char *label, const char *value, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void row(FILE *out, const char *label, const char *value, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	for (size_t n = strlen(detail); n && detail[n - 1] == ' ';)
		detail[--n] = 0;
	fprintf(out, "  %-22s %12s%s%s\n", label, value, detail[0] ? "   " : "", detail);
}

static void header(FILE *out, const struct model *m, const struct report_opts *o)
{
	const struct model_summary *s = &m->sum;
	char a[64];
	fputs("heapscope report", out);
	if (o->trace) {
		fputs(" of ", out);
		put_safe(out, o->trace);
	}
	putc('\n', out);
	fputs("  program    ", out);
	if (s->argc) {
		for (uint32_t i = 0; i < s->argc; i++) {
			if (i)
				putc(' ', out);
			put_arg(out, s->argv[i]);
		}
	} else {
		put_safe(out, s->program ? s->program : "(unknown: the trace has no process record)");
	}
	putc('\n', out);
	if (s->program && s->argc && strcmp(s->program, s->argv[0])) {
		fputs("  binary     ", out);
		put_safe(out, s->program);
		putc('\n', out);
	}
	if (s->pid)
		fprintf(out, "  process    pid %" PRIu64 ", ", s->pid);
	else
		fputs("  process    pid unknown, ", out);
	fprintf(out, "%" PRIu64 " %s, %zu %s\n", s->threads, plural(s->threads, "thread", "threads"), m->nstacks,
		plural(m->nstacks, "stack", "stacks"));
	fprintf(out, "  run time   %s, ", report_duration(a, sizeof(a), s->run_time_ns));
	if (!s->has_end || s->exit_kind == MODEL_EXIT_UNKNOWN)
		fputs("exit status unknown\n", out);
	else if (s->exit_kind == MODEL_EXITED)
		fprintf(out, "exited with status %" PRIu64 "\n", s->exit_code);
	else {
		const char *sig = s->exit_code < 128 ? sigabbrev_np((int)s->exit_code) : NULL;
		fprintf(out, "killed by signal %" PRIu64 "%s%s%s\n", s->exit_code, sig ? " (SIG" : "", sig ? sig : "",
			sig ? ")" : "");
	}
	if (!s->complete) {
		fputs("\n  INCOMPLETE: ", out);
		put_safe(out, s->incomplete_reason);
		fputs("\n  The numbers cover what was recorded up to that point.\n", out);
	}
}

/* ---- memory beyond the heap: mappings, growth chains, the waterfall ------ */

/* "-12.0 KiB" for a negative step, report_bytes() otherwise. */
static const char *signed_bytes(char *buf, size_t len, int64_t v)
{
	char b[32];
	uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	snprintf(buf, len, "%s%s", v < 0 ? "-" : "", report_bytes(b, sizeof(b), mag));
	return buf;
}

static void mem_summary(FILE *out, const struct model *m)
{
	const struct model_summary *s = &m->sum;
	char a[64], b[64], c[64], d[64], calls_by_kind[160];
	uint64_t calls = 0;
	for (unsigned k = 0; k < MODEL_MAP_KINDS; k++)
		calls += s->map_calls[k];
	if (calls) {
		/* TR_MAP kinds: 1 mmap, 2 munmap, 3 mremap, 4 brk, 5 sbrk */
		snprintf(calls_by_kind, sizeof(calls_by_kind), "mmap %s, munmap %s, mremap %s, brk/sbrk %s",
			 report_count(a, sizeof(a), s->map_calls[1]), report_count(b, sizeof(b), s->map_calls[2]),
			 report_count(c, sizeof(c), s->map_calls[3]),
			 report_count(d, sizeof(d), s->map_calls[4] + s->map_calls[5]));
		row(out, "mapped by the program", report_bytes(a, sizeof(a), s->peak_mapped),
		    "at most, at %s; %s in %s %s %s (%s)", report_duration(b, sizeof(b), s->peak_mapped_time_ns),
		    report_bytes(c, sizeof(c), s->leaked_mapped), report_count(d, sizeof(d), s->leaked_mapped_regions),
		    plural(s->leaked_mapped_regions, "region", "regions"), s->leaks_at_exit ? "at exit" : "at the end",
		    calls_by_kind);
	}
	if (s->mallinfo.present) {
		const struct model_mallinfo *mi = &s->mallinfo;
		row(out, "allocator holds", report_bytes(a, sizeof(a), mi->arena + mi->hblkhd),
		    "%s in use, %s free, at %s (mallinfo2, the last of %" PRIu64 ")",
		    report_bytes(b, sizeof(b), mi->uordblks + mi->hblkhd), report_bytes(c, sizeof(c), mi->fordblks),
		    report_duration(d, sizeof(d), mi->time_ns), s->mallinfo_samples);
	}
}

/* The program's own mappings, under PEAK (leaked == 0) or LEAKS (leaked == 1). */
static int mapped_list(FILE *out, const struct model *m, const struct report_opts *o, int leaked,
		       struct model_frame *frames)
{
	const struct model_summary *s = &m->sum;
	size_t ranked = model_ranked_mapped(m, leaked);
	size_t want = o->top && o->top < ranked ? o->top : ranked;
	char a[32], b[32], c[32];
	if (!ranked)
		return 0;
	if (leaked)
		fprintf(out, "\n  mapped by the program and not unmapped %s (%s), apart from the heap:\n",
			s->leaks_at_exit ? "at exit" : "when the trace ended",
			report_bytes(a, sizeof(a), s->leaked_mapped));
	else
		fprintf(out, "\n  mapped by the program at the peak of its mappings (%s at %s), apart from the heap:\n",
			report_bytes(a, sizeof(a), s->peak_mapped), report_duration(b, sizeof(b), s->peak_mapped_time_ns));
	size_t *idx = malloc(want * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	size_t n = model_top_mapped(m, leaked, want, idx);
	for (size_t i = 0; i < n; i++) {
		const struct model_stack *st = &m->stacks[idx[i]];
		uint64_t bytes = leaked ? st->mapped_leaked : st->mapped_peak;
		uint64_t regions = leaked ? st->mapped_leaked_regions : st->mapped_peak_regions;
		uint64_t whole = leaked ? s->leaked_mapped : s->peak_mapped;
		if (i)
			putc('\n', out);
		fprintf(out, "  #%-3zu %10s  %5.1f%% of mapped  in %s %s [mmap]%s\n", i + 1,
			report_bytes(a, sizeof(a), bytes), pct(bytes, whole), report_count(b, sizeof(b), regions),
			plural(regions, "region", "regions"), exact(c, sizeof(c), bytes));
		put_stack(out, m, idx[i], o->depth, frames);
	}
	if (ranked > n)
		fprintf(out, "  ... %s more [mmap] %s (--top N shows more)\n", report_count(a, sizeof(a), ranked - n),
			plural(ranked - n, "stack", "stacks"));
	free(idx);
	return 0;
}

static int growth(FILE *out, const struct model *m, const struct report_opts *o, struct model_frame *frames)
{
	size_t want = o->top && o->top < m->ngrowth ? o->top : m->ngrowth;
	char a[32], b[32], c[32], d[32], e[32], f[48], g_slack[32];
	heading(out, "GROWTH", "blocks grown by repeated realloc (Vec, std::vector, String), by first allocation");
	if (!m->ngrowth) {
		fputs("  no block was grown by realloc\n", out);
		return 0;
	}
	for (size_t i = 0; i < want; i++) {
		const struct model_growth *g = &m->growth[i];
		if (i)
			putc('\n', out);
		fprintf(out, "  #%-3zu %s %s, %s %s, %s moved: %s copied; largest %s%s, slack at the end %s\n", i + 1,
			report_count(a, sizeof(a), g->chains), plural(g->chains, "chain", "chains"),
			report_count(b, sizeof(b), g->reallocs), plural(g->reallocs, "realloc", "reallocs"),
			report_count(c, sizeof(c), g->moves), report_bytes(d, sizeof(d), g->copied_bytes),
			report_bytes(e, sizeof(e), g->max_bytes), exact(f, sizeof(f), g->max_bytes),
			report_bytes(g_slack, sizeof(g_slack), g->slack_bytes));
		fprintf(out, "        hint: reserve capacity up front (with_capacity, reserve): the longest chain "
			     "grew %" PRIu64 " %s, up to %s\n",
			g->longest, plural(g->longest, "time", "times"), report_bytes(a, sizeof(a), g->max_bytes));
		put_stack(out, m, g->stack, o->depth, frames);
	}
	if (m->ngrowth > want)
		fprintf(out, "  ... %s more (--top N shows more)\n", report_count(a, sizeof(a), m->ngrowth - want));
	return 0;
}

/* The words of each step; a step that can go either way has two. */
static const char *wstep_label(const struct model_waterfall *w, enum model_wstep k, int64_t v)
{
	switch (k) {
	case MODEL_W_REQUESTED: return "requested by the program";
	case MODEL_W_USABLE: return "+ rounding up to the usable size";
	case MODEL_W_HEADERS: return "+ chunk headers, 8 B per block";
	case MODEL_W_ALLOC_IN_USE:
		return v < 0 ? "- live blocks the allocator's sample misses" : "+ in use by the allocator, not live";
	case MODEL_W_ALLOC_FREE:
		return w->allocator_stats ? "+ free memory the allocator holds"
					  : "+ allocator overhead and free memory, resident";
	case MODEL_W_NOT_RESIDENT:
		return v < 0 ? "- held but not resident" : "+ heap pages beyond what the allocator holds";
	case MODEL_W_MMAP: return "+ the program's own mappings";
	case MODEL_W_STACKS: return "+ thread stacks";
	case MODEL_W_LIB_DATA: return "+ libraries' written data and .bss";
	case MODEL_W_FILE_COPIES: return "+ private copies of other files' pages";
	case MODEL_W_SELF: return "+ heapscope's own anonymous memory";
	case MODEL_W_UNEXPLAINED: return "+ unexplained anonymous memory";
	case MODEL_W_LIB_FILES: return "+ libraries' code and read-only data";
	case MODEL_W_FILES: return "+ other files";
	case MODEL_W_MMAP_FILES: return "+ the program's file and shared mappings";
	case MODEL_W_KERNEL: return "+ kernel pages ([vdso])";
	case MODEL_W_SELF_FILES: return "+ heapscope's library and shared buffers";
	case MODEL_W_UNEXPLAINED_SHARED: return "+ unexplained shared memory";
	default: return "?";
	}
}

static void wline(FILE *out, const char *label, const char *step, int64_t total, double share)
{
	char t[32];
	fprintf(out, "  %-46s %11s %11s %6.1f%%\n", label, step, signed_bytes(t, sizeof(t), total), share);
}

static void by_kind(FILE *out, const struct model_snapshot *sn)
{
	char a[32], b[32], c[32];
	fprintf(out, "  %-30s %8s %11s %11s %11s\n", "by kind", "mappings", "size", "RSS", "anonymous");
	for (size_t i = 0; i < sn->ngroups; i++) {
		const struct procfs_group *g = &sn->groups[i];
		const char *name = g->kind == PROCFS_LIB && g->name ? procfs_basename(g->name) : procfs_kind_name(g->kind);
		fputs("    ", out);
		size_t w = report_put_text(out, name);
		fprintf(out, "%*s %8zu %11s %11s %11s\n", w < 28 ? (int)(28 - w) : 0, "", g->t.maps,
			report_bytes(a, sizeof(a), g->t.size), report_bytes(b, sizeof(b), g->t.rss),
			report_bytes(c, sizeof(c), g->t.anonymous));
	}
}

static void waterfall(FILE *out, const struct model *m, enum model_at at)
{
	const struct model_snapshot *sn = &m->snap[at];
	const struct model_waterfall *w = &sn->w;
	const char *when = at == MODEL_AT_PEAK ? "at peak RSS" : "at exit";
	char a[64], b[64], c[64], d[64], e[64], what[200];
	if (!sn->present) {
		heading(out, "WATERFALL", when);
		fprintf(out, "  no snapshot of the mappings %s in the trace\n", when);
		return;
	}
	snprintf(what, sizeof(what), "%s (%s): from bytes requested to resident memory", when,
		 report_duration(a, sizeof(a), sn->time_ns));
	heading(out, "WATERFALL", what);
	fprintf(out, "  %-46s %11s %11s %7s\n", "", "step", "total", "of RSS");
	int64_t total = 0;
	for (int k = 0; k < MODEL_W_STEPS; k++) {
		int64_t v = w->step[k];
		/* steps from a corrupt trace may not add up in 64 bits: wrap, don't trap */
		total = (int64_t)((uint64_t)total + (uint64_t)v);
		if (v || k == MODEL_W_REQUESTED) {
			const char *label = wstep_label(w, (enum model_wstep)k, v);
			if (k == MODEL_W_REQUESTED) {
				snprintf(what, sizeof(what), "%s, %s %s", label, report_count(b, sizeof(b), sn->live_blocks),
					 plural(sn->live_blocks, "block", "blocks"));
				label = what;
			}
			wline(out, label, signed_bytes(a, sizeof(a), v), total,
			      w->rss ? 100.0 * (double)v / (double)w->rss : 0.0);
		}
		if (k == MODEL_W_NOT_RESIDENT)
			wline(out, "= heap RSS", "", total, pct(w->heap_rss, w->rss));
		else if (k == MODEL_W_UNEXPLAINED)
			wline(out, "= anonymous RSS", "", total, pct(w->anon_rss, w->rss));
		else if (k == MODEL_W_STEPS - 1)
			wline(out, "= RSS", "", total, pct(w->rss, w->rss));
	}
	fprintf(out, "  unexplained: %s, %.1f%% of anonymous RSS%s\n", report_bytes(a, sizeof(a), w->unexplained),
		pct(w->unexplained, w->anon_rss),
		w->unexplained ? " (mappings no rule names: 'heapscope maps TRACE' lists them)" : "");
	if (sn->mallinfo.present) {
		const struct model_mallinfo *mi = &sn->mallinfo;
		fprintf(out, "  allocator (mallinfo2 at %s): arena %s, in use %s, free %s; %s in %" PRIu64 " mmapped %s\n",
			report_duration(a, sizeof(a), mi->time_ns), report_bytes(b, sizeof(b), mi->arena),
			report_bytes(c, sizeof(c), mi->uordblks), report_bytes(d, sizeof(d), mi->fordblks),
			report_bytes(e, sizeof(e), mi->hblkhd), mi->hblks, plural(mi->hblks, "chunk", "chunks"));
		/* the allocator is sampled when the program allocates, the mappings
		 * when RSS peaks: say how far apart, the allocator's steps are as of then */
		if (sn->time_ns - mi->time_ns >= 1000000)
			fprintf(out, "  (that sample is %s older than the mappings: the allocator's two steps are as of then)\n",
				report_duration(a, sizeof(a), sn->time_ns - mi->time_ns));
	} else {
		fputs("  allocator: no mallinfo2 sample in the trace: its overhead and free memory are one step\n", out);
	}
	by_kind(out, sn);
}

static void summary(FILE *out, const struct model *m)
{
	const struct model_summary *s = &m->sum;
	char a[64], b[64], c[64], kinds[256];
	size_t kl = 0;
	kinds[0] = 0;
	for (unsigned k = 0; k < 32 && k < MODEL_KINDS; k++) {
		const char *name = report_kind_name(k);
		if (!s->by_kind[k] || kl >= sizeof(kinds))
			continue;
		kl += (size_t)snprintf(kinds + kl, sizeof(kinds) - kl, "%s%s %s", kl ? ", " : "",
				       name ? name : "other", report_count(a, sizeof(a), s->by_kind[k]));
	}
	heading(out, "SUMMARY", "");
	row(out, "allocation calls", report_count(a, sizeof(a), s->allocations), "%s/s  %s",
	    report_count(b, sizeof(b), (uint64_t)(s->allocations_per_sec + 0.5)), kinds);
	row(out, "frees", report_count(a, sizeof(a), s->frees), "%s", "");
	row(out, "allocated in total", report_bytes(a, sizeof(a), s->allocated_bytes), "%s",
	    exact_lead(b, sizeof(b), s->allocated_bytes));
	row(out, "temporary", report_count(a, sizeof(a), s->temporary), "%.1f%% of allocation calls, %s",
	    pct(s->temporary, s->allocations), report_bytes(b, sizeof(b), s->temporary_bytes));
	row(out, "peak heap", report_bytes(a, sizeof(a), s->peak_heap), "%sin %s %s at %s",
	    exact_lead(b, sizeof(b), s->peak_heap), report_count(c, sizeof(c), s->peak_blocks),
	    plural(s->peak_blocks, "block", "blocks"), report_duration(kinds, sizeof(kinds), s->peak_time_ns));
	if (s->peak_usable > s->peak_heap)
		row(out, "usable at peak heap", report_bytes(a, sizeof(a), s->peak_usable),
		    "%s(+%s: each block rounded up, malloc_usable_size)",
		    exact_lead(b, sizeof(b), s->peak_usable), report_bytes(c, sizeof(c), s->peak_usable - s->peak_heap));
	if (s->rss_samples)
		row(out, "peak RSS", report_bytes(a, sizeof(a), s->peak_rss), "%sat %s",
		    exact_lead(b, sizeof(b), s->peak_rss), report_duration(c, sizeof(c), s->peak_rss_time_ns));
	else
		row(out, "peak RSS", "-", "no RSS samples in the trace");
	row(out, "leaked", report_bytes(a, sizeof(a), s->leaked_bytes), "%sin %s %s, %s",
	    exact_lead(b, sizeof(b), s->leaked_bytes), report_count(c, sizeof(c), s->leaked_blocks),
	    plural(s->leaked_blocks, "block", "blocks"),
	    s->leaks_at_exit ? "at exit (after __libc_freeres)" : "still live at the end of the trace");
	mem_summary(out, m);
	if (s->dropped_events)
		row(out, "dropped events", report_count(a, sizeof(a), s->dropped_events),
		    "not recorded: the numbers above miss them");
	if (s->unknown_frees)
		row(out, "unmatched frees", report_count(a, sizeof(a), s->unknown_frees),
		    "of blocks allocated before recording started (not counted as errors)");
	if (s->reused_live)
		row(out, "lost frees", report_count(a, sizeof(a), s->reused_live),
		    "addresses allocated again while live: their free was not recorded");
	if (s->truncated_stacks)
		row(out, "truncated stacks", report_count(a, sizeof(a), s->truncated_stacks),
		    "captured stacks cut short (too deep)");
}

/* A power of two in the largest unit that keeps it whole: "512 B", "4 KiB". */
static void pow2_bytes(char *buf, size_t len, uint64_t v)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned u = 0;
	while (v >= 1024 && v % 1024 == 0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%" PRIu64 " %s", v, units[u]);
}

static void histogram(FILE *out, const struct model *m)
{
	unsigned lo_i = MODEL_HIST_BUCKETS, hi_i = 0;
	uint64_t max = 0;
	for (unsigned i = 0; i < MODEL_HIST_BUCKETS; i++) {
		if (!m->hist[i].count)
			continue;
		lo_i = i < lo_i ? i : lo_i;
		hi_i = i;
		max = m->hist[i].count > max ? m->hist[i].count : max;
	}
	heading(out, "SIZES", "allocation calls by requested size");
	if (lo_i == MODEL_HIST_BUCKETS) {
		fputs("  no allocations\n", out);
		return;
	}
	fprintf(out, "  %-21s %12s\n", "size from", "calls");
	for (unsigned i = lo_i; i <= hi_i; i++) {
		char range[32], n[32];
		uint64_t lo, hi;
		/* rows are the power-of-two buckets: each holds sizes up to the next row's */
		model_bucket_range(i, &lo, &hi);
		pow2_bytes(range, sizeof(range), lo);
		unsigned bar = max ? (unsigned)((m->hist[i].count * BAR_WIDTH + max - 1) / max) : 0;
		fprintf(out, "  %-21s %12s  %5.1f%%%s", range, report_count(n, sizeof(n), m->hist[i].count),
			pct(m->hist[i].count, m->sum.allocations), bar ? "  " : "");
		for (unsigned k = 0; k < bar; k++)
			putc('#', out);
		putc('\n', out);
	}
}

int report_text(FILE *out, const struct model *m, const struct report_opts *o)
{
	struct model_frame *frames = malloc(FRAMES_CAP * sizeof(*frames));
	char a[64], b[64], what[160];
	int ret = 0;
	if (!frames)
		return -ENOMEM;
	header(out, m, o);
	summary(out, m);
	report_text_processes(out, m);

	snprintf(what, sizeof(what), "stacks holding the most at the peak (%s at %s)",
		 report_bytes(a, sizeof(a), m->sum.peak_heap), report_duration(b, sizeof(b), m->sum.peak_time_ns));
	ret = section(out, m, o, MODEL_BY_PEAK, "PEAK", what, "nothing was allocated", frames);
	if (!ret)
		ret = mapped_list(out, m, o, 0, frames);
	if (!ret)
		ret = section(out, m, o, MODEL_BY_ALLOCATIONS, "ALLOCATIONS", "stacks that called the allocator most often",
			      "no allocation calls", frames);
	if (!ret)
		ret = section(out, m, o, MODEL_BY_TEMPORARY, "TEMPORARY",
			      "stacks whose blocks were freed before their thread allocated again",
			      "no temporary allocations", frames);
	if (!ret)
		ret = section(out, m, o, MODEL_BY_LEAKED, "LEAKS",
			      m->sum.leaks_at_exit ? "stacks whose blocks were not freed at exit"
						   : "stacks whose blocks were still live when the trace ended",
			      "no leaks", frames);
	if (!ret)
		ret = mapped_list(out, m, o, 1, frames);
	if (!ret)
		ret = growth(out, m, o, frames);
	if (!ret) {
		waterfall(out, m, MODEL_AT_PEAK);
		waterfall(out, m, MODEL_AT_EXIT);
		histogram(out, m);
	}
	if (!m->sum.complete) {
		fputs("\nINCOMPLETE: ", out);
		put_safe(out, m->sum.incomplete_reason);
		putc('\n', out);
	}
	free(frames);
	if (ret)
		return ret;
	errno = 0;
	if (fflush(out) || ferror(out))
		return errno ? -errno : -EIO; /* fflush sets errno; an earlier failure may not have */
	return 0;
}
