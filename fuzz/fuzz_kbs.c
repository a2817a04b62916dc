/* fuzz_kbs.c — libFuzzer harness for the key broker and the parsers around it.
 *
 * The first input byte picks what the rest is:
 *   0  one frame body, handled by the broker core on a connection that has just been
 *      challenged (so evidence reaches the nonce, policy and wrap checks)
 *   1  a byte stream of frames (4-byte big-endian length + body), fed through the frame
 *      reader to the core on one connection until it closes, as the server does
 *   2  a broker message, parsed by the enclave side (mu_kbs_msg_parse)
 *   3  a policy document (second byte even) or an enclave config (odd)
 * In bodies the text "@NONCE@" becomes the hex of the connection's current challenge, so the
 * seeds can carry valid evidence. The broker's policy (dev evidence allowed, egress at most
 * 4096 bytes/s, the default burst maximum) lists three measurements, all of binary_sha256 =
 * 32 x 0x11 and sealed_header_sha256 = 32 x 0x22, with the configs
 *   {"egress_bytes_per_s":1024}                                  (released)
 *   {"egress_bytes_per_s":1024,"egress_burst_bytes":65537}       (burst above the maximum)
 *   {"egress_bytes_per_s":1024,"test_no_egress_limit":true}      (a test-build config)
 * each with the key 32 x 0x33; the enclave's key pair has private key 32 x 0x44.
 *
 * Checked on every reply (a broken invariant traps): it is a message the enclave's strict
 * parser accepts; a refusal closes the connection, has exactly type, code and message, and
 * audit members that fit; a key reply to our public key unwraps to exactly the model key. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/evidence.h"
#include "attest/kbs_proto.h"
#include "attest/policy.h"
#include "base/limits.h"
#include "host/kbs.h"
#include "seal/crypto.h"
#include "seal/sealed.h"
#include "wire/frame.h"
#include "wire/json_write.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond)
{
	if (!cond)
		__builtin_trap();
}

struct world {
	void *mem;
	size_t mem_len;
	struct mu_kbs *k;
	struct mu_policy policy;
	uint8_t key[32], key_id[16], priv[32], pub[32], measurement[3][32];
	uint8_t *body; /* substituted body */
	uint8_t *frame;
	struct mu_kbs_reply reply;
	struct mu_kbs_reply_msg msg;
};

static struct world *W;

static void world_setup(void)
{
	static const char *const cfg[3] = {
		"{\"egress_bytes_per_s\":1024}",
		"{\"egress_bytes_per_s\":1024,\"egress_burst_bytes\":65537}",
		"{\"egress_bytes_per_s\":1024,\"test_no_egress_limit\":true}",
	};
	static const uint8_t base[32] = {9};
	struct mu_error err;
	uint8_t bin[32], hdr[32];
	char doc[1024], m_hex[3][65], k_hex[33];
	W = calloc(1, sizeof *W);
	require(W != NULL);
	memset(W->key, 0x33, 32);
	memset(W->priv, 0x44, 32);
	require(mu_x25519(W->pub, W->priv, base, &err) == MU_OK);
	memset(bin, 0x11, 32);
	memset(hdr, 0x22, 32);
	for (int i = 0; i < 3; i++) {
		mu_measure(bin, (const uint8_t *)cfg[i], strlen(cfg[i]), hdr, W->measurement[i]);
		mu_hex(W->measurement[i], 32, m_hex[i]);
	}
	mu_sealed_key_id(W->key, W->key_id);
	mu_hex(W->key_id, 16, k_hex);
	int n = snprintf(doc, sizeof doc,
			 "{\"version\":1,\"allow_dev_evidence\":true,\"nonce_ttl_ms\":30000,\"max_egress_bytes_per_s\":4096,"
			 "\"measurements\":{\"%s\":{\"key_ids\":[\"%s\"]},\"%s\":{\"key_ids\":[\"%s\"]},"
			 "\"%s\":{\"key_ids\":[\"%s\"]}}}",
			 m_hex[0], k_hex, m_hex[1], k_hex, m_hex[2], k_hex);
	require(n > 0 && (size_t)n < sizeof doc);
	require(mu_policy_parse(&W->policy, (const uint8_t *)doc, (size_t)n, &err) == MU_OK);
	require(mu_kbs_mem_size(&W->mem_len, &err) == MU_OK);
	W->mem = malloc(W->mem_len);
	W->body = malloc(4 * MU_KBS_MAX_FRAME);
	W->frame = malloc(MU_KBS_MAX_FRAME);
	require(W->mem && W->body && W->frame);
}

static void world_reset(void)
{
	struct mu_error err;
	uint8_t id[16];
	require(mu_kbs_init(&W->k, W->mem, W->mem_len, &err) == MU_OK);
	mu_kbs_set_policy(W->k, &W->policy);
	require(mu_kbs_add_key(W->k, W->key, id, &err) == MU_OK);
}

/* Copies p[0..n) to W->body with "@NONCE@" replaced by the hex of nonce (at most 16 times). */
static size_t substitute(const uint8_t *p, size_t n, const uint8_t nonce[32])
{
	static const char mark[] = "@NONCE@";
	char hex[65];
	size_t out = 0, subs = 0;
	mu_hex(nonce, 32, hex);
	for (size_t i = 0; i < n;) {
		if (subs < 16 && n - i >= 7 && !memcmp(p + i, mark, 7)) {
			memcpy(W->body + out, hex, 64);
			out += 64;
			i += 7;
			subs++;
		} else {
			W->body[out++] = p[i++];
		}
	}
	return out;
}

/* Checks the reply in W->reply for connection c; returns the nonce of a challenge. */
static void check_reply(const struct mu_kbs_conn *c, const uint8_t *pubkey_sent, uint8_t nonce[32])
{
	struct mu_kbs_reply *r = &W->reply;
	struct mu_kbs_reply_msg *m = &W->msg;
	struct mu_error err;
	char line[MU_KBS_AUDIT_MAX];
	require(r->len > 0 && r->len <= sizeof r->body);
	require(mu_kbs_msg_parse(m, r->body, r->len, &err) == MU_OK);
	if (m->type == MU_KBS_MSG_CHALLENGE) {
		require(!r->close && !r->d.made);
		memcpy(nonce, m->nonce, 32);
		return;
	}
	require(r->close && r->d.made && c->state == MU_KBS_CONN_DONE);
	/* the audit members, as the server writes them into its record, fit MU_KBS_AUDIT_MAX */
	struct jsonw jw;
	size_t n = 0;
	jsonw_init(&jw, line, sizeof line);
	jsonw_begin(&jw, NULL);
	mu_kbs_audit_members(&jw, c, &r->d);
	jsonw_end(&jw);
	require(jsonw_finish(&jw, &n) == MU_OK && n > 0);
	if (m->type == MU_KBS_MSG_REFUSED) {
		/* the strict parse above admits exactly type, code and message: no key-derived member
		 * (the message may quote a sanitized unknown field name, so no substring test) */
		require(r->d.code != MU_KBS_OK && m->code == r->d.code);
		return;
	}
	require(m->type == MU_KBS_MSG_KEY && r->d.code == MU_KBS_OK && r->d.have_nonce);
	/* released only to the listed configs the policy accepts: never the one whose burst is
	 * above the maximum */
	require(!memcmp(m->key_id, W->key_id, 16) && (!memcmp(r->d.measurement, W->measurement[0], 32) ||
						       !memcmp(r->d.measurement, W->measurement[2], 32)));
	if (pubkey_sent && !memcmp(pubkey_sent, W->pub, 32)) {
		uint8_t got[32];
		require(mu_kbs_unwrap(W->priv, W->pub, r->d.nonce, r->d.measurement, W->key_id, m->wrapped.eph_pub,
				      m->wrapped.ciphertext, m->wrapped.tag, got, &err) == MU_OK);
		require(!memcmp(got, W->key, 32));
	}
}

/* The pubkey member of a body, when it is 64 hex digits (for the unwrap check). */
static const uint8_t *sent_pubkey(const uint8_t *body, size_t n, uint8_t out[32])
{
	const uint8_t *at = memmem(body, n, "\"pubkey\":\"", 10);
	if (!at || (size_t)(body + n - at) < 10 + 64 || mu_unhex((const char *)at + 10, 64, out, 32) != 0)
		return NULL;
	return out;
}

static void handle(struct mu_kbs_conn *c, const uint8_t *p, size_t n, uint64_t now, uint8_t nonce[32])
{
	uint8_t pk[32];
	size_t len = substitute(p, n, nonce);
	mu_kbs_handle(W->k, c, W->body, len, now, &W->reply);
	check_reply(c, sent_pubkey(W->body, len, pk), nonce);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hello[] = "{\"type\":\"hello\",\"version\":1}";
	struct mu_error err;
	if (size < 1 || size > 2 * MU_KBS_MAX_FRAME)
		return 0;
	if (!W)
		world_setup();
	uint8_t mode = data[0] & 3;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	uint8_t nonce[32] = {0};
	struct mu_kbs_conn c;

	if (mode == 0 && n <= MU_KBS_MAX_FRAME) {
		world_reset();
		mu_kbs_conn_open(W->k, &c, "fuzz");
		handle(&c, (const uint8_t *)hello, sizeof hello - 1, 1000, nonce);
		handle(&c, p, n, 1001, nonce);
		mu_kbs_conn_close(W->k, &c);
	} else if (mode == 1) {
		struct mu_frame_rd rd;
		uint64_t now = 1000;
		world_reset();
		mu_kbs_conn_open(W->k, &c, "fuzz");
		mu_frame_rd_init(&rd, W->frame, MU_KBS_MAX_FRAME);
		while (n > 0 && c.state != MU_KBS_CONN_DONE) {
			size_t used;
			enum mu_frame_state st;
			if (mu_frame_rd_feed(&rd, p, n, &used, &st, &err) != MU_OK) {
				mu_kbs_refuse(W->k, &c, MU_KBS_BAD_FRAME, err.msg, &W->reply);
				check_reply(&c, NULL, nonce);
				break;
			}
			require(used > 0 && used <= n);
			p += used;
			n -= used;
			if (st == MU_FRAME_DONE) {
				handle(&c, W->frame, mu_frame_rd_len(&rd), now, nonce);
				now += 7000; /* a few frames in, the nonce expires */
				mu_frame_rd_next(&rd);
			}
		}
		mu_kbs_conn_close(W->k, &c);
	} else if (mode == 2) {
		uint8_t *copy = malloc(n ? n : 1);
		require(copy != NULL);
		memcpy(copy, p, n);
		if (mu_kbs_msg_parse(&W->msg, copy, n, &err) == MU_OK)
			require(W->msg.type >= MU_KBS_MSG_CHALLENGE && W->msg.type <= MU_KBS_MSG_REFUSED);
		free(copy);
	} else if (mode == 3 && n >= 1) {
		uint8_t *copy = malloc(n - 1 ? n - 1 : 1);
		require(copy != NULL);
		memcpy(copy, p + 1, n - 1);
		if (p[0] & 1) {
			size_t mem_len;
			struct mu_egress_claim eg;
			require(mu_config_mem_size(&mem_len, &err) == MU_OK);
			void *mem = malloc(mem_len);
			require(mem != NULL);
			if (n - 1 <= MU_KBS_MAX_FRAME) {
				enum mu_kbs_code code = mu_config_egress(copy, n - 1, mem, mem_len, &eg, &err);
				if (code == MU_KBS_OK) {
					require(eg.rate > 0 && eg.burst > 0 && (eg.burst_given || eg.burst == MU_EGRESS_DEFAULT_BURST));
					/* the policy decision on it: a release means every limit holds */
					code = mu_policy_check_egress(&W->policy, &eg, &err);
					require(code == MU_KBS_OK || code == MU_KBS_EGRESS_CAP_TOO_HIGH ||
						code == MU_KBS_TEST_CONFIG_NOT_ALLOWED);
					if (code == MU_KBS_OK)
						require(eg.rate <= W->policy.max_egress_bytes_per_s &&
							eg.burst <= W->policy.max_egress_burst_bytes &&
							(!eg.test_no_limit || W->policy.allow_dev_evidence));
				} else {
					require(code == MU_KBS_BAD_MESSAGE || code == MU_KBS_EGRESS_CAP_MISSING);
					require(eg.rate == 0 && eg.burst == 0);
				}
			}
			free(mem);
		} else {
			struct mu_policy *pol = malloc(sizeof *pol);
			require(pol != NULL);
			if (mu_policy_parse(pol, copy, n - 1, &err) == MU_OK) {
				require(pol->n <= MU_POLICY_MAX_MEASUREMENTS && pol->nonce_ttl_ms >= 1 &&
					pol->nonce_ttl_ms <= MU_KBS_MAX_NONCE_TTL_MS && pol->max_egress_bytes_per_s >= 1 &&
					pol->max_egress_burst_bytes >= 1);
				for (uint32_t i = 0; i < pol->n; i++) {
					require(pol->m[i].n_key_ids >= 1 && pol->m[i].n_key_ids <= MU_POLICY_MAX_KEY_IDS);
					require(mu_policy_find(pol, pol->m[i].measurement) == &pol->m[i]);
				}
			}
			free(pol);
		}
		free(copy);
	}
	return 0;
}
