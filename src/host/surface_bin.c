/* surface_bin.c — `mu surface` on a binary (surface_report.h): the DWARF lines of ours and of
 * the libraries' headers, the link map's objects and code per component, the functions, the
 * dependencies, and the seccomp filter the binary prints, run from a sealed copy of its bytes. */
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

#include "host/cli.h"
#include "host/elf.h"
#include "host/surface_report.h"
#include "pal/pal.h"

#define BIN_FILTER_OUT_MAX ((size_t)1 << 20)
#define FILTER_TIMEOUT_MS 10000

/* ---- small tables ---- */


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


static long comp_named(struct report *r, const char *name, int ours)
{
	for (size_t i = 0; i < r->n_comps; i++)
		if (!strcmp(r->comps[i].name, name))
			return (long)i;
	if (r->n_comps == SURF_MAX_COMPS)
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
	char *copy = r->n_needed < SURF_MAX_NEEDED ? strdup(lib) : NULL;
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
	char *buf = malloc(BIN_FILTER_OUT_MAX + 1);
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
		ssize_t k = read(pfd[0], buf + len, BIN_FILTER_OUT_MAX - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
		if (len == BIN_FILTER_OUT_MAX) {
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

enum mu_err surface_measure_binary(struct report *r, const uint8_t *bin, size_t n, const char *debug_opt,
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
		rc = mu_errf(err, MU_ERR_RANGE, "%s: more than %d DT_NEEDED libraries, or no memory", r->label, SURF_MAX_NEEDED);
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
				     SURF_MAX_COMPS);
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

void surface_report_free(struct report *r)
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

