/* rl-merge — a LoRA adapter merged into its base model: the fine-tune as a
 * plain model directory.
 *
 *   rl-merge BASE ADAPTER -o OUT
 *
 * Reads the base model directory and a PEFT LoRA adapter directory, checks
 * the adapter against the base (lib/store/adapter.h: what PEFT settings are
 * refused, shapes, targets, the base's name), and writes OUT: every adapted
 * weight W + scale * B @ A computed in f32 and rounded once to the base's
 * dtype, everything else copied (lib/method/merge.h). OUT is built beside its
 * final place and renamed in at the end: a failed merge leaves no OUT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/options.h"
#include "core/summary.h"
#include "core/util.h"
#include "method/merge.h"
#include "store/adapter.h"
#include "store/model.h"
#include "store/model_files.h"

struct opts {
	const char *base, *adapter, *out, *summary;
	int force, any_base;
};

static void parse_args(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	const rl_opt table[] = {
		RL_OPT_OUTPUT('o', "DIR", &o->out, "the merged model directory to write"),
		RL_OPT_FLAG(0, "force", &o->force, "replace OUT if it exists"),
		RL_OPT_FLAG(0, "any-base", &o->any_base,
			    "merge even when adapter_config.json names another base model"),
		RL_OPT_SUMMARY(&o->summary),
		RL_OPT_QUIET("no progress, no summary on stderr"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-merge BASE ADAPTER -o OUT [--force] [--any-base]",
		"Merge a PEFT LoRA adapter into its base model: OUT is the fine-tuned model\n"
		"as a plain model directory (W + scale * B @ A in f32, rounded once to the\n"
		"base's dtype).",
		table,
		NULL,
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	if (argc - i != 2)
		rl_usage("give the base model and the adapter directories");
	if (!o->out)
		rl_usage("-o OUT is required");
	o->base = argv[i];
	o->adapter = argv[i + 1];
}

static void on_progress(void *ctx, size_t done, size_t n, uint64_t bytes)
{
	(void)ctx;
	rl_progress("merging: %zu/%zu tensors, %.1f MiB", done, n, (double)bytes / 1048576.0);
}

int main(int argc, char **argv)
{
	rl_cli_init("rl-merge", argc, argv);
	struct opts o;
	parse_args(&o, argc, argv);
	double t0 = rl_now();
	rl_model base;
	rl_adapter ad;
	int rc = rl_model_open(&base, o.base, RL_MODEL_READ);
	if (rc)
		rl_die_err(rc);
	if ((rc = rl_adapter_open(&ad, o.adapter)) ||
	    (rc = rl_adapter_check(&ad, &base, !o.any_base)))
		rl_die_err(rc);
	rl_outdir od;
	if ((rc = rl_outdir_begin(&od, o.out, o.force)))
		rl_die_err(rc);
	rc = rl_merge_write(&base, &ad, od.tmp, on_progress, NULL);
	rl_progress_end();
	if (rc) {
		rl_outdir_abort(&od);
		rl_die_err(rc);
	}
	if ((rc = rl_outdir_commit(&od)))
		rl_die_err(rc);
	double secs = rl_now() - t0;
	rl_info("merged %zu LoRA pairs (r %d, scale %g%s) into '%s' in %.1f s", ad.nloras, ad.r,
		(double)ad.scale, ad.rslora ? ", rsLoRA" : "", o.out, secs);
	if (o.summary) {
		cJSON *j = rl_summary_new("rl-merge");
		if (j && !(cJSON_AddNumberToObject(j, "pairs", (double)ad.nloras) &&
			   cJSON_AddNumberToObject(j, "r", ad.r) &&
			   cJSON_AddNumberToObject(j, "scale", ad.scale) &&
			   cJSON_AddBoolToObject(j, "rslora", ad.rslora)))
			rc = rl_error(RL_ESYS, "out of memory");
		if (!rc)
			rc = rl_summary_write(j, o.summary, secs);
		if (rc)
			rl_die_err(rc);
	}
	rl_adapter_close(&ad);
	rl_model_close(&base);
	return rl_cli_exit();
}
