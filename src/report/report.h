/*
 * report.h: the outputs of a model. Each output reads struct model only
 * (src/analyze/model.h) and computes nothing of its own beyond formatting.
 */
#ifndef HS_REPORT_H
#define HS_REPORT_H

#include "analyze/model.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct report_opts {
	size_t top;        /* entries per section; 0 = all */
	size_t depth;      /* frames per stack; 0 = all */
	const char *trace; /* the trace's file name, shown in the header */
};

#define REPORT_TEXT_TOP 5
#define REPORT_TEXT_DEPTH 8
#define REPORT_JSON_TOP 20
#define REPORT_JSON_DEPTH 0

/* The terminal report. Returns 0, or -EIO when writing to out failed. */
int report_text(FILE *out, const struct model *m, const struct report_opts *o);

/* The JSON report (docs/json.md). Returns 0, or -EIO when writing failed. */
int report_json(FILE *out, const struct model *m, const struct report_opts *o);

/* ---- formatting shared by the outputs (report_fmt.c) ------------------- */

/* "512 B", "1.2 KiB", "3.4 MiB", ... (binary units, one decimal). Returns buf. */
const char *report_bytes(char *buf, size_t len, uint64_t bytes);
/* "1,234,567". Returns buf. */
const char *report_count(char *buf, size_t len, uint64_t n);
/* "850 ns", "12.3 us", "4.56 ms", "7.890 s", "2 min 3.4 s". Returns buf. */
const char *report_duration(char *buf, size_t len, uint64_t ns);
/* Name of an enum hs_ev_kind ("malloc", "free", ...) or NULL. */
const char *report_kind_name(unsigned kind);

/* Writes s for a terminal: valid UTF-8 as is, control characters and
 * invalid bytes as '?'. Returns the width in characters (one per code
 * point). out == NULL only measures. */
size_t report_put_text(FILE *out, const char *s);
/* The same for the first len bytes of s. */
size_t report_put_textn(FILE *out, const char *s, size_t len);
/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 if the byte at s starts none.
 * s is NUL-terminated: a sequence cut short by the end is not valid. */
size_t report_utf8_len(const unsigned char *s);

/* JSON string with escapes: quotes, backslash and control characters, and
 * U+FFFD for each byte that is not part of valid UTF-8. NULL writes null. */
void rjson_string(FILE *out, const char *s);

#endif
