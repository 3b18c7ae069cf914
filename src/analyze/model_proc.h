/*
 * model_proc.h: the processes of a trace. A recording follows the program's
 * children (fork, exec, posix_spawn, system); the trace holds one stream per
 * process image. The model (model.h) keeps its numbers for them all
 * together, with blocks told apart per process (the same address in two
 * processes is two blocks) and leaks counted per process at its own exit;
 * this part keeps the list of processes and each one's own summary, and can
 * build the model of one process (`report --pid`).
 *
 * Definitions: docs/definitions.md ("Processes"); the records:
 * docs/trace-format.md; how the recording follows them: docs/processes.md.
 */
#ifndef HS_MODEL_PROC_H
#define HS_MODEL_PROC_H

#include "analyze/model.h"
#include "trace/trace.h"

#include <stddef.h>
#include <stdint.h>

/* How a process image ended (TR_PROCESS_END), MODEL_PEND_NONE without one. */
enum model_pend {
	MODEL_PEND_EXITED = TR_PEND_EXITED,
	MODEL_PEND_SIGNALED = TR_PEND_SIGNALED,
	MODEL_PEND_UNKNOWN = TR_PEND_UNKNOWN,
	MODEL_PEND_EXEC = TR_PEND_EXEC,
	MODEL_PEND_RUNNING = TR_PEND_RUNNING,
	MODEL_PEND_NONE = 99,
};

/* One process image of the trace and its own numbers. */
struct model_process {
	uint64_t index;            /* its TR_PROCESS index */
	uint64_t pid;
	int64_t parent;            /* index of the image it came from, -1 when none was recorded */
	unsigned how;              /* TR_PROC_ROOT, _FORK, _EXEC, _SPAWN */
	unsigned flags;            /* TR_PROC_UNTRACED, _STATIC, _SETID, _ARGV_CUT */
	const char *exe;
	const char **argv;
	uint32_t argc;
	uint64_t start_ns, end_ns; /* end_ns: when it ended, else the end of the trace */
	enum model_pend end;
	uint64_t end_code;         /* exit status, or signal number */
	int exit_mark;             /* its exit path ran (leaks counted there) */
	int in_model;              /* its events are in this model (all, or the --pid ones) */
	uint64_t threads;

	uint64_t allocations, frees, allocated_bytes;
	uint64_t temporary, temporary_bytes;
	uint64_t peak_heap, peak_time_ns, peak_blocks;
	uint64_t leaked_bytes, leaked_blocks;    /* 0 for an image exec replaced */
	uint64_t exec_live_bytes, exec_live_blocks; /* live when exec replaced it */
	uint64_t live_bytes, live_blocks;        /* at the end of the trace */
	uint64_t inherited_frees;  /* a fork child's frees of blocks its parent had before the fork */
	uint64_t unknown_frees;
	uint64_t peak_rss, peak_rss_time_ns, rss_samples;
};

/* The processes of m, in index order (the program first). *n gets how many;
 * 1 for a trace of one process. Strings live until model_free. */
const struct model_process *model_processes(const struct model *m, size_t *n);

/* The process with that index, or NULL. */
const struct model_process *model_process_at(const struct model *m, uint64_t index);

/*
 * Like model_load, for the images of one process (pid): their events,
 * samples and exit marks only; the summary is theirs (exit status of the
 * last image, which is the process's). Returns -ESRCH with a reason in err
 * when the trace has no process with that pid.
 */
int model_load_pid(struct model **out, const char *path, uint64_t pid, char *err, size_t errlen);

/* "program", "fork", "exec", "spawn". */
const char *model_proc_how_name(unsigned how);

/* ---- hooks for model.c and model_stacks.c (not for outputs) ------------- */

/*
 * Called for each record before the model uses it; may rewrite it: blocks
 * and mappings of a process other than the first get addresses of their own
 * (so one address in two processes is two blocks), instruction addresses of
 * an address space other than the first get a tag (so one address in two
 * programs is two symbols), root nodes are taken out, RSS samples become the
 * sum over the processes. Returns 1 to use the record, 0 to skip it (another
 * process than the one chosen), -ENOMEM.
 */
int model_proc_record(struct model *m, struct trace_record *rec);
/* The same for a later pass over the trace (model_stack_series): what the
 * first pass learned is used, nothing is learned. */
int model_proc_replay(const struct model *m, struct trace_record *rec);
/* 1 while model_proc_record leaves allocations and frees as they are (one
 * process so far, no --pid): until a process or thread record changes it. */
int model_proc_plain(const struct model *m);
/* After the pass: each process's numbers, and the model's leaks counted
 * per process (a second pass over path when there are several). 0 or -ENOMEM. */
int model_proc_finish(struct model *m, const char *path);
void model_proc_free(struct model *m);
/* An instruction address as the trace has it, from the model's (tagged) one. */
static inline uint64_t model_proc_raw_ip(uint64_t ip)
{
	return ip >> 63 ? ip & ((1ull << 47) - 1) : ip;
}

#endif
