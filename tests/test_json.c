/* test_json.c — the strict JSON parser: a table of documents that must be accepted or refused
 * (every grammar rule, escapes, surrogates, UTF-8 edge cases, duplicate keys, each limit at
 * and one past its value), the token layout, every accessor, exact number reading, both
 * duplicate-key paths including an adversarial collision set, a deterministic mutation loop
 * (run it under ASan), and the real 9-11 MB tokenizer.json files from ../shared.
 *
 * `test_json --write-corpus DIR` writes the fuzz seed corpus (the table's documents and the
 * mutation seeds, each behind fuzz_json's limits byte) to DIR. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pal/pal.h"
#include "test.h"
#include "wire/json.h"
#include "wire/json_int.h"

static const struct json_limits small = {
	.max_bytes = 4096, .max_depth = 16, .max_tokens = 256, .max_string = 64, .max_number = 32, .flags = 0};

/* ---- parsing helper: exact-size copies so ASan sees any overread ---- */

struct parsed {
	struct json_doc doc;
	uint8_t *src;
	void *mem;
};

static enum mu_err parse_lim(struct parsed *p, const void *text, size_t len, const struct json_limits *lim,
			     struct mu_error *err)
{
	size_t need = 0;
	memset(p, 0, sizeof *p);
	err->code = MU_OK;
	err->msg[0] = '\0';
	p->src = malloc(len ? len : 1);
	if (!p->src)
		exit(2);
	if (len)
		memcpy(p->src, text, len);
	enum mu_err rc = json_mem_size(lim, len, &need, err);
	if (rc != MU_OK)
		return rc;
	p->mem = malloc(need);
	if (!p->mem)
		exit(2);
	return json_parse(&p->doc, p->src, len, lim, p->mem, need, err);
}

static void parsed_free(struct parsed *p)
{
	free(p->src);
	free(p->mem);
	memset(p, 0, sizeof *p);
}

static enum mu_err parse_once(const char *text, size_t len, const struct json_limits *lim, struct mu_error *err)
{
	struct parsed p;
	enum mu_err rc = parse_lim(&p, text, len, lim, err);
	parsed_free(&p);
	return rc;
}

/* ---- the table ---- */

struct tcase {
	const char *doc;
	size_t len;        /* 0: strlen(doc) */
	enum mu_err rc;
	const char *msg;   /* substring the error message must contain, or NULL */
};

#define OK(d) {d, 0, MU_OK, NULL}
#define BAD(d, m) {d, 0, MU_ERR_FORMAT, m}
#define BADN(d, n, m) {d, n, MU_ERR_FORMAT, m}
#define BIG(d, m) {d, 0, MU_ERR_RANGE, m}

static const struct tcase cases[] = {
	/* scalars and whitespace */
	OK("0"), OK("-0"), OK("1"), OK("-1"), OK("123456789"), OK("1.5"), OK("-0.0"), OK("1e5"), OK("1E5"),
	OK("1e+5"), OK("1e-5"), OK("0.5e-10"), OK("9007199254740993"), OK("true"), OK("false"), OK("null"),
	OK("\"\""), OK("\"abc\""), OK(" \t\r\n1 \t\r\n"), OK("[]"), OK("{}"), OK("[ ]"), OK("{ }"), OK(" [ 1 , 2 ] "),
	OK("{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}"), OK("[[[[]]]]"), OK("[{}, [], \"\", 0]"),
	OK("{\"\":0}"), OK("{\"a\":{\"a\":{\"a\":1}}}"), OK("[1,1,1,1]"), OK("{\"a\":1,\"A\":2}"),
	/* escapes */
	OK("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""), OK("\"\\u0041\\u00e9\\u20ac\""), OK("\"\\uD83D\\uDE00\""),
	OK("\"\\ud83d\\ude00\""), OK("\"\\u0000\""), OK("\"\\uFFFF\""), OK("\"\\uDBFF\\uDFFF\""),
	OK("\"\\uD800\\uDC00\""), OK("\"\\uE000\""), OK("\"\\u007f\""),
	/* UTF-8 edge cases, raw */
	OK("\"\xc2\x80\""), OK("\"\xdf\xbf\""), OK("\"\xe0\xa0\x80\""), OK("\"\xed\x9f\xbf\""), OK("\"\xee\x80\x80\""),
	OK("\"\xef\xbf\xbf\""), OK("\"\xf0\x90\x80\x80\""), OK("\"\xf4\x8f\xbf\xbf\""), OK("\"\x7f\""),
	OK("\"\xe2\x82\xac \xf0\x9f\x98\x80\""), OK("{\"\xc3\xa9\":1,\"e\xcc\x81\":2}"),
	/* structure */
	BAD("", "expected a value"), BAD("   ", "expected a value"), BAD("[", "expected a value"),
	BAD("]", "expected a value"), BAD("{", "expected a string key"), BAD("[1", "expected ',' or ']'"),
	BAD("{\"a\":1", "expected ',' or '}'"), BAD("{\"a\"}", "expected ':'"), BAD("{\"a\" 1}", "expected ':'"),
	BAD("{\"a\":}", "expected a value"), BAD("{1:2}", "expected a string key"), BAD("{a:1}", "expected a string key"),
	BAD("[1 2]", "expected ',' or ']' after array element"), BAD("{\"a\":1 \"b\":2}", "after object member"),
	BAD("[1,]", "trailing comma"), BAD("{\"a\":1,}", "trailing comma"), BAD("[,1]", "expected a value"),
	BAD("[1,,2]", "expected a value"), BAD("[}", "expected a value or ']'"), BAD("{]", "expected a key or '}'"),
	BAD("[1}", "expected ',' or ']'"), BAD("{\"a\":1]", "expected ',' or '}'"), BAD("1 2", "unexpected data"),
	BAD("[] []", "unexpected data"), BAD("{}x", "unexpected data"), BAD("\"a\" \"b\"", "unexpected data"),
	BAD("[1]]", "unexpected data"), BAD("nul", "invalid literal"), BAD("tru", "invalid literal"),
	BAD("True", "expected a value"), BAD("NULL", "expected a value"), BAD("truex", "unexpected data"),
	BAD("[nulll]", "expected ','"), BAD("NaN", "expected a value"), BAD("Infinity", "expected a value"),
	BAD("-Infinity", "expected a digit after '-'"), BAD("[1 /* c */]", "expected ','"),
	BAD("/* c */ 1", "comments are not allowed"), BAD("// c\n1", "comments are not allowed"),
	BAD("'a'", "double quotes"), BAD("['a']", "double quotes"), BAD("{'a':1}", "expected a string key"),
	BAD("\xef\xbb\xbf{}", "expected a value"), BAD("\x0c" "1", "expected a value"), BAD("[\x0b]", "expected a value"),
	BADN("1\0", 2, "unexpected data"), BADN("\0", 1, "expected a value"), BAD("\xc3\xa9", "expected a value"),
	BAD("{\"a\":1}\xc2\xa0", "unexpected data"),
	/* numbers */
	BAD("01", "leading zero"), BAD("-01", "leading zero"), BAD("00", "leading zero"), BAD("-", "expected a digit after '-'"),
	BAD("- 1", "expected a digit after '-'"), BAD("--1", "expected a digit after '-'"), BAD("+1", "expected a value"),
	BAD(".5", "expected a value"), BAD("1.", "expected a digit after '.'"), BAD("1.e5", "expected a digit after '.'"),
	BAD("1e", "digit in the exponent"), BAD("1e+", "digit in the exponent"), BAD("1E-", "digit in the exponent"),
	BAD("0x10", "unexpected data"), BAD("1.5.5", "unexpected data"), BAD("[1e5e5]", "expected ','"),
	BAD("1ee5", "digit in the exponent"), BAD("[-]", "expected a digit after '-'"), BAD("[.1]", "expected a value"),
	/* strings */
	BAD("\"abc", "unterminated string"), BAD("\"abc\\", "unterminated string"), BAD("\"\\\"", "unterminated string"),
	BAD("\"\\x41\"", "invalid escape"), BAD("\"\\a\"", "invalid escape"), BAD("\"\\'\"", "invalid escape"),
	BAD("\"\\U0041\"", "invalid escape"), BAD("\"\\0\"", "invalid escape"), BAD("\"\\u41\"", "four hex digits"),
	BAD("\"\\u004G\"", "four hex digits"), BAD("\"\\u\"", "four hex digits"), BAD("\"\\u 041\"", "four hex digits"),
	BAD("\"\\uD800\"", "high surrogate"), BAD("\"\\uD800x\"", "high surrogate"), BAD("\"\\uD800\\n\"", "high surrogate"),
	BAD("\"\\uD800\\u0041\"", "high surrogate"), BAD("\"\\uD800\\uD800\"", "high surrogate"),
	BAD("\"\\uDC00\"", "lone low surrogate"), BAD("\"\\uDFFF\\uD800\"", "lone low surrogate"),
	BAD("\"\\uD83D\\uDE0\"", "high surrogate"), BAD("\"\\uD83D\"", "high surrogate"),
	BAD("\"a\x01\"", "control character"), BAD("\"a\nb\"", "control character"), BAD("\"\t\"", "control character"),
	BAD("\"\x1f\"", "control character"), BADN("\"a\0b\"", 5, "control character"),
	/* invalid UTF-8 in strings */
	BAD("\"\x80\"", "UTF-8"), BAD("\"\xbf\"", "UTF-8"), BAD("\"\xc0\x80\"", "UTF-8"), BAD("\"\xc1\xbf\"", "UTF-8"),
	BAD("\"\xc2\"", "UTF-8"), BAD("\"\xc2\x41\"", "UTF-8"), BAD("\"\xe0\x80\x80\"", "UTF-8"),
	BAD("\"\xe0\x9f\xbf\"", "UTF-8"), BAD("\"\xed\xa0\x80\"", "UTF-8"), BAD("\"\xed\xbf\xbf\"", "UTF-8"),
	BAD("\"\xed\xa0\xbd\xed\xb8\x80\"", "UTF-8"), BAD("\"\xe2\x82\"", "UTF-8"), BAD("\"\xf0\x80\x80\x80\"", "UTF-8"),
	BAD("\"\xf0\x8f\xbf\xbf\"", "UTF-8"), BAD("\"\xf4\x90\x80\x80\"", "UTF-8"), BAD("\"\xf5\x80\x80\x80\"", "UTF-8"),
	BAD("\"\xf8\x88\x80\x80\x80\"", "UTF-8"), BAD("\"\xfe\"", "UTF-8"), BAD("\"\xff\"", "UTF-8"),
	BAD("\"\xf0\x9f\x98\"", "UTF-8"), BAD("\"\xf0\x9f\"", "UTF-8"), BAD("{\"\xff\":1}", "UTF-8"), BAD("\"\xe2\x82", "UTF-8"),
	/* duplicate keys, compared after unescaping */
	BAD("{\"a\":1,\"a\":2}", "duplicate key"), BAD("{\"a\":1,\"\\u0061\":2}", "duplicate key"),
	BAD("{\"\\u0061\":1,\"a\":2}", "duplicate key"), BAD("{\"\\/\":1,\"/\":2}", "duplicate key"),
	BAD("{\"\xc3\xa9\":1,\"\\u00e9\":2}", "duplicate key"), BAD("{\"\\uD83D\\uDE00\":1,\"\xf0\x9f\x98\x80\":2}", "duplicate key"),
	BAD("{\"\":1,\"\":2}", "duplicate key"), BAD("{\"a\":{\"b\":1,\"b\":2}}", "duplicate key"),
	BAD("[{\"x\":1},{\"y\":1,\"y\":1}]", "duplicate key"), BAD("{\"a\":1,\"b\":2,\"c\":3,\"b\":4}", "offset 19: duplicate key in object (same as the key at offset 7)"),
	BAD("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"e\":10}", "offset 55"),
	BAD("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"\\u0065\":10}", "same as the key at offset 25"),
	/* messages carry the offset of the problem */
	BAD("{\"a\":1 x", "offset 7: expected ',' or '}' after object member"), BAD("[1,\n  2,\n  x]", "offset 11:"),
	/* limits (small: depth 16, tokens 256, string 64 bytes, number 32 characters) */
	OK("[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]"), BIG("[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]", "offset 16: nesting deeper than 16 levels (max_depth)"),
	OK("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":1}}}}}}}}}}}}}}}}"),
	BIG("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":1}}}}}}}}}}}}}}}}}", "max_depth"),
	OK("\"0123456789012345678901234567890123456789012345678901234567890123\""),
	BIG("\"01234567890123456789012345678901234567890123456789012345678901234\"", "offset 0: string longer than 64 bytes (max_string)"),
	OK("\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	   "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\""),
	BIG("\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	    "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9x\"", "max_string"),
	BIG("{\"01234567890123456789012345678901234567890123456789012345678901234\":1}", "max_string"),
	OK("12345678901234567890123456789012"), BIG("123456789012345678901234567890123", "offset 0: number longer than 32 characters (max_number)"),
	OK("-1.34567890123456789012345678e-1"), BIG("[1, -1.3456789012345678901234567890e-1]", "offset 4: number longer"),
};

static void test_table(void)
{
	struct json_limits sorted = small;
	sorted.flags = JSON_SORT_KEYS;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct tcase *c = &cases[i];
		size_t len = c->len ? c->len : strlen(c->doc);
		struct mu_error err, err2;
		enum mu_err rc = parse_once(c->doc, len, &small, &err);
		CHECK(rc == c->rc, "case %zu (%.40s): got %s (%s), want %s", i, c->doc, mu_err_name(rc), err.msg,
		      mu_err_name(c->rc));
		if (c->msg)
			CHECK(strstr(err.msg, c->msg) != NULL, "case %zu (%.40s): message '%s' lacks '%s'", i, c->doc,
			      err.msg, c->msg);
		if (rc != MU_OK)
			CHECK(strncmp(err.msg, "offset ", 7) == 0, "case %zu: message '%s' has no offset", i, err.msg);
		/* The sort path must agree with the hash path, message included. */
		enum mu_err rc2 = parse_once(c->doc, len, &sorted, &err2);
		CHECK(rc2 == rc && (rc == MU_OK || strcmp(err.msg, err2.msg) == 0), "case %zu: sorted keys give %s '%s'", i,
		      err2.msg, mu_err_name(rc2));
	}
}

/* ---- the limits: tokens and bytes ---- */

static void test_limits(void)
{
	struct json_limits lim = small;
	struct mu_error err;
	char buf[1024];

	/* max_tokens: [1,1,...] with n ones has n + 1 tokens */
	lim.max_tokens = 10;
	strcpy(buf, "[1,1,1,1,1,1,1,1,1]");
	CHECK(parse_once(buf, strlen(buf), &lim, &err) == MU_OK, "%s", err.msg);
	strcpy(buf, "[1,1,1,1,1,1,1,1,1,1]");
	CHECK(parse_once(buf, strlen(buf), &lim, &err) == MU_ERR_RANGE && strstr(err.msg, "offset 19: more than 10 tokens (max_tokens)"),
	      "%s", err.msg);
	strcpy(buf, "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5}");
	lim.max_tokens = 11;
	CHECK(parse_once(buf, strlen(buf), &lim, &err) == MU_OK, "%s", err.msg);
	lim.max_tokens = 10;
	CHECK(parse_once(buf, strlen(buf), &lim, &err) == MU_ERR_RANGE && strstr(err.msg, "max_tokens"), "%s", err.msg);
	lim.max_tokens = 1;
	CHECK(parse_once("7", 1, &lim, &err) == MU_OK, "%s", err.msg);
	CHECK(parse_once("[]", 2, &lim, &err) == MU_OK, "%s", err.msg);
	CHECK(parse_once("[7]", 3, &lim, &err) == MU_ERR_RANGE, "%s", err.msg);

	/* max_bytes: at the limit, one past it */
	lim = small;
	lim.max_bytes = 8;
	CHECK(parse_once("[1,2,3] ", 8, &lim, &err) == MU_OK, "%s", err.msg);
	CHECK(parse_once("[1,2,3]  ", 9, &lim, &err) == MU_ERR_RANGE && strstr(err.msg, "offset 8:") &&
		      strstr(err.msg, "max_bytes"), "%s", err.msg);
	size_t need;
	CHECK(json_mem_size(&lim, 9, &need, &err) == MU_ERR_RANGE, "mem size past max_bytes");

	/* max_depth 0: scalars only */
	lim = small;
	lim.max_depth = 0;
	CHECK(parse_once("\"x\"", 3, &lim, &err) == MU_OK, "%s", err.msg);
	CHECK(parse_once("[]", 2, &lim, &err) == MU_ERR_RANGE && strstr(err.msg, "offset 0:"), "%s", err.msg);

	/* a deep document at a large limit, and one level past it, without recursion */
	lim = JSON_LIMITS_TOOL;
	lim.max_depth = 10000;
	size_t n = 10000;
	char *deep = malloc(2 * n + 2);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	CHECK(parse_once(deep, 2 * n, &lim, &err) == MU_OK, "depth 10000: %s", err.msg);
	deep[n] = '[';
	memmove(deep + n + 1, deep + n, n);
	deep[n] = '[';
	CHECK(parse_once(deep, 2 * n + 2, &lim, &err) == MU_ERR_RANGE && strstr(err.msg, "offset 10000:"), "%s", err.msg);
	free(deep);

	/* unusable limits and too little memory */
	lim = small;
	lim.max_tokens = 0;
	CHECK(json_mem_size(&lim, 4, &need, &err) == MU_ERR_ARG, "max_tokens 0");
	lim = small;
	lim.max_depth = JSON_MAX_DEPTH + 1;
	CHECK(json_mem_size(&lim, 4, &need, &err) == MU_ERR_ARG, "max_depth too big");
	struct json_doc doc;
	char mem[64];
	CHECK(json_parse(&doc, "[1]", 3, &small, mem, sizeof mem, &err) == MU_ERR_NOMEM && doc.n_tok == 0, "%s", err.msg);
	CHECK(json_parse(&doc, "[1]", 3, &small, NULL, 0, &err) == MU_ERR_NOMEM, "NULL mem");
	/* any alignment of the memory works */
	CHECK(json_mem_size(&small, 3, &need, &err) == MU_OK, "%s", err.msg);
	char *m = malloc(need + 1);
	CHECK(json_parse(&doc, "[1]", 3, &small, m + 1, need, &err) == MU_OK && doc.n_tok == 2, "%s", err.msg);
	free(m);
}

/* ---- token layout ---- */

static void test_tokens(void)
{
	const char *text = " {\"a\": [1, \"x\\n\", {}], \"b\": null, \"c\\u00e9\": {\"d\": true}} ";
	struct parsed p;
	struct mu_error err;
	CHECK(parse_lim(&p, text, strlen(text), &small, &err) == MU_OK, "%s", err.msg);
	const struct json_doc *d = &p.doc;
	/* 0 {  1 "a"  2 [  3 1  4 "x\n"  5 {}  6 "b"  7 null  8 "cé"  9 {  10 "d"  11 true */
	CHECK_EQ_INT(d->n_tok, 12);
	static const uint8_t types[] = {JSON_OBJECT, JSON_STRING, JSON_ARRAY, JSON_NUMBER, JSON_STRING, JSON_OBJECT,
					JSON_STRING, JSON_NULL, JSON_STRING, JSON_OBJECT, JSON_STRING, JSON_BOOL};
	static const uint32_t next[] = {12, 2, 6, 4, 5, 6, 7, 8, 9, 12, 11, 12};
	for (uint32_t i = 0; i < 12 && i < d->n_tok; i++) {
		CHECK(d->tok[i].type == types[i], "token %u type %u", i, d->tok[i].type);
		CHECK(d->tok[i].next == next[i], "token %u next %u", i, d->tok[i].next);
	}
	CHECK(d->tok[0].start == 1 && d->tok[0].len == strlen(text) - 2 && d->tok[0].count == 3, "root span");
	CHECK(d->tok[2].count == 3 && d->tok[5].count == 0 && d->tok[9].count == 1, "counts");
	CHECK(d->tok[1].start == 3 && d->tok[1].len == 1 && d->tok[1].flags == 0, "key span");
	CHECK(d->tok[4].len == 3 && d->tok[4].dec_len == 2 && d->tok[4].flags == JSON_TOK_ESCAPED, "escaped string");
	CHECK(d->tok[8].dec_len == 3 && (d->tok[8].flags & JSON_TOK_ESCAPED), "escaped key");
	CHECK(d->tok[3].len == 1 && d->tok[7].len == 4 && d->tok[11].len == 4, "scalar spans");
	CHECK(json_type(d, 12) == -1 && json_type(d, JSON_NONE) == -1 && json_type(d, 0) == JSON_OBJECT, "json_type");
	parsed_free(&p);
}

/* ---- accessors ---- */

static void test_accessors(void)
{
	const char *text =
		"{\"name\":\"mu\",\"n\":42,\"neg\":-7,\"f\":0.25,\"t\":true,\"no\":false,\"nil\":null,"
		"\"arr\":[10,20,30],\"esc\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\\u0041\\u00e9\\u20ac\\ud83d\\ude00\","
		"\"k\\u0065y\":1,\"nul\":\"a\\u0000b\",\"empty\":\"\",\"obj\":{\"x\":1}}";
	struct parsed p;
	struct mu_error err;
	struct json_limits lim = small;
	lim.max_string = 1024;
	CHECK(parse_lim(&p, text, strlen(text), &lim, &err) == MU_OK, "%s", err.msg);
	const struct json_doc *d = &p.doc;
	int64_t i64;
	double f;
	int b;
	char buf[128];
	size_t n;

	CHECK(json_str_eq(d, json_obj_get(d, 0, "name"), "mu"), "name");
	CHECK(!json_str_eq(d, json_obj_get(d, 0, "name"), "m") && !json_str_eq(d, json_obj_get(d, 0, "name"), "mux"), "name ne");
	CHECK(json_obj_get(d, 0, "missing") == JSON_NONE, "missing");
	CHECK(json_obj_get(d, 0, "Name") == JSON_NONE, "case-sensitive");
	CHECK(json_obj_get(d, 1, "name") == JSON_NONE && json_obj_get(d, 999, "x") == JSON_NONE, "not an object");
	CHECK(json_obj_get(d, 0, NULL) == JSON_NONE, "NULL key");
	CHECK(json_obj_get(d, 0, "key") != JSON_NONE, "escaped key found by its decoded form");
	CHECK(json_obj_getn(d, 0, "nul", 3) != JSON_NONE, "getn");

	CHECK(json_get_i64(d, json_obj_get(d, 0, "n"), &i64, &err) == MU_OK && i64 == 42, "n");
	CHECK(json_get_i64(d, json_obj_get(d, 0, "neg"), &i64, &err) == MU_OK && i64 == -7, "neg");
	CHECK(json_get_int(d, json_obj_get(d, 0, "n"), 0, 41, &i64, &err) == MU_ERR_RANGE && strstr(err.msg, "outside 0..41"),
	      "%s", err.msg);
	CHECK(json_get_int(d, json_obj_get(d, 0, "n"), 42, 42, &i64, &err) == MU_OK, "%s", err.msg);
	CHECK(json_get_i64(d, json_obj_get(d, 0, "f"), &i64, &err) == MU_ERR_RANGE && strstr(err.msg, "not an integer"), "%s", err.msg);
	CHECK(json_get_i64(d, json_obj_get(d, 0, "name"), &i64, &err) == MU_ERR_FORMAT && strstr(err.msg, "found a string"),
	      "%s", err.msg);
	CHECK(json_get_i64(d, JSON_NONE, &i64, &err) == MU_ERR_FORMAT, "none");
	CHECK(json_get_f64(d, json_obj_get(d, 0, "f"), &f, &err) == MU_OK && f == 0.25, "f");
	CHECK(json_get_f64(d, json_obj_get(d, 0, "t"), &f, &err) == MU_ERR_FORMAT, "f of bool");
	CHECK(json_get_bool(d, json_obj_get(d, 0, "t"), &b, &err) == MU_OK && b == 1, "t");
	CHECK(json_get_bool(d, json_obj_get(d, 0, "no"), &b, &err) == MU_OK && b == 0, "no");
	CHECK(json_get_bool(d, json_obj_get(d, 0, "nil"), &b, &err) == MU_ERR_FORMAT && strstr(err.msg, "found null"), "%s", err.msg);
	CHECK(json_is_null(d, json_obj_get(d, 0, "nil")) && !json_is_null(d, json_obj_get(d, 0, "no")), "null");
	CHECK(!json_is_null(d, JSON_NONE), "null of none");

	/* arrays */
	uint32_t arr = json_obj_get(d, 0, "arr");
	struct json_iter it;
	uint32_t k, v;
	int64_t sum = 0;
	int count = 0;
	json_iter_init(&it, d, arr);
	while (json_iter_next(&it, &k, &v)) {
		CHECK(k == JSON_NONE, "array key");
		CHECK(json_get_i64(d, v, &i64, &err) == MU_OK, "%s", err.msg);
		sum += i64;
		count++;
	}
	CHECK(count == 3 && sum == 60, "array iteration");
	CHECK(json_get_i64(d, json_arr_get(d, arr, 2), &i64, &err) == MU_OK && i64 == 30, "arr_get");
	CHECK(json_arr_get(d, arr, 3) == JSON_NONE && json_arr_get(d, 0, 0) == JSON_NONE, "arr_get out of range");
	json_iter_init(&it, d, json_obj_get(d, 0, "n"));
	CHECK(!json_iter_next(&it, &k, &v), "scalar iterates as empty");

	/* objects */
	count = 0;
	json_iter_init(&it, d, 0);
	while (json_iter_next(&it, &k, &v)) {
		CHECK(json_type(d, k) == JSON_STRING, "key type");
		count++;
	}
	CHECK(count == 13, "object iteration: %d", count);

	/* every escape */
	static const char want[] = "a\"b\\c/d\be\ff\ng\rh\tiA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	uint32_t esc = json_obj_get(d, 0, "esc");
	CHECK(json_str_len(d, esc) == sizeof want - 1, "decoded length %u", json_str_len(d, esc));
	CHECK(json_str_decode(d, esc, buf, sizeof buf, &n, &err) == MU_OK && n == sizeof want - 1 && !memcmp(buf, want, n) &&
		      buf[n] == '\0', "decode");
	CHECK(json_str_eq(d, esc, want), "eq escaped");
	CHECK(!json_str_eq(d, esc, "a\"b\\c/d\be\ff\ng\rh\tiA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x81"), "ne escaped last byte");
	CHECK(json_str_decode(d, esc, buf, sizeof want - 1, &n, &err) == MU_ERR_NOMEM, "no room for NUL");
	CHECK(json_str_decode(d, esc, buf, sizeof want, &n, &err) == MU_OK, "exact room");
	CHECK(json_str_decode(d, json_obj_get(d, 0, "n"), buf, sizeof buf, &n, &err) == MU_ERR_FORMAT, "decode number");
	const char *raw;
	CHECK(!json_str_raw(d, esc, &raw, &n), "escaped has no raw view");
	CHECK(json_str_raw(d, json_obj_get(d, 0, "name"), &raw, &n) && n == 2 && !memcmp(raw, "mu", 2), "raw view");
	uint32_t nul = json_obj_get(d, 0, "nul");
	CHECK((d->tok[nul].flags & JSON_TOK_NUL) && json_str_eqn(d, nul, "a\0b", 3) && !json_str_eq(d, nul, "a"), "NUL");
	CHECK(json_str_decode(d, nul, buf, sizeof buf, &n, &err) == MU_OK && n == 3 && buf[1] == '\0', "NUL decode");
	uint32_t empty = json_obj_get(d, 0, "empty");
	CHECK(json_str_eq(d, empty, "") && json_str_len(d, empty) == 0, "empty");
	CHECK(json_str_decode(d, empty, buf, 1, &n, &err) == MU_OK && n == 0 && buf[0] == '\0', "empty decode");
	CHECK(!json_str_eq(d, json_obj_get(d, 0, "n"), "42"), "number is not a string");

	/* only these keys */
	static const char *const all[] = {"name", "n", "neg", "f", "t", "no", "nil", "arr", "esc", "key", "nul", "empty", "obj"};
	CHECK(json_obj_only(d, 0, all, sizeof all / sizeof all[0], &err) == MU_OK, "%s", err.msg);
	CHECK(json_obj_only(d, 0, all, 12, &err) == MU_ERR_FORMAT && strstr(err.msg, "unknown field \"obj\""), "%s", err.msg);
	CHECK(json_obj_only(d, 0, all + 1, 12, &err) == MU_ERR_FORMAT && strstr(err.msg, "offset 1: unknown field \"name\""),
	      "%s", err.msg);
	CHECK(json_obj_only(d, arr, all, 1, &err) == MU_ERR_FORMAT && strstr(err.msg, "expected an object"), "%s", err.msg);
	parsed_free(&p);

	/* unknown-field message shows only printable ASCII, truncated */
	const char *t2 = "{\"ok\":1,\"\\u0007\xc3\xa9x0123456789012345678901234567890123456789\":2}";
	CHECK(parse_lim(&p, t2, strlen(t2), &lim, &err) == MU_OK, "%s", err.msg);
	static const char *const ok_only[] = {"ok"};
	CHECK(json_obj_only(&p.doc, 0, ok_only, 1, &err) == MU_ERR_FORMAT &&
		      strstr(err.msg, "unknown field \"???x0123456789012345678901234567...\""), "%s", err.msg);
	parsed_free(&p);
}

/* ---- numbers ---- */

struct icase {
	const char *text;
	enum mu_err rc;
	int64_t v;
};

static void test_integers(void)
{
	static const struct icase ic[] = {
		{"0", MU_OK, 0}, {"-0", MU_OK, 0}, {"7", MU_OK, 7}, {"-7", MU_OK, -7}, {"1.0", MU_OK, 1}, {"1.50e1", MU_OK, 15},
		{"120e-1", MU_OK, 12}, {"1e3", MU_OK, 1000}, {"0.0e99999", MU_OK, 0}, {"0e-5", MU_OK, 0}, {"-0.000", MU_OK, 0},
		{"100", MU_OK, 100}, {"1000000000000000000", MU_OK, 1000000000000000000}, {"1e18", MU_OK, 1000000000000000000},
		{"9223372036854775807", MU_OK, INT64_MAX}, {"-9223372036854775808", MU_OK, INT64_MIN},
		{"9223372036854775807.000", MU_OK, INT64_MAX}, {"92233720368547758.07e2", MU_OK, INT64_MAX},
		{"0.00000000000000000000000000000000000000001e41", MU_OK, 1},
		{"9223372036854775808", MU_ERR_RANGE, 0}, {"-9223372036854775809", MU_ERR_RANGE, 0}, {"1e19", MU_ERR_RANGE, 0},
		{"10000000000000000000", MU_ERR_RANGE, 0}, {"1e999999999999", MU_ERR_RANGE, 0},
		{"18446744073709551616", MU_ERR_RANGE, 0}, {"99999999999999999999999", MU_ERR_RANGE, 0},
		{"1.5", MU_ERR_RANGE, 0}, {"0.1", MU_ERR_RANGE, 0}, {"-1.5", MU_ERR_RANGE, 0}, {"1e-1", MU_ERR_RANGE, 0},
		{"1.23e1", MU_ERR_RANGE, 0}, {"1.0000000000000000000000001", MU_ERR_RANGE, 0}, {"1e-999999999999", MU_ERR_RANGE, 0},
	};
	struct json_limits lim = small;
	lim.max_number = 64;
	for (size_t i = 0; i < sizeof ic / sizeof ic[0]; i++) {
		struct parsed p;
		struct mu_error err;
		int64_t v = 12345;
		CHECK(parse_lim(&p, ic[i].text, strlen(ic[i].text), &lim, &err) == MU_OK, "%s: %s", ic[i].text, err.msg);
		enum mu_err rc = json_get_i64(&p.doc, 0, &v, &err);
		CHECK(rc == ic[i].rc && (rc != MU_OK || v == ic[i].v), "%s: %s %" PRId64 " (%s)", ic[i].text, mu_err_name(rc), v,
		      err.msg);
		parsed_free(&p);
	}
}

struct fcase {
	const char *text;
	enum mu_err rc;
	double v;
};

static void test_floats(void)
{
	static const struct fcase fc[] = {
		{"0", MU_OK, 0.0}, {"0.1", MU_OK, 0.1}, {"0.25", MU_OK, 0.25}, {"1e-5", MU_OK, 1e-5}, {"1e-05", MU_OK, 1e-5},
		{"1e-06", MU_OK, 1e-6}, {"500000.0", MU_OK, 500000.0}, {"1000000.0", MU_OK, 1e6}, {"3.14159", MU_OK, 3.14159},
		{"-2.5", MU_OK, -2.5}, {"1.797693134862315", MU_OK, 1.797693134862315}, {"1.7976931348623157", MU_ERR_RANGE, 0}, {"9007199254740991", MU_OK, 9007199254740991.0},
		{"9007199254740991e22", MU_OK, 9007199254740991e22}, {"1e22", MU_OK, 1e22}, {"1e23", MU_OK, 1e23},
		{"1e30", MU_OK, 1e30}, {"123e30", MU_OK, 123e30}, {"1e-22", MU_OK, 1e-22}, {"4.35e-22", MU_ERR_RANGE, 0},
		{"0.000001", MU_OK, 0.000001}, {"1.0000000000000000000000000", MU_OK, 1.0}, {"0.00000000000000000000000000", MU_OK, 0.0},
		{"100000000000000000000000000000000e-10", MU_OK, 1e22}, {"0.1e-21", MU_OK, 1e-22},
		{"1.5e300", MU_ERR_RANGE, 0}, {"1e-23", MU_ERR_RANGE, 0}, {"1e39", MU_ERR_RANGE, 0}, {"1e38", MU_ERR_RANGE, 0},
		{"1e37", MU_OK, 1e37}, {"9007199254740992", MU_ERR_RANGE, 0}, {"9007199254740993", MU_ERR_RANGE, 0},
		{"0.1234567890123456789", MU_ERR_RANGE, 0}, {"12345678901234567890", MU_ERR_RANGE, 0},
		{"1.234567890123456", MU_OK, 1.234567890123456}, {"1.2345678901234567", MU_ERR_RANGE, 0}, {"1e-999999999999", MU_ERR_RANGE, 0},
	};
	struct json_limits lim = small;
	lim.max_number = 64;
	for (size_t i = 0; i < sizeof fc / sizeof fc[0]; i++) {
		struct parsed p;
		struct mu_error err;
		double v = -1;
		CHECK(parse_lim(&p, fc[i].text, strlen(fc[i].text), &lim, &err) == MU_OK, "%s: %s", fc[i].text, err.msg);
		enum mu_err rc = json_get_f64(&p.doc, 0, &v, &err);
		CHECK(rc == fc[i].rc && (rc != MU_OK || v == fc[i].v), "%s: %s %.17g (%s)", fc[i].text, mu_err_name(rc), v, err.msg);
		if (!strcmp(fc[i].text, "12345678901234567890"))
			CHECK(strstr(err.msg, "too many significant digits") != NULL, "%s", err.msg);
		parsed_free(&p);
	}
	/* the sign of zero survives */
	struct parsed p;
	struct mu_error err;
	double v;
	CHECK(parse_lim(&p, "-0.0", 4, &lim, &err) == MU_OK && json_get_f64(&p.doc, 0, &v, &err) == MU_OK && v == 0.0 &&
		      1.0 / v < 0, "-0.0");
	parsed_free(&p);

	/* Random fast-path numbers against the C library's correctly rounded strtod. */
	uint64_t s = 0x9e3779b97f4a7c15u;
	int bad = 0;
	for (int i = 0; i < 20000; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		uint64_t m = s >> (11 + (s & 31));
		int e = (int)((s >> 40) % 45) - 22;
		char text[64];
		int k = snprintf(text, sizeof text, "%s%" PRIu64 "e%d", (s >> 60) & 1 ? "-" : "", m, e);
		if (parse_lim(&p, text, (size_t)k, &lim, &err) != MU_OK || json_get_f64(&p.doc, 0, &v, &err) != MU_OK ||
		    v != strtod(text, NULL))
			bad++;
		parsed_free(&p);
	}
	CHECK(bad == 0, "%d random numbers differ from strtod", bad);
}

/* ---- duplicate keys: large objects, both paths, adversarial collisions ---- */

/* The parser's key hash, restated so the test can aim at one region of the table. */
static uint64_t fnv_mix(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3u;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	return h;
}

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			exit(2);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}
static void sb_str(struct sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_dup_keys(void)
{
	struct json_limits lim = JSON_LIMITS_TOOL, sorted = JSON_LIMITS_TOOL;
	sorted.flags = JSON_SORT_KEYS;
	struct mu_error err, err2;
	struct sbuf b = {0};
	char key[64];

	/* 20000 distinct keys, some escaped; then the same with one duplicate at the end */
	sb_str(&b, "{");
	for (int i = 0; i < 20000; i++) {
		int k = i % 7 == 0 ? snprintf(key, sizeof key, "%s\"\\u006b%d\":%d", i ? "," : "", i, i)
				   : snprintf(key, sizeof key, "%s\"k%d\":%d", i ? "," : "", i, i);
		sb_add(&b, key, (size_t)k);
	}
	size_t open_len = b.len;
	sb_str(&b, "}");
	CHECK(parse_once(b.p, b.len, &lim, &err) == MU_OK, "20000 keys: %s", err.msg);
	CHECK(parse_once(b.p, b.len, &sorted, &err) == MU_OK, "20000 keys sorted: %s", err.msg);
	b.len = open_len;
	sb_str(&b, ",\"k\\u0031\\u0032\\u0033\\u0034\":0}"); /* "k1234" again */
	CHECK(parse_once(b.p, b.len, &lim, &err) == MU_ERR_FORMAT && strstr(err.msg, "duplicate key"), "%s", err.msg);
	CHECK(parse_once(b.p, b.len, &sorted, &err2) == MU_ERR_FORMAT && !strcmp(err.msg, err2.msg), "%s / %s", err.msg, err2.msg);
	/* three copies of one key: both paths report the second */
	const char *three = "{\"z\":0,\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"z\":2,\"i\":1,\"z\":3}";
	CHECK(parse_once(three, strlen(three), &lim, &err) == MU_ERR_FORMAT && strstr(err.msg, "offset 55:") &&
		      strstr(err.msg, "key at offset 1)"), "%s", err.msg);
	CHECK(parse_once(three, strlen(three), &sorted, &err2) == MU_ERR_FORMAT && !strcmp(err.msg, err2.msg), "%s", err2.msg);

	/* Adversarial keys: 20000 keys whose hashes all land in the first 1/64 of the 65536-slot
	 * table. Linear probing alone would need ~10^8 probes; the probe budget hands the object
	 * to the sort path, which must still find the planted duplicate. */
	b.len = 0;
	sb_str(&b, "{");
	int found = 0;
	char first[32] = "";
	for (uint64_t c = 0; found < 20000; c++) {
		int k = snprintf(key, sizeof key, "x%" PRIx64, c);
		if ((fnv_mix(key, (size_t)k) & 65535) >= 1024)
			continue;
		if (!found)
			memcpy(first, key, (size_t)k + 1);
		sb_str(&b, found ? ",\"" : "\"");
		sb_add(&b, key, (size_t)k);
		sb_str(&b, "\":1");
		found++;
	}
	open_len = b.len;
	sb_str(&b, "}");
	double t0 = now_s();
	CHECK(parse_once(b.p, b.len, &lim, &err) == MU_OK, "colliding keys: %s", err.msg);
	double t1 = now_s();
	b.len = open_len;
	sb_str(&b, ",\"");
	sb_str(&b, first);
	sb_str(&b, "\":2}");
	CHECK(parse_once(b.p, b.len, &lim, &err) == MU_ERR_FORMAT && strstr(err.msg, "same as the key at offset 1)"), "%s", err.msg);
	CHECK(parse_once(b.p, b.len, &sorted, &err2) == MU_ERR_FORMAT && !strcmp(err.msg, err2.msg), "%s", err2.msg);
	printf("20000 colliding keys: %.1f ms\n", (t1 - t0) * 1e3);
	CHECK(t1 - t0 < 2.0, "colliding keys took %.2f s", t1 - t0);
	/* the test's copy of the hash matches the parser's */
	struct parsed p;
	CHECK(parse_lim(&p, "\"x1f\"", 5, &lim, &err) == MU_OK && json_key_hash(&p.doc, 0) == fnv_mix("x1f", 3), "hash copy");
	parsed_free(&p);
	free(b.p);
}

/* ---- round trip: serialize the tokens canonically and parse again ---- */

static void emit(struct sbuf *b, const struct json_doc *d, uint32_t t)
{
	const struct json_tok *k = &d->tok[t];
	char buf[16];
	switch (k->type) {
	case JSON_STRING: {
		char *s = malloc((size_t)k->dec_len + 1);
		size_t n = 0;
		json_str_decode(d, t, s, (size_t)k->dec_len + 1, &n, NULL);
		sb_str(b, "\"");
		for (size_t i = 0; i < n; i++) {
			uint8_t c = (uint8_t)s[i];
			if (c == '"' || c == '\\') {
				buf[0] = '\\', buf[1] = (char)c;
				sb_add(b, buf, 2);
			} else if (c < 0x20) {
				snprintf(buf, sizeof buf, "\\u%04x", c);
				sb_add(b, buf, 6);
			} else {
				sb_add(b, (const char *)&c, 1);
			}
		}
		sb_str(b, "\"");
		free(s);
		break;
	}
	case JSON_ARRAY:
	case JSON_OBJECT: {
		struct json_iter it;
		uint32_t kk, v;
		int first = 1;
		sb_str(b, k->type == JSON_ARRAY ? "[" : "{");
		json_iter_init(&it, d, t);
		while (json_iter_next(&it, &kk, &v)) {
			if (!first)
				sb_str(b, ",");
			first = 0;
			if (kk != JSON_NONE) {
				emit(b, d, kk);
				sb_str(b, ":");
			}
			emit(b, d, v);
		}
		sb_str(b, k->type == JSON_ARRAY ? "]" : "}");
		break;
	}
	default:
		sb_add(b, (const char *)d->src + k->start, k->len);
		break;
	}
}

/* Structural invariants of an accepted document. */
static int doc_ok(const struct json_doc *d)
{
	for (uint32_t i = 0; i < d->n_tok; i++) {
		const struct json_tok *k = &d->tok[i];
		if (k->next <= i || k->next > d->n_tok || (uint64_t)k->start + k->len > d->len)
			return 0;
		if (k->type == JSON_STRING) {
			char *s = malloc((size_t)k->dec_len + 1);
			size_t n = 0;
			int good = json_str_decode(d, i, s, (size_t)k->dec_len + 1, &n, NULL) == MU_OK && n == k->dec_len &&
				   json_utf8_check(s, n) == n && json_str_eqn(d, i, s, n) &&
				   ((memchr(s, 0, n) != NULL) == ((k->flags & JSON_TOK_NUL) != 0));
			free(s);
			if (!good)
				return 0;
		} else if (k->type == JSON_ARRAY || k->type == JSON_OBJECT) {
			struct json_iter it;
			uint32_t kk, v, c = 0, last = i + 1;
			json_iter_init(&it, d, i);
			while (json_iter_next(&it, &kk, &v)) {
				c++;
				last = d->tok[v].next;
			}
			if (c != k->count || last != k->next)
				return 0;
		} else if (k->next != i + 1) {
			return 0;
		}
	}
	return 1;
}

static int same_shape(const struct json_doc *a, const struct json_doc *b)
{
	if (a->n_tok != b->n_tok)
		return 0;
	for (uint32_t i = 0; i < a->n_tok; i++) {
		const struct json_tok *x = &a->tok[i], *y = &b->tok[i];
		if (x->type != y->type || x->count != y->count || x->next != y->next)
			return 0;
		if (x->type == JSON_STRING) {
			char *s = malloc((size_t)x->dec_len + 1);
			json_str_decode(a, i, s, (size_t)x->dec_len + 1, NULL, NULL);
			int eq = json_str_eqn(b, i, s, x->dec_len);
			free(s);
			if (!eq)
				return 0;
		}
	}
	return 1;
}

/* ---- deterministic mutation loop ---- */

static const char *const seeds[] = {
	("{\"type\":\"generate\",\"id\":\"r1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi \\u00e9\\ud83d\\ude00\"}],"
	 "\"max_tokens\":64,\"temperature\":0.7,\"top_p\":1e0,\"seed\":-42,\"stream\":true,\"x\":null}"),
	"[0,-0,1.5e3,\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",[],{},[[{\"a\":{\"b\":[1,2,{\"c\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}]}}]]]",
	"{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"\\u006a\":10,\"k\":{\"k\":{\"k\":true}}}",
	"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\",[\"a\",\"b\"]]},\"added_tokens\":[]}",
};

static void test_mutations(void)
{
	struct json_limits lim = small, sorted = small;
	lim.max_tokens = 64;
	sorted = lim;
	sorted.flags = JSON_SORT_KEYS;
	uint64_t s = 12345;
	int accepted = 0, refused = 0, bad = 0;
	static const char spice[] = "{}[],:\"\\u0Ee.-+ 19tfn\x80\xbf\xc3\xed\xf0\xf4\xff";
	for (int iter = 0; iter < 60000; iter++) {
		const char *seed = seeds[iter % (sizeof seeds / sizeof seeds[0])];
		char buf[512];
		size_t n = strlen(seed);
		memcpy(buf, seed, n);
		int edits = 1 + (int)(s % 4);
		for (int e = 0; e < edits; e++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			size_t at = n ? (size_t)(s >> 8) % n : 0;
			uint8_t c = (uint8_t)((s >> 32) & 1 ? spice[(s >> 40) % (sizeof spice - 1)] : (uint8_t)(s >> 48));
			switch (s % 5) {
			case 0: if (n) buf[at] = (char)c; break;
			case 1: if (n) { memmove(buf + at, buf + at + 1, n - at - 1); n--; } break;
			case 2: if (n < sizeof buf - 1) { memmove(buf + at + 1, buf + at, n - at); buf[at] = (char)c; n++; } break;
			case 3: n = at; break;
			default: if (n) buf[at] ^= (char)(1u << ((s >> 20) & 7)); break;
			}
		}
		struct parsed p, q;
		struct mu_error err, err2;
		enum mu_err rc = parse_lim(&p, buf, n, &lim, &err);
		enum mu_err rc2 = parse_once(buf, n, &sorted, &err2);
		if (rc2 != rc || (rc != MU_OK && strcmp(err.msg, err2.msg) != 0))
			bad++;
		if (rc == MU_OK) {
			accepted++;
			struct sbuf out = {0};
			emit(&out, &p.doc, 0);
			struct json_limits big = JSON_LIMITS_TOOL;
			if (!doc_ok(&p.doc) || parse_lim(&q, out.p, out.len, &big, &err) != MU_OK || !same_shape(&p.doc, &q.doc))
				bad++;
			parsed_free(&q);
			free(out.p);
		} else {
			refused++;
			if (rc != MU_ERR_FORMAT && rc != MU_ERR_RANGE)
				bad++;
			if (strncmp(err.msg, "offset ", 7) != 0)
				bad++;
		}
		parsed_free(&p);
	}
	printf("mutations: %d accepted, %d refused\n", accepted, refused);
	CHECK(bad == 0, "%d mutated documents broke an invariant", bad);
	CHECK(accepted > 1000 && refused > 1000, "mutation mix %d / %d", accepted, refused);
}

/* ---- the real tokenizer files ---- */

static void test_tokenizer_file(const char *rel, uint32_t n_vocab, uint32_t n_merges)
{
	const char *shared = getenv("SHARED");
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", shared && *shared ? shared : "../shared", rel);
	struct pal_map map;
	struct mu_error err;
	if (pal_map_file(&map, path, &err) != MU_OK) {
		CHECK(0, "%s", err.msg);
		return;
	}
	struct json_limits lim = JSON_LIMITS_TOOL;
	size_t need;
	CHECK(json_mem_size(&lim, map.len, &need, &err) == MU_OK, "%s", err.msg);
	void *mem = malloc(need);
	struct json_doc d;
	double t0 = now_s();
	enum mu_err rc = json_parse(&d, map.data, map.len, &lim, mem, need, &err);
	double t1 = now_s();
	CHECK(rc == MU_OK, "%s: %s", rel, err.msg);
	if (rc == MU_OK) {
		printf("%s: %zu bytes, %u tokens, parsed in %.1f ms (%.0f MB/s)\n", rel, map.len, d.n_tok, (t1 - t0) * 1e3,
		       (double)map.len / (t1 - t0) / 1e6);
		uint32_t model = json_obj_get(&d, 0, "model");
		CHECK(json_str_eq(&d, json_obj_get(&d, model, "type"), "BPE"), "model.type");
		uint32_t vocab = json_obj_get(&d, model, "vocab");
		uint32_t merges = json_obj_get(&d, model, "merges");
		CHECK(json_type(&d, vocab) == JSON_OBJECT && d.tok[vocab].count == n_vocab, "vocab size %u", d.tok[vocab].count);
		CHECK(json_type(&d, merges) == JSON_ARRAY && d.tok[merges].count == n_merges, "merges %u", d.tok[merges].count);
		int64_t id = -1;
		CHECK(json_get_i64(&d, json_obj_get(&d, vocab, "\xc4\xa0the"), &id, &err) == MU_OK && id > 0, "Ġthe");
		/* the sort path accepts it too */
		lim.flags = JSON_SORT_KEYS;
		t0 = now_s();
		CHECK(json_parse(&d, map.data, map.len, &lim, mem, need, &err) == MU_OK, "%s sorted: %s", rel, err.msg);
		printf("%s: with JSON_SORT_KEYS %.1f ms\n", rel, (now_s() - t0) * 1e3);
	}
	free(mem);
	pal_unmap(&map);
}

/* ---- corpus ---- */

static int write_corpus(const char *dir)
{
	char path[1024];
	int n = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].doc);
		snprintf(path, sizeof path, "%s/%s-%03zu.json", dir, cases[i].rc == MU_OK ? "ok" : "bad", i);
		FILE *f = fopen(path, "wb");
		/* fuzz_json reads the first byte as the limits: odd selects this table's limits */
		if (!f || fputc('!', f) == EOF || fwrite(cases[i].doc, 1, len, f) != len || fclose(f) != 0) {
			fprintf(stderr, "cannot write %s\n", path);
			return 1;
		}
		n++;
	}
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		snprintf(path, sizeof path, "%s/seed-%zu.json", dir, i);
		FILE *f = fopen(path, "wb");
		if (!f || fputc(i % 2 ? '!' : ' ', f) == EOF || fwrite(seeds[i], 1, strlen(seeds[i]), f) != strlen(seeds[i]) ||
		    fclose(f) != 0)
			return 1;
		n++;
	}
	printf("wrote %d files to %s\n", n, dir);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--write-corpus"))
		return write_corpus(argv[2]);
	test_table();
	test_limits();
	test_tokens();
	test_accessors();
	test_integers();
	test_floats();
	test_dup_keys();
	test_mutations();
	test_tokenizer_file("models/qwen3-tokenizer/tokenizer.json", 151643, 151387);
	test_tokenizer_file("models/llama3-tokenizer/tokenizer.json", 128000, 280147);
	return test_done();
}
