/*
 * alloc_heavy.c: the allocation-heavy benchmark workload.
 *
 * About 10 M calls of the malloc family (malloc, calloc, realloc, free) in a
 * fixed mix, sizes log-uniform from 8 B to 4 KiB and, once in 10 000
 * allocations, 1 MiB. They come from 20 call sites, each reached through
 * its own chain of distinct noinline functions, at stack depths from 5 to
 * 40 frames. About 100 k blocks are live at any time. Everything is driven
 * by a fixed-seed PRNG, so every run makes the same calls.
 *
 * usage: alloc_heavy [-t THREADS] [-n CALLS]
 *   -t  threads (default 1); the calls and the live set are split between
 *       them, each thread with its own blocks and seed
 *   -n  total calls (default 10000000)
 *
 * Build: cc -O2 -g -pthread -o alloc_heavy alloc_heavy.c
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSITES 20
#define MAX_DEPTH 40
#define LIVE_TARGET 100000u
#define BATCH 64              /* calls made per descent to a site */
#define BIG_SIZE (1u << 20)
#define BIG_ONE_IN 10000u

/* Free or resize an occupied slot: P(free) = 0.6, so in the steady state a
 * slot is occupied 1 / (1 + 0.6) of the time; the slot count follows. */
#define FREE_PER_MILLE 600u
#define SLOTS_PER_LIVE 1.6

struct worker {
	uint64_t rng;
	void **slot;
	uint32_t *slot_size;
	uint32_t nslots;
	uint64_t calls_left;
	uint64_t checksum;    /* keeps the compiler from dropping the writes */
};

/* splitmix64: small, fast, and the same on every machine. */
static inline uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Log-uniform in [8, 4096]: 2^(3 + 9u); rarely 1 MiB. */
static inline uint32_t pick_size(uint64_t *s)
{
	uint64_t r = rnd(s);
	if (r % BIG_ONE_IN == 0)
		return BIG_SIZE;
	/* 9 octaves, 64 steps each: 2^(k/64) by table-free interpolation */
	uint32_t step = (uint32_t)((r >> 20) % (9 * 64));
	uint32_t oct = step / 64, frac = step % 64;
	uint32_t lo = 8u << oct;
	return lo + (uint32_t)(((uint64_t)lo * frac) / 64);
}

static inline void touch(struct worker *w, void *p, uint32_t size)
{
	/* write the first and last byte, as a program initialising a header
	 * and filling a buffer would touch its memory */
	((volatile char *)p)[0] = (char)size;
	((volatile char *)p)[size - 1] = (char)size;
	w->checksum += (uintptr_t)p >> 4;
}

/*
 * The calls themselves. Inlined into each site, so each site's malloc,
 * calloc, realloc and free are distinct call instructions: distinct stacks.
 */
static inline __attribute__((always_inline)) void do_calls(struct worker *w, unsigned site)
{
	for (unsigned k = 0; k < BATCH && w->calls_left; k++, w->calls_left--) {
		uint64_t r = rnd(&w->rng);
		uint32_t i = (uint32_t)(r % w->nslots);
		unsigned choice = (unsigned)((r >> 32) % 1000);
		void *p = w->slot[i];
		if (!p) {
			uint32_t size = pick_size(&w->rng);
			/* calloc is rarer and smaller: programs zero small records */
			if (choice < 200 + site * 5 && size <= 4096)
				p = calloc(1, size);
			else
				p = malloc(size);
			if (!p)
				abort();
			touch(w, p, size);
			w->slot[i] = p;
			w->slot_size[i] = size;
		} else if (choice < FREE_PER_MILLE) {
			free(p);
			w->slot[i] = NULL;
		} else {
			uint32_t size = pick_size(&w->rng);
			p = realloc(p, size);
			if (!p)
				abort();
			touch(w, p, size);
			w->slot[i] = p;
			w->slot_size[i] = size;
		}
	}
}

typedef void (*site_fn)(struct worker *);

#define SITE(n)                                                           \
	static __attribute__((noinline)) void site_##n(struct worker *w) \
	{                                                                 \
		do_calls(w, n);                                           \
		__asm__ volatile("" ::: "memory");                        \
	}
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7) SITE(8) SITE(9)
SITE(10) SITE(11) SITE(12) SITE(13) SITE(14) SITE(15) SITE(16) SITE(17) SITE(18) SITE(19)

static const site_fn sites[NSITES] = {
	site_0, site_1, site_2, site_3, site_4, site_5, site_6, site_7, site_8, site_9,
	site_10, site_11, site_12, site_13, site_14, site_15, site_16, site_17, site_18, site_19,
};

/* Stack depth of each site's calls, counted in frames from main (or the
 * thread's start routine) to the site inclusive: spread from 5 to 40. */
static unsigned site_depth(unsigned site)
{
	return 5 + site * (MAX_DEPTH - 5) / (NSITES - 1);
}

/*
 * The call chain: main -> run -> level_0 -> level_1 -> ... -> site. Each level
 * calls the next from one of two call instructions, chosen by a bit of the
 * site number, so each site's chain has its own return addresses and the 20
 * sites make 20 distinct stacks of their own depth. Each level adds its own
 * number to the checksum so that no two levels are identical code (the
 * compiler would fold them into one); the empty asm after each call keeps it
 * a call, not a jump.
 */
#define NLEVELS (MAX_DEPTH - 3)
typedef void (*level_fn)(struct worker *, unsigned, unsigned);
static const level_fn levels[NLEVELS];

static inline __attribute__((always_inline)) void next(struct worker *w, unsigned site, unsigned level)
{
	if (level + 3 >= site_depth(site & 0xff))
		sites[site & 0xff](w);
	else
		levels[level](w, site, level);
}

#define LEVEL(n)                                                                         \
	static __attribute__((noinline)) void level_##n(struct worker *w, unsigned site, \
							unsigned level)                  \
	{                                                                                \
		w->checksum += (n);                                                      \
		if ((site >> ((n) % 5)) & 1)                                             \
			next(w, site, level + 1);                                        \
		else                                                                     \
			next(w, site | 0x100, level + 1);                                \
		__asm__ volatile("" ::: "memory");                                       \
	}
LEVEL(0) LEVEL(1) LEVEL(2) LEVEL(3) LEVEL(4) LEVEL(5) LEVEL(6) LEVEL(7) LEVEL(8) LEVEL(9)
LEVEL(10) LEVEL(11) LEVEL(12) LEVEL(13) LEVEL(14) LEVEL(15) LEVEL(16) LEVEL(17) LEVEL(18) LEVEL(19)
LEVEL(20) LEVEL(21) LEVEL(22) LEVEL(23) LEVEL(24) LEVEL(25) LEVEL(26) LEVEL(27) LEVEL(28) LEVEL(29)
LEVEL(30) LEVEL(31) LEVEL(32) LEVEL(33) LEVEL(34) LEVEL(35) LEVEL(36)

static const level_fn levels[NLEVELS] = {
	level_0, level_1, level_2, level_3, level_4, level_5, level_6, level_7, level_8, level_9,
	level_10, level_11, level_12, level_13, level_14, level_15, level_16, level_17, level_18, level_19,
	level_20, level_21, level_22, level_23, level_24, level_25, level_26, level_27, level_28, level_29,
	level_30, level_31, level_32, level_33, level_34, level_35, level_36,
};

/* run is frame 2 (after main or the thread's start routine): the chain
 * starts at level 0 as frame 3. */
static __attribute__((noinline)) void run(struct worker *w)
{
	while (w->calls_left) {
		unsigned site = (unsigned)(rnd(&w->rng) % NSITES);
		next(w, site, 0);
	}
	__asm__ volatile("" ::: "memory");
}

static void *thread_main(void *arg)
{
	run(arg);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned nthreads = 1;
	uint64_t calls = 10000000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-t") && i + 1 < argc)
			nthreads = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-n") && i + 1 < argc)
			calls = strtoull(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: %s [-t THREADS] [-n CALLS]\n", argv[0]);
			return 2;
		}
	}
	if (nthreads < 1 || nthreads > 64) {
		fprintf(stderr, "alloc_heavy: -t must be 1 to 64\n");
		return 2;
	}
	/* our own bookkeeping comes from one allocation per thread, made before
	 * the measured calls; it is part of the run but not of the mix */
	struct worker *w = calloc(nthreads, sizeof(*w));
	pthread_t *tid = calloc(nthreads, sizeof(*tid));
	if (!w || !tid)
		return 1;
	for (unsigned t = 0; t < nthreads; t++) {
		w[t].rng = 0x5EEDull + t * 0x1000193ull;
		w[t].nslots = (uint32_t)(LIVE_TARGET * SLOTS_PER_LIVE / nthreads);
		w[t].slot = calloc(w[t].nslots, sizeof(void *));
		w[t].slot_size = calloc(w[t].nslots, sizeof(uint32_t));
		w[t].calls_left = calls / nthreads + (t < calls % nthreads);
		if (!w[t].slot || !w[t].slot_size)
			return 1;
	}
	if (nthreads == 1) {
		run(&w[0]);
	} else {
		for (unsigned t = 0; t < nthreads; t++)
			if (pthread_create(&tid[t], NULL, thread_main, &w[t]))
				return 1;
		for (unsigned t = 0; t < nthreads; t++)
			pthread_join(tid[t], NULL);
	}
	/* everything is freed: the report's leak list stays empty */
	uint64_t sum = 0, live = 0;
	for (unsigned t = 0; t < nthreads; t++) {
		for (uint32_t i = 0; i < w[t].nslots; i++) {
			if (w[t].slot[i]) {
				live++;
				free(w[t].slot[i]);
			}
		}
		sum += w[t].checksum;
		free(w[t].slot);
		free(w[t].slot_size);
	}
	free(w);
	free(tid);
	if (getenv("ALLOC_HEAVY_VERBOSE"))
		fprintf(stderr, "alloc_heavy: %llu calls, %u threads, %llu live at the end (checksum %llx)\n",
			(unsigned long long)calls, nthreads, (unsigned long long)live, (unsigned long long)sum);
	return 0;
}
