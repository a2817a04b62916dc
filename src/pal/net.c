/* net.c — stream sockets on POSIX (see net.h): address parsing, listening with stale Unix
 * socket replacement, accepting, connecting within a deadline and naming peers for logs.
 *
 * A connect with a timeout is a non-blocking connect followed by poll for writability and a
 * look at SO_ERROR; every name getaddrinfo returns is tried in turn while time is left. A Unix
 * socket whose listener's backlog is full answers EAGAIN instead of EINPROGRESS; that is
 * retried every few milliseconds until the deadline. */
#define _GNU_SOURCE
#include "pal/net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pal/pal.h"

#define UNIX_PATH_CAP (sizeof ((struct sockaddr_un *)0)->sun_path)
#define EAGAIN_RETRY_MS 5 /* pause between connects to a Unix socket whose backlog is full */

enum addr_kind { ADDR_UNIX = 1, ADDR_TCP = 2 };

struct addr {
	enum addr_kind kind;
	struct sockaddr_un sun; /* ADDR_UNIX */
	char host[PAL_NET_ADDR_MAX]; /* ADDR_TCP: without brackets */
	char port[8];
	unsigned port_num;
};

/* Splits "unix:PATH" or "tcp:HOST:PORT" ("[v6]" allowed) into a. Nothing is resolved here. */
static enum mu_err parse_addr(const char *s, struct addr *a, struct mu_error *err)
{
	memset(a, 0, sizeof *a);
	if (!s)
		return mu_errf(err, MU_ERR_ARG, "no address given (tcp:HOST:PORT or unix:PATH)");
	if (strlen(s) >= PAL_NET_ADDR_MAX)
		return mu_errf(err, MU_ERR_ARG, "address is longer than %u bytes", PAL_NET_ADDR_MAX - 1);
	if (!strncmp(s, "unix:", 5)) {
		const char *path = s + 5;
		size_t n = strlen(path);
		if (n == 0 || n >= UNIX_PATH_CAP)
			return mu_errf(err, MU_ERR_ARG, "unix socket path must be 1..%zu bytes", UNIX_PATH_CAP - 1);
		a->kind = ADDR_UNIX;
		a->sun.sun_family = AF_UNIX;
		memcpy(a->sun.sun_path, path, n);
		return MU_OK;
	}
	if (!strncmp(s, "tcp:", 4)) {
		const char *spec = s + 4, *colon = strrchr(spec, ':');
		if (!colon || colon == spec || !colon[1])
			return mu_errf(err, MU_ERR_ARG, "tcp address must be HOST:PORT, e.g. tcp:127.0.0.1:7000");
		size_t hn = (size_t)(colon - spec);
		const char *h = spec;
		if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
			h++;
			hn -= 2;
		}
		if (hn == 0 || memchr(h, '[', hn) || memchr(h, ']', hn))
			return mu_errf(err, MU_ERR_ARG, "tcp address must be HOST:PORT, e.g. tcp:127.0.0.1:7000");
		/* a bare v6 address without brackets ("::1:80") is ambiguous: refuse it */
		if (h == spec && memchr(h, ':', hn))
			return mu_errf(err, MU_ERR_ARG, "tcp address: write an IPv6 host in brackets, e.g. tcp:[::1]:7000");
		memcpy(a->host, h, hn);
		a->host[hn] = '\0';
		const char *p = colon + 1;
		size_t pn = strlen(p);
		unsigned v = 0;
		if (pn > 5)
			return mu_errf(err, MU_ERR_ARG, "tcp address: port must be a number 0..65535");
		for (size_t i = 0; i < pn; i++) {
			if (p[i] < '0' || p[i] > '9')
				return mu_errf(err, MU_ERR_ARG, "tcp address: port must be a number 0..65535");
			v = v * 10 + (unsigned)(p[i] - '0');
		}
		if (v > 65535)
			return mu_errf(err, MU_ERR_ARG, "tcp address: port must be a number 0..65535");
		memcpy(a->port, p, pn + 1);
		a->port_num = v;
		a->kind = ADDR_TCP;
		return MU_OK;
	}
	return mu_errf(err, MU_ERR_ARG, "address '%s' must start with tcp: or unix:", s);
}

/* "tcp:H:P" or "tcp:[H]:P" for a socket address; -1 when it cannot be formatted. */
static int format_inet(const struct sockaddr *sa, socklen_t sl, char *buf, size_t cap)
{
	char h[NI_MAXHOST], p[NI_MAXSERV];
	if (getnameinfo(sa, sl, h, sizeof h, p, sizeof p, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return -1;
	int n = snprintf(buf, cap, sa->sa_family == AF_INET6 ? "tcp:[%s]:%s" : "tcp:%s:%s", h, p);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static void close_keep_errno(int fd)
{
	int e = errno;
	close(fd);
	errno = e;
}

static enum mu_err listen_unix(const struct addr *a, int backlog, int *fd, struct mu_error *err)
{
	const char *path = a->sun.sun_path;
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return mu_errf(err, MU_ERR_ARG, "%s exists and is not a socket", path);
		/* a socket file nobody listens on is left over from a process that died: replace it */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int live = probe >= 0 && connect(probe, (const struct sockaddr *)&a->sun, sizeof a->sun) == 0;
		if (probe >= 0)
			close(probe);
		if (live)
			return mu_errf(err, MU_ERR_ARG, "%s: another process is listening there", path);
		if (unlink(path) != 0 && errno != ENOENT)
			return mu_errf(err, MU_ERR_IO, "%s: cannot remove the stale socket: %s", path, strerror(errno));
	}
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return mu_errf(err, MU_ERR_IO, "socket: %s", strerror(errno));
	/* only the owner may connect: the socket file is created 0600 */
	mode_t old = umask(077);
	int rc = bind(s, (const struct sockaddr *)&a->sun, sizeof a->sun);
	umask(old);
	if (rc != 0) {
		close_keep_errno(s);
		return mu_errf(err, MU_ERR_IO, "bind %s: %s", path, strerror(errno));
	}
	if (listen(s, backlog) != 0) {
		close_keep_errno(s);
		unlink(path);
		return mu_errf(err, MU_ERR_IO, "listen: %s", strerror(errno));
	}
	*fd = s;
	return MU_OK;
}

static enum mu_err listen_tcp(const struct addr *a, const char *spec, int backlog, int *fd, struct mu_error *err)
{
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	int gai = getaddrinfo(a->host, a->port, &hints, &ai);
	if (gai != 0)
		return mu_errf(err, MU_ERR_ARG, "tcp address '%s': %s", spec, gai_strerror(gai));
	int s = -1, e = 0;
	for (const struct addrinfo *p = ai; p; p = p->ai_next) {
		int one = 1;
		s = socket(p->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (s >= 0 && setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
		    bind(s, p->ai_addr, p->ai_addrlen) == 0)
			break;
		e = errno;
		if (s >= 0)
			close(s);
		s = -1;
	}
	freeaddrinfo(ai);
	if (s < 0)
		return mu_errf(err, MU_ERR_IO, "bind %s: %s", spec, strerror(e));
	if (listen(s, backlog) != 0) {
		close_keep_errno(s);
		return mu_errf(err, MU_ERR_IO, "listen: %s", strerror(errno));
	}
	*fd = s;
	return MU_OK;
}

enum mu_err pal_listen(const char *addr, int backlog, int *fd, char *bound, size_t bound_cap,
		       struct mu_error *err)
{
	struct addr a;
	char name[PAL_NET_ADDR_MAX + 8];
	enum mu_err rc;
	*fd = -1;
	if ((rc = parse_addr(addr, &a, err)) != MU_OK)
		return rc;
	if (backlog < 1)
		backlog = 1;
	if (a.kind == ADDR_UNIX) {
		if (bound && strlen(addr) >= bound_cap)
			return mu_errf(err, MU_ERR_ARG, "no room for the bound address (%zu bytes)", bound_cap);
		if ((rc = listen_unix(&a, backlog, fd, err)) != MU_OK)
			return rc;
		if (bound)
			memcpy(bound, addr, strlen(addr) + 1);
		return MU_OK;
	}
	if ((rc = listen_tcp(&a, addr, backlog, fd, err)) != MU_OK)
		return rc;
	if (!bound)
		return MU_OK;
	struct sockaddr_storage ss = {0};
	socklen_t sl = sizeof ss;
	if (getsockname(*fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    format_inet((struct sockaddr *)&ss, sl, name, sizeof name) != 0 || strlen(name) >= bound_cap) {
		close(*fd);
		*fd = -1;
		return mu_errf(err, MU_ERR_IO, "cannot read back the bound address of %s", addr);
	}
	memcpy(bound, name, strlen(name) + 1);
	return MU_OK;
}

enum mu_err pal_accept(int lfd, unsigned flags, int *fd, struct mu_error *err)
{
	int f = SOCK_CLOEXEC | ((flags & PAL_NET_NONBLOCK) ? SOCK_NONBLOCK : 0);
	*fd = -1;
	for (;;) {
		int s = accept4(lfd, NULL, NULL, f);
		if (s >= 0) {
			*fd = s;
			return MU_OK;
		}
		if (errno == EINTR)
			continue;
		/* ECONNABORTED: a client gave up while waiting in the backlog; nothing to accept */
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED)
			return mu_errf(err, MU_ERR_STATE, "no connection is waiting");
		return mu_errf(err, MU_ERR_IO, "accept: %s", strerror(errno));
	}
}

static uint64_t now_ms(void) { return pal_now_ns() / 1000000u; }

/* Waits for a non-blocking connect on s to finish before deadline; 0 or an errno value. */
static int wait_connected(int s, uint64_t deadline)
{
	for (;;) {
		uint64_t t = now_ms();
		if (t >= deadline)
			return ETIMEDOUT;
		struct pollfd p = {.fd = s, .events = POLLOUT};
		uint64_t left = deadline - t;
		int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			continue;
		int e = 0;
		socklen_t el = sizeof e;
		if (getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
			return errno;
		return e;
	}
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* One connect attempt to sa within the deadline (0: blocking, the system's timeout).
 * Returns a connected socket, or -1 with errno set. */
static int connect_one(int family, const struct sockaddr *sa, socklen_t sl, uint64_t deadline)
{
	for (;;) {
		int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (deadline ? SOCK_NONBLOCK : 0), 0);
		if (s < 0)
			return -1;
		if (connect(s, sa, sl) == 0)
			return s;
		int e = errno;
		/* an interrupted connect goes on in the background, as a non-blocking one does */
		if ((deadline && e == EINPROGRESS) || e == EINTR) {
			e = wait_connected(s, deadline ? deadline : UINT64_MAX);
			if (e == 0)
				return s;
		} else if (deadline && family == AF_UNIX && e == EAGAIN && now_ms() + EAGAIN_RETRY_MS < deadline) {
			close(s);
			sleep_ms(EAGAIN_RETRY_MS);
			continue;
		} else if (deadline && e == EAGAIN) {
			e = ETIMEDOUT;
		}
		close(s);
		errno = e;
		return -1;
	}
}

enum mu_err pal_connect(const char *addr, uint32_t timeout_ms, unsigned flags, int *fd, struct mu_error *err)
{
	struct addr a;
	enum mu_err rc;
	uint64_t deadline = timeout_ms ? now_ms() + timeout_ms : 0;
	int s = -1, e = 0;
	*fd = -1;
	if ((rc = parse_addr(addr, &a, err)) != MU_OK)
		return rc;
	if (a.kind == ADDR_UNIX) {
		s = connect_one(AF_UNIX, (const struct sockaddr *)&a.sun, sizeof a.sun, deadline);
		e = errno;
	} else {
		if (a.port_num == 0)
			return mu_errf(err, MU_ERR_ARG, "connect %s: port 0 is not a destination", addr);
		struct addrinfo hints, *ai = NULL;
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICSERV;
		int gai = getaddrinfo(a.host, a.port, &hints, &ai);
		if (gai != 0)
			return mu_errf(err, MU_ERR_ARG, "connect %s: %s", addr, gai_strerror(gai));
		e = EADDRNOTAVAIL;
		for (const struct addrinfo *p = ai; p && s < 0; p = p->ai_next) {
			s = connect_one(p->ai_family, p->ai_addr, p->ai_addrlen, deadline);
			if (s < 0)
				e = errno;
			if (s < 0 && e == ETIMEDOUT)
				break;
		}
		freeaddrinfo(ai);
	}
	if (s < 0) {
		if (e == ETIMEDOUT && timeout_ms)
			return mu_errf(err, MU_ERR_IO, "connect %s: no answer within %u ms", addr, (unsigned)timeout_ms);
		return mu_errf(err, MU_ERR_IO, "connect %s: %s", addr, strerror(e));
	}
	if ((rc = pal_set_nonblock(s, (flags & PAL_NET_NONBLOCK) != 0, err)) != MU_OK) {
		close(s);
		return rc;
	}
	*fd = s;
	return MU_OK;
}

void pal_peer_name(int fd, char *buf, size_t cap)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl = sizeof ss;
	if (!buf || cap == 0)
		return;
	snprintf(buf, cap, "?");
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return;
	if (ss.ss_family == AF_UNIX) {
#ifdef SO_PEERCRED
		struct ucred cr;
		socklen_t cl = sizeof cr;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cl == sizeof cr)
			snprintf(buf, cap, "unix:pid=%ld,uid=%ld", (long)cr.pid, (long)cr.uid);
#endif
		return;
	}
	char name[PAL_NET_ADDR_MAX + 8];
	sl = sizeof ss;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 && format_inet((struct sockaddr *)&ss, sl, name, sizeof name) == 0)
		snprintf(buf, cap, "%s", name);
}

void pal_unlink_addr(const char *addr)
{
	if (addr && !strncmp(addr, "unix:", 5) && addr[5])
		unlink(addr + 5);
}

enum mu_err pal_set_nonblock(int fd, int on, struct mu_error *err)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return mu_errf(err, MU_ERR_IO, "fcntl: %s", strerror(errno));
	int want = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	if (want != fl && fcntl(fd, F_SETFL, want) != 0)
		return mu_errf(err, MU_ERR_IO, "fcntl: %s", strerror(errno));
	return MU_OK;
}
