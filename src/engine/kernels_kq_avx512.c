/* kernels_kq_avx512.c — K-quant twins for the avx512 path. (Being written: the reference for now.) */
#include "engine/kernels_impl.h"

const struct mu_type_kernels *mu_kq_avx512(enum mu_dtype t)
{
	return mu_kq_ref(t);
}

void mu_quantize_q8_k_avx512(const float *x, void *out, size_t n)
{
	mu_quantize_q8_k_ref(x, out, n);
}
