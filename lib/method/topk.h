/* topk.h — exact global top-k over a stream of (key, tensor, index), O(k) memory.
 *
 * Items are pushed one at a time, in any order; after rl_topk_finish() the
 * buffer holds exactly min(k, pushed) items, the best ones, sorted by
 * (tensor, index) ascending. One total order decides "best", so the result is
 * a pure function of the multiset of pushed items (never of their order):
 *
 *     a is better than b  <=>  a.key > b.key
 *                             or (a.key == b.key and a.tensor < b.tensor)
 *                             or (equal keys and tensors and a.index < b.index)
 *
 * i.e. ties on the score go to the element that comes first in (tensor id,
 * flat index) order. Callers map scores to keys with rl_topk_key(): for
 * non-negative floats the IEEE-754 bit pattern orders exactly like the value
 * (+0 < denormals < normals < +inf), so keys compare as uint32. NaN has no
 * place in that order: callers never push a NaN score (rl_topk_key maps NaN to
 * 0 only as a defence; select.c filters NaN before and counts it).
 *
 * Algorithm (buffer + selection, "nth_element with a running threshold"): a
 * buffer of up to 2k items; when it fills, a quickselect moves the k best to
 * the front and drops the rest, and the k-th best key becomes a threshold
 * below which a pushed item is rejected with one comparison. Each compaction
 * costs O(k) expected and removes k items, so the whole stream costs O(n)
 * expected time (plus O(k log k) for the final sort) and 2k items of memory,
 * whatever the order of the input (a bounded heap costs O(n log k) on an
 * ascending input). k = RL_TOPK_ALL keeps every pushed item (threshold modes).
 */
#ifndef RL_TOPK_H
#define RL_TOPK_H

#include <stdint.h>
#include <string.h>

#define RL_TOPK_ALL UINT64_MAX

typedef struct rl_topk_item {
	uint32_t key;	 /* rl_topk_key(score) */
	uint32_t tensor; /* caller's tensor id (select.c: index in the model's sorted names) */
	uint64_t index;	 /* flat element index in the tensor */
} rl_topk_item;

typedef struct rl_topk {
	uint64_t k;	    /* items kept (RL_TOPK_ALL: all) */
	rl_topk_item *buf;  /* n items, unordered until rl_topk_finish */
	uint64_t n, cap;    /* cap grows by doubling up to limit */
	uint64_t limit;	    /* 2k (compaction point); UINT64_MAX for RL_TOPK_ALL */
	uint32_t thr;	    /* items with key < thr can never be among the best k */
	uint64_t pushed;    /* items offered (accepted or not) */
	uint64_t compacted; /* compactions done (for benchmarks) */
	uint64_t seed;	    /* pivot choice (deterministic) */
	int err;	    /* sticky RL_ESYS after an allocation failure */
} rl_topk;

/* Non-negative float score -> order-preserving key (NaN -> 0, -0 -> 0). */
static inline uint32_t rl_topk_key(float score)
{
	uint32_t u;
	memcpy(&u, &score, 4);
	if (u & 0x80000000u) /* negative zero, or a negative the caller let through */
		return 0;
	if (u > 0x7f800000u) /* NaN */
		return 0;
	return u;
}

/* The float a key stands for. */
static inline float rl_topk_score(uint32_t key)
{
	float f;
	memcpy(&f, &key, 4);
	return f;
}

/* k = 0 is valid (keeps nothing). Allocates lazily. */
void rl_topk_init(rl_topk *t, uint64_t k);
void rl_topk_free(rl_topk *t);

/* Slow path of rl_topk_push (grows or compacts). */
int rl_topk_push_slow(rl_topk *t, uint32_t key, uint32_t tensor, uint64_t index);

/* Offers one item. Returns RL_OK, or RL_ESYS when memory ran out (sticky: the
 * same error is returned by rl_topk_finish). */
static inline int rl_topk_push(rl_topk *t, uint32_t key, uint32_t tensor, uint64_t index)
{
	t->pushed++;
	if (key < t->thr)
		return 0;
	if (t->n < t->cap) {
		rl_topk_item *it = &t->buf[t->n++];
		it->key = key;
		it->tensor = tensor;
		it->index = index;
		return 0;
	}
	return rl_topk_push_slow(t, key, tensor, index);
}

/* Keeps the best min(k, n) items and sorts them by (tensor, index). After
 * it, t->buf[0..t->n) is the answer; rl_topk_kth() gives the worst key kept. */
int rl_topk_finish(rl_topk *t);
/* The smallest key among the kept items (after finish; 0 when none). */
uint32_t rl_topk_min_key(const rl_topk *t);

/* 1 if a is better than b in the order above. */
static inline int rl_topk_better(const rl_topk_item *a, const rl_topk_item *b)
{
	if (a->key != b->key)
		return a->key > b->key;
	if (a->tensor != b->tensor)
		return a->tensor < b->tensor;
	return a->index < b->index;
}

/* Moves the m best of items[0..n) to items[0..m) (unordered), m <= n:
 * quickselect with pseudo-random pivots drawn from *seed. Exposed for tests. */
void rl_topk_select(rl_topk_item *items, uint64_t n, uint64_t m, uint64_t *seed);

#endif
