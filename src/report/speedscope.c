/*
 * speedscope.c: the model as a speedscope file (speedscope.h).
 *
 * A speedscope frame is a function: (name, file), without the line, so that
 * its flame graph and sandwich views merge the call sites of one function as
 * the folded stacks do. The model's function and file strings are interned,
 * so a pair is keyed by its pointers; a frame without a symbol is keyed by
 * its address and named like every other output names it
 * (model_frame_label).
 */
#include "report/speedscope.h"
#include "report/folded.h"
#include "report/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES_CAP 4096 /* a deeper stack keeps its innermost frames */

static const enum model_key profiles[] = {
	MODEL_BY_PEAK, MODEL_BY_LEAKED, MODEL_BY_ALLOCATIONS, MODEL_BY_TEMPORARY, MODEL_BY_BYTES,
};

static const char *const profile_titles[] = {
	"peak: bytes live at the peak heap",
	"leaked: bytes not freed at exit",
	"allocations: allocation calls",
	"temporary: temporary allocations",
	"bytes: bytes allocated in total",
};

struct sframe {
	const char *function, *file; /* model strings; function NULL: no symbol */
	uint64_t ip;                 /* the key of a frame without symbol */
	char *label;                 /* its name, allocated here */
};

struct frames {
	struct sframe *f;
	size_t n, cap;
	uint32_t *slots;             /* open addressing: index + 1, 0 empty */
	size_t nslots;
};

static uint64_t hash_frame(const struct model_frame *f)
{
	uint64_t h = f->function ? (uint64_t)(uintptr_t)f->function * 31 + (uint64_t)(uintptr_t)f->file
				 : f->ip ^ (uint64_t)f->flags << 56;
	h *= 0x9e3779b97f4a7c15ull;
	return h ^ h >> 29;
}

static int same(const struct sframe *s, const struct model_frame *f)
{
	if (!f->function)
		return !s->function && s->ip == (f->ip ^ (uint64_t)f->flags << 56);
	return s->function == f->function && s->file == f->file;
}

static int rehash(struct frames *t)
{
	size_t n = t->nslots ? t->nslots * 2 : 4096;
	uint32_t *s = calloc(n, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		const struct sframe *sf = &t->f[i];
		struct model_frame f = { .function = sf->function, .file = sf->file, .ip = sf->ip };
		size_t j = hash_frame(&f) & (n - 1);
		while (s[j])
			j = (j + 1) & (n - 1);
		s[j] = (uint32_t)i + 1;
	}
	free(t->slots);
	t->slots = s;
	t->nslots = n;
	return 0;
}

/* Index of frame f in the shared frames, added when new; -1: out of memory. */
static long frame_index(struct frames *t, const struct model_frame *f)
{
	if ((t->n + 1) * 2 > t->nslots && rehash(t) < 0)
		return -1;
	size_t j = hash_frame(f) & (t->nslots - 1);
	for (; t->slots[j]; j = (j + 1) & (t->nslots - 1))
		if (same(&t->f[t->slots[j] - 1], f))
			return (long)t->slots[j] - 1;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct sframe *p = realloc(t->f, cap * sizeof(*p));
		if (!p)
			return -1;
		t->f = p;
		t->cap = cap;
	}
	struct sframe *s = &t->f[t->n];
	char buf[256];
	memset(s, 0, sizeof(*s));
	if (f->function) {
		s->function = f->function;
		s->file = f->file;
	} else {
		/* the flags tell the kinds of "no stack" apart, which have no address */
		s->ip = f->ip ^ (uint64_t)f->flags << 56;
		if (!(s->label = strdup(model_frame_label(f, buf, sizeof(buf)))))
			return -1;
	}
	t->slots[j] = (uint32_t)++t->n;
	return (long)t->n - 1;
}

static void frames_free(struct frames *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->f[i].label);
	free(t->f);
	free(t->slots);
}

/* Frame indices of every stack, outermost first: stack i is
 * idx[first[i] .. first[i + 1]). */
struct stacks {
	uint32_t *idx;
	size_t n, cap;
	size_t *first;
};

static int collect(const struct model *m, struct frames *t, struct stacks *st)
{
	struct model_frame *fr = malloc(FRAMES_CAP * sizeof(*fr));
	if (!fr || !(st->first = calloc(m->nstacks + 1, sizeof(*st->first)))) {
		free(fr);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->nstacks; i++) {
		size_t total = model_stack_frames(m, i, fr, FRAMES_CAP);
		size_t n = total < FRAMES_CAP ? total : FRAMES_CAP;
		st->first[i] = st->n;
		if (st->n + n > st->cap) {
			size_t cap = st->cap ? st->cap : 4096;
			while (cap < st->n + n)
				cap *= 2;
			uint32_t *p = realloc(st->idx, cap * sizeof(*p));
			if (!p)
				goto oom;
			st->idx = p;
			st->cap = cap;
		}
		for (size_t k = n; k-- > 0;) {
			long x = frame_index(t, &fr[k]);
			if (x < 0)
				goto oom;
			st->idx[st->n++] = (uint32_t)x;
		}
	}
	st->first[m->nstacks] = st->n;
	free(fr);
	return 0;
oom:
	free(fr);
	return -ENOMEM;
}

static void put_frames(FILE *out, const struct frames *t)
{
	fputs("  \"shared\": {\"frames\": [", out);
	for (size_t i = 0; i < t->n; i++) {
		const struct sframe *s = &t->f[i];
		fputs(i ? ",\n    {\"name\": " : "\n    {\"name\": ", out);
		rjson_string(out, s->function ? s->function : s->label);
		if (s->file) {
			fputs(", \"file\": ", out);
			rjson_string(out, s->file);
		}
		fputc('}', out);
	}
	fputs(t->n ? "\n  ]},\n" : "]},\n", out);
}

static void put_profile(FILE *out, const struct model *m, const struct stacks *st, size_t p)
{
	enum model_key key = profiles[p];
	uint64_t total = 0;
	size_t n = 0;
	for (size_t i = 0; i < m->nstacks; i++)
		total += model_stack_value(&m->stacks[i], key);
	fputs("    {\"type\": \"sampled\", \"name\": ", out);
	rjson_string(out, profile_titles[p]);
	fprintf(out, ", \"unit\": \"%s\", \"startValue\": 0, \"endValue\": %" PRIu64 ",\n     \"samples\": [",
		strcmp(folded_metric_unit(key), "bytes") ? "none" : "bytes", total);
	for (size_t i = 0; i < m->nstacks; i++) {
		if (!model_stack_value(&m->stacks[i], key))
			continue;
		fputs(n++ ? ",\n       [" : "\n       [", out);
		for (size_t k = st->first[i]; k < st->first[i + 1]; k++)
			fprintf(out, "%s%" PRIu32, k > st->first[i] ? ", " : "", st->idx[k]);
		fputc(']', out);
	}
	fputs(n ? "\n     ],\n     \"weights\": [" : "],\n     \"weights\": [", out);
	n = 0;
	for (size_t i = 0; i < m->nstacks; i++) {
		uint64_t v = model_stack_value(&m->stacks[i], key);
		if (v)
			fprintf(out, "%s%" PRIu64, n++ ? ", " : "", v);
	}
	fputs("]}", out);
}

int speedscope_write(FILE *out, const struct model *m, const char *name)
{
	struct frames t = { 0 };
	struct stacks st = { 0 };
	int ret = collect(m, &t, &st);
	if (ret < 0)
		goto out;
	fputs("{\n  \"$schema\": \"https://www.speedscope.app/file-format-schema.json\",\n", out);
	fputs("  \"exporter\": \"heapscope\",\n  \"name\": ", out);
	rjson_string(out, name);
	fputs(",\n  \"activeProfileIndex\": 0,\n", out);
	put_frames(out, &t);
	fputs("  \"profiles\": [\n", out);
	for (size_t p = 0; p < sizeof(profiles) / sizeof(profiles[0]); p++) {
		if (p)
			fputs(",\n", out);
		put_profile(out, m, &st, p);
	}
	fputs("\n  ]\n}\n", out);
	errno = 0;
	if (fflush(out) || ferror(out))
		ret = errno ? -errno : -EIO;
out:
	frames_free(&t);
	free(st.idx);
	free(st.first);
	return ret;
}
