/* crypto.h — the project's only door to cryptography: thin wrappers over BearSSL.
 *
 * No primitive is implemented here; each function calls BearSSL and adds what the project
 * needs around it: fixed sizes in the prototypes, wiping of key schedules, constant-time tag
 * comparison, refusal of X25519 results that are all zero (low-order public keys).
 * AES uses the AES-NI implementation when the CPU has it and BearSSL's constant-time
 * bitsliced one otherwise; GHASH likewise (PCLMULQDQ or constant-time software).
 */
#ifndef MU_SEAL_CRYPTO_H
#define MU_SEAL_CRYPTO_H

#include <bearssl.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define MU_KEY_LEN 32
#define MU_SHA256_LEN 32
#define MU_GCM_TAG_LEN 16
#define MU_X25519_LEN 32

/* Overwrites n bytes in a way the compiler may not remove. */
void mu_wipe(void *p, size_t n);
/* 1 when equal; time depends only on n. */
int mu_ct_eq(const void *a, const void *b, size_t n);

void mu_sha256(const void *data, size_t len, uint8_t out[static MU_SHA256_LEN]);
struct mu_sha256_ctx {
	br_sha256_context c;
};
void mu_sha256_init(struct mu_sha256_ctx *s);
void mu_sha256_update(struct mu_sha256_ctx *s, const void *data, size_t len);
void mu_sha256_final(struct mu_sha256_ctx *s, uint8_t out[static MU_SHA256_LEN]);

void mu_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t len,
		    uint8_t out[static MU_SHA256_LEN]);
/* HKDF-SHA256 (RFC 5869) extract-then-expand; out_len <= 255 * 32. */
void mu_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len, const void *info,
		    size_t info_len, uint8_t *out, size_t out_len);

/* AES-GCM with 16-byte tags. A context holds the key schedule: wipe it with mu_gcm_free. */
struct mu_gcm {
	union {
		const br_block_ctr_class *vtable;
		br_aes_x86ni_ctr_keys ni;
		br_aes_ct64_ctr_keys ct;
	} keys;
	br_gcm_context gcm;
};
/* key_len 16, 24 or 32. */
void mu_gcm_init(struct mu_gcm *g, const uint8_t *key, size_t key_len);
void mu_gcm_free(struct mu_gcm *g);
/* Encrypts buf in place and writes the tag. iv_len >= 1 (12 is the norm). */
void mu_gcm_seal(struct mu_gcm *g, const uint8_t *iv, size_t iv_len, const void *aad, size_t aad_len, void *buf,
		 size_t len, uint8_t tag[static MU_GCM_TAG_LEN]);
/* Checks the tag (tag_len 1..16, constant time) and decrypts buf in place. On a bad tag buf is
 * wiped (no unauthenticated plaintext survives) and MU_ERR_AUTH is returned. */
enum mu_err mu_gcm_open(struct mu_gcm *g, const uint8_t *iv, size_t iv_len, const void *aad, size_t aad_len,
			void *buf, size_t len, const uint8_t *tag, size_t tag_len);
/* Whether the AES-NI/PCLMULQDQ path is in use (for reports). */
int mu_gcm_accelerated(void);

/* X25519 (RFC 7748). */
enum mu_err mu_x25519_keygen(uint8_t priv[static MU_X25519_LEN], uint8_t pub[static MU_X25519_LEN],
			     struct mu_error *err);
/* out = X25519(priv, peer_pub). Refuses (MU_ERR_AUTH) an all-zero result, which is what
 * low-order public keys produce, so a malicious peer cannot force a known shared secret. */
enum mu_err mu_x25519(uint8_t out[static MU_X25519_LEN], const uint8_t priv[static MU_X25519_LEN],
		      const uint8_t peer_pub[static MU_X25519_LEN], struct mu_error *err);

/* Lower-case hex of n bytes into out (2n+1 bytes with the NUL); parse refuses anything but
 * exactly 2n hex digits. */
void mu_hex(const uint8_t *in, size_t n, char *out);
int mu_unhex(const char *s, size_t slen, uint8_t *out, size_t n);

#endif
