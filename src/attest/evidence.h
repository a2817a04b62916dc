/* evidence.h — the measurement, the enclave config's egress cap, and evidence formats behind
 * one interface.
 *
 * Measurement v1 (what the policy lists), 32 bytes:
 *     SHA-256("mu-measurement-v1" || 0x00 || binary_sha256 || SHA-256(config) || sealed_header_sha256)
 * binary_sha256 is the SHA-256 of the enclave binary, config the enclave config file's exact
 * bytes, sealed_header_sha256 the SHA-256 of the sealed model's 128-byte header. The config is
 * inside the measurement, so the egress cap it sets is as measured as the code.
 *
 * Evidence formats. Every format establishes the same measurement from the same claims; what
 * differs is who vouches for it. The broker parses the members every format shares (type,
 * format, nonce, pubkey, measurement, key_id), checks the nonce, then hands the evidence
 * object to the format's verify(), which must
 *   - refuse members other than the common ones and its own `fields` (the broker does this
 *     with the combined list before calling verify),
 *   - establish the measurement (recompute it from the claims and compare with the claimed
 *     one: MU_KBS_MEASUREMENT_MISMATCH),
 *   - for a format that is signed, check that the signature covers the nonce, the public key,
 *     the measurement and the key id (a TPM 2.0 quote: extraData = SHA-256 over them, and the
 *     quoted PCRs holding the measurement), so evidence cannot be replayed or re-bound to a key
 *     the attacker holds,
 *   - return the config bytes (decoded into the caller's scratch) for the egress check.
 * The dev format is signed by nothing: anyone can produce it for any measurement. It is
 * marked `insecure`, and the broker refuses it unless the policy says allow_dev_evidence.
 *
 * The enclave config is a JSON object (strict syntax; unknown keys allowed, for other parts of
 * the enclave) that must hold "egress_bytes_per_s": an integer > 0. The broker also reads
 * "egress_burst_bytes" (an integer > 0; absent: MU_EGRESS_DEFAULT_BURST, the enclave's own
 * default) and notes whether "test_no_egress_limit" is present with any value: that key turns
 * the test build's limiter off, so the cap the config states is then not in force.
 */
#ifndef MU_ATTEST_EVIDENCE_H
#define MU_ATTEST_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "attest/kbs_proto.h"
#include "base/err.h"
#include "wire/json.h"

#define MU_MEASUREMENT_LABEL "mu-measurement-v1"

void mu_measure(const uint8_t binary_sha256[static 32], const uint8_t *config, size_t config_len,
		const uint8_t sealed_header_sha256[static 32], uint8_t out[static 32]);

/* What the broker hands a format's verify(): the parsed evidence and its checked common
 * members. */
struct mu_evidence_in {
	const struct json_doc *doc;
	uint32_t obj;               /* the evidence object */
	const uint8_t *nonce;       /* 32 bytes: the challenge this evidence answers */
	const uint8_t *pubkey;      /* 32 bytes: the enclave's ephemeral X25519 public key */
	const uint8_t *measurement; /* 32 bytes: the measurement the evidence claims */
	const uint8_t *key_id;      /* 16 bytes */
};

/* What verification established. */
struct mu_evidence {
	uint8_t measurement[32];
	uint8_t binary_sha256[32];
	uint8_t sealed_header_sha256[32];
	const uint8_t *config; /* in the caller's scratch */
	size_t config_len;
};

struct mu_evidence_format {
	const char *name;
	int insecure;               /* signed by nothing: only with allow_dev_evidence */
	const char *const *fields;  /* members of the evidence object besides the common ones */
	size_t n_fields;
	/* MU_KBS_OK, or the refusal code with err saying why. scratch holds the decoded config. */
	enum mu_kbs_code (*verify)(const struct mu_evidence_in *in, uint8_t *scratch, size_t scratch_len,
				   struct mu_evidence *out, struct mu_error *err);
};

#define MU_EVIDENCE_MAX_FIELDS 8 /* a format's own fields, at most */

/* The members every evidence object has. */
extern const char *const mu_evidence_common_fields[6];

/* The format named name[0..n), or NULL. */
const struct mu_evidence_format *mu_evidence_format_find(const char *name, size_t n);
/* Formats by index, for listing (NULL past the end). */
const struct mu_evidence_format *mu_evidence_format_at(size_t i);

extern const struct mu_evidence_format mu_evidence_dev;

/* ---- the enclave config ---- */

/* What the config says about its egress, as the enclave will apply it. */
struct mu_egress_claim {
	int64_t rate;       /* egress_bytes_per_s, >= 1 */
	int64_t burst;      /* egress_burst_bytes, >= 1; MU_EGRESS_DEFAULT_BURST when absent */
	int burst_given;    /* egress_burst_bytes was in the config */
	int test_no_limit;  /* "test_no_egress_limit" was in the config, whatever its value */
};

/* Bytes of scratch mu_config_egress needs for a config of up to MU_KBS_MAX_FRAME bytes. */
enum mu_err mu_config_mem_size(size_t *size, struct mu_error *err);
/* Reads the egress members of the config into *out. MU_KBS_OK; MU_KBS_EGRESS_CAP_MISSING when
 * egress_bytes_per_s is absent; MU_KBS_BAD_MESSAGE when the config is not a strict JSON object
 * or egress_bytes_per_s or egress_burst_bytes is not an integer > 0. *out is zeroed on
 * failure. */
enum mu_kbs_code mu_config_egress(const uint8_t *config, size_t len, void *mem, size_t mem_len,
				  struct mu_egress_claim *out, struct mu_error *err);

#endif
