/* proto_eq.c — field-by-field equality of two decoded messages (see proto.h): what the
 * round-trip tests and the fuzz harness compare. */
#include <string.h>

#include "wire/proto.h"

static int text_eq(const struct mu_wire_text *a, const struct mu_wire_text *b)
{
	return a->n == b->n && (a->n == 0 || !memcmp(a->p, b->p, a->n));
}

int mu_msg_equal(const struct mu_msg *a, const struct mu_msg *b)
{
	if (a->type != b->type || a->has_id != b->has_id || strcmp(a->id, b->id))
		return 0;
	switch (a->type) {
	case MU_MSG_HELLO:
		return a->hello.version == b->hello.version && !memcmp(a->hello.nonce, b->hello.nonce, 32);
	case MU_MSG_EVIDENCE:
		return !strcmp(a->evidence.format, b->evidence.format) &&
		       !memcmp(a->evidence.nonce, b->evidence.nonce, 32) &&
		       !memcmp(a->evidence.pubkey, b->evidence.pubkey, 32) &&
		       !memcmp(a->evidence.measurement, b->evidence.measurement, 32) &&
		       !memcmp(a->evidence.key_id, b->evidence.key_id, 16);
	case MU_MSG_UNLOCK:
		return !memcmp(&a->unlock, &b->unlock, sizeof a->unlock);
	case MU_MSG_READY:
		return !strcmp(a->ready.model, b->ready.model) && a->ready.n_ctx == b->ready.n_ctx &&
		       a->ready.max_tokens == b->ready.max_tokens &&
		       a->ready.egress_bytes_per_s == b->ready.egress_bytes_per_s &&
		       a->ready.egress_burst_bytes == b->ready.egress_burst_bytes;
	case MU_MSG_GENERATE: {
		const __typeof__(a->generate) *x = &a->generate, *y = &b->generate;
		/* temperature and top_p compare by their bits (-0 is not 0): the wire carries them
		 * exactly. NOLINTBEGIN(bugprone-suspicious-memory-comparison,cert-exp42-c,cert-flp37-c) */
		if (x->has_prompt != y->has_prompt || x->max_tokens != y->max_tokens ||
		    memcmp(&x->temperature, &y->temperature, sizeof(double)) ||
		    memcmp(&x->top_p, &y->top_p, sizeof(double)) || x->top_k != y->top_k || x->seed != y->seed ||
		    x->stream != y->stream)
			return 0;
		/* NOLINTEND(bugprone-suspicious-memory-comparison,cert-exp42-c,cert-flp37-c) */
		if (x->has_prompt)
			return text_eq(&x->prompt, &y->prompt);
		if (x->n_messages != y->n_messages)
			return 0;
		for (uint32_t i = 0; i < x->n_messages; i++)
			if (x->role[i] != y->role[i] || !text_eq(&x->content[i], &y->content[i]))
				return 0;
		return 1;
	}
	case MU_MSG_CANCEL:
		return 1;
	case MU_MSG_TOKEN:
		return text_eq(&a->token.text, &b->token.text);
	case MU_MSG_DONE:
		return a->done.finish == b->done.finish && a->done.prompt_tokens == b->done.prompt_tokens &&
		       a->done.completion_tokens == b->done.completion_tokens && a->done.elapsed_ms == b->done.elapsed_ms;
	case MU_MSG_ERROR:
		return a->error.code == b->error.code && !strcmp(a->error.code_name, b->error.code_name) &&
		       !strcmp(a->error.message, b->error.message);
	default:
		return 0;
	}
}
