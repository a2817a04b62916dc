/* cmd_surface.c — `mu surface`: the enclave's attack surface, measured (docs/attack-surface.md).
 *
 * For an enclave binary, or a VM image directory (whose initramfs /init is the binary):
 *
 *   lines       distinct (file, line) pairs in the DWARF line tables of what was linked, split
 *               by our directories and the libraries whose headers put code into our objects.
 *               The stripped enclave has none: they come from its debug twin (BINARY.debug, the
 *               same objects linked without -s), after checking that every allocated section
 *               of the twin is byte for byte the binary's.
 *   objects     from the link map (BINARY.map): the object files and archive members linked,
 *               their code and data bytes, by library; with the twin's symbol table, the
 *               functions of each.
 *   deps        static or dynamic (PT_INTERP, DT_NEEDED), and the archives linked in.
 *   sandbox     the seccomp filter the binary installs (it prints it: --sandbox-filter), run
 *               for every system call number by surface.c's evaluator.
 *   image       the image measurement, the kernel's version and configuration facts (from the
 *               kernel build directory, when its bzImage is the image's), the initramfs files.
 *   processes   with --pid: each process's listening and connected sockets and other open
 *               descriptors, from /proc.
 *
 * --budget FILE compares the lines, the allowed system calls and the libraries with
 * tcb-budget.txt and fails when one grew past it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/endian.h"
#include "host/cli.h"
#include "host/elf.h"
#include "host/surface.h"
#include "host/vm.h"
#include "pal/pal.h"
#include "seal/crypto.h"

#define MAX_COMPS 64
#define MAX_PIDS 8
#define MAX_NEEDED 32
#define MAX_CPIO 64
#define BIN_MAX ((size_t)512 << 20)
#define FILTER_OUT_MAX ((size_t)1 << 20)
#define FILTER_TIMEOUT_MS 10000

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mu surface BINARY|IMAGE-DIR [--debug FILE] [--map FILE] [--kernel-build DIR]\n"
		"                  [--pid PID]... [--no-run] [--budget FILE] [--json]\n\n"
		"Measures the attack surface of an enclave binary or of a VM image (its initramfs /init):\n"
		"compiled source lines (DWARF line tables), linked objects and libraries, static or\n"
		"dynamic dependencies, the seccomp allow-list, and for an image its kernel and initramfs.\n"
		"  --debug FILE        the binary's debug twin, for a stripped binary (default BINARY.debug\n"
		"                      when it exists); its code and data must be the binary's\n"
		"  --map FILE          the GNU ld link map (default: the twin's or the binary's name with\n"
		"                      .map for .debug, when it exists)\n"
		"  --kernel-build DIR  a kernel build directory (bzImage and config, as\n"
		"                      scripts/build-kernel.sh caches them): its configuration is reported\n"
		"                      when its bzImage is the image's\n"
		"  --pid PID           a running process (the proxy, the enclave): its listening and\n"
		"                      connected sockets and open descriptors; repeat for more (at most %d)\n"
		"  --no-run            do not run the binary to read its seccomp filter (without it, the\n"
		"                      binary, or an image's /init, is run on this machine with\n"
		"                      --sandbox-filter, from a sealed copy of the measured bytes)\n"
		"  --budget FILE       compare with a TCB budget (tcb-budget.txt); exit 1 when over it\n"
		"  --json              one JSON object instead of the report\n"
		"Exit status: 0, 1 over the budget or trouble, 2 usage.\n",
		MAX_PIDS);
}

/* ---- small tables ---- */

struct comp {
	char name[64];
	int ours;
	uint64_t lines, files, code, data, objects, funcs;
};

/* open addressing on 64-bit keys (key + 1 stored; 0 is empty) */
struct u64set {
	uint64_t *k;
	size_t cap, n;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* 1 if added, 0 if present, -1 out of memory */
static int u64set_add(struct u64set *s, uint64_t key)
{
	if (2 * (s->n + 1) > s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		uint64_t *k = calloc(cap, sizeof *k);
		if (!k)
			return -1;
		for (size_t i = 0; i < s->cap; i++)
			if (s->k[i])
				for (size_t j = mix(s->k[i]) & (cap - 1);; j = (j + 1) & (cap - 1))
					if (!k[j]) {
						k[j] = s->k[i];
						break;
					}
		free(s->k);
		s->k = k;
		s->cap = cap;
	}
	for (size_t j = mix(key + 1) & (s->cap - 1);; j = (j + 1) & (s->cap - 1)) {
		if (s->k[j] == key + 1)
			return 0;
		if (!s->k[j]) {
			s->k[j] = key + 1;
			s->n++;
			return 1;
		}
	}
}

/* interned strings, each with a component */
struct strtab {
	char **s;
	uint32_t *comp;
	size_t n, cap;
	uint32_t *h; /* index + 1, 0 empty */
	size_t hcap;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

/* the index of s (added with comp when new), or -1 out of memory */
static long strtab_get(struct strtab *t, const char *s, uint32_t comp, int *added)
{
	*added = 0;
	if (2 * (t->n + 1) > t->hcap) {
		size_t cap = t->hcap ? 2 * t->hcap : 256;
		uint32_t *h = calloc(cap, sizeof *h);
		if (!h)
			return -1;
		for (size_t i = 0; i < t->n; i++)
			for (size_t j = hash_str(t->s[i]) & (cap - 1);; j = (j + 1) & (cap - 1))
				if (!h[j]) {
					h[j] = (uint32_t)i + 1;
					break;
				}
		free(t->h);
		t->h = h;
		t->hcap = cap;
	}
	size_t j = hash_str(s) & (t->hcap - 1);
	for (; t->h[j]; j = (j + 1) & (t->hcap - 1))
		if (!strcmp(t->s[t->h[j] - 1], s))
			return (long)t->h[j] - 1;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 256;
		char **ns = realloc(t->s, cap * sizeof *ns);
		if (!ns)
			return -1;
		t->s = ns;
		uint32_t *nc = realloc(t->comp, cap * sizeof *nc);
		if (!nc)
			return -1;
		t->comp = nc;
		t->cap = cap;
	}
	char *copy = strdup(s);
	if (!copy)
		return -1;
	t->s[t->n] = copy;
	t->comp[t->n] = comp;
	t->h[j] = (uint32_t)t->n + 1;
	*added = 1;
	return (long)t->n++;
}

static void strtab_free(struct strtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->s[i]);
	free(t->s);
	free(t->comp);
	free(t->h);
	memset(t, 0, sizeof *t);
}

/* ---- what a path belongs to ---- */

/* Libraries by a piece of their path (archive, header directory); the first match wins, so
 * BearSSL's headers linked under build/musl/include are BearSSL's, not musl's. */
static const struct {
	const char *needle, *name;
} libs[] = {
	{"bearssl", "bearssl"},
	{"utf8proc", "utf8proc"},
	{"libgcc", "libgcc"},
	{"/gcc/", "gcc-headers"},
	{"musl", "musl"},
	{"/usr/include/linux/", "linux-uapi"},
	{"/usr/include/asm", "linux-uapi"},
	{"/usr/include/x86_64-linux-gnu/asm", "linux-uapi"},
	{"/usr/include/", "libc-headers"},
};

/* our code: the first two components of a path under src/ or cmd/ ("src/engine") */
static int ours_name(const char *path, char *out, size_t cap)
{
	const char *p = NULL;
	if (!strncmp(path, "src/", 4) || !strncmp(path, "cmd/", 4))
		p = path;
	else if (path[0] != '/') {
		const char *o = strstr(path, "obj/src/");
		if (!o)
			o = strstr(path, "obj/cmd/");
		if (o)
			p = o + 4;
	} else {
		const char *o = strstr(path, "/obj/src/");
		if (!o)
			o = strstr(path, "/obj/cmd/");
		if (o)
			p = o + 5;
	}
	if (!p)
		return 0;
	const char *slash = strchr(p + 4, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = 0;
	return 1;
}

static void lib_name(const char *path, char *out, size_t cap)
{
	for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++)
		if (strstr(path, libs[i].needle)) {
			snprintf(out, cap, "%s", libs[i].name);
			return;
		}
	/* an archive member: the archive's name; else the file's */
	const char *paren = strchr(path, '(');
	size_t n = paren ? (size_t)(paren - path) : strlen(path);
	const char *base = path;
	for (size_t i = 0; i < n; i++)
		if (path[i] == '/')
			base = path + i + 1;
	n -= (size_t)(base - path);
	snprintf(out, cap, "%.*s", (int)n, base);
}


/* ---- the report ---- */

struct range {
	uint64_t addr, size;
	uint32_t comp;
};

struct filter_result {
	int ok;
	char why[256];
	struct surface_filter *f;
	struct surface_eval ev;
};

struct cpio_entry {
	char name[128];
	uint32_t mode, rmaj, rmin;
	uint64_t size;
};

struct report {
	/* the binary */
	char label[4096];
	uint64_t bytes;
	uint8_t sha[MU_SHA256_LEN];
	uint16_t etype;
	const char *interp_s;
	char interp[256];
	char *needed[MAX_NEEDED];
	size_t n_needed;
	int needed_lost; /* more than MAX_NEEDED, or no memory: the list is incomplete */
	uint64_t code_bytes, data_bytes;
	char debug_path[4096], map_path[4096];
	int have_debug, debug_matches, have_map;
	char debug_why[256];
	size_t compared_sections;
	struct comp comps[MAX_COMPS];
	size_t n_comps;
	uint64_t own_lines, own_files, header_lines, input_objects, funcs, objs_syms;
	int have_lines, have_syms;
	struct range *ranges;
	size_t n_ranges, cap_ranges;
	struct strtab files, objects;
	/* the sandbox */
	int ran;
	struct filter_result vm, proc;
	/* the image */
	int is_image;
	char image_dir[4096];
	uint8_t measurement[MU_SHA256_LEN];
	uint64_t kernel_bytes, initramfs_bytes;
	char kernel_version[256];
	struct cpio_entry cpio[MAX_CPIO];
	size_t n_cpio;
	int have_config;
	char config_src[4096];
	uint64_t config_y, config_m;
	char *config_text;
	size_t config_len;
	/* processes */
	struct proc_report *procs[MAX_PIDS];
	size_t n_procs;
};

static long comp_named(struct report *r, const char *name, int ours)
{
	for (size_t i = 0; i < r->n_comps; i++)
		if (!strcmp(r->comps[i].name, name))
			return (long)i;
	if (r->n_comps == MAX_COMPS)
		return -1;
	struct comp *c = &r->comps[r->n_comps];
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", name);
	c->ours = ours;
	return (long)r->n_comps++;
}

/* the component of a path: ours (src/..., cmd/..., or an object built from them), else a library */
static long comp_index(struct report *r, const char *path)
{
	char name[64];
	int ours = ours_name(path, name, sizeof name);
	if (!ours)
		lib_name(path, name, sizeof name);
	return comp_named(r, name, ours);
}

/* The component of a linked object (a link-map file): ours when it was built in this tree
 * (a relative path under obj/src or obj/cmd), a library only when it is that library's own
 * archive or start file where Debian installs it; anything else is named by its whole path,
 * which no budget lists. */
static const struct {
	const char *dir, *file, *name; /* dir: a prefix; file: the archive or object's name */
} archives[] = {
	{"/usr/lib/x86_64-linux-musl/", "libc.a", "musl"},
	{"/usr/lib/x86_64-linux-musl/", "rcrt1.o", "musl"},
	{"/usr/lib/x86_64-linux-musl/", "crt1.o", "musl"},
	{"/usr/lib/x86_64-linux-musl/", "Scrt1.o", "musl"},
	{"/usr/lib/x86_64-linux-musl/", "crti.o", "musl"},
	{"/usr/lib/x86_64-linux-musl/", "crtn.o", "musl"},
	{"/usr/lib/x86_64-linux-gnu/", "libbearssl.a", "bearssl"},
	{"/usr/lib/x86_64-linux-gnu/", "libutf8proc.a", "utf8proc"},
	{"/usr/lib/gcc/x86_64-linux-gnu/", "libgcc.a", "libgcc"},
};

static long comp_object(struct report *r, const char *file)
{
	char name[64];
	if (file[0] != '/' && ours_name(file, name, sizeof name))
		return comp_named(r, name, 1);
	const char *paren = strchr(file, '(');
	size_t n = paren ? (size_t)(paren - file) : strlen(file);
	size_t base = n;
	while (base && file[base - 1] != '/')
		base--;
	for (size_t i = 0; i < sizeof archives / sizeof archives[0]; i++) {
		size_t dl = strlen(archives[i].dir), fl = strlen(archives[i].file);
		if (n - base != fl || strncmp(file + base, archives[i].file, fl) != 0 ||
		    strncmp(file, archives[i].dir, dl) != 0)
			continue;
		/* the directory is the prefix itself, or (gcc) the prefix and one version directory */
		const char *rest = file + dl;
		size_t rl = base - dl;
		if (rl == 0 || (!strcmp(archives[i].name, "libgcc") && memchr(rest, '/', rl) == rest + rl - 1))
			return comp_named(r, archives[i].name, 0);
	}
	snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name - 1 ? n : sizeof name - 1), file);
	return comp_named(r, name, 0);
}

static long comp_lib(struct report *r, const char *path)
{
	char name[64];
	lib_name(path, name, sizeof name);
	return comp_named(r, name, 0);
}

/* ---- lines ---- */

struct line_walk {
	struct report *r;
	struct u64set seen;
	const char *last_dir, *last_file;
	long last_idx;
	int oom;
	uint64_t unit;
	int unit_known, unit_ours;
	long unit_comp;
	char cwd[4096];
	char path[8192];
};

/* dir/file as the compiler wrote them, joined with the compilation directory */
static void join_path(char *out, size_t cap, const struct elf_line_row *row)
{
	if (row->file[0] != '/' && (row->dir[0] == '/' || (!row->comp_dir[0] && row->dir[0])))
		snprintf(out, cap, "%s/%s", row->dir, row->file);
	else if (row->file[0] != '/' && row->dir[0] && strcmp(row->dir, row->comp_dir) != 0)
		snprintf(out, cap, "%s/%s/%s", row->comp_dir, row->dir, row->file);
	else if (row->file[0] != '/' && row->comp_dir[0])
		snprintf(out, cap, "%s/%s", row->comp_dir, row->file);
	else
		snprintf(out, cap, "%s", row->file); /* absolute, or nothing to join */
	for (char *p; (p = strstr(out, "/./"));)
		memmove(p, p + 2, strlen(p + 2) + 1);
}

static long range_comp(const struct report *r, uint64_t addr);

/* Whose a unit is. With a link map, the object that holds the unit's code says it (musl's
 * start files carry line tables too, and their paths look like ours: "./src/internal/...").
 * Without one, units compiled in this source tree are ours: their compilation directory is "."
 * (the enclave's build maps it so) or the directory mu surface runs in. */
static int our_unit(const struct line_walk *w, const struct elf_line_row *row)
{
	if (w->r->have_map) {
		long c = range_comp(w->r, row->addr);
		return c >= 0 && w->r->comps[c].ours;
	}
	const char *cd = row->comp_dir;
	return !strcmp(cd, ".") || !cd[0] || (w->cwd[0] && !strcmp(cd, w->cwd));
}

/* the component of a line's file: ours when its unit is ours and the file lies under the
 * unit's compilation directory, there under src/ or cmd/; a library's unit is all the
 * library's; otherwise the library its path names */
static long line_comp(struct line_walk *w, const char *full, const struct elf_line_row *row)
{
	const char *comp_dir = row->comp_dir;
	if (w->unit != row->unit || !w->unit_known) {
		w->unit = row->unit;
		w->unit_known = 1;
		w->unit_ours = our_unit(w, row);
		w->unit_comp = w->r->have_map && !w->unit_ours ? range_comp(w->r, row->addr) : -1;
	}
	if (w->unit_comp >= 0)
		return w->unit_comp;
	if (w->unit_ours) {
		size_t cl = strlen(comp_dir);
		const char *rel = full;
		if (cl && !strncmp(full, comp_dir, cl) && full[cl] == '/')
			rel = full + cl + 1;
		if (rel[0] != '/' && (!strncmp(rel, "src/", 4) || !strncmp(rel, "cmd/", 4)))
			return comp_index(w->r, rel);
	}
	return comp_lib(w->r, full);
}

static void on_line(void *ctx, const struct elf_line_row *row)
{
	struct line_walk *w = ctx;
	struct report *r = w->r;
	if (w->oom)
		return;
	long idx;
	if (row->dir == w->last_dir && row->file == w->last_file && row->unit == w->unit) {
		idx = w->last_idx;
	} else {
		join_path(w->path, sizeof w->path, row);
		long comp = line_comp(w, w->path, row);
		int added;
		idx = comp < 0 ? -1 : strtab_get(&r->files, w->path, (uint32_t)comp, &added);
		if (idx < 0) {
			w->oom = 1;
			return;
		}
		if (added) {
			r->comps[r->files.comp[idx]].files++;
			if (r->comps[r->files.comp[idx]].ours)
				r->own_files++;
		}
		w->last_dir = row->dir;
		w->last_file = row->file;
		w->last_idx = idx;
	}
	int n = u64set_add(&w->seen, (uint64_t)idx << 32 | (row->line & 0xffffffffu));
	if (n < 0) {
		w->oom = 1;
		return;
	}
	if (n) {
		struct comp *c = &r->comps[r->files.comp[idx]];
		c->lines++;
		if (c->ours)
			r->own_lines++;
		else
			r->header_lines++;
	}
}

/* ---- the link map and symbols ---- */

struct map_walk {
	struct report *r;
	const struct elf_file *e;
	int oom, mismatch;
	size_t sections;
	char why[256];
};

static void on_map(void *ctx, const struct surface_map_sec *s)
{
	struct map_walk *w = ctx;
	struct report *r = w->r;
	const struct elf_sec *out = elf_section(w->e, s->out);
	if (!s->file) {
		/* an output section: where the map put it must be where the binary has it */
		if (!out || !(out->flags & ELF_SHF_ALLOC))
			return;
		if (out->addr != s->addr || out->size != s->size) {
			if (!w->mismatch)
				snprintf(w->why, sizeof w->why, "section %s is at 0x%llx, %llu bytes in the map, "
					 "at 0x%llx, %llu bytes in the binary", s->out, (unsigned long long)s->addr,
					 (unsigned long long)s->size, (unsigned long long)out->addr,
					 (unsigned long long)out->size);
			w->mismatch = 1;
		}
		w->sections++;
		return;
	}
	if (w->oom || !out || !(out->flags & ELF_SHF_ALLOC))
		return;
	long comp = comp_object(r, s->file);
	int added;
	long idx = comp < 0 ? -1 : strtab_get(&r->objects, s->file, (uint32_t)comp, &added);
	if (idx < 0) {
		w->oom = 1;
		return;
	}
	struct comp *c = &r->comps[comp];
	if (added) {
		c->objects++;
		r->input_objects++;
	}
	if (out->flags & ELF_SHF_EXECINSTR) {
		c->code += s->size;
		if (r->n_ranges == r->cap_ranges) {
			size_t cap = r->cap_ranges ? 2 * r->cap_ranges : 1024;
			struct range *nr = realloc(r->ranges, cap * sizeof *nr);
			if (!nr) {
				w->oom = 1;
				return;
			}
			r->ranges = nr;
			r->cap_ranges = cap;
		}
		r->ranges[r->n_ranges++] = (struct range){s->addr, s->size, (uint32_t)comp};
	} else {
		c->data += s->size;
	}
}

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* the component whose code input section holds addr, or -1 */
static long range_comp(const struct report *r, uint64_t addr)
{
	size_t lo = 0, hi = r->n_ranges;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->ranges[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && addr - r->ranges[lo - 1].addr < r->ranges[lo - 1].size)
		return (long)r->ranges[lo - 1].comp;
	return -1;
}

static void on_sym(void *ctx, const struct elf_sym *s)
{
	struct report *r = ctx;
	if (!s->is_func) {
		r->objs_syms++;
		return;
	}
	r->funcs++;
	long c = range_comp(r, s->value);
	if (c >= 0)
		r->comps[c].funcs++;
}

static void on_needed(void *ctx, const char *lib)
{
	struct report *r = ctx;
	char *copy = r->n_needed < MAX_NEEDED ? strdup(lib) : NULL;
	if (copy)
		r->needed[r->n_needed++] = copy;
	else
		r->needed_lost = 1;
}

/* Every allocated section of the twin is the binary's, byte for byte (the build-id note aside:
 * the linker hashes the whole output, debug sections included). */
static int same_code(const struct elf_file *bin, const struct elf_file *twin, size_t *compared, char *why,
		     size_t cap)
{
	size_t n = 0, nt = 0;
	for (size_t i = 0; i < twin->shnum; i++)
		if (twin->sec[i].flags & ELF_SHF_ALLOC)
			nt++;
	for (size_t i = 0; i < bin->shnum; i++) {
		const struct elf_sec *a = &bin->sec[i];
		if (!(a->flags & ELF_SHF_ALLOC))
			continue;
		n++;
		const struct elf_sec *b = elf_section(twin, a->name);
		if (!b || b->size != a->size || b->addr != a->addr || b->type != a->type) {
			snprintf(why, cap, "section %s differs in place or size", a->name);
			return 0;
		}
		if (!strcmp(a->name, ".note.gnu.build-id") || a->type == ELF_SHT_NOBITS)
			continue;
		const uint8_t *da = elf_sec_data(bin, a), *db = elf_sec_data(twin, b);
		if (!da || !db || memcmp(da, db, (size_t)a->size) != 0) {
			snprintf(why, cap, "section %s differs in content", a->name);
			return 0;
		}
	}
	if (n != nt) {
		snprintf(why, cap, "%zu allocated sections against the twin's %zu", n, nt);
		return 0;
	}
	*compared = n;
	return 1;
}

static int file_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- running the binary for its filter ---- */

/* Runs exactly the measured bytes (from a sealed memfd, not the path again) with args and no
 * environment; its stdout into *out. */
static enum mu_err run_bytes(const uint8_t *bin, size_t n, const char *const *args, char **out, size_t *out_len,
			     int *status, struct mu_error *err)
{
	int fd = memfd_create("mu-surface", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "memfd_create: %s", strerror(errno));
	enum mu_err rc = outfile_write_all(fd, bin, n, "the binary's copy", err);
	if (rc) {
		close(fd);
		return rc;
	}
	(void)fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		close(fd);
		return mu_errf(err, MU_ERR_IO, "pipe: %s", strerror(errno));
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(fd);
		close(pfd[0]);
		close(pfd[1]);
		return mu_errf(err, MU_ERR_IO, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 2);
		}
		dup2(pfd[1], 1);
		char *const envp[] = {NULL};
		fexecve(fd, (char *const *)args, envp);
		_exit(127);
	}
	close(fd);
	close(pfd[1]);
	char *buf = malloc(FILTER_OUT_MAX + 1);
	size_t len = 0;
	int timed_out = 0, too_long = 0;
	uint64_t deadline = pal_now_ns() + (uint64_t)FILTER_TIMEOUT_MS * 1000000u;
	while (buf) {
		uint64_t now = pal_now_ns();
		if (now >= deadline) {
			timed_out = 1;
			break;
		}
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		int pr = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			timed_out = pr == 0;
			break;
		}
		ssize_t k = read(pfd[0], buf + len, FILTER_OUT_MAX - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
		if (len == FILTER_OUT_MAX) {
			too_long = 1;
			break;
		}
	}
	close(pfd[0]);
	if (timed_out || too_long || !buf)
		kill(pid, SIGKILL);
	/* the output ended; the program gets what is left of the 10 s to exit */
	int st = 0;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
		if (w == 0 && pal_now_ns() >= deadline && !timed_out) {
			timed_out = 1;
			kill(pid, SIGKILL);
		}
		if (w == 0)
			usleep(2000);
	}
	if (!buf)
		return mu_errf(err, MU_ERR_NOMEM, "no memory for the binary's output");
	if (timed_out || too_long) {
		free(buf);
		return mu_errf(err, MU_ERR_IO, "the binary %s", timed_out ? "did not finish within 10 s"
									    : "printed more than 1 MiB");
	}
	buf[len] = 0;
	*out = buf;
	*out_len = len;
	*status = st;
	return MU_OK;
}

static void read_filter(const uint8_t *bin, size_t n, int accept, struct filter_result *fr)
{
	const char *args[] = {"mu-enclave", "--sandbox-filter", accept ? "--accept" : NULL, NULL};
	char *out = NULL;
	size_t len = 0;
	int st = 0;
	struct mu_error err = {0};
	fr->ok = 0;
	if (run_bytes(bin, n, args, &out, &len, &st, &err) != MU_OK) {
		snprintf(fr->why, sizeof fr->why, "%s", err.msg);
		return;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(fr->why, sizeof fr->why, "the binary has no --sandbox-filter (it %s %d)",
			 WIFEXITED(st) ? "exited with" : "was killed by signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		free(out);
		return;
	}
	fr->f = malloc(sizeof *fr->f);
	if (!fr->f) {
		snprintf(fr->why, sizeof fr->why, "no memory for the filter");
		free(out);
		return;
	}
	if (surface_filter_parse(fr->f, out, len, &err) != MU_OK ||
	    surface_filter_eval(fr->f, &fr->ev, &err) != MU_OK) {
		snprintf(fr->why, sizeof fr->why, "%s", err.msg);
		free(out);
		return;
	}
	free(out);
	fr->ok = 1;
}

/* ---- the binary ---- */

static enum mu_err measure_binary(struct report *r, const uint8_t *bin, size_t n, const char *debug_opt,
				  const char *map_opt, const char *bin_path, int no_run, struct mu_error *err)
{
	struct elf_file e, twin;
	struct pal_map tm = {0};
	enum mu_err rc = elf_parse(&e, bin, n, r->label, err);
	if (rc)
		return rc;
	r->bytes = n;
	mu_sha256(bin, n, r->sha);
	r->etype = e.type;
	if (e.interp) {
		snprintf(r->interp, sizeof r->interp, "%s", e.interp);
		r->interp_s = r->interp;
	}
	for (size_t i = 0; i < e.shnum; i++)
		if (e.sec[i].flags & ELF_SHF_ALLOC) {
			if (e.sec[i].flags & ELF_SHF_EXECINSTR)
				r->code_bytes += e.sec[i].size;
			else
				r->data_bytes += e.sec[i].size;
		}
	rc = elf_needed(&e, on_needed, r, err);
	if (!rc && r->needed_lost)
		rc = mu_errf(err, MU_ERR_RANGE, "%s: more than %d DT_NEEDED libraries, or no memory", r->label, MAX_NEEDED);
	if (rc)
		goto out;

	/* the twin: given, BINARY.debug, or the binary itself when it has its line tables */
	const struct elf_file *dbg = &e;
	if (debug_opt)
		snprintf(r->debug_path, sizeof r->debug_path, "%s", debug_opt);
	else if (bin_path && (size_t)snprintf(r->debug_path, sizeof r->debug_path, "%s.debug", bin_path) <
					 sizeof r->debug_path &&
		 file_exists(r->debug_path))
		;
	else
		r->debug_path[0] = 0;
	memset(&twin, 0, sizeof twin);
	if (r->debug_path[0]) {
		rc = pal_map_file(&tm, r->debug_path, err);
		if (rc)
			goto out;
		rc = elf_parse(&twin, tm.data, tm.len, r->debug_path, err);
		if (rc)
			goto out;
		r->have_debug = 1;
		if (!same_code(&e, &twin, &r->compared_sections, r->debug_why, sizeof r->debug_why)) {
			rc = mu_errf(err, MU_ERR_AUTH, "%s is not %s's debug twin: %s", r->debug_path, r->label,
				     r->debug_why);
			goto out;
		}
		r->debug_matches = 1;
		dbg = &twin;
	}

	/* the map: given, or next to the twin / binary */
	if (map_opt) {
		snprintf(r->map_path, sizeof r->map_path, "%s", map_opt);
	} else {
		const char *base = r->debug_path[0] ? r->debug_path : bin_path;
		r->map_path[0] = 0;
		if (base) {
			size_t bl = strlen(base);
			if (bl > 6 && !strcmp(base + bl - 6, ".debug"))
				bl -= 6;
			if (bl + 5 < sizeof r->map_path) {
				snprintf(r->map_path, sizeof r->map_path, "%.*s.map", (int)bl, base);
				if (!file_exists(r->map_path))
					r->map_path[0] = 0;
			}
		}
	}
	if (r->map_path[0]) {
		uint8_t *text;
		size_t len;
		rc = pal_read_file(r->map_path, (size_t)256 << 20, &text, &len, err);
		if (rc)
			goto out;
		struct map_walk mw = {.r = r, .e = dbg};
		rc = surface_map_parse((char *)text, len + 1, on_map, &mw, err);
		pal_free(text, len + 1);
		size_t alloc = 0;
		for (size_t i = 0; i < dbg->shnum; i++)
			alloc += (dbg->sec[i].flags & ELF_SHF_ALLOC) != 0;
		if (!rc && mw.oom)
			rc = mu_errf(err, MU_ERR_NOMEM, "too many components (over %d) or no memory for the link map's objects",
				     MAX_COMPS);
		else if (!rc && (mw.mismatch || mw.sections != alloc))
			rc = mu_errf(err, MU_ERR_AUTH, "%s is not the link map of %s: %s", r->map_path, r->label,
				     mw.mismatch ? mw.why : "it does not place every allocated section");
		if (rc)
			goto out;
		r->have_map = 1;
		qsort(r->ranges, r->n_ranges, sizeof *r->ranges, range_cmp);
	}

	/* lines */
	if (elf_section(dbg, ".debug_line")) {
		struct line_walk *w = calloc(1, sizeof *w);
		if (!w) {
			rc = mu_errf(err, MU_ERR_NOMEM, "no memory for the line walk");
			goto out;
		}
		w->r = r;
		if (!getcwd(w->cwd, sizeof w->cwd))
			w->cwd[0] = 0;
		rc = elf_lines(dbg, on_line, w, err);
		if (!rc && w->oom)
			rc = mu_errf(err, MU_ERR_NOMEM, "no memory for the distinct lines");
		free(w->seen.k);
		free(w);
		if (rc)
			goto out;
		r->have_lines = 1;
	}
	/* symbols */
	if (elf_section(dbg, ".symtab")) {
		rc = elf_symbols(dbg, on_sym, r, err);
		if (rc)
			goto out;
		r->have_syms = 1;
	}

	/* the filter */
	if (!no_run) {
		r->ran = 1;
		read_filter(bin, n, 0, &r->vm);
		read_filter(bin, n, 1, &r->proc);
	}
out:
	elf_free(&twin);
	if (tm.data)
		pal_unmap(&tm);
	elf_free(&e);
	return rc;
}

/* ---- the image ---- */

static int hex8(const uint8_t *p, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 8; i++) {
		int c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return 0;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return 1;
}

/* newc entries (vm.h has the layout); *init and *init_len point at /init's bytes */
static enum mu_err read_cpio(struct report *r, const uint8_t *p, size_t n, const uint8_t **init, size_t *init_len,
			     struct mu_error *err)
{
	size_t at = 0;
	*init = NULL;
	for (;;) {
		uint32_t f[13];
		if (at > n || n - at < 110 || memcmp(p + at, "070701", 6) != 0)
			return mu_errf(err, MU_ERR_FORMAT, "initramfs: no newc header at byte %zu", at);
		for (int i = 0; i < 13; i++)
			if (!hex8(p + at + 6 + 8 * i, &f[i]))
				return mu_errf(err, MU_ERR_FORMAT, "initramfs: a malformed header at byte %zu", at);
		uint32_t mode = f[1], size = f[6], namesize = f[11];
		size_t name_at = at + 110;
		if (!namesize || namesize > n - name_at || p[name_at + namesize - 1] != 0)
			return mu_errf(err, MU_ERR_FORMAT, "initramfs: a malformed name at byte %zu", at);
		const char *name = (const char *)p + name_at;
		size_t data_at = (name_at + namesize + 3) & ~(size_t)3;
		if (data_at > n || size > n - data_at)
			return mu_errf(err, MU_ERR_FORMAT, "initramfs: entry %s runs past the archive", name);
		if (!strcmp(name, "TRAILER!!!"))
			return *init ? MU_OK : mu_errf(err, MU_ERR_FORMAT, "initramfs: no /init");
		if (r->n_cpio == MAX_CPIO)
			return mu_errf(err, MU_ERR_RANGE, "initramfs: more than %d entries", MAX_CPIO);
		struct cpio_entry *c = &r->cpio[r->n_cpio++];
		snprintf(c->name, sizeof c->name, "%s", name);
		c->mode = mode;
		c->size = size;
		c->rmaj = f[9];
		c->rmin = f[10];
		if (!strcmp(name, "init")) {
			*init = p + data_at;
			*init_len = size;
		}
		at = (data_at + size + 3) & ~(size_t)3;
	}
}

static const struct {
	const char *opt, *what;
} kfacts[] = {
	{"CONFIG_MODULES", "loadable kernel modules"},
	{"CONFIG_DEVMEM", "/dev/mem"},
	{"CONFIG_DEVPORT", "/dev/port"},
	{"CONFIG_PROC_KCORE", "/proc/kcore"},
	{"CONFIG_KEXEC", "kexec"},
	{"CONFIG_NET", "the socket layer"},
	{"CONFIG_INET", "IPv4"},
	{"CONFIG_IPV6", "IPv6"},
	{"CONFIG_UNIX", "Unix-domain sockets"},
	{"CONFIG_PACKET", "packet sockets"},
	{"CONFIG_VSOCKETS", "vsock"},
	{"CONFIG_NETDEVICES", "network devices"},
	{"CONFIG_BPF_SYSCALL", "the bpf() system call"},
	{"CONFIG_IO_URING", "io_uring"},
	{"CONFIG_USERFAULTFD", "userfaultfd"},
	{"CONFIG_PERF_EVENTS", "perf events"},
	{"CONFIG_KPROBES", "kprobes"},
	{"CONFIG_FTRACE", "ftrace"},
	{"CONFIG_DEBUG_FS", "debugfs"},
	{"CONFIG_MULTIUSER", "users and groups"},
	{"CONFIG_SWAP", "swap"},
	{"CONFIG_HIBERNATION", "hibernation (memory to disk)"},
	{"CONFIG_USB_SUPPORT", "USB"},
	{"CONFIG_SOUND", "sound"},
	{"CONFIG_DRM", "graphics (DRM)"},
	{"CONFIG_BLOCK", "block devices"},
	{"CONFIG_VIRTIO_BLK", "virtio disks"},
	{"CONFIG_VIRTIO_CONSOLE", "virtio-serial"},
	{"CONFIG_PCI", "PCI"},
	{"CONFIG_SECCOMP", "seccomp"},
	{"CONFIG_SECRETMEM", "memfd_secret"},
};

/* "y", "m", or "n" (not set or absent) */
static char config_value(const char *text, size_t len, const char *opt)
{
	size_t ol = strlen(opt);
	for (size_t at = 0; at < len;) {
		const char *line = text + at;
		const char *nl = memchr(line, '\n', len - at);
		size_t ll = nl ? (size_t)(nl - line) : len - at;
		if (ll > ol + 1 && !strncmp(line, opt, ol) && line[ol] == '=')
			return line[ol + 1] == 'm' ? 'm' : line[ol + 1] == 'n' ? 'n' : 'y';
		at += ll + 1;
	}
	return 'n';
}

static enum mu_err measure_image(struct report *r, const char *dir, const char *kbuild, const char *debug_opt,
				 const char *map_opt, int no_run, struct mu_error *err)
{
	struct mu_vm_image img;
	enum mu_err rc = mu_vm_image_load(dir, &img, err);
	if (rc)
		return rc;
	r->is_image = 1;
	snprintf(r->image_dir, sizeof r->image_dir, "%s", dir);
	memcpy(r->measurement, img.measurement, sizeof r->measurement);

	struct pal_map km = {0}, im = {0};
	rc = pal_map_file(&km, img.kernel, err);
	if (rc)
		return rc;
	r->kernel_bytes = km.len;
	/* the boot protocol's setup header: "HdrS" at 0x202, the version string's offset - 0x200
	 * at 0x20e (Documentation/x86/boot.rst) */
	if (km.len > 0x210 && !memcmp(km.data + 0x202, "HdrS", 4)) {
		size_t off = (size_t)le16_load(km.data + 0x20e) + 0x200;
		if (off < km.len) {
			size_t k = 0;
			while (off + k < km.len && km.data[off + k] && k + 1 < sizeof r->kernel_version &&
			       km.data[off + k] >= 0x20 && km.data[off + k] < 0x7f)
				k++;
			memcpy(r->kernel_version, km.data + off, k);
			r->kernel_version[k] = 0;
		}
	}
	if (kbuild) {
		char p[4096];
		struct pal_map bm = {0};
		snprintf(p, sizeof p, "%s/bzImage", kbuild);
		rc = pal_map_file(&bm, p, err);
		if (!rc && (bm.len != km.len || memcmp(bm.data, km.data, km.len) != 0))
			rc = mu_errf(err, MU_ERR_AUTH, "%s is not the image's kernel: its configuration is not this one's",
				     p);
		if (bm.data)
			pal_unmap(&bm);
		if (!rc) {
			snprintf(r->config_src, sizeof r->config_src, "%s/config", kbuild);
			uint8_t *t;
			rc = pal_read_file(r->config_src, (size_t)16 << 20, &t, &r->config_len, err);
			if (!rc) {
				r->config_text = (char *)t;
				r->have_config = 1;
				for (size_t at = 0; at < r->config_len;) {
					const char *line = r->config_text + at;
					const char *nl = memchr(line, '\n', r->config_len - at);
					size_t ll = nl ? (size_t)(nl - line) : r->config_len - at;
					if (ll > 9 && !strncmp(line, "CONFIG_", 7) && line[ll - 2] == '=') {
						r->config_y += line[ll - 1] == 'y';
						r->config_m += line[ll - 1] == 'm';
					}
					at += ll + 1;
				}
			}
		}
	}
	pal_unmap(&km);
	if (rc)
		return rc;

	rc = pal_map_file(&im, img.initramfs, err);
	if (rc)
		return rc;
	r->initramfs_bytes = im.len;
	const uint8_t *init;
	size_t init_len = 0;
	rc = read_cpio(r, im.data, im.len, &init, &init_len, err);
	if (!rc) {
		snprintf(r->label, sizeof r->label, "%s/%s:/init", dir, MU_VM_FILE_INITRAMFS);
		rc = measure_binary(r, init, init_len, debug_opt, map_opt, NULL, no_run, err);
	}
	pal_unmap(&im);
	return rc;
}

/* ---- processes ---- */

#define MAX_SOCKS 64

struct proc_report {
	int pid;
	char name[64];
	int readable;
	char why[320];
	char listen[MAX_SOCKS][160];
	size_t n_listen;
	size_t connected, other_socks, files, pipes, other;
	uint64_t netns;
};

/* the entry of /proc/PID/net/FILE whose inode is ino: a description, or "" */
static void describe_inet(const char *line, int v6, char *out, size_t cap, int *state)
{
	char local[64] = {0};
	unsigned st = 0;
	/* the kernel's own text. NOLINTNEXTLINE(cert-err34-c) */
	if (sscanf(line, "%*s %63s %*s %x", local, &st) != 2)
		return;
	*state = (int)st;
	char *colon = strrchr(local, ':');
	if (!colon)
		return;
	*colon = 0;
	unsigned port = (unsigned)strtoul(colon + 1, NULL, 16);
	if (!v6 && strlen(local) == 8) {
		unsigned a = (unsigned)strtoul(local, NULL, 16);
		snprintf(out, cap, "%u.%u.%u.%u:%u", a & 255, (a >> 8) & 255, (a >> 16) & 255, a >> 24, port);
	} else {
		snprintf(out, cap, "[%s]:%u", local, port);
	}
}

static int find_socket(int pid, unsigned long ino, char *out, size_t cap, int *listening)
{
	static const struct {
		const char *file, *proto;
		int v6, udp;
	} inet[] = {{"tcp", "tcp", 0, 0}, {"tcp6", "tcp6", 1, 0}, {"udp", "udp", 0, 1}, {"udp6", "udp6", 1, 1}};
	char path[64], line[512];
	*listening = 0;
	for (size_t i = 0; i < sizeof inet / sizeof inet[0]; i++) {
		snprintf(path, sizeof path, "/proc/%d/net/%s", pid, inet[i].file);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof line, f)) {
			unsigned long li = 0;
			/* sl local rem st tx:rx tr:when retr uid timeout inode */
			/* the kernel's own text. NOLINTNEXTLINE(cert-err34-c) */
			if (sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %lu", &li) != 1 || li != ino)
				continue;
			char addr[128] = "?";
			int st = 0;
			describe_inet(line, inet[i].v6, addr, sizeof addr, &st);
			*listening = inet[i].udp ? 1 : st == 0x0a;
			snprintf(out, cap, "%s %s", inet[i].proto, addr);
			fclose(f);
			return 1;
		}
		fclose(f);
	}
	snprintf(path, sizeof path, "/proc/%d/net/unix", pid);
	FILE *f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof line, f)) {
			unsigned long flags = 0, li = 0;
			unsigned type = 0, st = 0;
			int off = 0;
			/* the kernel's own text. NOLINTNEXTLINE(cert-err34-c) */
			if (sscanf(line, "%*s %*s %*s %lx %x %x %lu%n", &flags, &type, &st, &li, &off) != 4 || li != ino)
				continue;
			char *p = line + off;
			while (*p == ' ')
				p++;
			p[strcspn(p, "\n")] = 0;
			*listening = (flags & 0x10000) != 0; /* __SO_ACCEPTCON */
			snprintf(out, cap, "unix %s", *p ? p : "(unnamed)");
			fclose(f);
			return 1;
		}
		fclose(f);
	}
	return 0;
}

static void measure_proc(struct proc_report *p)
{
	char path[128], link[256];
	snprintf(path, sizeof path, "/proc/%d/comm", p->pid);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fgets(p->name, sizeof p->name, f))
			p->name[strcspn(p->name, "\n")] = 0;
		fclose(f);
	}
	snprintf(path, sizeof path, "/proc/%d/ns/net", p->pid);
	struct stat st;
	if (stat(path, &st) == 0)
		p->netns = (uint64_t)st.st_ino;
	snprintf(path, sizeof path, "/proc/%d/fd", p->pid);
	DIR *d = opendir(path);
	if (!d) {
		snprintf(p->why, sizeof p->why, "%s: %s", path, strerror(errno));
		return;
	}
	p->readable = 1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char fdp[400];
		snprintf(fdp, sizeof fdp, "%s/%s", path, de->d_name);
		ssize_t k = readlink(fdp, link, sizeof link - 1);
		if (k < 0)
			continue;
		link[k] = 0;
		unsigned long ino;
		/* the kernel's own text. NOLINTNEXTLINE(cert-err34-c) */
		if (sscanf(link, "socket:[%lu]", &ino) == 1) {
			char desc[160];
			int listening;
			if (!find_socket(p->pid, ino, desc, sizeof desc, &listening))
				p->other_socks++;
			else if (listening && p->n_listen < MAX_SOCKS)
				snprintf(p->listen[p->n_listen++], sizeof p->listen[0], "%s", desc);
			else
				p->connected++;
		} else if (!strncmp(link, "pipe:", 5)) {
			p->pipes++;
		} else if (link[0] == '/') {
			p->files++;
		} else {
			p->other++;
		}
	}
	closedir(d);
}

/* ---- the budget ---- */

struct budget {
	uint64_t own_lines;
	uint32_t syscalls_vm, syscalls_process;
	char libraries[512];
	int have_lines, have_vm, have_proc, have_libs;
};

static enum mu_err read_budget(const char *path, struct budget *b, struct mu_error *err)
{
	uint8_t *t;
	size_t len;
	memset(b, 0, sizeof *b);
	enum mu_err rc = pal_read_file(path, 1 << 16, &t, &len, err);
	if (rc)
		return rc;
	char *s = (char *)t;
	size_t lineno = 0;
	for (char *line = s, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		while (*line == ' ')
			line++;
		if (!*line || *line == '#')
			continue;
		char key[32];
		int off = 0;
		if (sscanf(line, "%31s %n", key, &off) != 1) {
			rc = mu_errf(err, MU_ERR_FORMAT, "%s: line %zu is not \"KEY VALUE\"", path, lineno);
			break;
		}
		const char *v = line + off;
		uint64_t u = 0;
		int numeric = !strcmp(key, "own_lines") || !strcmp(key, "syscalls_vm") || !strcmp(key, "syscalls_process");
		if (numeric) {
			char *end;
			errno = 0;
			u = strtoull(v, &end, 10);
			while (*end == ' ')
				end++;
			if (*v < '0' || *v > '9' || *end || errno) {
				rc = mu_errf(err, MU_ERR_FORMAT, "%s: line %zu: %s needs a whole number", path, lineno, key);
				break;
			}
		}
		if (!strcmp(key, "libraries")) {
			snprintf(b->libraries, sizeof b->libraries, " %s ", v);
			b->have_libs = 1;
		} else if (!strcmp(key, "own_lines")) {
			b->own_lines = u;
			b->have_lines = 1;
		} else if (!strcmp(key, "syscalls_vm") && u <= SURFACE_NR_MAX) {
			b->syscalls_vm = (uint32_t)u;
			b->have_vm = 1;
		} else if (!strcmp(key, "syscalls_process") && u <= SURFACE_NR_MAX) {
			b->syscalls_process = (uint32_t)u;
			b->have_proc = 1;
		} else {
			rc = mu_errf(err, MU_ERR_FORMAT, "%s: line %zu: unknown key or value out of range: %s", path,
				     lineno, key);
			break;
		}
	}
	pal_free(t, len + 1);
	if (!rc && !(b->have_lines && b->have_vm && b->have_proc && b->have_libs))
		rc = mu_errf(err, MU_ERR_FORMAT,
			     "%s: own_lines, syscalls_vm, syscalls_process and libraries are all required", path);
	return rc;
}

/* prints each comparison; returns the number over budget */
static int check_budget(const struct report *r, const struct budget *b, FILE *o)
{
	int over = 0;
	fprintf(o, "budget:\n");
	if (!r->have_lines) {
		fprintf(o, "  OVER  own lines: not measured (no line tables: give --debug)\n");
		over++;
	} else {
		int bad = r->own_lines > b->own_lines;
		fprintf(o, "  %-5s own lines %" PRIu64 " (budget %" PRIu64 ")\n", bad ? "OVER" : "ok", r->own_lines,
			b->own_lines);
		over += bad;
	}
	for (size_t i = 0; r->have_lines && r->have_map && i < r->n_comps; i++) {
		const struct comp *c = &r->comps[i];
		if (c->ours && c->code && !c->lines) {
			fprintf(o, "  OVER  own lines: %s has %" PRIu64 " bytes of code but no line tables (built "
				   "without -g?): its lines are not counted\n",
				c->name, c->code);
			over++;
		}
	}
	const struct filter_result *fr[2] = {&r->vm, &r->proc};
	const uint32_t lim[2] = {b->syscalls_vm, b->syscalls_process};
	for (int m = 0; m < 2; m++) {
		const char *mode = m ? "process" : "vm";
		if (!fr[m]->ok) {
			fprintf(o, "  OVER  allowed system calls (%s mode): not measured (%s)\n", mode,
				r->ran ? fr[m]->why : "--no-run");
			over++;
			continue;
		}
		int bad = fr[m]->ev.allowed > lim[m];
		fprintf(o, "  %-5s allowed system calls (%s mode) %zu (budget %u)\n", bad ? "OVER" : "ok", mode,
			fr[m]->ev.allowed, lim[m]);
		over += bad;
	}
	if (!r->have_map) {
		fprintf(o, "  OVER  libraries: not measured (no link map: give --map)\n");
		over++;
	}
	for (size_t i = 0; i < r->n_comps; i++) {
		const struct comp *c = &r->comps[i];
		if (c->ours || !c->objects)
			continue;
		char pat[80];
		snprintf(pat, sizeof pat, " %s ", c->name);
		int bad = !strstr(b->libraries, pat);
		fprintf(o, "  %-5s library %s (%" PRIu64 " objects)%s\n", bad ? "OVER" : "ok", c->name, c->objects,
			bad ? ": not in the budget's libraries" : "");
		over += bad;
	}
	for (size_t i = 0; i < r->n_needed; i++) {
		fprintf(o, "  OVER  dynamic dependency %s: the enclave must link statically\n", r->needed[i]);
		over++;
	}
	if (r->interp_s) {
		fprintf(o, "  OVER  program interpreter %s: the enclave must link statically\n", r->interp_s);
		over++;
	}
	fprintf(o, "budget: %s\n", over ? "OVER (raise tcb-budget.txt only in a commit that says why)" : "within");
	return over;
}

/* ---- output ---- */

static const char *link_kind(const struct report *r)
{
	if (r->interp_s || r->n_needed)
		return "dynamic";
	return r->etype == ELF_ET_DYN ? "static-pie" : "static";
}

static void text_filter(FILE *o, const char *mode, const struct filter_result *fr, int ran)
{
	if (!ran) {
		fprintf(o, "  %s mode: not read (--no-run)\n", mode);
		return;
	}
	if (!fr->ok) {
		fprintf(o, "  %s mode: none (%s)\n", mode, fr->why);
		return;
	}
	char a[32], b[32], c[32];
	surface_action_name(fr->ev.default_action, a, sizeof a);
	surface_action_name(fr->ev.foreign_arch_action, b, sizeof b);
	surface_action_name(fr->ev.x32_action, c, sizeof c);
	fprintf(o, "  %s mode: %zu system calls allowed, %zu of them only for some arguments; "
		   "otherwise %s (other architectures: %s, x32: %s)\n   ",
		mode, fr->ev.allowed, fr->ev.checked, a, b, c);
	size_t col = 3;
	for (uint32_t nr = 0; nr < SURFACE_NR_MAX; nr++) {
		if (fr->ev.verdict[nr] == SV_REFUSED)
			continue;
		const char *nm = surface_filter_name(fr->f, nr);
		char w[64];
		snprintf(w, sizeof w, " %s%s", nm ? nm : "UNNAMED", fr->ev.verdict[nr] == SV_CHECKED ? "*" : "");
		if (col + strlen(w) > 96) {
			fprintf(o, "\n   ");
			col = 3;
		}
		fputs(w, o);
		col += strlen(w);
	}
	fprintf(o, "\n   (* allowed only for some arguments)\n");
	if (fr->ev.truncated)
		fprintf(o, "   (the program has too many paths to follow them all: some numbers are counted as\n"
			   "    allowed for some arguments without proof; the count can only be too high)\n");
}

static void print_text(FILE *o, const struct report *r)
{
	char hex[2 * MU_SHA256_LEN + 1];
	if (r->is_image) {
		mu_hex(r->measurement, sizeof r->measurement, hex);
		fprintf(o, "image %s\n  measurement %s\n", r->image_dir, hex);
		fprintf(o, "  kernel      %" PRIu64 " bytes, %s\n", r->kernel_bytes,
			r->kernel_version[0] ? r->kernel_version : "(no version string)");
		fprintf(o, "  initramfs   %" PRIu64 " bytes, %zu entries:\n", r->initramfs_bytes, r->n_cpio);
		for (size_t i = 0; i < r->n_cpio; i++) {
			const struct cpio_entry *c = &r->cpio[i];
			uint32_t t = c->mode & 0170000;
			char kind = t == 0040000 ? 'd' : t == 0020000 ? 'c' : t == 0060000 ? 'b' : t == 0120000 ? 'l' : '-';
			if (kind == 'c' || kind == 'b')
				fprintf(o, "    %c%04o  %u:%-9u /%s\n", kind, (unsigned)(c->mode & 07777), (unsigned)c->rmaj,
					(unsigned)c->rmin, c->name);
			else
				fprintf(o, "    %c%04o  %11" PRIu64 " /%s\n", kind, (unsigned)(c->mode & 07777), c->size,
					c->name);
		}
		if (r->have_config) {
			fprintf(o, "  kernel configuration (%s): %" PRIu64 " options built in, %" PRIu64 " modules\n",
				r->config_src, r->config_y, r->config_m);
			for (size_t i = 0; i < sizeof kfacts / sizeof kfacts[0]; i++) {
				char v = config_value(r->config_text, r->config_len, kfacts[i].opt);
				fprintf(o, "    %-22s %-3s %s\n", kfacts[i].opt, v == 'y' ? "yes" : v == 'm' ? "mod" : "no",
					kfacts[i].what);
			}
		} else {
			fprintf(o, "  kernel configuration: not read (--kernel-build DIR)\n");
		}
	}
	mu_hex(r->sha, sizeof r->sha, hex);
	fprintf(o, "binary %s\n  %" PRIu64 " bytes, sha256 %s\n", r->label, r->bytes, hex);
	fprintf(o, "  linking     %s%s%s\n", link_kind(r), r->interp_s ? ", interpreter " : "",
		r->interp_s ? r->interp_s : "");
	for (size_t i = 0; i < r->n_needed; i++)
		fprintf(o, "  needs       %s\n", r->needed[i]);
	fprintf(o, "  sections    %" PRIu64 " bytes of code, %" PRIu64 " of data\n", r->code_bytes, r->data_bytes);
	if (r->have_debug)
		fprintf(o, "  debug twin  %s: the same code and data (%zu allocated sections compared)\n", r->debug_path,
			r->compared_sections);
	if (r->have_map)
		fprintf(o, "  link map    %s: %" PRIu64 " objects linked\n", r->map_path, r->input_objects);
	if (r->have_syms)
		fprintf(o, "  symbols     %" PRIu64 " functions, %" PRIu64 " data objects\n", r->funcs, r->objs_syms);
	if (r->have_lines)
		fprintf(o, "  lines       %" PRIu64 " of ours in %" PRIu64 " files; %" PRIu64
			   " more from library headers inlined into our objects\n",
			r->own_lines, r->own_files, r->header_lines);
	else
		fprintf(o, "  lines       not measured: no line tables (give --debug FILE)\n");
	fprintf(o, "\n  %-16s %9s %6s %10s %10s %8s %9s\n", "component", "lines", "files", "code", "data", "objects",
		"functions");
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < r->n_comps; i++) {
			const struct comp *c = &r->comps[i];
			if (c->ours != !pass)
				continue;
			char lines[24];
			if (!c->files && !c->ours)
				snprintf(lines, sizeof lines, "-");
			else
				snprintf(lines, sizeof lines, "%" PRIu64, c->lines);
			fprintf(o, "  %-16s %9s %6" PRIu64 " %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %9" PRIu64 "\n",
				c->name, lines, c->files, c->code, c->data, c->objects, c->funcs);
		}
	fprintf(o, "  (library archives carry no line tables: a library's lines are only those its headers put\n"
		   "   into our objects; its own code is counted in bytes, objects and functions)\n");
	fprintf(o, "seccomp allow-list (the filter the binary installs, evaluated for every number)\n");
	text_filter(o, "vm", &r->vm, r->ran);
	text_filter(o, "process", &r->proc, r->ran);
	for (size_t i = 0; i < r->n_procs; i++) {
		const struct proc_report *p = r->procs[i];
		fprintf(o, "process %d (%s), network namespace %" PRIu64 "\n", p->pid, p->name, p->netns);
		if (!p->readable) {
			fprintf(o, "  descriptors not readable: %s\n", p->why);
			continue;
		}
		for (size_t k = 0; k < p->n_listen; k++)
			fprintf(o, "  listening   %s\n", p->listen[k]);
		if (!p->n_listen)
			fprintf(o, "  listening   nothing\n");
		fprintf(o, "  connected sockets %zu, other sockets %zu, files %zu, pipes %zu, other %zu\n", p->connected,
			p->other_socks, p->files, p->pipes, p->other);
	}
}

/* a JSON writer for this report: nesting with commas, escaped strings */
struct jout {
	FILE *f;
	int first[16];
	int depth;
};

static void j_key(struct jout *j, const char *key);

static void j_str_raw(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void j_sep(struct jout *j)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = 0;
}

static void j_key(struct jout *j, const char *key)
{
	j_sep(j);
	if (key) {
		j_str_raw(j->f, key);
		fputc(':', j->f);
	}
}

static void j_open(struct jout *j, const char *key, char c)
{
	if (j->depth >= 0)
		j_key(j, key);
	fputc(c, j->f);
	j->first[++j->depth] = 1;
}

static void j_close(struct jout *j, char c)
{
	fputc(c, j->f);
	j->depth--;
}

static void j_str(struct jout *j, const char *key, const char *v)
{
	j_key(j, key);
	if (v)
		j_str_raw(j->f, v);
	else
		fputs("null", j->f);
}

static void j_u64(struct jout *j, const char *key, uint64_t v)
{
	j_key(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

static void j_bool(struct jout *j, const char *key, int v)
{
	j_key(j, key);
	fputs(v ? "true" : "false", j->f);
}

static void json_filter(struct jout *j, const char *key, const struct filter_result *fr, int ran)
{
	if (!fr->ok) {
		j_open(j, key, '{');
		j_str(j, "error", ran ? fr->why : "not run (--no-run)");
		j_close(j, '}');
		return;
	}
	char a[32];
	j_open(j, key, '{');
	surface_action_name(fr->ev.default_action, a, sizeof a);
	j_str(j, "default", a);
	surface_action_name(fr->ev.foreign_arch_action, a, sizeof a);
	j_str(j, "other_architectures", a);
	surface_action_name(fr->ev.x32_action, a, sizeof a);
	j_str(j, "x32", a);
	j_u64(j, "allowed", fr->ev.allowed);
	j_u64(j, "checked", fr->ev.checked);
	j_bool(j, "truncated", fr->ev.truncated);
	j_open(j, "names", '[');
	for (uint32_t nr = 0; nr < SURFACE_NR_MAX; nr++)
		if (fr->ev.verdict[nr] != SV_REFUSED) {
			const char *nm = surface_filter_name(fr->f, nr);
			j_str(j, NULL, nm ? nm : "UNNAMED");
		}
	j_close(j, ']');
	j_open(j, "checked_names", '[');
	for (uint32_t nr = 0; nr < SURFACE_NR_MAX; nr++)
		if (fr->ev.verdict[nr] == SV_CHECKED) {
			const char *nm = surface_filter_name(fr->f, nr);
			j_str(j, NULL, nm ? nm : "UNNAMED");
		}
	j_close(j, ']');
	j_close(j, '}');
}

static void print_json(FILE *o, const struct report *r)
{
	struct jout j = {.f = o, .depth = -1};
	char hex[2 * MU_SHA256_LEN + 1];
	j_open(&j, NULL, '{');
	j_str(&j, "format", "mu-surface-1");
	if (r->is_image) {
		j_open(&j, "image", '{');
		j_str(&j, "dir", r->image_dir);
		mu_hex(r->measurement, sizeof r->measurement, hex);
		j_str(&j, "measurement", hex);
		j_open(&j, "kernel", '{');
		j_u64(&j, "bytes", r->kernel_bytes);
		j_str(&j, "version", r->kernel_version);
		if (r->have_config) {
			j_open(&j, "config", '{');
			j_str(&j, "source", r->config_src);
			j_u64(&j, "builtin", r->config_y);
			j_u64(&j, "modules", r->config_m);
			j_open(&j, "options", '{');
			for (size_t i = 0; i < sizeof kfacts / sizeof kfacts[0]; i++) {
				char v[2] = {config_value(r->config_text, r->config_len, kfacts[i].opt), 0};
				j_str(&j, kfacts[i].opt, v);
			}
			j_close(&j, '}');
			j_close(&j, '}');
		}
		j_close(&j, '}');
		j_open(&j, "initramfs", '{');
		j_u64(&j, "bytes", r->initramfs_bytes);
		j_open(&j, "files", '[');
		for (size_t i = 0; i < r->n_cpio; i++) {
			char mode[16];
			snprintf(mode, sizeof mode, "%06o", (unsigned)r->cpio[i].mode);
			j_open(&j, NULL, '{');
			j_str(&j, "name", r->cpio[i].name);
			j_str(&j, "mode", mode);
			j_u64(&j, "bytes", r->cpio[i].size);
			j_close(&j, '}');
		}
		j_close(&j, ']');
		j_close(&j, '}');
		j_close(&j, '}');
	}
	j_open(&j, "binary", '{');
	j_str(&j, "path", r->label);
	j_u64(&j, "bytes", r->bytes);
	mu_hex(r->sha, sizeof r->sha, hex);
	j_str(&j, "sha256", hex);
	j_str(&j, "linking", link_kind(r));
	j_str(&j, "interpreter", r->interp_s);
	j_open(&j, "needed", '[');
	for (size_t i = 0; i < r->n_needed; i++)
		j_str(&j, NULL, r->needed[i]);
	j_close(&j, ']');
	j_u64(&j, "code_bytes", r->code_bytes);
	j_u64(&j, "data_bytes", r->data_bytes);
	j_str(&j, "debug_twin", r->have_debug ? r->debug_path : NULL);
	j_str(&j, "link_map", r->have_map ? r->map_path : NULL);
	if (r->have_lines) {
		j_u64(&j, "own_lines", r->own_lines);
		j_u64(&j, "own_files", r->own_files);
		j_u64(&j, "library_header_lines", r->header_lines);
	}
	if (r->have_map)
		j_u64(&j, "objects", r->input_objects);
	if (r->have_syms) {
		j_u64(&j, "functions", r->funcs);
		j_u64(&j, "data_symbols", r->objs_syms);
	}
	j_open(&j, "components", '[');
	for (size_t i = 0; i < r->n_comps; i++) {
		const struct comp *c = &r->comps[i];
		j_open(&j, NULL, '{');
		j_str(&j, "name", c->name);
		j_bool(&j, "ours", c->ours);
		j_u64(&j, "lines", c->lines);
		j_u64(&j, "files", c->files);
		j_u64(&j, "code_bytes", c->code);
		j_u64(&j, "data_bytes", c->data);
		j_u64(&j, "objects", c->objects);
		j_u64(&j, "functions", c->funcs);
		j_close(&j, '}');
	}
	j_close(&j, ']');
	j_open(&j, "libraries", '[');
	for (size_t i = 0; i < r->n_comps; i++)
		if (!r->comps[i].ours && r->comps[i].objects)
			j_str(&j, NULL, r->comps[i].name);
	j_close(&j, ']');
	j_close(&j, '}');
	j_open(&j, "seccomp", '{');
	json_filter(&j, "vm", &r->vm, r->ran);
	json_filter(&j, "process", &r->proc, r->ran);
	j_close(&j, '}');
	j_open(&j, "processes", '[');
	for (size_t i = 0; i < r->n_procs; i++) {
		const struct proc_report *p = r->procs[i];
		j_open(&j, NULL, '{');
		j_u64(&j, "pid", (uint64_t)p->pid);
		j_str(&j, "name", p->name);
		j_u64(&j, "netns", p->netns);
		if (!p->readable) {
			j_str(&j, "error", p->why);
		} else {
			j_open(&j, "listening", '[');
			for (size_t k = 0; k < p->n_listen; k++)
				j_str(&j, NULL, p->listen[k]);
			j_close(&j, ']');
			j_u64(&j, "connected", p->connected);
			j_u64(&j, "other_sockets", p->other_socks);
			j_u64(&j, "files", p->files);
			j_u64(&j, "pipes", p->pipes);
			j_u64(&j, "other", p->other);
		}
		j_close(&j, '}');
	}
	j_close(&j, ']');
	j_close(&j, '}');
	fputc('\n', o);
}

static void report_free(struct report *r)
{
	strtab_free(&r->files);
	strtab_free(&r->objects);
	free(r->ranges);
	for (size_t i = 0; i < r->n_needed; i++)
		free(r->needed[i]);
	free(r->vm.f);
	free(r->proc.f);
	if (r->config_text)
		pal_free(r->config_text, r->config_len + 1);
	for (size_t i = 0; i < r->n_procs; i++)
		free(r->procs[i]);
	free(r);
}

int cmd_surface(int argc, char **argv)
{
	const char *target = NULL, *debug = NULL, *map = NULL, *kbuild = NULL, *budget_path = NULL;
	int json = 0, no_run = 0, pids[MAX_PIDS];
	size_t n_pids = 0;
	struct mu_error err = {0};

	for (int i = 1; i < argc; i++) {
		const char *pid_s = NULL;
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--json")) {
			json = 1;
			continue;
		}
		if (!strcmp(argv[i], "--no-run")) {
			no_run = 1;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--debug", NULL, &debug)) ||
		    (r = cli_opt(argc, argv, &i, "--map", NULL, &map)) ||
		    (r = cli_opt(argc, argv, &i, "--kernel-build", NULL, &kbuild)) ||
		    (r = cli_opt(argc, argv, &i, "--budget", NULL, &budget_path)) ||
		    (r = cli_opt(argc, argv, &i, "--pid", NULL, &pid_s))) {
			if (r < 0)
				return 2;
			if (pid_s) {
				uint32_t v;
				if (n_pids == MAX_PIDS) {
					fprintf(stderr, "mu surface: at most %d --pid\n", MAX_PIDS);
					return 2;
				}
				if (cli_u32("--pid", pid_s, 1, 0x3fffffff, &v) != 0)
					return 2;
				pids[n_pids++] = (int)v;
			}
			continue;
		}
		if (argv[i][0] == '-' || target) {
			fprintf(stderr, "mu surface: unexpected argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
		target = argv[i];
	}
	if (!target) {
		fprintf(stderr, "mu surface: give an enclave binary or a VM image directory\n");
		usage(stderr);
		return 2;
	}

	struct budget b;
	if (budget_path && read_budget(budget_path, &b, &err) != MU_OK) {
		cli_error("surface", &err);
		return 1;
	}
	struct report *r = calloc(1, sizeof *r);
	if (!r) {
		fprintf(stderr, "mu surface: out of memory\n");
		return 1;
	}
	struct stat st;
	enum mu_err rc;
	if (stat(target, &st) != 0) {
		rc = mu_errf(&err, MU_ERR_IO, "%s: %s", target, strerror(errno));
	} else if (S_ISDIR(st.st_mode)) {
		rc = measure_image(r, target, kbuild, debug, map, no_run, &err);
	} else if (kbuild) {
		rc = mu_errf(&err, MU_ERR_ARG, "--kernel-build is for an image directory");
	} else {
		struct pal_map m = {0};
		snprintf(r->label, sizeof r->label, "%s", target);
		rc = pal_map_file(&m, target, &err);
		if (!rc) {
			rc = m.len > BIN_MAX ? mu_errf(&err, MU_ERR_RANGE, "%s: larger than 512 MiB", target)
					     : measure_binary(r, m.data, m.len, debug, map, target, no_run, &err);
			pal_unmap(&m);
		}
	}
	for (size_t i = 0; !rc && i < n_pids; i++) {
		r->procs[i] = calloc(1, sizeof *r->procs[i]);
		if (!r->procs[i]) {
			rc = mu_errf(&err, MU_ERR_NOMEM, "out of memory");
			break;
		}
		r->n_procs++;
		r->procs[i]->pid = pids[i];
		measure_proc(r->procs[i]);
	}
	if (rc) {
		cli_error("surface", &err);
		report_free(r);
		return 1;
	}
	if (json)
		print_json(stdout, r);
	else
		print_text(stdout, r);
	int over = budget_path ? check_budget(r, &b, json ? stderr : stdout) : 0;
	report_free(r);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "mu surface: cannot write the report: %s\n", strerror(errno));
		return 1;
	}
	return over ? 1 : 0;
}
