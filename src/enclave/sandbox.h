/* sandbox.h — what the enclave gives up once its model is loaded (docs/sandbox.md).
 *
 *   mu_sandbox_harden_early()  at startup, before any secret exists: not dumpable (no core
 *                              dumps, no ptrace by same-uid processes), RLIMIT_CORE 0.
 *   mu_sandbox_enter()         after the model is loaded: PR_SET_NO_NEW_PRIVS, then a seccomp
 *                              BPF allow-list installed on every thread (TSYNC). Everything not
 *                              listed kills the process (SECCOMP_RET_KILL_PROCESS); so do a
 *                              foreign architecture or the x32 ABI. No open, no exec, no new
 *                              sockets, no file writes: write(2) is allowed only because the
 *                              channel and stderr are already-open descriptors.
 *
 * Sanitizer builds (ASan/UBSan need a few more system calls for their reports) install the
 * same list with SECCOMP_RET_ERRNO(EPERM) as the default instead of a kill, so a report can
 * still be printed; the release build always kills.
 */
#ifndef MU_ENCLAVE_SANDBOX_H
#define MU_ENCLAVE_SANDBOX_H

#include <stddef.h>
#include <stdio.h>

#include "base/err.h"

struct mu_sandbox_opts {
	int allow_accept; /* process mode: accept4 on the already-listening channel socket */
};

enum mu_err mu_sandbox_harden_early(struct mu_error *err);
enum mu_err mu_sandbox_enter(const struct mu_sandbox_opts *o, struct mu_error *err);

/* The allowed system calls by name, for docs/sandbox.md and the attack-surface report. */
const char *const *mu_sandbox_allowed(size_t *n);

/* Writes the filter mu_sandbox_enter would install (process mode when allow_accept) as text,
 * for `mu surface` (docs/attack-surface.md), which runs the classic BPF program itself for every
 * system call number rather than trusting the names:
 *
 *   mu-sandbox-filter 1
 *   mode process|vm
 *   default kill-process|errno        (errno: a sanitizer build)
 *   rule NR NAME                      one per allow-list entry of this mode
 *   ins CODE JT JF K                  the program, one instruction per line, decimal
 *   end
 *
 * The tgkill rule compares with this process's id. */
enum mu_err mu_sandbox_dump(FILE *f, int allow_accept, struct mu_error *err);

#endif
