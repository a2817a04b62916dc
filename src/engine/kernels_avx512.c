/* kernels_avx512.c — the avx512 path. (Being written: the reference kernels for now.) */
#include "engine/kernels_impl.h"

const struct mu_kernel_path mu_path_avx512 = {
	"avx512", mu_kernels_ref, mu_act_prepare, mu_dot_f32, NULL,
};
