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

/* A read-only view of a whole file (mmap'd on POSIX). */
struct pal_map {
	const uint8_t *data;
	size_t len;
};
enum mu_err pal_map_file(struct pal_map *m, const char *path, struct mu_error *err);
void pal_unmap(struct pal_map *m);
/* Reads a whole (small) file into allocated memory; caller frees with pal_free(p, len+1).
 * The buffer is NUL-terminated for convenience. */
enum mu_err pal_read_file(const char *path, size_t max, uint8_t **out, size_t *len, struct mu_error *err);

/* Time and entropy. */
uint64_t pal_now_ns(void);                 /* monotonic */
enum mu_err pal_random(void *buf, size_t len, struct mu_error *err);

/* Threads. */
struct pal_thread;
enum mu_err pal_thread_create(struct pal_thread **t, void *(*fn)(void *), void *arg, struct mu_error *err);
void pal_thread_join(struct pal_thread *t);
int pal_cpu_count(void);

/* Futex-style wait: blocks while *word == expected (spurious wakeups allowed). */
void pal_wait(uint32_t *word, uint32_t expected);
void pal_wake_all(uint32_t *word);
void pal_cpu_relax(void);

#endif
