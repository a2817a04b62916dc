/* sampler.h — picks the next token from a row of logits, deterministically.
 *
 * Steps, in order (each one skipped when its setting is "off"):
 *   1. repetition penalty: every distinct token among the last repeat_last_n entries of the
 *      history has its logit l replaced by l / repeat_penalty when l > 0, by
 *      l * repeat_penalty otherwise (llama.cpp's rule; applied once per distinct token; a
 *      quotient beyond the largest float is clamped to it);
 *   2. temperature == 0: greedy, the highest logit (equal logits: the lowest id);
 *   3. top-k: only the k highest logits stay (equal logits: lower ids first), sorted;
 *   4. temperature and softmax: p_i = e^((l_i - max) / temperature) / sum over what stayed;
 *   5. top-p: in order of decreasing p (equal p: lower id first), the shortest prefix whose
 *      probabilities add up to at least top_p stays (at least one token);
 *   6. min-p: tokens with p_i < min_p * max_j p_j go;
 *   7. draw: u = (top 24 bits of the next PRNG output) * 2^-24 in [0, 1); walking the
 *      remaining candidates with a running sum of p, the first at which the sum exceeds
 *      u * (sum of all remaining p) is the token (the last one if rounding leaves none).
 * Scaling by a positive temperature keeps the order of the logits, so top-k ranks before
 * scaling, on the exact penalized logits; that makes top_k = 1 the greedy pick at any
 * temperature. The candidates are walked in their current order: by rank after top-k or top-p,
 * by id otherwise. The exponential is mu_expf and every sum runs in that fixed order, so the
 * same logits, history, config and seed give the same token on every machine.
 *
 * The PRNG is xoshiro256** seeded from the 64-bit seed through splitmix64; each draw at a
 * positive temperature consumes one output, a greedy pick none.
 *
 * Memory: mu_sampler_mem_size(n_vocab) bytes granted at init (12 bytes per token for the
 * candidate list plus 1 for the penalty marks). Sampling allocates nothing and never writes
 * to the logits, which may be reused by the caller. A sampler holds its PRNG state, so one
 * sampler serves one sequence at a time.
 */
#ifndef MU_ENGINE_SAMPLER_H
#define MU_ENGINE_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct mu_sampler_config {
	float temperature;      /* >= 0; 0 = greedy */
	int32_t top_k;          /* >= 0; 0 = off; values >= n_vocab are off too */
	float top_p;            /* (0, 1]; 1 = off */
	float min_p;            /* [0, 1]; 0 = off */
	float repeat_penalty;   /* > 0; 1 = off */
	int32_t repeat_last_n;  /* >= 0; 0 = off */
	uint64_t seed;
};

/* llama.cpp's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, penalty off
 * (1.0, window 64); seed 0. */
void mu_sampler_config_default(struct mu_sampler_config *cfg);

/* Checks every field against the ranges above; MU_ERR_ARG naming the field otherwise. */
enum mu_err mu_sampler_config_check(const struct mu_sampler_config *cfg, struct mu_error *err);

struct mu_sampler_cand {
	float logit; /* after the penalty */
	float p;
	int32_t id;
};

struct mu_sampler {
	struct mu_sampler_config cfg;
	uint32_t n_vocab;
	uint64_t rng[4];
	struct mu_sampler_cand *cand; /* n_vocab */
	uint8_t *seen;                /* n_vocab, all zero between calls */
};

/* Bytes mu_sampler_init needs for a vocabulary of n_vocab tokens (0 when n_vocab is 0 or
 * above MU_MAX_VOCAB). */
size_t mu_sampler_mem_size(uint32_t n_vocab);

/* Checks cfg and sets s up over mem[0..len) (mu_sampler_mem_size(n_vocab) bytes, which must
 * outlive s), seeding the PRNG from cfg->seed. */
enum mu_err mu_sampler_init(struct mu_sampler *s, const struct mu_sampler_config *cfg, uint32_t n_vocab,
			    void *mem, size_t len, struct mu_error *err);

/* Restarts the PRNG from seed (the config keeps its other settings). */
void mu_sampler_reseed(struct mu_sampler *s, uint64_t seed);

/* Picks a token from logits[0..n_vocab) given the ids generated or read so far,
 * history[0..n_history) (oldest first; only its last repeat_last_n entries are read, and
 * only when the penalty is on; NULL when n_history is 0). Fails with MU_ERR_ARG for a history
 * id it reads that is outside the vocabulary, MU_ERR_RANGE when a logit is NaN or +inf or
 * every logit is -inf; s is unchanged then (no randomness consumed). */
enum mu_err mu_sampler_sample(struct mu_sampler *s, const float *logits, const int32_t *history,
			      size_t n_history, int32_t *token, struct mu_error *err);

/* The next PRNG output as a float in [0, 1) (top 24 bits); exposed for tests. */
float mu_sampler_uniform(struct mu_sampler *s);

#endif
