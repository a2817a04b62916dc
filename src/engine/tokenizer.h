/* tokenizer.h — text <-> token ids for the vocabularies embedded in GGUF files.
 *
 * Two kinds, chosen by tokenizer.ggml.model:
 *   "llama"  SentencePiece BPE with byte fallback (Llama 1/2, TinyLlama, TinyStories)
 *   "gpt2"   byte-level BPE (GPT-2, Llama 3, Qwen2/2.5/3), with the pre-tokenizer named by
 *            tokenizer.ggml.pre: "gpt-2", "default" or absent; "llama-bpe" or "llama3";
 *            "qwen2". Any other name is refused with MU_ERR_UNSUPPORTED.
 *
 * GGUF keys read (all validated before the tokenizer is usable):
 *   tokenizer.ggml.model              string, "llama" or "gpt2"
 *   tokenizer.ggml.pre                string, gpt2 only (above)
 *   tokenizer.ggml.tokens             string[n]   1 <= n <= MU_MAX_VOCAB; each piece valid
 *                                                 UTF-8 of at most MU_MAX_TOKEN_BYTES bytes
 *   tokenizer.ggml.scores             f32[n]      llama: required, no NaN; gpt2: ignored
 *   tokenizer.ggml.merges             string[m]   gpt2: required, "LEFT RIGHT"; rank = index
 *   tokenizer.ggml.token_type         i32[n]      optional; values 0..6 (below)
 *   tokenizer.ggml.bos_token_id       llama: default 1; gpt2: default none. Must be < n
 *   tokenizer.ggml.eos_token_id       llama: default 2; gpt2: default none. Must be < n
 *   tokenizer.ggml.unknown_token_id   llama: default 0; gpt2: not used
 *   tokenizer.ggml.add_bos_token      llama: default true; gpt2: default true for llama3
 *                                     when there is a BOS, else false
 *   tokenizer.ggml.add_eos_token      default false
 *   tokenizer.ggml.add_space_prefix   llama: default true; gpt2: not used
 * Token types (llama.cpp's numbering): 0 undefined, 1 normal, 2 unknown, 3 control,
 * 4 user-defined, 5 unused, 6 byte. Without token_type every token is normal (llama: pieces
 * of the form "<0xNN>" are byte tokens).
 *
 * SentencePiece ("llama"). A byte token's piece is "<0xNN>" (two upper-case hex digits); each
 * byte value may have at most one. Pieces of normal, undefined and user-defined tokens, other
 * than BOS, EOS and UNK, are the ones merging can make; they must be unique. Encoding (as
 * llama.cpp's SPM tokenizer and llama2.c do it):
 *   1. Each ' ' becomes U+2581 "▁"; when add_space_prefix is set and the text is not empty,
 *      one "▁" is prepended (the dummy prefix).
 *   2. The result is split into UTF-8 characters. A byte that does not start a valid UTF-8
 *      sequence is a symbol of its own that never merges and always becomes its byte token.
 *   3. Repeatedly, of all adjacent symbol pairs whose concatenation is a piece, the pair whose
 *      piece has the highest score is merged; equal scores go to the leftmost pair. A binary
 *      heap of candidate pairs with lazy invalidation keeps this O(n log n).
 *   4. Each final symbol becomes its piece's id; a symbol that is not a piece becomes one byte
 *      token per byte when the vocabulary has all 256 of them, otherwise UNK.
 *
 * Byte-level BPE ("gpt2"). Pieces of normal, undefined and byte tokens are GPT-2's byte-level
 * strings (bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 for
 * U+0100..U+0143); they are turned back into raw bytes at init, must be unique, and must
 * include every single byte. Control and user-defined pieces are plain text. Merges name two
 * such pieces whose concatenation is a piece too. Encoding, as the Hugging Face tokenizers
 * library does it:
 *   1. qwen2 only: NFC normalization.
 *   2. The pre-tokenizer cuts the text into pieces (pretok.h).
 *   3. With ignore_merges (llama3), a pre-token whose bytes are a piece becomes that token.
 *   4. Otherwise each byte is a symbol, and repeatedly the adjacent pair with the lowest merge
 *      rank (leftmost on ties) is merged, using a heap indexed by symbol: O(n log n) in the
 *      length of the pre-token, so a megabyte of one character class is no problem.
 *
 * Both kinds: with MU_TOKENIZER_ADD_SPECIAL, BOS is put first when add_bos is set and EOS last
 * when add_eos is set. With MU_TOKENIZER_PARSE_SPECIAL, text equal to the piece of a control
 * or user-defined token becomes that token (the longest such piece at each position, found
 * through a first-byte index and binary search over the sorted pieces), and the text between
 * them is encoded as above, each part on its own (for SentencePiece each part gets the dummy
 * prefix, as in llama.cpp). Without the flag such text is ordinary text: "<|eot_id|>" typed by
 * a user can never end a turn.
 *
 * Decoding: SentencePiece pieces with each "▁" replaced by ' ' (UNK decodes to its piece), a
 * byte token is its byte; byte-level pieces are their raw bytes; user-defined pieces are their
 * text. BOS, EOS and control tokens decode to nothing unless MU_TOKENIZER_DECODE_SPECIAL asks
 * for their text. With MU_TOKENIZER_STRIP_SPACE a SentencePiece vocabulary with the dummy
 * prefix drops one leading space of the piece of the first token and of a token after BOS
 * (llama2.c); byte-level vocabularies have no dummy prefix and ignore the flag. Decoding what
 * encoding made gives the text back, byte for byte: for SentencePiece when the vocabulary has
 * byte tokens and a "▁" piece, except that a literal U+2581 comes back as a space; for
 * byte-level BPE always (qwen2: the NFC of the text). mu_tokenizer_decode and
 * mu_tokenizer_decode_token give raw bytes, which may be invalid UTF-8 or end inside a
 * character; the streaming decoder (struct mu_tok_stream) gives valid UTF-8 only.
 *
 * The end-of-generation set (mu_tokenizer_is_eog) is EOS plus every control or user-defined
 * token whose piece is one of "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>",
 * "<|endoftext|>", "</s>" (an ordinary piece with such text, like Qwen's "</s>", is not).
 *
 * Memory: mu_tokenizer_mem_size() says how much the tokenizer needs for the vocabulary tables
 * (SentencePiece: about 35 bytes per token; byte-level: about 40 per token plus 16 per merge,
 * 10 MB for Llama 3); mu_tokenizer_init() takes that much from the caller. SentencePiece and
 * special pieces are not copied: they point into the GGUF bytes, which must outlive the
 * tokenizer. Encoding needs scratch memory proportional to the text
 * (mu_tokenizer_scratch_size()), taken from a caller's arena and given back before returning.
 * Nothing is allocated. A tokenizer is read-only after init, so several threads may encode and
 * decode with it at once (each with its own scratch and stream state).
 */
#ifndef MU_ENGINE_TOKENIZER_H
#define MU_ENGINE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "engine/gguf.h"
#include "engine/pretok.h"

enum mu_tokenizer_kind {
	MU_TOKENIZER_SPM = 0, /* "llama": SentencePiece BPE with byte fallback */
	MU_TOKENIZER_BPE = 1, /* "gpt2": byte-level BPE */
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
#define MU_TOKENIZER_ADD_SPECIAL 1u   /* BOS first (if add_bos), EOS last (if add_eos) */
#define MU_TOKENIZER_PARSE_SPECIAL 2u /* control and user-defined pieces in the text become their ids */
/* Flags for mu_tokenizer_decode, mu_tokenizer_decode_token and mu_tok_stream_init. */
#define MU_TOKENIZER_STRIP_SPACE 1u   /* drop the dummy-prefix space (see mu_tokenizer_decode) */
#define MU_TOKENIZER_DECODE_SPECIAL 2u /* BOS, EOS and control tokens give their piece's text */

#define MU_TOKENIZER_MAX_EOG 8
#define MU_TOKENIZER_MAX_PROBE 32

/* One merge of a byte-level vocabulary. */
struct mu_bpe_merge {
	uint32_t left, right; /* the pair's token ids */
	uint32_t rank;        /* index in tokenizer.ggml.merges: lower ranks merge first */
	uint32_t result;      /* the token whose piece is left's followed by right's */
};

struct mu_tokenizer {
	enum mu_tokenizer_kind kind;
	enum mu_pretok pre;         /* byte-level: the pre-tokenizer */
	int ignore_merges;          /* byte-level: a pre-token that is a piece is that token */
	int nfc;                    /* byte-level: NFC before pre-tokenizing */
	uint32_t n_vocab;
	int32_t bos, eos, unk;      /* -1: none */
	int add_bos, add_eos, add_space_prefix;
	uint32_t max_piece_len;     /* longest piece, bytes */
	int has_byte_fallback;      /* all 256 byte tokens present */
	/* per token, n_vocab entries. SentencePiece: the piece as stored (with "▁"); byte-level:
	 * the raw bytes (control and user-defined: the text as stored). */
	const uint8_t **piece;      /* not NUL-terminated */
	uint32_t *piece_len;
	float *score;               /* SentencePiece only, else NULL */
	uint8_t *type;              /* enum mu_token_type */
	/* ids of the pieces merging can make, sorted by piece bytes (then length) */
	uint32_t *sorted;
	uint32_t *sorted_prefix;    /* first 4 bytes of each sorted piece, big-endian, 0-padded */
	uint32_t n_sorted;
	/* the same pieces in an open-addressing hash table (id + 1, 0 = empty), hash_mask + 1
	 * slots, at least twice n_vocab. A lookup probes at most MU_TOKENIZER_MAX_PROBE slots;
	 * a piece that found no free slot within that many at init (hash_overflow counts them,
	 * a vocabulary built to collide) is found by binary search over sorted instead, so every
	 * lookup is bounded by the probe limit plus log2(n_sorted) comparisons. */
	uint32_t *hash;
	uint32_t hash_mask;
	uint32_t hash_overflow;
	int32_t byte_token[256];    /* SentencePiece: id of "<0xNN>"; byte-level: of the one-byte piece; or -1 */
	/* byte-level merges sorted by (left, right); those with left a are
	 * merge[merge_start[a] .. merge_start[a + 1]) */
	struct mu_bpe_merge *merge;
	uint32_t *merge_start;      /* n_vocab + 1 entries */
	uint32_t n_merges;
	/* control and user-defined tokens with a non-empty piece, sorted by piece; those whose
	 * piece starts with byte b are special[special_first[b] .. special_first[b + 1]) */
	uint32_t *special;
	uint32_t n_special;
	uint32_t special_first[257];
	int32_t eog[MU_TOKENIZER_MAX_EOG]; /* end-of-generation ids, ascending */
	uint32_t n_eog;
};

/* Bytes mu_tokenizer_init needs for g's vocabulary. Checks the model kind and array sizes. */
enum mu_err mu_tokenizer_mem_size(const struct gguf *g, size_t *size, struct mu_error *err);

/* Loads and validates the vocabulary of g into t, using mem[0..len) (at least
 * mu_tokenizer_mem_size bytes). g's bytes and mem must outlive t. On failure t is unusable. */
enum mu_err mu_tokenizer_init(struct mu_tokenizer *t, const struct gguf *g, void *mem, size_t len,
			      struct mu_error *err);

/* Scratch bytes mu_tokenizer_encode needs for a text of text_len bytes, for either kind: about
 * 90 per byte (NFC may triple a text, and each byte of a pre-token is a BPE symbol). SIZE_MAX
 * when text_len is beyond what the encoder accepts (256 MiB). */
size_t mu_tokenizer_scratch_size(size_t text_len);

/* Encodes text[0..text_len) into ids[0..max_ids), setting *n_ids. Fails with MU_ERR_RANGE when
 * the result would need more than max_ids ids (ids and *n_ids are then unspecified), with
 * MU_ERR_NOMEM when scratch has less than mu_tokenizer_scratch_size(text_len) bytes left.
 * scratch->used is the same on return as on entry. Any byte string is accepted. */
enum mu_err mu_tokenizer_encode(const struct mu_tokenizer *t, const char *text, size_t text_len,
				unsigned flags, int32_t *ids, size_t max_ids, size_t *n_ids,
				struct mu_arena *scratch, struct mu_error *err);

/* Decoded bytes of one token into out[0..cap), setting *n (at most max_piece_len bytes).
 * With MU_TOKENIZER_STRIP_SPACE one leading ' ' is dropped (SentencePiece with the dummy
 * prefix). Fails with MU_ERR_ARG for an id outside the vocabulary and MU_ERR_RANGE when cap
 * is too small. */
enum mu_err mu_tokenizer_decode_token(const struct mu_tokenizer *t, int32_t id, unsigned flags,
				      uint8_t *out, size_t cap, size_t *n, struct mu_error *err);

/* Decodes ids[0..n_ids) into out[0..cap), setting *n. With MU_TOKENIZER_STRIP_SPACE the piece
 * of the first token, and of every token right after BOS, loses one leading ' ' (llama2.c;
 * undoes the dummy prefix). Fails with MU_ERR_ARG for an id outside the vocabulary and
 * MU_ERR_RANGE when the text does not fit in cap bytes. */
enum mu_err mu_tokenizer_decode(const struct mu_tokenizer *t, const int32_t *ids, size_t n_ids,
				unsigned flags, uint8_t *out, size_t cap, size_t *n, struct mu_error *err);

/* The id of the token whose text is exactly piece[0..len): first among the pieces merging can
 * make (SentencePiece: as stored, with "▁"; byte-level: raw bytes), then among control and
 * user-defined pieces (e.g. "<|eot_id|>"). -1 when there is none. */
int32_t mu_tokenizer_find(const struct mu_tokenizer *t, const uint8_t *piece, size_t len);

/* 1 when id ends generation: EOS, or a special token named like an end of turn (see above). */
int mu_tokenizer_is_eog(const struct mu_tokenizer *t, int32_t id);

/* ---- streaming decoder ----
 * Fed one token at a time, it writes only complete UTF-8 characters, holds back the bytes of a
 * character that a later token may complete, and writes U+FFFD for each invalid sequence (the
 * maximal subpart, as Unicode recommends, so a lone byte 0xff is one U+FFFD and "\xe2\x82"
 * followed by "A" is U+FFFD then "A"). The output is always valid UTF-8. The state is the
 * caller's, a few bytes; nothing is allocated. */
struct mu_tok_stream {
	int32_t prev;     /* the token before the next one, -1 at the start of the text */
	unsigned flags;   /* MU_TOKENIZER_STRIP_SPACE, MU_TOKENIZER_DECODE_SPECIAL */
	uint8_t pend[4];  /* the start of an unfinished character */
	uint32_t n_pend;
};

/* Starts a stream. prev is the token before the first one to be pushed (the last prompt token
 * when only generated tokens are pushed), or -1 at the start of the text; with
 * MU_TOKENIZER_STRIP_SPACE the first piece after the start or after BOS loses its dummy-prefix
 * space, as in mu_tokenizer_decode. */
void mu_tok_stream_init(struct mu_tok_stream *s, unsigned flags, int32_t prev);

/* The most bytes one push or flush can write: 3 * (max_piece_len + 3). */
size_t mu_tok_stream_max_out(const struct mu_tokenizer *t);

/* Decodes token id and writes the characters it completes into out[0..cap), setting *n.
 * MU_ERR_ARG for an id outside the vocabulary, MU_ERR_RANGE when cap is too small; on failure
 * the state is unchanged, so the call may be repeated with more room. */
enum mu_err mu_tok_stream_push(struct mu_tok_stream *s, const struct mu_tokenizer *t, int32_t id, uint8_t *out,
			       size_t cap, size_t *n, struct mu_error *err);

/* At the end of the text: an unfinished character becomes U+FFFD (at most 3 bytes). */
enum mu_err mu_tok_stream_flush(struct mu_tok_stream *s, uint8_t *out, size_t cap, size_t *n,
				struct mu_error *err);

#endif
