/* sealed.c — header encoding and checks, key derivation, chunk math; see sealed.h. */
#include "seal/sealed.h"

#include <inttypes.h>
#include <string.h>

#include "base/ckd.h"
#include "base/endian.h"

static const char key_id_label[] = "mu-seal key id v1";
static const char chunk_key_info[] = "mu-seal v1 chunk key";
static const char header_key_info[] = "mu-seal v1 header key";
static const char chunk_aad_label[16] = {'m', 'u', '-', 's', 'e', 'a', 'l', ' ',
					 'c', 'h', 'u', 'n', 'k', ' ', 'v', '1'};

static const char *fname(const char *name) { return name ? name : "sealed model"; }

static void be64_store(uint8_t *p, uint64_t v)
{
	be32_store(p, (uint32_t)(v >> 32));
	be32_store(p + 4, (uint32_t)v);
}

void mu_sealed_key_id(const uint8_t key[static MU_KEY_LEN], uint8_t id[static MU_SEALED_KEY_ID_LEN])
{
	uint8_t mac[MU_SHA256_LEN];
	mu_hmac_sha256(key, MU_KEY_LEN, key_id_label, sizeof key_id_label - 1, mac);
	memcpy(id, mac, MU_SEALED_KEY_ID_LEN);
	mu_wipe(mac, sizeof mac);
}

enum mu_err mu_sealed_derive(const uint8_t key[static MU_KEY_LEN], const uint8_t salt[static MU_SEALED_SALT_LEN],
			     uint8_t k_chunk[MU_KEY_LEN], uint8_t k_hdr[MU_KEY_LEN])
{
	enum mu_err rc = MU_OK;
	if (k_chunk)
		rc = mu_hkdf_sha256(key, MU_KEY_LEN, salt, MU_SEALED_SALT_LEN, chunk_key_info, sizeof chunk_key_info - 1,
				    k_chunk, MU_KEY_LEN);
	if (k_hdr && rc == MU_OK)
		rc = mu_hkdf_sha256(key, MU_KEY_LEN, salt, MU_SEALED_SALT_LEN, header_key_info,
				    sizeof header_key_info - 1, k_hdr, MU_KEY_LEN);
	return rc;
}

int mu_sealed_chunk_size_valid(uint64_t chunk_size)
{
	return chunk_size >= MU_SEALED_CHUNK_MIN && chunk_size <= MU_SEALED_CHUNK_MAX &&
	       (chunk_size & (chunk_size - 1)) == 0;
}

uint64_t mu_sealed_n_chunks(uint64_t plaintext_size, uint32_t chunk_size)
{
	if (plaintext_size == 0)
		return 1;
	return plaintext_size / chunk_size + (plaintext_size % chunk_size != 0);
}

enum mu_err mu_sealed_layout(uint64_t plaintext_size, uint32_t chunk_size, uint64_t *n_chunks, uint64_t *file_size,
			     struct mu_error *err)
{
	uint64_t n = mu_sealed_n_chunks(plaintext_size, chunk_size), tags, total;
	if (ckd_mul(&tags, n, (uint64_t)MU_SEALED_TAG_LEN) || ckd_add(&total, plaintext_size, tags) ||
	    ckd_add(&total, total, (uint64_t)MU_SEALED_HEADER_LEN))
		return mu_errf(err, MU_ERR_RANGE, "plaintext size %" PRIu64 " is too large for a sealed file",
			       plaintext_size);
	*n_chunks = n;
	*file_size = total;
	return MU_OK;
}

void mu_sealed_chunk_span(const struct mu_sealed_header *h, uint64_t i, uint64_t *pt_off, size_t *len,
			  uint64_t *file_off)
{
	uint64_t cs = h->chunk_size;
	*pt_off = i * cs;
	*len = (size_t)(i + 1 < h->n_chunks ? cs : h->plaintext_size - i * cs);
	*file_off = MU_SEALED_HEADER_LEN + i * (cs + MU_SEALED_TAG_LEN);
}

void mu_sealed_nonce(uint64_t i, uint8_t nonce[static MU_SEALED_NONCE_LEN])
{
	memset(nonce, 0, 4);
	be64_store(nonce + 4, i);
}

void mu_sealed_aad(const uint8_t header_hash[static MU_SHA256_LEN], uint64_t i, int final,
		   uint8_t aad[static MU_SEALED_AAD_LEN])
{
	memcpy(aad, chunk_aad_label, 16);
	memcpy(aad + 16, header_hash, MU_SHA256_LEN);
	le64_store(aad + 48, i);
	aad[56] = final ? 1 : 0;
}

static enum mu_err header_tag(const uint8_t hdr[static MU_SEALED_HEADER_LEN], const uint8_t key[static MU_KEY_LEN],
			      const uint8_t salt[static MU_SEALED_SALT_LEN], uint8_t tag[static MU_SEALED_TAG_LEN])
{
	uint8_t k_hdr[MU_KEY_LEN], mac[MU_SHA256_LEN];
	enum mu_err rc = mu_sealed_derive(key, salt, NULL, k_hdr);
	if (rc == MU_OK) {
		mu_hmac_sha256(k_hdr, sizeof k_hdr, hdr, MU_SEALED_OFF_TAG, mac);
		memcpy(tag, mac, MU_SEALED_TAG_LEN);
	}
	mu_wipe(k_hdr, sizeof k_hdr);
	mu_wipe(mac, sizeof mac);
	return rc;
}

enum mu_err mu_sealed_header_build(struct mu_sealed_header *h, uint8_t out[static MU_SEALED_HEADER_LEN],
				   const uint8_t key[static MU_KEY_LEN], const uint8_t salt[static MU_SEALED_SALT_LEN],
				   uint32_t chunk_size, uint64_t plaintext_size,
				   const uint8_t digest[static MU_SHA256_LEN], struct mu_error *err)
{
	enum mu_err rc;
	memset(h, 0, sizeof *h);
	if (!mu_sealed_chunk_size_valid(chunk_size))
		return mu_errf(err, MU_ERR_ARG,
			       "chunk size %" PRIu32 " is invalid (a power of two from %u to %u bytes)", chunk_size,
			       MU_SEALED_CHUNK_MIN, MU_SEALED_CHUNK_MAX);
	if ((rc = mu_sealed_layout(plaintext_size, chunk_size, &h->n_chunks, &h->file_size, err)))
		return rc;
	h->version = MU_SEALED_VERSION;
	h->suite = MU_SEALED_SUITE_AES256GCM_HKDF;
	h->chunk_size = chunk_size;
	h->plaintext_size = plaintext_size;
	memcpy(h->digest, digest, MU_SHA256_LEN);
	mu_sealed_key_id(key, h->key_id);
	memcpy(h->salt, salt, MU_SEALED_SALT_LEN);

	memset(out, 0, MU_SEALED_HEADER_LEN);
	memcpy(out, MU_SEALED_MAGIC, 8);
	le16_store(out + MU_SEALED_OFF_VERSION, h->version);
	le16_store(out + MU_SEALED_OFF_SUITE, h->suite);
	le32_store(out + MU_SEALED_OFF_CHUNK_SIZE, h->chunk_size);
	le64_store(out + MU_SEALED_OFF_PLAINTEXT_SIZE, h->plaintext_size);
	memcpy(out + MU_SEALED_OFF_DIGEST, h->digest, MU_SHA256_LEN);
	memcpy(out + MU_SEALED_OFF_KEY_ID, h->key_id, MU_SEALED_KEY_ID_LEN);
	memcpy(out + MU_SEALED_OFF_SALT, h->salt, MU_SEALED_SALT_LEN);
	if ((rc = header_tag(out, key, salt, h->tag)))
		return mu_errf(err, MU_ERR_INTERNAL, "header key derivation failed");
	memcpy(out + MU_SEALED_OFF_TAG, h->tag, MU_SEALED_TAG_LEN);
	mu_sha256(out, MU_SEALED_HEADER_LEN, h->hash);
	return MU_OK;
}

enum mu_err mu_sealed_header_parse(struct mu_sealed_header *h, const uint8_t *data, size_t len, const char *name,
				   struct mu_error *err)
{
	static const uint8_t zero[8];
	memset(h, 0, sizeof *h);
	if (len < MU_SEALED_HEADER_LEN)
		return mu_errf(err, MU_ERR_FORMAT, "%s: not a sealed model (%zu bytes, shorter than the %u-byte header)",
			       fname(name), len, MU_SEALED_HEADER_LEN);
	if (memcmp(data, MU_SEALED_MAGIC, 8) != 0)
		return mu_errf(err, MU_ERR_FORMAT, "%s: not a sealed model (bad magic)", fname(name));
	h->version = le16_load(data + MU_SEALED_OFF_VERSION);
	h->suite = le16_load(data + MU_SEALED_OFF_SUITE);
	h->chunk_size = le32_load(data + MU_SEALED_OFF_CHUNK_SIZE);
	h->plaintext_size = le64_load(data + MU_SEALED_OFF_PLAINTEXT_SIZE);
	memcpy(h->digest, data + MU_SEALED_OFF_DIGEST, MU_SHA256_LEN);
	memcpy(h->key_id, data + MU_SEALED_OFF_KEY_ID, MU_SEALED_KEY_ID_LEN);
	memcpy(h->salt, data + MU_SEALED_OFF_SALT, MU_SEALED_SALT_LEN);
	memcpy(h->tag, data + MU_SEALED_OFF_TAG, MU_SEALED_TAG_LEN);
	if (h->version != MU_SEALED_VERSION)
		return mu_errf(err, MU_ERR_UNSUPPORTED,
			       "%s: sealed format version %u is not supported (this build reads version %u)", fname(name),
			       h->version, MU_SEALED_VERSION);
	if (h->suite != MU_SEALED_SUITE_AES256GCM_HKDF)
		return mu_errf(err, MU_ERR_UNSUPPORTED,
			       "%s: cipher suite %u is not supported (this build knows suite %u: AES-256-GCM "
			       "chunks, HKDF-SHA256 keys)",
			       fname(name), h->suite, MU_SEALED_SUITE_AES256GCM_HKDF);
	if (!mu_sealed_chunk_size_valid(h->chunk_size))
		return mu_errf(err, MU_ERR_FORMAT,
			       "%s: chunk size %" PRIu32 " is invalid (a power of two from %u to %u bytes)", fname(name),
			       h->chunk_size, MU_SEALED_CHUNK_MIN, MU_SEALED_CHUNK_MAX);
	if (memcmp(data + MU_SEALED_OFF_RESERVED, zero, sizeof zero) != 0)
		return mu_errf(err, MU_ERR_FORMAT, "%s: reserved header bytes are not zero", fname(name));
	h->n_chunks = mu_sealed_n_chunks(h->plaintext_size, h->chunk_size);
	return MU_OK;
}

enum mu_err mu_sealed_header_auth(struct mu_sealed_header *h, const uint8_t hdr[static MU_SEALED_HEADER_LEN],
				  const uint8_t key[static MU_KEY_LEN], const char *name, struct mu_error *err)
{
	uint8_t id[MU_SEALED_KEY_ID_LEN], tag[MU_SEALED_TAG_LEN];
	mu_sealed_key_id(key, id);
	if (!mu_ct_eq(id, h->key_id, sizeof id)) {
		char want[2 * MU_SEALED_KEY_ID_LEN + 1], have[2 * MU_SEALED_KEY_ID_LEN + 1];
		mu_hex(h->key_id, MU_SEALED_KEY_ID_LEN, want);
		mu_hex(id, MU_SEALED_KEY_ID_LEN, have);
		return mu_errf(err, MU_ERR_AUTH, "%s: wrong key: sealed for key id %s, this key is %s", fname(name), want,
			       have);
	}
	if (header_tag(hdr, key, h->salt, tag))
		return mu_errf(err, MU_ERR_INTERNAL, "%s: header key derivation failed", fname(name));
	int ok = mu_ct_eq(tag, hdr + MU_SEALED_OFF_TAG, MU_SEALED_TAG_LEN);
	mu_wipe(tag, sizeof tag);
	if (!ok)
		return mu_errf(err, MU_ERR_AUTH, "%s: header corrupted (authentication failed)", fname(name));
	mu_sha256(hdr, MU_SEALED_HEADER_LEN, h->hash);
	return MU_OK;
}

enum mu_err mu_sealed_check_length(struct mu_sealed_header *h, uint64_t file_len, const char *name,
				   struct mu_error *err)
{
	uint64_t n = 0, want = 0;
	if (mu_sealed_layout(h->plaintext_size, h->chunk_size, &n, &want, NULL))
		return mu_errf(err, MU_ERR_FORMAT, "%s: plaintext size %" PRIu64 " is impossible (the file size overflows)",
			       fname(name), h->plaintext_size);
	h->file_size = want;
	if (file_len == want)
		return MU_OK;
	uint64_t stride = (uint64_t)h->chunk_size + MU_SEALED_TAG_LEN;
	uint64_t last = h->plaintext_size - (n - 1) * h->chunk_size + MU_SEALED_TAG_LEN;
	if (file_len < want) {
		uint64_t body = file_len - MU_SEALED_HEADER_LEN, k = body / stride, rem = body % stride;
		if (rem == 0)
			return mu_errf(err, MU_ERR_FORMAT, "%s: truncated: %" PRIu64 " of %" PRIu64 " chunks present",
				       fname(name), k, n);
		return mu_errf(err, MU_ERR_FORMAT,
			       "%s: truncated inside chunk %" PRIu64 " (%" PRIu64 " of %" PRIu64 " chunks complete, "
			       "file is %" PRIu64 " bytes, expected %" PRIu64 ")",
			       fname(name), k, k, n, file_len, want);
	}
	uint64_t extra = file_len - want;
	if (extra % stride == 0 || extra == last) {
		uint64_t k = extra % stride == 0 ? extra / stride : 1;
		if (k == 1)
			return mu_errf(err, MU_ERR_FORMAT,
				       "%s: an extra chunk after the final chunk (%" PRIu64 " bytes past the end the "
				       "header declares)",
				       fname(name), extra);
		return mu_errf(err, MU_ERR_FORMAT,
			       "%s: %" PRIu64 " extra chunks after the final chunk (the header declares %" PRIu64 ")",
			       fname(name), k, n);
	}
	return mu_errf(err, MU_ERR_FORMAT, "%s: extra data after the final chunk (%" PRIu64 " byte%s)", fname(name),
		       extra, extra == 1 ? "" : "s");
}

enum mu_err mu_sealed_chunk_seal(struct mu_gcm *g, const uint8_t header_hash[static MU_SHA256_LEN], uint64_t i,
				 int final, uint8_t *buf, size_t len, uint8_t tag[static MU_SEALED_TAG_LEN])
{
	uint8_t nonce[MU_SEALED_NONCE_LEN], aad[MU_SEALED_AAD_LEN];
	mu_sealed_nonce(i, nonce);
	mu_sealed_aad(header_hash, i, final, aad);
	return mu_gcm_seal(g, nonce, sizeof nonce, aad, sizeof aad, buf, len, tag);
}

enum mu_err mu_sealed_chunk_open(struct mu_gcm *g, const uint8_t header_hash[static MU_SHA256_LEN], uint64_t i,
				 int final, uint8_t *buf, size_t len, const uint8_t tag[static MU_SEALED_TAG_LEN])
{
	uint8_t nonce[MU_SEALED_NONCE_LEN], aad[MU_SEALED_AAD_LEN];
	mu_sealed_nonce(i, nonce);
	mu_sealed_aad(header_hash, i, final, aad);
	return mu_gcm_open(g, nonce, sizeof nonce, aad, sizeof aad, buf, len, tag, MU_SEALED_TAG_LEN);
}

enum mu_err mu_sealed_seal_mem(const uint8_t *pt, size_t pt_len, const uint8_t key[static MU_KEY_LEN],
			       const uint8_t salt[static MU_SEALED_SALT_LEN], uint32_t chunk_size, uint8_t *out,
			       size_t out_len, struct mu_error *err)
{
	struct mu_sealed_header h;
	uint8_t digest[MU_SHA256_LEN], k_chunk[MU_KEY_LEN];
	struct mu_gcm g;
	enum mu_err rc;

	mu_sha256(pt, pt_len, digest);
	if ((rc = mu_sealed_header_build(&h, out, key, salt, chunk_size, pt_len, digest, err)))
		return rc;
	if (out_len != h.file_size)
		return mu_errf(err, MU_ERR_ARG, "output buffer is %zu bytes, the sealed file needs %" PRIu64, out_len,
			       h.file_size);
	rc = mu_sealed_derive(key, salt, k_chunk, NULL);
	if (rc == MU_OK)
		rc = mu_gcm_init(&g, k_chunk, sizeof k_chunk);
	mu_wipe(k_chunk, sizeof k_chunk);
	for (uint64_t i = 0; rc == MU_OK && i < h.n_chunks; i++) {
		uint64_t pt_off, file_off;
		size_t len;
		mu_sealed_chunk_span(&h, i, &pt_off, &len, &file_off);
		if (len)
			memcpy(out + file_off, pt + pt_off, len);
		rc = mu_sealed_chunk_seal(&g, h.hash, i, i + 1 == h.n_chunks, out + file_off, len, out + file_off + len);
	}
	mu_gcm_free(&g);
	if (rc)
		return mu_errf(err, rc, "sealing failed (%s)", mu_err_name(rc));
	return MU_OK;
}
