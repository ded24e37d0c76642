/* span.h — sorted element writes coalesced into spans, one write each.
 *
 * A transaction patches n elements of one tensor: element idx[i] lies at file
 * offset base + idx[i] * es, idx strictly ascending. One pwrite(2) per run of
 * adjacent indices costs a system call per run, yet at the densities of a
 * restore step (0.2% of a bf16 tensor is one element per KiB on average)
 * nearly every page of the file gets a run: the page cache, the writeback and
 * the disk work in whole pages whatever the number of calls.
 *
 * A span is a group of consecutive runs written as one byte range [lo, hi)
 * whose pages are exactly the pages its runs touch. A run joins the span when
 * it starts in the page holding the span's last byte or in the next page (so
 * no page lies wholly between them: merging dirties no page that the runs do
 * not dirty anyway), and while hi - lo stays within max_bytes (the caller's
 * buffer); a single run longer than that is a span by itself. Spans are
 * maximal under these two rules.
 *
 * The bytes of a span between its runs ("filler") are written back with the
 * bytes the file holds, read just before (journal.c does this under the
 * writer's lock), so they never change value: a crash in the middle of a span
 * leaves some elements old, some new and every other byte as it was, the same
 * states element-by-element writes can leave.
 */
#ifndef RL_SPAN_H
#define RL_SPAN_H

#include <stddef.h>
#include <stdint.h>

typedef struct rl_span {
	uint64_t first, end; /* the span holds elements idx[first..end) */
	uint64_t runs;	     /* runs of adjacent indices in it (1: no filler) */
	uint64_t lo, hi;     /* file bytes [lo, hi) */
} rl_span;

/* The span starting at element pos (pos < n). page: the page size (a power
 * of two); max_bytes >= es. The caller guarantees base + (idx[n-1] + 1) * es
 * does not overflow (the tensor lies inside its file). O(end - pos). */
void rl_span_next(const uint64_t *idx, uint64_t n, uint64_t pos, uint64_t base, size_t es,
		  uint64_t page, uint64_t max_bytes, rl_span *sp);

#endif
