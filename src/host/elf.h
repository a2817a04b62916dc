/* elf.h — reading what `mu surface` measures from an ELF64 little-endian file (docs/attack-surface.md).
 *
 *   elf_parse          checks the header, the section table and every section's bounds
 *   elf_section        a section by name
 *   elf_needed         the DT_NEEDED libraries of a dynamic executable, one callback each
 *   elf_symbols        the defined FUNC and OBJECT symbols of .symtab, one callback each
 *   elf_lines          the DWARF line tables (.debug_line, versions 2 to 5): one callback per
 *                      row, with the row's file path (directory joined, as the compiler wrote it)
 *
 * Everything is read from a caller's buffer that stays mapped while the elf_file is used; every
 * offset, size and string is checked against it, so any file (a truncated one, a crafted one)
 * gets an MU_ERR_FORMAT naming what is wrong, never a read outside the buffer.
 */
#ifndef MU_HOST_ELF_H
#define MU_HOST_ELF_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define ELF_SHF_ALLOC 0x2u
#define ELF_SHF_EXECINSTR 0x4u
#define ELF_SHT_NOBITS 8u
#define ELF_ET_EXEC 2u
#define ELF_ET_DYN 3u

struct elf_sec {
	const char *name; /* NUL-terminated, inside the buffer */
	uint32_t type;
	uint64_t flags, addr, off, size;
	uint32_t link;
	uint64_t entsize;
};

struct elf_file {
	const uint8_t *p;
	size_t n;
	uint16_t type, machine;
	struct elf_sec *sec; /* shnum entries, allocated */
	size_t shnum;
	const char *interp; /* PT_INTERP's path, NULL when none (static) */
	int has_dynamic;    /* a PT_DYNAMIC segment */
};

enum mu_err elf_parse(struct elf_file *e, const uint8_t *p, size_t n, const char *name, struct mu_error *err);
void elf_free(struct elf_file *e);
const struct elf_sec *elf_section(const struct elf_file *e, const char *name);
/* The section's bytes (NULL for NOBITS). */
const uint8_t *elf_sec_data(const struct elf_file *e, const struct elf_sec *s);

enum mu_err elf_needed(const struct elf_file *e, void (*fn)(void *ctx, const char *lib), void *ctx,
		       struct mu_error *err);

struct elf_sym {
	const char *name;
	uint64_t value, size;
	int is_func; /* else an object */
};
/* MU_OK with nothing called when the file has no .symtab (stripped). */
enum mu_err elf_symbols(const struct elf_file *e, void (*fn)(void *ctx, const struct elf_sym *s), void *ctx,
			struct mu_error *err);

struct elf_line_row {
	const char *dir;  /* the file's directory as written (may be "" or relative) */
	const char *file; /* the file name as written (may be absolute) */
	const char *comp_dir; /* the unit's compilation directory (DWARF 5 directory 0), or "" */
	uint64_t line;
	uint64_t addr;
	uint64_t unit; /* the unit's offset in .debug_line: the same for every row of one unit */
};
/* Calls fn for every row of every line program that has a line number and names a file
 * (rows with line 0, code the compiler made up, are left out, and so are rows whose file
 * index names no file). MU_OK with nothing called when there is no
 * .debug_line. */
enum mu_err elf_lines(const struct elf_file *e, void (*fn)(void *ctx, const struct elf_line_row *r), void *ctx,
		      struct mu_error *err);

#endif
