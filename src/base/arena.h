/* arena.h — a bump allocator over memory the caller grants. Nothing is freed piecemeal; the
 * owner frees (or reuses) the whole block. Allocation failure is an error, never a crash. */
#ifndef MU_BASE_ARENA_H
#define MU_BASE_ARENA_H

#include <stddef.h>
#include <stdint.h>

struct mu_arena {
	uint8_t *base;
	size_t len;
	size_t used;
};

static inline void mu_arena_init(struct mu_arena *a, void *mem, size_t len)
{
	a->base = (uint8_t *)mem;
	a->len = len;
	a->used = 0;
}

/* Returns align-aligned memory of n bytes, or NULL when the arena is exhausted.
 * align must be a power of two. A NULL arena base acts as a pure size counter: every call
 * "succeeds" with a NULL result and advances used, so x_size() can be computed by running
 * the same code as x_init() (check mu_arena_counting()). */
static inline void *mu_arena_alloc(struct mu_arena *a, size_t n, size_t align)
{
	uintptr_t start = (uintptr_t)a->base + a->used;
	size_t pad = (size_t)((align - (start & (align - 1))) & (align - 1));
	if (a->base == NULL) {
		a->used += pad + n;
		return NULL;
	}
	if (pad > a->len - a->used || n > a->len - a->used - pad)
		return NULL;
	a->used += pad;
	void *p = a->base + a->used;
	a->used += n;
	return p;
}

static inline int mu_arena_counting(const struct mu_arena *a) { return a->base == NULL; }

#endif
