/* fuzz_tokenizer.c — libFuzzer harness for the tokenizer's encoder and decoder.
 *
 * The stories260K vocabulary is loaded once ($SHARED, default ../shared, relative to the
 * repository root). Each input is encoded as text, with and without BOS, and decoded again.
 * Besides the sanitizers' checks it asserts: every id is inside the vocabulary, the scratch
 * arena is handed back, and decoding gives the input back byte for byte whenever the input
 * contains no literal U+2581 (which SentencePiece reads as a space). Invalid UTF-8 round-trips
 * too, through the byte tokens. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "pal/pal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pal_map map;
static struct gguf g;
static struct mu_tokenizer tok;

static void load_once(void)
{
	static int loaded;
	struct mu_error err = {0};
	char path[1024];
	size_t gsz, tsz;
	void *gmem, *tmem;

	if (loaded)
		return;
	const char *shared = getenv("SHARED");
	snprintf(path, sizeof path, "%s/models/stories260K/stories260K.gguf", shared && *shared ? shared : "../shared");
	if (pal_map_file(&map, path, &err) || gguf_mem_size(map.data, map.len, &gsz, &err) ||
	    !(gmem = malloc(gsz)) || gguf_parse(&g, map.data, map.len, gmem, gsz, &err) ||
	    mu_tokenizer_mem_size(&g, &tsz, &err) || !(tmem = malloc(tsz)) ||
	    mu_tokenizer_init(&tok, &g, tmem, tsz, &err)) {
		fprintf(stderr, "fuzz_tokenizer: cannot load %s: %s\n", path, err.msg);
		abort();
	}
	loaded = 1; /* the vocabulary lives until the process ends */
}

static int has_spm_space(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 2 < n; i++)
		if (p[i] == 0xe2 && p[i + 1] == 0x96 && p[i + 2] == 0x81)
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mu_error err;
	struct mu_arena a;

	load_once();
	size_t scratch_len = mu_tokenizer_scratch_size(size);
	assert(scratch_len != SIZE_MAX);
	size_t max_ids = size + 2; /* BOS, then at most one id per byte (byte fallback) */
	void *scratch = malloc(scratch_len);
	int32_t *ids = malloc(max_ids * sizeof *ids);
	uint8_t *back = malloc(size + 1);
	assert(scratch && ids && back);

	for (unsigned flags = 0; flags <= MU_TOKENIZER_ADD_SPECIAL; flags++) {
		size_t n = 0, bn = 0;
		mu_arena_init(&a, scratch, scratch_len);
		enum mu_err rc = mu_tokenizer_encode(&tok, (const char *)data, size, flags, ids, max_ids, &n, &a, &err);
		assert(rc == MU_OK);
		assert(a.used == 0);
		assert(n <= max_ids);
		for (size_t i = 0; i < n; i++)
			assert(ids[i] >= 0 && (uint32_t)ids[i] < tok.n_vocab);

		/* too few ids: refused, never overrun */
		if (n > 0) {
			size_t m = 0;
			rc = mu_tokenizer_encode(&tok, (const char *)data, size, flags, ids, n - 1, &m, &a, &err);
			assert(rc == MU_ERR_RANGE);
			rc = mu_tokenizer_encode(&tok, (const char *)data, size, flags, ids, max_ids, &n, &a, &err);
			assert(rc == MU_OK);
		}

		/* each token decodes to the input bytes it came from, except that "▁" (the dummy
		 * prefix, escaped spaces, literal U+2581) turns into one space; the prefix's space is
		 * stripped, so the text never grows */
		rc = mu_tokenizer_decode(&tok, ids, n, MU_TOKENIZER_STRIP_SPACE, back, size + 1, &bn, &err);
		assert(rc == MU_OK);
		assert(bn <= size);
		if (!has_spm_space(data, size))
			assert(bn == size && (size == 0 || memcmp(back, data, size) == 0));

		/* one byte short of the text: a clean refusal */
		if (bn > 0) {
			rc = mu_tokenizer_decode(&tok, ids, n, MU_TOKENIZER_STRIP_SPACE, back, bn - 1, &bn, &err);
			assert(rc == MU_ERR_RANGE);
		}
	}
	free(scratch);
	free(ids);
	free(back);
	return 0;
}
