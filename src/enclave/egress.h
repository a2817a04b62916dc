/* egress.h — the enclave's only path out: every byte written to the channel goes through
 * mu_egress_write, which takes it from the egress token bucket (base/bucket.h) first.
 *
 * The bucket belongs to the process, not to a connection: a reconnecting peer finds it as the
 * previous connection left it, so reconnecting never buys bytes beyond the normal refill. When
 * the bucket is empty the writer sleeps (clock_nanosleep) until it grants bytes again; the
 * bytes granted but not yet accepted by the kernel stay credited to the next write attempt,
 * never to a later message, so over any t seconds at most burst + rate × t bytes leave.
 *
 * The channel descriptor is non-blocking. A peer that stops reading for MU_EGRESS_STALL_MS
 * while a write is pending loses its connection (MU_ERR_IO), so one stuck peer cannot hold
 * the enclave forever.
 *
 * Nothing else in the enclave calls write(2) on the channel (grep for it: src/enclave holds
 * one write() outside the stderr log lines, in egress.c).
 */
#ifndef MU_ENCLAVE_EGRESS_H
#define MU_ENCLAVE_EGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "base/bucket.h"
#include "base/err.h"

#define MU_EGRESS_STALL_MS 60000u

struct mu_egress {
	int fd;              /* the current connection, -1 when none */
	int limited;         /* 0 only in the test build with "test_no_egress_limit" */
	struct mu_bucket bucket;
	uint64_t credit;     /* bytes granted by the bucket and not yet written */
	uint64_t total;      /* bytes written since start (all connections) */
};

/* Sets the bucket up full at the current time. limited = 0 disables it (test builds only). */
enum mu_err mu_egress_init(struct mu_egress *e, uint64_t rate, uint64_t burst, int limited, struct mu_error *err);
/* The connection the next writes go to (-1: none). The bucket is kept; unwritten credit of the
 * previous connection is dropped. */
void mu_egress_attach(struct mu_egress *e, int fd);

/* Writes p[0..n) completely, pacing it through the bucket. MU_ERR_IO when the peer is gone
 * (EOF, EPIPE, reset) or stalled; the connection must then be closed. */
enum mu_err mu_egress_write(struct mu_egress *e, const void *p, size_t n, struct mu_error *err);

/* Writes one frame whose body sits at buf[4 .. 4 + len): fills the 4-byte length header at
 * buf[0..4) and writes header and body through mu_egress_write. */
enum mu_err mu_egress_frame(struct mu_egress *e, uint8_t *buf, size_t len, struct mu_error *err);

#endif
