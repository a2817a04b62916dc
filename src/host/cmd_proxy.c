/* cmd_proxy.c — `mu proxy`: the host's only channel between clients and an attested enclave,
 * with its own egress cap, a persisted budget ledger, an output filter and a hash-chained
 * audit log (src/host/proxy*.c, docs/proxy.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "host/cli.h"
#include "host/oai.h"
#include "host/proxy.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mu proxy --enclave ADDR --kbs ADDR (--listen ADDR | --http ADDR ...) --ledger FILE\n"
		"                --audit FILE [options]\n\n"
		"Attests the enclave through the key broker, then serves clients: on a local socket with\n"
		"the framed protocol of docs/protocol.md (generate, cancel), and/or over HTTP with an\n"
		"OpenAI-compatible API (docs/http.md). Every byte of output is filtered, charged to the\n"
		"budget ledger and metered by the egress cap before it leaves.\n"
		"Addresses are unix:PATH or tcp:HOST:PORT.\n"
		"  --enclave ADDR         the enclave's channel\n"
		"  --kbs ADDR             the key broker (mu kbs)\n"
		"  --listen ADDR          the frame clients' socket; printed as 'mu proxy: listening on ADDR'\n"
		"  --http ADDR            the HTTP API; printed as 'mu proxy: http listening on ADDR ...'\n"
		"                         (tcp:127.0.0.1:0 picks a free port)\n"
		"  --keys FILE            API keys for --http (made by mu keys add; SHA-256 only)\n"
		"  --key-state DIR        where each key's output quota ledger is kept\n"
		"  --no-auth              serve --http without keys (development only)\n"
		"  --http-max-connections N  HTTP connections at once (default %u); each may have one\n"
		"                         request queued or running\n"
		"  --http-timeout-ms N    a request must arrive whole within this, and an idle connection\n"
		"                         is closed after it (default %u)\n"
		"  --http-max-body N      request body limit in bytes (default %u; larger: 413)\n"
		"  --http-per-ip N        HTTP connections per client address (default 0 = no limit)\n"
		"  --ledger FILE          the persisted egress budget (created when missing; never reset)\n"
		"  --audit FILE           the hash-chained audit log (verified on start; mu audit verify)\n"
		"  --egress-bps N         bytes/s released to clients at most (default %u)\n"
		"  --egress-burst N       token bucket burst in bytes (default %u)\n"
		"  --daily-bytes N        budget per UTC day in bytes (default %u; 0 = none)\n"
		"  --total-bytes N        budget in total in bytes (default 0 = none)\n"
		"  --ledger-reserve N     bytes charged ahead per ledger write (default %u)\n"
		"  --filter FILE          output filter rules (JSON; see docs/proxy.md); default: all block\n"
		"  --deny PATTERN         block responses that contain PATTERN, ASCII case-insensitively\n"
		"                         (repeatable)\n"
		"  --max-clients N        client connections at once (default %u); more get over_capacity\n"
		"  --read-timeout-ms N    time to finish a frame once begun (default %u)\n"
		"  --reconnect-ms N       first retry delay after the enclave link fails (default %u;\n"
		"                         doubles up to %u)\n"
		"  --drain-timeout-ms N   time the enclave has to end a cancelled request before the\n"
		"                         link is dropped and re-attested (default %u)\n",
		MU_PROXY_DEFAULT_HTTP_CONNS, MU_PROXY_DEFAULT_HTTP_TIMEOUT_MS, MU_PROXY_DEFAULT_HTTP_MAX_BODY,
		MU_PROXY_DEFAULT_EGRESS_BPS, MU_PROXY_DEFAULT_EGRESS_BURST, MU_PROXY_DEFAULT_DAILY_BYTES,
		MU_PROXY_DEFAULT_RESERVE, MU_PROXY_MAX_CLIENTS, MU_WIRE_READ_TIMEOUT_MS, MU_PROXY_DEFAULT_RECONNECT_MS,
		MU_PROXY_MAX_BACKOFF_MS, MU_PROXY_DEFAULT_DRAIN_MS);
}

static int u64_in(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (cli_u64(flag, s, out))
		return -1;
	if (*out < lo || *out > hi) {
		fprintf(stderr, "mu: %s: %s is out of range %llu..%llu\n", flag, s, (unsigned long long)lo,
			(unsigned long long)hi);
		return -1;
	}
	return 0;
}

int cmd_proxy(int argc, char **argv)
{
	struct mu_proxy_opts o;
	const char *val;
	const char **deny = calloc((size_t)argc + 1, sizeof *deny);
	int code = 2;
	if (!deny) {
		fprintf(stderr, "mu proxy: out of memory\n");
		return 1;
	}
	mu_proxy_opts_default(&o);
	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			code = 0;
			goto out;
		}
		if ((r = cli_opt(argc, argv, &i, "--enclave", NULL, &o.enclave_addr)) ||
		    (r = cli_opt(argc, argv, &i, "--kbs", NULL, &o.kbs_addr)) ||
		    (r = cli_opt(argc, argv, &i, "--listen", NULL, &o.listen_addr)) ||
		    (r = cli_opt(argc, argv, &i, "--ledger", NULL, &o.ledger_path)) ||
		    (r = cli_opt(argc, argv, &i, "--audit", NULL, &o.audit_path)) ||
		    (r = cli_opt(argc, argv, &i, "--filter", NULL, &o.filter_path)) ||
		    (r = cli_opt(argc, argv, &i, "--http", NULL, &o.http_addr)) ||
		    (r = cli_opt(argc, argv, &i, "--keys", NULL, &o.keys_path)) ||
		    (r = cli_opt(argc, argv, &i, "--key-state", NULL, &o.key_state_dir))) {
			if (r < 0)
				goto usage_err;
			continue;
		}
		if (!strcmp(argv[i], "--no-auth")) {
			o.http_no_auth = 1;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--deny", NULL, &val))) {
			if (r < 0)
				goto usage_err;
			if (!*val) {
				fprintf(stderr, "mu proxy: --deny: an empty pattern would match everything\n");
				goto usage_err;
			}
			deny[o.n_deny++] = val;
			continue;
		}
		struct {
			const char *flag;
			uint64_t *dst, lo, hi;
		} u64s[] = {{"--egress-bps", &o.egress_bps, 1, MU_EGRESS_MAX_RATE},
			    {"--egress-burst", &o.egress_burst, 1, MU_EGRESS_MAX_BURST},
			    {"--daily-bytes", &o.ledger.daily_bytes, 0, UINT64_MAX / 2},
			    {"--total-bytes", &o.ledger.total_bytes, 0, UINT64_MAX / 2},
			    {"--ledger-reserve", &o.ledger.reserve_bytes, 1, (uint64_t)1 << 40}};
		const struct cli_u32_opt u32s[] = {{"--max-clients", &o.max_clients, 1, MU_PROXY_CLIENTS_LIMIT},
			    {"--read-timeout-ms", &o.read_timeout_ms, 1, 3600000},
			    {"--reconnect-ms", &o.reconnect_ms, 1, MU_PROXY_MAX_BACKOFF_MS},
			    {"--drain-timeout-ms", &o.drain_timeout_ms, 1, MU_PROXY_DRAIN_MAX_MS},
			    {"--http-max-connections", &o.http_max_conns, 1, MU_PROXY_HTTP_CONNS_LIMIT},
			    {"--http-timeout-ms", &o.http_timeout_ms, 100, 3600000},
			    {"--http-max-body", &o.http_max_body, 1024, OAI_MAX_BODY},
			    {"--http-per-ip", &o.http_per_ip, 0, MU_PROXY_HTTP_CONNS_LIMIT}};
		int matched = 0;
		for (size_t k = 0; k < sizeof u64s / sizeof u64s[0] && !matched; k++)
			if ((r = cli_opt(argc, argv, &i, u64s[k].flag, NULL, &val))) {
				if (r < 0 || u64_in(u64s[k].flag, val, u64s[k].lo, u64s[k].hi, u64s[k].dst))
					goto usage_err;
				matched = 1;
			}
		if (!matched && (matched = cli_opt_u32s(argc, argv, &i, u32s, sizeof u32s / sizeof u32s[0])) < 0)
			goto usage_err;
		if (matched)
			continue;
		fprintf(stderr, "mu proxy: unexpected argument '%s'\n", argv[i]);
		goto usage_err;
	}
	if (!o.enclave_addr || !o.kbs_addr || (!o.listen_addr && !o.http_addr) || !o.ledger_path || !o.audit_path) {
		fprintf(stderr, "mu proxy: --enclave, --kbs, --listen or --http, --ledger and --audit are required\n");
		goto usage_err;
	}
	if (o.http_addr && !o.http_no_auth && (!o.keys_path || !o.key_state_dir)) {
		fprintf(stderr, "mu proxy: --http needs --keys FILE and --key-state DIR (or --no-auth)\n");
		goto usage_err;
	}
	if (!o.http_addr && (o.keys_path || o.key_state_dir || o.http_no_auth)) {
		fprintf(stderr, "mu proxy: --keys, --key-state and --no-auth are for --http\n");
		goto usage_err;
	}
	if (o.http_no_auth && o.keys_path) {
		fprintf(stderr, "mu proxy: --no-auth and --keys contradict each other\n");
		goto usage_err;
	}
	o.deny = deny;

	struct mu_error err = {0};
	if (mu_proxy_run(&o, &err) != MU_OK) {
		cli_error("proxy", &err);
		code = 1;
	} else {
		code = 0;
	}
	goto out;
usage_err:
	usage(stderr);
	code = 2;
out:
	free(deny);
	return code;
}
