/* gguf_write.c — builds GGUF v3 files (host-side tools and tests).
 *
 * The metadata is serialized into a growing buffer as it is added; tensors are declared with
 * their shape and type, which fixes each one's offset (declaration order, each aligned).
 * gguf_w_begin writes the header, metadata, tensor table and padding; gguf_w_data then streams
 * the tensors in the order they were declared, each followed by zero padding to the alignment.
 * The writer refuses what the reader would refuse (duplicate keys and names, bad shapes,
 * unknown types, counts past the limits), except that it does not check UTF-8.
 *
 * An I/O failure makes the writer unusable: later calls return MU_ERR_STATE.
 */
#define _POSIX_C_SOURCE 200809L
#include "engine/gguf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/ckd.h"
#include "base/endian.h"
#include "base/limits.h"

enum w_state { W_BUILDING, W_WRITING, W_DONE, W_FAILED };

struct w_tensor {
	char *name;
	uint64_t name_len;
	enum mu_dtype type;
	uint32_t n_dims;
	uint64_t ne[4];
	uint64_t size;
	uint64_t offset;
};

struct gguf_writer {
	uint32_t alignment;
	enum w_state state;
	int fd;
	/* serialized kv records */
	uint8_t *kv;
	size_t kv_len, kv_cap;
	uint64_t n_kv;
	char **keys; /* n_kv copies, for the duplicate check */
	size_t keys_cap;
	struct w_tensor *t;
	uint64_t n_t;
	size_t t_cap;
	uint64_t data_end; /* offset of the next tensor (aligned) */
	uint64_t next;     /* next tensor gguf_w_data writes */
};

static const char alignment_key[] = "general.alignment";

static uint64_t align_up(uint64_t v, uint32_t a) { return (v + a - 1) / a * a; }

/* Grows *p (elements of `size` bytes) so it holds at least n; 0 on allocation failure. */
static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	if (n <= *cap)
		return 1;
	size_t c = *cap ? *cap : 16, bytes;
	while (c < n) {
		if (ckd_mul(&c, c, (size_t)2))
			return 0;
	}
	if (ckd_mul(&bytes, c, size))
		return 0;
	void *q = realloc(*p, bytes);
	if (!q)
		return 0;
	*p = q;
	*cap = c;
	return 1;
}

static enum mu_err check_state(const struct gguf_writer *w, enum w_state want, struct mu_error *err)
{
	if (w->state == want)
		return MU_OK;
	if (w->state == W_FAILED)
		return mu_errf(err, MU_ERR_STATE, "gguf writer: an earlier write failed");
	return mu_errf(err, MU_ERR_STATE, "gguf writer: %s",
		       want == W_BUILDING ? "metadata and tensors must be added before gguf_w_begin"
					  : "gguf_w_begin has not been called or the file is complete");
}

static enum mu_err check_name(const char *what, const char *name, struct mu_error *err)
{
	if (name == NULL || name[0] == '\0')
		return mu_errf(err, MU_ERR_ARG, "gguf writer: empty %s", what);
	size_t n = strlen(name);
	if (n > MU_GGUF_MAX_KEY)
		return mu_errf(err, MU_ERR_RANGE, "gguf writer: %s of %zu bytes exceeds the limit %u", what, n,
			       MU_GGUF_MAX_KEY);
	return MU_OK;
}

/* A key for messages; the caller may have passed NULL. */
static const char *key_name(const char *key) { return key ? key : "(null)"; }

/* Starts a kv record: validates the key, reserves room for the key, the type and value_bytes
 * of value, writes key and type, and sets *out to where the value goes. */
static enum mu_err kv_begin(struct gguf_writer *w, const char *key, enum gguf_type type, uint64_t value_bytes,
			    int internal, uint8_t **out, struct mu_error *err)
{
	enum mu_err e = check_state(w, W_BUILDING, err);
	if (e == MU_OK)
		e = check_name("key", key, err);
	if (e != MU_OK)
		return e;
	if (!internal && strcmp(key, alignment_key) == 0)
		return mu_errf(err, MU_ERR_ARG, "gguf writer: set %s through gguf_writer_new", alignment_key);
	for (uint64_t i = 0; i < w->n_kv; i++) {
		if (strcmp(w->keys[i], key) == 0)
			return mu_errf(err, MU_ERR_ARG, "gguf writer: duplicate key %s", key);
	}
	if (w->n_kv >= MU_GGUF_MAX_KV)
		return mu_errf(err, MU_ERR_RANGE, "gguf writer: more than %u keys", MU_GGUF_MAX_KV);
	size_t klen = strlen(key), rec, need;
	if (ckd_add(&rec, (size_t)12, klen) || value_bytes > SIZE_MAX || ckd_add(&rec, rec, (size_t)value_bytes) ||
	    ckd_add(&need, w->kv_len, rec))
		return mu_errf(err, MU_ERR_RANGE, "gguf writer: key %s: value too large", key);
	char *copy = malloc(klen + 1);
	if (!copy || !grow((void **)&w->keys, &w->keys_cap, (size_t)w->n_kv + 1, sizeof *w->keys) ||
	    !grow((void **)&w->kv, &w->kv_cap, need, 1)) {
		free(copy);
		return mu_errf(err, MU_ERR_NOMEM, "gguf writer: out of memory at key %s", key);
	}
	memcpy(copy, key, klen + 1);
	w->keys[w->n_kv++] = copy;
	uint8_t *p = w->kv + w->kv_len;
	le64_store(p, klen);
	memcpy(p + 8, key, klen);
	le32_store(p + 8 + klen, (uint32_t)type);
	w->kv_len = need;
	*out = p + 12 + klen;
	return MU_OK;
}

static enum mu_err add_u32(struct gguf_writer *w, const char *key, uint32_t v, int internal, struct mu_error *err)
{
	uint8_t *p;
	enum mu_err e = kv_begin(w, key, GGUF_TYPE_UINT32, 4, internal, &p, err);
	if (e == MU_OK)
		le32_store(p, v);
	return e;
}

struct gguf_writer *gguf_writer_new(uint32_t alignment)
{
	if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > MU_GGUF_MAX_ALIGNMENT)
		return NULL;
	struct gguf_writer *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->alignment = alignment;
	w->fd = -1;
	if (alignment != GGUF_DEFAULT_ALIGNMENT && add_u32(w, alignment_key, alignment, 1, NULL) != MU_OK) {
		gguf_writer_free(w);
		return NULL;
	}
	return w;
}

void gguf_writer_free(struct gguf_writer *w)
{
	if (!w)
		return;
	for (uint64_t i = 0; i < w->n_kv; i++)
		free(w->keys[i]);
	for (uint64_t i = 0; i < w->n_t; i++)
		free(w->t[i].name);
	free(w->keys);
	free(w->kv);
	free(w->t);
	free(w);
}

enum mu_err gguf_w_u32(struct gguf_writer *w, const char *key, uint32_t v, struct mu_error *err)
{
	return add_u32(w, key, v, 0, err);
}

enum mu_err gguf_w_i32(struct gguf_writer *w, const char *key, int32_t v, struct mu_error *err)
{
	uint8_t *p;
	enum mu_err e = kv_begin(w, key, GGUF_TYPE_INT32, 4, 0, &p, err);
	if (e == MU_OK)
		le32_store(p, (uint32_t)v);
	return e;
}

enum mu_err gguf_w_u64(struct gguf_writer *w, const char *key, uint64_t v, struct mu_error *err)
{
	uint8_t *p;
	enum mu_err e = kv_begin(w, key, GGUF_TYPE_UINT64, 8, 0, &p, err);
	if (e == MU_OK)
		le64_store(p, v);
	return e;
}

enum mu_err gguf_w_f32(struct gguf_writer *w, const char *key, float v, struct mu_error *err)
{
	uint8_t *p;
	enum mu_err e = kv_begin(w, key, GGUF_TYPE_FLOAT32, 4, 0, &p, err);
	if (e == MU_OK)
		lef32_store(p, v);
	return e;
}

enum mu_err gguf_w_bool(struct gguf_writer *w, const char *key, int v, struct mu_error *err)
{
	uint8_t *p;
	enum mu_err e = kv_begin(w, key, GGUF_TYPE_BOOL, 1, 0, &p, err);
	if (e == MU_OK)
		p[0] = v != 0;
	return e;
}

enum mu_err gguf_w_str(struct gguf_writer *w, const char *key, const char *v, struct mu_error *err)
{
	if (v == NULL)
		return mu_errf(err, MU_ERR_ARG, "gguf writer: key %s: NULL string", key_name(key));
	size_t n = strlen(v);
	if (n > MU_GGUF_MAX_STRING)
		return mu_errf(err, MU_ERR_RANGE, "gguf writer: key %s: string of %zu bytes exceeds the limit %u",
			       key_name(key),
			       n, MU_GGUF_MAX_STRING);
	uint8_t *p;
	enum mu_err e = kv_begin(w, key, GGUF_TYPE_STRING, 8 + (uint64_t)n, 0, &p, err);
	if (e != MU_OK)
		return e;
	le64_store(p, n);
	memcpy(p + 8, v, n);
	return MU_OK;
}

/* Writes the array header (element type, count) and sets *out to where the elements go. */
static enum mu_err arr_begin(struct gguf_writer *w, const char *key, enum gguf_type et, uint64_t n,
			     uint64_t elem_bytes, uint8_t **out, struct mu_error *err)
{
	uint64_t bytes;
	if (n > MU_GGUF_MAX_ARRAY)
		return mu_errf(err, MU_ERR_RANGE, "gguf writer: key %s: array of %llu elements exceeds the limit %u",
			       key_name(key), (unsigned long long)n, MU_GGUF_MAX_ARRAY);
	if (ckd_add(&bytes, elem_bytes, (uint64_t)12))
		return mu_errf(err, MU_ERR_RANGE, "gguf writer: key %s: array too large", key_name(key));
	enum mu_err e = kv_begin(w, key, GGUF_TYPE_ARRAY, bytes, 0, out, err);
	if (e != MU_OK)
		return e;
	le32_store(*out, (uint32_t)et);
	le64_store(*out + 4, n);
	*out += 12;
	return MU_OK;
}

enum mu_err gguf_w_arr_str(struct gguf_writer *w, const char *key, const char *const *v, const uint64_t *lens,
			   uint64_t n, struct mu_error *err)
{
	uint64_t total = 0;
	if (n > 0 && v == NULL)
		return mu_errf(err, MU_ERR_ARG, "gguf writer: key %s: NULL array", key_name(key));
	for (uint64_t i = 0; i < n; i++) {
		if (v[i] == NULL)
			return mu_errf(err, MU_ERR_ARG, "gguf writer: key %s: element %llu is NULL",
				       key_name(key), (unsigned long long)i);
		uint64_t len = lens ? lens[i] : strlen(v[i]);
		if (len > MU_GGUF_MAX_STRING)
			return mu_errf(err, MU_ERR_RANGE,
				       "gguf writer: key %s: element %llu of %llu bytes exceeds the limit %u",
				       key_name(key), (unsigned long long)i, (unsigned long long)len,
				       MU_GGUF_MAX_STRING);
		if (ckd_add(&total, total, len) || ckd_add(&total, total, (uint64_t)8))
			return mu_errf(err, MU_ERR_RANGE, "gguf writer: key %s: array too large", key_name(key));
	}
	uint8_t *p;
	enum mu_err e = arr_begin(w, key, GGUF_TYPE_STRING, n, total, &p, err);
	if (e != MU_OK)
		return e;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t len = lens ? lens[i] : strlen(v[i]);
		le64_store(p, len);
		if (len)
			memcpy(p + 8, v[i], (size_t)len);
		p += 8 + len;
	}
	return MU_OK;
}

enum mu_err gguf_w_arr_f32(struct gguf_writer *w, const char *key, const float *v, uint64_t n, struct mu_error *err)
{
	if (n > 0 && v == NULL)
		return mu_errf(err, MU_ERR_ARG, "gguf writer: key %s: NULL array", key_name(key));
	uint8_t *p;
	enum mu_err e = arr_begin(w, key, GGUF_TYPE_FLOAT32, n, n * 4, &p, err);
	if (e != MU_OK)
		return e;
	for (uint64_t i = 0; i < n; i++)
		lef32_store(p + 4 * i, v[i]);
	return MU_OK;
}

enum mu_err gguf_w_arr_i32(struct gguf_writer *w, const char *key, const int32_t *v, uint64_t n, struct mu_error *err)
{
	if (n > 0 && v == NULL)
		return mu_errf(err, MU_ERR_ARG, "gguf writer: key %s: NULL array", key_name(key));
	uint8_t *p;
	enum mu_err e = arr_begin(w, key, GGUF_TYPE_INT32, n, n * 4, &p, err);
	if (e != MU_OK)
		return e;
	for (uint64_t i = 0; i < n; i++)
		le32_store(p + 4 * i, (uint32_t)v[i]);
	return MU_OK;
}

enum mu_err gguf_w_tensor(struct gguf_writer *w, const char *name, enum mu_dtype type, uint32_t n_dims,
			  const uint64_t *ne, struct mu_error *err)
{
	enum mu_err e = check_state(w, W_BUILDING, err);
	if (e == MU_OK)
		e = check_name("tensor name", name, err);
	if (e != MU_OK)
		return e;
	for (uint64_t i = 0; i < w->n_t; i++) {
		if (strcmp(w->t[i].name, name) == 0)
			return mu_errf(err, MU_ERR_ARG, "gguf writer: duplicate tensor %s", name);
	}
	if (w->n_t >= MU_GGUF_MAX_TENSORS)
		return mu_errf(err, MU_ERR_RANGE, "gguf writer: more than %u tensors", MU_GGUF_MAX_TENSORS);
	if (n_dims == 0 || n_dims > MU_GGUF_MAX_DIMS || ne == NULL)
		return mu_errf(err, MU_ERR_ARG, "gguf writer: tensor %s: n_dims %u is not in 1..%u", name, n_dims,
			       MU_GGUF_MAX_DIMS);
	const struct mu_dtype_info *info = mu_dtype_get((uint32_t)type);
	if (!info)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "gguf writer: tensor %s: unknown type %u", name, (unsigned)type);
	struct w_tensor t = {.type = type, .n_dims = n_dims, .ne = {1, 1, 1, 1}};
	uint64_t n = 1, end;
	for (uint32_t d = 0; d < n_dims; d++) {
		if (ne[d] == 0)
			return mu_errf(err, MU_ERR_ARG, "gguf writer: tensor %s: dim %u is 0", name, d);
		if (ckd_mul(&n, n, ne[d]) || n > (uint64_t)INT64_MAX)
			return mu_errf(err, MU_ERR_RANGE, "gguf writer: tensor %s: element count overflows", name);
		t.ne[d] = ne[d];
	}
	if (ne[0] % info->block != 0)
		return mu_errf(err, MU_ERR_ARG, "gguf writer: tensor %s: dim 0 (%llu) is not a multiple of the %s block size %u",
			       name, (unsigned long long)ne[0], info->name, info->block);
	if (ckd_mul(&t.size, n / info->block, (uint64_t)info->size) || ckd_add(&end, w->data_end, t.size) ||
	    ckd_add(&end, end, (uint64_t)w->alignment) || t.size > SIZE_MAX)
		return mu_errf(err, MU_ERR_RANGE, "gguf writer: tensor %s: byte size overflows", name);
	t.name_len = strlen(name);
	t.name = malloc(t.name_len + 1);
	if (!t.name || !grow((void **)&w->t, &w->t_cap, (size_t)w->n_t + 1, sizeof *w->t)) {
		free(t.name);
		return mu_errf(err, MU_ERR_NOMEM, "gguf writer: out of memory at tensor %s", name);
	}
	memcpy(t.name, name, t.name_len + 1);
	t.offset = w->data_end;
	w->data_end = align_up(t.offset + t.size, w->alignment);
	w->t[w->n_t++] = t;
	return MU_OK;
}

static enum mu_err write_all(struct gguf_writer *w, const void *buf, size_t n, struct mu_error *err)
{
	const uint8_t *p = buf;
	while (n > 0) {
		ssize_t k = write(w->fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			w->state = W_FAILED;
			return mu_errf(err, MU_ERR_IO, "gguf writer: write failed: %s",
				       k < 0 ? strerror(errno) : "no progress");
		}
		p += k;
		n -= (size_t)k;
	}
	return MU_OK;
}

static enum mu_err write_zeros(struct gguf_writer *w, uint64_t n, struct mu_error *err)
{
	static const uint8_t zeros[256];
	while (n > 0) {
		size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
		enum mu_err e = write_all(w, zeros, k, err);
		if (e != MU_OK)
			return e;
		n -= k;
	}
	return MU_OK;
}

enum mu_err gguf_w_begin(struct gguf_writer *w, int fd, struct mu_error *err)
{
	enum mu_err e = check_state(w, W_BUILDING, err);
	if (e != MU_OK)
		return e;
	size_t len = 24 + w->kv_len;
	for (uint64_t i = 0; i < w->n_t; i++) {
		size_t rec = 8 + (size_t)w->t[i].name_len + 4 + 8 * (size_t)w->t[i].n_dims + 4 + 8;
		if (ckd_add(&len, len, rec))
			return mu_errf(err, MU_ERR_RANGE, "gguf writer: header too large");
	}
	uint8_t *h = malloc(len);
	if (!h)
		return mu_errf(err, MU_ERR_NOMEM, "gguf writer: out of memory for a header of %zu bytes", len);
	uint8_t *p = h;
	le32_store(p, GGUF_MAGIC);
	le32_store(p + 4, 3);
	le64_store(p + 8, w->n_t);
	le64_store(p + 16, w->n_kv);
	p += 24;
	if (w->kv_len)
		memcpy(p, w->kv, w->kv_len);
	p += w->kv_len;
	for (uint64_t i = 0; i < w->n_t; i++) {
		const struct w_tensor *t = &w->t[i];
		le64_store(p, t->name_len);
		memcpy(p + 8, t->name, (size_t)t->name_len);
		p += 8 + t->name_len;
		le32_store(p, t->n_dims);
		p += 4;
		for (uint32_t d = 0; d < t->n_dims; d++, p += 8)
			le64_store(p, t->ne[d]);
		le32_store(p, (uint32_t)t->type);
		le64_store(p + 4, t->offset);
		p += 12;
	}
	w->fd = fd;
	e = write_all(w, h, len, err);
	free(h);
	if (e == MU_OK)
		e = write_zeros(w, align_up(len, w->alignment) - len, err);
	if (e == MU_OK)
		w->state = W_WRITING;
	return e;
}

enum mu_err gguf_w_data(struct gguf_writer *w, const void *data, uint64_t size, struct mu_error *err)
{
	enum mu_err e = check_state(w, W_WRITING, err);
	if (e != MU_OK)
		return e;
	if (w->next >= w->n_t)
		return mu_errf(err, MU_ERR_STATE, "gguf writer: all %llu tensors were already written",
			       (unsigned long long)w->n_t);
	const struct w_tensor *t = &w->t[w->next];
	if (size != t->size || data == NULL)
		return mu_errf(err, MU_ERR_ARG, "gguf writer: tensor %s: got %llu bytes, expected %llu", t->name,
			       data == NULL ? 0ull : (unsigned long long)size, (unsigned long long)t->size);
	e = write_all(w, data, (size_t)size, err);
	if (e == MU_OK)
		e = write_zeros(w, align_up(size, w->alignment) - size, err);
	if (e == MU_OK)
		w->next++;
	return e;
}

enum mu_err gguf_w_end(struct gguf_writer *w, struct mu_error *err)
{
	enum mu_err e = check_state(w, W_WRITING, err);
	if (e != MU_OK)
		return e;
	if (w->next != w->n_t)
		return mu_errf(err, MU_ERR_STATE, "gguf writer: tensor %s was not written (%llu of %llu written)",
			       w->t[w->next].name, (unsigned long long)w->next, (unsigned long long)w->n_t);
	w->state = W_DONE;
	return MU_OK;
}
