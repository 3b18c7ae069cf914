/*
 * bootstrap.c: finds the real allocator with dlsym(RTLD_NEXT). dlsym itself
 * may call malloc/calloc before the real ones are known; those few calls are
 * served from a static arena whose blocks are never freed.
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>

#include "preload.h"

struct pl_real pl_real;

static _Alignas(64) char boot_arena[64 * 1024];
static atomic_size_t boot_used;
static volatile int resolving;

int pl_in_bootstrap(void)
{
	return resolving;
}

void *pl_boot_alloc(size_t size, size_t align)
{
	if (align < 16)
		align = 16;
	size_t off, end;
	size_t cur = atomic_load(&boot_used);
	do {
		off = (cur + align - 1) & ~(align - 1);
		end = off + (size ? size : 1);
		if (end > sizeof(boot_arena))
			return NULL;
	} while (!atomic_compare_exchange_weak(&boot_used, &cur, end));
	return boot_arena + off; /* static storage: already zeroed, as calloc needs */
}

int pl_is_boot_ptr(const void *p)
{
	return (const char *)p >= boot_arena && (const char *)p < boot_arena + sizeof(boot_arena);
}

char *pl_boot_limit(void)
{
	return boot_arena + sizeof(boot_arena);
}

#define RESOLVE(name) (pl_real.name = (__typeof__(pl_real.name))dlsym(RTLD_NEXT, #name))

int pl_resolve_real(void)
{
	resolving = 1;
	RESOLVE(malloc);
	RESOLVE(free);
	RESOLVE(calloc);
	RESOLVE(realloc);
	RESOLVE(posix_memalign);
	RESOLVE(aligned_alloc);
	RESOLVE(memalign);
	RESOLVE(valloc);
	RESOLVE(pvalloc);
	resolving = 0;
	return pl_real.malloc && pl_real.free && pl_real.calloc && pl_real.realloc && pl_real.posix_memalign &&
			       pl_real.memalign
		       ? 0
		       : -1;
}
