/* par.h — a small fork-join thread pool for the engine's loops that BLAS does
 * not run (norms, activations, RoPE, widening weights).
 *
 * rl_par_for(n, grain, fn, ctx) splits [0, n) into at most rl_par_threads()
 * contiguous ranges of at least `grain` items, runs fn(ctx, i0, i1) on each
 * (the calling thread takes the first) and returns when all are done. Ranges
 * depend only on n, grain and the thread count, never on timing, so results
 * are deterministic. fn must not call rl_par_for (no nesting) and must not
 * fail; with one thread, or n < 2 * grain, fn runs once on [0, n) in the
 * caller. The workers are started on first use and stopped at exit.
 *
 * Calls from several threads at once are serialised (a mutex), so the pool is
 * safe but not meant for concurrent users.
 */
#ifndef RL_PAR_H
#define RL_PAR_H

#include <stddef.h>

typedef void (*rl_par_fn)(void *ctx, size_t i0, size_t i1);
/* The same with the range's index (0 .. rl_par_threads()-1, unique among the
 * ranges running at once): for per-thread scratch. */
typedef void (*rl_par_fn_idx)(void *ctx, int idx, size_t i0, size_t i1);

/* Threads to use (the caller included); n <= 0: the online CPUs. Takes effect
 * at the next rl_par_for (a larger count starts more workers). */
void rl_par_set_threads(int n);
int rl_par_threads(void);

void rl_par_for(size_t n, size_t grain, rl_par_fn fn, void *ctx);
void rl_par_for_idx(size_t n, size_t grain, rl_par_fn_idx fn, void *ctx);

#endif
