/* fuzz_proto.c — libFuzzer harness for the wire protocol's message decoder.
 *
 * The input is one frame body, in an exactly sized buffer so ASan sees any read past its end.
 * It is decoded twice (the code must be the same both times). A failure must carry one of the
 * decoder's input codes and a message. A success is re-encoded with the matching encoder
 * (evidence through the key broker's dev evidence writer, with its common members), decoded
 * again into other scratch, and must be the same message field by field; every decoded string
 * must lie inside the scratch. A broken invariant traps. Messages no encoder can reproduce
 * are skipped: hello with a version other than 1, evidence of a format other than dev, an
 * error whose code this build does not know. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/kbs_proto.h"
#include "base/limits.h"
#include "wire/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond)
{
	if (!cond)
		__builtin_trap();
}

static uint8_t *mem_a, *mem_b;
static size_t mem_len;
static char *enc;
#define ENC_CAP (MU_WIRE_MAX_FRAME + 1)

static int text_eq(const struct mu_wire_text *a, const struct mu_wire_text *b)
{
	return a->n == b->n && (a->n == 0 || !memcmp(a->p, b->p, a->n));
}

static void text_inside(const struct mu_wire_text *t, const uint8_t *mem)
{
	if (t->n == 0)
		return;
	require((const uint8_t *)t->p >= mem && (const uint8_t *)t->p + t->n <= mem + mem_len);
	require(memchr(t->p, 0, t->n) == NULL);
}

static int msg_eq(const struct mu_msg *a, const struct mu_msg *b)
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
	case MU_MSG_GENERATE:
		if (a->generate.has_prompt != b->generate.has_prompt || a->generate.max_tokens != b->generate.max_tokens ||
		    memcmp(&a->generate.temperature, &b->generate.temperature, sizeof(double)) ||
		    memcmp(&a->generate.top_p, &b->generate.top_p, sizeof(double)) ||
		    a->generate.top_k != b->generate.top_k || a->generate.seed != b->generate.seed ||
		    a->generate.stream != b->generate.stream)
			return 0;
		if (a->generate.has_prompt)
			return text_eq(&a->generate.prompt, &b->generate.prompt);
		if (a->generate.n_messages != b->generate.n_messages)
			return 0;
		for (uint32_t i = 0; i < a->generate.n_messages; i++)
			if (a->generate.role[i] != b->generate.role[i] ||
			    !text_eq(&a->generate.content[i], &b->generate.content[i]))
				return 0;
		return 1;
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

/* Re-encodes m; 0 when no encoder reproduces it (see the header), -1 when one should have. */
static long encode(const struct mu_msg *m)
{
	size_t n = 0;
	switch (m->type) {
	case MU_MSG_HELLO:
		return m->hello.version == 1 ? (long)mu_msg_hello(enc, ENC_CAP, m->hello.nonce) : 0;
	case MU_MSG_EVIDENCE: {
		static const uint8_t cfg[] = "{\"egress_bytes_per_s\":1}";
		struct mu_dev_claims c = {.config = cfg, .config_len = sizeof cfg - 1};
		if (strcmp(m->evidence.format, "dev"))
			return 0;
		memset(c.binary_sha256, 1, 32);
		memset(c.sealed_header_sha256, 2, 32);
		if (mu_kbs_msg_evidence_dev(enc, ENC_CAP, &n, m->evidence.nonce, m->evidence.pubkey,
					    m->evidence.measurement, m->evidence.key_id, &c, NULL) != MU_OK)
			return -1;
		return (long)n;
	}
	case MU_MSG_UNLOCK:
		n = mu_msg_unlock(enc, ENC_CAP, m->unlock.key_id, m->unlock.kbs_pub, m->unlock.wrapped_key);
		break;
	case MU_MSG_READY:
		n = mu_msg_ready(enc, ENC_CAP, m->ready.model, m->ready.n_ctx, m->ready.max_tokens,
				 m->ready.egress_bytes_per_s, m->ready.egress_burst_bytes);
		break;
	case MU_MSG_GENERATE:
		n = mu_msg_generate(enc, ENC_CAP, m);
		break;
	case MU_MSG_CANCEL:
		n = mu_msg_cancel(enc, ENC_CAP, m->id);
		break;
	case MU_MSG_TOKEN:
		n = mu_msg_token(enc, ENC_CAP, m->id, m->token.text.p, m->token.text.n);
		break;
	case MU_MSG_DONE:
		n = mu_msg_done(enc, ENC_CAP, m->id, m->done.finish, m->done.prompt_tokens, m->done.completion_tokens,
				m->done.elapsed_ms);
		break;
	case MU_MSG_ERROR:
		if (m->error.code >= MU_WIRE_CODE_COUNT)
			return 0;
		n = mu_msg_error(enc, ENC_CAP, m->has_id ? m->id : NULL, m->error.code, m->error.message);
		break;
	default:
		return -1;
	}
	return n ? (long)n : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mu_error err;
	struct mu_msg a, b;
	if (size > MU_WIRE_MAX_FRAME + 1)
		return 0;
	if (!mem_a) {
		mem_len = mu_msg_mem_size(MU_WIRE_MAX_FRAME);
		mem_a = malloc(mem_len);
		mem_b = malloc(mem_len);
		enc = malloc(ENC_CAP);
		require(mem_a && mem_b && enc);
	}
	uint8_t *body = malloc(size ? size : 1);
	require(body != NULL);
	memcpy(body, data, size);

	err.msg[0] = '\0';
	enum mu_wire_code c = mu_msg_decode(&a, body, size, mem_b, mem_len, &err);
	enum mu_wire_code c2 = mu_msg_decode(&a, body, size, mem_a, mem_len, &err);
	require(c == c2);
	if (c != MU_WIRE_OK) {
		require(c == MU_WIRE_INVALID_UTF8 || c == MU_WIRE_BAD_JSON || c == MU_WIRE_BAD_MESSAGE ||
			c == MU_WIRE_UNKNOWN_TYPE || c == MU_WIRE_BAD_REQUEST);
		require(a.type == MU_MSG_NONE && err.msg[0] != '\0');
		free(body);
		return 0;
	}
	require(a.type > MU_MSG_NONE && a.type < MU_MSG_TYPE_COUNT);
	require(!a.has_id || mu_wire_id_ok(a.id, strlen(a.id)));
	if (a.type == MU_MSG_GENERATE) {
		if (a.generate.has_prompt)
			text_inside(&a.generate.prompt, mem_a);
		else
			require(a.generate.n_messages >= 1 && a.generate.n_messages <= MU_WIRE_MAX_MESSAGES);
		for (uint32_t i = 0; i < a.generate.n_messages; i++)
			text_inside(&a.generate.content[i], mem_a);
	} else if (a.type == MU_MSG_TOKEN) {
		text_inside(&a.token.text, mem_a);
		require(a.token.text.n <= MU_WIRE_MAX_TOKEN_TEXT);
	}
	long n = encode(&a);
	require(n >= 0);
	if (n > 0) {
		require(mu_msg_decode(&b, (const uint8_t *)enc, (size_t)n, mem_b, mem_len, &err) == MU_WIRE_OK);
		require(msg_eq(&a, &b));
	}
	free(body);
	return 0;
}
