/* oai_write.c — the HTTP API's response bodies and stop sequences; see oai.h (parsing is in
 * oai_parse.c).
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

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/ckd.h"
#include "wire/json.h"

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
static size_t kmp_step(const uint8_t *p, size_t n, const uint8_t *f, size_t q, uint8_t c)
{
	assert(q < n);
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
			q[k] = kmp_step(s->s[k], s->len[k], fail[k], q[k], held[j]);
	}
	for (size_t j = 0; j < n; j++) {
		size_t maxq = 0, hit = 0, end = nh + j + 1; /* bytes of X seen */
		for (k = 0; k < s->n; k++) {
			q[k] = kmp_step(s->s[k], s->len[k], fail[k], q[k], p[j]);
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
