/*
 * eh_frame.h: the unwind rule of one instruction address, read from a loaded
 * object's .eh_frame through its .eh_frame_hdr search table. Only the rules
 * that x86-64 compilers emit for ordinary functions are understood (the CFA
 * is RSP or RBP plus a constant, the return address at CFA-8, RBP saved at
 * CFA+k or unchanged); anything else is reported as complex, and the caller
 * unwinds that stack another way. Every byte read lies inside the bounds the
 * caller gives: garbage or truncated sections give a complex rule, never a
 * read outside them. No allocation, no lock, no stdio: this runs inside the
 * profiled program.
 */
#ifndef HS_EH_FRAME_H
#define HS_EH_FRAME_H

#include <stdint.h>

/* Where one object's unwind tables are, as absolute addresses. */
struct ehf_obj {
	uint64_t hdr, hdr_end; /* .eh_frame_hdr: its PT_GNU_EH_FRAME segment */
	uint64_t lo, hi;       /* readable bytes that hold .eh_frame (its PT_LOAD) */
};

enum ehf_kind {
	EHF_COMPLEX = 1, /* not understood here: unwind this stack another way */
	EHF_SIMPLE = 2,  /* struct ehf_rule says how to find the caller */
	EHF_LAST = 3,    /* the return address is undefined: the outermost frame */
};

/* Why a rule is complex (for counters and tests). */
enum ehf_why {
	EHF_OK = 0,
	EHF_NO_HDR,       /* no usable .eh_frame_hdr search table */
	EHF_NO_FDE,       /* no FDE covers the address */
	EHF_BAD,          /* malformed or truncated data */
	EHF_AUGMENTATION, /* a CIE augmentation other than z, R, P, L (S: signal frame) */
	EHF_OPCODE,       /* a CFA instruction outside the simple set */
	EHF_EXPRESSION,   /* a DWARF expression rule (PLT, signal trampolines) */
	EHF_CFA_REG,      /* the CFA is not RSP or RBP plus a constant (stack realignment) */
	EHF_RA,           /* the return address is not at CFA-8 */
	EHF_RBP,          /* RBP is neither unchanged nor saved at CFA+k */
	EHF_REG,          /* another register is kept in a register or an expression */
};

struct ehf_rule {
	uint8_t kind;      /* enum ehf_kind */
	uint8_t why;       /* enum ehf_why, for a complex rule */
	uint8_t cfa_rbp;   /* CFA = RBP + cfa_off; else RSP + cfa_off */
	uint8_t rbp_saved; /* the caller's RBP is at CFA + rbp_off; else RBP is unchanged */
	int32_t cfa_off;
	int32_t rbp_off;
};

/* The rule at pc (an address inside the function: for a caller's frame,
 * its return address minus one). Returns rule->kind. */
int ehf_rule_at(const struct ehf_obj *o, uint64_t pc, struct ehf_rule *rule);

#endif
