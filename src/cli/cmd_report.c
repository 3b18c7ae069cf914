#include "cli.h"
int cmd_report(int argc, char **argv) { (void)argc; (void)argv; cli_error("report: not built yet"); return 2; }
