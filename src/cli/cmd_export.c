/* Placeholder until the export command lands. */
#include "cli.h"
int cmd_export(int argc, char **argv) { (void)argc; (void)argv; cli_error("export: not built yet"); return 2; }
