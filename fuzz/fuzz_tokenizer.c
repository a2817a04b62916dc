/* fuzz_tokenizer.c — libFuzzer harness for the tokenizer's encoders, pre-tokenizers, NFC and
 * decoders.
 *
 * Two vocabularies are loaded once ($SHARED, default ../shared, relative to the repository
 * root): stories260K (SentencePiece) and GPT-2 (byte-level BPE). The GPT-2 tables are also run
 * with the llama3 and qwen2 settings (pre-tokenizer, whole-word shortcut, NFC), so every code
 * path sees real merges. Each input is encoded by each of the four, plain, with special tokens
 * parsed, and with BOS/EOS added. Besides the sanitizers' checks it asserts:
 *   - every id is inside the vocabulary, the scratch arena is handed back, and one id too few
 *     is a clean MU_ERR_RANGE;
 *   - SentencePiece: decoding gives the input back whenever it has no literal U+2581 and no
 *     special token was parsed (invalid UTF-8 comes back through the byte tokens);
 *   - byte-level BPE: decoding (with control tokens' text) gives the input back byte for byte,
 *     or its NFC for qwen2;
 *   - the streaming decoder, fed one id at a time, always writes valid UTF-8, within
 *     mu_tok_stream_max_out per push, and for valid UTF-8 input writes exactly the decoded text;
 *   - each pre-tokenizer cuts the input into non-empty pieces that cover it. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "engine/gguf.h"
#include "engine/pretok.h"
#include "engine/tokenizer.h"
#include "pal/pal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { TOK_SPM, TOK_GPT2, TOK_LLAMA3, TOK_QWEN2, N_TOK };

static struct mu_tokenizer tok[N_TOK];

/* A loaded vocabulary; it lives until the process ends. */
struct loaded {
	struct pal_map map;
	struct gguf g;
	void *gmem, *tmem;
};

static void load(const char *rel, struct loaded *l, struct mu_tokenizer *t)
{
	struct mu_error err = {0};
	char path[1024];
	size_t gsz, tsz;
	const char *shared = getenv("SHARED");
	snprintf(path, sizeof path, "%s/%s", shared && *shared ? shared : "../shared", rel);
	if (pal_map_file(&l->map, path, &err) || gguf_mem_size(l->map.data, l->map.len, &gsz, &err) ||
	    !(l->gmem = malloc(gsz)) || gguf_parse(&l->g, l->map.data, l->map.len, l->gmem, gsz, &err) ||
	    mu_tokenizer_mem_size(&l->g, &tsz, &err) || !(l->tmem = malloc(tsz)) ||
	    mu_tokenizer_init(t, &l->g, l->tmem, tsz, &err)) {
		fprintf(stderr, "fuzz_tokenizer: cannot load %s: %s\n", path, err.msg);
		abort();
	}
}

static void load_once(void)
{
	static int loaded;
	static struct loaded spm, gpt2;
	if (loaded)
		return;
	load("models/stories260K/stories260K.gguf", &spm, &tok[TOK_SPM]);
	load("models/llamacpp-vocab/ggml-vocab-gpt-2.gguf", &gpt2, &tok[TOK_GPT2]);
	tok[TOK_LLAMA3] = tok[TOK_GPT2];
	tok[TOK_LLAMA3].pre = MU_PRETOK_LLAMA3;
	tok[TOK_LLAMA3].ignore_merges = 1;
	tok[TOK_QWEN2] = tok[TOK_GPT2];
	tok[TOK_QWEN2].pre = MU_PRETOK_QWEN2;
	tok[TOK_QWEN2].nfc = 1;
	loaded = 1;
}

static int has_spm_space(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 2 < n; i++)
		if (p[i] == 0xe2 && p[i + 1] == 0x96 && p[i + 2] == 0x81)
			return 1;
	return 0;
}

static void check_pretok(const uint8_t *data, size_t size)
{
	for (int k = MU_PRETOK_GPT2; k <= MU_PRETOK_QWEN2; k++)
		for (size_t pos = 0; pos < size;) {
			size_t l = mu_pretok_next((enum mu_pretok)k, data, size, pos);
			assert(l >= 1 && l <= size - pos);
			pos += l;
		}
}

/* Streams ids through the decoder; returns the text's length in out. */
static size_t stream(const struct mu_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, uint8_t *out,
		     size_t cap)
{
	struct mu_tok_stream s;
	struct mu_error err;
	size_t o = 0, k = 0, room = mu_tok_stream_max_out(t);
	mu_tok_stream_init(&s, flags, -1);
	for (size_t i = 0; i < n; i++) {
		assert(cap - o >= room);
		enum mu_err rc = mu_tok_stream_push(&s, t, ids[i], out + o, cap - o, &k, &err);
		assert(rc == MU_OK && k <= room);
		o += k;
	}
	assert(cap - o >= 3 && mu_tok_stream_flush(&s, out + o, cap - o, &k, &err) == MU_OK);
	o += k;
	assert(mu_utf8_valid(out, o));
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned flag_sets[] = {0, MU_TOKENIZER_ADD_SPECIAL, MU_TOKENIZER_PARSE_SPECIAL,
					     MU_TOKENIZER_ADD_SPECIAL | MU_TOKENIZER_PARSE_SPECIAL};
	struct mu_error err;
	struct mu_arena a;

	load_once();
	check_pretok(data, size);
	size_t scratch_len = mu_tokenizer_scratch_size(size);
	assert(scratch_len != SIZE_MAX);
	size_t max_ids = 3 * size + 4; /* NFC may triple the text, BPE makes at most one id per byte */
	size_t back_cap = 3 * size + 64;
	size_t stream_cap = 3 * (size + 3) + mu_tok_stream_max_out(&tok[TOK_GPT2]) + 64;
	void *scratch = malloc(scratch_len);
	int32_t *ids = malloc(max_ids * sizeof *ids);
	uint8_t *back = malloc(back_cap), *sback = malloc(stream_cap), *nfc = malloc(3 * size + 1);
	assert(scratch && ids && back && sback && nfc);
	int valid = mu_utf8_valid(data, size);

	/* the NFC of the input, for qwen2's round trip */
	size_t nfc_len = 0;
	mu_arena_init(&a, scratch, scratch_len);
	assert(mu_nfc(data, size, nfc, 3 * size, &nfc_len, &a, &err) == MU_OK && a.used == 0);

	for (int k = 0; k < N_TOK; k++) {
		const struct mu_tokenizer *t = &tok[k];
		for (size_t f = 0; f < sizeof flag_sets / sizeof flag_sets[0]; f++) {
			unsigned flags = flag_sets[f];
			size_t n = 0, bn = 0;
			mu_arena_init(&a, scratch, scratch_len);
			enum mu_err rc = mu_tokenizer_encode(t, (const char *)data, size, flags, ids, max_ids, &n, &a, &err);
			assert(rc == MU_OK);
			assert(a.used == 0);
			assert(n <= max_ids);
			int parsed = 0;
			for (size_t i = 0; i < n; i++) {
				assert(ids[i] >= 0 && (uint32_t)ids[i] < t->n_vocab);
				parsed |= t->type[ids[i]] == MU_TOKEN_CONTROL;
			}

			/* too few ids: refused, never overrun */
			if (n > 0) {
				size_t m = 0;
				rc = mu_tokenizer_encode(t, (const char *)data, size, flags, ids, n - 1, &m, &a, &err);
				assert(rc == MU_ERR_RANGE && a.used == 0);
				rc = mu_tokenizer_encode(t, (const char *)data, size, flags, ids, max_ids, &n, &a, &err);
				assert(rc == MU_OK);
			}

			if (t->kind == MU_TOKENIZER_SPM) {
				/* each token decodes to the input bytes it came from, except that "▁" turns
				 * into one space; the prefix's space is stripped, so the text never grows */
				rc = mu_tokenizer_decode(t, ids, n, MU_TOKENIZER_STRIP_SPACE, back, back_cap, &bn, &err);
				assert(rc == MU_OK);
				if (!(flags & MU_TOKENIZER_PARSE_SPECIAL) && !has_spm_space(data, size))
					assert(bn == size && (size == 0 || memcmp(back, data, size) == 0));
				if (bn > 0) {
					rc = mu_tokenizer_decode(t, ids, n, MU_TOKENIZER_STRIP_SPACE, back, bn - 1, &bn, &err);
					assert(rc == MU_ERR_RANGE);
				}
				stream(t, ids, n, MU_TOKENIZER_STRIP_SPACE, sback, stream_cap);
				continue;
			}

			/* byte-level: the exact bytes (qwen2: their NFC), control tokens included */
			const uint8_t *want = t->nfc ? nfc : data;
			size_t want_len = t->nfc ? nfc_len : size;
			rc = mu_tokenizer_decode(t, ids, n, MU_TOKENIZER_DECODE_SPECIAL, back, back_cap, &bn, &err);
			assert(rc == MU_OK);
			if (!(flags & MU_TOKENIZER_ADD_SPECIAL))
				assert(bn == want_len && (bn == 0 || memcmp(back, want, bn) == 0));
			size_t sn = stream(t, ids, n, MU_TOKENIZER_DECODE_SPECIAL, sback, stream_cap);
			if (valid && !(flags & MU_TOKENIZER_ADD_SPECIAL))
				assert(sn == want_len && (sn == 0 || memcmp(sback, want, sn) == 0));
			/* plain text never turns into a control token */
			if (!(flags & MU_TOKENIZER_PARSE_SPECIAL))
				assert(!parsed);
			stream(t, ids, n, 0, sback, stream_cap);
		}
	}
	free(scratch);
	free(ids);
	free(back);
	free(sback);
	free(nfc);
	return 0;
}
