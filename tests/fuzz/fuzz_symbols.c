/*
 * fuzz_symbols.c: the symbol section (TR_STRING, TR_SYMBOL) on hostile
 * bytes, inside an otherwise valid trace.
 *
 * A fixed first block holds what a real trace has before its symbol table:
 * the process, three modules, a small stack trie with allocations on its
 * leaves, a free and an exit mark. The fuzz bytes are the raw records of the
 * second block, followed there by a TR_END, so the reader decodes them after
 * a valid zstd frame and the model resolves the stacks through whatever
 * strings and symbols they define. Seeds are real symbol tables, their ips
 * mapped onto this trie's (see mkcorpus.py).
 */
#include "fuzz_common.h"
#include "fuzz_symbols.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void prefix(struct fz_buf *raw)
{
	static const char *const argv[] = { "./prog", "arg" };
	fz_u(raw, TR_PROCESS);
	fz_u(raw, 0);    /* index */
	fz_u(raw, 4242); /* pid */
	fz_u(raw, 0);    /* parent */
	fz_u(raw, 0);    /* how */
	fz_u(raw, 0);    /* flags */
	fz_u(raw, 0);    /* start */
	fz_u(raw, 1700000000000000000ull);
	fz_u(raw, 4096);
	fz_u(raw, 10000000);
	fz_str(raw, "/usr/bin/prog");
	fz_u(raw, 2);
	for (int i = 0; i < 2; i++)
		fz_str(raw, argv[i]);
	for (unsigned id = 1; id <= FZ_SYM_MODULES; id++) {
		fz_u(raw, TR_MODULE);
		fz_u(raw, id);
		fz_u(raw, 0); /* space: the nodes below hang from no root */
		fz_u(raw, fz_sym_module_bias(id));
		fz_u(raw, fz_sym_module_bias(id));
		fz_u(raw, fz_sym_module_bias(id) + FZ_SYM_MODULE_SPAN);
		fz_u(raw, 4);
		fz_put(raw, "\x01\x02\x03\x04", 4);
		fz_str(raw, id == 1 ? "/usr/bin/prog" : id == 2 ? "/lib/libc.so.6" : "/lib/liba.so");
	}
	/* node k's parent: a chain for the first half, then branches off it */
	for (unsigned k = 1; k <= FZ_SYM_NODES; k++) {
		fz_u(raw, TR_STACK);
		fz_u(raw, k);
		fz_u(raw, k <= FZ_SYM_NODES / 2 ? k - 1 : k - FZ_SYM_NODES / 2);
		fz_u(raw, fz_sym_ip(k));
	}
	fz_u(raw, TR_THREAD);
	fz_u(raw, 100);
	fz_u(raw, 0);
	fz_u(raw, 4243);
	fz_u(raw, 0); /* process */
	for (unsigned k = 1; k <= FZ_SYM_NODES; k++) {
		fz_u(raw, TR_ALLOC);
		fz_u(raw, 10);
		fz_u(raw, 0);
		fz_u(raw, 1);
		fz_u(raw, k);
		fz_u(raw, 16 * k);
		fz_u(raw, 0x10000 + 0x100 * k);
		fz_u(raw, 8);
	}
	fz_u(raw, TR_FREE);
	fz_u(raw, 5);
	fz_u(raw, 0);
	fz_u(raw, 32);
	fz_u(raw, 0x10000 + 0x100);
	fz_u(raw, TR_EXIT_MARK);
	fz_u(raw, 5);
	fz_u(raw, 0); /* process */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz_buf file, head, raw, block;
	if (!head.len) {
		prefix(&head);
		fz_block(&block, head.p, head.len); /* the same every run */
	}
	/* the symbol block must fit one block, with the end record */
	if (size > TRACE_BLOCK_RAW_CAP - 64)
		size = TRACE_BLOCK_RAW_CAP - 64;
	file.len = 0;
	fz_file_header(&file);
	fz_put(&file, block.p, block.len);
	raw.len = 0;
	fz_put(&raw, data, size);
	fz_u(&raw, TR_END);
	fz_u(&raw, 1000);
	fz_u(&raw, 0);
	fz_u(&raw, 0);
	fz_u(&raw, FZ_SYM_NODES + 1);
	fz_u(&raw, 0);
	fz_u(&raw, 0);
	fz_u(&raw, 0);
	fz_u(&raw, 0); /* processes lost */
	fz_block(&file, raw.p, raw.len);
	fz_read_all(fz_path(file.p, file.len));
	return 0;
}
