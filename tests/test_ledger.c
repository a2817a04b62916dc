/* test_ledger.c — the persisted egress budget (host/ledger.h).
 *
 * A missing file is an empty ledger and the first charge creates it; charges reserve ahead in
 * reserve_bytes steps and the file always counts at least what was released; reopening shows
 * the persisted counts; the reservation is capped at the budget's edge so the last bytes can
 * still be used, and a charge past it is refused whole with a message that says which budget;
 * a later day starts day_bytes from 0 (and drops the old day's reservation) while the total
 * carries on; a clock that goes back counts against the stored day; two handles on one file
 * (two proxies) add up; malformed files refuse to open; a charge that cannot be written grants
 * nothing, nor one whose rename cannot be made durable (the ledger's directory cannot be opened
 * for its fsync: a seccomp filter in a child refuses every open of a directory). Last, a child process charges in a loop, reporting each released count through a
 * pipe, and is killed with SIGKILL at a random moment: the reopened ledger must count at least
 * the last count the child reported, and must parse. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/ledger.h"
#include "test.h"

static char dir[256];
static char path[512];

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "wb");
	if (!f) {
		perror(p);
		exit(2);
	}
	fwrite(text, 1, strlen(text), f);
	fclose(f);
}

static size_t read_file(const char *p, char *buf, size_t cap)
{
	FILE *f = fopen(p, "rb");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

static const uint64_t D = 20000; /* a UTC day number (2024-10-04) */

static void test_basic(void)
{
	struct mu_ledger l;
	struct mu_error e = {0};
	struct mu_ledger_limits lim = {.daily_bytes = 0, .total_bytes = 0, .reserve_bytes = 100};
	char buf[256];

	unlink(path);
	CHECK(mu_ledger_open(&l, path, &lim, &e) == MU_OK, "open missing file: %s", e.msg);
	CHECK(l.day_bytes == 0 && l.total_bytes == 0 && l.reserved == 0, "empty ledger");
	CHECK(access(path, F_OK) != 0, "open creates nothing");
	CHECK(mu_ledger_remaining(&l, D) == UINT64_MAX, "unlimited");
	CHECK(mu_ledger_charge(&l, 0, D, &e) == MU_OK && access(path, F_OK) != 0, "a zero charge writes nothing");
	CHECK(mu_ledger_charge(&l, 10, D, &e) == MU_OK, "charge: %s", e.msg);
	CHECK(l.day == D && l.day_bytes == 100 && l.total_bytes == 100 && l.reserved == 90, "reserved ahead: %" PRIu64
	      "/%" PRIu64 "/%" PRIu64, l.day_bytes, l.total_bytes, l.reserved);
	CHECK(l.released_day == 10 && l.released_total == 10, "released counts");
	read_file(path, buf, sizeof buf);
	CHECK(!strcmp(buf, "{\"version\":1,\"day\":20000,\"day_bytes\":100,\"total_bytes\":100}\n"), "file: %s", buf);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode 0600");
	/* covered by the reservation: no write */
	CHECK(chmod(path, 0400) == 0, "chmod");
	CHECK(mu_ledger_charge(&l, 90, D, &e) == MU_OK && l.reserved == 0 && l.day_bytes == 100, "reservation used");
	chmod(path, 0600);
	CHECK(mu_ledger_charge(&l, 250, D, &e) == MU_OK && l.day_bytes == 350 && l.reserved == 0,
	      "a charge above reserve_bytes charges exactly what it needs");
	CHECK(mu_ledger_charge(&l, 1, D, &e) == MU_OK && l.day_bytes == 450 && l.reserved == 99, "reserve again");
	uint64_t released = l.released_total;

	struct mu_ledger r;
	CHECK(mu_ledger_open(&r, path, &lim, &e) == MU_OK, "reopen: %s", e.msg);
	CHECK(r.day == D && r.day_bytes == 450 && r.total_bytes == 450 && r.reserved == 0, "persisted");
	CHECK(r.total_bytes >= released, "file counts at least what was released (%" PRIu64 " >= %" PRIu64 ")",
	      r.total_bytes, released);
	CHECK(r.released_total == 0, "released counts start at open");

	/* the tmp file is gone, the lock file stays */
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	CHECK(access(tmp, F_OK) != 0, "no temporary file left");
}

static void test_budget_edge(void)
{
	struct mu_ledger l;
	struct mu_error e = {0};
	struct mu_ledger_limits lim = {.daily_bytes = 250, .total_bytes = 0, .reserve_bytes = 100};
	char before[256], after[256];

	unlink(path);
	CHECK(mu_ledger_open(&l, path, &lim, &e) == MU_OK, "open: %s", e.msg);
	CHECK(mu_ledger_remaining(&l, D) == 250, "remaining 250");
	CHECK(mu_ledger_charge(&l, 10, D, &e) == MU_OK && l.day_bytes == 100, "first reservation");
	CHECK(mu_ledger_remaining(&l, D) == 240, "remaining %" PRIu64, mu_ledger_remaining(&l, D));
	CHECK(mu_ledger_charge(&l, 95, D, &e) == MU_OK && l.day_bytes == 200 && l.reserved == 95, "second");
	CHECK(mu_ledger_charge(&l, 100, D, &e) == MU_OK && l.day_bytes == 250 && l.reserved == 45,
	      "reservation capped at the budget: %" PRIu64 " reserved %" PRIu64, l.day_bytes, l.reserved);
	CHECK(mu_ledger_remaining(&l, D) == 45, "remaining 45");
	read_file(path, before, sizeof before);
	e.msg[0] = '\0';
	CHECK(mu_ledger_charge(&l, 46, D, &e) == MU_ERR_RANGE, "one byte too many");
	CHECK(strstr(e.msg, "daily egress budget exhausted: 205 of 250 bytes used today, 45 left, 46 asked") != NULL,
	      "message: %s", e.msg);
	CHECK(l.reserved == 45 && l.day_bytes == 250 && l.released_day == 205, "a refused charge charges nothing");
	read_file(path, after, sizeof after);
	CHECK(!strcmp(before, after), "file unchanged by a refused charge");
	CHECK(mu_ledger_charge(&l, 45, D, &e) == MU_OK && l.released_day == 250, "the last bytes can be used");
	CHECK(mu_ledger_remaining(&l, D) == 0, "nothing left");
	CHECK(mu_ledger_charge(&l, 1, D, &e) == MU_ERR_RANGE &&
		      strstr(e.msg, "daily egress budget exhausted: 250 of 250 bytes used today, 0 left, 1 asked"),
	      "exhausted: %s", e.msg);

	/* the next day starts over; the total carries on */
	CHECK(mu_ledger_remaining(&l, D + 1) == 250, "tomorrow: 250");
	CHECK(mu_ledger_charge(&l, 1, D + 1, &e) == MU_OK, "next day: %s", e.msg);
	CHECK(l.day == D + 1 && l.day_bytes == 100 && l.total_bytes == 350 && l.reserved == 99 && l.released_day == 1,
	      "rollover: day %" PRIu64 " day_bytes %" PRIu64 " total %" PRIu64, l.day, l.day_bytes, l.total_bytes);
	/* a clock that goes back counts against the stored day */
	CHECK(mu_ledger_charge(&l, 5, D, &e) == MU_OK && l.day == D + 1 && l.reserved == 94, "clock went back");
	CHECK(mu_ledger_remaining(&l, D) == 244, "remaining with an old day %" PRIu64, mu_ledger_remaining(&l, D));

	/* a reservation does not survive the day it was charged on */
	CHECK(mu_ledger_charge(&l, 3, D + 2, &e) == MU_OK && l.day == D + 2 && l.day_bytes == 100 &&
		      l.total_bytes == 450 && l.reserved == 97,
	      "day %" PRIu64 ": reservation of the day before dropped", l.day);
}

static void test_total_limit(void)
{
	struct mu_ledger l;
	struct mu_error e = {0};
	struct mu_ledger_limits lim = {.daily_bytes = 1000, .total_bytes = 1500, .reserve_bytes = 400};
	unlink(path);
	CHECK(mu_ledger_open(&l, path, &lim, &e) == MU_OK, "open: %s", e.msg);
	CHECK(mu_ledger_charge(&l, 1000, D, &e) == MU_OK, "day 1: %s", e.msg);
	CHECK(mu_ledger_charge(&l, 1, D, &e) == MU_ERR_RANGE && strstr(e.msg, "daily"), "day 1 full: %s", e.msg);
	CHECK(mu_ledger_remaining(&l, D + 1) == 500, "day 2: the total allows 500");
	CHECK(mu_ledger_charge(&l, 300, D + 1, &e) == MU_OK && l.day_bytes == 400, "day 2 first");
	CHECK(mu_ledger_charge(&l, 150, D + 1, &e) == MU_OK && l.total_bytes == 1500 && l.reserved == 50,
	      "capped by the total: %" PRIu64, l.total_bytes);
	CHECK(mu_ledger_charge(&l, 51, D + 1, &e) == MU_ERR_RANGE &&
		      strstr(e.msg, "total egress budget exhausted: 1450 of 1500 bytes used, 50 left, 51 asked"),
	      "total: %s", e.msg);
	CHECK(mu_ledger_charge(&l, 1, D + 5, &e) == MU_ERR_RANGE && strstr(e.msg, "total egress budget exhausted"),
	      "a new day does not reset the total: %s", e.msg);

	/* limits lowered below what is already used */
	struct mu_ledger_limits low = {.daily_bytes = 100, .total_bytes = 0, .reserve_bytes = 1};
	CHECK(mu_ledger_open(&l, path, &low, &e) == MU_OK && mu_ledger_remaining(&l, D + 1) == 0 &&
		      mu_ledger_charge(&l, 1, D + 1, &e) == MU_ERR_RANGE,
	      "over a lowered limit");
	CHECK(mu_ledger_remaining(&l, D + 2) == 100 && mu_ledger_charge(&l, 100, D + 2, &e) == MU_OK, "next day");

	struct mu_ledger_limits zero = {.daily_bytes = 0, .total_bytes = 0, .reserve_bytes = 0};
	CHECK(mu_ledger_open(&l, path, &zero, &e) == MU_ERR_ARG, "reserve_bytes 0 refused");
}

static void test_two_handles(void)
{
	struct mu_ledger a, b;
	struct mu_error e = {0};
	struct mu_ledger_limits lim = {.daily_bytes = 1000, .total_bytes = 0, .reserve_bytes = 300};
	unlink(path);
	CHECK(mu_ledger_open(&a, path, &lim, &e) == MU_OK && mu_ledger_open(&b, path, &lim, &e) == MU_OK, "open two");
	CHECK(mu_ledger_charge(&a, 10, D, &e) == MU_OK, "a");
	CHECK(mu_ledger_charge(&b, 10, D, &e) == MU_OK && b.day_bytes == 600, "b sees a's charge: %" PRIu64,
	      b.day_bytes);
	CHECK(mu_ledger_charge(&a, 300, D, &e) == MU_OK && a.day_bytes == 900, "a sees b's: %" PRIu64, a.day_bytes);
	CHECK(mu_ledger_charge(&b, 291, D, &e) == MU_OK && b.day_bytes == 1000 && b.reserved == 99,
	      "b capped by both: %" PRIu64 " reserved %" PRIu64, b.day_bytes, b.reserved);
	CHECK(a.reserved == 290 && mu_ledger_charge(&a, 290, D, &e) == MU_OK && a.reserved == 0, "a's reservation");
	CHECK(a.released_total + b.released_total + b.reserved == 1000, "released + reserved = charged");
	CHECK(mu_ledger_charge(&a, 1, D, &e) == MU_ERR_RANGE, "together they cannot pass the budget");
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"",
		"{}",
		"not json",
		"{\"version\":1,\"day\":1,\"day_bytes\":0}",
		"{\"version\":1,\"day\":1,\"day_bytes\":0,\"total_bytes\":0,\"extra\":1}",
		"{\"version\":1,\"day\":1,\"day_bytes\":-1,\"total_bytes\":0}",
		"{\"version\":1,\"day\":-1,\"day_bytes\":0,\"total_bytes\":0}",
		"{\"version\":1,\"day\":1,\"day_bytes\":5,\"total_bytes\":4}",
		"{\"version\":2,\"day\":1,\"day_bytes\":0,\"total_bytes\":0}",
		"{\"version\":1,\"day\":1,\"day\":2,\"day_bytes\":0,\"total_bytes\":0}",
		"{\"version\":1,\"day\":1,\"day_bytes\":0,\"total_bytes\":0} {}",
		"{\"version\":1,\"day\":1,\"day_bytes\":0.5,\"total_bytes\":1}",
		"{\"version\":1,\"day\":1,\"day_bytes\":\"0\",\"total_bytes\":1}",
		"{\"version\":1,\"day\":1,\"day_bytes\":0,\"total_bytes\":99999999999999999999}",
		"[{\"version\":1,\"day\":1,\"day_bytes\":0,\"total_bytes\":0}]",
		"{\"version\":1,\"day\":1,\"day_bytes\":0,\"total_bytes\":{}}",
		"{\"version\":1,\"day\":1,\"day_bytes\":0,\"total_bytes\":0,}",
	};
	struct mu_ledger l;
	struct mu_error e = {0};
	struct mu_ledger_limits lim = {.daily_bytes = 1000, .total_bytes = 0, .reserve_bytes = 10};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_file(path, bad[i]);
		e.msg[0] = '\0';
		enum mu_err rc = mu_ledger_open(&l, path, &lim, &e);
		CHECK(rc != MU_OK && rc != MU_ERR_IO && strstr(e.msg, path) && strstr(e.msg, "refusing"),
		      "malformed ledger %zu refused: rc %d: %s", i, rc, e.msg);
	}
	static char big[2048];
	memset(big, ' ', sizeof big - 1);
	memcpy(big, "{\"version\":1,\"day\":1,\"day_bytes\":0,\"total_bytes\":0}", 51);
	write_file(path, big);
	CHECK(mu_ledger_open(&l, path, &lim, &e) == MU_ERR_FORMAT && strstr(e.msg, "larger than"), "oversized: %s",
	      e.msg);
	static const char *const good[] = {
		"{\"version\":1,\"day\":1,\"day_bytes\":0,\"total_bytes\":0}",
		" {\"total_bytes\":7,\"day_bytes\":7,\"day\":19999,\"version\":1}\r\n",
		"{\"version\":1,\"day\":1,\"day_bytes\":1.0,\"total_bytes\":9223372036854775807}",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		write_file(path, good[i]);
		CHECK(mu_ledger_open(&l, path, &lim, &e) == MU_OK, "good ledger %zu: %s", i, e.msg);
	}
	CHECK(l.total_bytes == INT64_MAX && mu_ledger_remaining(&l, 1) == 0, "at the counter's maximum");
	struct mu_ledger_limits unl = {.daily_bytes = 0, .total_bytes = 0, .reserve_bytes = 10};
	CHECK(mu_ledger_open(&l, path, &unl, &e) == MU_OK && mu_ledger_charge(&l, 1, 1, &e) == MU_ERR_RANGE,
	      "no charge past the counter's maximum: %s", e.msg);

	char p2[600];
	snprintf(p2, sizeof p2, "%s/no/such/dir/ledger.json", dir);
	CHECK(mu_ledger_open(&l, p2, &lim, &e) == MU_ERR_IO && strstr(e.msg, "does not exist"), "no directory: %s",
	      e.msg);
	CHECK(mu_ledger_open(&l, dir, &lim, &e) == MU_ERR_IO, "a directory is not a ledger");
}

static void test_write_failure(void)
{
	struct mu_ledger l;
	struct mu_error e = {0};
	struct mu_ledger_limits lim = {.daily_bytes = 0, .total_bytes = 0, .reserve_bytes = 10};
	char tmp[600];
	unlink(path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	CHECK(mkdir(tmp, 0700) == 0, "block the temporary file with a directory");
	CHECK(mu_ledger_open(&l, path, &lim, &e) == MU_OK, "open");
	CHECK(mu_ledger_charge(&l, 5, D, &e) == MU_ERR_IO && l.reserved == 0 && l.released_total == 0 &&
		      l.total_bytes == 0,
	      "a charge that cannot be written grants nothing: %s", e.msg);
	rmdir(tmp);
	CHECK(mu_ledger_charge(&l, 5, D, &e) == MU_OK && l.total_bytes == 10, "works again: %s", e.msg);
}

/* Makes every openat() with O_DIRECTORY fail with EACCES in this process (for good): the one
 * way to make the ledger's directory fsync step fail for a test that may run as root. */
static int refuse_directory_opens(void)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const unsigned flags_lo = (unsigned)offsetof(struct seccomp_data, args[2]);
#else
	const unsigned flags_lo = (unsigned)offsetof(struct seccomp_data, args[2]) + 4;
#endif
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (unsigned)offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)__NR_openat, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, flags_lo),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (unsigned)O_DIRECTORY, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EACCES & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = (unsigned short)(sizeof f / sizeof f[0]), .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

/* A charge whose rename cannot be made durable (the directory cannot be opened for its fsync)
 * fails closed: MU_ERR_IO, nothing granted. Run in a child, as the filter cannot be undone. */
static void test_dir_sync_failure(void)
{
	struct mu_ledger_limits lim = {.daily_bytes = 0, .total_bytes = 0, .reserve_bytes = 10};
	unlink(path);
	pid_t pid = fork();
	if (pid == 0) {
		struct mu_ledger l;
		struct mu_error e = {0};
		if (mu_ledger_open(&l, path, &lim, &e) != MU_OK)
			_exit(10);
		if (refuse_directory_opens() != 0)
			_exit(11);
		enum mu_err rc = mu_ledger_charge(&l, 5, D, &e);
		if (rc != MU_ERR_IO)
			_exit(12);
		if (l.reserved != 0 || l.released_total != 0 || l.released_day != 0 || l.total_bytes != 0)
			_exit(13);
		if (!strstr(e.msg, "directory"))
			_exit(14);
		/* and again: still nothing granted (the file may count the charge: more, never less) */
		if (mu_ledger_charge(&l, 5, D, &e) != MU_ERR_IO || l.released_total != 0)
			_exit(15);
		_exit(0);
	}
	int status = -1;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "a charge whose directory cannot be synced must fail closed (child status %#x: 10 open, 11 seccomp, 12 "
	      "not MU_ERR_IO, 13 granted, 14 message, 15 second charge)",
	      status);
	/* a fresh handle reads a well-formed file that counts at least nothing released */
	struct mu_ledger l;
	struct mu_error e = {0};
	CHECK(mu_ledger_open(&l, path, &lim, &e) == MU_OK, "the ledger still opens: %s", e.msg);
	CHECK(mu_ledger_charge(&l, 5, D, &e) == MU_OK, "and charges once the directory can be synced: %s", e.msg);
}

/* The child charges forever and reports released_total after each success. */
static void crash_child(int wfd, uint64_t seed)
{
	struct mu_ledger l;
	struct mu_error e;
	struct mu_ledger_limits lim = {.daily_bytes = 0, .total_bytes = 0, .reserve_bytes = 37};
	if (mu_ledger_open(&l, path, &lim, &e) != MU_OK)
		_exit(3);
	for (uint64_t i = 0;; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t n = 1 + (seed >> 33) % 60;
		if (mu_ledger_charge(&l, n, D, &e) != MU_OK)
			_exit(4);
		uint64_t r = l.released_total;
		if (write(wfd, &r, sizeof r) != (ssize_t)sizeof r)
			_exit(5);
	}
}

static void test_crash(void)
{
	int bad = 0, rounds = 6;
	uint64_t base = 0;
	unlink(path);
	for (int round = 0; round < rounds; round++) {
		int p[2];
		if (pipe(p) != 0) {
			CHECK(0, "pipe");
			return;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(p[0]);
			crash_child(p[1], (uint64_t)round * 977 + 1);
		}
		close(p[1]);
		/* wait for a few reports, then a random moment, then kill -9 */
		uint64_t last = 0, got = 0, r;
		while (got < 20u + (unsigned)round * 15 && read(p[0], &r, sizeof r) == (ssize_t)sizeof r) {
			last = r;
			got++;
		}
		struct timespec ts = {0, (long)(round * 1700 + 300) * 1000};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status = 0;
		waitpid(pid, &status, 0);
		ssize_t k;
		while ((k = read(p[0], &r, sizeof r)) == (ssize_t)sizeof r) {
			last = r;
			got++;
		}
		close(p[0]);
		struct mu_ledger l;
		struct mu_error e = {0};
		struct mu_ledger_limits lim = {.daily_bytes = 0, .total_bytes = 0, .reserve_bytes = 1};
		enum mu_err rc = mu_ledger_open(&l, path, &lim, &e);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) || rc != MU_OK || got < 20 ||
		    l.total_bytes < base + last || l.day_bytes != l.total_bytes) {
			if (!bad++)
				fprintf(stderr, "crash round %d: status %#x, open %d (%s), %" PRIu64 " reports, released %" PRIu64
						", file %" PRIu64 " (base %" PRIu64 ")\n",
					round, status, rc, e.msg, got, last, l.total_bytes, base);
		}
		base = l.total_bytes; /* the next child starts from here */
	}
	CHECK(bad == 0, "after SIGKILL the ledger counts at least what was released (%d rounds)", rounds);
}

int main(void)
{
	snprintf(dir, sizeof dir, "%s/mu_test_ledger.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(path, sizeof path, "%s/ledger.json", dir);
	test_basic();
	test_budget_edge();
	test_total_limit();
	test_two_handles();
	test_malformed();
	test_write_failure();
	test_dir_sync_failure();
	test_crash();
	char p[600];
	unlink(path);
	snprintf(p, sizeof p, "%s.lock", path);
	unlink(p);
	snprintf(p, sizeof p, "%s.tmp", path);
	unlink(p);
	rmdir(dir);
	return test_done();
}
