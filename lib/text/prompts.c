/* prompts.c — JSON-lines prompt sets ({"ids": [...]} or {"prompt": text}), packed. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/error.h"
#include "core/jsonl.h"
#include "text/prompts.h"

typedef struct growth {
	size_t n_cap, tok_cap;
} growth;

static int reserve(rl_prompts *p, growth *g, size_t ntok_more)
{
	if ((size_t)p->n + 1 >= g->n_cap) {
		size_t cap = g->n_cap ? g->n_cap * 2 : 64;
		int *s = rl_realloc_array(p->start, cap + 1, sizeof *s);
		if (!s)
			return RL_ESYS;
		p->start = s;
		long *l = rl_realloc_array(p->lineno, cap, sizeof *l);
		if (!l)
			return RL_ESYS;
		p->lineno = l;
		g->n_cap = cap;
	}
	size_t need = (size_t)p->ntok + ntok_more;
	if (need > g->tok_cap) {
		size_t cap = g->tok_cap ? g->tok_cap : 4096;
		while (cap < need)
			cap *= 2;
		int32_t *ids = rl_realloc_array(p->ids, cap, sizeof *ids);
		if (!ids)
			return RL_ESYS;
		p->ids = ids;
		g->tok_cap = cap;
	}
	return RL_OK;
}

/* Appends one prompt (already validated for ids range by the caller). */
static int append(rl_prompts *p, growth *g, const int32_t *ids, int n, long lineno)
{
	if ((int64_t)p->ntok + n > INT_MAX)
		return rl_error(RL_EDATA, "'%s' line %ld: more than %d tokens in all", p->path,
				lineno, INT_MAX);
	int rc = reserve(p, g, (size_t)n);
	if (rc)
		return rc;
	if (p->n == 0)
		p->start[0] = 0;
	memcpy(p->ids + p->ntok, ids, (size_t)n * sizeof *ids);
	p->lineno[p->n] = lineno;
	p->ntok += n;
	p->n++;
	p->start[p->n] = (int)p->ntok;
	if (n > p->max_len)
		p->max_len = n;
	return RL_OK;
}

/* Parses "ids": an array of integers in range. */
static int parse_ids(const rl_prompts *p, const cJSON *arr, long lineno, int vocab, int32_t **out,
		     int *n)
{
	*out = NULL;
	*n = 0;
	if (!cJSON_IsArray(arr))
		return rl_error(RL_EDATA, "'%s' line %ld: \"ids\" must be an array of token ids",
				p->path, lineno);
	int cnt = cJSON_GetArraySize(arr);
	int32_t *ids = rl_malloc_array(cnt ? (size_t)cnt : 1, sizeof *ids);
	if (!ids)
		return RL_ESYS;
	int i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, arr)
	{
		double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
		if (!cJSON_IsNumber(e) || v != floor(v) || v < 0 || v > INT32_MAX) {
			free(ids);
			return rl_error(RL_EDATA,
					"'%s' line %ld: \"ids\" element %d is not a token id (a "
					"non-negative integer)",
					p->path, lineno, i + 1);
		}
		if (vocab > 0 && v >= vocab) {
			free(ids);
			return rl_error(RL_EDATA,
					"'%s' line %ld: token id %.0f out of range (vocab %d)",
					p->path, lineno, v, vocab);
		}
		ids[i++] = (int32_t)v;
	}
	*out = ids;
	*n = i;
	return RL_OK;
}

int rl_prompts_read(rl_prompts *p, const char *path, const rl_prompts_opts *o)
{
	memset(p, 0, sizeof *p);
	rl_jsonl j;
	int rc = rl_jsonl_open(&j, path);
	if (rc)
		return rc;
	p->path = rl_strdup(j.path);
	if (!p->path) {
		rl_jsonl_close(&j);
		return RL_ESYS;
	}
	growth g = {0, 0};
	for (;;) {
		if (o->max_prompts > 0 && p->n >= o->max_prompts)
			break;
		cJSON *item = NULL;
		if ((rc = rl_jsonl_next(&j, &item)))
			break;
		if (!item)
			break;
		long lineno = j.lineno;
		int32_t *ids = NULL;
		int n = 0;
		if (!cJSON_IsObject(item)) {
			rc = rl_error(
				RL_EDATA,
				"'%s' line %ld: expected an object with \"ids\" or \"prompt\"",
				p->path, lineno);
		} else if (cJSON_GetObjectItemCaseSensitive(item, "ids")) {
			rc = parse_ids(p, cJSON_GetObjectItemCaseSensitive(item, "ids"), lineno,
				       o->vocab_size, &ids, &n);
		} else {
			const cJSON *t = cJSON_GetObjectItemCaseSensitive(item, "prompt");
			if (!t)
				rc = rl_error(RL_EDATA,
					      "'%s' line %ld: no \"ids\" or \"prompt\" key",
					      p->path, lineno);
			else if (!cJSON_IsString(t))
				rc = rl_error(RL_EDATA,
					      "'%s' line %ld: \"prompt\" must be a string", p->path,
					      lineno);
			else if (!o->encode)
				rc = rl_error(
					RL_EDATA,
					"'%s' line %ld: a text prompt needs a tokenizer (give "
					"token ids as {\"ids\": [...]})",
					p->path, lineno);
			else if ((rc = o->encode(o->encode_ctx, t->valuestring,
						 strlen(t->valuestring), &ids, &n)))
				rl_error_prefix(rc, "'%s' line %ld", p->path, lineno);
			else if (o->vocab_size > 0)
				for (int i = 0; i < n && !rc; i++)
					if (ids[i] < 0 || ids[i] >= o->vocab_size)
						rc = rl_error(
							RL_EDATA,
							"'%s' line %ld: the tokenizer gave id "
							"%d, out of range (vocab %d)",
							p->path, lineno, (int)ids[i],
							o->vocab_size);
		}
		cJSON_Delete(item);
		if (!rc && n == 0)
			rc = rl_error(RL_EDATA, "'%s' line %ld: empty prompt (no tokens)", p->path,
				      lineno);
		if (!rc && o->max_len > 0 && n > o->max_len)
			rc = rl_error(RL_EDATA,
				      "'%s' line %ld: %d tokens exceed the model's maximum of %d "
				      "positions",
				      p->path, lineno, n, o->max_len);
		if (!rc)
			rc = append(p, &g, ids, n, lineno);
		free(ids);
		if (rc)
			break;
	}
	rl_jsonl_close(&j);
	if (!rc && p->n == 0)
		rc = rl_error(RL_EDATA, "'%s': no prompts", p->path);
	if (rc)
		rl_prompts_free(p);
	return rc;
}

int rl_prompts_from_ids(rl_prompts *p, int n, const int32_t *const *ids, const int *lens)
{
	memset(p, 0, sizeof *p);
	p->path = rl_strdup("<memory>");
	if (!p->path)
		return RL_ESYS;
	growth g = {0, 0};
	for (int i = 0; i < n; i++) {
		int rc = lens[i] > 0 ? append(p, &g, ids[i], lens[i], i + 1)
				     : rl_error(RL_EDATA, "prompt %d: empty", i + 1);
		if (rc) {
			rl_prompts_free(p);
			return rc;
		}
	}
	if (n == 0) {
		rl_prompts_free(p);
		return rl_error(RL_EDATA, "no prompts");
	}
	return RL_OK;
}

void rl_prompts_free(rl_prompts *p)
{
	free(p->start);
	free(p->ids);
	free(p->lineno);
	free(p->path);
	memset(p, 0, sizeof *p);
}

int rl_prompts_slice(rl_prompts *dst, const rl_prompts *src, int i0, int i1)
{
	memset(dst, 0, sizeof *dst);
	if (i0 < 0 || i1 > src->n || i0 >= i1)
		return rl_error(RL_USAGE, "prompts %d..%d of %d", i0, i1, src->n);
	int n = i1 - i0, r0 = src->start[i0];
	int64_t ntok = src->start[i1] - r0;
	dst->n = n;
	dst->ntok = ntok;
	dst->start = rl_malloc_array((size_t)n + 1, sizeof *dst->start);
	dst->ids = rl_malloc_array(ntok ? (size_t)ntok : 1, sizeof *dst->ids);
	dst->lineno = rl_malloc_array((size_t)n, sizeof *dst->lineno);
	dst->path = rl_strdup(src->path ? src->path : "");
	if (!dst->start || !dst->ids || !dst->lineno || !dst->path) {
		rl_prompts_free(dst);
		return RL_ESYS;
	}
	for (int i = 0; i <= n; i++)
		dst->start[i] = src->start[i0 + i] - r0;
	for (int i = 0; i < n; i++) {
		dst->lineno[i] = src->lineno ? src->lineno[i0 + i] : i0 + i + 1;
		int len = dst->start[i + 1] - dst->start[i];
		dst->max_len = len > dst->max_len ? len : dst->max_len;
	}
	memcpy(dst->ids, src->ids + r0, (size_t)ntok * sizeof *dst->ids);
	return RL_OK;
}

uint64_t rl_prompts_hash(const rl_prompts *p)
{
	XXH64_state_t *st = XXH64_createState();
	if (!st)
		return 0;
	XXH64_reset(st, 0);
	uint8_t le[4];
	for (int i = -1; i < p->n; i++) {
		int32_t v = i < 0 ? p->n : rl_prompt_len(p, i);
		for (int k = 0; k < 4; k++)
			le[k] = (uint8_t)((uint32_t)v >> (8 * k));
		XXH64_update(st, le, 4);
		for (int t = i < 0 ? 0 : p->start[i]; i >= 0 && t < p->start[i + 1]; t++) {
			for (int k = 0; k < 4; k++)
				le[k] = (uint8_t)((uint32_t)p->ids[t] >> (8 * k));
			XXH64_update(st, le, 4);
		}
	}
	uint64_t h = XXH64_digest(st);
	XXH64_freeState(st);
	return h;
}
