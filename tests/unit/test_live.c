/*
 * test_live.c: the live-block table (src/analyze/model_live.c) against a
 * reference that keeps every block in a plain array. Random puts and takes
 * over addresses that share pages, odd and tagged addresses, numbers that
 * do not fit a packed entry and blocks in growth chains; after each phase
 * every block, page and total is compared.
 */
#include "analyze/model_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define SLOTS 5000
#define OPS 400000

/* The reference: slot i holds the block at addr[i] when addr[i] != 0. */
static uint64_t ref_addr[SLOTS];
static struct live_blk ref_blk[SLOTS];

/* Growth chains as model_growth.c keeps them: the block's numbers. */
static struct live_blk chains[SLOTS + 1];
static uint64_t prefetches, bad_chains;

static void chain_blk(void *ctx, uint32_t c, struct live_blk *b)
{
	(void)ctx;
	if (c == 0 || c > SLOTS) {
		bad_chains++; /* the table took a payload for a chain it is not */
		return;
	}
	if (!b)
		prefetches++;
	else
		*b = chains[c];
}

static uint64_t rnd_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	return check_rnd(&rnd_state);
}

static int same(const struct live_blk *a, const struct live_blk *b)
{
	return a->size == b->size && a->stack == b->stack && a->slack == b->slack && a->chain == b->chain;
}

/* An address: mostly 16-byte granules of a few pages, some odd, some with
 * the tag bits model_proc.c sets, some far apart. */
static uint64_t pick_addr(void)
{
	uint64_t r = rnd() % 100;
	uint64_t base = 0x555555000000ull + (rnd() % 64) * 4096;
	if (r < 70)
		return base + (rnd() % 256) * 16;
	if (r < 80)
		return base + 1 + rnd() % 4095; /* not 16-byte aligned */
	if (r < 90)
		return (1ull << 63) | (3ull << 47) | (base + (rnd() % 256) * 16);
	return (rnd() | 16) & ~15ull;
}

static struct live_blk pick_blk(int slot)
{
	struct live_blk b = { rnd() % 5000, (uint32_t)(rnd() % 1000), (uint32_t)(rnd() % 24), 0 };
	switch (rnd() % 20) {
	case 0: b.size = (1ull << 32) + rnd() % 1000; break;     /* too big for 32 bits */
	case 1: b.slack = 128 + (uint32_t)(rnd() % 100000); break; /* for 7 */
	case 2: b.stack = (1u << 24) + (uint32_t)(rnd() % 1000); break;
	case 3: b.size = UINT32_MAX; b.slack = 127; b.stack = (1u << 24) - 1; break; /* just fit */
	case 4:
	case 5:
		b.chain = (uint32_t)slot + 1; /* the chain holds the numbers */
		chains[b.chain] = b;
		break;
	}
	return b;
}

static int find_ref(uint64_t addr)
{
	for (int i = 0; i < SLOTS; i++)
		if (ref_addr[i] == addr)
			return i;
	return -1;
}

struct sums {
	uint64_t blocks, bytes, pages, page_bytes, misaligned_page;
	int by_page;
};

static void add_block(void *ctx, uint64_t addr, uint64_t bytes)
{
	struct sums *s = ctx;
	(void)addr;
	s->blocks++;
	s->bytes += bytes;
}

static void add_page(void *ctx, uint64_t addr, uint64_t bytes)
{
	struct sums *s = ctx;
	s->pages++;
	s->page_bytes += bytes;
	s->misaligned_page += s->by_page && (addr & 4095) != 0;
}

/* Compares the table with the reference, page by page and in total. */
static void compare(struct live_tab *t, const char *when)
{
	uint64_t n = 0, bytes = 0;
	for (int i = 0; i < SLOTS; i++)
		if (ref_addr[i]) {
			n++;
			bytes += ref_blk[i].size;
		}
	struct sums s = { .by_page = t->pages };
	model_live_walk(t, 0, add_block, &s);
	model_live_walk(t, 1, add_page, &s);
	check_u("live blocks walked", s.blocks, n);
	check_u("live bytes walked", s.bytes, bytes);
	check_u("bytes of the pages", s.page_bytes, bytes);
	check_u("page addresses not on a page boundary", s.misaligned_page, 0);
	check(t->used == n, "%s: table holds %zu blocks, the reference %" PRIu64, when, t->used, n);
}

/* Random puts and takes; with fill, puts alone come first, so that the
 * table grows while it holds thousands of blocks. */
static void run(size_t pages_from, int fill, const char *what)
{
	struct live_tab t = { 0 };
	t.chain_blk = chain_blk;
	t.pages_from = pages_from;
	memset(ref_addr, 0, sizeof(ref_addr));
	printf("-- %s\n", what);
	int bad_put = 0, bad_take = 0, bad_old = 0, puts = 0, takes = 0, replaced = 0, missing = 0;
	for (int op = 0; op < OPS; op++) {
		int slot = (int)(rnd() % SLOTS);
		if (op == OPS / 2)
			compare(&t, "half way");
		if (!ref_addr[slot] && (rnd() % 8 || (fill && op < 8000))) {
			/* a new block, or one replacing a live block at the same address */
			uint64_t addr = pick_addr();
			int at = find_ref(addr);
			struct live_blk b = pick_blk(slot), old;
			model_live_prefetch(&t, addr);
			int ret = model_live_put(&t, addr, &b, &old);
			if (at >= 0) {
				bad_put += ret != 1;
				bad_old += ret == 1 && !same(&old, &ref_blk[at]);
				ref_addr[at] = 0;
				replaced++;
			} else {
				bad_put += ret != 0;
			}
			ref_addr[slot] = addr;
			ref_blk[slot] = b;
			puts++;
		} else if (!(fill && op < 8000)) {
			/* free a block, or an address that holds none */
			uint64_t addr = ref_addr[slot] ? ref_addr[slot] : pick_addr();
			int at = find_ref(addr);
			struct live_blk b;
			model_live_prefetch2(&t, addr);
			int ret = model_live_take(&t, addr, &b);
			if (at >= 0) {
				bad_take += ret != 1 || !same(&b, &ref_blk[at]);
				ref_addr[at] = 0;
				takes++;
			} else {
				bad_take += ret != 0;
				missing++;
			}
		}
	}
	check(bad_put == 0, "%d puts (%d replacing a live block): %d returned the wrong status", puts, replaced, bad_put);
	check(bad_old == 0, "replaced blocks come back as they were put (%d differ)", bad_old);
	check(bad_take == 0, "%d takes of live blocks, %d of none: %d wrong", takes, missing, bad_take);
	compare(&t, "at the end");
	check(t.pages == (pages_from <= t.cap), "pages kept from %zu slots: %s (%zu slots)", pages_from,
	      t.pages ? "yes" : "no", t.cap);

	/* empty it: every page goes, the extended records are reused */
	for (int i = 0; i < SLOTS; i++) {
		struct live_blk b;
		if (ref_addr[i] && model_live_take(&t, ref_addr[i], &b) == 1 && same(&b, &ref_blk[i]))
			ref_addr[i] = 0;
	}
	compare(&t, "emptied");
	check_u("pages left", t.pg_used, 0);
	check_u("blocks with an extended record left", t.ext_live, 0);
	uint64_t free_ext = 0;
	for (uint32_t i = t.ext_free; i; i = t.ext[i].next)
		free_ext++;
	check_u("extended records all on the free list", free_ext, t.ext_n ? t.ext_n - 1 : 0);
	model_live_free(&t);
}

int main(void)
{
	run(1, 0, "pages kept from the start");
	run(SIZE_MAX, 0, "no pages: a smaps walk takes every block");
	run(8192, 1, "pages from 8192 slots, reached with thousands of blocks in the table");
	check(prefetches > 0, "chained blocks' records were prefetched (%" PRIu64 " times)", prefetches);
	check_u("chains asked for that no block names", bad_chains, 0);
	return check_done();
}
