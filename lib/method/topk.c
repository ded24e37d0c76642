/* topk.c — exact global top-k with a running threshold (see topk.h). */
#include <stdlib.h>

#include "core/error.h"
#include "core/util.h"
#include "method/topk.h"

#define MIN_CAP 1024u

void rl_topk_init(rl_topk *t, uint64_t k)
{
	memset(t, 0, sizeof *t);
	t->k = k;
	t->limit = (k == RL_TOPK_ALL || k > UINT64_MAX / 4) ? UINT64_MAX : 2 * k;
	if (k == 0)
		t->thr = UINT32_MAX; /* nothing but a +NaN-pattern key could pass; see push_slow */
	t->seed = 0x9e3779b97f4a7c15ull;
}

void rl_topk_free(rl_topk *t)
{
	free(t->buf);
	t->buf = NULL;
	t->n = t->cap = 0;
}

static void swap_items(rl_topk_item *a, rl_topk_item *b)
{
	rl_topk_item t = *a;
	*a = *b;
	*b = t;
}

void rl_topk_select(rl_topk_item *it, uint64_t n, uint64_t m, uint64_t *seed)
{
	/* Invariant: the answer's boundary lies in it[lo..hi); everything before
	 * lo is among the m best, everything from hi on is not. */
	uint64_t lo = 0, hi = n;
	if (m == 0 || m >= n)
		return;
	while (hi - lo > 1) {
		uint64_t p = lo + rl_splitmix64(seed) % (hi - lo);
		rl_topk_item pivot = it[p];
		/* Three-way partition: [lo,lt) better than pivot, [lt,gt) equal to it
		 * (only the pivot itself: the order is total and items are distinct
		 * unless the caller pushed duplicates), [gt,hi) worse. */
		uint64_t lt = lo, i = lo, gt = hi;
		while (i < gt) {
			if (rl_topk_better(&it[i], &pivot)) {
				swap_items(&it[i++], &it[lt++]);
			} else if (rl_topk_better(&pivot, &it[i])) {
				swap_items(&it[i], &it[--gt]);
			} else {
				i++;
			}
		}
		if (m < lt)
			hi = lt;
		else if (m <= gt)
			return; /* the first m are the m best */
		else
			lo = gt;
	}
}

/* Keeps the k best of buf and raises the threshold to the k-th best key. */
static void compact(rl_topk *t)
{
	rl_topk_select(t->buf, t->n, t->k, &t->seed);
	t->n = t->k;
	uint32_t mn = UINT32_MAX;
	for (uint64_t i = 0; i < t->n; i++)
		if (t->buf[i].key < mn)
			mn = t->buf[i].key;
	t->thr = mn;
	t->compacted++;
}

int rl_topk_push_slow(rl_topk *t, uint32_t key, uint32_t tensor, uint64_t index)
{
	if (t->err)
		return t->err;
	if (t->k == 0)
		return 0;
	if (t->n == t->cap) {
		if (t->cap < t->limit) {
			uint64_t nc = t->cap ? t->cap * 2 : MIN_CAP;
			if (nc > t->limit)
				nc = t->limit;
			rl_topk_item *nb = rl_realloc_array(t->buf, (size_t)nc, sizeof *nb);
			if (!nb)
				return t->err = RL_ESYS;
			t->buf = nb;
			t->cap = nc;
		} else {
			compact(t);
			if (key < t->thr)
				return 0;
		}
	}
	rl_topk_item *it = &t->buf[t->n++];
	it->key = key;
	it->tensor = tensor;
	it->index = index;
	return 0;
}

static int cmp_pos(const void *pa, const void *pb)
{
	const rl_topk_item *a = pa, *b = pb;
	if (a->tensor != b->tensor)
		return a->tensor < b->tensor ? -1 : 1;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return 0;
}

int rl_topk_finish(rl_topk *t)
{
	if (t->err)
		return t->err;
	if (t->k != RL_TOPK_ALL && t->n > t->k) {
		rl_topk_select(t->buf, t->n, t->k, &t->seed);
		t->n = t->k;
	}
	if (t->n > 1)
		qsort(t->buf, (size_t)t->n, sizeof *t->buf, cmp_pos);
	return RL_OK;
}

uint32_t rl_topk_min_key(const rl_topk *t)
{
	if (t->n == 0)
		return 0;
	uint32_t mn = UINT32_MAX;
	for (uint64_t i = 0; i < t->n; i++)
		if (t->buf[i].key < mn)
			mn = t->buf[i].key;
	return mn;
}
