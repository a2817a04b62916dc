/* testutil.h — helpers the kernel tests share: float bit patterns, an allocation that ends the
 * test on failure, and splitmix64, a small well-mixed generator whose state the caller owns
 * (each test seeds its own, so its inputs do not depend on other tests). */
#ifndef MU_TESTS_TESTUTIL_H
#define MU_TESTS_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline uint32_t f2u(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static inline float u2f(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static inline int same_bits(float a, float b) { return f2u(a) == f2u(b); }

static inline void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return p;
}

static inline uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* [-1, 1) from 64 random bits. */
static inline float sym_unit(uint64_t r) { return (float)((double)(r >> 11) * 0x1p-52 - 1.0); }

#endif
