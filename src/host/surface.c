/* surface.c — the seccomp filter evaluator and the link-map reader of `mu surface` (surface.h).
 *
 * Classic BPF as seccomp accepts it (Documentation/userspace-api/seccomp_filter.rst, and the
 * kernel's seccomp_check_filter): loads of 32-bit words of struct seccomp_data (nr at 0, arch at
 * 4, instruction_pointer at 8, args[6] at 16), the scratch memory, ALU, forward jumps and
 * returns. The evaluator runs the program as written, so what it reports is what the binary
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
	char line[128];
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

void surface_action_name(uint32_t action, char *buf, size_t cap)
{
	switch (action & SECCOMP_RET_ACTION_FULL) {
	case 0x80000000u:
		snprintf(buf, cap, "kill-process");
		return;
	case 0x00000000u:
		snprintf(buf, cap, "kill-thread");
		return;
	case 0x00030000u:
		snprintf(buf, cap, "trap");
		return;
	case 0x00050000u:
		snprintf(buf, cap, "errno %u", (unsigned)(action & 0xffffu));
		return;
	case 0x7fc00000u:
		snprintf(buf, cap, "user-notif");
		return;
	case 0x7ff00000u:
		snprintf(buf, cap, "trace");
		return;
	case 0x7ffc0000u:
		snprintf(buf, cap, "log");
		return;
	case SECCOMP_RET_ALLOW:
		snprintf(buf, cap, "allow");
		return;
	default:
		snprintf(buf, cap, "unknown 0x%08x", (unsigned)action);
		return;
	}
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
			case 0x80: case 0x90: case 0xa0:
				break;
			default:
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu: an unknown ALU operation", pc);
			}
			if ((BPF_OP(c) == 0x30 || BPF_OP(c) == 0x90) && BPF_SRC(c) != BPF_X && in->k == 0)
				return mu_errf(err, MU_ERR_FORMAT, "instruction %zu divides by zero", pc);
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

/* One run of a checked program over data (16 words of struct seccomp_data). Every jump goes
 * forward, so it ends within n_ins steps. */
static uint32_t run(const struct surface_filter *f, const uint32_t data[16])
{
	uint32_t A = 0, X = 0, M[16] = {0};
	for (size_t pc = 0; pc < f->n_ins; pc++) {
		const struct surface_ins *in = &f->ins[pc];
		uint16_t c = in->code;
		uint32_t src = BPF_SRC(c) == BPF_X ? X : in->k;
		switch (BPF_CLASS(c)) {
		case BPF_LD:
			A = BPF_MODE(c) == BPF_ABS ? data[in->k / 4]
			    : BPF_MODE(c) == BPF_LEN ? SECCOMP_DATA_LEN
			    : BPF_MODE(c) == BPF_MEM ? M[in->k]
						     : in->k;
			break;
		case BPF_LDX:
			X = BPF_MODE(c) == BPF_LEN ? SECCOMP_DATA_LEN : BPF_MODE(c) == BPF_MEM ? M[in->k] : in->k;
			break;
		case BPF_ST:
			M[in->k] = A;
			break;
		case BPF_STX:
			M[in->k] = X;
			break;
		case BPF_ALU:
			switch (BPF_OP(c)) {
			case 0x00: A += src; break;
			case 0x10: A -= src; break;
			case 0x20: A *= src; break;
			case 0x30: A = src ? A / src : 0; break; /* the kernel returns 0 on a division by X == 0 */
			case 0x40: A |= src; break;
			case 0x50: A &= src; break;
			case 0x60: A = src < 32 ? A << src : 0; break;
			case 0x70: A = src < 32 ? A >> src : 0; break;
			case 0x80: A = (uint32_t)-A; break;
			case 0x90: A = src ? A % src : 0; break;
			case 0xa0: A ^= src; break;
			}
			break;
		case BPF_JMP: {
			int t;
			switch (BPF_OP(c)) {
			case 0x00:
				pc += in->k;
				continue;
			case 0x10: t = A == src; break;
			case 0x20: t = A > src; break;
			case 0x30: t = A >= src; break;
			default: t = (A & src) != 0; break;
			}
			pc += t ? in->jt : in->jf;
			break;
		}
		case BPF_RET:
			return BPF_RVAL(c) == BPF_A ? A : in->k;
		case BPF_MISC:
			if (BPF_MISCOP(c) == BPF_TAX)
				X = A;
			else
				A = X;
			break;
		}
	}
	return 0; /* not reached for a checked program (it ends in a return) */
}

enum mu_err surface_filter_eval(const struct surface_filter *f, struct surface_eval *out, struct mu_error *err)
{
	memset(out, 0, sizeof *out);
	if (!f->n_ins)
		return mu_errf(err, MU_ERR_FORMAT, "the filter is empty");
	enum mu_err rc = check_prog(f, err);
	if (rc)
		return rc;

	/* argument values to try: 0, all ones, and every constant compared with (and its
	 * neighbours), each in one argument word at a time */
	/* (only constants compared with a value loaded from an argument word: the ones compared
	 * with the number or the architecture would only multiply the runs) */
	uint32_t vals[2 + 3 * SURFACE_INS_MAX];
	size_t nv = 0;
	int a_from_arg = 0;
	vals[nv++] = 0;
	vals[nv++] = UINT32_MAX;
	for (size_t i = 0; i < f->n_ins; i++) {
		uint16_t c = f->ins[i].code;
		if (BPF_CLASS(c) == BPF_LD)
			a_from_arg = BPF_MODE(c) == BPF_ABS && f->ins[i].k >= 16;
		else if (BPF_CLASS(c) == BPF_MISC && BPF_MISCOP(c) == BPF_TXA)
			a_from_arg = 1; /* X may hold anything: count its comparisons too */
		if (a_from_arg && BPF_CLASS(c) == BPF_JMP && BPF_OP(c) != 0x00 && BPF_SRC(c) != BPF_X) {
			uint32_t k = f->ins[i].k;
			uint32_t cand[3] = {k, k + 1, k - 1};
			for (int j = 0; j < 3; j++) {
				size_t m = 0;
				while (m < nv && vals[m] != cand[j])
					m++;
				if (m == nv)
					vals[nv++] = cand[j];
			}
		}
	}

	/* the argument words the program reads at all (words 4..15: args[0..5], low word first);
	 * the others cannot change a verdict */
	int used[16] = {0}, any_used = 0;
	for (size_t i = 0; i < f->n_ins; i++)
		if (f->ins[i].code == (BPF_LD | BPF_W | BPF_ABS) && f->ins[i].k >= 16)
			any_used = used[f->ins[i].k / 4] = 1;

	uint32_t data[16];
	for (uint32_t nr = 0; nr < SURFACE_NR_MAX; nr++) {
		int any = 0, all = 1;
		memset(data, 0, sizeof data);
		data[0] = nr;
		data[1] = AUDIT_ARCH_X86_64;
		if (!any_used)
			any = all = (run(f, data) & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_ALLOW;
		for (unsigned w = 4; w < 16; w++)
			for (size_t v = 0; used[w] && v < nv; v++) {
				data[w] = vals[v];
				int ok = (run(f, data) & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_ALLOW;
				any |= ok;
				all &= ok;
				data[w] = 0;
			}
		out->verdict[nr] = !any ? SV_REFUSED : all ? SV_ALLOWED : SV_CHECKED;
		if (any)
			out->allowed++;
		if (any && !all)
			out->checked++;
	}
	memset(data, 0, sizeof data);
	data[1] = AUDIT_ARCH_I386;
	out->foreign_arch_action = run(f, data);
	data[1] = AUDIT_ARCH_X86_64;
	data[0] = X32_BIT;
	out->x32_action = run(f, data);
	/* an unlisted number: the first one no rule names and the filter refuses */
	out->default_action = 0;
	for (uint32_t nr = 0; nr < SURFACE_NR_MAX; nr++)
		if (out->verdict[nr] == SV_REFUSED && !surface_filter_name(f, nr)) {
			data[0] = nr;
			out->default_action = run(f, data);
			break;
		}
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
	size_t found = 0;
	while (p && *p) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = 0;
		char *line = p;
		p = nl ? nl + 1 : NULL;
		if (line[0] == '.' || (line[0] >= 'A' && line[0] <= 'Z') || line[0] == '/') {
			/* an output section (".text ..."), or a top-level statement */
			char *s = line;
			char *name = token(&s);
			out = name && name[0] == '.' ? name : NULL;
			pending = NULL;
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
