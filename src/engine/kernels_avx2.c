/* kernels_avx2.c — the avx2 path. (Being written: the reference kernels for now.) */
#include "engine/kernels_impl.h"

const struct mu_kernel_path mu_path_avx2 = {
	"avx2", mu_kernels_ref, mu_act_prepare, mu_dot_f32, NULL,
};
