/* json.h — a strict, bounded JSON parser (RFC 8259) into caller-granted memory.
 *
 * Two kinds of caller share it: the enclave's wire protocol (small frames, tight limits) and
 * host tools that read multi-megabyte files such as a Hugging Face tokenizer.json (large
 * limits). The parser allocates nothing, converts numbers itself (no strtod), formats nothing
 * but its error messages (through base/err.c) and uses only memcmp/memcpy/memset/memchr/strlen
 * from the C library, so it builds freestanding.
 *
 * What is accepted: exactly one value, optionally surrounded by the four JSON whitespace
 * bytes (space, tab, LF, CR), with nothing after it. Refused with MU_ERR_FORMAT and the byte
 * offset of the problem: comments, trailing commas, single quotes, NaN/Infinity, leading
 * zeros ("01"), a lone '-', '.' or 'e' without digits, invalid escapes, raw control bytes
 * (< 0x20) inside strings, invalid UTF-8 anywhere (overlong forms, UTF-16 surrogates encoded
 * in UTF-8, code points above U+10FFFF, truncated sequences, a byte-order mark), \u escapes
 * that form a lone or mismatched surrogate, and duplicate keys in one object. Keys are
 * compared after unescaping, so "a" and "\u0061" are the same key.
 *
 * Duplicate keys: each object is checked when it closes. Up to 8 members are compared
 * pairwise; larger objects are hashed (FNV-1a over the decoded bytes) into an open-addressing
 * table in the caller's memory, O(n) expected. The hash is not seeded, so an adversary could
 * choose colliding keys; the table therefore counts its probes and, past 8 probes per member
 * on average, abandons the object's table and heap-sorts the object's keys instead, which is
 * O(n log n) comparisons in the worst case. Either way the whole parse is O(input bytes ×
 * log(largest object)) in the worst case and O(input bytes) expected, and both paths report the
 * same duplicate (the first key, in document order, that repeats an earlier one).
 * JSON_SORT_KEYS in json_limits.flags forces the sort path (tests, or callers that want the
 * worst-case bound on every object).
 *
 * Limits (struct json_limits, chosen by the caller): input bytes, nesting depth, tokens
 * (values plus keys), decoded bytes of one string (keys included), characters of one number
 * literal. Exceeding one fails with MU_ERR_RANGE and a message naming the limit and the byte
 * offset, e.g. "offset 4097: nesting deeper than 32 levels (max_depth)".
 *
 * Output: a flat array of tokens in document order. Token 0 is the root. An object's
 * children are key, value, key, value ...; an array's are its elements. Every token records
 * the index of the token after its subtree (`next`), so skipping a value is O(1) and the
 * children of a container are first = t + 1, then tok[child].next (for objects, step over
 * the value: the next key is tok[key + 1].next).
 *
 * Memory: json_mem_size(limits, len) bytes for an input of len bytes. A valid document needs
 * at least two input bytes per token (one for the last), and a prefix being parsed is at
 * most a few bytes and one bracket per open container short of a valid document, so the
 * token array holds min(max_tokens, (len + min(max_depth, len) + 5) / 2) tokens of 20 bytes;
 * the duplicate-key table adds 4-8 bytes per token and the nesting stack 4 bytes per level
 * of max_depth. Hitting max_tokens is the only way to run out of tokens. The input and the
 * memory must outlive the document; nothing is copied.
 */
#ifndef MU_WIRE_JSON_H
#define MU_WIRE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/limits.h"

enum json_type {
	JSON_NULL = 0,
	JSON_BOOL = 1,
	JSON_NUMBER = 2,
	JSON_STRING = 3,
	JSON_ARRAY = 4,
	JSON_OBJECT = 5,
};

/* json_tok.flags */
#define JSON_TOK_ESCAPED 1u /* string: contains at least one backslash escape */
#define JSON_TOK_NUL 2u     /* string: decodes to text containing a NUL byte (\u0000) */

struct json_tok {
	uint32_t start; /* offset of the first byte: '{' / '[', the first byte inside a string's
			   quotes, the first character of a number or literal */
	uint32_t len;   /* bytes from start; for strings the raw bytes between the quotes */
	union {
		uint32_t count;   /* arrays: elements; objects: members; 0 for null, bools, numbers */
		uint32_t dec_len; /* strings: bytes after unescaping */
	};
	uint32_t next;  /* index of the first token after this value's subtree */
	uint8_t type;   /* enum json_type */
	uint8_t flags;  /* JSON_TOK_* */
};

/* json_limits.flags */
#define JSON_SORT_KEYS 1u /* check duplicate keys by sorting every object (no hashing) */

struct json_limits {
	uint32_t max_bytes;  /* input length */
	uint32_t max_depth;  /* nesting of arrays and objects; 0 allows only a scalar document;
			        at most JSON_MAX_DEPTH */
	uint32_t max_tokens; /* values and keys, all levels together; at least 1 */
	uint32_t max_string; /* decoded bytes of one string or key */
	uint32_t max_number; /* characters of one number literal */
	uint32_t flags;      /* JSON_SORT_KEYS */
};

#define JSON_MAX_DEPTH MU_JSON_MAX_DEPTH

/* Limits for host tools reading large trusted-ish files (tokenizer.json is ~11 MB with about
 * 800k tokens; its model_max_length is a 31-digit integer). */
#define JSON_LIMITS_TOOL \
	((struct json_limits){.max_bytes = MU_JSON_TOOL_MAX_BYTES, .max_depth = MU_JSON_TOOL_MAX_DEPTH, \
			      .max_tokens = MU_JSON_TOOL_MAX_TOKENS, .max_string = MU_JSON_TOOL_MAX_STRING, \
			      .max_number = MU_JSON_TOOL_MAX_NUMBER, .flags = 0})

#define JSON_NONE UINT32_MAX /* "no token": absent member, end of iteration, bad argument */

struct json_doc {
	const uint8_t *src;
	size_t len;
	const struct json_tok *tok;
	uint32_t n_tok;
};

/* Bytes json_parse needs for an input of len bytes under lim. Fails with MU_ERR_RANGE when
 * len is beyond lim->max_bytes and MU_ERR_ARG when lim itself is unusable (max_tokens 0,
 * max_depth above JSON_MAX_DEPTH). */
enum mu_err json_mem_size(const struct json_limits *lim, size_t len, size_t *size, struct mu_error *err);

/* Parses and fully validates src[0..len) into doc, using mem[0..mem_len) (at least
 * json_mem_size bytes, any alignment). On failure doc is empty (n_tok 0) and err says why:
 * MU_ERR_FORMAT for a syntax error, MU_ERR_RANGE for a limit, MU_ERR_NOMEM when mem_len is
 * too small, MU_ERR_ARG for unusable limits. */
enum mu_err json_parse(struct json_doc *doc, const void *src, size_t len, const struct json_limits *lim,
		       void *mem, size_t mem_len, struct mu_error *err);

/* ---- accessors. Every function takes any token index and refuses bad ones. ---- */

const char *json_type_name(enum json_type t);
/* Type of token t, or -1 when t is not a token of doc. */
int json_type(const struct json_doc *doc, uint32_t t);

/* Value of the member named key (a C string, compared with the decoded key), or JSON_NONE
 * when obj is not an object or has no such member. Linear in the object's size. */
uint32_t json_obj_get(const struct json_doc *doc, uint32_t obj, const char *key);
/* Same, with a key of n bytes (may contain NUL). */
uint32_t json_obj_getn(const struct json_doc *doc, uint32_t obj, const char *key, size_t n);

/* Fails with MU_ERR_FORMAT, naming the first member (in document order) whose key is not one
 * of keys[0..n), e.g. `offset 31: unknown field "colour"` (the key is shown with anything
 * but printable ASCII replaced by '?', at most 32 bytes). Also fails if obj is not an object. */
enum mu_err json_obj_only(const struct json_doc *doc, uint32_t obj, const char *const *keys, size_t n,
			  struct mu_error *err);

/* Iteration over an array's elements or an object's members:
 *     struct json_iter it;
 *     uint32_t k, v;
 *     json_iter_init(&it, doc, obj);
 *     while (json_iter_next(&it, &k, &v)) ...     (k is JSON_NONE for array elements)
 * A token that is not a container iterates as empty. */
struct json_iter {
	const struct json_doc *doc;
	uint32_t cur;  /* next child (the key, for objects) */
	uint32_t left; /* children not yet returned */
	int is_obj;
};
void json_iter_init(struct json_iter *it, const struct json_doc *doc, uint32_t t);
int json_iter_next(struct json_iter *it, uint32_t *key, uint32_t *val);
/* Element i of an array (linear walk), or JSON_NONE. */
uint32_t json_arr_get(const struct json_doc *doc, uint32_t arr, uint32_t i);

/* Strings (values and keys). */
/* Decoded length in bytes, or 0 when t is not a string. */
uint32_t json_str_len(const struct json_doc *doc, uint32_t t);
/* Writes the decoded string and a terminating NUL to buf[0..cap); *len (may be NULL) gets the
 * decoded length without the NUL. MU_ERR_NOMEM when cap < length + 1, MU_ERR_FORMAT when t is
 * not a string. Check JSON_TOK_NUL before treating the result as a C string. */
enum mu_err json_str_decode(const struct json_doc *doc, uint32_t t, char *buf, size_t cap, size_t *len,
			    struct mu_error *err);
/* 1 when string token t decodes to exactly the C string lit (or to s[0..n)), else 0.
 * Allocates nothing. */
int json_str_eq(const struct json_doc *doc, uint32_t t, const char *lit);
int json_str_eqn(const struct json_doc *doc, uint32_t t, const char *s, size_t n);
/* When string t has no escapes, points *s at its bytes in the input (not NUL-terminated) and
 * returns 1; otherwise returns 0 (use json_str_decode). */
int json_str_raw(const struct json_doc *doc, uint32_t t, const char **s, size_t *n);

/* Numbers. json_get_i64 accepts any literal whose value is an integer in int64's range,
 * exactly: "12", "-0", "1.0", "1.5e1", "120e-1". A fraction ("1.5") or a value out of range
 * fails with MU_ERR_RANGE; a token that is not a number with MU_ERR_FORMAT. */
enum mu_err json_get_i64(const struct json_doc *doc, uint32_t t, int64_t *out, struct mu_error *err);
/* Same, and the value must lie in [lo, hi] (MU_ERR_RANGE otherwise). */
enum mu_err json_get_int(const struct json_doc *doc, uint32_t t, int64_t lo, int64_t hi, int64_t *out,
			 struct mu_error *err);
/* Correctly rounded decimal -> double for configuration-style numbers: the literal's
 * significant digits (leading and trailing zeros aside) must form an integer M < 2^53 with at
 * most 19 digits, and its value M × 10^E must have |E| <= 22, or E > 22 with M × 10^(E-22)
 * still an integer below 2^53. Then one IEEE multiplication or division of exact operands
 * gives the correctly rounded result. Anything else fails with MU_ERR_RANGE ("number has too
 * many significant digits" or "... decimal exponent ..."), never with an approximation. Zero
 * in any spelling is accepted (with its sign). */
enum mu_err json_get_f64(const struct json_doc *doc, uint32_t t, double *out, struct mu_error *err);

/* Booleans and null. json_get_bool fails with MU_ERR_FORMAT unless t is true or false. */
enum mu_err json_get_bool(const struct json_doc *doc, uint32_t t, int *out, struct mu_error *err);
int json_is_null(const struct json_doc *doc, uint32_t t);

/* Strict UTF-8 check of p[0..n) with the same rules as the parser. Returns n when valid,
 * otherwise the offset of the first byte of the first invalid sequence. */
size_t json_utf8_check(const void *p, size_t n);

#endif
