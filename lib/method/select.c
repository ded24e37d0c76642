/* select.c — sign mask, scores and budgets over the exact top-k (see select.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/error.h"
#include "core/util.h"
#include "method/select.h"

#define BLOCK 4096

const char *rl_score_name(rl_score s)
{
	switch (s) {
	case RL_SCORE_GRAD:
		return "grad";
	case RL_SCORE_DIFF:
		return "diff";
	case RL_SCORE_RANDOM:
		return "random";
	}
	return "?";
}

int rl_score_parse(const char *s)
{
	if (strcmp(s, "grad") == 0)
		return RL_SCORE_GRAD;
	if (strcmp(s, "diff") == 0)
		return RL_SCORE_DIFF;
	if (strcmp(s, "random") == 0)
		return RL_SCORE_RANDOM;
	return -1;
}

/* splitmix64's output for the state x (the generator's first step from x). */
static uint64_t mix64(uint64_t x)
{
	return rl_splitmix64(&x);
}

static uint64_t random_tensor_seed(uint64_t seed, const char *name)
{
	return mix64(seed ^ XXH3_64bits(name, strlen(name)));
}

uint32_t rl_random_key(uint64_t seed, const char *name, uint64_t index)
{
	return (uint32_t)(mix64(random_tensor_seed(seed, name) + index) >> 32);
}

int rl_selector_init(rl_selector *s, const rl_sel_params *p, size_t ntensors)
{
	memset(s, 0, sizeof *s);
	s->p = *p;
	s->ntensors = ntensors;
	if (ntensors > UINT32_MAX)
		return rl_error(RL_USAGE, "too many tensors (%zu)", ntensors);
	uint64_t k;
	switch (p->budget) {
	case RL_BUDGET_COUNT:
		k = p->count;
		break;
	case RL_BUDGET_FRACTION: {
		if (!(p->fraction >= 0 && p->fraction <= 1))
			return rl_error(RL_USAGE, "fraction %g outside [0, 1]", p->fraction);
		double kb = ceil(p->fraction * (double)p->cap);
		k = kb >= 1.8e19 ? RL_TOPK_ALL : (uint64_t)kb;
		break;
	}
	case RL_BUDGET_THRESHOLD:
	default:
		k = RL_TOPK_ALL;
		break;
	}
	rl_topk_init(&s->topk, k);
	s->wbuf = rl_malloc_array(BLOCK, sizeof(float));
	s->tbuf = rl_malloc_array(BLOCK, sizeof(float));
	if (!s->wbuf || !s->tbuf) {
		rl_selector_free(s);
		return RL_ESYS;
	}
	return RL_OK;
}

void rl_selector_free(rl_selector *s)
{
	rl_topk_free(&s->topk);
	if (s->within) {
		for (size_t i = 0; i < s->ntensors; i++)
			free(s->within[i].idx);
		free(s->within);
	}
	free(s->wbuf);
	free(s->tbuf);
	memset(s, 0, sizeof *s);
}

int rl_selector_within_enable(rl_selector *s)
{
	if (s->within)
		return RL_OK;
	s->within = rl_calloc(s->ntensors ? s->ntensors : 1, sizeof *s->within);
	return s->within ? RL_OK : RL_ESYS;
}

int rl_selector_within_add(rl_selector *s, uint32_t tid, const uint64_t *idx, uint64_t n)
{
	if (!s->within || tid >= s->ntensors)
		return rl_error(RL_USAGE, "within: bad tensor id %u", (unsigned)tid);
	rl_sel_within *w = &s->within[tid];
	for (uint64_t i = 0; i < n; i++) {
		uint64_t prev = w->n ? w->idx[w->n - 1] : 0;
		if (w->n && idx[i] <= prev)
			return rl_error(RL_EDATA,
					"indices not strictly ascending (%llu after %llu)",
					(unsigned long long)idx[i], (unsigned long long)prev);
		if (w->n == w->cap) {
			uint64_t nc = w->cap ? w->cap * 2 : 256;
			uint64_t *ni = rl_realloc_array(w->idx, (size_t)nc, sizeof *ni);
			if (!ni)
				return RL_ESYS;
			w->idx = ni;
			w->cap = nc;
		}
		w->idx[w->n++] = idx[i];
	}
	return RL_OK;
}

uint64_t rl_selector_within_total(const rl_selector *s)
{
	uint64_t n = 0;
	for (size_t i = 0; s->within && i < s->ntensors; i++)
		n += s->within[i].n;
	return n;
}

/* Threshold budget: only scores strictly above the threshold are eligible. */
static int above_threshold(const rl_selector *s, float score)
{
	return s->p.budget != RL_BUDGET_THRESHOLD || (double)score > s->p.threshold;
}

/* Scores one element; returns 1 and sets *key when it is eligible.
 * w, t: widened stored values; g: gradient (ignored unless GRAD). */
static inline int score_one(rl_selector *s, float w, float t, const float *g, uint64_t i,
			    uint64_t rseed, uint32_t *key, float *score)
{
	switch (s->p.score) {
	case RL_SCORE_GRAD: {
		float gi = g[i];
		if (isnan(gi)) {
			s->nan_grad++;
			return 0;
		}
		if (!((w > t && gi > 0) || (w < t && gi < 0)))
			return 0;
		*score = fabsf(gi);
		*key = rl_topk_key(*score);
		return 1;
	}
	case RL_SCORE_DIFF:
		if (isnan(w) || isnan(t) || w == t)
			return 0;
		*score = (float)fabs((double)w - (double)t);
		*key = rl_topk_key(*score);
		return 1;
	case RL_SCORE_RANDOM:
	default:
		if (isnan(w) || isnan(t) || w == t)
			return 0;
		*key = (uint32_t)(mix64(rseed + i) >> 32);
		*score = (float)((double)*key / 4294967296.0);
		return 1;
	}
}

int rl_selector_feed(rl_selector *s, uint32_t tid, const char *name, rl_dtype dt, const uint8_t *w,
		     const uint8_t *t, uint64_t off, uint64_t count, const float *g)
{
	if (tid >= s->ntensors)
		return rl_error(RL_USAGE, "'%s': bad tensor id %u", name, (unsigned)tid);
	if (!rl_dtype_is_compute(dt))
		return rl_error(RL_EDATA, "'%s': dtype %s cannot be compared", name,
				rl_dtype_name(dt));
	if (s->p.score == RL_SCORE_GRAD && !g)
		return rl_error(RL_USAGE, "'%s': the grad score needs a gradient", name);
	size_t es = rl_dtype_size(dt);
	uint64_t rseed = s->p.score == RL_SCORE_RANDOM ? random_tensor_seed(s->p.seed, name) : 0;
	int rc;
	uint32_t key;
	float score;

	if (s->within) {
		/* Sparse path: only the listed indices in [off, off+count). */
		const rl_sel_within *wl = &s->within[tid];
		uint64_t lo = 0, hi = wl->n;
		while (lo < hi) {
			uint64_t mid = lo + (hi - lo) / 2;
			if (wl->idx[mid] < off)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (uint64_t j = lo; j < wl->n && wl->idx[j] < off + count; j++) {
			uint64_t i = wl->idx[j] - off;
			float wv, tv;
			rl_widen(dt, w + i * es, &wv, 1);
			rl_widen(dt, t + i * es, &tv, 1);
			/* score_one indexes g and the random stream by i relative to off */
			s->fed++;
			if (!score_one(s, wv, tv, g, i, rseed + off, &key, &score) ||
			    !above_threshold(s, score))
				continue;
			s->eligible++;
			if ((rc = rl_topk_push(&s->topk, key, tid, off + i)))
				return rc;
		}
		return RL_OK;
	}

	for (uint64_t b = 0; b < count; b += BLOCK) {
		uint64_t n = count - b < BLOCK ? count - b : BLOCK;
		rl_widen(dt, w + b * es, s->wbuf, (size_t)n);
		rl_widen(dt, t + b * es, s->tbuf, (size_t)n);
		const float *gb = g ? g + b : NULL;
		s->fed += n;
		for (uint64_t i = 0; i < n; i++) {
			if (!score_one(s, s->wbuf[i], s->tbuf[i], gb, i, rseed + off + b, &key,
				       &score) ||
			    !above_threshold(s, score))
				continue;
			s->eligible++;
			if ((rc = rl_topk_push(&s->topk, key, tid, off + b + i)))
				return rc;
		}
	}
	return RL_OK;
}

float rl_selector_item_score(const rl_selector *s, const rl_topk_item *it)
{
	if (s->p.score == RL_SCORE_RANDOM)
		return (float)((double)it->key / 4294967296.0);
	return rl_topk_score(it->key);
}

int rl_selector_finish(rl_selector *s)
{
	int rc;
	if (s->p.budget == RL_BUDGET_COUNT && s->p.count > s->eligible)
		return rl_error(RL_EDATA,
				"k = %llu exceeds the %llu eligible elements (of %llu considered)",
				(unsigned long long)s->p.count, (unsigned long long)s->eligible,
				(unsigned long long)s->fed);
	if (s->p.budget == RL_BUDGET_FRACTION) {
		if (s->eligible > s->p.cap)
			return rl_error(
				RL_USAGE, "fraction: %llu elements fed, more than the cap %llu",
				(unsigned long long)s->eligible, (unsigned long long)s->p.cap);
		double kd = ceil(s->p.fraction * (double)s->eligible);
		uint64_t k = (uint64_t)kd;
		if (k > s->topk.k)
			k = s->topk.k; /* cannot happen: eligible <= cap */
		s->topk.k = k;
	}
	if ((rc = rl_topk_finish(&s->topk)))
		return rc;
	s->k = s->topk.n;
	s->min_score =
		s->k ? rl_selector_item_score(s, &(rl_topk_item){.key = rl_topk_min_key(&s->topk)})
		     : 0.0f;
	return RL_OK;
}

uint64_t rl_selector_group_end(const rl_selector *s, uint64_t b)
{
	uint64_t i = b;
	while (i < s->k && s->topk.buf[i].tensor == s->topk.buf[b].tensor)
		i++;
	return i;
}
