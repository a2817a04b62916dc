/* fuzz_json.c — libFuzzer harness for the strict JSON parser.
 *
 * The first input byte picks the limits (odd: the tight ones of tests/test_json.c's table,
 * even: JSON_LIMITS_TOOL); the rest is the document, in an exactly sized buffer so ASan sees
 * any read past its end. Every
 * input is parsed twice, once with hashed and once with sorted duplicate-key checks, and the
 * two must agree to the letter. An accepted document must satisfy the token invariants, every
 * accessor is driven over every token, and its canonical re-serialization must parse to the
 * same token tree. A broken invariant traps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

static void require(int cond)
{
	if (!cond)
		__builtin_trap();
}

struct out {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct out *o, const void *s, size_t n)
{
	if (o->len + n > o->cap) {
		size_t c = o->cap ? o->cap : 256;
		while (c < o->len + n)
			c *= 2;
		uint8_t *q = realloc(o->p, c);
		require(q != NULL);
		o->p = q;
		o->cap = c;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void put_string(struct out *o, const struct json_doc *d, uint32_t t)
{
	static const char hex[] = "0123456789abcdef";
	uint32_t n = json_str_len(d, t);
	char *s = malloc((size_t)n + 1);
	size_t got = 0;
	require(s && json_str_decode(d, t, s, (size_t)n + 1, &got, NULL) == MU_OK && got == n);
	put(o, "\"", 1);
	for (size_t i = 0; i < got; i++) {
		uint8_t c = (uint8_t)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			put(o, e, 2);
		} else if (c < 0x20) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			put(o, e, 6);
		} else {
			put(o, &c, 1);
		}
	}
	put(o, "\"", 1);
	free(s);
}

static void serialize(struct out *o, const struct json_doc *d, uint32_t t)
{
	const struct json_tok *k = &d->tok[t];
	if (k->type == JSON_STRING) {
		put_string(o, d, t);
	} else if (k->type == JSON_ARRAY || k->type == JSON_OBJECT) {
		struct json_iter it;
		uint32_t key, val, i = 0;
		put(o, k->type == JSON_ARRAY ? "[" : "{", 1);
		json_iter_init(&it, d, t);
		while (json_iter_next(&it, &key, &val)) {
			if (i++)
				put(o, ",", 1);
			if (key != JSON_NONE) {
				put_string(o, d, key);
				put(o, ":", 1);
			}
			serialize(o, d, val);
		}
		put(o, k->type == JSON_ARRAY ? "]" : "}", 1);
	} else {
		put(o, d->src + k->start, k->len);
	}
}

static void accessors(const struct json_doc *d, uint32_t t)
{
	const struct json_tok *k = &d->tok[t];
	struct mu_error err;
	int64_t i;
	double f;
	int b;
	require(k->next > t && k->next <= d->n_tok && (uint64_t)k->start + k->len <= d->len);
	enum mu_err e = json_get_i64(d, t, &i, &err);
	require(k->type == JSON_NUMBER ? (e == MU_OK || e == MU_ERR_RANGE) : e == MU_ERR_FORMAT);
	e = json_get_f64(d, t, &f, &err);
	require(k->type == JSON_NUMBER ? (e == MU_OK || e == MU_ERR_RANGE) : e == MU_ERR_FORMAT);
	if (e == MU_OK)
		require(f == f); /* never NaN */
	e = json_get_bool(d, t, &b, &err);
	require((e == MU_OK) == (k->type == JSON_BOOL));
	require(json_is_null(d, t) == (k->type == JSON_NULL));
	if (k->type == JSON_STRING) {
		char *s = malloc((size_t)k->dec_len + 1);
		size_t n = 0;
		require(s && json_str_decode(d, t, s, (size_t)k->dec_len + 1, &n, &err) == MU_OK && n == k->dec_len);
		require(json_utf8_check(s, n) == n && json_str_eqn(d, t, s, n));
		require((memchr(s, 0, n) != NULL) == ((k->flags & JSON_TOK_NUL) != 0));
		if (n > 0)
			require(!json_str_eqn(d, t, s, n - 1));
		const char *raw;
		size_t rn;
		if (json_str_raw(d, t, &raw, &rn))
			require(rn == n && memcmp(raw, s, n) == 0);
		sink += (uint8_t)s[n / 2];
		free(s);
	} else if (k->type == JSON_ARRAY || k->type == JSON_OBJECT) {
		struct json_iter it;
		uint32_t key, val, c = 0, end = t + 1;
		json_iter_init(&it, d, t);
		while (json_iter_next(&it, &key, &val)) {
			require(k->type == JSON_OBJECT ? json_type(d, key) == JSON_STRING : key == JSON_NONE);
			if (key != JSON_NONE && !(d->tok[key].flags & JSON_TOK_NUL)) {
				/* lookup by the decoded key finds this very member (keys are unique) */
				char *s = malloc((size_t)d->tok[key].dec_len + 1);
				require(s && json_str_decode(d, key, s, (size_t)d->tok[key].dec_len + 1, NULL, NULL) == MU_OK);
				require(json_obj_get(d, t, s) == val);
				free(s);
			}
			end = d->tok[val].next;
			c++;
		}
		require(c == k->count && end == k->next);
		if (k->type == JSON_ARRAY && c > 0)
			require(json_arr_get(d, t, c - 1) != JSON_NONE && json_arr_get(d, t, c) == JSON_NONE);
	} else {
		require(k->next == t + 1);
	}
}

static int same_tree(const struct json_doc *a, const struct json_doc *b)
{
	if (a->n_tok != b->n_tok)
		return 0;
	for (uint32_t t = 0; t < a->n_tok; t++) {
		const struct json_tok *x = &a->tok[t], *y = &b->tok[t];
		if (x->type != y->type || x->count != y->count || x->next != y->next)
			return 0;
		if (x->type == JSON_NUMBER && (x->len != y->len || memcmp(a->src + x->start, b->src + y->start, x->len)))
			return 0;
		if (x->type == JSON_STRING) {
			char *s = malloc((size_t)x->dec_len + 1);
			require(s && json_str_decode(a, t, s, (size_t)x->dec_len + 1, NULL, NULL) == MU_OK);
			int eq = json_str_eqn(b, t, s, x->dec_len);
			free(s);
			if (!eq)
				return 0;
		}
	}
	return 1;
}

static enum mu_err parse(struct json_doc *d, const uint8_t *p, size_t n, const struct json_limits *lim, void **mem,
			 struct mu_error *err)
{
	size_t need;
	*mem = NULL;
	err->msg[0] = '\0';
	enum mu_err e = json_mem_size(lim, n, &need, err);
	if (e != MU_OK)
		return e;
	*mem = malloc(need);
	require(*mem != NULL);
	return json_parse(d, p, n, lim, *mem, need, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1u << 20)
		return 0;
	struct json_limits lim;
	if (data[0] & 1)
		lim = (struct json_limits){.max_bytes = 4096, .max_depth = 16, .max_tokens = 256, .max_string = 64,
					   .max_number = 32, .flags = 0};
	else
		lim = JSON_LIMITS_TOOL;
	size_t n = size - 1;
	uint8_t *doc = malloc(n ? n : 1);
	require(doc != NULL);
	memcpy(doc, data + 1, n);

	struct json_doc d, d2;
	struct mu_error err, err2;
	void *mem, *mem2;
	enum mu_err e = parse(&d, doc, n, &lim, &mem, &err);
	struct json_limits sorted = lim;
	sorted.flags = JSON_SORT_KEYS;
	enum mu_err e2 = parse(&d2, doc, n, &sorted, &mem2, &err2);
	require(e == e2);
	if (e != MU_OK) {
		require(e == MU_ERR_FORMAT || e == MU_ERR_RANGE);
		require(strcmp(err.msg, err2.msg) == 0 && memcmp(err.msg, "offset ", 7) == 0);
		require(d.n_tok == 0);
	} else {
		require(d.n_tok == d2.n_tok && d.n_tok >= 1 && d.tok[0].next == d.n_tok);
		for (uint32_t t = 0; t < d.n_tok; t++)
			accessors(&d, t);
		require(json_type(&d, d.n_tok) == -1);
		struct out o = {0};
		serialize(&o, &d, 0);
		struct json_limits big = JSON_LIMITS_TOOL;
		struct json_doc d3;
		void *mem3;
		require(parse(&d3, o.p, o.len, &big, &mem3, &err) == MU_OK);
		require(same_tree(&d, &d3));
		free(mem3);
		free(o.p);
	}
	free(mem);
	free(mem2);
	free(doc);
	return 0;
}
