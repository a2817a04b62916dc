/* posix.c — the platform layer on Linux. */
#define _GNU_SOURCE
#include "pal/pal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void *pal_alloc(size_t size, size_t align)
{
	void *p = NULL;
	if (align < 16)
		align = 16;
	if (size == 0)
		size = 1;
	if (posix_memalign(&p, align, size) != 0)
		return NULL;
	memset(p, 0, size);
	return p;
}

void pal_free(void *p, size_t size)
{
	(void)size;
	free(p);
}

void pal_advise_hugepage(void *p, size_t size)
{
#ifdef MADV_HUGEPAGE
	uintptr_t a = ((uintptr_t)p + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
	uintptr_t e = ((uintptr_t)p + size) & ~(uintptr_t)((2u << 20) - 1);
	if (e > a)
		madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
	(void)p;
	(void)size;
#endif
}

enum mu_err pal_map_file(struct pal_map *m, const char *path, struct mu_error *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	m->data = NULL;
	m->len = 0;
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return mu_errf(err, MU_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return mu_errf(err, MU_ERR_IO, "%s: not a regular file", path);
	}
	if (st.st_size == 0) {
		close(fd);
		m->data = (const uint8_t *)"";
		return MU_OK;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED)
		return mu_errf(err, MU_ERR_IO, "%s: cannot map: %s", path, strerror(e));
	m->data = p;
	m->len = (size_t)st.st_size;
	return MU_OK;
}

void pal_unmap(struct pal_map *m)
{
	if (m->data && m->len)
		munmap((void *)(uintptr_t)m->data, m->len);
	m->data = NULL;
	m->len = 0;
}

enum mu_err pal_read_file(const char *path, size_t max, uint8_t **out, size_t *len, struct mu_error *err)
{
	struct pal_map m;
	enum mu_err rc = pal_map_file(&m, path, err);
	if (rc)
		return rc;
	if (m.len > max) {
		pal_unmap(&m);
		return mu_errf(err, MU_ERR_RANGE, "%s: file is %zu bytes, limit is %zu", path, m.len, max);
	}
	uint8_t *p = pal_alloc(m.len + 1, 16);
	if (!p) {
		pal_unmap(&m);
		return mu_errf(err, MU_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, m.len);
	}
	if (m.len)
		memcpy(p, m.data, m.len);
	*out = p;
	*len = m.len;
	pal_unmap(&m);
	return MU_OK;
}

uint64_t pal_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

enum mu_err pal_random(void *buf, size_t len, struct mu_error *err)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return mu_errf(err, MU_ERR_IO, "getrandom failed: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return MU_OK;
}

struct pal_thread {
	pthread_t t;
};

enum mu_err pal_thread_create(struct pal_thread **out, void *(*fn)(void *), void *arg, struct mu_error *err)
{
	struct pal_thread *t = pal_alloc(sizeof *t, 16);
	if (!t)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory creating a thread");
	int rc = pthread_create(&t->t, NULL, fn, arg);
	if (rc != 0) {
		pal_free(t, sizeof *t);
		return mu_errf(err, MU_ERR_IO, "cannot create thread: %s", strerror(rc));
	}
	*out = t;
	return MU_OK;
}

void pal_thread_join(struct pal_thread *t)
{
	pthread_join(t->t, NULL);
	pal_free(t, sizeof *t);
}

int pal_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

void pal_wait(uint32_t *word, uint32_t expected)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void pal_wake_all(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

void pal_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}
