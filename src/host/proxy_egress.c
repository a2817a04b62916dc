/* proxy_egress.c — the request queue and the one active request: forwarding it, reading its
 * enclave frames through the output filter, and turning what the filter releases into frames
 * for the client, each charged to the ledger before it exists and metered by the token bucket
 * as it is written.
 *
 *   enclave token text --mu_filter_push--> filter --mu_filter_release--> token frame
 *       --mu_ledger_charge (whole frame)--> eg (one frame in flight) --mu_bucket_grant--> client
 *
 * Backpressure: while a frame is in flight or the filter still has releasable bytes, the
 * enclave is not read (proxy_act_may_read), so its socket fills and its writes wait.
 *
 * Every request accepted (audited "request") ends with exactly one closing record: "response"
 * (a done, an error, a client gone) or "blocked" (the filter). For the active request
 * p->act.audited says whether it is written; for one that never reached the enclave the
 * client's req state does (QUEUED and CANCELLED: not yet; ANSWERED: written).
 *
 * Nothing the enclave says reaches a client unchecked: token text passes the filter, an error
 * is passed on by its code only, and a done's usage must be plausible (completion_tokens at
 * most the request's max_tokens, prompt_tokens at most the enclave's n_ctx) while its
 * elapsed_ms is replaced by the proxy's own measure. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "host/proxy.h"
#include "pal/pal.h"

static struct proxy_client *act_client(struct proxy *p)
{
	return p->act.client >= 0 ? &p->clients[p->act.client] : NULL;
}

static uint64_t today(void) { return mu_ledger_day(proxy_wall_ms() / 1000u); }

void proxy_queue_remove(struct proxy *p, uint32_t pos)
{
	if (pos >= p->n_queue)
		return;
	memmove(&p->queue[pos], &p->queue[pos + 1], (p->n_queue - pos - 1) * sizeof p->queue[0]);
	p->n_queue--;
}

static void queue_remove_client(struct proxy *p, uint32_t ci)
{
	for (uint32_t i = 0; i < p->n_queue; i++)
		if (p->queue[i] == ci) {
			proxy_queue_remove(p, i);
			return;
		}
}

/* ---- audit records ---- */

struct resp_rec {
	const char *client, *id;
	int forwarded;
	uint64_t bytes, frames, text;
	int64_t prompt_tokens, completion_tokens, elapsed_ms;
	uint64_t proxy_ms;
	const char *finish; /* finish_reason, or NULL */
	const char *error;  /* the code the client got instead, or NULL */
	uint32_t flagged;   /* filter rules that fired with action flag */
};

static int audit_response(struct proxy *p, const struct resp_rec *r)
{
	char flagged[128] = "";
	size_t fl = 0;
	for (int k = 0; k < MU_RULE_COUNT; k++)
		if (r->flagged & (1u << k))
			fl += (size_t)snprintf(flagged + fl, sizeof flagged - fl, "%s%s", fl ? "," : "",
					       mu_filter_rule_name((enum mu_filter_rule)k));
	struct jsonw *w = proxy_audit_begin(p, "response");
	if (!w)
		return -1;
	jsonw_str(w, "client", r->client);
	jsonw_str(w, "id", r->id);
	jsonw_bool(w, "forwarded", r->forwarded);
	jsonw_int(w, "bytes", (int64_t)r->bytes);
	jsonw_int(w, "frames", (int64_t)r->frames);
	jsonw_int(w, "text_bytes", (int64_t)r->text);
	jsonw_int(w, "prompt_tokens", r->prompt_tokens);
	jsonw_int(w, "completion_tokens", r->completion_tokens);
	jsonw_int(w, "elapsed_ms", r->elapsed_ms);
	jsonw_int(w, "proxy_ms", (int64_t)r->proxy_ms);
	if (r->finish)
		jsonw_str(w, "finish_reason", r->finish);
	else
		jsonw_null(w, "finish_reason");
	if (r->error)
		jsonw_str(w, "error", r->error);
	else
		jsonw_null(w, "error");
	jsonw_str(w, "flagged", flagged);
	return proxy_audit_commit(p);
}

/* The active request's closing record (once). */
int proxy_act_audit(struct proxy *p, const char *finish, const char *error, uint64_t now)
{
	struct proxy_active *a = &p->act;
	if (a->audited)
		return 0;
	a->audited = 1;
	struct resp_rec r = {
		.client = a->client_name,
		.id = a->id,
		.forwarded = 1,
		.bytes = a->bytes_released,
		.frames = a->frames,
		.text = a->text_released,
		.prompt_tokens = a->prompt_tokens,
		.completion_tokens = a->completion_tokens,
		.elapsed_ms = a->elapsed_ms,
		.proxy_ms = now > a->t0_ms ? now - a->t0_ms : 0,
		.finish = finish,
		.error = error,
		.flagged = p->filter.flagged,
	};
	return audit_response(p, &r);
}

/* A request that never reached the enclave (queued, then the client left or the link fell). */
static void audit_unforwarded(struct proxy *p, const struct proxy_client *c, const char *finish, const char *error,
			      uint64_t now)
{
	struct resp_rec r = {
		.client = c->name,
		.id = c->req_id,
		.proxy_ms = now > c->req_t0_ms ? now - c->req_t0_ms : 0,
		.finish = finish,
		.error = error,
	};
	audit_response(p, &r);
}

/* ---- ending the active request ---- */

/* The client has its answer (or is gone): it may send its next request. */
static void detach(struct proxy *p)
{
	struct proxy_client *c = act_client(p);
	if (c && c->req == PROXY_REQ_ACTIVE)
		c->req = PROXY_REQ_NONE;
	p->act.client = -1;
}

static void act_end(struct proxy *p)
{
	detach(p);
	p->act.phase = PROXY_ACT_NONE;
	p->act.pending_release = 0;
	p->act.ns_len = p->act.ns_off = 0;
	p->act.ns_flushing = 0;
}

/* Forgets output of the active request that has not started to leave: an unstarted frame
 * (charged, never released: the ledger errs on the safe side) and text held for the end. A
 * frame partly written is finished, or the client's stream would be broken. */
static void drop_unstarted(struct proxy *p)
{
	if (p->eg_len && p->eg_off == 0 && p->eg_client == p->act.client && p->eg_kind != PROXY_EG_LOCAL_DONE) {
		p->eg_len = 0;
		p->eg_client = -1;
		p->eg_credit = 0;
	}
	p->act.pending_release = 0;
	p->act.ns_len = p->act.ns_off = 0;
	p->act.ns_flushing = 0;
}

void proxy_act_cancel(struct proxy *p, uint64_t now)
{
	struct proxy_active *a = &p->act;
	char body[MU_WIRE_MAX_ID + 64];
	if (a->cancel_sent || a->enclave_done)
		return;
	size_t n = mu_msg_cancel(body, sizeof body, a->id);
	if (n == 0 || proxy_link_send(p, body, n, now) != 0)
		proxy_link_fail_later(p, "a cancel for the enclave could not be queued");
	a->cancel_sent = 1;
	/* Generous: an enclave still evaluating a long prompt answers the cancel only when it next
	 * looks at its channel; a silent one still loses the link at this deadline. */
	a->drain_deadline_ms = now + p->o->drain_timeout_ms;
}

/* After the client has its answer: wait for the enclave to end the request, or end it now. */
static void after_answer(struct proxy *p, uint64_t now)
{
	detach(p);
	if (!p->act.enclave_done) {
		proxy_act_cancel(p, now);
		p->act.phase = PROXY_ACT_DRAIN;
	} else {
		act_end(p);
	}
}

/* The request ends with an error frame the proxy writes (message NULL: the code's own). */
void proxy_act_fail(struct proxy *p, enum mu_wire_code code, const char *message, uint64_t now)
{
	struct proxy_client *c = act_client(p);
	drop_unstarted(p);
	proxy_act_audit(p, NULL, mu_wire_code_name(code), now);
	if (c)
		proxy_client_error(p, c, p->act.id, code, message);
	after_answer(p, now);
}

static void act_block(struct proxy *p, enum mu_filter_rule rule, uint64_t at, uint64_t now)
{
	struct proxy_active *a = &p->act;
	struct proxy_client *c = act_client(p);
	uint64_t withheld = p->filter.total > a->text_released ? p->filter.total - a->text_released : 0;
	char msg[128];
	drop_unstarted(p);
	a->audited = 1;
	p->metrics.blocks[rule]++;
	struct jsonw *w = proxy_audit_begin(p, "blocked");
	if (w) {
		jsonw_str(w, "client", a->client_name);
		jsonw_str(w, "id", a->id);
		jsonw_str(w, "rule", mu_filter_rule_name(rule));
		jsonw_int(w, "at", (int64_t)at);
		jsonw_int(w, "withheld_bytes", (int64_t)withheld);
		jsonw_int(w, "released_text_bytes", (int64_t)a->text_released);
		jsonw_int(w, "released_bytes", (int64_t)a->bytes_released);
		proxy_audit_commit(p); /* a block releases nothing more, recorded or not */
	}
	snprintf(msg, sizeof msg, "the output filter blocked this response (rule %s)", mu_filter_rule_name(rule));
	if (c)
		proxy_client_error(p, c, a->id, MU_WIRE_FILTERED, msg);
	after_answer(p, now);
}

/* ---- frames for the client ---- */

int proxy_charge(struct proxy *p, size_t n, uint64_t now)
{
	struct mu_error err = {0};
	enum mu_err rc = mu_ledger_charge(&p->ledger, n, today(), &err);
	if (rc == MU_OK && p->act.key >= 0) {
		rc = mu_keys_charge(&p->keys, (uint32_t)p->act.key, n, today(), &err);
		if (rc == MU_ERR_RANGE) {
			fprintf(stderr, "mu proxy: request %s of %s: %s\n", p->act.id, p->act.client_name, err.msg);
			proxy_act_fail(p, MU_WIRE_QUOTA_EXHAUSTED, NULL, now);
			return 0;
		}
	}
	if (rc == MU_OK)
		return 1;
	if (rc == MU_ERR_RANGE) {
		fprintf(stderr, "mu proxy: request %s of %s: %s\n", p->act.id, p->act.client_name, err.msg);
		proxy_act_fail(p, MU_WIRE_BUDGET_EXHAUSTED, NULL, now);
	} else {
		fprintf(stderr, "mu proxy: ledger: %s; failing closed\n", err.msg);
		proxy_act_fail(p, MU_WIRE_INTERNAL, "the budget ledger cannot be written, so nothing more is released", now);
	}
	return 0;
}

void proxy_eg_set(struct proxy *p, size_t len, int ci, int kind)
{
	p->eg_credit = 0; /* credit left from a dropped piece is given up, never spent on this one */
	p->eg_len = len;
	p->eg_off = 0;
	p->eg_client = ci;
	p->eg_kind = kind;
}

static void eg_put(struct proxy *p, size_t body_len, int client, int kind)
{
	mu_frame_header(p->eg, body_len, MU_WIRE_MAX_FRAME, NULL);
	proxy_eg_set(p, MU_FRAME_HDR + body_len, client, kind);
}

static int emit_token(struct proxy *p, const uint8_t *text, size_t n, uint64_t now)
{
	struct proxy_active *a = &p->act;
	size_t len = mu_msg_token((char *)p->eg + MU_FRAME_HDR, MU_WIRE_MAX_FRAME + 1, a->id, text, n);
	if (len == 0) { /* only possible with the invalid_utf8 rule off */
		fprintf(stderr, "mu proxy: request %s: released text cannot be framed (not UTF-8)\n", a->id);
		proxy_act_fail(p, MU_WIRE_INTERNAL, NULL, now);
		return 0;
	}
	if (!proxy_charge(p, MU_FRAME_HDR + len, now))
		return 0;
	eg_put(p, len, a->client, PROXY_EG_TOKEN);
	a->text_released += n;
	a->bytes_released += MU_FRAME_HDR + len;
	a->frames++;
	return 1;
}

static void emit_done(struct proxy *p, uint64_t now)
{
	struct proxy_active *a = &p->act;
	size_t len = mu_msg_done((char *)p->eg + MU_FRAME_HDR, MU_WIRE_MAX_FRAME + 1, a->id, a->finish,
				 a->prompt_tokens, a->completion_tokens, a->elapsed_ms);
	if (len == 0) {
		proxy_act_fail(p, MU_WIRE_INTERNAL, NULL, now);
		return;
	}
	if (!proxy_charge(p, MU_FRAME_HDR + len, now))
		return;
	a->bytes_released += MU_FRAME_HDR + len;
	a->frames++;
	/* recorded before the done leaves; a response that cannot be recorded is not completed */
	if (proxy_act_audit(p, mu_finish_name(a->finish), NULL, now) != 0) {
		a->audited = 1;
		proxy_act_fail(p, MU_WIRE_INTERNAL, "the audit log cannot be written, so nothing more is released", now);
		return;
	}
	eg_put(p, len, a->client, PROXY_EG_DONE);
}

/* Produces the active request's next frame; 0 when there is nothing to produce now. */
static int produce(struct proxy *p, uint64_t now)
{
	struct proxy_active *a = &p->act;
	if ((a->phase != PROXY_ACT_STREAM && a->phase != PROXY_ACT_FINISH) || a->client < 0)
		return 0;
	if (p->clients[a->client].h)
		return proxy_http_produce(p, now);
	if (a->stream) {
		if (a->pending_release) {
			size_t n = mu_filter_release(&p->filter, p->rel, sizeof p->rel);
			if (n) {
				emit_token(p, p->rel, n, now);
				return 1;
			}
			a->pending_release = 0;
		}
		if (a->phase == PROXY_ACT_FINISH) {
			emit_done(p, now);
			return 1;
		}
		return 0;
	}
	/* stream:false: the same filter and charges, but the text goes out at the end */
	while (a->pending_release && !a->ns_flushing) {
		/* ns_cap is max_response_bytes + MU_WIRE_MAX_TOKEN_TEXT: with the max_size rule
		 * blocking, the filter blocks before the hold fills, so nothing leaves before the end */
		if (a->ns_len + MU_WIRE_MAX_TOKEN_TEXT > a->ns_cap) {
			a->ns_flushing = 1;
			break;
		}
		size_t n = mu_filter_release(&p->filter, a->ns + a->ns_len, MU_WIRE_MAX_TOKEN_TEXT);
		if (n == 0)
			a->pending_release = 0;
		a->ns_len += n;
	}
	int at_end = a->phase == PROXY_ACT_FINISH && !a->pending_release;
	if (!a->ns_flushing && !at_end)
		return 0;
	if (a->ns_off < a->ns_len) {
		/* at most MU_WIRE_MAX_TOKEN_TEXT bytes per token frame, cut on a character boundary */
		size_t k = a->ns_len - a->ns_off;
		if (k > MU_WIRE_MAX_TOKEN_TEXT) {
			k = MU_WIRE_MAX_TOKEN_TEXT;
			for (int s = 0; s < 3 && k > 1 && (a->ns[a->ns_off + k] & 0xc0) == 0x80; s++)
				k--;
		}
		if (emit_token(p, a->ns + a->ns_off, k, now))
			a->ns_off += k;
		return 1;
	}
	a->ns_len = a->ns_off = 0;
	a->ns_flushing = 0;
	if (at_end)
		emit_done(p, now);
	return 1;
}

/* A done(cancelled) owed to a client whose queued request it cancelled: charged and metered
 * like every done frame. Its closing record is written before the frame is queued, and the
 * request is ANSWERED from then on, so that nothing (the client leaving before the frame is
 * out) can record it a second time. */
static int local_done(struct proxy *p, uint64_t now)
{
	uint32_t n = p->o->max_clients;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = (p->local_rr + k) % n;
		struct proxy_client *c = &p->clients[i];
		if (c->fd < 0 || c->req != PROXY_REQ_CANCELLED)
			continue;
		p->local_rr = i + 1;
		struct mu_error err = {0};
		size_t len = mu_msg_done((char *)p->eg + MU_FRAME_HDR, MU_WIRE_MAX_FRAME + 1, c->req_id,
					 MU_FINISH_CANCELLED, 0, 0, 0);
		enum mu_err rc = len ? mu_ledger_charge(&p->ledger, MU_FRAME_HDR + len, today(), &err) : MU_ERR_INTERNAL;
		if (rc != MU_OK) {
			enum mu_wire_code code = rc == MU_ERR_RANGE ? MU_WIRE_BUDGET_EXHAUSTED : MU_WIRE_INTERNAL;
			audit_unforwarded(p, c, NULL, mu_wire_code_name(code), now);
			proxy_client_error(p, c, c->req_id, code, NULL);
			c->req = PROXY_REQ_NONE;
			continue;
		}
		struct resp_rec r = {.client = c->name,
				     .id = c->req_id,
				     .bytes = MU_FRAME_HDR + len,
				     .frames = 1,
				     .proxy_ms = now > c->req_t0_ms ? now - c->req_t0_ms : 0,
				     .finish = "cancelled"};
		if (audit_response(p, &r) != 0) {
			proxy_client_error(p, c, c->req_id, MU_WIRE_INTERNAL, NULL);
			c->req = PROXY_REQ_NONE;
			continue;
		}
		c->req = PROXY_REQ_ANSWERED;
		eg_put(p, len, (int)i, PROXY_EG_LOCAL_DONE);
		return 1;
	}
	return 0;
}

static int start_next(struct proxy *p, uint64_t now)
{
	if (p->link.state != PROXY_LINK_UP || p->n_queue == 0)
		return 0;
	uint32_t ci = p->queue[0];
	struct proxy_client *c = &p->clients[ci];
	if (proxy_link_send(p, c->req_buf, c->req_len, now) != 0)
		return 0; /* the enclave has not read the last frames yet */
	proxy_queue_remove(p, 0);
	struct proxy_active *a = &p->act;
	uint8_t *ns = a->ns;
	size_t ns_cap = a->ns_cap;
	memset(a, 0, sizeof *a);
	a->ns = ns;
	a->ns_cap = ns_cap;
	a->phase = PROXY_ACT_STREAM;
	a->client = (int)ci;
	snprintf(a->id, sizeof a->id, "%s", c->req_id);
	snprintf(a->client_name, sizeof a->client_name, "%s", c->name);
	a->stream = c->req_stream;
	a->max_tokens = c->req_max_tokens;
	a->key = c->req_key;
	a->t0_ms = c->req_t0_ms;
	a->fwd_ms = now;
	mu_filter_start(&p->filter, &p->fcfg);
	c->req = PROXY_REQ_ACTIVE;
	return 1;
}

void proxy_pump(struct proxy *p, uint64_t now)
{
	for (int guard = 0; guard < 1024; guard++) {
		if (p->eg_len) {
			proxy_client_flush(p, &p->clients[p->eg_client], now);
			if (p->eg_len)
				return; /* the socket is full or the bucket is empty */
			continue;
		}
		if (local_done(p, now))
			continue;
		if (p->act.phase == PROXY_ACT_NONE) {
			if (!start_next(p, now))
				return;
			continue;
		}
		if (!produce(p, now))
			return;
	}
}

void proxy_egress_written(struct proxy *p, int ci, int kind)
{
	if (kind == PROXY_EG_DONE && p->act.phase == PROXY_ACT_FINISH && p->act.client == ci) {
		act_end(p);
	} else if (kind == PROXY_EG_LOCAL_DONE && p->clients[ci].req == PROXY_REQ_ANSWERED) {
		p->clients[ci].req = PROXY_REQ_NONE;
	}
}

int proxy_act_may_read(const struct proxy *p)
{
	switch (p->act.phase) {
	case PROXY_ACT_NONE:
	case PROXY_ACT_DRAIN:
		return 1;
	case PROXY_ACT_STREAM:
		return p->eg_len == 0 && !p->act.pending_release;
	default:
		return 0;
	}
}

/* ---- events ---- */

/* The enclave's done must be possible for this request: no more completion tokens than the
 * request allowed, no longer a prompt than the enclave's context. Otherwise the numbers are not
 * passed on: the request fails with internal (recorded as implausible_done, then the response
 * with error internal); 0 is returned. The numbers themselves are not recorded: they are
 * whatever the enclave chose. */
static int done_plausible(struct proxy *p, const struct mu_msg *m, uint64_t now)
{
	struct proxy_active *a = &p->act;
	const char *field = NULL;
	int64_t limit = 0;
	if (m->done.completion_tokens < 0 || m->done.completion_tokens > a->max_tokens) {
		field = "completion_tokens";
		limit = a->max_tokens;
	} else if (m->done.prompt_tokens < 0 || m->done.prompt_tokens > p->link.n_ctx) {
		field = "prompt_tokens";
		limit = p->link.n_ctx;
	}
	if (!field)
		return 1;
	fprintf(stderr, "mu proxy: request %s: the enclave's done has an implausible %s (allowed 0..%lld); failing it\n",
		a->id, field, (long long)limit);
	struct jsonw *w = proxy_audit_begin(p, "implausible_done");
	if (w) {
		jsonw_str(w, "client", a->client_name);
		jsonw_str(w, "id", a->id);
		jsonw_str(w, "field", field);
		jsonw_int(w, "limit", limit);
		proxy_audit_commit(p); /* it releases nothing either way */
	}
	proxy_act_fail(p, MU_WIRE_INTERNAL, "the enclave ended the request with an implausible done; nothing more is released",
		 now);
	return 0;
}

void proxy_act_enclave_frame(struct proxy *p, const struct mu_msg *m, uint64_t now)
{
	struct proxy_active *a = &p->act;
	int ours = a->phase != PROXY_ACT_NONE && m->has_id && !strcmp(m->id, a->id);
	switch (m->type) {
	case MU_MSG_TOKEN:
		if (!ours || a->phase != PROXY_ACT_STREAM || a->stop_hit)
			return; /* late frames of a request already answered, or text after a stop */
		if (mu_filter_push(&p->filter, m->token.text.p, m->token.text.n) == MU_FILTER_BLOCKED)
			act_block(p, p->filter.rule, p->filter.at, now);
		else
			a->pending_release = 1;
		return;
	case MU_MSG_DONE:
		if (!ours)
			return;
		if (a->phase == PROXY_ACT_DRAIN) {
			act_end(p);
			return;
		}
		if (a->phase != PROXY_ACT_STREAM)
			return;
		a->enclave_done = 1;
		a->elapsed_ms = (int64_t)(now > a->fwd_ms ? now - a->fwd_ms : 0); /* ours, not the enclave's */
		if (!done_plausible(p, m, now))
			return;
		/* a stop sequence the proxy found ended the text; the enclave's cancel is its echo */
		a->finish = a->stop_hit ? MU_FINISH_STOP : m->done.finish;
		a->prompt_tokens = m->done.prompt_tokens;
		a->completion_tokens = m->done.completion_tokens;
		proxy_metrics_tokens(&p->metrics, (uint64_t)a->completion_tokens, now);
		if (mu_filter_finish(&p->filter) == MU_FILTER_BLOCKED) {
			act_block(p, p->filter.rule, p->filter.at, now);
			return;
		}
		a->phase = PROXY_ACT_FINISH;
		a->pending_release = 1;
		return;
	case MU_MSG_ERROR: {
		/* An error about a request carries its id (ours are always valid); one without an id
		 * answers some other frame and never ends the running request. */
		if (!ours) {
			/* counted, never printed one by one: stderr and the audit log get one count per
			 * link session (the enclave_lost record, or proxy_stop) */
			p->link.stray_errors++;
			return;
		}
		if (a->phase == PROXY_ACT_DRAIN) {
			act_end(p);
			return;
		}
		if (a->phase != PROXY_ACT_STREAM)
			return;
		enum mu_wire_code code = m->error.code;
		if (code <= MU_WIRE_OK || code >= MU_WIRE_CODE_COUNT)
			code = MU_WIRE_INTERNAL;
		/* passed on by its code; the message is ours, never the enclave's text */
		char msg[160];
		snprintf(msg, sizeof msg, "the enclave ended the request: %s", proxy_code_message(code));
		a->enclave_done = 1;
		proxy_act_fail(p, code, msg, now);
		return;
	}
	default:
		proxy_link_fail_later(p, "the enclave sent a message only a client or the proxy sends");
		return;
	}
}

int proxy_act_enclave_bad_frame(struct proxy *p, enum mu_wire_code code, uint64_t now)
{
	if (code != MU_WIRE_INVALID_UTF8)
		return -1;
	/* Bytes that are not UTF-8 cannot be decoded, so they can never be passed on: whatever
	 * the rule's action, the running response is blocked under invalid_utf8. */
	if (p->act.phase == PROXY_ACT_STREAM)
		act_block(p, MU_RULE_INVALID_UTF8, p->filter.total, now);
	return 0;
}

void proxy_act_link_lost(struct proxy *p)
{
	uint64_t now = proxy_now_ms();
	struct proxy_active *a = &p->act;
	if (a->phase == PROXY_ACT_STREAM) {
		a->enclave_done = 1; /* nothing more will come */
		proxy_act_fail(p, MU_WIRE_ENCLAVE_LOST, NULL, now);
	} else if (a->phase == PROXY_ACT_DRAIN) {
		act_end(p);
	} /* PROXY_ACT_FINISH needs the enclave no more: it goes on */
	for (uint32_t i = 0; i < p->n_queue; i++) {
		struct proxy_client *c = &p->clients[p->queue[i]];
		audit_unforwarded(p, c, NULL, "enclave_unavailable", now);
		proxy_client_error(p, c, c->req_id, MU_WIRE_ENCLAVE_UNAVAILABLE, NULL);
		c->req = PROXY_REQ_NONE;
	}
	p->n_queue = 0;
}

void proxy_act_client_gone(struct proxy *p, struct proxy_client *c)
{
	struct proxy_active *a = &p->act;
	int ci = (int)(c - p->clients);
	uint64_t now = proxy_now_ms();
	if (p->eg_client == ci) {
		int kind = p->eg_kind;
		p->eg_len = p->eg_off = 0;
		p->eg_client = -1;
		p->eg_credit = 0; /* granted for bytes that will never be written: given up */
		if (kind == PROXY_EG_DONE && a->client == ci && a->phase == PROXY_ACT_FINISH)
			act_end(p); /* its record is written; the client just did not take the done */
	}
	if (c->req == PROXY_REQ_QUEUED || c->req == PROXY_REQ_CANCELLED) {
		if (c->req == PROXY_REQ_QUEUED)
			queue_remove_client(p, (uint32_t)ci);
		audit_unforwarded(p, c, c->req == PROXY_REQ_CANCELLED ? "cancelled" : NULL, "client_gone", now);
		c->req = PROXY_REQ_NONE;
	} else if (c->req == PROXY_REQ_ANSWERED) {
		c->req = PROXY_REQ_NONE; /* recorded already; its done frame was dropped above */
	} else if (c->req == PROXY_REQ_ACTIVE && a->client == ci) {
		drop_unstarted(p);
		proxy_act_audit(p, NULL, "client_gone", now);
		after_answer(p, now);
	}
}

void proxy_act_client_cancel(struct proxy *p, struct proxy_client *c, const char *id, uint64_t now)
{
	struct proxy_active *a = &p->act;
	int ci = (int)(c - p->clients);
	if (c->req == PROXY_REQ_QUEUED && !strcmp(id, c->req_id)) {
		queue_remove_client(p, (uint32_t)ci);
		c->req = PROXY_REQ_CANCELLED; /* answered with done(cancelled) by proxy_pump */
		return;
	}
	if (c->req == PROXY_REQ_ACTIVE && a->client == ci && a->phase == PROXY_ACT_STREAM && !strcmp(id, a->id))
		proxy_act_cancel(p, now); /* the enclave answers done(cancelled), passed on as usual */
	/* a cancel for any other id is ignored, as the enclave does */
}

uint64_t proxy_act_next_ms(const struct proxy *p)
{
	const struct proxy_active *a = &p->act;
	if (a->phase == PROXY_ACT_DRAIN || (a->phase == PROXY_ACT_STREAM && a->cancel_sent))
		return a->drain_deadline_ms ? a->drain_deadline_ms : 1;
	return 0;
}

void proxy_act_timers(struct proxy *p, uint64_t now)
{
	uint64_t t = proxy_act_next_ms(p);
	if (t && now >= t)
		proxy_link_fail(p, "the enclave did not end a cancelled request in time", now);
}
