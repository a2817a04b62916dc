/* infer.h — the enclave's model: unsealing into locked memory, loading, and generating text
 * exactly as `mu run` does, over memory granted once.
 *
 *   mu_infer_unseal   authenticates and decrypts the sealed model into secret memory
 *   mu_infer_setup    parses the GGUF in place, binds the weights, loads the tokenizer and
 *                     allocates every buffer a request will need (run state, sampler,
 *                     token ids, tokenizer scratch, chat render, text pieces), all in
 *                     locked, non-dumpable memory. After this, requests allocate nothing.
 *   mu_infer_encode_*  a prompt as `mu run -p` (BOS + plain text) or messages as
 *                     `mu run --chat` (the model's chat template, assistant header added)
 *   mu_infer_start / mu_infer_prefill / mu_infer_step / mu_infer_flush
 *                     the generation loop of `mu run`: the prompt evaluated a chunk of at most
 *                     MU_ENCLAVE_PREFILL_CHUNK tokens per prefill call, then one token per
 *                     step, so the caller can look at its channel (for a cancel) between
 *                     chunks and between tokens. Stop rules: plain text stops at EOS or BOS,
 *                     a chat at the end-of-generation set; max tokens or a full context
 *                     finish with "length".
 *
 * Chunked prefill gives the same logits, bit for bit, as `mu run`'s one mu_forward over the
 * whole prompt: every element of a prefill batch is computed in the canonical order of a
 * single-token step and only the last token's logits are kept (docs/determinism.md), so where
 * a call or a batch ends changes nothing.
 *
 * The longest prompt text accepted is bounded by what could possibly fit the context: no
 * token covers more than max(longest piece, 4) bytes of text (4 × that, for NFC), so text
 * longer than 4 × max(piece, 4) × n_ctx + 4096 bytes cannot be n_ctx tokens, and is
 * refused as too long without being encoded. That bound sizes the tokenizer scratch.
 */
#ifndef MU_ENCLAVE_INFER_H
#define MU_ENCLAVE_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "enclave/config.h"
#include "engine/chat.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/pool.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"
#include "pal/pal.h"
#include "seal/unseal.h"
#include "wire/proto.h"

enum { MU_INFER_SEC_GGUF = 0, MU_INFER_SEC_MODEL, MU_INFER_SEC_TOK, MU_INFER_SEC_CTX, MU_INFER_SEC_WORK, MU_INFER_SEC_N };

struct mu_infer {
	int unsealed, loaded;
	struct mu_unsealed u;                  /* the plaintext GGUF */
	struct pal_secret sec[MU_INFER_SEC_N]; /* everything derived from it */
	struct gguf g;
	struct mu_model *model;
	struct mu_ctx ctx;
	struct mu_tokenizer tok;
	enum mu_chat_template tmpl;
	uint32_t n_ctx;
	uint32_t n_sample;                     /* ids the sampler may pick: the vocabulary */
	char name[MU_WIRE_MAX_MODEL_NAME + 1]; /* general.name when printable, else "model" */
	/* request buffers, granted at setup */
	void *smem;
	size_t smem_len;
	int32_t *ids;                          /* n_ctx + 1: prompt then generated ids */
	void *scratch;                         /* tokenizer arena */
	size_t scratch_len;
	size_t text_cap;                       /* longest prompt / rendered chat text accepted */
	char *render;                          /* text_cap bytes */
	struct mu_chat_part *parts;
	size_t max_parts;
	uint8_t *piece;
	size_t piece_cap;
	/* the request in progress */
	struct mu_sampler sampler;
	struct mu_tok_stream stream;
	uint32_t n_prompt, n_fed, n_out, max_out; /* n_fed: prompt tokens evaluated so far */
	int chat, ctx_full;
};

/* Unseals sealed[0..len) with key (name for messages). Failures (wrong key, tampering) are
 * MU_ERR_AUTH / MU_ERR_FORMAT with nothing decrypted left behind. */
enum mu_err mu_infer_unseal(struct mu_infer *m, const uint8_t *sealed, size_t len, const uint8_t key[static 32],
			    struct mu_pool *pool, int secretmem, const char *name, struct mu_error *err);
/* Loads the unsealed model and grants every buffer. On failure everything is freed. */
enum mu_err mu_infer_setup(struct mu_infer *m, const struct mu_enclave_cfg *cfg, struct mu_pool *pool,
			   struct mu_error *err);
/* Wipes and frees everything (plaintext included). */
void mu_infer_free(struct mu_infer *m);

/* Encodes a plain prompt / a generate message's prompt or messages. Returns MU_WIRE_OK, or
 * MU_WIRE_PROMPT_TOO_LONG, MU_WIRE_BAD_REQUEST or MU_WIRE_INTERNAL with err saying why (never
 * quoting the text). */
enum mu_wire_code mu_infer_encode_text(struct mu_infer *m, const char *text, size_t n, struct mu_error *err);
enum mu_wire_code mu_infer_encode_msg(struct mu_infer *m, const struct mu_msg *g, struct mu_error *err);

/* Starts a request after an encode: sampler from cfg, run state reset. Nothing is evaluated
 * yet: mu_infer_prefill does that. */
enum mu_err mu_infer_start(struct mu_infer *m, const struct mu_sampler_config *cfg, uint32_t max_out,
			   struct mu_error *err);
/* Evaluates the next at most MU_ENCLAVE_PREFILL_CHUNK prompt tokens; *done = 1 once the whole
 * prompt has been evaluated (by this call or an earlier one). */
enum mu_err mu_infer_prefill(struct mu_infer *m, int *done, struct mu_error *err);
/* One token, once the prompt is evaluated (MU_ERR_STATE before): *done = 0 and the text it
 * completes in (*text, *n) (possibly empty), or *done = 1 and *finish (MU_FINISH_STOP or
 * MU_FINISH_LENGTH). */
enum mu_err mu_infer_step(struct mu_infer *m, const uint8_t **text, size_t *n, int *done, enum mu_finish *finish,
			  struct mu_error *err);
/* The end of the text: an unfinished character as U+FFFD (possibly empty). */
enum mu_err mu_infer_flush(struct mu_infer *m, const uint8_t **text, size_t *n, struct mu_error *err);

#endif
