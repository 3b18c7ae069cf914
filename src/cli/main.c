/* main.c: the heapscope command. Dispatches to one cmd_* per subcommand. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "record", cmd_record, "run a program and record its heap events: record [-o FILE] -- PROGRAM ARGS" },
	{ "report", cmd_report, "print the report of a trace: report FILE [--json] [--top N] [--depth N]" },
	{ "flamegraph", cmd_flamegraph, "flame graph of a trace: flamegraph FILE [--metric M] [-o out.svg] [--folded]" },
	{ "html", cmd_html, "self-contained HTML report: html FILE -o report.html" },
	{ "export", cmd_export, "other tools' formats: export FILE --format pprof|speedscope|massif|folded|json -o OUT" },
	{ "diff", cmd_diff, "what changed between two traces: diff BASE NEW [--json]" },
	{ "maps", cmd_maps, "memory mappings, grouped: maps PID | maps FILE" },
};

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("heapscope: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fputs("usage: heapscope COMMAND [OPTIONS]\n\ncommands:\n", f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\nRun 'heapscope COMMAND --help' for a command's options.\n", f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	cli_error("unknown command '%s'; run 'heapscope --help' for the list", argv[1]);
	return 2;
}
