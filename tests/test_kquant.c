/* test_kquant.c — the K-quant kernels (Q4_K, Q5_K, Q6_K) and Q8_K activations.
 *
 *  (a) known answers for hand-built blocks: the 6-bit scale/min unpacking, every quant
 *      position of each layout, small dot products worked out by hand, Q8_K activation bytes
 *      (ties, zero, NaN and infinite blocks);
 *  (b) the reference matvec equals, bit for bit, a plain re-implementation of the canonical
 *      order written here from docs/determinism.md with its own block decoder, and lies within
 *      a rounding-error bound of a double-precision dot of the dequantized operands;
 *  (c) row splits, unaligned weights and activations, matmul == matvec for every element;
 *  (d) the weight quantizers follow their documented rules (an independent implementation
 *      with libm's rounding) and reconstruct random data well within a quantization step;
 *  (e) every SIMD path this CPU has gives the reference's bits for matvec, matmul
 *      and the activation quantizer (paths the CPU lacks are skipped, saying why);
 *  (f) golden hashes of a fixed workload per type.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/endian.h"
#include "engine/dtype.h"
#include "engine/kernels.h"
#include "engine/kernels_impl.h"
#include "test.h"
#include "testutil.h"



static const enum mu_dtype ktypes[3] = {MU_DTYPE_Q4_K, MU_DTYPE_Q5_K, MU_DTYPE_Q6_K};
static const char *tname(enum mu_dtype t) { return mu_dtype_get(t)->name; }
static size_t bbytes(enum mu_dtype t) { return mu_dtype_get(t)->size; }

/* ---- deterministic random numbers (splitmix64) ---------------------------------------- */
static uint64_t rng_state = 0x452821e638d01377ull;

static uint64_t rng_next(void) { return splitmix64(&rng_state); }

static float rng_float(void) { return sym_unit(rng_next()); } /* [-1, 1) */

/* Values over several binades, blocks of 16 with different scales and offsets, some exact
 * zeros and repeats. */
static void fill_random(float *x, size_t n)
{
	float scale = 1.0f, shift = 0.0f;
	for (size_t i = 0; i < n; i++) {
		if (i % 16 == 0) {
			scale = ldexpf(1.0f, (int)(rng_next() % 9) - 4);
			shift = rng_next() % 4 == 0 ? scale * rng_float() : 0.0f;
		}
		uint64_t kind = rng_next() % 16;
		if (kind == 0)
			x[i] = 0.0f;
		else if (kind == 1 && i > 0)
			x[i] = -x[i - 1];
		else
			x[i] = scale * rng_float() + shift;
	}
}

static void fill_bytes(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rng_next();
}

/* A random finite f16 (exponent field below 31) of moderate size. */
static uint16_t rng_f16(void)
{
	uint16_t e = (uint16_t)(5 + rng_next() % 20); /* 2^-10 .. 2^9 */
	return (uint16_t)((rng_next() & 0x8000) | (e << 10) | (rng_next() & 0x3ff));
}

/* Random weight blocks: every byte random, except that the f16 scales are finite (so no NaN
 * whose payload would depend on operand order). */
static void fill_random_blocks(enum mu_dtype t, uint8_t *w, size_t nblocks)
{
	size_t bb = bbytes(t);
	fill_bytes(w, nblocks * bb);
	for (size_t b = 0; b < nblocks; b++) {
		uint8_t *blk = w + b * bb;
		if (t == MU_DTYPE_Q6_K) {
			le16_store(blk + 208, rng_f16());
		} else {
			le16_store(blk, rng_f16());
			le16_store(blk + 2, rng_f16());
		}
	}
}

/* A random Q8_K activation: random quants over the whole int8 range (-128 included), a random
 * positive scale, consistent bsums. */
static void fill_random_act(uint8_t *a, size_t nb)
{
	for (size_t b = 0; b < nb; b++, a += 292) {
		lef32_store(a, ldexpf(1.0f + (float)(rng_next() % 1024) / 1024.0f, (int)(rng_next() % 12) - 14));
		fill_bytes(a + 4, 256);
		if (rng_next() % 4 == 0) /* extremes */
			for (int i = 0; i < 256; i++)
				a[4 + i] = (uint8_t)(i % 3 ? 127 : -127);
		for (int g = 0; g < 16; g++) {
			int s = 0;
			for (int i = 0; i < 16; i++)
				s += (int8_t)a[4 + 16 * g + i];
			le16_store(a + 260 + 2 * g, (uint16_t)(int16_t)s);
		}
	}
}

/* ---- independent decoders, written from the format description in dtype.h ------------- */

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

/* Q4_K/Q5_K: scale and min of sub-block j from the 12 packed bytes. */
static void t_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
	if (j < 4) {
		*sc = s[j] & 63;
		*m = s[j + 4] & 63;
	} else {
		*sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
		*m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
	}
}

/* The quant of element i of a block (0..15, 0..31 or 0..63). */
static int t_quant(enum mu_dtype t, const uint8_t *blk, int i)
{
	if (t == MU_DTYPE_Q6_K) {
		int h = i / 128, r = i % 128, l = r % 32;
		const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
		switch (r / 32) {
		case 0: return (ql[l] & 15) | (((qh[l] >> 0) & 3) << 4);
		case 1: return (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4);
		case 2: return (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
		default: return (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
		}
	}
	const uint8_t *qs = blk + (t == MU_DTYPE_Q5_K ? 48 : 16);
	int c = i / 64, l = i % 32, upper = (i % 64) >= 32;
	int q = upper ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 15;
	if (t == MU_DTYPE_Q5_K)
		q += ((blk[16 + l] >> (2 * c + upper)) & 1) ? 16 : 0;
	return q;
}

/* Writes quant q of element i (the inverse of t_quant; the block's quant bytes start zeroed). */
static void t_put_quant(enum mu_dtype t, uint8_t *blk, int i, int q)
{
	if (t == MU_DTYPE_Q6_K) {
		int h = i / 128, r = i % 128, l = r % 32, part = r / 32;
		uint8_t *ql = blk + 64 * h + l + ((part == 1 || part == 3) ? 32 : 0);
		*ql = (uint8_t)(*ql | ((q & 15) << (part >= 2 ? 4 : 0)));
		blk[128 + 32 * h + l] = (uint8_t)(blk[128 + 32 * h + l] | ((q >> 4) << (2 * part)));
		return;
	}
	uint8_t *qs = blk + (t == MU_DTYPE_Q5_K ? 48 : 16);
	int c = i / 64, l = i % 32, upper = (i % 64) >= 32;
	qs[32 * c + l] = (uint8_t)(qs[32 * c + l] | ((q & 15) << (upper ? 4 : 0)));
	if (t == MU_DTYPE_Q5_K && (q & 16))
		blk[16 + l] = (uint8_t)(blk[16 + l] | (1 << (2 * c + upper)));
}

/* The integer scale of element i's sub-block (and its min for Q4_K/Q5_K). */
static int t_scale(enum mu_dtype t, const uint8_t *blk, int i, int *m)
{
	if (t == MU_DTYPE_Q6_K) {
		*m = 0;
		return (int8_t)blk[192 + i / 16];
	}
	int sc;
	t_scale_min(blk + 4, i / 32, &sc, m);
	return sc;
}

/* Dequantization in the documented order. */
static float t_dequant(enum mu_dtype t, const uint8_t *blk, int i)
{
	int m, sc = t_scale(t, blk, i, &m), q = t_quant(t, blk, i);
	if (t == MU_DTYPE_Q6_K)
		return (t_f16(le16_load(blk + 208)) * (float)sc) * (float)(q - 32);
	return (t_f16(le16_load(blk)) * (float)sc) * (float)q - t_f16(le16_load(blk + 2)) * (float)m;
}

/* ---- the canonical order, written out plainly ------------------------------------------- */

static float canon_fold(float lane[16])
{
	for (int s = 8; s >= 1; s /= 2)
		for (int l = 0; l < s; l++)
			lane[l] += lane[l + s];
	return lane[0];
}

/* Per block b: the exact integer sums (in 64 bits, checked against the int32 bounds the
 * document states) and the term. mag collects sum |isum a| + |msum c| for the error bound. */
static int64_t max_isum[3], max_msum[3];

static float canon_dot(enum mu_dtype t, const uint8_t *row, const uint8_t *act, size_t nb,
		       double *mag)
{
	int k = t == MU_DTYPE_Q4_K ? 0 : t == MU_DTYPE_Q5_K ? 1 : 2;
	float lane[16];
	for (int l = 0; l < 16; l++)
		lane[l] = 0.0f;
	*mag = 0;
	for (size_t b = 0; b < nb; b++) {
		const uint8_t *blk = row + b * bbytes(t), *xb = act + b * 292;
		int64_t isum = 0, msum = 0;
		for (int i = 0; i < 256; i++) {
			int m, sc = t_scale(t, blk, i, &m), q = t_quant(t, blk, i);
			int qx = (int8_t)xb[4 + i];
			isum += (int64_t)sc * (t == MU_DTYPE_Q6_K ? q - 32 : q) * qx;
		}
		if (t != MU_DTYPE_Q6_K)
			for (int j = 0; j < 8; j++) {
				int sc, m;
				t_scale_min(blk + 4, j, &sc, &m);
				msum += (int64_t)m * ((int16_t)le16_load(xb + 260 + 4 * j) + (int16_t)le16_load(xb + 262 + 4 * j));
			}
		if (llabs(isum) > max_isum[k])
			max_isum[k] = llabs(isum);
		if (llabs(msum) > max_msum[k])
			max_msum[k] = llabs(msum);
		float dx = lef32_load(xb), term;
		if (t == MU_DTYPE_Q6_K) {
			float a = t_f16(le16_load(blk + 208)) * dx;
			term = (float)(int32_t)isum * a;
			*mag += fabs((double)term);
		} else {
			float a = t_f16(le16_load(blk)) * dx, c = t_f16(le16_load(blk + 2)) * dx;
			float pi = (float)(int32_t)isum * a, pm = (float)(int32_t)msum * c;
			term = pi - pm;
			*mag += fabs((double)pi) + fabs((double)pm);
		}
		lane[b % 16] += term;
	}
	return canon_fold(lane);
}

/* The Q8_K activation rule with libm's rounding (nearbyintf: half to even). Finite input. */
static void t_quantize_act(const float *x, size_t n, uint8_t *out)
{
	for (size_t b = 0; b < n / 256; b++, out += 292) {
		float amax = 0.0f;
		for (int i = 0; i < 256; i++)
			amax = fmaxf(amax, fabsf(x[b * 256 + i]));
		float d = amax / 127.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		lef32_store(out, d);
		for (int g = 0; g < 16; g++) {
			int s = 0;
			for (int i = 16 * g; i < 16 * g + 16; i++) {
				int q = (int)nearbyintf(x[b * 256 + i] * id);
				out[4 + i] = (uint8_t)(int8_t)q;
				s += q;
			}
			le16_store(out + 260 + 2 * g, (uint16_t)(int16_t)s);
		}
	}
}

/* ---- (a) known answers -------------------------------------------------------------------- */

static void test_scale_unpack(void)
{
	/* worked out by hand from the rule in dtype.h */
	static const uint8_t s[12] = {0x41, 0x82, 0xc3, 0x3f, 0x07, 0x48, 0x89, 0xca, 0x21, 0x43, 0x65, 0x87};
	static const int want_sc[8] = {1, 2, 3, 63, 17, 35, 53, 7};
	static const int want_m[8] = {7, 8, 9, 10, 2, 20, 38, 56};
	int ok = 1;
	for (int j = 0; j < 8; j++) {
		int sc, m;
		t_scale_min(s, j, &sc, &m);
		ok &= sc == want_sc[j] && m == want_m[j];
	}
	CHECK(ok, "the test's own unpacking agrees with the hand-worked values");

	/* Through the kernels: a Q4_K and a Q5_K block with d = 1, dmin = 1, those scales and every
	 * quant 1 (Q5_K: 17) dequantize to sc_j * q - m_j. */
	for (int five = 0; five < 2; five++) {
		enum mu_dtype t = five ? MU_DTYPE_Q5_K : MU_DTYPE_Q4_K;
		const struct mu_type_kernels *k = mu_kq_ref(t);
		uint8_t blk[176];
		float y[256];
		memset(blk, 0, sizeof blk);
		le16_store(blk, 0x3c00);
		le16_store(blk + 2, 0x3c00);
		memcpy(blk + 4, s, 12);
		for (int i = 0; i < 256; i++)
			t_put_quant(t, blk, i, five ? 17 : 1);
		k->dequant_row(blk, y, 256);
		int bad = 0;
		for (int i = 0; i < 256; i++)
			bad += y[i] != (float)(want_sc[i / 32] * (five ? 17 : 1) - want_m[i / 32]);
		CHECK(bad == 0, "%s: %d values differ from sc_j * q - m_j", tname(t), bad);

		/* the dot with an activation of d = 1, every quant 1 (bsums 16):
		 * isum = 32 q sum(sc) = 32 * 181 q, msum = 32 * sum(m) = 32 * 150 */
		uint8_t act[292];
		lef32_store(act, 1.0f);
		memset(act + 4, 1, 256);
		for (int g = 0; g < 16; g++)
			le16_store(act + 260 + 2 * g, 16);
		float out = 0;
		k->matvec(blk, bbytes(t), act, 256, &out, 0, 1);
		float want = (float)(32 * 181 * (five ? 17 : 1) - 32 * 150);
		CHECK(out == want, "%s hand dot = %g, want %g", tname(t), (double)out, (double)want);
		/* d = 0.5, dmin = 0.25, dx = 2: a = 1, c = 0.5 */
		le16_store(blk, 0x3800);
		le16_store(blk + 2, 0x3400);
		lef32_store(act, 2.0f);
		k->matvec(blk, bbytes(t), act, 256, &out, 0, 1);
		want = (float)(32 * 181 * (five ? 17 : 1)) - (float)(32 * 150) * 0.5f;
		CHECK(out == want, "%s hand dot with scales = %g, want %g", tname(t), (double)out, (double)want);
	}

	/* Q6_K: d = 1, scales[j] = j - 8, every q = 33 (q - 32 = 1), activation quants 1:
	 * isum = 16 * sum(j - 8) = -128 */
	const struct mu_type_kernels *k6 = mu_kq_ref(MU_DTYPE_Q6_K);
	uint8_t blk6[210], act[292];
	memset(blk6, 0, sizeof blk6);
	for (int j = 0; j < 16; j++)
		blk6[192 + j] = (uint8_t)(int8_t)(j - 8);
	le16_store(blk6 + 208, 0x3c00);
	for (int i = 0; i < 256; i++)
		t_put_quant(MU_DTYPE_Q6_K, blk6, i, 33);
	lef32_store(act, 1.0f);
	memset(act + 4, 1, 256);
	for (int g = 0; g < 16; g++)
		le16_store(act + 260 + 2 * g, 16);
	float out = 0;
	k6->matvec(blk6, 210, act, 256, &out, 0, 1);
	CHECK(out == -128.0f, "q6_K hand dot = %g", (double)out);
	float y[256];
	k6->dequant_row(blk6, y, 256);
	int bad = 0;
	for (int i = 0; i < 256; i++)
		bad += y[i] != (float)(i / 16 - 8);
	CHECK(bad == 0, "q6_K: %d values differ from scales[j] * 1", bad);
	/* scale -128 (the format allows it): q = 0 -> -32 * -128 = 4096 */
	memset(blk6, 0, 192);
	blk6[192] = 0x80;
	k6->dequant_row(blk6, y, 256);
	CHECK(y[0] == 4096.0f && y[15] == 4096.0f && y[16] == 32.0f * 7.0f, "q6_K scale -128: %g %g",
	      (double)y[0], (double)y[16]);
}

/* Every quant position: a block whose quants are all 0 but one, at position p, with a value
 * that sets every bit the type has. Only element p may change. */
static void test_positions(void)
{
	for (int ti = 0; ti < 3; ti++) {
		enum mu_dtype t = ktypes[ti];
		const struct mu_type_kernels *k = mu_kq_ref(t);
		int qmax = t == MU_DTYPE_Q4_K ? 15 : t == MU_DTYPE_Q5_K ? 31 : 63;
		int bad = 0;
		for (int p = 0; p < 256; p++) {
			for (int v = 0; v < 3; v++) {
				int q = v == 0 ? qmax : v == 1 ? 1 << (p % (ti + 4)) : qmax - 1;
				uint8_t blk[210];
				float y[256];
				memset(blk, 0, sizeof blk);
				if (t == MU_DTYPE_Q6_K) {
					for (int j = 0; j < 16; j++)
						blk[192 + j] = (uint8_t)(j + 1);
					le16_store(blk + 208, 0x3c00);
				} else {
					le16_store(blk, 0x3c00);
					le16_store(blk + 2, 0x3c00);
					/* sc_j = j + 1, m_j = 2j + 1 */
					for (int j = 0; j < 4; j++) {
						int sc_hi = j + 5, m_hi = 2 * (j + 4) + 1;
						blk[4 + j] = (uint8_t)((j + 1) | ((sc_hi >> 4) << 6));
						blk[8 + j] = (uint8_t)((2 * j + 1) | ((m_hi >> 4) << 6));
						blk[12 + j] = (uint8_t)((sc_hi & 15) | ((m_hi & 15) << 4));
					}
				}
				t_put_quant(t, blk, p, q);
				k->dequant_row(blk, y, 256);
				for (int i = 0; i < 256; i++) {
					int qi = i == p ? q : 0;
					float want = t == MU_DTYPE_Q6_K ? (float)((i / 16 + 1) * (qi - 32))
									: (float)((i / 32 + 1) * qi - (2 * (i / 32) + 1));
					if (y[i] != want || t_quant(t, blk, i) != qi)
						bad++;
				}
			}
		}
		CHECK(bad == 0, "%s: %d values wrong over every quant position", tname(t), bad);
	}
}

static void test_act_known(void)
{
	float x[512];
	uint8_t a[584], want[584];

	/* zero block: every byte zero */
	memset(x, 0, sizeof x);
	x[256 + 3] = -0.0f;
	memset(a, 0xaa, sizeof a);
	mu_quantize_q8_k_ref(x, a, 256);
	int zeros = 1;
	for (int i = 0; i < 292; i++)
		zeros &= a[i] == 0;
	CHECK(zeros, "zero block");
	CHECK(mu_act_size(MU_ACT_Q8_K, 512) == 584 && mu_act_size(MU_ACT_Q8_K, 300) == 0, "act size");

	/* amax = 254 -> d = 2 (stored as f32), id = 0.5: ties go to even; bsums */
	static const float tie_x[] = {3.0f, 5.0f, 7.0f, -3.0f, -5.0f, 1.0f, -1.0f, -254.0f, 9.0f, 253.0f};
	static const int8_t tie_q[] = {2, 2, 4, -2, -2, 0, 0, -127, 4, 126};
	memset(x, 0, sizeof x);
	memcpy(x, tie_x, sizeof tie_x);
	x[17] = 100.0f; /* 50 */
	mu_quantize_q8_k_ref(x, a, 256);
	CHECK(lef32_load(a) == 2.0f, "d = %g", (double)lef32_load(a));
	int ok = 1;
	for (size_t i = 0; i < sizeof tie_q; i++)
		ok &= (int8_t)a[4 + i] == tie_q[i];
	CHECK(ok, "ties round to even");
	CHECK((int16_t)le16_load(a + 260) == 2 + 2 + 4 - 2 - 2 - 127 + 4 + 126 && (int16_t)le16_load(a + 262) == 50 &&
	      le16_load(a + 264) == 0, "bsums %d %d", (int16_t)le16_load(a + 260), (int16_t)le16_load(a + 262));

	/* d is not rounded to f16: amax = 1 gives d = 1/127 in f32 */
	for (int i = 0; i < 256; i++)
		x[i] = (float)(i - 128) / 128.0f;
	x[0] = 1.0f;
	mu_quantize_q8_k_ref(x, a, 256);
	CHECK(same_bits(lef32_load(a), 1.0f / 127.0f), "d = %a", (double)lef32_load(a));

	/* a NaN is ignored by amax and quantizes to +-127 by its sign bit; the rest as usual */
	fill_random(x, 512);
	x[10] = NAN;
	x[11] = -NAN;
	x[300] = u2f(0x7fc12345u);
	mu_quantize_q8_k_ref(x, a, 512);
	int8_t q10 = (int8_t)a[4 + 10], q11 = (int8_t)a[4 + 11], q300 = (int8_t)a[292 + 4 + 44];
	CHECK(q10 == 127 && q11 == -127 && q300 == 127, "NaN quants %d %d %d", q10, q11, q300);
	/* amax and the other quants are those of the block without the NaNs, unless a NaN
	 * replaced the block's maximum */
	float amax0 = 0, amax1 = 0;
	for (int i = 0; i < 256; i++)
		if (i != 10 && i != 11)
			amax0 = fmaxf(amax0, fabsf(x[i]));
	for (int i = 256; i < 512; i++)
		if (i != 300)
			amax1 = fmaxf(amax1, fabsf(x[i]));
	CHECK(same_bits(lef32_load(a), amax0 / 127.0f) && same_bits(lef32_load(a + 292), amax1 / 127.0f), "NaN ignored by amax");

	/* an infinite value: d = inf, id = 0; finite values give 0, the infinity itself
	 * inf * 0 = the default NaN, whose sign bit is set on x86: -127 */
	fill_random(x, 256);
	x[7] = INFINITY;
	x[9] = -INFINITY;
	mu_quantize_q8_k_ref(x, a, 256);
	ok = lef32_load(a) == INFINITY;
	int s0 = 0;
	for (int i = 0; i < 256; i++) {
		int8_t q = (int8_t)a[4 + i];
		ok &= (i == 7 || i == 9) ? q == -127 : q == 0;
		if (i < 16)
			s0 += q;
	}
	CHECK(ok && (int16_t)le16_load(a + 260) == s0 && s0 == -254, "infinite block");

	/* huge and tiny values: no |q| above 127 */
	for (int i = 0; i < 256; i++)
		x[i] = i % 2 ? 3.0e38f : -1.0e-40f;
	x[2] = -3.0e38f;
	mu_quantize_q8_k_ref(x, a, 256);
	CHECK((int8_t)a[4 + 1] == 127 && (int8_t)a[4] == 0 && (int8_t)a[4 + 2] == -127, "huge/tiny block");

	/* random data equals the rule with libm's rounding; error at most half a step (and a bit) */
	int bad = 0, err_bad = 0;
	for (int trial = 0; trial < 20; trial++) {
		fill_random(x, 512);
		mu_quantize_q8_k_ref(x, a, 512);
		t_quantize_act(x, 512, want);
		bad += memcmp(a, want, sizeof a) != 0;
		for (int b = 0; b < 2; b++) {
			float d = lef32_load(a + 292 * b);
			for (int i = 0; i < 256; i++)
				err_bad += fabsf(x[256 * b + i] - d * (float)(int8_t)a[292 * b + 4 + i]) > 0.5001f * d;
		}
	}
	CHECK(bad == 0, "%d random activations differ from the rule", bad);
	CHECK(err_bad == 0, "%d activation values quantized too far", err_bad);
}

/* ---- (b), (c): the reference matvec -------------------------------------------------------- */

static void check_ref_matvec(enum mu_dtype t, size_t nb, size_t rows, int random_bytes)
{
	const struct mu_type_kernels *k = mu_kq_ref(t);
	size_t n = nb * 256, rb = nb * bbytes(t), asz = nb * 292;
	uint8_t *w = xmalloc(rows * rb + 3), *act = xmalloc(asz + 3);
	float *src = xmalloc(rows * n * sizeof(float)), *x = xmalloc(n * sizeof(float));
	float *out = xmalloc(rows * sizeof(float)), *out2 = xmalloc(rows * sizeof(float));
	float *wdq = xmalloc(n * sizeof(float));
	const char *name = tname(t);

	if (random_bytes) {
		fill_random_blocks(t, w, rows * nb);
		fill_random_act(act, nb);
	} else {
		fill_random(src, rows * n);
		fill_random(x, n);
		for (size_t r = 0; r < rows; r++)
			k->quantize_row(src + r * n, w + r * rb, n);
		mu_act_prepare(MU_ACT_Q8_K, x, act, n);
	}
	k->matvec(w, rb, act, n, out, 0, rows);

	int exact_bad = 0, close_bad = 0, deq_bad = 0;
	for (size_t r = 0; r < rows; r++) {
		const uint8_t *row = w + r * rb;
		double mag;
		float want = canon_dot(t, row, act, nb, &mag);
		exact_bad += !same_bits(out[r], want);
		/* (b) against the dequantized operands in double: the canonical terms round at most
		 * 4 times each (isum, the scale product, the product, the difference), the lanes
		 * log2 chain + 4 times, and the test's own dequantization 3 times per element */
		k->dequant_row(row, wdq, n);
		double ref = 0, dq_mag = 0;
		for (size_t i = 0; i < n; i++) {
			float wi = t_dequant(t, row + (i / 256) * bbytes(t), (int)(i % 256));
			deq_bad += !same_bits(wi, wdq[i]);
			double xi = (double)lef32_load(act + (i / 256) * 292) * (int8_t)act[(i / 256) * 292 + 4 + i % 256];
			ref += (double)wi * xi;
			int m, sc = t_scale(t, row + (i / 256) * bbytes(t), (int)(i % 256), &m);
			(void)sc;
			dq_mag += fabs((double)wi * xi) + (t == MU_DTYPE_Q6_K ? 0.0 : 2.0 * fabs(t_f16(le16_load(row + (i / 256) * bbytes(t) + 2)) * m * xi));
		}
		double bound = ((double)(nb / 16 + 10) * mag + 3.0 * dq_mag) * 0x1p-24;
		if (!(fabs((double)out[r] - ref) <= bound))
			close_bad++;
	}
	CHECK(exact_bad == 0, "%s nb=%zu rows=%zu%s: %d rows differ from the canonical order", name, nb,
	      rows, random_bytes ? " (random bytes)" : "", exact_bad);
	CHECK(close_bad == 0, "%s nb=%zu rows=%zu: %d rows outside the error bound", name, nb, rows, close_bad);
	CHECK(deq_bad == 0, "%s nb=%zu: %d values dequantize differently", name, nb, deq_bad);

	/* (c) splits, empty range, unaligned weights and activation, matmul */
	for (int trial = 0; trial < 3; trial++) {
		memset(out2, 0xff, rows * sizeof(float));
		for (size_t r0 = 0; r0 < rows;) {
			size_t len = 1 + rng_next() % (trial == 0 ? 1 : rows);
			size_t r1 = r0 + len > rows ? rows : r0 + len;
			k->matvec(w, rb, act, n, out2, r0, r1);
			r0 = r1;
		}
		CHECK(memcmp(out, out2, rows * sizeof(float)) == 0, "%s nb=%zu: split %d differs", name, nb, trial);
	}
	/* the reference matmul: activation t at stride asz + 3 (the second one unaligned), each
	 * element as its matvec gives it */
	{
		uint8_t *acts = xmalloc(3 * (asz + 3));
		float *mo = xmalloc(3 * (rows + 1) * sizeof(float));
		int mm_bad = 0;
		memcpy(acts, act, asz);
		fill_random_act(acts + asz + 3, nb);
		fill_random_act(acts + 2 * (asz + 3), nb);
		k->matmul(w, rb, acts, asz + 3, n, mo, rows + 1, 3, 0, rows);
		for (size_t a = 0; a < 3; a++) {
			k->matvec(w, rb, acts + a * (asz + 3), n, out2, 0, rows);
			mm_bad += memcmp(mo + a * (rows + 1), out2, rows * sizeof(float)) != 0;
		}
		mm_bad += memcmp(mo, out, rows * sizeof(float)) != 0;
		CHECK(mm_bad == 0, "%s nb=%zu: reference matmul differs from matvec", name, nb);
		free(acts);
		free(mo);
	}
	memcpy(out2, out, rows * sizeof(float));
	k->matvec(w, rb, act, n, out2, rows / 2, rows / 2);
	CHECK(memcmp(out, out2, rows * sizeof(float)) == 0, "%s: empty range wrote", name);
	memmove(w + 3, w, rows * rb);
	memmove(act + 1, act, asz);
	k->matvec(w + 3, rb, act + 1, n, out2, 0, rows);
	CHECK(memcmp(out, out2, rows * sizeof(float)) == 0, "%s nb=%zu: unaligned buffers differ", name, nb);

	free(w); free(act); free(src); free(x); free(out); free(out2); free(wdq);
}

static void test_ref_matvec(void)
{
	static const size_t nbs[] = {1, 2, 3, 8, 16, 17, 33};
	static const size_t rows[] = {1, 7, 13};
	for (int ti = 0; ti < 3; ti++)
		for (size_t i = 0; i < sizeof nbs / sizeof nbs[0]; i++)
			for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
				for (int rnd = 0; rnd < 2; rnd++)
					check_ref_matvec(ktypes[ti], nbs[i], rows[r], rnd);
	/* the bounds the document states, with 128 for 127 since the random activations here
	 * also hold -128 */
	CHECK(max_isum[0] <= 30965760 && max_isum[1] <= 63995904 && max_isum[2] <= 134217728 &&
	      max_msum[0] <= 2064384 && max_msum[1] <= 2064384, "integer sums within the stated bounds");
}

/* isum above 2^24, where (float)isum rounds (to nearest, ties to even), on every path: d = 1,
 * dmin = 0, the largest scales and quants; activation dx = 1, every quant 127 but element 0
 * (126). Q4_K: isum = 8*63*32*15*127 - 63*15 = 30722895, odd, where floats are 2 apart: a
 * tie, to the even 30722896. Q5_K: 8*63*32*31*127 - 63*31 = 63493983 -> 63493984 (4 apart).
 * Q6_K, scales 127, q - 32 = 31: 16*127*16*31*127 - 127*31 = 127995807 -> 127995808. */
static void test_large_sums(void)
{
	static const float want[3] = {30722896.0f, 63493984.0f, 127995808.0f};
	uint8_t act[292];
	lef32_store(act, 1.0f);
	memset(act + 4, 127, 256);
	act[4] = 126;
	for (int g = 0; g < 16; g++)
		le16_store(act + 260 + 2 * g, (uint16_t)(16 * 127 - (g == 0)));
	for (int ti = 0; ti < 3; ti++) {
		enum mu_dtype t = ktypes[ti];
		uint8_t blk[210];
		memset(blk, 0, sizeof blk);
		if (t == MU_DTYPE_Q6_K) {
			memset(blk + 192, 127, 16);
			le16_store(blk + 208, 0x3c00);
		} else {
			le16_store(blk, 0x3c00);
			memset(blk + 4, 0xff, 4);  /* sc_0..3 = 63, the top bits of sc_4..7 */
			memset(blk + 12, 0x0f, 4); /* sc_4..7 low bits 15; all m = 0 */
		}
		for (int i = 0; i < 256; i++)
			t_put_quant(t, blk, i, ti == 0 ? 15 : ti == 1 ? 31 : 63);
		const struct mu_type_kernels *ks[3] = {
			mu_kq_ref(t),
			mu_kpath_missing(MU_KPATH_AVX2) ? NULL : mu_kq_avx2(t),
			mu_kpath_missing(MU_KPATH_AVX512) ? NULL : mu_kq_avx512(t),
		};
		for (int p = 0; p < 3; p++) {
			if (!ks[p])
				continue;
			float out = 0;
			ks[p]->matvec(blk, bbytes(t), act, 256, &out, 0, 1);
			CHECK(same_bits(out, want[ti]), "%s path %d: %.1f, want %.1f", tname(t), p, (double)out,
			      (double)want[ti]);
		}
	}
}

/* ---- (d) weight quantization ---------------------------------------------------------------- */

/* The documented rules with libm's ceilf, nearbyintf, fminf/fmaxf; finite input only. */
static uint16_t t_to_f16(float x) /* nearest f16, ties to even; |x| < 65504, normal or subnormal */
{
	uint16_t sign = signbit(x) ? 0x8000 : 0;
	double a = fabs((double)x);
	uint16_t best = 0;
	double best_err = INFINITY;
	for (uint16_t h = 0; h < 0x7c00; h = (uint16_t)(h + 1)) {
		if (h > 0 && t_f16(h) > 2 * a + 1)
			break;
		double err = fabs((double)t_f16(h) - a);
		if (err < best_err || (err == best_err && !(h & 1))) {
			best = h;
			best_err = err;
		}
	}
	return (uint16_t)(sign | best);
}

static int t_ceil63(float v, int hi)
{
	if (!(v > 0))
		return 0;
	return (int)fminf((float)hi, ceilf(v));
}

static void t_quantize(enum mu_dtype t, const float *x, uint8_t *blk)
{
	memset(blk, 0, bbytes(t));
	if (t == MU_DTYPE_Q6_K) {
		float s[16], smax = 0;
		for (int j = 0; j < 16; j++) {
			float v = 0;
			for (int i = 16 * j; i < 16 * j + 16; i++)
				if (fabsf(x[i]) > fabsf(v))
					v = x[i];
			s[j] = v / -32.0f;
			if (fabsf(s[j]) > smax)
				smax = fabsf(s[j]);
		}
		uint16_t d16 = t_to_f16(smax / 127.0f);
		float d = t_f16(d16);
		le16_store(blk + 208, d16);
		for (int j = 0; j < 16; j++) {
			int k = d > 0 ? t_ceil63(fabsf(s[j]) / d, 127) : 0;
			blk[192 + j] = (uint8_t)(int8_t)(s[j] < 0 ? -k : k);
		}
		for (int i = 0; i < 256; i++) {
			float step = d * (float)(int8_t)blk[192 + i / 16];
			int q = step != 0 ? (int)fmaxf(-32.0f, fminf(31.0f, nearbyintf(x[i] / step))) + 32 : 32;
			t_put_quant(t, blk, i, q);
		}
		return;
	}
	int L = t == MU_DTYPE_Q4_K ? 15 : 31;
	float lo[8], hi[8], s[8], off[8], lmax = 0, smax = 0;
	int sc[8], m[8];
	/* minima and maxima as the document states them: from +0 (or lo_j), taking a value only
	 * when it is strictly beyond, so zeros are +0 (fminf/fmaxf may pick either zero) */
	for (int j = 0; j < 8; j++) {
		lo[j] = 0;
		for (int i = 32 * j; i < 32 * j + 32; i++)
			if (x[i] < lo[j])
				lo[j] = x[i];
		hi[j] = lo[j];
		for (int i = 32 * j; i < 32 * j + 32; i++)
			if (x[i] > hi[j])
				hi[j] = x[i];
		if (-lo[j] > lmax)
			lmax = -lo[j];
	}
	uint16_t dmin16 = t_to_f16(lmax / 63.0f);
	float dmin = t_f16(dmin16);
	for (int j = 0; j < 8; j++) {
		m[j] = dmin > 0 ? t_ceil63(-lo[j] / dmin, 63) : 0;
		off[j] = dmin * (float)m[j];
		s[j] = (hi[j] + off[j]) / (float)L;
		if (s[j] > smax)
			smax = s[j];
	}
	uint16_t d16 = t_to_f16(smax / 63.0f);
	float d = t_f16(d16);
	for (int j = 0; j < 8; j++)
		sc[j] = d > 0 ? t_ceil63(s[j] / d, 63) : 0;
	le16_store(blk, d16);
	le16_store(blk + 2, dmin16);
	for (int j = 0; j < 4; j++) { /* the packing, inverse of t_scale_min */
		blk[4 + j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
		blk[8 + j] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
		blk[12 + j] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
	}
	for (int i = 0; i < 256; i++) {
		float step = d * (float)sc[i / 32];
		int q = step > 0 ? (int)fmaxf(0.0f, fminf((float)L, nearbyintf((x[i] + off[i / 32]) / step))) : 0;
		t_put_quant(t, blk, i, q);
	}
}

static void test_quantize(void)
{
	float x[1024], y[1024];
	uint8_t got[4 * 210], want[210];
	for (int ti = 0; ti < 3; ti++) {
		enum mu_dtype t = ktypes[ti];
		const struct mu_type_kernels *k = mu_kq_ref(t);
		size_t bb = bbytes(t);
		int L = ti == 0 ? 15 : ti == 1 ? 31 : 63;

		/* the rule, on random rows (several shapes of data) */
		int bad = 0;
		for (int trial = 0; trial < 12; trial++) {
			fill_random(x, 1024);
			if (trial % 3 == 1)
				for (int i = 0; i < 1024; i++)
					x[i] = fabsf(x[i]); /* no negative values: mins of 0 */
			if (trial % 3 == 2)
				for (int i = 0; i < 1024; i++)
					x[i] = -fabsf(x[i]) - 0.5f; /* all negative */
			k->quantize_row(x, got, 1024);
			for (int b = 0; b < 4; b++) {
				t_quantize(t, x + 256 * b, want);
				bad += memcmp(got + bb * b, want, bb) != 0;
			}
		}
		CHECK(bad == 0, "%s: %d random blocks differ from the documented rule", tname(t), bad);

		/* round trip on uniform [-1, 1): the error is small against the grid's step
		 * (2 / L for Q4_K/Q5_K's sub-blocks of 32, 1/32 of the largest magnitude for Q6_K):
		 * rounding alone gives step / sqrt(12) = 0.29 step RMS and 0.5 step at most */
		double se = 0, maxe = 0;
		for (int i = 0; i < 1024; i++)
			x[i] = rng_float();
		k->quantize_row(x, got, 1024);
		k->dequant_row(got, y, 1024);
		for (int i = 0; i < 1024; i++) {
			double e = fabs((double)y[i] - (double)x[i]);
			se += e * e;
			if (e > maxe)
				maxe = e;
		}
		double step = ti == 2 ? 1.0 / 32 : 2.0 / L;
		double rmse = sqrt(se / 1024);
		printf("%s round trip on uniform [-1, 1): rmse %.4f (%.2f step), max %.4f (%.2f step)\n",
		       tname(t), rmse, rmse / step, maxe, maxe / step);
		CHECK(rmse < 0.4 * step, "%s: rmse %g is not well under the step %g", tname(t), rmse, step);
		CHECK(maxe < (ti == 2 ? 1.05 : 0.75) * step, "%s: max error %g against step %g", tname(t), maxe, step);

		/* zero row: all zero scales; Q4_K/Q5_K all zero bytes, Q6_K quants 32 (qh 0xaa) */
		memset(x, 0, sizeof x);
		memset(got, 0x5a, sizeof got);
		k->quantize_row(x, got, 256);
		int ok = 1;
		for (size_t i = 0; i < bb; i++)
			ok &= got[i] == (ti == 2 && i >= 128 && i < 192 ? 0xaa : 0);
		CHECK(ok, "%s zero row", tname(t));
		k->dequant_row(got, y, 256);
		ok = 1;
		for (int i = 0; i < 256; i++)
			ok &= same_bits(y[i], 0.0f);
		CHECK(ok, "%s zero row dequantizes to +0", tname(t));

		/* NaN and infinite weights: defined bytes, no trap (UBSan checks the conversions) */
		fill_random(x, 256);
		x[3] = NAN;
		x[40] = INFINITY;
		x[41] = -INFINITY;
		k->quantize_row(x, got, 256);
		memcpy(want, got, bb);
		k->quantize_row(x, got, 256);
		CHECK(memcmp(got, want, bb) == 0, "%s: non-finite input quantizes the same twice", tname(t));
		fill_random(x, 256);
		x[5] = NAN;
		k->quantize_row(x, got, 256);
		CHECK(t_quant(t, got, 5) == (ti == 2 ? 32 : 0), "%s: NaN quantizes to %d", tname(t), t_quant(t, got, 5));
	}

	/* Q4_K by hand: sub-block 0 holds 0..15 twice, the rest zero: lo = 0 everywhere, so
	 * dmin = 0 and m = 0; s_0 = 15 / 15 = 1, d = f16(1/63) = 0x2410 = 0.015869 (just below
	 * 1/63), 1/d = 63.015, so sc_0 = min(63, 64) = 63; other sc 0, quants 0 */
	const struct mu_type_kernels *k4 = mu_kq_ref(MU_DTYPE_Q4_K);
	for (int i = 0; i < 256; i++)
		x[i] = 0.0f;
	for (int i = 0; i < 32; i++)
		x[i] = (float)(i % 16);
	k4->quantize_row(x, got, 256);
	int sc, m;
	t_scale_min(got + 4, 0, &sc, &m);
	CHECK(le16_load(got) == 0x2410 && le16_load(got + 2) == 0 && sc == 63 && m == 0,
	      "hand q4_K: d %04x dmin %04x sc %d m %d", le16_load(got), le16_load(got + 2), sc, m);
	int qok = 1;
	for (int i = 0; i < 32; i++)
		qok &= t_quant(MU_DTYPE_Q4_K, got, i) == (int)nearbyintf((float)(i % 16) / (t_f16(le16_load(got)) * 63.0f));
	for (int i = 32; i < 256; i++)
		qok &= t_quant(MU_DTYPE_Q4_K, got, i) == 0;
	CHECK(qok, "hand q4_K quants");
}

/* ---- (e) SIMD paths against the reference -------------------------------------------------- */

struct simd_path {
	enum mu_kpath p;
	const struct mu_type_kernels *(*kq)(enum mu_dtype t);
	void (*act)(const float *x, void *out, size_t n);
};

static void check_simd_shape(const struct simd_path *sp, enum mu_dtype t, size_t nb, size_t rows,
			     int random_bytes)
{
	const struct mu_type_kernels *kr = mu_kq_ref(t), *ks = sp->kq(t);
	const char *pname = sp->p == MU_KPATH_AVX2 ? "avx2" : "avx512";
	size_t n = nb * 256, rb = nb * bbytes(t), asz = nb * 292;
	const size_t ntmax = 9, xstride = asz + 5; /* activations at odd offsets from each other */
	uint8_t *w = xmalloc(rows * rb + 1), *act = xmalloc(ntmax * xstride + 1);
	float *src = xmalloc(rows * n * sizeof(float)), *x = xmalloc(ntmax * n * sizeof(float));
	float *want = xmalloc(ntmax * rows * sizeof(float)), *got = xmalloc(ntmax * (rows + 3) * sizeof(float));
	uint8_t *a2 = xmalloc(asz);

	CHECK(ks != NULL && ks->act == MU_ACT_Q8_K && ks->matvec && ks->matmul && !ks->dequant_row &&
		      !ks->quantize_row,
	      "%s %s kernels (row conversions are the reference's alone)", pname, tname(t));
	if (!ks)
		goto out;
	uint8_t *wu = w + 1; /* unaligned on purpose */
	if (random_bytes) {
		fill_random_blocks(t, wu, rows * nb);
		for (size_t i = 0; i < ntmax; i++)
			fill_random_act(act + i * xstride, nb);
	} else {
		fill_random(src, rows * n);
		for (size_t r = 0; r < rows; r++)
			kr->quantize_row(src + r * n, wu + r * rb, n);
		fill_random(x, ntmax * n);
		int act_bad = 0;
		for (size_t i = 0; i < ntmax; i++) {
			mu_quantize_q8_k_ref(x + i * n, act + i * xstride, n);
			sp->act(x + i * n, a2, n);
			act_bad += memcmp(a2, act + i * xstride, asz) != 0;
		}
		CHECK(act_bad == 0, "%s n=%zu: %d activations quantize differently", pname, n, act_bad);
	}
	/* reference results, activation by activation */
	for (size_t i = 0; i < ntmax; i++)
		kr->matvec(wu, rb, act + i * xstride, n, want + i * rows, 0, rows);

	/* matvec: whole range and random splits */
	int bad = 0;
	for (size_t i = 0; i < 3; i++) {
		memset(got, 0xff, rows * sizeof(float));
		if (i == 0) {
			ks->matvec(wu, rb, act + i * xstride, n, got, 0, rows);
		} else {
			for (size_t r0 = 0; r0 < rows;) {
				size_t r1 = r0 + 1 + rng_next() % 5;
				if (r1 > rows)
					r1 = rows;
				ks->matvec(wu, rb, act + i * xstride, n, got, r0, r1);
				r0 = r1;
			}
		}
		bad += memcmp(got, want + i * rows, rows * sizeof(float)) != 0;
	}
	CHECK(bad == 0, "%s %s nb=%zu rows=%zu%s: matvec differs from the reference", pname, tname(t), nb,
	      rows, random_bytes ? " (random bytes)" : "");

	/* matmul for nt = 1..9, output stride rows + 3, a row range that starts inside */
	bad = 0;
	for (size_t nt = 1; nt <= ntmax; nt++) {
		size_t ldo = rows + 3, r0 = rows > 2 ? 1 : 0;
		memset(got, 0xff, ntmax * ldo * sizeof(float));
		ks->matmul(wu, rb, act, xstride, n, got, ldo, nt, r0, rows);
		for (size_t i = 0; i < nt; i++) {
			bad += memcmp(got + i * ldo + r0, want + i * rows + r0, (rows - r0) * sizeof(float)) != 0;
			for (size_t r = 0; r < r0; r++)
				bad += f2u(got[i * ldo + r]) != 0xffffffffu;
			bad += f2u(got[i * ldo + rows]) != 0xffffffffu;
		}
	}
	CHECK(bad == 0, "%s %s nb=%zu rows=%zu: %d matmul results differ", pname, tname(t), nb, rows, bad);

out:
	free(w); free(act); free(src); free(x); free(want); free(got); free(a2);
}

static void test_simd(void)
{
	static const struct simd_path paths[] = {
		{MU_KPATH_AVX2, mu_kq_avx2, mu_quantize_q8_k_avx2},
		{MU_KPATH_AVX512, mu_kq_avx512, mu_quantize_q8_k_avx512},
	};
	static const size_t nbs[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 24, 33};
	static const size_t rows[] = {1, 3, 7, 13};
	for (size_t pi = 0; pi < 2; pi++) {
		const struct simd_path *sp = &paths[pi];
		const char *why = mu_kpath_missing(sp->p);
		const char *pname = sp->p == MU_KPATH_AVX2 ? "avx2" : "avx512";
		if (why) {
			printf("skipping the %s path: %s\n", pname, why);
			continue;
		}
		for (int ti = 0; ti < 3; ti++)
			for (size_t i = 0; i < sizeof nbs / sizeof nbs[0]; i++)
				for (int rnd = 0; rnd < 2; rnd++)
					check_simd_shape(sp, ktypes[ti], nbs[i], rows[(i + (size_t)rnd) % 4], rnd);
		check_simd_shape(sp, MU_DTYPE_Q4_K, 8, 37, 0);
		printf("%s path: compared with the reference\n", pname);

		/* activation quantization of special blocks: zeros, NaN, infinities, huge, tiny */
		float x[1024];
		uint8_t a[4 * 292], b[4 * 292];
		int bad = 0;
		for (int trial = 0; trial < 40; trial++) {
			fill_random(x, 1024);
			for (int i = 0; i < 1024; i++) {
				uint64_t r = rng_next() % 64;
				if (trial % 4 == 0 && i < 256)
					x[i] = (trial & 8) ? -0.0f : 0.0f;
				else if (r == 0)
					x[i] = trial % 3 ? NAN : -NAN;
				else if (r == 1 && trial % 5 == 0)
					x[i] = trial % 2 ? INFINITY : -INFINITY;
				else if (r == 2)
					x[i] = trial % 2 ? 3.4e38f : 1e-42f;
			}
			mu_quantize_q8_k_ref(x, a, 1024);
			sp->act(x, b, 1024);
			bad += memcmp(a, b, sizeof a) != 0;
		}
		CHECK(bad == 0, "%s: %d special activations quantize differently", pname, bad);
	}
}

/* ---- (f) golden results ---------------------------------------------------------------------
 * A fixed workload per type (its own random stream), hashed (FNV-1a over the quantized
 * weights, the activation and the outputs). A change means the canonical arithmetic changed. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static void test_golden(void)
{
	static const uint64_t golden[3] = {
		0x55512833c96f48a5ull,
		0x2af93e461b188cfbull,
		0x78b6e7004c301a5dull,
	};
	const size_t n = 4608, rows = 24; /* 18 blocks: two lanes get two terms */
	float *src = xmalloc(rows * n * sizeof(float)), *x = xmalloc(n * sizeof(float));
	float *out = xmalloc(rows * sizeof(float)), *y = xmalloc(n * sizeof(float));
	uint8_t *act = xmalloc(n / 256 * 292);
	for (int ti = 0; ti < 3; ti++) {
		enum mu_dtype t = ktypes[ti];
		const struct mu_type_kernels *k = mu_kq_ref(t);
		size_t rb = mu_dtype_row_size(t, n);
		uint8_t *w = xmalloc(rows * rb);
		rng_state = 0xa4093822299f31d0ull + (uint64_t)ti;
		fill_random(src, rows * n);
		fill_random(x, n);
		for (size_t r = 0; r < rows; r++)
			k->quantize_row(src + r * n, w + r * rb, n);
		mu_act_prepare(MU_ACT_Q8_K, x, act, n);
		k->matvec(w, rb, act, n, out, 0, rows);
		k->dequant_row(w, y, n);
		uint64_t h = fnv1a(0xcbf29ce484222325ull, w, rows * rb);
		h = fnv1a(h, act, n / 256 * 292);
		h = fnv1a(h, out, rows * sizeof(float));
		h = fnv1a(h, y, n * sizeof(float));
		printf("golden %-5s %016llx\n", tname(t), (unsigned long long)h);
		CHECK(h == golden[ti], "%s: golden hash changed", tname(t));
		free(w);
	}
	free(src); free(x); free(out); free(y); free(act);
}

static void test_table(void)
{
	for (int ti = 0; ti < 3; ti++) {
		const struct mu_type_kernels *k = mu_kq_ref(ktypes[ti]);
		CHECK(k && k->act == MU_ACT_Q8_K && k->matvec && k->matmul && k->dequant_row && k->quantize_row,
		      "%s reference kernels", tname(ktypes[ti]));
		CHECK(mu_kernels_ref(ktypes[ti]) == k, "%s through mu_kernels_ref", tname(ktypes[ti]));
		CHECK(mu_dtype_get(ktypes[ti])->computable, "%s computable", tname(ktypes[ti]));
		CHECK(mu_dtype_row_size(ktypes[ti], 512) == 2 * bbytes(ktypes[ti]) &&
		      mu_dtype_row_size(ktypes[ti], 300) == 0, "%s row size", tname(ktypes[ti]));
	}
	static const enum mu_dtype without[] = {MU_DTYPE_Q2_K, MU_DTYPE_Q3_K, MU_DTYPE_Q8_K, MU_DTYPE_Q4_0,
						MU_DTYPE_F32};
	for (size_t i = 0; i < sizeof without / sizeof without[0]; i++)
		CHECK(mu_kq_ref(without[i]) == NULL && mu_kq_avx2(without[i]) == NULL &&
		      mu_kq_avx512(without[i]) == NULL, "no K-quant kernels for type %d", (int)without[i]);
	CHECK(!mu_dtype_get(MU_DTYPE_Q8_K)->computable && !mu_dtype_get(MU_DTYPE_Q2_K)->computable,
	      "q8_K and q2_K are not weight types here");
}

int main(void)
{
	test_table();
	test_scale_unpack();
	test_positions();
	test_act_known();
	test_ref_matvec();
	test_large_sums();
	test_quantize();
	test_simd();
	test_golden();
	return test_done();
}
