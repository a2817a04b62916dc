/* script.c — scripted misbehaviour of the test enclave (build/tests/mu-enclave-test, compiled
 * with MU_ENCLAVE_TEST; never part of build/mu-enclave). A generate whose prompt is one of
 * these runs the script instead of the model, after the same attestation:
 *
 *   "@flood"               token frames of FLOOD_TEXT as fast as the normal, limited writer
 *                          lets them out, until max_tokens frames or a cancel
 *   "@emit:HEX,HEX,..."    one token frame per item, whose text is exactly the item's bytes,
 *                          written raw inside the JSON string (only '"', '\\' and bytes below
 *                          0x20 escaped; invalid UTF-8 stays as it is)
 *   "@slow:N:MS"           N token frames "tick ", one every MS ms (cancel checked between)
 *   "@prefill:MS:TEXT"     the model on the plain prompt TEXT, exactly as without the prefix,
 *                          except that prompt evaluation pauses MS ms (at most 60000) after
 *                          each chunk of MU_ENCLAVE_PREFILL_CHUNK tokens, answering frames as
 *                          it does between chunks: a slow prefill, so that a cancel can land
 *                          in it
 *
 * Each ends with done. The point is to test the other side: the proxy's limiter, filter and
 * decoder must hold against an enclave that sends what a real one never would.
 */
#include "enclave/enclave.h"

#ifdef MU_ENCLAVE_TEST

#include <stdio.h>
#include <string.h>

#include "seal/crypto.h"

#define FLOOD_TEXT "once upon a time there was a little cat. "
#define SLOW_MAX_MS 60000u

static int has_prefix(const char *p, size_t n, const char *lit)
{
	size_t k = strlen(lit);
	return n >= k && memcmp(p, lit, k) == 0;
}

/* A decimal in s[0..n) into *v, at most max. */
static int parse_uint(const char *s, size_t n, uint64_t max, uint64_t *v)
{
	*v = 0;
	if (n == 0 || n > 12)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	}
	return *v <= max ? 0 : -1;
}

static enum mu_poll_rc flood(struct mu_req *r, int64_t max_tokens, int64_t *sent)
{
	struct mu_error err;
	for (*sent = 0; *sent < max_tokens;) {
		if (mu_req_token(r, (const uint8_t *)FLOOD_TEXT, sizeof FLOOD_TEXT - 1, &err) != MU_OK)
			return MU_POLL_CLOSE;
		++*sent;
		enum mu_poll_rc pr = mu_req_poll(r, 0);
		if (pr != MU_POLL_GO)
			return pr;
	}
	return MU_POLL_GO;
}

static enum mu_poll_rc slow(struct mu_req *r, uint64_t n, uint64_t ms, int64_t *sent)
{
	struct mu_error err;
	for (*sent = 0; (uint64_t)*sent < n;) {
		if (*sent > 0) {
			enum mu_poll_rc pr = mu_req_poll(r, (int)ms);
			if (pr != MU_POLL_GO)
				return pr;
		}
		if (mu_req_token(r, (const uint8_t *)"tick ", 5, &err) != MU_OK)
			return MU_POLL_CLOSE;
		++*sent;
		enum mu_poll_rc pr = mu_req_poll(r, 0);
		if (pr != MU_POLL_GO)
			return pr;
	}
	return MU_POLL_GO;
}

/* One raw token frame: {"type":"token","id":ID,"text":"BYTES"} with BYTES escaped only where
 * JSON demands it. */
static enum mu_err raw_token(struct mu_req *r, const uint8_t *b, size_t n, struct mu_error *err)
{
	static const char hexd[] = "0123456789abcdef";
	char *out = (char *)r->e->out + MU_FRAME_HDR;
	size_t len = 0;
	len += (size_t)snprintf(out, 128, "{\"type\":\"token\",\"id\":\"%s\",\"text\":\"", r->id);
	for (size_t i = 0; i < n; i++) {
		if (b[i] == '"' || b[i] == '\\') {
			out[len++] = '\\';
			out[len++] = (char)b[i];
		} else if (b[i] < 0x20) {
			memcpy(out + len, "\\u00", 4);
			out[len + 4] = hexd[b[i] >> 4];
			out[len + 5] = hexd[b[i] & 15];
			len += 6;
		} else {
			out[len++] = (char)b[i];
		}
	}
	out[len++] = '"';
	out[len++] = '}';
	return mu_enclave_send(r->e, len, err);
}

/* Checks every item first (each even-length hex of at most MU_WIRE_MAX_TOKEN_TEXT bytes), then
 * emits. */
static int emit_check(const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != ',')
			continue;
		size_t k = i - start;
		if (k % 2 || k / 2 > MU_WIRE_MAX_TOKEN_TEXT)
			return -1;
		for (size_t j = start; j < i; j++)
			if (!((s[j] >= '0' && s[j] <= '9') || (s[j] >= 'a' && s[j] <= 'f') || (s[j] >= 'A' && s[j] <= 'F')))
				return -1;
		start = i + 1;
	}
	return 0;
}

static enum mu_poll_rc emit(struct mu_req *r, const char *s, size_t n, int64_t *sent)
{
	uint8_t b[MU_WIRE_MAX_TOKEN_TEXT];
	struct mu_error err;
	size_t start = 0;
	*sent = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != ',')
			continue;
		size_t k = (i - start) / 2;
		if (mu_unhex(s + start, i - start, b, k) != 0 || raw_token(r, b, k, &err) != MU_OK)
			return MU_POLL_CLOSE;
		++*sent;
		start = i + 1;
		enum mu_poll_rc pr = mu_req_poll(r, 0);
		if (pr != MU_POLL_GO)
			return pr;
	}
	return MU_POLL_GO;
}

/* "@prefill:MS:TEXT" in p[0..n): MS into *ms, TEXT as (*text, *len). 1 when p starts with
 * "@prefill:" (then 0 / -1 in *ok for well-formed / not), else 0. */
static int prefill_parse(const char *p, size_t n, uint64_t *ms, const char **text, size_t *len, int *ok)
{
	if (!has_prefix(p, n, "@prefill:"))
		return 0;
	const char *a = p + 9, *colon = memchr(a, ':', n - 9);
	*ok = colon && parse_uint(a, (size_t)(colon - a), SLOW_MAX_MS, ms) == 0 ? 0 : -1;
	if (*ok == 0) {
		*text = colon + 1;
		*len = n - (size_t)(colon + 1 - p);
	}
	return 1;
}

int mu_script_prefill(struct mu_req *r, const struct mu_msg *g, const char **text, size_t *n)
{
	uint64_t ms = 0;
	int ok = -1;
	if (!g->generate.has_prompt ||
	    !prefill_parse(g->generate.prompt.p, g->generate.prompt.n, &ms, text, n, &ok) || ok != 0)
		return 0;
	r->prefill_pause_ms = (uint32_t)ms;
	return 1;
}

int mu_script_run(struct mu_req *r, const struct mu_msg *g, int *close_conn)
{
	struct mu_error err;
	const char *p = g->generate.prompt.p;
	size_t n = g->generate.prompt.n;
	enum mu_poll_rc pr;
	enum mu_finish finish = MU_FINISH_STOP;
	int64_t sent = 0;
	uint64_t count = 0, ms = 0;

	*close_conn = 0;
	if (!g->generate.has_prompt || n == 0 || p[0] != '@')
		return 0;
	if (n == 6 && !memcmp(p, "@flood", 6)) {
		pr = flood(r, g->generate.max_tokens, &sent);
		finish = MU_FINISH_LENGTH;
	} else if (has_prefix(p, n, "@emit:")) {
		/* the text is needed while frames are read in between: keep a copy */
		memcpy(r->e->text, p + 6, n - 6);
		if (emit_check(r->e->text, n - 6) != 0) {
			mu_enclave_send_error(r->e, r->id, MU_WIRE_BAD_REQUEST, "@emit: items must be hex, at most 4096 bytes",
					      NULL);
			return 1;
		}
		pr = emit(r, r->e->text, n - 6, &sent);
	} else if (has_prefix(p, n, "@slow:")) {
		const char *a = p + 6, *colon = memchr(a, ':', n - 6);
		if (!colon || parse_uint(a, (size_t)(colon - a), MU_WIRE_MAX_GEN_TOKENS, &count) != 0 ||
		    parse_uint(colon + 1, n - (size_t)(colon + 1 - p), SLOW_MAX_MS, &ms) != 0) {
			mu_enclave_send_error(r->e, r->id, MU_WIRE_BAD_REQUEST, "@slow:N:MS needs two decimals", NULL);
			return 1;
		}
		if (count > (uint64_t)g->generate.max_tokens) {
			count = (uint64_t)g->generate.max_tokens;
			finish = MU_FINISH_LENGTH;
		}
		pr = slow(r, count, ms, &sent);
	} else if (has_prefix(p, n, "@prefill:")) {
		const char *text;
		size_t len;
		int ok = -1;
		prefill_parse(p, n, &ms, &text, &len, &ok);
		if (ok != 0) {
			mu_enclave_send_error(r->e, r->id, MU_WIRE_BAD_REQUEST, "@prefill:MS:TEXT needs a decimal MS",
					      NULL);
			return 1;
		}
		return 0; /* the model runs on TEXT (mu_script_prefill) */
	} else {
		return 0; /* an ordinary prompt that happens to start with '@' */
	}
	if (pr == MU_POLL_CLOSE) {
		*close_conn = 1;
		return 1;
	}
	if (pr == MU_POLL_CANCEL)
		finish = MU_FINISH_CANCELLED;
	if (mu_req_done(r, finish, 0, sent, &err) != MU_OK)
		*close_conn = 1;
	return 1;
}

#else
/* The release build has no scripts; keep the translation unit non-empty. */
typedef int mu_script_unused;
#endif
