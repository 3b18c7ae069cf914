/* robust_names.c: allocates through functions that the test renames, in
 * the object file, to names hostile to HTML, SVG and JSON: "<script>",
 * quotes, invalid UTF-8, a backslash and a tab (objcopy --redefine-sym; ELF
 * names are bytes). Built without debug info, so the symbol table is what
 * names them. Each block is leaked, so every report section shows them.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define NAMED(fn)                                           \
	void *fn(size_t n) __attribute__((noinline));       \
	void *fn(size_t n)                                  \
	{                                                   \
		void *p = malloc(n);                        \
		__asm__ volatile("" : : "r"(p) : "memory"); \
		return p;                                   \
	}

NAMED(hs_name_script)
NAMED(hs_name_quotes)
NAMED(hs_name_badutf8)
NAMED(hs_name_ctl)

void *robust_names_kept[4];

int main(void)
{
	robust_names_kept[0] = hs_name_script(111);
	robust_names_kept[1] = hs_name_quotes(222);
	robust_names_kept[2] = hs_name_badutf8(333);
	robust_names_kept[3] = hs_name_ctl(444);
	printf("robust_names: 4 blocks\n");
	return 0;
}
