/*
 * record.c: one recording from start to end. Checks and spawns the program,
 * creates the trace named after its pid, drains its events while it runs,
 * then drains what is left, appends the symbols and the end record.
 *
 * When children are followed, the recording goes on after the program
 * exits while processes of its tree still run, for at most the grace time
 * (daemons): the trace says which were still running when it stopped.
 */
#include "record/record.h"
#include "symbols/symcache.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUSY_ROUND 1024                 /* events in a round that mean: go again at once */
#define IDLE_SLEEP_NS 1000000L          /* between rounds that found little */
#define POLL_NS 1000000ull              /* how often to ask whether the child ended */
#define FLUSH_NS 1000000000ull          /* a killed recorder loses at most this much */
#define TERM_GRACE_NS 2000000000ull     /* after a SIGTERM, wait this long for the program */
#define TREE_CHECK_NS 10000000ull       /* after the program, how often the others are checked */
#define TREE_SETTLE_NS 50000000ull      /* and for at least this long, once the program has
					   started a child: one forked just before the program
					   exited registers in its own time */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char *default_name(const char *prog, pid_t pid)
{
	const char *base = strrchr(prog, '/');
	base = base ? base + 1 : prog;
	size_t n = strlen(base) + 48;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "heapscope.%s.%d.hst", base, (int)pid);
	return s;
}

static void write_end(struct trace_writer *w, uint64_t t, unsigned kind, uint64_t code, uint64_t events,
		      uint64_t dropped, uint64_t truncated, uint64_t flags, uint64_t lost)
{
	tw_begin(w, TR_END);
	tw_time(w, t);
	tw_u(w, kind);
	tw_u(w, code);
	tw_u(w, events);
	tw_u(w, dropped);
	tw_u(w, truncated);
	tw_u(w, flags);
	tw_u(w, lost);
	tw_end(w);
}

static void human_size(char *buf, size_t len, uint64_t n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
}

/* The path as a shell word, for the hint the user copies. */
static void shell_word(char *buf, size_t len, const char *s)
{
	if (!s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+.,/:=@%")]) {
		snprintf(buf, len, "%s", s);
		return;
	}
	size_t k = 0;
	if (k + 1 < len)
		buf[k++] = '\'';
	for (; *s && k + 5 < len; s++) {
		if (*s == '\'') {
			memcpy(buf + k, "'\\''", 4);
			k += 4;
		} else {
			buf[k++] = *s;
		}
	}
	if (k + 1 < len)
		buf[k++] = '\'';
	buf[k] = 0;
}

static const char *plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

int rec_record(const struct rec_options *o)
{
	char *prog = NULL, *preload = NULL, *name = NULL;
	struct rec_shm shm = { .fd = -1 };
	struct rec_child child = { .pid = 0, .go_fd = -1, .err_fd = -1, .pidfd = -1 };
	struct trace_writer *w = NULL;
	struct rec_drain *d = NULL;
	struct rec_syms *syms = NULL;
	int status = 1, ret, write_failed = 0, cache_dir = -1;

	/* One malloc arena for the recorder's threads: an arena of its own
	 * made the symbol thread fault in fresh pages for all the debug info
	 * (+14 ms of CPU on the seed CSV's first run). */
	mallopt(M_ARENA_MAX, 1);
	/* first: the program's library waits until CAL_NS after this */
	if (rec_clock_start(getenv("HEAPSCOPE_CLOCK")))
		return 2;
	ret = rec_resolve_program(o->argv[0], &prog);
	if (ret)
		return ret == -ENOENT ? 127 : 126; /* the shell's codes for not found / cannot run */
	if (rec_find_preload(&preload) ||
	    rec_shm_create(&shm, (o->no_freeres ? HS_OPT_NO_FREERES : 0) | (o->no_follow ? 0 : HS_OPT_FOLLOW)))
		goto out;

	shm.h->sample_ns = o->interval_ns;
	rec_clock_share(&shm.h->clock);
	if (rec_ring_start(shm.h, getenv("HEAPSCOPE_RING"))) {
		status = 2;
		goto out;
	}
	uint64_t t0 = rec_clock_now(), start_unix = clock_ns(CLOCK_REALTIME);
	rec_signals_setup();
	if (rec_spawn(&child, prog, o->argv, preload, shm.env))
		goto out;
	name = o->output ? strdup(o->output) : default_name(prog, child.pid);
	ret = name ? trace_writer_open(&w, name, o->force) : -ENOMEM;
	if (!ret)
		ret = rec_drain_new(&d, shm.h, w, t0, child.pid);
	if (!ret)
		rec_drain_set_shm_fd(d, shm.fd);
	if (ret) {
		rec_spawn_release(&child, 1);
		if (w) {
			trace_writer_close(w);
			w = NULL;
			unlink(name);
		}
		if (ret == -EEXIST && o->force)
			rec_error("%s exists and is not a regular file; --force replaces only those, name another with -o",
				  name);
		else if (ret == -EEXIST)
			rec_error("%s already exists; remove it, replace it with --force, or name another with -o", name);
		else
			rec_error("cannot create %s: %s; check the directory, or name another file with -o",
				  name ? name : "the trace", strerror(-ret));
		goto out;
	}
	ret = rec_drain_program(d, start_unix, o->interval_ns, prog, o->argv);
	if (ret) {
		rec_spawn_release(&child, 1);
		rec_error("out of memory");
		goto out;
	}
	if (!o->output)
		rec_error("recording into %s", name);
	/* The clock is final before the program runs: its library would wait
	 * for it, and on a busy machine the recorder may get a CPU again only
	 * once the program sleeps. The memfd stays open: every process of the
	 * tree opens it through /proc. */
	rec_clock_finish(&shm.h->clock);
	ret = rec_spawn_release(&child, 0);
	if (ret) {
		rec_error("cannot execute %s: %s; check the program (and a script's '#!' interpreter)", prog,
			  strerror(-ret));
		trace_writer_close(w);
		w = NULL;
		unlink(name); /* a trace of nothing would only mislead */
		status = 127;
		goto out;
	}

	/* one sample at once: a program shorter than the first turn of the
	 * loop still has one */
	rec_drain_sample(d);
	/* symbols ahead while it runs; without the thread, all at the end */
	cache_dir = o->no_cache ? -1 : symcache_open_dir();
	if (rec_syms_start(&syms, shm.h, cache_dir))
		syms = NULL;
	int reaped = 0, interrupted = 0, by_term = 0, wstatus = 0;
	uint64_t now = rec_drain_now(d), next_sample = now + o->interval_ns, next_flush = now + FLUSH_NS;
	uint64_t next_poll = now;
	uint64_t term_deadline = 0, reaped_at = 0, next_tree_check = 0;
	for (;;) {
		now = rec_drain_now(d);
		if (now >= next_poll && !reaped) {
			int r = rec_child_poll(&child, &wstatus);
			next_poll = now + POLL_NS;
			if (r > 0) {
				reaped = 1;
				reaped_at = now;
				rec_drain_program_exit(d, wstatus);
				if (o->no_follow)
					break;
			}
			if (r < 0) {
				rec_error("lost track of %s (pid %d): %s; the trace ends here", prog, (int)child.pid,
					  strerror(-r));
				break;
			}
		}
		/* the program is gone: wait for the rest of its tree, for a while */
		if (reaped && now >= next_tree_check) {
			next_tree_check = now + TREE_CHECK_NS;
			uint64_t settle = atomic_load(&shm.h->starts) ? TREE_SETTLE_NS : 0;
			if ((!rec_drain_running(d) && now - reaped_at >= settle) || now - reaped_at >= o->grace_ns)
				break;
		}
		unsigned terms = rec_signals_term_count();
		if (terms) {
			/* forwarded: give the program a moment to end by itself */
			if (!term_deadline)
				term_deadline = now + TERM_GRACE_NS;
			if (terms > 1 || now >= term_deadline) {
				interrupted = by_term = 1;
				break;
			}
		}
		if (now >= next_sample) {
			rec_drain_sample(d);
			next_sample += o->interval_ns;
			if (next_sample <= now)
				next_sample = now + o->interval_ns;
		}
		long moved = rec_drain_round(d, 0);
		size_t nmods;
		const struct rec_module *mods = rec_drain_modules(d, &nmods);
		rec_syms_feed(syms, mods, nmods, rec_drain_nodes(d));
		if (moved < 0 && moved != -ENOMEM) {
			moved = 0; /* the writer's error: reported below, keep the program going */
		} else if (moved < 0) {
			rec_error("out of memory while recording; the trace ends here");
			interrupted = 1;
			break;
		}
		if (now >= next_flush) {
			next_flush = now + FLUSH_NS;
			int err = trace_writer_push(w);
			if (err && !write_failed) {
				write_failed = 1;
				rec_error("cannot write %s: %s; the trace will be incomplete", name, strerror(-err));
			}
		}
		if (moved < BUSY_ROUND && rec_child_sleep(&child, IDLE_SLEEP_NS))
			next_poll = 0; /* the program ended: reap it now */
	}

	/* The program is gone (or we stop): everything left, in time order.
	 * The run ends now, not after the symbols: that is its length. Each
	 * part is handed to the writer's thread as it is done, so that it is
	 * compressed while the next is made. */
	uint64_t end_time = rec_drain_now(d);
	trace_writer_push(w);
	ret = (int)rec_drain_round(d, 1);
	if (ret == -ENOMEM)
		rec_error("out of memory while writing the last events; the trace is incomplete");
	if (rec_drain_finish(d) == -ENOMEM)
		rec_error("out of memory while writing how the processes ended; the trace is incomplete");
	trace_writer_push(w);
	uint64_t nsyms = 0;
	size_t nmods = 0;
	const struct rec_module *mods = rec_drain_modules(d, &nmods);
	if (syms)
		ret = rec_syms_write(syms, w, shm.h, rec_drain_nodes(d), mods, nmods, &nsyms);
	else
		ret = rec_symbols_write(w, shm.h, rec_drain_nodes(d), mods, nmods, cache_dir, &nsyms);
	syms = NULL;
	if (ret)
		rec_error("cannot symbolize: %s; the trace has addresses only", strerror(-ret));

	struct rec_drain_stats st;
	rec_drain_get_stats(d, &st);
	unsigned kind = TRACE_EXIT_UNKNOWN;
	uint64_t code = 0, flags = 0;
	if (reaped && WIFEXITED(wstatus)) {
		kind = TRACE_EXITED;
		code = (uint64_t)WEXITSTATUS(wstatus);
		status = WEXITSTATUS(wstatus);
	} else if (reaped && WIFSIGNALED(wstatus)) {
		kind = TRACE_SIGNALED;
		code = (uint64_t)WTERMSIG(wstatus);
		status = 128 + WTERMSIG(wstatus);
	} else {
		flags |= TRACE_END_RECORDER_INTERRUPTED;
		status = by_term ? 128 + SIGTERM : 1;
	}
	if (st.running)
		flags |= TRACE_END_PROCESSES_RUNNING;
	uint64_t dropped = atomic_load(&shm.h->dropped) + st.skipped;
	write_end(w, end_time, kind, code, st.events, dropped, atomic_load(&shm.h->truncated), flags,
		  atomic_load(&shm.h->procs_lost));
	/* nothing reads the shared memory any more: unmapped while the last
	 * block is compressed */
	trace_writer_push(w);
	rec_shm_destroy(&shm);
	ret = trace_writer_close(w);
	w = NULL;
	if (ret || write_failed) {
		if (!write_failed)
			rec_error("cannot write %s: %s; the trace is incomplete", name, strerror(-ret));
		status = 1;
		goto out;
	}

	struct stat sb;
	char size[32], word[4200];
	human_size(size, sizeof(size), stat(name, &sb) == 0 ? (uint64_t)sb.st_size : 0);
	shell_word(word, sizeof(word), name);
	if (interrupted && !reaped)
		rec_error("stopped before %s ended (pid %d still runs); the trace ends there", prog, (int)child.pid);
	else if (st.running)
		rec_error("%llu process%s of the program still ran %.1f s after it exited; recorded up to then",
			  (unsigned long long)st.running, st.running == 1 ? "" : "es", (double)o->grace_ns / 1e9);
	if (st.untraced)
		rec_error("%llu process%s ran without the library (static or set-id programs): not recorded; 'heapscope report' names them",
			  (unsigned long long)st.untraced, st.untraced == 1 ? "" : "es");
	if (dropped)
		rec_error("%llu events could not be recorded; totals are short by that many",
			  (unsigned long long)dropped);
	char procs[64] = "";
	if (st.processes > 1)
		snprintf(procs, sizeof(procs), "%llu processes, ", (unsigned long long)st.processes);
	rec_error("%llu event%s from %s%llu thread%s, %llu stack node%s, %llu symbol%s: %s in %s; run 'heapscope report %s'",
		  (unsigned long long)st.events, plural(st.events), procs, (unsigned long long)st.threads,
		  plural(st.threads), (unsigned long long)st.stacks, plural(st.stacks), (unsigned long long)nsyms,
		  plural(nsyms), size, name, word);
out:
	rec_syms_free(syms);
	if (cache_dir >= 0)
		close(cache_dir);
	rec_child_close(&child);
	if (w)
		trace_writer_close(w);
	rec_drain_free(d);
	rec_shm_destroy(&shm);
	free(name);
	free(prog);
	free(preload);
	return status;
}
