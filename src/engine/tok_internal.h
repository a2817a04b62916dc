/* tok_internal.h — what the tokenizer's source files share among themselves. Not an API.
 *   tokenizer.c   vocabulary loading, special tokens, the encoder's entry point
 *   tok_index.c   sorting, the piece hash table, lookups by text
 *   tok_spm.c     SentencePiece merging
 *   tok_bpe.c     byte-level BPE: the byte alphabet, merge table and merge loop
 *   tok_decode.c  decoding and the streaming decoder
 *   pretok.c      pre-tokenizers, character classes, NFC */
#ifndef MU_ENGINE_TOK_INTERNAL_H
#define MU_ENGINE_TOK_INTERNAL_H

#include "base/limits.h"
#include "engine/tokenizer.h"

/* Texts are capped so that every symbol index fits in 32 bits even after NFC triples a text. */
#define TOK_MAX_TEXT MU_MAX_TEXT_BYTES

/* Where encoded ids go. */
struct tok_out {
	int32_t *ids;
	size_t max, n;
};

enum mu_err tok_emit(struct tok_out *o, int32_t id, struct mu_error *err);

/* Id of the piece among those merging can make (t->sorted), or -1. */
int32_t tok_find_piece(const struct mu_tokenizer *t, const uint8_t *piece, size_t len);

/* Lexicographic byte order, a proper prefix first. */
int tok_piece_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn);

/* The first four bytes of a piece, big-endian, zero-padded: ordered as tok_piece_cmp orders. */
uint32_t tok_piece_prefix(const uint8_t *p, size_t n);

/* Sorts ids by piece (then id); pfx, when not NULL, holds tok_piece_prefix of each id. */
void tok_sort_ids(const struct mu_tokenizer *t, const uint32_t *pfx, uint32_t *v, size_t n);

/* Fills t->hash from t->sorted (sorted, without duplicates), counting t->hash_overflow. */
void tok_build_hash(struct mu_tokenizer *t);

/* Id of the control or user-defined token with exactly this piece, or -1. */
int32_t tok_find_special(const struct mu_tokenizer *t, const uint8_t *piece, size_t len);

/* Sorts n elements of size bytes (at most 32) into the order before() defines, which must be
 * total; O(n log n) worst case, no extra memory. */
typedef int (*tok_before_fn)(const void *ctx, const void *a, const void *b);
void tok_sort(void *base, size_t n, size_t size, tok_before_fn before, const void *ctx);

/* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space. */
extern const uint8_t tok_spm_space[3];

/* The byte value of a "<0xNN>" piece, or -1 when the piece has another form. */
int tok_byte_piece_value(const uint8_t *p, size_t n);

/* ---- SentencePiece (tok_spm.c) ---- */

size_t tok_spm_scratch_size(size_t len);

/* Encodes text[0..len) (no special tokens in it), with the dummy prefix when the vocabulary
 * asks for it. */
enum mu_err tok_spm_encode(const struct mu_tokenizer *t, const uint8_t *text, size_t len, struct tok_out *o,
			   struct mu_arena *scratch, struct mu_error *err);

/* ---- byte-level BPE (tok_bpe.c) ---- */

/* Raw bytes of GPT-2 byte-level string p[0..n) (valid UTF-8) into out[0..cap): their count,
 * or -1 when a character is not in the byte-level alphabet or cap is too small. */
long tok_bpe_unbyte(const uint8_t *p, size_t n, uint8_t *out, size_t cap);

/* Reads tokenizer.ggml.merges (rank = index) into t->merge / t->merge_start, which have room
 * for n_merges and n_vocab + 1 entries; needs t's piece index and byte tokens. */
enum mu_err tok_bpe_load_merges(struct mu_tokenizer *t, const struct gguf_kv *merges, struct mu_error *err);

/* Scratch tok_bpe_encode needs for len bytes of text. */
size_t tok_bpe_scratch_size(size_t len);

/* Encodes text[0..len) (no special tokens in it) with t's normalizer, pre-tokenizer and merges. */
enum mu_err tok_bpe_encode(const struct mu_tokenizer *t, const uint8_t *text, size_t len, struct tok_out *o,
			   struct mu_arena *scratch, struct mu_error *err);

#endif
