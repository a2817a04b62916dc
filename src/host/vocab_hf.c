/* vocab_hf.c — tokenizer.json -> GGUF vocabulary tables (see vocab_hf.h, cmd_vocab.c). */
#include "host/vocab_hf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"

static const struct hf_pre pres[] = {
	{"llama-bpe", "llama",
	 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
	 "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
	 1},
	{"qwen2", "qwen2",
	 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
	 "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
	 0},
	/* ByteLevel's built-in regex; also recognized when spelled out in a Split */
	{"gpt-2", "gpt2", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", 0},
};

const struct hf_pre *hf_pre_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++)
		if (!strcmp(pres[i].name, name))
			return &pres[i];
	return NULL;
}

/* ---- small helpers ---- */

enum mu_err hf_json_load(struct hf_json *f, const char *path, struct mu_error *err)
{
	struct json_limits lim = JSON_LIMITS_TOOL;
	size_t need;
	memset(f, 0, sizeof *f);
	enum mu_err rc = pal_map_file(&f->map, path, err);
	if (rc != MU_OK)
		return rc;
	if ((rc = json_mem_size(&lim, f->map.len, &need, err)) == MU_OK) {
		f->mem = malloc(need);
		if (!f->mem)
			rc = mu_errf(err, MU_ERR_NOMEM, "out of memory for %zu bytes of JSON tokens", need);
		else
			rc = json_parse(&f->doc, f->map.data, f->map.len, &lim, f->mem, need, err);
	}
	if (rc != MU_OK) {
		mu_err_prefix(err, "%s", path);
		hf_json_free(f);
	}
	return rc;
}

void hf_json_free(struct hf_json *f)
{
	free(f->mem);
	pal_unmap(&f->map);
	memset(f, 0, sizeof *f);
}

void hf_show(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0, i = 0;
	if (cap < 8) {
		if (cap)
			out[0] = '\0';
		return;
	}
	while (i < n) {
		uint8_t c = (uint8_t)s[i];
		size_t k = 1;
		char tmp[8];
		if (c == '"' || c == '\\') {
			tmp[0] = '\\', tmp[1] = (char)c, k = 2;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(tmp, sizeof tmp, "\\x%02x", c);
			k = 4;
		} else {
			size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
			if (len > n - i)
				len = n - i;
			memcpy(tmp, s + i, len);
			k = len;
		}
		if (o + k + 4 > cap) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, tmp, k);
		o += k;
		i += (c == '"' || c == '\\' || c < 0x20 || c == 0x7f) ? 1 : k;
	}
	out[o] = '\0';
}

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3u;
	return h ^ h >> 29;
}

int32_t hf_vocab_find(const struct hf_vocab *v, const char *s, size_t n)
{
	if (!v->map)
		return -1;
	for (uint32_t h = (uint32_t)hash_bytes(s, n) & v->map_mask;; h = (h + 1) & v->map_mask) {
		uint32_t e = v->map[h];
		if (e == 0)
			return -1;
		if (v->tok_len[e - 1] == n && memcmp(v->tok[e - 1], s, n) == 0)
			return (int32_t)(e - 1);
	}
}

/* Decodes string token t into the pool. */
static char *pool_str(struct hf_vocab *v, size_t *used, size_t cap, const struct json_doc *d, uint32_t t, size_t *n,
		      struct mu_error *err)
{
	char *p = v->pool + *used;
	if (json_str_decode(d, t, p, cap - *used, n, err) != MU_OK)
		return NULL;
	*used += *n + 1;
	return p;
}

/* Optional member of a given type: JSON_NONE when absent or null. */
static enum mu_err opt_member(const struct json_doc *d, uint32_t obj, const char *path, const char *key,
			      enum json_type want, uint32_t *out, struct mu_error *err)
{
	uint32_t t = json_obj_get(d, obj, key);
	*out = JSON_NONE;
	if (t == JSON_NONE || json_is_null(d, t))
		return MU_OK;
	if (json_type(d, t) != (int)want)
		return mu_errf(err, MU_ERR_FORMAT, "%s%s%s: expected %s, found %s", path, *path ? "." : "", key,
			       json_type_name(want), json_type_name((enum json_type)json_type(d, t)));
	*out = t;
	return MU_OK;
}

static enum mu_err req_member(const struct json_doc *d, uint32_t obj, const char *path, const char *key,
			      enum json_type want, uint32_t *out, struct mu_error *err)
{
	enum mu_err rc = opt_member(d, obj, path, key, want, out, err);
	if (rc == MU_OK && *out == JSON_NONE)
		rc = mu_errf(err, MU_ERR_FORMAT, "%s%s%s: missing (expected %s)", path, *path ? "." : "", key,
			     json_type_name(want));
	return rc;
}

static enum mu_err opt_bool(const struct json_doc *d, uint32_t obj, const char *path, const char *key, int dflt,
			    int *out, struct mu_error *err)
{
	uint32_t t;
	enum mu_err rc = opt_member(d, obj, path, key, JSON_BOOL, &t, err);
	*out = dflt;
	if (rc == MU_OK && t != JSON_NONE)
		json_get_bool(d, t, out, err);
	return rc;
}

static void show_tok(const struct json_doc *d, uint32_t t, char *out, size_t cap)
{
	char buf[160];
	uint32_t n = json_str_len(d, t);
	if (n >= sizeof buf)
		n = sizeof buf - 1;
	/* decode at most what fits: a prefix of the raw bytes may cut an escape, so decode whole */
	char *tmp = malloc((size_t)json_str_len(d, t) + 1);
	if (tmp && json_str_decode(d, t, tmp, (size_t)json_str_len(d, t) + 1, NULL, NULL) == MU_OK) {
		memcpy(buf, tmp, n);
		hf_show(buf, n, out, cap);
	} else {
		snprintf(out, cap, "?");
	}
	free(tmp);
}

/* ---- model.vocab and added_tokens ---- */

static enum mu_err read_ids(struct hf_vocab *v, const struct json_doc *d, uint32_t vocab, uint32_t added,
			    uint32_t *max_id, struct mu_error *err)
{
	struct json_iter it;
	uint32_t k, val, i = 0;
	int64_t id;
	char shown[64];
	*max_id = 0;
	json_iter_init(&it, d, vocab);
	while (json_iter_next(&it, &k, &val)) {
		if (json_get_int(d, val, 0, MU_MAX_VOCAB - 1, &id, err) != MU_OK) {
			show_tok(d, k, shown, sizeof shown);
			return mu_err_prefix(err, "model.vocab[\"%s\"]", shown);
		}
		if ((uint32_t)id > *max_id)
			*max_id = (uint32_t)id;
	}
	json_iter_init(&it, d, added);
	for (; json_iter_next(&it, NULL, &val); i++) {
		char path[48];
		uint32_t t;
		snprintf(path, sizeof path, "added_tokens[%u]", i);
		if (json_type(d, val) != JSON_OBJECT)
			return mu_errf(err, MU_ERR_FORMAT, "%s: expected an object", path);
		enum mu_err rc = req_member(d, val, path, "id", JSON_NUMBER, &t, err);
		if (rc != MU_OK)
			return rc;
		if (json_get_int(d, t, 0, MU_MAX_VOCAB - 1, &id, err) != MU_OK)
			return mu_err_prefix(err, "%s.id", path);
		if ((uint32_t)id > *max_id)
			*max_id = (uint32_t)id;
		if ((rc = req_member(d, val, path, "content", JSON_STRING, &t, err)) != MU_OK)
			return rc;
		v->n_added++;
	}
	return MU_OK;
}

static enum mu_err fill_tokens(struct hf_vocab *v, const struct json_doc *d, uint32_t vocab, uint32_t added,
			       size_t *used, size_t cap, struct mu_error *err)
{
	struct json_iter it;
	uint32_t k, val, i = 0;
	int64_t id;
	size_t n;
	char shown[64], other[64];
	json_iter_init(&it, d, vocab);
	while (json_iter_next(&it, &k, &val)) {
		json_get_int(d, val, 0, MU_MAX_VOCAB - 1, &id, NULL);
		char *s = pool_str(v, used, cap, d, k, &n, err);
		if (!s) {
			show_tok(d, k, shown, sizeof shown);
			return mu_err_prefix(err, "model.vocab[\"%s\"]", shown);
		}
		hf_show(s, n, shown, sizeof shown);
		if (n == 0 || n > MU_MAX_TOKEN_BYTES)
			return mu_errf(err, MU_ERR_RANGE, "model.vocab[\"%s\"]: token of %zu bytes (must be 1..%u)", shown, n,
				       MU_MAX_TOKEN_BYTES);
		if (v->tok[id]) {
			hf_show(v->tok[id], v->tok_len[id], other, sizeof other);
			return mu_errf(err, MU_ERR_FORMAT, "model.vocab[\"%s\"]: id %u is already the id of \"%s\"", shown,
				       (uint32_t)id, other);
		}
		v->tok[id] = s;
		v->tok_len[id] = n;
		v->type[id] = 1;
		v->from_vocab[id] = 1;
	}
	json_iter_init(&it, d, added);
	for (; json_iter_next(&it, NULL, &val); i++) {
		uint32_t idt = json_obj_get(d, val, "id"), ct = json_obj_get(d, val, "content");
		int special;
		char path[48];
		snprintf(path, sizeof path, "added_tokens[%u]", i);
		enum mu_err rc = opt_bool(d, val, path, "special", 0, &special, err);
		if (rc != MU_OK)
			return rc;
		json_get_int(d, idt, 0, MU_MAX_VOCAB - 1, &id, NULL);
		char *s = pool_str(v, used, cap, d, ct, &n, err);
		if (!s)
			return mu_err_prefix(err, "%s.content", path);
		hf_show(s, n, shown, sizeof shown);
		if (n == 0 || n > MU_MAX_TOKEN_BYTES)
			return mu_errf(err, MU_ERR_RANGE, "%s.content: token of %zu bytes (must be 1..%u)", path, n,
				       MU_MAX_TOKEN_BYTES);
		if (v->tok[id]) {
			/* Repeating a model.vocab entry (same id, same text) only sets its type. */
			if (v->from_vocab[id] && v->type[id] == 1 && v->tok_len[id] == n && !memcmp(v->tok[id], s, n)) {
				v->type[id] = special ? 3 : 4;
				continue;
			}
			hf_show(v->tok[id], v->tok_len[id], other, sizeof other);
			return mu_errf(err, MU_ERR_FORMAT, "%s: id %u of \"%s\" is already the id of \"%s\"", path,
				       (uint32_t)id, shown, other);
		}
		v->tok[id] = s;
		v->tok_len[id] = n;
		v->type[id] = special ? 3 : 4;
	}
	return MU_OK;
}

/* Fills unclaimed ids and builds the piece -> id map; pieces must be distinct. */
static enum mu_err finish_tokens(struct hf_vocab *v, struct mu_error *err)
{
	uint32_t first_gap = 0;
	for (uint32_t id = 0; id < v->n; id++)
		if (!v->tok[id] && v->n_gaps++ == 0)
			first_gap = id;
	if (v->n_gaps) {
		v->gap_pool = malloc((size_t)v->n_gaps * 20);
		if (!v->gap_pool)
			return mu_errf(err, MU_ERR_NOMEM, "out of memory");
		char *p = v->gap_pool;
		for (uint32_t id = 0; id < v->n; id++) {
			if (v->tok[id])
				continue;
			int k = snprintf(p, 20, "[PAD%u]", id);
			v->tok[id] = p;
			v->tok_len[id] = (uint64_t)k;
			v->type[id] = 5;
			p += k + 1;
		}
		fprintf(stderr, "mu vocab: %u ids have no token (the first is %u): filled with \"[PAD<id>]\", type unused\n",
			v->n_gaps, first_gap);
	}
	uint32_t cap = 16;
	while (cap < 2 * v->n)
		cap *= 2;
	v->map = calloc(cap, sizeof *v->map);
	if (!v->map)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory");
	v->map_mask = cap - 1;
	for (uint32_t id = 0; id < v->n; id++) {
		uint32_t h = (uint32_t)hash_bytes(v->tok[id], v->tok_len[id]) & v->map_mask;
		for (; v->map[h]; h = (h + 1) & v->map_mask) {
			uint32_t o = v->map[h] - 1;
			/* every tok[] is set: the gap loop above filled the empty ones (the analyzer does
			 * not carry that out of the loop). NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
			if (v->tok_len[o] == v->tok_len[id] && !memcmp(v->tok[o], v->tok[id], v->tok_len[id])) {
				char shown[64];
				hf_show(v->tok[id], v->tok_len[id], shown, sizeof shown);
				return mu_errf(err, MU_ERR_FORMAT, "tokens %u and %u are both \"%s\" (pieces must be distinct)", o,
					       id, shown);
			}
		}
		v->map[h] = id + 1;
	}
	return MU_OK;
}

/* ---- model.merges ---- */

static int32_t find_vocab(const struct hf_vocab *v, const char *s, size_t n)
{
	int32_t id = hf_vocab_find(v, s, n);
	return id >= 0 && v->from_vocab[id] ? id : -1;
}

static enum mu_err read_merges(struct hf_vocab *v, const struct json_doc *d, uint32_t merges, size_t *used,
			       size_t cap, struct mu_error *err)
{
	static const char shape[] = "expected a string \"LEFT RIGHT\" or a 2-element array of strings";
	uint32_t n = d->tok[merges].count, i = 0, e;
	struct json_iter it;
	char both[2 * MU_MAX_TOKEN_BYTES];
	v->merge = malloc((size_t)(n ? n : 1) * sizeof *v->merge);
	v->merge_len = malloc((size_t)(n ? n : 1) * sizeof *v->merge_len);
	if (!v->merge || !v->merge_len)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory");
	json_iter_init(&it, d, merges);
	for (; json_iter_next(&it, NULL, &e); i++) {
		size_t len, la, lb;
		char *s;
		if (json_type(d, e) == JSON_STRING) {
			if (!(s = pool_str(v, used, cap, d, e, &len, err)))
				return mu_err_prefix(err, "model.merges[%u]", i);
			char *sp = memchr(s, ' ', len);
			if (!sp || sp == s || sp == s + len - 1 || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s)))
				return mu_errf(err, MU_ERR_FORMAT, "model.merges[%u]: expected \"LEFT RIGHT\" with exactly one space", i);
			la = (size_t)(sp - s);
			lb = len - la - 1;
		} else if (json_type(d, e) == JSON_ARRAY && d->tok[e].count == 2 && json_type(d, e + 1) == JSON_STRING &&
			   json_type(d, d->tok[e + 1].next) == JSON_STRING) {
			size_t start = *used;
			char *a = pool_str(v, used, cap, d, e + 1, &la, err);
			if (!a)
				return mu_err_prefix(err, "model.merges[%u][0]", i);
			a[la] = ' '; /* the NUL after a becomes the separator; b follows */
			if (!pool_str(v, used, cap, d, d->tok[e + 1].next, &lb, err))
				return mu_err_prefix(err, "model.merges[%u][1]", i);
			if (la == 0 || lb == 0)
				return mu_errf(err, MU_ERR_FORMAT, "model.merges[%u]: empty token", i);
			s = v->pool + start;
			len = la + 1 + lb;
			if (memchr(s, ' ', la) || memchr(s + la + 1, ' ', lb))
				return mu_errf(err, MU_ERR_UNSUPPORTED,
					       "model.merges[%u]: a token contains a space, which GGUF's \"LEFT RIGHT\" merges cannot carry", i);
		} else {
			return mu_errf(err, MU_ERR_FORMAT, "model.merges[%u]: %s", i, shape);
		}
		char shown[64];
		if (find_vocab(v, s, la) < 0) {
			hf_show(s, la, shown, sizeof shown);
			return mu_errf(err, MU_ERR_FORMAT, "model.merges[%u]: \"%s\" is not in model.vocab", i, shown);
		}
		if (find_vocab(v, s + la + 1, lb) < 0) {
			hf_show(s + la + 1, lb, shown, sizeof shown);
			return mu_errf(err, MU_ERR_FORMAT, "model.merges[%u]: \"%s\" is not in model.vocab", i, shown);
		}
		/* both sides are tokens, so each is at most MU_MAX_TOKEN_BYTES */
		memcpy(both, s, la);
		memcpy(both + la, s + la + 1, lb);
		if (find_vocab(v, both, la + lb) < 0) {
			hf_show(both, la + lb, shown, sizeof shown);
			return mu_errf(err, MU_ERR_FORMAT, "model.merges[%u]: the merged token \"%s\" is not in model.vocab", i,
				       shown);
		}
		v->merge[i] = s;
		v->merge_len[i] = len;
	}
	v->n_merges = i;
	return MU_OK;
}

/* ---- normalizer, pre_tokenizer, post_processor ---- */

struct pre_scan {
	uint32_t n_split, n_bytelevel;
	uint32_t pattern;      /* the Split's pattern string token */
	int regex;             /* pattern is {"Regex": ...} (not {"String": ...}) */
	int isolated, invert;
	int bl_regex, bl_prefix;
	char other[48];        /* the first unsupported step type */
};

static enum mu_err scan_pre(const struct json_doc *d, uint32_t node, const char *path, int depth, struct pre_scan *ps,
			    struct mu_error *err)
{
	uint32_t type, t;
	enum mu_err rc;
	if (json_type(d, node) != JSON_OBJECT)
		return mu_errf(err, MU_ERR_FORMAT, "%s: expected an object", path);
	if ((rc = req_member(d, node, path, "type", JSON_STRING, &type, err)) != MU_OK)
		return rc;
	if (json_str_eq(d, type, "Sequence") && depth < 4) {
		char sub[96];
		uint32_t list, i = 0, e;
		struct json_iter it;
		if ((rc = req_member(d, node, path, "pretokenizers", JSON_ARRAY, &list, err)) != MU_OK)
			return rc;
		json_iter_init(&it, d, list);
		for (; json_iter_next(&it, NULL, &e); i++) {
			snprintf(sub, sizeof sub, "%s.pretokenizers[%u]", path, i);
			if ((rc = scan_pre(d, e, sub, depth + 1, ps, err)) != MU_OK)
				return rc;
		}
	} else if (json_str_eq(d, type, "Split")) {
		uint32_t pat, behavior;
		ps->n_split++;
		if ((rc = req_member(d, node, path, "pattern", JSON_OBJECT, &pat, err)) != MU_OK)
			return rc;
		if ((t = json_obj_get(d, pat, "Regex")) != JSON_NONE)
			ps->regex = 1;
		else
			t = json_obj_get(d, pat, "String");
		if (json_type(d, t) != JSON_STRING)
			return mu_errf(err, MU_ERR_FORMAT, "%s.pattern: expected {\"Regex\": string} or {\"String\": string}", path);
		ps->pattern = t;
		if ((rc = req_member(d, node, path, "behavior", JSON_STRING, &behavior, err)) != MU_OK ||
		    (rc = opt_bool(d, node, path, "invert", 0, &ps->invert, err)) != MU_OK)
			return rc;
		ps->isolated = json_str_eq(d, behavior, "Isolated");
	} else if (json_str_eq(d, type, "ByteLevel")) {
		ps->n_bytelevel++;
		/* the tokenizers library's defaults: add_prefix_space true, use_regex true */
		if ((rc = opt_bool(d, node, path, "add_prefix_space", 1, &ps->bl_prefix, err)) != MU_OK ||
		    (rc = opt_bool(d, node, path, "use_regex", 1, &ps->bl_regex, err)) != MU_OK)
			return rc;
	} else if (!ps->other[0]) {
		show_tok(d, type, ps->other, sizeof ps->other);
	}
	return MU_OK;
}

static void print_pattern(const struct json_doc *d, uint32_t t)
{
	char *s = malloc((size_t)json_str_len(d, t) + 1);
	if (s && json_str_decode(d, t, s, (size_t)json_str_len(d, t) + 1, NULL, NULL) == MU_OK)
		fprintf(stderr, "mu vocab: pre_tokenizer Split pattern: %s\n", s);
	free(s);
}

/* Names the pre-tokenizer, or explains in err why it is not one the engine knows. */
static enum mu_err detect_pre(const struct json_doc *d, const struct pre_scan *ps, const struct hf_pre **out,
			      struct mu_error *err)
{
	*out = NULL;
	if (ps->other[0])
		return mu_errf(err, MU_ERR_UNSUPPORTED, "pre_tokenizer: step \"%s\" is not supported", ps->other);
	if (ps->n_split == 0 && ps->n_bytelevel == 1 && ps->bl_regex && !ps->bl_prefix) {
		*out = hf_pre_by_name("gpt-2");
		return MU_OK;
	}
	if (ps->n_split == 1 && ps->n_bytelevel == 1 && !ps->bl_regex && !ps->bl_prefix && ps->isolated && !ps->invert &&
	    ps->regex) {
		for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++)
			if (json_str_eq(d, ps->pattern, pres[i].regex))
				*out = &pres[i];
		if (*out)
			return MU_OK;
		print_pattern(d, ps->pattern);
		return mu_errf(err, MU_ERR_UNSUPPORTED,
			       "pre_tokenizer: the Split regex (printed above) is neither Llama 3's nor Qwen2's");
	}
	if (ps->n_split == 1)
		print_pattern(d, ps->pattern);
	return mu_errf(err, MU_ERR_UNSUPPORTED,
		       "pre_tokenizer: %u Split (%s%s) and %u ByteLevel (use_regex %s, add_prefix_space %s) is not a known layout",
		       ps->n_split, ps->n_split && !ps->regex ? "plain string, " : "",
		       ps->n_split && (!ps->isolated || ps->invert) ? "not Isolated" : "Isolated", ps->n_bytelevel,
		       ps->bl_regex ? "true" : "false", ps->bl_prefix ? "true" : "false");
}

static enum mu_err read_pre(struct hf_vocab *v, const struct json_doc *d, const char *force, struct mu_error *err)
{
	uint32_t node, norm, type;
	struct pre_scan ps;
	const struct hf_pre *found = NULL;
	enum mu_err rc;
	memset(&ps, 0, sizeof ps);

	if ((rc = opt_member(d, 0, "", "normalizer", JSON_OBJECT, &norm, err)) != MU_OK)
		return rc;
	if (norm != JSON_NONE) {
		if ((rc = req_member(d, norm, "normalizer", "type", JSON_STRING, &type, err)) != MU_OK)
			return rc;
		if (!json_str_eq(d, type, "NFC")) {
			char shown[48];
			show_tok(d, type, shown, sizeof shown);
			return mu_errf(err, MU_ERR_UNSUPPORTED, "normalizer: type \"%s\" is not supported (only null or NFC)", shown);
		}
		v->nfc = 1;
	}

	if ((rc = opt_member(d, 0, "", "pre_tokenizer", JSON_OBJECT, &node, err)) != MU_OK)
		return rc;
	if (node == JSON_NONE)
		rc = mu_errf(err, MU_ERR_UNSUPPORTED, "pre_tokenizer: missing or null (byte-level BPE needs one)");
	else if ((rc = scan_pre(d, node, "pre_tokenizer", 0, &ps, err)) == MU_OK)
		rc = detect_pre(d, &ps, &found, err);
	if (rc != MU_OK && rc != MU_ERR_UNSUPPORTED)
		return rc; /* malformed, not merely unknown: --pre does not help */
	if (force) {
		v->pre = hf_pre_by_name(force);
		if (rc != MU_OK)
			fprintf(stderr, "mu vocab: note: %s; using --pre %s\n", err->msg, force);
		else if (found != v->pre)
			fprintf(stderr, "mu vocab: note: pre_tokenizer looks like %s; using --pre %s\n", found->name, force);
	} else {
		if (rc != MU_OK) {
			char why[MU_ERROR_MSG_MAX];
			memcpy(why, err->msg, sizeof why);
			return mu_errf(err, rc, "%s; pass --pre llama-bpe, qwen2 or gpt-2 to force one", why);
		}
		v->pre = found;
	}

	int is_qwen2 = !strcmp(v->pre->name, "qwen2");
	if (v->nfc && !is_qwen2) {
		if (!force)
			return mu_errf(err, MU_ERR_UNSUPPORTED, "normalizer: NFC goes with the qwen2 pre-tokenizer, not with %s",
				       v->pre->name);
		fprintf(stderr, "mu vocab: warning: normalizer NFC is ignored by the %s pre-tokenizer\n", v->pre->name);
	}
	if (!v->nfc && is_qwen2)
		fprintf(stderr, "mu vocab: warning: no NFC normalizer, but the qwen2 pre-tokenizer applies NFC\n");
	if (v->ignore_merges != v->pre->ignore_merges)
		fprintf(stderr, "mu vocab: warning: model.ignore_merges is %s, but %s expects %s; the engine will use %s\n",
			v->ignore_merges ? "true" : "false", v->pre->name, v->pre->ignore_merges ? "true" : "false",
			v->pre->ignore_merges ? "true" : "false");
	return MU_OK;
}

/* A TemplateProcessing (maybe inside a Sequence) whose "single" template starts or ends with
 * a special token: add_bos / add_eos. */
static enum mu_err special_of(const struct hf_vocab *v, const struct json_doc *d, uint32_t piece, const char *path,
			      int32_t *id, struct mu_error *err)
{
	uint32_t st = json_obj_get(d, piece, "SpecialToken");
	if (st == JSON_NONE)
		return MU_OK;
	uint32_t name = json_obj_get(d, st, "id");
	if (json_type(d, name) != JSON_STRING)
		return mu_errf(err, MU_ERR_FORMAT, "%s.SpecialToken.id: expected a string", path);
	char *s = malloc((size_t)json_str_len(d, name) + 1);
	size_t n;
	enum mu_err rc = s ? json_str_decode(d, name, s, (size_t)json_str_len(d, name) + 1, &n, err)
			   : mu_errf(err, MU_ERR_NOMEM, "out of memory");
	if (rc == MU_OK && (*id = hf_vocab_find(v, s, n)) < 0) {
		char shown[64];
		hf_show(s, n, shown, sizeof shown);
		rc = mu_errf(err, MU_ERR_FORMAT, "%s: special token \"%s\" is not in the vocabulary", path, shown);
	}
	free(s);
	return rc;
}

static enum mu_err read_post(struct hf_vocab *v, const struct json_doc *d, uint32_t node, const char *path, int depth,
			     struct mu_error *err)
{
	if (node == JSON_NONE || json_type(d, node) != JSON_OBJECT)
		return MU_OK;
	uint32_t type = json_obj_get(d, node, "type");
	char sub[96];
	enum mu_err rc;
	if (json_str_eq(d, type, "Sequence") && depth < 4) {
		uint32_t list = json_obj_get(d, node, "processors"), e, i = 0;
		struct json_iter it;
		json_iter_init(&it, d, list);
		for (; json_iter_next(&it, NULL, &e); i++) {
			snprintf(sub, sizeof sub, "%s.processors[%u]", path, i);
			if ((rc = read_post(v, d, e, sub, depth + 1, err)) != MU_OK)
				return rc;
		}
		return MU_OK;
	}
	if (!json_str_eq(d, type, "TemplateProcessing"))
		return MU_OK;
	uint32_t single;
	if ((rc = req_member(d, node, path, "single", JSON_ARRAY, &single, err)) != MU_OK)
		return rc;
	uint32_t n = d->tok[single].count;
	if (n == 0)
		return MU_OK;
	snprintf(sub, sizeof sub, "%s.single[0]", path);
	if ((rc = special_of(v, d, json_arr_get(d, single, 0), sub, &v->tp_bos, err)) != MU_OK)
		return rc;
	if (n > 1) {
		snprintf(sub, sizeof sub, "%s.single[%u]", path, n - 1);
		rc = special_of(v, d, json_arr_get(d, single, n - 1), sub, &v->tp_eos, err);
	}
	return rc;
}

/* ---- the whole file ---- */

static enum mu_err load(struct hf_vocab *v, const struct json_doc *d, const char *force_pre, struct mu_error *err)
{
	uint32_t model, type, vocab, merges, added, t, max_id;
	enum mu_err rc;
	int flag;
	if (json_type(d, 0) != JSON_OBJECT)
		return mu_errf(err, MU_ERR_FORMAT, "expected a JSON object at the top level");
	if ((rc = req_member(d, 0, "", "model", JSON_OBJECT, &model, err)) ||
	    (rc = req_member(d, model, "model", "type", JSON_STRING, &type, err)))
		return rc;
	if (!json_str_eq(d, type, "BPE")) {
		char shown[48];
		show_tok(d, type, shown, sizeof shown);
		return mu_errf(err, MU_ERR_UNSUPPORTED, "model.type: \"%s\" is not supported (only BPE)", shown);
	}
	if ((rc = opt_bool(d, model, "model", "byte_fallback", 0, &flag, err)))
		return rc;
	if (flag)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "model.byte_fallback: true is not supported (byte-level BPE only)");
	static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
	for (int i = 0; i < 2; i++) {
		if ((rc = opt_member(d, model, "model", affixes[i], JSON_STRING, &t, err)))
			return rc;
		if (t != JSON_NONE && json_str_len(d, t) != 0)
			return mu_errf(err, MU_ERR_UNSUPPORTED, "model.%s: a non-empty affix is not supported", affixes[i]);
	}
	if ((rc = opt_bool(d, model, "model", "ignore_merges", 0, &v->ignore_merges, err)) ||
	    (rc = req_member(d, model, "model", "vocab", JSON_OBJECT, &vocab, err)) ||
	    (rc = req_member(d, model, "model", "merges", JSON_ARRAY, &merges, err)) ||
	    (rc = opt_member(d, 0, "", "added_tokens", JSON_ARRAY, &added, err)))
		return rc;
	if (d->tok[vocab].count == 0)
		return mu_errf(err, MU_ERR_FORMAT, "model.vocab: empty");
	if ((rc = read_ids(v, d, vocab, added, &max_id, err)))
		return rc;

	v->n = max_id + 1;
	v->tok = calloc(v->n, sizeof *v->tok);
	v->tok_len = calloc(v->n, sizeof *v->tok_len);
	v->type = calloc(v->n, sizeof *v->type);
	v->from_vocab = calloc(v->n, 1);
	/* Every decoded string plus its NUL is shorter than its JSON spelling (quotes, and for a
	 * merge pair the brackets and comma), so the file size bounds the pool. */
	size_t cap = d->len + 16, used = 0;
	v->pool = malloc(cap);
	if (!v->tok || !v->tok_len || !v->type || !v->from_vocab || !v->pool)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory for %u tokens", v->n);
	if ((rc = fill_tokens(v, d, vocab, added, &used, cap, err)) || (rc = finish_tokens(v, err)) ||
	    (rc = read_merges(v, d, merges, &used, cap, err)) || (rc = read_pre(v, d, force_pre, err)))
		return rc;
	return read_post(v, d, json_obj_get(d, 0, "post_processor"), "post_processor", 0, err);
}

enum mu_err hf_vocab_load(struct hf_vocab *v, const char *path, const char *force_pre, struct mu_error *err)
{
	struct hf_json f;
	memset(v, 0, sizeof *v);
	v->tp_bos = v->tp_eos = -1;
	enum mu_err rc = hf_json_load(&f, path, err);
	if (rc != MU_OK)
		return rc;
	rc = load(v, &f.doc, force_pre, err);
	hf_json_free(&f);
	if (rc != MU_OK) {
		mu_err_prefix(err, "%s", path);
		hf_vocab_free(v);
	}
	return rc;
}

void hf_vocab_free(struct hf_vocab *v)
{
	free(v->tok);
	free(v->tok_len);
	free(v->type);
	free(v->merge);
	free(v->merge_len);
	free(v->pool);
	free(v->gap_pool);
	free(v->from_vocab);
	free(v->map);
	memset(v, 0, sizeof *v);
	v->tp_bos = v->tp_eos = -1;
}
