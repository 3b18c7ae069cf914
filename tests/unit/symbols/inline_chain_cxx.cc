// inline_chain_cxx.cc: the C++ twin of inline_chain.c for test_symbols.
// app::load (never inlined) inlines app::Pool::grab (always inlined), which
// allocates with operator new; the names must come out qualified, from the
// DWARF linkage names. Lines marked MARK_* are looked up by the test.
#include <link.h>
#include <stdint.h>
#include <stdio.h>

extern "C" {
void *volatile seen_ra;

__attribute__((noinline)) void note_caller(void)
{
	seen_ra = __builtin_return_address(0);
	__asm__ volatile("" ::: "memory");
}
}

namespace app {
struct Pool {
	unsigned long used;

	__attribute__((always_inline)) inline void *grab(unsigned long n)
	{
		note_caller(); // MARK_GRAB_CALL
		used += n;
		return ::operator new(n);
	}
};

__attribute__((noinline)) void *load(Pool &pool, unsigned long n)
{
	void *p = pool.grab(n); // MARK_LOAD_CALL

	__asm__ volatile("" ::: "memory");
	return p;
}
} // namespace app

static int main_image(struct dl_phdr_info *info, size_t, void *arg)
{
	uint64_t lo = UINT64_MAX, hi = 0;

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

int main()
{
	volatile unsigned long n = 32;
	app::Pool pool = { 0 };
	void *p = app::load(pool, n);
	int done = 0;

	printf("ra %#llx\n", (unsigned long long)(uintptr_t)seen_ra);
	printf("f %#llx\n", (unsigned long long)(uintptr_t)&app::load);
	dl_iterate_phdr(main_image, &done);
	::operator delete(p);
	return done > 0 ? 0 : 1;
}
