/* test_tokenizer.c — the SentencePiece tokenizer against independent vectors:
 * stories260K's golden transcripts (llama2.c), llama.cpp's ggml-vocab-llama-spm vectors
 * (made with the sentencepiece library), round trips, and must-fail vocabularies. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/limits.h"
#include "engine/gguf.h"
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
		{TINY_MODEL_GPT2, MU_ERR_UNSUPPORTED},   {TINY_MODEL_OTHER, MU_ERR_UNSUPPORTED},
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

	/* the gpt2 refusal names what is missing */
	bytes = tiny_gguf(TINY_MODEL_GPT2, -5, -5, &len);
	vocab_load(&v, bytes, len, &err);
	CHECK(strstr(err.msg, "gpt2") && strstr(err.msg, "not supported"), "message: %s", err.msg);
	vocab_free(&v);
	free(bytes);

	/* the real gpt-2 vocabulary is refused the same way */
	struct pal_map m;
	char path[1024];
	snprintf(path, sizeof path, "%s/models/llamacpp-vocab/ggml-vocab-gpt-2.gguf", shared_dir());
	if (pal_map_file(&m, path, &err) == MU_OK) {
		CHECK(vocab_load(&v, m.data, m.len, &err) == MU_ERR_UNSUPPORTED, "gpt-2: %s", err.msg);
		vocab_free(&v);
		pal_unmap(&m);
	}
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

int main(void)
{
	test_stories_golden();
	test_llama_spm_vectors();
	test_tiny_vocab();
	test_no_token_type();
	return test_done();
}
