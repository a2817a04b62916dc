/* kernels_kq_avx512.c — AVX-512 twins of kernels_kq_ref.c (Q4_K, Q5_K, Q6_K times Q8_K).
 *
 * Same bits as the reference (docs/determinism.md, "K-quants"): the integer sums are exact in
 * any order, and the float work per super-block is the reference's, lane for lane.
 *
 * Integer part, per super-block of a weight row and an activation block. The quants of 64
 * consecutive elements sit in one zmm as unsigned bytes (0..15, 0..31 or 0..63), next to the
 * activation's 64 signed quants, which are a plain contiguous load:
 *   vpmaddubsw(q, qx)   int16 sums of adjacent pairs (at most 2 * 63 * 128 in magnitude)
 *   vpdpwssd(acc, p, s) acc += the pair sums times the sub-block's scale as int16, in int32
 * For Q4_K/Q5_K the 64 elements of chunk c are sub-blocks 2c (bytes 0..31) and 2c+1 (bytes
 * 32..63), so s holds sc_2c in its low 16 words and sc_2c+1 in the high 16. For Q6_K they are
 * four sub-blocks of 16, one per 128-bit lane, and the quants are used unshifted (0..63): the
 * sum of 32 * scales[j] * bsums[j] over the block is subtracted afterwards, which gives
 * sum_j scales[j] * sum_i (q_i - 32) qx_i exactly.
 *
 * The 16 int32 lanes of a block's accumulator are folded to 8 and paired with a second group
 * of 8 (Q4_K/Q5_K: the 8 products m_j * (bsums[2j] + bsums[2j+1]) from vpmaddwd; Q6_K: the next
 * block), and eight such vectors are summed by a permute tree into one vector holding 16 group
 * sums, in order. So a Q4_K/Q5_K group of 8 super-blocks gives [isum_0, msum_0, ..., isum_7,
 * msum_7], multiplied lane-wise by [d_0 dx_0, dmin_0 dx_0, ...] (vcvtph2ps widens exactly), and
 * the even lanes minus the odd lanes are the 8 terms; a Q6_K group of 16 gives 16 isums. Terms
 * go to lanes b mod 16 with a masked add, then the pairwise fold.
 *
 * matvec and matmul share one kernel that takes a row and up to four activations: each weight
 * block is unpacked once into registers and used for every activation; matmul walks the rows in
 * small batches so the weights stay in cache while every activation passes over them.
 */
#include "engine/kernels_impl.h"

#include <assert.h>
#include <immintrin.h>
#include <string.h>

#define KQ_INLINE static inline __attribute__((always_inline)) MU_TARGET_AVX512

#define Q8K_BYTES 292
#define Q8K_BSUMS (4 + MU_QK_K)

/* ---- shared pieces -------------------------------------------------------------------------- */

/* Constant vectors, as tables so that they are loaded rather than rebuilt in every block. */
#define X8(v) v, v, v, v, v, v, v, v
#define X16(v) X8(v), X8(v)
#define X32(v) X16(v), X16(v)
/* Q4_K/Q5_K: the word indexes of sc_2c (words 0..15) and sc_2c+1 (16..31) for vpermw */
static const _Alignas(64) int16_t k45_sidx[4][32] = {
	{X16(0), X16(1)}, {X16(2), X16(3)}, {X16(4), X16(5)}, {X16(6), X16(7)},
};
/* the shift that brings the high nibbles of the upper copy down */
static const _Alignas(64) int16_t k45_shift[32] = {X16(0), X16(4)};
/* Q5_K: the qh bit of chunk c, 2c for bytes 0..31 and 2c+1 for bytes 32..63 */
static const _Alignas(64) uint8_t k5_bit[4][64] = {
	{X32(1), X32(2)}, {X32(4), X32(8)}, {X32(16), X32(32)}, {X32(64), X32(128)},
};
/* Q6_K: scales[4k + i] into 128-bit lane i, and the shifts that bring qh bits to bits 4-5 */
static const _Alignas(64) int16_t k6_sidx[4][32] = {
	{X8(0), X8(1), X8(2), X8(3)}, {X8(4), X8(5), X8(6), X8(7)},
	{X8(8), X8(9), X8(10), X8(11)}, {X8(12), X8(13), X8(14), X8(15)},
};
static const _Alignas(64) int16_t k6_shl[32] = {X16(4), X16(2)};
static const _Alignas(64) int16_t k6_shr[32] = {X16(0), X16(2)};

KQ_INLINE __m512i load_const(const void *p)
{
	return _mm512_load_si512(p);
}

KQ_INLINE uint32_t load_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

KQ_INLINE uint16_t load_u16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

KQ_INLINE float load_f32(const uint8_t *p)
{
	float v;
	memcpy(&v, p, 4);
	return v;
}

/* r[i] = a[2i] + a[2i+1] for i < 8, b[2i-16] + b[2i-15] for i >= 8. */
KQ_INLINE __m512i pair_sum(__m512i a, __m512i b)
{
	const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
	const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
	return _mm512_add_epi32(_mm512_permutex2var_epi32(a, even, b), _mm512_permutex2var_epi32(a, odd, b));
}

/* Eight vectors of two groups of 8 lanes each -> lane 2k + g = the sum of group g of v[k]. */
KQ_INLINE __m512i reduce8(const __m512i v[8])
{
	__m512i w0 = pair_sum(v[0], v[1]), w1 = pair_sum(v[2], v[3]);
	__m512i w2 = pair_sum(v[4], v[5]), w3 = pair_sum(v[6], v[7]);
	return pair_sum(pair_sum(w0, w1), pair_sum(w2, w3));
}

KQ_INLINE __m512i join256(__m256i lo, __m256i hi)
{
	return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* The canonical fold of 16 lanes held as lanes 0..7 and 8..15: s = 8, 4, 2, 1. */
KQ_INLINE float fold16(__m256 lo, __m256 hi)
{
	__m256 v = _mm256_add_ps(lo, hi);
	__m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	__m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
	return _mm_cvtss_f32(_mm_add_ss(v2, _mm_movehdup_ps(v2)));
}

/* ---- Q4_K and Q5_K ---------------------------------------------------------------------------- */

struct kq45_w {
	__m512i q[4];  /* chunk c: bytes 0..31 = quants of elements 64c.., bytes 32..63 = 64c+32.. */
	__m512i sc[4]; /* chunk c: int16 words 0..15 = sc_2c, words 16..31 = sc_2c+1 */
	__m256i m;     /* int16: m_0, m_0, m_1, m_1, ..., m_7, m_7 */
};

/* The quants of chunk c (elements 64c..64c+63): the 32 bytes twice, the upper copy shifted
 * right by 4, low nibbles kept; Q5_K adds 16 where bit 2c (lower half) or 2c+1 (upper half)
 * of qh[l] is set. */
KQ_INLINE __m512i kq45_quants(const uint8_t *qs, __m512i qh, int five, int c)
{
	__m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * c)));
	v = _mm512_and_si512(_mm512_srlv_epi16(v, load_const(k45_shift)), _mm512_set1_epi8(0x0f));
	if (five)
		v = _mm512_mask_add_epi8(v, _mm512_test_epi8_mask(qh, load_const(k5_bit[c])), v, _mm512_set1_epi8(16));
	return v;
}

/* The scales of chunk c: sc_2c in words 0..15, sc_2c+1 in words 16..31. */
KQ_INLINE __m512i kq45_scales(__m512i sc16, int c)
{
	return _mm512_permutexvar_epi16(load_const(k45_sidx[c]), sc16);
}

KQ_INLINE void kq45_unpack(const uint8_t *blk, int five, struct kq45_w *u)
{
	/* the 6-bit scales and mins, four at a time in 32-bit words (one per byte) */
	uint32_t w0 = load_u32(blk + 4), w1 = load_u32(blk + 8), w2 = load_u32(blk + 12);
	uint64_t sc = (w0 & 0x3f3f3f3fu) | (uint64_t)((w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u)) << 32;
	uint64_t m = (w1 & 0x3f3f3f3fu) | (uint64_t)(((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u)) << 32;
	__m128i scm = _mm_set_epi64x((long long)m, (long long)sc);
	__m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(scm));
	u->sc[0] = kq45_scales(sc16, 0);
	u->sc[1] = kq45_scales(sc16, 1);
	u->sc[2] = kq45_scales(sc16, 2);
	u->sc[3] = kq45_scales(sc16, 3);
	u->m = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scm, scm));

	const uint8_t *qs = blk + (five ? 48 : 16);
	__m512i qh = five ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 16)))
			  : _mm512_setzero_si512();
	u->q[0] = kq45_quants(qs, qh, five, 0);
	u->q[1] = kq45_quants(qs, qh, five, 1);
	u->q[2] = kq45_quants(qs, qh, five, 2);
	u->q[3] = kq45_quants(qs, qh, five, 3);
}

/* [8 partial isums | 8 partial msums] of one super-block. */
KQ_INLINE __m512i kq45_dot(const struct kq45_w *u, const uint8_t *xb)
{
	__m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
	for (int c = 0; c < 4; c += 2) {
		__m512i x0 = _mm512_loadu_si512(xb + 4 + 64 * c);
		__m512i x1 = _mm512_loadu_si512(xb + 4 + 64 * (c + 1));
		acc0 = _mm512_dpwssd_epi32(acc0, _mm512_maddubs_epi16(u->q[c], x0), u->sc[c]);
		acc1 = _mm512_dpwssd_epi32(acc1, _mm512_maddubs_epi16(u->q[c + 1], x1), u->sc[c + 1]);
	}
	__m512i acc = _mm512_add_epi32(acc0, acc1);
	__m256i i8 = _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
	__m256i m8 = _mm256_madd_epi16(u->m, _mm256_loadu_si256((const __m256i *)(xb + Q8K_BSUMS)));
	return join256(i8, m8);
}

/* res[t] = dot(row, activation t) for t < nt (nt <= 4), nb super-blocks. */
KQ_INLINE void kq45_row(const uint8_t *row, int five, const uint8_t *const xs[4], size_t nt,
			size_t nb, float res[4])
{
	const size_t bb = five ? 176 : 144;
	const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0);
	const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 0, 0, 0, 0, 0, 0, 0, 0);
	__m256 acc[4][2];
	for (size_t t = 0; t < 4; t++)
		acc[t][0] = acc[t][1] = _mm256_setzero_ps();
	for (size_t b0 = 0, g = 0; b0 < nb; b0 += 8, g++) {
		size_t nblk = nb - b0 < 8 ? nb - b0 : 8;
		__m512i v[4][8];
		__m256i dm = _mm256_setzero_si256();
		for (size_t b = 0; b < 8; b++) {
			if (b < nblk) {
				const uint8_t *blk = row + (b0 + b) * bb;
				struct kq45_w u;
				kq45_unpack(blk, five, &u);
				dm = _mm256_mask_set1_epi32(dm, (__mmask8)(1u << b), (int)load_u32(blk));
				for (size_t t = 0; t < nt; t++)
					v[t][b] = kq45_dot(&u, xs[t] + (b0 + b) * Q8K_BYTES);
			} else {
				for (size_t t = 0; t < nt; t++)
					v[t][b] = _mm512_setzero_si512();
			}
		}
		/* [d_0, dmin_0, d_1, dmin_1, ...] widened exactly */
		__m512 dmf = _mm512_cvtph_ps(dm);
		__mmask8 live = (__mmask8)((1u << nblk) - 1);
		for (size_t t = 0; t < nt; t++) {
			__m512 dx = _mm512_setzero_ps();
			for (size_t b = 0; b < nblk; b++)
				dx = _mm512_mask_mov_ps(dx, (__mmask16)(3u << (2 * b)),
							_mm512_set1_ps(load_f32(xs[t] + (b0 + b) * Q8K_BYTES)));
			/* lanes 2b, 2b+1: (float)isum_b * (d_b dx_b), (float)msum_b * (dmin_b dx_b) */
			__m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(reduce8(v[t])), _mm512_mul_ps(dmf, dx));
			__m256 term = _mm256_sub_ps(_mm512_castps512_ps256(_mm512_permutexvar_ps(even, p)),
						    _mm512_castps512_ps256(_mm512_permutexvar_ps(odd, p)));
			acc[t][g & 1] = _mm256_mask_add_ps(acc[t][g & 1], live, acc[t][g & 1], term);
		}
	}
	for (size_t t = 0; t < nt; t++)
		res[t] = fold16(acc[t][0], acc[t][1]);
}

/* ---- Q6_K ------------------------------------------------------------------------------------- */

struct kq6_w {
	__m512i q[4];  /* elements 64k..64k+63, unsigned 0..63 */
	__m512i sc[4]; /* chunk k: 128-bit lane i = scales[4k + i] in every word */
	__m256i sc16;  /* the 16 scales as int16 */
};

KQ_INLINE void kq6_unpack(const uint8_t *blk, struct kq6_w *u)
{
	u->sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 192)));
	__m512i scz = _mm512_castsi256_si512(u->sc16);
	u->sc[0] = _mm512_permutexvar_epi16(load_const(k6_sidx[0]), scz);
	u->sc[1] = _mm512_permutexvar_epi16(load_const(k6_sidx[1]), scz);
	u->sc[2] = _mm512_permutexvar_epi16(load_const(k6_sidx[2]), scz);
	u->sc[3] = _mm512_permutexvar_epi16(load_const(k6_sidx[3]), scz);
	const __m512i low4 = _mm512_set1_epi8(0x0f), bits45 = _mm512_set1_epi8(0x30);
	const __m512i shl = load_const(k6_shl), shr = load_const(k6_shr);
	for (int h = 0; h < 2; h++) {
		__m512i l = _mm512_loadu_si512(blk + 64 * h);
		__m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h)));
		/* elements 128h + 0..63: low nibbles of ql'[0..63], qh' bits 0-1 then 2-3 */
		__m512i h0 = _mm512_and_si512(_mm512_sllv_epi16(hb, shl), bits45);
		u->q[2 * h] = _mm512_ternarylogic_epi32(l, h0, low4, 0xec); /* (l & low4) | h0 */
		/* elements 128h + 64..127: high nibbles, qh' bits 4-5 then 6-7 */
		__m512i h1 = _mm512_and_si512(_mm512_srlv_epi16(hb, shr), bits45);
		u->q[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), h1, low4, 0xec);
	}
}

/* 8 partial isums of one super-block. */
KQ_INLINE __m256i kq6_dot(const struct kq6_w *u, const uint8_t *xb)
{
	__m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
	for (int k = 0; k < 4; k += 2) {
		__m512i x0 = _mm512_loadu_si512(xb + 4 + 64 * k);
		__m512i x1 = _mm512_loadu_si512(xb + 4 + 64 * (k + 1));
		acc0 = _mm512_dpwssd_epi32(acc0, _mm512_maddubs_epi16(u->q[k], x0), u->sc[k]);
		acc1 = _mm512_dpwssd_epi32(acc1, _mm512_maddubs_epi16(u->q[k + 1], x1), u->sc[k + 1]);
	}
	__m512i acc = _mm512_add_epi32(acc0, acc1);
	__m256i i8 = _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
	/* minus 32 * sum_j scales[j] * bsums[j] */
	__m256i corr = _mm256_madd_epi16(u->sc16, _mm256_loadu_si256((const __m256i *)(xb + Q8K_BSUMS)));
	return _mm256_sub_epi32(i8, _mm256_slli_epi32(corr, 5));
}

KQ_INLINE void kq6_row(const uint8_t *row, const uint8_t *const xs[4], size_t nt, size_t nb, float res[4])
{
	__m512 acc[4];
	for (size_t t = 0; t < 4; t++)
		acc[t] = _mm512_setzero_ps();
	for (size_t b0 = 0; b0 < nb; b0 += 16) {
		size_t nblk = nb - b0 < 16 ? nb - b0 : 16;
		__m512i v[4][8];
		__m256i i8[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
				 _mm256_setzero_si256()};
		__m256i dh = _mm256_setzero_si256();
		for (size_t b = 0; b < 16; b++) {
			if (b < nblk) {
				const uint8_t *blk = row + (b0 + b) * 210;
				struct kq6_w u;
				kq6_unpack(blk, &u);
				dh = _mm256_mask_set1_epi16(dh, (__mmask16)(1u << b), (short)load_u16(blk + 208));
				for (size_t t = 0; t < nt; t++) {
					__m256i s = kq6_dot(&u, xs[t] + (b0 + b) * Q8K_BYTES);
					if (b & 1)
						v[t][b / 2] = join256(i8[t], s);
					else
						i8[t] = s;
				}
			} else {
				for (size_t t = 0; t < nt; t++) {
					if (b & 1)
						v[t][b / 2] = join256(i8[t], _mm256_setzero_si256());
					else
						i8[t] = _mm256_setzero_si256();
				}
			}
		}
		__m512 d = _mm512_cvtph_ps(dh);
		__mmask16 live = (__mmask16)((1u << nblk) - 1);
		for (size_t t = 0; t < nt; t++) {
			__m512 dx = _mm512_setzero_ps();
			for (size_t b = 0; b < nblk; b++)
				dx = _mm512_mask_mov_ps(dx, (__mmask16)(1u << b),
							_mm512_set1_ps(load_f32(xs[t] + (b0 + b) * Q8K_BYTES)));
			__m512 term = _mm512_mul_ps(_mm512_cvtepi32_ps(reduce8(v[t])), _mm512_mul_ps(d, dx));
			acc[t] = _mm512_mask_add_ps(acc[t], live, acc[t], term);
		}
	}
	for (size_t t = 0; t < nt; t++)
		res[t] = fold16(_mm512_castps512_ps256(acc[t]), _mm512_extractf32x8_ps(acc[t], 1));
}

/* ---- Q8_K activations: the reference's operations, 16 lanes at a time ------------------------
 * amax: vmaxps(a, amax) returns amax when a is NaN, as the reference's "if (a > amax)" does;
 * the lanes then hold no NaN, so their maximum is the same in any order. Rounding adds
 * 1.5 * 2^23 and subtracts the bit patterns, clamping in int32 as the reference does (NaN and
 * infinite products included). */
MU_TARGET_AVX512 void mu_quantize_q8_k_avx512(const float *x, void *out, size_t n)
{
	assert(n % MU_QK_K == 0);
	uint8_t *dst = out;
	const __m512 magic = _mm512_set1_ps(0x1.8p+23f);
	const __m512i magic_bits = _mm512_castps_si512(magic);
	const __m512i absmask = _mm512_set1_epi32(0x7fffffff);
	const __m512i qmax = _mm512_set1_epi32(127), qmin = _mm512_set1_epi32(-127);
	for (size_t b = 0; b < n / MU_QK_K; b++, x += MU_QK_K, dst += Q8K_BYTES) {
		__m512 amax = _mm512_setzero_ps();
		for (size_t i = 0; i < MU_QK_K; i += 16) {
			__m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + i)), absmask));
			amax = _mm512_max_ps(a, amax);
		}
		float d = _mm512_reduce_max_ps(amax) / 127.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		memcpy(dst, &d, 4);
		const __m512 vid = _mm512_set1_ps(id);
		for (size_t g = 0; g < MU_QK_K / 16; g++) {
			__m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), vid), magic);
			__m512i q = _mm512_sub_epi32(_mm512_castps_si512(v), magic_bits);
			q = _mm512_max_epi32(_mm512_min_epi32(q, qmax), qmin);
			_mm_storeu_si128((__m128i *)(dst + 4 + 16 * g), _mm512_cvtepi32_epi8(q));
			int16_t s = (int16_t)_mm512_reduce_add_epi32(q);
			memcpy(dst + Q8K_BSUMS + 2 * g, &s, 2);
		}
	}
}

/* ---- matvec, matmul and the table ----------------------------------------------------------- */

#define KQ_TGT MU_TARGET_AVX512
#define KQ_GETTER mu_kq_avx512
#include "engine/kernels_kq_drive.h"
