/* policy.h — the key broker's release policy.
 *
 * A JSON file, parsed strictly (unknown keys, duplicate keys, wrong types, out-of-range values
 * and trailing bytes are all refused, every member is required except max_egress_burst_bytes
 * and a measurement's note):
 *
 *   {"version": 1,
 *    "allow_dev_evidence": false,          insecure dev evidence (signed by nothing) accepted?
 *                                          Also the only policy that releases to a config
 *                                          holding the test-build key test_no_egress_limit.
 *    "nonce_ttl_ms": 30000,                1 .. MU_KBS_MAX_NONCE_TTL_MS
 *    "max_egress_bytes_per_s": 4096,       the enclave config's egress_bytes_per_s must be <= this
 *    "max_egress_burst_bytes": 65536,      optional, >= 1, default MU_POLICY_DEFAULT_MAX_BURST: the
 *                                          config's egress_burst_bytes (absent: the enclave's
 *                                          default MU_EGRESS_DEFAULT_BURST) must be <= this
 *    "measurements": {                     up to MU_POLICY_MAX_MEASUREMENTS
 *      "<64 lower-case hex>": {"key_ids": ["<32 lower-case hex>", ...],   1 .. MU_POLICY_MAX_KEY_IDS
 *                              "note": "free text"}}}
 *
 * A release needs the measurement listed, the key id listed under it, and the config's egress
 * within the policy (mu_policy_check_egress): no test-build key unless allow_dev_evidence, the
 * egress cap present and within max_egress_bytes_per_s, the burst within
 * max_egress_burst_bytes. Together these bound what the enclave can send in any t seconds:
 * max_egress_burst_bytes + max_egress_bytes_per_s x t.
 */
#ifndef MU_ATTEST_POLICY_H
#define MU_ATTEST_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "attest/evidence.h"
#include "attest/kbs_proto.h"
#include "base/err.h"
#include "base/limits.h"

#define MU_POLICY_VERSION 1

struct mu_policy_entry {
	uint8_t measurement[32];
	uint32_t n_key_ids;
	uint8_t key_ids[MU_POLICY_MAX_KEY_IDS][MU_KBS_KEY_ID_LEN];
};

struct mu_policy {
	int allow_dev_evidence;
	uint32_t nonce_ttl_ms;
	int64_t max_egress_bytes_per_s;
	int64_t max_egress_burst_bytes; /* MU_POLICY_DEFAULT_MAX_BURST when the file sets none */
	uint32_t n;
	struct mu_policy_entry m[MU_POLICY_MAX_MEASUREMENTS];
};

/* Parses and validates a policy document into *p (zeroed on failure). Allocates its JSON
 * scratch with pal_alloc for the duration of the call. Messages name the offending member,
 * e.g. "measurements.\"ab12...\".key_ids[1]: must be 32 lower-case hex digits". */
enum mu_err mu_policy_parse(struct mu_policy *p, const uint8_t *json, size_t len, struct mu_error *err);

/* The entry for a measurement, or NULL. */
const struct mu_policy_entry *mu_policy_find(const struct mu_policy *p, const uint8_t measurement[static 32]);
/* 1 when key_id is allowed for entry e. */
int mu_policy_allows_key(const struct mu_policy_entry *e, const uint8_t key_id[static MU_KBS_KEY_ID_LEN]);
/* Whether the policy accepts a config's egress (mu_config_egress), in this order: a config
 * holding test_no_egress_limit needs allow_dev_evidence (MU_KBS_TEST_CONFIG_NOT_ALLOWED); the
 * rate must be <= max_egress_bytes_per_s and the burst <= max_egress_burst_bytes
 * (MU_KBS_EGRESS_CAP_TOO_HIGH, the message naming the member and both values). MU_KBS_OK. */
enum mu_kbs_code mu_policy_check_egress(const struct mu_policy *p, const struct mu_egress_claim *c,
					struct mu_error *err);

#endif
