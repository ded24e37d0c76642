/* rl-select — choose the elements to restore: sign mask + exact global top-k.
 *
 * Reads a grad stream (file or stdin), the current model (-m) and the target
 * model (-t), and writes a select stream (rl-stream(5)) on stdout: per tensor
 * the selected element indices, scores and both models' stored bytes. All
 * logic is in lib/select.c and lib/restore.c; this file parses options.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/inputs.h"
#include "core/options.h"
#include "core/summary.h"
#include "core/util.h"
#include "method/filter.h"
#include "method/selection.h"

struct opts {
	const char *model, *target, *within, *include, *exclude, *grad, *out, *summary;
	int budget_set;
	const char *budget_mode;
	double budget_value;
	rl_sel_params p;
	int layer_lo, layer_hi;
	int layer_end;
};

static void set_budget(struct opts *o, const char *mode, double v)
{
	if (o->budget_set)
		rl_usage("give one of --rate, --count, --fraction, --threshold");
	o->budget_set = 1;
	o->budget_mode = mode;
	o->budget_value = v;
}

/* The budget options: one of them, named by its long name. */
static void on_budget(const char *name, const char *arg, void *ctx)
{
	static const char *const modes[] = {"rate", "count", "fraction", "threshold"};
	const char *mode = NULL;
	for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
		if (strcmp(name + 2, modes[i]) == 0)
			mode = modes[i]; /* static: the mode outlives name */
	if (!mode)
		rl_usage("%s: not a budget option", name);
	if (strcmp(mode, "count") == 0)
		set_budget(ctx, mode, (double)rl_parse_int(name, arg, 0, (long long)1 << 53));
	else if (strcmp(mode, "threshold") == 0)
		set_budget(ctx, mode, rl_parse_double(name, arg, 0, INFINITY));
	else
		set_budget(ctx, mode, rl_parse_double(name, arg, 0, 1));
}

static void on_score(const char *name, const char *arg, void *ctx)
{
	int s = rl_score_parse(arg);
	if (s < 0)
		rl_usage("%s: '%s' is not grad, diff or random", name, arg);
	((struct opts *)ctx)->p.score = (rl_score)s;
}

static void on_layers(const char *name, const char *arg, void *ctx)
{
	struct opts *o = ctx;
	char lo[32];
	size_t n = strcspn(arg, ":");
	if (!arg[n] || n >= sizeof lo)
		rl_usage("%s: '%s' is not A:B", name, arg);
	memcpy(lo, arg, n);
	lo[n] = 0;
	o->layer_lo = (int)rl_parse_int(name, lo, 0, 1000000);
	o->layer_hi = (int)rl_parse_int(name, arg + n + 1, 0, 1000000);
	if (o->layer_hi <= o->layer_lo)
		rl_usage("%s: empty range %d:%d", name, o->layer_lo, o->layer_hi);
}

static void parse_args(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	o->layer_hi = -1;
	o->out = "-";
	const rl_opt table[] = {
		RL_OPT_MODEL(&o->model, "the current (working) model"),
		RL_OPT_STRING('t', "target", "DIR", &o->target,
			      "the model values come from (aligned; fine-tuned to roll back)"),
		RL_OPT_CALL(0, "rate", "R", on_budget, o,
			    "k = ceil(R * P), P = parameters of all decoder layers"),
		RL_OPT_CALL(0, "count", "K", on_budget, o, "k = K"),
		RL_OPT_CALL(0, "fraction", "F", on_budget, o, "k = ceil(F * eligible elements)"),
		RL_OPT_CALL(0, "threshold", "T", on_budget, o,
			    "every eligible element with score > T"),
		RL_OPT_CALL(0, "score", "S", on_score, o, "grad (default) | diff | random"),
		RL_OPT_U64(0, "seed", "N", &o->p.seed, 0, INT64_MAX,
			   "seed of --score random (default 0)"),
		RL_OPT_CALL(0, "layers", "A:B", on_layers, o, "only tensors of layers A..B-1"),
		RL_OPT_STRING(0, "include", "RE", &o->include,
			      "only tensors whose name matches RE (PCRE2)"),
		RL_OPT_STRING(0, "exclude", "RE", &o->exclude, "no tensor whose name matches RE"),
		RL_OPT_STRING(0, "within", "JOURNAL", &o->within,
			      "only elements that JOURNAL changed"),
		RL_OPT_INT('L', "layer-end", "L", &o->layer_end, 1, 1000000,
			   "diff/random without a grad stream: candidates of layers < L"),
		RL_OPT_OUTPUT('o', "FILE", &o->out, "write the stream to FILE instead of stdout"),
		RL_OPT_SUMMARY(&o->summary),
		RL_OPT_QUIET("no summary on stderr"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-select -m CURRENT -t TARGET (--rate R | --count K | --fraction F |\n"
		"          --threshold T) [options] [GRAD.rls|-] > SEL.rls",
		"Select the elements whose restore from TARGET the gradient favours: sign mask,\n"
		"then the exact global top-k by |g| across all tensors. Writes a select stream.",
		table,
		NULL,
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	if (!o->model || !o->target)
		rl_usage("-m CURRENT and -t TARGET are required (the sign mask compares them)");
	if (!o->budget_set)
		rl_usage("give a budget: --rate, --count, --fraction or --threshold");
	if (i + 1 < argc)
		rl_usage("too many arguments");
	o->grad = i < argc ? argv[i] : "-";
	if (o->layer_end && o->p.score == RL_SCORE_GRAD)
		rl_usage("--layer-end replaces the grad stream: only with --score diff or random");
	if (o->layer_end && i < argc)
		rl_usage("--layer-end and a grad stream exclude each other");
}

/* The summary as JSON (rl-select(1) lists the keys). k is the budget's count
 * (--rate or --count; null for --fraction and --threshold, which find theirs). */
static int write_summary(const struct opts *o, const rl_selector *s, double seconds)
{
	cJSON *j = rl_summary_new("rl-select");
	int ok = j && cJSON_AddStringToObject(j, "budget", o->budget_mode) &&
		 cJSON_AddNumberToObject(j, "budget_value", o->budget_value) &&
		 (o->p.budget == RL_BUDGET_COUNT
			  ? cJSON_AddNumberToObject(j, "k", (double)o->p.count) != NULL
			  : cJSON_AddNullToObject(j, "k") != NULL) &&
		 cJSON_AddNumberToObject(j, "selected", (double)s->k) &&
		 cJSON_AddNumberToObject(j, "eligible", (double)s->eligible) &&
		 cJSON_AddNumberToObject(j, "considered", (double)s->fed) &&
		 cJSON_AddNumberToObject(j, "nan_gradients", (double)s->nan_grad) &&
		 cJSON_AddStringToObject(j, "score", rl_score_name(o->p.score)) &&
		 cJSON_AddNumberToObject(j, "min_score", (double)s->min_score);
	if (!ok) {
		cJSON_Delete(j);
		return rl_error(RL_ESYS, "'%s': out of memory", o->summary);
	}
	return rl_summary_write(j, o->summary, seconds);
}

int main(int argc, char **argv)
{
	struct opts o;
	rl_cli_init("rl-select", argc, argv);
	parse_args(&o, argc, argv);
	if (strcmp(o.out, "-") == 0)
		rl_require_stdout_not_tty();

	rl_model cur, tgt;
	int rc = rl_model_open(&cur, o.model, RL_MODEL_READ);
	if (rc)
		rl_die_err(rc);
	if ((rc = rl_model_open(&tgt, o.target, RL_MODEL_READ)) || (rc = rl_output_check(o.out)))
		rl_die_err(rc);

	uint64_t cap = 0;
	rl_filter f;
	if ((rc = rl_filter_init(&f, o.layer_lo, o.layer_hi, o.include, o.exclude)))
		rl_die_err(rc);
	for (size_t i = 0; i < cur.ntensors; i++)
		if (rl_filter_pass(&f, &cur.tensors[i]))
			cap += cur.tensors[i].numel;
	if (strcmp(o.budget_mode, "rate") == 0) {
		o.p.budget = RL_BUDGET_COUNT;
		o.p.count = (uint64_t)ceil(o.budget_value * (double)rl_model_param_count(&cur));
	} else if (strcmp(o.budget_mode, "count") == 0) {
		o.p.budget = RL_BUDGET_COUNT;
		o.p.count = (uint64_t)o.budget_value;
	} else if (strcmp(o.budget_mode, "fraction") == 0) {
		o.p.budget = RL_BUDGET_FRACTION;
		o.p.fraction = o.budget_value;
	} else {
		o.p.budget = RL_BUDGET_THRESHOLD;
		o.p.threshold = o.budget_value;
	}
	o.p.cap = cap;

	rl_selection sel;
	double t0 = rl_now();
	if ((rc = rl_selection_init(&sel, &cur, &tgt, &o.p)))
		rl_die_err(rc);
	if (o.within) {
		if ((rc = rl_selection_within(&sel, o.within)))
			rl_die_err(rc);
		/* the buffer never needs more than the within list */
		uint64_t wt = rl_selector_within_total(&sel.s);
		if (o.p.budget == RL_BUDGET_FRACTION && wt < cap) {
			rl_selection_free(&sel);
			o.p.cap = wt;
			if ((rc = rl_selection_init(&sel, &cur, &tgt, &o.p)) ||
			    (rc = rl_selection_within(&sel, o.within)))
				rl_die_err(rc);
		}
	}
	if (o.layer_end)
		rc = rl_select_models(&sel, o.layer_end, &f);
	else
		rc = rl_select_grad(&sel, o.grad, &f);
	if (rc)
		rl_die_err(rc);
	if ((rc = rl_select_write(&sel, o.out, "rl-select", &o.p, o.budget_mode, o.budget_value)))
		rl_die_err(rc);
	double t = rl_now() - t0;
	rl_info("selected %llu of %llu eligible elements (%llu considered), score %s, threshold "
		"%.9g, %.2f s",
		(unsigned long long)sel.s.k, (unsigned long long)sel.s.eligible,
		(unsigned long long)sel.s.fed, rl_score_name(o.p.score), (double)sel.s.min_score,
		t);
	if (o.summary && (rc = write_summary(&o, &sel.s, t)))
		rl_die_err(rc);
	rl_selection_free(&sel);
	rl_filter_free(&f);
	rl_model_close(&cur);
	rl_model_close(&tgt);
	return rl_cli_exit();
}
