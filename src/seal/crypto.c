/* crypto.c — BearSSL glue; see crypto.h. */
#include "seal/crypto.h"

#include <string.h>

#include "pal/pal.h"

void mu_wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;
	while (n--)
		*v++ = 0;
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

int mu_ct_eq(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	uint8_t d = 0;
	for (size_t i = 0; i < n; i++)
		d |= (uint8_t)(x[i] ^ y[i]);
	return (int)(1 & ((uint32_t)(d - 1) >> 8));
}

void mu_sha256(const void *data, size_t len, uint8_t out[static MU_SHA256_LEN])
{
	br_sha256_context c;
	br_sha256_init(&c);
	br_sha256_update(&c, data, len);
	br_sha256_out(&c, out);
	mu_wipe(&c, sizeof c);
}

void mu_sha256_init(struct mu_sha256_ctx *s) { br_sha256_init(&s->c); }
void mu_sha256_update(struct mu_sha256_ctx *s, const void *data, size_t len) { br_sha256_update(&s->c, data, len); }
void mu_sha256_final(struct mu_sha256_ctx *s, uint8_t out[static MU_SHA256_LEN]) { br_sha256_out(&s->c, out); }

void mu_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t len,
		    uint8_t out[static MU_SHA256_LEN])
{
	br_hmac_key_context kc;
	br_hmac_context hc;
	br_hmac_key_init(&kc, &br_sha256_vtable, key, key_len);
	br_hmac_init(&hc, &kc, 0);
	br_hmac_update(&hc, msg, len);
	br_hmac_out(&hc, out);
	mu_wipe(&kc, sizeof kc);
	mu_wipe(&hc, sizeof hc);
}

enum mu_err mu_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
			   const void *info, size_t info_len, uint8_t *out, size_t out_len)
{
	/* BearSSL stops at the limit and returns the shorter length, which would leave the tail of
	 * out unwritten; refuse instead. */
	if (out_len > MU_HKDF_SHA256_MAX)
		return MU_ERR_RANGE;
	br_hkdf_context hc;
	br_hkdf_init(&hc, &br_sha256_vtable, salt_len ? salt : BR_HKDF_NO_SALT, salt_len);
	br_hkdf_inject(&hc, ikm, ikm_len);
	br_hkdf_flip(&hc);
	size_t got = br_hkdf_produce(&hc, info, info_len, out, out_len);
	mu_wipe(&hc, sizeof hc);
	if (got != out_len) {
		mu_wipe(out, out_len);
		return MU_ERR_INTERNAL;
	}
	return MU_OK;
}

static int have_aesni(void) { return br_aes_x86ni_ctr_get_vtable() != NULL; }

int mu_gcm_accelerated(void) { return have_aesni() && br_ghash_pclmul_get() != 0; }

enum mu_err mu_gcm_init(struct mu_gcm *g, const uint8_t *key, size_t key_len)
{
	/* BearSSL's key schedules return silently on other lengths and leave the keys unset. */
	if (key_len != 16 && key_len != 24 && key_len != 32) {
		mu_wipe(g, sizeof *g);
		return MU_ERR_ARG;
	}
	const br_block_ctr_class *ni = br_aes_x86ni_ctr_get_vtable();
	br_ghash gh = br_ghash_pclmul_get();
	if (!gh)
		gh = br_ghash_ctmul64;
	if (ni)
		ni->init(&g->keys.ni.vtable, key, key_len);
	else
		br_aes_ct64_ctr_vtable.init(&g->keys.ct.vtable, key, key_len);
	br_gcm_init(&g->gcm, &g->keys.vtable, gh);
	return MU_OK;
}

void mu_gcm_free(struct mu_gcm *g) { mu_wipe(g, sizeof *g); }

/* The checks seal and open share, made before either touches buf. */
static enum mu_err gcm_check(const struct mu_gcm *g, size_t iv_len, size_t len)
{
	if (g->keys.vtable == NULL)
		return MU_ERR_STATE;
	if (iv_len == 0)
		return MU_ERR_ARG;
	if ((uint64_t)len > MU_GCM_MAX_LEN)
		return MU_ERR_RANGE;
	return MU_OK;
}

enum mu_err mu_gcm_seal(struct mu_gcm *g, const uint8_t *iv, size_t iv_len, const void *aad, size_t aad_len,
			void *buf, size_t len, uint8_t tag[static MU_GCM_TAG_LEN])
{
	enum mu_err rc = gcm_check(g, iv_len, len);
	if (rc)
		return rc;
	br_gcm_reset(&g->gcm, iv, iv_len);
	br_gcm_aad_inject(&g->gcm, aad, aad_len);
	br_gcm_flip(&g->gcm);
	br_gcm_run(&g->gcm, 1, buf, len);
	br_gcm_get_tag(&g->gcm, tag);
	return MU_OK;
}

enum mu_err mu_gcm_open(struct mu_gcm *g, const uint8_t *iv, size_t iv_len, const void *aad, size_t aad_len,
			void *buf, size_t len, const uint8_t *tag, size_t tag_len)
{
	uint8_t want[MU_GCM_TAG_LEN];
	enum mu_err rc = gcm_check(g, iv_len, len);
	if (rc)
		return rc;
	if (tag_len == 0 || tag_len > MU_GCM_TAG_LEN)
		return MU_ERR_ARG;
	br_gcm_reset(&g->gcm, iv, iv_len);
	br_gcm_aad_inject(&g->gcm, aad, aad_len);
	br_gcm_flip(&g->gcm);
	br_gcm_run(&g->gcm, 0, buf, len);
	br_gcm_get_tag(&g->gcm, want);
	int ok = mu_ct_eq(want, tag, tag_len);
	mu_wipe(want, sizeof want);
	if (!ok) {
		mu_wipe(buf, len);
		return MU_ERR_AUTH;
	}
	return MU_OK;
}

enum mu_err mu_x25519_keygen(uint8_t priv[static MU_X25519_LEN], uint8_t pub[static MU_X25519_LEN],
			     struct mu_error *err)
{
	const br_ec_impl *ec = br_ec_get_default();
	enum mu_err rc = pal_random(priv, MU_X25519_LEN, err);
	if (rc) {
		mu_wipe(priv, MU_X25519_LEN);
		return rc;
	}
	if (ec->mulgen(pub, priv, MU_X25519_LEN, BR_EC_curve25519) != MU_X25519_LEN) {
		mu_wipe(priv, MU_X25519_LEN);
		return mu_errf(err, MU_ERR_INTERNAL, "X25519 key generation failed");
	}
	return MU_OK;
}

enum mu_err mu_x25519(uint8_t out[static MU_X25519_LEN], const uint8_t priv[static MU_X25519_LEN],
		      const uint8_t peer_pub[static MU_X25519_LEN], struct mu_error *err)
{
	static const uint8_t zero[MU_X25519_LEN];
	const br_ec_impl *ec = br_ec_get_default();
	/* The point is multiplied in a local copy so that out may alias priv or peer_pub. */
	uint8_t u[MU_X25519_LEN];
	memcpy(u, peer_pub, MU_X25519_LEN);
	/* BearSSL's curve25519 mul takes the scalar little-endian, clamps it and masks the top bit
	 * of the point, as RFC 7748 requires (checked against the RFC and Wycheproof vectors in
	 * tests/test_crypto.c) */
	uint32_t ok = ec->mul(u, MU_X25519_LEN, priv, MU_X25519_LEN, BR_EC_curve25519);
	if (!ok) {
		mu_wipe(u, sizeof u);
		mu_wipe(out, MU_X25519_LEN);
		return mu_errf(err, MU_ERR_INTERNAL, "X25519 multiplication failed");
	}
	if (mu_ct_eq(u, zero, MU_X25519_LEN)) {
		mu_wipe(u, sizeof u);
		mu_wipe(out, MU_X25519_LEN);
		return mu_errf(err, MU_ERR_AUTH,
			       "X25519 gave an all-zero secret (the peer sent a low-order public key); "
			       "refusing the key exchange");
	}
	memcpy(out, u, MU_X25519_LEN);
	mu_wipe(u, sizeof u);
	return MU_OK;
}

/* Hex without branches or table lookups on the data, so keys can pass through: a nibble x
 * becomes '0' + x, plus 'a' - '0' - 10 = 39 when x > 9 (9 - x wraps, setting bit 8). */
void mu_hex(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned hi = in[i] >> 4, lo = in[i] & 15u;
		out[2 * i] = (char)('0' + hi + (((9u - hi) >> 8) & 39u));
		out[2 * i + 1] = (char)('0' + lo + (((9u - lo) >> 8) & 39u));
	}
	out[2 * n] = '\0';
}

/* 1 when lo <= c <= hi, else 0, for c, lo, hi in 0..255: a negative difference sets bit 31. */
static unsigned in_range(unsigned c, unsigned lo, unsigned hi)
{
	return 1u ^ (((c - lo) | (hi - c)) >> 31);
}

/* Value of hex digit c in the low 4 bits; bit 8 set when c is not a hex digit. Letters are
 * folded to lower case with | 0x20, which maps no other byte into 'a'..'f'. */
static unsigned hexval(unsigned char ch)
{
	unsigned c = ch, lc = c | 0x20u;
	unsigned is_d = in_range(c, '0', '9'), is_l = in_range(lc, 'a', 'f');
	unsigned v = ((0u - is_d) & (c - '0')) | ((0u - is_l) & (lc - 'a' + 10u));
	return (v & 15u) | ((1u ^ (is_d | is_l)) << 8);
}

int mu_unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
	if (slen % 2 != 0 || slen / 2 != n)
		return -1;
	unsigned bad = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
		bad |= hi | lo;
		out[i] = (uint8_t)((hi & 15u) << 4 | (lo & 15u));
	}
	if (bad >> 8) {
		mu_wipe(out, n);
		return -1;
	}
	return 0;
}
