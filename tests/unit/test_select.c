/* test_select.c — the sign mask, scores and budgets against a brute-force
 * reference written from ALGORITHM.md (every element scored, all sorted):
 * bf16 / f16 / f32 tensors, equal elements, NaN in weights and gradients,
 * zeros, several tensors fed in shuffled chunks, within lists, every budget,
 * k = 0 and k = all, and an over-large k refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/dtype.h"
#include "core/error.h"
#include "method/select.h"

static uint64_t rng = 0x853c49e6748fea9bull;
static uint64_t next64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}
static float unif(void)
{
	return (float)((double)(next64() >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}

#define NT 5
static const char *names[NT] = {"a.weight", "b.weight", "c.bias", "d.weight", "e.weight"};

typedef struct {
	rl_dtype dt;
	uint64_t n;
	uint8_t *w, *t;
	float *g;
	uint8_t *in; /* within membership (NULL: all) */
} tens;

static void store(rl_dtype dt, uint8_t *p, uint64_t i, float v)
{
	rl_narrow(dt, &v, p + i * rl_dtype_size(dt), 1);
}

static tens make(rl_dtype dt, uint64_t n, int ties)
{
	tens x = {dt, n, malloc(n * 4 + 1), malloc(n * 4 + 1), malloc(n * 4 + 4), NULL};
	REQUIRE(x.w && x.t && x.g);
	for (uint64_t i = 0; i < n; i++) {
		float w = unif(), t = w;
		uint64_t r = next64() % 10;
		if (r < 6)
			t = w + unif() * 0.1f;
		else if (r == 6)
			t = -w;
		store(dt, x.w, i, w);
		store(dt, x.t, i, t);
		float g = ties ? (float)(int)(unif() * 4) : unif();
		if (next64() % 50 == 0)
			g = NAN;
		if (next64() % 60 == 0)
			g = 0.0f;
		x.g[i] = g;
	}
	/* a NaN weight and an infinite gradient */
	if (n > 3) {
		store(dt, x.w, 2, NAN);
		x.g[3] = INFINITY;
	}
	return x;
}

typedef struct {
	float score;
	uint32_t key, tid;
	uint64_t idx;
} ref_item;

static int cmp_ref(const void *pa, const void *pb)
{
	const ref_item *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key > b->key ? -1 : 1;
	if (a->tid != b->tid)
		return a->tid < b->tid ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}
static int cmp_pos(const void *pa, const void *pb)
{
	const ref_item *a = pa, *b = pb;
	if (a->tid != b->tid)
		return a->tid < b->tid ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Brute force straight from the definitions. Returns the sorted selection. */
static ref_item *reference(tens *ts, const rl_sel_params *p, uint64_t *kout, uint64_t *elig)
{
	uint64_t total = 0;
	for (int j = 0; j < NT; j++)
		total += ts[j].n;
	ref_item *all = malloc((total + 1) * sizeof *all);
	REQUIRE(all);
	uint64_t m = 0;
	for (uint32_t j = 0; j < NT; j++) {
		tens *x = &ts[j];
		size_t es = rl_dtype_size(x->dt);
		for (uint64_t i = 0; i < x->n; i++) {
			if (x->in && !x->in[i])
				continue;
			float w, t;
			rl_widen(x->dt, x->w + i * es, &w, 1);
			rl_widen(x->dt, x->t + i * es, &t, 1);
			double d = (double)w - (double)t; /* NaN when either is */
			ref_item it = {0, 0, j, i};
			if (p->score == RL_SCORE_GRAD) {
				double g = x->g[i];
				if (!((d > 0 && g > 0) || (d < 0 && g < 0)))
					continue;
				it.score = fabsf(x->g[i]);
				it.key = rl_topk_key(it.score);
			} else {
				if (!(d != 0) || isnan(d))
					continue;
				if (p->score == RL_SCORE_DIFF) {
					it.score = (float)fabs(d);
					it.key = rl_topk_key(it.score);
				} else {
					it.key = rl_random_key(p->seed, names[j], i);
					it.score = (float)(it.key / 4294967296.0);
				}
			}
			if (p->budget == RL_BUDGET_THRESHOLD && !((double)it.score > p->threshold))
				continue;
			all[m++] = it;
		}
	}
	*elig = m;
	qsort(all, m, sizeof *all, cmp_ref);
	uint64_t k = m;
	if (p->budget == RL_BUDGET_COUNT)
		k = p->count < m ? p->count : m;
	else if (p->budget == RL_BUDGET_FRACTION)
		k = (uint64_t)ceil(p->fraction * (double)m);
	qsort(all, k, sizeof *all, cmp_pos);
	*kout = k;
	return all;
}

/* Feeds every tensor in random chunks, tensors in a shuffled order. */
static int run_selector(rl_selector *s, tens *ts)
{
	int order[NT] = {3, 0, 4, 1, 2};
	for (int a = NT - 1; a > 0; a--) {
		int b = (int)(next64() % (uint64_t)(a + 1)), tmp = order[a];
		order[a] = order[b];
		order[b] = tmp;
	}
	for (int oi = 0; oi < NT; oi++) {
		uint32_t j = (uint32_t)order[oi];
		tens *x = &ts[j];
		size_t es = rl_dtype_size(x->dt);
		for (uint64_t off = 0; off < x->n;) {
			uint64_t c = 1 + next64() % 5000;
			if (c > x->n - off)
				c = x->n - off;
			int rc = rl_selector_feed(s, j, names[j], x->dt, x->w + off * es,
						  x->t + off * es, off, c,
						  s->p.score == RL_SCORE_GRAD ? x->g + off : NULL);
			if (rc)
				return rc;
			off += c;
		}
	}
	return rl_selector_finish(s);
}

static void compare(const char *what, tens *ts, rl_sel_params p, int within)
{
	uint64_t cap = 0;
	for (int j = 0; j < NT; j++)
		cap += ts[j].n;
	p.cap = cap;
	uint64_t k, elig;
	ref_item *ref = reference(ts, &p, &k, &elig);
	rl_selector s;
	REQUIRE(rl_selector_init(&s, &p, NT) == 0);
	if (within) {
		REQUIRE(rl_selector_within_enable(&s) == 0);
		for (uint32_t j = 0; j < NT; j++)
			for (uint64_t i = 0; ts[j].in && i < ts[j].n; i++)
				if (ts[j].in[i])
					REQUIRE(rl_selector_within_add(&s, j, &i, 1) == 0);
	}
	int rc = run_selector(&s, ts);
	if (p.budget == RL_BUDGET_COUNT && p.count > elig) {
		CHECKF(rc == RL_EDATA, "%s: over-large k accepted (rc %d)", what, rc);
		rl_selector_free(&s);
		free(ref);
		return;
	}
	CHECKF(rc == 0, "%s: rc %d: %s", what, rc, rl_errmsg());
	CHECKF(s.k == k, "%s: k %llu, want %llu", what, (unsigned long long)s.k,
	       (unsigned long long)k);
	CHECKF(s.eligible == elig, "%s: eligible %llu, want %llu", what,
	       (unsigned long long)s.eligible, (unsigned long long)elig);
	uint64_t bad = 0;
	for (uint64_t i = 0; i < k && i < s.k; i++) {
		const rl_topk_item *it = &s.topk.buf[i];
		if (it->tensor != ref[i].tid || it->index != ref[i].idx ||
		    rl_selector_item_score(&s, it) != ref[i].score)
			bad++;
	}
	CHECKF(bad == 0, "%s: %llu of %llu selected elements differ", what, (unsigned long long)bad,
	       (unsigned long long)k);
	rl_selector_free(&s);
	free(ref);
}

static void test_all(rl_dtype dt, int ties)
{
	tens ts[NT];
	uint64_t sizes[NT] = {1000, 7, 20000, 1, 3333};
	for (int j = 0; j < NT; j++)
		ts[j] = make(dt, sizes[j], ties);
	uint64_t total = 0;
	for (int j = 0; j < NT; j++)
		total += sizes[j];

	for (int sc = 0; sc < 3; sc++) {
		rl_sel_params p = {.score = (rl_score)sc, .seed = 42};
		uint64_t counts[] = {0, 1, 10, 500, 7000, total};
		for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
			p.budget = RL_BUDGET_COUNT;
			p.count = counts[c];
			compare("count", ts, p, 0);
		}
		p.budget = RL_BUDGET_FRACTION;
		double fr[] = {0, 0.2, 0.5, 1};
		for (size_t c = 0; c < 4; c++) {
			p.fraction = fr[c];
			compare("fraction", ts, p, 0);
		}
		p.budget = RL_BUDGET_THRESHOLD;
		p.threshold = sc == 2 ? 0.9 : 0.5;
		compare("threshold", ts, p, 0);
		p.threshold = 0;
		compare("threshold 0", ts, p, 0);
	}
	/* within: a random third of the elements, fraction as in the rollback */
	for (int j = 0; j < NT; j++) {
		ts[j].in = malloc(ts[j].n);
		REQUIRE(ts[j].in);
		for (uint64_t i = 0; i < ts[j].n; i++)
			ts[j].in[i] = next64() % 3 == 0 && j != 4;
	}
	rl_sel_params p = {.score = RL_SCORE_GRAD, .budget = RL_BUDGET_FRACTION, .fraction = 0.2};
	compare("within fraction", ts, p, 1);
	p.budget = RL_BUDGET_COUNT;
	p.count = 50;
	compare("within count", ts, p, 1);
	p.score = RL_SCORE_RANDOM;
	compare("within random", ts, p, 1);
	for (int j = 0; j < NT; j++) {
		free(ts[j].w);
		free(ts[j].t);
		free(ts[j].g);
		free(ts[j].in);
	}
}

/* The NaN policy in one place: NaN gradients are counted and never chosen. */
static void test_nan_policy(void)
{
	float w[4] = {1, 1, 1, NAN}, t[4] = {0, 0, 0, 0}, g[4] = {NAN, 2, -3, 5};
	rl_sel_params p = {.score = RL_SCORE_GRAD, .budget = RL_BUDGET_THRESHOLD};
	rl_selector s;
	REQUIRE(rl_selector_init(&s, &p, 1) == 0);
	REQUIRE(rl_selector_feed(&s, 0, "x", RL_DT_F32, (uint8_t *)w, (uint8_t *)t, 0, 4, g) == 0);
	REQUIRE(rl_selector_finish(&s) == 0);
	CHECK_EQ_INT(s.nan_grad, 1);
	CHECK_EQ_INT(s.k, 1); /* only element 1: element 2 moves away, element 3 has a NaN weight */
	CHECK_EQ_INT(s.topk.buf[0].index, 1);
	rl_selector_free(&s);
	/* a within list must ascend */
	REQUIRE(rl_selector_init(&s, &p, 1) == 0);
	REQUIRE(rl_selector_within_enable(&s) == 0);
	uint64_t idx[2] = {5, 5};
	CHECK_EQ_INT(rl_selector_within_add(&s, 0, idx, 2), RL_EDATA);
	rl_selector_free(&s);
}

int main(void)
{
	test_nan_policy();
	test_all(RL_DT_BF16, 0);
	test_all(RL_DT_F32, 0);
	test_all(RL_DT_F16, 1);
	return check_done("test_select");
}
