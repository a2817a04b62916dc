/* mathx.c — elementary functions as fixed sequences of IEEE operations.
 *
 * No libm and no FMA: every step below is one correctly rounded add, sub, mul, div or sqrt
 * (the build has -ffp-contract=off), so the same inputs give the same bits on every machine.
 *
 * mu_expf is the one used per element in the forward pass (softmax, SiLU); it is float-only
 * and branch-free on its main path so a SIMD twin can repeat it lane by lane. The double
 * functions build the RoPE tables once per model (frequencies by mu_pow, angles by mu_sin and
 * mu_cos); they use double-double steps where the rounding of an intermediate would otherwise
 * cost more than an ulp.
 */
#include "base/mathx.h"

#include <assert.h>
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "base/fp16.h"

static_assert(FLT_EVAL_METHOD == 0, "float and double arithmetic must round to their own type");

static inline uint64_t f64_bits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static inline double bits_f64(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }

#define F32_INF mu_bits_f32(0x7f800000u)
#define F64_INF bits_f64(0x7ff0000000000000ull)
#define F64_NAN bits_f64(0x7ff8000000000000ull)

/* 2^n for n in [-126, 127] (float) and [-1022, 1023] (double), built in the exponent field. */
static inline float pow2f(int32_t n) { return mu_bits_f32((uint32_t)(n + 127) << 23); }
static inline double pow2d(int32_t n) { return bits_f64((uint64_t)(n + 1023) << 52); }

float mu_fabsf(float x) { return mu_bits_f32(mu_f32_bits(x) & 0x7fffffffu); }
float mu_sqrtf(float x) { return __builtin_sqrtf(x); }
double mu_sqrt(double x) { return __builtin_sqrt(x); }

/* ---- float exp ----------------------------------------------------------------------------
 * e^x = 2^n * e^r with n = round(x / ln2) and r = x - n*ln2, |r| <= ~0.347.
 *  - n: t = x*log2(e) + 1.5*2^23 rounds the product to an integer in the low mantissa bits
 *    (round to nearest even, the default mode); n = t - 1.5*2^23 exactly.
 *  - r: ln2 = LN2_HI + LN2_LO with LN2_HI holding 15 significant bits, so n*LN2_HI is exact
 *    for |n| <= 150 and x - n*LN2_HI is exact (Sterbenz); only the small n*LN2_LO rounds.
 *  - e^r = 1 + r + r^2 * P(r), P a degree-5 minimax polynomial (Cephes expf coefficients),
 *    in Horner form, added up in exactly this order.
 *  - 2^n is applied as two exact powers of two, 2^(n/2) then 2^(n - n/2): the first product
 *    stays a normal number, so the second is the only rounding, and results that underflow to
 *    subnormals are rounded once, correctly, from p; n = 128 does not overflow the exponent.
 * Outside [EXPF_LO, EXPF_HI] the result is 0 or +inf (the correctly rounded result there). */
#define EXPF_HI 0x1.62e42ep+6f      /* largest x with e^x < FLT_MAX (88.7228317) */
#define EXPF_LO (-0x1.9fe368p+6f)   /* smallest x whose e^x rounds above 0 (-103.972076) */
#define EXPF_LOG2E 0x1.715476p+0f
#define EXPF_MAGIC 0x1.8p+23f
#define EXPF_LN2_HI 0x1.62e4p-1f
#define EXPF_LN2_LO 0x1.7f7d1cp-20f
#define EXPF_P0 1.9875691500e-4f
#define EXPF_P1 1.3981999507e-3f
#define EXPF_P2 8.3334519073e-3f
#define EXPF_P3 4.1665795894e-2f
#define EXPF_P4 1.6666665459e-1f
#define EXPF_P5 5.0000001201e-1f

float mu_expf(float x)
{
	if (x != x)
		return x + x;
	if (x > EXPF_HI)
		return F32_INF;
	if (x < EXPF_LO)
		return 0.0f;
	float t = x * EXPF_LOG2E + EXPF_MAGIC;
	float fn = t - EXPF_MAGIC;
	float r = x - fn * EXPF_LN2_HI;
	r = r - fn * EXPF_LN2_LO;
	float z = r * r;
	float p = EXPF_P0;
	p = p * r + EXPF_P1;
	p = p * r + EXPF_P2;
	p = p * r + EXPF_P3;
	p = p * r + EXPF_P4;
	p = p * r + EXPF_P5;
	p = p * z + r;
	p = p + 1.0f;
	int32_t n = (int32_t)fn;
	int32_t n1 = n / 2;
	return p * pow2f(n1) * pow2f(n - n1);
}

/* SiLU as defined: x / (1 + e^-x). For finite x this never gives NaN: when e^-x overflows
 * to +inf the quotient is a signed zero. x = -inf (inf/inf) is defined as -0. */
float mu_siluf(float x)
{
	if (x == -F32_INF)
		return -0.0f;
	return x / (1.0f + mu_expf(-x));
}

/* ---- double-double helpers (Knuth two-sum, Dekker product without FMA) -------------------- */
struct dd {
	double hi, lo;
};

static inline struct dd two_sum(double a, double b)
{
	double s = a + b;
	double bb = s - a;
	double e = (a - (s - bb)) + (b - bb);
	return (struct dd){s, e};
}

/* Needs |a| >= |b| (or a == 0). */
static inline struct dd fast_two_sum(double a, double b)
{
	double s = a + b;
	return (struct dd){s, b - (s - a)};
}

/* Veltkamp split: a = hi + lo, each with at most 26 significant bits (|a| < 2^995). */
static inline struct dd split(double a)
{
	double c = 134217729.0 * a; /* 2^27 + 1 */
	double hi = c - (c - a);
	return (struct dd){hi, a - hi};
}

static inline struct dd two_prod(double a, double b)
{
	double p = a * b;
	struct dd as = split(a), bs = split(b);
	double e = ((as.hi * bs.hi - p) + as.hi * bs.lo + as.lo * bs.hi) + as.lo * bs.lo;
	return (struct dd){p, e};
}

/* ---- double exp ----------------------------------------------------------------------------
 * e^(x + xl) for x in [EXP_LO, EXP_HI] and |xl| <= ulp(x).
 *  - n = round(x / ln2) (magic-number rounding); hi = x - n*LN2_HI is exact (LN2_HI has 32
 *    significant bits and |n| <= 1075); lo = n*LN2_LO - xl; r = hi - lo, with the rounding
 *    error of that subtraction kept by a two-sum; |r| <= ~0.347.
 *  - e^r = 1 + r + r^2/2 + r^3 * P(r), P the Taylor series 1/3! + r/4! + ... + r^11/14!
 *    (truncation below 2^-63). 1 + r + r^2/2 is added as a double-double (r^2 by an exact
 *    product), so only the r^3 term (below 1% of the result) carries double rounding, and
 *    the result is rounded once more at the end: about 0.6 ulp.
 *  - 2^n is applied as 2^(n/2) * 2^(n - n/2) as in mu_expf. */
#define EXP_HI 0x1.62e42fefa39efp+9         /* 709.782712893384: e^x < DBL_MAX */
#define EXP_LO (-0x1.74910d52d3051p+9)      /* -745.133219101941: e^x rounds above 0 */
#define INV_LN2 0x1.71547652b82fep+0
#define MAGIC52 0x1.8p+52
#define LN2_HI 0x1.62e42feep-1              /* 6.93147180369123816490e-01 */
#define LN2_LO 0x1.a39ef35793c76p-33        /* 1.90821492927058770002e-10 */

static double exp_dd(double x, double xl)
{
	double t = x * INV_LN2 + MAGIC52;
	double fn = t - MAGIC52;
	double hi = x - fn * LN2_HI;
	double lo = fn * LN2_LO - xl;
	struct dd rr = two_sum(hi, -lo);
	double r = rr.hi;
	double p = 1.0 / 87178291200.0;        /* 1/14! */
	p = p * r + 1.0 / 6227020800.0;        /* 1/13! */
	p = p * r + 1.0 / 479001600.0;
	p = p * r + 1.0 / 39916800.0;
	p = p * r + 1.0 / 3628800.0;
	p = p * r + 1.0 / 362880.0;
	p = p * r + 1.0 / 40320.0;
	p = p * r + 1.0 / 5040.0;
	p = p * r + 1.0 / 720.0;
	p = p * r + 1.0 / 120.0;
	p = p * r + 1.0 / 24.0;
	p = p * r + 1.0 / 6.0;
	struct dd r2 = two_prod(r, r);
	double r3p = (r2.hi * r) * p;
	struct dd a = two_sum(1.0, r);
	struct dd b = two_sum(a.hi, 0.5 * r2.hi);
	double tail = (((a.lo + b.lo) + 0.5 * r2.lo) + r3p) + rr.lo * a.hi;
	double y = b.hi + tail;
	int32_t n = (int32_t)fn;
	int32_t n1 = n / 2;
	return y * pow2d(n1) * pow2d(n - n1);
}

double mu_exp(double x)
{
	if (x != x)
		return x + x;
	if (x > EXP_HI)
		return F64_INF;
	if (x < EXP_LO)
		return 0.0;
	return exp_dd(x, 0.0);
}

/* ---- double log ----------------------------------------------------------------------------
 * x = 2^k * m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact). With s = f / (2 + f),
 * log m = log((1 + s) / (1 - s)) = 2s + (2/3) s^3 + s^5 * R(s^2), R(z) = sum_{j>=0} 2/(2j+5) z^j.
 *  - s is a double-double s + sl: 2 + f by two-sum, the remainder of the division by an exact
 *    product; 2s and 2sl are exact.
 *  - (2/3) s^3 = s^3 / 1.5 is formed as a double-double too (s^2 and s^3 by exact products,
 *    the division's remainder by an exact product); it is below 1% of log m.
 *  - s^5 R is below 2e-4 of log m and is rounded in double; ten Taylor terms of R leave a
 *    truncation error below 2^-67 (|s| <= 0.1716).
 *  - k*ln2 = k*LN2_HI (exact) + k*LN2_LO.
 * The result is a double-double accurate to about 2^-64 absolute: mu_pow needs it, mu_log
 * rounds it. */
static struct dd log_dd(double x)
{
	uint64_t u = f64_bits(x);
	int32_t k = 0;
	if (u < 0x0010000000000000ull) { /* subnormal: scale into the normal range */
		x *= 0x1p54;
		u = f64_bits(x);
		k = -54;
	}
	k += (int32_t)(u >> 52) - 1023;
	double m = bits_f64((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
	if (m > 0x1.6a09e667f3bcdp+0) { /* sqrt(2) */
		m = m * 0.5;
		k++;
	}
	double f = m - 1.0;
	/* s + sl = f / (2 + f) */
	struct dd d = two_sum(2.0, f);
	double s = f / d.hi;
	struct dd sd = two_prod(s, d.hi);
	double sl = (((f - sd.hi) - sd.lo) - s * d.lo) / d.hi;
	/* c + cl = (s + sl)^3 / 1.5 */
	struct dd z = two_prod(s, s);
	struct dd s3 = two_prod(s, z.hi);
	s3.lo = s3.lo + (s * z.lo + 3.0 * z.hi * sl);
	double c = s3.hi / 1.5;
	struct dd c15 = two_prod(c, 1.5);
	double cl = (((s3.hi - c15.hi) - c15.lo) + s3.lo) / 1.5;
	/* s^5 R(s^2) */
	double r = 2.0 / 23;
	r = r * z.hi + 2.0 / 21;
	r = r * z.hi + 2.0 / 19;
	r = r * z.hi + 2.0 / 17;
	r = r * z.hi + 2.0 / 15;
	r = r * z.hi + 2.0 / 13;
	r = r * z.hi + 2.0 / 11;
	r = r * z.hi + 2.0 / 9;
	r = r * z.hi + 2.0 / 7;
	r = r * z.hi + 2.0 / 5;
	double s5r = (s3.hi * z.hi) * r;
	double dk = (double)k;
	struct dd a = two_sum(dk * LN2_HI, 2.0 * s);
	struct dd b = two_sum(a.hi, c);
	double tail = ((((a.lo + b.lo) + 2.0 * sl) + cl) + s5r) + dk * LN2_LO;
	return fast_two_sum(b.hi, tail);
}

double mu_log(double x)
{
	if (x != x)
		return x + x;
	if (x < 0.0)
		return F64_NAN;
	if (x == 0.0)
		return -F64_INF;
	if (x == F64_INF)
		return x;
	return log_dd(x).hi;
}

/* ---- double pow ----------------------------------------------------------------------------
 * x^y = e^(y * log x) with log x as a double-double and the product y * log x formed exactly
 * (Dekker), so the argument of exp is known to about 2^-64 * |y| absolute: for RoPE
 * frequencies base^(-2i/d) the result is within about one ulp of the true power.
 * Special cases follow the usual conventions for x >= 0. */
double mu_pow(double x, double y)
{
	if (y == 0.0 || x == 1.0)
		return 1.0;
	if (x != x || y != y)
		return x + y;
	if (x < 0.0)
		return F64_NAN;
	if (x == 0.0)
		return y > 0.0 ? 0.0 : F64_INF;
	if (x == F64_INF)
		return y > 0.0 ? F64_INF : 0.0;
	struct dd l = log_dd(x);
	double p = y * l.hi;
	/* Past these bounds the result is +inf or 0 whatever the low parts; this also keeps the
	 * operands of two_prod small enough to split (|log x| >= 2^-53 here, so |y| < 2^63). */
	if (p > 710.0)
		return F64_INF;
	if (p < -746.0)
		return 0.0;
	struct dd pr = two_prod(y, l.hi);
	struct dd e = fast_two_sum(pr.hi, pr.lo + y * l.lo);
	if (e.hi > EXP_HI)
		return F64_INF;
	if (e.hi < EXP_LO)
		return 0.0;
	return exp_dd(e.hi, e.lo);
}

/* ---- double sin and cos --------------------------------------------------------------------
 * Cody-Waite reduction by pi/2: n = round(x * 2/pi), r = x - n*(P1 + P2 + P3 + P3T) where
 * P1, P2, P3 hold at most 33 significant bits each (fdlibm's pio2_1, pio2_2, pio2_3 and
 * pio2_3t), so for |n| < 2^20 the products n*P1, n*P2, n*P3 are exact; the differences are
 * kept as a double-double (r, rl) by two-sums, and only n*P3T rounds (about 2^-130
 * absolute). The quadrant n mod 4 then picks +-sin or +-cos of r on [-pi/4, pi/4], each a
 * minimax polynomial (fdlibm's __kernel_sin S1..S6 and __kernel_cos C1..C6) corrected for
 * the low part rl. Accurate for |x| <= 2^20 (angles of RoPE: position < MU_MAX_CTX times a
 * frequency <= 1); the accuracy falls off gradually past it; for |x| >= 2^50 the quadrant
 * can no longer be formed and the result is NaN, as for inf and NaN. */
#define INV_PIO2 0x1.45f306dc9c883p-1
#define PIO2_1 0x1.921fb544p+0
#define PIO2_2 0x1.0b4611a6p-34
#define PIO2_3 0x1.3198a2ep-69
#define PIO2_3T 0x1.b839a252049c1p-104
#define PIO4 0x1.921fb54442d18p-1
#define SIN_S1 (-1.66666666666666324348e-01)
#define SIN_S2 8.33333333332248946124e-03
#define SIN_S3 (-1.98412698298579493134e-04)
#define SIN_S4 2.75573137070700676789e-06
#define SIN_S5 (-2.50507602534068634195e-08)
#define SIN_S6 1.58969099521155010221e-10
#define COS_C1 4.16666666666666019037e-02
#define COS_C2 (-1.38888888888741095749e-03)
#define COS_C3 2.48015872894767294178e-05
#define COS_C4 (-2.75573143513906633035e-07)
#define COS_C5 2.08757232129817482790e-09
#define COS_C6 (-1.13596475577881948265e-11)

/* sin(x + y) for |x| <= ~pi/4, |y| <= ulp(x). */
static double k_sin(double x, double y)
{
	double z = x * x;
	double v = z * x;
	double r = SIN_S2 + z * (SIN_S3 + z * (SIN_S4 + z * (SIN_S5 + z * SIN_S6)));
	return x - ((z * (0.5 * y - v * r) - y) - v * SIN_S1);
}

/* cos(x + y) for |x| <= ~pi/4, |y| <= ulp(x). */
static double k_cos(double x, double y)
{
	double z = x * x;
	double r = z * (COS_C1 + z * (COS_C2 + z * (COS_C3 + z * (COS_C4 + z * (COS_C5 + z * COS_C6)))));
	double hz = 0.5 * z;
	double w = 1.0 - hz;
	return w + (((1.0 - w) - hz) + (z * r - x * y));
}

/* Returns n mod 4 and x - n*pi/2 as r->hi + r->lo; -1 when |x| is too large or not finite. */
static int32_t rem_pio2(double x, struct dd *r)
{
	double ax = x < 0 ? -x : x;
	if (!(ax < 0x1p50))
		return -1;
	if (ax <= PIO4) {
		*r = (struct dd){x, 0.0};
		return 0;
	}
	double t = x * INV_PIO2 + MAGIC52;
	double fn = t - MAGIC52;
	double r1 = x - fn * PIO2_1;
	struct dd a = two_sum(r1, -(fn * PIO2_2));
	struct dd b = two_sum(a.hi, -(fn * PIO2_3));
	double tail = (a.lo + b.lo) - fn * PIO2_3T;
	*r = fast_two_sum(b.hi, tail);
	return (int32_t)((uint64_t)(int64_t)fn & 3u);
}

double mu_sin(double x)
{
	struct dd r;
	switch (rem_pio2(x, &r)) {
	case 0: return k_sin(r.hi, r.lo);
	case 1: return k_cos(r.hi, r.lo);
	case 2: return -k_sin(r.hi, r.lo);
	case 3: return -k_cos(r.hi, r.lo);
	default: return F64_NAN;
	}
}

double mu_cos(double x)
{
	struct dd r;
	switch (rem_pio2(x, &r)) {
	case 0: return k_cos(r.hi, r.lo);
	case 1: return -k_sin(r.hi, r.lo);
	case 2: return -k_cos(r.hi, r.lo);
	case 3: return k_sin(r.hi, r.lo);
	default: return F64_NAN;
	}
}
