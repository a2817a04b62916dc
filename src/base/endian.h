/* endian.h — explicit little/big-endian loads and stores. Never cast a byte buffer to a
 * struct or a wider integer pointer: decode each field from bytes. */
#ifndef MU_BASE_ENDIAN_H
#define MU_BASE_ENDIAN_H

#include <stdint.h>
#include <string.h>

static inline uint16_t le16_load(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t le32_load(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t le64_load(const uint8_t *p)
{
	return (uint64_t)le32_load(p) | ((uint64_t)le32_load(p + 4) << 32);
}
static inline float lef32_load(const uint8_t *p)
{
	uint32_t u = le32_load(p);
	float f;
	memcpy(&f, &u, 4);
	return f;
}
static inline double lef64_load(const uint8_t *p)
{
	uint64_t u = le64_load(p);
	double d;
	memcpy(&d, &u, 8);
	return d;
}
static inline void le16_store(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void le32_store(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void le64_store(uint8_t *p, uint64_t v) { le32_store(p, (uint32_t)v); le32_store(p + 4, (uint32_t)(v >> 32)); }
static inline void lef32_store(uint8_t *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	le32_store(p, u);
}
static inline uint32_t be32_load(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline void be32_store(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

#endif
