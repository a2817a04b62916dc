/* test_sampler.c — the sampling chain: PRNG vectors, greedy, determinism, distributions,
 * each filter against a plain qsort-based reference, penalties, and refused configs. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/mathx.h"
#include "engine/sampler.h"
#include "test.h"

/* A sampler over malloc'd memory of exactly mu_sampler_mem_size bytes. */
struct smp {
	struct mu_sampler s;
	void *mem;
};

static enum mu_err smp_init(struct smp *x, const struct mu_sampler_config *cfg, uint32_t n_vocab,
			    struct mu_error *err)
{
	size_t need = mu_sampler_mem_size(n_vocab);
	x->mem = malloc(need ? need : 1);
	return mu_sampler_init(&x->s, cfg, n_vocab, x->mem, need, err);
}

static void smp_free(struct smp *x)
{
	free(x->mem);
	x->mem = NULL;
}

static struct mu_sampler_config cfg_off(float temperature, uint64_t seed)
{
	struct mu_sampler_config c = {temperature, 0, 1.0f, 0.0f, 1.0f, 0, seed};
	return c;
}

/* Test data from a fixed LCG, so the logits are the same on every run. */
static uint32_t lcg_state = 12345;
static float lcg_logit(void)
{
	lcg_state = lcg_state * 1664525u + 1013904223u;
	return (float)(lcg_state >> 8) / 16777216.0f * 20.0f - 10.0f;
}

static int32_t argmax(const float *l, size_t n)
{
	size_t b = 0;
	for (size_t i = 1; i < n; i++)
		if (l[i] > l[b])
			b = i;
	return (int32_t)b;
}

static void test_prng(void)
{
	struct smp x;
	struct mu_sampler_config c = cfg_off(1.0f, 1234567);
	struct mu_error err = {0};
	CHECK(smp_init(&x, &c, 4, &err) == MU_OK, "%s", err.msg);
	/* splitmix64's reference outputs for seed 1234567 fill the state */
	static const uint64_t sm[4] = {6457827717110365317u, 3203168211198807973u, 9817491932198370423u,
				       4593380528125082431u};
	CHECK(!memcmp(x.s.rng, sm, sizeof sm), "splitmix64 seeding");
	/* xoshiro256** from state {1, 2, 3, 4}: 11520, 0, 1509978240, 1215971899390074240, ... */
	static const uint32_t top24[8] = {0, 0, 0, 1105920, 1106102, 552962, 14709187, 7709033};
	x.s.rng[0] = 1, x.s.rng[1] = 2, x.s.rng[2] = 3, x.s.rng[3] = 4;
	int ok = 1;
	for (int i = 0; i < 8; i++)
		ok &= mu_sampler_uniform(&x.s) == (float)top24[i] / 16777216.0f;
	CHECK(ok, "xoshiro256** outputs");
	/* uniform in [0, 1) with mean 1/2 */
	mu_sampler_reseed(&x.s, 7);
	double sum = 0;
	float lo = 1, hi = 0;
	for (int i = 0; i < 100000; i++) {
		float u = mu_sampler_uniform(&x.s);
		sum += u;
		lo = u < lo ? u : lo;
		hi = u > hi ? u : hi;
	}
	CHECK(lo >= 0.0f && hi < 1.0f && fabs(sum / 100000 - 0.5) < 0.005, "uniform: %g..%g mean %g", lo, hi,
	      sum / 100000);
	smp_free(&x);
}

static void test_greedy(void)
{
	struct smp x;
	struct mu_sampler_config c = cfg_off(0.0f, 1);
	struct mu_error err = {0};
	enum { N = 1000 };
	float l[N];
	int32_t tok = -1;
	CHECK(smp_init(&x, &c, N, &err) == MU_OK, "%s", err.msg);
	int ok = 1;
	for (int row = 0; row < 100; row++) {
		for (int i = 0; i < N; i++)
			l[i] = lcg_logit();
		ok &= mu_sampler_sample(&x.s, l, NULL, 0, &tok, &err) == MU_OK && tok == argmax(l, N);
	}
	CHECK(ok, "greedy is argmax");
	/* ties: the lowest id */
	for (int i = 0; i < N; i++)
		l[i] = 1.0f;
	CHECK(mu_sampler_sample(&x.s, l, NULL, 0, &tok, &err) == MU_OK && tok == 0, "all equal -> 0, got %d", tok);
	l[500] = 2.0f, l[700] = 2.0f;
	/* greedy consumes no randomness */
	uint64_t before[4];
	memcpy(before, x.s.rng, sizeof before);
	CHECK(mu_sampler_sample(&x.s, l, NULL, 0, &tok, &err) == MU_OK && tok == 500, "tie -> 500, got %d", tok);
	CHECK(!memcmp(before, x.s.rng, sizeof before), "rng untouched");
	/* -inf logits are fine, and never chosen */
	for (int i = 0; i < N; i++)
		l[i] = -INFINITY;
	l[999] = -1e30f;
	CHECK(mu_sampler_sample(&x.s, l, NULL, 0, &tok, &err) == MU_OK && tok == 999, "-inf");
	smp_free(&x);
}

static void test_determinism(void)
{
	struct smp a, b, d;
	struct mu_error err = {0};
	struct mu_sampler_config c;
	mu_sampler_config_default(&c);
	c.seed = 42;
	enum { N = 300, DRAWS = 1000 };
	static float l[DRAWS][N];
	for (int r = 0; r < DRAWS; r++)
		for (int i = 0; i < N; i++)
			l[r][i] = lcg_logit() * 0.3f;
	CHECK(smp_init(&a, &c, N, &err) == MU_OK, "%s", err.msg);
	CHECK(smp_init(&b, &c, N, &err) == MU_OK, "%s", err.msg);
	c.seed = 43;
	CHECK(smp_init(&d, &c, N, &err) == MU_OK, "%s", err.msg);
	static int32_t ta[DRAWS], tb[DRAWS], td[DRAWS];
	int ok = 1, differ = 0;
	for (int r = 0; r < DRAWS; r++) {
		ok &= mu_sampler_sample(&a.s, l[r], ta, (size_t)r, &ta[r], &err) == MU_OK;
		ok &= mu_sampler_sample(&b.s, l[r], tb, (size_t)r, &tb[r], &err) == MU_OK;
		ok &= mu_sampler_sample(&d.s, l[r], td, (size_t)r, &td[r], &err) == MU_OK;
		differ += ta[r] != td[r];
	}
	CHECK(ok, "%s", err.msg);
	CHECK(!memcmp(ta, tb, sizeof ta), "same seed, same 1000 tokens");
	CHECK(differ > 100, "different seeds: only %d of %d tokens differ", differ, DRAWS);
	/* reseeding starts the same sequence again */
	mu_sampler_reseed(&b.s, 42);
	ok = 1;
	for (int r = 0; r < DRAWS; r++) {
		int32_t t;
		ok &= mu_sampler_sample(&b.s, l[r], ta, (size_t)r, &t, &err) == MU_OK && t == ta[r];
	}
	CHECK(ok, "reseed repeats the sequence");
	smp_free(&a);
	smp_free(&b);
	smp_free(&d);
}

static void test_top_k_1_is_greedy(void)
{
	static const float temps[] = {1e-3f, 0.5f, 1.0f, 10.0f, 1e6f};
	enum { N = 512 };
	float l[N];
	struct mu_error err = {0};
	int ok = 1;
	for (size_t ti = 0; ti < sizeof temps / sizeof temps[0]; ti++) {
		struct smp x;
		struct mu_sampler_config c = cfg_off(temps[ti], ti);
		c.top_k = 1;
		CHECK(smp_init(&x, &c, N, &err) == MU_OK, "%s", err.msg);
		for (int row = 0; row < 50; row++) {
			for (int i = 0; i < N; i++)
				l[i] = row % 5 == 0 ? (float)(int)lcg_logit() : lcg_logit(); /* some ties */
			int32_t t;
			ok &= mu_sampler_sample(&x.s, l, NULL, 0, &t, &err) == MU_OK && t == argmax(l, N);
		}
		smp_free(&x);
	}
	CHECK(ok, "top_k = 1 is greedy at every temperature");
}

/* Frequencies of `draws` samples against softmax(l / T) computed in double. */
static double max_freq_error(const float *l, int n, float temp, int draws, uint64_t seed)
{
	struct smp x;
	struct mu_error err = {0};
	struct mu_sampler_config c = cfg_off(temp, seed);
	int cnt[16] = {0};
	double p[16], sum = 0, worst = 0;
	if (smp_init(&x, &c, (uint32_t)n, &err))
		return 1;
	for (int i = 0; i < draws; i++) {
		int32_t t = -1;
		if (mu_sampler_sample(&x.s, l, NULL, 0, &t, &err) || t < 0 || t >= n)
			return 1;
		cnt[t]++;
	}
	smp_free(&x);
	for (int i = 0; i < n; i++)
		sum += p[i] = exp((double)l[i] / temp);
	for (int i = 0; i < n; i++) {
		double e = fabs((double)cnt[i] / draws - p[i] / sum);
		worst = e > worst ? e : worst;
	}
	return worst;
}

static void test_distribution(void)
{
	static const float l[4] = {1.0f, 2.0f, 0.5f, -1.0f};
	/* 200000 draws: one standard deviation of a frequency is at most 0.0011 */
	double e1 = max_freq_error(l, 4, 1.0f, 200000, 99);
	CHECK(e1 < 0.005, "temperature 1: frequency off by %g", e1);
	double e2 = max_freq_error(l, 4, 2.0f, 200000, 100);
	CHECK(e2 < 0.005, "temperature 2: frequency off by %g", e2);
	double e3 = max_freq_error(l, 4, 0.5f, 200000, 101);
	CHECK(e3 < 0.005, "temperature 0.5: frequency off by %g", e3);
}

/* Counts of tokens drawn from fixed probabilities p (logits log p) under a config. */
static void draw_counts(struct mu_sampler_config c, const float *p, int n, int draws, int *cnt)
{
	struct smp x;
	struct mu_error err = {0};
	float l[16];
	for (int i = 0; i < n; i++) {
		l[i] = (float)log(p[i]);
		cnt[i] = 0;
	}
	if (smp_init(&x, &c, (uint32_t)n, &err)) {
		CHECK(0, "%s", err.msg);
		return;
	}
	for (int i = 0; i < draws; i++) {
		int32_t t = -1;
		if (mu_sampler_sample(&x.s, l, NULL, 0, &t, &err) == MU_OK && t >= 0 && t < n)
			cnt[t]++;
	}
	smp_free(&x);
}

static void test_filters(void)
{
	static const float p[4] = {0.5f, 0.3f, 0.15f, 0.05f};
	int cnt[4];
	struct mu_sampler_config c = cfg_off(1.0f, 5);

	c.top_p = 0.7f; /* 0.5 < 0.7 <= 0.8: tokens 0 and 1 */
	draw_counts(c, p, 4, 20000, cnt);
	CHECK(cnt[2] == 0 && cnt[3] == 0 && cnt[0] + cnt[1] == 20000, "top_p 0.7: %d %d %d %d", cnt[0], cnt[1],
	      cnt[2], cnt[3]);
	CHECK(fabs(cnt[0] / 20000.0 - 0.625) < 0.02, "top_p 0.7 renormalized: %d", cnt[0]);
	c.top_p = 0.45f; /* token 0 alone */
	draw_counts(c, p, 4, 1000, cnt);
	CHECK(cnt[0] == 1000, "top_p 0.45: %d", cnt[0]);
	c.top_p = 0.9f; /* 0.8 < 0.9 <= 0.95: tokens 0..2 */
	draw_counts(c, p, 4, 20000, cnt);
	CHECK(cnt[3] == 0 && cnt[2] > 0, "top_p 0.9: %d %d", cnt[2], cnt[3]);

	c = cfg_off(1.0f, 6);
	c.min_p = 0.4f; /* keep p >= 0.2: tokens 0 and 1 */
	draw_counts(c, p, 4, 20000, cnt);
	CHECK(cnt[2] == 0 && cnt[3] == 0 && cnt[1] > 0, "min_p 0.4: %d %d %d %d", cnt[0], cnt[1], cnt[2], cnt[3]);
	c.min_p = 0.2f; /* keep p >= 0.1: tokens 0..2 */
	draw_counts(c, p, 4, 20000, cnt);
	CHECK(cnt[3] == 0 && cnt[2] > 0, "min_p 0.2: %d %d", cnt[2], cnt[3]);
	c.min_p = 1.0f; /* only the most likely */
	draw_counts(c, p, 4, 1000, cnt);
	CHECK(cnt[0] == 1000, "min_p 1: %d", cnt[0]);

	c = cfg_off(1.0f, 7);
	c.top_k = 2;
	draw_counts(c, p, 4, 20000, cnt);
	CHECK(cnt[2] == 0 && cnt[3] == 0 && fabs(cnt[0] / 20000.0 - 0.625) < 0.02, "top_k 2: %d %d %d %d", cnt[0],
	      cnt[1], cnt[2], cnt[3]);
	c.top_k = 100; /* more than the vocabulary: off */
	draw_counts(c, p, 4, 20000, cnt);
	CHECK(cnt[3] > 0, "top_k 100: %d", cnt[3]);
}

/* ---- the whole chain against a reference built from qsort ---- */

struct rc {
	float l, p;
	int32_t id;
};

static int ref_by_logit(const void *a, const void *b)
{
	const struct rc *x = a, *y = b;
	if (x->l != y->l)
		return x->l > y->l ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int ref_by_p(const void *a, const void *b)
{
	const struct rc *x = a, *y = b;
	if (x->p != y->p)
		return x->p > y->p ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int32_t ref_sample(const struct mu_sampler_config *c, const float *logits, size_t n, float u01,
			  struct rc *v)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (struct rc){logits[i], 0, (int32_t)i};
	if (c->top_k > 0 && (size_t)c->top_k < n) {
		qsort(v, n, sizeof *v, ref_by_logit);
		n = (size_t)c->top_k;
	}
	float max = v[0].l, sum = 0;
	for (size_t i = 0; i < n; i++)
		max = v[i].l > max ? v[i].l : max;
	for (size_t i = 0; i < n; i++)
		sum += v[i].p = mu_expf((v[i].l - max) / c->temperature);
	for (size_t i = 0; i < n; i++)
		v[i].p /= sum;
	if (c->top_p < 1.0f) {
		qsort(v, n, sizeof *v, ref_by_p);
		float cum = 0;
		size_t keep = n;
		for (size_t i = 0; i < n; i++) {
			cum += v[i].p;
			if (cum >= c->top_p) {
				keep = i + 1;
				break;
			}
		}
		n = keep;
	}
	if (c->min_p > 0) {
		float pm = 0;
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			pm = v[i].p > pm ? v[i].p : pm;
		for (size_t i = 0; i < n; i++)
			if (v[i].p >= c->min_p * pm)
				v[m++] = v[i];
		n = m;
	}
	sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += v[i].p;
	float u = u01 * sum, cum = 0;
	for (size_t i = 0; i < n; i++) {
		cum += v[i].p;
		if (u < cum)
			return v[i].id;
	}
	return v[n - 1].id;
}

static void test_against_reference(void)
{
	enum { N = 32000, ROWS = 30 };
	static const struct {
		float temp;
		int32_t k;
		float top_p, min_p;
	} cfgs[] = {
		{1.0f, 0, 1.0f, 0.0f},  {0.7f, 40, 1.0f, 0.0f}, {1.0f, 0, 0.9f, 0.0f},  {0.8f, 40, 0.95f, 0.05f},
		{1.5f, 0, 0.5f, 0.1f},  {1.0f, 0, 1.0f, 0.02f}, {2.0f, 1000, 0.99f, 0.0f}, {0.3f, 0, 0.999f, 0.0f},
	};
	float *l = malloc(N * sizeof *l);
	struct rc *v = malloc(N * sizeof *v);
	struct mu_error err = {0};
	for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
		struct mu_sampler_config c = cfg_off(cfgs[ci].temp, 1000 + ci);
		c.top_k = cfgs[ci].k, c.top_p = cfgs[ci].top_p, c.min_p = cfgs[ci].min_p;
		struct smp x, shadow;
		CHECK(smp_init(&x, &c, N, &err) == MU_OK, "%s", err.msg);
		CHECK(smp_init(&shadow, &c, N, &err) == MU_OK, "%s", err.msg);
		int ok = 1;
		for (int row = 0; row < ROWS; row++) {
			for (int i = 0; i < N; i++)
				l[i] = row % 3 == 0 ? (float)(int)(lcg_logit() * 0.5f) : lcg_logit() * 0.6f;
			int32_t t = -1;
			ok &= mu_sampler_sample(&x.s, l, NULL, 0, &t, &err) == MU_OK;
			ok &= t == ref_sample(&c, l, N, mu_sampler_uniform(&shadow.s), v);
		}
		CHECK(ok, "config %zu differs from the reference", ci);
		smp_free(&x);
		smp_free(&shadow);
	}
	free(l);
	free(v);
}

static void test_penalty(void)
{
	struct smp x;
	struct mu_error err = {0};
	struct mu_sampler_config c = cfg_off(0.0f, 1);
	c.repeat_penalty = 1.5f;
	c.repeat_last_n = 2;
	int32_t t = -1;
	CHECK(smp_init(&x, &c, 4, &err) == MU_OK, "%s", err.msg);

	float pos[4] = {2.0f, 1.9f, -1.0f, -1.1f}; /* 2 / 1.5 = 1.33 < 1.9 */
	float keep[4];
	memcpy(keep, pos, sizeof keep);
	const int32_t h0[] = {0};
	CHECK(mu_sampler_sample(&x.s, pos, h0, 1, &t, &err) == MU_OK && t == 1, "positive logit divided: %d", t);
	CHECK(!memcmp(keep, pos, sizeof keep), "logits untouched");
	CHECK(mu_sampler_sample(&x.s, pos, NULL, 0, &t, &err) == MU_OK && t == 0, "no history: %d", t);

	float neg[4] = {-1.0f, -1.2f, -5.0f, -5.0f}; /* -1 * 1.5 = -1.5 < -1.2 */
	CHECK(mu_sampler_sample(&x.s, neg, h0, 1, &t, &err) == MU_OK && t == 1, "negative logit multiplied: %d", t);

	const int32_t h1[] = {0, 3, 3}; /* token 0 is outside the last 2 */
	CHECK(mu_sampler_sample(&x.s, pos, h1, 3, &t, &err) == MU_OK && t == 0, "window: %d", t);

	float once[4] = {2.0f, 1.0f, 0.0f, 0.0f}; /* once: 1.33 > 1; three times would be 0.59 */
	const int32_t h2[] = {0, 0};
	CHECK(mu_sampler_sample(&x.s, once, h2, 2, &t, &err) == MU_OK && t == 0, "once per token: %d", t);
	/* the marks are cleared: the same call again gives the same answer */
	CHECK(mu_sampler_sample(&x.s, once, h2, 2, &t, &err) == MU_OK && t == 0, "marks cleared: %d", t);
	int clean = 1;
	for (int i = 0; i < 4; i++)
		clean &= x.s.seen[i] == 0;
	CHECK(clean, "seen marks cleared");

	/* bad history ids are refused even when only the window is read */
	const int32_t hb[] = {0, 4};
	CHECK(mu_sampler_sample(&x.s, pos, hb, 2, &t, &err) == MU_ERR_ARG, "history id 4");
	const int32_t hn[] = {-1};
	CHECK(mu_sampler_sample(&x.s, pos, hn, 1, &t, &err) == MU_ERR_ARG, "history id -1");
	CHECK(mu_sampler_sample(&x.s, pos, NULL, 3, &t, &err) == MU_ERR_ARG, "history NULL");
	smp_free(&x);

	/* a tiny penalty cannot turn a logit into +inf */
	c.repeat_penalty = 1e-30f;
	c.temperature = 1.0f;
	CHECK(smp_init(&x, &c, 4, &err) == MU_OK, "%s", err.msg);
	float big[4] = {1e30f, 1.0f, 0.0f, 0.0f};
	CHECK(mu_sampler_sample(&x.s, big, h0, 1, &t, &err) == MU_OK && t == 0, "clamped: %d", t);
	smp_free(&x);
}

static void test_bad_input(void)
{
	struct mu_error err = {0};
	struct mu_sampler_config good = cfg_off(1.0f, 0), c;
	CHECK(mu_sampler_config_check(&good, &err) == MU_OK, "%s", err.msg);
	mu_sampler_config_default(&c);
	CHECK(mu_sampler_config_check(&c, &err) == MU_OK, "defaults: %s", err.msg);

#define BAD(field, value)                                                                   \
	do {                                                                                \
		c = good;                                                                   \
		c.field = value;                                                            \
		err.msg[0] = 0;                                                             \
		CHECK(mu_sampler_config_check(&c, &err) == MU_ERR_ARG && strstr(err.msg, #field), \
		      #field " = " #value ": %s", err.msg);                                  \
	} while (0)
	BAD(temperature, -0.1f);
	BAD(temperature, NAN);
	BAD(temperature, INFINITY);
	BAD(top_k, -1);
	BAD(top_p, 0.0f);
	BAD(top_p, 1.5f);
	BAD(top_p, NAN);
	BAD(min_p, -0.1f);
	BAD(min_p, 1.01f);
	BAD(repeat_penalty, 0.0f);
	BAD(repeat_penalty, -1.0f);
	BAD(repeat_penalty, INFINITY);
	BAD(repeat_last_n, -1);
#undef BAD

	struct smp x;
	c = good;
	c.top_p = 2.0f;
	CHECK(smp_init(&x, &c, 4, &err) == MU_ERR_ARG, "init refuses a bad config");
	smp_free(&x);
	CHECK(mu_sampler_mem_size(0) == 0 && mu_sampler_mem_size(MU_MAX_VOCAB + 1) == 0, "mem_size range");
	CHECK(smp_init(&x, &good, 0, &err) == MU_ERR_ARG, "n_vocab 0");
	smp_free(&x);
	uint8_t small[16];
	struct mu_sampler s;
	CHECK(mu_sampler_init(&s, &good, 100, small, sizeof small, &err) == MU_ERR_NOMEM, "small memory");

	/* logits the sampler cannot use */
	CHECK(smp_init(&x, &good, 4, &err) == MU_OK, "%s", err.msg);
	float nan_l[4] = {0, NAN, 0, 0}, inf_l[4] = {0, 0, INFINITY, 0},
	      ninf[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
	int32_t t;
	uint64_t before[4];
	memcpy(before, x.s.rng, sizeof before);
	CHECK(mu_sampler_sample(&x.s, nan_l, NULL, 0, &t, &err) == MU_ERR_RANGE, "NaN logit");
	CHECK(mu_sampler_sample(&x.s, inf_l, NULL, 0, &t, &err) == MU_ERR_RANGE, "+inf logit");
	CHECK(mu_sampler_sample(&x.s, ninf, NULL, 0, &t, &err) == MU_ERR_RANGE, "all -inf");
	CHECK(!memcmp(before, x.s.rng, sizeof before), "a refused call consumes no randomness");
	smp_free(&x);
}

int main(void)
{
	test_prng();
	test_greedy();
	test_determinism();
	test_top_k_1_is_greedy();
	test_distribution();
	test_filters();
	test_against_reference();
	test_penalty();
	test_bad_input();
	return test_done();
}
