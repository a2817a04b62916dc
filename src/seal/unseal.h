/* unseal.h — the enclave side of the sealed-model format (seal/sealed.h): authenticate and
 * decrypt a sealed model straight into locked, non-dumpable memory.
 *
 * Plaintext never touches ordinary memory: each chunk's ciphertext is copied into the secret
 * buffer at its plaintext position and opened there in place, and the contexts holding keys,
 * key schedules and the running digest live in secret memory too. Chunks are decrypted in
 * parallel on the caller's pool; thread 0 hashes the plaintext in order while the others run
 * ahead (SHA-256 is sequential, and in BearSSL several times slower than AES-GCM, so it sets
 * the pace: see docs/sealed-format.md). Success means every chunk tag AND the plaintext
 * SHA-256 verified. On any failure every decrypted byte is wiped before the call returns.
 *
 * The sealed bytes are untrusted and may change under us (a file the host maps): the header
 * is copied once and every chunk and tag is read once, into the buffer that is then checked.
 */
#ifndef MU_SEAL_UNSEAL_H
#define MU_SEAL_UNSEAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "engine/pool.h"
#include "pal/pal.h"
#include "seal/sealed.h"

/* Flags for mu_unseal. */
#define MU_UNSEAL_ALLOW_UNLOCKED 1u /* accept memory that could not be mlock'd (mem.prot says so) */
#define MU_UNSEAL_SECRETMEM 2u      /* plaintext in memfd_secret memory: outside the kernel's direct
				     * map, but slow to fault in (~15 s per GB in a VM) */

struct mu_unsealed {
	struct pal_secret mem; /* the plaintext: mem.data[0 .. size) */
	uint64_t size;
	uint8_t digest[MU_SHA256_LEN];
	uint8_t key_id[MU_SEALED_KEY_ID_LEN];
	uint8_t header_hash[MU_SHA256_LEN]; /* SHA-256 of the header this plaintext was opened under */
	uint32_t chunk_size;
	uint64_t n_chunks;
};

/* Verifies and decrypts sealed[0..len) with the model key into fresh secret memory in *out
 * (free with mu_unsealed_free). pool may be NULL (one thread). name names the file in
 * messages. On failure *out is empty and nothing decrypted survives. */
enum mu_err mu_unseal(const uint8_t *sealed, size_t len, const uint8_t key[static MU_KEY_LEN], struct mu_pool *pool,
		      unsigned flags, const char *name, struct mu_unsealed *out, struct mu_error *err);
/* Wipes, unlocks and unmaps the plaintext; safe on an empty struct. */
void mu_unsealed_free(struct mu_unsealed *u);

/* The header, key and file-length checks alone (steps 1-3 of sealed.h), e.g. to size memory. */
enum mu_err mu_unseal_header(const uint8_t *sealed, size_t len, const uint8_t key[static MU_KEY_LEN],
			     const char *name, struct mu_sealed_header *h, struct mu_error *err);

/* Like mu_unseal into caller memory dst (dst_len >= the plaintext size), which the caller
 * must have allocated as secret memory. On failure dst[0 .. plaintext size) is all zero.
 * flags: MU_UNSEAL_ALLOW_UNLOCKED applies to the small context area. */
enum mu_err mu_unseal_into(const uint8_t *sealed, size_t len, const uint8_t key[static MU_KEY_LEN],
			   struct mu_pool *pool, unsigned flags, const char *name, uint8_t *dst, size_t dst_len,
			   struct mu_sealed_header *h, struct mu_error *err);

/* Measurement only: authenticates and decrypts every chunk into dst exactly as mu_unseal_into
 * does but skips the plaintext digest, then wipes dst whatever the outcome. Returns MU_OK
 * when every tag verified. It never yields plaintext, so it cannot stand in for unsealing. */
enum mu_err mu_unseal_bench_decrypt(const uint8_t *sealed, size_t len, const uint8_t key[static MU_KEY_LEN],
				    struct mu_pool *pool, uint8_t *dst, size_t dst_len, struct mu_error *err);

#endif
