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

#include "attest/kbs_proto.h"
#include "base/limits.h"
#include "pal/net.h"
#include "pal/pal.h"
#include "seal/crypto.h"
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
static struct conn *peer, *broker;

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
			"         --count-bytes SEC\n");
	exit(1);
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *kbs = NULL;
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
		if (!v) {
			fprintf(stderr, "tool_wire: %s: unknown flag or missing value\n", a);
			usage();
		}
		i++;
		if (!strcmp(a, "--connect"))
			addr = v;
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
	if (!addr)
		usage();

	msg_mem_len = mu_msg_mem_size(MU_WIRE_MAX_FRAME);
	msg_mem = malloc(msg_mem_len);
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
