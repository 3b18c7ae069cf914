/* cli.h: one function per subcommand, dispatched from the table in main.c. */
#ifndef HS_CLI_H
#define HS_CLI_H

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

#endif
