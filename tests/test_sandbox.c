/* test_sandbox.c — the enclave's seccomp sandbox, one forked child per case.
 *
 * Each case runs in a child that sets up what it needs (pipes, sockets, threads), enters the
 * sandbox and then makes the calls under test; the parent judges the child by how it ended.
 * Allowed calls must work and the child exits 0. Forbidden calls must kill the child with
 * SIGSYS; in a sanitizer build the default action is EPERM instead, so there a child whose
 * forbidden call failed with EPERM (exit RC_EPERM) also passes. Foreign-ABI calls (x32, i386)
 * kill in every build.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "enclave/sandbox.h"
#include "engine/pool.h"
#include "pal/pal.h"
#include "test.h"

/* The same detection as src/enclave/sandbox.c: a sanitizer build refuses with EPERM. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer) || \
	__has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define TEST_SANITIZER 1
#endif
#endif
#ifndef TEST_SANITIZER
#define TEST_SANITIZER 0
#endif

/* How a case child exits. Small numbers (1..63) name the failed step of an allowed case. */
#define RC_OK 0
#define RC_EPERM 77    /* the forbidden call failed with EPERM (the sanitizer-build refusal) */
#define RC_RETURNED 78 /* the forbidden call went through: the filter let it pass */
#define RC_ENTER 79    /* hardening or mu_sandbox_enter failed */
#define RC_SETUP 80    /* setup before entering failed */

enum expect {
	EXPECT_OK,      /* exits 0 */
	EXPECT_REFUSED, /* SIGSYS; in sanitizer builds SIGSYS or RC_EPERM */
	EXPECT_SIGSYS,  /* SIGSYS in every build (foreign ABI) */
	EXPECT_SIGABRT, /* abort() still works inside */
};

static void enter(int allow_accept)
{
	struct mu_error e = {0};
	struct mu_sandbox_opts o = {.allow_accept = allow_accept};
	if (mu_sandbox_harden_early(&e) != MU_OK || mu_sandbox_enter(&o, &e) != MU_OK) {
		fprintf(stderr, "sandbox: %s\n", e.msg);
		_exit(RC_ENTER);
	}
}

/* A forbidden case writes one byte here just before its forbidden call, so the parent knows
 * the child died at that call and not at some earlier one. */
static int reached_fd = -1;

static void reached(void)
{
	if (write(reached_fd, "x", 1) != 1)
		_exit(RC_SETUP);
}

/* The verdict on a forbidden call that came back with result r (-1 and errno on failure). */
static int refused(long r)
{
	return r == -1 && errno == EPERM ? RC_EPERM : RC_RETURNED;
}

static void describe(int st, char *buf, size_t cap)
{
	if (WIFEXITED(st))
		snprintf(buf, cap, "exited with %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, cap, "status 0x%x", st);
}

static int wait_child(pid_t pid)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return st;
}

static void run_case(const char *name, int (*fn)(void), enum expect ex)
{
	int m[2];
	if (pipe(m) != 0) {
		CHECK(0, "%s: pipe: %s", name, strerror(errno));
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		CHECK(pid >= 0, "%s: fork: %s", name, strerror(errno));
		close(m[0]);
		close(m[1]);
		return;
	}
	if (pid == 0) {
		close(m[0]);
		reached_fd = m[1];
		alarm(20); /* a hung handshake ends as SIGALRM, not as a hung test */
		_exit(fn());
	}
	close(m[1]);
	int st = wait_child(pid);
	char c, how[96];
	int at_call = read(m[0], &c, 1) == 1;
	close(m[0]);
	describe(st, how, sizeof how);
	int sigsys = WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS;
	switch (ex) {
	case EXPECT_OK:
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: expected exit 0, %s", name, how);
		break;
	case EXPECT_REFUSED:
		if (TEST_SANITIZER)
			CHECK(at_call && (sigsys || (WIFEXITED(st) && WEXITSTATUS(st) == RC_EPERM)),
			      "%s: expected SIGSYS or EPERM (sanitizer build) at the forbidden call, %s%s", name,
			      how, at_call ? "" : " before reaching it");
		else
			CHECK(at_call && sigsys, "%s: expected SIGSYS at the forbidden call, %s%s", name, how,
			      at_call ? "" : " before reaching it");
		break;
	case EXPECT_SIGSYS:
		CHECK(at_call && sigsys, "%s: expected SIGSYS at the forbidden call, %s%s", name, how,
		      at_call ? "" : " before reaching it");
		break;
	case EXPECT_SIGABRT:
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "%s: expected SIGABRT, %s", name, how);
		break;
	}
}

/* ---- allowed ---- */

static int case_pipe_io(void)
{
	int p[2];
	char buf[16] = {0};
	if (pipe(p) != 0)
		return RC_SETUP;
	enter(0);
	if (write(p[1], "frame", 5) != 5)
		return 1;
	if (read(p[0], buf, sizeof buf) != 5 || memcmp(buf, "frame", 5) != 0)
		return 2;
	struct iovec out[2] = {{.iov_base = "hd", .iov_len = 2}, {.iov_base = "body", .iov_len = 4}};
	if (writev(p[1], out, 2) != 6)
		return 3;
	struct pollfd pf = {.fd = p[0], .events = POLLIN};
	if (poll(&pf, 1, 1000) != 1 || !(pf.revents & POLLIN))
		return 4;
	struct timespec ts = {.tv_sec = 1};
	if (ppoll(&pf, 1, &ts, NULL) != 1)
		return 5;
	char a[2], b[4];
	struct iovec in[2] = {{.iov_base = a, .iov_len = 2}, {.iov_base = b, .iov_len = 4}};
	if (readv(p[0], in, 2) != 6 || memcmp(a, "hd", 2) != 0 || memcmp(b, "body", 4) != 0)
		return 6;
	if (close(p[0]) != 0 || close(p[1]) != 0)
		return 7;
	return RC_OK;
}

static int case_socket_io(void)
{
	int s[2];
	char buf[8];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0)
		return RC_SETUP;
	enter(0);
	int fl = fcntl(s[1], F_GETFL);
	if (fl < 0 || fcntl(s[1], F_SETFL, fl | O_NONBLOCK) != 0)
		return 1;
	if (recv(s[1], buf, sizeof buf, 0) != -1 || errno != EAGAIN)
		return 2;
	if (send(s[0], "tok", 3, MSG_NOSIGNAL) != 3)
		return 3;
	if (recv(s[1], buf, sizeof buf, 0) != 3 || memcmp(buf, "tok", 3) != 0)
		return 4;
	if (shutdown(s[0], SHUT_WR) != 0)
		return 5;
	if (recv(s[1], buf, sizeof buf, 0) != 0) /* end of stream */
		return 6;
	close(s[0]);
	close(s[1]);
	return RC_OK;
}

static int case_memory(void)
{
	enter(0);
	size_t pg = 4096;
	uint8_t *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	memset(p, 0xa5, 4 * pg);
	if (mprotect(p, pg, PROT_READ) != 0 || mprotect(p, pg, PROT_READ | PROT_WRITE) != 0)
		return 2;
	if (madvise(p, 4 * pg, MADV_DONTNEED) != 0 || p[0] != 0)
		return 3;
	uint8_t *q = mremap(p, 4 * pg, 64 * pg, MREMAP_MAYMOVE);
	if (q == MAP_FAILED)
		return 4;
	q[63 * pg] = 1;
	if (munmap(q, 64 * pg) != 0)
		return 5;
	/* malloc: small blocks from the heap (brk), large ones mmap'd, realloc by mremap */
	char *small = malloc(100), *big = malloc(8u << 20);
	if (!small || !big)
		return 6;
	memset(big, 1, 8u << 20);
	char *bigger = realloc(big, 32u << 20);
	if (!bigger || bigger[(8u << 20) - 1] != 1)
		return 7;
	free(bigger);
	free(small);
	uint8_t *lk = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (lk == MAP_FAILED)
		return 8;
	/* mlock may be refused by the memlock limit (not an error here), never killed */
	if (mlock(lk, pg) == 0)
		munlock(lk, pg);
	munmap(lk, pg);
	return RC_OK;
}

static int case_secret_memory(void)
{
	struct pal_secret s1, s2;
	struct mu_error e = {0};
	enter(0);
	/* memfd_secret + ftruncate + mmap(MAP_SHARED) + close, or the fallback when the kernel
	 * lacks it: either way no call may be refused */
	if (pal_secret_alloc(&s1, 64, PAL_SECRET_ALLOW_UNLOCKED, &e) != MU_OK)
		return 1;
	memset(s1.data, 0x5a, 64);
	if (pal_secret_alloc(&s2, 3 * 4096, PAL_SECRET_NO_MEMFD | PAL_SECRET_ALLOW_UNLOCKED, &e) != MU_OK)
		return 2;
	memset(s2.data, 0x5a, 3 * 4096);
	pal_secret_free(&s1);
	pal_secret_free(&s2);
	return RC_OK;
}

static int case_time_entropy(void)
{
	uint8_t key[32] = {0}, zero[32] = {0};
	struct mu_error e = {0};
	enter(0);
	if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key || memcmp(key, zero, sizeof key) == 0)
		return 1;
	if (pal_random(key, sizeof key, &e) != MU_OK)
		return 2;
	struct timespec t0, t1, d = {.tv_nsec = 1000000};
	if (clock_gettime(CLOCK_MONOTONIC, &t0) != 0)
		return 3;
	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t1) != 0) /* the non-vDSO path */
		return 4;
	if (clock_nanosleep(CLOCK_MONOTONIC, 0, &d, NULL) != 0)
		return 5;
	if (nanosleep(&d, NULL) != 0)
		return 6;
	if (clock_gettime(CLOCK_MONOTONIC, &t1) != 0)
		return 7;
	int64_t ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
	if (ns < 2000000)
		return 8;
	if (sched_yield() != 0)
		return 9;
	uint32_t word = 7;
	if (syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) != 0)
		return 10;
	/* a wait on a changed value returns at once */
	if (syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 8, NULL, NULL, 0) != -1 || errno != EAGAIN)
		return 11;
	if (syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 8, NULL, NULL,
		    FUTEX_BITSET_MATCH_ANY) != -1 || errno != EAGAIN)
		return 12;
	return RC_OK;
}

static int case_stderr(void)
{
	int p[2];
	char buf[32] = {0};
	if (pipe(p) != 0 || dup2(p[1], 2) != 2)
		return RC_SETUP;
	enter(0);
	fprintf(stderr, "sandbox %d\n", 42);
	if (read(p[0], buf, sizeof buf - 1) != 11 || strcmp(buf, "sandbox 42\n") != 0)
		return 1;
	return RC_OK;
}

static int case_tgkill_self(void)
{
	enter(0);
	if (syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), 0) != 0)
		return 1;
	return RC_OK;
}

static int case_abort(void)
{
	enter(0);
	abort(); /* getpid, gettid, tgkill(self), rt_sigprocmask: must end in SIGABRT, not SIGSYS */
}

static int case_null_opts(void)
{
	struct mu_error e = {0};
	if (mu_sandbox_enter(NULL, &e) != MU_ERR_ARG || e.msg[0] == 0)
		return 1;
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 0)
		return 2; /* refused before anything was changed */
	return RC_OK;
}

static int case_read_implies_exec(void)
{
	struct mu_error e = {0};
	struct mu_sandbox_opts o = {0};
	if (personality(PER_LINUX | READ_IMPLIES_EXEC) == -1)
		return RC_SETUP;
	if (mu_sandbox_harden_early(&e) != MU_ERR_UNSUPPORTED)
		return 1;
	if (mu_sandbox_enter(&o, &e) != MU_ERR_UNSUPPORTED || prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0)
		return 2; /* refused, and nothing installed */
	return RC_OK;
}

static int case_harden_early(void)
{
	struct mu_error e = {0};
	if (mu_sandbox_harden_early(&e) != MU_OK)
		return RC_ENTER;
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		return 1;
	struct rlimit rl;
	if (getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 || rl.rlim_max != 0)
		return 2;
	/* hardening alone installs no filter */
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 0)
		return 3;
	return RC_OK;
}

/* A thread that exists before the filter is installed: it waits on a futex word for the main
 * thread's go, then does its work under whatever filter TSYNC gave it. */
struct worker {
	_Atomic uint32_t go;
	int forbidden; /* 0: allowed work; 1: try openat */
	int rc;
};

static uint32_t *word_of(_Atomic uint32_t *a)
{
	return (uint32_t *)(void *)a;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	while (atomic_load(&w->go) == 0)
		pal_wait(word_of(&w->go), 0);
	if (w->forbidden) {
		reached();
		w->rc = refused(syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY));
		return NULL;
	}
	/* this thread's first malloc makes its own arena: mmap(PROT_NONE) + mprotect(RW) */
	char *p = malloc(1000);
	uint8_t r[16];
	if (!p || getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
		w->rc = 1;
		return NULL;
	}
	memset(p, 1, 1000);
	free(p);
	w->rc = RC_OK;
	return NULL;
}

static int run_worker(int forbidden)
{
	struct worker w = {.forbidden = forbidden, .rc = -1};
	struct pal_thread *t;
	struct mu_error e = {0};
	if (pal_thread_create(&t, worker_main, &w, &e) != MU_OK)
		return RC_SETUP;
	enter(0);
	atomic_store(&w.go, 1);
	pal_wake_all(word_of(&w.go));
	pal_thread_join(t); /* futex wait on the thread's exit */
	return w.rc;
}

static int case_thread_ok(void)
{
	return run_worker(0);
}

static int case_thread_forbidden(void)
{
	return run_worker(1);
}

struct pool_job {
	_Atomic long sum;
};

static void pool_fn(void *ctx, int ith, int nth)
{
	struct pool_job *j = ctx;
	unsigned long b, e;
	mu_pool_split(1000, ith, nth, &b, &e);
	long s = 0;
	for (unsigned long i = b; i < e; i++)
		s += (long)i;
	atomic_fetch_add(&j->sum, s);
}

static int case_engine_pool(void)
{
	struct mu_pool *pool;
	struct mu_error e = {0};
	if (mu_pool_create(&pool, 4, &e) != MU_OK)
		return RC_SETUP;
	enter(0);
	for (int k = 0; k < 50; k++) {
		struct pool_job j = {0};
		mu_pool_run(pool, pool_fn, &j);
		if (atomic_load(&j.sum) != 999L * 1000 / 2)
			return 1;
		if (k % 10 == 0) {
			struct timespec d = {.tv_nsec = 2000000}; /* let the workers fall asleep */
			nanosleep(&d, NULL);
		}
	}
	mu_pool_destroy(pool); /* joins: thread exit and futex */
	return RC_OK;
}

/* A listening abstract unix socket (no file) with n clients already queued. */
static int listen_with_clients(int *lfd, int *cl, int n)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int len = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "mu-sandbox-test-%ld", (long)getpid());
	socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
	*lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (*lfd < 0 || bind(*lfd, (struct sockaddr *)&a, sl) != 0 || listen(*lfd, 4) != 0)
		return -1;
	for (int i = 0; i < n; i++) {
		cl[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		if (cl[i] < 0 || connect(cl[i], (struct sockaddr *)&a, sl) != 0)
			return -1;
	}
	return 0;
}

static int case_accept_allowed(void)
{
	int lfd, cl[2];
	char buf[8];
	if (listen_with_clients(&lfd, cl, 2) != 0)
		return RC_SETUP;
	enter(1);
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return 1;
	if (write(c, "hello", 5) != 5 || read(cl[0], buf, sizeof buf) != 5 || memcmp(buf, "hello", 5) != 0)
		return 2;
	int c2 = accept(lfd, NULL, NULL);
	if (c2 < 0)
		return 3;
	close(c);
	close(c2);
	return RC_OK;
}

/* ---- forbidden ---- */

static int case_accept_refused(void)
{
	int lfd, cl[1];
	if (listen_with_clients(&lfd, cl, 1) != 0)
		return RC_SETUP;
	enter(0);
	reached();
	return refused(accept4(lfd, NULL, NULL, SOCK_CLOEXEC));
}

static int case_openat(void)
{
	enter(0);
	reached();
	return refused(syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY));
}

static int case_open(void)
{
	enter(0);
	reached();
	return refused(syscall(SYS_open, "/proc/self/status", O_RDONLY));
}

static int case_creat(void)
{
	enter(0);
	reached();
	return refused(syscall(SYS_creat, "/tmp/mu-sandbox-must-not-exist", 0600));
}

static int case_execve(void)
{
	char *argv[] = {"true", NULL};
	char *envp[] = {NULL};
	enter(0);
	reached();
	return refused(syscall(SYS_execve, "/bin/true", argv, envp));
}

static int case_socket(void)
{
	enter(0);
	reached();
	return refused(syscall(SYS_socket, AF_INET, SOCK_STREAM, 0));
}

static int case_mmap_exec(void)
{
	enter(0);
	reached();
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return refused(p == MAP_FAILED ? -1 : 0);
}

static int case_mmap_exec_only(void)
{
	enter(0);
	reached();
	void *p = mmap(NULL, 4096, PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return refused(p == MAP_FAILED ? -1 : 0);
}

static int case_mprotect_exec(void)
{
	enter(0);
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	reached();
	return refused(mprotect(p, 4096, PROT_READ | PROT_EXEC));
}

static int case_pkey_mprotect(void)
{
	enter(0);
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	reached();
	return refused(syscall(SYS_pkey_mprotect, p, 4096, PROT_READ | PROT_EXEC, -1));
}

static int case_fork(void)
{
	enter(0);
	reached();
	pid_t c = fork();
	if (c == 0)
		_exit(RC_RETURNED);
	return refused(c);
}

static int case_clone(void)
{
	enter(0);
	reached();
	long r = syscall(SYS_clone, (unsigned long)SIGCHLD, 0, 0, 0, 0);
	if (r == 0)
		_exit(RC_RETURNED);
	return refused(r);
}

static int case_clone3(void)
{
	/* struct clone_args, version 0: flags, pidfd, child_tid, parent_tid, exit_signal, ... */
	uint64_t args[8] = {0};
	args[4] = SIGCHLD;
	enter(0);
	reached();
	long r = syscall(SYS_clone3, args, sizeof args);
	if (r == 0)
		_exit(RC_RETURNED);
	return refused(r);
}

static int case_unlinkat(void)
{
	enter(0);
	reached();
	return refused(syscall(SYS_unlinkat, AT_FDCWD, "/tmp/mu-sandbox-must-not-exist", 0));
}

static int case_ptrace(void)
{
	enter(0);
	reached();
	return refused(syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0));
}

static int case_prctl_dumpable(void)
{
	enter(0);
	reached();
	return refused(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)); /* cannot be undone from inside */
}

static int case_kill_parent(void)
{
	pid_t pp = getppid();
	enter(0);
	reached();
	return refused(syscall(SYS_kill, pp, 0));
}

static int case_tgkill_parent(void)
{
	pid_t pp = getppid();
	enter(0);
	reached();
	return refused(syscall(SYS_tgkill, pp, pp, 0));
}

static int case_fcntl_dupfd(void)
{
	enter(0);
	reached();
	return refused(fcntl(2, F_DUPFD, 10));
}

static int case_futex_requeue(void)
{
	uint32_t a = 0, b = 0;
	enter(0);
	reached();
	return refused(syscall(SYS_futex, &a, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, &b, 0));
}

static int case_futex_pi(void)
{
	uint32_t a = 0;
	enter(0);
	reached();
	return refused(syscall(SYS_futex, &a, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0));
}

static int case_sendto_addr(void)
{
	int s[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, s) != 0)
		return RC_SETUP;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, "\0mu-sandbox-nowhere", 19);
	enter(0);
	reached();
	return refused(sendto(s[0], "x", 1, 0, (struct sockaddr *)&a,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 19)));
}

static int case_recvmsg(void)
{
	int s[2];
	char buf[4];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0 || write(s[0], "x", 1) != 1)
		return RC_SETUP;
	struct iovec v = {.iov_base = buf, .iov_len = sizeof buf};
	struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
	enter(0);
	reached();
	return refused(recvmsg(s[1], &m, 0)); /* could receive descriptors (SCM_RIGHTS) */
}

static int case_stat_path(void)
{
	struct stat st;
	enter(0);
	reached();
	return refused(stat("/etc/passwd", &st));
}

static int case_x32(void)
{
	enter(0);
	reached();
	return refused(syscall(__X32_SYSCALL_BIT | SYS_getpid));
}

/* getpid through the i386 entry point (int $0x80), which seccomp sees as AUDIT_ARCH_I386. */
static long int80_getpid(void)
{
	long r = 20; /* __NR_getpid on i386 */
	__asm__ volatile("int $0x80"
			 : "+a"(r)
			 :
			 : "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
			   "r15", "memory", "cc");
	return r;
}

static int case_i386_probe(void)
{
	/* without IA32 emulation int $0x80 faults; a sanitizer would report that on stderr */
	int null = open("/dev/null", O_WRONLY);
	if (null >= 0)
		dup2(null, 2);
	return int80_getpid() == (long)getpid() ? RC_OK : 1;
}

static int case_i386(void)
{
	enter(0);
	reached();
	return refused(int80_getpid() == (long)getpid() ? 0 : -1);
}

/* ---- the view from outside: /proc/<pid>/status of a sandboxed child ---- */

static long status_field(const char *status, const char *key)
{
	char pat[40];
	snprintf(pat, sizeof pat, "\n%s:", key);
	const char *p = strstr(status, pat);
	return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

static void test_proc_status(void)
{
	int ready[2], go[2];
	if (pipe(ready) != 0 || pipe(go) != 0) {
		CHECK(0, "pipe: %s", strerror(errno));
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		alarm(20);
		close(ready[0]);
		close(go[1]);
		enter(0);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		_exit(read(go[0], &c, 1) == 0 ? RC_OK : 2); /* parent closes: EOF */
	}
	close(ready[1]);
	close(go[0]);
	char c, path[64], status[4096] = {0};
	CHECK(read(ready[0], &c, 1) == 1, "sandboxed child did not report in");
	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL, "%s: %s", path, strerror(errno));
	if (f) {
		size_t n = fread(status, 1, sizeof status - 1, f);
		status[n] = 0;
		fclose(f);
		CHECK_EQ_INT(status_field(status, "NoNewPrivs"), 1);
		CHECK_EQ_INT(status_field(status, "Seccomp"), 2);
		CHECK_EQ_INT(status_field(status, "Seccomp_filters"), 1);
		/* A non-dumpable process's /proc files belong to root; only visible when not root. */
		struct stat st;
		if (geteuid() != 0)
			CHECK(stat(path, &st) == 0 && st.st_uid == 0, "sandboxed child is still dumpable");
	}
	close(go[1]);
	close(ready[0]);
	int st = wait_child(pid);
	char how[96];
	describe(st, how, sizeof how);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status child: %s", how);
}

/* ---- the published list ---- */

static int listed(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

static void test_allowed_list(void)
{
	size_t n = 0;
	const char *const *names = mu_sandbox_allowed(&n);
	CHECK(names != NULL && n >= 20 && n < 64, "allow-list has %zu names", n);
	if (!names)
		return;
	static const char *const must[] = {"read", "write", "futex", "mmap", "mprotect", "getrandom",
					   "clock_nanosleep", "accept4", "memfd_secret", "exit_group"};
	static const char *const never[] = {"open", "openat", "openat2", "creat", "execve", "execveat",
					    "socket", "connect", "bind", "listen", "fork", "vfork",
					    "clone", "clone3", "ptrace", "process_vm_readv",
					    "process_vm_writev", "unlink", "unlinkat", "rename", "renameat2",
					    "mkdir", "chmod", "chown", "truncate", "prctl", "seccomp",
					    "recvmsg", "sendmsg", "kill", "newfstatat", "ioctl"};
	for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
		CHECK(listed(names, n, must[i]), "%s missing from the allow-list", must[i]);
	for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
		CHECK(!listed(names, n, never[i]), "%s must not be on the allow-list", never[i]);
	int dup = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			dup |= strcmp(names[i], names[j]) == 0;
	CHECK(!dup, "the allow-list names a call twice");
	CHECK(mu_sandbox_allowed(NULL) == names, "mu_sandbox_allowed(NULL) must not fail");
}

int main(void)
{
	test_allowed_list();

	run_case("harden_early", case_harden_early, EXPECT_OK);
	run_case("enter(NULL)", case_null_opts, EXPECT_OK);
	run_case("READ_IMPLIES_EXEC is refused", case_read_implies_exec, EXPECT_OK);
	test_proc_status();

	/* allowed */
	run_case("pipe read/write/readv/writev/poll/ppoll/close", case_pipe_io, EXPECT_OK);
	run_case("socket send/recv/shutdown/fcntl(O_NONBLOCK)", case_socket_io, EXPECT_OK);
	run_case("mmap/mprotect/mremap/madvise/munmap/malloc/mlock", case_memory, EXPECT_OK);
	run_case("secret memory (memfd_secret or mlock)", case_secret_memory, EXPECT_OK);
	run_case("getrandom/clocks/sleeps/futex", case_time_entropy, EXPECT_OK);
	run_case("fprintf(stderr)", case_stderr, EXPECT_OK);
	run_case("tgkill(self, 0)", case_tgkill_self, EXPECT_OK);
	run_case("abort()", case_abort, EXPECT_SIGABRT);
	run_case("thread from before entering works (TSYNC)", case_thread_ok, EXPECT_OK);
	run_case("engine pool from before entering", case_engine_pool, EXPECT_OK);
	run_case("accept4/accept with allow_accept", case_accept_allowed, EXPECT_OK);

	/* forbidden */
	run_case("thread from before entering is filtered (TSYNC)", case_thread_forbidden, EXPECT_REFUSED);
	run_case("accept4 without allow_accept", case_accept_refused, EXPECT_REFUSED);
	run_case("openat", case_openat, EXPECT_REFUSED);
	run_case("open", case_open, EXPECT_REFUSED);
	run_case("creat", case_creat, EXPECT_REFUSED);
	run_case("execve", case_execve, EXPECT_REFUSED);
	run_case("socket", case_socket, EXPECT_REFUSED);
	run_case("mmap PROT_READ|PROT_EXEC", case_mmap_exec, EXPECT_REFUSED);
	run_case("mmap PROT_EXEC", case_mmap_exec_only, EXPECT_REFUSED);
	run_case("mprotect to PROT_EXEC", case_mprotect_exec, EXPECT_REFUSED);
	run_case("pkey_mprotect", case_pkey_mprotect, EXPECT_REFUSED);
	run_case("fork", case_fork, EXPECT_REFUSED);
	run_case("clone", case_clone, EXPECT_REFUSED);
	run_case("clone3", case_clone3, EXPECT_REFUSED);
	run_case("unlinkat", case_unlinkat, EXPECT_REFUSED);
	run_case("ptrace", case_ptrace, EXPECT_REFUSED);
	run_case("prctl(PR_SET_DUMPABLE, 1)", case_prctl_dumpable, EXPECT_REFUSED);
	run_case("kill(parent)", case_kill_parent, EXPECT_REFUSED);
	run_case("tgkill(parent)", case_tgkill_parent, EXPECT_REFUSED);
	run_case("fcntl(F_DUPFD)", case_fcntl_dupfd, EXPECT_REFUSED);
	run_case("futex CMP_REQUEUE", case_futex_requeue, EXPECT_REFUSED);
	run_case("futex LOCK_PI", case_futex_pi, EXPECT_REFUSED);
	run_case("sendto with an address", case_sendto_addr, EXPECT_REFUSED);
	run_case("recvmsg", case_recvmsg, EXPECT_REFUSED);
	run_case("stat(path)", case_stat_path, EXPECT_REFUSED);
	run_case("x32 ABI", case_x32, EXPECT_SIGSYS);

	/* The i386 entry point exists only where the kernel has IA32 emulation. */
	fflush(stdout);
	pid_t probe = fork();
	if (probe == 0)
		_exit(case_i386_probe());
	int st = probe > 0 ? wait_child(probe) : -1;
	if (probe > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		run_case("i386 ABI (int $0x80)", case_i386, EXPECT_SIGSYS);
	else
		printf("note: no IA32 emulation in this kernel; the i386 case is skipped\n");

	return test_done();
}
