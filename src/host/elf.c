/* elf.c — ELF64 and DWARF line tables for `mu surface` (elf.h).
 *
 * Formats: the System V gABI (ELF header, section and program headers, .dynamic, .symtab) and
 * DWARF 2-5 section 6.2 (the line number program). Only what the report needs is decoded; the
 * rest is skipped by its stated length.
 */
#include "host/elf.h"

#include <stdlib.h>
#include <string.h>

#include "base/endian.h"

#define EHDR_SIZE 64u
#define SHDR_SIZE 64u
#define PHDR_SIZE 56u
#define PT_DYNAMIC 2u
#define PT_INTERP 3u
#define SHT_SYMTAB 2u
#define SHT_DYNAMIC 6u
#define DT_NULL 0u
#define DT_NEEDED 1u
#define STT_OBJECT 1u
#define STT_FUNC 2u

/* in-range: [off, off + len) lies inside n bytes, without overflow */
static int fits(uint64_t off, uint64_t len, size_t n) { return off <= n && len <= n - off; }

/* A NUL-terminated string at off inside [0, n), or NULL. */
static const char *str_at(const uint8_t *p, size_t n, uint64_t off)
{
	if (off >= n)
		return NULL;
	if (!memchr(p + off, 0, n - off))
		return NULL;
	return (const char *)p + off;
}

enum mu_err elf_parse(struct elf_file *e, const uint8_t *p, size_t n, const char *name, struct mu_error *err)
{
	memset(e, 0, sizeof *e);
	if (n < EHDR_SIZE || memcmp(p, "\177ELF", 4) != 0)
		return mu_errf(err, MU_ERR_FORMAT, "%s: not an ELF file", name);
	if (p[4] != 2 || p[5] != 1)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "%s: only 64-bit little-endian ELF files are read", name);
	e->p = p;
	e->n = n;
	e->type = le16_load(p + 16);
	e->machine = le16_load(p + 18);
	uint64_t phoff = le64_load(p + 32), shoff = le64_load(p + 40);
	uint16_t phentsize = le16_load(p + 54), phnum = le16_load(p + 56);
	uint16_t shentsize = le16_load(p + 58), shnum = le16_load(p + 60), shstrndx = le16_load(p + 62);

	if (phnum && (phentsize != PHDR_SIZE || !fits(phoff, (uint64_t)phnum * PHDR_SIZE, n)))
		return mu_errf(err, MU_ERR_FORMAT, "%s: the program headers lie outside the file", name);
	for (uint16_t i = 0; i < phnum; i++) {
		const uint8_t *ph = p + phoff + (uint64_t)i * PHDR_SIZE;
		uint32_t type = le32_load(ph);
		if (type == PT_DYNAMIC)
			e->has_dynamic = 1;
		if (type == PT_INTERP) {
			uint64_t off = le64_load(ph + 8), sz = le64_load(ph + 32);
			if (!sz || !fits(off, sz, n) || p[off + sz - 1] != 0)
				return mu_errf(err, MU_ERR_FORMAT, "%s: a malformed PT_INTERP", name);
			e->interp = (const char *)p + off;
		}
	}

	if (!shnum)
		return MU_OK; /* no sections: nothing more to read (the report says so) */
	if (shentsize != SHDR_SIZE || !fits(shoff, (uint64_t)shnum * SHDR_SIZE, n))
		return mu_errf(err, MU_ERR_FORMAT, "%s: the section headers lie outside the file", name);
	if (shstrndx >= shnum)
		return mu_errf(err, MU_ERR_FORMAT, "%s: the section-name table index %u is out of range", name,
			       (unsigned)shstrndx);
	e->sec = calloc(shnum, sizeof *e->sec);
	if (!e->sec)
		return mu_errf(err, MU_ERR_NOMEM, "%s: no memory for %u section headers", name, (unsigned)shnum);
	e->shnum = shnum;
	for (uint16_t i = 0; i < shnum; i++) {
		const uint8_t *sh = p + shoff + (uint64_t)i * SHDR_SIZE;
		struct elf_sec *s = &e->sec[i];
		s->type = le32_load(sh + 4);
		s->flags = le64_load(sh + 8);
		s->addr = le64_load(sh + 16);
		s->off = le64_load(sh + 24);
		s->size = le64_load(sh + 32);
		s->link = le32_load(sh + 40);
		s->entsize = le64_load(sh + 56);
		if (s->type != ELF_SHT_NOBITS && s->type != 0 && !fits(s->off, s->size, n)) {
			elf_free(e);
			return mu_errf(err, MU_ERR_FORMAT, "%s: section %u lies outside the file", name, (unsigned)i);
		}
	}
	const struct elf_sec *strs = &e->sec[shstrndx];
	for (uint16_t i = 0; i < shnum; i++) {
		const uint8_t *sh = p + shoff + (uint64_t)i * SHDR_SIZE;
		uint32_t nm = le32_load(sh);
		/* (a NULL or NOBITS section's offset and size were not checked: it has no bytes) */
		const char *s = !elf_sec_data(e, strs) ? NULL : str_at(p + strs->off, strs->size, nm);
		if (!s) {
			elf_free(e);
			return mu_errf(err, MU_ERR_FORMAT, "%s: section %u has no valid name", name, (unsigned)i);
		}
		e->sec[i].name = s;
	}
	return MU_OK;
}

void elf_free(struct elf_file *e)
{
	free(e->sec);
	e->sec = NULL;
	e->shnum = 0;
}

const struct elf_sec *elf_section(const struct elf_file *e, const char *name)
{
	for (size_t i = 0; i < e->shnum; i++)
		if (!strcmp(e->sec[i].name, name))
			return &e->sec[i];
	return NULL;
}

const uint8_t *elf_sec_data(const struct elf_file *e, const struct elf_sec *s)
{
	if (!s || s->type == ELF_SHT_NOBITS || s->type == 0)
		return NULL;
	return e->p + s->off;
}

/* The string table a section links to. */
static const struct elf_sec *linked(const struct elf_file *e, const struct elf_sec *s)
{
	if (s->link >= e->shnum || !elf_sec_data(e, &e->sec[s->link]))
		return NULL;
	return &e->sec[s->link];
}

enum mu_err elf_needed(const struct elf_file *e, void (*fn)(void *ctx, const char *lib), void *ctx,
		       struct mu_error *err)
{
	for (size_t i = 0; i < e->shnum; i++) {
		const struct elf_sec *s = &e->sec[i];
		if (s->type != SHT_DYNAMIC)
			continue;
		const struct elf_sec *str = linked(e, s);
		if (!str)
			return mu_errf(err, MU_ERR_FORMAT, "the .dynamic section has no string table");
		const uint8_t *d = elf_sec_data(e, s);
		for (uint64_t o = 0; o + 16 <= s->size; o += 16) {
			uint64_t tag = le64_load(d + o), val = le64_load(d + o + 8);
			if (tag == DT_NULL)
				break;
			if (tag != DT_NEEDED)
				continue;
			const char *lib = str_at(e->p + str->off, str->size, val);
			if (!lib)
				return mu_errf(err, MU_ERR_FORMAT, "a DT_NEEDED entry names no valid string");
			fn(ctx, lib);
		}
	}
	return MU_OK;
}

enum mu_err elf_symbols(const struct elf_file *e, void (*fn)(void *ctx, const struct elf_sym *s), void *ctx,
			struct mu_error *err)
{
	for (size_t i = 0; i < e->shnum; i++) {
		const struct elf_sec *s = &e->sec[i];
		if (s->type != SHT_SYMTAB)
			continue;
		const struct elf_sec *str = linked(e, s);
		if (!str || s->entsize != 24)
			return mu_errf(err, MU_ERR_FORMAT, "a malformed .symtab (entry size %llu)",
				       (unsigned long long)s->entsize);
		const uint8_t *d = elf_sec_data(e, s);
		for (uint64_t o = 0; o + 24 <= s->size; o += 24) {
			uint8_t type = d[o + 4] & 0xf;
			uint16_t shndx = le16_load(d + o + 6);
			if ((type != STT_FUNC && type != STT_OBJECT) || shndx == 0)
				continue;
			const char *nm = str_at(e->p + str->off, str->size, le32_load(d + o));
			if (!nm)
				return mu_errf(err, MU_ERR_FORMAT, "a symbol has no valid name");
			struct elf_sym sym = {.name = nm, .value = le64_load(d + o + 8), .size = le64_load(d + o + 16),
					      .is_func = type == STT_FUNC};
			fn(ctx, &sym);
		}
	}
	return MU_OK;
}

/* ---- DWARF line tables ---- */

#define DW_LNS_copy 1
#define DW_LNS_advance_pc 2
#define DW_LNS_advance_line 3
#define DW_LNS_set_file 4
#define DW_LNS_const_add_pc 8
#define DW_LNS_fixed_advance_pc 9
#define DW_LNE_end_sequence 1
#define DW_LNE_set_address 2
#define DW_LNE_define_file 3
#define DW_LNCT_path 1
#define DW_LNCT_directory_index 2
#define DW_FORM_block 0x09
#define DW_FORM_block1 0x0a
#define DW_FORM_block2 0x03
#define DW_FORM_block4 0x04
#define DW_FORM_data1 0x0b
#define DW_FORM_data2 0x05
#define DW_FORM_data4 0x06
#define DW_FORM_data8 0x07
#define DW_FORM_data16 0x1e
#define DW_FORM_string 0x08
#define DW_FORM_strp 0x0e
#define DW_FORM_line_strp 0x1f
#define DW_FORM_udata 0x0f
#define DW_FORM_sdata 0x0d

#define MAX_DIRS 4096u
#define MAX_FILES 16384u

/* A bounded reader over one section. */
struct rd {
	const uint8_t *p;
	size_t n, at;
	int bad;
};

static uint64_t rd_u(struct rd *r, unsigned bytes)
{
	if (r->bad || bytes > r->n - r->at) {
		r->bad = 1;
		return 0;
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)r->p[r->at + i] << (8 * i);
	r->at += bytes;
	return v;
}

static uint64_t rd_uleb(struct rd *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0;; shift += 7) {
		if (r->bad || r->at >= r->n || shift > 63) {
			r->bad = 1;
			return 0;
		}
		uint8_t b = r->p[r->at++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
}

static int64_t rd_sleb(struct rd *r)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;
	do {
		if (r->bad || r->at >= r->n || shift > 63) {
			r->bad = 1;
			return 0;
		}
		b = r->p[r->at++];
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	if (shift < 64 && (b & 0x40))
		v |= ~(uint64_t)0 << shift;
	return (int64_t)v;
}

static const char *rd_cstr(struct rd *r)
{
	const char *s = r->bad ? NULL : str_at(r->p, r->n, r->at);
	if (!s) {
		r->bad = 1;
		return "";
	}
	r->at += strlen(s) + 1;
	return s;
}

static void rd_skip(struct rd *r, uint64_t len)
{
	if (r->bad || len > r->n - r->at)
		r->bad = 1;
	else
		r->at += (size_t)len;
}

struct line_ctx {
	const struct elf_file *e;
	const struct elf_sec *str, *line_str;
	const char *dirs[MAX_DIRS];
	const char *files[MAX_FILES];
	uint32_t file_dir[MAX_FILES];
	size_t ndirs, nfiles;
	uint64_t unit;
};

/* One attribute value of a DWARF 5 directory or file entry: a string for the string forms,
 * else *num; anything else is skipped by its form's size. */
static const char *read_form(struct line_ctx *c, struct rd *r, uint64_t form, int offset64, uint64_t *num)
{
	*num = 0;
	switch (form) {
	case DW_FORM_string:
		return rd_cstr(r);
	case DW_FORM_strp:
	case DW_FORM_line_strp: {
		uint64_t off = rd_u(r, offset64 ? 8 : 4);
		const struct elf_sec *s = form == DW_FORM_strp ? c->str : c->line_str;
		const uint8_t *d = s ? elf_sec_data(c->e, s) : NULL;
		const char *v = d ? str_at(d, s->size, off) : NULL;
		if (!v)
			r->bad = 1;
		return v ? v : "";
	}
	case DW_FORM_udata:
		*num = rd_uleb(r);
		return NULL;
	case DW_FORM_sdata:
		(void)rd_sleb(r);
		return NULL;
	case DW_FORM_data1:
		*num = rd_u(r, 1);
		return NULL;
	case DW_FORM_data2:
		*num = rd_u(r, 2);
		return NULL;
	case DW_FORM_data4:
		*num = rd_u(r, 4);
		return NULL;
	case DW_FORM_data8:
		*num = rd_u(r, 8);
		return NULL;
	case DW_FORM_data16:
		rd_skip(r, 16);
		return NULL;
	case DW_FORM_block:
		rd_skip(r, rd_uleb(r));
		return NULL;
	case DW_FORM_block1:
		rd_skip(r, rd_u(r, 1));
		return NULL;
	case DW_FORM_block2:
		rd_skip(r, rd_u(r, 2));
		return NULL;
	case DW_FORM_block4:
		rd_skip(r, rd_u(r, 4));
		return NULL;
	default:
		r->bad = 2; /* a form this reader does not know */
		return NULL;
	}
}

/* DWARF 5: entry formats, then the entries (directories when dir, else files). */
static int read_entries_v5(struct line_ctx *c, struct rd *r, int offset64, int dir)
{
	uint8_t nfmt = (uint8_t)rd_u(r, 1);
	uint64_t fmt[2 * 16];
	if (nfmt > 16)
		return 0;
	for (unsigned i = 0; i < nfmt; i++) {
		fmt[2 * i] = rd_uleb(r);
		fmt[2 * i + 1] = rd_uleb(r);
	}
	uint64_t count = rd_uleb(r);
	if (r->bad || count > (dir ? MAX_DIRS : MAX_FILES))
		return 0;
	for (uint64_t k = 0; k < count; k++) {
		const char *path = "";
		uint64_t dir_index = 0;
		for (unsigned i = 0; i < nfmt; i++) {
			uint64_t num;
			const char *s = read_form(c, r, fmt[2 * i + 1], offset64, &num);
			if (fmt[2 * i] == DW_LNCT_path && s)
				path = s;
			else if (fmt[2 * i] == DW_LNCT_directory_index)
				dir_index = num;
		}
		if (r->bad)
			return 0;
		if (dir) {
			c->dirs[c->ndirs++] = path;
		} else {
			c->files[c->nfiles] = path;
			c->file_dir[c->nfiles++] = dir_index < c->ndirs ? (uint32_t)dir_index : UINT32_MAX;
		}
	}
	return 1;
}

/* DWARF 2-4: include_directories (directory 0 is the compilation directory, not listed), then
 * file_names (file 1 is the first). Both tables are stored 0-based with an empty slot 0. */
static int read_entries_v4(struct line_ctx *c, struct rd *r)
{
	c->dirs[c->ndirs++] = "";
	for (;;) {
		const char *d = rd_cstr(r);
		if (r->bad)
			return 0;
		if (!*d)
			break;
		if (c->ndirs >= MAX_DIRS)
			return 0;
		c->dirs[c->ndirs++] = d;
	}
	c->files[c->nfiles] = "";
	c->file_dir[c->nfiles++] = UINT32_MAX;
	for (;;) {
		const char *f = rd_cstr(r);
		if (r->bad)
			return 0;
		if (!*f)
			break;
		uint64_t d = rd_uleb(r);
		(void)rd_uleb(r); /* mtime */
		(void)rd_uleb(r); /* length */
		if (r->bad || c->nfiles >= MAX_FILES)
			return 0;
		c->files[c->nfiles] = f;
		c->file_dir[c->nfiles++] = d < c->ndirs ? (uint32_t)d : UINT32_MAX;
	}
	return 1;
}

static void emit_row(struct line_ctx *c, uint64_t file, uint64_t line, uint64_t addr,
		     void (*fn)(void *ctx, const struct elf_line_row *r), void *ctx)
{
	if (!line || file >= c->nfiles || !c->files[file][0])
		return; /* no line, or no such file (DWARF 4's file 0, an entry without a name) */
	struct elf_line_row row = {
		.dir = c->file_dir[file] != UINT32_MAX ? c->dirs[c->file_dir[file]] : "",
		.file = c->files[file],
		.comp_dir = c->ndirs ? c->dirs[0] : "",
		.line = line,
		.addr = addr,
		.unit = c->unit,
	};
	fn(ctx, &row);
}

/* One unit's line program: header, tables, then the state machine. Returns MU_OK or a
 * format error naming the unit's offset. */
static enum mu_err one_unit(struct line_ctx *c, struct rd *r, size_t unit_at, uint64_t unit_len, int offset64,
			    void (*fn)(void *ctx, const struct elf_line_row *row), void *ctx, struct mu_error *err)
{
	size_t end = r->at + (size_t)unit_len;
	struct rd u = {.p = r->p, .n = end, .at = r->at};
	uint16_t version = (uint16_t)rd_u(&u, 2);
	if (version < 2 || version > 5)
		return mu_errf(err, MU_ERR_UNSUPPORTED, ".debug_line unit at %zu: version %u (2 to 5 are read)", unit_at,
			       (unsigned)version);
	unsigned addr_size = 8;
	if (version >= 5) {
		addr_size = (unsigned)rd_u(&u, 1);
		(void)rd_u(&u, 1); /* segment selector size */
	}
	uint64_t header_len = rd_u(&u, offset64 ? 8 : 4);
	size_t prog_at = u.at;
	if (u.bad || header_len > u.n - prog_at)
		return mu_errf(err, MU_ERR_FORMAT, ".debug_line unit at %zu: the header runs past the unit", unit_at);
	prog_at += (size_t)header_len;
	uint8_t min_inst = (uint8_t)rd_u(&u, 1);
	if (version >= 4)
		(void)rd_u(&u, 1); /* maximum operations per instruction: 1 on every non-VLIW target */
	(void)rd_u(&u, 1);          /* default_is_stmt */
	int8_t line_base = (int8_t)rd_u(&u, 1);
	uint8_t line_range = (uint8_t)rd_u(&u, 1);
	uint8_t opcode_base = (uint8_t)rd_u(&u, 1);
	uint8_t std_len[256] = {0};
	for (unsigned i = 1; i < opcode_base; i++)
		std_len[i] = (uint8_t)rd_u(&u, 1);
	if (u.bad || !line_range || !opcode_base || (addr_size != 4 && addr_size != 8))
		return mu_errf(err, MU_ERR_FORMAT, ".debug_line unit at %zu: a malformed header", unit_at);
	c->ndirs = c->nfiles = 0;
	c->unit = unit_at;
	int ok = version >= 5 ? read_entries_v5(c, &u, offset64, 1) && read_entries_v5(c, &u, offset64, 0)
			      : read_entries_v4(c, &u);
	if (!ok || u.bad)
		return mu_errf(err, u.bad == 2 ? MU_ERR_UNSUPPORTED : MU_ERR_FORMAT,
			       ".debug_line unit at %zu: %s", unit_at,
			       u.bad == 2 ? "a directory or file entry form this reader does not know"
					  : "malformed directory or file tables");

	u.at = prog_at;
	uint64_t addr = 0, file = 1, line = 1;
	while (u.at < u.n && !u.bad) {
		uint8_t op = (uint8_t)rd_u(&u, 1);
		if (op >= opcode_base) {
			unsigned adj = op - opcode_base;
			addr += (uint64_t)(adj / line_range) * min_inst;
			line += (uint64_t)((int64_t)line_base + (int64_t)(adj % line_range));
			emit_row(c, file, line, addr, fn, ctx);
			continue;
		}
		switch (op) {
		case 0: { /* extended */
			uint64_t len = rd_uleb(&u);
			if (u.bad || !len || len > u.n - u.at) {
				u.bad = 1;
				break;
			}
			size_t next = u.at + (size_t)len;
			uint8_t sub = (uint8_t)rd_u(&u, 1);
			if (sub == DW_LNE_end_sequence) {
				emit_row(c, file, line, addr, fn, ctx);
				addr = 0;
				file = 1;
				line = 1;
			} else if (sub == DW_LNE_set_address) {
				addr = rd_u(&u, len - 1 == 4 ? 4 : 8);
			} else if (sub == DW_LNE_define_file && c->nfiles < MAX_FILES) {
				const char *f = rd_cstr(&u);
				uint64_t d = rd_uleb(&u);
				c->files[c->nfiles] = f;
				c->file_dir[c->nfiles++] = d < c->ndirs ? (uint32_t)d : UINT32_MAX;
			}
			u.at = next;
			break;
		}
		case DW_LNS_copy:
			emit_row(c, file, line, addr, fn, ctx);
			break;
		case DW_LNS_advance_pc:
			addr += rd_uleb(&u) * min_inst;
			break;
		case DW_LNS_advance_line:
			line += (uint64_t)rd_sleb(&u);
			break;
		case DW_LNS_set_file:
			file = rd_uleb(&u);
			break;
		case DW_LNS_const_add_pc:
			addr += (uint64_t)((255 - opcode_base) / line_range) * min_inst;
			break;
		case DW_LNS_fixed_advance_pc:
			addr += rd_u(&u, 2);
			break;
		default: /* a standard opcode with uleb arguments: skip them */
			for (unsigned i = 0; i < std_len[op]; i++)
				(void)rd_uleb(&u);
			break;
		}
	}
	if (u.bad)
		return mu_errf(err, MU_ERR_FORMAT, ".debug_line unit at %zu: the line program runs past its unit",
			       unit_at);
	r->at = end;
	return MU_OK;
}

enum mu_err elf_lines(const struct elf_file *e, void (*fn)(void *ctx, const struct elf_line_row *r), void *ctx,
		      struct mu_error *err)
{
	const struct elf_sec *s = elf_section(e, ".debug_line");
	if (!s || !elf_sec_data(e, s))
		return MU_OK;
	struct line_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return mu_errf(err, MU_ERR_NOMEM, "no memory for the line-table reader");
	c->e = e;
	c->str = elf_section(e, ".debug_str");
	c->line_str = elf_section(e, ".debug_line_str");
	struct rd r = {.p = elf_sec_data(e, s), .n = (size_t)s->size, .at = 0};
	enum mu_err rc = MU_OK;
	while (r.at < r.n) {
		size_t unit_at = r.at;
		uint64_t len = rd_u(&r, 4);
		int offset64 = 0;
		if (len == 0xffffffffu) {
			len = rd_u(&r, 8);
			offset64 = 1;
		}
		if (r.bad || len > r.n - r.at) {
			rc = mu_errf(err, MU_ERR_FORMAT, ".debug_line unit at %zu runs past the section", unit_at);
			break;
		}
		rc = one_unit(c, &r, unit_at, len, offset64, fn, ctx, err);
		if (rc)
			break;
	}
	free(c);
	return rc;
}
