/* fuzz_sealed.c — libFuzzer harness for the sealed-model reader (seal/sealed.h, unseal.h).
 *
 * Each input is unsealed with a fixed key (bytes 00..1f, the key of the seed corpus) twice:
 * as given, which exercises the header checks, key id and header tag; and with its header
 * re-authenticated (key id and tag recomputed over whatever fields the input holds), which
 * lets the fuzzer reach the length checks, chunk authentication, the reordering diagnosis
 * and the digest check with any sizes it likes. Invariants: a refusal has a typed code and a
 * message naming the file; an acceptance means the length equation holds and the plaintext
 * hashes to the header's digest; after a refusal into caller memory that memory is all zero.
 * The second pass alternates between one thread and a pool of two. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/endian.h"
#include "engine/pool.h"
#include "seal/sealed.h"
#include "seal/unseal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mu_pool *pool2;

static void require(int cond)
{
	if (!cond)
		__builtin_trap();
}

static void fuzz_key(uint8_t key[static MU_KEY_LEN])
{
	for (int i = 0; i < MU_KEY_LEN; i++)
		key[i] = (uint8_t)i;
}

static void check_refusal(enum mu_err rc, const struct mu_error *err)
{
	require(rc == MU_ERR_FORMAT || rc == MU_ERR_UNSUPPORTED || rc == MU_ERR_AUTH);
	require(strncmp(err->msg, "fuzz.mus: ", 10) == 0 && err->msg[10] != '\0');
}

static void unseal_once(const uint8_t *data, size_t size, const uint8_t key[static MU_KEY_LEN], struct mu_pool *pool)
{
	struct mu_unsealed u;
	struct mu_error err;
	err.msg[0] = '\0';
	enum mu_err rc = mu_unseal(data, size, key, pool, MU_UNSEAL_ALLOW_UNLOCKED, "fuzz.mus", &u, &err);
	if (rc != MU_OK) {
		check_refusal(rc, &err);
		require(u.mem.data == NULL);
		return;
	}
	uint64_t n, fs;
	uint8_t digest[MU_SHA256_LEN];
	require(mu_sealed_layout(u.size, u.chunk_size, &n, &fs, NULL) == MU_OK);
	require(n == u.n_chunks && fs == size);
	mu_sha256(u.mem.data, (size_t)u.size, digest);
	require(memcmp(digest, u.digest, sizeof digest) == 0);
	mu_unsealed_free(&u);
}

/* The same through caller memory: on a refusal the plaintext range must be all zero. */
static void unseal_into_once(const uint8_t *data, size_t size, const uint8_t key[static MU_KEY_LEN])
{
	struct mu_sealed_header h;
	struct mu_error err;
	if (mu_unseal_header(data, size, key, "fuzz.mus", &h, &err) != MU_OK)
		return;
	size_t n = (size_t)h.plaintext_size;
	uint8_t *dst = malloc(n ? n : 1);
	if (!dst)
		return;
	memset(dst, 0xa5, n ? n : 1);
	enum mu_err rc = mu_unseal_into(data, size, key, NULL, MU_UNSEAL_ALLOW_UNLOCKED, "fuzz.mus", dst, n, &h, &err);
	if (rc != MU_OK) {
		check_refusal(rc, &err);
		for (size_t i = 0; i < n; i++)
			require(dst[i] == 0);
	}
	free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t key[MU_KEY_LEN];
	fuzz_key(key);
	if (!pool2 && mu_pool_create(&pool2, 2, NULL) != MU_OK)
		pool2 = NULL;

	unseal_once(data, size, key, NULL);
	if (size < MU_SEALED_HEADER_LEN)
		return 0;

	/* Re-authenticate the header under the fuzz key. */
	uint8_t *copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	uint8_t salt[MU_SEALED_SALT_LEN], k_hdr[MU_KEY_LEN], mac[MU_SHA256_LEN];
	mu_sealed_key_id(key, copy + MU_SEALED_OFF_KEY_ID);
	memcpy(salt, copy + MU_SEALED_OFF_SALT, sizeof salt);
	require(mu_sealed_derive(key, salt, NULL, k_hdr) == MU_OK);
	mu_hmac_sha256(k_hdr, sizeof k_hdr, copy, MU_SEALED_OFF_TAG, mac);
	memcpy(copy + MU_SEALED_OFF_TAG, mac, MU_SEALED_TAG_LEN);

	unseal_once(copy, size, key, (data[size - 1] & 1) ? pool2 : NULL);
	unseal_into_once(copy, size, key);
	free(copy);
	return 0;
}
