/* oai_parse.c — the HTTP API's request bodies and error objects; see oai.h (the writers and
 * the stop sequences are in oai_write.c).
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
#ifdef __clang_analyzer__
/* clang-tidy's analyzer does not follow calls into variadic functions, so it would take bad()
 * to return 0 sometimes and report outputs the error paths leave unset (docs/analysis.md). */
#define bad(...) (bad(__VA_ARGS__), -1)
#endif

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
		/* list[0..n) is set: the iterator yields an array's count elements (the analyzer
		 * cannot see into json.c). NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage) */
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
	/* cppcheck-suppress uninitvar ; only dummy's address is taken; the memset below clears it */
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
