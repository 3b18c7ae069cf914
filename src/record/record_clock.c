/*
 * record_clock.c: chooses the recording's clock (hs_clock.h) and calibrates
 * the TSC against CLOCK_MONOTONIC. The first point is taken as the
 * recording starts, the second at least CAL_NS later, just before the
 * program is let go: the program is looked up and spawned in between, so
 * that neither the recorder nor the library (which needs the clock for its
 * first event) waits. Each point is the best of a few tries: the one whose
 * two TSC reads around clock_gettime are closest, with the TSC taken halfway
 * between them.
 *
 * The recorder keeps its own copy: it reads its clock from that, never from
 * the shared memory that the program could overwrite.
 */
#include "record/record.h"

#include <stdio.h>
#include <string.h>

#define CAL_NS 500000ull    /* between the two points: a point is good to ~10 ns here, so 20 ppm at most */
#define CAL_TRIES 8

static struct hs_clock clk;    /* kind MONOTONIC until calibrated */
static unsigned pending_kind; /* the TSC kind to take once calibrated */

uint64_t rec_clock_now(void)
{
	return hs_clock_now(&clk);
}

#if defined(__x86_64__)
/* The first line of path, without its newline, in buf; "" if unreadable. */
static void first_line(const char *path, const char *prefix, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	buf[0] = 0;
	if (!f)
		return;
	while (fgets(buf, (int)len, f))
		if (!prefix || !strncmp(buf, prefix, strlen(prefix)))
			break;
	if (ferror(f) || (prefix && strncmp(buf, prefix, strlen(prefix))))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

static int has_flag(const char *flags, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = flags; (p = strstr(p, name)); p += n)
		if ((p == flags || p[-1] == ' ' || p[-1] == '\t' || p[-1] == ':') && (p[n] == ' ' || !p[n]))
			return 1;
	return 0;
}

/* HS_CLOCK_RDTSCP or HS_CLOCK_LFENCE when the TSC can be used, else
 * HS_CLOCK_MONOTONIC with the reason in why. */
static unsigned tsc_kind(const char **why)
{
	static char flags[8192];
	char src[64];
	first_line("/proc/cpuinfo", "flags", flags, sizeof(flags));
	if (!flags[0]) {
		*why = "/proc/cpuinfo has no flags line";
		return HS_CLOCK_MONOTONIC;
	}
	if (!has_flag(flags, "constant_tsc") || !has_flag(flags, "nonstop_tsc")) {
		*why = "the CPU's TSC is not constant_tsc and nonstop_tsc";
		return HS_CLOCK_MONOTONIC;
	}
	first_line("/sys/devices/system/clocksource/clocksource0/current_clocksource", NULL, src, sizeof(src));
	if (strcmp(src, "tsc")) {
		*why = "the kernel does not keep time with the TSC (its clocksource is not tsc)";
		return HS_CLOCK_MONOTONIC;
	}
	return has_flag(flags, "rdtscp") ? HS_CLOCK_RDTSCP : HS_CLOCK_LFENCE;
}

/* One calibration point: (TSC, CLOCK_MONOTONIC) at the same moment. */
static void point(unsigned kind, uint64_t *tsc, uint64_t *ns)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < CAL_TRIES; i++) {
		uint64_t a = hs_rdtsc(kind), m = hs_clock_mono(), b = hs_rdtsc(kind);
		if (b - a < best) {
			best = b - a;
			*tsc = a + (b - a) / 2;
			*ns = m;
		}
	}
}
#endif

int rec_clock_start(const char *mode)
{
	int want_tsc = 0;
	pending_kind = 0;
	if (mode && *mode && strcmp(mode, "auto")) {
		if (!strcmp(mode, "tsc")) {
			want_tsc = 1;
		} else if (strcmp(mode, "monotonic")) {
			rec_error("HEAPSCOPE_CLOCK is '%s'; use tsc, monotonic or auto", mode);
			return -1;
		} else {
			return 0; /* clk and shared stay MONOTONIC */
		}
	}
#if defined(__x86_64__)
	const char *why = NULL;
	unsigned kind = tsc_kind(&why);
	if (kind == HS_CLOCK_MONOTONIC) {
		if (want_tsc) {
			rec_error("HEAPSCOPE_CLOCK=tsc, but the TSC cannot be used here: %s", why);
			return -1;
		}
		return 0;
	}
	point(kind, &clk.tsc0, &clk.ns0);
	pending_kind = kind;
	return 0;
#else
	if (want_tsc) {
		rec_error("HEAPSCOPE_CLOCK=tsc, but this machine has no TSC");
		return -1;
	}
	return 0;
#endif
}

void rec_clock_share(struct hs_clock *shared)
{
	if (pending_kind)
		atomic_store_explicit(&shared->kind, HS_CLOCK_PENDING, memory_order_release);
}

void rec_clock_finish(struct hs_clock *shared)
{
#if defined(__x86_64__)
	if (atomic_load_explicit(&shared->kind, memory_order_relaxed) != HS_CLOCK_PENDING)
		return;
	unsigned kind = pending_kind;
	uint64_t tsc, ns;
	for (;;) {
		point(kind, &tsc, &ns);
		if (ns >= clk.ns0 + CAL_NS && tsc > clk.tsc0)
			break;
		uint64_t left = clk.ns0 + CAL_NS > ns ? clk.ns0 + CAL_NS - ns : 1000;
		struct timespec ts = { 0, (long)(left < 1000 ? 1000 : left) };
		nanosleep(&ts, NULL);
	}
	/* from the second point on, readings are CLOCK_MONOTONIC as it ran
	 * between the two, in whatever way it ran since */
	clk.mult = (uint64_t)(((unsigned __int128)(ns - clk.ns0) << 32) / (tsc - clk.tsc0));
	clk.tsc0 = tsc;
	clk.ns0 = ns;
	shared->mult = clk.mult;
	shared->tsc0 = clk.tsc0;
	shared->ns0 = clk.ns0;
	atomic_store_explicit(&shared->kind, kind, memory_order_release);
	atomic_store_explicit(&clk.kind, kind, memory_order_relaxed);
#else
	(void)shared;
#endif
}
