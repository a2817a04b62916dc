/* vocab_hf.h — reading a Hugging Face tokenizer.json (byte-level BPE) into the tables of a
 * GGUF vocabulary, for `mu vocab` (cmd_vocab.c describes the fields and rules). Host side:
 * uses malloc and prints warnings on stderr. */
#ifndef MU_HOST_VOCAB_HF_H
#define MU_HOST_VOCAB_HF_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "pal/pal.h"
#include "wire/json.h"

/* A JSON file mapped and parsed with JSON_LIMITS_TOOL. */
struct hf_json {
	struct pal_map map;
	struct json_doc doc;
	void *mem;
};
/* Errors are prefixed with the path. */
enum mu_err hf_json_load(struct hf_json *f, const char *path, struct mu_error *err);
void hf_json_free(struct hf_json *f);

/* A pre-tokenizer the engine knows: its tokenizer.ggml.pre name, the general.architecture
 * that goes with it, the Split regex that identifies it, and the ignore_merges it expects. */
struct hf_pre {
	const char *name;
	const char *arch;
	const char *regex;
	int ignore_merges;
};
const struct hf_pre *hf_pre_by_name(const char *name);

struct hf_vocab {
	uint32_t n;        /* tokens, ids 0..n-1 */
	uint32_t n_added;  /* entries of added_tokens */
	uint32_t n_gaps;   /* ids no token claimed, filled with "[PAD<id>]" */
	uint32_t n_merges;
	char **tok;        /* n pieces (not NUL-terminated; tok_len bytes) */
	uint64_t *tok_len;
	int32_t *type;     /* llama.cpp token types */
	char **merge;      /* n_merges "LEFT RIGHT" strings */
	uint64_t *merge_len;
	const struct hf_pre *pre;
	int nfc;           /* normalizer is NFC */
	int ignore_merges;
	int32_t tp_bos, tp_eos; /* from the post-processor's TemplateProcessing, or -1 */
	/* storage */
	char *pool;
	char *gap_pool;
	uint8_t *from_vocab;
	uint32_t *map;     /* piece -> id + 1, open addressing */
	uint32_t map_mask;
};

/* Reads and validates path. force_pre (NULL: detect) must be a name hf_pre_by_name knows.
 * On failure v is freed and err names the file and the JSON path. */
enum mu_err hf_vocab_load(struct hf_vocab *v, const char *path, const char *force_pre, struct mu_error *err);
void hf_vocab_free(struct hf_vocab *v);

/* Id of the token whose piece is s[0..n), or -1. */
int32_t hf_vocab_find(const struct hf_vocab *v, const char *s, size_t n);

/* s[0..n) for a message: '"', '\\' and control bytes escaped, cut (at a character boundary,
 * with "...") to fit cap bytes including the NUL. */
void hf_show(const char *s, size_t n, char *out, size_t cap);

#endif
