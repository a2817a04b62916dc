/* surface.c — the seccomp filter evaluator and the link-map reader of `mu surface` (surface.h).
 *
 * Classic BPF as seccomp accepts it (Documentation/userspace-api/seccomp_filter.rst, and the
 * kernel's seccomp_check_filter): loads of 32-bit words of struct seccomp_data (nr at 0, arch at
 * 4, instruction_pointer at 8, args[6] at 16), the scratch memory, ALU, forward jumps and
 * returns. The evaluator follows the program as written, so what it reports is what the binary
 * installs, not what its source says.
 */
#include "host/surface.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"

/* classic BPF opcodes (linux/bpf_common.h) */
#define BPF_CLASS(c) ((c)&0x07)
#define BPF_LD 0x00
#define BPF_LDX 0x01
#define BPF_ST 0x02
#define BPF_STX 0x03
#define BPF_ALU 0x04
#define BPF_JMP 0x05
#define BPF_RET 0x06
#define BPF_MISC 0x07
#define BPF_SIZE(c) ((c)&0x18)
#define BPF_W 0x00
#define BPF_MODE(c) ((c)&0xe0)
#define BPF_IMM 0x00
#define BPF_ABS 0x20
#define BPF_MEM 0x60
#define BPF_LEN 0x80
#define BPF_OP(c) ((c)&0xf0)
#define BPF_SRC(c) ((c)&0x08)
#define BPF_X 0x08
#define BPF_RVAL(c) ((c)&0x18)
#define BPF_A 0x10
#define BPF_MISCOP(c) ((c)&0xf8)
#define BPF_TAX 0x00
#define BPF_TXA 0x80

#define SECCOMP_DATA_LEN 64u
#define SECCOMP_RET_ACTION_FULL 0xffff0000u
#define SECCOMP_RET_ALLOW 0x7fff0000u
#define AUDIT_ARCH_X86_64 0xc000003eu
#define AUDIT_ARCH_I386 0x40000003u
#define X32_BIT 0x40000000u

/* ---- parsing ---- */

/* the next line of text[*at..len) into line (NUL-terminated, at most cap-1 bytes), 0 at the end */
static int next_line(const char *text, size_t len, size_t *at, char *line, size_t cap)
{
	if (*at >= len)
		return 0;
	size_t s = *at, e = s;
	while (e < len && text[e] != '\n')
		e++;
	size_t n = e - s < cap - 1 ? e - s : cap - 1;
	memcpy(line, text + s, n);
	line[n] = 0;
	*at = e < len ? e + 1 : e;
	return 1;
}

static int parse_u32(const char **s, uint32_t *out)
{
	const char *p = *s;
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return 0;
	uint64_t v = 0;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return 0;
		p++;
	}
	*s = p;
	*out = (uint32_t)v;
	return 1;
}

enum mu_err surface_filter_parse(struct surface_filter *f, const char *text, size_t len, struct mu_error *err)
{
	char line[128] = "";
	size_t at = 0, lineno = 0;
	int ended = 0;
	memset(f, 0, sizeof *f);
	if (!next_line(text, len, &at, line, sizeof line) || strcmp(line, "mu-sandbox-filter 1") != 0)
		return mu_errf(err, MU_ERR_FORMAT, "the sandbox filter does not start with \"mu-sandbox-filter 1\"");
	lineno = 1;
	while (next_line(text, len, &at, line, sizeof line)) {
		lineno++;
		const char *p;
		uint32_t a, b, c, d;
		if (ended)
			return mu_errf(err, MU_ERR_FORMAT, "sandbox filter line %zu: text after \"end\"", lineno);
		if (!strncmp(line, "mode ", 5) && strlen(line + 5) < sizeof f->mode) {
			strcpy(f->mode, line + 5);
		} else if (!strncmp(line, "default ", 8) && strlen(line + 8) < sizeof f->dflt) {
			strcpy(f->dflt, line + 8);
		} else if (!strncmp(line, "rule ", 5)) {
			p = line + 5;
			if (!parse_u32(&p, &a) || *p != ' ' || !p[1] || strlen(p + 1) >= SURFACE_RULE_NAME_MAX ||
			    a >= SURFACE_NR_MAX)
				return mu_errf(err, MU_ERR_FORMAT, "sandbox filter line %zu: a malformed rule", lineno);
			if (f->n_rules >= SURFACE_NR_MAX)
				return mu_errf(err, MU_ERR_RANGE, "sandbox filter line %zu: too many rules", lineno);
			f->rule[f->n_rules].nr = a;
			strcpy(f->rule[f->n_rules].name, p + 1);
			f->n_rules++;
		} else if (!strncmp(line, "ins ", 4)) {
			p = line + 4;
			if (!parse_u32(&p, &a) || !parse_u32(&p, &b) || !parse_u32(&p, &c) || !parse_u32(&p, &d) || *p ||
			    a > 0xffff || b > 0xff || c > 0xff)
				return mu_errf(err, MU_ERR_FORMAT, "sandbox filter line %zu: a malformed instruction",
					       lineno);
			if (f->n_ins >= SURFACE_INS_MAX)
				return mu_errf(err, MU_ERR_RANGE, "sandbox filter line %zu: more than %u instructions",
					       lineno, SURFACE_INS_MAX);
			f->ins[f->n_ins++] = (struct surface_ins){(uint16_t)a, (uint8_t)b, (uint8_t)c, d};
		} else if (!strcmp(line, "end")) {
			ended = 1;
		} else {
			return mu_errf(err, MU_ERR_FORMAT, "sandbox filter line %zu: unexpected text", lineno);
		}
	}
	if (!ended)
		return mu_errf(err, MU_ERR_FORMAT, "the sandbox filter has no \"end\" line (cut short?)");
	if (!f->n_ins)
		return mu_errf(err, MU_ERR_FORMAT, "the sandbox filter has no instructions");
	return MU_OK;
}

const char *surface_filter_name(const struct surface_filter *f, uint32_t nr)
{
	for (size_t i = 0; i < f->n_rules; i++)
		if (f->rule[i].nr == nr)
			return f->rule[i].name;
	return NULL;
}

/* seccomp's actions (linux/seccomp.h), by their SECCOMP_RET_ACTION_FULL bits */
static const struct {
	uint32_t action;
	const char *name;
} action_names[] = {
	{0x80000000u, "kill-process"}, {0x00000000u, "kill-thread"}, {0x00030000u, "trap"},
	{0x00050000u, "errno"},        {0x7fc00000u, "user-notif"},  {0x7ff00000u, "trace"},
	{0x7ffc0000u, "log"},          {SECCOMP_RET_ALLOW, "allow"},
};

void surface_action_name(uint32_t action, char *buf, size_t cap)
{
	uint32_t a = action & SECCOMP_RET_ACTION_FULL;
	for (size_t i = 0; i < sizeof action_names / sizeof action_names[0]; i++)
		if (action_names[i].action == a) {
			if (a == 0x00050000u) /* errno carries its number */
				snprintf(buf, cap, "errno %u", (unsigned)(action & 0xffffu));
			else
				snprintf(buf, cap, "%s", action_names[i].name);
			return;
		}
	snprintf(buf, cap, "unknown 0x%08x", (unsigned)action);
}

/* ---- evaluation ---- */

/* The checks seccomp_check_filter and the classic BPF checker make, so that a program this
 * accepts is one the kernel would also run: known opcodes, aligned in-range loads, scratch
 * slots below 16, jumps inside the program, and a return as the last instruction. */
static enum mu_err check_prog(const struct surface_filter *f, struct mu_error *err)
{
	for (size_t pc = 0; pc < f->n_ins; pc++) {
		const struct surface_ins *in = &f->ins[pc];
		uint16_t c = in->code;
		switch (BPF_CLASS(c)) {
		case BPF_LD:
			if (c == (BPF_LD | BPF_W | BPF_ABS)) {
				if ((in->k & 3) || in->k >= SECCOMP_DATA_LEN)
					return mu_errf(err, MU_ERR_FORMAT, "instruction %zu loads outside seccomp_data", pc);
			} else if (c != (BPF_LD | BPF_W | BPF_LEN) && c != (BPF_LD | BPF_IMM) &&
				   c != (BPF_LD | BPF_MEM)) {
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu: a load seccomp refuses", pc);
			}
			if (c == (BPF_LD | BPF_MEM) && in->k >= 16)
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu: scratch slot %u", pc, (unsigned)in->k);
			break;
		case BPF_LDX:
			if (c != (BPF_LDX | BPF_W | BPF_LEN) && c != (BPF_LDX | BPF_IMM) && c != (BPF_LDX | BPF_MEM))
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu: a load seccomp refuses", pc);
			if (c == (BPF_LDX | BPF_MEM) && in->k >= 16)
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu: scratch slot %u", pc, (unsigned)in->k);
			break;
		case BPF_ST:
		case BPF_STX:
			if (in->k >= 16)
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu: scratch slot %u", pc, (unsigned)in->k);
			break;
		case BPF_ALU:
			switch (BPF_OP(c)) {
			case 0x00: case 0x10: case 0x20: case 0x30: case 0x40: case 0x50: case 0x60: case 0x70:
			case 0x80: case 0x90: case 0xa0: /* (0x90, modulo, is refused below) */
				break;
			default:
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu: an unknown ALU operation", pc);
			}
			if (BPF_OP(c) == 0x90)
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu: modulo, which seccomp refuses", pc);
			if (BPF_OP(c) == 0x30 && BPF_SRC(c) != BPF_X && in->k == 0)
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu divides by zero", pc);
			if ((BPF_OP(c) == 0x60 || BPF_OP(c) == 0x70) && BPF_SRC(c) != BPF_X && in->k >= 32)
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu shifts by %u", pc, (unsigned)in->k);
			break;
		case BPF_JMP:
			if (BPF_OP(c) == 0x00) { /* JA */
				if (in->k >= f->n_ins - pc - 1)
					return mu_errf(err, MU_ERR_FORMAT, "instruction %zu jumps past the end", pc);
			} else if (BPF_OP(c) >= 0x10 && BPF_OP(c) <= 0x40) {
				if ((size_t)in->jt >= f->n_ins - pc - 1 || (size_t)in->jf >= f->n_ins - pc - 1)
					return mu_errf(err, MU_ERR_FORMAT, "instruction %zu jumps past the end", pc);
			} else {
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu: an unknown jump", pc);
			}
			break;
		case BPF_RET:
			if (BPF_RVAL(c) != 0 && BPF_RVAL(c) != BPF_A)
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu: an unknown return", pc);
			break;
		case BPF_MISC:
			if (BPF_MISCOP(c) != BPF_TAX && BPF_MISCOP(c) != BPF_TXA)
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu: an unknown operation", pc);
			break;
		}
	}
	if (BPF_CLASS(f->ins[f->n_ins - 1].code) != BPF_RET)
		return mu_errf(err, MU_ERR_FORMAT, "the filter does not end in a return");
	return MU_OK;
}

/* The evaluation follows every path of the program for one system call number. The number
 * and the architecture are known; everything else the program can read (the instruction
 * pointer, the six arguments, a scratch slot nothing wrote) is unknown, and so is every value
 * computed from an unknown one. A jump on a known value goes one way; a jump on an unknown
 * value goes both ways. Each path ends in a return, whose action is known unless it is
 * RET A with A unknown. The number is allowed when every path allows it, refused when none
 * does, and allowed for some arguments (checked) otherwise. Paths that no argument values
 * could take (two contradictory tests of the same argument) are followed too, so "checked"
 * may be said of a number no arguments can really pass: the error is on the side of counting
 * a call as allowed, which is the safe side for a budget. */

struct path_state {
	uint32_t A, X, M[16];
	uint32_t unknown; /* bit 0: A, bit 1: X, bits 2..17: M[0..15] */
};

#define UNK_A 1u
#define UNK_X 2u
#define UNK_M(i) (4u << (i))

/* What the paths of one number came to. */
struct path_result {
	int allowed_some, refused_some;
	uint32_t refusal; /* the action of one refusing path (the first met) */
	int has_refusal;
	uint64_t steps;
};

#define PATH_STEP_LIMIT 1000000u /* per number; beyond it the number counts as checked */
#define EVAL_STEP_LIMIT 64000000u /* all numbers; beyond it the rest count as checked */

/* An action lets the call run: allow, log (runs and logs), and the two that hand the decision
 * to another program (trace, user-notif), which may let it run. */
static int action_runs(uint32_t action)
{
	uint32_t a = action & SECCOMP_RET_ACTION_FULL;
	return a == SECCOMP_RET_ALLOW || a == 0x7ffc0000u || a == 0x7ff00000u || a == 0x7fc00000u;
}

static void path_end(struct path_result *res, uint32_t action, int known)
{
	if (!known) {
		/* RET A with A unknown: may be anything */
		res->allowed_some = res->refused_some = 1;
		return;
	}
	if (action_runs(action)) {
		res->allowed_some = 1;
	} else {
		res->refused_some = 1;
		if (!res->has_refusal) {
			res->refusal = action;
			res->has_refusal = 1;
		}
	}
}

/* *dst (whose unknown bit is bit) = v, known or not */
static void set(struct path_state *st, uint32_t *dst, uint32_t bit, uint32_t v, int unknown)
{
	*dst = v;
	st->unknown = unknown ? st->unknown | bit : st->unknown & ~bit;
}

/* what a load (BPF_LD or BPF_LDX, mode of c) reads, and whether it is unknown: the number and
 * the architecture are known; the instruction pointer and the arguments are not */
static uint32_t load(const struct path_state *st, uint16_t c, uint32_t k, const uint32_t data[16], int *unknown)
{
	*unknown = 0;
	switch (BPF_MODE(c)) {
	case BPF_ABS:
		*unknown = k / 4 > 1;
		return k / 4 <= 1 ? data[k / 4] : 0;
	case BPF_LEN:
		return SECCOMP_DATA_LEN;
	case BPF_MEM:
		*unknown = (st->unknown & UNK_M(k)) != 0;
		return st->M[k];
	default:
		return k;
	}
}

static void explore(const struct surface_filter *f, size_t pc, struct path_state st, const uint32_t data[16],
		    struct path_result *res)
{
	for (; pc < f->n_ins; pc++) {
		if (++res->steps > PATH_STEP_LIMIT) {
			res->allowed_some = res->refused_some = 1;
			return;
		}
		const struct surface_ins *in = &f->ins[pc];
		uint16_t c = in->code;
		int src_unk = BPF_SRC(c) == BPF_X && (st.unknown & UNK_X);
		uint32_t src = BPF_SRC(c) == BPF_X ? st.X : in->k;
		switch (BPF_CLASS(c)) {
		case BPF_LD:
		case BPF_LDX: {
			int unk;
			uint32_t v = load(&st, c, in->k, data, &unk);
			if (BPF_CLASS(c) == BPF_LD)
				set(&st, &st.A, UNK_A, v, unk);
			else
				set(&st, &st.X, UNK_X, v, unk);
			break;
		}
		case BPF_ST:
			set(&st, &st.M[in->k], UNK_M(in->k), st.A, (st.unknown & UNK_A) != 0);
			break;
		case BPF_STX:
			set(&st, &st.M[in->k], UNK_M(in->k), st.X, (st.unknown & UNK_X) != 0);
			break;
		case BPF_ALU:
			if (src_unk)
				st.unknown |= UNK_A;
			if (st.unknown & UNK_A)
				break; /* unknown stays unknown */
			switch (BPF_OP(c)) {
			case 0x00: st.A += src; break;
			case 0x10: st.A -= src; break;
			case 0x20: st.A *= src; break;
			case 0x30:
				if (!src) { /* division by X == 0 ends the program with 0 */
					path_end(res, 0, 1);
					return;
				}
				st.A /= src;
				break;
			case 0x40: st.A |= src; break;
			case 0x50: st.A &= src; break;
			case 0x60: st.A = src < 32 ? st.A << src : 0; break;
			case 0x70: st.A = src < 32 ? st.A >> src : 0; break;
			case 0x80: st.A = (uint32_t)-st.A; break;
			case 0xa0: st.A ^= src; break;
			}
			break;
		case BPF_JMP: {
			if (BPF_OP(c) == 0x00) {
				pc += in->k;
				continue;
			}
			if ((st.unknown & UNK_A) || src_unk) {
				/* both ways: the jump-taken side first, then go on with the other */
				if (in->jt != in->jf)
					explore(f, pc + 1 + in->jt, st, data, res);
				pc += in->jf;
				continue;
			}
			int t;
			switch (BPF_OP(c)) {
			case 0x10: t = st.A == src; break;
			case 0x20: t = st.A > src; break;
			case 0x30: t = st.A >= src; break;
			default: t = (st.A & src) != 0; break;
			}
			pc += t ? in->jt : in->jf;
			break;
		}
		case BPF_RET:
			if (BPF_RVAL(c) == BPF_A)
				path_end(res, st.A, !(st.unknown & UNK_A));
			else
				path_end(res, in->k, 1);
			return;
		case BPF_MISC:
			if (BPF_MISCOP(c) == BPF_TAX)
				set(&st, &st.X, UNK_X, st.A, (st.unknown & UNK_A) != 0);
			else
				set(&st, &st.A, UNK_A, st.X, (st.unknown & UNK_X) != 0);
			break;
		}
	}
	/* not reached for a checked program: it ends in a return */
	res->allowed_some = res->refused_some = 1;
}

static struct path_result eval_one(const struct surface_filter *f, uint32_t nr, uint32_t arch)
{
	uint32_t data[16] = {0};
	struct path_state st;
	struct path_result res = {0};
	data[0] = nr;
	data[1] = arch;
	memset(&st, 0, sizeof st);
	st.unknown = 0x3fffcu; /* scratch memory nothing wrote yet */
	explore(f, 0, st, data, &res);
	return res;
}

enum mu_err surface_filter_eval(const struct surface_filter *f, struct surface_eval *out, struct mu_error *err)
{
	memset(out, 0, sizeof *out);
	if (!f->n_ins)
		return mu_errf(err, MU_ERR_FORMAT, "the filter is empty");
	enum mu_err rc = check_prog(f, err);
	if (rc)
		return rc;
	int have_default = 0;
	uint64_t steps = 0;
	for (uint32_t nr = 0; nr < SURFACE_NR_MAX; nr++) {
		struct path_result res = {.allowed_some = 1, .refused_some = 1};
		if (steps < EVAL_STEP_LIMIT)
			res = eval_one(f, nr, AUDIT_ARCH_X86_64);
		steps += res.steps;
		if (res.steps > PATH_STEP_LIMIT || steps >= EVAL_STEP_LIMIT)
			out->truncated = 1;
		out->verdict[nr] = !res.allowed_some ? SV_REFUSED : res.refused_some ? SV_CHECKED : SV_ALLOWED;
		if (res.allowed_some)
			out->allowed++;
		if (res.allowed_some && res.refused_some)
			out->checked++;
		/* the action for an unlisted number: the first one no rule names and no path allows */
		if (!have_default && !res.allowed_some && res.has_refusal && !surface_filter_name(f, nr)) {
			out->default_action = res.refusal;
			have_default = 1;
		}
	}
	struct path_result fa = eval_one(f, 0, AUDIT_ARCH_I386);
	out->foreign_arch_action = fa.allowed_some || !fa.has_refusal ? SECCOMP_RET_ALLOW : fa.refusal;
	struct path_result x32 = eval_one(f, X32_BIT, AUDIT_ARCH_X86_64);
	out->x32_action = x32.allowed_some || !x32.has_refusal ? SECCOMP_RET_ALLOW : x32.refusal;
	return MU_OK;
}

/* ---- link maps ---- */

/* skips spaces; returns the start of the next token and cuts it with a NUL (in place) */
static char *token(char **s)
{
	char *p = *s;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return NULL;
	char *t = p;
	while (*p && *p != ' ' && *p != '\t')
		p++;
	if (*p)
		*p++ = 0;
	*s = p;
	return t;
}

static int hex_u64(const char *s, uint64_t *out)
{
	if (!s || s[0] != '0' || s[1] != 'x' || !s[2])
		return 0;
	uint64_t v = 0;
	for (s += 2; *s; s++) {
		int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
		if (d < 0 || v >> 60)
			return 0;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 1;
}

enum mu_err surface_map_parse(char *text, size_t len, void (*fn)(void *ctx, const struct surface_map_sec *s),
			      void *ctx, struct mu_error *err)
{
	static const char start[] = "Linker script and memory map";
	if (!len || text[len - 1] != 0)
		return mu_errf(err, MU_ERR_ARG, "surface_map_parse: the text must end in a NUL");
	char *p = strstr(text, start);
	if (!p)
		return mu_errf(err, MU_ERR_FORMAT, "not a GNU ld link map (no \"%s\")", start);
	char *out = NULL;
	char *pending = NULL; /* an input section name whose address and size are on the next line */
	char *out_pending = NULL; /* the same for an output section */
	size_t found = 0;
	while (p && *p) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = 0;
		char *line = p;
		p = nl ? nl + 1 : NULL;
		if (line[0] == '.' || (line[0] >= 'A' && line[0] <= 'Z') || line[0] == '/') {
			/* an output section (".text 0xADDR 0xSIZE", or the name alone with the rest on the
			 * next line), or a top-level statement */
			char *s = line;
			char *name = token(&s);
			out = name && name[0] == '.' ? name : NULL;
			pending = NULL;
			out_pending = NULL;
			if (!out)
				continue;
			char *a = token(&s), *b = token(&s);
			uint64_t addr, size;
			if (!a)
				out_pending = out;
			else if (hex_u64(a, &addr) && hex_u64(b, &size))
				fn(ctx, &(struct surface_map_sec){.out = out, .file = NULL, .addr = addr, .size = size});
			continue;
		}
		if (out_pending) {
			char *s = line;
			char *a = token(&s), *b = token(&s);
			uint64_t addr, size;
			if (a && hex_u64(a, &addr) && hex_u64(b, &size))
				fn(ctx, &(struct surface_map_sec){.out = out_pending, .file = NULL, .addr = addr, .size = size});
			out_pending = NULL;
			continue;
		}
		if (line[0] != ' ' || !out)
			continue;
		char *s = line;
		char *t1 = token(&s);
		if (!t1)
			continue;
		char *name = NULL, *a, *b;
		if (t1[0] == '0' && t1[1] == 'x') {
			if (!pending)
				continue; /* a symbol line: "0xADDR name" */
			name = pending;
			a = t1;
		} else {
			if (t1[0] == '*') /* "*(.text*)" patterns, "*fill*" */
				continue;
			name = t1;
			a = token(&s);
			if (!a) {
				pending = name; /* a long name: the rest is on the next line */
				continue;
			}
		}
		pending = NULL;
		b = token(&s);
		char *file = token(&s);
		uint64_t addr, size;
		if (!file || !hex_u64(a, &addr) || !hex_u64(b, &size) || !size)
			continue;
		/* the file name runs to the end of the line (paths with spaces are cut at the first) */
		struct surface_map_sec sec = {.out = out, .file = file, .addr = addr, .size = size};
		(void)name;
		fn(ctx, &sec);
		found++;
	}
	if (!found)
		return mu_errf(err, MU_ERR_FORMAT, "the link map lists no input sections");
	return MU_OK;
}
