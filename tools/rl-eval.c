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
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/ops.h"
#include "core/cli.h"
#include "core/jsonl.h"
#include "core/par.h"
#include "eval/eval.h"
#include "eval/responses_log.h"
#include "store/model.h"
#include "text/chat.h"

struct opts {
	rl_eval_opts e;
	const char *model;
	const char *save;   /* -o: responses JSON lines */
	const char *output; /* -O: the stream (default stdout) */
	int summary_json;
	int resume;	    /* --resume: go on from -o FILE's log */
	int full_responses; /* --full-responses: no refusal early stop */
	int threads;
	rl_eval_gen_opts gen;
	rl_chat_opts chat;
};

static void usage(void)
{
	printf("Usage: rl-eval [-m MODEL] -p PROMPTS.jsonl [options] > eval.rls\n"
	       "       rl-eval --responses RESPONSES.jsonl [-p PROMPTS.jsonl] [options] > "
	       "eval.rls\n"
	       "Measures the harmful rate (a judge labels each response) and the task score (a\n"
	       "metric against the reference answer) and writes an eval stream.\n"
	       "\n"
	       "Items:\n"
	       "  -m, --model DIR            generate the responses with this model\n"
	       "  -p, --prompts FILE         JSON lines with \"prompt\" (and the reference answer\n"
	       "                             in \"response\" for a metric); - for stdin\n"
	       "      --field NAME           prompt field (default prompt)\n"
	       "      --ref-field NAME       reference answer field (default response)\n"
	       "  -n, --limit N              the first N items only\n"
	       "      --responses FILE       score these responses (\"prompt\", \"response\" "
	       "lines)\n"
	       "                             instead of generating; needs no model\n"
	       "  -o, --save-responses FILE  also write the responses as JSON lines; while\n"
	       "                             generating, each finished one is kept in\n"
	       "                             FILE.partial at once\n"
	       "      --resume               go on from FILE.partial (or a complete FILE) of an\n"
	       "                             interrupted run: its responses are not redone\n"
	       "Generation:\n"
	       "      --max-new-tokens N     at most N new tokens per response (default 128)\n"
	       "      --max-prompt-tokens N  longer prompts keep their first tokens and the\n"
	       "                             template's closing tokens (default 512)\n"
	       "  -b, --batch-size N         prompts decoded together (default 32)\n"
	       "      --kv-mem GIB           key/value caches in flight at most this big\n"
	       "                             (default: a quarter of the RAM)\n"
	       "      --template NAME|FILE   chat template (default: detected from the model)\n"
	       "      --raw                  the prompt as it is, no template\n"
	       "      --system TEXT          system prompt (default: the template's)\n"
	       "      --full-responses       never end a response early (by default, with the\n"
	       "                             refusal judge and no metric, a response ends once\n"
	       "                             it holds a refusal phrase: its verdict is final)\n"
	       "  -t, --threads N            compute threads (default: every online CPU)\n"
	       "Judge:\n"
	       "      --judge refusal|none   built-in refusal-phrase judge (default) or none\n"
	       "      --judge-cmd CMD        external judge (JSON lines contract, rl-eval(1))\n"
	       "      --refusals FILE        refusal phrases, one a line (replaces the list)\n"
	       "      --print-refusals       print the built-in refusal phrases and exit\n"
	       "      --unknown POLICY       a judge's null counts as safe (default), harmful,\n"
	       "                             or is excluded from the rate\n"
	       "      --judge-timeout S      stop a judge or metric command silent for S seconds\n"
	       "Metric:\n"
	       "      --metric NAME          exact, contains, label, rouge1, rouge2, rougeL\n"
	       "      --metric-cmd CMD       external metric (JSON lines contract, rl-eval(1))\n"
	       "      --positive LABEL       the label metric's positive label (default 1)\n"
	       "Output:\n"
	       "  -O, --output FILE          write the eval stream to FILE instead of stdout\n"
	       "      --summary-json         print the summary as one JSON line on stdout\n"
	       "                             (instead of the stream, which then needs -O)\n"
	       "  -q, --quiet                no progress, no summary line on stderr\n"
	       "  -v, --verbose              more notes on stderr\n"
	       "  -h, --help                 this help\n"
	       "      --version              version\n");
}

enum {
	OPT_FIELD = 256,
	OPT_REF_FIELD,
	OPT_RESPONSES,
	OPT_MAX_NEW,
	OPT_MAX_PROMPT,
	OPT_JUDGE,
	OPT_JUDGE_CMD,
	OPT_REFUSALS,
	OPT_PRINT_REFUSALS,
	OPT_UNKNOWN,
	OPT_JUDGE_TIMEOUT,
	OPT_METRIC,
	OPT_METRIC_CMD,
	OPT_POSITIVE,
	OPT_SUMMARY_JSON,
	OPT_VERSION,
	OPT_RESUME,
	OPT_FULL_RESPONSES,
	OPT_TEMPLATE,
	OPT_RAW,
	OPT_SYSTEM,
	OPT_KV_MEM,
};

static void parse_args(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{"model", required_argument, 0, 'm'},
		{"prompts", required_argument, 0, 'p'},
		{"field", required_argument, 0, OPT_FIELD},
		{"ref-field", required_argument, 0, OPT_REF_FIELD},
		{"limit", required_argument, 0, 'n'},
		{"responses", required_argument, 0, OPT_RESPONSES},
		{"save-responses", required_argument, 0, 'o'},
		{"max-new-tokens", required_argument, 0, OPT_MAX_NEW},
		{"max-prompt-tokens", required_argument, 0, OPT_MAX_PROMPT},
		{"batch-size", required_argument, 0, 'b'},
		{"template", required_argument, 0, OPT_TEMPLATE},
		{"raw", no_argument, 0, OPT_RAW},
		{"system", required_argument, 0, OPT_SYSTEM},
		{"kv-mem", required_argument, 0, OPT_KV_MEM},
		{"judge", required_argument, 0, OPT_JUDGE},
		{"judge-cmd", required_argument, 0, OPT_JUDGE_CMD},
		{"refusals", required_argument, 0, OPT_REFUSALS},
		{"print-refusals", no_argument, 0, OPT_PRINT_REFUSALS},
		{"unknown", required_argument, 0, OPT_UNKNOWN},
		{"judge-timeout", required_argument, 0, OPT_JUDGE_TIMEOUT},
		{"metric", required_argument, 0, OPT_METRIC},
		{"metric-cmd", required_argument, 0, OPT_METRIC_CMD},
		{"positive", required_argument, 0, OPT_POSITIVE},
		{"output", required_argument, 0, 'O'},
		{"summary-json", no_argument, 0, OPT_SUMMARY_JSON},
		{"resume", no_argument, 0, OPT_RESUME},
		{"full-responses", no_argument, 0, OPT_FULL_RESPONSES},
		{"threads", required_argument, 0, 't'},
		{"quiet", no_argument, 0, 'q'},
		{"verbose", no_argument, 0, 'v'},
		{"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, OPT_VERSION},
		{0, 0, 0, 0},
	};
	memset(o, 0, sizeof *o);
	rl_eval_opts_init(&o->e);
	rl_eval_gen_opts_init(&o->gen);
	o->gen.kv_budget_bytes = rl_phys_mem() / 4;
	int judge_set = 0, metric_set = 0, c;
	while ((c = getopt_long(argc, argv, "m:p:n:o:b:O:t:qvh", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->model = optarg;
			break;
		case 'p':
			o->e.prompts = optarg;
			break;
		case OPT_FIELD:
			o->e.field = optarg;
			break;
		case OPT_REF_FIELD:
			o->e.ref_field = optarg;
			break;
		case 'n':
			o->e.limit = (long)rl_parse_int("--limit", optarg, 1, 1000000000);
			break;
		case OPT_RESPONSES:
			o->e.responses = optarg;
			break;
		case 'o':
			o->save = optarg;
			break;
		case OPT_MAX_NEW:
			o->gen.max_new_tokens =
				(int)rl_parse_int("--max-new-tokens", optarg, 1, 1 << 20);
			break;
		case OPT_MAX_PROMPT:
			o->gen.max_prompt_tokens =
				(int)rl_parse_int("--max-prompt-tokens", optarg, 1, 1 << 20);
			break;
		case 'b':
			o->gen.batch_size = (int)rl_parse_int("--batch-size", optarg, 1, 4096);
			break;
		case OPT_TEMPLATE:
			o->chat.template_spec = optarg;
			break;
		case OPT_RAW:
			o->chat.raw = 1;
			break;
		case OPT_SYSTEM:
			o->chat.system = optarg;
			break;
		case OPT_KV_MEM:
			o->gen.kv_budget_bytes =
				(uint64_t)(rl_parse_double("--kv-mem", optarg, 0.001, 1 << 20) *
					   (double)(1u << 30));
			break;
		case OPT_JUDGE:
			if (judge_set)
				rl_usage("give one judge (--judge or --judge-cmd)");
			judge_set = 1;
			if (strcmp(optarg, "refusal") == 0)
				o->e.judge = RL_JUDGE_REFUSAL;
			else if (strcmp(optarg, "none") == 0)
				o->e.judge = RL_JUDGE_NONE;
			else
				rl_usage("--judge: '%s' is not a judge (refusal, none; or "
					 "--judge-cmd CMD)",
					 optarg);
			break;
		case OPT_JUDGE_CMD:
			if (judge_set)
				rl_usage("give one judge (--judge or --judge-cmd)");
			judge_set = 1;
			o->e.judge = RL_JUDGE_CMD;
			o->e.judge_cmd = optarg;
			break;
		case OPT_REFUSALS:
			o->e.refusals = optarg;
			break;
		case OPT_PRINT_REFUSALS:
			for (const char *const *p = rl_refusals_builtin(); *p; p++)
				printf("%s\n", *p);
			exit(rl_cli_exit());
		case OPT_UNKNOWN:
			if (rl_unknown_parse(optarg, &o->e.unknown))
				rl_usage("--unknown: %s", rl_errmsg());
			break;
		case OPT_JUDGE_TIMEOUT:
			o->e.judge_timeout = rl_parse_double("--judge-timeout", optarg, 0, 1e9);
			break;
		case OPT_METRIC:
			if (metric_set)
				rl_usage("give one metric (--metric or --metric-cmd)");
			metric_set = 1;
			if (rl_metric_parse(optarg, &o->e.metric))
				rl_usage("--metric: %s", rl_errmsg());
			break;
		case OPT_METRIC_CMD:
			if (metric_set)
				rl_usage("give one metric (--metric or --metric-cmd)");
			metric_set = 1;
			o->e.metric = RL_METRIC_CMD;
			o->e.metric_cmd = optarg;
			break;
		case OPT_POSITIVE:
			o->e.positive = optarg;
			break;
		case 'O':
			o->output = optarg;
			break;
		case OPT_SUMMARY_JSON:
			o->summary_json = 1;
			break;
		case OPT_RESUME:
			o->resume = 1;
			break;
		case OPT_FULL_RESPONSES:
			o->full_responses = 1;
			break;
		case 't':
			o->threads = (int)rl_parse_int("--threads", optarg, 1, 4096);
			break;
		case 'q':
			rl_set_quiet(1);
			break;
		case 'v':
			rl_set_verbose(1);
			break;
		case 'h':
			usage();
			exit(rl_cli_exit());
		case OPT_VERSION:
			printf("rl-eval %s\n", RL_VERSION);
			exit(rl_cli_exit());
		default:
			rl_usage("unknown option");
		}
	}
	if (optind < argc)
		rl_usage("unexpected argument '%s'", argv[optind]);
	if (!o->e.prompts && !o->e.responses)
		rl_usage("give the prompts (-p FILE) or the responses (--responses FILE)");
	if (!o->e.responses && !o->model)
		rl_usage("give a model to generate with (-m DIR), or --responses FILE");
	if (o->e.responses && o->model)
		rl_usage("-m and --responses exclude each other (nothing to generate)");
	if (o->chat.raw && o->chat.template_spec)
		rl_usage("--raw and --template exclude each other");
	if (!o->model && (o->chat.raw || o->chat.template_spec || o->chat.system))
		rl_usage("--template, --raw and --system go with -m");
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
	rl_note("%s", c.how);
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

	rl_eval e;
	rl_model m; /* open while the stream (whose header names it) is written */
	int have_model = 0;
	int rc = rl_eval_load(&e, &o.e);
	if (!rc && o.model && !(rc = rl_model_open(&m, o.model, RL_MODEL_READ))) {
		have_model = 1;
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
		rl_die_err(rc);
	}
	rl_eval_summarize(&e);
	if (o.output || !o.summary_json) {
		rc = rl_eval_write_stream(&e, o.output ? o.output : "-", "rl-eval");
		if (rc) {
			rl_eval_free(&e);
			rl_die_err(rc);
		}
	}
	if (o.summary_json) {
		cJSON *j = rl_eval_summary_json(&e);
		rc = j ? rl_jsonl_write(stdout, j) : rl_error(RL_ESYS, "out of memory");
		cJSON_Delete(j);
		if (rc) {
			rl_eval_free(&e);
			rl_die_err(rc);
		}
	}
	char line[512];
	rl_eval_summary_line(&e, line, sizeof line);
	rl_info("%s", line);
	rl_eval_free(&e);
	if (have_model)
		rl_model_close(&m);
	return rl_cli_exit();
}
