/* cmd_kbs.c — `mu kbs`: the key broker. Loads the policy (or refuses to start), the model
 * keys into locked, non-dumpable memory, and serves until SIGTERM/SIGINT. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "base/limits.h"
#include "host/cli.h"
#include "host/kbs.h"
#include "pal/pal.h"
#include "seal/crypto.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mu kbs --policy POLICY.json --key KEYFILE [--key KEYFILE ...]\n"
		"              --listen tcp:HOST:PORT|unix:PATH [--audit FILE]\n"
		"              [--read-timeout-ms N] [--max-conns N]\n\n"
		"The key broker: releases a model key, wrapped to the enclave's ephemeral X25519 key,\n"
		"only for fresh evidence that the policy accepts (see docs/key-release.md).\n"
		"  --policy FILE         the release policy (JSON); without a valid one the broker does\n"
		"                        not start\n"
		"  --key FILE            a raw 32-byte model key, as mu keygen writes it (repeatable)\n"
		"  --listen ADDR         tcp:127.0.0.1:7000 (port 0 picks a free port) or unix:/path.sock;\n"
		"                        the address is printed as 'mu kbs: listening on ADDR'\n"
		"  --audit FILE          append one JSON line per decision, fsync'd before the reply\n"
		"  --read-timeout-ms N   time a client has for each frame (default %u)\n"
		"  --max-conns N         connections served at once (default %u)\n",
		MU_KBS_READ_TIMEOUT_MS, MU_KBS_MAX_CONNS);
}

int cmd_kbs(int argc, char **argv)
{
	const char *policy_path = NULL, *val;
	const char **keys = calloc((size_t)argc, sizeof *keys);
	size_t n_keys = 0;
	struct mu_kbs_server_opts o = {.read_timeout_ms = MU_KBS_READ_TIMEOUT_MS, .max_conns = MU_KBS_MAX_CONNS};
	if (!keys) {
		fprintf(stderr, "mu kbs: out of memory\n");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			free(keys);
			return 0;
		}
		if ((r = cli_opt(argc, argv, &i, "--policy", NULL, &policy_path)) ||
		    (r = cli_opt(argc, argv, &i, "--listen", NULL, &o.listen)) ||
		    (r = cli_opt(argc, argv, &i, "--audit", NULL, &o.audit_path))) {
			if (r < 0)
				goto usage_err;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--key", NULL, &val))) {
			if (r < 0)
				goto usage_err;
			keys[n_keys++] = val;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--read-timeout-ms", NULL, &val))) {
			if (r < 0 || cli_u32("--read-timeout-ms", val, 1, 3600000, &o.read_timeout_ms))
				goto usage_err;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--max-conns", NULL, &val))) {
			if (r < 0 || cli_u32("--max-conns", val, 1, 4096, &o.max_conns))
				goto usage_err;
			continue;
		}
		fprintf(stderr, "mu kbs: unexpected argument '%s'\n", argv[i]);
		goto usage_err;
	}
	if (!policy_path || !o.listen || n_keys == 0) {
		fprintf(stderr, "mu kbs: --policy, --listen and at least one --key are required\n");
		goto usage_err;
	}

	/* no core dumps of a process that holds model keys */
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	struct mu_error err = {0};
	struct mu_policy *policy = calloc(1, sizeof *policy);
	if (!policy) {
		fprintf(stderr, "mu kbs: out of memory\n");
		free(keys);
		return 1;
	}
	if (mu_kbs_load_policy(policy, policy_path, &err) != MU_OK) {
		fprintf(stderr, "mu kbs: %s\nmu kbs: refusing to start without a valid policy\n", err.msg);
		free(policy);
		free(keys);
		return 1;
	}

	int code = 1;
	size_t mem_len = 0;
	struct mu_kbs *k = NULL;
	struct pal_secret mem = {0};
	if (mu_kbs_mem_size(&mem_len, &err) != MU_OK) {
		cli_error("kbs", &err);
		goto out;
	}
	/* the model keys live in secret memory: locked, never in a core dump */
	if (pal_secret_alloc(&mem, mem_len, 0, &err) != MU_OK) {
		fprintf(stderr, "mu kbs: warning: %s\n", err.msg);
		if (pal_secret_alloc(&mem, mem_len, PAL_SECRET_ALLOW_UNLOCKED, &err) != MU_OK) {
			cli_error("kbs", &err);
			goto out;
		}
	}
	fprintf(stderr, "mu kbs: key memory: %s\n", pal_secret_prot_name(mem.prot));
	if (mu_kbs_init(&k, mem.data, mem.len, &err) != MU_OK) {
		cli_error("kbs", &err);
		goto out;
	}
	mu_kbs_set_policy(k, policy);
	for (size_t i = 0; i < n_keys; i++) {
		uint8_t id[MU_KBS_KEY_ID_LEN];
		char hex[2 * MU_KBS_KEY_ID_LEN + 1];
		if (mu_kbs_load_key(k, keys[i], id, &err) != MU_OK) {
			cli_error("kbs", &err);
			goto out;
		}
		mu_hex(id, sizeof id, hex);
		fprintf(stderr, "mu kbs: key %s loaded from %s\n", hex, keys[i]);
	}
	for (uint32_t i = 0; i < policy->n; i++)
		for (uint32_t j = 0; j < policy->m[i].n_key_ids; j++)
			if (!mu_kbs_has_key(k, policy->m[i].key_ids[j])) {
				char hex[2 * MU_KBS_KEY_ID_LEN + 1];
				mu_hex(policy->m[i].key_ids[j], MU_KBS_KEY_ID_LEN, hex);
				fprintf(stderr, "mu kbs: warning: the policy allows key id %s, but no --key holds it\n", hex);
			}
	fprintf(stderr,
		"mu kbs: policy %s: %u measurement(s), nonce ttl %u ms, egress cap <= %lld bytes/s, burst <= %lld bytes\n",
		policy_path, policy->n, policy->nonce_ttl_ms, (long long)policy->max_egress_bytes_per_s,
		(long long)policy->max_egress_burst_bytes);
	if (policy->allow_dev_evidence)
		fprintf(stderr, "mu kbs: WARNING: the policy allows dev evidence, which is signed by nothing: "
				"INSECURE, for development only\n");
	if (!o.audit_path)
		fprintf(stderr, "mu kbs: warning: no --audit file; decisions are only printed here\n");
	if (mu_kbs_serve(k, &o, &err) != MU_OK) {
		cli_error("kbs", &err);
		goto out;
	}
	code = 0;
out:
	if (k)
		mu_kbs_wipe(k);
	pal_secret_free(&mem);
	mu_wipe(policy, sizeof *policy);
	free(policy);
	free(keys);
	return code;

usage_err:
	usage(stderr);
	free(keys);
	return 2;
}
