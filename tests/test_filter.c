/* test_filter.c — the proxy's output filter (host/filter.h).
 *
 * Every case of the table runs with every way of splitting its input that matters: one push,
 * two pushes at every split point, three pushes at every pair of points (short inputs), one
 * byte per push, and seeded random splits with random release sizes. Each run must give the
 * same verdict, rule, offset and flags, and every run must keep the invariants: the released
 * bytes are a prefix of the input, never reach the blocking offset (so no byte of a denied
 * pattern, a long base64 run or a bad sequence ever leaves), end on a UTF-8 character boundary,
 * and equal the input exactly when nothing blocks; the hold-back after a drained push stays
 * within MU_FILTER_HOLD_MAX. Then: English prose (an original story and the stories260K
 * golden outputs from ../shared) passes byte-identical at every split; a 300-character base64
 * run is blocked with none of it released; a seeded random loop checks the filter against a
 * naive reference; the filter file loader accepts and refuses; a push that would overrun the
 * buffer fails closed. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/filter.h"
#include "test.h"
#include "wire/json.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t rnd_below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

/* ---- configurations ---- */

enum { CFG_DEFAULT, CFG_DENY, CFG_FLAG, CFG_SMALL, CFG_OFF, CFG_NOUTF8, CFG_COUNT };
static struct mu_filter_config cfgs[CFG_COUNT];

static const char *const patterns[] = {"secret", "BEGIN PRIVATE KEY", "aab", "abcabd", "caf\xc3\xa9", "ssh-rsa"};

static void add_patterns(struct mu_filter_config *c)
{
	for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
		struct mu_error e;
		enum mu_err rc = mu_filter_config_deny(c, patterns[i], strlen(patterns[i]), &e);
		CHECK(rc == MU_OK, "deny pattern %zu: %s", i, e.msg);
	}
}

static void make_configs(void)
{
	mu_filter_config_default(&cfgs[CFG_DEFAULT]);
	mu_filter_config_default(&cfgs[CFG_DENY]);
	add_patterns(&cfgs[CFG_DENY]);
	mu_filter_config_default(&cfgs[CFG_SMALL]);
	add_patterns(&cfgs[CFG_SMALL]);
	cfgs[CFG_SMALL].max_response_bytes = 64;
	cfgs[CFG_SMALL].base64_run = 16;
	cfgs[CFG_SMALL].hex_run = 8;
	cfgs[CFG_FLAG] = cfgs[CFG_SMALL];
	for (int r = 0; r < MU_RULE_COUNT; r++)
		cfgs[CFG_FLAG].action[r] = MU_FILTER_FLAG;
	cfgs[CFG_OFF] = cfgs[CFG_SMALL];
	for (int r = 0; r < MU_RULE_COUNT; r++)
		cfgs[CFG_OFF].action[r] = MU_FILTER_OFF;
	cfgs[CFG_NOUTF8] = cfgs[CFG_DENY];
	cfgs[CFG_NOUTF8].action[MU_RULE_INVALID_UTF8] = MU_FILTER_OFF;
}

/* ---- running a stream through the filter ---- */

static struct mu_filter filt;
static uint8_t out[1u << 21];

struct result {
	enum mu_filter_verdict v;
	enum mu_filter_rule rule;
	uint64_t at;
	uint32_t flagged;
	size_t out_len;
	char broke[160]; /* the first invariant that failed, or "" */
};

enum split { SPLIT_ONE, SPLIT_AT, SPLIT_AT2, SPLIT_BYTES, SPLIT_RANDOM };

static void broke(struct result *r, const char *what)
{
	if (!r->broke[0])
		snprintf(r->broke, sizeof r->broke, "%s", what);
}

/* Moves everything releasable to out, checking each chunk. */
static void drain(struct mu_filter *f, const uint8_t *in, size_t n, int utf8_valid, int random_caps,
		  struct result *r)
{
	for (;;) {
		size_t cap = random_caps ? 4 + rnd_below(60) : sizeof out - r->out_len;
		size_t k = mu_filter_release(f, out + r->out_len, cap);
		if (k == 0)
			break;
		if (k > cap || r->out_len + k > n) {
			broke(r, "released more than asked or than pushed");
			return;
		}
		if (memcmp(out + r->out_len, in + r->out_len, k) != 0)
			broke(r, "released bytes differ from the input");
		r->out_len += k;
		if (utf8_valid && r->out_len < n && (in[r->out_len] & 0xc0) == 0x80)
			broke(r, "a release ended inside a UTF-8 character");
	}
}

static struct result run(const struct mu_filter_config *c, const uint8_t *in, size_t n, enum split how,
			 size_t a1, size_t a2)
{
	struct result r;
	memset(&r, 0, sizeof r);
	int utf8_valid = json_utf8_check(in, n) == n;
	struct mu_filter *f = &filt;
	mu_filter_start(f, c);
	size_t pos = 0;
	r.v = MU_FILTER_PASS;
	while (pos < n && r.v == MU_FILTER_PASS) {
		size_t k;
		switch (how) {
		case SPLIT_ONE: k = n - pos; break;
		case SPLIT_AT: k = pos < a1 ? a1 - pos : n - pos; break;
		case SPLIT_AT2: k = pos < a1 ? a1 - pos : pos < a2 ? a2 - pos : n - pos; break;
		case SPLIT_BYTES: k = 1; break;
		default: k = 1 + rnd_below(rnd_below(4) == 0 ? 600 : 12); break;
		}
		if (k > n - pos)
			k = n - pos;
		if (k > MU_WIRE_MAX_TOKEN_TEXT)
			k = MU_WIRE_MAX_TOKEN_TEXT;
		r.v = mu_filter_push(f, in + pos, k);
		pos += k;
		if (f->total != pos && r.v == MU_FILTER_PASS)
			broke(&r, "total does not count the pushed bytes");
		if (r.v == MU_FILTER_PASS) {
			drain(f, in, n, utf8_valid, how == SPLIT_RANDOM, &r);
			if (f->n_hold > MU_FILTER_HOLD_MAX)
				broke(&r, "hold-back above MU_FILTER_HOLD_MAX after a drained push");
		} else if (mu_filter_release(f, out, sizeof out) != 0) {
			broke(&r, "released bytes after blocking");
		}
	}
	if (r.v == MU_FILTER_PASS) {
		r.v = mu_filter_finish(f);
		if (r.v == MU_FILTER_PASS)
			drain(f, in, n, 0, how == SPLIT_RANDOM, &r);
	}
	r.rule = f->rule;
	r.at = f->at;
	r.flagged = f->flagged;
	if (r.v == MU_FILTER_PASS) {
		if (r.out_len != n)
			broke(&r, "passed but did not release everything");
		if (f->blocked || f->rule != MU_RULE_COUNT)
			broke(&r, "passed with a blocking rule recorded");
	} else {
		if (!f->blocked || f->rule >= MU_RULE_COUNT)
			broke(&r, "blocked without a rule");
		if (r.at >= n)
			broke(&r, "blocking offset past the input");
		if (r.out_len > r.at)
			broke(&r, "released bytes at or past the blocking offset");
		if (mu_filter_push(f, "x", 1) != MU_FILTER_BLOCKED || mu_filter_finish(f) != MU_FILTER_BLOCKED ||
		    mu_filter_release(f, out, sizeof out) != 0)
			broke(&r, "blocked is not sticky");
	}
	return r;
}

static int same(const struct result *a, const struct result *b)
{
	return a->v == b->v && a->flagged == b->flagged &&
	       (a->v == MU_FILTER_PASS || (a->rule == b->rule && a->at == b->at));
}

/* Runs in every split mode; checks each run against want (and its invariants). Returns the
 * number of runs that went wrong (reported once, with the first). */
static int run_all(const char *name, const struct mu_filter_config *c, const uint8_t *in, size_t n,
		   const struct result *want)
{
	int bad = 0;
	char first[1024] = "";
	size_t runs = 0;
#define ONE(how, a1, a2)                                                                                     \
	do {                                                                                                 \
		struct result r_ = run(c, in, n, how, a1, a2);                                               \
		runs++;                                                                                      \
		if (!same(&r_, want) || r_.broke[0]) {                                                       \
			if (!bad++)                                                                          \
				snprintf(first, sizeof first,                                                \
					 "split %d (%zu,%zu): verdict %d rule %s at %llu flagged %#x, %s", how,      \
					 (size_t)(a1), (size_t)(a2), r_.v, mu_filter_rule_name(r_.rule),     \
					 (unsigned long long)r_.at, r_.flagged, r_.broke[0] ? r_.broke : "-"); \
		}                                                                                            \
	} while (0)
	ONE(SPLIT_ONE, 0, 0);
	ONE(SPLIT_BYTES, 0, 0);
	for (size_t i = 1; i < n; i++)
		ONE(SPLIT_AT, i, 0);
	if (n <= 64)
		for (size_t i = 1; i < n; i++)
			for (size_t j = i + 1; j < n; j++)
				ONE(SPLIT_AT2, i, j);
	for (int i = 0; i < 20; i++)
		ONE(SPLIT_RANDOM, 0, 0);
#undef ONE
	CHECK(bad == 0, "%s: %d of %zu runs wrong; want verdict %d rule %s at %llu flagged %#x; first: %s", name, bad,
	      runs, want->v, mu_filter_rule_name(want->rule), (unsigned long long)want->at, want->flagged, first);
	return bad;
}

static struct result want_pass(uint32_t flagged)
{
	struct result w;
	memset(&w, 0, sizeof w);
	w.v = MU_FILTER_PASS;
	w.rule = MU_RULE_COUNT;
	w.flagged = flagged;
	return w;
}

static struct result want_block(enum mu_filter_rule rule, uint64_t at)
{
	struct result w = want_pass(0);
	w.v = MU_FILTER_BLOCKED;
	w.rule = rule;
	w.at = at;
	return w;
}

/* ---- the table ---- */

#define PASS_ -1
#define ALL_FLAGS ((1u << MU_RULE_COUNT) - 1)

struct fcase {
	const char *name;
	int cfg;
	const char *in;
	int rule; /* PASS_ or the blocking rule */
	int at;
	uint32_t flagged;
};

static const struct fcase cases[] = {
	{"plain text", CFG_DENY, "plain text, nothing to see.", PASS_, 0, 0},
	{"empty", CFG_DENY, "", PASS_, 0, 0},
	{"deny mixed case", CFG_DENY, "the SeCrEt word", MU_RULE_DENY, 4, 0},
	{"deny at start", CFG_DENY, "SECRET", MU_RULE_DENY, 0, 0},
	{"deny after a false start", CFG_DENY, "xsecrexsecret", MU_RULE_DENY, 7, 0},
	{"deny overlapping prefix", CFG_DENY, "aaab", MU_RULE_DENY, 1, 0},
	{"deny KMP fallback", CFG_DENY, "abcabcabd", MU_RULE_DENY, 3, 0},
	{"deny long pattern", CFG_DENY, "-----BEGIN PRIVATE KEY-----\nMIIE", MU_RULE_DENY, 5, 0},
	{"deny pattern with a space", CFG_DENY, "ssh-rsa AAAA", MU_RULE_DENY, 0, 0},
	{"deny non-ASCII exact", CFG_DENY, "CAF\xc3\xa9 au lait", MU_RULE_DENY, 0, 0},
	{"deny non-ASCII not folded", CFG_DENY, "CAF\xc3\x89 au lait", PASS_, 0, 0},
	{"deny near miss", CFG_DENY, "secre t, s ecret, abcab d", PASS_, 0, 0},
	{"deny before control", CFG_DENY, "secret\x01", MU_RULE_DENY, 0, 0},
	{"control before deny", CFG_DENY, "\x01secret", MU_RULE_CONTROL, 0, 0},
	{"utf8 bad byte", CFG_DENY, "ab\xff", MU_RULE_INVALID_UTF8, 2, 0},
	{"utf8 F5", CFG_DENY, "\xf5\x80\x80\x80", MU_RULE_INVALID_UTF8, 0, 0},
	{"utf8 overlong C0", CFG_DENY, "x\xc0\xaf", MU_RULE_INVALID_UTF8, 1, 0},
	{"utf8 overlong E0", CFG_DENY, "a\xe0\x80\x80", MU_RULE_INVALID_UTF8, 1, 0},
	{"utf8 overlong F0", CFG_DENY, "\xf0\x8f\xbf\xbf", MU_RULE_INVALID_UTF8, 0, 0},
	{"utf8 surrogate", CFG_DENY, "ok \xed\xa0\x80", MU_RULE_INVALID_UTF8, 3, 0},
	{"utf8 above U+10FFFF", CFG_DENY, "\xf4\x90\x80\x80", MU_RULE_INVALID_UTF8, 0, 0},
	{"utf8 stray continuation", CFG_DENY, "a\x80", MU_RULE_INVALID_UTF8, 1, 0},
	{"utf8 lead then ASCII", CFG_DENY, "\xc3" "A", MU_RULE_INVALID_UTF8, 0, 0},
	{"utf8 truncated at the end", CFG_DENY, "abc\xe2\x82", MU_RULE_INVALID_UTF8, 3, 0},
	{"utf8 truncated 4-byte", CFG_DENY, "\xf0\x9f\x98", MU_RULE_INVALID_UTF8, 0, 0},
	{"utf8 valid multibyte", CFG_DENY, "caf\xc3\xa8 \xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87", PASS_, 0,
	 0},
	{"utf8 max code point", CFG_DENY, "\xf4\x8f\xbf\xbf", PASS_, 0, 0},
	{"control SOH", CFG_DENY, "a\x01", MU_RULE_CONTROL, 1, 0},
	{"control ESC", CFG_DENY, "\x1b[31mred", MU_RULE_CONTROL, 0, 0},
	{"control DEL", CFG_DENY, "del\x7f", MU_RULE_CONTROL, 3, 0},
	{"control NEL (C1)", CFG_DENY, "x\xc2\x85y", MU_RULE_CONTROL, 1, 0},
	{"control U+009F", CFG_DENY, "\xc2\x9f", MU_RULE_CONTROL, 0, 0},
	{"control allowed TAB LF CR", CFG_DENY, "tab\tlf\ncr\r\n", PASS_, 0, 0},
	{"no-break space is text", CFG_DENY, "a\xc2\xa0" "b \xc2\xa1", PASS_, 0, 0},
	{"hex run at threshold", CFG_SMALL, "id 0123abcd.", PASS_, 0, 0},
	{"hex run over threshold", CFG_SMALL, "id 0123abcdE.", MU_RULE_HEX_RUN, 3, 0},
	{"base64 run at threshold", CFG_SMALL, "k QUJDRE+/QUJDRE_= end", PASS_, 0, 0},
	{"base64 run over threshold", CFG_SMALL, "k QUJDRE+/QUJDRE_=- end", MU_RULE_BASE64_RUN, 2, 0},
	{"max size at the limit", CFG_SMALL, "xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz ",
	 PASS_, 0, 0},
	{"max size over the limit", CFG_SMALL, "xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz !",
	 MU_RULE_MAX_SIZE, 64, 0},
	{"flag everything", CFG_FLAG, "\x01 SECRET \xff 0123456789abcdef QUJDREVGR0hJSktMTU5PUFFSU1RV \xe2\x82",
	 PASS_, 0, ALL_FLAGS & ~(1u << MU_RULE_MAX_SIZE)},
	{"flag max size", CFG_FLAG, "xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz xyz",
	 PASS_, 0, 1u << MU_RULE_MAX_SIZE},
	{"flag deny only", CFG_FLAG, "aab", PASS_, 0, 1u << MU_RULE_DENY},
	{"all off", CFG_OFF, "\x01 SECRET \xff 0123456789abcdef QUJDREVGR0hJSktMTU5PUFFSU1RV \xe2\x82", PASS_, 0, 0},
	{"utf8 off: raw 0x85 is no control", CFG_NOUTF8, "a\x85" "b\xff", PASS_, 0, 0},
	{"utf8 off: still denies", CFG_NOUTF8, "\xff secret", MU_RULE_DENY, 2, 0},
	{"utf8 off: resync finds C1", CFG_NOUTF8, "\xe2\xc2\x85", MU_RULE_CONTROL, 1, 0},
};

static void test_table(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct fcase *t = &cases[i];
		struct result w = t->rule == PASS_ ? want_pass(t->flagged) : want_block((enum mu_filter_rule)t->rule,
											 (uint64_t)t->at);
		w.flagged = t->flagged;
		run_all(t->name, &cfgs[t->cfg], (const uint8_t *)t->in, strlen(t->in), &w);
	}
}

/* ---- long runs and prose ---- */

static const char b64_alphabet[] = "GHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz+/_-="; /* no hex digits */

static void test_base64_runs(void)
{
	static uint8_t buf[1024];
	const char *pre = "Here is the data: ";
	size_t p = strlen(pre);
	memcpy(buf, pre, p);
	for (size_t i = 0; i < 300; i++)
		buf[p + i] = (uint8_t)b64_alphabet[rnd_below(sizeof b64_alphabet - 1)];
	memcpy(buf + p + 300, " thanks.", 8);
	struct result w = want_block(MU_RULE_BASE64_RUN, p);
	run_all("base64 run of 300 chars, default threshold", &cfgs[CFG_DEFAULT], buf, p + 308, &w);
	/* 200 is allowed, 201 is not */
	struct result ok = want_pass(0);
	run_all("base64 run of 200 chars", &cfgs[CFG_DEFAULT], buf + p, 200, &ok);
	buf[p + 200] = ' ';
	run_all("base64 run of 200 chars then text", &cfgs[CFG_DEFAULT], buf, p + 220, &ok);
	buf[p + 200] = 'Q';
	w = want_block(MU_RULE_BASE64_RUN, 0);
	run_all("base64 run of 201 chars", &cfgs[CFG_DEFAULT], buf + p, 201, &w);
	/* hex: 96 allowed, 97 blocked, none of it released */
	for (size_t i = 0; i < 120; i++)
		buf[p + i] = (uint8_t)"0123456789abcdefABCDEF"[rnd_below(22)];
	run_all("hex run of 96 chars", &cfgs[CFG_DEFAULT], buf + p, 96, &ok);
	w = want_block(MU_RULE_HEX_RUN, p);
	run_all("hex run of 120 chars after text", &cfgs[CFG_DEFAULT], buf, p + 120, &w);
	/* the largest threshold: a run is held whole (65536 bytes) and still released at its end */
	struct mu_filter_config big = cfgs[CFG_DEFAULT];
	big.base64_run = MU_FILTER_MAX_RUN;
	big.hex_run = MU_FILTER_MAX_RUN;
	static uint8_t huge[MU_FILTER_MAX_RUN + 16];
	for (size_t i = 0; i < MU_FILTER_MAX_RUN; i++)
		huge[i] = (uint8_t)b64_alphabet[i % (sizeof b64_alphabet - 1)];
	huge[MU_FILTER_MAX_RUN] = ' ';
	struct result r = run(&big, huge, MU_FILTER_MAX_RUN + 1, SPLIT_RANDOM, 0, 0);
	CHECK(r.v == MU_FILTER_PASS && !r.broke[0], "65536-char run: %d %s", r.v, r.broke);
	huge[MU_FILTER_MAX_RUN] = 'Q';
	r = run(&big, huge, MU_FILTER_MAX_RUN + 1, SPLIT_RANDOM, 0, 0);
	CHECK(r.v == MU_FILTER_BLOCKED && r.rule == MU_RULE_BASE64_RUN && r.at == 0 && r.out_len == 0 && !r.broke[0],
	      "65537-char run: %d %s at %llu out %zu %s", r.v, mu_filter_rule_name(r.rule), (unsigned long long)r.at,
	      r.out_len, r.broke);
}

/* An original story in the style of the stories260K outputs. */
static const char story[] =
	"Once upon a time, in a small town by the sea, there lived a little fox named Pip. Pip had a bright red "
	"tail and a big, curious nose. Every morning he ran down to the beach to look for shells.\n"
	"One day, Pip found a shell that was blue and shiny. \"What a pretty shell!\" he said. He wanted to show it "
	"to his friend Mia, the old turtle. Mia lived under a rock near the water.\n"
	"\"Look, Mia! I found a treasure,\" Pip said. Mia smiled and said, \"It is very pretty, Pip. But this shell "
	"belongs to the crab family. They need it for their home.\" Pip felt sad, but he knew Mia was right.\n"
	"So Pip walked back to the rocks and put the shell down gently. A tiny crab came out and waved at him. "
	"Pip laughed and waved back. From that day on, Pip and the crab were best friends, and they played "
	"together every day until the sun went down.\n"
	"The end. \xe2\x80\x94 Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e, na\xc3\xafve, 3 + 4 = 7; 100% fun!\n";

static void unescape_repr(const char *s, size_t n, char *dst, size_t *m)
{
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			char e = s[++i];
			dst[j++] = e == 'n' ? '\n' : e == 't' ? '\t' : e;
		} else {
			dst[j++] = s[i];
		}
	}
	*m = j;
}

static void test_prose(void)
{
	struct result ok = want_pass(0);
	run_all("original story, default filter", &cfgs[CFG_DEFAULT], (const uint8_t *)story, strlen(story), &ok);
	run_all("original story, with deny patterns", &cfgs[CFG_DENY], (const uint8_t *)story, strlen(story), &ok);

	const char *sh = getenv("SHARED");
	char path[1024];
	snprintf(path, sizeof path, "%s/models/stories260K/stories260K.golden.txt", sh && *sh ? sh : "../shared");
	FILE *fp = fopen(path, "r");
	if (!fp) {
		printf("note: %s not found; golden prose skipped\n", path);
		return;
	}
	static char line[1 << 16], text[1 << 16];
	int found = 0;
	while (fgets(line, sizeof line, fp)) {
		const char *key = "text_utf8_escaped: '";
		if (strncmp(line, key, strlen(key)) != 0)
			continue;
		char *s = line + strlen(key);
		char *e = strrchr(s, '\'');
		if (!e)
			continue;
		size_t m = 0;
		unescape_repr(s, (size_t)(e - s), text, &m);
		char name[64];
		snprintf(name, sizeof name, "stories260K golden text %d (%zu bytes)", found, m);
		run_all(name, &cfgs[CFG_DENY], (const uint8_t *)text, m, &ok);
		found++;
	}
	fclose(fp);
	CHECK(found >= 3, "found %d golden texts in %s", found, path);
}

/* ---- every split of a pattern, with the longest pattern ---- */

static void test_deny_longest(void)
{
	struct mu_filter_config c;
	struct mu_error e;
	char pat[MU_FILTER_MAX_PATTERN + 1];
	mu_filter_config_default(&c);
	for (size_t i = 0; i < MU_FILTER_MAX_PATTERN; i++)
		pat[i] = i % 10 == 9 ? ' ' : (char)('a' + (i * 7) % 26); /* words: no base64 run */
	CHECK(mu_filter_config_deny(&c, pat, MU_FILTER_MAX_PATTERN, &e) == MU_OK, "%s", e.msg);
	CHECK(mu_filter_config_deny(&c, pat, MU_FILTER_MAX_PATTERN + 1, &e) == MU_ERR_RANGE, "257-byte pattern");
	CHECK(mu_filter_config_deny(&c, "", 0, &e) == MU_ERR_RANGE, "empty pattern");
	CHECK(mu_filter_config_deny(&c, "a\0b", 3, &e) == MU_ERR_FORMAT, "NUL in pattern");
	CHECK(mu_filter_config_deny(&c, "a\xc3", 2, &e) == MU_ERR_FORMAT, "bad UTF-8 pattern");
	CHECK(c.n_deny == 1, "refused patterns are not added");
	static uint8_t buf[1024];
	memset(buf, ' ', sizeof buf);
	memcpy(buf + 300, pat, MU_FILTER_MAX_PATTERN);
	for (size_t i = 0; i < MU_FILTER_MAX_PATTERN; i += 3) /* shout some of it */
		if (buf[300 + i] != ' ')
			buf[300 + i] = (uint8_t)(buf[300 + i] - 'a' + 'A');
	struct result w = want_block(MU_RULE_DENY, 300);
	run_all("256-byte pattern", &c, buf, 600, &w);
	buf[300 + MU_FILTER_MAX_PATTERN - 1] = '.';
	struct result ok = want_pass(0);
	run_all("256-byte pattern missing its last byte", &c, buf, 600, &ok);

	/* stored folded */
	mu_filter_config_default(&c);
	CHECK(mu_filter_config_deny(&c, "PassWord\xc3\x89", 10, &e) == MU_OK, "%s", e.msg);
	CHECK(!strcmp(c.deny[0], "password\xc3\x89") && c.deny_len[0] == 10, "folded: %s", c.deny[0]);
	for (int i = 1; i < (int)MU_FILTER_MAX_PATTERNS; i++)
		mu_filter_config_deny(&c, "x", 1, NULL);
	CHECK(c.n_deny == MU_FILTER_MAX_PATTERNS, "64 patterns");
	CHECK(mu_filter_config_deny(&c, "y", 1, &e) == MU_ERR_RANGE, "65th pattern refused");
}

/* ---- flag-only configurations release at once ---- */

static void test_flag_no_hold(void)
{
	struct mu_filter *f = &filt;
	uint8_t o[64];
	mu_filter_start(f, &cfgs[CFG_FLAG]);
	CHECK(mu_filter_push(f, "QUJDRE", 6) == MU_FILTER_PASS, "push");
	CHECK(mu_filter_release(f, o, sizeof o) == 6, "flag-only: nothing held back");
	CHECK(mu_filter_push(f, "x\xe2\x82", 3) == MU_FILTER_PASS, "push");
	CHECK(mu_filter_release(f, o, sizeof o) == 1, "an incomplete character is still held");
	CHECK(mu_filter_push(f, "\xac", 1) == MU_FILTER_PASS, "push");
	CHECK(mu_filter_release(f, o, 2) == 0, "a cap shorter than the character releases nothing");
	CHECK(mu_filter_release(f, o, 4) == 3, "the whole character");

	/* blocking deny holds the last (longest - 1) bytes, and no more */
	mu_filter_start(f, &cfgs[CFG_DENY]);
	CHECK(mu_filter_push(f, "hello there, ", 13) == MU_FILTER_PASS, "push");
	size_t k = mu_filter_release(f, o, sizeof o);
	CHECK(k == 13 - (strlen("BEGIN PRIVATE KEY") - 1) || k == 0, "released %zu", k);
	CHECK(mu_filter_finish(f) == MU_FILTER_PASS, "finish");
	CHECK(k + mu_filter_release(f, o, sizeof o) == 13, "rest at finish");
	CHECK(f->rule == MU_RULE_COUNT && !strcmp(mu_filter_rule_name(f->rule), "none"), "no rule");
	CHECK(!strcmp(mu_filter_rule_name(MU_RULE_HEX_RUN), "hex_run") &&
		      !strcmp(mu_filter_action_name(MU_FILTER_FLAG), "flag"),
	      "names");
}

/* ---- misuse fails closed ---- */

static void test_fail_closed(void)
{
	struct mu_filter *f = &filt;
	static uint8_t big[MU_WIRE_MAX_TOKEN_TEXT + 1];
	memset(big, 'a', sizeof big);
	mu_filter_start(f, &cfgs[CFG_DEFAULT]);
	CHECK(mu_filter_push(f, big, sizeof big) == MU_FILTER_BLOCKED && f->rule == MU_RULE_MAX_SIZE,
	      "a push above MU_WIRE_MAX_TOKEN_TEXT blocks");
	/* a caller that never drains: the filter blocks before its buffer overflows */
	struct mu_filter_config c = cfgs[CFG_DEFAULT];
	c.max_response_bytes = UINT64_MAX;
	mu_filter_start(f, &c);
	memset(big, ' ', sizeof big);
	int pushes = 0;
	while (mu_filter_push(f, big, MU_WIRE_MAX_TOKEN_TEXT) == MU_FILTER_PASS && pushes < 1000)
		pushes++;
	CHECK(pushes > 10 && pushes < 1000 && f->blocked && mu_filter_release(f, big, sizeof big) == 0,
	      "undrained filter blocks after %d pushes", pushes);
}

/* ---- random streams against a naive reference ---- */

static uint8_t fold_b(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c; }

/* For valid UTF-8 without controls: the first rule to fire, scanning as the filter does. */
static struct result reference(const struct mu_filter_config *c, const uint8_t *in, size_t n)
{
	uint32_t b = 0, h = 0;
	for (size_t i = 0; i < n; i++) {
		if (i >= c->max_response_bytes)
			return want_block(MU_RULE_MAX_SIZE, i);
		for (uint32_t p = 0; p < c->n_deny; p++) {
			size_t m = c->deny_len[p];
			if (i + 1 < m)
				continue;
			size_t j = 0;
			while (j < m && fold_b(in[i + 1 - m + j]) == (uint8_t)c->deny[p][j])
				j++;
			if (j == m)
				return want_block(MU_RULE_DENY, i + 1 - m);
		}
		uint8_t x = in[i];
		int is_h = (x >= '0' && x <= '9') || (x >= 'a' && x <= 'f') || (x >= 'A' && x <= 'F');
		int is_b = is_h || (x >= 'g' && x <= 'z') || (x >= 'G' && x <= 'Z') || strchr("+/=_-", x) != NULL;
		b = (is_b && x) ? b + 1 : 0;
		h = is_h ? h + 1 : 0;
		if (b > c->base64_run)
			return want_block(MU_RULE_BASE64_RUN, i + 1 - b);
		if (h > c->hex_run)
			return want_block(MU_RULE_HEX_RUN, i + 1 - h);
	}
	return want_pass(0);
}

static size_t gen_stream(uint8_t *buf, size_t cap, int allow_bad)
{
	static const char *const words[] = {"the", "little", "Fox", "ran", "to", "a", "big", "tree", "and", "said",
					    "\"Hello!\"", "Lily", "cafe", "deadbeef", "aa", "abcab", "secre"};
	static const char *const mb[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc2\xa0", "\xe4\xb8\xad"};
	static const char *const bad[] = {"\x01", "\xff", "\xc2\x85", "\xed\xa0\x80", "\xe2\x82", "\x7f", "\x80"};
	size_t n = 0, target = 1 + rnd_below(rnd_below(8) == 0 ? 2000 : 300);
	while (n < target && n + 300 < cap) {
		size_t pick = rnd_below(100);
		const char *s = NULL;
		if (pick < 55) {
			s = words[rnd_below(sizeof words / sizeof words[0])];
		} else if (pick < 70) {
			s = rnd_below(2) ? " " : (rnd_below(2) ? ", " : ".\n");
		} else if (pick < 78) {
			s = mb[rnd_below(sizeof mb / sizeof mb[0])];
		} else if (pick < 85) {
			s = patterns[rnd_below(sizeof patterns / sizeof patterns[0])];
		} else if (pick < 93) {
			size_t len = 1 + rnd_below(rnd_below(3) ? 24 : 260);
			int hex = (int)rnd_below(2);
			for (size_t i = 0; i < len; i++)
				buf[n++] = (uint8_t)(hex ? "0123456789abcdefABCDEF"[rnd_below(22)]
							 : b64_alphabet[rnd_below(sizeof b64_alphabet - 1)]);
			continue;
		} else if (allow_bad) {
			s = bad[rnd_below(sizeof bad / sizeof bad[0])];
		} else {
			s = " ";
		}
		size_t m = strlen(s);
		for (size_t i = 0; i < m; i++) /* random case */
			buf[n + i] = (uint8_t)((s[i] >= 'a' && s[i] <= 'z' && rnd_below(4) == 0) ? s[i] - 32 : s[i]);
		n += m;
	}
	return n;
}

static void test_random(void)
{
	static uint8_t buf[4096];
	int bad = 0, refd = 0, blocked = 0, iters = 3000;
	char first[1024] = "";
	for (int it = 0; it < iters; it++) {
		int allow_bad = it % 3 == 0;
		size_t n = gen_stream(buf, sizeof buf, allow_bad);
		const struct mu_filter_config *c = &cfgs[it % 2 ? CFG_SMALL : CFG_DENY];
		if (it % 7 == 0)
			c = &cfgs[it % 14 ? CFG_FLAG : CFG_NOUTF8];
		struct result one = run(c, buf, n, SPLIT_ONE, 0, 0);
		struct result by = run(c, buf, n, SPLIT_BYTES, 0, 0);
		struct result rs = run(c, buf, n, SPLIT_RANDOM, 0, 0);
		struct result at = run(c, buf, n, SPLIT_AT, 1 + rnd_below(n), 0);
		int ok = same(&one, &by) && same(&one, &rs) && same(&one, &at) && !one.broke[0] && !by.broke[0] &&
			 !rs.broke[0] && !at.broke[0];
		blocked += one.v == MU_FILTER_BLOCKED;
		if (ok && !allow_bad && c != &cfgs[CFG_FLAG] && c != &cfgs[CFG_NOUTF8]) {
			struct result ref = reference(c, buf, n);
			ok = same(&one, &ref);
			refd++;
		}
		if (!ok && !bad++)
			snprintf(first, sizeof first, "iteration %d (%zu bytes): one %d/%s/%llu %s, bytes %d/%s/%llu %s, random %s",
				 it, n, one.v, mu_filter_rule_name(one.rule), (unsigned long long)one.at, one.broke, by.v,
				 mu_filter_rule_name(by.rule), (unsigned long long)by.at, by.broke, rs.broke);
	}
	CHECK(bad == 0, "random streams: %d of %d wrong; first: %s", bad, iters, first);
	CHECK(refd > iters / 3 && blocked > iters / 10 && blocked < iters - iters / 10,
	      "random streams exercise both outcomes: %d compared with the reference, %d blocked", refd, blocked);
}

/* ---- the filter file ---- */

static char tmpdir[256];

static enum mu_err load_text(const char *text, struct mu_filter_config *c, struct mu_error *e)
{
	char path[300];
	snprintf(path, sizeof path, "%s/filter.json", tmpdir);
	FILE *fp = fopen(path, "wb");
	if (!fp)
		return MU_ERR_IO;
	fwrite(text, 1, strlen(text), fp);
	fclose(fp);
	e->msg[0] = '\0';
	return mu_filter_config_load(c, path, e);
}

static void test_config_file(void)
{
	struct mu_filter_config c;
	struct mu_error e;
	snprintf(tmpdir, sizeof tmpdir, "%s/mu_test_filter.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		CHECK(0, "mkdtemp");
		return;
	}
	memset(&c, 0x55, sizeof c);
	enum mu_err rc = load_text("{\"invalid_utf8\":\"flag\",\"control\":\"off\",\"max_size\":\"block\",\"deny\":\"block\","
				   "\"base64_run\":\"flag\",\"hex_run\":\"off\",\"max_response_bytes\":5000,"
				   "\"base64_run_chars\":64,\"hex_run_chars\":32,"
				   "\"deny_patterns\":[\"Secret\",\"caf\\u00e9\",\"BEGIN RSA\"]}\n",
				   &c, &e);
	CHECK(rc == MU_OK, "full file: %s", e.msg);
	CHECK(c.action[MU_RULE_INVALID_UTF8] == MU_FILTER_FLAG && c.action[MU_RULE_CONTROL] == MU_FILTER_OFF &&
		      c.action[MU_RULE_MAX_SIZE] == MU_FILTER_BLOCK && c.action[MU_RULE_DENY] == MU_FILTER_BLOCK &&
		      c.action[MU_RULE_BASE64_RUN] == MU_FILTER_FLAG && c.action[MU_RULE_HEX_RUN] == MU_FILTER_OFF,
	      "actions");
	CHECK(c.max_response_bytes == 5000 && c.base64_run == 64 && c.hex_run == 32, "numbers");
	CHECK(c.n_deny == 3 && !strcmp(c.deny[0], "secret") && !strcmp(c.deny[1], "caf\xc3\xa9") &&
		      c.deny_len[1] == 5 && !strcmp(c.deny[2], "begin rsa"),
	      "patterns folded");
	rc = load_text("{}", &c, &e);
	struct mu_filter_config d;
	mu_filter_config_default(&d);
	CHECK(rc == MU_OK && !memcmp(&c, &d, sizeof c), "empty object gives the defaults");

	static const struct {
		const char *text, *want;
	} bad[] = {
		{"{\"colour\":\"red\"}", "unknown field \"colour\""},
		{"{\"deny\":\"block\",\"deny\":\"flag\"}", "duplicate member \"deny\""},
		{"{\"control\":\"maybe\"}", "\"control\" must be"},
		{"{\"control\":1}", "\"control\" must be"},
		{"{\"base64_run_chars\":0}", "\"base64_run_chars\""},
		{"{\"base64_run_chars\":65537}", "\"base64_run_chars\""},
		{"{\"hex_run_chars\":1.5}", "\"hex_run_chars\""},
		{"{\"hex_run_chars\":\"10\"}", "\"hex_run_chars\""},
		{"{\"max_response_bytes\":0}", "\"max_response_bytes\""},
		{"{\"max_response_bytes\":-5}", "\"max_response_bytes\""},
		{"{\"deny_patterns\":\"secret\"}", "\"deny_patterns\" must be an array"},
		{"{\"deny_patterns\":[\"a\",3]}", "\"deny_patterns\"[1] must be a string"},
		{"{\"deny_patterns\":[\"\"]}", "\"deny_patterns\"[0] must be 1 to 256"},
		{"{\"deny_patterns\":[\"a\\u0000b\"]}", "NUL"},
		{"{\"deny_patterns\":[\"\\ud800\"]}", "surrogate"},
		{"[]", "one JSON object"},
		{"{} x", "offset"},
		{"{\"deny_patterns\":[[\"x\"]]}", "nesting"},
		{"", "offset"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		mu_filter_config_default(&c);
		c.hex_run = 7;
		rc = load_text(bad[i].text, &c, &e);
		CHECK(rc != MU_OK && strstr(e.msg, bad[i].want) && c.hex_run == 7,
		      "bad file %zu: rc %d, message \"%s\" (want \"%s\"), config untouched", i, rc, e.msg, bad[i].want);
	}
	/* pattern length and count limits */
	static char text[40000];
	size_t n = (size_t)snprintf(text, sizeof text, "{\"deny_patterns\":[\"");
	memset(text + n, 'p', 257);
	n += 257;
	snprintf(text + n, sizeof text - n, "\"]}");
	rc = load_text(text, &c, &e);
	CHECK(rc == MU_ERR_RANGE && strstr(e.msg, "[0] must be 1 to 256"), "257-byte pattern: %s", e.msg);
	n = (size_t)snprintf(text, sizeof text, "{\"deny_patterns\":[");
	for (int i = 0; i < 65; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "%s\"p%d\"", i ? "," : "", i);
	snprintf(text + n, sizeof text - n, "]}");
	rc = load_text(text, &c, &e);
	CHECK(rc == MU_ERR_RANGE && strstr(e.msg, "[64]") && strstr(e.msg, "more than 64"), "65 patterns: %s", e.msg);
	char path[300];
	snprintf(path, sizeof path, "%s/missing.json", tmpdir);
	CHECK(mu_filter_config_load(&c, path, &e) == MU_ERR_IO, "missing file");
	snprintf(path, sizeof path, "%s/filter.json", tmpdir);
	unlink(path);
	rmdir(tmpdir);
}

int main(void)
{
	make_configs();
	test_table();
	test_base64_runs();
	test_prose();
	test_deny_longest();
	test_flag_no_hold();
	test_fail_closed();
	test_random();
	test_config_file();
	return test_done();
}
