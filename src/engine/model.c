/* model.c — loading a llama-family model from GGUF and running its forward pass. */
#include "engine/model.h"

#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/ckd.h"
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

static enum mu_err bind_weight(const struct gguf *g, const char *name, uint32_t n_in, uint32_t n_out,
			       struct mu_weight *w, uint64_t *bytes, struct mu_error *err)
{
	const struct gguf_tensor *t = find_tensor(g, name, 1, err);
	if (!t)
		return MU_ERR_FORMAT;
	if (t->n_dims != 2 || t->ne[0] != n_in || t->ne[1] != n_out)
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: shape {%llu, %llu} (%u dims), expected {%u, %u}", name,
			       (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], t->n_dims, n_in, n_out);
	const struct mu_type_kernels *k = mu_kernels()->type(t->type);
	if (!k)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "tensor %s: type %s has no kernels in this build", name,
			       mu_dtype_get(t->type)->name);
	if (k->act == MU_ACT_Q8_0 && n_in % MU_QK8_0 != 0)
		return mu_errf(err, MU_ERR_FORMAT, "tensor %s: row length %u is not a multiple of 32", name, n_in);
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

enum mu_err mu_model_load(struct mu_model *m, const struct gguf *g, struct mu_error *err)
{
	struct gguf_str a;
	int found = 0;
	enum mu_err rc;
	char arch[16];
	char name[96];
	uint64_t bytes = 0;

	memset(m, 0, sizeof *m);
	if ((rc = mu_kernels_init(NULL, err)))
		return rc;
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
	if ((rc = bind_weight(g, "token_embd.weight", hp->n_embd, hp->n_vocab, &m->tok_embd, &bytes, err)))
		return rc;
	if (gguf_find_tensor(g, "output.weight")) {
		if ((rc = bind_weight(g, "output.weight", hp->n_embd, hp->n_vocab, &m->output, &bytes, err)))
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
		if ((rc = bind_weight(g, name, nin, nout, &L->field, &bytes, err)))          \
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
	return MU_OK;
}

/* ---- run state ---- */

static size_t act_width(const struct mu_hparams *hp)
{
	size_t w = hp->n_embd;
	if (hp->n_ff > w)
		w = hp->n_ff;
	if ((size_t)hp->n_head * hp->head_dim > w)
		w = (size_t)hp->n_head * hp->head_dim;
	return w;
}

/* Lays out every buffer in the arena; with a counting arena it only measures. */
static int ctx_layout(struct mu_ctx *c, const struct mu_model *m, uint32_t n_ctx, struct mu_arena *a)
{
	const struct mu_hparams *hp = &m->hp;
	size_t q_dim = (size_t)hp->n_head * hp->head_dim, kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
	size_t cache = (size_t)hp->n_layer * n_ctx * kv_dim;
	size_t aw = act_width(hp);
#define F(field, n)                                                                          \
	do {                                                                                 \
		c->field = mu_arena_alloc(a, (n) * sizeof *c->field, 64);                    \
		if (!c->field && !mu_arena_counting(a))                                      \
			return -1;                                                           \
	} while (0)
	F(x, hp->n_embd);
	F(xn, hp->n_embd);
	F(q, q_dim);
	F(k, kv_dim);
	F(v, kv_dim);
	F(att, q_dim);
	F(hb, hp->n_ff);
	F(hb2, hp->n_ff);
	F(scores, (size_t)hp->n_head * n_ctx);
	F(key_cache, cache);
	F(value_cache, cache);
	F(inv_freq, hp->rope_dim / 2);
	F(rope_cos, hp->rope_dim / 2);
	F(rope_sin, hp->rope_dim / 2);
	F(logits, hp->n_vocab);
#undef F
	c->act_q8 = mu_arena_alloc(a, mu_act_size(MU_ACT_Q8_0, (aw + 31) / 32 * 32), 64);
	if (!c->act_q8 && !mu_arena_counting(a))
		return -1;
	return 0;
}

size_t mu_ctx_size(const struct mu_model *m, uint32_t n_ctx)
{
	struct mu_arena a;
	struct mu_ctx c;
	mu_arena_init(&a, NULL, 0);
	ctx_layout(&c, m, n_ctx, &a);
	return a.used + 64;
}

enum mu_err mu_ctx_init(struct mu_ctx *c, const struct mu_model *m, uint32_t n_ctx, struct mu_pool *pool,
			void *mem, size_t len, struct mu_error *err)
{
	struct mu_arena a;
	const struct mu_hparams *hp = &m->hp;

	if (n_ctx == 0 || n_ctx > MU_MAX_CTX)
		return mu_errf(err, MU_ERR_RANGE, "context length %u out of range 1..%d", n_ctx, MU_MAX_CTX);
	memset(c, 0, sizeof *c);
	mu_arena_init(&a, mem, len);
	if (ctx_layout(c, m, n_ctx, &a) != 0)
		return mu_errf(err, MU_ERR_NOMEM, "run state needs %zu bytes, %zu granted", mu_ctx_size(m, n_ctx), len);
	c->m = m;
	c->pool = pool;
	c->n_ctx = n_ctx;
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

/* ---- forward ---- */

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

/* Up to three matvecs sharing one input, run as one pool job (one barrier). */
struct mv_task {
	const struct mu_weight *w;
	const void *x;
	float *out;
};
struct mv_job {
	struct mv_task t[3];
	int n;
};

static void mv_worker(void *arg, int ith, int nth)
{
	const struct mv_job *job = arg;
	for (int i = 0; i < job->n; i++) {
		const struct mv_task *t = &job->t[i];
		unsigned long r0, r1;
		mu_pool_split(t->w->n_out, ith, nth, &r0, &r1);
		if (r1 > r0)
			t->w->k->matvec(t->w->data, t->w->row_bytes, t->x, t->w->n_in, t->out, r0, r1);
	}
}

/* out_i = W_i x for each weight; x is converted once into each activation form needed. */
static void matvec_n(struct mu_ctx *c, const float *x, const struct mu_weight *const *w, float *const *out, int n)
{
	struct mv_job job = {.n = n};
	int quantized = 0;
	for (int i = 0; i < n; i++) {
		if (w[i]->k->act == MU_ACT_Q8_0 && !quantized) {
			mu_act_prepare(MU_ACT_Q8_0, x, c->act_q8, w[i]->n_in);
			quantized = 1;
		}
		job.t[i].w = w[i];
		job.t[i].x = w[i]->k->act == MU_ACT_Q8_0 ? (const void *)c->act_q8 : (const void *)x;
		job.t[i].out = out[i];
	}
	mu_pool_run(c->pool, mv_worker, &job);
}

static void matvec1(struct mu_ctx *c, const float *x, const struct mu_weight *w, float *out)
{
	matvec_n(c, x, &w, &out, 1);
}

/* Rotates one head in place with the angles of the current position. */
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

struct attn_job {
	struct mu_ctx *c;
	uint32_t layer;
	uint32_t pos;
};

static void attn_worker(void *arg, int ith, int nth)
{
	const struct attn_job *job = arg;
	struct mu_ctx *c = job->c;
	const struct mu_hparams *hp = &c->m->hp;
	size_t hd = hp->head_dim, kv_dim = (size_t)hp->n_head_kv * hd;
	uint32_t group = hp->n_head / hp->n_head_kv;
	uint32_t n = job->pos + 1;
	float scale = 1.0f / mu_sqrtf((float)hd);
	const float *kc = c->key_cache + (size_t)job->layer * c->n_ctx * kv_dim;
	const float *vc = c->value_cache + (size_t)job->layer * c->n_ctx * kv_dim;
	unsigned long h0, h1;

	mu_pool_split(hp->n_head, ith, nth, &h0, &h1);
	for (unsigned long h = h0; h < h1; h++) {
		const float *qh = c->q + h * hd;
		float *sc = c->scores + h * c->n_ctx;
		float *out = c->att + h * hd;
		size_t kvo = (h / group) * hd;

		float max = -3.402823466e38f;
		for (uint32_t t = 0; t < n; t++) {
			sc[t] = mu_dot_f32(qh, kc + t * kv_dim + kvo, hd) * scale;
			if (sc[t] > max)
				max = sc[t];
		}
		for (uint32_t t = 0; t < n; t++)
			sc[t] = mu_expf(sc[t] - max);
		float sum = sum_f32(sc, n);
		for (uint32_t t = 0; t < n; t++)
			sc[t] = sc[t] / sum;
		for (size_t d = 0; d < hd; d++)
			out[d] = 0.0f;
		for (uint32_t t = 0; t < n; t++) {
			const float *vt = vc + t * kv_dim + kvo;
			float p = sc[t];
			for (size_t d = 0; d < hd; d++)
				out[d] = out[d] + p * vt[d];
		}
	}
}

static void forward_token(struct mu_ctx *c, int32_t token, uint32_t pos, int want_logits)
{
	const struct mu_model *m = c->m;
	const struct mu_hparams *hp = &m->hp;
	size_t hd = hp->head_dim, q_dim = (size_t)hp->n_head * hd, kv_dim = (size_t)hp->n_head_kv * hd;

	m->tok_embd.k->dequant_row(m->tok_embd.data + (size_t)token * m->tok_embd.row_bytes, c->x, hp->n_embd);

	for (uint32_t i = 0; i < hp->rope_dim / 2; i++) {
		double angle = (double)pos * c->inv_freq[i];
		c->rope_cos[i] = (float)mu_cos(angle);
		c->rope_sin[i] = (float)mu_sin(angle);
	}

	for (uint32_t l = 0; l < hp->n_layer; l++) {
		const struct mu_layer *L = &m->layers[l];
		float *kdst = c->key_cache + ((size_t)l * c->n_ctx + pos) * kv_dim;
		float *vdst = c->value_cache + ((size_t)l * c->n_ctx + pos) * kv_dim;

		rmsnorm(c->xn, c->x, L->attn_norm, hp->n_embd, hp->eps);
		const struct mu_weight *qkv[3] = {&L->wq, &L->wk, &L->wv};
		float *qkv_out[3] = {c->q, kdst, vdst};
		matvec_n(c, c->xn, qkv, qkv_out, 3);
		if (L->bq) {
			add_into(c->q, L->bq, q_dim);
			add_into(kdst, L->bk, kv_dim);
			add_into(vdst, L->bv, kv_dim);
		}
		if (L->q_norm) {
			for (uint32_t h = 0; h < hp->n_head; h++)
				rmsnorm(c->q + h * hd, c->q + h * hd, L->q_norm, hd, hp->eps);
			for (uint32_t h = 0; h < hp->n_head_kv; h++)
				rmsnorm(kdst + h * hd, kdst + h * hd, L->k_norm, hd, hp->eps);
		}
		for (uint32_t h = 0; h < hp->n_head; h++)
			rope_head(c->q + h * hd, c->rope_cos, c->rope_sin, hp->rope_dim, hp->rope_type);
		for (uint32_t h = 0; h < hp->n_head_kv; h++)
			rope_head(kdst + h * hd, c->rope_cos, c->rope_sin, hp->rope_dim, hp->rope_type);

		struct attn_job aj = {.c = c, .layer = l, .pos = pos};
		mu_pool_run(c->pool, attn_worker, &aj);
		matvec1(c, c->att, &L->wo, c->xn);
		add_into(c->x, c->xn, hp->n_embd);

		rmsnorm(c->xn, c->x, L->ffn_norm, hp->n_embd, hp->eps);
		const struct mu_weight *gu[2] = {&L->w_gate, &L->w_up};
		float *gu_out[2] = {c->hb, c->hb2};
		matvec_n(c, c->xn, gu, gu_out, 2);
		for (uint32_t i = 0; i < hp->n_ff; i++)
			c->hb[i] = mu_siluf(c->hb[i]) * c->hb2[i];
		matvec1(c, c->hb, &L->w_down, c->xn);
		add_into(c->x, c->xn, hp->n_embd);
	}

	if (want_logits) {
		rmsnorm(c->xn, c->x, m->output_norm, hp->n_embd, hp->eps);
		matvec1(c, c->xn, &m->output, c->logits);
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
	for (uint32_t i = 0; i < n; i++)
		forward_token(c, tokens[i], c->pos + i, i + 1 == n);
	c->pos = end;
	return MU_OK;
}
