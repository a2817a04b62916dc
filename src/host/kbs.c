/* kbs.c — the key broker's server: policy and key files, the audit log, the sockets and one
 * single-threaded poll loop (see kbs.h).
 *
 * Each connection reads one frame at a time into its own preallocated buffer and must deliver
 * every frame within the read timeout, so a stalled or slow client holds one slot for at most
 * that long and never blocks the others. At most max_conns connections are served; further
 * ones wait in the listen backlog. After the final reply the broker shuts its side down and
 * drains what the client still sends for a moment, so the reply is not lost to a reset.
 * SIGTERM and SIGINT arrive through a signalfd and end the loop cleanly. Every decision is a
 * "kbs_decision" record in the hash-chained audit log (host/audit.h), committed before the
 * reply is queued; a release whose record cannot be committed becomes an internal_error. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/limits.h"
#include "host/audit.h"
#include "host/kbs.h"
#include "host/serve.h"
#include "pal/net.h"
#include "pal/pal.h"
#include "seal/crypto.h"
#include "wire/frame.h"

#define DRAIN_MS 1000 /* how long a finished connection is drained before it is closed */

/* ---- files ---- */

enum mu_err mu_kbs_load_policy(struct mu_policy *p, const char *path, struct mu_error *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	memset(p, 0, sizeof *p);
	enum mu_err rc = pal_read_file(path, MU_POLICY_MAX_BYTES, &buf, &len, err);
	if (rc != MU_OK)
		return rc;
	rc = mu_policy_parse(p, buf, len, err);
	pal_free(buf, len + 1);
	if (rc != MU_OK)
		mu_err_prefix(err, "%s", path);
	return rc;
}

enum mu_err mu_kbs_load_key(struct mu_kbs *k, const char *path, uint8_t key_id[static MU_KBS_KEY_ID_LEN],
			    struct mu_error *err)
{
	uint8_t key[33];
	struct stat st;
	size_t got = 0;
	enum mu_err rc = MU_OK;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot open key file: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != 32) {
		close(fd);
		return mu_errf(err, MU_ERR_FORMAT, "%s: a key file holds exactly 32 raw bytes (as mu keygen writes it)",
			       path);
	}
	if (st.st_mode & 077)
		fprintf(stderr, "mu kbs: warning: %s is readable or writable by group or others (chmod 600 it)\n", path);
	/* read one byte more than a key, to notice a file that grew */
	while (got < sizeof key) {
		ssize_t n = read(fd, key + got, sizeof key - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != 32)
		rc = mu_errf(err, MU_ERR_FORMAT, "%s: a key file holds exactly 32 raw bytes (as mu keygen writes it)",
			     path);
	else if ((rc = mu_kbs_add_key(k, key, key_id, err)) != MU_OK)
		mu_err_prefix(err, "%s", path);
	mu_wipe(key, sizeof key);
	return rc;
}

/* ---- sockets ---- */

static uint64_t mono_ms(void) { return pal_now_ns() / 1000000u; }

struct conn {
	int fd; /* -1: free slot */
	struct mu_kbs_conn kc;
	struct mu_frame_rd rd;
	uint8_t out[MU_FRAME_HDR + MU_KBS_REPLY_MAX];
	size_t out_len, out_off;
	int closing;  /* shut down once out is sent */
	int draining; /* shut down; discarding input until EOF or the deadline */
	uint64_t deadline_ms;
};

struct server {
	struct mu_kbs *k;
	const struct mu_kbs_server_opts *o;
	int lfd, sfd;
	struct mu_audit audit; /* the hash-chained log, when audit_open */
	int audit_open;
	char addr[PAL_NET_ADDR_MAX]; /* the bound address; empty until bound */
	struct conn *conns;
	uint8_t *bodies;
	uint32_t n_open;
	struct mu_kbs_reply reply;
};

/* ---- connections ---- */

static void conn_close(struct server *s, struct conn *c)
{
	mu_kbs_conn_close(s->k, &c->kc);
	close(c->fd);
	c->fd = -1;
	mu_wipe(c->out, sizeof c->out);
	s->n_open--;
}

/* Writes decision d as a "kbs_decision" record and makes it durable; -1 (and the reason on
 * stderr) when that failed, after which the log stays closed (host/audit.h). */
static int audit(struct server *s, const struct conn *c, const struct mu_kbs_decision *d)
{
	struct mu_error err;
	if (!s->audit_open)
		return 0;
	mu_kbs_audit_members(mu_audit_begin(&s->audit, "kbs_decision"), &c->kc, d);
	if (mu_audit_commit(&s->audit, &err) == MU_OK)
		return 0;
	fprintf(stderr, "mu kbs: audit log write failed: %s\n", err.msg);
	return -1;
}

static void log_decision(const struct conn *c, const struct mu_kbs_reply *r)
{
	const struct mu_kbs_decision *d = &r->d;
	char m[65] = "-", id[33] = "-";
	if (d->have_measurement)
		mu_hex(d->measurement, 32, m);
	if (d->have_key_id)
		mu_hex(d->key_id, MU_KBS_KEY_ID_LEN, id);
	if (d->code == MU_KBS_OK)
		fprintf(stderr, "mu kbs: conn %llu %s: release key_id %s to measurement %s (format %s%s)\n",
			(unsigned long long)c->kc.id, c->kc.peer, id, m, d->format ? d->format : "-",
			d->insecure ? ", INSECURE: signed by nothing" : "");
	else
		fprintf(stderr, "mu kbs: conn %llu %s: refuse %s: %s\n", (unsigned long long)c->kc.id, c->kc.peer,
			mu_kbs_code_name(d->code), r->message);
}

/* Audits, logs and queues the reply in s->reply on connection c. */
static void send_reply(struct server *s, struct conn *c, uint64_t now)
{
	struct mu_kbs_reply *r = &s->reply;
	if (r->d.made && audit(s, c, &r->d) != 0 && r->d.code == MU_KBS_OK) {
		mu_kbs_refuse(s->k, &c->kc, MU_KBS_INTERNAL_ERROR,
			      "the audit log cannot be written, so nothing is released", r);
		(void)audit(s, c, &r->d); /* fails too (the log is closed now); reported on stderr */
	}
	if (r->d.made)
		log_decision(c, r);
	struct mu_error err;
	if (r->len == 0 || mu_frame_header(c->out, r->len, MU_KBS_REPLY_MAX, &err) != MU_OK) {
		/* the core always writes a reply; close rather than send something malformed */
		conn_close(s, c);
		return;
	}
	memcpy(c->out + MU_FRAME_HDR, r->body, r->len);
	c->out_len = MU_FRAME_HDR + r->len;
	c->out_off = 0;
	c->closing = r->close;
	c->deadline_ms = now + s->o->read_timeout_ms;
	mu_wipe(r->body, sizeof r->body);
}

static void on_readable(struct server *s, struct conn *c, uint64_t now)
{
	if (c->draining) {
		uint8_t junk[512];
		ssize_t n = recv(c->fd, junk, sizeof junk, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			conn_close(s, c);
		return;
	}
	uint8_t *p;
	size_t want;
	if (mu_frame_rd_space(&c->rd, &p, &want) == MU_FRAME_DONE || want == 0)
		return;
	ssize_t n = recv(c->fd, p, want, MSG_DONTWAIT);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_close(s, c);
		return;
	}
	if (n == 0) {
		if (mu_frame_rd_pending(&c->rd))
			fprintf(stderr, "mu kbs: conn %llu %s: closed in the middle of a frame\n",
				(unsigned long long)c->kc.id, c->kc.peer);
		conn_close(s, c);
		return;
	}
	struct mu_error err = {0};
	enum mu_frame_state st;
	memset(&s->reply.d, 0, sizeof s->reply.d);
	if (mu_frame_rd_commit(&c->rd, (size_t)n, &st, &err) != MU_OK) {
		mu_kbs_refuse(s->k, &c->kc, MU_KBS_BAD_FRAME, err.msg, &s->reply);
		send_reply(s, c, now);
		return;
	}
	if (st != MU_FRAME_DONE)
		return;
	mu_kbs_handle(s->k, &c->kc, c->rd.buf, mu_frame_rd_len(&c->rd), now, &s->reply);
	mu_wipe(c->rd.buf, mu_frame_rd_len(&c->rd));
	mu_frame_rd_next(&c->rd);
	send_reply(s, c, now);
}

static void on_writable(struct server *s, struct conn *c, uint64_t now)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_close(s, c);
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out_len = c->out_off = 0;
	if (c->closing) {
		shutdown(c->fd, SHUT_WR);
		c->draining = 1;
		c->deadline_ms = now + DRAIN_MS;
	}
}

static void accept_some(struct server *s, uint64_t now)
{
	while (s->n_open < s->o->max_conns) {
		int fd;
		if (pal_accept(s->lfd, PAL_NET_NONBLOCK, &fd, NULL) != MU_OK)
			return;
		struct conn *c = NULL;
		for (uint32_t i = 0; i < s->o->max_conns && !c; i++)
			if (s->conns[i].fd < 0)
				c = &s->conns[i];
		if (!c) { /* cannot happen: n_open counts the used slots */
			close(fd);
			return;
		}
		char peer[MU_KBS_PEER_MAX];
		pal_peer_name(fd, peer, sizeof peer);
		memset(c, 0, sizeof *c);
		c->fd = fd;
		mu_kbs_conn_open(s->k, &c->kc, peer);
		mu_frame_rd_init(&c->rd, s->bodies + (size_t)(c - s->conns) * MU_KBS_MAX_FRAME, MU_KBS_MAX_FRAME);
		c->deadline_ms = now + s->o->read_timeout_ms;
		s->n_open++;
	}
}

static enum mu_err serve_loop(struct server *s, struct mu_error *err)
{
	uint32_t max = s->o->max_conns;
	struct pollfd *pfd = calloc((size_t)max + 2, sizeof *pfd);
	uint32_t *which = calloc((size_t)max + 2, sizeof *which);
	if (!pfd || !which) {
		free(pfd);
		free(which);
		return mu_errf(err, MU_ERR_NOMEM, "out of memory for %u connections", max);
	}
	for (;;) {
		uint64_t now = mono_ms();
		nfds_t n = 0;
		int timeout = -1;
		pfd[n++] = (struct pollfd){.fd = s->sfd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = s->n_open < max ? s->lfd : -1, .events = POLLIN};
		for (uint32_t i = 0; i < max; i++) {
			struct conn *c = &s->conns[i];
			if (c->fd < 0)
				continue;
			short ev = c->out_off < c->out_len ? POLLOUT : POLLIN;
			which[n] = i;
			pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
			uint64_t left = c->deadline_ms > now ? c->deadline_ms - now : 0;
			if (timeout < 0 || left < (uint64_t)timeout)
				timeout = (int)(left > 60000 ? 60000 : left);
		}
		int rc = poll(pfd, n, timeout);
		if (rc < 0 && errno != EINTR) {
			free(pfd);
			free(which);
			return mu_errf(err, MU_ERR_IO, "poll: %s", strerror(errno));
		}
		if (rc > 0 && (pfd[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(s->sfd, &si, sizeof si) == (ssize_t)sizeof si)
				fprintf(stderr, "mu kbs: %s, stopping\n", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
			break;
		}
		now = mono_ms();
		for (nfds_t j = 2; rc > 0 && j < n; j++) {
			struct conn *c = &s->conns[which[j]];
			short re = pfd[j].revents;
			if (c->fd < 0 || !re)
				continue;
			if (re & POLLOUT)
				on_writable(s, c, now);
			else if (re & (POLLIN | POLLHUP | POLLERR))
				on_readable(s, c, now);
		}
		for (uint32_t i = 0; i < max; i++) {
			struct conn *c = &s->conns[i];
			if (c->fd >= 0 && now >= c->deadline_ms) {
				if (!c->draining)
					fprintf(stderr, "mu kbs: conn %llu %s: no complete frame within %u ms, closed\n",
						(unsigned long long)c->kc.id, c->kc.peer, s->o->read_timeout_ms);
				conn_close(s, c);
			}
		}
		if (rc > 0 && (pfd[1].revents & POLLIN))
			accept_some(s, now);
	}
	free(pfd);
	free(which);
	return MU_OK;
}

enum mu_err mu_kbs_serve(struct mu_kbs *k, const struct mu_kbs_server_opts *o, struct mu_error *err)
{
	struct server *s = calloc(1, sizeof *s);
	enum mu_err rc = MU_OK;
	sigset_t old;
	if (!s)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory");
	s->k = k;
	s->o = o;
	s->lfd = s->sfd = -1;
	if (o->max_conns == 0 || o->read_timeout_ms == 0) {
		free(s);
		return mu_errf(err, MU_ERR_ARG, "max_conns and read_timeout_ms must be > 0");
	}

	if ((rc = host_stop_signalfd(&s->sfd, &old, err)) != MU_OK)
		goto out;
	s->conns = calloc(o->max_conns, sizeof *s->conns);
	s->bodies = pal_alloc((size_t)o->max_conns * MU_KBS_MAX_FRAME, 64);
	if (!s->conns || !s->bodies) {
		rc = mu_errf(err, MU_ERR_NOMEM, "out of memory for %u connections", o->max_conns);
		goto out;
	}
	for (uint32_t i = 0; i < o->max_conns; i++)
		s->conns[i].fd = -1;
	if (o->audit_path) {
		/* verifies an existing chain and refuses a broken one (the message says so) */
		if ((rc = mu_audit_open(&s->audit, o->audit_path, err)) != MU_OK)
			goto out;
		s->audit_open = 1;
	}
	if (strncmp(o->listen, "unix:", 5) && strncmp(o->listen, "tcp:", 4))
		rc = mu_errf(err, MU_ERR_ARG, "listen address '%s' must start with tcp: or unix:", o->listen);
	else
		rc = pal_listen(o->listen, 64, &s->lfd, s->addr, sizeof s->addr, err);
	if (rc != MU_OK)
		goto out;
	fprintf(stderr, "mu kbs: listening on %s\n", s->addr);
	rc = serve_loop(s, err);
	for (uint32_t i = 0; i < o->max_conns; i++)
		if (s->conns[i].fd >= 0)
			conn_close(s, &s->conns[i]);
	fprintf(stderr, "mu kbs: stopped\n");
out:
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->addr[0])
		pal_unlink_addr(s->addr);
	if (s->sfd >= 0)
		close(s->sfd);
	if (s->audit_open)
		mu_audit_close(&s->audit);
	if (s->bodies) {
		mu_wipe(s->bodies, (size_t)o->max_conns * MU_KBS_MAX_FRAME);
		pal_free(s->bodies, (size_t)o->max_conns * MU_KBS_MAX_FRAME);
	}
	free(s->conns);
	mu_wipe(&s->reply, sizeof s->reply);
	free(s);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
