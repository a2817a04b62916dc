/* mu-enclave — the only program that ever sees plaintext weights (docs/enclave.md).
 *
 *   mu-enclave --config FILE [--protocol v0] [--measure [--model FILE]] [--help]
 *   mu-enclave --sandbox-filter [--accept]              (the seccomp filter, for mu surface)
 *
 *   mu-enclave --config FILE --measure --model M.mus   (measure a VM config on the host)
 *
 * As the VM's PID 1 (guest.h) it first mounts and checks the guest, and powers it off at the end.
 *
 * Startup: the config (its exact bytes are measured), the SHA-256 of this binary, the sealed
 * model's header, the measurement; then the early hardening (not dumpable, no core), the
 * channel, and one line on stderr with the address and the measurement. Then it serves
 * connections, one at a time, until killed. The model is unsealed at the first successful
 * unlock, after which the seccomp sandbox is entered for good.
 */
#include <stdio.h>
#include <string.h>

#include "enclave/enclave.h"
#include "enclave/guest.h"
#include "enclave/sandbox.h"
#include "engine/kernels.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: mu-enclave --config FILE [--protocol v0] [--measure [--model FILE]]\n"
		   "       mu-enclave --sandbox-filter [--accept]\n\n"
		   "Serves wire protocol v1 (docs/protocol.md) on the channel named in the config:\n"
		   "attestation with the key broker through the proxy, then text generation.\n"
		   "  --config FILE     the enclave config (a JSON object; its bytes are measured)\n"
		   "  --measure         print \"measurement HEX\" and \"key_id HEX\" (what a key-release\n"
		   "                    policy lists for this binary, config and sealed model) and exit\n"
		   "  --model FILE      with --measure: the sealed model to measure instead of the config's\n"
		   "                    \"model\" (a VM config names the disk /dev/vda)\n"
		   "  --protocol v0     the seed prototype's protocol: INSECURE, for migration only\n"
		   "  --sandbox-filter [--accept]\n"
		   "                    print the seccomp filter this binary installs (process mode with\n"
		   "                    --accept, else the VM's) for `mu surface`, and exit\n"
		   "See docs/enclave.md for the config members.\n");
}

static int enclave_main(int argc, char **argv)
{
	const char *config = NULL, *protocol = NULL, *model = NULL;
	int measure = 0;
	struct mu_enclave e;
	struct mu_error err = {0};
	char hex[65];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--sandbox-filter")) {
			/* alone, or with --accept (process mode): print and exit, nothing else runs */
			int accept = i + 1 < argc && !strcmp(argv[i + 1], "--accept");
			if (argc != 2 + accept) {
				fprintf(stderr, "mu-enclave: --sandbox-filter takes only --accept\n");
				return 2;
			}
			if (mu_sandbox_dump(stdout, accept, &err) != MU_OK) {
				fprintf(stderr, "mu-enclave: %s\n", err.msg);
				return 1;
			}
			return 0;
		}
		if (!strcmp(a, "--measure")) {
			measure = 1;
		} else if (!strcmp(a, "--config") && i + 1 < argc) {
			config = argv[++i];
		} else if (!strcmp(a, "--model") && i + 1 < argc) {
			model = argv[++i];
		} else if (!strcmp(a, "--protocol") && i + 1 < argc) {
			protocol = argv[++i];
		} else {
			fprintf(stderr, "mu-enclave: unexpected argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!config) {
		fprintf(stderr, "mu-enclave: --config FILE is required\n");
		usage(stderr);
		return 2;
	}
	if (model && !measure) {
		fprintf(stderr, "mu-enclave: --model is only for --measure (the config names the model)\n");
		return 2;
	}
	if (protocol && strcmp(protocol, "v0") != 0 && strcmp(protocol, "v1") != 0) {
		fprintf(stderr, "mu-enclave: --protocol must be v0 (or v1, the default)\n");
		return 2;
	}
	int v0 = protocol && !strcmp(protocol, "v0");
	/* The kernel path (MU_KERNELS or the best this CPU has): every path gives the same bits,
	 * so the choice is not part of the measurement. */
	if (mu_kernels_init(NULL, &err) != MU_OK) {
		fprintf(stderr, "mu-enclave: MU_KERNELS: %s\n", err.msg);
		return 2;
	}

	if (mu_enclave_init(&e, config, model, v0, &err) != MU_OK) {
		fprintf(stderr, "mu-enclave: %s\n", err.msg);
		mu_enclave_free(&e);
		return 1;
	}
	if (measure) {
		mu_hex(e.measurement, sizeof e.measurement, hex);
		printf("measurement %s\n", hex);
		mu_hex(e.key_id, sizeof e.key_id, hex);
		printf("key_id %s\n", hex);
		mu_enclave_free(&e);
		return 0;
	}
	if (mu_sandbox_harden_early(&err) != MU_OK) {
		fprintf(stderr, "mu-enclave: hardening failed: %s\n", err.msg);
		mu_enclave_free(&e);
		return 1;
	}
	if (mu_enclave_start(&e, &err) != MU_OK) {
		fprintf(stderr, "mu-enclave: %s\n", err.msg);
		mu_enclave_free(&e);
		return 1;
	}
	if (v0)
		fprintf(stderr, "mu-enclave: WARNING: INSECURE protocol v0: self-reported measurement, replayable "
				"pre-shared-key unlock, no streaming. For migration only.\n");
#ifdef MU_ENCLAVE_TEST
	fprintf(stderr, "mu-enclave: TEST BUILD: scripted misbehaviour (@flood, @emit, @slow) is enabled\n");
	if (e.cfg.no_egress_limit)
		fprintf(stderr, "mu-enclave: TEST BUILD: the enclave's own egress limiter is OFF\n");
#endif
	mu_hex(e.measurement, sizeof e.measurement, hex);
	fprintf(stderr, "mu-enclave: listening on %s (measurement %s)\n", e.ch.addr, hex);
	int rc = mu_enclave_serve(&e);
	mu_enclave_free(&e);
	return rc;
}

/* As the enclave VM's /init (docs/vm.md), the same program runs inside mu_guest_main, which
 * mounts and checks the guest first and powers the VM off at the end. */
int main(int argc, char **argv)
{
	if (mu_guest_is_init(argc, argv))
		mu_guest_main(argc, argv, enclave_main);
	return enclave_main(argc, argv);
}
