/* tool_kbs_client.c — plays the enclave against `mu kbs`, for tests/cli_kbs.sh.
 *
 *   tool_kbs_client --measure --binary B --config C --sealed M.mus
 *       prints "measurement HEX" and "key_id HEX" (what a policy lists for this enclave)
 *   tool_kbs_client --connect ADDR --binary B --config C --sealed M.mus [misbehaviour]
 *       makes an ephemeral X25519 key pair, says hello, answers the challenge with dev evidence
 *       built from the files (the sealed header is the first 128 bytes of M.mus, its key id at
 *       offset 56), unwraps the key and prints only "key_id HEX" and "key_sha256 HEX" — never
 *       the key — on stdout, and "insecure true|false" (the broker's marking) on stderr. A
 *       refusal prints "refused CODE: MESSAGE" and exits 3; a broken exchange prints
 *       "error: ..." and exits 1.
 *
 * Misbehaviours (each changes one thing; the exit code and output are those of the last
 * exchange):
 *   --reuse-nonce       after a successful exchange, answer a second connection's challenge
 *                       with the spent nonce
 *   --foreign-nonce     open two connections; the second answers with the first's nonce
 *   --wait-ms N         sleep N ms between the challenge and the evidence
 *   --pubkey HEX        send this public key instead of the ephemeral one
 *   --measurement HEX   claim this measurement instead of the one the claims hash to
 *   --key-id HEX        ask for this key id instead of the sealed header's
 *   --format NAME       name this evidence format
 *   --version N         say hello with this protocol version
 *   --body TEXT         after the challenge, send TEXT as the evidence frame's body
 *   --oversize          after the challenge, send a frame header one byte over the limit
 *   --stall-ms N        connect, send half a frame header, and wait up to N ms for the broker
 *   --unseal            after a release, unseal --sealed with the key into locked memory and
 *                       print its size, protection and the SHA-256 of a "canary" tensor
 *                       to close the connection: prints "closed after MS ms" or "still open"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "attest/evidence.h"
#include "attest/kbs_proto.h"
#include "base/limits.h"
#include "pal/net.h"
#include "pal/pal.h"
#include "engine/gguf.h"
#include "engine/pool.h"
#include "seal/crypto.h"
#include "seal/unseal.h"
#include "seal/sealed.h"
#include "wire/frame.h"

struct opts {
	const char *connect, *binary, *config, *sealed;
	int measure, reuse, foreign, oversize, unseal;
	long wait_ms, stall_ms, version;
	const char *pubkey, *measurement, *key_id, *format, *body;
};

struct enclave {
	uint8_t priv[32], pub[32];
	uint8_t binary_sha256[32], header_sha256[32], measurement[32], key_id[16];
	uint8_t *config;
	size_t config_len;
};

static void die(const char *fmt, const char *arg)
{
	printf("error: ");
	printf(fmt, arg);
	printf("\n");
	fflush(stdout);
	exit(1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int dial(const char *addr)
{
	struct mu_error err;
	int fd;
	if (pal_connect(addr, 10000, 0, &fd, &err) != MU_OK)
		die("%s", err.msg);
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("send failed: %s", strerror(errno));
		b += w;
		n -= (size_t)w;
	}
}

static void send_frame(int fd, const void *body, size_t len)
{
	uint8_t hdr[MU_FRAME_HDR];
	struct mu_error err;
	if (mu_frame_header(hdr, len, MU_KBS_MAX_FRAME, &err) != MU_OK)
		die("%s", err.msg);
	send_all(fd, hdr, sizeof hdr);
	send_all(fd, body, len);
}

/* Reads and parses one broker message. */
static void recv_msg(int fd, struct mu_kbs_reply_msg *m)
{
	static uint8_t buf[MU_KBS_MAX_FRAME];
	struct mu_frame_rd rd;
	struct mu_error err = {0};
	enum mu_frame_state st = MU_FRAME_MORE;
	mu_frame_rd_init(&rd, buf, sizeof buf);
	while (st != MU_FRAME_DONE) {
		uint8_t *p;
		size_t want;
		mu_frame_rd_space(&rd, &p, &want);
		ssize_t n = recv(fd, p, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("the broker closed the connection without a reply%s", "");
		if (mu_frame_rd_commit(&rd, (size_t)n, &st, &err) != MU_OK)
			die("bad frame from the broker: %s", err.msg);
	}
	if (mu_kbs_msg_parse(m, buf, mu_frame_rd_len(&rd), &err) != MU_OK)
		die("%s", err.msg);
}

static int print_refusal(const struct mu_kbs_reply_msg *m)
{
	printf("refused %s: %s\n", m->code_name, m->message);
	return 3;
}

/* hello → challenge on a new connection. Returns the fd, or -1 after printing a refusal. */
static int open_session(const struct opts *o, uint8_t nonce[32], int *rc)
{
	char hello[64];
	size_t len;
	struct mu_kbs_reply_msg m;
	struct mu_error err;
	int fd = dial(o->connect);
	if (o->version != MU_KBS_VERSION)
		len = (size_t)snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"version\":%ld}", o->version);
	else if (mu_kbs_msg_hello(hello, sizeof hello, &len, &err) != MU_OK)
		die("%s", err.msg);
	send_frame(fd, hello, len);
	recv_msg(fd, &m);
	if (m.type == MU_KBS_MSG_REFUSED) {
		*rc = print_refusal(&m);
		close(fd);
		return -1;
	}
	if (m.type != MU_KBS_MSG_CHALLENGE)
		die("expected a challenge%s", "");
	memcpy(nonce, m.nonce, 32);
	return fd;
}

static void unhex_arg(const char *flag, const char *s, uint8_t *out, size_t n)
{
	if (mu_unhex(s, strlen(s), out, n) != 0)
		die("%s needs hex of the right length", flag);
}

/* Sends evidence answering nonce on fd and handles the reply. */
/* --unseal: what the enclave does next. Unseals the model into locked memory with the released
 * key, parses the plaintext as GGUF and prints its size, the memory protection achieved and,
 * when the model has a tensor named "canary", the SHA-256 of that tensor's bytes — never the
 * bytes themselves. Nothing is written to disk. */
static int unseal_and_report(const char *path, const uint8_t key[32])
{
	struct mu_error err;
	struct pal_map map;
	struct mu_pool *pool = NULL;
	struct mu_unsealed u;
	struct gguf g;
	size_t need = 0;
	void *gmem = NULL;
	int rc = 1;

	memset(&u, 0, sizeof u);
	if (pal_map_file(&map, path, &err))
		goto out_msg;
	if (mu_pool_create(&pool, 2, &err) ||
	    mu_unseal(map.data, map.len, key, pool, MU_UNSEAL_ALLOW_UNLOCKED, path, &u, &err))
		goto out_msg;
	if (gguf_mem_size(u.mem.data, (size_t)u.size, &need, &err))
		goto out_msg;
	gmem = malloc(need ? need : 1);
	if (!gmem || gguf_parse(&g, u.mem.data, (size_t)u.size, gmem, need, &err))
		goto out_msg;
	printf("unsealed %llu bytes into %s memory, %llu tensors\n", (unsigned long long)u.size,
	       pal_secret_prot_name(u.mem.prot), (unsigned long long)g.n_tensors);
	const struct gguf_tensor *t = gguf_find_tensor(&g, "canary");
	if (t) {
		uint8_t d[32];
		char hex[65];
		mu_sha256(t->data, (size_t)t->size, d);
		mu_hex(d, 32, hex);
		printf("canary_sha256 %s\n", hex);
	}
	rc = 0;
	goto out;
out_msg:
	printf("error: %s\n", err.msg);
out:
	free(gmem);
	mu_unsealed_free(&u);
	if (pool)
		mu_pool_destroy(pool);
	pal_unmap(&map);
	return rc;
}

static int answer(const struct opts *o, struct enclave *e, int fd, const uint8_t nonce[32])
{
	static char msg[MU_KBS_MAX_FRAME];
	struct mu_error err = {0};
	struct mu_kbs_reply_msg m;
	uint8_t pub[32], measurement[32], key_id[16];
	size_t len;
	memcpy(pub, e->pub, 32);
	memcpy(measurement, e->measurement, 32);
	memcpy(key_id, e->key_id, 16);
	if (o->pubkey)
		unhex_arg("--pubkey", o->pubkey, pub, 32);
	if (o->measurement)
		unhex_arg("--measurement", o->measurement, measurement, 32);
	if (o->key_id)
		unhex_arg("--key-id", o->key_id, key_id, 16);
	if (o->wait_ms)
		sleep_ms(o->wait_ms);
	if (o->oversize) {
		uint8_t hdr[4] = {0, 1, 0, 1}; /* 65537 bytes */
		send_all(fd, hdr, sizeof hdr);
	} else if (o->body) {
		send_frame(fd, o->body, strlen(o->body));
	} else {
		struct mu_dev_claims c = {.config = e->config, .config_len = e->config_len};
		memcpy(c.binary_sha256, e->binary_sha256, 32);
		memcpy(c.sealed_header_sha256, e->header_sha256, 32);
		if (mu_kbs_msg_evidence_dev(msg, sizeof msg, &len, nonce, pub, measurement, key_id, &c, &err) != MU_OK)
			die("%s", err.msg);
		if (o->format) { /* rename the format: "format":"dev" is written once, near the start */
			char *at = strstr(msg, "\"format\":\"dev\"");
			size_t fl = strlen(o->format);
			if (!at || len + fl > sizeof msg - 1)
				die("cannot rename the format%s", "");
			memmove(at + 10 + fl, at + 13, len - (size_t)(at + 13 - msg) + 1);
			memcpy(at + 10, o->format, fl);
			len = len - 3 + fl;
		}
		send_frame(fd, msg, len);
	}
	recv_msg(fd, &m);
	if (m.type == MU_KBS_MSG_REFUSED)
		return print_refusal(&m);
	if (m.type != MU_KBS_MSG_KEY)
		die("expected a key or a refusal%s", "");
	uint8_t key[32], digest[32];
	char hex[65];
	if (memcmp(m.key_id, key_id, 16) != 0)
		die("the broker answered for another key id%s", "");
	if (mu_kbs_unwrap(e->priv, e->pub, nonce, e->measurement, key_id, m.wrapped.eph_pub, m.wrapped.ciphertext,
			  m.wrapped.tag, key, &err) != MU_OK)
		die("%s", err.msg);
	mu_sha256(key, sizeof key, digest);
	if (o->unseal && unseal_and_report(o->sealed, key) != 0) {
		mu_wipe(key, sizeof key);
		die("unsealing with the released key failed%s", "");
	}
	mu_wipe(key, sizeof key);
	mu_hex(m.key_id, 16, hex);
	printf("key_id %s\n", hex);
	mu_hex(digest, 32, hex);
	printf("key_sha256 %s\n", hex);
	fprintf(stderr, "insecure %s\n", m.insecure ? "true" : "false");
	return 0;
}

static void load(struct enclave *e, const struct opts *o)
{
	struct mu_error err = {0};
	uint8_t *p;
	size_t n;
	if (pal_read_file(o->binary, (size_t)1 << 32, &p, &n, &err) != MU_OK)
		die("%s", err.msg);
	mu_sha256(p, n, e->binary_sha256);
	pal_free(p, n + 1);
	if (pal_read_file(o->config, MU_KBS_MAX_FRAME, &e->config, &e->config_len, &err) != MU_OK)
		die("%s", err.msg);
	if (pal_read_file(o->sealed, (size_t)1 << 40, &p, &n, &err) != MU_OK)
		die("%s", err.msg);
	if (n < MU_SEALED_HEADER_LEN)
		die("%s is shorter than a sealed header", o->sealed);
	mu_sha256(p, MU_SEALED_HEADER_LEN, e->header_sha256);
	memcpy(e->key_id, p + MU_SEALED_OFF_KEY_ID, 16);
	pal_free(p, n + 1);
	mu_measure(e->binary_sha256, e->config, e->config_len, e->header_sha256, e->measurement);
}

static long num(const char *flag, const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0)
		die("%s needs a non-negative number", flag);
	return v;
}

static int stall(const struct opts *o)
{
	int fd = dial(o->connect);
	uint8_t half[2] = {0, 0};
	uint8_t b;
	send_all(fd, half, sizeof half);
	struct timeval tv = {o->stall_ms / 1000, (o->stall_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	uint64_t t0 = pal_now_ns();
	ssize_t n = recv(fd, &b, 1, 0);
	long ms = (long)((pal_now_ns() - t0) / 1000000u);
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		printf("closed after %ld ms\n", ms);
	else
		printf("still open after %ld ms\n", ms);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.version = MU_KBS_VERSION};
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;
		if (!strcmp(a, "--measure"))
			o.measure = 1, takes = 0;
		else if (!strcmp(a, "--reuse-nonce"))
			o.reuse = 1, takes = 0;
		else if (!strcmp(a, "--foreign-nonce"))
			o.foreign = 1, takes = 0;
		else if (!strcmp(a, "--oversize"))
			o.oversize = 1, takes = 0;
		else if (!strcmp(a, "--unseal"))
			o.unseal = 1, takes = 0;
		else if (!v)
			die("%s: unknown flag or missing value", a);
		else if (!strcmp(a, "--connect"))
			o.connect = v;
		else if (!strcmp(a, "--binary"))
			o.binary = v;
		else if (!strcmp(a, "--config"))
			o.config = v;
		else if (!strcmp(a, "--sealed"))
			o.sealed = v;
		else if (!strcmp(a, "--wait-ms"))
			o.wait_ms = num(a, v);
		else if (!strcmp(a, "--stall-ms"))
			o.stall_ms = num(a, v);
		else if (!strcmp(a, "--version"))
			o.version = num(a, v);
		else if (!strcmp(a, "--pubkey"))
			o.pubkey = v;
		else if (!strcmp(a, "--measurement"))
			o.measurement = v;
		else if (!strcmp(a, "--key-id"))
			o.key_id = v;
		else if (!strcmp(a, "--format"))
			o.format = v;
		else if (!strcmp(a, "--body"))
			o.body = v;
		else
			die("unknown flag %s", a);
		i += takes;
	}
	if (o.stall_ms) {
		if (!o.connect)
			die("--stall-ms needs --connect%s", "");
		return stall(&o);
	}
	if (!o.binary || !o.config || !o.sealed || (!o.measure && !o.connect))
		die("need --binary, --config, --sealed and --connect (or --measure)%s", "");

	struct enclave e;
	struct mu_error err = {0};
	char hex[65];
	memset(&e, 0, sizeof e);
	load(&e, &o);
	uint8_t nonce[32], other[32];
	int rc = 0, fd, fd2;
	if (o.measure) {
		mu_hex(e.measurement, 32, hex);
		printf("measurement %s\n", hex);
		mu_hex(e.key_id, 16, hex);
		printf("key_id %s\n", hex);
		goto out;
	}
	if (mu_x25519_keygen(e.priv, e.pub, &err) != MU_OK)
		die("%s", err.msg);
	if (o.reuse) {
		struct opts plain = o;
		plain.reuse = 0;
		if ((fd = open_session(&plain, nonce, &rc)) < 0)
			goto out;
		rc = answer(&plain, &e, fd, nonce);
		close(fd);
		if ((fd = open_session(&o, other, &rc)) < 0)
			goto out;
		rc = answer(&o, &e, fd, nonce); /* the spent nonce, not `other` */
		close(fd);
	} else if (o.foreign) {
		if ((fd = open_session(&o, nonce, &rc)) < 0)
			goto out;
		if ((fd2 = open_session(&o, other, &rc)) < 0) {
			close(fd);
			goto out;
		}
		rc = answer(&o, &e, fd2, nonce); /* the first connection's nonce */
		close(fd2);
		close(fd);
	} else {
		if ((fd = open_session(&o, nonce, &rc)) < 0)
			goto out;
		rc = answer(&o, &e, fd, nonce);
		close(fd);
	}
out:
	mu_wipe(e.priv, sizeof e.priv);
	pal_free(e.config, e.config_len + 1);
	return rc;
}
