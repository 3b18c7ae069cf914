/*
 * cmd_report.c: `heapscope report FILE [--json] [--top N] [--depth N]`.
 * Builds the model of a trace and prints it as text or JSON.
 * Exit status: 0 report printed (also for a truncated trace, which the report
 * marks INCOMPLETE), 1 the trace cannot be read or is corrupt, 2 bad usage.
 */
#include "cli.h"
#include "analyze/model.h"
#include "report/report.h"

#include <stdio.h>
#include <string.h>

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

/* "heapscope: report: <message>; <usage>", exit status 2 */
#define usage_error(...) cli_usage_error("report", USAGE, __VA_ARGS__)

int cmd_report(int argc, char **argv)
{
	const char *path = NULL, *val;
	int json = 0, top_set = 0, depth_set = 0, no_more_opts = 0;
	size_t pid = 0; /* --pid: 0 is no process, so it stands for all of them */
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
		} else if (cli_opt_value(argc, argv, &i, "--top", &val)) {
			if (cli_parse_count(val, &o.top) < 0)
				return val ? usage_error("--top needs a number of stacks, not '%s'", val)
					   : usage_error("--top needs a number of stacks");
			top_set = 1;
		} else if (cli_opt_value(argc, argv, &i, "--pid", &val)) {
			if (cli_parse_count(val, &pid) < 0 || !pid)
				return val ? usage_error("--pid needs a process id, not '%s'", val)
					   : usage_error("--pid needs a process id");
		} else if (cli_opt_value(argc, argv, &i, "--depth", &val)) {
			if (cli_parse_count(val, &o.depth) < 0)
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

	struct model *m = cli_load(path, pid);
	if (!m)
		return 1;

	int ret = json ? report_json(stdout, m, &o) : report_text(stdout, m, &o);
	if (ret < 0) {
		cli_error("cannot write the report: %s; check the output's destination", strerror(-ret));
		model_free(m);
		return 1;
	}
	cli_warn_incomplete(m, path, "the report");
	model_free(m);
	return 0;
}
