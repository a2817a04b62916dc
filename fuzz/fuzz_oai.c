/* fuzz_oai.c — libFuzzer harness for the HTTP API's bodies (src/host/oai_parse.c, oai_write.c).
 *
 * The input, in an exactly sized buffer so ASan sees any read past its end, is:
 *   - parsed as a request body for each of the three APIs. A refusal must carry a 400 or 413,
 *     a type and a printable message. An accepted request must hold a printable model, stop
 *     sequences of 1..64 bytes of valid UTF-8, texts without NUL that lie in the body or the
 *     scratch, and a generate that mu_msg_generate encodes (with a 64-byte id) into one frame
 *     and mu_msg_decode reads back equal;
 *   - escaped by oai_escape in pieces of varying caps: the pieces, joined and quoted, must parse
 *     as a JSON string that decodes to the valid UTF-8 prefix of the input, and oai_stream_text
 *     must accept the input exactly when it is valid UTF-8;
 *   - fed to oai_stop_push in pieces, with stop sequences taken from an accepted request or
 *     from the input's first bytes, and compared with a naive reference (the first stop
 *     sequence to complete wins; on a tie, the longer).
 * A broken invariant traps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "host/oai.h"
#include "wire/json.h"
#include "wire/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond)
{
	if (!cond)
		__builtin_trap();
}

static uint8_t *mem, *dec_mem, *json_mem;
static size_t mem_len, dec_len, json_len;
static char *enc, *esc;
#define ENC_CAP (MU_WIRE_MAX_FRAME + 1)

static int printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)s[i] < 0x20 || (uint8_t)s[i] > 0x7e)
			return 0;
	return 1;
}

static void text_ok(const struct mu_wire_text *t, const uint8_t *body, size_t size)
{
	if (t->n == 0)
		return;
	const uint8_t *p = (const uint8_t *)t->p;
	require((p >= body && p + t->n <= body + size) || (p >= mem && p + t->n <= mem + mem_len));
	require(memchr(p, 0, t->n) == NULL);
	require(json_utf8_check(p, t->n) == t->n);
}

static void check_request(const struct oai_request *r, const uint8_t *body, size_t size)
{
	const __typeof__(r->gen.generate) *g = &r->gen.generate;
	struct mu_msg m = r->gen, b;
	size_t mn = strlen(r->model);
	require(mn >= 1 && mn <= MU_WIRE_MAX_MODEL_NAME && printable(r->model, mn));
	require(r->gen.type == MU_MSG_GENERATE && !r->gen.has_id && r->gen.id[0] == '\0');
	require(r->stream == g->stream && (!r->include_usage || r->stream));
	require(r->n_stop <= OAI_MAX_STOP);
	for (uint32_t i = 0; i < r->n_stop; i++)
		require(r->stop_len[i] >= 1 && r->stop_len[i] <= OAI_MAX_STOP_BYTES &&
			json_utf8_check(r->stop[i], r->stop_len[i]) == r->stop_len[i]);
	if (g->has_prompt)
		text_ok(&g->prompt, body, size);
	else
		require(g->n_messages >= 1 && g->n_messages <= MU_WIRE_MAX_MESSAGES);
	for (uint32_t i = 0; !g->has_prompt && i < g->n_messages; i++)
		text_ok(&g->content[i], body, size);
	memset(m.id, 'x', MU_WIRE_MAX_ID);
	m.id[MU_WIRE_MAX_ID] = '\0';
	m.has_id = 1;
	size_t n = mu_msg_generate(enc, ENC_CAP, &m);
	require(n > 0 && n <= MU_WIRE_MAX_FRAME);
	require(mu_msg_decode(&b, (const uint8_t *)enc, n, dec_mem, dec_len, NULL) == MU_WIRE_OK);
	require(mu_msg_equal(&m, &b));
}

/* Escapes data in pieces whose caps come from the data; checks the result as a JSON string. */
static void check_escape(const uint8_t *data, size_t size)
{
	size_t valid = json_utf8_check(data, size), off = 0, o = 0, used;
	struct json_doc d;
	struct json_limits lim = {.max_bytes = (uint32_t)(6 * size + 2), .max_depth = 0, .max_tokens = 1,
				  .max_string = (uint32_t)(size + 1), .max_number = 1, .flags = 0};
	size_t need;
	esc[o++] = '"';
	for (size_t i = 0; off < valid; i++) {
		size_t cap = 1 + data[i % size] % 9;
		size_t k = oai_escape(esc + o, cap, data + off, size - off, &used);
		require(k <= cap && used <= size - off);
		if (used == 0) { /* no room for the next character: every escape fits in 6 */
			require(cap < 6 && k == 0);
			k = oai_escape(esc + o, 6, data + off, size - off, &used);
			require(k > 0 && k <= 6 && used > 0);
		}
		o += k;
		off += used;
	}
	require(off == valid);
	/* past the valid prefix nothing more is taken */
	if (valid < size)
		require(oai_escape(esc + o, 64, data + valid, size - valid, &used) == 0 && used == 0);
	esc[o++] = '"';
	require(json_mem_size(&lim, o, &need, NULL) == MU_OK && need <= json_len);
	require(json_parse(&d, esc, o, &lim, json_mem, need, NULL) == MU_OK);
	require(json_str_eqn(&d, 0, (const char *)data, valid));

	struct oai_resp x = {.api = (enum oai_api)(size % 3), .id = "h1", .model = "m", .created = 1,
			     .created_ms = 1};
	size_t w = oai_stream_text(esc, 6 * size + 512, &x, (int)(size & 1), data, size);
	require((w > 0) == (valid == size));
}

/* The first stop sequence to complete (smallest end); on a tie the longest. */
static size_t ref_stop(const struct oai_stop *s, const uint8_t *t, size_t n, int *matched)
{
	for (size_t end = 1; end <= n; end++) {
		size_t best = 0;
		for (uint32_t k = 0; k < s->n; k++)
			if (s->len[k] <= end && !memcmp(t + end - s->len[k], s->s[k], s->len[k]) && s->len[k] > best)
				best = s->len[k];
		if (best) {
			*matched = 1;
			return end - best;
		}
	}
	*matched = 0;
	return n;
}

static void check_stop(const uint8_t *data, size_t size, const struct oai_request *accepted)
{
	struct oai_request r;
	struct oai_stop s;
	size_t off = 0;
	if (accepted) {
		r = *accepted;
	} else {
		/* byte 0: number of stops (0..4); then for each a length byte (1..8) and its bytes */
		memset(&r, 0, sizeof r);
		if (size == 0)
			return;
		uint32_t ns = data[off++] % (OAI_MAX_STOP + 1);
		for (uint32_t k = 0; k < ns && off < size; k++) {
			size_t l = 1 + data[off++] % 8;
			if (l > size - off)
				break;
			memcpy(r.stop[k], data + off, l);
			r.stop_len[k] = (uint8_t)l;
			r.n_stop = k + 1;
			off += l;
		}
	}
	oai_stop_init(&s, &r);
	const uint8_t *t = data + off;
	size_t n = size - off, o = 0, pos = 0, step = 0;
	uint8_t *out = malloc(n + 2 * OAI_MAX_STOP_BYTES + 1);
	require(out != NULL);
	while (pos < n) {
		size_t piece = 1 + (t[step++ % n] % 17);
		if (piece > n - pos)
			piece = n - pos;
		size_t k = oai_stop_push(&s, t + pos, piece, out + o);
		require(k <= piece + OAI_MAX_STOP_BYTES && s.n_held < OAI_MAX_STOP_BYTES);
		o += k;
		pos += piece;
	}
	o += oai_stop_flush(&s, out + o);
	int want_m;
	size_t want = ref_stop(&s, t, n, &want_m);
	require(o == want && (o == 0 || !memcmp(out, t, o)) && s.matched == want_m);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum oai_api apis[] = {OAI_CHAT, OAI_COMPLETIONS, OAI_OLLAMA};
	struct oai_request r, first;
	struct oai_error e;
	int any = 0;
	if (size > OAI_MAX_BODY + 1)
		return 0;
	if (!mem) {
		struct json_limits lim = {.max_bytes = 6 * (OAI_MAX_BODY + 1) + 2, .max_depth = 0, .max_tokens = 1,
					  .max_string = OAI_MAX_BODY + 2, .max_number = 1, .flags = 0};
		mem_len = oai_mem_size(OAI_MAX_BODY);
		dec_len = mu_msg_mem_size(MU_WIRE_MAX_FRAME);
		require(json_mem_size(&lim, 6 * (OAI_MAX_BODY + 1) + 2, &json_len, NULL) == MU_OK);
		mem = malloc(mem_len);
		dec_mem = malloc(dec_len);
		json_mem = malloc(json_len);
		enc = malloc(ENC_CAP);
		esc = malloc(6 * (OAI_MAX_BODY + 1) + 512);
		require(mem && dec_mem && json_mem && enc && esc);
	}
	uint8_t *body = malloc(size ? size : 1);
	require(body != NULL);
	memcpy(body, data, size);

	for (size_t a = 0; a < 3; a++) {
		int rc = oai_parse_request(&r, apis[a], body, size, 1 + (int64_t)(size % MU_WIRE_MAX_GEN_TOKENS), mem,
					   mem_len, &e);
		if (rc != 0) {
			require(rc == -1 && (e.status == 400 || e.status == 413) && e.type != NULL);
			size_t mn = strlen(e.message), pn = strlen(e.param);
			require(mn > 0 && mn < sizeof e.message && printable(e.message, mn) && printable(e.param, pn));
			continue;
		}
		require(r.api == apis[a]);
		check_request(&r, body, size);
		if (!any)
			first = r;
		any = 1;
	}
	check_escape(body, size);
	check_stop(body, size, any && first.n_stop ? &first : NULL);
	free(body);
	return 0;
}
