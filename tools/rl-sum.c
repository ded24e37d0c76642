/* rl-sum — the shard streams of a sharded rl-grad, rl-direction or rl-eval
 * run, added (merged) into exactly the stream the unsharded run writes.
 *
 * Reads every shard stream ("grad-shard", "direction-shard") of one run, in
 * any order, checks that they are all of one run and each there once, and
 * writes the "grad" or "direction" stream: the gradient as the sum of the
 * batches' partials added in f32 in batch order, as rl-grad adds them; the
 * direction as rl-direction's mean. Eval shards ("eval-shard") are merged:
 * their items in id order and the summary over them (eval_shard.h). Nothing
 * is written unless the sum is complete. See rl-sum(1), rl-stream(5) and lib/store/shard_stream.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/error.h"
#include "core/options.h"
#include "eval/eval_shard.h"
#include "store/shard_stream.h"

struct opts {
	const char *out, *add;
};

static int parse_args(struct opts *o, int argc, char **argv)
{
	o->out = "-";
	o->add = NULL;
	const rl_opt table[] = {
		RL_OPT_OUTPUT('o', "FILE", &o->out,
			      "write the stream to FILE (put in place once complete) instead of "
			      "stdout"),
		RL_OPT_STRING(0, "add", "FILE", &o->add,
			      "add the grad stream FILE to the sum, as rl-grad --add adds it\n"
			      "(the bytes of the unsharded rl-grad --add FILE run)"),
		RL_OPT_QUIET("no messages but errors"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-sum [-o FILE] [--add PREV.rls] SHARD.rls... > GRAD.rls",
		"Add the shard streams of one rl-grad --shard, rl-direction --shard or\n"
		"rl-eval --shard run (every shard once, in any order) into exactly the stream\n"
		"the unsharded run writes (evaluations: their items merged).",
		table,
		"Exit status: 0 ok, 2 usage, 3 shards that do not add up (another run,\n"
		"missing, twice, damaged), 4 system error. See rl-sum(1).",
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	if (i == argc)
		rl_usage("no shard streams");
	for (int k = i; k < argc; k++)
		if (strcmp(argv[k], "-") == 0 && argc - i > 1)
			rl_usage("only one input can be stdin");
	return i;
}

int main(int argc, char **argv)
{
	rl_cli_init("rl-sum", argc, argv);
	struct opts o;
	int i = parse_args(&o, argc, argv);
	if (strcmp(o.out, "-") == 0)
		rl_require_stdout_not_tty();
	rl_shard_set *set;
	int rc = rl_shard_set_open(&set, (const char *const *)(argv + i), argc - i);
	int eval = !rc && strcmp(rl_shard_set_kind(set), "eval-shard") == 0;
	if (eval && o.add)
		rc = rl_error(RL_USAGE, "--add goes with gradient shards, not evaluations");
	else if (eval)
		rc = rl_eval_shard_merge(set, o.out);
	else if (!rc)
		rc = rl_shard_sum(set, o.out, o.add);
	rl_shard_set_close(set);
	if (rc)
		rl_die_err(rc);
	rl_info("%d shards %s", argc - i, eval ? "merged" : "summed");
	return rl_cli_exit();
}
