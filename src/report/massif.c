/*
 * massif.c: the model as a massif.out file (massif.h).
 *
 * A massif heap tree starts at the allocation functions and branches at
 * each caller: its children are the allocation sites, theirs the callers of
 * those, down to main (frames below main are left out, as massif and the
 * text report do). A node names one frame as massif does:
 * "0xADDR: function (file:line)". The tree is built by sorting the stacks
 * by their frames, innermost first, so the stacks under a node are
 * contiguous at every depth.
 */
#include "report/massif.h"
#include "report/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES_CAP 4096 /* a deeper stack keeps its innermost frames */
#define SNAPSHOTS 96    /* timeline snapshots, besides time 0, the peak and the leaks */

struct tstack {
	struct model_frame *f; /* innermost first, cut below main */
	size_t n;
	uint64_t bytes;
};

struct group {
	size_t lo, hi;
	uint64_t bytes;
};

static int cmp_frame(const struct model_frame *a, const struct model_frame *b)
{
	/* model strings are interned: equal strings are equal pointers */
	if (a->ip != b->ip)
		return a->ip < b->ip ? -1 : 1;
	if (a->function != b->function)
		return (uintptr_t)a->function < (uintptr_t)b->function ? -1 : 1;
	if (a->file != b->file)
		return (uintptr_t)a->file < (uintptr_t)b->file ? -1 : 1;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return a->flags < b->flags ? -1 : a->flags > b->flags;
}

static int cmp_tstack(const void *x, const void *y)
{
	const struct tstack *a = x, *b = y;
	for (size_t k = 0; k < a->n && k < b->n; k++) {
		int c = cmp_frame(&a->f[k], &b->f[k]);
		if (c)
			return c;
	}
	return a->n < b->n ? -1 : a->n > b->n;
}

static int cmp_group(const void *x, const void *y)
{
	const struct group *a = x, *b = y;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* One line holds one node: no newline may come from a symbol. */
static void put_clean(FILE *out, const char *s)
{
	for (size_t n; *s; s += n) {
		n = strcspn(s, "\n\r");
		fwrite(s, 1, n, out);
		if (s[n]) {
			putc('?', out);
			n++;
		}
	}
}

static void put_label(FILE *out, const struct model_frame *f)
{
	char buf[256];
	if (f->flags & (MODEL_FRAME_NO_STACK | MODEL_FRAME_UNKNOWN_STACK)) {
		put_clean(out, model_frame_label(f, buf, sizeof(buf)));
		return;
	}
	fprintf(out, "0x%" PRIX64 ": ", f->ip);
	if (!f->function) {
		fputs("???", out);
		if (f->module) {
			fputs(" (in ", out);
			put_clean(out, f->module);
			putc(')', out);
		}
		return;
	}
	put_clean(out, f->function);
	if (f->file) {
		const char *b = strrchr(f->file, '/');
		fputs(" (", out);
		put_clean(out, b ? b + 1 : f->file);
		fprintf(out, ":%" PRIu32 ")", f->line);
	} else if (f->module) {
		fputs(" (in ", out);
		put_clean(out, f->module);
		putc(')', out);
	}
}

/* How many distinct frames stacks [lo, hi) have at depth (their children). */
static size_t count_kids(const struct tstack *st, size_t lo, size_t hi, size_t depth)
{
	size_t n = 0;
	/* sorted: within [lo, hi) the stacks that end above depth come first */
	for (size_t i = lo; i < hi; i++)
		if (st[i].n > depth &&
		    (i == lo || st[i - 1].n <= depth || cmp_frame(&st[i - 1].f[depth], &st[i].f[depth])))
			n++;
	return n;
}

/*
 * Writes the children of the node that stacks [lo, hi) share down to depth:
 * one per distinct frame at depth, largest first. Returns 0 or -ENOMEM.
 */
static int put_children(FILE *out, const struct tstack *st, size_t lo, size_t hi, size_t depth)
{
	size_t ng = count_kids(st, lo, hi, depth);
	if (!ng)
		return 0;
	struct group *g = malloc(ng * sizeof(*g));
	if (!g)
		return -ENOMEM;
	ng = 0;
	for (size_t i = lo; i < hi; i++) {
		if (st[i].n <= depth)
			continue;
		if (ng && g[ng - 1].hi == i && !cmp_frame(&st[i - 1].f[depth], &st[i].f[depth])) {
			g[ng - 1].hi++;
			g[ng - 1].bytes += st[i].bytes;
		} else {
			g[ng++] = (struct group){ i, i + 1, st[i].bytes };
		}
	}
	qsort(g, ng, sizeof(*g), cmp_group);
	int ret = 0;
	for (size_t k = 0; k < ng && !ret; k++) {
		size_t kids = count_kids(st, g[k].lo, g[k].hi, depth + 1);
		fprintf(out, "%*sn%zu: %" PRIu64 " ", (int)depth + 1, "", kids, g[k].bytes);
		put_label(out, &st[g[k].lo].f[depth]);
		putc('\n', out);
		ret = put_children(out, st, g[k].lo, g[k].hi, depth + 1);
	}
	free(g);
	return ret;
}

/* The tree of key's bytes (MODEL_BY_PEAK or MODEL_BY_LEAKED). */
static int put_tree(FILE *out, const struct model *m, enum model_key key, uint64_t total)
{
	struct tstack *st = calloc(m->nstacks ? m->nstacks : 1, sizeof(*st));
	struct model_frame *fr = malloc(FRAMES_CAP * sizeof(*fr));
	size_t n = 0;
	int ret = -ENOMEM;
	if (!st || !fr)
		goto out;
	for (size_t i = 0; i < m->nstacks; i++) {
		uint64_t v = model_stack_value(&m->stacks[i], key);
		if (!v)
			continue;
		size_t total_frames = model_stack_frames(m, i, fr, FRAMES_CAP);
		size_t k = total_frames < FRAMES_CAP ? total_frames : FRAMES_CAP;
		for (size_t j = 0; j < k; j++)
			if (fr[j].function && !strcmp(fr[j].function, "main")) {
				k = j + 1;
				break;
			}
		if (!(st[n].f = malloc(k * sizeof(*fr))))
			goto out;
		memcpy(st[n].f, fr, k * sizeof(*fr));
		st[n].n = k;
		st[n++].bytes = v;
	}
	qsort(st, n, sizeof(*st), cmp_tstack);
	fprintf(out, "n%zu: %" PRIu64 " (heap allocation functions) malloc/new/new[], --alloc-fns, etc.\n",
		count_kids(st, 0, n, 0), total);
	ret = put_children(out, st, 0, n, 0);
out:
	for (size_t i = 0; st && i < n; i++)
		free(st[i].f);
	free(st);
	free(fr);
	return ret;
}

struct snap {
	uint64_t time_ns, heap;
	int tree; /* 0 empty, 1 the peak's, 2 the leaks' */
};

static void put_header(FILE *out, const struct model *m)
{
	const struct model_summary *s = &m->sum;
	fputs("desc: heapscope export --format massif (requested bytes; no extra-heap or stack accounting)\n", out);
	fputs("cmd: ", out);
	if (s->argc) {
		for (uint32_t i = 0; i < s->argc; i++) {
			if (i)
				putc(' ', out);
			put_clean(out, s->argv[i]);
		}
	} else {
		put_clean(out, s->program ? s->program : "(unknown)");
	}
	fputs("\ntime_unit: ms\n", out);
}

int massif_write(FILE *out, const struct model *m)
{
	const struct model_summary *s = &m->sum;
	/* massif keeps about 100 snapshots: so do we, each point the highest
	 * heap of the timeline steps it merges */
	size_t per = (m->ntimeline + SNAPSHOTS - 1) / SNAPSHOTS;
	struct snap *sn = malloc((m->ntimeline / (per ? per : 1) + 4) * sizeof(*sn));
	size_t n = 0;
	int peak_done = 0, leak_done = 0, ret = 0;
	if (!sn)
		return -ENOMEM;
	sn[n++] = (struct snap){ 0, 0, 0 };
	for (size_t i = 0; i < m->ntimeline; i += per) {
		uint64_t t = m->timeline[i].time_ns, heap = 0;
		uint64_t end = t + per * m->timeline_step_ns;
		for (size_t k = i; k < i + per && k < m->ntimeline; k++)
			heap = m->timeline[k].heap > heap ? m->timeline[k].heap : heap;
		if (!leak_done && s->leak_time_ns < t) {
			sn[n++] = (struct snap){ s->leak_time_ns, s->leaked_bytes, 2 };
			leak_done = 1;
		}
		/* The point that holds the peak becomes the peak snapshot: its
		 * heap is the peak (the highest in its steps), at the peak's time. */
		if (!peak_done && s->peak_heap && s->peak_time_ns < end) {
			sn[n++] = (struct snap){ s->peak_time_ns, s->peak_heap, 1 };
			peak_done = 1;
		} else if (t || heap) {
			sn[n++] = (struct snap){ t, heap, 0 };
		}
	}
	if (!peak_done && s->peak_heap)
		sn[n++] = (struct snap){ s->peak_time_ns, s->peak_heap, 1 };
	if (!leak_done)
		sn[n++] = (struct snap){ s->leak_time_ns, s->leaked_bytes, 2 };

	put_header(out, m);
	for (size_t i = 0; i < n && !ret; i++) {
		uint64_t t = sn[i].time_ns;
		fprintf(out, "#-----------\nsnapshot=%zu\n#-----------\n", i);
		fprintf(out, "time=%" PRIu64 ".%06" PRIu64 "\n", t / 1000000, t % 1000000);
		fprintf(out, "mem_heap_B=%" PRIu64 "\nmem_heap_extra_B=0\nmem_stacks_B=0\n", sn[i].heap);
		if (!sn[i].tree) {
			fputs("heap_tree=empty\n", out);
			continue;
		}
		fputs(sn[i].tree == 1 ? "heap_tree=peak\n" : "heap_tree=detailed\n", out);
		ret = put_tree(out, m, sn[i].tree == 1 ? MODEL_BY_PEAK : MODEL_BY_LEAKED, sn[i].heap);
	}
	free(sn);
	if (ret)
		return ret;
	errno = 0;
	if (fflush(out) || ferror(out))
		return errno ? -errno : -EIO;
	return 0;
}
