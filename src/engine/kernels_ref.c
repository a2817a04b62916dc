/* kernels_ref.c — the reference (plain C) kernels, which define the canonical reduction order.
 *
 * Every SIMD twin must give the same bits as these functions; docs/determinism.md states the
 * order in words. In short, a dot product is accumulated in MU_LANES = 16 float lanes (element
 * or block i into lane i mod 16, each step acc = acc + product with the product rounded to
 * f32 first), then the lanes are folded pairwise (8, 4, 2, 1). No FMA anywhere.
 *
 * Weight rows are read as bytes: multi-byte fields are decoded with explicit little-endian
 * loads or memcpy, never by casting the buffer (Q8_0 blocks are 34 bytes, so their fields are
 * unaligned). Activations are this process's own buffers (from mu_act_prepare) and are read
 * the same way for the quantized form.
 */
#include "engine/kernels_impl.h"

#include <assert.h>
#include <float.h>
#include <stddef.h>
#include <string.h>

#include "base/endian.h"
#include "base/fp16.h"

static_assert(FLT_EVAL_METHOD == 0, "float and double arithmetic must round to their own type");

static_assert(offsetof(struct mu_block_q8_0, d) == 0 && offsetof(struct mu_block_q8_0, qs) == 2,
	      "q8_0 block: f16 scale at byte 0, quants from byte 2");
static_assert(offsetof(struct mu_block_q4_0, d) == 0 && offsetof(struct mu_block_q4_0, qs) == 2,
	      "q4_0 block: f16 scale at byte 0, nibbles from byte 2");
static_assert(MU_QK8_0 == 32 && MU_QK4_0 == 32, "blocks of 32");
static_assert(MU_LANES == 16, "the canonical order has 16 lanes");

#define Q8_0_BYTES ((size_t)sizeof(struct mu_block_q8_0))
#define Q4_0_BYTES ((size_t)sizeof(struct mu_block_q4_0))

/* ---- the canonical 16-lane order ----------------------------------------------------------- */

/* acc[l] = acc[l] + w[l] * x[l] for l < m (m <= 16): the product rounds to f32, then the sum. */
static inline void lanes_madd(float acc[MU_LANES], const float *w, const float *x, size_t m)
{
	for (size_t l = 0; l < m; l++)
		acc[l] = acc[l] + w[l] * x[l];
}

float mu_dot_f32(const float *a, const float *b, size_t n)
{
	float acc[MU_LANES] = {0}; /* +0.0f */
	size_t i = 0;
	for (; i + MU_LANES <= n; i += MU_LANES)
		lanes_madd(acc, a + i, b + i, MU_LANES);
	if (i < n)
		lanes_madd(acc, a + i, b + i, n - i);
	return mu_lanes_fold(acc);
}

float mu_sumsq_f32(const float *a, size_t n)
{
	return mu_dot_f32(a, a, n);
}

/* ---- float rows: F32, F16, BF16 weights times an f32 activation ----------------------------
 * The weights of each group of 16 are widened (exactly) into w[], then multiplied lane by
 * lane; a short last group fills the first lanes only. */

static void widen_f32(const uint8_t *src, float *dst, size_t m)
{
	memcpy(dst, src, m * sizeof(float)); /* little-endian host, checked in dtype.c */
}

static void widen_f16(const uint8_t *src, float *dst, size_t m)
{
	for (size_t l = 0; l < m; l++)
		dst[l] = mu_f16_to_f32(le16_load(src + 2 * l));
}

static void widen_bf16(const uint8_t *src, float *dst, size_t m)
{
	for (size_t l = 0; l < m; l++)
		dst[l] = mu_bf16_to_f32(le16_load(src + 2 * l));
}

static inline float row_dot_widened(const uint8_t *row, size_t elem_bytes, const float *x, size_t n,
				    void (*widen)(const uint8_t *, float *, size_t))
{
	float acc[MU_LANES] = {0};
	float w[MU_LANES];
	size_t i = 0;
	for (; i + MU_LANES <= n; i += MU_LANES) {
		widen(row + i * elem_bytes, w, MU_LANES);
		lanes_madd(acc, w, x + i, MU_LANES);
	}
	if (i < n) {
		widen(row + i * elem_bytes, w, n - i);
		lanes_madd(acc, w, x + i, n - i);
	}
	return mu_lanes_fold(acc);
}

static void matvec_f32(const uint8_t *w, size_t row_bytes, const void *x, size_t n, float *out,
		       size_t r0, size_t r1)
{
	for (size_t r = r0; r < r1; r++)
		out[r] = row_dot_widened(w + r * row_bytes, 4, (const float *)x, n, widen_f32);
}

static void matvec_f16(const uint8_t *w, size_t row_bytes, const void *x, size_t n, float *out,
		       size_t r0, size_t r1)
{
	for (size_t r = r0; r < r1; r++)
		out[r] = row_dot_widened(w + r * row_bytes, 2, (const float *)x, n, widen_f16);
}

static void matvec_bf16(const uint8_t *w, size_t row_bytes, const void *x, size_t n, float *out,
			size_t r0, size_t r1)
{
	for (size_t r = r0; r < r1; r++)
		out[r] = row_dot_widened(w + r * row_bytes, 2, (const float *)x, n, widen_bf16);
}

static void dequant_f32(const void *src, float *dst, size_t n)
{
	widen_f32(src, dst, n);
}

static void dequant_f16(const void *src, float *dst, size_t n)
{
	widen_f16(src, dst, n);
}

static void dequant_bf16(const void *src, float *dst, size_t n)
{
	widen_bf16(src, dst, n);
}

static void quantize_f32(const float *src, void *dst, size_t n)
{
	memcpy(dst, src, n * sizeof(float));
}

static void quantize_f16(const float *src, void *dst, size_t n)
{
	uint8_t *p = dst;
	for (size_t i = 0; i < n; i++)
		le16_store(p + 2 * i, mu_f32_to_f16(src[i]));
}

static void quantize_bf16(const float *src, void *dst, size_t n)
{
	uint8_t *p = dst;
	for (size_t i = 0; i < n; i++)
		le16_store(p + 2 * i, mu_f32_to_bf16(src[i]));
}

/* ---- Q8_0 quantization (activations and Q8_0 weights) --------------------------------------
 * mu_q8_block's rule, d stored as f16. The rounding adds and subtracts 1.5 * 2^23 (see
 * mu_round_bits). Clamping to +-127 is a no-op for finite input (|x_i * id| <= 127 * (1 + 2^-22))
 * and keeps NaN or infinite input defined. */
#define ROUND_MAGIC 0x1.8p+23f

int32_t mu_round_bits(float v)
{
	return (int32_t)(mu_f32_bits(v + ROUND_MAGIC) - mu_f32_bits(ROUND_MAGIC));
}

float mu_q8_block(const float *x, size_t n, int8_t *q)
{
	float amax = 0.0f;
	for (size_t i = 0; i < n; i++) {
		float a = mu_bits_f32(mu_f32_bits(x[i]) & 0x7fffffffu);
		if (a > amax)
			amax = a;
	}
	float d = amax / 127.0f;
	float id = d != 0.0f ? 1.0f / d : 0.0f;
	for (size_t i = 0; i < n; i++) {
		int32_t v = mu_round_bits(x[i] * id);
		q[i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
	}
	return d;
}

static void quantize_block_q8_0(const float *x, uint8_t *dst)
{
	int8_t q[MU_QK8_0];
	le16_store(dst, mu_f32_to_f16(mu_q8_block(x, MU_QK8_0, q)));
	memcpy(dst + 2, q, MU_QK8_0);
}

void mu_quantize_q8_0(const float *x, struct mu_block_q8_0 *out, size_t n)
{
	assert(n % MU_QK8_0 == 0);
	uint8_t *dst = (uint8_t *)out;
	for (size_t b = 0; b < n / MU_QK8_0; b++)
		quantize_block_q8_0(x + b * MU_QK8_0, dst + b * Q8_0_BYTES);
}

static void quantize_q8_0(const float *src, void *dst, size_t n)
{
	assert(n % MU_QK8_0 == 0);
	uint8_t *p = dst;
	for (size_t b = 0; b < n / MU_QK8_0; b++)
		quantize_block_q8_0(src + b * MU_QK8_0, p + b * Q8_0_BYTES);
}

static void dequant_q8_0(const void *src, float *dst, size_t n)
{
	assert(n % MU_QK8_0 == 0);
	const uint8_t *p = src;
	for (size_t b = 0; b < n / MU_QK8_0; b++, p += Q8_0_BYTES) {
		float d = mu_f16_to_f32(le16_load(p));
		for (size_t i = 0; i < MU_QK8_0; i++)
			dst[b * MU_QK8_0 + i] = d * (float)(int8_t)p[2 + i];
	}
}

/* ---- Q4_0 ----------------------------------------------------------------------------------
 * Per block: m = the signed value of largest magnitude (the first one on ties), d = m / -8,
 * id = d != 0 ? 1/d : 0, q_i = min(15, trunc(x_i * id + 8.5)); x_i * id lies in [-8, 8] for
 * finite input, so the sum is in [0.5, 16.5] and the clamps below only matter for NaN or
 * infinite input. Element i < 16 goes to the low nibble of qs[i], element i + 16 to its high
 * nibble. */
static uint8_t trunc_q4(float v)
{
	if (!(v >= 0.0f)) /* also NaN */
		return 0;
	if (v >= 15.0f)
		return 15;
	return (uint8_t)v;
}

static void quantize_q4_0(const float *src, void *dst, size_t n)
{
	assert(n % MU_QK4_0 == 0);
	uint8_t *p = dst;
	for (size_t b = 0; b < n / MU_QK4_0; b++, p += Q4_0_BYTES) {
		const float *x = src + b * MU_QK4_0;
		float amax = 0.0f, m = 0.0f;
		for (size_t i = 0; i < MU_QK4_0; i++) {
			float a = mu_bits_f32(mu_f32_bits(x[i]) & 0x7fffffffu);
			if (a > amax) {
				amax = a;
				m = x[i];
			}
		}
		float d = m / -8.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		le16_store(p, mu_f32_to_f16(d));
		for (size_t i = 0; i < MU_QK4_0 / 2; i++) {
			uint8_t lo = trunc_q4(x[i] * id + 8.5f);
			uint8_t hi = trunc_q4(x[i + MU_QK4_0 / 2] * id + 8.5f);
			p[2 + i] = (uint8_t)(lo | (hi << 4));
		}
	}
}

static void dequant_q4_0(const void *src, float *dst, size_t n)
{
	assert(n % MU_QK4_0 == 0);
	const uint8_t *p = src;
	for (size_t b = 0; b < n / MU_QK4_0; b++, p += Q4_0_BYTES) {
		float d = mu_f16_to_f32(le16_load(p));
		float *o = dst + b * MU_QK4_0;
		for (size_t i = 0; i < MU_QK4_0 / 2; i++) {
			o[i] = d * (float)((int32_t)(p[2 + i] & 15) - 8);
			o[i + MU_QK4_0 / 2] = d * (float)((int32_t)(p[2 + i] >> 4) - 8);
		}
	}
}

/* ---- quantized rows times a Q8_0 activation ------------------------------------------------
 * Block b: isum = the exact int32 dot of the quants (|isum| <= 32 * 127 * 127 < 2^24, so
 * (float)isum is exact), term = (float)isum * (dw * dx) with the scales' product first
 * (exact too: two 11-bit significands), term into lane b mod 16, then the fold. */

static float row_dot_q8_0(const uint8_t *row, const uint8_t *xq, size_t nb)
{
	float acc[MU_LANES] = {0};
	for (size_t b = 0; b < nb; b++, row += Q8_0_BYTES, xq += Q8_0_BYTES) {
		int32_t isum = 0;
		for (size_t i = 0; i < MU_QK8_0; i++)
			isum += (int32_t)(int8_t)row[2 + i] * (int32_t)(int8_t)xq[2 + i];
		float dw = mu_f16_to_f32(le16_load(row));
		float dx = mu_f16_to_f32(le16_load(xq));
		acc[b % MU_LANES] = acc[b % MU_LANES] + (float)isum * (dw * dx);
	}
	return mu_lanes_fold(acc);
}

static float row_dot_q4_0(const uint8_t *row, const uint8_t *xq, size_t nb)
{
	float acc[MU_LANES] = {0};
	for (size_t b = 0; b < nb; b++, row += Q4_0_BYTES, xq += Q8_0_BYTES) {
		int32_t isum = 0;
		for (size_t i = 0; i < MU_QK4_0 / 2; i++) {
			int32_t lo = (int32_t)(row[2 + i] & 15) - 8;
			int32_t hi = (int32_t)(row[2 + i] >> 4) - 8;
			isum += lo * (int32_t)(int8_t)xq[2 + i] + hi * (int32_t)(int8_t)xq[2 + i + 16];
		}
		float dw = mu_f16_to_f32(le16_load(row));
		float dx = mu_f16_to_f32(le16_load(xq));
		acc[b % MU_LANES] = acc[b % MU_LANES] + (float)isum * (dw * dx);
	}
	return mu_lanes_fold(acc);
}

static void matvec_q8_0(const uint8_t *w, size_t row_bytes, const void *x, size_t n, float *out,
			size_t r0, size_t r1)
{
	assert(n % MU_QK8_0 == 0);
	for (size_t r = r0; r < r1; r++)
		out[r] = row_dot_q8_0(w + r * row_bytes, x, n / MU_QK8_0);
}

static void matvec_q4_0(const uint8_t *w, size_t row_bytes, const void *x, size_t n, float *out,
			size_t r0, size_t r1)
{
	assert(n % MU_QK4_0 == 0);
	for (size_t r = r0; r < r1; r++)
		out[r] = row_dot_q4_0(w + r * row_bytes, x, n / MU_QK4_0);
}

MU_REF_MATMUL(matmul_f32, matvec_f32)
MU_REF_MATMUL(matmul_f16, matvec_f16)
MU_REF_MATMUL(matmul_bf16, matvec_bf16)
MU_REF_MATMUL(matmul_q8_0, matvec_q8_0)
MU_REF_MATMUL(matmul_q4_0, matvec_q4_0)

/* ---- activations and the table ------------------------------------------------------------ */

size_t mu_act_size(enum mu_act_kind k, size_t n)
{
	switch (k) {
	case MU_ACT_F32:
		return n * sizeof(float);
	case MU_ACT_Q8_0:
		return n % MU_QK8_0 == 0 ? n / MU_QK8_0 * Q8_0_BYTES : 0;
	case MU_ACT_Q8_K:
		return n % MU_QK_K == 0 ? n / MU_QK_K * sizeof(struct mu_block_q8_k) : 0;
	}
	return 0;
}

void mu_act_prepare(enum mu_act_kind k, const float *x, void *out, size_t n)
{
	switch (k) {
	case MU_ACT_F32:
		memcpy(out, x, n * sizeof(float));
		return;
	case MU_ACT_Q8_0:
		quantize_q8_0(x, out, n);
		return;
	case MU_ACT_Q8_K:
		mu_quantize_q8_k_ref(x, out, n);
		return;
	}
	assert(0 && "unknown activation kind");
}

static void axpy_ref(float *y, float a, const void *v, enum mu_dtype vt, size_t n)
{
	const uint8_t *p = v;
	if (vt == MU_DTYPE_F16) {
		for (size_t i = 0; i < n; i++)
			y[i] = y[i] + a * mu_f16_to_f32(le16_load(p + 2 * i));
	} else {
		const float *f = v;
		for (size_t i = 0; i < n; i++)
			y[i] = y[i] + a * f[i];
	}
}

static const struct mu_type_kernels kernels_f32 = {
	MU_ACT_F32, matvec_f32, matmul_f32, dequant_f32, quantize_f32, NULL,
};
static const struct mu_type_kernels kernels_f16 = {
	MU_ACT_F32, matvec_f16, matmul_f16, dequant_f16, quantize_f16, NULL,
};
static const struct mu_type_kernels kernels_bf16 = {
	MU_ACT_F32, matvec_bf16, matmul_bf16, dequant_bf16, quantize_bf16, NULL,
};
static const struct mu_type_kernels kernels_q8_0 = {
	MU_ACT_Q8_0, matvec_q8_0, matmul_q8_0, dequant_q8_0, quantize_q8_0, NULL,
};
static const struct mu_type_kernels kernels_q4_0 = {
	MU_ACT_Q8_0, matvec_q4_0, matmul_q4_0, dequant_q4_0, quantize_q4_0, NULL,
};

const struct mu_type_kernels *mu_kernels_ref(enum mu_dtype t)
{
	switch (t) {
	case MU_DTYPE_F32: return &kernels_f32;
	case MU_DTYPE_F16: return &kernels_f16;
	case MU_DTYPE_BF16: return &kernels_bf16;
	case MU_DTYPE_Q8_0: return &kernels_q8_0;
	case MU_DTYPE_Q4_0: return &kernels_q4_0;
	default: return mu_kq_ref(t);
	}
}

/* The reference reads every type in the GGUF layout. */
static const struct mu_type_kernels *packed_none(enum mu_dtype t)
{
	(void)t;
	return NULL;
}

const struct mu_kernel_path mu_path_ref = {
	"ref", mu_kernels_ref, mu_act_prepare, mu_dot_f32, axpy_ref, packed_none,
};
