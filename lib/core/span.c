/* span.c — coalescing sorted element writes into spans (see span.h). */
#include "core/span.h"

void rl_span_next(const uint64_t *idx, uint64_t n, uint64_t pos, uint64_t base, size_t es,
		  uint64_t page, uint64_t max_bytes, rl_span *sp)
{
	uint64_t i = pos, lo = base + idx[pos] * es, hi = lo, runs = 0;
	while (i < n) {
		/* the run idx[i..e) */
		uint64_t e = i + 1;
		while (e < n && idx[e] == idx[i] + (e - i))
			e++;
		uint64_t rlo = base + idx[i] * es, rhi = base + (idx[e - 1] + 1) * es;
		if (runs && (rlo / page > (hi - 1) / page + 1 || rhi - lo > max_bytes))
			break; /* a whole page would lie between, or too long */
		hi = rhi;
		runs++;
		i = e;
	}
	sp->first = pos;
	sp->end = i;
	sp->runs = runs;
	sp->lo = lo;
	sp->hi = hi;
}
