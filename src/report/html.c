/*
 * html.c: the HTML report. The page (html_assets/report.html) gets its CSS
 * and script inline and one JSON document of aggregates that the script
 * draws from: the summary, the timeline with the top call sites' series
 * (model_stack_series), the call tree of every metric (flame.h) cut to a
 * node budget, the top stacks of each table, and the size histogram.
 *
 * Escaping: names from the binary reach the page only inside that JSON,
 * which sits in a <script type="application/json"> element: every '<' is
 * written \u003c (so no "</script" or "<!--" can end or bend the element),
 * U+2028/U+2029 are escaped for old parsers, invalid UTF-8 becomes U+FFFD.
 * The script puts them on the page with textContent, never as markup.
 */
#include "report/html.h"
#include "report/flame.h"
#include "report/html_assets.h"
#include "report/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES_CAP 4096 /* a deeper stack keeps its innermost frames and says how deep it was */
#define NONE UINT32_MAX

/* ---- JSON ------------------------------------------------------------------ */

/* A JSON string safe inside a <script> element; NULL writes null. */
static void jstr(FILE *out, const char *str)
{
	if (!str) {
		fputs("null", out);
		return;
	}
	const unsigned char *s = (const unsigned char *)str, *run = s;
	putc('"', out);
	while (*s) {
		size_t n = report_utf8_len(s);
		unsigned char c = *s;
		if (n == 1 && c >= 0x20 && c != 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
			s++;
			continue;
		}
		if (n > 1 && !(n == 3 && s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9))) {
			s += n;
			continue;
		}
		/* what needs no escape went out in one write */
		fwrite(run, 1, (size_t)(s - run), out);
		if (!n) {
			fputs("\\ufffd", out);
			s++;
		} else if (n == 3) {
			fputs(s[2] == 0xa8 ? "\\u2028" : "\\u2029", out);
			s += 3;
		} else {
			s++;
			if (c == '"' || c == '\\')
				fprintf(out, "\\%c", c);
			else
				fprintf(out, "\\u%04x", c);
		}
		run = s;
	}
	fwrite(run, 1, (size_t)(s - run), out);
	putc('"', out);
}

/* Text for HTML element content (the page title). */
static void html_text(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	while (*s) {
		size_t n = report_utf8_len(s);
		if (!n || (n == 1 && (*s < 0x20 || *s == 0x7f))) {
			fputs("\xef\xbf\xbd", out);
			s++;
			continue;
		}
		switch (*s) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default: fwrite(s, 1, n, out);
		}
		s += n;
	}
}

/* ---- strings and frames, each written once and referred to by index -------- */

struct strtab {
	char **v;
	size_t n, cap;
	uint32_t *slots; /* indices into v, NONE = empty; scap a power of two */
	size_t scap;
};

static uint64_t hash_bytes(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return h;
}

static int grow_slots(uint32_t **slots, size_t *scap, size_t n, uint64_t (*rehash)(const void *, uint32_t),
		      const void *ctx)
{
	if ((n + 1) * 2 <= *scap)
		return 0;
	size_t cap = *scap ? *scap * 2 : 1024;
	uint32_t *s = malloc(cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	memset(s, 0xff, cap * sizeof(*s));
	for (size_t j = 0; j < *scap; j++) {
		if ((*slots)[j] == NONE)
			continue;
		size_t i = rehash(ctx, (*slots)[j]) & (cap - 1);
		while (s[i] != NONE)
			i = (i + 1) & (cap - 1);
		s[i] = (*slots)[j];
	}
	free(*slots);
	*slots = s;
	*scap = cap;
	return 0;
}

static uint64_t str_rehash(const void *ctx, uint32_t i)
{
	const char *s = ((const struct strtab *)ctx)->v[i];
	return hash_bytes(s, strlen(s), 0xcbf29ce484222325ull);
}

/* The index of s in the table, added when new; -1 for NULL; -2 out of memory. */
static long str_id(struct strtab *t, const char *s)
{
	if (!s)
		return -1;
	if (grow_slots(&t->slots, &t->scap, t->n, str_rehash, t) < 0)
		return -2;
	size_t mask = t->scap - 1, i = hash_bytes(s, strlen(s), 0xcbf29ce484222325ull) & mask;
	for (; t->slots[i] != NONE; i = (i + 1) & mask)
		if (!strcmp(t->v[t->slots[i]], s))
			return t->slots[i];
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		char **v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -2;
		t->v = v;
		t->cap = cap;
	}
	if (!(t->v[t->n] = strdup(s)))
		return -2;
	t->slots[i] = (uint32_t)t->n;
	return (long)t->n++;
}

struct frame_ent {
	struct model_frame f;
	uint32_t origin;
};

struct frametab {
	struct frame_ent *v;
	size_t n, cap;
	uint32_t *slots;
	size_t scap;
};

/* Frames of one model are equal when these are: its strings are interned. */
static uint64_t frame_hash(const struct model_frame *f)
{
	uint64_t h = 0xcbf29ce484222325ull;
	h = hash_bytes(&f->function, sizeof(f->function), h);
	h = hash_bytes(&f->file, sizeof(f->file), h);
	h = hash_bytes(&f->line, sizeof(f->line), h);
	h = hash_bytes(&f->flags, sizeof(f->flags), h);
	h = hash_bytes(&f->module, sizeof(f->module), h);
	return f->function ? h : hash_bytes(&f->ip, sizeof(f->ip), h);
}

static int frame_eq(const struct model_frame *a, const struct model_frame *b)
{
	return a->function == b->function && a->file == b->file && a->line == b->line && a->flags == b->flags &&
	       a->module == b->module && (a->function || a->ip == b->ip);
}

static uint64_t frame_rehash(const void *ctx, uint32_t i)
{
	return frame_hash(&((const struct frametab *)ctx)->v[i].f);
}

static long frame_id(struct frametab *t, const struct model_frame *f, const struct flame_tree *tree)
{
	if (grow_slots(&t->slots, &t->scap, t->n, frame_rehash, t) < 0)
		return -2;
	size_t mask = t->scap - 1, i = frame_hash(f) & mask;
	for (; t->slots[i] != NONE; i = (i + 1) & mask)
		if (frame_eq(&t->v[t->slots[i]].f, f))
			return t->slots[i];
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct frame_ent *v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -2;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n].f = *f;
	t->v[t->n].origin = flame_frame_origin(tree, f);
	t->slots[i] = (uint32_t)t->n;
	return (long)t->n++;
}

/* ---- the document ---------------------------------------------------------- */

struct doc {
	FILE *out;
	const struct model *m;
	const struct html_opts *o;
	struct flame_tree *tree;
	struct strtab strs;
	struct frametab frames;
	uint32_t *stack_local; /* model stack index -> index in "stacks", or NONE */
	size_t *stacks;        /* the model stack of each local one */
	size_t nstacks;
	struct model_frame *buf;
	int oom;
	char *err;             /* why the trace could not be read again */
	size_t errlen;
};

static long sid(struct doc *d, const char *s)
{
	long id = str_id(&d->strs, s);
	if (id == -2) {
		d->oom = 1;
		id = -1;
	}
	return id;
}

static uint32_t local_stack(struct doc *d, size_t idx)
{
	if (d->stack_local[idx] == NONE) {
		d->stack_local[idx] = (uint32_t)d->nstacks;
		d->stacks[d->nstacks++] = idx;
	}
	return d->stack_local[idx];
}

static void kv_u(FILE *out, const char *k, uint64_t v)
{
	fprintf(out, "\"%s\":%" PRIu64 ",", k, v);
}

static void summary(struct doc *d)
{
	const struct model_summary *s = &d->m->sum;
	FILE *out = d->out;
	fputs("\"summary\":{\"program\":", out);
	jstr(out, s->program);
	fputs(",\"argv\":[", out);
	for (uint32_t i = 0; i < s->argc; i++) {
		if (i)
			putc(',', out);
		jstr(out, s->argv[i]);
	}
	fputs("],", out);
	kv_u(out, "pid", s->pid);
	kv_u(out, "start_unix_ns", s->start_unix_ns);
	kv_u(out, "run_time_ns", s->run_time_ns);
	kv_u(out, "threads", s->threads);
	fprintf(out, "\"exit\":\"%s\",",
		!s->has_end ? "unknown" : s->exit_kind == MODEL_EXITED ? "exited"
				       : s->exit_kind == MODEL_SIGNALED ? "signaled" : "unknown");
	kv_u(out, "exit_code", s->exit_code);
	fprintf(out, "\"complete\":%s,\"incomplete_reason\":", s->complete ? "true" : "false");
	jstr(out, s->complete ? NULL : s->incomplete_reason);
	putc(',', out);
	kv_u(out, "allocations", s->allocations);
	fprintf(out, "\"allocations_per_sec\":%.1f,", s->allocations_per_sec);
	kv_u(out, "frees", s->frees);
	kv_u(out, "allocated_bytes", s->allocated_bytes);
	kv_u(out, "temporary", s->temporary);
	kv_u(out, "temporary_bytes", s->temporary_bytes);
	kv_u(out, "peak_heap", s->peak_heap);
	kv_u(out, "peak_time_ns", s->peak_time_ns);
	kv_u(out, "peak_blocks", s->peak_blocks);
	kv_u(out, "peak_rss", s->peak_rss);
	kv_u(out, "peak_rss_time_ns", s->peak_rss_time_ns);
	kv_u(out, "rss_samples", s->rss_samples);
	kv_u(out, "leaked_bytes", s->leaked_bytes);
	kv_u(out, "leaked_blocks", s->leaked_blocks);
	fprintf(out, "\"leaks_at_exit\":%s,", s->leaks_at_exit ? "true" : "false");
	kv_u(out, "live_bytes", s->live_bytes);
	kv_u(out, "unknown_frees", s->unknown_frees);
	kv_u(out, "reused_live", s->reused_live);
	kv_u(out, "dropped_events", s->dropped_events);
	kv_u(out, "truncated_stacks", s->truncated_stacks);
	kv_u(out, "stacks", d->m->nstacks);
	fputs("\"calls\":{", out);
	int first = 1;
	for (unsigned k = 0; k < MODEL_KINDS; k++) {
		const char *name = report_kind_name(k);
		if (!s->by_kind[k] || !name)
			continue;
		fprintf(out, "%s\"%s\":%" PRIu64, first ? "" : ",", name, s->by_kind[k]);
		first = 0;
	}
	fputs("}},\n", out);
}

/* Importance of a node: its largest share of the root over the metrics. */
static double importance(const struct flame_tree *t, size_t i)
{
	double best = 0;
	for (int k = 0; k < FLAME_KEYS; k++) {
		uint64_t root = t->nodes[0].v[k];
		if (root) {
			double r = (double)t->nodes[i].v[k] / (double)root;
			if (r > best)
				best = r;
		}
	}
	return best;
}

static int cmp_double_desc(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? 1 : a > b ? -1 : 0;
}

/* The call tree, cut to the budget: a node's values include its children's,
 * so keeping the most important nodes keeps whole paths from the root. */
static int tree(struct doc *d)
{
	const struct flame_tree *t = d->tree;
	FILE *out = d->out;
	size_t budget = d->o->tree_nodes ? d->o->tree_nodes : HTML_TREE_NODES;
	uint32_t *map = malloc(t->n * sizeof(*map));
	double *imp = malloc(t->n * sizeof(*imp));
	if (!map || !imp) {
		free(map);
		free(imp);
		return -ENOMEM;
	}
	double cutoff = 0;
	if (t->n > budget) {
		for (size_t i = 0; i < t->n; i++)
			imp[i] = importance(t, i);
		qsort(imp, t->n, sizeof(*imp), cmp_double_desc);
		cutoff = imp[budget - 1];
	}
	size_t kept = 0;
	for (size_t i = 0; i < t->n; i++) {
		uint32_t p = t->nodes[i].parent;
		int keep = i == 0 || (map[p] != NONE && kept < budget && (!cutoff || importance(t, i) >= cutoff));
		map[i] = keep ? (uint32_t)kept++ : NONE;
	}
	fprintf(out, "\"tree\":{\"n\":%zu,\"cut\":%zu,\"name\":[", kept, t->n - kept);
	for (size_t i = 0, k = 0; i < t->n; i++)
		if (map[i] != NONE)
			fprintf(out, "%s%ld", k++ ? "," : "", sid(d, t->nodes[i].name));
	fputs("],\n\"parent\":[", out);
	for (size_t i = 0, k = 0; i < t->n; i++)
		if (map[i] != NONE)
			fprintf(out, "%s%ld", k++ ? "," : "", i ? (long)map[t->nodes[i].parent] : -1L);
	fputs("],\n\"sname\":[", out);
	for (size_t i = 0, k = 0; i < t->n; i++) {
		char buf[512];
		if (map[i] != NONE)
			fprintf(out, "%s%ld", k++ ? "," : "", sid(d, flame_short_name(t->nodes[i].name, buf, sizeof(buf))));
	}
	fputs("],\n\"origin\":[", out);
	for (size_t i = 0, k = 0; i < t->n; i++)
		if (map[i] != NONE)
			fprintf(out, "%s%u", k++ ? "," : "", t->nodes[i].origin | (t->nodes[i].inlined ? 4u : 0u));
	fputs("],\n\"file\":[", out);
	for (size_t i = 0, k = 0; i < t->n; i++)
		if (map[i] != NONE)
			fprintf(out, "%s%ld", k++ ? "," : "", sid(d, t->nodes[i].file));
	fputs("],\n\"line\":[", out);
	for (size_t i = 0, k = 0; i < t->n; i++)
		if (map[i] != NONE)
			fprintf(out, "%s%" PRIu32, k++ ? "," : "", t->nodes[i].line);
	/* per node: the value of each key, then each key's companion number */
	fputs("],\n\"v\":[", out);
	for (size_t i = 0, k = 0; i < t->n; i++) {
		if (map[i] == NONE)
			continue;
		const struct flame_node *nd = &t->nodes[i];
		const char *sep = !k ? "" : k % 8 ? "," : ",\n";
		k++;
		fprintf(out, "%s%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
			     ",%" PRIu64 ",%" PRIu64 ",%" PRIu64,
			sep, nd->v[0], nd->v[1], nd->v[2], nd->v[3], nd->v[4], nd->c[0], nd->c[1], nd->c[2], nd->c[3],
			nd->c[4]);
	}
	fputs("]},\n", out);
	free(map);
	free(imp);
	return 0;
}

static const struct {
	const char *name;
	enum model_key key;
} tables[] = {
	{ "peak", MODEL_BY_PEAK },
	{ "allocations", MODEL_BY_ALLOCATIONS },
	{ "temporary", MODEL_BY_TEMPORARY },
	{ "leaks", MODEL_BY_LEAKED },
};

static int top_tables(struct doc *d)
{
	const struct model *m = d->m;
	size_t want = d->o->top ? d->o->top : HTML_TOP;
	if (want > m->nstacks)
		want = m->nstacks;
	size_t *idx = malloc((want ? want : 1) * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	fputs("\"tables\":{", d->out);
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		size_t n = model_top(m, tables[t].key, want, idx);
		fprintf(d->out, "%s\"%s\":{\"ranked\":%zu,\"rows\":[", t ? "," : "", tables[t].name,
			model_ranked(m, tables[t].key));
		for (size_t i = 0; i < n; i++)
			fprintf(d->out, "%s%" PRIu32, i ? "," : "", local_stack(d, idx[i]));
		fputs("]}", d->out);
	}
	fputs("},\n", d->out);
	free(idx);
	return 0;
}

static int timeline(struct doc *d)
{
	const struct model *m = d->m;
	FILE *out = d->out;
	size_t np = m->ntimeline, idx[HTML_SERIES];
	size_t n = model_top(m, MODEL_BY_PEAK, HTML_SERIES, idx);
	uint64_t *vals = NULL;
	int ret = 0;
	if (n && np) {
		vals = malloc(n * np * sizeof(*vals));
		if (!vals)
			return -ENOMEM;
		ret = model_stack_series(m, d->o->trace, idx, n, vals, d->err, d->errlen);
		if (ret < 0) {
			free(vals);
			return ret;
		}
	}
	fprintf(out, "\"timeline\":{\"step_ns\":%" PRIu64 ",\"heap\":[", m->timeline_step_ns);
	for (size_t p = 0; p < np; p++)
		fprintf(out, "%s%" PRIu64, p ? "," : "", m->timeline[p].heap);
	fputs("],\n\"rss\":[", out);
	for (size_t p = 0; p < np; p++)
		fprintf(out, "%s%" PRIu64, p ? "," : "", m->timeline[p].rss);
	fputs("],\n\"series\":[", out);
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "%s{\"stack\":%" PRIu32 ",\"v\":[", i ? ",\n" : "", local_stack(d, idx[i]));
		for (size_t p = 0; p < np; p++)
			fprintf(out, "%s%" PRIu64, p ? "," : "", vals[i * np + p]);
		fputs("]}", out);
	}
	fputs("]},\n", out);
	free(vals);
	return 0;
}

/* The stacks the tables and the chart name: frames and every number. */
static int stacks(struct doc *d)
{
	const struct model *m = d->m;
	FILE *out = d->out;
	fputs("\"stacks\":[", out);
	for (size_t i = 0; i < d->nstacks; i++) {
		const struct model_stack *s = &m->stacks[d->stacks[i]];
		size_t total = model_stack_frames(m, d->stacks[i], d->buf, FRAMES_CAP);
		size_t nf = total < FRAMES_CAP ? total : FRAMES_CAP;
		fprintf(out, "%s{\"frames_total\":%zu,\"f\":[", i ? ",\n" : "", total);
		for (size_t k = 0; k < nf; k++) {
			long id = frame_id(&d->frames, &d->buf[k], d->tree);
			if (id < 0)
				return -ENOMEM;
			fprintf(out, "%s%ld", k ? "," : "", id);
		}
		fprintf(out, "],\"n\":[%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
			     ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]}",
			s->allocations, s->allocated_bytes, s->frees, s->temporary, s->temporary_bytes, s->peak_bytes,
			s->peak_blocks, s->leaked_bytes, s->leaked_blocks, s->live_bytes);
	}
	fputs("],\n", out);
	return 0;
}

static void frames(struct doc *d)
{
	FILE *out = d->out;
	fputs("\"frames\":[", out);
	for (size_t i = 0; i < d->frames.n; i++) {
		const struct model_frame *f = &d->frames.v[i].f;
		char label[256], loc[64] = "";
		long name = sid(d, model_frame_label(f, label, sizeof(label)));
		long file = sid(d, f->file), mod = sid(d, f->module);
		if (!f->function)
			snprintf(loc, sizeof(loc), ",\"0x%" PRIx64 "\"", f->offset);
		fprintf(out, "%s[%ld,%ld,%" PRIu32 ",%" PRIu32 ",%ld,%" PRIu32 "%s]", i ? (i % 16 ? "," : ",\n") : "",
			name, file, f->line, f->flags, mod, d->frames.v[i].origin, loc);
	}
	fputs("],\n", out);
}

static void histogram(struct doc *d)
{
	const struct model *m = d->m;
	int first = 1;
	fputs("\"hist\":[", d->out);
	for (unsigned i = 0; i < MODEL_HIST_BUCKETS; i++) {
		uint64_t lo, hi;
		if (!m->hist[i].count)
			continue;
		model_bucket_range(i, &lo, &hi);
		fprintf(d->out, "%s[%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]", first ? "" : ",", lo, hi,
			m->hist[i].count, m->hist[i].bytes);
		first = 0;
	}
	fputs("],\n", d->out);
}

/* From bytes requested to RSS at peak RSS and at exit (the model's
 * snapshots of the mappings), with the mappings by kind. */
static void waterfall(struct doc *d)
{
	static const char *const when[MODEL_AT_N] = { "peak", "exit" };
	FILE *out = d->out;
	fputs("\"waterfall\":[", out);
	for (int at = 0; at < MODEL_AT_N; at++) {
		const struct model_snapshot *sn = &d->m->snap[at];
		const struct model_waterfall *w = &sn->w;
		fprintf(out, "%s{\"at\":\"%s\",\"present\":%s", at ? ",\n" : "", when[at],
			sn->present ? "true" : "false");
		if (!sn->present) {
			putc('}', out);
			continue;
		}
		fprintf(out, ",\"time_ns\":%" PRIu64 ",\"live_blocks\":%" PRIu64 ",\"allocator_stats\":%s,\"steps\":[",
			sn->time_ns, sn->live_blocks, w->allocator_stats ? "true" : "false");
		for (int k = 0; k < MODEL_W_STEPS; k++)
			fprintf(out, "%s[\"%s\",%" PRId64 "]", k ? "," : "", model_wstep_name((enum model_wstep)k),
				w->step[k]);
		fprintf(out, "],\"heap_rss\":%" PRIu64 ",\"anon_rss\":%" PRIu64 ",\"rss\":%" PRIu64
			     ",\"unexplained\":%" PRIu64 ",\"mallinfo\":",
			w->heap_rss, w->anon_rss, w->rss, w->unexplained);
		if (sn->mallinfo.present)
			fprintf(out, "{\"time_ns\":%" PRIu64 ",\"arena\":%" PRIu64 ",\"in_use\":%" PRIu64
				     ",\"free\":%" PRIu64 ",\"mmapped\":%" PRIu64 ",\"mmapped_chunks\":%" PRIu64 "}",
				sn->mallinfo.time_ns, sn->mallinfo.arena, sn->mallinfo.uordblks, sn->mallinfo.fordblks,
				sn->mallinfo.hblkhd, sn->mallinfo.hblks);
		else
			fputs("null", out);
		fputs(",\"groups\":[", out);
		for (size_t i = 0; i < sn->ngroups; i++) {
			const struct procfs_group *g = &sn->groups[i];
			const char *name = g->kind == PROCFS_LIB && g->name ? procfs_basename(g->name)
									: procfs_kind_name(g->kind);
			fputs(i ? "," : "", out);
			putc('[', out);
			jstr(out, name);
			fprintf(out, ",%zu,%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]", g->t.maps, g->t.size, g->t.rss,
				g->t.anonymous);
		}
		fputs("]}", out);
	}
	fputs("],\n", out);
}

static void strings(struct doc *d)
{
	fputs("\"strings\":[", d->out);
	for (size_t i = 0; i < d->strs.n; i++) {
		fputs(i ? (i % 8 ? "," : ",\n") : "", d->out);
		jstr(d->out, d->strs.v[i]);
	}
	fputs("]}", d->out);
}

static const char *base_name(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;
	return s ? s + 1 : p;
}

static int data(struct doc *d)
{
	static const char *const keys[] = { "peak", "allocations", "bytes", "temporary", "leaked" };
	int ret;
	fputs("{\"format\":\"heapscope-html\",\"version\":1,\"trace\":", d->out);
	jstr(d->out, base_name(d->o->trace));
	fprintf(d->out, ",\"metric\":\"%s\",\n", keys[d->o->key < FLAME_KEYS ? d->o->key : 0]);
	summary(d);
	if ((ret = tree(d)) < 0 || (ret = top_tables(d)) < 0 || (ret = timeline(d)) < 0 || (ret = stacks(d)) < 0)
		return ret;
	frames(d);
	histogram(d);
	waterfall(d);
	strings(d);
	return d->oom ? -ENOMEM : 0;
}

/* Writes the template, replacing each @@NAME@@ with its part. */
static int page(struct doc *d)
{
	const char *t = html_asset_report_html, *at;
	const struct model_summary *s = &d->m->sum;
	int ret = 0;
	while (!ret && (at = strstr(t, "@@"))) {
		const char *end = strstr(at + 2, "@@");
		if (!end)
			break;
		fwrite(t, 1, (size_t)(at - t), d->out);
		size_t n = (size_t)(end - at - 2);
		if (n == 5 && !strncmp(at + 2, "TITLE", 5)) {
			html_text(d->out, s->program ? base_name(s->program) : base_name(d->o->trace));
		} else if (n == 3 && !strncmp(at + 2, "CSS", 3)) {
			fputs(html_asset_report_css, d->out);
		} else if (n == 2 && !strncmp(at + 2, "JS", 2)) {
			fputs(html_asset_report_js, d->out);
		} else if (n == 4 && !strncmp(at + 2, "DATA", 4)) {
			ret = data(d);
		} else {
			fwrite(at, 1, (size_t)(end + 2 - at), d->out);
		}
		t = end + 2;
	}
	fputs(t, d->out);
	return ret;
}

int html_write(FILE *out, const struct model *m, const struct html_opts *o, char *err, size_t errlen)
{
	struct doc d = { .out = out, .m = m, .o = o, .err = err, .errlen = errlen };
	int ret = -ENOMEM;
	if (err && errlen)
		err[0] = 0;
	if (flame_build(&d.tree, m) < 0)
		goto fail;
	d.stack_local = malloc((m->nstacks ? m->nstacks : 1) * sizeof(*d.stack_local));
	d.stacks = malloc((m->nstacks ? m->nstacks : 1) * sizeof(*d.stacks));
	d.buf = malloc(FRAMES_CAP * sizeof(*d.buf));
	if (!d.stack_local || !d.stacks || !d.buf)
		goto fail;
	memset(d.stack_local, 0xff, (m->nstacks ? m->nstacks : 1) * sizeof(*d.stack_local));
	ret = page(&d);
	if (!ret) {
		errno = 0;
		if (fflush(out) || ferror(out))
			ret = errno ? -errno : -EIO;
	}
fail:
	if (ret < 0 && err && errlen && !err[0])
		snprintf(err, errlen, "%s", ret == -ENOMEM ? "out of memory" : strerror(-ret));
	flame_free(d.tree);
	for (size_t i = 0; i < d.strs.n; i++)
		free(d.strs.v[i]);
	free(d.strs.v);
	free(d.strs.slots);
	free(d.frames.v);
	free(d.frames.slots);
	free(d.stack_local);
	free(d.stacks);
	free(d.buf);
	return ret;
}
