/* evidence.c — measurement v1, the table of evidence formats, and the enclave config's egress
 * cap; see evidence.h. */
#include "attest/evidence.h"

#include <string.h>

#include "base/limits.h"
#include "seal/crypto.h"

void mu_measure(const uint8_t binary_sha256[static 32], const uint8_t *config, size_t config_len,
		const uint8_t sealed_header_sha256[static 32], uint8_t out[static 32])
{
	static const uint8_t label[] = MU_MEASUREMENT_LABEL; /* with its NUL: the 0x00 separator */
	uint8_t config_sha256[32];
	struct mu_sha256_ctx s;
	mu_sha256(config, config_len, config_sha256);
	mu_sha256_init(&s);
	mu_sha256_update(&s, label, sizeof label);
	mu_sha256_update(&s, binary_sha256, 32);
	mu_sha256_update(&s, config_sha256, 32);
	mu_sha256_update(&s, sealed_header_sha256, 32);
	mu_sha256_final(&s, out);
}

const char *const mu_evidence_common_fields[6] = {"type", "format", "nonce", "pubkey", "measurement", "key_id"};

/* A TPM 2.0 quote format joins this table. */
static const struct mu_evidence_format *const formats[] = {
	&mu_evidence_dev,
};

const struct mu_evidence_format *mu_evidence_format_find(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
		if (strlen(formats[i]->name) == n && memcmp(formats[i]->name, name, n) == 0)
			return formats[i];
	return NULL;
}

const struct mu_evidence_format *mu_evidence_format_at(size_t i)
{
	return i < sizeof formats / sizeof formats[0] ? formats[i] : NULL;
}

static const struct json_limits config_limits = {
	.max_bytes = MU_KBS_MAX_FRAME,
	.max_depth = MU_CONFIG_MAX_DEPTH,
	.max_tokens = MU_CONFIG_MAX_TOKENS,
	.max_string = MU_KBS_MAX_FRAME,
	.max_number = 64,
	.flags = 0,
};

enum mu_err mu_config_mem_size(size_t *size, struct mu_error *err)
{
	return json_mem_size(&config_limits, MU_KBS_MAX_FRAME, size, err);
}

enum mu_kbs_code mu_config_egress(const uint8_t *config, size_t len, void *mem, size_t mem_len,
				  struct mu_egress_claim *out, struct mu_error *err)
{
	struct json_doc doc;
	struct mu_egress_claim c = {.burst = MU_EGRESS_DEFAULT_BURST};
	memset(out, 0, sizeof *out);
	if (json_parse(&doc, config, len, &config_limits, mem, mem_len, err) != MU_OK) {
		mu_err_prefix(err, "config claim is not valid JSON");
		return MU_KBS_BAD_MESSAGE;
	}
	if (json_type(&doc, 0) != JSON_OBJECT) {
		mu_errf(err, MU_ERR_FORMAT, "config claim is not a JSON object");
		return MU_KBS_BAD_MESSAGE;
	}
	uint32_t t = json_obj_get(&doc, 0, "egress_bytes_per_s");
	if (t == JSON_NONE) {
		mu_errf(err, MU_ERR_FORMAT, "config has no egress_bytes_per_s (the enclave must cap its egress)");
		return MU_KBS_EGRESS_CAP_MISSING;
	}
	if (json_get_int(&doc, t, 1, INT64_MAX, &c.rate, err) != MU_OK) {
		mu_errf(err, MU_ERR_FORMAT, "config: egress_bytes_per_s must be an integer > 0");
		return MU_KBS_BAD_MESSAGE;
	}
	t = json_obj_get(&doc, 0, "egress_burst_bytes");
	if (t != JSON_NONE) {
		if (json_get_int(&doc, t, 1, INT64_MAX, &c.burst, err) != MU_OK) {
			mu_errf(err, MU_ERR_FORMAT, "config: egress_burst_bytes must be an integer > 0");
			return MU_KBS_BAD_MESSAGE;
		}
		c.burst_given = 1;
	}
	/* any value: the release build refuses the key, the test build reads it; either way a
	 * config that names it was written for the test build */
	c.test_no_limit = json_obj_get(&doc, 0, "test_no_egress_limit") != JSON_NONE;
	*out = c;
	return MU_KBS_OK;
}
