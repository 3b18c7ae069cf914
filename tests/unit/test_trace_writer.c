/*
 * test_trace_writer.c: the writer hands full blocks to its compressing
 * thread while the next one is built. Records written across many blocks,
 * some cut early by trace_writer_push, must read back all present, once,
 * in order; trace_writer_flush must leave every block in the file.
 *
 * Prints one line per check; the last line is "N passed, M failed".
 */
#include "trace/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

#define RECORDS 400000u   /* ~3.5 MiB of raw records: several full blocks */
#define PUSH_EVERY 70001u /* and a block cut short now and then */

static uint64_t ip_of(uint64_t id)
{
	return 0x400000 + id * 0x9E3779B1ull % 0x100000000ull;
}

int main(void)
{
	char path[] = "/tmp/test_trace_writer.XXXXXX";
	int fd = mkstemp(path);
	check(fd >= 0, "a scratch file");
	if (fd < 0)
		return check_done();
	close(fd);

	struct trace_writer *w;
	check(trace_writer_open(&w, path, 1) == 0, "open the writer");
	int pushed_err = 0;
	for (uint64_t id = 1; id <= RECORDS; id++) {
		tw_begin(w, TR_STACK);
		tw_u(w, id);
		tw_u(w, id - 1);
		tw_u(w, ip_of(id));
		tw_end(w);
		if (id % PUSH_EVERY == 0)
			pushed_err |= trace_writer_push(w);
	}
	check(pushed_err == 0, "trace_writer_push reported no error");
	check(trace_writer_flush(w) == 0, "flush");
	struct stat st;
	long long size = stat(path, &st) == 0 ? (long long)st.st_size : -1;
	uint64_t counted = trace_writer_bytes(w);
	check(size >= 0 && (uint64_t)size == counted,
	      "after a flush every block is in the file: %lld bytes, the writer counts %llu", size,
	      (unsigned long long)counted);
	check(trace_writer_close(w) == 0, "close");

	struct trace_reader *r;
	struct trace_record rec;
	char err[256] = "";
	check(trace_reader_open(&r, path, err, sizeof(err)) == 0, "open the trace: %s", err);
	uint64_t next = 1, wrong = 0;
	int ret;
	while ((ret = trace_reader_next(r, &rec)) > 0) {
		if (rec.type != TR_STACK || rec.u.stack.id != next || rec.u.stack.parent != next - 1 ||
		    rec.u.stack.ip != ip_of(next))
			wrong++;
		next++;
	}
	check(ret == 0, "the trace ends cleanly (%d)", ret);
	check_u("records read back", next - 1, RECORDS);
	check_u("records out of place or altered", wrong, 0);
	trace_reader_close(r);
	unlink(path);
	return check_done();
}
