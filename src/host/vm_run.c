/* vm_run.c — `mu vm run` (host/vm.h): checks the image, the config and the model, picks the
 * accelerator (a probe boot under KVM when asked for auto), starts QEMU with fork and execvp
 * (no shell), copies the guest console, reports when the enclave listens, and stops QEMU on
 * SIGINT/SIGTERM/SIGHUP. QEMU never outlives mu vm run: it is killed on every way out, and
 * PR_SET_PDEATHSIG kills it if mu itself dies.
 *
 * The VM has no network device by construction: -nodefaults removes QEMU's default NIC, and
 * the command line built here names no -netdev, -nic or -net. Its only ways out are the serial
 * console (read here) and the virtio-serial port, whose host end is the Unix socket given with
 * --channel (mu proxy connects to it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/limits.h"
#include "host/vm.h"
#include "pal/pal.h"
#include "wire/json.h"

/* PCI slots of the VM's devices. The guest finds the channel by its port name
 * (/dev/virtio-ports/mu.channel, linked by the enclave as PID 1), whatever its vport<N>p<M>
 * number; the serial controller still takes the lowest slot, so that number is the same
 * /dev/vport0p1 on every boot. The disks are named by virtio-blk's own count, so the model
 * (first disk) is /dev/vda and the config /dev/vdb. */
#define VM_PCI_SERIAL "0x3"
#define VM_PCI_MODEL "0x4"
#define VM_PCI_CONFIG "0x5"
#define VM_PROBE_MEMORY_MIB 512u
#define VM_LINE_MAX 4096u
#define VM_READY_PREFIX "mu-enclave: listening on dev:"
#define VM_PROBE_ANSWER "usage: mu-enclave"

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* ---- sizes and the config ---- */

uint32_t mu_vm_default_memory(uint64_t model_bytes)
{
	/* ceil(1.25 * bytes / 2^20) = ceil(5 * bytes / 2^22), in integers */
	if (model_bytes > UINT64_MAX / 5 - (1u << 22))
		return 0;
	uint64_t mib = 256 + ((5 * model_bytes + ((uint64_t)1 << 22) - 1) >> 22);
	if (mib < 512)
		mib = 512;
	return mib > MU_VM_MEMORY_MAX_MIB ? 0 : (uint32_t)mib;
}

enum mu_err mu_vm_check_config(const uint8_t *p, size_t n, const char *name, struct mu_error *err)
{
	static const struct json_limits lim = MU_ENCLAVE_CONFIG_JSON_LIMITS;
	static const struct {
		const char *member, *want, *why;
	} fixed[] = {
		{"model", MU_VM_GUEST_MODEL, "the sealed model given with --model is the VM's first virtio disk"},
		{"channel", MU_VM_GUEST_CHANNEL, "the VM's virtio-serial port; its host end is --channel unix:PATH"},
	};
	if (n > MU_ENCLAVE_CONFIG_MAX)
		return mu_errf(err, MU_ERR_RANGE, "%s: %zu bytes, more than the %u an enclave config may have", name, n,
			       MU_ENCLAVE_CONFIG_MAX);
	const uint8_t *nul = memchr(p, 0, n);
	if (nul)
		return mu_errf(err, MU_ERR_FORMAT, "%s: NUL byte at offset %zu (an enclave config is JSON text)", name,
			       (size_t)(nul - p));
	size_t mem_len;
	enum mu_err rc = json_mem_size(&lim, n, &mem_len, err);
	if (rc)
		return mu_err_prefix(err, "%s", name);
	void *mem = malloc(mem_len);
	if (!mem)
		return mu_errf(err, MU_ERR_NOMEM, "%s: out of memory", name);
	struct json_doc doc;
	if ((rc = json_parse(&doc, p, n, &lim, mem, mem_len, err))) {
		mu_err_prefix(err, "%s: not valid JSON", name);
		goto out;
	}
	if (json_type(&doc, 0) != JSON_OBJECT) {
		rc = mu_errf(err, MU_ERR_FORMAT, "%s: not a JSON object", name);
		goto out;
	}
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		uint32_t v = json_obj_get(&doc, 0, fixed[i].member);
		if (v == JSON_NONE || !json_str_eq(&doc, v, fixed[i].want)) {
			rc = mu_errf(err, MU_ERR_ARG, "%s: \"%s\" %s; in the VM set \"%s\": \"%s\" (%s)", name,
				     fixed[i].member, v == JSON_NONE ? "is missing" : "is wrong", fixed[i].member,
				     fixed[i].want, fixed[i].why);
			goto out;
		}
	}
out:
	free(mem);
	return rc;
}

/* ---- the QEMU command line ---- */

static enum mu_err arg_add(struct mu_vm_argv *a, struct mu_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum mu_err arg_add(struct mu_vm_argv *a, struct mu_error *err, const char *fmt, ...)
{
	va_list ap;
	size_t room = sizeof a->buf - a->used;
	if (a->n >= MU_VM_ARGV_MAX)
		return mu_errf(err, MU_ERR_INTERNAL, "too many QEMU arguments");
	va_start(ap, fmt);
	int k = vsnprintf(a->buf + a->used, room, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= room)
		return mu_errf(err, MU_ERR_RANGE, "the QEMU command line is too long (paths too long?)");
	a->v[a->n++] = a->buf + a->used;
	a->v[a->n] = NULL;
	a->used += (size_t)k + 1;
	return MU_OK;
}

/* A path as a value inside a QEMU option list: commas doubled (QEMU's escape), and "./" in front
 * of a relative path so that QEMU never reads "name:rest" as a protocol such as nbd: or json:. */
static enum mu_err qemu_path(char *out, size_t cap, const char *path, struct mu_error *err)
{
	size_t o = 0;
	if (path[0] != '/') {
		if (cap < 3)
			goto long_;
		out[o++] = '.';
		out[o++] = '/';
	}
	for (const char *s = path; *s; s++) {
		if (o + 2 >= cap)
			goto long_;
		out[o++] = *s;
		if (*s == ',')
			out[o++] = ',';
	}
	out[o] = '\0';
	return MU_OK;
long_:
	return mu_errf(err, MU_ERR_RANGE, "path too long for QEMU: %.64s...", path);
}

enum mu_err mu_vm_qemu_argv(const struct mu_vm_launch *l, struct mu_vm_argv *a, struct mu_error *err)
{
	char model[2 * MU_VM_PATH_MAX + 3], config[2 * MU_VM_PATH_MAX + 3], sock[2 * MU_VM_PATH_MAX + 3];
	int kvm = l->accel == MU_VM_ACCEL_KVM;
	enum mu_err rc;

	a->n = 0;
	a->used = 0;
	a->v[0] = NULL;
	if (l->accel != MU_VM_ACCEL_KVM && l->accel != MU_VM_ACCEL_TCG)
		return mu_errf(err, MU_ERR_INTERNAL, "QEMU needs a definite accelerator");
	if ((rc = arg_add(a, err, "%s", l->qemu)) || (rc = arg_add(a, err, "-nodefaults")) ||
	    (rc = arg_add(a, err, "-no-user-config")) || (rc = arg_add(a, err, "-display")) ||
	    (rc = arg_add(a, err, "none")) || (rc = arg_add(a, err, "-machine")) || (rc = arg_add(a, err, "q35")) ||
	    (rc = arg_add(a, err, "-accel")) || (rc = arg_add(a, err, "%s", kvm ? "kvm" : "tcg,thread=multi")) ||
	    (rc = arg_add(a, err, "-cpu")) || (rc = arg_add(a, err, "%s", kvm ? "host" : "max")) ||
	    (rc = arg_add(a, err, "-smp")) || (rc = arg_add(a, err, "%u", l->cpus)) || (rc = arg_add(a, err, "-m")) ||
	    (rc = arg_add(a, err, "%u", l->memory_mib)) || (rc = arg_add(a, err, "-no-reboot")) ||
	    (rc = arg_add(a, err, "-kernel")) || (rc = arg_add(a, err, "%s", l->kernel)) ||
	    (rc = arg_add(a, err, "-initrd")) || (rc = arg_add(a, err, "%s", l->initramfs)) ||
	    (rc = arg_add(a, err, "-append")) || (rc = arg_add(a, err, "%s", l->cmdline)) ||
	    (rc = arg_add(a, err, "-sandbox")) ||
	    (rc = arg_add(a, err, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny")) ||
	    (rc = arg_add(a, err, "-chardev")) || (rc = arg_add(a, err, "stdio,id=con,signal=off")) ||
	    (rc = arg_add(a, err, "-serial")) || (rc = arg_add(a, err, "chardev:con")))
		return rc;
	if (!l->model) /* the probe boot: the console and nothing else */
		return MU_OK;
	if ((rc = qemu_path(model, sizeof model, l->model, err)) ||
	    (rc = qemu_path(config, sizeof config, l->config_img, err)) ||
	    (rc = qemu_path(sock, sizeof sock, l->socket, err)))
		return rc;
	if ((rc = arg_add(a, err, "-drive")) ||
	    (rc = arg_add(a, err, "file=%s,format=raw,if=none,id=model,readonly=on", model)) ||
	    (rc = arg_add(a, err, "-device")) || (rc = arg_add(a, err, "virtio-blk-pci,drive=model,addr=" VM_PCI_MODEL)) ||
	    (rc = arg_add(a, err, "-drive")) ||
	    (rc = arg_add(a, err, "file=%s,format=raw,if=none,id=config,readonly=on", config)) ||
	    (rc = arg_add(a, err, "-device")) ||
	    (rc = arg_add(a, err, "virtio-blk-pci,drive=config,addr=" VM_PCI_CONFIG)) ||
	    (rc = arg_add(a, err, "-device")) || (rc = arg_add(a, err, "virtio-serial-pci,addr=" VM_PCI_SERIAL)) ||
	    (rc = arg_add(a, err, "-chardev")) ||
	    (rc = arg_add(a, err, "socket,id=chan,path=%s,server=on,wait=off", sock)) ||
	    (rc = arg_add(a, err, "-device")) ||
	    (rc = arg_add(a, err, "virtserialport,chardev=chan,name=mu.channel,nr=1")))
		return rc;
	return MU_OK;
}

/* One shell word: as it is when it holds only safe characters, otherwise in single quotes. */
static void print_quoted(FILE *f, const char *s)
{
	int safe = *s != '\0';
	for (const char *c = s; *c && safe; c++)
		safe = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		       strchr("_@%+=:,./-", *c) != NULL;
	if (safe) {
		fputs(s, f);
		return;
	}
	fputc('\'', f);
	for (const char *c = s; *c; c++)
		if (*c == '\'')
			fputs("'\\''", f);
		else
			fputc(*c, f);
	fputc('\'', f);
}

/* ---- QEMU as a child process ---- */

struct vm_proc {
	pid_t pid;
	int out;    /* read end of QEMU's stdout and stderr; -1 once at end of file */
	int reaped; /* waited for; status is its wait status */
	int status;
	char line[VM_LINE_MAX + 1];
	size_t len;
	void (*on_line)(void *arg, char *line, size_t n);
	void *arg;
};

static void status_text(int st, char *buf, size_t cap)
{
	if (WIFEXITED(st))
		snprintf(buf, cap, "status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, cap, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, cap, "wait status 0x%x", (unsigned)st);
}

static enum mu_err proc_start(struct vm_proc *p, char *const argv[], struct mu_error *err)
{
	int out[2], ex[2];
	pid_t parent = getpid();

	p->pid = -1;
	p->out = -1;
	p->reaped = 0;
	p->len = 0;
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0)
		return mu_errf(err, MU_ERR_IO, "/dev/null: cannot open: %s", strerror(errno));
	if (pipe2(out, O_CLOEXEC) != 0) {
		int e = errno;
		close(devnull);
		return mu_errf(err, MU_ERR_IO, "pipe: %s", strerror(e));
	}
	if (pipe2(ex, O_CLOEXEC) != 0) {
		int e = errno;
		close(devnull);
		close(out[0]);
		close(out[1]);
		return mu_errf(err, MU_ERR_IO, "pipe: %s", strerror(e));
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* The child: only async-signal-safe calls until exec. */
		sigset_t none;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) /* mu died before the line above took effect */
			_exit(127);
		setpgid(0, 0); /* a terminal's ^C reaches mu, which stops QEMU in order */
		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(devnull, 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		int e = errno;
		ssize_t w = write(ex[1], &e, sizeof e);
		(void)w;
		_exit(127);
	}
	int fork_errno = errno;
	close(devnull);
	close(out[1]);
	close(ex[1]);
	if (pid < 0) {
		close(out[0]);
		close(ex[0]);
		return mu_errf(err, MU_ERR_IO, "fork: %s", strerror(fork_errno));
	}
	int e = 0;
	ssize_t r;
	do
		r = read(ex[0], &e, sizeof e);
	while (r < 0 && errno == EINTR);
	close(ex[0]);
	if (r == (ssize_t)sizeof e) { /* exec failed; the child exits */
		close(out[0]);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return mu_errf(err, MU_ERR_IO, "cannot run %s: %s (install QEMU, qemu-system-x86, or give --qemu PATH)",
			       argv[0], strerror(e));
	}
	fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
	p->pid = pid;
	p->out = out[0];
	return MU_OK;
}

static void proc_signal(struct vm_proc *p, int sig)
{
	if (p->pid > 0 && !p->reaped && kill(-p->pid, sig) != 0)
		kill(p->pid, sig);
}

static void proc_line(struct vm_proc *p)
{
	size_t n = p->len;
	while (n && (p->line[n - 1] == '\r' || p->line[n - 1] == '\n'))
		n--;
	size_t s = 0;
	while (s < n && p->line[s] == '\r')
		s++;
	p->line[n] = '\0';
	p->len = 0;
	if (p->on_line)
		p->on_line(p->arg, p->line + s, n - s);
}

static void proc_feed(struct vm_proc *p, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			proc_line(p);
			continue;
		}
		p->line[p->len++] = buf[i];
		if (p->len == VM_LINE_MAX) /* a line this long is cut into pieces */
			proc_line(p);
	}
}

/* Reads what is there (the pipe is non-blocking), at most max_chunks reads so that a guest
 * that floods its console cannot keep the loop from its signals; at end of file the last
 * partial line is passed on and out is closed. */
static void proc_read(struct vm_proc *p, int max_chunks)
{
	char buf[4096];
	for (int k = 0; k < max_chunks;) {
		ssize_t r = read(p->out, buf, sizeof buf);
		if (r > 0) {
			proc_feed(p, buf, (size_t)r);
			k++;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (p->len)
			proc_line(p);
		close(p->out);
		p->out = -1;
		return;
	}
}

static void proc_reap(struct vm_proc *p)
{
	int st;
	if (p->reaped || p->pid <= 0)
		return;
	if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
		p->reaped = 1;
		p->status = st;
		if (p->out >= 0) { /* drain what is left without waiting on whoever else holds the pipe */
			proc_read(p, 256);
			if (p->out >= 0) {
				if (p->len)
					proc_line(p);
				close(p->out);
				p->out = -1;
			}
		}
	}
}

static int proc_done(const struct vm_proc *p) { return p->reaped && p->out < 0; }

/* One round: waits up to timeout_ms (-1: no limit) for output, a signal or QEMU's exit.
 * Returns SIGINT, SIGTERM or SIGHUP when one arrived, else 0. */
static int proc_step(struct vm_proc *p, int sigfd, int timeout_ms)
{
	struct pollfd fds[2];
	nfds_t n = 0;
	int sig = 0, out_at = -1;
	if (p->out >= 0) {
		out_at = (int)n;
		fds[n++] = (struct pollfd){.fd = p->out, .events = POLLIN};
	}
	fds[n++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
	int r = poll(fds, n, timeout_ms);
	if (r > 0 && (fds[n - 1].revents & POLLIN)) {
		struct signalfd_siginfo si;
		while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si)
			if (si.ssi_signo != SIGCHLD)
				sig = (int)si.ssi_signo;
	}
	if (r > 0 && out_at >= 0 && fds[out_at].revents)
		proc_read(p, 16);
	proc_reap(p);
	return sig;
}

/* Kills QEMU if it still runs and waits for it; closes the pipe. */
static void proc_finish(struct vm_proc *p)
{
	if (p->pid > 0 && !p->reaped) {
		int st;
		proc_signal(p, SIGKILL);
		while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
			;
		p->reaped = 1;
		p->status = st;
	}
	if (p->out >= 0) {
		close(p->out);
		p->out = -1;
	}
}

static int ms_until(uint64_t deadline_ns)
{
	uint64_t now = pal_now_ns();
	if (now >= deadline_ns)
		return 0;
	uint64_t ms = (deadline_ns - now + 999999) / 1000000;
	return ms > 60000 ? 60000 : (int)ms;
}

/* ---- the probe ---- */

struct probe_state {
	int answered;
	char last[200];
};

static void probe_line(void *arg, char *line, size_t n)
{
	struct probe_state *s = arg;
	if (strstr(line, VM_PROBE_ANSWER))
		s->answered = 1;
	if (n) {
		size_t k = 0;
		for (; k < n && k + 1 < sizeof s->last; k++)
			s->last[k] = line[k] >= 0x20 && line[k] < 0x7f ? line[k] : '?';
		s->last[k] = '\0';
	}
}

/* Boots the image under KVM with MU_VM_PROBE_CMDLINE. Returns 1 when the enclave answered and
 * QEMU exited in time (why = the time), 0 when not (why = the reason), -1 when a signal came. */
static int probe_kvm(const struct mu_vm_image *img, const char *qemu, uint32_t timeout_s, int sigfd, char *why,
		     size_t cap)
{
	struct mu_vm_launch l = {.qemu = qemu, .accel = MU_VM_ACCEL_KVM, .cpus = 1, .memory_mib = VM_PROBE_MEMORY_MIB,
				 .kernel = img->kernel, .initramfs = img->initramfs, .cmdline = MU_VM_PROBE_CMDLINE};
	struct mu_vm_argv *a = malloc(sizeof *a);
	struct probe_state s = {0};
	struct vm_proc p = {.on_line = probe_line, .arg = &s};
	struct mu_error err = {0};
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, cap, "%s/dev/kvm: %s", errno == ENOENT ? "no " : "", strerror(errno));
		free(a);
		return 0;
	}
	close(fd);
	if (!a) {
		snprintf(why, cap, "kvm probe: out of memory");
		return 0;
	}
	uint64_t t0 = pal_now_ns(), deadline = t0 + (uint64_t)timeout_s * 1000000000u;
	if (mu_vm_qemu_argv(&l, a, &err) || proc_start(&p, a->v, &err)) {
		snprintf(why, cap, "kvm probe: %s", err.msg);
		free(a);
		return 0;
	}
	free(a);
	int result = 0, sig = 0;
	while (!proc_done(&p) && !sig) {
		int ms = ms_until(deadline);
		if (ms == 0)
			break;
		sig = proc_step(&p, sigfd, ms);
	}
	double secs = (double)(pal_now_ns() - t0) / 1e9;
	if (sig) {
		result = -1;
	} else if (!p.reaped) {
		snprintf(why, cap, "kvm probe: no answer in %u s", timeout_s);
	} else if (!s.answered) {
		char st[64];
		status_text(p.status, st, sizeof st);
		snprintf(why, cap, "kvm probe: QEMU exited with %s without the enclave's answer%s%s", st,
			 s.last[0] ? ": " : "", s.last);
	} else {
		snprintf(why, cap, "probe booted in %.1f s", secs);
		result = 1;
	}
	proc_finish(&p);
	return result;
}

/* ---- the run ---- */

struct run_state {
	FILE *console; /* NULL: stderr with "guest: " */
	const char *console_path;
	int console_failed;
	uint64_t t0;
	const char *accel;
	int ready;
};

static void run_line(void *arg, char *line, size_t n)
{
	struct run_state *s = arg;
	if (s->console) {
		if ((fwrite(line, 1, n, s->console) != n || fputc('\n', s->console) == EOF || fflush(s->console) != 0) &&
		    !s->console_failed) {
			s->console_failed = 1;
			fprintf(stderr, "mu vm: %s: cannot write the console: %s\n", s->console_path, strerror(errno));
		}
	} else {
		for (size_t i = 0; i < n; i++) /* no terminal control sequences from the guest */
			if ((unsigned char)line[i] < 0x20 ? line[i] != '\t' : line[i] == 0x7f)
				line[i] = '?';
		fprintf(stderr, "guest: %s\n", line);
	}
	if (!s->ready && !strncmp(line, VM_READY_PREFIX, strlen(VM_READY_PREFIX))) {
		s->ready = 1;
		say("vm: enclave ready in %.2f s (boot to ready, %s)\n", (double)(pal_now_ns() - s->t0) / 1e9, s->accel);
		const char *m = strstr(line, "(measurement ");
		uint8_t bin[MU_SHA256_LEN];
		char hex[2 * MU_SHA256_LEN + 1];
		if (m && strlen(m += strlen("(measurement ")) >= 2 * MU_SHA256_LEN + 1 && m[2 * MU_SHA256_LEN] == ')' &&
		    mu_unhex(m, 2 * MU_SHA256_LEN, bin, MU_SHA256_LEN) == 0) {
			mu_hex(bin, MU_SHA256_LEN, hex);
			say("vm: enclave measurement %s\n", hex);
		} else {
			say("vm: enclave measurement not found in its listening line\n");
		}
	}
}

/* "unix:PATH" -> PATH, checked; a stale socket is removed (unless dry). */
static enum mu_err prepare_socket(const char *channel, int dry, const char **path, struct mu_error *err)
{
	struct sockaddr_un sa;
	struct stat st;
	if (strncmp(channel, "unix:", 5) != 0 || !channel[5])
		return mu_errf(err, MU_ERR_ARG, "--channel must be unix:PATH (the host end of the VM's virtio-serial port)");
	const char *p = channel + 5;
	if (strlen(p) >= sizeof sa.sun_path)
		return mu_errf(err, MU_ERR_ARG, "--channel: socket path longer than %zu bytes", sizeof sa.sun_path - 1);
	*path = p;
	if (lstat(p, &st) != 0) {
		if (errno == ENOENT)
			return MU_OK;
		return mu_errf(err, MU_ERR_IO, "%s: cannot stat: %s", p, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return mu_errf(err, MU_ERR_IO, "%s exists and is not a socket; refusing to replace it", p);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "socket: %s", strerror(errno));
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, p, strlen(p));
	int live = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, e = errno;
	close(fd);
	if (live)
		return mu_errf(err, MU_ERR_STATE, "%s: something listens on this socket already (another mu vm run?)", p);
	if (e != ECONNREFUSED) /* only a socket nobody listens on is stale */
		return mu_errf(err, MU_ERR_IO, "%s: cannot tell whether the socket is in use: %s", p, strerror(e));
	if (!dry && unlink(p) != 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot remove the stale socket: %s", p, strerror(errno));
	return MU_OK;
}

/* The config disk in a private directory: the bytes, then zeros to a multiple of 512. */
static enum mu_err write_config_img(const uint8_t *cfg, size_t n, char *dir, size_t dir_cap, char *file,
				    size_t file_cap, struct mu_error *err)
{
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	dir[0] = file[0] = '\0';
	if ((size_t)snprintf(dir, dir_cap, "%s/mu-vm-XXXXXX", tmp) >= dir_cap)
		return mu_errf(err, MU_ERR_ARG, "TMPDIR is too long");
	if (!mkdtemp(dir)) { /* mode 0700 */
		int e = errno;
		dir[0] = '\0';
		return mu_errf(err, MU_ERR_IO, "cannot make a private directory in %s: %s", tmp, strerror(e));
	}
	if ((size_t)snprintf(file, file_cap, "%s/config.img", dir) >= file_cap)
		return mu_errf(err, MU_ERR_ARG, "TMPDIR is too long");
	size_t len = (n + MU_VM_CONFIG_SECTOR - 1) / MU_VM_CONFIG_SECTOR * MU_VM_CONFIG_SECTOR;
	uint8_t *buf = calloc(1, len ? len : 1);
	if (!buf)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory");
	memcpy(buf, cfg, n);
	enum mu_err rc = MU_OK;
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = mu_errf(err, MU_ERR_IO, "%s: cannot create: %s", file, strerror(errno));
		free(buf);
		file[0] = '\0';
		return rc;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = mu_errf(err, MU_ERR_IO, "%s: write failed: %s", file, w < 0 ? strerror(errno) : "no progress");
			break;
		}
		off += (size_t)w;
	}
	if (close(fd) != 0 && rc == MU_OK)
		rc = mu_errf(err, MU_ERR_IO, "%s: close failed: %s", file, strerror(errno));
	free(buf);
	return rc;
}

static enum mu_err check_model(const char *path, uint64_t *bytes, struct mu_error *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	int ok = fstat(fd, &st) == 0;
	int e = errno;
	close(fd);
	if (!ok)
		return mu_errf(err, MU_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
	if (!S_ISREG(st.st_mode))
		return mu_errf(err, MU_ERR_IO, "%s: not a regular file (give the sealed model, a .mus file)", path);
	if (st.st_size == 0)
		return mu_errf(err, MU_ERR_FORMAT, "%s: empty file (give the sealed model, a .mus file)", path);
	*bytes = (uint64_t)st.st_size;
	return MU_OK;
}

struct run_ctx {
	struct mu_vm_image img;
	struct mu_vm_argv argv;
	char cfg_dir[MU_VM_PATH_MAX], cfg_file[MU_VM_PATH_MAX];
};

static enum mu_err run_vm(const struct mu_vm_run_opts *o, struct run_ctx *c, int sigfd, struct mu_error *err)
{
	const char *qemu = o->qemu ? o->qemu : "qemu-system-x86_64";
	const char *sock = NULL;
	uint8_t *cfg = NULL;
	size_t cfg_len = 0;
	uint64_t model_bytes = 0;
	char hex[2 * MU_SHA256_LEN + 1], why[400];
	enum mu_err rc;

	/* Everything is checked before anything starts. */
	if ((rc = mu_vm_image_load(o->image_dir, &c->img, err)))
		return rc;
	mu_hex(c->img.measurement, MU_SHA256_LEN, hex);
	say("vm: image measurement %s\n", hex);
	if ((rc = pal_read_file(o->config, MU_ENCLAVE_CONFIG_MAX, &cfg, &cfg_len, err)))
		return rc;
	if ((rc = mu_vm_check_config(cfg, cfg_len, o->config, err)) || (rc = check_model(o->model, &model_bytes, err)) ||
	    (rc = prepare_socket(o->channel, o->dry_run, &sock, err)))
		goto out;
	uint32_t want_mib = mu_vm_default_memory(model_bytes), mib = o->memory_mib ? o->memory_mib : want_mib;
	if (!mib) {
		rc = mu_errf(err, MU_ERR_RANGE, "%s: too large for a VM of at most %u MiB", o->model, MU_VM_MEMORY_MAX_MIB);
		goto out;
	}
	uint32_t cpus = o->cpus ? o->cpus : 2;

	enum mu_vm_accel accel = o->accel;
	if (accel == MU_VM_ACCEL_TCG) {
		say("vm: accelerator tcg (asked for)\n");
	} else if (accel == MU_VM_ACCEL_KVM) {
		say("vm: accelerator kvm (asked for)\n");
	} else if (o->dry_run) {
		accel = MU_VM_ACCEL_TCG;
		say("vm: accelerator auto (not probed in --dry-run)\n");
	} else {
		int r = probe_kvm(&c->img, qemu, o->probe_timeout_s ? o->probe_timeout_s : MU_VM_PROBE_TIMEOUT_S, sigfd,
				  why, sizeof why);
		if (r < 0) {
			say("vm: interrupted during the kvm probe\n");
			goto out;
		}
		accel = r ? MU_VM_ACCEL_KVM : MU_VM_ACCEL_TCG;
		say("vm: accelerator %s (%s)\n", r ? "kvm" : "tcg", why);
	}
	const char *accel_name = accel == MU_VM_ACCEL_KVM ? "kvm" : "tcg";
	say("vm: %u MiB, %u cpus, model %s (%llu bytes), channel unix:%s\n", mib, cpus, o->model,
	    (unsigned long long)model_bytes, sock);
	if (o->memory_mib && o->memory_mib < want_mib)
		say("vm: warning: --memory %u is below the %u MiB this model needs by the default rule\n", o->memory_mib,
		    want_mib);

	if ((rc = write_config_img(cfg, cfg_len, c->cfg_dir, sizeof c->cfg_dir, c->cfg_file, sizeof c->cfg_file, err)))
		goto out;
	struct mu_vm_launch l = {.qemu = qemu, .accel = accel, .cpus = cpus, .memory_mib = mib,
				 .kernel = c->img.kernel, .initramfs = c->img.initramfs, .cmdline = c->img.cmdline,
				 .model = o->model, .config_img = c->cfg_file, .socket = sock};
	if ((rc = mu_vm_qemu_argv(&l, &c->argv, err)))
		goto out;
	if (o->dry_run) {
		for (size_t i = 0; i < c->argv.n; i++) {
			if (i)
				putchar(' ');
			print_quoted(stdout, c->argv.v[i]);
		}
		putchar('\n');
		fflush(stdout);
		goto out;
	}

	struct run_state s = {.console_path = o->console, .accel = accel_name};
	if (o->console) {
		int fd = open(o->console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || !(s.console = fdopen(fd, "w"))) {
			rc = mu_errf(err, MU_ERR_IO, "%s: cannot open the console file: %s", o->console, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
	}
	struct vm_proc p = {.on_line = run_line, .arg = &s};
	s.t0 = pal_now_ns();
	if ((rc = proc_start(&p, c->argv.v, err))) {
		if (s.console)
			fclose(s.console);
		goto out;
	}
	say("vm: QEMU started (pid %ld, %s)%s%s\n", (long)p.pid, accel_name, o->console ? ", console in " : "",
	    o->console ? o->console : "");
	int stopping = 0, killed = 0;
	uint64_t deadline = 0;
	while (!proc_done(&p)) {
		int ms = -1;
		if (stopping && !p.reaped) {
			ms = ms_until(deadline);
			if (ms == 0 && !killed) {
				say("vm: QEMU did not stop in %u s; killing it\n", MU_VM_STOP_GRACE_MS / 1000);
				proc_signal(&p, SIGKILL);
				killed = 1;
			}
			if (killed)
				ms = -1;
		}
		int sig = proc_step(&p, sigfd, ms);
		if (sig && !stopping) {
			stopping = 1;
			say("vm: %s, stopping QEMU\n", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP");
			proc_signal(&p, SIGTERM);
			deadline = pal_now_ns() + (uint64_t)MU_VM_STOP_GRACE_MS * 1000000u;
		}
	}
	proc_finish(&p);
	if (s.console)
		fclose(s.console);
	status_text(p.status, why, sizeof why);
	if (stopping) {
		say("vm: QEMU stopped (%s)\n", why);
	} else if (!s.ready) {
		rc = mu_errf(err, MU_ERR_STATE, "QEMU exited with %s before the enclave was ready (see %s%s)", why,
			     o->console ? "the console in " : "the guest: lines above", o->console ? o->console : "");
	} else {
		rc = mu_errf(err, MU_ERR_STATE, "QEMU exited with %s while the enclave was serving", why);
	}
	struct stat st;
	if (lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(sock); /* QEMU's listening socket, now dead */
out:
	pal_free(cfg, cfg_len + 1);
	return rc;
}

enum mu_err mu_vm_run(const struct mu_vm_run_opts *o, struct mu_error *err)
{
	sigset_t set, old;
	struct sigaction ign = {.sa_handler = SIG_IGN}, dfl = {.sa_handler = SIG_DFL}, old_pipe, old_chld;
	struct run_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory");

	/* Signals arrive on a descriptor that poll watches; SIGCHLD wakes the loop when QEMU exits
	 * (and must not be ignored, or QEMU could not be waited for). */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigaction(SIGPIPE, &ign, &old_pipe);
	sigaction(SIGCHLD, &dfl, &old_chld);
	sigprocmask(SIG_BLOCK, &set, &old);
	int sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	enum mu_err rc;
	if (sigfd < 0)
		rc = mu_errf(err, MU_ERR_IO, "signalfd: %s", strerror(errno));
	else
		rc = run_vm(o, c, sigfd, err);

	if (c->cfg_file[0])
		unlink(c->cfg_file);
	if (c->cfg_dir[0])
		rmdir(c->cfg_dir);
	if (sigfd >= 0)
		close(sigfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	sigaction(SIGCHLD, &old_chld, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	free(c);
	return rc;
}
