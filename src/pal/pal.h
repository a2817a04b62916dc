/* pal.h — the platform layer. src/engine and src/wire reach the outside world only through
 * these functions, so a freestanding implementation (bare metal, seL4) can replace posix.c.
 *
 * Threads are deliberately minimal: create/join and a futex-style wait/wake on a 32-bit
 * atomic word, which is all the engine's pool needs. */
#ifndef MU_PAL_PAL_H
#define MU_PAL_PAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Memory. pal_alloc returns zeroed memory aligned to `align` (power of two, >= 16), or NULL. */
void *pal_alloc(size_t size, size_t align);
void pal_free(void *p, size_t size);
/* Ask for transparent huge pages on a large region (a hint; failure is ignored). */
void pal_advise_hugepage(void *p, size_t size);

/* A read-only view of a whole file (mmap'd on POSIX). A block device maps too (the enclave VM's
 * read-only disks): then device is 1 and len is the device's size, which is the file it was made
 * from rounded up to whole sectors with zero bytes. */
struct pal_map {
	const uint8_t *data;
	size_t len;
	int device;
};
enum mu_err pal_map_file(struct pal_map *m, const char *path, struct mu_error *err);
void pal_unmap(struct pal_map *m);
/* An anonymous private mapping of len bytes (len > 0), zeroed, advised for 2 MiB pages: bulk
 * memory that is neither secret nor locked (a host tool's copy of a model). pal_unmap frees it. */
enum mu_err pal_map_anon(struct pal_map *m, size_t len, struct mu_error *err);
/* Copies the mapped bytes [off, off + len) to dst and releases those pages of the mapping from
 * the resident set (the file is untouched; reading them again faults them back in). */
void pal_map_copy_out(const struct pal_map *m, size_t off, size_t len, void *dst);
/* Reads a whole (small) file into allocated memory; caller frees with pal_free(p, len+1).
 * The buffer is NUL-terminated for convenience. From a block device, the trailing zero bytes
 * (the sector padding) are not part of what is read. */
enum mu_err pal_read_file(const char *path, size_t max, uint8_t **out, size_t *len, struct mu_error *err);

/* Secret memory: locked, excluded from core dumps, wiped on free. Decrypted weights and keys
 * live here and nowhere else.
 *
 * The preferred backing is memfd_secret(2): pages locked in RAM, never in a core dump, not
 * inherited by fork, and removed from the kernel's direct map, so not even a kernel read
 * primitive reaches them. When the kernel lacks it (ENOSYS, or EPERM under a filter) or it
 * is refused, the fallback is an anonymous mapping with MADV_DONTDUMP, MADV_WIPEONFORK and
 * mlock2(MLOCK_ONFAULT): each page is locked from the moment it is first touched, so pages
 * are faulted in by the threads that fill them rather than all up front. An mlock failure
 * is an error unless the caller passes PAL_SECRET_ALLOW_UNLOCKED; the result says which
 * protection was achieved.
 *
 * memfd_secret has a price: 4 KiB pages only, and a first-touch fault that also edits the
 * kernel's direct map (measured ~0.1 ms per page in a VM: 17 s for 1.2 GB on two threads).
 * Bulk buffers such as decrypted weights therefore pass PAL_SECRET_NO_MEMFD, which also asks
 * for transparent huge pages (faster weight streaming); keys and key schedules use the
 * default. */
enum pal_secret_prot {
	PAL_SECRET_UNLOCKED = 0, /* degraded: not dumpable, but may be swapped (mlock failed) */
	PAL_SECRET_MLOCKED = 1,  /* anonymous, mlock'd, not dumpable, wiped in a forked child */
	PAL_SECRET_MEMFD = 2,    /* memfd_secret: locked, not dumpable, outside the direct map */
};
#define PAL_SECRET_ALLOW_UNLOCKED 1u /* degrade to PAL_SECRET_UNLOCKED when mlock fails */
#define PAL_SECRET_NO_MEMFD 2u       /* skip memfd_secret: bulk buffers, tests of the fallback */
struct pal_secret {
	uint8_t *data;   /* page-aligned, zeroed, len usable bytes (NULL when not allocated) */
	size_t len;
	size_t map_len;  /* whole pages actually mapped */
	enum pal_secret_prot prot;
};
/* len may be 0 (one page is still mapped, so data is never NULL on success). */
enum mu_err pal_secret_alloc(struct pal_secret *s, size_t len, unsigned flags, struct mu_error *err);
/* Wipes every mapped byte, unlocks and unmaps; safe on a zeroed or already freed struct. */
void pal_secret_free(struct pal_secret *s);
/* Wipes the first n bytes (n <= map_len) without freeing. */
void pal_secret_wipe(struct pal_secret *s, size_t n);
const char *pal_secret_prot_name(enum pal_secret_prot p);

/* Time and entropy. */
uint64_t pal_now_ns(void);                 /* monotonic */
enum mu_err pal_random(void *buf, size_t len, struct mu_error *err);

/* Threads. Every thread gets a stack of PAL_THREAD_STACK bytes, whatever the libc's default. */
#define PAL_THREAD_STACK (1u << 20)
struct pal_thread;
enum mu_err pal_thread_create(struct pal_thread **t, void *(*fn)(void *), void *arg, struct mu_error *err);
void pal_thread_join(struct pal_thread *t);
int pal_cpu_count(void);

/* Futex-style wait: blocks while *word == expected (spurious wakeups allowed). */
void pal_wait(uint32_t *word, uint32_t expected);
void pal_wake_all(uint32_t *word);
void pal_cpu_relax(void);

#endif
