/* proxy_http.c — mu proxy's HTTP API (docs/http.md): OpenAI-shaped chat and text completions,
 * Ollama's /api/generate, /v1/models, /health and /metrics, on libmicrohttpd.
 *
 * libmicrohttpd runs inside the proxy's one poll loop ("external" polling with its epoll
 * descriptor): it parses HTTP, this file decides. A generate request becomes a client slot of
 * its own (clients[max_clients ..]) in the same queue as the frame clients, so it passes the
 * same admission, filter, ledger, token bucket and audit log; only its output is formatted
 * differently (SSE chunks, NDJSON lines or one JSON body), and the bytes charged and metered are
 * the body bytes this file hands to libmicrohttpd.
 *
 *   request  headers: route, API key (401), Content-Length (413)
 *            body: collected up to --http-max-body (413)
 *            whole: parsed (400), model (404), key rate (429), admission (503, 429), key quota
 *                   (429) -> queued, the connection suspended
 *   output   the egress path formats into p->eg (proxy_http_produce); the connection is
 *            resumed and the response queued at the first piece or error, so an error that
 *            comes before any output still gets its own status; the content reader hands the
 *            pieces over as the token bucket grants bytes, and suspends when there is nothing
 *   hangup   a suspended connection is watched for the peer's hangup (libmicrohttpd does not
 *            look at it then): the request is cancelled in the enclave at once
 *   deadline a request must arrive whole within --http-timeout-ms of its first byte (or of the
 *            connection's previous answer); one that does not is shut down, so slow clients
 *            hold only a connection slot, never the queue or the enclave
 *
 * The output side (formatting, errors after admission, the content reader) is in
 * proxy_http_out.c; the shared structs in proxy_http.h.
 *
 * Nothing here prints request contents: not prompts, not keys, not the model names clients
 * send. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host/proxy_http.h"
#include "pal/net.h"
#include "pal/pal.h"

static void count_status(struct proxy *p, unsigned status)
{
	struct proxy_metrics *m = &p->metrics;
	for (int i = 0; i < PROXY_HTTP_STATUSES; i++) {
		if (m->status[i] == status || m->status[i] == 0) {
			m->status[i] = (uint16_t)status;
			m->status_n[i]++;
			return;
		}
	}
}

/* ---- responses ---- */

static enum MHD_Result queue(struct http_req *r, unsigned status, struct MHD_Response *resp, const char *ctype,
			     uint32_t retry_after)
{
	char v[24];
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (r->id[0])
		MHD_add_response_header(resp, "X-Request-Id", r->id);
	if (retry_after) {
		snprintf(v, sizeof v, "%u", retry_after);
		MHD_add_response_header(resp, "Retry-After", v);
	}
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, "Allow", r->route == R_CHAT || r->route == R_COMPLETIONS ||
								r->route == R_OLLAMA ? "POST" : "GET");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->queued = 1;
	if (r->hc)
		r->hc->busy = 1;
	count_status(r->p, status);
	return ret;
}

static enum MHD_Result respond(struct http_req *r, unsigned status, const char *ctype, const void *body, size_t len,
			       uint32_t retry_after)
{
	return queue(r, status, MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY), ctype,
		     retry_after);
}

static enum MHD_Result respond_error(struct http_req *r, const struct oai_error *e, uint32_t retry_after)
{
	char *buf = r->p->http->scratch;
	size_t n = oai_error_body(buf, HTTP_SCRATCH, r->api, e);
	return respond(r, (unsigned)e->status, "application/json", buf, n, retry_after);
}


/* ---- the client slot ---- */

static struct proxy_client *slot(struct http_req *r) { return r->ci >= 0 ? &r->p->clients[r->ci] : NULL; }

void proxy_http_release(struct proxy *p, struct proxy_client *c)
{
	struct http_req *r = c->h;
	if (!r)
		return;
	proxy_act_client_gone(p, c); /* its queued or running request, and its egress piece */
	c->fd = -1;
	c->h = NULL;
	c->req = PROXY_REQ_NONE;
	c->req_key = -1;
	r->ci = -1;
}

static int claim_slot(struct proxy *p, struct http_req *r)
{
	uint32_t lo = p->o->max_clients, hi = lo + p->o->http_max_conns;
	for (uint32_t i = lo; i < hi; i++) {
		struct proxy_client *c = &p->clients[i];
		if (c->fd >= 0 || c->h)
			continue;
		const union MHD_ConnectionInfo *fi = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		char peer[80];
		c->fd = fi ? fi->connect_fd : -1;
		if (c->fd < 0)
			return -1;
		pal_peer_name(c->fd, peer, sizeof peer);
		if (r->key >= 0)
			snprintf(c->name, sizeof c->name, "%s key=%s %s", r->id, p->keys.k[r->key].id, peer);
		else
			snprintf(c->name, sizeof c->name, "%s %s", r->id, peer);
		c->h = r;
		c->req = PROXY_REQ_NONE;
		c->req_key = r->key;
		c->ctl_len = c->ctl_off = 0;
		c->mid = c->closing = c->draining = 0;
		r->ci = (int)i;
		return 0;
	}
	return -1;
}


/* ---- requests ---- */

static enum http_route route_of(const char *url)
{
	static const struct {
		const char *url;
		enum http_route r;
	} t[] = {{"/v1/chat/completions", R_CHAT}, {"/v1/completions", R_COMPLETIONS}, {"/api/generate", R_OLLAMA},
		 {"/v1/models", R_MODELS},        {"/health", R_HEALTH},           {"/metrics", R_METRICS}};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(url, t[i].url))
			return t[i].r;
	return R_NONE;
}

static int is_generate(enum http_route r) { return r == R_CHAT || r == R_COMPLETIONS || r == R_OLLAMA; }

static const char *api_name(enum oai_api a)
{
	return a == OAI_CHAT ? "chat" : a == OAI_COMPLETIONS ? "completions" : "ollama";
}

/* The served model's public name: the one of this proxy's first attestation, so that an enclave
 * that re-attests cannot put new text of its choosing into every /v1/models answer. */
static const char *served_model(const struct proxy *p) { return p->link.first_model[0] ? p->link.first_model : NULL; }

/* "Authorization: Bearer KEY" against the keys file; -2 when it does not pass. */
static int auth(struct proxy *p, struct MHD_Connection *conn)
{
	if (p->o->http_no_auth)
		return -1;
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7)) /* the scheme is case-insensitive (RFC 7235) */
		return -2;
	const char *k = h + 7;
	int i = mu_keys_find(&p->keys, k, strlen(k));
	return i >= 0 ? i : -2;
}

/* A refusal: audited (folded per code, as the frame socket's are) and answered. retry: the
 * Retry-After seconds, 0 for the code's own. */
static enum MHD_Result refuse_retry(struct http_req *r, enum mu_wire_code code, const char *message, uint32_t retry,
				    uint64_t now)
{
	struct oai_error e;
	struct proxy *p = r->p;
	char name[PROXY_NAME_MAX], peer[80] = "?";
	const union MHD_ConnectionInfo *fi = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (fi)
		pal_peer_name(fi->connect_fd, peer, sizeof peer);
	if (r->key >= 0)
		snprintf(name, sizeof name, "%s key=%s %s", r->id[0] ? r->id : "h-", p->keys.k[r->key].id, peer);
	else
		snprintf(name, sizeof name, "%s %s", r->id[0] ? r->id : "h-", peer);
	proxy_audit_refused(p, name, r->id[0] ? r->id : NULL, code, now);
	if (r->key >= 0)
		p->keys.k[r->key].refused++;
	http_code_error(&e, code, message);
	return respond_error(r, &e, retry ? retry : http_retry_after(p, code, r->key));
}

static enum MHD_Result refuse(struct http_req *r, enum mu_wire_code code, const char *message, uint64_t now)
{
	return refuse_retry(r, code, message, 0, now);
}

static enum MHD_Result answer_get(struct http_req *r)
{
	struct proxy *p = r->p;
	char *buf = p->http->scratch;
	size_t n = 0;
	if (r->route == R_HEALTH) {
		int up = p->link.state == PROXY_LINK_UP;
		struct jsonw w;
		jsonw_init(&w, buf, HTTP_SCRATCH);
		jsonw_begin(&w, NULL);
		jsonw_str(&w, "status", up ? "ok" : "unavailable");
		jsonw_str(&w, "enclave", up ? "attested" : "not attested");
		jsonw_end(&w);
		if (jsonw_finish(&w, &n) != MU_OK)
			return MHD_NO;
		buf[n++] = '\n';
		return respond(r, up ? 200 : 503, "application/json", buf, n, up ? 0 : 1);
	}
	if (r->route == R_MODELS) {
		n = oai_models(buf, HTTP_SCRATCH, served_model(p), (int64_t)(p->metrics.last_attested_wall_ms / 1000u));
		return respond(r, 200, "application/json", buf, n, 0);
	}
	/* R_METRICS */
	struct proxy_metrics *m = &p->metrics;
	uint64_t now = proxy_now_ms();
	double bps, tps;
	proxy_metrics_rates(m, now, &bps, &tps);
	uint64_t left = mu_ledger_remaining(&p->ledger, http_today());
	size_t cap = HTTP_SCRATCH;
#define PUT(...) n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__)
	PUT("# HELP mu_egress_bytes_total Bytes of enclave-derived output written to clients (frames and HTTP bodies).\n"
	    "# TYPE mu_egress_bytes_total counter\nmu_egress_bytes_total %llu\n",
	    (unsigned long long)m->egress_bytes);
	PUT("# HELP mu_egress_rate_bytes_per_second Egress over the last %d seconds.\n"
	    "# TYPE mu_egress_rate_bytes_per_second gauge\nmu_egress_rate_bytes_per_second %.1f\n",
	    PROXY_RATE_WINDOW, bps);
	PUT("# HELP mu_egress_cap_bytes_per_second The proxy's egress cap.\n"
	    "# TYPE mu_egress_cap_bytes_per_second gauge\nmu_egress_cap_bytes_per_second %llu\n",
	    (unsigned long long)p->o->egress_bps);
	PUT("# HELP mu_egress_burst_bytes The egress cap's burst.\n"
	    "# TYPE mu_egress_burst_bytes gauge\nmu_egress_burst_bytes %llu\n",
	    (unsigned long long)p->o->egress_burst);
	PUT("# HELP mu_budget_remaining_bytes Egress budget left today (daily and total budgets together).\n"
	    "# TYPE mu_budget_remaining_bytes gauge\n");
	if (left == UINT64_MAX)
		PUT("mu_budget_remaining_bytes +Inf\n");
	else
		PUT("mu_budget_remaining_bytes %llu\n", (unsigned long long)left);
	PUT("# HELP mu_http_requests_total HTTP requests answered, by status.\n# TYPE mu_http_requests_total counter\n");
	for (int i = 0; i < PROXY_HTTP_STATUSES && m->status[i]; i++)
		PUT("mu_http_requests_total{status=\"%u\"} %llu\n", m->status[i], (unsigned long long)m->status_n[i]);
	PUT("# HELP mu_frame_requests_total Generate requests admitted on the frame socket.\n"
	    "# TYPE mu_frame_requests_total counter\nmu_frame_requests_total %llu\n",
	    (unsigned long long)m->frame_requests);
	PUT("# HELP mu_filter_blocks_total Responses blocked by the output filter, by rule.\n"
	    "# TYPE mu_filter_blocks_total counter\n");
	for (int k = 0; k < MU_RULE_COUNT; k++)
		PUT("mu_filter_blocks_total{rule=\"%s\"} %llu\n", mu_filter_rule_name((enum mu_filter_rule)k),
		    (unsigned long long)m->blocks[k]);
	PUT("# HELP mu_enclave_attested 1 while an attested enclave is being served.\n"
	    "# TYPE mu_enclave_attested gauge\nmu_enclave_attested %d\n",
	    p->link.state == PROXY_LINK_UP);
	PUT("# HELP mu_enclave_attestations_total Attestations since the proxy started.\n"
	    "# TYPE mu_enclave_attestations_total counter\nmu_enclave_attestations_total %llu\n",
	    (unsigned long long)p->link.attested);
	PUT("# HELP mu_enclave_last_attestation_timestamp_seconds When the enclave was last attested (0: never).\n"
	    "# TYPE mu_enclave_last_attestation_timestamp_seconds gauge\n"
	    "mu_enclave_last_attestation_timestamp_seconds %.3f\n",
	    (double)m->last_attested_wall_ms / 1000.0);
	PUT("# HELP mu_completion_tokens_total Tokens generated for completed requests.\n"
	    "# TYPE mu_completion_tokens_total counter\nmu_completion_tokens_total %llu\n",
	    (unsigned long long)m->completion_tokens);
	PUT("# HELP mu_tokens_per_second Completion tokens per second over the last %d seconds.\n"
	    "# TYPE mu_tokens_per_second gauge\nmu_tokens_per_second %.2f\n",
	    PROXY_RATE_WINDOW, tps);
	PUT("# HELP mu_queue_depth Requests waiting for the enclave.\n# TYPE mu_queue_depth gauge\nmu_queue_depth %u\n",
	    p->n_queue);
	PUT("# HELP mu_http_connections Open HTTP connections.\n# TYPE mu_http_connections gauge\n"
	    "mu_http_connections %u\n",
	    p->http->n_conns);
#undef PUT
	if (n >= cap)
		return MHD_NO;
	return respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", buf, n, 0);
}

/* The whole body of a generate request is here: check it and queue it. */
static enum MHD_Result admit(struct http_req *r, uint64_t now)
{
	struct proxy *p = r->p;
	struct proxy_http *H = p->http;
	struct oai_request q;
	struct oai_error e;
	if (r->too_large) {
		oai_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
			      "the request body is larger than the %u-byte limit", p->o->http_max_body);
		return respond_error(r, &e, 0);
	}
	int64_t def = p->link.max_tokens > 0 ? p->link.max_tokens : 256;
	if (def > MU_WIRE_MAX_GEN_TOKENS)
		def = MU_WIRE_MAX_GEN_TOKENS;
	if (oai_parse_request(&q, r->api, r->body ? r->body : (const uint8_t *)"", r->body_len, def, H->parse_mem,
			      H->parse_mem_len, &e) != 0)
		return respond_error(r, &e, 0);
	const char *model = served_model(p);
	if (!model)
		return refuse(r, MU_WIRE_ENCLAVE_UNAVAILABLE, NULL, now);
	if (strcmp(q.model, model)) {
		oai_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
			      "this server serves one model; GET /v1/models names it");
		return respond_error(r, &e, 0);
	}
	snprintf(r->id, sizeof r->id, "h%llu", (unsigned long long)++H->serial);
	uint32_t wait_s = 0;
	if (r->key >= 0 && mu_keys_take_request(&p->keys, (uint32_t)r->key, pal_now_ns(), &wait_s))
		return refuse_retry(r, MU_WIRE_RATE_LIMITED, NULL, wait_s ? wait_s : 1, now);
	enum mu_wire_code code = proxy_admit_check(p, r->id);
	if (code != MU_WIRE_OK)
		return refuse(r, code, NULL, now);
	/* less left than the smallest answer (head and end, no text) cannot be a completion */
	if (mu_ledger_remaining(&p->ledger, http_today()) < HTTP_MIN_ANSWER)
		return refuse(r, MU_WIRE_BUDGET_EXHAUSTED, NULL, now);
	if (r->key >= 0 && mu_keys_remaining(&p->keys, (uint32_t)r->key, http_today()) < HTTP_MIN_ANSWER)
		return refuse(r, MU_WIRE_QUOTA_EXHAUSTED, NULL, now);
	if (claim_slot(p, r) != 0)
		return refuse(r, MU_WIRE_OVER_CAPACITY, "too many HTTP requests at once; try again later", now);
	struct proxy_client *c = slot(r);
	snprintf(q.gen.id, sizeof q.gen.id, "%s", r->id);
	q.gen.has_id = 1;
	const char *msg = NULL;
	code = proxy_enqueue(p, c, &q.gen, api_name(r->api), now, &msg);
	if (code != MU_WIRE_OK) {
		proxy_http_release(p, c);
		http_code_error(&e, code, msg);
		return respond_error(r, &e, 0);
	}
	snprintf(r->model, sizeof r->model, "%s", model);
	r->stream = q.stream;
	r->first = 1;
	r->resp = (struct oai_resp){.api = r->api,
				    .id = r->id,
				    .model = r->model,
				    .created = (int64_t)(proxy_wall_ms() / 1000u),
				    .created_ms = (int64_t)proxy_wall_ms(),
				    .include_usage = q.include_usage};
	oai_stop_init(&r->stop, &q);
	r->admitted = 1;
	if (r->hc)
		r->hc->busy = 1;
	MHD_suspend_connection(r->conn);
	r->suspended = 1;
	return MHD_YES;
}

/* Resumed after admission: the first piece or an error is there. */
static enum MHD_Result start_response(struct http_req *r)
{
	r->admitted = 0;
	if (r->err_status) {
		struct MHD_Response *resp =
			MHD_create_response_from_buffer(r->err_len, r->err_body, MHD_RESPMEM_MUST_COPY);
		return queue(r, r->err_status, resp, r->err_ctype, r->err_retry);
	}
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, http_reader, r, NULL);
	return queue(r, 200, resp, http_body_ctype(r), 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	struct proxy *p = cls;
	struct proxy_http *H = p->http;
	struct http_req *r = *req_cls;
	uint64_t now = proxy_now_ms();
	struct oai_error e;
	(void)version;
	H->activity = 1;
	if (!r) {
		if (H->stopping)
			return MHD_NO;
		r = calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		*req_cls = r;
		r->p = p;
		r->conn = conn;
		r->ci = r->key = -1;
		const union MHD_ConnectionInfo *si = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		r->hc = si ? si->socket_context : NULL;
		r->route = route_of(url);
		r->api = r->route == R_COMPLETIONS ? OAI_COMPLETIONS : r->route == R_OLLAMA ? OAI_OLLAMA : OAI_CHAT;
		if (r->route == R_NONE) {
			oai_error_set(&e, 404, "invalid_request_error", "not_found", NULL,
				      "no such endpoint; see docs/http.md for the ones served");
			return respond_error(r, &e, 0);
		}
		int post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
		if ((is_generate(r->route) && !post) || (!is_generate(r->route) && !get)) {
			oai_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL,
				      "this endpoint takes %s", is_generate(r->route) ? "POST" : "GET");
			return respond_error(r, &e, 0);
		}
		if (r->route == R_HEALTH)
			return answer_get(r);
		r->key = auth(p, conn);
		if (r->key == -2) {
			r->key = -1;
			return refuse(r, MU_WIRE_UNAUTHORIZED,
				      "no API key, or not a known one: send Authorization: Bearer <key>", now);
		}
		if (r->route == R_MODELS || r->route == R_METRICS)
			return answer_get(r);
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (cl) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(cl, &end, 10);
			if (errno || end == cl || *end || v > p->o->http_max_body) {
				oai_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
					      "the request body is larger than the %u-byte limit", p->o->http_max_body);
				return respond_error(r, &e, 0);
			}
		}
		return MHD_YES;
	}
	if (r->gone || H->stopping)
		return MHD_NO;
	if (r->queued)
		return MHD_YES;
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->too_large || r->admitted)
			return MHD_YES;
		if (r->body_len + n > p->o->http_max_body) {
			r->too_large = 1; /* read and dropped; answered with 413 at the end */
			return MHD_YES;
		}
		if (r->body_len + n > r->body_cap) {
			size_t cap = r->body_cap ? r->body_cap : 4096;
			while (cap < r->body_len + n)
				cap *= 2;
			if (cap > p->o->http_max_body)
				cap = p->o->http_max_body;
			uint8_t *b = realloc(r->body, cap);
			if (!b)
				return MHD_NO;
			r->body = b;
			r->body_cap = cap;
		}
		memcpy(r->body + r->body_len, upload_data, n);
		r->body_len += n;
		return MHD_YES;
	}
	if (r->admitted)
		return start_response(r);
	return admit(r, now);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	struct proxy *p = cls;
	struct http_req *r = *req_cls;
	(void)conn;
	(void)toe;
	p->http->activity = 1;
	if (!r)
		return;
	struct proxy_client *c = slot(r);
	if (c)
		proxy_http_release(p, c); /* a request still running is cancelled: nobody will read it */
	if (r->hc) {
		r->hc->busy = 0;
		r->hc->t0_ms = proxy_now_ms();
	}
	free(r->body);
	free(r->err_body);
	free(r);
	*req_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct proxy *p = cls;
	struct proxy_http *H = p->http;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		struct http_conn *hc = calloc(1, sizeof *hc);
		const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!hc)
			return; /* no deadline for this one; libmicrohttpd's idle timeout still applies */
		hc->fd = fi ? fi->connect_fd : -1;
		hc->t0_ms = proxy_now_ms();
		hc->next = H->conns;
		if (H->conns)
			H->conns->prev = hc;
		H->conns = hc;
		H->n_conns++;
		*socket_context = hc;
		return;
	}
	struct http_conn *hc = *socket_context;
	if (!hc)
		return;
	if (hc->prev)
		hc->prev->next = hc->next;
	else
		H->conns = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	H->n_conns--;
	free(hc);
	*socket_context = NULL;
}

/* ---- the loop's side ---- */

static int wants_resume(const struct proxy *p, const struct http_req *r, uint64_t now_ns)
{
	if (r->gone || r->err_status)
		return 1;
	/* while an egress piece is partly handed over, only the bucket can move things */
	if (r->mid != 2 && (r->ended || r->ctl_off < r->ctl_len))
		return 1;
	return r->ci >= 0 && p->eg_client == r->ci && p->eg_off < p->eg_len &&
	       (p->eg_credit > 0 || now_ns >= p->eg_wait_until_ns);
}

static void resume(struct proxy_http *H, struct http_req *r)
{
	if (!r->suspended)
		return;
	r->suspended = 0;
	MHD_resume_connection(r->conn);
	H->resumed = 1;
}

int proxy_http_run(struct proxy *p, uint64_t now)
{
	struct proxy_http *H = p->http;
	uint64_t now_ns = pal_now_ns();
	uint32_t lo = p->o->max_clients, hi = lo + p->o->http_max_conns;
	for (uint32_t i = lo; i < hi; i++) {
		struct http_req *r = p->clients[i].h;
		if (r && r->suspended && wants_resume(p, r, now_ns))
			resume(H, r);
	}
	/* requests that do not arrive whole in time: their connection is shut down */
	for (struct http_conn *hc = H->conns; hc; hc = hc->next)
		if (!hc->busy && !hc->cut && hc->fd >= 0 && now - hc->t0_ms >= p->o->http_timeout_ms) {
			hc->cut = 1;
			shutdown(hc->fd, SHUT_RDWR);
		}
	H->resumed = 0;
	H->activity = 0;
	MHD_run(H->d);
	return H->activity;
}

uint32_t proxy_http_poll_max(const struct proxy *p) { return 1 + p->o->http_max_conns; }

uint32_t proxy_http_poll_fill(struct proxy *p, struct pollfd *pfd, int *timeout)
{
	struct proxy_http *H = p->http;
	uint32_t n = 0;
	uint64_t now = proxy_now_ms(), now_ns = pal_now_ns();
	MHD_UNSIGNED_LONG_LONG mt;
	pfd[n++] = (struct pollfd){.fd = H->epfd, .events = POLLIN};
	int t = *timeout;
	if (MHD_get_timeout(H->d, &mt) == MHD_YES && (t < 0 || mt < (MHD_UNSIGNED_LONG_LONG)t))
		t = mt > 60000 ? 60000 : (int)mt;
	if (H->resumed || H->activity)
		t = 0;
	for (struct http_conn *hc = H->conns; hc; hc = hc->next)
		if (!hc->busy && !hc->cut) {
			uint64_t due = hc->t0_ms + p->o->http_timeout_ms;
			int d = due > now ? (int)(due - now) : 0;
			if (t < 0 || d < t)
				t = d;
		}
	uint32_t lo = p->o->max_clients, hi = lo + p->o->http_max_conns;
	for (uint32_t i = lo; i < hi; i++) {
		struct proxy_client *c = &p->clients[i];
		struct http_req *r = c->h;
		if (!r || !r->suspended)
			continue;
		/* the bucket's next byte for a piece waiting on it */
		if (r->ci >= 0 && p->eg_client == r->ci && p->eg_len && !p->eg_credit && p->eg_wait_until_ns > now_ns) {
			int d = (int)((p->eg_wait_until_ns - now_ns + 999999u) / 1000000u);
			if (t < 0 || d < t)
				t = d;
		}
		pfd[n++] = (struct pollfd){.fd = c->fd, .events = POLLRDHUP};
	}
	*timeout = t;
	return n;
}

void proxy_http_poll_done(struct proxy *p, const struct pollfd *pfd, uint32_t n, uint64_t now)
{
	struct proxy_http *H = p->http;
	uint32_t lo = p->o->max_clients, hi = lo + p->o->http_max_conns;
	(void)now;
	for (uint32_t j = 1; j < n; j++) {
		if (!(pfd[j].revents & (POLLRDHUP | POLLHUP | POLLERR)))
			continue;
		for (uint32_t i = lo; i < hi; i++) {
			struct proxy_client *c = &p->clients[i];
			struct http_req *r = c->h;
			if (!r || c->fd != pfd[j].fd || !r->suspended)
				continue;
			/* the client hung up while its request waited or ran: cancel it now, then let
			 * libmicrohttpd close the connection */
			r->gone = 1;
			proxy_http_release(p, c);
			resume(H, r);
		}
	}
}

/* ---- start and stop ---- */

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	/* libmicrohttpd's messages may quote a request's URL (client text): anything outside
	 * printable ASCII becomes '?', so that no client can forge or break log lines */
	char msg[512];
	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] > 0x7e)
			msg[i] = '?';
	fprintf(stderr, "mu proxy: http: %s\n", msg);
}

enum mu_err proxy_http_start(struct proxy *p, struct mu_error *err)
{
	const struct mu_proxy_opts *o = p->o;
	struct proxy_http *H = calloc(1, sizeof *H);
	int fd = -1;
	enum mu_err rc;
	if (!H)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory");
	p->http = H;
	H->epfd = -1;
	H->parse_mem_len = oai_mem_size(o->http_max_body);
	H->parse_mem = malloc(H->parse_mem_len);
	H->scratch = malloc(HTTP_SCRATCH);
	if (!H->parse_mem || !H->scratch)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory for the HTTP API");
	rc = pal_listen(o->http_addr, 128, &fd, H->addr, sizeof H->addr, err);
	if (rc != MU_OK) {
		mu_err_prefix(err, "--http");
		return rc;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		return mu_errf(err, MU_ERR_IO, "--http: fcntl: %s", strerror(errno));
	}
	unsigned timeout_s = (o->http_timeout_ms + 999u) / 1000u;
	H->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, p,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, so every message goes through it */
				MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT,
				(unsigned int)o->http_max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				(unsigned int)o->http_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MU_PROXY_HTTP_HEADER_MEM,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, p, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
				p, MHD_OPTION_END);
	if (!H->d) {
		close(fd);
		pal_unlink_addr(H->addr);
		return mu_errf(err, MU_ERR_IO, "--http %s: libmicrohttpd did not start", o->http_addr);
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(H->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!di) {
		MHD_stop_daemon(H->d);
		H->d = NULL;
		pal_unlink_addr(H->addr);
		return mu_errf(err, MU_ERR_IO, "--http: libmicrohttpd has no epoll descriptor");
	}
	H->epfd = di->epoll_fd;
	fprintf(stderr, "mu proxy: http listening on %s (%s, %u connections, timeout %u ms, body limit %u bytes)\n",
		H->addr, o->http_no_auth ? "NO AUTH: anyone may call it" : "API keys required", o->http_max_conns,
		o->http_timeout_ms, o->http_max_body);
	return MU_OK;
}

void proxy_http_stop(struct proxy *p)
{
	struct proxy_http *H = p->http;
	if (!H)
		return;
	if (H->d) {
		H->stopping = 1;
		uint32_t lo = p->o->max_clients, hi = lo + p->o->http_max_conns;
		for (uint32_t i = lo; p->clients && i < hi; i++) {
			struct http_req *r = p->clients[i].h;
			if (r) {
				r->gone = 1;
				resume(H, r);
			}
		}
		MHD_run(H->d);
		MHD_stop_daemon(H->d); /* closes the listening socket and every connection */
		pal_unlink_addr(H->addr);
	}
	free(H->parse_mem);
	free(H->scratch);
	free(H);
	p->http = NULL;
}
