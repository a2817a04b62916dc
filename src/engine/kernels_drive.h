/* kernels_drive.h — the part of a SIMD path that is the same on every path: the loops that cut
 * a matvec or matmul into tiles, the activation dispatch and the path's tables. A template,
 * not a header: kernels_avx2.c and kernels_avx512.c include it once, at their end, after
 * defining
 *   TGT, INLINE          the path's target attribute and forced inlining
 *   MV_R                 rows per matvec pass
 *   MM_R, MM_T           the matmul tile: rows x activations
 *   enum fkind           FK_F32, FK_F16, FK_BF16
 *   ftile(kind, R, T, w, rb, x, xs, n, out, ldo, pf)
 *                        float rows 0..R-1 of w (stride rb) times f32 activations 0..T-1 of x
 *                        (stride xs bytes), n elements: out[t * ldo + r]; pf > 0 prefetches the
 *                        rows pf bytes ahead (the next pass of a matvec)
 *   qtile(q4, R, T, w, rb, x, xs, nb, out, ldo, pf, pre, ps)
 *                        the same for Q8_0 (q4 = 0) or Q4_0 (q4 = 1) rows of nb blocks against
 *                        Q8_0 activations; pre, when not NULL, holds the activations' full
 *                        groups of GROUP blocks already prepared: group g of activation t at
 *                        pre[g * ps + t]
 *   struct qact, qact_prep(q4, p, a)        one activation group of GROUP blocks at p,
 *                        prepared for every row that meets it
 *   quantize_q8_0(x, dst, n)                Q8_0 activations
 *   PATH_NAME, PATH_TABLE, PATH_KQ, PATH_Q8_K, PATH_DOT, PATH_AXPY, PATH_PACKED
 *                        the path's name, its table's symbol, its K-quant table getter, its
 *                        Q8_K quantizer, its dot_f32 and axpy, its packed-table getter
 * Every (row, activation) output comes from one tile call with R and T constant after
 * inlining; a tile computes each output exactly as the reference does, so the way the loops
 * below cut the work changes no bit.
 */

/* Prepared activations (struct qact) live on the stack, PRE_GROUPS of them (40 KiB): a
 * matvec prepares its activation's full groups once for all its rows when n <= 32768, and a
 * matmul prepares MM_T activations at a time for a block of rows when n <= 8192 (every
 * matrix of a 1B Llama). Larger rows prepare each group once per tile instead. Either way a
 * prepared group has the bits qact_prep gives, so the choice changes speed, not results. */
#define PRE_GROUPS 64

/* The prepared groups of one tile: group g of activation t is at a[g * stride + t]. */
struct qpre {
	const struct qact *a;
	size_t stride;
};

/* One tile of either family: quant = 1 for Q8_0/Q4_0 rows (kind = q4), 0 for float rows. */
TGT INLINE void tile(int quant, int kind, int R, int T, const uint8_t *w, size_t rb, const uint8_t *x,
		     size_t xs, size_t n, float *out, size_t ldo, size_t pf, struct qpre pre)
{
	if (quant)
		qtile(kind, R, T, w, rb, x, xs, n / MU_QK8_0, out, ldo, pf, pre.a, pre.stride);
	else
		ftile((enum fkind)kind, R, T, w, rb, x, xs, n, out, ldo, pf);
}

/* Rows [r0, r1) times activations [t0, t1): tiles of MM_R x MM_T, then single rows and
 * single activations. pre, when set, holds activations t0.. prepared. */
TGT INLINE void drive_tiles(int quant, int kind, const uint8_t *w, size_t rb, const uint8_t *x, size_t xs,
			    size_t n, float *out, size_t ldo, size_t t0, size_t t1, size_t r0, size_t r1,
			    struct qpre pre)
{
	size_t r = r0;
	for (; r + MM_R <= r1; r += MM_R) {
		size_t t = t0;
		for (; t + MM_T <= t1; t += MM_T)
			tile(quant, kind, MM_R, MM_T, w + r * rb, rb, x + t * xs, xs, n, out + t * ldo + r, ldo, 0,
			     (struct qpre){pre.a ? pre.a + (t - t0) : NULL, pre.stride});
		for (; t < t1; t++)
			tile(quant, kind, MM_R, 1, w + r * rb, rb, x + t * xs, xs, n, out + t * ldo + r, ldo, 0,
			     (struct qpre){pre.a ? pre.a + (t - t0) : NULL, pre.stride});
	}
	for (; r < r1; r++) {
		size_t t = t0;
		for (; t + MM_T <= t1; t += MM_T)
			tile(quant, kind, 1, MM_T, w + r * rb, rb, x + t * xs, xs, n, out + t * ldo + r, ldo, 0,
			     (struct qpre){pre.a ? pre.a + (t - t0) : NULL, pre.stride});
		for (; t < t1; t++)
			tile(quant, kind, 1, 1, w + r * rb, rb, x + t * xs, xs, n, out + t * ldo + r, ldo, 0,
			     (struct qpre){pre.a ? pre.a + (t - t0) : NULL, pre.stride});
	}
}

/* Quantized rows: blocks of rows whose weights (about 256 KiB) stay in cache while MM_T
 * activations at a time, prepared once per block, pass over them. */
TGT INLINE void drive_qmatmul(int q4, const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, size_t n,
			      float *out, size_t ldo, size_t nt, size_t r0, size_t r1)
{
	assert(n % MU_QK8_0 == 0);
	const size_t ng = n / MU_QK8_0 / GROUP;
	if (ng * MM_T > PRE_GROUPS) {
		drive_tiles(1, q4, w, rb, x, xs, n, out, ldo, 0, nt, r0, r1, (struct qpre){NULL, 0});
		return;
	}
	size_t block = (256 * 1024 / rb) / MM_R * MM_R;
	if (block < MM_R)
		block = MM_R;
	struct qact pre[PRE_GROUPS];
	for (size_t r = r0; r < r1; r += block) {
		size_t re = r1 - r < block ? r1 : r + block;
		for (size_t t = 0; t < nt; t += MM_T) {
			size_t tn = nt - t < MM_T ? nt - t : MM_T;
			for (size_t g = 0; g < ng; g++)
				for (size_t k = 0; k < tn; k++)
					qact_prep(q4, x + (t + k) * xs + g * GROUP * Q8_0_BYTES, &pre[g * MM_T + k]);
			drive_tiles(1, q4, w, rb, x, xs, n, out, ldo, t, t + tn, r, re, (struct qpre){pre, MM_T});
		}
	}
}

/* Passes of MV_R rows, each prefetching the next pass's rows (when there is a next full pass). */
TGT INLINE void drive_matvec(int quant, int kind, const uint8_t *w, size_t rb, const void *x, size_t n,
			     float *out, size_t r0, size_t r1, struct qpre pre)
{
	assert(!quant || n % MU_QK8_0 == 0);
	size_t r = r0;
	for (; r + MV_R <= r1; r += MV_R)
		tile(quant, kind, MV_R, 1, w + r * rb, rb, x, 0, n, out + r, 0, r + 2 * MV_R <= r1 ? MV_R * rb : 0,
		     pre);
	for (; r < r1; r++)
		tile(quant, kind, 1, 1, w + r * rb, rb, x, 0, n, out + r, 0, 0, pre);
}

TGT INLINE void drive_qmatvec(int q4, const uint8_t *w, size_t rb, const uint8_t *x, size_t n, float *out,
			      size_t r0, size_t r1)
{
	const size_t ng = n / MU_QK8_0 / GROUP;
	if (ng > PRE_GROUPS || r1 - r0 < 2 * MV_R) {
		drive_matvec(1, q4, w, rb, x, n, out, r0, r1, (struct qpre){NULL, 0});
		return;
	}
	struct qact pre[PRE_GROUPS];
	for (size_t g = 0; g < ng; g++)
		qact_prep(q4, x + g * GROUP * Q8_0_BYTES, &pre[g]);
	drive_matvec(1, q4, w, rb, x, n, out, r0, r1, (struct qpre){pre, 1});
}

#define KERNELS(suffix, quant, kind)                                                               \
	TGT static void matvec_##suffix(const uint8_t *w, size_t rb, const void *x, size_t n,         \
					float *out, size_t r0, size_t r1)                             \
	{                                                                                          \
		if (quant)                                                                         \
			drive_qmatvec(kind, w, rb, x, n, out, r0, r1);                             \
		else                                                                               \
			drive_matvec(0, kind, w, rb, x, n, out, r0, r1, (struct qpre){NULL, 0});   \
	}                                                                                          \
	TGT static void matmul_##suffix(const uint8_t *w, size_t rb, const void *x, size_t xs,        \
					size_t n, float *out, size_t ldo, size_t nt, size_t r0,       \
					size_t r1)                                                    \
	{                                                                                          \
		if (quant)                                                                         \
			drive_qmatmul(kind, w, rb, x, xs, n, out, ldo, nt, r0, r1);                \
		else                                                                               \
			drive_tiles(0, kind, w, rb, x, xs, n, out, ldo, 0, nt, r0, r1,             \
				    (struct qpre){NULL, 0});                                       \
	}
KERNELS(f32, 0, FK_F32)
KERNELS(f16, 0, FK_F16)
KERNELS(bf16, 0, FK_BF16)
KERNELS(q8_0, 1, 0)
KERNELS(q4_0, 1, 1)
#undef KERNELS

TGT static void act_prepare_simd(enum mu_act_kind k, const float *x, void *out, size_t n)
{
	switch (k) {
	case MU_ACT_F32:
		memcpy(out, x, n * sizeof(float));
		return;
	case MU_ACT_Q8_0:
		quantize_q8_0(x, out, n);
		return;
	case MU_ACT_Q8_K:
		PATH_Q8_K(x, out, n);
		return;
	}
	assert(0 && "unknown activation kind");
}

/* Dequantization and weight quantization are the reference's alone (kernels.h). */
static const struct mu_type_kernels kernels_f32 = {MU_ACT_F32, matvec_f32, matmul_f32, NULL, NULL, NULL};
static const struct mu_type_kernels kernels_f16 = {MU_ACT_F32, matvec_f16, matmul_f16, NULL, NULL, NULL};
static const struct mu_type_kernels kernels_bf16 = {MU_ACT_F32, matvec_bf16, matmul_bf16, NULL, NULL, NULL};
static const struct mu_type_kernels kernels_q8_0 = {MU_ACT_Q8_0, matvec_q8_0, matmul_q8_0, NULL, NULL, NULL};
static const struct mu_type_kernels kernels_q4_0 = {MU_ACT_Q8_0, matvec_q4_0, matmul_q4_0, NULL, NULL, NULL};

static const struct mu_type_kernels *types_simd(enum mu_dtype t)
{
	switch (t) {
	case MU_DTYPE_F32: return &kernels_f32;
	case MU_DTYPE_F16: return &kernels_f16;
	case MU_DTYPE_BF16: return &kernels_bf16;
	case MU_DTYPE_Q8_0: return &kernels_q8_0;
	case MU_DTYPE_Q4_0: return &kernels_q4_0;
	default: return PATH_KQ(t);
	}
}

const struct mu_kernel_path PATH_TABLE = {
	PATH_NAME, types_simd, act_prepare_simd, PATH_DOT, PATH_AXPY, PATH_PACKED,
};
