/*
 * modules.c: the loaded objects (path, load bias, extent, build-id) of this
 * address space, appended to the shared module log so the recorder can
 * symbolize addresses after the program has exited or unloaded them. At
 * attach every object is logged; afterwards only the ones that are new
 * since the last look, whenever a stack holds an address no known object
 * covers (a dlopen happened). The log is shared by every process of the
 * tree; each entry names its space (the root node of this image).
 */
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#define LOCAL_MAX 1024 /* objects this process keeps ranges of */

char pl_exe[512];
char pl_self_path[4096];
static uint64_t self_start, self_end;
static uint64_t unw_start, unw_end; /* libunwind's own code: its mmap calls are ours */

/* What is loaded in this address space: extents, and a hash of each path to
 * tell a library from another loaded at the same place later. A fork child
 * inherits it with the space. Two lists: a snapshot (under the modules lock)
 * fills the one readers are not using, then switches them to it. */
struct local_mod {
	uint64_t bias, start, end, path_hash;
};
static struct local_mod lists[2][LOCAL_MAX];
static uint32_t counts[2];
static _Atomic uint32_t cur;  /* the list readers use */

int pl_in_self(uint64_t ip)
{
	return ip >= self_start && ip < self_end;
}

int pl_in_unwinder(uint64_t ip)
{
	return ip >= unw_start && ip < unw_end;
}

int pl_modules_contains(uint64_t ip)
{
	uint32_t c = atomic_load_explicit(&cur, memory_order_acquire);
	for (uint32_t i = 0; i < counts[c]; i++)
		if (ip >= lists[c][i].start && ip < lists[c][i].end)
			return 1;
	return 0;
}

static void read_build_id(struct hs_module *m, const ElfW(Phdr) *ph, uint64_t bias)
{
	const char *p = (const char *)(uintptr_t)(bias + ph->p_vaddr), *end = p + ph->p_memsz;
	while (p + sizeof(ElfW(Nhdr)) <= end) {
		const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
		const char *name = p + sizeof(*nh);
		const char *desc = name + ((nh->n_namesz + 3) & ~3u);
		if (desc + nh->n_descsz > end)
			return;
		if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
			uint32_t len = nh->n_descsz < sizeof(m->build_id) ? nh->n_descsz : sizeof(m->build_id);
			memcpy(m->build_id, desc, len);
			m->build_id_len = len;
			return;
		}
		p = desc + ((nh->n_descsz + 3) & ~3u);
	}
}

static void copy_path(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

static uint64_t hash_path(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

struct scan {
	uint32_t seen;                /* objects listed so far */
	struct local_mod *now;        /* the list being filled */
	uint32_t nnow;
	const struct local_mod *old;  /* what was logged before */
	uint32_t nold;
};

static int known(const struct scan *sc, const struct local_mod *l)
{
	for (uint32_t i = 0; i < sc->nold; i++)
		if (sc->old[i].bias == l->bias && sc->old[i].start == l->start && sc->old[i].end == l->end &&
		    sc->old[i].path_hash == l->path_hash)
			return 1;
	return 0;
}

/* One object of dl_iterate_phdr: logged when this space has not logged it. */
static int add_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct scan *sc = arg;
	uint64_t lo = UINT64_MAX, hi = 0;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD) {
			uint64_t s = info->dlpi_addr + ph->p_vaddr;
			if (s < lo)
				lo = s;
			if (s + ph->p_memsz > hi)
				hi = s + ph->p_memsz;
		}
	}
	uint32_t first = sc->seen++;
	if (hi == 0)
		return 0;
	/* the main program has an empty name in the loader's list */
	const char *path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : first == 0 ? pl_exe : "";
	uint64_t here = (uint64_t)(uintptr_t)&pl_in_self;
	if (here >= lo && here < hi) {
		self_start = lo;
		self_end = hi;
		copy_path(pl_self_path, sizeof(pl_self_path), path);
	}
	uint64_t unw = (uint64_t)(uintptr_t)&unw_backtrace;
	if (unw >= lo && unw < hi) {
		unw_start = lo;
		unw_end = hi;
	}
	struct local_mod l = { info->dlpi_addr, lo, hi, hash_path(path) };
	if (sc->nnow < LOCAL_MAX)
		sc->now[sc->nnow++] = l;
	if (known(sc, &l))
		return 0;
	uint32_t i = atomic_load_explicit(&pl_shm->nmodules, memory_order_relaxed);
	if (i >= HS_MAX_MODULES)
		return 0;
	struct hs_module *m = &HS_SHM_AT(pl_shm, pl_shm->modules_off, struct hs_module)[i];
	memset(m, 0, sizeof(*m));
	m->bias = info->dlpi_addr;
	m->start = lo;
	m->end = hi;
	m->space = pl_root;
	/* the build-id note is one of several PT_NOTE segments */
	for (int k = 0; k < info->dlpi_phnum && !m->build_id_len; k++)
		if (info->dlpi_phdr[k].p_type == PT_NOTE)
			read_build_id(m, &info->dlpi_phdr[k], info->dlpi_addr);
	copy_path(m->path, sizeof(m->path), path);
	/* published after it is written: the recorder reads up to the count */
	atomic_store_explicit(&pl_shm->nmodules, i + 1, memory_order_release);
	return 0;
}

void pl_modules_snapshot(void)
{
	pl_shm_lock(&pl_shm->modules_lock);
	uint32_t c = atomic_load_explicit(&cur, memory_order_relaxed);
	struct scan sc = { .now = lists[!c], .old = lists[c], .nold = counts[c] };
	dl_iterate_phdr(add_module, &sc);
	/* what is loaded now: an unloaded object's range may be reused */
	counts[!c] = sc.nnow;
	atomic_store_explicit(&cur, !c, memory_order_release);
	pl_shm_unlock(&pl_shm->modules_lock);
}

void pl_exe_init(void)
{
	long n = syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", pl_exe, sizeof(pl_exe) - 1);
	pl_exe[n > 0 ? n : 0] = 0;
}

void pl_modules_init(void)
{
	/* a new image: nothing of this space is logged yet */
	counts[0] = counts[1] = 0;
	pl_modules_snapshot();
}
