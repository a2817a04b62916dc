/* json_write.c — bounded JSON writer; see json_write.h. */
#include "wire/json_write.h"

#include <string.h>

#include "wire/json.h"

enum { JSONW_FAIL_NOMEM = 1, JSONW_FAIL_MISUSE = 2 };

static void fail(struct jsonw *w, int why)
{
	if (!w->failed)
		w->failed = why;
}

static void put(struct jsonw *w, const void *p, size_t n)
{
	if (w->failed)
		return;
	/* keep one byte for the NUL */
	if (w->cap == 0 || n > w->cap - 1 - w->len) {
		fail(w, JSONW_FAIL_NOMEM);
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void put_c(struct jsonw *w, char c) { put(w, &c, 1); }

void jsonw_init(struct jsonw *w, char *buf, size_t cap)
{
	memset(w, 0, sizeof *w);
	w->buf = buf;
	w->cap = cap;
	if (cap)
		buf[0] = '\0';
	else
		fail(w, JSONW_FAIL_NOMEM);
}

static void put_string(struct jsonw *w, const uint8_t *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	if (json_utf8_check(s, n) != n) {
		fail(w, JSONW_FAIL_MISUSE);
		return;
	}
	put_c(w, '"');
	size_t run = 0; /* bytes copied as they are, written in one go */
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(w, s + run, i - run);
		run = i + 1;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			put(w, e, 2);
		} else if (c == '\n') {
			put(w, "\\n", 2);
		} else if (c == '\t') {
			put(w, "\\t", 2);
		} else if (c == '\r') {
			put(w, "\\r", 2);
		} else {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			put(w, e, 6);
		}
	}
	put(w, s + run, n - run);
	put_c(w, '"');
}

/* Writes the separator and the key of a new member of the current object. */
static void member(struct jsonw *w, const char *key)
{
	if (w->depth == 0 || !key) {
		fail(w, JSONW_FAIL_MISUSE);
		return;
	}
	if (!w->first[w->depth - 1])
		put_c(w, ',');
	w->first[w->depth - 1] = 0;
	put_string(w, (const uint8_t *)key, strlen(key));
	put_c(w, ':');
}

void jsonw_begin(struct jsonw *w, const char *key)
{
	if (w->depth == 0) {
		if (key || w->len)
			fail(w, JSONW_FAIL_MISUSE);
	} else {
		member(w, key);
	}
	if (w->depth >= JSONW_MAX_DEPTH) {
		fail(w, JSONW_FAIL_MISUSE);
		return;
	}
	put_c(w, '{');
	w->first[w->depth++] = 1;
}

void jsonw_end(struct jsonw *w)
{
	if (w->depth == 0) {
		fail(w, JSONW_FAIL_MISUSE);
		return;
	}
	w->depth--;
	put_c(w, '}');
}

void jsonw_str(struct jsonw *w, const char *key, const char *s) { jsonw_strn(w, key, s, strlen(s)); }

void jsonw_strn(struct jsonw *w, const char *key, const void *s, size_t n)
{
	member(w, key);
	put_string(w, s, n);
}

void jsonw_hex(struct jsonw *w, const char *key, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	member(w, key);
	put_c(w, '"');
	for (size_t i = 0; i < n; i++) {
		char e[2] = {digits[p[i] >> 4], digits[p[i] & 15]};
		put(w, e, 2);
	}
	put_c(w, '"');
}

void jsonw_int(struct jsonw *w, const char *key, int64_t v)
{
	char tmp[24];
	size_t n = 0;
	/* magnitude as unsigned so INT64_MIN needs no special case */
	uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	member(w, key);
	do {
		tmp[sizeof tmp - 1 - n++] = (char)('0' + m % 10);
		m /= 10;
	} while (m);
	if (v < 0)
		tmp[sizeof tmp - 1 - n++] = '-';
	put(w, tmp + sizeof tmp - n, n);
}

void jsonw_bool(struct jsonw *w, const char *key, int v)
{
	member(w, key);
	if (v)
		put(w, "true", 4);
	else
		put(w, "false", 5);
}

void jsonw_null(struct jsonw *w, const char *key)
{
	member(w, key);
	put(w, "null", 4);
}

enum mu_err jsonw_finish(struct jsonw *w, size_t *len)
{
	if (!w->failed && (w->depth != 0 || w->len == 0))
		fail(w, JSONW_FAIL_MISUSE);
	if (w->failed == JSONW_FAIL_NOMEM)
		return MU_ERR_NOMEM;
	if (w->failed)
		return MU_ERR_ARG;
	if (len)
		*len = w->len;
	return MU_OK;
}
