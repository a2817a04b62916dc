/* test_kbs.c — the key broker core, driven in-process with injected time.
 *
 * - Known answers from an independent implementation (Python `cryptography` 48 and hashlib):
 *   the wrap (X25519 + HKDF-SHA256 + AES-256-GCM), measurement v1, the key id.
 * - Unwrap must-fail: every input of the construction changed in turn.
 * - The must-refuse table: each bad evidence refused with its stable code, one audit record with
 *   that code, and nothing key-derived in the reply (no eph_pub, ciphertext or tag; strict
 *   parse of the reply allows only type, code and message).
 * - The success path: the unwrapped key equals the model key, the audit record says release.
 * - The egress table: the config's rate, burst (given, at the policy's maximum, one above it,
 *   absent = the enclave's default) and the test-build key test_no_egress_limit, under policies
 *   with and without allow_dev_evidence, decided by mu_policy_check_egress and end to end
 *   through the core.
 * - Malformed frames and messages; the frame reader; the nonce table's bounds and eviction;
 *   the policy parser; the enclave-side message parser; the JSON writer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/evidence.h"
#include "attest/kbs_proto.h"
#include "attest/policy.h"
#include "base/limits.h"
#include "host/kbs.h"
#include "pal/pal.h"
#include "seal/crypto.h"
#include "seal/sealed.h"
#include "test.h"
#include "wire/frame.h"
#include "wire/json.h"
#include "wire/json_write.h"

static void unhex(const char *s, uint8_t *out, size_t n)
{
	if (mu_unhex(s, strlen(s), out, n) != 0) {
		fprintf(stderr, "bad hex in test: %s\n", s);
		exit(2);
	}
}

/* ---- known answers ---- */

static void test_wrap_kat(void)
{
	uint8_t eph_priv[32], enc_priv[32], nonce[32], key[32], meas[32], enc_pub[32], kid[16], want[32];
	struct mu_kbs_wrapped w;
	struct mu_error err;
	for (int i = 0; i < 32; i++) {
		eph_priv[i] = (uint8_t)(1 + i);
		enc_priv[i] = (uint8_t)(0x41 + i);
		nonce[i] = 0xa5;
		key[i] = (uint8_t)(0x80 + i);
	}
	mu_sha256("measurement", 11, meas);
	mu_sealed_key_id(key, kid);
	unhex("f80e6ab3153ea9bf24870bdc14c47290", want, 16);
	CHECK(memcmp(kid, want, 16) == 0, "key id differs from HMAC-SHA256(key, \"mu-seal key id v1\")[0..16)");
	unhex("64b101b1d0be5a8704bd078f9895001fc03e8e9f9522f188dd128d9846d48466", enc_pub, 32);
	CHECK(mu_kbs_wrap_with(eph_priv, key, kid, enc_pub, nonce, meas, &w, &err) == MU_OK, "%s", err.msg);
	unhex("07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c", want, 32);
	CHECK(memcmp(w.eph_pub, want, 32) == 0, "eph_pub");
	unhex("a186aa118536b4c75e652edde175496fa9f3bc40533854677332d2be4fe2952c", want, 32);
	CHECK(memcmp(w.ciphertext, want, 32) == 0, "ciphertext");
	unhex("a5f8066c5e0d733752cc9eb64aad8848", want, 16);
	CHECK(memcmp(w.tag, want, 16) == 0, "tag");

	/* the enclave side recovers the key; every other input fails and leaves zeros */
	uint8_t got[32];
	CHECK(mu_kbs_unwrap(enc_priv, enc_pub, nonce, meas, kid, w.eph_pub, w.ciphertext, w.tag, got, &err) == MU_OK,
	      "%s", err.msg);
	CHECK(memcmp(got, key, 32) == 0, "unwrapped key differs");
	static const uint8_t zero[32];
	for (int field = 0; field < 8; field++) {
		uint8_t n2[32], m2[32], k2[16], e2[32], c2[32], t2[16], p2[32], s2[32];
		memcpy(n2, nonce, 32);
		memcpy(m2, meas, 32);
		memcpy(k2, kid, 16);
		memcpy(e2, w.eph_pub, 32);
		memcpy(c2, w.ciphertext, 32);
		memcpy(t2, w.tag, 16);
		memcpy(p2, enc_pub, 32);
		memcpy(s2, enc_priv, 32);
		uint8_t *flip[8] = {n2, m2, k2, e2, c2, t2, p2, s2};
		flip[field][field == 7 ? 5 : 3] ^= 0x10; /* byte 5 of the private key survives clamping */
		memset(got, 0xee, sizeof got);
		enum mu_err rc = mu_kbs_unwrap(s2, p2, n2, m2, k2, e2, c2, t2, got, &err);
		CHECK(rc == MU_ERR_AUTH, "unwrap with input %d changed: %d", field, rc);
		CHECK(memcmp(got, zero, 32) == 0, "key not zeroed after failure %d", field);
	}
	/* a low-order ephemeral key from a malicious broker */
	memset(got, 0xee, sizeof got);
	CHECK(mu_kbs_unwrap(enc_priv, enc_pub, nonce, meas, kid, zero, w.ciphertext, w.tag, got, &err) == MU_ERR_AUTH,
	      "low-order eph_pub accepted");
	CHECK(memcmp(got, zero, 32) == 0, "key not zeroed");

	/* fresh ephemeral keys: two wraps differ, both unwrap */
	struct mu_kbs_wrapped w1, w2;
	CHECK(mu_kbs_wrap(key, kid, enc_pub, nonce, meas, &w1, &err) == MU_OK, "%s", err.msg);
	CHECK(mu_kbs_wrap(key, kid, enc_pub, nonce, meas, &w2, &err) == MU_OK, "%s", err.msg);
	CHECK(memcmp(w1.eph_pub, w2.eph_pub, 32) != 0 && memcmp(w1.ciphertext, w2.ciphertext, 32) != 0,
	      "two wraps share an ephemeral key");
	CHECK(mu_kbs_unwrap(enc_priv, enc_pub, nonce, meas, kid, w2.eph_pub, w2.ciphertext, w2.tag, got, &err) == MU_OK &&
		      memcmp(got, key, 32) == 0,
	      "random wrap does not unwrap");
}

static void test_measure_kat(void)
{
	uint8_t bin[32], hdr[128], hdr_sha[32], m[32], want[32];
	static const char cfg[] = "{\"egress_bytes_per_s\":1024}";
	mu_sha256("enclave binary", 14, bin);
	for (int i = 0; i < 128; i++)
		hdr[i] = (uint8_t)i;
	mu_sha256(hdr, sizeof hdr, hdr_sha);
	mu_measure(bin, (const uint8_t *)cfg, sizeof cfg - 1, hdr_sha, m);
	unhex("6c583dea0d6e602fb5e09d704d93d5ef57d1d4e8aa7ff4bcd378ad39261d69be", want, 32);
	CHECK(memcmp(m, want, 32) == 0, "measurement v1 differs from the hashlib computation");
}

/* ---- a broker and an enclave for the tables ---- */

#define TTL 30000u

struct world {
	struct mu_kbs *k;
	void *mem;
	uint8_t key1[32], key2[32], key3[32];  /* 1: allowed+held, 2: held not allowed, 3: allowed not held */
	uint8_t id1[16], id2[16], id3[16];
	uint8_t bin[32], hdr[32];
	uint8_t m_ok[32], m_hi[32], m_other[32]; /* listed; listed with a too-high cap; unlisted */
	struct mu_policy policy;
};

static const char cfg_ok[] = "{\"egress_bytes_per_s\": 1024, \"model\": \"m.mus\"}";
static const char cfg_hi[] = "{\"egress_bytes_per_s\": 8192}";
static const char cfg_none[] = "{\"model\": \"m.mus\"}";

static void world_init(struct world *w, int allow_dev, int with_policy)
{
	struct mu_error err = {0};
	size_t len;
	memset(w, 0, sizeof *w);
	for (int i = 0; i < 32; i++) {
		w->key1[i] = (uint8_t)(i * 7 + 1);
		w->key2[i] = (uint8_t)(i * 11 + 2);
		w->key3[i] = (uint8_t)(i * 13 + 3);
	}
	mu_sha256("enclave binary", 14, w->bin);
	mu_sha256("sealed header", 13, w->hdr);
	mu_measure(w->bin, (const uint8_t *)cfg_ok, sizeof cfg_ok - 1, w->hdr, w->m_ok);
	mu_measure(w->bin, (const uint8_t *)cfg_hi, sizeof cfg_hi - 1, w->hdr, w->m_hi);
	mu_sha256("other", 5, w->m_other);
	mu_sealed_key_id(w->key3, w->id3);
	if (mu_kbs_mem_size(&len, &err) != MU_OK || !(w->mem = malloc(len)) || mu_kbs_init(&w->k, w->mem, len, &err)) {
		fprintf(stderr, "broker init: %s\n", err.msg);
		exit(2);
	}
	CHECK(mu_kbs_policy(w->k) == NULL, "a fresh broker has a policy");
	CHECK(mu_kbs_add_key(w->k, w->key1, w->id1, &err) == MU_OK, "%s", err.msg);
	CHECK(mu_kbs_add_key(w->k, w->key2, w->id2, &err) == MU_OK, "%s", err.msg);
	uint8_t dup[16];
	CHECK(mu_kbs_add_key(w->k, w->key1, dup, &err) == MU_ERR_ARG, "duplicate key accepted");

	char m_ok[65], m_hi[65], i1[33], i3[33], doc[1024];
	mu_hex(w->m_ok, 32, m_ok);
	mu_hex(w->m_hi, 32, m_hi);
	mu_hex(w->id1, 16, i1);
	mu_hex(w->id3, 16, i3);
	int n = snprintf(doc, sizeof doc,
			 "{\"version\":1,\"allow_dev_evidence\":%s,\"nonce_ttl_ms\":%u,\"max_egress_bytes_per_s\":4096,"
			 "\"measurements\":{\"%s\":{\"key_ids\":[\"%s\",\"%s\"],\"note\":\"test enclave\"},"
			 "\"%s\":{\"key_ids\":[\"%s\"]}}}",
			 allow_dev ? "true" : "false", TTL, m_ok, i1, i3, m_hi, i1);
	CHECK(mu_policy_parse(&w->policy, (const uint8_t *)doc, (size_t)n, &err) == MU_OK, "%s", err.msg);
	if (with_policy)
		mu_kbs_set_policy(w->k, &w->policy);
}

static void world_free(struct world *w)
{
	mu_kbs_wipe(w->k);
	free(w->mem);
}

struct sess {
	struct mu_kbs_conn c;
	uint8_t nonce[32];
	uint8_t priv[32], pub[32];
};

static struct mu_kbs_reply reply; /* 2 KiB: keep it off the stack */

static int say_hello(struct world *w, struct sess *s, uint64_t now)
{
	static const char hello[] = "{\"type\":\"hello\",\"version\":1}";
	struct mu_kbs_reply_msg m;
	struct mu_error err;
	mu_kbs_conn_open(w->k, &s->c, "test");
	if (mu_x25519_keygen(s->priv, s->pub, &err) != MU_OK)
		exit(2);
	mu_kbs_handle(w->k, &s->c, (const uint8_t *)hello, sizeof hello - 1, now, &reply);
	if (mu_kbs_msg_parse(&m, reply.body, reply.len, &err) != MU_OK || m.type != MU_KBS_MSG_CHALLENGE)
		return -1;
	CHECK(!reply.close && !reply.d.made && m.expires_in_ms == TTL, "challenge");
	memcpy(s->nonce, m.nonce, 32);
	return 0;
}

/* What to send as evidence; NULL/0 fields mean the honest value. */
struct ev {
	const uint8_t *nonce;
	const char *pubkey_hex; /* raw text of the pubkey member */
	const uint8_t *pubkey;
	const uint8_t *measurement;
	const uint8_t *key_id;
	const char *config;
	const uint8_t *bin;
	int lie;          /* claim a measurement of other claims */
	const char *fmt;  /* format name */
};

static void send_evidence(struct world *w, struct sess *s, const struct ev *e, uint64_t now)
{
	static char msg[MU_KBS_MAX_FRAME];
	struct mu_dev_claims c;
	struct mu_error err;
	size_t len;
	const char *cfg = e->config ? e->config : cfg_ok;
	uint8_t meas[32];
	memset(&c, 0, sizeof c);
	memcpy(c.binary_sha256, e->bin ? e->bin : w->bin, 32);
	memcpy(c.sealed_header_sha256, w->hdr, 32);
	c.config = (const uint8_t *)cfg;
	c.config_len = strlen(cfg);
	mu_measure(c.binary_sha256, c.config, c.config_len, c.sealed_header_sha256, meas);
	if (e->lie)
		memcpy(meas, w->m_ok, 32), c.binary_sha256[0] ^= 1;
	if (e->measurement)
		memcpy(meas, e->measurement, 32);
	if (mu_kbs_msg_evidence_dev(msg, sizeof msg, &len, e->nonce ? e->nonce : s->nonce, e->pubkey ? e->pubkey : s->pub,
				    meas, e->key_id ? e->key_id : w->id1, &c, &err) != MU_OK)
		exit(2);
	if (e->pubkey_hex || e->fmt) { /* splice raw member text in place of the honest one */
		char out[MU_KBS_MAX_FRAME];
		const char *name = e->pubkey_hex ? "\"pubkey\":\"" : "\"format\":\"";
		char *at = strstr(msg, name);
		char *end = strchr(at + strlen(name), '"');
		int n = snprintf(out, sizeof out, "%.*s%s%s", (int)(at - msg), msg,
				 e->pubkey_hex ? "\"pubkey\":" : "\"format\":", e->pubkey_hex ? e->pubkey_hex : e->fmt);
		n += snprintf(out + n, sizeof out - (size_t)n, "%s", end + 1);
		memcpy(msg, out, (size_t)n + 1);
		len = (size_t)n;
	}
	mu_kbs_handle(w->k, &s->c, (const uint8_t *)msg, len, now, &reply);
}

/* Decision d's audit members as a whole JSON object in line (as the server writes them after
 * mu_audit_begin's own members); its length, 0 when it did not fit. */
static size_t audit_obj(const struct mu_kbs_conn *c, const struct mu_kbs_decision *d, char *line, size_t cap)
{
	struct jsonw jw;
	size_t n = 0;
	jsonw_init(&jw, line, cap);
	jsonw_begin(&jw, NULL);
	mu_kbs_audit_members(&jw, c, d);
	jsonw_end(&jw);
	return jsonw_finish(&jw, &n) == MU_OK ? n : 0;
}

/* The reply is a refusal with this code: strict parse (nothing key-derived can hide in it),
 * the connection closes, and the audit line records it. */
static void expect_refusal(const struct mu_kbs_conn *c, enum mu_kbs_code want, const char *what)
{
	struct mu_kbs_reply_msg m;
	struct mu_error err = {0};
	char line[MU_KBS_AUDIT_MAX], needle[64];
	enum mu_err rc = mu_kbs_msg_parse(&m, reply.body, reply.len, &err);
	CHECK(rc == MU_OK && m.type == MU_KBS_MSG_REFUSED, "%s: not a refusal: %.*s", what, (int)reply.len,
	      (const char *)reply.body);
	CHECK(m.code == want, "%s: code %s, want %s", what, m.code_name, mu_kbs_code_name(want));
	CHECK(reply.close && reply.d.made && reply.d.code == want, "%s: decision", what);
	CHECK(!strstr((const char *)reply.body, "eph_pub") && !strstr((const char *)reply.body, "ciphertext"),
	      "%s: key material in a refusal", what);
	size_t n = audit_obj(c, &reply.d, line, sizeof line);
	snprintf(needle, sizeof needle, "\"decision\":\"refuse\",\"code\":\"%s\"", mu_kbs_code_name(want));
	CHECK(n > 0 && line[0] == '{' && line[n - 1] == '}' && strstr(line, needle), "%s: audit record %s", what, line);
}

/* Success: the key unwraps to the model key; the audit record says release. */
static void expect_release(struct world *w, const struct sess *s, const uint8_t *key, const uint8_t *id,
			   const uint8_t *meas, const char *what)
{
	struct mu_kbs_reply_msg m;
	struct mu_error err = {0};
	uint8_t got[32];
	char line[MU_KBS_AUDIT_MAX], key_hex[65];
	CHECK(mu_kbs_msg_parse(&m, reply.body, reply.len, &err) == MU_OK && m.type == MU_KBS_MSG_KEY,
	      "%s: not a key: %.*s", what, (int)reply.len, (const char *)reply.body);
	CHECK(reply.close && reply.d.made && reply.d.code == MU_KBS_OK && m.insecure, "%s: decision", what);
	CHECK(mu_kbs_unwrap(s->priv, s->pub, s->nonce, meas, id, m.wrapped.eph_pub, m.wrapped.ciphertext, m.wrapped.tag,
			    got, &err) == MU_OK,
	      "%s: unwrap: %s", what, err.msg);
	CHECK(memcmp(got, key, 32) == 0, "%s: unwrapped key differs from the model key", what);
	mu_hex(key, 32, key_hex);
	CHECK(!strstr((const char *)reply.body, key_hex), "%s: plaintext key in the reply", what);
	size_t n = audit_obj(&s->c, &reply.d, line, sizeof line);
	CHECK(n > 0 && strstr(line, "\"decision\":\"release\",\"code\":\"ok\",\"format\":\"dev\",\"insecure\":true") &&
		      !strstr(line, key_hex),
	      "%s: audit line %s", what, line);
	(void)w;
}

/* X25519 points of small order, and their non-canonical encodings (u + p, and with bit 255
 * set, which X25519 ignores). From the lists in Bernstein's curve25519 page and libsodium's
 * blocklist: 0, 1, the two points of order 8, p - 1, p, p + 1. */
static const char *const low_order[] = {
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"0000000000000000000000000000000000000000000000000000000000000080",
	"0100000000000000000000000000000000000000000000000000000000000080",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
};

static void test_release(void)
{
	struct world w;
	struct sess s;
	world_init(&w, 1, 1);
	CHECK(say_hello(&w, &s, 1000) == 0, "hello");
	send_evidence(&w, &s, &(struct ev){0}, 1000 + TTL - 1);
	expect_release(&w, &s, w.key1, w.id1, w.m_ok, "honest evidence, one ms before expiry");
	CHECK(s.c.state == MU_KBS_CONN_DONE, "connection not done");
	world_free(&w);
}

static void test_refusals(void)
{
	struct world w;
	struct sess a, b;
	uint8_t pk[32], zero_nonce[32] = {0}, meas[32];

	world_init(&w, 1, 1);

	/* reused nonce: a's exchange succeeds; b answers with a's spent nonce */
	say_hello(&w, &a, 100);
	send_evidence(&w, &a, &(struct ev){0}, 200);
	expect_release(&w, &a, w.key1, w.id1, w.m_ok, "first use");
	say_hello(&w, &b, 300);
	send_evidence(&w, &b, &(struct ev){.nonce = a.nonce}, 400);
	expect_refusal(&b.c, MU_KBS_NONCE_REUSED, "reused nonce");
	/* and the same connection again, after its own refusal: the exchange is over */
	send_evidence(&w, &b, &(struct ev){0}, 400);
	expect_refusal(&b.c, MU_KBS_BAD_MESSAGE, "evidence after the exchange ended");

	/* expired nonce: exactly ttl after issue */
	say_hello(&w, &a, 1000);
	send_evidence(&w, &a, &(struct ev){0}, 1000 + TTL);
	expect_refusal(&a.c, MU_KBS_NONCE_EXPIRED, "expired nonce");
	/* an expired nonce is spent too */
	say_hello(&w, &b, 1000 + TTL);
	send_evidence(&w, &b, &(struct ev){.nonce = a.nonce}, 1000 + TTL);
	expect_refusal(&b.c, MU_KBS_NONCE_REUSED, "expired then reused nonce");

	/* nonce of another session; the owner can still use it */
	say_hello(&w, &a, 2000);
	say_hello(&w, &b, 2000);
	send_evidence(&w, &b, &(struct ev){.nonce = a.nonce}, 2001);
	expect_refusal(&b.c, MU_KBS_NONCE_FOREIGN, "nonce from another session");
	send_evidence(&w, &a, &(struct ev){0}, 2002);
	expect_release(&w, &a, w.key1, w.id1, w.m_ok, "owner after a foreign attempt");

	/* nonce never issued; evidence without hello */
	say_hello(&w, &a, 3000);
	send_evidence(&w, &a, &(struct ev){.nonce = zero_nonce}, 3000);
	expect_refusal(&a.c, MU_KBS_NONCE_UNKNOWN, "nonce never issued");
	mu_kbs_conn_open(w.k, &b.c, "test");
	memset(b.nonce, 0x42, 32);
	send_evidence(&w, &b, &(struct ev){0}, 3000);
	expect_refusal(&b.c, MU_KBS_NONCE_UNKNOWN, "evidence without hello");

	/* a closed connection's unanswered nonce is forgotten */
	say_hello(&w, &a, 3500);
	mu_kbs_conn_close(w.k, &a.c);
	say_hello(&w, &b, 3500);
	send_evidence(&w, &b, &(struct ev){.nonce = a.nonce}, 3500);
	expect_refusal(&b.c, MU_KBS_NONCE_UNKNOWN, "nonce of a closed connection");

	/* measurement not in the policy (honest claims of another binary) */
	uint8_t other_bin[32];
	mu_sha256("another binary", 14, other_bin);
	say_hello(&w, &a, 4000);
	send_evidence(&w, &a, &(struct ev){.bin = other_bin}, 4000);
	expect_refusal(&a.c, MU_KBS_MEASUREMENT_NOT_ALLOWED, "measurement not in policy");

	/* model not allowed for that measurement (the broker holds key 2, the policy does not
	 * list it under m_ok) */
	say_hello(&w, &a, 4100);
	send_evidence(&w, &a, &(struct ev){.key_id = w.id2}, 4100);
	expect_refusal(&a.c, MU_KBS_MODEL_NOT_ALLOWED, "model not allowed for measurement");

	/* unknown model: allowed by the policy, no key held */
	say_hello(&w, &a, 4200);
	send_evidence(&w, &a, &(struct ev){.key_id = w.id3}, 4200);
	expect_refusal(&a.c, MU_KBS_UNKNOWN_MODEL, "unknown model");

	/* egress cap above the policy's (measurement listed, key allowed) */
	say_hello(&w, &a, 4300);
	send_evidence(&w, &a, &(struct ev){.config = cfg_hi}, 4300);
	expect_refusal(&a.c, MU_KBS_EGRESS_CAP_TOO_HIGH, "egress cap above policy");

	/* egress cap missing */
	say_hello(&w, &a, 4400);
	send_evidence(&w, &a, &(struct ev){.config = cfg_none}, 4400);
	expect_refusal(&a.c, MU_KBS_EGRESS_CAP_MISSING, "egress cap missing");

	/* claims that do not hash to the claimed measurement */
	say_hello(&w, &a, 4500);
	send_evidence(&w, &a, &(struct ev){.lie = 1}, 4500);
	expect_refusal(&a.c, MU_KBS_MEASUREMENT_MISMATCH, "claims not hashing to the measurement");
	mu_sha256("made up", 7, meas);
	say_hello(&w, &a, 4600);
	send_evidence(&w, &a, &(struct ev){.measurement = meas}, 4600);
	expect_refusal(&a.c, MU_KBS_MEASUREMENT_MISMATCH, "made-up measurement");

	/* unknown evidence format */
	say_hello(&w, &a, 4700);
	send_evidence(&w, &a, &(struct ev){.fmt = "\"tpm2-quote-v9\""}, 4700);
	expect_refusal(&a.c, MU_KBS_UNKNOWN_FORMAT, "unknown format");

	/* malformed public keys: not hex, upper-case, too short, too long, not a string */
	static const char *const bad_pub[] = {
		"\"zz00000000000000000000000000000000000000000000000000000000000000\"",
		"\"E0EB7A7C3B41B8AE1656E3FAF19FC46ADA098DEB9C32B1FD866205165F49B800\"",
		"\"00000000000000000000000000000000000000000000000000000000000009\"",
		"\"090000000000000000000000000000000000000000000000000000000000000000\"",
		"\"\"",
		"9",
		"null",
		"[\"09\"]",
	};
	for (size_t i = 0; i < sizeof bad_pub / sizeof bad_pub[0]; i++) {
		say_hello(&w, &a, 5000);
		send_evidence(&w, &a, &(struct ev){.pubkey_hex = bad_pub[i]}, 5000);
		expect_refusal(&a.c, MU_KBS_BAD_PUBKEY, bad_pub[i]);
	}
	/* every low-order point */
	for (size_t i = 0; i < sizeof low_order / sizeof low_order[0]; i++) {
		unhex(low_order[i], pk, 32);
		say_hello(&w, &a, 5100);
		send_evidence(&w, &a, &(struct ev){.pubkey = pk}, 5100);
		expect_refusal(&a.c, MU_KBS_BAD_PUBKEY, low_order[i]);
	}
	world_free(&w);

	/* dev evidence when the policy does not allow it */
	world_init(&w, 0, 1);
	say_hello(&w, &a, 100);
	send_evidence(&w, &a, &(struct ev){0}, 100);
	expect_refusal(&a.c, MU_KBS_FORMAT_NOT_ALLOWED, "dev evidence not allowed");
	CHECK(strstr(reply.message, "INSECURE") != NULL, "dev refusal not marked insecure: %s", reply.message);
	world_free(&w);

	/* no policy: hello and evidence both refused */
	world_init(&w, 1, 0);
	mu_kbs_conn_open(w.k, &a.c, "test");
	mu_kbs_handle(w.k, &a.c, (const uint8_t *)"{\"type\":\"hello\",\"version\":1}", 28, 100, &reply);
	expect_refusal(&a.c, MU_KBS_NO_POLICY, "hello without policy");
	mu_kbs_conn_open(w.k, &b.c, "test");
	memset(b.nonce, 1, 32);
	send_evidence(&w, &b, &(struct ev){0}, 100);
	expect_refusal(&b.c, MU_KBS_NO_POLICY, "evidence without policy");
	mu_kbs_conn_open(w.k, &b.c, "test");
	mu_kbs_handle(w.k, &b.c, (const uint8_t *)"garbage", 7, 100, &reply);
	expect_refusal(&b.c, MU_KBS_NO_POLICY, "garbage without policy");
	world_free(&w);
}

/* ---- malformed messages ---- */

struct bad_msg {
	const char *body;
	enum mu_kbs_code code;
	int after_hello; /* sent on a connection that already has a nonce */
};

static const struct bad_msg bad_msgs[] = {
	{"", MU_KBS_BAD_MESSAGE, 0},
	{" ", MU_KBS_BAD_MESSAGE, 0},
	{"[]", MU_KBS_BAD_MESSAGE, 0},
	{"1", MU_KBS_BAD_MESSAGE, 0},
	{"\"hello\"", MU_KBS_BAD_MESSAGE, 0},
	{"null", MU_KBS_BAD_MESSAGE, 0},
	{"{}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":1}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"bye\"}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"challenge\",\"nonce\":\"00\",\"expires_in_ms\":1}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\"}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\",\"version\":\"1\"}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\",\"version\":1.5}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\",\"version\":null}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\",\"version\":1,\"extra\":1}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\",\"version\":1}{}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\",\"version\":1}x", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\",\"version\":1,}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\",\"type\":\"hello\",\"version\":1}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\",\"version\":1,\"version\":1}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hel\xfflo\",\"version\":1}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\",\"version\":01}", MU_KBS_BAD_MESSAGE, 0},
	{"{'type':'hello'}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\",\"version\":[[[[[[[[1]]]]]]]]}", MU_KBS_BAD_MESSAGE, 0},
	{"{\"type\":\"hello\",\"version\":2}", MU_KBS_UNSUPPORTED_VERSION, 0},
	{"{\"type\":\"hello\",\"version\":0}", MU_KBS_UNSUPPORTED_VERSION, 0},
	{"{\"type\":\"hello\",\"version\":-1}", MU_KBS_UNSUPPORTED_VERSION, 0},
	{"{\"type\":\"hello\",\"version\":1}", MU_KBS_BAD_MESSAGE, 1}, /* hello twice */
	{"{\"type\":\"evidence\"}", MU_KBS_BAD_MESSAGE, 1},
	{"{\"type\":\"evidence\",\"format\":7}", MU_KBS_BAD_MESSAGE, 1},
	{"{\"type\":\"evidence\",\"format\":\"nope\"}", MU_KBS_UNKNOWN_FORMAT, 1},
	{"{\"type\":\"evidence\",\"format\":\"dev\",\"quote\":\"\"}", MU_KBS_BAD_MESSAGE, 1},
	{"{\"type\":\"evidence\",\"format\":\"dev\"}", MU_KBS_BAD_MESSAGE, 1},
};

/* Evidence with one member replaced (by a raw JSON text) or, with value NULL, removed; or a
 * member added. Built from the honest evidence so that everything else is right. */
struct ev_edit {
	const char *member; /* "nonce", "claims.config", ... */
	const char *value;  /* raw JSON, or NULL to remove */
	enum mu_kbs_code code;
};

static const struct ev_edit ev_edits[] = {
	{"nonce", "\"00\"", MU_KBS_BAD_MESSAGE},
	{"nonce", "5", MU_KBS_BAD_MESSAGE},
	{"nonce", NULL, MU_KBS_BAD_MESSAGE},
	{"measurement", "\"xyz\"", MU_KBS_BAD_MESSAGE},
	{"measurement", NULL, MU_KBS_BAD_MESSAGE},
	{"key_id", "\"0011\"", MU_KBS_BAD_MESSAGE},
	{"key_id", "true", MU_KBS_BAD_MESSAGE},
	{"pubkey", NULL, MU_KBS_BAD_PUBKEY},
	{"claims", NULL, MU_KBS_BAD_MESSAGE},
	{"claims", "[]", MU_KBS_BAD_MESSAGE},
	{"claims", "{}", MU_KBS_BAD_MESSAGE},
	{"extra", "1", MU_KBS_BAD_MESSAGE},
	{"claims.extra", "1", MU_KBS_BAD_MESSAGE},
	{"claims.binary_sha256", NULL, MU_KBS_BAD_MESSAGE},
	{"claims.binary_sha256", "\"ABCD\"", MU_KBS_BAD_MESSAGE},
	{"claims.sealed_header_sha256", "1", MU_KBS_BAD_MESSAGE},
	{"claims.config", NULL, MU_KBS_BAD_MESSAGE},
	{"claims.config", "{\"egress_bytes_per_s\":1}", MU_KBS_BAD_MESSAGE},
	{"claims.config", "\"a\\u0000b\"", MU_KBS_BAD_MESSAGE},
};

/* The honest evidence text as a JSON object, edited. Writes the result to out. */
static size_t edited_evidence(struct world *w, const struct sess *s, const struct ev_edit *e, char *out, size_t cap)
{
	char nonce[65], pub[65], meas[65], kid[33], bin[65], hdr[65];
	size_t len;
	mu_hex(s->nonce, 32, nonce);
	mu_hex(s->pub, 32, pub);
	mu_hex(w->m_ok, 32, meas);
	mu_hex(w->id1, 16, kid);
	mu_hex(w->bin, 32, bin);
	mu_hex(w->hdr, 32, hdr);
	const char *top[][2] = {{"type", "\"evidence\""}, {"format", "\"dev\""}, {"nonce", nonce}, {"pubkey", pub},
				{"measurement", meas}, {"key_id", kid}};
	const char *claims[][2] = {{"binary_sha256", bin}, {"config", NULL}, {"sealed_header_sha256", hdr}};
	int in_claims = !strncmp(e->member, "claims.", 7);
	const char *name = in_claims ? e->member + 7 : e->member;
	len = (size_t)snprintf(out, cap, "{");
	for (size_t i = 0; i < 6; i++) {
		if (!in_claims && !strcmp(name, top[i][0])) {
			if (e->value)
				len += (size_t)snprintf(out + len, cap - len, "\"%s\":%s,", top[i][0], e->value);
			continue;
		}
		if (top[i][1][0] == '"')
			len += (size_t)snprintf(out + len, cap - len, "\"%s\":%s,", top[i][0], top[i][1]);
		else
			len += (size_t)snprintf(out + len, cap - len, "\"%s\":\"%s\",", top[i][0], top[i][1]);
	}
	if (!in_claims && !strcmp(name, "extra"))
		len += (size_t)snprintf(out + len, cap - len, "\"extra\":%s,", e->value);
	if (!in_claims && !strcmp(name, "claims")) {
		if (e->value)
			len += (size_t)snprintf(out + len, cap - len, "\"claims\":%s", e->value);
		else
			len--; /* drop the last comma */
		len += (size_t)snprintf(out + len, cap - len, "}");
		return len;
	}
	len += (size_t)snprintf(out + len, cap - len, "\"claims\":{");
	int first = 1;
	for (size_t i = 0; i < 3; i++) {
		const char *v = claims[i][1];
		char quoted[80];
		if (in_claims && !strcmp(name, claims[i][0])) {
			if (!e->value)
				continue;
			v = e->value;
		} else if (!v) {
			v = "\"{\\\"egress_bytes_per_s\\\": 1024, \\\"model\\\": \\\"m.mus\\\"}\"";
		} else {
			snprintf(quoted, sizeof quoted, "\"%s\"", v);
			v = quoted;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s\"%s\":%s", first ? "" : ",", claims[i][0], v);
		first = 0;
	}
	if (in_claims && !strcmp(name, "extra"))
		len += (size_t)snprintf(out + len, cap - len, ",\"extra\":%s", e->value);
	len += (size_t)snprintf(out + len, cap - len, "}}");
	return len;
}

static void test_bad_messages(void)
{
	struct world w;
	struct sess s;
	static char buf[8192];
	world_init(&w, 1, 1);
	for (size_t i = 0; i < sizeof bad_msgs / sizeof bad_msgs[0]; i++) {
		const struct bad_msg *b = &bad_msgs[i];
		if (b->after_hello)
			say_hello(&w, &s, 10);
		else
			mu_kbs_conn_open(w.k, &s.c, "test");
		mu_kbs_handle(w.k, &s.c, (const uint8_t *)b->body, strlen(b->body), 10, &reply);
		expect_refusal(&s.c, b->code, b->body);
	}
	/* the honest evidence through the editor is accepted (the editor itself is right) */
	say_hello(&w, &s, 20);
	struct ev_edit none = {"none", NULL, MU_KBS_OK};
	size_t n = edited_evidence(&w, &s, &none, buf, sizeof buf);
	mu_kbs_handle(w.k, &s.c, (const uint8_t *)buf, n, 20, &reply);
	expect_release(&w, &s, w.key1, w.id1, w.m_ok, "edited evidence without an edit");
	for (size_t i = 0; i < sizeof ev_edits / sizeof ev_edits[0]; i++) {
		say_hello(&w, &s, 30);
		n = edited_evidence(&w, &s, &ev_edits[i], buf, sizeof buf);
		mu_kbs_handle(w.k, &s.c, (const uint8_t *)buf, n, 30, &reply);
		char what[128];
		snprintf(what, sizeof what, "evidence with %s = %s", ev_edits[i].member,
			 ev_edits[i].value ? ev_edits[i].value : "(removed)");
		expect_refusal(&s.c, ev_edits[i].code, what);
	}
	/* a frame-level refusal the server asks for */
	mu_kbs_conn_open(w.k, &s.c, "test");
	mu_kbs_refuse(w.k, &s.c, MU_KBS_BAD_FRAME, "frame of 70000 bytes is over the limit", &reply);
	expect_refusal(&s.c, MU_KBS_BAD_FRAME, "bad frame");
	/* config claims the strict parser refuses, and egress values that are not caps */
	static const char *const bad_cfg[] = {"[]", "{\"egress_bytes_per_s\":0}", "{\"egress_bytes_per_s\":-5}",
					      "{\"egress_bytes_per_s\":1.5}", "{\"egress_bytes_per_s\":\"9\"}",
					      "{\"egress_bytes_per_s\":1,\"egress_bytes_per_s\":1}", "{", "{} x",
					      "{\"egress_bytes_per_s\":1,\"egress_burst_bytes\":0}",
					      "{\"egress_bytes_per_s\":1,\"egress_burst_bytes\":-1}",
					      "{\"egress_bytes_per_s\":1,\"egress_burst_bytes\":1.5}",
					      "{\"egress_bytes_per_s\":1,\"egress_burst_bytes\":\"4096\"}",
					      "{\"egress_bytes_per_s\":1,\"egress_burst_bytes\":null}",
					      "{\"egress_bytes_per_s\":1,\"egress_burst_bytes\":99999999999999999999}",
					      "{\"egress_bytes_per_s\":1,\"egress_burst_bytes\":1,\"egress_burst_bytes\":1}"};
	for (size_t i = 0; i < sizeof bad_cfg / sizeof bad_cfg[0]; i++) {
		say_hello(&w, &s, 40);
		send_evidence(&w, &s, &(struct ev){.config = bad_cfg[i]}, 40);
		expect_refusal(&s.c, MU_KBS_BAD_MESSAGE, bad_cfg[i]);
	}
	world_free(&w);
}

/* ---- the config's egress against the policy ---- */

#define CFG_RATE "{\"egress_bytes_per_s\":1024"

struct egress_case {
	const char *config;
	int allow_dev;            /* the policy's allow_dev_evidence */
	int64_t max_burst;        /* the policy's max_egress_burst_bytes; 0: absent (the default) */
	enum mu_kbs_code want;
	const char *message;      /* a refusal's message contains this */
};

static const struct egress_case egress_cases[] = {
	/* the burst: at the default maximum, one above, absent (the enclave's default 4096) */
	{CFG_RATE ",\"egress_burst_bytes\":65536}", 1, 0, MU_KBS_OK, NULL},
	{CFG_RATE ",\"egress_burst_bytes\":65537}", 1, 0, MU_KBS_EGRESS_CAP_TOO_HIGH,
	 "egress_burst_bytes 65537 is above the policy's max_egress_burst_bytes 65536"},
	{CFG_RATE "}", 1, 0, MU_KBS_OK, NULL},
	{CFG_RATE ",\"egress_burst_bytes\":1}", 1, 0, MU_KBS_OK, NULL},
	/* the review's reproduction: a small rate, the largest burst the enclave accepts */
	{"{\"egress_bytes_per_s\":100,\"egress_burst_bytes\":4294967295}", 1, 0, MU_KBS_EGRESS_CAP_TOO_HIGH,
	 "egress_burst_bytes 4294967295"},
	/* a policy's own maximum */
	{CFG_RATE ",\"egress_burst_bytes\":4096}", 1, 4096, MU_KBS_OK, NULL},
	{CFG_RATE ",\"egress_burst_bytes\":4097}", 1, 4096, MU_KBS_EGRESS_CAP_TOO_HIGH,
	 "egress_burst_bytes 4097 is above the policy's max_egress_burst_bytes 4096"},
	{CFG_RATE "}", 1, 4096, MU_KBS_OK, NULL},
	{CFG_RATE "}", 1, 4095, MU_KBS_EGRESS_CAP_TOO_HIGH, "the enclave's default burst 4096"},
	{CFG_RATE ",\"egress_burst_bytes\":100000}", 1, 100000, MU_KBS_OK, NULL},
	/* the rate is still checked first */
	{"{\"egress_bytes_per_s\":4097,\"egress_burst_bytes\":70000}", 1, 0, MU_KBS_EGRESS_CAP_TOO_HIGH,
	 "egress_bytes_per_s 4097"},
	{"{\"egress_bytes_per_s\":4096,\"egress_burst_bytes\":65536}", 0, 0, MU_KBS_OK, NULL},
	/* the test-build key, any value: only under allow_dev_evidence */
	{CFG_RATE ",\"test_no_egress_limit\":true}", 1, 0, MU_KBS_OK, NULL},
	{CFG_RATE ",\"test_no_egress_limit\":true}", 0, 0, MU_KBS_TEST_CONFIG_NOT_ALLOWED, "test_no_egress_limit"},
	{CFG_RATE ",\"test_no_egress_limit\":false}", 0, 0, MU_KBS_TEST_CONFIG_NOT_ALLOWED, "test_no_egress_limit"},
	{CFG_RATE ",\"test_no_egress_limit\":null}", 0, 0, MU_KBS_TEST_CONFIG_NOT_ALLOWED, "test_no_egress_limit"},
	{CFG_RATE ",\"test_no_egress_limit\":\"no\"}", 0, 0, MU_KBS_TEST_CONFIG_NOT_ALLOWED, "allow_dev_evidence"},
	{CFG_RATE ",\"egress_burst_bytes\":2000,\"test_no_egress_limit\":{\"a\":[1]}}", 0, 0,
	 MU_KBS_TEST_CONFIG_NOT_ALLOWED, "test_no_egress_limit"},
	/* allowed, the test key does not lift the other limits */
	{CFG_RATE ",\"egress_burst_bytes\":65537,\"test_no_egress_limit\":true}", 1, 0, MU_KBS_EGRESS_CAP_TOO_HIGH,
	 "egress_burst_bytes 65537"},
	{"{\"egress_bytes_per_s\":8192,\"test_no_egress_limit\":true}", 1, 0, MU_KBS_EGRESS_CAP_TOO_HIGH,
	 "egress_bytes_per_s 8192"},
	/* the name must be exact */
	{CFG_RATE ",\"test_no_egress_limits\":true}", 0, 0, MU_KBS_OK, NULL},
};

/* A policy listing the measurement of each config (this world's binary and header) with key
 * id 1. */
static void egress_policy(struct world *w, struct mu_policy *p, int allow_dev, int64_t max_burst,
			  const char *const *cfgs, size_t n_cfgs)
{
	static char doc[16384];
	struct mu_error err = {0};
	char burst[64] = "", i1[33], m_hex[65];
	uint8_t m[32];
	if (max_burst)
		snprintf(burst, sizeof burst, "\"max_egress_burst_bytes\":%lld,", (long long)max_burst);
	mu_hex(w->id1, 16, i1);
	size_t len = (size_t)snprintf(doc, sizeof doc,
				      "{\"version\":1,\"allow_dev_evidence\":%s,\"nonce_ttl_ms\":%u,"
				      "\"max_egress_bytes_per_s\":4096,%s\"measurements\":{",
				      allow_dev ? "true" : "false", TTL, burst);
	for (size_t i = 0; i < n_cfgs; i++) {
		mu_measure(w->bin, (const uint8_t *)cfgs[i], strlen(cfgs[i]), w->hdr, m);
		mu_hex(m, 32, m_hex);
		if (strstr(doc, m_hex))
			continue; /* the parser refuses a repeated measurement */
		len += (size_t)snprintf(doc + len, sizeof doc - len, "%s\"%s\":{\"key_ids\":[\"%s\"]}",
					doc[len - 1] == '{' ? "" : ",", m_hex, i1);
	}
	len += (size_t)snprintf(doc + len, sizeof doc - len, "}}");
	CHECK(len < sizeof doc && mu_policy_parse(p, (const uint8_t *)doc, len, &err) == MU_OK, "egress policy: %s",
	      err.msg);
	CHECK(p->max_egress_burst_bytes == (max_burst ? max_burst : (int64_t)MU_POLICY_DEFAULT_MAX_BURST),
	      "policy max burst %lld", (long long)p->max_egress_burst_bytes);
}

static void test_egress(void)
{
	static struct mu_policy p;
	struct mu_error err;
	struct mu_egress_claim c;
	size_t mem_len;
	struct world w;
	struct sess s;
	uint8_t meas[32];

	/* the one default the enclave and the broker share */
	CHECK(MU_EGRESS_DEFAULT_BURST == 4096 && MU_POLICY_DEFAULT_MAX_BURST >= MU_EGRESS_DEFAULT_BURST,
	      "defaults: burst %u, policy maximum %u", MU_EGRESS_DEFAULT_BURST, MU_POLICY_DEFAULT_MAX_BURST);
	CHECK(mu_config_mem_size(&mem_len, &err) == MU_OK, "%s", err.msg);
	void *mem = malloc(mem_len);
	CHECK(mem != NULL, "no memory");
	if (!mem)
		return;
	/* what the parser reads */
	static const char both[] = "{\"egress_bytes_per_s\":7,\"egress_burst_bytes\":9,\"test_no_egress_limit\":0}";
	CHECK(mu_config_egress((const uint8_t *)both, sizeof both - 1, mem, mem_len, &c, &err) == MU_KBS_OK &&
		      c.rate == 7 && c.burst == 9 && c.burst_given && c.test_no_limit,
	      "parse: %lld %lld %d %d", (long long)c.rate, (long long)c.burst, c.burst_given, c.test_no_limit);
	static const char only[] = "{\"egress_bytes_per_s\":7}";
	CHECK(mu_config_egress((const uint8_t *)only, sizeof only - 1, mem, mem_len, &c, &err) == MU_KBS_OK &&
		      c.rate == 7 && c.burst == MU_EGRESS_DEFAULT_BURST && !c.burst_given && !c.test_no_limit,
	      "parse, defaults");
	static const char bad[] = "{\"egress_bytes_per_s\":7,\"egress_burst_bytes\":0}";
	CHECK(mu_config_egress((const uint8_t *)bad, sizeof bad - 1, mem, mem_len, &c, &err) == MU_KBS_BAD_MESSAGE &&
		      c.rate == 0 && c.burst == 0 && strstr(err.msg, "egress_burst_bytes"),
	      "burst 0: %s", err.msg);

	/* the decision, config by config */
	for (size_t i = 0; i < sizeof egress_cases / sizeof egress_cases[0]; i++) {
		const struct egress_case *e = &egress_cases[i];
		char pdoc[256], burst[64] = "";
		if (e->max_burst)
			snprintf(burst, sizeof burst, "\"max_egress_burst_bytes\":%lld,", (long long)e->max_burst);
		int n = snprintf(pdoc, sizeof pdoc,
				 "{\"version\":1,\"allow_dev_evidence\":%s,\"nonce_ttl_ms\":1,\"max_egress_bytes_per_s\":4096,"
				 "%s\"measurements\":{}}",
				 e->allow_dev ? "true" : "false", burst);
		err.msg[0] = '\0';
		CHECK(mu_policy_parse(&p, (const uint8_t *)pdoc, (size_t)n, &err) == MU_OK, "case %zu policy: %s", i, err.msg);
		CHECK(mu_config_egress((const uint8_t *)e->config, strlen(e->config), mem, mem_len, &c, &err) == MU_KBS_OK,
		      "case %zu: config %s: %s", i, e->config, err.msg);
		err.msg[0] = '\0';
		enum mu_kbs_code got = mu_policy_check_egress(&p, &c, &err);
		CHECK(got == e->want, "case %zu: %s under allow_dev %d, max burst %lld: %s, want %s (%s)", i, e->config,
		      e->allow_dev, (long long)e->max_burst, mu_kbs_code_name(got), mu_kbs_code_name(e->want), err.msg);
		if (e->message)
			CHECK(strstr(err.msg, e->message) != NULL, "case %zu: message '%s' lacks '%s'", i, err.msg, e->message);
	}
	free(mem);

	/* end to end through the core: each config measured and listed, dev evidence allowed */
	static const char *const cfgs[] = {
		CFG_RATE ",\"egress_burst_bytes\":65536}",
		CFG_RATE ",\"egress_burst_bytes\":65537}",
		CFG_RATE "}",
		"{\"egress_bytes_per_s\":100,\"egress_burst_bytes\":4294967295}",
		CFG_RATE ",\"egress_burst_bytes\":2000,\"test_no_egress_limit\":true}",
	};
	world_init(&w, 1, 1);
	egress_policy(&w, &p, 1, 0, cfgs, 5);
	mu_kbs_set_policy(w.k, &p);
	uint64_t t = 100;
	for (size_t i = 0; i < 5; i++, t += 10) {
		say_hello(&w, &s, t);
		send_evidence(&w, &s, &(struct ev){.config = cfgs[i]}, t);
		mu_measure(w.bin, (const uint8_t *)cfgs[i], strlen(cfgs[i]), w.hdr, meas);
		if (i == 1 || i == 3) {
			expect_refusal(&s.c, MU_KBS_EGRESS_CAP_TOO_HIGH, cfgs[i]);
			CHECK(strstr(reply.message, i == 1 ? "egress_burst_bytes 65537" : "egress_burst_bytes 4294967295") != NULL,
			      "the refusal names the burst: %s", reply.message);
		} else {
			expect_release(&w, &s, w.key1, w.id1, meas, cfgs[i]);
		}
	}
	/* a policy with a small maximum: the enclave's default burst is above it */
	egress_policy(&w, &p, 1, 1000, cfgs, 5);
	mu_kbs_set_policy(w.k, &p);
	say_hello(&w, &s, t);
	send_evidence(&w, &s, &(struct ev){.config = cfgs[2]}, t);
	expect_refusal(&s.c, MU_KBS_EGRESS_CAP_TOO_HIGH, "default burst above the policy's maximum");
	CHECK(strstr(reply.message, "default burst 4096") != NULL, "the refusal names the default: %s", reply.message);
	/* without allow_dev_evidence nothing dev-attested is released, the test config included:
	 * dev evidence is refused before the config is looked at (mu_policy_check_egress guards
	 * signed formats, whose evidence reaches it) */
	egress_policy(&w, &p, 0, 0, cfgs, 5);
	mu_kbs_set_policy(w.k, &p);
	say_hello(&w, &s, t + 10);
	send_evidence(&w, &s, &(struct ev){.config = cfgs[4]}, t + 10);
	expect_refusal(&s.c, MU_KBS_FORMAT_NOT_ALLOWED, "test config, dev evidence not allowed");
	world_free(&w);
}

/* ---- nonce table ---- */

static void test_nonce_table(void)
{
	struct world w;
	static struct sess s[MU_KBS_MAX_NONCES + 2];
	world_init(&w, 1, 1);
	/* fill the table with outstanding nonces; one more evicts the oldest */
	for (uint32_t i = 0; i <= MU_KBS_MAX_NONCES; i++)
		CHECK(say_hello(&w, &s[i], 100 + i) == 0, "hello %u", i);
	send_evidence(&w, &s[0], &(struct ev){0}, 200);
	expect_refusal(&s[0].c, MU_KBS_NONCE_UNKNOWN, "evicted oldest nonce");
	send_evidence(&w, &s[1], &(struct ev){0}, 200);
	expect_release(&w, &s[1], w.key1, w.id1, w.m_ok, "second oldest survives");
	for (uint32_t i = 2; i <= MU_KBS_MAX_NONCES; i++)
		mu_kbs_conn_close(w.k, &s[i].c);
	world_free(&w);

	/* used entries are evicted before outstanding ones */
	world_init(&w, 1, 1);
	CHECK(say_hello(&w, &s[0], 10) == 0, "hello");
	CHECK(say_hello(&w, &s[1], 11) == 0, "hello");
	send_evidence(&w, &s[1], &(struct ev){0}, 12); /* s[1]'s nonce is now used */
	expect_release(&w, &s[1], w.key1, w.id1, w.m_ok, "use");
	for (uint32_t i = 2; i <= MU_KBS_MAX_NONCES; i++)
		say_hello(&w, &s[i], 20);
	send_evidence(&w, &s[0], &(struct ev){0}, 30);
	expect_release(&w, &s[0], w.key1, w.id1, w.m_ok, "oldest outstanding survives, the used one went");
	world_free(&w);
}

/* ---- frames ---- */

static void test_frames(void)
{
	uint8_t buf[16], hdr[4];
	struct mu_frame_rd r;
	struct mu_error err;
	enum mu_frame_state st;
	size_t used;
	/* two frames in one stream, fed one byte at a time */
	static const uint8_t stream[] = {0, 0, 0, 2, '{', '}', 0, 0, 0, 3, '[', '1', ']'};
	int frames = 0;
	mu_frame_rd_init(&r, buf, sizeof buf);
	for (size_t i = 0; i < sizeof stream; i++) {
		CHECK(mu_frame_rd_feed(&r, stream + i, 1, &used, &st, &err) == MU_OK && used == 1, "feed %zu", i);
		if (st == MU_FRAME_DONE) {
			frames++;
			CHECK(mu_frame_rd_len(&r) == (frames == 1 ? 2u : 3u), "frame %d length", frames);
			mu_frame_rd_next(&r);
		}
	}
	CHECK(frames == 2, "frames %d", frames);
	/* the whole stream at once stops after the first frame */
	mu_frame_rd_init(&r, buf, sizeof buf);
	CHECK(mu_frame_rd_feed(&r, stream, sizeof stream, &used, &st, &err) == MU_OK && used == 6 && st == MU_FRAME_DONE,
	      "stops at the frame end (%zu)", used);
	/* length 0, length over max: sticky */
	static const uint8_t zero[] = {0, 0, 0, 0}, big[] = {0, 0, 0, 17}, max[] = {0, 0, 0, 16};
	mu_frame_rd_init(&r, buf, sizeof buf);
	CHECK(mu_frame_rd_feed(&r, zero, 4, &used, &st, &err) == MU_ERR_FORMAT, "zero length");
	CHECK(mu_frame_rd_feed(&r, max, 4, &used, &st, &err) != MU_OK, "not sticky");
	mu_frame_rd_init(&r, buf, sizeof buf);
	CHECK(mu_frame_rd_feed(&r, big, 4, &used, &st, &err) == MU_ERR_RANGE, "over max");
	mu_frame_rd_init(&r, buf, sizeof buf);
	CHECK(mu_frame_rd_feed(&r, max, 4, &used, &st, &err) == MU_OK && st == MU_FRAME_MORE, "exactly max");
	CHECK(mu_frame_header(hdr, 0, 16, &err) == MU_ERR_RANGE && mu_frame_header(hdr, 17, 16, &err) == MU_ERR_RANGE &&
		      mu_frame_header(hdr, 16, 16, &err) == MU_OK && hdr[3] == 16,
	      "frame header");
}

/* ---- policy ---- */

#define M64 "6c583dea0d6e602fb5e09d704d93d5ef57d1d4e8aa7ff4bcd378ad39261d69be"
#define K32 "f80e6ab3153ea9bf24870bdc14c47290"
#define POLICY_HEAD "{\"version\":1,\"allow_dev_evidence\":false,\"nonce_ttl_ms\":30000,\"max_egress_bytes_per_s\":4096,"

struct policy_case {
	const char *doc;
	enum mu_err want;
};

static const struct policy_case policies[] = {
	{POLICY_HEAD "\"measurements\":{\"" M64 "\":{\"key_ids\":[\"" K32 "\"],\"note\":\"x\"}}}", MU_OK},
	{POLICY_HEAD "\"measurements\":{}}", MU_OK},
	{POLICY_HEAD "\"measurements\":{\"" M64 "\":{\"key_ids\":[\"" K32 "\"]}}}", MU_OK},
	{"", MU_ERR_FORMAT},
	{"[]", MU_ERR_FORMAT},
	{POLICY_HEAD "\"measurements\":{},\"colour\":1}", MU_ERR_FORMAT},
	{POLICY_HEAD "\"measurements\":{}} trailing", MU_ERR_FORMAT},
	{"{\"version\":1,\"allow_dev_evidence\":false,\"nonce_ttl_ms\":30000,\"measurements\":{}}", MU_ERR_FORMAT},
	{"{\"version\":2,\"allow_dev_evidence\":false,\"nonce_ttl_ms\":30000,\"max_egress_bytes_per_s\":1,"
	 "\"measurements\":{}}",
	 MU_ERR_UNSUPPORTED},
	{"{\"version\":1,\"allow_dev_evidence\":0,\"nonce_ttl_ms\":30000,\"max_egress_bytes_per_s\":1,"
	 "\"measurements\":{}}",
	 MU_ERR_FORMAT},
	{"{\"version\":1,\"allow_dev_evidence\":true,\"nonce_ttl_ms\":0,\"max_egress_bytes_per_s\":1,"
	 "\"measurements\":{}}",
	 MU_ERR_RANGE},
	{"{\"version\":1,\"allow_dev_evidence\":true,\"nonce_ttl_ms\":600001,\"max_egress_bytes_per_s\":1,"
	 "\"measurements\":{}}",
	 MU_ERR_RANGE},
	{"{\"version\":1,\"allow_dev_evidence\":true,\"nonce_ttl_ms\":1,\"max_egress_bytes_per_s\":0,"
	 "\"measurements\":{}}",
	 MU_ERR_RANGE},
	{POLICY_HEAD "\"measurements\":[]}", MU_ERR_FORMAT},
	{POLICY_HEAD "\"measurements\":{\"" M64 "\":{\"key_ids\":[]}}}", MU_ERR_RANGE},
	{POLICY_HEAD "\"measurements\":{\"" M64 "\":{}}}", MU_ERR_FORMAT},
	{POLICY_HEAD "\"measurements\":{\"" M64 "\":{\"key_ids\":[\"" K32 "\",\"" K32 "\"]}}}", MU_ERR_FORMAT},
	{POLICY_HEAD "\"measurements\":{\"" M64 "\":{\"key_ids\":[\"F80E6AB3153EA9BF24870BDC14C47290\"]}}}", MU_ERR_FORMAT},
	{POLICY_HEAD "\"measurements\":{\"" M64 "\":{\"key_ids\":[1]}}}", MU_ERR_FORMAT},
	{POLICY_HEAD "\"measurements\":{\"" M64 "\":{\"key_ids\":[\"" K32 "\"],\"note\":1}}}", MU_ERR_FORMAT},
	{POLICY_HEAD "\"measurements\":{\"" M64 "\":{\"key_ids\":[\"" K32 "\"],\"x\":1}}}", MU_ERR_FORMAT},
	{POLICY_HEAD "\"measurements\":{\"abc\":{\"key_ids\":[\"" K32 "\"]}}}", MU_ERR_FORMAT},
	{POLICY_HEAD "\"measurements\":{\"" M64 "\":{\"key_ids\":[\"" K32 "\"]},\"" M64 "\":{\"key_ids\":[\"" K32
		     "\"]}}}",
	 MU_ERR_FORMAT},
	{POLICY_HEAD "\"measurements\":{\"" M64 "\":[\"" K32 "\"]}}", MU_ERR_FORMAT},
	/* max_egress_burst_bytes: optional, an integer >= 1 */
	{POLICY_HEAD "\"max_egress_burst_bytes\":1,\"measurements\":{}}", MU_OK},
	{POLICY_HEAD "\"max_egress_burst_bytes\":4294967296,\"measurements\":{}}", MU_OK},
	{POLICY_HEAD "\"max_egress_burst_bytes\":0,\"measurements\":{}}", MU_ERR_RANGE},
	{POLICY_HEAD "\"max_egress_burst_bytes\":-4096,\"measurements\":{}}", MU_ERR_RANGE},
	{POLICY_HEAD "\"max_egress_burst_bytes\":1.5,\"measurements\":{}}", MU_ERR_RANGE},
	{POLICY_HEAD "\"max_egress_burst_bytes\":99999999999999999999,\"measurements\":{}}", MU_ERR_RANGE},
	{POLICY_HEAD "\"max_egress_burst_bytes\":\"4096\",\"measurements\":{}}", MU_ERR_FORMAT},
	{POLICY_HEAD "\"max_egress_burst_bytes\":null,\"measurements\":{}}", MU_ERR_FORMAT},
	{POLICY_HEAD "\"max_egress_burst_bytes\":1,\"max_egress_burst_bytes\":1,\"measurements\":{}}", MU_ERR_FORMAT},
	{POLICY_HEAD "\"max_egress_burst\":4096,\"measurements\":{}}", MU_ERR_FORMAT},
};

static void test_policy(void)
{
	static struct mu_policy p;
	struct mu_error err;
	for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
		err.msg[0] = '\0';
		enum mu_err rc = mu_policy_parse(&p, (const uint8_t *)policies[i].doc, strlen(policies[i].doc), &err);
		CHECK(rc == policies[i].want, "policy %zu: got %s (%s), want %s", i, mu_err_name(rc), err.msg,
		      mu_err_name(policies[i].want));
		if (rc != MU_OK)
			CHECK(p.n == 0 && p.nonce_ttl_ms == 0, "policy %zu: not zeroed after failure", i);
	}
	uint8_t m[32], k[16];
	unhex(M64, m, 32);
	unhex(K32, k, 16);
	CHECK(mu_policy_parse(&p, (const uint8_t *)policies[0].doc, strlen(policies[0].doc), &err) == MU_OK, "policy 0");
	const struct mu_policy_entry *e = mu_policy_find(&p, m);
	CHECK(e && mu_policy_allows_key(e, k) && p.nonce_ttl_ms == 30000 && p.max_egress_bytes_per_s == 4096 &&
		      p.max_egress_burst_bytes == MU_POLICY_DEFAULT_MAX_BURST && !p.allow_dev_evidence,
	      "policy 0 content");
	static const char burst_doc[] = POLICY_HEAD "\"max_egress_burst_bytes\":2000,\"measurements\":{}}";
	CHECK(mu_policy_parse(&p, (const uint8_t *)burst_doc, sizeof burst_doc - 1, &err) == MU_OK &&
		      p.max_egress_burst_bytes == 2000,
	      "max_egress_burst_bytes read: %lld", (long long)p.max_egress_burst_bytes);
	static const char burst_bad[] = POLICY_HEAD "\"max_egress_burst_bytes\":0,\"measurements\":{}}";
	CHECK(mu_policy_parse(&p, (const uint8_t *)burst_bad, sizeof burst_bad - 1, &err) == MU_ERR_RANGE &&
		      strstr(err.msg, "max_egress_burst_bytes"),
	      "the message names max_egress_burst_bytes: %s", err.msg);
	k[0] ^= 1;
	CHECK(e && !mu_policy_allows_key(e, k), "other key allowed");
	m[0] ^= 1;
	CHECK(mu_policy_find(&p, m) == NULL, "other measurement found");
	/* the example of docs/key-release.md parses */
	uint8_t *doc;
	size_t len;
	if (pal_read_file("docs/key-release-policy.example.json", 1 << 20, &doc, &len, &err) == MU_OK) {
		CHECK(mu_policy_parse(&p, doc, len, &err) == MU_OK, "docs example: %s", err.msg);
		pal_free(doc, len + 1);
	} else {
		CHECK(0, "docs/key-release-policy.example.json: %s", err.msg);
	}
}

/* ---- the enclave side's parser and the JSON writer ---- */

static void test_msgs(void)
{
	struct mu_kbs_reply_msg m;
	struct mu_error err;
	static const struct {
		const char *doc;
		int ok;
	} cases[] = {
		{"{\"type\":\"challenge\",\"nonce\":\"" M64 "\",\"expires_in_ms\":30000}", 1},
		{"{\"type\":\"challenge\",\"nonce\":\"" M64 "\",\"expires_in_ms\":30000,\"x\":1}", 0},
		{"{\"type\":\"challenge\",\"nonce\":\"" M64 "\",\"expires_in_ms\":0}", 0},
		{"{\"type\":\"challenge\",\"nonce\":\"" K32 "\",\"expires_in_ms\":1}", 0},
		{"{\"type\":\"refused\",\"code\":\"nonce_reused\",\"message\":\"m\"}", 1},
		{"{\"type\":\"refused\",\"code\":\"from_the_future\",\"message\":\"m\"}", 1},
		{"{\"type\":\"refused\",\"code\":\"ok\",\"message\":\"m\"}", 0},
		{"{\"type\":\"refused\",\"code\":\"nonce_reused\"}", 0},
		{"{\"type\":\"key\",\"key_id\":\"" K32 "\",\"eph_pub\":\"" M64 "\",\"ciphertext\":\"" M64 "\",\"tag\":\"" K32
		 "\",\"insecure\":false,\"message\":\"\"}",
		 1},
		{"{\"type\":\"key\",\"key_id\":\"" K32 "\",\"eph_pub\":\"" M64 "\",\"ciphertext\":\"" M64 "\",\"tag\":\"" K32
		 "\",\"message\":\"\"}",
		 0},
		{"{\"type\":\"key\"}", 0},
		{"{\"type\":\"nope\"}", 0},
		{"[]", 0},
		{"", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum mu_err rc = mu_kbs_msg_parse(&m, (const uint8_t *)cases[i].doc, strlen(cases[i].doc), &err);
		CHECK((rc == MU_OK) == cases[i].ok, "reply %zu: %s", i, rc ? err.msg : "accepted");
	}
	CHECK(mu_kbs_msg_parse(&m, (const uint8_t *)cases[5].doc, strlen(cases[5].doc), &err) == MU_OK &&
		      m.code == MU_KBS_CODE_COUNT && !strcmp(m.code_name, "from_the_future"),
	      "unknown refusal code");
	for (int c = 0; c < MU_KBS_CODE_COUNT; c++) {
		const char *n = mu_kbs_code_name((enum mu_kbs_code)c);
		CHECK(mu_kbs_code_from_name(n, strlen(n)) == (enum mu_kbs_code)c, "code name %s", n);
	}

	char buf[128];
	struct jsonw w;
	size_t len;
	jsonw_init(&w, buf, sizeof buf);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "s", "a\"b\\c\n\x01");
	jsonw_int(&w, "i", INT64_MIN);
	jsonw_begin(&w, "o");
	jsonw_bool(&w, "t", 1);
	jsonw_null(&w, "n");
	jsonw_end(&w);
	jsonw_end(&w);
	CHECK(jsonw_finish(&w, &len) == MU_OK &&
		      !strcmp(buf, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"i\":-9223372036854775808,\"o\":{\"t\":true,\"n\":null}}"),
	      "writer output %s", buf);
	jsonw_init(&w, buf, sizeof buf);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "s", "\xff");
	jsonw_end(&w);
	CHECK(jsonw_finish(&w, &len) == MU_ERR_ARG, "invalid UTF-8 written");
	jsonw_init(&w, buf, 8);
	jsonw_begin(&w, NULL);
	jsonw_str(&w, "long", "value");
	jsonw_end(&w);
	CHECK(jsonw_finish(&w, &len) == MU_ERR_NOMEM && strlen(buf) < 8, "overflow");
	jsonw_init(&w, buf, sizeof buf);
	jsonw_begin(&w, NULL);
	CHECK(jsonw_finish(&w, &len) == MU_ERR_ARG, "unclosed object");
}

int main(void)
{
	test_wrap_kat();
	test_measure_kat();
	test_release();
	test_refusals();
	test_bad_messages();
	test_egress();
	test_nonce_table();
	test_frames();
	test_policy();
	test_msgs();
	return test_done();
}
