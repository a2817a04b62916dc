/* test_simd.c — every SIMD kernel path against the reference, bit for bit.
 *
 * For each path this CPU has (the others are skipped, with the reason printed) and every weight
 * type with reference kernels (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K):
 *  - matvec equals the reference's matvec for many row lengths (float types: 1..70 and longer;
 *    Q8_0/Q4_0: every multiple of 32 up to 2048, so block counts that are not multiples of 16,
 *    and longer rows that take the drivers' other ways;
 *    K-quants: multiples of 256), odd row counts, several [r0, r1) splits, weights and
 *    activations at odd addresses;
 *  - matmul with nt = 1..9 activations, activation strides with padding, an output stride wider
 *    than the rows, and a sub-range of rows: every element equals the matvec's, and nothing
 *    outside [r0, r1) x nt is written;
 *  - the inputs are random with mixed magnitudes: zeros of both signs, subnormals, the largest
 *    finite values, f16 scales from the smallest subnormal to 65504, every int8 quant;
 *  - act_prepare gives the reference's bytes, also for NaN, infinite, huge and tiny input;
 *  - a path's packed tables (Q8_0 and Q4_0 on avx512) on packed copies of the same rows:
 *    matvec, matmul and dequant_row give the reference's bits;
 *  - dot_f32 and axpy (f32 and f16 values) equal the reference; row conversions
 *    (dequant_row, quantize_row) are left to the reference tables.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/endian.h"
#include "engine/dtype.h"
#include "engine/kernels.h"
#include "test.h"
#include "testutil.h"



/* ---- random inputs (splitmix64) ------------------------------------------------------------ */
static uint64_t rng_state = 0x452821e638d01377ull;

static uint64_t rng_next(void) { return splitmix64(&rng_state); }

static uint32_t rng_below(uint32_t n) { return (uint32_t)(rng_next() % n); }

/* A finite float of mixed magnitude: mostly within a few binades of 1, sometimes a signed
 * zero, a subnormal, a tiny or a huge value. */
static float rand_mixed(void)
{
	uint32_t sign = (uint32_t)(rng_next() & 1) << 31;
	uint32_t kind = rng_below(64);
	uint32_t man = (uint32_t)(rng_next() & 0x7fffff);
	uint32_t exp;
	if (kind < 3)
		return u2f(sign); /* +-0 */
	if (kind < 6)
		return u2f(sign | man); /* subnormal */
	if (kind == 6)
		exp = 1 + rng_below(20); /* tiny normal */
	else if (kind == 7)
		exp = 200 + rng_below(54); /* huge, up to the largest finite */
	else
		exp = 127 - 12 + rng_below(18);
	return u2f(sign | exp << 23 | man);
}

/* Bits of a finite f16: mostly normal values near 1, sometimes zero, subnormal or extreme. */
static uint16_t rand_f16_bits(void)
{
	uint16_t sign = (uint16_t)((rng_next() & 1) << 15);
	uint32_t kind = rng_below(32);
	uint16_t man = (uint16_t)(rng_next() & 0x3ff);
	if (kind == 0)
		return sign;
	if (kind == 1)
		return (uint16_t)(sign | man); /* subnormal */
	if (kind == 2)
		return (uint16_t)(sign | 0x7bff); /* 65504 */
	if (kind == 3)
		return (uint16_t)(sign | 1); /* 2^-24 */
	return (uint16_t)(sign | (uint16_t)((5 + rng_below(20)) << 10) | man);
}

/* Bits of a finite bf16 of mixed magnitude. */
static uint16_t rand_bf16_bits(void)
{
	return (uint16_t)(f2u(rand_mixed()) >> 16);
}

/* A scale for quantized weights: mostly typical (2^-12..2^-2), sometimes any finite f16. */
static uint16_t rand_scale_bits(void)
{
	if (rng_below(4) == 0)
		return rand_f16_bits();
	return (uint16_t)((rng_next() & 1) << 15 | (3 + rng_below(10)) << 10 | (rng_next() & 0x3ff));
}

/* One weight row of type t and n elements at dst, by type. */
static void rand_row(enum mu_dtype t, uint8_t *dst, size_t n)
{
	const struct mu_type_kernels *ref = mu_kernels_ref(t);
	switch (t) {
	case MU_DTYPE_F32:
		for (size_t i = 0; i < n; i++) {
			uint32_t u = f2u(rand_mixed());
			memcpy(dst + 4 * i, &u, 4);
		}
		return;
	case MU_DTYPE_F16:
		for (size_t i = 0; i < n; i++)
			le16_store(dst + 2 * i, rand_f16_bits());
		return;
	case MU_DTYPE_BF16:
		for (size_t i = 0; i < n; i++)
			le16_store(dst + 2 * i, rand_bf16_bits());
		return;
	case MU_DTYPE_Q8_0:
	case MU_DTYPE_Q4_0: {
		size_t bs = t == MU_DTYPE_Q8_0 ? 34 : 18;
		for (size_t b = 0; b < n / 32; b++) {
			uint8_t *blk = dst + b * bs;
			le16_store(blk, rand_scale_bits());
			uint32_t kind = rng_below(16);
			for (size_t i = 2; i < bs; i++) {
				if (kind == 0)
					blk[i] = 0x80; /* q8_0: all -128; q4_0: 0 and -8 */
				else if (kind == 1)
					blk[i] = t == MU_DTYPE_Q8_0 ? 0x7f : 0xff;
				else
					blk[i] = (uint8_t)rng_next();
			}
		}
		return;
	}
	default: {
		/* other types (K-quants) through their reference quantizer, which test_kquant checks */
		if (!ref->quantize_row) {
			memset(dst, 0, mu_dtype_row_size(t, n));
			return;
		}
		float *src = xmalloc(n * sizeof(float));
		for (size_t i = 0; i < n; i++)
			src[i] = ldexpf((float)((double)(rng_next() >> 11) * 0x1p-52 - 0.5), (int)rng_below(6) - 3);
		ref->quantize_row(src, dst, n);
		free(src);
		return;
	}
	}
}

/* An activation vector: mixed magnitudes, blocks of different scales (some of which make the
 * Q8_0 activation scale subnormal, huge or infinite), some blocks all zero. */
static void rand_act(float *x, size_t n, int finite_scales)
{
	float scale = 1.0f;
	int zero_block = 0;
	for (size_t i = 0; i < n; i++) {
		if (i % 32 == 0) {
			int e = finite_scales ? (int)rng_below(13) - 6 : (int)rng_below(60) - 30;
			scale = ldexpf(1.0f, e);
			zero_block = rng_below(16) == 0;
		}
		float v = rand_mixed();
		if (fabsf(v) > 0x1p30f || fabsf(v) < 0x1p-30f)
			v = v > 0 ? 0x1p-3f : -0x1p-2f; /* keep the activation moderate, scale does the rest */
		x[i] = zero_block ? 0.0f : v * scale;
	}
}

/* ---- the type loop ------------------------------------------------------------------------ */

static int is_float_type(enum mu_dtype t)
{
	return t == MU_DTYPE_F32 || t == MU_DTYPE_F16 || t == MU_DTYPE_BF16;
}

#define MAX_NT 9

/* Compares one path's kernels of type t with the reference for rows x n. */
static int check_shape(const struct mu_kernel_path *kp, enum mu_dtype t, size_t n, size_t rows)
{
	const struct mu_type_kernels *ref = mu_kernels_ref(t), *k = kp->type(t);
	const char *name = mu_dtype_get(t)->name;
	size_t rb = mu_dtype_row_size(t, n);
	size_t asz = mu_act_size(ref->act, n);
	/* activations with padding between them, the first one at an odd address (f32: a
	 * 4-byte one) */
	size_t apad = ref->act == MU_ACT_F32 ? 4 * (1 + rng_below(3)) : 1 + rng_below(40);
	size_t xs = asz + apad;
	size_t aoff = ref->act == MU_ACT_F32 ? 4 : 1 + rng_below(3);
	uint8_t *wbuf = xmalloc(rows * rb + 64);
	uint8_t *xbuf = xmalloc(MAX_NT * xs + 64);
	float *xf = xmalloc(n * sizeof(float));
	float *want = xmalloc(MAX_NT * rows * sizeof(float));
	size_t ldo = rows + 3;
	float *got = xmalloc(MAX_NT * ldo * sizeof(float));
	int bad = 0;

	uint8_t *w = wbuf;
	for (size_t r = 0; r < rows; r++)
		rand_row(t, w + r * rb, n);
	uint8_t *x = xbuf + aoff;
	for (size_t a = 0; a < MAX_NT; a++) {
		rand_act(xf, n, ref->act == MU_ACT_Q8_K); /* Q8_K: moderate scales */
		mu_act_prepare(ref->act, xf, x + a * xs, n);
	}
	for (size_t a = 0; a < MAX_NT; a++)
		ref->matvec(w, rb, x + a * xs, n, want + a * rows, 0, rows);

	/* matvec over the whole range */
	for (size_t a = 0; a < 3; a++) {
		memset(got, 0xff, rows * sizeof(float));
		k->matvec(w, rb, x + a * xs, n, got, 0, rows);
		if (memcmp(got, want + a * rows, rows * sizeof(float)) != 0) {
			bad++;
			for (size_t r = 0; r < rows; r++)
				if (!same_bits(got[r], want[a * rows + r])) {
					fprintf(stderr, "  %s %s n=%zu rows=%zu act %zu row %zu: %a, want %a\n",
						kp->name, name, n, rows, a, r, (double)got[r],
						(double)want[a * rows + r]);
					break;
				}
		}
	}
	/* splits of the rows */
	for (int trial = 0; trial < 3; trial++) {
		memset(got, 0xff, rows * sizeof(float));
		for (size_t r0 = 0; r0 < rows;) {
			size_t len = 1 + rng_below(trial == 0 ? 1 : (uint32_t)rows);
			size_t r1 = r0 + len > rows ? rows : r0 + len;
			k->matvec(w, rb, x, n, got, r0, r1);
			r0 = r1;
		}
		bad += memcmp(got, want, rows * sizeof(float)) != 0;
	}
	/* an empty range writes nothing */
	memset(got, 0xff, rows * sizeof(float));
	k->matvec(w, rb, x, n, got, rows / 2, rows / 2);
	for (size_t r = 0; r < rows; r++)
		bad += f2u(got[r]) != 0xffffffffu;
	/* weights at an odd address */
	uint8_t *wu = xmalloc(rows * rb + 4);
	size_t woff = 1 + rng_below(3);
	memcpy(wu + woff, w, rows * rb);
	k->matvec(wu + woff, rb, x, n, got, 0, rows);
	bad += memcmp(got, want, rows * sizeof(float)) != 0;

	/* matmul: nt = 1..9, a sub-range of rows, output stride ldo */
	for (size_t nt = 1; nt <= MAX_NT; nt++) {
		size_t r0 = rows > 2 ? rng_below((uint32_t)(rows / 2)) : 0;
		size_t r1 = rows - (rows > 2 ? rng_below((uint32_t)(rows / 3)) : 0);
		for (size_t i = 0; i < MAX_NT * ldo; i++)
			got[i] = u2f(0x7fc0dead);
		k->matmul(wu + woff, rb, x, xs, n, got, ldo, nt, r0, r1);
		int mm_bad = 0;
		for (size_t a = 0; a < MAX_NT; a++)
			for (size_t r = 0; r < ldo; r++) {
				int inside = a < nt && r >= r0 && r < r1;
				uint32_t g = f2u(got[a * ldo + r]);
				if (inside ? g != f2u(want[a * rows + r]) : g != 0x7fc0dead)
					mm_bad++;
			}
		if (mm_bad)
			fprintf(stderr, "  %s %s n=%zu rows=%zu matmul nt=%zu [%zu, %zu): %d elements wrong\n",
				kp->name, name, n, rows, nt, r0, r1, mm_bad);
		bad += mm_bad != 0;
	}

	free(wu); free(wbuf); free(xbuf); free(xf); free(want); free(got);
	return bad;
}

static void check_type(const struct mu_kernel_path *kp, enum mu_dtype t)
{
	const struct mu_type_kernels *ref = mu_kernels_ref(t), *k = kp->type(t);
	const char *name = mu_dtype_get(t)->name;
	CHECK(k != NULL, "%s: no %s kernels", kp->name, name);
	if (!k)
		return;
	/* row conversions are the reference's alone (kernels.h) */
	CHECK(k->act == ref->act && k->matvec && k->matmul && !k->dequant_row && !k->quantize_row,
	      "%s %s: table entry", kp->name, name);
	if (!is_float_type(t) && t != MU_DTYPE_Q8_0 && t != MU_DTYPE_Q4_0)
		CHECK(ref->quantize_row != NULL, "%s: the reference has no quantizer to make test rows", name);
	size_t block = mu_dtype_get(t)->block;
	size_t step = is_float_type(t) ? 1 : block;
	size_t last = is_float_type(t) ? 70 : block == 32 ? 2048 : 16 * block;
	int bad = 0, shapes = 0;
	for (size_t n = step; n <= last + (is_float_type(t) ? 1 : 0); n += step) {
		if (is_float_type(t) && n == 71)
			n = 2063; /* one long row with a tail */
		size_t rows = 1 + (n / step * 7 + 4) % 17; /* 1..17, mostly odd counts */
		bad += check_shape(kp, t, n, rows);
		shapes++;
	}
	if (is_float_type(t)) {
		static const size_t more[] = {96, 127, 128, 129, 255, 256, 257, 1000, 2048, 5632};
		for (size_t i = 0; i < sizeof more / sizeof more[0]; i++, shapes++)
			bad += check_shape(kp, t, more[i], 4 + i % 5);
	}
	if (t == MU_DTYPE_Q8_0 || t == MU_DTYPE_Q4_0) {
		/* the drivers' other ways (kernels_drive.h): a matmul over several blocks of rows
		 * (about 256 KiB of weights each); the longest rows whose activations are prepared
		 * once (matmul 8192 + a tail, matvec 32768 + a tail) and longer ones, prepared per
		 * tile */
		static const struct {
			size_t n, rows;
		} big[] = {{8192, 70}, {8224, 9}, {8704, 9}, {32800, 9}, {33280, 5}};
		for (size_t i = 0; i < sizeof big / sizeof big[0]; i++, shapes++)
			bad += check_shape(kp, t, big[i].n, big[i].rows);
	}
	CHECK(bad == 0, "%s %s: %d of %d shapes differ from the reference", kp->name, name, bad, shapes);
	printf("  %s %-5s %d shapes\n", kp->name, name, shapes);
}

/* ---- packed tables -------------------------------------------------------------------------
 * A path's packed kernels (kernels.h) read rows that pack_rows rewrote; on the same values they
 * must give the reference's bits: matvec over the rows and over splits of them, matmul with
 * nt = 1..9 and an output stride, and dequant_row (the embedding lookup) row by row. */
static int check_packed_shape(const struct mu_kernel_path *kp, enum mu_dtype t, size_t n, size_t rows)
{
	const struct mu_type_kernels *ref = mu_kernels_ref(t), *pk = kp->packed(t);
	const char *name = mu_dtype_get(t)->name;
	size_t rb = mu_dtype_row_size(t, n), asz = mu_act_size(ref->act, n), xs = asz + 1 + rng_below(40);
	size_t woff = rng_below(3), ldo = rows + 2;
	uint8_t *w = xmalloc(rows * rb), *wp = xmalloc(rows * rb + 4), *x = xmalloc(MAX_NT * xs);
	float *xf = xmalloc(n * sizeof(float)), *want = xmalloc(MAX_NT * rows * sizeof(float));
	float *got = xmalloc(MAX_NT * ldo * sizeof(float)), *d1 = xmalloc(n * sizeof(float)),
	      *d2 = xmalloc(n * sizeof(float));
	int bad = 0;
	for (size_t r = 0; r < rows; r++)
		rand_row(t, w + r * rb, n);
	for (size_t a = 0; a < MAX_NT; a++) {
		rand_act(xf, n, 0);
		mu_act_prepare(ref->act, xf, x + a * xs, n);
		ref->matvec(w, rb, x + a * xs, n, want + a * rows, 0, rows);
	}
	memcpy(wp + woff, w, rows * rb);
	pk->pack_rows(wp + woff, rb, n, rows);
	const uint8_t *W = wp + woff;
	bad += memcmp(W, w, rows * rb) == 0 && rows * rb > 0; /* packing changed the bytes */
	memset(got, 0xff, rows * sizeof(float));
	pk->matvec(W, rb, x, n, got, 0, rows);
	bad += memcmp(got, want, rows * sizeof(float)) != 0;
	memset(got, 0xff, rows * sizeof(float));
	for (size_t r0 = 0; r0 < rows;) {
		size_t r1 = r0 + 1 + rng_below((uint32_t)rows);
		r1 = r1 > rows ? rows : r1;
		pk->matvec(W, rb, x, n, got, r0, r1);
		r0 = r1;
	}
	bad += memcmp(got, want, rows * sizeof(float)) != 0;
	for (size_t nt = 1; nt <= MAX_NT; nt++) {
		size_t r0 = rows > 2 ? rng_below((uint32_t)(rows / 2)) : 0, r1 = rows;
		for (size_t i = 0; i < MAX_NT * ldo; i++)
			got[i] = u2f(0x7fc0dead);
		pk->matmul(W, rb, x, xs, n, got, ldo, nt, r0, r1);
		int mm_bad = 0;
		for (size_t a = 0; a < MAX_NT; a++)
			for (size_t r = 0; r < ldo; r++) {
				int inside = a < nt && r >= r0 && r < r1;
				uint32_t g = f2u(got[a * ldo + r]);
				mm_bad += inside ? g != f2u(want[a * rows + r]) : g != 0x7fc0dead;
			}
		if (mm_bad)
			fprintf(stderr, "  %s packed %s n=%zu rows=%zu matmul nt=%zu: %d elements wrong\n", kp->name, name,
				n, rows, nt, mm_bad);
		bad += mm_bad != 0;
	}
	for (size_t r = 0; r < rows; r++) {
		ref->dequant_row(w + r * rb, d1, n);
		pk->dequant_row(W + r * rb, d2, n);
		bad += memcmp(d1, d2, n * sizeof(float)) != 0;
	}
	if (bad)
		fprintf(stderr, "  %s packed %s n=%zu rows=%zu: %d checks failed\n", kp->name, name, n, rows, bad);
	free(w); free(wp); free(x); free(xf); free(want); free(got); free(d1); free(d2);
	return bad;
}

static void check_packed(const struct mu_kernel_path *kp)
{
	int any = 0;
	for (int ti = 0; ti < MU_DTYPE_COUNT; ti++) {
		enum mu_dtype t = (enum mu_dtype)ti;
		const struct mu_type_kernels *pk = mu_dtype_get((uint32_t)t) ? kp->packed(t) : NULL;
		if (!pk)
			continue;
		any = 1;
		const struct mu_type_kernels *k = kp->type(t);
		CHECK(pk->act == k->act && pk->matvec && pk->matmul && pk->dequant_row && pk->pack_rows && !pk->quantize_row,
		      "%s packed %s: table entry", kp->name, mu_dtype_get((uint32_t)t)->name);
		/* one to several groups of 16 blocks; row blocks of the matmul (n 8192, 70 rows); the
		 * longest rows whose activations are prepared once (65536) and longer ones (66048) */
		static const struct {
			size_t n, rows;
		} shapes[] = {{512, 1}, {512, 9}, {1024, 3}, {2048, 17}, {4096, 5}, {8192, 70}, {65536, 3}, {66048, 2}};
		int bad = 0;
		for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
			bad += check_packed_shape(kp, t, shapes[i].n, shapes[i].rows);
		CHECK(bad == 0, "%s packed %s: %d shapes differ from the reference", kp->name, mu_dtype_get((uint32_t)t)->name,
		      bad);
		printf("  %s packed %s: %zu shapes\n", kp->name, mu_dtype_get((uint32_t)t)->name,
		       sizeof shapes / sizeof shapes[0]);
	}
	if (!any)
		printf("  %s: no packed tables\n", kp->name);
}

/* ---- activations, dot, axpy ------------------------------------------------------------- */

/* Blocks of awkward input for Q8_0 activation quantization. */
static void special_act(float *x, size_t n)
{
	for (size_t b = 0; b < n / 32; b++) {
		float *v = x + b * 32;
		uint32_t kind = rng_below(10);
		for (int i = 0; i < 32; i++)
			v[i] = rand_mixed();
		switch (kind) {
		case 0: /* NaNs of both signs and other payloads */
			v[rng_below(32)] = u2f(0x7fc00000);
			v[rng_below(32)] = u2f(0xffc00000);
			v[rng_below(32)] = u2f(0x7f800001 + rng_below(1000));
			v[rng_below(32)] = u2f(0xff812345);
			break;
		case 1: /* infinities */
			v[rng_below(32)] = INFINITY;
			if (rng_below(2))
				v[rng_below(32)] = -INFINITY;
			break;
		case 2: /* all NaN */
			for (int i = 0; i < 32; i++)
				v[i] = u2f(0x7fc00000 | (uint32_t)i | (uint32_t)(i & 1) << 31);
			break;
		case 3: /* all tiny: d is subnormal and 1/d overflows */
			for (int i = 0; i < 32; i++)
				v[i] = u2f((uint32_t)(rng_next() & 0x800fffff));
			break;
		case 4: /* zeros of both signs */
			for (int i = 0; i < 32; i++)
				v[i] = u2f((uint32_t)(rng_next() & 1) << 31);
			break;
		case 5: /* huge values: d overflows f16 */
			for (int i = 0; i < 32; i++)
				v[i] = u2f((uint32_t)(rng_next() & 0x80000000) | (uint32_t)(250 + rng_below(4)) << 23 |
					   (uint32_t)(rng_next() & 0x7fffff));
			break;
		case 6: /* halves: ties to even */
			for (int i = 0; i < 32; i++)
				v[i] = (float)((int)rng_below(255) - 127) + (i % 2 ? 0.5f : 0.0f);
			v[0] = 127.0f;
			break;
		default:
			break;
		}
	}
}

static void test_act_prepare(const struct mu_kernel_path *kp)
{
	const struct mu_kernel_path *rp = mu_kpath_get(MU_KPATH_REF);
	int bad = 0, bad_f32 = 0, cases = 0;
	for (size_t n = 32; n <= 4096; n += n < 1024 ? 32 : 1024) {
		size_t asz = mu_act_size(MU_ACT_Q8_0, n);
		float *x = xmalloc(n * sizeof(float) + 4);
		uint8_t *a0 = xmalloc(asz + 1), *a1 = xmalloc(asz + 2);
		for (int trial = 0; trial < 4; trial++, cases++) {
			if (trial < 2)
				special_act(x, n);
			else
				rand_act(x, n, 0);
			rp->act_prepare(MU_ACT_Q8_0, x, a0, n);
			a1[asz + 1] = 0x5a;
			kp->act_prepare(MU_ACT_Q8_0, x, a1 + 1, n); /* at an odd address */
			if (memcmp(a0, a1 + 1, asz) != 0 || a1[asz + 1] != 0x5a) {
				bad++;
				for (size_t i = 0; i < asz; i++)
					if (a0[i] != a1[1 + i]) {
						fprintf(stderr, "  %s act q8_0 n=%zu byte %zu (block %zu): %02x, want %02x\n",
							kp->name, n, i, i / 34, a1[1 + i], a0[i]);
						break;
					}
			}
		}
		float *y = xmalloc(n * sizeof(float));
		kp->act_prepare(MU_ACT_F32, x, y, n);
		bad_f32 += memcmp(x, y, n * sizeof(float)) != 0;
		free(y);
		free(x);
		free(a0);
		free(a1);
	}
	CHECK(bad == 0, "%s: %d of %d Q8_0 activations differ from the reference's bytes", kp->name, bad, cases);
	CHECK(bad_f32 == 0, "%s: f32 activation is not a copy", kp->name);

	/* Q8_K (the K-quant activation): finite input */
	int bad_k = 0;
	for (size_t n = 256; n <= 4096; n += 256) {
		size_t asz = mu_act_size(MU_ACT_Q8_K, n);
		float *x = xmalloc(n * sizeof(float));
		uint8_t *a0 = xmalloc(asz), *a1 = xmalloc(asz);
		rand_act(x, n, 1);
		rp->act_prepare(MU_ACT_Q8_K, x, a0, n);
		kp->act_prepare(MU_ACT_Q8_K, x, a1, n);
		bad_k += memcmp(a0, a1, asz) != 0;
		free(x);
		free(a0);
		free(a1);
	}
	CHECK(bad_k == 0, "%s: %d Q8_K activations differ from the reference's bytes", kp->name, bad_k);
}

static void test_dot_axpy(const struct mu_kernel_path *kp)
{
	const struct mu_kernel_path *rp = mu_kpath_get(MU_KPATH_REF);
	enum { N = 2100 };
	float *a = xmalloc((N + 1) * sizeof(float)), *b = xmalloc((N + 1) * sizeof(float));
	float *y0 = xmalloc((N + 1) * sizeof(float)), *y1 = xmalloc((N + 1) * sizeof(float));
	float *vf = xmalloc((N + 1) * sizeof(float));
	uint8_t *vh = xmalloc(2 * N + 2);
	for (size_t i = 0; i <= N; i++) {
		a[i] = rand_mixed();
		b[i] = rand_mixed();
		vf[i] = rand_mixed();
		le16_store(vh + 2 * i, rand_f16_bits());
	}
	int bad_dot = 0, bad_axpy = 0;
	for (size_t n = 0; n <= N; n += n < 70 ? 1 : 129) {
		for (size_t off = 0; off < 2; off++) {
			float d0 = rp->dot_f32(a + off, b, n), d1 = kp->dot_f32(a + off, b, n);
			if (!same_bits(d0, d1)) {
				bad_dot++;
				fprintf(stderr, "  %s dot n=%zu: %a, want %a\n", kp->name, n, (double)d1, (double)d0);
			}
		}
		float s = rand_mixed();
		for (int vt = 0; vt < 2; vt++) {
			enum mu_dtype t = vt ? MU_DTYPE_F16 : MU_DTYPE_F32;
			const void *v = vt ? (const void *)(vh + 2) : (const void *)(vf + 1);
			memcpy(y0, b, (N + 1) * sizeof(float));
			memcpy(y1, b, (N + 1) * sizeof(float));
			rp->axpy(y0 + 1, s, v, t, n);
			kp->axpy(y1 + 1, s, v, t, n);
			bad_axpy += memcmp(y0, y1, (N + 1) * sizeof(float)) != 0;
		}
	}
	CHECK(bad_dot == 0, "%s: %d dot products differ from the reference", kp->name, bad_dot);
	CHECK(bad_axpy == 0, "%s: %d axpy results differ from the reference", kp->name, bad_axpy);
	CHECK(same_bits(kp->dot_f32(NULL, NULL, 0), 0.0f), "%s: empty dot is +0", kp->name);

	/* the lane order is visible: 2^24 in lane 0 and ones in lanes 1..15 give 2^24 + 14 */
	float w[16], ones[16];
	for (int i = 0; i < 16; i++) {
		w[i] = i == 0 ? 16777216.0f : 1.0f;
		ones[i] = 1.0f;
	}
	CHECK(same_bits(kp->dot_f32(w, ones, 16), 16777230.0f), "%s: lane order: %.1f", kp->name,
	      (double)kp->dot_f32(w, ones, 16));
	/* -0 products: the lanes start at +0 */
	float nz[3] = {-0.0f, -0.0f, -0.0f}, one3[3] = {1.0f, 1.0f, 1.0f};
	CHECK(same_bits(kp->dot_f32(nz, one3, 3), 0.0f), "%s: sum of -0 products is +0", kp->name);
	free(a); free(b); free(y0); free(y1); free(vf); free(vh);
}

/* The same order in a matvec: row of 2^24, 1 x 15 against ones; and a short last group that
 * must leave the other lanes alone. */
static void test_lane_order(const struct mu_kernel_path *kp)
{
	float w[33], x[33], out = 0;
	for (int i = 0; i < 33; i++) {
		w[i] = i == 0 ? 16777216.0f : 1.0f;
		x[i] = 1.0f;
	}
	kp->type(MU_DTYPE_F32)->matvec((const uint8_t *)w, sizeof w, x, 16, &out, 0, 1);
	CHECK(same_bits(out, 16777230.0f), "%s: matvec lane order %.1f", kp->name, (double)out);
	/* 17 elements: element 16 goes to lane 0 (2^24 + 1 rounds back to 2^24) */
	kp->type(MU_DTYPE_F32)->matvec((const uint8_t *)w, sizeof w, x, 17, &out, 0, 1);
	CHECK(same_bits(out, 16777230.0f), "%s: matvec lane 0 accumulation %.1f", kp->name, (double)out);
}

static void test_init(void)
{
	struct mu_error err = {0};
	CHECK(mu_kernels_init("bogus", &err) != MU_OK, "bogus kernel path accepted");
	CHECK(strstr(err.msg, "bogus") != NULL, "message names the path: %s", err.msg);
	CHECK(mu_kernels_init("ref", &err) == MU_OK && strcmp(mu_kernels()->name, "ref") == 0, "ref");
	for (int p = MU_KPATH_AVX2; p < MU_KPATH_COUNT; p++) {
		const char *name = p == MU_KPATH_AVX2 ? "avx2" : "avx512";
		CHECK(mu_kpath_from_name(name) == p, "name %s", name);
		enum mu_err rc = mu_kernels_init(name, &err);
		if (mu_kpath_missing((enum mu_kpath)p))
			CHECK(rc != MU_OK && strstr(err.msg, "unavailable") != NULL, "%s refused: %s", name, err.msg);
		else
			CHECK(rc == MU_OK && strcmp(mu_kernels()->name, name) == 0, "%s chosen", name);
	}
	CHECK(mu_kernels_init("auto", &err) == MU_OK, "auto");
}

int main(void)
{
	test_init();
	int ran = 0;
	for (int p = MU_KPATH_AVX2; p < MU_KPATH_COUNT; p++) {
		const struct mu_kernel_path *kp = mu_kpath_get((enum mu_kpath)p);
		const char *why = mu_kpath_missing((enum mu_kpath)p);
		if (!kp) {
			printf("skip path %d: %s\n", p, why ? why : "not built");
			continue;
		}
		ran++;
		printf("path %s\n", kp->name);
		for (int t = 0; t < MU_DTYPE_COUNT; t++) {
			if (!mu_dtype_get((uint32_t)t) || !mu_kernels_ref((enum mu_dtype)t))
				continue;
			check_type(kp, (enum mu_dtype)t);
		}
		for (int t = 0; t < MU_DTYPE_COUNT; t++)
			if (mu_dtype_get((uint32_t)t) && !mu_kernels_ref((enum mu_dtype)t))
				CHECK(kp->type((enum mu_dtype)t) == NULL, "%s: kernels for type %d that the reference lacks",
				      kp->name, t);
		check_packed(kp);
		test_act_prepare(kp);
		test_dot_axpy(kp);
		test_lane_order(kp);
	}
	printf("%d SIMD path(s) compared with the reference\n", ran);
	return test_done();
}
