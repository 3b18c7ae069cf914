/*
 * flame_name.c: short names for narrow flame graph frames (flame_short_name).
 * A small recursive reader of C++ and Rust names: paths of segments joined
 * by "::", generic arguments, qualified paths ("<T as Trait>::f"), impl
 * blocks, closures, parameter lists and operator names. It only ever drops
 * text, so whatever it does not understand comes out as it came in.
 */
#include "report/flame.h"

#include <string.h>

#define MAX_SEGS 64
#define MAX_DEPTH 16
#define ELLIPSIS "\xe2\x80\xa6" /* U+2026 */

struct out {
	char *buf;
	size_t len, cap; /* cap excludes the NUL */
	int bad;         /* brackets that do not pair: the caller keeps the name whole */
	int depth;       /* paths within paths; deep nesting gives up (stack use) */
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len + n > o->cap) {
		o->bad = 1;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static int ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '$' || c == '~' || (unsigned char)c >= 0x80;
}

static int open_of(char c)
{
	return c == '<' ? '>' : c == '(' ? ')' : c == '[' ? ']' : c == '{' ? '}' : 0;
}

/* Index of the bracket closing s[i], across nested brackets of all kinds;
 * "->" is an arrow, not a bracket. Returns n when they do not pair. */
static size_t match(const char *s, size_t n, size_t i)
{
	char stack[256];
	size_t depth = 0;
	for (size_t j = i; j < n; j++) {
		char c = s[j];
		if (open_of(c)) {
			if (depth == sizeof(stack))
				return n;
			stack[depth++] = (char)open_of(c);
		} else if (c == '>' || c == ')' || c == ']' || c == '}') {
			if (c == '>' && j > i && s[j - 1] == '-')
				continue;
			if (!depth || stack[depth - 1] != c)
				return n;
			if (--depth == 0)
				return j;
		}
	}
	return n;
}

static void expr(struct out *o, const char *s, size_t n);

/* The operator's own characters after "operator": "<<", "()", "[]", " new[]", " bool". */
static size_t operator_token(const char *s, size_t n, size_t i)
{
	if (i + 1 < n && ((s[i] == '(' && s[i + 1] == ')') || (s[i] == '[' && s[i + 1] == ']')))
		return i + 2;
	if (i < n && s[i] == ' ' && i + 1 < n && ident_char(s[i + 1])) {
		i++;
		while (i < n && ident_char(s[i]))
			i++;
		if (i + 1 < n && s[i] == '[' && s[i + 1] == ']')
			i += 2;
		return i;
	}
	while (i < n && strchr("+-*/%^&|~!=<>,", s[i]) && s[i])
		i++;
	return i;
}

struct seg {
	size_t start;  /* offset in the path's output */
	int module;    /* a lowercase identifier or a closure: not a type */
};

/* Reads one path at s[*pos] and writes it shortened. */
static void path(struct out *o, const char *s, size_t n, size_t *pos)
{
	char tmp[2048];
	struct out p = { tmp, 0, sizeof(tmp), 0, o->depth + 1 };
	struct seg segs[MAX_SEGS];
	size_t nseg = 0, i = *pos;

	if (p.depth > MAX_DEPTH) {
		o->bad = 1;
		return;
	}
	for (;;) {
		size_t start = p.len;
		int module = 0;
		if (i < n && (s[i] == '<' || s[i] == '(' || s[i] == '{')) {
			size_t j = match(s, n, i);
			if (j >= n) {
				o->bad = 1;
				return;
			}
			if (s[i] == '<') {
				/* a qualified path or an impl block: shorten inside */
				put(&p, "<", 1);
				expr(&p, s + i + 1, j - i - 1);
				put(&p, ">", 1);
			} else {
				/* "{{closure}}", "(anonymous namespace)": as they are */
				put(&p, s + i, j - i + 1);
				module = 1;
			}
			i = j + 1;
		} else {
			size_t b = i;
			int lower = i < n && ((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_');
			while (i < n && ident_char(s[i])) {
				if (s[i] >= 'A' && s[i] <= 'Z')
					lower = 0;
				i++;
			}
			if (i - b == 8 && !strncmp(s + b, "operator", 8)) {
				i = operator_token(s, n, i);
				lower = 0;
				if (i + 1 < n && s[i] == ' ' && s[i + 1] == '<')
					i++;
			}
			put(&p, s + b, i - b);
			module = lower;
			if (i < n && s[i] == '<') {
				size_t j = match(s, n, i);
				if (j >= n) {
					o->bad = 1;
					return;
				}
				put(&p, "<" ELLIPSIS ">", strlen("<" ELLIPSIS ">"));
				module = 0; /* generic arguments: a type (or a template function) */
				i = j + 1;
			}
		}
		if (nseg < MAX_SEGS)
			segs[nseg++] = (struct seg){ start, module };
		if (!(i + 1 < n && s[i] == ':' && s[i + 1] == ':'))
			break;
		i += 2;
		if (i < n && s[i] == '<' && !(n - i > 6 && !strncmp(s + i, "<impl ", 6))) {
			/* turbofish "f::<T>": arguments of the segment before */
			size_t j = match(s, n, i);
			if (j >= n) {
				o->bad = 1;
				return;
			}
			put(&p, "::<" ELLIPSIS ">", strlen("::<" ELLIPSIS ">"));
			i = j + 1;
			if (!(i + 1 < n && s[i] == ':' && s[i + 1] == ':'))
				break;
			i += 2;
		}
		put(&p, "::", 2);
	}
	/* parameters of a function */
	if (i < n && s[i] == '(') {
		size_t j = match(s, n, i);
		if (j >= n) {
			o->bad = 1;
			return;
		}
		put(&p, j == i + 1 ? "()" : "(" ELLIPSIS ")", j == i + 1 ? 2 : strlen("(" ELLIPSIS ")"));
		i = j + 1;
	}
	if (p.bad) {
		o->bad = 1;
		return;
	}
	/* Modules before the first type go; a path of modules and functions
	 * only keeps its last two segments. */
	size_t keep = 0;
	while (keep < nseg && segs[keep].module)
		keep++;
	if (keep == nseg)
		keep = nseg > 2 ? nseg - 2 : 0;
	size_t from = keep < nseg ? segs[keep].start : 0;
	put(o, tmp + from, p.len - from);
	*pos = i;
}

/* Writes s[0..n) with every path in it shortened. */
static void expr(struct out *o, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && !o->bad) {
		char c = s[i];
		if (ident_char(c) || c == '<' || c == '{' ||
		    (c == '(' && n - i > 10 && !strncmp(s + i, "(anonymous", 10))) {
			path(o, s, n, &i);
		} else if (c == '(' || c == '[') {
			size_t j = match(s, n, i);
			if (j >= n) {
				o->bad = 1;
				return;
			}
			put(o, s + i, 1);
			expr(o, s + i + 1, j - i - 1);
			put(o, s + j, 1);
			i = j + 1;
		} else {
			put(o, s + i, 1);
			i++;
		}
	}
}

const char *flame_short_name(const char *name, char *buf, size_t len)
{
	if (!len)
		return buf;
	struct out o = { buf, 0, len - 1, 0, 0 };
	size_t n = strlen(name);
	if (n < 4096)
		expr(&o, name, n);
	if (o.bad || n >= 4096) {
		/* the whole name, cut at a character boundary */
		size_t k = n < len - 1 ? n : len - 1;
		while (k && k < n && ((unsigned char)name[k] & 0xc0) == 0x80)
			k--;
		memcpy(buf, name, k);
		o.len = k;
	}
	buf[o.len] = 0;
	return buf;
}
