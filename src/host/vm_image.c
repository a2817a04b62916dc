/* vm_image.c — the enclave VM image (host/vm.h): checks of the kernel and the enclave binary,
 * the initramfs writer, the image measurement, `mu vm build` and the check `mu vm run` makes
 * before it boots an image. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/ckd.h"
#include "base/endian.h"
#include "host/cli.h"
#include "host/vm.h"
#include "pal/pal.h"
#include "wire/json.h"
#include "wire/json_write.h"

/* ---- checks ---- */

enum mu_err mu_vm_check_kernel(const uint8_t *p, size_t n, const char *name, struct mu_error *err)
{
	if (n > MU_VM_KERNEL_MAX)
		return mu_errf(err, MU_ERR_RANGE, "%s: %zu bytes, more than the %zu MiB a kernel may have", name, n,
			       MU_VM_KERNEL_MAX >> 20);
	/* The x86 boot protocol's setup header: "HdrS" at 0x202 (Documentation/arch/x86/boot.rst). */
	if (n < 0x206 || memcmp(p + 0x202, "HdrS", 4) != 0)
		return mu_errf(err, MU_ERR_FORMAT,
			       "%s is not a bzImage (no \"HdrS\" boot header at offset 0x202); give the kernel's "
			       "arch/x86/boot/bzImage, not vmlinux",
			       name);
	return MU_OK;
}

enum mu_err mu_vm_check_enclave(const uint8_t *p, size_t n, const char *name, struct mu_error *err)
{
	enum { ET_EXEC_ = 2, ET_DYN_ = 3, EM_X86_64_ = 62, PT_LOAD_ = 1, PT_INTERP_ = 3, PHENT = 56 };
	if (n > MU_VM_ENCLAVE_MAX)
		return mu_errf(err, MU_ERR_RANGE, "%s: %zu bytes, more than the %zu MiB the enclave may have", name, n,
			       MU_VM_ENCLAVE_MAX >> 20);
	if (n < 64 || memcmp(p, "\x7f" "ELF", 4) != 0)
		return mu_errf(err, MU_ERR_FORMAT, "%s is not an ELF executable", name);
	if (p[4] != 2)
		return mu_errf(err, MU_ERR_FORMAT, "%s is not a 64-bit ELF file (class %u)", name, p[4]);
	if (p[5] != 1)
		return mu_errf(err, MU_ERR_FORMAT, "%s is not a little-endian ELF file", name);
	if (p[6] != 1)
		return mu_errf(err, MU_ERR_FORMAT, "%s: unknown ELF version %u", name, p[6]);
	uint16_t type = le16_load(p + 16), machine = le16_load(p + 18);
	if (machine != EM_X86_64_)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "%s is for ELF machine %u, not x86-64 (62)", name, machine);
	if (type != ET_EXEC_ && type != ET_DYN_)
		return mu_errf(err, MU_ERR_FORMAT, "%s is not an executable (ELF type %u)", name, type);
	uint64_t phoff = le64_load(p + 32);
	uint16_t phentsize = le16_load(p + 54), phnum = le16_load(p + 56);
	if (phnum == 0 || phnum == 0xffff)
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s program headers", name, phnum ? "too many" : "no");
	if (phentsize != PHENT)
		return mu_errf(err, MU_ERR_FORMAT, "%s: program header size %u, not %d", name, phentsize, PHENT);
	uint64_t table = (uint64_t)phnum * PHENT, end;
	if (ckd_add(&end, phoff, table) || end > n)
		return mu_errf(err, MU_ERR_FORMAT, "%s: the program header table lies outside the file (truncated?)",
			       name);
	int loads = 0;
	for (uint16_t i = 0; i < phnum; i++) {
		uint32_t pt = le32_load(p + phoff + (uint64_t)i * PHENT);
		if (pt == PT_INTERP_)
			return mu_errf(err, MU_ERR_UNSUPPORTED,
				       "%s is not static: it has a program interpreter (build it with make static-enclave)",
				       name);
		loads += pt == PT_LOAD_;
	}
	/* ELF type 3 without an interpreter: a static PIE (what make static-enclave links, so that
	 * the kernel places it at a random address) has an entry point; a shared library built
	 * without one is not a program. */
	if (type == ET_DYN_ && le64_load(p + 24) == 0)
		return mu_errf(err, MU_ERR_UNSUPPORTED,
			       "%s is a shared library (ELF type 3, no entry point); the VM's /init must be a static "
			       "executable (make static-enclave)",
			       name);
	if (!loads)
		return mu_errf(err, MU_ERR_FORMAT, "%s has no loadable segment", name);
	return MU_OK;
}

enum mu_err mu_vm_check_cmdline(const char *s, size_t n, struct mu_error *err)
{
	if (n == 0)
		return mu_errf(err, MU_ERR_ARG, "the kernel command line is empty");
	if (n > MU_VM_CMDLINE_MAX)
		return mu_errf(err, MU_ERR_RANGE, "the kernel command line is %zu bytes, more than %u", n,
			       MU_VM_CMDLINE_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return mu_errf(err, MU_ERR_FORMAT,
				       "the kernel command line has a byte that is not printable ASCII at offset %zu", i);
	return MU_OK;
}

/* 1..MU_VM_DESC_MAX bytes of UTF-8 without control characters. */
static enum mu_err check_desc(const char *s, struct mu_error *err)
{
	size_t n = strlen(s);
	if (n == 0 || n > MU_VM_DESC_MAX)
		return mu_errf(err, MU_ERR_ARG, "--kernel-desc must be 1..%u bytes", MU_VM_DESC_MAX);
	if (json_utf8_check(s, n) != n)
		return mu_errf(err, MU_ERR_FORMAT, "--kernel-desc is not valid UTF-8");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return mu_errf(err, MU_ERR_FORMAT, "--kernel-desc has a control character at offset %zu", i);
	return MU_OK;
}

/* ---- the initramfs ---- */

struct cpio_entry {
	const char *name;
	uint32_t mode, nlink, rdev_major, rdev_minor;
	int is_init; /* data = the enclave */
};

/* Sorted by name; a cpio of a directory tree in `find | sort` order. */
static const struct cpio_entry cpio_entries[] = {
	{"dev", 040755, 2, 0, 0, 0},
	{"dev/console", 020600, 1, 5, 1, 0},
	{"init", 0100555, 1, 0, 0, 1},
	{"proc", 040555, 2, 0, 0, 0},
	{"sys", 040555, 2, 0, 0, 0},
};
#define CPIO_HDR 110u
#define CPIO_TRAILER "TRAILER!!!"

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

static size_t cpio_entry_size(const char *name, size_t data_len)
{
	return pad4(CPIO_HDR + strlen(name) + 1) + pad4(data_len);
}

size_t mu_vm_cpio_size(size_t init_len)
{
	size_t n = cpio_entry_size(CPIO_TRAILER, 0);
	for (size_t i = 0; i < sizeof cpio_entries / sizeof cpio_entries[0]; i++)
		n += cpio_entry_size(cpio_entries[i].name, cpio_entries[i].is_init ? init_len : 0);
	return n;
}

static uint8_t *cpio_put(uint8_t *o, uint32_t ino, uint32_t mode, uint32_t nlink, uint32_t rmaj, uint32_t rmin,
			 const char *name, const uint8_t *data, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t namesize = strlen(name) + 1;
	uint32_t f[13] = {ino, mode, 0, 0, nlink, 0, (uint32_t)len, 0, 0, rmaj, rmin, (uint32_t)namesize, 0};
	uint8_t *start = o;
	memcpy(o, "070701", 6);
	o += 6;
	for (int i = 0; i < 13; i++)
		for (int d = 7; d >= 0; d--)
			*o++ = (uint8_t)hex[(f[i] >> (4 * d)) & 15];
	memcpy(o, name, namesize);
	o += namesize;
	while ((size_t)(o - start) % 4)
		*o++ = 0;
	if (len)
		memcpy(o, data, len);
	o += len;
	for (size_t k = len; k % 4; k++)
		*o++ = 0;
	return o;
}

void mu_vm_cpio_write(uint8_t *out, const uint8_t *init, size_t init_len)
{
	uint8_t *o = out;
	uint32_t ino = 1;
	for (size_t i = 0; i < sizeof cpio_entries / sizeof cpio_entries[0]; i++) {
		const struct cpio_entry *e = &cpio_entries[i];
		o = cpio_put(o, ino++, e->mode, e->nlink, e->rdev_major, e->rdev_minor, e->name,
			     e->is_init ? init : NULL, e->is_init ? init_len : 0);
	}
	/* The trailer as GNU cpio and the kernel's gen_init_cpio write it: inode 0, mode 0, nlink 1. */
	o = cpio_put(o, 0, 0, 1, 0, 0, CPIO_TRAILER, NULL, 0);
	(void)o;
}

/* ---- measurement ---- */

void mu_vm_measure(const uint8_t kernel_sha[static MU_SHA256_LEN], const uint8_t initramfs_sha[static MU_SHA256_LEN],
		   const char *cmdline, size_t cmdline_len, uint8_t out[static MU_SHA256_LEN])
{
	struct mu_sha256_ctx s;
	uint8_t len[8];
	be32_store(len, (uint32_t)((uint64_t)cmdline_len >> 32));
	be32_store(len + 4, (uint32_t)cmdline_len);
	mu_sha256_init(&s);
	mu_sha256_update(&s, MU_VM_FORMAT, sizeof MU_VM_FORMAT); /* the label and its NUL */
	mu_sha256_update(&s, kernel_sha, MU_SHA256_LEN);
	mu_sha256_update(&s, initramfs_sha, MU_SHA256_LEN);
	mu_sha256_update(&s, len, sizeof len);
	mu_sha256_update(&s, cmdline, cmdline_len);
	mu_sha256_final(&s, out);
}

/* ---- mu vm build ---- */

static enum mu_err join(char *buf, size_t cap, const char *dir, const char *name, struct mu_error *err)
{
	if ((size_t)snprintf(buf, cap, "%s/%s", dir, name) >= cap)
		return mu_errf(err, MU_ERR_ARG, "%s: path too long", dir);
	return MU_OK;
}

/* DIR/name through DIR/.name.tmp.PID, fsync and rename (outfile_commit), replacing an old one. */
static enum mu_err write_image_file(const char *dir, const char *name, const void *data, size_t len,
				    struct mu_error *err)
{
	char out[MU_VM_PATH_MAX], tmp[MU_VM_PATH_MAX];
	enum mu_err rc = join(out, sizeof out, dir, name, err);
	if (rc)
		return rc;
	if ((size_t)snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld", dir, name, (long)getpid()) >= sizeof tmp)
		return mu_errf(err, MU_ERR_ARG, "%s: path too long", dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
	rc = outfile_write_all(fd, data, len, tmp, err);
	if (rc == MU_OK && fsync(fd) != 0)
		rc = mu_errf(err, MU_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
	if (close(fd) != 0 && rc == MU_OK)
		rc = mu_errf(err, MU_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
	if (rc == MU_OK)
		rc = outfile_commit(tmp, out, 1, err);
	if (rc != MU_OK)
		unlink(tmp);
	return rc;
}

static enum mu_err make_dir(const char *dir, struct mu_error *err)
{
	struct stat st;
	if (!*dir)
		return mu_errf(err, MU_ERR_ARG, "--out: empty directory name");
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return mu_errf(err, MU_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(errno));
	if (stat(dir, &st) != 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot stat: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return mu_errf(err, MU_ERR_IO, "%s exists and is not a directory", dir);
	return MU_OK;
}

/* Maps a regular file of at most max bytes. */
static enum mu_err map_input(struct pal_map *m, const char *path, size_t max, const char *what, struct mu_error *err)
{
	enum mu_err rc = pal_map_file(m, path, err);
	if (rc)
		return rc;
	if (m->device) {
		pal_unmap(m);
		return mu_errf(err, MU_ERR_IO, "%s: a block device, not a regular file", path);
	}
	if (m->len > max) {
		size_t n = m->len;
		pal_unmap(m);
		return mu_errf(err, MU_ERR_RANGE, "%s: %zu bytes, more than the %zu MiB %s may have", path, n, max >> 20,
			       what);
	}
	return MU_OK;
}

static enum mu_err write_json(const char *dir, const struct mu_vm_build_report *r, struct mu_error *err)
{
	char buf[4 * MU_VM_CMDLINE_MAX + 4 * MU_VM_DESC_MAX + 1024];
	struct jsonw w;
	size_t len;
	jsonw_init(&w, buf, sizeof buf);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "format", MU_VM_FORMAT);
	jsonw_begin(&w, "kernel");
	jsonw_str(&w, "file", MU_VM_FILE_KERNEL);
	jsonw_int(&w, "bytes", (int64_t)r->kernel_len);
	jsonw_hex(&w, "sha256", r->kernel_sha, MU_SHA256_LEN);
	jsonw_str(&w, "desc", r->kernel_desc);
	jsonw_end(&w);
	jsonw_begin(&w, "initramfs");
	jsonw_str(&w, "file", MU_VM_FILE_INITRAMFS);
	jsonw_int(&w, "bytes", (int64_t)r->initramfs_len);
	jsonw_hex(&w, "sha256", r->initramfs_sha, MU_SHA256_LEN);
	jsonw_end(&w);
	jsonw_begin(&w, "enclave");
	jsonw_int(&w, "bytes", (int64_t)r->enclave_len);
	jsonw_hex(&w, "sha256", r->enclave_sha, MU_SHA256_LEN);
	jsonw_end(&w);
	jsonw_str(&w, "cmdline", r->cmdline);
	jsonw_hex(&w, "measurement", r->measurement, MU_SHA256_LEN);
	jsonw_end(&w);
	enum mu_err rc = jsonw_finish(&w, &len);
	if (rc)
		return mu_errf(err, MU_ERR_INTERNAL, "cannot format %s (%s)", MU_VM_FILE_JSON, mu_err_name(rc));
	buf[len++] = '\n'; /* jsonw_finish left room for the NUL */
	return write_image_file(dir, MU_VM_FILE_JSON, buf, len, err);
}

enum mu_err mu_vm_build(const struct mu_vm_build_opts *o, struct mu_vm_build_report *r, struct mu_error *err)
{
	struct pal_map kernel = {0}, enclave = {0};
	uint8_t *cpio = NULL;
	enum mu_err rc;
	const char *cmdline = o->cmdline ? o->cmdline : MU_VM_CMDLINE;
	const char *desc = o->kernel_desc ? o->kernel_desc : "given kernel";
	size_t cmdline_len = strlen(cmdline);

	memset(r, 0, sizeof *r);
	/* Everything is checked before anything is written. */
	if ((rc = mu_vm_check_cmdline(cmdline, cmdline_len, err)) || (rc = check_desc(desc, err)))
		return rc;
	if ((rc = map_input(&kernel, o->kernel, MU_VM_KERNEL_MAX, "a kernel", err)) ||
	    (rc = mu_vm_check_kernel(kernel.data, kernel.len, o->kernel, err)))
		goto out;
	if ((rc = map_input(&enclave, o->enclave, MU_VM_ENCLAVE_MAX, "the enclave", err)) ||
	    (rc = mu_vm_check_enclave(enclave.data, enclave.len, o->enclave, err)))
		goto out;

	size_t cpio_len = mu_vm_cpio_size(enclave.len);
	if (!(cpio = malloc(cpio_len))) {
		rc = mu_errf(err, MU_ERR_NOMEM, "out of memory for the %zu-byte initramfs", cpio_len);
		goto out;
	}
	mu_vm_cpio_write(cpio, enclave.data, enclave.len);

	r->kernel_len = kernel.len;
	r->enclave_len = enclave.len;
	r->initramfs_len = cpio_len;
	mu_sha256(kernel.data, kernel.len, r->kernel_sha);
	mu_sha256(enclave.data, enclave.len, r->enclave_sha);
	mu_sha256(cpio, cpio_len, r->initramfs_sha);
	memcpy(r->cmdline, cmdline, cmdline_len + 1);
	snprintf(r->kernel_desc, sizeof r->kernel_desc, "%s", desc);
	mu_vm_measure(r->kernel_sha, r->initramfs_sha, cmdline, cmdline_len, r->measurement);

	if ((rc = make_dir(o->out_dir, err)) ||
	    (rc = write_image_file(o->out_dir, MU_VM_FILE_KERNEL, kernel.data, kernel.len, err)) ||
	    (rc = write_image_file(o->out_dir, MU_VM_FILE_INITRAMFS, cpio, cpio_len, err)) ||
	    (rc = write_image_file(o->out_dir, MU_VM_FILE_CMDLINE, cmdline, cmdline_len, err)) ||
	    (rc = write_json(o->out_dir, r, err)))
		goto out;
out:
	free(cpio);
	pal_unmap(&enclave);
	pal_unmap(&kernel);
	return rc;
}

/* ---- the check before a boot ---- */

static enum mu_err hash_file(const char *path, size_t max, const char *what, uint8_t out[static MU_SHA256_LEN],
			     struct pal_map *keep, struct mu_error *err)
{
	struct pal_map m;
	enum mu_err rc = map_input(&m, path, max, what, err);
	if (rc)
		return rc;
	mu_sha256(m.data, m.len, out);
	if (keep)
		*keep = m;
	else
		pal_unmap(&m);
	return MU_OK;
}

static enum mu_err read_json_measurement(const char *path, const char *dir, uint8_t out[static MU_SHA256_LEN],
					 struct mu_error *err)
{
	static const struct json_limits lim = {
		.max_bytes = 65536, .max_depth = 4, .max_tokens = 256, .max_string = 8192, .max_number = 32, .flags = 0};
	static const char *const members[] = {"format", "kernel", "initramfs", "enclave", "cmdline", "measurement"};
	uint8_t *src = NULL;
	size_t len = 0, mem_len = 0;
	void *mem = NULL;
	struct json_doc doc;
	enum mu_err rc = pal_read_file(path, lim.max_bytes, &src, &len, err);
	if (rc)
		return rc;
	if ((rc = json_mem_size(&lim, len, &mem_len, err)))
		goto out;
	if (!(mem = malloc(mem_len))) {
		rc = mu_errf(err, MU_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = json_parse(&doc, src, len, &lim, mem, mem_len, err)) ||
	    (rc = json_obj_only(&doc, 0, members, sizeof members / sizeof members[0], err))) {
		mu_err_prefix(err, "%s", path);
		goto out;
	}
	uint32_t f = json_obj_get(&doc, 0, "format"), m = json_obj_get(&doc, 0, "measurement");
	if (f == JSON_NONE || !json_str_eq(&doc, f, MU_VM_FORMAT)) {
		rc = mu_errf(err, MU_ERR_FORMAT, "%s: \"format\" is not \"%s\" (rebuild the image with mu vm build --out %s)",
			     path, MU_VM_FORMAT, dir);
		goto out;
	}
	const char *hex;
	size_t hex_len;
	if (m == JSON_NONE || !json_str_raw(&doc, m, &hex, &hex_len) || mu_unhex(hex, hex_len, out, MU_SHA256_LEN)) {
		rc = mu_errf(err, MU_ERR_FORMAT, "%s: \"measurement\" is missing or not 64 hex digits", path);
		goto out;
	}
out:
	free(mem);
	pal_free(src, len + 1);
	return rc;
}

enum mu_err mu_vm_image_load(const char *dir, struct mu_vm_image *img, struct mu_error *err)
{
	char path[MU_VM_PATH_MAX];
	uint8_t ksha[MU_SHA256_LEN], isha[MU_SHA256_LEN], want[MU_SHA256_LEN];
	uint8_t *cl = NULL;
	size_t cl_len = 0;
	struct pal_map kernel = {0};
	struct stat st;
	enum mu_err rc;

	memset(img, 0, sizeof *img);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return mu_errf(err, MU_ERR_IO, "%s: not a directory (make the image with mu vm build --out %s)", dir, dir);
	if ((rc = join(path, sizeof path, dir, MU_VM_FILE_JSON, err)))
		return rc;
	if (stat(path, &st) != 0)
		return mu_errf(err, MU_ERR_IO, "%s: no %s here (make the image with mu vm build --out %s)", dir,
			       MU_VM_FILE_JSON, dir);
	if ((rc = read_json_measurement(path, dir, want, err)))
		return rc;

	if ((rc = join(img->kernel, sizeof img->kernel, dir, MU_VM_FILE_KERNEL, err)) ||
	    (rc = join(img->initramfs, sizeof img->initramfs, dir, MU_VM_FILE_INITRAMFS, err)) ||
	    (rc = join(path, sizeof path, dir, MU_VM_FILE_CMDLINE, err)))
		return rc;
	if ((rc = hash_file(img->kernel, MU_VM_KERNEL_MAX, "a kernel", ksha, &kernel, err)))
		return rc;
	rc = mu_vm_check_kernel(kernel.data, kernel.len, img->kernel, err);
	pal_unmap(&kernel);
	if (rc)
		return rc;
	if ((rc = hash_file(img->initramfs, mu_vm_cpio_size(MU_VM_ENCLAVE_MAX), "an initramfs", isha, NULL, err)))
		return rc;
	if ((rc = pal_read_file(path, MU_VM_CMDLINE_MAX, &cl, &cl_len, err)))
		return rc;
	if ((rc = mu_vm_check_cmdline((const char *)cl, cl_len, err)) == MU_OK) {
		memcpy(img->cmdline, cl, cl_len);
		img->cmdline[cl_len] = '\0';
		img->cmdline_len = cl_len;
	} else {
		mu_err_prefix(err, "%s", path);
	}
	pal_free(cl, cl_len + 1);
	if (rc)
		return rc;

	mu_vm_measure(ksha, isha, img->cmdline, img->cmdline_len, img->measurement);
	if (memcmp(img->measurement, want, MU_SHA256_LEN) != 0)
		return mu_errf(err, MU_ERR_AUTH,
			       "the image in %s changed since mu vm build (its measurement does not match %s; "
			       "run mu vm build again)",
			       dir, MU_VM_FILE_JSON);
	return MU_OK;
}
