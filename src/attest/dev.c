/* dev.c — the `dev` evidence format: the enclave states its claims and nothing signs them.
 *
 *     "claims": {"binary_sha256": <64 hex>, "config": <the config file's bytes as a JSON string>,
 *                "sealed_header_sha256": <64 hex>}
 *
 * Verification recomputes measurement v1 from the claims and compares it with the claimed
 * measurement. That catches a confused or lying client, never a malicious one: anyone can
 * write claims that hash to an allowed measurement. Insecure by design; development only. */
#include <string.h>

#include "attest/evidence.h"
#include "seal/crypto.h"

static const char *const dev_fields[] = {"claims"};
static const char *const claim_fields[] = {"binary_sha256", "config", "sealed_header_sha256"};

static enum mu_kbs_code hex_claim(const struct json_doc *doc, uint32_t claims, const char *name, uint8_t out[32],
				  struct mu_error *err)
{
	const char *s;
	size_t n;
	uint32_t t = json_obj_get(doc, claims, name);
	if (t == JSON_NONE || json_type(doc, t) != JSON_STRING) {
		mu_errf(err, MU_ERR_FORMAT, "claims.%s is missing or not a string", name);
		return MU_KBS_BAD_MESSAGE;
	}
	if (!json_str_raw(doc, t, &s, &n) || mu_kbs_unhex(s, n, out, 32) != 0) {
		mu_errf(err, MU_ERR_FORMAT, "claims.%s must be 64 lower-case hex digits", name);
		return MU_KBS_BAD_MESSAGE;
	}
	return MU_KBS_OK;
}

static enum mu_kbs_code dev_verify(const struct mu_evidence_in *in, uint8_t *scratch, size_t scratch_len,
				   struct mu_evidence *out, struct mu_error *err)
{
	const struct json_doc *doc = in->doc;
	enum mu_kbs_code c;
	memset(out, 0, sizeof *out);
	uint32_t claims = json_obj_get(doc, in->obj, "claims");
	if (claims == JSON_NONE || json_type(doc, claims) != JSON_OBJECT) {
		mu_errf(err, MU_ERR_FORMAT, "dev evidence needs a \"claims\" object");
		return MU_KBS_BAD_MESSAGE;
	}
	if (json_obj_only(doc, claims, claim_fields, sizeof claim_fields / sizeof claim_fields[0], err) != MU_OK) {
		mu_err_prefix(err, "claims");
		return MU_KBS_BAD_MESSAGE;
	}
	if ((c = hex_claim(doc, claims, "binary_sha256", out->binary_sha256, err)) != MU_KBS_OK ||
	    (c = hex_claim(doc, claims, "sealed_header_sha256", out->sealed_header_sha256, err)) != MU_KBS_OK)
		return c;
	uint32_t t = json_obj_get(doc, claims, "config");
	if (t == JSON_NONE || json_type(doc, t) != JSON_STRING) {
		mu_errf(err, MU_ERR_FORMAT, "claims.config is missing or not a string");
		return MU_KBS_BAD_MESSAGE;
	}
	size_t n = 0;
	if (doc->tok[t].flags & JSON_TOK_NUL) {
		mu_errf(err, MU_ERR_FORMAT, "claims.config contains a NUL character");
		return MU_KBS_BAD_MESSAGE;
	}
	if (json_str_decode(doc, t, (char *)scratch, scratch_len, &n, err) != MU_OK) {
		mu_errf(err, MU_ERR_RANGE, "claims.config is too long (%u bytes)", json_str_len(doc, t));
		return MU_KBS_BAD_MESSAGE;
	}
	out->config = scratch;
	out->config_len = n;
	mu_measure(out->binary_sha256, out->config, out->config_len, out->sealed_header_sha256, out->measurement);
	if (!mu_ct_eq(out->measurement, in->measurement, 32)) {
		mu_errf(err, MU_ERR_AUTH,
			"the claims do not hash to the claimed measurement (measurement v1 of binary_sha256, "
			"config and sealed_header_sha256)");
		return MU_KBS_MEASUREMENT_MISMATCH;
	}
	return MU_KBS_OK;
}

const struct mu_evidence_format mu_evidence_dev = {
	.name = "dev",
	.insecure = 1,
	.fields = dev_fields,
	.n_fields = sizeof dev_fields / sizeof dev_fields[0],
	.verify = dev_verify,
};
