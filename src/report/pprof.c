/*
 * pprof.c: the model as a gzip'd pprof profile (pprof.h).
 *
 * The tables grow while stacks are walked; protobuf-c wants arrays of
 * pointers, so lines and location ids are kept as index ranges into pools
 * and turned into pointers once every table has its final address.
 */
#include "report/pprof.h"

#include "profile.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FRAMES_CAP 4096 /* a deeper stack keeps its innermost frames */

/* The sample types, in the order of each sample's values. */
enum { ALLOC_OBJECTS, ALLOC_SPACE, INUSE_OBJECTS, INUSE_SPACE, PEAK_OBJECTS, PEAK_SPACE,
       TEMP_OBJECTS, TEMP_SPACE, NVALUES };

static const char *const value_names[NVALUES][2] = {
	{ "alloc_objects", "count" }, { "alloc_space", "bytes" },
	{ "inuse_objects", "count" }, { "inuse_space", "bytes" },
	{ "peak_objects", "count" }, { "peak_space", "bytes" },
	{ "temporary_objects", "count" }, { "temporary_space", "bytes" },
};

/* The type a reader shows first: what the text report leads with. */
#define DEFAULT_VALUE PEAK_SPACE

/* ---- u64 -> u32 (value 0 marks an empty slot) ------------------------------ */

struct u64map {
	uint64_t *keys;
	uint32_t *vals;
	size_t cap, used;
};

static uint64_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k;
}

static uint32_t map_get(const struct u64map *m, uint64_t key)
{
	if (!m->cap)
		return 0;
	for (size_t i = mix(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->vals[i] || m->keys[i] == key)
			return m->vals[i];
	}
}

static int map_put(struct u64map *m, uint64_t key, uint32_t val)
{
	if ((m->used + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 1024;
		uint64_t *k = calloc(cap, sizeof(*k));
		uint32_t *v = calloc(cap, sizeof(*v));
		if (!k || !v) {
			free(k);
			free(v);
			return -ENOMEM;
		}
		for (size_t j = 0; j < m->cap; j++) {
			if (!m->vals[j])
				continue;
			size_t i = mix(m->keys[j]) & (cap - 1);
			while (v[i])
				i = (i + 1) & (cap - 1);
			k[i] = m->keys[j];
			v[i] = m->vals[j];
		}
		free(m->keys);
		free(m->vals);
		m->keys = k;
		m->vals = v;
		m->cap = cap;
	}
	size_t i = mix(key) & (m->cap - 1);
	while (m->vals[i] && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	m->used += !m->vals[i];
	m->keys[i] = key;
	m->vals[i] = val;
	return 0;
}

static void map_free(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
}

/* ---- the tables ------------------------------------------------------------ */

struct loc {
	Perftools__Profiles__Location pb;
	size_t first_line, nlines; /* in pp.lines */
};

struct sample {
	Perftools__Profiles__Sample pb;
	size_t first_loc;          /* in pp.loc_ids */
	int64_t values[NVALUES];
};

struct pp {
	const struct model *m;
	struct model_module *mods;
	size_t nmods;
	Perftools__Profiles__Mapping *maps; /* parallel to mods */

	char **strs;               /* string_table; owned[i]: strs[i] was allocated here */
	unsigned char *owned;
	size_t nstrs, strs_cap;
	struct u64map str_ids;     /* a stable pointer -> its index + 1 */

	Perftools__Profiles__Function *funcs;
	size_t nfuncs, funcs_cap;
	struct u64map func_ids;    /* name index << 32 | file index -> function id */

	struct loc *locs;
	size_t nlocs, locs_cap;
	struct u64map loc_keys;    /* address (or frame flags) -> location id */
	Perftools__Profiles__Line *lines;
	size_t nlines, lines_cap;

	struct sample *samples;
	size_t nsamples;
	uint64_t *loc_ids;         /* the location ids of every sample, one after the other */
	size_t nloc_ids, loc_ids_cap;
};

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 256;
	while (n < need)
		n *= 2;
	void *p = realloc(*arr, n * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

static int add_string(struct pp *p, char *s, int owned)
{
	if (grow((void **)&p->strs, &p->strs_cap, p->nstrs + 1, sizeof(*p->strs)) < 0)
		return -ENOMEM;
	/* owned[] follows strs[] in capacity */
	unsigned char *o = realloc(p->owned, p->strs_cap);
	if (!o)
		return -ENOMEM;
	p->owned = o;
	p->strs[p->nstrs] = s;
	p->owned[p->nstrs] = (unsigned char)owned;
	return (int)p->nstrs++;
}

/*
 * Index of s in the string table. s must not change until the profile is
 * written: model strings (interned, one pointer per content) and literals
 * are looked up by address, so each is stored once.
 */
static int64_t str_index(struct pp *p, const char *s)
{
	if (!s || !*s)
		return 0;
	uint32_t i = map_get(&p->str_ids, (uint64_t)(uintptr_t)s);
	if (i)
		return i - 1;
	int n = add_string(p, (char *)s, 0);
	if (n < 0 || map_put(&p->str_ids, (uint64_t)(uintptr_t)s, (uint32_t)n + 1) < 0)
		return -1;
	return n;
}

/* A string made here (a label for an address without symbol). */
static int64_t str_own(struct pp *p, const char *s)
{
	char *d = strdup(s);
	if (!d)
		return -1;
	int n = add_string(p, d, 1);
	if (n < 0)
		free(d);
	return n;
}

static int64_t function_id(struct pp *p, int64_t name, int64_t file)
{
	uint64_t key = (uint64_t)name << 32 | (uint64_t)file;
	uint32_t id = map_get(&p->func_ids, key);
	if (id)
		return id;
	if (grow((void **)&p->funcs, &p->funcs_cap, p->nfuncs + 1, sizeof(*p->funcs)) < 0)
		return -1;
	Perftools__Profiles__Function *f = &p->funcs[p->nfuncs++];
	*f = (Perftools__Profiles__Function)PERFTOOLS__PROFILES__FUNCTION__INIT;
	f->id = p->nfuncs;
	f->name = f->system_name = name;
	f->filename = file;
	if (map_put(&p->func_ids, key, (uint32_t)f->id) < 0)
		return -1;
	return (int64_t)f->id;
}

/* The module that holds ip, or -1. */
static long module_of(const struct pp *p, uint64_t ip)
{
	for (size_t i = 0; i < p->nmods; i++)
		if (ip >= p->mods[i].start && ip < p->mods[i].end)
			return (long)i;
	return -1;
}

/*
 * The location of frames[0..n): one address, its inlined functions first and
 * the function that contains them last, as model_stack_frames gives them.
 * Returns its id, or 0 when memory ran out.
 */
static uint64_t location_id(struct pp *p, const struct model_frame *fr, size_t n)
{
	/* Special frames (no stack captured) have no address: key them by kind. */
	uint64_t key = fr[0].ip ? fr[0].ip : fr[0].flags;
	uint32_t id = map_get(&p->loc_keys, key);
	if (id)
		return id;
	if (grow((void **)&p->locs, &p->locs_cap, p->nlocs + 1, sizeof(*p->locs)) < 0 ||
	    grow((void **)&p->lines, &p->lines_cap, p->nlines + n, sizeof(*p->lines)) < 0)
		return 0;
	struct loc *l = &p->locs[p->nlocs];
	l->pb = (Perftools__Profiles__Location)PERFTOOLS__PROFILES__LOCATION__INIT;
	l->pb.id = p->nlocs + 1;
	l->pb.address = fr[0].ip;
	l->first_line = p->nlines;
	l->nlines = n;
	long mod = fr[0].ip ? module_of(p, fr[0].ip) : -1;
	if (mod >= 0)
		l->pb.mapping_id = p->maps[mod].id;
	for (size_t k = 0; k < n; k++) {
		const struct model_frame *f = &fr[k];
		char buf[256];
		int64_t name = f->function ? str_index(p, f->function) : str_own(p, model_frame_label(f, buf, sizeof(buf)));
		int64_t file = str_index(p, f->file);
		int64_t fid = name < 0 || file < 0 ? -1 : function_id(p, name, file);
		if (fid < 0)
			return 0;
		Perftools__Profiles__Line *ln = &p->lines[p->nlines++];
		*ln = (Perftools__Profiles__Line)PERFTOOLS__PROFILES__LINE__INIT;
		ln->function_id = (uint64_t)fid;
		ln->line = f->line;
		/* A mapping claims symbols only when all its locations have them,
		 * so pprof can still symbolize the rest from the binary. */
		if (mod >= 0 && !f->function)
			p->maps[mod].has_functions = p->maps[mod].has_inline_frames = 0;
		if (mod >= 0 && (!f->file || !f->line))
			p->maps[mod].has_filenames = p->maps[mod].has_line_numbers = 0;
	}
	p->nlocs++;
	if (map_put(&p->loc_keys, key, (uint32_t)l->pb.id) < 0)
		return 0;
	return l->pb.id;
}

static int add_sample(struct pp *p, size_t index, struct model_frame *frames)
{
	const struct model_stack *s = &p->m->stacks[index];
	size_t total = model_stack_frames(p->m, index, frames, FRAMES_CAP);
	size_t n = total < FRAMES_CAP ? total : FRAMES_CAP;
	struct sample *sm = &p->samples[p->nsamples];
	sm->first_loc = p->nloc_ids;
	sm->pb = (Perftools__Profiles__Sample)PERFTOOLS__PROFILES__SAMPLE__INIT;
	/* One location per address: the frames up to and including the first
	 * one that is not inlined into the next (all share the address). */
	for (size_t k = 0; k < n;) {
		size_t e = k;
		while (e + 1 < n && (frames[e].flags & MODEL_FRAME_INLINED) && frames[e + 1].ip == frames[k].ip)
			e++;
		uint64_t id = location_id(p, &frames[k], e - k + 1);
		if (!id || grow((void **)&p->loc_ids, &p->loc_ids_cap, p->nloc_ids + 1, sizeof(*p->loc_ids)) < 0)
			return -ENOMEM;
		p->loc_ids[p->nloc_ids++] = id;
		k = e + 1;
	}
	sm->pb.n_location_id = p->nloc_ids - sm->first_loc;
	sm->values[ALLOC_OBJECTS] = (int64_t)s->allocations;
	sm->values[ALLOC_SPACE] = (int64_t)s->allocated_bytes;
	sm->values[INUSE_OBJECTS] = (int64_t)s->leaked_blocks;
	sm->values[INUSE_SPACE] = (int64_t)s->leaked_bytes;
	sm->values[PEAK_OBJECTS] = (int64_t)s->peak_blocks;
	sm->values[PEAK_SPACE] = (int64_t)s->peak_bytes;
	sm->values[TEMP_OBJECTS] = (int64_t)s->temporary;
	sm->values[TEMP_SPACE] = (int64_t)s->temporary_bytes;
	p->nsamples++;
	return 0;
}

static int add_mappings(struct pp *p)
{
	p->nmods = model_modules(p->m, NULL, 0);
	p->mods = calloc(p->nmods ? p->nmods : 1, sizeof(*p->mods));
	p->maps = calloc(p->nmods ? p->nmods : 1, sizeof(*p->maps));
	if (!p->mods || !p->maps)
		return -ENOMEM;
	model_modules(p->m, p->mods, p->nmods);
	for (size_t i = 0; i < p->nmods; i++) {
		Perftools__Profiles__Mapping *mp = &p->maps[i];
		*mp = (Perftools__Profiles__Mapping)PERFTOOLS__PROFILES__MAPPING__INIT;
		mp->id = i + 1;
		mp->memory_start = p->mods[i].start;
		mp->memory_limit = p->mods[i].end;
		/* the lowest PT_LOAD segment maps the file from offset 0 */
		mp->file_offset = 0;
		mp->filename = str_index(p, p->mods[i].path);
		mp->build_id = str_index(p, p->mods[i].build_id);
		if (mp->filename < 0 || mp->build_id < 0)
			return -ENOMEM;
		mp->has_functions = mp->has_filenames = mp->has_line_numbers = mp->has_inline_frames = 1;
	}
	return 0;
}

/* Gzip (RFC 1952, as pprof reads it) of buf[0..n) to out. */
static int write_gzip(FILE *out, const uint8_t *buf, size_t n)
{
	z_stream z = { 0 };
	uint8_t chunk[1 << 16];
	int ret = 0, zr;
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)buf;
	z.avail_in = (uInt)n; /* callers keep n below 4 GiB, see pprof_write */
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		zr = deflate(&z, Z_FINISH);
		size_t have = sizeof(chunk) - z.avail_out;
		if (zr == Z_STREAM_ERROR) {
			ret = -EIO;
			break;
		}
		if (have && fwrite(chunk, 1, have, out) != have) {
			ret = errno ? -errno : -EIO;
			break;
		}
	} while (zr != Z_STREAM_END);
	deflateEnd(&z);
	return ret;
}

static void pp_free(struct pp *p)
{
	for (size_t i = 0; i < p->nstrs; i++)
		if (p->owned[i])
			free(p->strs[i]);
	free(p->strs);
	free(p->owned);
	map_free(&p->str_ids);
	free(p->funcs);
	map_free(&p->func_ids);
	free(p->locs);
	map_free(&p->loc_keys);
	free(p->lines);
	free(p->samples);
	free(p->loc_ids);
	free(p->mods);
	free(p->maps);
}

/* Comments: what the profile is of, and which moments inuse and peak are. */
static int add_comments(struct pp *p, int64_t *comments, size_t *n)
{
	const struct model_summary *s = &p->m->sum;
	char buf[4096];
	size_t o = (size_t)snprintf(buf, sizeof(buf), "heapscope: %s", s->program ? s->program : "(unknown program)");
	for (uint32_t i = 1; i < s->argc && o < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, " %s", s->argv[i]);
	if ((comments[(*n)++] = str_own(p, buf)) < 0)
		return -ENOMEM;
	snprintf(buf, sizeof(buf), "inuse_*: live %s (%" PRIu64 " bytes in %" PRIu64 " blocks)",
		 s->leaks_at_exit ? "when the program exited, after __libc_freeres" : "at the end of the trace",
		 s->leaked_bytes, s->leaked_blocks);
	if ((comments[(*n)++] = str_own(p, buf)) < 0)
		return -ENOMEM;
	snprintf(buf, sizeof(buf), "peak_*: live at the peak heap (%" PRIu64 " bytes at %" PRIu64 " ns)",
		 s->peak_heap, s->peak_time_ns);
	if ((comments[(*n)++] = str_own(p, buf)) < 0)
		return -ENOMEM;
	if (!s->complete) {
		snprintf(buf, sizeof(buf), "incomplete trace: %s", s->incomplete_reason);
		if ((comments[(*n)++] = str_own(p, buf)) < 0)
			return -ENOMEM;
	}
	return 0;
}

int pprof_write(FILE *out, const struct model *m)
{
	struct pp p = { .m = m };
	Perftools__Profiles__Profile prof = PERFTOOLS__PROFILES__PROFILE__INIT;
	Perftools__Profiles__ValueType types[NVALUES], period = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	Perftools__Profiles__ValueType *type_ptrs[NVALUES];
	Perftools__Profiles__Sample **sample_ptrs = NULL;
	Perftools__Profiles__Location **loc_ptrs = NULL;
	Perftools__Profiles__Line **line_ptrs = NULL;
	Perftools__Profiles__Function **func_ptrs = NULL;
	Perftools__Profiles__Mapping **map_ptrs = NULL;
	struct model_frame *frames = malloc(FRAMES_CAP * sizeof(*frames));
	int64_t comments[4];
	size_t ncomments = 0;
	uint8_t *buf = NULL;
	int ret = -ENOMEM;

	if (!frames || add_string(&p, "", 0) < 0 || add_mappings(&p) < 0)
		goto out;
	for (int i = 0; i < NVALUES; i++) {
		types[i] = (Perftools__Profiles__ValueType)PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
		types[i].type = str_index(&p, value_names[i][0]);
		types[i].unit = str_index(&p, value_names[i][1]);
		if (types[i].type < 0 || types[i].unit < 0)
			goto out;
		type_ptrs[i] = &types[i];
	}
	period.type = str_index(&p, "space");
	period.unit = str_index(&p, "bytes");
	if (period.type < 0 || period.unit < 0 || add_comments(&p, comments, &ncomments) < 0)
		goto out;

	p.samples = calloc(m->nstacks ? m->nstacks : 1, sizeof(*p.samples));
	if (!p.samples)
		goto out;
	for (size_t i = 0; i < m->nstacks; i++)
		if (add_sample(&p, i, frames) < 0)
			goto out;

	/* Every table has its final address now: make the pointer arrays. */
	sample_ptrs = calloc(p.nsamples + 1, sizeof(*sample_ptrs));
	loc_ptrs = calloc(p.nlocs + 1, sizeof(*loc_ptrs));
	line_ptrs = calloc(p.nlines + 1, sizeof(*line_ptrs));
	func_ptrs = calloc(p.nfuncs + 1, sizeof(*func_ptrs));
	map_ptrs = calloc(p.nmods + 1, sizeof(*map_ptrs));
	if (!sample_ptrs || !loc_ptrs || !line_ptrs || !func_ptrs || !map_ptrs)
		goto out;
	for (size_t i = 0; i < p.nsamples; i++) {
		struct sample *s = &p.samples[i];
		s->pb.location_id = p.loc_ids + s->first_loc;
		s->pb.n_value = NVALUES;
		s->pb.value = s->values;
		sample_ptrs[i] = &s->pb;
	}
	for (size_t i = 0; i < p.nlines; i++)
		line_ptrs[i] = &p.lines[i];
	for (size_t i = 0; i < p.nlocs; i++) {
		p.locs[i].pb.n_line = p.locs[i].nlines;
		p.locs[i].pb.line = line_ptrs + p.locs[i].first_line;
		loc_ptrs[i] = &p.locs[i].pb;
	}
	for (size_t i = 0; i < p.nfuncs; i++)
		func_ptrs[i] = &p.funcs[i];
	for (size_t i = 0; i < p.nmods; i++)
		map_ptrs[i] = &p.maps[i];

	prof.n_sample_type = NVALUES;
	prof.sample_type = type_ptrs;
	prof.n_sample = p.nsamples;
	prof.sample = sample_ptrs;
	prof.n_mapping = p.nmods;
	prof.mapping = map_ptrs;
	prof.n_location = p.nlocs;
	prof.location = loc_ptrs;
	prof.n_function = p.nfuncs;
	prof.function = func_ptrs;
	prof.n_string_table = p.nstrs;
	prof.string_table = p.strs;
	prof.time_nanos = (int64_t)m->sum.start_unix_ns;
	prof.duration_nanos = (int64_t)m->sum.run_time_ns;
	prof.period_type = &period;
	prof.period = 1; /* every allocation is recorded: no sampling */
	prof.n_comment = ncomments;
	prof.comment = comments;
	prof.default_sample_type = types[DEFAULT_VALUE].type;

	size_t n = perftools__profiles__profile__get_packed_size(&prof);
	if (n >= UINT32_MAX) {
		ret = -EFBIG; /* zlib's one-shot input length is 32 bits */
		goto out;
	}
	if (!(buf = malloc(n ? n : 1)))
		goto out;
	perftools__profiles__profile__pack(&prof, buf);
	errno = 0;
	ret = write_gzip(out, buf, n);
	if (!ret && (fflush(out) || ferror(out)))
		ret = errno ? -errno : -EIO;
out:
	free(buf);
	free(sample_ptrs);
	free(loc_ptrs);
	free(line_ptrs);
	free(func_ptrs);
	free(map_ptrs);
	free(frames);
	pp_free(&p);
	return ret;
}
