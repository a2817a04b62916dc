/* guest.c — mu-enclave as PID 1 of the enclave VM (see guest.h). */
#define _GNU_SOURCE
#include "enclave/guest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#define PF_KTHREAD_FLAG 0x00200000u /* /proc/PID/stat flags: a kernel thread */
#define IFF_UP_FLAG 0x1u            /* /sys/class/net/IF/flags */
#define MAX_DISKS 16u
#define PORT_WAIT_MS 3000

static int read_small(const char *path, char *buf, size_t cap);

/* What the root of the initramfs may hold: the program and the mount points. */
static const char *const root_allowed[] = {"dev", "init", "proc", "sys"};

int mu_guest_is_init(int argc, char **argv)
{
	return getpid() == 1 && argc > 1 && !strcmp(argv[1], MU_GUEST_FLAG);
}

/* The kernel gives /init the console as descriptors 0-2, or nothing when the VM has no console.
 * Then the first files the enclave opens (the channel) would become 0-2 and its diagnostics
 * would go into the channel: hold those numbers with /dev/null instead. */
static void hold_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0) {
			int n = open("/dev/null", O_RDWR);
			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
		}
}

/* virtio-serial ports and their names arrive from the device's control queue after the probe,
 * possibly after /init starts: wait (at most PORT_WAIT_MS) until every port has its name. */
static void wait_port_names(void)
{
	for (int waited = 0; waited < PORT_WAIT_MS; waited += 10) {
		DIR *d = opendir("/sys/class/virtio-ports");
		int ports = 0, unnamed = 0;
		if (!d)
			return; /* no virtio-serial device at all */
		for (struct dirent *de; (de = readdir(d));) {
			char path[128], name[8];
			if (de->d_name[0] == '.')
				continue;
			ports++;
			snprintf(path, sizeof path, "/sys/class/virtio-ports/%.63s/name", de->d_name);
			if (read_small(path, name, sizeof name) != 0 || name[0] == 0 || name[0] == '\n')
				unnamed++;
		}
		closedir(d);
		if (ports && !unnamed)
			return;
		usleep(10000);
	}
}


/* What udev does on a full system: /dev/virtio-ports/NAME -> ../vportXpY for each named
 * virtio-serial port, so the config can name the port (the X is the virtio device's index
 * among all virtio devices, which depends on the order of probing). */
static enum mu_err name_ports(struct mu_error *err)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	if (!d)
		return errno == ENOENT ? MU_OK : mu_errf(err, MU_ERR_IO, "cannot list virtio ports: %s", strerror(errno));
	if (mkdir("/dev/virtio-ports", 0755) != 0 && errno != EEXIST) {
		closedir(d);
		return mu_errf(err, MU_ERR_IO, "cannot create /dev/virtio-ports: %s", strerror(errno));
	}
	for (struct dirent *de; (de = readdir(d));) {
		char path[128], name[72], link[128], target[80];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/sys/class/virtio-ports/%.63s/name", de->d_name);
		if (read_small(path, name, sizeof name) != 0)
			continue;
		name[strcspn(name, "\n")] = 0;
		int safe = name[0] != 0 && name[0] != '.';
		for (const char *c = name; *c; c++)
			safe &= (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
				*c == '.' || *c == '_' || *c == '-';
		if (!safe)
			continue;
		snprintf(link, sizeof link, "/dev/virtio-ports/%.63s", name);
		snprintf(target, sizeof target, "../%.63s", de->d_name);
		if (symlink(target, link) != 0 && errno != EEXIST) {
			closedir(d);
			return mu_errf(err, MU_ERR_IO, "cannot link %s: %s", link, strerror(errno));
		}
	}
	closedir(d);
	return MU_OK;
}

enum mu_err mu_guest_mount(struct mu_error *err)
{
	static const struct {
		const char *src, *dir, *type;
		unsigned long flags;
	} m[] = {
		{"devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC},
		{"proc", "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV},
		{"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY},
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		if (mount(m[i].src, m[i].dir, m[i].type, m[i].flags, NULL) != 0)
			return mu_errf(err, MU_ERR_IO, "cannot mount %s on %s: %s", m[i].type, m[i].dir, strerror(errno));
	hold_std_fds();
	wait_port_names();
	return name_ports(err);
}

/* Reads a small sysfs/procfs file into buf (NUL-terminated); -1 when it cannot be read. */
static int read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

struct report {
	char *s;
	size_t cap, len;
};

static void say(struct report *r, const char *fmt, ...)
{
	va_list ap;
	if (r->len >= r->cap)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(r->s + r->len, r->cap - r->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->len += (size_t)n < r->cap - r->len ? (size_t)n : r->cap - r->len - 1;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* The user processes: every /proc/PID that is not a kernel thread must be PID 1. */
static enum mu_err check_processes(struct report *r, struct mu_error *err)
{
	DIR *d = opendir("/proc");
	unsigned users = 0, kthreads = 0;
	if (!d)
		return mu_errf(err, MU_ERR_IO, "cannot list /proc: %s", strerror(errno));
	for (struct dirent *de; (de = readdir(d));) {
		char path[64], stat[512];
		if (!all_digits(de->d_name))
			continue;
		snprintf(path, sizeof path, "/proc/%.20s/stat", de->d_name);
		if (read_small(path, stat, sizeof stat) != 0)
			continue; /* gone in the meantime */
		/* after "PID (comm) ": state ppid pgrp session tty_nr tpgid flags */
		const char *p = strrchr(stat, ')');
		unsigned long flags = 0;
		/* the kernel's own text, not untrusted input. NOLINTNEXTLINE(cert-err34-c) */
		if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) != 1) {
			closedir(d);
			return mu_errf(err, MU_ERR_FORMAT, "cannot read the flags in %s", path);
		}
		if (flags & PF_KTHREAD_FLAG) {
			kthreads++;
			continue;
		}
		if (strcmp(de->d_name, "1") != 0) {
			closedir(d);
			return mu_errf(err, MU_ERR_STATE, "a second user process is running: PID %s", de->d_name);
		}
		users++;
	}
	closedir(d);
	if (users != 1)
		return mu_errf(err, MU_ERR_STATE, "PID 1 is not among the processes in /proc");
	say(r, "PID 1 is the only process (%u kernel threads)", kthreads);
	return MU_OK;
}

/* Network: interfaces in sysfs (only a loopback that is down), then the socket families. */
static enum mu_err check_network(struct report *r, struct mu_error *err)
{
	static const struct {
		int family;
		const char *name;
	} fam[] = {{AF_INET, "IPv4"}, {AF_INET6, "IPv6"}, {AF_UNIX, "Unix"}, {AF_PACKET, "packet"},
		   {AF_VSOCK, "vsock"}};
	DIR *d = opendir("/sys/class/net");
	int lo = 0;
	if (d) {
		for (struct dirent *de; (de = readdir(d));) {
			char path[300], flags[32];
			if (de->d_name[0] == '.')
				continue;
			if (strcmp(de->d_name, "lo") != 0) {
				char name[64];
				snprintf(name, sizeof name, "%.63s", de->d_name);
				closedir(d);
				return mu_errf(err, MU_ERR_STATE, "a network interface exists: %s", name);
			}
			snprintf(path, sizeof path, "/sys/class/net/%.63s/flags", de->d_name);
			if (read_small(path, flags, sizeof flags) != 0 || (strtoul(flags, NULL, 16) & IFF_UP_FLAG)) {
				closedir(d);
				return mu_errf(err, MU_ERR_STATE, "the loopback interface is up (or its flags unreadable)");
			}
			lo = 1;
		}
		closedir(d);
	} else if (errno != ENOENT) {
		return mu_errf(err, MU_ERR_IO, "cannot list /sys/class/net: %s", strerror(errno));
	}
	for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++) {
		int fd = socket(fam[i].family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0 && fam[i].family == AF_PACKET)
			fd = socket(fam[i].family, SOCK_RAW | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			close(fd);
			return mu_errf(err, MU_ERR_STATE, "a %s socket could be created", fam[i].name);
		}
	}
	say(r, "; network: %s; no IPv4, IPv6, Unix, packet or vsock sockets",
	    lo ? "only the loopback, down" : "no interfaces");
	return MU_OK;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* Block devices: each read-only in sysfs, and a write to it refused. */
static enum mu_err check_block(struct report *r, struct mu_error *err)
{
	char names[MAX_DISKS][64];
	unsigned n = 0;
	DIR *d = opendir("/sys/block");
	if (!d)
		return mu_errf(err, MU_ERR_IO, "cannot list /sys/block: %s", strerror(errno));
	for (struct dirent *de; (de = readdir(d));) {
		if (de->d_name[0] == '.')
			continue;
		if (n == MAX_DISKS) {
			closedir(d);
			return mu_errf(err, MU_ERR_STATE, "more than %u block devices", MAX_DISKS);
		}
		snprintf(names[n++], sizeof names[0], "%.63s", de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof names[0], cmp_name);
	say(r, "; block devices:");
	for (unsigned i = 0; i < n; i++) {
		char path[300], ro[16];
		const char *name = names[i];
		snprintf(path, sizeof path, "/sys/block/%.63s/ro", name);
		if (read_small(path, ro, sizeof ro) != 0 || strcmp(ro, "1\n") != 0)
			return mu_errf(err, MU_ERR_STATE, "block device %s is writable", name);
		/* Linux opens a read-only disk for writing and refuses the writes themselves (EPERM):
		 * so try one, of the bytes already there, which changes nothing if it were to pass. */
		snprintf(path, sizeof path, "/dev/%.63s", name);
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			uint8_t sector[512];
			ssize_t got = pread(fd, sector, sizeof sector, 0);
			ssize_t put = got > 0 ? pwrite(fd, sector, (size_t)got, 0) : -1;
			int e = errno;
			close(fd);
			if (got <= 0 || put >= 0 || (e != EPERM && e != EROFS && e != EACCES))
				return mu_errf(err, MU_ERR_STATE, "block device %s accepts writes", name);
		}
		say(r, " %s read-only", name);
	}
	if (!n)
		say(r, " none");
	return MU_OK;
}

/* The root: nothing but the program and the mount points (an empty /root from the kernel's
 * built-in initramfs is removed). */
static enum mu_err check_root(struct report *r, struct mu_error *err)
{
	DIR *d = opendir("/");
	if (!d)
		return mu_errf(err, MU_ERR_IO, "cannot list /: %s", strerror(errno));
	for (struct dirent *de; (de = readdir(d));) {
		int ok = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
		/* the kernel's own built-in initramfs (unpacked before ours) brings an empty /root */
		if (!strcmp(de->d_name, "root") && rmdir("/root") == 0)
			continue;
		for (size_t i = 0; i < sizeof root_allowed / sizeof root_allowed[0]; i++)
			ok |= !strcmp(de->d_name, root_allowed[i]);
		if (!ok) {
			char name[64];
			snprintf(name, sizeof name, "%.63s", de->d_name);
			closedir(d);
			return mu_errf(err, MU_ERR_STATE, "the root file system holds /%s", name);
		}
	}
	closedir(d);
	say(r, "; root: /init, /dev, /proc, /sys only (no shell)");
	return MU_OK;
}

enum mu_err mu_guest_check(char *report, size_t cap, struct mu_error *err)
{
	struct report r = {.s = report, .cap = cap, .len = 0};
	enum mu_err rc;
	char up[64];
	if (cap)
		report[0] = 0;
	if ((rc = check_processes(&r, err)) || (rc = check_network(&r, err)) || (rc = check_block(&r, err)) ||
	    (rc = check_root(&r, err)))
		return rc;
	if (read_small("/proc/uptime", up, sizeof up) == 0) {
		char *sp = strchr(up, ' ');
		if (sp)
			*sp = 0;
		say(&r, "; %s s after boot", up);
	}
	return MU_OK;
}

static _Noreturn void power_off(void)
{
	fflush(NULL);
	reboot(RB_POWER_OFF);
	/* Not allowed (the sandbox) or not possible: PID 1 ending makes the kernel panic, and the
	 * VM's command line (panic=-1) and QEMU's -no-reboot turn that into the VM's end. */
	_exit(1);
}

_Noreturn void mu_guest_main(int argc, char **argv, int (*run)(int argc, char **argv))
{
	struct mu_error err = {0};
	char report[512];
	if (mu_guest_mount(&err) != MU_OK || mu_guest_check(report, sizeof report, &err) != MU_OK) {
		fprintf(stderr, "mu-enclave: guest: REFUSED: %s; powering off\n", err.msg);
		power_off();
	}
	fprintf(stderr, "mu-enclave: guest: %s\n", report);
	argv[1] = argv[0]; /* the enclave's own options follow MU_GUEST_FLAG */
	int rc = run(argc - 1, argv + 1);
	fprintf(stderr, "mu-enclave: exited with status %d; powering off\n", rc);
	power_off();
}
