/* vm.h — the host side of the enclave VM: `mu vm build` makes the image, `mu vm run` boots it
 * under QEMU (docs/vm.md).
 *
 * The image is a directory of four files, written by mu_vm_build and checked by
 * mu_vm_image_load:
 *
 *   bzImage          the kernel, copied byte for byte
 *   initramfs.cpio   an uncompressed "newc" cpio archive whose only program is /init, the static
 *                    mu-enclave (layout below)
 *   cmdline          the kernel command line, exactly, no newline (MU_VM_CMDLINE by default)
 *   image.json       {"format":"mu-vm-image-1","kernel":{...},"initramfs":{...},"enclave":{...},
 *                    "cmdline":"...","measurement":"HEX"}
 *
 * The initramfs, byte for byte deterministic for a given enclave binary:
 *
 *   entry          mode     ino  nlink  rdev   data
 *   dev            040755   1    2      0:0    -
 *   dev/console    020600   2    1      5:1    -        the kernel opens it as init's stdio
 *   init           0100555  3    1      0:0    the enclave binary
 *   proc           040555   4    2      0:0    -
 *   sys            040555   5    2      0:0    -
 *   TRAILER!!!     0        0    1      0:0    -
 *
 * Each entry is a 110-byte header, "070701" and 13 fields of 8 upper-case hex digits (ino, mode,
 * uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize with the
 * NUL, check), then the name and its NUL, zero-padded so header + name is a multiple of 4, then
 * the data, zero-padded to a multiple of 4. uid, gid, mtime, dev and check are all 0.
 *
 * The image measurement names exactly what the VM boots:
 *
 *   measurement = SHA-256( "mu-vm-image-1" || 0x00
 *                          || SHA-256(bzImage)           32 bytes
 *                          || SHA-256(initramfs.cpio)    32 bytes
 *                          || be64(len(cmdline))          8 bytes
 *                          || cmdline )
 *
 * The label with its NUL separates this hash from every other SHA-256 the project computes, the
 * two file hashes have fixed sizes, and the command line comes last with its length in front, so
 * no two different (kernel, initramfs, cmdline) triples give the same input to the outer hash.
 * The enclave binary is inside the initramfs, so it is covered too. This is a host-side
 * identity of the image (what mu vm build wrote, and that nobody changed it since); what the
 * key broker trusts is the enclave's own measurement, printed by the enclave when it listens.
 *
 * Inside the VM the enclave finds everything at fixed places, so its config must say
 *   "model": "/dev/vda"            the sealed model, first virtio disk, read-only
 *   "channel": "dev:/dev/virtio-ports/mu.channel"
 *                                  the virtio-serial port named mu.channel, the VM's only way
 *                                  out (the enclave, as PID 1, links it there by its name)
 * and it reads the config itself from /dev/vdb (second virtio disk: the config bytes, then
 * zeros up to a whole number of 512-byte sectors, which it strips).
 */
#ifndef MU_HOST_VM_H
#define MU_HOST_VM_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "seal/crypto.h"

#define MU_VM_FORMAT "mu-vm-image-1"
/* secretmem.enable=1: memfd_secret (the enclave's key memory) is off by default in Linux 6.1. */
#define MU_VM_CMDLINE "console=ttyS0 panic=-1 quiet secretmem.enable=1 -- --vm-guest --config /dev/vdb"
/* The probe boot of `--accel auto`: the enclave prints its usage and powers the VM off. */
#define MU_VM_PROBE_CMDLINE "console=ttyS0 panic=-1 quiet -- --vm-guest --help"
#define MU_VM_CMDLINE_MAX 1024u
#define MU_VM_KERNEL_MAX ((size_t)256 << 20)
#define MU_VM_ENCLAVE_MAX ((size_t)64 << 20)
#define MU_VM_DESC_MAX 256u
#define MU_VM_CONFIG_SECTOR 512u
#define MU_VM_GUEST_MODEL "/dev/vda"
#define MU_VM_GUEST_CHANNEL "dev:/dev/virtio-ports/mu.channel"

/* File names inside an image directory. */
#define MU_VM_FILE_KERNEL "bzImage"
#define MU_VM_FILE_INITRAMFS "initramfs.cpio"
#define MU_VM_FILE_CMDLINE "cmdline"
#define MU_VM_FILE_JSON "image.json"

/* ---- checks of the inputs (each names `name` in its message) ---- */

/* A bzImage: at least 0x206 bytes with the boot protocol's "HdrS" at offset 0x202. */
enum mu_err mu_vm_check_kernel(const uint8_t *p, size_t n, const char *name, struct mu_error *err);
/* A static x86-64 executable: ELF64, little-endian, ET_EXEC, e_machine 62 (EM_X86_64), a
 * program header table inside the file, at least one PT_LOAD and no PT_INTERP. */
enum mu_err mu_vm_check_enclave(const uint8_t *p, size_t n, const char *name, struct mu_error *err);
/* 1..MU_VM_CMDLINE_MAX bytes of printable ASCII (0x20..0x7e). */
enum mu_err mu_vm_check_cmdline(const char *s, size_t n, struct mu_error *err);
/* An enclave config for the VM: at most MU_ENCLAVE_CONFIG_MAX bytes, no NUL byte, one strict
 * JSON object whose "model" is MU_VM_GUEST_MODEL and "channel" MU_VM_GUEST_CHANNEL. The
 * message names the member and says what to set; it never quotes the config. */
enum mu_err mu_vm_check_config(const uint8_t *p, size_t n, const char *name, struct mu_error *err);

/* ---- the initramfs ---- */

/* Bytes of the archive for an /init of init_len bytes (init_len <= MU_VM_ENCLAVE_MAX). */
size_t mu_vm_cpio_size(size_t init_len);
/* Writes the archive to out[0..mu_vm_cpio_size(init_len)). */
void mu_vm_cpio_write(uint8_t *out, const uint8_t *init, size_t init_len);

/* ---- the measurement (formula above) ---- */

void mu_vm_measure(const uint8_t kernel_sha[static MU_SHA256_LEN], const uint8_t initramfs_sha[static MU_SHA256_LEN],
		   const char *cmdline, size_t cmdline_len, uint8_t out[static MU_SHA256_LEN]);

/* ---- mu vm build ---- */

struct mu_vm_build_opts {
	const char *kernel;      /* bzImage path */
	const char *enclave;     /* static mu-enclave path */
	const char *out_dir;     /* created (0755) when missing */
	const char *kernel_desc; /* NULL: "given kernel" */
	const char *cmdline;     /* NULL: MU_VM_CMDLINE */
};

struct mu_vm_build_report {
	uint64_t kernel_len, enclave_len, initramfs_len;
	uint8_t kernel_sha[MU_SHA256_LEN], enclave_sha[MU_SHA256_LEN], initramfs_sha[MU_SHA256_LEN];
	uint8_t measurement[MU_SHA256_LEN];
	char kernel_desc[MU_VM_DESC_MAX + 1];
	char cmdline[MU_VM_CMDLINE_MAX + 1];
};

/* Checks the inputs, then writes bzImage, initramfs.cpio, cmdline and image.json (in that
 * order, image.json last) into out_dir, each through a temporary file, fsync and rename. A
 * build that stops half way leaves an image.json that does not match, which mu vm run refuses. */
enum mu_err mu_vm_build(const struct mu_vm_build_opts *o, struct mu_vm_build_report *r, struct mu_error *err);

/* ---- mu vm run ---- */

#define MU_VM_PATH_MAX 4096u

struct mu_vm_image {
	char kernel[MU_VM_PATH_MAX];    /* DIR/bzImage */
	char initramfs[MU_VM_PATH_MAX]; /* DIR/initramfs.cpio */
	char cmdline[MU_VM_CMDLINE_MAX + 1];
	size_t cmdline_len;
	uint8_t measurement[MU_SHA256_LEN];
};

/* Reads the image in dir, recomputes its measurement and compares it with image.json's;
 * a difference fails with MU_ERR_AUTH ("the image in DIR changed since mu vm build"). */
enum mu_err mu_vm_image_load(const char *dir, struct mu_vm_image *img, struct mu_error *err);

enum mu_vm_accel { MU_VM_ACCEL_AUTO = 0, MU_VM_ACCEL_KVM, MU_VM_ACCEL_TCG };

/* The QEMU command line of a boot. model NULL makes the probe boot: no disks, no
 * virtio-serial device, just the console. */
struct mu_vm_launch {
	const char *qemu;        /* argv[0] */
	enum mu_vm_accel accel;  /* KVM or TCG */
	uint32_t cpus, memory_mib;
	const char *kernel, *initramfs, *cmdline;
	const char *model;       /* host path of the sealed model, or NULL */
	const char *config_img;  /* host path of the padded config */
	const char *socket;      /* host path of the channel's Unix socket */
};

/* argv storage: pointers into buf, NULL-terminated. */
#define MU_VM_ARGV_MAX 64u
struct mu_vm_argv {
	char *v[MU_VM_ARGV_MAX + 1];
	size_t n;
	char buf[8 * MU_VM_PATH_MAX + 4096];
	size_t used;
};
enum mu_err mu_vm_qemu_argv(const struct mu_vm_launch *l, struct mu_vm_argv *a, struct mu_error *err);

/* Default guest memory for a model of model_bytes: max(512, 256 + ceil(1.25 * model / MiB))
 * MiB, or 0 when that exceeds MU_VM_MEMORY_MAX_MIB. */
#define MU_VM_MEMORY_MIN_MIB 128u
#define MU_VM_MEMORY_MAX_MIB (1u << 20)
#define MU_VM_CPUS_MAX 64u
#define MU_VM_PROBE_TIMEOUT_S 20u
#define MU_VM_PROBE_TIMEOUT_MAX_S 600u
#define MU_VM_STOP_GRACE_MS 5000u
uint32_t mu_vm_default_memory(uint64_t model_bytes);

struct mu_vm_run_opts {
	const char *image_dir;
	const char *model;   /* host path of the sealed model */
	const char *config;  /* host path of the enclave config */
	const char *channel; /* unix:PATH */
	const char *console; /* NULL: guest lines go to stderr prefixed "guest: " */
	const char *qemu;    /* NULL: qemu-system-x86_64 from PATH */
	enum mu_vm_accel accel;
	uint32_t memory_mib; /* 0: mu_vm_default_memory */
	uint32_t cpus;       /* 0: 2 */
	uint32_t probe_timeout_s;
	int dry_run;
};

/* Boots the image and stays until QEMU exits or SIGINT/SIGTERM/SIGHUP arrives (then QEMU gets
 * SIGTERM, and SIGKILL after MU_VM_STOP_GRACE_MS). Prints "vm: ..." lines on stdout. MU_OK when
 * stopped by a signal (or for --dry-run); an error when QEMU could not start, exited before the
 * enclave was ready, or exited by itself afterwards. QEMU never outlives the call. */
enum mu_err mu_vm_run(const struct mu_vm_run_opts *o, struct mu_error *err);

#endif
