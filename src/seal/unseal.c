/* unseal.c — parallel, pipelined unsealing into secret memory; see unseal.h.
 *
 * Work sharing: chunks are handed out in index order from one atomic counter, so when chunk
 * k fails every chunk below k has been taken and finishes; the lowest failing index is
 * therefore the same on any thread count, and so is the message. Each finished chunk
 * publishes a state word (0 pending, 1 authentic, 2 failed). Thread 0 is also the hasher:
 * it feeds authentic chunks to SHA-256 in index order, takes a chunk to decrypt itself only
 * when the next one to hash is not ready, and sleeps on that chunk's word (futex) when none
 * is left to take. With one thread this degenerates to decrypt-then-hash per chunk, while
 * the chunk is still in cache.
 */
#include "seal/unseal.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>

#include "base/limits.h"

#define NO_FAIL UINT64_MAX
#define HASH_SPIN 2048

enum { CHUNK_PENDING = 0, CHUNK_OK = 1, CHUNK_BAD = 2 };

/* Lives in secret memory: the chunk key, one key schedule per thread, the running digest. */
struct unseal_secrets {
	uint8_t k_chunk[MU_KEY_LEN];
	struct mu_sha256_ctx sha;
	struct mu_gcm gcm[];
};

struct unseal_job {
	const uint8_t *sealed;
	uint8_t *dst;
	const struct mu_sealed_header *h;
	struct unseal_secrets *s;
	int hash;
	_Atomic uint64_t next;    /* next chunk to hand out */
	_Atomic uint64_t fail;    /* lowest failing chunk, NO_FAIL when none */
	_Atomic uint64_t waiting; /* 1 + the chunk the hasher sleeps on, 0 when awake */
	_Atomic uint32_t *state;  /* n_chunks words */
	uint64_t hashed;          /* chunks fed to the digest (hasher only) */
};

static const char *fname(const char *name) { return name ? name : "sealed model"; }

static uint32_t *futex_word(_Atomic uint32_t *a) { return (uint32_t *)(void *)a; }

/* memset the compiler may not drop: the buffer is about to be handed back or unmapped. */
static void wipe(void *p, size_t n)
{
	if (!n)
		return;
	memset(p, 0, n);
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

/* Overwrites the stack below the caller, where BearSSL left message schedules and GHASH
 * state of the last blocks it processed. */
__attribute__((noinline)) static void burn_stack(void)
{
	uint8_t pad[16384];
	wipe(pad, sizeof pad);
}

static void open_chunk(struct unseal_job *j, struct mu_gcm *g, uint64_t i)
{
	const struct mu_sealed_header *h = j->h;
	uint64_t pt_off, file_off;
	size_t len;
	uint8_t tag[MU_SEALED_TAG_LEN];

	mu_sealed_chunk_span(h, i, &pt_off, &len, &file_off);
	uint8_t *buf = j->dst + pt_off;
	if (len)
		memcpy(buf, j->sealed + file_off, len);
	memcpy(tag, j->sealed + file_off + len, sizeof tag);
	uint32_t st = CHUNK_OK;
	if (mu_sealed_chunk_open(g, h->hash, i, i + 1 == h->n_chunks, buf, len, tag) != MU_OK) {
		st = CHUNK_BAD;
		uint64_t cur = atomic_load(&j->fail);
		while (i < cur && !atomic_compare_exchange_weak(&j->fail, &cur, i))
			;
	}
	atomic_store(&j->state[i], st);
	if (atomic_load(&j->waiting) == i + 1)
		pal_wake_all(futex_word(&j->state[i]));
}

/* Hasher: blocks until chunk i is no longer pending. */
static void wait_chunk(struct unseal_job *j, uint64_t i)
{
	for (int spins = 0; atomic_load_explicit(&j->state[i], memory_order_acquire) == CHUNK_PENDING; spins++) {
		if (spins < HASH_SPIN) {
			pal_cpu_relax();
			continue;
		}
		/* Announce, then re-check inside the futex: either the opener sees waiting or
		 * the futex sees the new state (both sides are sequentially consistent). */
		atomic_store(&j->waiting, i + 1);
		pal_wait(futex_word(&j->state[i]), CHUNK_PENDING);
		atomic_store(&j->waiting, 0);
	}
}

static void unseal_worker(void *ctx, int ith, int nth)
{
	struct unseal_job *j = ctx;
	struct mu_gcm *g = &j->s->gcm[ith];
	const uint64_t n = j->h->n_chunks;
	const int hasher = j->hash && ith == 0;
	(void)nth;

	for (;;) {
		if (hasher) {
			while (j->hashed < n &&
			       atomic_load_explicit(&j->state[j->hashed], memory_order_acquire) == CHUNK_OK) {
				uint64_t pt_off, file_off;
				size_t len;
				mu_sealed_chunk_span(j->h, j->hashed, &pt_off, &len, &file_off);
				mu_sha256_update(&j->s->sha, j->dst + pt_off, len);
				j->hashed++;
			}
			if (j->hashed == n)
				break;
		}
		if (atomic_load(&j->fail) != NO_FAIL)
			break;
		if (atomic_load(&j->next) < n) {
			uint64_t i = atomic_fetch_add(&j->next, 1);
			if (i < n) {
				open_chunk(j, g, i);
				continue;
			}
		}
		if (!hasher)
			break;
		wait_chunk(j, j->hashed);
	}
	burn_stack();
}

/* Chunk i failed: does its ciphertext authenticate as another chunk? Each trial decrypts
 * into chunk i's own slot of secret memory (mu_gcm_open wipes it on failure), so at most
 * n_chunks trials of one chunk each: bounded by the file size, and only on this path. */
static enum mu_err diagnose(struct unseal_job *j, uint64_t i, const char *name, struct mu_error *err)
{
	const struct mu_sealed_header *h = j->h;
	uint64_t pt_off, file_off, o2, f2;
	size_t len, len2;
	uint8_t tag[MU_SEALED_TAG_LEN];

	mu_sealed_chunk_span(h, i, &pt_off, &len, &file_off);
	memcpy(tag, j->sealed + file_off + len, sizeof tag);
	for (uint64_t k = 0; k < h->n_chunks; k++) {
		if (k == i)
			continue;
		mu_sealed_chunk_span(h, k, &o2, &len2, &f2);
		if (len2 != len)
			continue;
		if (len)
			memcpy(j->dst + pt_off, j->sealed + file_off, len);
		if (mu_sealed_chunk_open(&j->s->gcm[0], h->hash, k, k + 1 == h->n_chunks, j->dst + pt_off, len, tag) ==
		    MU_OK) {
			wipe(j->dst + pt_off, len);
			return mu_errf(err, MU_ERR_AUTH, "%s: chunks reordered: position %" PRIu64 " holds chunk %" PRIu64,
				       fname(name), i, k);
		}
	}
	return mu_errf(err, MU_ERR_AUTH, "%s: chunk %" PRIu64 " failed authentication (corrupted)", fname(name), i);
}

/* Steps 4 and 5 for a header that passed steps 1-3. dst holds at least plaintext_size bytes. */
static enum mu_err unseal_run(const uint8_t *sealed, const uint8_t key[static MU_KEY_LEN],
			      const struct mu_sealed_header *h, struct mu_pool *pool, unsigned flags, int hash,
			      const char *name, uint8_t *dst, struct mu_error *err)
{
	int nth = pool ? mu_pool_threads(pool) : 1;
	struct pal_secret sec;
	struct unseal_job j;
	enum mu_err rc;

	/* The length check passed, so n_chunks <= len / 16 and every size below fits. */
	size_t state_len = (size_t)h->n_chunks * sizeof(uint32_t);
	_Atomic uint32_t *state = pal_alloc(state_len, 64);
	if (!state)
		return mu_errf(err, MU_ERR_NOMEM, "%s: out of memory for %" PRIu64 " chunk states", fname(name),
			       h->n_chunks);
	size_t sec_len = sizeof(struct unseal_secrets) + (size_t)nth * sizeof(struct mu_gcm);
	if ((rc = pal_secret_alloc(&sec, sec_len, flags & MU_UNSEAL_ALLOW_UNLOCKED ? PAL_SECRET_ALLOW_UNLOCKED : 0,
				   err))) {
		pal_free(state, state_len);
		return mu_err_prefix(err, "%s", fname(name));
	}
	for (size_t k = 0; k < h->n_chunks; k++)
		atomic_init(&state[k], CHUNK_PENDING);

	struct unseal_secrets *s = (struct unseal_secrets *)(void *)sec.data;
	rc = mu_sealed_derive(key, h->salt, s->k_chunk, NULL);
	for (int t = 0; rc == MU_OK && t < nth; t++)
		rc = mu_gcm_init(&s->gcm[t], s->k_chunk, MU_KEY_LEN);
	mu_wipe(s->k_chunk, MU_KEY_LEN);
	if (rc) {
		pal_secret_free(&sec);
		pal_free(state, state_len);
		return mu_errf(err, MU_ERR_INTERNAL, "%s: chunk key setup failed", fname(name));
	}
	mu_sha256_init(&s->sha);

	j.sealed = sealed;
	j.dst = dst;
	j.h = h;
	j.s = s;
	j.hash = hash;
	atomic_init(&j.next, 0);
	atomic_init(&j.fail, NO_FAIL);
	atomic_init(&j.waiting, 0);
	j.state = state;
	j.hashed = 0;
	if (pool)
		mu_pool_run(pool, unseal_worker, &j);
	else
		unseal_worker(&j, 0, 1);

	uint64_t bad = atomic_load(&j.fail);
	if (bad != NO_FAIL) {
		rc = diagnose(&j, bad, name, err);
	} else if (hash) {
		uint8_t digest[MU_SHA256_LEN];
		mu_sha256_final(&s->sha, digest);
		if (!mu_ct_eq(digest, h->digest, sizeof digest))
			rc = mu_errf(err, MU_ERR_AUTH,
				     "%s: plaintext digest mismatch (every chunk authenticates, but the plaintext does "
				     "not hash to the header's SHA-256)",
				     fname(name));
		wipe(digest, sizeof digest);
	}
	for (int t = 0; t < nth; t++)
		mu_gcm_free(&s->gcm[t]);
	pal_secret_free(&sec); /* wipes the digest state too */
	pal_free(state, state_len);
	if (rc)
		wipe(dst, (size_t)h->plaintext_size);
	return rc;
}

enum mu_err mu_unseal_header(const uint8_t *sealed, size_t len, const uint8_t key[static MU_KEY_LEN],
			     const char *name, struct mu_sealed_header *h, struct mu_error *err)
{
	uint8_t hdr[MU_SEALED_HEADER_LEN];
	enum mu_err rc;
	/* One copy of the header: every later check reads the same bytes. */
	if (len)
		memcpy(hdr, sealed, len < sizeof hdr ? len : sizeof hdr);
	if ((rc = mu_sealed_header_parse(h, hdr, len, name, err)))
		return rc;
	if ((rc = mu_sealed_header_auth(h, hdr, key, name, err)))
		return rc;
	/* After this, plaintext_size + 16 * n_chunks + 128 == len: every size fits in size_t. */
	return mu_sealed_check_length(h, len, name, err);
}

enum mu_err mu_unseal_into(const uint8_t *sealed, size_t len, const uint8_t key[static MU_KEY_LEN],
			   struct mu_pool *pool, unsigned flags, const char *name, uint8_t *dst, size_t dst_len,
			   struct mu_sealed_header *h, struct mu_error *err)
{
	enum mu_err rc;
	if ((rc = mu_unseal_header(sealed, len, key, name, h, err)))
		return rc;
	if (dst_len < h->plaintext_size)
		return mu_errf(err, MU_ERR_NOMEM, "%s: %zu bytes given for a plaintext of %" PRIu64, fname(name), dst_len,
			       h->plaintext_size);
	return unseal_run(sealed, key, h, pool, flags, 1, name, dst, err);
}

enum mu_err mu_unseal(const uint8_t *sealed, size_t len, const uint8_t key[static MU_KEY_LEN], struct mu_pool *pool,
		      unsigned flags, const char *name, struct mu_unsealed *out, struct mu_error *err)
{
	struct mu_sealed_header h;
	enum mu_err rc;

	memset(out, 0, sizeof *out);
	if ((rc = mu_unseal_header(sealed, len, key, name, &h, err)))
		return rc;
	unsigned pf = (flags & MU_UNSEAL_ALLOW_UNLOCKED ? PAL_SECRET_ALLOW_UNLOCKED : 0) |
		      (flags & MU_UNSEAL_SECRETMEM ? 0 : PAL_SECRET_NO_MEMFD);
	if ((rc = pal_secret_alloc(&out->mem, (size_t)h.plaintext_size, pf, err)))
		return mu_err_prefix(err, "%s", fname(name));
	if ((rc = unseal_run(sealed, key, &h, pool, flags, 1, name, out->mem.data, err))) {
		pal_secret_free(&out->mem);
		memset(out, 0, sizeof *out);
		return rc;
	}
	out->size = h.plaintext_size;
	memcpy(out->digest, h.digest, sizeof out->digest);
	memcpy(out->key_id, h.key_id, sizeof out->key_id);
	memcpy(out->header_hash, h.hash, sizeof out->header_hash);
	out->chunk_size = h.chunk_size;
	out->n_chunks = h.n_chunks;
	return MU_OK;
}

void mu_unsealed_free(struct mu_unsealed *u)
{
	pal_secret_free(&u->mem);
	memset(u, 0, sizeof *u);
}

enum mu_err mu_unseal_bench_decrypt(const uint8_t *sealed, size_t len, const uint8_t key[static MU_KEY_LEN],
				    struct mu_pool *pool, uint8_t *dst, size_t dst_len, struct mu_error *err)
{
	struct mu_sealed_header h;
	enum mu_err rc;
	if ((rc = mu_unseal_header(sealed, len, key, NULL, &h, err)))
		return rc;
	if (dst_len < h.plaintext_size)
		return mu_errf(err, MU_ERR_NOMEM, "%zu bytes given for a plaintext of %" PRIu64, dst_len,
			       h.plaintext_size);
	rc = unseal_run(sealed, key, &h, pool, MU_UNSEAL_ALLOW_UNLOCKED, 0, NULL, dst, err);
	wipe(dst, (size_t)h.plaintext_size);
	return rc;
}
