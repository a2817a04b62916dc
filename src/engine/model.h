/* model.h — the llama-family transformer: hyperparameters and weights taken from a parsed
 * GGUF (no copies: weights are used in place), and the forward pass.
 *
 * Supported general.architecture values:
 *   llama  Llama 2/3, TinyLlama, SmolLM, TinyStories: RoPE on adjacent pairs ("normal"),
 *          optional rope_freqs.weight (Llama 3 frequency scaling), tied or separate output.
 *   qwen2  as llama plus biases on Q, K and V; RoPE on split halves ("NEOX").
 *   qwen3  as qwen2 without biases, plus a per-head RMSNorm of Q and K (attn_q_norm,
 *          attn_k_norm); head_dim from attention.key_length.
 *
 * Per token at position pos (x is the residual stream, n_embd wide):
 *   x = token_embd[token]
 *   each layer: xn = rmsnorm(x) * attn_norm
 *               q, k, v = Wq xn (+bq), Wk xn (+bk), Wv xn (+bv); qwen3: per-head rmsnorm of q, k
 *               rope(q, k, pos); cache k, v at pos
 *               o_h = sum_t softmax_t(q_h . k_t / sqrt(head_dim)) v_t   (GQA: kv head h*n_kv/n_head)
 *               x += Wo o
 *               xn = rmsnorm(x) * ffn_norm;  x += Wdown (silu(Wgate xn) * (Wup xn))
 *   logits = Wout (rmsnorm(x) * output_norm)
 * The exact arithmetic order is specified in docs/determinism.md.
 */
#ifndef MU_ENGINE_MODEL_H
#define MU_ENGINE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/limits.h"
#include "engine/gguf.h"
#include "engine/kernels.h"
#include "engine/pool.h"

enum mu_arch { MU_ARCH_LLAMA = 0, MU_ARCH_QWEN2, MU_ARCH_QWEN3 };
enum mu_rope_type { MU_ROPE_NORM = 0, MU_ROPE_NEOX };

struct mu_hparams {
	enum mu_arch arch;
	enum mu_rope_type rope_type;
	uint32_t n_vocab;
	uint32_t n_embd;
	uint32_t n_layer;
	uint32_t n_head;
	uint32_t n_head_kv;
	uint32_t head_dim;
	uint32_t n_ff;
	uint32_t rope_dim;
	uint32_t n_ctx_train;
	float eps;
	float rope_base;
};

/* A weight matrix: n_out rows of n_in elements, used in place. */
struct mu_weight {
	const uint8_t *data;
	enum mu_dtype type;
	uint32_t n_in;
	uint32_t n_out;
	size_t row_bytes;
	const struct mu_type_kernels *k;
};

struct mu_layer {
	const float *attn_norm, *ffn_norm;
	const float *q_norm, *k_norm;   /* qwen3 */
	const float *bq, *bk, *bv;      /* qwen2 (optional elsewhere) */
	struct mu_weight wq, wk, wv, wo, w_gate, w_up, w_down;
};

struct mu_model {
	struct mu_hparams hp;
	struct mu_weight tok_embd;
	struct mu_weight output;        /* == tok_embd when tied */
	int tied_output;
	const float *output_norm;
	const float *rope_freqs;        /* rope_dim/2 factors, or NULL */
	uint64_t weight_bytes;          /* bytes of all tensors the forward pass reads */
	struct mu_layer layers[MU_MAX_LAYERS];
};

/* Reads hyperparameters and binds tensors; validates every shape and type. */
enum mu_err mu_model_load(struct mu_model *m, const struct gguf *g, struct mu_error *err);
const char *mu_arch_name(enum mu_arch a);

/* The run state: KV cache and scratch for one sequence, sized for n_ctx positions. */
struct mu_ctx {
	const struct mu_model *m;
	struct mu_pool *pool;
	uint32_t n_ctx;
	uint32_t pos;            /* next position to fill */
	float *x, *xn, *q, *k, *v, *att, *hb, *hb2;
	float *scores;           /* n_head * n_ctx */
	float *key_cache;        /* n_layer * n_ctx * kv_dim */
	float *value_cache;
	double *inv_freq;        /* rope_dim/2 */
	float *rope_cos, *rope_sin;
	void *act_q8;            /* Q8_0 activation scratch, max(n_embd, n_ff, q_dim) wide */
	float *logits;           /* n_vocab: logits of the last token processed */
};

size_t mu_ctx_size(const struct mu_model *m, uint32_t n_ctx);
enum mu_err mu_ctx_init(struct mu_ctx *c, const struct mu_model *m, uint32_t n_ctx, struct mu_pool *pool,
			void *mem, size_t len, struct mu_error *err);
void mu_ctx_reset(struct mu_ctx *c);

/* Runs n tokens at positions c->pos, c->pos+1, ...; afterwards c->logits holds the logits of
 * the last one and c->pos has advanced by n. Refuses token ids out of range and running past
 * n_ctx. Allocates nothing. */
enum mu_err mu_forward(struct mu_ctx *c, const int32_t *tokens, uint32_t n, struct mu_error *err);

#endif
