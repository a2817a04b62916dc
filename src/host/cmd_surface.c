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
#include "host/surface_report.h"
#include "host/vm.h"
#include "pal/pal.h"
#include "seal/crypto.h"

#define BIN_MAX ((size_t)512 << 20)

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
		SURF_MAX_PIDS);
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

int cmd_surface(int argc, char **argv)
{
	const char *target = NULL, *debug = NULL, *map = NULL, *kbuild = NULL, *budget_path = NULL;
	int json = 0, no_run = 0, pids[SURF_MAX_PIDS];
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
				if (n_pids == SURF_MAX_PIDS) {
					fprintf(stderr, "mu surface: at most %d --pid\n", SURF_MAX_PIDS);
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
		rc = surface_measure_image(r, target, kbuild, debug, map, no_run, &err);
	} else if (kbuild) {
		rc = mu_errf(&err, MU_ERR_ARG, "--kernel-build is for an image directory");
	} else {
		struct pal_map m = {0};
		snprintf(r->label, sizeof r->label, "%s", target);
		rc = pal_map_file(&m, target, &err);
		if (!rc) {
			rc = m.len > BIN_MAX ? mu_errf(&err, MU_ERR_RANGE, "%s: larger than 512 MiB", target)
					     : surface_measure_binary(r, m.data, m.len, debug, map, target, no_run, &err);
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
		surface_measure_proc(r->procs[i]);
	}
	if (rc) {
		cli_error("surface", &err);
		surface_report_free(r);
		return 1;
	}
	if (json)
		surface_print_json(stdout, r);
	else
		surface_print_text(stdout, r);
	int over = budget_path ? check_budget(r, &b, json ? stderr : stdout) : 0;
	surface_report_free(r);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "mu surface: cannot write the report: %s\n", strerror(errno));
		return 1;
	}
	return over ? 1 : 0;
}
