/* sealed.h — the sealed-model format (".mus"): a GGUF encrypted and authenticated in chunks.
 * docs/sealed-format.md is the prose version; this comment is normative.
 *
 * File layout (integers little-endian unless marked):
 *
 *   header, 128 bytes
 *     0    magic "MUSEALED"                               8
 *     8    version u16 = 1                                2
 *     10   suite u16 = 1 (AES-256-GCM chunks, HKDF-SHA256 keys)  2
 *     12   chunk_size u32: power of two, 64 KiB .. 64 MiB 4
 *     16   plaintext_size u64                             8
 *     24   plaintext_sha256                               32
 *     56   key_id = HMAC-SHA256(model_key, "mu-seal key id v1")[0..16)   16
 *     72   salt (random per file)                         32
 *     104  reserved, zero                                 8
 *     112  header_tag = HMAC-SHA256(K_hdr, header[0..112))[0..16)        16
 *   n_chunks chunks; chunk i =
 *     AES-256-GCM ciphertext of min(chunk_size, plaintext_size - i*chunk_size) bytes
 *     followed by its 16-byte tag
 *
 *   n_chunks   = ceil(plaintext_size / chunk_size), and 1 when plaintext_size = 0
 *   file size  = 128 + plaintext_size + 16 * n_chunks, exactly
 *
 * Keys (the model key is 32 random bytes; see docs/sealed-format.md for the key file):
 *   K_chunk = HKDF-SHA256(ikm = model key, salt = salt, info = "mu-seal v1 chunk key"), 32 bytes
 *   K_hdr   = HKDF-SHA256(ikm = model key, salt = salt, info = "mu-seal v1 header key"), 32 bytes
 *
 * Chunk i under K_chunk:
 *   nonce = 4 zero bytes || u64 big-endian i                            (12 bytes)
 *   AAD   = "mu-seal chunk v1" || header_hash || u64 LE i || u8 final    (57 bytes)
 *   header_hash = SHA-256 of all 128 header bytes; final = 1 for the last chunk, else 0.
 *
 * The AAD binds each chunk to this exact header (so to the plaintext size and digest, the
 * salt and the key id), to its position and to whether it ends the file: a chunk moved,
 * dropped, duplicated, appended or taken from another file fails its tag. K_chunk differs per
 * file (fresh salt), so nonces never repeat under one key.
 *
 * Verification order (the first failure is reported, each with its own message naming the
 * file): size/magic; version and suite; chunk size; reserved bytes; key id; header tag; file
 * size (truncated at a boundary, inside a chunk, or extra data); each chunk's tag (with a
 * diagnosis of reordering); the plaintext SHA-256.
 *
 * Everything here is pure computation on caller memory: no I/O, no allocation.
 */
#ifndef MU_SEAL_SEALED_H
#define MU_SEAL_SEALED_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "seal/crypto.h"

#define MU_SEALED_MAGIC "MUSEALED"
#define MU_SEALED_HEADER_LEN 128u
#define MU_SEALED_VERSION 1u
#define MU_SEALED_SUITE_AES256GCM_HKDF 1u
#define MU_SEALED_CHUNK_MIN (64u << 10)
#define MU_SEALED_CHUNK_MAX (64u << 20)
#define MU_SEALED_CHUNK_DEFAULT (4u << 20)
#define MU_SEALED_KEY_ID_LEN 16u
#define MU_SEALED_SALT_LEN 32u
#define MU_SEALED_TAG_LEN 16u
#define MU_SEALED_NONCE_LEN 12u
#define MU_SEALED_AAD_LEN 57u /* 16 label + 32 header hash + 8 index + 1 final flag */

/* Field offsets in the header. */
#define MU_SEALED_OFF_VERSION 8u
#define MU_SEALED_OFF_SUITE 10u
#define MU_SEALED_OFF_CHUNK_SIZE 12u
#define MU_SEALED_OFF_PLAINTEXT_SIZE 16u
#define MU_SEALED_OFF_DIGEST 24u
#define MU_SEALED_OFF_KEY_ID 56u
#define MU_SEALED_OFF_SALT 72u
#define MU_SEALED_OFF_RESERVED 104u
#define MU_SEALED_OFF_TAG 112u

/* A decoded header. hash and file_size are filled in by the steps that compute them. */
struct mu_sealed_header {
	uint16_t version;
	uint16_t suite;
	uint32_t chunk_size;
	uint64_t plaintext_size;
	uint8_t digest[MU_SHA256_LEN]; /* plaintext SHA-256 */
	uint8_t key_id[MU_SEALED_KEY_ID_LEN];
	uint8_t salt[MU_SEALED_SALT_LEN];
	uint8_t tag[MU_SEALED_TAG_LEN];
	uint64_t n_chunks;
	uint64_t file_size;          /* 0 when plaintext_size makes it overflow u64 */
	uint8_t hash[MU_SHA256_LEN]; /* header_hash: SHA-256 of the 128 header bytes */
};

/* The key id of a model key (not secret: it names the key without revealing it). */
void mu_sealed_key_id(const uint8_t key[static MU_KEY_LEN], uint8_t id[static MU_SEALED_KEY_ID_LEN]);
/* K_chunk and K_hdr for a file's salt; either output may be NULL. Wipe them after use. */
enum mu_err mu_sealed_derive(const uint8_t key[static MU_KEY_LEN], const uint8_t salt[static MU_SEALED_SALT_LEN],
		      uint8_t k_chunk[MU_KEY_LEN], uint8_t k_hdr[MU_KEY_LEN]);

/* Chunk math. mu_sealed_layout fails (MU_ERR_RANGE) when the sizes overflow. */
int mu_sealed_chunk_size_valid(uint64_t chunk_size);
uint64_t mu_sealed_n_chunks(uint64_t plaintext_size, uint32_t chunk_size);
enum mu_err mu_sealed_layout(uint64_t plaintext_size, uint32_t chunk_size, uint64_t *n_chunks, uint64_t *file_size,
			     struct mu_error *err);
/* Chunk i (< n_chunks) of h: plaintext offset and length, and offset of its ciphertext in the
 * file (its tag follows the ciphertext). */
void mu_sealed_chunk_span(const struct mu_sealed_header *h, uint64_t i, uint64_t *pt_off, size_t *len,
			  uint64_t *file_off);
void mu_sealed_nonce(uint64_t i, uint8_t nonce[static MU_SEALED_NONCE_LEN]);
void mu_sealed_aad(const uint8_t header_hash[static MU_SHA256_LEN], uint64_t i, int final,
		   uint8_t aad[static MU_SEALED_AAD_LEN]);

/* Builds the 128 header bytes (key id, tag) for a plaintext of size and digest, and fills h
 * (including hash and n_chunks). chunk_size must be valid. */
enum mu_err mu_sealed_header_build(struct mu_sealed_header *h, uint8_t out[static MU_SEALED_HEADER_LEN],
				   const uint8_t key[static MU_KEY_LEN], const uint8_t salt[static MU_SEALED_SALT_LEN],
				   uint32_t chunk_size, uint64_t plaintext_size,
				   const uint8_t digest[static MU_SHA256_LEN], struct mu_error *err);

/* Step 1, no key needed: size and magic, version and suite, chunk size, reserved bytes.
 * Fills every field of h but hash and file_size. name (the file, for messages) may be NULL. */
enum mu_err mu_sealed_header_parse(struct mu_sealed_header *h, const uint8_t *data, size_t len, const char *name,
				   struct mu_error *err);
/* Step 2: key id, then the header tag (constant-time compare); fills h->hash. hdr is the same
 * 128 bytes given to parse. */
enum mu_err mu_sealed_header_auth(struct mu_sealed_header *h, const uint8_t hdr[static MU_SEALED_HEADER_LEN],
				  const uint8_t key[static MU_KEY_LEN], const char *name, struct mu_error *err);
/* Step 3: the file length against the header; fills h->file_size. */
enum mu_err mu_sealed_check_length(struct mu_sealed_header *h, uint64_t file_len, const char *name,
				   struct mu_error *err);

/* Seals / opens chunk i in place; g holds K_chunk. open returns MU_ERR_AUTH (and wipes buf)
 * on a bad tag, without a message: the caller knows the file and diagnoses. Neither fails
 * otherwise for a valid header (chunks are at most 64 MiB, far below GCM's limit). */
enum mu_err mu_sealed_chunk_seal(struct mu_gcm *g, const uint8_t header_hash[static MU_SHA256_LEN], uint64_t i,
				 int final, uint8_t *buf, size_t len, uint8_t tag[static MU_SEALED_TAG_LEN]);
enum mu_err mu_sealed_chunk_open(struct mu_gcm *g, const uint8_t header_hash[static MU_SHA256_LEN], uint64_t i,
				 int final, uint8_t *buf, size_t len, const uint8_t tag[static MU_SEALED_TAG_LEN]);

/* Seals a whole plaintext held in memory into out (exactly the file size for these sizes),
 * one thread; salt is the caller's (random in production, fixed in tests). The plaintext
 * digest is computed here. For tests, fuzz seeds and small files; mu seal streams. */
enum mu_err mu_sealed_seal_mem(const uint8_t *pt, size_t pt_len, const uint8_t key[static MU_KEY_LEN],
			       const uint8_t salt[static MU_SEALED_SALT_LEN], uint32_t chunk_size, uint8_t *out,
			       size_t out_len, struct mu_error *err);

#endif
