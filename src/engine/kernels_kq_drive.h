/* kernels_kq_drive.h — the part of a K-quant SIMD path that is the same on every path: the
 * loop that feeds rows and activations to the row kernels, and the table. A template, not a
 * header: kernels_kq_avx2.c and kernels_kq_avx512.c include it once, at their end, after
 * defining
 *   KQ_INLINE, KQ_TGT    forced inlining with the path's target; the target alone
 *   kq45_row(row, five, xs, nt, nb, res)    one Q4_K (five = 0) or Q5_K row of nb blocks
 *                        against nt <= 4 Q8_K activations xs[]: res[t]
 *   kq6_row(row, xs, nt, nb, res)           the same for Q6_K
 *   KQ_GETTER            the path's table getter (mu_kq_avx2, mu_kq_avx512)
 * Each result comes from one row call, which computes it exactly as the reference does, so
 * how the loop below cuts the work changes no bit.
 */
enum kq_kind { KQ4, KQ5, KQ6 };

/* One row against nt (<= 4) activations; the constant kind and nt let each use inline into its
 * own specialised loop. */
KQ_INLINE void kq_row(enum kq_kind kind, const uint8_t *row, const uint8_t *const xs[4], size_t nt,
		      size_t nb, float res[4])
{
	if (kind == KQ6)
		kq6_row(row, xs, nt, nb, res);
	else
		kq45_row(row, kind == KQ5, xs, nt, nb, res);
}

#define ROW_BATCH 8 /* rows whose weights stay in cache while every activation passes */

KQ_INLINE void kq_matmul(enum kq_kind kind, const uint8_t *w, size_t row_bytes, const void *x,
			 size_t x_stride, size_t n, float *out, size_t ldo, size_t nt, size_t r0, size_t r1)
{
	assert(n % MU_QK_K == 0);
	const size_t nb = n / MU_QK_K;
	for (size_t rb = r0; rb < r1; rb += ROW_BATCH) {
		size_t re = r1 - rb < ROW_BATCH ? r1 : rb + ROW_BATCH;
		for (size_t t0 = 0; t0 < nt; t0 += 4) {
			size_t tn = nt - t0 < 4 ? nt - t0 : 4;
			const uint8_t *xs[4];
			for (size_t t = 0; t < 4; t++)
				xs[t] = (const uint8_t *)x + (t0 + (t < tn ? t : 0)) * x_stride;
			for (size_t r = rb; r < re; r++) {
				float res[4];
				switch (tn) {
				case 1: kq_row(kind, w + r * row_bytes, xs, 1, nb, res); break;
				case 2: kq_row(kind, w + r * row_bytes, xs, 2, nb, res); break;
				case 3: kq_row(kind, w + r * row_bytes, xs, 3, nb, res); break;
				default: kq_row(kind, w + r * row_bytes, xs, 4, nb, res); break;
				}
				for (size_t t = 0; t < tn; t++)
					out[(t0 + t) * ldo + r] = res[t];
			}
		}
	}
}

#define KQ_FUNCS(suffix, kind)                                                                     \
	KQ_TGT static void matmul_##suffix(const uint8_t *w, size_t row_bytes, const void *x,         \
					   size_t x_stride, size_t n, float *out, size_t ldo, size_t nt, \
					   size_t r0, size_t r1)                                         \
	{                                                                                          \
		kq_matmul(kind, w, row_bytes, x, x_stride, n, out, ldo, nt, r0, r1);               \
	}                                                                                          \
	KQ_TGT static void matvec_##suffix(const uint8_t *w, size_t row_bytes, const void *x, size_t n, \
					   float *out, size_t r0, size_t r1)                             \
	{                                                                                          \
		kq_matmul(kind, w, row_bytes, x, 0, n, out, 0, 1, r0, r1);                         \
	}
KQ_FUNCS(q4_k, KQ4)
KQ_FUNCS(q5_k, KQ5)
KQ_FUNCS(q6_k, KQ6)
#undef KQ_FUNCS

/* Dequantization and weight quantization are the reference's alone (kernels.h). */
static const struct mu_type_kernels kernels_q4_k = {MU_ACT_Q8_K, matvec_q4_k, matmul_q4_k, NULL, NULL, NULL};
static const struct mu_type_kernels kernels_q5_k = {MU_ACT_Q8_K, matvec_q5_k, matmul_q5_k, NULL, NULL, NULL};
static const struct mu_type_kernels kernels_q6_k = {MU_ACT_Q8_K, matvec_q6_k, matmul_q6_k, NULL, NULL, NULL};

const struct mu_type_kernels *KQ_GETTER(enum mu_dtype t)
{
	switch (t) {
	case MU_DTYPE_Q4_K: return &kernels_q4_k;
	case MU_DTYPE_Q5_K: return &kernels_q5_k;
	case MU_DTYPE_Q6_K: return &kernels_q6_k;
	default: return NULL;
	}
}
