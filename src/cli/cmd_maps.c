/* Placeholder until the maps command lands. */
#include "cli.h"
int cmd_maps(int argc, char **argv) { (void)argc; (void)argv; cli_error("maps: not built yet"); return 2; }
