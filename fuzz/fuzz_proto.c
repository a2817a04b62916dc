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

static void text_inside(const struct mu_wire_text *t, const uint8_t *mem)
{
	if (t->n == 0)
		return;
	require((const uint8_t *)t->p >= mem && (const uint8_t *)t->p + t->n <= mem + mem_len);
	require(memchr(t->p, 0, t->n) == NULL);
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
		require(mu_msg_equal(&a, &b));
	}
	free(body);
	return 0;
}
