/* Placeholder until the diff command lands. */
#include "cli.h"
int cmd_diff(int argc, char **argv) { (void)argc; (void)argv; cli_error("diff: not built yet"); return 2; }
