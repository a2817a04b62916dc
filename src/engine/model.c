/* model.c — loading a llama-family model from GGUF and running its forward pass. */
#include "engine/model.h"

#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/ckd.h"
#include "base/endian.h"
#include "base/fp16.h"
#include "base/mathx.h"

const char *mu_arch_name(enum mu_arch a)
{
	switch (a) {
	case MU_ARCH_LLAMA: return "llama";
	case MU_ARCH_QWEN2: return "qwen2";
	case MU_ARCH_QWEN3: return "qwen3";
	}
	return "?";
}

/* ---- loading ---- */

static enum mu_err hp_u32(const struct gguf *g, const char *arch, const char *suffix, uint32_t *out, int required,
			  struct mu_error *err)
{
	char key[128];
	int found = 0;
	snprintf(key, sizeof key, "%s.%s", arch, suffix);
	enum mu_err rc = gguf_get_u32(g, key, out, &found, err);
	if (rc)
		return rc;
	if (!found && required)
		return mu_errf(err, MU_ERR_FORMAT, "missing metadata key %s", key);
	return MU_OK;
}

static enum mu_err hp_f32(const struct gguf *g, const char *arch, const char *suffix, float *out,
			  struct mu_error *err)
{
	char key[128];
	snprintf(key, sizeof key, "%s.%s", arch, suffix);
	return gguf_get_f32(g, key, out, NULL, err);
}

static const struct gguf_tensor *find_tensor(const struct gguf *g, const char *name, int required,
					     struct mu_error *err)
{
	const struct gguf_tensor *t = gguf_find_tensor(g, name);
	if (!t && required)
		mu_errf(err, MU_ERR_FORMAT, "missing tensor %s", name);
	return t;
}

static enum mu_err bind_weight(const struct gguf *g, const struct mu_kernel_path *kp, const char *name, uint32_t n_in,
			       uint32_t n_out, struct mu_weight *w, uint64_t *bytes, struct mu_error *err)
{
	const struct gguf_tensor *t = find_tensor(g, name, 1, err);
	if (!t)
		return MU_ERR_FORMAT;
	if (t->n_dims != 2 || t->ne[0] != n_in || t->ne[1] != n_out)
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: shape {%llu, %llu} (%u dims), expected {%u, %u}", name,
			       (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], t->n_dims, n_in, n_out);
	const struct mu_type_kernels *k = kp->type(t->type);
	if (!k)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "tensor %s: type %s has no kernels in this build", name,
			       mu_dtype_get(t->type)->name);
	if (k->act != MU_ACT_F32 && mu_act_size(k->act, n_in) == 0)
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: row length %u is not a multiple of %u", name, n_in,
			       mu_dtype_get(t->type)->block);
	w->data = t->data;
	w->type = t->type;
	w->n_in = n_in;
	w->n_out = n_out;
	w->row_bytes = mu_dtype_row_size(t->type, n_in);
	w->k = k;
	*bytes += t->size;
	return MU_OK;
}

/* An f32 vector of n elements (norm weights, biases). Absent and optional: *out = NULL. */
static enum mu_err bind_vec(const struct gguf *g, const char *name, uint32_t n, int required, const float **out,
			    uint64_t *bytes, struct mu_error *err)
{
	const struct gguf_tensor *t = find_tensor(g, name, required, err);
	*out = NULL;
	if (!t)
		return required ? MU_ERR_FORMAT : MU_OK;
	if (t->n_dims != 1 || t->ne[0] != n)
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: shape {%llu} (%u dims), expected {%u}", name,
			       (unsigned long long)t->ne[0], t->n_dims, n);
	if (t->type != MU_DTYPE_F32)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "tensor %s: type %s, expected f32", name,
			       mu_dtype_get(t->type)->name);
	if ((uintptr_t)t->data % sizeof(float) != 0)
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: data not 4-byte aligned", name);
	*out = (const float *)(const void *)t->data;
	*bytes += t->size;
	return MU_OK;
}

static enum mu_err load_hparams(struct mu_hparams *hp, const struct gguf *g, const char *arch,
				struct mu_error *err)
{
	enum mu_err rc;
	uint32_t v;

	if ((rc = hp_u32(g, arch, "embedding_length", &hp->n_embd, 1, err)) ||
	    (rc = hp_u32(g, arch, "block_count", &hp->n_layer, 1, err)) ||
	    (rc = hp_u32(g, arch, "feed_forward_length", &hp->n_ff, 1, err)) ||
	    (rc = hp_u32(g, arch, "attention.head_count", &hp->n_head, 1, err)))
		return rc;
	hp->n_head_kv = hp->n_head;
	if ((rc = hp_u32(g, arch, "attention.head_count_kv", &hp->n_head_kv, 0, err)))
		return rc;
	if (hp->n_embd == 0 || hp->n_embd > MU_MAX_EMBD)
		return mu_errf(err, MU_ERR_RANGE, "%s.embedding_length %u out of range 1..%d", arch, hp->n_embd, MU_MAX_EMBD);
	if (hp->n_layer == 0 || hp->n_layer > MU_MAX_LAYERS)
		return mu_errf(err, MU_ERR_RANGE, "%s.block_count %u out of range 1..%d", arch, hp->n_layer, MU_MAX_LAYERS);
	if (hp->n_ff == 0 || hp->n_ff > 16u * MU_MAX_EMBD)
		return mu_errf(err, MU_ERR_RANGE, "%s.feed_forward_length %u out of range", arch, hp->n_ff);
	if (hp->n_head == 0 || hp->n_head > MU_MAX_HEADS)
		return mu_errf(err, MU_ERR_RANGE, "%s.attention.head_count %u out of range 1..%d", arch, hp->n_head, MU_MAX_HEADS);
	if (hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv != 0)
		return mu_errf(err, MU_ERR_FORMAT, "%s.attention.head_count_kv %u does not divide head_count %u", arch,
			       hp->n_head_kv, hp->n_head);

	hp->head_dim = hp->n_embd / hp->n_head;
	if ((rc = hp_u32(g, arch, "attention.key_length", &hp->head_dim, 0, err)))
		return rc;
	v = hp->head_dim;
	if ((rc = hp_u32(g, arch, "attention.value_length", &v, 0, err)))
		return rc;
	if (v != hp->head_dim)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "%s.attention.value_length %u differs from key_length %u", arch, v,
			       hp->head_dim);
	if (hp->head_dim == 0 || hp->head_dim > MU_MAX_HEAD_DIM || hp->head_dim % 2)
		return mu_errf(err, MU_ERR_RANGE, "head dimension %u must be even and in 2..%d", hp->head_dim, MU_MAX_HEAD_DIM);

	hp->rope_dim = hp->head_dim;
	if ((rc = hp_u32(g, arch, "rope.dimension_count", &hp->rope_dim, 0, err)))
		return rc;
	if (hp->rope_dim == 0 || hp->rope_dim > hp->head_dim || hp->rope_dim % 2)
		return mu_errf(err, MU_ERR_RANGE, "%s.rope.dimension_count %u must be even and at most the head dimension %u",
			       arch, hp->rope_dim, hp->head_dim);

	hp->eps = 1e-5f;
	hp->rope_base = 10000.0f;
	hp->n_ctx_train = 2048;
	if ((rc = hp_f32(g, arch, "attention.layer_norm_rms_epsilon", &hp->eps, err)) ||
	    (rc = hp_f32(g, arch, "rope.freq_base", &hp->rope_base, err)) ||
	    (rc = hp_u32(g, arch, "context_length", &hp->n_ctx_train, 0, err)))
		return rc;
	if (!(hp->eps > 0.0f && hp->eps < 1.0f))
		return mu_errf(err, MU_ERR_RANGE, "%s.attention.layer_norm_rms_epsilon must be in (0, 1)", arch);
	if (!(hp->rope_base > 1.0f && hp->rope_base < 1e12f))
		return mu_errf(err, MU_ERR_RANGE, "%s.rope.freq_base must be in (1, 1e12)", arch);
	return MU_OK;
}

static void add_pack_bytes(struct mu_model *m, struct mu_weight *w, void *arg);

/* Calls fn on each distinct weight matrix: the embedding table, the output matrix unless it
 * is the table, and every layer's seven. */
static void for_each_weight(struct mu_model *m, void (*fn)(struct mu_model *, struct mu_weight *, void *), void *arg)
{
	fn(m, &m->tok_embd, arg);
	if (!m->tied_output)
		fn(m, &m->output, arg);
	for (uint32_t l = 0; l < m->hp.n_layer; l++) {
		struct mu_layer *L = &m->layers[l];
		struct mu_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
		for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
			fn(m, ws[i], arg);
	}
}

enum mu_err mu_model_load(struct mu_model *m, const struct gguf *g, struct mu_error *err)
{
	struct gguf_str a;
	int found = 0;
	enum mu_err rc;
	char arch[16];
	char name[96];
	uint64_t bytes = 0;

	memset(m, 0, sizeof *m);
	m->kp = mu_kernels();
	if ((rc = gguf_get_str(g, "general.architecture", &a, &found, err)))
		return rc;
	if (!found)
		return mu_errf(err, MU_ERR_FORMAT, "missing metadata key general.architecture");
	if (gguf_str_eq(a, "llama"))
		m->hp.arch = MU_ARCH_LLAMA;
	else if (gguf_str_eq(a, "qwen2"))
		m->hp.arch = MU_ARCH_QWEN2;
	else if (gguf_str_eq(a, "qwen3"))
		m->hp.arch = MU_ARCH_QWEN3;
	else
		return mu_errf(err, MU_ERR_UNSUPPORTED, "architecture '%.*s' is not supported (llama, qwen2, qwen3 are)",
			       a.len > 32 ? 32 : (int)a.len, a.ptr);
	snprintf(arch, sizeof arch, "%s", mu_arch_name(m->hp.arch));
	m->hp.rope_type = m->hp.arch == MU_ARCH_LLAMA ? MU_ROPE_NORM : MU_ROPE_NEOX;

	struct mu_hparams *hp = &m->hp;
	if ((rc = load_hparams(hp, g, arch, err)))
		return rc;

	const struct gguf_tensor *te = find_tensor(g, "token_embd.weight", 1, err);
	if (!te)
		return MU_ERR_FORMAT;
	if (te->n_dims != 2 || te->ne[1] == 0 || te->ne[1] > MU_MAX_VOCAB)
		return mu_errf(err, MU_ERR_FORMAT, "tensor token_embd.weight: vocabulary size out of range 1..%d", MU_MAX_VOCAB);
	hp->n_vocab = (uint32_t)te->ne[1];

	uint32_t q_dim = hp->n_head * hp->head_dim, kv_dim = hp->n_head_kv * hp->head_dim;
	if ((rc = bind_weight(g, m->kp, "token_embd.weight", hp->n_embd, hp->n_vocab, &m->tok_embd, &bytes, err)))
		return rc;
	m->embd_row = mu_kernels_ref(m->tok_embd.type)->dequant_row;
	if (gguf_find_tensor(g, "output.weight")) {
		if ((rc = bind_weight(g, m->kp, "output.weight", hp->n_embd, hp->n_vocab, &m->output, &bytes, err)))
			return rc;
	} else {
		m->output = m->tok_embd;
		m->tied_output = 1;
	}
	if ((rc = bind_vec(g, "output_norm.weight", hp->n_embd, 1, &m->output_norm, &bytes, err)) ||
	    (rc = bind_vec(g, "rope_freqs.weight", hp->rope_dim / 2, 0, &m->rope_freqs, &bytes, err)))
		return rc;

	for (uint32_t l = 0; l < hp->n_layer; l++) {
		struct mu_layer *L = &m->layers[l];
#define W(field, suffix, nin, nout)                                                          \
	do {                                                                                 \
		snprintf(name, sizeof name, "blk.%u.%s.weight", l, suffix);                  \
		if ((rc = bind_weight(g, m->kp, name, nin, nout, &L->field, &bytes, err)))          \
			return rc;                                                           \
	} while (0)
#define V(field, suffix, n, req)                                                             \
	do {                                                                                 \
		snprintf(name, sizeof name, "blk.%u.%s", l, suffix);                         \
		if ((rc = bind_vec(g, name, n, req, &L->field, &bytes, err)))                \
			return rc;                                                           \
	} while (0)
		V(attn_norm, "attn_norm.weight", hp->n_embd, 1);
		V(ffn_norm, "ffn_norm.weight", hp->n_embd, 1);
		W(wq, "attn_q", hp->n_embd, q_dim);
		W(wk, "attn_k", hp->n_embd, kv_dim);
		W(wv, "attn_v", hp->n_embd, kv_dim);
		W(wo, "attn_output", q_dim, hp->n_embd);
		W(w_gate, "ffn_gate", hp->n_embd, hp->n_ff);
		W(w_up, "ffn_up", hp->n_embd, hp->n_ff);
		W(w_down, "ffn_down", hp->n_ff, hp->n_embd);
		int biased = hp->arch == MU_ARCH_QWEN2;
		V(bq, "attn_q.bias", q_dim, biased);
		V(bk, "attn_k.bias", kv_dim, biased);
		V(bv, "attn_v.bias", kv_dim, biased);
		int qk_norm = hp->arch == MU_ARCH_QWEN3;
		V(q_norm, "attn_q_norm.weight", hp->head_dim, qk_norm);
		V(k_norm, "attn_k_norm.weight", hp->head_dim, qk_norm);
#undef W
#undef V
	}
	m->weight_bytes = bytes;
	/* A generated token reads every tensor but rope_freqs (read into the run state at init) and
	 * the embedding table, of which it reads one row, or all of it when it is also the output
	 * matrix. */
	uint64_t embd = (uint64_t)m->tok_embd.row_bytes * m->tok_embd.n_out;
	m->bytes_per_token = bytes - (m->rope_freqs ? (uint64_t)(hp->rope_dim / 2) * sizeof(float) : 0) -
			     (m->tied_output ? 0 : embd - m->tok_embd.row_bytes);
	m->pack_bytes = 0;
	m->packed = 0;
	for_each_weight(m, add_pack_bytes, &m->pack_bytes);
	return MU_OK;
}

/* ---- packing ---- */

/* The packed table for w, or NULL when w stays in the GGUF layout. */
static const struct mu_type_kernels *pack_table(const struct mu_model *m, const struct mu_weight *w)
{
	const struct mu_type_kernels *pk = m->kp->packed(w->type);
	return pk && w->n_in % MU_PACK_ELEMS == 0 ? pk : NULL;
}

static void add_pack_bytes(struct mu_model *m, struct mu_weight *w, void *arg)
{
	if (pack_table(m, w))
		*(uint64_t *)arg += (uint64_t)w->row_bytes * w->n_out;
}

static void pack_weight(struct mu_model *m, struct mu_weight *w, void *arg)
{
	(void)arg;
	const struct mu_type_kernels *pk = pack_table(m, w);
	if (!pk || w->k == pk)
		return;
	/* the caller made the memory writable (mu_model_pack) */
	pk->pack_rows((uint8_t *)(uintptr_t)w->data, w->row_bytes, w->n_in, w->n_out);
	w->k = pk;
}

void mu_model_pack(struct mu_model *m)
{
	if (m->packed || m->pack_bytes == 0)
		return;
	for_each_weight(m, pack_weight, NULL);
	if (m->tied_output)
		m->output = m->tok_embd; /* the same rows, now packed */
	if (m->tok_embd.k->pack_rows)
		m->embd_row = m->tok_embd.k->dequant_row;
	m->packed = 1;
}

/* ---- run state ---- */

struct mu_ctx_params mu_ctx_params_default(uint32_t n_ctx)
{
	struct mu_ctx_params p = {
		.n_ctx = n_ctx, .n_batch = MU_CTX_DEFAULT_BATCH, .n_threads = 1, .kv_type = MU_DTYPE_F16,
	};
	return p;
}

int mu_kv_type_from_name(const char *name)
{
	if (strcmp(name, "f16") == 0)
		return MU_DTYPE_F16;
	if (strcmp(name, "f32") == 0)
		return MU_DTYPE_F32;
	return -1;
}

enum mu_err mu_ctx_params_check(const struct mu_ctx_params *p, struct mu_error *err)
{
	if (p->n_ctx == 0 || p->n_ctx > MU_MAX_CTX)
		return mu_errf(err, MU_ERR_RANGE, "context length %u out of range 1..%d", p->n_ctx, MU_MAX_CTX);
	if (p->n_batch == 0 || p->n_batch > MU_MAX_BATCH)
		return mu_errf(err, MU_ERR_RANGE, "batch size %u out of range 1..%d", p->n_batch, MU_MAX_BATCH);
	if (p->n_threads == 0 || p->n_threads > MU_MAX_THREADS)
		return mu_errf(err, MU_ERR_RANGE, "thread count %u out of range 1..%d", p->n_threads, MU_MAX_THREADS);
	if (p->kv_type != MU_DTYPE_F16 && p->kv_type != MU_DTYPE_F32)
		return mu_errf(err, MU_ERR_ARG, "KV cache type %s is not supported (f16 or f32)",
			       mu_dtype_get(p->kv_type) ? mu_dtype_get(p->kv_type)->name : "?");
	return MU_OK;
}

/* The weights a layer multiplies, in a fixed order. */
static void layer_weights(const struct mu_layer *L, const struct mu_weight *w[7])
{
	w[0] = &L->wq;
	w[1] = &L->wk;
	w[2] = &L->wv;
	w[3] = &L->wo;
	w[4] = &L->w_gate;
	w[5] = &L->w_up;
	w[6] = &L->w_down;
}

/* Bytes of one row of activation kind k: the widest input among the weights that read k
 * (0 when none does). */
static size_t act_row_bytes(const struct mu_model *m, enum mu_act_kind k)
{
	size_t need = 0;
	const struct mu_weight *w[7];
	for (uint32_t l = 0; l <= m->hp.n_layer; l++) {
		int nw = 7;
		if (l < m->hp.n_layer) {
			layer_weights(&m->layers[l], w);
		} else {
			w[0] = &m->output;
			nw = 1;
		}
		for (int i = 0; i < nw; i++) {
			size_t sz = mu_act_size(k, w[i]->n_in);
			if (w[i]->k->act == k && sz > need)
				need = sz;
		}
	}
	return need;
}

uint32_t mu_model_default_ctx(const struct mu_model *m, uint32_t cap)
{
	uint32_t n = m->hp.n_ctx_train < cap ? m->hp.n_ctx_train : cap;
	return n ? n : 2048;
}

/* Lays out every buffer in the arena; with a counting arena it only measures. */
static int ctx_layout(struct mu_ctx *c, const struct mu_model *m, const struct mu_ctx_params *p, struct mu_arena *a)
{
	const struct mu_hparams *hp = &m->hp;
	size_t q_dim = (size_t)hp->n_head * hp->head_dim, kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
	size_t nb = c->n_batch = p->n_batch < p->n_ctx ? p->n_batch : p->n_ctx;
	size_t esz = c->kv_elem = p->kv_type == MU_DTYPE_F16 ? 2 : 4;
	size_t cache = (size_t)hp->n_layer * p->n_ctx * kv_dim * esz;
#define F(field, n)                                                                          \
	do {                                                                                 \
		c->field = mu_arena_alloc(a, (n) * sizeof *c->field, 64);                    \
		if (!c->field && !mu_arena_counting(a))                                      \
			return -1;                                                           \
	} while (0)
	F(x, nb * hp->n_embd);
	F(xn, nb * hp->n_embd);
	F(q, nb * q_dim);
	F(k, nb * kv_dim);
	F(v, nb * kv_dim);
	F(att, nb * q_dim);
	F(hb, nb * hp->n_ff);
	F(hb2, nb * hp->n_ff);
	F(scores, (size_t)p->n_threads * p->n_ctx);
	F(key_cache, cache);
	F(value_cache, cache);
	F(inv_freq, hp->rope_dim / 2);
	F(rope_cos, nb * (hp->rope_dim / 2));
	F(rope_sin, nb * (hp->rope_dim / 2));
	F(logits, hp->n_vocab);
#undef F
	c->act[MU_ACT_F32] = NULL;
	for (int k = MU_ACT_F32 + 1; k <= MU_ACT_Q8_K; k++) {
		size_t row = act_row_bytes(m, (enum mu_act_kind)k);
		c->act[k] = NULL;
		if (row == 0)
			continue;
		c->act[k] = mu_arena_alloc(a, nb * row, 64);
		if (!c->act[k] && !mu_arena_counting(a))
			return -1;
	}
	return 0;
}

size_t mu_ctx_size(const struct mu_model *m, const struct mu_ctx_params *p)
{
	struct mu_arena a;
	struct mu_ctx c;
	if (mu_ctx_params_check(p, NULL) != MU_OK)
		return 0;
	mu_arena_init(&a, NULL, 0);
	ctx_layout(&c, m, p, &a);
	return a.used + 64;
}

enum mu_err mu_ctx_init(struct mu_ctx *c, const struct mu_model *m, const struct mu_ctx_params *p,
			struct mu_pool *pool, void *mem, size_t len, struct mu_error *err)
{
	struct mu_arena a;
	const struct mu_hparams *hp = &m->hp;
	enum mu_err rc;

	if ((rc = mu_ctx_params_check(p, err)))
		return rc;
	memset(c, 0, sizeof *c);
	mu_arena_init(&a, mem, len);
	if (ctx_layout(c, m, p, &a) != 0)
		return mu_errf(err, MU_ERR_NOMEM, "run state needs %zu bytes, %zu granted", mu_ctx_size(m, p), len);
	if (!pool)
		return mu_errf(err, MU_ERR_ARG, "the run state needs a thread pool");
	if (mu_pool_threads(pool) > (int)p->n_threads)
		return mu_errf(err, MU_ERR_ARG, "the pool has %d threads, the run state is sized for %u",
			       mu_pool_threads(pool), p->n_threads);
	c->kp = m->kp;
	c->kv_k = c->kp->type(p->kv_type);
	if (!c->kv_k || c->kv_k->act != MU_ACT_F32)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "kernel path %s has no %s kernels for the KV cache", c->kp->name,
			       mu_dtype_get(p->kv_type)->name);
	c->m = m;
	c->pool = pool;
	c->n_ctx = p->n_ctx;
	c->kv_type = p->kv_type;
	/* inv_freq[i] = base^(-2i/rope_dim) / f_i, in double so every position's angle is exact
	 * to double precision before it is rounded to float once. */
	for (uint32_t i = 0; i < hp->rope_dim / 2; i++) {
		double f = mu_pow((double)hp->rope_base, -2.0 * (double)i / (double)hp->rope_dim);
		if (m->rope_freqs)
			f /= (double)m->rope_freqs[i];
		c->inv_freq[i] = f;
	}
	return MU_OK;
}

void mu_ctx_reset(struct mu_ctx *c) { c->pos = 0; }

/* ---- forward ----
 *
 * A call's tokens go through in batches of up to n_batch rows. Per layer, each step is one
 * pool job: the per-row steps (norms, biases, RoPE, the KV store, SiLU, converting the
 * activations) split the rows among the threads; the weight products split each weight's
 * output rows, every thread running its rows for all the batch's activations (one matmul
 * call, or a matvec for a single row); attention splits the (row, head) pairs. Every value is
 * computed by the same code, in the same order, as for one token at a time: only who
 * computes it and when depends on the batch and the thread count. */

/* Canonical 16-lane sum (docs/determinism.md). */
static float sum_f32(const float *a, size_t n)
{
	float acc[MU_LANES] = {0};
	for (size_t i = 0; i < n; i++)
		acc[i % MU_LANES] = acc[i % MU_LANES] + a[i];
	for (size_t s = MU_LANES / 2; s > 0; s /= 2)
		for (size_t l = 0; l < s; l++)
			acc[l] = acc[l] + acc[l + s];
	return acc[0];
}

/* out = x / sqrt(mean(x^2) + eps) * w, in this exact order. */
static void rmsnorm(float *out, const float *x, const float *w, size_t n, float eps)
{
	float mean = mu_sumsq_f32(x, n) / (float)n;
	float inv = 1.0f / mu_sqrtf(mean + eps);
	for (size_t i = 0; i < n; i++)
		out[i] = (x[i] * inv) * w[i];
}

static void add_into(float *x, const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = x[i] + y[i];
}

/* Rotates one head in place with the angles of its position. */
static void rope_head(float *v, const float *cs, const float *sn, uint32_t rope_dim, enum mu_rope_type type)
{
	uint32_t half = rope_dim / 2;
	for (uint32_t i = 0; i < half; i++) {
		uint32_t i0 = type == MU_ROPE_NORM ? 2 * i : i;
		uint32_t i1 = type == MU_ROPE_NORM ? 2 * i + 1 : i + half;
		float x0 = v[i0], x1 = v[i1];
		v[i0] = x0 * cs[i] - x1 * sn[i];
		v[i1] = x0 * sn[i] + x1 * cs[i];
	}
}

/* One batch: rows t < n are the tokens at positions p0 + t. */
struct fwd {
	struct mu_ctx *c;
	const int32_t *tokens;
	uint32_t p0, n;
	uint32_t layer;
	const struct mu_layer *L;
};

/* Converts row t of src (rows of `width` floats) into every activation kind that the weights
 * w[0..nw) read, once per kind; MU_ACT_F32 weights read src itself. */
static void prep_row(const struct mu_ctx *c, const struct mu_weight *const *w, int nw, const float *src,
		     size_t width, uint32_t t)
{
	unsigned done = 0;
	for (int i = 0; i < nw; i++) {
		enum mu_act_kind k = w[i]->k->act;
		if (k == MU_ACT_F32 || (done & (1u << k)))
			continue;
		done |= 1u << k;
		size_t row = mu_act_size(k, width);
		c->kp->act_prepare(k, src + (size_t)t * width, (uint8_t *)c->act[k] + (size_t)t * row, width);
	}
}

/* ---- the per-row steps: one pool job each, or the caller alone when the rows are too few
 * or too narrow to pay for a barrier (ROW_JOB_MIN f32 values in all) */
#define ROW_JOB_MIN 16384u

typedef void (*row_fn)(const struct fwd *f, uint32_t t);
struct row_job {
	const struct fwd *f;
	row_fn fn;
};

static void row_worker(void *arg, int ith, int nth)
{
	const struct row_job *j = arg;
	unsigned long t0, t1;
	mu_pool_split(j->f->n, ith, nth, &t0, &t1);
	for (unsigned long t = t0; t < t1; t++)
		j->fn(j->f, (uint32_t)t);
}

static void run_rows(const struct fwd *f, row_fn fn)
{
	if ((size_t)f->n * f->c->m->hp.n_embd < ROW_JOB_MIN) {
		for (uint32_t t = 0; t < f->n; t++)
			fn(f, t);
		return;
	}
	struct row_job j = {f, fn};
	mu_pool_run(f->c->pool, row_worker, &j);
}

/* The token's embedding row and the RoPE angles of its position. */
static void row_embed(const struct fwd *f, uint32_t t)
{
	const struct mu_ctx *c = f->c;
	const struct mu_model *m = c->m;
	uint32_t half = m->hp.rope_dim / 2;
	m->embd_row(m->tok_embd.data + (size_t)f->tokens[t] * m->tok_embd.row_bytes,
		    c->x + (size_t)t * m->hp.n_embd, m->hp.n_embd);
	for (uint32_t i = 0; i < half; i++) {
		double angle = (double)(f->p0 + t) * c->inv_freq[i];
		c->rope_cos[(size_t)t * half + i] = (float)mu_cos(angle);
		c->rope_sin[(size_t)t * half + i] = (float)mu_sin(angle);
	}
}

/* x += the previous layer's FFN output (in xn; not before layer 0); xn = rmsnorm(x);
 * the Q/K/V input converted. */
static void row_attn_in(const struct fwd *f, uint32_t t)
{
	const struct mu_ctx *c = f->c;
	size_t d = c->m->hp.n_embd;
	float *x = c->x + t * d, *xn = c->xn + t * d;
	if (f->layer > 0)
		add_into(x, xn, d);
	rmsnorm(xn, x, f->L->attn_norm, d, c->m->hp.eps);
	const struct mu_weight *w[3] = {&f->L->wq, &f->L->wk, &f->L->wv};
	prep_row(c, w, 3, c->xn, d, t);
}

/* Narrows n f32 values into the cache's type (F16: round to nearest even). */
static void kv_store(const struct mu_ctx *c, uint8_t *dst, const float *src, size_t n)
{
	if (c->kv_type == MU_DTYPE_F16) {
		for (size_t i = 0; i < n; i++)
			le16_store(dst + 2 * i, mu_f32_to_f16(src[i]));
	} else {
		memcpy(dst, src, n * sizeof *src);
	}
}

/* Biases, Q/K norms and RoPE on row t's q and k, then k and v into the cache. */
static void row_qkv_post(const struct fwd *f, uint32_t t)
{
	const struct mu_ctx *c = f->c;
	const struct mu_hparams *hp = &c->m->hp;
	const struct mu_layer *L = f->L;
	size_t hd = hp->head_dim, q_dim = (size_t)hp->n_head * hd, kv_dim = (size_t)hp->n_head_kv * hd;
	float *q = c->q + t * q_dim, *k = c->k + t * kv_dim, *v = c->v + t * kv_dim;
	const float *cs = c->rope_cos + (size_t)t * (hp->rope_dim / 2), *sn = c->rope_sin + (size_t)t * (hp->rope_dim / 2);

	if (L->bq) {
		add_into(q, L->bq, q_dim);
		add_into(k, L->bk, kv_dim);
		add_into(v, L->bv, kv_dim);
	}
	if (L->q_norm) {
		for (uint32_t h = 0; h < hp->n_head; h++)
			rmsnorm(q + h * hd, q + h * hd, L->q_norm, hd, hp->eps);
		for (uint32_t h = 0; h < hp->n_head_kv; h++)
			rmsnorm(k + h * hd, k + h * hd, L->k_norm, hd, hp->eps);
	}
	for (uint32_t h = 0; h < hp->n_head; h++)
		rope_head(q + h * hd, cs, sn, hp->rope_dim, hp->rope_type);
	for (uint32_t h = 0; h < hp->n_head_kv; h++)
		rope_head(k + h * hd, cs, sn, hp->rope_dim, hp->rope_type);

	size_t at = ((size_t)f->layer * c->n_ctx + f->p0 + t) * kv_dim * c->kv_elem;
	kv_store(c, c->key_cache + at, k, kv_dim);
	kv_store(c, c->value_cache + at, v, kv_dim);
}

/* The attention output converted for Wo. */
static void row_attn_out(const struct fwd *f, uint32_t t)
{
	const struct mu_ctx *c = f->c;
	const struct mu_weight *w = &f->L->wo;
	prep_row(c, &w, 1, c->att, (size_t)c->m->hp.n_head * c->m->hp.head_dim, t);
}

/* x += Wo's output (in xn); xn = rmsnorm(x); the gate/up input converted. */
static void row_ffn_in(const struct fwd *f, uint32_t t)
{
	const struct mu_ctx *c = f->c;
	size_t d = c->m->hp.n_embd;
	float *x = c->x + t * d, *xn = c->xn + t * d;
	add_into(x, xn, d);
	rmsnorm(xn, x, f->L->ffn_norm, d, c->m->hp.eps);
	const struct mu_weight *w[2] = {&f->L->w_gate, &f->L->w_up};
	prep_row(c, w, 2, c->xn, d, t);
}

/* hb = silu(gate) * up; the down input converted. */
static void row_ffn_mid(const struct fwd *f, uint32_t t)
{
	const struct mu_ctx *c = f->c;
	size_t n = c->m->hp.n_ff;
	float *g = c->hb + t * n;
	const float *u = c->hb2 + t * n;
	for (size_t i = 0; i < n; i++)
		g[i] = mu_siluf(g[i]) * u[i];
	const struct mu_weight *w = &f->L->w_down;
	prep_row(c, &w, 1, c->hb, n, t);
}

/* ---- weight products: up to three weights reading one input, one pool job */

struct mm_task {
	const struct mu_weight *w;
	const void *x;     /* activation of row 0, in the weight's form */
	size_t x_stride;   /* bytes from one row's activation to the next */
	float *out;        /* out[t * ldo + r] */
	size_t ldo;
};
struct mm_job {
	struct mm_task t[3];
	int n;
	uint32_t nt;       /* activation rows */
};

/* Task for weight w reading rows t0.. of src (rows of `width` floats, converted by prep_row). */
static struct mm_task mm_task(const struct mu_ctx *c, const struct mu_weight *w, const float *src, size_t width,
			      uint32_t t0, float *out, size_t ldo)
{
	enum mu_act_kind k = w->k->act;
	size_t row = mu_act_size(k, width);
	struct mm_task t = {w, NULL, row, out, ldo};
	t.x = k == MU_ACT_F32 ? (const void *)(src + (size_t)t0 * width) : (const void *)((const uint8_t *)c->act[k] + t0 * row);
	return t;
}

static void mm_worker(void *arg, int ith, int nth)
{
	const struct mm_job *job = arg;
	for (int i = 0; i < job->n; i++) {
		const struct mm_task *t = &job->t[i];
		const struct mu_weight *w = t->w;
		unsigned long r0, r1;
		mu_pool_split(w->n_out, ith, nth, &r0, &r1);
		if (r1 <= r0)
			continue;
		if (job->nt == 1)
			w->k->matvec(w->data, w->row_bytes, t->x, w->n_in, t->out, r0, r1);
		else
			w->k->matmul(w->data, w->row_bytes, t->x, t->x_stride, w->n_in, t->out, t->ldo, job->nt, r0, r1);
	}
}

/* ---- attention */

/* One head of one query row over positions 0..n_pos-1 (docs/determinism.md): the scores
 * are the cache type's matvec over the keys (dot16 with each key widened exactly) times the
 * scale, then the softmax, then out = sum_t p_t v_t, one running sum per dimension. */
static void attend(const struct mu_ctx *c, uint32_t layer, const float *qh, size_t kvo, uint32_t n_pos, float *sc,
		   float *out)
{
	const struct mu_hparams *hp = &c->m->hp;
	size_t hd = hp->head_dim, row = (size_t)hp->n_head_kv * hd * c->kv_elem;
	size_t base = (size_t)layer * c->n_ctx * row + kvo * c->kv_elem;
	const uint8_t *kc = c->key_cache + base, *vc = c->value_cache + base;
	float scale = 1.0f / mu_sqrtf((float)hd);

	c->kv_k->matvec(kc, row, qh, hd, sc, 0, n_pos);
	float max = -3.402823466e38f;
	for (uint32_t t = 0; t < n_pos; t++) {
		sc[t] = sc[t] * scale;
		if (sc[t] > max)
			max = sc[t];
	}
	for (uint32_t t = 0; t < n_pos; t++)
		sc[t] = mu_expf(sc[t] - max);
	float sum = sum_f32(sc, n_pos);
	for (uint32_t t = 0; t < n_pos; t++)
		sc[t] = sc[t] / sum;
	for (size_t d = 0; d < hd; d++)
		out[d] = 0.0f;
	for (uint32_t t = 0; t < n_pos; t++)
		c->kp->axpy(out, sc[t], vc + t * row, c->kv_type, hd);
}

/* The (row, head) pairs, dealt round-robin so that the long rows at the end of a batch do
 * not all land on one thread; each thread uses its own scores row. */
static void attn_worker(void *arg, int ith, int nth)
{
	const struct fwd *f = arg;
	const struct mu_ctx *c = f->c;
	const struct mu_hparams *hp = &c->m->hp;
	size_t hd = hp->head_dim, q_dim = (size_t)hp->n_head * hd;
	uint32_t group = hp->n_head / hp->n_head_kv;
	size_t items = (size_t)f->n * hp->n_head;
	float *sc = c->scores + (size_t)ith * c->n_ctx;

	for (size_t i = (size_t)ith; i < items; i += (size_t)nth) {
		uint32_t t = (uint32_t)(i / hp->n_head), h = (uint32_t)(i % hp->n_head);
		attend(c, f->layer, c->q + t * q_dim + h * hd, (h / group) * hd, f->p0 + t + 1, sc,
		       c->att + t * q_dim + h * hd);
	}
}

/* ---- one batch */

static void forward_batch(struct mu_ctx *c, const int32_t *tokens, uint32_t n, uint32_t p0, int want_logits)
{
	const struct mu_model *m = c->m;
	const struct mu_hparams *hp = &m->hp;
	size_t d = hp->n_embd, q_dim = (size_t)hp->n_head * hp->head_dim;
	size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
	struct fwd f = {.c = c, .tokens = tokens, .p0 = p0, .n = n};

	run_rows(&f, row_embed);
	for (uint32_t l = 0; l < hp->n_layer; l++) {
		const struct mu_layer *L = &m->layers[l];
		f.layer = l;
		f.L = L;

		run_rows(&f, row_attn_in);
		struct mm_job qkv = {.n = 3, .nt = n};
		qkv.t[0] = mm_task(c, &L->wq, c->xn, d, 0, c->q, q_dim);
		qkv.t[1] = mm_task(c, &L->wk, c->xn, d, 0, c->k, kv_dim);
		qkv.t[2] = mm_task(c, &L->wv, c->xn, d, 0, c->v, kv_dim);
		mu_pool_run(c->pool, mm_worker, &qkv);
		run_rows(&f, row_qkv_post);
		mu_pool_run(c->pool, attn_worker, &f);

		run_rows(&f, row_attn_out);
		struct mm_job wo = {.n = 1, .nt = n};
		wo.t[0] = mm_task(c, &L->wo, c->att, q_dim, 0, c->xn, d);
		mu_pool_run(c->pool, mm_worker, &wo);

		run_rows(&f, row_ffn_in);
		struct mm_job gu = {.n = 2, .nt = n};
		gu.t[0] = mm_task(c, &L->w_gate, c->xn, d, 0, c->hb, ff);
		gu.t[1] = mm_task(c, &L->w_up, c->xn, d, 0, c->hb2, ff);
		mu_pool_run(c->pool, mm_worker, &gu);

		run_rows(&f, row_ffn_mid);
		struct mm_job down = {.n = 1, .nt = n};
		down.t[0] = mm_task(c, &L->w_down, c->hb, ff, 0, c->xn, d);
		mu_pool_run(c->pool, mm_worker, &down);
	}

	if (want_logits) {
		/* The last row only: its residual, the output norm, the output matvec. */
		uint32_t t = n - 1;
		float *x = c->x + t * d, *xn = c->xn + t * d;
		add_into(x, xn, d);
		rmsnorm(xn, x, m->output_norm, d, hp->eps);
		const struct mu_weight *w = &m->output;
		prep_row(c, &w, 1, c->xn, d, t);
		struct mm_job out = {.n = 1, .nt = 1};
		out.t[0] = mm_task(c, w, c->xn, d, t, c->logits, hp->n_vocab);
		mu_pool_run(c->pool, mm_worker, &out);
	}
}

enum mu_err mu_forward(struct mu_ctx *c, const int32_t *tokens, uint32_t n, struct mu_error *err)
{
	uint32_t end;
	if (n == 0)
		return mu_errf(err, MU_ERR_ARG, "no tokens to process");
	if (ckd_add(&end, c->pos, n) || end > c->n_ctx)
		return mu_errf(err, MU_ERR_RANGE, "context full: %u tokens at position %u exceed the context length %u", n,
			       c->pos, c->n_ctx);
	for (uint32_t i = 0; i < n; i++)
		if (tokens[i] < 0 || (uint32_t)tokens[i] >= c->m->hp.n_vocab)
			return mu_errf(err, MU_ERR_RANGE, "token id %d at index %u out of range 0..%u", tokens[i], i,
				       c->m->hp.n_vocab - 1);
	for (uint32_t i = 0; i < n;) {
		uint32_t nb = n - i < c->n_batch ? n - i : c->n_batch;
		forward_batch(c, tokens + i, nb, c->pos + i, i + nb == n);
		i += nb;
	}
	c->pos = end;
	return MU_OK;
}
