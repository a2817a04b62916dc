/* kbs_wrap.c — refusal code names, key ids, and wrapping a model key to an enclave's
 * ephemeral X25519 key (see kbs_proto.h for the construction). */
#include "attest/kbs_proto.h"

#include <string.h>

#include "seal/crypto.h"

static const char *const code_names[MU_KBS_CODE_COUNT] = {
	[MU_KBS_OK] = "ok",
	[MU_KBS_BAD_FRAME] = "bad_frame",
	[MU_KBS_BAD_MESSAGE] = "bad_message",
	[MU_KBS_UNSUPPORTED_VERSION] = "unsupported_version",
	[MU_KBS_NONCE_UNKNOWN] = "nonce_unknown",
	[MU_KBS_NONCE_REUSED] = "nonce_reused",
	[MU_KBS_NONCE_EXPIRED] = "nonce_expired",
	[MU_KBS_NONCE_FOREIGN] = "nonce_foreign",
	[MU_KBS_FORMAT_NOT_ALLOWED] = "format_not_allowed",
	[MU_KBS_UNKNOWN_FORMAT] = "unknown_format",
	[MU_KBS_MEASUREMENT_MISMATCH] = "measurement_mismatch",
	[MU_KBS_MEASUREMENT_NOT_ALLOWED] = "measurement_not_allowed",
	[MU_KBS_MODEL_NOT_ALLOWED] = "model_not_allowed",
	[MU_KBS_UNKNOWN_MODEL] = "unknown_model",
	[MU_KBS_EGRESS_CAP_TOO_HIGH] = "egress_cap_too_high",
	[MU_KBS_EGRESS_CAP_MISSING] = "egress_cap_missing",
	[MU_KBS_BAD_PUBKEY] = "bad_pubkey",
	[MU_KBS_NO_POLICY] = "no_policy",
	[MU_KBS_INTERNAL_ERROR] = "internal_error",
	[MU_KBS_TEST_CONFIG_NOT_ALLOWED] = "test_config_not_allowed",
};

const char *mu_kbs_code_name(enum mu_kbs_code c)
{
	if ((unsigned)c >= MU_KBS_CODE_COUNT || !code_names[c])
		return "unknown";
	return code_names[c];
}

enum mu_kbs_code mu_kbs_code_from_name(const char *s, size_t n)
{
	for (unsigned c = 0; c < MU_KBS_CODE_COUNT; c++)
		if (strlen(code_names[c]) == n && memcmp(code_names[c], s, n) == 0)
			return (enum mu_kbs_code)c;
	return MU_KBS_CODE_COUNT;
}

int mu_kbs_unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
	if (slen != 2 * n)
		return -1;
	for (size_t i = 0; i < slen; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
	return mu_unhex(s, slen, out, n);
}

#define LABEL_LEN (sizeof MU_KBS_WRAP_LABEL - 1)

/* K = HKDF-SHA256(shared, salt = nonce, info = label || eph_pub || enclave_pub || measurement).
 * 32 bytes of output is always within HKDF's limit. */
static void derive(uint8_t k[static 32], const uint8_t shared[static 32], const uint8_t nonce[static 32],
		   const uint8_t eph_pub[static 32], const uint8_t enclave_pub[static 32],
		   const uint8_t measurement[static 32])
{
	uint8_t info[LABEL_LEN + 3 * 32];
	memcpy(info, MU_KBS_WRAP_LABEL, LABEL_LEN);
	memcpy(info + LABEL_LEN, eph_pub, 32);
	memcpy(info + LABEL_LEN + 32, enclave_pub, 32);
	memcpy(info + LABEL_LEN + 64, measurement, 32);
	(void)mu_hkdf_sha256(shared, 32, nonce, MU_KBS_NONCE_LEN, info, sizeof info, k, 32);
}

static void wrap_aad(uint8_t aad[static LABEL_LEN + MU_KBS_KEY_ID_LEN], const uint8_t key_id[static MU_KBS_KEY_ID_LEN])
{
	memcpy(aad, MU_KBS_WRAP_LABEL, LABEL_LEN);
	memcpy(aad + LABEL_LEN, key_id, MU_KBS_KEY_ID_LEN);
}

static const uint8_t zero_iv[12];

enum mu_err mu_kbs_wrap_with(const uint8_t eph_priv[static 32], const uint8_t model_key[static 32],
			     const uint8_t key_id[static MU_KBS_KEY_ID_LEN], const uint8_t enclave_pub[static 32],
			     const uint8_t nonce[static MU_KBS_NONCE_LEN], const uint8_t measurement[static 32],
			     struct mu_kbs_wrapped *out, struct mu_error *err)
{
	static const uint8_t base[32] = {9};
	uint8_t shared[32], k[32], aad[LABEL_LEN + MU_KBS_KEY_ID_LEN];
	struct mu_gcm gcm;
	enum mu_err rc;

	memset(out, 0, sizeof *out);
	/* e_pub = X25519(e_priv, 9) */
	rc = mu_x25519(out->eph_pub, eph_priv, base, err);
	if (rc != MU_OK)
		goto out;
	rc = mu_x25519(shared, eph_priv, enclave_pub, err);
	if (rc != MU_OK) {
		mu_errf(err, MU_ERR_AUTH, "the enclave's public key is a low-order X25519 point");
		goto out;
	}
	derive(k, shared, nonce, out->eph_pub, enclave_pub, measurement);
	wrap_aad(aad, key_id);
	memcpy(out->ciphertext, model_key, 32);
	mu_gcm_init(&gcm, k, sizeof k);
	mu_gcm_seal(&gcm, zero_iv, sizeof zero_iv, aad, sizeof aad, out->ciphertext, 32, out->tag);
	mu_gcm_free(&gcm);
out:
	mu_wipe(shared, sizeof shared);
	mu_wipe(k, sizeof k);
	if (rc != MU_OK)
		mu_wipe(out, sizeof *out);
	return rc;
}

enum mu_err mu_kbs_wrap(const uint8_t model_key[static 32], const uint8_t key_id[static MU_KBS_KEY_ID_LEN],
			const uint8_t enclave_pub[static 32], const uint8_t nonce[static MU_KBS_NONCE_LEN],
			const uint8_t measurement[static 32], struct mu_kbs_wrapped *out, struct mu_error *err)
{
	uint8_t eph_priv[32], eph_pub[32];
	enum mu_err rc = mu_x25519_keygen(eph_priv, eph_pub, err);
	if (rc == MU_OK)
		rc = mu_kbs_wrap_with(eph_priv, model_key, key_id, enclave_pub, nonce, measurement, out, err);
	else
		memset(out, 0, sizeof *out);
	mu_wipe(eph_priv, sizeof eph_priv);
	return rc;
}

enum mu_err mu_kbs_unwrap(const uint8_t enclave_priv[static 32], const uint8_t enclave_pub[static 32],
			  const uint8_t nonce[static MU_KBS_NONCE_LEN], const uint8_t measurement[static 32],
			  const uint8_t key_id[static MU_KBS_KEY_ID_LEN], const uint8_t eph_pub[static 32],
			  const uint8_t ciphertext[static 32], const uint8_t tag[static 16], uint8_t key[static 32],
			  struct mu_error *err)
{
	uint8_t shared[32], k[32], aad[LABEL_LEN + MU_KBS_KEY_ID_LEN];
	struct mu_gcm gcm;
	enum mu_err rc = mu_x25519(shared, enclave_priv, eph_pub, err);
	if (rc != MU_OK) {
		mu_errf(err, MU_ERR_AUTH, "the broker's ephemeral key is a low-order X25519 point");
		goto out;
	}
	derive(k, shared, nonce, eph_pub, enclave_pub, measurement);
	wrap_aad(aad, key_id);
	memcpy(key, ciphertext, 32);
	mu_gcm_init(&gcm, k, sizeof k);
	rc = mu_gcm_open(&gcm, zero_iv, sizeof zero_iv, aad, sizeof aad, key, 32, tag, 16);
	mu_gcm_free(&gcm);
	if (rc != MU_OK)
		mu_errf(err, MU_ERR_AUTH,
			"wrapped key failed authentication (wrapped for another key pair, nonce, measurement "
			"or key id, or altered in transit)");
out:
	mu_wipe(shared, sizeof shared);
	mu_wipe(k, sizeof k);
	if (rc != MU_OK)
		mu_wipe(key, 32);
	return rc;
}
