/* infer.c — the enclave's model: unseal, load, encode and generate (see infer.h). The
 * generation loop is `mu run`'s (src/host/cmd_run.c), step by step, so the same model, prompt
 * and sampler settings give the same bytes. */
#include "enclave/infer.h"

#include <string.h>

#include "base/ckd.h"

#define TEXT_SLACK 4096u           /* bytes of template text and dummy prefix allowed for */
#define TEXT_NFC_FACTOR 4u         /* NFC never shrinks text by more than this */
#define TEXT_CAP_MAX ((size_t)MU_WIRE_MAX_FRAME + 65536u) /* a frame cannot carry more */

enum mu_err mu_infer_unseal(struct mu_infer *m, const uint8_t *sealed, size_t len, const uint8_t key[static 32],
			    struct mu_pool *pool, int secretmem, const char *name, struct mu_error *err)
{
	enum mu_err rc;
	if (m->unsealed)
		return mu_errf(err, MU_ERR_STATE, "the model is already unsealed");
	rc = mu_unseal(sealed, len, key, pool, secretmem ? MU_UNSEAL_SECRETMEM : 0, name, &m->u, err);
	if (rc == MU_OK)
		m->unsealed = 1;
	return rc;
}

void mu_infer_free(struct mu_infer *m)
{
	for (int i = 0; i < MU_INFER_SEC_N; i++)
		pal_secret_free(&m->sec[i]);
	if (m->unsealed)
		mu_unsealed_free(&m->u);
	memset(m, 0, sizeof *m);
}

static enum mu_err grant(struct pal_secret *s, size_t len, const char *what, struct mu_error *err)
{
	enum mu_err rc = pal_secret_alloc(s, len, PAL_SECRET_NO_MEMFD, err);
	if (rc)
		mu_err_prefix(err, "locked memory for the %s (%zu bytes)", what, len);
	return rc;
}

/* The name ready announces: general.name when it is 1..64 printable ASCII, else "model". */
static void default_name(struct mu_infer *m)
{
	struct gguf_str s;
	int found = 0;
	strcpy(m->name, "model");
	if (gguf_get_str(&m->g, "general.name", &s, &found, NULL) != MU_OK || !found)
		return;
	if (s.len == 0 || s.len > MU_WIRE_MAX_MODEL_NAME || !mu_enclave_name_ok(s.ptr, (size_t)s.len))
		return;
	memcpy(m->name, s.ptr, (size_t)s.len);
	m->name[s.len] = '\0';
}

/* Sizes of the request buffers carved from one region, 64-byte aligned each. */
static size_t align64(size_t n) { return (n + 63u) & ~(size_t)63u; }

static enum mu_err grant_work(struct mu_infer *m, struct mu_error *err)
{
	size_t piece_len = m->tok.max_piece_len > 4 ? m->tok.max_piece_len : 4, cap;
	if (ckd_mul(&cap, piece_len, (size_t)m->n_ctx) || ckd_mul(&cap, cap, (size_t)TEXT_NFC_FACTOR) ||
	    ckd_add(&cap, cap, (size_t)TEXT_SLACK) || cap > TEXT_CAP_MAX)
		cap = TEXT_CAP_MAX;
	m->text_cap = cap;
	m->scratch_len = mu_tokenizer_scratch_size(cap);
	m->smem_len = mu_sampler_mem_size(m->n_sample);
	m->max_parts = 16u * MU_WIRE_MAX_MESSAGES + 16u;
	m->piece_cap = mu_tok_stream_max_out(&m->tok);
	if (m->scratch_len == SIZE_MAX || m->smem_len == 0)
		return mu_errf(err, MU_ERR_RANGE, "request buffers: sizes out of range");
	size_t o_ids = 0, o_smem = o_ids + align64(((size_t)m->n_ctx + 1) * sizeof(int32_t));
	size_t o_scr = o_smem + align64(m->smem_len);
	size_t o_ren = o_scr + align64(m->scratch_len);
	size_t o_par = o_ren + align64(m->text_cap);
	size_t o_pie = o_par + align64(m->max_parts * sizeof(struct mu_chat_part));
	size_t total = o_pie + align64(m->piece_cap);
	enum mu_err rc = grant(&m->sec[MU_INFER_SEC_WORK], total, "request buffers", err);
	if (rc)
		return rc;
	uint8_t *b = m->sec[MU_INFER_SEC_WORK].data;
	m->ids = (int32_t *)(void *)(b + o_ids);
	m->smem = b + o_smem;
	m->scratch = b + o_scr;
	m->render = (char *)(b + o_ren);
	m->parts = (struct mu_chat_part *)(void *)(b + o_par);
	m->piece = b + o_pie;
	return MU_OK;
}

enum mu_err mu_infer_setup(struct mu_infer *m, const struct mu_enclave_cfg *cfg, struct mu_pool *pool,
			   struct mu_error *err)
{
	enum mu_err rc;
	size_t len = 0;
	struct mu_ctx_params cp;
	const uint8_t *data = m->u.mem.data;
	size_t size = (size_t)m->u.size;

	if (!m->unsealed || m->loaded)
		return mu_errf(err, MU_ERR_STATE, "the model is not unsealed, or already loaded");
	if ((rc = gguf_mem_size(data, size, &len, err)) || (rc = grant(&m->sec[MU_INFER_SEC_GGUF], len, "GGUF tables", err)) ||
	    (rc = gguf_parse(&m->g, data, size, m->sec[MU_INFER_SEC_GGUF].data, len, err)))
		goto fail;
	if ((rc = grant(&m->sec[MU_INFER_SEC_MODEL], sizeof *m->model, "model", err)))
		goto fail;
	m->model = (struct mu_model *)(void *)m->sec[MU_INFER_SEC_MODEL].data;
	if ((rc = mu_model_load(m->model, &m->g, err)))
		goto fail;
	mu_model_pack(m->model); /* the unsealed buffer is ours to rewrite */
	if ((rc = mu_tokenizer_mem_size(&m->g, &len, err)) || (rc = grant(&m->sec[MU_INFER_SEC_TOK], len, "tokenizer", err)) ||
	    (rc = mu_tokenizer_init(&m->tok, &m->g, m->sec[MU_INFER_SEC_TOK].data, len, err)))
		goto fail;
	m->n_sample = m->tok.n_vocab;
	if (m->n_sample > m->model->hp.n_vocab) {
		rc = mu_errf(err, MU_ERR_FORMAT, "the vocabulary has %u tokens but the model only %u embeddings", m->n_sample,
			     m->model->hp.n_vocab);
		goto fail;
	}
	m->n_ctx = cfg->n_ctx ? cfg->n_ctx : mu_model_default_ctx(m->model, MU_ENCLAVE_DEFAULT_CTX);
	/* F16 KV, the default batch, per-thread scratch for this pool */
	cp = mu_ctx_params_default(m->n_ctx);
	cp.n_threads = (uint32_t)mu_pool_threads(pool);
	if ((rc = mu_ctx_params_check(&cp, err)))
		goto fail;
	len = mu_ctx_size(m->model, &cp);
	if ((rc = grant(&m->sec[MU_INFER_SEC_CTX], len, "run state", err)) ||
	    (rc = mu_ctx_init(&m->ctx, m->model, &cp, pool, m->sec[MU_INFER_SEC_CTX].data, len, err)))
		goto fail;
	if ((rc = grant_work(m, err)))
		goto fail;
	m->tmpl = mu_chat_detect(&m->g, &m->tok);
	if (cfg->name[0])
		strcpy(m->name, cfg->name);
	else
		default_name(m);
	m->loaded = 1;
	return MU_OK;
fail:
	for (int i = 0; i < MU_INFER_SEC_N; i++)
		pal_secret_free(&m->sec[i]);
	m->model = NULL;
	return rc;
}

/* The prompt must leave room for one generated token. */
static enum mu_wire_code check_fit(struct mu_infer *m, size_t n_ids, struct mu_error *err)
{
	if (n_ids == 0) {
		mu_errf(err, MU_ERR_ARG, "the prompt encodes to no tokens and the vocabulary adds no BOS");
		return MU_WIRE_BAD_REQUEST;
	}
	if (n_ids >= m->n_ctx) {
		mu_errf(err, MU_ERR_RANGE, "the prompt is %zu tokens, the context %u", n_ids, m->n_ctx);
		return MU_WIRE_PROMPT_TOO_LONG;
	}
	m->n_prompt = (uint32_t)n_ids;
	return MU_WIRE_OK;
}

static enum mu_wire_code too_long(struct mu_infer *m, struct mu_error *err)
{
	mu_errf(err, MU_ERR_RANGE, "the prompt does not fit the context of %u tokens", m->n_ctx);
	return MU_WIRE_PROMPT_TOO_LONG;
}

enum mu_wire_code mu_infer_encode_text(struct mu_infer *m, const char *text, size_t n, struct mu_error *err)
{
	struct mu_arena a;
	size_t n_ids = 0;
	m->chat = 0;
	if (n > m->text_cap)
		return too_long(m, err);
	mu_arena_init(&a, m->scratch, m->scratch_len);
	enum mu_err rc = mu_tokenizer_encode(&m->tok, text, n, MU_TOKENIZER_ADD_SPECIAL, m->ids, m->n_ctx, &n_ids, &a, NULL);
	if (rc == MU_ERR_RANGE)
		return too_long(m, err);
	if (rc) {
		mu_errf(err, rc, "the prompt could not be encoded");
		return MU_WIRE_INTERNAL;
	}
	return check_fit(m, n_ids, err);
}

enum mu_wire_code mu_infer_encode_msg(struct mu_infer *m, const struct mu_msg *g, struct mu_error *err)
{
	struct mu_chat_msg msgs[MU_WIRE_MAX_MESSAGES];
	struct mu_chat_render r = {.text = m->render, .cap = m->text_cap, .parts = m->parts, .max_parts = m->max_parts};
	struct mu_arena a;
	struct mu_error e = {0};
	size_t n_ids = 0, total = 0;
	enum mu_err rc;

	if (g->generate.has_prompt)
		return mu_infer_encode_text(m, g->generate.prompt.p, g->generate.prompt.n, err);
	if (g->generate.n_messages == 0 || g->generate.n_messages > MU_WIRE_MAX_MESSAGES) {
		mu_errf(err, MU_ERR_ARG, "a chat needs 1..%u messages", MU_WIRE_MAX_MESSAGES);
		return MU_WIRE_BAD_REQUEST;
	}
	for (uint32_t i = 0; i < g->generate.n_messages; i++) {
		enum mu_role role = g->generate.role[i];
		msgs[i].role = role == MU_WIRE_ROLE_SYSTEM ? MU_ROLE_SYSTEM
			       : role == MU_WIRE_ROLE_USER ? MU_ROLE_USER
							   : MU_ROLE_ASSISTANT;
		msgs[i].content = g->generate.content[i].p;
		msgs[i].len = g->generate.content[i].n;
		total += msgs[i].len;
	}
	m->chat = 1;
	if (total > m->text_cap)
		return too_long(m, err);
	rc = mu_chat_render(m->tmpl, &m->tok, msgs, g->generate.n_messages, 1, NULL, &r, &e);
	if (rc == MU_ERR_RANGE)
		return too_long(m, err);
	if (rc == MU_ERR_ARG || rc == MU_ERR_FORMAT) { /* the order of roles; messages name no content */
		mu_errf(err, MU_ERR_ARG, "messages: %s", e.msg);
		return MU_WIRE_BAD_REQUEST;
	}
	if (rc) {
		mu_errf(err, rc, "the chat template cannot render this model's prompt");
		return MU_WIRE_INTERNAL;
	}
	mu_arena_init(&a, m->scratch, m->scratch_len);
	rc = mu_chat_encode(&m->tok, &r, m->ids, m->n_ctx, &n_ids, &a, NULL);
	if (rc == MU_ERR_RANGE)
		return too_long(m, err);
	if (rc) {
		mu_errf(err, rc, "the chat could not be encoded");
		return MU_WIRE_INTERNAL;
	}
	return check_fit(m, n_ids, err);
}

enum mu_err mu_infer_start(struct mu_infer *m, const struct mu_sampler_config *cfg, uint32_t max_out,
			   struct mu_error *err)
{
	enum mu_err rc;
	if ((rc = mu_sampler_init(&m->sampler, cfg, m->n_sample, m->smem, m->smem_len, err)))
		return rc;
	m->n_fed = 0;
	m->n_out = 0;
	m->max_out = max_out;
	m->ctx_full = 0;
	mu_ctx_reset(&m->ctx);
	/* only generated text is streamed: the last prompt token decides the first piece's space */
	mu_tok_stream_init(&m->stream, MU_TOKENIZER_STRIP_SPACE, m->ids[m->n_prompt - 1]);
	return MU_OK;
}

enum mu_err mu_infer_prefill(struct mu_infer *m, int *done, struct mu_error *err)
{
	uint32_t n = m->n_prompt - m->n_fed;
	*done = 0;
	if (n > MU_ENCLAVE_PREFILL_CHUNK)
		n = MU_ENCLAVE_PREFILL_CHUNK;
	if (n > 0) {
		enum mu_err rc = mu_forward(&m->ctx, m->ids + m->n_fed, n, err);
		if (rc)
			return rc;
		m->n_fed += n;
	}
	*done = m->n_fed == m->n_prompt;
	return MU_OK;
}

enum mu_err mu_infer_step(struct mu_infer *m, const uint8_t **text, size_t *n, int *done, enum mu_finish *finish,
			  struct mu_error *err)
{
	enum mu_err rc;
	int32_t next;
	*text = m->piece;
	*n = 0;
	*done = 1;
	*finish = MU_FINISH_LENGTH;
	if (m->n_fed != m->n_prompt)
		return mu_errf(err, MU_ERR_STATE, "generation step before the prompt was evaluated");
	if (m->n_out >= m->max_out || m->ctx_full)
		return MU_OK;
	if ((rc = mu_sampler_sample(&m->sampler, m->ctx.logits, m->ids, (size_t)m->n_prompt + m->n_out, &next, err)))
		return rc;
	if (m->chat ? mu_tokenizer_is_eog(&m->tok, next) : (next == m->tok.eos || next == m->tok.bos)) {
		*finish = MU_FINISH_STOP;
		return MU_OK;
	}
	*done = 0;
	m->ids[m->n_prompt + m->n_out] = next;
	if ((rc = mu_tok_stream_push(&m->stream, &m->tok, next, m->piece, m->piece_cap, n, err)))
		return rc;
	m->n_out++;
	if (m->ctx.pos >= m->ctx.n_ctx)
		m->ctx_full = 1;
	else if (m->n_out < m->max_out)
		rc = mu_forward(&m->ctx, &next, 1, err);
	return rc;
}

enum mu_err mu_infer_flush(struct mu_infer *m, const uint8_t **text, size_t *n, struct mu_error *err)
{
	*text = m->piece;
	return mu_tok_stream_flush(&m->stream, m->piece, m->piece_cap, n, err);
}
