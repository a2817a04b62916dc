/* kbs_core.c — the key broker's decisions: nonces, evidence, policy, wrap (see kbs.h).
 *
 * Order of checks for an evidence message (the first failure is the refusal):
 *   no policy → the JSON object and its members → evidence format known → common members
 *   (nonce, pubkey, measurement, key_id: lower-case hex of the right length) → nonce
 *   (unknown, reused, foreign; from here the nonce is spent, whatever follows; expired) →
 *   format allowed by the policy → the format's verify (claims hash to the measurement) →
 *   egress cap in the config → measurement listed → key id allowed for it → the config's
 *   egress within the policy (no test-build key without allow_dev_evidence, the cap and the
 *   burst within the policy's maxima) → the broker holds that key → wrap (refuses a low-order
 *   public key).
 * Every path out of a refusal writes a reply that holds only type, code and message.
 */
#include <assert.h>
#include <string.h>

#include "attest/evidence.h"
#include "base/arena.h"
#include "base/limits.h"
#include "host/kbs.h"
#include "pal/pal.h"
#include "seal/crypto.h"
#include "seal/sealed.h"
#include "wire/json.h"
#include "wire/json_write.h"

static_assert(MU_SEALED_KEY_ID_LEN == MU_KBS_KEY_ID_LEN, "key ids are the sealed format's");

enum nonce_state { NONCE_FREE = 0, NONCE_OUTSTANDING, NONCE_USED };

struct nonce_ent {
	uint8_t nonce[MU_KBS_NONCE_LEN];
	uint64_t conn;
	uint64_t issued_ms;
	uint64_t seq; /* issue order: the eviction victim is the smallest */
	uint8_t state;
};

struct model_key {
	uint8_t key[32];
	uint8_t id[MU_KBS_KEY_ID_LEN];
};

struct mu_kbs {
	void *mem; /* all of it, for the final wipe */
	size_t mem_len;
	int have_policy;
	struct mu_policy policy;
	uint32_t n_keys;
	struct model_key keys[MU_KBS_MAX_KEYS];
	uint64_t next_conn, next_seq;
	struct nonce_ent nonces[MU_KBS_MAX_NONCES];
	void *msg_mem; /* JSON scratch for one frame */
	size_t msg_mem_len;
	void *cfg_mem; /* JSON scratch for the config claim */
	size_t cfg_mem_len;
	uint8_t *claim; /* the decoded config claim */
	size_t claim_len;
};

static const struct json_limits msg_limits = {
	.max_bytes = MU_KBS_MAX_FRAME,
	.max_depth = 4,
	.max_tokens = 64,
	.max_string = MU_KBS_MAX_FRAME,
	.max_number = 24,
	.flags = 0,
};

static enum mu_err layout(struct mu_kbs **out, void *mem, size_t len, size_t *used, struct mu_error *err)
{
	struct mu_arena a;
	size_t msg_len, cfg_len;
	enum mu_err rc;
	if ((rc = json_mem_size(&msg_limits, MU_KBS_MAX_FRAME, &msg_len, err)) != MU_OK ||
	    (rc = mu_config_mem_size(&cfg_len, err)) != MU_OK)
		return rc;
	mu_arena_init(&a, mem, len);
	struct mu_kbs *k = mu_arena_alloc(&a, sizeof *k, 64);
	void *msg = mu_arena_alloc(&a, msg_len, 16);
	void *cfg = mu_arena_alloc(&a, cfg_len, 16);
	uint8_t *claim = mu_arena_alloc(&a, MU_KBS_MAX_FRAME + 1, 16);
	*used = a.used;
	if (mu_arena_counting(&a))
		return MU_OK;
	if (!k || !msg || !cfg || !claim)
		return mu_errf(err, MU_ERR_NOMEM, "key broker: %zu bytes of memory are too few", len);
	memset(mem, 0, len);
	k->mem = mem;
	k->mem_len = len;
	k->msg_mem = msg;
	k->msg_mem_len = msg_len;
	k->cfg_mem = cfg;
	k->cfg_mem_len = cfg_len;
	k->claim = claim;
	k->claim_len = MU_KBS_MAX_FRAME + 1;
	k->next_conn = 1;
	k->next_seq = 1;
	*out = k;
	return MU_OK;
}

enum mu_err mu_kbs_mem_size(size_t *size, struct mu_error *err)
{
	size_t used = 0;
	enum mu_err rc = layout(NULL, NULL, 0, &used, err);
	*size = used + 64; /* the worst-case alignment of mem */
	return rc;
}

enum mu_err mu_kbs_init(struct mu_kbs **k, void *mem, size_t len, struct mu_error *err)
{
	size_t used;
	*k = NULL;
	if (!mem)
		return mu_errf(err, MU_ERR_ARG, "key broker: no memory given");
	return layout(k, mem, len, &used, err);
}

void mu_kbs_wipe(struct mu_kbs *k)
{
	if (k) {
		void *mem = k->mem;
		size_t len = k->mem_len;
		mu_wipe(mem, len);
	}
}

void mu_kbs_set_policy(struct mu_kbs *k, const struct mu_policy *p)
{
	k->policy = *p;
	k->have_policy = 1;
}

const struct mu_policy *mu_kbs_policy(const struct mu_kbs *k) { return k->have_policy ? &k->policy : NULL; }

enum mu_err mu_kbs_add_key(struct mu_kbs *k, const uint8_t key[static 32], uint8_t key_id[static MU_KBS_KEY_ID_LEN],
			   struct mu_error *err)
{
	mu_sealed_key_id(key, key_id);
	if (mu_kbs_has_key(k, key_id))
		return mu_errf(err, MU_ERR_ARG, "a key with the same key id is already loaded");
	if (k->n_keys >= MU_KBS_MAX_KEYS)
		return mu_errf(err, MU_ERR_RANGE, "more than %u model keys", MU_KBS_MAX_KEYS);
	memcpy(k->keys[k->n_keys].key, key, 32);
	memcpy(k->keys[k->n_keys].id, key_id, MU_KBS_KEY_ID_LEN);
	k->n_keys++;
	return MU_OK;
}

static const struct model_key *find_key(const struct mu_kbs *k, const uint8_t key_id[static MU_KBS_KEY_ID_LEN])
{
	for (uint32_t i = 0; i < k->n_keys; i++)
		if (!memcmp(k->keys[i].id, key_id, MU_KBS_KEY_ID_LEN))
			return &k->keys[i];
	return NULL;
}

int mu_kbs_has_key(const struct mu_kbs *k, const uint8_t key_id[static MU_KBS_KEY_ID_LEN])
{
	return find_key(k, key_id) != NULL;
}

void mu_kbs_conn_open(struct mu_kbs *k, struct mu_kbs_conn *c, const char *peer)
{
	memset(c, 0, sizeof *c);
	c->id = k->next_conn++;
	c->state = MU_KBS_CONN_NEW;
	size_t n = strlen(peer);
	if (n >= sizeof c->peer)
		n = sizeof c->peer - 1;
	memcpy(c->peer, peer, n);
	c->peer[n] = '\0';
}

void mu_kbs_conn_close(struct mu_kbs *k, struct mu_kbs_conn *c)
{
	for (uint32_t i = 0; i < MU_KBS_MAX_NONCES; i++) {
		struct nonce_ent *e = &k->nonces[i];
		if (e->state == NONCE_OUTSTANDING && e->conn == c->id)
			memset(e, 0, sizeof *e);
	}
	c->state = MU_KBS_CONN_DONE;
}

/* ---- nonces ---- */

/* A free slot, else the oldest used entry, else the oldest outstanding one. */
static struct nonce_ent *nonce_slot(struct mu_kbs *k)
{
	struct nonce_ent *used = NULL, *any = NULL;
	for (uint32_t i = 0; i < MU_KBS_MAX_NONCES; i++) {
		struct nonce_ent *e = &k->nonces[i];
		if (e->state == NONCE_FREE)
			return e;
		if (e->state == NONCE_USED && (!used || e->seq < used->seq))
			used = e;
		if (!any || e->seq < any->seq)
			any = e;
	}
	return used ? used : any;
}

static struct nonce_ent *nonce_find(struct mu_kbs *k, const uint8_t nonce[static MU_KBS_NONCE_LEN])
{
	for (uint32_t i = 0; i < MU_KBS_MAX_NONCES; i++) {
		struct nonce_ent *e = &k->nonces[i];
		if (e->state != NONCE_FREE && !memcmp(e->nonce, nonce, MU_KBS_NONCE_LEN))
			return e;
	}
	return NULL;
}

/* ---- replies ---- */

static void sanitize(char *s)
{
	for (; *s; s++)
		if ((uint8_t)*s < 0x20 || (uint8_t)*s > 0x7e)
			*s = '?';
}

static void set_message(struct mu_kbs_reply *r, const char *msg)
{
	static const char tag[] = " [INSECURE: dev evidence is signed by nothing]";
	size_t n = strlen(msg), room = sizeof r->message - 1 - (r->d.insecure ? sizeof tag - 1 : 0);
	if (n > room)
		n = room;
	memcpy(r->message, msg, n);
	r->message[n] = '\0';
	if (r->d.insecure)
		memcpy(r->message + n, tag, sizeof tag);
	sanitize(r->message);
}

void mu_kbs_refuse(struct mu_kbs *k, struct mu_kbs_conn *c, enum mu_kbs_code code, const char *message,
		   struct mu_kbs_reply *r)
{
	(void)k;
	struct jsonw w;
	if (code == MU_KBS_OK)
		code = MU_KBS_INTERNAL_ERROR;
	mu_wipe(r->body, sizeof r->body);
	set_message(r, message);
	r->d.made = 1;
	r->d.code = code;
	r->close = 1;
	c->state = MU_KBS_CONN_DONE;
	jsonw_init(&w, (char *)r->body, sizeof r->body);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "refused");
	jsonw_str(&w, "code", mu_kbs_code_name(code));
	jsonw_str(&w, "message", r->message);
	jsonw_end(&w);
	if (jsonw_finish(&w, &r->len) != MU_OK) {
		/* cannot happen with a sanitized, bounded message; still never send a partial reply */
		static const char fallback[] = "{\"type\":\"refused\",\"code\":\"internal_error\",\"message\":\"\"}";
		memcpy(r->body, fallback, sizeof fallback - 1);
		r->len = sizeof fallback - 1;
		r->d.code = MU_KBS_INTERNAL_ERROR;
	}
}

/* mu_kbs_refuse for the handlers below, which return 0 once the reply is written. */
static int deny(struct mu_kbs *k, struct mu_kbs_conn *c, enum mu_kbs_code code, const char *message,
		struct mu_kbs_reply *r)
{
	mu_kbs_refuse(k, c, code, message, r);
	return 0;
}

/* ---- messages ---- */

static const char *const hello_fields[] = {"type", "version"};

static int on_hello(struct mu_kbs *k, struct mu_kbs_conn *c, const struct json_doc *d, uint64_t now_ms,
		     struct mu_kbs_reply *r)
{
	struct mu_error err = {0};
	int64_t version;
	if (json_obj_only(d, 0, hello_fields, 2, &err) != MU_OK)
		return deny(k, c, MU_KBS_BAD_MESSAGE, err.msg, r);
	uint32_t t = json_obj_get(d, 0, "version");
	if (t == JSON_NONE || json_get_i64(d, t, &version, NULL) != MU_OK)
		return deny(k, c, MU_KBS_BAD_MESSAGE, "hello needs an integer \"version\"", r);
	if (c->state != MU_KBS_CONN_NEW)
		return deny(k, c, MU_KBS_BAD_MESSAGE, "hello was already received on this connection", r);
	if (version != MU_KBS_VERSION)
		return deny(k, c, MU_KBS_UNSUPPORTED_VERSION, "this broker speaks protocol version 1 only", r);

	struct nonce_ent *e = nonce_slot(k);
	memset(e, 0, sizeof *e);
	if (pal_random(e->nonce, MU_KBS_NONCE_LEN, &err) != MU_OK)
		return deny(k, c, MU_KBS_INTERNAL_ERROR, "the broker has no entropy for a nonce", r);
	e->conn = c->id;
	e->issued_ms = now_ms;
	e->seq = k->next_seq++;
	e->state = NONCE_OUTSTANDING;

	struct jsonw w;
	jsonw_init(&w, (char *)r->body, sizeof r->body);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "challenge");
	jsonw_hex(&w, "nonce", e->nonce, MU_KBS_NONCE_LEN);
	jsonw_int(&w, "expires_in_ms", k->policy.nonce_ttl_ms);
	jsonw_end(&w);
	if (jsonw_finish(&w, &r->len) != MU_OK) {
		memset(e, 0, sizeof *e);
		return deny(k, c, MU_KBS_INTERNAL_ERROR, "challenge did not fit its buffer", r);
	}
	c->state = MU_KBS_CONN_CHALLENGED;
	r->d.made = 0;
	r->close = 0;
	return 0;
}

/* A lower-case hex member of the evidence object. */
static int get_hex(const struct json_doc *d, const char *name, uint8_t *out, size_t n)
{
	const char *s;
	size_t sn;
	uint32_t t = json_obj_get(d, 0, name);
	return t != JSON_NONE && json_type(d, t) == JSON_STRING && json_str_raw(d, t, &s, &sn) &&
	       mu_kbs_unhex(s, sn, out, n) == 0;
}

static int on_evidence(struct mu_kbs *k, struct mu_kbs_conn *c, const struct json_doc *d, uint64_t now_ms,
			struct mu_kbs_reply *r)
{
	struct mu_error err = {0};
	struct mu_kbs_decision *dec = &r->d;
	uint8_t pubkey[32];
	char msg[MU_ERROR_MSG_MAX];

	/* the format decides which members may appear */
	const char *name;
	size_t name_len;
	uint32_t t = json_obj_get(d, 0, "format");
	if (t == JSON_NONE || json_type(d, t) != JSON_STRING)
		return deny(k, c, MU_KBS_BAD_MESSAGE, "evidence needs a \"format\" string", r);
	const struct mu_evidence_format *fmt = NULL;
	if (json_str_raw(d, t, &name, &name_len))
		fmt = mu_evidence_format_find(name, name_len);
	if (!fmt)
		return deny(k, c, MU_KBS_UNKNOWN_FORMAT, "unknown evidence format (this broker knows: dev)", r);
	dec->format = fmt->name;
	dec->insecure = fmt->insecure;

	const char *fields[6 + MU_EVIDENCE_MAX_FIELDS];
	size_t n_fields = 0;
	for (size_t i = 0; i < 6; i++)
		fields[n_fields++] = mu_evidence_common_fields[i];
	for (size_t i = 0; i < fmt->n_fields && i < MU_EVIDENCE_MAX_FIELDS; i++)
		fields[n_fields++] = fmt->fields[i];
	if (json_obj_only(d, 0, fields, n_fields, &err) != MU_OK)
		return deny(k, c, MU_KBS_BAD_MESSAGE, err.msg, r);

	if (!get_hex(d, "nonce", dec->nonce, MU_KBS_NONCE_LEN))
		return deny(k, c, MU_KBS_BAD_MESSAGE, "evidence: \"nonce\" must be 64 lower-case hex digits", r);
	dec->have_nonce = 1;
	if (!get_hex(d, "measurement", dec->measurement, 32))
		return deny(k, c, MU_KBS_BAD_MESSAGE,
			    "evidence: \"measurement\" must be 64 lower-case hex digits", r);
	dec->have_measurement = 1;
	if (!get_hex(d, "key_id", dec->key_id, MU_KBS_KEY_ID_LEN))
		return deny(k, c, MU_KBS_BAD_MESSAGE, "evidence: \"key_id\" must be 32 lower-case hex digits", r);
	dec->have_key_id = 1;
	if (!get_hex(d, "pubkey", pubkey, 32))
		return deny(k, c, MU_KBS_BAD_PUBKEY,
			    "evidence: \"pubkey\" must be an X25519 public key in 64 lower-case hex digits", r);

	/* the nonce: ours, fresh, unused, issued to this connection */
	struct nonce_ent *e = nonce_find(k, dec->nonce);
	if (!e)
		return deny(k, c, MU_KBS_NONCE_UNKNOWN,
			    "nonce was not issued by this broker, or is forgotten (say hello for a new one)", r);
	if (e->state == NONCE_USED)
		return deny(k, c, MU_KBS_NONCE_REUSED, "nonce was already answered (replayed evidence?)", r);
	if (e->conn != c->id)
		return deny(k, c, MU_KBS_NONCE_FOREIGN, "nonce was issued to another connection", r);
	e->state = NONCE_USED; /* spent by its owner's first answer, whatever follows */
	if (now_ms >= e->issued_ms && now_ms - e->issued_ms >= k->policy.nonce_ttl_ms)
		return deny(k, c, MU_KBS_NONCE_EXPIRED, "nonce has expired (answer a challenge sooner)", r);

	if (fmt->insecure && !k->policy.allow_dev_evidence)
		return deny(k, c, MU_KBS_FORMAT_NOT_ALLOWED,
			    "the policy does not allow this evidence format (allow_dev_evidence is false)", r);

	struct mu_evidence ev;
	struct mu_evidence_in in = {.doc = d, .obj = 0, .nonce = dec->nonce, .pubkey = pubkey,
				    .measurement = dec->measurement, .key_id = dec->key_id};
	enum mu_kbs_code code = fmt->verify(&in, k->claim, k->claim_len, &ev, &err);
	if (code != MU_KBS_OK)
		goto refuse;
	struct mu_egress_claim egress;
	code = mu_config_egress(ev.config, ev.config_len, k->cfg_mem, k->cfg_mem_len, &egress, &err);
	mu_wipe(k->claim, ev.config_len);
	if (code != MU_KBS_OK)
		goto refuse;

	const struct mu_policy_entry *pe = mu_policy_find(&k->policy, ev.measurement);
	if (!pe)
		return deny(k, c, MU_KBS_MEASUREMENT_NOT_ALLOWED, "the measurement is not in the policy", r);
	if (!mu_policy_allows_key(pe, dec->key_id))
		return deny(k, c, MU_KBS_MODEL_NOT_ALLOWED,
			    "the policy does not allow this key id for this measurement", r);
	code = mu_policy_check_egress(&k->policy, &egress, &err);
	if (code != MU_KBS_OK)
		goto refuse;
	const struct model_key *mk = find_key(k, dec->key_id);
	if (!mk)
		return deny(k, c, MU_KBS_UNKNOWN_MODEL, "the broker holds no key with this key id", r);

	struct mu_kbs_wrapped wrapped;
	enum mu_err rc = mu_kbs_wrap(mk->key, mk->id, pubkey, dec->nonce, ev.measurement, &wrapped, &err);
	if (rc == MU_ERR_AUTH)
		return deny(k, c, MU_KBS_BAD_PUBKEY, "the public key is a low-order X25519 point", r);
	if (rc != MU_OK)
		return deny(k, c, MU_KBS_INTERNAL_ERROR, "the broker could not wrap the key", r);

	dec->made = 1;
	dec->code = MU_KBS_OK;
	set_message(r, "key released, wrapped to the evidence's public key");
	struct jsonw w;
	jsonw_init(&w, (char *)r->body, sizeof r->body);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "key");
	jsonw_hex(&w, "key_id", mk->id, MU_KBS_KEY_ID_LEN);
	jsonw_hex(&w, "eph_pub", wrapped.eph_pub, 32);
	jsonw_hex(&w, "ciphertext", wrapped.ciphertext, 32);
	jsonw_hex(&w, "tag", wrapped.tag, 16);
	jsonw_bool(&w, "insecure", fmt->insecure);
	jsonw_str(&w, "message", r->message);
	jsonw_end(&w);
	rc = jsonw_finish(&w, &r->len);
	mu_wipe(&wrapped, sizeof wrapped);
	if (rc != MU_OK)
		return deny(k, c, MU_KBS_INTERNAL_ERROR, "key reply did not fit its buffer", r);
	r->close = 1;
	c->state = MU_KBS_CONN_DONE;
	return 0;

refuse:
	memcpy(msg, err.msg, sizeof msg);
	return deny(k, c, code, msg, r);
}

static int dispatch(struct mu_kbs *k, struct mu_kbs_conn *c, const uint8_t *body, size_t len, uint64_t now_ms,
		    struct mu_kbs_reply *r)
{
	struct mu_error err = {0};
	struct json_doc d;

	if (c->state == MU_KBS_CONN_DONE)
		return deny(k, c, MU_KBS_BAD_MESSAGE, "the exchange on this connection is over", r);
	if (!k->have_policy)
		return deny(k, c, MU_KBS_NO_POLICY, "the broker has no policy loaded; nothing is released", r);
	if (json_parse(&d, body, len, &msg_limits, k->msg_mem, k->msg_mem_len, &err) != MU_OK) {
		mu_err_prefix(&err, "message is not strict JSON");
		return deny(k, c, MU_KBS_BAD_MESSAGE, err.msg, r);
	}
	if (json_type(&d, 0) != JSON_OBJECT)
		return deny(k, c, MU_KBS_BAD_MESSAGE, "message is not a JSON object", r);
	uint32_t t = json_obj_get(&d, 0, "type");
	if (t == JSON_NONE || json_type(&d, t) != JSON_STRING)
		return deny(k, c, MU_KBS_BAD_MESSAGE, "message has no \"type\" string", r);
	if (json_str_eq(&d, t, "hello"))
		return on_hello(k, c, &d, now_ms, r);
	if (json_str_eq(&d, t, "evidence"))
		return on_evidence(k, c, &d, now_ms, r);
	return deny(k, c, MU_KBS_BAD_MESSAGE, "unknown message type (expected hello or evidence)", r);
}

void mu_kbs_handle(struct mu_kbs *k, struct mu_kbs_conn *c, const uint8_t *body, size_t len, uint64_t now_ms,
		   struct mu_kbs_reply *r)
{
	memset(&r->d, 0, sizeof r->d);
	r->len = 0;
	r->close = 0;
	r->message[0] = '\0';
	(void)dispatch(k, c, body, len, now_ms, r);
}

void mu_kbs_audit_members(struct jsonw *w, const struct mu_kbs_conn *c, const struct mu_kbs_decision *d)
{
	char peer[MU_KBS_PEER_MAX];
	memcpy(peer, c->peer, sizeof peer);
	peer[sizeof peer - 1] = '\0';
	sanitize(peer);
	jsonw_int(w, "conn", (int64_t)(c->id & INT64_MAX));
	jsonw_str(w, "peer", peer);
	jsonw_str(w, "decision", d->code == MU_KBS_OK ? "release" : "refuse");
	jsonw_str(w, "code", mu_kbs_code_name(d->code));
	if (d->format)
		jsonw_str(w, "format", d->format);
	else
		jsonw_null(w, "format");
	jsonw_bool(w, "insecure", d->insecure);
	if (d->have_nonce)
		jsonw_hex(w, "nonce", d->nonce, MU_KBS_NONCE_LEN);
	else
		jsonw_null(w, "nonce");
	if (d->have_measurement)
		jsonw_hex(w, "measurement", d->measurement, 32);
	else
		jsonw_null(w, "measurement");
	if (d->have_key_id)
		jsonw_hex(w, "key_id", d->key_id, MU_KBS_KEY_ID_LEN);
	else
		jsonw_null(w, "key_id");
}
