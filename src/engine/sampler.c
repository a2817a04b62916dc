/* sampler.c — the sampling chain described in sampler.h. */
#include "engine/sampler.h"

#include <string.h>

#include "base/arena.h"
#include "base/limits.h"
#include "base/mathx.h"

/* ---- PRNG: xoshiro256** (Blackman and Vigna), state filled by splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4])
{
	uint64_t r = rotl64(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return r;
}

void mu_sampler_reseed(struct mu_sampler *s, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		s->rng[i] = splitmix64(&x);
	s->cfg.seed = seed;
}

float mu_sampler_uniform(struct mu_sampler *s)
{
	/* 24 bits fit a float's significand exactly, so the result is below 1 */
	return (float)(xoshiro_next(s->rng) >> 40) * (1.0f / 16777216.0f);
}

/* ---- configuration ---- */

void mu_sampler_config_default(struct mu_sampler_config *cfg)
{
	cfg->temperature = 0.8f;
	cfg->top_k = 40;
	cfg->top_p = 0.95f;
	cfg->min_p = 0.05f;
	cfg->repeat_penalty = 1.0f;
	cfg->repeat_last_n = 64;
	cfg->seed = 0;
}

enum mu_err mu_sampler_config_check(const struct mu_sampler_config *cfg, struct mu_error *err)
{
	/* written so that NaN fails every test */
	if (!(cfg->temperature >= 0.0f && cfg->temperature <= 3.0e38f))
		return mu_errf(err, MU_ERR_ARG, "sampler: temperature must be a finite number >= 0 (0 = greedy)");
	if (cfg->top_k < 0)
		return mu_errf(err, MU_ERR_ARG, "sampler: top_k must be >= 0 (0 = off)");
	if (!(cfg->top_p > 0.0f && cfg->top_p <= 1.0f))
		return mu_errf(err, MU_ERR_ARG, "sampler: top_p must be in (0, 1] (1 = off)");
	if (!(cfg->min_p >= 0.0f && cfg->min_p <= 1.0f))
		return mu_errf(err, MU_ERR_ARG, "sampler: min_p must be in [0, 1] (0 = off)");
	if (!(cfg->repeat_penalty > 0.0f && cfg->repeat_penalty <= 3.0e38f))
		return mu_errf(err, MU_ERR_ARG, "sampler: repeat_penalty must be a finite number > 0 (1 = off)");
	if (cfg->repeat_last_n < 0)
		return mu_errf(err, MU_ERR_ARG, "sampler: repeat_last_n must be >= 0 (0 = off)");
	return MU_OK;
}

/* ---- memory ---- */

static int sampler_layout(struct mu_sampler *s, struct mu_arena *a, uint32_t n)
{
	s->cand = mu_arena_alloc(a, (size_t)n * sizeof *s->cand, _Alignof(struct mu_sampler_cand));
	s->seen = mu_arena_alloc(a, n, 1);
	return mu_arena_counting(a) || (s->cand && s->seen);
}

size_t mu_sampler_mem_size(uint32_t n_vocab)
{
	struct mu_sampler s;
	struct mu_arena a;
	if (n_vocab == 0 || n_vocab > MU_MAX_VOCAB)
		return 0;
	mu_arena_init(&a, NULL, 0);
	sampler_layout(&s, &a, n_vocab);
	return a.used + 16; /* slack for aligning the caller's block */
}

enum mu_err mu_sampler_init(struct mu_sampler *out, const struct mu_sampler_config *cfg, uint32_t n_vocab,
			    void *mem, size_t len, struct mu_error *err)
{
	struct mu_sampler s;
	struct mu_arena a;
	enum mu_err rc = mu_sampler_config_check(cfg, err);
	if (rc)
		return rc;
	if (n_vocab == 0 || n_vocab > MU_MAX_VOCAB)
		return mu_errf(err, MU_ERR_ARG, "sampler: vocabulary of %u tokens, must be 1..%d", n_vocab,
			       MU_MAX_VOCAB);
	if (mem == NULL)
		return mu_errf(err, MU_ERR_ARG, "sampler: no memory given");
	memset(&s, 0, sizeof s);
	mu_arena_init(&a, mem, len);
	if (!sampler_layout(&s, &a, n_vocab))
		return mu_errf(err, MU_ERR_NOMEM, "sampler: %zu bytes given, mu_sampler_mem_size(%u) asks for %zu",
			       len, n_vocab, mu_sampler_mem_size(n_vocab));
	memset(s.seen, 0, n_vocab);
	s.cfg = *cfg;
	s.n_vocab = n_vocab;
	mu_sampler_reseed(&s, cfg->seed);
	*out = s;
	return MU_OK;
}

/* ---- orderings (total: ties go to the lower id, so no sort stability question arises) ---- */

static int logit_before(const struct mu_sampler_cand *a, const struct mu_sampler_cand *b)
{
	return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int p_before(const struct mu_sampler_cand *a, const struct mu_sampler_cand *b)
{
	return a->p > b->p || (a->p == b->p && a->id < b->id);
}

typedef int (*cand_before_fn)(const struct mu_sampler_cand *, const struct mu_sampler_cand *);

static void cand_swap(struct mu_sampler_cand *a, struct mu_sampler_cand *b)
{
	struct mu_sampler_cand t = *a;
	*a = *b;
	*b = t;
}

/* Heap by `before` whose root is the candidate that comes last. */
static void heap_sift(struct mu_sampler_cand *v, size_t i, size_t n, cand_before_fn before)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && before(&v[c], &v[c + 1]))
			c++;
		if (!before(&v[i], &v[c]))
			return;
		cand_swap(&v[i], &v[c]);
		i = c;
	}
}

static void heap_build(struct mu_sampler_cand *v, size_t n, cand_before_fn before)
{
	for (size_t i = n / 2; i-- > 0;)
		heap_sift(v, i, n, before);
}

/* Turns a heap into an array in `before` order (the last candidate goes to the end first). */
static void heap_drain(struct mu_sampler_cand *v, size_t n, cand_before_fn before)
{
	for (size_t end = n; end > 1; end--) {
		cand_swap(&v[0], &v[end - 1]);
		heap_sift(v, 0, end - 1, before);
	}
}

static int is_sorted(const struct mu_sampler_cand *v, size_t n, cand_before_fn before)
{
	for (size_t i = 1; i < n; i++)
		if (before(&v[i], &v[i - 1]))
			return 0;
	return 1;
}

/* Heapsort: O(n log n) worst case, in place. */
static void sort_cands(struct mu_sampler_cand *v, size_t n, cand_before_fn before)
{
	if (is_sorted(v, n, before))
		return;
	heap_build(v, n, before);
	heap_drain(v, n, before);
}

/* Moves the k first-ranked of v[0..n) (by logit) to v[0..k), sorted. O(n log k): the heap
 * holds the best k seen so far with the worst of them at the root. */
static void select_top_k(struct mu_sampler_cand *v, size_t n, size_t k)
{
	heap_build(v, k, logit_before);
	for (size_t i = k; i < n; i++) {
		if (logit_before(&v[i], &v[0])) {
			v[0] = v[i];
			heap_sift(v, 0, k, logit_before);
		}
	}
	heap_drain(v, k, logit_before);
}

/* ---- sampling ---- */

static size_t window_start(const struct mu_sampler *s, size_t n_history)
{
	size_t last_n = (size_t)s->cfg.repeat_last_n;
	return n_history > last_n ? n_history - last_n : 0;
}

/* Step 1. Each distinct token in the window once, marked in `seen` and unmarked after. */
static void apply_penalty(struct mu_sampler *s, const int32_t *history, size_t n_history)
{
	float pen = s->cfg.repeat_penalty;
	size_t from = window_start(s, n_history);
	for (size_t i = from; i < n_history; i++) {
		int32_t id = history[i];
		if (s->seen[id])
			continue;
		s->seen[id] = 1;
		float l = s->cand[id].logit;
		if (l > 0.0f) {
			l = l / pen;
			if (l > 3.40282347e38f) /* a tiny penalty must not make +inf */
				l = 3.40282347e38f;
		} else {
			l = l * pen;
		}
		s->cand[id].logit = l;
	}
	for (size_t i = from; i < n_history; i++)
		s->seen[history[i]] = 0;
}

/* Step 5: the shortest prefix (by p) reaching top_p. Tokens with p < (1 - top_p) / (n - 1)
 * together hold less than 1 - top_p, so the prefix almost always lies among the others and
 * only those need sorting; when rounding says otherwise, everything is sorted. */
static size_t apply_top_p(struct mu_sampler_cand *v, size_t n, float top_p)
{
	size_t m = 0;
	if (n > 1) {
		float cut = (1.0f - top_p) / (float)(n - 1);
		for (size_t i = 0; i < n; i++)
			if (v[i].p >= cut)
				cand_swap(&v[m++], &v[i]);
	}
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			m = n;
		sort_cands(v, m, p_before);
		float cum = 0.0f;
		for (size_t i = 0; i < m; i++) {
			cum += v[i].p;
			if (cum >= top_p)
				return i + 1;
		}
	}
	return n;
}

enum mu_err mu_sampler_sample(struct mu_sampler *s, const float *logits, const int32_t *history,
			      size_t n_history, int32_t *token, struct mu_error *err)
{
	const struct mu_sampler_config *cfg = &s->cfg;
	struct mu_sampler_cand *v = s->cand;
	size_t n = s->n_vocab;
	int penalize = cfg->repeat_penalty != 1.0f && cfg->repeat_last_n > 0 && n_history > 0;

	/* validate everything before touching any state */
	if (penalize) {
		if (history == NULL)
			return mu_errf(err, MU_ERR_ARG, "sampler: history is NULL");
		for (size_t i = window_start(s, n_history); i < n_history; i++)
			if (history[i] < 0 || (uint32_t)history[i] >= s->n_vocab)
				return mu_errf(err, MU_ERR_ARG,
					       "sampler: history entry %zu is token %d, outside the vocabulary of %u", i,
					       history[i], s->n_vocab);
	}
	float max = -__builtin_inff();
	for (size_t i = 0; i < n; i++) {
		float l = logits[i];
		if (l != l || l == __builtin_inff())
			return mu_errf(err, MU_ERR_RANGE, "sampler: logit %zu is %s", i, l != l ? "NaN" : "+inf");
		if (l > max)
			max = l;
		v[i] = (struct mu_sampler_cand){l, 0.0f, (int32_t)i};
	}
	if (max == -__builtin_inff())
		return mu_errf(err, MU_ERR_RANGE, "sampler: every logit is -inf");

	if (penalize)
		apply_penalty(s, history, n_history);

	/* 2. greedy */
	if (cfg->temperature == 0.0f) {
		size_t best = 0;
		for (size_t i = 1; i < n; i++)
			if (v[i].logit > v[best].logit)
				best = i;
		*token = v[best].id;
		return MU_OK;
	}

	/* 3. top-k */
	int ranked = 0;
	if (cfg->top_k > 0 && (size_t)cfg->top_k < n) {
		select_top_k(v, n, (size_t)cfg->top_k);
		n = (size_t)cfg->top_k;
		ranked = 1;
	}

	/* 4. temperature and softmax */
	max = v[0].logit;
	if (!ranked)
		for (size_t i = 1; i < n; i++)
			if (v[i].logit > max)
				max = v[i].logit;
	float sum = 0.0f;
	for (size_t i = 0; i < n; i++) {
		v[i].p = mu_expf((v[i].logit - max) / cfg->temperature);
		sum += v[i].p;
	}
	/* sum >= 1: the maximum contributes e^0 */
	for (size_t i = 0; i < n; i++)
		v[i].p /= sum;

	/* 5. top-p */
	if (cfg->top_p < 1.0f)
		n = apply_top_p(v, n, cfg->top_p);

	/* 6. min-p: a stable compaction, so the order stays as it was */
	if (cfg->min_p > 0.0f) {
		float pmax = 0.0f;
		for (size_t i = 0; i < n; i++)
			if (v[i].p > pmax)
				pmax = v[i].p;
		float cut = cfg->min_p * pmax;
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			if (v[i].p >= cut)
				v[m++] = v[i];
		n = m;
	}

	/* 7. renormalize and draw */
	sum = 0.0f;
	for (size_t i = 0; i < n; i++)
		sum += v[i].p;
	float u = mu_sampler_uniform(s) * sum;
	float cum = 0.0f;
	for (size_t i = 0; i < n; i++) {
		cum += v[i].p;
		if (u < cum) {
			*token = v[i].id;
			return MU_OK;
		}
	}
	*token = v[n - 1].id;
	return MU_OK;
}
