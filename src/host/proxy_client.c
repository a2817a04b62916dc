/* proxy_client.c — the proxy's client connections: accepting (and refusing past
 * --max-clients), reading frames into each client's own buffer within the read timeout,
 * admitting generate requests into the queue, and writing to each client without ever
 * interleaving two frames.
 *
 * A client's outgoing bytes come from two places: its ctl buffer (the proxy's own error frames,
 * not charged, not limited) and the one egress frame in flight (token or done: charged and
 * metered by the token bucket, see proxy_egress.c). `mid` remembers which of them has a frame
 * partly on the wire, so the other waits for that frame's end.
 *
 * A client is read only while its ctl buffer has room for the answers a frame may cause; one
 * that sends and never reads is closed once its writes stall for the read timeout. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host/proxy.h"
#include "pal/net.h"
#include "pal/pal.h"

#define DRAIN_MS 1000u /* a closing client is drained this long, so our last frame is not reset */
#define ACCEPT_PAUSE_MS 100u

const char *proxy_code_message(enum mu_wire_code code)
{
	switch (code) {
	case MU_WIRE_BAD_FRAME: return "a frame length of 0 cannot be resynchronised; closing";
	case MU_WIRE_FRAME_TOO_LARGE: return "the frame is larger than the 1 MiB maximum; closing";
	case MU_WIRE_TIMEOUT: return "a frame was begun but not finished within the read timeout; closing";
	case MU_WIRE_INVALID_UTF8: return "the frame is not valid UTF-8";
	case MU_WIRE_BAD_JSON: return "the frame is not one strict JSON object within the limits";
	case MU_WIRE_BAD_MESSAGE: return "a member is missing, unknown or of the wrong type";
	case MU_WIRE_UNKNOWN_TYPE: return "unknown message type";
	case MU_WIRE_BAD_STATE: return "the request is not allowed in this state";
	case MU_WIRE_BAD_REQUEST: return "a generate parameter is out of range";
	case MU_WIRE_PROMPT_TOO_LONG: return "the prompt leaves no room in the model's context";
	case MU_WIRE_BUSY: return "this connection already has a request queued or running";
	case MU_WIRE_UNSUPPORTED_VERSION: return "unsupported protocol version";
	case MU_WIRE_UNLOCK_FAILED: return "the model could not be unlocked";
	case MU_WIRE_INTERNAL: return "an internal failure; nothing more is released for this request";
	case MU_WIRE_ENCLAVE_UNAVAILABLE: return "no attested enclave at the moment; try again later";
	case MU_WIRE_ENCLAVE_LOST: return "the enclave connection broke during the request";
	case MU_WIRE_BUDGET_EXHAUSTED: return "the egress budget (daily or total) is spent";
	case MU_WIRE_FILTERED: return "the output filter blocked this response";
	case MU_WIRE_OVER_CAPACITY: return "too many clients or queued requests; try again later";
	case MU_WIRE_UNAUTHORIZED: return "no API key, or not a known one";
	case MU_WIRE_RATE_LIMITED: return "the API key's request rate is spent for now; try again later";
	case MU_WIRE_QUOTA_EXHAUSTED: return "the API key's output quota is spent";
	default: return "the request failed";
	}
}

static int client_index(const struct proxy *p, const struct proxy_client *c) { return (int)(c - p->clients); }

/* ---- refusals ----
 *
 * A refusal costs a client nothing, so without a limit any client could make the proxy write
 * (and fsync) audit records as fast as it can send frames or connect. Per code, at most one
 * `refused` record is written per PROXY_REFUSED_INTERVAL_MS: the first refusal after a quiet
 * interval at once, the ones after it counted and folded into one record when the interval is
 * over (or at stop). A record stands for 1 + suppressed refusals: the one it names (the latest)
 * and `suppressed` earlier ones of the same code since the previous record of that code. */

static void write_refused(struct proxy *p, const char *client, const char *id, enum mu_wire_code code,
			  uint64_t suppressed)
{
	struct jsonw *w = proxy_audit_begin(p, "refused");
	if (!w)
		return;
	jsonw_str(w, "client", client);
	if (id)
		jsonw_str(w, "id", id);
	else
		jsonw_null(w, "id");
	jsonw_str(w, "code", mu_wire_code_name(code));
	jsonw_int(w, "suppressed", (int64_t)suppressed);
	proxy_audit_commit(p); /* a refusal releases nothing, so it goes out either way */
}

void proxy_audit_refused(struct proxy *p, const char *client, const char *id, enum mu_wire_code code, uint64_t now)
{
	if ((unsigned)code >= MU_WIRE_CODE_COUNT)
		code = MU_WIRE_INTERNAL;
	struct proxy_refusals *r = &p->refusals[code];
	if (r->pending == 0 && (!r->recorded || now - r->last_ms >= PROXY_REFUSED_INTERVAL_MS)) {
		r->recorded = 1;
		r->last_ms = now;
		write_refused(p, client, id, code, 0);
		return;
	}
	r->pending++;
	snprintf(r->client, sizeof r->client, "%s", client);
	r->has_id = id != NULL;
	snprintf(r->id, sizeof r->id, "%s", id ? id : "");
}

void proxy_refused_flush(struct proxy *p, uint64_t now, int force)
{
	for (unsigned k = 0; k < MU_WIRE_CODE_COUNT; k++) {
		struct proxy_refusals *r = &p->refusals[k];
		if (r->pending == 0 || (!force && now - r->last_ms < PROXY_REFUSED_INTERVAL_MS))
			continue;
		write_refused(p, r->client, r->has_id ? r->id : NULL, (enum mu_wire_code)k, r->pending - 1);
		r->pending = 0;
		r->recorded = 1;
		r->last_ms = now;
	}
}

uint64_t proxy_refused_next_ms(const struct proxy *p)
{
	uint64_t t = 0;
	for (unsigned k = 0; k < MU_WIRE_CODE_COUNT; k++) {
		const struct proxy_refusals *r = &p->refusals[k];
		uint64_t due = r->last_ms + PROXY_REFUSED_INTERVAL_MS;
		if (r->pending && (!t || due < t))
			t = due;
	}
	return t;
}

static void audit_timeout(struct proxy *p, const struct proxy_client *c, const char *during, uint64_t pending)
{
	struct jsonw *w = proxy_audit_begin(p, "client_timeout");
	if (!w)
		return;
	jsonw_str(w, "client", c->name);
	jsonw_str(w, "during", during);
	jsonw_int(w, "pending_bytes", (int64_t)pending);
	jsonw_int(w, "timeout_ms", p->o->read_timeout_ms);
	proxy_audit_commit(p);
}

/* ---- writing ---- */

void proxy_client_error(struct proxy *p, struct proxy_client *c, const char *id, enum mu_wire_code code,
			const char *message)
{
	char body[MU_WIRE_MAX_ERROR_MESSAGE + 256];
	if (c->h) {
		proxy_http_error(p, c, id, code, message);
		return;
	}
	size_t n = mu_msg_error(body, sizeof body, id, code, message ? message : proxy_code_message(code));
	if (n == 0)
		n = mu_msg_error(body, sizeof body, NULL, code, proxy_code_message(code));
	if (c->ctl_off) { /* keep the unwritten bytes, in order, at the front */
		memmove(c->ctl, c->ctl + c->ctl_off, c->ctl_len - c->ctl_off);
		c->ctl_len -= c->ctl_off;
		c->ctl_off = 0;
	}
	if (n == 0 || c->ctl_len + MU_FRAME_HDR + n > sizeof c->ctl ||
	    mu_frame_header(c->ctl + c->ctl_len, n, MU_WIRE_MAX_FRAME, NULL) != MU_OK) {
		/* cannot happen while reads wait for ctl room; if it does, the client goes */
		c->closing = 1;
		c->close_at_ms = 0;
		return;
	}
	memcpy(c->ctl + c->ctl_len + MU_FRAME_HDR, body, n);
	c->ctl_len += MU_FRAME_HDR + n;
}

static int has_pending(const struct proxy *p, const struct proxy_client *c)
{
	return c->ctl_off < c->ctl_len || (p->eg_client == client_index(p, c) && p->eg_off < p->eg_len);
}

int proxy_client_wants_write(const struct proxy *p, const struct proxy_client *c, uint64_t now_ns)
{
	if (c->draining)
		return 0;
	/* ctl waits while an egress frame is partly written: only the bucket can move things then */
	if (c->mid != 2 && c->ctl_off < c->ctl_len)
		return 1;
	return p->eg_client == client_index(p, c) && p->eg_off < p->eg_len &&
	       (p->eg_credit > 0 || now_ns >= p->eg_wait_until_ns);
}

/* Sends what may go now; returns 1 when the socket took everything offered, 0 when it is full
 * (or the bucket is empty), -1 when the client was closed. */
static int send_some(struct proxy *p, struct proxy_client *c, const uint8_t *b, size_t n, size_t *sent, uint64_t now)
{
	for (;;) {
		ssize_t w = send(c->fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->stall_t0_ms)
				c->stall_t0_ms = now;
			*sent = 0;
			return 0;
		}
		if (w <= 0) {
			proxy_client_close(p, c, "write error");
			return -1;
		}
		c->stall_t0_ms = 0;
		*sent = (size_t)w;
		return 1;
	}
}

void proxy_client_flush(struct proxy *p, struct proxy_client *c, uint64_t now)
{
	int ci = client_index(p, c);
	size_t sent;
	if (c->fd < 0 || c->draining || c->h) /* an HTTP request is written by its content reader */
		return;
	for (;;) {
		if (c->mid != 2 && c->ctl_off < c->ctl_len) {
			int r = send_some(p, c, c->ctl + c->ctl_off, c->ctl_len - c->ctl_off, &sent, now);
			if (r < 0)
				return;
			c->ctl_off += sent;
			if (c->ctl_off == c->ctl_len) {
				c->ctl_off = c->ctl_len = 0;
				c->mid = 0;
			} else {
				c->mid = 1; /* frames in ctl are whole: finish them before anything else */
			}
			if (r == 0)
				return;
			continue;
		}
		if (c->mid != 1 && p->eg_client == ci && p->eg_off < p->eg_len) {
			size_t left = p->eg_len - p->eg_off;
			if (p->eg_credit == 0) {
				uint64_t t = pal_now_ns(), wait = 0;
				p->eg_credit = mu_bucket_grant(&p->bucket, left, t, &wait);
				if (p->eg_credit == 0) {
					p->eg_wait_until_ns = t + (wait ? wait : 1000000u);
					return;
				}
			}
			size_t want = p->eg_credit < left ? (size_t)p->eg_credit : left;
			int r = send_some(p, c, p->eg + p->eg_off, want, &sent, now);
			if (r < 0)
				return;
			p->eg_off += sent;
			p->eg_credit -= sent;
			proxy_metrics_bytes(&p->metrics, sent, now);
			if (p->eg_off)
				c->mid = 2;
			if (p->eg_off == p->eg_len) {
				int kind = p->eg_kind;
				p->eg_len = p->eg_off = 0;
				p->eg_client = -1;
				c->mid = 0;
				proxy_egress_written(p, ci, kind);
			}
			if (r == 0)
				return;
			continue;
		}
		break;
	}
	if (c->closing && !has_pending(p, c)) {
		/* our last frame is out: end our side, then read until the client closes (or the drain
		 * deadline) so that unread input does not turn the close into a reset */
		shutdown(c->fd, SHUT_WR);
		c->draining = 1;
		c->close_at_ms = now + DRAIN_MS;
	}
}

/* ---- closing ---- */

void proxy_client_close(struct proxy *p, struct proxy_client *c, const char *why)
{
	(void)why;
	if (c->fd < 0 || c->h)
		return;
	proxy_act_client_gone(p, c); /* its queued or running request, and its egress frame */
	close(c->fd);
	c->fd = -1;
	p->n_clients--;
	c->req = PROXY_REQ_NONE;
	c->ctl_len = c->ctl_off = 0;
	c->mid = 0;
	c->closing = c->draining = 0;
	c->stall_t0_ms = c->frame_t0_ms = 0;
}

/* The client will be closed once our error frame is written (or after the read timeout). */
static void start_closing(struct proxy *p, struct proxy_client *c, uint64_t now)
{
	c->closing = 1;
	c->close_at_ms = now + p->o->read_timeout_ms;
	proxy_act_client_gone(p, c);
}

/* ---- reading ---- */

/* A generate refused before admission: audited (rate-limited), answered, and counted against
 * the connection, which is closed at its PROXY_MAX_REFUSALS-th refusal. */
static void refuse(struct proxy *p, struct proxy_client *c, const char *id, enum mu_wire_code code,
		   const char *message, uint64_t now)
{
	proxy_audit_refused(p, c->name, id, code, now);
	if (++c->refusals < PROXY_MAX_REFUSALS) {
		proxy_client_error(p, c, id, code, message);
		return;
	}
	proxy_client_error(p, c, id, code, "too many refused requests on this connection; closing");
	start_closing(p, c, now);
}

enum mu_wire_code proxy_admit_check(struct proxy *p, const char *id)
{
	char done[MU_WIRE_MAX_ID + 160];
	if (p->link.state != PROXY_LINK_UP)
		return MU_WIRE_ENCLAVE_UNAVAILABLE;
	/* no budget left: less than the smallest complete answer (a done frame) */
	size_t dn = mu_msg_done(done, sizeof done, id, MU_FINISH_CANCELLED, 0, 0, 0);
	uint64_t left = mu_ledger_remaining(&p->ledger, mu_ledger_day(proxy_wall_ms() / 1000u));
	if (left < MU_FRAME_HDR + dn)
		return MU_WIRE_BUDGET_EXHAUSTED;
	if (p->n_queue >= MU_PROXY_MAX_QUEUE)
		return MU_WIRE_OVER_CAPACITY;
	return MU_WIRE_OK;
}

enum mu_wire_code proxy_enqueue(struct proxy *p, struct proxy_client *c, const struct mu_msg *m, const char *api,
				uint64_t now, const char **msg)
{
	const char *id = m->id;
	/* re-encoded from the decoded message: the enclave never sees a client's bytes */
	size_t n = mu_msg_generate((char *)c->req_buf, MU_WIRE_MAX_FRAME, m);
	if (n == 0) {
		*msg = "the request does not fit in one frame once re-encoded";
		return MU_WIRE_BAD_REQUEST;
	}
	uint64_t prompt_bytes = 0;
	if (m->generate.has_prompt)
		prompt_bytes = m->generate.prompt.n;
	else
		for (uint32_t i = 0; i < m->generate.n_messages; i++)
			prompt_bytes += m->generate.content[i].n;
	struct jsonw *w = proxy_audit_begin(p, "request");
	if (w) {
		jsonw_str(w, "client", c->name);
		jsonw_str(w, "id", id);
		if (api) {
			jsonw_str(w, "api", api);
			if (c->req_key >= 0)
				jsonw_str(w, "key", p->keys.k[c->req_key].id);
			else
				jsonw_null(w, "key");
		}
		jsonw_int(w, "prompt_bytes", (int64_t)prompt_bytes);
		jsonw_int(w, "messages", m->generate.has_prompt ? 0 : m->generate.n_messages);
		jsonw_int(w, "max_tokens", m->generate.max_tokens);
		jsonw_bool(w, "stream", m->generate.stream);
		jsonw_int(w, "queued_before", p->n_queue);
	}
	if (!w || proxy_audit_commit(p) != 0) {
		*msg = "the audit log cannot be written, so nothing is served";
		return MU_WIRE_INTERNAL;
	}
	c->req = PROXY_REQ_QUEUED;
	snprintf(c->req_id, sizeof c->req_id, "%s", id);
	c->req_stream = m->generate.stream != 0;
	c->req_max_tokens = m->generate.max_tokens;
	c->req_len = n;
	c->req_t0_ms = now;
	p->queue[p->n_queue++] = (uint32_t)client_index(p, c);
	return MU_WIRE_OK;
}

static void admit(struct proxy *p, struct proxy_client *c, const struct mu_msg *m, uint64_t now)
{
	const char *id = m->id;
	if (c->req != PROXY_REQ_NONE) {
		proxy_client_error(p, c, id, MU_WIRE_BUSY, NULL);
		return;
	}
	enum mu_wire_code code = proxy_admit_check(p, id);
	if (code != MU_WIRE_OK) {
		refuse(p, c, id, code,
		       code == MU_WIRE_OVER_CAPACITY ? "too many requests are queued; try again later" : NULL, now);
		return;
	}
	const char *msg = NULL;
	c->req_key = -1;
	code = proxy_enqueue(p, c, m, NULL, now, &msg);
	if (code != MU_WIRE_OK)
		proxy_client_error(p, c, id, code, msg);
	else
		p->metrics.frame_requests++;
}

static void on_frame(struct proxy *p, struct proxy_client *c, const uint8_t *body, size_t len, uint64_t now)
{
	struct mu_msg *m = &p->msg;
	struct mu_error err = {0};
	enum mu_wire_code code = mu_msg_decode(m, body, len, p->scratch, p->scratch_len, &err);
	if (code != MU_WIRE_OK) {
		proxy_client_error(p, c, NULL, code, NULL);
		return;
	}
	switch (m->type) {
	case MU_MSG_GENERATE:
		admit(p, c, m, now);
		break;
	case MU_MSG_CANCEL:
		proxy_act_client_cancel(p, c, m->id, now);
		break;
	default:
		proxy_client_error(p, c, m->has_id ? m->id : NULL, MU_WIRE_BAD_MESSAGE, "clients send generate and cancel");
		break;
	}
}

void proxy_client_readable(struct proxy *p, struct proxy_client *c, short revents, uint64_t now)
{
	int fd = c->fd;
	if (!(revents & POLLIN) && !c->draining) { /* a hangup or an error while it was not read */
		proxy_client_close(p, c, "hangup");
		return;
	}
	if (c->draining) {
		uint8_t junk[4096];
		ssize_t n = recv(fd, junk, sizeof junk, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			proxy_client_close(p, c, "closed");
		return;
	}
	/* a few frames per wakeup, so one busy client cannot starve the others */
	for (int frames = 0; frames < 8 && c->fd == fd && !c->closing;) {
		if (c->ctl_len + PROXY_CTL_READ_ROOM > PROXY_CTL_MAX)
			return;
		uint8_t *dst;
		size_t want;
		if (mu_frame_rd_space(&c->rd, &dst, &want) == MU_FRAME_DONE || want == 0)
			return;
		ssize_t n = recv(fd, dst, want, MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				proxy_client_close(p, c, "read error");
			return;
		}
		if (n == 0) {
			proxy_client_close(p, c, "closed");
			return;
		}
		struct mu_error err = {0};
		enum mu_frame_state st;
		if (mu_frame_rd_commit(&c->rd, (size_t)n, &st, &err) != MU_OK) {
			enum mu_wire_code code = err.code == MU_ERR_RANGE ? MU_WIRE_FRAME_TOO_LARGE : MU_WIRE_BAD_FRAME;
			proxy_client_error(p, c, NULL, code, NULL);
			start_closing(p, c, now);
			return;
		}
		if (st != MU_FRAME_DONE) {
			if (!c->frame_t0_ms)
				c->frame_t0_ms = now;
			continue;
		}
		c->frame_t0_ms = 0;
		on_frame(p, c, c->rd.buf, mu_frame_rd_len(&c->rd), now);
		if (c->fd != fd)
			return;
		mu_frame_rd_next(&c->rd);
		frames++;
	}
}

void proxy_client_accept(struct proxy *p, uint64_t now)
{
	for (int k = 0; k < 64; k++) {
		int fd;
		struct mu_error err = {0};
		enum mu_err rc = pal_accept(p->lfd, PAL_NET_NONBLOCK, &fd, &err);
		if (rc == MU_ERR_STATE)
			return;
		if (rc != MU_OK) { /* out of descriptors, ...: stop accepting for a moment, do not spin */
			fprintf(stderr, "mu proxy: %s; not accepting for %u ms\n", err.msg, ACCEPT_PAUSE_MS);
			p->accept_pause_until_ms = now + ACCEPT_PAUSE_MS;
			return;
		}
		char peer[80];
		pal_peer_name(fd, peer, sizeof peer);
		uint64_t serial = ++p->serial;
		struct proxy_client *c = NULL;
		for (uint32_t i = 0; i < p->o->max_clients && !c; i++)
			if (p->clients[i].fd < 0)
				c = &p->clients[i];
		if (!c) {
			/* over capacity: say so (a small frame always fits an empty socket buffer) */
			char name[PROXY_NAME_MAX], body[320];
			uint8_t frame[MU_FRAME_HDR + sizeof body];
			snprintf(name, sizeof name, "c%llu %s", (unsigned long long)serial, peer);
			proxy_audit_refused(p, name, NULL, MU_WIRE_OVER_CAPACITY, now);
			size_t n = mu_msg_error(body, sizeof body, NULL, MU_WIRE_OVER_CAPACITY,
						"too many clients are connected; try again later");
			if (n && mu_frame_header(frame, n, MU_WIRE_MAX_FRAME, NULL) == MU_OK) {
				memcpy(frame + MU_FRAME_HDR, body, n);
				if (send(fd, frame, MU_FRAME_HDR + n, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
					shutdown(fd, SHUT_WR);
			}
			/* what the client already sent is read and dropped, so that the close does not
			 * become a reset that loses the error frame */
			uint8_t junk[4096];
			for (int d = 0; d < 16 && recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0; d++)
				;
			close(fd);
			continue;
		}
		c->fd = fd;
		c->serial = serial;
		snprintf(c->name, sizeof c->name, "c%llu %s", (unsigned long long)serial, peer);
		mu_frame_rd_init(&c->rd, c->rd_mem, MU_WIRE_MAX_FRAME);
		c->frame_t0_ms = c->stall_t0_ms = 0;
		c->ctl_len = c->ctl_off = 0;
		c->mid = c->closing = c->draining = 0;
		c->req = PROXY_REQ_NONE;
		c->refusals = 0;
		p->n_clients++;
	}
}

/* ---- deadlines ---- */

uint64_t proxy_client_next_ms(const struct proxy *p, const struct proxy_client *c)
{
	uint64_t t = 0, rt = p->o->read_timeout_ms;
	if (c->closing || c->draining)
		return c->close_at_ms ? c->close_at_ms : 1;
	if (c->frame_t0_ms)
		t = c->frame_t0_ms + rt;
	if (c->stall_t0_ms && has_pending(p, c) && (!t || c->stall_t0_ms + rt < t))
		t = c->stall_t0_ms + rt;
	return t;
}

void proxy_client_timers(struct proxy *p, uint64_t now)
{
	uint64_t rt = p->o->read_timeout_ms;
	for (uint32_t i = 0; i < p->o->max_clients; i++) {
		struct proxy_client *c = &p->clients[i];
		if (c->fd < 0)
			continue;
		if (c->closing || c->draining) {
			if (now >= c->close_at_ms)
				proxy_client_close(p, c, "closing deadline");
			continue;
		}
		if (c->frame_t0_ms && now - c->frame_t0_ms >= rt) {
			audit_timeout(p, c, "read", mu_frame_rd_pending(&c->rd));
			proxy_client_error(p, c, NULL, MU_WIRE_TIMEOUT, NULL);
			start_closing(p, c, now);
			continue;
		}
		if (c->stall_t0_ms && has_pending(p, c) && now - c->stall_t0_ms >= rt) {
			audit_timeout(p, c, "write", (c->ctl_len - c->ctl_off) +
							     (p->eg_client == (int)i ? p->eg_len - p->eg_off : 0));
			proxy_client_close(p, c, "write timeout");
		}
	}
}
