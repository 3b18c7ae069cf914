/*
 * trace.h: the heapscope trace file (.hst), shared by the writer (record) and
 * the reader (analyze). The layout is documented in docs/trace-format.md;
 * change both together and bump TRACE_VERSION on any incompatible change.
 */
#ifndef HS_TRACE_H
#define HS_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TRACE_MAGIC "HEAPSCP\0"
#define TRACE_MAGIC_LEN 8
#define TRACE_VERSION 3u
#define TRACE_BLOCK_RAW_MAX (1u << 20)   /* a block is closed once it holds 1 MiB */
#define TRACE_BLOCK_RAW_CAP (4u << 20)   /* hard bound on a block's raw size */
#define TRACE_BLOCK_COMP_MAX (5u << 20)  /* hard bound on a compressed block */

enum trace_rec_type {
	TR_PROCESS = 1,   /* index, pid, parent+1, how, flags, start, start_unix_ns, page_size,
			     interval_ns, exe, argc, argv[] */
	TR_MODULE = 2,    /* id, space, bias, start, end, build_id, path */
	TR_THREAD = 3,    /* dt, index, tid, process */
	TR_STACK = 4,     /* id, parent, ip */
	TR_PROCESS_END = 5, /* index, end, how, code */
	TR_ALLOC = 16,    /* dt, thread, kind, stack, size, addr, slack (usable - size) */
	TR_FREE = 17,     /* dt, thread, kind, addr */
	TR_SAMPLE = 18,   /* dt, process, rss */
	TR_EXIT_MARK = 19,/* dt, process: its exit path ran; its leaks are counted here */
	TR_MAP = 20,      /* dt, thread, kind, stack, addr, size, old_addr, old_size, prot, flags, fd+1 */
	TR_MALLINFO = 21, /* dt, process, arena, ordblks, hblks, hblkhd, uordblks, fordblks, keepcost */
	TR_SMAPS = 22,    /* dt, process, reason, n, n x {start, end, offset, perms, path, rss, pss,
			     shared_clean, shared_dirty, private_clean, private_dirty, anonymous, swap} */
	TR_STRING = 32,   /* id, bytes */
	TR_SYMBOL = 33,   /* space, ip, module, offset, nframes, {function, file, line, flags}* */
	TR_END = 48,      /* dt, exit_kind, exit_code, events, dropped, truncated, flags, lost_processes */
};

/* TR_PROCESS how: how the process image came to be recorded. */
enum trace_proc_how { TR_PROC_ROOT = 0, TR_PROC_FORK = 1, TR_PROC_EXEC = 2, TR_PROC_SPAWN = 3 };

/* TR_PROCESS flags. */
#define TR_PROC_UNTRACED 1u /* ran without the library: nothing of it is recorded */
#define TR_PROC_STATIC 2u   /* ... because its program is statically linked */
#define TR_PROC_SETID 4u    /* ... because it is set-user/group-id */
#define TR_PROC_ARGV_CUT 8u /* its arguments did not all fit */

/* TR_PROCESS_END how: how the image ended. */
enum trace_proc_end {
	TR_PEND_EXITED = 0,   /* code: exit status */
	TR_PEND_SIGNALED = 1, /* code: signal number */
	TR_PEND_UNKNOWN = 2,  /* ended; how is not known */
	TR_PEND_EXEC = 3,     /* replaced by another image of the same pid (exec) */
	TR_PEND_RUNNING = 4,  /* still running when the recording stopped */
};

/* TR_MAP kinds: calls the program made (the allocator's own are not visible
 * to a preload library; TR_MALLINFO shows what it holds). For TR_MAP_BRK and
 * TR_MAP_SBRK, old_addr is the break before the call and addr the break after. */
enum trace_map_kind { TR_MAP_MMAP = 1, TR_MAP_MUNMAP = 2, TR_MAP_MREMAP = 3, TR_MAP_BRK = 4, TR_MAP_SBRK = 5 };

/* TR_SMAPS reasons: when the mappings were read. */
enum trace_smaps_reason { TR_SMAPS_PEAK_RSS = 1, TR_SMAPS_EXIT = 2 };

enum trace_exit_kind { TRACE_EXITED = 0, TRACE_SIGNALED = 1, TRACE_EXIT_UNKNOWN = 2 };

#define TRACE_FRAME_INLINED 1u
#define TRACE_END_RECORDER_INTERRUPTED 1u /* the recorder stopped before the target */
#define TRACE_END_PROCESSES_RUNNING 2u    /* processes of the tree outlived the recording */

/* ---- writer ---------------------------------------------------------- */

struct trace_writer;

/* Create path (0600, O_EXCL|O_NOFOLLOW unless force, which replaces a regular
 * file but still never follows a link). Returns 0 or -errno. */
int trace_writer_open(struct trace_writer **out, const char *path, int force);
/* Writes the pending records as one block and waits until every block is
 * in the file. 0 or -errno (the first error seen since open). */
int trace_writer_flush(struct trace_writer *w);
/* Hands the pending records over as one block, to be written without
 * waiting for it. 0 or -errno (the first error seen so far). */
int trace_writer_push(struct trace_writer *w);
/* Flush, fsync-free close. 0 or -errno (the first error seen since open). */
int trace_writer_close(struct trace_writer *w);

/* Record building: begin a record, append fields, records never span blocks. */
void tw_begin(struct trace_writer *w, unsigned type);
void tw_u(struct trace_writer *w, uint64_t v);                 /* LEB128 varint */
void tw_bytes(struct trace_writer *w, const void *p, size_t n); /* varint length + bytes */
void tw_str(struct trace_writer *w, const char *s);            /* NULL writes "" */
/* Timed records carry the delta from the previous timed record; the writer
 * tracks it. t is ns since the trace start and must not decrease. */
void tw_time(struct trace_writer *w, uint64_t t);
/* Ends the record; flushes a block when it is full. */
void tw_end(struct trace_writer *w);
/* A whole timed record of n varints, the same bytes as tw_begin, tw_time,
 * tw_u for each and tw_end, with one check for room: for events. */
void tw_timed(struct trace_writer *w, unsigned type, uint64_t t, const uint64_t *v, unsigned n);
uint64_t trace_writer_bytes(struct trace_writer *w); /* bytes in the file so far, and not yet compressed */

/* ---- reader ---------------------------------------------------------- */

struct trace_frame {
	const char *function; /* NULL when unknown */
	const char *file;     /* NULL when unknown */
	uint32_t line;
	uint32_t flags;       /* TRACE_FRAME_INLINED */
};

/* One mapping of a TR_SMAPS record; sizes in bytes. */
struct trace_mapping {
	uint64_t start, end, offset;
	const char *perms;   /* "rw-p" */
	const char *path;    /* "" for anonymous, "[heap]", "[stack]", a file */
	uint64_t rss, pss, shared_clean, shared_dirty, private_clean, private_dirty, anonymous, swap;
};

/* One decoded record. Pointers stay valid until the next trace_reader_next. */
struct trace_record {
	unsigned type;
	uint64_t time; /* for timed records: ns since start */
	union {
		struct { uint64_t index, pid, parent, how, flags, start, start_unix_ns, page_size, interval_ns;
			 const char *exe; uint32_t argc; const char **argv; } process; /* parent: index + 1, 0 none */
		struct { uint64_t index, end, how, code; } process_end;
		struct { uint64_t id, space, bias, start, end; const uint8_t *build_id; uint32_t build_id_len;
			 const char *path; } module;
		struct { uint64_t index, tid, process; } thread;
		struct { uint64_t id, parent, ip; } stack;
		struct { uint64_t thread, kind, stack, size, addr, slack; } alloc;
		struct { uint64_t thread, kind, stack, addr, size, old_addr, old_size, prot, flags;
			 int64_t fd; /* -1: anonymous */ } map;
		struct { uint64_t process, arena, ordblks, hblks, hblkhd, uordblks, fordblks, keepcost; } mallinfo;
		struct { uint64_t process, reason; uint32_t n; const struct trace_mapping *maps; } smaps;
		struct { uint64_t thread, kind, addr; } free;
		struct { uint64_t process, rss; } sample;
		struct { uint64_t process; } exit_mark;
		struct { uint64_t id; const char *str; uint32_t len; } string;
		struct { uint64_t space, ip, module, offset; uint32_t nframes; const struct trace_frame *frames; } symbol;
		struct { uint64_t exit_kind, exit_code, events, dropped, truncated, flags, lost_processes; } end;
	} u;
};

struct trace_reader;

/* Opens and checks the header. On failure returns -errno (or -EINVAL for a
 * file that is not a trace / of another version) and, if err is given, puts a
 * one-line reason in err. */
int trace_reader_open(struct trace_reader **out, const char *path, char *err, size_t errlen);
/* 1 = a record was read, 0 = clean end of file, <0 = error (see
 * trace_reader_error). A truncated or corrupt tail is reported as an error
 * after every whole block before it has been returned. */
int trace_reader_next(struct trace_reader *r, struct trace_record *rec);
const char *trace_reader_error(const struct trace_reader *r);
/* The string with id, as defined by a TR_STRING record read so far, or NULL. */
const char *trace_reader_string(const struct trace_reader *r, uint64_t id);
uint64_t trace_reader_offset(const struct trace_reader *r); /* file offset of the current block */
void trace_reader_close(struct trace_reader *r);

#endif
