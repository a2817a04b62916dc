/* json_int.h — helpers shared by the JSON parser (json.c) and its accessors (json_get.c).
 * Not part of the public API. */
#ifndef MU_WIRE_JSON_INT_H
#define MU_WIRE_JSON_INT_H

#include <stddef.h>
#include <stdint.h>

#include "wire/json.h"

/* Length (1-4) of the strictly valid UTF-8 sequence at p[0..n), or 0 when it is invalid:
 * overlong, a surrogate, above U+10FFFF, a stray continuation byte or truncated. */
size_t json_utf8_seq(const uint8_t *p, size_t n);

/* Orders two string tokens (already validated by the parser) by their decoded bytes, then by
 * length; 0 means equal. */
int json_key_cmp(const struct json_doc *d, uint32_t a, uint32_t b);

/* FNV-1a (64-bit) of a string token's decoded bytes, with a final avalanche. */
uint64_t json_key_hash(const struct json_doc *d, uint32_t t);

#endif
