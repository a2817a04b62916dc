/* sandbox.c — the enclave's seccomp allow-list (docs/sandbox.md).
 *
 * The filter is classic BPF, written out here rather than through libseccomp. Its shape:
 *
 *     A = arch;  arch != AUDIT_ARCH_X86_64            -> KILL_PROCESS
 *     A = nr;    nr >= __X32_SYSCALL_BIT (x32 ABI)     -> KILL_PROCESS
 *     for each rule:  nr != rule.nr -> next rule
 *                     [argument check: failed          -> default action]
 *                     ALLOW
 *     default action (KILL_PROCESS; ERRNO(EPERM) in sanitizer builds)
 *
 * Every rule's body ends in a return, so A still holds the syscall number whenever the next
 * rule's compare is reached, and every jump is local to one rule (classic BPF jump offsets are
 * 8 bits). Since Linux 5.11 the kernel caches the verdict of syscalls that a filter allows
 * whatever their arguments, so the plain entries cost nothing per call; the few entries with an
 * argument check run a handful of instructions.
 *
 * The allow-list is one table, SANDBOX_CALLS below: the filter is built from it and
 * mu_sandbox_allowed() returns its names.
 */
#define _GNU_SOURCE
#include "enclave/sandbox.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__linux__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The x32 ABI's syscall-number bit (kernel UAPI, asm/unistd.h). glibc's <sys/syscall.h> pulls it
 * in; musl's (the static enclave) does not. */
#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif
#endif

/* Sanitizer builds get EPERM instead of a kill as the default action (see sandbox.h). gcc
 * defines __SANITIZE_ADDRESS__ / __SANITIZE_THREAD__ but nothing for -fsanitize=undefined
 * alone; clang answers __has_feature for each. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer) || \
	__has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif
#ifndef SANDBOX_SANITIZER
#define SANDBOX_SANITIZER 0
#endif

/* How a rule looks at the arguments before it allows the call. Anything it refuses gets the
 * default action, like an unlisted call. Only low 32-bit words are compared where the kernel
 * itself reads the argument as 32 bits (int, unsigned int) or ignores the upper bits. */
enum sandbox_check {
	CHECK_NONE,      /* allowed whatever the arguments */
	CHECK_NO_EXEC,   /* mmap, mprotect: the prot argument (2) must not contain PROT_EXEC */
	CHECK_FUTEX_OP,  /* futex: op (1) without its PRIVATE and CLOCK_REALTIME flags must be
	                    WAIT, WAKE, WAIT_BITSET or WAKE_BITSET (no requeue, no PI, no WAKE_OP) */
	CHECK_FCNTL_FL,  /* fcntl: cmd (1) must be F_GETFL or F_SETFL (O_NONBLOCK on the channel) */
	CHECK_OWN_TGID,  /* tgkill: tgid (0) must be this process (abort() signals itself only) */
	CHECK_NO_ADDR,   /* sendto: dest_addr (4) must be NULL (send on the connected channel) */
};

/* When a rule is part of the filter. */
enum sandbox_when {
	WHEN_ALWAYS,
	WHEN_ACCEPT, /* only with mu_sandbox_opts.allow_accept (process mode) */
};

/* The allow-list: X(name, check, when). The reason for each entry is its comment; the same
 * reasons, in full sentences, are the table in docs/sandbox.md. Only the x86_64 system call
 * numbers (__NR_name) are used; the names themselves are never macro-expanded. */
#define SANDBOX_CALLS(X)                                                                       \
	/* the channel and stderr: already-open descriptors */                                 \
	X(read, CHECK_NONE, WHEN_ALWAYS)          /* frames in */                                \
	X(write, CHECK_NONE, WHEN_ALWAYS)         /* frames out; fprintf(stderr) */               \
	X(readv, CHECK_NONE, WHEN_ALWAYS)         /* scatter reads on the same descriptors */     \
	X(writev, CHECK_NONE, WHEN_ALWAYS)        /* header + body in one call */                  \
	X(recvfrom, CHECK_NONE, WHEN_ALWAYS)      /* recv() on the channel socket */               \
	X(sendto, CHECK_NO_ADDR, WHEN_ALWAYS)     /* send() on the channel socket */               \
	X(poll, CHECK_NONE, WHEN_ALWAYS)          /* read timeouts, idle waits */                  \
	X(ppoll, CHECK_NONE, WHEN_ALWAYS)         /* the same with a signal mask */                \
	X(fcntl, CHECK_FCNTL_FL, WHEN_ALWAYS)     /* O_NONBLOCK on a channel */                    \
	X(shutdown, CHECK_NONE, WHEN_ALWAYS)      /* half-close a channel */                       \
	X(close, CHECK_NONE, WHEN_ALWAYS)         /* a closed channel, a memfd_secret */           \
	X(accept4, CHECK_NONE, WHEN_ACCEPT)       /* process mode: the next proxy connection */    \
	X(accept, CHECK_NONE, WHEN_ACCEPT)        /* the same without flags */                     \
	/* the engine's thread pool */                                                          \
	X(futex, CHECK_FUTEX_OP, WHEN_ALWAYS)     /* pool wait/wake, mutexes, pthread_join */      \
	X(sched_yield, CHECK_NONE, WHEN_ALWAYS)   /* spin loops that give way */                   \
	X(rseq, CHECK_NONE, WHEN_ALWAYS)          /* a pool thread still starting registers it */  \
	X(set_robust_list, CHECK_NONE, WHEN_ALWAYS) /* the same thread's start, next step */      \
	/* time and entropy */                                                                  \
	X(clock_gettime, CHECK_NONE, WHEN_ALWAYS) /* vDSO fallback */                              \
	X(clock_nanosleep, CHECK_NONE, WHEN_ALWAYS) /* the egress limiter sleeps */                \
	X(nanosleep, CHECK_NONE, WHEN_ALWAYS)     /* the same, older interface */                  \
	X(restart_syscall, CHECK_NONE, WHEN_ALWAYS) /* a sleep resumed after SIGSTOP/SIGCONT */    \
	X(getrandom, CHECK_NONE, WHEN_ALWAYS)     /* fresh X25519 keys on re-attestation */        \
	/* memory */                                                                            \
	X(mmap, CHECK_NO_EXEC, WHEN_ALWAYS)       /* malloc, secret memory; never executable */    \
	X(mprotect, CHECK_NO_EXEC, WHEN_ALWAYS)   /* malloc's thread arenas grow; never exec */    \
	X(munmap, CHECK_NONE, WHEN_ALWAYS)        /* free */                                       \
	X(mremap, CHECK_NONE, WHEN_ALWAYS)        /* realloc of large blocks */                    \
	X(brk, CHECK_NONE, WHEN_ALWAYS)           /* malloc's main arena */                        \
	X(madvise, CHECK_NONE, WHEN_ALWAYS)       /* free, DONTDUMP, WIPEONFORK, huge pages */     \
	X(mlock, CHECK_NONE, WHEN_ALWAYS)         /* secret memory stays in RAM */                 \
	X(mlock2, CHECK_NONE, WHEN_ALWAYS)        /* the same, MLOCK_ONFAULT */                    \
	X(munlock, CHECK_NONE, WHEN_ALWAYS)       /* secret memory freed */                        \
	X(memfd_secret, CHECK_NONE, WHEN_ALWAYS)  /* secret memory for new keys */                 \
	X(ftruncate, CHECK_NONE, WHEN_ALWAYS)     /* sizes a new memfd_secret */                   \
	/* signals, exit and abort */                                                          \
	X(rt_sigreturn, CHECK_NONE, WHEN_ALWAYS)  /* return from a signal handler */               \
	X(rt_sigprocmask, CHECK_NONE, WHEN_ALWAYS) /* abort(), raise(), thread exit */             \
	X(getpid, CHECK_NONE, WHEN_ALWAYS)        /* abort() -> raise() */                         \
	X(gettid, CHECK_NONE, WHEN_ALWAYS)        /* abort() -> raise() */                         \
	X(tgkill, CHECK_OWN_TGID, WHEN_ALWAYS)    /* abort() -> raise(), to itself only */         \
	X(exit, CHECK_NONE, WHEN_ALWAYS)          /* a pool thread ends */                         \
	X(exit_group, CHECK_NONE, WHEN_ALWAYS)    /* the process ends */

/* ASan's own bookkeeping when a thread starts (its stack bounds via pthread_getattr_np, which
 * asks for the CPU affinity; an alternate signal stack) and ends (that stack torn down) treats
 * a failed call as fatal. glibc alone needs neither after startup, so release builds leave
 * them out. */
#if SANDBOX_SANITIZER
#define SANDBOX_SANITIZER_CALLS(X)                                                             \
	X(sigaltstack, CHECK_NONE, WHEN_ALWAYS)                                                \
	X(sched_getaffinity, CHECK_NONE, WHEN_ALWAYS)
#else
#define SANDBOX_SANITIZER_CALLS(X)
#endif

#define SANDBOX_NAME(name, check, when) #name,
static const char *const sandbox_names[] = {SANDBOX_CALLS(SANDBOX_NAME) SANDBOX_SANITIZER_CALLS(SANDBOX_NAME)};
#define SANDBOX_N (sizeof sandbox_names / sizeof sandbox_names[0])

const char *const *mu_sandbox_allowed(size_t *n)
{
	if (n)
		*n = SANDBOX_N;
	return sandbox_names;
}

#if defined(__linux__) && defined(__x86_64__)

#ifndef __NR_memfd_secret
#define __NR_memfd_secret 447 /* Linux 5.14; headers older than the kernel */
#endif

struct sandbox_rule {
	uint32_t nr;
	enum sandbox_check check;
	enum sandbox_when when;
};

#define SANDBOX_RULE(name, chk, wh) {.nr = __NR_##name, .check = (chk), .when = (wh)},
static const struct sandbox_rule sandbox_rules[] = {SANDBOX_CALLS(SANDBOX_RULE) SANDBOX_SANITIZER_CALLS(SANDBOX_RULE)};
_Static_assert(sizeof sandbox_rules / sizeof sandbox_rules[0] == SANDBOX_N, "one name per rule");

#if SANDBOX_SANITIZER
#define SANDBOX_DEFAULT (SECCOMP_RET_ERRNO | ((uint32_t)EPERM & SECCOMP_RET_DATA))
#else
#define SANDBOX_DEFAULT SECCOMP_RET_KILL_PROCESS
#endif

/* seccomp_data.args[i] is 64 bits; classic BPF loads 32. x86_64 is little-endian, so the low
 * word sits at the argument's offset and the high word 4 bytes later. */
#define ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + 8u * (i)))
#define ARG_HI(i) (ARG_LO(i) + 4u)

/* Room for every rule's longest body (8 instructions) plus the prologue and the default. */
#define SANDBOX_MAX_INS (8 + 8 * SANDBOX_N + 1)

struct sandbox_prog {
	struct sock_filter ins[SANDBOX_MAX_INS];
	size_t n;
};

static void emit(struct sandbox_prog *p, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
	/* The bound is a compile-time fact about the table; see SANDBOX_MAX_INS. */
	if (p->n < SANDBOX_MAX_INS)
		p->ins[p->n] = (struct sock_filter){.code = code, .jt = jt, .jf = jf, .k = k};
	p->n++;
}

static void emit_ret(struct sandbox_prog *p, uint32_t action)
{
	emit(p, BPF_RET | BPF_K, 0, 0, action);
}

/* A = low word of argument arg; allow when A & mask is one of vals[0..n), else deny. */
static void emit_allow_in(struct sandbox_prog *p, unsigned arg, uint32_t mask, const uint32_t *vals, size_t n)
{
	emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(arg));
	if (mask != UINT32_MAX)
		emit(p, BPF_ALU | BPF_AND | BPF_K, 0, 0, mask);
	for (size_t i = 0; i < n; i++) {
		/* a match jumps over the remaining compares to the ALLOW; the last miss to the deny */
		int last = i + 1 == n;
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, (uint8_t)(n - 1 - i), last ? 1 : 0, vals[i]);
	}
	emit_ret(p, SECCOMP_RET_ALLOW);
	emit_ret(p, SANDBOX_DEFAULT);
}

/* The body of one rule: every path ends in a return. */
static void emit_body(struct sandbox_prog *p, enum sandbox_check check, uint32_t tgid)
{
	switch (check) {
	case CHECK_NONE:
		emit_ret(p, SECCOMP_RET_ALLOW);
		return;
	case CHECK_NO_EXEC:
		/* prot & PROT_EXEC -> deny. The kernel ignores prot bits it does not know, so the
		 * low word decides. */
		emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(2));
		emit(p, BPF_JMP | BPF_JSET | BPF_K, 0, 1, PROT_EXEC);
		emit_ret(p, SANDBOX_DEFAULT);
		emit_ret(p, SECCOMP_RET_ALLOW);
		return;
	case CHECK_FUTEX_OP: {
		static const uint32_t ops[] = {FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET};
		emit_allow_in(p, 1, ~(uint32_t)(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME), ops, 4);
		return;
	}
	case CHECK_FCNTL_FL: {
		static const uint32_t cmds[] = {F_GETFL, F_SETFL};
		emit_allow_in(p, 1, UINT32_MAX, cmds, 2);
		return;
	}
	case CHECK_OWN_TGID:
		emit_allow_in(p, 0, UINT32_MAX, &tgid, 1);
		return;
	case CHECK_NO_ADDR:
		/* both words of the pointer must be zero */
		emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(4));
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0);
		emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_HI(4));
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0);
		emit_ret(p, SECCOMP_RET_ALLOW);
		emit_ret(p, SANDBOX_DEFAULT);
		return;
	}
	emit_ret(p, SANDBOX_DEFAULT); /* an unknown check allows nothing */
}

static enum mu_err sandbox_build(struct sandbox_prog *p, int allow_accept, uint32_t tgid, struct mu_error *err)
{
	p->n = 0;
	emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)offsetof(struct seccomp_data, arch));
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, AUDIT_ARCH_X86_64);
	emit_ret(p, SECCOMP_RET_KILL_PROCESS);
	emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)offsetof(struct seccomp_data, nr));
	emit(p, BPF_JMP | BPF_JGE | BPF_K, 0, 1, __X32_SYSCALL_BIT);
	emit_ret(p, SECCOMP_RET_KILL_PROCESS);

	for (size_t i = 0; i < SANDBOX_N; i++) {
		const struct sandbox_rule *r = &sandbox_rules[i];
		if (r->when == WHEN_ACCEPT && !allow_accept)
			continue;
		size_t at = p->n;
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, r->nr);
		emit_body(p, r->check, tgid);
		size_t body = p->n - at - 1;
		if (body > 255 || p->n > SANDBOX_MAX_INS)
			return mu_errf(err, MU_ERR_INTERNAL, "sandbox filter for %s does not fit (%zu instructions)",
				       sandbox_names[i], p->n);
		p->ins[at].jf = (uint8_t)body; /* a different syscall skips this rule's body */
	}
	emit_ret(p, SANDBOX_DEFAULT);
	if (p->n > SANDBOX_MAX_INS || p->n > BPF_MAXINSNS)
		return mu_errf(err, MU_ERR_INTERNAL, "sandbox filter does not fit (%zu instructions)", p->n);
	return MU_OK;
}

/* READ_IMPLIES_EXEC (setarch -X) makes every readable mapping executable, which would turn
 * the PROT_EXEC check into nothing; whoever starts the enclave must not be able to do that. */
static enum mu_err check_personality(struct mu_error *err)
{
	int pers = personality(0xffffffff);
	if (pers == -1)
		return mu_errf(err, MU_ERR_IO, "cannot read the process personality: %s", strerror(errno));
	if (pers & READ_IMPLIES_EXEC)
		return mu_errf(err, MU_ERR_UNSUPPORTED,
			       "the enclave was started with READ_IMPLIES_EXEC (setarch -X): every readable "
			       "page would be executable; start it without that personality flag");
	return MU_OK;
}

enum mu_err mu_sandbox_harden_early(struct mu_error *err)
{
	/* Not dumpable: no core file, and same-uid processes can neither ptrace us nor read
	 * /proc/<pid>/mem. Set before any key or weight exists. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return mu_errf(err, MU_ERR_IO, "cannot make the process non-dumpable: %s", strerror(errno));
	/* Both limits 0, so a later bug cannot raise the soft limit again. */
	struct rlimit rl = {.rlim_cur = 0, .rlim_max = 0};
	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		return mu_errf(err, MU_ERR_IO, "cannot set the core-file size limit to 0: %s", strerror(errno));
	return check_personality(err);
}

enum mu_err mu_sandbox_enter(const struct mu_sandbox_opts *o, struct mu_error *err)
{
	struct sandbox_prog prog;
	enum mu_err rc;

	if (!o)
		return mu_errf(err, MU_ERR_ARG, "mu_sandbox_enter: no options given");
	rc = check_personality(err);
	if (rc)
		return rc;
	rc = sandbox_build(&prog, o->allow_accept != 0, (uint32_t)getpid(), err);
	if (rc)
		return rc;

	/* KILL_PROCESS (Linux 4.14) is what makes a refusal end every thread, not just one. */
	uint32_t action = SECCOMP_RET_KILL_PROCESS;
	if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) != 0)
		return mu_errf(err, MU_ERR_UNSUPPORTED,
			       "the kernel cannot kill a whole process from seccomp (%s); Linux 4.14 or later is needed",
			       strerror(errno));

	/* Again, in case something since harden_early made us dumpable (a setuid change does). */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return mu_errf(err, MU_ERR_IO, "cannot make the process non-dumpable: %s", strerror(errno));
	/* Required for an unprivileged filter; also means no exec could ever gain privileges. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return mu_errf(err, MU_ERR_IO, "cannot set no_new_privs: %s", strerror(errno));

	struct sock_fprog fprog = {.len = (unsigned short)prog.n, .filter = prog.ins};
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog);
	if (r > 0)
		return mu_errf(err, MU_ERR_STATE,
			       "thread %ld could not take the sandbox filter (it runs under another filter); "
			       "no filter was installed",
			       r);
	if (r < 0) {
		int e = errno;
		if (e == ENOSYS || e == EINVAL)
			return mu_errf(err, MU_ERR_UNSUPPORTED,
				       "the kernel refused the seccomp filter (%s); Linux with seccomp filters and "
				       "TSYNC (3.17 or later) is needed",
				       strerror(e));
		return mu_errf(err, MU_ERR_IO, "cannot install the seccomp filter: %s", strerror(e));
	}
	return MU_OK;
}

enum mu_err mu_sandbox_dump(FILE *f, int allow_accept, struct mu_error *err)
{
	struct sandbox_prog prog;
	enum mu_err rc = sandbox_build(&prog, allow_accept != 0, (uint32_t)getpid(), err);
	if (rc)
		return rc;
	fprintf(f, "mu-sandbox-filter 1\nmode %s\ndefault %s\n", allow_accept ? "process" : "vm",
		SANDBOX_SANITIZER ? "errno" : "kill-process");
	for (size_t i = 0; i < SANDBOX_N; i++)
		if (sandbox_rules[i].when != WHEN_ACCEPT || allow_accept)
			fprintf(f, "rule %u %s\n", (unsigned)sandbox_rules[i].nr, sandbox_names[i]);
	for (size_t i = 0; i < prog.n; i++)
		fprintf(f, "ins %u %u %u %u\n", (unsigned)prog.ins[i].code, (unsigned)prog.ins[i].jt,
			(unsigned)prog.ins[i].jf, (unsigned)prog.ins[i].k);
	fprintf(f, "end\n");
	if (fflush(f) != 0 || ferror(f))
		return mu_errf(err, MU_ERR_IO, "cannot write the sandbox filter: %s", strerror(errno));
	return MU_OK;
}

#else /* not Linux x86_64 */

enum mu_err mu_sandbox_dump(FILE *f, int allow_accept, struct mu_error *err)
{
	(void)f;
	(void)allow_accept;
	return mu_errf(err, MU_ERR_UNSUPPORTED, "the enclave sandbox is implemented for Linux x86_64 only");
}

enum mu_err mu_sandbox_harden_early(struct mu_error *err)
{
	return mu_errf(err, MU_ERR_UNSUPPORTED, "the enclave sandbox is implemented for Linux x86_64 only");
}

enum mu_err mu_sandbox_enter(const struct mu_sandbox_opts *o, struct mu_error *err)
{
	(void)o;
	return mu_errf(err, MU_ERR_UNSUPPORTED, "the enclave sandbox is implemented for Linux x86_64 only");
}

#endif
