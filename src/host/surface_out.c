/* surface_out.c — the `mu surface` report as text or as one JSON object (surface_report.h). */
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

#include "host/elf.h"
#include "host/surface_report.h"

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

void surface_print_text(FILE *o, const struct report *r)
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

void surface_print_json(FILE *o, const struct report *r)
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

