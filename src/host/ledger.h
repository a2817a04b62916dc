/* ledger.h — the proxy's persisted egress budget: bytes per UTC day and in total.
 *
 * The ledger file holds what has been *charged*: a charge is written (temporary file, fsync,
 * rename, directory fsync) before the bytes it covers are released, so no crash, kill -9 or
 * restart can release a byte the file does not count. Each step must succeed, the directory
 * fsync included; otherwise the charge fails closed with MU_ERR_IO. To avoid a sync per token, a charge
 * reserves ahead: when the reservation in memory does not cover n bytes, the ledger charges
 * max(n, reserve_bytes), capped by what the budget still allows, in one write. Bytes reserved
 * but never released when the proxy dies stay counted (the budget errs on the safe side).
 *
 * File format (one line, strict JSON):
 *     {"version":1,"day":N,"day_bytes":N,"total_bytes":N}
 * day is the UTC day number (seconds since the epoch / 86400) that day_bytes belongs to; a
 * charge on a later day starts day_bytes from 0. A missing file is an empty ledger; an
 * unreadable or malformed file refuses to open (never silently reset): unknown or missing
 * members, values that are not integers in 0..INT64_MAX, version other than 1, day_bytes above
 * total_bytes, duplicate keys or trailing bytes.
 *
 * Details:
 * - Charges that write take an exclusive flock on "<path>.lock" (created beside the ledger and
 *   left there) and re-read the file first, so two proxies sharing one ledger add up instead of
 *   overwriting each other; the temporary file is "<path>.tmp".
 * - A day earlier than the stored one (the clock went back) is charged to the stored day.
 * - A reservation is good only on the day it was charged: on a later day the unreleased rest
 *   stays counted on the old day and a new reservation is charged to the new one.
 * - A charge past a budget charges nothing: MU_ERR_RANGE with "daily egress budget exhausted:
 *   U of L bytes used today, R left, N asked" (or "total egress budget exhausted: ...").
 */
#ifndef MU_HOST_LEDGER_H
#define MU_HOST_LEDGER_H

#include <stdint.h>

#include "base/err.h"

struct mu_ledger_limits {
	uint64_t daily_bytes;   /* 0: no daily limit */
	uint64_t total_bytes;   /* 0: no total limit */
	uint64_t reserve_bytes; /* charge granularity (>= 1) */
};

struct mu_ledger {
	char path[4096];
	struct mu_ledger_limits lim;
	uint64_t day;         /* day of day_bytes */
	uint64_t day_bytes;   /* charged today (persisted) */
	uint64_t total_bytes; /* charged in total (persisted) */
	uint64_t reserved;    /* charged but not yet released (memory only) */
	uint64_t released_day, released_total; /* released since open (memory only; for reports) */
};

enum mu_err mu_ledger_open(struct mu_ledger *l, const char *path, const struct mu_ledger_limits *lim,
			   struct mu_error *err);

/* Accounts n bytes about to be released on day `day`. MU_OK: release them. MU_ERR_RANGE: the
 * daily or total budget does not allow n more bytes (nothing charged; err says which budget and
 * how much is left). MU_ERR_IO: the charge could not be made durable — the lock, the temporary
 * file, its fsync, the rename, or opening or fsyncing the directory failed (release nothing;
 * the file may count the charge anyway, which errs on the safe side). */
enum mu_err mu_ledger_charge(struct mu_ledger *l, uint64_t n, uint64_t day, struct mu_error *err);

/* Bytes that may still be released on day `day` (UINT64_MAX when unlimited). */
uint64_t mu_ledger_remaining(const struct mu_ledger *l, uint64_t day);

/* The UTC day number of a wall-clock time in seconds. */
static inline uint64_t mu_ledger_day(uint64_t unix_s) { return unix_s / 86400u; }

#endif
