/* cmd_record.c: `heapscope record`: parses the options; src/record does the work. */
#include "cli.h"
#include "record/record.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"usage: heapscope record [-o FILE] [--force] [--interval MS] [--no-freeres] [--no-follow] [--no-cache] [--] PROGRAM [ARGS...]\n"
	"\n"
	"Runs PROGRAM with its heap use recorded into a trace file, then prints\n"
	"where the trace is. PROGRAM is looked up on PATH; its input, output and\n"
	"exit status are its own (128+N when signal N ended it). Its child processes\n"
	"(fork, exec, posix_spawn, system) are recorded too, each as its own process\n"
	"of the trace; the recording waits up to 2 s for those that outlive it.\n"
	"\n"
	"  -o, --output FILE   the trace to write (default: heapscope.PROGRAM.PID.hst)\n"
	"  -f, --force         replace FILE if it exists (a regular file only)\n"
	"      --interval MS   sample the resident set size every MS milliseconds (default 10)\n"
	"      --no-freeres    do not free libc's own buffers at exit: they show as leaks\n"
	"      --no-follow     record PROGRAM only, not the processes it starts\n"
	"      --no-cache      resolve every address from the binaries' debug info, without\n"
	"                      the symbol cache ($XDG_CACHE_HOME/heapscope, else ~/.cache/heapscope)\n"
	"  -h, --help          this help\n"
	"\n"
	"HEAPSCOPE_CLOCK=tsc|monotonic|auto picks the clock of the trace's times:\n"
	"the calibrated TSC (auto: where the kernel keeps time with it) or\n"
	"clock_gettime(CLOCK_MONOTONIC). Both count CLOCK_MONOTONIC nanoseconds.\n"
	"HEAPSCOPE_RING=membarrier|fence|auto picks how the program's threads order\n"
	"their events for the recorder: a barrier the recorder sends with membarrier(2)\n"
	"(auto: where it can), or a full barrier in each event.\n"
	"\n"
	"Ctrl-C goes to the program; the trace is finished once it ends.\n"
	"Exit status 127: PROGRAM not found; 126: it cannot run under heapscope\n"
	"(not executable, statically linked, setuid); 1: the trace could not be written.\n";

static int parse_interval(const char *s, uint64_t *ns)
{
	char *end;
	errno = 0;
	unsigned long long ms = strtoull(s, &end, 10);
	if (errno || end == s || *end || ms < 1 || ms > 3600000 || s[0] == '-') {
		cli_error("record: --interval takes milliseconds from 1 to 3600000, not '%s'; for example --interval 10",
			  s);
		return -EINVAL;
	}
	*ns = ms * 1000000ull;
	return 0;
}

int cmd_record(int argc, char **argv)
{
	enum { OPT_INTERVAL = 256, OPT_NO_FREERES, OPT_NO_FOLLOW, OPT_NO_CACHE };
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "no-freeres", no_argument, NULL, OPT_NO_FREERES },
		{ "no-follow", no_argument, NULL, OPT_NO_FOLLOW },
		{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rec_options o = { .interval_ns = REC_DEFAULT_INTERVAL_MS * 1000000ull,
				 .grace_ns = REC_DEFAULT_GRACE_MS * 1000000ull };
	int c;

	opterr = 0;
	optind = 1;
	/* '+': options end at PROGRAM, whose own options are its business */
	while ((c = getopt_long(argc, argv, "+:o:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (!*optarg) {
				cli_error("record: -o needs a file name; for example -o run.hst");
				return 2;
			}
			o.output = optarg;
			break;
		case 'f':
			o.force = 1;
			break;
		case OPT_INTERVAL:
			if (parse_interval(optarg, &o.interval_ns))
				return 2;
			break;
		case OPT_NO_FREERES:
			o.no_freeres = 1;
			break;
		case OPT_NO_FOLLOW:
			o.no_follow = 1;
			break;
		case OPT_NO_CACHE:
			o.no_cache = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case ':':
			cli_error("record: %s needs a value; run 'heapscope record --help'", argv[optind - 1]);
			return 2;
		default:
			if (optopt)
				cli_error("record: unknown option '-%c'; run 'heapscope record --help'", optopt);
			else
				cli_error("record: unknown option '%s'; run 'heapscope record --help'", argv[optind - 1]);
			return 2;
		}
	}
	if (optind >= argc) {
		cli_error("record: no program given; usage: heapscope record [OPTIONS] [--] PROGRAM [ARGS...]");
		return 2;
	}
	o.argv = argv + optind;
	return rec_record(&o);
}
