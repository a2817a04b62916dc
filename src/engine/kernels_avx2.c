/* kernels_avx2.c — the avx2 path: AVX2 + F16C twins of kernels_ref.c.
 *
 * Every function gives the reference's bits (docs/determinism.md, "Kernel paths"):
 *  - Float rows (F32, F16, BF16): the 16 lanes of the canonical sum are two ymm registers,
 *    lanes 0-7 and 8-15. Per group of 16 elements acc = acc + w * x (vmulps, then vaddps;
 *    never vfmadd); a short last group reads a zero-padded copy and blends the new sums into
 *    its lanes only. The fold adds the second register onto the first (lane l + lane l+8),
 *    then 128, 64 and 32 bits within it (fold2x8).
 *  - Quantized rows (Q8_0, Q4_0 times a Q8_0 activation): 16 blocks at a time, block g*16 + l
 *    in lane l. The exact int32 isum of each block comes from vpmaddubsw (unsigned bytes times
 *    signed bytes, pairs summed to int16) and vpmaddwd by 1 (pairs to int32). vpmaddubsw
 *    saturates at int16, so the operands are chosen to stay in range: Q8_0 uses |w| times x
 *    with w's sign moved onto x (vpabsb, vpsignb), at most 2 * 128 * 127 per pair, which needs
 *    the activation quants within [-127, 127] as act_prepare makes them; Q4_0 uses its
 *    nibbles 0..15 as the unsigned side and subtracts 8 * sum(x) per block afterwards. The
 *    quants sit in a "duo" layout: register i holds the first 16 quants of blocks i and 8+i
 *    in its two 128-bit lanes and a second register the last 16, so each block leaves four
 *    int32 partials; two rounds of vphaddd (six instructions) and one lane exchange (tree8)
 *    give two vectors of eight isums, blocks 0-7 and 8-15. Then term = (float)isum * (dw * dx), the scales'
 *    product first, added into the row's two accumulators. A row with fewer than 16 blocks
 *    left runs the same code on a zero-padded copy and keeps the lanes that do not exist.
 *  - Tiles: a matvec handles 4 rows per pass (the activation's preparation shared), reading
 *    each row's quants straight into the products; a matmul handles tiles of 4 rows x 4
 *    activations, each (row, activation) pair with its own accumulators, so every output is
 *    computed exactly as the matvec computes it.
 */
#include "engine/kernels_impl.h"

#include <assert.h>
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/endian.h"
#include "base/fp16.h"

#define TGT MU_TARGET_AVX2
#define INLINE static inline __attribute__((always_inline))

#define Q8_0_BYTES 34
#define Q4_0_BYTES 18
#define GROUP 16 /* blocks per group: one per lane */
#define TILE_MAX 4
#define MV_R 4 /* rows per matvec pass */
#define MM_R 4 /* matmul tile: rows */
#define MM_T 4 /* matmul tile: activations */

static_assert(MU_LANES == 16, "two ymm hold the 16 lanes");
static_assert(sizeof(struct mu_block_q8_0) == Q8_0_BYTES && sizeof(struct mu_block_q4_0) == Q4_0_BYTES,
	      "block sizes");

/* The canonical fold of lanes lo (0-7) and hi (8-15): l + l+8, then l + l+4, l+2, l+1. */
TGT INLINE float fold2x8(__m256 lo, __m256 hi)
{
	__m256 s8 = _mm256_add_ps(lo, hi);
	__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
	__m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
	__m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
	return _mm_cvtss_f32(s1);
}

/* All-ones in the lanes below m (of 16): lo covers lanes 0-7, hi lanes 8-15. */
TGT INLINE void lane_masks(size_t m, __m256 *lo, __m256 *hi)
{
	const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	__m256i vm = _mm256_set1_epi32((int)m);
	*lo = _mm256_castsi256_ps(_mm256_cmpgt_epi32(vm, idx));
	*hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(vm, _mm256_add_epi32(idx, _mm256_set1_epi32(8))));
}

/* ---- float rows --------------------------------------------------------------------------- */

enum fkind { FK_F32, FK_F16, FK_BF16 };

/* 8 weights from p, widened exactly. */
TGT INLINE __m256 widen8(enum fkind k, const uint8_t *p)
{
	if (k == FK_F32)
		/* cppcheck-suppress invalidPointerCast ; p points at f32 weights (unaligned load) */
		return _mm256_loadu_ps((const float *)p);
	__m128i h = _mm_loadu_si128((const __m128i *)p);
	if (k == FK_F16)
		return _mm256_cvtph_ps(h);
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* One group of 16: acc += w * x for rows wp[0..R) and activations xp[0..T). */
TGT INLINE void fgroup(enum fkind k, int R, int T, const uint8_t *const *wp, const float *const *xp,
		       __m256 acc[TILE_MAX][TILE_MAX][2])
{
	const size_t es = k == FK_F32 ? 4 : 2;
	__m256 xv[TILE_MAX][2];
#pragma GCC unroll 4
	for (int t = 0; t < T; t++) {
		xv[t][0] = _mm256_loadu_ps(xp[t]);
		xv[t][1] = _mm256_loadu_ps(xp[t] + 8);
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++) {
		__m256 w0 = widen8(k, wp[r]), w1 = widen8(k, wp[r] + 8 * es);
#pragma GCC unroll 4
		for (int t = 0; t < T; t++) {
			acc[r][t][0] = _mm256_add_ps(acc[r][t][0], _mm256_mul_ps(w0, xv[t][0]));
			acc[r][t][1] = _mm256_add_ps(acc[r][t][1], _mm256_mul_ps(w1, xv[t][1]));
		}
	}
}

/* Rows 0..R-1 of w times activations 0..T-1 of x (stride xs bytes): out[t * ldo + r]. */
TGT INLINE void ftile(enum fkind k, int R, int T, const uint8_t *w, size_t rb, const uint8_t *x,
		      size_t xs, size_t n, float *out, size_t ldo, size_t pf)
{
	const size_t es = k == FK_F32 ? 4 : 2;
	__m256 acc[TILE_MAX][TILE_MAX][2];
	const uint8_t *wp[TILE_MAX];
	const float *xp[TILE_MAX];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int t = 0; t < T; t++)
			acc[r][t][0] = acc[r][t][1] = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + MU_LANES <= n; i += MU_LANES) {
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			wp[r] = w + (size_t)r * rb + es * i;
			if (pf)
				_mm_prefetch((const char *)(wp[r] + pf), _MM_HINT_T0);
		}
#pragma GCC unroll 4
		for (int t = 0; t < T; t++)
			/* cppcheck-suppress invalidPointerCast ; x holds f32 activations, xs bytes apart */
			xp[t] = (const float *)(x + (size_t)t * xs) + i;
		fgroup(k, R, T, wp, xp, acc);
	}
	if (i < n) {
		/* the short last group: zero-padded copies; the new sums go to lanes < m only */
		size_t m = n - i;
		uint8_t wbuf[TILE_MAX][MU_LANES * 4];
		float xbuf[TILE_MAX][MU_LANES];
		__m256 keep[TILE_MAX][TILE_MAX][2], mlo, mhi;
		lane_masks(m, &mlo, &mhi);
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			memset(wbuf[r], 0, sizeof wbuf[r]);
			memcpy(wbuf[r], w + (size_t)r * rb + es * i, es * m);
			wp[r] = wbuf[r];
		}
#pragma GCC unroll 4
		for (int t = 0; t < T; t++) {
			memset(xbuf[t], 0, sizeof xbuf[t]);
			/* cppcheck-suppress invalidPointerCast ; x holds f32 activations, xs bytes apart */
			memcpy(xbuf[t], (const float *)(x + (size_t)t * xs) + i, 4 * m);
			xp[t] = xbuf[t];
		}
#pragma GCC unroll 4
		for (int r = 0; r < R; r++)
#pragma GCC unroll 4
			for (int t = 0; t < T; t++) {
				keep[r][t][0] = acc[r][t][0];
				keep[r][t][1] = acc[r][t][1];
			}
		fgroup(k, R, T, wp, xp, acc);
#pragma GCC unroll 4
		for (int r = 0; r < R; r++)
#pragma GCC unroll 4
			for (int t = 0; t < T; t++) {
				acc[r][t][0] = _mm256_blendv_ps(keep[r][t][0], acc[r][t][0], mlo);
				acc[r][t][1] = _mm256_blendv_ps(keep[r][t][1], acc[r][t][1], mhi);
			}
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int t = 0; t < T; t++)
			out[(size_t)t * ldo + (size_t)r] = fold2x8(acc[r][t][0], acc[r][t][1]);
}

/* ---- quantized rows ----------------------------------------------------------------------- */

/* 16 blocks' quants in the duo layout: lo[i] holds quants 0..15 of blocks i and 8+i (one per
 * 128-bit lane), hi[i] quants 16..31 of the same blocks. */
struct duos {
	__m256i lo[8], hi[8];
};

/* Q8_0 quants (signed) of the 16 blocks at p (stride 34, quants at +2). */
TGT INLINE void duos_q8(const uint8_t *p, struct duos *q)
{
#pragma GCC unroll 8
	for (int i = 0; i < 8; i++) {
		__m256i a = _mm256_loadu_si256((const __m256i *)(p + (size_t)i * Q8_0_BYTES + 2));
		__m256i b = _mm256_loadu_si256((const __m256i *)(p + (size_t)(8 + i) * Q8_0_BYTES + 2));
		q->lo[i] = _mm256_permute2x128_si256(a, b, 0x20);
		q->hi[i] = _mm256_permute2x128_si256(a, b, 0x31);
	}
}

/* Q4_0 nibbles (0..15) of the 16 blocks at p (stride 18, 16 bytes at +2): quant j is the low
 * nibble of byte j, quant 16 + j its high nibble. */
TGT INLINE void duos_q4(const uint8_t *p, struct duos *q)
{
	const __m256i low4 = _mm256_set1_epi8(0x0f);
#pragma GCC unroll 8
	for (int i = 0; i < 8; i++) {
		__m256i raw = _mm256_inserti128_si256(
			_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + (size_t)i * Q4_0_BYTES + 2))),
			_mm_loadu_si128((const __m128i *)(p + (size_t)(8 + i) * Q4_0_BYTES + 2)), 1);
		q->lo[i] = _mm256_and_si256(raw, low4);
		q->hi[i] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
	}
}

/* p[i] lane k (128 bits) holds four partial sums of block 8k + i; gives the 16 full sums,
 * blocks 0-7 in *lo and 8-15 in *hi. */
TGT INLINE void tree8(const __m256i p[8], __m256i *lo, __m256i *hi)
{
	__m256i h01 = _mm256_hadd_epi32(p[0], p[1]), h23 = _mm256_hadd_epi32(p[2], p[3]);
	__m256i h45 = _mm256_hadd_epi32(p[4], p[5]), h67 = _mm256_hadd_epi32(p[6], p[7]);
	__m256i q0 = _mm256_hadd_epi32(h01, h23), q1 = _mm256_hadd_epi32(h45, h67);
	*lo = _mm256_permute2x128_si256(q0, q1, 0x20);
	*hi = _mm256_permute2x128_si256(q0, q1, 0x31);
}

/* The f16 scales of 16 blocks at p (stride bsz) as 16 halves in block order, without a gather:
 * the 16 bytes at bsz * b - 2 * (b mod 8) hold block b's scale as half number b mod 8 (and stay
 * within the 16 blocks), so seven word blends per half assemble them. */
TGT INLINE __m128i scales8(const uint8_t *p, size_t bsz)
{
#define LD(b) _mm_loadu_si128((const __m128i *)(p + bsz * (b) - 2 * (b)))
	__m128i s = _mm_loadu_si128((const __m128i *)p);
	s = _mm_blend_epi16(s, LD(1), 0x02);
	s = _mm_blend_epi16(s, LD(2), 0x04);
	s = _mm_blend_epi16(s, LD(3), 0x08);
	s = _mm_blend_epi16(s, LD(4), 0x10);
	s = _mm_blend_epi16(s, LD(5), 0x20);
	s = _mm_blend_epi16(s, LD(6), 0x40);
	return _mm_blend_epi16(s, LD(7), 0x80);
#undef LD
}

/* The 16 scales widened to f32: blocks 0-7 in *lo, 8-15 in *hi. */
TGT INLINE void scales16(const uint8_t *p, size_t bsz, __m256 *lo, __m256 *hi)
{
	*lo = _mm256_cvtph_ps(scales8(p, bsz));
	*hi = _mm256_cvtph_ps(scales8(p + 8 * bsz, bsz));
}

/* One activation's group, prepared once for all the rows of a tile. */
struct qact {
	struct duos q;    /* the signed quants */
	__m256i corr[2];  /* Q4_0: 8 * sum(x) per block */
	__m256 d[2];      /* the activation scales */
};

/* One weight row's group. */
struct qrow {
	struct duos q;    /* Q8_0: the signed quants (their signs); Q4_0: the nibbles */
	struct duos mag;  /* Q8_0: |quant| */
	__m256 d[2];
};

TGT INLINE void qact_prep(int q4, const uint8_t *p, struct qact *a)
{
	duos_q8(p, &a->q);
	scales16(p, Q8_0_BYTES, &a->d[0], &a->d[1]);
	if (!q4)
		return;
	const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
	__m256i s[8];
#pragma GCC unroll 8
	for (int i = 0; i < 8; i++)
		s[i] = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(ones8, a->q.lo[i]),
							  _mm256_maddubs_epi16(ones8, a->q.hi[i])),
					 ones16);
	tree8(s, &a->corr[0], &a->corr[1]);
	a->corr[0] = _mm256_slli_epi32(a->corr[0], 3);
	a->corr[1] = _mm256_slli_epi32(a->corr[1], 3);
}

TGT INLINE void qrow_prep(int q4, const uint8_t *p, struct qrow *w)
{
	if (q4) {
		duos_q4(p, &w->q);
		scales16(p, Q4_0_BYTES, &w->d[0], &w->d[1]);
		return;
	}
	duos_q8(p, &w->q);
#pragma GCC unroll 8
	for (int i = 0; i < 8; i++) {
		w->mag.lo[i] = _mm256_abs_epi8(w->q.lo[i]);
		w->mag.hi[i] = _mm256_abs_epi8(w->q.hi[i]);
	}
	scales16(p, Q8_0_BYTES, &w->d[0], &w->d[1]);
}

/* term_b = (float)isum_b * (dw_b * dx_b) for the 16 blocks: blocks 0-7 in t[0], 8-15 in t[1]. */
TGT INLINE void qterms(int q4, const struct qrow *w, const struct qact *a, __m256 t[2])
{
	const __m256i ones16 = _mm256_set1_epi16(1);
	__m256i p[8], lo, hi;
	if (q4) {
#pragma GCC unroll 8
		for (int i = 0; i < 8; i++)
			p[i] = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(w->q.lo[i], a->q.lo[i]),
								  _mm256_maddubs_epi16(w->q.hi[i], a->q.hi[i])),
						 ones16);
	} else {
#pragma GCC unroll 8
		for (int i = 0; i < 8; i++) {
			__m256i l = _mm256_maddubs_epi16(w->mag.lo[i], _mm256_sign_epi8(a->q.lo[i], w->q.lo[i]));
			__m256i h = _mm256_maddubs_epi16(w->mag.hi[i], _mm256_sign_epi8(a->q.hi[i], w->q.hi[i]));
			p[i] = _mm256_add_epi32(_mm256_madd_epi16(l, ones16), _mm256_madd_epi16(h, ones16));
		}
	}
	tree8(p, &lo, &hi);
	if (q4) {
		lo = _mm256_sub_epi32(lo, a->corr[0]);
		hi = _mm256_sub_epi32(hi, a->corr[1]);
	}
	t[0] = _mm256_mul_ps(_mm256_cvtepi32_ps(lo), _mm256_mul_ps(w->d[0], a->d[0]));
	t[1] = _mm256_mul_ps(_mm256_cvtepi32_ps(hi), _mm256_mul_ps(w->d[1], a->d[1]));
}

/* The same terms for one row read straight from memory (a matvec: no other activation would
 * reuse a prepared copy of the row, and sixteen registers cannot hold one). */
TGT INLINE void qterms_row(int q4, const uint8_t *wp, const struct qact *a, __m256 t[2])
{
	const __m256i ones16 = _mm256_set1_epi16(1);
	__m256i p[8], lo, hi;
	if (q4) {
		const __m256i low4 = _mm256_set1_epi8(0x0f);
#pragma GCC unroll 8
		for (int i = 0; i < 8; i++) {
			__m256i raw = _mm256_inserti128_si256(
				_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(wp + (size_t)i * Q4_0_BYTES + 2))),
				_mm_loadu_si128((const __m128i *)(wp + (size_t)(8 + i) * Q4_0_BYTES + 2)), 1);
			__m256i l = _mm256_maddubs_epi16(_mm256_and_si256(raw, low4), a->q.lo[i]);
			__m256i h = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(raw, 4), low4), a->q.hi[i]);
			p[i] = _mm256_madd_epi16(_mm256_add_epi16(l, h), ones16);
		}
	} else {
#pragma GCC unroll 8
		for (int i = 0; i < 8; i++) {
			__m256i b0 = _mm256_loadu_si256((const __m256i *)(wp + (size_t)i * Q8_0_BYTES + 2));
			__m256i b1 = _mm256_loadu_si256((const __m256i *)(wp + (size_t)(8 + i) * Q8_0_BYTES + 2));
			__m256i wl = _mm256_permute2x128_si256(b0, b1, 0x20), wh = _mm256_permute2x128_si256(b0, b1, 0x31);
			__m256i l = _mm256_maddubs_epi16(_mm256_abs_epi8(wl), _mm256_sign_epi8(a->q.lo[i], wl));
			__m256i h = _mm256_maddubs_epi16(_mm256_abs_epi8(wh), _mm256_sign_epi8(a->q.hi[i], wh));
			p[i] = _mm256_add_epi32(_mm256_madd_epi16(l, ones16), _mm256_madd_epi16(h, ones16));
		}
	}
	tree8(p, &lo, &hi);
	if (q4) {
		lo = _mm256_sub_epi32(lo, a->corr[0]);
		hi = _mm256_sub_epi32(hi, a->corr[1]);
	}
	__m256 dlo, dhi;
	scales16(wp, q4 ? Q4_0_BYTES : Q8_0_BYTES, &dlo, &dhi);
	t[0] = _mm256_mul_ps(_mm256_cvtepi32_ps(lo), _mm256_mul_ps(dlo, a->d[0]));
	t[1] = _mm256_mul_ps(_mm256_cvtepi32_ps(hi), _mm256_mul_ps(dhi, a->d[1]));
}

/* One group of rows wp[0..R) times the prepared activations a[0..T); with a tail, only lanes
 * < m change. */
TGT INLINE void qgroup(int q4, int R, int T, const uint8_t *const *wp, const struct qact *a,
		       __m256 acc[TILE_MAX][TILE_MAX][2], int tail, size_t m)
{
	__m256 mlo = _mm256_setzero_ps(), mhi = _mm256_setzero_ps();
	if (tail)
		lane_masks(m, &mlo, &mhi);
#pragma GCC unroll 4
	for (int r = 0; r < R; r++) {
		struct qrow w;
		if (T > 1)
			qrow_prep(q4, wp[r], &w);
#pragma GCC unroll 4
		for (int t = 0; t < T; t++) {
			__m256 term[2];
			if (T > 1)
				qterms(q4, &w, &a[t], term);
			else
				qterms_row(q4, wp[r], &a[t], term);
			__m256 s0 = _mm256_add_ps(acc[r][t][0], term[0]);
			__m256 s1 = _mm256_add_ps(acc[r][t][1], term[1]);
			acc[r][t][0] = tail ? _mm256_blendv_ps(acc[r][t][0], s0, mlo) : s0;
			acc[r][t][1] = tail ? _mm256_blendv_ps(acc[r][t][1], s1, mhi) : s1;
		}
	}
}

/* Rows 0..R-1 of w times activations 0..T-1 of x (stride xs), nb blocks each; pf as above.
 * pre, when not NULL, holds the full groups already prepared: group g of activation t at
 * pre[g * ps + t]. */
TGT INLINE void qtile(int q4, int R, int T, const uint8_t *w, size_t rb, const uint8_t *x, size_t xs,
		      size_t nb, float *out, size_t ldo, size_t pf, const struct qact *pre,
		      size_t ps)
{
	const size_t bsz = q4 ? Q4_0_BYTES : Q8_0_BYTES;
	__m256 acc[TILE_MAX][TILE_MAX][2];
	const uint8_t *wp[TILE_MAX], *xp[TILE_MAX];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int t = 0; t < T; t++)
			acc[r][t][0] = acc[r][t][1] = _mm256_setzero_ps();
	size_t g = 0;
	for (; g + GROUP <= nb; g += GROUP) {
#pragma GCC unroll 4
		for (int r = 0; r < R; r++)
			wp[r] = w + (size_t)r * rb + g * bsz;
#pragma GCC unroll 4
		for (int t = 0; t < T; t++)
			xp[t] = x + (size_t)t * xs + g * Q8_0_BYTES;
		if (pf)
			mu_prefetch_rows(R, wp, pf, GROUP * bsz);
		struct qact a[TILE_MAX];
		if (pre) {
			qgroup(q4, R, T, wp, pre + g / GROUP * ps, acc, 0, GROUP);
			continue;
		}
#pragma GCC unroll 4
		for (int t = 0; t < T; t++)
			qact_prep(q4, xp[t], &a[t]);
		qgroup(q4, R, T, wp, a, acc, 0, GROUP);
	}
	if (g < nb) {
		/* the last blocks, zero-padded to a group */
		size_t m = nb - g;
		uint8_t wbuf[TILE_MAX][GROUP * Q8_0_BYTES], xbuf[TILE_MAX][GROUP * Q8_0_BYTES];
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			memcpy(wbuf[r], w + (size_t)r * rb + g * bsz, m * bsz);
			memset(wbuf[r] + m * bsz, 0, (GROUP - m) * bsz);
			wp[r] = wbuf[r];
		}
#pragma GCC unroll 4
		for (int t = 0; t < T; t++) {
			memcpy(xbuf[t], x + (size_t)t * xs + g * Q8_0_BYTES, m * Q8_0_BYTES);
			memset(xbuf[t] + m * Q8_0_BYTES, 0, (GROUP - m) * Q8_0_BYTES);
			xp[t] = xbuf[t];
		}
		struct qact a[TILE_MAX];
#pragma GCC unroll 4
		for (int t = 0; t < T; t++)
			qact_prep(q4, xp[t], &a[t]);
		qgroup(q4, R, T, wp, a, acc, 1, m);
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int t = 0; t < T; t++)
			out[(size_t)t * ldo + (size_t)r] = fold2x8(acc[r][t][0], acc[r][t][1]);
}

/* ---- Q8_0 activations ----------------------------------------------------------------------
 * The reference's rule lane by lane: amax by vmaxps with the running maximum as the second
 * operand, which vmaxps returns when the other is NaN (NaN is ignored, as the reference's
 * `a > amax` ignores it); d and id as scalars, the reference's expressions; the rounding by the
 * same 1.5 * 2^23 addition and integer subtraction, then the same clamp, so NaN and infinite
 * input give the reference's bytes (vcvtps2dq would give INT_MIN). The clamped values pack to
 * bytes exactly (vpackssdw, vpacksswb, then a dword permutation that undoes their lane order). */
TGT static void quantize_q8_0(const float *x, uint8_t *dst, size_t n)
{
	assert(n % MU_QK8_0 == 0);
	const __m256 magic = _mm256_set1_ps(0x1.8p+23f);
	const __m256i magic_bits = _mm256_set1_epi32(0x4b400000);
	const __m256i hi = _mm256_set1_epi32(127), lo = _mm256_set1_epi32(-127);
	const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	for (size_t b = 0; b < n / MU_QK8_0; b++, x += MU_QK8_0, dst += Q8_0_BYTES) {
		__m256 v[4];
		__m256 m = _mm256_setzero_ps();
		for (int j = 0; j < 4; j++) {
			v[j] = _mm256_loadu_ps(x + 8 * j);
			m = _mm256_max_ps(_mm256_and_ps(v[j], absmask), m);
		}
		/* no NaN left in m: any order */
		__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
		m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
		m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
		float amax = _mm_cvtss_f32(m4);
		float d = amax / 127.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		le16_store(dst, mu_f32_to_f16(d));
		__m256 vid = _mm256_set1_ps(id);
		__m256i q[4];
		for (int j = 0; j < 4; j++) {
			q[j] = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(_mm256_mul_ps(v[j], vid), magic)),
						magic_bits);
			q[j] = _mm256_max_epi32(_mm256_min_epi32(q[j], hi), lo);
		}
		__m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
		_mm256_storeu_si256((__m256i *)(dst + 2), _mm256_permutevar8x32_epi32(p, order));
	}
}

/* ---- dot and axpy ------------------------------------------------------------------------- */

TGT static float dot_f32_avx2(const float *a, const float *b, size_t n)
{
	__m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + MU_LANES <= n; i += MU_LANES) {
		lo = _mm256_add_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
		hi = _mm256_add_ps(hi, _mm256_mul_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8)));
	}
	if (i < n) {
		__m256 mlo, mhi;
		lane_masks(n - i, &mlo, &mhi);
		__m256i ilo = _mm256_castps_si256(mlo), ihi = _mm256_castps_si256(mhi);
		__m256 plo = _mm256_mul_ps(_mm256_maskload_ps(a + i, ilo), _mm256_maskload_ps(b + i, ilo));
		__m256 phi = _mm256_mul_ps(_mm256_maskload_ps(a + i + 8, ihi), _mm256_maskload_ps(b + i + 8, ihi));
		lo = _mm256_blendv_ps(lo, _mm256_add_ps(lo, plo), mlo);
		hi = _mm256_blendv_ps(hi, _mm256_add_ps(hi, phi), mhi);
	}
	return fold2x8(lo, hi);
}

/* y[i] = y[i] + a * v[i]: each element on its own, so lanes need no order. */
TGT static void axpy_avx2(float *y, float a, const void *v, enum mu_dtype vt, size_t n)
{
	const __m256 va = _mm256_set1_ps(a);
	const uint8_t *p = v;
	size_t i = 0;
	if (vt == MU_DTYPE_F16) {
		for (; i + 8 <= n; i += 8)
			_mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(va, widen8(FK_F16, p + 2 * i))));
		for (; i < n; i++)
			y[i] = y[i] + a * mu_f16_to_f32(le16_load(p + 2 * i));
	} else {
		const float *f = v;
		for (; i + 8 <= n; i += 8)
			_mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(va, _mm256_loadu_ps(f + i))));
		for (; i < n; i++)
			y[i] = y[i] + a * f[i];
	}
}

/* This path reads every type in the GGUF layout. */
static const struct mu_type_kernels *packed_none(enum mu_dtype t)
{
	(void)t;
	return NULL;
}

/* ---- drivers and tables ------------------------------------------------------------------- */

#define PATH_NAME "avx2"
#define PATH_TABLE mu_path_avx2
#define PATH_KQ mu_kq_avx2
#define PATH_Q8_K mu_quantize_q8_k_avx2
#define PATH_DOT dot_f32_avx2
#define PATH_AXPY axpy_avx2
#define PATH_PACKED packed_none
#include "engine/kernels_drive.h"
