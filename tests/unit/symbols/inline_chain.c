/*
 * inline_chain.c: a known inline chain for test_symbols. f (never inlined)
 * inlines g (always inlined), which calls malloc and inlines h. note_caller,
 * called from h, records its return address: an address in f's code that
 * lies in h's instance inside g's. The program prints that address, f's and
 * where its own image is loaded, so the test can resolve them as the
 * recorder would. Lines marked MARK_* are looked up by the test.
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void *volatile seen_ra;

__attribute__((noinline)) void note_caller(void)
{
	seen_ra = __builtin_return_address(0);
	__asm__ volatile("" ::: "memory"); /* keep it a real call, not a tail call */
}

static inline __attribute__((always_inline)) void h(void)
{
	note_caller(); /* MARK_H_CALL */
}

static inline __attribute__((always_inline)) void *g(size_t n)
{
	h(); /* MARK_G_CALL */
	return malloc(n);
}

__attribute__((noinline)) void *f(size_t n)
{
	void *p = g(n); /* MARK_F_CALL */

	__asm__ volatile("" ::: "memory");
	return p;
}

/*
 * Symbols named like the pieces and copies compilers make of a function
 * (f.part.0, f.cold, f.constprop.0.isra.0), which must be reported under the
 * source name, and a dotted name (as Go and Zig write them) kept whole.
 * main prints "sym <expected name> <address>" for each.
 */
#define NAMED(fn, label)                                    \
	void *fn(size_t n) __asm__(label);                  \
	__attribute__((noinline)) void *fn(size_t n)        \
	{                                                   \
		return malloc(n + __LINE__);                \
	}
NAMED(split_part, "split.part.0")
NAMED(split_cold, "split_cold.cold")
NAMED(split_multi, "split_multi.constprop.0.isra.0")
NAMED(dotted, "std.heap.c_allocator.alloc")

/* The first object dl_iterate_phdr reports is the main program. */
static int main_image(struct dl_phdr_info *info, size_t size, void *arg)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		if (info->dlpi_addr + ph->p_vaddr < lo)
			lo = info->dlpi_addr + ph->p_vaddr;
		if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
			hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	*(int *)arg = printf("bias %#llx start %#llx end %#llx\n", (unsigned long long)info->dlpi_addr,
			     (unsigned long long)lo, (unsigned long long)hi);
	return 1;
}

int main(void)
{
	volatile size_t n = 32;
	void *p = f(n);
	int done = 0;

	printf("ra %#llx\n", (unsigned long long)(uintptr_t)seen_ra);
	printf("f %#llx\n", (unsigned long long)(uintptr_t)f);
	printf("sym split %#llx\n", (unsigned long long)(uintptr_t)split_part);
	printf("sym split_cold %#llx\n", (unsigned long long)(uintptr_t)split_cold);
	printf("sym split_multi %#llx\n", (unsigned long long)(uintptr_t)split_multi);
	printf("sym std.heap.c_allocator.alloc %#llx\n", (unsigned long long)(uintptr_t)dotted);
	dl_iterate_phdr(main_image, &done);
	free(p);
	return done > 0 ? 0 : 1;
}
