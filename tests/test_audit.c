/* test_audit.c — the hash-chained audit log (host/audit.h).
 *
 * A chain of 100 records verifies, its head is the SHA-256 of the last line, and reopening
 * continues it. Then copies of the log are damaged and verified; where each damage is reported
 * is part of the contract (see audit.c):
 *   - one byte of a value of line k changed, the line still well-formed  -> line k + 1,
 *     "prev does not match line k";
 *   - one byte of line k's JSON, seq or prev changed                     -> line k;
 *   - line k deleted, or lines k and k + 1 swapped                       -> line k (seq);
 *   - line k repeated                                                    -> line k + 1 (seq);
 *   - the last line changed                                              -> verifies, with
 *     another head.
 * A torn tail (the file cut inside its last line) is reported by verify and recovered by open:
 * the partial line is cut and an audit_recovered record with torn_bytes follows. A broken chain
 * refuses to open and is left untouched. A record longer than MU_AUDIT_MAX_LINE is refused with
 * MU_ERR_NOMEM and nothing is written (a record of exactly MU_AUDIT_MAX_LINE bytes fits). One
 * writer per log.
 *
 * `test_audit --write-log FILE N` writes a log of N records (for tests/cli_audit.sh). */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/audit.h"
#include "seal/crypto.h"
#include "test.h"

static char dir[256];

static char *slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)len + 1);
	if (!b || fread(b, 1, (size_t)len, f) != (size_t)len)
		exit(2);
	fclose(f);
	b[len] = '\0';
	*n = (size_t)len;
	return b;
}

static void spit(const char *p, const char *b, size_t n)
{
	FILE *f = fopen(p, "wb");
	if (!f || fwrite(b, 1, n, f) != n)
		exit(2);
	fclose(f);
}

/* Offset of line k (1-based) in b, and its length without '\n'. */
static size_t line_at(const char *b, size_t n, uint64_t k, size_t *len)
{
	size_t off = 0;
	for (uint64_t i = 1; i < k && off < n; i++)
		off = (size_t)((const char *)memchr(b + off, '\n', n - off) - b) + 1;
	const char *nl = memchr(b + off, '\n', n - off);
	*len = nl ? (size_t)(nl - (b + off)) : n - off;
	return off;
}

static enum mu_err write_log(const char *p, int n, struct mu_error *e)
{
	struct mu_audit a;
	enum mu_err rc = mu_audit_open(&a, p, e);
	if (rc != MU_OK)
		return rc;
	for (int i = 0; i < n && rc == MU_OK; i++) {
		struct jsonw *w = mu_audit_begin(&a, i % 3 ? "response" : "request");
		jsonw_int(w, "i", i);
		jsonw_str(w, "client", "c-17");
		jsonw_str(w, "decision", i % 5 ? "pass" : "filtered");
		jsonw_begin(w, "usage");
		jsonw_int(w, "bytes", 1000 + i);
		jsonw_end(w);
		rc = mu_audit_commit(&a, e);
	}
	mu_audit_close(&a);
	return rc;
}

struct verdict {
	uint64_t lines, bad;
	int torn;
	char why[300];
};

static struct verdict verify(const char *p)
{
	struct mu_audit_report rep;
	struct mu_error e = {0};
	struct verdict v = {0};
	if (mu_audit_verify(p, &rep, &e) != MU_OK) {
		v.bad = UINT64_MAX;
		snprintf(v.why, sizeof v.why, "I/O: %s", e.msg);
		return v;
	}
	v.lines = rep.lines;
	v.bad = rep.bad_line;
	v.torn = rep.torn_tail;
	memcpy(v.why, rep.why, sizeof rep.why);
	return v;
}

static char logp[512], copyp[512];

static void test_chain(void)
{
	struct mu_error e = {0};
	struct mu_audit_report rep;
	size_t n = 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now_ms = (int64_t)ts.tv_sec * 1000;

	unlink(logp);
	CHECK(write_log(logp, 100, &e) == MU_OK, "write 100 records: %s", e.msg);
	struct stat st;
	CHECK(stat(logp, &st) == 0 && (st.st_mode & 0777) == 0600, "mode 0600");
	CHECK(mu_audit_verify(logp, &rep, &e) == MU_OK && rep.lines == 100 && rep.bad_line == 0 && rep.torn_tail == 0,
	      "100 records verify: %" PRIu64 " lines, bad %" PRIu64 " (%s)", rep.lines, rep.bad_line, rep.why);
	char *b = slurp(logp, &n);
	size_t len, off = line_at(b, n, 100, &len);
	uint8_t h[32];
	mu_sha256(b + off, len, h);
	CHECK(!memcmp(h, rep.head, 32), "head is the SHA-256 of the last line");
	off = line_at(b, n, 1, &len);
	int after_ts = 0;
	long long ts0 = 0;
	CHECK(sscanf(b, "{\"seq\":1,\"ts_ms\":%lld%n", &ts0, &after_ts) == 1 && after_ts > 0 &&
		      !strncmp(b + after_ts,
			       ",\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
			       "\"event\":\"request\",\"i\":0,\"client\":\"c-17\",\"decision\":\"filtered\","
			       "\"usage\":{\"bytes\":1000}}\n",
			       len + 1 - (size_t)after_ts),
	      "first line layout: %.*s", (int)len, b);
	long long ts_ms = 0;
	CHECK(sscanf(b, "{\"seq\":1,\"ts_ms\":%lld", &ts_ms) == 1 && ts_ms >= now_ms - 60000 && ts_ms <= now_ms + 60000,
	      "ts_ms is wall-clock milliseconds: %lld vs %lld", ts_ms, (long long)now_ms);
	free(b);

	/* reopen continues the chain */
	struct mu_audit a;
	CHECK(mu_audit_open(&a, logp, &e) == MU_OK && a.seq == 100 && !memcmp(a.prev, rep.head, 32), "reopen: %s",
	      e.msg);
	struct mu_audit a2;
	CHECK(mu_audit_open(&a2, logp, &e) == MU_ERR_STATE && strstr(e.msg, "in use"), "one writer: %s", e.msg);
	mu_audit_begin(&a, "proxy_stop");
	CHECK(mu_audit_commit(&a, &e) == MU_OK && a.seq == 101, "append");
	CHECK(mu_audit_commit(&a, &e) == MU_ERR_STATE, "commit without begin");
	mu_audit_close(&a);
	struct verdict v = verify(logp);
	CHECK(v.lines == 101 && v.bad == 0, "101 records verify");

	/* empty log */
	snprintf(copyp, sizeof copyp, "%s/empty.log", dir);
	spit(copyp, "", 0);
	CHECK(mu_audit_verify(copyp, &rep, &e) == MU_OK && rep.lines == 0 && rep.bad_line == 0 && rep.torn_tail == 0,
	      "empty log verifies");
	static const uint8_t zero[32];
	CHECK(!memcmp(rep.head, zero, 32), "empty head is zeros");
	snprintf(copyp, sizeof copyp, "%s/missing.log", dir);
	CHECK(mu_audit_verify(copyp, &rep, &e) == MU_ERR_IO, "missing file is an I/O error");
}

/* Applies damage to a copy of the log and checks where verify reports it. */
static void damaged(const char *name, const char *b, size_t n, size_t at, const char *repl, size_t cut,
		    uint64_t want_bad, const char *want_why)
{
	size_t rl = repl ? strlen(repl) : 0;
	char *c = malloc(n + rl + 1);
	memcpy(c, b, at);
	memcpy(c + at, repl ? repl : "", rl);
	memcpy(c + at + rl, b + at + cut, n - at - cut);
	size_t m = n - cut + rl;
	spit(copyp, c, m);
	free(c);
	struct verdict v = verify(copyp);
	CHECK(v.bad == want_bad && strstr(v.why, want_why) && v.lines == want_bad - 1,
	      "%s: reported at line %" PRIu64 " (%s), want line %" PRIu64 " (%s)", name, v.bad, v.why, want_bad,
	      want_why);
	struct mu_audit a;
	struct mu_error e = {0};
	struct stat before, after;
	stat(copyp, &before);
	char lk[64];
	snprintf(lk, sizeof lk, "line %" PRIu64 ":", want_bad);
	CHECK(mu_audit_open(&a, copyp, &e) == MU_ERR_FORMAT && strstr(e.msg, lk) && strstr(e.msg, "broken"),
	      "%s: open refuses: %s", name, e.msg);
	stat(copyp, &after);
	CHECK(after.st_size == before.st_size, "%s: refused log left untouched", name);
}

static void test_damage(void)
{
	size_t n = 0, len;
	unlink(logp);
	struct mu_error e = {0};
	CHECK(write_log(logp, 100, &e) == MU_OK, "write: %s", e.msg);
	char *b = slurp(logp, &n);
	snprintf(copyp, sizeof copyp, "%s/copy.log", dir);

	/* a digit of ts_ms on line 37: line 37 still parses; line 38's prev no longer matches */
	size_t off = line_at(b, n, 37, &len);
	size_t d = off + (size_t)(strstr(b + off, "\"ts_ms\":") - (b + off)) + 9;
	char rep[2] = {b[d] == '1' ? '2' : '1', 0};
	damaged("ts_ms digit of line 37", b, n, d, rep, 1, 38, "prev does not match line 37");
	/* a letter of a string value */
	d = off + (size_t)(strstr(b + off, "\"c-17\"") - (b + off)) + 1;
	damaged("client letter of line 37", b, n, d, "C", 1, 38, "prev does not match line 37");
	/* the JSON of line 37 */
	damaged("brace of line 37", b, n, off, "[", 1, 37, "not valid JSON");
	damaged("quote of line 37", b, n, off + 1, "'", 1, 37, "not valid JSON");
	/* seq of line 37 */
	d = off + (size_t)(strstr(b + off, "\"seq\":37") - (b + off)) + 7;
	damaged("seq of line 37", b, n, d, "4", 1, 37, "seq is 34, expected 37");
	/* prev of line 37 */
	d = off + (size_t)(strstr(b + off, "\"prev\":\"") - (b + off)) + 8;
	rep[0] = b[d] == 'a' ? 'b' : 'a';
	damaged("prev of line 37", b, n, d, rep, 1, 37, "prev does not match line 36");
	damaged("prev upper case", b, n, d, "A", 1, 37, "lower-case hex");
	/* line 1 */
	off = line_at(b, n, 1, &len);
	damaged("first line deleted", b, n, off, NULL, len + 1, 1, "seq is 2, expected 1");
	d = (size_t)(strstr(b, "\"prev\":\"") - b) + 8;
	damaged("first line prev", b, n, d, "1", 1, 1, "not all zeros");
	/* deleting line 50 */
	off = line_at(b, n, 50, &len);
	damaged("line 50 deleted", b, n, off, NULL, len + 1, 50, "seq is 51, expected 50");
	/* swapping lines 50 and 51 */
	{
		size_t l2, o2 = line_at(b, n, 51, &l2);
		char *sw = malloc(len + l2 + 3);
		memcpy(sw, b + o2, l2);
		sw[l2] = '\n';
		memcpy(sw + l2 + 1, b + off, len);
		sw[l2 + 1 + len] = '\n';
		sw[l2 + len + 2] = '\0';
		damaged("lines 50 and 51 swapped", b, n, off, sw, len + l2 + 2, 50, "seq is 51, expected 50");
		free(sw);
	}
	/* a line duplicated */
	{
		char *dup = malloc(len + 2);
		memcpy(dup, b + off, len);
		dup[len] = '\n';
		dup[len + 1] = '\0';
		damaged("line 50 repeated", b, n, off, dup, 0, 51, "seq is 50, expected 51");
		free(dup);
	}
	/* formatting that the strict reader refuses */
	damaged("empty line", b, n, off, "\n", 0, 50, "empty line");
	damaged("CR before LF", b, n, off + len, "\r", 0, 50, "not a single JSON object");
	damaged("space before the object", b, n, off, " ", 0, 50, "not a single JSON object");
	damaged("NUL byte", b, n, off + 3, "\x01", 0, 50, "not valid JSON");
	damaged("duplicate member", b, n, off + 1, "\"seq\":50,", 0, 50, "duplicate key");
	{
		static char longl[MU_AUDIT_MAX_LINE + 8];
		memset(longl, 'x', MU_AUDIT_MAX_LINE + 2);
		longl[MU_AUDIT_MAX_LINE + 2] = '\n';
		damaged("long line", b, n, off, longl, 0, 50, "longer than 4096 bytes");
	}
	/* the last line: only the head changes */
	{
		struct mu_audit_report r0, r1;
		mu_audit_verify(logp, &r0, &e);
		off = line_at(b, n, 100, &len);
		d = off + (size_t)(strstr(b + off, "\"c-17\"") - (b + off)) + 1;
		b[d] = 'C';
		spit(copyp, b, n);
		b[d] = 'c';
		CHECK(mu_audit_verify(copyp, &r1, &e) == MU_OK && r1.bad_line == 0 && r1.lines == 100 &&
			      memcmp(r0.head, r1.head, 32) != 0,
		      "an edit of the last line changes the head only");
	}
	free(b);
}

static void test_torn_tail(void)
{
	size_t n = 0, len;
	struct mu_error e = {0};
	unlink(logp);
	CHECK(write_log(logp, 10, &e) == MU_OK, "write: %s", e.msg);
	char *b = slurp(logp, &n);
	size_t off = line_at(b, n, 10, &len);
	size_t keep = off + 20; /* the writer died 20 bytes into line 10 */
	spit(logp, b, keep);
	struct verdict v = verify(logp);
	CHECK(v.bad == 0 && v.lines == 9 && v.torn == 20, "torn tail reported: %" PRIu64 " lines, torn %d", v.lines,
	      v.torn);
	/* a complete line that lost only its '\n' is torn too */
	snprintf(copyp, sizeof copyp, "%s/copy.log", dir);
	spit(copyp, b, n - 1);
	v = verify(copyp);
	CHECK(v.bad == 0 && v.lines == 9 && v.torn == (int)len, "missing newline is torn: %d", v.torn);

	struct mu_audit a;
	CHECK(mu_audit_open(&a, logp, &e) == MU_OK && a.seq == 10, "open recovers: %s (seq %" PRIu64 ")", e.msg, a.seq);
	mu_audit_begin(&a, "after_recovery");
	CHECK(mu_audit_commit(&a, &e) == MU_OK, "append after recovery");
	mu_audit_close(&a);
	v = verify(logp);
	CHECK(v.bad == 0 && v.torn == 0 && v.lines == 11, "recovered log verifies: %" PRIu64 " %s", v.lines, v.why);
	size_t m = 0;
	char *r = slurp(logp, &m);
	CHECK(m > keep && !memcmp(r, b, off), "the intact lines are unchanged");
	size_t l10, o10 = line_at(r, m, 10, &l10);
	CHECK(strstr(r + o10, "\"seq\":10,") == r + o10 + 1 &&
		      strstr(r + o10, "\"event\":\"audit_recovered\",\"torn_bytes\":20}\n") == r + o10 + l10 -
												    strlen("\"event\":\"audit_recovered\",\"torn_bytes\":20}"),
	      "line 10 records the recovery: %.*s", (int)l10, r + o10);
	free(r);
	free(b);
}

static void test_limits(void)
{
	struct mu_error e = {0};
	struct mu_audit a;
	unlink(logp);
	CHECK(mu_audit_open(&a, logp, &e) == MU_OK, "open new: %s", e.msg);
	static char big[8192];
	memset(big, 'z', sizeof big);
	struct jsonw *w = mu_audit_begin(&a, "too_long");
	jsonw_strn(w, "pad", big, 5000);
	CHECK(mu_audit_commit(&a, &e) == MU_ERR_NOMEM && strstr(e.msg, "longer than 4096"), "too long: %s", e.msg);
	struct stat st;
	CHECK(stat(logp, &st) == 0 && st.st_size == 0 && a.seq == 0, "nothing written");
	w = mu_audit_begin(&a, "bad_utf8");
	jsonw_str(w, "x", "\xff");
	CHECK(mu_audit_commit(&a, &e) == MU_ERR_ARG && stat(logp, &st) == 0 && st.st_size == 0, "invalid UTF-8");

	/* exactly MU_AUDIT_MAX_LINE bytes with the '\n' fits; one more does not */
	w = mu_audit_begin(&a, "fits");
	size_t base = w->len + strlen(",\"pad\":\"\"}") + 1;
	jsonw_strn(w, "pad", big, MU_AUDIT_MAX_LINE - base);
	CHECK(mu_audit_commit(&a, &e) == MU_OK && a.seq == 1, "a record of exactly 4096 bytes: %s", e.msg);
	CHECK(stat(logp, &st) == 0 && st.st_size == MU_AUDIT_MAX_LINE, "size %lld", (long long)st.st_size);
	w = mu_audit_begin(&a, "fits");
	jsonw_strn(w, "pad", big, MU_AUDIT_MAX_LINE - base + 1);
	CHECK(mu_audit_commit(&a, &e) == MU_ERR_NOMEM && a.seq == 1, "4097 bytes refused");
	mu_audit_begin(&a, "next");
	CHECK(mu_audit_commit(&a, &e) == MU_OK && a.seq == 2, "the log goes on");
	mu_audit_close(&a);
	w = mu_audit_begin(&a, "closed");
	CHECK(mu_audit_commit(&a, &e) == MU_ERR_IO, "commit on a closed log fails");
	struct verdict v = verify(logp);
	CHECK(v.bad == 0 && v.lines == 2, "verifies with a 4096-byte line: %s", v.why);
	CHECK(mu_audit_open(&a, dir, &e) != MU_OK, "a directory is not a log");
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--write-log")) {
		struct mu_error e = {0};
		if (write_log(argv[2], atoi(argv[3]), &e) != MU_OK) {
			fprintf(stderr, "test_audit: %s\n", e.msg);
			return 1;
		}
		return 0;
	}
	snprintf(dir, sizeof dir, "%s/mu_test_audit.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(logp, sizeof logp, "%s/audit.log", dir);
	test_chain();
	test_damage();
	test_torn_tail();
	test_limits();
	unlink(logp);
	unlink(copyp);
	snprintf(copyp, sizeof copyp, "%s/empty.log", dir);
	unlink(copyp);
	rmdir(dir);
	return test_done();
}
