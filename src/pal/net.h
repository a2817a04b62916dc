/* net.h — stream sockets for the enclave channel, the proxy and the key broker (POSIX).
 *
 * Addresses are strings:
 *     unix:PATH          a Unix stream socket
 *     tcp:HOST:PORT      TCP (HOST a name or a numeric v4/v6 address; [v6] allowed); PORT 0
 *                        when listening means any free port
 * Every descriptor is close-on-exec. Listening sockets are non-blocking; connected ones are
 * returned blocking unless PAL_NET_NONBLOCK is given.
 */
#ifndef MU_PAL_NET_H
#define MU_PAL_NET_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define PAL_NET_NONBLOCK 1u
#define PAL_NET_ADDR_MAX 160 /* bytes of an address string, NUL included */

/* Binds and listens on addr. A unix socket file that exists but that nobody listens on (left by
 * a process that died) is replaced; one that is live, or a path that is not a socket, is an
 * error. bound (may be NULL) gets the address actually bound, e.g. "tcp:127.0.0.1:40123". */
enum mu_err pal_listen(const char *addr, int backlog, int *fd, char *bound, size_t bound_cap,
		       struct mu_error *err);
/* Accepts one connection (flags: PAL_NET_NONBLOCK). MU_ERR_STATE when none is waiting. */
enum mu_err pal_accept(int lfd, unsigned flags, int *fd, struct mu_error *err);
/* Connects to addr within timeout_ms (0: the system's default). */
enum mu_err pal_connect(const char *addr, uint32_t timeout_ms, unsigned flags, int *fd, struct mu_error *err);
/* The peer for logs: "unix:pid=N,uid=N" (SO_PEERCRED) or "tcp:ADDR:PORT". Never fails: "?" */
void pal_peer_name(int fd, char *buf, size_t cap);
/* Removes the socket file of a unix: address (no-op for tcp:). */
void pal_unlink_addr(const char *addr);
/* Makes fd non-blocking (1) or blocking (0). */
enum mu_err pal_set_nonblock(int fd, int on, struct mu_error *err);

#endif
