/* report_fmt.c: units, numbers and strings formatted the same in every output. */
#include "report/report.h"
#include "common/shm_layout.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const char *report_bytes(char *buf, size_t len, uint64_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return buf;
	}
	double v = (double)bytes / 1024.0;
	unsigned u = 0;
	while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	/* 1023.96 KiB would print as "1024.0 KiB": say 1.0 MiB instead */
	if (v >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

const char *report_count(char *buf, size_t len, uint64_t n)
{
	char digits[32];
	int nd = snprintf(digits, sizeof(digits), "%" PRIu64, n);
	size_t o = 0;
	for (int i = 0; i < nd && o + 1 < len; i++) {
		if (i && (nd - i) % 3 == 0 && o + 2 < len)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	if (len)
		buf[o < len ? o : len - 1] = 0;
	return buf;
}

const char *report_duration(char *buf, size_t len, uint64_t ns)
{
	if (ns < 1000)
		snprintf(buf, len, "%" PRIu64 " ns", ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.2f ms", (double)ns / 1e6);
	else if (ns < 60000000000ull)
		snprintf(buf, len, "%.3f s", (double)ns / 1e9);
	else
		snprintf(buf, len, "%" PRIu64 " min %.1f s", (uint64_t)(ns / 60000000000ull),
			 (double)(ns % 60000000000ull) / 1e9);
	return buf;
}

const char *report_kind_name(unsigned kind)
{
	switch (kind) {
	case HS_EV_MALLOC: return "malloc";
	case HS_EV_CALLOC: return "calloc";
	case HS_EV_REALLOC: return "realloc";
	case HS_EV_REALLOCARRAY: return "reallocarray";
	case HS_EV_POSIX_MEMALIGN: return "posix_memalign";
	case HS_EV_ALIGNED_ALLOC: return "aligned_alloc";
	case HS_EV_MEMALIGN: return "memalign";
	case HS_EV_VALLOC: return "valloc";
	case HS_EV_PVALLOC: return "pvalloc";
	case HS_EV_FREE: return "free";
	case HS_EV_REALLOC_FREE: return "realloc_free";
	case HS_EV_FREE_SIZED: return "free_sized";
	case HS_EV_FREE_ALIGNED_SIZED: return "free_aligned_sized";
	}
	return NULL;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 if the byte at s starts none. */
size_t report_utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

size_t report_put_textn(FILE *out, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str, *end = s + len, *run = s;
	size_t width = 0;
	while (s < end && *s) {
		/* a sequence never spans the end: it is cut at an ASCII byte */
		size_t n = *s >= 0x20 && *s < 0x7f ? 1 : report_utf8_len(s);
		if (n && n <= (size_t)(end - s) && (n > 1 || (*s >= 0x20 && *s != 0x7f))) {
			s += n; /* kept: written with the run it is part of */
		} else {
			/* control characters and stray bytes could drive the terminal */
			if (out) {
				fwrite(run, 1, (size_t)(s - run), out);
				putc('?', out);
			}
			run = ++s;
		}
		width++;
	}
	if (out)
		fwrite(run, 1, (size_t)(s - run), out);
	return width;
}

size_t report_put_text(FILE *out, const char *s)
{
	return report_put_textn(out, s, strlen(s));
}

void rjson_string(FILE *out, const char *str)
{
	if (!str) {
		fputs("null", out);
		return;
	}
	const unsigned char *s = (const unsigned char *)str, *run;
	putc('"', out);
	for (;;) {
		/* what needs no escape goes out in one write */
		for (run = s; *s; ) {
			if (*s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\') {
				s++;
				continue;
			}
			/* A NUL ends the string, so a truncated sequence fails the
			 * checks on the NUL and never reads past it. */
			size_t n = *s >= 0x80 ? report_utf8_len(s) : 0;
			if (n < 2)
				break;
			s += n;
		}
		fwrite(run, 1, (size_t)(s - run), out);
		if (!*s)
			break;
		unsigned char c = *s++;
		switch (c) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\b': fputs("\\b", out); break;
		case '\f': fputs("\\f", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(out, "\\u%04x", c);
			else
				fputs("\\ufffd", out); /* a byte of no valid UTF-8 sequence */
		}
	}
	putc('"', out);
}
