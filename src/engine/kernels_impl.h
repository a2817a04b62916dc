/* kernels_impl.h — what the kernel path files share; not for use outside src/engine.
 *
 * One file per path and family:
 *   kernels_ref.c      reference F32/F16/BF16/Q8_0/Q4_0, Q8_0 activations, the ref path table
 *   kernels_kq_ref.c   reference K-quants (Q4_K, Q5_K, Q6_K) and Q8_K activations
 *   kernels_avx2.c     AVX2 twins of kernels_ref.c, the avx2 path table
 *   kernels_kq_avx2.c  AVX2 twins of kernels_kq_ref.c
 *   kernels_avx512.c, kernels_kq_avx512.c  the same for AVX-512
 *   kernels_pack_avx512.c  AVX-512 kernels for Q8_0 and Q4_0 rows packed at load
 *   kernels.c          CPU feature detection and the choice of the active path
 *   kernels_drive.h, kernels_kq_drive.h
 *                      what the SIMD paths share (tile loops, activation dispatch, tables);
 *                      templates included once at the end of each SIMD file
 * SIMD files compile with the normal flags and mark each function with MU_TARGET_AVX2 or
 * MU_TARGET_AVX512, so the build needs no per-file flags and the binary runs on any x86-64:
 * a SIMD function is only reached through its path table, which mu_kpath_get hands out only
 * when the CPU and the OS support it.
 */
#ifndef MU_ENGINE_KERNELS_IMPL_H
#define MU_ENGINE_KERNELS_IMPL_H

#include <immintrin.h>

#include "engine/kernels.h"

#define MU_TARGET_AVX2 __attribute__((target("avx2,f16c")))
#define MU_TARGET_AVX512 __attribute__((target("avx2,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/* The canonical pairwise fold of the 16 lanes: for s = 8, 4, 2, 1: acc[l] = acc[l] + acc[l + s]
 * for l < s. Returns acc[0]. */
static inline float mu_lanes_fold(float acc[MU_LANES])
{
	for (size_t s = MU_LANES / 2; s > 0; s /= 2)
		for (size_t l = 0; l < s; l++)
			acc[l] = acc[l] + acc[l + s];
	return acc[0];
}

/* The same fold on the 16 lanes of one zmm (the avx512 files): lanes l + l+8 (the upper 256
 * bits onto the lower), then l + l+4, l + l+2, l + l+1. */
static inline __attribute__((always_inline)) MU_TARGET_AVX512 float mu_fold16_zmm(__m512 v)
{
	__m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
	__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
	__m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
	__m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
	return _mm_cvtss_f32(s1);
}

/* Round half to even for |v| < 2^22: v + 1.5 * 2^23 lands where the float spacing is 1, so the
 * default rounding mode (to nearest, ties to even) rounds v there, and the difference of the
 * bit patterns is that integer. Outside that range (NaN or infinite input) the result is still
 * a defined int32, which callers clamp. */
int32_t mu_round_bits(float v);

/* The activation rule of Q8_0 and Q8_K for one block of n values (docs/determinism.md):
 * amax = max |x_i| (NaN ignored); d = amax / 127; id = d != 0 ? 1/d : 0;
 * q_i = round-half-even(x_i * id) clamped to [-127, 127] (a no-op for finite input). Returns d;
 * the caller stores it (Q8_0 as f16, Q8_K as f32). */
float mu_q8_block(const float *x, size_t n, int8_t *q);

/* The reference matmul of a type: each activation through its matvec, so every element has
 * the matvec's bits. */
#define MU_REF_MATMUL(name, matvec)                                                                \
	static void name(const uint8_t *w, size_t row_bytes, const void *x, size_t x_stride, size_t n, \
			 float *out, size_t ldo, size_t nt, size_t r0, size_t r1)                      \
	{                                                                                          \
		for (size_t t = 0; t < nt; t++)                                                    \
			matvec(w, row_bytes, (const uint8_t *)x + t * x_stride, n, out + t * ldo, r0, r1); \
	}

/* Decode streams the weights once: a matvec pass asks for the bytes the next pass will read
 * (pf bytes further) of each of its R rows, which the caller only does while those rows are
 * in its range. SSE prefetches: any x86-64, so every path uses this one. */
static inline __attribute__((always_inline)) void mu_prefetch_rows(int R, const uint8_t *const *wp, size_t pf,
								    size_t bytes)
{
#pragma GCC unroll 8
	for (int r = 0; r < R; r++) {
		const uint8_t *p = wp[r] + pf;
		for (size_t off = 0; off < bytes; off += 64)
			_mm_prefetch((const char *)(p + off), _MM_HINT_T0);
		_mm_prefetch((const char *)(p + bytes - 1), _MM_HINT_T0);
	}
}

extern const struct mu_kernel_path mu_path_ref;
extern const struct mu_kernel_path mu_path_avx2;
extern const struct mu_kernel_path mu_path_avx512;

/* K-quant kernels of each path; NULL for other types. */
const struct mu_type_kernels *mu_kq_ref(enum mu_dtype t);
const struct mu_type_kernels *mu_kq_avx2(enum mu_dtype t);
const struct mu_type_kernels *mu_kq_avx512(enum mu_dtype t);

/* The avx512 path's packed tables (kernels_pack_avx512.c): Q8_0 and Q4_0; NULL for others. */
const struct mu_type_kernels *mu_packed_avx512(enum mu_dtype t);

/* Q8_K activation quantization of each path (n a multiple of 256); identical bytes. */
void mu_quantize_q8_k_ref(const float *x, void *out, size_t n);
void mu_quantize_q8_k_avx2(const float *x, void *out, size_t n);
void mu_quantize_q8_k_avx512(const float *x, void *out, size_t n);

#endif
