#include "cli.h"
int cmd_record(int argc, char **argv) { (void)argc; (void)argv; cli_error("record: not built yet"); return 2; }
