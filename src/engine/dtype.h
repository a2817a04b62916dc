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
 *
 * K-quants pack a super-block of 256 elements (MU_QK_K) into sub-blocks with their own small
 * integer scales, which are scaled again by the super-block's f16 factors:
 *
 *   Q4_K  144 bytes: f16 d; f16 dmin; uint8 scales[12]; uint8 qs[128]
 *         8 sub-blocks of 32 with a 6-bit scale sc_j and a 6-bit min m_j packed in scales[12]:
 *           j < 4:  sc_j = s[j] & 63;                          m_j = s[j+4] & 63
 *           j >= 4: sc_j = (s[j+4] & 15) | (s[j-4] >> 6) << 4;  m_j = (s[j+4] >> 4) | (s[j] >> 6) << 4
 *         qs holds four chunks of 32 bytes; in chunk c, byte l carries element 64c+l in its low
 *         nibble and element 64c+32+l in its high nibble (so sub-block j = element / 32).
 *         value = d * sc_j * q - dmin * m_j, q in 0..15
 *   Q5_K  176 bytes: f16 d; f16 dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]
 *         as Q4_K plus a fifth bit: element 64c+l takes bit 2c of qh[l] as its bit 4, element
 *         64c+32+l takes bit 2c+1 of qh[l]. q in 0..31
 *   Q6_K  210 bytes: uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d (at the end)
 *         16 sub-blocks of 16 (sub-block j = element / 16), value = d * scales[j] * (q - 32),
 *         q in 0..63. Half h (elements 128h..128h+127) uses ql' = ql + 64h, qh' = qh + 32h;
 *         for l < 32:
 *           q[128h + l]      = (ql'[l] & 15)      | (qh'[l] & 3) << 4
 *           q[128h + 32 + l] = (ql'[l + 32] & 15) | (qh'[l] >> 2 & 3) << 4
 *           q[128h + 64 + l] = (ql'[l] >> 4)      | (qh'[l] >> 4 & 3) << 4
 *           q[128h + 96 + l] = (ql'[l + 32] >> 4) | (qh'[l] >> 6 & 3) << 4
 *   Q8_K  292 bytes: f32 d; int8 qs[256]; int16 bsums[16]    value[i] = d * qs[i]
 *         bsums[g] = the sum of qs[16g .. 16g+15]. Only an activation form (MU_ACT_Q8_K), the
 *         partner of the K-quant weights; there are no Q8_K weights.
 * The layouts are ggml's, so GGUF files are read as they are. Q2_K, Q3_K and the other ids
 * without kernels are listed so files that use them parse and are named; the engine reports
 * them as unsupported.
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

#define MU_QK_K 256

struct mu_block_q4_k {
	uint16_t d;          /* f16 scale of the sub-block scales */
	uint16_t dmin;       /* f16 scale of the sub-block mins */
	uint8_t scales[12];  /* 8 six-bit scales and 8 six-bit mins */
	uint8_t qs[MU_QK_K / 2];
};
static_assert(sizeof(struct mu_block_q4_k) == 144, "q4_K block layout");
static_assert(offsetof(struct mu_block_q4_k, dmin) == 2 && offsetof(struct mu_block_q4_k, scales) == 4 &&
	      offsetof(struct mu_block_q4_k, qs) == 16, "q4_K field offsets");

struct mu_block_q5_k {
	uint16_t d;
	uint16_t dmin;
	uint8_t scales[12];
	uint8_t qh[MU_QK_K / 8]; /* the fifth bits */
	uint8_t qs[MU_QK_K / 2]; /* the low four bits */
};
static_assert(sizeof(struct mu_block_q5_k) == 176, "q5_K block layout");
static_assert(offsetof(struct mu_block_q5_k, scales) == 4 && offsetof(struct mu_block_q5_k, qh) == 16 &&
	      offsetof(struct mu_block_q5_k, qs) == 48, "q5_K field offsets");

struct mu_block_q6_k {
	uint8_t ql[MU_QK_K / 2];  /* the low four bits */
	uint8_t qh[MU_QK_K / 4];  /* the high two bits */
	int8_t scales[MU_QK_K / 16];
	uint16_t d;               /* f16 super-block scale, last */
};
static_assert(sizeof(struct mu_block_q6_k) == 210, "q6_K block layout");
static_assert(offsetof(struct mu_block_q6_k, qh) == 128 && offsetof(struct mu_block_q6_k, scales) == 192 &&
	      offsetof(struct mu_block_q6_k, d) == 208, "q6_K field offsets");

struct mu_block_q8_k {
	float d;                  /* f32 scale, not rounded to f16 */
	int8_t qs[MU_QK_K];
	int16_t bsums[MU_QK_K / 16];
};
static_assert(sizeof(struct mu_block_q8_k) == 292, "q8_K block layout");
static_assert(offsetof(struct mu_block_q8_k, qs) == 4 && offsetof(struct mu_block_q8_k, bsums) == 260,
	      "q8_K field offsets");

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
