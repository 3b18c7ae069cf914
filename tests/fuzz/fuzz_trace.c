/*
 * fuzz_trace.c: the trace decoder and the model on hostile bytes.
 *
 * An input that starts with the trace magic is the file itself: file and
 * block headers, sizes, truncation, zstd frames. Any other input is taken
 * as raw records and wrapped into a valid trace (one zstd block), so every
 * record decoder and the model behind it see the mutations directly.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz_buf file;
	if (size >= TRACE_MAGIC_LEN && !memcmp(data, TRACE_MAGIC, TRACE_MAGIC_LEN)) {
		fz_read_all(fz_path(data, size));
		return 0;
	}
	file.len = 0;
	fz_file_header(&file);
	if (size)
		fz_block(&file, data, size);
	fz_read_all(fz_path(file.p, file.len));
	return 0;
}
