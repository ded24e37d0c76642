/* rl-select — choose the elements to restore: sign mask + exact global top-k.
 *
 * Reads a grad stream (file or stdin), the current model (-m) and the target
 * model (-t), and writes a select stream (rl-stream(5)) on stdout: per tensor
 * the selected element indices, scores and both models' stored bytes. All
 * logic is in lib/select.c and lib/restore.c; this file parses options.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "method/restore.h"

struct opts {
	const char *model, *target, *within, *include, *exclude, *grad, *out;
	int budget_set;
	const char *budget_mode;
	double budget_value;
	rl_sel_params p;
	int layer_lo, layer_hi;
	int layer_end;
};

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: rl-select -m CURRENT -t TARGET (--rate R | --count K | --fraction F |\n"
		"                 --threshold T) [options] [GRAD.rls|-] > SEL.rls\n"
		"Select the elements whose restore from TARGET the gradient favours: sign mask,\n"
		"then the exact global top-k by |g| across all tensors. Writes a select stream.\n"
		"\n"
		"  -m, --model DIR       the current (working) model\n"
		"  -t, --target DIR      the model values come from (aligned; fine-tuned to roll "
		"back)\n"
		"      --rate R          k = ceil(R * P), P = parameters of all decoder layers\n"
		"      --count K         k = K\n"
		"      --fraction F      k = ceil(F * eligible elements)\n"
		"      --threshold T     every eligible element with score > T\n"
		"      --score S         grad (default) | diff | random\n"
		"      --seed N          seed of --score random (default 0)\n"
		"      --layers A:B      only tensors of layers A..B-1\n"
		"      --include RE      only tensors whose name matches RE (PCRE2)\n"
		"      --exclude RE      no tensor whose name matches RE\n"
		"      --within JOURNAL  only elements that JOURNAL changed\n"
		"  -L, --layer-end L     diff/random without a grad stream: candidates of layers < "
		"L\n"
		"  -o, --output FILE     write the stream to FILE instead of stdout\n"
		"  -q, --quiet           no summary on stderr\n"
		"  -h, --help            this help\n"
		"      --version         print the version\n");
}

static void set_budget(struct opts *o, const char *mode, double v)
{
	if (o->budget_set)
		rl_usage("give one of --rate, --count, --fraction, --threshold");
	o->budget_set = 1;
	o->budget_mode = mode;
	o->budget_value = v;
}

static void parse_args(struct opts *o, int argc, char **argv)
{
	enum {
		OPT_VERSION = 256,
		OPT_RATE,
		OPT_COUNT,
		OPT_FRACTION,
		OPT_THRESHOLD,
		OPT_SCORE,
		OPT_SEED,
		OPT_LAYERS,
		OPT_INCLUDE,
		OPT_EXCLUDE,
		OPT_WITHIN
	};
	static const struct option longopts[] = {
		{"model", required_argument, NULL, 'm'},
		{"target", required_argument, NULL, 't'},
		{"rate", required_argument, NULL, OPT_RATE},
		{"count", required_argument, NULL, OPT_COUNT},
		{"fraction", required_argument, NULL, OPT_FRACTION},
		{"threshold", required_argument, NULL, OPT_THRESHOLD},
		{"score", required_argument, NULL, OPT_SCORE},
		{"seed", required_argument, NULL, OPT_SEED},
		{"layers", required_argument, NULL, OPT_LAYERS},
		{"include", required_argument, NULL, OPT_INCLUDE},
		{"exclude", required_argument, NULL, OPT_EXCLUDE},
		{"within", required_argument, NULL, OPT_WITHIN},
		{"layer-end", required_argument, NULL, 'L'},
		{"output", required_argument, NULL, 'o'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof *o);
	o->layer_hi = -1;
	o->out = "-";
	int c;
	while ((c = getopt_long(argc, argv, "m:t:L:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->model = optarg;
			break;
		case 't':
			o->target = optarg;
			break;
		case OPT_RATE:
			set_budget(o, "rate", rl_parse_double("--rate", optarg, 0, 1));
			break;
		case OPT_COUNT:
			set_budget(o, "count",
				   (double)rl_parse_int("--count", optarg, 0, (long long)1 << 53));
			break;
		case OPT_FRACTION:
			set_budget(o, "fraction", rl_parse_double("--fraction", optarg, 0, 1));
			break;
		case OPT_THRESHOLD:
			set_budget(o, "threshold",
				   rl_parse_double("--threshold", optarg, 0, INFINITY));
			break;
		case OPT_SCORE: {
			int s = rl_score_parse(optarg);
			if (s < 0)
				rl_usage("--score: '%s' is not grad, diff or random", optarg);
			o->p.score = (rl_score)s;
			break;
		}
		case OPT_SEED:
			o->p.seed = (uint64_t)rl_parse_int("--seed", optarg, 0, INT64_MAX);
			break;
		case OPT_LAYERS: {
			char *colon = strchr(optarg, ':');
			if (!colon)
				rl_usage("--layers: '%s' is not A:B", optarg);
			*colon = 0;
			o->layer_lo = (int)rl_parse_int("--layers", optarg, 0, 1000000);
			o->layer_hi = (int)rl_parse_int("--layers", colon + 1, 0, 1000000);
			if (o->layer_hi <= o->layer_lo)
				rl_usage("--layers: empty range %d:%d", o->layer_lo, o->layer_hi);
			break;
		}
		case OPT_INCLUDE:
			o->include = optarg;
			break;
		case OPT_EXCLUDE:
			o->exclude = optarg;
			break;
		case OPT_WITHIN:
			o->within = optarg;
			break;
		case 'L':
			o->layer_end = (int)rl_parse_int("--layer-end", optarg, 1, 1000000);
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'q':
			rl_set_quiet(1);
			break;
		case 'h':
			usage(stdout);
			exit(rl_cli_exit());
		case OPT_VERSION:
			printf("rl-select %s\n", RL_VERSION);
			exit(rl_cli_exit());
		default:
			rl_usage("unknown option");
		}
	}
	if (!o->model || !o->target)
		rl_usage("-m CURRENT and -t TARGET are required (the sign mask compares them)");
	if (!o->budget_set)
		rl_usage("give a budget: --rate, --count, --fraction or --threshold");
	if (optind + 1 < argc)
		rl_usage("too many arguments");
	o->grad = optind < argc ? argv[optind] : "-";
	if (o->layer_end && o->p.score == RL_SCORE_GRAD)
		rl_usage("--layer-end replaces the grad stream: only with --score diff or random");
	if (o->layer_end && optind < argc)
		rl_usage("--layer-end and a grad stream exclude each other");
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
	if ((rc = rl_model_open(&tgt, o.target, RL_MODEL_READ)))
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
	if (sel.s.nan_grad)
		rl_warn("%llu NaN gradients (never selected)", (unsigned long long)sel.s.nan_grad);
	if ((rc = rl_select_write(&sel, o.out, "rl-select", &o.p, o.budget_mode, o.budget_value)))
		rl_die_err(rc);
	rl_info("selected %llu of %llu eligible elements (%llu considered), score %s, threshold "
		"%.9g, %.2f s",
		(unsigned long long)sel.s.k, (unsigned long long)sel.s.eligible,
		(unsigned long long)sel.s.fed, rl_score_name(o.p.score), (double)sel.s.min_score,
		rl_now() - t0);
	rl_selection_free(&sel);
	rl_filter_free(&f);
	rl_model_close(&cur);
	rl_model_close(&tgt);
	return rl_cli_exit();
}
