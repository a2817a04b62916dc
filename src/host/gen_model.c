/* gen_model.c — `mu gen-model`: a random-weight GGUF with the exact shape of a public model,
 * for tests and benchmarks (no trained weights of those sizes are available here).
 *
 * Everything is a pure function of (arch, shape, type, seed): the same arguments always give
 * the same bytes. The vocabulary is SentencePiece-style ("llama" tokenizer model): <unk>,
 * <s>, </s>, the 256 byte-fallback tokens, single characters, then common English words and
 * word pieces, so prompts tokenize into plausible ids.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/endian.h"
#include "base/mathx.h"
#include "base/limits.h"
#include "engine/gguf.h"
#include "engine/kernels.h"
#include "host/cli.h"

struct shape {
	const char *name;
	uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
	uint32_t head_dim; /* 0: n_embd / n_head */
	float rope_base;
	int tied;
	int llama3_rope;   /* write rope_freqs.weight with Llama 3.x frequency scaling */
};

static const struct shape shapes[] = {
	/* stories260K-like, with an FFN width (172) that is not a multiple of 32 */
	{"tiny", 64, 2, 8, 4, 172, 512, 512, 0, 10000.0f, 1, 0},
	/* tiny with what Llama 3 adds: rope_freqs.weight (its 4 factors hit all three branches
	 * of the scaling rule at base 500000) and a separate output matrix */
	{"tiny-llama3", 64, 2, 8, 4, 172, 512, 512, 0, 500000.0f, 0, 1},
	/* every width a multiple of 256, so K types are stored as such; a separate output matrix */
	{"tiny-k", 256, 2, 4, 2, 512, 512, 512, 0, 10000.0f, 0, 0},
	/* every row a multiple of 512 elements, so kernel paths that pack Q8_0 and Q4_0 at load
	 * pack every matrix, the tied embedding table too */
	{"tiny-p", 512, 2, 8, 2, 1024, 512, 512, 0, 10000.0f, 1, 0},
	{"tiny-pu", 512, 2, 8, 2, 1024, 512, 512, 0, 10000.0f, 0, 0},
	{"stories15m", 288, 6, 6, 6, 768, 32000, 256, 0, 10000.0f, 1, 0},
	{"llama3.2-1b", 2048, 16, 32, 8, 8192, 128256, 131072, 0, 500000.0f, 1, 1},
	{"tinyllama", 2048, 22, 32, 4, 5632, 32000, 2048, 0, 10000.0f, 0, 0},
};

/* splitmix64: a small, well-mixed generator; deterministic for a given seed. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
/* uniform in [-1, 1) */
static float rng_sym(uint64_t *s) { return (float)((double)(rng_next(s) >> 40) / 8388608.0 - 1.0); }

static const char *const words[] = {
	"the", "and", "was", "to", "a", "he", "she", "it", "they", "in", "of", "his", "her", "with", "that",
	"said", "you", "for", "on", "day", "big", "little", "one", "time", "play", "saw", "wanted", "very",
	"happy", "friend", "mom", "dad", "go", "park", "tree", "ball", "cat", "dog", "bird", "sun", "upon",
	"once", "there", "were", "had", "not", "but", "so", "all", "can", "is", "are", "be", "this", "what",
	"when", "where", "who", "how", "why", "will", "would", "could", "should", "house", "water", "red",
	"blue", "green", "girl", "boy", "name", "named", "look", "looked", "found", "love", "loved", "help",
	"make", "made", "run", "ran", "jump", "fun", "good", "bad", "new", "old", "home", "come", "came",
	"went", "from", "into", "out", "up", "down", "over", "under", "after", "before", "again", "then",
	"now", "just", "also", "more", "most", "some", "any", "every", "each", "other", "many", "much",
	"about", "because", "people", "world", "year", "work", "way", "thing", "think", "know", "want",
	"give", "take", "see", "get", "say", "tell", "ask", "feel", "try", "leave", "call", "need", "keep",
	"let", "begin", "seem", "show", "hear", "turn", "start", "might", "live", "believe", "hold", "bring",
	"write", "sit", "stand", "lose", "pay", "meet", "learn", "change", "lead", "understand", "watch",
	"follow", "stop", "create", "speak", "read", "spend", "grow", "open", "walk", "win", "offer",
	"remember", "consider", "appear", "buy", "wait", "serve", "die", "send", "expect", "build", "stay",
	"fall", "cut", "reach", "kill", "remain", "system", "model", "data", "secure", "key", "number",
};

struct vocab {
	char **tok;
	uint64_t *len;
	float *score;
	int32_t *type;
	uint32_t n;
	uint32_t *slots;   /* open-addressing set of token indices + 1, for uniqueness */
	uint32_t n_slots;  /* power of two, > 2 * capacity */
};

static uint32_t fnv1a(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

/* Adds s unless it is already present or the vocabulary is full; -1 only on allocation failure. */
static int vocab_add(struct vocab *v, uint32_t cap, const char *s, int32_t type, float score)
{
	size_t n = strlen(s);
	if (v->n >= cap)
		return 0;
	uint32_t i = fnv1a(s, n) & (v->n_slots - 1);
	for (; v->slots[i]; i = (i + 1) & (v->n_slots - 1)) {
		uint32_t t = v->slots[i] - 1;
		if (v->len[t] == n && !memcmp(v->tok[t], s, n))
			return 0;
	}
	v->tok[v->n] = strdup(s);
	if (!v->tok[v->n])
		return -1;
	v->len[v->n] = n;
	v->type[v->n] = type;
	v->score[v->n] = score;
	v->slots[i] = ++v->n;
	return 0;
}

#define SP "\xe2\x96\x81" /* U+2581, SentencePiece's word-boundary marker */

static int gen_vocab(struct vocab *v, uint32_t n)
{
	static const char letters[] = "etaoinshrdlcumwfgypbvkjxqz";
	char buf[64];
	memset(v, 0, sizeof *v);
	for (v->n_slots = 1024; v->n_slots <= 2 * n; v->n_slots *= 2)
		;
	v->tok = calloc(n, sizeof *v->tok);
	v->len = calloc(n, sizeof *v->len);
	v->score = calloc(n, sizeof *v->score);
	v->type = calloc(n, sizeof *v->type);
	v->slots = calloc(v->n_slots, sizeof *v->slots);
	if (!v->tok || !v->len || !v->score || !v->type || !v->slots)
		return -1;
	/* token_type: 1 normal, 2 unknown, 3 control, 6 byte */
	if (vocab_add(v, n, "<unk>", 2, 0) || vocab_add(v, n, "<s>", 3, 0) || vocab_add(v, n, "</s>", 3, 0))
		return -1;
	for (int b = 0; b < 256; b++) {
		snprintf(buf, sizeof buf, "<0x%02X>", b);
		if (vocab_add(v, n, buf, 6, 0))
			return -1;
	}
	float score = -1.0f;
	/* single characters, the boundary marker, and letters after a boundary */
	if (vocab_add(v, n, SP, 1, score))
		return -1;
	for (int c = 33; c < 127; c++) {
		snprintf(buf, sizeof buf, "%c", c);
		if (vocab_add(v, n, buf, 1, score -= 1.0f))
			return -1;
	}
	for (int c = 'a'; c <= 'z'; c++) {
		snprintf(buf, sizeof buf, SP "%c", c);
		if (vocab_add(v, n, buf, 1, score -= 1.0f))
			return -1;
	}
	/* whole words after a boundary, then the same words bare (inside longer words) */
	for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
		snprintf(buf, sizeof buf, SP "%s", words[w]);
		if (vocab_add(v, n, buf, 1, score -= 1.0f))
			return -1;
	}
	for (size_t w = 0; w < sizeof words / sizeof words[0]; w++)
		if (vocab_add(v, n, words[w], 1, score -= 1.0f))
			return -1;
	/* word pieces of 2..4 letters, bare and after a boundary, most frequent letters first */
	for (int len = 2; len <= 4 && v->n < n; len++) {
		uint32_t count = 1;
		for (int i = 0; i < len; i++)
			count *= 26;
		for (uint32_t k = 0; k < count && v->n < n; k++) {
			char piece[8];
			uint32_t x = k;
			for (int i = 0; i < len; i++, x /= 26)
				piece[i] = letters[x % 26];
			piece[len] = '\0';
			snprintf(buf, sizeof buf, SP "%s", piece);
			if (vocab_add(v, n, piece, 1, score -= 1.0f) || vocab_add(v, n, buf, 1, score -= 1.0f))
				return -1;
		}
	}
	/* any remaining ids: numbered pieces (the 2..4-letter pieces alone give 950k) */
	for (uint32_t k = 0; v->n < n; k++) {
		snprintf(buf, sizeof buf, "%" PRIu32 "#", k);
		if (vocab_add(v, n, buf, 1, score -= 1.0f))
			return -1;
	}
	return 0;
}

static void free_vocab(struct vocab *v)
{
	if (v->tok)
		for (uint32_t i = 0; i < v->n; i++)
			free(v->tok[i]);
	free(v->tok);
	free(v->len);
	free(v->score);
	free(v->type);
	free(v->slots);
}

/* Llama 3.x RoPE frequency factors (factor 32, low 1, high 4, original context 8192):
 * long wavelengths are slowed by the factor, short ones kept, the band between blended. */
static void llama3_rope_factors(float *out, uint32_t rope_dim, float base)
{
	const double factor = 32.0, low = 1.0, high = 4.0, orig = 8192.0;
	const double two_pi = 6.283185307179586;
	for (uint32_t i = 0; i < rope_dim / 2; i++) {
		double freq = mu_pow((double)base, -2.0 * (double)i / (double)rope_dim);
		double wavelen = two_pi / freq;
		double f;
		if (wavelen < orig / high)
			f = 1.0;
		else if (wavelen > orig / low)
			f = factor;
		else {
			double smooth = (orig / wavelen - low) / (high - low);
			f = 1.0 / ((1.0 - smooth) / factor + smooth);
		}
		out[i] = (float)f;
	}
}

/* What --type asks for: one weight type for every matrix, or llama.cpp's "_M" mix of K types. */
struct recipe {
	const char *name;
	enum mu_dtype base;
	int mix;            /* 1: the Q4_K_M / Q5_K_M mix (tensor_type) */
	uint32_t file_type; /* general.file_type, llama.cpp's llama_ftype value */
};

/* q4_k and q5_k store every matrix in one K type; llama.cpp has no ftype for exactly that and
 * its nearest are Q4_K_S (14) and Q5_K_S (16), which is what these files declare. */
static const struct recipe recipes[] = {
	{"f32", MU_DTYPE_F32, 0, 0},      {"f16", MU_DTYPE_F16, 0, 1},      {"bf16", MU_DTYPE_BF16, 0, 32},
	{"q8_0", MU_DTYPE_Q8_0, 0, 7},    {"q4_0", MU_DTYPE_Q4_0, 0, 2},    {"q4_k", MU_DTYPE_Q4_K, 0, 14},
	{"q5_k", MU_DTYPE_Q5_K, 0, 16},   {"q6_k", MU_DTYPE_Q6_K, 0, 18},   {"q4_k_m", MU_DTYPE_Q4_K, 1, 15},
	{"q5_k_m", MU_DTYPE_Q5_K, 1, 17},
};

/* What a tensor is, for the choice of its type. */
enum role { ROLE_VEC, ROLE_EMBD, ROLE_OUTPUT, ROLE_ATTN_V, ROLE_FFN_DOWN, ROLE_MATRIX };

/* llama.cpp's use_more_bits(i_layer, n_layer): the first and last eighth of the layers and
 * every third layer between them. */
static int use_more_bits(uint32_t i, uint32_t n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* The type a matrix is stored in. Plain recipes use their type everywhere. The _M mixes follow
 * llama.cpp's llama_tensor_get_type for LLAMA_FTYPE_MOSTLY_Q4_K_M / Q5_K_M (base Q4_K / Q5_K):
 *   output.weight, or token_embd.weight when the output is tied to it     Q6_K
 *   blk.i.attn_v.weight and blk.i.ffn_down.weight, use_more_bits(i, n)    Q6_K
 *   every other matrix (token_embd.weight of an untied model included)    base
 * llama.cpp's other rules for these two ftypes do not apply to the shapes here: attn_v of
 * 70B models (Q4_K -> Q5_K), 8-expert models, Falcon, fused attn_qkv tensors. Its rules for
 * GQA (n_gqa() >= 4) only concern Q2_K, Q3_K and the IQ types. Then fallback_type. */
static enum mu_dtype tensor_type(const struct recipe *rc, enum role role, uint32_t layer, uint32_t n_layer, int tied)
{
	if (role == ROLE_VEC)
		return MU_DTYPE_F32;
	if (!rc->mix)
		return rc->base;
	if (role == ROLE_OUTPUT || (role == ROLE_EMBD && tied))
		return MU_DTYPE_Q6_K;
	if ((role == ROLE_ATTN_V || role == ROLE_FFN_DOWN) && use_more_bits(layer, n_layer))
		return MU_DTYPE_Q6_K;
	return rc->base;
}

/* Rows that are not whole blocks cannot be quantized. A K type (256-blocks) falls back to Q8_0
 * when the row is a whole number of 32-blocks (llama.cpp falls back to Q5_0/Q5_1/Q8_0 for
 * Q4_K/Q5_K/Q6_K; this engine has no Q5_0/Q5_1), everything else to F16. */
static enum mu_dtype fallback_type(enum mu_dtype want, uint64_t n_in)
{
	const struct mu_dtype_info *info = mu_dtype_get(want);
	if (n_in % info->block == 0)
		return want;
	if (info->block == 256 && n_in % MU_QK8_0 == 0)
		return MU_DTYPE_Q8_0;
	return MU_DTYPE_F16;
}

enum fill { FILL_MATRIX, FILL_NORM, FILL_BIAS, FILL_EMBD };

/* One tensor of the file, in the order of the tensor table and of the data. */
struct tensor {
	char name[64];
	uint32_t n_dims;
	uint64_t n_in, n_out;
	enum fill fill;
	const float *fixed; /* the values (rope factors), or NULL for random ones */
	enum mu_dtype type;
	uint64_t bytes;
};

/* Writes one tensor's data: rows of random values (or the fixed ones), quantized row by row. */
static enum mu_err emit(struct gguf_writer *w, uint64_t *rng, const struct tensor *t, struct mu_error *err)
{
	const struct mu_type_kernels *k = mu_kernels_ref(t->type);
	size_t row_bytes = mu_dtype_row_size(t->type, t->n_in);
	uint64_t rows = t->n_dims == 2 ? t->n_out : 1;
	float scale = t->fill == FILL_MATRIX ? (float)(1.7320508 / mu_sqrt((double)t->n_in))
		      : t->fill == FILL_EMBD ? 1.0f
					     : 0.1f;
	float *row = malloc(t->n_in * sizeof *row);
	uint8_t *buf = malloc(row_bytes * rows);
	enum mu_err rc = MU_OK;

	if (!row || !buf) {
		rc = mu_errf(err, MU_ERR_NOMEM, "out of memory generating %s (%" PRIu64 " x %" PRIu64 ")", t->name, t->n_in,
			     rows);
		goto out;
	}
	for (uint64_t r = 0; r < rows; r++) {
		for (uint64_t i = 0; i < t->n_in; i++) {
			if (t->fixed)
				row[i] = t->fixed[i];
			else if (t->fill == FILL_NORM)
				row[i] = 1.0f + 0.1f * rng_sym(rng);
			else
				row[i] = scale * rng_sym(rng);
		}
		k->quantize_row(row, buf + r * row_bytes, t->n_in);
	}
	rc = gguf_w_data(w, buf, row_bytes * rows, err);
out:
	free(row);
	free(buf);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mu gen-model --arch llama|qwen2|qwen3 --shape SHAPE --type TYPE [--seed S] -o OUT.gguf\n\n"
		"Writes a GGUF with random weights and the exact tensor shapes of a public model, for\n"
		"tests and benchmarks. The same arguments always produce the same file.\n\n"
		"  --shape  tiny         64 wide, 2 layers, 8 heads (4 kv), ffn 172, vocab 512\n"
		"           tiny-llama3  tiny plus Llama 3 rope_freqs (base 500000) and an untied output\n"
		"           tiny-k       256 wide, 2 layers, 4 heads (2 kv), ffn 512, vocab 512, untied\n"
		"                        output: every width a multiple of 256, for the K types\n"
		"           tiny-p       512 wide, 2 layers, 8 heads (2 kv), ffn 1024, vocab 512, tied:\n"
		"                        every row a multiple of 512, so packing kernels pack them all\n"
		"           tiny-pu      tiny-p with an untied output matrix\n"
		"           stories15m   288 wide, 6 layers, 6 heads, ffn 768, vocab 32000\n"
		"           llama3.2-1b  2048 wide, 16 layers, 32 heads (8 kv), ffn 8192, vocab 128256,\n"
		"                        rope base 500000 with Llama 3 frequency factors, tied output\n"
		"           tinyllama    2048 wide, 22 layers, 32 heads (4 kv), ffn 5632, vocab 32000\n"
		"  --type   type of the weight matrices; norms, biases and rope factors stay f32:\n"
		"           f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k  every matrix in that type\n"
		"           q4_k_m q5_k_m  llama.cpp's Q4_K_M / Q5_K_M mix: base q4_K / q5_K, and q6_K\n"
		"                        for output.weight (token_embd.weight when the output is tied)\n"
		"                        and for attn_v and ffn_down of layer i when use_more_bits(i, n):\n"
		"                        i < n/8 or i >= 7n/8 or (i - n/8) %% 3 == 2 (n layers)\n"
		"           A matrix whose rows are not whole blocks of its type falls back: a K type\n"
		"           (256-blocks) to q8_0 when the row is a multiple of 32, else f16; q8_0 and\n"
		"           q4_0 to f16 (llama.cpp would pick q5_0/q5_1 for q4_K/q5_K, which this\n"
		"           engine lacks). general.file_type is llama.cpp's ftype: f32 0, f16 1, q4_0 2,\n"
		"           q8_0 7, q4_k 14 (Q4_K_S), q4_k_m 15, q5_k 16 (Q5_K_S), q5_k_m 17, q6_k 18,\n"
		"           bf16 32\n"
		"  --arch   llama (normal RoPE), qwen2 (Q/K/V biases, NEOX RoPE), qwen3 (Q/K norms,\n"
		"           NEOX RoPE; tiny uses head dim 32 so heads x head dim != width)\n"
		"  --seed   PRNG seed (default 1)\n"
		"  --vocab  FILE.gguf: take the tokenizer (every tokenizer.* key, chat template included)\n"
		"           from this file, e.g. one made by mu vocab; the vocabulary size follows it\n"
		"Without --vocab the vocabulary is a generated SentencePiece-style one, so\n"
		"`mu run -p TEXT` works on the result. Progress goes to stderr.\n");
}

/* Copies every tokenizer.* key of a vocabulary GGUF (for example one from mu vocab), so a
 * random-weight model speaks a real model's vocabulary and chat template. */
static enum mu_err copy_tokenizer(struct gguf_writer *w, const struct gguf *v, struct mu_error *err)
{
	enum mu_err rc = MU_OK;
	for (uint64_t i = 0; i < v->n_kv && rc == MU_OK; i++) {
		const struct gguf_kv *kv = &v->kv[i];
		char key[256];
		if (kv->key.len >= sizeof key || kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10) != 0)
			continue;
		memcpy(key, kv->key.ptr, kv->key.len);
		key[kv->key.len] = '\0';
		switch (kv->type) {
		case GGUF_TYPE_UINT32: rc = gguf_w_u32(w, key, le32_load(kv->data), err); break;
		case GGUF_TYPE_INT32: rc = gguf_w_i32(w, key, (int32_t)le32_load(kv->data), err); break;
		case GGUF_TYPE_FLOAT32: rc = gguf_w_f32(w, key, lef32_load(kv->data), err); break;
		case GGUF_TYPE_BOOL: rc = gguf_w_bool(w, key, kv->data[0], err); break;
		case GGUF_TYPE_STRING: {
			uint64_t len = le64_load(kv->data);
			char *str = malloc(len + 1);
			if (!str)
				return mu_errf(err, MU_ERR_NOMEM, "out of memory copying %s", key);
			memcpy(str, kv->data + 8, len);
			str[len] = '\0';
			if (strlen(str) != len)
				rc = mu_errf(err, MU_ERR_UNSUPPORTED, "%s: string with a NUL byte", key);
			else
				rc = gguf_w_str(w, key, str, err);
			free(str);
			break;
		}
		case GGUF_TYPE_ARRAY:
			if (kv->arr_type == GGUF_TYPE_STRING) {
				const char **p = malloc(kv->arr_len * sizeof *p);
				uint64_t *l = malloc(kv->arr_len * sizeof *l);
				struct gguf_str_iter it;
				struct gguf_str str;
				uint64_t k = 0;
				if (!p || !l) {
					free(p);
					free(l);
					return mu_errf(err, MU_ERR_NOMEM, "out of memory copying %s", key);
				}
				gguf_str_iter_init(&it, kv);
				while (k < kv->arr_len && gguf_str_iter_next(&it, &str)) {
					p[k] = str.ptr;
					l[k++] = str.len;
				}
				rc = gguf_w_arr_str(w, key, p, l, k, err);
				free(p);
				free(l);
			} else if (kv->arr_type == GGUF_TYPE_INT32 || kv->arr_type == GGUF_TYPE_FLOAT32) {
				void *tmp = malloc(kv->arr_len * 4 + 1);
				if (!tmp)
					return mu_errf(err, MU_ERR_NOMEM, "out of memory copying %s", key);
				memcpy(tmp, kv->data, kv->arr_len * 4);
				rc = kv->arr_type == GGUF_TYPE_INT32 ? gguf_w_arr_i32(w, key, tmp, kv->arr_len, err)
								      : gguf_w_arr_f32(w, key, tmp, kv->arr_len, err);
				free(tmp);
			} else {
				rc = mu_errf(err, MU_ERR_UNSUPPORTED, "%s: arrays of %s are not copied", key,
					     gguf_type_name(kv->arr_type));
			}
			break;
		default:
			rc = mu_errf(err, MU_ERR_UNSUPPORTED, "%s: values of type %s are not copied", key, gguf_type_name(kv->type));
		}
	}
	return rc;
}

/* Appends a tensor to the list (capacity checked by the caller's count). */
static struct tensor *add(struct tensor *list, size_t *n, const struct recipe *rc, const struct shape *sh,
			  const char *name, enum role role, uint32_t layer, uint64_t n_in, uint64_t n_out, enum fill fill)
{
	struct tensor *t = &list[(*n)++];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->n_dims = role == ROLE_VEC ? 1 : 2;
	t->n_in = n_in;
	t->n_out = role == ROLE_VEC ? 1 : n_out;
	t->fill = fill;
	t->type = fallback_type(tensor_type(rc, role, layer, sh->n_layer, sh->tied), n_in);
	t->bytes = mu_dtype_row_size(t->type, n_in) * t->n_out;
	return t;
}

static enum mu_err write_model(int fd, const char *arch, const struct shape *sh, const struct recipe *recipe,
			       uint64_t seed, const struct gguf *vocab, struct mu_error *err)
{
	struct gguf_writer *w = NULL;
	uint64_t rng = seed;
	struct vocab v = {0};
	enum mu_err rc = MU_OK;
	char key[96], name[96], title[128];
	int is_qwen3 = !strcmp(arch, "qwen3"), is_qwen2 = !strcmp(arch, "qwen2");
	uint32_t head_dim = sh->head_dim ? sh->head_dim : sh->n_embd / sh->n_head;
	uint32_t n_head = sh->n_head, n_head_kv = sh->n_head_kv;
	if (is_qwen3 && !strcmp(sh->name, "tiny")) {
		n_head = 4;
		n_head_kv = 2;
		head_dim = 32;
	}
	uint32_t q_dim = n_head * head_dim, kv_dim = n_head_kv * head_dim;
	float rope_base = is_qwen2 || is_qwen3 ? 1000000.0f : sh->rope_base;
	float *rope_factors = NULL;
	int rope_freqs = sh->llama3_rope && !is_qwen2 && !is_qwen3;
	size_t n_t = 0, max_t = 4 + (size_t)sh->n_layer * 14;
	struct tensor *list = calloc(max_t, sizeof *list);

	w = gguf_writer_new(GGUF_DEFAULT_ALIGNMENT);
	uint32_t n_vocab = sh->n_vocab;
	if (vocab) {
		const struct gguf_kv *toks = NULL;
		int found = 0;
		if ((rc = gguf_get_arr(vocab, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks, &found, err)))
			goto out;
		if (!found || toks->arr_len == 0 || toks->arr_len > MU_MAX_VOCAB) {
			rc = mu_errf(err, MU_ERR_FORMAT, "--vocab: no usable tokenizer.ggml.tokens array");
			goto out;
		}
		n_vocab = (uint32_t)toks->arr_len;
	}
	if (!w || !list || (rope_freqs && !(rope_factors = malloc(head_dim / 2 * sizeof *rope_factors))) ||
	    (!vocab && gen_vocab(&v, n_vocab))) {
		rc = mu_errf(err, MU_ERR_NOMEM, "out of memory");
		goto out;
	}

	/* The tensors, in the order of the tensor table and of the data. */
	add(list, &n_t, recipe, sh, "token_embd.weight", ROLE_EMBD, 0, sh->n_embd, n_vocab, FILL_EMBD);
	if (rope_freqs) {
		llama3_rope_factors(rope_factors, head_dim, rope_base);
		add(list, &n_t, recipe, sh, "rope_freqs.weight", ROLE_VEC, 0, head_dim / 2, 1, FILL_NORM)->fixed =
			rope_factors;
	}
	for (uint32_t l = 0; l < sh->n_layer; l++) {
		const struct {
			const char *suffix;
			enum role role;
			uint32_t n_in, n_out;
			enum fill fill;
			int when;
		} t[] = {
			{"attn_norm.weight", ROLE_VEC, sh->n_embd, 1, FILL_NORM, 1},
			{"attn_q.weight", ROLE_MATRIX, sh->n_embd, q_dim, FILL_MATRIX, 1},
			{"attn_k.weight", ROLE_MATRIX, sh->n_embd, kv_dim, FILL_MATRIX, 1},
			{"attn_v.weight", ROLE_ATTN_V, sh->n_embd, kv_dim, FILL_MATRIX, 1},
			{"attn_q.bias", ROLE_VEC, q_dim, 1, FILL_BIAS, is_qwen2},
			{"attn_k.bias", ROLE_VEC, kv_dim, 1, FILL_BIAS, is_qwen2},
			{"attn_v.bias", ROLE_VEC, kv_dim, 1, FILL_BIAS, is_qwen2},
			{"attn_q_norm.weight", ROLE_VEC, head_dim, 1, FILL_NORM, is_qwen3},
			{"attn_k_norm.weight", ROLE_VEC, head_dim, 1, FILL_NORM, is_qwen3},
			{"attn_output.weight", ROLE_MATRIX, q_dim, sh->n_embd, FILL_MATRIX, 1},
			{"ffn_norm.weight", ROLE_VEC, sh->n_embd, 1, FILL_NORM, 1},
			{"ffn_gate.weight", ROLE_MATRIX, sh->n_embd, sh->n_ff, FILL_MATRIX, 1},
			{"ffn_up.weight", ROLE_MATRIX, sh->n_embd, sh->n_ff, FILL_MATRIX, 1},
			{"ffn_down.weight", ROLE_FFN_DOWN, sh->n_ff, sh->n_embd, FILL_MATRIX, 1},
		};
		for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
			if (!t[i].when)
				continue;
			snprintf(name, sizeof name, "blk.%u.%s", l, t[i].suffix);
			add(list, &n_t, recipe, sh, name, t[i].role, l, t[i].n_in, t[i].n_out, t[i].fill);
		}
	}
	add(list, &n_t, recipe, sh, "output_norm.weight", ROLE_VEC, 0, sh->n_embd, 1, FILL_NORM);
	if (!sh->tied)
		add(list, &n_t, recipe, sh, "output.weight", ROLE_OUTPUT, 0, sh->n_embd, n_vocab, FILL_MATRIX);

	uint64_t total = 0;
	for (size_t i = 0; i < n_t; i++) {
		const struct mu_type_kernels *k = mu_kernels_ref(list[i].type);
		if (!k || !k->quantize_row) {
			rc = mu_errf(err, MU_ERR_UNSUPPORTED, "%s: this build cannot write %s tensors", list[i].name,
				     mu_dtype_get(list[i].type)->name);
			goto out;
		}
		total += list[i].bytes;
	}

	snprintf(title, sizeof title, "mu gen-model %s %s %s seed %" PRIu64, arch, sh->name, recipe->name, seed);
#define KU32(suffix, val)                                                                    \
	do {                                                                                 \
		snprintf(key, sizeof key, "%s.%s", arch, suffix);                            \
		if ((rc = gguf_w_u32(w, key, val, err)))                                     \
			goto out;                                                            \
	} while (0)
#define KF32(suffix, val)                                                                    \
	do {                                                                                 \
		snprintf(key, sizeof key, "%s.%s", arch, suffix);                            \
		if ((rc = gguf_w_f32(w, key, val, err)))                                     \
			goto out;                                                            \
	} while (0)
	if ((rc = gguf_w_str(w, "general.architecture", arch, err)) ||
	    (rc = gguf_w_str(w, "general.name", title, err)) ||
	    (rc = gguf_w_u32(w, "general.file_type", recipe->file_type, err)))
		goto out;
	KU32("context_length", sh->n_ctx);
	KU32("embedding_length", sh->n_embd);
	KU32("block_count", sh->n_layer);
	KU32("feed_forward_length", sh->n_ff);
	KU32("attention.head_count", n_head);
	KU32("attention.head_count_kv", n_head_kv);
	KU32("rope.dimension_count", head_dim);
	if (head_dim != sh->n_embd / n_head) {
		KU32("attention.key_length", head_dim);
		KU32("attention.value_length", head_dim);
	}
	KF32("attention.layer_norm_rms_epsilon", is_qwen2 || is_qwen3 ? 1e-6f : 1e-5f);
	KF32("rope.freq_base", rope_base);
	KU32("vocab_size", n_vocab);
#undef KU32
#undef KF32
	if (vocab) {
		if ((rc = copy_tokenizer(w, vocab, err)))
			goto out;
	} else if ((rc = gguf_w_str(w, "tokenizer.ggml.model", "llama", err)) ||
	    (rc = gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tok, v.len, v.n, err)) ||
	    (rc = gguf_w_arr_f32(w, "tokenizer.ggml.scores", v.score, v.n, err)) ||
	    (rc = gguf_w_arr_i32(w, "tokenizer.ggml.token_type", v.type, v.n, err)) ||
	    (rc = gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1, err)) ||
	    (rc = gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2, err)) ||
	    (rc = gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 0, err)) ||
	    (rc = gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1, err)))
		goto out;

	for (size_t i = 0; i < n_t; i++) {
		uint64_t ne[2] = {list[i].n_in, list[i].n_out};
		if ((rc = gguf_w_tensor(w, list[i].name, list[i].type, list[i].n_dims, ne, err)))
			goto out;
	}
	if ((rc = gguf_w_begin(w, fd, err)))
		goto out;
	/* Progress in tenths of the tensor data, on one line of stderr. */
	fprintf(stderr, "mu gen-model: writing %s %s %s (seed %" PRIu64 "), %u layers, %.1f MiB of tensors:", arch,
		sh->name, recipe->name, seed, sh->n_layer, (double)total / (1024.0 * 1024.0));
	uint64_t done = 0;
	unsigned shown = 0;
	for (size_t i = 0; i < n_t; i++) {
		if ((rc = emit(w, &rng, &list[i], err)))
			goto out;
		done += list[i].bytes;
		for (; shown < 10 && done * 10 >= (uint64_t)(shown + 1) * total; shown++)
			fprintf(stderr, " %u%%", (shown + 1) * 10);
	}
	rc = gguf_w_end(w, err);
	fputc('\n', stderr);
out:
	free(list);
	free(rope_factors);
	free_vocab(&v);
	gguf_writer_free(w);
	return rc;
}

int cmd_gen_model(int argc, char **argv)
{
	const char *arch = "llama", *shape = NULL, *type_s = NULL, *out = NULL, *vocab_path = NULL, *val;
	uint64_t seed = 1;
	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if ((r = cli_opt(argc, argv, &i, "--arch", NULL, &arch)) ||
		    (r = cli_opt(argc, argv, &i, "--shape", NULL, &shape)) ||
		    (r = cli_opt(argc, argv, &i, "--type", NULL, &type_s)) ||
		    (r = cli_opt(argc, argv, &i, "--vocab", NULL, &vocab_path)) ||
		    (r = cli_opt(argc, argv, &i, "-o", "--output", &out))) {
			if (r < 0)
				return 2;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--seed", NULL, &val))) {
			if (r < 0 || cli_u64("--seed", val, &seed))
				return 2;
			continue;
		}
		fprintf(stderr, "mu gen-model: unexpected argument '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (!shape || !type_s || !out) {
		fprintf(stderr, "mu gen-model: --shape, --type and -o are required\n");
		usage(stderr);
		return 2;
	}
	if (strcmp(arch, "llama") && strcmp(arch, "qwen2") && strcmp(arch, "qwen3")) {
		fprintf(stderr, "mu gen-model: --arch must be llama, qwen2 or qwen3, not '%s'\n", arch);
		return 2;
	}
	const struct shape *sh = NULL;
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		if (!strcmp(shapes[i].name, shape))
			sh = &shapes[i];
	if (!sh) {
		fprintf(stderr, "mu gen-model: unknown shape '%s' (tiny, tiny-llama3, tiny-k, tiny-p, tiny-pu, stories15m, llama3.2-1b, "
				"tinyllama)\n",
			shape);
		return 2;
	}
	const struct recipe *recipe = NULL;
	for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++)
		if (!strcasecmp(recipes[i].name, type_s))
			recipe = &recipes[i];
	if (!recipe) {
		fprintf(stderr, "mu gen-model: --type must be f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k, q4_k_m or q5_k_m, "
				"not '%s'\n", type_s);
		return 2;
	}
	/* Write to a temporary name, then rename: a failed run never leaves a partial model. */
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", out, (int)getpid()) >= sizeof tmp) {
		fprintf(stderr, "mu gen-model: output path too long\n");
		return 2;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror("mu gen-model: cannot create output");
		return 1;
	}
	struct mu_error err;
	struct mu_session vs;
	enum mu_err rc = MU_OK;
	if (vocab_path && (rc = session_open(&vs, vocab_path, 0, 0, 1, &err)) != MU_OK) {
		close(fd);
		unlink(tmp);
		cli_error("gen-model", &err);
		return 1;
	}
	rc = write_model(fd, arch, sh, recipe, seed, vocab_path ? &vs.g : NULL, &err);
	if (vocab_path)
		session_close(&vs);
	if (rc == MU_OK && fsync(fd) != 0)
		rc = mu_errf(&err, MU_ERR_IO, "fsync failed");
	if (close(fd) != 0 && rc == MU_OK)
		rc = mu_errf(&err, MU_ERR_IO, "close failed");
	if (rc == MU_OK)
		rc = outfile_commit(tmp, out, 1, &err);
	if (rc) {
		unlink(tmp);
		cli_error("gen-model", &err);
		return 1;
	}
	return 0;
}
