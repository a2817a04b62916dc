/* gguf.h — a strict reader for GGUF v3 files (and v2, which has the same layout).
 *
 * File layout (all integers little-endian):
 *
 *   u32   magic = "GGUF" (0x46554747)
 *   u32   version (2 or 3)
 *   u64   n_tensors
 *   u64   n_kv
 *   n_kv × { string key; u32 type; value }
 *   n_tensors × { string name; u32 n_dims; u64 ne[n_dims]; u32 type; u64 offset }
 *   padding to `alignment` (general.alignment, default 32)
 *   tensor data; each tensor at data_start + offset, offset a multiple of alignment
 *
 *   string = u64 len; len bytes (UTF-8, not NUL-terminated)
 *   value  = by type: u8 i8 u16 i16 u32 i32 f32 bool(u8, 0/1) string u64 i64 f64, or
 *            array = u32 elem_type; u64 count; count × value (arrays of arrays are refused)
 *
 * ne[0] is the fastest-varying dimension: a weight of shape (rows d, cols n) has ne = {n, d}.
 *
 * The reader works on a byte span (mmap of a file, or decrypted memory handed over by the
 * enclave) and never copies tensor data. gguf_parse validates everything before the caller
 * may use anything: magic and version; every count against the bytes that remain; string
 * lengths and UTF-8 of keys and names; value and array element types; duplicate keys and
 * tensor names; general.alignment (u32, power of two); n_dims in 1..4 and every dim > 0;
 * element count and byte size without overflow; tensor type known and its first dimension a
 * whole number of blocks; offsets aligned, in range and not overlapping. A vocab-only file
 * (no tensors) may end before the padding. Every refusal names the field, e.g.
 * "tensor blk.3.attn_q.weight: offset 123 past end of file".
 */
#ifndef MU_ENGINE_GGUF_H
#define MU_ENGINE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "engine/dtype.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define GGUF_DEFAULT_ALIGNMENT 32u

enum gguf_type {
	GGUF_TYPE_UINT8 = 0,
	GGUF_TYPE_INT8 = 1,
	GGUF_TYPE_UINT16 = 2,
	GGUF_TYPE_INT16 = 3,
	GGUF_TYPE_UINT32 = 4,
	GGUF_TYPE_INT32 = 5,
	GGUF_TYPE_FLOAT32 = 6,
	GGUF_TYPE_BOOL = 7,
	GGUF_TYPE_STRING = 8,
	GGUF_TYPE_ARRAY = 9,
	GGUF_TYPE_UINT64 = 10,
	GGUF_TYPE_INT64 = 11,
	GGUF_TYPE_FLOAT64 = 12,
	GGUF_TYPE_COUNT
};

struct gguf_str {
	const char *ptr; /* points into the file; not NUL-terminated */
	uint64_t len;
};

struct gguf_kv {
	struct gguf_str key;
	enum gguf_type type;
	/* arrays: element type and count; for scalars arr_type == type and arr_len == 1 */
	enum gguf_type arr_type;
	uint64_t arr_len;
	const uint8_t *data; /* first byte of the value (for arrays: the first element) */
	uint64_t size;       /* bytes of the value (for arrays: of all elements) */
};

struct gguf_tensor {
	struct gguf_str name;
	uint32_t n_dims;
	uint64_t ne[4];       /* unused dims are 1 */
	enum mu_dtype type;
	uint64_t offset;      /* relative to the data section */
	uint64_t n_elements;
	uint64_t size;        /* bytes */
	const uint8_t *data;  /* base + data_offset + offset */
};

struct gguf {
	const uint8_t *base;
	size_t len;
	uint32_t version;
	uint64_t n_kv;
	uint64_t n_tensors;
	struct gguf_kv *kv;          /* n_kv entries, file order */
	struct gguf_tensor *tensors; /* n_tensors entries, file order */
	uint32_t alignment;
	uint64_t data_offset;        /* start of the data section (aligned) */
	uint64_t data_size;          /* bytes from data_offset to the end of the last tensor */
};

/* Memory gguf_parse needs for its tables, from the header's counts. Fails (with a clear
 * message) when the header is truncated or the counts exceed the limits in base/limits.h. */
enum mu_err gguf_mem_size(const uint8_t *data, size_t len, size_t *size, struct mu_error *err);

/* Parses and fully validates data[0..len). mem/mem_len (from gguf_mem_size) holds the kv and
 * tensor tables; both mem and data must outlive g. On failure g is unusable. */
enum mu_err gguf_parse(struct gguf *g, const uint8_t *data, size_t len, void *mem, size_t mem_len,
		       struct mu_error *err);

/* Lookups: NULL / -1 when absent. key is a NUL-terminated C string. */
const struct gguf_kv *gguf_find_kv(const struct gguf *g, const char *key);
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);

/* Typed getters. Return MU_OK, or MU_ERR_FORMAT with a message naming the key when the key
 * is present with the wrong type or out of range. When the key is absent they return MU_OK
 * and leave *out unchanged and *found = 0 (found may be NULL), so defaults are explicit at
 * the call site. Integer getters accept any integer type whose value fits. */
enum mu_err gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out, int *found, struct mu_error *err);
enum mu_err gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out, int *found, struct mu_error *err);
enum mu_err gguf_get_f32(const struct gguf *g, const char *key, float *out, int *found, struct mu_error *err);
enum mu_err gguf_get_bool(const struct gguf *g, const char *key, int *out, int *found, struct mu_error *err);
enum mu_err gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out, int *found, struct mu_error *err);
/* Array element access. For string arrays use the iterator (elements have varying length). */
enum mu_err gguf_get_arr(const struct gguf *g, const char *key, enum gguf_type elem_type,
			 const struct gguf_kv **out, int *found, struct mu_error *err);
struct gguf_str_iter {
	const uint8_t *p;
	uint64_t left;
};
void gguf_str_iter_init(struct gguf_str_iter *it, const struct gguf_kv *arr);
int gguf_str_iter_next(struct gguf_str_iter *it, struct gguf_str *out); /* 0 at the end */
/* Element i of a numeric array, widened (caller checked arr_type). */
uint32_t gguf_arr_u32(const struct gguf_kv *arr, uint64_t i);
int32_t gguf_arr_i32(const struct gguf_kv *arr, uint64_t i);
float gguf_arr_f32(const struct gguf_kv *arr, uint64_t i);

/* Compare a gguf_str with a C string. */
int gguf_str_eq(struct gguf_str s, const char *c);
const char *gguf_type_name(enum gguf_type t);

/* ---- writing (host-side tools: mu gen-model, mu vocab, tests) ----
 * Build the metadata and tensor table in memory, then stream the data tensor by tensor.
 * Uses malloc; not for the enclave. */
struct gguf_writer;
struct gguf_writer *gguf_writer_new(uint32_t alignment);
void gguf_writer_free(struct gguf_writer *w);
enum mu_err gguf_w_u32(struct gguf_writer *w, const char *key, uint32_t v, struct mu_error *err);
enum mu_err gguf_w_i32(struct gguf_writer *w, const char *key, int32_t v, struct mu_error *err);
enum mu_err gguf_w_u64(struct gguf_writer *w, const char *key, uint64_t v, struct mu_error *err);
enum mu_err gguf_w_f32(struct gguf_writer *w, const char *key, float v, struct mu_error *err);
enum mu_err gguf_w_bool(struct gguf_writer *w, const char *key, int v, struct mu_error *err);
enum mu_err gguf_w_str(struct gguf_writer *w, const char *key, const char *v, struct mu_error *err);
enum mu_err gguf_w_arr_str(struct gguf_writer *w, const char *key, const char *const *v, const uint64_t *lens,
			   uint64_t n, struct mu_error *err);
enum mu_err gguf_w_arr_f32(struct gguf_writer *w, const char *key, const float *v, uint64_t n, struct mu_error *err);
enum mu_err gguf_w_arr_i32(struct gguf_writer *w, const char *key, const int32_t *v, uint64_t n, struct mu_error *err);
/* Declares a tensor; ne[0] fastest. Data is supplied later, in declaration order. */
enum mu_err gguf_w_tensor(struct gguf_writer *w, const char *name, enum mu_dtype type, uint32_t n_dims,
			  const uint64_t *ne, struct mu_error *err);
/* Writes header, metadata, tensor table and padding to fd. */
enum mu_err gguf_w_begin(struct gguf_writer *w, int fd, struct mu_error *err);
/* Writes the data of the next declared tensor (size must equal its byte size) plus padding. */
enum mu_err gguf_w_data(struct gguf_writer *w, const void *data, uint64_t size, struct mu_error *err);
/* Checks every declared tensor was written. */
enum mu_err gguf_w_end(struct gguf_writer *w, struct mu_error *err);

#endif
