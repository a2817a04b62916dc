/* v0.c — the seed prototype's protocol, kept as an insecure compatibility mode
 * (`--protocol v0`, docs/protocol.md, last section). Same framing as v1:
 *
 *   enclave -> {"measurement": HEX}
 *   host    -> {"nonce": 24 hex, "tag": 32 hex, "ciphertext": 64 hex}
 *              the model key under AES-256-GCM with the pre-shared key, empty AAD
 *   enclave -> {"status": "ready"}           or {"error": "..."} and the connection closes
 *   host    -> {"prompt": TEXT, "max_new_tokens": N}
 *   enclave -> {"completion": TEXT, "elapsed_ms": N}   (greedy), or {"error": "..."}; repeated
 *
 * Both directions are strict JSON objects with exactly these members. Every frame still
 * leaves through the egress limiter. A completion is cut short (at a token boundary) when it
 * would not fit in one frame.
 */
#include <string.h>

#include "enclave/enclave.h"
#include "seal/crypto.h"
#include "wire/json.h"
#include "wire/json_write.h"

#define V0_MARGIN 64 /* bytes of a completion frame that are not the completion */

static const struct json_limits v0_limits = {
	.max_bytes = MU_WIRE_MAX_FRAME,
	.max_depth = 1,
	.max_tokens = 16,
	.max_string = MU_WIRE_MAX_FRAME,
	.max_number = MU_WIRE_MAX_NUMBER,
	.flags = 0,
};

/* Finishes a jsonw document at e->out + 4 and sends it. */
static enum mu_err send_doc(struct mu_enclave *e, struct jsonw *w)
{
	size_t len = 0;
	if (jsonw_finish(w, &len) != MU_OK)
		return MU_ERR_INTERNAL;
	return mu_enclave_send(e, len, NULL);
}

static enum mu_err send_v0_error(struct mu_enclave *e, const char *message)
{
	struct jsonw w;
	jsonw_init(&w, (char *)e->out + MU_FRAME_HDR, MU_ENCLAVE_OUT_CAP - MU_FRAME_HDR);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "error", message);
	jsonw_end(&w);
	return send_doc(e, &w);
}

/* Reads one frame. 1: a body; 0: the connection ends (answered when it was a framing error). */
static int read_body(struct mu_enclave *e, const uint8_t **body, size_t *len)
{
	enum mu_chan_rc rc = mu_chan_read(&e->ch, -1);
	if (rc == MU_CHAN_FRAME) {
		*body = mu_chan_body(&e->ch, len);
		return 1;
	}
	if (rc == MU_CHAN_TIMEOUT)
		send_v0_error(e, "timeout: a frame was begun but not finished in time");
	else if (rc == MU_CHAN_BAD_FRAME)
		send_v0_error(e, "bad_frame: frame of length 0");
	else if (rc == MU_CHAN_TOO_LARGE)
		send_v0_error(e, "frame_too_large: frame longer than 1048576 bytes");
	return 0;
}

/* Parses body as one strict object with exactly the members names[0..n). */
static const char *parse_obj(struct mu_enclave *e, struct json_doc *d, const uint8_t *body, size_t len,
			     const char *const *names, size_t n)
{
	if (json_parse(d, body, len, &v0_limits, e->msg_mem, e->msg_mem_len, NULL) != MU_OK ||
	    json_type(d, 0) != JSON_OBJECT)
		return "bad_json: not one strict JSON object";
	if (json_obj_only(d, 0, names, n, NULL) != MU_OK)
		return "bad_message: unknown member";
	for (size_t i = 0; i < n; i++)
		if (json_obj_get(d, 0, names[i]) == JSON_NONE)
			return "bad_message: missing member";
	return NULL;
}

/* A lower-case hex member of exactly n bytes into out. */
static int get_hex(const struct json_doc *d, const char *name, uint8_t *out, size_t n)
{
	const char *s;
	size_t sn;
	uint32_t t = json_obj_get(d, 0, name);
	if (json_type(d, t) != JSON_STRING || !json_str_raw(d, t, &s, &sn))
		return -1;
	return mu_kbs_unhex(s, sn, out, n);
}

/* Steps 2 and 3: the unlock token. 1 when the enclave is ready. */
static int v0_unlock(struct mu_enclave *e, enum mu_session_rc *rc)
{
	static const char *const names[] = {"nonce", "tag", "ciphertext"};
	const uint8_t *body;
	size_t len;
	struct json_doc d;
	uint8_t nonce[12], tag[16];
	struct mu_error err = {0};
	const char *why;

	if (!read_body(e, &body, &len))
		return 0;
	if ((why = parse_obj(e, &d, body, len, names, 3))) {
		send_v0_error(e, why);
		return 0;
	}
	if (get_hex(&d, "nonce", nonce, sizeof nonce) || get_hex(&d, "tag", tag, sizeof tag) ||
	    get_hex(&d, "ciphertext", e->sec->key, sizeof e->sec->key)) {
		mu_wipe(e->sec->key, sizeof e->sec->key);
		send_v0_error(e, "bad_message: nonce, tag and ciphertext must be 24, 32 and 64 lower-case hex digits");
		return 0;
	}
	mu_chan_next(&e->ch);
	enum mu_err r = mu_gcm_init(&e->sec->gcm, e->sec->psk, sizeof e->sec->psk);
	if (r == MU_OK)
		r = mu_gcm_open(&e->sec->gcm, nonce, sizeof nonce, NULL, 0, e->sec->key, sizeof e->sec->key, tag, sizeof tag);
	mu_gcm_free(&e->sec->gcm);
	if (r != MU_OK) {
		mu_wipe(e->sec->key, sizeof e->sec->key);
		mu_enclave_log("v0 unlock refused: the token does not decrypt under the pre-shared key");
		send_v0_error(e, "unlock_failed: the token does not decrypt");
		return 0;
	}
	switch (mu_enclave_unlock(e, &err)) {
	case MU_UNLOCK_OK:
		break;
	case MU_UNLOCK_REFUSED:
		send_v0_error(e, "unlock_failed: the key does not open the sealed model");
		return 0;
	case MU_UNLOCK_INTERNAL:
		send_v0_error(e, "internal: the model could not be loaded");
		return 0;
	case MU_UNLOCK_FATAL:
	default:
		send_v0_error(e, "internal: the enclave cannot continue");
		*rc = MU_SESSION_FATAL;
		return 0;
	}
	struct jsonw w;
	jsonw_init(&w, (char *)e->out + MU_FRAME_HDR, MU_ENCLAVE_OUT_CAP - MU_FRAME_HDR);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "status", "ready");
	jsonw_end(&w);
	return send_doc(e, &w) == MU_OK;
}

/* Bytes text[0..n) takes inside a JSON string, at most. */
static size_t escaped_len(const uint8_t *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += p[i] == '"' || p[i] == '\\' ? 2 : p[i] < 0x20 ? 6 : 1;
	return k;
}

/* Step 4, one request. 0 when the connection must end. */
static int v0_request(struct mu_enclave *e, const uint8_t *body, size_t len)
{
	static const char *const names[] = {"prompt", "max_new_tokens"};
	struct mu_infer *inf = &e->inf;
	struct json_doc d;
	struct mu_error err = {0};
	int64_t max_new = 0;
	size_t prompt_len = 0;
	const char *why;
	uint64_t t0 = pal_now_ns();

	if ((why = parse_obj(e, &d, body, len, names, 2)))
		return send_v0_error(e, why) == MU_OK;
	uint32_t tp = json_obj_get(&d, 0, "prompt"), tn = json_obj_get(&d, 0, "max_new_tokens");
	if (json_type(&d, tp) != JSON_STRING || json_type(&d, tn) != JSON_NUMBER)
		return send_v0_error(e, "bad_message: prompt must be a string, max_new_tokens an integer") == MU_OK;
	if (json_get_int(&d, tn, 1, e->cfg.max_tokens, &max_new, NULL) != MU_OK)
		return send_v0_error(e, "bad_request: max_new_tokens is out of range") == MU_OK;
	if (json_str_decode(&d, tp, e->text, (size_t)MU_WIRE_MAX_FRAME + 1, &prompt_len, NULL) != MU_OK)
		return send_v0_error(e, "bad_message: prompt does not decode") == MU_OK;
	enum mu_wire_code code = mu_infer_encode_text(inf, e->text, prompt_len, &err);
	mu_wipe(e->text, prompt_len);
	if (code != MU_WIRE_OK)
		return send_v0_error(e, code == MU_WIRE_PROMPT_TOO_LONG ? "prompt_too_long: the prompt does not fit the context"
									: "bad_request: the prompt cannot be used") == MU_OK;
	struct mu_sampler_config sc;
	mu_sampler_config_default(&sc);
	sc.temperature = 0.0f; /* v0 is greedy */
	sc.top_k = 0;
	sc.top_p = 1.0f;
	sc.min_p = 0.0f;
	sc.repeat_penalty = 1.0f;
	/* v0 has no cancel: the prompt is evaluated in one go */
	enum mu_err rc = mu_infer_start(inf, &sc, (uint32_t)max_new, &err);
	for (int fed = 0; rc == MU_OK && !fed;)
		rc = mu_infer_prefill(inf, &fed, &err);
	if (rc != MU_OK) {
		mu_enclave_log("v0 generation failed to start: %s", err.msg);
		return send_v0_error(e, "internal: the prompt could not be evaluated") == MU_OK;
	}
	/* the completion accumulates in e->text, as long as its JSON spelling fits one frame */
	size_t n_text = 0, n_esc = 0, room = MU_WIRE_MAX_FRAME - V0_MARGIN;
	for (int last = 0; !last;) {
		const uint8_t *piece;
		size_t n = 0;
		int done = 0;
		enum mu_finish finish;
		enum mu_err r = mu_infer_step(inf, &piece, &n, &done, &finish, &err);
		if (r == MU_OK && done) {
			r = mu_infer_flush(inf, &piece, &n, &err);
			last = 1;
		}
		if (r != MU_OK) {
			mu_enclave_log("v0 generation failed: %s", err.msg);
			return send_v0_error(e, "internal: generation failed") == MU_OK;
		}
		size_t k = escaped_len(piece, n);
		if (n_esc + k > room)
			break;
		memcpy(e->text + n_text, piece, n);
		n_text += n;
		n_esc += k;
	}
	struct jsonw w;
	jsonw_init(&w, (char *)e->out + MU_FRAME_HDR, MU_ENCLAVE_OUT_CAP - MU_FRAME_HDR);
	jsonw_begin(&w, NULL);
	jsonw_strn(&w, "completion", e->text, n_text);
	jsonw_int(&w, "elapsed_ms", (int64_t)((pal_now_ns() - t0) / 1000000u));
	jsonw_end(&w);
	enum mu_err r = send_doc(e, &w);
	mu_wipe(e->text, n_text);
	return r == MU_OK;
}

enum mu_session_rc mu_session_v0(struct mu_enclave *e)
{
	enum mu_session_rc rc = MU_SESSION_END;
	struct jsonw w;
	const uint8_t *body;
	size_t len;

	jsonw_init(&w, (char *)e->out + MU_FRAME_HDR, MU_ENCLAVE_OUT_CAP - MU_FRAME_HDR);
	jsonw_begin(&w, NULL);
	jsonw_hex(&w, "measurement", e->measurement, sizeof e->measurement);
	jsonw_end(&w);
	if (send_doc(e, &w) != MU_OK || !v0_unlock(e, &rc))
		return rc;
	while (read_body(e, &body, &len)) {
		int go_on = v0_request(e, body, len);
		mu_chan_next(&e->ch);
		if (!go_on)
			break;
	}
	return rc;
}
