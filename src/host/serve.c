/* serve.c — what the long-running host servers (the key broker, the proxy) share. */
#define _GNU_SOURCE
#include "host/serve.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>

enum mu_err host_stop_signalfd(int *sfd, sigset_t *old, struct mu_error *err)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, old);
	/* a shell starts background jobs with SIGINT ignored, and an ignored signal never reaches
	 * the signalfd; while blocked, the default action cannot run either */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	*sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (*sfd < 0)
		return mu_errf(err, MU_ERR_IO, "signalfd: %s", strerror(errno));
	return MU_OK;
}
