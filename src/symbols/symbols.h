/*
 * symbols.h: instruction address -> function, file:line and the chain of
 * inlined frames, using elfutils libdw; names demangled (C++, Rust legacy
 * and v0). Used once per unique address at the end of `record`, so the trace
 * carries its own symbols and `report` needs neither binary nor libraries.
 */
#ifndef HS_SYMBOLS_H
#define HS_SYMBOLS_H

#include <stdint.h>

struct sym_ctx;

/* One frame. Strings are owned by the sym_ctx (interned) and live until
 * sym_close. function/file are NULL when unknown; line is 0 when unknown. */
struct sym_frame {
	const char *function; /* demangled */
	const char *file;     /* source file, as recorded in DWARF (absolute when known) */
	unsigned line;
	int inlined;          /* 1: this frame was inlined into the next one */
};

int sym_open(struct sym_ctx **out);
void sym_close(struct sym_ctx *c);

/* Declares an object loaded in the process: its file, load bias (dlpi_addr)
 * and the address range its segments cover. Returns the module's index
 * (0, 1, ...) or -errno. A file that cannot be read still gets an index: its
 * addresses resolve to module + offset only. */
int sym_add_module(struct sym_ctx *c, const char *path, uint64_t bias, uint64_t start, uint64_t end);

/* Keeps what is resolved in the cache directory dirfd (symcache_open_dir in
 * symcache.h) across runs: an address resolved before in the same object
 * file, with the same debug file and the same heapscope, is answered from
 * there. dirfd stays the caller's. */
void sym_use_cache(struct sym_ctx *c, int dirfd);
/* Writes what this context resolved to the cache. 0 or -errno. */
int sym_save_cache(struct sym_ctx *c);

/*
 * Resolves ip. return_addr=1 means ip is a return address (as unwinders give
 * for every caller frame): the lookup uses ip-1 so the call site's line is
 * found, not the next statement's. Fills out[0..n) innermost first: the
 * inlined frames (inlined=1) and last the function that contains them
 * (inlined=0). Returns n >= 1 (a frame with function NULL when nothing is
 * known), or -errno. *module gets the module index or -1, *offset the
 * address relative to the module's bias (ip itself when no module).
 */
int sym_resolve(struct sym_ctx *c, uint64_t ip, int return_addr, struct sym_frame *out, int max, int *module,
		uint64_t *offset);

/* Demangles a C++ (_Z), Rust legacy (_ZN...17h<hash>E) or Rust v0 (_R) name.
 * Returns a malloc'd string, or NULL when name is not mangled. Rust legacy
 * names lose their ::h<hash> suffix. */
char *sym_demangle(const char *name);

#endif
