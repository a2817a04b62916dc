/* filter.c — the proxy's output filter; see filter.h.
 *
 * Every pushed byte is appended to the hold buffer and scanned once, in stream order, by each
 * rule whose action is not off:
 *   - max_size: the byte's stream offset is at or past max_response_bytes;
 *   - UTF-8: an incremental decoder with the parser's strict rules (no overlong forms, no
 *     surrogates, nothing above U+10FFFF); after an invalid sequence it resynchronises on the
 *     byte that broke it, so flag and off keep scanning;
 *   - control: each decoded code point (C1 controls are two-byte sequences, C2 80..C2 9F);
 *   - deny: one Knuth-Morris-Pratt automaton per pattern over ASCII-folded bytes, so a match is
 *     found however the frames split it, in O(1) amortised per byte and pattern;
 *   - base64_run / hex_run: the lengths of the current runs of each class.
 * The first blocking rule to fire stops the response. Otherwise, after the push, the bytes that
 * no blocking rule can still need become releasable: all but the longest of (longest pattern -
 * 1, the current base64 run, the current hex run, an incomplete UTF-8 sequence), moved back to
 * a character boundary. A run grows only at its end and a pattern's window only slides forward,
 * so the releasable point never moves back.
 *
 * f->at is the stream offset of the first offending byte: the match's first byte, the run's
 * first byte, the invalid sequence's lead byte, the control character's first byte, or the
 * first byte past max_response_bytes.
 */
#include "host/filter.h"

#include <stdio.h>
#include <string.h>

#include "pal/pal.h"
#include "wire/json.h"

#define FILTER_MAX_FILE (256u << 10) /* bytes of a filter file */

static const char *const rule_names[MU_RULE_COUNT] = {
	[MU_RULE_INVALID_UTF8] = "invalid_utf8", [MU_RULE_CONTROL] = "control", [MU_RULE_MAX_SIZE] = "max_size",
	[MU_RULE_DENY] = "deny",                 [MU_RULE_BASE64_RUN] = "base64_run", [MU_RULE_HEX_RUN] = "hex_run",
};

const char *mu_filter_rule_name(enum mu_filter_rule r)
{
	return (unsigned)r < MU_RULE_COUNT ? rule_names[r] : "none";
}

const char *mu_filter_action_name(enum mu_filter_action a)
{
	switch (a) {
	case MU_FILTER_OFF: return "off";
	case MU_FILTER_FLAG: return "flag";
	case MU_FILTER_BLOCK: return "block";
	}
	return "block"; /* anything else is treated as block (fail closed) */
}

static uint8_t fold(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c; }

static int is_hex(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static int is_b64(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '+' || c == '/' ||
	       c == '=' || c == '_' || c == '-';
}

/* ---- configuration ---- */

void mu_filter_config_default(struct mu_filter_config *c)
{
	memset(c, 0, sizeof *c);
	for (int r = 0; r < MU_RULE_COUNT; r++)
		c->action[r] = MU_FILTER_BLOCK;
	c->max_response_bytes = 1u << 20;
	c->base64_run = 200;
	c->hex_run = 96;
}

enum mu_err mu_filter_config_deny(struct mu_filter_config *c, const char *pat, size_t n, struct mu_error *err)
{
	if (n < 1 || n > MU_FILTER_MAX_PATTERN)
		return mu_errf(err, MU_ERR_RANGE, "a deny pattern of %zu bytes (allowed: 1 to %u)", n,
			       MU_FILTER_MAX_PATTERN);
	if (c->n_deny >= MU_FILTER_MAX_PATTERNS)
		return mu_errf(err, MU_ERR_RANGE, "more than %u deny patterns", MU_FILTER_MAX_PATTERNS);
	if (memchr(pat, 0, n))
		return mu_errf(err, MU_ERR_FORMAT, "a deny pattern contains a NUL byte");
	size_t bad = json_utf8_check(pat, n);
	if (bad != n)
		return mu_errf(err, MU_ERR_FORMAT, "a deny pattern is not valid UTF-8 (byte %zu)", bad);
	char *d = c->deny[c->n_deny];
	for (size_t i = 0; i < n; i++)
		d[i] = (char)fold((uint8_t)pat[i]);
	d[n] = '\0';
	c->deny_len[c->n_deny++] = (uint32_t)n;
	return MU_OK;
}

static const char *const action_keys[MU_RULE_COUNT] = {
	[MU_RULE_INVALID_UTF8] = "invalid_utf8", [MU_RULE_CONTROL] = "control", [MU_RULE_MAX_SIZE] = "max_size",
	[MU_RULE_DENY] = "deny",                 [MU_RULE_BASE64_RUN] = "base64_run", [MU_RULE_HEX_RUN] = "hex_run",
};

/* The json parser's duplicate-key message gives the byte offset of the second key's opening
 * quote; this names the member instead (printable ASCII, at most 32 bytes). */
static int name_duplicate(const char *path, const uint8_t *src, size_t len, struct mu_error *err)
{
	unsigned off = 0;
	/* json.c's own message, not input. NOLINTNEXTLINE(cert-err34-c) */
	if (!err || sscanf(err->msg, "offset %u: duplicate key", &off) != 1 || off >= len || src[off] != '"')
		return 0;
	char shown[40];
	size_t m = 0;
	for (size_t i = off + 1; i < len && src[i] != '"' && m < 32; i++)
		shown[m++] = (src[i] >= 0x20 && src[i] < 0x7f && src[i] != '\\') ? (char)src[i] : '?';
	shown[m] = '\0';
	mu_errf(err, MU_ERR_FORMAT, "%s: offset %u: duplicate member \"%s\"", path, off, shown);
	return 1;
}

static enum mu_err load_member(struct mu_filter_config *t, const struct json_doc *d, uint32_t k, uint32_t v,
			       const char *path, struct mu_error *err)
{
	int64_t x = 0;
	for (int r = 0; r < MU_RULE_COUNT; r++) {
		if (!json_str_eq(d, k, action_keys[r]))
			continue;
		if (json_str_eq(d, v, "off"))
			t->action[r] = MU_FILTER_OFF;
		else if (json_str_eq(d, v, "flag"))
			t->action[r] = MU_FILTER_FLAG;
		else if (json_str_eq(d, v, "block"))
			t->action[r] = MU_FILTER_BLOCK;
		else
			return mu_errf(err, MU_ERR_FORMAT, "%s: \"%s\" must be \"off\", \"flag\" or \"block\"", path,
				       action_keys[r]);
		return MU_OK;
	}
	if (json_str_eq(d, k, "max_response_bytes")) {
		if (json_type(d, v) != JSON_NUMBER || json_get_int(d, v, 1, INT64_MAX, &x, NULL) != MU_OK)
			return mu_errf(err, MU_ERR_RANGE, "%s: \"max_response_bytes\" must be an integer of at least 1",
				       path);
		t->max_response_bytes = (uint64_t)x;
		return MU_OK;
	}
	if (json_str_eq(d, k, "base64_run_chars") || json_str_eq(d, k, "hex_run_chars")) {
		int b64 = json_str_eq(d, k, "base64_run_chars");
		if (json_type(d, v) != JSON_NUMBER || json_get_int(d, v, 1, MU_FILTER_MAX_RUN, &x, NULL) != MU_OK)
			return mu_errf(err, MU_ERR_RANGE, "%s: \"%s\" must be an integer from 1 to %u", path,
				       b64 ? "base64_run_chars" : "hex_run_chars", MU_FILTER_MAX_RUN);
		if (b64)
			t->base64_run = (uint32_t)x;
		else
			t->hex_run = (uint32_t)x;
		return MU_OK;
	}
	if (json_str_eq(d, k, "deny_patterns")) {
		struct json_iter it;
		uint32_t ek, ev, i = 0;
		if (json_type(d, v) != JSON_ARRAY)
			return mu_errf(err, MU_ERR_FORMAT, "%s: \"deny_patterns\" must be an array of strings", path);
		json_iter_init(&it, d, v);
		while (json_iter_next(&it, &ek, &ev)) {
			char buf[MU_FILTER_MAX_PATTERN + 1];
			size_t n = 0;
			if (json_type(d, ev) != JSON_STRING)
				return mu_errf(err, MU_ERR_FORMAT, "%s: \"deny_patterns\"[%u] must be a string", path, i);
			if (json_str_len(d, ev) > MU_FILTER_MAX_PATTERN || json_str_len(d, ev) == 0)
				return mu_errf(err, MU_ERR_RANGE, "%s: \"deny_patterns\"[%u] must be 1 to %u bytes", path, i,
					       MU_FILTER_MAX_PATTERN);
			if (json_str_decode(d, ev, buf, sizeof buf, &n, err) != MU_OK)
				return mu_err_prefix(err, "%s: \"deny_patterns\"[%u]", path, i);
			if (mu_filter_config_deny(t, buf, n, err) != MU_OK)
				return mu_err_prefix(err, "%s: \"deny_patterns\"[%u]", path, i);
			i++;
		}
		return MU_OK;
	}
	return mu_errf(err, MU_ERR_INTERNAL, "%s: unexpected member", path); /* json_obj_only let it through */
}

enum mu_err mu_filter_config_load(struct mu_filter_config *c, const char *path, struct mu_error *err)
{
	static const char *const keys[] = {"invalid_utf8",     "control",          "max_size",
					   "deny",             "base64_run",       "hex_run",
					   "max_response_bytes", "base64_run_chars", "hex_run_chars",
					   "deny_patterns"};
	const struct json_limits lim = {.max_bytes = FILTER_MAX_FILE,
					.max_depth = 2,
					.max_tokens = 1024,
					.max_string = 4 * MU_FILTER_MAX_PATTERN,
					.max_number = 32,
					.flags = 0};
	struct mu_filter_config t;
	uint8_t *src = NULL;
	size_t len = 0, need = 0;
	void *mem = NULL;
	struct json_doc d;
	enum mu_err rc;

	mu_filter_config_default(&t);
	if ((rc = pal_read_file(path, FILTER_MAX_FILE, &src, &len, err)) != MU_OK)
		return rc;
	if ((rc = json_mem_size(&lim, len, &need, err)) != MU_OK) {
		mu_err_prefix(err, "%s", path);
		goto out;
	}
	if (!(mem = pal_alloc(need, 16))) {
		rc = mu_errf(err, MU_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	if ((rc = json_parse(&d, src, len, &lim, mem, need, err)) != MU_OK) {
		if (!name_duplicate(path, src, len, err))
			mu_err_prefix(err, "%s", path);
		goto out;
	}
	if (json_type(&d, 0) != JSON_OBJECT) {
		rc = mu_errf(err, MU_ERR_FORMAT, "%s: a filter file is one JSON object", path);
		goto out;
	}
	if ((rc = json_obj_only(&d, 0, keys, sizeof keys / sizeof keys[0], err)) != MU_OK) {
		mu_err_prefix(err, "%s", path);
		goto out;
	}
	struct json_iter it;
	uint32_t k, v;
	json_iter_init(&it, &d, 0);
	while (json_iter_next(&it, &k, &v))
		if ((rc = load_member(&t, &d, k, v, path, err)) != MU_OK)
			goto out;
	*c = t;
out:
	if (mem)
		pal_free(mem, need);
	if (src)
		pal_free(src, len + 1);
	return rc;
}

/* ---- the stream ---- */

static int blocks(const struct mu_filter_config *c, enum mu_filter_rule r)
{
	return c->action[r] != MU_FILTER_OFF && c->action[r] != MU_FILTER_FLAG;
}

static uint32_t threshold(uint32_t t) { return t > MU_FILTER_MAX_RUN ? MU_FILTER_MAX_RUN : t; }

/* Valid pattern length, or 0 for a slot to skip (a hand-built config out of range). */
static uint32_t pat_len(const struct mu_filter_config *c, uint32_t i)
{
	uint32_t m = c->deny_len[i];
	return m <= MU_FILTER_MAX_PATTERN ? m : 0;
}

static uint32_t n_patterns(const struct mu_filter_config *c)
{
	return c->n_deny < MU_FILTER_MAX_PATTERNS ? c->n_deny : MU_FILTER_MAX_PATTERNS;
}

void mu_filter_start(struct mu_filter *f, const struct mu_filter_config *c)
{
	f->c = c;
	f->total = 0;
	f->flagged = 0;
	f->rule = MU_RULE_COUNT;
	f->blocked = 0;
	f->at = 0;
	f->n_hold = f->n_ready = 0;
	f->b64_run = f->hex_run = 0;
	f->utf8_need = f->utf8_have = 0;
	memset(f->utf8_seq, 0, sizeof f->utf8_seq);
	uint32_t longest = 0;
	for (uint32_t i = 0; i < n_patterns(c); i++) {
		const uint8_t *p = (const uint8_t *)c->deny[i];
		uint32_t m = pat_len(c, i);
		uint16_t *fail = f->deny_fail[i];
		f->deny_state[i] = 0;
		if (m == 0)
			continue;
		if (m > longest)
			longest = m;
		/* fail[j]: length of the longest proper prefix of p[0..j] that is also its suffix */
		fail[0] = 0;
		uint32_t q = 0;
		for (uint32_t j = 1; j < m; j++) {
			while (q > 0 && fold(p[j]) != fold(p[q]))
				q = fail[q - 1];
			if (fold(p[j]) == fold(p[q]))
				q++;
			fail[j] = (uint16_t)q;
		}
	}
	f->deny_hold = (blocks(c, MU_RULE_DENY) && longest) ? longest - 1 : 0;
}

/* A rule fired at stream offset at. Returns 1 when it blocks the response. */
static int fire(struct mu_filter *f, enum mu_filter_rule r, uint64_t at)
{
	enum mu_filter_action a = f->c->action[r];
	if (a == MU_FILTER_OFF)
		return 0;
	if (a == MU_FILTER_FLAG) {
		f->flagged |= 1u << r;
		return 0;
	}
	f->blocked = 1;
	f->rule = r;
	f->at = at;
	f->n_hold = f->n_ready = 0; /* nothing held is ever released */
	return 1;
}

static int is_control(uint32_t cp)
{
	return (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f);
}

/* Feeds one byte at stream offset o to the UTF-8 decoder and the control rule. */
static int scan_utf8(struct mu_filter *f, uint8_t b, uint64_t o)
{
	for (;;) {
		if (f->utf8_need == 0) {
			uint8_t need;
			if (b < 0x80) {
				return is_control(b) ? fire(f, MU_RULE_CONTROL, o) : 0;
			} else if (b >= 0xc2 && b <= 0xdf) {
				need = 1;
			} else if (b >= 0xe0 && b <= 0xef) {
				need = 2;
			} else if (b >= 0xf0 && b <= 0xf4) {
				need = 3;
			} else { /* a stray continuation byte, C0/C1 (overlong) or F5..FF */
				return fire(f, MU_RULE_INVALID_UTF8, o);
			}
			f->utf8_seq[0] = b;
			f->utf8_have = 1;
			f->utf8_need = need;
			return 0;
		}
		uint8_t lo = 0x80, hi = 0xbf;
		if (f->utf8_have == 1) {
			switch (f->utf8_seq[0]) {
			case 0xe0: lo = 0xa0; break; /* overlong 3-byte form */
			case 0xed: hi = 0x9f; break; /* UTF-16 surrogates */
			case 0xf0: lo = 0x90; break; /* overlong 4-byte form */
			case 0xf4: hi = 0x8f; break; /* above U+10FFFF */
			default: break;
			}
		}
		if (b < lo || b > hi) {
			uint64_t start = o - f->utf8_have;
			f->utf8_need = f->utf8_have = 0;
			if (fire(f, MU_RULE_INVALID_UTF8, start))
				return 1;
			continue; /* b may start the next character */
		}
		f->utf8_seq[f->utf8_have++] = b;
		if (--f->utf8_need)
			return 0;
		/* complete: only two-byte sequences can be controls (C1 is U+0080..U+009F) */
		uint8_t have = f->utf8_have;
		f->utf8_have = 0;
		if (have == 2) {
			uint32_t cp = ((uint32_t)(f->utf8_seq[0] & 0x1f) << 6) | (f->utf8_seq[1] & 0x3f);
			if (is_control(cp))
				return fire(f, MU_RULE_CONTROL, o - 1);
		}
		return 0;
	}
}

static int scan_deny(struct mu_filter *f, uint8_t b, uint64_t o)
{
	const struct mu_filter_config *c = f->c;
	uint8_t fb = fold(b);
	for (uint32_t i = 0; i < n_patterns(c); i++) {
		uint32_t m = pat_len(c, i);
		if (m == 0)
			continue;
		const uint8_t *p = (const uint8_t *)c->deny[i];
		const uint16_t *fail = f->deny_fail[i];
		uint32_t q = f->deny_state[i];
		while (q > 0 && fold(p[q]) != fb)
			q = fail[q - 1];
		if (fold(p[q]) == fb)
			q++;
		if (q == m) {
			f->deny_state[i] = fail[m - 1];
			if (fire(f, MU_RULE_DENY, o + 1 - m))
				return 1;
			continue;
		}
		f->deny_state[i] = (uint16_t)q;
	}
	return 0;
}

/* Counts b into a run of its class; fires once the run is longer than t. */
static int scan_run(struct mu_filter *f, enum mu_filter_rule r, uint32_t *run, int in_class, uint32_t t, uint64_t o)
{
	if (!in_class) {
		*run = 0;
		return 0;
	}
	if (*run < UINT32_MAX)
		(*run)++;
	return *run > t ? fire(f, r, o + 1 - *run) : 0;
}

static int scan_byte(struct mu_filter *f, uint8_t b, uint64_t o)
{
	const struct mu_filter_config *c = f->c;
	if (c->action[MU_RULE_MAX_SIZE] != MU_FILTER_OFF && o >= c->max_response_bytes &&
	    fire(f, MU_RULE_MAX_SIZE, o))
		return 1;
	/* always decoded: released bytes end on character boundaries whatever the actions */
	if (scan_utf8(f, b, o))
		return 1;
	if (c->action[MU_RULE_DENY] != MU_FILTER_OFF && scan_deny(f, b, o))
		return 1;
	if (c->action[MU_RULE_BASE64_RUN] != MU_FILTER_OFF &&
	    scan_run(f, MU_RULE_BASE64_RUN, &f->b64_run, is_b64(b), threshold(c->base64_run), o))
		return 1;
	if (c->action[MU_RULE_HEX_RUN] != MU_FILTER_OFF &&
	    scan_run(f, MU_RULE_HEX_RUN, &f->hex_run, is_hex(b), threshold(c->hex_run), o))
		return 1;
	return 0;
}

/* Marks as releasable what no blocking rule can still need. */
static void update_ready(struct mu_filter *f)
{
	const struct mu_filter_config *c = f->c;
	size_t keep = f->utf8_have;
	if (f->deny_hold > keep)
		keep = f->deny_hold;
	if (blocks(c, MU_RULE_BASE64_RUN) && f->b64_run > keep)
		keep = f->b64_run;
	if (blocks(c, MU_RULE_HEX_RUN) && f->hex_run > keep)
		keep = f->hex_run;
	if (keep > f->n_hold)
		keep = f->n_hold;
	size_t end = f->n_hold - keep;
	/* never end inside a character: step back over continuation bytes (at most 3) */
	for (int k = 0; k < 3 && end > 0 && end < f->n_hold && (f->hold[end] & 0xc0) == 0x80; k++)
		end--;
	if (end > f->n_ready)
		f->n_ready = end;
}

enum mu_filter_verdict mu_filter_push(struct mu_filter *f, const void *p, size_t n)
{
	if (f->blocked)
		return MU_FILTER_BLOCKED;
	if (n == 0)
		return MU_FILTER_PASS;
	if (n > MU_WIRE_MAX_TOKEN_TEXT || n > sizeof f->hold - f->n_hold) {
		/* A caller that pushes more than a frame, or does not drain mu_filter_release:
		 * fail closed rather than release unchecked bytes or overrun the buffer. */
		f->blocked = 1;
		f->rule = MU_RULE_MAX_SIZE;
		f->at = f->total;
		f->n_hold = f->n_ready = 0;
		return MU_FILTER_BLOCKED;
	}
	uint8_t *dst = f->hold + f->n_hold;
	memcpy(dst, p, n);
	for (size_t i = 0; i < n; i++) {
		if (scan_byte(f, dst[i], f->total))
			return MU_FILTER_BLOCKED;
		f->total++;
	}
	f->n_hold += n;
	update_ready(f);
	return MU_FILTER_PASS;
}

enum mu_filter_verdict mu_filter_finish(struct mu_filter *f)
{
	if (f->blocked)
		return MU_FILTER_BLOCKED;
	if (f->utf8_need) { /* the response ended inside a character */
		uint64_t start = f->total - f->utf8_have;
		f->utf8_need = f->utf8_have = 0;
		if (fire(f, MU_RULE_INVALID_UTF8, start))
			return MU_FILTER_BLOCKED;
	}
	f->n_ready = f->n_hold;
	return MU_FILTER_PASS;
}

size_t mu_filter_release(struct mu_filter *f, void *out, size_t cap)
{
	if (f->blocked || f->n_ready == 0)
		return 0;
	size_t k = cap < f->n_ready ? cap : f->n_ready;
	/* a short cap must not split a character either (a cap of 4 or more always progresses) */
	for (int s = 0; s < 3 && k > 0 && k < f->n_ready && (f->hold[k] & 0xc0) == 0x80; s++)
		k--;
	if (k == 0)
		return 0;
	memcpy(out, f->hold, k);
	memmove(f->hold, f->hold + k, f->n_hold - k);
	f->n_hold -= k;
	f->n_ready -= k;
	return k;
}
