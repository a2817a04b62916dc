/* egress.c — the rate-limited writer, the enclave's only path out (see egress.h). */
#define _GNU_SOURCE
#include "enclave/egress.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/limits.h"
#include "pal/pal.h"
#include "wire/frame.h"

enum mu_err mu_egress_init(struct mu_egress *e, uint64_t rate, uint64_t burst, int limited, struct mu_error *err)
{
	memset(e, 0, sizeof *e);
	e->fd = -1;
	e->limited = limited;
	return mu_bucket_init(&e->bucket, rate, burst, pal_now_ns(), err);
}

void mu_egress_attach(struct mu_egress *e, int fd)
{
	e->fd = fd;
	e->credit = 0;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

/* Waits until fd accepts bytes; MU_ERR_IO when it does not within MU_EGRESS_STALL_MS or the
 * peer hung up. */
static enum mu_err wait_writable(int fd, struct mu_error *err)
{
	uint64_t deadline = pal_now_ns() + (uint64_t)MU_EGRESS_STALL_MS * 1000000u;
	for (;;) {
		uint64_t now = pal_now_ns();
		if (now >= deadline)
			return mu_errf(err, MU_ERR_IO, "the peer has not read for %u ms", MU_EGRESS_STALL_MS);
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int n = poll(&p, 1, (int)((deadline - now + 999999u) / 1000000u));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return mu_errf(err, MU_ERR_IO, "poll: %s", strerror(errno));
		if (n == 0)
			continue;
		if (p.revents & POLLOUT)
			return MU_OK;
		if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
			return mu_errf(err, MU_ERR_IO, "the peer closed the channel");
	}
}

enum mu_err mu_egress_write(struct mu_egress *e, const void *p, size_t n, struct mu_error *err)
{
	const uint8_t *b = p;
	if (e->fd < 0)
		return mu_errf(err, MU_ERR_IO, "no connection");
	while (n > 0) {
		if (e->limited && e->credit == 0) {
			uint64_t wait_ns = 0;
			e->credit = mu_bucket_grant(&e->bucket, n, pal_now_ns(), &wait_ns);
			if (e->credit == 0) {
				sleep_ns(wait_ns ? wait_ns : 1000000u);
				continue;
			}
		}
		size_t chunk = n;
		if (e->limited && chunk > e->credit)
			chunk = (size_t)e->credit;
		ssize_t w = write(e->fd, b, chunk);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			enum mu_err rc = wait_writable(e->fd, err);
			if (rc)
				return rc;
			continue;
		}
		if (w <= 0)
			return mu_errf(err, MU_ERR_IO, "write to the channel: %s", w < 0 ? strerror(errno) : "nothing written");
		b += w;
		n -= (size_t)w;
		e->total += (uint64_t)w;
		if (e->limited)
			e->credit -= (uint64_t)w;
	}
	return MU_OK;
}

enum mu_err mu_egress_frame(struct mu_egress *e, uint8_t *buf, size_t len, struct mu_error *err)
{
	enum mu_err rc = mu_frame_header(buf, len, MU_WIRE_MAX_FRAME, err);
	if (rc)
		return rc;
	return mu_egress_write(e, buf, MU_FRAME_HDR + len, err);
}
