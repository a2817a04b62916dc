/* policy.c — strict parsing of the key broker's policy; see policy.h. */
#include "attest/policy.h"

#include <string.h>

#include "pal/pal.h"
#include "wire/json.h"

static const struct json_limits policy_limits = {
	.max_bytes = MU_POLICY_MAX_BYTES,
	.max_depth = 4,
	.max_tokens = 65536,
	.max_string = 4096,
	.max_number = 32,
	.flags = 0,
};

static const char *const root_fields[] = {"version", "allow_dev_evidence", "nonce_ttl_ms",
					  "max_egress_bytes_per_s", "max_egress_burst_bytes", "measurements"};
static const char *const entry_fields[] = {"key_ids", "note"};

static uint32_t need(const struct json_doc *d, uint32_t obj, const char *key, enum json_type type,
		     struct mu_error *err)
{
	uint32_t t = json_obj_get(d, obj, key);
	if (t == JSON_NONE) {
		mu_errf(err, MU_ERR_FORMAT, "missing \"%s\"", key);
		return JSON_NONE;
	}
	if (json_type(d, t) != (int)type) {
		mu_errf(err, MU_ERR_FORMAT, "\"%s\" must be %s", key, json_type_name(type));
		return JSON_NONE;
	}
	return t;
}

static enum mu_err parse_entry(struct mu_policy *p, const struct json_doc *d, uint32_t key, uint32_t val,
			       struct mu_error *err)
{
	const char *s;
	size_t n;
	char m_hex[65] = "?";
	struct mu_policy_entry *e = &p->m[p->n];

	if (p->n >= MU_POLICY_MAX_MEASUREMENTS)
		return mu_errf(err, MU_ERR_RANGE, "measurements: more than %u entries", MU_POLICY_MAX_MEASUREMENTS);
	if (!json_str_raw(d, key, &s, &n) || mu_kbs_unhex(s, n, e->measurement, 32) != 0)
		return mu_errf(err, MU_ERR_FORMAT, "measurements: key at offset %u must be 64 lower-case hex digits",
			       d->tok[key].start);
	memcpy(m_hex, s, 64);
	m_hex[64] = '\0';
	if (json_type(d, val) != JSON_OBJECT)
		return mu_errf(err, MU_ERR_FORMAT, "measurements.\"%s\" must be an object", m_hex);
	if (json_obj_only(d, val, entry_fields, 2, err) != MU_OK)
		return mu_err_prefix(err, "measurements.\"%s\"", m_hex);
	uint32_t note = json_obj_get(d, val, "note");
	if (note != JSON_NONE && (json_type(d, note) != JSON_STRING || json_str_len(d, note) > MU_POLICY_MAX_NOTE))
		return mu_errf(err, MU_ERR_FORMAT, "measurements.\"%s\".note must be a string of at most %u bytes",
			       m_hex, MU_POLICY_MAX_NOTE);
	uint32_t ids = need(d, val, "key_ids", JSON_ARRAY, err);
	if (ids == JSON_NONE)
		return mu_err_prefix(err, "measurements.\"%s\"", m_hex);
	uint32_t count = d->tok[ids].count;
	if (count == 0 || count > MU_POLICY_MAX_KEY_IDS)
		return mu_errf(err, MU_ERR_RANGE, "measurements.\"%s\".key_ids must list 1..%u key ids", m_hex,
			       MU_POLICY_MAX_KEY_IDS);
	struct json_iter it;
	uint32_t k, v;
	json_iter_init(&it, d, ids);
	while (json_iter_next(&it, &k, &v)) {
		uint8_t *id = e->key_ids[e->n_key_ids];
		if (json_type(d, v) != JSON_STRING || !json_str_raw(d, v, &s, &n) ||
		    mu_kbs_unhex(s, n, id, MU_KBS_KEY_ID_LEN) != 0)
			return mu_errf(err, MU_ERR_FORMAT, "measurements.\"%s\".key_ids[%u] must be 32 lower-case hex digits",
				       m_hex, e->n_key_ids);
		for (uint32_t j = 0; j < e->n_key_ids; j++)
			if (!memcmp(e->key_ids[j], id, MU_KBS_KEY_ID_LEN))
				return mu_errf(err, MU_ERR_FORMAT, "measurements.\"%s\".key_ids[%u] repeats key_ids[%u]",
					       m_hex, e->n_key_ids, j);
		e->n_key_ids++;
	}
	p->n++;
	return MU_OK;
}

static enum mu_err parse_doc(struct mu_policy *p, const struct json_doc *d, struct mu_error *err)
{
	int64_t v;
	uint32_t t;
	if (json_type(d, 0) != JSON_OBJECT)
		return mu_errf(err, MU_ERR_FORMAT, "the policy must be a JSON object");
	enum mu_err rc = json_obj_only(d, 0, root_fields, sizeof root_fields / sizeof root_fields[0], err);
	if (rc != MU_OK)
		return rc;
	if ((t = need(d, 0, "version", JSON_NUMBER, err)) == JSON_NONE)
		return MU_ERR_FORMAT;
	if (json_get_i64(d, t, &v, NULL) != MU_OK || v != MU_POLICY_VERSION)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "\"version\" must be %d", MU_POLICY_VERSION);
	if ((t = need(d, 0, "allow_dev_evidence", JSON_BOOL, err)) == JSON_NONE)
		return MU_ERR_FORMAT;
	json_get_bool(d, t, &p->allow_dev_evidence, NULL);
	if ((t = need(d, 0, "nonce_ttl_ms", JSON_NUMBER, err)) == JSON_NONE)
		return MU_ERR_FORMAT;
	if (json_get_int(d, t, 1, MU_KBS_MAX_NONCE_TTL_MS, &v, NULL) != MU_OK)
		return mu_errf(err, MU_ERR_RANGE, "\"nonce_ttl_ms\" must be an integer in 1..%u",
			       MU_KBS_MAX_NONCE_TTL_MS);
	p->nonce_ttl_ms = (uint32_t)v;
	if ((t = need(d, 0, "max_egress_bytes_per_s", JSON_NUMBER, err)) == JSON_NONE)
		return MU_ERR_FORMAT;
	if (json_get_int(d, t, 1, INT64_MAX, &p->max_egress_bytes_per_s, NULL) != MU_OK)
		return mu_errf(err, MU_ERR_RANGE, "\"max_egress_bytes_per_s\" must be an integer > 0");
	p->max_egress_burst_bytes = MU_POLICY_DEFAULT_MAX_BURST;
	if ((t = json_obj_get(d, 0, "max_egress_burst_bytes")) != JSON_NONE) {
		if (json_type(d, t) != JSON_NUMBER)
			return mu_errf(err, MU_ERR_FORMAT, "\"max_egress_burst_bytes\" must be %s",
				       json_type_name(JSON_NUMBER));
		if (json_get_int(d, t, 1, INT64_MAX, &p->max_egress_burst_bytes, NULL) != MU_OK)
			return mu_errf(err, MU_ERR_RANGE, "\"max_egress_burst_bytes\" must be an integer > 0");
	}
	if ((t = need(d, 0, "measurements", JSON_OBJECT, err)) == JSON_NONE)
		return MU_ERR_FORMAT;
	struct json_iter it;
	uint32_t k, val;
	json_iter_init(&it, d, t);
	while (json_iter_next(&it, &k, &val)) {
		if ((rc = parse_entry(p, d, k, val, err)) != MU_OK)
			return rc;
	}
	return MU_OK;
}

enum mu_err mu_policy_parse(struct mu_policy *p, const uint8_t *json, size_t len, struct mu_error *err)
{
	struct json_doc doc;
	size_t mem_len;
	memset(p, 0, sizeof *p);
	enum mu_err rc = json_mem_size(&policy_limits, len, &mem_len, err);
	if (rc != MU_OK)
		return rc;
	void *mem = pal_alloc(mem_len, 16);
	if (!mem)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory parsing the policy (%zu bytes)", mem_len);
	rc = json_parse(&doc, json, len, &policy_limits, mem, mem_len, err);
	if (rc == MU_OK)
		rc = parse_doc(p, &doc, err);
	pal_free(mem, mem_len);
	if (rc != MU_OK)
		memset(p, 0, sizeof *p);
	return rc;
}

const struct mu_policy_entry *mu_policy_find(const struct mu_policy *p, const uint8_t measurement[static 32])
{
	for (uint32_t i = 0; i < p->n; i++)
		if (!memcmp(p->m[i].measurement, measurement, 32))
			return &p->m[i];
	return NULL;
}

int mu_policy_allows_key(const struct mu_policy_entry *e, const uint8_t key_id[static MU_KBS_KEY_ID_LEN])
{
	for (uint32_t i = 0; i < e->n_key_ids; i++)
		if (!memcmp(e->key_ids[i], key_id, MU_KBS_KEY_ID_LEN))
			return 1;
	return 0;
}

enum mu_kbs_code mu_policy_check_egress(const struct mu_policy *p, const struct mu_egress_claim *c,
					struct mu_error *err)
{
	if (c->test_no_limit && !p->allow_dev_evidence) {
		mu_errf(err, MU_ERR_UNSUPPORTED,
			"the config holds test_no_egress_limit, a test-build key that turns the enclave's egress "
			"limiter off; only a policy with allow_dev_evidence releases to it");
		return MU_KBS_TEST_CONFIG_NOT_ALLOWED;
	}
	if (c->rate > p->max_egress_bytes_per_s) {
		mu_errf(err, MU_ERR_RANGE, "the config's egress_bytes_per_s %lld is above the policy's maximum %lld",
			(long long)c->rate, (long long)p->max_egress_bytes_per_s);
		return MU_KBS_EGRESS_CAP_TOO_HIGH;
	}
	if (c->burst > p->max_egress_burst_bytes) {
		if (c->burst_given)
			mu_errf(err, MU_ERR_RANGE,
				"the config's egress_burst_bytes %lld is above the policy's max_egress_burst_bytes %lld",
				(long long)c->burst, (long long)p->max_egress_burst_bytes);
		else
			mu_errf(err, MU_ERR_RANGE,
				"the config sets no egress_burst_bytes, and the enclave's default burst %lld is above "
				"the policy's max_egress_burst_bytes %lld",
				(long long)c->burst, (long long)p->max_egress_burst_bytes);
		return MU_KBS_EGRESS_CAP_TOO_HIGH;
	}
	return MU_KBS_OK;
}
