/* tokenizer.c — SentencePiece BPE over a GGUF vocabulary; the format and the algorithm are
 * described in tokenizer.h. */
#include "engine/tokenizer.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "base/ckd.h"
#include "base/limits.h"

/* Symbol and heap indices are 32-bit, and an escaped text is at most 3 bytes per input byte
 * plus the prefix, so texts are capped well below 2^32 / 3. */
#define TOK_MAX_TEXT ((size_t)1 << 28)

/* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space. */
static const uint8_t spm_space[3] = {0xe2, 0x96, 0x81};

/* ---- UTF-8 ---- */

/* Length (1..4) of the valid UTF-8 character at p[0..n), or 0 when p does not start one:
 * overlong forms, surrogates, code points above U+10FFFF and truncated sequences are invalid. */
static size_t utf8_char_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	uint8_t lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong below U+0800 */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates U+D800..U+DFFF */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong below U+10000 */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

static int utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t l = utf8_char_len(p + i, n - i);
		if (l == 0)
			return 0;
		i += l;
	}
	return 1;
}

/* ---- vocabulary ---- */

static int hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The byte value of a "<0xNN>" piece, or -1 when the piece has another form. */
static int byte_piece_value(const uint8_t *p, size_t n)
{
	if (n != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>')
		return -1;
	int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
	if (hi < 0 || lo < 0)
		return -1;
	return hi * 16 + lo;
}

/* Lexicographic byte order, a proper prefix first. */
static int piece_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t m = an < bn ? an : bn;
	int c = m ? memcmp(a, b, m) : 0;
	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

static int id_less(const struct mu_tokenizer *t, uint32_t a, uint32_t b)
{
	int c = piece_cmp(t->piece[a], t->piece_len[a], t->piece[b], t->piece_len[b]);
	return c < 0 || (c == 0 && a < b);
}

/* Heapsort of ids by piece: O(n log n) worst case with no extra memory, and the order is total
 * (ties by id), so the result does not depend on the sort's stability. */
static void sift_down(const struct mu_tokenizer *t, uint32_t *v, size_t i, size_t n)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && id_less(t, v[c], v[c + 1]))
			c++;
		if (!id_less(t, v[i], v[c]))
			return;
		uint32_t tmp = v[i];
		v[i] = v[c];
		v[c] = tmp;
		i = c;
	}
}

static void sort_ids(const struct mu_tokenizer *t, uint32_t *v, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(t, v, i, n);
	for (size_t end = n; end > 1; end--) {
		uint32_t tmp = v[0];
		v[0] = v[end - 1];
		v[end - 1] = tmp;
		sift_down(t, v, 0, end - 1);
	}
}

/* The first four bytes of a piece, big-endian, zero-padded. Comparing prefixes orders pieces
 * the way piece_cmp does, except that equal prefixes need the full comparison; the binary
 * search reads these from one small array instead of following each piece pointer. */
static uint32_t piece_prefix(const uint8_t *p, size_t n)
{
	uint32_t v = 0;
	for (size_t i = 0; i < 4; i++)
		v = (v << 8) | (i < n ? p[i] : 0u);
	return v;
}

int32_t mu_tokenizer_find(const struct mu_tokenizer *t, const uint8_t *piece, size_t len)
{
	size_t lo = 0, hi = t->n_sorted;
	if (len == 0 || len > t->max_piece_len)
		return -1;
	uint32_t key = piece_prefix(piece, len);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t id = t->sorted[mid];
		int c;
		if (t->sorted_prefix[mid] != key)
			c = t->sorted_prefix[mid] < key ? -1 : 1;
		else
			c = piece_cmp(t->piece[id], t->piece_len[id], piece, len);
		if (c == 0)
			return (int32_t)id;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* The vocabulary arrays of g, checked for presence, element type and length. */
struct vocab_src {
	const struct gguf_kv *tokens, *scores, *types;
	uint32_t n;
};

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
	if (gguf_str_eq(model, "gpt2"))
		return mu_errf(err, MU_ERR_UNSUPPORTED,
			       "tokenizer.ggml.model \"gpt2\" (byte-level BPE) is not supported yet; "
			       "only \"llama\" (SentencePiece) vocabularies can be used");
	if (!gguf_str_eq(model, "llama"))
		return mu_errf(err, MU_ERR_UNSUPPORTED,
			       "tokenizer.ggml.model: unknown tokenizer model (%llu bytes); only \"llama\" "
			       "(SentencePiece) vocabularies can be used", (unsigned long long)model.len);

	rc = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &s->tokens, &found, err);
	if (rc)
		return rc;
	if (!found)
		return mu_errf(err, MU_ERR_FORMAT, "tokenizer.ggml.tokens missing");
	if (s->tokens->arr_len == 0 || s->tokens->arr_len > MU_MAX_VOCAB)
		return mu_errf(err, MU_ERR_RANGE, "tokenizer.ggml.tokens: %llu tokens, must be 1..%d",
			       (unsigned long long)s->tokens->arr_len, MU_MAX_VOCAB);
	s->n = (uint32_t)s->tokens->arr_len;

	rc = gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &s->scores, &found, err);
	if (rc)
		return rc;
	if (!found)
		return mu_errf(err, MU_ERR_FORMAT,
			       "tokenizer.ggml.scores missing (a SentencePiece vocabulary needs its merge scores)");
	if (s->scores->arr_len != s->n)
		return mu_errf(err, MU_ERR_FORMAT, "tokenizer.ggml.scores has %llu entries, tokens has %u",
			       (unsigned long long)s->scores->arr_len, s->n);

	rc = gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &s->types, &found, err);
	if (rc)
		return rc;
	if (!found)
		s->types = NULL;
	else if (s->types->arr_len != s->n)
		return mu_errf(err, MU_ERR_FORMAT, "tokenizer.ggml.token_type has %llu entries, tokens has %u",
			       (unsigned long long)s->types->arr_len, s->n);
	return MU_OK;
}

/* Carves the tables out of a (the layout mu_tokenizer_mem_size counts). */
static int vocab_layout(struct mu_tokenizer *t, struct mu_arena *a, uint32_t n)
{
	t->piece = mu_arena_alloc(a, (size_t)n * sizeof *t->piece, _Alignof(const uint8_t *));
	t->piece_len = mu_arena_alloc(a, (size_t)n * sizeof *t->piece_len, _Alignof(uint32_t));
	t->score = mu_arena_alloc(a, (size_t)n * sizeof *t->score, _Alignof(float));
	t->sorted = mu_arena_alloc(a, (size_t)n * sizeof *t->sorted, _Alignof(uint32_t));
	t->sorted_prefix = mu_arena_alloc(a, (size_t)n * sizeof *t->sorted_prefix, _Alignof(uint32_t));
	t->type = mu_arena_alloc(a, (size_t)n, 1);
	return mu_arena_counting(a) ||
	       (t->piece && t->piece_len && t->score && t->sorted && t->sorted_prefix && t->type);
}

enum mu_err mu_tokenizer_mem_size(const struct gguf *g, size_t *size, struct mu_error *err)
{
	struct vocab_src s;
	struct mu_tokenizer t;
	struct mu_arena a;
	enum mu_err rc = vocab_src_get(g, &s, err);
	if (rc)
		return rc;
	mu_arena_init(&a, NULL, 0);
	vocab_layout(&t, &a, s.n);
	/* slack for aligning the caller's block */
	*size = a.used + 16;
	return MU_OK;
}

static enum mu_err get_id(const struct gguf *g, const char *key, uint32_t def, uint32_t n,
			  int32_t *out, struct mu_error *err)
{
	uint32_t v = def;
	enum mu_err rc = gguf_get_u32(g, key, &v, NULL, err);
	if (rc)
		return rc;
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

static int type_indexed(uint8_t type)
{
	return type == MU_TOKEN_NORMAL || type == MU_TOKEN_UNDEFINED || type == MU_TOKEN_USER_DEFINED;
}

enum mu_err mu_tokenizer_init(struct mu_tokenizer *out, const struct gguf *g, void *mem, size_t len,
			      struct mu_error *err)
{
	struct vocab_src s;
	struct mu_tokenizer t;
	struct mu_arena a;
	struct gguf_str_iter it;
	enum mu_err rc;

	memset(&t, 0, sizeof t);
	rc = vocab_src_get(g, &s, err);
	if (rc)
		return rc;
	t.kind = MU_TOKENIZER_SPM;
	t.n_vocab = s.n;
	if ((rc = get_id(g, "tokenizer.ggml.bos_token_id", 1, s.n, &t.bos, err)) ||
	    (rc = get_id(g, "tokenizer.ggml.eos_token_id", 2, s.n, &t.eos, err)) ||
	    (rc = get_id(g, "tokenizer.ggml.unknown_token_id", 0, s.n, &t.unk, err)) ||
	    (rc = get_flag(g, "tokenizer.ggml.add_bos_token", 1, &t.add_bos, err)) ||
	    (rc = get_flag(g, "tokenizer.ggml.add_eos_token", 0, &t.add_eos, err)) ||
	    (rc = get_flag(g, "tokenizer.ggml.add_space_prefix", 1, &t.add_space_prefix, err)))
		return rc;

	if (mem == NULL)
		return mu_errf(err, MU_ERR_ARG, "tokenizer: no memory given");
	mu_arena_init(&a, mem, len);
	if (!vocab_layout(&t, &a, s.n))
		return mu_errf(err, MU_ERR_NOMEM, "tokenizer: %zu bytes given, mu_tokenizer_mem_size asks for more",
			       len);

	for (int b = 0; b < 256; b++)
		t.byte_token[b] = -1;

	gguf_str_iter_init(&it, s.tokens);
	for (uint32_t i = 0; i < s.n; i++) {
		struct gguf_str p;
		if (!gguf_str_iter_next(&it, &p))
			return mu_errf(err, MU_ERR_INTERNAL, "tokenizer.ggml.tokens: ended after %u of %u", i, s.n);
		if (p.len > MU_MAX_TOKEN_BYTES)
			return mu_errf(err, MU_ERR_RANGE, "token %u: piece of %llu bytes, the limit is %d", i,
				       (unsigned long long)p.len, MU_MAX_TOKEN_BYTES);
		const uint8_t *bytes = (const uint8_t *)p.ptr;
		if (!utf8_valid(bytes, (size_t)p.len))
			return mu_errf(err, MU_ERR_FORMAT, "token %u: piece is not valid UTF-8", i);
		t.piece[i] = bytes;
		t.piece_len[i] = (uint32_t)p.len;
		if (t.piece_len[i] > t.max_piece_len)
			t.max_piece_len = t.piece_len[i];

		float sc = gguf_arr_f32(s.scores, i);
		if (sc != sc)
			return mu_errf(err, MU_ERR_FORMAT, "token %u: score is NaN", i);
		t.score[i] = sc;

		int bv = byte_piece_value(bytes, (size_t)p.len);
		uint8_t type;
		if (s.types) {
			int32_t ty = gguf_arr_i32(s.types, i);
			if (ty < MU_TOKEN_UNDEFINED || ty > MU_TOKEN_BYTE)
				return mu_errf(err, MU_ERR_FORMAT, "token %u: token_type %d is not one of 0..6", i, ty);
			type = (uint8_t)ty;
			if (type == MU_TOKEN_BYTE && bv < 0)
				return mu_errf(err, MU_ERR_FORMAT, "token %u: a byte token's piece must be <0xNN>", i);
		} else {
			type = bv >= 0 ? MU_TOKEN_BYTE : MU_TOKEN_NORMAL;
		}
		t.type[i] = type;
		if (type == MU_TOKEN_BYTE) {
			if (t.byte_token[bv] >= 0)
				return mu_errf(err, MU_ERR_FORMAT, "tokens %d and %u are both the byte token <0x%02X>",
					       t.byte_token[bv], i, (unsigned)bv);
			t.byte_token[bv] = (int32_t)i;
		}
		if (type_indexed(type) && p.len > 0 && (int32_t)i != t.bos && (int32_t)i != t.eos &&
		    (int32_t)i != t.unk)
			t.sorted[t.n_sorted++] = i;
	}
	if (gguf_str_iter_next(&it, &(struct gguf_str){0}))
		return mu_errf(err, MU_ERR_INTERNAL, "tokenizer.ggml.tokens: more than %u entries", s.n);

	sort_ids(&t, t.sorted, t.n_sorted);
	for (uint32_t k = 0; k < t.n_sorted; k++)
		t.sorted_prefix[k] = piece_prefix(t.piece[t.sorted[k]], t.piece_len[t.sorted[k]]);
	for (uint32_t k = 1; k < t.n_sorted; k++) {
		uint32_t x = t.sorted[k - 1], y = t.sorted[k];
		if (piece_cmp(t.piece[x], t.piece_len[x], t.piece[y], t.piece_len[y]) == 0)
			return mu_errf(err, MU_ERR_FORMAT, "tokens %u and %u have the same piece", x, y);
	}
	t.has_byte_fallback = 1;
	for (int b = 0; b < 256; b++)
		if (t.byte_token[b] < 0)
			t.has_byte_fallback = 0;

	*out = t;
	return MU_OK;
}

/* ---- encoding ---- */

struct sym {
	uint32_t start; /* into the escaped text */
	uint32_t len;   /* 0 once merged into its left neighbour */
	int32_t prev, next;
	uint32_t raw;   /* an invalid UTF-8 byte: never merges, always byte fallback */
};

/* A candidate merge. key orders the heap: the score, mapped to an unsigned integer with the
 * same order, above the bitwise complement of the left index, so a larger key is a higher
 * score and, for equal scores, a pair further left. */
struct bigram {
	uint64_t key;
	uint32_t right;
	uint32_t len; /* left.len + right.len when queued; stale entries no longer match */
};

static uint64_t bigram_key(float score, uint32_t left)
{
	uint32_t u;
	score += 0.0f; /* -0 becomes +0: they are equal scores */
	memcpy(&u, &score, sizeof u);
	u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
	return ((uint64_t)u << 32) | (uint32_t)~left;
}

static uint32_t bigram_left(const struct bigram *b) { return ~(uint32_t)b->key; }

static int bigram_before(const struct bigram *a, const struct bigram *b) { return a->key > b->key; }

struct bigram_heap {
	struct bigram *v;
	size_t n, cap;
};

static void heap_push(struct bigram_heap *h, struct bigram b)
{
	assert(h->n < h->cap);
	size_t i = h->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!bigram_before(&b, &h->v[p]))
			break;
		h->v[i] = h->v[p];
		i = p;
	}
	h->v[i] = b;
}

static struct bigram heap_pop(struct bigram_heap *h)
{
	struct bigram top = h->v[0];
	struct bigram last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && bigram_before(&h->v[c + 1], &h->v[c]))
			c++;
		if (!bigram_before(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

struct encoder {
	const struct mu_tokenizer *t;
	const uint8_t *text; /* escaped */
	struct sym *sym;
	struct bigram_heap heap;
};

static void try_bigram(struct encoder *e, int32_t left, int32_t right)
{
	if (left < 0 || right < 0)
		return;
	const struct sym *l = &e->sym[left], *r = &e->sym[right];
	if (l->raw || r->raw)
		return;
	uint32_t len = l->len + r->len;
	if (len > e->t->max_piece_len)
		return;
	int32_t id = mu_tokenizer_find(e->t, e->text + l->start, len);
	if (id < 0)
		return;
	heap_push(&e->heap, (struct bigram){bigram_key(e->t->score[id], (uint32_t)left), (uint32_t)right, len});
}

/* Worst case per input byte: one symbol, three escaped bytes, three queued bigrams (one at
 * the start, at most two per merge, and there are fewer merges than symbols). */
size_t mu_tokenizer_scratch_size(size_t text_len)
{
	if (text_len > TOK_MAX_TEXT)
		return SIZE_MAX;
	size_t n_sym = text_len + 1;
	return 3 * n_sym + n_sym * sizeof(struct sym) + 3 * n_sym * sizeof(struct bigram) + 64;
}

static enum mu_err emit(int32_t *ids, size_t max_ids, size_t *n, int32_t id, struct mu_error *err)
{
	if (*n >= max_ids)
		return mu_errf(err, MU_ERR_RANGE, "tokenizer: the text needs more than %zu tokens", max_ids);
	ids[(*n)++] = id;
	return MU_OK;
}

/* Ids of one final symbol: its piece, else its bytes' byte tokens, else UNK. */
static enum mu_err emit_symbol(const struct mu_tokenizer *t, const uint8_t *p, const struct sym *s,
			       int32_t *ids, size_t max_ids, size_t *n, struct mu_error *err)
{
	int32_t id = s->raw ? -1 : mu_tokenizer_find(t, p, s->len);
	if (id >= 0)
		return emit(ids, max_ids, n, id, err);
	if (!t->has_byte_fallback)
		return emit(ids, max_ids, n, t->unk, err);
	for (uint32_t k = 0; k < s->len; k++) {
		enum mu_err rc = emit(ids, max_ids, n, t->byte_token[p[k]], err);
		if (rc)
			return rc;
	}
	return MU_OK;
}

static enum mu_err encode_spm(const struct mu_tokenizer *t, const uint8_t *in, size_t in_len,
			      int32_t *ids, size_t max_ids, size_t *n, struct mu_arena *scratch,
			      struct mu_error *err)
{
	size_t n_sym_max = in_len + 1;
	uint8_t *text = mu_arena_alloc(scratch, 3 * n_sym_max, 1);
	struct sym *sym = mu_arena_alloc(scratch, n_sym_max * sizeof *sym, _Alignof(struct sym));
	struct bigram *heap = mu_arena_alloc(scratch, 3 * n_sym_max * sizeof *heap, _Alignof(struct bigram));
	if (!text || !sym || !heap)
		return mu_errf(err, MU_ERR_NOMEM, "tokenizer: scratch too small for a %zu-byte text "
			       "(mu_tokenizer_scratch_size says how much)", in_len);

	/* 1. escape spaces, add the dummy prefix */
	size_t tl = 0;
	if (t->add_space_prefix) {
		memcpy(text, spm_space, 3);
		tl = 3;
	}
	for (size_t i = 0; i < in_len; i++) {
		if (in[i] == ' ') {
			memcpy(text + tl, spm_space, 3);
			tl += 3;
		} else {
			text[tl++] = in[i];
		}
	}

	/* 2. one symbol per UTF-8 character (or invalid byte) */
	uint32_t ns = 0;
	for (size_t i = 0; i < tl;) {
		size_t l = utf8_char_len(text + i, tl - i);
		sym[ns] = (struct sym){(uint32_t)i, l ? (uint32_t)l : 1, (int32_t)ns - 1, (int32_t)ns + 1, l == 0};
		i += l ? l : 1;
		ns++;
	}
	if (ns == 0)
		return MU_OK;
	sym[ns - 1].next = -1;

	/* 3. merge the best adjacent pair until no pair is a piece */
	struct encoder e = {t, text, sym, {heap, 0, 3 * n_sym_max}};
	for (uint32_t i = 1; i < ns; i++)
		try_bigram(&e, (int32_t)i - 1, (int32_t)i);
	while (e.heap.n) {
		struct bigram b = heap_pop(&e.heap);
		uint32_t left = bigram_left(&b);
		struct sym *l = &sym[left], *r = &sym[b.right];
		/* stale: one side has merged with something else since it was queued */
		if (l->len == 0 || r->len == 0 || l->len + r->len != b.len || l->next != (int32_t)b.right)
			continue;
		l->len += r->len;
		r->len = 0;
		l->next = r->next;
		if (r->next >= 0)
			sym[r->next].prev = (int32_t)left;
		try_bigram(&e, l->prev, (int32_t)left);
		try_bigram(&e, (int32_t)left, l->next);
	}

	/* 4. ids */
	for (int32_t i = 0; i >= 0; i = sym[i].next) {
		enum mu_err rc = emit_symbol(t, text + sym[i].start, &sym[i], ids, max_ids, n, err);
		if (rc)
			return rc;
	}
	return MU_OK;
}

enum mu_err mu_tokenizer_encode(const struct mu_tokenizer *t, const char *text, size_t text_len,
				unsigned flags, int32_t *ids, size_t max_ids, size_t *n_ids,
				struct mu_arena *scratch, struct mu_error *err)
{
	size_t n = 0, used = scratch->used;
	enum mu_err rc;

	*n_ids = 0;
	if (text_len > TOK_MAX_TEXT)
		return mu_errf(err, MU_ERR_RANGE, "tokenizer: text of %zu bytes, the limit is %zu", text_len,
			       TOK_MAX_TEXT);
	if (text == NULL && text_len)
		return mu_errf(err, MU_ERR_ARG, "tokenizer: no text");
	if ((flags & MU_TOKENIZER_ADD_SPECIAL) && t->add_bos && (rc = emit(ids, max_ids, &n, t->bos, err)))
		return rc;
	if (text_len) {
		rc = encode_spm(t, (const uint8_t *)text, text_len, ids, max_ids, &n, scratch, err);
		scratch->used = used;
		if (rc)
			return rc;
	}
	if ((flags & MU_TOKENIZER_ADD_SPECIAL) && t->add_eos && (rc = emit(ids, max_ids, &n, t->eos, err)))
		return rc;
	*n_ids = n;
	return MU_OK;
}

/* ---- decoding ---- */

enum mu_err mu_tokenizer_decode_token(const struct mu_tokenizer *t, int32_t id, unsigned flags,
				      uint8_t *out, size_t cap, size_t *n, struct mu_error *err)
{
	*n = 0;
	if (id < 0 || (uint32_t)id >= t->n_vocab)
		return mu_errf(err, MU_ERR_ARG, "token id %d is outside the vocabulary of %u tokens", id,
			       t->n_vocab);
	uint8_t type = t->type[id];
	if (id == t->bos || id == t->eos || type == MU_TOKEN_CONTROL)
		return MU_OK;
	const uint8_t *p = t->piece[id];
	size_t len = t->piece_len[id], o = 0;
	if (type == MU_TOKEN_BYTE) {
		/* never stripped: llama2.c strips only a piece that starts with a space */
		if (cap < 1)
			return mu_errf(err, MU_ERR_RANGE, "tokenizer: output buffer full");
		out[0] = (uint8_t)byte_piece_value(p, len);
		*n = 1;
		return MU_OK;
	}
	int strip = (flags & MU_TOKENIZER_STRIP_SPACE) != 0;
	for (size_t i = 0; i < len;) {
		uint8_t c;
		if (len - i >= 3 && memcmp(p + i, spm_space, 3) == 0) {
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
		unsigned f = 0;
		size_t k;
		if ((flags & MU_TOKENIZER_STRIP_SPACE) && (i == 0 || ids[i - 1] == t->bos))
			f = MU_TOKENIZER_STRIP_SPACE;
		enum mu_err rc = mu_tokenizer_decode_token(t, ids[i], f, out + o, cap - o, &k, err);
		if (rc)
			return rc;
		o += k;
	}
	*n = o;
	return MU_OK;
}
