/* gguf.c — the strict GGUF reader described in gguf.h.
 *
 * gguf_parse makes one pass over the metadata and the tensor table, checking each field
 * against the bytes that remain before it is decoded, then checks the properties that need
 * the whole table: unique keys and names, alignment, tensor ranges and overlaps. The caller's
 * memory holds the two tables and an index used for sorting; nothing is allocated here and
 * tensor data is never copied.
 *
 * Encoding conventions of the tables: a kv's data points at the first byte of its value as it
 * is stored. For a string that is the u64 length prefix; for an array it is the first element
 * (so an array of strings starts with the first element's length prefix). A scalar string
 * therefore iterates like a one-element array of strings.
 */
#include "engine/gguf.h"

#include <assert.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>

#include "base/ckd.h"
#include "base/endian.h"
#include "base/limits.h"

#define GGUF_HEADER_SIZE 24u
/* Smallest possible records, used to bound counts by the bytes that remain:
 * kv = key length (8) + one key byte + type (4) + one value byte;
 * tensor = name length (8) + one name byte + n_dims (4) + one dim (8) + type (4) + offset (8). */
#define GGUF_MIN_KV_SIZE 14u
#define GGUF_MIN_TENSOR_SIZE 33u
/* Bytes of a printable key or name in an error message. */
#define GGUF_SHOW_MAX 64u

/* Bytes of one scalar of each type; 0 for string and array (variable size). */
static const uint8_t type_size[GGUF_TYPE_COUNT] = {
	[GGUF_TYPE_UINT8] = 1,  [GGUF_TYPE_INT8] = 1,    [GGUF_TYPE_UINT16] = 2, [GGUF_TYPE_INT16] = 2,
	[GGUF_TYPE_UINT32] = 4, [GGUF_TYPE_INT32] = 4,   [GGUF_TYPE_FLOAT32] = 4, [GGUF_TYPE_BOOL] = 1,
	[GGUF_TYPE_STRING] = 0, [GGUF_TYPE_ARRAY] = 0,   [GGUF_TYPE_UINT64] = 8, [GGUF_TYPE_INT64] = 8,
	[GGUF_TYPE_FLOAT64] = 8,
};

static const char *const type_names[GGUF_TYPE_COUNT] = {
	[GGUF_TYPE_UINT8] = "u8",   [GGUF_TYPE_INT8] = "i8",    [GGUF_TYPE_UINT16] = "u16",
	[GGUF_TYPE_INT16] = "i16",  [GGUF_TYPE_UINT32] = "u32", [GGUF_TYPE_INT32] = "i32",
	[GGUF_TYPE_FLOAT32] = "f32", [GGUF_TYPE_BOOL] = "bool", [GGUF_TYPE_STRING] = "string",
	[GGUF_TYPE_ARRAY] = "array", [GGUF_TYPE_UINT64] = "u64", [GGUF_TYPE_INT64] = "i64",
	[GGUF_TYPE_FLOAT64] = "f64",
};

const char *gguf_type_name(enum gguf_type t)
{
	if ((unsigned)t >= GGUF_TYPE_COUNT)
		return "unknown";
	return type_names[t];
}

int gguf_str_eq(struct gguf_str s, const char *c)
{
	for (uint64_t i = 0; i < s.len; i++) {
		if (c[i] == '\0' || c[i] != s.ptr[i])
			return 0;
	}
	return c[s.len] == '\0';
}

/* ---- helpers ---- */

/* A key or name made safe for a message: printable ASCII kept, other bytes shown as '?',
 * long names cut with "...". */
struct shown {
	char s[GGUF_SHOW_MAX + 4];
};

static const char *show(struct shown *out, struct gguf_str name)
{
	uint64_t n = name.len < GGUF_SHOW_MAX ? name.len : GGUF_SHOW_MAX;
	size_t at = 0;
	for (uint64_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name.ptr[i];
		out->s[at++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (name.len > n) {
		memcpy(out->s + at, "...", 3);
		at += 3;
	}
	out->s[at] = '\0';
	return out->s;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const uint8_t *s, uint64_t n)
{
	uint64_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		uint32_t cp, min;
		uint64_t more;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			more = 1, cp = c & 0x1fu, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			more = 2, cp = c & 0x0fu, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			more = 3, cp = c & 0x07u, min = 0x10000;
		} else {
			return 0;
		}
		if (more > n - i - 1)
			return 0;
		for (uint64_t k = 1; k <= more; k++) {
			uint8_t b = s[i + k];
			if ((b & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (b & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += more + 1;
	}
	return 1;
}

static int str_less(struct gguf_str a, struct gguf_str b)
{
	uint64_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.ptr, b.ptr, (size_t)n) : 0;
	return c < 0 || (c == 0 && a.len < b.len);
}

static int str_same(struct gguf_str a, struct gguf_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

/* Heap sort of an index array: O(n log n) in the worst case, no recursion, no allocation. */
typedef int (*idx_less_fn)(const void *ctx, uint32_t a, uint32_t b);

static void sift_down(uint32_t *v, size_t root, size_t n, idx_less_fn less, const void *ctx)
{
	for (;;) {
		size_t child = 2 * root + 1;
		if (child >= n)
			return;
		if (child + 1 < n && less(ctx, v[child], v[child + 1]))
			child++;
		if (!less(ctx, v[root], v[child]))
			return;
		uint32_t t = v[root];
		v[root] = v[child];
		v[child] = t;
		root = child;
	}
}

static void sort_idx(uint32_t *v, size_t n, idx_less_fn less, const void *ctx)
{
	assert(v || n == 0);
	for (size_t i = 0; i < n; i++)
		v[i] = (uint32_t)i;
	if (n < 2)
		return;
	for (size_t i = n / 2; i-- > 0;)
		sift_down(v, i, n, less, ctx);
	for (size_t end = n - 1; end > 0; end--) {
		uint32_t t = v[0];
		v[0] = v[end];
		v[end] = t;
		sift_down(v, 0, end, less, ctx);
	}
}

static int kv_key_less(const void *ctx, uint32_t a, uint32_t b)
{
	const struct gguf_kv *kv = ctx;
	return str_less(kv[a].key, kv[b].key);
}

static int tensor_name_less(const void *ctx, uint32_t a, uint32_t b)
{
	const struct gguf_tensor *t = ctx;
	return str_less(t[a].name, t[b].name);
}

static int tensor_offset_less(const void *ctx, uint32_t a, uint32_t b)
{
	const struct gguf_tensor *t = ctx;
	/* cppcheck-suppress arrayIndexThenCheck ; a < b is the tie-break on equal offsets, not a bound */
	return t[a].offset < t[b].offset || (t[a].offset == t[b].offset && a < b);
}

/* ---- header and memory ---- */

/* The tables live in the caller's memory in this order: kv entries, tensor entries, then the
 * u32 index used to sort either of them. */
#define TABLE_ALIGN \
	(alignof(struct gguf_kv) > alignof(struct gguf_tensor) ? alignof(struct gguf_kv) : alignof(struct gguf_tensor))

struct layout {
	size_t kv_at, tensors_at, idx_at, total;
};

static enum mu_err read_header(const uint8_t *data, size_t len, uint32_t *version, uint64_t *n_tensors,
			       uint64_t *n_kv, struct layout *lay, struct mu_error *err)
{
	if (data == NULL && len != 0)
		return mu_errf(err, MU_ERR_ARG, "gguf: no data");
	if (len < GGUF_HEADER_SIZE)
		return mu_errf(err, MU_ERR_FORMAT, "gguf header: file of %zu bytes is shorter than the %u-byte header",
			       len, GGUF_HEADER_SIZE);
	if (le32_load(data) != GGUF_MAGIC)
		return mu_errf(err, MU_ERR_FORMAT, "gguf header: bad magic (not a GGUF file)");
	uint32_t v = le32_load(data + 4);
	if (v != 2 && v != 3)
		return mu_errf(err, MU_ERR_FORMAT, "gguf header: version %u is not supported (need 2 or 3)", v);
	uint64_t nt = le64_load(data + 8), nk = le64_load(data + 16);
	if (nk > MU_GGUF_MAX_KV)
		return mu_errf(err, MU_ERR_RANGE, "gguf header: n_kv %llu exceeds the limit %u",
			       (unsigned long long)nk, MU_GGUF_MAX_KV);
	if (nt > MU_GGUF_MAX_TENSORS)
		return mu_errf(err, MU_ERR_RANGE, "gguf header: n_tensors %llu exceeds the limit %u",
			       (unsigned long long)nt, MU_GGUF_MAX_TENSORS);
	uint64_t left = len - GGUF_HEADER_SIZE, need_kv, need_t, need;
	if (ckd_mul(&need_kv, nk, (uint64_t)GGUF_MIN_KV_SIZE) || need_kv > left)
		return mu_errf(err, MU_ERR_FORMAT, "gguf header: n_kv %llu is too large for a file of %zu bytes",
			       (unsigned long long)nk, len);
	if (ckd_mul(&need_t, nt, (uint64_t)GGUF_MIN_TENSOR_SIZE) || ckd_add(&need, need_kv, need_t) ||
	    need > left)
		return mu_errf(err, MU_ERR_FORMAT,
			       "gguf header: n_tensors %llu is too large for a file of %zu bytes",
			       (unsigned long long)nt, len);

	/* Both counts are at most 65536, so these sums cannot overflow a size_t; they are checked
	 * all the same because they size the caller's allocation. TABLE_ALIGN bytes of slack let
	 * gguf_parse align any pointer it is given. */
	size_t kv_bytes, t_bytes, idx_bytes, n_idx = (size_t)(nk > nt ? nk : nt);
	struct layout l = {0};
	static_assert(sizeof(struct gguf_kv) % alignof(struct gguf_tensor) == 0, "table layout");
	static_assert(sizeof(struct gguf_tensor) % alignof(uint32_t) == 0, "table layout");
	if (ckd_mul(&kv_bytes, (size_t)nk, sizeof(struct gguf_kv)) ||
	    ckd_mul(&t_bytes, (size_t)nt, sizeof(struct gguf_tensor)) ||
	    ckd_mul(&idx_bytes, n_idx, sizeof(uint32_t)) || ckd_add(&l.idx_at, kv_bytes, t_bytes) ||
	    ckd_add(&l.total, l.idx_at, idx_bytes) || ckd_add(&l.total, l.total, TABLE_ALIGN))
		return mu_errf(err, MU_ERR_RANGE, "gguf header: tables too large");
	l.kv_at = 0;
	l.tensors_at = kv_bytes;
	if (n_idx == 0)
		l.total = 0;
	*version = v;
	*n_tensors = nt;
	*n_kv = nk;
	*lay = l;
	return MU_OK;
}

enum mu_err gguf_mem_size(const uint8_t *data, size_t len, size_t *size, struct mu_error *err)
{
	uint32_t version;
	uint64_t nt, nk;
	struct layout l;
	enum mu_err e = read_header(data, len, &version, &nt, &nk, &l, err);
	if (e != MU_OK)
		return e;
	*size = l.total;
	return MU_OK;
}

/* ---- metadata ---- */

/* A read position in the file; every read is preceded by a check against `len`. */
struct cursor {
	const uint8_t *base;
	size_t len;
	size_t pos;
};

static int has(const struct cursor *c, uint64_t n) { return n <= (uint64_t)(c->len - c->pos); }

static uint32_t take_u32(struct cursor *c)
{
	uint32_t v = le32_load(c->base + c->pos);
	c->pos += 4;
	return v;
}

static uint64_t take_u64(struct cursor *c)
{
	uint64_t v = le64_load(c->base + c->pos);
	c->pos += 8;
	return v;
}

/* Reads a key or tensor name. `what` is "kv" or "tensor", i its index. */
static enum mu_err read_name(struct cursor *c, const char *what, uint64_t i, struct gguf_str *out,
			     struct mu_error *err)
{
	if (!has(c, 8))
		return mu_errf(err, MU_ERR_FORMAT, "%s %llu: name length past end of file", what,
			       (unsigned long long)i);
	uint64_t n = take_u64(c);
	if (n == 0)
		return mu_errf(err, MU_ERR_FORMAT, "%s %llu: empty name", what, (unsigned long long)i);
	if (n > MU_GGUF_MAX_KEY)
		return mu_errf(err, MU_ERR_RANGE, "%s %llu: name length %llu exceeds the limit %u", what,
			       (unsigned long long)i, (unsigned long long)n, MU_GGUF_MAX_KEY);
	if (!has(c, n))
		return mu_errf(err, MU_ERR_FORMAT, "%s %llu: name length %llu past end of file", what,
			       (unsigned long long)i, (unsigned long long)n);
	const uint8_t *p = c->base + c->pos;
	if (!utf8_valid(p, n))
		return mu_errf(err, MU_ERR_FORMAT, "%s %llu: name is not valid UTF-8", what, (unsigned long long)i);
	out->ptr = (const char *)p;
	out->len = n;
	c->pos += (size_t)n;
	return MU_OK;
}

/* Reads one string value (length prefix and bytes); el is the array element index or -1. */
static enum mu_err skip_string(struct cursor *c, const char *where, int64_t el, struct mu_error *err)
{
	char elem[48] = "";
	if (el >= 0)
		snprintf(elem, sizeof elem, "array element %lld ", (long long)el);
	if (!has(c, 8))
		return mu_errf(err, MU_ERR_FORMAT, "%s: %sstring length past end of file", where, elem);
	uint64_t n = take_u64(c);
	if (n > MU_GGUF_MAX_STRING)
		return mu_errf(err, MU_ERR_RANGE, "%s: %sstring length %llu exceeds the limit %u", where, elem,
			       (unsigned long long)n, MU_GGUF_MAX_STRING);
	if (!has(c, n))
		return mu_errf(err, MU_ERR_FORMAT, "%s: %sstring length %llu past end of file", where, elem,
			       (unsigned long long)n);
	c->pos += (size_t)n;
	return MU_OK;
}

static enum mu_err read_value(struct cursor *c, struct gguf_kv *kv, const char *where, struct mu_error *err)
{
	if (!has(c, 4))
		return mu_errf(err, MU_ERR_FORMAT, "%s: value type past end of file", where);
	uint32_t t = take_u32(c);
	if (t >= GGUF_TYPE_COUNT)
		return mu_errf(err, MU_ERR_FORMAT, "%s: unknown value type %u", where, t);
	kv->type = (enum gguf_type)t;
	kv->arr_type = kv->type;
	kv->arr_len = 1;
	if (t == GGUF_TYPE_ARRAY) {
		if (!has(c, 12))
			return mu_errf(err, MU_ERR_FORMAT, "%s: array header past end of file", where);
		uint32_t et = take_u32(c);
		uint64_t n = take_u64(c);
		if (et >= GGUF_TYPE_COUNT)
			return mu_errf(err, MU_ERR_FORMAT, "%s: unknown array element type %u", where, et);
		if (et == GGUF_TYPE_ARRAY)
			return mu_errf(err, MU_ERR_FORMAT, "%s: nested arrays are not supported", where);
		if (n > MU_GGUF_MAX_ARRAY)
			return mu_errf(err, MU_ERR_RANGE, "%s: array of %llu elements exceeds the limit %u", where,
				       (unsigned long long)n, MU_GGUF_MAX_ARRAY);
		kv->arr_type = (enum gguf_type)et;
		kv->arr_len = n;
	}
	/* Every element takes at least this many bytes: a whole scalar, or a string's length. */
	uint64_t esize = kv->arr_type == GGUF_TYPE_STRING ? 8 : type_size[kv->arr_type], min;
	if (ckd_mul(&min, kv->arr_len, esize) || !has(c, min)) {
		if (t == GGUF_TYPE_ARRAY)
			return mu_errf(err, MU_ERR_FORMAT, "%s: array of %llu elements past end of file", where,
				       (unsigned long long)kv->arr_len);
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s value past end of file", where, gguf_type_name(kv->type));
	}
	size_t start = c->pos;
	kv->data = c->base + start;
	if (kv->arr_type == GGUF_TYPE_STRING) {
		for (uint64_t i = 0; i < kv->arr_len; i++) {
			enum mu_err e = skip_string(c, where, t == GGUF_TYPE_ARRAY ? (int64_t)i : -1, err);
			if (e != MU_OK)
				return e;
		}
	} else {
		if (kv->arr_type == GGUF_TYPE_BOOL) {
			for (uint64_t i = 0; i < kv->arr_len; i++) {
				if (c->base[start + i] > 1) {
					if (t == GGUF_TYPE_ARRAY)
						return mu_errf(err, MU_ERR_FORMAT,
							       "%s: array element %llu bool value is not 0 or 1", where,
							       (unsigned long long)i);
					return mu_errf(err, MU_ERR_FORMAT, "%s: bool value is not 0 or 1", where);
				}
			}
		}
		c->pos += (size_t)min;
	}
	kv->size = c->pos - start;
	return MU_OK;
}

static enum mu_err read_kvs(struct cursor *c, struct gguf_kv *kvs, uint64_t n_kv, struct mu_error *err)
{
	for (uint64_t i = 0; i < n_kv; i++) {
		struct gguf_kv *kv = &kvs[i];
		struct shown sh;
		char where[GGUF_SHOW_MAX + 48];
		enum mu_err e = read_name(c, "kv", i, &kv->key, err);
		if (e != MU_OK)
			return e;
		snprintf(where, sizeof where, "kv %llu (%s)", (unsigned long long)i, show(&sh, kv->key));
		e = read_value(c, kv, where, err);
		if (e != MU_OK)
			return e;
	}
	return MU_OK;
}

/* Unique keys, then general.alignment. */
static enum mu_err check_kvs(const struct gguf_kv *kvs, uint64_t n_kv, uint32_t *idx, uint32_t *alignment,
			     struct mu_error *err)
{
	struct shown sh;
	sort_idx(idx, (size_t)n_kv, kv_key_less, kvs);
	for (uint64_t i = 1; i < n_kv; i++) {
		uint32_t a = idx[i - 1], b = idx[i];
		if (str_same(kvs[a].key, kvs[b].key)) {
			uint32_t first = a < b ? a : b, second = a < b ? b : a;
			return mu_errf(err, MU_ERR_FORMAT, "kv %u (%s): duplicate key (first at kv %u)", second,
				       show(&sh, kvs[second].key), first);
		}
	}
	*alignment = GGUF_DEFAULT_ALIGNMENT;
	for (uint64_t i = 0; i < n_kv; i++) {
		const struct gguf_kv *kv = &kvs[i];
		if (!gguf_str_eq(kv->key, "general.alignment"))
			continue;
		if (kv->type != GGUF_TYPE_UINT32)
			return mu_errf(err, MU_ERR_FORMAT, "kv %llu (general.alignment): type is %s, expected u32",
				       (unsigned long long)i, gguf_type_name(kv->type));
		uint32_t a = le32_load(kv->data);
		if (a == 0 || (a & (a - 1)) != 0)
			return mu_errf(err, MU_ERR_FORMAT, "kv %llu (general.alignment): %u is not a power of two",
				       (unsigned long long)i, a);
		if (a > MU_GGUF_MAX_ALIGNMENT)
			return mu_errf(err, MU_ERR_RANGE, "kv %llu (general.alignment): %u exceeds the limit %u",
				       (unsigned long long)i, a, MU_GGUF_MAX_ALIGNMENT);
		*alignment = a;
	}
	return MU_OK;
}

/* ---- tensor table ---- */

static enum mu_err read_tensor(struct cursor *c, struct gguf_tensor *t, uint64_t i, uint32_t alignment,
			       struct mu_error *err)
{
	struct shown sh;
	enum mu_err e = read_name(c, "tensor", i, &t->name, err);
	if (e != MU_OK)
		return e;
	const char *name = show(&sh, t->name);
	if (!has(c, 4))
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: n_dims past end of file", name);
	t->n_dims = take_u32(c);
	if (t->n_dims == 0 || t->n_dims > MU_GGUF_MAX_DIMS)
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: n_dims %u is not in 1..%u", name, t->n_dims,
			       MU_GGUF_MAX_DIMS);
	if (!has(c, (uint64_t)t->n_dims * 8))
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: dims past end of file", name);
	uint64_t n = 1;
	for (uint32_t d = 0; d < MU_GGUF_MAX_DIMS; d++) {
		t->ne[d] = d < t->n_dims ? take_u64(c) : 1;
		if (t->ne[d] == 0)
			return mu_errf(err, MU_ERR_FORMAT, "tensor %s: dim %u is 0", name, d);
		/* ggml counts elements in int64_t, so the count must fit 63 bits. */
		if (ckd_mul(&n, n, t->ne[d]) || n > (uint64_t)INT64_MAX)
			return mu_errf(err, MU_ERR_FORMAT, "tensor %s: element count overflows (dim %u)", name, d);
	}
	t->n_elements = n;
	if (!has(c, 12))
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: type and offset past end of file", name);
	uint32_t type = take_u32(c);
	const struct mu_dtype_info *info = mu_dtype_get(type);
	if (info == NULL)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "tensor %s: unknown tensor type %u", name, type);
	t->type = (enum mu_dtype)type;
	if (t->ne[0] % info->block != 0)
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: dim 0 (%llu) is not a multiple of the %s block size %u",
			       name, (unsigned long long)t->ne[0], info->name, info->block);
	if (ckd_mul(&t->size, n / info->block, (uint64_t)info->size) || t->size > SIZE_MAX)
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: byte size overflows (%llu elements of %s)", name,
			       (unsigned long long)n, info->name);
	t->offset = take_u64(c);
	if (t->offset % alignment != 0)
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: offset %llu is not a multiple of the alignment %u",
			       name, (unsigned long long)t->offset, alignment);
	t->data = NULL;
	return MU_OK;
}

/* Names unique; every tensor inside the file; no two tensors overlapping. Sets data pointers
 * and returns the end of the last tensor relative to the data section. */
static enum mu_err check_tensors(struct gguf_tensor *ts, uint64_t n_t, uint32_t *idx, const uint8_t *base,
				 size_t len, uint64_t data_offset, uint64_t *data_size, struct mu_error *err)
{
	struct shown sh;
	sort_idx(idx, (size_t)n_t, tensor_name_less, ts);
	for (uint64_t i = 1; i < n_t; i++) {
		uint32_t a = idx[i - 1], b = idx[i];
		if (str_same(ts[a].name, ts[b].name))
			return mu_errf(err, MU_ERR_FORMAT, "tensor %s: duplicate name (tensors %u and %u)",
				       show(&sh, ts[a].name), a < b ? a : b, a < b ? b : a);
	}
	*data_size = 0;
	if (n_t == 0)
		return MU_OK;
	if (data_offset > len)
		return mu_errf(err, MU_ERR_FORMAT, "gguf: data section at %llu past end of file (%zu bytes)",
			       (unsigned long long)data_offset, len);
	uint64_t room = len - data_offset, end = 0;
	for (uint64_t i = 0; i < n_t; i++) {
		struct gguf_tensor *t = &ts[i];
		if (t->offset >= room)
			return mu_errf(err, MU_ERR_FORMAT, "tensor %s: offset %llu past end of file",
				       show(&sh, t->name), (unsigned long long)t->offset);
		if (t->size > room - t->offset)
			return mu_errf(err, MU_ERR_FORMAT,
				       "tensor %s: data (offset %llu, %llu bytes) extends past end of file",
				       show(&sh, t->name), (unsigned long long)t->offset, (unsigned long long)t->size);
		t->data = base + data_offset + t->offset;
		if (t->offset + t->size > end)
			end = t->offset + t->size;
	}
	sort_idx(idx, (size_t)n_t, tensor_offset_less, ts);
	for (uint64_t i = 1; i < n_t; i++) {
		const struct gguf_tensor *a = &ts[idx[i - 1]], *b = &ts[idx[i]];
		if (a->offset + a->size > b->offset) {
			struct shown sh2;
			return mu_errf(err, MU_ERR_FORMAT, "tensor %s: data at offset %llu overlaps tensor %s",
				       show(&sh, b->name), (unsigned long long)b->offset, show(&sh2, a->name));
		}
	}
	*data_size = end;
	return MU_OK;
}

enum mu_err gguf_parse(struct gguf *g, const uint8_t *data, size_t len, void *mem, size_t mem_len,
		       struct mu_error *err)
{
	struct gguf r;
	struct layout lay;
	enum mu_err e;

	memset(g, 0, sizeof *g);
	memset(&r, 0, sizeof r);
	e = read_header(data, len, &r.version, &r.n_tensors, &r.n_kv, &lay, err);
	if (e != MU_OK)
		return e;
	if (lay.total > 0 && (mem == NULL || mem_len < lay.total))
		return mu_errf(err, MU_ERR_NOMEM, "gguf: table memory of %zu bytes is less than the %zu needed",
			       mem == NULL ? (size_t)0 : mem_len, lay.total);
	/* Align the caller's pointer; read_header counted the slack. */
	uint8_t *m = lay.total ? mem : NULL;
	if (m)
		m += (TABLE_ALIGN - ((uintptr_t)m & (TABLE_ALIGN - 1))) & (TABLE_ALIGN - 1);
	assert(m || (r.n_kv == 0 && r.n_tensors == 0)); /* read_header: tables, so total > 0 */
	r.kv = r.n_kv ? (struct gguf_kv *)(void *)(m + lay.kv_at) : NULL;
	r.tensors = r.n_tensors ? (struct gguf_tensor *)(void *)(m + lay.tensors_at) : NULL;
	uint32_t *idx = (r.n_kv || r.n_tensors) ? (uint32_t *)(void *)(m + lay.idx_at) : NULL;

	struct cursor c = {data, len, GGUF_HEADER_SIZE};
	e = read_kvs(&c, r.kv, r.n_kv, err);
	if (e != MU_OK)
		return e;
	e = check_kvs(r.kv, r.n_kv, idx, &r.alignment, err);
	if (e != MU_OK)
		return e;
	for (uint64_t i = 0; i < r.n_tensors; i++) {
		e = read_tensor(&c, &r.tensors[i], i, r.alignment, err);
		if (e != MU_OK)
			return e;
	}
	uint64_t header_end = c.pos, end;
	if (ckd_add(&r.data_offset, header_end, (uint64_t)r.alignment - 1))
		return mu_errf(err, MU_ERR_FORMAT, "gguf: data offset overflows");
	r.data_offset -= r.data_offset % r.alignment;
	e = check_tensors(r.tensors, r.n_tensors, idx, data, len, r.data_offset, &r.data_size, err);
	if (e != MU_OK)
		return e;

	/* A file ends at the padded end of its last tensor; one without tensors may stop anywhere
	 * between the end of its metadata and the start of the (empty) data section. */
	if (r.n_tensors == 0) {
		end = r.data_offset;
	} else if (ckd_add(&end, r.data_offset, r.data_size) || ckd_add(&end, end, (uint64_t)r.alignment - 1)) {
		return mu_errf(err, MU_ERR_FORMAT, "gguf: data size overflows");
	} else {
		end -= end % r.alignment;
	}
	if (len > end)
		return mu_errf(err, MU_ERR_FORMAT, "gguf: %llu trailing bytes after the %s",
			       (unsigned long long)(len - end), r.n_tensors ? "tensor data" : "metadata");
	r.base = data;
	r.len = len;
	*g = r;
	return MU_OK;
}

/* ---- lookups and getters ---- */

const struct gguf_kv *gguf_find_kv(const struct gguf *g, const char *key)
{
	for (uint64_t i = 0; i < g->n_kv; i++) {
		if (gguf_str_eq(g->kv[i].key, key))
			return &g->kv[i];
	}
	return NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name)
{
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		if (gguf_str_eq(g->tensors[i].name, name))
			return &g->tensors[i];
	}
	return NULL;
}

/* Finds key; on absence sets *found = 0 and returns NULL. */
static const struct gguf_kv *lookup(const struct gguf *g, const char *key, int *found)
{
	const struct gguf_kv *kv = gguf_find_kv(g, key);
	if (found)
		*found = kv != NULL;
	return kv;
}

static enum mu_err wrong_type(const struct gguf_kv *kv, const char *expected, struct mu_error *err)
{
	struct shown sh;
	if (kv->type == GGUF_TYPE_ARRAY)
		return mu_errf(err, MU_ERR_FORMAT, "key %s: type is array of %s, expected %s", show(&sh, kv->key),
			       gguf_type_name(kv->arr_type), expected);
	return mu_errf(err, MU_ERR_FORMAT, "key %s: type is %s, expected %s", show(&sh, kv->key),
		       gguf_type_name(kv->type), expected);
}

/* Decodes an integer scalar: *neg set when it is negative, *mag its magnitude. */
static int int_value(const struct gguf_kv *kv, int *neg, uint64_t *mag)
{
	int64_t s;
	const uint8_t *p = kv->data;
	*neg = 0;
	switch (kv->type) {
	case GGUF_TYPE_UINT8: *mag = p[0]; return 1;
	case GGUF_TYPE_UINT16: *mag = le16_load(p); return 1;
	case GGUF_TYPE_UINT32: *mag = le32_load(p); return 1;
	case GGUF_TYPE_UINT64: *mag = le64_load(p); return 1;
	/* GGUF's INT8 is signed: the sign extension is meant. NOLINTNEXTLINE(bugprone-signed-char-misuse,cert-str34-c) */
	case GGUF_TYPE_INT8: s = (int8_t)p[0]; break;
	case GGUF_TYPE_INT16: s = (int16_t)le16_load(p); break;
	case GGUF_TYPE_INT32: s = (int32_t)le32_load(p); break;
	case GGUF_TYPE_INT64: s = (int64_t)le64_load(p); break;
	default: return 0;
	}
	*neg = s < 0;
	*mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
	return 1;
}

static enum mu_err get_uint(const struct gguf *g, const char *key, uint64_t max, const char *tname,
			    uint64_t *out, int *found, struct mu_error *err)
{
	const struct gguf_kv *kv = lookup(g, key, found);
	int neg;
	uint64_t mag;
	if (!kv)
		return MU_OK;
	if (!int_value(kv, &neg, &mag))
		return wrong_type(kv, "an integer", err);
	if (neg || mag > max) {
		struct shown sh;
		return mu_errf(err, MU_ERR_FORMAT, "key %s: %s value out of range for %s", show(&sh, kv->key),
			       gguf_type_name(kv->type), tname);
	}
	*out = mag;
	return MU_OK;
}

enum mu_err gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out, int *found, struct mu_error *err)
{
	uint64_t v;
	int f = 0;
	enum mu_err e = get_uint(g, key, UINT32_MAX, "u32", &v, &f, err);
	if (found)
		*found = f;
	if (e == MU_OK && f)
		*out = (uint32_t)v;
	return e;
}

enum mu_err gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out, int *found, struct mu_error *err)
{
	return get_uint(g, key, UINT64_MAX, "u64", out, found, err);
}

enum mu_err gguf_get_f32(const struct gguf *g, const char *key, float *out, int *found, struct mu_error *err)
{
	const struct gguf_kv *kv = lookup(g, key, found);
	if (!kv)
		return MU_OK;
	if (kv->type != GGUF_TYPE_FLOAT32)
		return wrong_type(kv, "f32", err);
	*out = lef32_load(kv->data);
	return MU_OK;
}

enum mu_err gguf_get_bool(const struct gguf *g, const char *key, int *out, int *found, struct mu_error *err)
{
	const struct gguf_kv *kv = lookup(g, key, found);
	if (!kv)
		return MU_OK;
	if (kv->type != GGUF_TYPE_BOOL)
		return wrong_type(kv, "bool", err);
	*out = kv->data[0] != 0;
	return MU_OK;
}

enum mu_err gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out, int *found,
			 struct mu_error *err)
{
	const struct gguf_kv *kv = lookup(g, key, found);
	if (!kv)
		return MU_OK;
	if (kv->type != GGUF_TYPE_STRING)
		return wrong_type(kv, "string", err);
	out->len = le64_load(kv->data);
	out->ptr = (const char *)kv->data + 8;
	return MU_OK;
}

enum mu_err gguf_get_arr(const struct gguf *g, const char *key, enum gguf_type elem_type,
			 const struct gguf_kv **out, int *found, struct mu_error *err)
{
	const struct gguf_kv *kv = lookup(g, key, found);
	if (!kv)
		return MU_OK;
	if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != elem_type) {
		char expected[32];
		snprintf(expected, sizeof expected, "array of %s", gguf_type_name(elem_type));
		return wrong_type(kv, expected, err);
	}
	*out = kv;
	return MU_OK;
}

void gguf_str_iter_init(struct gguf_str_iter *it, const struct gguf_kv *arr)
{
	it->p = NULL;
	it->left = 0;
	if (arr && arr->arr_type == GGUF_TYPE_STRING) {
		it->p = arr->data;
		it->left = arr->arr_len;
	}
}

int gguf_str_iter_next(struct gguf_str_iter *it, struct gguf_str *out)
{
	if (it->left == 0)
		return 0;
	/* gguf_parse checked every length against the file, so these reads stay inside it. */
	uint64_t n = le64_load(it->p);
	out->ptr = (const char *)it->p + 8;
	out->len = n;
	it->left--;
	it->p = it->left ? it->p + 8 + n : NULL;
	return 1;
}

uint32_t gguf_arr_u32(const struct gguf_kv *arr, uint64_t i)
{
	assert(i < arr->arr_len);
	if (i >= arr->arr_len)
		return 0;
	switch (arr->arr_type) {
	case GGUF_TYPE_UINT8: return arr->data[i];
	case GGUF_TYPE_UINT16: return le16_load(arr->data + 2 * i);
	case GGUF_TYPE_UINT32: return le32_load(arr->data + 4 * i);
	default: assert(!"gguf_arr_u32: not an unsigned array of at most 32 bits"); return 0;
	}
}

int32_t gguf_arr_i32(const struct gguf_kv *arr, uint64_t i)
{
	assert(i < arr->arr_len);
	if (i >= arr->arr_len)
		return 0;
	switch (arr->arr_type) {
	case GGUF_TYPE_INT8: return (int8_t)arr->data[i];
	case GGUF_TYPE_UINT8: return arr->data[i];
	case GGUF_TYPE_INT16: return (int16_t)le16_load(arr->data + 2 * i);
	case GGUF_TYPE_UINT16: return le16_load(arr->data + 2 * i);
	case GGUF_TYPE_INT32: return (int32_t)le32_load(arr->data + 4 * i);
	default: assert(!"gguf_arr_i32: not a signed array of at most 32 bits"); return 0;
	}
}

float gguf_arr_f32(const struct gguf_kv *arr, uint64_t i)
{
	assert(i < arr->arr_len && arr->arr_type == GGUF_TYPE_FLOAT32);
	if (i >= arr->arr_len || arr->arr_type != GGUF_TYPE_FLOAT32)
		return 0.0f;
	return lef32_load(arr->data + 4 * i);
}
