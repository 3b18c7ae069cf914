/*
 * record.h: `heapscope record`, the recorder side. It spawns the program with
 * libheapscope.so preloaded, drains the shared-memory rings (shm_layout.h)
 * into a trace (trace.h) in time order, and symbolizes at the end.
 *
 *   record.c          the whole run: trace, spawn, main loop, end record
 *   record_spawn.c    program checks, shared memory, environment, fork/exec,
 *                     signals, waiting
 *   record_drain.c    rings -> merged, time-ordered records; stack nodes,
 *                     modules, threads, RSS samples
 *   record_proc.c     the processes of the tree: table, liveness, how each ended
 *   record_symbols.c  the symbol table appended at the end, per address space
 *   record_clock.c    the recording's clock: the TSC calibrated, or CLOCK_MONOTONIC
 */
#ifndef HS_RECORD_H
#define HS_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm_layout.h"
#include "trace/trace.h"

#define REC_DEFAULT_INTERVAL_MS 10
#define REC_DEFAULT_GRACE_MS 2000  /* after the program, how long other processes are waited for */

struct rec_options {
	const char *output;        /* NULL: heapscope.<basename>.<pid>.hst in the cwd */
	int force;                 /* replace an existing regular file */
	uint64_t interval_ns;      /* RSS sampling period */
	int no_freeres;            /* HS_OPT_NO_FREERES */
	int no_follow;             /* record the program only, not its children */
	int no_cache;              /* resolve every address afresh: no symbol cache */
	uint64_t grace_ns;         /* how long processes that outlive the program are waited for */
	char **argv;               /* PROGRAM ARGS..., NULL-terminated */
};

/* Runs the program under the recorder and writes the trace. Prints its own
 * errors. Returns the exit status heapscope should exit with: the program's
 * (128+N when killed by signal N), 127 when it could not be started, 2 for a
 * usage error found late, 1 for a recorder failure. */
int rec_record(const struct rec_options *o);

/* Prints "heapscope: <message>" on stderr, the CLI's one error style. */
void rec_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- record_clock.c ---------------------------------------------------- */

/* Chooses the recording's clock (hs_clock.h): mode is HEAPSCOPE_CLOCK,
 * "tsc", "monotonic", or NULL/""/"auto" for the TSC where it is usable, whose
 * first calibration point it takes. Returns 0, or -1 with the reason printed. */
int rec_clock_start(const char *mode);
/* Marks a TSC clock PENDING in shared, for rec_clock_finish to complete. */
void rec_clock_share(struct hs_clock *shared);
/* Takes the second point, CAL_NS after the first (sleeping the rest), and
 * publishes the clock in shared. */
void rec_clock_finish(struct hs_clock *shared);
/* The recorder's reading of the same clock (CLOCK_MONOTONIC until calibrated). */
uint64_t rec_clock_now(void);

/* ---- record_spawn.c ---------------------------------------------------- */

/* Finds name on PATH (or takes it as a path when it has a '/') and checks
 * that LD_PRELOAD can work on it: an executable regular file, not setuid or
 * setgid to other ids, and a dynamically linked ELF of our own class and
 * machine (a "#!" script is accepted: its interpreter gets the library).
 * On success *path is a malloc'd absolute path. Prints the reason otherwise.
 * Returns 0 or -errno. */
int rec_resolve_program(const char *name, char **path);

/* Finds libheapscope.so next to the running heapscope binary, else in
 * ../lib/heapscope/ from it. *path is malloc'd and absolute. Prints the
 * reason when it is missing. Returns 0 or -errno. */
int rec_find_preload(char **path);

/* The region shared with the target: a sparse memfd of hs_shm_size() bytes,
 * mapped MAP_SHARED, with the header filled in. The fd stays open (and
 * close-on-exec) for the whole recording: every process of the tree opens
 * it as /proc/<recorder>/fd/<fd>, named by env (HS_SHM_ENV=value). */
struct rec_shm {
	int fd;
	struct hs_shm_header *h;
	size_t size;
	char env[96];              /* HS_SHM_ENV "=<pid>:<fd>:<nonce>" */
};

int rec_shm_create(struct rec_shm *s, uint32_t options);
void rec_shm_destroy(struct rec_shm *s);

/* The program, forked but held before execve until rec_spawn_release, so
 * the trace can be named after its pid and created before it runs. */
struct rec_child {
	pid_t pid;
	int go_fd;                 /* write end: a byte lets the child exec */
	int err_fd;                /* read end: the child's errno if execve fails */
	int pidfd;                 /* readable once the child ended; -1 when reaped or unsupported */
};

/* Saves the signal state the program must inherit and sets the recorder's:
 * SIGINT/SIGQUIT ignored, SIGTERM/SIGHUP forwarded to the child, SIGCHLD
 * default (waitpid must see the child). */
void rec_signals_setup(void);
/* Forks the child: it restores the signal state saved above, builds its
 * environment (LD_PRELOAD, and shm_env: HS_SHM_ENV=...) and waits for the
 * release. */
int rec_spawn(struct rec_child *c, const char *path, char **argv, const char *preload, const char *shm_env);
/* Lets the child exec. Returns 0 once it has, or -errno of its failed execve
 * (the child is reaped then). abort=1 makes it exit without exec'ing. */
int rec_spawn_release(struct rec_child *c, int abort);
/* Non-blocking wait: 1 with *status when the child has ended, 0 if it
 * runs, -errno on error. Signals are never forwarded to a reaped pid. */
int rec_child_poll(struct rec_child *c, int *status);
/* Sleeps ns, or less when the child ends meanwhile: then returns 1. */
int rec_child_sleep(struct rec_child *c, long ns);
void rec_child_close(struct rec_child *c);
/* SIGTERMs received so far (the first one is forwarded to the child). */
unsigned rec_signals_term_count(void);

/* ---- record_drain.c ---------------------------------------------------- */

struct rec_drain;

struct rec_drain_stats {
	uint64_t events;           /* TR_ALLOC + TR_FREE written */
	uint64_t processes;        /* TR_PROCESS written (after rec_drain_finish: all) */
	uint64_t untraced;         /* of those, run without the library */
	uint64_t running;          /* traced processes still running at rec_drain_finish */
	uint64_t allocs, frees;
	uint64_t exit_marks;
	uint64_t maps;       /* TR_MAP written */
	uint64_t mallinfos;  /* TR_MALLINFO written */
	uint64_t smaps;      /* TR_SMAPS written */
	uint64_t threads;          /* TR_THREAD written */
	uint64_t stacks;           /* TR_STACK written */
	uint64_t modules;          /* TR_MODULE written */
	uint64_t samples;          /* TR_SAMPLE written */
	uint64_t skipped;          /* events copied but not written: unknown kind, overrun */
	uint64_t anomalies;        /* protocol breaches repaired (stack or parent reset) */
	uint64_t rounds;
	uint64_t barriers;         /* rounds that called membarrier (the ring protocol) */
	uint64_t late;             /* merged after a later entry, not from a stalled ring */
	uint64_t pending;          /* copied from the rings, not yet written */
};

/* A module as written in TR_MODULE; id counts from 1 (0 = no module). */
struct rec_module {
	uint64_t id, space, bias, start, end;
	uint32_t build_id_len;
	uint8_t build_id[32];
	char path[sizeof(((struct hs_module *)0)->path)];
};

/* Chooses the ring protocol (shm_layout.h) into h->options: mode is
 * HEAPSCOPE_RING, "membarrier", "fence", or NULL/""/"auto" for membarrier
 * where this recorder can call it. Returns 0, or -1 with the reason printed. */
int rec_ring_start(struct hs_shm_header *h, const char *mode);
/* Drains h into w. t0 is the CLOCK_MONOTONIC ns that trace time 0 stands
 * for; pid is the program (process 0), 0 when there is none to watch. */
int rec_drain_new(struct rec_drain **out, struct hs_shm_header *h, struct trace_writer *w, uint64_t t0, pid_t pid);
void rec_drain_free(struct rec_drain *d);
/* Writes TR_PROCESS of the program (process 0): first, before it runs. */
int rec_drain_program(struct rec_drain *d, uint64_t start_unix_ns, uint64_t interval_ns, const char *exe,
		      char **argv);
/* The program was reaped with wait status st. */
void rec_drain_program_exit(struct rec_drain *d, int st);
/* Recorded processes that still run (checked now). */
size_t rec_drain_running(struct rec_drain *d);
/* After the last round: how every process ended (TR_PROCESS_END), the ones
 * still running included. 0 or -ENOMEM. */
int rec_drain_finish(struct rec_drain *d);
/*
 * One round: copies every published event out of the rings, writes new
 * modules and stack nodes, and writes the events (and queued samples) that
 * are certainly in time order: those older than the watermark. final=1 is
 * for when the target is gone: every ring is drained whatever its state and
 * everything pending is written. Returns the events copied out of the rings
 * (>= 0) or -errno of the writer.
 */
long rec_drain_round(struct rec_drain *d, int final);
/* The memfd behind the shared memory: what of it is in use comes off the
 * RSS samples (without it, nothing does). */
void rec_drain_set_shm_fd(struct rec_drain *d, int fd);
/* Queues a TR_SAMPLE of each running process's RSS (less our shared
 * memory), stamped when read; they are written in time order by the next
 * rounds. 0 or -ENOMEM. */
int rec_drain_sample(struct rec_drain *d);
/* Now, in trace time (ns since t0). */
uint64_t rec_drain_now(const struct rec_drain *d);
void rec_drain_get_stats(const struct rec_drain *d, struct rec_drain_stats *st);
/* The modules written so far, in id order (ids 1..n). */
const struct rec_module *rec_drain_modules(const struct rec_drain *d, size_t *n);
/* Stack nodes written so far: ids 1..n-1 of the trie. */
uint32_t rec_drain_nodes(const struct rec_drain *d);

/* ---- record_proc.c ----------------------------------------------------- */

struct rec_procs;

int rec_procs_new(struct rec_procs **out, struct hs_shm_header *h, uint64_t t0, pid_t root);
void rec_procs_free(struct rec_procs *p);
/* TR_PROCESS of the program, index 0. */
int rec_procs_root(struct rec_procs *p, struct trace_writer *w, uint64_t start_unix_ns, uint64_t interval_ns,
		   const char *exe, char **argv);
/* Reads the entries registered since the last call and writes their
 * TR_PROCESS (an exec that might still fail waits for the end). final: do
 * not wait for an entry being written. 0 or -ENOMEM. */
int rec_procs_scan(struct rec_procs *p, struct trace_writer *w, int final);
/* Process i is about to be named by a record: its TR_PROCESS first. */
int rec_procs_need(struct rec_procs *p, struct trace_writer *w, uint32_t i, uint32_t pid);
/* Which processes still run (now_ns: CLOCK_MONOTONIC). */
void rec_procs_check(struct rec_procs *p, uint64_t now_ns);
int rec_procs_ended(const struct rec_procs *p, uint32_t i);
void rec_procs_root_exit(struct rec_procs *p, int wstatus, uint64_t now_ns);
size_t rec_procs_running(const struct rec_procs *p);
size_t rec_procs_count(const struct rec_procs *p);
/* 1 with *pid when process i is recorded and running. */
int rec_procs_live(const struct rec_procs *p, uint32_t i, uint32_t *pid);
/* Writes the TR_PROCESS still owed (execs that could not be followed) and
 * a TR_PROCESS_END for every process. *running: recorded ones still running. */
int rec_procs_finish(struct rec_procs *p, struct trace_writer *w, uint64_t now_ns, size_t *running);
size_t rec_procs_untraced(const struct rec_procs *p);

/* ---- record_symbols.c -------------------------------------------------- */

/* Resolves every distinct (space, ip) of nodes 1..nnodes-1 once and writes
 * TR_STRING and TR_SYMBOL records: an address is looked up among the
 * modules of its node's address space (its root node, see shm_layout.h).
 * Failing to read a binary is not an error: its addresses get module +
 * offset only. cache_dir: the symbol cache's directory (sym_use_cache), -1
 * for none. *nsyms gets the symbols written. Returns 0 or -errno (out of
 * memory, or the symbolizer cannot start). */
int rec_symbols_write(struct trace_writer *w, const struct hs_shm_header *h, uint32_t nnodes,
		      const struct rec_module *mods, size_t nmods, int cache_dir, uint64_t *nsyms);

/* The same table, its slow part done ahead: a thread resolves the stack
 * addresses while the program runs, as the modules and nodes written so far
 * are fed to it (in id order, a growing prefix of the final ones), and
 * rec_syms_write stops it and writes the table as rec_symbols_write would.
 * cache_dir stays the caller's, open until then. */
struct rec_syms;
int rec_syms_start(struct rec_syms **out, const struct hs_shm_header *h, int cache_dir);
void rec_syms_feed(struct rec_syms *s, const struct rec_module *mods, size_t nmods, uint32_t nnodes);
int rec_syms_write(struct rec_syms *s, struct trace_writer *w, const struct hs_shm_header *h, uint32_t nnodes,
		   const struct rec_module *mods, size_t nmods, uint64_t *nsyms);
/* Addresses resolved ahead so far. */
size_t rec_syms_ahead(struct rec_syms *s);
/* Stops and frees it without writing. NULL is fine. */
void rec_syms_free(struct rec_syms *s);

#endif
