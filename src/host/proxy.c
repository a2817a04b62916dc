/* proxy.c — `mu proxy`: startup (filter, ledger, audit log, listening socket), the poll loop
 * and shutdown. The enclave link is in proxy_enclave.c, the clients in proxy_client.c, the
 * active request's output path in proxy_egress.c (see proxy.h and docs/proxy.md).
 *
 * The loop: every pass first lets the link retry or time out, pumps pending output (filter ->
 * ledger -> bucket -> client), then polls every descriptor with a timeout that is the nearest
 * deadline (a frame read timeout, an attestation step, a reconnect, the token bucket's next
 * byte). Nothing in it blocks except the connects to the enclave and the broker, which are
 * bounded by PROXY_CONNECT_MS. SIGTERM and SIGINT arrive through a signalfd. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "host/oai.h"
#include "host/proxy.h"
#include "host/serve.h"
#include "pal/net.h"
#include "pal/pal.h"

void mu_proxy_opts_default(struct mu_proxy_opts *o)
{
	memset(o, 0, sizeof *o);
	o->egress_bps = MU_PROXY_DEFAULT_EGRESS_BPS;
	o->egress_burst = MU_PROXY_DEFAULT_EGRESS_BURST;
	o->ledger.daily_bytes = MU_PROXY_DEFAULT_DAILY_BYTES;
	o->ledger.total_bytes = 0;
	o->ledger.reserve_bytes = MU_PROXY_DEFAULT_RESERVE;
	o->max_clients = MU_PROXY_MAX_CLIENTS;
	o->read_timeout_ms = MU_WIRE_READ_TIMEOUT_MS;
	o->reconnect_ms = MU_PROXY_DEFAULT_RECONNECT_MS;
	o->drain_timeout_ms = MU_PROXY_DEFAULT_DRAIN_MS;
	o->http_max_conns = MU_PROXY_DEFAULT_HTTP_CONNS;
	o->http_timeout_ms = MU_PROXY_DEFAULT_HTTP_TIMEOUT_MS;
	o->http_max_body = MU_PROXY_DEFAULT_HTTP_MAX_BODY;
}

/* ---- metrics ---- */

static size_t win_slot(struct proxy_metrics *m, uint64_t now_ms)
{
	uint64_t sec = now_ms / 1000u;
	size_t i = (size_t)(sec % PROXY_RATE_WINDOW);
	if (m->win_s[i] != sec) {
		m->win_s[i] = sec;
		m->win_bytes[i] = m->win_tokens[i] = 0;
	}
	return i;
}

void proxy_metrics_bytes(struct proxy_metrics *m, uint64_t n, uint64_t now_ms)
{
	m->egress_bytes += n;
	m->win_bytes[win_slot(m, now_ms)] += n;
}

void proxy_metrics_tokens(struct proxy_metrics *m, uint64_t n, uint64_t now_ms)
{
	m->completion_tokens += n;
	m->win_tokens[win_slot(m, now_ms)] += n;
}

void proxy_metrics_rates(const struct proxy_metrics *m, uint64_t now_ms, double *bytes_s, double *tokens_s)
{
	uint64_t sec = now_ms / 1000u, b = 0, t = 0;
	for (size_t i = 0; i < PROXY_RATE_WINDOW; i++)
		if (m->win_s[i] + PROXY_RATE_WINDOW > sec && m->win_s[i] <= sec) {
			b += m->win_bytes[i];
			t += m->win_tokens[i];
		}
	*bytes_s = (double)b / PROXY_RATE_WINDOW;
	*tokens_s = (double)t / PROXY_RATE_WINDOW;
}

uint64_t proxy_now_ms(void) { return pal_now_ns() / 1000000u; }

uint64_t proxy_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- audit ---- */

struct jsonw *proxy_audit_begin(struct proxy *p, const char *event)
{
	struct jsonw *w = mu_audit_begin(&p->audit, event);
	if (!w && !p->failed_closed) {
		fprintf(stderr, "mu proxy: cannot start an audit record; failing closed\n");
		p->failed_closed = 1;
	}
	return w;
}

int proxy_audit_commit(struct proxy *p)
{
	struct mu_error err = {0};
	if (mu_audit_commit(&p->audit, &err) == MU_OK)
		return 0;
	if (!p->failed_closed)
		fprintf(stderr, "mu proxy: audit log: %s; failing closed (nothing is released without a record)\n",
			err.msg);
	p->failed_closed = 1;
	return -1;
}

static int audit_start(struct proxy *p)
{
	const struct mu_proxy_opts *o = p->o;
	uint64_t day = mu_ledger_day(proxy_wall_ms() / 1000u);
	struct jsonw *w = proxy_audit_begin(p, "proxy_start");
	if (!w)
		return -1;
	if (o->listen_addr)
		jsonw_str(w, "listen", p->addr);
	else
		jsonw_null(w, "listen");
	if (o->http_addr) {
		jsonw_begin(w, "http");
		jsonw_int(w, "max_connections", o->http_max_conns);
		jsonw_int(w, "timeout_ms", o->http_timeout_ms);
		jsonw_int(w, "max_body", o->http_max_body);
		jsonw_int(w, "per_ip", o->http_per_ip);
		jsonw_bool(w, "auth", !o->http_no_auth);
		jsonw_int(w, "keys", p->keys.n);
		jsonw_end(w);
	}
	jsonw_str(w, "enclave", o->enclave_addr);
	jsonw_str(w, "kbs", o->kbs_addr);
	jsonw_int(w, "egress_bps", (int64_t)o->egress_bps);
	jsonw_int(w, "egress_burst", (int64_t)o->egress_burst);
	jsonw_int(w, "daily_bytes", (int64_t)o->ledger.daily_bytes);
	jsonw_int(w, "total_bytes", (int64_t)o->ledger.total_bytes);
	jsonw_int(w, "ledger_reserve", (int64_t)o->ledger.reserve_bytes);
	jsonw_int(w, "max_clients", o->max_clients);
	jsonw_int(w, "max_queue", MU_PROXY_MAX_QUEUE);
	jsonw_int(w, "read_timeout_ms", o->read_timeout_ms);
	jsonw_int(w, "drain_timeout_ms", o->drain_timeout_ms);
	jsonw_begin(w, "ledger");
	jsonw_int(w, "day", (int64_t)p->ledger.day);
	jsonw_int(w, "day_bytes", (int64_t)p->ledger.day_bytes);
	jsonw_int(w, "total_bytes", (int64_t)p->ledger.total_bytes);
	uint64_t left = mu_ledger_remaining(&p->ledger, day);
	if (left == UINT64_MAX)
		jsonw_null(w, "remaining_today");
	else
		jsonw_int(w, "remaining_today", (int64_t)left);
	jsonw_end(w);
	jsonw_begin(w, "filter");
	for (int r = 0; r < MU_RULE_COUNT; r++)
		jsonw_str(w, mu_filter_rule_name((enum mu_filter_rule)r), mu_filter_action_name(p->fcfg.action[r]));
	jsonw_int(w, "max_response_bytes", (int64_t)p->fcfg.max_response_bytes);
	jsonw_int(w, "base64_run_chars", p->fcfg.base64_run);
	jsonw_int(w, "hex_run_chars", p->fcfg.hex_run);
	jsonw_int(w, "deny_patterns", p->fcfg.n_deny); /* how many, never which */
	jsonw_end(w);
	return proxy_audit_commit(p);
}

static void audit_stop(struct proxy *p, const char *why)
{
	struct jsonw *w = proxy_audit_begin(p, "proxy_stop");
	if (!w)
		return;
	jsonw_str(w, "reason", why);
	jsonw_int(w, "attested", (int64_t)p->link.attested);
	/* the link session in force: its count is not in an enclave_lost record yet */
	jsonw_int(w, "stray_errors", (int64_t)p->link.stray_errors);
	jsonw_int(w, "released_bytes", (int64_t)p->ledger.released_total);
	jsonw_int(w, "day_bytes", (int64_t)p->ledger.day_bytes);
	jsonw_int(w, "total_bytes", (int64_t)p->ledger.total_bytes);
	proxy_audit_commit(p);
}

/* ---- setup ---- */

static enum mu_err load_filter(struct proxy *p, struct mu_error *err)
{
	const struct mu_proxy_opts *o = p->o;
	mu_filter_config_default(&p->fcfg);
	if (o->filter_path && mu_filter_config_load(&p->fcfg, o->filter_path, err) != MU_OK)
		return err ? err->code : MU_ERR_FORMAT;
	for (uint32_t i = 0; i < o->n_deny; i++)
		if (mu_filter_config_deny(&p->fcfg, o->deny[i], strlen(o->deny[i]), err) != MU_OK) {
			mu_err_prefix(err, "--deny #%u", i + 1);
			return MU_ERR_ARG;
		}
	return MU_OK;
}

static enum mu_err check_addr(const char *flag, const char *a, struct mu_error *err)
{
	if (!a || (strncmp(a, "unix:", 5) && strncmp(a, "tcp:", 4)))
		return mu_errf(err, MU_ERR_ARG, "%s '%s': an address is unix:PATH or tcp:HOST:PORT", flag, a ? a : "");
	return MU_OK;
}

static enum mu_err setup(struct proxy *p, struct mu_error *err)
{
	const struct mu_proxy_opts *o = p->o;
	enum mu_err rc;
	if ((rc = check_addr("--enclave", o->enclave_addr, err)) != MU_OK ||
	    (rc = check_addr("--kbs", o->kbs_addr, err)) != MU_OK ||
	    (o->listen_addr && (rc = check_addr("--listen", o->listen_addr, err)) != MU_OK) ||
	    (o->http_addr && (rc = check_addr("--http", o->http_addr, err)) != MU_OK))
		return rc;
	if (!o->listen_addr && !o->http_addr)
		return mu_errf(err, MU_ERR_ARG, "nothing to serve: give --listen, --http or both");
	if (o->http_addr && !o->http_no_auth && (!o->keys_path || !o->key_state_dir))
		return mu_errf(err, MU_ERR_ARG, "--http needs --keys FILE and --key-state DIR (or --no-auth)");
	if (o->http_addr && (o->http_max_conns == 0 || o->http_max_conns > MU_PROXY_HTTP_CONNS_LIMIT ||
			     o->http_timeout_ms == 0 || o->http_max_body == 0))
		return mu_errf(err, MU_ERR_ARG, "the HTTP connection limit, timeout and body limit must be > 0");
	if (o->max_clients == 0 || o->max_clients > MU_PROXY_CLIENTS_LIMIT || o->read_timeout_ms == 0 ||
	    o->reconnect_ms == 0 || o->drain_timeout_ms == 0 || o->ledger.reserve_bytes == 0)
		return mu_errf(err, MU_ERR_ARG,
			       "max_clients, read_timeout_ms, reconnect_ms, drain_timeout_ms and the ledger reserve must be > 0");
	if ((rc = load_filter(p, err)) != MU_OK)
		return rc;
	if ((rc = mu_bucket_init(&p->bucket, o->egress_bps, o->egress_burst, pal_now_ns(), err)) != MU_OK)
		return rc;
	/* both name the file in their messages */
	if ((rc = mu_ledger_open(&p->ledger, o->ledger_path, &o->ledger, err)) != MU_OK)
		return rc;
	if ((rc = mu_audit_open(&p->audit, o->audit_path, err)) != MU_OK)
		return rc;
	p->audit_open = 1;

	if (o->http_addr && o->keys_path) {
		if ((rc = mu_keys_load(&p->keys, o->keys_path, err)) != MU_OK)
			return rc;
		if ((rc = mu_keys_open_state(&p->keys, o->key_state_dir, o->ledger.reserve_bytes, pal_now_ns(), err)) !=
		    MU_OK)
			return rc;
	}

	/* memory: everything the steady state needs, once; HTTP requests take the slots after
	 * the frame clients' (their frame buffers are mapped but stay untouched but for req_buf) */
	size_t n = (size_t)o->max_clients + (o->http_addr ? o->http_max_conns : 0);
	p->clients = calloc(n, sizeof *p->clients);
	p->client_mem = calloc(n, (size_t)2 * MU_WIRE_MAX_FRAME);
	p->scratch_len = mu_msg_mem_size(MU_WIRE_MAX_FRAME);
	p->scratch = malloc(p->scratch_len);
	p->eg = malloc(MU_FRAME_HDR + MU_WIRE_MAX_FRAME + 1);
	/* stream:false holds a whole response the max_size rule allows, plus one token frame's
	 * text, so that nothing of it leaves before its end (see produce() in proxy_egress.c) */
	uint64_t hold = p->fcfg.max_response_bytes < PROXY_NS_MAX ? p->fcfg.max_response_bytes : PROXY_NS_MAX;
	p->act.ns_cap = (size_t)hold + MU_WIRE_MAX_TOKEN_TEXT + OAI_MAX_STOP_BYTES; /* + held stop bytes (HTTP) */
	p->act.ns = malloc(p->act.ns_cap);
	p->link.ebuf = malloc(MU_WIRE_MAX_FRAME);
	p->link.kbuf = malloc(MU_KBS_MAX_FRAME);
	p->link.eout = malloc(PROXY_EOUT_CAP);
	p->link.kout = malloc(PROXY_KOUT_CAP);
	if (!p->clients || !p->client_mem || !p->scratch || !p->eg || !p->act.ns || !p->link.ebuf || !p->link.kbuf ||
	    !p->link.eout || !p->link.kout)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory for %zu clients (each holds 2 MiB of frame buffers)", n);
	for (size_t i = 0; i < n; i++) {
		struct proxy_client *c = &p->clients[i];
		c->fd = -1;
		c->rd_mem = p->client_mem + i * 2 * MU_WIRE_MAX_FRAME;
		c->req_buf = c->rd_mem + MU_WIRE_MAX_FRAME;
		c->req_key = -1;
	}
	p->eg_client = -1;
	p->act.client = -1;
	proxy_link_init(&p->link);
	p->link.backoff_ms = o->reconnect_ms;

	if (o->listen_addr) {
		rc = pal_listen(o->listen_addr, 64, &p->lfd, p->addr, sizeof p->addr, err);
		if (rc != MU_OK) {
			mu_err_prefix(err, "--listen");
			return rc;
		}
	}
	if (o->http_addr && (rc = proxy_http_start(p, err)) != MU_OK)
		return rc;
	return MU_OK;
}

static void print_start(const struct proxy *p)
{
	const struct mu_proxy_opts *o = p->o;
	uint64_t left = mu_ledger_remaining(&p->ledger, mu_ledger_day(proxy_wall_ms() / 1000u));
	char daily[48], total[48], lefts[48];
	snprintf(daily, sizeof daily, o->ledger.daily_bytes ? "%llu bytes/day" : "none",
		 (unsigned long long)o->ledger.daily_bytes);
	snprintf(total, sizeof total, o->ledger.total_bytes ? "%llu bytes" : "none",
		 (unsigned long long)o->ledger.total_bytes);
	snprintf(lefts, sizeof lefts, left == UINT64_MAX ? "unlimited" : "%llu bytes", (unsigned long long)left);
	fprintf(stderr, "mu proxy: egress cap %llu bytes/s (burst %llu); budget %s, total %s; %s left today\n",
		(unsigned long long)o->egress_bps, (unsigned long long)o->egress_burst, daily, total, lefts);
	fprintf(stderr, "mu proxy: filter:");
	for (int r = 0; r < MU_RULE_COUNT; r++)
		fprintf(stderr, " %s=%s", mu_filter_rule_name((enum mu_filter_rule)r),
			mu_filter_action_name(p->fcfg.action[r]));
	fprintf(stderr, ", %u deny patterns, max response %llu bytes\n", p->fcfg.n_deny,
		(unsigned long long)p->fcfg.max_response_bytes);
	if (o->listen_addr)
		fprintf(stderr, "mu proxy: listening on %s\n", p->addr);
}

/* ---- the loop ---- */

static int ms_until(uint64_t when, uint64_t now)
{
	uint64_t d = when > now ? when - now : 0;
	return d > 60000 ? 60000 : (int)d;
}

static void lower(int *timeout, int t)
{
	if (*timeout < 0 || t < *timeout)
		*timeout = t;
}

static enum mu_err serve_loop(struct proxy *p, struct mu_error *err)
{
	uint32_t max = p->o->max_clients;
	uint32_t hmax = p->http ? proxy_http_poll_max(p) : 0;
	struct pollfd *pfd = calloc((size_t)max + hmax + 4, sizeof *pfd);
	uint32_t *which = calloc((size_t)max + 4, sizeof *which);
	enum mu_err rc = MU_OK;
	if (!pfd || !which) {
		free(pfd);
		free(which);
		return mu_errf(err, MU_ERR_NOMEM, "out of memory for %u clients", max);
	}
	for (;;) {
		uint64_t now = proxy_now_ms();
		proxy_link_tick(p, now);
		now = proxy_now_ms();
		proxy_pump(p, now);
		/* libmicrohttpd's callbacks queue requests and take the pump's output: alternate until
		 * neither has more to do (bounded; poll then runs with timeout 0 if work is left) */
		for (int k = 0; p->http && k < 8 && proxy_http_run(p, now); k++) {
			now = proxy_now_ms();
			proxy_pump(p, now);
		}

		nfds_t n = 0;
		int timeout = -1;
		uint64_t now_ns = pal_now_ns();
		pfd[n++] = (struct pollfd){.fd = p->sfd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = now >= p->accept_pause_until_ms ? p->lfd : -1, .events = POLLIN};
		/* p->lfd is -1 without --listen: poll ignores it */
		if (now < p->accept_pause_until_ms)
			lower(&timeout, ms_until(p->accept_pause_until_ms, now));
		pfd[n++] = (struct pollfd){.fd = p->link.efd, .events = proxy_link_enclave_events(p)};
		pfd[n++] = (struct pollfd){.fd = p->link.kfd, .events = proxy_link_broker_events(p)};
		uint64_t next = proxy_link_next_ms(p, now);
		if (next)
			lower(&timeout, ms_until(next, now));
		next = proxy_act_next_ms(p);
		if (next)
			lower(&timeout, ms_until(next, now));
		next = proxy_refused_next_ms(p);
		if (next)
			lower(&timeout, ms_until(next, now));
		if (p->eg_len && !p->eg_credit && p->eg_wait_until_ns > now_ns)
			lower(&timeout, (int)((p->eg_wait_until_ns - now_ns + 999999u) / 1000000u));
		for (uint32_t i = 0; i < max; i++) {
			struct proxy_client *c = &p->clients[i];
			if (c->fd < 0)
				continue;
			short ev = 0;
			if (c->draining || (!c->closing && c->ctl_len + PROXY_CTL_READ_ROOM <= PROXY_CTL_MAX))
				ev |= POLLIN;
			if (proxy_client_wants_write(p, c, now_ns))
				ev |= POLLOUT;
			which[n] = i;
			pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
			next = proxy_client_next_ms(p, c);
			if (next)
				lower(&timeout, ms_until(next, now));
		}
		nfds_t hfirst = n;
		uint32_t hn = p->http ? proxy_http_poll_fill(p, pfd + n, &timeout) : 0;
		int pr = poll(pfd, n + hn, timeout);
		if (pr < 0 && errno != EINTR) {
			rc = mu_errf(err, MU_ERR_IO, "poll: %s", strerror(errno));
			break;
		}
		if (pr > 0 && (pfd[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(p->sfd, &si, sizeof si) == (ssize_t)sizeof si)
				p->stop_signal = (int)si.ssi_signo;
			break;
		}
		now = proxy_now_ms();
		if (pr > 0 && pfd[2].fd >= 0 && pfd[2].fd == p->link.efd && pfd[2].revents)
			proxy_link_enclave_io(p, pfd[2].revents, now);
		if (pr > 0 && pfd[3].fd >= 0 && pfd[3].fd == p->link.kfd && pfd[3].revents)
			proxy_link_broker_io(p, pfd[3].revents, now);
		if (pr > 0 && hn)
			proxy_http_poll_done(p, pfd + hfirst, hn, now);
		for (nfds_t j = 4; pr > 0 && j < n; j++) {
			struct proxy_client *c = &p->clients[which[j]];
			short re = pfd[j].revents;
			if (c->fd != pfd[j].fd || !re)
				continue;
			if (re & POLLOUT)
				proxy_client_flush(p, c, now);
			if (c->fd == pfd[j].fd && (re & (POLLIN | POLLHUP | POLLERR)))
				proxy_client_readable(p, c, re, now);
		}
		now = proxy_now_ms();
		proxy_client_timers(p, now);
		proxy_act_timers(p, now);
		proxy_refused_flush(p, now, 0);
		if (pr > 0 && (pfd[1].revents & POLLIN))
			proxy_client_accept(p, now);
	}
	free(pfd);
	free(which);
	return rc;
}

/* A best-effort cancel of the running request before the enclave link is closed, so the
 * enclave does not go on generating for nobody. */
static void cancel_on_stop(struct proxy *p)
{
	char body[160];
	uint8_t frame[MU_FRAME_HDR + sizeof body];
	if (p->link.state != PROXY_LINK_UP || p->act.phase != PROXY_ACT_STREAM || p->link.eout_len != p->link.eout_off)
		return;
	size_t n = mu_msg_cancel(body, sizeof body, p->act.id);
	if (n == 0 || mu_frame_header(frame, n, MU_WIRE_MAX_FRAME, NULL) != MU_OK)
		return;
	memcpy(frame + MU_FRAME_HDR, body, n);
	if (send(p->link.efd, frame, MU_FRAME_HDR + n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return;
}

static void teardown(struct proxy *p)
{
	if (p->clients)
		for (uint32_t i = 0; i < p->o->max_clients; i++)
			if (p->clients[i].fd >= 0)
				proxy_client_close(p, &p->clients[i], NULL);
	proxy_http_stop(p);
	proxy_link_close(p);
	if (p->lfd >= 0) {
		close(p->lfd);
		pal_unlink_addr(p->addr);
	}
	if (p->sfd >= 0)
		close(p->sfd);
	if (p->audit_open)
		mu_audit_close(&p->audit);
	mu_keys_free(&p->keys);
	free(p->clients);
	free(p->client_mem);
	free(p->scratch);
	free(p->eg);
	free(p->act.ns);
	free(p->link.ebuf);
	free(p->link.kbuf);
	free(p->link.eout);
	free(p->link.kout);
}

enum mu_err mu_proxy_run(const struct mu_proxy_opts *o, struct mu_error *err)
{
	struct proxy *p = calloc(1, sizeof *p);
	enum mu_err rc;
	sigset_t old;
	if (!p)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory");
	p->o = o;
	p->lfd = p->sfd = -1;
	p->link.efd = p->link.kfd = -1;

	if ((rc = host_stop_signalfd(&p->sfd, &old, err)) != MU_OK)
		goto out;
	if ((rc = setup(p, err)) != MU_OK)
		goto out;
	if (audit_start(p) != 0) {
		rc = mu_errf(err, MU_ERR_IO, "%s: cannot write the proxy_start record", o->audit_path);
		goto out;
	}
	print_start(p);
	rc = serve_loop(p, err);
	if (p->stop_signal)
		fprintf(stderr, "mu proxy: %s, stopping\n", p->stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
	cancel_on_stop(p);
	proxy_http_stop(p); /* its open requests end (client_gone) before the proxy_stop record */
	proxy_refused_flush(p, proxy_now_ms(), 1); /* every refusal is in some record */
	audit_stop(p, rc == MU_OK ? (p->stop_signal == SIGINT ? "SIGINT" : "SIGTERM") : "error");
	fprintf(stderr, "mu proxy: stopped\n");
out:
	teardown(p);
	free(p);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
