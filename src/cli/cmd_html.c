/* Placeholder until the html command lands. */
#include "cli.h"
int cmd_html(int argc, char **argv) { (void)argc; (void)argv; cli_error("html: not built yet"); return 2; }
