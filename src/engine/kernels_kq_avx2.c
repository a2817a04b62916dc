/* kernels_kq_avx2.c — AVX2 twins of kernels_kq_ref.c (Q4_K, Q5_K, Q6_K times Q8_K).
 *
 * Same bits as the reference (docs/determinism.md, "K-quants"): the integer sums are exact in
 * any order, and the float work per super-block is the reference's, lane for lane.
 *
 * Integer part: 32 consecutive quants sit in one ymm as unsigned bytes next to the activation's
 * 32 signed quants (a plain load). vpmaddubsw gives int16 pair sums (at most 2 * 63 * 128 in
 * magnitude), vpmaddwd multiplies them by the sub-block's scale as int16 and adds pairs into
 * int32, vpaddd accumulates. For Q4_K/Q5_K 32 quants are one sub-block, so the scale vector
 * is sc_j in every word; for Q6_K they are two sub-blocks of 16, one per 128-bit lane, the quants
 * are used unshifted (0..63), and 32 * sum_j scales[j] * bsums[j] is subtracted afterwards.
 * Q4_K/Q5_K's mins term is vpmaddwd of [m_0, m_0, m_1, m_1, ...] with the 16 bsums.
 *
 * The 8 int32 lanes of each block's sums are reduced for 8 blocks at once by a vphaddd tree,
 * which yields the 8 block sums in order; the float terms of those 8 blocks are then computed
 * 8 lanes at a time exactly as the reference does one by one, and added to lanes b mod 16
 * (two ymm accumulators: lanes 0..7 and 8..15), then the pairwise fold.
 *
 * One kernel serves matvec and matmul: a row against up to four activations, each weight block
 * unpacked once and used for all of them; matmul walks the rows in small batches so the
 * weights stay in cache while every activation passes over them.
 */
#include "engine/kernels_impl.h"

#include <assert.h>
#include <immintrin.h>
#include <string.h>

#define KQ_INLINE static inline __attribute__((always_inline)) MU_TARGET_AVX2

#define Q8K_BYTES 292
#define Q8K_BSUMS (4 + MU_QK_K)

/* ---- shared pieces -------------------------------------------------------------------------- */

KQ_INLINE uint32_t load_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

KQ_INLINE __m256i loadu256(const uint8_t *p)
{
	return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/* The 32-bit words at p, p + stride, ... for the first nblk of 8 (the rest 0). */
KQ_INLINE __m256i gather8_u32(const uint8_t *p, size_t stride, size_t nblk)
{
	if (nblk == 8)
		return _mm256_setr_epi32((int)load_u32(p), (int)load_u32(p + stride), (int)load_u32(p + 2 * stride),
					 (int)load_u32(p + 3 * stride), (int)load_u32(p + 4 * stride),
					 (int)load_u32(p + 5 * stride), (int)load_u32(p + 6 * stride),
					 (int)load_u32(p + 7 * stride));
	uint32_t v[8] = {0};
	for (size_t b = 0; b < nblk; b++)
		v[b] = load_u32(p + b * stride);
	return _mm256_loadu_si256((const __m256i *)(const void *)v);
}

/* Lane b = the sum of the 8 lanes of v[b]. */
KQ_INLINE __m256i reduce8(const __m256i v[8])
{
	__m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
	__m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
	__m256i q0 = _mm256_hadd_epi32(h01, h23), q1 = _mm256_hadd_epi32(h45, h67);
	/* q0 = [v0..v3 low halves | v0..v3 high halves], q1 the same for v4..v7 */
	return _mm256_add_epi32(_mm256_permute2x128_si256(q0, q1, 0x20), _mm256_permute2x128_si256(q0, q1, 0x31));
}

/* The canonical fold of 16 lanes held as lanes 0..7 and 8..15: s = 8, 4, 2, 1. */
KQ_INLINE float fold16(__m256 lo, __m256 hi)
{
	__m256 v = _mm256_add_ps(lo, hi);
	__m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	__m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
	return _mm_cvtss_f32(_mm_add_ss(v2, _mm_movehdup_ps(v2)));
}

/* acc[lanes of group g] += term for the first nblk lanes; the others keep their value. */
KQ_INLINE void add_terms(__m256 acc[2], size_t g, __m256 term, size_t nblk)
{
	__m256 sum = _mm256_add_ps(acc[g & 1], term);
	if (nblk == 8) {
		acc[g & 1] = sum;
	} else {
		__m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nblk), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
		acc[g & 1] = _mm256_blendv_ps(acc[g & 1], sum, _mm256_castsi256_ps(live));
	}
}

/* The 8 activation scales of blocks b0 .. b0+nblk-1. */
KQ_INLINE __m256 act_scales(const uint8_t *x, size_t b0, size_t nblk)
{
	return _mm256_castsi256_ps(gather8_u32(x + b0 * Q8K_BYTES, Q8K_BYTES, nblk));
}

/* Word (2j, 2j+1) bytes repeated: vpshufb indexes that put int16 element j in every word. */
KQ_INLINE __m256i word_idx(int j)
{
	return _mm256_set1_epi16((short)((2 * j) | ((2 * j + 1) << 8)));
}

/* ---- Q4_K and Q5_K ---------------------------------------------------------------------------- */

/* res[t] = dot(row, activation t) for t < nt (nt <= 4), nb super-blocks. */
KQ_INLINE void kq45_row(const uint8_t *row, int five, const uint8_t *const xs[4], size_t nt,
			size_t nb, float res[4])
{
	const size_t bb = five ? 176 : 144;
	const __m256i low4 = _mm256_set1_epi8(0x0f), bit4 = _mm256_set1_epi8(0x10);
	__m256 acc[4][2];
	for (size_t t = 0; t < 4; t++)
		acc[t][0] = acc[t][1] = _mm256_setzero_ps();
	for (size_t b0 = 0, g = 0; b0 < nb; b0 += 8, g++) {
		size_t nblk = nb - b0 < 8 ? nb - b0 : 8;
		__m256i vi[4][8], vm[4][8];
		for (size_t b = 0; b < 8; b++) {
			if (b >= nblk) {
				for (size_t t = 0; t < nt; t++)
					vi[t][b] = vm[t][b] = _mm256_setzero_si256();
				continue;
			}
			const uint8_t *blk = row + (b0 + b) * bb;
			/* the 6-bit scales and mins, four at a time in 32-bit words */
			uint32_t w0 = load_u32(blk + 4), w1 = load_u32(blk + 8), w2 = load_u32(blk + 12);
			uint64_t sc = (w0 & 0x3f3f3f3fu) | (uint64_t)((w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u)) << 32;
			uint64_t m = (w1 & 0x3f3f3f3fu) | (uint64_t)(((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u)) << 32;
			__m128i scm = _mm_set_epi64x((long long)m, (long long)sc);
			__m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
			__m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scm, scm));
			const uint8_t *qs = blk + (five ? 48 : 16);
			__m256i qh = five ? loadu256(blk + 16) : _mm256_setzero_si256();
			__m256i acc_i[4];
			for (size_t t = 0; t < 4; t++)
				acc_i[t] = _mm256_setzero_si256();
#pragma GCC unroll 4 /* constant shift counts and scale indexes */
			for (int c = 0; c < 4; c++) {
				__m256i raw = loadu256(qs + 32 * c);
				__m256i lo = _mm256_and_si256(raw, low4);
				__m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
				if (five) {
					/* bit 2c of qh[l] to bit 4 of element 64c + l, bit 2c+1 to 64c+32+l */
					__m256i b_lo = c < 2 ? _mm256_slli_epi16(qh, 4 - 2 * c) : _mm256_srli_epi16(qh, 2 * c - 4);
					__m256i b_hi = c < 2 ? _mm256_slli_epi16(qh, 3 - 2 * c) : _mm256_srli_epi16(qh, 2 * c - 3);
					lo = _mm256_or_si256(lo, _mm256_and_si256(b_lo, bit4));
					hi = _mm256_or_si256(hi, _mm256_and_si256(b_hi, bit4));
				}
				__m256i s_lo = _mm256_shuffle_epi8(sc16, word_idx(2 * c));
				__m256i s_hi = _mm256_shuffle_epi8(sc16, word_idx(2 * c + 1));
#pragma GCC unroll 4
				for (size_t t = 0; t < nt; t++) {
					const uint8_t *xq = xs[t] + (b0 + b) * Q8K_BYTES + 4 + 64 * c;
					__m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, loadu256(xq)), s_lo);
					__m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, loadu256(xq + 32)), s_hi);
					acc_i[t] = _mm256_add_epi32(acc_i[t], _mm256_add_epi32(p_lo, p_hi));
				}
			}
#pragma GCC unroll 4
			for (size_t t = 0; t < nt; t++) {
				vi[t][b] = acc_i[t];
				vm[t][b] = _mm256_madd_epi16(mins, loadu256(xs[t] + (b0 + b) * Q8K_BYTES + Q8K_BSUMS));
			}
		}
		/* d and dmin of the 8 blocks, widened exactly */
		__m256i dm = gather8_u32(row + b0 * bb, bb, nblk);
		__m256i packed = _mm256_packus_epi32(_mm256_and_si256(dm, _mm256_set1_epi32(0xffff)),
						     _mm256_srli_epi32(dm, 16));
		packed = _mm256_permute4x64_epi64(packed, 0xd8); /* [d_0..d_7 | dmin_0..dmin_7] */
		__m256 d = _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
		__m256 dmin = _mm256_cvtph_ps(_mm256_extracti128_si256(packed, 1));
#pragma GCC unroll 4
		for (size_t t = 0; t < nt; t++) {
			__m256 dx = act_scales(xs[t], b0, nblk);
			__m256 pi = _mm256_mul_ps(_mm256_cvtepi32_ps(reduce8(vi[t])), _mm256_mul_ps(d, dx));
			__m256 pm = _mm256_mul_ps(_mm256_cvtepi32_ps(reduce8(vm[t])), _mm256_mul_ps(dmin, dx));
			add_terms(acc[t], g, _mm256_sub_ps(pi, pm), nblk);
		}
	}
#pragma GCC unroll 4
	for (size_t t = 0; t < nt; t++)
		res[t] = fold16(acc[t][0], acc[t][1]);
}

/* ---- Q6_K ------------------------------------------------------------------------------------- */

KQ_INLINE void kq6_row(const uint8_t *row, const uint8_t *const xs[4], size_t nt, size_t nb, float res[4])
{
	const __m256i low4 = _mm256_set1_epi8(0x0f), bits45 = _mm256_set1_epi8(0x30);
	const __m128i split = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
	__m256 acc[4][2];
	for (size_t t = 0; t < 4; t++)
		acc[t][0] = acc[t][1] = _mm256_setzero_ps();
	for (size_t b0 = 0, g = 0; b0 < nb; b0 += 8, g++) {
		size_t nblk = nb - b0 < 8 ? nb - b0 : 8;
		__m256i vi[4][8];
		for (size_t b = 0; b < 8; b++) {
			if (b >= nblk) {
#pragma GCC unroll 4
				for (size_t t = 0; t < nt; t++)
					vi[t][b] = _mm256_setzero_si256();
				continue;
			}
			const uint8_t *blk = row + (b0 + b) * 210;
			__m128i s8 = _mm_loadu_si128((const __m128i *)(const void *)(blk + 192));
			__m256i s16 = _mm256_cvtepi8_epi16(s8);
			/* [scales 0, 2, ..., 14 | 1, 3, ..., 15]: chunk k takes word k of each lane */
			__m256i eo = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, split));
			__m256i acc_i[4];
			for (size_t t = 0; t < 4; t++)
				acc_i[t] = _mm256_setzero_si256();
#pragma GCC unroll 2
			for (int h = 0; h < 2; h++) {
				__m256i a = loadu256(blk + 64 * h), c = loadu256(blk + 64 * h + 32);
				__m256i qh = loadu256(blk + 128 + 32 * h);
#pragma GCC unroll 4
				for (int part = 0; part < 4; part++) {
					/* elements 128h + 32 part + l: nibble of a (parts 0, 2) or c (1, 3),
					 * low (0, 1) or high (2, 3); qh bits 2 part, 2 part + 1 to bits 4-5 */
					__m256i src = (part & 1) ? c : a;
					__m256i nib = (part & 2) ? _mm256_srli_epi16(src, 4) : src;
					__m256i hb = part == 0 ? _mm256_slli_epi16(qh, 4)
						   : part == 1 ? _mm256_slli_epi16(qh, 2)
						   : part == 2 ? qh : _mm256_srli_epi16(qh, 2);
					__m256i q = _mm256_or_si256(_mm256_and_si256(nib, low4), _mm256_and_si256(hb, bits45));
					int k = 4 * h + part;
					__m256i s = _mm256_shuffle_epi8(eo, word_idx(k));
#pragma GCC unroll 4
					for (size_t t = 0; t < nt; t++) {
						const uint8_t *xq = xs[t] + (b0 + b) * Q8K_BYTES + 4 + 32 * k;
						__m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, loadu256(xq)), s);
						acc_i[t] = _mm256_add_epi32(acc_i[t], p);
					}
				}
			}
#pragma GCC unroll 4
			for (size_t t = 0; t < nt; t++) {
				/* minus 32 * sum_j scales[j] * bsums[j] */
				__m256i corr = _mm256_madd_epi16(s16, loadu256(xs[t] + (b0 + b) * Q8K_BYTES + Q8K_BSUMS));
				vi[t][b] = _mm256_sub_epi32(acc_i[t], _mm256_slli_epi32(corr, 5));
			}
		}
		/* d of the 8 blocks: the high halves of the words at offset 206 (inside the block) */
		__m256i dw = _mm256_srli_epi32(gather8_u32(row + b0 * 210 + 206, 210, nblk), 16);
		dw = _mm256_permute4x64_epi64(_mm256_packus_epi32(dw, dw), 0x08); /* d_0..d_7 in the low lane */
		__m256 d = _mm256_cvtph_ps(_mm256_castsi256_si128(dw));
#pragma GCC unroll 4
		for (size_t t = 0; t < nt; t++) {
			__m256 dx = act_scales(xs[t], b0, nblk);
			__m256 term = _mm256_mul_ps(_mm256_cvtepi32_ps(reduce8(vi[t])), _mm256_mul_ps(d, dx));
			add_terms(acc[t], g, term, nblk);
		}
	}
#pragma GCC unroll 4
	for (size_t t = 0; t < nt; t++)
		res[t] = fold16(acc[t][0], acc[t][1]);
}

/* ---- Q8_K activations: the reference's operations, 8 lanes at a time -------------------------
 * amax: vmaxps(a, amax) returns amax when a is NaN, as the reference's "if (a > amax)" does;
 * the lanes then hold no NaN, so their maximum is the same in any order. Rounding adds
 * 1.5 * 2^23 and subtracts the bit patterns, clamping in int32 as the reference does (NaN and
 * infinite products included); the packs that follow never saturate. */
MU_TARGET_AVX2 void mu_quantize_q8_k_avx2(const float *x, void *out, size_t n)
{
	assert(n % MU_QK_K == 0);
	uint8_t *dst = out;
	const __m256 magic = _mm256_set1_ps(0x1.8p+23f);
	const __m256i magic_bits = _mm256_castps_si256(magic);
	const __m256i absmask = _mm256_set1_epi32(0x7fffffff);
	const __m256i qmax = _mm256_set1_epi32(127), qmin = _mm256_set1_epi32(-127);
	for (size_t b = 0; b < n / MU_QK_K; b++, x += MU_QK_K, dst += Q8K_BYTES) {
		__m256 amax = _mm256_setzero_ps();
		for (size_t i = 0; i < MU_QK_K; i += 8) {
			__m256 a = _mm256_castsi256_ps(_mm256_and_si256(_mm256_castps_si256(_mm256_loadu_ps(x + i)), absmask));
			amax = _mm256_max_ps(a, amax);
		}
		__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
		m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
		m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
		float d = _mm_cvtss_f32(m4) / 127.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		memcpy(dst, &d, 4);
		const __m256 vid = _mm256_set1_ps(id);
		for (size_t g = 0; g < MU_QK_K / 16; g++) {
			__m256i q[2];
			for (int h = 0; h < 2; h++) {
				__m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16 * g + 8 * h), vid), magic);
				q[h] = _mm256_sub_epi32(_mm256_castps_si256(v), magic_bits);
				q[h] = _mm256_max_epi32(_mm256_min_epi32(q[h], qmax), qmin);
			}
			__m128i w0 = _mm_packs_epi32(_mm256_castsi256_si128(q[0]), _mm256_extracti128_si256(q[0], 1));
			__m128i w1 = _mm_packs_epi32(_mm256_castsi256_si128(q[1]), _mm256_extracti128_si256(q[1], 1));
			_mm_storeu_si128((__m128i *)(void *)(dst + 4 + 16 * g), _mm_packs_epi16(w0, w1));
			__m128i s = _mm_add_epi16(w0, w1); /* |sums| stay far inside int16 */
			s = _mm_add_epi16(s, _mm_unpackhi_epi64(s, s));
			s = _mm_add_epi16(s, _mm_srli_epi64(s, 32));
			s = _mm_add_epi16(s, _mm_srli_epi32(s, 16));
			int16_t sum = (int16_t)_mm_extract_epi16(s, 0);
			memcpy(dst + Q8K_BSUMS + 2 * g, &sum, 2);
		}
	}
}

/* ---- matvec, matmul and the table ----------------------------------------------------------- */

#define KQ_TGT MU_TARGET_AVX2
#define KQ_GETTER mu_kq_avx2
#include "engine/kernels_kq_drive.h"
