/* bench_topk.c — the exact top-k on a stream of n scores, k = rate * n, three ways:
 *
 *   bench_topk buffer N RATE   rl_topk (2k buffer + quickselect, running threshold)
 *   bench_topk heap   N RATE   a bounded min-heap of k items (O(n log k) worst case)
 *   bench_topk all    N RATE   the reference's way: every score in one array,
 *                              then a selection over all of it (O(n) memory)
 *   ... ORDER: append "asc" to feed scores in ascending order (the heap's worst case)
 *
 * Scores are |x| of xorshift-generated floats, produced on the fly (no input
 * array except for "all"), the same sequence for every method. Prints one
 * line: method, n, k, seconds, peak RSS in MiB, and a checksum of the kept
 * (tensor, index) set, which must agree between methods. Run each method in
 * its own process (peak RSS is per process): tests/bench/bench_select.sh does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/error.h"
#include "core/util.h"
#include "method/topk.h"

static uint64_t rng;
static inline float next_score(uint64_t i, int asc, uint64_t n)
{
	if (asc)
		return (float)((double)i / (double)n);
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 40) / 16777216.0);
}

/* heap of items, the worst at the root */
static void sift_down(rl_topk_item *h, uint64_t n, uint64_t i)
{
	for (;;) {
		uint64_t l = 2 * i + 1, r = l + 1, w = i;
		if (l < n && rl_topk_better(&h[w], &h[l]))
			w = l;
		if (r < n && rl_topk_better(&h[w], &h[r]))
			w = r;
		if (w == i)
			return;
		rl_topk_item t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

static void sift_up(rl_topk_item *h, uint64_t i)
{
	while (i) {
		uint64_t p = (i - 1) / 2;
		if (!rl_topk_better(&h[p], &h[i]))
			return;
		rl_topk_item t = h[i];
		h[i] = h[p];
		h[p] = t;
		i = p;
	}
}

static uint64_t checksum(const rl_topk_item *it, uint64_t n)
{
	uint64_t s = 0;
	for (uint64_t i = 0; i < n; i++)
		s += (it[i].index + 1) * 0x9e3779b97f4a7c15ull ^ it[i].tensor;
	return s;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench_topk buffer|heap|all N RATE [asc]\n");
		return 2;
	}
	const char *method = argv[1];
	uint64_t n = strtoull(argv[2], NULL, 10);
	double rate = strtod(argv[3], NULL);
	int asc = argc > 4 && strcmp(argv[4], "asc") == 0;
	uint64_t k = (uint64_t)((double)n * rate + 0.999999);
	const uint64_t per_tensor = 1u << 24; /* ~16.7M scores per "tensor" */
	rng = 88172645463325252ull;
	double t0 = rl_now();
	uint64_t sum = 0, kept = 0;
	if (strcmp(method, "buffer") == 0) {
		rl_topk t;
		rl_topk_init(&t, k);
		for (uint64_t i = 0; i < n; i++)
			rl_topk_push(&t, rl_topk_key(next_score(i, asc, n)),
				     (uint32_t)(i / per_tensor), i % per_tensor);
		if (rl_topk_finish(&t))
			return 4;
		kept = t.n;
		sum = checksum(t.buf, t.n);
		rl_topk_free(&t);
	} else if (strcmp(method, "heap") == 0) {
		rl_topk_item *h = malloc((k ? k : 1) * sizeof *h);
		uint64_t m = 0;
		for (uint64_t i = 0; i < n; i++) {
			rl_topk_item it = {rl_topk_key(next_score(i, asc, n)),
					   (uint32_t)(i / per_tensor), i % per_tensor};
			if (m < k) {
				h[m] = it;
				sift_up(h, m++);
			} else if (k && rl_topk_better(&it, &h[0])) {
				h[0] = it;
				sift_down(h, m, 0);
			}
		}
		kept = m;
		sum = checksum(h, m);
		free(h);
	} else {
		/* the reference's way: all scores materialised, then one selection */
		rl_topk_item *all = malloc(n * sizeof *all);
		if (!all)
			return 4;
		for (uint64_t i = 0; i < n; i++) {
			all[i].key = rl_topk_key(next_score(i, asc, n));
			all[i].tensor = (uint32_t)(i / per_tensor);
			all[i].index = i % per_tensor;
		}
		uint64_t seed = 1;
		rl_topk_select(all, n, k, &seed);
		kept = k;
		sum = checksum(all, k);
		free(all);
	}
	printf("%-6s n=%llu k=%llu %s: %.2f s, peak RSS %.1f MiB, set checksum %016llx (%llu "
	       "kept)\n",
	       method, (unsigned long long)n, (unsigned long long)k, asc ? "ascending" : "random",
	       rl_now() - t0, (double)rl_peak_rss() / 1048576.0, (unsigned long long)sum,
	       (unsigned long long)kept);
	return 0;
}
