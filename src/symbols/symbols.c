/*
 * symbols.c: instruction address -> function, file:line and inline chain.
 *
 * One offline Dwfl holds every module; our own table of address ranges picks
 * the module (so ranges reused after dlclose never confuse libdwfl). libdwfl
 * opens the files and finds their separate debug info; lookups go through
 * indexes built on first use: the module's code symbols sorted by address,
 * its compile units by range, and each unit's functions by range, so the
 * DIEs of a function body are read only when an address falls in it.
 * Every returned string is interned in the context, so equal names are one
 * pointer and callers may compare or hash them by address.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>

#include "symbols.h"
#include "symcache.h"

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

/* One address range of a function with code, and its DIE. */
struct func {
	Dwarf_Addr lo, hi;
	Dwarf_Die die;
};

/* A compile unit, with the index of its functions built on first use. */
struct unit {
	Dwarf_Die die;
	Dwarf_Off off;
	int indexed;
	struct func *funcs;
	int nfuncs;
};

/* An address range of one compile unit, for objects without .debug_aranges. */
struct unit_range {
	Dwarf_Addr lo, hi;
	int unit;
};

/* A code symbol of the ELF symbol table, at its absolute address. */
struct esym {
	uint64_t lo, hi;  /* a sizeless symbol ends with its section */
	int sized;
	const char *name; /* owned by libdw */
	int rank, idx;    /* which of several symbols at one address wins */
};

/* One ELF file reported to libdwfl at one bias; modules declared twice at
 * the same place share it. */
struct object {
	Dwfl_Module *dm; /* NULL when the file could not be read */
	Dwarf *dw;       /* NULL when it has no DWARF */
	Dwarf_Addr bias;
	uint64_t load_bias; /* as reported: cached addresses are relative to it */
	struct stat st;     /* of the file libdwfl reads */
	/* The on-disk cache (symcache.c): key is NULL until looked at, and
	 * stays NULL when the object is not cached. */
	int cache_state;    /* 0 not looked at, 1 in use, -1 not cached */
	const char *path; /* interned */
	char *key;
	size_t key_len;
	struct stat debug_st; /* the separate debug file of the key, if any */
	int has_debug;
	struct symcache cache;
	int cache_dirty;
	int syms_built;
	struct esym *syms; /* sorted by address, the preferred last among equals */
	int nsyms;
	int units_built;
	struct unit *units; /* sorted by offset */
	int nunits;
	struct unit_range *ranges; /* sorted by start */
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
	/* Scratch for one address: its scopes, outermost first, and its
	 * frames before they are trimmed to max. */
	Dwarf_Die *chain;
	int capchain;
	struct sym_frame *tmp;
	int captmp;
	int cache_dir; /* -1: no on-disk cache */
	char exe_id[160];
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

/* Whether s[0..len) is one of the words GCC and LLVM append to the names of
 * the pieces and copies they make of a function. */
static int is_clone_word(const char *s, size_t len)
{
	static const char *const words[] = { "cold", "part", "constprop", "isra", "lto_priv", "llvm",
					     "localalias", "clone", "specialized" };

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i]) == len && !memcmp(words[i], s, len))
			return 1;
	return 0;
}

/* The length of name without its clone suffixes (".cold", ".part.0",
 * ".constprop.0.isra.0", ".llvm.123"), keeping dots that belong to the name
 * (Go and Zig symbols are dotted paths). */
static size_t strip_clone_suffix(const char *name, size_t len)
{
	for (;;) {
		size_t end = len, dot;
		int digits = 1;

		while (end && name[end - 1] != '.')
			end--;
		if (end < 2)
			return len;
		dot = end - 1; /* the last component is name[end..len) */
		for (size_t i = end; i < len; i++)
			digits &= name[i] >= '0' && name[i] <= '9';
		if (digits && end < len) {
			size_t word = dot;

			while (word && name[word - 1] != '.')
				word--;
			if (word < 2 || !is_clone_word(name + word, dot - word))
				return len;
			len = word - 1;
		} else if (is_clone_word(name + end, len - end)) {
			len = dot;
		} else {
			return len;
		}
	}
}

/*
 * The function name for an ELF symbol: demangled, without the suffixes the
 * compiler gives the pieces and copies it makes of one source function
 * (f.cold, f.part.0, f.constprop.0; demangled C++ shows them as
 * " [clone .cold]"), so that all of them report as f.
 */
static const char *intern_function(struct sym_ctx *c, const char *name)
{
	char buf[256], *d, *copy = NULL;
	const char *at, *r;
	size_t len;

	if (!name)
		return NULL;
	/* Versioned definitions in .symtab ("glob64@@GLIBC_2.27"): the
	 * version is not part of the name, and stops the demangler. */
	at = name[0] ? strchr(name + 1, '@') : NULL;
	if (at) {
		len = at - name;
		copy = len < sizeof(buf) ? buf : malloc(len + 1);
		if (!copy)
			return NULL;
		memcpy(copy, name, len);
		copy[len] = '\0';
		name = copy;
	}
	d = sym_demangle(name);
	if (d) {
		len = strlen(d);
		while (len && d[len - 1] == ']') {
			char *clone = NULL;

			for (char *p = strstr(d, " [clone ."); p && p < d + len; p = strstr(p + 1, " [clone ."))
				clone = p;
			if (!clone)
				break;
			len = clone - d;
		}
		r = intern_n(c, d, len);
		free(d);
	} else {
		r = intern_n(c, name, strip_clone_suffix(name, strlen(name)));
	}
	if (copy != buf)
		free(copy);
	return r;
}

/*
 * Source file names relative to an absolute compilation directory become
 * absolute. libdw already prefixes names with their line-table directory,
 * and directory 0 is the compilation directory itself, so a relative one
 * (as in builds with -fdebug-prefix-map=...=.) is already in the name.
 */
static const char *intern_path(struct sym_ctx *c, const char *name, const char *comp_dir)
{
	size_t dlen, nlen;
	char *buf;
	const char *r;

	if (!name)
		return NULL;
	if (name[0] == '/' || !comp_dir || comp_dir[0] != '/')
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
	c->cache_dir = -1;
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
		struct object *o = &c->objs[i];

		for (int k = 0; k < o->nunits; k++)
			free(o->units[k].funcs);
		free(o->units);
		free(o->ranges);
		free(o->syms);
		free(o->key);
		symcache_clear(&o->cache);
	}
	free(c->objs);
	free(c->mods);
	free(c->order);
	free(c->chain);
	free(c->tmp);
	free(c);
}

/* The object for path at bias, reported to libdwfl on first use. libdwfl
 * refuses a second report of the same file at the same place, so modules
 * declared twice share the first one's object (or its failure). */
static int find_object(struct sym_ctx *c, const char *path, uint64_t bias)
{
	struct object *o;
	struct stat st;

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
	o->load_bias = bias;
	o->cache.sorted = 1;
	/* Only regular files: opening a FIFO or device named in a module
	 * map could block or read forever. The file is the one we stat:
	 * the cache key names it. */
	if (!stat(path, &st) && S_ISREG(st.st_mode)) {
		int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

		if (fd >= 0 && !fstat(fd, &o->st) && S_ISREG(o->st.st_mode)) {
			dwfl_report_begin_add(c->dwfl);
			o->dm = dwfl_report_elf(c->dwfl, path, path, fd, bias, false);
			dwfl_report_end(c->dwfl, NULL, NULL);
			if (o->dm)
				fd = -1; /* libdwfl's now */
		}
		if (fd >= 0)
			close(fd);
	}
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

/* Grows a scratch array of elem-sized items to hold at least n. */
static int reserve(void **arr, int *cap, int n, size_t elem)
{
	int ncap = *cap ? *cap : 16;
	void *p;

	if (n <= *cap)
		return 0;
	while (ncap < n)
		ncap *= 2;
	p = realloc(*arr, (size_t)ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static int cmp_esym(const void *a, const void *b)
{
	const struct esym *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	return y->idx - x->idx;
}

/* The end of section shndx of elf when it holds code, else 0. */
static uint64_t code_section_end(Elf *elf, GElf_Word shndx)
{
	GElf_Shdr mem, *sh;
	Elf_Scn *scn;

	if (!elf || !(scn = elf_getscn(elf, shndx)) || !(sh = gelf_getshdr(scn, &mem)))
		return 0;
	return sh->sh_flags & SHF_EXECINSTR ? sh->sh_addr + sh->sh_size : 0;
}

/*
 * The code symbols of o, sorted once: dwfl_module_addrinfo scans the whole
 * symbol table on every call (0.1 ms per address in libc), a binary search
 * here costs next to nothing.
 */
static void build_syms(struct object *o)
{
	int n = dwfl_module_getsymtab(o->dm), cap = 0;

	o->syms_built = 1;
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		GElf_Word shndx;
		Elf *elf = NULL;
		const char *name = dwfl_module_getsym_info(o->dm, i, &sym, &addr, &shndx, &elf, NULL);
		int type, bind;
		uint64_t end;

		if (!name || !name[0] || name[0] == '$' || shndx == SHN_UNDEF || shndx == SHN_ABS)
			continue;
		type = GELF_ST_TYPE(sym.st_info);
		bind = GELF_ST_BIND(sym.st_info);
		/* Untyped symbols are assembler labels when they sit in code;
		 * elsewhere they mark data or section ends. */
		if (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_NOTYPE)
			continue;
		end = code_section_end(elf, shndx);
		if (!end)
			continue;
		end += addr - sym.st_value; /* the symbol's own load bias */
		if (reserve((void **)&o->syms, &cap, o->nsyms + 1, sizeof(*o->syms)))
			break;
		o->syms[o->nsyms++] = (struct esym){
			.lo = addr,
			.hi = sym.st_size ? addr + sym.st_size : end,
			.sized = sym.st_size != 0,
			.name = name,
			/* Sized before sizeless, then global, weak, local:
			 * "abort" rather than its internal alias. */
			.rank = (sym.st_size ? 4 : 0) + (bind == STB_GLOBAL ? 2 : bind == STB_WEAK ? 1 : 0),
			.idx = i,
		};
	}
	qsort(o->syms, o->nsyms, sizeof(*o->syms), cmp_esym);
}

/* The name of the code symbol holding a: the closest sized symbol that
 * covers it, else a label right before it in the same section. */
static const char *find_sym(struct object *o, uint64_t a)
{
	int lo = 0, hi;

	if (!o->syms_built)
		build_syms(o);
	hi = o->nsyms;
	while (lo < hi) { /* first symbol starting after a */
		int mid = lo + (hi - lo) / 2;

		if (o->syms[mid].lo <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	/* A few steps back cover aliases and labels inside a function. */
	for (int i = lo - 1; i >= 0 && i >= lo - 32; i--)
		if (o->syms[i].sized && a < o->syms[i].hi)
			return o->syms[i].name;
	return !o->syms[lo - 1].sized && a < o->syms[lo - 1].hi ? o->syms[lo - 1].name : NULL;
}

static int cmp_unit_range(const void *a, const void *b)
{
	const struct unit_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int cmp_unit_off(const void *a, const void *b)
{
	const struct unit *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Every compile unit of o and its address ranges (DW_AT_low_pc/high_pc or
 * DW_AT_ranges): reads unit headers only, not their DIEs. */
static void build_units(struct object *o)
{
	Dwarf_CU *cu = NULL, *next;
	Dwarf_Die cudie;
	uint8_t type;
	int capu = 0, capr = 0;

	o->units_built = 1;
	o->dw = dwfl_module_getdwarf(o->dm, &o->bias);
	if (!o->dw)
		return;
	for (; dwarf_get_units(o->dw, cu, &next, NULL, &type, &cudie, NULL) == 0; cu = next) {
		Dwarf_Addr base, lo, hi;
		ptrdiff_t off = 0;
		struct unit *u;

		if (type != DW_UT_compile && type != DW_UT_skeleton)
			continue;
		if (reserve((void **)&o->units, &capu, o->nunits + 1, sizeof(*o->units)))
			break;
		u = &o->units[o->nunits];
		memset(u, 0, sizeof(*u));
		u->die = cudie;
		u->off = dwarf_dieoffset(&cudie);
		while ((off = dwarf_ranges(&cudie, off, &base, &lo, &hi)) > 0) {
			/* Zero starts are ranges of code the linker dropped. */
			if (lo == 0 || lo >= hi)
				continue;
			if (reserve((void **)&o->ranges, &capr, o->nranges + 1, sizeof(*o->ranges)))
				break;
			o->ranges[o->nranges++] = (struct unit_range){ lo, hi, o->nunits };
		}
		o->nunits++;
	}
	/* Sort units first: ranges refer to units by position. */
	for (int i = 1; i < o->nunits; i++)
		if (o->units[i - 1].off > o->units[i].off) {
			/* Never seen (units come in offset order); keep
			 * ranges valid by dropping them rather than remap. */
			qsort(o->units, o->nunits, sizeof(*o->units), cmp_unit_off);
			o->nranges = 0;
			break;
		}
	qsort(o->ranges, o->nranges, sizeof(*o->ranges), cmp_unit_range);
}

/*
 * The compile unit holding a. libdwfl finds it through .debug_aranges, which
 * clang and rustc do not always emit: without them, search the units' own
 * ranges.
 */
static struct unit *find_unit(struct object *o, uint64_t a)
{
	Dwarf_Addr bias, pc;
	Dwarf_Die *cu;
	int lo = 0, hi;

	if (!o->units_built)
		build_units(o);
	if (!o->dw)
		return NULL;
	pc = a - o->bias;
	cu = dwfl_module_addrdie(o->dm, a, &bias);
	if (cu && bias == o->bias) {
		Dwarf_Off off = dwarf_dieoffset(cu);

		hi = o->nunits;
		while (lo < hi) {
			int mid = lo + (hi - lo) / 2;

			if (o->units[mid].off < off)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < o->nunits && o->units[lo].off == off)
			return &o->units[lo];
	}

	lo = 0;
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
			return &o->units[o->ranges[i].unit];
	return NULL;
}

static int cmp_func(const void *a, const void *b)
{
	const struct func *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/*
 * Adds the functions with code under parent to u's index. Functions sit at
 * the top of a unit (C, C++) or inside namespaces and types (Rust); we do not
 * enter function bodies, so a body's DIEs are read only when an address
 * falls in it. (dwarf_getscopes does not enter namespaces in elfutils 0.188,
 * which loses every Rust function.)
 */
static void index_funcs(struct unit *u, Dwarf_Die *parent, int *cap, int depth)
{
	Dwarf_Die child;

	if (depth > 32 || dwarf_child(parent, &child) != 0)
		return;
	do {
		Dwarf_Addr base, lo, hi;
		ptrdiff_t off = 0;

		switch (dwarf_tag(&child)) {
		case DW_TAG_subprogram:
			while ((off = dwarf_ranges(&child, off, &base, &lo, &hi)) > 0) {
				if (lo == 0 || lo >= hi)
					continue;
				if (reserve((void **)&u->funcs, cap, u->nfuncs + 1, sizeof(*u->funcs)))
					return;
				u->funcs[u->nfuncs++] = (struct func){ lo, hi, child };
			}
			break;
		case DW_TAG_namespace:
		case DW_TAG_module:
		case DW_TAG_class_type:
		case DW_TAG_structure_type:
		case DW_TAG_union_type:
		case DW_TAG_interface_type:
			index_funcs(u, &child, cap, depth + 1);
			break;
		default:
			break;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
}

/* The function of u whose code holds pc, or NULL. */
static Dwarf_Die *find_func(struct unit *u, Dwarf_Addr pc)
{
	int lo = 0, hi;

	if (!u->indexed) {
		int cap = 0;

		u->indexed = 1;
		index_funcs(u, &u->die, &cap, 0);
		qsort(u->funcs, u->nfuncs, sizeof(*u->funcs), cmp_func);
	}
	hi = u->nfuncs;
	while (lo < hi) { /* first function starting after pc */
		int mid = lo + (hi - lo) / 2;

		if (u->funcs[mid].lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* The latest start that still covers pc; a few steps back cover
	 * functions whose ranges interleave. */
	for (int i = lo - 1; i >= 0 && i >= lo - 16; i--)
		if (pc < u->funcs[i].hi)
			return &u->funcs[i].die;
	return NULL;
}

/* Scopes that hold code and may hold an inlined instance. */
static int is_code_scope(int tag)
{
	return tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block || tag == DW_TAG_subprogram ||
	       tag == DW_TAG_try_block || tag == DW_TAG_catch_block || tag == DW_TAG_with_stmt;
}

/*
 * Fills c->chain with the DIEs around pc, outermost (the function) first,
 * and returns their count: from the function, step into the child scope that
 * holds pc until none does.
 */
static int scope_chain(struct sym_ctx *c, Dwarf_Die *func, Dwarf_Addr pc)
{
	int n = 0;

	if (reserve((void **)&c->chain, &c->capchain, 1, sizeof(*c->chain)))
		return 0;
	c->chain[n++] = *func;
	for (;;) {
		Dwarf_Die child;
		int tag = 0, found = 0;

		if (dwarf_child(&c->chain[n - 1], &child) != 0)
			break;
		do {
			tag = dwarf_tag(&child);
			if (is_code_scope(tag) && dwarf_haspc(&child, pc) > 0) {
				found = 1;
				break;
			}
		} while (dwarf_siblingof(&child, &child) == 0);
		if (!found || reserve((void **)&c->chain, &c->capchain, n + 1, sizeof(*c->chain)))
			break;
		/* A nested function (GNU C) is a real frame: start again there. */
		if (tag == DW_TAG_subprogram)
			n = 0;
		c->chain[n++] = child;
	}
	return n;
}

/*
 * Fills c->tmp for address a of object o, innermost first, and returns the
 * count. Each inlined instance is a frame whose position is the line being
 * executed in it: the line table's for the innermost, and for each outer one
 * the DW_AT_call_file/line of the instance nested in it. The containing
 * function is named by its ELF symbol when there is one.
 */
static int frames(struct sym_ctx *c, struct object *o, uint64_t a, const char *elf_name)
{
	const char *comp_dir = NULL, *file = NULL;
	Dwarf_Files *files = NULL;
	Dwarf_Attribute attr;
	Dwarf_Die *func = NULL;
	struct unit *u;
	unsigned lineno = 0;
	int ns = 0, n = 0, err;

	u = find_unit(o, a);
	if (u) {
		Dwarf_Addr pc = a - o->bias;
		Dwarf_Line *line = dwarf_getsrc_die(&u->die, pc);

		comp_dir = dwarf_formstring(dwarf_attr(&u->die, DW_AT_comp_dir, &attr));
		if (line) {
			int l = 0;

			file = intern_path(c, dwarf_linesrc(line, NULL, NULL), comp_dir);
			if (dwarf_lineno(line, &l) == 0 && l > 0)
				lineno = (unsigned)l;
		}
		func = find_func(u, pc);
		if (func)
			ns = scope_chain(c, func, pc);
		if (ns > 1 && dwarf_getsrcfiles(&u->die, &files, NULL) != 0)
			files = NULL;
	}
	err = reserve((void **)&c->tmp, &c->captmp, ns + 1, sizeof(*c->tmp));
	if (err)
		return err;

	for (int i = ns - 1; i > 0; i--) {
		Dwarf_Die *die = &c->chain[i];
		Dwarf_Word v;

		if (dwarf_tag(die) != DW_TAG_inlined_subroutine)
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
	/* The function: its ELF symbol (what profilers and debuggers show,
	 * clones like f.cold included), else its DIE's name. */
	c->tmp[n++] = (struct sym_frame){ elf_name ? intern_function(c, elf_name) : ns ? die_name(c, &c->chain[0]) : NULL,
					  file, lineno, 0 };
	return n;
}

/* ---- the on-disk cache ------------------------------------------------------ */

/* What identifies the content of a file, as text for a cache key. */
static void stat_id(char *buf, size_t len, const struct stat *st)
{
	snprintf(buf, len, "dev %llu ino %llu size %lld mtime %lld.%09ld ctime %lld.%09ld",
		 (unsigned long long)st->st_dev, (unsigned long long)st->st_ino, (long long)st->st_size,
		 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec,
		 st->st_ctim.tv_nsec);
}

void sym_use_cache(struct sym_ctx *c, int dirfd)
{
	struct stat st;

	if (!c || dirfd < 0 || stat("/proc/self/exe", &st) < 0)
		return;
	stat_id(c->exe_id, sizeof(c->exe_id), &st);
	c->cache_dir = dirfd;
}

static const char *intern_cb(void *ctx, const char *s, size_t len)
{
	return intern_n(ctx, s, len);
}

static int key_equal(void *ctx, const char *key, size_t len)
{
	const struct object *o = ctx;

	return len == o->key_len && !memcmp(key, o->key, len) ? 0 : -1;
}

/*
 * The separate debug file libdwfl would take for path: the standard search
 * (build id, then .gnu_debuglink), asked of a throwaway session, because the
 * search leaves state in the module it is asked for. Returns 1 with *st and
 * *name (malloc'd), 0 when there is none, -1 when it cannot be told.
 */
static int find_debug_file(const char *path, uint64_t bias, struct stat *st, char **name)
{
	Dwfl *dwfl = dwfl_begin(&offline_callbacks);
	Dwfl_Module *dm;
	Elf *elf;
	GElf_Addr b;
	GElf_Word crc = 0;
	void *ud = NULL;
	int fd, ret = -1;

	*name = NULL;
	if (!dwfl)
		return -1;
	dwfl_report_begin(dwfl);
	dm = dwfl_report_elf(dwfl, path, path, -1, bias, false);
	dwfl_report_end(dwfl, NULL, NULL);
	if (dm && (elf = dwfl_module_getelf(dm, &b))) {
		const char *link = dwelf_elf_gnu_debuglink(elf, &crc);

		fd = dwfl_standard_find_debuginfo(dm, &ud, path, 0, path, link, crc, name);
		if (fd < 0) {
			ret = 0;
		} else {
			ret = !fstat(fd, st) && S_ISREG(st->st_mode) && *name ? 1 : -1;
			close(fd);
		}
	}
	if (ret != 1) {
		free(*name);
		*name = NULL;
	}
	dwfl_end(dwfl);
	return ret;
}

/*
 * Whether libdwfl takes o's DWARF and symbols from o's file alone: it looks
 * for a separate debug file only when the file lacks DWARF (for the
 * functions and lines) or a .symtab (for the symbols). Read from the
 * section headers of the ELF already open, so a cached object that holds
 * its own debug info costs no search (which, for a file with a build id
 * and no debug file anywhere, loads the debuginfod client: ~6 ms).
 */
static int self_contained(struct object *o)
{
	Elf *elf;
	Elf_Scn *scn = NULL;
	GElf_Addr b;
	GElf_Shdr sh;
	size_t shstrndx;
	int dwarf = 0, symtab = 0;

	elf = dwfl_module_getelf(o->dm, &b);
	if (!elf || elf_getshdrstrndx(elf, &shstrndx) < 0)
		return 0;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			return 0;
		if (sh.sh_type == SHT_SYMTAB)
			symtab = 1;
		else if (sh.sh_type != SHT_NOBITS && sh.sh_size && (name = elf_strptr(elf, shstrndx, sh.sh_name)) &&
			 (!strcmp(name, ".debug_info") || !strcmp(name, ".zdebug_info")))
			dwarf = 1;
	}
	return dwarf && symtab;
}

/* Builds o's key and loads its file. The key covers everything an answer
 * depends on: this heapscope, the object file and its debug file ("self"
 * when that is the object file). */
static void cache_open(struct sym_ctx *c, struct object *o, const char *path)
{
	char main_id[200], debug_id[200] = "-", *debug = NULL;
	int has = 0, self;

	o->cache_state = -1;
	o->path = path;
	if (c->cache_dir < 0 || !o->dm)
		return;
	self = self_contained(o);
	if (!self && (has = find_debug_file(path, o->load_bias, &o->debug_st, &debug)) < 0)
		return;
	o->has_debug = has;
	stat_id(main_id, sizeof(main_id), &o->st);
	if (has)
		stat_id(debug_id, sizeof(debug_id), &o->debug_st);
	size_t len = strlen(c->exe_id) + strlen(path) + strlen(main_id) + (debug ? strlen(debug) : 4) +
		     strlen(debug_id) + 80;
	o->key = malloc(len);
	if (o->key) {
		int n = self ? snprintf(o->key, len, "heapscope symbols\nexe %s\nobject %s\n%s\ndebug self\n",
					c->exe_id, path, main_id)
			     : snprintf(o->key, len, "heapscope symbols\nexe %s\nobject %s\n%s\ndebug %s\n%s\n",
					c->exe_id, path, main_id, debug ? debug : "-", debug_id);
		o->key_len = n > 0 && (size_t)n < len ? (size_t)n : 0;
		if (o->key_len) {
			symcache_load(c->cache_dir, path, key_equal, o, &o->cache, intern_cb, c);
			o->cache_state = 1;
		}
	}
	free(debug);
}

/* Whether what libdwfl read for o is what its key names: the object file
 * itself, or the debug file of the key; no supplementary (dwz) file, which
 * the key does not cover. */
static int cache_sound(struct object *o)
{
	const char *mainfile = NULL, *debugfile = NULL, *alt;
	const void *id;
	struct stat st;

	if (o->dw && dwelf_dwarf_gnu_debugaltlink(o->dw, &alt, &id) != 0)
		return 0;
	dwfl_module_info(o->dm, NULL, NULL, NULL, NULL, NULL, &mainfile, &debugfile);
	if (!debugfile || (mainfile && !strcmp(debugfile, mainfile)))
		return 1;
	return o->has_debug && !stat(debugfile, &st) && st.st_dev == o->debug_st.st_dev &&
	       st.st_ino == o->debug_st.st_ino && st.st_size == o->debug_st.st_size &&
	       st.st_mtim.tv_sec == o->debug_st.st_mtim.tv_sec && st.st_mtim.tv_nsec == o->debug_st.st_mtim.tv_nsec;
}

int sym_save_cache(struct sym_ctx *c)
{
	int ret = 0;

	if (!c || c->cache_dir < 0)
		return 0;
	for (int i = 0; i < c->nobjs; i++) {
		struct object *o = &c->objs[i];

		if (o->cache_state == 1 && o->cache_dirty && cache_sound(o)) {
			int r = symcache_save(c->cache_dir, o->path, o->key, o->key_len, &o->cache);

			if (r && !ret)
				ret = r;
			o->cache_dirty = 0;
		}
	}
	return ret;
}

int sym_resolve(struct sym_ctx *c, uint64_t ip, int return_addr, struct sym_frame *out, int max, int *module,
		uint64_t *offset)
{
	uint64_t a = return_addr && ip ? ip - 1 : ip;
	const char *elf_name;
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

	if (!o->cache_state)
		cache_open(c, o, m->path);
	const struct symcache_entry *hit = o->cache_state == 1 ? symcache_get(&o->cache, a - o->load_bias) : NULL;
	if (hit) {
		n = hit->n;
		if (reserve((void **)&c->tmp, &c->captmp, n, sizeof(*c->tmp)))
			return -ENOMEM;
		memcpy(c->tmp, hit->frames, n * sizeof(*c->tmp));
	} else {
		elf_name = find_sym(o, a);
		n = frames(c, o, a, elf_name);
		if (n < 0)
			return n;
		if (o->cache_state == 1) {
			if (symcache_put(&o->cache, a - o->load_bias, c->tmp, n) == -ENOMEM)
				return -ENOMEM;
			o->cache_dirty = 1;
		}
	}
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
