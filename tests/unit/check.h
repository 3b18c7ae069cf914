/*
 * check.h: the unit tests' one way to report. One line per check ("ok" or
 * "FAIL" and what was compared), and check_done() prints the closing
 * "N passed, M failed" and gives the exit status.
 */
#ifndef HS_CHECK_H
#define HS_CHECK_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

static inline void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void check(int ok, const char *fmt, ...)
{
	va_list ap;
	printf("%s ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout); /* a crash later still shows what passed */
	ok ? passed++ : failed++;
}

static inline void check_u(const char *what, uint64_t got, uint64_t want)
{
	if (got == want)
		check(1, "%s = %" PRIu64, what, got);
	else
		check(0, "%s = %" PRIu64 ", want %" PRIu64, what, got, want);
}

static inline void check_i(const char *what, int64_t got, int64_t want)
{
	if (got == want)
		check(1, "%s = %" PRId64, what, got);
	else
		check(0, "%s = %" PRId64 ", want %" PRId64, what, got, want);
}

static inline void check_s(const char *what, const char *got, const char *want)
{
	int ok = got && want ? !strcmp(got, want) : got == want;
	check(ok, "%s = \"%s\"%s%s%s", what, got ? got : "(null)", ok ? "" : ", want \"", ok ? "" : want ? want : "(null)",
	      ok ? "" : "\"");
}

static inline void check_contains(const char *what, const char *hay, const char *needle)
{
	char shown[256];
	size_t k = 0;
	/* one line per check: show a newline in the needle as \n */
	for (const char *c = needle; *c && k + 3 < sizeof(shown); c++) {
		if (*c == '\n') {
			shown[k++] = '\\';
			shown[k++] = 'n';
		} else {
			shown[k++] = *c;
		}
	}
	shown[k] = 0;
	int ok = hay && strstr(hay, needle);
	check(ok, "%s contains \"%s\"", what, shown);
	if (!ok && hay)
		printf("     in: %.600s\n", hay);
}

/* xorshift64: random tests that run the same way every time. */
static inline uint64_t check_rnd(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* The closing line, and the exit status: 1 when any check failed. */
static inline int check_done(void)
{
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif
