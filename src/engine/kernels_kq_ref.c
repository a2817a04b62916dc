/* kernels_kq_ref.c — reference K-quant kernels (Q4_K, Q5_K, Q6_K) and Q8_K activations.
 * (Being written: until then no K-quant type has kernels.) */
#include "engine/kernels_impl.h"

#include <string.h>

const struct mu_type_kernels *mu_kq_ref(enum mu_dtype t)
{
	(void)t;
	return NULL;
}

void mu_quantize_q8_k_ref(const float *x, void *out, size_t n)
{
	(void)x;
	memset(out, 0, mu_act_size(MU_ACT_Q8_K, n));
}
