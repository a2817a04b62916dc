/* kbs_proto.h — the key broker protocol as both ends see it: refusal codes, the wrapping of a
 * model key to an enclave's ephemeral X25519 key, and the enclave side's messages.
 * docs/key-release.md is the normative description; in short:
 *
 *   frame     4-byte big-endian length (1..MU_KBS_MAX_FRAME), then one UTF-8 JSON object
 *   enclave → {"type":"hello","version":1}
 *   broker  → {"type":"challenge","nonce":<64 hex>,"expires_in_ms":N}
 *   enclave → {"type":"evidence","format":"dev","nonce":..,"pubkey":<64 hex>,"measurement":<64 hex>,
 *              "key_id":<32 hex>,"claims":{"binary_sha256":..,"config":<string>,"sealed_header_sha256":..}}
 *   broker  → {"type":"key","key_id":..,"eph_pub":<64 hex>,"ciphertext":<64 hex>,"tag":<32 hex>,
 *              "insecure":bool,"message":<text>}
 *           | {"type":"refused","code":<snake_case>,"message":<text>}
 *   Hex is lower-case. One evidence per challenge; after a key or a refusal the broker closes.
 *
 * Wrap (broker, fresh ephemeral X25519 key pair e per wrap; E = enclave's public key):
 *   shared  = X25519(e_priv, E)                 (an all-zero result, a low-order E, is refused)
 *   K       = HKDF-SHA256(ikm = shared, salt = nonce (32 bytes),
 *                         info = "mu-kbs wrap v1" || e_pub || E || measurement)
 *   ct||tag = AES-256-GCM(K, iv = 12 zero bytes, aad = "mu-kbs wrap v1" || key_id, model key)
 * A zero IV is safe because K is never used twice: it depends on e_priv, fresh for every wrap.
 * The enclave recomputes K from its private key, the nonce it answered and the measurement it
 * claimed, so a key wrapped for other evidence, another key pair or another key id fails the
 * tag check.
 *
 * Nothing here touches the host: this file and its .c files are linked into the enclave.
 */
#ifndef MU_ATTEST_KBS_PROTO_H
#define MU_ATTEST_KBS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define MU_KBS_VERSION 1
#define MU_KBS_NONCE_LEN 32
#define MU_KBS_KEY_ID_LEN 16
#define MU_KBS_WRAP_LABEL "mu-kbs wrap v1"
#define MU_KBS_MESSAGE_MAX 320 /* bytes of a reply's human-readable message */

/* Stable refusal codes; the names (mu_kbs_code_name) are part of the protocol. MU_KBS_OK is
 * a release. Append new codes at the end. */
enum mu_kbs_code {
	MU_KBS_OK = 0,
	MU_KBS_BAD_FRAME,               /* length prefix 0 or over MU_KBS_MAX_FRAME */
	MU_KBS_BAD_MESSAGE,             /* not one strict JSON object of a known shape */
	MU_KBS_UNSUPPORTED_VERSION,     /* hello with a version other than MU_KBS_VERSION */
	MU_KBS_NONCE_UNKNOWN,           /* never issued, or forgotten (evicted, owner closed) */
	MU_KBS_NONCE_REUSED,            /* already answered once */
	MU_KBS_NONCE_EXPIRED,           /* older than the policy's nonce_ttl_ms */
	MU_KBS_NONCE_FOREIGN,           /* issued to another connection */
	MU_KBS_FORMAT_NOT_ALLOWED,      /* an insecure format the policy does not allow */
	MU_KBS_UNKNOWN_FORMAT,          /* no evidence format of that name */
	MU_KBS_MEASUREMENT_MISMATCH,    /* the claims do not hash to the claimed measurement */
	MU_KBS_MEASUREMENT_NOT_ALLOWED, /* measurement not listed in the policy */
	MU_KBS_MODEL_NOT_ALLOWED,       /* key id not allowed for that measurement */
	MU_KBS_UNKNOWN_MODEL,           /* the broker holds no key with that key id */
	MU_KBS_EGRESS_CAP_TOO_HIGH,     /* config's egress_bytes_per_s or egress_burst_bytes above the
					 * policy's maximum */
	MU_KBS_EGRESS_CAP_MISSING,      /* config has no egress_bytes_per_s */
	MU_KBS_BAD_PUBKEY,              /* not 64 hex digits, or a low-order X25519 point */
	MU_KBS_NO_POLICY,               /* the broker has no policy loaded: everything is refused */
	MU_KBS_INTERNAL_ERROR,          /* entropy or audit failure on the broker; nothing released */
	MU_KBS_TEST_CONFIG_NOT_ALLOWED, /* config holds the test-build key test_no_egress_limit and
					 * the policy does not allow dev evidence */
	MU_KBS_CODE_COUNT
};

/* "ok", "bad_frame", ... ; "unknown" for a value out of range. */
const char *mu_kbs_code_name(enum mu_kbs_code c);
/* The code named s[0..n), or MU_KBS_CODE_COUNT when there is none. */
enum mu_kbs_code mu_kbs_code_from_name(const char *s, size_t n);

struct mu_kbs_wrapped {
	uint8_t eph_pub[32];
	uint8_t ciphertext[32];
	uint8_t tag[16];
};

/* Wraps model_key to enclave_pub with a fresh ephemeral key pair. MU_ERR_AUTH when
 * enclave_pub is a low-order point; MU_ERR_IO when no entropy. Every intermediate secret is
 * wiped before returning; on failure *out is zeroed. */
enum mu_err mu_kbs_wrap(const uint8_t model_key[static 32], const uint8_t key_id[static MU_KBS_KEY_ID_LEN],
			const uint8_t enclave_pub[static 32], const uint8_t nonce[static MU_KBS_NONCE_LEN],
			const uint8_t measurement[static 32], struct mu_kbs_wrapped *out, struct mu_error *err);
/* The same with a given ephemeral private key (known-answer tests); eph_priv is not wiped. */
enum mu_err mu_kbs_wrap_with(const uint8_t eph_priv[static 32], const uint8_t model_key[static 32],
			     const uint8_t key_id[static MU_KBS_KEY_ID_LEN], const uint8_t enclave_pub[static 32],
			     const uint8_t nonce[static MU_KBS_NONCE_LEN], const uint8_t measurement[static 32],
			     struct mu_kbs_wrapped *out, struct mu_error *err);
/* Enclave side: recovers the model key. MU_ERR_AUTH when the tag does not verify (wrapped for
 * another key pair, nonce, measurement or key id, or tampered) or eph_pub is low-order; key
 * is zeroed then. */
enum mu_err mu_kbs_unwrap(const uint8_t enclave_priv[static 32], const uint8_t enclave_pub[static 32],
			  const uint8_t nonce[static MU_KBS_NONCE_LEN], const uint8_t measurement[static 32],
			  const uint8_t key_id[static MU_KBS_KEY_ID_LEN], const uint8_t eph_pub[static 32],
			  const uint8_t ciphertext[static 32], const uint8_t tag[static 16], uint8_t key[static 32],
			  struct mu_error *err);

/* ---- the enclave side's messages (kbs_msg.c) ---- */

/* Writes {"type":"hello","version":1} into buf (NUL-terminated); *len without the NUL. */
enum mu_err mu_kbs_msg_hello(char *buf, size_t cap, size_t *len, struct mu_error *err);

/* The claims of the dev evidence format (see evidence.h for the measurement they hash to). */
struct mu_dev_claims {
	uint8_t binary_sha256[32];
	const uint8_t *config; /* the enclave config file's exact bytes (UTF-8 JSON) */
	size_t config_len;
	uint8_t sealed_header_sha256[32];
};
enum mu_err mu_kbs_msg_evidence_dev(char *buf, size_t cap, size_t *len, const uint8_t nonce[static MU_KBS_NONCE_LEN],
				    const uint8_t pubkey[static 32], const uint8_t measurement[static 32],
				    const uint8_t key_id[static MU_KBS_KEY_ID_LEN], const struct mu_dev_claims *c,
				    struct mu_error *err);

enum mu_kbs_msg_type {
	MU_KBS_MSG_CHALLENGE = 1,
	MU_KBS_MSG_KEY = 2,
	MU_KBS_MSG_REFUSED = 3,
};

/* A broker message, parsed strictly (exact fields, lower-case hex, no duplicates). */
struct mu_kbs_reply_msg {
	enum mu_kbs_msg_type type;
	/* challenge */
	uint8_t nonce[MU_KBS_NONCE_LEN];
	int64_t expires_in_ms;
	/* key */
	uint8_t key_id[MU_KBS_KEY_ID_LEN];
	struct mu_kbs_wrapped wrapped;
	int insecure;
	/* refused: code is MU_KBS_CODE_COUNT for a name this build does not know; code_name holds
	 * the name as sent (printable ASCII, else '?') */
	enum mu_kbs_code code;
	char code_name[40];
	/* key and refused */
	char message[MU_KBS_MESSAGE_MAX + 1];
};
enum mu_err mu_kbs_msg_parse(struct mu_kbs_reply_msg *m, const uint8_t *body, size_t len, struct mu_error *err);

/* Lower-case hex only: exactly 2n digits 0-9a-f into out[0..n). 0 on success, -1 otherwise. */
int mu_kbs_unhex(const char *s, size_t slen, uint8_t *out, size_t n);

#endif
