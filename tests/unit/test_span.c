/* test_span.c — rl_span_next against the definition in span.h, checked by
 * brute force on random index sets: spans partition the elements in order;
 * each span's bytes run from its first element to the end of its last; its
 * pages are exactly the pages its elements touch (no page dirtied that the
 * elements do not dirty); its length stays within the cap unless it is one
 * run; and it is maximal (the next run could not have joined it). */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "core/error.h"
#include "core/span.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Number of runs (maximal groups of adjacent indices) in idx[a..b). */
static uint64_t count_runs(const uint64_t *idx, uint64_t a, uint64_t b)
{
	uint64_t r = 0;
	for (uint64_t i = a; i < b; i++)
		if (i == a || idx[i] != idx[i - 1] + 1)
			r++;
	return r;
}

/* stamp[pg] = mark for every page an element of idx[a..b) has a byte in. */
static void mark_pages(const uint64_t *idx, uint64_t a, uint64_t b, uint64_t base, size_t es,
		       uint64_t page, uint32_t *stamp, uint32_t mark)
{
	for (uint64_t i = a; i < b; i++) {
		uint64_t lo = base + idx[i] * es, hi = lo + es;
		for (uint64_t pg = lo / page; pg <= (hi - 1) / page; pg++)
			stamp[pg] = mark;
	}
}

/* pages of the largest layout below: (100000 + 200000 * 8) / 64 */
static uint32_t stamp[(100000 + 200000 * 8) / 64 + 2];

static void check_set(const uint64_t *idx, uint64_t n, uint64_t base, size_t es, uint64_t page,
		      uint64_t cap, const char *what)
{
	memset(stamp, 0, sizeof stamp);
	uint64_t pos = 0, nspans = 0;
	rl_span prev = {0};
	while (pos < n) {
		rl_span sp;
		rl_span_next(idx, n, pos, base, es, page, cap, &sp);
		nspans++;
		CHECKF(sp.first == pos && sp.end > pos && sp.end <= n, "%s: span [%llu, %llu)",
		       what, (unsigned long long)sp.first, (unsigned long long)sp.end);
		if (sp.end <= pos || sp.end > n)
			return;
		CHECK_EQ_INT(sp.lo, base + idx[sp.first] * es);
		CHECK_EQ_INT(sp.hi, base + (idx[sp.end - 1] + 1) * es);
		CHECK_EQ_INT(sp.runs, count_runs(idx, sp.first, sp.end));
		/* the span's pages are exactly the pages its elements touch */
		mark_pages(idx, sp.first, sp.end, base, es, page, stamp, (uint32_t)nspans);
		for (uint64_t pg = sp.lo / page; pg <= (sp.hi - 1) / page; pg++)
			CHECKF(stamp[pg] == (uint32_t)nspans,
			       "%s: span [%llu, %llu) covers page %llu that no element touches",
			       what, (unsigned long long)sp.first, (unsigned long long)sp.end,
			       (unsigned long long)pg);
		CHECKF(sp.runs == 1 || sp.hi - sp.lo <= cap, "%s: %llu runs, %llu bytes > cap %llu",
		       what, (unsigned long long)sp.runs, (unsigned long long)(sp.hi - sp.lo),
		       (unsigned long long)cap);
		/* maximal: the previous span could not have taken this span's first run */
		if (nspans > 1) {
			uint64_t e = sp.first + 1;
			while (e < sp.end && idx[e] == idx[e - 1] + 1)
				e++;
			uint64_t rlo = base + idx[sp.first] * es,
				 rhi = base + (idx[e - 1] + 1) * es;
			int gap_page = rlo / page > (prev.hi - 1) / page + 1;
			CHECKF(gap_page || rhi - prev.lo > cap,
			       "%s: span at %llu could have joined the previous one", what,
			       (unsigned long long)sp.first);
		}
		prev = sp;
		pos = sp.end;
	}
}

int main(void)
{
	static uint64_t idx[20000];
	static const size_t sizes[] = {1, 2, 4, 8};
	static const uint64_t pages[] = {64, 4096};
	int sets = 0;
	for (int round = 0; round < 400; round++) {
		size_t es = sizes[rnd() % 4];
		uint64_t page = pages[rnd() % 2];
		uint64_t numel = 1 + rnd() % 200000;
		/* densities from one element in a few to one in tens of thousands,
		 * sometimes in clusters of adjacent elements */
		uint64_t stride = 1 + rnd() % (round % 3 == 0 ? 4 : round % 3 == 1 ? 600 : 40000);
		int clustered = rnd() % 2;
		uint64_t n = 0;
		for (uint64_t i = rnd() % stride; i < numel && n < 20000;) {
			idx[n++] = i;
			i += clustered && rnd() % 4 ? 1 : 1 + rnd() % (2 * stride);
		}
		if (!n)
			continue;
		uint64_t base = rnd() % 100000;
		uint64_t cap = rnd() % 2 ? (uint64_t)4 << 20 : es * (1 + rnd() % 3000);
		char what[128];
		snprintf(what, sizeof what, "round %d (es %zu, page %llu, n %llu, cap %llu)", round,
			 es, (unsigned long long)page, (unsigned long long)n,
			 (unsigned long long)cap);
		check_set(idx, n, base, es, page, cap, what);
		sets++;
	}
	/* corner cases: one element; all adjacent (one run, over the cap); two
	 * elements exactly one untouched page apart, and just less */
	idx[0] = 5;
	check_set(idx, 1, 0, 2, 4096, 4096, "one element");
	for (int i = 0; i < 5000; i++)
		idx[i] = (uint64_t)i + 10;
	check_set(idx, 5000, 0, 2, 4096, 64, "one long run");
	rl_span sp;
	rl_span_next(idx, 5000, 0, 0, 2, 4096, 64, &sp);
	CHECK_EQ_INT(sp.end, 5000);
	CHECK_EQ_INT(sp.runs, 1);
	idx[0] = 0;    /* bytes [0, 2): page 0 */
	idx[1] = 4096; /* bytes [8192, 8194): page 2; page 1 untouched */
	rl_span_next(idx, 2, 0, 0, 2, 4096, 1 << 20, &sp);
	CHECK_EQ_INT(sp.end, 1);
	idx[1] = 4095; /* bytes [8190, 8192): page 1, adjacent */
	rl_span_next(idx, 2, 0, 0, 2, 4096, 1 << 20, &sp);
	CHECK_EQ_INT(sp.end, 2);
	CHECK_EQ_INT(sp.hi - sp.lo, 8192);
	CHECK(sets > 300);
	return check_done("test_span");
}
