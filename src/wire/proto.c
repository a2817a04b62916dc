/* proto.c — wire protocol v1: names, and strict decoding of frame bodies into struct mu_msg
 * (see proto.h and docs/protocol.md; the encoders are in proto_write.c).
 *
 * Classification. A body is checked in a fixed order and the first failure decides the code:
 *   1. UTF-8 of the whole body                                    invalid_utf8
 *   2. one strict JSON object within the wire limits              bad_json
 *   3. a "type" string                                            bad_message
 *   4. a type this version knows                                  unknown_type
 *   5. only the message's members (json_obj_only)                 bad_message
 *   6. the shape of every member: present when required, of the right JSON type, and of the
 *      fixed form its kind demands (hex length and case, id alphabet, role and finish_reason
 *      names, text without NUL and within its length, integers of ready/done/hello)
 *                                                                 bad_message
 *   7. the values of generate's parameters: max_tokens, temperature, top_p, top_k and seed
 *      (a number that is not an integer where one is needed, out of range, or not exactly
 *      representable counts as out of range) and the count of messages (1..64)
 *                                                                 bad_request
 * Step 6 is complete for the whole message before step 7 starts, so a body with a bad role
 * and max_tokens 0 is bad_message, never bad_request.
 *
 * Memory. mu_msg_decode lays out the caller's scratch as [JSON parser memory | decoded
 * strings]; the string area holds len + 1 bytes, enough because no string decodes to more
 * bytes than its JSON spelling (json_str_decode adds a NUL that the next string overwrites).
 *
 * Freestanding: only memcpy/memset/memcmp/strlen from the C library.
 */
#include "wire/proto.h"

#include <string.h>

#include "wire/json.h"
#include "wire/json_write.h"

/* ---- names ---- */

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const code_names[MU_WIRE_CODE_COUNT] = {
	[MU_WIRE_OK] = "ok",
	[MU_WIRE_BAD_FRAME] = "bad_frame",
	[MU_WIRE_FRAME_TOO_LARGE] = "frame_too_large",
	[MU_WIRE_TIMEOUT] = "timeout",
	[MU_WIRE_INVALID_UTF8] = "invalid_utf8",
	[MU_WIRE_BAD_JSON] = "bad_json",
	[MU_WIRE_BAD_MESSAGE] = "bad_message",
	[MU_WIRE_UNKNOWN_TYPE] = "unknown_type",
	[MU_WIRE_BAD_STATE] = "bad_state",
	[MU_WIRE_BAD_REQUEST] = "bad_request",
	[MU_WIRE_PROMPT_TOO_LONG] = "prompt_too_long",
	[MU_WIRE_BUSY] = "busy",
	[MU_WIRE_UNSUPPORTED_VERSION] = "unsupported_version",
	[MU_WIRE_UNLOCK_FAILED] = "unlock_failed",
	[MU_WIRE_INTERNAL] = "internal",
	[MU_WIRE_ENCLAVE_UNAVAILABLE] = "enclave_unavailable",
	[MU_WIRE_ENCLAVE_LOST] = "enclave_lost",
	[MU_WIRE_BUDGET_EXHAUSTED] = "budget_exhausted",
	[MU_WIRE_FILTERED] = "filtered",
	[MU_WIRE_OVER_CAPACITY] = "over_capacity",
	[MU_WIRE_UNAUTHORIZED] = "unauthorized",
	[MU_WIRE_RATE_LIMITED] = "rate_limited",
	[MU_WIRE_QUOTA_EXHAUSTED] = "quota_exhausted",
};

static const char *const type_names[MU_MSG_TYPE_COUNT] = {
	[MU_MSG_NONE] = "none",       [MU_MSG_HELLO] = "hello",       [MU_MSG_EVIDENCE] = "evidence",
	[MU_MSG_UNLOCK] = "unlock",   [MU_MSG_READY] = "ready",       [MU_MSG_GENERATE] = "generate",
	[MU_MSG_CANCEL] = "cancel",   [MU_MSG_TOKEN] = "token",       [MU_MSG_DONE] = "done",
	[MU_MSG_ERROR] = "error",
};

static const char *const finish_names[] = {"stop", "length", "cancelled"};
static const char *const role_names[] = {"system", "user", "assistant"};

const char *mu_wire_code_name(enum mu_wire_code c)
{
	return (unsigned)c < MU_WIRE_CODE_COUNT ? code_names[c] : "unknown";
}

enum mu_wire_code mu_wire_code_from_name(const char *s, size_t n)
{
	for (unsigned i = 0; i < MU_WIRE_CODE_COUNT; i++)
		if (strlen(code_names[i]) == n && !memcmp(code_names[i], s, n))
			return (enum mu_wire_code)i;
	return MU_WIRE_CODE_COUNT;
}

const char *mu_msg_type_name(enum mu_msg_type t)
{
	return (unsigned)t < MU_MSG_TYPE_COUNT ? type_names[t] : "unknown";
}

const char *mu_finish_name(enum mu_finish f)
{
	return (unsigned)f < N_OF(finish_names) ? finish_names[f] : "unknown";
}

const char *mu_wire_role_name(enum mu_role r)
{
	return (unsigned)r < N_OF(role_names) ? role_names[r] : "unknown";
}

static int id_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
	       c == ':' || c == '-';
}

int mu_wire_id_ok(const char *s, size_t n)
{
	if (!s || n == 0 || n > MU_WIRE_MAX_ID)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!id_char((uint8_t)s[i]))
			return 0;
	return 1;
}

/* ---- decoding ---- */

static const struct json_limits wire_limits = {
	.max_bytes = MU_WIRE_MAX_FRAME,
	.max_depth = MU_WIRE_MAX_DEPTH,
	.max_tokens = MU_WIRE_MAX_TOKENS,
	.max_string = MU_WIRE_MAX_FRAME,
	.max_number = MU_WIRE_MAX_NUMBER,
	.flags = 0,
};

struct dec {
	const struct json_doc *d;
	const char *what; /* the message type, for error messages */
	char *str;        /* decoded strings go here */
	size_t str_cap, str_used;
	struct mu_error *err;
};

__attribute__((format(printf, 3, 4))) static enum mu_wire_code fail(struct dec *x, enum mu_wire_code c,
								   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	mu_verrf(x->err, MU_ERR_FORMAT, fmt, ap);
	va_end(ap);
	mu_err_prefix(x->err, "%s", x->what);
	return c;
}

/* Byte offset of value t: its opening quote, bracket or first character. */
static uint32_t off_of(const struct dec *x, uint32_t t)
{
	const struct json_tok *k = &x->d->tok[t];
	return k->type == JSON_STRING ? k->start - 1 : k->start;
}

/* The member name of the root object (or of obj) with JSON type type; *t is JSON_NONE when
 * it is absent and not required. */
static enum mu_wire_code member(struct dec *x, uint32_t obj, const char *name, enum json_type type, int required,
				uint32_t *t)
{
	*t = json_obj_get(x->d, obj, name);
	if (*t == JSON_NONE)
		return required ? fail(x, MU_WIRE_BAD_MESSAGE, "missing \"%s\"", name) : MU_WIRE_OK;
	if (json_type(x->d, *t) != (int)type)
		return fail(x, MU_WIRE_BAD_MESSAGE, "offset %u: \"%s\" must be %s %s, not %s", off_of(x, *t), name,
			    type == JSON_ARRAY || type == JSON_OBJECT ? "an" : "a", json_type_name(type),
			    json_type_name((enum json_type)json_type(x->d, *t)));
	return MU_WIRE_OK;
}

static enum mu_wire_code hex_member(struct dec *x, const char *name, uint8_t *out, size_t n)
{
	uint32_t t;
	const char *s;
	size_t sn;
	enum mu_wire_code c = member(x, 0, name, JSON_STRING, 1, &t);
	if (c != MU_WIRE_OK)
		return c;
	if (!json_str_raw(x->d, t, &s, &sn) || mu_kbs_unhex(s, sn, out, n) != 0)
		return fail(x, MU_WIRE_BAD_MESSAGE, "offset %u: \"%s\" must be %zu lower-case hex digits", off_of(x, t),
			    name, 2 * n);
	return MU_WIRE_OK;
}

/* An integer member in [lo, hi]; a failure is bad_message (not a generate parameter). */
static enum mu_wire_code int_member(struct dec *x, uint32_t obj, const char *name, int64_t lo, int64_t hi,
				    int64_t *out)
{
	uint32_t t;
	enum mu_wire_code c = member(x, obj, name, JSON_NUMBER, 1, &t);
	if (c != MU_WIRE_OK)
		return c;
	if (json_get_int(x->d, t, lo, hi, out, NULL) != MU_OK)
		return fail(x, MU_WIRE_BAD_MESSAGE, "offset %u: \"%s\" must be an integer in %lld..%lld", off_of(x, t),
			    name, (long long)lo, (long long)hi);
	return MU_WIRE_OK;
}

/* The request id: required for every type but error, where it is optional. */
static enum mu_wire_code id_member(struct dec *x, struct mu_msg *m, int required)
{
	uint32_t t;
	size_t n = 0;
	enum mu_wire_code c = member(x, 0, "id", JSON_STRING, required, &t);
	if (c != MU_WIRE_OK || t == JSON_NONE)
		return c;
	/* decoded first: "\u0061" is the id "a", as JSON says */
	if (json_str_decode(x->d, t, m->id, sizeof m->id, &n, NULL) != MU_OK || !mu_wire_id_ok(m->id, n)) {
		/* m->id is an array, never NULL: the analyzer takes mu_wire_id_ok's NULL test as a hint
		 * that it might be. NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
		memset(m->id, 0, sizeof m->id);
		return fail(x, MU_WIRE_BAD_MESSAGE, "offset %u: \"id\" must be 1..%u bytes of [A-Za-z0-9._:-]",
			    off_of(x, t), MU_WIRE_MAX_ID);
	}
	m->has_id = 1;
	return MU_WIRE_OK;
}

/* Shape of a text value: a string without NUL of at most max decoded bytes. */
static enum mu_wire_code text_ok(struct dec *x, uint32_t t, const char *name, size_t max)
{
	const struct json_tok *k = &x->d->tok[t];
	if (k->flags & JSON_TOK_NUL)
		return fail(x, MU_WIRE_BAD_MESSAGE, "offset %u: \"%s\" must not contain NUL", off_of(x, t), name);
	if (k->dec_len > max)
		return fail(x, MU_WIRE_BAD_MESSAGE, "offset %u: \"%s\" is %u bytes, more than %zu", off_of(x, t), name,
			    k->dec_len, max);
	return MU_WIRE_OK;
}

/* Decodes string t into the string area. */
static enum mu_wire_code text_take(struct dec *x, uint32_t t, struct mu_wire_text *out)
{
	size_t n = 0;
	if (json_str_decode(x->d, t, x->str + x->str_used, x->str_cap - x->str_used, &n, NULL) != MU_OK)
		return fail(x, MU_WIRE_INTERNAL, "offset %u: no room for a decoded string", off_of(x, t));
	out->p = x->str + x->str_used;
	out->n = n;
	x->str_used += n;
	return MU_WIRE_OK;
}

/* Replaces control bytes (C0 and DEL) with '?': error messages and code names end up in logs. */
static void tame(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)s[i] < 0x20 || (uint8_t)s[i] == 0x7f)
			s[i] = '?';
}

/* A short string member copied NUL-terminated into out[0..cap); must not be empty. */
static enum mu_wire_code short_member(struct dec *x, const char *name, char *out, size_t cap, int printable)
{
	uint32_t t;
	size_t n;
	enum mu_wire_code c = member(x, 0, name, JSON_STRING, 1, &t);
	if (c != MU_WIRE_OK)
		return c;
	const struct json_tok *k = &x->d->tok[t];
	if (k->dec_len == 0 || (k->flags & JSON_TOK_NUL) ||
	    json_str_decode(x->d, t, out, cap, &n, NULL) != MU_OK)
		return fail(x, MU_WIRE_BAD_MESSAGE, "offset %u: \"%s\" must be 1..%zu bytes without NUL", off_of(x, t),
			    name, cap - 1);
	for (size_t i = 0; printable && i < n; i++)
		if ((uint8_t)out[i] < 0x20 || (uint8_t)out[i] > 0x7e) {
			memset(out, 0, cap);
			return fail(x, MU_WIRE_BAD_MESSAGE, "offset %u: \"%s\" must be printable ASCII", off_of(x, t),
				    name);
		}
	return MU_WIRE_OK;
}

static const char *const hello_keys[] = {"type", "version", "nonce"};
static const char *const evidence_keys[] = {"type", "format", "nonce", "pubkey", "measurement", "key_id", "claims"};
static const char *const unlock_keys[] = {"type", "key_id", "kbs_pub", "wrapped_key"};
static const char *const ready_keys[] = {"type", "model", "n_ctx", "max_tokens", "egress_bytes_per_s",
					 "egress_burst_bytes"};
static const char *const generate_keys[] = {"type", "id", "prompt", "messages", "max_tokens", "temperature",
					    "top_p", "top_k", "seed", "stream"};
static const char *const cancel_keys[] = {"type", "id"};
static const char *const token_keys[] = {"type", "id", "text"};
static const char *const done_keys[] = {"type", "id", "finish_reason", "usage", "elapsed_ms"};
static const char *const error_keys[] = {"type", "id", "code", "message"};
static const char *const usage_keys[] = {"prompt_tokens", "completion_tokens"};
static const char *const chat_keys[] = {"role", "content"};


static const struct {
	const char *const *keys;
	size_t n;
} members_of[MU_MSG_TYPE_COUNT] = {
	[MU_MSG_HELLO] = {hello_keys, N_OF(hello_keys)},
	[MU_MSG_EVIDENCE] = {evidence_keys, N_OF(evidence_keys)},
	[MU_MSG_UNLOCK] = {unlock_keys, N_OF(unlock_keys)},
	[MU_MSG_READY] = {ready_keys, N_OF(ready_keys)},
	[MU_MSG_GENERATE] = {generate_keys, N_OF(generate_keys)},
	[MU_MSG_CANCEL] = {cancel_keys, N_OF(cancel_keys)},
	[MU_MSG_TOKEN] = {token_keys, N_OF(token_keys)},
	[MU_MSG_DONE] = {done_keys, N_OF(done_keys)},
	[MU_MSG_ERROR] = {error_keys, N_OF(error_keys)},
};

static enum mu_wire_code dec_hello(struct dec *x, struct mu_msg *m)
{
	enum mu_wire_code c = int_member(x, 0, "version", INT64_MIN, INT64_MAX, &m->hello.version);
	if (c == MU_WIRE_OK)
		c = hex_member(x, "nonce", m->hello.nonce, MU_KBS_NONCE_LEN);
	return c;
}

static enum mu_wire_code dec_evidence(struct dec *x, struct mu_msg *m)
{
	uint32_t t;
	enum mu_wire_code c;
	if ((c = short_member(x, "format", m->evidence.format, sizeof m->evidence.format, 1)) != MU_WIRE_OK ||
	    (c = hex_member(x, "nonce", m->evidence.nonce, MU_KBS_NONCE_LEN)) != MU_WIRE_OK ||
	    (c = hex_member(x, "pubkey", m->evidence.pubkey, 32)) != MU_WIRE_OK ||
	    (c = hex_member(x, "measurement", m->evidence.measurement, 32)) != MU_WIRE_OK ||
	    (c = hex_member(x, "key_id", m->evidence.key_id, MU_KBS_KEY_ID_LEN)) != MU_WIRE_OK)
		return c;
	/* the format's own members are the key broker's business; only their place is checked */
	return member(x, 0, "claims", JSON_OBJECT, 0, &t);
}

static enum mu_wire_code dec_unlock(struct dec *x, struct mu_msg *m)
{
	enum mu_wire_code c;
	if ((c = hex_member(x, "key_id", m->unlock.key_id, MU_KBS_KEY_ID_LEN)) != MU_WIRE_OK ||
	    (c = hex_member(x, "kbs_pub", m->unlock.kbs_pub, 32)) != MU_WIRE_OK ||
	    (c = hex_member(x, "wrapped_key", m->unlock.wrapped_key, 48)) != MU_WIRE_OK)
		return c;
	return MU_WIRE_OK;
}

static enum mu_wire_code dec_ready(struct dec *x, struct mu_msg *m)
{
	enum mu_wire_code c;
	if ((c = short_member(x, "model", m->ready.model, sizeof m->ready.model, 1)) != MU_WIRE_OK ||
	    (c = int_member(x, 0, "n_ctx", 1, INT64_MAX, &m->ready.n_ctx)) != MU_WIRE_OK ||
	    (c = int_member(x, 0, "max_tokens", 1, INT64_MAX, &m->ready.max_tokens)) != MU_WIRE_OK ||
	    (c = int_member(x, 0, "egress_bytes_per_s", 1, INT64_MAX, &m->ready.egress_bytes_per_s)) != MU_WIRE_OK ||
	    (c = int_member(x, 0, "egress_burst_bytes", 1, INT64_MAX, &m->ready.egress_burst_bytes)) != MU_WIRE_OK)
		return c;
	return MU_WIRE_OK;
}

/* A generate parameter that must be an integer in [lo, hi] (bad_request otherwise). */
static enum mu_wire_code param_int(struct dec *x, uint32_t t, const char *name, int64_t lo, int64_t hi,
				   int64_t *out)
{
	if (t == JSON_NONE)
		return MU_WIRE_OK;
	if (json_get_int(x->d, t, lo, hi, out, NULL) != MU_OK)
		return fail(x, MU_WIRE_BAD_REQUEST, "offset %u: \"%s\" must be an integer in %lld..%lld", off_of(x, t),
			    name, (long long)lo, (long long)hi);
	return MU_WIRE_OK;
}

static enum mu_wire_code dec_generate(struct dec *x, struct mu_msg *m)
{
	const struct json_doc *d = x->d;
	uint32_t prompt, msgs, max_tokens, temp, top_p, top_k, seed, stream;
	enum mu_wire_code c;
	struct json_iter it;
	uint32_t k, v, i;

	/* shape (bad_message) */
	if ((c = id_member(x, m, 1)) != MU_WIRE_OK || (c = member(x, 0, "prompt", JSON_STRING, 0, &prompt)) ||
	    (c = member(x, 0, "messages", JSON_ARRAY, 0, &msgs)) ||
	    (c = member(x, 0, "max_tokens", JSON_NUMBER, 1, &max_tokens)) ||
	    (c = member(x, 0, "temperature", JSON_NUMBER, 0, &temp)) ||
	    (c = member(x, 0, "top_p", JSON_NUMBER, 0, &top_p)) || (c = member(x, 0, "top_k", JSON_NUMBER, 0, &top_k)) ||
	    (c = member(x, 0, "seed", JSON_NUMBER, 0, &seed)) || (c = member(x, 0, "stream", JSON_BOOL, 0, &stream)))
		return c;
	if ((prompt == JSON_NONE) == (msgs == JSON_NONE))
		return fail(x, MU_WIRE_BAD_MESSAGE, "exactly one of \"prompt\" and \"messages\" is needed");
	if (prompt != JSON_NONE && (c = text_ok(x, prompt, "prompt", MU_WIRE_MAX_FRAME)) != MU_WIRE_OK)
		return c;
	i = 0;
	json_iter_init(&it, d, msgs);
	while (msgs != JSON_NONE && json_iter_next(&it, &k, &v)) {
		uint32_t role, content;
		if (json_type(d, v) != JSON_OBJECT)
			return fail(x, MU_WIRE_BAD_MESSAGE, "offset %u: messages[%u] must be an object", off_of(x, v), i);
		if (json_obj_only(d, v, chat_keys, N_OF(chat_keys), x->err) != MU_OK) {
			mu_err_prefix(x->err, "%s: messages[%u]", x->what, i);
			return MU_WIRE_BAD_MESSAGE;
		}
		if ((c = member(x, v, "role", JSON_STRING, 1, &role)) != MU_WIRE_OK ||
		    (c = member(x, v, "content", JSON_STRING, 1, &content)) != MU_WIRE_OK)
			return c;
		if (!json_str_eq(d, role, "system") && !json_str_eq(d, role, "user") &&
		    !json_str_eq(d, role, "assistant"))
			return fail(x, MU_WIRE_BAD_MESSAGE, "offset %u: messages[%u].role must be system, user or assistant",
				    off_of(x, role), i);
		if ((c = text_ok(x, content, "content", MU_WIRE_MAX_FRAME)) != MU_WIRE_OK)
			return c;
		i++;
	}

	/* values (bad_request) */
	if (msgs != JSON_NONE && (i < 1 || i > MU_WIRE_MAX_MESSAGES))
		return fail(x, MU_WIRE_BAD_REQUEST, "offset %u: \"messages\" must hold 1..%u messages, not %u",
			    off_of(x, msgs), MU_WIRE_MAX_MESSAGES, i);
	int64_t sd = 0;
	m->generate.top_p = 1.0;
	m->generate.stream = 1;
	if ((c = param_int(x, max_tokens, "max_tokens", 1, MU_WIRE_MAX_GEN_TOKENS, &m->generate.max_tokens)) ||
	    (c = param_int(x, top_k, "top_k", 0, MU_MAX_VOCAB, &m->generate.top_k)) ||
	    (c = param_int(x, seed, "seed", 0, (int64_t)MU_WIRE_SEED_MAX, &sd)))
		return c;
	m->generate.seed = (uint64_t)sd;
	if (temp != JSON_NONE &&
	    (json_get_f64(d, temp, &m->generate.temperature, NULL) != MU_OK ||
	     !(m->generate.temperature >= 0.0 && m->generate.temperature <= 100.0)))
		return fail(x, MU_WIRE_BAD_REQUEST, "offset %u: \"temperature\" must be a number in 0..100",
			    off_of(x, temp));
	if (top_p != JSON_NONE &&
	    (json_get_f64(d, top_p, &m->generate.top_p, NULL) != MU_OK ||
	     !(m->generate.top_p > 0.0 && m->generate.top_p <= 1.0)))
		return fail(x, MU_WIRE_BAD_REQUEST, "offset %u: \"top_p\" must be a number in (0, 1]", off_of(x, top_p));
	if (stream != JSON_NONE)
		json_get_bool(d, stream, &m->generate.stream, NULL);

	/* commit the texts */
	if (prompt != JSON_NONE) {
		m->generate.has_prompt = 1;
		return text_take(x, prompt, &m->generate.prompt);
	}
	i = 0;
	json_iter_init(&it, d, msgs);
	while (json_iter_next(&it, &k, &v)) {
		uint32_t role = json_obj_get(d, v, "role");
		m->generate.role[i] = json_str_eq(d, role, "system") ? MU_WIRE_ROLE_SYSTEM
				      : json_str_eq(d, role, "user") ? MU_WIRE_ROLE_USER
								     : MU_WIRE_ROLE_ASSISTANT;
		if ((c = text_take(x, json_obj_get(d, v, "content"), &m->generate.content[i])) != MU_WIRE_OK)
			return c;
		i++;
	}
	m->generate.n_messages = i;
	return MU_WIRE_OK;
}

static enum mu_wire_code dec_token(struct dec *x, struct mu_msg *m)
{
	uint32_t t;
	enum mu_wire_code c;
	if ((c = id_member(x, m, 1)) != MU_WIRE_OK || (c = member(x, 0, "text", JSON_STRING, 1, &t)) != MU_WIRE_OK ||
	    (c = text_ok(x, t, "text", MU_WIRE_MAX_TOKEN_TEXT)) != MU_WIRE_OK)
		return c;
	return text_take(x, t, &m->token.text);
}

static enum mu_wire_code dec_done(struct dec *x, struct mu_msg *m)
{
	uint32_t t, usage;
	enum mu_wire_code c;
	if ((c = id_member(x, m, 1)) != MU_WIRE_OK ||
	    (c = member(x, 0, "finish_reason", JSON_STRING, 1, &t)) != MU_WIRE_OK)
		return c;
	unsigned f = 0;
	while (f < N_OF(finish_names) && !json_str_eq(x->d, t, finish_names[f]))
		f++;
	if (f == N_OF(finish_names))
		return fail(x, MU_WIRE_BAD_MESSAGE, "offset %u: \"finish_reason\" must be stop, length or cancelled",
			    off_of(x, t));
	m->done.finish = (enum mu_finish)f;
	if ((c = member(x, 0, "usage", JSON_OBJECT, 1, &usage)) != MU_WIRE_OK)
		return c;
	if (json_obj_only(x->d, usage, usage_keys, N_OF(usage_keys), x->err) != MU_OK) {
		mu_err_prefix(x->err, "%s: usage", x->what);
		return MU_WIRE_BAD_MESSAGE;
	}
	if ((c = int_member(x, usage, "prompt_tokens", 0, INT64_MAX, &m->done.prompt_tokens)) != MU_WIRE_OK ||
	    (c = int_member(x, usage, "completion_tokens", 0, INT64_MAX, &m->done.completion_tokens)) != MU_WIRE_OK ||
	    (c = int_member(x, 0, "elapsed_ms", 0, INT64_MAX, &m->done.elapsed_ms)) != MU_WIRE_OK)
		return c;
	return MU_WIRE_OK;
}

static enum mu_wire_code dec_error(struct dec *x, struct mu_msg *m)
{
	uint32_t t;
	size_t n = 0;
	enum mu_wire_code c;
	if ((c = id_member(x, m, 0)) != MU_WIRE_OK ||
	    (c = short_member(x, "code", m->error.code_name, sizeof m->error.code_name, 0)) != MU_WIRE_OK)
		return c;
	n = strlen(m->error.code_name);
	m->error.code = mu_wire_code_from_name(m->error.code_name, n);
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)m->error.code_name[i] < 0x20 || (uint8_t)m->error.code_name[i] > 0x7e)
			m->error.code_name[i] = '?';
	if (m->error.code == MU_WIRE_OK)
		return fail(x, MU_WIRE_BAD_MESSAGE, "\"code\" must name an error, not ok");
	if ((c = member(x, 0, "message", JSON_STRING, 1, &t)) != MU_WIRE_OK ||
	    (c = text_ok(x, t, "message", MU_WIRE_MAX_ERROR_MESSAGE)) != MU_WIRE_OK)
		return c;
	json_str_decode(x->d, t, m->error.message, sizeof m->error.message, &n, NULL);
	tame(m->error.message, n);
	return MU_WIRE_OK;
}

static size_t json_scratch(size_t len)
{
	size_t need = 0;
	if (len > MU_WIRE_MAX_FRAME)
		len = MU_WIRE_MAX_FRAME;
	if (json_mem_size(&wire_limits, len, &need, NULL) != MU_OK)
		return 0; /* cannot happen: the limits are usable and len within them */
	return need;
}

size_t mu_msg_mem_size(size_t len)
{
	if (len > MU_WIRE_MAX_FRAME)
		len = MU_WIRE_MAX_FRAME;
	return json_scratch(len) + len + 1;
}

enum mu_wire_code mu_msg_decode(struct mu_msg *m, const uint8_t *body, size_t len, void *mem, size_t mem_len,
				struct mu_error *err)
{
	struct json_doc d;
	struct dec x = {.d = &d, .what = "message", .err = err};
	enum mu_wire_code c;
	memset(m, 0, sizeof *m);

	size_t bad = json_utf8_check(body, len);
	if (bad != len) {
		mu_errf(err, MU_ERR_FORMAT, "offset %zu: invalid UTF-8", bad);
		return MU_WIRE_INVALID_UTF8;
	}
	if (len > MU_WIRE_MAX_FRAME) {
		mu_errf(err, MU_ERR_RANGE, "body of %zu bytes is over the %u-byte limit", len, MU_WIRE_MAX_FRAME);
		return MU_WIRE_BAD_JSON;
	}
	size_t js = json_scratch(len);
	if (js == 0 || !mem || mem_len < js + len + 1) {
		mu_errf(err, MU_ERR_NOMEM, "decoder scratch of %zu bytes is below the %zu needed", mem_len,
			mu_msg_mem_size(len));
		return MU_WIRE_INTERNAL;
	}
	if (json_parse(&d, body, len, &wire_limits, mem, js, err) != MU_OK)
		return MU_WIRE_BAD_JSON;
	if (json_type(&d, 0) != JSON_OBJECT) {
		mu_errf(err, MU_ERR_FORMAT, "offset %u: the body must be a JSON object", d.tok[0].start);
		return MU_WIRE_BAD_JSON;
	}
	x.str = (char *)mem + js;
	x.str_cap = mem_len - js;

	uint32_t t;
	if ((c = member(&x, 0, "type", JSON_STRING, 1, &t)) != MU_WIRE_OK)
		return c;
	enum mu_msg_type type = MU_MSG_NONE;
	for (unsigned i = MU_MSG_HELLO; i < MU_MSG_TYPE_COUNT && type == MU_MSG_NONE; i++)
		if (json_str_eq(&d, t, type_names[i]))
			type = (enum mu_msg_type)i;
	if (type == MU_MSG_NONE) {
		mu_errf(err, MU_ERR_FORMAT, "offset %u: \"type\" names no message of protocol v%d", off_of(&x, t),
			MU_WIRE_VERSION);
		return MU_WIRE_UNKNOWN_TYPE;
	}
	x.what = type_names[type];
	if (json_obj_only(&d, 0, members_of[type].keys, members_of[type].n, err) != MU_OK) {
		mu_err_prefix(err, "%s", x.what);
		return MU_WIRE_BAD_MESSAGE;
	}
	switch (type) {
	case MU_MSG_HELLO: c = dec_hello(&x, m); break;
	case MU_MSG_EVIDENCE: c = dec_evidence(&x, m); break;
	case MU_MSG_UNLOCK: c = dec_unlock(&x, m); break;
	case MU_MSG_READY: c = dec_ready(&x, m); break;
	case MU_MSG_GENERATE: c = dec_generate(&x, m); break;
	case MU_MSG_CANCEL: c = id_member(&x, m, 1); break;
	case MU_MSG_TOKEN: c = dec_token(&x, m); break;
	case MU_MSG_DONE: c = dec_done(&x, m); break;
	case MU_MSG_ERROR: c = dec_error(&x, m); break;
	default: c = MU_WIRE_INTERNAL; break;
	}
	if (c != MU_WIRE_OK) {
		memset(m, 0, sizeof *m);
		return c;
	}
	m->type = type;
	return MU_WIRE_OK;
}
