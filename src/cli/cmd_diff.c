/*
 * cmd_diff.c: `heapscope diff BASE NEW [--json] [--top N] [--depth N]`:
 * what changed between two traces. The summary's totals side by side, then
 * for each metric the stacks that grew and shrank most, stacks being matched
 * by their symbols (analyze/model_diff.h), so two builds of a program
 * compare. The JSON fields are documented in docs/outputs.md.
 * Exit status: 0 printed (also for truncated traces, with a warning), 1 a
 * trace cannot be read or is corrupt, 2 bad usage.
 */
#include "cli.h"
#include "analyze/model.h"
#include "analyze/model_diff.h"
#include "report/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE "usage: heapscope diff BASE NEW [--json] [--top N] [--depth N]"
#define DIFF_JSON_VERSION 1
#define TEXT_TOP 5
#define TEXT_DEPTH 6
#define JSON_TOP 20
#define FRAMES_CAP 4096
#define NAME_COL 48 /* function column width, as in the report */

static const struct metric {
	enum model_key key;
	const char *name;    /* the JSON key, as flamegraph --metric names it */
	const char *heading; /* the text's section */
	int bytes;           /* values are bytes (else counts) */
} metrics[] = {
	{ MODEL_BY_PEAK, "peak", "PEAK  bytes live at the peak heap", 1 },
	{ MODEL_BY_LEAKED, "leaked", "LEAKED  bytes not freed at exit", 1 },
	{ MODEL_BY_ALLOCATIONS, "allocations", "ALLOCATIONS  allocation calls", 0 },
	{ MODEL_BY_TEMPORARY, "temporary", "TEMPORARY  temporary allocations", 0 },
	{ MODEL_BY_BYTES, "bytes", "BYTES  bytes allocated in total", 1 },
};

#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

/* The summary rows: a name for JSON, a label for the text, and the value. */
static const struct row {
	const char *json, *text;
	int bytes;
	size_t off; /* in struct model_summary */
} rows[] = {
	{ "peak_heap_bytes", "peak heap", 1, offsetof(struct model_summary, peak_heap) },
	{ "peak_blocks", "blocks at the peak", 0, offsetof(struct model_summary, peak_blocks) },
	{ "leaked_bytes", "leaked", 1, offsetof(struct model_summary, leaked_bytes) },
	{ "leaked_blocks", "leaked blocks", 0, offsetof(struct model_summary, leaked_blocks) },
	{ "allocations", "allocation calls", 0, offsetof(struct model_summary, allocations) },
	{ "frees", "frees", 0, offsetof(struct model_summary, frees) },
	{ "allocated_bytes", "allocated in total", 1, offsetof(struct model_summary, allocated_bytes) },
	{ "temporary", "temporary", 0, offsetof(struct model_summary, temporary) },
	{ "temporary_bytes", "temporary bytes", 1, offsetof(struct model_summary, temporary_bytes) },
	{ "peak_rss_bytes", "peak RSS", 1, offsetof(struct model_summary, peak_rss) },
	{ "run_time_ns", "run time", 0, offsetof(struct model_summary, run_time_ns) },
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

struct diff_opts {
	size_t top, depth;
	const char *base_path, *new_path;
};

static void help(void)
{
	printf("%s\n\n"
	       "Compares two traces: the totals, and for each metric (peak, leaked,\n"
	       "allocations, temporary, bytes) the stacks that grew and shrank most.\n"
	       "Stacks are matched by their functions and source files, not by addresses\n"
	       "or line numbers, so two builds of a program compare.\n\n"
	       "  --json      one JSON object instead of text (fields: docs/outputs.md)\n"
	       "  --top N     stacks per list (default %d, JSON %d; 0 = all)\n"
	       "  --depth N   frames per stack (default %d, JSON all; 0 = all)\n\n"
	       "Exit status: 0 printed (truncated traces are compared with a warning),\n"
	       "1 a trace cannot be read or is corrupt, 2 bad usage.\n",
	       USAGE, TEXT_TOP, JSON_TOP, TEXT_DEPTH);
}

/* "heapscope: diff: <message>; <usage>", exit status 2 */
#define usage_error(...) cli_usage_error("diff", USAGE, __VA_ARGS__)

static uint64_t row_value(const struct model *m, const struct row *r)
{
	return *(const uint64_t *)((const char *)&m->sum + r->off);
}

/* 0 for the peak RSS row of a trace without RSS samples: unknown, not 0. */
static int rss_known(const struct model *m, const struct row *r)
{
	return r->off != offsetof(struct model_summary, peak_rss) || m->sum.rss_samples;
}

/* A signed difference that saturates rather than wraps. */
static int64_t delta(uint64_t base, uint64_t now)
{
	if (now >= base)
		return now - base > INT64_MAX ? INT64_MAX : (int64_t)(now - base);
	return base - now > INT64_MAX ? INT64_MIN : -(int64_t)(base - now);
}

static uint64_t magnitude(int64_t d)
{
	return d < 0 ? (uint64_t)-(d + 1) + 1 : (uint64_t)d;
}

/* ---- text --------------------------------------------------------------- */

static const char *fmt_value(char *buf, size_t len, uint64_t v, const struct row *r)
{
	if (r->bytes)
		return report_bytes(buf, len, v);
	if (r->off == offsetof(struct model_summary, run_time_ns))
		return report_duration(buf, len, v);
	return report_count(buf, len, v);
}

/* "+1.5 KiB", "-3", "0". */
static const char *fmt_change(char *buf, size_t len, int64_t d, int bytes, int duration)
{
	char n[32];
	uint64_t mag = magnitude(d);
	if (!d)
		return "0";
	snprintf(buf, len, "%c%s", d < 0 ? '-' : '+',
		 bytes ? report_bytes(n, sizeof(n), mag)
		       : duration ? report_duration(n, sizeof(n), mag) : report_count(n, sizeof(n), mag));
	return buf;
}

static const char *fmt_pct(char *buf, size_t len, uint64_t base, int64_t d)
{
	if (!d)
		return "";
	if (!base)
		return "new";
	snprintf(buf, len, "%+.1f%%", 100.0 * (double)d / (double)base);
	return buf;
}

static void put_trace_line(FILE *out, const char *what, const char *path, const struct model *m)
{
	char t[32];
	const struct model_summary *s = &m->sum;
	fprintf(out, "  %-5s ", what);
	report_put_text(out, path);
	fputs("  (", out);
	report_put_text(out, s->program ? s->program : "unknown program");
	if (s->pid)
		fprintf(out, ", pid %" PRIu64, s->pid);
	fprintf(out, ", %s)%s\n", report_duration(t, sizeof(t), s->run_time_ns), s->complete ? "" : "  INCOMPLETE");
}

static void put_summary(FILE *out, const struct model_diff *d)
{
	fprintf(out, "\nSUMMARY%30s%15s%15s\n", "base", "new", "change");
	for (size_t i = 0; i < NROWS; i++) {
		const struct row *r = &rows[i];
		uint64_t b = row_value(d->base, r), a = row_value(d->new, r);
		int64_t dv = delta(b, a);
		int dur = r->off == offsetof(struct model_summary, run_time_ns);
		char x[32], y[32], z[48], p[32], e[48] = "";
		if (!rss_known(d->base, r) || !rss_known(d->new, r)) {
			/* a short run may end before the first RSS sample */
			fprintf(out, "  %-20s %14s %14s %14s\n", r->text,
				rss_known(d->base, r) ? fmt_value(x, sizeof(x), b, r) : "-",
				rss_known(d->new, r) ? fmt_value(y, sizeof(y), a, r) : "-", "-");
			continue;
		}
		if (r->bytes && dv && magnitude(dv) >= 1024) {
			char n[32];
			snprintf(e, sizeof(e), "  (%c%s B)", dv < 0 ? '-' : '+', report_count(n, sizeof(n), magnitude(dv)));
		}
		fprintf(out, "  %-20s %14s %14s %14s  %-8s%s\n", r->text, fmt_value(x, sizeof(x), b, r),
			fmt_value(y, sizeof(y), a, r), fmt_change(z, sizeof(z), dv, r->bytes, dur),
			fmt_pct(p, sizeof(p), b, dv), e);
	}
}

/* A long path keeps its last three components: the ones that identify it. */
static const char *short_path(const char *p, int *cut)
{
	size_t n = strlen(p);
	*cut = 0;
	if (n <= 60)
		return p;
	const char *s = p + n;
	for (int slashes = 0; s > p; s--)
		if (s[-1] == '/' && ++slashes == 3)
			break;
	*cut = s > p;
	return s;
}

/* Width of the frame's name as the text shows it. */
static size_t name_width(const struct model_frame *f, char *label, size_t len)
{
	return report_put_text(NULL, model_frame_label(f, label, len)) +
	       ((f->flags & MODEL_FRAME_INLINED) ? strlen(" [inlined]") : 0);
}

/* The frames of entry i, down to main (what runs main is in every stack). */
static void put_stack(FILE *out, const struct model_diff *d, size_t i, size_t depth, struct model_frame *frames)
{
	char label[256];
	size_t total = model_diff_frames(d, i, frames, FRAMES_CAP);
	size_t n = total < FRAMES_CAP ? total : FRAMES_CAP;
	for (size_t k = 0; k < n; k++)
		if (frames[k].function && !strcmp(frames[k].function, "main") &&
		    !(frames[k].flags & MODEL_FRAME_INLINED)) {
			n = k + 1;
			break;
		}
	size_t shown = depth && n > depth ? depth : n;
	size_t width = 0;
	/* names up to NAME_COL set the column; longer ones put their file below */
	for (size_t k = 0; k < shown; k++) {
		size_t w = name_width(&frames[k], label, sizeof(label));
		if (w <= NAME_COL && w > width)
			width = w;
	}
	for (size_t k = 0; k < shown; k++) {
		const struct model_frame *f = &frames[k];
		size_t w = name_width(f, label, sizeof(label));
		fputs("        ", out);
		report_put_text(out, model_frame_label(f, label, sizeof(label)));
		if (f->flags & MODEL_FRAME_INLINED)
			fputs(" [inlined]", out);
		if (f->file) {
			int cut;
			const char *p = short_path(f->file, &cut);
			if (w > NAME_COL)
				fputs("\n            ", out);
			else
				fprintf(out, "%*s  ", (int)(width - w), "");
			fputs(cut ? ".../" : "", out);
			report_put_text(out, p);
			if (f->line)
				fprintf(out, ":%" PRIu32, f->line);
		}
		putc('\n', out);
	}
	if (n > shown)
		fprintf(out, "        ... %zu more frames (--depth %zu shows them)\n", n - shown, n);
}

static void put_entry(FILE *out, const struct model_diff *d, const struct metric *mt, size_t rank, size_t i,
		      const struct diff_opts *o, struct model_frame *frames)
{
	const struct model_diff_entry *e = &d->entries[i];
	uint64_t b = model_diff_value(e, mt->key, 0), a = model_diff_value(e, mt->key, 1);
	int64_t dv = delta(b, a);
	char x[32], y[32], z[48], p[32];
	struct row r = { NULL, NULL, mt->bytes, 0 };
	fprintf(out, "  #%-3zu %12s  %s -> %s  %s", rank, fmt_change(z, sizeof(z), dv, mt->bytes, 0),
		fmt_value(x, sizeof(x), b, &r), fmt_value(y, sizeof(y), a, &r), fmt_pct(p, sizeof(p), b, dv));
	if (mt->bytes && magnitude(dv) >= 1024) {
		char n[32];
		fprintf(out, "  (%c%s B)", dv < 0 ? '-' : '+', report_count(n, sizeof(n), magnitude(dv)));
	}
	if (e->base_index == MODEL_DIFF_NONE)
		fputs("  [only in new]", out);
	else if (e->new_index == MODEL_DIFF_NONE)
		fputs("  [only in base]", out);
	if (e->base_stacks > 1 || e->new_stacks > 1)
		fprintf(out, "  [stacks: %" PRIu32 " in base, %" PRIu32 " in new]", e->base_stacks, e->new_stacks);
	putc('\n', out);
	put_stack(out, d, i, o->depth, frames);
}

static int put_metric(FILE *out, const struct model_diff *d, const struct metric *mt, const struct diff_opts *o,
		      struct model_frame *frames)
{
	size_t *idx = malloc((d->nentries ? d->nentries : 1) * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	fprintf(out, "\n%s\n", mt->heading);
	int any = 0;
	for (int dir = 1; dir >= -1; dir -= 2) {
		size_t all = model_diff_top(d, mt->key, dir, 0, idx);
		size_t n = o->top && o->top < all ? o->top : all;
		if (!all)
			continue;
		fprintf(out, "  %s\n", dir > 0 ? "grew:" : "shrank:");
		for (size_t k = 0; k < n; k++)
			put_entry(out, d, mt, k + 1, idx[k], o, frames);
		if (all > n)
			fprintf(out, "  ... %zu more (--top N shows more)\n", all - n);
		any = 1;
	}
	if (!any)
		fputs("  no change\n", out);
	free(idx);
	return 0;
}

static int diff_text(FILE *out, const struct model_diff *d, const struct diff_opts *o)
{
	struct model_frame *frames = malloc(FRAMES_CAP * sizeof(*frames));
	int ret = 0;
	if (!frames)
		return -ENOMEM;
	fputs("heapscope diff\n", out);
	put_trace_line(out, "base", o->base_path, d->base);
	put_trace_line(out, "new", o->new_path, d->new);
	fprintf(out, "  stacks %zu matched by function and file, %zu only in base, %zu only in new\n", d->matched,
		d->base_only, d->new_only);
	put_summary(out, d);
	for (size_t i = 0; i < NMETRICS && !ret; i++)
		ret = put_metric(out, d, &metrics[i], o, frames);
	free(frames);
	return ret;
}

/* ---- JSON --------------------------------------------------------------- */

static void json_trace(FILE *out, const char *name, const char *path, const struct model *m)
{
	const struct model_summary *s = &m->sum;
	fprintf(out, "  \"%s\": {\"trace\": ", name);
	rjson_string(out, path);
	fputs(", \"program\": ", out);
	rjson_string(out, s->program);
	fprintf(out, ", \"pid\": %" PRIu64 ", \"complete\": %s, \"stacks\": %zu},\n", s->pid,
		s->complete ? "true" : "false", m->nstacks);
}

static void json_frame(FILE *out, const struct model_frame *f)
{
	char label[256];
	fputs("{\"function\": ", out);
	rjson_string(out, f->function);
	fputs(", \"file\": ", out);
	rjson_string(out, f->file);
	if (f->line)
		fprintf(out, ", \"line\": %" PRIu32, f->line);
	else
		fputs(", \"line\": null", out);
	fputs(", \"module\": ", out);
	rjson_string(out, f->module);
	fprintf(out, ", \"inlined\": %s, \"label\": ", (f->flags & MODEL_FRAME_INLINED) ? "true" : "false");
	rjson_string(out, model_frame_label(f, label, sizeof(label)));
	fputc('}', out);
}

static void json_totals(FILE *out, const struct model_stack *s)
{
	fprintf(out, "{\"allocations\": %" PRIu64 ", \"allocated_bytes\": %" PRIu64 ", \"temporary\": %" PRIu64
		     ", \"temporary_bytes\": %" PRIu64 ", \"peak_bytes\": %" PRIu64 ", \"peak_blocks\": %" PRIu64
		     ", \"leaked_bytes\": %" PRIu64 ", \"leaked_blocks\": %" PRIu64 "}",
		s->allocations, s->allocated_bytes, s->temporary, s->temporary_bytes, s->peak_bytes, s->peak_blocks,
		s->leaked_bytes, s->leaked_blocks);
}

static void json_entry(FILE *out, const struct model_diff *d, const struct metric *mt, size_t i,
		       const struct diff_opts *o, struct model_frame *frames)
{
	const struct model_diff_entry *e = &d->entries[i];
	uint64_t b = model_diff_value(e, mt->key, 0), a = model_diff_value(e, mt->key, 1);
	fprintf(out, "{\"base\": %" PRIu64 ", \"new\": %" PRIu64 ", \"delta\": %" PRId64
		     ", \"in_base\": %s, \"in_new\": %s, \"base_stacks\": %" PRIu32 ", \"new_stacks\": %" PRIu32
		     ",\n          \"base_totals\": ",
		b, a, delta(b, a), e->base_index != MODEL_DIFF_NONE ? "true" : "false",
		e->new_index != MODEL_DIFF_NONE ? "true" : "false", e->base_stacks, e->new_stacks);
	json_totals(out, &e->base);
	fputs(",\n          \"new_totals\": ", out);
	json_totals(out, &e->new);
	size_t max = o->depth && o->depth < FRAMES_CAP ? o->depth : FRAMES_CAP;
	size_t total = model_diff_frames(d, i, frames, max);
	size_t n = total < max ? total : max;
	fprintf(out, ",\n          \"frames_total\": %zu, \"stack\": [", total);
	for (size_t k = 0; k < n; k++) {
		fputs(k ? ",\n            " : "\n            ", out);
		json_frame(out, &frames[k]);
	}
	fputs(n ? "\n          ]}" : "]}", out);
}

static int diff_json(FILE *out, const struct model_diff *d, const struct diff_opts *o)
{
	struct model_frame *frames = malloc(FRAMES_CAP * sizeof(*frames));
	size_t *idx = malloc((d->nentries ? d->nentries : 1) * sizeof(*idx));
	if (!frames || !idx) {
		free(frames);
		free(idx);
		return -ENOMEM;
	}
	fprintf(out, "{\n  \"format\": \"heapscope-diff\",\n  \"version\": %d,\n", DIFF_JSON_VERSION);
	json_trace(out, "base", o->base_path, d->base);
	json_trace(out, "new", o->new_path, d->new);
	fprintf(out, "  \"stacks\": {\"matched\": %zu, \"base_only\": %zu, \"new_only\": %zu},\n", d->matched,
		d->base_only, d->new_only);
	fputs("  \"summary\": {", out);
	for (size_t i = 0; i < NROWS; i++) {
		uint64_t b = row_value(d->base, &rows[i]), a = row_value(d->new, &rows[i]);
		int kb = rss_known(d->base, &rows[i]), ka = rss_known(d->new, &rows[i]);
		fprintf(out, "%s\n    \"%s\": {\"base\": ", i ? "," : "", rows[i].json);
		if (kb)
			fprintf(out, "%" PRIu64, b);
		else
			fputs("null", out);
		fputs(", \"new\": ", out);
		if (ka)
			fprintf(out, "%" PRIu64, a);
		else
			fputs("null", out);
		if (kb && ka)
			fprintf(out, ", \"delta\": %" PRId64 "}", delta(b, a));
		else
			fputs(", \"delta\": null}", out);
	}
	fputs("\n  },\n  \"metrics\": {", out);
	for (size_t m = 0; m < NMETRICS; m++) {
		const struct metric *mt = &metrics[m];
		uint64_t tb = 0, ta = 0;
		for (size_t i = 0; i < d->nentries; i++) {
			tb += model_diff_value(&d->entries[i], mt->key, 0);
			ta += model_diff_value(&d->entries[i], mt->key, 1);
		}
		fprintf(out, "%s\n    \"%s\": {\"unit\": \"%s\", \"base\": %" PRIu64 ", \"new\": %" PRIu64
			     ", \"delta\": %" PRId64,
			m ? "," : "", mt->name, mt->bytes ? "bytes" : "count", tb, ta, delta(tb, ta));
		for (int dir = 1; dir >= -1; dir -= 2) {
			size_t all = model_diff_top(d, mt->key, dir, 0, idx);
			size_t n = o->top && o->top < all ? o->top : all;
			fprintf(out, ",\n      \"%s_total\": %zu, \"%s\": [", dir > 0 ? "growth" : "shrinkage", all,
				dir > 0 ? "growth" : "shrinkage");
			for (size_t k = 0; k < n; k++) {
				fputs(k ? ",\n        " : "\n        ", out);
				json_entry(out, d, mt, idx[k], o, frames);
			}
			fputs(n ? "\n      ]" : "]", out);
		}
		fputs("}", out);
	}
	fputs("\n  }\n}\n", out);
	free(frames);
	free(idx);
	return 0;
}

int cmd_diff(int argc, char **argv)
{
	const char *paths[2] = { NULL, NULL }, *val;
	int json = 0, top_set = 0, depth_set = 0, no_more_opts = 0, npaths = 0;
	struct diff_opts o = { 0 };

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (no_more_opts || a[0] != '-' || !a[1]) {
			if (npaths == 2)
				return usage_error("more than two traces given ('%s')", a);
			paths[npaths++] = a;
		} else if (!strcmp(a, "--")) {
			no_more_opts = 1;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			help();
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (cli_opt_value(argc, argv, &i, "--top", &val)) {
			if (cli_parse_count(val, &o.top) < 0)
				return usage_error("--top needs a number of stacks");
			top_set = 1;
		} else if (cli_opt_value(argc, argv, &i, "--depth", &val)) {
			if (cli_parse_count(val, &o.depth) < 0)
				return usage_error("--depth needs a number of frames");
			depth_set = 1;
		} else {
			return usage_error("unknown option '%s'", a);
		}
	}
	if (npaths < 2)
		return usage_error(npaths ? "no NEW trace given" : "no traces given");
	if (!top_set)
		o.top = json ? JSON_TOP : TEXT_TOP;
	if (!depth_set)
		o.depth = json ? 0 : TEXT_DEPTH;
	o.base_path = paths[0];
	o.new_path = paths[1];

	struct model *base = cli_load(paths[0], 0), *new = base ? cli_load(paths[1], 0) : NULL;
	struct model_diff *d = NULL;
	int status = 1;
	if (!base || !new)
		goto out;
	if (model_diff_build(&d, base, new) < 0) {
		cli_error("out of memory comparing the traces; free memory or use a machine with more");
		goto out;
	}
	int ret = json ? diff_json(stdout, d, &o) : diff_text(stdout, d, &o);
	errno = 0;
	if (!ret && (fflush(stdout) || ferror(stdout)))
		ret = errno ? -errno : -EIO;
	if (ret < 0) {
		cli_error("cannot write the diff: %s; check the output's destination", strerror(-ret));
		goto out;
	}
	cli_warn_incomplete(base, paths[0], "the diff");
	cli_warn_incomplete(new, paths[1], "the diff");
	status = 0;
out:
	model_diff_free(d);
	model_free(base);
	model_free(new);
	return status;
}
