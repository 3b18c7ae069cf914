/*
 * test_record.c: the recorder's drain against a fake producer in the same
 * process. Producer threads follow the ring protocol of shm_layout.h as
 * libheapscope.so does (claim the lowest free ring, busy, clock, publish,
 * wait when full); the drain writes a trace that is read back and checked:
 * every event present once, in time order (each with its own timestamp, so
 * nothing was reordered or clamped), stacks and threads defined before use.
 * Deterministic cases then pin the merge rules (ties, watermark, repairs),
 * the symbol table, and the drain's throughput is measured.
 *
 * Prints one line per check; the last line is "N passed, M failed".
 */
#include "record/record.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static char tmpdir[] = "/tmp/test_record.XXXXXX";

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static char *tmp_path(const char *name)
{
	static char buf[8][256];
	static int k;
	char *p = buf[k++ & 7];
	snprintf(p, 256, "%s/%s", tmpdir, name);
	return p;
}

/* ---- fake producer: the library's side of the protocol ---------------- */

static struct hs_ring *rings_of(struct hs_shm_header *h)
{
	return HS_SHM_AT(h, h->rings_off, struct hs_ring);
}

static struct hs_ring *claim(struct hs_shm_header *h, uint32_t tid)
{
	struct hs_ring *rings = rings_of(h);
	for (unsigned i = 0; i < HS_MAX_RINGS; i++) {
		uint32_t expect = HS_RING_FREE;
		if (atomic_load_explicit(&rings[i].state, memory_order_relaxed) != HS_RING_FREE ||
		    !atomic_compare_exchange_strong(&rings[i].state, &expect, HS_RING_OWNED))
			continue;
		rings[i].tid = tid;
		rings[i].pid = (uint32_t)getpid();
		rings[i].proc = 0;
		atomic_fetch_add_explicit(&rings[i].gen, 1, memory_order_release);
		return &rings[i];
	}
	return NULL;
}

static int light; /* the light ring protocol: this process registered with membarrier */

/* busy, clock, (wait for room), write, publish. stall_ms > 0 plays a
 * thread preempted between reading the clock and publishing. */
static uint64_t produce(struct hs_ring *r, unsigned kind, uint64_t addr, uint64_t size, uint32_t stack, long stall_ms)
{
	if (light) {
		atomic_store_explicit(&r->busy, 1, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		atomic_store_explicit(&r->busy, 1, memory_order_seq_cst);
	}
	uint64_t t = mono_ns();
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	while (head + 1 - atomic_load_explicit(&r->tail, memory_order_acquire) > HS_RING_EVENTS)
		sched_yield();
	if (stall_ms)
		sleep_ms(stall_ms);
	r->ev[head % HS_RING_EVENTS] = (struct hs_event){ .time = t, .addr = addr, .size = size, .stack = stack,
							  .kind = (uint16_t)kind };
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	atomic_store_explicit(&r->busy, 0, memory_order_release);
	return t;
}

static void close_ring(struct hs_ring *r)
{
	atomic_store_explicit(&r->state, HS_RING_CLOSED, memory_order_release);
}

static uint32_t new_node(struct hs_shm_header *h, uint64_t ip, uint32_t parent, long delay_ms)
{
	struct hs_node *nodes = HS_SHM_AT(h, h->nodes_off, struct hs_node);
	uint32_t id = atomic_fetch_add(&h->nodes_used, 1);
	if (delay_ms)
		sleep_ms(delay_ms);
	nodes[id].ip = ip;
	nodes[id].parent = parent;
	atomic_store_explicit(&nodes[id].ready, 1, memory_order_release);
	return id;
}

/* Appends modules to the log up to n in all (the library logs only what is
 * new in its address space). */
static void write_modules(struct hs_shm_header *h, unsigned n)
{
	struct hs_module *m = HS_SHM_AT(h, h->modules_off, struct hs_module);
	for (unsigned i = atomic_load(&h->nmodules); i < n; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		m[i].bias = 0x400000ull * (i + 1);
		m[i].start = m[i].bias;
		m[i].end = m[i].bias + 0x1000;
		m[i].build_id_len = 4;
		memcpy(m[i].build_id, "\x01\x02\x03\x04", 4);
		snprintf(m[i].path, sizeof(m[i].path), "/fake/lib%u.so", i);
		atomic_store_explicit(&h->nmodules, i + 1, memory_order_release);
	}
}

/* ---- trace reading ---------------------------------------------------- */

#define MAXP 8

struct expect {
	uint64_t t0;
	int nprod;
	uint64_t *times[MAXP];   /* the time each producer gave each event */
	uint32_t count[MAXP];
	uint32_t tid[MAXP];
};

/* Producer p's event seq has addr (p+1)<<40 | seq. */
static uint64_t ev_addr(int p, uint32_t seq)
{
	return ((uint64_t)(p + 1) << 40) | seq;
}

struct seen {
	uint64_t records, allocs, frees, samples, exit_marks, modules, stacks, threads, ends;
	uint64_t missing, dup, bad_time, bad_order, bad_stack, bad_parent, bad_thread, bad_tid;
	uint64_t last_time, exit_time, events_after_exit, first_bad;
	int read_error, ended_before_end;
	char err[512];
};

static int read_trace(const char *path, const struct expect *x, struct seen *s)
{
	struct trace_reader *r;
	struct trace_record rec;
	memset(s, 0, sizeof(*s));
	if (trace_reader_open(&r, path, s->err, sizeof(s->err)))
		return -1;
	uint8_t *stack_def = calloc(HS_MAX_NODES, 1);
	int64_t thread_of[256];
	for (int i = 0; i < 256; i++)
		thread_of[i] = -1;
	uint32_t next_seq[MAXP] = { 0 };
	uint8_t *got[MAXP] = { 0 };
	for (int p = 0; p < x->nprod; p++)
		got[p] = calloc(x->count[p] + 1, 1);
	int ret;
	while ((ret = trace_reader_next(r, &rec)) > 0) {
		s->records++;
		switch (rec.type) {
		case TR_STACK:
			s->stacks++;
			if (rec.u.stack.id >= HS_MAX_NODES || stack_def[rec.u.stack.id])
				s->bad_stack++;
			else if (rec.u.stack.parent && (rec.u.stack.parent >= HS_MAX_NODES || !stack_def[rec.u.stack.parent]))
				s->bad_parent++;
			else
				stack_def[rec.u.stack.id] = 1;
			break;
		case TR_THREAD:
			s->threads++;
			if (rec.u.thread.index != s->threads - 1 || rec.u.thread.index >= 256)
				s->bad_thread++;
			else
				thread_of[rec.u.thread.index] = (int64_t)rec.u.thread.tid;
			break;
		case TR_MODULE:
			s->modules++;
			break;
		case TR_SAMPLE:
			s->samples++;
			break;
		case TR_EXIT_MARK:
			s->exit_marks++;
			s->exit_time = rec.time;
			break;
		case TR_END:
			s->ends++;
			break;
		case TR_ALLOC:
		case TR_FREE: {
			uint64_t addr = rec.type == TR_ALLOC ? rec.u.alloc.addr : rec.u.free.addr;
			uint64_t th = rec.type == TR_ALLOC ? rec.u.alloc.thread : rec.u.free.thread;
			int p = (int)(addr >> 40) - 1;
			uint32_t seq = (uint32_t)(addr & 0xffffffffffull);
			if (rec.type == TR_ALLOC) {
				s->allocs++;
				if (rec.u.alloc.stack && (rec.u.alloc.stack >= HS_MAX_NODES || !stack_def[rec.u.alloc.stack]))
					s->bad_stack++;
			} else {
				s->frees++;
			}
			if (s->exit_marks)
				s->events_after_exit++;
			if (th >= 256 || thread_of[th] < 0) {
				s->bad_thread++;
				break;
			}
			if (p < 0 || p >= x->nprod || seq >= x->count[p]) {
				s->missing++;
				break;
			}
			if ((uint32_t)thread_of[th] != x->tid[p])
				s->bad_tid++;
			if (got[p][seq]++)
				s->dup++;
			if (seq != next_seq[p])
				s->bad_order++;
			next_seq[p] = seq + 1;
			if (rec.time != x->times[p][seq] - x->t0) {
				if (!s->bad_time)
					s->first_bad = s->records;
				s->bad_time++;
			}
			break;
		}
		}
		if (rec.time < s->last_time)
			s->bad_time++;
		s->last_time = rec.time;
	}
	if (ret < 0) {
		s->read_error = 1;
		snprintf(s->err, sizeof(s->err), "%s", trace_reader_error(r));
	}
	for (int p = 0; p < x->nprod; p++) {
		for (uint32_t i = 0; i < x->count[p]; i++)
			s->missing += !got[p][i];
		free(got[p]);
	}
	free(stack_def);
	trace_reader_close(r);
	return 0;
}

/* ---- scenario 1: concurrent producers -------------------------------- */

enum pmode { P_NORMAL, P_STALL, P_SLOW_NODE, P_FAST_NODE, P_NO_CLOSE, P_SHORT };

struct producer {
	pthread_t th;
	int id;
	enum pmode mode;
	struct hs_shm_header *h;
	struct expect *x;
	uint32_t nevents;
	int ring_index;
};

static _Atomic uint32_t slow_node_id;
static uint32_t base_nodes[10];

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	struct expect *x = p->x;
	uint32_t tid = (uint32_t)syscall(SYS_gettid);
	x->tid[p->id] = tid;
	struct hs_ring *r = claim(p->h, tid);
	if (!r)
		return NULL;
	p->ring_index = (int)(r - rings_of(p->h));
	uint32_t own_node = 0;
	if (p->mode == P_SLOW_NODE) {
		/* takes an id, then is slow to fill it: nodes after it must wait */
		struct hs_node *nodes = HS_SHM_AT(p->h, p->h->nodes_off, struct hs_node);
		uint32_t id = atomic_fetch_add(&p->h->nodes_used, 1);
		atomic_store(&slow_node_id, id);
		sleep_ms(60);
		nodes[id].ip = 0x5100;
		nodes[id].parent = base_nodes[0];
		atomic_store_explicit(&nodes[id].ready, 1, memory_order_release);
		own_node = id;
	} else if (p->mode == P_FAST_NODE) {
		while (!atomic_load(&slow_node_id))
			sched_yield();
		own_node = new_node(p->h, 0xfa57, base_nodes[1], 0);
	}
	for (uint32_t seq = 0; seq < p->nevents; seq++) {
		unsigned kind = seq & 1 ? HS_EV_FREE : HS_EV_MALLOC;
		uint32_t stack = own_node && seq < 2000 ? own_node : base_nodes[seq % 10];
		long stall = p->mode == P_STALL && seq == 5000 ? 80 : 0;
		x->times[p->id][seq] = produce(r, kind, ev_addr(p->id, seq), seq, kind == HS_EV_MALLOC ? stack : 0, stall);
	}
	if (p->mode != P_NO_CLOSE)
		close_ring(r);
	return NULL;
}

struct drainer {
	pthread_t th;
	struct rec_drain *d;
	_Atomic int stop;
	_Atomic uint64_t max_pending;
	long err;
};

static void *drainer_main(void *arg)
{
	struct drainer *dr = arg;
	uint64_t next_sample = 0;
	while (!atomic_load(&dr->stop)) {
		uint64_t now = mono_ns();
		if (now >= next_sample) {
			rec_drain_sample(dr->d);
			next_sample = now + 10000000;
		}
		long n = rec_drain_round(dr->d, 0);
		if (n < 0) {
			dr->err = n;
			return NULL;
		}
		struct rec_drain_stats st;
		rec_drain_get_stats(dr->d, &st);
		if (st.pending > atomic_load(&dr->max_pending))
			atomic_store(&dr->max_pending, st.pending);
		if (n < 1024)
			sleep_ms(1);
	}
	long n = rec_drain_round(dr->d, 1);
	if (n < 0)
		dr->err = n;
	return NULL;
}

static void scenario_concurrent(int with_light)
{
	struct rec_shm shm;
	struct trace_writer *w;
	struct rec_drain *d;
	const char *path = tmp_path(with_light ? "concurrent-light.hst" : "concurrent.hst");
	printf("# concurrent producers (%s ring protocol): a stalled ring, a slow stack node, ring reuse and reclaim\n",
	       with_light ? "light" : "fenced");
	if (with_light && syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0)) {
		printf("# skipped: membarrier(2) cannot be used here\n");
		return;
	}
	light = with_light;
	if (rec_shm_create(&shm, 0) || trace_writer_open(&w, path, 0)) {
		check(0, "set up shared memory and trace");
		return;
	}
	struct hs_shm_header *h = shm.h;
	atomic_store(&h->ring_light, (uint32_t)light);
	struct expect x = { .t0 = mono_ns() };
	if (rec_drain_new(&d, h, w, x.t0, getpid())) {
		check(0, "rec_drain_new");
		return;
	}
	write_modules(h, 2);
	base_nodes[0] = new_node(h, 0x1000, 0, 0);
	for (int i = 1; i < 10; i++)
		base_nodes[i] = new_node(h, 0x1000 + (uint64_t)i, base_nodes[i - 1], 0);

	struct drainer dr = { .d = d };
	pthread_create(&dr.th, NULL, drainer_main, &dr);

	static const enum pmode modes[] = { P_STALL, P_SLOW_NODE, P_FAST_NODE, P_NO_CLOSE, P_SHORT };
	static const uint32_t counts[] = { 100000, 60000, 60000, 1000, 500 };
	struct producer prod[5];
	x.nprod = 5;
	for (int i = 0; i < 5; i++) {
		x.count[i] = counts[i];
		x.times[i] = calloc(counts[i], sizeof(uint64_t));
		prod[i] = (struct producer){ .id = i, .mode = modes[i], .h = h, .x = &x, .nevents = counts[i],
					     .ring_index = -1 };
	}
	for (int i = 0; i < 4; i++)
		pthread_create(&prod[i].th, NULL, producer_main, &prod[i]);
	sleep_ms(20);
	write_modules(h, 3); /* a dlopen while events flow */
	for (int i = 0; i < 4; i++)
		pthread_join(prod[i].th, NULL);

	/* closed rings go back to free once drained; the lowest is reused */
	struct hs_ring *rings = rings_of(h);
	int r0 = prod[0].ring_index;
	for (int i = 0; i < 200 && atomic_load(&rings[r0].state) != HS_RING_FREE; i++)
		sleep_ms(5);
	pthread_create(&prod[4].th, NULL, producer_main, &prod[4]);
	pthread_join(prod[4].th, NULL);
	check(prod[4].ring_index >= 0 && prod[4].ring_index <= r0,
	      "a drained closed ring is free again and reused (ring %d, first was %d)", prod[4].ring_index, r0);

	/* the thread that exited without closing: reclaimed within ~100 ms */
	int r3 = prod[3].ring_index;
	int reclaimed = 0;
	for (int i = 0; i < 100 && !reclaimed; i++) {
		reclaimed = atomic_load(&rings[r3].state) == HS_RING_FREE;
		if (!reclaimed)
			sleep_ms(5);
	}
	check(reclaimed, "an owned ring whose thread exited is reclaimed (ring %d)", r3);

	/* the exit marker, from this thread's own ring */
	struct hs_ring *mine = claim(h, (uint32_t)syscall(SYS_gettid));
	uint64_t exit_time = mine ? produce(mine, HS_EV_EXIT, 0, 0, 0, 0) : 0;
	sleep_ms(5);
	atomic_store(&dr.stop, 1);
	pthread_join(dr.th, NULL);
	check(dr.err == 0, "drain rounds succeed (%ld)", dr.err);

	struct rec_drain_stats st;
	rec_drain_get_stats(d, &st);
	check(st.pending == 0, "nothing left pending after the final round (%llu)", (unsigned long long)st.pending);
	check(st.skipped == 0 && st.anomalies == 0, "no skipped events, no repairs (%llu, %llu)",
	      (unsigned long long)st.skipped, (unsigned long long)st.anomalies);
	check(atomic_load(&dr.max_pending) > 0, "events were held back while a ring was mid-event (up to %llu)",
	      (unsigned long long)atomic_load(&dr.max_pending));
	check(light ? st.barriers && st.barriers <= st.rounds : !st.barriers, "membarrier in %llu of %llu rounds",
	      (unsigned long long)st.barriers, (unsigned long long)st.rounds);
	rec_drain_free(d);
	int ret = trace_writer_close(w);
	check(ret == 0, "trace written (%d)", ret);

	struct seen s;
	uint64_t total = 0;
	for (int i = 0; i < 5; i++)
		total += x.count[i];
	if (read_trace(path, &x, &s) < 0) {
		check(0, "trace opens: %s", s.err);
		goto out;
	}
	check(!s.read_error, "trace reads to the end %s", s.err);
	check(s.allocs + s.frees == total, "every event written: %llu of %llu", (unsigned long long)(s.allocs + s.frees),
	      (unsigned long long)total);
	check(s.missing == 0 && s.dup == 0, "each event exactly once (missing %llu, duplicate %llu)",
	      (unsigned long long)s.missing, (unsigned long long)s.dup);
	check(s.bad_time == 0, "every event at its own time, in time order (%llu wrong, first at record %llu)",
	      (unsigned long long)s.bad_time, (unsigned long long)s.first_bad);
	check(s.bad_order == 0, "each thread's events in its order (%llu out of place)", (unsigned long long)s.bad_order);
	check(s.bad_stack == 0 && s.bad_parent == 0,
	      "every stack id defined before use, parents first (%llu, %llu bad)", (unsigned long long)s.bad_stack,
	      (unsigned long long)s.bad_parent);
	check(s.threads == 5 && s.bad_thread == 0 && s.bad_tid == 0,
	      "a thread record, dense index and right tid before each thread's events (%llu threads)",
	      (unsigned long long)s.threads);
	check(s.modules == 3, "modules written once each, the dlopen'ed one too (%llu)", (unsigned long long)s.modules);
	check(s.exit_marks == 1 && s.exit_time == exit_time - x.t0 && s.events_after_exit == 0,
	      "one exit mark, in place after every event");
	check(s.samples >= 1, "RSS samples in the stream (%llu)", (unsigned long long)s.samples);
out:
	for (int i = 0; i < 5; i++)
		free(x.times[i]);
	rec_shm_destroy(&shm);
	light = 0;
}

/* ---- RSS samples ----------------------------------------------------- */

/* RssAnon + RssFile of this process, in bytes. */
static uint64_t own_rss(void)
{
	char buf[4096];
	FILE *f = fopen("/proc/self/status", "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	const char *a = strstr(buf, "\nRssAnon:"), *b = strstr(buf, "\nRssFile:");
	return a && b ? (strtoull(a + 9, NULL, 10) + strtoull(b + 9, NULL, 10)) * 1024 : 0;
}

/* This process is the program and the recorder at once: every page of the
 * shared memory in use is in its RssShmem, so a sample must be exactly its
 * RssAnon + RssFile, read just before and just after. */
static void scenario_rss(void)
{
	struct rec_shm shm;
	struct trace_writer *w;
	struct rec_drain *d;
	const char *path = tmp_path("rss.hst");
	printf("# RSS samples leave out the shared memory\n");
	if (rec_shm_create(&shm, 0) || trace_writer_open(&w, path, 0) || rec_drain_new(&d, shm.h, w, 0, getpid())) {
		check(0, "set up shared memory, trace and drain");
		return;
	}
	rec_drain_set_shm_fd(d, shm.fd);
	/* what a program's stacks would touch: 4 MiB of the (empty) hash */
	memset((char *)shm.h + shm.h->hash_off, 0, 4u << 20);
	uint64_t before = own_rss();
	check(rec_drain_sample(d) == 0, "sample");
	uint64_t after = own_rss();
	check(rec_drain_round(d, 1) >= 0, "final round");
	rec_drain_free(d);
	check(trace_writer_close(w) == 0, "trace written");
	struct trace_reader *r;
	struct trace_record rec;
	char err[256] = "";
	uint64_t rss = 0, samples = 0;
	if (trace_reader_open(&r, path, err, sizeof(err)) == 0) {
		while (trace_reader_next(r, &rec) > 0)
			if (rec.type == TR_SAMPLE) {
				rss = rec.u.sample.rss;
				samples++;
			}
		trace_reader_close(r);
	}
	check_u("samples", samples, 1);
	check(before <= rss && rss <= after, "the sample, %llu B, is RssAnon + RssFile (%llu to %llu B): our %u MiB left out",
	      (unsigned long long)rss, (unsigned long long)before, (unsigned long long)after, 4u);
	rec_shm_destroy(&shm);
}

/* ---- scenario 2: merge rules, deterministic -------------------------- */

static void put(struct hs_ring *r, uint64_t t, unsigned kind, uint64_t addr, uint32_t stack)
{
	uint64_t head = atomic_load(&r->head);
	r->ev[head % HS_RING_EVENTS] = (struct hs_event){ .time = t, .addr = addr, .size = 8, .stack = stack,
							  .kind = (uint16_t)kind };
	atomic_store(&r->head, head + 1);
}

static struct hs_ring *own(struct hs_shm_header *h, unsigned i, uint32_t tid)
{
	struct hs_ring *r = &rings_of(h)[i];
	atomic_store(&r->state, HS_RING_OWNED);
	r->tid = tid;
	r->pid = 0; /* no process to check: these threads never exit */
	atomic_fetch_add(&r->gen, 1);
	return r;
}

/* Reads alloc/free records of a trace as "A<addr>@t" / "F<addr>@t". */
static void event_string(const char *path, char *out, size_t len, uint64_t *stack_of_last, uint64_t *stacks)
{
	struct trace_reader *r;
	struct trace_record rec;
	char err[256];
	size_t k = 0;
	out[0] = 0;
	if (stacks)
		*stacks = 0;
	if (trace_reader_open(&r, path, err, sizeof(err)))
		return;
	while (trace_reader_next(r, &rec) > 0 && k + 32 < len) {
		if (rec.type == TR_ALLOC) {
			k += (size_t)snprintf(out + k, len - k, "A%llx@%llu ", (unsigned long long)rec.u.alloc.addr,
					      (unsigned long long)rec.time);
			if (stack_of_last)
				*stack_of_last = rec.u.alloc.stack;
		} else if (rec.type == TR_FREE) {
			k += (size_t)snprintf(out + k, len - k, "F%llx@%llu ", (unsigned long long)rec.u.free.addr,
					      (unsigned long long)rec.time);
		} else if (rec.type == TR_STACK && stacks) {
			(*stacks)++;
		}
	}
	trace_reader_close(r);
}

static void scenario_rules(void)
{
	struct rec_shm shm;
	struct trace_writer *w;
	struct rec_drain *d;
	char got[1024];
	printf("# merge rules\n");

	/* ties across rings: frees first; within a ring: the ring's order */
	const char *path = tmp_path("ties.hst");
	if (rec_shm_create(&shm, 0) || trace_writer_open(&w, path, 0) || rec_drain_new(&d, shm.h, w, 0, 0)) {
		check(0, "set up");
		return;
	}
	struct hs_ring *r0 = own(shm.h, 0, 100), *r1 = own(shm.h, 1, 101), *r2 = own(shm.h, 2, 102);
	put(r0, 100, HS_EV_MALLOC, 0xa, 0);
	put(r0, 100, HS_EV_FREE, 0xa, 0);
	put(r1, 100, HS_EV_FREE, 0xb, 0);
	put(r2, 100, HS_EV_MALLOC, 0xc, 0);
	put(r2, 150, HS_EV_REALLOC_FREE, 0xc, 0);
	put(r1, 120, HS_EV_MALLOC, 0xd, 0);
	rec_drain_round(d, 1);
	rec_drain_free(d);
	trace_writer_close(w);
	event_string(path, got, sizeof(got), NULL, NULL);
	check(!strcmp(got, "Fb@100 Aa@100 Fa@100 Ac@100 Ad@120 Fc@150 "),
	      "same time: frees before allocations across rings, ring order within one (%s)", got);
	rec_shm_destroy(&shm);

	/* a ring caught mid-event holds back what its next event could precede */
	path = tmp_path("watermark.hst");
	if (rec_shm_create(&shm, 0) || trace_writer_open(&w, path, 0) || rec_drain_new(&d, shm.h, w, 0, 0)) {
		check(0, "set up");
		return;
	}
	r0 = own(shm.h, 0, 200);
	r1 = own(shm.h, 1, 201);
	put(r0, 200, HS_EV_MALLOC, 0x1, 0);
	atomic_store(&r0->busy, 1); /* its next event is at >= 200 */
	put(r1, 100, HS_EV_MALLOC, 0x2, 0);
	put(r1, 300, HS_EV_MALLOC, 0x3, 0);
	rec_drain_round(d, 0);
	trace_writer_flush(w);
	event_string(path, got, sizeof(got), NULL, NULL);
	check(!strcmp(got, "A2@100 "), "busy ring: only events older than its last one are written (%s)", got);
	put(r0, 250, HS_EV_FREE, 0x1, 0);
	atomic_store(&r0->busy, 0);
	rec_drain_round(d, 0);
	trace_writer_flush(w);
	event_string(path, got, sizeof(got), NULL, NULL);
	check(!strcmp(got, "A2@100 A1@200 F1@250 A3@300 "), "once idle, the rest follows in order (%s)", got);
	rec_drain_free(d);
	trace_writer_close(w);
	rec_shm_destroy(&shm);

	/* stuck mid-event: after a while, the others are no longer held */
	path = tmp_path("stuck.hst");
	if (rec_shm_create(&shm, 0) || trace_writer_open(&w, path, 0) || rec_drain_new(&d, shm.h, w, 0, 0)) {
		check(0, "set up");
		return;
	}
	r0 = own(shm.h, 0, 200);
	r1 = own(shm.h, 1, 201);
	put(r0, 200, HS_EV_MALLOC, 0x1, 0);
	atomic_store(&r0->busy, 1);
	put(r1, 100, HS_EV_MALLOC, 0x2, 0);
	put(r1, 300, HS_EV_MALLOC, 0x3, 0);
	rec_drain_round(d, 0);
	trace_writer_flush(w);
	event_string(path, got, sizeof(got), NULL, NULL);
	int held = !strcmp(got, "A2@100 ");
	sleep_ms(300);
	rec_drain_round(d, 0);
	trace_writer_flush(w);
	event_string(path, got, sizeof(got), NULL, NULL);
	struct rec_drain_stats wst;
	rec_drain_get_stats(d, &wst);
	check(held && !strcmp(got, "A2@100 A1@200 A3@300 ") && wst.anomalies == 1,
	      "a ring stuck mid-event stops holding the others back (%s)", got);
	/* its event comes at last, older than what was written: at the latest
	 * time, not counted as the protocol's fault; an idle ring's is */
	put(r0, 250, HS_EV_FREE, 0x1, 0);
	atomic_store(&r0->busy, 0);
	rec_drain_round(d, 0);
	put(r1, 280, HS_EV_FREE, 0x2, 0);
	rec_drain_round(d, 0);
	trace_writer_flush(w);
	event_string(path, got, sizeof(got), NULL, NULL);
	rec_drain_get_stats(d, &wst);
	check(!strcmp(got, "A2@100 A1@200 A3@300 F1@300 F2@300 ") && wst.late == 1,
	      "late events: the stalled ring's forgiven, an idle ring's counted (%s, %llu)", got,
	      (unsigned long long)wst.late);
	rec_drain_free(d);
	trace_writer_close(w);
	rec_shm_destroy(&shm);

	/* what a dead target leaves: repaired, never lost or undefined */
	path = tmp_path("repair.hst");
	if (rec_shm_create(&shm, 0) || trace_writer_open(&w, path, 0) || rec_drain_new(&d, shm.h, w, 0, 0)) {
		check(0, "set up");
		return;
	}
	uint32_t n1 = new_node(shm.h, 0x10, 0, 0);
	uint32_t n2 = atomic_fetch_add(&shm.h->nodes_used, 1); /* taken, never filled */
	uint32_t n3 = new_node(shm.h, 0x30, n1, 0);
	r0 = own(shm.h, 0, 300);
	put(r0, 10, HS_EV_MALLOC, 0x1, n3);
	put(r0, 11, 99, 0x2, 0);               /* not a kind we know */
	put(r0, 12, HS_EV_MALLOC, 0x3, 12345); /* a stack id never taken */
	atomic_store(&shm.h->nmodules, 1); /* died while logging a module: it is read as it is */
	rec_drain_round(d, 0);
	struct rec_drain_stats st;
	rec_drain_get_stats(d, &st);
	check(st.events == 0 && st.pending == 3, "an unfilled node holds back events that use later ones (%llu, %llu)",
	      (unsigned long long)st.events, (unsigned long long)st.pending);
	rec_drain_round(d, 1);
	rec_drain_get_stats(d, &st);
	check(st.events == 2 && st.skipped == 1 && st.stacks == 3,
	      "final round: unfilled node written empty, unknown kind skipped (events %llu, skipped %llu, stacks %llu)",
	      (unsigned long long)st.events, (unsigned long long)st.skipped, (unsigned long long)st.stacks);
	rec_drain_free(d);
	trace_writer_close(w);
	uint64_t last_stack = 99, stacks = 0;
	event_string(path, got, sizeof(got), &last_stack, &stacks);
	check(last_stack == 0 && stacks == 3, "a stack id that was never taken becomes 0 (stack %llu, %llu nodes)",
	      (unsigned long long)last_stack, (unsigned long long)stacks);
	(void)n2;
	rec_shm_destroy(&shm);
}

/* ---- scenario 3: symbols --------------------------------------------- */

struct self_mod {
	uint64_t bias, start, end;
	char path[sizeof(((struct rec_module *)0)->path)];
	uint64_t target;
};

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct self_mod *m = arg;
	uint64_t lo = UINT64_MAX, hi = 0;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t s = info->dlpi_addr + ph->p_vaddr;
		if (s < lo)
			lo = s;
		if (s + ph->p_memsz > hi)
			hi = s + ph->p_memsz;
	}
	if (m->target < lo || m->target >= hi)
		return 0;
	m->bias = info->dlpi_addr;
	m->start = lo;
	m->end = hi;
	if (info->dlpi_name && info->dlpi_name[0]) {
		snprintf(m->path, sizeof(m->path), "%s", info->dlpi_name);
	} else {
		ssize_t n = readlink("/proc/self/exe", m->path, sizeof(m->path) - 1);
		m->path[n > 0 ? n : 0] = 0;
	}
	return 1;
}

static void scenario_symbols(void)
{
	struct rec_shm shm;
	struct trace_writer *w;
	printf("# symbols\n");
	const char *path = tmp_path("symbols.hst");
	if (rec_shm_create(&shm, 0) || trace_writer_open(&w, path, 0)) {
		check(0, "set up");
		return;
	}
	struct self_mod self = { .target = (uint64_t)(uintptr_t)&scenario_symbols };
	dl_iterate_phdr(find_self, &self);
	struct rec_module mods[1] = { { .id = 1, .bias = self.bias, .start = self.start, .end = self.end } };
	snprintf(mods[0].path, sizeof(mods[0].path), "%s", self.path);
	/* a "return address" inside this function, twice, and one nowhere */
	uint64_t ip = (uint64_t)(uintptr_t)&scenario_symbols + 8;
	uint32_t a = new_node(shm.h, ip, 0, 0);
	new_node(shm.h, ip, a, 0);
	new_node(shm.h, 0x10, a, 0);
	uint64_t nsyms = 0;
	int ret = rec_symbols_write(w, shm.h, atomic_load(&shm.h->nodes_used), mods, 1, -1, &nsyms);
	trace_writer_close(w);
	check(ret == 0 && nsyms == 2, "each distinct ip resolved once (%d, %llu symbols)", ret, (unsigned long long)nsyms);

	struct trace_reader *r;
	struct trace_record rec;
	char err[256];
	int found = 0, strings = 0, symbols = 0, rret = -1;
	uint64_t module = 99;
	if (trace_reader_open(&r, path, err, sizeof(err)) == 0) {
		while ((rret = trace_reader_next(r, &rec)) > 0) {
			if (rec.type == TR_STRING)
				strings++;
			if (rec.type != TR_SYMBOL)
				continue;
			symbols++;
			if (rec.u.symbol.ip == ip) {
				module = rec.u.symbol.module;
				for (uint32_t k = 0; k < rec.u.symbol.nframes; k++)
					found |= rec.u.symbol.frames[k].function &&
						 !strcmp(rec.u.symbol.frames[k].function, "scenario_symbols");
			}
		}
		trace_reader_close(r);
	}
	check(rret == 0 && symbols == 2, "symbol records read back (%d)", symbols);
	check(found && module == 1, "an address in this function names it, in module 1 (module %llu)",
	      (unsigned long long)module);
	check(strings >= 1, "names written once as strings (%d)", strings);
	rec_shm_destroy(&shm);
}

/* ---- throughput ------------------------------------------------------ */

static void *fast_producer(void *arg)
{
	struct producer *p = arg;
	struct hs_ring *r = claim(p->h, (uint32_t)syscall(SYS_gettid));
	if (!r)
		return NULL;
	for (uint32_t seq = 0; seq < p->nevents; seq++) {
		unsigned kind = seq & 1 ? HS_EV_FREE : HS_EV_MALLOC;
		produce(r, kind, 0x7f0000000000ull + (uint64_t)(seq & ~1u) * 48, 16 + (seq & 255),
			kind == HS_EV_MALLOC ? base_nodes[seq % 10] : 0, 0);
	}
	close_ring(r);
	return NULL;
}

static void scenario_throughput(void)
{
	struct rec_shm shm;
	struct trace_writer *w;
	struct rec_drain *d;
	printf("# throughput\n");

	/* the drain alone: full rings, one final round */
	const char *path = tmp_path("bulk.hst");
	if (rec_shm_create(&shm, 0) || trace_writer_open(&w, path, 0) || rec_drain_new(&d, shm.h, w, 0, 0)) {
		check(0, "set up");
		return;
	}
	for (int i = 0; i < 10; i++)
		base_nodes[i] = new_node(shm.h, 0x1000 + (uint64_t)i, i ? base_nodes[i - 1] : 0, 0);
	const unsigned nr = 16;
	uint64_t t = mono_ns();
	for (unsigned i = 0; i < nr; i++) {
		struct hs_ring *r = own(shm.h, i, 1000 + i);
		for (uint32_t k = 0; k < HS_RING_EVENTS; k++)
			put(r, t + k * 16 + i, k & 1 ? HS_EV_FREE : HS_EV_MALLOC,
			    0x7f0000000000ull + ((uint64_t)i << 24) + (k & ~1u) * 48, k & 1 ? 0 : base_nodes[k % 10]);
	}
	uint64_t start = mono_ns();
	rec_drain_round(d, 1);
	int ret = trace_writer_close(w);
	double secs = (double)(mono_ns() - start) / 1e9;
	struct rec_drain_stats st;
	rec_drain_get_stats(d, &st);
	rec_drain_free(d);
	rec_shm_destroy(&shm);
	check(ret == 0 && st.events == (uint64_t)nr * HS_RING_EVENTS,
	      "drain, merge of %u rings, encode, compress: %.1f M events/s", nr,
	      (double)st.events / secs / 1e6);

	/* live: producers at full speed against the drain loop */
	for (int np = 1; np <= 2; np++) {
		path = tmp_path(np == 1 ? "live1.hst" : "live2.hst");
		if (rec_shm_create(&shm, 0) || trace_writer_open(&w, path, 0) || rec_drain_new(&d, shm.h, w, 0, 0)) {
			check(0, "set up");
			return;
		}
		for (int i = 0; i < 10; i++)
			base_nodes[i] = new_node(shm.h, 0x1000 + (uint64_t)i, i ? base_nodes[i - 1] : 0, 0);
		struct drainer dr = { .d = d };
		struct producer prod[2];
		uint32_t each = 2000000 / (uint32_t)np;
		start = mono_ns();
		pthread_create(&dr.th, NULL, drainer_main, &dr);
		for (int i = 0; i < np; i++) {
			prod[i] = (struct producer){ .id = i, .h = shm.h, .nevents = each };
			pthread_create(&prod[i].th, NULL, fast_producer, &prod[i]);
		}
		for (int i = 0; i < np; i++)
			pthread_join(prod[i].th, NULL);
		double produced = (double)(mono_ns() - start) / 1e9;
		atomic_store(&dr.stop, 1);
		pthread_join(dr.th, NULL);
		ret = trace_writer_close(w);
		secs = (double)(mono_ns() - start) / 1e9;
		rec_drain_get_stats(d, &st);
		rec_drain_free(d);
		rec_shm_destroy(&shm);
		check(ret == 0 && dr.err == 0 && st.events == (uint64_t)np * each,
		      "%d producer%s at full speed: %.1f M events/s end to end (producers done in %.2f s, all written in %.2f s)",
		      np, np > 1 ? "s" : "", (double)st.events / secs / 1e6, produced, secs);
	}
}

static void cleanup(void)
{
	static const char *const names[] = { "concurrent.hst", "concurrent-light.hst", "ties.hst", "watermark.hst",
					      "repair.hst", "symbols.hst", "stuck.hst", "bulk.hst", "live1.hst",
					      "live2.hst", "rss.hst", "symbols_end.hst", "symbols_ahead.hst" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(tmp_path(names[i]));
	rmdir(tmpdir);
}

/* The symbol records of a trace, decoded into one string. */
static size_t symbol_text(const char *path, char *out, size_t len, char *libc_fn, size_t fnlen, uint64_t libc_ip)
{
	struct trace_reader *r;
	struct trace_record rec;
	char err[256];
	size_t k = 0;
	out[0] = 0;
	if (trace_reader_open(&r, path, err, sizeof(err)))
		return 0;
	while (trace_reader_next(r, &rec) > 0 && k + 512 < len) {
		if (rec.type == TR_STRING)
			k += (size_t)snprintf(out + k, len - k, "S%llu=%.*s;", (unsigned long long)rec.u.string.id,
					      (int)rec.u.string.len, rec.u.string.str);
		if (rec.type != TR_SYMBOL)
			continue;
		k += (size_t)snprintf(out + k, len - k, "Y%llx/%llu/%llu:", (unsigned long long)rec.u.symbol.ip,
				      (unsigned long long)rec.u.symbol.module, (unsigned long long)rec.u.symbol.offset);
		for (uint32_t f = 0; f < rec.u.symbol.nframes && k + 512 < len; f++) {
			const struct trace_frame *fr = &rec.u.symbol.frames[f];
			k += (size_t)snprintf(out + k, len - k, "%s@%s:%u/%u,", fr->function ? fr->function : "-",
					      fr->file ? fr->file : "-", fr->line, fr->flags);
		}
		if (rec.u.symbol.ip == libc_ip && rec.u.symbol.nframes)
			snprintf(libc_fn, fnlen, "%s", rec.u.symbol.frames[rec.u.symbol.nframes - 1].function ?
							   rec.u.symbol.frames[rec.u.symbol.nframes - 1].function : "");
	}
	trace_reader_close(r);
	return k;
}

/* Resolved ahead by the thread while "the program runs", in two feeds (libc
 * logged late, as a dlopen would be), the table is the one made at the end. */
static void scenario_symbols_ahead(void)
{
	struct rec_shm shm;
	struct trace_writer *w[2];
	printf("# symbols resolved ahead\n");
	const char *path[2] = { tmp_path("symbols_end.hst"), tmp_path("symbols_ahead.hst") };
	if (rec_shm_create(&shm, 0) || trace_writer_open(&w[0], path[0], 0) || trace_writer_open(&w[1], path[1], 0)) {
		check(0, "set up");
		return;
	}
	struct self_mod self = { .target = (uint64_t)(uintptr_t)&scenario_symbols_ahead };
	struct self_mod libc = { .target = (uint64_t)(uintptr_t)&fopen };
	dl_iterate_phdr(find_self, &self);
	dl_iterate_phdr(find_self, &libc);
	struct rec_module mods[2] = { { .id = 1, .bias = self.bias, .start = self.start, .end = self.end },
				      { .id = 2, .bias = libc.bias, .start = libc.start, .end = libc.end } };
	snprintf(mods[0].path, sizeof(mods[0].path), "%s", self.path);
	snprintf(mods[1].path, sizeof(mods[1].path), "%s", libc.path);
	uint64_t ip_self = (uint64_t)(uintptr_t)&scenario_symbols_ahead + 8;
	uint64_t ip_libc = (uint64_t)(uintptr_t)&fopen + 8;
	uint32_t a = new_node(shm.h, ip_self, 0, 0);
	new_node(shm.h, ip_self + 4, a, 0);
	uint32_t first = atomic_load(&shm.h->nodes_used);
	new_node(shm.h, ip_libc, a, 0);
	uint32_t all = atomic_load(&shm.h->nodes_used);

	uint64_t nsyms[2] = { 0, 0 };
	int ret[2];
	ret[0] = rec_symbols_write(w[0], shm.h, all, mods, 2, -1, &nsyms[0]);
	struct rec_syms *s = NULL;
	ret[1] = rec_syms_start(&s, shm.h, -1);
	check(ret[1] == 0, "the thread starts (%d)", ret[1]);
	if (ret[1] == 0) {
		rec_syms_feed(s, mods, 1, first);
		for (int i = 0; i < 1000 && rec_syms_ahead(s) < 2; i++)
			sleep_ms(10);
		rec_syms_feed(s, mods, 2, all);
		for (int i = 0; i < 1000 && rec_syms_ahead(s) < 3; i++)
			sleep_ms(10);
		check_u("addresses resolved ahead, libc's after it was fed", rec_syms_ahead(s), 3);
		ret[1] = rec_syms_write(s, w[1], shm.h, all, mods, 2, &nsyms[1]);
	}
	trace_writer_close(w[0]);
	trace_writer_close(w[1]);
	check(ret[0] == 0 && ret[1] == 0 && nsyms[0] == 3 && nsyms[1] == 3, "both tables written (%d %d, %llu %llu)",
	      ret[0], ret[1], (unsigned long long)nsyms[0], (unsigned long long)nsyms[1]);
	static char text[2][16384];
	char fn[2][128] = { "", "" };
	size_t n0 = symbol_text(path[0], text[0], sizeof(text[0]), fn[0], sizeof(fn[0]), ip_libc);
	symbol_text(path[1], text[1], sizeof(text[1]), fn[1], sizeof(fn[1]), ip_libc);
	check(n0 > 0 && !strcmp(text[0], text[1]), "the same strings and symbols, ahead or at the end (%zu bytes)", n0);
	check(strstr(fn[1], "fopen") != NULL, "libc's frame is named (%s)", fn[1]);
	rec_shm_destroy(&shm);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	scenario_concurrent(0);
	scenario_concurrent(1);
	scenario_rss();
	scenario_rules();
	scenario_symbols();
	scenario_symbols_ahead();
	scenario_throughput();
	cleanup();
	return check_done();
}
