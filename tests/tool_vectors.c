/* tool_vectors.c — checks a GGUF vocabulary against llama.cpp-style tokenizer vectors, and
 * measures encoding speed. Called by tests/cli_tokenizer.sh.
 *
 *   tool_vectors VOCAB.gguf TEXTS.inp IDS.out
 *       TEXTS.inp holds test strings, each followed by "\n__ggml_vocab_test__\n"; line i of
 *       IDS.out holds the ids of string i, each preceded by a space (encoded without BOS).
 *       Three checks per string: the ids match; decoding them gives the text back (after
 *       dropping the SentencePiece dummy prefix; for an NFC vocabulary, the text's NFC); the
 *       streaming decoder, fed one id at a time, writes the same text. Ends with
 *       "N passed, N failed".
 *   tool_vectors --golden VOCAB.gguf GOLDEN.txt
 *       A chat golden file (prompt_json_string / token_ids pairs, special tokens parsed): the
 *       prompt encoded with MU_TOKENIZER_PARSE_SPECIAL gives the ids; encoded without it, no
 *       control token appears and decoding gives the prompt back.
 *   tool_vectors --eog VOCAB.gguf ID...
 *       The end-of-generation set is exactly these ids.
 *   tool_vectors --bench VOCAB.gguf BYTES TEXT...
 *       Encodes the TEXT files, concatenated and repeated to BYTES bytes, and prints the init
 *       and encode times (best of three).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/arena.h"
#include "base/err.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "pal/pal.h"

#define MAX_IDS 8192

struct vocab {
	struct pal_map map;
	struct gguf g;
	void *gmem, *tmem;
	struct mu_tokenizer t;
	double init_ms;
};

static int vocab_open(struct vocab *v, const char *path)
{
	struct mu_error err = {0};
	size_t gsz, tsz;
	memset(v, 0, sizeof *v);
	if (pal_map_file(&v->map, path, &err) || gguf_mem_size(v->map.data, v->map.len, &gsz, &err) ||
	    !(v->gmem = malloc(gsz ? gsz : 1)) || gguf_parse(&v->g, v->map.data, v->map.len, v->gmem, gsz, &err)) {
		fprintf(stderr, "tool_vectors: %s: %s\n", path, err.msg);
		return -1;
	}
	uint64_t t0 = pal_now_ns();
	if (mu_tokenizer_mem_size(&v->g, &tsz, &err) || !(v->tmem = malloc(tsz)) ||
	    mu_tokenizer_init(&v->t, &v->g, v->tmem, tsz, &err)) {
		fprintf(stderr, "tool_vectors: %s: %s\n", path, err.msg);
		return -1;
	}
	v->init_ms = (double)(pal_now_ns() - t0) / 1e6;
	return 0;
}

static void vocab_close(struct vocab *v)
{
	free(v->gmem);
	free(v->tmem);
	pal_unmap(&v->map);
}

static enum mu_err encode(const struct mu_tokenizer *t, const uint8_t *s, size_t len, int32_t *ids, size_t max,
			  size_t *n, struct mu_error *err)
{
	size_t need = mu_tokenizer_scratch_size(len);
	void *mem = malloc(need);
	struct mu_arena a;
	if (!mem)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory");
	mu_arena_init(&a, mem, need);
	enum mu_err rc = mu_tokenizer_encode(t, (const char *)s, len, 0, ids, max, n, &a, err);
	free(mem);
	return rc;
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

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
	fprintf(stderr, "    %s:", what);
	for (size_t i = 0; i < n && i < 64; i++)
		fprintf(stderr, " %d", ids[i]);
	fprintf(stderr, "%s\n", n > 64 ? " ..." : "");
}

/* Feeds ids one at a time through the streaming decoder; 0 on success. */
static int stream_decode(const struct mu_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, uint8_t *out,
			 size_t cap, size_t *len)
{
	struct mu_tok_stream s;
	struct mu_error err = {0};
	size_t o = 0, k = 0, room = mu_tok_stream_max_out(t);
	mu_tok_stream_init(&s, flags, -1);
	for (size_t i = 0; i < n; i++) {
		if (cap - o < room || mu_tok_stream_push(&s, t, ids[i], out + o, cap - o, &k, &err))
			return -1;
		o += k;
	}
	if (cap - o < 3 || mu_tok_stream_flush(&s, out + o, cap - o, &k, &err))
		return -1;
	*len = o + k;
	return 0;
}

static int run_vectors(const char *vocab_path, const char *inp_path, const char *out_path)
{
	struct vocab v;
	struct mu_error err = {0};
	uint8_t *inp, *out;
	size_t inp_len, out_len;
	if (vocab_open(&v, vocab_path))
		return 2;
	if (pal_read_file(inp_path, 1 << 24, &inp, &inp_len, &err) ||
	    pal_read_file(out_path, 1 << 24, &out, &out_len, &err)) {
		fprintf(stderr, "tool_vectors: %s\n", err.msg);
		return 2;
	}
	const struct mu_tokenizer *t = &v.t;
	unsigned dflags = t->kind == MU_TOKENIZER_SPM ? MU_TOKENIZER_STRIP_SPACE : 0;
	static const char sep[] = "\n__ggml_vocab_test__\n";
	const size_t sep_len = sizeof sep - 1;
	char *p = (char *)inp, *end = (char *)inp + inp_len, *line = (char *)out;
	int total = 0, match = 0, round = 0, streamed = 0;
	static int32_t ids[MAX_IDS], want[MAX_IDS];
	static uint8_t back[1 << 16], sback[1 << 17];

	while (p < end) {
		char *q = strstr(p, sep);
		if (!q)
			break;
		size_t len = (size_t)(q - p), n = 0, bn = 0, sn = 0;
		size_t nw = parse_ids(line, want, MAX_IDS);
		char *nl = strchr(line, '\n');
		line = nl ? nl + 1 : line + strlen(line);

		enum mu_err rc = encode(t, (const uint8_t *)p, len, ids, MAX_IDS, &n, &err);
		int ok = rc == MU_OK && n == nw && (n == 0 || !memcmp(ids, want, n * sizeof *ids));
		if (!ok) {
			fprintf(stderr, "FAIL vector %d (%zu bytes): %s\n", total, len, rc ? err.msg : "ids differ");
			print_ids("got ", ids, n);
			print_ids("want", want, nw);
		}
		match += ok;

		/* the text decoding should give back: the text, or its NFC */
		const uint8_t *expect = (const uint8_t *)p;
		size_t expect_len = len;
		uint8_t *nfc = NULL;
		if (t->nfc && len) {
			char *z = malloc(len + 1);
			memcpy(z, p, len);
			z[len] = 0;
			nfc = utf8proc_NFC((const utf8proc_uint8_t *)z);
			free(z);
			if (nfc) {
				expect = nfc;
				expect_len = strlen((const char *)nfc);
			}
		}
		int rt = rc == MU_OK && mu_tokenizer_decode(t, ids, n, dflags, back, sizeof back, &bn, &err) == MU_OK &&
			 bn == expect_len && !memcmp(back, expect, bn);
		if (!rt)
			fprintf(stderr, "FAIL vector %d: decode(encode(text)) differs from the text\n", total);
		round += rt;
		int st = rc == MU_OK && stream_decode(t, ids, n, dflags, sback, sizeof sback, &sn) == 0 &&
			 sn == expect_len && !memcmp(sback, expect, sn);
		if (!st)
			fprintf(stderr, "FAIL vector %d: the streaming decoder's text differs\n", total);
		streamed += st;
		free(nfc);
		total++;
		p = q + sep_len;
	}
	printf("%s: %d/%d vectors match, %d/%d round trips, %d/%d streamed\n", vocab_path, match, total, round, total,
	       streamed, total);
	int passed = match + round + streamed, failed = 3 * total - passed;
	if (total == 0) {
		fprintf(stderr, "FAIL: no vectors in %s\n", inp_path);
		failed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	pal_free(inp, inp_len + 1);
	pal_free(out, out_len + 1);
	vocab_close(&v);
	return failed ? 1 : 0;
}

/* Unquotes the JSON string starting at s (after its opening quote) into out; its length, or
 * -1. */
static long json_unquote(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	while (*s && *s != '"') {
		if (o + 4 > cap)
			return -1;
		if (*s != '\\') {
			out[o++] = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'n': out[o++] = '\n'; s++; continue;
		case 't': out[o++] = '\t'; s++; continue;
		case 'r': out[o++] = '\r'; s++; continue;
		case 'b': out[o++] = '\b'; s++; continue;
		case 'f': out[o++] = '\f'; s++; continue;
		case '"': case '\\': case '/': out[o++] = *s++; continue;
		case 'u': break;
		default: return -1;
		}
		char hex[5] = {0};
		for (int i = 0; i < 4; i++) {
			if (!s[1 + i])
				return -1;
			hex[i] = s[1 + i];
		}
		s += 5;
		long cp = strtol(hex, NULL, 16);
		if (cp >= 0xd800 && cp < 0xdc00 && s[0] == '\\' && s[1] == 'u') {
			char lo[5] = {s[2], s[3], s[4], s[5], 0};
			cp = 0x10000 + ((cp - 0xd800) << 10) + (strtol(lo, NULL, 16) - 0xdc00);
			s += 6;
		}
		o += (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)out + o);
	}
	return *s == '"' ? (long)o : -1;
}

static int run_golden(const char *vocab_path, const char *golden_path)
{
	struct vocab v;
	struct mu_error err = {0};
	uint8_t *buf;
	size_t len;
	if (vocab_open(&v, vocab_path))
		return 2;
	if (pal_read_file(golden_path, 1 << 24, &buf, &len, &err)) {
		fprintf(stderr, "tool_vectors: %s\n", err.msg);
		return 2;
	}
	const struct mu_tokenizer *t = &v.t;
	char *prompt = malloc(len + 1);
	static int32_t ids[MAX_IDS], want[MAX_IDS];
	static uint8_t back[1 << 16];
	long plen = -1;
	int cases = 0, passed = 0, failed = 0;
	for (char *line = (char *)buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (!strncmp(line, "prompt_json_string: \"", 21)) {
			plen = json_unquote(line + 21, prompt, len);
			continue;
		}
		if (strncmp(line, "token_ids: ", 11))
			continue;
		size_t nw = parse_ids(line + 11, want, MAX_IDS), n = 0, bn = 0;
		if (plen < 0) {
			fprintf(stderr, "FAIL golden case %d: no prompt before its token_ids\n", cases);
			failed++;
			continue;
		}
		size_t need = mu_tokenizer_scratch_size((size_t)plen);
		void *mem = malloc(need);
		struct mu_arena a;
		mu_arena_init(&a, mem, need);
		enum mu_err rc = mu_tokenizer_encode(t, prompt, (size_t)plen, MU_TOKENIZER_PARSE_SPECIAL, ids, MAX_IDS, &n,
						     &a, &err);
		int ok = rc == MU_OK && n == nw && !memcmp(ids, want, n * sizeof *ids);
		if (!ok) {
			fprintf(stderr, "FAIL golden case %d: %s\n", cases, rc ? err.msg : "ids differ");
			print_ids("got ", ids, n);
			print_ids("want", want, nw);
		}
		passed += ok;
		failed += !ok;
		/* the same text as plain text: no control token, and it decodes back */
		rc = mu_tokenizer_encode(t, prompt, (size_t)plen, 0, ids, MAX_IDS, &n, &a, &err);
		int plain = rc == MU_OK;
		for (size_t i = 0; plain && i < n; i++)
			plain = t->type[ids[i]] != MU_TOKEN_CONTROL;
		plain = plain && mu_tokenizer_decode(t, ids, n, 0, back, sizeof back, &bn, &err) == MU_OK &&
			bn == (size_t)plen && !memcmp(back, prompt, bn);
		if (!plain)
			fprintf(stderr, "FAIL golden case %d: as plain text it makes control tokens or does not decode back\n",
				cases);
		passed += plain;
		failed += !plain;
		free(mem);
		cases++;
		plen = -1;
	}
	printf("%s: %d golden prompts with special tokens parsed\n", golden_path, cases);
	if (cases == 0)
		failed++;
	printf("%d passed, %d failed\n", passed, failed);
	free(prompt);
	pal_free(buf, len + 1);
	vocab_close(&v);
	return failed ? 1 : 0;
}

static int run_eog(const char *vocab_path, char **want, int n_want)
{
	struct vocab v;
	if (vocab_open(&v, vocab_path))
		return 2;
	int ok = (int)v.t.n_eog == n_want;
	for (int i = 0; ok && i < n_want; i++)
		ok = mu_tokenizer_is_eog(&v.t, (int32_t)strtol(want[i], NULL, 10));
	printf("%s: end of generation:", vocab_path);
	for (uint32_t i = 0; i < v.t.n_eog; i++)
		printf(" %d", v.t.eog[i]);
	printf("\n%d passed, %d failed\n", ok, !ok);
	vocab_close(&v);
	return ok ? 0 : 1;
}

static int run_bench(const char *vocab_path, size_t bytes, char **files, int n_files)
{
	struct vocab v;
	struct mu_error err = {0};
	uint8_t *src = NULL;
	size_t src_len = 0;
	if (vocab_open(&v, vocab_path))
		return 2;
	for (int i = 0; i < n_files; i++) {
		uint8_t *f;
		size_t fl;
		if (pal_read_file(files[i], 1 << 26, &f, &fl, &err)) {
			fprintf(stderr, "tool_vectors: %s\n", err.msg);
			return 2;
		}
		src = realloc(src, src_len + fl);
		memcpy(src + src_len, f, fl);
		src_len += fl;
		pal_free(f, fl + 1);
	}
	if (src_len == 0 || bytes == 0) {
		fprintf(stderr, "tool_vectors: nothing to encode\n");
		return 2;
	}
	uint8_t *text = malloc(bytes);
	for (size_t i = 0; i < bytes; i++)
		text[i] = src[i % src_len];
	size_t need = mu_tokenizer_scratch_size(bytes), n = 0;
	void *mem = malloc(need);
	int32_t *ids = malloc(bytes * 3 * sizeof *ids);
	struct mu_arena a;
	double best = 1e30;
	for (int rep = 0; rep < 3; rep++) {
		mu_arena_init(&a, mem, need);
		uint64_t t0 = pal_now_ns();
		if (mu_tokenizer_encode(&v.t, (const char *)text, bytes, 0, ids, bytes * 3, &n, &a, &err)) {
			fprintf(stderr, "tool_vectors: %s\n", err.msg);
			return 1;
		}
		double ms = (double)(pal_now_ns() - t0) / 1e6;
		best = ms < best ? ms : best;
	}
	printf("bench %s: init %.1f ms (%u tokens, %u merges); encode %zu bytes -> %zu tokens in %.1f ms (%.1f MB/s)\n",
	       vocab_path, v.init_ms, v.t.n_vocab, v.t.n_merges, bytes, n, best, (double)bytes / 1e3 / best);
	printf("init_ms=%.0f encode_ms=%.0f\n", v.init_ms, best);
	free(ids);
	free(mem);
	free(text);
	free(src);
	vocab_close(&v);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "--bench"))
		return run_bench(argv[2], (size_t)strtoull(argv[3], NULL, 10), argv + 4, argc - 4);
	if (argc == 4 && !strcmp(argv[1], "--golden"))
		return run_golden(argv[2], argv[3]);
	if (argc >= 3 && !strcmp(argv[1], "--eog"))
		return run_eog(argv[2], argv + 3, argc - 3);
	if (argc == 4)
		return run_vectors(argv[1], argv[2], argv[3]);
	fprintf(stderr, "usage: tool_vectors VOCAB.gguf TEXTS.inp IDS.out\n"
			"       tool_vectors --golden VOCAB.gguf GOLDEN.txt\n"
			"       tool_vectors --eog VOCAB.gguf ID...\n"
			"       tool_vectors --bench VOCAB.gguf BYTES TEXT...\n");
	return 2;
}
