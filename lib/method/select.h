/* select.h — the method's steps 2-3: sign mask and exact global top-k.
 *
 * A selector is fed, tensor by tensor and chunk by chunk, the stored bytes of
 * the current model W and the target model T (A for a restore step, F for a
 * rollback) and, for the "grad" score, the gradient g (f32). It keeps the best
 * elements under one of three budgets and returns them sorted by (tensor id,
 * flat index). Memory is O(k) (topk.h), never O(elements fed).
 *
 * Scores (what may be selected, and how it ranks; w, t are the stored values
 * widened exactly to f32):
 *   RL_SCORE_GRAD    eligible iff (w > t and g > 0) or (w < t and g < 0): moving
 *                    along -g brings w toward t; elements with w == t, or a NaN
 *                    in w, t or g, never qualify (the same outcome as torch's
 *                    comparisons in the reference). score = |g|. NaN gradients
 *                    are counted (nan_grad); restore.c refuses a gradient
 *                    stream with a NaN or infinity before it gets here.
 *   RL_SCORE_DIFF    eligible iff w != t (neither NaN; +0 == -0). score =
 *                    |(double)w - (double)t| rounded to f32. No gradient is used.
 *   RL_SCORE_RANDOM  eligible iff w != t as for DIFF. key = the high 32 bits of
 *                    splitmix64(splitmix64(seed ^ XXH3_64(tensor name)) + index),
 *                    so the k kept are a uniform sample (up to 32-bit key ties,
 *                    broken by (tensor, index)), independent of feeding order and
 *                    chunking; score = key / 2^32.
 * Ranking and ties: topk.h (larger score first; on equal scores the smaller
 * tensor id, then the smaller index). select.c's callers use the tensor's index
 * in the model's name-sorted tensor list as its id, so ties go to the element
 * whose (tensor name, index) sorts first.
 *
 * Budgets:
 *   RL_BUDGET_COUNT      exactly k = count elements; fewer eligible is an error.
 *   RL_BUDGET_FRACTION   k = ceil(fraction * eligible) computed in double (as
 *                        Python's math.ceil(f * n)); the buffer is bounded by
 *                        ceil(fraction * cap), cap an upper bound of elements fed.
 *   RL_BUDGET_THRESHOLD  every eligible element with score > threshold.
 *
 * --within: rl_selector_within() restricts a tensor to a sorted index list
 * (the elements a journal restored); tensors never given a list are excluded
 * entirely once any list was given (rl_selector_within_enable).
 */
#ifndef RL_SELECT_H
#define RL_SELECT_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "method/topk.h"

typedef enum rl_score { RL_SCORE_GRAD, RL_SCORE_DIFF, RL_SCORE_RANDOM } rl_score;
typedef enum rl_budget { RL_BUDGET_COUNT, RL_BUDGET_FRACTION, RL_BUDGET_THRESHOLD } rl_budget;

const char *rl_score_name(rl_score s);
/* "grad" / "diff" / "random" -> score; -1 when unknown. */
int rl_score_parse(const char *s);

typedef struct rl_sel_params {
	rl_score score;
	rl_budget budget;
	uint64_t count;	  /* RL_BUDGET_COUNT */
	double fraction;  /* RL_BUDGET_FRACTION, in [0, 1] */
	uint64_t cap;	  /* RL_BUDGET_FRACTION: elements that may be fed, at most */
	double threshold; /* RL_BUDGET_THRESHOLD, >= 0 */
	uint64_t seed;	  /* RL_SCORE_RANDOM */
} rl_sel_params;

typedef struct rl_sel_within {
	uint64_t *idx; /* sorted ascending, unique */
	uint64_t n, cap;
} rl_sel_within;

typedef struct rl_selector {
	rl_sel_params p;
	rl_topk topk;
	size_t ntensors;
	rl_sel_within *within; /* [ntensors] when within is enabled, else NULL */
	/* statistics */
	uint64_t fed;	    /* elements considered (after within) */
	uint64_t eligible;  /* elements that passed the mask */
	uint64_t nan_grad;  /* NaN gradients among those considered */
	uint64_t k;	    /* after finish: elements selected */
	float min_score;    /* after finish: the smallest selected score (0 when none) */
	float *wbuf, *tbuf; /* widening buffers */
} rl_selector;

/* ntensors: the number of tensor ids that will be used (ids < ntensors). */
int rl_selector_init(rl_selector *s, const rl_sel_params *p, size_t ntensors);
void rl_selector_free(rl_selector *s);

/* Switches within mode on (only listed elements are considered). */
int rl_selector_within_enable(rl_selector *s);
/* Appends sorted indices for tensor tid (successive calls must continue in
 * ascending order); RL_EDATA if not ascending. */
int rl_selector_within_add(rl_selector *s, uint32_t tid, const uint64_t *idx, uint64_t n);
/* Total indices given to within. */
uint64_t rl_selector_within_total(const rl_selector *s);

/* Feeds elements [off, off+count) of tensor tid (named name, stored as dt):
 * w and t point at element off's stored bytes in the current and target model;
 * g holds count f32 gradients (RL_SCORE_GRAD) or is NULL. */
int rl_selector_feed(rl_selector *s, uint32_t tid, const char *name, rl_dtype dt, const uint8_t *w,
		     const uint8_t *t, uint64_t off, uint64_t count, const float *g);

/* Applies the budget. After it, s->topk.buf[0..s->k) holds the selection
 * sorted by (tensor, index), their scores via rl_selector_item_score().
 * RL_EDATA when a count budget exceeds the eligible elements. */
int rl_selector_finish(rl_selector *s);
float rl_selector_item_score(const rl_selector *s, const rl_topk_item *it);
/* After finish: the end of the run of items of one tensor that starts at item
 * b (items [b, end) share a tensor). */
uint64_t rl_selector_group_end(const rl_selector *s, uint64_t b);

/* The random score's key of one element (documented above). */
uint32_t rl_random_key(uint64_t seed, const char *name, uint64_t index);

#endif
