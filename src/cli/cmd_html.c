/*
 * cmd_html.c: `heapscope html FILE [-o report.html] [--metric M] [--top N]`.
 * Writes the self-contained HTML report of a trace (src/report/html.c):
 * one file that opens offline in any browser.
 * Exit status: 0 written (also for a truncated trace, with a warning), 1 the
 * trace cannot be read or the report cannot be written, 2 bad usage.
 */
#include "cli.h"
#include "analyze/model.h"
#include "report/folded.h"
#include "report/html.h"
#include "report/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define USAGE "usage: heapscope html FILE [-o report.html] [--metric " FOLDED_METRICS "] [--top N]"

static void help(void)
{
	printf("%s\n\n"
	       "Writes the report of a trace as one HTML file with everything inline: the\n"
	       "summary, memory over time with the top call sites, the call tree of every\n"
	       "metric (click to zoom, search), the top call sites with their stacks, and\n"
	       "the allocation sizes. It needs no network and no server (docs/outputs.md).\n\n"
	       "  -o FILE     where to write (default: the trace's name with .html);\n"
	       "              replaced only once complete\n"
	       "  --metric M  the call tree's first metric (default peak)\n"
	       "  --top N     call sites per table (default %d)\n\n"
	       "Exit status: 0 written (a truncated trace is reported with a warning), 1 the\n"
	       "trace cannot be read or the report cannot be written, 2 bad usage.\n",
	       USAGE, HTML_TOP);
}

/* "heapscope: html: <message>; <usage>", exit status 2 */
#define usage_error(...) cli_usage_error("html", USAGE, __VA_ARGS__)

/* "dir/app.hst" -> "dir/app.html"; any other name gets ".html" added. */
static char *default_output(const char *trace)
{
	size_t n = strlen(trace);
	char *out = malloc(n + 6);
	if (!out)
		return NULL;
	memcpy(out, trace, n + 1);
	const char *base = strrchr(trace, '/');
	base = base ? base + 1 : trace;
	if (n > 4 && !strcmp(trace + n - 4, ".hst") && trace + n - 4 > base)
		out[n - 4] = 0;
	strcat(out, ".html");
	return out;
}

static double seconds(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

int cmd_html(int argc, char **argv)
{
	const char *path = NULL, *out_path = NULL, *val;
	struct html_opts o = { 0 };
	int no_more_opts = 0;

	o.key = MODEL_BY_PEAK;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (no_more_opts || a[0] != '-' || !a[1]) {
			if (path)
				return usage_error("more than one trace given ('%s')", a);
			path = a;
		} else if (!strcmp(a, "--")) {
			no_more_opts = 1;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			help();
			return 0;
		} else if (cli_opt_value(argc, argv, &i, "-o", &val) || cli_opt_value(argc, argv, &i, "--output", &val)) {
			if (!val || !*val)
				return usage_error("-o needs a file name");
			out_path = val;
		} else if (cli_opt_value(argc, argv, &i, "--metric", &val)) {
			if (!val || folded_metric_parse(val, &o.key) < 0)
				return usage_error("--metric needs one of %s%s%s", FOLDED_METRICS, val ? ", not " : "",
						   val ? val : "");
		} else if (cli_opt_value(argc, argv, &i, "--top", &val)) {
			char *end;
			unsigned long n = val ? strtoul(val, &end, 10) : 0;
			if (!val || !*val || *end || *val == '-' || n < 1 || n > 10000)
				return usage_error("--top needs a number of call sites from 1 to 10000");
			o.top = n;
		} else {
			return usage_error("unknown option '%s'", a);
		}
	}
	if (!path)
		return usage_error("no trace file given");

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct model *m = cli_load(path, 0);
	if (!m)
		return 1;
	cli_warn_incomplete(m, path, "the report");
	char *def = out_path ? NULL : default_output(path);
	struct cli_output out;
	int status = 1, ret;
	if (!out_path && !(out_path = def)) {
		cli_error("out of memory; free memory or use a machine with more");
		goto out;
	}
	/* written beside the target and renamed: a failed run leaves no half report */
	if ((ret = cli_output_open(&out, out_path)) < 0) {
		if (!out.tmp)
			cli_error("out of memory; free memory or use a machine with more");
		else
			cli_error("cannot create %s: %s; check the directory and its permissions", out_path,
				  strerror(-ret));
		cli_output_close(&out, ret);
		goto out;
	}
	o.trace = path;
	char err[600];
	ret = html_write(out.f, m, &o, err, sizeof(err));
	ret = cli_output_close(&out, ret);
	if (ret < 0) {
		if (ret == -ENOMEM)
			cli_error("out of memory writing %s; free memory or use a machine with more", out_path);
		else if (err[0] && strcmp(err, strerror(-ret)))
			cli_error("%s: cannot read the trace again: %s; check that it was not moved or changed", path, err);
		else
			cli_error("cannot write %s: %s; check the directory and the free space", out_path, strerror(-ret));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	struct stat st;
	char size[32] = "?";
	if (stat(out_path, &st) == 0)
		report_bytes(size, sizeof(size), (uint64_t)st.st_size);
	fprintf(stderr, "heapscope: wrote %s (%s) in %.2f s; open it in a browser\n", out_path, size,
		seconds(&t0, &t1));
	status = 0;
out:
	free(def);
	model_free(m);
	return status;
}
