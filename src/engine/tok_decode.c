/* tok_decode.c — token ids back to text: whole sequences, single tokens, and the streaming
 * decoder that writes valid UTF-8 only; the rules are in tokenizer.h. */
#include <stdint.h>
#include <string.h>

#include "base/limits.h"
#include "engine/tok_internal.h"

/* ---- decoding ---- */

static enum mu_err copy_out(const uint8_t *p, size_t len, uint8_t *out, size_t cap, size_t *n, struct mu_error *err)
{
	if (len > cap)
		return mu_errf(err, MU_ERR_RANGE, "tokenizer: output buffer full");
	if (len)
		memcpy(out, p, len);
	*n = len;
	return MU_OK;
}

enum mu_err mu_tokenizer_decode_token(const struct mu_tokenizer *t, int32_t id, unsigned flags,
				      uint8_t *out, size_t cap, size_t *n, struct mu_error *err)
{
	*n = 0;
	if (id < 0 || (uint32_t)id >= t->n_vocab)
		return mu_errf(err, MU_ERR_ARG, "token id %d is outside the vocabulary of %u tokens", id,
			       t->n_vocab);
	uint8_t type = t->type[id];
	const uint8_t *p = t->piece[id];
	size_t len = t->piece_len[id], o = 0;
	if (id == t->bos || id == t->eos || type == MU_TOKEN_CONTROL)
		return (flags & MU_TOKENIZER_DECODE_SPECIAL) ? copy_out(p, len, out, cap, n, err) : MU_OK;
	if (t->kind == MU_TOKENIZER_BPE)
		return copy_out(p, len, out, cap, n, err);
	if (type == MU_TOKEN_BYTE) {
		/* never stripped: llama2.c strips only a piece that starts with a space */
		if (cap < 1)
			return mu_errf(err, MU_ERR_RANGE, "tokenizer: output buffer full");
		out[0] = (uint8_t)tok_byte_piece_value(p, len);
		*n = 1;
		return MU_OK;
	}
	int strip = (flags & MU_TOKENIZER_STRIP_SPACE) && t->add_space_prefix;
	for (size_t i = 0; i < len;) {
		uint8_t c;
		if (len - i >= 3 && memcmp(p + i, tok_spm_space, 3) == 0) {
			c = ' ';
			i += 3;
		} else {
			c = p[i++];
		}
		if (strip && o == 0 && c == ' ') {
			strip = 0;
			continue;
		}
		strip = 0;
		if (o >= cap)
			return mu_errf(err, MU_ERR_RANGE, "tokenizer: output buffer full");
		out[o++] = c;
	}
	*n = o;
	return MU_OK;
}

enum mu_err mu_tokenizer_decode(const struct mu_tokenizer *t, const int32_t *ids, size_t n_ids,
				unsigned flags, uint8_t *out, size_t cap, size_t *n, struct mu_error *err)
{
	size_t o = 0;
	*n = 0;
	for (size_t i = 0; i < n_ids; i++) {
		unsigned f = flags & MU_TOKENIZER_DECODE_SPECIAL;
		size_t k;
		if ((flags & MU_TOKENIZER_STRIP_SPACE) && (i == 0 || ids[i - 1] == t->bos))
			f |= MU_TOKENIZER_STRIP_SPACE;
		enum mu_err rc = mu_tokenizer_decode_token(t, ids[i], f, out + o, cap - o, &k, err);
		if (rc)
			return rc;
		o += k;
	}
	*n = o;
	return MU_OK;
}

/* ---- streaming decoder ---- */

static const uint8_t replacement[3] = {0xef, 0xbf, 0xbd}; /* U+FFFD */

struct sink {
	uint8_t *out;
	size_t cap, n;
	int full;
};

static void sink_put(struct sink *k, const uint8_t *p, size_t len)
{
	if (len > k->cap - k->n) {
		k->full = 1;
		return;
	}
	memcpy(k->out + k->n, p, len);
	k->n += len;
}

/* Length of the character a lead byte starts (2..4). */
static uint32_t utf8_need(uint8_t lead)
{
	return lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
}

/* Whether b may follow the n_pend bytes of p (the second byte's range depends on the lead,
 * which rules out overlong forms, surrogates and code points above U+10FFFF). */
static int utf8_cont_ok(const uint8_t *p, uint32_t n_pend, uint8_t b)
{
	uint8_t lo = 0x80, hi = 0xbf;
	if (n_pend == 1) {
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
		else if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	}
	return b >= lo && b <= hi;
}

static void stream_byte(struct mu_tok_stream *s, struct sink *k, uint8_t b)
{
	if (s->n_pend) {
		if (utf8_cont_ok(s->pend, s->n_pend, b)) {
			s->pend[s->n_pend++] = b;
			if (s->n_pend == utf8_need(s->pend[0])) {
				sink_put(k, s->pend, s->n_pend);
				s->n_pend = 0;
			}
			return;
		}
		/* the unfinished character is a maximal subpart: one U+FFFD, then b afresh */
		sink_put(k, replacement, 3);
		s->n_pend = 0;
	}
	if (b < 0x80) {
		sink_put(k, &b, 1);
	} else if (b >= 0xc2 && b <= 0xf4) {
		s->pend[0] = b;
		s->n_pend = 1;
	} else {
		sink_put(k, replacement, 3);
	}
}

void mu_tok_stream_init(struct mu_tok_stream *s, unsigned flags, int32_t prev)
{
	memset(s, 0, sizeof *s);
	s->flags = flags;
	s->prev = prev;
}

size_t mu_tok_stream_max_out(const struct mu_tokenizer *t)
{
	return 3 * ((size_t)t->max_piece_len + 3);
}

enum mu_err mu_tok_stream_push(struct mu_tok_stream *s, const struct mu_tokenizer *t, int32_t id, uint8_t *out,
			       size_t cap, size_t *n, struct mu_error *err)
{
	uint8_t piece[MU_MAX_TOKEN_BYTES];
	size_t len = 0;
	unsigned f = s->flags & MU_TOKENIZER_DECODE_SPECIAL;
	*n = 0;
	if ((s->flags & MU_TOKENIZER_STRIP_SPACE) && (s->prev < 0 || s->prev == t->bos))
		f |= MU_TOKENIZER_STRIP_SPACE;
	enum mu_err rc = mu_tokenizer_decode_token(t, id, f, piece, sizeof piece, &len, err);
	if (rc)
		return rc;
	struct mu_tok_stream next = *s;
	struct sink k = {out, cap, 0, 0};
	for (size_t i = 0; i < len; i++)
		stream_byte(&next, &k, piece[i]);
	if (k.full)
		return mu_errf(err, MU_ERR_RANGE, "tokenizer: stream output buffer of %zu bytes is too small", cap);
	next.prev = id;
	*s = next;
	*n = k.n;
	return MU_OK;
}

enum mu_err mu_tok_stream_flush(struct mu_tok_stream *s, uint8_t *out, size_t cap, size_t *n, struct mu_error *err)
{
	*n = 0;
	if (s->n_pend == 0)
		return MU_OK;
	if (cap < 3)
		return mu_errf(err, MU_ERR_RANGE, "tokenizer: stream output buffer of %zu bytes is too small", cap);
	memcpy(out, replacement, 3);
	s->n_pend = 0;
	*n = 3;
	return MU_OK;
}
