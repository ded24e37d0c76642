/* rl-toy — writes the built-in toy chat world (tokenizer, data sets, model shape). */
#include <stdio.h>
#include <stdlib.h>

#include "core/cli.h"
#include "core/options.h"
#include "eval/toy.h"

static void on_words(const char *name, const char *arg, void *ctx)
{
	rl_toy_opts *o = ctx;
	char lo[32], hi[32];
	if (sscanf(arg, "%31[0-9]:%31[0-9]", lo, hi) != 2)
		rl_usage("%s: expected MIN:MAX, got '%s'", name, arg);
	o->min_words = (int)rl_parse_int(name, lo, 1, 12);
	o->max_words = (int)rl_parse_int(name, hi, 1, 12);
}

/* Returns the output directory; *kv: --kv-heads (0: not given). */
static const char *parse_args(rl_toy_opts *o, int *kv, int argc, char **argv)
{
	const char *out = NULL;
	const rl_opt table[] = {
		RL_OPT_OUTPUT('o', "DIR", &out, "directory to write (created if missing)"),
		RL_OPT_U64('s', "seed", "N", &o->seed, 0, 1LL << 62, "random seed (default 1)"),
		RL_OPT_INT(0, "aligned", "N", &o->n_aligned, 2, 10000000,
			   "aligned training examples (default 6000)"),
		RL_OPT_INT(0, "task", "N", &o->n_task, 1, 10000000,
			   "task examples in the fine-tuning mix (default 3000)"),
		RL_OPT_INT(0, "harmful", "N", &o->n_harmful_ft, 0, 10000000,
			   "harmful examples answered in the mix (default 600)"),
		RL_OPT_INT(0, "eval", "N", &o->n_eval, 1, 1000000,
			   "prompts per eval set (default 200)"),
		RL_OPT_INT(0, "recovery", "N", &o->n_recovery, 1, 1000000,
			   "harmful prompts for the recovery set (default 64)"),
		RL_OPT_INT(0, "benign", "N", &o->n_benign, 1, 10000000,
			   "task prompts for the benign set (default 256)"),
		RL_OPT_DOUBLE(0, "heldout", "F", &o->heldout, 1e-9, 0.499999,
			      "share of (verb, object) pairs held out (default 0.2)"),
		RL_OPT_CALL(0, "words", "MIN:MAX", on_words, o,
			    "task sentence lengths in words (default 3:3)"),
		RL_OPT_INT(0, "hidden", "N", &o->hidden, 8, 8192, "model width (default 96)"),
		RL_OPT_INT(0, "layers", "N", &o->layers, 1, 64, "decoder layers (default 4)"),
		RL_OPT_INT(0, "heads", "N", &o->heads, 1, 1024, "attention heads (default 4)"),
		RL_OPT_INT(0, "kv-heads", "N", kv, 1, 1024, "key/value heads (default: heads)"),
		RL_OPT_INT(0, "ffn", "N", &o->ffn, 1, 65536, "MLP width (default 192)"),
		RL_OPT_INT(0, "max-position", "N", &o->max_position, 1, 65536,
			   "maximum positions (default 64)"),
		RL_OPT_QUIET("no summary on stderr"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-toy -o DIR [options]",
		"Writes the toy chat world into DIR: a word-level tokenizer.json and\n"
		"tokenizer_config.json (Mistral chat template), arch.json (the model to\n"
		"train), aligned.jsonl, finetune.jsonl, eval-harmful.jsonl,\n"
		"eval-benign.jsonl, eval-task.jsonl, recovery.jsonl, benign.jsonl and\n"
		"world.json. The same options always give the same bytes.",
		table,
		NULL,
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	if (i < argc)
		rl_usage("unexpected argument '%s'", argv[i]);
	if (!out)
		rl_usage("missing -o DIR");
	return out;
}

int main(int argc, char **argv)
{
	rl_cli_init("rl-toy", argc, argv);
	rl_toy_opts o;
	rl_toy_defaults(&o);
	int kv = 0;
	const char *out = parse_args(&o, &kv, argc, argv);
	o.kv_heads = kv ? kv : o.heads;
	int rc = rl_toy_check(&o);
	if (rc == RL_USAGE)
		rl_usage("%s", rl_errmsg());
	if (!rc)
		rc = rl_toy_write(out, &o);
	if (rc)
		rl_die_err(rc);
	rl_info("wrote the toy world (seed %llu) to '%s'", (unsigned long long)o.seed, out);
	return rl_cli_exit();
}
