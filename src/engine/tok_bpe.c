/* tok_bpe.c — byte-level BPE: GPT-2's byte alphabet, the merge table, and the merge loop; the
 * format and the algorithm are described in tokenizer.h. */
#include <stdint.h>
#include <string.h>

#include "base/limits.h"
#include "engine/pretok.h"
#include "engine/tok_internal.h"

/* ---- GPT-2's byte alphabet ----
 * bytes_to_unicode: the printable Latin-1 bytes '!'..'~', 0xa1..0xac and 0xae..0xff stand for
 * themselves; the other 68 bytes (0x00..0x20, 0x7f..0xa0, 0xad), in increasing order, stand
 * for U+0100..U+0143. So a space is "Ġ" (U+0120) and a newline "Ċ" (U+010A). */

static int byte_of_cp(uint32_t cp)
{
	if (cp < 0x100) {
		int self = (cp >= 0x21 && cp <= 0x7e) || (cp >= 0xa1 && cp <= 0xac) || cp >= 0xae;
		return self ? (int)cp : -1;
	}
	uint32_t k = cp - 0x100; /* index among the 68 remapped bytes */
	if (k < 33)
		return (int)k;
	if (k < 67)
		return (int)(0x7f + k - 33);
	if (k == 67)
		return 0xad;
	return -1;
}

long tok_bpe_unbyte(const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		if (p[i] < 0x80) {
			cp = p[i++];
		} else if (p[i] >= 0xc2 && p[i] <= 0xdf && i + 1 < n && (p[i + 1] & 0xc0) == 0x80) {
			/* the alphabet is below U+0800: two-byte characters at most */
			cp = (uint32_t)(p[i] & 0x1f) << 6 | (uint32_t)(p[i + 1] & 0x3f);
			i += 2;
		} else {
			return -1;
		}
		int b = byte_of_cp(cp);
		if (b < 0 || o >= cap)
			return -1;
		out[o++] = (uint8_t)b;
	}
	return (long)o;
}

/* ---- the merge table ---- */

static int merge_before(const void *ctx, const void *pa, const void *pb)
{
	const struct mu_bpe_merge *a = pa, *b = pb;
	(void)ctx;
	return a->left < b->left || (a->left == b->left && a->right < b->right);
}

enum mu_err tok_bpe_load_merges(struct mu_tokenizer *t, const struct gguf_kv *merges, struct mu_error *err)
{
	/* both halves, raw, one after the other: each at most max_piece_len bytes */
	uint8_t ab[2 * MU_MAX_TOKEN_BYTES];
	struct gguf_str_iter it;
	uint32_t n = t->n_merges;

	gguf_str_iter_init(&it, merges);
	for (uint32_t r = 0; r < n; r++) {
		struct gguf_str s;
		if (!gguf_str_iter_next(&it, &s))
			return mu_errf(err, MU_ERR_INTERNAL, "tokenizer.ggml.merges: ended after %u of %u", r, n);
		const uint8_t *p = (const uint8_t *)s.ptr;
		size_t len = (size_t)s.len, sp = len, spaces = 0;
		for (size_t i = 0; i < len; i++)
			if (p[i] == ' ') {
				spaces++;
				sp = i;
			}
		if (spaces != 1 || sp == 0 || sp + 1 == len)
			return mu_errf(err, MU_ERR_FORMAT, "merge %u: not two byte-level pieces separated by one space",
				       r);
		long la = tok_bpe_unbyte(p, sp, ab, t->max_piece_len);
		long lb = la < 0 ? -1 : tok_bpe_unbyte(p + sp + 1, len - sp - 1, ab + la, t->max_piece_len);
		if (la < 0 || lb < 0)
			return mu_errf(err, MU_ERR_FORMAT, "merge %u: a side is not a byte-level piece of the vocabulary",
				       r);
		int32_t a = tok_find_piece(t, ab, (size_t)la);
		int32_t b = tok_find_piece(t, ab + la, (size_t)lb);
		int32_t c = tok_find_piece(t, ab, (size_t)(la + lb));
		if (a < 0 || b < 0)
			return mu_errf(err, MU_ERR_FORMAT, "merge %u: its %s side is not a token", r, a < 0 ? "left" : "right");
		if (c < 0)
			return mu_errf(err, MU_ERR_FORMAT, "merge %u: the merged piece is not a token", r);
		t->merge[r] = (struct mu_bpe_merge){(uint32_t)a, (uint32_t)b, r, (uint32_t)c};
	}
	if (gguf_str_iter_next(&it, &(struct gguf_str){0}))
		return mu_errf(err, MU_ERR_INTERNAL, "tokenizer.ggml.merges: more than %u entries", n);

	tok_sort(t->merge, n, sizeof *t->merge, merge_before, NULL);
	for (uint32_t i = 1; i < n; i++)
		if (t->merge[i].left == t->merge[i - 1].left && t->merge[i].right == t->merge[i - 1].right) {
			uint32_t r1 = t->merge[i - 1].rank, r2 = t->merge[i].rank;
			return mu_errf(err, MU_ERR_FORMAT, "merges %u and %u are the same pair", r1 < r2 ? r1 : r2,
				       r1 < r2 ? r2 : r1);
		}
	/* merge_start[a] = the first merge whose left is >= a */
	uint32_t k = 0;
	for (uint32_t a = 0; a <= t->n_vocab; a++) {
		while (k < n && t->merge[k].left < a)
			k++;
		t->merge_start[a] = k;
	}
	return MU_OK;
}

/* Rank and result of merging tokens a and b, or 0 when they do not merge. */
static int pair_find(const struct mu_tokenizer *t, int32_t a, int32_t b, uint32_t *rank, int32_t *result)
{
	uint32_t lo = t->merge_start[a], hi = t->merge_start[a + 1];
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint32_t r = t->merge[mid].right;
		if (r == (uint32_t)b) {
			*rank = t->merge[mid].rank;
			*result = (int32_t)t->merge[mid].result;
			return 1;
		}
		if (r < (uint32_t)b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* ---- the merge loop ----
 * Symbols form a doubly linked list; each one that has a merge with its right neighbour sits in
 * a binary heap keyed by (rank, position) and knows its heap slot, so a merge updates the two
 * affected pairs in O(log n) and no stale entries pile up. The key is stored in the heap
 * itself so that sifting compares neighbouring memory only. */

#define NO_SLOT UINT32_MAX

struct bsym {
	int32_t id;
	int32_t prev, next; /* -1 at the ends */
	int32_t result;     /* the token the merge with next makes, while in the heap */
	uint32_t slot;      /* in the heap, or NO_SLOT */
};

struct bpe_work {
	struct bsym *sym;
	uint64_t *heap; /* rank << 32 | symbol index: the smallest is the next merge */
	uint32_t n_heap;
};

static void heap_set(struct bpe_work *w, uint32_t slot, uint64_t key)
{
	w->heap[slot] = key;
	w->sym[(uint32_t)key].slot = slot;
}

static void heap_up(struct bpe_work *w, uint32_t slot)
{
	uint64_t key = w->heap[slot];
	while (slot > 0) {
		uint32_t parent = (slot - 1) / 2;
		if (w->heap[parent] <= key)
			break;
		heap_set(w, slot, w->heap[parent]);
		slot = parent;
	}
	heap_set(w, slot, key);
}

static void heap_down(struct bpe_work *w, uint32_t slot)
{
	uint64_t key = w->heap[slot];
	for (;;) {
		uint32_t c = 2 * slot + 1;
		if (c >= w->n_heap)
			break;
		if (c + 1 < w->n_heap && w->heap[c + 1] < w->heap[c])
			c++;
		if (w->heap[c] >= key)
			break;
		heap_set(w, slot, w->heap[c]);
		slot = c;
	}
	heap_set(w, slot, key);
}

static void heap_remove(struct bpe_work *w, uint32_t i)
{
	uint32_t slot = w->sym[i].slot;
	w->sym[i].slot = NO_SLOT;
	uint64_t last = w->heap[--w->n_heap];
	if (slot == w->n_heap)
		return;
	heap_set(w, slot, last);
	heap_up(w, slot);
	heap_down(w, w->sym[(uint32_t)last].slot);
}

/* Recomputes symbol i's merge with its right neighbour and files it in the heap. */
static void pair_update(const struct mu_tokenizer *t, struct bpe_work *w, uint32_t i)
{
	struct bsym *s = &w->sym[i];
	uint32_t rank;
	if (s->next < 0 || !pair_find(t, s->id, w->sym[s->next].id, &rank, &s->result)) {
		if (s->slot != NO_SLOT)
			heap_remove(w, i);
		return;
	}
	uint64_t key = (uint64_t)rank << 32 | i;
	if (s->slot == NO_SLOT) {
		heap_set(w, w->n_heap++, key);
		heap_up(w, s->slot);
	} else {
		uint32_t slot = s->slot;
		uint64_t old = w->heap[slot];
		w->heap[slot] = key;
		if (key < old)
			heap_up(w, slot);
		else
			heap_down(w, slot);
	}
}

/* Encodes one pre-token. */
static enum mu_err bpe_word(const struct mu_tokenizer *t, const uint8_t *p, size_t len, struct bpe_work *w,
			    struct tok_out *o, struct mu_error *err)
{
	if (len == 1)
		return tok_emit(o, t->byte_token[p[0]], err);
	if (t->ignore_merges && len <= t->max_piece_len) {
		int32_t id = tok_find_piece(t, p, len);
		if (id >= 0)
			return tok_emit(o, id, err);
	}
	struct bsym *s = w->sym;
	for (size_t i = 0; i < len; i++)
		s[i] = (struct bsym){t->byte_token[p[i]], (int32_t)i - 1, i + 1 < len ? (int32_t)i + 1 : -1, -1, NO_SLOT};
	/* every pair first, then one heapify: O(n) */
	w->n_heap = 0;
	for (size_t i = 0; i + 1 < len; i++) {
		uint32_t rank;
		if (pair_find(t, s[i].id, s[i + 1].id, &rank, &s[i].result))
			heap_set(w, w->n_heap++, (uint64_t)rank << 32 | i);
	}
	for (uint32_t k = w->n_heap / 2; k-- > 0;)
		heap_down(w, k);
	while (w->n_heap) {
		uint32_t i = (uint32_t)w->heap[0];
		int32_t j = s[i].next;
		s[i].id = s[i].result;
		if (s[j].slot != NO_SLOT)
			heap_remove(w, (uint32_t)j);
		s[i].next = s[j].next;
		if (s[j].next >= 0)
			s[s[j].next].prev = (int32_t)i;
		pair_update(t, w, i);
		if (s[i].prev >= 0)
			pair_update(t, w, (uint32_t)s[i].prev);
	}
	for (int32_t i = 0; i >= 0; i = s[i].next) {
		enum mu_err rc = tok_emit(o, s[i].id, err);
		if (rc)
			return rc;
	}
	return MU_OK;
}

/* The normalized text (at most 3 bytes per byte), then one symbol and one heap slot per byte
 * of it; NFC's own scratch is given back before the symbols are taken. */
size_t tok_bpe_scratch_size(size_t len)
{
	size_t norm = 3 * len + 16, syms = (3 * len + 1) * (sizeof(struct bsym) + sizeof(uint64_t)) + 32;
	size_t nfc = mu_nfc_scratch_size(len);
	return norm + (nfc > syms ? nfc : syms);
}

enum mu_err tok_bpe_encode(const struct mu_tokenizer *t, const uint8_t *text, size_t len, struct tok_out *o,
			   struct mu_arena *scratch, struct mu_error *err)
{
	const uint8_t *s = text;
	size_t m = len;
	enum mu_err rc;

	if (t->nfc) {
		uint8_t *norm = mu_arena_alloc(scratch, 3 * len, 1);
		if (!norm)
			return mu_errf(err, MU_ERR_NOMEM, "tokenizer: scratch too small for a %zu-byte text "
				       "(mu_tokenizer_scratch_size says how much)", len);
		if ((rc = mu_nfc(text, len, norm, 3 * len, &m, scratch, err)))
			return rc;
		s = norm;
	}
	struct bpe_work w;
	w.sym = mu_arena_alloc(scratch, m * sizeof *w.sym, _Alignof(struct bsym));
	w.heap = mu_arena_alloc(scratch, m * sizeof *w.heap, _Alignof(uint64_t));
	w.n_heap = 0;
	if (!w.sym || !w.heap)
		return mu_errf(err, MU_ERR_NOMEM, "tokenizer: scratch too small for a %zu-byte text "
			       "(mu_tokenizer_scratch_size says how much)", len);
	for (size_t pos = 0; pos < m;) {
		size_t k = mu_pretok_next(t->pre, s, m, pos);
		if ((rc = bpe_word(t, s + pos, k, &w, o, err)))
			return rc;
		pos += k;
	}
	return MU_OK;
}
