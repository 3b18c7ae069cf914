/*
 * gen_trace.c: writes a synthetic heapscope trace of any number of events
 * without recording a program, to measure `heapscope report` at scales no
 * benchmark program reaches (10^8, 10^9 events).
 *
 * The trace is a valid one as `heapscope record` writes it (docs/trace-format.md,
 * through the same trace_writer): a process, one module, a stack trie of
 * STACKS nodes (a random recursive tree: depth about ln STACKS, every node a
 * stack some events use), THREADS threads, then EVENTS alloc/free events that
 * keep about LIVE blocks live, an RSS sample every 10 ms of trace time, the
 * exit mark, a symbol per node and the end record. Addresses come from a
 * pretend allocator (a LIFO free list per size class, as glibc's tcache
 * reuses the block freed last), sizes are log-uniform from 8 B to 64 KiB,
 * stacks are skewed (a few hot, many cold), one allocation in ten is a
 * realloc. Deterministic: the same options give the same file.
 *
 * usage: gen_trace [-e EVENTS] [-l LIVE] [-s STACKS] [-t THREADS] -o FILE
 *   defaults: 10^8 events, 100 000 live, 100 000 stacks, 4 threads.
 *   EVENTS takes a suffix k, M or G (powers of ten) and scientific 1e9.
 *
 * Build: cc -O2 -Isrc -o gen_trace bench/gen_trace.c build/libheapscope-core.a -lzstd
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace.h"
/* the record layouts, kept in one place with the unit tests' traces */
#include "synth_trace.h"

#define NCLASSES 14              /* size classes 8 B .. 64 KiB, one per power of two */
#define FUNCS 5000               /* distinct function names in the symbol table */
#define FILES 200
#define SAMPLE_EVERY_NS 10000000ull
#define ARENA_BASE 0x555555a00000ull
#define CLASS_SPAN (1ull << 36)   /* address range of one size class */

static uint64_t rng = 0x5EEDull;

/* splitmix64: fast and the same everywhere */
static inline uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

struct block {
	uint64_t addr;
	uint32_t size;
	uint32_t thread;
};

/* the pretend allocator: per class, a LIFO of freed addresses and a bump pointer */
struct sclass {
	uint64_t *free;
	size_t nfree, cap;
	uint64_t next;
};

static struct sclass classes[NCLASSES];

static unsigned class_of(uint32_t size)
{
	unsigned c = 0;
	while (c + 1 < NCLASSES && (8u << c) < size)
		c++;
	return c;
}

static uint64_t pretend_alloc(uint32_t size)
{
	struct sclass *c = &classes[class_of(size)];
	if (c->nfree)
		return c->free[--c->nfree];
	uint64_t a = c->next;
	c->next += (8u << (unsigned)(c - classes)) + 16;
	return a;
}

static int pretend_free(uint64_t addr, uint32_t size)
{
	struct sclass *c = &classes[class_of(size)];
	if (c->nfree == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;
		uint64_t *v = realloc(c->free, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->free = v;
		c->cap = cap;
	}
	c->free[c->nfree++] = addr;
	return 0;
}

/* log-uniform 8 B .. 64 KiB */
static uint32_t pick_size(void)
{
	uint64_t r = rnd();
	unsigned step = (unsigned)(r % (13 * 64));
	uint32_t lo = 8u << (step / 64);
	return lo + (uint32_t)((uint64_t)lo * (step % 64) / 64);
}

/* Stack ids skewed toward the low ones: the hot stacks of a program. */
static uint32_t pick_stack(uint32_t nstacks)
{
	uint64_t r = rnd();
	double u = (double)(r >> 11) * (1.0 / 9007199254740992.0);
	uint32_t id = 1 + (uint32_t)(u * u * u * nstacks);
	return id > nstacks ? nstacks : id;
}

static uint64_t parse_count(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (*end == 'k' || *end == 'K')
		v *= 1e3;
	else if (*end == 'M')
		v *= 1e6;
	else if (*end == 'G')
		v *= 1e9;
	return (uint64_t)v;
}

static void usage(void)
{
	fprintf(stderr, "usage: gen_trace [-e EVENTS] [-l LIVE] [-s STACKS] [-t THREADS] -o FILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t events = 100000000ull, live_target = 100000;
	uint32_t nstacks = 100000, nthreads = 4;
	const char *out = NULL;
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "-e"))
			events = parse_count(argv[++i]);
		else if (!strcmp(argv[i], "-l"))
			live_target = parse_count(argv[++i]);
		else if (!strcmp(argv[i], "-s"))
			nstacks = (uint32_t)parse_count(argv[++i]);
		else if (!strcmp(argv[i], "-t"))
			nthreads = (uint32_t)parse_count(argv[++i]);
		else if (!strcmp(argv[i], "-o"))
			out = argv[++i];
		else
			usage();
	}
	if (!out || !live_target || !nstacks || !nthreads || nthreads > 1024)
		usage();
	for (unsigned c = 0; c < NCLASSES; c++)
		classes[c].next = ARENA_BASE + c * CLASS_SPAN;

	struct trace_writer *w;
	int ret = trace_writer_open(&w, out, 1);
	if (ret) {
		fprintf(stderr, "gen_trace: cannot create %s: %s\n", out, strerror(-ret));
		return 1;
	}
	const uint64_t text = 0x555555554000ull, text_size = 64ull << 20;
	static const char *const prog_argv[] = { "program" };
	st_process(w, 4242, "/synthetic/program", 1, prog_argv);
	st_module(w, 1, text, text, text + text_size, "/synthetic/program");

	/* the trie: node i's parent is a random earlier node (or none) */
	for (uint32_t id = 1; id <= nstacks; id++) {
		uint32_t parent = id <= 16 ? 0 : (uint32_t)(rnd() % (id - 1)) + 1;
		st_stack(w, id, parent, text + 0x1000 + (uint64_t)id * 37);
	}

	struct block *live = malloc(live_target * 2 * sizeof(*live));
	if (!live) {
		fprintf(stderr, "gen_trace: out of memory\n");
		return 1;
	}
	size_t nlive = 0;
	uint64_t now = 1000, next_sample = SAMPLE_EVERY_NS, rss = 8 << 20, written = 0;
	for (uint32_t t = 0; t < nthreads; t++) {
		st_thread(w, now, t, 1000 + t);
	}
	while (written < events) {
		uint64_t r = rnd();
		now += 20 + (r & 255);
		if (now >= next_sample) {
			st_sample(w, now, rss + ((r >> 8) & 0xffffff));
			next_sample += SAMPLE_EVERY_NS;
		}
		/* below the target the odds favour allocating, above it freeing */
		uint64_t odds = nlive < live_target ? 600 : 400;
		int alloc = nlive == 0 || ((r >> 16) % 1000 < odds && nlive < live_target * 2);
		if (!alloc || ((r >> 32) % 10 == 0 && nlive && written + 2 <= events)) {
			/* a free, or the free half of a realloc */
			int is_realloc = alloc;
			size_t i = (size_t)((r >> 40) % nlive);
			struct block b = live[i];
			live[i] = live[--nlive];
			st_free(w, now, b.thread, is_realloc ? 33 : 32, b.addr);
			written++;
			if (pretend_free(b.addr, b.size)) {
				fprintf(stderr, "gen_trace: out of memory\n");
				return 1;
			}
			if (!is_realloc)
				continue;
			uint32_t size = pick_size();
			struct block nb = { pretend_alloc(size), size, b.thread };
			live[nlive++] = nb;
			st_alloc(w, now, nb.thread, 3, pick_stack(nstacks), size, nb.addr);
			written++;
			continue;
		}
		uint32_t size = pick_size();
		struct block nb = { pretend_alloc(size), size, (uint32_t)((r >> 48) % nthreads) };
		live[nlive++] = nb;
		st_alloc(w, now, nb.thread, (r >> 56) % 5 == 0 ? 2 : 1, pick_stack(nstacks), size, nb.addr);
		written++;
	}
	st_exit_mark(w, now);

	/* the symbol table: FUNCS names in FILES files, one symbol per node */
	char name[64];
	for (uint32_t i = 1; i <= FUNCS + FILES; i++) {
		if (i <= FUNCS)
			snprintf(name, sizeof(name), "synthetic_function_%u", i);
		else
			snprintf(name, sizeof(name), "src/synthetic_%u.c", i - FUNCS);
		st_string(w, i, name);
	}
	for (uint32_t id = 1; id <= nstacks; id++) {
		uint64_t ip = text + 0x1000 + (uint64_t)id * 37;
		struct synth_frame f = { 1 + id % FUNCS, FUNCS + 1 + id % FILES, 1 + id % 3000, 0 };
		st_symbol(w, ip, 1, ip - text, 1, &f);
	}
	st_end(w, now + 1000, 0, 0, written, 0, 0, 0);
	ret = trace_writer_close(w);
	if (ret) {
		fprintf(stderr, "gen_trace: writing %s: %s\n", out, strerror(-ret));
		return 1;
	}
	fprintf(stderr, "gen_trace: %llu events, %u stacks, %u threads, %zu live at the end: %s\n",
		(unsigned long long)written, nstacks, nthreads, nlive, out);
	return 0;
}
