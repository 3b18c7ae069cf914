/* Placeholder until the flamegraph command lands. */
#include "cli.h"
int cmd_flamegraph(int argc, char **argv) { (void)argc; (void)argv; cli_error("flamegraph: not built yet"); return 2; }
