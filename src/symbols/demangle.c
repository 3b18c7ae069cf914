/*
 * demangle.c: C++ and Rust (legacy and v0) names to readable ones, through
 * libiberty, which the GNU toolchain itself uses.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <libiberty/demangle.h>

#include "symbols.h"

/*
 * Legacy Rust names end in "17h<16 hex>E"; libiberty drops that hash when it
 * recognises the name as Rust. When it falls back to the C++ demangler (an
 * unusual character in a path segment), the hash shows up as a last
 * "::h0123456789abcdef" segment: remove it so names stay stable across builds.
 */
static void strip_rust_hash(char *s)
{
	size_t len = strlen(s);
	char *h;

	if (len < 19)
		return;
	h = s + len - 19;
	if (h[0] != ':' || h[1] != ':' || h[2] != 'h')
		return;
	for (int i = 3; i < 19; i++)
		if (!isxdigit((unsigned char)h[i]))
			return;
	*h = '\0';
}

char *sym_demangle(const char *name)
{
	char *s;

	/* Only the Itanium C++ (_Z) and Rust v0 (_R) prefixes: a C name that
	 * merely looks like a GNAT or D name must stay as it is. */
	if (!name || name[0] != '_' || (name[1] != 'Z' && name[1] != 'R'))
		return NULL;

	if (name[1] == 'R') {
		s = cplus_demangle(name, DMGL_PARAMS | DMGL_ANSI | DMGL_RUST);
		return s;
	}
	/* Auto style tries Rust legacy first, then C++: legacy Rust names
	 * are valid Itanium names too, and the Rust reading is the useful one. */
	s = cplus_demangle(name, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
	if (s && !strncmp(name, "_ZN", 3))
		strip_rust_hash(s);
	return s;
}
