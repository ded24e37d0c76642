/* rl-toy — writes the built-in toy chat world (tokenizer, data sets, model shape). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/cli.h"
#include "eval/toy.h"

static void usage(void)
{
	printf("Usage: rl-toy -o DIR [options]\n"
	       "Writes the toy chat world into DIR: a word-level tokenizer.json and\n"
	       "tokenizer_config.json (Mistral chat template), arch.json (the model to\n"
	       "train), aligned.jsonl, finetune.jsonl, eval-harmful.jsonl,\n"
	       "eval-benign.jsonl, eval-task.jsonl, recovery.jsonl, benign.jsonl and\n"
	       "world.json. The same options always give the same bytes.\n"
	       "\n"
	       "  -o, --output DIR      directory to write (created if missing)\n"
	       "  -s, --seed N          random seed (default 1)\n"
	       "      --aligned N       aligned training examples (default 6000)\n"
	       "      --task N          task examples in the fine-tuning mix (default 3000)\n"
	       "      --harmful N       harmful examples answered in the mix (default 600)\n"
	       "      --eval N          prompts per eval set (default 200)\n"
	       "      --recovery N      harmful prompts for the recovery set (default 64)\n"
	       "      --benign N        task prompts for the benign set (default 256)\n"
	       "      --heldout F       share of (verb, object) pairs held out (default 0.2)\n"
	       "      --words MIN:MAX   task sentence lengths in words (default 3:3)\n"
	       "      --hidden N        model width (default 96)\n"
	       "      --layers N        decoder layers (default 4)\n"
	       "      --heads N         attention heads (default 4)\n"
	       "      --kv-heads N      key/value heads (default: heads)\n"
	       "      --ffn N           MLP width (default 192)\n"
	       "      --max-position N  maximum positions (default 64)\n"
	       "  -q, --quiet           no summary on stderr\n"
	       "  -h, --help            this help\n"
	       "      --version         print the version\n");
}

enum {
	O_ALIGNED = 256,
	O_TASK,
	O_HARMFUL,
	O_EVAL,
	O_RECOVERY,
	O_BENIGN,
	O_HELDOUT,
	O_WORDS,
	O_HIDDEN,
	O_LAYERS,
	O_HEADS,
	O_KV,
	O_FFN,
	O_MAXPOS,
	O_VERSION
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, 0, 'o'},
		{"seed", required_argument, 0, 's'},
		{"aligned", required_argument, 0, O_ALIGNED},
		{"task", required_argument, 0, O_TASK},
		{"harmful", required_argument, 0, O_HARMFUL},
		{"eval", required_argument, 0, O_EVAL},
		{"recovery", required_argument, 0, O_RECOVERY},
		{"benign", required_argument, 0, O_BENIGN},
		{"heldout", required_argument, 0, O_HELDOUT},
		{"words", required_argument, 0, O_WORDS},
		{"hidden", required_argument, 0, O_HIDDEN},
		{"layers", required_argument, 0, O_LAYERS},
		{"heads", required_argument, 0, O_HEADS},
		{"kv-heads", required_argument, 0, O_KV},
		{"ffn", required_argument, 0, O_FFN},
		{"max-position", required_argument, 0, O_MAXPOS},
		{"quiet", no_argument, 0, 'q'},
		{"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, O_VERSION},
		{0, 0, 0, 0},
	};
	rl_cli_init("rl-toy", argc, argv);
	rl_toy_opts o;
	rl_toy_defaults(&o);
	const char *out = NULL;
	int kv = 0, c;
	while ((c = getopt_long(argc, argv, "o:s:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 's':
			o.seed = (uint64_t)rl_parse_int("--seed", optarg, 0, 1LL << 62);
			break;
		case O_ALIGNED:
			o.n_aligned = (int)rl_parse_int("--aligned", optarg, 2, 10000000);
			break;
		case O_TASK:
			o.n_task = (int)rl_parse_int("--task", optarg, 1, 10000000);
			break;
		case O_HARMFUL:
			o.n_harmful_ft = (int)rl_parse_int("--harmful", optarg, 0, 10000000);
			break;
		case O_EVAL:
			o.n_eval = (int)rl_parse_int("--eval", optarg, 1, 1000000);
			break;
		case O_RECOVERY:
			o.n_recovery = (int)rl_parse_int("--recovery", optarg, 1, 1000000);
			break;
		case O_BENIGN:
			o.n_benign = (int)rl_parse_int("--benign", optarg, 1, 10000000);
			break;
		case O_HELDOUT:
			o.heldout = rl_parse_double("--heldout", optarg, 1e-9, 0.499999);
			break;
		case O_WORDS: {
			char lo[32], hi[32];
			if (sscanf(optarg, "%31[0-9]:%31[0-9]", lo, hi) != 2)
				rl_usage("--words: expected MIN:MAX, got '%s'", optarg);
			o.min_words = (int)rl_parse_int("--words", lo, 1, 12);
			o.max_words = (int)rl_parse_int("--words", hi, 1, 12);
			break;
		}
		case O_HIDDEN:
			o.hidden = (int)rl_parse_int("--hidden", optarg, 8, 8192);
			break;
		case O_LAYERS:
			o.layers = (int)rl_parse_int("--layers", optarg, 1, 64);
			break;
		case O_HEADS:
			o.heads = (int)rl_parse_int("--heads", optarg, 1, 1024);
			break;
		case O_KV:
			kv = (int)rl_parse_int("--kv-heads", optarg, 1, 1024);
			break;
		case O_FFN:
			o.ffn = (int)rl_parse_int("--ffn", optarg, 1, 65536);
			break;
		case O_MAXPOS:
			o.max_position = (int)rl_parse_int("--max-position", optarg, 1, 65536);
			break;
		case 'q':
			rl_set_quiet(1);
			break;
		case 'h':
			usage();
			return rl_cli_exit();
		case O_VERSION:
			printf("rl-toy %s\n", RL_VERSION);
			return rl_cli_exit();
		default:
			rl_usage("unknown option");
		}
	}
	if (optind < argc)
		rl_usage("unexpected argument '%s'", argv[optind]);
	if (!out)
		rl_usage("missing -o DIR");
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
