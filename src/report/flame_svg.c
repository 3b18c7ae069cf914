/*
 * flame_svg.c: the standalone flame graph SVG (`heapscope flamegraph`).
 * Laid out here, root at the bottom, children ordered by value; the frames
 * are plain SVG so that any viewer shows them, and an inline script
 * (html_assets/flame_svg.js) adds click-to-zoom and search in a browser.
 * Every name from the trace goes through xml_text(), which also turns
 * invalid UTF-8 and characters XML forbids into U+FFFD.
 */
#include "report/flame.h"
#include "report/html_assets.h"
#include "report/report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_H 16
#define FONT_PX 11
#define CHAR_W 6.6    /* average advance of an 11 px sans-serif character, estimated */
#define PAD 10
#define TOP 62        /* title, subtitle, controls */
#define BOTTOM 28     /* details line */
#define MIN_W 0.1     /* narrower frames are left out, as flamegraph.pl does */
#define MAX_FRAMES 12000 /* and the narrowest beyond these: a file a browser opens at once */

/* Length of the valid UTF-8 sequence at s that XML allows, or 0. */
static size_t xml_char_len(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return c >= 0x20 || c == '\t' || c == '\n' || c == '\r' ? 1 : 0;
	/* U+FFFE and U+FFFF are not XML characters */
	if (c == 0xef && s[1] == 0xbf && (s[2] == 0xbe || s[2] == 0xbf))
		return 0;
	return report_utf8_len(s);
}

/* Text for XML content and attribute values alike. */
static void xml_text(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str, *run = s;
	while (*s) {
		size_t n = xml_char_len(s);
		const char *esc = NULL;
		switch (n ? *s : 0) {
		case 0: esc = "\xef\xbf\xbd"; n = 1; break; /* U+FFFD */
		case '&': esc = "&amp;"; break;
		case '<': esc = "&lt;"; break;
		case '>': esc = "&gt;"; break;
		case '"': esc = "&quot;"; break;
		case '\'': esc = "&apos;"; break;
		case '\n': esc = "&#10;"; break;
		case '\r': esc = "&#13;"; break;
		case '\t': esc = "&#9;"; break;
		}
		if (esc) {
			/* what needs no escape went out in one write */
			fwrite(run, 1, (size_t)(s - run), out);
			fputs(esc, out);
			run = s + n;
		}
		s += n;
	}
	fwrite(run, 1, (size_t)(s - run), out);
}

/* The label that fits w pixels: the short name, else its head and "…". */
static const char *fit(const char *name, double w, char *buf, size_t len)
{
	long n = (long)floor((w - 6) / CHAR_W);
	size_t chars = 0, i = 0, cut = 0;
	if (n < 3)
		return "";
	for (const unsigned char *s = (const unsigned char *)name; s[i]; chars++) {
		if ((long)chars == n - 1)
			cut = i;
		i++;
		while ((s[i] & 0xc0) == 0x80)
			i++;
	}
	if ((long)chars <= n)
		return name;
	if (cut + 4 > len)
		return "";
	memcpy(buf, name, cut);
	memcpy(buf + cut, "\xe2\x80\xa6", 4);
	return buf;
}

static void fmt_value(char *buf, size_t len, uint64_t v, int bytes)
{
	char a[32], b[32];
	if (!bytes) {
		report_count(buf, len, v);
		return;
	}
	report_bytes(a, sizeof(a), v);
	if (v < 1024)
		snprintf(buf, len, "%s", a);
	else
		snprintf(buf, len, "%s (%s B)", a, report_count(b, sizeof(b), v));
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* Deterministic colour per name, so a function has one colour everywhere. */
static unsigned name_hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void colour(char *buf, size_t len, const struct flame_tree *t, const struct flame_node *nd,
		   enum model_key key, double max_delta)
{
	if (t->diff) {
		double d = (double)nd->v[key] - (double)nd->b[key];
		double r = max_delta > 0 ? fabs(d) / max_delta : 0;
		int c = (int)(235 - 175 * r);
		if (d > 0)
			snprintf(buf, len, "rgb(255,%d,%d)", c, c);
		else if (d < 0)
			snprintf(buf, len, "rgb(%d,%d,255)", c, c);
		else
			snprintf(buf, len, "rgb(232,232,232)");
		return;
	}
	unsigned h = name_hash(nd->name);
	double v1 = (h & 0xff) / 255.0, v2 = ((h >> 8) & 0xff) / 255.0, v3 = ((h >> 16) & 0xff) / 255.0;
	switch (nd->origin) {
	case FLAME_APP: /* the program's own code: warm red and orange */
		snprintf(buf, len, "rgb(%d,%d,%d)", 225 + (int)(30 * v1), 95 + (int)(80 * v2), 45 + (int)(30 * v3));
		break;
	case FLAME_LIB: /* libraries and runtimes: sand */
		snprintf(buf, len, "rgb(%d,%d,%d)", 235 + (int)(20 * v1), 190 + (int)(40 * v2), 110 + (int)(40 * v3));
		break;
	default: /* no symbol */
		snprintf(buf, len, "rgb(%d,%d,%d)", 190 + (int)(20 * v1), 190 + (int)(20 * v1), 196 + (int)(20 * v1));
	}
}

struct svg {
	FILE *out;
	const struct flame_tree *t;
	enum model_key key;
	double scale;      /* pixels per unit of value */
	unsigned height;
	uint64_t total;
	double max_delta;
	double min_w;      /* narrower frames are left out */
	/* used before recursing, so one pair serves every depth */
	char shortn[512], fitted[512];
};

static void tooltip(struct svg *s, const struct flame_node *nd)
{
	const struct flame_tree *t = s->t;
	enum model_key k = s->key;
	int bytes = flame_key_is_bytes(k);
	char v[96], c[96];
	xml_text(s->out, nd->name);
	fputs("&#10;", s->out);
	if (t->diff) {
		char b[96], d[96];
		uint64_t nv = nd->v[k], bv = nd->b[k];
		uint64_t dv = nv > bv ? nv - bv : bv - nv;
		fmt_value(d, sizeof(d), dv, bytes);
		fmt_value(b, sizeof(b), bv, bytes);
		fmt_value(v, sizeof(v), nv, bytes);
		fprintf(s->out, "%s%s: %s \xe2\x86\x92 %s", nv > bv ? "+" : nv < bv ? "\xe2\x88\x92" : "\xc2\xb1", d, b, v);
		if (bv)
			fprintf(s->out, " (%+.1f%%)", 100.0 * ((double)nv - (double)bv) / (double)bv);
	} else {
		/* "480 B in 10 blocks", "100 allocations, 4.7 KiB (4,800 B)" */
		static const char *const unit[FLAME_KEYS][2] = {
			[MODEL_BY_PEAK] = { "block", "blocks" },
			[MODEL_BY_ALLOCATIONS] = { "allocation", "allocations" },
			[MODEL_BY_BYTES] = { "allocation", "allocations" },
			[MODEL_BY_TEMPORARY] = { "temporary allocation", "temporary allocations" },
			[MODEL_BY_LEAKED] = { "block", "blocks" },
		};
		fmt_value(v, sizeof(v), nd->v[k], bytes);
		fmt_value(c, sizeof(c), nd->c[k], !bytes);
		if (bytes)
			fprintf(s->out, "%s in %s %s", v, c, unit[k][nd->c[k] != 1]);
		else
			fprintf(s->out, "%s %s, %s", v, unit[k][nd->v[k] != 1], c);
		fprintf(s->out, ", %.2f%% of %s", pct(nd->v[k], s->total), flame_key_title(k));
	}
	if (nd->file || nd->inlined) {
		fputs("&#10;", s->out);
		if (nd->file) {
			xml_text(s->out, nd->file);
			if (nd->line)
				fprintf(s->out, ":%" PRIu32, nd->line);
		}
		if (nd->inlined)
			fputs(nd->file ? " (inlined)" : "inlined", s->out);
	}
}

static int frame(struct svg *s, uint32_t i, double x)
{
	const struct flame_tree *t = s->t;
	const struct flame_node *nd = &t->nodes[i];
	double w = (double)nd->v[s->key] * s->scale;
	char fill[64];
	if (w < s->min_w)
		return 0;
	double y = (double)s->height - BOTTOM - (double)(nd->depth + 1) * FRAME_H;
	const char *sn = flame_short_name(nd->name, s->shortn, sizeof(s->shortn));
	colour(fill, sizeof(fill), t, nd, s->key, s->max_delta);
	fputs("<g class=\"f\"", s->out);
	if (strcmp(sn, nd->name)) {
		fputs(" data-s=\"", s->out);
		xml_text(s->out, sn);
		fputc('"', s->out);
	}
	fputs("><title>", s->out);
	tooltip(s, nd);
	fprintf(s->out, "</title><rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"%s\"/>", x, y, w,
		FRAME_H - 1, fill);
	const char *label = fit(sn, w, s->fitted, sizeof(s->fitted));
	fprintf(s->out, "<text x=\"%.2f\" y=\"%.1f\">", x + 3, y + FRAME_H - 4.5);
	xml_text(s->out, label);
	fputs("</text></g>\n", s->out);

	/* children, largest first, from the left edge of the parent */
	size_t n = flame_children(t, i, s->key, NULL, 0);
	if (!n)
		return 0;
	uint32_t *kids = malloc(n * sizeof(*kids));
	if (!kids)
		return -ENOMEM;
	flame_children(t, i, s->key, kids, n);
	double cx = x;
	int ret = 0;
	for (size_t k = 0; k < n && !ret; k++) {
		ret = frame(s, kids[k], cx);
		cx += (double)t->nodes[kids[k]].v[s->key] * s->scale;
	}
	free(kids);
	return ret;
}

static double max_delta(const struct flame_tree *t, enum model_key key)
{
	double m = 0;
	for (size_t i = 1; i < t->n; i++) {
		double d = fabs((double)t->nodes[i].v[key] - (double)t->nodes[i].b[key]);
		if (d > m)
			m = d;
	}
	return m;
}

static int cmp_desc(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? 1 : a > b ? -1 : 0;
}

/* The narrowest width drawn: MIN_W, or wider so that at most MAX_FRAMES are.
 * A frame is never wider than its parent, so the drawn frames stay a tree. */
static double min_width(const struct flame_tree *t, enum model_key key, double scale)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		n += (double)t->nodes[i].v[key] * scale >= MIN_W;
	if (n <= MAX_FRAMES)
		return MIN_W;
	double *w = malloc(n * sizeof(*w));
	if (!w)
		return (double)1; /* a coarser picture rather than none */
	n = 0;
	for (size_t i = 0; i < t->n; i++) {
		double x = (double)t->nodes[i].v[key] * scale;
		if (x >= MIN_W)
			w[n++] = x;
	}
	qsort(w, n, sizeof(*w), cmp_desc);
	double m = w[MAX_FRAMES - 1];
	free(w);
	/* ties at the cut would overshoot: cut just above them */
	return nextafter(m, INFINITY);
}

/* The depth of the deepest frame that will be drawn. */
static uint32_t drawn_depth(const struct flame_tree *t, enum model_key key, double scale, double min_w)
{
	uint32_t d = 0;
	for (size_t i = 0; i < t->n; i++)
		if ((double)t->nodes[i].v[key] * scale >= min_w && t->nodes[i].depth > d)
			d = t->nodes[i].depth;
	return d;
}

int flame_write_svg(FILE *out, const struct flame_tree *t, enum model_key key, const struct flame_svg_opts *o)
{
	struct svg s = { .out = out, .t = t, .key = key };
	unsigned width = o && o->width ? o->width : 1200;
	char title[160];
	s.total = t->nodes[0].v[key];
	s.scale = s.total ? (double)(width - 2 * PAD) / (double)s.total : 0;
	s.max_delta = t->diff ? max_delta(t, key) : 0;
	s.min_w = s.total ? min_width(t, key, s.scale) : MIN_W;
	uint32_t depth = s.total ? drawn_depth(t, key, s.scale, s.min_w) : 0;
	s.height = TOP + (depth + 1) * FRAME_H + BOTTOM;
	if (o && o->title)
		snprintf(title, sizeof(title), "%s", o->title);
	else
		snprintf(title, sizeof(title), "%s: %s", t->diff ? "Differential flame graph" : "Flame graph",
			 flame_key_title(key));

	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		     "<svg version=\"1.1\" width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\" data-cw=\"%.2f\" "
		     "xmlns=\"http://www.w3.org/2000/svg\">\n",
		width, s.height, width, s.height, CHAR_W);
	fprintf(out, "<style type=\"text/css\"><![CDATA[\n%s]]></style>\n", html_asset_flame_svg_css);
	fprintf(out, "<script type=\"text/ecmascript\"><![CDATA[\n%s]]></script>\n", html_asset_flame_svg_js);
	fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"#ffffff\"/>\n", width, s.height);
	fprintf(out, "<text id=\"title\" x=\"%u\" y=\"24\">", width / 2);
	xml_text(out, title);
	fputs("</text>\n", out);
	fprintf(out, "<text id=\"subtitle\" x=\"%u\" y=\"42\">", width / 2);
	if (o && o->subtitle)
		xml_text(out, o->subtitle);
	fputs("</text>\n", out);
	fprintf(out, "<text id=\"unzoom\" class=\"hide\" x=\"%d\" y=\"%d\">Reset zoom</text>\n", PAD, TOP - 6);
	fprintf(out, "<text id=\"search\" x=\"%u\" y=\"%d\">Search</text>\n", width - PAD, TOP - 6);
	fprintf(out, "<text id=\"details\" x=\"%d\" y=\"%u\"> </text>\n", PAD, s.height - 10);
	fprintf(out, "<text id=\"matched\" x=\"%u\" y=\"%u\"> </text>\n", width - PAD, s.height - 10);
	fputs("<g id=\"frames\">\n", out);
	int ret = 0;
	if (s.total)
		ret = frame(&s, 0, PAD);
	else
		fprintf(out, "<text x=\"%u\" y=\"%u\" text-anchor=\"middle\">No %s in this trace.</text>\n",
			width / 2, TOP + FRAME_H, flame_key_title(key));
	fputs("</g>\n</svg>\n", out);
	if (ret)
		return ret;
	errno = 0;
	if (fflush(out) || ferror(out))
		return errno ? -errno : -EIO;
	return 0;
}
