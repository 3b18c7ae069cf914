/*
 * model_growth.c: blocks grown by repeated realloc, the pattern of Vec,
 * std::vector and String. A chain starts at a block's first realloc and
 * follows each new block until one is freed for good (or the trace ends);
 * chains are counted at the call site of their first allocation, which is
 * where the container was made: the reallocs' own stacks differ with each
 * push that happened to grow it.
 *
 * State is per live chained block only: a pool of chains with a free list;
 * a live block names its chain (struct live_blk.chain).
 */
#include "analyze/model_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct chain {
	uint64_t max, copied, cur_size, reallocs, moves;
	uint32_t origin;    /* stack index of the first allocation */
	uint32_t cur_stack; /* of the block it is at (the live table reads it) */
	uint32_t cur_slack;
	uint32_t next_free; /* in the free list; 0 = end */
	uint8_t used;
};

struct growth_state {
	struct chain *c;    /* c[0] is never used: chain 0 means none */
	size_t n, cap;
	uint32_t free_head;
	uint32_t *site;     /* stack index -> sites[], UINT32_MAX = none */
	size_t site_cap;
	struct model_growth *sites;
	size_t nsites, sites_cap;
	int oom;            /* a chain could not be counted: model_growth_finish fails */
};

int model_growth_init(struct model *m)
{
	m->priv->growth = calloc(1, sizeof(*m->priv->growth));
	return m->priv->growth ? 0 : -ENOMEM;
}

uint32_t model_growth_chain(struct model *m, const struct live_blk *e)
{
	struct growth_state *g = m->priv->growth;
	uint32_t i;
	if (e->chain)
		return e->chain;
	if (g->free_head) {
		i = g->free_head;
		g->free_head = g->c[i].next_free;
	} else {
		if (g->n + 1 >= UINT32_MAX || model_grow((void **)&g->c, &g->cap, g->n ? g->n + 1 : 2, sizeof(*g->c)) < 0) {
			g->oom = 1;
			return 0;
		}
		if (!g->n)
			g->n = 1;
		i = (uint32_t)g->n++;
	}
	g->c[i] = (struct chain){ .max = e->size, .cur_size = e->size, .origin = e->stack, .cur_stack = e->stack,
				  .cur_slack = e->slack, .used = 1 };
	return i;
}

void model_growth_step(struct model *m, uint32_t chain, uint64_t old_addr, uint64_t addr, const struct live_blk *b)
{
	struct chain *c = &m->priv->growth->c[chain];
	c->reallocs++;
	/* glibc grows a block in place when the memory after it is free:
	 * then nothing was copied */
	if (addr != old_addr) {
		c->moves++;
		c->copied += c->cur_size < b->size ? c->cur_size : b->size;
	}
	if (b->size > c->max)
		c->max = b->size;
	c->cur_size = b->size;
	c->cur_stack = b->stack;
	c->cur_slack = b->slack;
}

void model_growth_block(void *m, uint32_t chain, struct live_blk *b)
{
	const struct chain *c = &((struct model *)m)->priv->growth->c[chain];
	if (!b)
		__builtin_prefetch(c);
	else
		*b = (struct live_blk){ c->cur_size, c->cur_stack, c->cur_slack, chain };
}

static struct model_growth *site_for(struct growth_state *g, uint32_t stack)
{
	if (stack >= g->site_cap) {
		size_t cap = g->site_cap ? g->site_cap : 256;
		while (cap <= stack)
			cap *= 2;
		uint32_t *s = realloc(g->site, cap * sizeof(*s));
		if (!s)
			return NULL;
		memset(s + g->site_cap, 0xff, (cap - g->site_cap) * sizeof(*s));
		g->site = s;
		g->site_cap = cap;
	}
	if (g->site[stack] == UINT32_MAX) {
		if (model_grow((void **)&g->sites, &g->sites_cap, g->nsites + 1, sizeof(*g->sites)) < 0)
			return NULL;
		g->site[stack] = (uint32_t)g->nsites;
		g->sites[g->nsites++] = (struct model_growth){ .stack = stack };
	}
	return &g->sites[g->site[stack]];
}

void model_growth_end(struct model *m, uint32_t chain)
{
	struct growth_state *g = m->priv->growth;
	struct chain *c = &g->c[chain];
	if (!c->used)
		return;
	/* a block freed by realloc whose new block never came is no chain */
	if (c->reallocs) {
		struct model_growth *s = site_for(g, c->origin);
		if (!s) {
			g->oom = 1;
		} else {
			s->chains++;
			s->reallocs += c->reallocs;
			s->moves += c->moves;
			s->copied_bytes += c->copied;
			s->final_bytes += c->cur_size;
			s->slack_bytes += c->cur_slack;
			if (c->max > s->max_bytes)
				s->max_bytes = c->max;
			if (c->reallocs > s->longest)
				s->longest = c->reallocs;
		}
	}
	c->used = 0;
	c->next_free = g->free_head;
	g->free_head = chain;
}

static int cmp_site(const void *a, const void *b)
{
	const struct model_growth *x = a, *y = b;
	if (x->copied_bytes != y->copied_bytes)
		return x->copied_bytes > y->copied_bytes ? -1 : 1;
	if (x->reallocs != y->reallocs)
		return x->reallocs > y->reallocs ? -1 : 1;
	if (x->max_bytes != y->max_bytes)
		return x->max_bytes > y->max_bytes ? -1 : 1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

int model_growth_finish(struct model *m)
{
	struct growth_state *g = m->priv->growth;
	/* blocks still live at the end: their chains end here */
	for (size_t i = 1; i < g->n; i++)
		if (g->c[i].used)
			model_growth_end(m, (uint32_t)i);
	if (g->oom)
		return -ENOMEM;
	if (g->nsites)
		qsort(g->sites, g->nsites, sizeof(*g->sites), cmp_site);
	m->growth = g->sites;
	m->ngrowth = g->nsites;
	g->sites = NULL;
	g->nsites = g->sites_cap = 0;
	return 0;
}

void model_growth_free(struct model *m)
{
	struct growth_state *g = m->priv ? m->priv->growth : NULL;
	if (g) {
		free(g->c);
		free(g->site);
		free(g->sites);
		free(g);
		m->priv->growth = NULL;
	}
	free(m->growth);
	m->growth = NULL;
	m->ngrowth = 0;
}
