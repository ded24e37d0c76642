/* tdata.c — rl-train's examples and batch sampler (see tdata.h). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include <unistd.h>

#include "compute/tdata.h"
#include "core/error.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "core/util.h"
#include "text/chat.h"

/* ids of a JSON array of integers; RL_EDATA naming the line otherwise. */
static int int_array(const cJSON *a, const char *key, const char *path, long line, int vocab,
		     int32_t **out, int *n)
{
	*out = NULL;
	*n = 0;
	if (!cJSON_IsArray(a))
		return rl_error(RL_EDATA, "'%s' line %ld: \"%s\" is not an array", path, line, key);
	int k = cJSON_GetArraySize(a);
	int32_t *ids = rl_malloc_array(k ? (size_t)k : 1, sizeof *ids);
	if (!ids)
		return RL_ESYS;
	int i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, a)
	{
		double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
		if (!cJSON_IsNumber(e) || v != floor(v) || v < 0 || v >= vocab) {
			free(ids);
			return rl_error(RL_EDATA,
					"'%s' line %ld: \"%s\" item %d is not a token id in "
					"[0, %d)",
					path, line, key, i, vocab);
		}
		ids[i++] = (int32_t)v;
	}
	*out = ids;
	*n = k;
	return RL_OK;
}

typedef struct growth {
	size_t n_cap, tok_cap;
} growth;

static int append(rl_tdata *d, growth *g, const int32_t *ids, int n, int plen, long line)
{
	if ((int64_t)d->ntok + n > INT_MAX)
		return rl_error(RL_EDATA, "'%s' line %ld: more than %d tokens in all", d->path,
				line, INT_MAX);
	if ((size_t)d->n + 1 >= g->n_cap) {
		size_t cap = g->n_cap ? 2 * g->n_cap : 256;
		int *s = rl_realloc_array(d->start, cap + 1, sizeof *s);
		if (!s)
			return RL_ESYS;
		d->start = s;
		int *p = rl_realloc_array(d->plen, cap, sizeof *p);
		if (!p)
			return RL_ESYS;
		d->plen = p;
		g->n_cap = cap;
	}
	if ((size_t)d->ntok + (size_t)n > g->tok_cap) {
		size_t cap = g->tok_cap ? g->tok_cap : 16384;
		while (cap < (size_t)d->ntok + (size_t)n)
			cap *= 2;
		int32_t *p = rl_realloc_array(d->ids, cap, sizeof *p);
		if (!p)
			return RL_ESYS;
		d->ids = p;
		g->tok_cap = cap;
	}
	if (d->n == 0)
		d->start[0] = 0;
	memcpy(d->ids + d->ntok, ids, (size_t)n * sizeof *ids);
	d->plen[d->n] = plen;
	d->ntok += n;
	d->nlabelled += n - plen;
	d->n++;
	d->start[d->n] = (int)d->ntok;
	if (n > d->max_len)
		d->max_len = n;
	return RL_OK;
}

/* One line's example -> ids, plen. */
static int example(const rl_tdata_opts *o, const char *path, long line, const cJSON *v,
		   int32_t **ids, int *n, int *plen)
{
	*ids = NULL;
	if (!cJSON_IsObject(v))
		return rl_error(RL_EDATA, "'%s' line %ld: not a JSON object", path, line);
	const cJSON *pi = cJSON_GetObjectItem(v, "prompt_ids"),
		    *ri = cJSON_GetObjectItem(v, "response_ids");
	if (pi || ri) {
		int32_t *a = NULL, *b = NULL;
		int na = 0, nb = 0;
		int rc = int_array(pi, "prompt_ids", path, line, o->vocab_size, &a, &na);
		if (!rc)
			rc = int_array(ri, "response_ids", path, line, o->vocab_size, &b, &nb);
		if (!rc && (size_t)na + (size_t)nb > INT_MAX / 2)
			rc = rl_error(RL_EDATA, "'%s' line %ld: too long", path, line);
		int32_t *all = rc ? NULL : rl_malloc_array((size_t)(na + nb) + 1, sizeof *all);
		if (!rc && !all)
			rc = RL_ESYS;
		if (!rc) {
			memcpy(all, a, (size_t)na * sizeof *a);
			memcpy(all + na, b, (size_t)nb * sizeof *b);
			*ids = all;
			*n = na + nb;
			*plen = na;
		}
		free(a);
		free(b);
		return rc;
	}
	const cJSON *p = cJSON_GetObjectItem(v, "prompt"), *r = cJSON_GetObjectItem(v, "response");
	if (!cJSON_IsString(p) || !cJSON_IsString(r))
		return rl_error(RL_EDATA,
				"'%s' line %ld: expected \"prompt\" and \"response\" strings (or "
				"\"prompt_ids\" and \"response_ids\")",
				path, line);
	if (!o->encode)
		return rl_error(RL_EDATA, "'%s' line %ld: text examples need a tokenizer", path,
				line);
	int rc = o->encode(o->encode_ctx, p->valuestring, r->valuestring, ids, n, plen);
	if (rc)
		return rl_error_prefix(rc, "'%s' line %ld", path, line);
	for (int i = 0; i < *n; i++)
		if ((*ids)[i] < 0 || (*ids)[i] >= o->vocab_size) {
			int bad = (*ids)[i];
			free(*ids);
			*ids = NULL;
			return rl_error(RL_EDATA,
					"'%s' line %ld: token id %d outside the vocabulary", path,
					line, bad);
		}
	return RL_OK;
}

int rl_tdata_read(rl_tdata *d, const char *path, const rl_tdata_opts *o)
{
	memset(d, 0, sizeof *d);
	rl_jsonl j;
	int rc = rl_jsonl_open(&j, path);
	if (rc)
		return rc;
	d->path = rl_strdup(j.path);
	if (!d->path) {
		rl_jsonl_close(&j);
		return RL_ESYS;
	}
	growth g = {0, 0};
	cJSON *v;
	while (!(rc = rl_jsonl_next(&j, &v)) && v) {
		int32_t *ids = NULL;
		int n = 0, plen = 0;
		rc = example(o, d->path, j.lineno, v, &ids, &n, &plen);
		cJSON_Delete(v);
		if (!rc && plen >= n)
			rc = rl_error(RL_EDATA, "'%s' line %ld: no response tokens", d->path,
				      j.lineno);
		if (!rc && plen < 1)
			rc = rl_error(RL_EDATA, "'%s' line %ld: empty prompt", d->path, j.lineno);
		if (!rc && o->max_len > 0 && n > o->max_len)
			rc = rl_error(
				RL_EDATA,
				"'%s' line %ld: %d tokens, longer than the model's %d positions",
				d->path, j.lineno, n, o->max_len);
		if (!rc)
			rc = append(d, &g, ids, n, plen, j.lineno);
		free(ids);
		if (rc || (o->max_examples > 0 && d->n >= o->max_examples))
			break;
	}
	rl_jsonl_close(&j);
	if (!rc && d->n == 0)
		rc = rl_error(RL_EDATA, "'%s': no examples", d->path);
	if (rc)
		rl_tdata_free(d);
	return rc;
}

void rl_tdata_free(rl_tdata *d)
{
	free(d->start);
	free(d->plen);
	free(d->ids);
	free(d->path);
	memset(d, 0, sizeof *d);
}

/* ---- sampler ---- */

static void reshuffle(rl_sampler *s)
{
	int n = s->d->n;
	for (int i = 0; i < n; i++)
		s->perm[i] = i;
	for (int i = n; i > 1; i--) {
		int j = (int)(rl_splitmix64(&s->rng) % (uint64_t)i), t = s->perm[i - 1];
		s->perm[i - 1] = s->perm[j];
		s->perm[j] = t;
	}
	s->next = 0;
}

int rl_sampler_init(rl_sampler *s, const rl_tdata *d, uint64_t seed)
{
	memset(s, 0, sizeof *s);
	s->d = d;
	s->rng = seed ^ 0x5eed5eed5eed5eedull;
	s->perm = rl_malloc_array((size_t)d->n, sizeof *s->perm);
	if (!s->perm)
		return RL_ESYS;
	reshuffle(s);
	return RL_OK;
}

void rl_sampler_free(rl_sampler *s)
{
	free(s->perm);
	free(s->start);
	free(s->ids);
	free(s->target);
	memset(s, 0, sizeof *s);
}

/* Room for n examples and ntok tokens in the batch buffers. */
static int reserve(rl_sampler *s, int n, int64_t ntok)
{
	if (ntok > INT_MAX)
		return rl_error(RL_USAGE, "batch too large");
	if (n + 1 > s->cap_n) {
		int *p = rl_realloc_array(s->start, (size_t)n + 1 + (size_t)n / 2, sizeof *p);
		if (!p)
			return RL_ESYS;
		s->start = p;
		s->cap_n = n + 1 + n / 2;
	}
	if (ntok > s->cap_tok) {
		size_t cap = (size_t)ntok + (size_t)ntok / 2;
		int32_t *i = rl_realloc_array(s->ids, cap, sizeof *i);
		if (i)
			s->ids = i;
		int32_t *t = i ? rl_realloc_array(s->target, cap, sizeof *t) : NULL;
		if (!t)
			return RL_ESYS;
		s->target = t;
		s->cap_tok = cap > INT_MAX ? INT_MAX : (int)cap;
	}
	return RL_OK;
}

/* The next example of the epoch order, reshuffling at an epoch's end. */
static int peek(rl_sampler *s)
{
	if (s->next == s->d->n) {
		s->epoch++;
		reshuffle(s);
	}
	return s->perm[s->next];
}

/* Takes examples in order: B of them (B > 0), or (B == 0) as many as fit in
 * max_tokens, at least one. */
static int take(rl_sampler *s, int B, int max_tokens, const rl_tbatch **b)
{
	const rl_tdata *d = s->d;
	int T = 0, i = 0;
	for (;; i++) {
		if (B && i == B)
			break;
		int e = peek(s), st = d->start[e], n = d->start[e + 1] - st;
		if (!B && i > 0 && T + n > max_tokens)
			break;
		int rc = reserve(s, i + 1, (int64_t)T + n);
		if (rc)
			return rc;
		s->next++;
		s->start[i] = T;
		memcpy(s->ids + T, d->ids + st, (size_t)n * sizeof *s->ids);
		for (int k = 0; k < n; k++)
			s->target[T + k] =
				(k + 1 < n && k + 1 >= d->plen[e]) ? d->ids[st + k + 1] : -1;
		T += n;
	}
	s->start[i] = T;
	s->batch = (rl_tbatch){.n = i, .start = s->start, .ids = s->ids, .target = s->target};
	*b = &s->batch;
	return RL_OK;
}

int rl_sampler_next(rl_sampler *s, int B, const rl_tbatch **b)
{
	if (B < 1)
		return rl_error(RL_USAGE, "batch size must be positive");
	return take(s, B, 0, b);
}

int rl_sampler_next_tokens(rl_sampler *s, int max_tokens, const rl_tbatch **b)
{
	if (max_tokens < 1)
		return rl_error(RL_USAGE, "batch token budget must be positive");
	return take(s, 0, max_tokens, b);
}

/* ---- the tokenizer hook ---- */

int rl_tencode_open(rl_tencode_ctx *c, const char *dir, const char *template_name)
{
	c->tok = NULL;
	c->n_fallback = 0;
	memset(&c->info, 0, sizeof c->info);
	char path[4096];
	if (snprintf(path, sizeof path, "%s/tokenizer.json", dir) >= (int)sizeof path)
		return rl_error(RL_USAGE, "'%s': path too long", dir);
	if (!rl_path_present(path) && !template_name)
		return RL_NO; /* token ids only */
	rl_chat *ch = rl_malloc(sizeof *ch);
	if (!ch)
		return RL_ESYS;
	rl_chat_opts o = {.template_spec = template_name, .raw = 0, .system = NULL};
	int rc = rl_chat_open(ch, dir, &o);
	if (rc) {
		free(ch);
		return rc;
	}
	c->tok = ch;
	c->info = ch->info;
	return RL_OK;
}

int rl_tencode(void *ctx, const char *prompt, const char *response, int32_t **ids, int *n,
	       int *plen)
{
	rl_tencode_ctx *c = ctx;
	rl_ids a = {0};
	size_t np = 0;
	int prefix = 1;
	*ids = NULL;
	*n = *plen = 0;
	int rc = rl_chat_encode_train(c->tok, prompt, strlen(prompt), response, strlen(response),
				      &a, &np, NULL, NULL, &prefix);
	c->n_fallback += !rc && !prefix;
	if (rc) {
		rl_ids_free(&a);
		return rc;
	}
	if (a.n > INT_MAX / 2) {
		rl_ids_free(&a);
		return rl_error(RL_EDATA, "example too long");
	}
	*ids = a.v;
	*n = (int)a.n;
	*plen = (int)np;
	return RL_OK;
}

void rl_tencode_close(rl_tencode_ctx *c)
{
	if (c->tok) {
		rl_chat_close(c->tok);
		free(c->tok);
	}
	c->tok = NULL;
}
