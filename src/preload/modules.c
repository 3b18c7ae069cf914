/*
 * modules.c: the list of loaded objects (path, load bias, extent, build-id)
 * written into the shared memory, so the recorder can symbolize addresses
 * after the program has exited or unloaded them. Rewritten under a seqlock at
 * start and whenever a stack holds an address no known object covers.
 */
#include <elf.h>
#include <link.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "preload.h"

static uint64_t self_start, self_end;

int pl_in_self(uint64_t ip)
{
	return ip >= self_start && ip < self_end;
}

static struct hs_module *modules(void)
{
	return HS_SHM_AT(pl_shm, pl_shm->modules_off, struct hs_module);
}

int pl_modules_contains(uint64_t ip)
{
	struct hs_module *m = modules();
	uint32_t n = pl_shm->nmodules;
	for (uint32_t i = 0; i < n && i < HS_MAX_MODULES; i++)
		if (ip >= m[i].start && ip < m[i].end)
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

static int add_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	uint32_t *count = arg;
	(void)size;
	if (*count >= HS_MAX_MODULES)
		return 1;
	struct hs_module *m = &modules()[*count];
	uint64_t lo = UINT64_MAX, hi = 0;
	memset(m, 0, sizeof(*m));
	m->bias = info->dlpi_addr;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD) {
			uint64_t s = info->dlpi_addr + ph->p_vaddr;
			if (s < lo)
				lo = s;
			if (s + ph->p_memsz > hi)
				hi = s + ph->p_memsz;
		} else if (ph->p_type == PT_NOTE && !m->build_id_len) {
			read_build_id(m, ph, info->dlpi_addr);
		}
	}
	if (hi == 0)
		return 0;
	m->start = lo;
	m->end = hi;
	/* the main program has an empty name in the loader's list */
	copy_path(m->path, sizeof(m->path), info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name
						   : *count == 0 ? pl_shm->exe : "");
	uint64_t here = (uint64_t)(uintptr_t)&pl_in_self;
	if (here >= lo && here < hi) {
		self_start = lo;
		self_end = hi;
	}
	(*count)++;
	return 0;
}

void pl_modules_snapshot(void)
{
	uint32_t unlocked = 0;
	while (!atomic_compare_exchange_weak(&pl_shm->modules_lock, &unlocked, 1)) {
		unlocked = 0;
		sched_yield();
	}
	atomic_fetch_add(&pl_shm->modules_seq, 1); /* odd: being rewritten */
	uint32_t count = 0;
	dl_iterate_phdr(add_module, &count);
	pl_shm->nmodules = count;
	atomic_fetch_add(&pl_shm->modules_seq, 1);
	atomic_store(&pl_shm->modules_lock, 0);
}

void pl_modules_init(void)
{
	if (!pl_shm->exe[0]) {
		ssize_t n = readlink("/proc/self/exe", pl_shm->exe, sizeof(pl_shm->exe) - 1);
		pl_shm->exe[n > 0 ? n : 0] = 0;
	}
	pl_modules_snapshot();
}
