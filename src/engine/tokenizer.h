/* tokenizer.h — text <-> token ids for the vocabularies embedded in GGUF files.
 *
 * Supported: tokenizer.ggml.model == "llama", SentencePiece BPE with byte fallback (Llama 1/2,
 * TinyLlama, TinyStories). Byte-level BPE ("gpt2": Llama 3, Qwen) is refused with
 * MU_ERR_UNSUPPORTED for now; struct mu_tokenizer carries a kind so it can be added.
 *
 * GGUF keys read (all validated before the tokenizer is usable):
 *   tokenizer.ggml.model              string, "llama"
 *   tokenizer.ggml.tokens             string[n]   1 <= n <= MU_MAX_VOCAB; each piece valid
 *                                                 UTF-8 of at most MU_MAX_TOKEN_BYTES bytes
 *   tokenizer.ggml.scores             f32[n]      no NaN
 *   tokenizer.ggml.token_type         i32[n]      optional; values 0..6 (below)
 *   tokenizer.ggml.bos_token_id       default 1   must be < n
 *   tokenizer.ggml.eos_token_id       default 2   must be < n
 *   tokenizer.ggml.unknown_token_id   default 0   must be < n
 *   tokenizer.ggml.add_bos_token      default true
 *   tokenizer.ggml.add_eos_token      default false
 *   tokenizer.ggml.add_space_prefix   default true
 * Token types (llama.cpp's numbering): 0 undefined, 1 normal, 2 unknown, 3 control,
 * 4 user-defined, 5 unused, 6 byte. A byte token's piece is "<0xNN>" (two upper-case hex
 * digits); without token_type, pieces of that form are taken as byte tokens. Each byte value
 * may have at most one byte token. Pieces of normal, undefined and user-defined tokens, other
 * than BOS, EOS and UNK, are the ones text can turn into; they must be unique (control and
 * unused pieces never come out of text, as in SentencePiece).
 *
 * Encoding (SentencePiece BPE, as llama.cpp's SPM tokenizer and llama2.c do it):
 *   1. Each ' ' becomes U+2581 "▁"; when add_space_prefix is set and the text is not empty,
 *      one "▁" is prepended (the dummy prefix).
 *   2. The result is split into UTF-8 characters. A byte that does not start a valid UTF-8
 *      sequence (overlong, surrogate, > U+10FFFF, truncated) is a symbol of its own that never
 *      merges and always becomes its byte token.
 *   3. Repeatedly, of all adjacent symbol pairs whose concatenation is a piece, the pair whose
 *      piece has the highest score is merged; equal scores go to the leftmost pair. A binary
 *      heap of candidate pairs with lazy invalidation keeps this O(n log n).
 *   4. Each final symbol becomes its piece's id; a symbol that is not a piece becomes one byte
 *      token per byte ("<0xNN>") when the vocabulary has all 256 of them, otherwise UNK.
 *   With MU_TOKENIZER_ADD_SPECIAL, BOS is put first when add_bos is set and EOS last when
 *   add_eos is set.
 *
 * Decoding: a piece with each "▁" replaced by ' ' (UNK decodes to its piece, e.g. "<unk>");
 * a byte token is its byte; BOS, EOS and control tokens decode to nothing. The SentencePiece
 * dummy prefix is removed with MU_TOKENIZER_STRIP_SPACE (llama2.c: one leading space of a
 * piece that follows BOS). Decoding what encoding made gives the text back, byte for byte,
 * when the vocabulary has byte tokens and a "▁" piece, except that a literal U+2581 in the
 * text comes back as a space. Invalid UTF-8 comes back too, through the byte tokens.
 *
 * Memory: mu_tokenizer_mem_size() says how much the tokenizer needs for the vocabulary tables
 * (about 25 bytes per token); mu_tokenizer_init() takes that much from the caller. Pieces are
 * not copied: they point into the GGUF bytes, which must outlive the tokenizer. Encoding needs
 * scratch memory proportional to the text (mu_tokenizer_scratch_size()), taken from a caller's
 * arena and given back before returning. Nothing is allocated. A tokenizer is read-only after
 * init, so several threads may encode and decode with it at once (each with its own scratch).
 */
#ifndef MU_ENGINE_TOKENIZER_H
#define MU_ENGINE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "engine/gguf.h"

enum mu_tokenizer_kind {
	MU_TOKENIZER_SPM = 0, /* "llama": SentencePiece BPE with byte fallback */
};

enum mu_token_type {
	MU_TOKEN_UNDEFINED = 0,
	MU_TOKEN_NORMAL = 1,
	MU_TOKEN_UNKNOWN = 2,
	MU_TOKEN_CONTROL = 3,
	MU_TOKEN_USER_DEFINED = 4,
	MU_TOKEN_UNUSED = 5,
	MU_TOKEN_BYTE = 6,
};

/* Flags for mu_tokenizer_encode. */
#define MU_TOKENIZER_ADD_SPECIAL 1u /* BOS first (if add_bos), EOS last (if add_eos) */
/* Flags for mu_tokenizer_decode / mu_tokenizer_decode_token. */
#define MU_TOKENIZER_STRIP_SPACE 1u /* drop the dummy-prefix space (see mu_tokenizer_decode) */

struct mu_tokenizer {
	enum mu_tokenizer_kind kind;
	uint32_t n_vocab;
	int32_t bos, eos, unk;
	int add_bos, add_eos, add_space_prefix;
	uint32_t max_piece_len;     /* longest piece, bytes */
	int has_byte_fallback;      /* all 256 byte tokens present */
	/* per token, n_vocab entries */
	const uint8_t **piece;      /* into the GGUF bytes, not NUL-terminated */
	uint32_t *piece_len;
	float *score;
	uint8_t *type;              /* enum mu_token_type */
	/* ids of the pieces text can turn into, sorted by piece bytes (then length) */
	uint32_t *sorted;
	uint32_t *sorted_prefix;    /* first 4 bytes of each sorted piece, big-endian, 0-padded */
	uint32_t n_sorted;
	int32_t byte_token[256];    /* id of "<0xNN>", or -1 */
};

/* Bytes mu_tokenizer_init needs for g's vocabulary. Checks the model kind and array sizes. */
enum mu_err mu_tokenizer_mem_size(const struct gguf *g, size_t *size, struct mu_error *err);

/* Loads and validates the vocabulary of g into t, using mem[0..len) (at least
 * mu_tokenizer_mem_size bytes). g's bytes and mem must outlive t. On failure t is unusable. */
enum mu_err mu_tokenizer_init(struct mu_tokenizer *t, const struct gguf *g, void *mem, size_t len,
			      struct mu_error *err);

/* Scratch bytes mu_tokenizer_encode needs for a text of text_len bytes: about 71 per byte.
 * SIZE_MAX when text_len is beyond what the encoder accepts (256 MiB). */
size_t mu_tokenizer_scratch_size(size_t text_len);

/* Encodes text[0..text_len) into ids[0..max_ids), setting *n_ids. Fails with MU_ERR_RANGE when
 * the result would need more than max_ids ids (ids and *n_ids are then unspecified), with
 * MU_ERR_NOMEM when scratch has less than mu_tokenizer_scratch_size(text_len) bytes left.
 * scratch->used is the same on return as on entry. Any byte string is accepted. */
enum mu_err mu_tokenizer_encode(const struct mu_tokenizer *t, const char *text, size_t text_len,
				unsigned flags, int32_t *ids, size_t max_ids, size_t *n_ids,
				struct mu_arena *scratch, struct mu_error *err);

/* Decoded bytes of one token into out[0..cap), setting *n (at most max_piece_len bytes).
 * With MU_TOKENIZER_STRIP_SPACE one leading ' ' is dropped. Fails with MU_ERR_ARG for an id
 * outside the vocabulary and MU_ERR_RANGE when cap is too small. */
enum mu_err mu_tokenizer_decode_token(const struct mu_tokenizer *t, int32_t id, unsigned flags,
				      uint8_t *out, size_t cap, size_t *n, struct mu_error *err);

/* Decodes ids[0..n_ids) into out[0..cap), setting *n. With MU_TOKENIZER_STRIP_SPACE the piece
 * of the first token, and of every token right after BOS, loses one leading ' ' (llama2.c;
 * undoes the dummy prefix). Fails with MU_ERR_ARG for an id outside the vocabulary and
 * MU_ERR_RANGE when the text does not fit in cap bytes. */
enum mu_err mu_tokenizer_decode(const struct mu_tokenizer *t, const int32_t *ids, size_t n_ids,
				unsigned flags, uint8_t *out, size_t cap, size_t *n, struct mu_error *err);

/* Id of the piece with exactly these bytes among the pieces text can turn into, or -1. */
int32_t mu_tokenizer_find(const struct mu_tokenizer *t, const uint8_t *piece, size_t len);

#endif
