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

void mu_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len, const void *info,
		    size_t info_len, uint8_t *out, size_t out_len)
{
	br_hkdf_context hc;
	br_hkdf_init(&hc, &br_sha256_vtable, salt_len ? salt : BR_HKDF_NO_SALT, salt_len);
	br_hkdf_inject(&hc, ikm, ikm_len);
	br_hkdf_flip(&hc);
	br_hkdf_produce(&hc, info, info_len, out, out_len);
	mu_wipe(&hc, sizeof hc);
}

static int have_aesni(void) { return br_aes_x86ni_ctr_get_vtable() != NULL; }

int mu_gcm_accelerated(void) { return have_aesni() && br_ghash_pclmul_get() != 0; }

void mu_gcm_init(struct mu_gcm *g, const uint8_t *key, size_t key_len)
{
	const br_block_ctr_class *ni = br_aes_x86ni_ctr_get_vtable();
	br_ghash gh = br_ghash_pclmul_get();
	if (!gh)
		gh = br_ghash_ctmul64;
	if (ni)
		ni->init(&g->keys.ni.vtable, key, key_len);
	else
		br_aes_ct64_ctr_vtable.init(&g->keys.ct.vtable, key, key_len);
	br_gcm_init(&g->gcm, &g->keys.vtable, gh);
}

void mu_gcm_free(struct mu_gcm *g) { mu_wipe(g, sizeof *g); }

void mu_gcm_seal(struct mu_gcm *g, const uint8_t *iv, size_t iv_len, const void *aad, size_t aad_len, void *buf,
		 size_t len, uint8_t tag[static MU_GCM_TAG_LEN])
{
	br_gcm_reset(&g->gcm, iv, iv_len);
	br_gcm_aad_inject(&g->gcm, aad, aad_len);
	br_gcm_flip(&g->gcm);
	br_gcm_run(&g->gcm, 1, buf, len);
	br_gcm_get_tag(&g->gcm, tag);
}

enum mu_err mu_gcm_open(struct mu_gcm *g, const uint8_t *iv, size_t iv_len, const void *aad, size_t aad_len,
			void *buf, size_t len, const uint8_t *tag, size_t tag_len)
{
	uint8_t want[MU_GCM_TAG_LEN];
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
	if (rc)
		return rc;
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
	memcpy(out, peer_pub, MU_X25519_LEN);
	/* BearSSL's curve25519 mul clamps the scalar and masks the top bit of the point, as
	 * RFC 7748 requires */
	uint32_t ok = ec->mul(out, MU_X25519_LEN, priv, MU_X25519_LEN, BR_EC_curve25519);
	if (!ok || mu_ct_eq(out, zero, MU_X25519_LEN)) {
		mu_wipe(out, MU_X25519_LEN);
		return mu_errf(err, MU_ERR_AUTH, "X25519 gave an all-zero secret (low-order public key)");
	}
	return MU_OK;
}

void mu_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int mu_unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
	if (slen != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
