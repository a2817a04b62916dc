/* session.c — one connection of wire protocol v1, exactly the state machine of
 * docs/protocol.md:
 *
 *   connected --hello--> attesting --unlock ok--> ready --generate--> (generating) --> ready
 *
 * hello (any state; during a generation it is bad_state) makes a fresh X25519 key pair, whose
 * private half lives in secret memory and is wiped once an unlock used it (or the session
 * ends), and answers with dev evidence binding the broker's nonce, the public key, the
 * measurement and the key id. unlock unwraps the model key; the first success in the process
 * unseals and loads the model and enters the sandbox (enclave.c). generate evaluates the
 * prompt in chunks of MU_ENCLAVE_PREFILL_CHUNK tokens and then streams token frames, looking at
 * the channel between chunks and between tokens (for a cancel, and to answer other frames), and
 * ends with exactly one done or error carrying its id. A long prompt on a big model takes
 * seconds to evaluate; a cancel must not wait for it.
 *
 * Messages the enclave itself sends (evidence, ready, token, done) are bad_state when they
 * arrive; an error frame from the peer is ignored (answering it could start a loop); a
 * cancel that finds no request running is ignored once ready (it raced with its done).
 */
#include <stdio.h>
#include <string.h>

#include "attest/kbs_proto.h"
#include "enclave/enclave.h"
#include "seal/crypto.h"

#define POLL_MAX_FRAMES 16 /* frames handled per look at the channel during a generation */

enum sess_state { ST_CONNECTED = 0, ST_ATTESTING, ST_READY };

struct sess {
	struct mu_enclave *e;
	enum sess_state st;
	uint8_t nonce[MU_KBS_NONCE_LEN];
	uint8_t pub[32];
	int close;  /* the connection must end */
	int fatal;  /* the process must end */
};

static const char *state_name(enum sess_state s)
{
	return s == ST_CONNECTED ? "connected" : s == ST_ATTESTING ? "attesting" : "ready";
}

/* Sends an error; a failed write ends the connection. */
static void reply_error(struct sess *s, const char *id, enum mu_wire_code code, const char *message)
{
	if (mu_enclave_send_error(s->e, id, code, message, NULL) != MU_OK)
		s->close = 1;
}

/* The decoder's id when it is one, else NULL. */
static const char *msg_id(const struct mu_msg *m)
{
	const char *end = memchr(m->id, '\0', sizeof m->id);
	if (!m->has_id || !end || !mu_wire_id_ok(m->id, (size_t)(end - m->id)))
		return NULL;
	return m->id;
}

static void forget_key(struct sess *s)
{
	mu_wipe(s->e->sec->priv, sizeof s->e->sec->priv);
	mu_wipe(s->pub, sizeof s->pub);
}

static void on_hello(struct sess *s, const struct mu_msg *m)
{
	struct mu_enclave *e = s->e;
	struct mu_error err = {0};
	size_t len = 0;
	if (m->hello.version != MU_WIRE_VERSION) {
		reply_error(s, NULL, MU_WIRE_UNSUPPORTED_VERSION, "this enclave speaks protocol version 1");
		return;
	}
	forget_key(s);
	s->st = ST_CONNECTED;
	if (mu_x25519_keygen(e->sec->priv, s->pub, &err) != MU_OK) {
		mu_enclave_log("cannot make a key pair: %s", err.msg);
		reply_error(s, NULL, MU_WIRE_INTERNAL, "no entropy for a key pair");
		return;
	}
	memcpy(s->nonce, m->hello.nonce, sizeof s->nonce);
	struct mu_dev_claims c = {.config = e->config, .config_len = e->config_len};
	memcpy(c.binary_sha256, e->binary_sha256, 32);
	memcpy(c.sealed_header_sha256, e->header_sha256, 32);
	if (mu_kbs_msg_evidence_dev((char *)e->out + MU_FRAME_HDR, MU_ENCLAVE_OUT_CAP - MU_FRAME_HDR, &len, s->nonce,
				    s->pub, e->measurement, e->key_id, &c, &err) != MU_OK) {
		forget_key(s);
		mu_enclave_log("cannot write evidence: %s", err.msg);
		reply_error(s, NULL, MU_WIRE_INTERNAL, "evidence does not fit a frame");
		return;
	}
	if (mu_enclave_send(e, len, NULL) != MU_OK) {
		s->close = 1;
		return;
	}
	s->st = ST_ATTESTING;
}

static void on_unlock(struct sess *s, const struct mu_msg *m)
{
	struct mu_enclave *e = s->e;
	struct mu_error err = {0};
	size_t len;
	if (s->st != ST_ATTESTING) {
		reply_error(s, NULL, MU_WIRE_BAD_STATE, "unlock is only allowed after hello and evidence");
		return;
	}
	s->st = ST_CONNECTED; /* whatever happens, this key pair has been used */
	if (memcmp(m->unlock.key_id, e->key_id, MU_KBS_KEY_ID_LEN) != 0) {
		forget_key(s);
		reply_error(s, NULL, MU_WIRE_UNLOCK_FAILED, "the key id is not the sealed model's");
		return;
	}
	enum mu_err rc = mu_kbs_unwrap(e->sec->priv, s->pub, s->nonce, e->measurement, e->key_id, m->unlock.kbs_pub,
				       m->unlock.wrapped_key, m->unlock.wrapped_key + 32, e->sec->key, &err);
	forget_key(s);
	if (rc != MU_OK) {
		mu_wipe(e->sec->key, sizeof e->sec->key);
		mu_enclave_log("unlock refused: the wrapped key does not unwrap");
		reply_error(s, NULL, MU_WIRE_UNLOCK_FAILED, "the wrapped key does not unwrap with this attestation's key");
		return;
	}
	switch (mu_enclave_unlock(e, &err)) {
	case MU_UNLOCK_OK:
		break;
	case MU_UNLOCK_REFUSED:
		reply_error(s, NULL, MU_WIRE_UNLOCK_FAILED, "the key does not open the sealed model");
		return;
	case MU_UNLOCK_INTERNAL:
		reply_error(s, NULL, MU_WIRE_INTERNAL, "the model could not be loaded");
		return;
	case MU_UNLOCK_FATAL:
	default:
		reply_error(s, NULL, MU_WIRE_INTERNAL, "the enclave cannot continue");
		s->fatal = s->close = 1;
		return;
	}
	len = mu_msg_ready((char *)e->out + MU_FRAME_HDR, MU_ENCLAVE_OUT_CAP - MU_FRAME_HDR, e->inf.name, e->inf.n_ctx,
			   e->cfg.max_tokens, (int64_t)e->cfg.egress_bytes_per_s, (int64_t)e->cfg.egress_burst_bytes);
	if (len == 0) {
		reply_error(s, NULL, MU_WIRE_INTERNAL, "ready does not encode");
		return;
	}
	if (mu_enclave_send(e, len, NULL) != MU_OK) {
		s->close = 1;
		return;
	}
	s->st = ST_READY;
	mu_enclave_log("connection %llu: attested, ready", (unsigned long long)e->n_conn);
}

/* ---- the request in progress ---- */

enum mu_err mu_req_token(struct mu_req *r, const uint8_t *text, size_t n, struct mu_error *err)
{
	struct mu_enclave *e = r->e;
	uint8_t clean[MU_WIRE_MAX_TOKEN_TEXT];
	size_t k = 0;
	while (n > 0) { /* token text carries no NUL: drop them; split what is too long */
		k = 0;
		while (n > 0 && k < sizeof clean) {
			/* never cut a UTF-8 character: stop before a lead byte that would not fit */
			if (k + 4 > sizeof clean && (*text & 0xc0) != 0x80)
				break;
			if (*text)
				clean[k++] = *text;
			text++;
			n--;
		}
		if (k == 0)
			continue;
		size_t len = mu_msg_token((char *)e->out + MU_FRAME_HDR, MU_ENCLAVE_OUT_CAP - MU_FRAME_HDR, r->id, clean, k);
		if (len == 0)
			return mu_errf(err, MU_ERR_INTERNAL, "a token frame did not encode");
		enum mu_err rc = mu_enclave_send(e, len, err);
		if (rc)
			return rc;
	}
	return MU_OK;
}

enum mu_err mu_req_done(struct mu_req *r, enum mu_finish f, int64_t prompt_tokens, int64_t completion_tokens,
			struct mu_error *err)
{
	struct mu_enclave *e = r->e;
	int64_t ms = (int64_t)((pal_now_ns() - r->t0_ns) / 1000000u);
	size_t len = mu_msg_done((char *)e->out + MU_FRAME_HDR, MU_ENCLAVE_OUT_CAP - MU_FRAME_HDR, r->id, f, prompt_tokens,
				 completion_tokens, ms);
	if (len == 0)
		return mu_errf(err, MU_ERR_INTERNAL, "done did not encode");
	return mu_enclave_send(e, len, err);
}

/* A frame-level failure: answer it (without an id) and give up the connection. */
static enum mu_poll_rc frame_failure(struct mu_enclave *e, enum mu_chan_rc rc)
{
	if (rc == MU_CHAN_TIMEOUT)
		mu_enclave_send_error(e, NULL, MU_WIRE_TIMEOUT, "a frame was begun but not finished in time", NULL);
	else if (rc == MU_CHAN_BAD_FRAME)
		mu_enclave_send_error(e, NULL, MU_WIRE_BAD_FRAME, "frame of length 0", NULL);
	else if (rc == MU_CHAN_TOO_LARGE)
		mu_enclave_send_error(e, NULL, MU_WIRE_FRAME_TOO_LARGE, "frame longer than 1048576 bytes", NULL);
	return MU_POLL_CLOSE;
}

/* An id for an answer during a request: never the running request's own, which must end with
 * exactly one done or error. */
static const char *other_id(const struct mu_req *r, const struct mu_msg *m)
{
	const char *id = msg_id(m);
	return id && strcmp(id, r->id) != 0 ? id : NULL;
}

enum mu_poll_rc mu_req_poll(struct mu_req *r, int wait_ms)
{
	struct mu_enclave *e = r->e;
	uint64_t deadline = pal_now_ns() + (uint64_t)(wait_ms > 0 ? wait_ms : 0) * 1000000u;
	for (int handled = 0;; handled++) {
		uint64_t now = pal_now_ns();
		int left = now >= deadline ? 0 : (int)((deadline - now + 999999u) / 1000000u);
		if (left == 0 && handled >= POLL_MAX_FRAMES)
			return MU_POLL_GO;
		enum mu_chan_rc rc = mu_chan_read(&e->ch, left);
		if (rc == MU_CHAN_NONE)
			return MU_POLL_GO;
		if (rc != MU_CHAN_FRAME)
			return frame_failure(e, rc);
		struct mu_msg m;
		struct mu_error err = {0};
		size_t len;
		const uint8_t *body = mu_chan_body(&e->ch, &len);
		enum mu_wire_code code = mu_msg_decode(&m, body, len, e->msg_mem, e->msg_mem_len, &err);
		mu_chan_next(&e->ch);
		if (code != MU_WIRE_OK) {
			if (mu_enclave_send_error(e, other_id(r, &m), code, err.msg, NULL) != MU_OK)
				return MU_POLL_CLOSE;
			continue;
		}
		if (m.type == MU_MSG_CANCEL) {
			if (!strcmp(m.id, r->id))
				return MU_POLL_CANCEL;
			continue; /* a cancel for another id is ignored */
		}
		if (m.type == MU_MSG_ERROR)
			continue;
		if (mu_enclave_send_error(e, other_id(r, &m), m.type == MU_MSG_GENERATE ? MU_WIRE_BUSY : MU_WIRE_BAD_STATE,
					  m.type == MU_MSG_GENERATE ? "a request is already running"
								    : "only cancel is allowed while generating",
					  NULL) != MU_OK)
			return MU_POLL_CLOSE;
	}
}

/* Ends a request with an error carrying its id. */
static void req_error(struct sess *s, const struct mu_req *r, enum mu_wire_code code, const char *message)
{
	reply_error(s, r->id, code, message);
}

#ifdef MU_ENCLAVE_TEST
#define PREFILL_PAUSE_MS(r) ((int)(r)->prefill_pause_ms)
#else
#define PREFILL_PAUSE_MS(r) 0
#endif

/* Encodes the request's prompt or messages. In the test build, "@prefill:MS:TEXT" encodes TEXT
 * as a plain prompt and sets the pause between prompt chunks (script.c). */
static enum mu_wire_code encode(struct mu_req *r, const struct mu_msg *m, struct mu_error *err)
{
#ifdef MU_ENCLAVE_TEST
	const char *text;
	size_t n;
	if (mu_script_prefill(r, m, &text, &n))
		return mu_infer_encode_text(&r->e->inf, text, n, err);
#endif
	return mu_infer_encode_msg(&r->e->inf, m, err);
}

static void on_generate(struct sess *s, const struct mu_msg *m)
{
	struct mu_enclave *e = s->e;
	struct mu_infer *inf = &e->inf;
	struct mu_error err = {0};
	struct mu_req r = {.e = e, .t0_ns = pal_now_ns()};
	enum mu_wire_code code;

	strcpy(r.id, m->id);
	if (s->st != ST_READY) {
		req_error(s, &r, MU_WIRE_BAD_STATE, "generate needs an attested, unlocked enclave (hello, unlock)");
		return;
	}
	if (m->generate.max_tokens > (int64_t)e->cfg.max_tokens) {
		char msg[96];
		snprintf(msg, sizeof msg, "max_tokens is above this enclave's limit of %u", e->cfg.max_tokens);
		req_error(s, &r, MU_WIRE_BAD_REQUEST, msg);
		return;
	}
#ifdef MU_ENCLAVE_TEST
	int close_conn = 0;
	if (mu_script_run(&r, m, &close_conn)) {
		if (close_conn)
			s->close = 1;
		return;
	}
#endif
	if ((code = encode(&r, m, &err)) != MU_WIRE_OK) {
		req_error(s, &r, code, err.msg);
		return;
	}
	struct mu_sampler_config sc;
	mu_sampler_config_default(&sc);
	sc.temperature = (float)m->generate.temperature;
	sc.top_k = (int32_t)m->generate.top_k;
	sc.top_p = (float)m->generate.top_p;
	sc.min_p = 0.0f;
	sc.repeat_penalty = 1.0f;
	sc.seed = m->generate.seed;
	if (mu_sampler_config_check(&sc, &err) != MU_OK) {
		req_error(s, &r, MU_WIRE_BAD_REQUEST, err.msg);
		return;
	}
	if (mu_infer_start(inf, &sc, (uint32_t)m->generate.max_tokens, &err) != MU_OK) {
		mu_enclave_log("generation failed to start: %s", err.msg);
		req_error(s, &r, MU_WIRE_INTERNAL, "the prompt could not be evaluated");
		return;
	}
	/* m's strings live in the decode scratch, which the polls below reuse: m is not read
	 * after this point */
	enum mu_finish finish = MU_FINISH_LENGTH;
	for (int fed = 0; !fed;) {
		if (mu_infer_prefill(inf, &fed, &err) != MU_OK) {
			mu_enclave_log("prompt evaluation failed: %s", err.msg);
			req_error(s, &r, MU_WIRE_INTERNAL, "the prompt could not be evaluated");
			return;
		}
		if (fed)
			break;
		enum mu_poll_rc pr = mu_req_poll(&r, PREFILL_PAUSE_MS(&r));
		if (pr == MU_POLL_CLOSE) {
			s->close = 1;
			return;
		}
		if (pr == MU_POLL_CANCEL) { /* nothing generated yet: done{cancelled}, 0 tokens */
			if (mu_req_done(&r, MU_FINISH_CANCELLED, inf->n_prompt, 0, &err) != MU_OK)
				s->close = 1;
			return;
		}
	}
	for (;;) {
		const uint8_t *text;
		size_t n;
		int done;
		if (mu_infer_step(inf, &text, &n, &done, &finish, &err) != MU_OK) {
			mu_enclave_log("generation failed: %s", err.msg);
			req_error(s, &r, MU_WIRE_INTERNAL, "generation failed");
			return;
		}
		if (done)
			break;
		if (mu_req_token(&r, text, n, &err) != MU_OK) {
			s->close = 1;
			return;
		}
		enum mu_poll_rc pr = mu_req_poll(&r, 0);
		if (pr == MU_POLL_CLOSE) {
			s->close = 1;
			return;
		}
		if (pr == MU_POLL_CANCEL) {
			finish = MU_FINISH_CANCELLED;
			break;
		}
	}
	if (finish != MU_FINISH_CANCELLED) {
		const uint8_t *text;
		size_t n = 0;
		if (mu_infer_flush(inf, &text, &n, &err) != MU_OK || mu_req_token(&r, text, n, &err) != MU_OK) {
			s->close = 1;
			return;
		}
	}
	if (mu_req_done(&r, finish, inf->n_prompt, inf->n_out, &err) != MU_OK)
		s->close = 1;
}

static void dispatch(struct sess *s, const struct mu_msg *m)
{
	switch (m->type) {
	case MU_MSG_HELLO:
		on_hello(s, m);
		return;
	case MU_MSG_UNLOCK:
		on_unlock(s, m);
		return;
	case MU_MSG_GENERATE:
		on_generate(s, m);
		return;
	case MU_MSG_CANCEL:
		if (s->st != ST_READY)
			reply_error(s, NULL, MU_WIRE_BAD_STATE, "no request is running");
		return; /* ready: the request it names has already ended */
	case MU_MSG_ERROR:
		return;
	default: {
		char msg[96];
		snprintf(msg, sizeof msg, "%s is not accepted by the enclave (state %s)", mu_msg_type_name(m->type),
			 state_name(s->st));
		reply_error(s, msg_id(m), MU_WIRE_BAD_STATE, msg);
		return;
	}
	}
}

enum mu_session_rc mu_session_v1(struct mu_enclave *e)
{
	struct sess s = {.e = e, .st = ST_CONNECTED};
	while (!s.close) {
		enum mu_chan_rc rc = mu_chan_read(&e->ch, -1);
		if (rc == MU_CHAN_CLOSED)
			break;
		if (rc != MU_CHAN_FRAME) {
			frame_failure(e, rc);
			break;
		}
		struct mu_msg m;
		struct mu_error err = {0};
		size_t len;
		const uint8_t *body = mu_chan_body(&e->ch, &len);
		enum mu_wire_code code = mu_msg_decode(&m, body, len, e->msg_mem, e->msg_mem_len, &err);
		/* the body is decoded (strings live in msg_mem): the reader may take the next frame */
		mu_chan_next(&e->ch);
		if (code != MU_WIRE_OK) {
			reply_error(&s, msg_id(&m), code, err.msg);
			continue;
		}
		dispatch(&s, &m);
	}
	forget_key(&s);
	mu_wipe(e->sec->key, sizeof e->sec->key);
	return s.fatal ? MU_SESSION_FATAL : MU_SESSION_END;
}
