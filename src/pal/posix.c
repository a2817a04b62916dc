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
	m->device = 0;
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return mu_errf(err, MU_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
	}
	m->device = S_ISBLK(st.st_mode);
	if (m->device) {
		off_t end = lseek(fd, 0, SEEK_END); /* a block device's size; st_size is 0 */
		if (end < 0) {
			int e = errno;
			close(fd);
			return mu_errf(err, MU_ERR_IO, "%s: cannot find the device's size: %s", path, strerror(e));
		}
		st.st_size = end;
	} else if (!S_ISREG(st.st_mode)) {
		close(fd);
		return mu_errf(err, MU_ERR_IO, "%s: not a regular file or block device", path);
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

enum mu_err pal_map_anon(struct pal_map *m, size_t len, struct mu_error *err)
{
	m->data = NULL;
	m->len = 0;
	m->device = 0;
	/* cppcheck-suppress invalidFunctionArg ; MAP_ANONYMOUS wants fd -1 (posix.cfg allows only >= 0) */
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return mu_errf(err, MU_ERR_NOMEM, "cannot map %zu bytes of memory: %s", len, strerror(errno));
	pal_advise_hugepage(p, len);
	m->data = p;
	m->len = len;
	return MU_OK;
}

void pal_map_copy_out(const struct pal_map *m, size_t off, size_t len, void *dst)
{
	memcpy(dst, m->data + off, len);
	/* whole pages inside the range only: the pages at its edges may still be read */
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)m->data + off + pg - 1) & ~(pg - 1), e = ((uintptr_t)m->data + off + len) & ~(pg - 1);
	if (e > a)
		madvise((void *)a, e - a, MADV_DONTNEED);
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
	size_t n = m.len;
	if (m.device)
		while (n > 0 && m.data[n - 1] == 0)
			n--;
	if (n > max) {
		pal_unmap(&m);
		return mu_errf(err, MU_ERR_RANGE, "%s: file is %zu bytes, limit is %zu", path, n, max);
	}
	uint8_t *p = pal_alloc(n + 1, 16);
	if (!p) {
		pal_unmap(&m);
		return mu_errf(err, MU_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
	}
	if (n)
		memcpy(p, m.data, n);
	*out = p;
	*len = n;
	pal_unmap(&m);
	return MU_OK;
}

/* ---- secret memory ---- */

#if defined(SYS_memfd_secret)
#define PAL_SYS_MEMFD_SECRET SYS_memfd_secret
#elif defined(__x86_64__) || defined(__aarch64__) || defined(__riscv)
#define PAL_SYS_MEMFD_SECRET 447
#endif

static size_t page_round(size_t len, size_t *out)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t p = pg > 0 ? (size_t)pg : 4096;
	if (len == 0)
		len = 1;
	if (len > SIZE_MAX - (p - 1))
		return 0;
	*out = (len + p - 1) & ~(p - 1);
	return 1;
}

/* memfd_secret mapping, or NULL (errno set) when the kernel cannot give one. The kernel
 * locks such a mapping itself (and charges it to the memlock limit, refusing the mmap with
 * EAGAIN past it). Pages arrive on first touch (the kernel neither populates nor mlocks
 * such a mapping on request), and each first fault removes the page from the kernel's
 * direct map, which costs about 0.1 ms per 4 KiB page on a virtual machine: fine for keys
 * and contexts, far too slow for gigabytes of weights. */
static void *secret_memfd_map(size_t map_len)
{
#ifdef PAL_SYS_MEMFD_SECRET
	long fd = syscall(PAL_SYS_MEMFD_SECRET, (unsigned long)O_CLOEXEC);
	if (fd < 0)
		return NULL;
	void *p = MAP_FAILED;
	if (ftruncate((int)fd, (off_t)map_len) == 0)
		p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
	int e = errno;
	close((int)fd);
	if (p == MAP_FAILED) {
		errno = e;
		return NULL;
	}
	return p;
#else
	(void)map_len;
	errno = ENOSYS;
	return NULL;
#endif
}

/* Locks [p, p+len) in RAM. MLOCK_ONFAULT locks each page as it is first touched instead of
 * populating the whole range now: the memlock limit is still checked here, no page ever
 * holds data unlocked, and the cost of faulting the pages in (zeroing, huge-page
 * compaction: about a second per GB in a VM) is spread over the threads that first write
 * them, overlapping with their work. Kernels before 4.4 lack it; plain mlock then. */
static int lock_pages(void *p, size_t len)
{
#if defined(MLOCK_ONFAULT)
	if (mlock2(p, len, MLOCK_ONFAULT) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return -1;
#endif
	return mlock(p, len);
}

enum mu_err pal_secret_alloc(struct pal_secret *s, size_t len, unsigned flags, struct mu_error *err)
{
	size_t map_len;
	memset(s, 0, sizeof *s);
	if (!page_round(len, &map_len))
		return mu_errf(err, MU_ERR_NOMEM, "secret memory of %zu bytes is too large", len);

	if (!(flags & PAL_SECRET_NO_MEMFD)) {
		void *p = secret_memfd_map(map_len);
		if (p) {
			s->data = p;
			s->len = len;
			s->map_len = map_len;
			s->prot = PAL_SECRET_MEMFD;
			return MU_OK;
		}
		/* ENOSYS: kernel without secretmem; EPERM: refused by a filter or policy; ENOMEM or
		 * EAGAIN: over the lock limit, which the fallback reports in its own words. */
	}

	/* cppcheck-suppress invalidFunctionArg ; MAP_ANONYMOUS wants fd -1 (posix.cfg allows only >= 0) */
	void *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return mu_errf(err, MU_ERR_NOMEM, "cannot map %zu bytes of secret memory: %s", map_len, strerror(errno));
	/* Exclusion from core dumps is not optional: without it a crash writes the secret out. */
	if (madvise(p, map_len, MADV_DONTDUMP) != 0) {
		int e = errno;
		munmap(p, map_len);
		return mu_errf(err, MU_ERR_UNSUPPORTED, "cannot exclude secret memory from core dumps: %s", strerror(e));
	}
#ifdef MADV_WIPEONFORK
	madvise(p, map_len, MADV_WIPEONFORK); /* a forked child sees zeros; best effort */
#endif
	if (flags & PAL_SECRET_NO_MEMFD)
		pal_advise_hugepage(p, map_len);
	enum pal_secret_prot prot = PAL_SECRET_MLOCKED;
	if (lock_pages(p, map_len) != 0) {
		int e = errno;
		if (!(flags & PAL_SECRET_ALLOW_UNLOCKED)) {
			munmap(p, map_len);
			return mu_errf(err, MU_ERR_NOMEM,
				       "cannot lock %zu bytes of secret memory in RAM: %s (raise the memlock limit, "
				       "ulimit -l, or run with CAP_IPC_LOCK)",
				       map_len, strerror(e));
		}
		prot = PAL_SECRET_UNLOCKED;
	}
	s->data = p;
	s->len = len;
	s->map_len = map_len;
	s->prot = prot;
	return MU_OK;
}

void pal_secret_wipe(struct pal_secret *s, size_t n)
{
	if (!s->data)
		return;
	if (n > s->map_len)
		n = s->map_len;
	explicit_bzero(s->data, n);
}

void pal_secret_free(struct pal_secret *s)
{
	if (s->data) {
		explicit_bzero(s->data, s->map_len);
		if (s->prot == PAL_SECRET_MLOCKED)
			munlock(s->data, s->map_len);
		munmap(s->data, s->map_len);
	}
	memset(s, 0, sizeof *s);
}

const char *pal_secret_prot_name(enum pal_secret_prot p)
{
	switch (p) {
	case PAL_SECRET_MEMFD: return "memfd_secret (locked, not dumpable, outside the kernel direct map)";
	case PAL_SECRET_MLOCKED: return "mlock (locked, not dumpable)";
	case PAL_SECRET_UNLOCKED: return "UNLOCKED (not dumpable, but may be swapped out)";
	}
	return "unknown";
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
	/* One stack size on every libc (musl's default is 128 KiB, glibc's the stack rlimit): the
	 * engine's kernels keep prepared activations on the stack (up to 80 KiB). */
	pthread_attr_t attr;
	int rc = pthread_attr_init(&attr);
	if (rc == 0) {
		rc = pthread_attr_setstacksize(&attr, PAL_THREAD_STACK);
		if (rc == 0)
			rc = pthread_create(&t->t, &attr, fn, arg);
		pthread_attr_destroy(&attr);
	}
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
