/*
 * model_diff.c: matching the stacks of two models by symbols (model_diff.h).
 *
 * Each stack gets a key: for every frame, innermost first, its label
 * (model_frame_label: the function, else module+offset) and the base name of
 * its file, separated by control characters no symbol contains. Both sides
 * are sorted by key and merged in one pass; the stacks of one side that share
 * a key are summed.
 */
#include "analyze/model_diff.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES_MAX 4096 /* a deeper stack is keyed by its innermost frames */

struct keyed {
	char *key;
	size_t index;
};

static const char *base_name(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;
	return s ? s + 1 : path ? path : "";
}

/* Appends s (n bytes) to the growing buffer *buf. 0 or -ENOMEM. */
static int put(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 256;
		while (c < *len + n + 1)
			c *= 2;
		char *p = realloc(*buf, c);
		if (!p)
			return -ENOMEM;
		*buf = p;
		*cap = c;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = 0;
	return 0;
}

/* The key of stack i of m, malloc'ed; NULL when memory runs out. */
static char *stack_key(const struct model *m, size_t i, struct model_frame *frames)
{
	size_t total = model_stack_frames(m, i, frames, FRAMES_MAX);
	size_t n = total < FRAMES_MAX ? total : FRAMES_MAX;
	char *buf = NULL, label[256];
	size_t len = 0, cap = 0;
	if (put(&buf, &len, &cap, "", 0) < 0)
		return NULL;
	for (size_t k = 0; k < n; k++) {
		const char *fn = model_frame_label(&frames[k], label, sizeof(label));
		const char *file = base_name(frames[k].file);
		if (put(&buf, &len, &cap, fn, strlen(fn)) < 0 || put(&buf, &len, &cap, "\x1f", 1) < 0 ||
		    put(&buf, &len, &cap, file, strlen(file)) < 0 || put(&buf, &len, &cap, "\x1e", 1) < 0) {
			free(buf);
			return NULL;
		}
	}
	return buf;
}

static int cmp_keyed(const void *x, const void *y)
{
	const struct keyed *a = x, *b = y;
	int c = strcmp(a->key, b->key);
	return c ? c : a->index < b->index ? -1 : a->index > b->index;
}

/* Keys of every stack of m, sorted; NULL when memory runs out. */
static struct keyed *keys_of(const struct model *m, struct model_frame *frames)
{
	struct keyed *k = calloc(m->nstacks ? m->nstacks : 1, sizeof(*k));
	if (!k)
		return NULL;
	for (size_t i = 0; i < m->nstacks; i++) {
		k[i].index = i;
		if (!(k[i].key = stack_key(m, i, frames))) {
			for (size_t j = 0; j < i; j++)
				free(k[j].key);
			free(k);
			return NULL;
		}
	}
	qsort(k, m->nstacks, sizeof(*k), cmp_keyed);
	return k;
}

static void add(struct model_stack *to, const struct model_stack *s)
{
	to->allocations += s->allocations;
	to->allocated_bytes += s->allocated_bytes;
	to->frees += s->frees;
	to->temporary += s->temporary;
	to->temporary_bytes += s->temporary_bytes;
	to->peak_bytes += s->peak_bytes;
	to->peak_blocks += s->peak_blocks;
	to->leaked_bytes += s->leaked_bytes;
	to->leaked_blocks += s->leaked_blocks;
	to->live_bytes += s->live_bytes;
	to->live_blocks += s->live_blocks;
}

/* Sums the run of equal keys starting at k[*j] into one side of e. */
static void take(const struct model *m, const struct keyed *k, size_t nk, size_t *j, struct model_stack *side,
		 size_t *index, uint32_t *count)
{
	const char *key = k[*j].key;
	*index = k[*j].index;
	side->id = m->stacks[*index].id;
	for (; *j < nk && !strcmp(k[*j].key, key); (*j)++) {
		add(side, &m->stacks[k[*j].index]);
		(*count)++;
	}
}

int model_diff_build(struct model_diff **out, const struct model *base, const struct model *new)
{
	struct model_frame *frames = malloc(FRAMES_MAX * sizeof(*frames));
	struct model_diff *d = calloc(1, sizeof(*d));
	struct keyed *kb = NULL, *kn = NULL;
	int ret = -ENOMEM;
	if (!frames || !d)
		goto out;
	d->base = base;
	d->new = new;
	if (!(kb = keys_of(base, frames)) || !(kn = keys_of(new, frames)))
		goto out;
	d->entries = calloc(base->nstacks + new->nstacks + 1, sizeof(*d->entries));
	if (!d->entries)
		goto out;

	size_t i = 0, j = 0;
	while (i < base->nstacks || j < new->nstacks) {
		int c = i == base->nstacks ? 1 : j == new->nstacks ? -1 : strcmp(kb[i].key, kn[j].key);
		struct model_diff_entry *e = &d->entries[d->nentries++];
		e->base_index = e->new_index = MODEL_DIFF_NONE;
		/* The entry owns the key of the first stack it takes. */
		if (c <= 0) {
			size_t first = i;
			take(base, kb, base->nstacks, &i, &e->base, &e->base_index, &e->base_stacks);
			e->key = kb[first].key;
			kb[first].key = NULL;
		}
		if (c >= 0) {
			size_t first = j;
			take(new, kn, new->nstacks, &j, &e->new, &e->new_index, &e->new_stacks);
			if (c > 0) {
				e->key = kn[first].key;
				kn[first].key = NULL;
			}
		}
		d->matched += c == 0;
		d->base_only += c < 0;
		d->new_only += c > 0;
	}
	*out = d;
	d = NULL;
	ret = 0;
out:
	for (size_t k = 0; kb && k < base->nstacks; k++)
		free(kb[k].key);
	for (size_t k = 0; kn && k < new->nstacks; k++)
		free(kn[k].key);
	free(kb);
	free(kn);
	free(frames);
	model_diff_free(d);
	return ret;
}

void model_diff_free(struct model_diff *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nentries; i++)
		free((char *)d->entries[i].key);
	free(d->entries);
	free(d);
}

uint64_t model_diff_value(const struct model_diff_entry *e, enum model_key key, int side)
{
	return model_stack_value(side ? &e->new : &e->base, key);
}

struct ranked {
	uint64_t change; /* |new - base| in the asked direction */
	size_t idx;
};

static int cmp_ranked(const void *x, const void *y)
{
	const struct ranked *a = x, *b = y;
	if (a->change != b->change)
		return a->change > b->change ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

size_t model_diff_top(const struct model_diff *d, enum model_key key, int dir, size_t n, size_t *out)
{
	struct ranked *r = malloc((d->nentries ? d->nentries : 1) * sizeof(*r));
	size_t k = 0;
	if (!r)
		return 0; /* as model_top: an empty ranking is the honest answer */
	for (size_t i = 0; i < d->nentries; i++) {
		uint64_t b = model_diff_value(&d->entries[i], key, 0);
		uint64_t a = model_diff_value(&d->entries[i], key, 1);
		if (dir > 0 && a > b)
			r[k++] = (struct ranked){ a - b, i };
		else if (dir < 0 && b > a)
			r[k++] = (struct ranked){ b - a, i };
	}
	qsort(r, k, sizeof(*r), cmp_ranked);
	if (n && k > n)
		k = n;
	for (size_t i = 0; i < k; i++)
		out[i] = r[i].idx;
	free(r);
	return k;
}

size_t model_diff_frames(const struct model_diff *d, size_t i, struct model_frame *out, size_t max)
{
	if (i >= d->nentries)
		return 0;
	const struct model_diff_entry *e = &d->entries[i];
	if (e->new_index != MODEL_DIFF_NONE)
		return model_stack_frames(d->new, e->new_index, out, max);
	return model_stack_frames(d->base, e->base_index, out, max);
}
