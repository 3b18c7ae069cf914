/*
 * folded.c: folded stacks of a model (folded.h). Every stack becomes a line,
 * the lines are sorted and equal ones summed: a folded file is a set of
 * (path, value) pairs, and tools read it faster and diff it better sorted.
 */
#include "report/folded.h"
#include "report/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES_CAP 4096 /* a deeper stack keeps its innermost frames */

static const struct {
	const char *name;
	enum model_key key;
	const char *unit;
} metrics[] = {
	{ "peak", MODEL_BY_PEAK, "bytes" },
	{ "leaked", MODEL_BY_LEAKED, "bytes" },
	{ "allocations", MODEL_BY_ALLOCATIONS, "count" },
	{ "temporary", MODEL_BY_TEMPORARY, "count" },
	{ "bytes", MODEL_BY_BYTES, "bytes" },
};

#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

int folded_metric_parse(const char *name, enum model_key *key)
{
	for (size_t i = 0; name && i < NMETRICS; i++)
		if (!strcmp(name, metrics[i].name)) {
			*key = metrics[i].key;
			return 0;
		}
	return -1;
}

const char *folded_metric_name(enum model_key key)
{
	for (size_t i = 0; i < NMETRICS; i++)
		if (metrics[i].key == key)
			return metrics[i].name;
	return "?";
}

const char *folded_metric_unit(enum model_key key)
{
	for (size_t i = 0; i < NMETRICS; i++)
		if (metrics[i].key == key)
			return metrics[i].unit;
	return "count";
}

const char *folded_label(const struct model_frame *f, char *buf, size_t len)
{
	char tmp[256];
	const unsigned char *s = (const unsigned char *)model_frame_label(f, tmp, sizeof(tmp));
	size_t o = 0;
	if (!len)
		return buf;
	while (*s) {
		size_t n = report_utf8_len(s);
		if (o + (n ? n : 1) + 1 > len)
			break;
		if (n > 1) {
			memcpy(buf + o, s, n);
			o += n;
			s += n;
			continue;
		}
		buf[o++] = !n || *s < 0x20 || *s == 0x7f ? '?' : *s == ';' ? ':' : (char)*s;
		s++;
	}
	buf[o] = 0;
	return buf;
}

struct line {
	char *path;
	uint64_t value;
};

static int cmp_line(const void *x, const void *y)
{
	return strcmp(((const struct line *)x)->path, ((const struct line *)y)->path);
}

/* The folded path of stack i (outermost frame first), malloc'ed, or NULL. */
static char *stack_path(const struct model *m, size_t i, struct model_frame *frames)
{
	size_t total = model_stack_frames(m, i, frames, FRAMES_CAP);
	size_t n = total < FRAMES_CAP ? total : FRAMES_CAP;
	char label[1024];
	size_t len = 0, cap = 256;
	char *path = malloc(cap);
	if (!path)
		return NULL;
	path[0] = 0;
	for (size_t k = n; k-- > 0;) {
		size_t l = strlen(folded_label(&frames[k], label, sizeof(label)));
		if (len + l + 2 > cap) {
			while (len + l + 2 > cap)
				cap *= 2;
			char *p = realloc(path, cap);
			if (!p) {
				free(path);
				return NULL;
			}
			path = p;
		}
		if (len)
			path[len++] = ';';
		memcpy(path + len, label, l + 1);
		len += l;
	}
	return path;
}

int folded_write(FILE *out, const struct model *m, enum model_key key)
{
	struct model_frame *frames = malloc(FRAMES_CAP * sizeof(*frames));
	struct line *lines = calloc(m->nstacks ? m->nstacks : 1, sizeof(*lines));
	size_t n = 0;
	int ret = -ENOMEM;
	if (!frames || !lines)
		goto out;
	for (size_t i = 0; i < m->nstacks; i++) {
		uint64_t v = model_stack_value(&m->stacks[i], key);
		if (!v)
			continue;
		if (!(lines[n].path = stack_path(m, i, frames)))
			goto out;
		lines[n++].value = v;
	}
	qsort(lines, n, sizeof(*lines), cmp_line);
	for (size_t i = 0; i < n;) {
		uint64_t sum = 0;
		size_t j = i;
		for (; j < n && !strcmp(lines[j].path, lines[i].path); j++)
			sum += lines[j].value;
		fprintf(out, "%s %" PRIu64 "\n", lines[i].path, sum);
		i = j;
	}
	errno = 0;
	ret = fflush(out) || ferror(out) ? (errno ? -errno : -EIO) : 0;
out:
	for (size_t i = 0; lines && i < n; i++)
		free(lines[i].path);
	free(lines);
	free(frames);
	return ret;
}
