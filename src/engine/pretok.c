/* pretok.c — pre-tokenizers as state machines, character classes and NFC; the rules are in
 * pretok.h. */
#include "engine/pretok.h"

#include <string.h>
#include <utf8proc.h>

/* ---- UTF-8 ---- */

size_t mu_utf8_char_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	uint8_t lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong below U+0800 */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates U+D800..U+DFFF */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong below U+10000 */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

int mu_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t l = mu_utf8_char_len(p + i, n - i);
		if (l == 0)
			return 0;
		i += l;
	}
	return 1;
}

/* The code point of a valid character of len bytes. */
static int32_t utf8_decode(const uint8_t *p, size_t len)
{
	switch (len) {
	case 1:
		return p[0];
	case 2:
		return (int32_t)(p[0] & 0x1fu) << 6 | (int32_t)(p[1] & 0x3fu);
	case 3:
		return (int32_t)(p[0] & 0x0fu) << 12 | (int32_t)(p[1] & 0x3fu) << 6 | (int32_t)(p[2] & 0x3fu);
	default:
		return (int32_t)(p[0] & 0x07u) << 18 | (int32_t)(p[1] & 0x3fu) << 12 |
		       (int32_t)(p[2] & 0x3fu) << 6 | (int32_t)(p[3] & 0x3fu);
	}
}

static size_t utf8_len_of(int32_t cp)
{
	return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static void utf8_put(uint8_t *o, int32_t cp, size_t len)
{
	uint32_t u = (uint32_t)cp;
	switch (len) {
	case 1:
		o[0] = (uint8_t)u;
		break;
	case 2:
		o[0] = (uint8_t)(0xc0u | u >> 6);
		o[1] = (uint8_t)(0x80u | (u & 0x3fu));
		break;
	case 3:
		o[0] = (uint8_t)(0xe0u | u >> 12);
		o[1] = (uint8_t)(0x80u | (u >> 6 & 0x3fu));
		o[2] = (uint8_t)(0x80u | (u & 0x3fu));
		break;
	default:
		o[0] = (uint8_t)(0xf0u | u >> 18);
		o[1] = (uint8_t)(0x80u | (u >> 12 & 0x3fu));
		o[2] = (uint8_t)(0x80u | (u >> 6 & 0x3fu));
		o[3] = (uint8_t)(0x80u | (u & 0x3fu));
		break;
	}
}

/* ---- character classes ---- */

static unsigned cp_class(int32_t cp)
{
	unsigned c = 0;
	switch (utf8proc_category(cp)) {
	case UTF8PROC_CATEGORY_LU:
	case UTF8PROC_CATEGORY_LL:
	case UTF8PROC_CATEGORY_LT:
	case UTF8PROC_CATEGORY_LM:
	case UTF8PROC_CATEGORY_LO:
		return MU_CC_L;
	case UTF8PROC_CATEGORY_ND:
	case UTF8PROC_CATEGORY_NL:
	case UTF8PROC_CATEGORY_NO:
		return MU_CC_N;
	case UTF8PROC_CATEGORY_ZS:
	case UTF8PROC_CATEGORY_ZL:
	case UTF8PROC_CATEGORY_ZP:
		c = MU_CC_WS;
		break;
	default:
		break;
	}
	/* White_Space also holds these controls (category Cc) */
	if ((cp >= 0x09 && cp <= 0x0d) || cp == 0x85)
		c = MU_CC_WS;
	if (cp == '\r' || cp == '\n')
		c |= MU_CC_CRLF;
	else if (cp == ' ')
		c |= MU_CC_SPACE;
	else if (cp == '\'')
		c |= MU_CC_APOS;
	return c;
}

unsigned mu_char_class(const uint8_t *s, size_t n, size_t *len)
{
	size_t l = mu_utf8_char_len(s, n);
	if (l == 0) {
		*len = 1;
		return 0;
	}
	*len = l;
	return cp_class(utf8_decode(s, l));
}

/* The four kinds the regexes tell apart. */
enum kind { K_L, K_N, K_WS, K_O };

static enum kind kind_of(unsigned c)
{
	return (c & MU_CC_L) ? K_L : (c & MU_CC_N) ? K_N : (c & MU_CC_WS) ? K_WS : K_O;
}

static enum kind kind_at(const uint8_t *s, size_t n, size_t i, unsigned *cls, size_t *len)
{
	unsigned c = mu_char_class(s + i, n - i, len);
	if (cls)
		*cls = c;
	return kind_of(c);
}

/* End of the run of at most max characters of kind k that starts at i. */
static size_t run_end(const uint8_t *s, size_t n, size_t i, enum kind k, size_t max)
{
	size_t l;
	for (size_t count = 0; i < n && count < max; count++) {
		if (kind_at(s, n, i, NULL, &l) != k)
			break;
		i += l;
	}
	return i;
}

/* End of the run of CR and LF characters (`[\r\n]*`) that starts at i. */
static size_t crlf_end(const uint8_t *s, size_t n, size_t i)
{
	while (i < n && (s[i] == '\r' || s[i] == '\n'))
		i++;
	return i;
}

/* The letter at s[i] for a contraction: exactly the code point when case matters, else its
 * simple case folding (utf8proc's folding when that is one code point). -1 when there is none. */
static int32_t contraction_letter(const uint8_t *s, size_t n, size_t i, int fold, size_t *len)
{
	if (i >= n)
		return -1;
	size_t l = mu_utf8_char_len(s + i, n - i);
	if (l == 0)
		return -1;
	*len = l;
	int32_t cp = utf8_decode(s + i, l);
	if (!fold)
		return cp;
	utf8proc_int32_t f[4];
	int bound = 0;
	utf8proc_ssize_t k = utf8proc_decompose_char(cp, f, 4, UTF8PROC_CASEFOLD, &bound);
	return k == 1 ? f[0] : -1;
}

/* Length of the contraction ('s 't 're 've 'm 'll 'd) at the apostrophe s[i], or 0. */
static size_t contraction(const uint8_t *s, size_t n, size_t i, int fold)
{
	size_t l1 = 0, l2 = 0;
	int32_t a = contraction_letter(s, n, i + 1, fold, &l1);
	if (a == 's' || a == 't' || a == 'm' || a == 'd')
		return 1 + l1;
	if (a != 'r' && a != 'v' && a != 'l')
		return 0;
	int32_t b = contraction_letter(s, n, i + 1 + l1, fold, &l2);
	if (((a == 'r' || a == 'v') && b == 'e') || (a == 'l' && b == 'l'))
		return 1 + l1 + l2;
	return 0;
}

/* A run of whitespace at p: `\s*[\r\n]+` (when crlf is set) ends after the run's last CR or
 * LF; `\s+(?!\S)` takes the whole run at the end of the text and all but the last character
 * before a non-space; `\s+` takes a lone character. */
static size_t whitespace(const uint8_t *s, size_t n, size_t p, int crlf)
{
	size_t i = p, last = p, after_crlf = 0, chars = 0, l;
	unsigned c;
	while (i < n && kind_at(s, n, i, &c, &l) == K_WS) {
		last = i;
		chars++;
		i += l;
		if (c & MU_CC_CRLF)
			after_crlf = i;
	}
	if (crlf && after_crlf)
		return after_crlf - p;
	if (i == n || chars == 1)
		return i - p;
	return last - p;
}

static size_t next_gpt2(const uint8_t *s, size_t n, size_t p)
{
	size_t l0, l1, k;
	unsigned c0;
	enum kind k0 = kind_at(s, n, p, &c0, &l0);

	/* 's|'t|'re|'ve|'m|'ll|'d */
	if ((c0 & MU_CC_APOS) && (k = contraction(s, n, p, 0)))
		return k;
	/* ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+` with the space */
	if ((c0 & MU_CC_SPACE) && p + l0 < n) {
		enum kind k1 = kind_at(s, n, p + l0, NULL, &l1);
		if (k1 != K_WS)
			return run_end(s, n, p + l0, k1, SIZE_MAX) - p;
	}
	/* ... and without it */
	if (k0 != K_WS)
		return run_end(s, n, p, k0, SIZE_MAX) - p;
	/* \s+(?!\S)|\s+ */
	return whitespace(s, n, p, 0);
}

static size_t next_llama3(const uint8_t *s, size_t n, size_t p, size_t max_digits)
{
	size_t l0, l1, k;
	unsigned c0;
	enum kind k0 = kind_at(s, n, p, &c0, &l0);
	enum kind k1 = p + l0 < n ? kind_at(s, n, p + l0, NULL, &l1) : K_WS;

	/* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
	if ((c0 & MU_CC_APOS) && (k = contraction(s, n, p, 1)))
		return k;
	/* [^\r\n\p{L}\p{N}]?\p{L}+ */
	if (k0 == K_L)
		return run_end(s, n, p, K_L, SIZE_MAX) - p;
	if (!(c0 & MU_CC_CRLF) && k0 != K_N && p + l0 < n && k1 == K_L)
		return run_end(s, n, p + l0, K_L, SIZE_MAX) - p;
	/* \p{N}{1,3} (llama3) or \p{N} (qwen2) */
	if (k0 == K_N)
		return run_end(s, n, p, K_N, max_digits) - p;
	/* ` ?[^\s\p{L}\p{N}]+[\r\n]*` */
	if ((c0 & MU_CC_SPACE) && p + l0 < n && k1 == K_O)
		return crlf_end(s, n, run_end(s, n, p + l0, K_O, SIZE_MAX)) - p;
	if (k0 == K_O)
		return crlf_end(s, n, run_end(s, n, p, K_O, SIZE_MAX)) - p;
	/* \s*[\r\n]+|\s+(?!\S)|\s+ */
	return whitespace(s, n, p, 1);
}

size_t mu_pretok_next(enum mu_pretok kind, const uint8_t *s, size_t n, size_t pos)
{
	switch (kind) {
	case MU_PRETOK_LLAMA3:
		return next_llama3(s, n, pos, 3);
	case MU_PRETOK_QWEN2:
		return next_llama3(s, n, pos, 1);
	case MU_PRETOK_GPT2:
	default:
		return next_gpt2(s, n, pos);
	}
}

/* ---- NFC ---- */

size_t mu_nfc_scratch_size(size_t n)
{
	/* decomposition buffer and sort buffer, 2 code points per input byte each */
	return 2 * (2 * n + 1) * sizeof(int32_t) + 16;
}

static int ccc(int32_t cp)
{
	return utf8proc_get_property(cp)->combining_class;
}

/* Canonical ordering: each run of non-starters (combining class > 0) is sorted by class,
 * keeping the order of equal classes. A counting sort makes this linear even for a run of a
 * million marks (utf8proc's own bubble sort would be quadratic there). */
static void canonical_order(int32_t *v, size_t n, int32_t *tmp)
{
	size_t i = 0;
	while (i < n) {
		if (ccc(v[i]) == 0) {
			i++;
			continue;
		}
		size_t j = i + 1;
		int sorted = 1;
		while (j < n && ccc(v[j]) != 0) {
			if (ccc(v[j]) < ccc(v[j - 1]))
				sorted = 0;
			j++;
		}
		if (!sorted) {
			size_t count[257] = {0};
			for (size_t k = i; k < j; k++)
				count[ccc(v[k]) + 1]++;
			for (size_t c = 1; c < 257; c++)
				count[c] += count[c - 1];
			for (size_t k = i; k < j; k++)
				tmp[count[ccc(v[k])]++] = v[k];
			memcpy(v + i, tmp, (j - i) * sizeof *v);
		}
		i = j;
	}
}

enum mu_err mu_nfc(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len,
		   struct mu_arena *scratch, struct mu_error *err)
{
	size_t used = scratch->used, o = 0, i = 0;
	size_t ncp = 2 * n + 1;
	enum mu_err rc = MU_OK;

	*out_len = 0;
	if (cap / 3 < n)
		return mu_errf(err, MU_ERR_NOMEM, "NFC: output buffer of %zu bytes for %zu bytes of text", cap, n);
	int32_t *buf = mu_arena_alloc(scratch, ncp * sizeof *buf, _Alignof(int32_t));
	int32_t *tmp = mu_arena_alloc(scratch, ncp * sizeof *tmp, _Alignof(int32_t));
	if (!buf || !tmp) {
		scratch->used = used;
		return mu_errf(err, MU_ERR_NOMEM, "NFC: scratch too small for %zu bytes of text", n);
	}
	while (i < n) {
		size_t l = mu_utf8_char_len(in + i, n - i);
		if (l == 0) {
			out[o++] = in[i++]; /* an invalid byte passes through and ends the run */
			continue;
		}
		/* a run of valid characters: decompose, order, compose, encode */
		size_t w = 0;
		for (; i < n && (l = mu_utf8_char_len(in + i, n - i)) != 0; i += l) {
			int bound = 0;
			utf8proc_ssize_t k = utf8proc_decompose_char(utf8_decode(in + i, l), buf + w,
								     (utf8proc_ssize_t)(ncp - w), UTF8PROC_DECOMPOSE,
								     &bound);
			if (k < 1 || (size_t)k > ncp - w) {
				rc = mu_errf(err, MU_ERR_INTERNAL, "NFC: decomposition at byte %zu out of bounds", i);
				goto out;
			}
			w += (size_t)k;
		}
		canonical_order(buf, w, tmp);
		utf8proc_ssize_t m = utf8proc_normalize_utf32(buf, (utf8proc_ssize_t)w,
							      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
		if (m < 0 || (size_t)m > w) {
			rc = mu_errf(err, MU_ERR_INTERNAL, "NFC: composition failed before byte %zu", i);
			goto out;
		}
		for (size_t k = 0; k < (size_t)m; k++) {
			size_t cl = utf8_len_of(buf[k]);
			if (cl > cap - o) {
				rc = mu_errf(err, MU_ERR_INTERNAL, "NFC: output longer than 3 bytes per byte");
				goto out;
			}
			utf8_put(out + o, buf[k], cl);
			o += cl;
		}
	}
	*out_len = o;
out:
	scratch->used = used;
	return rc;
}
