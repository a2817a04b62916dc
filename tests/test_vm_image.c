/* test_vm_image.c — the enclave VM image (host/vm.h).
 *
 *   - the initramfs: parsed back entry by entry (names in order, modes, inode numbers, nlink,
 *     rdev of dev/console, mtime/uid/gid 0, 4-byte alignment, the trailer, /init's bytes intact)
 *     for /init lengths 0..9 (every padding case), and two writes are byte-identical;
 *   - the measurement: a known answer computed with Python's hashlib, the same value recomputed
 *     here from the concatenation, and a changed byte of the kernel, the initramfs or the command
 *     line (or a longer command line) changes it;
 *   - the enclave check: a synthetic static ELF64 passes; with PT_INTERP, 32-bit, big-endian,
 *     another machine, ET_DYN, a truncated or overflowing program header table, no PT_LOAD,
 *     or not an ELF file at all, it fails; this (dynamic, PIE) test binary fails;
 *   - the bzImage check, the command line check and the config check (each wrong or missing
 *     member is named, a NUL byte is refused, the wrong value is never quoted back);
 *   - mu vm build into a temporary directory, mu_vm_image_load of the result, a rebuild that is
 *     byte-identical, a changed cmdline file refused as "changed since mu vm build", and a
 *     refused build that writes nothing;
 *   - the default memory rule and the QEMU command line (exact, no network device, commas
 *     doubled, relative paths made ./ so QEMU never reads a protocol prefix).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/endian.h"
#include "host/vm.h"
#include "seal/crypto.h"
#include "wire/json.h"
#include "test.h"

/* ---- helpers ---- */

static uint32_t hex8(const uint8_t *p, int *ok)
{
	uint32_t v = 0;
	for (int i = 0; i < 8; i++) {
		int c = p[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else {
			*ok = 0;
			return 0;
		}
		v = v << 4 | (uint32_t)d;
	}
	return v;
}

static int write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fwrite(p, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static uint8_t *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)len + 1);
	if (!b || fread(b, 1, (size_t)len, f) != (size_t)len)
		exit(2);
	fclose(f);
	*n = (size_t)len;
	return b;
}

/* ---- the initramfs ---- */

static void test_cpio_one(size_t init_len)
{
	static const struct {
		const char *name;
		uint32_t ino, mode, nlink, rmaj, rmin;
		int data;
	} want[] = {
		{"dev", 1, 040755, 2, 0, 0, 0},       {"dev/console", 2, 020600, 1, 5, 1, 0},
		{"init", 3, 0100555, 1, 0, 0, 1},     {"proc", 4, 040555, 2, 0, 0, 0},
		{"sys", 5, 040555, 2, 0, 0, 0},       {"TRAILER!!!", 0, 0, 1, 0, 0, 0},
	};
	uint8_t init[16];
	for (size_t i = 0; i < sizeof init; i++)
		init[i] = (uint8_t)(0xA0 + i);
	size_t n = mu_vm_cpio_size(init_len);
	uint8_t *a = malloc(n), *b = malloc(n);
	memset(a, 0xEE, n);
	memset(b, 0x11, n);
	mu_vm_cpio_write(a, init, init_len);
	mu_vm_cpio_write(b, init, init_len);
	CHECK(memcmp(a, b, n) == 0, "two writes differ (init_len %zu)", init_len);

	size_t off = 0;
	int ok = 1;
	for (size_t e = 0; e < sizeof want / sizeof want[0]; e++) {
		CHECK(off % 4 == 0, "entry %zu at unaligned offset %zu", e, off);
		CHECK(off + 110 <= n, "entry %zu header past the end", e);
		if (off + 110 > n)
			break;
		const uint8_t *h = a + off;
		CHECK(memcmp(h, "070701", 6) == 0, "entry %zu magic", e);
		uint32_t f[13];
		for (int i = 0; i < 13; i++)
			f[i] = hex8(h + 6 + 8 * i, &ok);
		CHECK(ok, "entry %zu: non-hex header field", e);
		CHECK_EQ_INT(f[0], want[e].ino);
		CHECK_EQ_INT(f[1], want[e].mode);
		CHECK_EQ_INT(f[2], 0); /* uid */
		CHECK_EQ_INT(f[3], 0); /* gid */
		CHECK_EQ_INT(f[4], want[e].nlink);
		CHECK_EQ_INT(f[5], 0); /* mtime */
		CHECK_EQ_INT(f[6], want[e].data ? init_len : 0);
		CHECK_EQ_INT(f[7], 0);
		CHECK_EQ_INT(f[8], 0);
		CHECK_EQ_INT(f[9], want[e].rmaj);
		CHECK_EQ_INT(f[10], want[e].rmin);
		CHECK_EQ_INT(f[11], strlen(want[e].name) + 1);
		CHECK_EQ_INT(f[12], 0); /* check */
		const char *name = (const char *)h + 110;
		CHECK(strcmp(name, want[e].name) == 0, "entry %zu is '%.20s', want '%s'", e, name, want[e].name);
		size_t data_at = off + 110 + f[11];
		for (; data_at % 4; data_at++)
			CHECK(a[data_at] == 0, "entry %zu: name padding not zero", e);
		if (want[e].data)
			CHECK(init_len == 0 || memcmp(a + data_at, init, init_len) == 0, "init data changed");
		off = data_at + f[6];
		for (; off % 4; off++)
			CHECK(a[off] == 0, "entry %zu: data padding not zero", e);
	}
	CHECK(off == n, "archive ends at %zu, size says %zu", off, n);
	free(a);
	free(b);
}

static void test_cpio(void)
{
	for (size_t len = 0; len < 10; len++)
		test_cpio_one(len);
}

/* ---- the measurement ---- */

static void test_measure(void)
{
	const char *k = "kernel bytes", *i = "initramfs bytes", *c = "console=ttyS0 panic=-1 quiet -- --config /dev/vdb"; /* fixed: a known answer */
	uint8_t ks[32], is[32], m[32], m2[32], want[32];
	char hex[65];

	mu_sha256(k, strlen(k), ks);
	mu_sha256(i, strlen(i), is);
	mu_vm_measure(ks, is, c, strlen(c), m);
	mu_hex(m, 32, hex);
	/* python3: sha256(b"mu-vm-image-1\0" + sha256(k) + sha256(i) + struct.pack(">Q", len(c)) + c) */
	CHECK(!strcmp(hex, "3c31637cc090f3f2b83b0da381edd0ecba17ff03df1e79d3d3240e6d3afbb4c5"), "measurement %s", hex);

	uint8_t buf[14 + 32 + 32 + 8 + 128];
	size_t n = 0, cl = strlen(c);
	memcpy(buf, "mu-vm-image-1", 14); /* with the NUL */
	n = 14;
	memcpy(buf + n, ks, 32);
	n += 32;
	memcpy(buf + n, is, 32);
	n += 32;
	be32_store(buf + n, 0);
	be32_store(buf + n + 4, (uint32_t)cl);
	n += 8;
	memcpy(buf + n, c, cl);
	n += cl;
	mu_sha256(buf, n, want);
	CHECK(memcmp(m, want, 32) == 0, "measurement is not the hash of the concatenation");

	/* every input matters */
	char kb[32], ib[32], cb[128];
	strcpy(kb, k);
	kb[3] ^= 1;
	mu_sha256(kb, strlen(kb), ks);
	mu_vm_measure(ks, is, c, cl, m2);
	CHECK(memcmp(m, m2, 32) != 0, "kernel byte did not change the measurement");
	mu_sha256(k, strlen(k), ks);
	strcpy(ib, i);
	ib[0] ^= 0x20;
	mu_sha256(ib, strlen(ib), is);
	mu_vm_measure(ks, is, c, cl, m2);
	CHECK(memcmp(m, m2, 32) != 0, "initramfs byte did not change the measurement");
	mu_sha256(i, strlen(i), is);
	strcpy(cb, c);
	cb[cl - 1] = 'c';
	mu_vm_measure(ks, is, cb, cl, m2);
	CHECK(memcmp(m, m2, 32) != 0, "cmdline byte did not change the measurement");
	mu_vm_measure(ks, is, c, cl - 1, m2);
	CHECK(memcmp(m, m2, 32) != 0, "cmdline length did not change the measurement");
	mu_vm_measure(ks, is, c, cl, m2);
	CHECK(memcmp(m, m2, 32) == 0, "measurement not repeatable");
}

/* ---- the enclave check ---- */

enum { PT_LOAD_ = 1, PT_INTERP_ = 3, PT_NOTE_ = 4 };

/* ELF64 header + n_ph program headers of the given types. */
static size_t make_elf(uint8_t *b, const uint32_t *types, int n_ph)
{
	size_t n = 64 + (size_t)n_ph * 56;
	memset(b, 0, n);
	memcpy(b, "\x7f" "ELF", 4);
	b[4] = 2; /* ELFCLASS64 */
	b[5] = 1; /* little-endian */
	b[6] = 1; /* EV_CURRENT */
	le16_store(b + 16, 2);  /* ET_EXEC */
	le16_store(b + 18, 62); /* EM_X86_64 */
	le32_store(b + 20, 1);
	le64_store(b + 24, 0x401000); /* entry */
	le64_store(b + 32, 64);       /* phoff */
	le16_store(b + 52, 64);
	le16_store(b + 54, 56);
	le16_store(b + 56, (uint16_t)n_ph);
	for (int i = 0; i < n_ph; i++)
		le32_store(b + 64 + 56 * i, types[i]);
	return n;
}

static void elf_bad(const uint8_t *b, size_t n, const char *needle, const char *what)
{
	struct mu_error e = {0};
	CHECK(mu_vm_check_enclave(b, n, "BIN", &e) != MU_OK, "%s accepted", what);
	CHECK(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, e.msg, needle);
	CHECK(!strncmp(e.msg, "BIN", 3), "%s: message '%s' does not name the file", what, e.msg);
}

static void test_elf(void)
{
	uint8_t b[64 + 4 * 56];
	struct mu_error e = {0};
	const uint32_t ok_types[] = {PT_LOAD_, PT_NOTE_, PT_LOAD_};
	size_t n = make_elf(b, ok_types, 3);
	CHECK(mu_vm_check_enclave(b, n, "BIN", &e) == MU_OK, "static ELF refused: %s", e.msg);

	const uint32_t interp[] = {PT_NOTE_, PT_INTERP_, PT_LOAD_};
	n = make_elf(b, interp, 3);
	elf_bad(b, n, "BIN is not static: it has a program interpreter", "PT_INTERP");

	const uint32_t noload[] = {PT_NOTE_};
	n = make_elf(b, noload, 1);
	elf_bad(b, n, "no loadable segment", "no PT_LOAD");

	n = make_elf(b, ok_types, 3);
	b[4] = 1;
	elf_bad(b, n, "64-bit", "ELFCLASS32");
	n = make_elf(b, ok_types, 3);
	b[5] = 2;
	elf_bad(b, n, "little-endian", "big-endian");
	n = make_elf(b, ok_types, 3);
	le16_store(b + 18, 183);
	elf_bad(b, n, "not x86-64", "aarch64");
	n = make_elf(b, ok_types, 3);
	le16_store(b + 16, 3); /* a static PIE: type 3, an entry point, no interpreter */
	le64_store(b + 24, 0x1234);
	CHECK(mu_vm_check_enclave(b, n, "BIN", &e) == MU_OK, "static PIE refused: %s", e.msg);
	le64_store(b + 24, 0);
	elf_bad(b, n, "shared library", "ET_DYN without an entry point");
	n = make_elf(b, ok_types, 3);
	le16_store(b + 16, 1);
	elf_bad(b, n, "not an executable", "ET_REL");
	n = make_elf(b, ok_types, 3);
	le16_store(b + 56, 4); /* one more header than the file holds */
	elf_bad(b, n, "outside the file", "truncated table");
	n = make_elf(b, ok_types, 3);
	le64_store(b + 32, UINT64_MAX - 8);
	elf_bad(b, n, "outside the file", "phoff overflow");
	n = make_elf(b, ok_types, 3);
	le16_store(b + 54, 32);
	elf_bad(b, n, "program header size", "phentsize");
	n = make_elf(b, ok_types, 3);
	le16_store(b + 56, 0);
	elf_bad(b, n, "no program headers", "phnum 0");
	elf_bad((const uint8_t *)"#!/bin/sh\necho hi\n", 18, "not an ELF", "a script");
	n = make_elf(b, ok_types, 3);
	elf_bad(b, 40, "not an ELF", "40 bytes");
	elf_bad(b, 0, "not an ELF", "empty");

	/* this test binary is a dynamically linked PIE */
	size_t self_n;
	uint8_t *self = read_file("/proc/self/exe", &self_n);
	if (self) {
		CHECK(mu_vm_check_enclave(self, self_n, "self", &e) != MU_OK, "the (dynamic) test binary passed");
		free(self);
	}
}

/* ---- bzImage, cmdline, config ---- */

static void test_kernel(void)
{
	uint8_t k[0x400] = {0};
	struct mu_error e = {0};
	memcpy(k + 0x202, "HdrS", 4);
	CHECK(mu_vm_check_kernel(k, sizeof k, "K", &e) == MU_OK, "bzImage refused: %s", e.msg);
	CHECK(mu_vm_check_kernel(k, 0x206, "K", &e) == MU_OK, "minimal bzImage refused: %s", e.msg);
	CHECK(mu_vm_check_kernel(k, 0x205, "K", &e) != MU_OK, "short bzImage accepted");
	CHECK(strstr(e.msg, "not a bzImage") != NULL, "message '%s'", e.msg);
	k[0x203] = 'x';
	CHECK(mu_vm_check_kernel(k, sizeof k, "K", &e) != MU_OK, "no HdrS accepted");
	CHECK(strstr(e.msg, "K is not a bzImage") != NULL, "message '%s'", e.msg);
	uint8_t elf[64 + 56];
	const uint32_t t[] = {PT_LOAD_};
	make_elf(elf, t, 1);
	CHECK(mu_vm_check_kernel(elf, sizeof elf, "vmlinux", &e) != MU_OK, "an ELF (vmlinux) accepted as bzImage");
}

static void test_cmdline(void)
{
	struct mu_error e = {0};
	char big[MU_VM_CMDLINE_MAX + 2];
	CHECK(mu_vm_check_cmdline(MU_VM_CMDLINE, strlen(MU_VM_CMDLINE), &e) == MU_OK, "default refused: %s", e.msg);
	CHECK(mu_vm_check_cmdline("", 0, &e) != MU_OK, "empty accepted");
	memset(big, 'a', sizeof big);
	CHECK(mu_vm_check_cmdline(big, MU_VM_CMDLINE_MAX, &e) == MU_OK, "1024 bytes refused");
	CHECK(mu_vm_check_cmdline(big, MU_VM_CMDLINE_MAX + 1, &e) != MU_OK, "1025 bytes accepted");
	CHECK(mu_vm_check_cmdline("a\nb", 3, &e) != MU_OK, "newline accepted");
	CHECK(mu_vm_check_cmdline("a\x7f", 2, &e) != MU_OK, "DEL accepted");
	CHECK(mu_vm_check_cmdline("caf\xc3\xa9", 5, &e) != MU_OK, "non-ASCII accepted");
}

static void config_bad(const char *cfg, size_t n, const char *needle, const char *what)
{
	struct mu_error e = {0};
	CHECK(mu_vm_check_config((const uint8_t *)cfg, n, "C.json", &e) != MU_OK, "%s accepted", what);
	CHECK(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, e.msg, needle);
	CHECK(strstr(e.msg, "secret") == NULL, "%s: message '%s' quotes the config", what, e.msg);
}

static void test_config(void)
{
	struct mu_error e = {0};
	const char *ok = "{\"model\":\"/dev/vda\",\"channel\":\"dev:/dev/virtio-ports/mu.channel\",\"egress_bytes_per_s\":100}";
	CHECK(mu_vm_check_config((const uint8_t *)ok, strlen(ok), "C.json", &e) == MU_OK, "good config: %s", e.msg);
	const char *esc = "{\"model\":\"\\/dev\\/vda\",\"channel\":\"dev:/dev/virtio-ports/mu.channel\"}";
	CHECK(mu_vm_check_config((const uint8_t *)esc, strlen(esc), "C.json", &e) == MU_OK, "escaped: %s", e.msg);

	const char *c1 = "{\"model\":\"/srv/secret.mus\",\"channel\":\"dev:/dev/virtio-ports/mu.channel\"}";
	config_bad(c1, strlen(c1), "C.json: \"model\" is wrong; in the VM set \"model\": \"/dev/vda\"", "model wrong");
	const char *c2 = "{\"channel\":\"dev:/dev/virtio-ports/mu.channel\"}";
	config_bad(c2, strlen(c2), "\"model\" is missing", "model missing");
	const char *c3 = "{\"model\":\"/dev/vda\",\"channel\":\"unix:/tmp/secret.sock\"}";
	config_bad(c3, strlen(c3), "\"channel\": \"dev:/dev/virtio-ports/mu.channel\"", "channel wrong");
	const char *c4 = "{\"model\":\"/dev/vda\"}";
	config_bad(c4, strlen(c4), "\"channel\" is missing", "channel missing");
	const char *c5 = "{\"model\":5,\"channel\":\"dev:/dev/virtio-ports/mu.channel\"}";
	config_bad(c5, strlen(c5), "\"model\" is wrong", "model not a string");
	const char c6[] = "{\"model\":\"/dev/vda\",\"channel\":\"dev:/dev/virtio-ports/mu.channel\"}\0";
	config_bad(c6, sizeof c6 - 1, "NUL byte at offset 65", "trailing NUL");
	config_bad("[1,2]", 5, "not a JSON object", "array");
	config_bad("{\"model\":", 9, "C.json", "truncated JSON");
	config_bad("", 0, "C.json", "empty");
	const char *c7 = "{\"model\":\"/dev/vda\",\"model\":\"/dev/vda\",\"channel\":\"dev:/dev/virtio-ports/mu.channel\"}";
	config_bad(c7, strlen(c7), "C.json", "duplicate key");
	char *big = malloc(MU_ENCLAVE_CONFIG_MAX + 2);
	memset(big, ' ', MU_ENCLAVE_CONFIG_MAX + 1);
	memcpy(big, ok, strlen(ok));
	config_bad(big, MU_ENCLAVE_CONFIG_MAX + 1, "more than", "oversized");
	free(big);
}

/* ---- mu vm build and the check before a boot ---- */

static void test_build(void)
{
	char dir[] = "/tmp/mu-test-vm-XXXXXX", p[256], out[128];
	struct mu_error e = {0};
	struct mu_vm_build_report r, r2;
	struct mu_vm_image img;
	size_t n;
	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp failed");
		return;
	}
	/* inputs */
	uint8_t kernel[0x1234];
	for (size_t i = 0; i < sizeof kernel; i++)
		kernel[i] = (uint8_t)(i * 7);
	memcpy(kernel + 0x202, "HdrS", 4);
	uint8_t enclave[64 + 2 * 56 + 13];
	const uint32_t t[] = {PT_LOAD_, PT_NOTE_};
	make_elf(enclave, t, 2);
	memcpy(enclave + 64 + 2 * 56, "payload bytes", 13);
	char kpath[128], epath[128], bad[128];
	snprintf(kpath, sizeof kpath, "%s/bzImage.in", dir);
	snprintf(epath, sizeof epath, "%s/enclave.in", dir);
	snprintf(bad, sizeof bad, "%s/dynamic.in", dir);
	CHECK(write_file(kpath, kernel, sizeof kernel) == 0 && write_file(epath, enclave, sizeof enclave) == 0,
	      "cannot write inputs");
	snprintf(out, sizeof out, "%s/image", dir);

	struct mu_vm_build_opts o = {.kernel = kpath, .enclave = epath, .out_dir = out, .kernel_desc = "test \"kernel\""};
	CHECK(mu_vm_build(&o, &r, &e) == MU_OK, "build: %s", e.msg);
	CHECK_EQ_INT(r.kernel_len, sizeof kernel);
	CHECK_EQ_INT(r.enclave_len, sizeof enclave);
	CHECK_EQ_INT(r.initramfs_len, mu_vm_cpio_size(sizeof enclave));
	CHECK(!strcmp(r.cmdline, MU_VM_CMDLINE), "cmdline %s", r.cmdline);

	/* the files */
	snprintf(p, sizeof p, "%s/bzImage", out);
	uint8_t *b = read_file(p, &n);
	CHECK(b && n == sizeof kernel && !memcmp(b, kernel, n), "bzImage is not a copy");
	free(b);
	snprintf(p, sizeof p, "%s/initramfs.cpio", out);
	b = read_file(p, &n);
	uint8_t *cpio = malloc(mu_vm_cpio_size(sizeof enclave));
	mu_vm_cpio_write(cpio, enclave, sizeof enclave);
	CHECK(b && n == r.initramfs_len && !memcmp(b, cpio, n), "initramfs.cpio differs from the writer's");
	uint8_t sha[32];
	mu_sha256(cpio, r.initramfs_len, sha);
	CHECK(!memcmp(sha, r.initramfs_sha, 32), "initramfs sha");
	free(cpio);
	free(b);
	snprintf(p, sizeof p, "%s/cmdline", out);
	b = read_file(p, &n);
	CHECK(b && n == strlen(MU_VM_CMDLINE) && !memcmp(b, MU_VM_CMDLINE, n), "cmdline file");
	free(b);
	snprintf(p, sizeof p, "%s/image.json", out);
	uint8_t *json = read_file(p, &n);
	CHECK(json != NULL, "no image.json");
	if (json) {
		struct json_limits lim = JSON_LIMITS_TOOL;
		size_t ml;
		struct json_doc doc;
		json_mem_size(&lim, n, &ml, &e);
		void *mem = malloc(ml);
		CHECK(json_parse(&doc, json, n, &lim, mem, ml, &e) == MU_OK, "image.json: %s", e.msg);
		char hex[65];
		mu_hex(r.measurement, 32, hex);
		uint32_t m = json_obj_get(&doc, 0, "measurement");
		CHECK(json_str_eq(&doc, m, hex), "image.json measurement");
		uint32_t k = json_obj_get(&doc, 0, "kernel");
		CHECK(json_str_eq(&doc, json_obj_get(&doc, k, "desc"), "test \"kernel\""), "desc");
		CHECK(json_str_eq(&doc, json_obj_get(&doc, k, "file"), "bzImage"), "kernel file");
		CHECK(json_str_eq(&doc, json_obj_get(&doc, 0, "format"), "mu-vm-image-1"), "format");
		CHECK(json_str_eq(&doc, json_obj_get(&doc, 0, "cmdline"), MU_VM_CMDLINE), "cmdline member");
		free(mem);
	}

	/* the check before a boot */
	CHECK(mu_vm_image_load(out, &img, &e) == MU_OK, "load: %s", e.msg);
	CHECK(!memcmp(img.measurement, r.measurement, 32), "load measurement");
	CHECK(img.cmdline_len == strlen(MU_VM_CMDLINE) && !strcmp(img.cmdline, MU_VM_CMDLINE), "load cmdline");

	/* a rebuild is byte-identical */
	CHECK(mu_vm_build(&o, &r2, &e) == MU_OK, "rebuild: %s", e.msg);
	CHECK(!memcmp(&r, &r2, sizeof r), "rebuild report differs");
	size_t n2;
	uint8_t *json2 = read_file(p, &n2);
	CHECK(json && json2 && n == n2 && !memcmp(json, json2, n), "image.json differs after a rebuild");
	free(json);
	free(json2);

	/* a changed image */
	snprintf(p, sizeof p, "%s/cmdline", out);
	const char *other = MU_VM_CMDLINE " init=/bin/sh";
	write_file(p, other, strlen(other));
	CHECK(mu_vm_image_load(out, &img, &e) == MU_ERR_AUTH, "changed cmdline accepted");
	CHECK(strstr(e.msg, "changed since mu vm build") != NULL, "message '%s'", e.msg);
	write_file(p, MU_VM_CMDLINE, strlen(MU_VM_CMDLINE));
	CHECK(mu_vm_image_load(out, &img, &e) == MU_OK, "restored: %s", e.msg);
	snprintf(p, sizeof p, "%s/initramfs.cpio", out);
	b = read_file(p, &n);
	b[n - 200] ^= 1;
	write_file(p, b, n);
	free(b);
	CHECK(mu_vm_image_load(out, &img, &e) == MU_ERR_AUTH, "changed initramfs accepted");

	/* refused inputs write nothing */
	char out2[128];
	snprintf(out2, sizeof out2, "%s/image2", dir);
	const uint32_t ti[] = {PT_INTERP_, PT_LOAD_};
	make_elf(enclave, ti, 2);
	write_file(bad, enclave, sizeof enclave);
	struct mu_vm_build_opts o2 = {.kernel = kpath, .enclave = bad, .out_dir = out2};
	CHECK(mu_vm_build(&o2, &r2, &e) != MU_OK, "dynamic enclave built");
	CHECK(strstr(e.msg, "is not static: it has a program interpreter") != NULL, "message '%s'", e.msg);
	struct stat st;
	CHECK(stat(out2, &st) != 0, "a refused build created its directory");
	o2.enclave = epath;
	o2.cmdline = "bad\tcmdline";
	CHECK(mu_vm_build(&o2, &r2, &e) != MU_OK, "control byte in cmdline accepted");
	o2.cmdline = NULL;
	o2.kernel = epath;
	CHECK(mu_vm_build(&o2, &r2, &e) != MU_OK, "ELF as kernel accepted");
	CHECK(strstr(e.msg, "not a bzImage") != NULL, "message '%s'", e.msg);
	o2.kernel = "/nonexistent/bzImage";
	CHECK(mu_vm_build(&o2, &r2, &e) == MU_ERR_IO, "missing kernel");
	CHECK(stat(out2, &st) != 0, "a refused build created its directory");
	CHECK(mu_vm_image_load(out2, &img, &e) != MU_OK, "missing image loaded");
	CHECK(strstr(e.msg, "mu vm build --out") != NULL, "message '%s'", e.msg);

	/* clean up */
	const char *files[] = {"bzImage", "initramfs.cpio", "cmdline", "image.json"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s/%s", out, files[i]);
		unlink(p);
	}
	rmdir(out);
	unlink(kpath);
	unlink(epath);
	unlink(bad);
	CHECK(rmdir(dir) == 0, "temporary directory not empty (stray temp files?)");
}

/* ---- the run's pieces ---- */

static void test_memory(void)
{
	CHECK_EQ_INT(mu_vm_default_memory(0), 512);
	CHECK_EQ_INT(mu_vm_default_memory(1), 512);
	CHECK_EQ_INT(mu_vm_default_memory((uint64_t)300 << 20), 256 + 375);
	CHECK_EQ_INT(mu_vm_default_memory((uint64_t)1 << 30), 256 + 1280);
	CHECK_EQ_INT(mu_vm_default_memory(((uint64_t)1 << 30) + 1), 256 + 1281);
	CHECK_EQ_INT(mu_vm_default_memory(UINT64_MAX), 0);
	CHECK_EQ_INT(mu_vm_default_memory((uint64_t)1 << 40), 0);
}

static void test_argv(void)
{
	static const char *const want[] = {
		"qemu", "-nodefaults", "-no-user-config", "-display", "none", "-machine", "q35", "-accel",
		"tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "640", "-no-reboot", "-kernel", "/img/bzImage",
		"-initrd", "/img/initramfs.cpio", "-append", MU_VM_CMDLINE, "-sandbox",
		"on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny", "-chardev",
		"stdio,id=con,signal=off", "-serial", "chardev:con", "-drive",
		"file=./m,,odel.mus,format=raw,if=none,id=model,readonly=on", "-device",
		"virtio-blk-pci,drive=model,addr=0x4", "-drive",
		"file=/tmp/x/config.img,format=raw,if=none,id=config,readonly=on", "-device",
		"virtio-blk-pci,drive=config,addr=0x5", "-device", "virtio-serial-pci,addr=0x3", "-chardev",
		"socket,id=chan,path=./nbd:sock,server=on,wait=off", "-device",
		"virtserialport,chardev=chan,name=mu.channel,nr=1",
	};
	struct mu_vm_argv *a = malloc(sizeof *a);
	struct mu_error e = {0};
	struct mu_vm_launch l = {.qemu = "qemu", .accel = MU_VM_ACCEL_TCG, .cpus = 2, .memory_mib = 640,
				 .kernel = "/img/bzImage", .initramfs = "/img/initramfs.cpio", .cmdline = MU_VM_CMDLINE,
				 .model = "m,odel.mus", .config_img = "/tmp/x/config.img", .socket = "nbd:sock"};
	CHECK(mu_vm_qemu_argv(&l, a, &e) == MU_OK, "argv: %s", e.msg);
	CHECK_EQ_INT(a->n, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < a->n && i < sizeof want / sizeof want[0]; i++)
		CHECK(!strcmp(a->v[i], want[i]), "argv[%zu] = '%s', want '%s'", i, a->v[i], want[i]);
	CHECK(a->v[a->n] == NULL, "argv not NULL-terminated");
	for (size_t i = 0; i < a->n; i++)
		CHECK(!strstr(a->v[i], "-net") && !strstr(a->v[i], "-nic") && !strstr(a->v[i], "netdev"),
		      "a network option: %s", a->v[i]);

	l.accel = MU_VM_ACCEL_KVM;
	CHECK(mu_vm_qemu_argv(&l, a, &e) == MU_OK, "kvm argv: %s", e.msg);
	CHECK(!strcmp(a->v[8], "kvm") && !strcmp(a->v[10], "host"), "kvm: %s %s", a->v[8], a->v[10]);

	l.model = NULL; /* the probe */
	l.cmdline = MU_VM_PROBE_CMDLINE;
	CHECK(mu_vm_qemu_argv(&l, a, &e) == MU_OK, "probe argv: %s", e.msg);
	CHECK_EQ_INT(a->n, 28);
	for (size_t i = 0; i < a->n; i++)
		CHECK(strcmp(a->v[i], "-drive") && strcmp(a->v[i], "-device"), "probe has %s", a->v[i]);
	CHECK(!strcmp(a->v[21], MU_VM_PROBE_CMDLINE), "probe cmdline %s", a->v[21]);

	l.accel = MU_VM_ACCEL_AUTO;
	CHECK(mu_vm_qemu_argv(&l, a, &e) != MU_OK, "auto reached the command line");
	free(a);
}

int main(void)
{
	test_cpio();
	test_measure();
	test_elf();
	test_kernel();
	test_cmdline();
	test_config();
	test_build();
	test_memory();
	test_argv();
	return test_done();
}
