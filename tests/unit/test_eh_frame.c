/*
 * test_eh_frame.c: the unwind-rule parser of the preload library
 * (src/preload/eh_frame.c) on a hand-made .eh_frame and .eh_frame_hdr:
 * the rule at each address of a CFA program, each kind of complex rule, and
 * cut or damaged sections, which must give a complex rule and never a read
 * past the bounds (each case runs on a heap copy of exactly the bytes it may
 * read, so that AddressSanitizer catches an over-read).
 */
#include <stdlib.h>

#include "check.h"
#include "preload/eh_frame.c"

/* ---- building the sections ----------------------------------------- */

static uint8_t blob[4096];
static size_t len;

static void u8(unsigned v) { blob[len++] = (uint8_t)v; }

static void u32(uint32_t v)
{
	memcpy(blob + len, &v, 4);
	len += 4;
}

static void uleb_(uint64_t v)
{
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		u8(b | (v ? 0x80 : 0));
	} while (v);
}

static void sleb_(int64_t v)
{
	for (;;) {
		uint8_t b = v & 0x7f;
		v >>= 7;
		if ((v == 0 && !(b & 0x40)) || (v == -1 && (b & 0x40))) {
			u8(b);
			return;
		}
		u8(b | 0x80);
	}
}

static void put32_at(size_t at, uint32_t v) { memcpy(blob + at, &v, 4); }

/* Code addresses are offsets from the copy's base past its end: never read. */
#define CODE 0x10000u

/* A CIE: returns its offset. aug "zR" or "zSR" or "zPLR"; CFA = rsp+8, RA at cfa-8. */
static size_t cie(const char *aug)
{
	size_t at = len;
	u32(0); /* length, patched */
	u32(0); /* CIE id */
	u8(1);  /* version */
	for (const char *c = aug; *c; c++)
		u8((unsigned)*c);
	u8(0);
	uleb_(1);  /* code alignment */
	sleb_(-8); /* data alignment */
	u8(16);    /* return address column */
	size_t aug_len_at = len;
	u8(0);     /* augmentation data length, patched (fits one byte) */
	size_t aug_start = len;
	for (const char *c = aug + 1; *c; c++) {
		if (*c == 'R')
			u8(0x1b); /* FDE pointers: pcrel sdata4 */
		else if (*c == 'P') {
			u8(0x9b); /* personality: indirect pcrel sdata4 */
			u32(0x1234);
		} else if (*c == 'L')
			u8(0x1b);
	}
	blob[aug_len_at] = (uint8_t)(len - aug_start);
	u8(0x0c); uleb_(7); uleb_(8); /* def_cfa rsp, 8 */
	u8(0x80 | 16); uleb_(1);      /* offset r16 at cfa-8 */
	while ((len - at) % 8)
		u8(0); /* nop padding */
	put32_at(at, (uint32_t)(len - at - 4));
	return at;
}

struct fde_mark {
	size_t at;
	uint32_t code_off, code_len;
};

static struct fde_mark fdes[32];
static int nfdes;

/* An FDE for [CODE + off, + n) under the CIE at cie_at; the caller emits its
 * program and then calls fde_end. */
static void fde_begin(size_t cie_at, uint32_t off, uint32_t n, int with_lsda)
{
	struct fde_mark *f = &fdes[nfdes++];
	f->at = len;
	f->code_off = off;
	f->code_len = n;
	u32(0);                                  /* length, patched */
	u32((uint32_t)(len - cie_at));           /* CIE pointer: back from this field */
	u32((uint32_t)(CODE + off - len));       /* pc begin, pcrel from this field */
	u32(n);                                  /* pc range */
	if (with_lsda) {
		u8(4);
		u32(0);
	} else {
		u8(0); /* augmentation data length */
	}
}

static void fde_end(void)
{
	struct fde_mark *f = &fdes[nfdes - 1];
	while ((len - f->at) % 8)
		u8(0);
	put32_at(f->at, (uint32_t)(len - f->at - 4));
}

static size_t eh_len, hdr_at, hdr_len;

/* The header after .eh_frame: its table sorted by code address. */
static void hdr(void)
{
	eh_len = len;
	u32(0); /* .eh_frame terminator */
	hdr_at = len;
	u8(1);
	u8(0x1b); /* eh_frame_ptr: pcrel sdata4 */
	u8(0x03); /* fde_count: udata4 */
	u8(0x3b); /* table: datarel sdata4 */
	u32((uint32_t)(0 - len));
	u32((uint32_t)nfdes);
	int order[32];
	for (int i = 0; i < nfdes; i++)
		order[i] = i;
	for (int i = 0; i < nfdes; i++)
		for (int j = i + 1; j < nfdes; j++)
			if (fdes[order[j]].code_off < fdes[order[i]].code_off) {
				int t = order[i];
				order[i] = order[j];
				order[j] = t;
			}
	for (int i = 0; i < nfdes; i++) {
		u32((uint32_t)(CODE + fdes[order[i]].code_off - hdr_at));
		u32((uint32_t)(fdes[order[i]].at - hdr_at));
	}
	hdr_len = len - hdr_at;
}

/* The sections as the tests see them: every FDE the parser may meet. */
static void build(void)
{
	size_t c = cie("zR"), cs = cie("zSR"), cp = cie("zPLR");

	/* 0x000: a gcc-like function: push rbp, mov rsp,rbp, body, an early
	 * return path in remember/restore_state, leave */
	fde_begin(c, 0x000, 0x100, 0);
	u8(0x40 | 1);                  /* advance 1 */
	u8(0x0e); uleb_(16);           /* def_cfa_offset 16 */
	u8(0x80 | 6); uleb_(2);        /* offset rbp at cfa-16 */
	u8(0x40 | 3);                  /* advance 3: @4 */
	u8(0x0d); uleb_(6);            /* def_cfa_register rbp */
	u8(0x02); u8(0x40);            /* advance_loc1 64: @0x44 */
	u8(0x0a);                      /* remember_state */
	u8(0x0c); uleb_(7); uleb_(8);  /* def_cfa rsp, 8 (after leave) */
	u8(0x40 | 1);                  /* @0x45 */
	u8(0x0b);                      /* restore_state */
	u8(0x2e); uleb_(16);           /* GNU_args_size */
	u8(0x00);                      /* nop */
	u8(0x03); u8(0x20); u8(0);     /* advance_loc2 32: @0x65 */
	u8(0x0f); uleb_(3); u8(0x77); u8(8); u8(0x06); /* def_cfa_expression */
	u8(0x40 | 0x10);               /* @0x75 */
	u8(0x12); uleb_(7); sleb_(-2); /* def_cfa_sf rsp, 16 */
	u8(0xc0 | 6);                  /* restore rbp: same value */
	u8(0x04); u32(0x10);           /* advance_loc4 16: @0x85 */
	u8(0x13); sleb_(-4);           /* def_cfa_offset_sf 32 */
	u8(0x11); uleb_(6); sleb_(3);  /* offset_extended_sf rbp at cfa-24 */
	fde_end();

	fde_begin(cs, 0x200, 0x10, 0); /* a signal frame */
	fde_end();

	fde_begin(c, 0x300, 0x10, 0);  /* the outermost frame */
	u8(0x07); uleb_(16);           /* undefined ra */
	fde_end();

	fde_begin(c, 0x400, 0x10, 0);  /* r12 by an expression */
	u8(0x10); uleb_(12); uleb_(2); u8(0x70); u8(0);
	fde_end();

	fde_begin(c, 0x500, 0x10, 0);  /* DRAP: CFA on r10 */
	u8(0x0c); uleb_(10); uleb_(0);
	fde_end();

	fde_begin(c, 0x600, 0x10, 0);  /* rbp kept in a register */
	u8(0x09); uleb_(6); uleb_(3);
	fde_end();

	fde_begin(c, 0x700, 0x10, 0);  /* the return address elsewhere */
	u8(0x80 | 16); uleb_(2);
	fde_end();

	fde_begin(c, 0x800, 0x10, 0);  /* an opcode outside the set */
	u8(0x2f); uleb_(6); uleb_(2);
	fde_end();

	fde_begin(c, 0x900, 0x10, 0);  /* rbp undefined: libunwind ends there */
	u8(0x07); uleb_(6);
	fde_end();

	fde_begin(cp, 0xa00, 0x20, 1); /* C++: personality and LSDA */
	u8(0x40 | 4);
	u8(0x0e); uleb_(0x1010);       /* a 4 KiB frame */
	fde_end();

	fde_begin(c, 0xb00, 0x10, 0);  /* rsp with a rule of its own */
	u8(0x80 | 7); uleb_(2);
	fde_end();

	fde_begin(c, 0xc00, 0x10, 0);  /* a register past 16 */
	u8(0x80 | 17); uleb_(2);
	fde_end();

	hdr();
}

/* ---- running the parser on a copy --------------------------------- */

/* The rule at CODE + off, parsed from a heap copy of the first n bytes of
 * .eh_frame (the header always whole) or, hdr_n < hdr_len, of a header
 * cut to hdr_n bytes. */
static struct ehf_rule rule_in(const uint8_t *data, size_t n, size_t hdr_n, uint32_t off)
{
	size_t total = len;
	uint8_t *copy = malloc(total);
	memcpy(copy, data, total);
	uint64_t base = (uint64_t)(uintptr_t)copy;
	struct ehf_obj o = { base + hdr_at, base + hdr_at + hdr_n, base, base + n };
	struct ehf_rule r;
	ehf_rule_at(&o, base + CODE + off, &r);
	free(copy);
	return r;
}

/* Cut copies, in one buffer that ends where the cut is, so a read past it
 * leaves the allocation: to cut .eh_frame, the header goes first and the
 * section after it (the header's table rebased onto that layout); to cut
 * the header, the blob's own order. */
static struct ehf_rule rule_cut(size_t eh_n, size_t hdr_n, uint32_t off)
{
	struct ehf_rule r;
	if (hdr_n < hdr_len) {
		uint8_t *copy = malloc(hdr_at + hdr_n);
		memcpy(copy, blob, hdr_at + hdr_n);
		uint64_t base = (uint64_t)(uintptr_t)copy;
		struct ehf_obj o = { base + hdr_at, base + hdr_at + hdr_n, base, base + eh_len };
		ehf_rule_at(&o, base + CODE + off, &r);
		free(copy);
		return r;
	}
	uint8_t *copy = malloc(hdr_len + eh_n);
	memcpy(copy, blob + hdr_at, hdr_len);
	memcpy(copy + hdr_len, blob, eh_n);
	uint32_t count;
	memcpy(&count, copy + 8, 4);
	for (uint32_t i = 0; i < 2 * count; i++) {
		/* blob offset = hdr_at + v; here the header is at 0, the blob at hdr_len */
		int32_t v;
		memcpy(&v, copy + 12 + 4 * i, 4);
		v = (int32_t)((int64_t)hdr_at + v + (int64_t)hdr_len);
		memcpy(copy + 12 + 4 * i, &v, 4);
	}
	uint64_t base = (uint64_t)(uintptr_t)copy;
	struct ehf_obj o = { base, base + hdr_len, base + hdr_len, base + hdr_len + eh_n };
	ehf_rule_at(&o, base + hdr_len + CODE + off, &r);
	free(copy);
	return r;
}

static void want_simple(uint32_t off, int cfa_rbp, int32_t cfa_off, int rbp_saved, int32_t rbp_off)
{
	struct ehf_rule r = rule_in(blob, eh_len, hdr_len, off);
	int ok = r.kind == EHF_SIMPLE && r.cfa_rbp == cfa_rbp && r.cfa_off == cfa_off && r.rbp_saved == rbp_saved &&
		 r.rbp_off == rbp_off;
	check(ok, "at +0x%x: kind %d CFA %s%+d, rbp %s%+d (want simple CFA %s%+d, rbp %s%+d)", off, r.kind,
	      r.cfa_rbp ? "rbp" : "rsp", r.cfa_off, r.rbp_saved ? "cfa" : "same", r.rbp_off, cfa_rbp ? "rbp" : "rsp",
	      cfa_off, rbp_saved ? "cfa" : "same", rbp_off);
}

static void want_kind(uint32_t off, int kind, int why, const char *what)
{
	struct ehf_rule r = rule_in(blob, eh_len, hdr_len, off);
	check(r.kind == kind && r.why == why, "at +0x%x (%s): kind %d why %d, want kind %d why %d", off, what, r.kind,
	      r.why, kind, why);
}

int main(void)
{
	build();

	/* the rows of the first function's program */
	want_simple(0x00, 0, 8, 0, 0);
	want_simple(0x01, 0, 16, 1, -16);
	want_simple(0x03, 0, 16, 1, -16);
	want_simple(0x04, 1, 16, 1, -16);
	want_simple(0x43, 1, 16, 1, -16);
	want_simple(0x44, 0, 8, 1, -16);  /* remembered, then CFA = rsp+8 */
	want_simple(0x45, 1, 16, 1, -16); /* restored */
	want_simple(0x64, 1, 16, 1, -16);
	want_kind(0x65, EHF_COMPLEX, EHF_EXPRESSION, "def_cfa_expression");
	want_kind(0x74, EHF_COMPLEX, EHF_EXPRESSION, "def_cfa_expression");
	want_simple(0x75, 0, 16, 0, 0);   /* def_cfa_sf, rbp restored to same */
	want_simple(0x85, 0, 32, 1, -24);
	want_simple(0xff, 0, 32, 1, -24);

	/* addresses no FDE covers */
	want_kind(0x100, EHF_COMPLEX, EHF_NO_FDE, "after the first FDE");
	want_kind(0x1ff, EHF_COMPLEX, EHF_NO_FDE, "in a gap");
	want_kind(0xc10, EHF_COMPLEX, EHF_NO_FDE, "after the last FDE");
	{
		struct ehf_rule r = rule_in(blob, eh_len, hdr_len, 0);
		uint8_t *copy = malloc(len);
		memcpy(copy, blob, len);
		uint64_t base = (uint64_t)(uintptr_t)copy;
		struct ehf_obj o = { base + hdr_at, base + hdr_at + hdr_len, base, base + eh_len };
		ehf_rule_at(&o, base + CODE - 1, &r);
		check(r.kind == EHF_COMPLEX && r.why == EHF_NO_FDE, "before the first FDE: kind %d why %d", r.kind,
		      r.why);
		free(copy);
	}

	/* the other FDEs */
	want_kind(0x200, EHF_COMPLEX, EHF_AUGMENTATION, "signal frame (augmentation S)");
	want_kind(0x300, EHF_LAST, EHF_OK, "return address undefined");
	want_kind(0x400, EHF_COMPLEX, EHF_EXPRESSION, "r12 by expression");
	want_kind(0x500, EHF_COMPLEX, EHF_CFA_REG, "CFA on r10");
	want_kind(0x600, EHF_COMPLEX, EHF_RBP, "rbp in a register");
	want_kind(0x700, EHF_COMPLEX, EHF_RA, "return address at cfa-16");
	want_kind(0x800, EHF_COMPLEX, EHF_OPCODE, "GNU_negative_offset_extended");
	want_kind(0x900, EHF_COMPLEX, EHF_RBP, "rbp undefined");
	want_simple(0xa00, 0, 8, 0, 0);
	want_simple(0xa04, 0, 0x1010, 0, 0);
	want_kind(0xb00, EHF_COMPLEX, EHF_REG, "rsp with a rule");
	want_kind(0xc00, EHF_COMPLEX, EHF_REG, "register 17");

	/* a header the table encoding of which is not datarel sdata4 */
	{
		uint8_t save = blob[hdr_at + 3];
		blob[hdr_at + 3] = 0x1b;
		struct ehf_rule r = rule_in(blob, eh_len, hdr_len, 0x04);
		blob[hdr_at + 3] = save;
		check(r.kind == EHF_COMPLEX && r.why == EHF_NO_HDR, "table encoding 0x1b: kind %d why %d", r.kind, r.why);
	}

	/* cut sections: never a read past the cut; whole enough, the right rule */
	int wrong = 0, simple_cut = 0;
	for (size_t n = 0; n <= eh_len; n++) {
		struct ehf_rule r = rule_cut(n, hdr_len, 0x85);
		/* the first function's FDE and its CIE must be whole to be read */
		uint32_t flen;
		memcpy(&flen, blob + fdes[0].at, 4);
		int whole = n >= fdes[0].at + 4 + flen;
		if (whole ? !(r.kind == EHF_SIMPLE && r.cfa_off == 32 && r.rbp_off == -24) : r.kind != EHF_COMPLEX)
			wrong++;
		simple_cut += !whole && r.kind == EHF_SIMPLE;
	}
	check(!wrong, ".eh_frame cut at each of 0..%zu bytes: %d wrong rules (%d simple from a cut FDE)", eh_len, wrong,
	      simple_cut);
	wrong = 0;
	for (size_t n = 0; n <= hdr_len; n++) {
		struct ehf_rule r = rule_cut(eh_len, n, 0x85);
		/* the search reads the table up to the entry after the one it wants */
		int whole = n == hdr_len;
		if (whole ? r.kind != EHF_SIMPLE : r.kind != EHF_COMPLEX)
			wrong++;
	}
	check(!wrong, ".eh_frame_hdr cut at each of 0..%zu bytes: %d wrong rules", hdr_len, wrong);

	/* damaged bytes: any rule, but in bounds (ASan) and a kind */
	int bad_kind = 0;
	srandom(1);
	uint8_t *damaged = malloc(len);
	for (int round = 0; round < 20000; round++) {
		memcpy(damaged, blob, len);
		int flips = 1 + (int)((uint64_t)random() % 4);
		for (int k = 0; k < flips; k++) {
			size_t at = (size_t)((uint64_t)random() % (round % 2 ? eh_len : len));
			damaged[at] = (uint8_t)(uint64_t)random();
		}
		struct ehf_rule r = rule_in(damaged, eh_len, hdr_len, (uint32_t)((uint64_t)random() % 0xd00));
		bad_kind += r.kind < EHF_COMPLEX || r.kind > EHF_LAST;
	}
	/* garbage: random bytes everywhere but a valid header's first words */
	for (int round = 0; round < 5000; round++) {
		for (size_t i = 0; i < len; i++)
			damaged[i] = (uint8_t)(uint64_t)random();
		if (round % 2)
			memcpy(damaged + hdr_at, blob + hdr_at, 12);
		struct ehf_rule r = rule_in(damaged, eh_len, hdr_len, (uint32_t)((uint64_t)random() % 0xd00));
		bad_kind += r.kind < EHF_COMPLEX || r.kind > EHF_LAST;
	}
	free(damaged);
	check(!bad_kind, "25000 damaged or random sections parsed in bounds: %d results without a kind", bad_kind);

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
