/* test_kernels.c — the reference kernels against the canonical order, written again here.
 *
 * For every weight type with kernels (F32, F16, BF16, Q8_0, Q4_0):
 *  (a) matvec equals, bit for bit, a straightforward re-implementation of the canonical order
 *      (16 lanes, element or block i into lane i mod 16, pairwise fold) that decodes the
 *      blocks with its own code;
 *  (b) it is close to a double-precision dot of the dequantized weights and activations, within
 *      the rounding-error bound of the canonical order;
 *  (c) known answers for quantization and conversion (hand-computed blocks, ties, extremes,
 *      every f16/bf16 value);
 *  (d) any split of the rows into [r0, r1) ranges gives the same bits as the whole range, and
 *      an unaligned weight buffer gives the same bits as an aligned one.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/endian.h"
#include "engine/dtype.h"
#include "engine/kernels.h"
#include "test.h"
#include "testutil.h"



/* ---- deterministic random numbers (splitmix64) ---------------------------------------- */
static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng_next(void) { return splitmix64(&rng_state); }

static float rng_float(void) { return sym_unit(rng_next()); } /* [-1, 1) */

/* Values spread over several binades and blocks of different scales, with some exact zeros
 * and repeated values. */
static void fill_random(float *x, size_t n)
{
	float scale = 1.0f;
	for (size_t i = 0; i < n; i++) {
		if (i % 32 == 0)
			scale = ldexpf(1.0f, (int)(rng_next() % 9) - 4);
		uint64_t kind = rng_next() % 16;
		if (kind == 0)
			x[i] = 0.0f;
		else if (kind == 1 && i > 0)
			x[i] = -x[i - 1];
		else
			x[i] = scale * rng_float();
	}
}

/* ---- independent decoders --------------------------------------------------------------- */

/* f16 bits -> value by its definition: (-1)^s 2^(e-15) (1 + m/1024), subnormal m 2^-24. */
static float t_f16(uint16_t h)
{
	int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
	float v;
	if (e == 31)
		v = m ? NAN : INFINITY;
	else if (e == 0)
		v = ldexpf((float)m, -24);
	else
		v = ldexpf((float)(m + 1024), e - 25);
	return s ? -v : v;
}

static float t_bf16(uint16_t b) { return u2f((uint32_t)b << 16); }

/* Nearest f16 (ties to the even pattern) by searching the ordered table of f16 values. */
static float half_val[0x7c00];

static uint16_t t_to_f16(float x)
{
	uint16_t sign = signbit(x) ? 0x8000 : 0;
	double a = fabs((double)x);
	if (a >= 65520.0) /* 65504 + half an ulp (16) rounds to inf: 0x7bff is odd */
		return sign | 0x7c00;
	unsigned lo = 0, hi = 0x7bff; /* largest h with half_val[h] <= a */
	while (lo < hi) {
		unsigned mid = (lo + hi + 1) / 2;
		if ((double)half_val[mid] <= a)
			lo = mid;
		else
			hi = mid - 1;
	}
	unsigned h = lo;
	if (h < 0x7bff) {
		double dl = a - half_val[h], du = (double)half_val[h + 1] - a;
		if (du < dl || (du == dl && (h & 1)))
			h++;
	}
	return (uint16_t)(sign | h);
}

/* ---- the canonical order, written out plainly ------------------------------------------- */

static float canon_fold(float lane[16])
{
	for (int s = 8; s >= 1; s /= 2)
		for (int l = 0; l < s; l++)
			lane[l] += lane[l + s];
	return lane[0];
}

static float canon_dot(const float *w, const float *x, size_t n)
{
	float lane[16];
	for (int l = 0; l < 16; l++)
		lane[l] = 0.0f;
	for (size_t i = 0; i < n; i++)
		lane[i % 16] += w[i] * x[i];
	return canon_fold(lane);
}

/* Q8_0 activation rule with libm's rounding (nearbyintf rounds half to even). */
static void t_quantize_act(const float *x, size_t n, uint16_t *d16, int8_t *q)
{
	for (size_t b = 0; b < n / 32; b++) {
		float amax = 0.0f;
		for (int i = 0; i < 32; i++)
			amax = fmaxf(amax, fabsf(x[b * 32 + i]));
		float d = amax / 127.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		d16[b] = t_to_f16(d);
		for (int i = 0; i < 32; i++)
			q[b * 32 + i] = (int8_t)nearbyintf(x[b * 32 + i] * id);
	}
}

/* ggml's Q4_0 rule with libm's truncf and fminf. */
static void t_quantize_q4_0(const float *x, size_t n, uint8_t *out)
{
	for (size_t b = 0; b < n / 32; b++, out += 18) {
		const float *xb = x + b * 32;
		float amax = 0.0f, m = 0.0f;
		for (int i = 0; i < 32; i++) {
			if (fabsf(xb[i]) > amax) {
				amax = fabsf(xb[i]);
				m = xb[i];
			}
		}
		float d = m / -8.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		uint16_t h = t_to_f16(d);
		out[0] = (uint8_t)h;
		out[1] = (uint8_t)(h >> 8);
		for (int i = 0; i < 16; i++) {
			int lo = (int)fminf(15.0f, truncf(xb[i] * id + 8.5f));
			int hi = (int)fminf(15.0f, truncf(xb[i + 16] * id + 8.5f));
			out[2 + i] = (uint8_t)(lo | (hi << 4));
		}
	}
}

/* Weight row r decoded to floats by this file's own code. */
static void t_decode_row(enum mu_dtype t, const uint8_t *row, size_t n, float *w)
{
	for (size_t i = 0; i < n; i++) {
		switch (t) {
		case MU_DTYPE_F32: w[i] = u2f((uint32_t)row[4 * i] | (uint32_t)row[4 * i + 1] << 8 |
					      (uint32_t)row[4 * i + 2] << 16 | (uint32_t)row[4 * i + 3] << 24); break;
		case MU_DTYPE_F16: w[i] = t_f16(le16_load(row + 2 * i)); break;
		case MU_DTYPE_BF16: w[i] = t_bf16(le16_load(row + 2 * i)); break;
		case MU_DTYPE_Q8_0: {
			const uint8_t *blk = row + (i / 32) * 34;
			w[i] = t_f16(le16_load(blk)) * (float)(int8_t)blk[2 + i % 32];
			break;
		}
		case MU_DTYPE_Q4_0: {
			const uint8_t *blk = row + (i / 32) * 18;
			size_t j = i % 32;
			int q = j < 16 ? (blk[2 + j] & 15) : (blk[2 + j - 16] >> 4);
			w[i] = t_f16(le16_load(blk)) * (float)(q - 8);
			break;
		}
		default: break;
		}
	}
}

/* Quantized row times quantized activation, in the canonical order. */
static float canon_dot_quant(enum mu_dtype t, const uint8_t *row, size_t n, const uint16_t *xd,
			     const int8_t *xq)
{
	float lane[16];
	for (int l = 0; l < 16; l++)
		lane[l] = 0.0f;
	for (size_t b = 0; b < n / 32; b++) {
		int32_t isum = 0;
		float dw;
		if (t == MU_DTYPE_Q8_0) {
			const uint8_t *blk = row + b * 34;
			int32_t wq[32];
			dw = t_f16(le16_load(blk));
			for (int i = 0; i < 32; i++)
				wq[i] = (int8_t)blk[2 + i];
			for (int i = 0; i < 32; i++)
				isum += wq[i] * xq[b * 32 + i];
		} else {
			const uint8_t *blk = row + b * 18;
			dw = t_f16(le16_load(blk));
			for (int i = 0; i < 16; i++) {
				isum += ((blk[2 + i] & 15) - 8) * xq[b * 32 + i];
				isum += ((blk[2 + i] >> 4) - 8) * xq[b * 32 + 16 + i];
			}
		}
		lane[b % 16] += (float)isum * (dw * t_f16(xd[b]));
	}
	return canon_fold(lane);
}

/* ---- (a), (b), (d): matvec of one type and shape ----------------------------------------- */

static void check_matvec(enum mu_dtype t, size_t n, size_t rows)
{
	const struct mu_type_kernels *k = mu_kernels_ref(t);
	const char *name = mu_dtype_get(t)->name;
	size_t rb = mu_dtype_row_size(t, n);
	float *src = xmalloc(rows * n * sizeof(float));
	float *x = xmalloc(n * sizeof(float));
	uint8_t *w = xmalloc(rows * rb);
	uint8_t *wu = xmalloc(rows * rb + 1);
	float *wdec = xmalloc(n * sizeof(float));
	float *xdec = xmalloc(n * sizeof(float));
	float *out = xmalloc(rows * sizeof(float));
	float *out2 = xmalloc(rows * sizeof(float));
	size_t asz = mu_act_size(k->act, n);
	uint8_t *act = xmalloc(asz);
	uint16_t *xd = xmalloc((n / 32 + 1) * sizeof(uint16_t));
	int8_t *xq = xmalloc(n + 1);

	fill_random(src, rows * n);
	fill_random(x, n);
	for (size_t r = 0; r < rows; r++)
		k->quantize_row(src + r * n, w + r * rb, n);
	mu_act_prepare(k->act, x, act, n);

	/* the activation as the canonical order sees it */
	if (k->act == MU_ACT_Q8_0) {
		t_quantize_act(x, n, xd, xq);
		int same = 1;
		for (size_t b = 0; b < n / 32; b++) {
			same &= le16_load(act + 34 * b) == xd[b];
			same &= memcmp(act + 34 * b + 2, xq + 32 * b, 32) == 0;
			for (int i = 0; i < 32; i++)
				xdec[b * 32 + i] = t_f16(xd[b]) * (float)xq[b * 32 + i];
		}
		CHECK(same, "%s n=%zu: activation blocks differ from the Q8_0 rule", name, n);
	} else {
		CHECK(memcmp(act, x, n * sizeof(float)) == 0, "%s: f32 activation is a copy", name);
		memcpy(xdec, x, n * sizeof(float));
	}

	k->matvec(w, rb, act, n, out, 0, rows);

	int exact_bad = 0, close_bad = 0;
	double worst = 0;
	for (size_t r = 0; r < rows; r++) {
		t_decode_row(t, w + r * rb, n, wdec);
		float want = k->act == MU_ACT_Q8_0 ? canon_dot_quant(t, w + r * rb, n, xd, xq)
						   : canon_dot(wdec, xdec, n);
		if (!same_bits(out[r], want))
			exact_bad++;
		/* (b) |error| <= (steps of the longest lane chain + fold + product) * 2^-24 * sum|w x| */
		double ref = 0, mag = 0;
		for (size_t i = 0; i < n; i++) {
			ref += (double)wdec[i] * (double)xdec[i];
			mag += fabs((double)wdec[i] * (double)xdec[i]);
		}
		size_t chain = (k->act == MU_ACT_Q8_0 ? n / 32 : n) / 16 + 6;
		double err = fabs((double)out[r] - ref);
		if (err > (double)chain * 0x1p-24 * mag)
			close_bad++;
		if (mag > 0 && err / mag > worst)
			worst = err / mag;
	}
	CHECK(exact_bad == 0, "%s n=%zu rows=%zu: %d rows differ from the canonical order", name, n,
	      rows, exact_bad);
	CHECK(close_bad == 0, "%s n=%zu rows=%zu: %d rows outside the error bound (worst %g)", name, n,
	      rows, close_bad, worst);

	/* (d) every split of [0, rows) gives the same bits */
	for (int trial = 0; trial < 4; trial++) {
		memset(out2, 0xff, rows * sizeof(float));
		for (size_t r0 = 0; r0 < rows;) {
			size_t len = 1 + rng_next() % (trial == 0 ? 1 : rows);
			size_t r1 = r0 + len > rows ? rows : r0 + len;
			k->matvec(w, rb, act, n, out2, r0, r1);
			r0 = r1;
		}
		CHECK(memcmp(out, out2, rows * sizeof(float)) == 0, "%s n=%zu: split %d differs", name, n,
		      trial);
	}
	/* an empty range writes nothing */
	memcpy(out2, out, rows * sizeof(float));
	k->matvec(w, rb, act, n, out2, rows / 2, rows / 2);
	CHECK(memcmp(out, out2, rows * sizeof(float)) == 0, "%s: empty range wrote", name);
	/* weights at an odd address */
	memcpy(wu + 1, w, rows * rb);
	k->matvec(wu + 1, rb, act, n, out2, 0, rows);
	CHECK(memcmp(out, out2, rows * sizeof(float)) == 0, "%s n=%zu: unaligned weights differ", name, n);

	/* dequant_row agrees with the independent decoder */
	int deq_bad = 0;
	for (size_t r = 0; r < rows; r++) {
		k->dequant_row(w + r * rb, xdec, n);
		t_decode_row(t, w + r * rb, n, wdec);
		if (memcmp(xdec, wdec, n * sizeof(float)) != 0)
			deq_bad++;
	}
	CHECK(deq_bad == 0, "%s n=%zu: %d rows dequantize differently", name, n, deq_bad);

	free(src); free(x); free(w); free(wu); free(wdec); free(xdec); free(out); free(out2);
	free(act); free(xd); free(xq);
}

static void test_matvec_all(void)
{
	static const size_t float_n[] = {1, 2, 7, 15, 16, 17, 31, 32, 33, 64, 96, 100, 172, 256, 2048};
	static const size_t quant_n[] = {32, 64, 96, 480, 512, 544, 2048};
	static const size_t rows[] = {1, 7, 13, 33};
	static const enum mu_dtype ftypes[] = {MU_DTYPE_F32, MU_DTYPE_F16, MU_DTYPE_BF16};
	static const enum mu_dtype qtypes[] = {MU_DTYPE_Q8_0, MU_DTYPE_Q4_0};
	for (size_t t = 0; t < 3; t++)
		for (size_t i = 0; i < sizeof float_n / sizeof float_n[0]; i++)
			for (size_t r = 0; r < 4; r++)
				check_matvec(ftypes[t], float_n[i], rows[r]);
	for (size_t t = 0; t < 2; t++)
		for (size_t i = 0; i < sizeof quant_n / sizeof quant_n[0]; i++)
			for (size_t r = 0; r < 4; r++)
				check_matvec(qtypes[t], quant_n[i], rows[r]);
}

/* ---- dot, sumsq ------------------------------------------------------------------------- */

static void test_dot(void)
{
	float a[2100], b[2100];
	fill_random(a, 2100);
	fill_random(b, 2100);
	int bad = 0;
	for (size_t n = 0; n <= 2100; n += (n < 70 ? 1 : 97)) {
		if (!same_bits(mu_dot_f32(a, b, n), canon_dot(a, b, n)))
			bad++;
		if (!same_bits(mu_sumsq_f32(a, n), canon_dot(a, a, n)))
			bad++;
	}
	CHECK(bad == 0, "%d dot/sumsq results differ from the canonical order", bad);
	CHECK(same_bits(mu_dot_f32(a, b, 0), 0.0f), "empty dot is +0");
	CHECK(same_bits(mu_dot_f32(NULL, NULL, 0), 0.0f), "empty dot of NULL is +0");

	/* The order is visible: 2^24 in lane 0 and fifteen ones in lanes 1..15. Lane 8's 1 is
	 * lost against 2^24 at the first fold (ties to even); the others pair up first and
	 * survive: 2^24 + 14. A sequential sum would give 2^24. */
	float w[16], ones[16];
	for (int i = 0; i < 16; i++) {
		w[i] = i == 0 ? 16777216.0f : 1.0f;
		ones[i] = 1.0f;
	}
	CHECK(same_bits(mu_dot_f32(w, ones, 16), 16777230.0f), "lane order: %.1f",
	      (double)mu_dot_f32(w, ones, 16));
	/* element 16 shares lane 0 with element 0: 2^24 + 1 rounds back to 2^24 there */
	float w17[17] = {16777216.0f}, ones17[17];
	for (int i = 0; i < 17; i++)
		ones17[i] = 1.0f;
	w17[16] = 1.0f;
	CHECK(same_bits(mu_dot_f32(w17, ones17, 17), 16777216.0f), "lane 0 accumulation");
	/* -0 products: lanes start at +0, so the result is +0 */
	float nz[3] = {-0.0f, -0.0f, -0.0f}, one3[3] = {1.0f, 1.0f, 1.0f};
	CHECK(same_bits(mu_dot_f32(nz, one3, 3), 0.0f), "sum of -0 products is +0");
	float sq[5] = {1, 2, 3, 4, 5};
	CHECK(same_bits(mu_sumsq_f32(sq, 5), 55.0f), "sumsq 1..5");
}

/* ---- (c) known answers -------------------------------------------------------------------- */

static void test_q8_0_known(void)
{
	const struct mu_type_kernels *k = mu_kernels_ref(MU_DTYPE_Q8_0);
	float x[64];
	uint8_t blk[68];
	struct mu_block_q8_0 ab[2];

	/* all zeros: d = 0, every q = 0 */
	memset(x, 0, sizeof x);
	memset(blk, 0xaa, sizeof blk);
	k->quantize_row(x, blk, 32);
	int zeros = 1;
	for (int i = 0; i < 34; i++)
		zeros &= blk[i] == 0;
	CHECK(zeros, "zero block");

	/* a single maximum of 127: d = 1 (f16 0x3c00), q = 127 there */
	x[5] = 127.0f;
	k->quantize_row(x, blk, 32);
	CHECK(le16_load(blk) == 0x3c00, "d = %04x", le16_load(blk));
	CHECK((int8_t)blk[2 + 5] == 127 && blk[2] == 0 && blk[2 + 31] == 0, "single max");

	/* amax = 254 -> d = 2, id = 0.5: x*id = 1.5, 2.5, 3.5, -1.5, -2.5, 0.5, -0.5 -> ties to
	 * even: 2, 2, 4, -2, -2, 0, 0; and -254 gives -127 */
	static const float tie_x[] = {3.0f, 5.0f, 7.0f, -3.0f, -5.0f, 1.0f, -1.0f, -254.0f, 9.0f, 253.0f};
	static const int8_t tie_q[] = {2, 2, 4, -2, -2, 0, 0, -127, 4, 126};
	memset(x, 0, sizeof x);
	memcpy(x, tie_x, sizeof tie_x);
	k->quantize_row(x, blk, 32);
	CHECK(le16_load(blk) == 0x4000, "d = 2: %04x", le16_load(blk));
	int ties = 1;
	for (size_t i = 0; i < sizeof tie_q; i++)
		ties &= (int8_t)blk[2 + i] == tie_q[i];
	CHECK(ties, "ties round to even");

	/* the activation form is the same bytes */
	mu_quantize_q8_0(x, ab, 32);
	CHECK(memcmp(ab, blk, 34) == 0, "mu_quantize_q8_0 matches quantize_row");
	CHECK(mu_act_size(MU_ACT_Q8_0, 64) == 68 && mu_act_size(MU_ACT_Q8_0, 33) == 0, "act size");
	CHECK(mu_act_size(MU_ACT_F32, 10) == 40, "act size f32");

	/* dequantize: d * q */
	k->dequant_row(blk, x, 32);
	CHECK(x[0] == 4.0f && x[7] == -254.0f && x[9] == 252.0f && same_bits(x[5], 0.0f), "dequant");

	/* a hand-computed dot: weights d = 1, q = 1..32; activation d = 0.5, q = 1:
	 * isum = 528, term = 528 * 0.5 = 264 */
	uint8_t wrow[34];
	wrow[0] = 0x00;
	wrow[1] = 0x3c;
	for (int i = 0; i < 32; i++)
		wrow[2 + i] = (uint8_t)(i + 1);
	struct mu_block_q8_0 xa;
	xa.d = 0x3800; /* 0.5 */
	memset(xa.qs, 1, 32);
	float out = 0;
	k->matvec(wrow, 34, &xa, 32, &out, 0, 1);
	CHECK(out == 264.0f, "q8_0 dot = %g", (double)out);

	/* finite input never gives |q| > 127, also with tiny and huge values */
	float big[32];
	for (int i = 0; i < 32; i++)
		big[i] = i % 2 ? 3.0e38f : -1.0e-40f;
	k->quantize_row(big, blk, 32);
	CHECK((int8_t)blk[3] == 127 && (int8_t)blk[2] == 0, "huge/tiny block");
	/* activation error: |x - d q| <= ~0.56 d */
	float xr[2048];
	struct mu_block_q8_0 qb[64];
	fill_random(xr, 2048);
	mu_quantize_q8_0(xr, qb, 2048);
	int err_bad = 0;
	for (int b = 0; b < 64; b++) {
		float amax = 0;
		for (int i = 0; i < 32; i++)
			amax = fmaxf(amax, fabsf(xr[b * 32 + i]));
		float d = t_f16(qb[b].d);
		for (int i = 0; i < 32; i++)
			if (fabsf(xr[b * 32 + i] - d * (float)qb[b].qs[i]) > 0.57f * amax / 127.0f)
				err_bad++;
	}
	CHECK(err_bad == 0, "%d activation values quantized too far", err_bad);
}

static void test_q4_0_known(void)
{
	const struct mu_type_kernels *k = mu_kernels_ref(MU_DTYPE_Q4_0);
	float x[32], y[32];
	uint8_t blk[18];

	/* m = -8 (the most negative value has the largest magnitude): d = 1, q = x + 8 for
	 * x = -8..7, 7.9 -> trunc(16.4) = 16 -> 15 */
	for (int i = 0; i < 16; i++)
		x[i] = (float)(i - 8);
	for (int i = 16; i < 32; i++)
		x[i] = (float)(i - 16 - 8) + 0.25f;
	x[31] = 7.9f;
	k->quantize_row(x, blk, 32);
	CHECK(le16_load(blk) == 0x3c00, "d = %04x", le16_load(blk));
	int ok = 1;
	for (int i = 0; i < 16; i++) {
		int lo = blk[2 + i] & 15, hi = blk[2 + i] >> 4;
		ok &= lo == i;                          /* x = i - 8 -> q = i */
		ok &= hi == (i == 15 ? 15 : i);         /* x = i - 8 + 0.25 -> trunc(i + 0.75) */
	}
	CHECK(ok, "q4_0 nibbles 0..15");
	k->dequant_row(blk, y, 32);
	CHECK(y[0] == -8.0f && y[15] == 7.0f && y[16] == -8.0f && y[31] == 7.0f, "q4_0 dequant");

	/* m = +8: d = -1, id = -1: x = 8 -> 0.5 -> 0; x = -8 -> 16.5 -> 15; x = 0 -> 8 */
	memset(x, 0, sizeof x);
	x[0] = 8.0f;
	x[1] = -8.0f;
	x[17] = 3.0f;
	k->quantize_row(x, blk, 32);
	CHECK(le16_load(blk) == 0xbc00, "d = %04x", le16_load(blk));
	CHECK(blk[2] == (0 | (8 << 4)) && blk[3] == (15 | (5 << 4)) && blk[4] == (8 | (8 << 4)),
	      "q4_0 positive max: %02x %02x %02x", blk[2], blk[3], blk[4]);

	/* ties of magnitude: the first one wins */
	memset(x, 0, sizeof x);
	x[0] = -4.0f;
	x[3] = 4.0f;
	k->quantize_row(x, blk, 32);
	CHECK(le16_load(blk) == 0x3800, "first of -4/+4: d = %04x", le16_load(blk));
	x[0] = 4.0f;
	x[3] = -4.0f;
	k->quantize_row(x, blk, 32);
	CHECK(le16_load(blk) == 0xb800, "first of +4/-4: d = %04x", le16_load(blk));

	/* all zeros: m = 0, d = 0 / -8 = -0 (f16 0x8000, as ggml stores it), q = trunc(8.5) = 8 */
	memset(x, 0, sizeof x);
	k->quantize_row(x, blk, 32);
	ok = le16_load(blk) == 0x8000;
	for (int i = 0; i < 16; i++)
		ok &= blk[2 + i] == 0x88;
	CHECK(ok, "q4_0 zero block");

	/* random blocks equal an independent implementation of the rule */
	float r[512];
	uint8_t got[16 * 18], want[16 * 18];
	int bad = 0;
	for (int trial = 0; trial < 50; trial++) {
		fill_random(r, 512);
		k->quantize_row(r, got, 512);
		t_quantize_q4_0(r, 512, want);
		bad += memcmp(got, want, sizeof got) != 0;
	}
	CHECK(bad == 0, "%d random q4_0 rows differ from the rule", bad);

	/* Q4_0 times Q8_0 by hand: weights d = 1, q = 0..15 low, 15..0 high (values -8..7, 7..-8);
	 * activation d = 1, q = 1: isum = sum(-8..7) + sum(7..-8) = -16 */
	uint8_t wrow[18] = {0x00, 0x3c};
	for (int i = 0; i < 16; i++)
		wrow[2 + i] = (uint8_t)(i | ((15 - i) << 4));
	struct mu_block_q8_0 xa;
	xa.d = 0x3c00;
	memset(xa.qs, 1, 32);
	float out = 0;
	k->matvec(wrow, 18, &xa, 32, &out, 0, 1);
	CHECK(out == -16.0f, "q4_0 dot = %g", (double)out);
}

static void test_f16_bf16(void)
{
	const struct mu_type_kernels *kh = mu_kernels_ref(MU_DTYPE_F16);
	const struct mu_type_kernels *kb = mu_kernels_ref(MU_DTYPE_BF16);
	for (unsigned h = 0; h < 0x7c00; h++)
		half_val[h] = t_f16((uint16_t)h);

	/* every f16 and bf16 pattern: widen exactly, narrow back to itself (NaNs stay NaN) */
	static uint8_t bytes[65536 * 2], back[65536 * 2];
	static float vals[65536];
	for (unsigned i = 0; i < 65536; i++) {
		bytes[2 * i] = (uint8_t)i;
		bytes[2 * i + 1] = (uint8_t)(i >> 8);
	}
	int bad_h = 0, bad_b = 0;
	kh->dequant_row(bytes, vals, 65536);
	kh->quantize_row(vals, back, 65536);
	for (unsigned i = 0; i < 65536; i++) {
		float want = t_f16((uint16_t)i);
		if (isnan(want)) {
			bad_h += !isnan(vals[i]) || (le16_load(back + 2 * i) & 0x7fff) <= 0x7c00;
			continue;
		}
		bad_h += !same_bits(vals[i], want) || le16_load(back + 2 * i) != i;
	}
	kb->dequant_row(bytes, vals, 65536);
	kb->quantize_row(vals, back, 65536);
	for (unsigned i = 0; i < 65536; i++) {
		if (isnan(t_bf16((uint16_t)i))) {
			bad_b += !isnan(vals[i]) || (le16_load(back + 2 * i) & 0x7fff) <= 0x7f80;
			continue;
		}
		bad_b += !same_bits(vals[i], t_bf16((uint16_t)i)) || le16_load(back + 2 * i) != i;
	}
	CHECK(bad_h == 0, "%d f16 patterns do not round-trip", bad_h);
	CHECK(bad_b == 0, "%d bf16 patterns do not round-trip", bad_b);

	/* narrowing: nearest, ties to even */
	static const struct { float x; uint16_t h; } f16_kat[] = {
		{1.0f, 0x3c00}, {-2.0f, 0xc000}, {65504.0f, 0x7bff}, {65519.0f, 0x7bff},
		{65520.0f, 0x7c00}, {1e10f, 0x7c00}, {-INFINITY, 0xfc00},
		{1.0f + 0x1p-11f, 0x3c00},            /* tie -> even */
		{1.0f + 3 * 0x1p-11f, 0x3c02},        /* tie -> even (up) */
		{0x1p-24f, 0x0001}, {0x1p-25f, 0x0000}, /* tie at the smallest subnormal -> 0 */
		{3 * 0x1p-25f, 0x0002}, {0x1.8p-25f * 1.0001f, 0x0001}, {-0.0f, 0x8000},
		{0x1p-14f, 0x0400}, {0x1.ffcp-15f, 0x0400}, /* tie: up into the normals */
		{0x1.ff8p-15f, 0x03ff},
		{0.1f, 0x2e66}, {-0.333333f, 0xb555},
	};
	uint8_t hb[2];
	int kat_bad = 0;
	for (size_t i = 0; i < sizeof f16_kat / sizeof f16_kat[0]; i++) {
		kh->quantize_row(&f16_kat[i].x, hb, 1);
		if (le16_load(hb) != f16_kat[i].h) {
			kat_bad++;
			fprintf(stderr, "f16(%a) = %04x, want %04x\n", (double)f16_kat[i].x, le16_load(hb),
				f16_kat[i].h);
		}
	}
	static const struct { float x; uint16_t b; } bf16_kat[] = {
		{1.0f, 0x3f80}, {1.0f + 0x1p-8f, 0x3f80}, {1.0f + 3 * 0x1p-8f, 0x3f82},
		{1.0f + 0x1p-8f + 0x1p-20f, 0x3f81}, {-2.5f, 0xc020}, {3.4e38f, 0x7f80},
		{0x1p-133f, 0x0001}, {-INFINITY, 0xff80},
	};
	for (size_t i = 0; i < sizeof bf16_kat / sizeof bf16_kat[0]; i++) {
		kb->quantize_row(&bf16_kat[i].x, hb, 1);
		if (le16_load(hb) != bf16_kat[i].b) {
			kat_bad++;
			fprintf(stderr, "bf16(%a) = %04x, want %04x\n", (double)bf16_kat[i].x, le16_load(hb),
				bf16_kat[i].b);
		}
	}
	CHECK(kat_bad == 0, "%d f16/bf16 narrowing answers wrong", kat_bad);
	float nan_in = NAN;
	kh->quantize_row(&nan_in, hb, 1);
	CHECK((le16_load(hb) & 0x7c00) == 0x7c00 && (le16_load(hb) & 0x3ff) != 0, "f16(nan) is nan");

	/* random floats narrow to the nearest f16 (independent search) */
	int near_bad = 0;
	for (int i = 0; i < 200000; i++) {
		float v = ldexpf(rng_float(), (int)(rng_next() % 44) - 28);
		kh->quantize_row(&v, hb, 1);
		near_bad += le16_load(hb) != t_to_f16(v);
	}
	CHECK(near_bad == 0, "%d random f16 narrowings are not the nearest", near_bad);
}

/* ---- golden results ----------------------------------------------------------------------
 * A fixed workload per type (its own random stream), hashed (FNV-1a over the bytes of the
 * quantized weights, the activation and the outputs). Every compiler, optimization level and
 * machine must print the same values: a change here means the canonical arithmetic changed. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static void test_golden(void)
{
	static const struct { enum mu_dtype t; uint64_t want; } golden[] = {
		{MU_DTYPE_F32, 0x2ec0153674d2d29eull},
		{MU_DTYPE_F16, 0x410b42adee7ceb40ull},
		{MU_DTYPE_BF16, 0x46c6b9fda2f94fe8ull},
		{MU_DTYPE_Q8_0, 0x68a6edc7f1b92944ull},
		{MU_DTYPE_Q4_0, 0xc3835f51e0e57112ull},
	};
	const size_t n = 1024, rows = 48;
	float *src = xmalloc(rows * n * sizeof(float)), *x = xmalloc(n * sizeof(float));
	float *out = xmalloc(rows * sizeof(float));
	for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++) {
		const struct mu_type_kernels *k = mu_kernels_ref(golden[g].t);
		size_t rb = mu_dtype_row_size(golden[g].t, n), asz = mu_act_size(k->act, n);
		uint8_t *w = xmalloc(rows * rb), *act = xmalloc(asz);
		rng_state = 0x13198a2e03707344ull + g;
		fill_random(src, rows * n);
		fill_random(x, n);
		for (size_t r = 0; r < rows; r++)
			k->quantize_row(src + r * n, w + r * rb, n);
		mu_act_prepare(k->act, x, act, n);
		k->matvec(w, rb, act, n, out, 0, rows);
		uint64_t h = fnv1a(0xcbf29ce484222325ull, w, rows * rb);
		h = fnv1a(h, act, asz);
		h = fnv1a(h, out, rows * sizeof(float));
		printf("golden %-5s %016llx\n", mu_dtype_get(golden[g].t)->name, (unsigned long long)h);
		CHECK(h == golden[g].want, "%s: golden hash changed", mu_dtype_get(golden[g].t)->name);
		free(w);
		free(act);
	}
	free(src);
	free(x);
	free(out);
}

static void test_table(void)
{
	static const enum mu_dtype with[] = {MU_DTYPE_F32, MU_DTYPE_F16, MU_DTYPE_BF16,
					     MU_DTYPE_Q8_0, MU_DTYPE_Q4_0};
	static const enum mu_act_kind act[] = {MU_ACT_F32, MU_ACT_F32, MU_ACT_F32, MU_ACT_Q8_0,
					       MU_ACT_Q8_0};
	for (size_t i = 0; i < 5; i++) {
		const struct mu_type_kernels *k = mu_kernels_ref(with[i]);
		CHECK(k && k->matvec && k->dequant_row && k->quantize_row && k->act == act[i],
		      "kernels for type %d", (int)with[i]);
		CHECK(mu_dtype_get(with[i])->computable, "type %d is computable", (int)with[i]);
	}
	static const enum mu_dtype kq[] = {MU_DTYPE_Q4_K, MU_DTYPE_Q5_K, MU_DTYPE_Q6_K};
	for (size_t i = 0; i < 3; i++) {
		const struct mu_type_kernels *k = mu_kernels_ref(kq[i]);
		CHECK(k && k->matvec && k->matmul && k->dequant_row && k->quantize_row && k->act == MU_ACT_Q8_K,
		      "K-quant kernels for type %d", (int)kq[i]);
		CHECK(mu_dtype_get(kq[i])->computable, "type %d is computable", (int)kq[i]);
	}
	static const enum mu_dtype without[] = {MU_DTYPE_Q4_1, MU_DTYPE_Q5_0, MU_DTYPE_Q5_1,
						MU_DTYPE_Q8_1, MU_DTYPE_Q2_K, MU_DTYPE_Q3_K,
						MU_DTYPE_Q8_K, MU_DTYPE_I8, MU_DTYPE_F64, (enum mu_dtype)4};
	for (size_t i = 0; i < sizeof without / sizeof without[0]; i++)
		CHECK(mu_kernels_ref(without[i]) == NULL, "no kernels for type %d", (int)without[i]);
}

int main(void)
{
	test_f16_bf16(); /* fills half_val, used by the independent f16 narrowing */
	test_table();
	test_dot();
	test_q8_0_known();
	test_q4_0_known();
	test_matvec_all();
	test_golden();
	return test_done();
}
