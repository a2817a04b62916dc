/* audit.c — the hash-chained audit log; see audit.h.
 *
 * Writing: a record is built by jsonw in a->line (seq, ts_ms, prev and event first), closed,
 * given its '\n' and appended with one write() on an O_APPEND descriptor, then fsync'd. Only
 * after both succeed do seq and prev advance. One writer per log: mu_audit_open takes an
 * exclusive flock on the file. A failed write or fsync closes the log for good (the caller
 * fails closed from then on); a partial write is cut off first where possible, and whatever
 * remains is a torn tail that the next open recovers.
 *
 * Reading (mu_audit_verify, and mu_audit_open before it appends): the file is read in blocks
 * and split at '\n'; each line is checked in this order, and the first failure is reported
 * with its 1-based line number:
 *   length  (1 .. MU_AUDIT_MAX_LINE - 1 bytes before the '\n'),
 *   JSON    (one strict object, '{' first and '}' last: no surrounding whitespace),
 *   seq     (an integer equal to the line number),
 *   ts_ms   (an integer >= 0),
 *   prev    (64 lower-case hex digits equal to the SHA-256 of the line before, all zeros on
 *            line 1),
 *   event   (a non-empty string).
 * What a change looks like: an edited byte that leaves line k well-formed (a digit of ts_ms, a
 * letter of a member value) is reported at line k + 1 as "prev does not match line k"; an
 * edit that breaks line k's JSON, seq or prev is reported at line k; a deleted or reordered
 * line shows as a seq that does not match its line number. An edit of the last line changes
 * only the head hash, which is why `mu audit verify` prints it: compare it with a copy kept
 * elsewhere.
 */
#define _GNU_SOURCE
#include "host/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "seal/crypto.h"
#include "wire/json.h"

#define AUDIT_READ_BLOCK (64u << 10)

static const struct json_limits audit_json_limits = {.max_bytes = MU_AUDIT_MAX_LINE,
						     .max_depth = JSONW_MAX_DEPTH,
						     .max_tokens = 1024,
						     .max_string = MU_AUDIT_MAX_LINE,
						     .max_number = 32,
						     .flags = 0};

/* ---- checking one line ---- */

struct line_check {
	void *mem;
	size_t mem_len;
};

static int why(struct mu_audit_report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int why(struct mu_audit_report *rep, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rep->why, sizeof rep->why, fmt, ap);
	va_end(ap);
	return 0;
}

/* Checks line k (s[0..n), without its '\n') against the chain so far; 1 when it holds. */
static int check_line(struct line_check *lc, const uint8_t *s, size_t n, uint64_t k, const uint8_t prev[32],
		      struct mu_audit_report *rep)
{
	struct json_doc d;
	struct mu_error e;
	int64_t v = 0;
	uint32_t t;

	if (n == 0)
		return why(rep, "empty line");
	if (json_parse(&d, s, n, &audit_json_limits, lc->mem, lc->mem_len, &e) != MU_OK)
		return why(rep, "not valid JSON (%s)", e.msg);
	if (json_type(&d, 0) != JSON_OBJECT || s[0] != '{' || s[n - 1] != '}')
		return why(rep, "not a single JSON object");

	t = json_obj_get(&d, 0, "seq");
	if (t == JSON_NONE)
		return why(rep, "no seq");
	if (json_type(&d, t) != JSON_NUMBER || json_get_i64(&d, t, &v, NULL) != MU_OK)
		return why(rep, "seq is not an integer");
	if (v < 0 || (uint64_t)v != k)
		return why(rep, "seq is %" PRId64 ", expected %" PRIu64 " (a line was removed, added or moved)", v, k);

	t = json_obj_get(&d, 0, "ts_ms");
	if (t == JSON_NONE)
		return why(rep, "no ts_ms");
	if (json_type(&d, t) != JSON_NUMBER || json_get_int(&d, t, 0, INT64_MAX, &v, NULL) != MU_OK)
		return why(rep, "ts_ms is not an integer >= 0");

	char want[2 * MU_SHA256_LEN + 1];
	const char *raw = NULL;
	size_t raw_n = 0;
	t = json_obj_get(&d, 0, "prev");
	if (t == JSON_NONE)
		return why(rep, "no prev");
	if (json_type(&d, t) != JSON_STRING || !json_str_raw(&d, t, &raw, &raw_n) || raw_n != 2 * MU_SHA256_LEN)
		return why(rep, "prev is not 64 hex digits");
	for (size_t i = 0; i < raw_n; i++)
		if (!((raw[i] >= '0' && raw[i] <= '9') || (raw[i] >= 'a' && raw[i] <= 'f')))
			return why(rep, "prev is not 64 lower-case hex digits");
	mu_hex(prev, MU_SHA256_LEN, want);
	if (memcmp(raw, want, raw_n) != 0) {
		if (k == 1)
			return why(rep, "prev is not all zeros on the first line (the log's beginning is missing)");
		return why(rep, "prev does not match line %" PRIu64 " (line %" PRIu64 " was changed)", k - 1, k - 1);
	}

	t = json_obj_get(&d, 0, "event");
	if (t == JSON_NONE)
		return why(rep, "no event");
	if (json_type(&d, t) != JSON_STRING || json_str_len(&d, t) == 0)
		return why(rep, "event is not a non-empty string");
	return 1;
}

/* ---- reading a whole log ---- */

/* Verifies the log open at fd from its start. *good_end gets the byte length of the valid
 * lines (where a torn tail begins). */
static enum mu_err audit_scan(int fd, const char *path, struct mu_audit_report *rep, uint64_t *good_end,
			      struct mu_error *err)
{
	struct line_check lc = {0};
	uint8_t prev[MU_SHA256_LEN] = {0};
	uint8_t *buf = NULL;
	size_t start = 0, end = 0;
	uint64_t off = 0;
	int eof = 0;
	enum mu_err rc = MU_OK;

	memset(rep, 0, sizeof *rep);
	*good_end = 0;
	if ((rc = json_mem_size(&audit_json_limits, MU_AUDIT_MAX_LINE, &lc.mem_len, err)) != MU_OK)
		return rc;
	lc.mem = malloc(lc.mem_len);
	buf = malloc(AUDIT_READ_BLOCK);
	if (!lc.mem || !buf) {
		rc = mu_errf(err, MU_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		rc = mu_errf(err, MU_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
		goto out;
	}
	for (;;) {
		uint8_t *nl = memchr(buf + start, '\n', end - start);
		if (!nl) {
			size_t have = end - start;
			if (have >= MU_AUDIT_MAX_LINE) {
				rep->bad_line = rep->lines + 1;
				why(rep, "longer than %u bytes", MU_AUDIT_MAX_LINE);
				break;
			}
			if (eof) {
				rep->torn_tail = (int)have; /* a line without its '\n': the writer died */
				break;
			}
			memmove(buf, buf + start, have);
			start = 0;
			end = have;
			ssize_t r = read(fd, buf + end, AUDIT_READ_BLOCK - end);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				rc = mu_errf(err, MU_ERR_IO, "%s: read failed: %s", path, strerror(errno));
				goto out;
			}
			if (r == 0)
				eof = 1;
			end += (size_t)r;
			continue;
		}
		size_t n = (size_t)(nl - (buf + start));
		uint64_t k = rep->lines + 1;
		if (n + 1 > MU_AUDIT_MAX_LINE) {
			rep->bad_line = k;
			why(rep, "longer than %u bytes", MU_AUDIT_MAX_LINE);
			break;
		}
		if (!check_line(&lc, buf + start, n, k, prev, rep)) {
			rep->bad_line = k;
			break;
		}
		mu_sha256(buf + start, n, prev);
		rep->lines = k;
		off += n + 1;
		start += n + 1;
	}
	memcpy(rep->head, prev, sizeof prev);
	*good_end = off;
out:
	free(lc.mem);
	free(buf);
	return rc;
}

enum mu_err mu_audit_verify(const char *path, struct mu_audit_report *rep, struct mu_error *err)
{
	struct stat st;
	uint64_t good_end = 0;
	memset(rep, 0, sizeof *rep);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return mu_errf(err, MU_ERR_IO, "%s: not a regular file", path);
	}
	enum mu_err rc = audit_scan(fd, path, rep, &good_end, err);
	close(fd);
	return rc;
}

/* ---- writing ---- */

static void sync_dir_of(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1, slash ? path : ".");
	int dfd = open(dir, O_RDONLY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd); /* best effort: makes a new log's name durable */
		close(dfd);
	}
}

enum mu_err mu_audit_open(struct mu_audit *a, const char *path, struct mu_error *err)
{
	struct mu_audit_report rep;
	struct stat st;
	uint64_t good_end = 0;
	enum mu_err rc;

	memset(a, 0, sizeof *a);
	a->fd = -1;
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot open the audit log: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return mu_errf(err, MU_ERR_IO, "%s: the audit log is not a regular file", path);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return mu_errf(err, MU_ERR_STATE, "%s: the audit log is in use by another process", path);
		return mu_errf(err, MU_ERR_IO, "%s: cannot lock the audit log: %s", path, strerror(e));
	}
	if (st.st_size == 0)
		sync_dir_of(path);
	if ((rc = audit_scan(fd, path, &rep, &good_end, err)) != MU_OK) {
		close(fd);
		return rc;
	}
	if (rep.bad_line) {
		close(fd);
		return mu_errf(err, MU_ERR_FORMAT,
			       "%s: line %" PRIu64 ": %s; refusing to continue a broken chain (keep this file as "
			       "evidence, verify it with mu audit verify, and start a new log)",
			       path, rep.bad_line, rep.why);
	}
	a->fd = fd;
	a->seq = rep.lines;
	memcpy(a->prev, rep.head, sizeof a->prev);
	if (rep.torn_tail) {
		/* The last write was cut short: remove the partial line, then say so in the chain. */
		if (ftruncate(fd, (off_t)good_end) != 0 || fsync(fd) != 0) {
			int e = errno;
			mu_audit_close(a);
			return mu_errf(err, MU_ERR_IO, "%s: cannot cut the incomplete last line: %s", path, strerror(e));
		}
		struct jsonw *w = mu_audit_begin(a, "audit_recovered");
		jsonw_int(w, "torn_bytes", rep.torn_tail);
		if ((rc = mu_audit_commit(a, err)) != MU_OK) {
			mu_audit_close(a);
			return rc;
		}
	}
	return MU_OK;
}

void mu_audit_close(struct mu_audit *a)
{
	if (a->fd >= 0)
		close(a->fd); /* also releases the lock */
	a->fd = -1;
	a->open_rec = 0;
}

struct jsonw *mu_audit_begin(struct mu_audit *a, const char *event)
{
	struct timespec ts;
	int64_t ms = 0;
	if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && ts.tv_sec >= 0)
		ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	jsonw_init(&a->w, a->line, sizeof a->line); /* room for the '\n' that replaces the NUL */
	jsonw_begin(&a->w, NULL);
	jsonw_int(&a->w, "seq", (int64_t)(a->seq + 1));
	jsonw_int(&a->w, "ts_ms", ms);
	jsonw_hex(&a->w, "prev", a->prev, sizeof a->prev);
	jsonw_str(&a->w, "event", event);
	a->open_rec = 1;
	return &a->w;
}

/* The log cannot be trusted to continue after a failed write or fsync: close it. */
static enum mu_err audit_fail(struct mu_audit *a, off_t end, const char *what, int e, struct mu_error *err)
{
	if (end >= 0 && ftruncate(a->fd, end) == 0)
		fsync(a->fd);
	mu_audit_close(a);
	return mu_errf(err, MU_ERR_IO, "audit log: %s: %s (the log is now closed; reopen it to continue)", what,
		       strerror(e));
}

enum mu_err mu_audit_commit(struct mu_audit *a, struct mu_error *err)
{
	size_t len = 0;
	if (!a->open_rec)
		return mu_errf(err, MU_ERR_STATE, "audit log: commit without mu_audit_begin");
	a->open_rec = 0;
	if (a->fd < 0)
		return mu_errf(err, MU_ERR_IO, "audit log: not open (closed after an earlier failure)");
	jsonw_end(&a->w);
	enum mu_err rc = jsonw_finish(&a->w, &len);
	if (rc == MU_ERR_NOMEM)
		return mu_errf(err, MU_ERR_NOMEM, "audit log: record longer than %u bytes; nothing written",
			       MU_AUDIT_MAX_LINE);
	if (rc != MU_OK)
		return mu_errf(err, rc, "audit log: malformed record (invalid UTF-8 or an unclosed object); "
					"nothing written");
	if (len + 1 > sizeof a->line)
		return mu_errf(err, MU_ERR_INTERNAL, "audit log: record length %zu", len);
	a->line[len] = '\n';

	off_t end = lseek(a->fd, 0, SEEK_END);
	ssize_t w;
	do
		w = write(a->fd, a->line, len + 1);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return audit_fail(a, end, "write failed", errno, err);
	if ((size_t)w != len + 1)
		return audit_fail(a, end, "short write", EIO, err);
	if (fsync(a->fd) != 0)
		return audit_fail(a, -1, "fsync failed", errno, err);
	a->seq++;
	mu_sha256(a->line, len, a->prev);
	a->line[len] = '\0';
	return MU_OK;
}
