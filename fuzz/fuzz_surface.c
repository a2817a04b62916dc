/* fuzz_surface.c — libFuzzer harness for what `mu surface` reads from files it is pointed at:
 * ELF headers, sections, symbols and DWARF line tables (host/elf.c), the enclave's printed
 * seccomp filter and the BPF evaluator, and GNU ld link maps (host/surface.c).
 *
 * Input layout: byte 0 picks the reader (mod 3): 0 an ELF file, 1 a filter text, 2 a link
 * map; the rest is that reader's input.
 *
 * Checked (a broken invariant traps): every row of a line table has a line number and NUL-
 * terminated strings inside the input; a filter that evaluates has counts that agree with its
 * verdicts (allowed <= SURFACE_NR_MAX, checked <= allowed); a map's input sections have a size
 * and a file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/elf.h"
#include "host/surface.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond)
{
	if (!cond)
		__builtin_trap();
}

static const uint8_t *in_lo, *in_hi;
static size_t rows, syms, needs;

static void in_input(const char *s)
{
	require((const uint8_t *)s >= in_lo && (const uint8_t *)s < in_hi);
	require(memchr(s, 0, (size_t)(in_hi - (const uint8_t *)s)) != NULL);
}

static void on_row(void *ctx, const struct elf_line_row *r)
{
	(void)ctx;
	require(r->line != 0);
	in_input(r->file);
	if (r->dir[0])
		in_input(r->dir);
	rows++;
}

static void on_sym(void *ctx, const struct elf_sym *s)
{
	(void)ctx;
	in_input(s->name);
	syms++;
}

static void on_needed(void *ctx, const char *lib)
{
	(void)ctx;
	in_input(lib);
	needs++;
}

static void on_sec(void *ctx, const struct surface_map_sec *s)
{
	(void)ctx;
	require(s->out[0] == '.' && (!s->file || (s->size != 0 && s->file[0])));
}

static struct surface_filter filter;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	struct mu_error err = {0};
	switch (data[0] % 3) {
	case 0: {
		struct elf_file e;
		in_lo = p;
		in_hi = p + n;
		if (elf_parse(&e, p, n, "input", &err) != MU_OK)
			return 0;
		for (size_t i = 0; i < e.shnum; i++) {
			in_input(e.sec[i].name);
			const uint8_t *d = elf_sec_data(&e, &e.sec[i]);
			if (d)
				require(d >= p && e.sec[i].size <= (size_t)(in_hi - d));
		}
		(void)elf_needed(&e, on_needed, NULL, &err);
		(void)elf_symbols(&e, on_sym, NULL, &err);
		(void)elf_lines(&e, on_row, NULL, &err);
		elf_free(&e);
		return 0;
	}
	case 1: {
		struct surface_eval ev;
		if (surface_filter_parse(&filter, (const char *)p, n, &err) != MU_OK)
			return 0;
		if (surface_filter_eval(&filter, &ev, &err) != MU_OK)
			return 0;
		size_t allowed = 0, checked = 0;
		for (size_t i = 0; i < SURFACE_NR_MAX; i++) {
			allowed += ev.verdict[i] != SV_REFUSED;
			checked += ev.verdict[i] == SV_CHECKED;
		}
		require(allowed == ev.allowed && checked == ev.checked && checked <= allowed);
		return 0;
	}
	default: {
		char *t = malloc(n + 1);
		if (!t)
			return 0;
		memcpy(t, p, n);
		t[n] = 0;
		(void)surface_map_parse(t, n + 1, on_sec, NULL, &err);
		free(t);
		return 0;
	}
	}
}
