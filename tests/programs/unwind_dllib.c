/* unwind_dllib.c: a library unwind_dlmain loads, uses and unloads; built
 * twice with a different PAD, so that the two builds have the same code at
 * the same offsets but different frames (CFA = rsp + PAD + 16): a rule
 * cached for the first library and used for the second, loaded at the same
 * address, would walk its frame wrong. */
#include <stdlib.h>

#ifndef PAD
#define PAD 4096
#endif

void *unwind_dl_alloc(int n);

__attribute__((noinline)) void *unwind_dl_alloc(int n)
{
	volatile char pad[PAD];
	pad[0] = (char)n;
	void *p = malloc((size_t)n + (size_t)pad[0]); /* LINE:dl_alloc */
	pad[1] = 0;
	return p;
}
