/* channel.c — opening the channel, accepting, and the deadline-bounded frame reader (see
 * channel.h). */
#define _GNU_SOURCE
#include "enclave/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base/limits.h"
#include "pal/pal.h"

#define DEV_DRAIN_QUIET_MS 50  /* after a broken session on a device: silence that ends draining */
#define DEV_DRAIN_MAX_MS 1000  /* ... and the most time spent draining */
#define DEV_IDLE_MS 100        /* how often a device whose other end is closed is looked at */

static enum mu_err open_dev(struct mu_chan *c, const char *path, struct mu_error *err)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "channel %s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode)) {
		close(fd);
		return mu_errf(err, MU_ERR_IO, "channel %s: not a character device", path);
	}
	if (isatty(fd)) { /* a console port: raw bytes, no line discipline, no echo */
		struct termios t;
		if (tcgetattr(fd, &t) == 0) {
			cfmakeraw(&t);
			tcsetattr(fd, TCSANOW, &t);
		}
	}
	c->fd = fd;
	return MU_OK;
}

enum mu_err mu_chan_open(struct mu_chan *c, const struct mu_enclave_cfg *cfg, uint8_t *buf, struct mu_error *err)
{
	enum mu_err rc;
	memset(c, 0, sizeof *c);
	c->kind = cfg->channel_kind;
	c->lfd = -1;
	c->fd = -1;
	c->read_timeout_ms = cfg->read_timeout_ms;
	mu_frame_rd_init(&c->rd, buf, MU_WIRE_MAX_FRAME);
	if (c->kind == MU_CHANNEL_DEV) {
		if ((rc = open_dev(c, cfg->dev_path, err)))
			return rc;
		snprintf(c->addr, sizeof c->addr, "%s", cfg->channel);
		return MU_OK;
	}
	return pal_listen(cfg->channel, 4, &c->lfd, c->addr, sizeof c->addr, err);
}

static void reset_reader(struct mu_chan *c)
{
	uint8_t *buf = c->rd.buf;
	mu_frame_rd_init(&c->rd, buf, MU_WIRE_MAX_FRAME);
	c->frame_start_ns = 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A device is "connected" once it has bytes to read. While its other end is closed (a
 * virtio-serial port without a host, a pty without its master) poll reports a hang-up at
 * once: look again every DEV_IDLE_MS instead of spinning. */
static enum mu_err wait_dev(struct mu_chan *c, struct mu_error *err)
{
	if (c->fd < 0)
		return mu_errf(err, MU_ERR_STATE, "the channel device is not open");
	for (;;) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int n = poll(&p, 1, -1);
		if (n < 0 && errno != EINTR)
			return mu_errf(err, MU_ERR_IO, "poll on the channel device: %s", strerror(errno));
		if (n <= 0)
			continue;
		if (p.revents & POLLNVAL)
			return mu_errf(err, MU_ERR_IO, "the channel device was closed");
		if (!(p.revents & (POLLHUP | POLLERR)) && (p.revents & POLLIN))
			return MU_OK;
		sleep_ms(DEV_IDLE_MS);
	}
}

enum mu_err mu_chan_accept(struct mu_chan *c, struct mu_error *err)
{
	reset_reader(c);
	if (c->kind == MU_CHANNEL_DEV)
		return wait_dev(c, err);
	for (;;) {
		struct pollfd p = {.fd = c->lfd, .events = POLLIN};
		int n = poll(&p, 1, -1);
		if (n < 0 && errno != EINTR)
			return mu_errf(err, MU_ERR_IO, "poll on the listening socket: %s", strerror(errno));
		if (n <= 0)
			continue;
		enum mu_err rc = pal_accept(c->lfd, PAL_NET_NONBLOCK, &c->fd, err);
		if (rc == MU_OK)
			return MU_OK;
		if (rc != MU_ERR_STATE)
			return rc;
	}
}

/* A device cannot be resynchronised after a broken frame: throw away what is in flight until
 * the line has been quiet for a moment (bounded, so a flooding host cannot hold us here). */
static void drain_dev(int fd)
{
	uint8_t junk[4096];
	uint64_t end = pal_now_ns() + (uint64_t)DEV_DRAIN_MAX_MS * 1000000u;
	while (pal_now_ns() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, DEV_DRAIN_QUIET_MS) <= 0)
			return;
		ssize_t n = read(fd, junk, sizeof junk);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return; /* the other end is closed: wait_dev waits for it */
	}
}

void mu_chan_close_conn(struct mu_chan *c)
{
	if (c->kind == MU_CHANNEL_DEV) {
		if (c->fd >= 0)
			drain_dev(c->fd);
	} else if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	reset_reader(c);
}

enum mu_chan_rc mu_chan_read(struct mu_chan *c, int wait_ms)
{
	const uint64_t ms = 1000000u;
	uint64_t give_up = wait_ms < 0 ? UINT64_MAX : pal_now_ns() + (uint64_t)wait_ms * ms;
	for (;;) {
		uint8_t *p;
		size_t want;
		if (mu_frame_rd_space(&c->rd, &p, &want) == MU_FRAME_DONE)
			return MU_CHAN_FRAME;
		if (c->rd.failed)
			return c->rd.failed == MU_ERR_FORMAT ? MU_CHAN_BAD_FRAME : MU_CHAN_TOO_LARGE;
		ssize_t n = read(c->fd, p, want);
		if (n > 0) {
			enum mu_frame_state st;
			if (!c->frame_start_ns)
				c->frame_start_ns = pal_now_ns();
			enum mu_err rc = mu_frame_rd_commit(&c->rd, (size_t)n, &st, NULL);
			if (rc == MU_ERR_FORMAT)
				return MU_CHAN_BAD_FRAME;
			if (rc != MU_OK)
				return MU_CHAN_TOO_LARGE;
			if (st == MU_FRAME_DONE)
				return MU_CHAN_FRAME;
			/* a peer trickling bytes must still finish within the deadline */
			if (pal_now_ns() - c->frame_start_ns >= (uint64_t)c->read_timeout_ms * ms)
				return MU_CHAN_TIMEOUT;
			continue;
		}
		if (n == 0)
			return MU_CHAN_CLOSED;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return MU_CHAN_CLOSED;
		uint64_t now = pal_now_ns(), until = give_up;
		if (c->frame_start_ns) {
			uint64_t deadline = c->frame_start_ns + (uint64_t)c->read_timeout_ms * ms;
			if (now >= deadline)
				return MU_CHAN_TIMEOUT;
			if (deadline < until)
				until = deadline;
		}
		if (until != UINT64_MAX && now >= until)
			return MU_CHAN_NONE;
		int timeout = -1;
		if (until != UINT64_MAX) {
			uint64_t left = (until - now + ms - 1) / ms;
			timeout = left > 60000 ? 60000 : (int)left;
		}
		struct pollfd pf = {.fd = c->fd, .events = POLLIN};
		int r = poll(&pf, 1, timeout);
		if ((r < 0 && errno != EINTR) || (r > 0 && (pf.revents & POLLNVAL)))
			return MU_CHAN_CLOSED;
	}
}

const uint8_t *mu_chan_body(const struct mu_chan *c, size_t *len)
{
	*len = mu_frame_rd_len(&c->rd);
	return c->rd.buf;
}

void mu_chan_next(struct mu_chan *c)
{
	mu_frame_rd_next(&c->rd);
	c->frame_start_ns = 0;
}
