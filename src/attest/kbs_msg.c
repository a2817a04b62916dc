/* kbs_msg.c — the enclave side of the key broker protocol: building hello and dev evidence,
 * and parsing the broker's challenge, key and refused messages strictly (see kbs_proto.h). */
#include <string.h>

#include "attest/kbs_proto.h"
#include "base/limits.h"
#include "wire/json.h"
#include "wire/json_write.h"

static enum mu_err finish(struct jsonw *w, size_t *len, const char *what, struct mu_error *err)
{
	enum mu_err rc = jsonw_finish(w, len);
	if (rc == MU_ERR_NOMEM)
		return mu_errf(err, rc, "%s message does not fit in %zu bytes", what, w->cap);
	if (rc != MU_OK)
		return mu_errf(err, rc, "%s message: a string is not valid UTF-8", what);
	return MU_OK;
}

enum mu_err mu_kbs_msg_hello(char *buf, size_t cap, size_t *len, struct mu_error *err)
{
	struct jsonw w;
	jsonw_init(&w, buf, cap);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "hello");
	jsonw_int(&w, "version", MU_KBS_VERSION);
	jsonw_end(&w);
	return finish(&w, len, "hello", err);
}

enum mu_err mu_kbs_msg_evidence_dev(char *buf, size_t cap, size_t *len, const uint8_t nonce[static MU_KBS_NONCE_LEN],
				    const uint8_t pubkey[static 32], const uint8_t measurement[static 32],
				    const uint8_t key_id[static MU_KBS_KEY_ID_LEN], const struct mu_dev_claims *c,
				    struct mu_error *err)
{
	struct jsonw w;
	jsonw_init(&w, buf, cap);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "evidence");
	jsonw_str(&w, "format", "dev");
	jsonw_hex(&w, "nonce", nonce, MU_KBS_NONCE_LEN);
	jsonw_hex(&w, "pubkey", pubkey, 32);
	jsonw_hex(&w, "measurement", measurement, 32);
	jsonw_hex(&w, "key_id", key_id, MU_KBS_KEY_ID_LEN);
	jsonw_begin(&w, "claims");
	jsonw_hex(&w, "binary_sha256", c->binary_sha256, 32);
	jsonw_strn(&w, "config", c->config, c->config_len);
	jsonw_hex(&w, "sealed_header_sha256", c->sealed_header_sha256, 32);
	jsonw_end(&w);
	jsonw_end(&w);
	return finish(&w, len, "evidence", err);
}

static const struct json_limits reply_limits = {
	.max_bytes = MU_KBS_MAX_FRAME,
	.max_depth = 1,
	.max_tokens = 32,
	.max_string = MU_KBS_MESSAGE_MAX,
	.max_number = 24,
	.flags = 0,
};

static const char *const challenge_fields[] = {"type", "nonce", "expires_in_ms"};
static const char *const key_fields[] = {"type", "key_id", "eph_pub", "ciphertext", "tag", "insecure", "message"};
static const char *const refused_fields[] = {"type", "code", "message"};

static enum mu_err get_hex(const struct json_doc *d, const char *name, uint8_t *out, size_t n, struct mu_error *err)
{
	const char *s;
	size_t sn;
	uint32_t t = json_obj_get(d, 0, name);
	if (t == JSON_NONE || json_type(d, t) != JSON_STRING || !json_str_raw(d, t, &s, &sn) ||
	    mu_kbs_unhex(s, sn, out, n) != 0)
		return mu_errf(err, MU_ERR_FORMAT, "broker message: \"%s\" must be %zu lower-case hex digits", name,
			       2 * n);
	return MU_OK;
}

static enum mu_err get_text(const struct json_doc *d, const char *name, char *out, size_t cap, struct mu_error *err)
{
	uint32_t t = json_obj_get(d, 0, name);
	if (t == JSON_NONE || json_type(d, t) != JSON_STRING || (d->tok[t].flags & JSON_TOK_NUL) ||
	    json_str_decode(d, t, out, cap, NULL, NULL) != MU_OK)
		return mu_errf(err, MU_ERR_FORMAT, "broker message: \"%s\" must be a string of at most %zu bytes", name,
			       cap - 1);
	return MU_OK;
}

static enum mu_err parse_doc(struct mu_kbs_reply_msg *m, const struct json_doc *d, struct mu_error *err)
{
	enum mu_err rc;
	uint32_t t;
	if (json_type(d, 0) != JSON_OBJECT)
		return mu_errf(err, MU_ERR_FORMAT, "broker message is not a JSON object");
	t = json_obj_get(d, 0, "type");
	if (t == JSON_NONE || json_type(d, t) != JSON_STRING)
		return mu_errf(err, MU_ERR_FORMAT, "broker message has no \"type\" string");
	if (json_str_eq(d, t, "challenge")) {
		m->type = MU_KBS_MSG_CHALLENGE;
		if ((rc = json_obj_only(d, 0, challenge_fields, 3, err)) != MU_OK ||
		    (rc = get_hex(d, "nonce", m->nonce, MU_KBS_NONCE_LEN, err)) != MU_OK)
			return rc;
		t = json_obj_get(d, 0, "expires_in_ms");
		if (t == JSON_NONE || json_get_int(d, t, 1, MU_KBS_MAX_NONCE_TTL_MS, &m->expires_in_ms, NULL) != MU_OK)
			return mu_errf(err, MU_ERR_FORMAT, "broker message: \"expires_in_ms\" must be an integer in 1..%u",
				       MU_KBS_MAX_NONCE_TTL_MS);
		return MU_OK;
	}
	if (json_str_eq(d, t, "key")) {
		m->type = MU_KBS_MSG_KEY;
		if ((rc = json_obj_only(d, 0, key_fields, 7, err)) != MU_OK ||
		    (rc = get_hex(d, "key_id", m->key_id, MU_KBS_KEY_ID_LEN, err)) != MU_OK ||
		    (rc = get_hex(d, "eph_pub", m->wrapped.eph_pub, 32, err)) != MU_OK ||
		    (rc = get_hex(d, "ciphertext", m->wrapped.ciphertext, 32, err)) != MU_OK ||
		    (rc = get_hex(d, "tag", m->wrapped.tag, 16, err)) != MU_OK ||
		    (rc = get_text(d, "message", m->message, sizeof m->message, err)) != MU_OK)
			return rc;
		t = json_obj_get(d, 0, "insecure");
		if (t == JSON_NONE || json_get_bool(d, t, &m->insecure, NULL) != MU_OK)
			return mu_errf(err, MU_ERR_FORMAT, "broker message: \"insecure\" must be a boolean");
		return MU_OK;
	}
	if (json_str_eq(d, t, "refused")) {
		m->type = MU_KBS_MSG_REFUSED;
		if ((rc = json_obj_only(d, 0, refused_fields, 3, err)) != MU_OK ||
		    (rc = get_text(d, "code", m->code_name, sizeof m->code_name, err)) != MU_OK ||
		    (rc = get_text(d, "message", m->message, sizeof m->message, err)) != MU_OK)
			return rc;
		size_t n = strlen(m->code_name);
		m->code = mu_kbs_code_from_name(m->code_name, n);
		for (size_t i = 0; i < n; i++)
			if ((uint8_t)m->code_name[i] < 0x20 || (uint8_t)m->code_name[i] > 0x7e)
				m->code_name[i] = '?';
		if (m->code == MU_KBS_OK)
			return mu_errf(err, MU_ERR_FORMAT, "broker message: a refusal with code \"ok\"");
		return MU_OK;
	}
	return mu_errf(err, MU_ERR_FORMAT, "broker message of unknown type");
}

enum mu_err mu_kbs_msg_parse(struct mu_kbs_reply_msg *m, const uint8_t *body, size_t len, struct mu_error *err)
{
	/* 32 tokens of 20 bytes, their duplicate-key table and a one-level stack fit easily */
	_Alignas(16) uint8_t mem[2048];
	size_t need;
	struct json_doc d;
	enum mu_err rc;
	memset(m, 0, sizeof *m);
	if ((rc = json_mem_size(&reply_limits, len, &need, err)) != MU_OK)
		return rc;
	if (need > sizeof mem)
		return mu_errf(err, MU_ERR_INTERNAL, "broker message: parser needs %zu bytes of scratch", need);
	rc = json_parse(&d, body, len, &reply_limits, mem, sizeof mem, err);
	if (rc != MU_OK)
		return mu_err_prefix(err, "broker message");
	rc = parse_doc(m, &d, err);
	if (rc != MU_OK) {
		memset(m, 0, sizeof *m);
		return rc;
	}
	return MU_OK;
}
