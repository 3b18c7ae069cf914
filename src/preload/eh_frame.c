/*
 * eh_frame.c: one address's unwind rule from .eh_frame_hdr and .eh_frame
 * (the LSB's "Exception Frames" layout, DWARF's call frame information):
 * a binary search of the header's sorted table finds the FDE, whose CIE and
 * CFA program are run up to the address. The rule is called simple only
 * where libunwind's own fast trace would call the frame standard, so that
 * a walk with these rules gives libunwind's stacks; the rest is complex.
 * All reads go through struct rd, bounded by the caller's section limits.
 */
#include <string.h>

#include "eh_frame.h"

/* DW_EH_PE_* pointer encodings */
#define PE_OMIT 0xff
#define PE_FORMAT 0x0f
#define PE_APPLY 0x70
#define PE_PCREL 0x10
#define PE_DATAREL 0x30
#define PE_INDIRECT 0x80

/* DWARF register numbers on x86-64 */
#define R_RBP 6
#define R_RSP 7
#define R_RA 16
#define NREGS 17 /* 0..16: what libunwind accepts; a higher number fails there */

#define STATE_STACK 8 /* remember_state depth; deeper is complex */

/* A bounded reader: any read past end sets bad and yields zeros. */
struct rd {
	uint64_t p, end;
	int bad;
};

static uint64_t get(struct rd *r, unsigned n)
{
	uint64_t v = 0;
	if (r->bad || r->p > r->end || r->end - r->p < n) {
		r->bad = 1;
		return 0;
	}
	memcpy(&v, (const void *)(uintptr_t)r->p, n); /* little-endian */
	r->p += n;
	return v;
}

static uint64_t uleb(struct rd *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0;; shift += 7) {
		uint64_t b = get(r, 1);
		if (r->bad)
			return 0;
		if (shift < 64)
			v |= (b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
		if (shift > 70) { /* longer than any 64-bit value */
			r->bad = 1;
			return 0;
		}
	}
}

static int64_t sleb(struct rd *r)
{
	uint64_t v = 0, b = 0;
	unsigned shift = 0;
	do {
		b = get(r, 1);
		if (r->bad)
			return 0;
		if (shift < 64)
			v |= (b & 0x7f) << shift;
		shift += 7;
		if (shift > 77) {
			r->bad = 1;
			return 0;
		}
	} while (b & 0x80);
	if (shift < 64 && (b & 0x40))
		v |= ~0ull << shift;
	return (int64_t)v;
}

static void skip(struct rd *r, uint64_t n)
{
	if (r->bad || r->p > r->end || r->end - r->p < n)
		r->bad = 1;
	else
		r->p += n;
}

/* An encoded pointer. Returns 0, or -1 for an encoding not handled here.
 * want_value 0: only its bytes are consumed (a personality routine). */
static int read_ptr(struct rd *r, unsigned enc, uint64_t datarel, int want_value, uint64_t *out)
{
	uint64_t at = r->p, v;
	switch (enc & PE_FORMAT) {
	case 0x00: /* absptr */
	case 0x04: /* udata8 */
	case 0x0c: /* sdata8 */
		v = get(r, 8);
		break;
	case 0x01:
		v = uleb(r);
		break;
	case 0x02:
		v = get(r, 2);
		break;
	case 0x03:
		v = get(r, 4);
		break;
	case 0x09:
		v = (uint64_t)sleb(r);
		break;
	case 0x0a:
		v = (uint64_t)(int64_t)(int16_t)get(r, 2);
		break;
	case 0x0b:
		v = (uint64_t)(int64_t)(int32_t)get(r, 4);
		break;
	default:
		return -1;
	}
	if (!want_value)
		return (enc & PE_APPLY) == 0x50 ? -1 : 0; /* aligned: a layout of its own */
	if (enc & PE_INDIRECT)
		return -1;
	switch (enc & PE_APPLY) {
	case 0:
		break;
	case PE_PCREL:
		v += at;
		break;
	case PE_DATAREL:
		if (!datarel)
			return -1;
		v += datarel;
		break;
	default:
		return -1;
	}
	*out = v;
	return 0;
}

/* A factored offset; wraps instead of overflowing on garbage. */
static int64_t factor(uint64_t n, int64_t align)
{
	return (int64_t)(n * (uint64_t)align);
}

struct cie {
	uint64_t code_align;
	int64_t data_align;
	unsigned fde_enc;
	int has_z;
	uint64_t instr, end;
};

/* Register rules. */
enum { W_SAME = 0, W_UNDEF, W_OFFSET, W_REG, W_EXPR, W_VAL };

struct state {
	uint8_t where[NREGS];
	int64_t off[NREGS];
	uint8_t cfa_expr;  /* the CFA is an expression */
	uint8_t cfa_set;   /* a CFA rule was given */
	uint64_t cfa_reg;
	int64_t cfa_off;
};

static int parse_cie(uint64_t at, const struct ehf_obj *o, struct cie *c)
{
	struct rd r = { at, o->hi, at < o->lo };
	uint64_t len = get(&r, 4);
	if (r.bad || len == 0 || len == 0xffffffffu || r.end - r.p < len)
		return EHF_BAD;
	r.end = r.p + len;
	if (get(&r, 4) != 0) /* a CIE's id in .eh_frame */
		return EHF_BAD;
	unsigned version = (unsigned)get(&r, 1);
	if (version != 1 && version != 3)
		return EHF_BAD;
	char aug[8];
	unsigned n = 0;
	for (;; n++) {
		char ch = (char)get(&r, 1);
		if (r.bad)
			return EHF_BAD;
		if (!ch)
			break;
		if (n + 1 >= sizeof(aug))
			return EHF_AUGMENTATION;
		aug[n] = ch;
	}
	aug[n] = 0;
	c->code_align = uleb(&r);
	c->data_align = sleb(&r);
	uint64_t ra = version == 1 ? get(&r, 1) : uleb(&r);
	if (r.bad)
		return EHF_BAD;
	if (ra != R_RA)
		return EHF_RA;
	c->fde_enc = 0;
	c->has_z = aug[0] == 'z';
	if (c->has_z) {
		uint64_t alen = uleb(&r);
		struct rd a = { r.p, r.p + alen, r.bad || r.end - r.p < alen };
		if (a.bad)
			return EHF_BAD;
		for (unsigned i = 1; i < n; i++) {
			uint64_t dummy;
			switch (aug[i]) {
			case 'R':
				c->fde_enc = (unsigned)get(&a, 1);
				break;
			case 'L': /* the FDE holds an LSDA pointer: skipped with its data */
				get(&a, 1);
				break;
			case 'P':
				if (read_ptr(&a, (unsigned)get(&a, 1), 0, 0, &dummy) < 0)
					return EHF_AUGMENTATION;
				break;
			default: /* 'S' (a signal frame) and anything unknown */
				return EHF_AUGMENTATION;
			}
			if (a.bad)
				return EHF_BAD;
		}
		r.p += alen;
	} else if (n) {
		return EHF_AUGMENTATION;
	}
	c->instr = r.p;
	c->end = r.end;
	return EHF_OK;
}

/* Runs CFA instructions [p, end) from location loc until one would move past
 * pc. init: the CIE's rules, for DW_CFA_restore (NULL: running the CIE). */
static int run(uint64_t p, uint64_t end, uint64_t loc, uint64_t pc, const struct cie *c, struct state *st,
	       const struct state *init)
{
	struct state saved[STATE_STACK];
	unsigned depth = 0;
	struct rd r = { p, end, 0 };
	while (r.p < r.end) {
		unsigned op = (unsigned)get(&r, 1), reg = 0;
		uint64_t delta = 0, len;
		int64_t off;
		switch (op & 0xc0) {
		case 0x40: /* advance_loc */
			delta = op & 0x3f;
			goto advance;
		case 0x80: /* offset */
			reg = op & 0x3f;
			off = factor(uleb(&r), c->data_align);
			goto set_offset;
		case 0xc0: /* restore */
			reg = op & 0x3f;
			goto restore;
		}
		switch (op) {
		case 0x00: /* nop */
			break;
		case 0x02: /* advance_loc1 */
			delta = get(&r, 1);
			goto advance;
		case 0x03:
			delta = get(&r, 2);
			goto advance;
		case 0x04:
			delta = get(&r, 4);
			goto advance;
		case 0x05: /* offset_extended */
			reg = (unsigned)uleb(&r);
			off = factor(uleb(&r), c->data_align);
			goto set_offset;
		case 0x11: /* offset_extended_sf */
			reg = (unsigned)uleb(&r);
			off = factor((uint64_t)sleb(&r), c->data_align);
			goto set_offset;
		case 0x06: /* restore_extended */
			reg = (unsigned)uleb(&r);
			goto restore;
		case 0x07: /* undefined */
		case 0x08: /* same_value */
		case 0x09: /* register */
			reg = (unsigned)uleb(&r);
			if (op == 0x09)
				uleb(&r);
			if (reg >= NREGS)
				return r.bad ? EHF_BAD : EHF_REG;
			st->where[reg] = op == 0x07 ? W_UNDEF : op == 0x08 ? W_SAME : W_REG;
			break;
		case 0x0a: /* remember_state */
			if (depth == STATE_STACK)
				return EHF_OPCODE;
			saved[depth++] = *st;
			break;
		case 0x0b: /* restore_state */
			if (!depth)
				return EHF_BAD;
			*st = saved[--depth];
			break;
		case 0x0c: /* def_cfa */
			st->cfa_reg = uleb(&r);
			st->cfa_off = (int64_t)uleb(&r);
			st->cfa_expr = 0;
			st->cfa_set = 1;
			break;
		case 0x12: /* def_cfa_sf */
			st->cfa_reg = uleb(&r);
			st->cfa_off = factor((uint64_t)sleb(&r), c->data_align);
			st->cfa_expr = 0;
			st->cfa_set = 1;
			break;
		case 0x0d: /* def_cfa_register */
			st->cfa_reg = uleb(&r);
			st->cfa_expr = 0;
			st->cfa_set = 1;
			break;
		case 0x0e: /* def_cfa_offset */
			st->cfa_off = (int64_t)uleb(&r);
			break;
		case 0x13: /* def_cfa_offset_sf */
			st->cfa_off = factor((uint64_t)sleb(&r), c->data_align);
			break;
		case 0x0f: /* def_cfa_expression */
			len = uleb(&r);
			skip(&r, len);
			st->cfa_expr = 1;
			st->cfa_set = 1;
			break;
		case 0x10: /* expression */
		case 0x16: /* val_expression */
			reg = (unsigned)uleb(&r);
			len = uleb(&r);
			skip(&r, len);
			if (reg >= NREGS)
				return r.bad ? EHF_BAD : EHF_REG;
			st->where[reg] = W_EXPR;
			break;
		case 0x14: /* val_offset */
		case 0x15: /* val_offset_sf */
			reg = (unsigned)uleb(&r);
			if (op == 0x14)
				uleb(&r);
			else
				sleb(&r);
			if (reg >= NREGS)
				return r.bad ? EHF_BAD : EHF_REG;
			st->where[reg] = W_VAL;
			break;
		case 0x2e: /* GNU_args_size */
			uleb(&r);
			break;
		default: /* set_loc, GNU_negative_offset_extended, vendor codes */
			return EHF_OPCODE;
		}
		if (r.bad)
			return EHF_BAD;
		continue;
	advance:
		if (!init) /* an advance in a CIE: not something compilers write */
			return EHF_OPCODE;
		if (r.bad)
			return EHF_BAD;
		delta *= c->code_align;
		if (delta > pc - loc) /* the rest applies after pc */
			return EHF_OK;
		loc += delta;
		continue;
	set_offset:
		if (r.bad)
			return EHF_BAD;
		if (reg >= NREGS)
			return EHF_REG;
		st->where[reg] = W_OFFSET;
		st->off[reg] = off;
		continue;
	restore:
		if (r.bad)
			return EHF_BAD;
		if (reg >= NREGS)
			return EHF_REG;
		if (!init)
			return EHF_OPCODE;
		st->where[reg] = init->where[reg];
		st->off[reg] = init->off[reg];
	}
	return EHF_OK;
}

/* The rules at pc, as libunwind's fast trace would classify them. */
static int classify(const struct state *st, struct ehf_rule *rule)
{
	if (!st->cfa_set)
		return EHF_BAD;
	if (st->cfa_expr)
		return EHF_EXPRESSION;
	if ((st->cfa_reg != R_RSP && st->cfa_reg != R_RBP) || st->cfa_off <= -(1 << 28) || st->cfa_off >= 1 << 28)
		return EHF_CFA_REG;
	for (unsigned i = 0; i < NREGS; i++) {
		if (st->where[i] == W_EXPR)
			return EHF_EXPRESSION;
		if (st->where[i] == W_REG || st->where[i] == W_VAL)
			return i == R_RA ? EHF_RA : i == R_RBP ? EHF_RBP : EHF_REG;
	}
	if (st->where[R_RSP] != W_SAME)
		return EHF_REG;
	if (st->where[R_RBP] == W_UNDEF) /* libunwind ends the stack there: let it */
		return EHF_RBP;
	if (st->where[R_RBP] == W_OFFSET && (st->off[R_RBP] <= -(1 << 14) || st->off[R_RBP] >= 1 << 14 ||
					      st->off[R_RBP] == -1))
		return EHF_RBP;
	if (st->where[R_RA] == W_UNDEF) {
		rule->kind = EHF_LAST;
		return EHF_OK;
	}
	if (st->where[R_RA] != W_OFFSET || st->off[R_RA] != -8)
		return EHF_RA;
	rule->kind = EHF_SIMPLE;
	rule->cfa_rbp = st->cfa_reg == R_RBP;
	rule->cfa_off = (int32_t)st->cfa_off;
	rule->rbp_saved = st->where[R_RBP] == W_OFFSET;
	rule->rbp_off = rule->rbp_saved ? (int32_t)st->off[R_RBP] : 0;
	return EHF_OK;
}

/* The FDE the header's table gives for pc, or 0. */
static uint64_t find_fde(const struct ehf_obj *o, uint64_t pc, int *why)
{
	struct rd r = { o->hdr, o->hdr_end, o->hdr_end < o->hdr };
	uint64_t eh_frame, count;
	unsigned version = (unsigned)get(&r, 1), ptr_enc = (unsigned)get(&r, 1);
	unsigned count_enc = (unsigned)get(&r, 1), table_enc = (unsigned)get(&r, 1);
	*why = EHF_NO_HDR;
	if (r.bad || version != 1 || ptr_enc == PE_OMIT || count_enc == PE_OMIT || (count_enc & PE_APPLY) ||
	    table_enc != (PE_DATAREL | 0x0b) || read_ptr(&r, ptr_enc, o->hdr, 1, &eh_frame) < 0 ||
	    read_ptr(&r, count_enc, o->hdr, 1, &count) < 0 || r.bad || count > (r.end - r.p) / 8)
		return 0;
	(void)eh_frame;
	/* the last entry whose initial location is <= pc */
	uint64_t lo = 0, hi = count, table = r.p;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		int32_t v;
		memcpy(&v, (const void *)(uintptr_t)(table + mid * 8), 4);
		if (o->hdr + (uint64_t)(int64_t)v <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	*why = EHF_NO_FDE;
	if (!lo)
		return 0;
	int32_t fde;
	memcpy(&fde, (const void *)(uintptr_t)(table + (lo - 1) * 8 + 4), 4);
	return o->hdr + (uint64_t)(int64_t)fde;
}

static int rule_at(const struct ehf_obj *o, uint64_t pc, struct ehf_rule *rule)
{
	int why;
	uint64_t fde = find_fde(o, pc, &why);
	if (!fde)
		return why;
	struct rd r = { fde, o->hi, fde < o->lo };
	uint64_t len = get(&r, 4);
	if (r.bad || len == 0 || len == 0xffffffffu || r.end - r.p < len)
		return EHF_BAD;
	r.end = r.p + len;
	uint64_t cie_ptr = r.p, cie_off = get(&r, 4);
	if (r.bad || cie_off == 0 || cie_off > cie_ptr)
		return EHF_BAD;
	struct cie c;
	int ret = parse_cie(cie_ptr - cie_off, o, &c);
	if (ret != EHF_OK)
		return ret;
	uint64_t begin, range;
	if (read_ptr(&r, c.fde_enc, 0, 1, &begin) < 0 || read_ptr(&r, c.fde_enc & PE_FORMAT, 0, 1, &range) < 0)
		return EHF_AUGMENTATION;
	if (r.bad)
		return EHF_BAD;
	if (pc < begin || pc - begin >= range)
		return EHF_NO_FDE;
	if (c.has_z)
		skip(&r, uleb(&r));
	if (r.bad)
		return EHF_BAD;
	struct state init, st;
	memset(&init, 0, sizeof(init)); /* every register: same value */
	ret = run(c.instr, c.end, begin, pc, &c, &init, NULL);
	if (ret != EHF_OK)
		return ret;
	st = init;
	ret = run(r.p, r.end, begin, pc, &c, &st, &init);
	if (ret != EHF_OK)
		return ret;
	return classify(&st, rule);
}

int ehf_rule_at(const struct ehf_obj *o, uint64_t pc, struct ehf_rule *rule)
{
	memset(rule, 0, sizeof(*rule));
	int why = rule_at(o, pc, rule);
	if (why != EHF_OK) {
		memset(rule, 0, sizeof(*rule));
		rule->kind = EHF_COMPLEX;
		rule->why = (uint8_t)why;
	}
	return rule->kind;
}
