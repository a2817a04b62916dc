/* audit.h — the hash-chained audit log: JSON lines, each carrying the SHA-256 of the line
 * before it, each fsync'd before the action it records takes effect.
 *
 * A record is one line (at most MU_AUDIT_MAX_LINE bytes, '\n' included):
 *     {"seq":N,"ts_ms":N,"prev":"<64 hex>","event":"<name>", ...members...}
 * seq counts from 1 with no gaps; ts_ms is wall-clock milliseconds since the epoch; prev is the
 * lower-case hex SHA-256 of the previous line's bytes without its '\n' (64 zeros for line 1).
 * Members are sizes, timings, decisions, rule names and client ids: never prompt text,
 * completion text, keys or weights (the callers' duty; nothing here inspects them).
 *
 * Opening an existing log verifies the whole chain and continues it. A last line without its
 * '\n' (the process died inside write) is cut off and the cut is recorded as the next record
 * ("event":"audit_recovered","torn_bytes":N); any other break refuses to open, because
 * continuing a broken chain would hide the break. One writer per log (an exclusive flock);
 * after a failed write or fsync the log closes itself and every later commit fails.
 *
 * Where verification reports a change (audit.c has the order of the checks): an edit that
 * leaves line k a well-formed record shows on line k + 1 ("prev does not match line k"); an
 * edit of line k's JSON, seq or prev, a deleted line k or lines k and k + 1 swapped show on
 * line k; an edit of the last line changes only the head hash (compare it with a copy).
 */
#ifndef MU_HOST_AUDIT_H
#define MU_HOST_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/limits.h"
#include "wire/json_write.h"

struct mu_audit {
	int fd;
	uint64_t seq;     /* of the last record written (0: empty log) */
	uint8_t prev[32]; /* SHA-256 of the last line without its '\n' */
	char line[MU_AUDIT_MAX_LINE];
	struct jsonw w;   /* the record being built */
	int open_rec;
};

/* Opens (creating with mode 0600) and verifies path, ready to append. */
enum mu_err mu_audit_open(struct mu_audit *a, const char *path, struct mu_error *err);
void mu_audit_close(struct mu_audit *a);

/* Starts a record: returns the writer with seq, ts_ms, prev and event already written; add the
 * members with jsonw_* and call mu_audit_commit. */
struct jsonw *mu_audit_begin(struct mu_audit *a, const char *event);
/* Closes the record, writes the line and fsyncs. MU_ERR_NOMEM when the record grew past
 * MU_AUDIT_MAX_LINE, MU_ERR_IO when it could not be written and synced: the caller must then
 * not do what the record was about (fail closed). */
enum mu_err mu_audit_commit(struct mu_audit *a, struct mu_error *err);

/* What mu_audit_verify found. */
struct mu_audit_report {
	uint64_t lines;        /* complete, valid lines before the first problem (or all) */
	uint64_t bad_line;     /* 1-based number of the first broken line; 0 when the chain holds */
	int torn_tail;         /* bytes after the last '\n' when the file ends inside a line (the
				  writer died mid-record); 0 when it does not */
	uint8_t head[32];      /* SHA-256 of the last valid line */
	char why[160];         /* what is wrong with bad_line ("prev does not match line 6", ...) */
};
/* Checks every line of path: valid strict JSON object, seq = line number, prev = SHA-256 of the
 * line before. MU_OK when the file could be read (look at rep->bad_line and rep->torn_tail);
 * MU_ERR_IO when it could not. */
enum mu_err mu_audit_verify(const char *path, struct mu_audit_report *rep, struct mu_error *err);

#endif
