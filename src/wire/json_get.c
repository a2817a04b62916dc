/* json_get.c — accessors over a parsed JSON document: member lookup, iteration, string
 * decoding and comparison, exact integer and correctly rounded float reading.
 *
 * Everything here works on a document json_parse accepted, so strings are known to hold
 * valid escapes and UTF-8 and numbers to follow the grammar; the accessors still check every
 * token index and type they are given. */
#include <string.h>

#include "base/ckd.h"
#include "wire/json.h"
#include "wire/json_int.h"

size_t json_utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	if (c < 0x80)
		return 1;
	if (c < 0xc2) /* continuation byte, or overlong 2-byte lead */
		return 0;
	if (c < 0xe0)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c < 0xf0) {
		/* E0 needs A0..BF (no overlongs); ED needs 80..9F (no surrogates) */
		uint8_t lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		if (n < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80)
			return 0;
		return 3;
	}
	if (c < 0xf5) {
		/* F0 needs 90..BF (no overlongs); F4 needs 80..8F (nothing above U+10FFFF) */
		uint8_t lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		if (n < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

size_t json_utf8_check(const void *p, size_t n)
{
	const uint8_t *s = p;
	size_t i = 0;
	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = json_utf8_seq(s + i, n - i);
		if (k == 0)
			return i;
		i += k;
	}
	return n;
}

/* ---- decoding validated strings ---- */

static uint32_t hex4u(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		uint8_t c = p[i];
		v = v << 4 | (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

static size_t utf8_put(uint32_t cp, uint8_t out[4])
{
	if (cp < 0x80) {
		out[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (uint8_t)(0xc0 | cp >> 6);
		out[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (uint8_t)(0xe0 | cp >> 12);
		out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (uint8_t)(0xf0 | cp >> 18);
	out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decodes the (validated) escape at *pp into out, returns its byte count (1-4) and advances
 * *pp past it. */
static size_t unescape(const uint8_t **pp, uint8_t out[4])
{
	const uint8_t *p = *pp;
	uint32_t cp;
	switch (p[1]) {
	case 'b': out[0] = '\b'; break;
	case 'f': out[0] = '\f'; break;
	case 'n': out[0] = '\n'; break;
	case 'r': out[0] = '\r'; break;
	case 't': out[0] = '\t'; break;
	case 'u':
		cp = hex4u(p + 2);
		if (cp >= 0xd800 && cp <= 0xdbff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4u(p + 8) - 0xdc00);
			*pp = p + 12;
		} else {
			*pp = p + 6;
		}
		return utf8_put(cp, out);
	default: out[0] = p[1]; break; /* '"', '\\', '/' */
	}
	*pp = p + 2;
	return 1;
}

/* Byte-at-a-time view of a string token's decoded text. */
struct sdec {
	const uint8_t *p, *end;
	uint8_t buf[4];
	uint8_t i, n;
};

static void sdec_init(struct sdec *s, const struct json_doc *d, const struct json_tok *t)
{
	s->p = d->src + t->start;
	s->end = s->p + t->len;
	s->i = s->n = 0;
}

static int sdec_byte(struct sdec *s)
{
	if (s->i < s->n)
		return s->buf[s->i++];
	if (s->p >= s->end)
		return -1;
	if (*s->p != '\\')
		return *s->p++;
	s->n = (uint8_t)unescape(&s->p, s->buf);
	s->i = 1;
	return s->buf[0];
}

static const struct json_tok *tok_at(const struct json_doc *d, uint32_t t)
{
	if (!d || !d->tok || t >= d->n_tok)
		return NULL;
	return &d->tok[t];
}

static const struct json_tok *str_tok(const struct json_doc *d, uint32_t t)
{
	const struct json_tok *k = tok_at(d, t);
	return k && k->type == JSON_STRING ? k : NULL;
}

int json_key_cmp(const struct json_doc *d, uint32_t a, uint32_t b)
{
	const struct json_tok *ta = &d->tok[a], *tb = &d->tok[b];
	if (!((ta->flags | tb->flags) & JSON_TOK_ESCAPED)) {
		uint32_t n = ta->len < tb->len ? ta->len : tb->len;
		int c = n ? memcmp(d->src + ta->start, d->src + tb->start, n) : 0;
		if (c != 0)
			return c;
		return ta->len < tb->len ? -1 : ta->len > tb->len;
	}
	struct sdec x, y;
	sdec_init(&x, d, ta);
	sdec_init(&y, d, tb);
	for (;;) {
		int cx = sdec_byte(&x), cy = sdec_byte(&y);
		if (cx != cy)
			return cx < cy ? -1 : 1;
		if (cx < 0)
			return 0;
	}
}

uint64_t json_key_hash(const struct json_doc *d, uint32_t t)
{
	const struct json_tok *tk = &d->tok[t];
	uint64_t h = 0xcbf29ce484222325u;
	if (!(tk->flags & JSON_TOK_ESCAPED)) {
		const uint8_t *p = d->src + tk->start;
		for (uint32_t i = 0; i < tk->len; i++)
			h = (h ^ p[i]) * 0x100000001b3u;
	} else {
		struct sdec s;
		int c;
		sdec_init(&s, d, tk);
		while ((c = sdec_byte(&s)) >= 0)
			h = (h ^ (uint8_t)c) * 0x100000001b3u;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	return h;
}

/* ---- types, members, iteration ---- */

const char *json_type_name(enum json_type t)
{
	switch (t) {
	case JSON_NULL: return "null";
	case JSON_BOOL: return "a boolean";
	case JSON_NUMBER: return "a number";
	case JSON_STRING: return "a string";
	case JSON_ARRAY: return "an array";
	case JSON_OBJECT: return "an object";
	}
	return "unknown";
}

int json_type(const struct json_doc *doc, uint32_t t)
{
	const struct json_tok *k = tok_at(doc, t);
	return k ? k->type : -1;
}

void json_iter_init(struct json_iter *it, const struct json_doc *doc, uint32_t t)
{
	const struct json_tok *k = tok_at(doc, t);
	it->doc = doc;
	it->cur = t + 1;
	it->left = 0;
	it->is_obj = 0;
	if (k && (k->type == JSON_ARRAY || k->type == JSON_OBJECT)) {
		it->left = k->count;
		it->is_obj = k->type == JSON_OBJECT;
	}
}

int json_iter_next(struct json_iter *it, uint32_t *key, uint32_t *val)
{
	if (it->left == 0 || it->cur >= it->doc->n_tok)
		return 0;
	it->left--;
	if (it->is_obj) {
		if (key)
			*key = it->cur;
		it->cur++;
	} else if (key) {
		*key = JSON_NONE;
	}
	if (val)
		*val = it->cur;
	it->cur = it->doc->tok[it->cur].next;
	return 1;
}

uint32_t json_arr_get(const struct json_doc *doc, uint32_t arr, uint32_t i)
{
	const struct json_tok *k = tok_at(doc, arr);
	if (!k || k->type != JSON_ARRAY || i >= k->count)
		return JSON_NONE;
	uint32_t v = arr + 1;
	while (i-- > 0)
		v = doc->tok[v].next;
	return v;
}

uint32_t json_obj_getn(const struct json_doc *doc, uint32_t obj, const char *key, size_t n)
{
	const struct json_tok *k = tok_at(doc, obj);
	if (!k || k->type != JSON_OBJECT || (!key && n))
		return JSON_NONE;
	struct json_iter it;
	uint32_t kt, vt;
	json_iter_init(&it, doc, obj);
	while (json_iter_next(&it, &kt, &vt))
		if (json_str_eqn(doc, kt, key, n))
			return vt;
	return JSON_NONE;
}

uint32_t json_obj_get(const struct json_doc *doc, uint32_t obj, const char *key)
{
	if (!key)
		return JSON_NONE;
	return json_obj_getn(doc, obj, key, strlen(key));
}

enum mu_err json_obj_only(const struct json_doc *doc, uint32_t obj, const char *const *keys, size_t n,
			  struct mu_error *err)
{
	const struct json_tok *k = tok_at(doc, obj);
	if (!k || k->type != JSON_OBJECT)
		return mu_errf(err, MU_ERR_FORMAT, "offset %u: expected an object, found %s", k ? k->start : 0,
			       k ? json_type_name((enum json_type)k->type) : "nothing");
	struct json_iter it;
	uint32_t kt;
	json_iter_init(&it, doc, obj);
	while (json_iter_next(&it, &kt, NULL)) {
		size_t i = 0;
		while (i < n && !json_str_eq(doc, kt, keys[i]))
			i++;
		if (i < n)
			continue;
		/* Show the key, but only as printable ASCII and at most 32 bytes of it. */
		char shown[36];
		size_t m = 0;
		struct sdec s;
		int c;
		sdec_init(&s, doc, &doc->tok[kt]);
		while (m < 32 && (c = sdec_byte(&s)) >= 0)
			shown[m++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
		if (m == 32 && doc->tok[kt].dec_len > 32) {
			memcpy(shown + m, "...", 3);
			m += 3;
		}
		shown[m] = '\0';
		return mu_errf(err, MU_ERR_FORMAT, "offset %u: unknown field \"%s\"", doc->tok[kt].start - 1, shown);
	}
	return MU_OK;
}

/* ---- strings ---- */

uint32_t json_str_len(const struct json_doc *doc, uint32_t t)
{
	const struct json_tok *k = str_tok(doc, t);
	return k ? k->dec_len : 0;
}

int json_str_raw(const struct json_doc *doc, uint32_t t, const char **s, size_t *n)
{
	const struct json_tok *k = str_tok(doc, t);
	if (!k || (k->flags & JSON_TOK_ESCAPED))
		return 0;
	*s = (const char *)doc->src + k->start;
	*n = k->len;
	return 1;
}

int json_str_eqn(const struct json_doc *doc, uint32_t t, const char *s, size_t n)
{
	const struct json_tok *k = str_tok(doc, t);
	if (!k || k->dec_len != n || (!s && n))
		return 0;
	if (!(k->flags & JSON_TOK_ESCAPED))
		return n == 0 || memcmp(doc->src + k->start, s, n) == 0;
	struct sdec d;
	sdec_init(&d, doc, k);
	for (size_t i = 0; i < n; i++)
		if (sdec_byte(&d) != (uint8_t)s[i])
			return 0;
	return 1;
}

int json_str_eq(const struct json_doc *doc, uint32_t t, const char *lit)
{
	return lit && json_str_eqn(doc, t, lit, strlen(lit));
}

enum mu_err json_str_decode(const struct json_doc *doc, uint32_t t, char *buf, size_t cap, size_t *len,
			    struct mu_error *err)
{
	const struct json_tok *k = tok_at(doc, t);
	if (!k || k->type != JSON_STRING)
		return mu_errf(err, MU_ERR_FORMAT, "offset %u: expected a string, found %s", k ? k->start : 0,
			       k ? json_type_name((enum json_type)k->type) : "nothing");
	if (!buf || cap < (size_t)k->dec_len + 1)
		return mu_errf(err, MU_ERR_NOMEM, "offset %u: string of %u bytes does not fit a buffer of %zu bytes",
			       k->start - 1, k->dec_len, buf ? cap : 0);
	const uint8_t *p = doc->src + k->start, *end = p + k->len;
	uint8_t *o = (uint8_t *)buf;
	while (p < end) {
		const uint8_t *bs = memchr(p, '\\', (size_t)(end - p));
		size_t run = (size_t)((bs ? bs : end) - p);
		memcpy(o, p, run);
		o += run;
		p += run;
		if (bs) {
			uint8_t tmp[4];
			size_t n = unescape(&p, tmp);
			memcpy(o, tmp, n);
			o += n;
		}
	}
	*o = '\0';
	if (len)
		*len = (size_t)(o - (uint8_t *)buf);
	return MU_OK;
}

/* ---- numbers ---- */

/* A number literal as M × 10^E, M the significant digits without leading or trailing zeros. */
struct dnum {
	int neg;
	int zero;     /* every digit is 0 */
	int overflow; /* more than 19 significant digits: m is not filled */
	uint64_t m;
	uint64_t nd;  /* significant digits in M */
	int64_t e;
};

static void decompose(const uint8_t *s, size_t n, struct dnum *d)
{
	size_t i = 0;
	uint64_t z = 0, nfrac = 0;
	int started = 0, frac = 0;
	memset(d, 0, sizeof *d);
	if (i < n && s[i] == '-') {
		d->neg = 1;
		i++;
	}
	for (; i < n; i++) {
		uint8_t c = s[i];
		if (c == '.') {
			frac = 1;
			continue;
		}
		if (c < '0' || c > '9')
			break;
		nfrac += (uint64_t)frac;
		if (c == '0') {
			z += (uint64_t)started; /* leading zeros do not count */
			continue;
		}
		started = 1;
		/* flush the zeros between the previous nonzero digit and this one */
		d->nd += z + 1;
		if (d->nd > 19) {
			d->overflow = 1;
		} else {
			for (; z > 0; z--)
				d->m *= 10;
			d->m = d->m * 10 + (uint64_t)(c - '0');
		}
		z = 0;
	}
	int64_t exp = 0, esign = 1;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			esign = s[i++] == '-' ? -1 : 1;
		for (; i < n; i++)
			if (exp < 1000000000)
				exp = exp * 10 + (s[i] - '0');
	}
	d->zero = !started;
	/* value = digits × 10^(exp - nfrac) = M × 10^(trailing zeros z) × 10^(exp - nfrac) */
	d->e = esign * exp - (int64_t)nfrac + (int64_t)z;
}

static const struct json_tok *num_tok(const struct json_doc *doc, uint32_t t, struct dnum *d, struct mu_error *err)
{
	const struct json_tok *k = tok_at(doc, t);
	if (!k || k->type != JSON_NUMBER) {
		mu_errf(err, MU_ERR_FORMAT, "offset %u: expected a number, found %s",
			k ? k->start - (k->type == JSON_STRING) : 0,
			k ? json_type_name((enum json_type)k->type) : "nothing");
		return NULL;
	}
	decompose(doc->src + k->start, k->len, d);
	return k;
}

enum mu_err json_get_i64(const struct json_doc *doc, uint32_t t, int64_t *out, struct mu_error *err)
{
	struct dnum d;
	const struct json_tok *k = num_tok(doc, t, &d, err);
	if (!k)
		return MU_ERR_FORMAT;
	if (d.zero) {
		*out = 0;
		return MU_OK;
	}
	if (d.e < 0)
		return mu_errf(err, MU_ERR_RANGE, "offset %u: number is not an integer", k->start);
	uint64_t v = d.m;
	int bad = d.overflow || d.nd + (uint64_t)d.e > 19;
	for (int64_t i = 0; !bad && i < d.e; i++)
		bad = ckd_mul(&v, v, (uint64_t)10);
	if (!bad && v > (uint64_t)INT64_MAX + (uint64_t)d.neg)
		bad = 1;
	if (bad)
		return mu_errf(err, MU_ERR_RANGE, "offset %u: integer outside the 64-bit signed range", k->start);
	if (d.neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return MU_OK;
}

enum mu_err json_get_int(const struct json_doc *doc, uint32_t t, int64_t lo, int64_t hi, int64_t *out,
			 struct mu_error *err)
{
	int64_t v;
	enum mu_err rc = json_get_i64(doc, t, &v, err);
	if (rc != MU_OK)
		return rc;
	if (v < lo || v > hi)
		return mu_errf(err, MU_ERR_RANGE, "offset %u: %lld is outside %lld..%lld", doc->tok[t].start,
			       (long long)v, (long long)lo, (long long)hi);
	*out = v;
	return MU_OK;
}

/* 10^0 .. 10^22 are exactly representable as doubles. */
static const double pow10_exact[23] = {
	1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

enum mu_err json_get_f64(const struct json_doc *doc, uint32_t t, double *out, struct mu_error *err)
{
	struct dnum d;
	const struct json_tok *k = num_tok(doc, t, &d, err);
	if (!k)
		return MU_ERR_FORMAT;
	double v;
	if (d.zero) {
		v = 0.0;
	} else if (d.overflow || d.m >= (uint64_t)1 << 53) {
		return mu_errf(err, MU_ERR_RANGE,
			       "offset %u: number has too many significant digits (exact conversion needs fewer than 2^53)",
			       k->start);
	} else if (d.e >= 0 && d.e <= 22) {
		v = (double)d.m * pow10_exact[d.e];
	} else if (d.e < 0 && d.e >= -22) {
		v = (double)d.m / pow10_exact[-d.e];
	} else if (d.e > 22 && d.e <= 22 + 16) {
		/* M × 10^(E-22) may still be an exact integer below 2^53 (e.g. 1e30). */
		uint64_t m = d.m;
		for (int64_t i = 22; i < d.e && m < (uint64_t)1 << 53; i++)
			m *= 10;
		if (m >= (uint64_t)1 << 53)
			return mu_errf(err, MU_ERR_RANGE, "offset %u: number's decimal exponent is too large for exact conversion",
				       k->start);
		v = (double)m * 1e22;
	} else {
		return mu_errf(err, MU_ERR_RANGE, "offset %u: number's decimal exponent is outside -22..22 (no exact conversion)",
			       k->start);
	}
	*out = d.neg ? -v : v;
	return MU_OK;
}

enum mu_err json_get_bool(const struct json_doc *doc, uint32_t t, int *out, struct mu_error *err)
{
	const struct json_tok *k = tok_at(doc, t);
	if (!k || k->type != JSON_BOOL)
		return mu_errf(err, MU_ERR_FORMAT, "offset %u: expected true or false, found %s",
			       k ? k->start - (k->type == JSON_STRING) : 0,
			       k ? json_type_name((enum json_type)k->type) : "nothing");
	*out = doc->src[k->start] == 't';
	return MU_OK;
}

int json_is_null(const struct json_doc *doc, uint32_t t)
{
	const struct json_tok *k = tok_at(doc, t);
	return k && k->type == JSON_NULL;
}
