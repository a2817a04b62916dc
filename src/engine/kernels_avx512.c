/* kernels_avx512.c — the avx512 path: AVX-512 F/BW/VL/DQ + VNNI twins of kernels_ref.c.
 *
 * Every function gives the reference's bits (docs/determinism.md, "Kernel paths"):
 *  - Float rows (F32, F16, BF16): the 16 lanes of the canonical sum are one zmm. Per group of
 *    16 elements acc = acc + w * x with vmulps then vaddps (never vfmadd); a short last group
 *    is a masked add, so the other lanes keep their value; the fold adds the upper 256 bits
 *    onto the lower, then 128, 64 and 32 (mu_fold16_zmm, kernels_impl.h).
 *  - Quantized rows (Q8_0, Q4_0 times a Q8_0 activation): 16 blocks at a time (a "group"),
 *    block g*16 + l belonging to lane l. Each block's exact int32 isum comes from vpdpbusd
 *    (unsigned bytes times signed bytes): Q8_0 weights enter as w XOR 0x80 = w + 128 and Q4_0
 *    weights as their nibbles 0..15, so the raw sum is isum + 128 * sum(x) or isum + 8 *
 *    sum(x), and the activation's block sums (from the same instruction on bytes of 1) are
 *    subtracted. The quants sit in a "quad" layout: register i holds the first 16 quants of
 *    blocks i, 4+i, 8+i, 12+i in its four 128-bit lanes and a second register the last 16, so
 *    two vpdpbusd leave four int32 partials per block, and a transpose-and-add tree (tree4)
 *    turns the four registers into one vector whose lane l is the isum of block l. Then
 *    term = (float)isum * (dw * dx) (vcvtdq2ps; the scales' product first) and one masked
 *    vaddps into the row's accumulator. A row with fewer than 16 blocks left runs the same
 *    code on a zero-padded copy of those blocks and adds only the lanes that exist.
 *  - Tiles: a matvec handles 4 rows per pass (one activation's preparation shared by the
 *    rows); a matmul handles tiles of 6 rows x 4 activations, each (row, activation) pair
 *    with its own accumulator, so every output is computed exactly as the matvec computes it.
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
#define GROUP 16 /* blocks per group: one per lane */
#define TILE_MAX 6
#define MV_R 4 /* rows per matvec pass */
#define MM_R 6 /* matmul tile: rows */
#define MM_T 4 /* matmul tile: activations */

static_assert(MU_LANES == 16, "one zmm holds the 16 lanes");
static_assert(sizeof(struct mu_block_q8_0) == Q8_0_BYTES && sizeof(struct mu_block_q4_0) == Q4_0_BYTES,
	      "block sizes");


TGT INLINE __mmask16 first_lanes(size_t m) /* m < 16 */
{
	return (__mmask16)((1u << m) - 1u);
}

/* ---- float rows --------------------------------------------------------------------------- */

enum fkind { FK_F32, FK_F16, FK_BF16 };

/* 16 weights from p, widened exactly. */
TGT INLINE __m512 widen16(enum fkind k, const uint8_t *p)
{
	if (k == FK_F32)
		return _mm512_loadu_ps(p);
	__m256i h = _mm256_loadu_si256((const __m256i *)p);
	if (k == FK_F16)
		return _mm512_cvtph_ps(h);
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* The first lanes of m (the others +0), without reading past them. */
TGT INLINE __m512 widen_part(enum fkind k, const uint8_t *p, __mmask16 m)
{
	if (k == FK_F32)
		return _mm512_maskz_loadu_ps(m, p);
	__m256i h = _mm256_maskz_loadu_epi16(m, p);
	if (k == FK_F16)
		return _mm512_cvtph_ps(h);
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Rows 0..R-1 of w (stride rb) times activations 0..T-1 of x (stride xs bytes, f32):
 * out[t * ldo + r]. R, T are constants after inlining. */
TGT INLINE void ftile(enum fkind k, int R, int T, const uint8_t *w, size_t rb, const uint8_t *x,
		      size_t xs, size_t n, float *out, size_t ldo, size_t pf)
{
	const size_t es = k == FK_F32 ? 4 : 2;
	__m512 acc[TILE_MAX][TILE_MAX];
#pragma GCC unroll 8
	for (int r = 0; r < R; r++)
#pragma GCC unroll 8
		for (int t = 0; t < T; t++)
			acc[r][t] = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + MU_LANES <= n; i += MU_LANES) {
		__m512 xv[TILE_MAX];
#pragma GCC unroll 8
		for (int t = 0; t < T; t++)
			xv[t] = _mm512_loadu_ps(x + (size_t)t * xs + 4 * i);
#pragma GCC unroll 8
		for (int r = 0; r < R; r++) {
			if (pf)
				_mm_prefetch((const char *)(w + (size_t)r * rb + es * i + pf), _MM_HINT_T0);
			__m512 wv = widen16(k, w + (size_t)r * rb + es * i);
#pragma GCC unroll 8
			for (int t = 0; t < T; t++)
				acc[r][t] = _mm512_add_ps(acc[r][t], _mm512_mul_ps(wv, xv[t]));
		}
	}
	if (i < n) {
		__mmask16 m = first_lanes(n - i);
		__m512 xv[TILE_MAX];
#pragma GCC unroll 8
		for (int t = 0; t < T; t++)
			xv[t] = _mm512_maskz_loadu_ps(m, x + (size_t)t * xs + 4 * i);
#pragma GCC unroll 8
		for (int r = 0; r < R; r++) {
			__m512 wv = widen_part(k, w + (size_t)r * rb + es * i, m);
#pragma GCC unroll 8
			for (int t = 0; t < T; t++)
				acc[r][t] = _mm512_mask_add_ps(acc[r][t], m, acc[r][t], _mm512_mul_ps(wv, xv[t]));
		}
	}
#pragma GCC unroll 8
	for (int r = 0; r < R; r++)
#pragma GCC unroll 8
		for (int t = 0; t < T; t++)
			out[(size_t)t * ldo + (size_t)r] = mu_fold16_zmm(acc[r][t]);
}

/* ---- quantized rows ----------------------------------------------------------------------- */

/* 16 blocks' quants in the quad layout: lo[i] holds quants 0..15 of blocks i, 4+i, 8+i, 12+i
 * (one block per 128-bit lane), hi[i] quants 16..31 of the same blocks. */
struct quads {
	__m512i lo[4], hi[4];
};

/* Q8_0 quants (signed) of the 16 blocks at p (stride 34, quants at +2). */
TGT INLINE void quads_q8(const uint8_t *p, struct quads *q)
{
#pragma GCC unroll 8
	for (int i = 0; i < 4; i++) {
		const uint8_t *b = p + (size_t)i * Q8_0_BYTES + 2;
		__m512i a = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b)),
					       _mm256_loadu_si256((const __m256i *)(b + 4 * Q8_0_BYTES)), 1);
		__m512i c = _mm512_inserti64x4(_mm512_castsi256_si512(
						       _mm256_loadu_si256((const __m256i *)(b + 8 * Q8_0_BYTES))),
					       _mm256_loadu_si256((const __m256i *)(b + 12 * Q8_0_BYTES)), 1);
		q->lo[i] = _mm512_shuffle_i32x4(a, c, _MM_SHUFFLE(2, 0, 2, 0));
		q->hi[i] = _mm512_shuffle_i32x4(a, c, _MM_SHUFFLE(3, 1, 3, 1));
	}
}

/* Q4_0 nibbles (0..15, unsigned) of the 16 blocks at p (stride 18, 16 bytes at +2): quant j
 * is the low nibble of byte j, quant 16 + j its high nibble. */
TGT INLINE void quads_q4(const uint8_t *p, struct quads *q)
{
	const __m512i low4 = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 8
	for (int i = 0; i < 4; i++) {
		const uint8_t *b = p + (size_t)i * Q4_0_BYTES + 2;
		__m256i ab = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)b)),
						     _mm_loadu_si128((const __m128i *)(b + 4 * Q4_0_BYTES)), 1);
		__m256i cd = _mm256_inserti128_si256(
			_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(b + 8 * Q4_0_BYTES))),
			_mm_loadu_si128((const __m128i *)(b + 12 * Q4_0_BYTES)), 1);
		__m512i raw = _mm512_inserti64x4(_mm512_castsi256_si512(ab), cd, 1);
		q->lo[i] = _mm512_and_si512(raw, low4);
		q->hi[i] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
	}
}

/* p[i] lane k (128 bits) holds four partial sums of block 4k + i; returns the 16 full sums,
 * block b in lane b. */
TGT INLINE __m512i tree4(const __m512i p[4])
{
	__m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]), _mm512_unpackhi_epi32(p[0], p[1]));
	__m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]), _mm512_unpackhi_epi32(p[2], p[3]));
	return _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
}

/* Sums over each block of u (unsigned bytes) times s (signed bytes), block b in lane b. */
TGT INLINE __m512i dot_quads(const struct quads *u, const struct quads *s)
{
	__m512i p[4];
#pragma GCC unroll 8
	for (int i = 0; i < 4; i++)
		p[i] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u->lo[i], s->lo[i]),
					   u->hi[i], s->hi[i]);
	return tree4(p);
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

/* The 16 scales widened to f32 (lane b: block b). */
TGT INLINE __m512 scales16(const uint8_t *p, size_t bsz)
{
	__m256i h = _mm256_inserti128_si256(_mm256_castsi128_si256(scales8(p, bsz)), scales8(p + 8 * bsz, bsz), 1);
	return _mm512_cvtph_ps(h);
}

/* One activation's group, prepared once for all the rows of a tile. */
struct qact {
	struct quads q; /* the signed quants */
	__m512i corr;   /* 128 * sum(x) per block (Q8_0 weights) or 8 * sum(x) (Q4_0) */
	__m512 d;       /* the activation scales */
};

/* One weight row's group. */
struct qrow {
	struct quads q; /* unsigned: Q8_0 quant + 128, or the Q4_0 nibble */
	__m512 d;
};

TGT INLINE void qact_prep(int q4, const uint8_t *p, struct qact *a)
{
	quads_q8(p, &a->q);
	struct quads ones;
#pragma GCC unroll 8
	for (int i = 0; i < 4; i++)
		ones.lo[i] = ones.hi[i] = _mm512_set1_epi8(1);
	__m512i xsum = dot_quads(&ones, &a->q);
	a->corr = _mm512_slli_epi32(xsum, q4 ? 3 : 7);
	a->d = scales16(p, Q8_0_BYTES);
}

TGT INLINE void qrow_prep(int q4, const uint8_t *p, struct qrow *w)
{
	if (q4) {
		quads_q4(p, &w->q);
		w->d = scales16(p, Q4_0_BYTES);
		return;
	}
	const __m512i bias = _mm512_set1_epi8((char)0x80);
	quads_q8(p, &w->q);
#pragma GCC unroll 8
	for (int i = 0; i < 4; i++) {
		w->q.lo[i] = _mm512_xor_si512(w->q.lo[i], bias);
		w->q.hi[i] = _mm512_xor_si512(w->q.hi[i], bias);
	}
	w->d = scales16(p, Q8_0_BYTES);
}

/* term_b = (float)isum_b * (dw_b * dx_b) for the 16 blocks. */
TGT INLINE __m512 qterms(const struct qrow *w, const struct qact *a)
{
	__m512i isum = _mm512_sub_epi32(dot_quads(&w->q, &a->q), a->corr);
	return _mm512_mul_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(w->d, a->d));
}

/* One group of rows wp[0..R) times the prepared activations a[0..T), lanes m only. */
TGT INLINE void qgroup(int q4, int R, int T, const uint8_t *const *wp, const struct qact *a,
		       __m512 acc[TILE_MAX][TILE_MAX], __mmask16 m)
{
#pragma GCC unroll 8
	for (int r = 0; r < R; r++) {
		struct qrow w;
		qrow_prep(q4, wp[r], &w);
#pragma GCC unroll 8
		for (int t = 0; t < T; t++)
			acc[r][t] = _mm512_mask_add_ps(acc[r][t], m, acc[r][t], qterms(&w, &a[t]));
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
	__m512 acc[TILE_MAX][TILE_MAX];
	const uint8_t *wp[TILE_MAX], *xp[TILE_MAX];
#pragma GCC unroll 8
	for (int r = 0; r < R; r++)
#pragma GCC unroll 8
		for (int t = 0; t < T; t++)
			acc[r][t] = _mm512_setzero_ps();
	size_t g = 0;
	for (; g + GROUP <= nb; g += GROUP) {
#pragma GCC unroll 8
		for (int r = 0; r < R; r++)
			wp[r] = w + (size_t)r * rb + g * bsz;
#pragma GCC unroll 8
		for (int t = 0; t < T; t++)
			xp[t] = x + (size_t)t * xs + g * Q8_0_BYTES;
		if (pf)
			mu_prefetch_rows(R, wp, pf, GROUP * bsz);
		struct qact a[TILE_MAX];
		if (pre) {
			qgroup(q4, R, T, wp, pre + g / GROUP * ps, acc, 0xffff);
			continue;
		}
#pragma GCC unroll 8
		for (int t = 0; t < T; t++)
			qact_prep(q4, xp[t], &a[t]);
		qgroup(q4, R, T, wp, a, acc, 0xffff);
	}
	if (g < nb) {
		/* the last blocks, zero-padded to a group; only their lanes are added */
		size_t m = nb - g;
		uint8_t wbuf[TILE_MAX][GROUP * Q8_0_BYTES], xbuf[TILE_MAX][GROUP * Q8_0_BYTES];
#pragma GCC unroll 8
		for (int r = 0; r < R; r++) {
			memcpy(wbuf[r], w + (size_t)r * rb + g * bsz, m * bsz);
			memset(wbuf[r] + m * bsz, 0, (GROUP - m) * bsz);
			wp[r] = wbuf[r];
		}
#pragma GCC unroll 8
		for (int t = 0; t < T; t++) {
			memcpy(xbuf[t], x + (size_t)t * xs + g * Q8_0_BYTES, m * Q8_0_BYTES);
			memset(xbuf[t] + m * Q8_0_BYTES, 0, (GROUP - m) * Q8_0_BYTES);
			xp[t] = xbuf[t];
		}
		struct qact a[TILE_MAX];
#pragma GCC unroll 8
		for (int t = 0; t < T; t++)
			qact_prep(q4, xp[t], &a[t]);
		qgroup(q4, R, T, wp, a, acc, first_lanes(m));
	}
#pragma GCC unroll 8
	for (int r = 0; r < R; r++)
#pragma GCC unroll 8
		for (int t = 0; t < T; t++)
			out[(size_t)t * ldo + (size_t)r] = mu_fold16_zmm(acc[r][t]);
}

/* ---- Q8_0 activations ----------------------------------------------------------------------
 * The reference's rule lane by lane: amax by vmaxps with the running maximum as the second
 * operand, which vmaxps returns when the other is NaN (so NaN is ignored, as the reference's
 * `a > amax` ignores it); d and id as scalars, exactly the reference's expressions; the
 * rounding by the same 1.5 * 2^23 addition and integer subtraction, then the same clamp, so
 * NaN and infinite inputs give the reference's bytes (vcvtps2dq would give INT_MIN). */
TGT static void quantize_q8_0(const float *x, uint8_t *dst, size_t n)
{
	assert(n % MU_QK8_0 == 0);
	const __m512 magic = _mm512_set1_ps(0x1.8p+23f);
	const __m512i magic_bits = _mm512_set1_epi32(0x4b400000);
	const __m512i hi = _mm512_set1_epi32(127), lo = _mm512_set1_epi32(-127);
	for (size_t b = 0; b < n / MU_QK8_0; b++, x += MU_QK8_0, dst += Q8_0_BYTES) {
		__m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
		__m512 m = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps());
		m = _mm512_max_ps(_mm512_abs_ps(v1), m);
		float amax = _mm512_reduce_max_ps(m); /* no NaN left: any order */
		float d = amax / 127.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		le16_store(dst, mu_f32_to_f16(d));
		__m512 vid = _mm512_set1_ps(id);
		__m512i q0 = _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(_mm512_mul_ps(v0, vid), magic)),
					      magic_bits);
		__m512i q1 = _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(_mm512_mul_ps(v1, vid), magic)),
					      magic_bits);
		q0 = _mm512_max_epi32(_mm512_min_epi32(q0, hi), lo);
		q1 = _mm512_max_epi32(_mm512_min_epi32(q1, hi), lo);
		_mm_storeu_si128((__m128i *)(dst + 2), _mm512_cvtepi32_epi8(q0));
		_mm_storeu_si128((__m128i *)(dst + 18), _mm512_cvtepi32_epi8(q1));
	}
}

/* ---- dot and axpy ------------------------------------------------------------------------- */

TGT static float dot_f32_avx512(const float *a, const float *b, size_t n)
{
	__m512 acc = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + MU_LANES <= n; i += MU_LANES)
		acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
	if (i < n) {
		__mmask16 m = first_lanes(n - i);
		acc = _mm512_mask_add_ps(acc, m, acc,
					 _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
	}
	return mu_fold16_zmm(acc);
}

/* y[i] = y[i] + a * v[i]: each element on its own, so lanes need no order. */
TGT static void axpy_avx512(float *y, float a, const void *v, enum mu_dtype vt, size_t n)
{
	const __m512 va = _mm512_set1_ps(a);
	const enum fkind k = vt == MU_DTYPE_F16 ? FK_F16 : FK_F32;
	const size_t es = k == FK_F16 ? 2 : 4;
	const uint8_t *p = v;
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_mul_ps(va, widen16(k, p + es * i))));
	if (i < n) {
		__mmask16 m = first_lanes(n - i);
		__m512 s = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_mul_ps(va, widen_part(k, p + es * i, m)));
		_mm512_mask_storeu_ps(y + i, m, s);
	}
}

/* ---- drivers and tables ------------------------------------------------------------------- */

#define PATH_NAME "avx512"
#define PATH_TABLE mu_path_avx512
#define PATH_KQ mu_kq_avx512
#define PATH_Q8_K mu_quantize_q8_k_avx512
#define PATH_DOT dot_f32_avx512
#define PATH_AXPY axpy_avx512
#define PATH_PACKED mu_packed_avx512
#include "engine/kernels_drive.h"
