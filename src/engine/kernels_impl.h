/* kernels_impl.h — what the kernel path files share; not for use outside src/engine.
 *
 * One file per path and family:
 *   kernels_ref.c      reference F32/F16/BF16/Q8_0/Q4_0, Q8_0 activations, the ref path table
 *   kernels_kq_ref.c   reference K-quants (Q4_K, Q5_K, Q6_K) and Q8_K activations
 *   kernels_avx2.c     AVX2 twins of kernels_ref.c, the avx2 path table
 *   kernels_kq_avx2.c  AVX2 twins of kernels_kq_ref.c
 *   kernels_avx512.c, kernels_kq_avx512.c  the same for AVX-512
 *   kernels.c          CPU feature detection and the choice of the active path
 * SIMD files compile with the normal flags and mark each function with MU_TARGET_AVX2 or
 * MU_TARGET_AVX512, so the build needs no per-file flags and the binary runs on any x86-64:
 * a SIMD function is only reached through its path table, which mu_kpath_get hands out only
 * when the CPU and the OS support it.
 */
#ifndef MU_ENGINE_KERNELS_IMPL_H
#define MU_ENGINE_KERNELS_IMPL_H

#include "engine/kernels.h"

#define MU_TARGET_AVX2 __attribute__((target("avx2,f16c")))
#define MU_TARGET_AVX512 __attribute__((target("avx2,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

extern const struct mu_kernel_path mu_path_ref;
extern const struct mu_kernel_path mu_path_avx2;
extern const struct mu_kernel_path mu_path_avx512;

/* K-quant kernels of each path; NULL for other types. */
const struct mu_type_kernels *mu_kq_ref(enum mu_dtype t);
const struct mu_type_kernels *mu_kq_avx2(enum mu_dtype t);
const struct mu_type_kernels *mu_kq_avx512(enum mu_dtype t);

/* Q8_K activation quantization of each path (n a multiple of 256); identical bytes. */
void mu_quantize_q8_k_ref(const float *x, void *out, size_t n);
void mu_quantize_q8_k_avx2(const float *x, void *out, size_t n);
void mu_quantize_q8_k_avx512(const float *x, void *out, size_t n);

#endif
