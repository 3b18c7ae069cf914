/*
 * symbols.c: instruction address -> function, file:line and inline chain.
 *
 * One offline Dwfl holds every module; our own table of address ranges picks
 * the module (so ranges reused after dlclose never confuse libdwfl), then
 * libdwfl gives the ELF symbol and libdw the DWARF scopes around the address.
 * Every returned string is interned in the context, so equal names are one
 * pointer and callers may compare or hash them by address.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include "symbols.h"

#define CHUNK_SIZE (64 * 1024)

struct chunk {
	struct chunk *next;
	size_t used, size;
	char data[];
};

struct slot {
	const char *s;
	size_t len;
	uint64_t hash;
};

/* Open-addressing set of strings; the strings live in chunks freed at close. */
struct strtab {
	struct slot *slots;
	size_t cap, count;
	struct chunk *chunks;
};

/* An address range of one compile unit, for objects without .debug_aranges. */
struct cu_range {
	Dwarf_Addr lo, hi;
	int cu;
};

/* One ELF file reported to libdwfl at one bias; modules declared twice at
 * the same place share it. */
struct object {
	Dwfl_Module *dm; /* NULL when the file could not be read */
	int cus_built;
	Dwarf_Die *cus;
	struct cu_range *ranges;
	int nranges;
};

struct module {
	const char *path;
	uint64_t bias, start, end;
	int obj;
};

struct range {
	uint64_t start, end, maxend;
	int idx;
};

struct sym_ctx {
	Dwfl *dwfl;
	struct module *mods;
	int nmods, capmods;
	struct object *objs;
	int nobjs, capobjs;
	/* Ranges sorted by start, with the running maximum of end over that
	 * order, so a lookup is a binary search even when ranges overlap. */
	struct range *order;
	int sorted;
	struct strtab strs;
	/* Scratch for one address's frames before they are trimmed to max. */
	struct sym_frame *tmp;
	int captmp;
};

/* Offline: files are read from disk; debug info is found next to them, by
 * .gnu_debuglink, or under /usr/lib/debug/.build-id. */
static const Dwfl_Callbacks offline_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static char *strtab_store(struct strtab *t, const char *s, size_t len)
{
	struct chunk *ch = t->chunks;
	char *p;

	if (!ch || ch->size - ch->used < len + 1) {
		size_t size = len + 1 > CHUNK_SIZE ? len + 1 : CHUNK_SIZE;

		ch = malloc(sizeof(*ch) + size);
		if (!ch)
			return NULL;
		ch->size = size;
		ch->used = 0;
		/* A big string gets its own chunk behind the current one, so
		 * the current chunk's free space is not wasted. */
		if (t->chunks && size > CHUNK_SIZE) {
			ch->next = t->chunks->next;
			t->chunks->next = ch;
		} else {
			ch->next = t->chunks;
			t->chunks = ch;
		}
	}
	p = ch->data + ch->used;
	memcpy(p, s, len);
	p[len] = '\0';
	ch->used += len + 1;
	return p;
}

static int strtab_grow(struct strtab *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024;
	struct slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		struct slot *o = &t->slots[i];
		size_t j;

		if (!o->s)
			continue;
		for (j = o->hash & (cap - 1); slots[j].s; j = (j + 1) & (cap - 1))
			;
		slots[j] = *o;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

/* Returns the one copy of s[0..len), or NULL when out of memory. */
static const char *intern_n(struct sym_ctx *c, const char *s, size_t len)
{
	struct strtab *t = &c->strs;
	uint64_t h = hash_bytes(s, len);
	size_t i;

	if ((t->count + 1) * 2 > t->cap && strtab_grow(t))
		return NULL;
	for (i = h & (t->cap - 1); t->slots[i].s; i = (i + 1) & (t->cap - 1)) {
		struct slot *o = &t->slots[i];

		if (o->hash == h && o->len == len && !memcmp(o->s, s, len))
			return o->s;
	}
	t->slots[i].s = strtab_store(t, s, len);
	if (!t->slots[i].s)
		return NULL;
	t->slots[i].len = len;
	t->slots[i].hash = h;
	t->count++;
	return t->slots[i].s;
}

static const char *intern(struct sym_ctx *c, const char *s)
{
	return s ? intern_n(c, s, strlen(s)) : NULL;
}

/* A demangled copy of name when it is mangled, else name itself; interned. */
static const char *intern_demangled(struct sym_ctx *c, const char *name)
{
	char *d;
	const char *r;

	if (!name)
		return NULL;
	d = sym_demangle(name);
	if (!d)
		return intern(c, name);
	r = intern(c, d);
	free(d);
	return r;
}

/* Source file names relative to the compilation directory become absolute. */
static const char *intern_path(struct sym_ctx *c, const char *name, const char *comp_dir)
{
	size_t dlen, nlen;
	char *buf;
	const char *r;

	if (!name)
		return NULL;
	if (name[0] == '/' || !comp_dir || !comp_dir[0])
		return intern(c, name);
	while (name[0] == '.' && name[1] == '/')
		name += 2;
	dlen = strlen(comp_dir);
	while (dlen > 1 && comp_dir[dlen - 1] == '/')
		dlen--;
	nlen = strlen(name);
	buf = malloc(dlen + 1 + nlen + 1);
	if (!buf)
		return NULL;
	memcpy(buf, comp_dir, dlen);
	buf[dlen] = '/';
	memcpy(buf + dlen + 1, name, nlen + 1);
	r = intern_n(c, buf, dlen + 1 + nlen);
	free(buf);
	return r;
}

int sym_open(struct sym_ctx **out)
{
	struct sym_ctx *c;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->dwfl = dwfl_begin(&offline_callbacks);
	if (!c->dwfl) {
		free(c);
		return -ENOMEM;
	}
	c->sorted = 1;
	*out = c;
	return 0;
}

void sym_close(struct sym_ctx *c)
{
	struct chunk *ch, *next;

	if (!c)
		return;
	dwfl_end(c->dwfl);
	for (ch = c->strs.chunks; ch; ch = next) {
		next = ch->next;
		free(ch);
	}
	free(c->strs.slots);
	for (int i = 0; i < c->nobjs; i++) {
		free(c->objs[i].cus);
		free(c->objs[i].ranges);
	}
	free(c->objs);
	free(c->mods);
	free(c->order);
	free(c->tmp);
	free(c);
}

/* The object for path at bias, reported to libdwfl on first use. libdwfl
 * refuses a second report of the same file at the same place, so modules
 * declared twice share the first one's object (or its failure). */
static int find_object(struct sym_ctx *c, const char *path, uint64_t bias)
{
	struct object *o;

	for (int i = 0; i < c->nmods; i++)
		if (c->mods[i].path == path && c->mods[i].bias == bias)
			return c->mods[i].obj;
	if (c->nobjs == c->capobjs) {
		int cap = c->capobjs ? c->capobjs * 2 : 32;
		struct object *objs = realloc(c->objs, cap * sizeof(*objs));

		if (!objs)
			return -ENOMEM;
		c->objs = objs;
		c->capobjs = cap;
	}
	o = &c->objs[c->nobjs];
	memset(o, 0, sizeof(*o));
	dwfl_report_begin_add(c->dwfl);
	o->dm = dwfl_report_elf(c->dwfl, path, path, -1, bias, false);
	dwfl_report_end(c->dwfl, NULL, NULL);
	return c->nobjs++;
}

int sym_add_module(struct sym_ctx *c, const char *path, uint64_t bias, uint64_t start, uint64_t end)
{
	struct module *m;

	if (!c || !path || start >= end)
		return -EINVAL;
	if (c->nmods == c->capmods) {
		int cap = c->capmods ? c->capmods * 2 : 32;
		struct module *mods = realloc(c->mods, cap * sizeof(*mods));
		struct range *order;

		if (!mods)
			return -ENOMEM;
		c->mods = mods;
		order = realloc(c->order, cap * sizeof(*order));
		if (!order)
			return -ENOMEM;
		c->order = order;
		c->capmods = cap;
	}
	m = &c->mods[c->nmods];
	m->path = intern(c, path);
	if (!m->path)
		return -ENOMEM;
	m->bias = bias;
	m->start = start;
	m->end = end;
	m->obj = find_object(c, m->path, bias);
	if (m->obj < 0)
		return m->obj;
	c->sorted = 0;
	return c->nmods++;
}

static int cmp_start(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->idx - y->idx;
}

static void sort_modules(struct sym_ctx *c)
{
	uint64_t max = 0;

	for (int i = 0; i < c->nmods; i++)
		c->order[i] = (struct range){ c->mods[i].start, c->mods[i].end, 0, i };
	qsort(c->order, c->nmods, sizeof(*c->order), cmp_start);
	for (int i = 0; i < c->nmods; i++) {
		if (c->order[i].end > max)
			max = c->order[i].end;
		c->order[i].maxend = max;
	}
	c->sorted = 1;
}

/* The module whose range holds a; when ranges overlap (a library unloaded
 * and another loaded in its place), the one declared last wins. */
static int find_module(struct sym_ctx *c, uint64_t a)
{
	int lo = 0, hi = c->nmods, best = -1;

	if (!c->sorted)
		sort_modules(c);
	while (lo < hi) { /* first position whose start is > a */
		int mid = lo + (hi - lo) / 2;

		if (c->order[mid].start <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (int i = lo - 1; i >= 0 && c->order[i].maxend > a; i--) {
		const struct range *r = &c->order[i];

		if (a < r->end && r->idx > best)
			best = r->idx;
	}
	return best;
}

/* Name of a subprogram or inlined instance: the demangled linkage name when
 * there is one (qualified C++ and Rust names), else DW_AT_name. Both follow
 * DW_AT_abstract_origin and DW_AT_specification. */
static const char *die_name(struct sym_ctx *c, Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *link, *name;
	char *d;

	link = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
	if (!link)
		link = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
	if (link) {
		d = sym_demangle(link);
		if (d) {
			name = intern(c, d);
			free(d);
			return name;
		}
	}
	name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
	return intern(c, name ? name : link);
}

static int reserve_tmp(struct sym_ctx *c, int n)
{
	struct sym_frame *tmp;

	if (n <= c->captmp)
		return 0;
	tmp = realloc(c->tmp, n * sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	c->tmp = tmp;
	c->captmp = n;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct cu_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Ranges of every compile unit of o, from DW_AT_low_pc/high_pc/ranges. */
static void build_cu_ranges(struct object *o)
{
	Dwarf_CU *cu = NULL, *next;
	Dwarf_Die cudie;
	Dwarf_Addr bias;
	Dwarf *dw;
	uint8_t type;
	int ncus = 0, capcus = 0, capr = 0;

	o->cus_built = 1;
	dw = dwfl_module_getdwarf(o->dm, &bias);
	if (!dw)
		return;
	for (; dwarf_get_units(dw, cu, &next, NULL, &type, &cudie, NULL) == 0; cu = next) {
		Dwarf_Addr base, lo, hi;
		ptrdiff_t off = 0;

		if (type != DW_UT_compile && type != DW_UT_skeleton)
			continue;
		if (ncus == capcus) {
			int cap = capcus ? capcus * 2 : 64;
			Dwarf_Die *cus = realloc(o->cus, cap * sizeof(*cus));

			if (!cus)
				break;
			o->cus = cus;
			capcus = cap;
		}
		while ((off = dwarf_ranges(&cudie, off, &base, &lo, &hi)) > 0) {
			/* Zero starts are ranges of code the linker dropped. */
			if (lo == 0 || lo >= hi)
				continue;
			if (o->nranges == capr) {
				int cap = capr ? capr * 2 : 256;
				struct cu_range *r = realloc(o->ranges, cap * sizeof(*r));

				if (!r)
					break;
				o->ranges = r;
				capr = cap;
			}
			o->ranges[o->nranges++] = (struct cu_range){ lo, hi, ncus };
		}
		o->cus[ncus++] = cudie;
	}
	qsort(o->ranges, o->nranges, sizeof(*o->ranges), cmp_range);
}

/*
 * The compile unit holding a. libdwfl finds it through .debug_aranges, which
 * clang and rustc do not emit by default: without them, search the units'
 * own ranges, collected once per object.
 */
static Dwarf_Die *find_cu(struct object *o, uint64_t a, Dwarf_Addr *bias)
{
	Dwarf_Die *cu = dwfl_module_addrdie(o->dm, a, bias);
	int lo = 0, hi;
	Dwarf_Addr pc;

	if (cu)
		return cu;
	if (!o->cus_built)
		build_cu_ranges(o);
	if (!o->nranges || !dwfl_module_getdwarf(o->dm, bias))
		return NULL;
	pc = a - *bias;
	hi = o->nranges;
	while (lo < hi) { /* first range starting after pc */
		int mid = lo + (hi - lo) / 2;

		if (o->ranges[mid].lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Units should not overlap; look a little further back in case. */
	for (int i = lo - 1; i >= 0 && i >= lo - 8; i--)
		if (pc < o->ranges[i].hi)
			return &o->cus[o->ranges[i].cu];
	return NULL;
}

/*
 * Fills c->tmp for address a of object o, innermost first, and returns the
 * count. Each inlined instance is a frame whose position is the line being
 * executed in it: the line table's for the innermost, and for each outer one
 * the DW_AT_call_file/line of the instance nested in it.
 */
static int dwarf_frames(struct sym_ctx *c, struct object *o, uint64_t a, const char *elf_name)
{
	Dwarf_Die *scopes = NULL, *cu, inner;
	Dwarf_Files *files = NULL;
	const char *comp_dir = NULL, *file = NULL;
	Dwarf_Attribute attr;
	Dwarf_Addr bias = 0;
	Dwarf_Line *line;
	unsigned lineno = 0;
	int ns = 0, n = 0, err;

	cu = find_cu(o, a, &bias);
	if (cu) {
		comp_dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
		line = dwarf_getsrc_die(cu, a - bias);
		if (line) {
			int l = 0;

			file = intern_path(c, dwarf_linesrc(line, NULL, NULL), comp_dir);
			if (dwarf_lineno(line, &l) == 0 && l > 0)
				lineno = (unsigned)l;
		}

		/* dwarf_getscopes stops at the innermost inlined instance and
		 * continues with its abstract definition; the concrete chain
		 * of parents comes from dwarf_getscopes_die on the innermost. */
		ns = dwarf_getscopes(cu, a - bias, &scopes);
		if (ns > 0) {
			inner = scopes[0];
			free(scopes);
			scopes = NULL;
			ns = dwarf_getscopes_die(&inner, &scopes);
		}
		if (ns < 0)
			ns = 0;
		if (ns > 0 && dwarf_getsrcfiles(cu, &files, NULL) != 0)
			files = NULL;
	}
	err = reserve_tmp(c, ns + 1);
	if (err) {
		free(scopes);
		return err;
	}

	for (int i = 0; i < ns; i++) {
		Dwarf_Die *die = &scopes[i];
		int tag = dwarf_tag(die);
		Dwarf_Word v;

		if (tag == DW_TAG_subprogram || tag == DW_TAG_entry_point) {
			const char *name = elf_name ? intern_demangled(c, elf_name) : die_name(c, die);

			c->tmp[n++] = (struct sym_frame){ name, file, lineno, 0 };
			free(scopes);
			return n;
		}
		if (tag != DW_TAG_inlined_subroutine)
			continue; /* lexical blocks and the like */
		c->tmp[n++] = (struct sym_frame){ die_name(c, die), file, lineno, 1 };

		/* The caller's position: where this instance was inlined. */
		file = NULL;
		lineno = 0;
		if (files && dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &v) == 0)
			file = intern_path(c, dwarf_filesrc(files, v, NULL, NULL), comp_dir);
		if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &v) == 0)
			lineno = (unsigned)v;
	}
	free(scopes);

	/* No subprogram around a (no DWARF, or odd DWARF): the ELF symbol
	 * alone names the containing function. */
	c->tmp[n++] = (struct sym_frame){ intern_demangled(c, elf_name), file, lineno, 0 };
	return n;
}

int sym_resolve(struct sym_ctx *c, uint64_t ip, int return_addr, struct sym_frame *out, int max, int *module,
		uint64_t *offset)
{
	uint64_t a = return_addr && ip ? ip - 1 : ip;
	const char *elf_name;
	GElf_Off soff;
	GElf_Sym sym;
	struct module *m;
	struct object *o;
	int mi, n;

	if (module)
		*module = -1;
	if (offset)
		*offset = ip;
	if (!c || !out || max < 1)
		return -EINVAL;
	out[0] = (struct sym_frame){ NULL, NULL, 0, 0 };

	mi = find_module(c, a);
	if (mi < 0)
		return 1;
	m = &c->mods[mi];
	if (module)
		*module = mi;
	if (offset)
		*offset = ip - m->bias;
	o = &c->objs[m->obj];
	if (!o->dm)
		return 1;

	elf_name = dwfl_module_addrinfo(o->dm, a, &soff, &sym, NULL, NULL, NULL);
	n = dwarf_frames(c, o, a, elf_name);
	if (n < 0)
		return n;
	/* Too many frames for out: keep the innermost ones and the function
	 * that contains them, which the caller needs most. */
	if (n > max) {
		memcpy(out, c->tmp, (max - 1) * sizeof(*out));
		out[max - 1] = c->tmp[n - 1];
		return max;
	}
	memcpy(out, c->tmp, n * sizeof(*out));
	return n;
}
