/* proxy_http_out.c — the HTTP API's output (see proxy_http.h, docs/http.md): the egress path
 * calls proxy_http_produce for the active request, which takes the filter's released text
 * through the stop sequences and formats it into p->eg (SSE events, NDJSON lines, or a whole
 * JSON body as head, escaped text and tail), each piece charged before it exists; the content
 * reader hands the pieces to libmicrohttpd only as the token bucket grants bytes. Errors that
 * come after admission become a status (before the response began) or an end of the body. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/proxy_http.h"
#include "pal/pal.h"

static uint32_t secs_to_utc_midnight(void)
{
	uint64_t s = proxy_wall_ms() / 1000u;
	return (uint32_t)(86400u - s % 86400u);
}

void http_code_error(struct oai_error *e, enum mu_wire_code code, const char *message)
{
	const char *msg = message ? message : proxy_code_message(code);
	switch (code) {
	case MU_WIRE_UNAUTHORIZED:
		oai_error_set(e, 401, "invalid_request_error", "invalid_api_key", NULL, "%s", msg);
		break;
	case MU_WIRE_RATE_LIMITED:
		oai_error_set(e, 429, "rate_limit_error", "rate_limit_exceeded", NULL, "%s", msg);
		break;
	case MU_WIRE_QUOTA_EXHAUSTED:
	case MU_WIRE_BUDGET_EXHAUSTED:
		oai_error_set(e, 429, "insufficient_quota", "insufficient_quota", NULL, "%s", msg);
		break;
	case MU_WIRE_ENCLAVE_UNAVAILABLE:
	case MU_WIRE_ENCLAVE_LOST:
		oai_error_set(e, 503, "server_error", mu_wire_code_name(code), NULL, "%s", msg);
		break;
	case MU_WIRE_OVER_CAPACITY:
		oai_error_set(e, 503, "server_error", "overloaded", NULL, "%s", msg);
		break;
	case MU_WIRE_PROMPT_TOO_LONG:
		oai_error_set(e, 400, "invalid_request_error", "context_length_exceeded", "messages", "%s", msg);
		break;
	case MU_WIRE_BAD_REQUEST:
	case MU_WIRE_BAD_MESSAGE:
	case MU_WIRE_BAD_JSON:
	case MU_WIRE_INVALID_UTF8:
		oai_error_set(e, 400, "invalid_request_error", "invalid_value", NULL, "%s", msg);
		break;
	default:
		oai_error_set(e, 500, "server_error", mu_wire_code_name(code), NULL, "%s", msg);
		break;
	}
}

/* A total limit (0: none) with less than the smallest answer left of it. */
static int total_spent(uint64_t limit, uint64_t used)
{
	return limit && (used >= limit || limit - used < HTTP_MIN_ANSWER);
}

uint32_t http_retry_after(struct proxy *p, enum mu_wire_code code, int key)
{
	switch (code) {
	case MU_WIRE_ENCLAVE_UNAVAILABLE:
	case MU_WIRE_ENCLAVE_LOST:
	case MU_WIRE_OVER_CAPACITY:
		return 1;
	case MU_WIRE_BUDGET_EXHAUSTED:
		/* a daily budget comes back at UTC midnight; a spent total budget never does */
		if (total_spent(p->o->ledger.total_bytes, p->ledger.total_bytes) || !p->o->ledger.daily_bytes)
			return 0;
		return secs_to_utc_midnight();
	case MU_WIRE_QUOTA_EXHAUSTED:
		if (key < 0 || !p->keys.k[key].daily_bytes ||
		    (p->keys.k[key].has_ledger && total_spent(p->keys.k[key].total_bytes, p->keys.k[key].ledger.total_bytes)))
			return 0;
		return secs_to_utc_midnight();
	default:
		return 0;
	}
}

/* ---- output: called by the egress path for the active request ---- */

static struct http_req *act_req(struct proxy *p)
{
	return p->act.client >= 0 ? p->clients[p->act.client].h : NULL;
}

/* Charges (unless the whole body was charged at once) and queues p->eg[0..len) for the active
 * request; 0 when it may not go. */
static int emit(struct proxy *p, size_t len, size_t text, int kind, uint64_t now)
{
	struct proxy_active *a = &p->act;
	struct http_req *r = act_req(p);
	if (r && r->prepaid >= len)
		r->prepaid -= len;
	else if (!proxy_charge(p, len, now))
		return 0;
	proxy_eg_set(p, len, a->client, kind);
	a->text_released += text;
	a->bytes_released += len;
	a->frames++;
	return 1;
}

static int emit_text(struct proxy *p, struct http_req *r, const uint8_t *text, size_t n, uint64_t now)
{
	size_t len = oai_stream_text((char *)p->eg, EG_CAP, &r->resp, r->first, text, n);
	if (len == 0) { /* only possible with the invalid_utf8 rule off */
		fprintf(stderr, "mu proxy: request %s: released text cannot be sent (not UTF-8)\n", r->id);
		proxy_act_fail(p, MU_WIRE_INTERNAL, NULL, now);
		return 0;
	}
	if (!emit(p, len, n, PROXY_EG_TOKEN, now))
		return 0;
	r->first = 0;
	return 1;
}

static const char *finish_name(enum mu_finish f) { return f == MU_FINISH_LENGTH ? "length" : "stop"; }

static void emit_end(struct proxy *p, struct http_req *r, uint64_t now)
{
	struct proxy_active *a = &p->act;
	struct oai_usage u = {.prompt_tokens = a->prompt_tokens,
			      .completion_tokens = a->completion_tokens,
			      .total_ns = a->elapsed_ms * 1000000};
	const char *fin = finish_name(a->finish);
	size_t len = r->stream ? oai_stream_end((char *)p->eg, EG_CAP, &r->resp, fin, &u)
			       : oai_whole_tail((char *)p->eg, EG_CAP, &r->resp, fin, &u);
	if (len == 0) {
		proxy_act_fail(p, MU_WIRE_INTERNAL, NULL, now);
		return;
	}
	if (r->prepaid >= len)
		r->prepaid -= len;
	else if (!proxy_charge(p, len, now))
		return;
	a->bytes_released += len; /* counted in the record below, as the frame path's done is */
	a->frames++;
	/* recorded before the end leaves; a response that cannot be recorded is not completed */
	if (proxy_act_audit(p, fin, NULL, now) != 0) {
		p->act.audited = 1;
		proxy_act_fail(p, MU_WIRE_INTERNAL, "the audit log cannot be written, so nothing more is released", now);
		return;
	}
	proxy_eg_set(p, len, a->client, PROXY_EG_DONE);
}

/* Released text through the stop sequences into out (n + OAI_MAX_STOP_BYTES bytes of room). */
static size_t stop_pass(struct proxy *p, struct http_req *r, const uint8_t *in, size_t n, uint8_t *out, uint64_t now)
{
	if (r->stop.n == 0) {
		memcpy(out, in, n);
		return n;
	}
	size_t k = oai_stop_push(&r->stop, in, n, out);
	if (r->stop.matched && !p->act.stop_hit) {
		p->act.stop_hit = 1; /* the text ends here; the enclave's done(cancelled) ends it as "stop" */
		proxy_act_cancel(p, now);
	}
	return k;
}

static int produce_stream(struct proxy *p, struct http_req *r, uint64_t now)
{
	struct proxy_active *a = &p->act;
	struct proxy_http *H = p->http;
	if (a->pending_release) {
		size_t n = mu_filter_release(&p->filter, p->rel, sizeof p->rel);
		if (n == 0) {
			a->pending_release = 0;
			return 1;
		}
		size_t k = stop_pass(p, r, p->rel, n, H->stop_out, now);
		if (k)
			emit_text(p, r, H->stop_out, k, now);
		return 1;
	}
	if (a->phase != PROXY_ACT_FINISH)
		return 0;
	if (!r->stop_flushed) {
		r->stop_flushed = 1;
		size_t k = oai_stop_flush(&r->stop, H->stop_out);
		if (k)
			emit_text(p, r, H->stop_out, k, now);
		return 1;
	}
	emit_end(p, r, now);
	return 1;
}

/* Bytes oai_escape makes of text (the escapes oai.h lists). */
static uint64_t escaped_len(const uint8_t *t, size_t n)
{
	uint64_t k = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = t[i];
		if (b == '"' || b == '\\' || b == '\n' || b == '\r' || b == '\t' || b == '\b' || b == '\f')
			k += 2;
		else if (b < 0x20 || b == 0x7f)
			k += 6;
		else
			k += 1;
	}
	return k;
}

/* stream false: the text is held (as the frame path holds it) and goes out at the end as one
 * JSON body; a hold that fills up sends the head early and the text as it comes. */
static int produce_whole(struct proxy *p, struct http_req *r, uint64_t now)
{
	struct proxy_active *a = &p->act;
	if (r->head_sent && a->ns_off < a->ns_len) {
		size_t used = 0, left = a->ns_len - a->ns_off;
		size_t len = oai_escape((char *)p->eg, HTTP_PIECE_MAX, a->ns + a->ns_off, left, &used);
		if (len == 0 || used == 0) {
			fprintf(stderr, "mu proxy: request %s: released text cannot be sent (not UTF-8)\n", r->id);
			proxy_act_fail(p, MU_WIRE_INTERNAL, NULL, now);
			return 1;
		}
		if (emit(p, len, used, PROXY_EG_TOKEN, now))
			a->ns_off += used;
		return 1;
	}
	if (r->head_sent)
		a->ns_len = a->ns_off = 0;
	if (a->pending_release) {
		if (a->ns_len + sizeof p->rel + OAI_MAX_STOP_BYTES > a->ns_cap) {
			size_t len = oai_whole_head((char *)p->eg, EG_CAP, &r->resp);
			if (len == 0) {
				proxy_act_fail(p, MU_WIRE_INTERNAL, NULL, now);
				return 1;
			}
			if (emit(p, len, 0, PROXY_EG_TOKEN, now))
				r->head_sent = 1;
			return 1;
		}
		size_t n = mu_filter_release(&p->filter, p->rel, sizeof p->rel);
		if (n == 0)
			a->pending_release = 0;
		else
			a->ns_len += stop_pass(p, r, p->rel, n, a->ns + a->ns_len, now);
		return 1;
	}
	if (a->phase != PROXY_ACT_FINISH)
		return 0;
	if (!r->stop_flushed) {
		r->stop_flushed = 1;
		a->ns_len += oai_stop_flush(&r->stop, a->ns + a->ns_len);
		return 1;
	}
	if (!r->head_sent) {
		/* the whole body is known: charge all of it before its first byte, so that a budget or
		 * quota it does not fit gets a clean error status instead of a body cut short */
		struct oai_usage u = {.prompt_tokens = a->prompt_tokens,
				      .completion_tokens = a->completion_tokens,
				      .total_ns = a->elapsed_ms * 1000000};
		size_t tail = oai_whole_tail((char *)p->eg, EG_CAP, &r->resp, finish_name(a->finish), &u);
		size_t len = oai_whole_head((char *)p->eg, EG_CAP, &r->resp);
		if (len == 0 || tail == 0) {
			proxy_act_fail(p, MU_WIRE_INTERNAL, NULL, now);
			return 1;
		}
		uint64_t total = len + tail + escaped_len(a->ns + a->ns_off, a->ns_len - a->ns_off);
		if (!proxy_charge(p, total, now))
			return 1;
		r->prepaid = total;
		if (emit(p, len, 0, PROXY_EG_TOKEN, now))
			r->head_sent = 1;
		return 1;
	}
	emit_end(p, r, now);
	return 1;
}

int proxy_http_produce(struct proxy *p, uint64_t now)
{
	struct http_req *r = act_req(p);
	if (!r || r->ended || r->gone)
		return 0;
	return r->stream ? produce_stream(p, r, now) : produce_whole(p, r, now);
}

static void set_err_body(struct http_req *r, unsigned status, const char *ctype, const char *body, size_t len,
			 uint32_t retry)
{
	free(r->err_body);
	r->err_body = malloc(len ? len : 1);
	if (!r->err_body) {
		r->gone = 1; /* no memory to say it: the connection is closed */
		return;
	}
	memcpy(r->err_body, body, len);
	r->err_len = len;
	r->err_status = status;
	r->err_ctype = ctype;
	r->err_retry = retry;
}

static void put_ctl(struct http_req *r, const char *b, size_t n)
{
	if (r->ctl_off) {
		memmove(r->ctl, r->ctl + r->ctl_off, r->ctl_len - r->ctl_off);
		r->ctl_len -= r->ctl_off;
		r->ctl_off = 0;
	}
	if (n == 0 || r->ctl_len + n > sizeof r->ctl) {
		r->gone = 1; /* cannot be said within the body: the connection is closed */
		return;
	}
	memcpy(r->ctl + r->ctl_len, b, n);
	r->ctl_len += n;
}

const char *http_body_ctype(const struct http_req *r)
{
	if (!r->stream)
		return "application/json";
	return r->api == OAI_OLLAMA ? "application/x-ndjson" : "text/event-stream";
}

void proxy_http_error(struct proxy *p, struct proxy_client *c, const char *id, enum mu_wire_code code,
		      const char *message)
{
	struct http_req *r = c->h;
	char *buf = p->http->scratch;
	struct oai_error e;
	(void)id;
	if (!r || r->ended)
		return;
	r->ended = 1;
	if (code == MU_WIRE_FILTERED) {
		/* a blocked response ends as OpenAI ends a filtered one: finish_reason content_filter,
		 * with the text released before the block (none for stream false) */
		struct oai_usage u = {0};
		size_t n = 0;
		if (r->stream) {
			n = oai_stream_end(buf, HTTP_SCRATCH, &r->resp, "content_filter", &u);
		} else if (!r->head_sent) {
			n = oai_whole_head(buf, HTTP_SCRATCH, &r->resp);
			size_t t = n ? oai_whole_tail(buf + n, HTTP_SCRATCH - n, &r->resp, "content_filter", &u) : 0;
			n = t ? n + t : 0;
		} else {
			n = oai_whole_tail(buf, HTTP_SCRATCH, &r->resp, "content_filter", &u);
		}
		if (!r->queued)
			set_err_body(r, 200, http_body_ctype(r), buf, n, 0);
		else
			put_ctl(r, buf, n);
		return;
	}
	http_code_error(&e, code, message);
	if (!r->queued) {
		size_t n = oai_error_body(buf, HTTP_SCRATCH, r->api, &e);
		set_err_body(r, (unsigned)e.status, "application/json", buf, n, http_retry_after(p, code, r->key));
	} else if (r->stream) {
		put_ctl(r, buf, oai_stream_error(buf, HTTP_SCRATCH, &r->resp, &e));
	} else {
		r->gone = 1; /* a JSON body under way cannot carry an error: it is cut short */
	}
}

/* ---- the content reader ---- */

ssize_t http_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_req *r = cls;
	struct proxy *p = r->p;
	(void)pos;
	p->http->activity = 1;
	if (r->gone || r->p->http->stopping)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (r->mid != 2 && r->ctl_off < r->ctl_len) {
		size_t k = r->ctl_len - r->ctl_off;
		if (k > max)
			k = max;
		memcpy(buf, r->ctl + r->ctl_off, k);
		r->ctl_off += k;
		r->mid = r->ctl_off < r->ctl_len ? 1 : 0;
		if (r->ctl_off == r->ctl_len)
			r->ctl_off = r->ctl_len = 0;
		return (ssize_t)k;
	}
	if (r->mid != 1 && r->ci >= 0 && p->eg_client == r->ci && p->eg_off < p->eg_len) {
		size_t left = p->eg_len - p->eg_off;
		if (p->eg_credit == 0) {
			uint64_t t = pal_now_ns(), wait = 0;
			p->eg_credit = mu_bucket_grant(&p->bucket, left, t, &wait);
			if (p->eg_credit == 0) {
				p->eg_wait_until_ns = t + (wait ? wait : 1000000u);
				MHD_suspend_connection(r->conn);
				r->suspended = 1;
				return 0;
			}
		}
		size_t k = left < max ? left : max;
		if (k > p->eg_credit)
			k = (size_t)p->eg_credit;
		memcpy(buf, p->eg + p->eg_off, k);
		p->eg_off += k;
		p->eg_credit -= k;
		proxy_metrics_bytes(&p->metrics, k, proxy_now_ms());
		r->mid = 2;
		if (p->eg_off == p->eg_len) {
			int kind = p->eg_kind, ci = r->ci;
			p->eg_len = p->eg_off = 0;
			p->eg_client = -1;
			r->mid = 0;
			if (kind == PROXY_EG_DONE)
				r->ended = 1;
			proxy_egress_written(p, ci, kind);
		}
		return (ssize_t)k;
	}
	if (r->ended && r->ctl_off == r->ctl_len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	MHD_suspend_connection(r->conn);
	r->suspended = 1;
	return 0;
}
