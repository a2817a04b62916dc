/* json_write.h — a bounded JSON writer into a caller's buffer.
 *
 * The counterpart of json.h for the messages this project sends: small objects of strings,
 * hex strings, integers, booleans and nested objects. It allocates nothing and builds
 * freestanding. Output is always valid JSON: strings are escaped (", \ and bytes below 0x20;
 * the rest is copied), and a string that is not valid UTF-8 by the parser's rules, a buffer
 * that runs out or a nesting deeper than JSONW_MAX_DEPTH make the writer sticky-failed
 * (jsonw_finish reports it) instead of producing something the strict parser would refuse.
 *
 *     struct jsonw w;
 *     jsonw_init(&w, buf, sizeof buf);
 *     jsonw_begin(&w, NULL);               root object
 *     jsonw_str(&w, "type", "hello");
 *     jsonw_int(&w, "version", 1);
 *     jsonw_end(&w);
 *     if (jsonw_finish(&w, &len)) ...      buf[0..len) is the document, NUL-terminated
 */
#ifndef MU_WIRE_JSON_WRITE_H
#define MU_WIRE_JSON_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define JSONW_MAX_DEPTH 8

struct jsonw {
	char *buf;
	size_t cap; /* bytes of buf, the terminating NUL included */
	size_t len;
	int failed;
	int depth;
	uint8_t first[JSONW_MAX_DEPTH]; /* no member written yet at this level */
};

void jsonw_init(struct jsonw *w, char *buf, size_t cap);
/* Opens an object: the root when key is NULL at depth 0, otherwise a member named key. */
void jsonw_begin(struct jsonw *w, const char *key);
void jsonw_end(struct jsonw *w);
/* Members of the current object. */
void jsonw_str(struct jsonw *w, const char *key, const char *s);
void jsonw_strn(struct jsonw *w, const char *key, const void *s, size_t n);
void jsonw_hex(struct jsonw *w, const char *key, const uint8_t *p, size_t n); /* lower-case */
void jsonw_int(struct jsonw *w, const char *key, int64_t v);
void jsonw_bool(struct jsonw *w, const char *key, int v);
void jsonw_null(struct jsonw *w, const char *key);
/* MU_OK with *len (may be NULL) the length without the NUL when the document is complete
 * and fits; MU_ERR_NOMEM when the buffer was too small, MU_ERR_ARG for misuse (unclosed
 * object, invalid UTF-8 in a string). */
enum mu_err jsonw_finish(struct jsonw *w, size_t *len);

#endif
