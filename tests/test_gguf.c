/* test_gguf.c — the GGUF reader and writer: real files from ../shared, writer round trips,
 * a table of malformed files that must each be refused with a clear message, truncation at
 * every byte, and a deterministic mutation loop.
 *
 * `test_gguf --write-corpus DIR` writes the fuzz seed corpus (valid files from the writer and
 * every malformed case of the table) to DIR instead of running the tests. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/endian.h"
#include "engine/gguf.h"
#include "pal/pal.h"
#include "test.h"

/* ---- byte builder for hand-made files ---- */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void b_bytes(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t c = b->cap ? b->cap : 256;
		while (c < b->len + n)
			c *= 2;
		uint8_t *q = realloc(b->p, c);
		if (!q) {
			fprintf(stderr, "out of memory\n");
			exit(2);
		}
		b->p = q;
		b->cap = c;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void b_u8(struct buf *b, uint8_t v) { b_bytes(b, &v, 1); }
static void b_u32(struct buf *b, uint32_t v)
{
	uint8_t t[4];
	le32_store(t, v);
	b_bytes(b, t, 4);
}
static void b_u64(struct buf *b, uint64_t v)
{
	uint8_t t[8];
	le64_store(t, v);
	b_bytes(b, t, 8);
}
static void b_strn(struct buf *b, const char *s, size_t n)
{
	b_u64(b, n);
	b_bytes(b, s, n);
}
static void b_str(struct buf *b, const char *s) { b_strn(b, s, strlen(s)); }
static void b_zeros(struct buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b_u8(b, 0);
}
static void b_pad(struct buf *b, size_t align) { b_zeros(b, (align - b->len % align) % align); }
static void b_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static void b_hdr(struct buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
	b_u32(b, GGUF_MAGIC);
	b_u32(b, version);
	b_u64(b, n_tensors);
	b_u64(b, n_kv);
}
static void b_kv_u32(struct buf *b, const char *key, uint32_t v)
{
	b_str(b, key);
	b_u32(b, GGUF_TYPE_UINT32);
	b_u32(b, v);
}
static void b_kv_str(struct buf *b, const char *key, const char *v)
{
	b_str(b, key);
	b_u32(b, GGUF_TYPE_STRING);
	b_str(b, v);
}
static void b_tensor(struct buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
		     uint64_t offset)
{
	b_str(b, name);
	b_u32(b, n_dims);
	for (uint32_t d = 0; d < n_dims; d++)
		b_u64(b, ne[d]);
	b_u32(b, type);
	b_u64(b, offset);
}

/* ---- parsing helpers ---- */

/* Parses data[0..len) with table memory of exactly the size gguf_mem_size asks for. */
static enum mu_err parse(struct gguf *g, const uint8_t *data, size_t len, void **mem, struct mu_error *err)
{
	size_t size = 0;
	*mem = NULL;
	err->code = MU_OK;
	err->msg[0] = '\0';
	enum mu_err e = gguf_mem_size(data, len, &size, err);
	if (e != MU_OK)
		return e;
	if (size) {
		*mem = malloc(size);
		if (!*mem) {
			fprintf(stderr, "out of memory\n");
			exit(2);
		}
	}
	return gguf_parse(g, data, len, *mem, size, err);
}

/* Copies into an exactly sized heap block, so any read past the end is caught by ASan. */
static enum mu_err parse_copy(const uint8_t *data, size_t len, struct mu_error *err)
{
	struct gguf g;
	void *mem;
	uint8_t *copy = malloc(len ? len : 1);
	if (len)
		memcpy(copy, data, len);
	enum mu_err e = parse(&g, copy, len, &mem, err);
	free(mem);
	free(copy);
	return e;
}

static const char *shared_dir(void)
{
	const char *s = getenv("SHARED");
	return s && *s ? s : "../shared";
}

static int map_shared(struct pal_map *m, const char *rel)
{
	char path[512];
	struct mu_error err;
	snprintf(path, sizeof path, "%s/%s", shared_dir(), rel);
	if (pal_map_file(m, path, &err) != MU_OK) {
		CHECK(0, "%s", err.msg);
		return 0;
	}
	return 1;
}

/* The writer needs a file descriptor: a temporary file under $TMPDIR (default /tmp). */
static int temp_fd(char *path, size_t cap)
{
	const char *dir = getenv("TMPDIR");
	snprintf(path, cap, "%s/test_gguf_XXXXXX", dir && *dir ? dir : "/tmp");
	return mkstemp(path);
}

/* Reads the whole file behind fd into out. */
static int read_back(int fd, struct buf *out)
{
	off_t end = lseek(fd, 0, SEEK_END);
	if (end < 0 || lseek(fd, 0, SEEK_SET) != 0)
		return 0;
	out->len = 0;
	b_zeros(out, (size_t)end);
	size_t got = 0;
	while (got < (size_t)end) {
		ssize_t k = read(fd, out->p + got, (size_t)end - got);
		if (k <= 0)
			return 0;
		got += (size_t)k;
	}
	return 1;
}

/* ---- the writer's sample model ---- */

#define N_SAMPLE_TENSORS 5
static const struct {
	const char *name;
	enum mu_dtype type;
	uint32_t n_dims;
	uint64_t ne[4];
	uint64_t size;
} sample_tensors[N_SAMPLE_TENSORS] = {
	{"blk.0.attn_q.weight", MU_DTYPE_Q4_0, 3, {32, 3, 2, 1}, 6 * 18},
	{"blk.0.ffn_down.weight", MU_DTYPE_Q8_0, 2, {64, 2, 1, 1}, 4 * 34},
	{"token_embd.weight", MU_DTYPE_F16, 2, {16, 2, 1, 1}, 64},
	{"output_norm.weight", MU_DTYPE_F32, 1, {5, 1, 1, 1}, 20},
	/* last and a whole number of 32-byte units, so the file has no trailing padding and
	 * every proper prefix is invalid */
	{"output.weight", MU_DTYPE_F32, 2, {8, 4, 1, 1}, 128},
};
static const char *const sample_tokens[] = {"<unk>", "<s>", "", "\xe2\x96\x81the", "a\0b"};
static const uint64_t sample_token_lens[] = {5, 3, 0, 6, 3};
static const float sample_scores[] = {0.0f, -1.5f, 2.25f, -1e30f, 3.0e-7f};
static const int32_t sample_types[] = {2, 3, 1, -7, 2147483647};

static uint8_t sample_byte(uint64_t t, uint64_t i) { return (uint8_t)(t * 131 + i * 7 + (i >> 3)); }

/* Writes the sample model (with or without tensors) at the given alignment into out. */
static int write_sample(uint32_t alignment, int with_tensors, struct buf *out)
{
	struct mu_error err = {0};
	struct gguf_writer *w = gguf_writer_new(alignment);
	char path[256];
	int ok = 1;
	if (!w)
		return 0;
#define W(call) ok = ok && (call) == MU_OK
	W(gguf_w_str(w, "general.architecture", "llama", &err));
	W(gguf_w_str(w, "general.name", "tiny test", &err));
	W(gguf_w_u32(w, "llama.block_count", 2, &err));
	W(gguf_w_i32(w, "test.i32", -12345, &err));
	W(gguf_w_u64(w, "test.u64", (uint64_t)1 << 40, &err));
	W(gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &err));
	W(gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1, &err));
	W(gguf_w_bool(w, "tokenizer.ggml.add_eos_token", 0, &err));
	W(gguf_w_arr_str(w, "tokenizer.ggml.tokens", sample_tokens, sample_token_lens, 5, &err));
	W(gguf_w_arr_f32(w, "tokenizer.ggml.scores", sample_scores, 5, &err));
	W(gguf_w_arr_i32(w, "tokenizer.ggml.token_type", sample_types, 5, &err));
	W(gguf_w_arr_i32(w, "test.empty", NULL, 0, &err));
	for (int t = 0; with_tensors && t < N_SAMPLE_TENSORS; t++)
		W(gguf_w_tensor(w, sample_tensors[t].name, sample_tensors[t].type, sample_tensors[t].n_dims,
				sample_tensors[t].ne, &err));
	int fd = temp_fd(path, sizeof path);
	if (fd < 0) {
		gguf_writer_free(w);
		return 0;
	}
	unlink(path);
	W(gguf_w_begin(w, fd, &err));
	for (int t = 0; with_tensors && t < N_SAMPLE_TENSORS; t++) {
		uint8_t data[256];
		for (uint64_t i = 0; i < sample_tensors[t].size; i++)
			data[i] = sample_byte((uint64_t)t, i);
		W(gguf_w_data(w, data, sample_tensors[t].size, &err));
	}
	W(gguf_w_end(w, &err));
#undef W
	if (!ok)
		fprintf(stderr, "write_sample: %s\n", err.msg);
	ok = ok && read_back(fd, out);
	close(fd);
	gguf_writer_free(w);
	return ok;
}

/* ---- real files ---- */

static void test_stories260k(void)
{
	struct pal_map m;
	struct gguf g;
	struct mu_error err;
	void *mem;
	int found = 0;
	if (!map_shared(&m, "models/stories260K/stories260K.gguf"))
		return;
	enum mu_err e = parse(&g, m.data, m.len, &mem, &err);
	CHECK(e == MU_OK, "stories260K: %s", err.msg);
	if (e == MU_OK) {
		CHECK_EQ_INT(g.version, 3);
		CHECK_EQ_INT(g.n_tensors, 48);
		CHECK_EQ_INT(g.n_kv, 19);
		CHECK_EQ_INT(g.alignment, 32);
		CHECK_EQ_INT(g.data_offset, 14176);
		CHECK_EQ_INT(g.data_offset + g.data_size, m.len);
		int all_f32 = 1;
		for (uint64_t i = 0; i < g.n_tensors; i++)
			all_f32 &= g.tensors[i].type == MU_DTYPE_F32;
		CHECK(all_f32, "not every tensor is f32");

		struct gguf_str arch = {0};
		e = gguf_get_str(&g, "general.architecture", &arch, &found, &err);
		CHECK(e == MU_OK && found && gguf_str_eq(arch, "llama"), "architecture: %s", err.msg);

		const struct gguf_kv *tok = NULL;
		e = gguf_get_arr(&g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tok, &found, &err);
		CHECK(e == MU_OK && found && tok, "tokens: %s", err.msg);
		if (tok) {
			CHECK_EQ_INT(tok->arr_len, 512);
			struct gguf_str_iter it;
			struct gguf_str s;
			uint64_t n = 0, inside = 0, bytes = 0;
			gguf_str_iter_init(&it, tok);
			while (gguf_str_iter_next(&it, &s)) {
				if (n == 0)
					CHECK(gguf_str_eq(s, "<unk>"), "token 0");
				if (n == 2)
					CHECK(gguf_str_eq(s, "</s>"), "token 2");
				inside += (const uint8_t *)s.ptr >= m.data && (const uint8_t *)s.ptr + s.len <= m.data + m.len;
				bytes += s.len;
				n++;
			}
			CHECK_EQ_INT(n, 512);
			CHECK_EQ_INT(inside, 512);
			CHECK_EQ_INT(bytes + 8 * 512, tok->size);
		}
		const struct gguf_kv *scores = NULL, *types = NULL;
		CHECK(gguf_get_arr(&g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &scores, &found, &err) == MU_OK &&
			      scores && scores->arr_len == 512, "scores: %s", err.msg);
		CHECK(gguf_get_arr(&g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &types, &found, &err) == MU_OK &&
			      types && gguf_arr_i32(types, 0) == 2 && gguf_arr_i32(types, 1) == 3,
		      "token_type: %s", err.msg);

		static const struct {
			const char *key;
			uint32_t v;
		} u32s[] = {{"llama.embedding_length", 64}, {"llama.feed_forward_length", 172},
			    {"llama.block_count", 5},       {"llama.attention.head_count", 8},
			    {"llama.attention.head_count_kv", 4}, {"llama.context_length", 2048},
			    {"tokenizer.ggml.seperator_token_id", 0xffffffffu}};
		for (size_t i = 0; i < sizeof u32s / sizeof u32s[0]; i++) {
			uint32_t v = 0;
			e = gguf_get_u32(&g, u32s[i].key, &v, &found, &err);
			CHECK(e == MU_OK && found && v == u32s[i].v, "%s: %u (%s)", u32s[i].key, v, err.msg);
		}
		float eps = 0;
		e = gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &eps, &found, &err);
		CHECK(e == MU_OK && found && eps > 0.99e-5f && eps < 1.01e-5f, "eps");

		const struct gguf_tensor *t = gguf_find_tensor(&g, "token_embd.weight");
		CHECK(t && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 512 && t->ne[2] == 1 && t->ne[3] == 1,
		      "token_embd.weight shape");
		CHECK(t && t->offset == 0 && t->size == 64 * 512 * 4 && t->data == m.data + 14176,
		      "token_embd.weight data");
		t = gguf_find_tensor(&g, "blk.0.ffn_down.weight");
		CHECK(t && t->ne[0] == 172 && t->ne[1] == 64 && t->n_elements == 172 * 64, "blk.0.ffn_down.weight");
		CHECK(gguf_find_tensor(&g, "blk.5.ffn_down.weight") == NULL, "absent tensor");
		CHECK(gguf_find_kv(&g, "general.alignment") == NULL, "absent key");
	}
	free(mem);

	/* One byte short of the tables it asked for. */
	size_t size = 0;
	CHECK(gguf_mem_size(m.data, m.len, &size, &err) == MU_OK && size > 0, "mem size");
	mem = malloc(size);
	e = gguf_parse(&g, m.data, m.len, mem, size - 1, &err);
	CHECK(e == MU_ERR_NOMEM && strstr(err.msg, "table memory"), "small mem: %s", err.msg);
	free(mem);
	/* Any pointer will do: the size includes the slack to align it. */
	mem = malloc(size + 3);
	e = gguf_parse(&g, m.data, m.len, (uint8_t *)mem + 3, size, &err);
	CHECK(e == MU_OK && g.n_tensors == 48 && (uintptr_t)g.kv % sizeof(uint64_t) == 0, "unaligned mem: %s", err.msg);
	free(mem);
	pal_unmap(&m);
}

static void test_vocab_file(const char *rel, uint64_t n_kv, uint64_t n_tokens, const char *model)
{
	struct pal_map m;
	struct gguf g;
	struct mu_error err;
	void *mem;
	int found = 0;
	if (!map_shared(&m, rel))
		return;
	enum mu_err e = parse(&g, m.data, m.len, &mem, &err);
	CHECK(e == MU_OK, "%s: %s", rel, err.msg);
	if (e == MU_OK) {
		CHECK_EQ_INT(g.n_tensors, 0);
		CHECK_EQ_INT(g.n_kv, n_kv);
		CHECK_EQ_INT(g.data_size, 0);
		/* both files end right after their metadata, before the padding */
		CHECK(g.data_offset > m.len && g.data_offset - m.len < g.alignment, "%s: ends before padding", rel);
		struct gguf_str s = {0};
		CHECK(gguf_get_str(&g, "tokenizer.ggml.model", &s, &found, &err) == MU_OK && gguf_str_eq(s, model),
		      "%s: tokenizer model", rel);
		const struct gguf_kv *tok = NULL;
		e = gguf_get_arr(&g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tok, &found, &err);
		CHECK(e == MU_OK && tok && tok->arr_len == n_tokens, "%s: tokens", rel);
		struct gguf_str_iter it;
		uint64_t n = 0;
		gguf_str_iter_init(&it, tok);
		while (gguf_str_iter_next(&it, &s))
			n++;
		CHECK_EQ_INT(n, n_tokens);
	}
	free(mem);
	pal_unmap(&m);
}

/* ---- writer round trip ---- */

static void check_sample(const struct buf *f, uint32_t alignment, int with_tensors)
{
	struct gguf g;
	struct mu_error err;
	void *mem;
	int found = 0;
	enum mu_err e = parse(&g, f->p, f->len, &mem, &err);
	CHECK(e == MU_OK, "sample (alignment %u): %s", alignment, err.msg);
	if (e != MU_OK) {
		free(mem);
		return;
	}
	uint64_t extra = alignment != GGUF_DEFAULT_ALIGNMENT;
	CHECK_EQ_INT(g.version, 3);
	CHECK_EQ_INT(g.n_kv, 12 + extra);
	CHECK_EQ_INT(g.alignment, alignment);
	CHECK_EQ_INT(g.data_offset % alignment, 0);
	if (extra) {
		uint32_t a = 0;
		CHECK(gguf_get_u32(&g, "general.alignment", &a, &found, &err) == MU_OK && a == alignment, "alignment kv");
		CHECK(g.kv[0].type == GGUF_TYPE_UINT32 && gguf_str_eq(g.kv[0].key, "general.alignment"), "first kv");
	}
	CHECK(gguf_str_eq(g.kv[extra].key, "general.architecture") && g.kv[extra].type == GGUF_TYPE_STRING, "kv order");

	struct gguf_str s = {0};
	uint32_t u32 = 0;
	uint64_t u64 = 0;
	float f32 = 0;
	int b = -1;
	CHECK(gguf_get_str(&g, "general.name", &s, &found, &err) == MU_OK && gguf_str_eq(s, "tiny test"), "name");
	CHECK(gguf_get_u32(&g, "llama.block_count", &u32, &found, &err) == MU_OK && u32 == 2, "u32");
	CHECK(gguf_get_u64(&g, "test.u64", &u64, &found, &err) == MU_OK && u64 == (uint64_t)1 << 40, "u64");
	const struct gguf_kv *kv = gguf_find_kv(&g, "test.i32");
	CHECK(kv && kv->type == GGUF_TYPE_INT32 && (int32_t)le32_load(kv->data) == -12345, "i32");
	CHECK(gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &f32, &found, &err) == MU_OK && f32 == 1e-5f,
	      "f32");
	CHECK(gguf_get_bool(&g, "tokenizer.ggml.add_bos_token", &b, &found, &err) == MU_OK && b == 1, "bool 1");
	CHECK(gguf_get_bool(&g, "tokenizer.ggml.add_eos_token", &b, &found, &err) == MU_OK && b == 0, "bool 0");

	const struct gguf_kv *arr = NULL;
	CHECK(gguf_get_arr(&g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &arr, &found, &err) == MU_OK && arr &&
		      arr->arr_len == 5, "string array");
	struct gguf_str_iter it;
	uint64_t n = 0;
	gguf_str_iter_init(&it, arr);
	while (gguf_str_iter_next(&it, &s)) {
		CHECK(n < 5 && s.len == sample_token_lens[n] && memcmp(s.ptr, sample_tokens[n], s.len) == 0,
		      "token %llu", (unsigned long long)n);
		n++;
	}
	CHECK_EQ_INT(n, 5);
	CHECK(gguf_get_arr(&g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &arr, &found, &err) == MU_OK &&
		      arr->arr_len == 5 && arr->size == 20, "f32 array");
	for (uint64_t i = 0; i < 5; i++)
		CHECK(gguf_arr_f32(arr, i) == sample_scores[i], "score %llu", (unsigned long long)i);
	CHECK(gguf_get_arr(&g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &arr, &found, &err) == MU_OK &&
		      arr->arr_len == 5, "i32 array");
	for (uint64_t i = 0; i < 5; i++)
		CHECK(gguf_arr_i32(arr, i) == sample_types[i], "type %llu", (unsigned long long)i);
	CHECK(gguf_get_arr(&g, "test.empty", GGUF_TYPE_INT32, &arr, &found, &err) == MU_OK && found &&
		      arr->arr_len == 0 && arr->size == 0, "empty array");

	CHECK_EQ_INT(g.n_tensors, with_tensors ? N_SAMPLE_TENSORS : 0);
	uint64_t off = 0;
	for (int t = 0; with_tensors && t < N_SAMPLE_TENSORS; t++) {
		const struct gguf_tensor *gt = gguf_find_tensor(&g, sample_tensors[t].name);
		CHECK(gt == &g.tensors[t], "tensor %d order", t);
		if (!gt)
			continue;
		CHECK(gt->type == sample_tensors[t].type && gt->n_dims == sample_tensors[t].n_dims &&
			      memcmp(gt->ne, sample_tensors[t].ne, sizeof gt->ne) == 0,
		      "tensor %d shape", t);
		CHECK(gt->offset == off && gt->size == sample_tensors[t].size && gt->data == f->p + g.data_offset + off,
		      "tensor %d place", t);
		int same = 1;
		for (uint64_t i = 0; i < gt->size; i++)
			same &= gt->data[i] == sample_byte((uint64_t)t, i);
		CHECK(same, "tensor %d data", t);
		off = (off + gt->size + alignment - 1) / alignment * alignment;
	}
	if (with_tensors) {
		CHECK_EQ_INT(g.data_size, off - (alignment - 128 % alignment) % alignment);
		CHECK_EQ_INT(f->len, g.data_offset + off);
	} else {
		CHECK_EQ_INT(f->len, g.data_offset);
	}
	free(mem);
}

static void test_writer_round_trip(void)
{
	static const uint32_t aligns[] = {32, 1, 8, 64, 4096};
	for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
		for (int with = 0; with <= 1; with++) {
			struct buf f = {0};
			CHECK(write_sample(aligns[i], with, &f), "write sample %u", aligns[i]);
			check_sample(&f, aligns[i], with);
			b_free(&f);
		}
	}
}

static void test_writer_errors(void)
{
	struct mu_error err;
	char path[256];
	CHECK(gguf_writer_new(0) == NULL && gguf_writer_new(3) == NULL && gguf_writer_new(1u << 20) == NULL,
	      "bad alignment accepted");
	struct gguf_writer *w = gguf_writer_new(32);
	CHECK(w != NULL, "writer");
	if (!w)
		return;
	static const uint64_t ne[] = {64, 2}, zero[] = {64, 0}, odd[] = {33, 2};
	CHECK(gguf_w_u32(w, "a", 1, &err) == MU_OK, "a");
	CHECK(gguf_w_u32(w, "a", 2, &err) == MU_ERR_ARG && strstr(err.msg, "duplicate key a"), "%s", err.msg);
	CHECK(gguf_w_f32(w, "", 1, &err) == MU_ERR_ARG, "empty key");
	CHECK(gguf_w_bool(w, NULL, 1, &err) == MU_ERR_ARG, "NULL key");
	CHECK(gguf_w_u32(w, "general.alignment", 64, &err) == MU_ERR_ARG, "alignment key");
	CHECK(gguf_w_str(w, "s", NULL, &err) == MU_ERR_ARG, "NULL string");
	CHECK(gguf_w_tensor(w, "t", MU_DTYPE_Q8_0, 2, ne, &err) == MU_OK, "tensor");
	CHECK(gguf_w_tensor(w, "t", MU_DTYPE_F32, 2, ne, &err) == MU_ERR_ARG && strstr(err.msg, "duplicate tensor t"),
	      "%s", err.msg);
	CHECK(gguf_w_tensor(w, "u", MU_DTYPE_F32, 0, ne, &err) == MU_ERR_ARG, "n_dims 0");
	CHECK(gguf_w_tensor(w, "u", MU_DTYPE_F32, 5, ne, &err) == MU_ERR_ARG, "n_dims 5");
	CHECK(gguf_w_tensor(w, "u", MU_DTYPE_F32, 2, zero, &err) == MU_ERR_ARG, "zero dim");
	CHECK(gguf_w_tensor(w, "u", (enum mu_dtype)4, 2, ne, &err) == MU_ERR_UNSUPPORTED, "unknown type");
	CHECK(gguf_w_tensor(w, "u", MU_DTYPE_Q4_0, 2, odd, &err) == MU_ERR_ARG && strstr(err.msg, "block size 32"),
	      "%s", err.msg);
	CHECK(gguf_w_data(w, "x", 1, &err) == MU_ERR_STATE, "data before begin");
	CHECK(gguf_w_end(w, &err) == MU_ERR_STATE, "end before begin");
	int fd = temp_fd(path, sizeof path);
	CHECK(fd >= 0, "temp file");
	if (fd >= 0) {
		static uint8_t data[4 * 34];
		unlink(path);
		CHECK(gguf_w_begin(w, fd, &err) == MU_OK, "begin: %s", err.msg);
		CHECK(gguf_w_u32(w, "b", 1, &err) == MU_ERR_STATE, "kv after begin");
		CHECK(gguf_w_tensor(w, "v", MU_DTYPE_F32, 2, ne, &err) == MU_ERR_STATE, "tensor after begin");
		CHECK(gguf_w_begin(w, fd, &err) == MU_ERR_STATE, "begin twice");
		CHECK(gguf_w_end(w, &err) == MU_ERR_STATE && strstr(err.msg, "tensor t was not written"), "%s", err.msg);
		CHECK(gguf_w_data(w, data, sizeof data - 1, &err) == MU_ERR_ARG, "short data");
		CHECK(gguf_w_data(w, data, sizeof data, &err) == MU_OK, "data: %s", err.msg);
		CHECK(gguf_w_data(w, data, sizeof data, &err) == MU_ERR_STATE, "data past the last tensor");
		CHECK(gguf_w_end(w, &err) == MU_OK, "end: %s", err.msg);
		struct buf f = {0};
		CHECK(read_back(fd, &f) && parse_copy(f.p, f.len, &err) == MU_OK, "written file: %s", err.msg);
		b_free(&f);
		close(fd);
	}
	gguf_writer_free(w);
	gguf_writer_free(NULL);
}

/* ---- typed getters over every value type ---- */

static void all_types_file(struct buf *b)
{
	b_hdr(b, 2, 0, 15);
	b_str(b, "u8"), b_u32(b, GGUF_TYPE_UINT8), b_u8(b, 200);
	b_str(b, "i8"), b_u32(b, GGUF_TYPE_INT8), b_u8(b, 0xfb);
	b_str(b, "u16"), b_u32(b, GGUF_TYPE_UINT16), b_u8(b, 0x34), b_u8(b, 0x12);
	b_str(b, "i16"), b_u32(b, GGUF_TYPE_INT16), b_u8(b, 0xff), b_u8(b, 0x7f);
	b_kv_u32(b, "u32", 4000000000u);
	b_str(b, "i32"), b_u32(b, GGUF_TYPE_INT32), b_u32(b, (uint32_t)-7);
	b_str(b, "f32"), b_u32(b, GGUF_TYPE_FLOAT32), b_u32(b, 0x3fc00000u); /* 1.5 */
	b_str(b, "bool"), b_u32(b, GGUF_TYPE_BOOL), b_u8(b, 1);
	b_kv_str(b, "str", "hello");
	b_str(b, "u64"), b_u32(b, GGUF_TYPE_UINT64), b_u64(b, (uint64_t)1 << 40);
	b_str(b, "i64"), b_u32(b, GGUF_TYPE_INT64), b_u64(b, (uint64_t)-1);
	b_str(b, "f64"), b_u32(b, GGUF_TYPE_FLOAT64), b_u64(b, 0x3ff0000000000000u);
	b_str(b, "arr.u8"), b_u32(b, GGUF_TYPE_ARRAY), b_u32(b, GGUF_TYPE_UINT8), b_u64(b, 3);
	b_u8(b, 1), b_u8(b, 2), b_u8(b, 255);
	b_str(b, "arr.i16"), b_u32(b, GGUF_TYPE_ARRAY), b_u32(b, GGUF_TYPE_INT16), b_u64(b, 2);
	b_u8(b, 0xfe), b_u8(b, 0xff), b_u8(b, 0x10), b_u8(b, 0x00);
	b_str(b, "arr.str"), b_u32(b, GGUF_TYPE_ARRAY), b_u32(b, GGUF_TYPE_STRING), b_u64(b, 0);
}

static void test_getters(void)
{
	struct buf b = {0};
	struct gguf g;
	struct mu_error err;
	void *mem;
	all_types_file(&b);
	enum mu_err e = parse(&g, b.p, b.len, &mem, &err);
	CHECK(e == MU_OK, "all types: %s", err.msg);
	if (e == MU_OK) {
		int found = -1;
		uint32_t u32 = 0;
		uint64_t u64 = 0;
		float f = 0;
		int bo = 0;
		struct gguf_str s = {0};
		const struct gguf_kv *a = NULL;
		CHECK_EQ_INT(g.version, 2);
		CHECK(gguf_get_u32(&g, "u8", &u32, &found, &err) == MU_OK && found == 1 && u32 == 200, "u8");
		CHECK(gguf_get_u32(&g, "u16", &u32, &found, &err) == MU_OK && u32 == 0x1234, "u16");
		CHECK(gguf_get_u32(&g, "i16", &u32, &found, &err) == MU_OK && u32 == 0x7fff, "i16");
		CHECK(gguf_get_u32(&g, "u32", &u32, NULL, &err) == MU_OK && u32 == 4000000000u, "u32");
		CHECK(gguf_get_u64(&g, "u64", &u64, &found, &err) == MU_OK && u64 == (uint64_t)1 << 40, "u64");
		CHECK(gguf_get_u64(&g, "u32", &u64, &found, &err) == MU_OK && u64 == 4000000000u, "u32 as u64");
		u32 = 77;
		e = gguf_get_u32(&g, "i8", &u32, &found, &err);
		CHECK(e == MU_ERR_FORMAT && u32 == 77 && strstr(err.msg, "key i8: i8 value out of range for u32"), "%s",
		      err.msg);
		e = gguf_get_u32(&g, "u64", &u32, &found, &err);
		CHECK(e == MU_ERR_FORMAT && strstr(err.msg, "key u64"), "%s", err.msg);
		CHECK(gguf_get_u64(&g, "i64", &u64, &found, &err) == MU_ERR_FORMAT, "negative i64");
		CHECK(gguf_get_u64(&g, "i32", &u64, &found, &err) == MU_ERR_FORMAT, "negative i32");
		e = gguf_get_u32(&g, "f32", &u32, &found, &err);
		CHECK(e == MU_ERR_FORMAT && strstr(err.msg, "key f32: type is f32, expected an integer"), "%s", err.msg);
		CHECK(gguf_get_f32(&g, "f32", &f, &found, &err) == MU_OK && f == 1.5f, "f32");
		e = gguf_get_f32(&g, "f64", &f, &found, &err);
		CHECK(e == MU_ERR_FORMAT && strstr(err.msg, "key f64: type is f64, expected f32"), "%s", err.msg);
		CHECK(gguf_get_bool(&g, "bool", &bo, &found, &err) == MU_OK && bo == 1, "bool");
		CHECK(gguf_get_bool(&g, "u8", &bo, &found, &err) == MU_ERR_FORMAT, "u8 as bool");
		CHECK(gguf_get_str(&g, "str", &s, &found, &err) == MU_OK && gguf_str_eq(s, "hello"), "str");
		e = gguf_get_str(&g, "arr.str", &s, &found, &err);
		CHECK(e == MU_ERR_FORMAT && strstr(err.msg, "key arr.str: type is array of string, expected string"), "%s",
		      err.msg);
		CHECK(gguf_get_arr(&g, "arr.u8", GGUF_TYPE_UINT8, &a, &found, &err) == MU_OK && a && a->arr_len == 3 &&
			      gguf_arr_u32(a, 2) == 255 && gguf_arr_i32(a, 0) == 1, "arr.u8");
		CHECK(gguf_get_arr(&g, "arr.i16", GGUF_TYPE_INT16, &a, &found, &err) == MU_OK && gguf_arr_i32(a, 0) == -2 &&
			      gguf_arr_i32(a, 1) == 16, "arr.i16");
		e = gguf_get_arr(&g, "arr.u8", GGUF_TYPE_INT32, &a, &found, &err);
		CHECK(e == MU_ERR_FORMAT && strstr(err.msg, "key arr.u8: type is array of u8, expected array of i32"), "%s",
		      err.msg);
		e = gguf_get_arr(&g, "u8", GGUF_TYPE_UINT8, &a, &found, &err);
		CHECK(e == MU_ERR_FORMAT && strstr(err.msg, "type is u8, expected array of u8"), "%s", err.msg);
		CHECK(gguf_get_arr(&g, "arr.str", GGUF_TYPE_STRING, &a, &found, &err) == MU_OK && a->arr_len == 0, "empty");
		struct gguf_str_iter it;
		gguf_str_iter_init(&it, a);
		CHECK(gguf_str_iter_next(&it, &s) == 0, "empty iteration");
		gguf_str_iter_init(&it, gguf_find_kv(&g, "str"));
		CHECK(gguf_str_iter_next(&it, &s) == 1 && gguf_str_eq(s, "hello") && gguf_str_iter_next(&it, &s) == 0,
		      "scalar string iteration");

		/* absent keys: MU_OK, found = 0, output untouched */
		u32 = 5, u64 = 6, f = 7, bo = 8, s.len = 9, a = NULL, found = -1;
		CHECK(gguf_get_u32(&g, "nope", &u32, &found, &err) == MU_OK && found == 0 && u32 == 5, "absent u32");
		CHECK(gguf_get_u64(&g, "nope", &u64, NULL, &err) == MU_OK && u64 == 6, "absent u64");
		CHECK(gguf_get_f32(&g, "nope", &f, &found, &err) == MU_OK && f == 7, "absent f32");
		CHECK(gguf_get_bool(&g, "nope", &bo, &found, &err) == MU_OK && bo == 8, "absent bool");
		CHECK(gguf_get_str(&g, "nope", &s, &found, &err) == MU_OK && s.len == 9, "absent str");
		CHECK(gguf_get_arr(&g, "nope", GGUF_TYPE_UINT8, &a, &found, &err) == MU_OK && a == NULL && found == 0,
		      "absent arr");
		CHECK(gguf_find_kv(&g, "u") == NULL && gguf_find_kv(&g, "u88") == NULL, "prefix keys");
	}
	free(mem);
	b_free(&b);

	struct gguf_str s = {"abc", 3}, z = {"", 0};
	CHECK(gguf_str_eq(s, "abc") && !gguf_str_eq(s, "ab") && !gguf_str_eq(s, "abcd") && gguf_str_eq(z, ""), "str_eq");
	CHECK(strcmp(gguf_type_name(GGUF_TYPE_FLOAT64), "f64") == 0 &&
		      strcmp(gguf_type_name((enum gguf_type)99), "unknown") == 0, "type names");

	/* a file with neither kv nor tensors needs no table memory */
	struct gguf g2;
	size_t size = 1;
	uint8_t empty[32] = {0};
	le32_store(empty, GGUF_MAGIC);
	le32_store(empty + 4, 3);
	CHECK(gguf_mem_size(empty, 24, &size, &err) == MU_OK && size == 0, "empty mem size");
	CHECK(gguf_parse(&g2, empty, 24, NULL, 0, &err) == MU_OK && g2.data_offset == 32, "empty: %s", err.msg);
	CHECK(gguf_parse(&g2, empty, 32, NULL, 0, &err) == MU_OK, "empty padded: %s", err.msg);
}

/* ---- malformed files ---- */

enum bad {
	BAD_MAGIC, BAD_VERSION_1, BAD_VERSION_4, BAD_SHORT_HEADER, BAD_N_KV_LIMIT, BAD_N_KV_FILE,
	BAD_N_TENSORS_LIMIT, BAD_N_TENSORS_FILE, BAD_KEY_LIMIT, BAD_KEY_PAST_END, BAD_KEY_EMPTY, BAD_KEY_UTF8,
	BAD_KEY_OVERLONG, BAD_KEY_SURROGATE, BAD_KV_TYPE, BAD_STRING_PAST_END, BAD_STRING_LIMIT, BAD_ARR_TYPE,
	BAD_NESTED, BAD_ARR_LIMIT, BAD_ARR_PAST_END, BAD_ARR_STRING, BAD_VALUE_PAST_END, BAD_BOOL, BAD_ARR_BOOL,
	BAD_DUP_KEY, BAD_ALIGN_0, BAD_ALIGN_3, BAD_ALIGN_TYPE, BAD_ALIGN_LIMIT, BAD_NAME_EMPTY, BAD_NAME_UTF8,
	BAD_DUP_NAME, BAD_N_DIMS_0, BAD_N_DIMS_5, BAD_DIM_0, BAD_ELEMENTS, BAD_BYTES, BAD_TYPE_4, BAD_TYPE_99,
	BAD_BLOCK, BAD_MISALIGNED, BAD_MISALIGNED_64, BAD_OFFSET, BAD_EXTENT, BAD_OVERLAP, BAD_SAME_OFFSET,
	BAD_DATA_SECTION, BAD_TRAILING_DATA, BAD_TRAILING_META, BAD_COUNT
};

static const struct {
	const char *name;
	enum mu_err code;
	const char *msg; /* the message must contain this */
} bad_cases[BAD_COUNT] = {
	[BAD_MAGIC] = {"magic", MU_ERR_FORMAT, "bad magic"},
	[BAD_VERSION_1] = {"version-1", MU_ERR_FORMAT, "version 1 is not supported"},
	[BAD_VERSION_4] = {"version-4", MU_ERR_FORMAT, "version 4 is not supported"},
	[BAD_SHORT_HEADER] = {"short-header", MU_ERR_FORMAT, "shorter than the 24-byte header"},
	[BAD_N_KV_LIMIT] = {"n-kv-limit", MU_ERR_RANGE, "n_kv 1099511627776 exceeds the limit 65536"},
	[BAD_N_KV_FILE] = {"n-kv-file", MU_ERR_FORMAT, "n_kv 1000 is too large for a file of"},
	[BAD_N_TENSORS_LIMIT] = {"n-tensors-limit", MU_ERR_RANGE, "n_tensors 18446744073709551615 exceeds"},
	[BAD_N_TENSORS_FILE] = {"n-tensors-file", MU_ERR_FORMAT, "n_tensors 500 is too large"},
	[BAD_KEY_LIMIT] = {"key-limit", MU_ERR_RANGE, "kv 0: name length 4611686018427387904 exceeds the limit"},
	[BAD_KEY_PAST_END] = {"key-past-end", MU_ERR_FORMAT, "kv 1: name length 1000 past end of file"},
	[BAD_KEY_EMPTY] = {"key-empty", MU_ERR_FORMAT, "kv 0: empty name"},
	[BAD_KEY_UTF8] = {"key-utf8", MU_ERR_FORMAT, "kv 0: name is not valid UTF-8"},
	[BAD_KEY_OVERLONG] = {"key-overlong", MU_ERR_FORMAT, "kv 0: name is not valid UTF-8"},
	[BAD_KEY_SURROGATE] = {"key-surrogate", MU_ERR_FORMAT, "kv 0: name is not valid UTF-8"},
	[BAD_KV_TYPE] = {"kv-type", MU_ERR_FORMAT, "kv 0 (a.b): unknown value type 13"},
	[BAD_STRING_PAST_END] = {"string-past-end", MU_ERR_FORMAT, "kv 0 (a.b): string length 99999 past end of file"},
	[BAD_STRING_LIMIT] = {"string-limit", MU_ERR_RANGE, "kv 0 (a.b): string length 16777217 exceeds the limit"},
	[BAD_ARR_TYPE] = {"arr-type", MU_ERR_FORMAT, "kv 0 (a.b): unknown array element type 13"},
	[BAD_NESTED] = {"nested", MU_ERR_FORMAT, "kv 0 (a.b): nested arrays are not supported"},
	[BAD_ARR_LIMIT] = {"arr-limit", MU_ERR_RANGE, "array of 4294967296 elements exceeds the limit"},
	[BAD_ARR_PAST_END] = {"arr-past-end", MU_ERR_FORMAT, "kv 0 (a.b): array of 1000 elements past end of file"},
	[BAD_ARR_STRING] = {"arr-string", MU_ERR_FORMAT,
			    "kv 0 (tokenizer.ggml.tokens): array element 17 string length 99999 past end of file"},
	[BAD_VALUE_PAST_END] = {"value-past-end", MU_ERR_FORMAT, "kv 0 (a.b): u32 value past end of file"},
	[BAD_BOOL] = {"bool", MU_ERR_FORMAT, "kv 0 (a.b): bool value is not 0 or 1"},
	[BAD_ARR_BOOL] = {"arr-bool", MU_ERR_FORMAT, "kv 0 (a.b): array element 1 bool value is not 0 or 1"},
	[BAD_DUP_KEY] = {"dup-key", MU_ERR_FORMAT, "kv 2 (a.b): duplicate key (first at kv 0)"},
	[BAD_ALIGN_0] = {"align-0", MU_ERR_FORMAT, "kv 0 (general.alignment): 0 is not a power of two"},
	[BAD_ALIGN_3] = {"align-3", MU_ERR_FORMAT, "kv 0 (general.alignment): 3 is not a power of two"},
	[BAD_ALIGN_TYPE] = {"align-type", MU_ERR_FORMAT, "kv 0 (general.alignment): type is u64, expected u32"},
	[BAD_ALIGN_LIMIT] = {"align-limit", MU_ERR_RANGE, "1048576 exceeds the limit 65536"},
	[BAD_NAME_EMPTY] = {"name-empty", MU_ERR_FORMAT, "tensor 0: empty name"},
	[BAD_NAME_UTF8] = {"name-utf8", MU_ERR_FORMAT, "tensor 0: name is not valid UTF-8"},
	[BAD_DUP_NAME] = {"dup-name", MU_ERR_FORMAT, "tensor w: duplicate name (tensors 0 and 1)"},
	[BAD_N_DIMS_0] = {"n-dims-0", MU_ERR_FORMAT, "tensor w: n_dims 0 is not in 1..4"},
	[BAD_N_DIMS_5] = {"n-dims-5", MU_ERR_FORMAT, "tensor w: n_dims 5 is not in 1..4"},
	[BAD_DIM_0] = {"dim-0", MU_ERR_FORMAT, "tensor w: dim 1 is 0"},
	[BAD_ELEMENTS] = {"elements", MU_ERR_FORMAT, "tensor w: element count overflows"},
	[BAD_BYTES] = {"bytes", MU_ERR_FORMAT, "tensor w: byte size overflows"},
	[BAD_TYPE_4] = {"type-4", MU_ERR_UNSUPPORTED, "tensor w: unknown tensor type 4"},
	[BAD_TYPE_99] = {"type-99", MU_ERR_UNSUPPORTED, "tensor w: unknown tensor type 99"},
	[BAD_BLOCK] = {"block", MU_ERR_FORMAT,
		       "tensor blk.0.ffn_down.weight: dim 0 (172) is not a multiple of the q8_0 block size 32"},
	[BAD_MISALIGNED] = {"misaligned", MU_ERR_FORMAT, "tensor w: offset 16 is not a multiple of the alignment 32"},
	[BAD_MISALIGNED_64] = {"misaligned-64", MU_ERR_FORMAT, "offset 32 is not a multiple of the alignment 64"},
	[BAD_OFFSET] = {"offset", MU_ERR_FORMAT, "tensor blk.3.attn_q.weight: offset 4096 past end of file"},
	[BAD_EXTENT] = {"extent", MU_ERR_FORMAT, "tensor w: data (offset 0, 256 bytes) extends past end of file"},
	[BAD_OVERLAP] = {"overlap", MU_ERR_FORMAT, "tensor w1: data at offset 128 overlaps tensor w0"},
	[BAD_SAME_OFFSET] = {"same-offset", MU_ERR_FORMAT, "overlaps tensor w"},
	[BAD_DATA_SECTION] = {"data-section", MU_ERR_FORMAT, "data section at 128 past end of file (121 bytes)"},
	[BAD_TRAILING_DATA] = {"trailing-data", MU_ERR_FORMAT, "32 trailing bytes after the tensor data"},
	[BAD_TRAILING_META] = {"trailing-meta", MU_ERR_FORMAT, "1 trailing bytes after the metadata"},
};

/* One kv and one f32-or-other tensor "w" of the given shape, then data_len bytes of data. */
static void tensor_file(struct buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
			uint64_t offset, size_t data_len)
{
	b_hdr(b, 3, 1, 1);
	b_kv_str(b, "general.architecture", "llama");
	b_tensor(b, name, n_dims, ne, type, offset);
	b_pad(b, 32);
	b_zeros(b, data_len);
}

static void kv_head(struct buf *b, const char *key, uint32_t type)
{
	b_hdr(b, 3, 0, 1);
	b_str(b, key);
	b_u32(b, type);
}

static void build_bad(enum bad id, struct buf *b)
{
	static const uint64_t ne32[] = {32, 1, 1, 1, 1}, ne64[] = {64}, ne_dim0[] = {32, 0},
			      ne_big[] = {(uint64_t)1 << 32, (uint64_t)1 << 32}, ne_f64[] = {(uint64_t)1 << 61, 1},
			      ne_block[] = {172, 2};
	switch (id) {
	case BAD_MAGIC: b_u32(b, 0x46554746u), b_u32(b, 3), b_u64(b, 0), b_u64(b, 0); break;
	case BAD_VERSION_1: b_hdr(b, 1, 0, 0); break;
	case BAD_VERSION_4: b_hdr(b, 4, 0, 0); break;
	case BAD_SHORT_HEADER: b_u32(b, GGUF_MAGIC), b_u32(b, 3), b_u64(b, 0); break;
	case BAD_N_KV_LIMIT: b_hdr(b, 3, 0, (uint64_t)1 << 40); break;
	case BAD_N_KV_FILE: b_hdr(b, 3, 0, 1000), b_kv_u32(b, "a", 1); break;
	case BAD_N_TENSORS_LIMIT: b_hdr(b, 3, UINT64_MAX, 0); break;
	case BAD_N_TENSORS_FILE: b_hdr(b, 3, 500, 0), b_zeros(b, 400); break;
	case BAD_KEY_LIMIT: b_hdr(b, 3, 0, 1), b_u64(b, (uint64_t)1 << 62), b_zeros(b, 8); break;
	case BAD_KEY_PAST_END: b_hdr(b, 3, 0, 2), b_kv_u32(b, "a", 1), b_u64(b, 1000), b_zeros(b, 8); break;
	case BAD_KEY_EMPTY: b_hdr(b, 3, 0, 1), b_kv_u32(b, "", 1); break;
	case BAD_KEY_UTF8: b_hdr(b, 3, 0, 1), b_kv_u32(b, "ab\xff", 1); break;
	case BAD_KEY_OVERLONG: b_hdr(b, 3, 0, 1), b_kv_u32(b, "a\xc0\xafz", 1); break;
	case BAD_KEY_SURROGATE: b_hdr(b, 3, 0, 1), b_kv_u32(b, "\xed\xa0\x80", 1); break;
	case BAD_KV_TYPE: kv_head(b, "a.b", 13), b_u32(b, 0); break;
	case BAD_STRING_PAST_END: kv_head(b, "a.b", GGUF_TYPE_STRING), b_u64(b, 99999), b_zeros(b, 64); break;
	case BAD_STRING_LIMIT: kv_head(b, "a.b", GGUF_TYPE_STRING), b_u64(b, (1u << 24) + 1), b_zeros(b, 64); break;
	case BAD_ARR_TYPE: kv_head(b, "a.b", GGUF_TYPE_ARRAY), b_u32(b, 13), b_u64(b, 1), b_u32(b, 0); break;
	case BAD_NESTED: kv_head(b, "a.b", GGUF_TYPE_ARRAY), b_u32(b, GGUF_TYPE_ARRAY), b_u64(b, 1), b_zeros(b, 12); break;
	case BAD_ARR_LIMIT:
		kv_head(b, "a.b", GGUF_TYPE_ARRAY), b_u32(b, GGUF_TYPE_UINT8), b_u64(b, (uint64_t)1 << 32), b_zeros(b, 8);
		break;
	case BAD_ARR_PAST_END:
		kv_head(b, "a.b", GGUF_TYPE_ARRAY), b_u32(b, GGUF_TYPE_UINT32), b_u64(b, 1000), b_zeros(b, 400);
		break;
	case BAD_ARR_STRING:
		kv_head(b, "tokenizer.ggml.tokens", GGUF_TYPE_ARRAY), b_u32(b, GGUF_TYPE_STRING), b_u64(b, 20);
		for (int i = 0; i < 17; i++)
			b_str(b, "x");
		b_u64(b, 99999), b_zeros(b, 24);
		break;
	case BAD_VALUE_PAST_END: kv_head(b, "a.b", GGUF_TYPE_UINT32), b_u8(b, 1), b_u8(b, 2); break;
	case BAD_BOOL: kv_head(b, "a.b", GGUF_TYPE_BOOL), b_u8(b, 2); break;
	case BAD_ARR_BOOL:
		kv_head(b, "a.b", GGUF_TYPE_ARRAY), b_u32(b, GGUF_TYPE_BOOL), b_u64(b, 3);
		b_u8(b, 1), b_u8(b, 2), b_u8(b, 0);
		break;
	case BAD_DUP_KEY: b_hdr(b, 3, 0, 3), b_kv_u32(b, "a.b", 1), b_kv_u32(b, "a.c", 1), b_kv_u32(b, "a.b", 2); break;
	case BAD_ALIGN_0: b_hdr(b, 3, 0, 1), b_kv_u32(b, "general.alignment", 0); break;
	case BAD_ALIGN_3: b_hdr(b, 3, 0, 1), b_kv_u32(b, "general.alignment", 3); break;
	case BAD_ALIGN_TYPE: kv_head(b, "general.alignment", GGUF_TYPE_UINT64), b_u64(b, 32); break;
	case BAD_ALIGN_LIMIT: b_hdr(b, 3, 0, 1), b_kv_u32(b, "general.alignment", 1u << 20); break;
	case BAD_NAME_EMPTY: tensor_file(b, "", 1, ne32, MU_DTYPE_F32, 0, 128); break;
	case BAD_NAME_UTF8: tensor_file(b, "w\xe2\x82", 1, ne32, MU_DTYPE_F32, 0, 128); break;
	case BAD_DUP_NAME:
		b_hdr(b, 3, 2, 0), b_tensor(b, "w", 1, ne32, MU_DTYPE_F32, 0), b_tensor(b, "w", 1, ne32, MU_DTYPE_F32, 128);
		b_pad(b, 32), b_zeros(b, 256);
		break;
	case BAD_N_DIMS_0: tensor_file(b, "w", 0, ne32, MU_DTYPE_F32, 0, 128); break;
	case BAD_N_DIMS_5: tensor_file(b, "w", 5, ne32, MU_DTYPE_F32, 0, 128); break;
	case BAD_DIM_0: tensor_file(b, "w", 2, ne_dim0, MU_DTYPE_F32, 0, 128); break;
	case BAD_ELEMENTS: tensor_file(b, "w", 2, ne_big, MU_DTYPE_F32, 0, 128); break;
	case BAD_BYTES: tensor_file(b, "w", 2, ne_f64, MU_DTYPE_F64, 0, 128); break;
	case BAD_TYPE_4: tensor_file(b, "w", 1, ne32, 4, 0, 128); break;
	case BAD_TYPE_99: tensor_file(b, "w", 1, ne32, 99, 0, 128); break;
	case BAD_BLOCK: tensor_file(b, "blk.0.ffn_down.weight", 2, ne_block, MU_DTYPE_Q8_0, 0, 384); break;
	case BAD_MISALIGNED: tensor_file(b, "w", 1, ne32, MU_DTYPE_F32, 16, 160); break;
	case BAD_MISALIGNED_64:
		b_hdr(b, 3, 1, 1), b_kv_u32(b, "general.alignment", 64), b_tensor(b, "w", 1, ne32, MU_DTYPE_F32, 32);
		b_pad(b, 64), b_zeros(b, 192);
		break;
	case BAD_OFFSET: tensor_file(b, "blk.3.attn_q.weight", 1, ne32, MU_DTYPE_F32, 4096, 128); break;
	case BAD_EXTENT: tensor_file(b, "w", 1, ne64, MU_DTYPE_F32, 0, 128); break;
	case BAD_OVERLAP:
		b_hdr(b, 3, 2, 0), b_tensor(b, "w0", 1, ne64, MU_DTYPE_F32, 0), b_tensor(b, "w1", 1, ne32, MU_DTYPE_F32, 128);
		b_pad(b, 32), b_zeros(b, 256);
		break;
	case BAD_SAME_OFFSET:
		b_hdr(b, 3, 2, 0), b_tensor(b, "w", 1, ne32, MU_DTYPE_F32, 0), b_tensor(b, "v", 1, ne32, MU_DTYPE_F16, 0);
		b_pad(b, 32), b_zeros(b, 128);
		break;
	case BAD_DATA_SECTION: tensor_file(b, "w", 1, ne32, MU_DTYPE_F32, 0, 0), b->len -= 7; break;
	case BAD_TRAILING_DATA: tensor_file(b, "w", 1, ne32, MU_DTYPE_F32, 0, 128 + 32); break;
	case BAD_TRAILING_META: b_hdr(b, 3, 0, 1), b_kv_u32(b, "a", 1), b_pad(b, 32), b_u8(b, 0); break;
	case BAD_COUNT: break;
	}
}

static void test_malformed(void)
{
	for (int i = 0; i < BAD_COUNT; i++) {
		struct buf b = {0};
		struct mu_error err;
		build_bad((enum bad)i, &b);
		enum mu_err e = parse_copy(b.p, b.len, &err);
		CHECK(e == bad_cases[i].code, "%s: got %s (%s), want %s", bad_cases[i].name, mu_err_name(e), err.msg,
		      mu_err_name(bad_cases[i].code));
		CHECK(strstr(err.msg, bad_cases[i].msg) != NULL, "%s: message \"%s\" lacks \"%s\"", bad_cases[i].name,
		      err.msg, bad_cases[i].msg);
		b_free(&b);
	}
}

/* ---- truncation ---- */

/* Parses every prefix of f; a prefix must be accepted exactly when its length is at least
 * min_valid (and refused with a message otherwise). Returns the number of wrong answers. */
static size_t check_prefixes(const struct buf *f, size_t min_valid, const char *what)
{
	size_t wrong = 0;
	for (size_t n = 0; n <= f->len; n++) {
		struct mu_error err;
		enum mu_err e = parse_copy(f->p, n, &err);
		int ok = e == MU_OK, want = n >= min_valid;
		if (ok != want || (!ok && (err.msg[0] == '\0' || e == MU_ERR_NOMEM))) {
			if (wrong++ == 0)
				fprintf(stderr, "%s: prefix of %zu bytes: %s (%s)\n", what, n, mu_err_name(e), err.msg);
		}
	}
	return wrong;
}

static void test_truncation(void)
{
	struct buf f = {0};
	struct gguf g;
	struct mu_error err;
	void *mem;

	/* With tensors (and no trailing padding): only the whole file is valid. */
	CHECK(write_sample(32, 1, &f), "sample");
	CHECK_EQ_INT(check_prefixes(&f, f.len, "sample with tensors"), 0);
	b_free(&f);

	/* Vocab only: valid from the end of the last kv on, padding or not. */
	CHECK(write_sample(32, 0, &f), "vocab sample");
	if (parse(&g, f.p, f.len, &mem, &err) == MU_OK) {
		const struct gguf_kv *last = &g.kv[g.n_kv - 1];
		size_t header_end = (size_t)(last->data + last->size - f.p);
		CHECK(header_end < f.len && f.len == g.data_offset, "vocab padding");
		CHECK_EQ_INT(check_prefixes(&f, header_end, "vocab sample"), 0);
	} else {
		CHECK(0, "vocab sample: %s", err.msg);
	}
	free(mem);
	b_free(&f);

	/* Last tensor followed by padding: the padding may be cut, the tensor may not. */
	static const uint64_t ne5[] = {5};
	tensor_file(&f, "w", 1, ne5, MU_DTYPE_F32, 0, 20);
	size_t data_end = f.len;
	b_pad(&f, 32);
	CHECK(f.len > data_end, "padding");
	CHECK_EQ_INT(check_prefixes(&f, data_end, "padded tensor"), 0);
	b_free(&f);
}

/* ---- mutations ---- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* What every accepted file must satisfy; returns the number of violations. */
static int check_accepted(const struct gguf *g, const uint8_t *p, size_t len)
{
	int bad = 0;
	bad += g->base != p || g->len != len || g->alignment == 0 || (g->alignment & (g->alignment - 1)) != 0;
	bad += g->data_offset % g->alignment != 0;
	bad += g->n_tensors > 0 && g->data_offset + g->data_size > len;
	for (uint64_t i = 0; i < g->n_kv; i++) {
		const struct gguf_kv *kv = &g->kv[i];
		bad += kv->data < p || kv->size > len || kv->data + kv->size > p + len;
		bad += (const uint8_t *)kv->key.ptr < p || kv->key.len == 0;
		if (kv->arr_type == GGUF_TYPE_STRING) {
			struct gguf_str_iter it;
			struct gguf_str s;
			uint64_t n = 0;
			gguf_str_iter_init(&it, kv);
			while (gguf_str_iter_next(&it, &s)) {
				bad += (const uint8_t *)s.ptr < kv->data ||
				       (const uint8_t *)s.ptr + s.len > kv->data + kv->size;
				n++;
			}
			bad += n != kv->arr_len;
		} else if (kv->arr_type == GGUF_TYPE_INT32 && kv->arr_len > 0) {
			(void)gguf_arr_i32(kv, kv->arr_len - 1);
		} else if (kv->arr_type == GGUF_TYPE_FLOAT32 && kv->arr_len > 0) {
			(void)gguf_arr_f32(kv, kv->arr_len - 1);
		}
	}
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const struct gguf_tensor *t = &g->tensors[i];
		uint64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
		bad += t->n_dims < 1 || t->n_dims > 4 || t->offset % g->alignment != 0;
		bad += t->data != p + g->data_offset + t->offset || t->data + t->size > p + len;
		bad += t->size != mu_dtype_row_size(t->type, t->ne[0]) * rows;
		for (uint64_t j = 0; j < i; j++) {
			const struct gguf_tensor *u = &g->tensors[j];
			bad += t->offset < u->offset + u->size && u->offset < t->offset + t->size;
		}
	}
	return bad;
}

static void test_mutations(void)
{
	struct buf f = {0};
	uint64_t seed = 0x6767756675u, accepted = 0, violations = 0, odd_errors = 0;
	CHECK(write_sample(32, 1, &f), "sample");
	size_t header = 0;
	{
		struct gguf g;
		struct mu_error err;
		void *mem;
		if (parse(&g, f.p, f.len, &mem, &err) == MU_OK)
			header = (size_t)g.data_offset;
		free(mem);
	}
	CHECK(header > 24 && header < f.len, "header size");
	if (header == 0)
		return;
	static const uint64_t special[] = {0, 1, 2, 3, 4, 5, 8, 9, 12, 13, 16, 31, 32, 33, 64, 127, 128, 255, 0xffff,
					   0xffffffffu, (uint64_t)1 << 32, (uint64_t)1 << 62, (uint64_t)1 << 63,
					   UINT64_MAX};
	for (int iter = 0; iter < 20000; iter++) {
		uint8_t *p = malloc(f.len);
		size_t len = f.len;
		memcpy(p, f.p, len);
		uint64_t r = rng_next(&seed);
		switch (r % 5) {
		case 0: /* a random byte anywhere, mostly in the metadata */
			p[(r >> 8) % 8 ? rng_next(&seed) % header : rng_next(&seed) % len] = (uint8_t)(r >> 16);
			break;
		case 1: /* several bytes of the metadata */
			for (uint64_t k = 0, n = 2 + (r >> 8) % 6; k < n; k++)
				p[rng_next(&seed) % header] = (uint8_t)rng_next(&seed);
			break;
		case 2: /* a special 64- or 32-bit value at a random metadata position */
		{
			uint64_t v = special[(r >> 8) % (sizeof special / sizeof special[0])];
			size_t at = (size_t)(rng_next(&seed) % (header - 8));
			if ((r >> 16) & 1)
				le64_store(p + at, v);
			else
				le32_store(p + at, (uint32_t)v);
			break;
		}
		case 3: /* truncation */
			len = (size_t)(rng_next(&seed) % len);
			break;
		default: /* a byte mutation and a truncation */
			p[rng_next(&seed) % header] ^= (uint8_t)(1u << ((r >> 8) % 8));
			len -= (size_t)(rng_next(&seed) % 64);
			break;
		}
		uint8_t *q = malloc(len ? len : 1);
		memcpy(q, p, len);
		free(p);
		struct gguf g;
		struct mu_error err;
		void *mem;
		enum mu_err e = parse(&g, q, len, &mem, &err);
		if (e == MU_OK) {
			accepted++;
			violations += (uint64_t)check_accepted(&g, q, len);
		} else if ((e != MU_ERR_FORMAT && e != MU_ERR_RANGE && e != MU_ERR_UNSUPPORTED) || err.msg[0] == '\0') {
			if (odd_errors++ == 0)
				fprintf(stderr, "mutation %d: %s (%s)\n", iter, mu_err_name(e), err.msg);
		}
		free(mem);
		free(q);
	}
	CHECK_EQ_INT(violations, 0);
	CHECK_EQ_INT(odd_errors, 0);
	CHECK(accepted > 0 && accepted < 20000, "accepted %llu of 20000", (unsigned long long)accepted);
	b_free(&f);
}

/* ---- seed corpus ---- */

static int write_file(const char *dir, const char *name, const struct buf *b)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	int ok = fp && fwrite(b->p, 1, b->len, fp) == b->len;
	if (fp)
		ok &= fclose(fp) == 0;
	if (!ok)
		fprintf(stderr, "%s: cannot write\n", path);
	return ok;
}

static int write_corpus(const char *dir)
{
	struct buf b = {0};
	int ok = 1;
	ok &= write_sample(32, 1, &b) && write_file(dir, "valid-model", &b);
	b_free(&b);
	ok &= write_sample(64, 1, &b) && write_file(dir, "valid-model-align64", &b);
	b_free(&b);
	ok &= write_sample(32, 0, &b) && write_file(dir, "valid-vocab", &b);
	b_free(&b);
	all_types_file(&b);
	ok &= write_file(dir, "valid-all-types-v2", &b);
	b_free(&b);
	for (int i = 0; i < BAD_COUNT; i++) {
		char name[64];
		build_bad((enum bad)i, &b);
		snprintf(name, sizeof name, "bad-%s", bad_cases[i].name);
		ok &= write_file(dir, name, &b);
		b_free(&b);
	}
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
		return write_corpus(argv[2]);
	test_stories260k();
	test_vocab_file("models/llamacpp-vocab/ggml-vocab-llama-spm.gguf", 22, 32000, "llama");
	test_vocab_file("models/llamacpp-vocab/ggml-vocab-gpt-2.gguf", 16, 50257, "gpt2");
	test_writer_round_trip();
	test_writer_errors();
	test_getters();
	test_malformed();
	test_truncation();
	test_mutations();
	return test_done();
}
