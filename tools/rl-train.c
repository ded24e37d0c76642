/* rl-train — full fine-tuning (or training from scratch) of a small model with AdamW. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cli.h"
#include <cJSON.h>

#include "compute/engine.h"
#include "compute/ops.h"
#include "compute/tdata.h"
#include "compute/train.h"
#include "core/jsonl.h"
#include "core/par.h"
#include "store/config.h"
#include "store/model.h"
#include "store/model_files.h"

static void usage(void)
{
	printf("Usage: rl-train (-m MODEL | --init random --arch CONFIG.json) -p DATA.jsonl -o "
	       "OUT\n"
	       "                [options]\n"
	       "Fine-tunes every parameter of MODEL (or a freshly initialised model) with\n"
	       "AdamW on the cross-entropy of the response tokens of DATA (JSON lines\n"
	       "{\"prompt\", \"response\"}, templated with the model's chat template, or\n"
	       "{\"prompt_ids\", \"response_ids\"}), and writes the result to OUT as a\n"
	       "HuggingFace model directory (config.json, model.safetensors, tokenizer\n"
	       "files copied). The loss curve goes to stderr.\n"
	       "\n"
	       "  -m, --model DIR        model to fine-tune\n"
	       "      --init random      start from transformers' random initialisation\n"
	       "      --arch FILE        config.json of the model to create (with --init)\n"
	       "      --tokenizer DIR    tokenizer files (default: the model's directory,\n"
	       "                         or --arch's directory)\n"
	       "  -p, --data FILE        training examples (JSON lines; - for stdin)\n"
	       "  -o, --output DIR       model directory to write (must not exist, unless\n"
	       "                         --force)\n"
	       "  -n N                   use the first N examples\n"
	       "      --steps N          optimizer steps (default: one epoch)\n"
	       "      --epochs E         steps = ceil(E * examples / batch size)\n"
	       "  -b, --batch-size B     examples per step (default 32)\n"
	       "      --lr LR            peak learning rate (default 3e-4)\n"
	       "      --schedule S       cosine (default), linear or constant\n"
	       "      --warmup N         linear warm-up steps (default 5%% of the steps)\n"
	       "      --min-lr R         final learning rate as a fraction of LR (default 0.1)\n"
	       "      --weight-decay W   decoupled weight decay of 2-D tensors (default 0.1)\n"
	       "      --beta1 B1         AdamW beta1 (default 0.9)\n"
	       "      --beta2 B2         AdamW beta2 (default 0.95)\n"
	       "      --eps E            AdamW epsilon (default 1e-8)\n"
	       "      --clip C           gradient-norm clipping, 0 for none (default 1.0)\n"
	       "      --init-std S       std of the random initialisation (default: the\n"
	       "                         config's initializer_range, else 0.02)\n"
	       "  -s, --seed N           seed of the initialisation and the data order\n"
	       "                         (default 1)\n"
	       "      --dtype T          f32, bf16 or f16 (default: the model's; f32 with\n"
	       "                         --init)\n"
	       "      --template T       chat template (name or file), as rl-tok\n"
	       "      --log FILE         per-step TSV: step lr loss grad_norm tokens seconds\n"
	       "      --log-every N      loss line on stderr every N steps (default: 20 lines)\n"
	       "  -t, --threads N        threads, each on a share of a batch (default 1)\n"
	       "      --force            replace OUT if it exists\n"
	       "  -q, --quiet            no loss curve on stderr\n"
	       "  -h, --help             this help\n"
	       "      --version          print the version\n");
}

enum {
	O_INIT = 256,
	O_ARCH,
	O_TOK,
	O_STEPS,
	O_EPOCHS,
	O_LR,
	O_SCHED,
	O_WARMUP,
	O_MINLR,
	O_WD,
	O_B1,
	O_B2,
	O_EPS,
	O_CLIP,
	O_STD,
	O_DTYPE,
	O_TEMPLATE,
	O_LOG,
	O_LOGEVERY,
	O_FORCE,
	O_VERSION,
};

typedef struct opts {
	const char *model, *arch, *tokdir, *data, *out, *template, *log;
	int init_random;
	long steps;
	double epochs;
	int batch;
	double lr, min_lr, wd, b1, b2, eps, clip, std;
	long warmup;
	rl_sched sched;
	uint64_t seed;
	const char *dtype;
	long log_every;
	int threads, force, n;
} opts;

static void parse_args(opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"model", required_argument, 0, 'm'},
		{"init", required_argument, 0, O_INIT},
		{"arch", required_argument, 0, O_ARCH},
		{"tokenizer", required_argument, 0, O_TOK},
		{"data", required_argument, 0, 'p'},
		{"output", required_argument, 0, 'o'},
		{"steps", required_argument, 0, O_STEPS},
		{"epochs", required_argument, 0, O_EPOCHS},
		{"batch-size", required_argument, 0, 'b'},
		{"lr", required_argument, 0, O_LR},
		{"schedule", required_argument, 0, O_SCHED},
		{"warmup", required_argument, 0, O_WARMUP},
		{"min-lr", required_argument, 0, O_MINLR},
		{"weight-decay", required_argument, 0, O_WD},
		{"beta1", required_argument, 0, O_B1},
		{"beta2", required_argument, 0, O_B2},
		{"eps", required_argument, 0, O_EPS},
		{"clip", required_argument, 0, O_CLIP},
		{"init-std", required_argument, 0, O_STD},
		{"seed", required_argument, 0, 's'},
		{"dtype", required_argument, 0, O_DTYPE},
		{"template", required_argument, 0, O_TEMPLATE},
		{"log", required_argument, 0, O_LOG},
		{"log-every", required_argument, 0, O_LOGEVERY},
		{"threads", required_argument, 0, 't'},
		{"force", no_argument, 0, O_FORCE},
		{"quiet", no_argument, 0, 'q'},
		{"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, O_VERSION},
		{0, 0, 0, 0},
	};
	memset(o, 0, sizeof *o);
	o->batch = 32;
	o->lr = 3e-4;
	o->min_lr = 0.1;
	o->wd = 0.1;
	o->b1 = 0.9;
	o->b2 = 0.95;
	o->eps = 1e-8;
	o->clip = 1.0;
	o->std = -1;
	o->warmup = -1;
	o->seed = 1;
	o->sched = RL_SCHED_COSINE;
	int c;
	while ((c = getopt_long(argc, argv, "m:p:o:n:b:s:t:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->model = optarg;
			break;
		case O_INIT:
			if (strcmp(optarg, "random") != 0)
				rl_usage("--init: only 'random' is known, got '%s'", optarg);
			o->init_random = 1;
			break;
		case O_ARCH:
			o->arch = optarg;
			break;
		case O_TOK:
			o->tokdir = optarg;
			break;
		case 'p':
			o->data = optarg;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'n':
			o->n = (int)rl_parse_int("-n", optarg, 1, 1000000000);
			break;
		case O_STEPS:
			o->steps = (long)rl_parse_int("--steps", optarg, 1, 1000000000);
			break;
		case O_EPOCHS:
			o->epochs = rl_parse_double("--epochs", optarg, 1e-9, 1e6);
			break;
		case 'b':
			o->batch = (int)rl_parse_int("--batch-size", optarg, 1, 1000000);
			break;
		case O_LR:
			o->lr = rl_parse_double("--lr", optarg, 0, 10);
			break;
		case O_SCHED:
			if (rl_sched_parse(optarg, &o->sched))
				rl_usage(
					"--schedule: expected cosine, linear or constant, got '%s'",
					optarg);
			break;
		case O_WARMUP:
			o->warmup = (long)rl_parse_int("--warmup", optarg, 0, 1000000000);
			break;
		case O_MINLR:
			o->min_lr = rl_parse_double("--min-lr", optarg, 0, 1);
			break;
		case O_WD:
			o->wd = rl_parse_double("--weight-decay", optarg, 0, 10);
			break;
		case O_B1:
			o->b1 = rl_parse_double("--beta1", optarg, 0, 0.999999);
			break;
		case O_B2:
			o->b2 = rl_parse_double("--beta2", optarg, 0, 0.999999999);
			break;
		case O_EPS:
			o->eps = rl_parse_double("--eps", optarg, 1e-30, 1);
			break;
		case O_CLIP:
			o->clip = rl_parse_double("--clip", optarg, 0, 1e9);
			break;
		case O_STD:
			o->std = rl_parse_double("--init-std", optarg, 0, 10);
			break;
		case 's':
			o->seed = (uint64_t)rl_parse_int("--seed", optarg, 0, 1LL << 62);
			break;
		case O_DTYPE:
			if (strcmp(optarg, "f32") && strcmp(optarg, "bf16") &&
			    strcmp(optarg, "f16"))
				rl_usage("--dtype: expected f32, bf16 or f16, got '%s'", optarg);
			o->dtype = optarg;
			break;
		case O_TEMPLATE:
			o->template = optarg;
			break;
		case O_LOG:
			o->log = optarg;
			break;
		case O_LOGEVERY:
			o->log_every = (long)rl_parse_int("--log-every", optarg, 1, 1000000000);
			break;
		case 't':
			o->threads = (int)rl_parse_int("--threads", optarg, 1, 4096);
			break;
		case O_FORCE:
			o->force = 1;
			break;
		case 'q':
			rl_set_quiet(1);
			break;
		case 'h':
			usage();
			exit(rl_cli_exit());
		case O_VERSION:
			printf("rl-train %s\n", RL_VERSION);
			exit(rl_cli_exit());
		default:
			rl_usage("unknown option");
		}
	}
	if (optind < argc)
		rl_usage("unexpected argument '%s'", argv[optind]);
	if (!o->model == !o->init_random)
		rl_usage("give either -m MODEL or --init random");
	if (o->init_random && !o->arch)
		rl_usage("--init random needs --arch CONFIG.json");
	if (!o->init_random && o->arch)
		rl_usage("--arch goes with --init random");
	if (!o->data)
		rl_usage("missing -p DATA.jsonl");
	if (!o->out)
		rl_usage("missing -o OUT");
	if (o->steps && o->epochs > 0)
		rl_usage("give --steps or --epochs, not both");
	if (o->b1 >= 1 || o->b2 >= 1)
		rl_usage("AdamW betas must be below 1");
}

static char *dir_of(const char *path)
{
	char *s = rl_strdup(path);
	if (!s)
		return NULL;
	char *slash = strrchr(s, '/');
	if (!slash) {
		free(s);
		return rl_strdup(".");
	}
	if (slash == s)
		slash[1] = 0;
	else
		*slash = 0;
	return s;
}

int main(int argc, char **argv)
{
	rl_cli_init("rl-train", argc, argv);
	opts o;
	parse_args(&o, argc, argv);
	char note[256];
	rl_blas_setup(note, sizeof note);
	if (note[0])
		rl_note("%s", note);
	/* Threads: data parallel over a batch's sequences, one BLAS thread each
	 * (the toy world's matrices are too small for BLAS threads to pay). */
	rl_blas_threads(1);
	rl_par_set_threads(1);

	struct stat st;
	if (!o.force && stat(o.out, &st) == 0)
		rl_die(RL_USAGE, "'%s' exists (use --force to replace it)", o.out);

	/* The model to start from. */
	rl_tmodel m;
	rl_model src;
	int have_src = 0, rc;
	char *tokdir = NULL;
	rl_dtype out_dt = RL_DT_F32;
	if (o.init_random) {
		char *text;
		size_t len;
		rl_config c;
		if ((rc = rl_read_file(o.arch, &text, &len)))
			rl_die_err(rc);
		rc = rl_config_parse(&c, text, len, o.arch);
		/* initializer_range is not a field of rl_config: read it here. */
		double std = 0.02;
		cJSON *j = rc ? NULL : cJSON_Parse(text);
		const cJSON *ir = cJSON_GetObjectItem(j, "initializer_range");
		if (cJSON_IsNumber(ir) && ir->valuedouble > 0)
			std = ir->valuedouble;
		cJSON_Delete(j);
		free(text);
		if (rc)
			rl_die_err(rc);
		if ((rc = rl_tmodel_init(&m, &c)))
			rl_die_err(rc);
		rl_tmodel_randomize(&m, o.seed, o.std >= 0 ? o.std : std);
		tokdir = o.tokdir ? rl_strdup(o.tokdir) : dir_of(o.arch);
	} else {
		if ((rc = rl_model_open(&src, o.model, RL_MODEL_READ)))
			rl_die_err(rc);
		have_src = 1;
		if ((rc = rl_tmodel_load(&m, &src)))
			rl_die_err(rc);
		out_dt = src.embed->dtype;
		tokdir = rl_strdup(o.tokdir ? o.tokdir : o.model);
	}
	if (!tokdir)
		rl_die_err(RL_ESYS);
	if (o.dtype)
		out_dt = strcmp(o.dtype, "f32") == 0	? RL_DT_F32
			 : strcmp(o.dtype, "bf16") == 0 ? RL_DT_BF16
							: RL_DT_F16;

	/* Data. */
	rl_tdata_opts dop = {
		.max_examples = o.n, .vocab_size = m.cfg.vocab_size, .max_len = m.cfg.max_position};
	rl_tencode_ctx ectx;
	if ((rc = rl_tencode_open(&ectx, tokdir, o.template)) == RL_OK) {
		dop.encode = rl_tencode;
		dop.encode_ctx = &ectx;
	} else if (rc != RL_NO) {
		rl_die_err(rc);
	}
	rl_tdata data;
	if ((rc = rl_tdata_read(&data, o.data, &dop)))
		rl_die_err(rc);
	long steps = o.steps;
	if (!steps) {
		double e = o.epochs > 0 ? o.epochs : 1.0;
		steps = (long)ceil(e * data.n / o.batch);
		if (steps < 1)
			steps = 1;
	}
	long warmup = o.warmup >= 0 ? o.warmup : steps / 20;
	if (warmup > steps)
		rl_usage("--warmup %ld exceeds the %ld steps", warmup, steps);
	long log_every = o.log_every ? o.log_every : (steps >= 20 ? steps / 20 : 1);
	rl_info("%d examples (%lld tokens, %lld in responses), %llu parameters, %ld steps of %d",
		data.n, (long long)data.ntok, (long long)data.nlabelled,
		(unsigned long long)rl_tmodel_numel(&m), steps, o.batch);

	FILE *logf = NULL;
	if (o.log) {
		logf = fopen(o.log, "w");
		if (!logf)
			rl_die(RL_ESYS, "'%s': %s", o.log, strerror(errno));
		fprintf(logf, "step\tlr\tloss\tgrad_norm\ttokens\tseconds\n");
	}

	/* Training. */
	rl_sampler smp;
	rl_tws *ws;
	if ((rc = rl_sampler_init(&smp, &data, o.seed)) || (rc = rl_tws_new(&ws)) ||
	    (rc = rl_tws_set_threads(ws, &m, o.threads ? o.threads : 1)))
		rl_die_err(rc);
	rl_adamw_hp hp = {.beta1 = o.b1, .beta2 = o.b2, .eps = o.eps, .weight_decay = o.wd};
	double t0 = rl_now(), run_loss = 0;
	long run_n = 0, tokens = 0;
	for (long s = 0; s < steps; s++) {
		const rl_tbatch *b;
		if ((rc = rl_sampler_next(&smp, o.batch, &b)))
			rl_die_err(rc);
		long R = 0;
		for (int t = 0; t < b->start[b->n]; t++)
			R += b->target[t] >= 0;
		double lr = rl_sched_lr(o.sched, o.lr, s, steps, warmup, o.min_lr);
		double sum;
		long nl;
		rl_tmodel_zero_grad(&m);
		if ((rc = rl_tmodel_forward_backward(&m, b, 1.0f / (float)R, 1, ws, &sum, &nl)))
			rl_die_err(rc);
		double gn = rl_tmodel_clip_grad(&m, o.clip);
		rl_tmodel_adamw(&m, &hp, lr);
		double loss = sum / (double)nl;
		if (!isfinite(loss))
			rl_die(RL_EDATA, "step %ld: loss is %g (learning rate too high?)", s + 1,
			       loss);
		tokens += b->start[b->n];
		run_loss += loss;
		run_n++;
		if (logf)
			fprintf(logf, "%ld\t%.6g\t%.6f\t%.6g\t%ld\t%.3f\n", s + 1, lr, loss, gn,
				tokens, rl_now() - t0);
		if ((s + 1) % log_every == 0 || s + 1 == steps) {
			rl_info("step %ld/%ld  loss %.4f  lr %.3g  |g| %.3g  %.1f s", s + 1, steps,
				run_loss / (double)run_n, lr, gn, rl_now() - t0);
			run_loss = 0;
			run_n = 0;
		} else {
			rl_progress("step %ld/%ld loss %.4f", s + 1, steps, loss);
		}
	}
	rl_progress_end();
	double secs = rl_now() - t0;
	if (logf && fclose(logf) != 0)
		rl_die(RL_ESYS, "'%s': write error", o.log);

	/* Output: a fresh directory renamed into place, so OUT is never half
	 * written. */
	rl_outdir od;
	if ((rc = rl_outdir_begin(&od, o.out, o.force)))
		rl_die_err(rc);
	rc = rl_tmodel_save(&m, od.tmp, out_dt);
	if (!rc)
		rc = rl_model_copy_side_files(tokdir, od.tmp);
	if (rc) {
		rl_outdir_abort(&od);
		rl_die_err(rc);
	}
	if ((rc = rl_outdir_commit(&od)))
		rl_die_err(rc);
	rl_info("wrote '%s' (%s) after %ld steps in %.1f s (%.0f tokens/s)", o.out,
		rl_dtype_name(out_dt), steps, secs, (double)tokens / (secs > 0 ? secs : 1));

	rl_tws_free(ws);
	rl_sampler_free(&smp);
	rl_tdata_free(&data);
	rl_tencode_close(&ectx);
	rl_tmodel_free(&m);
	if (have_src)
		rl_model_close(&src);
	free(tokdir);
	return rl_cli_exit();
}
