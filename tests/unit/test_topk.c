/* test_topk.c — the exact top-k against brute force (sort everything by the
 * documented order, take the first k): random keys, heavy ties, zeros, k = 0,
 * k = 1, k = all, k > n, one tensor and many, ascending / descending /
 * shuffled push orders (the answer must not depend on the order), and the
 * key mapping's order on floats (NaN and -0 policy). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "method/topk.h"

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint64_t next64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Brute force: qsort by the documented "better" order. */
static int cmp_better(const void *pa, const void *pb)
{
	const rl_topk_item *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key > b->key ? -1 : 1;
	if (a->tensor != b->tensor)
		return a->tensor < b->tensor ? -1 : 1;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return 0;
}

static int cmp_pos(const void *pa, const void *pb)
{
	const rl_topk_item *a = pa, *b = pb;
	if (a->tensor != b->tensor)
		return a->tensor < b->tensor ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

enum { ORDER_SHUFFLED, ORDER_ASC, ORDER_DESC, ORDER_POS };

static int cmp_worse(const void *a, const void *b)
{
	return -cmp_better(a, b);
}

/* Runs rl_topk over items (in the given push order) and compares with brute force. */
static void check_case(const char *what, const rl_topk_item *items, uint64_t n, uint64_t k,
		       int order)
{
	rl_topk_item *in = malloc((n ? n : 1) * sizeof *in);
	rl_topk_item *want = malloc((n ? n : 1) * sizeof *want);
	REQUIRE(in && want);
	memcpy(in, items, n * sizeof *in);
	memcpy(want, items, n * sizeof *want);
	if (order == ORDER_ASC)
		qsort(in, n, sizeof *in, cmp_worse);
	else if (order == ORDER_DESC)
		qsort(in, n, sizeof *in, cmp_better);
	else if (order == ORDER_POS)
		qsort(in, n, sizeof *in, cmp_pos);

	rl_topk t;
	rl_topk_init(&t, k);
	for (uint64_t i = 0; i < n; i++)
		REQUIRE(rl_topk_push(&t, in[i].key, in[i].tensor, in[i].index) == 0);
	REQUIRE(rl_topk_finish(&t) == 0);

	qsort(want, n, sizeof *want, cmp_better);
	uint64_t m = k < n ? k : n;
	qsort(want, m, sizeof *want, cmp_pos);
	CHECKF(t.n == m, "%s (order %d): kept %llu, want %llu", what, order,
	       (unsigned long long)t.n, (unsigned long long)m);
	uint64_t bad = 0;
	for (uint64_t i = 0; i < m && i < t.n; i++)
		if (memcmp(&t.buf[i], &want[i], sizeof want[i]) != 0 && bad++ == 0)
			fprintf(stderr, "%s: first difference at %llu\n", what,
				(unsigned long long)i);
	CHECKF(bad == 0, "%s (order %d, n %llu, k %llu): %llu items differ", what, order,
	       (unsigned long long)n, (unsigned long long)k, (unsigned long long)bad);
	uint32_t mn = m ? UINT32_MAX : 0;
	for (uint64_t i = 0; i < m; i++)
		mn = want[i].key < mn ? want[i].key : mn;
	CHECK_EQ_INT(rl_topk_min_key(&t), mn);
	CHECK_EQ_INT(t.pushed, n);
	rl_topk_free(&t);
	free(in);
	free(want);
}

/* n items over ntensors tensors; keys drawn from `distinct` values (ties when small). */
static rl_topk_item *make(uint64_t n, uint32_t ntensors, uint32_t distinct, int zeros)
{
	rl_topk_item *it = malloc(n * sizeof *it);
	REQUIRE(it);
	for (uint64_t i = 0; i < n; i++) {
		it[i].tensor = (uint32_t)(next64() % ntensors);
		it[i].index = i; /* unique (tensor, index) pairs */
		float s = (float)(next64() % distinct) / (float)distinct * 7.0f;
		if (zeros && next64() % 3 == 0)
			s = 0.0f;
		it[i].key = rl_topk_key(s);
	}
	return it;
}

static void test_orders_and_sizes(void)
{
	static const uint64_t ns[] = {0, 1, 2, 17, 1000, 6000};
	static const uint32_t dist[] = {1, 3, 1000, 1u << 30};
	for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
		for (size_t b = 0; b < sizeof dist / sizeof dist[0]; b++) {
			uint64_t n = ns[a];
			rl_topk_item *it = make(n ? n : 1, b % 2 ? 1 : 37, dist[b], b == 1);
			uint64_t ks[] = {
				0, 1,	  2,	      n / 500, n / 10, n / 2, n ? n - 1 : 0,
				n, n + 5, RL_TOPK_ALL};
			for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++)
				for (int order = 0; order < 4; order++)
					check_case("sizes", it, n, ks[c], order);
			free(it);
		}
}

/* Many compactions: a long stream with a small k, adversarial ascending order. */
static void test_long_stream(void)
{
	uint64_t n = 100000;
	rl_topk_item *it = make(n, 300, 1u << 20, 0);
	check_case("long", it, n, 600, ORDER_ASC);
	check_case("long", it, n, 600, ORDER_SHUFFLED);
	check_case("long ties", it, n, 77, ORDER_POS);
	free(it);
	/* every key equal: the tie-break alone decides */
	it = make(n, 5, 1, 0);
	check_case("all equal", it, n, 1234, ORDER_SHUFFLED);
	check_case("all equal", it, n, 1234, ORDER_DESC);
	free(it);
}

static void test_select_direct(void)
{
	/* rl_topk_select puts exactly the m best first (unordered). */
	uint64_t seed = 1;
	for (int rep = 0; rep < 50; rep++) {
		uint64_t n = 1 + next64() % 500, m = next64() % (n + 1);
		rl_topk_item *it = make(n, 4, 10, rep % 2);
		rl_topk_item *ref = malloc(n * sizeof *ref);
		REQUIRE(ref);
		memcpy(ref, it, n * sizeof *ref);
		rl_topk_select(it, n, m, &seed);
		qsort(ref, n, sizeof *ref, cmp_better);
		qsort(it, m, sizeof *it, cmp_better);
		CHECK(memcmp(it, ref, m * sizeof *it) == 0);
		free(it);
		free(ref);
	}
}

static void test_key_order(void)
{
	/* order-preserving on non-negative floats, including denormals and inf */
	float v[] = {0.0f, 1e-45f, 1e-40f, 1.17549435e-38f, 1e-10f, 0.5f, 1.0f, 3e38f, INFINITY};
	for (size_t i = 0; i + 1 < sizeof v / sizeof v[0]; i++)
		CHECKF(rl_topk_key(v[i]) < rl_topk_key(v[i + 1]), "%g vs %g", (double)v[i],
		       (double)v[i + 1]);
	for (int i = 0; i < 100000; i++) {
		uint32_t a = (uint32_t)next64() & 0x7fffffffu, b = (uint32_t)next64() & 0x7fffffffu;
		float fa, fb;
		memcpy(&fa, &a, 4);
		memcpy(&fb, &b, 4);
		if (isnan(fa) || isnan(fb))
			continue;
		CHECK((fa < fb) == (rl_topk_key(fa) < rl_topk_key(fb)));
		CHECK(rl_topk_score(rl_topk_key(fa)) == fa);
	}
	/* NaN and -0 never outrank anything */
	CHECK_EQ_INT(rl_topk_key(NAN), 0);
	CHECK_EQ_INT(rl_topk_key(-NAN), 0);
	CHECK_EQ_INT(rl_topk_key(-0.0f), 0);
	CHECK_EQ_INT(rl_topk_key(-1.0f), 0);
}

/* k = 0 keeps nothing, even the largest possible key. */
static void test_k0_rejects_everything(void)
{
	rl_topk t;
	rl_topk_init(&t, 0);
	REQUIRE(rl_topk_push(&t, UINT32_MAX, 0, 0) == 0);
	REQUIRE(rl_topk_push(&t, rl_topk_key(INFINITY), 0, 1) == 0);
	REQUIRE(rl_topk_finish(&t) == 0);
	CHECK_EQ_INT(t.n, 0);
	rl_topk_free(&t);
}

int main(void)
{
	test_key_order();
	test_select_direct();
	test_orders_and_sizes();
	test_long_stream();
	test_k0_rejects_everything();
	return check_done("test_topk");
}
