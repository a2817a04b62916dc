/* oai.c — the HTTP API's bodies; see oai.h.
 *
 * Parsing. The body is parsed once with the strict JSON parser under oai_limits, then checked
 * member by member in a fixed order (unknown members first, then model, the text, the
 * sampling parameters, the stream flags and the members that only take one value), so one
 * body always gets the same error. Every error names the member ("messages[2].role") and the
 * allowed form, never the client's text. Texts that need no unescaping point into the body;
 * the others, and joined content parts, are decoded into the scratch after the JSON parser's
 * memory:
 *
 *     mem = [ json_parse memory (json_mem_size) | decoded strings (len + 1 bytes) ]
 *
 * len + 1 bytes are enough because no string decodes to more bytes than its JSON spelling and
 * every kept text is decoded at most once (json_str_decode's NUL lands where the next string
 * starts, or in the one spare byte).
 *
 * What the parser hands back must encode as a wire generate and decode back equal (the proxy
 * relies on that): text without NUL (refused), a frame of at most MU_WIRE_MAX_FRAME bytes
 * (the encoded length is bounded from above; a larger prompt is refused), and temperature and
 * top_p that the wire's number writer reproduces exactly (checked by encoding and decoding a
 * small generate that carries them).
 *
 * Writing. Each writer appends to a bounded buffer and fails as a whole: a result that does
 * not fit, or text that is not valid UTF-8, returns 0 and leaves "" in the buffer.
 *
 * Stop sequences. One Knuth-Morris-Pratt automaton per stop sequence. The struct keeps only
 * the held bytes, which are the longest suffix of the text that is a prefix of some stop
 * sequence; every automaton's state is a suffix of them, so each push rebuilds the states by
 * running the automata over the held bytes (O(OAI_MAX_STOP_BYTES) per stop) and then feeds
 * the new bytes (O(1) amortised per byte and stop). The first stop sequence to complete wins;
 * when two complete on the same byte, the longer one (which starts earlier) does.
 */
#include "host/oai.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/ckd.h"
#include "wire/json.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors ---- */

static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

void oai_error_set(struct oai_error *e, int status, const char *type, const char *code, const char *param,
		   const char *fmt, ...)
{
	va_list ap;
	if (!e)
		return;
	memset(e, 0, sizeof *e);
	e->status = status;
	e->type = type;
	e->code = code;
	if (param) {
		size_t n = strlen(param);
		if (n > sizeof e->param - 1)
			n = sizeof e->param - 1;
		memcpy(e->param, param, n);
		printable(e->param);
	}
	if (fmt) {
		va_start(ap, fmt);
		if (vsnprintf(e->message, sizeof e->message, fmt, ap) < 0)
			e->message[0] = '\0';
		va_end(ap);
	}
	printable(e->message);
}

/* ---- parsing ---- */

/* Depth 5 is the deepest a valid body goes (root > messages > message > content > part);
 * 8192 tokens hold 64 messages of about 20 content parts each. */
#define OAI_MAX_DEPTH 6u
#define OAI_MAX_TOKENS 8192u

static const struct json_limits oai_limits = {
	.max_bytes = OAI_MAX_BODY,
	.max_depth = OAI_MAX_DEPTH,
	.max_tokens = OAI_MAX_TOKENS,
	.max_string = OAI_MAX_BODY,
	.max_number = 64,
	.flags = 0,
};

static size_t json_scratch(size_t len)
{
	size_t need = 0;
	if (json_mem_size(&oai_limits, len, &need, NULL) != MU_OK)
		return 0; /* cannot happen: the limits are usable and len is within them */
	return need;
}

size_t oai_mem_size(size_t len)
{
	if (len > OAI_MAX_BODY)
		len = OAI_MAX_BODY;
	return json_scratch(len) + len + 1;
}

struct px {
	const struct json_doc *d;
	struct oai_request *r;
	struct oai_error *e;
	char *str; /* decoded strings */
	size_t str_cap, str_used;
};

__attribute__((format(printf, 4, 5))) static int bad(struct px *x, const char *code, const char *param,
						    const char *fmt, ...)
{
	char msg[sizeof x->e->message];
	va_list ap;
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	oai_error_set(x->e, 400, "invalid_request_error", code, param, "%s", msg);
	return -1;
}

static int internal(struct px *x, const char *what)
{
	oai_error_set(x->e, 500, "server_error", NULL, NULL, "internal error: %s", what);
	return -1;
}

/* Member name of obj, JSON_NONE when it is absent or null (null means "not given" for every
 * optional member, as OpenAI's API treats it). */
static uint32_t opt(const struct px *x, uint32_t obj, const char *name)
{
	uint32_t t = json_obj_get(x->d, obj, name);
	return t != JSON_NONE && json_type(x->d, t) == JSON_NULL ? JSON_NONE : t;
}

static int is_type(const struct px *x, uint32_t t, enum json_type type) { return json_type(x->d, t) == (int)type; }

/* Refuses the first member of obj (in document order) whose name is not in keys. The name goes
 * into param (after prefix, e.g. "options.") when it is 1..40 bytes of printable ASCII;
 * otherwise it is not shown at all. */
static int only(struct px *x, uint32_t obj, const char *const *keys, size_t n, const char *prefix)
{
	struct json_iter it;
	uint32_t k;
	json_iter_init(&it, x->d, obj);
	while (json_iter_next(&it, &k, NULL)) {
		size_t i = 0, nl = json_str_len(x->d, k);
		while (i < n && !json_str_eq(x->d, k, keys[i]))
			i++;
		if (i < n)
			continue;
		char name[41], param[64];
		int show = nl >= 1 && nl < sizeof name && !(x->d->tok[k].flags & JSON_TOK_NUL) &&
			   json_str_decode(x->d, k, name, sizeof name, NULL, NULL) == MU_OK;
		for (size_t j = 0; show && j < nl; j++)
			show = (unsigned char)name[j] >= 0x20 && (unsigned char)name[j] <= 0x7e;
		if (show) {
			int pn = snprintf(param, sizeof param, "%s%s", prefix, name);
			if (pn > 0 && (size_t)pn < sizeof param)
				return bad(x, "unknown_parameter", param, "Unrecognized request argument supplied: %s",
					   param);
		}
		size_t pl = strlen(prefix);
		if (pl && prefix[pl - 1] == '.')
			pl--;
		snprintf(param, sizeof param, "%.*s", (int)pl, prefix);
		return bad(x, "unknown_parameter", param,
			   "Unrecognized request argument supplied in %s (its name is not shown: it is not 1 to 40 "
			   "bytes of printable ASCII)",
			   pl ? param : "the body");
	}
	return 0;
}

/* String t as wire text: its bytes in the body when it has no escapes, else decoded into the
 * scratch. */
static int take(struct px *x, uint32_t t, struct mu_wire_text *out)
{
	const char *s;
	size_t n = 0;
	if (json_str_raw(x->d, t, &s, &n)) {
		out->p = s;
		out->n = n;
		return 0;
	}
	if (json_str_decode(x->d, t, x->str + x->str_used, x->str_cap - x->str_used, &n, NULL) != MU_OK)
		return internal(x, "no scratch left for a decoded string");
	out->p = x->str + x->str_used;
	out->n = n;
	x->str_used += n;
	return 0;
}

/* A text member: a string without NUL (the wire protocol carries no NUL). */
static int p_text(struct px *x, uint32_t t, const char *param, struct mu_wire_text *out)
{
	if (!is_type(x, t, JSON_STRING))
		return bad(x, "invalid_type", param, "%s must be a string", param);
	if (x->d->tok[t].flags & JSON_TOK_NUL)
		return bad(x, "invalid_value", param, "%s must not contain NUL characters (\\u0000)", param);
	return take(x, t, out);
}

static int p_int(struct px *x, uint32_t t, const char *param, int64_t lo, int64_t hi, int64_t *out)
{
	int ok = is_type(x, t, JSON_NUMBER);
	if (!ok || json_get_int(x->d, t, lo, hi, out, NULL) != MU_OK)
		return bad(x, ok ? "invalid_value" : "invalid_type", param, "%s must be an integer from %lld to %lld",
			   param, (long long)lo, (long long)hi);
	return 0;
}

/* 1 when a generate carrying temperature and top_p encodes and decodes back to the same bits. */
static int numbers_encode(double temperature, double top_p)
{
	_Alignas(16) uint8_t mem[8192];
	char buf[512];
	struct mu_msg a, b;
	memset(&a, 0, sizeof a);
	a.type = MU_MSG_GENERATE;
	a.id[0] = 'x';
	a.has_id = 1;
	a.generate.has_prompt = 1;
	a.generate.prompt.p = "";
	a.generate.max_tokens = 1;
	a.generate.temperature = temperature;
	a.generate.top_p = top_p;
	size_t n = mu_msg_generate(buf, sizeof buf, &a);
	if (n == 0 || mu_msg_mem_size(n) > sizeof mem ||
	    mu_msg_decode(&b, (const uint8_t *)buf, n, mem, sizeof mem, NULL) != MU_WIRE_OK)
		return 0;
	return mu_msg_equal(&a, &b);
}

/* A number in [lo, hi] (above lo when lo_open), exactly representable on the wire. */
static int p_num(struct px *x, uint32_t t, const char *param, double lo, int lo_open, double hi, double *out)
{
	int ok = is_type(x, t, JSON_NUMBER);
	double v = 0;
	if (ok && json_get_f64(x->d, t, &v, NULL) == MU_OK && (lo_open ? v > lo : v >= lo) && v <= hi) {
		if (v == 0)
			v = 0; /* -0 is 0 */
		if (numbers_encode(lo_open ? 0 : v, lo_open ? v : 1)) {
			*out = v;
			return 0;
		}
	}
	if (lo_open)
		return bad(x, ok ? "invalid_value" : "invalid_type", param,
			   "%s must be a number greater than %g and at most %g (at most 17 significant digits)", param,
			   lo, hi);
	return bad(x, ok ? "invalid_value" : "invalid_type", param,
		   "%s must be a number from %g to %g (at most 17 significant digits)", param, lo, hi);
}

static int p_bool(struct px *x, uint32_t t, const char *param, int *out)
{
	if (json_get_bool(x->d, t, out, NULL) != MU_OK)
		return bad(x, "invalid_type", param, "%s must be a boolean", param);
	return 0;
}

/* A member that only takes one value (or null, which counts as absent). */
static int p_only_zero(struct px *x, uint32_t root, const char *name)
{
	uint32_t t = opt(x, root, name);
	double v = 1;
	if (t == JSON_NONE)
		return 0;
	int ok = is_type(x, t, JSON_NUMBER);
	if (!ok || json_get_f64(x->d, t, &v, NULL) != MU_OK || v != 0)
		return bad(x, ok ? "invalid_value" : "invalid_type", name, "%s must be 0 (penalties are not supported)",
			   name);
	return 0;
}

static int p_only_false(struct px *x, uint32_t root, const char *name)
{
	uint32_t t = opt(x, root, name);
	int v = 1;
	if (t == JSON_NONE)
		return 0;
	if (json_get_bool(x->d, t, &v, NULL) != MU_OK)
		return bad(x, "invalid_type", name, "%s must be false", name);
	if (v)
		return bad(x, "invalid_value", name, "%s must be false (it is not supported)", name);
	return 0;
}

static int p_only_null(struct px *x, uint32_t root, const char *name)
{
	if (opt(x, root, name) != JSON_NONE)
		return bad(x, "invalid_value", name, "%s must be null (it is not supported)", name);
	return 0;
}

static int p_model(struct px *x, uint32_t root)
{
	uint32_t t = opt(x, root, "model");
	size_t n = 0;
	if (t == JSON_NONE)
		return bad(x, "missing_required_parameter", "model", "you must provide a model parameter");
	if (!is_type(x, t, JSON_STRING))
		return bad(x, "invalid_type", "model", "model must be a string");
	int ok = !(x->d->tok[t].flags & JSON_TOK_NUL) && json_str_len(x->d, t) >= 1 &&
		 json_str_decode(x->d, t, x->r->model, sizeof x->r->model, &n, NULL) == MU_OK;
	for (size_t i = 0; ok && i < n; i++)
		ok = (unsigned char)x->r->model[i] >= 0x20 && (unsigned char)x->r->model[i] <= 0x7e;
	if (!ok) {
		memset(x->r->model, 0, sizeof x->r->model);
		return bad(x, "invalid_value", "model", "model must be 1 to %u bytes of printable ASCII",
			   MU_WIRE_MAX_MODEL_NAME);
	}
	return 0;
}

/* stop: OpenAI takes a string or an array of 1..4 strings; Ollama's options.stop an array of
 * 0..4 strings (Ollama accepts an empty list). Each is 1..OAI_MAX_STOP_BYTES bytes. */
static int p_stop(struct px *x, uint32_t t, const char *param, int ollama)
{
	struct oai_request *r = x->r;
	const char *form = ollama ? "an array of at most 4 strings of 1 to 64 bytes"
				  : "a string or an array of 1 to 4 strings of 1 to 64 bytes";
	uint32_t one[1] = {t}, n = 1;
	const uint32_t *items = one;
	uint32_t list[OAI_MAX_STOP];
	char ep[64];
	if (is_type(x, t, JSON_ARRAY)) {
		struct json_iter it;
		uint32_t v;
		n = x->d->tok[t].count;
		if (n > OAI_MAX_STOP || (n == 0 && !ollama))
			return bad(x, "invalid_value", param, "%s must be %s", param, form);
		json_iter_init(&it, x->d, t);
		for (uint32_t i = 0; json_iter_next(&it, NULL, &v); i++)
			list[i] = v;
		items = list;
	} else if (ollama || !is_type(x, t, JSON_STRING)) {
		return bad(x, "invalid_type", param, "%s must be %s", param, form);
	}
	for (uint32_t i = 0; i < n; i++) {
		if (items != one)
			snprintf(ep, sizeof ep, "%s[%u]", param, i);
		else
			snprintf(ep, sizeof ep, "%s", param);
		if (!is_type(x, items[i], JSON_STRING))
			return bad(x, "invalid_type", ep, "%s must be %s", param, form);
		uint32_t dl = json_str_len(x->d, items[i]);
		if (dl < 1 || dl > OAI_MAX_STOP_BYTES)
			return bad(x, "invalid_value", ep, "%s must be %s", param, form);
	}
	for (uint32_t i = 0; i < n; i++) {
		char tmp[OAI_MAX_STOP_BYTES + 1];
		size_t dl = 0;
		if (json_str_decode(x->d, items[i], tmp, sizeof tmp, &dl, NULL) != MU_OK)
			return internal(x, "stop sequence did not decode");
		memcpy(r->stop[i], tmp, dl);
		r->stop_len[i] = (uint8_t)dl;
	}
	r->n_stop = n;
	return 0;
}

/* messages[i].content: a string, or an array of {"type":"text","text":string} parts joined
 * into the scratch. */
static int p_content(struct px *x, uint32_t t, uint32_t i, struct mu_wire_text *out)
{
	static const char *const part_keys[] = {"type", "text"};
	char param[32], pp[48], mp[64]; /* "messages[63].content[8191].text" at most */
	struct json_iter it;
	uint32_t v, j;
	snprintf(param, sizeof param, "messages[%u].content", i % 100u);
	if (is_type(x, t, JSON_STRING))
		return p_text(x, t, param, out);
	if (!is_type(x, t, JSON_ARRAY))
		return bad(x, "invalid_type", param, "%s must be a string or an array of text parts", param);
	json_iter_init(&it, x->d, t);
	for (j = 0; json_iter_next(&it, NULL, &v); j++) {
		uint32_t ty, tx;
		snprintf(pp, sizeof pp, "%s[%u]", param, j % 100000u);
		if (!is_type(x, v, JSON_OBJECT))
			return bad(x, "invalid_type", pp, "%s must be an object {\"type\": \"text\", \"text\": string}",
				   pp);
		snprintf(mp, sizeof mp, "%s.", pp);
		if (only(x, v, part_keys, N_OF(part_keys), mp))
			return -1;
		snprintf(mp, sizeof mp, "%s.type", pp);
		if ((ty = opt(x, v, "type")) == JSON_NONE)
			return bad(x, "missing_required_parameter", mp, "%s is required", mp);
		if (!is_type(x, ty, JSON_STRING))
			return bad(x, "invalid_type", mp, "%s must be a string", mp);
		if (!json_str_eq(x->d, ty, "text"))
			return bad(x, "invalid_value", mp, "%s must be \"text\" (only text parts are supported)", mp);
		snprintf(mp, sizeof mp, "%s.text", pp);
		if ((tx = opt(x, v, "text")) == JSON_NONE)
			return bad(x, "missing_required_parameter", mp, "%s is required", mp);
		if (!is_type(x, tx, JSON_STRING))
			return bad(x, "invalid_type", mp, "%s must be a string", mp);
		if (x->d->tok[tx].flags & JSON_TOK_NUL)
			return bad(x, "invalid_value", mp, "%s must not contain NUL characters (\\u0000)", mp);
	}
	out->p = x->str + x->str_used;
	out->n = 0;
	json_iter_init(&it, x->d, t);
	while (json_iter_next(&it, NULL, &v)) {
		size_t n = 0;
		if (json_str_decode(x->d, json_obj_get(x->d, v, "text"), x->str + x->str_used, x->str_cap - x->str_used,
				    &n, NULL) != MU_OK)
			return internal(x, "no scratch left for a content part");
		x->str_used += n;
		out->n += n;
	}
	return 0;
}

static int p_messages(struct px *x, uint32_t root)
{
	static const char *const msg_keys[] = {"role", "content", "name"};
	__typeof__(x->r->gen.generate) *g = &x->r->gen.generate;
	uint32_t t = opt(x, root, "messages"), v, i;
	struct json_iter it;
	char p[16], q[32]; /* "messages[63].content" at most */
	if (t == JSON_NONE)
		return bad(x, "missing_required_parameter", "messages",
			   "you must provide messages (an array of 1 to %u messages)", MU_WIRE_MAX_MESSAGES);
	if (!is_type(x, t, JSON_ARRAY))
		return bad(x, "invalid_type", "messages", "messages must be an array of 1 to %u messages",
			   MU_WIRE_MAX_MESSAGES);
	if (x->d->tok[t].count < 1 || x->d->tok[t].count > MU_WIRE_MAX_MESSAGES)
		return bad(x, "invalid_value", "messages", "messages must hold 1 to %u messages",
			   MU_WIRE_MAX_MESSAGES);
	json_iter_init(&it, x->d, t);
	for (i = 0; json_iter_next(&it, NULL, &v); i++) {
		uint32_t role, content, name;
		snprintf(p, sizeof p, "messages[%u]", i % 100u); /* i < MU_WIRE_MAX_MESSAGES */
		if (!is_type(x, v, JSON_OBJECT))
			return bad(x, "invalid_type", p, "%s must be an object", p);
		snprintf(q, sizeof q, "%s.", p);
		if (only(x, v, msg_keys, N_OF(msg_keys), q))
			return -1;
		snprintf(q, sizeof q, "%s.role", p);
		if ((role = opt(x, v, "role")) == JSON_NONE)
			return bad(x, "missing_required_parameter", q, "%s is required", q);
		if (!is_type(x, role, JSON_STRING))
			return bad(x, "invalid_type", q, "%s must be a string", q);
		if (json_str_eq(x->d, role, "system") || json_str_eq(x->d, role, "developer"))
			g->role[i] = MU_WIRE_ROLE_SYSTEM;
		else if (json_str_eq(x->d, role, "user"))
			g->role[i] = MU_WIRE_ROLE_USER;
		else if (json_str_eq(x->d, role, "assistant"))
			g->role[i] = MU_WIRE_ROLE_ASSISTANT;
		else
			return bad(x, "invalid_value", q, "%s must be system, developer, user or assistant", q);
		snprintf(q, sizeof q, "%s.content", p);
		if ((content = opt(x, v, "content")) == JSON_NONE)
			return bad(x, "missing_required_parameter", q, "%s is required", q);
		if (p_content(x, content, i, &g->content[i]))
			return -1;
		snprintf(q, sizeof q, "%s.name", p);
		if ((name = opt(x, v, "name")) != JSON_NONE && !is_type(x, name, JSON_STRING))
			return bad(x, "invalid_type", q, "%s must be a string", q);
	}
	g->n_messages = i;
	g->has_prompt = 0;
	return 0;
}

static int p_prompt(struct px *x, uint32_t root, int array_ok)
{
	__typeof__(x->r->gen.generate) *g = &x->r->gen.generate;
	uint32_t t = opt(x, root, "prompt");
	if (t == JSON_NONE)
		return bad(x, "missing_required_parameter", "prompt", "you must provide a prompt");
	if (array_ok && is_type(x, t, JSON_ARRAY)) {
		if (x->d->tok[t].count != 1)
			return bad(x, "invalid_value", "prompt", "prompt must be a string or an array of exactly one string");
		t = t + 1; /* the one element */
		if (!is_type(x, t, JSON_STRING))
			return bad(x, "invalid_type", "prompt", "prompt must be a string or an array of exactly one string");
	} else if (array_ok && !is_type(x, t, JSON_STRING)) {
		return bad(x, "invalid_type", "prompt", "prompt must be a string or an array of exactly one string");
	}
	g->has_prompt = 1;
	return p_text(x, t, "prompt", &g->prompt);
}

/* Bytes jsonw spends on text (without the quotes): what mu_msg_generate will write. */
static size_t wire_len(const struct mu_wire_text *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++) {
		unsigned char c = (unsigned char)t->p[i];
		n += c == '"' || c == '\\' || c == '\n' || c == '\t' || c == '\r' ? 2 : c < 0x20 ? 6 : 1;
	}
	return n;
}

/* An upper bound of the encoded generate's length (with a 64-byte id) must fit in one frame. */
static int fits_frame(struct px *x)
{
	const __typeof__(x->r->gen.generate) *g = &x->r->gen.generate;
	size_t total = 400; /* everything but the text, the numbers at their longest */
	if (g->has_prompt)
		total += wire_len(&g->prompt);
	for (uint32_t i = 0; !g->has_prompt && i < g->n_messages; i++)
		total += 48 + wire_len(&g->content[i]);
	if (total > MU_WIRE_MAX_FRAME)
		return bad(x, "context_length_exceeded", g->has_prompt ? "prompt" : "messages",
			   "the %s is too long: encoded for the enclave it must fit in %u bytes",
			   g->has_prompt ? "prompt" : "messages", MU_WIRE_MAX_FRAME);
	return 0;
}

/* Members OpenAI's two APIs share: max_tokens, temperature, top_p, seed, stop, stream,
 * stream_options, n, user, presence_penalty, frequency_penalty. */
static int p_openai(struct px *x, uint32_t root, int chat)
{
	struct oai_request *r = x->r;
	__typeof__(r->gen.generate) *g = &r->gen.generate;
	static const char *const so_keys[] = {"include_usage"};
	uint32_t t, t2, so;
	int64_t v;

	if ((t = opt(x, root, "max_tokens")) != JSON_NONE &&
	    p_int(x, t, "max_tokens", 1, MU_WIRE_MAX_GEN_TOKENS, &g->max_tokens))
		return -1;
	if (chat && (t2 = opt(x, root, "max_completion_tokens")) != JSON_NONE) {
		if (p_int(x, t2, "max_completion_tokens", 1, MU_WIRE_MAX_GEN_TOKENS, &v))
			return -1;
		/* both given: accepted when they agree (OpenAI's API leaves this case open) */
		if (t != JSON_NONE && v != g->max_tokens)
			return bad(x, "invalid_value", "max_completion_tokens",
				   "max_tokens and max_completion_tokens must be equal when both are given");
		g->max_tokens = v;
	}
	g->temperature = 1.0;
	if ((t = opt(x, root, "temperature")) != JSON_NONE && p_num(x, t, "temperature", 0, 0, 2, &g->temperature))
		return -1;
	if ((t = opt(x, root, "top_p")) != JSON_NONE && p_num(x, t, "top_p", 0, 1, 1, &g->top_p))
		return -1;
	if ((t = opt(x, root, "seed")) != JSON_NONE) {
		if (p_int(x, t, "seed", 0, (int64_t)MU_WIRE_SEED_MAX, &v))
			return -1;
		g->seed = (uint64_t)v;
	}
	if ((t = opt(x, root, "stop")) != JSON_NONE && p_stop(x, t, "stop", 0))
		return -1;
	if ((t = opt(x, root, "stream")) != JSON_NONE && p_bool(x, t, "stream", &r->stream))
		return -1;
	if ((so = opt(x, root, "stream_options")) != JSON_NONE) {
		if (!is_type(x, so, JSON_OBJECT))
			return bad(x, "invalid_type", "stream_options", "stream_options must be an object");
		if (only(x, so, so_keys, N_OF(so_keys), "stream_options."))
			return -1;
		if (!r->stream)
			return bad(x, "invalid_value", "stream_options",
				   "stream_options is only allowed when stream is true");
		if ((t = opt(x, so, "include_usage")) != JSON_NONE &&
		    p_bool(x, t, "stream_options.include_usage", &r->include_usage))
			return -1;
	}
	if ((t = opt(x, root, "n")) != JSON_NONE) {
		int ok = is_type(x, t, JSON_NUMBER);
		if (!ok || json_get_int(x->d, t, 1, 1, &v, NULL) != MU_OK)
			return bad(x, ok ? "invalid_value" : "invalid_type", "n", "n must be 1 (one choice per request)");
	}
	if ((t = opt(x, root, "user")) != JSON_NONE && !is_type(x, t, JSON_STRING))
		return bad(x, "invalid_type", "user", "user must be a string");
	if (p_only_zero(x, root, "presence_penalty") || p_only_zero(x, root, "frequency_penalty"))
		return -1;
	return 0;
}

static int parse_chat(struct px *x, uint32_t root)
{
	static const char *const keys[] = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature",
					   "top_p", "seed", "stop", "stream", "stream_options", "n", "user",
					   "presence_penalty", "frequency_penalty", "logprobs"};
	if (only(x, root, keys, N_OF(keys), "") || p_model(x, root) || p_messages(x, root) || p_openai(x, root, 1) ||
	    p_only_false(x, root, "logprobs"))
		return -1;
	return 0;
}

static int parse_completions(struct px *x, uint32_t root)
{
	static const char *const keys[] = {"model", "prompt", "max_tokens", "temperature", "top_p", "seed",
					   "stop", "stream", "stream_options", "n", "user", "presence_penalty",
					   "frequency_penalty", "echo", "logprobs", "suffix"};
	if (only(x, root, keys, N_OF(keys), "") || p_model(x, root) || p_prompt(x, root, 1) || p_openai(x, root, 0) ||
	    p_only_false(x, root, "echo") || p_only_null(x, root, "logprobs") || p_only_null(x, root, "suffix"))
		return -1;
	return 0;
}

static int parse_ollama(struct px *x, uint32_t root)
{
	static const char *const keys[] = {"model", "prompt", "stream", "options", "system", "raw", "keep_alive"};
	static const char *const opt_keys[] = {"temperature", "top_p", "top_k", "seed", "num_predict", "stop"};
	struct oai_request *r = x->r;
	__typeof__(r->gen.generate) *g = &r->gen.generate;
	uint32_t t, o;
	int64_t v;
	int raw;
	if (only(x, root, keys, N_OF(keys), "") || p_model(x, root) || p_prompt(x, root, 0))
		return -1;
	if ((t = opt(x, root, "system")) != JSON_NONE) {
		struct mu_wire_text prompt = g->prompt;
		if (p_text(x, t, "system", &g->content[0]))
			return -1;
		g->role[0] = MU_WIRE_ROLE_SYSTEM;
		g->role[1] = MU_WIRE_ROLE_USER;
		g->content[1] = prompt;
		g->n_messages = 2;
		g->has_prompt = 0;
		g->prompt = (struct mu_wire_text){0};
	}
	r->stream = 1;
	if ((t = opt(x, root, "stream")) != JSON_NONE && p_bool(x, t, "stream", &r->stream))
		return -1;
	if ((t = opt(x, root, "raw")) != JSON_NONE && p_bool(x, t, "raw", &raw))
		return -1;
	/* keep_alive: any value, ignored (the enclave keeps its one model loaded) */
	g->temperature = 0.8;
	if ((o = opt(x, root, "options")) == JSON_NONE)
		return 0;
	if (!is_type(x, o, JSON_OBJECT))
		return bad(x, "invalid_type", "options", "options must be an object");
	if (only(x, o, opt_keys, N_OF(opt_keys), "options."))
		return -1;
	if ((t = opt(x, o, "temperature")) != JSON_NONE && p_num(x, t, "options.temperature", 0, 0, 2, &g->temperature))
		return -1;
	if ((t = opt(x, o, "top_p")) != JSON_NONE && p_num(x, t, "options.top_p", 0, 1, 1, &g->top_p))
		return -1;
	if ((t = opt(x, o, "top_k")) != JSON_NONE && p_int(x, t, "options.top_k", 0, MU_MAX_VOCAB, &g->top_k))
		return -1;
	if ((t = opt(x, o, "seed")) != JSON_NONE) {
		if (p_int(x, t, "options.seed", 0, (int64_t)MU_WIRE_SEED_MAX, &v))
			return -1;
		g->seed = (uint64_t)v;
	}
	if ((t = opt(x, o, "num_predict")) != JSON_NONE) {
		int ok = is_type(x, t, JSON_NUMBER);
		if (!ok || json_get_int(x->d, t, -1, MU_WIRE_MAX_GEN_TOKENS, &v, NULL) != MU_OK || v == 0)
			return bad(x, ok ? "invalid_value" : "invalid_type", "options.num_predict",
				   "options.num_predict must be -1 (the default) or an integer from 1 to %d",
				   MU_WIRE_MAX_GEN_TOKENS);
		if (v > 0)
			g->max_tokens = v;
	}
	if ((t = opt(x, o, "stop")) != JSON_NONE && p_stop(x, t, "options.stop", 1))
		return -1;
	return 0;
}

int oai_parse_request(struct oai_request *r, enum oai_api api, const uint8_t *body, size_t len,
		      int64_t default_max_tokens, void *mem, size_t mem_len, struct oai_error *e)
{
	struct oai_error dummy;
	struct json_doc d;
	struct mu_error err;
	struct px x = {.d = &d, .r = r, .e = e ? e : &dummy};
	int rc;

	memset(r, 0, sizeof *r);
	memset(x.e, 0, sizeof *x.e);
	if ((unsigned)api > OAI_OLLAMA || default_max_tokens < 1 || default_max_tokens > MU_WIRE_MAX_GEN_TOKENS ||
	    (!body && len))
		return internal(&x, "bad arguments to the request parser");
	if (len > OAI_MAX_BODY) {
		oai_error_set(x.e, 413, "invalid_request_error", "request_too_large", NULL,
			      "the request body is larger than %zu bytes", OAI_MAX_BODY);
		return -1;
	}
	size_t js = json_scratch(len);
	if (js == 0 || !mem || mem_len < js + len + 1)
		return internal(&x, "request parser scratch too small");
	err.msg[0] = '\0';
	if (json_parse(&d, body ? body : (const uint8_t *)"", len, &oai_limits, mem, js, &err) != MU_OK) {
		if (err.code == MU_ERR_RANGE || err.code == MU_ERR_FORMAT)
			return bad(&x, NULL, NULL, "We could not parse the JSON body of your request: %s", err.msg);
		return internal(&x, "the JSON parser failed");
	}
	if (json_type(&d, 0) != JSON_OBJECT)
		return bad(&x, "invalid_type", NULL, "the request body must be a JSON object");
	x.str = (char *)mem + js;
	x.str_cap = mem_len - js;

	r->api = api;
	r->gen.type = MU_MSG_GENERATE;
	r->gen.generate.max_tokens = default_max_tokens;
	r->gen.generate.top_p = 1.0;
	switch (api) {
	case OAI_CHAT: rc = parse_chat(&x, 0); break;
	case OAI_COMPLETIONS: rc = parse_completions(&x, 0); break;
	default: rc = parse_ollama(&x, 0); break;
	}
	if (rc == 0)
		rc = fits_frame(&x);
	if (rc != 0) {
		memset(r, 0, sizeof *r);
		return -1;
	}
	r->gen.generate.stream = r->stream;
	return 0;
}

/* ---- writing ---- */

struct ob {
	char *buf;
	size_t cap, len;
	int bad;
};

static void ob_init(struct ob *o, char *buf, size_t cap)
{
	o->buf = buf;
	o->cap = buf ? cap : 0;
	o->len = 0;
	o->bad = 0;
}

static void ob_put(struct ob *o, const void *p, size_t n)
{
	if (o->bad)
		return;
	if (n > o->cap - o->len) {
		o->bad = 1;
		return;
	}
	if (n)
		memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static void ob_lit(struct ob *o, const char *s) { ob_put(o, s, strlen(s)); }

static void ob_int(struct ob *o, int64_t v)
{
	char tmp[24];
	size_t n = 0;
	uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[sizeof tmp - 1 - n++] = (char)('0' + m % 10);
		m /= 10;
	} while (m);
	if (v < 0)
		tmp[sizeof tmp - 1 - n++] = '-';
	ob_put(o, tmp + sizeof tmp - n, n);
}

static size_t ob_done(struct ob *o)
{
	if (o->bad) {
		if (o->cap)
			o->buf[0] = '\0';
		return 0;
	}
	if (o->len < o->cap)
		o->buf[o->len] = '\0';
	return o->len;
}

/* The escape of the character at p[0..n): writes it to out (at most 6 bytes), sets *in to its
 * input length and returns its output length; 0 for invalid UTF-8. */
static size_t esc_char(const uint8_t *p, size_t n, char out[6], size_t *in)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t c = p[0];
	*in = 1;
	if (c >= 0x80) {
		size_t l = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (l > n || json_utf8_check(p, l) != l)
			return 0;
		memcpy(out, p, l);
		*in = l;
		return l;
	}
	if (c == '"' || c == '\\') {
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	}
	if (c >= 0x20 && c != 0x7f) {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	switch (c) {
	case '\n': out[1] = 'n'; return 2;
	case '\r': out[1] = 'r'; return 2;
	case '\t': out[1] = 't'; return 2;
	case '\b': out[1] = 'b'; return 2;
	case '\f': out[1] = 'f'; return 2;
	default: break;
	}
	out[1] = 'u';
	out[2] = '0';
	out[3] = '0';
	out[4] = hex[c >> 4];
	out[5] = hex[c & 15];
	return 6;
}

static int plain(uint8_t c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; }

/* Appends the escape of all of p[0..n); invalid UTF-8 fails the writer. */
static void ob_esc(struct ob *o, const void *text, size_t n)
{
	const uint8_t *p = text;
	size_t i = 0;
	if (n && !p) {
		o->bad = 1;
		return;
	}
	while (i < n && !o->bad) {
		size_t run = i;
		while (run < n && plain(p[run]))
			run++;
		ob_put(o, p + i, run - i);
		i = run;
		if (i == n)
			break;
		char e[6];
		size_t in, k = esc_char(p + i, n - i, e, &in);
		if (k == 0) {
			o->bad = 1;
			return;
		}
		ob_put(o, e, k);
		i += in;
	}
}

static void ob_esc_c(struct ob *o, const char *s)
{
	if (!s) {
		o->bad = 1;
		return;
	}
	ob_esc(o, s, strlen(s));
}

size_t oai_escape(char *buf, size_t cap, const void *text, size_t n, size_t *used)
{
	const uint8_t *p = text;
	size_t i = 0, w = 0;
	if (used)
		*used = 0;
	if (!buf || !used || (n && !p)) {
		if (buf && cap)
			buf[0] = '\0';
		return 0;
	}
	while (i < n) {
		char e[6];
		size_t in, k;
		if (plain(p[i])) {
			if (w == cap)
				break;
			buf[w++] = (char)p[i++];
			continue;
		}
		k = esc_char(p + i, n - i, e, &in);
		if (k == 0 || k > cap - w)
			break;
		memcpy(buf + w, e, k);
		w += k;
		i += in;
	}
	if (w < cap)
		buf[w] = '\0';
	*used = i;
	return w;
}

/* ---- response pieces ---- */

static int resp_ok(const struct oai_resp *x)
{
	return x && (unsigned)x->api <= OAI_OLLAMA && x->id && x->model;
}

static int finish_ok(const char *f)
{
	return f && (!strcmp(f, "stop") || !strcmp(f, "length") || !strcmp(f, "content_filter"));
}

static int usage_ok(const struct oai_usage *u, int64_t *total)
{
	return u && u->prompt_tokens >= 0 && u->completion_tokens >= 0 && u->total_ns >= 0 &&
	       !ckd_add(total, u->prompt_tokens, u->completion_tokens);
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* RFC 3339 UTC with milliseconds ("2026-11-22T10:00:00.123Z") of ms since the epoch; 0 outside
 * the years 0000..9999. Days to a civil date as in Howard Hinnant's civil_from_days. */
static size_t rfc3339(char out[32], int64_t ms)
{
	if (ms < -62167219200000 || ms > 253402300799999) /* 0000-01-01 .. 9999-12-31 */
		return 0;
	int64_t s = floor_div(ms, 1000), days = floor_div(s, 86400);
	int64_t msr = ms - s * 1000, sod = s - days * 86400;
	int64_t z = days + 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;                                       /* [0, 146096] */
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                /* [0, 365] */
	int64_t mp = (5 * doy + 2) / 153;                                     /* [0, 11], March first */
	int64_t d = doy - (153 * mp + 2) / 5 + 1;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;
	int64_t y = yoe + era * 400 + (m <= 2);
	if (y < 0 || y > 9999)
		return 0;
	int n = snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int)y, (int)m, (int)d, (int)(sod / 3600),
			 (int)(sod / 60 % 60), (int)(sod % 60), (int)msr);
	return n == 24 ? 24 : 0;
}

/* {"id":"chatcmpl-ID","object":"OBJECT","created":N,"model":"M" */
static void openai_open(struct ob *o, const struct oai_resp *x, const char *object)
{
	ob_lit(o, x->api == OAI_CHAT ? "{\"id\":\"chatcmpl-" : "{\"id\":\"cmpl-");
	ob_esc_c(o, x->id);
	ob_lit(o, "\",\"object\":\"");
	ob_lit(o, object);
	ob_lit(o, "\",\"created\":");
	ob_int(o, x->created);
	ob_lit(o, ",\"model\":\"");
	ob_esc_c(o, x->model);
	ob_lit(o, "\"");
}

/* {"model":"M","created_at":"T" */
static void ollama_open(struct ob *o, const struct oai_resp *x)
{
	char t[32];
	size_t tn = rfc3339(t, x->created_ms);
	if (tn == 0)
		o->bad = 1;
	ob_lit(o, "{\"model\":\"");
	ob_esc_c(o, x->model);
	ob_lit(o, "\",\"created_at\":\"");
	ob_put(o, t, tn);
	ob_lit(o, "\"");
}

static const char *chunk_object(const struct oai_resp *x)
{
	return x->api == OAI_CHAT ? "chat.completion.chunk" : "text_completion";
}

static void openai_usage(struct ob *o, const struct oai_usage *u, int64_t total)
{
	ob_lit(o, "\"usage\":{\"prompt_tokens\":");
	ob_int(o, u->prompt_tokens);
	ob_lit(o, ",\"completion_tokens\":");
	ob_int(o, u->completion_tokens);
	ob_lit(o, ",\"total_tokens\":");
	ob_int(o, total);
	ob_lit(o, "}");
}

/* ,"done":true,"done_reason":F,... the counts and durations, and the closing "}\n" */
static void ollama_done(struct ob *o, const char *finish, const struct oai_usage *u)
{
	ob_lit(o, ",\"done\":true,\"done_reason\":\"");
	ob_lit(o, finish);
	ob_lit(o, "\",\"total_duration\":");
	ob_int(o, u->total_ns);
	ob_lit(o, ",\"load_duration\":0,\"prompt_eval_count\":");
	ob_int(o, u->prompt_tokens);
	ob_lit(o, ",\"prompt_eval_duration\":0,\"eval_count\":");
	ob_int(o, u->completion_tokens);
	ob_lit(o, ",\"eval_duration\":");
	ob_int(o, u->total_ns);
	ob_lit(o, "}\n");
}

size_t oai_stream_text(char *buf, size_t cap, const struct oai_resp *x, int first, const void *text, size_t n)
{
	struct ob o;
	ob_init(&o, buf, cap);
	if (!resp_ok(x))
		o.bad = 1;
	else if (x->api == OAI_OLLAMA) {
		ollama_open(&o, x);
		ob_lit(&o, ",\"response\":\"");
		ob_esc(&o, text, n);
		ob_lit(&o, "\",\"done\":false}\n");
	} else {
		ob_lit(&o, "data: ");
		openai_open(&o, x, chunk_object(x));
		if (x->api == OAI_CHAT)
			ob_lit(&o, first ? ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\""
					 : ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
		else
			ob_lit(&o, ",\"choices\":[{\"index\":0,\"text\":\"");
		ob_esc(&o, text, n);
		ob_lit(&o, x->api == OAI_CHAT ? "\"},\"logprobs\":null,\"finish_reason\":null}]"
					      : "\",\"logprobs\":null,\"finish_reason\":null}]");
		/* with include_usage OpenAI sends "usage":null in every chunk but the last */
		if (x->include_usage)
			ob_lit(&o, ",\"usage\":null");
		ob_lit(&o, "}\n\n");
	}
	return ob_done(&o);
}

size_t oai_stream_end(char *buf, size_t cap, const struct oai_resp *x, const char *finish,
		      const struct oai_usage *u)
{
	struct ob o;
	int64_t total = 0;
	ob_init(&o, buf, cap);
	if (!resp_ok(x) || !finish_ok(finish) ||
	    ((x->api == OAI_OLLAMA || x->include_usage) ? !usage_ok(u, &total) : (u && !usage_ok(u, &total))))
		o.bad = 1;
	else if (x->api == OAI_OLLAMA) {
		ollama_open(&o, x);
		ob_lit(&o, ",\"response\":\"\"");
		ollama_done(&o, finish, u);
	} else {
		ob_lit(&o, "data: ");
		openai_open(&o, x, chunk_object(x));
		ob_lit(&o, x->api == OAI_CHAT ? ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\""
					      : ",\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"");
		ob_lit(&o, finish);
		ob_lit(&o, "\"}]");
		if (x->include_usage) {
			ob_lit(&o, ",\"usage\":null}\n\ndata: ");
			openai_open(&o, x, chunk_object(x));
			ob_lit(&o, ",\"choices\":[],");
			openai_usage(&o, u, total);
		}
		ob_lit(&o, "}\n\ndata: [DONE]\n\n");
	}
	return ob_done(&o);
}

/* Length of the NUL-terminated text in s[0..cap), or cap when it has no NUL. */
static size_t text_len(const char *s, size_t cap)
{
	const char *z = memchr(s, 0, cap);
	return z ? (size_t)(z - s) : cap;
}

/* {"message":...,"type":...,"param":...,"code":...} */
static void error_object(struct ob *o, const struct oai_error *e)
{
	ob_lit(o, "{\"message\":\"");
	ob_esc(o, e->message, text_len(e->message, sizeof e->message));
	ob_lit(o, "\",\"type\":\"");
	ob_esc_c(o, e->type);
	ob_lit(o, "\",\"param\":");
	size_t pn = text_len(e->param, sizeof e->param);
	if (pn) {
		ob_lit(o, "\"");
		ob_esc(o, e->param, pn);
		ob_lit(o, "\"");
	} else {
		ob_lit(o, "null");
	}
	ob_lit(o, ",\"code\":");
	if (e->code) {
		ob_lit(o, "\"");
		ob_esc_c(o, e->code);
		ob_lit(o, "\"");
	} else {
		ob_lit(o, "null");
	}
	ob_lit(o, "}");
}

static int error_ok(const struct oai_error *e)
{
	return e && e->type && text_len(e->message, sizeof e->message) < sizeof e->message &&
	       text_len(e->param, sizeof e->param) < sizeof e->param;
}

size_t oai_stream_error(char *buf, size_t cap, const struct oai_resp *x, const struct oai_error *e)
{
	struct ob o;
	ob_init(&o, buf, cap);
	if (!x || (unsigned)x->api > OAI_OLLAMA || !error_ok(e))
		o.bad = 1;
	else if (x->api == OAI_OLLAMA) {
		ob_lit(&o, "{\"error\":\"");
		ob_esc(&o, e->message, strlen(e->message));
		ob_lit(&o, "\"}\n");
	} else {
		ob_lit(&o, "data: {\"error\":");
		error_object(&o, e);
		ob_lit(&o, "}\n\n");
	}
	return ob_done(&o);
}

size_t oai_whole_head(char *buf, size_t cap, const struct oai_resp *x)
{
	struct ob o;
	ob_init(&o, buf, cap);
	if (!resp_ok(x))
		o.bad = 1;
	else if (x->api == OAI_OLLAMA) {
		ollama_open(&o, x);
		ob_lit(&o, ",\"response\":\"");
	} else if (x->api == OAI_CHAT) {
		openai_open(&o, x, "chat.completion");
		ob_lit(&o, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"");
	} else {
		openai_open(&o, x, "text_completion");
		ob_lit(&o, ",\"choices\":[{\"index\":0,\"text\":\"");
	}
	return ob_done(&o);
}

size_t oai_whole_tail(char *buf, size_t cap, const struct oai_resp *x, const char *finish,
		      const struct oai_usage *u)
{
	struct ob o;
	int64_t total = 0;
	ob_init(&o, buf, cap);
	if (!resp_ok(x) || !finish_ok(finish) || !usage_ok(u, &total))
		o.bad = 1;
	else if (x->api == OAI_OLLAMA) {
		ob_lit(&o, "\"");
		ollama_done(&o, finish, u);
	} else {
		ob_lit(&o, x->api == OAI_CHAT ? "\"},\"logprobs\":null,\"finish_reason\":\""
					      : "\",\"logprobs\":null,\"finish_reason\":\"");
		ob_lit(&o, finish);
		ob_lit(&o, "\"}],");
		openai_usage(&o, u, total);
		ob_lit(&o, "}\n");
	}
	return ob_done(&o);
}

size_t oai_error_body(char *buf, size_t cap, enum oai_api api, const struct oai_error *e)
{
	struct ob o;
	ob_init(&o, buf, cap);
	if ((unsigned)api > OAI_OLLAMA || !error_ok(e))
		o.bad = 1;
	else if (api == OAI_OLLAMA) {
		ob_lit(&o, "{\"error\":\"");
		ob_esc(&o, e->message, strlen(e->message));
		ob_lit(&o, "\"}\n");
	} else {
		ob_lit(&o, "{\"error\":");
		error_object(&o, e);
		ob_lit(&o, "}\n");
	}
	return ob_done(&o);
}

size_t oai_models(char *buf, size_t cap, const char *model, int64_t created)
{
	struct ob o;
	ob_init(&o, buf, cap);
	ob_lit(&o, "{\"object\":\"list\",\"data\":[");
	if (model) {
		ob_lit(&o, "{\"id\":\"");
		ob_esc_c(&o, model);
		ob_lit(&o, "\",\"object\":\"model\",\"created\":");
		ob_int(&o, created);
		ob_lit(&o, ",\"owned_by\":\"mu\"}");
	}
	ob_lit(&o, "]}\n");
	return ob_done(&o);
}

/* ---- stop sequences ---- */

void oai_stop_init(struct oai_stop *s, const struct oai_request *r)
{
	memset(s, 0, sizeof *s);
	if (!r)
		return;
	for (uint32_t i = 0; i < r->n_stop && i < OAI_MAX_STOP; i++) {
		uint8_t l = r->stop_len[i];
		if (l < 1 || l > OAI_MAX_STOP_BYTES)
			continue;
		memcpy(s->s[s->n], r->stop[i], l);
		s->len[s->n] = l;
		s->n++;
	}
}

/* KMP failure function of p[0..n): f[q] = length of the longest proper border of p[0..q]. */
static void kmp_fail(const uint8_t *p, size_t n, uint8_t *f)
{
	size_t k = 0;
	f[0] = 0;
	for (size_t q = 1; q < n; q++) {
		while (k > 0 && p[k] != p[q])
			k = f[k - 1];
		if (p[k] == p[q])
			k++;
		f[q] = (uint8_t)k;
	}
}

/* One byte into the automaton of p (state q < n): the new state. */
static size_t kmp_step(const uint8_t *p, const uint8_t *f, size_t q, uint8_t c)
{
	while (q > 0 && p[q] != c)
		q = f[q - 1];
	return p[q] == c ? q + 1 : q;
}

size_t oai_stop_push(struct oai_stop *s, const void *in, size_t n, uint8_t *out)
{
	const uint8_t *p = in;
	uint8_t fail[OAI_MAX_STOP][OAI_MAX_STOP_BYTES], held[OAI_MAX_STOP_BYTES];
	size_t q[OAI_MAX_STOP], w = 0, rel = 0, nh;
	uint32_t k;
	if (s->matched || n == 0 || !p)
		return 0;
	if (s->n == 0) {
		memcpy(out, p, n);
		return n;
	}
	/* The text not yet released is X = held ++ in; rel counts the bytes of X released. Each
	 * automaton's state is rebuilt from the held bytes. */
	nh = s->n_held;
	memcpy(held, s->held, nh);
	for (k = 0; k < s->n; k++) {
		kmp_fail(s->s[k], s->len[k], fail[k]);
		q[k] = 0;
		for (size_t j = 0; j < nh; j++)
			q[k] = kmp_step(s->s[k], fail[k], q[k], held[j]);
	}
	for (size_t j = 0; j < n; j++) {
		size_t maxq = 0, hit = 0, end = nh + j + 1; /* bytes of X seen */
		for (k = 0; k < s->n; k++) {
			q[k] = kmp_step(s->s[k], fail[k], q[k], p[j]);
			if (q[k] == s->len[k]) {
				if (q[k] > hit)
					hit = q[k];
				q[k] = fail[k][q[k] - 1];
			}
			if (q[k] > maxq)
				maxq = q[k];
		}
		/* release X[rel .. end - (hit ? hit : maxq)) */
		size_t upto = end - (hit ? hit : maxq);
		for (; rel < upto; rel++, w++)
			out[w] = rel < nh ? held[rel] : p[rel - nh];
		if (hit) {
			s->matched = 1;
			s->n_held = 0;
			return w;
		}
	}
	/* what is left of X (the last maxq <= OAI_MAX_STOP_BYTES - 1 bytes) is held */
	size_t total = nh + n, keep = total - rel;
	for (size_t j = 0; j < keep; j++, rel++)
		s->held[j] = rel < nh ? held[rel] : p[rel - nh];
	s->n_held = keep;
	return w;
}

size_t oai_stop_flush(struct oai_stop *s, uint8_t *out)
{
	size_t n = 0;
	if (!s->matched) {
		n = s->n_held;
		memcpy(out, s->held, n);
	}
	s->n_held = 0;
	return n;
}
