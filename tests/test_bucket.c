/* test_bucket.c — the egress token bucket: tables of times, no sleeps.
 *
 * The property every egress test relies on: over any interval [t0, t1] the bytes granted are
 * at most burst + rate × (t1 - t0) / 1e9. It is checked exactly (integer arithmetic) over random
 * schedules for every pair of grant times, besides the fixed cases. */
#include <stdint.h>
#include <string.h>

#include "base/bucket.h"
#include "test.h"

#define NS 1000000000ull

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static void fixed_cases(void)
{
	struct mu_bucket b;
	struct mu_error err;
	uint64_t wait;

	CHECK(mu_bucket_init(&b, 0, 10, 0, &err) == MU_ERR_RANGE, "rate 0 refused");
	CHECK(mu_bucket_init(&b, 10, 0, 0, &err) == MU_ERR_RANGE, "burst 0 refused");
	CHECK(mu_bucket_init(&b, (1ull << 32), 10, 0, &err) == MU_ERR_RANGE, "rate 2^32 refused");
	CHECK(mu_bucket_init(&b, 10, (1ull << 32), 0, &err) == MU_ERR_RANGE, "burst 2^32 refused");

	/* starts full, then refills at rate */
	CHECK(mu_bucket_init(&b, 100, 50, 1000, &err) == MU_OK, "%s", err.msg);
	CHECK_EQ_INT(mu_bucket_grant(&b, 80, 1000, &wait), 50);
	CHECK_EQ_INT(mu_bucket_grant(&b, 1, 1000, &wait), 0);
	CHECK_EQ_INT(wait, NS / 100); /* one byte at 100 B/s: 10 ms */
	CHECK_EQ_INT(mu_bucket_grant(&b, 30, 1000, &wait), 0);
	CHECK_EQ_INT(wait, 30 * NS / 100);
	CHECK_EQ_INT(mu_bucket_grant(&b, 30, 1000 + 30 * NS / 100 - 1, NULL), 29); /* not quite 30 yet */
	CHECK_EQ_INT(mu_bucket_grant(&b, 1, 1000 + 30 * NS / 100, NULL), 1);
	/* a wait longer than what fills the bucket gives burst, not more */
	CHECK_EQ_INT(mu_bucket_available(&b, 1000 + 3600 * NS), 50);
	/* a clock going backwards adds nothing */
	CHECK_EQ_INT(mu_bucket_grant(&b, 50, 1000 + 3600 * NS, NULL), 50);
	CHECK_EQ_INT(mu_bucket_available(&b, 5), 0);
	CHECK_EQ_INT(mu_bucket_available(&b, 1000 + 3600 * NS), 0);
	/* want larger than burst: waits for burst, never for more */
	CHECK_EQ_INT(mu_bucket_grant(&b, 1000, 1000 + 3600 * NS, &wait), 0);
	CHECK_EQ_INT(wait, 50 * NS / 100);
	CHECK_EQ_INT(mu_bucket_grant(&b, 0, 1000 + 3600 * NS, &wait), 0);

	/* fractional rates accumulate exactly: 3 B/s over (almost) 1/3 s steps gives about one byte
	 * per step (a burst of 1 would drop the byte that rounds over) */
	CHECK(mu_bucket_init(&b, 3, 2, 0, &err) == MU_OK, "%s", err.msg);
	CHECK_EQ_INT(mu_bucket_grant(&b, 1, 0, NULL), 1);
	uint64_t t = 0, got = 0;
	for (int i = 0; i < 3000; i++) {
		t += NS / 3; /* 333333333 ns: slightly less than a third */
		got += mu_bucket_grant(&b, 1, t, NULL);
	}
	CHECK(got <= 3 * t / NS + 1 && got >= 3 * t / NS - 1, "got %llu in %llu ns", (unsigned long long)got,
	      (unsigned long long)t);

	/* the largest rate and burst do not overflow */
	CHECK(mu_bucket_init(&b, 0xffffffffull, 0xffffffffull, 0, &err) == MU_OK, "%s", err.msg);
	CHECK_EQ_INT(mu_bucket_grant(&b, UINT64_MAX, 0, NULL), 0xffffffffull);
	CHECK_EQ_INT(mu_bucket_available(&b, UINT64_MAX), 0xffffffffull);
	CHECK_EQ_INT(mu_bucket_grant(&b, 7, UINT64_MAX, NULL), 7);
}

/* Random schedules: grants at random times, then the bound over every window. */
static void windows(void)
{
	enum { N = 400 };
	static uint64_t when[N], got[N];
	for (int round = 0; round < 200; round++) {
		uint64_t rate = 1 + rnd() % 5000, burst = 1 + rnd() % 3000;
		struct mu_bucket b;
		struct mu_error err;
		uint64_t t = rnd() % NS;
		if (mu_bucket_init(&b, rate, burst, t, &err) != MU_OK) {
			CHECK(0, "%s", err.msg);
			return;
		}
		for (int i = 0; i < N; i++) {
			t += rnd() % (round % 2 ? NS / 50 : 3 * NS); /* dense or sparse writers */
			when[i] = t;
			got[i] = mu_bucket_grant(&b, 1 + rnd() % (2 * burst), t, NULL);
		}
		int broken = 0;
		for (int i = 0; i < N && !broken; i++) {
			uint64_t sum = 0;
			for (int j = i; j < N; j++) {
				sum += got[j];
				/* sum <= burst + rate * (when[j] - when[i]) / 1e9, exactly */
				uint64_t dt = when[j] - when[i];
				uint64_t allowed_whole = dt / NS * rate + (dt % NS) * rate / NS;
				if (sum > burst + allowed_whole) {
					broken = 1;
					CHECK(0, "round %d: %llu bytes in [%d, %d] over the bound %llu", round,
					      (unsigned long long)sum, i, j, (unsigned long long)(burst + allowed_whole));
					break;
				}
			}
		}
		if (!broken)
			CHECK(1, "window bound");
	}
}

int main(void)
{
	fixed_cases();
	windows();
	return test_done();
}
