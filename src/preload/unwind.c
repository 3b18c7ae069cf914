/*
 * unwind.c: the stack walk of pl_stack_capture. libunwind's cached walk
 * costs 5-10 ns a frame; most x86-64 code needs only three numbers per
 * instruction address (the CFA as RSP or RBP plus k, the return address at
 * CFA-8, RBP saved at CFA+k or unchanged), so this walk keeps those in a
 * cache, and each thread the rules of its last two stacks by where they
 * were on the stack: a frame one of them shared costs ~2 ns, one from the
 * cache ~6 ns. An address whose rule is anything
 * else (eh_frame.c says complex) sends the whole capture back to
 * unw_backtrace, which then gives today's stack: the walk returns exactly
 * what unw_backtrace would, return addresses as they are, or nothing.
 *
 * The cache: one open-addressing table (address -> rule word) that every
 * thread reads without a lock. Fills are rare (each address once), made
 * under a try-lock that never waits (a busy lock: the rule is used without
 * being stored) and a sequence count: a reader checks the count before and
 * after its walk and falls back when another thread wrote in between, so
 * it never uses a torn entry. A dlclose, or a munmap over code whose rules
 * are cached, bumps `gen`; the table is cleared before it is used again.
 * Rules are parsed inside dl_iterate_phdr's callback, so the object cannot
 * be unloaded under the parser.
 */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "eh_frame.h"
#include "preload.h"

/* A rule in one word; 0 is an empty slot. */
#define K_SIMPLE 1u
#define K_LAST 2u
#define K_COMPLEX 3u
#define K_MASK 3u
#define F_CFA_RBP 4u
#define F_RBP_SAVED 8u
#define WHY_SHIFT 8   /* enum ehf_why of a complex rule, for the counters */

#define TABLE_MIN_BITS 10
#define TABLE_MAX_BITS 20
#define MAX_PROBES 64
#define STACK_SPAN (1ull << 30)  /* a stack bound farther than this is not believed */
#define FRAME_SPAN (1ull << 24)  /* nor a frame larger than this */
#define CODE_RANGES 64

struct slot {
	_Atomic uint64_t ip, rule;
};

struct table {
	uint64_t mask;
	uint64_t used;
	_Atomic uint64_t gen;  /* the unload generation its entries belong to */
	struct slot s[];
};

static _Atomic(struct table *) table;
static _Atomic uint32_t seq;        /* odd while a fill writes */
static _Atomic uint32_t fill_lock;
static _Atomic uint32_t unloading;  /* dlclose or munmap of code under way */
static _Atomic uint64_t gen = 1;    /* bumped by each of them */

/* Text segments that have rules in the cache: a munmap over one of them
 * invalidates. More than CODE_RANGES of them: any munmap does. */
static struct {
	_Atomic uint64_t lo, hi;
} code[CODE_RANGES];
static _Atomic uint32_t ncode;

int pl_unwind_mode = PL_UNWIND_FAST;
static int stats;

/* HEAPSCOPE_UNWIND_STATS: counted only when asked for. */
enum { C_WALKED, C_COMPLEX, C_STACK, C_CACHE, C_UNLOADING, C_FILLED, C_PARSED_COMPLEX, C_CHECKED, C_DIFFER, C_N };
static _Atomic uint64_t counters[C_N];

static inline void count(int c)
{
	if (__builtin_expect(stats, 0))
		atomic_fetch_add_explicit(&counters[c], 1, memory_order_relaxed);
}

/* The rules of this thread's last two walks, by the stack address each
 * return address was read from: consecutive stacks share most frames, their
 * outer ones at the same addresses even when the inner part is deeper or
 * shallower, and a program's allocations often alternate between a few
 * stacks. A hit costs no hash and no table load on the walk's chain of
 * dependent loads (the walk merges its addresses, which only grow, with
 * each set's). A rule depends on its return address alone, so a hit is an
 * equal return address, and right while `gen` has not moved. Three sets:
 * the last two read, the third written; each ends with a sentinel. */
#define MEMO 64
#define MEMO_END UINT64_MAX
struct memo_entry {
	uint64_t at, ra, rule;
};
struct memo_set {
	struct memo_entry e[MEMO + 1];
};
static __thread struct {
	uint64_t gen;        /* the sets' entries belong to it */
	unsigned last;       /* the set the last walk wrote; the one before it is (last + 2) % 3 */
	struct memo_set s[3];
} memo __attribute__((tls_model("initial-exec")));

/* The highest address this thread's frames may be read at: its TCB for a
 * thread glibc made (the stack block ends just below it), the initial stack
 * pointer for the main thread; 1 when neither holds (always fall back). */
static __thread uint64_t stack_top __attribute__((tls_model("initial-exec")));
extern void *__libc_stack_end;

static uint64_t find_top(uint64_t sp)
{
	uint64_t self = (uint64_t)pthread_self(), end = (uint64_t)(uintptr_t)__libc_stack_end;
	if (sp < self && self - sp < STACK_SPAN)
		return self;
	if (sp < end && end - sp < STACK_SPAN)
		return end;
	return 1;
}

static inline uint64_t hash(uint64_t ip)
{
	return (ip * 0x9E3779B97F4A7C15ull) >> 32;
}

static inline uint64_t lookup(const struct table *tab, uint64_t ip)
{
	uint64_t i = hash(ip) & tab->mask;
	for (unsigned probes = 0; probes < MAX_PROBES; probes++, i = (i + 1) & tab->mask) {
		uint64_t k = atomic_load_explicit(&tab->s[i].ip, memory_order_relaxed);
		if (k == ip)
			return atomic_load_explicit(&tab->s[i].rule, memory_order_relaxed);
		if (!k)
			break;
	}
	return 0;
}

static struct table *table_new(unsigned bits)
{
	size_t size = sizeof(struct table) + ((size_t)1 << bits) * sizeof(struct slot);
	/* the raw call: our own mmap hook would record it as the program's */
	void *p = (void *)syscall(SYS_mmap, NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	struct table *t = p;
	t->mask = ((uint64_t)1 << bits) - 1;
	return t;
}

static void insert(struct table *tab, uint64_t ip, uint64_t rule)
{
	uint64_t i = hash(ip) & tab->mask;
	for (unsigned probes = 0; probes < MAX_PROBES; probes++, i = (i + 1) & tab->mask) {
		uint64_t k = atomic_load_explicit(&tab->s[i].ip, memory_order_relaxed);
		if (k && k != ip)
			continue;
		atomic_store_explicit(&tab->s[i].rule, rule, memory_order_relaxed);
		atomic_store_explicit(&tab->s[i].ip, ip, memory_order_relaxed);
		if (!k)
			tab->used++;
		return;
	}
}

/* ---- filling: under the fork handshake, rarely ----------------------- */

struct find {
	uint64_t pc, rule, text_lo, text_hi;
};

static uint64_t encode(const struct ehf_rule *r)
{
	if (r->kind == EHF_LAST)
		return K_LAST;
	if (r->kind != EHF_SIMPLE)
		return K_COMPLEX | (uint64_t)r->why << WHY_SHIFT;
	return K_SIMPLE | (r->cfa_rbp ? F_CFA_RBP : 0) | (r->rbp_saved ? F_RBP_SAVED : 0) |
	       (uint64_t)(uint16_t)(int16_t)r->rbp_off << 16 | (uint64_t)(uint32_t)r->cfa_off << 32;
}

/* The object holding pc: its rule at pc, parsed while the loader's list
 * (and so the object) cannot change. */
static int find_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct find *f = arg;
	const ElfW(Phdr) *text = NULL, *hdr = NULL;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t start = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && f->pc >= start && f->pc - start < ph->p_memsz)
			text = ph;
		else if (ph->p_type == PT_GNU_EH_FRAME)
			hdr = ph;
	}
	if (!text)
		return 0;
	f->text_lo = info->dlpi_addr + text->p_vaddr;
	f->text_hi = f->text_lo + text->p_memsz;
	f->rule = K_COMPLEX | (uint64_t)EHF_NO_HDR << WHY_SHIFT;
	if (!hdr)
		return 1;
	struct ehf_obj o = { info->dlpi_addr + hdr->p_vaddr, info->dlpi_addr + hdr->p_vaddr + hdr->p_memsz, 0, 0 };
	/* .eh_frame is read within the segment that holds the header */
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t start = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_R) && o.hdr >= start && o.hdr - start < ph->p_memsz) {
			o.lo = start;
			o.hi = start + ph->p_memsz;
		}
	}
	if (o.hi && o.hdr_end <= o.hi) {
		struct ehf_rule r;
		ehf_rule_at(&o, f->pc, &r);
		f->rule = encode(&r);
	}
	return 1;
}

static void note_code(uint64_t lo, uint64_t hi)
{
	uint32_t n = atomic_load_explicit(&ncode, memory_order_relaxed);
	for (uint32_t i = 0; i < n && i < CODE_RANGES; i++)
		if (atomic_load_explicit(&code[i].lo, memory_order_relaxed) == lo &&
		    atomic_load_explicit(&code[i].hi, memory_order_relaxed) == hi)
			return;
	if (n < CODE_RANGES) {
		atomic_store_explicit(&code[n].lo, lo, memory_order_relaxed);
		atomic_store_explicit(&code[n].hi, hi, memory_order_relaxed);
	}
	atomic_store_explicit(&ncode, n + 1, memory_order_release);
}

/* One walk's view of the cache. */
struct view {
	struct hs_ring *ring;
	_Atomic unsigned *busy;  /* the fork handshake, once entered */
	struct table *tab;
	uint32_t seq;            /* the count the walk started under, plus its own fills */
	uint64_t gen;
	int usable;              /* tab's entries belong to gen */
	int torn;                /* another thread wrote meanwhile: the walk is void */
};

/* Stores rule unless the lock is busy or an unload is under way. */
static void store(struct view *v, uint64_t ip, uint64_t rule, uint64_t lo, uint64_t hi)
{
	uint32_t free = 0;
	if (!atomic_compare_exchange_strong_explicit(&fill_lock, &free, 1, memory_order_acquire, memory_order_relaxed))
		return;
	if (atomic_load_explicit(&seq, memory_order_relaxed) != v->seq) {
		v->torn = 1;
		goto out;
	}
	if (atomic_load(&unloading) || atomic_load(&gen) != v->gen)
		goto out;
	struct table *tab = atomic_load_explicit(&table, memory_order_relaxed), *grown = NULL;
	int clear = !tab || atomic_load_explicit(&tab->gen, memory_order_relaxed) != v->gen;
	if (tab && !clear && tab->used >= (tab->mask + 1) / 2) {
		unsigned bits = 0;
		while ((1ull << bits) <= tab->mask)
			bits++;
		if (bits < TABLE_MAX_BITS)
			grown = table_new(bits + 1);
		clear = !grown;
	}
	if (!tab && !(tab = grown = table_new(TABLE_MIN_BITS)))
		goto out;
	atomic_store_explicit(&seq, v->seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	if (grown && grown != tab) {
		for (uint64_t i = 0; i <= tab->mask; i++) {
			uint64_t k = atomic_load_explicit(&tab->s[i].ip, memory_order_relaxed);
			if (k)
				insert(grown, k, atomic_load_explicit(&tab->s[i].rule, memory_order_relaxed));
		}
		/* the old table stays mapped: a reader may still be looking at
		 * it (its walk then fails its check); tables double, so what is
		 * kept is less than the live one */
		tab = grown;
	} else if (clear) {
		for (uint64_t i = 0; i <= tab->mask; i++)
			atomic_store_explicit(&tab->s[i].ip, 0, memory_order_relaxed);
		tab->used = 0;
		atomic_store_explicit(&ncode, 0, memory_order_relaxed);
	}
	atomic_store_explicit(&tab->gen, v->gen, memory_order_relaxed);
	insert(tab, ip, rule);
	if ((rule & K_MASK) == K_SIMPLE)
		note_code(lo, hi);
	atomic_store_explicit(&table, tab, memory_order_relaxed);
	atomic_store_explicit(&seq, v->seq + 2, memory_order_release);
	v->seq += 2;
	v->tab = tab;
	v->usable = 1;
out:
	atomic_store_explicit(&fill_lock, 0, memory_order_release);
}

static void show_complex(uint64_t ip, uint64_t rule);

/* The rule of an address not in the cache: parsed, and stored if it can be. */
__attribute__((noinline, cold)) static uint64_t miss(struct view *v, uint64_t ip)
{
	if (!v->busy)
		v->busy = pl_unwind_busy_enter(v->ring);
	struct find f = { ip, K_COMPLEX | (uint64_t)EHF_NO_HDR << WHY_SHIFT, 0, 0 };
	dl_iterate_phdr(find_object, &f);
	count(C_FILLED);
	if ((f.rule & K_MASK) == K_COMPLEX) {
		count(C_PARSED_COMPLEX);
		show_complex(ip, f.rule);
	}
	store(v, ip, f.rule, f.text_lo, f.text_hi);
	return f.rule;
}

/* ---- the walk -------------------------------------------------------- */

/* A rule not in this thread's memo: from the shared table, else parsed;
 * 0 when another thread's fill tore what the walk read. Out of line, so
 * that the walk's loop of memo hits keeps its values in registers. */
__attribute__((noinline)) static uint64_t table_rule(struct view *v, uint64_t ra)
{
	uint64_t rule = v->usable ? lookup(v->tab, ra - 1) : 0;
	if (__builtin_expect(!rule, 0)) {
		rule = miss(v, ra - 1);
		if (v->torn)
			return 0;
	}
	return rule;
}

/* One frame up by rule: sp, bp and ra become the caller's. 0: go on;
 * 1: the outermost frame was reached (nothing more to record); else the
 * counter of why the walk gives up. */
static inline int step(uint64_t rule, uint64_t top, uint64_t *sp, uint64_t *bp, uint64_t *ra)
{
	if ((rule & K_MASK) != K_SIMPLE)
		return (rule & K_MASK) == K_LAST ? 1 : -C_COMPLEX;
	uint64_t cfa = ((rule & F_CFA_RBP) ? *bp : *sp) + (uint64_t)(int64_t)(int32_t)(rule >> 32);
	/* a wrong rule must not make us read outside this stack */
	if (cfa < *sp + 8 || cfa > top || cfa - *sp > FRAME_SPAN)
		return -C_STACK;
	if (rule & F_RBP_SAVED) {
		uint64_t slot = cfa + (uint64_t)(int64_t)(int16_t)(rule >> 16);
		if (slot < *sp || slot > top - 8)
			return -C_STACK;
		*bp = *(const uint64_t *)(uintptr_t)slot;
	}
	*ra = *(const uint64_t *)(uintptr_t)(cfa - 8);
	*sp = cfa;
	return *ra < 0x4000; /* where libunwind stops too */
}

/* Not inlined: like unw_backtrace, it leaves out its own frame and starts
 * with its caller's return address, so both give the same frames. */
__attribute__((noinline)) int pl_unwind_walk(struct pl_thread *t, void **buf, int max)
{
	uint64_t fp = (uint64_t)(uintptr_t)__builtin_frame_address(0);
	uint64_t ra = (uint64_t)(uintptr_t)__builtin_return_address(0);
	uint64_t sp = fp + 16, bp = *(const uint64_t *)(uintptr_t)fp, top = stack_top;
	if (__builtin_expect(!top, 0))
		top = stack_top = find_top(sp);
	if (sp >= top || top - sp > STACK_SPAN || max < 1) {
		count(C_STACK);
		return -1;
	}
	struct view v = { .ring = t->ring };
	if (atomic_load_explicit(&unloading, memory_order_acquire)) {
		count(C_UNLOADING);
		return -1;
	}
	v.gen = atomic_load_explicit(&gen, memory_order_acquire);
	v.seq = atomic_load_explicit(&seq, memory_order_acquire);
	v.tab = atomic_load_explicit(&table, memory_order_relaxed);
	v.usable = !(v.seq & 1) && v.tab && atomic_load_explicit(&v.tab->gen, memory_order_relaxed) == v.gen;
	/* each return address was read at sp - 8: the memo's key */
	static const struct memo_entry none = { MEMO_END, 0, 0 };
	unsigned w = memo.last == 2 ? 0 : memo.last + 1; /* the set to write: the oldest */
	struct memo_entry *out = memo.s[w].e, *out_end = out + MEMO;
	const struct memo_entry *a = &none, *b = &none;
	if (memo.gen == v.gen) {
		a = memo.s[memo.last].e;
		b = memo.s[w == 2 ? 0 : w + 1].e;
	}
	void **at = buf, **end = buf + max;
	int why = 0;
	*at++ = (void *)(uintptr_t)ra;
	while (at < end) {
		uint64_t rule;
		/* memo hits, without a call */
		for (;;) {
			uint64_t key = sp - 8;
			while (a->at < key)
				a++;
			if (a->at == key && a->ra == ra) {
				rule = a->rule;
			} else {
				while (b->at < key)
					b++;
				if (b->at != key || b->ra != ra)
					break;
				rule = b->rule;
			}
			if (out < out_end)
				*out++ = (struct memo_entry){ key, ra, rule };
			if ((why = step(rule, top, &sp, &bp, &ra)) != 0)
				goto done;
			*at++ = (void *)(uintptr_t)ra;
			if (at == end)
				goto done;
		}
		if (!(rule = table_rule(&v, ra))) {
			why = -C_CACHE;
			break;
		}
		if (out < out_end)
			*out++ = (struct memo_entry){ sp - 8, ra, rule };
		if ((why = step(rule, top, &sp, &bp, &ra)) != 0)
			break;
		*at++ = (void *)(uintptr_t)ra;
	}
done:
	if (v.busy)
		pl_unwind_busy_leave(v.busy);
	if (why >= 0) {
		/* no thread wrote while the cache was read: nothing was torn */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&seq, memory_order_relaxed) == v.seq) {
			out->at = MEMO_END;
			if (memo.gen != v.gen) /* the other sets are of another generation */
				memo.s[memo.last].e[0].at = memo.s[w == 2 ? 0 : w + 1].e[0].at = MEMO_END;
			memo.last = w; /* the next walk reads what this one wrote */
			memo.gen = v.gen;
			count(C_WALKED);
			return (int)(at - buf);
		}
		why = -C_CACHE;
	}
	count(-why);
	return -1;
}

/* ---- invalidation ---------------------------------------------------- */

static void unload_begin(void)
{
	atomic_fetch_add(&unloading, 1);
}

static void unload_end(void)
{
	atomic_fetch_add(&gen, 1);
	atomic_fetch_sub(&unloading, 1);
}

int pl_unwind_unmap_begin(uint64_t addr, uint64_t len)
{
	uint32_t n = atomic_load_explicit(&ncode, memory_order_acquire);
	int hit = n > CODE_RANGES;
	for (uint32_t i = 0; !hit && i < n; i++)
		hit = addr < atomic_load_explicit(&code[i].hi, memory_order_relaxed) &&
		      addr + len > atomic_load_explicit(&code[i].lo, memory_order_relaxed);
	if (hit)
		unload_begin();
	return hit;
}

void pl_unwind_unmap_end(int hit)
{
	if (hit)
		unload_end();
}

/* dlclose: what it unmaps may be mapped again by another object, whose code
 * the cached rules would describe wrongly. (dlopen is not hooked: it looks
 * at its caller's address.) */
static int (*real_dlclose)(void *);

PL_EXPORT int dlclose(void *handle)
{
	if (!real_dlclose) {
		pl_self.in_hook += PL_IN_INTERNAL;
		real_dlclose = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
		pl_self.in_hook -= PL_IN_INTERNAL;
		if (!real_dlclose)
			return -1;
	}
	unload_begin();
	int ret = real_dlclose(handle);
	unload_end();
	return ret;
}

/* ---- set-up, fork, counters ------------------------------------------ */

void pl_unwind_init(void)
{
	const char *m = getenv("HEAPSCOPE_UNWIND");
	const char *s = getenv("HEAPSCOPE_UNWIND_STATS");
	pl_unwind_mode = !m || !strcmp(m, "fast")   ? PL_UNWIND_FAST
			 : !strcmp(m, "libunwind") ? PL_UNWIND_LIBUNWIND
			 : !strcmp(m, "check")     ? PL_UNWIND_CHECK
						   : PL_UNWIND_FAST;
	stats = s && *s && strcmp(s, "0");
	memset(counters, 0, sizeof(counters));
	if (!real_dlclose)
		real_dlclose = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
}

void pl_unwind_forked(void)
{
	/* an unload under way in a thread the child does not have */
	atomic_store(&unloading, 0);
	atomic_fetch_add(&gen, 1);
	for (int i = 0; i < C_N; i++)
		atomic_store_explicit(&counters[i], 0, memory_order_relaxed);
}

static void put_stack(const char *what, void *const *buf, int n)
{
	char line[64 + 19 * 48], *p = line;
	p = pl_put_str(p, what);
	p = pl_put_u(p, (uint64_t)n);
	p = pl_put_str(p, " frames:");
	for (int i = 0; i < n && i < 48; i++) {
		*p++ = ' ';
		p = pl_put_x(p, (uint64_t)(uintptr_t)buf[i]);
	}
	*p++ = '\n';
	ssize_t ignored = write(2, line, (size_t)(p - line));
	(void)ignored;
}

/* HEAPSCOPE_UNWIND_STATS: the first few addresses with a complex rule */
static void show_complex(uint64_t ip, uint64_t rule)
{
	static _Atomic int shown;
	if (!stats || atomic_fetch_add(&shown, 1) >= 8)
		return;
	char line[128], *p = line;
	p = pl_put_str(p, "heapscope: unwind: complex rule at ");
	p = pl_put_x(p, ip);
	p = pl_put_str(p, ", why ");
	p = pl_put_u(p, rule >> WHY_SHIFT);
	*p++ = '\n';
	ssize_t ignored = write(2, line, (size_t)(p - line));
	(void)ignored;
}

void pl_unwind_checked(int same, void *const *walked, int nw, void *const *lib, int nl)
{
	count(C_CHECKED);
	if (same)
		return;
	count(C_DIFFER);
	/* the first few, to see why */
	static _Atomic int shown;
	if (stats && atomic_fetch_add(&shown, 1) < 3) {
		put_stack("heapscope: unwind check: walk ", walked, nw);
		put_stack("heapscope: unwind check: libunwind ", lib, nl);
	}
}

/* HEAPSCOPE_UNWIND_STATS=1: one line on stderr as each process exits. */
__attribute__((destructor)) static void unwind_stats(void)
{
	static const char *const names[C_N] = { " walked ", ", fell back: complex ", " stack ", " cache ",
						" unloading ", "; rules parsed ", " complex ", "; checked ",
						" differ " };
	if (!stats || !pl_shm)
		return;
	char line[512], *p = line;
	p = pl_put_str(p, "heapscope: unwind pid ");
	p = pl_put_u(p, (uint64_t)syscall(SYS_getpid));
	p = pl_put_str(p, pl_unwind_mode == PL_UNWIND_LIBUNWIND ? " libunwind:"
		       : pl_unwind_mode == PL_UNWIND_CHECK ? " check:"
							   : " fast:");
	for (int i = 0; i < C_N; i++) {
		p = pl_put_str(p, names[i]);
		p = pl_put_u(p, atomic_load_explicit(&counters[i], memory_order_relaxed));
	}
	*p++ = '\n';
	ssize_t ignored = write(2, line, (size_t)(p - line));
	(void)ignored;
}
