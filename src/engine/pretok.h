/* pretok.h — the pre-tokenizers of byte-level BPE vocabularies, and the Unicode helpers the
 * tokenizer needs: strict UTF-8 decoding, character classes, NFC normalization.
 *
 * A pre-tokenizer cuts text into pieces that BPE then encodes one at a time. Each one here is a
 * hand translation of the regular expression its model was trained with, applied as the
 * Hugging Face tokenizers library applies it (Split, behavior "Isolated": every match is a
 * piece, scanning left to right; the alternatives cover every character, so no text lies
 * between two matches):
 *
 *   gpt-2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   llama3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *           ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   qwen2   the llama3 expression with \p{N} in place of \p{N}{1,3}
 *
 * At each position the first alternative that matches wins, and within it the regex engine's
 * backtracking decides the length. Worked out once, that gives these rules:
 *   - ` ?X+` takes a leading U+0020 only when an X follows it; otherwise the space is left for
 *     the whitespace alternatives (and `X+` alone cannot start on a space).
 *   - `[^\r\n\p{L}\p{N}]?\p{L}+` takes one leading character that is not CR, LF, a letter or a
 *     digit (a space, a tab, punctuation, a combining mark) when letters follow it.
 *   - `\s*[\r\n]+` on a run of whitespace ends right after the last CR or LF of the run, and
 *     fails when the run has none.
 *   - `\s+(?!\S)` on a run of whitespace takes the whole run at the end of the text; before a
 *     non-space it gives back the run's last character (so " " + "word" can pair up), and
 *     fails on a single character, which `\s+` then takes.
 *   - `(?i:...)` compares by Unicode simple case folding, as the regex engines do: "'S" and
 *     "'ſ" (U+017F folds to 's') are contractions too.
 * Character classes come from libutf8proc: \p{L} is the categories Lu Ll Lt Lm Lo, \p{N} is
 * Nd Nl No, \s is White_Space (Zs Zl Zp, U+0009..U+000D and U+0085). A byte that does not start
 * a valid UTF-8 sequence is one character of its own that is none of these (so it behaves like
 * punctuation); nothing is rejected.
 *
 * NFC (qwen2 normalizes before pre-tokenizing) is done without allocating: canonical
 * decomposition of each character with utf8proc, canonical ordering by a stable counting sort
 * (linear however long a run of combining marks is), then utf8proc's composition. Invalid
 * UTF-8 bytes are copied through unchanged and nothing composes across them. Over every code
 * point, a character decomposes to at most 2 code points per UTF-8 byte and 3 bytes per byte,
 * and composing never makes text longer, so the output is at most 3 times the input.
 */
#ifndef MU_ENGINE_PRETOK_H
#define MU_ENGINE_PRETOK_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"

enum mu_pretok {
	MU_PRETOK_GPT2 = 0, /* "gpt-2", "default" or absent */
	MU_PRETOK_LLAMA3,   /* "llama-bpe", "llama3" */
	MU_PRETOK_QWEN2,    /* "qwen2" */
};

/* Character class bits. A character with none of L, N, WS is "other". */
#define MU_CC_L 1u     /* \p{L} */
#define MU_CC_N 2u     /* \p{N} */
#define MU_CC_WS 4u    /* \s */
#define MU_CC_CRLF 8u  /* '\r' or '\n' */
#define MU_CC_SPACE 16u /* U+0020 */
#define MU_CC_APOS 32u /* U+0027 */

/* Length (1..4) of the valid UTF-8 character at p[0..n), n >= 1, or 0 when p does not start
 * one: overlong forms, surrogates, code points above U+10FFFF and truncated sequences are
 * invalid. */
size_t mu_utf8_char_len(const uint8_t *p, size_t n);

/* 1 when p[0..n) is valid UTF-8. */
int mu_utf8_valid(const uint8_t *p, size_t n);

/* The class bits of the character at s[0..n), n >= 1; *len gets its length in bytes (1 for
 * an invalid byte). */
unsigned mu_char_class(const uint8_t *s, size_t n, size_t *len);

/* Length of the pre-token that starts at s[pos] (pos < n): always at least 1. */
size_t mu_pretok_next(enum mu_pretok kind, const uint8_t *s, size_t n, size_t pos);

/* Scratch bytes mu_nfc needs (besides its output) for n bytes of input. */
size_t mu_nfc_scratch_size(size_t n);

/* NFC of in[0..n) into out[0..cap), cap >= 3 * n, setting *out_len. Scratch comes from the
 * arena and is given back. MU_ERR_NOMEM when the arena or cap is too small; MU_ERR_INTERNAL
 * if utf8proc ever broke the bounds above (never seen over all code points). */
enum mu_err mu_nfc(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len,
		   struct mu_arena *scratch, struct mu_error *err);

#endif
