/*
 * record_proc.c: the processes of a recording. Reads the shared process
 * table (shm_layout.h) as images register, writes a TR_PROCESS for each
 * before anything names it, tells which still run, and at the end writes
 * how each one ended (TR_PROCESS_END).
 *
 * Liveness: a process runs while /proc/PID/stat shows its start time and
 * it is not a zombie (a zombie's stat also holds its exit status). An image
 * is over when a newer image of its pid registers (exec), or when
 * /proc/PID/exe no longer names its program: an exec the library could not
 * follow. That one becomes a process of its own in the trace, marked as not
 * recorded, unless a recorded image of the pid shows up after all.
 */
#include "record/record.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROC_WAIT_NS 1000000000ull /* an entry unwritten this long lost its writer */

struct rproc {
	int known;                /* in the table (or the program, or a gap we found) */
	int attached;             /* the program's entry: its library registered */
	int written;              /* TR_PROCESS written */
	int traced;               /* runs with the library */
	int pending;              /* PENDING in the table: an exec that happens unless voided */
	int ended;
	unsigned end_how;         /* enum trace_proc_end */
	uint64_t end_code, end_time;
	uint32_t pid, parent, how, flags;
	uint64_t start;           /* trace ns */
	uint64_t starttime;
	char *exe;
	char **argv;              /* NULL-terminated */
	uint32_t argc;
};

struct rec_procs {
	struct hs_shm_header *h;
	struct hs_proc *table;
	uint64_t t0;
	pid_t root;
	uint64_t start_unix_ns, interval_ns, page_size;
	struct rproc *v;          /* by table index; at the end, gaps follow */
	size_t n, cap;
	uint32_t done;            /* table entries read */
	uint64_t wait_since;
	struct rproc *gaps;       /* execs found from outside: /proc/PID/exe changed */
	size_t ngaps, capgaps;
};

static uint64_t ttime(const struct rec_procs *p, uint64_t t)
{
	return t > p->t0 ? t - p->t0 : 0;
}

static int grow_v(struct rproc **v, size_t *capp, size_t n)
{
	if (n <= *capp)
		return 0;
	size_t cap = *capp ? *capp * 2 : 64;
	while (cap < n)
		cap *= 2;
	struct rproc *nv = realloc(*v, cap * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	memset(nv + *capp, 0, (cap - *capp) * sizeof(*nv));
	*v = nv;
	*capp = cap;
	return 0;
}

static int grow(struct rec_procs *p, size_t n)
{
	return grow_v(&p->v, &p->cap, n);
}

int rec_procs_new(struct rec_procs **out, struct hs_shm_header *h, uint64_t t0, pid_t root)
{
	struct rec_procs *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->h = h;
	p->table = HS_SHM_AT(h, h->procs_off, struct hs_proc);
	p->t0 = t0;
	p->root = root;
	p->done = 1; /* entry 0 is the program's, known from the start */
	p->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	if (grow(p, 1)) {
		free(p);
		return -ENOMEM;
	}
	p->n = 1;
	p->v[0] = (struct rproc){ .known = 1, .traced = 1, .pid = (uint32_t)root, .how = TR_PROC_ROOT };
	if (root > 0) {
		/* the program completes its entry when its library attaches */
		p->table[0].pid = (uint32_t)root;
		atomic_store_explicit(&p->table[0].state, HS_PROCS_RESERVED, memory_order_release);
	}
	*out = p;
	return 0;
}

static void free_argv(struct rproc *r)
{
	for (uint32_t i = 0; r->argv && i < r->argc; i++)
		free(r->argv[i]);
	free(r->argv);
	r->argv = NULL;
}

void rec_procs_free(struct rec_procs *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].exe);
		free_argv(&p->v[i]);
	}
	for (size_t i = 0; i < p->ngaps; i++)
		free(p->gaps[i].exe);
	free(p->v);
	free(p->gaps);
	free(p);
}

/* The arguments of a table entry (NUL-separated, maybe cut). */
static int set_args(struct rproc *r, const char *buf, size_t len)
{
	uint32_t argc = 0;
	for (size_t i = 0; i < len; i++)
		argc += buf[i] == 0 || i + 1 == len;
	r->argv = calloc(argc + 1, sizeof(*r->argv));
	if (!r->argv)
		return -ENOMEM;
	size_t at = 0;
	for (uint32_t k = 0; k < argc; k++) {
		size_t l = strnlen(buf + at, len - at);
		r->argv[k] = strndup(buf + at, l);
		if (!r->argv[k])
			return -ENOMEM;
		r->argc = k + 1;
		at += l + 1;
	}
	return 0;
}

static void write_process(struct rec_procs *p, struct trace_writer *w, uint32_t i)
{
	struct rproc *r = &p->v[i];
	tw_begin(w, TR_PROCESS);
	tw_u(w, i);
	tw_u(w, r->pid);
	tw_u(w, r->parent);
	tw_u(w, r->how);
	tw_u(w, r->flags);
	tw_u(w, r->start);
	tw_u(w, p->start_unix_ns);
	tw_u(w, p->page_size);
	tw_u(w, p->interval_ns);
	tw_str(w, r->exe ? r->exe : "");
	tw_u(w, r->argc);
	for (uint32_t k = 0; k < r->argc; k++)
		tw_str(w, r->argv[k]);
	tw_end(w);
	r->written = 1;
}

int rec_procs_root(struct rec_procs *p, struct trace_writer *w, uint64_t start_unix_ns, uint64_t interval_ns,
		   const char *exe, char **argv)
{
	struct rproc *r = &p->v[0];
	p->start_unix_ns = start_unix_ns;
	p->interval_ns = interval_ns;
	r->exe = strdup(exe);
	uint32_t argc = 0;
	while (argv[argc])
		argc++;
	r->argv = calloc(argc + 1, sizeof(*r->argv));
	if (!r->exe || !r->argv)
		return -ENOMEM;
	for (uint32_t k = 0; k < argc; k++) {
		if (!(r->argv[k] = strdup(argv[k])))
			return -ENOMEM;
		r->argc = k + 1;
	}
	write_process(p, w, 0);
	return 0;
}

static void end(struct rproc *r, unsigned how, uint64_t code, uint64_t t)
{
	if (r->ended)
		return;
	r->ended = 1;
	r->end_how = how;
	r->end_code = code;
	r->end_time = t;
}

/* Takes entry i of the table into v[i]; its TR_PROCESS is written now
 * unless it is an exec still in progress (PENDING). */
static int take(struct rec_procs *p, struct trace_writer *w, uint32_t i, const struct hs_proc *e, uint32_t state)
{
	struct rproc *r = &p->v[i];
	int root = i == 0;
	r->known = 1;
	r->pid = e->pid;
	r->starttime = e->starttime;
	r->flags = e->flags & (HS_PROCF_UNTRACED | HS_PROCF_STATIC | HS_PROCF_SETID | HS_PROCF_ARGV_CUT);
	r->traced = !(e->flags & HS_PROCF_UNTRACED);
	if (root) {
		/* the recorder named it already: keep its command line, learn the rest */
		r->attached = 1;
		free(r->exe);
		r->exe = strndup(e->exe, sizeof(e->exe) - 1);
		return r->exe ? 0 : -ENOMEM;
	}
	r->parent = e->parent <= i ? e->parent : 0; /* a parent registered first */
	r->how = e->how <= TR_PROC_SPAWN ? e->how : TR_PROC_SPAWN;
	r->start = ttime(p, e->start);
	r->exe = strndup(e->exe, sizeof(e->exe) - 1);
	if (!r->exe || set_args(r, e->cmdline, e->cmdline_len < sizeof(e->cmdline) ? e->cmdline_len : sizeof(e->cmdline)))
		return -ENOMEM;
	if (state == HS_PROCS_PENDING) {
		r->pending = 1;
		return 0;
	}
	/* an exec'd image ends the one it replaced */
	if (r->how == TR_PROC_EXEC && r->parent && r->traced)
		end(&p->v[r->parent - 1], TR_PEND_EXEC, 0, r->start);
	if (r->how == TR_PROC_EXEC && r->parent && !r->traced)
		r->pending = 1; /* same: only at the end, once it cannot be voided */
	if (!r->pending)
		write_process(p, w, i);
	return 0;
}

int rec_procs_scan(struct rec_procs *p, struct trace_writer *w, int final)
{
	uint32_t n = atomic_load_explicit(&p->h->nprocs, memory_order_acquire);
	if (n > HS_MAX_PROCS)
		n = HS_MAX_PROCS;
	/* the program's own entry: completed when it attaches */
	struct hs_proc *e0 = &p->table[0];
	if (!p->v[0].attached && atomic_load_explicit(&e0->state, memory_order_acquire) == HS_PROCS_READY) {
		int ret = take(p, w, 0, e0, HS_PROCS_READY);
		if (ret)
			return ret;
	}
	if (n > p->n) {
		if (grow(p, n))
			return -ENOMEM;
		p->n = n;
	}
	while (p->done < n) {
		uint32_t i = p->done;
		struct hs_proc *e = &p->table[i];
		uint32_t state = atomic_load_explicit(&e->state, memory_order_acquire);
		if (state == HS_PROCS_EMPTY && !final) {
			/* being written: wait, unless its writer died */
			uint64_t now = rec_clock_now();
			if (!p->wait_since)
				p->wait_since = now;
			if (now - p->wait_since < PROC_WAIT_NS)
				break;
		}
		p->wait_since = 0;
		p->done++;
		if (state == HS_PROCS_READY || state == HS_PROCS_PENDING) {
			int ret = take(p, w, i, e, state);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int rec_procs_need(struct rec_procs *p, struct trace_writer *w, uint32_t i, uint32_t pid)
{
	if (i < p->n && p->v[i].written)
		return 0;
	if (grow(p, (size_t)i + 1))
		return -ENOMEM;
	if (i >= p->n)
		p->n = i + 1;
	/* named before its table entry was read (a producer that does not
	 * follow the protocol): what we know */
	struct rproc *r = &p->v[i];
	r->known = 1;
	r->traced = 1;
	if (!r->pid)
		r->pid = pid;
	if (i && !r->how)
		r->how = TR_PROC_SPAWN;
	write_process(p, w, i);
	return 0;
}

/* ---- liveness ---------------------------------------------------------- */

/* /proc/PID/stat: state, start time and (for a zombie, Linux 3.5+) exit
 * status. Returns 0, or -1 when there is no such process. */
static int read_stat(uint32_t pid, char *state, uint64_t *starttime, int *exit_code)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -1;
	*state = p[2];
	*exit_code = -1;
	*starttime = 0;
	/* fields from 3 (state) on, space separated */
	int field = 3;
	for (char *q = p + 2; *q; field++) {
		char *end = strchr(q, ' ');
		if (field == 22)
			*starttime = strtoull(q, NULL, 10);
		else if (field == 52)
			*exit_code = atoi(q);
		if (!end)
			break;
		q = end + 1;
	}
	return 0;
}

static int exe_of(uint32_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	ssize_t n = readlink(path, buf, len - 1);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

/* The status a recorded parent's wait saw, if any. */
static int table_status(const struct rec_procs *p, uint32_t i, int *st)
{
	if (i >= HS_MAX_PROCS || i >= atomic_load_explicit(&p->h->nprocs, memory_order_acquire))
		return 0;
	const struct hs_proc *e = &p->table[i];
	if (!atomic_load_explicit(&e->wstatus_set, memory_order_acquire))
		return 0;
	*st = e->wstatus;
	return 1;
}

static void end_with_status(struct rproc *r, int st, uint64_t t)
{
	if (WIFEXITED(st))
		end(r, TR_PEND_EXITED, (uint64_t)WEXITSTATUS(st), t);
	else if (WIFSIGNALED(st))
		end(r, TR_PEND_SIGNALED, (uint64_t)WTERMSIG(st), t);
	else
		end(r, TR_PEND_UNKNOWN, 0, t);
}

/* An exec nobody registered: a process of its own, known from outside. */
static int add_gap(struct rec_procs *p, uint32_t i, const char *exe, uint64_t t)
{
	if (grow_v(&p->gaps, &p->capgaps, p->ngaps + 1))
		return -ENOMEM;
	struct rproc *g = &p->gaps[p->ngaps];
	*g = (struct rproc){ .known = 1, .pid = p->v[i].pid, .parent = i + 1, .how = TR_PROC_EXEC,
			     .flags = TR_PROC_UNTRACED, .start = t, .pending = 1 };
	g->exe = strdup(exe);
	if (!g->exe)
		return -ENOMEM;
	g->starttime = p->v[i].starttime;
	p->ngaps++;
	return 0;
}

static int is_void(const struct rec_procs *p, const struct rproc *r)
{
	size_t i = (size_t)(r - p->v);
	return r >= p->v && i < p->n && i < HS_MAX_PROCS && i < atomic_load(&p->h->nprocs) &&
	       atomic_load(&p->table[i].state) == HS_PROCS_VOID;
}

/* Whether r still runs; ends it when not. (The program's own status, from
 * the recorder's wait, replaces what is found here.) */
static void check_one(struct rec_procs *p, struct rproc *r, int64_t index, uint64_t t)
{
	if (!r->known || r->ended || !r->pid || is_void(p, r))
		return;
	char state;
	uint64_t st_time;
	int code, st;
	int unreadable = read_stat(r->pid, &state, &st_time, &code) < 0;
	if (unreadable && (kill((pid_t)r->pid, 0) == 0 || errno == EPERM))
		return; /* alive, only /proc will not tell (hidepid): its rings must stay its own */
	if (unreadable || (r->starttime && st_time && st_time != r->starttime)) {
		/* gone (reaped) or its pid reused */
		if (index >= 0 && table_status(p, (uint32_t)index, &st))
			end_with_status(r, st, t);
		else
			end(r, TR_PEND_UNKNOWN, 0, t);
		return;
	}
	if (state == 'Z' || state == 'X') {
		if (index >= 0 && table_status(p, (uint32_t)index, &st))
			end_with_status(r, st, t);
		else if (code >= 0)
			end_with_status(r, code, t);
		else
			end(r, TR_PEND_UNKNOWN, 0, t);
		return;
	}
	/* the program's exe is the recorder's name for it until it attaches */
	if (!r->traced || !r->exe || r->pending || index < 0 || (index == 0 && !r->attached))
		return;
	char exe[PATH_MAX];
	size_t cap = sizeof(((struct hs_proc *)0)->exe) - 1;
	if (exe_of(r->pid, exe, sizeof(exe)) == 0 && strcmp(exe, r->exe) &&
	    !(strlen(r->exe) == cap && !strncmp(exe, r->exe, cap))) {
		/* another program runs in it and did not register (yet) */
		end(r, TR_PEND_EXEC, 0, t);
		add_gap(p, (uint32_t)index, exe, t);
	}
}

void rec_procs_check(struct rec_procs *p, uint64_t now_ns)
{
	uint64_t t = ttime(p, now_ns);
	for (size_t i = 0; i < p->n; i++)
		check_one(p, &p->v[i], (int64_t)i, t);
	for (size_t i = 0; i < p->ngaps; i++)
		check_one(p, &p->gaps[i], -1, t);
}

int rec_procs_ended(const struct rec_procs *p, uint32_t i)
{
	return i < p->n && p->v[i].ended;
}

/* The latest image of pid: the one that is running, or that exited. */
static struct rproc *latest(struct rec_procs *p, uint32_t pid)
{
	struct rproc *best = NULL;
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].known && p->v[i].pid == pid && !is_void(p, &p->v[i]) && (!best || p->v[i].start >= best->start))
			best = &p->v[i];
	for (size_t i = 0; i < p->ngaps; i++)
		if (p->gaps[i].known && p->gaps[i].pid == pid && (!best || p->gaps[i].start >= best->start))
			best = &p->gaps[i];
	return best;
}

void rec_procs_root_exit(struct rec_procs *p, int wstatus, uint64_t now_ns)
{
	struct rproc *r = latest(p, (uint32_t)p->root);
	if (!r)
		r = &p->v[0];
	r->ended = 0;
	end_with_status(r, wstatus, ttime(p, now_ns));
}

size_t rec_procs_running(const struct rec_procs *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += p->v[i].known && !p->v[i].ended && !p->v[i].pending && p->v[i].traced;
	return n;
}

size_t rec_procs_count(const struct rec_procs *p)
{
	return p->n;
}

int rec_procs_live(const struct rec_procs *p, uint32_t i, uint32_t *pid)
{
	if (i >= p->n)
		return 0;
	const struct rproc *r = &p->v[i];
	*pid = r->pid;
	return r->known && r->traced && !r->ended && !r->pending && r->pid;
}

/* A gap found from outside is not one when the table has an image of the
 * same pid newer than the one it replaced: the library attached in time, or
 * the exec hook noted the gap itself. */
static int superseded(const struct rec_procs *p, const struct rproc *g)
{
	const struct rproc *old = &p->v[g->parent - 1];
	for (size_t i = 0; i < p->n; i++) {
		const struct rproc *r = &p->v[i];
		if (r != old && r->known && !is_void(p, r) && r->pid == g->pid && r->start >= old->start &&
		    (!g->starttime || !r->starttime || r->starttime == g->starttime))
			return 1;
	}
	return 0;
}

int rec_procs_finish(struct rec_procs *p, struct trace_writer *w, uint64_t now_ns, size_t *running_out)
{
	uint64_t t = ttime(p, now_ns);
	size_t running = 0, table_n = p->n;
	rec_procs_check(p, now_ns);
	/* the gaps found from outside take the indices after the table's */
	for (size_t k = 0; k < p->ngaps; k++) {
		if (superseded(p, &p->gaps[k])) {
			free(p->gaps[k].exe);
			continue;
		}
		if (grow(p, p->n + 1))
			return -ENOMEM;
		p->v[p->n++] = p->gaps[k];
	}
	p->ngaps = 0;
	for (size_t i = 0; i < p->n; i++) {
		struct rproc *r = &p->v[i];
		if (!r->known)
			continue;
		if (r->pending) {
			/* an exec that could not be followed: real unless the call failed */
			if (i < table_n && is_void(p, r)) {
				r->known = 0;
				continue;
			}
			if (r->how == TR_PROC_EXEC && r->parent) {
				/* whatever ended it as seen from outside, it was this exec */
				struct rproc *old = &p->v[r->parent - 1];
				old->ended = 0;
				end(old, TR_PEND_EXEC, 0, r->start);
			}
			write_process(p, w, (uint32_t)i);
		}
		if (!r->written)
			write_process(p, w, (uint32_t)i);
		int st;
		if (!r->ended && i < table_n && table_status(p, (uint32_t)i, &st))
			end_with_status(r, st, t);
		if (!r->ended) {
			end(r, TR_PEND_RUNNING, 0, t);
			running += r->traced;
		}
	}
	*running_out = running;
	for (size_t i = 0; i < p->n; i++) {
		struct rproc *r = &p->v[i];
		if (!r->known)
			continue;
		tw_begin(w, TR_PROCESS_END);
		tw_u(w, i);
		tw_u(w, r->end_time);
		tw_u(w, r->end_how);
		tw_u(w, r->end_code);
		tw_end(w);
	}
	return 0;
}

size_t rec_procs_untraced(const struct rec_procs *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += p->v[i].known && !p->v[i].traced;
	return n;
}
