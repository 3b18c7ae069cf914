/*
 * fuzz_symbols.h: the stack trie and modules that fuzz_symbols.c puts before
 * the fuzzed symbol section; mkseed.c maps real symbol tables onto them.
 */
#ifndef HS_FUZZ_SYMBOLS_H
#define HS_FUZZ_SYMBOLS_H

#include <stdint.h>

#define FZ_SYM_NODES 16u
#define FZ_SYM_MODULES 3u
#define FZ_SYM_MODULE_SPAN 0x100000ull

static inline uint64_t fz_sym_module_bias(unsigned id)
{
	return 0x400000ull * id;
}

/* Node k (1-based) lies in module 1 + k % 3. */
static inline uint64_t fz_sym_ip(unsigned k)
{
	return fz_sym_module_bias(1 + k % FZ_SYM_MODULES) + 0x1000 + 0x10 * k;
}

#endif
