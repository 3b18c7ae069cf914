/*
 * synth_trace.h: writes synthetic traces record by record, for unit tests
 * that need exact, known input. One helper per record type, with the fields
 * in the order docs/trace-format.md gives them.
 */
#ifndef HS_SYNTH_TRACE_H
#define HS_SYNTH_TRACE_H

#include "trace/trace.h"

#include <stdint.h>

struct synth_frame {
	uint64_t function, file; /* TR_STRING ids */
	uint64_t line, flags;
};

/* A process of the trace; st_process is the program (index 0). parent is
 * the parent's index + 1 (0: none), how a TR_PROC_* value. */
static inline void st_process_n(struct trace_writer *w, uint64_t index, uint64_t pid, uint64_t parent, uint64_t how,
				uint64_t flags, uint64_t start, const char *exe, uint32_t argc, const char *const *argv)
{
	tw_begin(w, TR_PROCESS);
	tw_u(w, index);
	tw_u(w, pid);
	tw_u(w, parent);
	tw_u(w, how);
	tw_u(w, flags);
	tw_u(w, start);
	tw_u(w, 1700000000000000000ull);
	tw_u(w, 4096);
	tw_u(w, 10000000);
	tw_str(w, exe);
	tw_u(w, argc);
	for (uint32_t i = 0; i < argc; i++)
		tw_str(w, argv[i]);
	tw_end(w);
}

static inline void st_process(struct trace_writer *w, uint64_t pid, const char *exe, uint32_t argc,
			      const char *const *argv)
{
	st_process_n(w, 0, pid, 0, TR_PROC_ROOT, 0, 0, exe, argc, argv);
}

static inline void st_process_end(struct trace_writer *w, uint64_t index, uint64_t end, uint64_t how, uint64_t code)
{
	tw_begin(w, TR_PROCESS_END);
	tw_u(w, index);
	tw_u(w, end);
	tw_u(w, how);
	tw_u(w, code);
	tw_end(w);
}

static inline void st_module(struct trace_writer *w, uint64_t id, uint64_t bias, uint64_t start, uint64_t end,
			     const char *path)
{
	tw_begin(w, TR_MODULE);
	tw_u(w, id);
	tw_u(w, 0); /* space: stacks without a root node */
	tw_u(w, bias);
	tw_u(w, start);
	tw_u(w, end);
	tw_bytes(w, "\x01\x02\x03\x04", 4);
	tw_str(w, path);
	tw_end(w);
}

static inline void st_thread_of(struct trace_writer *w, uint64_t t, uint64_t index, uint64_t tid, uint64_t process)
{
	tw_begin(w, TR_THREAD);
	tw_time(w, t);
	tw_u(w, index);
	tw_u(w, tid);
	tw_u(w, process);
	tw_end(w);
}

static inline void st_thread(struct trace_writer *w, uint64_t t, uint64_t index, uint64_t tid)
{
	st_thread_of(w, t, index, tid, 0);
}

static inline void st_stack(struct trace_writer *w, uint64_t id, uint64_t parent, uint64_t ip)
{
	tw_begin(w, TR_STACK);
	tw_u(w, id);
	tw_u(w, parent);
	tw_u(w, ip);
	tw_end(w);
}

/* slack: malloc_usable_size - size */
static inline void st_alloc_slack(struct trace_writer *w, uint64_t t, uint64_t thread, uint64_t kind,
				  uint64_t stack, uint64_t size, uint64_t addr, uint64_t slack)
{
	tw_begin(w, TR_ALLOC);
	tw_time(w, t);
	tw_u(w, thread);
	tw_u(w, kind);
	tw_u(w, stack);
	tw_u(w, size);
	tw_u(w, addr);
	tw_u(w, slack);
	tw_end(w);
}

static inline void st_alloc(struct trace_writer *w, uint64_t t, uint64_t thread, uint64_t kind, uint64_t stack,
			    uint64_t size, uint64_t addr)
{
	st_alloc_slack(w, t, thread, kind, stack, size, addr, 0); /* usable size unknown */
}

static inline void st_free(struct trace_writer *w, uint64_t t, uint64_t thread, uint64_t kind, uint64_t addr)
{
	tw_begin(w, TR_FREE);
	tw_time(w, t);
	tw_u(w, thread);
	tw_u(w, kind);
	tw_u(w, addr);
	tw_end(w);
}

static inline void st_sample_of(struct trace_writer *w, uint64_t t, uint64_t process, uint64_t rss)
{
	tw_begin(w, TR_SAMPLE);
	tw_time(w, t);
	tw_u(w, process);
	tw_u(w, rss);
	tw_end(w);
}

static inline void st_sample(struct trace_writer *w, uint64_t t, uint64_t rss)
{
	st_sample_of(w, t, 0, rss);
}

static inline void st_exit_mark_of(struct trace_writer *w, uint64_t t, uint64_t process)
{
	tw_begin(w, TR_EXIT_MARK);
	tw_time(w, t);
	tw_u(w, process);
	tw_end(w);
}

static inline void st_exit_mark(struct trace_writer *w, uint64_t t)
{
	st_exit_mark_of(w, t, 0);
}

static inline void st_string(struct trace_writer *w, uint64_t id, const char *s)
{
	tw_begin(w, TR_STRING);
	tw_u(w, id);
	tw_str(w, s);
	tw_end(w);
}

static inline void st_symbol(struct trace_writer *w, uint64_t ip, uint64_t module, uint64_t offset, uint32_t n,
			     const struct synth_frame *f)
{
	tw_begin(w, TR_SYMBOL);
	tw_u(w, 0); /* space */
	tw_u(w, ip);
	tw_u(w, module);
	tw_u(w, offset);
	tw_u(w, n);
	for (uint32_t i = 0; i < n; i++) {
		tw_u(w, f[i].function);
		tw_u(w, f[i].file);
		tw_u(w, f[i].line);
		tw_u(w, f[i].flags);
	}
	tw_end(w);
}

static inline void st_end(struct trace_writer *w, uint64_t t, uint64_t exit_kind, uint64_t exit_code,
			  uint64_t events, uint64_t dropped, uint64_t truncated, uint64_t flags)
{
	tw_begin(w, TR_END);
	tw_time(w, t);
	tw_u(w, exit_kind);
	tw_u(w, exit_code);
	tw_u(w, events);
	tw_u(w, dropped);
	tw_u(w, truncated);
	tw_u(w, flags);
	tw_u(w, 0); /* processes lost */
	tw_end(w);
}

#endif
