/* dtype.h — tensor element types and their block layouts.
 *
 * The numeric values are GGUF's (ggml's) type ids, so a tensor's type field is stored as is.
 * Block-quantized types pack `block` elements into `size` bytes; a row of a tensor must hold a
 * whole number of blocks. All multi-byte fields are little-endian (this engine only runs on
 * little-endian hosts, checked by static_assert in dtype.c).
 *
 *   Q8_0  block of 32: f16 d; int8 qs[32]              value[i] = d * qs[i]
 *   Q4_0  block of 32: f16 d; uint8 qs[16]             value[i]    = d * ((qs[i] & 15) - 8)
 *                                                      value[i+16] = d * ((qs[i] >> 4) - 8)
 * The K-quant ids are listed so files that use them parse and are named; the engine reports
 * them as unsupported until their kernels exist.
 */
#ifndef MU_ENGINE_DTYPE_H
#define MU_ENGINE_DTYPE_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

enum mu_dtype {
	MU_DTYPE_F32 = 0,
	MU_DTYPE_F16 = 1,
	MU_DTYPE_Q4_0 = 2,
	MU_DTYPE_Q4_1 = 3,
	MU_DTYPE_Q5_0 = 6,
	MU_DTYPE_Q5_1 = 7,
	MU_DTYPE_Q8_0 = 8,
	MU_DTYPE_Q8_1 = 9,
	MU_DTYPE_Q2_K = 10,
	MU_DTYPE_Q3_K = 11,
	MU_DTYPE_Q4_K = 12,
	MU_DTYPE_Q5_K = 13,
	MU_DTYPE_Q6_K = 14,
	MU_DTYPE_Q8_K = 15,
	MU_DTYPE_I8 = 24,
	MU_DTYPE_I16 = 25,
	MU_DTYPE_I32 = 26,
	MU_DTYPE_I64 = 27,
	MU_DTYPE_F64 = 28,
	MU_DTYPE_BF16 = 30,
	MU_DTYPE_COUNT = 31, /* one past the largest id; ids without an entry are unknown */
};

#define MU_QK8_0 32
#define MU_QK4_0 32

struct mu_block_q8_0 {
	uint16_t d;          /* f16 scale */
	int8_t qs[MU_QK8_0];
};
static_assert(sizeof(struct mu_block_q8_0) == 34, "q8_0 block layout");

struct mu_block_q4_0 {
	uint16_t d;          /* f16 scale */
	uint8_t qs[MU_QK4_0 / 2];
};
static_assert(sizeof(struct mu_block_q4_0) == 18, "q4_0 block layout");

struct mu_dtype_info {
	const char *name;    /* "f32", "q8_0", ... as llama.cpp prints them */
	uint32_t block;      /* elements per block (1 for plain types) */
	uint32_t size;       /* bytes per block */
	int computable;      /* 1 when this engine has kernels for weights of this type */
};

/* NULL when t is not a known type id. */
const struct mu_dtype_info *mu_dtype_get(uint32_t t);

/* Bytes of a row of n elements; 0 (and no overflow) when n is not a whole number of blocks. */
size_t mu_dtype_row_size(enum mu_dtype t, uint64_t n);

/* Parses a type name ("q8_0", "F16" ...) case-insensitively; returns -1 when unknown. */
int mu_dtype_from_name(const char *name);

#endif
