/* surface_proc.c — `mu surface --pid` (surface_report.h): a running process's listening and
 * connected sockets, from its own /proc/PID/net tables, and its other descriptors. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/surface_report.h"

/* ---- processes ---- */



/* the entry of /proc/PID/net/FILE whose inode is ino: a description, or "" */
static void describe_inet(const char *line, int v6, char *out, size_t cap, int *state)
{
	char local[64] = {0};
	unsigned st = 0;
	/* the kernel's own text. NOLINTNEXTLINE(cert-err34-c) */
	if (sscanf(line, "%*s %63s %*s %x", local, &st) != 2)
		return;
	*state = (int)st;
	char *colon = strrchr(local, ':');
	if (!colon)
		return;
	*colon = 0;
	unsigned port = (unsigned)strtoul(colon + 1, NULL, 16);
	if (!v6 && strlen(local) == 8) {
		unsigned a = (unsigned)strtoul(local, NULL, 16);
		snprintf(out, cap, "%u.%u.%u.%u:%u", a & 255, (a >> 8) & 255, (a >> 16) & 255, a >> 24, port);
	} else {
		snprintf(out, cap, "[%s]:%u", local, port);
	}
}

static int find_socket(int pid, unsigned long ino, char *out, size_t cap, int *listening)
{
	static const struct {
		const char *file, *proto;
		int v6, udp;
	} inet[] = {{"tcp", "tcp", 0, 0}, {"tcp6", "tcp6", 1, 0}, {"udp", "udp", 0, 1}, {"udp6", "udp6", 1, 1}};
	char path[64], line[512];
	*listening = 0;
	for (size_t i = 0; i < sizeof inet / sizeof inet[0]; i++) {
		snprintf(path, sizeof path, "/proc/%d/net/%s", pid, inet[i].file);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof line, f)) {
			unsigned long li = 0;
			/* sl local rem st tx:rx tr:when retr uid timeout inode */
			/* the kernel's own text. NOLINTNEXTLINE(cert-err34-c) */
			if (sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %lu", &li) != 1 || li != ino)
				continue;
			char addr[128] = "?";
			int st = 0;
			describe_inet(line, inet[i].v6, addr, sizeof addr, &st);
			*listening = inet[i].udp ? 1 : st == 0x0a;
			snprintf(out, cap, "%s %s", inet[i].proto, addr);
			fclose(f);
			return 1;
		}
		fclose(f);
	}
	snprintf(path, sizeof path, "/proc/%d/net/unix", pid);
	FILE *f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof line, f)) {
			unsigned long flags = 0, li = 0;
			unsigned type = 0, st = 0;
			int off = 0;
			/* the kernel's own text. NOLINTNEXTLINE(cert-err34-c) */
			if (sscanf(line, "%*s %*s %*s %lx %x %x %lu%n", &flags, &type, &st, &li, &off) != 4 || li != ino)
				continue;
			char *p = line + off;
			while (*p == ' ')
				p++;
			p[strcspn(p, "\n")] = 0;
			*listening = (flags & 0x10000) != 0; /* __SO_ACCEPTCON */
			snprintf(out, cap, "unix %s", *p ? p : "(unnamed)");
			fclose(f);
			return 1;
		}
		fclose(f);
	}
	return 0;
}

void surface_measure_proc(struct proc_report *p)
{
	char path[128], link[256];
	snprintf(path, sizeof path, "/proc/%d/comm", p->pid);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fgets(p->name, sizeof p->name, f))
			p->name[strcspn(p->name, "\n")] = 0;
		fclose(f);
	}
	snprintf(path, sizeof path, "/proc/%d/ns/net", p->pid);
	struct stat st;
	if (stat(path, &st) == 0)
		p->netns = (uint64_t)st.st_ino;
	snprintf(path, sizeof path, "/proc/%d/fd", p->pid);
	DIR *d = opendir(path);
	if (!d) {
		snprintf(p->why, sizeof p->why, "%s: %s", path, strerror(errno));
		return;
	}
	p->readable = 1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char fdp[400];
		snprintf(fdp, sizeof fdp, "%s/%s", path, de->d_name);
		ssize_t k = readlink(fdp, link, sizeof link - 1);
		if (k < 0)
			continue;
		link[k] = 0;
		unsigned long ino;
		/* the kernel's own text. NOLINTNEXTLINE(cert-err34-c) */
		if (sscanf(link, "socket:[%lu]", &ino) == 1) {
			char desc[160];
			int listening;
			if (!find_socket(p->pid, ino, desc, sizeof desc, &listening))
				p->other_socks++;
			else if (listening && p->n_listen < SURF_MAX_SOCKS)
				snprintf(p->listen[p->n_listen++], sizeof p->listen[0], "%s", desc);
			else
				p->connected++;
		} else if (!strncmp(link, "pipe:", 5)) {
			p->pipes++;
		} else if (link[0] == '/') {
			p->files++;
		} else {
			p->other++;
		}
	}
	closedir(d);
}

