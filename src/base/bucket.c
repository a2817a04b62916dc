/* bucket.c — the egress token bucket (see bucket.h). */
#include "base/bucket.h"

#include <string.h>

#include "base/limits.h"

#define NS 1000000000ull

enum mu_err mu_bucket_init(struct mu_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns,
			   struct mu_error *err)
{
	memset(b, 0, sizeof *b);
	if (rate == 0 || rate > MU_EGRESS_MAX_RATE)
		return mu_errf(err, MU_ERR_RANGE, "egress rate %llu bytes/s is outside 1..%llu",
			       (unsigned long long)rate, (unsigned long long)MU_EGRESS_MAX_RATE);
	if (burst == 0 || burst > MU_EGRESS_MAX_BURST)
		return mu_errf(err, MU_ERR_RANGE, "egress burst %llu bytes is outside 1..%llu",
			       (unsigned long long)burst, (unsigned long long)MU_EGRESS_MAX_BURST);
	b->rate = rate;
	b->burst = burst;
	b->tokens = burst;
	b->last_ns = now_ns;
	return MU_OK;
}

static void refill(struct mu_bucket *b, uint64_t now_ns)
{
	if (now_ns <= b->last_ns)
		return; /* time stood still or went backwards: nothing is added */
	uint64_t dt = now_ns - b->last_ns;
	b->last_ns = now_ns;
	if (b->tokens >= b->burst) {
		b->frac = 0;
		return;
	}
	/* Units of 1e-9 byte needed to fill up: (burst - tokens) * 1e9 - frac, below 2^32 * 1e9
	 * < 2^62. dt * rate could overflow, so compare dt with the time to fill first. */
	uint64_t need = (b->burst - b->tokens) * NS - b->frac;
	uint64_t t_full = need / b->rate + (need % b->rate != 0);
	if (dt >= t_full) {
		b->tokens = b->burst;
		b->frac = 0;
		return;
	}
	uint64_t add = dt * b->rate + b->frac; /* < need + 1e9 < 2^63 */
	b->tokens += add / NS;
	b->frac = add % NS;
}

uint64_t mu_bucket_available(struct mu_bucket *b, uint64_t now_ns)
{
	refill(b, now_ns);
	return b->tokens;
}

uint64_t mu_bucket_grant(struct mu_bucket *b, uint64_t want, uint64_t now_ns, uint64_t *wait_ns)
{
	refill(b, now_ns);
	if (wait_ns)
		*wait_ns = 0;
	if (want == 0)
		return 0;
	uint64_t n = want < b->tokens ? want : b->tokens;
	if (n > 0) {
		b->tokens -= n;
		return n;
	}
	if (wait_ns) {
		uint64_t target = want < b->burst ? want : b->burst;
		uint64_t need = target * NS - b->frac; /* tokens is 0 here */
		*wait_ns = need / b->rate + (need % b->rate != 0);
	}
	return 0;
}
