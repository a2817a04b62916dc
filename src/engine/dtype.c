#include "engine/dtype.h"

#include "base/ckd.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the engine assumes a little-endian host");

/* Block sizes and bytes per block as GGUF/ggml define them. */
static const struct mu_dtype_info dtypes[MU_DTYPE_COUNT] = {
	[MU_DTYPE_F32] = {"f32", 1, 4, 1},
	[MU_DTYPE_F16] = {"f16", 1, 2, 1},
	[MU_DTYPE_Q4_0] = {"q4_0", 32, 18, 1},
	[MU_DTYPE_Q4_1] = {"q4_1", 32, 20, 0},
	[MU_DTYPE_Q5_0] = {"q5_0", 32, 22, 0},
	[MU_DTYPE_Q5_1] = {"q5_1", 32, 24, 0},
	[MU_DTYPE_Q8_0] = {"q8_0", 32, 34, 1},
	[MU_DTYPE_Q8_1] = {"q8_1", 32, 36, 0},
	[MU_DTYPE_Q2_K] = {"q2_K", 256, 84, 0},
	[MU_DTYPE_Q3_K] = {"q3_K", 256, 110, 0},
	[MU_DTYPE_Q4_K] = {"q4_K", 256, 144, 1},
	[MU_DTYPE_Q5_K] = {"q5_K", 256, 176, 1},
	[MU_DTYPE_Q6_K] = {"q6_K", 256, 210, 1},
	[MU_DTYPE_Q8_K] = {"q8_K", 256, 292, 0},
	[MU_DTYPE_I8] = {"i8", 1, 1, 0},
	[MU_DTYPE_I16] = {"i16", 1, 2, 0},
	[MU_DTYPE_I32] = {"i32", 1, 4, 0},
	[MU_DTYPE_I64] = {"i64", 1, 8, 0},
	[MU_DTYPE_F64] = {"f64", 1, 8, 0},
	[MU_DTYPE_BF16] = {"bf16", 1, 2, 1},
};

const struct mu_dtype_info *mu_dtype_get(uint32_t t)
{
	if (t >= MU_DTYPE_COUNT || dtypes[t].name == NULL)
		return NULL;
	return &dtypes[t];
}

size_t mu_dtype_row_size(enum mu_dtype t, uint64_t n)
{
	const struct mu_dtype_info *info = mu_dtype_get((uint32_t)t);
	uint64_t bytes;
	if (!info || n % info->block != 0)
		return 0;
	if (ckd_mul(&bytes, n / info->block, (uint64_t)info->size) || bytes > SIZE_MAX)
		return 0;
	return (size_t)bytes;
}

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

int mu_dtype_from_name(const char *name)
{
	for (int t = 0; t < MU_DTYPE_COUNT; t++) {
		const char *a = dtypes[t].name, *b = name;
		if (!a)
			continue;
		while (*a && *b && lower(*a) == lower(*b)) {
			a++;
			b++;
		}
		if (*a == '\0' && *b == '\0')
			return t;
	}
	return -1;
}
