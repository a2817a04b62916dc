#include "engine/pool.h"

#include <stdatomic.h>
#include <stdint.h>

#include "base/limits.h"
#include "pal/pal.h"

/* Spin this many pause iterations before sleeping on the futex (~tens of microseconds). */
#define POOL_SPIN 4096

struct mu_pool_worker {
	struct mu_pool *pool;
	struct pal_thread *thread;
	int ith;
};

struct mu_pool {
	int n;                        /* threads including the caller */
	_Atomic uint32_t gen;         /* bumped once per job; workers wait for a change */
	_Atomic uint32_t pending;     /* workers still running the current job */
	_Atomic int stop;
	_Atomic uint32_t sleepers;    /* workers inside (or about to enter) pal_wait */
	mu_pool_fn fn;
	void *ctx;
	struct mu_pool_worker workers[MU_MAX_THREADS];
};

static uint32_t *futex_word(_Atomic uint32_t *a)
{
	/* _Atomic uint32_t has the size and representation of uint32_t on every target we
	 * support; the futex syscall needs the plain address. */
	return (uint32_t *)(void *)a;
}

static void *pool_worker_main(void *arg)
{
	struct mu_pool_worker *w = arg;
	struct mu_pool *p = w->pool;
	uint32_t seen = 0;

	for (;;) {
		uint32_t g;
		int spins = 0;
		while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
			if (++spins < POOL_SPIN)
				pal_cpu_relax();
			else {
				/* Count ourselves before sleeping: the futex re-checks gen, so a
				 * bump between this and pal_wait is never missed. */
				atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
				pal_wait(futex_word(&p->gen), seen);
				atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
			}
		}
		seen = g;
		if (atomic_load_explicit(&p->stop, memory_order_acquire))
			return NULL;
		p->fn(p->ctx, w->ith, p->n);
		if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1)
			pal_wake_all(futex_word(&p->pending));
	}
}

enum mu_err mu_pool_create(struct mu_pool **out, int n_threads, struct mu_error *err)
{
	if (n_threads < 1 || n_threads > MU_MAX_THREADS)
		return mu_errf(err, MU_ERR_ARG, "thread count %d out of range 1..%d", n_threads, MU_MAX_THREADS);
	struct mu_pool *p = pal_alloc(sizeof *p, 64);
	if (!p)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory for the thread pool");
	p->n = n_threads;
	atomic_init(&p->gen, 0);
	atomic_init(&p->pending, 0);
	atomic_init(&p->stop, 0);
	atomic_init(&p->sleepers, 0);
	for (int i = 1; i < n_threads; i++) {
		p->workers[i].pool = p;
		p->workers[i].ith = i;
		enum mu_err rc = pal_thread_create(&p->workers[i].thread, pool_worker_main, &p->workers[i], err);
		if (rc) {
			p->n = i; /* destroy joins the ones that started */
			mu_pool_destroy(p);
			return rc;
		}
	}
	*out = p;
	return MU_OK;
}

void mu_pool_run(struct mu_pool *p, mu_pool_fn fn, void *ctx)
{
	if (p->n == 1) {
		fn(ctx, 0, 1);
		return;
	}
	p->fn = fn;
	p->ctx = ctx;
	atomic_store_explicit(&p->pending, (uint32_t)(p->n - 1), memory_order_relaxed);
	atomic_fetch_add_explicit(&p->gen, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst))
		pal_wake_all(futex_word(&p->gen));

	fn(ctx, 0, p->n);

	uint32_t left;
	int spins = 0;
	while ((left = atomic_load_explicit(&p->pending, memory_order_acquire)) != 0) {
		if (++spins < POOL_SPIN)
			pal_cpu_relax();
		else
			pal_wait(futex_word(&p->pending), left);
	}
}

void mu_pool_destroy(struct mu_pool *p)
{
	if (!p)
		return;
	if (p->n > 1) {
		atomic_store_explicit(&p->stop, 1, memory_order_release);
		atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
		pal_wake_all(futex_word(&p->gen));
		for (int i = 1; i < p->n; i++)
			pal_thread_join(p->workers[i].thread);
	}
	pal_free(p, sizeof *p);
}

int mu_pool_threads(const struct mu_pool *p) { return p->n; }
