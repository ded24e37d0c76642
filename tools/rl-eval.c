/* rl-eval — harmful rate and task score of a model's (or given) responses.
 *
 *   rl-eval -m MODEL -p PROMPTS.jsonl [judge] [metric] > eval.rls
 *   rl-eval --responses RESPONSES.jsonl [-p PROMPTS.jsonl] [judge] [metric] > eval.rls
 *
 * Reads the items, generates the responses (greedy, batched, KV cache) unless
 * --responses gives them, labels them with the judge, scores them with the
 * metric, and writes an "eval" stream (or, with --summary-json, the summary as
 * one JSON line). See rl-eval(1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/ops.h"
#include "compute/wgemm.h"
#include "core/cli.h"
#include "core/cpu.h"
#include "core/inputs.h"
#include "core/jsonl.h"
#include "core/options.h"
#include "core/par.h"
#include "core/summary.h"
#include "core/util.h"
#include "eval/eval.h"
#include "eval/eval_gen.h"
#include "eval/responses_log.h"
#include "method/merge.h"
#include "store/adapter.h"
#include "store/model.h"
#include "store/model_state.h"
#include "text/chat.h"

struct opts {
	rl_eval_opts e;
	const char *model;
	const char *adapter; /* -A: merged into the model in memory */
	int any_base;
	const char *save;   /* -o: responses JSON lines */
	const char *output; /* -O: the stream (default stdout) */
	int summary_json;
	const char *summary; /* --summary FILE */
	int resume;	     /* --resume: go on from -o FILE's log */
	int full_responses;  /* --full-responses: no refusal early stop */
	int threads;
	long long limit;
	int judge_set, metric_set; /* one of each */
	rl_shard shard;
	rl_eval_gen_opts gen;
	rl_chat_opts chat;
};

static void on_precision(const char *name, const char *arg, void *ctx)
{
	if (rl_precision_parse(arg, ctx))
		rl_usage("%s: expected bf16 or fp32, got '%s'", name, arg);
}

/* A judge or a metric: one of each, whichever option names it. */
static void on_judge(const char *name, const char *arg, void *ctx)
{
	struct opts *o = ctx;
	if (o->judge_set++)
		rl_usage("give one judge (--judge or --judge-cmd)");
	if (strcmp(name, "--judge-cmd") == 0) {
		o->e.judge = RL_JUDGE_CMD;
		o->e.judge_cmd = arg;
	} else if (strcmp(arg, "refusal") == 0) {
		o->e.judge = RL_JUDGE_REFUSAL;
	} else if (strcmp(arg, "none") == 0) {
		o->e.judge = RL_JUDGE_NONE;
	} else {
		rl_usage("%s: '%s' is not a judge (refusal, none; or --judge-cmd CMD)", name, arg);
	}
}

static void on_metric(const char *name, const char *arg, void *ctx)
{
	struct opts *o = ctx;
	if (o->metric_set++)
		rl_usage("give one metric (--metric or --metric-cmd)");
	if (strcmp(name, "--metric-cmd") == 0) {
		o->e.metric = RL_METRIC_CMD;
		o->e.metric_cmd = arg;
	} else if (rl_metric_parse(arg, &o->e.metric)) {
		rl_usage("%s: %s", name, rl_errmsg());
	}
}

static void on_unknown(const char *name, const char *arg, void *ctx)
{
	if (rl_unknown_parse(arg, &((struct opts *)ctx)->e.unknown))
		rl_usage("%s: %s", name, rl_errmsg());
}

static void on_kv_mem(const char *name, const char *arg, void *ctx)
{
	((struct opts *)ctx)->gen.kv_budget_bytes =
		(uint64_t)(rl_parse_double(name, arg, 0.001, 1 << 20) * (double)(1u << 30));
}

static void print_refusals(const char *name, const char *arg, void *ctx)
{
	(void)name, (void)arg, (void)ctx;
	for (const char *const *p = rl_refusals_builtin(); *p; p++)
		printf("%s\n", *p);
	exit(rl_cli_exit());
}

static void parse_args(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	rl_eval_opts_init(&o->e);
	rl_eval_gen_opts_init(&o->gen);
	o->gen.kv_budget_bytes = rl_phys_mem() / 4;
	const rl_opt table[] = {
		RL_OPT_GROUP("Items:"),
		RL_OPT_MODEL(&o->model, "generate the responses with this model"),
		RL_OPT_ADAPTER(&o->adapter),
		RL_OPT_ANY_BASE(&o->any_base),
		RL_OPT_STRING('p', "prompts", "FILE", &o->e.prompts,
			      "JSON lines with \"prompt\" (and the reference answer in "
			      "\"response\" for a metric); - for stdin"),
		RL_OPT_STRING(0, "field", "NAME", &o->e.field, "prompt field (default prompt)"),
		RL_OPT_STRING(0, "ref-field", "NAME", &o->e.ref_field,
			      "reference answer field (default response)"),
		RL_OPT_LLONG('n', "limit", "N", &o->limit, 1, 1000000000, "the first N items only"),
		RL_OPT_STRING(0, "responses", "FILE", &o->e.responses,
			      "score these responses (\"prompt\", \"response\" lines) instead of "
			      "generating; needs no model"),
		RL_OPT_STRING('o', "save-responses", "FILE", &o->save,
			      "also write the responses as JSON lines; while generating, each "
			      "finished one is kept in FILE.partial at once"),
		RL_OPT_FLAG(0, "resume", &o->resume,
			    "go on from FILE.partial (or a complete FILE) of an interrupted run: "
			    "its responses are not redone"),
		RL_OPT_GROUP("Generation:"),
		RL_OPT_INT(0, "max-new-tokens", "N", &o->gen.max_new_tokens, 1, 1 << 20,
			   "at most N new tokens per response (default 128)"),
		RL_OPT_INT(0, "max-prompt-tokens", "N", &o->gen.max_prompt_tokens, 1, 1 << 20,
			   "longer prompts keep their first tokens and the template's closing "
			   "tokens (default 512)"),
		RL_OPT_INT('b', "batch-size", "N", &o->gen.batch_size, 1, 4096,
			   "prompts decoded together (default 32)"),
		RL_OPT_CALL(0, "kv-mem", "GIB", on_kv_mem, o,
			    "key/value caches in flight at most this big (default: a quarter of "
			    "the RAM)"),
		RL_OPT_FLAG(0, "batch-invariant", &o->gen.batch_invariant,
			    "each response a function of its prompt alone, bit for bit, at any "
			    "batch size and in any company (one matrix kernel for every row "
			    "count, no shared prefix: slower below 16 rows in flight without "
			    "AMX)"),
		RL_OPT_SHARD(&o->shard,
			     "the items of part I of N only (consecutive ids), batch-invariant, "
			     "as an eval-shard stream: rl-sum merges the N into the unsharded "
			     "run's stream"),
		RL_OPT_CALL(0, "precision", "P", on_precision, &o->gen.precision,
			    "bf16 (default): matrix inputs rounded to bf16 where the CPU has bf16 "
			    "dot products (bf16 weights); fp32: f32 throughout (rl-info shows the "
			    "kernels of each)"),
		RL_OPTS_CHAT(0, 0, &o->chat),
		RL_OPT_FLAG(
			0, "full-responses", &o->full_responses,
			"never end a response early (by default, with the refusal judge and no "
			"metric, a response ends once it holds a refusal phrase: its verdict is "
			"final)"),
		RL_OPT_THREADS('t', &o->threads, "compute threads (default: every online CPU)"),
		RL_OPT_GROUP("Judge:"),
		RL_OPT_CALL(0, "judge", "refusal|none", on_judge, o,
			    "built-in refusal-phrase judge (default) or none"),
		RL_OPT_CALL(0, "judge-cmd", "CMD", on_judge, o,
			    "external judge (JSON lines contract, rl-eval(1))"),
		RL_OPT_STRING(0, "refusals", "FILE", &o->e.refusals,
			      "refusal phrases, one a line (replaces the list)"),
		RL_OPT_CALL(0, "print-refusals", NULL, print_refusals, NULL,
			    "print the built-in refusal phrases and exit"),
		RL_OPT_CALL(0, "unknown", "POLICY", on_unknown, o,
			    "a judge's null counts as safe (default), harmful, or is excluded "
			    "from the rate"),
		RL_OPT_DOUBLE(0, "judge-timeout", "S", &o->e.judge_timeout, 0, 1e9,
			      "stop a judge or metric command silent for S seconds"),
		RL_OPT_GROUP("Metric:"),
		RL_OPT_CALL(0, "metric", "NAME", on_metric, o,
			    "exact, contains, label, rouge1, rouge2, rougeL"),
		RL_OPT_CALL(0, "metric-cmd", "CMD", on_metric, o,
			    "external metric (JSON lines contract, rl-eval(1))"),
		RL_OPT_STRING(0, "positive", "LABEL", &o->e.positive,
			      "the label metric's positive label (default 1)"),
		RL_OPT_GROUP("Output:"),
		RL_OPT_OUTPUT('O', "FILE", &o->output,
			      "write the eval stream to FILE instead of stdout"),
		RL_OPT_FLAG(0, "summary-json", &o->summary_json,
			    "print the summary as one JSON line on stdout (instead of the stream, "
			    "which then needs -O)"),
		RL_OPT_SUMMARY(&o->summary),
		RL_OPT_QUIET("no progress, no summary line on stderr"),
		RL_OPT_VERBOSE("more notes on stderr"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-eval [-m MODEL] -p PROMPTS.jsonl [options] > eval.rls\n"
		"rl-eval --responses RESPONSES.jsonl [-p PROMPTS.jsonl] [options] > eval.rls",
		"Measures the harmful rate (a judge labels each response) and the task score (a\n"
		"metric against the reference answer) and writes an eval stream.",
		table,
		NULL,
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	o->e.limit = (long)o->limit;
	if (i < argc)
		rl_usage("unexpected argument '%s'", argv[i]);
	if (!o->e.prompts && !o->e.responses)
		rl_usage("give the prompts (-p FILE) or the responses (--responses FILE)");
	if (!o->e.responses && !o->model)
		rl_usage("give a model to generate with (-m DIR), or --responses FILE");
	if (o->e.responses && o->model)
		rl_usage("-m and --responses exclude each other (nothing to generate)");
	if (o->chat.raw && o->chat.template_spec)
		rl_usage("--raw and --template exclude each other");
	if (o->adapter && !o->model)
		rl_usage("-A ADAPTER goes with -m MODEL");
	if (o->any_base && !o->adapter)
		rl_usage("--any-base goes with -A ADAPTER");
	if (!o->model && (o->chat.raw || o->chat.template_spec || o->chat.system || o->chat.kwargs))
		rl_usage("--template, --raw, --system and --template-kwargs go with -m");
	if (o->e.refusals && o->e.judge != RL_JUDGE_REFUSAL)
		rl_usage("--refusals goes with the refusal judge");
	if (o->e.metric != RL_METRIC_NONE && !o->e.prompts)
		rl_usage("a metric needs the reference answers: give -p FILE");
	if (strcmp(o->e.positive, "1") != 0 && o->e.metric != RL_METRIC_LABEL)
		rl_usage("--positive goes with --metric label");
	if (o->e.prompts && o->e.responses && strcmp(o->e.prompts, "-") == 0 &&
	    strcmp(o->e.responses, "-") == 0)
		rl_usage("the prompts and the responses cannot both come from stdin");
	int stream_to_stdout = !o->summary_json && (!o->output || strcmp(o->output, "-") == 0);
	if (o->summary_json && o->output && strcmp(o->output, "-") == 0)
		rl_usage("--summary-json uses stdout: write the stream to a file with -O");
	if (o->save && strcmp(o->save, "-") == 0 && (stream_to_stdout || o->summary_json))
		rl_usage("-o -: stdout already carries the %s",
			 o->summary_json ? "summary" : "stream (write it with -O FILE)");
	if (o->resume && (!o->save || strcmp(o->save, "-") == 0 || !o->model))
		rl_usage("--resume goes on from -o FILE's responses: give -m and -o FILE");
	if (o->shard.count) {
		o->gen.batch_invariant = 1; /* the shards' responses are the whole run's */
		if (o->summary_json && !o->output)
			rl_usage("--shard writes a stream for rl-sum: give -O FILE with "
				 "--summary-json");
	}
	if (stream_to_stdout)
		rl_require_stdout_not_tty();
}

/* Progress of the judge or metric command. */
static void on_progress(void *ctx, size_t done, size_t n)
{
	rl_progress("%s: %zu/%zu items", (const char *)ctx, done, n);
}

/* Progress of generation: items done, tokens/s, time left. */
static void on_gen_progress(void *ctx, size_t done, size_t n, uint64_t tokens)
{
	double t = rl_now() - *(const double *)ctx;
	char eta[32] = "";
	if (done > 0 && done < n) {
		double left = t / (double)done * (double)(n - done);
		snprintf(eta, sizeof eta, ", %dm%02ds left", (int)(left / 60), (int)left % 60);
	}
	rl_progress("generating: %zu/%zu items, %.1f tokens/s%s", done, n,
		    t > 0 ? (double)tokens / t : 0.0, eta);
}

static int log_item(void *ctx, const rl_eval_item *it);

/* The options that change a shard's results and are not in the run's
 * header, as one JSON object (rl-sum refuses shards that differ in it). */
static char *shard_options(const struct opts *o)
{
	cJSON *j = cJSON_CreateObject();
	if (!j)
		return NULL;
	const char *s[][2] = {{"field", o->e.field},
			      {"ref_field", o->e.ref_field},
			      {"template", o->chat.template_spec},
			      {"system", o->chat.system},
			      {"template_kwargs", o->chat.kwargs},
			      {"adapter", o->adapter}};
	int ok = 1;
	for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
		ok &= (s[i][1] ? cJSON_AddStringToObject(j, s[i][0], s[i][1])
			       : cJSON_AddNullToObject(j, s[i][0])) != NULL;
	ok &= cJSON_AddBoolToObject(j, "raw", o->chat.raw) != NULL;
	ok &= cJSON_AddBoolToObject(j, "any_base", o->any_base) != NULL;
	ok &= cJSON_AddBoolToObject(j, "full_responses", o->full_responses) != NULL;
	char *text = ok ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	return text;
}

/* Fills the responses with model m (open) and its tokenizer and template;
 * with -o FILE, writes FILE (and keeps each response in FILE.partial as it
 * comes). */
static int generate(rl_eval *e, const rl_model *m, struct opts *o)
{
	char note[256];
	rl_blas_setup(note, sizeof note);
	if (note[0])
		rl_note("%s", note);
	rl_blas_threads(o->threads);
	if (o->threads)
		rl_par_set_threads(o->threads);
	rl_chat c;
	int rc = rl_chat_open(&c, o->model, &o->chat);
	if (rc)
		return rc;
	rl_note("%s", c.info.how);
	if (*c.info.note)
		rl_info("%s", c.info.note);
	if (*c.info.warning)
		rl_warn("%s", c.info.warning);
	const rl_tensor *q = rl_model_get(m, 0, RL_R_Q);
	if (!q)
		q = rl_model_get(m, 0, RL_R_QKV); /* Phi-3's fused */
	char kern[256];
	rl_wgemm_describe(o->gen.precision, q ? q->dtype : m->lm_head->dtype, kern, sizeof kern);
	rl_note("precision %s on %s: kernels %s", rl_precision_name(o->gen.precision),
		rl_cpu_describe(), kern);
	/* Finished responses go to FILE.partial as they come (responses_log.h). */
	rl_responses_log log = {0};
	size_t resumed = 0;
	if (o->save && strcmp(o->save, "-") != 0 &&
	    (rc = rl_responses_log_open(&log, o->save, e, o->resume, &resumed))) {
		rl_chat_close(&c);
		return rc;
	}
	if (o->resume)
		rl_info("resuming: %zu of %zu responses kept from the interrupted run", resumed,
			e->n);
	if (log.fp) {
		o->gen.item_done = log_item;
		o->gen.item_ctx = &log;
	}
	if (e->opts.judge == RL_JUDGE_REFUSAL && e->opts.metric == RL_METRIC_NONE &&
	    !o->full_responses)
		o->gen.early_refusals = &e->refusals;
	double t0 = rl_now();
	o->gen.progress = on_gen_progress;
	o->gen.progress_ctx = &t0;
	rc = rl_eval_generate(e, m, &c, &o->gen);
	rl_progress_end();
	rl_chat_close(&c);
	/* The log goes once FILE holds every response. */
	if (!rc && o->save)
		rc = rl_eval_save_responses(e, o->save);
	if (log.fp) {
		int rc2 = rl_responses_log_close(&log, !rc);
		rc = rc ? rc : rc2;
	}
	return rc;
}

static int log_item(void *ctx, const rl_eval_item *it)
{
	return rl_responses_log_add(ctx, it);
}

int main(int argc, char **argv)
{
	rl_cli_init("rl-eval", argc, argv);
	struct opts o;
	parse_args(&o, argc, argv);
	o.e.progress = on_progress;
	double t0 = rl_now();

	rl_eval e;
	rl_model m; /* open while the stream (whose header names it) is written */
	rl_merged merged = {0};
	int have_model = 0;
	int rc = rl_eval_load(&e, &o.e);
	char *options = NULL;
	if (!rc && o.shard.count) {
		if (!(options = shard_options(&o)))
			rc = rl_error(RL_ESYS, "out of memory");
		e.shard_options = options;
		if (!rc)
			rc = rl_eval_keep_shard(&e, &o.shard);
		if (!rc)
			rl_note("shard %d of %d: items %d..%d of %zu", o.shard.index, o.shard.count,
				e.shard_u0, e.shard_u1 - 1, e.n_all);
	}
	if (!rc && o.model && !(rc = rl_model_open(&m, o.model, RL_MODEL_READ))) {
		have_model = 1;
		/* -A: the adapter merged as rl-merge merges it, before anything is
		 * written (a refused adapter leaves no output) */
		if (o.adapter && !(rc = rl_merge_adapter_dir(&m, o.adapter, !o.any_base, &merged)))
			rl_info("'%s' merged: LoRA r %d, scale %g, %zu tensors", o.adapter,
				merged.r, (double)merged.scale, merged.n);
		/* a shard names the weights it read: rl-sum refuses shards of
		 * different states (rl_model_state refuses a hot journal) */
		if (!rc && o.shard.count)
			rc = rl_model_state(&m, e.gen.state);
		if (!rc && !(rc = rl_output_check(o.output ? o.output : "-"))) /* before the work */
			rc = generate(&e, &m, &o);
	}
	/* Saved before judging: a judge that fails does not cost the generation. */
	if (!rc && o.save && !have_model)
		rc = rl_eval_save_responses(&e, o.save);
	if (!rc) {
		e.opts.progress_ctx = "judging";
		rc = rl_eval_judge(&e);
		rl_progress_end();
	}
	if (!rc) {
		e.opts.progress_ctx = "scoring";
		rc = rl_eval_score(&e);
		rl_progress_end();
	}
	if (rc) {
		rl_eval_free(&e);
		free(options);
		rl_die_err(rc);
	}
	rl_eval_summarize(&e);
	if (o.output || !o.summary_json) {
		rc = rl_eval_write_stream(&e, o.output ? o.output : "-", "rl-eval");
		if (rc) {
			rl_eval_free(&e);
			free(options);
			rl_die_err(rc);
		}
	}
	if (o.summary_json) {
		cJSON *j = rl_eval_summary_json(&e);
		rc = j ? rl_jsonl_write(stdout, j) : rl_error(RL_ESYS, "out of memory");
		cJSON_Delete(j);
		if (rc) {
			rl_eval_free(&e);
			free(options);
			rl_die_err(rc);
		}
	}
	if (o.summary) {
		/* the --summary-json object, with the tool, its time and memory */
		cJSON *j = rl_eval_summary_json(&e);
		if (j && !cJSON_AddStringToObject(j, "tool", "rl-eval")) {
			cJSON_Delete(j);
			j = NULL;
		}
		if ((rc = rl_summary_write(j, o.summary, rl_now() - t0))) {
			rl_eval_free(&e);
			free(options);
			rl_die_err(rc);
		}
	}
	char line[512];
	rl_eval_summary_line(&e, line, sizeof line);
	rl_info("%s", line);
	rl_eval_free(&e);
	free(options);
	if (have_model)
		rl_model_close(&m);
	rl_merged_free(&merged);
	return rl_cli_exit();
}
