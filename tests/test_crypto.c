/* test_crypto.c — the BearSSL wrappers of src/seal/crypto.c against independent vectors.
 *
 * Wycheproof (../shared/vectors/wycheproof, read with the strict JSON parser, every field of
 * every group and test checked against the schema) through our wrappers, never BearSSL itself:
 *   aes_gcm_test.json      mu_gcm_seal / mu_gcm_open, every key, IV and tag size in the file.
 *                          "valid": seal gives ct and tag, open recovers msg, and a flipped bit
 *                          in tag, ciphertext or AAD is refused with the buffer wiped.
 *                          "invalid" (modified tags): open refuses with MU_ERR_AUTH and wipes
 *                          the buffer; an empty IV is refused by seal and open (MU_ERR_ARG)
 *                          before anything is encrypted or decrypted.
 *   x25519_test.json       mu_x25519. An all-zero expected secret (every low-order public key)
 *                          must be refused with MU_ERR_AUTH; every other case, "acceptable" ones
 *                          (twist points, non-canonical u) included, must give the file's secret,
 *                          as RFC 7748 computes it. Outcomes are counted per flag.
 *   hkdf_sha256_test.json  mu_hkdf_sha256; the "invalid" sizes (> 255 * 32) must be refused
 *                          with MU_ERR_RANGE and nothing written.
 *   hmac_sha256_test.json  mu_hmac_sha256; truncated tags compare as a prefix, "invalid" tags
 *                          must not match.
 * Then known answers and edge cases for the rest: SHA-256 (FIPS 180-2 examples, the empty
 * message, one million 'a'), RFC 7748 X25519 (section 5.2 and the 1000-fold iteration, the
 * section 6.1 exchange), mu_ct_eq, mu_wipe, mu_hex/mu_unhex and the refusals of the GCM
 * wrapper (key length, freed context, tag length, message length). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pal/pal.h"
#include "seal/crypto.h"
#include "test.h"
#include "testutil.h"
#include "wire/json.h"

static const char *shared_dir(void)
{
	const char *s = getenv("SHARED");
	return s && *s ? s : "../shared";
}


static int all_zero(const uint8_t *p, size_t n)
{
	uint8_t d = 0;
	for (size_t i = 0; i < n; i++)
		d |= p[i];
	return d == 0;
}

/* ---- reading a Wycheproof file ---- */

struct vecfile {
	const char *name;
	uint8_t *src;
	size_t len;
	void *mem;
	struct json_doc doc;
	uint32_t groups;  /* the testGroups array */
	int64_t declared; /* numberOfTests */
};

static int vec_open(struct vecfile *f, const char *name, const char *algorithm)
{
	char path[1024];
	struct mu_error err = {0};
	memset(f, 0, sizeof *f);
	f->name = name;
	snprintf(path, sizeof path, "%s/vectors/wycheproof/%s", shared_dir(), name);
	if (pal_read_file(path, 16u << 20, &f->src, &f->len, &err) != MU_OK) {
		CHECK(0, "%s", err.msg);
		return 0;
	}
	struct json_limits lim = JSON_LIMITS_TOOL;
	size_t need = 0;
	if (json_mem_size(&lim, f->len, &need, &err) != MU_OK) {
		CHECK(0, "%s: %s", name, err.msg);
		return 0;
	}
	f->mem = xmalloc(need);
	if (json_parse(&f->doc, f->src, f->len, &lim, f->mem, need, &err) != MU_OK) {
		CHECK(0, "%s: %s", name, err.msg);
		return 0;
	}
	static const char *const root_keys[] = {"algorithm", "schema", "numberOfTests", "header", "notes", "testGroups"};
	const struct json_doc *d = &f->doc;
	int ok = json_obj_only(d, 0, root_keys, sizeof root_keys / sizeof root_keys[0], &err) == MU_OK;
	CHECK(ok, "%s: %s", name, err.msg);
	ok = ok && json_str_eq(d, json_obj_get(d, 0, "algorithm"), algorithm);
	ok = ok && json_get_int(d, json_obj_get(d, 0, "numberOfTests"), 1, 1000000, &f->declared, &err) == MU_OK;
	f->groups = json_obj_get(d, 0, "testGroups");
	ok = ok && json_type(d, f->groups) == JSON_ARRAY;
	CHECK(ok, "%s: not a Wycheproof %s file", name, algorithm);
	return ok;
}

static void vec_close(struct vecfile *f)
{
	if (f->src)
		pal_free(f->src, f->len + 1);
	free(f->mem);
	memset(f, 0, sizeof *f);
}

/* Decodes the hex string member key of obj into a fresh buffer of exactly its length (so ASan
 * sees any overread); NULL when absent or not hex. */
static uint8_t *hex_member(const struct json_doc *d, uint32_t obj, const char *key, size_t *n)
{
	const char *s;
	size_t slen;
	if (!json_str_raw(d, json_obj_get(d, obj, key), &s, &slen) || slen % 2)
		return NULL;
	uint8_t *out = xmalloc(slen / 2);
	if (mu_unhex(s, slen, out, slen / 2) != 0) {
		free(out);
		return NULL;
	}
	*n = slen / 2;
	return out;
}

static int64_t int_member(const struct json_doc *d, uint32_t obj, const char *key)
{
	int64_t v = -1;
	struct mu_error err;
	if (json_get_int(d, json_obj_get(d, obj, key), 0, INT32_MAX, &v, &err) != MU_OK)
		return -1;
	return v;
}

enum result { R_VALID, R_INVALID, R_ACCEPTABLE, R_N };
static const char *const result_name[R_N] = {"valid", "invalid", "acceptable"};

static int result_of(const struct json_doc *d, uint32_t t)
{
	uint32_t r = json_obj_get(d, t, "result");
	for (int i = 0; i < R_N; i++)
		if (json_str_eq(d, r, result_name[i]))
			return i;
	return -1;
}

static int has_flag(const struct json_doc *d, uint32_t t, const char *flag)
{
	struct json_iter it;
	uint32_t k, v;
	json_iter_init(&it, d, json_obj_get(d, t, "flags"));
	while (json_iter_next(&it, &k, &v))
		if (json_str_eq(d, v, flag))
			return 1;
	return 0;
}

/* Per-file tally: vectors by result type, and how many behaved as the file says. */
struct tally {
	int n, ok;
	int by_result[R_N], ok_by_result[R_N];
};

static void tally_add(struct tally *t, int result, int ok)
{
	t->n++;
	t->ok += ok;
	t->by_result[result]++;
	t->ok_by_result[result] += ok;
}

static void tally_print(const struct vecfile *f, const struct tally *t)
{
	printf("%s: %d vectors, %d as expected, %d not (", f->name, t->n, t->ok, t->n - t->ok);
	for (int i = 0; i < R_N; i++)
		printf("%s%s %d/%d", i ? ", " : "", result_name[i], t->ok_by_result[i], t->by_result[i]);
	printf(")\n");
	CHECK(t->n == f->declared, "%s: ran %d of the %lld vectors numberOfTests declares", f->name, t->n,
	      (long long)f->declared);
}

/* Checks the group and test fields against the schema; returns the result type or -1. */
static int test_header(const struct vecfile *f, uint32_t t, const char *const *keys, size_t n_keys, int64_t *tc)
{
	const struct json_doc *d = &f->doc;
	struct mu_error err;
	*tc = int_member(d, t, "tcId");
	if (json_obj_only(d, t, keys, n_keys, &err) != MU_OK) {
		fprintf(stderr, "%s tcId %lld: %s\n", f->name, (long long)*tc, err.msg);
		return -1;
	}
	int r = result_of(d, t);
	if (r < 0 || *tc < 0)
		fprintf(stderr, "%s tcId %lld: bad tcId or result\n", f->name, (long long)*tc);
	return *tc < 0 ? -1 : r;
}

static int group_header(const struct vecfile *f, uint32_t g, const char *const *keys, size_t n_keys, const char *type)
{
	const struct json_doc *d = &f->doc;
	struct mu_error err;
	int ok = json_obj_only(d, g, keys, n_keys, &err) == MU_OK;
	CHECK(ok, "%s: %s", f->name, err.msg);
	ok = ok && json_str_eq(d, json_obj_get(d, g, "type"), type) &&
	     json_type(d, json_obj_get(d, g, "tests")) == JSON_ARRAY;
	CHECK(ok, "%s: group is not a %s group", f->name, type);
	return ok;
}

#define FAILV(...)                                                                \
	do {                                                                      \
		fprintf(stderr, "%s tcId %lld: ", fname, (long long)tc);          \
		fprintf(stderr, __VA_ARGS__);                                     \
		fputc('\n', stderr);                                              \
		ok = 0;                                                           \
	} while (0)

/* ---- AES-GCM ---- */

struct gcm_vec {
	uint8_t *key, *iv, *aad, *msg, *ct, *tag;
	size_t key_len, iv_len, aad_len, msg_len, ct_len, tag_len;
};

/* Opens a copy of ct; returns the wrapper's answer and leaves the buffer in *out (caller frees). */
static enum mu_err gcm_open_copy(struct mu_gcm *g, const struct gcm_vec *v, const uint8_t *aad, const uint8_t *ct,
				 const uint8_t *tag, size_t tag_len, uint8_t **out)
{
	*out = xmalloc(v->ct_len);
	memcpy(*out, ct, v->ct_len);
	return mu_gcm_open(g, v->iv, v->iv_len, aad, v->aad_len, *out, v->ct_len, tag, tag_len);
}

/* Must-fail companion of a valid vector: open with one bit flipped somewhere must give
 * MU_ERR_AUTH and wipe the buffer. */
static int gcm_tamper(struct mu_gcm *g, const struct gcm_vec *v, int where, const char *fname, int64_t tc)
{
	int ok = 1;
	uint8_t *aad = xmalloc(v->aad_len), *ct = xmalloc(v->ct_len), *tag = xmalloc(v->tag_len), *buf = NULL;
	memcpy(aad, v->aad, v->aad_len);
	memcpy(ct, v->ct, v->ct_len);
	memcpy(tag, v->tag, v->tag_len);
	const char *what = where == 0 ? "tag" : where == 1 ? "ciphertext" : "aad";
	if (where == 0)
		tag[v->tag_len - 1] ^= 0x80;
	else if (where == 1)
		ct[v->ct_len / 2] ^= 0x01;
	else
		aad[0] ^= 0x40;
	enum mu_err rc = gcm_open_copy(g, v, aad, ct, tag, v->tag_len, &buf);
	if (rc != MU_ERR_AUTH)
		FAILV("open accepted a flipped bit in the %s (rc %d)", what, rc);
	else if (!all_zero(buf, v->ct_len))
		FAILV("open refused a flipped bit in the %s but left the buffer unwiped", what);
	free(buf);
	free(tag);
	free(ct);
	free(aad);
	return ok;
}

static int gcm_one(const struct vecfile *f, uint32_t t, int result, int64_t tc, int64_t key_bits, int64_t iv_bits,
		   int64_t tag_bits, int *refused_empty_iv)
{
	const struct json_doc *d = &f->doc;
	const char *fname = f->name;
	struct gcm_vec v = {0};
	int ok = 1;
	v.key = hex_member(d, t, "key", &v.key_len);
	v.iv = hex_member(d, t, "iv", &v.iv_len);
	v.aad = hex_member(d, t, "aad", &v.aad_len);
	v.msg = hex_member(d, t, "msg", &v.msg_len);
	v.ct = hex_member(d, t, "ct", &v.ct_len);
	v.tag = hex_member(d, t, "tag", &v.tag_len);
	if (!v.key || !v.iv || !v.aad || !v.msg || !v.ct || !v.tag) {
		FAILV("a field is missing or not hex");
		goto out;
	}
	if (v.key_len * 8 != (size_t)key_bits || v.iv_len * 8 != (size_t)iv_bits ||
	    v.tag_len * 8 != (size_t)tag_bits || v.tag_len == 0 || v.tag_len > MU_GCM_TAG_LEN ||
	    v.ct_len != v.msg_len) {
		FAILV("sizes disagree with the group (key %zu, iv %zu, tag %zu bytes)", v.key_len, v.iv_len, v.tag_len);
		goto out;
	}
	struct mu_gcm g;
	enum mu_err rc = mu_gcm_init(&g, v.key, v.key_len);
	if (rc != MU_OK) {
		FAILV("mu_gcm_init refused a %zu-byte key (rc %d)", v.key_len, rc);
		goto out;
	}
	uint8_t tag[MU_GCM_TAG_LEN], *buf = xmalloc(v.msg_len);

	if (v.iv_len == 0) {
		/* GCM is undefined for an empty IV; both directions must refuse before touching the
		 * buffer or the tag. */
		if (result != R_INVALID)
			FAILV("an empty IV is marked %s", result_name[result]);
		memcpy(buf, v.msg, v.msg_len);
		memset(tag, 0x5a, sizeof tag);
		rc = mu_gcm_seal(&g, v.iv, 0, v.aad, v.aad_len, buf, v.msg_len, tag);
		if (rc != MU_ERR_ARG || memcmp(buf, v.msg, v.msg_len) != 0 || tag[0] != 0x5a || tag[15] != 0x5a)
			FAILV("seal with an empty IV: rc %d (want MU_ERR_ARG, nothing written)", rc);
		memcpy(buf, v.ct, v.ct_len);
		rc = mu_gcm_open(&g, v.iv, 0, v.aad, v.aad_len, buf, v.ct_len, v.tag, v.tag_len);
		if (rc != MU_ERR_ARG || memcmp(buf, v.ct, v.ct_len) != 0)
			FAILV("open with an empty IV: rc %d (want MU_ERR_ARG, buffer untouched)", rc);
		*refused_empty_iv += ok;
		goto done;
	}

	/* seal */
	memcpy(buf, v.msg, v.msg_len);
	rc = mu_gcm_seal(&g, v.iv, v.iv_len, v.aad, v.aad_len, buf, v.msg_len, tag);
	if (rc != MU_OK) {
		FAILV("seal refused (rc %d)", rc);
	} else if (result == R_VALID) {
		if (memcmp(buf, v.ct, v.ct_len) != 0)
			FAILV("seal: ciphertext differs");
		if (memcmp(tag, v.tag, v.tag_len) != 0)
			FAILV("seal: tag differs");
	} else if (result == R_INVALID && memcmp(tag, v.tag, v.tag_len) == 0) {
		FAILV("seal produced the tag the file calls invalid");
	}

	/* open */
	uint8_t *pt = NULL;
	rc = gcm_open_copy(&g, &v, v.aad, v.ct, v.tag, v.tag_len, &pt);
	if (result == R_VALID) {
		if (rc != MU_OK)
			FAILV("open refused a valid vector (rc %d)", rc);
		else if (memcmp(pt, v.msg, v.msg_len) != 0)
			FAILV("open: plaintext differs");
		ok &= gcm_tamper(&g, &v, 0, fname, tc);
		if (v.ct_len)
			ok &= gcm_tamper(&g, &v, 1, fname, tc);
		if (v.aad_len)
			ok &= gcm_tamper(&g, &v, 2, fname, tc);
	} else if (result == R_INVALID) {
		if (rc != MU_ERR_AUTH)
			FAILV("open accepted an invalid vector (rc %d)", rc);
		else if (!all_zero(pt, v.ct_len))
			FAILV("open refused but left the buffer unwiped");
	} else {
		/* acceptable: either answer, but an accepted message must be the file's */
		if (rc == MU_OK && memcmp(pt, v.msg, v.msg_len) != 0)
			FAILV("open accepted an acceptable vector with the wrong plaintext");
		else if (rc != MU_OK && (rc != MU_ERR_AUTH || !all_zero(pt, v.ct_len)))
			FAILV("open refused an acceptable vector badly (rc %d)", rc);
		printf("%s tcId %lld (acceptable): %s\n", fname, (long long)tc, rc == MU_OK ? "accepted" : "refused");
	}
	free(pt);
done:
	free(buf);
	mu_gcm_free(&g);
out:
	free(v.key);
	free(v.iv);
	free(v.aad);
	free(v.msg);
	free(v.ct);
	free(v.tag);
	return ok;
}

static void test_wycheproof_gcm(void)
{
	struct vecfile f;
	if (!vec_open(&f, "aes_gcm_test.json", "AES-GCM")) {
		vec_close(&f);
		return;
	}
	static const char *const gkeys[] = {"type", "source", "ivSize", "keySize", "tagSize", "tests"};
	static const char *const tkeys[] = {"tcId", "comment", "flags", "key", "iv", "aad", "msg", "ct", "tag", "result"};
	const struct json_doc *d = &f.doc;
	struct tally ty = {0};
	int empty_iv = 0, empty_iv_refused = 0, by_key[3] = {0}, short_tags = 0;
	struct json_iter gi, ti;
	uint32_t k, g, t;
	json_iter_init(&gi, d, f.groups);
	while (json_iter_next(&gi, &k, &g)) {
		if (!group_header(&f, g, gkeys, 6, "AeadTest"))
			continue;
		int64_t key_bits = int_member(d, g, "keySize"), iv_bits = int_member(d, g, "ivSize"),
			tag_bits = int_member(d, g, "tagSize");
		json_iter_init(&ti, d, json_obj_get(d, g, "tests"));
		while (json_iter_next(&ti, &k, &t)) {
			int64_t tc;
			int r = test_header(&f, t, tkeys, 10, &tc);
			if (r < 0) {
				CHECK(0, "%s: malformed test", f.name);
				continue;
			}
			int ok = gcm_one(&f, t, r, tc, key_bits, iv_bits, tag_bits, &empty_iv_refused);
			empty_iv += iv_bits == 0;
			short_tags += tag_bits != 128;
			if (key_bits == 128 || key_bits == 192 || key_bits == 256)
				by_key[(key_bits - 128) / 64]++;
			tally_add(&ty, r, ok);
			CHECK(ok, "%s tcId %lld", f.name, (long long)tc);
		}
	}
	tally_print(&f, &ty);
	printf("  keys: %d AES-128, %d AES-192, %d AES-256; %d vectors with tags shorter than 128 bits; "
	       "%d of %d empty-IV vectors refused by seal and open\n",
	       by_key[0], by_key[1], by_key[2], short_tags, empty_iv_refused, empty_iv);
	vec_close(&f);
}

/* ---- X25519 ---- */

static const char *const x25519_flags[] = {
	"EdgeCaseMultiplication", "EdgeCasePrivateKey", "EdgeCaseShared", "Ktv", "LowOrderPublic",
	"NonCanonicalPublic", "Normal", "SmallPublicKey", "SpecialPublicKey", "Twist", "ZeroSharedSecret"};
#define X25519_N_FLAGS (sizeof x25519_flags / sizeof x25519_flags[0])

static void test_wycheproof_x25519(void)
{
	struct vecfile f;
	if (!vec_open(&f, "x25519_test.json", "XDH")) {
		vec_close(&f);
		return;
	}
	static const char *const gkeys[] = {"type", "source", "curve", "tests"};
	static const char *const tkeys[] = {"tcId", "comment", "flags", "public", "private", "shared", "result"};
	const char *fname = f.name;
	const struct json_doc *d = &f.doc;
	struct tally ty = {0};
	/* per flag: vectors, accepted with the file's secret, refused */
	int fl_n[X25519_N_FLAGS] = {0}, fl_acc[X25519_N_FLAGS] = {0}, fl_ref[X25519_N_FLAGS] = {0};
	int zero_n = 0, zero_refused = 0;
	struct json_iter gi, ti;
	uint32_t k, g, t;
	json_iter_init(&gi, d, f.groups);
	while (json_iter_next(&gi, &k, &g)) {
		if (!group_header(&f, g, gkeys, 4, "XdhComp"))
			continue;
		CHECK(json_str_eq(d, json_obj_get(d, g, "curve"), "curve25519"), "%s: curve", fname);
		json_iter_init(&ti, d, json_obj_get(d, g, "tests"));
		while (json_iter_next(&ti, &k, &t)) {
			int64_t tc;
			int r = test_header(&f, t, tkeys, 7, &tc);
			if (r < 0) {
				CHECK(0, "%s: malformed test", fname);
				continue;
			}
			int ok = 1;
			size_t publ = 0, privl = 0, sharedl = 0;
			uint8_t *pub = hex_member(d, t, "public", &publ), *priv = hex_member(d, t, "private", &privl),
				*shared = hex_member(d, t, "shared", &sharedl);
			uint8_t out[MU_X25519_LEN];
			int accepted = 0, refused = 0;
			if (!pub || !priv || !shared || publ != 32 || privl != 32 || sharedl != 32) {
				FAILV("public, private and shared must be 32 bytes of hex");
				goto next;
			}
			int zero = all_zero(shared, 32);
			if (zero != has_flag(d, t, "ZeroSharedSecret"))
				FAILV("ZeroSharedSecret flag and an all-zero secret disagree");
			struct mu_error err = {0};
			memset(out, 0xa5, sizeof out);
			enum mu_err rc = mu_x25519(out, priv, pub, &err);
			accepted = rc == MU_OK;
			refused = rc == MU_ERR_AUTH;
			if (zero) {
				/* low-order public key: must be refused whatever the file calls it */
				zero_n++;
				if (rc != MU_ERR_AUTH)
					FAILV("an all-zero shared secret was not refused (rc %d)", rc);
				else if (!all_zero(out, 32))
					FAILV("refused, but the output was not zeroed");
				else
					zero_refused++;
			} else if (r == R_INVALID) {
				if (rc == MU_OK)
					FAILV("accepted an invalid vector");
			} else {
				/* valid, or acceptable under RFC 7748 (twist, non-canonical u): the RFC's answer */
				if (rc != MU_OK)
					FAILV("refused a %s vector: %s", result_name[r], err.msg);
				else if (memcmp(out, shared, 32) != 0)
					FAILV("shared secret differs");
				/* out may alias either input */
				uint8_t a[32], b[32];
				memcpy(a, pub, 32);
				memcpy(b, priv, 32);
				if (mu_x25519(a, priv, a, NULL) != MU_OK || memcmp(a, shared, 32) != 0 ||
				    mu_x25519(b, b, pub, NULL) != MU_OK || memcmp(b, shared, 32) != 0)
					FAILV("wrong answer when out is the same array as an input");
			}
		next:
			for (size_t i = 0; i < X25519_N_FLAGS; i++) {
				if (has_flag(d, t, x25519_flags[i])) {
					fl_n[i]++;
					fl_acc[i] += accepted && ok;
					fl_ref[i] += refused;
				}
			}
			free(pub);
			free(priv);
			free(shared);
			tally_add(&ty, r, ok);
			CHECK(ok, "%s tcId %lld", fname, (long long)tc);
		}
	}
	tally_print(&f, &ty);
	printf("  all-zero shared secrets: %d of %d refused with MU_ERR_AUTH\n", zero_refused, zero_n);
	printf("  per flag (a vector may carry several): vectors, accepted with the file's secret, refused\n");
	for (size_t i = 0; i < X25519_N_FLAGS; i++)
		printf("    %-24s %4d %4d %4d\n", x25519_flags[i], fl_n[i], fl_acc[i], fl_ref[i]);
	CHECK(zero_n == 31 && zero_refused == zero_n, "all-zero secrets: %d of %d refused", zero_refused, zero_n);
	vec_close(&f);
}

/* ---- HKDF-SHA256 ---- */

static void test_wycheproof_hkdf(void)
{
	struct vecfile f;
	if (!vec_open(&f, "hkdf_sha256_test.json", "HKDF-SHA-256")) {
		vec_close(&f);
		return;
	}
	static const char *const gkeys[] = {"type", "source", "keySize", "tests"};
	static const char *const tkeys[] = {"tcId", "comment", "flags", "ikm", "salt", "info", "size", "okm", "result"};
	const char *fname = f.name;
	const struct json_doc *d = &f.doc;
	struct tally ty = {0};
	int too_large = 0, empty_salt = 0;
	struct json_iter gi, ti;
	uint32_t k, g, t;
	json_iter_init(&gi, d, f.groups);
	while (json_iter_next(&gi, &k, &g)) {
		if (!group_header(&f, g, gkeys, 4, "HkdfTest"))
			continue;
		int64_t key_bits = int_member(d, g, "keySize");
		json_iter_init(&ti, d, json_obj_get(d, g, "tests"));
		while (json_iter_next(&ti, &k, &t)) {
			int64_t tc;
			int r = test_header(&f, t, tkeys, 9, &tc);
			if (r < 0) {
				CHECK(0, "%s: malformed test", fname);
				continue;
			}
			int ok = 1;
			size_t ikml = 0, saltl = 0, infol = 0, okml = 0;
			uint8_t *ikm = hex_member(d, t, "ikm", &ikml), *salt = hex_member(d, t, "salt", &saltl),
				*info = hex_member(d, t, "info", &infol), *okm = hex_member(d, t, "okm", &okml);
			int64_t size = int_member(d, t, "size");
			uint8_t *out = NULL;
			if (!ikm || !salt || !info || !okm || size < 0 || ikml * 8 != (size_t)key_bits) {
				FAILV("malformed fields");
				goto next;
			}
			out = xmalloc((size_t)size);
			memset(out, 0x5a, (size_t)size);
			enum mu_err rc = mu_hkdf_sha256(ikm, ikml, salt, saltl, info, infol, out, (size_t)size);
			if (r == R_VALID) {
				if (okml != (size_t)size)
					FAILV("okm is not size bytes");
				else if (rc != MU_OK)
					FAILV("refused a valid request of %lld bytes (rc %d)", (long long)size, rc);
				else if (memcmp(out, okm, okml) != 0)
					FAILV("output differs");
				if (saltl == 0 && rc == MU_OK) {
					/* RFC 5869: no salt means HashLen zero bytes */
					uint8_t zeros[MU_SHA256_LEN] = {0}, *o2 = xmalloc((size_t)size);
					empty_salt++;
					if (mu_hkdf_sha256(ikm, ikml, zeros, sizeof zeros, info, infol, o2, (size_t)size) != MU_OK ||
					    memcmp(o2, okm, okml) != 0)
						FAILV("an empty salt and 32 zero bytes disagree");
					free(o2);
				}
			} else {
				int untouched = 1;
				for (int64_t i = 0; i < size; i++)
					untouched &= out[i] == 0x5a;
				if (size <= (int64_t)MU_HKDF_SHA256_MAX)
					FAILV("an invalid vector asks for only %lld bytes", (long long)size);
				else if (rc != MU_ERR_RANGE)
					FAILV("%lld bytes (over 255 * 32) not refused with MU_ERR_RANGE (rc %d)",
					      (long long)size, rc);
				else if (!untouched)
					FAILV("refused but wrote to the output");
				else
					too_large++;
				if (r == R_ACCEPTABLE)
					printf("%s tcId %lld (acceptable): %s\n", fname, (long long)tc,
					       rc == MU_OK ? "accepted" : "refused");
			}
		next:
			free(out);
			free(ikm);
			free(salt);
			free(info);
			free(okm);
			tally_add(&ty, r, ok);
			CHECK(ok, "%s tcId %lld", fname, (long long)tc);
		}
	}
	tally_print(&f, &ty);
	printf("  %d requests over 255 * 32 bytes refused with MU_ERR_RANGE; %d empty salts also checked as "
	       "32 zero bytes\n",
	       too_large, empty_salt);
	vec_close(&f);
}

/* ---- HMAC-SHA256 ---- */

static void test_wycheproof_hmac(void)
{
	struct vecfile f;
	if (!vec_open(&f, "hmac_sha256_test.json", "HMACSHA256")) {
		vec_close(&f);
		return;
	}
	static const char *const gkeys[] = {"type", "source", "keySize", "tagSize", "tests"};
	static const char *const tkeys[] = {"tcId", "comment", "flags", "key", "msg", "tag", "result"};
	const char *fname = f.name;
	const struct json_doc *d = &f.doc;
	struct tally ty = {0};
	int truncated = 0;
	struct json_iter gi, ti;
	uint32_t k, g, t;
	json_iter_init(&gi, d, f.groups);
	while (json_iter_next(&gi, &k, &g)) {
		if (!group_header(&f, g, gkeys, 5, "MacTest"))
			continue;
		int64_t key_bits = int_member(d, g, "keySize"), tag_bits = int_member(d, g, "tagSize");
		json_iter_init(&ti, d, json_obj_get(d, g, "tests"));
		while (json_iter_next(&ti, &k, &t)) {
			int64_t tc;
			int r = test_header(&f, t, tkeys, 7, &tc);
			if (r < 0) {
				CHECK(0, "%s: malformed test", fname);
				continue;
			}
			int ok = 1;
			size_t keyl = 0, msgl = 0, tagl = 0;
			uint8_t *key = hex_member(d, t, "key", &keyl), *msg = hex_member(d, t, "msg", &msgl),
				*tag = hex_member(d, t, "tag", &tagl);
			if (!key || !msg || !tag || keyl * 8 != (size_t)key_bits || tagl * 8 != (size_t)tag_bits ||
			    tagl == 0 || tagl > MU_SHA256_LEN) {
				FAILV("malformed fields");
			} else {
				uint8_t mac[MU_SHA256_LEN];
				mu_hmac_sha256(key, keyl, msg, msgl, mac);
				/* a truncated tag is the leftmost bytes (RFC 2104 section 5) */
				int match = mu_ct_eq(mac, tag, tagl);
				truncated += tagl < MU_SHA256_LEN;
				if (r == R_VALID && !match)
					FAILV("tag differs");
				else if (r == R_INVALID && match)
					FAILV("an invalid tag matched");
				else if (r == R_ACCEPTABLE)
					printf("%s tcId %lld (acceptable): %s\n", fname, (long long)tc,
					       match ? "matches" : "does not match");
			}
			free(key);
			free(msg);
			free(tag);
			tally_add(&ty, r, ok);
			CHECK(ok, "%s tcId %lld", fname, (long long)tc);
		}
	}
	tally_print(&f, &ty);
	printf("  %d vectors with truncated (128-bit) tags\n", truncated);
	vec_close(&f);
}

/* ---- known answers and edge cases ---- */

static void unhex_lit(const char *s, uint8_t *out, size_t n)
{
	if (mu_unhex(s, strlen(s), out, n) != 0) {
		fprintf(stderr, "bad hex literal in the test\n");
		exit(2);
	}
}

static int digest_is(const uint8_t got[32], const char *want_hex)
{
	char h[65];
	mu_hex(got, 32, h);
	return strcmp(h, want_hex) == 0;
}

static void test_sha256(void)
{
	uint8_t md[MU_SHA256_LEN];
	/* FIPS 180-2 appendix B and the empty message */
	mu_sha256("abc", 3, md);
	CHECK(digest_is(md, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "SHA-256(\"abc\")");
	mu_sha256("", 0, md);
	CHECK(digest_is(md, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "SHA-256(\"\")");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	mu_sha256(two, strlen(two), md);
	CHECK(digest_is(md, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "SHA-256(448 bits)");

	/* one million 'a': in one call, then streamed in uneven pieces */
	static const char *const million = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	size_t n = 1000000;
	char *a = xmalloc(n);
	memset(a, 'a', n);
	mu_sha256(a, n, md);
	CHECK(digest_is(md, million), "SHA-256(10^6 'a') in one call");
	struct mu_sha256_ctx s;
	mu_sha256_init(&s);
	size_t done = 0, step = 1;
	while (done < n) {
		size_t take = step < n - done ? step : n - done;
		mu_sha256_update(&s, a + done, take);
		done += take;
		step = step * 7 % 1021 + 1;
	}
	mu_sha256_final(&s, md);
	CHECK(digest_is(md, million), "SHA-256(10^6 'a') streamed");
	free(a);
}

static void test_hmac_hkdf_rfc(void)
{
	/* RFC 4231 test case 2 (a key shorter than the block) */
	uint8_t mac[32];
	const char *msg = "what do ya want for nothing?";
	mu_hmac_sha256((const uint8_t *)"Jefe", 4, msg, strlen(msg), mac);
	CHECK(digest_is(mac, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"), "RFC 4231 case 2");

	/* RFC 5869 test case 1 */
	uint8_t ikm[22], salt[13], info[10], okm[42], want[42];
	memset(ikm, 0x0b, sizeof ikm);
	unhex_lit("000102030405060708090a0b0c", salt, sizeof salt);
	unhex_lit("f0f1f2f3f4f5f6f7f8f9", info, sizeof info);
	unhex_lit("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865", want,
		  sizeof want);
	CHECK(mu_hkdf_sha256(ikm, sizeof ikm, salt, sizeof salt, info, sizeof info, okm, sizeof okm) == MU_OK &&
		      memcmp(okm, want, sizeof want) == 0,
	      "RFC 5869 case 1");
	/* the limit itself, and one past it (nothing may be written then) */
	uint8_t *big = xmalloc(MU_HKDF_SHA256_MAX + 1);
	memset(big, 0x5a, MU_HKDF_SHA256_MAX + 1);
	CHECK(mu_hkdf_sha256(ikm, sizeof ikm, NULL, 0, NULL, 0, big, MU_HKDF_SHA256_MAX + 1) == MU_ERR_RANGE &&
		      big[0] == 0x5a && big[MU_HKDF_SHA256_MAX] == 0x5a,
	      "HKDF over the limit");
	CHECK(mu_hkdf_sha256(ikm, sizeof ikm, NULL, 0, NULL, 0, big, MU_HKDF_SHA256_MAX) == MU_OK &&
		      big[MU_HKDF_SHA256_MAX] == 0x5a,
	      "HKDF at the limit");
	CHECK(mu_hkdf_sha256(ikm, sizeof ikm, NULL, 0, NULL, 0, big, SIZE_MAX) == MU_ERR_RANGE, "HKDF SIZE_MAX");
	free(big);
}

static void test_ct_eq(void)
{
	uint8_t a[64], b[64];
	for (int i = 0; i < 64; i++)
		a[i] = b[i] = (uint8_t)(i * 37 + 11);
	CHECK(mu_ct_eq(a, b, 0) == 1, "empty inputs are equal");
	CHECK(mu_ct_eq(a, b, 64) == 1, "equal arrays");
	int bad = 0;
	for (int i = 0; i < 64; i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1u << bit);
			bad += mu_ct_eq(a, b, 64) != 0;
			bad += mu_ct_eq(a, b, (size_t)i) != 1; /* a difference past n is not seen */
			b[i] ^= (uint8_t)(1u << bit);
		}
	}
	CHECK(bad == 0, "%d single-bit differences misjudged", bad);
	memset(a, 0xff, sizeof a);
	memset(b, 0x00, sizeof b);
	CHECK(mu_ct_eq(a, b, 64) == 0 && mu_ct_eq(b, b, 64) == 1, "all bits differ");
}

static void test_wipe(void)
{
	uint8_t buf[64];
	volatile uint8_t *v = buf;
	memset(buf, 0xa5, sizeof buf);
	mu_wipe(buf + 8, 40);
	int bad = 0;
	for (int i = 0; i < 64; i++)
		bad += v[i] != ((i >= 8 && i < 48) ? 0 : 0xa5);
	CHECK(bad == 0, "mu_wipe zeroes exactly its range (%d bytes wrong)", bad);
	mu_wipe(buf, 0);
	CHECK(v[0] == 0xa5, "mu_wipe of 0 bytes writes nothing");
	struct mu_gcm g;
	uint8_t key[32] = {1};
	CHECK(mu_gcm_init(&g, key, 32) == MU_OK, "gcm init");
	mu_gcm_free(&g);
	CHECK(all_zero((const uint8_t *)&g, sizeof g), "mu_gcm_free leaves the key schedule zeroed");
}

static void test_hex(void)
{
	uint8_t all[256], back[256];
	char h[513], want[513];
	for (int i = 0; i < 256; i++) {
		all[i] = (uint8_t)i;
		snprintf(want + 2 * i, 3, "%02x", i);
	}
	mu_hex(all, 256, h);
	CHECK(strcmp(h, want) == 0, "mu_hex of 0..255");
	CHECK(mu_unhex(h, 512, back, 256) == 0 && memcmp(back, all, 256) == 0, "round trip");
	for (int i = 0; i < 512; i++)
		if (h[i] >= 'a')
			h[i] = (char)(h[i] - 32);
	memset(back, 0, sizeof back);
	CHECK(mu_unhex(h, 512, back, 256) == 0 && memcmp(back, all, 256) == 0, "upper-case round trip");
	mu_hex(all, 0, h);
	CHECK(h[0] == '\0' && mu_unhex("", 0, back, 0) == 0, "empty");

	/* lengths: odd, short, long, and a length whose double wraps */
	uint8_t out[4] = {7, 7, 7, 7};
	CHECK(mu_unhex("abc", 3, out, 1) == -1 && mu_unhex("abc", 3, out, 2) == -1, "odd length");
	CHECK(mu_unhex("abcd", 4, out, 1) == -1 && mu_unhex("ab", 2, out, 2) == -1, "wrong length");
	CHECK(mu_unhex("", 0, out, SIZE_MAX / 2 + 1) == -1, "2n wraps to 0");
	CHECK(out[0] == 7 && out[3] == 7, "a length refusal writes nothing");

	/* every byte in each position of a digit pair: accepted iff it is a hex digit; a refusal
	 * leaves the output zeroed */
	int bad = 0;
	for (int c = 0; c < 256; c++) {
		int is_hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
		for (int pos = 0; pos < 4; pos++) {
			char s[4] = {'1', '2', '3', '4'};
			s[pos] = (char)c;
			memset(out, 0x77, 2);
			int rc = mu_unhex(s, 4, out, 2);
			if (is_hex) {
				unsigned hv = (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
				uint8_t w0 = (uint8_t)(pos == 0 ? hv << 4 | 2 : pos == 1 ? 0x10 | hv : 0x12);
				uint8_t w1 = (uint8_t)(pos == 2 ? hv << 4 | 4 : pos == 3 ? 0x30 | hv : 0x34);
				bad += rc != 0 || out[0] != w0 || out[1] != w1;
			} else {
				bad += rc != -1 || out[0] != 0 || out[1] != 0;
			}
		}
	}
	CHECK(bad == 0, "%d digit cases misjudged", bad);
	CHECK(mu_unhex("0x12", 4, out, 2) == -1 && mu_unhex("12 4", 4, out, 2) == -1 &&
		      mu_unhex("1\0" "23", 4, out, 2) == -1 && mu_unhex("+1", 2, out, 1) == -1,
	      "prefix, space, NUL and sign refused");
}

static void test_gcm_api(void)
{
	printf("AES-GCM path: %s\n", mu_gcm_accelerated() ? "AES-NI with PCLMULQDQ GHASH"
							 : "not fully accelerated (BearSSL constant-time code in use)");
	uint8_t key[32], iv[12], aad[5] = {1, 2, 3, 4, 5}, msg[40], buf[40], tag[16], tag2[16];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x40 + i);
	memset(iv, 0x11, sizeof iv);
	for (int i = 0; i < 40; i++)
		msg[i] = (uint8_t)i;
	struct mu_gcm g;

	/* key lengths */
	static const size_t bad_keys[] = {0, 1, 15, 17, 23, 25, 31, 33, 64};
	int bad = 0;
	for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
		memset(&g, 0xcc, sizeof g);
		bad += mu_gcm_init(&g, key, bad_keys[i]) != MU_ERR_ARG;
		memcpy(buf, msg, sizeof buf);
		bad += mu_gcm_seal(&g, iv, 12, aad, 5, buf, sizeof buf, tag) != MU_ERR_STATE;
		bad += memcmp(buf, msg, sizeof buf) != 0;
		bad += mu_gcm_open(&g, iv, 12, aad, 5, buf, sizeof buf, tag, 16) != MU_ERR_STATE;
	}
	CHECK(bad == 0, "bad key lengths refused, and the context after them (%d wrong)", bad);

	CHECK(mu_gcm_init(&g, key, 32) == MU_OK, "init");
	memcpy(buf, msg, sizeof buf);
	CHECK(mu_gcm_seal(&g, iv, 12, aad, 5, buf, sizeof buf, tag) == MU_OK, "seal");
	uint8_t ct[40];
	memcpy(ct, buf, sizeof ct);

	/* tag lengths: 0 and 17 are refused before decryption; a prefix is accepted, as the API
	 * documents, so formats must pass their own constant */
	memcpy(buf, ct, sizeof buf);
	CHECK(mu_gcm_open(&g, iv, 12, aad, 5, buf, sizeof buf, tag, 0) == MU_ERR_ARG && memcmp(buf, ct, 40) == 0,
	      "tag_len 0");
	CHECK(mu_gcm_open(&g, iv, 12, aad, 5, buf, sizeof buf, tag, 17) == MU_ERR_ARG && memcmp(buf, ct, 40) == 0,
	      "tag_len 17");
	int prefix_ok = 0;
	for (size_t tl = 1; tl <= 16; tl++) {
		memcpy(buf, ct, sizeof buf);
		prefix_ok += mu_gcm_open(&g, iv, 12, aad, 5, buf, sizeof buf, tag, tl) == MU_OK &&
			     memcmp(buf, msg, sizeof buf) == 0;
	}
	CHECK(prefix_ok == 16, "tag prefixes 1..16 accepted (%d)", prefix_ok);
	memcpy(tag2, tag, 16);
	tag2[0] ^= 1;
	memcpy(buf, ct, sizeof buf);
	CHECK(mu_gcm_open(&g, iv, 12, aad, 5, buf, sizeof buf, tag2, 1) == MU_ERR_AUTH && all_zero(buf, 40),
	      "a wrong 1-byte prefix refused and wiped");
	/* wrong IV, and an empty AAD where there was one */
	uint8_t iv2[12];
	memcpy(iv2, iv, 12);
	iv2[11] ^= 1;
	memcpy(buf, ct, sizeof buf);
	CHECK(mu_gcm_open(&g, iv2, 12, aad, 5, buf, sizeof buf, tag, 16) == MU_ERR_AUTH && all_zero(buf, 40),
	      "wrong IV");
	memcpy(buf, ct, sizeof buf);
	CHECK(mu_gcm_open(&g, iv, 12, NULL, 0, buf, sizeof buf, tag, 16) == MU_ERR_AUTH && all_zero(buf, 40),
	      "missing AAD");
	/* truncated ciphertext with the right tag */
	memcpy(buf, ct, sizeof buf);
	CHECK(mu_gcm_open(&g, iv, 12, aad, 5, buf, 39, tag, 16) == MU_ERR_AUTH && all_zero(buf, 39) && buf[39] == ct[39],
	      "truncated ciphertext refused, wiped within its length");

	/* message length: one past GCM's limit is refused before the buffer is touched (the
	 * buffer is small on purpose; ASan would see any access) */
	memcpy(buf, msg, sizeof buf);
	memcpy(tag2, tag, 16);
	CHECK(mu_gcm_seal(&g, iv, 12, NULL, 0, buf, (size_t)MU_GCM_MAX_LEN + 1, tag2) == MU_ERR_RANGE &&
		      memcmp(buf, msg, 40) == 0 && memcmp(tag2, tag, 16) == 0,
	      "seal over the GCM limit");
	CHECK(mu_gcm_open(&g, iv, 12, NULL, 0, buf, SIZE_MAX, tag, 16) == MU_ERR_RANGE && memcmp(buf, msg, 40) == 0,
	      "open over the GCM limit");

	/* a freed context is refused, not dereferenced */
	mu_gcm_free(&g);
	memcpy(buf, msg, sizeof buf);
	CHECK(mu_gcm_seal(&g, iv, 12, aad, 5, buf, sizeof buf, tag) == MU_ERR_STATE && memcmp(buf, msg, 40) == 0,
	      "seal after free");
	memcpy(buf, ct, sizeof buf);
	CHECK(mu_gcm_open(&g, iv, 12, aad, 5, buf, sizeof buf, tag, 16) == MU_ERR_STATE && memcmp(buf, ct, 40) == 0,
	      "open after free");
}

static void test_x25519_rfc(void)
{
	/* RFC 7748 section 5.2 (the second u has its top bit set, which X25519 ignores) */
	uint8_t k[32], u[32], out[32], want[32];
	unhex_lit("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", k, 32);
	unhex_lit("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", u, 32);
	unhex_lit("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552", want, 32);
	CHECK(mu_x25519(out, k, u, NULL) == MU_OK && memcmp(out, want, 32) == 0, "RFC 7748 5.2 vector 1");
	unhex_lit("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d", k, 32);
	unhex_lit("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493", u, 32);
	unhex_lit("95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957", want, 32);
	CHECK(mu_x25519(out, k, u, NULL) == MU_OK && memcmp(out, want, 32) == 0, "RFC 7748 5.2 vector 2");

	/* the iteration: k = X25519(k, u), u = old k, from k = u = 9 */
	memset(k, 0, 32);
	k[0] = 9;
	memcpy(u, k, 32);
	int ok = 1;
	for (int i = 1; i <= 1000 && ok; i++) {
		ok = mu_x25519(out, k, u, NULL) == MU_OK;
		memcpy(u, k, 32);
		memcpy(k, out, 32);
		if (i == 1)
			CHECK(digest_is(k, "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"),
			      "iteration 1");
	}
	CHECK(ok && digest_is(k, "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"),
	      "iteration 1000");

	/* section 6.1: both sides reach the same secret; keygen matches multiplying the base point */
	uint8_t a_priv[32], a_pub[32], b_priv[32], b_pub[32], s1[32], s2[32], nine[32] = {9};
	unhex_lit("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a_priv, 32);
	unhex_lit("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b_priv, 32);
	CHECK(mu_x25519(a_pub, a_priv, nine, NULL) == MU_OK &&
		      digest_is(a_pub, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
	      "Alice's public key");
	CHECK(mu_x25519(b_pub, b_priv, nine, NULL) == MU_OK &&
		      digest_is(b_pub, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"),
	      "Bob's public key");
	CHECK(mu_x25519(s1, a_priv, b_pub, NULL) == MU_OK && mu_x25519(s2, b_priv, a_pub, NULL) == MU_OK &&
		      memcmp(s1, s2, 32) == 0 &&
		      digest_is(s1, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"),
	      "RFC 7748 6.1 shared secret");

	struct mu_error err;
	CHECK(mu_x25519_keygen(a_priv, a_pub, &err) == MU_OK && mu_x25519_keygen(b_priv, b_pub, &err) == MU_OK,
	      "keygen");
	uint8_t check[32];
	CHECK(mu_x25519(check, a_priv, nine, NULL) == MU_OK && memcmp(check, a_pub, 32) == 0,
	      "keygen's public key is X25519(priv, 9)");
	CHECK(mu_x25519(s1, a_priv, b_pub, NULL) == MU_OK && mu_x25519(s2, b_priv, a_pub, NULL) == MU_OK &&
		      memcmp(s1, s2, 32) == 0,
	      "two generated keys agree");

	/* u = 0 and u = 1 (and p, p + 1, their non-canonical spellings) give an all-zero secret */
	uint8_t lo[4][32] = {{0}, {1}};
	unhex_lit("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", lo[2], 32);
	unhex_lit("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", lo[3], 32);
	int refused = 0;
	for (int i = 0; i < 4; i++) {
		memset(out, 0x5a, 32);
		refused += mu_x25519(out, a_priv, lo[i], &err) == MU_ERR_AUTH && all_zero(out, 32);
	}
	CHECK(refused == 4, "u in {0, 1, p, p + 1} refused (%d of 4)", refused);
	CHECK(strstr(err.msg, "low-order") != NULL, "message names the cause: %s", err.msg);
}

int main(void)
{
	test_ct_eq();
	test_wipe();
	test_hex();
	test_sha256();
	test_hmac_hkdf_rfc();
	test_gcm_api();
	test_x25519_rfc();
	test_wycheproof_gcm();
	test_wycheproof_x25519();
	test_wycheproof_hkdf();
	test_wycheproof_hmac();
	return test_done();
}
