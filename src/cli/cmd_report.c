/*
 * cmd_report.c: `heapscope report FILE [--json] [--top N] [--depth N]`.
 * Builds the model of a trace and prints it as text or JSON.
 * Exit status: 0 report printed (also for a truncated trace, which the report
 * marks INCOMPLETE), 1 the trace cannot be read or is corrupt, 2 bad usage.
 */
#include "cli.h"
#include "analyze/model.h"
#include "analyze/model_proc.h"
#include "report/report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define USAGE "usage: heapscope report FILE [--json] [--top N] [--depth N] [--pid PID]"

static void help(void)
{
	printf("%s\n\n"
	       "Prints the heap profile of a trace written by 'heapscope record'.\n\n"
	       "  --json      one JSON object instead of text (fields: docs/json.md)\n"
	       "  --top N     stacks per section (default %d, JSON %d; 0 = all)\n"
	       "  --depth N   frames per stack (default %d, JSON all; 0 = all)\n"
	       "  --pid PID   one process of the recording (its images, if it exec'd): the\n"
	       "              report of that process alone; without it, all of them together\n\n"
	       "Exit status: 0 report printed (a truncated trace is reported and marked\n"
	       "INCOMPLETE), 1 the trace cannot be read or is corrupt, 2 bad usage.\n",
	       USAGE, REPORT_TEXT_TOP, REPORT_JSON_TOP, REPORT_TEXT_DEPTH);
}

/* Parses a count option's value. 0 on success, -1 when it is not a number. */
static int parse_count(const char *s, size_t *out)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > 1000000000ull)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* Matches "--name VALUE" and "--name=VALUE"; advances *i past the value. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n))
		return 0;
	if (argv[*i][n] == '=') {
		*val = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n])
		return 0;
	*val = *i + 1 < argc ? argv[++*i] : NULL;
	return 1;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("heapscope: report: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("; " USAGE "\n", stderr);
	return 2;
}

/* The reader's reason plus what to do about it, on one line. */
static void open_error(const char *path, int ret, const char *err)
{
	if (ret == -ENOENT)
		cli_error("%s; check the path, or record a trace with 'heapscope record -o %s -- PROGRAM'", err, path);
	else if (ret == -EACCES || ret == -EPERM)
		cli_error("%s; check the file's permissions", err);
	else if (ret == -ENOMEM)
		cli_error("%s; free memory or use a machine with more", err);
	else if (strchr(err, ';'))
		cli_error("%s", err); /* the reader already says what to do */
	else
		cli_error("%s; is it a trace written by 'heapscope record'?", err);
}

int cmd_report(int argc, char **argv)
{
	const char *path = NULL, *val;
	int json = 0, top_set = 0, depth_set = 0, no_more_opts = 0, pid_set = 0;
	size_t pid = 0;
	struct report_opts o = { 0 };

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
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (opt_value(argc, argv, &i, "--top", &val)) {
			if (parse_count(val, &o.top) < 0)
				return val ? usage_error("--top needs a number of stacks, not '%s'", val)
					   : usage_error("--top needs a number of stacks");
			top_set = 1;
		} else if (opt_value(argc, argv, &i, "--pid", &val)) {
			if (parse_count(val, &pid) < 0 || !pid)
				return val ? usage_error("--pid needs a process id, not '%s'", val)
					   : usage_error("--pid needs a process id");
			pid_set = 1;
		} else if (opt_value(argc, argv, &i, "--depth", &val)) {
			if (parse_count(val, &o.depth) < 0)
				return val ? usage_error("--depth needs a number of frames, not '%s'", val)
					   : usage_error("--depth needs a number of frames");
			depth_set = 1;
		} else {
			return usage_error("unknown option '%s'", a);
		}
	}
	if (!path)
		return usage_error("no trace file given");
	if (!top_set)
		o.top = json ? REPORT_JSON_TOP : REPORT_TEXT_TOP;
	if (!depth_set)
		o.depth = json ? REPORT_JSON_DEPTH : REPORT_TEXT_DEPTH;
	o.trace = path;

	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		cli_error("%s: is a directory; give the trace file that 'heapscope record' wrote", path);
		return 1;
	}

	struct model *m;
	char err[600];
	int ret = pid_set ? model_load_pid(&m, path, pid, err, sizeof(err)) : model_load(&m, path, err, sizeof(err));
	if (ret == -ESRCH) {
		cli_error("%s", err);
		return 1;
	}
	if (ret < 0) {
		open_error(path, ret, err);
		return 1;
	}
	if (m->sum.gap == MODEL_GAP_CORRUPT) {
		cli_error("%s: %s; the file is damaged: record the program again", path, m->sum.incomplete_reason);
		model_free(m);
		return 1;
	}

	ret = json ? report_json(stdout, m, &o) : report_text(stdout, m, &o);
	if (ret < 0) {
		cli_error("cannot write the report: %s; check the output's destination", strerror(-ret));
		model_free(m);
		return 1;
	}
	if (!m->sum.complete)
		cli_error("%s: incomplete trace: %s; the report covers what was recorded", path,
			  m->sum.incomplete_reason);
	model_free(m);
	return 0;
}
