/* tool_wire.c — a wire protocol v1 client for shell tests (the enclave's channel and the
 * proxy's client socket).
 *
 *   tool_wire --connect ADDR [--attest-kbs KBSADDR] [--timeout-ms MS] ACTION...
 *
 * Connects to ADDR (unix:PATH or tcp:HOST:PORT) and performs the actions in order:
 *   --send JSON          one frame whose body is the JSON text as given
 *   --send-hex HEX       one frame whose body is these bytes (may be invalid UTF-8)
 *   --send-file PATH     one frame whose body is the file's bytes (bodies too big for argv)
 *   --raw-hex HEX        these raw bytes, no frame header (empty, oversized or half frames)
 *   --recv N             read N frames; print each body on its own line on stdout
 *   --recv-until TYPE    read and print frames until one of type TYPE or "error" (printed too)
 *   --text-until-done    read frames; write the text of token frames to stdout as raw bytes,
 *                        stop at done or error and print that body on stderr; the exit status
 *                        is 4 at the end when it stopped at an error
 *   --sleep MS
 *   --expect-close MS    wait up to MS ms for the peer to close (data that arrives meanwhile is
 *                        discarded); prints "closed after N ms" or "still open"
 *   --count-bytes SEC    read everything for SEC seconds (a decimal) or until the peer closes;
 *                        prints "bytes B frames F text_bytes T seconds S", B counting every byte
 *                        received, frame headers included
 *
 * --attest-kbs KBSADDR first plays the proxy's attestation relay: the broker's hello and
 * challenge, the enclave's hello{version 1, nonce}, its evidence relayed to the broker as is,
 * and the broker's key turned into unlock{key_id, kbs_pub = eph_pub, wrapped_key = ciphertext ||
 * tag}; the enclave's ready body is printed on stderr. A refusal prints "refused CODE: MESSAGE"
 * on stderr (exit 5); an error frame from the enclave is printed on stderr (exit 6).
 *
 * Every read waits at most --timeout-ms (default 10000) for the next frame, else "timeout" and
 * exit 3. Exit 1: usage or connect errors; 2: the peer closed early, broke the framing or the
 * exchange; 4: --text-until-done ended with an error frame.
 *
 *   tool_wire --fake-enclave ADDR --config C --sealed M.mus [--measure] [--drop-after-ready]
 *
 * A scripted enclave that sends what a real one never would, to test the proxy against it. It
 * listens on ADDR ("tool_wire: listening on ADDR" on stderr) and serves one connection at a
 * time, forever: hello is answered with dev evidence for a fresh X25519 key (binary_sha256 =
 * SHA-256 of "tool_wire fake enclave", the config file's bytes, the sealed header's SHA-256
 * and key id, as tool_kbs_client does), unlock with ready{model "fake-enclave", n_ctx 512,
 * max_tokens 64, egress 4096/4096} (and with --drop-after-ready the connection is closed right
 * after), and a generate by running the script whose path is the generate's prompt: each line
 * is a frame body to send, "@ID@" in it replaced by the generate's id, except "@sleep:MS"
 * (wait) and "@close" (close the connection). Other frames are ignored. --measure prints
 * "measurement HEX" (what a policy lists for it) and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "attest/evidence.h"
#include "attest/kbs_proto.h"
#include "base/limits.h"
#include "pal/net.h"
#include "pal/pal.h"
#include "seal/crypto.h"
#include "seal/sealed.h"
#include "wire/frame.h"
#include "wire/proto.h"

enum act_kind { A_SEND, A_RAW, A_RECV, A_RECV_UNTIL, A_TEXT, A_SLEEP, A_EXPECT_CLOSE, A_COUNT };

struct action {
	enum act_kind kind;
	uint8_t *data; /* A_SEND, A_RAW */
	size_t len;
	long n;        /* frames, milliseconds */
	const char *type;
};

struct conn {
	int fd;
	const char *name; /* "enclave", "key broker": for messages */
	struct mu_frame_rd rd;
	uint8_t *body;
	uint8_t in[65536]; /* received, not yet fed to rd */
	size_t in_off, in_len;
	int have_frame; /* rd holds a consumed frame: call mu_frame_rd_next first */
	int eof;
	uint64_t bytes; /* every byte received */
};

/* Globals, so that everything stays reachable until exit (LeakSanitizer in the ASan build). */
static long timeout_ms = 10000;
static void *msg_mem;
static size_t msg_mem_len;
static struct action *acts;
static struct conn *volatile peer, *volatile broker; /* volatile: stores kept, so LSan sees them */

__attribute__((format(printf, 2, 3), noreturn)) static void die(int code, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "tool_wire: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static uint64_t now_ms(void) { return pal_now_ns() / 1000000u; }

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static long number(const char *flag, const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || errno)
		die(1, "%s needs a non-negative integer, not '%s'", flag, s);
	return v;
}

static uint8_t *unhex_arg(const char *flag, const char *s, size_t *n)
{
	size_t sl = strlen(s);
	uint8_t *p = malloc(sl / 2 + 1);
	if (!p)
		die(1, "out of memory");
	if (sl % 2 || mu_unhex(s, sl, p, sl / 2) != 0) {
		free(p);
		die(1, "%s needs an even number of hex digits", flag);
	}
	*n = sl / 2;
	return p;
}

static uint8_t *file_arg(const char *path, size_t *n)
{
	struct mu_error err;
	uint8_t *p;
	if (pal_read_file(path, (size_t)1 << 30, &p, n, &err) != MU_OK)
		die(1, "%s", err.msg);
	return p;
}

/* ---- I/O ---- */

static void send_all(struct conn *c, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die(2, "send to the %s failed: %s", c->name, strerror(errno));
		b += w;
		n -= (size_t)w;
	}
}

/* One frame, the length prefix written as is (no limit: tests send what they like). */
static void send_frame(struct conn *c, const void *body, size_t len)
{
	uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
	if (len > UINT32_MAX)
		die(1, "a body of %zu bytes does not fit a frame", len);
	send_all(c, hdr, sizeof hdr);
	send_all(c, body, len);
}

/* Receives what is there within wait ms: 1 got bytes, 0 the peer closed, -1 nothing in time. */
static int fill(struct conn *c, long wait)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	int r = poll(&p, 1, wait < 0 ? 0 : (int)wait);
	if (r < 0 && errno == EINTR)
		return 1; /* nothing new; the caller looks at the clock again */
	if (r < 0)
		die(2, "poll: %s", strerror(errno));
	if (r == 0)
		return -1;
	ssize_t n = recv(c->fd, c->in, sizeof c->in, 0);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return 0;
	if (n < 0)
		die(2, "recv from the %s: %s", c->name, strerror(errno));
	c->in_off = 0;
	c->in_len = (size_t)n;
	c->bytes += (uint64_t)n;
	return 1;
}

/* The next frame within timeout_ms: 1 (body in c->body[0..*len)), 0 the peer closed; a timeout
 * prints "timeout" and exits 3. */
static int next_frame(struct conn *c, size_t *len)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	struct mu_error err;
	if (c->have_frame) {
		mu_frame_rd_next(&c->rd);
		c->have_frame = 0;
	}
	for (;;) {
		if (c->in_off < c->in_len) {
			size_t used;
			enum mu_frame_state st;
			if (mu_frame_rd_feed(&c->rd, c->in + c->in_off, c->in_len - c->in_off, &used, &st, &err) != MU_OK)
				die(2, "bad frame from the %s: %s", c->name, err.msg);
			c->in_off += used;
			if (st == MU_FRAME_DONE) {
				c->have_frame = 1;
				*len = mu_frame_rd_len(&c->rd);
				return 1;
			}
			continue;
		}
		if (c->eof)
			return 0;
		uint64_t t = now_ms();
		int r = t >= deadline ? -1 : fill(c, (long)(deadline - t));
		if (r == 0)
			c->eof = 1;
		if (r < 0) {
			fflush(stdout);
			printf("timeout\n");
			fflush(stdout);
			exit(3);
		}
	}
}

static void print_body(FILE *f, const uint8_t *p, size_t n)
{
	fwrite(p, 1, n, f);
	fputc('\n', f);
	fflush(f);
}

/* ---- attestation relay ---- */

static void conn_init(struct conn *c, int fd, const char *name, size_t max)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->name = name;
	c->body = malloc(max);
	if (!c->body)
		die(1, "out of memory");
	mu_frame_rd_init(&c->rd, c->body, max);
}

static void kbs_reply(struct conn *k, struct mu_kbs_reply_msg *m)
{
	struct mu_error err = {0};
	size_t len;
	if (!next_frame(k, &len))
		die(2, "the key broker closed the connection");
	if (mu_kbs_msg_parse(m, k->body, len, &err) != MU_OK)
		die(2, "the key broker's reply: %s", err.msg);
	if (m->type == MU_KBS_MSG_REFUSED) {
		fflush(stdout);
		fprintf(stderr, "refused %s: %s\n", m->code_name, m->message);
		exit(5);
	}
}

/* The enclave's next frame, decoded; an error frame is printed and exits 6. */
static enum mu_msg_type enclave_reply(struct conn *e, struct mu_msg *m, size_t *len)
{
	struct mu_error err = {0};
	if (!next_frame(e, len))
		die(2, "the enclave closed the connection during attestation");
	enum mu_wire_code c = mu_msg_decode(m, e->body, *len, msg_mem, msg_mem_len, &err);
	if (c != MU_WIRE_OK)
		die(2, "the enclave sent a bad frame (%s): %s", mu_wire_code_name(c), err.msg);
	if (m->type == MU_MSG_ERROR) {
		fflush(stdout);
		print_body(stderr, e->body, *len);
		exit(6);
	}
	return m->type;
}

static void attest(struct conn *e, const char *kbs_addr)
{
	struct mu_error err = {0};
	struct mu_kbs_reply_msg km;
	struct mu_msg m;
	struct conn *k = broker = malloc(sizeof *k);
	char buf[1024];
	size_t len;
	int kfd;
	if (!k)
		die(1, "out of memory");
	if (pal_connect(kbs_addr, (uint32_t)timeout_ms, 0, &kfd, &err) != MU_OK)
		die(1, "key broker: %s", err.msg);
	conn_init(k, kfd, "key broker", MU_KBS_MAX_FRAME);

	if (mu_kbs_msg_hello(buf, sizeof buf, &len, &err) != MU_OK)
		die(2, "%s", err.msg);
	send_frame(k, buf, len);
	kbs_reply(k, &km);
	if (km.type != MU_KBS_MSG_CHALLENGE)
		die(2, "the key broker answered hello with something other than a challenge");

	len = mu_msg_hello(buf, sizeof buf, km.nonce);
	if (len == 0)
		die(2, "cannot encode hello");
	send_frame(e, buf, len);
	if (enclave_reply(e, &m, &len) != MU_MSG_EVIDENCE)
		die(2, "the enclave answered hello with %s, not evidence", mu_msg_type_name(m.type));
	send_frame(k, e->body, len); /* relayed unchanged */

	kbs_reply(k, &km);
	if (km.type != MU_KBS_MSG_KEY)
		die(2, "the key broker answered evidence with something other than a key");
	uint8_t wrapped[48];
	memcpy(wrapped, km.wrapped.ciphertext, 32);
	memcpy(wrapped + 32, km.wrapped.tag, 16);
	len = mu_msg_unlock(buf, sizeof buf, km.key_id, km.wrapped.eph_pub, wrapped);
	if (len == 0)
		die(2, "cannot encode unlock");
	send_frame(e, buf, len);
	if (enclave_reply(e, &m, &len) != MU_MSG_READY)
		die(2, "the enclave answered unlock with %s, not ready", mu_msg_type_name(m.type));
	print_body(stderr, e->body, len);
	close(kfd);
	free(k->body);
	free(k);
	broker = NULL;
}

/* ---- actions ---- */

/* The type of a frame body when it decodes, else NULL. */
static const char *type_of(const uint8_t *p, size_t n, struct mu_msg *m)
{
	if (mu_msg_decode(m, p, n, msg_mem, msg_mem_len, NULL) != MU_WIRE_OK)
		return NULL;
	return mu_msg_type_name(m->type);
}

static void act_recv(struct conn *c, long n)
{
	size_t len;
	for (long i = 0; i < n; i++) {
		if (!next_frame(c, &len)) {
			printf("closed\n");
			die(2, "the peer closed after %ld of %ld frames", i, n);
		}
		print_body(stdout, c->body, len);
	}
}

static void act_recv_until(struct conn *c, const char *want)
{
	struct mu_msg m;
	size_t len;
	for (;;) {
		if (!next_frame(c, &len)) {
			printf("closed\n");
			die(2, "the peer closed before a frame of type %s", want);
		}
		print_body(stdout, c->body, len);
		const char *t = type_of(c->body, len, &m);
		if (t && (!strcmp(t, want) || !strcmp(t, "error")))
			return;
	}
}

/* 0 at done, 4 at error. */
static int act_text(struct conn *c)
{
	struct mu_msg m;
	struct mu_error err = {0};
	size_t len;
	for (;;) {
		if (!next_frame(c, &len)) {
			fflush(stdout);
			fprintf(stderr, "closed\n");
			die(2, "the peer closed before done");
		}
		enum mu_wire_code code = mu_msg_decode(&m, c->body, len, msg_mem, msg_mem_len, &err);
		if (code != MU_WIRE_OK) {
			fflush(stdout);
			die(2, "undecodable frame (%s): %s", mu_wire_code_name(code), err.msg);
		}
		if (m.type == MU_MSG_TOKEN) {
			fwrite(m.token.text.p, 1, m.token.text.n, stdout);
		} else if (m.type == MU_MSG_DONE || m.type == MU_MSG_ERROR) {
			fflush(stdout);
			print_body(stderr, c->body, len);
			return m.type == MU_MSG_ERROR ? 4 : 0;
		}
	}
}

static void act_expect_close(struct conn *c, long ms)
{
	uint64_t t0 = now_ms(), end = t0 + (uint64_t)ms;
	/* whatever is still buffered or arrives now is discarded */
	c->in_off = c->in_len;
	while (!c->eof) {
		uint64_t t = now_ms();
		if (t >= end)
			break;
		int r = fill(c, (long)(end - t));
		if (r == 0)
			c->eof = 1;
		else if (r < 0)
			break;
		c->in_off = c->in_len;
	}
	if (c->eof)
		printf("closed after %llu ms\n", (unsigned long long)(now_ms() - t0));
	else
		printf("still open\n");
	fflush(stdout);
}

static void act_count(struct conn *c, long ms)
{
	struct mu_error err;
	struct mu_msg m;
	uint64_t t0 = now_ms(), end = t0 + (uint64_t)ms;
	uint64_t bytes0 = c->bytes - (c->in_len - c->in_off), frames = 0, text = 0;
	int broken = 0;
	if (c->have_frame) {
		mu_frame_rd_next(&c->rd);
		c->have_frame = 0;
	}
	for (;;) {
		if (c->in_off < c->in_len) {
			size_t used;
			enum mu_frame_state st;
			if (broken) {
				c->in_off = c->in_len;
				continue;
			}
			if (mu_frame_rd_feed(&c->rd, c->in + c->in_off, c->in_len - c->in_off, &used, &st, &err) != MU_OK) {
				fprintf(stderr, "tool_wire: bad frame from the %s: %s (counting bytes only)\n", c->name, err.msg);
				broken = 1;
				continue;
			}
			c->in_off += used;
			if (st == MU_FRAME_DONE) {
				size_t len = mu_frame_rd_len(&c->rd);
				frames++;
				if (mu_msg_decode(&m, c->body, len, msg_mem, msg_mem_len, NULL) == MU_WIRE_OK &&
				    m.type == MU_MSG_TOKEN)
					text += m.token.text.n;
				mu_frame_rd_next(&c->rd);
			}
			continue;
		}
		uint64_t t = now_ms();
		if (c->eof || t >= end)
			break;
		int r = fill(c, (long)(end - t));
		if (r == 0)
			c->eof = 1;
		else if (r < 0)
			break;
	}
	printf("bytes %llu frames %llu text_bytes %llu seconds %.3f\n", (unsigned long long)(c->bytes - bytes0),
	       (unsigned long long)frames, (unsigned long long)text, (double)(now_ms() - t0) / 1000.0);
	fflush(stdout);
}

/* ---- a scripted fake enclave ---- */

#define FAKE_BINARY_LABEL "tool_wire fake enclave"

struct fake {
	const char *addr, *config_path, *sealed_path;
	int measure, drop_after_ready;
	uint8_t *config;
	size_t config_len;
	uint8_t binary_sha256[32], header_sha256[32], key_id[MU_KBS_KEY_ID_LEN], measurement[32];
};

static void fake_load(struct fake *f)
{
	struct mu_error err = {0};
	uint8_t *p;
	size_t n;
	mu_sha256(FAKE_BINARY_LABEL, strlen(FAKE_BINARY_LABEL), f->binary_sha256);
	if (pal_read_file(f->config_path, MU_KBS_MAX_FRAME, &f->config, &f->config_len, &err) != MU_OK)
		die(1, "%s", err.msg);
	if (pal_read_file(f->sealed_path, (size_t)1 << 40, &p, &n, &err) != MU_OK)
		die(1, "%s", err.msg);
	if (n < MU_SEALED_HEADER_LEN)
		die(1, "%s is shorter than a sealed header", f->sealed_path);
	mu_sha256(p, MU_SEALED_HEADER_LEN, f->header_sha256);
	memcpy(f->key_id, p + MU_SEALED_OFF_KEY_ID, sizeof f->key_id);
	pal_free(p, n + 1);
	mu_measure(f->binary_sha256, f->config, f->config_len, f->header_sha256, f->measurement);
}

/* One frame to the proxy; -1 when the connection is gone (the fake then waits for the next). */
static int fake_send(int fd, const void *body, size_t len)
{
	uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
	const uint8_t *parts[2] = {hdr, body};
	size_t lens[2] = {sizeof hdr, len};
	for (int k = 0; k < 2; k++)
		for (size_t off = 0; off < lens[k];) {
			ssize_t w = send(fd, parts[k] + off, lens[k] - off, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
			off += (size_t)w;
		}
	return 0;
}

/* Runs the script at path for request id: 0 to go on, -1 to close the connection. */
static int fake_script(int fd, const char *path, const char *id)
{
	static char body[MU_WIRE_MAX_FRAME + 1];
	struct mu_error err = {0};
	uint8_t *text;
	size_t n;
	if (pal_read_file(path, MU_WIRE_MAX_FRAME, &text, &n, &err) != MU_OK) {
		fprintf(stderr, "tool_wire: fake enclave: %s\n", err.msg);
		size_t len = mu_msg_error(body, sizeof body, id, MU_WIRE_BAD_REQUEST, "no such script");
		return fake_send(fd, body, len);
	}
	int rc = 0;
	for (size_t at = 0; at < n && rc == 0;) {
		const char *line = (const char *)text + at, *nl = memchr(line, '\n', n - at);
		size_t ll = nl ? (size_t)(nl - line) : n - at;
		at += ll + 1;
		if (ll == 0)
			continue;
		if (ll > 7 && !memcmp(line, "@sleep:", 7)) {
			sleep_ms(strtol(line + 7, NULL, 10));
			continue;
		}
		if (ll == 6 && !memcmp(line, "@close", 6)) {
			rc = -1;
			break;
		}
		size_t len = 0, idl = strlen(id);
		for (size_t i = 0; i < ll;) {
			int is_id = ll - i >= 4 && !memcmp(line + i, "@ID@", 4);
			size_t add = is_id ? idl : 1;
			if (len + add > MU_WIRE_MAX_FRAME)
				die(1, "a script line is longer than a frame");
			memcpy(body + len, is_id ? id : line + i, add);
			len += add;
			i += is_id ? 4 : 1;
		}
		rc = fake_send(fd, body, len);
	}
	pal_free(text, n + 1);
	return rc;
}

/* Serves one connection until it closes (or a script closes it). */
static void fake_session(struct fake *f, int fd)
{
	static char out[MU_KBS_MAX_FRAME];
	static char path[MU_WIRE_MAX_FRAME + 1];
	struct conn *c = peer = malloc(sizeof *c);
	struct mu_error err = {0};
	struct mu_msg m;
	size_t len;
	if (!c)
		die(1, "out of memory");
	conn_init(c, fd, "proxy", MU_WIRE_MAX_FRAME);
	while (next_frame(c, &len)) {
		if (mu_msg_decode(&m, c->body, len, msg_mem, msg_mem_len, NULL) != MU_WIRE_OK)
			continue;
		int rc = 0;
		if (m.type == MU_MSG_HELLO) {
			uint8_t priv[32], pub[32];
			struct mu_dev_claims cl = {.config = f->config, .config_len = f->config_len};
			memcpy(cl.binary_sha256, f->binary_sha256, 32);
			memcpy(cl.sealed_header_sha256, f->header_sha256, 32);
			if (mu_x25519_keygen(priv, pub, &err) != MU_OK ||
			    mu_kbs_msg_evidence_dev(out, sizeof out, &len, m.hello.nonce, pub, f->measurement, f->key_id, &cl,
						    &err) != MU_OK)
				die(1, "fake enclave: evidence: %s", err.msg);
			mu_wipe(priv, sizeof priv);
			rc = fake_send(fd, out, len);
		} else if (m.type == MU_MSG_UNLOCK) {
			len = mu_msg_ready(out, sizeof out, "fake-enclave", 512, 64, 4096, 4096);
			rc = fake_send(fd, out, len);
			if (f->drop_after_ready)
				rc = -1;
		} else if (m.type == MU_MSG_GENERATE && m.generate.has_prompt) {
			snprintf(path, sizeof path, "%.*s", (int)m.generate.prompt.n, m.generate.prompt.p);
			rc = fake_script(fd, path, m.id);
		}
		if (rc != 0)
			break;
	}
	close(fd);
	free(c->body);
	free(c);
	peer = NULL;
}

static int fake_enclave(struct fake *f)
{
	struct mu_error err = {0};
	char bound[PAL_NET_ADDR_MAX];
	int lfd;
	fake_load(f);
	if (f->measure) {
		char hex[65];
		mu_hex(f->measurement, 32, hex);
		printf("measurement %s\n", hex);
		pal_free(f->config, f->config_len + 1);
		return 0;
	}
	if (pal_listen(f->addr, 8, &lfd, bound, sizeof bound, &err) != MU_OK)
		die(1, "%s", err.msg);
	fprintf(stderr, "tool_wire: listening on %s\n", bound);
	timeout_ms = 86400000; /* between frames a proxy may be idle as long as it likes */
	for (;;) {
		struct pollfd pl = {.fd = lfd, .events = POLLIN};
		int fd;
		if (poll(&pl, 1, -1) < 0 && errno != EINTR)
			die(2, "poll: %s", strerror(errno));
		if (pal_accept(lfd, 0, &fd, &err) != MU_OK)
			continue;
		fake_session(f, fd);
	}
}

static long seconds_ms(const char *flag, const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (!*s || *end || !(v >= 0) || v > 86400)
		die(1, "%s needs seconds (0..86400), not '%s'", flag, s);
	return (long)(v * 1000.0 + 0.5);
}

static void usage(void)
{
	fprintf(stderr, "usage: tool_wire --connect ADDR [--attest-kbs KBSADDR] [--timeout-ms MS] ACTION...\n"
			"actions: --send JSON | --send-hex HEX | --send-file PATH | --raw-hex HEX | --recv N |\n"
			"         --recv-until TYPE | --text-until-done | --sleep MS | --expect-close MS |\n"
			"         --count-bytes SEC\n"
			"       tool_wire --fake-enclave ADDR --config C --sealed M.mus [--measure] [--drop-after-ready]\n");
	exit(1);
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *kbs = NULL;
	struct fake fake = {0};
	acts = calloc((size_t)argc + 1, sizeof *acts);
	int n_acts = 0, rc = 0;
	if (!acts)
		die(1, "out of memory");
	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		struct action *x = &acts[n_acts];
		if (!strcmp(a, "--text-until-done")) {
			x->kind = A_TEXT;
			n_acts++;
			continue;
		}
		if (!strcmp(a, "--measure") || !strcmp(a, "--drop-after-ready")) {
			*(a[2] == 'm' ? &fake.measure : &fake.drop_after_ready) = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "tool_wire: %s: unknown flag or missing value\n", a);
			usage();
		}
		i++;
		if (!strcmp(a, "--connect"))
			addr = v;
		else if (!strcmp(a, "--fake-enclave"))
			fake.addr = v;
		else if (!strcmp(a, "--config"))
			fake.config_path = v;
		else if (!strcmp(a, "--sealed"))
			fake.sealed_path = v;
		else if (!strcmp(a, "--attest-kbs"))
			kbs = v;
		else if (!strcmp(a, "--timeout-ms"))
			timeout_ms = number(a, v);
		else if (!strcmp(a, "--send"))
			*x = (struct action){.kind = A_SEND, .data = (uint8_t *)v, .len = strlen(v)}, n_acts++;
		else if (!strcmp(a, "--send-hex"))
			x->kind = A_SEND, x->data = unhex_arg(a, v, &x->len), n_acts++;
		else if (!strcmp(a, "--send-file"))
			x->kind = A_SEND, x->data = file_arg(v, &x->len), n_acts++;
		else if (!strcmp(a, "--raw-hex"))
			x->kind = A_RAW, x->data = unhex_arg(a, v, &x->len), n_acts++;
		else if (!strcmp(a, "--recv"))
			x->kind = A_RECV, x->n = number(a, v), n_acts++;
		else if (!strcmp(a, "--recv-until"))
			x->kind = A_RECV_UNTIL, x->type = v, n_acts++;
		else if (!strcmp(a, "--sleep"))
			x->kind = A_SLEEP, x->n = number(a, v), n_acts++;
		else if (!strcmp(a, "--expect-close"))
			x->kind = A_EXPECT_CLOSE, x->n = number(a, v), n_acts++;
		else if (!strcmp(a, "--count-bytes"))
			x->kind = A_COUNT, x->n = seconds_ms(a, v), n_acts++;
		else {
			fprintf(stderr, "tool_wire: unknown flag %s\n", a);
			usage();
		}
	}
	msg_mem_len = mu_msg_mem_size(MU_WIRE_MAX_FRAME);
	msg_mem = malloc(msg_mem_len);
	if (fake.addr) {
		if (!msg_mem || !fake.config_path || !fake.sealed_path || addr || n_acts)
			usage();
		return fake_enclave(&fake);
	}
	if (!addr)
		usage();

	struct conn *c = peer = malloc(sizeof *c);
	if (!msg_mem || !c)
		die(1, "out of memory");
	struct mu_error err = {0};
	int fd;
	if (pal_connect(addr, (uint32_t)timeout_ms, 0, &fd, &err) != MU_OK)
		die(1, "%s", err.msg);
	conn_init(c, fd, "peer", MU_WIRE_MAX_FRAME);
	if (kbs) {
		c->name = "enclave";
		attest(c, kbs);
		c->name = "peer";
	}

	for (int i = 0; i < n_acts; i++) {
		struct action *x = &acts[i];
		switch (x->kind) {
		case A_SEND: send_frame(c, x->data, x->len); break;
		case A_RAW: send_all(c, x->data, x->len); break;
		case A_RECV: act_recv(c, x->n); break;
		case A_RECV_UNTIL: act_recv_until(c, x->type); break;
		case A_TEXT:
			if (act_text(c) != 0)
				rc = 4;
			break;
		case A_SLEEP: sleep_ms(x->n); break;
		case A_EXPECT_CLOSE: act_expect_close(c, x->n); break;
		case A_COUNT: act_count(c, x->n); break;
		}
	}
	fflush(stdout);
	close(c->fd);
	return rc;
}
