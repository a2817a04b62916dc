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
 *               rope(q, k, pos); cache k, v at pos (F16 cache: rounded to half precision)
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
	/* The kernel path the weights were bound to: the active one (mu_kernels) at load. */
	const struct mu_kernel_path *kp;
	/* The dequantizer of tok_embd's layout: one embedding row per token (the reference's, or
	 * the packed table's once mu_model_pack has packed the table). */
	void (*embd_row)(const void *src, float *dst, size_t n);
	const float *output_norm;
	const float *rope_freqs;        /* rope_dim/2 factors, or NULL */
	uint64_t weight_bytes;          /* bytes of all tensors the forward pass reads */
	uint64_t bytes_per_token;       /* of those, the bytes one generated token reads */
	uint64_t pack_bytes;            /* of those, the bytes mu_model_pack rewrites for kp */
	int packed;                     /* mu_model_pack has run */
	struct mu_layer layers[MU_MAX_LAYERS];
};

/* Reads hyperparameters and binds tensors; validates every shape and type. */
enum mu_err mu_model_load(struct mu_model *m, const struct gguf *g, struct mu_error *err);
/* Rewrites, once and in place, every weight matrix whose type the model's kernel path reads
 * faster in a packed layout (kernels.h: mu_kernel_path.packed, rows of a multiple of
 * MU_PACK_ELEMS), and switches those weights, and the embedding lookup when the table is
 * packed, to the packed kernels. Same bytes, same results, bit for bit. The weights' memory
 * must be writable: the caller's buffer, or a private writable mapping of the file (writes
 * never reach the file). m->pack_bytes says how much is rewritten (0: nothing; this is a
 * no-op). */
void mu_model_pack(struct mu_model *m);
const char *mu_arch_name(enum mu_arch a);

/* Run-state parameters. mu_ctx_params_default gives F16 KV, MU_CTX_DEFAULT_BATCH and one
 * thread; a caller sets n_threads to its pool's thread count. */
#define MU_CTX_DEFAULT_BATCH 32

struct mu_ctx_params {
	uint32_t n_ctx;          /* positions, 1..MU_MAX_CTX */
	uint32_t n_batch;        /* prompt tokens evaluated together, 1..MU_MAX_BATCH */
	uint32_t n_threads;      /* the pool's threads (per-thread attention scratch), 1..MU_MAX_THREADS */
	enum mu_dtype kv_type;   /* MU_DTYPE_F16 or MU_DTYPE_F32: how K and V are cached */
};

struct mu_ctx_params mu_ctx_params_default(uint32_t n_ctx);
/* Checks every field; the message names the bad one. */
enum mu_err mu_ctx_params_check(const struct mu_ctx_params *p, struct mu_error *err);
/* "f16" / "f32" -> MU_DTYPE_F16 / MU_DTYPE_F32; -1 for anything else. */
int mu_kv_type_from_name(const char *name);

/* The run state for one sequence: the KV cache, and scratch for a batch of up to n_batch
 * tokens (rows), all carved from one caller-granted block.
 * The caches hold n_layer x n_ctx x kv_dim elements of kv_type (layer, then position, then
 * kv head and dimension). K and V are computed in f32 and, for an F16 cache, rounded to
 * nearest even when stored; attention widens them exactly (docs/determinism.md). */
struct mu_ctx {
	const struct mu_model *m;
	struct mu_pool *pool;
	const struct mu_kernel_path *kp;      /* the model's kernel path */
	const struct mu_type_kernels *kv_k;   /* kv_type's kernels: q.k runs through its matvec */
	uint32_t n_ctx, n_batch;
	enum mu_dtype kv_type;
	size_t kv_elem;          /* bytes per cached element: 2 or 4 */
	uint32_t pos;            /* next position to fill */
	/* batch rows: x, xn n_embd wide; q, att q_dim; k, v kv_dim; hb, hb2 n_ff */
	float *x, *xn, *q, *k, *v, *att, *hb, *hb2;
	float *scores;           /* n_threads x n_ctx: one attention row per thread */
	uint8_t *key_cache;
	uint8_t *value_cache;
	double *inv_freq;        /* rope_dim/2 */
	float *rope_cos, *rope_sin; /* n_batch x rope_dim/2: the angles of each row's position */
	/* Activations converted for the weights, one buffer per activation kind the model's
	 * weights ask for (NULL for MU_ACT_F32, which reads the f32 rows in place): n_batch rows,
	 * each mu_act_size(kind, width of the input) bytes. */
	void *act[MU_ACT_Q8_K + 1];
	float *logits;           /* n_vocab: logits of the last token processed */
};

/* Bytes mu_ctx_init needs for these parameters (0 when they fail mu_ctx_params_check). */
/* The context a run uses when its caller names none: the trained context, at most cap, and
 * 2048 for a model that does not say. */
uint32_t mu_model_default_ctx(const struct mu_model *m, uint32_t cap);

size_t mu_ctx_size(const struct mu_model *m, const struct mu_ctx_params *p);
/* pool must have at most p->n_threads threads. */
enum mu_err mu_ctx_init(struct mu_ctx *c, const struct mu_model *m, const struct mu_ctx_params *p,
			struct mu_pool *pool, void *mem, size_t len, struct mu_error *err);
void mu_ctx_reset(struct mu_ctx *c);

/* Runs n tokens at positions c->pos, c->pos+1, ...; afterwards c->logits holds the logits of
 * the last one and c->pos has advanced by n. Refuses token ids out of range and running past
 * n_ctx. Prompt tokens go through in batches of up to n_batch rows (matrix-matrix products,
 * causal attention within the batch); one token is a matrix-vector step. Either way every
 * value has the bits of feeding the tokens one at a time, on any thread count. Allocates
 * nothing. */
enum mu_err mu_forward(struct mu_ctx *c, const int32_t *tokens, uint32_t n, struct mu_error *err);

#endif
