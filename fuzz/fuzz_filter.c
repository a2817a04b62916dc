/* fuzz_filter.c — libFuzzer harness for the proxy's output filter (host/filter.h).
 *
 * Input layout:
 *   byte 0     thresholds: bits 0-1 pick (default | base64 8, hex 6, max 200 | base64 1, hex 1,
 *              max 16 | base64 and hex MU_FILTER_MAX_RUN, max 3000)
 *   bytes 1-2  the six rules' actions, two bits each (0 off, 1 flag, 2 and 3 block)
 *   byte 3     seed of the push sizes and release caps
 *   byte 4     number of deny patterns (low two bits); each is then a length byte (1 + b % 16)
 *              and that many bytes (patterns the config refuses are skipped)
 *   the rest   the response stream
 * The stream runs twice: in random pieces with random release caps, and one byte per push.
 * A broken invariant traps:
 *   - the released bytes are a prefix of the stream; after a pass they are the whole stream;
 *     after a block they stop before f->at, and the blocking rule's action is block;
 *   - both runs agree on verdict, rule, offset and flags;
 *   - a pass means no blocking rule's condition holds anywhere (checked naively: strict UTF-8
 *     by json_utf8_check, controls, max size, every pattern at every offset, run lengths);
 *     a block means the named condition does hold at f->at;
 *   - each release ends on a character boundary of a valid stream, and the hold-back after a
 *     drained push stays within MU_FILTER_HOLD_MAX. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/filter.h"
#include "wire/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond)
{
	if (!cond)
		__builtin_trap();
}

static struct mu_filter filt;
static uint8_t out[1u << 20];

struct outcome {
	enum mu_filter_verdict v;
	enum mu_filter_rule rule;
	uint64_t at;
	uint32_t flagged;
};

static uint32_t rng;
static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void drain(struct mu_filter *f, const uint8_t *in, size_t n, int valid, size_t *got, int random_caps)
{
	for (;;) {
		size_t cap = random_caps ? 4 + next_rand() % 300 : sizeof out - *got;
		size_t k = mu_filter_release(f, out + *got, cap);
		if (!k)
			return;
		require(k <= cap && *got + k <= n);
		require(memcmp(out + *got, in + *got, k) == 0);
		*got += k;
		require(!valid || *got == n || (in[*got] & 0xc0) != 0x80);
	}
}

static struct outcome run(const struct mu_filter_config *c, const uint8_t *in, size_t n, int bytewise)
{
	struct mu_filter *f = &filt;
	int valid = json_utf8_check(in, n) == n;
	size_t pos = 0, got = 0;
	enum mu_filter_verdict v = MU_FILTER_PASS;
	mu_filter_start(f, c);
	while (pos < n && v == MU_FILTER_PASS) {
		size_t k = bytewise ? 1 : 1 + (next_rand() % 8 == 0 ? next_rand() % MU_WIRE_MAX_TOKEN_TEXT : next_rand() % 24);
		if (k > n - pos)
			k = n - pos;
		v = mu_filter_push(f, in + pos, k);
		pos += k;
		if (v == MU_FILTER_PASS) {
			require(f->total == pos);
			drain(f, in, n, valid, &got, !bytewise);
			require(f->n_hold <= MU_FILTER_HOLD_MAX);
		}
	}
	if (v == MU_FILTER_PASS) {
		v = mu_filter_finish(f);
		if (v == MU_FILTER_PASS)
			drain(f, in, n, 0, &got, !bytewise);
	}
	struct outcome o = {v, f->rule, f->at, f->flagged};
	if (v == MU_FILTER_PASS) {
		require(got == n && !f->blocked);
	} else {
		require(f->blocked && f->rule < MU_RULE_COUNT && c->action[f->rule] == MU_FILTER_BLOCK);
		require(f->at < n && got <= f->at);
		require(mu_filter_release(f, out, sizeof out) == 0);
	}
	return o;
}

static uint8_t fold(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c; }

static int match_at(const struct mu_filter_config *c, const uint8_t *in, size_t n, size_t at)
{
	for (uint32_t p = 0; p < c->n_deny; p++) {
		size_t m = c->deny_len[p], j = 0;
		if (at + m > n)
			continue;
		while (j < m && fold(in[at + j]) == (uint8_t)c->deny[p][j])
			j++;
		if (j == m)
			return 1;
	}
	return 0;
}

static int is_hex(uint8_t x) { return (x >= '0' && x <= '9') || (x >= 'a' && x <= 'f') || (x >= 'A' && x <= 'F'); }
static int is_b64(uint8_t x)
{
	return is_hex(x) || (x >= 'g' && x <= 'z') || (x >= 'G' && x <= 'Z') || x == '+' || x == '/' || x == '=' ||
	       x == '_' || x == '-';
}

/* Length of the run of class cls starting at i. */
static size_t run_len(const uint8_t *in, size_t n, size_t i, int (*cls)(uint8_t))
{
	size_t j = i;
	while (j < n && cls(in[j]))
		j++;
	return j - i;
}

/* Whether code point at i is a control (i at a character start of a valid stream). */
static int control_at(const uint8_t *in, size_t n, size_t i)
{
	uint8_t b = in[i];
	if (b < 0x20)
		return b != '\t' && b != '\n' && b != '\r';
	if (b == 0x7f)
		return 1;
	return b == 0xc2 && i + 1 < n && in[i + 1] >= 0x80 && in[i + 1] <= 0x9f;
}

static int blocks(const struct mu_filter_config *c, enum mu_filter_rule r) { return c->action[r] == MU_FILTER_BLOCK; }

static void check_semantics(const struct mu_filter_config *c, const uint8_t *in, size_t n, const struct outcome *o)
{
	if (o->v == MU_FILTER_PASS) {
		if (blocks(c, MU_RULE_INVALID_UTF8))
			require(json_utf8_check(in, n) == n);
		if (blocks(c, MU_RULE_MAX_SIZE))
			require(n <= c->max_response_bytes);
		for (size_t i = 0; i < n; i++) {
			if (blocks(c, MU_RULE_DENY))
				require(!match_at(c, in, n, i));
			if (blocks(c, MU_RULE_BASE64_RUN))
				require(run_len(in, n, i, is_b64) <= c->base64_run);
			if (blocks(c, MU_RULE_HEX_RUN))
				require(run_len(in, n, i, is_hex) <= c->hex_run);
		}
		if (blocks(c, MU_RULE_CONTROL) && json_utf8_check(in, n) == n)
			for (size_t i = 0; i < n; i++)
				if ((in[i] & 0xc0) != 0x80)
					require(!control_at(in, n, i));
		return;
	}
	size_t at = (size_t)o->at;
	switch (o->rule) {
	case MU_RULE_INVALID_UTF8: require(json_utf8_check(in, n) == at); break;
	case MU_RULE_CONTROL: require(control_at(in, n, at)); break;
	case MU_RULE_MAX_SIZE: require(at == c->max_response_bytes); break;
	case MU_RULE_DENY: require(match_at(c, in, n, at)); break;
	case MU_RULE_BASE64_RUN:
		require((at == 0 || !is_b64(in[at - 1])) && run_len(in, n, at, is_b64) > c->base64_run);
		break;
	case MU_RULE_HEX_RUN:
		require((at == 0 || !is_hex(in[at - 1])) && run_len(in, n, at, is_hex) > c->hex_run);
		break;
	default: require(0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mu_filter_config c;
	if (size < 5)
		return 0;
	mu_filter_config_default(&c);
	switch (data[0] & 3) {
	case 1: c.base64_run = 8, c.hex_run = 6, c.max_response_bytes = 200; break;
	case 2: c.base64_run = 1, c.hex_run = 1, c.max_response_bytes = 16; break;
	case 3: c.base64_run = c.hex_run = MU_FILTER_MAX_RUN, c.max_response_bytes = 3000; break;
	default: break;
	}
	uint16_t acts = (uint16_t)(data[1] | data[2] << 8);
	for (int r = 0; r < MU_RULE_COUNT; r++) {
		unsigned a = (acts >> (2 * r)) & 3;
		c.action[r] = a == 0 ? MU_FILTER_OFF : a == 1 ? MU_FILTER_FLAG : MU_FILTER_BLOCK;
	}
	uint32_t seed = data[3] * 2654435761u + 1;
	size_t pos = 5;
	for (unsigned i = 0; i < (data[4] & 3u) && pos < size; i++) {
		size_t m = 1 + data[pos++] % 16;
		if (m > size - pos)
			m = size - pos;
		if (m)
			mu_filter_config_deny(&c, (const char *)data + pos, m, NULL);
		pos += m;
	}
	const uint8_t *in = data + pos;
	size_t n = size - pos;
	if (n > sizeof out)
		return 0;

	rng = seed;
	struct outcome a = run(&c, in, n, 0);
	struct outcome b = run(&c, in, n, 1);
	require(a.v == b.v && a.flagged == b.flagged);
	if (a.v == MU_FILTER_BLOCKED)
		require(a.rule == b.rule && a.at == b.at);
	check_semantics(&c, in, n, &a);
	return 0;
}
