/* pool.h — a persistent thread pool for the forward pass.
 *
 * Threads are created once. mu_pool_run(p, fn, ctx) calls fn(ctx, ith, nth) on every thread
 * (the caller is thread 0) and returns when all have finished: one fork/join barrier per
 * call. Workers spin briefly on a generation counter, then sleep on it (futex), so short
 * back-to-back jobs stay cheap and an idle pool costs nothing.
 *
 * Determinism does not depend on the pool: callers split work so that every output element
 * is computed entirely by one thread, in the canonical order, whatever nth is.
 */
#ifndef MU_ENGINE_POOL_H
#define MU_ENGINE_POOL_H

#include "base/err.h"

struct mu_pool;
typedef void (*mu_pool_fn)(void *ctx, int ith, int nth);

enum mu_err mu_pool_create(struct mu_pool **out, int n_threads, struct mu_error *err);
void mu_pool_destroy(struct mu_pool *p);
void mu_pool_run(struct mu_pool *p, mu_pool_fn fn, void *ctx);
int mu_pool_threads(const struct mu_pool *p);

/* The share [*begin, *end) of n items that thread ith of nth owns (contiguous, balanced). */
static inline void mu_pool_split(unsigned long n, int ith, int nth, unsigned long *begin, unsigned long *end)
{
	unsigned long base = n / (unsigned long)nth, extra = n % (unsigned long)nth;
	unsigned long i = (unsigned long)ith;
	*begin = i * base + (i < extra ? i : extra);
	*end = *begin + base + (i < extra ? 1 : 0);
}

#endif
