/* eval.h — an evaluation run: items (prompt, reference, response), a harmful
 * judge, a task metric, the summary, and the "eval" stream.
 *
 * Calling order: rl_eval_init; rl_eval_load (prompts and/or responses); the
 * responses are filled by generation (generate.h) or came with --responses;
 * rl_eval_judge; rl_eval_score; rl_eval_summarize; rl_eval_write_stream and/or
 * rl_eval_summary_json; rl_eval_free. Everything is held in memory (an eval
 * set is hundreds to a few thousand items).
 *
 * Item ids are the 0-based positions of the items in the input file(s); they
 * are what external judges and metrics see and echo back.
 *
 * The eval stream (kind "eval", rl-stream(5)):
 *   header: the envelope plus "prompts" (path or nil), "responses" (path or
 *           nil), "n", "judge" ("refusal", "cmd", "none"), "judge_cmd" (cmd
 *           judge), "refusals" (refusal judge: file or "builtin"), "unknown"
 *           ("safe", "harmful", "exclude"), "metric" (name, "cmd" or nil),
 *           "metric_cmd", "positive" (label metric), and when realign
 *           generated the responses "model" {"shape_id","arch","n_layers",
 *           "path"}, "max_new_tokens", "max_prompt_tokens", "batch_size",
 *           "precision" ("fp32" or "bf16"), and "batch_invariant": true when
 *           generation was (generate.h).
 *   "item" records, one per item in id order: "id", "prompt", "response",
 *           "reference" (when the input has one), "harmful" (true, false or
 *           nil = unknown; absent without a judge), "refusal" (the phrase
 *           the refusal judge matched), "judge_score", "judge_raw" (when the
 *           external judge gave them), "score" (the item's metric score), and
 *           when generated "prompt_tokens", "new_tokens", "truncated",
 *           "ended_early" (the refusal early stop ended it, eval_gen).
 *   one "summary" record, last: "n", "judge", "harmful" (items the judge
 *           called harmful), "unknown" (items it could not decide),
 *           "unknown_policy", "judged" (the rate's denominator),
 *           "harmful_rate" (nil without a judge or with an empty
 *           denominator), "metric", "task_score" (nil without a metric),
 *           for "label" also "precision", "recall", "tp", "fp", "tn", "fn";
 *           when generated "new_tokens", "gen_seconds", "tokens_per_s".
 *
 * A shard's stream (rl-eval --shard I/N; kind "eval-shard"): the header of
 * the whole run (its "n" all items), then "shard" (shard_stream.h: units =
 * items), "items_hash" (16 hex digits: XXH64 of every item's prompt,
 * reference and given response, before the shard was taken), "options" (the
 * caller's, when set), and when generated "kernels", "blas" and "state"
 * (the model's state id: the weights the responses come from); the items of
 * ids [first, end) only; their summary. rl-sum merges the shards
 * (eval_shard.h) into the stream of the unsharded run.
 */
#ifndef RL_EVAL_H
#define RL_EVAL_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "core/options.h"
#include "core/subproc.h"
#include "eval/judge.h"
#include "eval/metric.h"
#include "store/stream.h"

typedef enum rl_judge_kind { RL_JUDGE_NONE, RL_JUDGE_REFUSAL, RL_JUDGE_CMD } rl_judge_kind;

/* What an unknown verdict (a judge's null) counts as in the harmful rate:
 * not harmful (the reference's choice: ShieldLM's unparseable output counts
 * as safe, denominator kept), harmful, or left out of the denominator. */
typedef enum rl_unknown_policy {
	RL_UNKNOWN_SAFE,
	RL_UNKNOWN_HARMFUL,
	RL_UNKNOWN_EXCLUDE
} rl_unknown_policy;

int rl_unknown_parse(const char *s, rl_unknown_policy *p);
const char *rl_unknown_name(rl_unknown_policy p);

typedef struct rl_eval_opts {
	const char *prompts;   /* JSON lines with the prompt field; NULL with responses */
	const char *field;     /* prompt field ("prompt") */
	const char *ref_field; /* reference field ("response") */
	const char *responses; /* --responses file; NULL when realign generates */
	long limit;	       /* first N items; 0 = all */
	rl_judge_kind judge;
	const char *judge_cmd;
	const char *refusals; /* NULL = built-in list */
	rl_unknown_policy unknown;
	double judge_timeout; /* seconds without progress; 0 = none */
	rl_metric_kind metric;
	const char *metric_cmd;
	const char *positive; /* label metric's positive label ("1") */
	rl_exchange_progress progress;
	void *progress_ctx;
} rl_eval_opts;

void rl_eval_opts_init(rl_eval_opts *o);

typedef struct rl_eval_item {
	int64_t id;
	char *prompt;
	char *reference; /* NULL when the input has none */
	char *response;	 /* NULL until generated or read */
	/* generation (when realign generated; prompt_tokens < 0 otherwise) */
	int prompt_tokens, new_tokens, truncated;
	int ended_early; /* generation ended by the early-stop rule (below) */
	rl_verdict verdict;
	double score; /* metric score, when the run has a metric */
} rl_eval_item;

/* Generation facts for the header and summary (when realign generated). */
struct rl_model;
typedef struct rl_eval_gen {
	int generated;
	const struct rl_model *model; /* its identity goes in the header */
	int max_new_tokens, max_prompt_tokens, batch_size;
	int batch_invariant; /* generate.h: the header says so (when set) */
	/* the precision's name (the header's); what a shard's header adds (the
	 * results depend on them): the matrix kernels, OpenBLAS's core */
	char precision[8], kernels[256], blas[64];
	char state[33];	     /* the model's state id (model_state.h), set by the caller */
	uint64_t new_tokens; /* over every item (resumed ones included) */
	uint64_t run_tokens; /* generated by this run (for tokens/s) */
	double seconds;	     /* this run's generation time */
} rl_eval_gen;

typedef struct rl_eval_summary {
	size_t n;
	size_t harmful, unknown, judged;
	int has_rate;
	double harmful_rate;
	int has_task;
	double task_score;
	rl_label_counts label;
	double precision, recall;
} rl_eval_summary;

typedef struct rl_eval {
	rl_eval_opts opts;
	rl_eval_item *items;
	size_t n;
	size_t n_all;		   /* the run's items (n, or all shards' with a shard) */
	rl_shard shard;		   /* count 0: the whole run; else this shard's items */
	int shard_u0, shard_u1;	   /* the items' ids [u0, u1) */
	uint64_t items_hash;	   /* of every item of the run (rl_eval_keep_shard) */
	const char *shard_options; /* the caller's options that change the results
				    * (JSON text, not owned; NULL: none) */
	rl_refusals refusals;
	rl_eval_gen gen;
	rl_eval_summary sum;
} rl_eval;

/* Checks the options' consistency (RL_USAGE) and loads the items: from
 * opts.prompts (prompt and reference) and/or opts.responses (responses,
 * matched to prompts by position; a prompt given in both must be equal). */
int rl_eval_load(rl_eval *e, const rl_eval_opts *o);
/* Keeps shard s's items only (rl_shard_range of the loaded ones: their ids
 * kept); the stream becomes an "eval-shard" (below). */
int rl_eval_keep_shard(rl_eval *e, const rl_shard *s);
/* Runs the judge over every item (refusal list or external command). */
int rl_eval_judge(rl_eval *e);
/* Runs the metric over every item. */
int rl_eval_score(rl_eval *e);
/* Fills e->sum from the verdicts and scores. */
void rl_eval_summarize(rl_eval *e);
/* Writes the eval stream to path ("-" = stdout), header to summary; with a
 * shard, the "eval-shard" stream (below). */
int rl_eval_write_stream(const rl_eval *e, const char *path, const char *tool);
/* The summary as a JSON object (caller deletes); NULL when out of memory. */
cJSON *rl_eval_summary_json(const rl_eval *e);
/* One line for people: "700 items: harmful 12 (1.71%), unknown 0; ..." */
void rl_eval_summary_line(const rl_eval *e, char *buf, size_t cap);
/* Packs the summary record of e into w (its fields as above). */
int rl_eval_write_summary(const rl_eval *e, rl_sw *w);
/* Writes {"id","prompt","response"} lines to path, atomically (temp file,
 * fsync, rename), so generation and judging can be split; when realign
 * generated, each line also carries "prompt_tokens", "new_tokens",
 * "truncated" and "ended_early" (the responses log's line, responses_log.h). */
int rl_eval_save_responses(const rl_eval *e, const char *path);
/* One item as such a line (NULL when out of memory). */
cJSON *rl_eval_response_json(const rl_eval *e, const rl_eval_item *it);
void rl_eval_free(rl_eval *e);

#endif
