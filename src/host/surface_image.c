/* surface_image.c — `mu surface` on a VM image (surface_report.h): the measurement checked
 * again, the kernel's version and configuration, the initramfs entries, then /init measured as
 * a binary. */
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
#include "host/surface_report.h"
#include "host/vm.h"
#include "pal/pal.h"

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
		if (r->n_cpio == SURF_MAX_CPIO)
			return mu_errf(err, MU_ERR_RANGE, "initramfs: more than %d entries", SURF_MAX_CPIO);
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

enum mu_err surface_measure_image(struct report *r, const char *dir, const char *kbuild, const char *debug_opt,
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
		rc = surface_measure_binary(r, init, init_len, debug_opt, map_opt, NULL, no_run, err);
	}
	pal_unmap(&im);
	return rc;
}

