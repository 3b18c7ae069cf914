/*
 * model.h: the analysis model, the one place where heapscope computes its
 * numbers. model_load() reads a trace in a single streaming pass and builds
 * per-stack totals, the peak snapshot, leaks, temporaries, a size histogram
 * and a bounded timeline. Every output (text, JSON, flame graphs, ...) reads
 * this model and never recomputes a number its own way.
 *
 * Memory is bounded by the live blocks, the unique stacks and the symbols of
 * the trace, never by its number of events. The definitions of every number
 * are in docs/definitions.md; keep the two in step.
 *
 * Usage:
 *	struct model *m;
 *	if (model_load(&m, path, err, sizeof(err)) < 0) -> err says why
 *	m->sum.complete, m->sum.peak_heap, ...
 *	model_top(m, MODEL_BY_PEAK, 10, idx) -> indices into m->stacks
 *	model_stack_frames(m, idx[0], frames, 64) -> innermost frame first
 *	model_free(m);
 */
#ifndef HS_MODEL_H
#define HS_MODEL_H

#include "procfs/procfs.h"

#include <stddef.h>
#include <stdint.h>

/* Why a model is incomplete (sum.complete == 0). */
enum model_gap {
	MODEL_GAP_NONE = 0,
	MODEL_GAP_TRUNCATED,   /* the file ends inside a block: recording interrupted */
	MODEL_GAP_CORRUPT,     /* a block failed to decode; the rest is unreadable */
	MODEL_GAP_NO_END,      /* whole blocks only, but no end record */
	MODEL_GAP_INTERRUPTED, /* end record says the recorder stopped before the program */
};

enum model_exit { MODEL_EXITED = 0, MODEL_SIGNALED = 1, MODEL_EXIT_UNKNOWN = 2 };

#define MODEL_KINDS 64          /* enum hs_ev_kind values below 64 are counted */
#define MODEL_HIST_BUCKETS 65   /* size 0, then [2^(i-1), 2^i) for i = 1..64 */
#define MODEL_TIMELINE_MAX 2048 /* timeline points; pairs merge when it fills */

/* glibc's mallinfo2() as a TR_MALLINFO record gave it (present == 0: none). */
struct model_mallinfo {
	int present;
	uint64_t time_ns;
	uint64_t arena;            /* bytes the arenas got from the system (sbrk, arena heaps) */
	uint64_t ordblks;          /* free chunks */
	uint64_t hblks;            /* chunks served by their own mmap */
	uint64_t hblkhd;           /* bytes in those */
	uint64_t uordblks;         /* bytes in use in the arenas (chunks, headers included) */
	uint64_t fordblks;         /* free bytes in the arenas, top chunk included */
	uint64_t keepcost;         /* releasable bytes at the top of the main heap */
};

#define MODEL_MAP_KINDS 6          /* TR_MAP kinds 1..5 (enum trace_map_kind) */

struct model_summary {
	/* program, from the process record (NULL / 0 when it is missing) */
	const char *program;       /* executable path */
	const char **argv;         /* argc strings */
	uint32_t argc;
	uint64_t pid;
	uint64_t start_unix_ns;    /* wall clock at the trace start */
	uint64_t page_size;
	uint64_t sample_interval_ns;

	/* end record (has_end == 0 when there is none) */
	int has_end;
	enum model_exit exit_kind;
	uint64_t exit_code;        /* status if exited, signal number if signaled */
	uint64_t recorded_events;  /* as counted by the recorder */
	uint64_t dropped_events;   /* events the recorder could not record */
	uint64_t truncated_stacks; /* stacks cut short at capture */
	uint64_t end_flags;        /* TRACE_END_* */

	uint64_t run_time_ns;      /* time of the end record, else of the last record */
	uint64_t threads;          /* distinct threads that allocated or freed */

	/* events */
	uint64_t allocations;      /* TR_ALLOC records */
	uint64_t frees;            /* TR_FREE records (including free(NULL) if recorded) */
	uint64_t allocated_bytes;  /* requested bytes of all allocations */
	double allocations_per_sec;
	uint64_t by_kind[MODEL_KINDS]; /* records per enum hs_ev_kind */
	uint64_t unknown_frees;    /* frees of addresses not live in the trace */
	uint64_t reused_live;      /* allocations at an address still live (a free was lost) */

	uint64_t temporary;        /* see docs/definitions.md */
	uint64_t temporary_bytes;

	uint64_t peak_heap;        /* max of live requested bytes */
	uint64_t peak_time_ns;
	uint64_t peak_blocks;      /* live blocks at that moment */

	uint64_t peak_rss;         /* max RSS sample */
	uint64_t peak_rss_time_ns;
	uint64_t rss_samples;

	uint64_t leaked_bytes;     /* live at the exit mark, else at the end of the trace */
	uint64_t leaked_blocks;
	int leaks_at_exit;         /* 1: counted at the exit mark (after __libc_freeres) */
	uint64_t leak_time_ns;

	uint64_t live_bytes;       /* live at the end of the trace */
	uint64_t live_blocks;

	/* usable bytes (malloc_usable_size): requested plus the allocator's
	 * rounding, from TR_ALLOC's slack (docs/definitions.md, "usable") */
	uint64_t peak_usable;      /* of the blocks live at the peak heap */
	uint64_t leaked_usable;    /* of the leaked blocks */
	uint64_t live_usable;      /* of the blocks live at the end of the trace */

	/* mappings the program made itself (TR_MAP: mmap, mremap, brk, sbrk),
	 * counted apart from the heap; bytes are whole pages (brk: the break) */
	uint64_t map_calls[MODEL_MAP_KINDS]; /* by enum trace_map_kind */
	uint64_t mapped_bytes;     /* live at the end of the trace */
	uint64_t mapped_regions;
	uint64_t peak_mapped;      /* highest live mapped bytes */
	uint64_t peak_mapped_time_ns;
	uint64_t leaked_mapped;    /* live at the exit mark, else at the end */
	uint64_t leaked_mapped_regions;

	struct model_mallinfo mallinfo; /* the latest allocator sample */
	uint64_t mallinfo_samples;

	int complete;              /* 1 when the trace was read to its end record */
	enum model_gap gap;
	char incomplete_reason[512]; /* one line, "" when complete */
};

/* Totals of the allocations made from one stack (keyed by its leaf id). */
struct model_stack {
	uint64_t id;               /* leaf stack id in the trace (0 = none captured) */
	uint64_t allocations;
	uint64_t allocated_bytes;
	uint64_t frees;            /* frees of blocks it allocated */
	uint64_t temporary;
	uint64_t temporary_bytes;
	uint64_t peak_bytes;       /* its live bytes at the moment of the peak */
	uint64_t peak_blocks;
	uint64_t leaked_bytes;
	uint64_t leaked_blocks;
	uint64_t live_bytes;       /* at the end of the trace */
	uint64_t live_blocks;
	/* mappings made from this stack (mmap family, brk, sbrk); 0 for malloc's */
	uint64_t map_calls;        /* its TR_MAP records, munmap included */
	uint64_t mapped_total;     /* bytes its mmap, mremap, brk and sbrk calls mapped */
	uint64_t mapped_peak;      /* its live mapped bytes at the peak of mapped bytes */
	uint64_t mapped_peak_regions;
	uint64_t mapped_leaked;    /* live at the exit mark */
	uint64_t mapped_leaked_regions;
	uint64_t mapped_live;      /* at the end of the trace */
	uint64_t mapped_live_regions;
};

/* Power-of-two size buckets: [0] holds size 0, [i] sizes in [2^(i-1), 2^i). */
struct model_bucket {
	uint64_t count;
	uint64_t bytes;
};

/* One point of the timeline: maxima over [time_ns, time_ns + step). */
struct model_point {
	uint64_t time_ns;
	uint64_t heap;             /* max live requested bytes */
	uint64_t rss;              /* max RSS sample, 0 when none fell in the step */
};

#define MODEL_FRAME_INLINED 1u       /* inlined into the next (outer) frame */
#define MODEL_FRAME_NO_SYMBOL 2u     /* the trace has no symbol for ip */
#define MODEL_FRAME_UNKNOWN_STACK 4u /* the stack id has no stack record */
#define MODEL_FRAME_NO_STACK 8u      /* no stack was captured (id 0) */

struct model_frame {
	const char *function;      /* NULL when unknown */
	const char *file;          /* NULL when unknown */
	uint32_t line;             /* 0 when unknown */
	uint32_t flags;            /* MODEL_FRAME_* */
	const char *module;        /* path of the object, NULL when unknown */
	uint64_t offset;           /* ip - module bias; ip itself when no module */
	uint64_t ip;
};

/*
 * The steps from bytes requested to resident memory (docs/definitions.md,
 * "waterfall"). Each step adds bytes (a step may be negative); the steps up
 * to MODEL_W_NOT_RESIDENT sum to heap RSS, up to MODEL_W_UNEXPLAINED to
 * anonymous RSS, all of them to RSS.
 */
enum model_wstep {
	MODEL_W_REQUESTED,         /* live requested bytes */
	MODEL_W_USABLE,            /* + rounding to the usable size */
	MODEL_W_HEADERS,           /* + 8 B chunk header per live block */
	MODEL_W_ALLOC_IN_USE,      /* + what the allocator counts in use beyond the live blocks */
	MODEL_W_ALLOC_FREE,        /* + free memory the allocator holds (total: held) */
	MODEL_W_NOT_RESIDENT,      /* - held but not resident (total: heap RSS) */
	MODEL_W_MMAP,              /* + anonymous pages of the program's own mappings */
	MODEL_W_STACKS,            /* + thread stacks */
	MODEL_W_LIB_DATA,          /* + libraries' written data and .bss */
	MODEL_W_FILE_COPIES,       /* + private copies of other files' pages */
	MODEL_W_SELF,              /* + heapscope's own anonymous memory */
	MODEL_W_UNEXPLAINED,       /* + anonymous memory of unknown purpose (total: anonymous RSS) */
	MODEL_W_LIB_FILES,         /* + libraries' code and read-only data (file pages) */
	MODEL_W_FILES,             /* + other files' pages */
	MODEL_W_MMAP_FILES,        /* + file and shared pages of the program's own mappings */
	MODEL_W_KERNEL,            /* + [vdso] and the like */
	MODEL_W_SELF_FILES,        /* + heapscope's library and shared buffers */
	MODEL_W_UNEXPLAINED_SHARED,/* + shared pages of unknown purpose (total: RSS) */
	MODEL_W_STEPS
};

struct model_waterfall {
	int64_t step[MODEL_W_STEPS];
	int allocator_stats;       /* 1: a mallinfo2 sample split the allocator's part */
	uint64_t requested, usable, chunks; /* the trace's live blocks */
	uint64_t allocator_in_use, allocator_held; /* mallinfo2: uordblks + hblkhd, arena + hblkhd */
	uint64_t heap_rss, anon_rss, rss;   /* from the mappings, resident bytes */
	uint64_t unexplained;      /* MODEL_W_UNEXPLAINED + MODEL_W_UNEXPLAINED_SHARED */
};

/* The JSON name of a step ("requested", "usable", ...). */
const char *model_wstep_name(enum model_wstep s);

enum model_at { MODEL_AT_PEAK = 0, MODEL_AT_EXIT = 1, MODEL_AT_N };

/* A TR_SMAPS snapshot with what the trace knew at its time. */
struct model_snapshot {
	int present;
	uint64_t time_ns;
	uint64_t live_blocks, requested, usable; /* heap blocks live at time_ns */
	uint64_t mapped;           /* the program's own live mapped bytes */
	struct model_mallinfo mallinfo; /* the latest sample at or before time_ns */
	struct procfs_map *maps;   /* classified, in address order; paths live in the model */
	size_t nmaps;
	uint64_t *map_live;        /* per mapping: live requested bytes of heap blocks in it */
	uint64_t *map_mapped;      /* per mapping: bytes of the program's own live mappings in it */
	struct procfs_group *groups;
	size_t ngroups;
	struct procfs_totals total;
	struct model_waterfall w;
};

/*
 * Blocks grown by repeated realloc, per call site: the stack of each chain's
 * first allocation (docs/definitions.md, "growth chains").
 */
struct model_growth {
	size_t stack;              /* index into m->stacks */
	uint64_t chains;           /* chains with at least one realloc */
	uint64_t reallocs;         /* realloc steps in them */
	uint64_t moves;            /* steps that moved the block */
	uint64_t longest;          /* most steps in one chain */
	uint64_t max_bytes;        /* largest requested size any chain reached */
	uint64_t copied_bytes;     /* sum of min(old, new) over the steps that moved */
	uint64_t final_bytes;      /* requested bytes of each chain's last block, summed */
	uint64_t slack_bytes;      /* usable - requested of each chain's last block, summed */
};

struct model_priv;

struct model {
	struct model_summary sum;
	struct model_stack *stacks; /* one per leaf stack that allocated */
	size_t nstacks;
	struct model_bucket hist[MODEL_HIST_BUCKETS];
	struct model_point *timeline;
	size_t ntimeline;
	uint64_t timeline_step_ns;
	struct model_priv *priv;
	struct model_snapshot snap[MODEL_AT_N]; /* mappings at peak RSS and at exit */
	struct model_growth *growth; /* most copied bytes first */
	size_t ngrowth;
	struct model_proc *proc;     /* the processes: model_proc.h */
};

/*
 * Reads the trace at path and builds its model. Returns 0 with *out set, also
 * when the trace is truncated or corrupt after some whole blocks (then
 * sum.complete == 0, sum.gap and sum.incomplete_reason say why). Returns
 * -errno with a one-line reason in err when the file cannot be opened, is not
 * a trace or has another format version, or memory runs out.
 */
int model_load(struct model **out, const char *path, char *err, size_t errlen);
void model_free(struct model *m);

/* What model_top() orders by; ties go to the lower stack index. */
enum model_key {
	MODEL_BY_PEAK,        /* peak_bytes */
	MODEL_BY_ALLOCATIONS, /* allocations */
	MODEL_BY_BYTES,       /* allocated_bytes */
	MODEL_BY_TEMPORARY,   /* temporary */
	MODEL_BY_LEAKED,      /* leaked_bytes */
};

/* The key's value for one stack (what model_top() sorts by). */
uint64_t model_stack_value(const struct model_stack *s, enum model_key key);

/*
 * Writes to out the indices (into m->stacks) of up to n stacks with the
 * highest value of key, highest first, skipping stacks whose value is 0
 * (for MODEL_BY_LEAKED: that leaked no block).
 * n == 0 means all. out must hold min(n, m->nstacks) entries (m->nstacks when
 * n == 0). Returns how many were written.
 */
size_t model_top(const struct model *m, enum model_key key, size_t n, size_t *out);
/* How many stacks model_top() ranks for key when n == 0. */
size_t model_ranked(const struct model *m, enum model_key key);

/*
 * Live bytes of chosen stacks along the timeline, for charts that stack the
 * top call sites under the heap line: out[i * m->ntimeline + p] is what stack
 * m->stacks[idx[i]] held when the heap reached its highest value within
 * timeline point p (m->timeline[p].heap), so at each point the chosen stacks
 * and the rest add up to that value. The model keeps no history per stack
 * (it would grow with stacks x points), so this reads the trace at path, the
 * one m was loaded from, a second time; a truncated trace gives what was read.
 * out holds n * m->ntimeline values. Returns 0, or -errno with a one-line
 * reason in err when the trace cannot be read again or memory runs out.
 */
int model_stack_series(const struct model *m, const char *path, const size_t *idx, size_t n, uint64_t *out,
		       char *err, size_t errlen);

/*
 * Resolves stack m->stacks[index] to frames, innermost first: the leaf's
 * address first, each address expanded to its inlined frames and then the
 * function that contains them. Writes at most max frames and returns the
 * total the stack has (so a caller can say "N more"). A stack whose id has no
 * stack record, or id 0, gives one frame flagged UNKNOWN_STACK / NO_STACK.
 * Strings point into the model and live until model_free.
 */
size_t model_stack_frames(const struct model *m, size_t index, struct model_frame *out, size_t max);

/*
 * The name a frame is shown by, the same in every output: the function, else
 * "module+0xoffset" (module basename), else "0xip", or "[unknown stack]" /
 * "[no stack]". Returns f->function or buf.
 */
const char *model_frame_label(const struct model_frame *f, char *buf, size_t len);

/* A loaded object (executable or library) as the trace's module map last
 * described it; addresses in [start, end) belong to it. */
struct model_module {
	uint64_t id;
	uint64_t bias;             /* load bias: address - bias = ELF virtual address */
	uint64_t start, end;       /* extent of its PT_LOAD segments */
	const char *path;          /* NULL when unknown */
	const char *build_id;      /* GNU build-id in lowercase hex, "" when none */
};

/*
 * Writes up to max modules to out, in the order the trace first named them
 * (the executable first). Returns how many the model has. Strings point into
 * the model and live until model_free.
 */
size_t model_modules(const struct model *m, struct model_module *out, size_t max);

/*
 * The stacks that mapped memory, as model_top() ranks heap stacks: by
 * mapped_peak (leaked == 0) or mapped_leaked (leaked == 1), skipping stacks
 * with no mapping live at that moment. Returns how many were written.
 */
size_t model_top_mapped(const struct model *m, int leaked, size_t n, size_t *out);
size_t model_ranked_mapped(const struct model *m, int leaked);

/* Lower and upper (inclusive) size of histogram bucket i. */
void model_bucket_range(unsigned i, uint64_t *lo, uint64_t *hi);

#endif
