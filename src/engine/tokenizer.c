/* tokenizer.c — vocabulary loading for both kinds, special tokens and the encoder's entry point;
 * the format and the algorithms are described in tokenizer.h. */
#include "engine/tokenizer.h"

#include <stdint.h>
#include <string.h>

#include "base/limits.h"
#include "engine/tok_internal.h"

const uint8_t tok_spm_space[3] = {0xe2, 0x96, 0x81};

/* ---- pieces ---- */

static int hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The byte value of a "<0xNN>" piece, or -1 when the piece has another form. */
int tok_byte_piece_value(const uint8_t *p, size_t n)
{
	if (n != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>')
		return -1;
	int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
	if (hi < 0 || lo < 0)
		return -1;
	return hi * 16 + lo;
}

int mu_tokenizer_is_eog(const struct mu_tokenizer *t, int32_t id)
{
	for (uint32_t i = 0; i < t->n_eog; i++)
		if (t->eog[i] == id)
			return 1;
	return 0;
}

/* ---- the vocabulary in the GGUF ---- */

/* The vocabulary arrays of g, checked for presence, element type and length. */
struct vocab_src {
	enum mu_tokenizer_kind kind;
	enum mu_pretok pre;
	const struct gguf_kv *tokens, *scores, *types, *merges;
	uint32_t n, n_merges, n_special;
	size_t text_bytes; /* all pieces together */
};

/* A name from the file, for a message: at most 40 printable ASCII characters. */
static void safe_name(struct gguf_str s, char out[48])
{
	size_t n = s.len < 40 ? (size_t)s.len : 40, i;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		out[i] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
	}
	strcpy(out + i, s.len > 40 ? "..." : "");
}

static enum mu_err pre_get(const struct gguf *g, struct vocab_src *s, struct mu_error *err)
{
	struct gguf_str pre;
	int found = 0;
	char name[48];
	enum mu_err rc = gguf_get_str(g, "tokenizer.ggml.pre", &pre, &found, err);
	if (rc)
		return rc;
	if (!found || gguf_str_eq(pre, "gpt-2") || gguf_str_eq(pre, "default"))
		s->pre = MU_PRETOK_GPT2;
	else if (gguf_str_eq(pre, "llama-bpe") || gguf_str_eq(pre, "llama3"))
		s->pre = MU_PRETOK_LLAMA3;
	else if (gguf_str_eq(pre, "qwen2"))
		s->pre = MU_PRETOK_QWEN2;
	else {
		safe_name(pre, name);
		return mu_errf(err, MU_ERR_UNSUPPORTED,
			       "tokenizer.ggml.pre \"%s\": unknown pre-tokenizer; supported are gpt-2, default, "
			       "llama-bpe, llama3 and qwen2", name);
	}
	return MU_OK;
}

static enum mu_err vocab_src_get(const struct gguf *g, struct vocab_src *s, struct mu_error *err)
{
	struct gguf_str model;
	int found = 0;
	enum mu_err rc;

	memset(s, 0, sizeof *s);
	rc = gguf_get_str(g, "tokenizer.ggml.model", &model, &found, err);
	if (rc)
		return rc;
	if (!found)
		return mu_errf(err, MU_ERR_FORMAT,
			       "tokenizer.ggml.model missing: the file has no embedded vocabulary");
	if (gguf_str_eq(model, "llama")) {
		s->kind = MU_TOKENIZER_SPM;
	} else if (gguf_str_eq(model, "gpt2")) {
		s->kind = MU_TOKENIZER_BPE;
		if ((rc = pre_get(g, s, err)))
			return rc;
	} else {
		return mu_errf(err, MU_ERR_UNSUPPORTED,
			       "tokenizer.ggml.model: unknown tokenizer model (%llu bytes); only \"llama\" "
			       "(SentencePiece) and \"gpt2\" (byte-level BPE) vocabularies can be used",
			       (unsigned long long)model.len);
	}

	rc = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &s->tokens, &found, err);
	if (rc)
		return rc;
	if (!found)
		return mu_errf(err, MU_ERR_FORMAT, "tokenizer.ggml.tokens missing");
	if (s->tokens->arr_len == 0 || s->tokens->arr_len > MU_MAX_VOCAB)
		return mu_errf(err, MU_ERR_RANGE, "tokenizer.ggml.tokens: %llu tokens, must be 1..%d",
			       (unsigned long long)s->tokens->arr_len, MU_MAX_VOCAB);
	s->n = (uint32_t)s->tokens->arr_len;
	/* each element is a u64 length and the bytes */
	if (s->tokens->size < 8 * (uint64_t)s->n || s->tokens->size - 8 * (uint64_t)s->n > SIZE_MAX / 2)
		return mu_errf(err, MU_ERR_FORMAT, "tokenizer.ggml.tokens: array size does not match its count");
	s->text_bytes = (size_t)(s->tokens->size - 8 * (uint64_t)s->n);

	if (s->kind == MU_TOKENIZER_SPM) {
		rc = gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &s->scores, &found, err);
		if (rc)
			return rc;
		if (!found)
			return mu_errf(err, MU_ERR_FORMAT,
				       "tokenizer.ggml.scores missing (a SentencePiece vocabulary needs its merge scores)");
		if (s->scores->arr_len != s->n)
			return mu_errf(err, MU_ERR_FORMAT, "tokenizer.ggml.scores has %llu entries, tokens has %u",
				       (unsigned long long)s->scores->arr_len, s->n);
	} else {
		rc = gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &s->merges, &found, err);
		if (rc)
			return rc;
		if (!found)
			return mu_errf(err, MU_ERR_FORMAT,
				       "tokenizer.ggml.merges missing (a byte-level BPE vocabulary needs its merges)");
		if (s->merges->arr_len > MU_GGUF_MAX_ARRAY)
			return mu_errf(err, MU_ERR_RANGE, "tokenizer.ggml.merges: %llu merges, the limit is %u",
				       (unsigned long long)s->merges->arr_len, MU_GGUF_MAX_ARRAY);
		s->n_merges = (uint32_t)s->merges->arr_len;
	}

	rc = gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &s->types, &found, err);
	if (rc)
		return rc;
	if (!found) {
		s->types = NULL;
	} else {
		if (s->types->arr_len != s->n)
			return mu_errf(err, MU_ERR_FORMAT, "tokenizer.ggml.token_type has %llu entries, tokens has %u",
				       (unsigned long long)s->types->arr_len, s->n);
		for (uint32_t i = 0; i < s->n; i++) {
			int32_t ty = gguf_arr_i32(s->types, i);
			s->n_special += ty == MU_TOKEN_CONTROL || ty == MU_TOKEN_USER_DEFINED;
		}
	}
	return MU_OK;
}

/* Carves the tables out of a (the layout mu_tokenizer_mem_size counts); *blob gets room for the
 * raw bytes of byte-level pieces. */
static int vocab_layout(struct mu_tokenizer *t, struct mu_arena *a, const struct vocab_src *s, uint8_t **blob)
{
	uint32_t n = s->n;
	int bpe = s->kind == MU_TOKENIZER_BPE;
	t->piece = mu_arena_alloc(a, (size_t)n * sizeof *t->piece, _Alignof(const uint8_t *));
	t->piece_len = mu_arena_alloc(a, (size_t)n * sizeof *t->piece_len, _Alignof(uint32_t));
	t->sorted = mu_arena_alloc(a, (size_t)n * sizeof *t->sorted, _Alignof(uint32_t));
	t->sorted_prefix = mu_arena_alloc(a, (size_t)n * sizeof *t->sorted_prefix, _Alignof(uint32_t));
	t->special = mu_arena_alloc(a, (size_t)s->n_special * sizeof *t->special, _Alignof(uint32_t));
	t->score = bpe ? NULL : mu_arena_alloc(a, (size_t)n * sizeof *t->score, _Alignof(float));
	t->merge = bpe ? mu_arena_alloc(a, (size_t)s->n_merges * sizeof *t->merge, _Alignof(struct mu_bpe_merge))
		       : NULL;
	t->merge_start = bpe ? mu_arena_alloc(a, ((size_t)n + 1) * sizeof *t->merge_start, _Alignof(uint32_t)) : NULL;
	t->type = mu_arena_alloc(a, n, 1);
	t->hash_mask = 1;
	while (t->hash_mask < 2 * n)
		t->hash_mask *= 2;
	t->hash = mu_arena_alloc(a, (size_t)t->hash_mask * sizeof *t->hash, _Alignof(uint32_t));
	t->hash_mask--;
	*blob = bpe ? mu_arena_alloc(a, s->text_bytes, 1) : NULL;
	return mu_arena_counting(a) ||
	       (t->piece && t->piece_len && t->sorted && t->sorted_prefix && t->special && t->type && t->hash &&
		(bpe ? t->merge && t->merge_start && *blob : t->score != NULL));
}

enum mu_err mu_tokenizer_mem_size(const struct gguf *g, size_t *size, struct mu_error *err)
{
	struct vocab_src s;
	struct mu_tokenizer t;
	struct mu_arena a;
	uint8_t *blob;
	enum mu_err rc = vocab_src_get(g, &s, err);
	if (rc)
		return rc;
	mu_arena_init(&a, NULL, 0);
	vocab_layout(&t, &a, &s, &blob);
	/* slack for aligning the caller's block */
	*size = a.used + 16;
	return MU_OK;
}

/* A token id from key, def when absent (-1: none). */
static enum mu_err get_id(const struct gguf *g, const char *key, int32_t def, uint32_t n, int32_t *out,
			  struct mu_error *err)
{
	uint32_t v = 0;
	int found = 0;
	enum mu_err rc = gguf_get_u32(g, key, &v, &found, err);
	if (rc)
		return rc;
	if (!found) {
		*out = def;
		return MU_OK;
	}
	if (v >= n)
		return mu_errf(err, MU_ERR_RANGE, "%s = %u is outside the vocabulary of %u tokens", key, v, n);
	*out = (int32_t)v;
	return MU_OK;
}

static enum mu_err get_flag(const struct gguf *g, const char *key, int def, int *out, struct mu_error *err)
{
	int v = def;
	enum mu_err rc = gguf_get_bool(g, key, &v, NULL, err);
	if (rc)
		return rc;
	*out = v != 0;
	return MU_OK;
}

static enum mu_err load_settings(struct mu_tokenizer *t, const struct gguf *g, const struct vocab_src *s,
				 struct mu_error *err)
{
	enum mu_err rc;
	int spm = s->kind == MU_TOKENIZER_SPM;
	t->kind = s->kind;
	t->n_vocab = s->n;
	t->pre = s->pre;
	t->ignore_merges = !spm && s->pre == MU_PRETOK_LLAMA3;
	t->nfc = !spm && s->pre == MU_PRETOK_QWEN2;
	if ((rc = get_id(g, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, s->n, &t->bos, err)) ||
	    (rc = get_id(g, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, s->n, &t->eos, err)) ||
	    (rc = get_id(g, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, s->n, &t->unk, err)) ||
	    (rc = get_flag(g, "tokenizer.ggml.add_bos_token", spm || (t->ignore_merges && t->bos >= 0), &t->add_bos,
			   err)) ||
	    (rc = get_flag(g, "tokenizer.ggml.add_eos_token", 0, &t->add_eos, err)) ||
	    (rc = get_flag(g, "tokenizer.ggml.add_space_prefix", spm, &t->add_space_prefix, err)))
		return rc;
	if (!spm) {
		t->add_space_prefix = 0; /* byte-level vocabularies have no dummy prefix */
		t->unk = -1;
		if (t->add_bos && t->bos < 0)
			return mu_errf(err, MU_ERR_FORMAT, "tokenizer.ggml.add_bos_token is set but there is no bos_token_id");
		if (t->add_eos && t->eos < 0)
			return mu_errf(err, MU_ERR_FORMAT, "tokenizer.ggml.add_eos_token is set but there is no eos_token_id");
	}
	return MU_OK;
}

/* Pieces merging can make: the ones that are ordinary text. */
static int type_indexed(const struct mu_tokenizer *t, uint8_t type)
{
	if (type == MU_TOKEN_NORMAL || type == MU_TOKEN_UNDEFINED)
		return 1;
	return t->kind == MU_TOKENIZER_SPM ? type == MU_TOKEN_USER_DEFINED : type == MU_TOKEN_BYTE;
}

/* Reads, checks and stores token i's piece and type. *blob_used counts the raw bytes of
 * byte-level pieces. */
static enum mu_err load_token(struct mu_tokenizer *t, const struct vocab_src *s, uint32_t i, struct gguf_str p,
			      uint8_t *blob, size_t *blob_used, struct mu_error *err)
{
	if (p.len > MU_MAX_TOKEN_BYTES)
		return mu_errf(err, MU_ERR_RANGE, "token %u: piece of %llu bytes, the limit is %d", i,
			       (unsigned long long)p.len, MU_MAX_TOKEN_BYTES);
	const uint8_t *bytes = (const uint8_t *)p.ptr;
	size_t len = (size_t)p.len;
	if (!mu_utf8_valid(bytes, len))
		return mu_errf(err, MU_ERR_FORMAT, "token %u: piece is not valid UTF-8", i);

	int bv = t->kind == MU_TOKENIZER_SPM ? tok_byte_piece_value(bytes, len) : -1;
	uint8_t type;
	if (s->types) {
		int32_t ty = gguf_arr_i32(s->types, i);
		if (ty < MU_TOKEN_UNDEFINED || ty > MU_TOKEN_BYTE)
			return mu_errf(err, MU_ERR_FORMAT, "token %u: token_type %d is not one of 0..6", i, ty);
		type = (uint8_t)ty;
		if (t->kind == MU_TOKENIZER_SPM && type == MU_TOKEN_BYTE && bv < 0)
			return mu_errf(err, MU_ERR_FORMAT, "token %u: a byte token's piece must be <0xNN>", i);
	} else {
		type = bv >= 0 ? MU_TOKEN_BYTE : MU_TOKEN_NORMAL;
	}
	t->type[i] = type;

	if (t->kind == MU_TOKENIZER_BPE && type != MU_TOKEN_CONTROL && type != MU_TOKEN_USER_DEFINED) {
		long raw = tok_bpe_unbyte(bytes, len, blob + *blob_used, s->text_bytes - *blob_used);
		if (raw >= 0) {
			bytes = blob + *blob_used;
			len = (size_t)raw;
			*blob_used += len;
		} else if (type_indexed(t, type)) {
			return mu_errf(err, MU_ERR_FORMAT, "token %u: piece is not a GPT-2 byte-level string", i);
		}
		/* an unknown or unused token outside the alphabet keeps its text */
	}
	t->piece[i] = bytes;
	t->piece_len[i] = (uint32_t)len;
	if (t->piece_len[i] > t->max_piece_len)
		t->max_piece_len = t->piece_len[i];

	if (t->kind == MU_TOKENIZER_SPM) {
		float sc = gguf_arr_f32(s->scores, i);
		if (sc != sc)
			return mu_errf(err, MU_ERR_FORMAT, "token %u: score is NaN", i);
		t->score[i] = sc;
		if (type == MU_TOKEN_BYTE) {
			if (t->byte_token[bv] >= 0)
				return mu_errf(err, MU_ERR_FORMAT, "tokens %d and %u are both the byte token <0x%02X>",
					       t->byte_token[bv], i, (unsigned)bv);
			t->byte_token[bv] = (int32_t)i;
		}
	}
	int32_t id = (int32_t)i;
	if (type_indexed(t, type) && len > 0 && id != t->bos && id != t->eos && id != t->unk) {
		t->sorted[t->n_sorted++] = i;
		if (t->kind == MU_TOKENIZER_BPE && len == 1)
			t->byte_token[bytes[0]] = id; /* a second one is caught as a duplicate piece */
	}
	if ((type == MU_TOKEN_CONTROL || type == MU_TOKEN_USER_DEFINED) && len > 0) {
		if (t->n_special >= s->n_special)
			return mu_errf(err, MU_ERR_INTERNAL, "token %u: more special tokens than counted", i);
		t->special[t->n_special++] = i;
	}
	return MU_OK;
}

/* Sorts the special pieces, refuses duplicates, builds the first-byte index. */
static enum mu_err load_specials(struct mu_tokenizer *t, struct mu_error *err)
{
	tok_sort_ids(t, NULL, t->special, t->n_special);
	for (uint32_t k = 1; k < t->n_special; k++) {
		uint32_t x = t->special[k - 1], y = t->special[k];
		if (tok_piece_cmp(t->piece[x], t->piece_len[x], t->piece[y], t->piece_len[y]) == 0)
			return mu_errf(err, MU_ERR_FORMAT, "special tokens %u and %u have the same text", x, y);
	}
	uint32_t k = 0;
	for (unsigned b = 0; b <= 256; b++) {
		while (k < t->n_special && t->piece[t->special[k]][0] < b)
			k++;
		t->special_first[b] = k;
	}
	return MU_OK;
}

/* EOS and the control or user-defined tokens named like an end of turn. Ordinary pieces are
 * left out: Qwen's vocabulary has "</s>" as plain text, which must not stop generation. */
static void load_eog(struct mu_tokenizer *t)
{
	static const char *const names[] = {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>",
					    "<|im_end|>", "<|endoftext|>", "</s>"};
	int32_t cand[1 + sizeof names / sizeof names[0]];
	size_t nc = 0;
	cand[nc++] = t->eos;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		cand[nc++] = tok_find_special(t, (const uint8_t *)names[i], strlen(names[i]));
	for (size_t i = 0; i < nc; i++) {
		int32_t id = cand[i];
		if (id < 0 || mu_tokenizer_is_eog(t, id))
			continue;
		/* insertion keeps the list ascending */
		uint32_t k = t->n_eog++;
		for (; k > 0 && t->eog[k - 1] > id; k--)
			t->eog[k] = t->eog[k - 1];
		t->eog[k] = id;
	}
}

enum mu_err mu_tokenizer_init(struct mu_tokenizer *out, const struct gguf *g, void *mem, size_t len,
			      struct mu_error *err)
{
	struct vocab_src s;
	struct mu_tokenizer t;
	struct mu_arena a;
	struct gguf_str_iter it;
	uint8_t *blob;
	size_t blob_used = 0;
	enum mu_err rc;

	memset(&t, 0, sizeof t);
	if ((rc = vocab_src_get(g, &s, err)) || (rc = load_settings(&t, g, &s, err)))
		return rc;
	if (mem == NULL)
		return mu_errf(err, MU_ERR_ARG, "tokenizer: no memory given");
	mu_arena_init(&a, mem, len);
	if (!vocab_layout(&t, &a, &s, &blob))
		return mu_errf(err, MU_ERR_NOMEM, "tokenizer: %zu bytes given, mu_tokenizer_mem_size asks for more",
			       len);
	for (int b = 0; b < 256; b++)
		t.byte_token[b] = -1;

	gguf_str_iter_init(&it, s.tokens);
	for (uint32_t i = 0; i < s.n; i++) {
		struct gguf_str p;
		if (!gguf_str_iter_next(&it, &p))
			return mu_errf(err, MU_ERR_INTERNAL, "tokenizer.ggml.tokens: ended after %u of %u", i, s.n);
		if ((rc = load_token(&t, &s, i, p, blob, &blob_used, err)))
			return rc;
	}
	if (gguf_str_iter_next(&it, &(struct gguf_str){0}))
		return mu_errf(err, MU_ERR_INTERNAL, "tokenizer.ggml.tokens: more than %u entries", s.n);

	/* sorted_prefix first holds each id's prefix for the sort, then each position's */
	for (uint32_t i = 0; i < s.n; i++)
		t.sorted_prefix[i] = tok_piece_prefix(t.piece[i], t.piece_len[i]);
	tok_sort_ids(&t, t.sorted_prefix, t.sorted, t.n_sorted);
	for (uint32_t k = 0; k < t.n_sorted; k++)
		t.sorted_prefix[k] = tok_piece_prefix(t.piece[t.sorted[k]], t.piece_len[t.sorted[k]]);
	for (uint32_t k = 1; k < t.n_sorted; k++) {
		uint32_t x = t.sorted[k - 1], y = t.sorted[k];
		if (tok_piece_cmp(t.piece[x], t.piece_len[x], t.piece[y], t.piece_len[y]) == 0)
			return mu_errf(err, MU_ERR_FORMAT, "tokens %u and %u have the same piece", x, y);
	}
	tok_build_hash(&t);
	t.has_byte_fallback = 1;
	for (int b = 0; b < 256; b++)
		if (t.byte_token[b] < 0) {
			if (t.kind == MU_TOKENIZER_BPE)
				return mu_errf(err, MU_ERR_FORMAT,
					       "byte-level vocabulary has no token for byte 0x%02x (every byte needs one)", b);
			t.has_byte_fallback = 0;
		}
	if (t.kind == MU_TOKENIZER_BPE) {
		t.n_merges = s.n_merges;
		if ((rc = tok_bpe_load_merges(&t, s.merges, err)))
			return rc;
	}
	if ((rc = load_specials(&t, err)))
		return rc;
	load_eog(&t);
	*out = t;
	return MU_OK;
}

/* ---- encoding ---- */

size_t mu_tokenizer_scratch_size(size_t text_len)
{
	if (text_len > TOK_MAX_TEXT)
		return SIZE_MAX;
	size_t spm = tok_spm_scratch_size(text_len), bpe = tok_bpe_scratch_size(text_len);
	return spm > bpe ? spm : bpe;
}

enum mu_err tok_emit(struct tok_out *o, int32_t id, struct mu_error *err)
{
	if (o->n >= o->max)
		return mu_errf(err, MU_ERR_RANGE, "tokenizer: the text needs more than %zu tokens", o->max);
	o->ids[o->n++] = id;
	return MU_OK;
}

/* ---- special tokens and the entry point ---- */

/* One stretch of plain text; its scratch is given back. */
static enum mu_err encode_text(const struct mu_tokenizer *t, const uint8_t *p, size_t len, struct tok_out *o,
			       struct mu_arena *scratch, struct mu_error *err)
{
	size_t used = scratch->used;
	enum mu_err rc = t->kind == MU_TOKENIZER_BPE ? tok_bpe_encode(t, p, len, o, scratch, err)
						     : tok_spm_encode(t, p, len, o, scratch, err);
	scratch->used = used;
	return rc;
}

/* The control or user-defined token with the longest piece that starts p[0..n), or -1. The
 * candidates sharing the first d bytes with p are a range of the sorted list; at each depth
 * the one of length exactly d sorts first, and two binary searches narrow the range by byte
 * d. Cost: O(longest piece * log(number of specials)), and a text byte that starts no special
 * piece costs one table lookup. */
static int32_t special_match(const struct mu_tokenizer *t, const uint8_t *p, size_t n, size_t *match_len)
{
	uint32_t lo = t->special_first[p[0]], hi = t->special_first[p[0] + 1];
	int32_t best = -1;
	for (size_t d = 1; lo < hi; d++) {
		if (t->piece_len[t->special[lo]] == d) {
			best = (int32_t)t->special[lo];
			*match_len = d;
			lo++;
		}
		if (lo >= hi || d >= n)
			break;
		uint8_t c = p[d];
		uint32_t a = lo, b = hi;
		while (a < b) {
			uint32_t mid = a + (b - a) / 2;
			if (t->piece[t->special[mid]][d] < c)
				a = mid + 1;
			else
				b = mid;
		}
		lo = a;
		b = hi;
		while (a < b) {
			uint32_t mid = a + (b - a) / 2;
			if (t->piece[t->special[mid]][d] <= c)
				a = mid + 1;
			else
				b = mid;
		}
		hi = a;
	}
	return best;
}

static enum mu_err encode_specials(const struct mu_tokenizer *t, const uint8_t *text, size_t len, struct tok_out *o,
				   struct mu_arena *scratch, struct mu_error *err)
{
	size_t start = 0, i = 0, ml = 0;
	enum mu_err rc;
	while (i < len) {
		uint8_t b = text[i];
		int32_t id = -1;
		if (t->special_first[b] != t->special_first[b + 1])
			id = special_match(t, text + i, len - i, &ml);
		if (id < 0) {
			i++;
			continue;
		}
		if (i > start && (rc = encode_text(t, text + start, i - start, o, scratch, err)))
			return rc;
		if ((rc = tok_emit(o, id, err)))
			return rc;
		i += ml;
		start = i;
	}
	return start < len ? encode_text(t, text + start, len - start, o, scratch, err) : MU_OK;
}

enum mu_err mu_tokenizer_encode(const struct mu_tokenizer *t, const char *text, size_t text_len,
				unsigned flags, int32_t *ids, size_t max_ids, size_t *n_ids,
				struct mu_arena *scratch, struct mu_error *err)
{
	struct tok_out o = {ids, max_ids, 0};
	size_t used = scratch->used;
	enum mu_err rc;

	*n_ids = 0;
	if (text_len > TOK_MAX_TEXT)
		return mu_errf(err, MU_ERR_RANGE, "tokenizer: text of %zu bytes, the limit is %zu", text_len,
			       TOK_MAX_TEXT);
	if (text == NULL && text_len)
		return mu_errf(err, MU_ERR_ARG, "tokenizer: no text");
	if ((flags & MU_TOKENIZER_ADD_SPECIAL) && t->add_bos && (rc = tok_emit(&o, t->bos, err)))
		return rc;
	if (text_len) {
		const uint8_t *p = (const uint8_t *)text;
		if (flags & MU_TOKENIZER_PARSE_SPECIAL)
			rc = encode_specials(t, p, text_len, &o, scratch, err);
		else
			rc = encode_text(t, p, text_len, &o, scratch, err);
		scratch->used = used;
		if (rc)
			return rc;
	}
	if ((flags & MU_TOKENIZER_ADD_SPECIAL) && t->add_eos && (rc = tok_emit(&o, t->eos, err)))
		return rc;
	*n_ids = o.n;
	return MU_OK;
}
