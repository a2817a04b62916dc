/* config.h — the enclave config file (docs/enclave.md).
 *
 * One strict JSON object (no duplicate keys, nothing after it, at most MU_ENCLAVE_CONFIG_MAX
 * bytes). Its exact bytes are hashed into the measurement (attest/evidence.h), so every value
 * here, the egress cap above all, is as measured as the code. Members:
 *
 *   "model"               string, required: path of the sealed model (.mus)
 *   "channel"             string, required: "unix:PATH" | "tcp:HOST:PORT" (listen, one
 *                         connection at a time) | "dev:PATH" (a character device, e.g. a
 *                         virtio-serial port, opened read/write)
 *   "egress_bytes_per_s"  integer 1..MU_EGRESS_MAX_RATE, required
 *   "egress_burst_bytes"  integer 1..MU_EGRESS_MAX_BURST, default MU_EGRESS_DEFAULT_BURST (4096;
 *                         the key broker assumes the same default when it checks the burst)
 *   "max_tokens"          integer 1..MU_WIRE_MAX_GEN_TOKENS, default 256
 *   "n_ctx"               integer 1..MU_MAX_CTX, default min(trained context, 4096)
 *   "threads"             integer 1..MU_MAX_THREADS, default 1
 *   "read_timeout_ms"     integer 1..600000, default MU_WIRE_READ_TIMEOUT_MS
 *   "name"                1..64 printable ASCII, default general.name of the model, or "model"
 *   "secretmem"           boolean, default false: plaintext weights in memfd_secret memory
 *   "v0_unlock_key_file"  string: the pre-shared key file, only with --protocol v0
 *   "test_no_egress_limit" boolean: MU_ENCLAVE_TEST builds only; turns the enclave's own
 *                         egress limiter off (for testing the proxy's limiter alone). The key
 *                         broker releases to a config holding it only under a policy that
 *                         allows dev evidence
 * Anything else is an error naming the member.
 */
#ifndef MU_ENCLAVE_CONFIG_H
#define MU_ENCLAVE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/limits.h"

#define MU_ENCLAVE_PATH_MAX 4096u
#define MU_ENCLAVE_DEFAULT_MAX_TOKENS 256u
#define MU_ENCLAVE_DEFAULT_CTX 4096u
#define MU_ENCLAVE_MAX_READ_TIMEOUT_MS 600000u

enum mu_channel_kind { MU_CHANNEL_LISTEN = 1, MU_CHANNEL_DEV = 2 };

struct mu_enclave_cfg {
	char model[MU_ENCLAVE_PATH_MAX];
	char channel[MU_ENCLAVE_PATH_MAX];   /* as written */
	enum mu_channel_kind channel_kind;
	const char *dev_path;                /* into channel, for MU_CHANNEL_DEV */
	uint64_t egress_bytes_per_s;
	uint64_t egress_burst_bytes;
	uint32_t max_tokens;
	uint32_t n_ctx;                      /* 0: the default, decided when the model is loaded */
	uint32_t threads;
	uint32_t read_timeout_ms;
	char name[MU_WIRE_MAX_MODEL_NAME + 1]; /* empty: the default */
	int secretmem;
	char v0_key_file[MU_ENCLAVE_PATH_MAX]; /* empty when absent */
	int no_egress_limit;                 /* test builds only */
};

/* Parses and checks config[0..len). v0 says whether --protocol v0 was given (which requires
 * v0_unlock_key_file, and is the only mode that accepts it). err names the member at fault. */
enum mu_err mu_enclave_cfg_parse(struct mu_enclave_cfg *c, const uint8_t *config, size_t len, int v0,
				 struct mu_error *err);

/* 1 when s[0..n) is 1..MU_WIRE_MAX_MODEL_NAME bytes of printable ASCII. */
int mu_enclave_name_ok(const char *s, size_t n);

#endif
