/* fp16.h — IEEE half and bfloat16 conversions by bit manipulation (no hardware, no libm),
 * so every path (scalar, SIMD, other machines) gets the same bits.
 * Widening (f16/bf16 -> f32) is exact. Narrowing rounds to nearest, ties to even; NaN stays NaN. */
#ifndef MU_BASE_FP16_H
#define MU_BASE_FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t mu_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float mu_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float mu_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t man = h & 0x3ffu;

	if (exp == 0x1f)                 /* inf / nan */
		return mu_bits_f32(sign | 0x7f800000u | (man << 13));
	if (exp == 0) {
		if (man == 0)
			return mu_bits_f32(sign);
		/* subnormal: value = man * 2^-24, exact in f32 */
		exp = 127 - 15 + 1;
		while (!(man & 0x400u)) {
			man <<= 1;
			exp--;
		}
		man &= 0x3ffu;
		return mu_bits_f32(sign | (exp << 23) | (man << 13));
	}
	return mu_bits_f32(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

static inline uint16_t mu_f32_to_f16(float f)
{
	uint32_t u = mu_f32_bits(f);
	uint32_t sign = (u >> 16) & 0x8000u;
	uint32_t exp = (u >> 23) & 0xffu;
	uint32_t man = u & 0x7fffffu;

	if (exp == 0xff)                 /* inf / nan (keep a quiet-nan payload bit) */
		return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
	int32_t e = (int32_t)exp - 127 + 15;
	if (e >= 0x1f)                   /* overflow -> inf */
		return (uint16_t)(sign | 0x7c00u);
	if (e <= 0) {                    /* subnormal or zero in f16 */
		if (e < -10)
			return (uint16_t)sign;
		man |= 0x800000u;
		uint32_t shift = (uint32_t)(14 - e);
		uint32_t half = 1u << (shift - 1);
		uint32_t rest = man & ((1u << shift) - 1);
		uint32_t q = man >> shift;
		if (rest > half || (rest == half && (q & 1u)))
			q++;
		return (uint16_t)(sign | q);
	}
	uint32_t q = ((uint32_t)e << 10) | (man >> 13);
	uint32_t rest = man & 0x1fffu;
	if (rest > 0x1000u || (rest == 0x1000u && (q & 1u)))
		q++;                     /* may carry into the exponent: correct, up to inf */
	return (uint16_t)(sign | q);
}

static inline float mu_bf16_to_f32(uint16_t b) { return mu_bits_f32((uint32_t)b << 16); }

static inline uint16_t mu_f32_to_bf16(float f)
{
	uint32_t u = mu_f32_bits(f);
	if ((u & 0x7fffffffu) > 0x7f800000u)   /* nan: keep it quiet */
		return (uint16_t)((u >> 16) | 0x40u);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

#endif
