/* kernels.h — the reference kernels and their canonical reduction order.
 *
 * docs/determinism.md is the normative description; in short:
 *  - No fused multiply-add anywhere in the canonical order: every product is rounded to f32,
 *    then added (the build uses -ffp-contract=off). SIMD twins use separate mul and add.
 *  - A float dot product of length n uses 16 lanes: element i is accumulated into lane
 *    (i mod 16) in increasing i (acc[l] = acc[l] + a[i]*b[i]), lanes start at +0.0f, then the
 *    lanes are folded pairwise: for s = 8, 4, 2, 1: acc[l] = acc[l] + acc[l+s] for l < s.
 *    The result is acc[0]. F16/BF16 weights are widened to f32 exactly first.
 *  - Quantized weights (Q8_0, Q4_0) multiply activations quantized to Q8_0 (see
 *    mu_quantize_q8_0). For each block b the integer dot isum_b (exact int32) is formed, then
 *    term_b = (float)isum_b * (dw_b * dx_b), with dw_b, dx_b the f16 scales widened to f32.
 *    term_b goes to lane (b mod 16) and the lanes are folded as above.
 *  - Activation quantization to Q8_0, per block of 32: amax = max |x_i|; d = amax / 127.0f;
 *    id = d != 0 ? 1.0f / d : 0; q_i = round-half-to-even(x_i * id) (always within ±127);
 *    the block stores f16(d) (round to nearest even) and the q_i.
 * Each output row is computed entirely by one thread, so results do not depend on the
 * thread count.
 */
#ifndef MU_ENGINE_KERNELS_H
#define MU_ENGINE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "engine/dtype.h"

#define MU_LANES 16

/* What a weight type wants its activations converted to before a matvec. */
enum mu_act_kind {
	MU_ACT_F32 = 0,  /* plain f32 vector */
	MU_ACT_Q8_0 = 1, /* Q8_0 blocks (n must be a multiple of 32) */
	MU_ACT_Q8_K = 2, /* Q8_K blocks (n must be a multiple of 256): f32 d, int8 qs[256],
			  * int16 bsums[16] (the sums of each group of 16 quants); 292 bytes */
};

/* out[r] = dot(row r of W, x) for r in [r0, r1).
 * w: row-major weight rows, row r starts at w + r * row_bytes; n: elements per row;
 * x: activation in the form this type's act kind asks for. */
typedef void (*mu_matvec_fn)(const uint8_t *w, size_t row_bytes, const void *x, size_t n,
			     float *out, size_t r0, size_t r1);

/* The same for nt activations at once (prefill): activation t starts at
 * (const uint8_t *)x + t * x_stride and out[t * ldo + r] = dot(row r of W, activation t) for
 * t < nt, r in [r0, r1). Every element has exactly the bits matvec gives for that activation
 * and row: a matmul only shares the loads of a weight row among several activations, it never
 * changes an element's reduction order. */
typedef void (*mu_matmul_fn)(const uint8_t *w, size_t row_bytes, const void *x, size_t x_stride,
			     size_t n, float *out, size_t ldo, size_t nt, size_t r0, size_t r1);

struct mu_type_kernels {
	enum mu_act_kind act;
	mu_matvec_fn matvec;
	mu_matmul_fn matmul;
	/* dequant_row and quantize_row work on one row at a time (an embedding row per token,
	 * model writers, tests), so only the reference tables have them: SIMD paths leave both
	 * NULL, and callers take them from mu_kernels_ref(). The exception is a packed table
	 * (mu_kernel_path.packed), whose dequant_row reads the packed layout, which only it knows.
	 * Widen/dequantize one row of n elements to f32. */
	void (*dequant_row)(const void *src, float *dst, size_t n);
	/* Quantize/narrow one f32 row of n elements into this type (model writers, tests).
	 * For Q4_0 the rule is: per block, m = the signed value with the largest magnitude
	 * (first one on ties); d = m / -8.0f; id = d != 0 ? 1/d : 0; q = min(15, trunc(x*id + 8.5f)),
	 * stored with f16(d) — ggml's reference quantizer. Q8_0 uses the activation rule above. */
	void (*quantize_row)(const float *src, void *dst, size_t n);
	/* Packed tables only (mu_kernel_path.packed): rewrites rows [0, rows) of a matrix in place
	 * from the GGUF layout into the layout this table's matvec, matmul and dequant_row read;
	 * the same bytes per row. n is a multiple of MU_PACK_ELEMS. NULL elsewhere. */
	void (*pack_rows)(uint8_t *w, size_t row_bytes, size_t n, size_t rows);
};

/* Rows of a packed matrix hold a multiple of this many elements (16 blocks of 32). */
#define MU_PACK_ELEMS 512

/* A kernel path: one implementation of every kernel, all giving the same bits. */
enum mu_kpath {
	MU_KPATH_REF = 0,    /* plain C, the definition of the canonical order */
	MU_KPATH_AVX2 = 1,   /* AVX2 + F16C */
	MU_KPATH_AVX512 = 2, /* AVX-512 F/BW/VL/DQ + VNNI */
	MU_KPATH_COUNT = 3,
};

struct mu_kernel_path {
	const char *name; /* "ref", "avx2", "avx512" */
	/* This path's kernels for weights of type t; NULL when the engine has none. */
	const struct mu_type_kernels *(*type)(enum mu_dtype t);
	/* Converts f32 x[n] into form k; the bytes equal the reference's bit for bit. */
	void (*act_prepare)(enum mu_act_kind k, const float *x, void *out, size_t n);
	/* The canonical 16-lane dot product (mu_dot_f32). */
	float (*dot_f32)(const float *a, const float *b, size_t n);
	/* y[i] = y[i] + a * v[i] for i < n (the product rounded, then the sum), v widened exactly
	 * from vt, which is MU_DTYPE_F32 or MU_DTYPE_F16 (little-endian): attention's weighted sum
	 * of values. */
	void (*axpy)(float *y, float a, const void *v, enum mu_dtype vt, size_t n);
	/* Kernels for weights of type t rewritten once into a layout this path reads faster
	 * (pack_rows), or NULL when the path reads type t only in the GGUF layout. They give the
	 * same bits as type(t) on the same values. */
	const struct mu_type_kernels *(*packed)(enum mu_dtype t);
};

/* Path p when this build has it and this CPU (and OS) supports it, else NULL. */
const struct mu_kernel_path *mu_kpath_get(enum mu_kpath p);
/* Why path p is unavailable ("this CPU lacks AVX-512BW", ...), or NULL when it is available. */
const char *mu_kpath_missing(enum mu_kpath p);
/* "ref", "avx2", "avx512" -> the path, or -1. */
int mu_kpath_from_name(const char *name);

/* Chooses the active path: name is "ref", "avx2", "avx512" or "auto" (the best this CPU has);
 * NULL reads the environment variable MU_KERNELS (unset or empty means "auto"). Fails with a
 * clear message when the name is unknown or the CPU lacks that path. Programs call it once at
 * start (mu, mu-enclave); a model binds the path active when it is loaded (mu_model.kp), so a
 * later call changes only models loaded afterwards. */
enum mu_err mu_kernels_init(const char *name, struct mu_error *err);
/* The active path (the best available one if mu_kernels_init was never called). */
const struct mu_kernel_path *mu_kernels(void);

/* Reference kernels for a weight type; NULL when the type has none. */
const struct mu_type_kernels *mu_kernels_ref(enum mu_dtype t);

/* Bytes needed to hold an activation of n elements in form k (0 when n does not fit the form). */
size_t mu_act_size(enum mu_act_kind k, size_t n);
/* Convert f32 x[n] into form k with the reference kernels (for MU_ACT_F32 a copy). */
void mu_act_prepare(enum mu_act_kind k, const float *x, void *out, size_t n);

/* Canonical helpers used by the model outside matvecs (same 16-lane order). */
float mu_dot_f32(const float *a, const float *b, size_t n);
float mu_sumsq_f32(const float *a, size_t n);
void mu_quantize_q8_0(const float *x, struct mu_block_q8_0 *out, size_t n);

#endif
