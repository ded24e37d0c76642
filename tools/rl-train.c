/* rl-train — full fine-tuning (or training from scratch) of a small model with AdamW. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/options.h"
#include <cJSON.h>

#include "compute/engine.h"
#include "compute/ops.h"
#include "compute/tdata.h"
#include "compute/train.h"
#include "core/jsonl.h"
#include "core/par.h"
#include "core/util.h"
#include "store/config.h"
#include "store/model.h"
#include "store/model_files.h"
#include "text/chat.h"

typedef struct opts {
	const char *model, *arch, *tokdir, *data, *out, *template, *log;
	int init_random;
	long long steps;
	double epochs;
	int batch;
	double lr, min_lr, wd, b1, b2, eps, clip, std;
	long long warmup;
	rl_sched sched;
	uint64_t seed;
	const char *dtype;
	long long log_every;
	int threads, force, n;
} opts;

static void on_init(const char *name, const char *arg, void *ctx)
{
	if (strcmp(arg, "random") != 0)
		rl_usage("%s: only 'random' is known, got '%s'", name, arg);
	((opts *)ctx)->init_random = 1;
}

static void on_schedule(const char *name, const char *arg, void *ctx)
{
	if (rl_sched_parse(arg, &((opts *)ctx)->sched))
		rl_usage("%s: expected cosine, linear or constant, got '%s'", name, arg);
}

static void on_dtype(const char *name, const char *arg, void *ctx)
{
	if (strcmp(arg, "f32") && strcmp(arg, "bf16") && strcmp(arg, "f16"))
		rl_usage("%s: expected f32, bf16 or f16, got '%s'", name, arg);
	((opts *)ctx)->dtype = arg;
}

static void parse_args(opts *o, int argc, char **argv)
{
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
	const rl_opt table[] = {
		RL_OPT_MODEL(&o->model, "model to fine-tune"),
		RL_OPT_CALL(0, "init", "random", on_init, o,
			    "start from transformers' random initialisation"),
		RL_OPT_STRING(0, "arch", "FILE", &o->arch,
			      "config.json of the model to create (with --init)"),
		RL_OPT_STRING(0, "tokenizer", "DIR", &o->tokdir,
			      "tokenizer files (default: the model's directory, or --arch's "
			      "directory)"),
		RL_OPT_STRING('p', "data", "FILE", &o->data,
			      "training examples (JSON lines; - for stdin)"),
		RL_OPT_OUTPUT('o', "DIR", &o->out,
			      "model directory to write (must not exist, unless --force)"),
		RL_OPT_INT('n', NULL, "N", &o->n, 1, 1000000000, "use the first N examples"),
		RL_OPT_LLONG(0, "steps", "N", &o->steps, 1, 1000000000,
			     "optimizer steps (default: one epoch)"),
		RL_OPT_DOUBLE(0, "epochs", "E", &o->epochs, 1e-9, 1e6,
			      "steps = ceil(E * examples / batch size)"),
		RL_OPT_INT('b', "batch-size", "B", &o->batch, 1, 1000000,
			   "examples per step (default 32)"),
		RL_OPT_DOUBLE(0, "lr", "LR", &o->lr, 0, 10, "peak learning rate (default 3e-4)"),
		RL_OPT_CALL(0, "schedule", "S", on_schedule, o,
			    "cosine (default), linear or constant"),
		RL_OPT_LLONG(0, "warmup", "N", &o->warmup, 0, 1000000000,
			     "linear warm-up steps (default 5% of the steps)"),
		RL_OPT_DOUBLE(0, "min-lr", "R", &o->min_lr, 0, 1,
			      "final learning rate as a fraction of LR (default 0.1)"),
		RL_OPT_DOUBLE(0, "weight-decay", "W", &o->wd, 0, 10,
			      "decoupled weight decay of 2-D tensors (default 0.1)"),
		RL_OPT_DOUBLE(0, "beta1", "B1", &o->b1, 0, 0.999999, "AdamW beta1 (default 0.9)"),
		RL_OPT_DOUBLE(0, "beta2", "B2", &o->b2, 0, 0.999999999,
			      "AdamW beta2 (default 0.95)"),
		RL_OPT_DOUBLE(0, "eps", "E", &o->eps, 1e-30, 1, "AdamW epsilon (default 1e-8)"),
		RL_OPT_DOUBLE(0, "clip", "C", &o->clip, 0, 1e9,
			      "gradient-norm clipping, 0 for none (default 1.0)"),
		RL_OPT_DOUBLE(0, "init-std", "S", &o->std, 0, 10,
			      "std of the random initialisation (default: the config's "
			      "initializer_range, else 0.02)"),
		RL_OPT_U64('s', "seed", "N", &o->seed, 0, 1LL << 62,
			   "seed of the initialisation and the data order (default 1)"),
		RL_OPT_CALL(0, "dtype", "T", on_dtype, o,
			    "f32, bf16 or f16 (default: the model's; f32 with --init)"),
		RL_OPT_TEMPLATE(0, &o->template),
		RL_OPT_STRING(0, "log", "FILE", &o->log,
			      "per-step TSV: step lr loss grad_norm tokens seconds"),
		RL_OPT_LLONG(0, "log-every", "N", &o->log_every, 1, 1000000000,
			     "loss line on stderr every N steps (default: 20 lines)"),
		RL_OPT_THREADS('t', &o->threads, "threads, each on a share of a batch (default 1)"),
		RL_OPT_FLAG(0, "force", &o->force, "replace OUT if it exists"),
		RL_OPT_QUIET("no loss curve on stderr"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-train (-m MODEL | --init random --arch CONFIG.json) -p DATA.jsonl -o OUT\n"
		"         [options]",
		"Fine-tunes every parameter of MODEL (or a freshly initialised model) with\n"
		"AdamW on the cross-entropy of the response tokens of DATA (JSON lines\n"
		"{\"prompt\", \"response\"}, templated with the model's chat template, or\n"
		"{\"prompt_ids\", \"response_ids\"}), and writes the result to OUT as a\n"
		"HuggingFace model directory (config.json, model.safetensors, tokenizer\n"
		"files copied). The loss curve goes to stderr.",
		table,
		NULL,
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	if (i < argc)
		rl_usage("unexpected argument '%s'", argv[i]);
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
