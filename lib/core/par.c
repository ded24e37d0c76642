/* par.c — fork-join pool (see par.h): workers wait on a condition variable for
 * a new generation of work, take their range, and count down to the caller. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/par.h"

#define MAX_THREADS 256

static struct {
	pthread_mutex_t call; /* one rl_par_for at a time */
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	pthread_t tid[MAX_THREADS];
	int nworkers; /* started */
	int want;     /* threads requested (0: online CPUs) */
	unsigned long gen;
	int quit;
	/* the current job */
	rl_par_fn fn;
	rl_par_fn_idx fni;
	void *ctx;
	size_t n, chunk;
	int active; /* workers taking part (ranges 1..active) */
	int pending;
} pool = {.call = PTHREAD_MUTEX_INITIALIZER,
	  .mu = PTHREAD_MUTEX_INITIALIZER,
	  .work = PTHREAD_COND_INITIALIZER,
	  .done = PTHREAD_COND_INITIALIZER};

void rl_par_set_threads(int n)
{
	pthread_mutex_lock(&pool.call);
	pool.want = n > MAX_THREADS ? MAX_THREADS : n < 0 ? 0 : n;
	pthread_mutex_unlock(&pool.call);
}

/* The online CPUs, asked once: glibc's sysconf(_SC_NPROCESSORS_ONLN) opens,
 * reads and closes /sys/devices/system/cpu/online at every call, and this is
 * asked at every rl_par_for (generation: 40 thousand times a minute, a
 * tenth of rl-eval's system time). */
static pthread_once_t online_once = PTHREAD_ONCE_INIT;
static int online;

static void online_init(void)
{
	long c = sysconf(_SC_NPROCESSORS_ONLN);
	online = c < 1 ? 1 : c > MAX_THREADS ? MAX_THREADS : (int)c;
}

int rl_par_threads(void)
{
	int n = pool.want;
	if (n <= 0) {
		pthread_once(&online_once, online_init);
		n = online;
	}
	return n;
}

static void run_range(int idx)
{
	size_t i0 = (size_t)idx * pool.chunk, i1 = i0 + pool.chunk;
	if (i1 > pool.n)
		i1 = pool.n;
	if (i0 < i1) {
		if (pool.fni)
			pool.fni(pool.ctx, idx, i0, i1);
		else
			pool.fn(pool.ctx, i0, i1);
	}
}

static void *worker(void *arg)
{
	int id = (int)(size_t)arg; /* 1-based: range 0 is the caller's */
	unsigned long seen = 0;
	pthread_mutex_lock(&pool.mu);
	for (;;) {
		while (!pool.quit && pool.gen == seen)
			pthread_cond_wait(&pool.work, &pool.mu);
		if (pool.quit)
			break;
		seen = pool.gen;
		if (id > pool.active)
			continue;
		pthread_mutex_unlock(&pool.mu);
		run_range(id);
		pthread_mutex_lock(&pool.mu);
		if (--pool.pending == 0)
			pthread_cond_signal(&pool.done);
	}
	pthread_mutex_unlock(&pool.mu);
	return NULL;
}

static void shutdown_pool(void)
{
	pthread_mutex_lock(&pool.mu);
	pool.quit = 1;
	pthread_cond_broadcast(&pool.work);
	pthread_mutex_unlock(&pool.mu);
	for (int i = 0; i < pool.nworkers; i++)
		pthread_join(pool.tid[i], NULL);
	pool.nworkers = 0;
}

static void par_run(size_t n, size_t grain, rl_par_fn fn, rl_par_fn_idx fni, void *ctx)
{
	if (grain < 1)
		grain = 1;
	int threads = rl_par_threads();
	size_t parts = n / grain;
	if (parts > (size_t)threads)
		parts = (size_t)threads;
	if (parts < 2) {
		if (n && fni)
			fni(ctx, 0, 0, n);
		else if (n)
			fn(ctx, 0, n);
		return;
	}
	pthread_mutex_lock(&pool.call);
	/* start missing workers (at least parts - 1) */
	while (pool.nworkers < (int)parts - 1) {
		if (pool.nworkers == 0 && !pool.quit) {
			static int registered;
			if (!registered && atexit(shutdown_pool) == 0)
				registered = 1;
		}
		if (pthread_create(&pool.tid[pool.nworkers], NULL, worker,
				   (void *)(size_t)(pool.nworkers + 1)) != 0)
			break;
		pool.nworkers++;
	}
	if (pool.nworkers < (int)parts - 1)
		parts = (size_t)pool.nworkers + 1;
	pthread_mutex_lock(&pool.mu);
	pool.fn = fn;
	pool.fni = fni;
	pool.ctx = ctx;
	pool.n = n;
	pool.chunk = (n + parts - 1) / parts;
	pool.active = (int)parts - 1;
	pool.pending = pool.active;
	pool.gen++;
	pthread_cond_broadcast(&pool.work);
	pthread_mutex_unlock(&pool.mu);
	run_range(0);
	pthread_mutex_lock(&pool.mu);
	while (pool.pending > 0)
		pthread_cond_wait(&pool.done, &pool.mu);
	pthread_mutex_unlock(&pool.mu);
	pthread_mutex_unlock(&pool.call);
}

void rl_par_for(size_t n, size_t grain, rl_par_fn fn, void *ctx)
{
	par_run(n, grain, fn, NULL, ctx);
}

void rl_par_for_idx(size_t n, size_t grain, rl_par_fn_idx fn, void *ctx)
{
	par_run(n, grain, NULL, fn, ctx);
}
