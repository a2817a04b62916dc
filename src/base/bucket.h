/* bucket.h — the egress token bucket, used twice: inside the enclave on every byte it writes to
 * its channel, and in the proxy on every byte of enclave-derived output it releases to clients.
 *
 * Tokens are bytes. The bucket starts full (burst bytes), refills at rate bytes per second up
 * to burst, and a write of n bytes may go only when n tokens are there. So over any interval of
 * t seconds at most burst + rate × t bytes pass: the bound the egress tests check.
 *
 * Time is passed in (nanoseconds of a monotonic clock), never read here, so the bound is
 * testable with tables of times. Arithmetic is exact integer arithmetic: the fractional part of
 * a refill is kept in units of 1/1e9 byte, so no rounding ever adds a byte.
 *
 * Writers never ask for more than burst at once: mu_bucket_grant() returns how many of the
 * wanted bytes may go now (at most burst), and the writer sends that many and asks again. */
#ifndef MU_BASE_BUCKET_H
#define MU_BASE_BUCKET_H

#include <stdint.h>

#include "base/err.h"

struct mu_bucket {
	uint64_t rate;   /* bytes per second, 1 .. MU_EGRESS_MAX_RATE */
	uint64_t burst;  /* bytes, 1 .. MU_EGRESS_MAX_BURST */
	uint64_t tokens; /* whole bytes available, <= burst */
	uint64_t frac;   /* fraction of the next byte, in 1e-9 byte units (< 1e9) */
	uint64_t last_ns;
};

/* MU_ERR_RANGE when rate or burst is 0 or above its maximum. The bucket starts full at now_ns. */
enum mu_err mu_bucket_init(struct mu_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns,
			   struct mu_error *err);

/* Refills for the time passed since the last call (a clock going backwards adds nothing) and
 * takes min(want, tokens) bytes: the number returned may be written now. When it is 0,
 * *wait_ns (may be NULL) is how long until min(want, burst) bytes are there. */
uint64_t mu_bucket_grant(struct mu_bucket *b, uint64_t want, uint64_t now_ns, uint64_t *wait_ns);

/* Whole bytes available at now_ns (refilling first), without taking any. */
uint64_t mu_bucket_available(struct mu_bucket *b, uint64_t now_ns);

#endif
