/* tok_spm.c — SentencePiece BPE encoding; the algorithm is described in tokenizer.h. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "engine/pretok.h"
#include "engine/tok_internal.h"

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
	int32_t id = tok_find_piece(e->t, e->text + l->start, len);
	if (id < 0)
		return;
	heap_push(&e->heap, (struct bigram){bigram_key(e->t->score[id], (uint32_t)left), (uint32_t)right, len});
}

/* Worst case per input byte: one symbol, three escaped bytes, three queued bigrams (one at
 * the start, at most two per merge, and there are fewer merges than symbols). */
size_t tok_spm_scratch_size(size_t text_len)
{
	size_t n_sym = text_len + 1;
	return 3 * n_sym + n_sym * sizeof(struct sym) + 3 * n_sym * sizeof(struct bigram) + 64;
}

/* Ids of one final symbol: its piece, else its bytes' byte tokens, else UNK. */
static enum mu_err emit_symbol(const struct mu_tokenizer *t, const uint8_t *p, const struct sym *s,
			       struct tok_out *o, struct mu_error *err)
{
	int32_t id = s->raw ? -1 : tok_find_piece(t, p, s->len);
	if (id >= 0)
		return tok_emit(o, id, err);
	if (!t->has_byte_fallback)
		return tok_emit(o, t->unk, err);
	for (uint32_t k = 0; k < s->len; k++) {
		enum mu_err rc = tok_emit(o, t->byte_token[p[k]], err);
		if (rc)
			return rc;
	}
	return MU_OK;
}

enum mu_err tok_spm_encode(const struct mu_tokenizer *t, const uint8_t *in, size_t in_len, struct tok_out *o,
			      struct mu_arena *scratch, struct mu_error *err)
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
		memcpy(text, tok_spm_space, 3);
		tl = 3;
	}
	for (size_t i = 0; i < in_len; i++) {
		if (in[i] == ' ') {
			memcpy(text + tl, tok_spm_space, 3);
			tl += 3;
		} else {
			text[tl++] = in[i];
		}
	}

	/* 2. one symbol per UTF-8 character (or invalid byte) */
	uint32_t ns = 0;
	for (size_t i = 0; i < tl;) {
		size_t l = mu_utf8_char_len(text + i, tl - i);
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
		enum mu_err rc = emit_symbol(t, text + sym[i].start, &sym[i], o, err);
		if (rc)
			return rc;
	}
	return MU_OK;
}
