/* json.c — the strict JSON parser: tokenizer state machine, string and number grammar,
 * duplicate-key check. The accessors live in json_get.c. */
#include "wire/json.h"

#include <string.h>

#include "base/arena.h"
#include "base/ckd.h"
#include "wire/json_int.h"

/* ---- memory layout: tokens, duplicate-key table, nesting stack ---- */

struct layout {
	struct json_tok *tok;
	uint32_t n_tok;     /* capacity of tok */
	uint32_t *table;
	uint32_t table_cap; /* power of two, >= n_tok (an object has at most n_tok / 2 members) */
	uint32_t *stack;
};

static enum mu_err layout_of(const struct json_limits *lim, size_t len, struct mu_arena *a, struct layout *l,
			     struct mu_error *err)
{
	if (!lim || lim->max_tokens == 0)
		return mu_errf(err, MU_ERR_ARG, "json: limits need max_tokens of at least 1");
	if (lim->max_depth > JSON_MAX_DEPTH)
		return mu_errf(err, MU_ERR_ARG, "json: max_depth %u is above %u", lim->max_depth, JSON_MAX_DEPTH);
	if (len > lim->max_bytes)
		return mu_errf(err, MU_ERR_RANGE, "offset %u: input of %zu bytes is longer than the limit of %u bytes (max_bytes)",
			       lim->max_bytes, len, lim->max_bytes);
	/* A document of len bytes has at most (len + 1) / 2 tokens: a scalar takes a byte, a
	 * container two, and every token but the last is followed by a ',', ':' or bracket. A
	 * prefix the parser has accepted so far, plus the token being added, can be completed
	 * into a valid document by adding at most 4 bytes (finish the token, ":0" after a key)
	 * and one closing bracket per open container; so while parsing, the tokens never exceed
	 * (len + depth + 5) / 2, whatever comes later. The refusal of an invalid document
	 * therefore never depends on the memory. */
	uint64_t depth = lim->max_depth < len ? lim->max_depth : len;
	uint64_t bound = ((uint64_t)len + depth + 5) / 2;
	uint32_t n = bound < lim->max_tokens ? (uint32_t)bound : lim->max_tokens;
	uint32_t cap = 16;
	while (cap < n) {
		if (cap > UINT32_MAX / 2)
			return mu_errf(err, MU_ERR_RANGE, "json: max_tokens %u is too large", lim->max_tokens);
		cap *= 2;
	}
	size_t tok_bytes, table_bytes;
	if (ckd_mul(&tok_bytes, (size_t)n, sizeof(struct json_tok)) ||
	    ckd_mul(&table_bytes, (size_t)cap, sizeof(uint32_t)))
		return mu_errf(err, MU_ERR_RANGE, "json: memory for %u tokens does not fit in size_t", n);
	l->n_tok = n;
	l->table_cap = cap;
	l->tok = mu_arena_alloc(a, tok_bytes, 8);
	l->table = mu_arena_alloc(a, table_bytes, 8);
	l->stack = mu_arena_alloc(a, (size_t)lim->max_depth * sizeof(uint32_t) + sizeof(uint32_t), 8);
	if (!mu_arena_counting(a) && (!l->tok || !l->table || !l->stack))
		return mu_errf(err, MU_ERR_NOMEM, "json: memory of %zu bytes is too small for %u tokens", a->len, n);
	return MU_OK;
}

enum mu_err json_mem_size(const struct json_limits *lim, size_t len, size_t *size, struct mu_error *err)
{
	struct mu_arena a;
	struct layout l;
	mu_arena_init(&a, NULL, 0);
	enum mu_err rc = layout_of(lim, len, &a, &l, err);
	if (rc != MU_OK)
		return rc;
	/* Room for aligning an arbitrary base address. */
	if (ckd_add(size, a.used, (size_t)8))
		return mu_errf(err, MU_ERR_RANGE, "json: memory size overflows");
	return MU_OK;
}

/* ---- the parser ---- */

struct parser {
	const uint8_t *s;
	size_t len;
	size_t pos;
	const struct json_limits *lim;
	struct layout m;
	uint32_t n_tok;
	uint32_t depth;
	uint32_t table_clean; /* table[table_clean..] has never been touched (still to be zeroed) */
	struct mu_error *err;
};

/* Bytes a string may hold without a closer look: printable ASCII other than '"' and '\'. */
static const uint8_t plain_byte[256] = {
	[0x20] = 1, [0x21] = 1, [0x23] = 1, [0x24] = 1, [0x25] = 1, [0x26] = 1, [0x27] = 1,
	[0x28] = 1, [0x29] = 1, [0x2a] = 1, [0x2b] = 1, [0x2c] = 1, [0x2d] = 1, [0x2e] = 1,
	[0x2f] = 1, [0x30] = 1, [0x31] = 1, [0x32] = 1, [0x33] = 1, [0x34] = 1, [0x35] = 1,
	[0x36] = 1, [0x37] = 1, [0x38] = 1, [0x39] = 1, [0x3a] = 1, [0x3b] = 1, [0x3c] = 1,
	[0x3d] = 1, [0x3e] = 1, [0x3f] = 1, [0x40] = 1, [0x41] = 1, [0x42] = 1, [0x43] = 1,
	[0x44] = 1, [0x45] = 1, [0x46] = 1, [0x47] = 1, [0x48] = 1, [0x49] = 1, [0x4a] = 1,
	[0x4b] = 1, [0x4c] = 1, [0x4d] = 1, [0x4e] = 1, [0x4f] = 1, [0x50] = 1, [0x51] = 1,
	[0x52] = 1, [0x53] = 1, [0x54] = 1, [0x55] = 1, [0x56] = 1, [0x57] = 1, [0x58] = 1,
	[0x59] = 1, [0x5a] = 1, [0x5b] = 1, [0x5d] = 1, [0x5e] = 1, [0x5f] = 1, [0x60] = 1,
	[0x61] = 1, [0x62] = 1, [0x63] = 1, [0x64] = 1, [0x65] = 1, [0x66] = 1, [0x67] = 1,
	[0x68] = 1, [0x69] = 1, [0x6a] = 1, [0x6b] = 1, [0x6c] = 1, [0x6d] = 1, [0x6e] = 1,
	[0x6f] = 1, [0x70] = 1, [0x71] = 1, [0x72] = 1, [0x73] = 1, [0x74] = 1, [0x75] = 1,
	[0x76] = 1, [0x77] = 1, [0x78] = 1, [0x79] = 1, [0x7a] = 1, [0x7b] = 1, [0x7c] = 1,
	[0x7d] = 1, [0x7e] = 1, [0x7f] = 1,
};

static enum mu_err syntax(struct parser *p, size_t at, const char *what)
{
	return mu_errf(p->err, MU_ERR_FORMAT, "offset %zu: %s", at, what);
}

static int is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len && is_ws(p->s[p->pos]))
		p->pos++;
}

static enum mu_err new_tok(struct parser *p, enum json_type type, size_t start, uint32_t *out)
{
	if (p->n_tok >= p->m.n_tok) {
		if (p->n_tok >= p->lim->max_tokens)
			return mu_errf(p->err, MU_ERR_RANGE, "offset %zu: more than %u tokens (max_tokens)", start,
				       p->lim->max_tokens);
		return mu_errf(p->err, MU_ERR_INTERNAL, "offset %zu: token array full at %u", start, p->n_tok);
	}
	struct json_tok *t = &p->m.tok[p->n_tok];
	t->start = (uint32_t)start; /* start < len <= max_bytes <= UINT32_MAX */
	t->len = 0;
	t->count = 0;
	t->next = p->n_tok + 1;
	t->type = (uint8_t)type;
	t->flags = 0;
	*out = p->n_tok++;
	return MU_OK;
}

static int hex_val(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (uint8_t)(c | 0x20);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Four hex digits at s[at..at+4), or -1. */
static int32_t hex4(const struct parser *p, size_t at)
{
	if (p->len - at < 4)
		return -1;
	int32_t v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hex_val(p->s[at + (size_t)i]);
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* Scans the string whose opening quote is at p->pos into token t; leaves pos after the
 * closing quote. Counts decoded bytes against max_string. */
static enum mu_err scan_string(struct parser *p, uint32_t t)
{
	const uint8_t *s = p->s;
	size_t open = p->pos, i = open + 1, n = p->len;
	uint64_t dec = 0;
	uint8_t flags = 0;
	for (;;) {
		size_t run = i;
		while (i < n && plain_byte[s[i]])
			i++;
		dec += i - run;
		if (i >= n)
			return syntax(p, open, "unterminated string");
		uint8_t c = s[i];
		if (c == '"')
			break;
		if (c == '\\') {
			flags |= JSON_TOK_ESCAPED;
			if (i + 1 >= n)
				return syntax(p, open, "unterminated string");
			switch (s[i + 1]) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				dec += 1;
				i += 2;
				break;
			case 'u': {
				int32_t cp = hex4(p, i + 2);
				if (cp < 0)
					return syntax(p, i, "invalid \\u escape (expected four hex digits)");
				if (cp >= 0xdc00 && cp <= 0xdfff)
					return syntax(p, i, "\\u escape is a lone low surrogate");
				if (cp >= 0xd800 && cp <= 0xdbff) {
					int32_t lo = -1;
					if (n - i >= 12 && s[i + 6] == '\\' && s[i + 7] == 'u')
						lo = hex4(p, i + 8);
					if (lo < 0xdc00 || lo > 0xdfff)
						return syntax(p, i, "\\u escape is a high surrogate not followed by a low surrogate escape");
					dec += 4;
					i += 12;
				} else {
					if (cp == 0)
						flags |= JSON_TOK_NUL;
					dec += cp < 0x80 ? 1u : cp < 0x800 ? 2u : 3u;
					i += 6;
				}
				break;
			}
			default:
				return syntax(p, i, "invalid escape sequence (allowed: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
			}
		} else if (c < 0x20) {
			return syntax(p, i, "raw control character in string (it must be escaped)");
		} else {
			size_t k = json_utf8_seq(s + i, n - i);
			if (k == 0)
				return syntax(p, i, "invalid UTF-8 in string");
			dec += k;
			i += k;
		}
		if (dec > p->lim->max_string)
			return mu_errf(p->err, MU_ERR_RANGE, "offset %zu: string longer than %u bytes (max_string)", open,
				       p->lim->max_string);
	}
	if (dec > p->lim->max_string)
		return mu_errf(p->err, MU_ERR_RANGE, "offset %zu: string longer than %u bytes (max_string)", open,
			       p->lim->max_string);
	struct json_tok *tk = &p->m.tok[t];
	tk->start = (uint32_t)(open + 1);
	tk->len = (uint32_t)(i - open - 1);
	tk->dec_len = (uint32_t)dec;
	tk->flags = flags;
	p->pos = i + 1;
	return MU_OK;
}

/* number = [ '-' ] int [ frac ] [ exp ]; int = '0' / [1-9] *DIGIT (RFC 8259 section 6). */
static enum mu_err scan_number(struct parser *p, uint32_t t)
{
	const uint8_t *s = p->s;
	size_t start = p->pos, i = start, n = p->len;
	if (s[i] == '-')
		i++;
	if (i >= n || !is_digit(s[i]))
		return syntax(p, i, "expected a digit after '-'");
	if (s[i] == '0') {
		i++;
		if (i < n && is_digit(s[i]))
			return syntax(p, start, "number has a leading zero");
	} else {
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && s[i] == '.') {
		i++;
		if (i >= n || !is_digit(s[i]))
			return syntax(p, i, "expected a digit after '.'");
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit(s[i]))
			return syntax(p, i, "expected a digit in the exponent");
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i - start > p->lim->max_number)
		return mu_errf(p->err, MU_ERR_RANGE, "offset %zu: number longer than %u characters (max_number)", start,
			       p->lim->max_number);
	p->m.tok[t].len = (uint32_t)(i - start);
	p->pos = i;
	return MU_OK;
}

static enum mu_err scan_literal(struct parser *p, uint32_t t, const char *word, size_t n)
{
	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return syntax(p, p->pos, "invalid literal (expected true, false or null)");
	p->m.tok[t].len = (uint32_t)n;
	p->pos += n;
	return MU_OK;
}

/* ---- duplicate keys ---- */

/* Reports key b duplicating key a. */
static enum mu_err dup_error(struct parser *p, uint32_t a, uint32_t b)
{
	/* start points inside the quotes; report the opening quote. */
	return mu_errf(p->err, MU_ERR_FORMAT, "offset %u: duplicate key in object (same as the key at offset %u)",
		       p->m.tok[b].start - 1, p->m.tok[a].start - 1);
}

static void heap_sift(const struct json_doc *d, uint32_t *v, size_t i, size_t n)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && json_key_cmp(d, v[c + 1], v[c]) > 0)
			c++;
		if (json_key_cmp(d, v[c], v[i]) <= 0)
			return;
		uint32_t x = v[c];
		v[c] = v[i];
		v[i] = x;
		i = c;
	}
}

/* Heap-sorts the k keys by decoded bytes: O(k log k) comparisons whatever the keys are. Of
 * every group of equal keys, the second in document order is a duplicate; the one reported
 * is the earliest of those, as the hash path would find it. */
static enum mu_err dups_by_sort(struct parser *p, const struct json_doc *d, uint32_t obj, uint32_t k)
{
	uint32_t *v = p->m.table;
	uint32_t key = obj + 1;
	for (uint32_t i = 0; i < k; i++) {
		v[i] = key;
		key = p->m.tok[key + 1].next;
	}
	for (size_t i = k / 2; i-- > 0;)
		heap_sift(d, v, i, k);
	for (size_t n = k; n-- > 1;) {
		uint32_t x = v[0];
		v[0] = v[n];
		v[n] = x;
		heap_sift(d, v, 0, n);
	}
	uint32_t best_a = 0, best_b = 0;
	for (uint32_t i = 0; i < k;) {
		uint32_t j = i + 1, first = v[i], second = UINT32_MAX;
		while (j < k && json_key_cmp(d, v[i], v[j]) == 0) {
			uint32_t x = v[j];
			if (x < first) {
				second = first;
				first = x;
			} else if (x < second) {
				second = x;
			}
			j++;
		}
		if (second != UINT32_MAX && (best_b == 0 || second < best_b)) {
			best_a = first;
			best_b = second;
		}
		i = j;
	}
	memset(v, 0, (size_t)k * sizeof *v);
	if (best_b != 0)
		return dup_error(p, best_a, best_b);
	return MU_OK;
}

/* Open addressing with linear probing at load <= 1/2. Returns 1 when the probe budget ran
 * out (adversarial collisions), after cleaning the table. */
static int dups_by_hash(struct parser *p, const struct json_doc *d, uint32_t obj, uint32_t k, enum mu_err *rc)
{
	uint32_t size = 16; /* 2k <= tokens <= table_cap, a power of two below 2^32 */
	while (size < 2 * (uint64_t)k)
		size *= 2;
	uint32_t *tab = p->m.table, mask = size - 1;
	if (size > p->table_clean) {
		memset(tab + p->table_clean, 0, (size_t)(size - p->table_clean) * sizeof *tab);
		p->table_clean = size;
	}
	uint64_t budget = 8 * (uint64_t)k + 64;
	int gave_up = 0;
	*rc = MU_OK;
	uint32_t key = obj + 1;
	for (uint32_t i = 0; i < k && *rc == MU_OK && !gave_up; i++) {
		uint32_t h = (uint32_t)json_key_hash(d, key) & mask;
		while (tab[h] != 0) {
			if (json_key_cmp(d, tab[h], key) == 0) {
				*rc = dup_error(p, tab[h], key);
				break;
			}
			h = (h + 1) & mask;
			if (budget-- == 0) {
				gave_up = 1;
				break;
			}
		}
		if (*rc == MU_OK && !gave_up)
			tab[h] = key;
		key = p->m.tok[key + 1].next;
	}
	memset(tab, 0, (size_t)size * sizeof *tab);
	return gave_up;
}

static enum mu_err check_dups(struct parser *p, uint32_t obj)
{
	uint32_t k = p->m.tok[obj].count;
	if (k < 2)
		return MU_OK;
	struct json_doc d = {p->s, p->len, p->m.tok, p->n_tok};
	if (k <= 8 && !(p->lim->flags & JSON_SORT_KEYS)) {
		uint32_t keys[8], key = obj + 1;
		for (uint32_t i = 0; i < k; i++) {
			keys[i] = key;
			for (uint32_t j = 0; j < i; j++)
				if (json_key_cmp(&d, keys[j], key) == 0)
					return dup_error(p, keys[j], key);
			key = p->m.tok[key + 1].next;
		}
		return MU_OK;
	}
	if (!(p->lim->flags & JSON_SORT_KEYS)) {
		enum mu_err rc;
		if (!dups_by_hash(p, &d, obj, k, &rc))
			return rc;
	}
	return dups_by_sort(p, &d, obj, k);
}

/* ---- the state machine ---- */

static enum mu_err open_container(struct parser *p, enum json_type type)
{
	uint32_t t;
	if (p->depth >= p->lim->max_depth)
		return mu_errf(p->err, MU_ERR_RANGE, "offset %zu: nesting deeper than %u levels (max_depth)", p->pos,
			       p->lim->max_depth);
	enum mu_err rc = new_tok(p, type, p->pos, &t);
	if (rc != MU_OK)
		return rc;
	p->m.stack[p->depth++] = t;
	p->pos++;
	return MU_OK;
}

/* The container on top of the stack ends at p->pos (its closing bracket). */
static enum mu_err close_container(struct parser *p)
{
	uint32_t t = p->m.stack[--p->depth];
	struct json_tok *tk = &p->m.tok[t];
	tk->len = (uint32_t)(p->pos + 1 - tk->start);
	tk->next = p->n_tok;
	p->pos++;
	if (tk->type == JSON_OBJECT)
		return check_dups(p, t);
	return MU_OK;
}

/* A value starts at p->pos (whitespace skipped). Scalars are scanned completely; a container
 * is opened. *opened says which. */
static enum mu_err value(struct parser *p, int after_comma, int *opened)
{
	uint32_t t;
	enum mu_err rc;
	*opened = 0;
	if (p->pos >= p->len)
		return syntax(p, p->pos, "unexpected end of input (expected a value)");
	if (p->depth > 0) {
		struct json_tok *parent = &p->m.tok[p->m.stack[p->depth - 1]];
		if (parent->type == JSON_ARRAY)
			parent->count++;
	}
	uint8_t c = p->s[p->pos];
	switch (c) {
	case '{':
	case '[':
		*opened = 1;
		return open_container(p, c == '{' ? JSON_OBJECT : JSON_ARRAY);
	case '"':
		if ((rc = new_tok(p, JSON_STRING, p->pos, &t)) != MU_OK)
			return rc;
		return scan_string(p, t);
	case 't':
	case 'f':
	case 'n':
		if ((rc = new_tok(p, c == 'n' ? JSON_NULL : JSON_BOOL, p->pos, &t)) != MU_OK)
			return rc;
		return scan_literal(p, t, c == 't' ? "true" : c == 'f' ? "false" : "null", c == 'f' ? 5 : 4);
	case ']':
	case '}':
		if (after_comma)
			return syntax(p, p->pos, "expected a value after ',' (trailing commas are not allowed)");
		return syntax(p, p->pos, "expected a value");
	case '\'':
		return syntax(p, p->pos, "expected a value (strings take double quotes)");
	case '/':
		return syntax(p, p->pos, "expected a value (comments are not allowed)");
	default:
		if (c == '-' || is_digit(c)) {
			if ((rc = new_tok(p, JSON_NUMBER, p->pos, &t)) != MU_OK)
				return rc;
			return scan_number(p, t);
		}
		return syntax(p, p->pos, "expected a value");
	}
}

/* An object key at p->pos (whitespace skipped), then ':'. */
static enum mu_err key(struct parser *p, int after_comma)
{
	uint32_t t;
	enum mu_err rc;
	if (p->pos >= p->len)
		return syntax(p, p->pos, "unexpected end of input (expected a string key)");
	if (p->s[p->pos] != '"') {
		if (after_comma && p->s[p->pos] == '}')
			return syntax(p, p->pos, "expected a key after ',' (trailing commas are not allowed)");
		return syntax(p, p->pos, "expected a string key in double quotes");
	}
	p->m.tok[p->m.stack[p->depth - 1]].count++;
	if ((rc = new_tok(p, JSON_STRING, p->pos, &t)) != MU_OK || (rc = scan_string(p, t)) != MU_OK)
		return rc;
	skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != ':')
		return syntax(p, p->pos, "expected ':' after object key");
	p->pos++;
	return MU_OK;
}

static enum mu_err run(struct parser *p)
{
	enum { S_VALUE, S_KEY, S_AFTER } state = S_VALUE;
	int after_comma = 0, opened;
	enum mu_err rc;
	for (;;) {
		skip_ws(p);
		switch (state) {
		case S_VALUE:
			if ((rc = value(p, after_comma, &opened)) != MU_OK)
				return rc;
			after_comma = 0;
			if (!opened) {
				state = S_AFTER;
				break;
			}
			skip_ws(p);
			if (p->pos < p->len && (p->s[p->pos] == ']' || p->s[p->pos] == '}')) {
				uint8_t want = p->m.tok[p->m.stack[p->depth - 1]].type == JSON_OBJECT ? '}' : ']';
				if (p->s[p->pos] != want)
					return syntax(p, p->pos, want == '}' ? "expected a key or '}'" : "expected a value or ']'");
				if ((rc = close_container(p)) != MU_OK)
					return rc;
				state = S_AFTER;
			} else {
				state = p->m.tok[p->m.stack[p->depth - 1]].type == JSON_OBJECT ? S_KEY : S_VALUE;
			}
			break;
		case S_KEY:
			if ((rc = key(p, after_comma)) != MU_OK)
				return rc;
			after_comma = 0;
			state = S_VALUE;
			break;
		case S_AFTER: {
			if (p->depth == 0) {
				if (p->pos != p->len)
					return syntax(p, p->pos, "unexpected data after the JSON value");
				return MU_OK;
			}
			int in_obj = p->m.tok[p->m.stack[p->depth - 1]].type == JSON_OBJECT;
			uint8_t c = p->pos < p->len ? p->s[p->pos] : 0;
			if (c == ',') {
				p->pos++;
				after_comma = 1;
				state = in_obj ? S_KEY : S_VALUE;
			} else if (c == (in_obj ? '}' : ']')) {
				if ((rc = close_container(p)) != MU_OK)
					return rc;
			} else if (p->pos >= p->len) {
				return syntax(p, p->pos, in_obj ? "unexpected end of input (expected ',' or '}' after object member)"
								: "unexpected end of input (expected ',' or ']' after array element)");
			} else {
				return syntax(p, p->pos, in_obj ? "expected ',' or '}' after object member"
								: "expected ',' or ']' after array element");
			}
			break;
		}
		}
	}
}

enum mu_err json_parse(struct json_doc *doc, const void *src, size_t len, const struct json_limits *lim,
		       void *mem, size_t mem_len, struct mu_error *err)
{
	struct parser p;
	struct mu_arena a;
	enum mu_err rc;

	doc->src = src;
	doc->len = len;
	doc->tok = NULL;
	doc->n_tok = 0;
	if (!src && len)
		return mu_errf(err, MU_ERR_ARG, "json: NULL input");
	if (!mem)
		return mu_errf(err, MU_ERR_NOMEM, "json: no memory given");
	memset(&p, 0, sizeof p);
	mu_arena_init(&a, mem, mem_len);
	if ((rc = layout_of(lim, len, &a, &p.m, err)) != MU_OK)
		return rc;
	p.s = src;
	p.len = len;
	p.lim = lim;
	p.err = err;
	rc = run(&p);
	if (rc != MU_OK)
		return rc;
	doc->tok = p.m.tok;
	doc->n_tok = p.n_tok;
	return MU_OK;
}
