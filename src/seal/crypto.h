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
/* HKDF-Expand yields at most 255 blocks of the hash (RFC 5869 section 2.3). */
#define MU_HKDF_SHA256_MAX (255u * MU_SHA256_LEN)
/* GCM's 32-bit block counter allows 2^32 - 2 blocks of message under one IV (NIST SP 800-38D
 * section 5.2.1.1: at most 2^39 - 256 bits); past that the keystream would repeat the block
 * that encrypts the tag. */
#define MU_GCM_MAX_LEN ((UINT64_C(1) << 36) - 32)

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
/* HKDF-SHA256 (RFC 5869) extract-then-expand. An empty salt means HashLen zero bytes, as the
 * RFC says. Refuses out_len > MU_HKDF_SHA256_MAX with MU_ERR_RANGE and writes nothing then. */
enum mu_err mu_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
			   const void *info, size_t info_len, uint8_t *out, size_t out_len);

/* AES-GCM with 16-byte tags. A context holds the key schedule: wipe it with mu_gcm_free. The
 * context points into itself, so it must not be copied or moved after mu_gcm_init. */
struct mu_gcm {
	union {
		const br_block_ctr_class *vtable;
		br_aes_x86ni_ctr_keys ni;
		br_aes_ct64_ctr_keys ct;
	} keys;
	br_gcm_context gcm;
};
/* key_len 16, 24 or 32; any other length is refused with MU_ERR_ARG and leaves the context
 * wiped, which seal and open refuse (MU_ERR_STATE), as they refuse a context after mu_gcm_free. */
enum mu_err mu_gcm_init(struct mu_gcm *g, const uint8_t *key, size_t key_len);
void mu_gcm_free(struct mu_gcm *g);
/* Encrypts buf in place and writes the tag. iv_len >= 1 (12 is the norm): an empty IV is
 * refused with MU_ERR_ARG (GCM with an empty IV leaks the hash key, CVE-2017-7822), a message
 * longer than MU_GCM_MAX_LEN with MU_ERR_RANGE; on a refusal buf and tag are left alone. */
enum mu_err mu_gcm_seal(struct mu_gcm *g, const uint8_t *iv, size_t iv_len, const void *aad, size_t aad_len,
			void *buf, size_t len, uint8_t tag[static MU_GCM_TAG_LEN]);
/* Checks the tag (tag_len 1..16, constant time) and decrypts buf in place. On a bad tag buf is
 * wiped (no unauthenticated plaintext survives) and MU_ERR_AUTH is returned. tag_len must be
 * the caller's constant (a format that stores 16-byte tags passes 16), never a length taken
 * from the input: a shorter tag is compared as a prefix, so a forger who picks tag_len 1 needs
 * only 256 tries. The refusals of seal (empty IV, long message, context not initialised) and
 * a tag_len outside 1..16 (MU_ERR_ARG) come before anything is decrypted, and leave buf as it
 * was. */
enum mu_err mu_gcm_open(struct mu_gcm *g, const uint8_t *iv, size_t iv_len, const void *aad, size_t aad_len,
			void *buf, size_t len, const uint8_t *tag, size_t tag_len);
/* Whether the AES-NI/PCLMULQDQ path is in use (for reports). */
int mu_gcm_accelerated(void);

/* X25519 (RFC 7748). */
enum mu_err mu_x25519_keygen(uint8_t priv[static MU_X25519_LEN], uint8_t pub[static MU_X25519_LEN],
			     struct mu_error *err);
/* out = X25519(priv, peer_pub). Refuses (MU_ERR_AUTH) an all-zero result, which is what
 * low-order public keys produce, so a malicious peer cannot force a known shared secret
 * (RFC 7748 section 6.1); out is zeroed then. Otherwise RFC 7748 as written: the scalar is
 * clamped, the top bit of the peer's u is ignored, a non-canonical u (>= 2^255 - 19) is reduced
 * and points on the twist are accepted. out may be the same array as priv or peer_pub. */
enum mu_err mu_x25519(uint8_t out[static MU_X25519_LEN], const uint8_t priv[static MU_X25519_LEN],
		      const uint8_t peer_pub[static MU_X25519_LEN], struct mu_error *err);

/* Lower-case hex of n bytes into out (2n+1 bytes with the NUL); parse refuses anything but
 * exactly 2n hex digits (either case) with -1 and then leaves out zeroed. Both run in time that
 * depends only on the lengths (no branch or table index on the bytes), so they may carry keys. */
void mu_hex(const uint8_t *in, size_t n, char *out);
int mu_unhex(const char *s, size_t slen, uint8_t *out, size_t n);

#endif
