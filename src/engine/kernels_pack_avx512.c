/* kernels_pack_avx512.c — Q8_0 and Q4_0 rows in a packed layout for the avx512 path.
 *
 * In the GGUF layout a block's 32 quants are contiguous, so the per-block sums of a group of 16
 * blocks (one block per lane, docs/determinism.md) need shuffles to bring each block into one
 * 128-bit lane and a reduction tree afterwards (kernels_avx512.c). Packed, the 16 blocks of a
 * group are transposed instead: chunk k holds bytes 4k..4k+3 of block l in 32-bit lane l, so
 * vpdpbusd over the chunks leaves block l's whole sum in lane l, with no shuffle and no tree.
 * The model packs its Q8_0 and Q4_0 matrices once at load, in place (mu_model_pack); the size
 * of every row is unchanged.
 *
 * Packed group of 16 blocks, same bytes as the GGUF group it replaces:
 *   Q8_0 (544 bytes): the 16 f16 scales (block order), then 8 chunks of 64 bytes; chunk k,
 *        lane l = quants 4k..4k+3 of block l, each XOR 0x80 (so w + 128, unsigned)
 *   Q4_0 (288 bytes): the 16 f16 scales, then 4 chunks of 64 bytes; chunk k, lane l = bytes
 *        4k..4k+3 of block l's 16 bytes of nibbles (low nibble: quant j, high: quant 16 + j)
 * Only rows of whole groups are packed (n a multiple of MU_PACK_ELEMS, 512): the model leaves
 * other matrices in the GGUF layout, with the path's ordinary kernels.
 *
 * The arithmetic is kernels_avx512.c's, lane for lane: isum_l = the vpdpbusd sum minus the
 * activation's 128 * sum(x) (Q8_0) or 8 * sum(x) (Q4_0), term = (float)isum * (dw * dx), one
 * vaddps per group into the row's accumulator, the canonical fold. So every result has the
 * reference's bits.
 */
#include "engine/kernels_impl.h"

#include <assert.h>
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/endian.h"
#include "base/fp16.h"

#define TGT MU_TARGET_AVX512
#define INLINE static inline __attribute__((always_inline))

#define Q8_0_BYTES 34
#define Q4_0_BYTES 18
#define GROUP 16
#define MV_R 4      /* rows per matvec pass */
#define MM_T 8      /* matmul tile: one row times 8 activations */
#define PRE_MAX 128 /* prepared activation groups on the stack (80 KiB) */

static_assert(MU_LANES == 16, "one zmm holds the 16 lanes");

/* ---- layout ------------------------------------------------------------------------------- */

/* lane l: l * bsz, the offset of block l of a group */
TGT INLINE __m512i block_offsets(size_t bsz)
{
	return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
				  _mm512_set1_epi32((int)bsz));
}

/* Rewrites one row in place (GGUF -> packed); nb is a multiple of GROUP. Each group is copied
 * out before it is rewritten, 4 bytes at a time (gathers are slower here). */
static void pack_row(int q4, uint8_t *row, size_t nb)
{
	const size_t bsz = q4 ? Q4_0_BYTES : Q8_0_BYTES, chunks = (bsz - 2) / 4;
	const uint32_t bias = q4 ? 0 : 0x80808080u;
	uint8_t g[GROUP * Q8_0_BYTES];
	for (size_t b0 = 0; b0 < nb; b0 += GROUP) {
		uint8_t *p = row + b0 * bsz;
		memcpy(g, p, GROUP * bsz);
		for (size_t l = 0; l < GROUP; l++)
			memcpy(p + 2 * l, g + l * bsz, 2);
		for (size_t k = 0; k < chunks; k++)
			for (size_t l = 0; l < GROUP; l++) {
				uint32_t v;
				memcpy(&v, g + l * bsz + 2 + 4 * k, 4);
				v ^= bias;
				memcpy(p + 2 * GROUP + 64 * k + 4 * l, &v, 4);
			}
	}
}

/* One packed row back to f32 (the embedding lookup of a packed table): x = q * d per block, as
 * the reference dequantizes. */
static void unpack_row(int q4, const uint8_t *row, float *dst, size_t n)
{
	const size_t bsz = q4 ? Q4_0_BYTES : Q8_0_BYTES, nb = n / MU_QK8_0;
	assert(n % MU_PACK_ELEMS == 0);
	for (size_t b = 0; b < nb; b += GROUP) {
		const uint8_t *p = row + b * bsz;
		for (size_t l = 0; l < GROUP; l++) {
			float d = mu_f16_to_f32(le16_load(p + 2 * l));
			float *o = dst + (b + l) * MU_QK8_0;
			for (size_t j = 0; j < 32; j++) {
				int q;
				if (q4) {
					size_t byte = j % 16;
					uint8_t v = p[2 * GROUP + 64 * (byte / 4) + 4 * l + byte % 4];
					q = (j < 16 ? v & 0x0f : v >> 4) - 8;
				} else {
					q = (int)p[2 * GROUP + 64 * (j / 4) + 4 * l + j % 4] - 128; /* stored as q + 128 */
				}
				o[j] = (float)q * d;
			}
		}
	}
}

/* ---- activations -------------------------------------------------------------------------- */

/* One activation group, transposed like the weights: q[k] lane l = quants 4k..4k+3 of block l
 * (signed), corr = 128 * sum(x) (Q8_0 rows) or 8 * sum(x) (Q4_0 rows), d = the scales. */
struct pact {
	__m512i q[8];
	__m512i corr;
	__m512 d;
};

TGT INLINE void pact_prep(int q4, const uint8_t *x, struct pact *a)
{
	const __m512i idx = block_offsets(Q8_0_BYTES);
	__m512i sum = _mm512_setzero_si512();
	const __m512i ones = _mm512_set1_epi8(1);
#pragma GCC unroll 8
	for (int k = 0; k < 8; k++) {
		a->q[k] = _mm512_i32gather_epi32(idx, x + 2 + 4 * k, 1);
		sum = _mm512_dpbusd_epi32(sum, ones, a->q[k]);
	}
	a->corr = _mm512_slli_epi32(sum, q4 ? 3 : 7);
	__m512i s = _mm512_i32gather_epi32(idx, x, 1);
	a->d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(s)); /* the low 16 bits: the f16 scale */
}

/* ---- one row's group ---------------------------------------------------------------------- */

/* The raw vpdpbusd sums of the packed group at p against activation a, lane l = block l. */
TGT INLINE __m512i group_dot(int q4, const uint8_t *p, const struct pact *a)
{
	const uint8_t *c = p + 2 * GROUP;
	__m512i s = _mm512_setzero_si512();
	if (q4) {
		const __m512i low4 = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 4
		for (int k = 0; k < 4; k++) {
			__m512i v = _mm512_loadu_si512(c + 64 * k);
			s = _mm512_dpbusd_epi32(s, _mm512_and_si512(v, low4), a->q[k]);
			s = _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4), a->q[k + 4]);
		}
	} else {
#pragma GCC unroll 8
		for (int k = 0; k < 8; k++)
			s = _mm512_dpbusd_epi32(s, _mm512_loadu_si512(c + 64 * k), a->q[k]);
	}
	return s;
}

/* term_l = (float)isum_l * (dw_l * dx_l) */
TGT INLINE __m512 group_terms(const uint8_t *p, __m512i raw, const struct pact *a)
{
	__m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
	return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(raw, a->corr)), _mm512_mul_ps(dw, a->d));
}


/* ---- matvec ------------------------------------------------------------------------------- */

/* Rows [r0, r1) against one activation whose full groups are prepared in pre[0..ng) (or, when
 * pre is NULL, prepared per pass). */
TGT INLINE void qmatvec(int q4, const uint8_t *w, size_t rb, const uint8_t *x, size_t nb, float *out, size_t r0,
			size_t r1, const struct pact *pre)
{
	const size_t bsz = q4 ? Q4_0_BYTES : Q8_0_BYTES, ng = nb / GROUP;
	size_t r = r0;
	for (; r < r1; r += MV_R) {
		const int R = r1 - r >= MV_R ? MV_R : (int)(r1 - r);
		__m512 acc[MV_R];
		for (int i = 0; i < MV_R; i++)
			acc[i] = _mm512_setzero_ps();
		for (size_t g = 0; g < ng; g++) {
			struct pact own;
			/* cppcheck-suppress uninitvar ; only own's address is taken; pact_prep fills it below */
			const struct pact *a = pre ? &pre[g] : &own;
			if (!pre)
				pact_prep(q4, x + g * GROUP * Q8_0_BYTES, &own);
			if (R == MV_R) {
#pragma GCC unroll 4
				for (int i = 0; i < MV_R; i++) {
					const uint8_t *p = w + (r + (size_t)i) * rb + g * GROUP * bsz;
					if (r + 2 * MV_R <= r1)
						for (size_t off = 0; off < GROUP * bsz; off += 64)
							_mm_prefetch((const char *)(p + MV_R * rb + off), _MM_HINT_T0);
					acc[i] = _mm512_add_ps(acc[i], group_terms(p, group_dot(q4, p, a), a));
				}
			} else {
				for (int i = 0; i < R; i++) {
					const uint8_t *p = w + (r + (size_t)i) * rb + g * GROUP * bsz;
					acc[i] = _mm512_add_ps(acc[i], group_terms(p, group_dot(q4, p, a), a));
				}
			}
		}
		for (int i = 0; i < R; i++)
			out[r + (size_t)i] = mu_fold16_zmm(acc[i]);
	}
}

TGT INLINE void drive_matvec(int q4, const uint8_t *w, size_t rb, const void *x, size_t n, float *out, size_t r0,
			     size_t r1)
{
	assert(n % MU_PACK_ELEMS == 0);
	const size_t nb = n / MU_QK8_0, ng = nb / GROUP;
	if (r1 <= r0)
		return;
	if (ng > PRE_MAX) {
		qmatvec(q4, w, rb, x, nb, out, r0, r1, NULL);
		return;
	}
	struct pact pre[PRE_MAX];
	for (size_t g = 0; g < ng; g++)
		pact_prep(q4, (const uint8_t *)x + g * GROUP * Q8_0_BYTES, &pre[g]);
	qmatvec(q4, w, rb, x, nb, out, r0, r1, pre);
}

/* ---- matmul ------------------------------------------------------------------------------- */

/* One row against T activations (T <= MM_T, constant after inlining); pre[g * ps + t] holds
 * group g of activation t, or pre is NULL and each group is prepared here. */
TGT INLINE void row_tile(int q4, int T, const uint8_t *row, const uint8_t *x, size_t xs, size_t nb,
			 const struct pact *pre, size_t ps, float *out, size_t ldo)
{
	const size_t bsz = q4 ? Q4_0_BYTES : Q8_0_BYTES, ng = nb / GROUP;
	__m512 acc[MM_T];
#pragma GCC unroll 8
	for (int t = 0; t < T; t++)
		acc[t] = _mm512_setzero_ps();
	for (size_t g = 0; g < ng; g++) {
		const uint8_t *p = row + g * GROUP * bsz;
		const uint8_t *c = p + 2 * GROUP;
		__m512i wq[8];
		if (q4) {
			const __m512i low4 = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 4
			for (int k = 0; k < 4; k++) {
				__m512i v = _mm512_loadu_si512(c + 64 * k);
				wq[k] = _mm512_and_si512(v, low4);
				wq[k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
			}
		} else {
#pragma GCC unroll 8
			for (int k = 0; k < 8; k++)
				wq[k] = _mm512_loadu_si512(c + 64 * k);
		}
		__m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
#pragma GCC unroll 8
		for (int t = 0; t < T; t++) {
			struct pact own;
			/* cppcheck-suppress uninitvar ; only own's address is taken; pact_prep fills it below */
			const struct pact *a = pre ? &pre[g * ps + (size_t)t] : &own;
			if (!pre)
				pact_prep(q4, x + (size_t)t * xs + g * GROUP * Q8_0_BYTES, &own);
			__m512i s = _mm512_setzero_si512();
#pragma GCC unroll 8
			for (int k = 0; k < 8; k++)
				s = _mm512_dpbusd_epi32(s, wq[k], a->q[k]);
			__m512 term = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s, a->corr)), _mm512_mul_ps(dw, a->d));
			acc[t] = _mm512_add_ps(acc[t], term);
		}
	}
#pragma GCC unroll 8
	for (int t = 0; t < T; t++)
		out[(size_t)t * ldo] = mu_fold16_zmm(acc[t]);
}

/* Rows [r0, r1) against activations [t0, t0 + T) for a constant T. */
TGT INLINE void rows_tile(int q4, int T, const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, size_t nb,
			  const struct pact *pre, size_t ps, float *out, size_t ldo, size_t r0, size_t r1)
{
	for (size_t r = r0; r < r1; r++)
		row_tile(q4, T, w + r * rb, x, xs, nb, pre, ps, out + r, ldo);
}

/* Blocks of rows (about 256 KiB of weights) that stay in cache while the activations pass over
 * them, MM_T at a time, prepared once per block (or per tile when they do not fit). */
TGT INLINE void drive_matmul(int q4, const uint8_t *w, size_t rb, const void *xv, size_t xs, size_t n, float *out,
			     size_t ldo, size_t nt, size_t r0, size_t r1)
{
	assert(n % MU_PACK_ELEMS == 0);
	const uint8_t *x = xv;
	const size_t nb = n / MU_QK8_0, ng = nb / GROUP;
	if (r1 <= r0)
		return;
	size_t chunk = PRE_MAX / ng; /* activations prepared at once */
	if (chunk > MM_T)
		chunk = MM_T;
	size_t block = 256 * 1024 / rb;
	if (block < 1)
		block = 1;
	struct pact pre[PRE_MAX];
	for (size_t r = r0; r < r1; r += block) {
		size_t re = r1 - r < block ? r1 : r + block;
		for (size_t t = 0; t < nt;) {
			size_t tn = nt - t, ps = 0;
			const struct pact *pp = NULL;
			if (chunk > 0) {
				tn = tn < chunk ? tn : chunk;
				for (size_t g = 0; g < ng; g++)
					for (size_t k = 0; k < tn; k++)
						pact_prep(q4, x + (t + k) * xs + g * GROUP * Q8_0_BYTES, &pre[g * tn + k]);
				pp = pre;
				ps = tn;
			} else {
				tn = tn < MM_T ? tn : MM_T;
			}
			const uint8_t *xt = x + t * xs;
			float *ot = out + t * ldo;
			switch (tn) {
			case 1: rows_tile(q4, 1, w, rb, xt, xs, nb, pp, ps, ot, ldo, r, re); break;
			case 2: rows_tile(q4, 2, w, rb, xt, xs, nb, pp, ps, ot, ldo, r, re); break;
			case 3: rows_tile(q4, 3, w, rb, xt, xs, nb, pp, ps, ot, ldo, r, re); break;
			case 4: rows_tile(q4, 4, w, rb, xt, xs, nb, pp, ps, ot, ldo, r, re); break;
			case 5: rows_tile(q4, 5, w, rb, xt, xs, nb, pp, ps, ot, ldo, r, re); break;
			case 6: rows_tile(q4, 6, w, rb, xt, xs, nb, pp, ps, ot, ldo, r, re); break;
			case 7: rows_tile(q4, 7, w, rb, xt, xs, nb, pp, ps, ot, ldo, r, re); break;
			default: rows_tile(q4, MM_T, w, rb, xt, xs, nb, pp, ps, ot, ldo, r, re); break;
			}
			t += tn;
		}
	}
}

/* ---- the tables --------------------------------------------------------------------------- */

#define PACKED(suffix, q4)                                                                         \
	TGT static void matvec_##suffix(const uint8_t *w, size_t rb, const void *x, size_t n, float *out, \
					size_t r0, size_t r1)                                         \
	{                                                                                          \
		drive_matvec(q4, w, rb, x, n, out, r0, r1);                                        \
	}                                                                                          \
	TGT static void matmul_##suffix(const uint8_t *w, size_t rb, const void *x, size_t xs, size_t n,  \
					float *out, size_t ldo, size_t nt, size_t r0, size_t r1)      \
	{                                                                                          \
		drive_matmul(q4, w, rb, x, xs, n, out, ldo, nt, r0, r1);                           \
	}                                                                                          \
	static void dequant_##suffix(const void *src, float *dst, size_t n)                       \
	{                                                                                          \
		unpack_row(q4, src, dst, n);                                                       \
	}                                                                                          \
	static void pack_##suffix(uint8_t *w, size_t rb, size_t n, size_t rows)                    \
	{                                                                                          \
		assert(n % MU_PACK_ELEMS == 0);                                                    \
		for (size_t r = 0; r < rows; r++)                                                  \
			pack_row(q4, w + r * rb, n / MU_QK8_0);                                    \
	}
PACKED(q8_0, 0)
PACKED(q4_0, 1)
#undef PACKED

static const struct mu_type_kernels packed_q8_0 = {MU_ACT_Q8_0, matvec_q8_0, matmul_q8_0, dequant_q8_0, NULL,
						   pack_q8_0};
static const struct mu_type_kernels packed_q4_0 = {MU_ACT_Q8_0, matvec_q4_0, matmul_q4_0, dequant_q4_0, NULL,
						   pack_q4_0};

const struct mu_type_kernels *mu_packed_avx512(enum mu_dtype t)
{
	switch (t) {
	case MU_DTYPE_Q8_0: return &packed_q8_0;
	case MU_DTYPE_Q4_0: return &packed_q4_0;
	default: return NULL;
	}
}
