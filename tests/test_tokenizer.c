/* test_tokenizer.c — both tokenizer kinds against independent vectors: stories260K's golden
 * transcripts (llama2.c), llama.cpp's ggml-vocab-llama-spm vectors (made with the
 * sentencepiece library) and ggml-vocab-gpt-2 vectors (made with Hugging Face tokenizers);
 * hand-derived pre-tokenizer splits for the gpt-2, llama3 and qwen2 expressions; NFC; special
 * token parsing; the streaming decoder; hand-built byte-level vocabularies; round trips,
 * megabyte inputs, and must-fail vocabularies. (The llama-bpe and qwen2 vectors need
 * vocabularies built by mu vocab: tests/cli_tokenizer.sh.) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/limits.h"
#include "engine/gguf.h"
#include "engine/pretok.h"
#include "engine/tokenizer.h"
#include "pal/pal.h"
#include "test.h"

#define MAX_IDS 4096

static const char *shared_dir(void)
{
	const char *s = getenv("SHARED");
	return s && *s ? s : "../shared";
}

/* ---- loading a vocabulary from bytes ---- */

struct vocab {
	struct gguf g;
	void *gmem;
	void *tmem;
	struct mu_tokenizer t;
};

static enum mu_err vocab_load(struct vocab *v, const uint8_t *data, size_t len, struct mu_error *err)
{
	size_t gsz, tsz;
	enum mu_err rc;

	memset(v, 0, sizeof *v);
	if ((rc = gguf_mem_size(data, len, &gsz, err)))
		return rc;
	v->gmem = malloc(gsz ? gsz : 1);
	if ((rc = gguf_parse(&v->g, data, len, v->gmem, gsz, err)))
		return rc;
	if ((rc = mu_tokenizer_mem_size(&v->g, &tsz, err)))
		return rc;
	v->tmem = malloc(tsz);
	return mu_tokenizer_init(&v->t, &v->g, v->tmem, tsz, err);
}

static void vocab_free(struct vocab *v)
{
	free(v->gmem);
	free(v->tmem);
	memset(v, 0, sizeof *v);
}

struct file_vocab {
	struct pal_map map;
	struct vocab v;
	int ok;
};

static void file_vocab_load(struct file_vocab *f, const char *rel)
{
	char path[1024];
	struct mu_error err = {0};
	snprintf(path, sizeof path, "%s/%s", shared_dir(), rel);
	f->ok = 0;
	if (pal_map_file(&f->map, path, &err)) {
		CHECK(0, "cannot open %s: %s", path, err.msg);
		return;
	}
	enum mu_err rc = vocab_load(&f->v, f->map.data, f->map.len, &err);
	CHECK(rc == MU_OK, "%s: %s", path, err.msg);
	f->ok = rc == MU_OK;
}

static void file_vocab_free(struct file_vocab *f)
{
	vocab_free(&f->v);
	pal_unmap(&f->map);
}

/* Encodes with a scratch arena sized exactly as mu_tokenizer_scratch_size says. */
static enum mu_err encode(const struct mu_tokenizer *t, const char *s, size_t len, unsigned flags,
			  int32_t *ids, size_t max, size_t *n, struct mu_error *err)
{
	size_t need = mu_tokenizer_scratch_size(len);
	void *mem = malloc(need);
	struct mu_arena a;
	mu_arena_init(&a, mem, need);
	enum mu_err rc = mu_tokenizer_encode(t, s, len, flags, ids, max, n, &a, err);
	CHECK(a.used == 0, "scratch not given back");
	free(mem);
	return rc;
}

static int ids_eq(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static size_t parse_ids(const char *s, int32_t *ids, size_t max)
{
	size_t n = 0;
	while (*s && *s != '\n' && n < max) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s)
			break;
		ids[n++] = (int32_t)v;
		s = end;
	}
	return n;
}

/* ---- Python repr strings (the golden file's text fields) ---- */

static size_t put_utf8(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Unquotes 'text' or "text" with Python escapes into out; returns the length or -1. */
static long py_unrepr(const char *s, char *out, size_t cap)
{
	char q = *s++;
	size_t o = 0;
	if (q != '\'' && q != '"')
		return -1;
	while (*s && *s != q) {
		if (o + 4 > cap)
			return -1;
		if (*s != '\\') {
			out[o++] = *s++;
			continue;
		}
		s++;
		char hex[9] = {0};
		int nd = 0;
		switch (*s) {
		case 'n': out[o++] = '\n'; s++; continue;
		case 't': out[o++] = '\t'; s++; continue;
		case 'r': out[o++] = '\r'; s++; continue;
		case '\\': case '\'': case '"': out[o++] = *s++; continue;
		case 'x': nd = 2; break;
		case 'u': nd = 4; break;
		case 'U': nd = 8; break;
		default: return -1;
		}
		s++;
		for (int i = 0; i < nd; i++) {
			if (!*s)
				return -1;
			hex[i] = *s++;
		}
		unsigned long cp = strtoul(hex, NULL, 16);
		o += put_utf8(out + o, cp);
	}
	return *s == q ? (long)o : -1;
}

/* ---- (a) stories260K golden transcripts ---- */

static void test_stories_golden(void)
{
	struct file_vocab f;
	file_vocab_load(&f, "models/stories260K/stories260K.gguf");
	if (!f.ok)
		return;
	const struct mu_tokenizer *t = &f.v.t;
	struct mu_error err = {0};
	CHECK_EQ_INT(t->n_vocab, 512);
	CHECK_EQ_INT(t->bos, 1);
	CHECK_EQ_INT(t->eos, 2);
	CHECK_EQ_INT(t->unk, 0);
	CHECK(t->add_bos && !t->add_eos && t->add_space_prefix && t->has_byte_fallback, "flags");

	static const int32_t once[] = {1, 403, 407, 261, 378};
	static const int32_t lily[] = {1, 317, 269, 274, 287, 263, 377, 267, 265, 282, 295, 433, 426};
	int32_t ids[MAX_IDS];
	size_t n = 0;
	CHECK(encode(t, "Once upon a time", 16, MU_TOKENIZER_ADD_SPECIAL, ids, MAX_IDS, &n, &err) == MU_OK,
	      "%s", err.msg);
	CHECK(ids_eq(ids, n, once, 5), "Once upon a time: %zu ids", n);
	const char *ls = "Lily and Tom went to the park.";
	CHECK(encode(t, ls, strlen(ls), MU_TOKENIZER_ADD_SPECIAL, ids, MAX_IDS, &n, &err) == MU_OK, "%s", err.msg);
	CHECK(ids_eq(ids, n, lily, 13), "Lily and Tom: %zu ids", n);

	/* every indexed piece is found under its own id */
	int found_all = 1;
	for (uint32_t i = 0; i < t->n_sorted; i++) {
		uint32_t id = t->sorted[i];
		if (mu_tokenizer_find(t, t->piece[id], t->piece_len[id]) != (int32_t)id)
			found_all = 0;
	}
	CHECK(found_all && t->n_sorted == 253, "index of %u pieces", t->n_sorted);

	/* the golden file: each case's prompt, prompt ids, and the decoded transcript */
	char path[1024];
	snprintf(path, sizeof path, "%s/models/stories260K/stories260K.golden.txt", shared_dir());
	uint8_t *buf;
	size_t len;
	if (pal_read_file(path, 1 << 20, &buf, &len, &err)) {
		CHECK(0, "%s", err.msg);
		file_vocab_free(&f);
		return;
	}
	char *prompt = malloc(len + 1), *text = malloc(len + 1), *got = malloc(len + 4096);
	int32_t pids[MAX_IDS], all[MAX_IDS];
	size_t npids = 0, nall = 0;
	long prompt_len = -1;
	int cases = 0;
	for (char *line = (char *)buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (!strncmp(line, "prompt: ", 8)) {
			prompt_len = py_unrepr(line + 8, prompt, len);
		} else if (!strncmp(line, "prompt_tokens: ", 15)) {
			npids = parse_ids(line + 15, pids, MAX_IDS);
		} else if (!strncmp(line, "generated_tokens: ", 18)) {
			memcpy(all, pids, npids * sizeof *all);
			nall = npids + parse_ids(line + 18, all + npids, MAX_IDS - npids);
		} else if (!strncmp(line, "text_utf8_escaped: ", 19)) {
			long tl = py_unrepr(line + 19, text, len);
			CHECK(tl >= 0 && prompt_len >= 0, "golden file: bad string");
			if (tl < 0 || prompt_len < 0)
				continue;
			CHECK(encode(t, prompt, (size_t)prompt_len, MU_TOKENIZER_ADD_SPECIAL, ids, MAX_IDS, &n, &err) ==
				      MU_OK, "%s", err.msg);
			CHECK(ids_eq(ids, n, pids, npids), "golden case %d: prompt ids differ", cases);
			size_t gl = 0;
			CHECK(mu_tokenizer_decode(t, all, nall, MU_TOKENIZER_STRIP_SPACE, (uint8_t *)got, len + 4096, &gl,
						  &err) == MU_OK, "%s", err.msg);
			CHECK(gl == (size_t)tl && memcmp(got, text, gl) == 0, "golden case %d: text differs (%zu vs %ld)",
			      cases, gl, tl);
			cases++;
			prompt_len = -1;
		}
	}
	CHECK_EQ_INT(cases, 3);
	free(prompt);
	free(text);
	free(got);
	pal_free(buf, len + 1);

	/* token-by-token decoding, llama2.c style: strip only the piece after BOS */
	uint8_t piece[64];
	size_t pn;
	CHECK(mu_tokenizer_decode_token(t, 403, MU_TOKENIZER_STRIP_SPACE, piece, sizeof piece, &pn, &err) == MU_OK &&
		      pn == 4 && !memcmp(piece, "Once", 4), "strip");
	CHECK(mu_tokenizer_decode_token(t, 403, 0, piece, sizeof piece, &pn, &err) == MU_OK && pn == 5 &&
		      !memcmp(piece, " Once", 5), "no strip");
	CHECK(mu_tokenizer_decode_token(t, 1, 0, piece, sizeof piece, &pn, &err) == MU_OK && pn == 0, "BOS");
	CHECK(mu_tokenizer_decode_token(t, 2, 0, piece, sizeof piece, &pn, &err) == MU_OK && pn == 0, "EOS");
	CHECK(mu_tokenizer_decode_token(t, 3 + 10, 0, piece, sizeof piece, &pn, &err) == MU_OK && pn == 1 &&
		      piece[0] == '\n', "<0x0A>");
	CHECK(mu_tokenizer_decode_token(t, 512, 0, piece, sizeof piece, &pn, &err) == MU_ERR_ARG, "id 512");
	CHECK(mu_tokenizer_decode_token(t, -1, 0, piece, sizeof piece, &pn, &err) == MU_ERR_ARG, "id -1");
	CHECK(mu_tokenizer_decode_token(t, 403, 0, piece, 4, &pn, &err) == MU_ERR_RANGE, "cap 4");

	/* empty text: nothing, or BOS alone */
	CHECK(encode(t, "", 0, 0, ids, MAX_IDS, &n, &err) == MU_OK && n == 0, "empty");
	CHECK(encode(t, "", 0, MU_TOKENIZER_ADD_SPECIAL, ids, MAX_IDS, &n, &err) == MU_OK && n == 1 && ids[0] == 1,
	      "empty+BOS");

	/* output bound: exactly enough passes, one fewer fails */
	CHECK(encode(t, "Once upon a time", 16, MU_TOKENIZER_ADD_SPECIAL, ids, 5, &n, &err) == MU_OK && n == 5, "5");
	CHECK(encode(t, "Once upon a time", 16, MU_TOKENIZER_ADD_SPECIAL, ids, 4, &n, &err) == MU_ERR_RANGE, "4");
	CHECK(encode(t, "Once upon a time", 16, MU_TOKENIZER_ADD_SPECIAL, ids, 0, &n, &err) == MU_ERR_RANGE, "0");

	/* scratch too small: refused, and the arena is left as it was */
	{
		uint8_t small[64];
		struct mu_arena a;
		mu_arena_init(&a, small, sizeof small);
		CHECK(mu_tokenizer_encode(t, "Once upon a time", 16, 0, ids, MAX_IDS, &n, &a, &err) == MU_ERR_NOMEM &&
			      a.used == 0, "small scratch");
	}

	/* invalid UTF-8: every bad byte becomes its byte token, and decoding gives the bytes back */
	{
		static const char bad[] = "a\xff" "b\xc3 \xe2\x82 \xed\xa0\x80 \xc0\xaf!";
		size_t bl = sizeof bad - 1;
		CHECK(encode(t, bad, bl, 0, ids, MAX_IDS, &n, &err) == MU_OK, "%s", err.msg);
		int has_ff = 0;
		for (size_t i = 0; i < n; i++)
			has_ff |= ids[i] == t->byte_token[0xff];
		CHECK(has_ff, "0xff byte token");
		uint8_t back[128];
		size_t bn = 0;
		CHECK(mu_tokenizer_decode(t, ids, n, MU_TOKENIZER_STRIP_SPACE, back, sizeof back, &bn, &err) == MU_OK &&
			      bn == bl && !memcmp(back, bad, bl), "invalid UTF-8 round trip");
	}

	/* a long text: the merge loop must stay near-linear (this is 1 MiB) */
	{
		const char *unit = "Once upon a time, there was a little girl named Lily. She loved to play. ";
		size_t ul = strlen(unit), big_len = (size_t)1 << 20;
		char *big = malloc(big_len);
		for (size_t i = 0; i < big_len; i++)
			big[i] = unit[i % ul];
		int32_t *bids = malloc(big_len * sizeof *bids);
		size_t bn = 0;
		CHECK(encode(t, big, big_len, 0, bids, big_len, &bn, &err) == MU_OK, "%s", err.msg);
		CHECK(bn > big_len / 8 && bn < big_len / 2, "%zu ids for 1 MiB", bn);
		uint8_t *back = malloc(big_len + 16);
		size_t bl = 0;
		CHECK(mu_tokenizer_decode(t, bids, bn, MU_TOKENIZER_STRIP_SPACE, back, big_len + 16, &bl, &err) ==
			      MU_OK && bl == big_len && !memcmp(back, big, big_len), "1 MiB round trip");
		free(back);
		free(bids);
		free(big);
	}
	file_vocab_free(&f);
}

/* ---- (b), (c) llama.cpp's ggml-vocab-llama-spm vectors ---- */

static void test_llama_spm_vectors(void)
{
	struct file_vocab f, s;
	struct mu_error err = {0};
	char path[1024];
	uint8_t *inp, *out;
	size_t inp_len, out_len;

	file_vocab_load(&f, "models/llamacpp-vocab/ggml-vocab-llama-spm.gguf");
	if (!f.ok)
		return;
	file_vocab_load(&s, "models/stories260K/stories260K.gguf");
	const struct mu_tokenizer *t = &f.v.t;
	CHECK_EQ_INT(t->n_vocab, 32000);
	snprintf(path, sizeof path, "%s/models/llamacpp-vocab/ggml-vocab-llama-spm.gguf.inp", shared_dir());
	if (pal_read_file(path, 1 << 20, &inp, &inp_len, &err)) {
		CHECK(0, "%s", err.msg);
		return;
	}
	snprintf(path, sizeof path, "%s/models/llamacpp-vocab/ggml-vocab-llama-spm.gguf.out", shared_dir());
	if (pal_read_file(path, 1 << 20, &out, &out_len, &err)) {
		CHECK(0, "%s", err.msg);
		pal_free(inp, inp_len + 1);
		return;
	}

	static const char sep[] = "\n__ggml_vocab_test__\n";
	const size_t sep_len = sizeof sep - 1;
	char *p = (char *)inp, *end = (char *)inp + inp_len, *line = (char *)out;
	int total = 0, match = 0, round = 0, round_s = 0;
	int32_t ids[MAX_IDS], want[MAX_IDS];
	uint8_t back[8192];
	while (p < end) {
		char *q = strstr(p, sep);
		if (!q)
			break;
		size_t len = (size_t)(q - p), n = 0, bn = 0;
		size_t nw = parse_ids(line, want, MAX_IDS);
		char *nl = strchr(line, '\n');
		line = nl ? nl + 1 : line + strlen(line);

		CHECK(encode(t, p, len, 0, ids, MAX_IDS, &n, &err) == MU_OK, "vector %d: %s", total, err.msg);
		int ok = ids_eq(ids, n, want, nw);
		CHECK(ok, "vector %d: %zu ids, expected %zu", total, n, nw);
		match += ok;

		/* decode(encode(x)) == x once the dummy prefix is dropped */
		int rt = mu_tokenizer_decode(t, ids, n, MU_TOKENIZER_STRIP_SPACE, back, sizeof back, &bn, &err) ==
				 MU_OK && bn == len && !memcmp(back, p, len);
		CHECK(rt, "vector %d: round trip", total);
		round += rt;
		if (s.ok) {
			/* the same through the 512-token vocabulary, mostly byte fallback */
			rt = encode(&s.v.t, p, len, MU_TOKENIZER_ADD_SPECIAL, ids, MAX_IDS, &n, &err) == MU_OK &&
			     mu_tokenizer_decode(&s.v.t, ids, n, MU_TOKENIZER_STRIP_SPACE, back, sizeof back, &bn,
						 &err) == MU_OK && bn == len && !memcmp(back, p, len);
			CHECK(rt, "vector %d: stories260K round trip", total);
			round_s += rt;
		}
		total++;
		p = q + sep_len;
	}
	CHECK_EQ_INT(total, 46);
	printf("llama-spm vectors: %d/%d match, %d/%d round trips (stories260K vocab: %d/%d)\n", match, total,
	       round, total, round_s, total);
	pal_free(inp, inp_len + 1);
	pal_free(out, out_len + 1);
	file_vocab_free(&f);
	if (s.ok)
		file_vocab_free(&s);
}

/* ---- small hand-built vocabularies ---- */

struct gb {
	uint8_t *b;
	size_t n, cap;
	uint64_t n_kv;
};

static void gb_put(struct gb *g, const void *p, size_t n)
{
	if (g->n + n > g->cap) {
		g->cap = (g->n + n) * 2 + 256;
		g->b = realloc(g->b, g->cap);
	}
	memcpy(g->b + g->n, p, n);
	g->n += n;
}

static void gb_u32(struct gb *g, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	gb_put(g, b, 4);
}

static void gb_u64(struct gb *g, uint64_t v)
{
	gb_u32(g, (uint32_t)v);
	gb_u32(g, (uint32_t)(v >> 32));
}

static void gb_str(struct gb *g, const char *s, size_t n)
{
	gb_u64(g, n);
	gb_put(g, s, n);
}

static void gb_key(struct gb *g, const char *k, uint32_t type)
{
	gb_str(g, k, strlen(k));
	gb_u32(g, type);
	g->n_kv++;
}

static void gb_kv_str(struct gb *g, const char *k, const char *v)
{
	gb_key(g, k, GGUF_TYPE_STRING);
	gb_str(g, v, strlen(v));
}

static void gb_kv_u32(struct gb *g, const char *k, uint32_t v)
{
	gb_key(g, k, GGUF_TYPE_UINT32);
	gb_u32(g, v);
}

static void gb_kv_bool(struct gb *g, const char *k, int v)
{
	uint8_t b = (uint8_t)(v != 0);
	gb_key(g, k, GGUF_TYPE_BOOL);
	gb_put(g, &b, 1);
}

static void gb_kv_tokens(struct gb *g, const char *const *tok, const size_t *lens, size_t n)
{
	gb_key(g, "tokenizer.ggml.tokens", GGUF_TYPE_ARRAY);
	gb_u32(g, GGUF_TYPE_STRING);
	gb_u64(g, n);
	for (size_t i = 0; i < n; i++)
		gb_str(g, tok[i], lens ? lens[i] : strlen(tok[i]));
}

static void gb_kv_f32s(struct gb *g, const char *k, const float *v, size_t n)
{
	gb_key(g, k, GGUF_TYPE_ARRAY);
	gb_u32(g, GGUF_TYPE_FLOAT32);
	gb_u64(g, n);
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &v[i], 4);
		gb_u32(g, u);
	}
}

static void gb_kv_i32s(struct gb *g, const char *k, const int32_t *v, size_t n)
{
	gb_key(g, k, GGUF_TYPE_ARRAY);
	gb_u32(g, GGUF_TYPE_INT32);
	gb_u64(g, n);
	for (size_t i = 0; i < n; i++)
		gb_u32(g, (uint32_t)v[i]);
}

/* The finished file: header (no tensors) followed by the key/value pairs written so far. */
static uint8_t *gb_finish(struct gb *g, size_t *len)
{
	struct gb h = {0};
	gb_u32(&h, GGUF_MAGIC);
	gb_u32(&h, 3);
	gb_u64(&h, 0);
	gb_u64(&h, g->n_kv);
	gb_put(&h, g->b, g->n);
	free(g->b);
	memset(g, 0, sizeof *g);
	*len = h.n;
	return h.b;
}

/* A tiny vocabulary: <unk> <s> </s> ▁ a b ab ba, optionally with byte tokens. */
#define SP "\xe2\x96\x81"
enum { TINY_N = 8 };
static const char *const tiny_tok[TINY_N] = {"<unk>", "<s>", "</s>", SP, "a", "b", "ab", "ba"};
static const int32_t tiny_type[TINY_N] = {2, 3, 3, 1, 1, 1, 1, 1};

enum tiny_fault {
	TINY_OK = 0,
	TINY_SCORES_SHORT,
	TINY_TYPES_SHORT,
	TINY_BOS_RANGE,
	TINY_EOS_RANGE,
	TINY_MODEL_GPT2,
	TINY_MODEL_OTHER,
	TINY_NO_MODEL,
	TINY_NO_SCORES,
	TINY_NAN_SCORE,
	TINY_BAD_TYPE,
	TINY_BYTE_TYPE_BAD_PIECE,
	TINY_DUP_PIECE,
	TINY_BAD_UTF8_PIECE,
	TINY_LONG_PIECE,
	TINY_SCORES_WRONG_TYPE,
	TINY_FAULTS
};

static uint8_t *tiny_gguf(enum tiny_fault fault, float ab_score, float ba_score, size_t *len)
{
	static char long_piece[MU_MAX_TOKEN_BYTES + 1];
	const char *tok[TINY_N];
	size_t lens[TINY_N];
	float score[TINY_N] = {0, 0, 0, -1, -2, -3, ab_score, ba_score};
	int32_t type[TINY_N + 1] = {0};
	struct gb g = {0};

	for (int i = 0; i < TINY_N; i++) {
		tok[i] = tiny_tok[i];
		lens[i] = strlen(tok[i]);
		type[i] = tiny_type[i];
	}
	memset(long_piece, 'x', sizeof long_piece);
	if (fault == TINY_NAN_SCORE)
		score[4] = 0.0f / 0.0f;
	if (fault == TINY_BAD_TYPE)
		type[5] = 7;
	if (fault == TINY_BYTE_TYPE_BAD_PIECE)
		type[5] = 6;
	if (fault == TINY_DUP_PIECE)
		tok[7] = "ab", lens[7] = 2;
	if (fault == TINY_BAD_UTF8_PIECE)
		tok[7] = "b\xc0", lens[7] = 2;
	if (fault == TINY_LONG_PIECE)
		tok[7] = long_piece, lens[7] = sizeof long_piece;

	gb_kv_str(&g, "general.architecture", "llama");
	if (fault == TINY_MODEL_GPT2)
		gb_kv_str(&g, "tokenizer.ggml.model", "gpt2");
	else if (fault == TINY_MODEL_OTHER)
		gb_kv_str(&g, "tokenizer.ggml.model", "t5");
	else if (fault != TINY_NO_MODEL)
		gb_kv_str(&g, "tokenizer.ggml.model", "llama");
	gb_kv_tokens(&g, tok, lens, TINY_N);
	if (fault == TINY_SCORES_WRONG_TYPE)
		gb_kv_i32s(&g, "tokenizer.ggml.scores", type, TINY_N);
	else if (fault != TINY_NO_SCORES)
		gb_kv_f32s(&g, "tokenizer.ggml.scores", score, fault == TINY_SCORES_SHORT ? TINY_N - 1 : TINY_N);
	gb_kv_i32s(&g, "tokenizer.ggml.token_type", type, fault == TINY_TYPES_SHORT ? TINY_N + 1 : TINY_N);
	gb_kv_u32(&g, "tokenizer.ggml.bos_token_id", fault == TINY_BOS_RANGE ? TINY_N : 1);
	gb_kv_u32(&g, "tokenizer.ggml.eos_token_id", fault == TINY_EOS_RANGE ? 0xffffffffu : 2);
	gb_kv_bool(&g, "tokenizer.ggml.add_bos_token", 1);
	return gb_finish(&g, len);
}

static void test_tiny_vocab(void)
{
	struct mu_error err = {0};
	struct vocab v;
	size_t len, n = 0;
	int32_t ids[64];

	/* equal scores: the leftmost pair merges first ("▁aba" -> ▁ ab a) */
	uint8_t *bytes = tiny_gguf(TINY_OK, -5, -5, &len);
	CHECK(vocab_load(&v, bytes, len, &err) == MU_OK, "%s", err.msg);
	CHECK(!v.t.has_byte_fallback && v.t.n_sorted == 5, "tiny flags");
	CHECK(encode(&v.t, "aba", 3, MU_TOKENIZER_ADD_SPECIAL, ids, 64, &n, &err) == MU_OK, "%s", err.msg);
	static const int32_t left[] = {1, 3, 6, 4};
	CHECK(ids_eq(ids, n, left, 4), "tie -> leftmost");
	/* no byte tokens: an unknown character becomes one UNK */
	CHECK(encode(&v.t, "a\xc3\xa9" "b", 4, 0, ids, 64, &n, &err) == MU_OK, "%s", err.msg);
	static const int32_t unk[] = {3, 4, 0, 5};
	CHECK(ids_eq(ids, n, unk, 4), "unknown char -> UNK");
	/* an invalid byte is UNK too, and never merges with its neighbours */
	CHECK(encode(&v.t, "a\x80" "b", 3, 0, ids, 64, &n, &err) == MU_OK, "%s", err.msg);
	CHECK(ids_eq(ids, n, unk, 4), "invalid byte -> UNK");
	vocab_free(&v);
	free(bytes);

	/* a higher score wins over position ("▁aba" -> ▁ a ba) */
	bytes = tiny_gguf(TINY_OK, -6, -5, &len);
	CHECK(vocab_load(&v, bytes, len, &err) == MU_OK, "%s", err.msg);
	CHECK(encode(&v.t, "aba", 3, 0, ids, 64, &n, &err) == MU_OK, "%s", err.msg);
	static const int32_t right[] = {3, 4, 7};
	CHECK(ids_eq(ids, n, right, 3), "higher score first");

	/* mu_tokenizer_mem_size is enough and one byte less is refused ... somewhere below it */
	size_t need = 0;
	CHECK(mu_tokenizer_mem_size(&v.g, &need, &err) == MU_OK, "%s", err.msg);
	void *mem = malloc(need);
	struct mu_tokenizer t2;
	CHECK(mu_tokenizer_init(&t2, &v.g, mem, 8, &err) == MU_ERR_NOMEM, "small memory");
	CHECK(mu_tokenizer_init(&t2, &v.g, mem, need, &err) == MU_OK, "%s", err.msg);
	free(mem);
	vocab_free(&v);
	free(bytes);

	/* must-fail vocabularies */
	static const struct {
		enum tiny_fault fault;
		enum mu_err code;
	} bad[] = {
		{TINY_SCORES_SHORT, MU_ERR_FORMAT},      {TINY_TYPES_SHORT, MU_ERR_FORMAT},
		{TINY_BOS_RANGE, MU_ERR_RANGE},          {TINY_EOS_RANGE, MU_ERR_RANGE},
		{TINY_MODEL_GPT2, MU_ERR_FORMAT},        {TINY_MODEL_OTHER, MU_ERR_UNSUPPORTED},
		{TINY_NO_MODEL, MU_ERR_FORMAT},          {TINY_NO_SCORES, MU_ERR_FORMAT},
		{TINY_NAN_SCORE, MU_ERR_FORMAT},         {TINY_BAD_TYPE, MU_ERR_FORMAT},
		{TINY_BYTE_TYPE_BAD_PIECE, MU_ERR_FORMAT}, {TINY_DUP_PIECE, MU_ERR_FORMAT},
		{TINY_BAD_UTF8_PIECE, MU_ERR_FORMAT},    {TINY_LONG_PIECE, MU_ERR_RANGE},
		{TINY_SCORES_WRONG_TYPE, MU_ERR_FORMAT},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = (struct mu_error){0};
		bytes = tiny_gguf(bad[i].fault, -5, -5, &len);
		enum mu_err rc = vocab_load(&v, bytes, len, &err);
		CHECK(rc == bad[i].code, "fault %d: got %s (%s), expected %s", (int)bad[i].fault, mu_err_name(rc),
		      err.msg, mu_err_name(bad[i].code));
		CHECK(rc == MU_OK || err.msg[0] != '\0', "fault %d: no message", (int)bad[i].fault);
		vocab_free(&v);
		free(bytes);
	}

	/* a gpt2 vocabulary without merges: the refusal names what is missing */
	bytes = tiny_gguf(TINY_MODEL_GPT2, -5, -5, &len);
	vocab_load(&v, bytes, len, &err);
	CHECK(strstr(err.msg, "merges") && strstr(err.msg, "missing"), "message: %s", err.msg);
	vocab_free(&v);
	free(bytes);
}

/* Tokens are byte tokens by their "<0xNN>" form when token_type is absent. */
static void test_no_token_type(void)
{
	const char *tok[3 + 256 + 1];
	size_t lens[3 + 256 + 1];
	float score[3 + 256 + 1];
	static char names[256][7];
	struct gb g = {0};
	struct mu_error err = {0};
	struct vocab v;
	size_t len, n = 0, nt = 0;
	int32_t ids[16];

	tok[nt++] = "<unk>";
	tok[nt++] = "<s>";
	tok[nt++] = "</s>";
	for (int b = 0; b < 256; b++) {
		snprintf(names[b], sizeof names[b], "<0x%02X>", b);
		tok[nt++] = names[b];
	}
	tok[nt++] = SP "hi";
	for (size_t i = 0; i < nt; i++) {
		lens[i] = strlen(tok[i]);
		score[i] = 0;
	}
	gb_kv_str(&g, "tokenizer.ggml.model", "llama");
	gb_kv_tokens(&g, tok, lens, nt);
	gb_kv_f32s(&g, "tokenizer.ggml.scores", score, nt);
	uint8_t *bytes = gb_finish(&g, &len);
	CHECK(vocab_load(&v, bytes, len, &err) == MU_OK, "%s", err.msg);
	CHECK(v.t.has_byte_fallback && v.t.bos == 1 && v.t.eos == 2 && v.t.unk == 0 && v.t.add_bos, "defaults");
	/* "▁hi" needs no merges here: only single characters exist besides it, so bytes result */
	CHECK(encode(&v.t, "h", 1, MU_TOKENIZER_ADD_SPECIAL, ids, 16, &n, &err) == MU_OK, "%s", err.msg);
	static const int32_t want[] = {1, 3 + 0xe2, 3 + 0x96, 3 + 0x81, 3 + 'h'};
	CHECK(ids_eq(ids, n, want, 5), "byte fallback without token_type");
	uint8_t out[16];
	size_t on = 0;
	CHECK(mu_tokenizer_decode(&v.t, ids, n, 0, out, sizeof out, &on, &err) == MU_OK && on == 4 &&
		      !memcmp(out, SP "h", 4), "bytes decode as bytes");
	vocab_free(&v);
	free(bytes);
}

/* ---- pre-tokenizers: hand-derived splits ----
 * Each row: the text, then its pieces under gpt-2, llama3 and qwen2, each list ending in
 * NULL; a qwen2 list of just NULL means "as llama3". Worked out by hand from the regexes
 * (pretok.h explains the backtracking cases). */

#define PT_MAX 12
struct pt_case {
	const char *text;
	const char *gpt2[PT_MAX], *llama3[PT_MAX], *qwen2[PT_MAX];
};

static const struct pt_case pt_cases[] = {
	/* a run of spaces gives its last one to the word */
	{"  hello", {" ", " hello", NULL}, {" ", " hello", NULL}, {NULL}},
	/* gpt-2: whitespace before a word keeps all but its last character; llama3: up to the
	 * last newline */
	{"a  \n\n b", {"a", "  \n\n", " b", NULL}, {"a", "  \n\n", " b", NULL}, {NULL}},
	{"\n\n\n  x", {"\n\n\n ", " x", NULL}, {"\n\n\n", " ", " x", NULL}, {NULL}},
	{"x\r\n\r\ny", {"x", "\r\n\r", "\n", "y", NULL}, {"x", "\r\n\r\n", "y", NULL}, {NULL}},
	/* digits: one run, groups of three, one by one */
	{"123456", {"123456", NULL}, {"123", "456", NULL}, {"1", "2", "3", "4", "5", "6", NULL}},
	{" 12345 x", {" 12345", " x", NULL}, {" ", "123", "45", " x", NULL},
	 {" ", "1", "2", "3", "4", "5", " x", NULL}},
	/* \p{N} is Nd, Nl and No: Arabic-Indic digits, Roman numeral twelve, one half */
	{"\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6\xe2\x85\xab\xc2\xbd",
	 {"\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6\xe2\x85\xab\xc2\xbd", NULL},
	 {"\xd9\xa3\xd9\xa4\xd9\xa5", "\xd9\xa6\xe2\x85\xab\xc2\xbd", NULL},
	 {"\xd9\xa3", "\xd9\xa4", "\xd9\xa5", "\xd9\xa6", "\xe2\x85\xab", "\xc2\xbd", NULL}},
	/* contractions: case-sensitive in gpt-2, case-insensitive in llama3 */
	{"don't DON'T", {"don", "'t", " DON", "'", "T", NULL}, {"don", "'t", " DON", "'T", NULL}, {NULL}},
	{"I'M 'Re x'll", {"I", "'", "M", " '", "Re", " x", "'ll", NULL},
	 {"I", "'M", " '", "Re", " x", "'ll", NULL}, {NULL}},
	{"we'VE'd'l", {"we", "'", "VE", "'d", "'", "l", NULL}, {"we", "'VE", "'d", "'l", NULL}, {NULL}},
	/* U+017F LATIN SMALL LETTER LONG S folds to 's' */
	{"it'\xc5\xbf x", {"it", "'", "\xc5\xbf", " x", NULL}, {"it", "'\xc5\xbf", " x", NULL}, {NULL}},
	/* punctuation: gpt-2 keeps newlines apart, llama3 takes them along */
	{"?!\n\nok", {"?!", "\n", "\n", "ok", NULL}, {"?!\n\n", "ok", NULL}, {NULL}},
	{"(hi) :-)", {"(", "hi", ")", " :-)", NULL}, {"(hi", ")", " :-)", NULL}, {NULL}},
	/* a tab or a no-break space before a word: llama3 takes it as the optional prefix */
	{"\tfoo", {"\t", "foo", NULL}, {"\tfoo", NULL}, {NULL}},
	{"a\xc2\xa0" "b", {"a", "\xc2\xa0", "b", NULL}, {"a", "\xc2\xa0" "b", NULL}, {NULL}},
	/* trailing whitespace stays whole */
	{"a \t ", {"a", " \t ", NULL}, {"a", " \t ", NULL}, {NULL}},
	/* emoji are symbols (So), the joiner and the variation selector too */
	{"hi \xf0\x9f\x99\x82\xf0\x9f\x99\x82!\n", {"hi", " \xf0\x9f\x99\x82\xf0\x9f\x99\x82!", "\n", NULL},
	 {"hi", " \xf0\x9f\x99\x82\xf0\x9f\x99\x82!\n", NULL}, {NULL}},
	{"\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xef\xb8\x8f ok",
	 {"\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xef\xb8\x8f", " ok", NULL},
	 {"\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xef\xb8\x8f", " ok", NULL}, {NULL}},
	/* CJK letters (Lo) with full-width punctuation (Po) */
	{"\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xe3\x80\x82",
	 {"\xe4\xbd\xa0\xe5\xa5\xbd", "\xef\xbc\x8c", "\xe4\xb8\x96\xe7\x95\x8c", "\xe3\x80\x82", NULL},
	 {"\xe4\xbd\xa0\xe5\xa5\xbd", "\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c", "\xe3\x80\x82", NULL}, {NULL}},
	/* an ideographic space (Zs) is whitespace */
	{"\xe6\x97\xa5\xe3\x80\x80\xe6\x9c\xac", {"\xe6\x97\xa5", "\xe3\x80\x80", "\xe6\x9c\xac", NULL},
	 {"\xe6\x97\xa5", "\xe3\x80\x80\xe6\x9c\xac", NULL}, {NULL}},
	/* combining marks (Mn) are neither letters nor digits */
	{"cafe\xcc\x81 ok", {"cafe", "\xcc\x81", " ok", NULL}, {"cafe", "\xcc\x81", " ok", NULL}, {NULL}},
	{"\xcc\x81" "abc", {"\xcc\x81", "abc", NULL}, {"\xcc\x81" "abc", NULL}, {NULL}},
	/* U+0085 and U+2028 are whitespace, U+200B is not */
	{"a\xc2\x85\xe2\x80\xa8" "b\xe2\x80\x8b" "c", {"a", "\xc2\x85", "\xe2\x80\xa8", "b", "\xe2\x80\x8b", "c", NULL},
	 {"a", "\xc2\x85", "\xe2\x80\xa8" "b", "\xe2\x80\x8b" "c", NULL}, {NULL}},
	/* invalid UTF-8: each bad byte is a character of its own, like punctuation */
	{"a\xff" "b\xc3", {"a", "\xff", "b", "\xc3", NULL}, {"a", "\xff" "b", "\xc3", NULL}, {NULL}},
	{"x \xe2\x82\n", {"x", " \xe2\x82", "\n", NULL}, {"x", " \xe2\x82\n", NULL}, {NULL}},
};

static void pt_check(enum mu_pretok kind, const char *name, const char *text, const char *const *want)
{
	const uint8_t *s = (const uint8_t *)text;
	size_t n = strlen(text), pos = 0, k = 0;
	int ok = 1;
	while (pos < n) {
		size_t l = mu_pretok_next(kind, s, n, pos);
		if (l == 0 || l > n - pos || k >= PT_MAX || !want[k] || strlen(want[k]) != l ||
		    memcmp(want[k], s + pos, l) != 0) {
			ok = 0;
			break;
		}
		pos += l;
		k++;
	}
	ok = ok && want[k] == NULL;
	CHECK(ok, "%s: split of case \"%s\" differs at piece %zu", name, text, k);
}

static void test_pretok_tables(void)
{
	for (size_t i = 0; i < sizeof pt_cases / sizeof pt_cases[0]; i++) {
		const struct pt_case *c = &pt_cases[i];
		pt_check(MU_PRETOK_GPT2, "gpt-2", c->text, c->gpt2);
		pt_check(MU_PRETOK_LLAMA3, "llama3", c->text, c->llama3);
		pt_check(MU_PRETOK_QWEN2, "qwen2", c->text, c->qwen2[0] ? c->qwen2 : c->llama3);
	}
	/* the classes come from utf8proc */
	static const struct {
		const char *ch;
		unsigned cls;
	} cc[] = {
		{"a", MU_CC_L}, {"\xc5\xbf", MU_CC_L}, {"\xe3\x83\xbc", MU_CC_L}, {"7", MU_CC_N},
		{"\xe2\x85\xab", MU_CC_N}, {" ", MU_CC_WS | MU_CC_SPACE}, {"\n", MU_CC_WS | MU_CC_CRLF},
		{"\r", MU_CC_WS | MU_CC_CRLF}, {"\x0b", MU_CC_WS}, {"\xc2\x85", MU_CC_WS}, {"\xe3\x80\x80", MU_CC_WS},
		{"\xe2\x80\xa9", MU_CC_WS}, {"\xe2\x80\x8b", 0}, {"'", MU_CC_APOS}, {"\xcc\x81", 0}, {"\xff", 0},
	};
	for (size_t i = 0; i < sizeof cc / sizeof cc[0]; i++) {
		size_t l = 0;
		unsigned got = mu_char_class((const uint8_t *)cc[i].ch, strlen(cc[i].ch), &l);
		CHECK(got == cc[i].cls && l == strlen(cc[i].ch), "class of case %zu: %u", i, got);
	}
	/* a megabyte of one class is one piece, found in linear time */
	size_t big = (size_t)1 << 20;
	uint8_t *s = malloc(big);
	memset(s, 'a', big);
	CHECK(mu_pretok_next(MU_PRETOK_LLAMA3, s, big, 0) == big, "1 MiB of letters");
	memset(s, ' ', big);
	s[big - 1] = 'x';
	CHECK(mu_pretok_next(MU_PRETOK_GPT2, s, big, 0) == big - 2, "1 MiB of spaces then a word");
	free(s);
}

/* ---- NFC ---- */

static int nfc_eq(const char *in, size_t in_len, const char *want, size_t want_len)
{
	size_t cap = 3 * in_len, scratch = mu_nfc_scratch_size(in_len), n = 0;
	uint8_t *out = malloc(cap + 1);
	void *mem = malloc(scratch);
	struct mu_arena a;
	struct mu_error err = {0};
	mu_arena_init(&a, mem, scratch);
	int ok = mu_nfc((const uint8_t *)in, in_len, out, cap, &n, &a, &err) == MU_OK && a.used == 0 && n == want_len &&
		 (n == 0 || memcmp(out, want, n) == 0);
	free(out);
	free(mem);
	return ok;
}

static void test_nfc(void)
{
	/* composition, Hangul, canonical reordering, composition exclusions, invalid bytes */
	static const struct {
		const char *in, *want;
	} c[] = {
		{"e\xcc\x81", "\xc3\xa9"},
		{"\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", "\xea\xb0\x81"},
		{"a\xcc\x81\xcc\x96", "\xc3\xa1\xcc\x96"},
		{"A\xcc\x8a\xcc\xa3", "\xe1\xba\xa0\xcc\x8a"},
		{"\xe0\xa5\x98", "\xe0\xa4\x95\xe0\xa4\xbc"},
		{"\xf0\x9d\x85\xa0", "\xf0\x9d\x85\x98\xf0\x9d\x85\xa5\xf0\x9d\x85\xae"},
		{"e\xff\xcc\x81", "e\xff\xcc\x81"},
		{"plain ascii", "plain ascii"},
		{"", ""},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
		CHECK(nfc_eq(c[i].in, strlen(c[i].in), c[i].want, strlen(c[i].want)), "NFC case %zu", i);

	/* every code point: within the bounds the buffers are sized by, and as utf8proc says */
	size_t worst = 0, bad = 0;
	uint8_t in[4], out[12];
	void *mem = malloc(mu_nfc_scratch_size(4));
	for (int32_t cp = 1; cp <= 0x10ffff; cp++) {
		if (cp >= 0xd800 && cp < 0xe000)
			continue;
		size_t l = (size_t)utf8proc_encode_char(cp, in), n = 0;
		struct mu_arena a;
		mu_arena_init(&a, mem, mu_nfc_scratch_size(l));
		if (mu_nfc(in, l, out, 3 * l, &n, &a, NULL) != MU_OK) {
			bad++;
			continue;
		}
		worst = n > worst ? n : worst;
		/* utf8proc's own NFC (it allocates; fine in a test) must agree */
		char z[5] = {0};
		memcpy(z, in, l);
		utf8proc_uint8_t *ref = utf8proc_NFC((const utf8proc_uint8_t *)z);
		if (!ref || strlen((const char *)ref) != n || memcmp(ref, out, n) != 0)
			bad++;
		free(ref);
	}
	free(mem);
	CHECK(bad == 0 && worst <= 12, "NFC of single code points: %zu failures, longest %zu bytes", bad, worst);

	/* a long run of marks in reverse class order: linear, and right */
	size_t pairs = 100000, in_len = 1 + 4 * pairs;
	char *long_in = malloc(in_len), *want = malloc(in_len);
	long_in[0] = 'a';
	for (size_t i = 0; i < pairs; i++)
		memcpy(long_in + 1 + 4 * i, "\xcc\x81\xcc\x96", 4);
	memcpy(want, "\xc3\xa1", 2);
	for (size_t i = 0; i < pairs; i++)
		memcpy(want + 2 + 2 * i, "\xcc\x96", 2);
	for (size_t i = 0; i + 1 < pairs; i++)
		memcpy(want + 2 + 2 * pairs + 2 * i, "\xcc\x81", 2);
	uint64_t t0 = pal_now_ns();
	CHECK(nfc_eq(long_in, in_len, want, in_len - 1), "NFC of 200000 marks");
	CHECK(pal_now_ns() - t0 < 5000000000ull, "NFC of 200000 marks took %.1f ms", (double)(pal_now_ns() - t0) / 1e6);
	free(long_in);
	free(want);

	/* too little room is refused */
	uint8_t small[2];
	size_t n = 0;
	struct mu_arena a;
	uint8_t tiny_mem[8];
	mu_arena_init(&a, tiny_mem, sizeof tiny_mem);
	CHECK(mu_nfc((const uint8_t *)"abc", 3, small, sizeof small, &n, &a, NULL) == MU_ERR_NOMEM, "small output");
	uint8_t big_out[16];
	CHECK(mu_nfc((const uint8_t *)"abc", 3, big_out, sizeof big_out, &n, &a, NULL) == MU_ERR_NOMEM && a.used == 0,
	      "small scratch");
}

/* ---- helpers for the byte-level tests ---- */

static int decode_eq(const struct mu_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, const char *want,
		     size_t want_len)
{
	struct mu_error err = {0};
	size_t cap = want_len * 3 + 64, got = 0;
	uint8_t *out = malloc(cap);
	int ok = mu_tokenizer_decode(t, ids, n, flags, out, cap, &got, &err) == MU_OK && got == want_len &&
		 (got == 0 || memcmp(out, want, got) == 0);
	free(out);
	return ok;
}

/* The streaming decoder's text for ids, pushed one at a time, into out (cap bytes); -1 on an
 * error. *split counts pushes that left an unfinished character pending. */
static long stream_all(const struct mu_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, int32_t prev,
		       uint8_t *out, size_t cap, int *split)
{
	struct mu_tok_stream s;
	struct mu_error err = {0};
	size_t o = 0, k = 0, room = mu_tok_stream_max_out(t);
	mu_tok_stream_init(&s, flags, prev);
	if (split)
		*split = 0;
	for (size_t i = 0; i < n; i++) {
		if (cap - o < room || mu_tok_stream_push(&s, t, ids[i], out + o, cap - o, &k, &err) != MU_OK)
			return -1;
		if (k > room || !mu_utf8_valid(out + o, k))
			return -1;
		o += k;
		if (split && s.n_pend)
			(*split)++;
	}
	if (cap - o < 3 || mu_tok_stream_flush(&s, out + o, cap - o, &k, &err) != MU_OK)
		return -1;
	return (long)(o + k);
}

static size_t count_id(const int32_t *ids, size_t n, int32_t id)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += ids[i] == id;
	return c;
}

/* ids of a then [mid] then ids of b, each encoded on its own */
static int is_split_at(const struct mu_tokenizer *t, const int32_t *ids, size_t n, const char *a, int32_t mid,
		       const char *b)
{
	int32_t x[256], y[256];
	size_t nx = 0, ny = 0;
	struct mu_error err = {0};
	if (encode(t, a, strlen(a), 0, x, 256, &nx, &err) || encode(t, b, strlen(b), 0, y, 256, &ny, &err))
		return 0;
	if (n != nx + 1 + ny || ids[nx] != mid)
		return 0;
	return (nx == 0 || !memcmp(ids, x, nx * sizeof *x)) && (ny == 0 || !memcmp(ids + nx + 1, y, ny * sizeof *y));
}

/* ---- gpt-2 vectors ---- */

static void test_gpt2_vectors(void)
{
	struct file_vocab f;
	struct mu_error err = {0};
	char path[1024];
	uint8_t *inp, *out;
	size_t inp_len, out_len;

	file_vocab_load(&f, "models/llamacpp-vocab/ggml-vocab-gpt-2.gguf");
	if (!f.ok)
		return;
	const struct mu_tokenizer *t = &f.v.t;
	CHECK(t->kind == MU_TOKENIZER_BPE && t->pre == MU_PRETOK_GPT2 && !t->ignore_merges && !t->nfc, "gpt-2 settings");
	CHECK(t->n_vocab == 50257 && t->n_merges == 50000 && t->bos == 50256 && t->eos == 50256 && !t->add_bos,
	      "gpt-2: %u tokens, %u merges, bos %d", t->n_vocab, t->n_merges, t->bos);
	CHECK(t->n_eog == 1 && t->eog[0] == 50256 && mu_tokenizer_is_eog(t, 50256) && !mu_tokenizer_is_eog(t, 0),
	      "gpt-2 end of generation");
	CHECK(t->hash_overflow == 0, "hash overflow %u", t->hash_overflow);

	snprintf(path, sizeof path, "%s/models/llamacpp-vocab/ggml-vocab-gpt-2.gguf.inp", shared_dir());
	if (pal_read_file(path, 1 << 20, &inp, &inp_len, &err)) {
		CHECK(0, "%s", err.msg);
		file_vocab_free(&f);
		return;
	}
	snprintf(path, sizeof path, "%s/models/llamacpp-vocab/ggml-vocab-gpt-2.gguf.out", shared_dir());
	if (pal_read_file(path, 1 << 20, &out, &out_len, &err)) {
		CHECK(0, "%s", err.msg);
		pal_free(inp, inp_len + 1);
		file_vocab_free(&f);
		return;
	}
	static const char sep[] = "\n__ggml_vocab_test__\n";
	char *p = (char *)inp, *end = (char *)inp + inp_len, *line = (char *)out;
	int total = 0, match = 0, round = 0, streamed = 0;
	int32_t ids[MAX_IDS], want[MAX_IDS];
	uint8_t sback[1 << 15];
	while (p < end) {
		char *q = strstr(p, sep);
		if (!q)
			break;
		size_t len = (size_t)(q - p), n = 0;
		size_t nw = parse_ids(line, want, MAX_IDS);
		char *nl = strchr(line, '\n');
		line = nl ? nl + 1 : line + strlen(line);
		CHECK(encode(t, p, len, MU_TOKENIZER_ADD_SPECIAL, ids, MAX_IDS, &n, &err) == MU_OK, "vector %d: %s", total,
		      err.msg);
		int ok = ids_eq(ids, n, want, nw);
		CHECK(ok, "gpt-2 vector %d: %zu ids, expected %zu", total, n, nw);
		match += ok;
		/* no dummy prefix: STRIP_SPACE changes nothing */
		int rt = decode_eq(t, ids, n, MU_TOKENIZER_STRIP_SPACE, p, len);
		CHECK(rt, "gpt-2 vector %d: round trip", total);
		round += rt;
		long sl = stream_all(t, ids, n, 0, -1, sback, sizeof sback, NULL);
		int st = sl == (long)len && !memcmp(sback, p, len);
		CHECK(st, "gpt-2 vector %d: streamed text differs", total);
		streamed += st;
		total++;
		p = q + sizeof sep - 1;
	}
	CHECK_EQ_INT(total, 46);
	printf("gpt-2 vectors: %d/%d match, %d/%d round trips, %d/%d streamed\n", match, total, round, total, streamed,
	       total);
	pal_free(inp, inp_len + 1);
	pal_free(out, out_len + 1);
	file_vocab_free(&f);
}

/* ---- special tokens ---- */

static void test_special_tokens(void)
{
	struct file_vocab f;
	struct mu_error err = {0};
	int32_t ids[256];
	size_t n = 0;

	file_vocab_load(&f, "models/llamacpp-vocab/ggml-vocab-gpt-2.gguf");
	if (f.ok) {
		const struct mu_tokenizer *t = &f.v.t;
		const char *s = "a<|endoftext|>b";
		/* not asked for: ordinary text, which decodes back to itself */
		CHECK(encode(t, s, strlen(s), 0, ids, 256, &n, &err) == MU_OK && count_id(ids, n, 50256) == 0 &&
			      decode_eq(t, ids, n, 0, s, strlen(s)), "gpt-2: <|endoftext|> in text stays text");
		/* asked for: the id, with the text around it encoded on its own */
		CHECK(encode(t, s, strlen(s), MU_TOKENIZER_PARSE_SPECIAL, ids, 256, &n, &err) == MU_OK &&
			      is_split_at(t, ids, n, "a", 50256, "b"), "gpt-2: <|endoftext|> parsed");
		CHECK(decode_eq(t, ids, n, 0, "ab", 2) && decode_eq(t, ids, n, MU_TOKENIZER_DECODE_SPECIAL, s, strlen(s)),
		      "gpt-2: control text only on request");
		CHECK(encode(t, "<|endoftext|><|endoftext|>", 26, MU_TOKENIZER_PARSE_SPECIAL, ids, 256, &n, &err) ==
			      MU_OK && n == 2 && ids[0] == 50256 && ids[1] == 50256, "two in a row");
		CHECK(encode(t, "<|endoftext|", 12, MU_TOKENIZER_PARSE_SPECIAL, ids, 256, &n, &err) == MU_OK &&
			      count_id(ids, n, 50256) == 0, "a partial special is text");
		CHECK(encode(t, "<|endoftext|>", 13, MU_TOKENIZER_PARSE_SPECIAL, ids, 0, &n, &err) == MU_ERR_RANGE,
		      "special id past max_ids");
		CHECK(mu_tokenizer_find(t, (const uint8_t *)"<|endoftext|>", 13) == 50256 &&
			      mu_tokenizer_find(t, (const uint8_t *)" the", 4) == 262 &&
			      mu_tokenizer_find(t, (const uint8_t *)"\xc4\xa0the", 5) < 0, "find: raw bytes and specials");
		file_vocab_free(&f);
	}

	file_vocab_load(&f, "models/llamacpp-vocab/ggml-vocab-llama-spm.gguf");
	if (f.ok) {
		const struct mu_tokenizer *t = &f.v.t;
		const char *s = "Hi</s>";
		CHECK(encode(t, s, strlen(s), 0, ids, 256, &n, &err) == MU_OK && count_id(ids, n, 2) == 0 &&
			      decode_eq(t, ids, n, MU_TOKENIZER_STRIP_SPACE, s, strlen(s)), "spm: </s> in text stays text");
		CHECK(encode(t, s, strlen(s), MU_TOKENIZER_PARSE_SPECIAL, ids, 256, &n, &err) == MU_OK &&
			      is_split_at(t, ids, n, "Hi", 2, ""), "spm: </s> parsed");
		/* each stretch of text gets the dummy prefix, as in llama.cpp */
		CHECK(encode(t, "<s>x", 4, MU_TOKENIZER_PARSE_SPECIAL, ids, 256, &n, &err) == MU_OK &&
			      is_split_at(t, ids, n, "", 1, "x"), "spm: <s> parsed");
		CHECK(decode_eq(t, ids, n, MU_TOKENIZER_DECODE_SPECIAL, "<s> x", 5), "spm: <s> decoded on request");
		CHECK(t->n_eog == 1 && t->eog[0] == 2, "spm end of generation");
		CHECK(mu_tokenizer_find(t, (const uint8_t *)"</s>", 4) == 2, "spm: find </s>");
		file_vocab_free(&f);
	}
}

/* ---- the streaming decoder ---- */

static void test_stream(void)
{
	struct file_vocab f;
	struct mu_error err = {0};
	int32_t ids[256];
	uint8_t out[4096];
	size_t n = 0, k = 0;

	file_vocab_load(&f, "models/llamacpp-vocab/ggml-vocab-gpt-2.gguf");
	if (f.ok) {
		const struct mu_tokenizer *t = &f.v.t;
		/* characters split across tokens come out whole, once complete */
		const char *s = "\xc3\xa9\xf0\x9f\x99\x82 ok \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e";
		int split = 0;
		CHECK(encode(t, s, strlen(s), 0, ids, 256, &n, &err) == MU_OK, "%s", err.msg);
		long sl = stream_all(t, ids, n, 0, -1, out, sizeof out, &split);
		CHECK(sl == (long)strlen(s) && !memcmp(out, s, strlen(s)) && split > 0, "split characters: %ld, %d splits",
		      sl, split);

		/* invalid bytes: one U+FFFD per maximal subpart, an unfinished one at the flush */
		static const uint8_t bad[] = {0xff, 0x80, 0xe2, 0x82, 'A', 0xed, 0xa0, 0x80, 0xc0, 0xaf, 0xf0, 0x9f, 0x99};
		for (size_t i = 0; i < sizeof bad; i++)
			ids[i] = t->byte_token[bad[i]];
		sl = stream_all(t, ids, sizeof bad, 0, -1, out, sizeof out, NULL);
		static const char fffd3[] = "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd";
		CHECK(sl == 9 * 3 + 1 && !memcmp(out, fffd3, 9) && out[9] == 'A' && !memcmp(out + 10, fffd3, 9) &&
			      !memcmp(out + 19, fffd3, 9), "invalid bytes: %ld", sl);

		/* too little room: refused, nothing consumed, then done with room */
		struct mu_tok_stream st;
		mu_tok_stream_init(&st, 0, -1);
		CHECK(mu_tok_stream_push(&st, t, t->byte_token[0xe2], out, 0, &k, &err) == MU_OK && k == 0, "pending");
		CHECK(mu_tok_stream_push(&st, t, t->byte_token[0x82], out, 0, &k, &err) == MU_OK && k == 0, "pending 2");
		CHECK(mu_tok_stream_push(&st, t, t->byte_token[0xac], out, 2, &k, &err) == MU_ERR_RANGE && st.n_pend == 2,
		      "no room: state kept");
		CHECK(mu_tok_stream_push(&st, t, t->byte_token[0xac], out, 3, &k, &err) == MU_OK && k == 3 &&
			      !memcmp(out, "\xe2\x82\xac", 3), "euro sign");
		CHECK(mu_tok_stream_push(&st, t, 50257, out, sizeof out, &k, &err) == MU_ERR_ARG, "id out of range");
		CHECK(mu_tok_stream_push(&st, t, t->byte_token[0xf0], out, sizeof out, &k, &err) == MU_OK && k == 0 &&
			      mu_tok_stream_flush(&st, out, 2, &k, &err) == MU_ERR_RANGE &&
			      mu_tok_stream_flush(&st, out, 3, &k, &err) == MU_OK && k == 3 && !memcmp(out, fffd3, 3) &&
			      mu_tok_stream_flush(&st, out, 3, &k, &err) == MU_OK && k == 0, "flush");

		/* control tokens: nothing, or their text on request */
		ids[0] = 50256;
		CHECK(stream_all(t, ids, 1, 0, -1, out, sizeof out, NULL) == 0, "control: nothing");
		CHECK(stream_all(t, ids, 1, MU_TOKENIZER_DECODE_SPECIAL, -1, out, sizeof out, NULL) == 13 &&
			      !memcmp(out, "<|endoftext|>", 13), "control: text on request");
		file_vocab_free(&f);
	}

	/* SentencePiece: the dummy-prefix space goes at the start and after BOS only */
	file_vocab_load(&f, "models/stories260K/stories260K.gguf");
	if (f.ok) {
		const struct mu_tokenizer *t = &f.v.t;
		const char *s = "Once upon a time";
		CHECK(encode(t, s, strlen(s), MU_TOKENIZER_ADD_SPECIAL, ids, 256, &n, &err) == MU_OK && ids[0] == 1, "BOS");
		long sl = stream_all(t, ids, n, MU_TOKENIZER_STRIP_SPACE, -1, out, sizeof out, NULL);
		CHECK(sl == (long)strlen(s) && !memcmp(out, s, strlen(s)), "spm stream: %ld", sl);
		sl = stream_all(t, ids + 2, n - 2, MU_TOKENIZER_STRIP_SPACE, ids[1], out, sizeof out, NULL);
		CHECK(sl == 12 && !memcmp(out, " upon a time", 12), "spm stream after a prompt: %ld", sl);
		file_vocab_free(&f);
	}
}

/* ---- hand-built byte-level vocabularies ---- */

/* GPT-2's bytes_to_unicode, written out independently of the engine: printable Latin-1 bytes
 * stand for themselves, the other 68 take U+0100 upwards in byte order. */
static unsigned byte_level_cp(unsigned b)
{
	unsigned k = 0;
	for (unsigned x = 0; x < 256; x++) {
		int self = (x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || x >= 0xae;
		if (x == b)
			return self ? x : 0x100 + k;
		k += !self;
	}
	return 0;
}

static void gb_kv_strs(struct gb *g, const char *k, const char *const *v, size_t n)
{
	gb_key(g, k, GGUF_TYPE_ARRAY);
	gb_u32(g, GGUF_TYPE_STRING);
	gb_u64(g, n);
	for (size_t i = 0; i < n; i++)
		gb_str(g, v[i], strlen(v[i]));
}

/* Tokens: the 256 bytes (id = byte value), then these. */
enum {
	B_AB = 256, B_BC, B_AA, B_ABC, B_SP_A, B_EOT, B_EOT_BANG, B_USER, B_BOS, B_EOS, B_UNUSED, BPE_N
};

enum bpe_fault {
	BPE_OK = 0,
	BPE_PRE_UNKNOWN,
	BPE_NO_MERGES,
	BPE_MERGE_NO_SPACE,
	BPE_MERGE_TWO_SPACES,
	BPE_MERGE_RESULT_NOT_TOKEN,
	BPE_MERGE_SIDE_NOT_TOKEN,
	BPE_MERGE_DUP,
	BPE_NO_BYTE_TOKEN,
	BPE_NOT_BYTE_LEVEL,
	BPE_DUP_SPECIAL,
	BPE_DUP_PIECE,
	BPE_ADD_BOS_NO_BOS,
	BPE_MERGES_WRONG_TYPE,
	BPE_NO_BOS,
};

static uint8_t *bpe_gguf(const char *pre, enum bpe_fault fault, size_t *len)
{
	static char names[256][8];
	const char *tok[BPE_N];
	int32_t type[BPE_N];
	const char *merges[8] = {"a b", "b c", "a a", "\xc4\xa0 a"};
	size_t n_merges = 4;
	struct gb g = {0};

	for (unsigned b = 0; b < 256; b++) {
		names[b][put_utf8(names[b], byte_level_cp(b))] = '\0';
		tok[b] = names[b];
		type[b] = MU_TOKEN_NORMAL;
	}
	static const struct {
		const char *piece;
		int32_t type;
	} extra[BPE_N - 256] = {
		{"ab", 1}, {"bc", 1}, {"aa", 1}, {"abc", 1}, {"\xc4\xa0" "a", 1}, {"<|eot_id|>", 3}, {"<|eot_id|>!!", 3},
		{"<u>", 4}, {"<|begin_of_text|>", 3}, {"<|end_of_text|>", 3}, {"[UNUSED\xc5\x84]", 5},
	};
	for (int i = 256; i < BPE_N; i++) {
		tok[i] = extra[i - 256].piece;
		type[i] = extra[i - 256].type;
	}
	if (fault == BPE_NO_BYTE_TOKEN)
		tok['q'] = "qq";
	if (fault == BPE_NOT_BYTE_LEVEL)
		tok[B_ABC] = "\xc5\x84";
	if (fault == BPE_DUP_SPECIAL)
		tok[B_EOT_BANG] = "<u>";
	if (fault == BPE_DUP_PIECE)
		tok[B_ABC] = "ab";
	if (fault == BPE_MERGE_NO_SPACE)
		merges[1] = "bc";
	if (fault == BPE_MERGE_TWO_SPACES)
		merges[1] = "b  c";
	if (fault == BPE_MERGE_RESULT_NOT_TOKEN)
		merges[n_merges++] = "c a";
	if (fault == BPE_MERGE_SIDE_NOT_TOKEN)
		merges[n_merges++] = "ab zz";
	if (fault == BPE_MERGE_DUP)
		merges[n_merges++] = "a b";

	gb_kv_str(&g, "general.architecture", "llama");
	gb_kv_str(&g, "tokenizer.ggml.model", "gpt2");
	if (fault == BPE_PRE_UNKNOWN)
		gb_kv_str(&g, "tokenizer.ggml.pre", "falcon");
	else if (pre)
		gb_kv_str(&g, "tokenizer.ggml.pre", pre);
	gb_kv_strs(&g, "tokenizer.ggml.tokens", tok, BPE_N);
	gb_kv_i32s(&g, "tokenizer.ggml.token_type", type, BPE_N);
	if (fault == BPE_MERGES_WRONG_TYPE)
		gb_kv_i32s(&g, "tokenizer.ggml.merges", type, 4);
	else if (fault != BPE_NO_MERGES)
		gb_kv_strs(&g, "tokenizer.ggml.merges", merges, n_merges);
	if (fault != BPE_ADD_BOS_NO_BOS && fault != BPE_NO_BOS)
		gb_kv_u32(&g, "tokenizer.ggml.bos_token_id", B_BOS);
	gb_kv_u32(&g, "tokenizer.ggml.eos_token_id", B_EOS);
	if (fault == BPE_ADD_BOS_NO_BOS)
		gb_kv_bool(&g, "tokenizer.ggml.add_bos_token", 1);
	return gb_finish(&g, len);
}

/* Encodes s and compares with want[0..nw). */
static int enc_is(const struct mu_tokenizer *t, const char *s, unsigned flags, const int32_t *want, size_t nw)
{
	int32_t ids[256];
	size_t n = 0;
	struct mu_error err = {0};
	return encode(t, s, strlen(s), flags, ids, 256, &n, &err) == MU_OK && ids_eq(ids, n, want, nw);
}

#define ENC_IS(t, s, flags, ...)                                                                             \
	do {                                                                                                 \
		static const int32_t want_[] = {__VA_ARGS__};                                                \
		CHECK(enc_is(t, s, flags, want_, sizeof want_ / sizeof want_[0]), "encode \"%s\" (flags %u)", s, \
		      (unsigned)(flags));                                                                    \
	} while (0)

static void test_tiny_bpe(void)
{
	struct mu_error err = {0};
	struct vocab v;
	size_t len;
	uint8_t *bytes;
	uint8_t out[64];
	size_t n = 0;

	/* gpt-2 rules: lowest rank first, leftmost on ties, no whole-word shortcut */
	bytes = bpe_gguf("gpt-2", BPE_OK, &len);
	CHECK(vocab_load(&v, bytes, len, &err) == MU_OK, "%s", err.msg);
	if (v.t.n_vocab == BPE_N) {
		const struct mu_tokenizer *t = &v.t;
		CHECK(t->kind == MU_TOKENIZER_BPE && t->n_merges == 4 && !t->add_bos && t->bos == B_BOS && t->eos == B_EOS &&
			      t->byte_token['a'] == 'a' && t->byte_token[' '] == ' ', "tiny settings");
		CHECK(t->n_eog == 2 && t->eog[0] == B_EOT && t->eog[1] == B_EOS, "tiny end of generation");
		ENC_IS(t, "abc", 0, B_AB, 'c');
		ENC_IS(t, "aaa", 0, B_AA, 'a');
		ENC_IS(t, "bca", 0, B_BC, 'a');
		ENC_IS(t, " a", 0, B_SP_A);
		ENC_IS(t, "abc abc", 0, B_AB, 'c', ' ', B_AB, 'c');
		ENC_IS(t, "e\xcc\x81", 0, 'e', 0xcc, 0x81);
		ENC_IS(t, "abc", MU_TOKENIZER_ADD_SPECIAL, B_AB, 'c');
		/* special tokens: the longest piece wins; without the flag they are text */
		ENC_IS(t, "x<|eot_id|>!!y<|eot_id|>y<u><|eot_id", MU_TOKENIZER_PARSE_SPECIAL, 'x', B_EOT_BANG, 'y', B_EOT,
		       'y', B_USER, '<', '|', 'e', 'o', 't', '_', 'i', 'd');
		ENC_IS(t, "<u>", 0, '<', 'u', '>');
		/* decoding: raw bytes; control text on request; user-defined and unused as text */
		static const int32_t d[] = {B_SP_A, B_EOT, B_USER, B_UNUSED, 0xc3, 0xa9};
		CHECK(decode_eq(t, d, 6, 0, " a<u>[UNUSED\xc5\x84]\xc3\xa9", 17), "tiny decode");
		CHECK(decode_eq(t, d, 6, MU_TOKENIZER_DECODE_SPECIAL, " a<|eot_id|><u>[UNUSED\xc5\x84]\xc3\xa9", 27),
		      "tiny decode with specials");
		CHECK(mu_tokenizer_decode_token(t, B_SP_A, MU_TOKENIZER_STRIP_SPACE, out, sizeof out, &n, &err) == MU_OK &&
			      n == 2 && !memcmp(out, " a", 2), "no dummy prefix to strip");
		CHECK(mu_tokenizer_find(t, (const uint8_t *)" a", 2) == B_SP_A &&
			      mu_tokenizer_find(t, (const uint8_t *)"<|eot_id|>", 10) == B_EOT &&
			      mu_tokenizer_find(t, (const uint8_t *)"<|eot_id|>!", 11) < 0, "tiny find");
	}
	vocab_free(&v);
	free(bytes);

	/* no pre-tokenizer named: gpt-2 */
	bytes = bpe_gguf(NULL, BPE_OK, &len);
	CHECK(vocab_load(&v, bytes, len, &err) == MU_OK && v.t.pre == MU_PRETOK_GPT2, "absent pre: %s", err.msg);
	vocab_free(&v);
	free(bytes);

	/* llama3: a pre-token that is a piece is that token; BOS by default */
	static const char *const llama3_names[] = {"llama-bpe", "llama3"};
	for (int i = 0; i < 2; i++) {
		bytes = bpe_gguf(llama3_names[i], BPE_OK, &len);
		CHECK(vocab_load(&v, bytes, len, &err) == MU_OK, "%s", err.msg);
		if (v.t.n_vocab == BPE_N) {
			CHECK(v.t.pre == MU_PRETOK_LLAMA3 && v.t.ignore_merges && v.t.add_bos, "llama3 settings");
			ENC_IS(&v.t, "abc", 0, B_ABC);
			ENC_IS(&v.t, "abc", MU_TOKENIZER_ADD_SPECIAL, B_BOS, B_ABC);
			ENC_IS(&v.t, " abc", 0, ' ', B_AB, 'c');
			ENC_IS(&v.t, "aaa", 0, B_AA, 'a');
		}
		vocab_free(&v);
		free(bytes);
	}
	/* llama3 without a BOS: nothing to add */
	bytes = bpe_gguf("llama-bpe", BPE_NO_BOS, &len);
	CHECK(vocab_load(&v, bytes, len, &err) == MU_OK && !v.t.add_bos && v.t.bos == -1, "no bos: %s", err.msg);
	vocab_free(&v);
	free(bytes);

	/* qwen2: NFC first, so a decomposed é is the two bytes of U+00E9 */
	bytes = bpe_gguf("qwen2", BPE_OK, &len);
	CHECK(vocab_load(&v, bytes, len, &err) == MU_OK, "%s", err.msg);
	if (v.t.n_vocab == BPE_N) {
		CHECK(v.t.pre == MU_PRETOK_QWEN2 && v.t.nfc && !v.t.ignore_merges, "qwen2 settings");
		ENC_IS(&v.t, "e\xcc\x81", 0, 0xc3, 0xa9);
		ENC_IS(&v.t, "abc", 0, B_AB, 'c');
		/* NFC can triple a text (U+1D160 is three code points of four bytes): the scratch
		 * size covers it */
		size_t big = (size_t)1 << 20, nb = 0;
		char *s = malloc(big);
		for (size_t i = 0; i < big; i += 4)
			memcpy(s + i, "\xf0\x9d\x85\xa0", 4);
		int32_t *ids = malloc(3 * big * sizeof *ids);
		CHECK(encode(&v.t, s, big, 0, ids, 3 * big, &nb, &err) == MU_OK && nb == 3 * big, "NFC x3: %s", err.msg);
		CHECK(encode(&v.t, s, big, 0, ids, big, &nb, &err) == MU_ERR_RANGE, "NFC x3 past max_ids");
		free(ids);
		free(s);
	}
	vocab_free(&v);
	free(bytes);

	/* must-fail vocabularies */
	static const struct {
		enum bpe_fault fault;
		enum mu_err code;
		const char *says;
	} bad[] = {
		{BPE_PRE_UNKNOWN, MU_ERR_UNSUPPORTED, "falcon"},
		{BPE_NO_MERGES, MU_ERR_FORMAT, "merges missing"},
		{BPE_MERGE_NO_SPACE, MU_ERR_FORMAT, "merge 1"},
		{BPE_MERGE_TWO_SPACES, MU_ERR_FORMAT, "merge 1"},
		{BPE_MERGE_RESULT_NOT_TOKEN, MU_ERR_FORMAT, "merge 4"},
		{BPE_MERGE_SIDE_NOT_TOKEN, MU_ERR_FORMAT, "merge 4"},
		{BPE_MERGE_DUP, MU_ERR_FORMAT, "merges 0 and 4"},
		{BPE_NO_BYTE_TOKEN, MU_ERR_FORMAT, "0x71"},
		{BPE_NOT_BYTE_LEVEL, MU_ERR_FORMAT, "byte-level"},
		{BPE_DUP_SPECIAL, MU_ERR_FORMAT, "same text"},
		{BPE_DUP_PIECE, MU_ERR_FORMAT, "same piece"},
		{BPE_ADD_BOS_NO_BOS, MU_ERR_FORMAT, "bos"},
		{BPE_MERGES_WRONG_TYPE, MU_ERR_FORMAT, "merges"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = (struct mu_error){0};
		bytes = bpe_gguf("gpt-2", bad[i].fault, &len);
		enum mu_err rc = vocab_load(&v, bytes, len, &err);
		CHECK(rc == bad[i].code && strstr(err.msg, bad[i].says), "bpe fault %d: got %s (%s), expected %s",
		      (int)bad[i].fault, mu_err_name(rc), err.msg, mu_err_name(bad[i].code));
		vocab_free(&v);
		free(bytes);
	}

	/* mu_tokenizer_mem_size is exactly enough */
	bytes = bpe_gguf("qwen2", BPE_OK, &len);
	CHECK(vocab_load(&v, bytes, len, &err) == MU_OK, "%s", err.msg);
	size_t need = 0;
	CHECK(mu_tokenizer_mem_size(&v.g, &need, &err) == MU_OK, "%s", err.msg);
	void *mem = malloc(need);
	struct mu_tokenizer t2;
	CHECK(mu_tokenizer_init(&t2, &v.g, mem, need - 16 - 64, &err) == MU_ERR_NOMEM, "small memory");
	CHECK(mu_tokenizer_init(&t2, &v.g, mem, need, &err) == MU_OK, "%s", err.msg);
	free(mem);
	vocab_free(&v);
	free(bytes);
}

/* ---- megabyte inputs through the gpt-2 vocabulary ---- */

static void big_round_trip(const struct mu_tokenizer *t, const char *name, const char *unit, unsigned flags)
{
	struct mu_error err = {0};
	size_t ul = strlen(unit), big = ((size_t)1 << 20) / ul * ul, n = 0;
	char *s = malloc(big);
	for (size_t i = 0; i < big; i += ul)
		memcpy(s + i, unit, ul);
	int32_t *ids = malloc(big * sizeof *ids);
	uint64_t t0 = pal_now_ns();
	enum mu_err rc = encode(t, s, big, flags, ids, big, &n, &err);
	double ms = (double)(pal_now_ns() - t0) / 1e6;
	CHECK(rc == MU_OK, "%s: %s", name, err.msg);
	CHECK(ms < 5000, "%s: %.0f ms", name, ms);
	CHECK(decode_eq(t, ids, n, MU_TOKENIZER_DECODE_SPECIAL, s, big), "%s: round trip", name);
	printf("1 MiB of %s: %zu tokens in %.1f ms\n", name, n, ms);
	free(ids);
	free(s);
}

static void test_bpe_long(void)
{
	struct file_vocab f;
	file_vocab_load(&f, "models/llamacpp-vocab/ggml-vocab-gpt-2.gguf");
	if (!f.ok)
		return;
	const struct mu_tokenizer *t = &f.v.t;
	big_round_trip(t, "'a'", "a", 0);
	big_round_trip(t, "spaces", " ", 0);
	big_round_trip(t, "emoji", "\xf0\x9f\x99\x82", 0);
	big_round_trip(t, "digits", "1234567890", 0);
	big_round_trip(t, "\"<|\" (specials parsed)", "<|", MU_TOKENIZER_PARSE_SPECIAL);
	big_round_trip(t, "specials", "<|endoftext|>", MU_TOKENIZER_PARSE_SPECIAL);
	big_round_trip(t, "invalid UTF-8", "\xff\xc3", 0);
	big_round_trip(t, "English", "It's a truth universally acknowledged, that 12 men don't...\n", 0);
	file_vocab_free(&f);
}

/* A vocabulary whose hash table is full of collisions: every lookup falls back to binary
 * search, with the same results. */
static void test_hash_fallback(void)
{
	struct file_vocab f;
	struct mu_error err = {0};
	file_vocab_load(&f, "models/llamacpp-vocab/ggml-vocab-gpt-2.gguf");
	if (!f.ok)
		return;
	struct mu_tokenizer t2 = f.v.t;
	size_t slots = (size_t)t2.hash_mask + 1;
	uint32_t *table = malloc(slots * sizeof *table);
	for (size_t i = 0; i < slots; i++)
		table[i] = 1; /* token 0, "!", in every slot */
	t2.hash = table;
	t2.hash_overflow = 1;
	const char *s = "Hello world! Ceci n'est pas une pipe. \xe4\xbd\xa0\xe5\xa5\xbd 123";
	int32_t a[256], b[256];
	size_t na = 0, nb = 0;
	CHECK(encode(&f.v.t, s, strlen(s), 0, a, 256, &na, &err) == MU_OK &&
		      encode(&t2, s, strlen(s), 0, b, 256, &nb, &err) == MU_OK && ids_eq(a, na, b, nb),
	      "binary-search fallback gives the same ids");
	CHECK(mu_tokenizer_find(&t2, (const uint8_t *)" world", 6) == mu_tokenizer_find(&f.v.t, (const uint8_t *)" world", 6) &&
		      mu_tokenizer_find(&t2, (const uint8_t *)"!", 1) == 0, "fallback find");
	free(table);
	file_vocab_free(&f);
}

int main(void)
{
	test_stories_golden();
	test_llama_spm_vectors();
	test_tiny_vocab();
	test_no_token_type();
	test_pretok_tables();
	test_nfc();
	test_gpt2_vectors();
	test_special_tokens();
	test_stream();
	test_tiny_bpe();
	test_bpe_long();
	test_hash_fallback();
	return test_done();
}
