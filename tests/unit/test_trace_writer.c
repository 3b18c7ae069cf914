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

	/* tw_timed writes what the record built field by field would */
	char other[] = "/tmp/test_trace_writer.XXXXXX";
	fd = mkstemp(other);
	check(fd >= 0, "a second scratch file");
	if (fd < 0)
		return check_done();
	close(fd);
	const char *paths[2] = { path, other };
	for (int way = 0; way < 2; way++) {
		check(trace_writer_open(&w, paths[way], 1) == 0, "open the writer (%s)", way ? "tw_timed" : "fields");
		uint64_t t = 0;
		for (uint64_t i = 0; i < RECORDS; i++) {
			/* sizes and addresses of every varint length, time going back now and then */
			uint64_t v[] = { i % 7, 1 + i % 9, i, (i * 0x9E3779B97F4A7C15ull) >> (i % 64), 0x7f0000000000 + i * 48,
					 i % 3 ? 0 : UINT64_MAX };
			t = i % 1000 ? t + (i % 5) * 1000003 : t / 2;
			if (way) {
				tw_timed(w, TR_ALLOC, t, v, 6);
				continue;
			}
			tw_begin(w, TR_ALLOC);
			tw_time(w, t);
			for (int k = 0; k < 6; k++)
				tw_u(w, v[k]);
			tw_end(w);
		}
		check(trace_writer_close(w) == 0, "close");
	}
	FILE *a = fopen(path, "rb"), *b = fopen(other, "rb");
	long same = -1;
	if (a && b) {
		int ca, cb;
		same = 0;
		do {
			ca = fgetc(a);
			cb = fgetc(b);
			same += ca == cb;
		} while (ca == cb && ca != EOF);
		if (ca != cb)
			same = -same - 2;
	}
	if (a)
		fclose(a);
	if (b)
		fclose(b);
	check(same > 0, "the same file either way (%ld bytes; negative: differs after -n-2)", same);
	unlink(path);
	unlink(other);
	return check_done();
}
