/* test_sealed.c — the sealed-model format (seal/sealed.h) and the enclave's unseal path
 * (seal/unseal.h): round trips at every chunk-boundary size, known answers from an
 * independent implementation, and a must-fail case for every check: 1,000 single-bit flips,
 * truncation at every boundary, extra chunks, reordering, wrong key, each header field, a
 * plaintext digest that does not match; decrypted memory is all zero after every failure. */
#include <stdlib.h>
#include <string.h>

#include "base/endian.h"
#include "engine/pool.h"
#include "pal/pal.h"
#include "seal/sealed.h"
#include "seal/unseal.h"
#include "test.h"

#define CS MU_SEALED_CHUNK_MIN /* 64 KiB chunks keep the tests small */

static uint8_t key_a[MU_KEY_LEN], key_b[MU_KEY_LEN], salt0[MU_SEALED_SALT_LEN];

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void)
{
	/* xorshift64*: a fixed sequence, so every failure reproduces */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1du;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + 3 + seed * 131 + (i >> 16));
	return p;
}

static void hex_of(const uint8_t *b, size_t n, char *out) { mu_hex(b, n, out); }

/* Seals pt with key_a and salt0 into a fresh buffer. */
static uint8_t *seal(const uint8_t *pt, size_t n, uint32_t cs, size_t *out_len)
{
	uint64_t nc, fs;
	struct mu_error err;
	if (mu_sealed_layout(n, cs, &nc, &fs, &err))
		return NULL;
	uint8_t *out = malloc((size_t)fs);
	if (mu_sealed_seal_mem(pt, n, key_a, salt0, cs, out, (size_t)fs, &err)) {
		fprintf(stderr, "seal: %s\n", err.msg);
		free(out);
		return NULL;
	}
	*out_len = (size_t)fs;
	return out;
}

/* Unseals; returns the code and leaves the message in err. */
static enum mu_err try_unseal(const uint8_t *f, size_t n, const uint8_t *key, struct mu_pool *pool,
			      struct mu_error *err)
{
	struct mu_unsealed u;
	err->msg[0] = '\0';
	enum mu_err rc = mu_unseal(f, n, key, pool, 0, "m.mus", &u, err);
	if (rc == MU_OK)
		mu_unsealed_free(&u);
	return rc;
}

static int has(const struct mu_error *e, const char *s) { return strstr(e->msg, s) != NULL; }

static void test_layout(void)
{
	static const struct {
		uint64_t pt, n;
	} cases[] = {
		{0, 1}, {1, 1}, {CS - 1, 1}, {CS, 1}, {CS + 1, 2}, {2 * CS, 2}, {2 * CS + 1, 3}, {1000 * CS + 17, 1001},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t n, fs;
		struct mu_error err;
		CHECK(mu_sealed_layout(cases[i].pt, CS, &n, &fs, &err) == MU_OK, "layout %llu",
		      (unsigned long long)cases[i].pt);
		CHECK_EQ_INT(n, cases[i].n);
		CHECK_EQ_INT(fs, 128 + cases[i].pt + 16 * cases[i].n);
	}
	uint64_t n, fs;
	CHECK(mu_sealed_layout(UINT64_MAX - 100, CS, &n, &fs, NULL) == MU_ERR_RANGE, "overflow refused");
	CHECK(mu_sealed_chunk_size_valid(CS) && mu_sealed_chunk_size_valid(MU_SEALED_CHUNK_MAX) &&
		      mu_sealed_chunk_size_valid(4u << 20),
	      "valid chunk sizes");
	CHECK(!mu_sealed_chunk_size_valid(CS / 2) && !mu_sealed_chunk_size_valid(2u * MU_SEALED_CHUNK_MAX) &&
		      !mu_sealed_chunk_size_valid(CS + 1) && !mu_sealed_chunk_size_valid(0) &&
		      !mu_sealed_chunk_size_valid(3u << 20),
	      "invalid chunk sizes");
	uint8_t nonce[12], aad[MU_SEALED_AAD_LEN], hh[32];
	memset(hh, 0xab, sizeof hh);
	mu_sealed_nonce(0x0102030405060708u, nonce);
	static const uint8_t want_nonce[12] = {0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
	CHECK(!memcmp(nonce, want_nonce, 12), "nonce = 4 zero bytes || u64 big-endian index");
	mu_sealed_aad(hh, 0x0102030405060708u, 1, aad);
	CHECK(!memcmp(aad, "mu-seal chunk v1", 16) && !memcmp(aad + 16, hh, 32) && aad[48] == 8 && aad[55] == 1 &&
		      aad[56] == 1,
	      "aad layout");
}

/* Known answers computed by an independent implementation of docs/sealed-format.md in Python
 * (the `cryptography` package's AESGCM and HKDF, hashlib, hmac): key 00..1f, salt 20..3f,
 * plaintext byte i = (7i + 3) mod 256, 64 KiB chunks. */
static void test_known_answers(void)
{
	static const struct {
		size_t n;
		const char *sha;
	} kat[] = {
		{0, "a03c3a22481e66d65a59bf314830fa790729e3282c0998db8482fbe3557db0d4"},
		{200000, "3f301bdcd274cb28d3e074cca38b5b7669522cd54de7ecea99b32c3d10855735"},
	};
	uint8_t key[32], salt[32], id[16];
	char hex[65];
	for (int i = 0; i < 32; i++) {
		key[i] = (uint8_t)i;
		salt[i] = (uint8_t)(32 + i);
	}
	mu_sealed_key_id(key, id);
	hex_of(id, 16, hex);
	CHECK(!strcmp(hex, "e45b9f2016f4e02f083487dbc0cf77ea"), "key id %s", hex);
	for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++) {
		size_t n = kat[k].n;
		uint8_t *pt = malloc(n ? n : 1);
		for (size_t i = 0; i < n; i++)
			pt[i] = (uint8_t)(i * 7 + 3);
		uint64_t nc, fs;
		struct mu_error err;
		mu_sealed_layout(n, CS, &nc, &fs, &err);
		uint8_t *out = malloc((size_t)fs), digest[32];
		CHECK(mu_sealed_seal_mem(pt, n, key, salt, CS, out, (size_t)fs, &err) == MU_OK, "seal_mem");
		mu_sha256(out, (size_t)fs, digest);
		hex_of(digest, 32, hex);
		CHECK(!strcmp(hex, kat[k].sha), "sealed %zu bytes: sha256 %s", n, hex);
		struct mu_unsealed u;
		CHECK(mu_unseal(out, (size_t)fs, key, NULL, 0, "kat", &u, &err) == MU_OK, "%s", err.msg);
		CHECK(u.size == n && (n == 0 || !memcmp(u.mem.data, pt, n)), "kat round trip");
		mu_unsealed_free(&u);
		free(out);
		free(pt);
	}
}

static void test_round_trips(struct mu_pool *pool3)
{
	static const size_t sizes[] = {0, 1, 15, 16, CS - 1, CS, CS + 1, 2 * CS - 1, 2 * CS, 2 * CS + 1,
				       3 * CS + 4097, 20 * CS, 20 * CS + 1, 3000000};
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		size_t n = sizes[k], flen;
		uint8_t *pt = pattern(n, (unsigned)k);
		uint8_t *f = seal(pt, n, CS, &flen);
		CHECK(f != NULL, "seal %zu", n);
		if (!f) {
			free(pt);
			continue;
		}
		CHECK_EQ_INT(flen, 128 + n + 16 * mu_sealed_n_chunks(n, CS));
		for (int t = 0; t < 2; t++) {
			struct mu_unsealed u;
			struct mu_error err;
			enum mu_err rc = mu_unseal(f, flen, key_a, t ? pool3 : NULL, 0, "rt", &u, &err);
			CHECK(rc == MU_OK, "unseal %zu bytes, %d threads: %s", n, t ? 3 : 1, rc ? err.msg : "");
			if (rc)
				continue;
			CHECK(u.size == n && (n == 0 || !memcmp(u.mem.data, pt, n)), "bit-exact %zu", n);
			uint8_t d[32], id[16];
			mu_sha256(pt, n, d);
			mu_sealed_key_id(key_a, id);
			CHECK(!memcmp(u.digest, d, 32) && !memcmp(u.key_id, id, 16), "digest and key id");
			CHECK(u.n_chunks == mu_sealed_n_chunks(n, CS) && u.chunk_size == CS, "chunk count");
			CHECK(u.mem.data != NULL && ((uintptr_t)u.mem.data & 4095) == 0, "page-aligned secret memory");
			CHECK(u.mem.prot != PAL_SECRET_MEMFD, "bulk plaintext avoids memfd_secret unless asked");
			mu_unsealed_free(&u);
			CHECK(u.mem.data == NULL && u.size == 0, "freed");
		}
		free(f);
		free(pt);
	}
	/* memfd_secret on request (or its fallback where the kernel has none). */
	size_t flen;
	uint8_t *pt = pattern(3 * CS + 5, 9), *f = seal(pt, 3 * CS + 5, CS, &flen);
	struct mu_unsealed u;
	struct mu_error err;
	CHECK(mu_unseal(f, flen, key_a, pool3, MU_UNSEAL_SECRETMEM, "rt", &u, &err) == MU_OK, "%s", err.msg);
	CHECK(u.size == 3 * CS + 5 && !memcmp(u.mem.data, pt, u.size), "secretmem round trip");
	CHECK(u.mem.prot == PAL_SECRET_MEMFD || u.mem.prot == PAL_SECRET_MLOCKED, "locked: %s",
	      pal_secret_prot_name(u.mem.prot));
	mu_unsealed_free(&u);
	/* Every chunk size the format allows is accepted (one chunk each here). */
	for (uint32_t cs = CS; cs <= MU_SEALED_CHUNK_MAX; cs <<= 1) {
		size_t fl;
		uint8_t *g = seal(pt, 3 * CS + 5, cs, &fl);
		CHECK(g && try_unseal(g, fl, key_a, pool3, &err) == MU_OK, "chunk size %u: %s", cs, err.msg);
		free(g);
	}
	free(f);
	free(pt);
}

/* The measurement path authenticates and then wipes. */
static void test_bench_decrypt(struct mu_pool *pool3)
{
	size_t n = 5 * CS + 3, flen;
	uint8_t *pt = pattern(n, 4), *f = seal(pt, n, CS, &flen);
	struct pal_secret mem;
	struct mu_error err;
	CHECK(pal_secret_alloc(&mem, n, PAL_SECRET_NO_MEMFD | PAL_SECRET_ALLOW_UNLOCKED, &err) == MU_OK, "%s", err.msg);
	CHECK(mu_unseal_bench_decrypt(f, flen, key_a, pool3, mem.data, mem.len, &err) == MU_OK, "%s", err.msg);
	size_t nz = 0;
	for (size_t i = 0; i < n; i++)
		nz += mem.data[i] != 0;
	CHECK_EQ_INT(nz, 0);
	f[flen - 1] ^= 1;
	CHECK(mu_unseal_bench_decrypt(f, flen, key_a, pool3, mem.data, mem.len, &err) == MU_ERR_AUTH, "bench tamper");
	pal_secret_free(&mem);
	free(f);
	free(pt);
}

/* Which check a single-bit flip at byte pos of a 4-chunk file must trip. */
static int flip_expected(const struct mu_error *e, size_t pos, size_t n_chunks)
{
	if (pos < 8)
		return has(e, "not a sealed model");
	if (pos < 10)
		return has(e, "version");
	if (pos < 12)
		return has(e, "cipher suite");
	if (pos < 16)
		return has(e, "chunk size") || has(e, "truncated") || has(e, "extra") || has(e, "header corrupted");
	if (pos < 56)
		return has(e, "header corrupted");
	if (pos < 72)
		return has(e, "wrong key");
	if (pos < 104)
		return has(e, "header corrupted");
	if (pos < 112)
		return has(e, "reserved");
	if (pos < 128)
		return has(e, "header corrupted");
	size_t i = (pos - 128) / (CS + 16);
	char want[64];
	snprintf(want, sizeof want, "chunk %zu failed authentication", i < n_chunks ? i : n_chunks - 1);
	return has(e, want);
}

static void test_bit_flips(struct mu_pool *pool3)
{
	size_t n = 3 * CS + 1000, flen;
	uint8_t *pt = pattern(n, 1), *f = seal(pt, n, CS, &flen);
	int refused = 0, named = 0, right = 0, shown = 0;
	for (int k = 0; k < 1000; k++) {
		/* a quarter of the flips land in the 128-byte header, the rest anywhere */
		size_t pos = k % 4 == 0 ? (size_t)(rng() % 128) : (size_t)(rng() % flen);
		uint8_t bit = (uint8_t)(1u << (rng() % 8));
		struct mu_error err;
		f[pos] ^= bit;
		enum mu_err rc = try_unseal(f, flen, key_a, (k & 1) ? pool3 : NULL, &err);
		f[pos] ^= bit;
		refused += rc != MU_OK;
		named += strncmp(err.msg, "m.mus: ", 7) == 0;
		if (rc != MU_OK && flip_expected(&err, pos, 4))
			right++;
		else if (shown++ < 5) /* the first few mismatches only */
			fprintf(stderr, "flip at %zu bit %u: %s\n", pos, bit, err.msg);
	}
	CHECK_EQ_INT(refused, 1000);
	CHECK_EQ_INT(named, 1000);
	CHECK_EQ_INT(right, 1000);
	struct mu_error err;
	CHECK(try_unseal(f, flen, key_a, pool3, &err) == MU_OK, "untouched file still unseals");
	free(f);
	free(pt);
}

static void test_truncation_and_extension(struct mu_pool *pool3)
{
	size_t n = 5 * CS + 777, flen;
	uint8_t *pt = pattern(n, 2), *f = seal(pt, n, CS, &flen);
	struct mu_error err;
	char want[80];
	/* at every chunk boundary (0 .. 5 of 6 chunks present) */
	for (size_t k = 0; k < 6; k++) {
		size_t len = 128 + k * (CS + 16);
		CHECK(try_unseal(f, len, key_a, pool3, &err) == MU_ERR_FORMAT, "truncated at %zu", k);
		snprintf(want, sizeof want, "truncated: %zu of 6 chunks present", k);
		CHECK(has(&err, want), "%s / %s", want, err.msg);
	}
	/* inside a chunk: one byte short, mid-chunk, one byte into a chunk */
	static const struct {
		size_t cut;
		size_t chunk;
	} inside[] = {{1, 5}, {777, 5}, {CS + 16 + 800, 3}, {5 * (CS + 16) + 777 + 16 - 1, 0}};
	for (size_t k = 0; k < sizeof inside / sizeof inside[0]; k++) {
		CHECK(try_unseal(f, flen - inside[k].cut, key_a, pool3, &err) == MU_ERR_FORMAT, "inside");
		snprintf(want, sizeof want, "truncated inside chunk %zu", inside[k].chunk);
		CHECK(has(&err, want), "%s / %s", want, err.msg);
	}
	CHECK(try_unseal(f, 127, key_a, pool3, &err) == MU_ERR_FORMAT && has(&err, "not a sealed model"), "%s",
	      err.msg);
	CHECK(try_unseal(f, 0, key_a, pool3, &err) == MU_ERR_FORMAT && has(&err, "not a sealed model"), "%s", err.msg);

	/* an extra chunk: a copy of chunk 1 appended, or of the (short) final chunk */
	size_t stride = CS + 16, last = 777 + 16;
	uint8_t *g = malloc(flen + stride + 1);
	memcpy(g, f, flen);
	memcpy(g + flen, f + 128 + stride, stride);
	CHECK(try_unseal(g, flen + stride, key_a, pool3, &err) == MU_ERR_FORMAT && has(&err, "an extra chunk"), "%s",
	      err.msg);
	memcpy(g + flen, f + flen - last, last);
	CHECK(try_unseal(g, flen + last, key_a, pool3, &err) == MU_ERR_FORMAT && has(&err, "an extra chunk"), "%s",
	      err.msg);
	g[flen] = 0;
	CHECK(try_unseal(g, flen + 1, key_a, pool3, &err) == MU_ERR_FORMAT &&
		      has(&err, "extra data after the final chunk"),
	      "%s", err.msg);
	free(g);
	free(f);
	free(pt);
}

static void swap_chunks(uint8_t *f, size_t a, size_t b)
{
	size_t stride = CS + 16;
	uint8_t *tmp = malloc(stride);
	memcpy(tmp, f + 128 + a * stride, stride);
	memcpy(f + 128 + a * stride, f + 128 + b * stride, stride);
	memcpy(f + 128 + b * stride, tmp, stride);
	free(tmp);
}

static void test_reorder(struct mu_pool *pool3)
{
	struct mu_error err;
	size_t n = 4 * CS + 100, flen;
	uint8_t *pt = pattern(n, 3), *f = seal(pt, n, CS, &flen);
	swap_chunks(f, 0, 1);
	CHECK(try_unseal(f, flen, key_a, NULL, &err) == MU_ERR_AUTH &&
		      has(&err, "chunks reordered: position 0 holds chunk 1"),
	      "%s", err.msg);
	swap_chunks(f, 0, 1);
	swap_chunks(f, 1, 3);
	CHECK(try_unseal(f, flen, key_a, pool3, &err) == MU_ERR_AUTH &&
		      has(&err, "chunks reordered: position 1 holds chunk 3"),
	      "%s", err.msg);
	swap_chunks(f, 1, 3);
	/* a full-size final chunk moved to the front still names itself (its final flag travels with it) */
	free(f);
	free(pt);
	n = 4 * CS;
	pt = pattern(n, 5);
	f = seal(pt, n, CS, &flen);
	swap_chunks(f, 0, 3);
	CHECK(try_unseal(f, flen, key_a, pool3, &err) == MU_ERR_AUTH &&
		      has(&err, "chunks reordered: position 0 holds chunk 3"),
	      "%s", err.msg);
	swap_chunks(f, 0, 3);
	/* a chunk duplicated over another */
	memcpy(f + 128 + 2 * (CS + 16), f + 128, CS + 16);
	CHECK(try_unseal(f, flen, key_a, pool3, &err) == MU_ERR_AUTH &&
		      has(&err, "chunks reordered: position 2 holds chunk 0"),
	      "%s", err.msg);
	/* the same lowest failure on any thread count when two chunks are corrupted */
	free(f);
	f = seal(pt, n, CS, &flen);
	f[128 + 3 * (CS + 16) + 5] ^= 0x10;
	f[128 + 1 * (CS + 16) + 5] ^= 0x10;
	CHECK(try_unseal(f, flen, key_a, NULL, &err) == MU_ERR_AUTH && has(&err, "chunk 1 failed authentication"),
	      "%s", err.msg);
	CHECK(try_unseal(f, flen, key_a, pool3, &err) == MU_ERR_AUTH && has(&err, "chunk 1 failed authentication"),
	      "%s", err.msg);
	free(f);
	free(pt);
}

static void test_wrong_key_and_header(struct mu_pool *pool3)
{
	struct mu_error err;
	size_t n = 2 * CS + 9, flen;
	uint8_t *pt = pattern(n, 6), *f = seal(pt, n, CS, &flen);
	uint8_t ida[16], idb[16];
	char ha[33], hb[33], want[160];
	mu_sealed_key_id(key_a, ida);
	mu_sealed_key_id(key_b, idb);
	hex_of(ida, 16, ha);
	hex_of(idb, 16, hb);
	snprintf(want, sizeof want, "m.mus: wrong key: sealed for key id %s, this key is %s", ha, hb);
	CHECK(try_unseal(f, flen, key_b, pool3, &err) == MU_ERR_AUTH && !strcmp(err.msg, want), "%s", err.msg);

	static const struct {
		size_t off;
		uint64_t val;
		int width;
		enum mu_err code;
		const char *msg;
	} edits[] = {
		{0, 'X', 1, MU_ERR_FORMAT, "not a sealed model"},
		{MU_SEALED_OFF_VERSION, 2, 2, MU_ERR_UNSUPPORTED, "sealed format version 2 is not supported"},
		{MU_SEALED_OFF_VERSION, 0, 2, MU_ERR_UNSUPPORTED, "sealed format version 0 is not supported"},
		{MU_SEALED_OFF_SUITE, 2, 2, MU_ERR_UNSUPPORTED, "cipher suite 2 is not supported"},
		{MU_SEALED_OFF_CHUNK_SIZE, 100000, 4, MU_ERR_FORMAT, "chunk size 100000 is invalid"},
		{MU_SEALED_OFF_CHUNK_SIZE, 32768, 4, MU_ERR_FORMAT, "chunk size 32768 is invalid"},
		{MU_SEALED_OFF_CHUNK_SIZE, 128u << 20, 4, MU_ERR_FORMAT, "chunk size 134217728 is invalid"},
		{MU_SEALED_OFF_CHUNK_SIZE, 128u << 10, 4, MU_ERR_AUTH, "header corrupted (authentication failed)"},
		{MU_SEALED_OFF_PLAINTEXT_SIZE, 2 * CS + 8, 8, MU_ERR_AUTH, "header corrupted"},
		{MU_SEALED_OFF_PLAINTEXT_SIZE, UINT64_MAX, 8, MU_ERR_AUTH, "header corrupted"},
		{MU_SEALED_OFF_DIGEST + 31, 0, 1, MU_ERR_AUTH, "header corrupted"},
		{MU_SEALED_OFF_KEY_ID + 3, 0, 1, MU_ERR_AUTH, "wrong key: sealed for key id"},
		{MU_SEALED_OFF_SALT, 0, 1, MU_ERR_AUTH, "header corrupted"},
		{MU_SEALED_OFF_RESERVED + 7, 1, 1, MU_ERR_FORMAT, "reserved header bytes are not zero"},
		{MU_SEALED_OFF_TAG + 15, 0, 1, MU_ERR_AUTH, "header corrupted"},
	};
	for (size_t k = 0; k < sizeof edits / sizeof edits[0]; k++) {
		uint8_t save[8];
		uint8_t *p = f + edits[k].off;
		memcpy(save, p, 8);
		if (edits[k].width == 1)
			p[0] = (uint8_t)(edits[k].val ? edits[k].val : p[0] ^ 0x5a);
		else if (edits[k].width == 2)
			le16_store(p, (uint16_t)edits[k].val);
		else if (edits[k].width == 4)
			le32_store(p, (uint32_t)edits[k].val);
		else
			le64_store(p, edits[k].val);
		enum mu_err rc = try_unseal(f, flen, key_a, pool3, &err);
		CHECK(rc == edits[k].code && has(&err, edits[k].msg) && !strncmp(err.msg, "m.mus: ", 7),
		      "edit %zu at %zu: got %s '%s', want '%s'", k, edits[k].off, mu_err_name(rc), err.msg, edits[k].msg);
		memcpy(p, save, 8);
	}
	CHECK(try_unseal(f, flen, key_a, pool3, &err) == MU_OK, "restored");
	/* header step alone */
	struct mu_sealed_header h;
	CHECK(mu_unseal_header(f, flen, key_a, NULL, &h, &err) == MU_OK && h.plaintext_size == n && h.n_chunks == 3,
	      "header only");
	CHECK(mu_unseal_header(f, flen, key_b, NULL, &h, &err) == MU_ERR_AUTH && has(&err, "sealed model: wrong key"),
	      "%s", err.msg);
	free(f);
	free(pt);
}

/* Header tags over a plaintext digest that the chunks do not hash to: only a key holder can
 * make such a file, and the enclave must still refuse it. */
static uint8_t *seal_bad_digest(const uint8_t *pt, size_t n, size_t *out_len)
{
	struct mu_sealed_header h;
	struct mu_error err;
	struct mu_gcm g;
	uint8_t digest[32], k_chunk[32];
	mu_sha256(pt, n, digest);
	digest[0] ^= 1;
	uint64_t nc, fs;
	mu_sealed_layout(n, CS, &nc, &fs, &err);
	uint8_t *out = malloc((size_t)fs);
	mu_sealed_header_build(&h, out, key_a, salt0, CS, n, digest, &err);
	mu_sealed_derive(key_a, salt0, k_chunk, NULL);
	mu_gcm_init(&g, k_chunk, 32);
	for (uint64_t i = 0; i < h.n_chunks; i++) {
		uint64_t po, fo;
		size_t len;
		mu_sealed_chunk_span(&h, i, &po, &len, &fo);
		memcpy(out + fo, pt + po, len);
		mu_sealed_chunk_seal(&g, h.hash, i, i + 1 == h.n_chunks, out + fo, len, out + fo + len);
	}
	mu_gcm_free(&g);
	*out_len = (size_t)fs;
	return out;
}

static size_t nonzero(const uint8_t *p, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += p[i] != 0;
	return c;
}

static void test_digest_and_wipe(struct mu_pool *pool3)
{
	struct mu_error err;
	size_t n = 6 * CS + 321, flen;
	uint8_t *pt = pattern(n, 7);
	uint8_t *bad = seal_bad_digest(pt, n, &flen);
	CHECK(try_unseal(bad, flen, key_a, pool3, &err) == MU_ERR_AUTH && has(&err, "m.mus: plaintext digest mismatch"),
	      "%s", err.msg);
	CHECK(try_unseal(bad, flen, key_a, NULL, &err) == MU_ERR_AUTH && has(&err, "plaintext digest mismatch"), "%s",
	      err.msg);

	/* Caller-provided secret memory, pre-filled: after each failure the whole plaintext
	 * range is zero, including chunks that had decrypted and authenticated. */
	struct pal_secret mem;
	struct mu_sealed_header h;
	CHECK(pal_secret_alloc(&mem, n, PAL_SECRET_NO_MEMFD | PAL_SECRET_ALLOW_UNLOCKED, &err) == MU_OK, "%s", err.msg);
	for (int t = 0; t < 2; t++) {
		struct mu_pool *p = t ? pool3 : NULL;
		memset(mem.data, 0xa5, n);
		CHECK(mu_unseal_into(bad, flen, key_a, p, 0, "w", mem.data, mem.len, &h, &err) == MU_ERR_AUTH,
		      "digest mismatch into");
		CHECK_EQ_INT(nonzero(mem.data, n), 0);

		uint8_t *f = seal(pt, n, CS, &flen);
		memset(mem.data, 0xa5, n);
		CHECK(mu_unseal_into(f, flen, key_a, p, 0, "w", mem.data, mem.len, &h, &err) == MU_OK, "%s", err.msg);
		CHECK(!memcmp(mem.data, pt, n), "into: bit-exact");

		f[flen - 3] ^= 0x80; /* last chunk's tag: every other chunk decrypted first */
		memset(mem.data, 0xa5, n);
		CHECK(mu_unseal_into(f, flen, key_a, p, 0, "w", mem.data, mem.len, &h, &err) == MU_ERR_AUTH &&
			      has(&err, "chunk 6 failed authentication"),
		      "%s", err.msg);
		CHECK_EQ_INT(nonzero(mem.data, n), 0);
		f[flen - 3] ^= 0x80;

		swap_chunks(f, 2, 4); /* the diagnosis decrypts a chunk successfully, then wipes it */
		memset(mem.data, 0xa5, n);
		CHECK(mu_unseal_into(f, flen, key_a, p, 0, "w", mem.data, mem.len, &h, &err) == MU_ERR_AUTH &&
			      has(&err, "position 2 holds chunk 4"),
		      "%s", err.msg);
		CHECK_EQ_INT(nonzero(mem.data, n), 0);
		CHECK(mu_unseal_into(f, flen, key_a, p, 0, "w", mem.data, n - 1, &h, &err) == MU_ERR_NOMEM,
		      "short destination refused");
		free(f);
	}
	pal_secret_free(&mem);
	CHECK(mem.data == NULL, "secret freed");
	free(bad);
	free(pt);
}

static void test_secret_mem(void)
{
	struct pal_secret s;
	struct mu_error err;
	static const unsigned flags[] = {0, PAL_SECRET_NO_MEMFD};
	for (size_t k = 0; k < 2; k++) {
		for (size_t n = 0; n < 10000; n += 4999) {
			enum mu_err rc = pal_secret_alloc(&s, n, flags[k] | PAL_SECRET_ALLOW_UNLOCKED, &err);
			CHECK(rc == MU_OK, "secret alloc %zu: %s", n, err.msg);
			if (rc)
				continue;
			CHECK(s.data && s.len == n && s.map_len >= n && s.map_len % 4096 == 0, "secret shape");
			CHECK_EQ_INT(nonzero(s.data, s.map_len), 0);
			if (flags[k])
				CHECK(s.prot != PAL_SECRET_MEMFD, "NO_MEMFD honoured");
			memset(s.data, 0x77, s.map_len);
			pal_secret_wipe(&s, n);
			CHECK_EQ_INT(nonzero(s.data, n), 0);
			pal_secret_free(&s);
			CHECK(s.data == NULL && s.len == 0, "secret free");
		}
	}
	pal_secret_free(&s); /* twice is harmless */
}

int main(void)
{
	struct mu_pool *pool3 = NULL;
	struct mu_error err;
	for (int i = 0; i < 32; i++) {
		key_a[i] = (uint8_t)(0x40 + i);
		key_b[i] = (uint8_t)(0x80 + i);
		salt0[i] = (uint8_t)(0xc0 + i);
	}
	if (mu_pool_create(&pool3, 3, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	test_layout();
	test_known_answers();
	test_secret_mem();
	test_round_trips(pool3);
	test_bench_decrypt(pool3);
	test_bit_flips(pool3);
	test_truncation_and_extension(pool3);
	test_reorder(pool3);
	test_wrong_key_and_header(pool3);
	test_digest_and_wipe(pool3);
	mu_pool_destroy(pool3);
	return test_done();
}
