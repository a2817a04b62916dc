/* filter.h — the proxy's output filter (the "diode"): runs on each response's reassembled text
 * stream, however the enclave split it into token frames.
 *
 * Rules, each with an action (off, flag: pass and record, block: stop the response):
 *   invalid_utf8   the stream is not valid UTF-8 (a sequence may span frames; one still open
 *                  when the response ends is invalid)
 *   control        a C0 control byte other than TAB, LF, CR; DEL; or a C1 control (U+0080-009F)
 *   max_size       the response is longer than max_response_bytes
 *   deny           a deny pattern occurs, ASCII case-insensitively (patterns are stored folded;
 *                  non-ASCII bytes match exactly), wherever the frames split it
 *   base64_run     a run of more than base64_run characters of [A-Za-z0-9+/=_-]
 *   hex_run        a run of more than hex_run characters of [0-9A-Fa-f]
 *
 * Blocking must stop the offending bytes before any of them leave, so the filter holds back
 * what a blocking rule might still need: an incomplete UTF-8 sequence, the last (longest
 * pattern - 1) bytes, and a base64/hex run that is not yet over its threshold. Held bytes are
 * released when they can no longer be part of a match, or at mu_filter_finish. Released bytes
 * always end on a UTF-8 character boundary. Memory is bounded: the hold-back never exceeds
 * MU_FILTER_HOLD_MAX bytes beyond the frame being pushed.
 *
 * Rules with action off are not evaluated (the stream is still decoded as UTF-8, to keep
 * releases on character boundaries); flag rules never hold bytes back. Within one byte the
 * rules are checked in the order max_size, invalid_utf8/control, deny, base64_run, hex_run, and
 * the first blocking rule to fire (in stream order) is the one reported. Deny matching is one
 * Knuth-Morris-Pratt automaton per pattern: O(bytes x patterns), no allocation.
 */
#ifndef MU_HOST_FILTER_H
#define MU_HOST_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/limits.h"

enum mu_filter_action { MU_FILTER_OFF = 0, MU_FILTER_FLAG = 1, MU_FILTER_BLOCK = 2 };

enum mu_filter_rule {
	MU_RULE_INVALID_UTF8 = 0,
	MU_RULE_CONTROL,
	MU_RULE_MAX_SIZE,
	MU_RULE_DENY,
	MU_RULE_BASE64_RUN,
	MU_RULE_HEX_RUN,
	MU_RULE_COUNT
};
const char *mu_filter_rule_name(enum mu_filter_rule r);     /* "invalid_utf8", ... */
const char *mu_filter_action_name(enum mu_filter_action a); /* "off", "flag", "block" */

#define MU_FILTER_HOLD_MAX (MU_FILTER_MAX_RUN + MU_FILTER_MAX_PATTERN + 8)

struct mu_filter_config {
	enum mu_filter_action action[MU_RULE_COUNT];
	uint64_t max_response_bytes;
	uint32_t base64_run, hex_run; /* thresholds: 1..MU_FILTER_MAX_RUN */
	uint32_t n_deny;
	char deny[MU_FILTER_MAX_PATTERNS][MU_FILTER_MAX_PATTERN + 1]; /* folded, NUL-terminated */
	uint32_t deny_len[MU_FILTER_MAX_PATTERNS];
};

/* Defaults: every rule blocks; max_response_bytes 1 MiB; base64_run 200; hex_run 96; no
 * deny patterns. */
void mu_filter_config_default(struct mu_filter_config *c);
/* Reads a filter file over the defaults: a strict JSON object with any of
 *   "invalid_utf8" | "control" | "max_size" | "deny" | "base64_run" | "hex_run":
 *       "off" | "flag" | "block"                               (the rule's action)
 *   "max_response_bytes": N, "base64_run_chars": N, "hex_run_chars": N,
 *   "deny_patterns": ["...", ...]                               (1..MU_FILTER_MAX_PATTERN bytes,
 *                                                               valid UTF-8, no NUL)
 * Unknown members, bad values and duplicate keys are errors naming the member. */
enum mu_err mu_filter_config_load(struct mu_filter_config *c, const char *path, struct mu_error *err);
/* Adds a deny pattern (folded). MU_ERR_RANGE past the limits. */
enum mu_err mu_filter_config_deny(struct mu_filter_config *c, const char *pat, size_t n, struct mu_error *err);

enum mu_filter_verdict { MU_FILTER_PASS = 0, MU_FILTER_BLOCKED = 1 };

struct mu_filter {
	const struct mu_filter_config *c;
	uint64_t total;            /* bytes pushed so far */
	uint32_t flagged;          /* bit (1 << rule) for each rule that fired with action flag */
	enum mu_filter_rule rule;  /* the blocking rule, once blocked (MU_RULE_COUNT before) */
	int blocked;
	uint64_t at;               /* stream offset of the first offending byte: the pattern's
				      first byte, the run's first byte, the invalid sequence's lead
				      byte, the control character's first byte, or the first byte past
				      max_response_bytes. No byte at or after it was ever released. */
	/* internal state */
	uint8_t hold[MU_FILTER_HOLD_MAX + MU_WIRE_MAX_TOKEN_TEXT];
	size_t n_hold;             /* bytes held back (not yet released) */
	size_t n_ready;            /* of which the first n_ready may be released now */
	uint32_t deny_hold;        /* bytes the deny rule holds back: longest pattern - 1 (block) */
	uint16_t deny_state[MU_FILTER_MAX_PATTERNS]; /* bytes of each pattern matched so far */
	uint16_t deny_fail[MU_FILTER_MAX_PATTERNS][MU_FILTER_MAX_PATTERN]; /* KMP failure function:
				      longest proper border of pattern[0..i] (built by mu_filter_start) */
	uint32_t b64_run, hex_run; /* lengths of the current runs */
	uint8_t utf8_need;         /* continuation bytes still expected */
	uint8_t utf8_seq[4];
	uint8_t utf8_have;
};

void mu_filter_start(struct mu_filter *f, const struct mu_filter_config *c);
/* Feeds the next piece of the stream (n <= MU_WIRE_MAX_TOKEN_TEXT). Returns MU_FILTER_BLOCKED
 * once a blocking rule fires (f->rule, f->at say which and where; held bytes, and releasable
 * bytes not yet taken, are dropped and nothing more is released); otherwise MU_FILTER_PASS, and
 * mu_filter_release gives the bytes that may leave now. Drain mu_filter_release before the
 * next push: the buffer holds MU_FILTER_HOLD_MAX + MU_WIRE_MAX_TOKEN_TEXT bytes, and a push
 * that does not fit (or is longer than MU_WIRE_MAX_TOKEN_TEXT) fails closed: the response is
 * blocked as max_size at the current offset. */
enum mu_filter_verdict mu_filter_push(struct mu_filter *f, const void *p, size_t n);
/* The end of the response: checks what only the end can decide (an unfinished UTF-8 sequence)
 * and makes every held byte releasable. */
enum mu_filter_verdict mu_filter_finish(struct mu_filter *f);
/* Moves up to cap releasable bytes to out and returns how many (0: none now). The bytes end on
 * a character boundary even when cap cuts one, so a cap below 4 may return 0 with bytes still
 * waiting; a cap of 4 or more always makes progress. */
size_t mu_filter_release(struct mu_filter *f, void *out, size_t cap);

#endif
