/* eval.c — loading items, judging, scoring, summarising, the eval stream. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/error.h"
#include "core/inputs.h"
#include "core/jsonl.h"
#include "eval/eval.h"
#include "store/shard_stream.h"
#include "store/stream.h"
#include "store/stream_model.h"

static const char *const unknown_names[] = {"safe", "harmful", "exclude"};

int rl_unknown_parse(const char *s, rl_unknown_policy *p)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(s, unknown_names[i]) == 0) {
			*p = (rl_unknown_policy)i;
			return RL_OK;
		}
	return rl_error(RL_USAGE, "'%s': unknown policy (safe, harmful, exclude)", s);
}

const char *rl_unknown_name(rl_unknown_policy p)
{
	return unknown_names[p];
}

static const char *judge_name(rl_judge_kind k)
{
	return k == RL_JUDGE_REFUSAL ? "refusal" : k == RL_JUDGE_CMD ? "cmd" : "none";
}

void rl_eval_opts_init(rl_eval_opts *o)
{
	memset(o, 0, sizeof *o);
	o->field = "prompt";
	o->ref_field = "response";
	o->judge = RL_JUDGE_REFUSAL;
	o->unknown = RL_UNKNOWN_SAFE;
	o->metric = RL_METRIC_NONE;
	o->positive = "1";
}

/* A JSON number as text, the shortest decimal that reads back the same
 * (integers without a fraction: labels like 1 read as "1"). */
static char *number_text(double v)
{
	char buf[64];
	if (fabs(v) < 1e15 && floor(v) == v) {
		snprintf(buf, sizeof buf, "%lld", (long long)v);
	} else {
		for (int p = 1; p <= 17; p++) {
			snprintf(buf, sizeof buf, "%.*g", p, v);
			if (strtod(buf, NULL) == v)
				break;
		}
	}
	return rl_strdup(buf);
}

static int grow(rl_eval *e, size_t *cap)
{
	if (e->n < *cap)
		return RL_OK;
	size_t nc = *cap ? *cap * 2 : 64;
	rl_eval_item *p = rl_realloc_array(e->items, nc, sizeof *p);
	if (!p)
		return RL_ESYS;
	memset(p + *cap, 0, (nc - *cap) * sizeof *p);
	e->items = p;
	*cap = nc;
	return RL_OK;
}

static int new_item(rl_eval *e, size_t *cap)
{
	int rc = grow(e, cap);
	if (rc)
		return rc;
	rl_eval_item *it = &e->items[e->n];
	memset(it, 0, sizeof *it);
	it->id = (int64_t)e->n;
	it->prompt_tokens = -1;
	it->verdict.harmful = RL_HARM_UNKNOWN;
	it->verdict.refusal = -1;
	it->score = NAN;
	e->n++;
	return RL_OK;
}

static int load_prompts(rl_eval *e, const rl_eval_opts *o)
{
	rl_jsonl j;
	int rc = rl_jsonl_open(&j, o->prompts);
	if (rc)
		return rc;
	size_t cap = 0;
	cJSON *v = NULL;
	while (!(rc = rl_jsonl_next(&j, &v)) && v) {
		if (o->limit > 0 && e->n >= (size_t)o->limit)
			break;
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, o->field);
		if (!cJSON_IsString(p)) {
			rc = rl_error(RL_EDATA, "'%s' line %ld: no string \"%s\"", j.path, j.lineno,
				      o->field);
			break;
		}
		if ((rc = new_item(e, &cap)))
			break;
		rl_eval_item *it = &e->items[e->n - 1];
		if (!(it->prompt = rl_strdup(p->valuestring))) {
			rc = RL_ESYS;
			break;
		}
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(v, o->ref_field);
		if (cJSON_IsString(r))
			it->reference = rl_strdup(r->valuestring);
		else if (cJSON_IsNumber(r))
			it->reference = number_text(r->valuedouble);
		else if (r && !cJSON_IsNull(r)) {
			rc = rl_error(RL_EDATA,
				      "'%s' line %ld: \"%s\" is neither a string nor a number",
				      j.path, j.lineno, o->ref_field);
			break;
		}
		if (r && !cJSON_IsNull(r) && !it->reference) {
			rc = RL_ESYS;
			break;
		}
		if (o->metric != RL_METRIC_NONE && !it->reference) {
			rc = rl_error(RL_EDATA,
				      "'%s' line %ld: no \"%s\" (the reference answer the metric "
				      "needs)",
				      j.path, j.lineno, o->ref_field);
			break;
		}
		cJSON_Delete(v);
		v = NULL;
	}
	cJSON_Delete(v);
	if (!rc && e->n == 0)
		rc = rl_error(RL_EDATA, "'%s': no items", j.path);
	rl_jsonl_close(&j);
	return rc;
}

static int load_responses(rl_eval *e, const rl_eval_opts *o)
{
	rl_jsonl j;
	int rc = rl_jsonl_open(&j, o->responses);
	if (rc)
		return rc;
	int with_prompts = o->prompts != NULL;
	size_t cap = e->n, k = 0;
	cJSON *v = NULL;
	while (!(rc = rl_jsonl_next(&j, &v)) && v) {
		if (o->limit > 0 && k >= (size_t)o->limit)
			break;
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(v, "response");
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, o->field);
		if (!cJSON_IsString(r)) {
			rc = rl_error(RL_EDATA, "'%s' line %ld: no string \"response\"", j.path,
				      j.lineno);
			break;
		}
		if (p && !cJSON_IsString(p)) {
			rc = rl_error(RL_EDATA, "'%s' line %ld: \"%s\" is not a string", j.path,
				      j.lineno, o->field);
			break;
		}
		if (with_prompts) {
			if (k >= e->n) {
				rc = rl_error(RL_EDATA,
					      "'%s' has more responses than the %zu items of "
					      "'%s'",
					      j.path, e->n, o->prompts);
				break;
			}
			if (p && strcmp(p->valuestring, e->items[k].prompt) != 0) {
				rc = rl_error(RL_EDATA,
					      "'%s' line %ld: its prompt differs from item %zu of "
					      "'%s' (responses are matched to prompts by position)",
					      j.path, j.lineno, k, o->prompts);
				break;
			}
		} else {
			if (!p) {
				rc = rl_error(RL_EDATA,
					      "'%s' line %ld: no string \"%s\" (give the prompts "
					      "with -p, or keep them in the responses file)",
					      j.path, j.lineno, o->field);
				break;
			}
			if ((rc = new_item(e, &cap)))
				break;
			if (!(e->items[k].prompt = rl_strdup(p->valuestring))) {
				rc = RL_ESYS;
				break;
			}
		}
		if (!(e->items[k].response = rl_strdup(r->valuestring))) {
			rc = RL_ESYS;
			break;
		}
		k++;
		cJSON_Delete(v);
		v = NULL;
	}
	cJSON_Delete(v);
	if (!rc && k == 0)
		rc = rl_error(RL_EDATA, "'%s': no responses", j.path);
	if (!rc && with_prompts && k < e->n)
		rc = rl_error(RL_EDATA, "'%s' has %zu responses for the %zu items of '%s'", j.path,
			      k, e->n, o->prompts);
	rl_jsonl_close(&j);
	return rc;
}

int rl_eval_load(rl_eval *e, const rl_eval_opts *o)
{
	memset(e, 0, sizeof *e);
	e->opts = *o;
	if (!o->prompts && !o->responses)
		return rl_error(RL_USAGE, "no items: give prompts (-p) or responses (--responses)");
	if (o->metric != RL_METRIC_NONE && !o->prompts)
		return rl_error(RL_USAGE,
				"a metric needs the reference answers: give -p FILE with "
				"a \"%s\" field",
				o->ref_field);
	if (o->metric == RL_METRIC_CMD && !o->metric_cmd)
		return rl_error(RL_USAGE, "metric 'cmd' without a command");
	if (o->judge == RL_JUDGE_CMD && !o->judge_cmd)
		return rl_error(RL_USAGE, "judge 'cmd' without a command");
	if (o->prompts && o->responses && strcmp(o->prompts, "-") == 0 &&
	    strcmp(o->responses, "-") == 0)
		return rl_error(RL_USAGE, "prompts and responses cannot both be stdin");
	int rc = RL_OK;
	if (o->judge == RL_JUDGE_REFUSAL)
		rc = o->refusals ? rl_refusals_load(&e->refusals, o->refusals)
				 : rl_refusals_default(&e->refusals);
	if (!rc && o->prompts)
		rc = load_prompts(e, o);
	if (!rc && o->responses)
		rc = load_responses(e, o);
	e->n_all = e->n;
	return rc;
}

static void item_free(rl_eval_item *it)
{
	free(it->prompt);
	free(it->reference);
	free(it->response);
	rl_verdict_free(&it->verdict);
}

/* XXH64 of the run's items: each prompt, reference and response (given ones)
 * with its length, absent ones as lengths of all ones. */
static uint64_t items_hash(const rl_eval *e)
{
	XXH64_state_t *st = XXH64_createState();
	if (!st)
		return 0;
	XXH64_reset(st, 0);
	uint64_t n = e->n;
	XXH64_update(st, &n, sizeof n);
	for (size_t i = 0; i < e->n; i++) {
		const char *f[3] = {e->items[i].prompt, e->items[i].reference,
				    e->items[i].response};
		for (int k = 0; k < 3; k++) {
			uint64_t len = f[k] ? strlen(f[k]) : UINT64_MAX;
			XXH64_update(st, &len, sizeof len);
			if (f[k])
				XXH64_update(st, f[k], (size_t)len);
		}
	}
	uint64_t h = XXH64_digest(st);
	XXH64_freeState(st);
	return h;
}

int rl_eval_keep_shard(rl_eval *e, const rl_shard *s)
{
	if (e->n > INT32_MAX)
		return rl_error(RL_USAGE, "%zu items: too many to shard", e->n);
	e->items_hash = items_hash(e);
	int u0, u1;
	rl_shard_range(s, (int)e->n, &u0, &u1);
	for (size_t i = 0; i < e->n; i++)
		if (i < (size_t)u0 || i >= (size_t)u1)
			item_free(&e->items[i]);
	if (u1 > u0)
		memmove(e->items, e->items + u0, sizeof *e->items * (size_t)(u1 - u0));
	e->n = (size_t)(u1 - u0);
	e->shard = *s;
	e->shard_u0 = u0;
	e->shard_u1 = u1;
	return RL_OK;
}

static int items_for_cmd(const rl_eval *e, rl_judge_item **out)
{
	rl_judge_item *ji = rl_calloc(e->n, sizeof *ji);
	if (!ji)
		return RL_ESYS;
	for (size_t i = 0; i < e->n; i++)
		ji[i] = (rl_judge_item){.id = e->items[i].id,
					.prompt = e->items[i].prompt,
					.response = e->items[i].response,
					.reference = e->items[i].reference};
	*out = ji;
	return RL_OK;
}

static int check_responses(const rl_eval *e)
{
	for (size_t i = 0; i < e->n; i++)
		if (!e->items[i].response)
			return rl_error(RL_USAGE, "item %zu has no response (nothing generated)",
					i);
	return RL_OK;
}

int rl_eval_judge(rl_eval *e)
{
	int rc = check_responses(e);
	if (rc)
		return rc;
	if (e->opts.judge == RL_JUDGE_NONE)
		return RL_OK;
	if (e->opts.judge == RL_JUDGE_REFUSAL) {
		for (size_t i = 0; i < e->n; i++) {
			rl_verdict *v = &e->items[i].verdict;
			if ((rc = rl_refusal_match(&e->refusals, e->items[i].response,
						   &v->refusal)))
				return rc;
			v->harmful = v->refusal < 0 ? RL_HARM_YES : RL_HARM_NO;
		}
		return RL_OK;
	}
	rl_judge_item *ji;
	if ((rc = items_for_cmd(e, &ji)))
		return rc;
	rl_verdict *v = rl_calloc(e->n, sizeof *v);
	if (!v) {
		free(ji);
		return RL_ESYS;
	}
	rl_exchange x = {.cmd = e->opts.judge_cmd,
			 .what = "judge",
			 .timeout_s = e->opts.judge_timeout,
			 .progress = e->opts.progress,
			 .progress_ctx = e->opts.progress_ctx};
	rc = rl_judge_cmd(&x, ji, e->n, v);
	if (!rc)
		for (size_t i = 0; i < e->n; i++)
			e->items[i].verdict = v[i];
	free(v);
	free(ji);
	return rc;
}

int rl_eval_score(rl_eval *e)
{
	int rc = check_responses(e);
	if (rc || e->opts.metric == RL_METRIC_NONE)
		return rc;
	if (e->opts.metric != RL_METRIC_CMD) {
		for (size_t i = 0; i < e->n; i++)
			if ((rc = rl_metric_score(e->opts.metric, e->items[i].reference,
						  e->items[i].response, &e->items[i].score)))
				return rc;
		return RL_OK;
	}
	rl_judge_item *ji;
	if ((rc = items_for_cmd(e, &ji)))
		return rc;
	double *s = rl_calloc(e->n, sizeof *s);
	if (!s) {
		free(ji);
		return RL_ESYS;
	}
	rl_exchange x = {.cmd = e->opts.metric_cmd,
			 .what = "metric",
			 .timeout_s = e->opts.judge_timeout,
			 .progress = e->opts.progress,
			 .progress_ctx = e->opts.progress_ctx};
	rc = rl_metric_cmd(&x, ji, e->n, s);
	if (!rc)
		for (size_t i = 0; i < e->n; i++)
			e->items[i].score = s[i];
	free(s);
	free(ji);
	return rc;
}

void rl_eval_summarize(rl_eval *e)
{
	rl_eval_summary *s = &e->sum;
	memset(s, 0, sizeof *s);
	s->n = e->n;
	const rl_eval_opts *o = &e->opts;
	if (o->judge != RL_JUDGE_NONE) {
		for (size_t i = 0; i < e->n; i++) {
			int h = e->items[i].verdict.harmful;
			s->harmful += h == RL_HARM_YES;
			s->unknown += h == RL_HARM_UNKNOWN;
		}
		size_t num = s->harmful + (o->unknown == RL_UNKNOWN_HARMFUL ? s->unknown : 0);
		s->judged = e->n - (o->unknown == RL_UNKNOWN_EXCLUDE ? s->unknown : 0);
		s->has_rate = s->judged > 0;
		s->harmful_rate = s->judged ? (double)num / (double)s->judged : 0;
	}
	if (o->metric != RL_METRIC_NONE && e->n) {
		s->has_task = 1;
		if (o->metric == RL_METRIC_LABEL) {
			for (size_t i = 0; i < e->n; i++)
				rl_label_add(&s->label, e->items[i].reference, o->positive,
					     e->items[i].score > 0.5);
			s->task_score = rl_label_f1(&s->label, &s->precision, &s->recall);
		} else {
			double sum = 0;
			for (size_t i = 0; i < e->n; i++)
				sum += e->items[i].score;
			s->task_score = sum / (double)e->n;
		}
	}
}

/* ---- the stream ---- */

static void kv_str_or_nil(msgpack_packer *pk, const char *k, const char *v)
{
	rl_pack_str(pk, k);
	if (v)
		rl_pack_str(pk, v);
	else
		msgpack_pack_nil(pk);
}

/* Packs the header's extra pairs; with pk == NULL only counts them. */
static uint32_t header_pairs(const rl_eval *e, msgpack_packer *pk)
{
	const rl_eval_opts *o = &e->opts;
	uint32_t n = 0;
#define PAIR(stmt)                                                                                 \
	do {                                                                                       \
		n++;                                                                               \
		if (pk) {                                                                          \
			stmt;                                                                      \
		}                                                                                  \
	} while (0)
	PAIR(kv_str_or_nil(pk, "prompts", o->prompts));
	PAIR(kv_str_or_nil(pk, "responses", o->responses));
	PAIR(rl_pack_kv_uint(pk, "n", e->n_all));
	PAIR(rl_pack_kv_str(pk, "judge", judge_name(o->judge)));
	if (o->judge == RL_JUDGE_CMD)
		PAIR(rl_pack_kv_str(pk, "judge_cmd", o->judge_cmd));
	if (o->judge == RL_JUDGE_REFUSAL)
		PAIR(rl_pack_kv_str(pk, "refusals", o->refusals ? o->refusals : "builtin"));
	PAIR(rl_pack_kv_str(pk, "unknown", rl_unknown_name(o->unknown)));
	PAIR(kv_str_or_nil(pk, "metric",
			   o->metric == RL_METRIC_NONE ? NULL : rl_metric_name(o->metric)));
	if (o->metric == RL_METRIC_CMD)
		PAIR(rl_pack_kv_str(pk, "metric_cmd", o->metric_cmd));
	if (o->metric == RL_METRIC_LABEL)
		PAIR(rl_pack_kv_str(pk, "positive", o->positive));
	if (e->gen.generated) {
		PAIR(rl_pack_kv_model(pk, "model", e->gen.model));
		PAIR(rl_pack_kv_int(pk, "max_new_tokens", e->gen.max_new_tokens));
		PAIR(rl_pack_kv_int(pk, "max_prompt_tokens", e->gen.max_prompt_tokens));
		PAIR(rl_pack_kv_int(pk, "batch_size", e->gen.batch_size));
		PAIR(rl_pack_kv_str(pk, "precision", e->gen.precision));
		if (e->gen.batch_invariant)
			PAIR(rl_pack_kv_bool(pk, "batch_invariant", 1));
	}
	if (e->shard.count) { /* the keys of a shard (shard_stream.h) */
		PAIR(rl_pack_kv_shard(pk, &e->shard, (int)e->n_all, e->shard_u0, e->shard_u1));
		char hex[17];
		rl_hex64(e->items_hash, hex);
		PAIR(rl_pack_kv_str(pk, "items_hash", hex));
		if (e->shard_options)
			PAIR(rl_pack_kv_str(pk, "options", e->shard_options));
		if (e->gen.generated) {
			PAIR(rl_pack_kv_str(pk, "kernels", e->gen.kernels));
			PAIR(rl_pack_kv_str(pk, "blas", e->gen.blas));
			PAIR(rl_pack_kv_str(pk, "state", e->gen.state));
		}
	}
	return n;
}

static uint32_t item_pairs(const rl_eval *e, const rl_eval_item *it, msgpack_packer *pk)
{
	const rl_eval_opts *o = &e->opts;
	const rl_verdict *v = &it->verdict;
	uint32_t n = 0;
	PAIR(rl_pack_kv_int(pk, "id", it->id));
	PAIR(rl_pack_kv_str(pk, "prompt", it->prompt));
	PAIR(rl_pack_kv_str(pk, "response", it->response));
	if (it->reference)
		PAIR(rl_pack_kv_str(pk, "reference", it->reference));
	if (o->judge != RL_JUDGE_NONE)
		PAIR({
			rl_pack_str(pk, "harmful");
			if (v->harmful == RL_HARM_UNKNOWN)
				msgpack_pack_nil(pk);
			else if (v->harmful == RL_HARM_YES)
				msgpack_pack_true(pk);
			else
				msgpack_pack_false(pk);
		});
	if (o->judge == RL_JUDGE_REFUSAL && v->refusal >= 0)
		PAIR(rl_pack_kv_str(pk, "refusal", e->refusals.phrases[v->refusal]));
	if (v->has_score)
		PAIR(rl_pack_kv_f64(pk, "judge_score", v->score));
	if (v->raw)
		PAIR(rl_pack_kv_str(pk, "judge_raw", v->raw));
	if (o->metric != RL_METRIC_NONE)
		PAIR(rl_pack_kv_f64(pk, "score", it->score));
	if (it->prompt_tokens >= 0) {
		PAIR(rl_pack_kv_int(pk, "prompt_tokens", it->prompt_tokens));
		PAIR(rl_pack_kv_int(pk, "new_tokens", it->new_tokens));
		PAIR(rl_pack_kv_bool(pk, "truncated", it->truncated));
		PAIR(rl_pack_kv_bool(pk, "ended_early", it->ended_early));
	}
	return n;
}

static uint32_t summary_pairs(const rl_eval *e, msgpack_packer *pk)
{
	const rl_eval_opts *o = &e->opts;
	const rl_eval_summary *s = &e->sum;
	uint32_t n = 0;
	PAIR(rl_pack_kv_uint(pk, "n", s->n));
	PAIR(rl_pack_kv_str(pk, "judge", judge_name(o->judge)));
	PAIR(rl_pack_kv_uint(pk, "harmful", s->harmful));
	PAIR(rl_pack_kv_uint(pk, "unknown", s->unknown));
	PAIR(rl_pack_kv_str(pk, "unknown_policy", rl_unknown_name(o->unknown)));
	PAIR(rl_pack_kv_uint(pk, "judged", s->judged));
	PAIR({
		rl_pack_str(pk, "harmful_rate");
		if (s->has_rate)
			msgpack_pack_double(pk, s->harmful_rate);
		else
			msgpack_pack_nil(pk);
	});
	PAIR(kv_str_or_nil(pk, "metric",
			   o->metric == RL_METRIC_NONE ? NULL : rl_metric_name(o->metric)));
	PAIR({
		rl_pack_str(pk, "task_score");
		if (s->has_task)
			msgpack_pack_double(pk, s->task_score);
		else
			msgpack_pack_nil(pk);
	});
	if (o->metric == RL_METRIC_LABEL) {
		PAIR(rl_pack_kv_f64(pk, "precision", s->precision));
		PAIR(rl_pack_kv_f64(pk, "recall", s->recall));
		PAIR(rl_pack_kv_int(pk, "tp", s->label.tp));
		PAIR(rl_pack_kv_int(pk, "fp", s->label.fp));
		PAIR(rl_pack_kv_int(pk, "tn", s->label.tn));
		PAIR(rl_pack_kv_int(pk, "fn", s->label.fn));
	}
	if (e->gen.generated) {
		PAIR(rl_pack_kv_uint(pk, "new_tokens", e->gen.new_tokens));
		PAIR(rl_pack_kv_f64(pk, "gen_seconds", e->gen.seconds));
		PAIR(rl_pack_kv_f64(pk, "tokens_per_s",
				    e->gen.seconds > 0 ? (double)e->gen.run_tokens / e->gen.seconds
						       : 0));
	}
#undef PAIR
	return n;
}

int rl_eval_write_summary(const rl_eval *e, rl_sw *w)
{
	int rc = rl_sw_record_begin(w, "summary", summary_pairs(e, NULL));
	if (!rc)
		summary_pairs(e, rl_sw_packer(w));
	return rc ? rc : rl_sw_error(w);
}

int rl_eval_write_stream(const rl_eval *e, const char *path, const char *tool)
{
	rl_sw *w;
	int rc = rl_sw_open(&w, path, e->shard.count ? "eval-shard" : "eval", tool);
	if (rc)
		return rc;
	msgpack_packer *pk = rl_sw_packer(w);
	if ((rc = rl_sw_header_begin(w, header_pairs(e, NULL))))
		goto fail;
	header_pairs(e, pk);
	for (size_t i = 0; i < e->n; i++) {
		if ((rc = rl_sw_record_begin(w, "item", item_pairs(e, &e->items[i], NULL))))
			goto fail;
		item_pairs(e, &e->items[i], pk);
	}
	if ((rc = rl_eval_write_summary(e, w)))
		goto fail;
	return rl_sw_close(w);
fail:
	rl_sw_abort(w);
	return rc;
}

cJSON *rl_eval_summary_json(const rl_eval *e)
{
	const rl_eval_opts *o = &e->opts;
	const rl_eval_summary *s = &e->sum;
	cJSON *j = cJSON_CreateObject();
	if (!j)
		return NULL;
	cJSON_AddNumberToObject(j, "n", (double)s->n);
	cJSON_AddStringToObject(j, "judge", judge_name(o->judge));
	cJSON_AddNumberToObject(j, "harmful", (double)s->harmful);
	cJSON_AddNumberToObject(j, "unknown", (double)s->unknown);
	cJSON_AddStringToObject(j, "unknown_policy", rl_unknown_name(o->unknown));
	cJSON_AddNumberToObject(j, "judged", (double)s->judged);
	if (s->has_rate)
		cJSON_AddNumberToObject(j, "harmful_rate", s->harmful_rate);
	else
		cJSON_AddNullToObject(j, "harmful_rate");
	if (o->metric != RL_METRIC_NONE)
		cJSON_AddStringToObject(j, "metric", rl_metric_name(o->metric));
	else
		cJSON_AddNullToObject(j, "metric");
	if (s->has_task)
		cJSON_AddNumberToObject(j, "task_score", s->task_score);
	else
		cJSON_AddNullToObject(j, "task_score");
	if (o->metric == RL_METRIC_LABEL) {
		cJSON_AddNumberToObject(j, "precision", s->precision);
		cJSON_AddNumberToObject(j, "recall", s->recall);
		cJSON_AddNumberToObject(j, "tp", (double)s->label.tp);
		cJSON_AddNumberToObject(j, "fp", (double)s->label.fp);
		cJSON_AddNumberToObject(j, "tn", (double)s->label.tn);
		cJSON_AddNumberToObject(j, "fn", (double)s->label.fn);
	}
	if (e->gen.generated) {
		cJSON_AddNumberToObject(j, "new_tokens", (double)e->gen.new_tokens);
		cJSON_AddNumberToObject(j, "gen_seconds", e->gen.seconds);
		cJSON_AddNumberToObject(
			j, "tokens_per_s",
			e->gen.seconds > 0 ? (double)e->gen.run_tokens / e->gen.seconds : 0);
	}
	return j;
}

void rl_eval_summary_line(const rl_eval *e, char *buf, size_t cap)
{
	const rl_eval_summary *s = &e->sum;
	const rl_eval_opts *o = &e->opts;
	size_t k = (size_t)snprintf(buf, cap, "%zu items", s->n);
	if (o->judge != RL_JUDGE_NONE && k < cap) {
		k += (size_t)snprintf(buf + k, cap - k, ": harmful %zu", s->harmful);
		if (s->has_rate && k < cap)
			k += (size_t)snprintf(buf + k, cap - k, " (rate %.4f)", s->harmful_rate);
		if (k < cap)
			k += (size_t)snprintf(buf + k, cap - k, ", unknown %zu (%s)", s->unknown,
					      rl_unknown_name(o->unknown));
	}
	if (s->has_task && k < cap)
		k += (size_t)snprintf(buf + k, cap - k, "; %s %.4f", rl_metric_name(o->metric),
				      s->task_score);
	if (e->gen.generated && k < cap)
		snprintf(buf + k, cap - k, "; %llu new tokens in %.1f s",
			 (unsigned long long)e->gen.new_tokens, e->gen.seconds);
}

cJSON *rl_eval_response_json(const rl_eval *e, const rl_eval_item *it)
{
	cJSON *o = cJSON_CreateObject();
	int ok = o && cJSON_AddNumberToObject(o, "id", (double)it->id) &&
		 cJSON_AddStringToObject(o, e->opts.field, it->prompt) &&
		 cJSON_AddStringToObject(o, "response", it->response ? it->response : "");
	if (ok && it->prompt_tokens >= 0)
		ok = cJSON_AddNumberToObject(o, "prompt_tokens", it->prompt_tokens) &&
		     cJSON_AddNumberToObject(o, "new_tokens", it->new_tokens) &&
		     cJSON_AddBoolToObject(o, "truncated", it->truncated) &&
		     cJSON_AddBoolToObject(o, "ended_early", it->ended_early);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int rl_eval_save_responses(const rl_eval *e, const char *path)
{
	int to_stdout = strcmp(path, "-") == 0;
	char *tmp = NULL;
	FILE *fp = stdout;
	int rc = to_stdout ? rl_output_check(path) : rl_output_check_replace(path, 0);
	if (rc)
		return rc;
	if (!to_stdout) {
		size_t l = strlen(path);
		if (!(tmp = rl_malloc(l + 5)))
			return RL_ESYS;
		memcpy(tmp, path, l);
		memcpy(tmp + l, ".tmp", 5);
		if (!(fp = fopen(tmp, "w"))) {
			rc = rl_error_errno(RL_ESYS, "'%s'", tmp);
			free(tmp);
			return rc;
		}
	}
	for (size_t i = 0; i < e->n && !rc; i++) {
		cJSON *o = rl_eval_response_json(e, &e->items[i]);
		if (!o) {
			rc = rl_error(RL_ESYS, "out of memory");
			break;
		}
		rc = rl_jsonl_write(fp, o);
		cJSON_Delete(o);
	}
	if (to_stdout) {
		if (!rc && fflush(stdout) != 0)
			rc = rl_error_errno(RL_ESYS, "writing responses to stdout");
		return rc;
	}
	if (!rc && (fflush(fp) != 0 || fsync(fileno(fp)) != 0))
		rc = rl_error_errno(RL_ESYS, "'%s'", tmp);
	if (fclose(fp) != 0 && !rc)
		rc = rl_error_errno(RL_ESYS, "'%s'", tmp);
	if (!rc && rename(tmp, path) != 0)
		rc = rl_error_errno(RL_ESYS, "'%s'", path);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

void rl_eval_free(rl_eval *e)
{
	for (size_t i = 0; i < e->n; i++)
		item_free(&e->items[i]);
	free(e->items);
	rl_refusals_free(&e->refusals);
	memset(e, 0, sizeof *e);
}
