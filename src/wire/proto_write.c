/* proto_write.c — the encoders of wire protocol v1 (see proto.h and docs/protocol.md).
 *
 * Encoding uses jsonw. Two things jsonw has no call for, the messages array of generate and
 * its fractional numbers, are appended at w.len (each array element is itself written by a
 * jsonw of its own at that place). A double is written as the shortest decimal with at most
 * 22 fractional digits that json_get_f64 reads back to exactly the same bits, which every
 * value the decoder produces has; other values make the encoder fail.
 *
 * Freestanding: only memcpy/memset/memcmp/strlen from the C library.
 */
#include "wire/proto.h"

#include <string.h>

#include "wire/json.h"
#include "wire/json_write.h"

/* ---- encoding ---- */

static size_t finish(struct jsonw *w)
{
	size_t n = 0;
	return jsonw_finish(w, &n) == MU_OK ? n : 0;
}

/* Length of a C string id when it is a valid id, else 0 (reads at most MU_WIRE_MAX_ID + 1). */
static size_t id_len(const char *id)
{
	size_t n = 0;
	if (!id)
		return 0;
	while (n <= MU_WIRE_MAX_ID && id[n])
		n++;
	return mu_wire_id_ok(id, n) ? n : 0;
}

size_t mu_msg_hello(char *buf, size_t cap, const uint8_t nonce[static MU_KBS_NONCE_LEN])
{
	struct jsonw w;
	jsonw_init(&w, buf, cap);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "hello");
	jsonw_int(&w, "version", MU_WIRE_VERSION);
	jsonw_hex(&w, "nonce", nonce, MU_KBS_NONCE_LEN);
	jsonw_end(&w);
	return finish(&w);
}

size_t mu_msg_unlock(char *buf, size_t cap, const uint8_t key_id[static MU_KBS_KEY_ID_LEN],
		     const uint8_t kbs_pub[static 32], const uint8_t wrapped_key[static 48])
{
	struct jsonw w;
	jsonw_init(&w, buf, cap);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "unlock");
	jsonw_hex(&w, "key_id", key_id, MU_KBS_KEY_ID_LEN);
	jsonw_hex(&w, "kbs_pub", kbs_pub, 32);
	jsonw_hex(&w, "wrapped_key", wrapped_key, 48);
	jsonw_end(&w);
	return finish(&w);
}

size_t mu_msg_ready(char *buf, size_t cap, const char *model, int64_t n_ctx, int64_t max_tokens,
		    int64_t egress_bytes_per_s, int64_t egress_burst_bytes)
{
	struct jsonw w;
	size_t n = 0;
	while (model && n <= MU_WIRE_MAX_MODEL_NAME && model[n]) {
		if ((uint8_t)model[n] < 0x20 || (uint8_t)model[n] > 0x7e)
			return 0;
		n++;
	}
	if (n == 0 || n > MU_WIRE_MAX_MODEL_NAME || n_ctx < 1 || max_tokens < 1 || egress_bytes_per_s < 1 ||
	    egress_burst_bytes < 1)
		return 0;
	jsonw_init(&w, buf, cap);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "ready");
	jsonw_strn(&w, "model", model, n);
	jsonw_int(&w, "n_ctx", n_ctx);
	jsonw_int(&w, "max_tokens", max_tokens);
	jsonw_int(&w, "egress_bytes_per_s", egress_bytes_per_s);
	jsonw_int(&w, "egress_burst_bytes", egress_burst_bytes);
	jsonw_end(&w);
	return finish(&w);
}

/* Appends raw JSON text at w->len (where jsonw would write next); 0 when it does not fit. */
static int raw(struct jsonw *w, const char *s, size_t n)
{
	if (w->failed || w->cap == 0 || n > w->cap - 1 - w->len)
		return 0;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
	return 1;
}

/* 1 when the literal s[0..n) is read back by json_get_f64 as exactly the bits of v. */
static int reads_back(const char *s, size_t n, double v)
{
	static const struct json_limits lim = {
		.max_bytes = 64, .max_depth = 0, .max_tokens = 1, .max_string = 1, .max_number = MU_WIRE_MAX_NUMBER,
	};
	_Alignas(16) uint8_t mem[256];
	size_t need;
	struct json_doc d;
	double got;
	if (json_mem_size(&lim, n, &need, NULL) != MU_OK || need > sizeof mem ||
	    json_parse(&d, s, n, &lim, mem, sizeof mem, NULL) != MU_OK || json_get_f64(&d, 0, &got, NULL) != MU_OK)
		return 0;
	/* the same bits, not the same value: -0 must read back as -0
	 * NOLINTNEXTLINE(bugprone-suspicious-memory-comparison,cert-exp42-c,cert-flp37-c) */
	return !memcmp(&got, &v, sizeof v);
}

/* Writes M × 10^-frac in plain decimal notation; returns the length. */
static size_t put_decimal(char *out, int neg, uint64_t mant, unsigned frac)
{
	char dig[24];
	size_t nd = 0, o = 0;
	do {
		dig[nd++] = (char)('0' + mant % 10);
		mant /= 10;
	} while (mant);
	if (neg)
		out[o++] = '-';
	if (nd <= frac) {
		out[o++] = '0';
		out[o++] = '.';
		for (size_t z = nd; z < frac; z++)
			out[o++] = '0';
	}
	while (nd) {
		out[o++] = dig[--nd];
		if (nd == frac && frac)
			out[o++] = '.';
	}
	return o;
}

/* The shortest decimal (fewest fractional digits, at most 22) that reads back as v, for
 * 0 <= |v| < 2^53; 0 when there is none. out holds at least 48 bytes. */
static size_t format_f64(char *out, double v)
{
	static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
				       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	const double two53 = 9007199254740992.0;
	uint64_t bits;
	memcpy(&bits, &v, sizeof bits);
	int neg = (int)(bits >> 63);
	double a = neg ? -v : v;
	if (!(a < two53)) /* also NaN */
		return 0;
	for (unsigned frac = 0; frac < 23; frac++) {
		double x = a * p10[frac];
		if (!(x < two53 + 2.0)) /* a mantissa just below 2^53 may round up to it */
			break;
		uint64_t m0 = (uint64_t)(x + 0.5);
		/* the product was rounded once: the exact decimal is within one unit of m0 */
		for (int dm = 0; dm < 3; dm++) {
			uint64_t mant = dm == 0 ? m0 : dm == 1 ? m0 + 1 : m0 - 1;
			if ((dm == 2 && m0 == 0) || mant >= (uint64_t)two53)
				continue;
			size_t n = put_decimal(out, neg, mant, frac);
			if (reads_back(out, n, v))
				return n;
		}
	}
	return 0;
}

static int num_member(struct jsonw *w, const char *key, double v)
{
	char lit[48], pre[24];
	size_t n = format_f64(lit, v), kn = strlen(key);
	if (n == 0 || kn + 4 > sizeof pre)
		return 0;
	pre[0] = ',';
	pre[1] = '"';
	memcpy(pre + 2, key, kn);
	pre[kn + 2] = '"';
	pre[kn + 3] = ':';
	return raw(w, pre, kn + 4) && raw(w, lit, n);
}

static int text_ok_enc(const struct mu_wire_text *t)
{
	return (t->p || t->n == 0) && (t->n == 0 || !memchr(t->p, 0, t->n));
}

size_t mu_msg_generate(char *buf, size_t cap, const struct mu_msg *m)
{
	const __typeof__(m->generate) *g = &m->generate;
	struct jsonw w;
	size_t idn = id_len(m->id);
	if (idn == 0 || g->max_tokens < 1 || g->max_tokens > MU_WIRE_MAX_GEN_TOKENS ||
	    !(g->temperature >= 0.0 && g->temperature <= 100.0) || !(g->top_p > 0.0 && g->top_p <= 1.0) ||
	    g->top_k < 0 || g->top_k > MU_MAX_VOCAB || g->seed > MU_WIRE_SEED_MAX)
		return 0;
	if (g->has_prompt ? !text_ok_enc(&g->prompt) : (g->n_messages < 1 || g->n_messages > MU_WIRE_MAX_MESSAGES))
		return 0;
	for (uint32_t i = 0; !g->has_prompt && i < g->n_messages; i++)
		if ((unsigned)g->role[i] > MU_WIRE_ROLE_ASSISTANT || !text_ok_enc(&g->content[i]))
			return 0;
	jsonw_init(&w, buf, cap);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "generate");
	jsonw_strn(&w, "id", m->id, idn);
	if (g->has_prompt) {
		jsonw_strn(&w, "prompt", g->prompt.p ? g->prompt.p : "", g->prompt.n);
	} else {
		/* "messages": an array of objects, each written by its own jsonw in place */
		if (!raw(&w, ",\"messages\":[", 13))
			return 0;
		for (uint32_t i = 0; i < g->n_messages; i++) {
			struct jsonw e;
			size_t n;
			if (i && !raw(&w, ",", 1))
				return 0;
			jsonw_init(&e, w.buf + w.len, w.cap - w.len);
			jsonw_begin(&e, NULL);
			jsonw_str(&e, "role", mu_wire_role_name(g->role[i]));
			jsonw_strn(&e, "content", g->content[i].p ? g->content[i].p : "", g->content[i].n);
			jsonw_end(&e);
			if ((n = finish(&e)) == 0)
				return 0;
			w.len += n;
		}
		if (!raw(&w, "]", 1))
			return 0;
	}
	jsonw_int(&w, "max_tokens", g->max_tokens);
	if (!num_member(&w, "temperature", g->temperature) || !num_member(&w, "top_p", g->top_p))
		return 0;
	jsonw_int(&w, "top_k", g->top_k);
	jsonw_int(&w, "seed", (int64_t)g->seed);
	jsonw_bool(&w, "stream", g->stream != 0);
	jsonw_end(&w);
	return finish(&w);
}

size_t mu_msg_cancel(char *buf, size_t cap, const char *id)
{
	struct jsonw w;
	size_t idn = id_len(id);
	if (idn == 0)
		return 0;
	jsonw_init(&w, buf, cap);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "cancel");
	jsonw_strn(&w, "id", id, idn);
	jsonw_end(&w);
	return finish(&w);
}

size_t mu_msg_token(char *buf, size_t cap, const char *id, const void *text, size_t n)
{
	struct jsonw w;
	size_t idn = id_len(id);
	if (idn == 0 || n > MU_WIRE_MAX_TOKEN_TEXT || (n && (!text || memchr(text, 0, n))))
		return 0;
	jsonw_init(&w, buf, cap);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "token");
	jsonw_strn(&w, "id", id, idn);
	jsonw_strn(&w, "text", n ? text : "", n);
	jsonw_end(&w);
	return finish(&w);
}

size_t mu_msg_done(char *buf, size_t cap, const char *id, enum mu_finish finish_reason, int64_t prompt_tokens,
		   int64_t completion_tokens, int64_t elapsed_ms)
{
	struct jsonw w;
	size_t idn = id_len(id);
	if (idn == 0 || (unsigned)finish_reason > MU_FINISH_CANCELLED || prompt_tokens < 0 || completion_tokens < 0 ||
	    elapsed_ms < 0)
		return 0;
	jsonw_init(&w, buf, cap);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "done");
	jsonw_strn(&w, "id", id, idn);
	jsonw_str(&w, "finish_reason", mu_finish_name(finish_reason));
	jsonw_begin(&w, "usage");
	jsonw_int(&w, "prompt_tokens", prompt_tokens);
	jsonw_int(&w, "completion_tokens", completion_tokens);
	jsonw_end(&w);
	jsonw_int(&w, "elapsed_ms", elapsed_ms);
	jsonw_end(&w);
	return finish(&w);
}

/* Length of the valid UTF-8 sequence at p[0..n) (1..4), or 0 when none starts there. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
	size_t l = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3
		   : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
	return l && l <= n && json_utf8_check(p, l) == l ? l : 0;
}

size_t mu_msg_error(char *buf, size_t cap, const char *id, enum mu_wire_code code, const char *message)
{
	struct jsonw w;
	char text[MU_WIRE_MAX_ERROR_MESSAGE];
	size_t idn = 0, tn = 0;
	if (id && (idn = id_len(id)) == 0)
		return 0;
	if (code <= MU_WIRE_OK || code >= MU_WIRE_CODE_COUNT)
		return 0;
	/* the message as the decoder will see it: control bytes and broken UTF-8 become '?', and
	 * it is cut at MU_WIRE_MAX_ERROR_MESSAGE bytes on a character boundary */
	const uint8_t *p = (const uint8_t *)(message ? message : "");
	size_t pn = strlen((const char *)p);
	for (size_t i = 0; i < pn;) {
		size_t l = utf8_seq(p + i, pn - i);
		if (l == 0 || (l == 1 && (p[i] < 0x20 || p[i] == 0x7f))) {
			if (tn == sizeof text)
				break;
			text[tn++] = '?';
			i++;
			continue;
		}
		if (l > sizeof text - tn)
			break;
		memcpy(text + tn, p + i, l);
		tn += l;
		i += l;
	}
	jsonw_init(&w, buf, cap);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "type", "error");
	if (id)
		jsonw_strn(&w, "id", id, idn);
	jsonw_str(&w, "code", mu_wire_code_name(code));
	jsonw_strn(&w, "message", text, tn);
	jsonw_end(&w);
	return finish(&w);
}
