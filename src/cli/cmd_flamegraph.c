/*
 * cmd_flamegraph.c: `heapscope flamegraph FILE [--metric M] [-o out.svg] [--folded]`
 * and `heapscope flamegraph --diff BASE NEW ...`. The flame graph of one
 * metric as a standalone interactive SVG, or as folded stacks for
 * flamegraph.pl and inferno; with --diff, the change from BASE to NEW
 * (widths from NEW, red where a frame grew, blue where it shrank; folded:
 * two values per line, as difffolded.pl writes them).
 * Exit status: 0 written (also for a truncated trace, with a warning), 1 a
 * trace cannot be read or the output cannot be written, 2 bad usage.
 */
#include "cli.h"
#include "analyze/model.h"
#include "analyze/model_diff.h"
#include "report/flame.h"
#include "report/folded.h"
#include "report/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USAGE                                                                                          \
	"usage: heapscope flamegraph FILE [--metric " FOLDED_METRICS "] [-o out.svg] [--folded]"        \
	" [--title TEXT] [--width PX]; or flamegraph --diff BASE NEW [...]"

static void help(void)
{
	printf("%s\n\n"
	       "Draws the flame graph of a trace: each box a frame, as wide as what the\n"
	       "stacks through it account for, callers below callees (docs/outputs.md).\n\n"
	       "  --metric M   what the widths are (default peak):\n"
	       "                 peak         bytes live at the moment of the peak heap\n"
	       "                 leaked       bytes never freed\n"
	       "                 allocations  number of allocations\n"
	       "                 temporary    number of temporary allocations\n"
	       "                 bytes        bytes allocated over the whole run\n"
	       "  -o FILE      write there (default: standard output); replaced only once complete\n"
	       "  --folded     folded stacks ('main;parse;split 4096') for flamegraph.pl or\n"
	       "               inferno instead of SVG\n"
	       "  --diff BASE NEW\n"
	       "               what changed from BASE to NEW, stacks matched by their symbols:\n"
	       "               red grew, blue shrank; --folded writes 'path BASE_VALUE NEW_VALUE'\n"
	       "  --title TEXT the SVG's heading\n"
	       "  --width PX   the SVG's width (default 1200)\n\n"
	       "In a browser the SVG zooms on a click (Escape or 'Reset zoom' goes back) and\n"
	       "searches with 'Search' or Ctrl-F.\n\n"
	       "Exit status: 0 written (a truncated trace is drawn with a warning), 1 a trace\n"
	       "cannot be read or the output cannot be written, 2 bad usage.\n",
	       USAGE);
}

/* "heapscope: flamegraph: <message>; <usage>", exit status 2 */
#define usage_error(...) cli_usage_error("flamegraph", USAGE, __VA_ARGS__)

/* Loads a trace; a truncated one is drawn, with a warning first. */
static struct model *load(const char *path)
{
	struct model *m = cli_load(path, 0);
	if (m)
		cli_warn_incomplete(m, path, "the flame graph");
	return m;
}

/* A folded name: ';' separates frames, so it becomes ':' (as folded_label
 * does); control characters and invalid UTF-8 become '?'. */
static void put_folded_name(FILE *out, const char *name)
{
	for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
		unsigned char c = *s;
		size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
			   : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		size_t k = 1;
		while (k < n && (s[k] & 0xc0) == 0x80)
			k++;
		if (n > 1 && k == n) {
			fwrite(s, 1, n, out);
			s += n - 1;
		} else {
			putc(n != 1 || c < 0x20 || c == 0x7f ? '?' : c == ';' ? ':' : c, out);
		}
	}
}

/* Writes "path base new" for every node whose own (self) values are not both
 * zero: the difffolded.pl format. path[] holds the node indices from the root. */
static void diff_folded(FILE *out, const struct flame_tree *t, enum model_key key, uint32_t i, uint32_t *path,
			size_t depth)
{
	const struct flame_node *nd = &t->nodes[i];
	uint64_t sv = nd->v[key], sb = nd->b[key];
	for (uint32_t c = nd->child; c != FLAME_NONE; c = t->nodes[c].next) {
		sv -= t->nodes[c].v[key];
		sb -= t->nodes[c].b[key];
	}
	if (i)
		path[depth++] = i;
	if (depth && (sv || sb)) {
		for (size_t k = 0; k < depth; k++) {
			if (k)
				putc(';', out);
			put_folded_name(out, t->nodes[path[k]].name);
		}
		fprintf(out, " %" PRIu64 " %" PRIu64 "\n", sb, sv);
	}
	for (uint32_t c = nd->child; c != FLAME_NONE; c = t->nodes[c].next)
		diff_folded(out, t, key, c, path, depth);
}

/* Completes the output: ret is the writer's status. Returns the exit status. */
static int output_close(struct cli_output *o, int ret)
{
	if (!o->path) {
		if (ret < 0)
			cli_error("cannot write the flame graph: %s; check the output's destination", strerror(-ret));
		return ret < 0;
	}
	ret = cli_output_close(o, ret);
	if (ret < 0)
		cli_error("cannot write %s: %s; check the directory and the free space", o->path, strerror(-ret));
	return ret < 0;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

int cmd_flamegraph(int argc, char **argv)
{
	const char *files[2] = { NULL, NULL }, *out_path = NULL, *title = NULL, *val;
	enum model_key key = MODEL_BY_PEAK;
	int folded = 0, diff = 0, no_more_opts = 0;
	unsigned width = 0;
	size_t nfiles = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (no_more_opts || a[0] != '-' || !a[1]) {
			if (nfiles == 2)
				return usage_error("too many traces given ('%s')", a);
			files[nfiles++] = a;
		} else if (!strcmp(a, "--")) {
			no_more_opts = 1;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			help();
			return 0;
		} else if (!strcmp(a, "--folded")) {
			folded = 1;
		} else if (!strcmp(a, "--diff")) {
			diff = 1;
		} else if (cli_opt_value(argc, argv, &i, "--metric", &val)) {
			if (!val || folded_metric_parse(val, &key) < 0)
				return usage_error("--metric needs one of %s%s%s", FOLDED_METRICS, val ? ", not " : "",
						   val ? val : "");
		} else if (cli_opt_value(argc, argv, &i, "-o", &val) || cli_opt_value(argc, argv, &i, "--output", &val)) {
			if (!val || !*val)
				return usage_error("-o needs a file name");
			out_path = val;
		} else if (cli_opt_value(argc, argv, &i, "--title", &val)) {
			if (!val)
				return usage_error("--title needs a text");
			title = val;
		} else if (cli_opt_value(argc, argv, &i, "--width", &val)) {
			char *end;
			unsigned long w = val ? strtoul(val, &end, 10) : 0;
			if (!val || *end || w < 200 || w > 100000)
				return usage_error("--width needs a number of pixels from 200 to 100000");
			width = (unsigned)w;
		} else {
			return usage_error("unknown option '%s'", a);
		}
	}
	if (!nfiles)
		return usage_error(diff ? "--diff needs two traces, BASE and NEW" : "no trace file given");
	if (diff && nfiles != 2)
		return usage_error("--diff needs two traces, BASE and NEW");
	if (!diff && nfiles != 1)
		return usage_error("more than one trace given ('%s'); to compare two, use --diff BASE NEW", files[1]);
	if (!out_path && !folded && isatty(STDOUT_FILENO)) {
		cli_error("flamegraph: an SVG is not for the terminal; give -o FILE.svg, or --folded for text");
		return 2;
	}

	struct model *m = NULL, *base = NULL;
	struct model_diff *d = NULL;
	struct flame_tree *t = NULL;
	int status = 1, ret = 0;
	if (diff) {
		if (!(base = load(files[0])) || !(m = load(files[1])))
			goto out;
		ret = model_diff_build(&d, base, m);
		if (!ret)
			ret = flame_build_diff(&t, d);
	} else {
		if (!(m = load(files[0])))
			goto out;
		if (!folded)
			ret = flame_build(&t, m);
	}
	if (ret < 0) {
		cli_error("out of memory building the flame graph; free memory or use a machine with more");
		goto out;
	}

	struct cli_output o;
	if ((ret = cli_output_open(&o, out_path)) < 0) {
		cli_error("cannot create %s: %s; check the directory and its permissions", out_path, strerror(-ret));
		cli_output_close(&o, ret);
		goto out;
	}
	if (folded && !diff) {
		ret = folded_write(o.f, m, key);
	} else if (folded) {
		uint32_t *path = malloc(((size_t)t->max_depth + 1) * sizeof(*path));
		ret = -ENOMEM;
		if (path) {
			diff_folded(o.f, t, key, 0, path, 0);
			free(path);
			errno = 0;
			ret = fflush(o.f) || ferror(o.f) ? (errno ? -errno : -EIO) : 0;
		}
	} else {
		char sub[1024], total[64], tb[64];
		const struct flame_node *root = &t->nodes[0];
		int bytes = flame_key_is_bytes(key);
		if (bytes)
			report_bytes(total, sizeof(total), root->v[key]);
		else
			report_count(total, sizeof(total), root->v[key]);
		if (diff) {
			if (bytes)
				report_bytes(tb, sizeof(tb), root->b[key]);
			else
				report_count(tb, sizeof(tb), root->b[key]);
			/* the paths as given: two builds' traces often share a base name */
			snprintf(sub, sizeof(sub), "%s (%s) \xe2\x86\x92 %s (%s): red grew, blue shrank; widths are the second's",
				 files[0], tb, files[1], total);
		} else {
			snprintf(sub, sizeof(sub), "%s: %s %s%s%s", base_name(files[0]), total, flame_key_title(key),
				 m->sum.program ? " \xc2\xb7 " : "", m->sum.program ? base_name(m->sum.program) : "");
		}
		struct flame_svg_opts so = { .title = title, .subtitle = sub, .width = width };
		ret = flame_write_svg(o.f, t, key, &so);
	}
	status = output_close(&o, ret);
out:
	flame_free(t);
	model_diff_free(d);
	model_free(m);
	model_free(base);
	return status;
}
