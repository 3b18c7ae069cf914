/*
 * procfs_smaps.c: /proc/PID/smaps text -> struct procfs_map. Every read is
 * bounded by the line it is in, every number is checked for overflow, and a
 * line that does not parse is counted and skipped: smaps from a trace may be
 * cut short or damaged, and a fuzzer feeds this anything.
 */
#include "procfs/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SMAPS_MAX_BYTES (1ull << 30) /* a process with more smaps than this is not read */

/* A cursor over one line: [p, end). */
struct cur {
	const char *p, *end;
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex number of at least one digit; 0, or -1 when there is none or it overflows. */
static int get_hex(struct cur *c, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = c->p;
	int d;
	while (c->p < c->end && (d = hexval(*c->p)) >= 0) {
		if (v >> 60)
			return -1;
		v = v << 4 | (uint64_t)d;
		c->p++;
	}
	*out = v;
	return c->p > s ? 0 : -1;
}

static int get_dec(struct cur *c, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = c->p;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		uint64_t d = (uint64_t)(*c->p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		c->p++;
	}
	*out = v;
	return c->p > s ? 0 : -1;
}

static int get_char(struct cur *c, char ch)
{
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return 0;
	}
	return -1;
}

/* One or more spaces or tabs. */
static int get_space(struct cur *c)
{
	const char *s = c->p;
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
	return c->p > s ? 0 : -1;
}

static int add_path(struct procfs_maps *m, const char *s, size_t n, const char **out)
{
	if (m->npaths == m->paths_cap) {
		size_t cap = m->paths_cap ? m->paths_cap * 2 : 64;
		char **p = realloc(m->paths, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		m->paths = p;
		m->paths_cap = cap;
	}
	char *copy = malloc(n + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, s, n);
	copy[n] = 0;
	m->paths[m->npaths++] = copy;
	*out = copy;
	return 0;
}

/*
 * "start-end perms offset dev inode [path]": 1 when the line is a mapping
 * (appended to m), 0 when it is not, -ENOMEM.
 */
static int parse_header(struct procfs_maps *m, struct cur c)
{
	struct procfs_map map;
	uint64_t dev, inode;
	memset(&map, 0, sizeof(map));
	if (get_hex(&c, &map.start) || get_char(&c, '-') || get_hex(&c, &map.end) || get_space(&c))
		return 0;
	if (map.end < map.start || c.end - c.p < 4)
		return 0;
	static const char *const allowed[4] = { "r-", "w-", "x-", "ps" };
	for (int i = 0; i < 4; i++) {
		char ch = c.p[i];
		if (!ch || !strchr(allowed[i], ch))
			return 0;
		map.perms[i] = ch;
	}
	c.p += 4;
	if (get_space(&c) || get_hex(&c, &map.offset) || get_space(&c))
		return 0;
	if (get_hex(&c, &dev) || get_char(&c, ':') || get_hex(&c, &dev) || get_space(&c) || get_dec(&c, &inode))
		return 0;
	if (c.p < c.end && get_space(&c))
		return 0; /* something glued to the inode */
	/* the rest of the line is the path, spaces and all; the kernel pads
	 * before it and writes nothing after it */
	size_t n = (size_t)(c.end - c.p);
	while (n && (c.p[n - 1] == ' ' || c.p[n - 1] == '\t' || c.p[n - 1] == '\r'))
		n--;
	if (memchr(c.p, 0, n))
		return 0;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 128;
		struct procfs_map *v = realloc(m->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		m->v = v;
		m->cap = cap;
	}
	if (add_path(m, c.p, n, &map.path) < 0)
		return -ENOMEM;
	m->v[m->n++] = map;
	return 1;
}

static const struct {
	const char *name;
	size_t off;
} fields[] = {
	{ "Rss", offsetof(struct procfs_map, rss) },
	{ "Pss", offsetof(struct procfs_map, pss) },
	{ "Shared_Clean", offsetof(struct procfs_map, shared_clean) },
	{ "Shared_Dirty", offsetof(struct procfs_map, shared_dirty) },
	{ "Private_Clean", offsetof(struct procfs_map, private_clean) },
	{ "Private_Dirty", offsetof(struct procfs_map, private_dirty) },
	{ "Anonymous", offsetof(struct procfs_map, anonymous) },
	{ "Swap", offsetof(struct procfs_map, swap) },
};

/* "Name:   123 kB" (or a field without a unit): 1 when it is a field line. */
static int parse_field(struct procfs_map *map, struct cur c)
{
	const char *name = c.p;
	while (c.p < c.end && ((*c.p >= 'A' && *c.p <= 'Z') || (*c.p >= 'a' && *c.p <= 'z') ||
			       (*c.p >= '0' && *c.p <= '9') || *c.p == '_'))
		c.p++;
	size_t n = (size_t)(c.p - name);
	if (!n || get_char(&c, ':'))
		return 0;
	if (!map)
		return 1; /* a field before any mapping: nothing to add it to */
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strlen(fields[i].name) != n || memcmp(fields[i].name, name, n))
			continue;
		uint64_t v;
		get_space(&c);
		if (get_dec(&c, &v))
			return 0;
		if (c.p < c.end) {
			if (get_space(&c) || c.end - c.p < 2 || memcmp(c.p, "kB", 2))
				return 0;
			/* kB to bytes; a value too big to be real saturates */
			v = v > UINT64_MAX / 1024 ? UINT64_MAX : v * 1024;
		}
		memcpy((char *)map + fields[i].off, &v, sizeof(v));
		return 1;
	}
	return 1; /* a field heapscope does not use (VmFlags, KSM, ...) */
}

int procfs_smaps_parse(struct procfs_maps *out, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct cur c = { p, nl ? nl : end };
		p = nl ? nl + 1 : end;
		if (c.p == c.end)
			continue;
		int r = hexval(*c.p) >= 0 ? parse_header(out, c) : 0;
		if (r < 0)
			return r;
		if (r == 0 && !parse_field(out->n ? &out->v[out->n - 1] : NULL, c))
			out->skipped++;
	}
	return 0;
}

int procfs_smaps_read(struct procfs_maps *out, int pid, char *err, size_t errlen)
{
	char path[64];
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/smaps");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (err)
			snprintf(err, errlen, "%s: %s", path, e == ENOENT ? "no such process" : strerror(e));
		return -e;
	}
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int ret = 0;
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 1u << 16;
			char *b = ncap > SMAPS_MAX_BYTES ? NULL : realloc(buf, ncap);
			if (!b) {
				ret = -ENOMEM;
				break;
			}
			buf = b;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	/* reading smaps of another user's process fails at the first read */
	if (!ret)
		ret = procfs_smaps_parse(out, buf, len);
	if (ret && err)
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
	free(buf);
	return ret;
}

void procfs_maps_free(struct procfs_maps *m)
{
	for (size_t i = 0; i < m->npaths; i++)
		free(m->paths[i]);
	free(m->paths);
	free(m->v);
	memset(m, 0, sizeof(*m));
}
