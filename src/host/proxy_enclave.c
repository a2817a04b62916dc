/* proxy_enclave.c — the enclave link: connecting, attesting through the key broker, and the
 * enclave's frames once it is up (see proxy.h for the state machine).
 *
 * The proxy is a relay in the attestation, never a party to it: it asks the broker for a
 * challenge, hands the nonce to the enclave, passes the enclave's evidence to the broker byte
 * for byte (after checking it answers that nonce, so a confused enclave fails fast) and the
 * broker's wrapped key back as an unlock. The wrapped key is useless to the host: only the
 * enclave's ephemeral private key opens it.
 *
 * Every step has a deadline. Any failure closes both connections, is printed and audited once
 * (an identical failure repeating on every retry is not repeated in the log) and is retried
 * after a backoff that starts at --reconnect-ms and doubles up to MU_PROXY_MAX_BACKOFF_MS. It
 * starts over only when the link had stayed up for PROXY_LINK_STABLE_MS: an enclave that
 * drops the link soon after each attestation cannot make the proxy cycle it fast.
 * Connecting is the one blocking call, bounded by PROXY_CONNECT_MS.
 *
 * What is printed and audited about the enclave is the proxy's own text: a code the enclave
 * names is shown as mu_wire_code_name() of the code it maps to ("unknown" when it maps to
 * none), a frame that does not decode by the decoder's code only (the decoder's message may
 * quote the enclave's member names), the evidence format by the broker-known format's name,
 * and the model name of `ready` by a SHA-256 prefix in the audit log (on stderr in full only
 * at the first attestation, or when it is the same name again). Error frames about no running
 * request are counted, and the count is reported once per link session. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attest/evidence.h"
#include "host/proxy.h"
#include "pal/net.h"
#include "seal/crypto.h"

static const char *state_name(enum proxy_link_state s)
{
	switch (s) {
	case PROXY_LINK_DOWN: return "connect";
	case PROXY_LINK_CHALLENGE: return "challenge";
	case PROXY_LINK_EVIDENCE: return "evidence";
	case PROXY_LINK_KEY: return "key";
	case PROXY_LINK_READY: return "ready";
	case PROXY_LINK_UP: return "up";
	}
	return "?";
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static void reset_io(struct proxy_link *l)
{
	if (l->efd >= 0)
		close(l->efd);
	if (l->kfd >= 0)
		close(l->kfd);
	l->efd = l->kfd = -1;
	l->eout_len = l->eout_off = 0;
	l->kout_len = l->kout_off = 0;
	l->eout_stall_ms = 0;
	l->e_frame_t0_ms = 0;
	mu_frame_rd_init(&l->erd, l->ebuf, MU_WIRE_MAX_FRAME);
	mu_frame_rd_init(&l->krd, l->kbuf, MU_KBS_MAX_FRAME);
	l->fail_pending = 0;
}

void proxy_link_init(struct proxy_link *l)
{
	l->state = PROXY_LINK_DOWN;
	l->efd = l->kfd = -1;
	reset_io(l);
	l->retry_at_ms = 0;
	l->last_fail[0] = '\0';
}

void proxy_link_close(struct proxy *p)
{
	reset_io(&p->link);
	p->link.state = PROXY_LINK_DOWN;
}

/* Closes both connections and schedules a retry. kbs_code: the broker refused (audited as
 * enclave_refused); otherwise the failure is audited as enclave_lost. */
static void go_down(struct proxy *p, const char *why, const char *kbs_code, uint64_t now)
{
	struct proxy_link *l = &p->link;
	enum proxy_link_state was = l->state;
	uint64_t stray = l->stray_errors;
	if (was == PROXY_LINK_UP)
		proxy_act_link_lost(p);
	reset_io(l);
	l->state = PROXY_LINK_DOWN;
	l->stray_errors = 0;
	/* the backoff starts over only after a link that stayed up a while; one that fails again
	 * soon after attesting keeps doubling it */
	if (was == PROXY_LINK_UP && now - l->up_since_ms >= PROXY_LINK_STABLE_MS)
		l->backoff_ms = p->o->reconnect_ms;
	l->retry_at_ms = now + l->backoff_ms;
	if (stray)
		fprintf(stderr, "mu proxy: the enclave sent %llu error frame(s) about no running request in this link session\n",
			(unsigned long long)stray);
	/* A refusal repeats "the same failure" when the broker's code is the same, whatever its
	 * message says (it may quote numbers from the enclave's evidence). */
	char key[sizeof l->last_fail];
	snprintf(key, sizeof key, "%s%s", kbs_code ? "refused: " : "", kbs_code ? kbs_code : why);
	if (strcmp(key, l->last_fail) != 0 || stray) {
		fprintf(stderr, "mu proxy: enclave link down (at %s): %s; retrying in %u ms\n", state_name(was), why,
			l->backoff_ms);
		struct jsonw *w = proxy_audit_begin(p, kbs_code ? "enclave_refused" : "enclave_lost");
		if (w) {
			jsonw_str(w, "phase", state_name(was));
			if (kbs_code) {
				/* The refused evidence's measurement and key id are the enclave's choice. In
				 * full while this process has attested nothing (an operator setting up a
				 * policy needs them; with the deduplication above that is a few records at
				 * most); after that as SHA-256 prefixes, or an enclave that holds the model
				 * could alternate good and bad evidence to write 48 bytes of its choosing
				 * into the log per cycle. */
				jsonw_str(w, "code", kbs_code);
				if (!l->attested) {
					jsonw_hex(w, "measurement", l->measurement, sizeof l->measurement);
					jsonw_hex(w, "key_id", l->key_id, sizeof l->key_id);
				} else {
					uint8_t d[MU_SHA256_LEN];
					mu_sha256(l->measurement, sizeof l->measurement, d);
					jsonw_hex(w, "measurement_sha256", d, 8);
					mu_sha256(l->key_id, sizeof l->key_id, d);
					jsonw_hex(w, "key_id_sha256", d, 8);
				}
			} else {
				jsonw_str(w, "reason", why);
				jsonw_int(w, "stray_errors", (int64_t)stray);
			}
			jsonw_int(w, "retry_ms", l->backoff_ms);
			proxy_audit_commit(p);
		}
		snprintf(l->last_fail, sizeof l->last_fail, "%s", key);
	}
	uint32_t next = l->backoff_ms * 2;
	l->backoff_ms = next > MU_PROXY_MAX_BACKOFF_MS ? MU_PROXY_MAX_BACKOFF_MS : next;
}

void proxy_link_fail(struct proxy *p, const char *why, uint64_t now)
{
	if (p->link.state == PROXY_LINK_DOWN && p->link.efd < 0)
		return;
	go_down(p, why, NULL, now);
}

void proxy_link_fail_later(struct proxy *p, const char *why)
{
	struct proxy_link *l = &p->link;
	if (l->efd < 0 || l->fail_pending)
		return;
	l->fail_pending = 1;
	snprintf(l->fail_why, sizeof l->fail_why, "%s", why);
}

/* ---- output ---- */

static int queue_frame(uint8_t *buf, size_t cap, size_t *len, size_t *off, const void *body, size_t n, size_t max)
{
	if (*off) {
		memmove(buf, buf + *off, *len - *off);
		*len -= *off;
		*off = 0;
	}
	if (n == 0 || *len + MU_FRAME_HDR + n > cap || mu_frame_header(buf + *len, n, max, NULL) != MU_OK)
		return -1;
	memcpy(buf + *len + MU_FRAME_HDR, body, n);
	*len += MU_FRAME_HDR + n;
	return 0;
}

int proxy_link_send(struct proxy *p, const void *body, size_t len, uint64_t now)
{
	struct proxy_link *l = &p->link;
	if (l->efd < 0)
		return -1;
	int was_idle = l->eout_off == l->eout_len;
	if (queue_frame(l->eout, PROXY_EOUT_CAP, &l->eout_len, &l->eout_off, body, len, MU_WIRE_MAX_FRAME) != 0)
		return -1;
	if (was_idle)
		l->eout_stall_ms = now;
	return 0;
}

/* Writes what the socket takes; -1 on an error (errno set). */
static int write_out(int fd, const uint8_t *buf, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t n = send(fd, buf + *off, len - *off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		*off += (size_t)n;
	}
	return 0;
}

/* ---- the steps ---- */

static void attempt(struct proxy *p, uint64_t now)
{
	struct proxy_link *l = &p->link;
	struct mu_error err = {0};
	char why[sizeof l->last_fail], hello[64];
	int efd = -1, kfd = -1;
	size_t n = 0;
	if (pal_connect(p->o->enclave_addr, PROXY_CONNECT_MS, PAL_NET_NONBLOCK, &efd, &err) != MU_OK) {
		snprintf(why, sizeof why, "enclave: %s", err.msg);
		go_down(p, why, NULL, proxy_now_ms());
		return;
	}
	if (pal_connect(p->o->kbs_addr, PROXY_CONNECT_MS, PAL_NET_NONBLOCK, &kfd, &err) != MU_OK) {
		close(efd);
		snprintf(why, sizeof why, "key broker: %s", err.msg);
		go_down(p, why, NULL, proxy_now_ms());
		return;
	}
	reset_io(l);
	l->efd = efd;
	l->kfd = kfd;
	memset(l->nonce, 0, sizeof l->nonce);
	memset(l->measurement, 0, sizeof l->measurement);
	memset(l->key_id, 0, sizeof l->key_id);
	l->format[0] = l->model[0] = '\0';
	l->insecure = 0;
	if (mu_kbs_msg_hello(hello, sizeof hello, &n, &err) != MU_OK ||
	    queue_frame(l->kout, PROXY_KOUT_CAP, &l->kout_len, &l->kout_off, hello, n, MU_KBS_MAX_FRAME) != 0) {
		go_down(p, "cannot build the broker hello", NULL, now);
		return;
	}
	l->state = PROXY_LINK_CHALLENGE;
	l->deadline_ms = proxy_now_ms() + PROXY_KEY_MS;
	if (!l->last_fail[0])
		fprintf(stderr, "mu proxy: connected to the enclave (%s) and the key broker (%s); attesting\n",
			p->o->enclave_addr, p->o->kbs_addr);
}

static void on_evidence(struct proxy *p, const struct mu_msg *m, const uint8_t *body, size_t len, uint64_t now)
{
	struct proxy_link *l = &p->link;
	char why[160];
	if (m->type != MU_MSG_EVIDENCE) {
		if (m->type == MU_MSG_ERROR)
			snprintf(why, sizeof why, "the enclave answered hello with error %s", mu_wire_code_name(m->error.code));
		else
			snprintf(why, sizeof why, "the enclave answered hello with %s", mu_msg_type_name(m->type));
		proxy_link_fail(p, why, now);
		return;
	}
	if (memcmp(m->evidence.nonce, l->nonce, sizeof l->nonce) != 0) {
		proxy_link_fail(p, "the enclave's evidence answers another nonce", now);
		return;
	}
	memcpy(l->measurement, m->evidence.measurement, sizeof l->measurement);
	memcpy(l->key_id, m->evidence.key_id, sizeof l->key_id);
	/* the format's name as the broker knows it (it releases nothing for any other) */
	const struct mu_evidence_format *f = mu_evidence_format_find(m->evidence.format, strlen(m->evidence.format));
	snprintf(l->format, sizeof l->format, "%s", f ? f->name : "unknown");
	/* relayed unchanged: the broker checks exactly what the enclave said */
	if (len > MU_KBS_MAX_FRAME ||
	    queue_frame(l->kout, PROXY_KOUT_CAP, &l->kout_len, &l->kout_off, body, len, MU_KBS_MAX_FRAME) != 0) {
		proxy_link_fail(p, "the enclave's evidence is larger than the key broker accepts", now);
		return;
	}
	l->state = PROXY_LINK_KEY;
	l->deadline_ms = now + PROXY_KEY_MS;
}

static void on_ready(struct proxy *p, const struct mu_msg *m, uint64_t now)
{
	struct proxy_link *l = &p->link;
	char why[160], mhex[65], mname[MU_WIRE_MAX_MODEL_NAME + 112];
	uint8_t msha[MU_SHA256_LEN];
	if (m->type != MU_MSG_READY) {
		if (m->type == MU_MSG_ERROR)
			snprintf(why, sizeof why, "the enclave did not accept the key: error %s",
				 mu_wire_code_name(m->error.code));
		else
			snprintf(why, sizeof why, "the enclave answered unlock with %s", mu_msg_type_name(m->type));
		proxy_link_fail(p, why, now);
		return;
	}
	snprintf(l->model, sizeof l->model, "%s", m->ready.model);
	l->n_ctx = m->ready.n_ctx;
	l->max_tokens = m->ready.max_tokens;
	l->egress_bps = m->ready.egress_bytes_per_s;
	l->egress_burst = m->ready.egress_burst_bytes;
	/* The name is the enclave's text (at most 64 printable ASCII characters). The audit log
	 * records only a SHA-256 prefix of it; stderr shows it in full at this process's first
	 * attestation, or when it is that name again, so an enclave that re-attests over and over
	 * cannot write fresh text of its choosing each time. */
	mu_sha256(l->model, strlen(l->model), msha);
	hex(msha, 8, mhex);
	if (!l->first_model[0])
		snprintf(l->first_model, sizeof l->first_model, "%s", l->model);
	if (!strcmp(l->model, l->first_model))
		snprintf(mname, sizeof mname, "%s", l->model);
	else
		snprintf(mname, sizeof mname, "sha256:%s (not the first attestation's name)", mhex);
	struct jsonw *w = proxy_audit_begin(p, "enclave_attested");
	if (w) {
		jsonw_hex(w, "measurement", l->measurement, sizeof l->measurement);
		jsonw_hex(w, "key_id", l->key_id, sizeof l->key_id);
		jsonw_str(w, "format", l->format);
		jsonw_bool(w, "insecure", l->insecure);
		jsonw_str(w, "model_sha256", mhex);
		jsonw_int(w, "n_ctx", l->n_ctx);
		jsonw_int(w, "max_tokens", l->max_tokens);
		jsonw_int(w, "egress_bytes_per_s", l->egress_bps);
		jsonw_int(w, "egress_burst_bytes", l->egress_burst);
	}
	if (!w || proxy_audit_commit(p) != 0) {
		proxy_link_fail(p, "the audit log cannot be written, so the enclave is not served", now);
		return;
	}
	l->state = PROXY_LINK_UP;
	p->metrics.last_attested_wall_ms = proxy_wall_ms();
	l->last_fail[0] = '\0';
	l->up_since_ms = now; /* the backoff is left as it is until the link has proved stable */
	l->stray_errors = 0;
	l->attested++;
	hex(l->measurement, sizeof l->measurement, mhex);
	if (l->insecure)
		fprintf(stderr, "mu proxy: enclave attested: measurement %s, model %s (dev evidence: INSECURE)\n", mhex,
			mname);
	else
		fprintf(stderr, "mu proxy: enclave attested: measurement %s, model %s (evidence %s)\n", mhex, mname,
			l->format);
}

static void on_enclave_frame(struct proxy *p, const uint8_t *body, size_t len, uint64_t now)
{
	struct proxy_link *l = &p->link;
	struct mu_msg *m = &p->msg;
	struct mu_error err = {0};
	char why[128];
	enum mu_wire_code code = mu_msg_decode(m, body, len, p->scratch, p->scratch_len, &err);
	if (code != MU_WIRE_OK) {
		if (l->state == PROXY_LINK_UP && proxy_act_enclave_bad_frame(p, code, now) == 0)
			return;
		/* the code only: the decoder's message may quote the enclave's member names */
		snprintf(why, sizeof why, "the enclave sent a frame that does not decode (%s)", mu_wire_code_name(code));
		proxy_link_fail(p, why, now);
		return;
	}
	switch (l->state) {
	case PROXY_LINK_EVIDENCE:
		on_evidence(p, m, body, len, now);
		return;
	case PROXY_LINK_READY:
		on_ready(p, m, now);
		return;
	case PROXY_LINK_UP:
		proxy_act_enclave_frame(p, m, now);
		if (m->type == MU_MSG_ERROR && (m->error.code == MU_WIRE_BAD_FRAME || m->error.code == MU_WIRE_FRAME_TOO_LARGE ||
						m->error.code == MU_WIRE_TIMEOUT))
			proxy_link_fail_later(p, "the enclave reported a framing error on its channel");
		return;
	default:
		snprintf(why, sizeof why, "the enclave sent %s before it was asked", mu_msg_type_name(m->type));
		proxy_link_fail(p, why, now);
		return;
	}
}

static void refused(struct proxy *p, const struct mu_kbs_reply_msg *r, uint64_t now)
{
	char why[sizeof p->link.last_fail];
	/* the code as this build names it ("unknown" for any other name) */
	const char *code = mu_kbs_code_name(r->code);
	snprintf(why, sizeof why, "the key broker refused the enclave: %s (%.120s)", code, r->message);
	go_down(p, why, code, now);
}

static void on_broker_frame(struct proxy *p, const uint8_t *body, size_t len, uint64_t now)
{
	struct proxy_link *l = &p->link;
	struct mu_kbs_reply_msg r;
	struct mu_error err = {0};
	char why[MU_ERROR_MSG_MAX + 64], msg[256];
	if (mu_kbs_msg_parse(&r, body, len, &err) != MU_OK) {
		snprintf(why, sizeof why, "the key broker sent a malformed reply: %s", err.msg);
		proxy_link_fail(p, why, now);
		return;
	}
	if (r.type == MU_KBS_MSG_REFUSED) {
		refused(p, &r, now);
		return;
	}
	if (l->state == PROXY_LINK_CHALLENGE && r.type == MU_KBS_MSG_CHALLENGE) {
		memcpy(l->nonce, r.nonce, sizeof l->nonce);
		size_t n = mu_msg_hello(msg, sizeof msg, l->nonce);
		if (n == 0 || proxy_link_send(p, msg, n, now) != 0) {
			proxy_link_fail(p, "cannot send hello to the enclave", now);
			return;
		}
		l->state = PROXY_LINK_EVIDENCE;
		l->deadline_ms = now + PROXY_EVIDENCE_MS;
		return;
	}
	if (l->state == PROXY_LINK_KEY && r.type == MU_KBS_MSG_KEY) {
		uint8_t wrapped[48];
		char kid[2 * MU_KBS_KEY_ID_LEN + 1];
		if (memcmp(r.key_id, l->key_id, sizeof l->key_id) != 0) {
			proxy_link_fail(p, "the key broker answered with a key for another key id", now);
			return;
		}
		memcpy(wrapped, r.wrapped.ciphertext, 32);
		memcpy(wrapped + 32, r.wrapped.tag, 16);
		size_t n = mu_msg_unlock(msg, sizeof msg, r.key_id, r.wrapped.eph_pub, wrapped);
		if (n == 0 || proxy_link_send(p, msg, n, now) != 0) {
			proxy_link_fail(p, "cannot send unlock to the enclave", now);
			return;
		}
		l->insecure = r.insecure;
		close(l->kfd); /* the broker is done with this exchange */
		l->kfd = -1;
		l->kout_len = l->kout_off = 0;
		l->state = PROXY_LINK_READY;
		l->deadline_ms = now + PROXY_READY_MS;
		hex(l->key_id, sizeof l->key_id, kid);
		fprintf(stderr, "mu proxy: the key broker released key %s to the enclave%s; waiting for it to load the model\n",
			kid, r.insecure ? " (dev evidence: INSECURE)" : "");
		return;
	}
	snprintf(why, sizeof why, "the key broker sent an unexpected message in step %s", state_name(l->state));
	proxy_link_fail(p, why, now);
}

/* ---- I/O ---- */

int proxy_link_may_read(const struct proxy *p)
{
	const struct proxy_link *l = &p->link;
	switch (l->state) {
	case PROXY_LINK_EVIDENCE:
	case PROXY_LINK_READY:
		return 1;
	case PROXY_LINK_UP:
		/* a frame begun is always finished; the next waits until the output is out */
		return mu_frame_rd_pending(&l->erd) > 0 || proxy_act_may_read(p);
	default:
		return 0;
	}
}

short proxy_link_enclave_events(const struct proxy *p)
{
	const struct proxy_link *l = &p->link;
	if (l->efd < 0)
		return 0;
	short ev = POLLRDHUP; /* a hangup is noticed even while the enclave is not read */
	if (proxy_link_may_read(p))
		ev |= POLLIN;
	if (l->eout_off < l->eout_len)
		ev |= POLLOUT;
	return ev;
}

short proxy_link_broker_events(const struct proxy *p)
{
	const struct proxy_link *l = &p->link;
	if (l->kfd < 0)
		return 0;
	short ev = 0;
	if (l->state == PROXY_LINK_CHALLENGE || l->state == PROXY_LINK_KEY)
		ev |= POLLIN;
	if (l->kout_off < l->kout_len)
		ev |= POLLOUT;
	return ev;
}

/* How long a frame from the enclave may take once begun: the read timeout, plus the time the
 * enclave's own egress cap needs for a frame of that length. */
static uint64_t frame_allowance_ms(const struct proxy *p)
{
	const struct proxy_link *l = &p->link;
	uint64_t t = p->o->read_timeout_ms;
	if (l->state == PROXY_LINK_UP && l->egress_bps > 0 && l->erd.have >= MU_FRAME_HDR)
		t += (uint64_t)l->erd.len * 1000u / (uint64_t)l->egress_bps;
	return t;
}

uint64_t proxy_link_next_ms(const struct proxy *p, uint64_t now)
{
	const struct proxy_link *l = &p->link;
	uint64_t rt = p->o->read_timeout_ms, t = 0;
	if (l->fail_pending)
		return now;
	switch (l->state) {
	case PROXY_LINK_DOWN:
		return l->retry_at_ms ? l->retry_at_ms : now;
	case PROXY_LINK_UP:
		if (l->e_frame_t0_ms)
			t = l->e_frame_t0_ms + frame_allowance_ms(p);
		if (l->eout_off < l->eout_len && l->eout_stall_ms && (!t || l->eout_stall_ms + rt < t))
			t = l->eout_stall_ms + rt;
		return t;
	default:
		return l->deadline_ms;
	}
}

void proxy_link_tick(struct proxy *p, uint64_t now)
{
	struct proxy_link *l = &p->link;
	char why[sizeof l->fail_why];
	if (l->fail_pending) {
		snprintf(why, sizeof why, "%s", l->fail_why);
		proxy_link_fail(p, why, now);
		return;
	}
	switch (l->state) {
	case PROXY_LINK_DOWN:
		if (now >= l->retry_at_ms)
			attempt(p, now);
		return;
	case PROXY_LINK_UP:
		if (l->e_frame_t0_ms && now - l->e_frame_t0_ms >= frame_allowance_ms(p)) {
			proxy_link_fail(p, "the enclave began a frame and did not finish it in time", now);
		} else if (l->eout_off < l->eout_len && l->eout_stall_ms && now - l->eout_stall_ms >= p->o->read_timeout_ms) {
			proxy_link_fail(p, "the enclave does not read its channel", now);
		}
		return;
	default:
		if (now >= l->deadline_ms) {
			snprintf(why, sizeof why, "no answer in step %s within the deadline", state_name(l->state));
			proxy_link_fail(p, why, now);
		}
		return;
	}
}

static void read_enclave(struct proxy *p, uint64_t now)
{
	struct proxy_link *l = &p->link;
	int fd = l->efd;
	char why[sizeof l->fail_why];
	for (int k = 0; k < 64 && l->efd == fd && proxy_link_may_read(p); k++) {
		uint8_t *dst;
		size_t want;
		if (mu_frame_rd_space(&l->erd, &dst, &want) == MU_FRAME_DONE || want == 0)
			return;
		ssize_t n = recv(fd, dst, want, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			snprintf(why, sizeof why, "reading the enclave channel: %s", strerror(errno));
			proxy_link_fail(p, why, now);
			return;
		}
		if (n == 0) {
			proxy_link_fail(p, "the enclave closed the channel", now);
			return;
		}
		struct mu_error err = {0};
		enum mu_frame_state st;
		if (mu_frame_rd_commit(&l->erd, (size_t)n, &st, &err) != MU_OK) {
			/* by kind only: the reader's message quotes the length the enclave chose */
			snprintf(why, sizeof why, "the enclave sent a bad frame (%s)",
				 mu_wire_code_name(err.code == MU_ERR_RANGE ? MU_WIRE_FRAME_TOO_LARGE : MU_WIRE_BAD_FRAME));
			proxy_link_fail(p, why, now);
			return;
		}
		if (st != MU_FRAME_DONE) {
			if (!l->e_frame_t0_ms)
				l->e_frame_t0_ms = now;
			continue;
		}
		l->e_frame_t0_ms = 0;
		on_enclave_frame(p, l->ebuf, mu_frame_rd_len(&l->erd), now);
		if (l->efd != fd)
			return;
		mu_frame_rd_next(&l->erd);
		if (l->fail_pending) {
			snprintf(why, sizeof why, "%s", l->fail_why);
			proxy_link_fail(p, why, now);
			return;
		}
	}
}

void proxy_link_enclave_io(struct proxy *p, short re, uint64_t now)
{
	struct proxy_link *l = &p->link;
	char why[128];
	if (re & POLLOUT) {
		size_t before = l->eout_off;
		if (write_out(l->efd, l->eout, l->eout_len, &l->eout_off) != 0) {
			snprintf(why, sizeof why, "writing the enclave channel: %s", strerror(errno));
			proxy_link_fail(p, why, now);
			return;
		}
		if (l->eout_off == l->eout_len)
			l->eout_len = l->eout_off = 0;
		if (l->eout_off != before)
			l->eout_stall_ms = now;
	}
	if (!(re & (POLLIN | POLLHUP | POLLERR | POLLRDHUP)))
		return;
	if (proxy_link_may_read(p))
		read_enclave(p, now);
	else if (re & (POLLHUP | POLLERR | POLLRDHUP))
		proxy_link_fail(p, "the enclave closed the channel", now);
}

void proxy_link_broker_io(struct proxy *p, short re, uint64_t now)
{
	struct proxy_link *l = &p->link;
	char why[MU_ERROR_MSG_MAX + 64];
	if (re & POLLOUT) {
		if (write_out(l->kfd, l->kout, l->kout_len, &l->kout_off) != 0) {
			snprintf(why, sizeof why, "writing to the key broker: %s", strerror(errno));
			proxy_link_fail(p, why, now);
			return;
		}
		if (l->kout_off == l->kout_len)
			l->kout_len = l->kout_off = 0;
	}
	if (l->kfd < 0 || !(re & (POLLIN | POLLHUP | POLLERR)))
		return;
	if (l->state != PROXY_LINK_CHALLENGE && l->state != PROXY_LINK_KEY) {
		proxy_link_fail(p, "the key broker spoke out of turn", now);
		return;
	}
	int fd = l->kfd;
	for (int k = 0; k < 4 && l->kfd == fd; k++) {
		uint8_t *dst;
		size_t want;
		if (mu_frame_rd_space(&l->krd, &dst, &want) == MU_FRAME_DONE || want == 0)
			return;
		ssize_t n = recv(fd, dst, want, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			snprintf(why, sizeof why, "reading from the key broker: %s", strerror(errno));
			proxy_link_fail(p, why, now);
			return;
		}
		if (n == 0) {
			proxy_link_fail(p, "the key broker closed the connection", now);
			return;
		}
		struct mu_error err = {0};
		enum mu_frame_state st;
		if (mu_frame_rd_commit(&l->krd, (size_t)n, &st, &err) != MU_OK) {
			snprintf(why, sizeof why, "the key broker sent a bad frame: %s", err.msg);
			proxy_link_fail(p, why, now);
			return;
		}
		if (st != MU_FRAME_DONE)
			continue;
		on_broker_frame(p, l->kbuf, mu_frame_rd_len(&l->krd), now);
		if (l->kfd == fd)
			mu_frame_rd_next(&l->krd);
	}
}
