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

/* Lower and upper (inclusive) size of histogram bucket i. */
void model_bucket_range(unsigned i, uint64_t *lo, uint64_t *hi);

#endif
