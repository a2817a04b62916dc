/* ledger.c — the persisted egress budget; see ledger.h.
 *
 * A charge that the in-memory reservation covers costs nothing. Any other charge takes an
 * exclusive lock on "<path>.lock", re-reads the file (another proxy sharing the ledger may have
 * charged since), computes the new counts, writes them to "<path>.tmp", fsyncs it, renames it
 * over the ledger and fsyncs the directory, and only then grants the bytes. Every one of these
 * steps must succeed, the directory's fsync included: a rename that is not yet durable could
 * be undone by a crash after the bytes left, so a directory that cannot be opened or synced
 * fails the charge (MU_ERR_IO) like a failed write. (outfile_commit, which other commands
 * use, treats the directory fsync as best effort; the ledger does not use it.)
 * The counts in memory and on disk are merged by taking the larger of each (they only grow
 * within a day), so a second proxy on the same file cannot make either forget a charge.
 *
 * Counts are kept at or below INT64_MAX: the strict JSON reader returns int64 values, and a
 * file this code wrote must always be one it can read back.
 */
#define _GNU_SOURCE
#include "host/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/ckd.h"
#include "host/cli.h"
#include "wire/json.h"

#define LEDGER_MAX_FILE 1024u          /* bytes of a ledger file; a valid one is under 100 */
#define LEDGER_MAX_COUNT ((uint64_t)INT64_MAX)
#define LEDGER_SUFFIX_MAX 8u           /* room for ".lock" / ".tmp" after the path */

struct ledger_state {
	uint64_t day, day_bytes, total_bytes;
};

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t sat_sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

static void path_with(char *out, size_t cap, const char *path, const char *suffix)
{
	size_t n = strlen(path), m = strlen(suffix);
	/* mu_ledger_open checked that every suffix fits */
	if (n + m + 1 > cap) {
		out[0] = '\0';
		return;
	}
	memcpy(out, path, n);
	memcpy(out + n, suffix, m + 1);
}

/* ---- reading ---- */

static enum mu_err get_count(const struct json_doc *d, const char *path, const char *key, uint64_t *out,
			     struct mu_error *err)
{
	uint32_t t = json_obj_get(d, 0, key);
	int64_t v = 0;
	if (t == JSON_NONE)
		return mu_errf(err, MU_ERR_FORMAT, "%s: missing member \"%s\"", path, key);
	if (json_type(d, t) != JSON_NUMBER)
		return mu_errf(err, MU_ERR_FORMAT, "%s: \"%s\" must be a number", path, key);
	if (json_get_int(d, t, 0, INT64_MAX, &v, NULL) != MU_OK)
		return mu_errf(err, MU_ERR_FORMAT, "%s: \"%s\" must be an integer from 0 to %" PRId64, path, key,
			       INT64_MAX);
	*out = (uint64_t)v;
	return MU_OK;
}

/* Parses the one-line JSON ledger strictly: exactly the four members, integers >= 0,
 * version 1, day_bytes <= total_bytes. */
static enum mu_err ledger_parse(const char *path, const uint8_t *buf, size_t n, struct ledger_state *st,
				struct mu_error *err)
{
	static const char *const keys[] = {"version", "day", "day_bytes", "total_bytes"};
	const struct json_limits lim = {
		.max_bytes = LEDGER_MAX_FILE, .max_depth = 1, .max_tokens = 16, .max_string = 32, .max_number = 32};
	uint8_t mem[2048];
	size_t need = 0;
	struct json_doc d;
	uint64_t version = 0;
	enum mu_err rc;

	if ((rc = json_mem_size(&lim, n, &need, err)) != MU_OK)
		return mu_err_prefix(err, "%s", path);
	if (need > sizeof mem)
		return mu_errf(err, MU_ERR_INTERNAL, "%s: ledger parser needs %zu bytes of memory", path, need);
	if ((rc = json_parse(&d, buf, n, &lim, mem, sizeof mem, err)) != MU_OK)
		return mu_err_prefix(err, "%s: not a valid ledger", path);
	if (json_type(&d, 0) != JSON_OBJECT)
		return mu_errf(err, MU_ERR_FORMAT, "%s: a ledger is one JSON object", path);
	if ((rc = json_obj_only(&d, 0, keys, sizeof keys / sizeof keys[0], err)) != MU_OK)
		return mu_err_prefix(err, "%s", path);
	if ((rc = get_count(&d, path, "version", &version, err)) != MU_OK ||
	    (rc = get_count(&d, path, "day", &st->day, err)) != MU_OK ||
	    (rc = get_count(&d, path, "day_bytes", &st->day_bytes, err)) != MU_OK ||
	    (rc = get_count(&d, path, "total_bytes", &st->total_bytes, err)) != MU_OK)
		return rc;
	if (version != 1)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "%s: ledger version %" PRIu64 " (this build reads version 1)",
			       path, version);
	if (st->day_bytes > st->total_bytes)
		return mu_errf(err, MU_ERR_FORMAT, "%s: day_bytes %" PRIu64 " exceeds total_bytes %" PRIu64, path,
			       st->day_bytes, st->total_bytes);
	return MU_OK;
}

/* Reads path into st. A missing file is an empty ledger (*exists = 0), provided its directory
 * exists (otherwise no charge could ever be written: better to say so at open). */
static enum mu_err ledger_read(const char *path, struct ledger_state *st, int *exists, struct mu_error *err)
{
	uint8_t buf[LEDGER_MAX_FILE + 1];
	size_t n = 0;
	struct stat sb;

	memset(st, 0, sizeof *st);
	*exists = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e != ENOENT)
			return mu_errf(err, MU_ERR_IO, "%s: cannot open the ledger: %s", path, strerror(e));
		char dir[4096];
		const char *slash = strrchr(path, '/');
		snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1, slash ? path : ".");
		if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
			return mu_errf(err, MU_ERR_IO, "%s: the ledger's directory %s does not exist", path, dir);
		return MU_OK;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return mu_errf(err, MU_ERR_IO, "%s: the ledger is not a regular file", path);
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof buf - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return mu_errf(err, MU_ERR_IO, "%s: cannot read the ledger: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == sizeof buf)
			break;
	}
	close(fd);
	if (n > LEDGER_MAX_FILE)
		return mu_errf(err, MU_ERR_FORMAT, "%s: the ledger is larger than %u bytes (not a ledger file?)", path,
			       LEDGER_MAX_FILE);
	*exists = 1;
	return ledger_parse(path, buf, n, st, err);
}

/* ---- writing ---- */

/* Renames tmp over path and makes the rename durable (the directory's fsync); MU_ERR_IO when
 * any step fails. After a failed directory open or fsync the file may hold the new counts:
 * that charges more than was granted, never less. */
static enum mu_err ledger_commit(const char *tmp, const char *path, struct mu_error *err)
{
	char dir[sizeof ((struct mu_ledger *)0)->path];
	const char *slash = strrchr(path, '/');
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1, slash ? path : ".");
	if (rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return mu_errf(err, MU_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(e));
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot open the ledger's directory %s to make the charge durable: %s",
			       path, dir, strerror(errno));
	int rc = fsync(dfd);
	int e = errno;
	close(dfd);
	if (rc != 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot fsync the ledger's directory %s: %s", path, dir, strerror(e));
	return MU_OK;
}

static enum mu_err ledger_write(const char *path, const struct ledger_state *st, struct mu_error *err)
{
	char tmp[sizeof ((struct mu_ledger *)0)->path + LEDGER_SUFFIX_MAX];
	char line[160];
	int n = snprintf(line, sizeof line, "{\"version\":1,\"day\":%" PRIu64 ",\"day_bytes\":%" PRIu64
			 ",\"total_bytes\":%" PRIu64 "}\n", st->day, st->day_bytes, st->total_bytes);
	if (n < 0 || (size_t)n >= sizeof line)
		return mu_errf(err, MU_ERR_INTERNAL, "%s: ledger line does not fit", path);

	path_with(tmp, sizeof tmp, path, ".tmp");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
	size_t off = 0;
	while (off < (size_t)n) {
		ssize_t w = write(fd, line + off, (size_t)n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			close(fd);
			unlink(tmp);
			return mu_errf(err, MU_ERR_IO, "%s: cannot write %s: %s", path, tmp, strerror(e));
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return mu_errf(err, MU_ERR_IO, "%s: cannot fsync %s: %s", path, tmp, strerror(e));
	}
	if (close(fd) != 0) {
		int e = errno;
		unlink(tmp);
		return mu_errf(err, MU_ERR_IO, "%s: cannot close %s: %s", path, tmp, strerror(e));
	}
	return ledger_commit(tmp, path, err);
}

/* ---- the API ---- */

enum mu_err mu_ledger_open(struct mu_ledger *l, const char *path, const struct mu_ledger_limits *lim,
			   struct mu_error *err)
{
	struct ledger_state st;
	int exists = 0;

	memset(l, 0, sizeof *l);
	if (!path || !*path)
		return mu_errf(err, MU_ERR_ARG, "ledger: no file name given");
	if (strlen(path) >= sizeof l->path - LEDGER_SUFFIX_MAX)
		return mu_errf(err, MU_ERR_ARG, "ledger: file name longer than %zu bytes",
			       sizeof l->path - LEDGER_SUFFIX_MAX - 1);
	if (!lim || lim->reserve_bytes < 1)
		return mu_errf(err, MU_ERR_ARG, "%s: the ledger's reserve_bytes must be at least 1", path);
	enum mu_err rc = ledger_read(path, &st, &exists, err);
	if (rc != MU_OK) {
		if (rc != MU_ERR_IO)
			mu_err_prefix(err, "refusing to open the egress ledger (it is never reset silently; "
					   "repair or remove it deliberately)");
		return rc;
	}
	memcpy(l->path, path, strlen(path) + 1);
	l->lim = *lim;
	l->day = st.day;
	l->day_bytes = st.day_bytes;
	l->total_bytes = st.total_bytes;
	return MU_OK;
}

uint64_t mu_ledger_remaining(const struct mu_ledger *l, uint64_t day)
{
	int same_day = day <= l->day; /* a clock that went back still counts against the stored day */
	uint64_t day_used = same_day ? l->day_bytes : 0;
	uint64_t reserved = same_day ? l->reserved : 0;
	uint64_t left = UINT64_MAX;
	if (l->lim.daily_bytes)
		left = min_u64(left, sat_sub(l->lim.daily_bytes, day_used));
	if (l->lim.total_bytes)
		left = min_u64(left, sat_sub(l->lim.total_bytes, l->total_bytes));
	if (left == UINT64_MAX)
		return UINT64_MAX;
	left = min_u64(left, sat_sub(LEDGER_MAX_COUNT, l->total_bytes));
	return sat_sub(UINT64_MAX, reserved) < left ? UINT64_MAX : left + reserved;
}

/* Takes the lock that serialises charges of every process sharing this ledger. */
static int ledger_lock(const struct mu_ledger *l, struct mu_error *err)
{
	char lp[sizeof l->path + LEDGER_SUFFIX_MAX];
	path_with(lp, sizeof lp, l->path, ".lock");
	int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		mu_errf(err, MU_ERR_IO, "%s: cannot open the lock file %s: %s", l->path, lp, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) != 0) {
		if (errno == EINTR)
			continue;
		mu_errf(err, MU_ERR_IO, "%s: cannot lock %s: %s", l->path, lp, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

enum mu_err mu_ledger_charge(struct mu_ledger *l, uint64_t n, uint64_t day, struct mu_error *err)
{
	if (n == 0)
		return MU_OK;
	/* The fast path: today's reservation covers n. */
	if (day <= l->day && l->reserved >= n) {
		l->reserved -= n;
		l->released_day += n;
		l->released_total += n;
		return MU_OK;
	}

	int lfd = ledger_lock(l, err);
	if (lfd < 0)
		return MU_ERR_IO;
	struct ledger_state disk;
	int exists = 0;
	enum mu_err rc = ledger_read(l->path, &disk, &exists, err);
	if (rc != MU_OK)
		goto out;
	/* Merge: counts only grow, so the larger value of each is the one that counts. */
	if (exists) {
		if (disk.day > l->day) {
			l->day = disk.day;
			l->day_bytes = disk.day_bytes;
			l->reserved = 0; /* charged to an earlier day: no longer usable */
			l->released_day = 0;
		} else if (disk.day == l->day) {
			l->day_bytes = max_u64(l->day_bytes, disk.day_bytes);
		}
		l->total_bytes = max_u64(l->total_bytes, disk.total_bytes);
	}

	int rollover = day > l->day;
	uint64_t eff_day = rollover ? day : l->day;
	uint64_t day_used = rollover ? 0 : l->day_bytes;
	uint64_t reserved = rollover ? 0 : l->reserved; /* yesterday's reservation stays counted there */
	if (reserved >= n) { /* another process's charge moved the day; still covered */
		l->reserved -= n;
		l->released_day += n;
		l->released_total += n;
		goto out;
	}
	uint64_t need = n - reserved;
	uint64_t daily_left = l->lim.daily_bytes ? sat_sub(l->lim.daily_bytes, day_used) : UINT64_MAX;
	uint64_t total_left = l->lim.total_bytes ? sat_sub(l->lim.total_bytes, l->total_bytes) : UINT64_MAX;
	uint64_t count_left = sat_sub(LEDGER_MAX_COUNT, l->total_bytes);
	uint64_t left = min_u64(min_u64(daily_left, total_left), count_left);
	if (need > left) {
		if (need > daily_left)
			rc = mu_errf(err, MU_ERR_RANGE,
				     "daily egress budget exhausted: %" PRIu64 " of %" PRIu64 " bytes used today, %" PRIu64
				     " left, %" PRIu64 " asked",
				     day_used - reserved, l->lim.daily_bytes, daily_left + reserved, n);
		else if (need > total_left)
			rc = mu_errf(err, MU_ERR_RANGE,
				     "total egress budget exhausted: %" PRIu64 " of %" PRIu64 " bytes used, %" PRIu64
				     " left, %" PRIu64 " asked",
				     l->total_bytes - reserved, l->lim.total_bytes, total_left + reserved, n);
		else
			rc = mu_errf(err, MU_ERR_RANGE, "egress ledger counter at its maximum (%" PRIu64 " bytes)",
				     l->total_bytes);
		goto out;
	}
	uint64_t c = min_u64(max_u64(need, l->lim.reserve_bytes), left);
	struct ledger_state next = {.day = eff_day};
	if (ckd_add(&next.day_bytes, day_used, c) || ckd_add(&next.total_bytes, l->total_bytes, c) ||
	    next.total_bytes > LEDGER_MAX_COUNT) {
		rc = mu_errf(err, MU_ERR_INTERNAL, "%s: ledger count overflow", l->path);
		goto out;
	}
	if ((rc = ledger_write(l->path, &next, err)) != MU_OK)
		goto out;
	/* Durable: now the bytes may be granted. */
	if (rollover)
		l->released_day = 0;
	l->day = next.day;
	l->day_bytes = next.day_bytes;
	l->total_bytes = next.total_bytes;
	l->reserved = reserved + c - n; /* c >= need = n - reserved */
	l->released_day += n;
	l->released_total += n;
out:
	close(lfd); /* releases the lock */
	return rc;
}
