/* kernels_kq_ref.c — reference K-quant kernels (Q4_K, Q5_K, Q6_K) and Q8_K activations.
 *
 * The executable form of the "K-quants" section of docs/determinism.md; the layouts are in
 * engine/dtype.h. In short, for super-block b of a row and of the Q8_K activation:
 *   Q4_K, Q5_K: isum = sum_j sc_j * (sum_{i in j} q_i qx_i)        (exact int32)
 *               msum = sum_j m_j * (bsums[2j] + bsums[2j+1])        (exact int32)
 *               term = (float)isum * (d * dx) - (float)msum * (dmin * dx)
 *   Q6_K:       isum = sum_j scales[j] * (sum_{i in j} (q_i - 32) qx_i)
 *               term = (float)isum * (d * dx)
 * with d, dmin widened exactly from f16 and dx the activation's f32 scale; every product is
 * rounded to f32, then the difference. term goes to lane b mod 16 in increasing b, and the 16
 * lanes are folded pairwise (8, 4, 2, 1) as for every other dot product.
 *
 * Weight rows are read as bytes (blocks of 144, 176 and 210 bytes are unaligned); the
 * activation is read the same way.
 */
#include "engine/kernels_impl.h"

#include <assert.h>
#include <float.h>
#include <stddef.h>
#include <string.h>

#include "base/endian.h"
#include "base/fp16.h"

static_assert(FLT_EVAL_METHOD == 0, "float and double arithmetic must round to their own type");
static_assert(MU_QK_K == 256 && MU_LANES == 16, "super-blocks of 256, 16 lanes");

#define Q4K_BYTES ((size_t)sizeof(struct mu_block_q4_k))
#define Q5K_BYTES ((size_t)sizeof(struct mu_block_q5_k))
#define Q6K_BYTES ((size_t)sizeof(struct mu_block_q6_k))
#define Q8K_BYTES ((size_t)sizeof(struct mu_block_q8_k))

/* ---- helpers ------------------------------------------------------------------------------- */

/* The 6-bit scales and mins of Q4_K and Q5_K, unpacked from their 12 bytes. */
static void unpack_scales(const uint8_t s[static 12], uint8_t sc[static 8], uint8_t m[static 8])
{
	for (int j = 0; j < 4; j++) {
		sc[j] = s[j] & 63;
		m[j] = s[j + 4] & 63;
		sc[j + 4] = (uint8_t)((s[j + 8] & 15) | ((s[j] >> 6) << 4));
		m[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
	}
}

static void pack_scales(const uint8_t sc[static 8], const uint8_t m[static 8], uint8_t s[static 12])
{
	for (int j = 0; j < 4; j++) {
		s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
		s[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
		s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
	}
}

/* Q5_K's and Q4_K's quant of element 64c + l (h = 0) or 64c + 32 + l (h = 1); qh is NULL for
 * Q4_K. */
static inline int32_t q45_quant(const uint8_t *qs, const uint8_t *qh, size_t c, size_t h, size_t l)
{
	uint8_t byte = qs[32 * c + l];
	int32_t q = h ? byte >> 4 : byte & 15;
	if (qh)
		q |= ((qh[l] >> (2 * c + h)) & 1) << 4;
	return q;
}

/* Q6_K's quant (0..63) of element i of a block. */
static inline int32_t q6_quant(const uint8_t *blk, size_t i)
{
	size_t h = i / 128, part = (i % 128) / 32, l = i % 32;
	const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
	uint8_t lo = ql[l + (part & 1) * 32];
	lo = (part & 2) ? lo >> 4 : lo & 15;
	return lo | (((qh[l] >> (2 * part)) & 3) << 4);
}

/* ---- Q8_K activations ----------------------------------------------------------------------
 * Per block of 256: amax = max |x_i| (NaN ignored); d = amax / 127; id = d != 0 ? 1/d : 0;
 * q_i = round-half-even(x_i * id) clamped to [-127, 127] (a no-op for finite input); d is
 * stored as f32; bsums[g] = sum of q over 16g..16g+15. */

static void quantize_block_q8_k(const float *x, uint8_t *dst)
{
	int8_t q[MU_QK_K];
	lef32_store(dst, mu_q8_block(x, MU_QK_K, q));
	memcpy(dst + 4, q, MU_QK_K);
	for (size_t g = 0; g < MU_QK_K / 16; g++) {
		int32_t sum = 0;
		for (size_t i = 16 * g; i < 16 * g + 16; i++)
			sum += q[i];
		le16_store(dst + 4 + MU_QK_K + 2 * g, (uint16_t)(int16_t)sum); /* |sum| <= 2032 */
	}
}

void mu_quantize_q8_k_ref(const float *x, void *out, size_t n)
{
	assert(n % MU_QK_K == 0);
	uint8_t *dst = out;
	for (size_t b = 0; b < n / MU_QK_K; b++)
		quantize_block_q8_k(x + b * MU_QK_K, dst + b * Q8K_BYTES);
}

static inline int32_t act_bsum(const uint8_t *xb, size_t g)
{
	return (int16_t)le16_load(xb + 4 + MU_QK_K + 2 * g);
}

/* ---- the dot products ----------------------------------------------------------------------
 * Bounds (all well inside int32): Q4_K |isum| <= 8 * 63 * 32 * 15 * 127 = 30,723,840; Q5_K
 * 8 * 63 * 32 * 31 * 127 = 63,495,936; Q4_K/Q5_K |msum| <= 8 * 63 * 32 * 127 = 2,048,256;
 * Q6_K |isum| <= 16 * 128 * 16 * 32 * 127 = 133,169,152. isum may exceed 2^24, so
 * (float)isum can round: to nearest even, as cvtdq2ps does. */

static float row_dot_q45(const uint8_t *row, const uint8_t *xq, size_t nb, int five)
{
	const size_t bytes = five ? Q5K_BYTES : Q4K_BYTES;
	float acc[MU_LANES] = {0};
	for (size_t b = 0; b < nb; b++, row += bytes, xq += Q8K_BYTES) {
		const uint8_t *qh = five ? row + 16 : NULL;
		const uint8_t *qs = row + (five ? 48 : 16);
		const int8_t *qx = (const int8_t *)(xq + 4);
		uint8_t sc[8], m[8];
		unpack_scales(row + 4, sc, m);
		int32_t isum = 0, msum = 0;
		for (size_t c = 0; c < 4; c++) {
			for (size_t h = 0; h < 2; h++) {
				int32_t s = 0;
				for (size_t l = 0; l < 32; l++)
					s += q45_quant(qs, qh, c, h, l) * qx[64 * c + 32 * h + l];
				isum += (int32_t)sc[2 * c + h] * s;
			}
		}
		for (size_t j = 0; j < 8; j++)
			msum += (int32_t)m[j] * (act_bsum(xq, 2 * j) + act_bsum(xq, 2 * j + 1));
		float dx = lef32_load(xq);
		float a = mu_f16_to_f32(le16_load(row)) * dx;
		float c = mu_f16_to_f32(le16_load(row + 2)) * dx;
		float pi = (float)isum * a;
		float pm = (float)msum * c;
		acc[b % MU_LANES] = acc[b % MU_LANES] + (pi - pm);
	}
	return mu_lanes_fold(acc);
}

static float row_dot_q6(const uint8_t *row, const uint8_t *xq, size_t nb)
{
	float acc[MU_LANES] = {0};
	for (size_t b = 0; b < nb; b++, row += Q6K_BYTES, xq += Q8K_BYTES) {
		const int8_t *qx = (const int8_t *)(xq + 4);
		int32_t isum = 0;
		for (size_t j = 0; j < 16; j++) {
			int32_t s = 0;
			for (size_t i = 16 * j; i < 16 * j + 16; i++)
				s += (q6_quant(row, i) - 32) * qx[i];
			isum += (int32_t)(int8_t)row[192 + j] * s;
		}
		float a = mu_f16_to_f32(le16_load(row + 208)) * lef32_load(xq);
		acc[b % MU_LANES] = acc[b % MU_LANES] + (float)isum * a;
	}
	return mu_lanes_fold(acc);
}

static void matvec_q4_k(const uint8_t *w, size_t row_bytes, const void *x, size_t n, float *out,
			size_t r0, size_t r1)
{
	assert(n % MU_QK_K == 0);
	for (size_t r = r0; r < r1; r++)
		out[r] = row_dot_q45(w + r * row_bytes, x, n / MU_QK_K, 0);
}

static void matvec_q5_k(const uint8_t *w, size_t row_bytes, const void *x, size_t n, float *out,
			size_t r0, size_t r1)
{
	assert(n % MU_QK_K == 0);
	for (size_t r = r0; r < r1; r++)
		out[r] = row_dot_q45(w + r * row_bytes, x, n / MU_QK_K, 1);
}

static void matvec_q6_k(const uint8_t *w, size_t row_bytes, const void *x, size_t n, float *out,
			size_t r0, size_t r1)
{
	assert(n % MU_QK_K == 0);
	for (size_t r = r0; r < r1; r++)
		out[r] = row_dot_q6(w + r * row_bytes, x, n / MU_QK_K);
}

MU_REF_MATMUL(matmul_q4_k, matvec_q4_k)
MU_REF_MATMUL(matmul_q5_k, matvec_q5_k)
MU_REF_MATMUL(matmul_q6_k, matvec_q6_k)

/* ---- dequantization ------------------------------------------------------------------------
 * Q4_K, Q5_K: value = (d * (float)sc_j) * (float)q - dmin * (float)m_j, each operation
 * rounded in that order. Q6_K: value = (d * (float)scales[j]) * (float)(q - 32). */

static void dequant_q45(const void *src, float *dst, size_t n, int five)
{
	assert(n % MU_QK_K == 0);
	const size_t bytes = five ? Q5K_BYTES : Q4K_BYTES;
	const uint8_t *p = src;
	for (size_t b = 0; b < n / MU_QK_K; b++, p += bytes, dst += MU_QK_K) {
		float d = mu_f16_to_f32(le16_load(p)), dmin = mu_f16_to_f32(le16_load(p + 2));
		uint8_t sc[8], m[8];
		unpack_scales(p + 4, sc, m);
		const uint8_t *qh = five ? p + 16 : NULL, *qs = p + (five ? 48 : 16);
		for (size_t c = 0; c < 4; c++) {
			for (size_t h = 0; h < 2; h++) {
				float ds = d * (float)sc[2 * c + h], dm = dmin * (float)m[2 * c + h];
				for (size_t l = 0; l < 32; l++)
					dst[64 * c + 32 * h + l] = ds * (float)q45_quant(qs, qh, c, h, l) - dm;
			}
		}
	}
}

static void dequant_q4_k(const void *src, float *dst, size_t n) { dequant_q45(src, dst, n, 0); }
static void dequant_q5_k(const void *src, float *dst, size_t n) { dequant_q45(src, dst, n, 1); }

static void dequant_q6_k(const void *src, float *dst, size_t n)
{
	assert(n % MU_QK_K == 0);
	const uint8_t *p = src;
	for (size_t b = 0; b < n / MU_QK_K; b++, p += Q6K_BYTES, dst += MU_QK_K) {
		float d = mu_f16_to_f32(le16_load(p + 208));
		for (size_t i = 0; i < MU_QK_K; i++) {
			float ds = d * (float)(int8_t)p[192 + i / 16];
			dst[i] = ds * (float)(q6_quant(p, i) - 32);
		}
	}
}

/* ---- weight quantization (model writers and tests; never in the forward pass) --------------
 * Simple deterministic rules, stated in docs/determinism.md. Every integer comes from
 * round_clamp or ceil_clamp, which never convert an out-of-range float (NaN included). */

/* round-half-even(v) clamped to [lo, hi]; NaN gives if_nan. */
static int32_t round_clamp(float v, int32_t lo, int32_t hi, int32_t if_nan)
{
	if (v != v)
		return if_nan;
	if (v <= (float)lo)
		return lo;
	if (v >= (float)hi)
		return hi;
	return mu_round_bits(v);
}

/* The smallest integer >= v, clamped to [0, hi]; NaN gives 0. */
static int32_t ceil_clamp(float v, int32_t hi)
{
	if (!(v > 0.0f))
		return 0;
	if (v >= (float)hi)
		return hi;
	int32_t r = mu_round_bits(v);
	return (float)r < v ? r + 1 : r;
}

/* Q4_K (levels = 15) and Q5_K (levels = 31), per super-block:
 *   lo_j = min(0, min x over sub-block j), hi_j = max(lo_j, max x)   (NaN ignored)
 *   dmin = f16(max_j(-lo_j) / 63);  m_j = ceil(-lo_j / dmin) (0 when dmin is 0), at most 63
 *   off_j = dmin * m_j;  s_j = (hi_j + off_j) / levels
 *   d = f16(max_j s_j / 63);  sc_j = ceil(s_j / d) (0 when d is 0), at most 63
 *   step_j = d * sc_j;  q_i = round-half-even((x_i + off_j) / step_j) in [0, levels]
 *   (0 when step_j is 0 or the quotient is NaN)
 * with d and dmin the f16-rounded values, widened, from the moment they are rounded. */
static void quantize_q45(const float *src, void *dst, size_t n, int five)
{
	assert(n % MU_QK_K == 0);
	const int32_t levels = five ? 31 : 15;
	const size_t bytes = five ? Q5K_BYTES : Q4K_BYTES;
	uint8_t *p = dst;
	for (size_t b = 0; b < n / MU_QK_K; b++, p += bytes) {
		const float *x = src + b * MU_QK_K;
		float lo[8], hi[8], s[8], off[8], max_lo = 0.0f, max_s = 0.0f;
		for (size_t j = 0; j < 8; j++) {
			lo[j] = 0.0f;
			for (size_t i = 32 * j; i < 32 * j + 32; i++)
				if (x[i] < lo[j])
					lo[j] = x[i];
			hi[j] = lo[j];
			for (size_t i = 32 * j; i < 32 * j + 32; i++)
				if (x[i] > hi[j])
					hi[j] = x[i];
			if (-lo[j] > max_lo)
				max_lo = -lo[j];
		}
		uint16_t dmin16 = mu_f32_to_f16(max_lo / 63.0f);
		float dmin = mu_f16_to_f32(dmin16);
		uint8_t sc[8], m[8];
		for (size_t j = 0; j < 8; j++) {
			m[j] = (uint8_t)(dmin > 0.0f ? ceil_clamp(-lo[j] / dmin, 63) : 0);
			off[j] = dmin * (float)m[j];
			s[j] = (hi[j] + off[j]) / (float)levels;
			if (s[j] > max_s)
				max_s = s[j];
		}
		uint16_t d16 = mu_f32_to_f16(max_s / 63.0f);
		float d = mu_f16_to_f32(d16);
		for (size_t j = 0; j < 8; j++)
			sc[j] = (uint8_t)(d > 0.0f ? ceil_clamp(s[j] / d, 63) : 0);

		le16_store(p, d16);
		le16_store(p + 2, dmin16);
		pack_scales(sc, m, p + 4);
		uint8_t *qh = five ? p + 16 : NULL, *qs = p + (five ? 48 : 16);
		if (qh)
			memset(qh, 0, 32);
		for (size_t c = 0; c < 4; c++) {
			for (size_t l = 0; l < 32; l++) {
				int32_t q[2];
				for (size_t h = 0; h < 2; h++) {
					size_t j = 2 * c + h, i = 64 * c + 32 * h + l;
					float step = d * (float)sc[j];
					q[h] = step > 0.0f ? round_clamp((x[i] + off[j]) / step, 0, levels, 0) : 0;
					if (qh)
						qh[l] = (uint8_t)(qh[l] | ((q[h] >> 4) << (2 * c + h)));
				}
				qs[32 * c + l] = (uint8_t)((q[0] & 15) | ((q[1] & 15) << 4));
			}
		}
	}
}

static void quantize_q4_k(const float *src, void *dst, size_t n) { quantize_q45(src, dst, n, 0); }
static void quantize_q5_k(const float *src, void *dst, size_t n) { quantize_q45(src, dst, n, 1); }

/* Q6_K, per super-block:
 *   v_j = the value of largest magnitude in sub-block j (the first on ties; NaN ignored; 0 if
 *   none), s_j = v_j / -32, so that v_j itself maps to q - 32 = -32
 *   d = f16(max_j |s_j| / 127);  scales[j] = sign(s_j) * ceil(|s_j| / d) (0 when d is 0), at
 *   most 127 in magnitude
 *   step_j = d * scales[j];  q_i - 32 = round-half-even(x_i / step_j) in [-32, 31]
 *   (0 when step_j is 0 or the quotient is NaN) */
static void quantize_q6_k(const float *src, void *dst, size_t n)
{
	assert(n % MU_QK_K == 0);
	uint8_t *p = dst;
	for (size_t b = 0; b < n / MU_QK_K; b++, p += Q6K_BYTES) {
		const float *x = src + b * MU_QK_K;
		float s[16], as[16], max_s = 0.0f;
		for (size_t j = 0; j < 16; j++) {
			float amax = 0.0f, v = 0.0f;
			for (size_t i = 16 * j; i < 16 * j + 16; i++) {
				float a = mu_bits_f32(mu_f32_bits(x[i]) & 0x7fffffffu);
				if (a > amax) {
					amax = a;
					v = x[i];
				}
			}
			s[j] = v / -32.0f;
			as[j] = mu_bits_f32(mu_f32_bits(s[j]) & 0x7fffffffu);
			if (as[j] > max_s)
				max_s = as[j];
		}
		uint16_t d16 = mu_f32_to_f16(max_s / 127.0f);
		float d = mu_f16_to_f32(d16);
		int8_t sc[16];
		for (size_t j = 0; j < 16; j++) {
			int32_t k = d > 0.0f ? ceil_clamp(as[j] / d, 127) : 0;
			sc[j] = (int8_t)(s[j] < 0.0f ? -k : k);
		}
		memset(p, 0, 192);
		for (size_t i = 0; i < MU_QK_K; i++) {
			float step = d * (float)sc[i / 16]; /* NOLINT(bugprone-integer-division): an index */
			int32_t q = step != 0.0f ? round_clamp(x[i] / step, -32, 31, 0) + 32 : 32;
			size_t h = i / 128, part = (i % 128) / 32, l = i % 32;
			uint8_t *ql = p + 64 * h + l + (part & 1) * 32, *qh = p + 128 + 32 * h + l;
			*ql = (uint8_t)(*ql | ((q & 15) << ((part & 2) ? 4 : 0)));
			*qh = (uint8_t)(*qh | ((q >> 4) << (2 * part)));
		}
		for (size_t j = 0; j < 16; j++)
			p[192 + j] = (uint8_t)sc[j];
		le16_store(p + 208, d16);
	}
}

/* ---- the table ---------------------------------------------------------------------------- */

static const struct mu_type_kernels kernels_q4_k = {
	MU_ACT_Q8_K, matvec_q4_k, matmul_q4_k, dequant_q4_k, quantize_q4_k, NULL,
};
static const struct mu_type_kernels kernels_q5_k = {
	MU_ACT_Q8_K, matvec_q5_k, matmul_q5_k, dequant_q5_k, quantize_q5_k, NULL,
};
static const struct mu_type_kernels kernels_q6_k = {
	MU_ACT_Q8_K, matvec_q6_k, matmul_q6_k, dequant_q6_k, quantize_q6_k, NULL,
};

const struct mu_type_kernels *mu_kq_ref(enum mu_dtype t)
{
	switch (t) {
	case MU_DTYPE_Q4_K: return &kernels_q4_k;
	case MU_DTYPE_Q5_K: return &kernels_q5_k;
	case MU_DTYPE_Q6_K: return &kernels_q6_k;
	default: return NULL;
	}
}
