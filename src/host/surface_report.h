/* surface_report.h — the report `mu surface` builds (docs/attack-surface.md), shared by the
 * parts of the command:
 *
 *   surface_bin.c    a binary: lines, components, objects, symbols, dependencies, and the
 *                    seccomp filter it prints
 *   surface_image.c  a VM image: its measurement, kernel and initramfs, then its /init
 *   surface_proc.c   a running process: its sockets and other descriptors
 *   surface_out.c    the report as text or JSON
 *   cmd_surface.c    the command line and the budget check
 */
#ifndef MU_HOST_SURFACE_REPORT_H
#define MU_HOST_SURFACE_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "host/surface.h"
#include "seal/crypto.h"

#define SURF_MAX_COMPS 64
#define SURF_MAX_PIDS 8
#define SURF_MAX_NEEDED 32
#define SURF_MAX_CPIO 64
#define SURF_MAX_SOCKS 64

struct comp {
	char name[64];
	int ours;
	uint64_t lines, files, code, data, objects, funcs;
};

/* interned strings, each with a component */
struct strtab {
	char **s;
	uint32_t *comp;
	size_t n, cap;
	uint32_t *h; /* index + 1, 0 empty */
	size_t hcap;
};

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
	char *needed[SURF_MAX_NEEDED];
	size_t n_needed;
	int needed_lost; /* more than SURF_MAX_NEEDED, or no memory: the list is incomplete */
	uint64_t code_bytes, data_bytes;
	char debug_path[4096], map_path[4096];
	int have_debug, debug_matches, have_map;
	char debug_why[256];
	size_t compared_sections;
	struct comp comps[SURF_MAX_COMPS];
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
	struct cpio_entry cpio[SURF_MAX_CPIO];
	size_t n_cpio;
	int have_config;
	char config_src[4096];
	uint64_t config_y, config_m;
	char *config_text;
	size_t config_len;
	/* processes */
	struct proc_report *procs[SURF_MAX_PIDS];
	size_t n_procs;
};


struct proc_report {
	int pid;
	char name[64];
	int readable;
	char why[320];
	char listen[SURF_MAX_SOCKS][160];
	size_t n_listen;
	size_t connected, other_socks, files, pipes, other;
	uint64_t netns;
};

/* Measures the binary bin[0..n) (bin_path: where it came from, for its twin and map by name;
 * NULL for an image's /init) into r. */
enum mu_err surface_measure_binary(struct report *r, const uint8_t *bin, size_t n, const char *debug_opt,
				   const char *map_opt, const char *bin_path, int no_run, struct mu_error *err);
/* Measures the image in dir (kbuild: the kernel build directory, or NULL), then its /init. */
enum mu_err surface_measure_image(struct report *r, const char *dir, const char *kbuild, const char *debug_opt,
				  const char *map_opt, int no_run, struct mu_error *err);
/* Fills p (its pid set) from /proc; an unreadable process is reported, not an error. */
void surface_measure_proc(struct proc_report *p);
void surface_print_text(FILE *o, const struct report *r);
void surface_print_json(FILE *o, const struct report *r);
void surface_report_free(struct report *r);

#endif
