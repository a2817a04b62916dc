/* serve.h — what the long-running host servers (the key broker, the proxy) share. */
#ifndef MU_HOST_SERVE_H
#define MU_HOST_SERVE_H

#include <signal.h>

#include "base/err.h"

/* Blocks SIGINT and SIGTERM (the old mask goes to *old, to restore on exit), ignores SIGPIPE
 * and returns a non-blocking signalfd that becomes readable when one of them arrives. */
enum mu_err host_stop_signalfd(int *sfd, sigset_t *old, struct mu_error *err);

#endif
