/* cmd_vm.c — `mu vm build` and `mu vm run`: the enclave VM image and its boot under QEMU
 * (host/vm.h, docs/vm.md). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/limits.h"
#include "host/cli.h"
#include "host/vm.h"

static void vm_usage(FILE *f)
{
	fprintf(f, "usage: mu vm build --kernel BZIMAGE --enclave BIN --out DIR [options]\n"
		   "       mu vm run --image DIR --model M.mus --config C.json --channel unix:PATH [options]\n\n"
		   "build  makes the enclave VM image: the kernel, an initramfs whose only program is /init =\n"
		   "       the static mu-enclave, and the kernel command line, with their measurement.\n"
		   "run    boots that image under QEMU with the sealed model and the config as read-only\n"
		   "       disks and a virtio-serial port as the VM's only channel (no network device).\n\n"
		   "'mu vm build --help' and 'mu vm run --help' describe the options.\n");
}

static void build_usage(FILE *f)
{
	fprintf(f,
		"usage: mu vm build --kernel BZIMAGE --enclave BIN --out DIR [--kernel-desc TEXT] [--cmdline STR]\n\n"
		"Writes the enclave VM image into DIR (created when missing): bzImage (the kernel, copied),\n"
		"initramfs.cpio (a deterministic newc archive whose only program is /init = BIN), cmdline\n"
		"and image.json, each through a temporary file and rename. Prints the parts and the line\n"
		"  image measurement HEX\n"
		"= SHA-256(\"mu-vm-image-1\" NUL, SHA-256(kernel), SHA-256(initramfs), be64 len, cmdline).\n"
		"  --kernel BZIMAGE    a bzImage (scripts/build-kernel.sh), at most %zu MiB\n"
		"  --enclave BIN       the static mu-enclave (make static-enclave: build/musl/mu-enclave),\n"
		"                      an x86-64 ELF executable without a program interpreter, at most %zu MiB\n"
		"  --out DIR           the image directory\n"
		"  --kernel-desc TEXT  what the kernel is, for image.json (default \"given kernel\")\n"
		"  --cmdline STR       the kernel command line, printable ASCII, at most %u bytes\n"
		"                      (default \"%s\")\n",
		MU_VM_KERNEL_MAX >> 20, MU_VM_ENCLAVE_MAX >> 20, MU_VM_CMDLINE_MAX, MU_VM_CMDLINE);
}

static void run_usage(FILE *f)
{
	fprintf(f,
		"usage: mu vm run --image DIR --model M.mus --config C.json --channel unix:PATH [options]\n\n"
		"Checks that the image in DIR is what mu vm build wrote, then boots it under QEMU:\n"
		"the sealed model is the VM's first disk (/dev/vda, read-only), the config its second\n"
		"(/dev/vdb), and the virtio-serial port named mu.channel its only channel, whose host end is\n"
		"the Unix socket PATH (mu proxy --enclave unix:PATH). The config must therefore say\n"
		"  \"model\": \"%s\", \"channel\": \"%s\"\n"
		"Prints 'vm: enclave ready in X s' and the enclave's measurement once it listens, then\n"
		"runs until QEMU exits or SIGINT/SIGTERM arrives (QEMU is then stopped; exit 0).\n"
		"  --image DIR          the image (mu vm build --out DIR)\n"
		"  --model M.mus        the sealed model\n"
		"  --config C.json      the enclave config (at most %u bytes; its bytes are measured)\n"
		"  --channel unix:PATH  the socket QEMU listens on (a stale socket is replaced)\n"
		"  --accel A            auto (default: a probe boot under KVM, else TCG), kvm or tcg\n"
		"  --memory MIB         guest memory, %u..%u (default max(512, 256 + 1.25 x model MiB))\n"
		"  --cpus N             virtual CPUs, 1..%u (default 2)\n"
		"  --console FILE       write the guest console to FILE (default: stderr, 'guest: ')\n"
		"  --qemu PATH          the QEMU binary (default qemu-system-x86_64 from PATH)\n"
		"  --probe-timeout S    seconds the KVM probe boot may take, 1..%u (default %u)\n"
		"  --dry-run            check everything, print the QEMU command line, start nothing\n",
		MU_VM_GUEST_MODEL, MU_VM_GUEST_CHANNEL, MU_ENCLAVE_CONFIG_MAX, MU_VM_MEMORY_MIN_MIB, MU_VM_MEMORY_MAX_MIB,
		MU_VM_CPUS_MAX, MU_VM_PROBE_TIMEOUT_MAX_S, MU_VM_PROBE_TIMEOUT_S);
}

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

static int vm_build(int argc, char **argv)
{
	struct mu_vm_build_opts o = {0};
	for (int i = 1; i < argc; i++) {
		int r;
		if (is_help(argv[i])) {
			build_usage(stdout);
			return 0;
		}
		if ((r = cli_opt(argc, argv, &i, "--kernel", NULL, &o.kernel)) ||
		    (r = cli_opt(argc, argv, &i, "--enclave", NULL, &o.enclave)) ||
		    (r = cli_opt(argc, argv, &i, "--out", NULL, &o.out_dir)) ||
		    (r = cli_opt(argc, argv, &i, "--kernel-desc", NULL, &o.kernel_desc)) ||
		    (r = cli_opt(argc, argv, &i, "--cmdline", NULL, &o.cmdline))) {
			if (r < 0)
				goto usage_err;
			continue;
		}
		fprintf(stderr, "mu vm build: unexpected argument '%s'\n", argv[i]);
		goto usage_err;
	}
	if (!o.kernel || !o.enclave || !o.out_dir) {
		fprintf(stderr, "mu vm build: --kernel, --enclave and --out are required\n");
		goto usage_err;
	}

	struct mu_vm_build_report r;
	struct mu_error err = {0};
	if (mu_vm_build(&o, &r, &err) != MU_OK) {
		cli_error("vm build", &err);
		return 1;
	}
	char hex[2 * MU_SHA256_LEN + 1];
	printf("mu vm build: wrote %s (%s, %s, %s, %s)\n", o.out_dir, MU_VM_FILE_KERNEL, MU_VM_FILE_INITRAMFS,
	       MU_VM_FILE_CMDLINE, MU_VM_FILE_JSON);
	mu_hex(r.kernel_sha, MU_SHA256_LEN, hex);
	printf("  kernel     %10" PRIu64 " bytes  sha256 %s  %s\n", r.kernel_len, hex, r.kernel_desc);
	mu_hex(r.enclave_sha, MU_SHA256_LEN, hex);
	printf("  enclave    %10" PRIu64 " bytes  sha256 %s\n", r.enclave_len, hex);
	mu_hex(r.initramfs_sha, MU_SHA256_LEN, hex);
	printf("  initramfs  %10" PRIu64 " bytes  sha256 %s\n", r.initramfs_len, hex);
	printf("  cmdline    %s\n", r.cmdline);
	mu_hex(r.measurement, MU_SHA256_LEN, hex);
	printf("image measurement %s\n", hex);
	return 0;
usage_err:
	build_usage(stderr);
	return 2;
}

static int vm_run(int argc, char **argv)
{
	struct mu_vm_run_opts o = {0};
	const char *accel = NULL;
	for (int i = 1; i < argc; i++) {
		int r;
		if (is_help(argv[i])) {
			run_usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--dry-run")) {
			o.dry_run = 1;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--image", NULL, &o.image_dir)) ||
		    (r = cli_opt(argc, argv, &i, "--model", NULL, &o.model)) ||
		    (r = cli_opt(argc, argv, &i, "--config", NULL, &o.config)) ||
		    (r = cli_opt(argc, argv, &i, "--channel", NULL, &o.channel)) ||
		    (r = cli_opt(argc, argv, &i, "--console", NULL, &o.console)) ||
		    (r = cli_opt(argc, argv, &i, "--qemu", NULL, &o.qemu)) ||
		    (r = cli_opt(argc, argv, &i, "--accel", NULL, &accel))) {
			if (r < 0)
				goto usage_err;
			continue;
		}
		const struct cli_u32_opt u32s[] = {{"--memory", &o.memory_mib, MU_VM_MEMORY_MIN_MIB, MU_VM_MEMORY_MAX_MIB},
			    {"--cpus", &o.cpus, 1, MU_VM_CPUS_MAX},
			    {"--probe-timeout", &o.probe_timeout_s, 1, MU_VM_PROBE_TIMEOUT_MAX_S}};
		if ((r = cli_opt_u32s(argc, argv, &i, u32s, sizeof u32s / sizeof u32s[0])) < 0)
			goto usage_err;
		if (r)
			continue;
		fprintf(stderr, "mu vm run: unexpected argument '%s'\n", argv[i]);
		goto usage_err;
	}
	if (!o.image_dir || !o.model || !o.config || !o.channel) {
		fprintf(stderr, "mu vm run: --image, --model, --config and --channel are required\n");
		goto usage_err;
	}
	if (!accel || !strcmp(accel, "auto")) {
		o.accel = MU_VM_ACCEL_AUTO;
	} else if (!strcmp(accel, "kvm")) {
		o.accel = MU_VM_ACCEL_KVM;
	} else if (!strcmp(accel, "tcg")) {
		o.accel = MU_VM_ACCEL_TCG;
	} else {
		fprintf(stderr, "mu vm run: --accel must be auto, kvm or tcg\n");
		goto usage_err;
	}
	if (o.qemu && !*o.qemu) {
		fprintf(stderr, "mu vm run: --qemu: empty path\n");
		goto usage_err;
	}
	if (o.console && !*o.console) {
		fprintf(stderr, "mu vm run: --console: empty path\n");
		goto usage_err;
	}

	struct mu_error err = {0};
	if (mu_vm_run(&o, &err) != MU_OK) {
		cli_error("vm run", &err);
		return 1;
	}
	return 0;
usage_err:
	run_usage(stderr);
	return 2;
}

int cmd_vm(int argc, char **argv)
{
	if (argc < 2) {
		vm_usage(stderr);
		return 2;
	}
	if (is_help(argv[1]) || !strcmp(argv[1], "help")) {
		vm_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "build"))
		return vm_build(argc - 1, argv + 1);
	if (!strcmp(argv[1], "run"))
		return vm_run(argc - 1, argv + 1);
	fprintf(stderr, "mu vm: unknown subcommand '%s' (build or run)\n", argv[1]);
	vm_usage(stderr);
	return 2;
}
