/* cli.h: one function per subcommand, dispatched from the table in main.c. */
#ifndef HS_CLI_H
#define HS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct model;

/* Each returns the process exit status. argv[0] is the subcommand name. */
int cmd_record(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_flamegraph(int argc, char **argv);
int cmd_html(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_maps(int argc, char **argv);

/* Prints "heapscope: <message>" on stderr; the one error style of the CLI. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cli_util.c: what the subcommands that read traces share. */

/*
 * Prints "heapscope: CMD: <message>; USAGE" on stderr and returns 2, the
 * exit status of bad usage.
 */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Matches argv[*i] against "NAME VALUE" and "NAME=VALUE": returns 1 and sets
 * *val (NULL when the value is missing), advancing *i past a separate value;
 * returns 0 for another option. It does not check the value.
 */
int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **val);

/*
 * Parses a count option's value: digits only, at most 10^9. Returns 0, or
 * -1 when s is NULL or not such a number (*out is then left alone).
 */
int cli_parse_count(const char *s, size_t *out);

/*
 * Loads the trace at path into a model, of process pid alone unless pid is 0.
 * On failure prints one line saying why and what to do, and returns NULL;
 * a corrupt trace is a failure, a truncated one is not (see
 * cli_warn_incomplete). The model is the caller's to model_free.
 */
struct model *cli_load(const char *path, uint64_t pid);

/* Warns, when the trace was cut short, that WHAT covers only what was recorded. */
void cli_warn_incomplete(const struct model *m, const char *path, const char *what);

/*
 * An output written into a temporary file beside path and renamed over it
 * once complete, so a failed run never leaves half a file under its name.
 */
struct cli_output {
	FILE *f;
	char *tmp;        /* written here, renamed to path when complete */
	const char *path; /* NULL: standard output */
};

/*
 * Opens o for path (NULL: standard output). Returns 0 or -errno; on failure
 * o->tmp is NULL only when there was no memory for the temporary name, and
 * nothing is left on disk. Either way the caller ends with cli_output_close.
 */
int cli_output_open(struct cli_output *o, const char *path);

/*
 * Completes o: ret is the writer's status (0 or -errno). Closes and renames
 * the temporary file, or removes it when ret or the close fails. Returns the
 * first error, 0 when the output is in place. Prints nothing; standard
 * output is neither flushed nor closed.
 */
int cli_output_close(struct cli_output *o, int ret);

#endif
