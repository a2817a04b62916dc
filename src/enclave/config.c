/* config.c — strict parsing of the enclave config (see config.h). */
#include "enclave/config.h"

#include <string.h>

#include "pal/net.h"
#include "pal/pal.h"
#include "wire/json.h"

static const struct json_limits cfg_limits = MU_ENCLAVE_CONFIG_JSON_LIMITS;

static const char *const cfg_members[] = {
	"model",      "channel", "egress_bytes_per_s", "egress_burst_bytes", "max_tokens", "n_ctx",
	"threads",    "read_timeout_ms", "name",       "secretmem",          "v0_unlock_key_file",
#ifdef MU_ENCLAVE_TEST
	"test_no_egress_limit",
#endif
};

int mu_enclave_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > MU_WIRE_MAX_MODEL_NAME)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* A string member into buf (NUL-terminated, no NUL inside, 1..cap-1 bytes). */
static enum mu_err get_string(const struct json_doc *d, uint32_t t, const char *name, char *buf, size_t cap,
			      struct mu_error *err)
{
	size_t n = 0;
	if (json_type(d, t) != JSON_STRING)
		return mu_errf(err, MU_ERR_FORMAT, "config: \"%s\" must be a string", name);
	if (d->tok[t].flags & JSON_TOK_NUL)
		return mu_errf(err, MU_ERR_FORMAT, "config: \"%s\" must not contain a NUL character", name);
	if (json_str_len(d, t) + 1 > cap || json_str_decode(d, t, buf, cap, &n, NULL) != MU_OK)
		return mu_errf(err, MU_ERR_RANGE, "config: \"%s\" is longer than %zu bytes", name, cap - 1);
	if (n == 0)
		return mu_errf(err, MU_ERR_FORMAT, "config: \"%s\" must not be empty", name);
	return MU_OK;
}

static enum mu_err get_int(const struct json_doc *d, uint32_t t, const char *name, int64_t lo, int64_t hi,
			   uint64_t *out, struct mu_error *err)
{
	int64_t v;
	if (json_type(d, t) != JSON_NUMBER)
		return mu_errf(err, MU_ERR_FORMAT, "config: \"%s\" must be an integer", name);
	if (json_get_int(d, t, lo, hi, &v, NULL) != MU_OK)
		return mu_errf(err, MU_ERR_RANGE, "config: \"%s\" must be an integer in %lld..%lld", name, (long long)lo,
			       (long long)hi);
	*out = (uint64_t)v;
	return MU_OK;
}

static enum mu_err get_bool(const struct json_doc *d, uint32_t t, const char *name, int *out, struct mu_error *err)
{
	if (json_get_bool(d, t, out, NULL) != MU_OK)
		return mu_errf(err, MU_ERR_FORMAT, "config: \"%s\" must be true or false", name);
	return MU_OK;
}

static enum mu_err check_channel(struct mu_enclave_cfg *c, struct mu_error *err)
{
	const char *s = c->channel;
	if (!strncmp(s, "unix:", 5) || !strncmp(s, "tcp:", 4)) {
		if (strlen(s) >= PAL_NET_ADDR_MAX)
			return mu_errf(err, MU_ERR_RANGE, "config: \"channel\" is longer than %u bytes",
				       PAL_NET_ADDR_MAX - 1);
		if (s[0] == 'u' ? s[5] == '\0' : s[4] == '\0')
			return mu_errf(err, MU_ERR_FORMAT, "config: \"channel\" names no address");
		c->channel_kind = MU_CHANNEL_LISTEN;
		return MU_OK;
	}
	if (!strncmp(s, "dev:", 4)) {
		if (s[4] == '\0')
			return mu_errf(err, MU_ERR_FORMAT, "config: \"channel\" dev: names no device");
		c->channel_kind = MU_CHANNEL_DEV;
		c->dev_path = s + 4;
		return MU_OK;
	}
	return mu_errf(err, MU_ERR_FORMAT, "config: \"channel\" must start with unix:, tcp: or dev:");
}

/* Members in their fixed order; each is checked, then stored. */
static enum mu_err parse_members(struct mu_enclave_cfg *c, const struct json_doc *d, int v0, struct mu_error *err)
{
	enum mu_err rc;
	uint32_t t;
	uint64_t v;

	if ((rc = json_obj_only(d, 0, cfg_members, sizeof cfg_members / sizeof cfg_members[0], err))) {
		mu_err_prefix(err, "config");
		return rc;
	}

	if ((t = json_obj_get(d, 0, "model")) == JSON_NONE)
		return mu_errf(err, MU_ERR_FORMAT, "config: \"model\" (the sealed model's path) is required");
	if ((rc = get_string(d, t, "model", c->model, sizeof c->model, err)))
		return rc;
	if ((t = json_obj_get(d, 0, "channel")) == JSON_NONE)
		return mu_errf(err, MU_ERR_FORMAT, "config: \"channel\" (unix:PATH, tcp:HOST:PORT or dev:PATH) is required");
	if ((rc = get_string(d, t, "channel", c->channel, sizeof c->channel, err)) || (rc = check_channel(c, err)))
		return rc;
	if ((t = json_obj_get(d, 0, "egress_bytes_per_s")) == JSON_NONE)
		return mu_errf(err, MU_ERR_FORMAT, "config: \"egress_bytes_per_s\" (the egress cap) is required");
	if ((rc = get_int(d, t, "egress_bytes_per_s", 1, (int64_t)MU_EGRESS_MAX_RATE, &c->egress_bytes_per_s, err)))
		return rc;
	if ((t = json_obj_get(d, 0, "egress_burst_bytes")) != JSON_NONE &&
	    (rc = get_int(d, t, "egress_burst_bytes", 1, (int64_t)MU_EGRESS_MAX_BURST, &c->egress_burst_bytes, err)))
		return rc;
	if ((t = json_obj_get(d, 0, "max_tokens")) != JSON_NONE) {
		if ((rc = get_int(d, t, "max_tokens", 1, MU_WIRE_MAX_GEN_TOKENS, &v, err)))
			return rc;
		c->max_tokens = (uint32_t)v;
	}
	if ((t = json_obj_get(d, 0, "n_ctx")) != JSON_NONE) {
		if ((rc = get_int(d, t, "n_ctx", 1, MU_MAX_CTX, &v, err)))
			return rc;
		c->n_ctx = (uint32_t)v;
	}
	if ((t = json_obj_get(d, 0, "threads")) != JSON_NONE) {
		if ((rc = get_int(d, t, "threads", 1, MU_MAX_THREADS, &v, err)))
			return rc;
		c->threads = (uint32_t)v;
	}
	if ((t = json_obj_get(d, 0, "read_timeout_ms")) != JSON_NONE) {
		if ((rc = get_int(d, t, "read_timeout_ms", 1, MU_ENCLAVE_MAX_READ_TIMEOUT_MS, &v, err)))
			return rc;
		c->read_timeout_ms = (uint32_t)v;
	}
	if ((t = json_obj_get(d, 0, "name")) != JSON_NONE) {
		if ((rc = get_string(d, t, "name", c->name, sizeof c->name, err)))
			return rc;
		if (!mu_enclave_name_ok(c->name, strlen(c->name)))
			return mu_errf(err, MU_ERR_FORMAT, "config: \"name\" must be 1..%u printable ASCII characters",
				       MU_WIRE_MAX_MODEL_NAME);
	}
	if ((t = json_obj_get(d, 0, "secretmem")) != JSON_NONE && (rc = get_bool(d, t, "secretmem", &c->secretmem, err)))
		return rc;
	if ((t = json_obj_get(d, 0, "v0_unlock_key_file")) != JSON_NONE) {
		if (!v0)
			return mu_errf(err, MU_ERR_FORMAT,
				       "config: \"v0_unlock_key_file\" is only allowed with --protocol v0");
		if ((rc = get_string(d, t, "v0_unlock_key_file", c->v0_key_file, sizeof c->v0_key_file, err)))
			return rc;
	} else if (v0) {
		return mu_errf(err, MU_ERR_FORMAT, "config: --protocol v0 needs \"v0_unlock_key_file\"");
	}
#ifdef MU_ENCLAVE_TEST
	if ((t = json_obj_get(d, 0, "test_no_egress_limit")) != JSON_NONE &&
	    (rc = get_bool(d, t, "test_no_egress_limit", &c->no_egress_limit, err)))
		return rc;
#endif
	return MU_OK;
}

enum mu_err mu_enclave_cfg_parse(struct mu_enclave_cfg *c, const uint8_t *config, size_t len, int v0,
				 struct mu_error *err)
{
	enum mu_err rc;
	struct json_doc d;
	size_t mem_len = 0;
	void *mem;

	memset(c, 0, sizeof *c);
	c->egress_burst_bytes = MU_EGRESS_DEFAULT_BURST;
	c->max_tokens = MU_ENCLAVE_DEFAULT_MAX_TOKENS;
	c->threads = 1;
	c->read_timeout_ms = MU_WIRE_READ_TIMEOUT_MS;
	if (len > MU_ENCLAVE_CONFIG_MAX)
		return mu_errf(err, MU_ERR_RANGE, "config: %zu bytes, the limit is %u", len, MU_ENCLAVE_CONFIG_MAX);
	if ((rc = json_mem_size(&cfg_limits, len, &mem_len, err)))
		return rc;
	if (!(mem = pal_alloc(mem_len, 16)))
		return mu_errf(err, MU_ERR_NOMEM, "config: out of memory");
	if ((rc = json_parse(&d, config, len, &cfg_limits, mem, mem_len, err))) {
		mu_err_prefix(err, "config is not one strict JSON object");
		goto out;
	}
	if (json_type(&d, 0) != JSON_OBJECT) {
		rc = mu_errf(err, MU_ERR_FORMAT, "config: must be a JSON object");
		goto out;
	}
	rc = parse_members(c, &d, v0, err);
out:
	pal_free(mem, mem_len);
	return rc;
}
