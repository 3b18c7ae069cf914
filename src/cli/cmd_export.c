/*
 * cmd_export.c: `heapscope export FILE --format F [-o OUT]`: a trace in the
 * formats other tools read: pprof, speedscope, massif, folded stacks, and
 * the JSON report. Every format is written from the one model.
 * Exit status: 0 written (also for a truncated trace, with a warning), 1 the
 * trace cannot be read or the output cannot be written, 2 bad usage.
 */
#include "cli.h"
#include "analyze/model.h"
#include "report/folded.h"
#include "report/massif.h"
#include "report/pprof.h"
#include "report/report.h"
#include "report/speedscope.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define USAGE                                                                                      \
	"usage: heapscope export FILE --format pprof|speedscope|massif|folded|json [-o OUT]"        \
	" [--metric " FOLDED_METRICS "] [--top N] [--depth N]"

enum format { FMT_NONE, FMT_PPROF, FMT_SPEEDSCOPE, FMT_MASSIF, FMT_FOLDED, FMT_JSON };

static const struct {
	const char *name;
	enum format fmt;
} formats[] = {
	{ "pprof", FMT_PPROF }, { "speedscope", FMT_SPEEDSCOPE }, { "massif", FMT_MASSIF },
	{ "folded", FMT_FOLDED }, { "json", FMT_JSON },
};

static void help(void)
{
	printf("%s\n\n"
	       "Writes a trace in another tool's format (docs/outputs.md):\n\n"
	       "  pprof       gzip'd profile.proto for go tool pprof and pprof's web UI;\n"
	       "              sample types alloc_*, inuse_* (live at exit), peak_*, temporary_*\n"
	       "  speedscope  speedscope's JSON: one profile per metric\n"
	       "  massif      valgrind massif's massif.out, for ms_print and massif-visualizer\n"
	       "  folded      folded stacks for flamegraph.pl and inferno (--metric, default peak)\n"
	       "  json        the same as 'heapscope report --json' (--top, --depth)\n\n"
	       "  -o OUT      the file to write (default: standard output; pprof needs a\n"
	       "              file or a pipe); it is replaced only once complete\n"
	       "  --metric M  folded: %s\n"
	       "  --top N     json: stacks per section (default %d; 0 = all)\n"
	       "  --depth N   json: frames per stack (default all; 0 = all)\n\n"
	       "Exit status: 0 written (a truncated trace is exported with a warning), 1 the\n"
	       "trace cannot be read or the output cannot be written, 2 bad usage.\n",
	       USAGE, FOLDED_METRICS, REPORT_JSON_TOP);
}

/* "heapscope: export: <message>; <usage>", exit status 2 */
#define usage_error(...) cli_usage_error("export", USAGE, __VA_ARGS__)

struct export_opts {
	enum format fmt;
	enum model_key metric;
	struct report_opts report;
};

static int write_format(FILE *out, const struct model *m, const struct export_opts *o)
{
	switch (o->fmt) {
	case FMT_PPROF:
		return pprof_write(out, m);
	case FMT_SPEEDSCOPE: {
		/* the title speedscope shows: the trace's file name */
		const char *b = strrchr(o->report.trace, '/');
		return speedscope_write(out, m, b && b[1] ? b + 1 : o->report.trace);
	}
	case FMT_MASSIF:
		return massif_write(out, m);
	case FMT_FOLDED:
		return folded_write(out, m, o->metric);
	case FMT_JSON:
		return report_json(out, m, &o->report);
	case FMT_NONE:
		break;
	}
	return -EINVAL;
}

/*
 * Writes into a temporary file next to path and renames it over path once
 * complete, so a failed export never leaves half a file under its name.
 */
static int write_file(const char *path, const struct model *m, const struct export_opts *o)
{
	size_t n = strlen(path);
	char *tmp = malloc(n + sizeof(".XXXXXX"));
	if (!tmp) {
		cli_error("out of memory; free memory or use a machine with more");
		return 1;
	}
	memcpy(tmp, path, n);
	memcpy(tmp + n, ".XXXXXX", sizeof(".XXXXXX"));
	int fd = mkstemp(tmp);
	if (fd < 0) {
		cli_error("cannot create %s: %s; check that its directory exists and is writable", path,
			  strerror(errno));
		free(tmp);
		return 1;
	}
	/* mkstemp makes 0600; an export is an ordinary file */
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	FILE *out = fdopen(fd, "wb");
	int ret = out ? write_format(out, m, o) : -errno;
	if (out && fclose(out) && !ret)
		ret = errno ? -errno : -EIO;
	else if (!out)
		close(fd);
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret) {
		unlink(tmp);
		cli_error("cannot write %s: %s; check the free space and the destination", path, strerror(-ret));
	}
	free(tmp);
	return ret ? 1 : 0;
}

int cmd_export(int argc, char **argv)
{
	const char *path = NULL, *out = NULL, *val, *metric = NULL;
	int no_more_opts = 0, top_set = 0;
	struct export_opts o = { .fmt = FMT_NONE, .metric = MODEL_BY_PEAK };

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
		} else if (cli_opt_value(argc, argv, &i, "--format", &val) || cli_opt_value(argc, argv, &i, "-f", &val)) {
			size_t k;
			if (!val)
				return usage_error("--format needs a format");
			for (k = 0; k < sizeof(formats) / sizeof(formats[0]); k++)
				if (!strcmp(val, formats[k].name))
					break;
			if (k == sizeof(formats) / sizeof(formats[0]))
				return usage_error("unknown format '%s'", val);
			o.fmt = formats[k].fmt;
		} else if (cli_opt_value(argc, argv, &i, "--output", &val) || cli_opt_value(argc, argv, &i, "-o", &val)) {
			if (!val || !*val)
				return usage_error("-o needs a file name");
			out = val;
		} else if (cli_opt_value(argc, argv, &i, "--metric", &val)) {
			if (!val || folded_metric_parse(val, &o.metric) < 0)
				return val ? usage_error("unknown metric '%s'", val) : usage_error("--metric needs a metric");
			metric = val;
		} else if (cli_opt_value(argc, argv, &i, "--top", &val)) {
			if (cli_parse_count(val, &o.report.top) < 0)
				return usage_error("--top needs a number of stacks");
			top_set = 1;
		} else if (cli_opt_value(argc, argv, &i, "--depth", &val)) {
			if (cli_parse_count(val, &o.report.depth) < 0)
				return usage_error("--depth needs a number of frames");
		} else {
			return usage_error("unknown option '%s'", a);
		}
	}
	if (!path)
		return usage_error("no trace file given");
	if (o.fmt == FMT_NONE)
		return usage_error("no --format given");
	if (metric && o.fmt != FMT_FOLDED)
		return usage_error("--metric is for --format folded; the other formats hold every metric");
	if (!top_set)
		o.report.top = REPORT_JSON_TOP;
	o.report.trace = path;
	if (out && !strcmp(out, "-"))
		out = NULL;
	if (!out && o.fmt == FMT_PPROF && isatty(STDOUT_FILENO)) {
		cli_error("export: pprof is binary (gzip); give a file with -o, e.g. -o profile.pb.gz");
		return 2;
	}

	struct model *m = cli_load(path, 0);
	if (!m)
		return 1;
	int status;
	if (out) {
		status = write_file(out, m, &o);
	} else {
		int ret = write_format(stdout, m, &o);
		if (ret < 0)
			cli_error("cannot write the export: %s; check the output's destination", strerror(-ret));
		status = ret < 0;
	}
	if (!status)
		cli_warn_incomplete(m, path, "the export");
	model_free(m);
	return status;
}
