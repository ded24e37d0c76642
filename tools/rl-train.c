/* rl-train — full fine-tuning (or training from scratch) of a small model with
 * AdamW, or a LoRA adapter of a model of any size (--lora). */
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

#include <xxhash.h>

#include "compute/engine.h"
#include "compute/lora_ckpt.h"
#include "compute/lora_train.h"
#include "compute/ops.h"
#include "compute/tdata.h"
#include "compute/train.h"
#include "compute/wgemm.h"
#include "core/file.h"
#include "core/inputs.h"
#include "core/json.h"
#include "core/jsonl.h"
#include "core/par.h"
#include "core/summary.h"
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
	int batch_tokens;
	const char *summary;
	/* LoRA */
	int lora, rslora, resume, targets_given, precision_given;
	rl_precision precision;
	double alpha, dropout;
	unsigned targets;
	uint64_t mem;
	long long ckpt_every;
} opts;

static void on_targets(const char *name, const char *arg, void *ctx)
{
	opts *o = ctx;
	const char *bad;
	size_t n;
	if (rl_lora_targets_parse(arg, &o->targets, &bad, &n))
		rl_usage("%s: '%.*s' is not one of q, k, v, o, gate, up, down, qkv, gate_up (or "
			 "their _proj names), or it repeats a module named before it",
			 name, (int)n, bad);
	o->targets_given = 1;
}

static void on_precision(const char *name, const char *arg, void *ctx)
{
	opts *o = ctx;
	if (rl_precision_parse(arg, &o->precision))
		rl_usage("%s: expected fp32 or bf16, got '%s'", name, arg);
	o->precision_given = 1;
}

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
	o->alpha = -1;
	o->dropout = -1;
	o->ckpt_every = -1;
	rl_lora_cfg lc;
	rl_lora_cfg_default(&lc);
	o->targets = lc.targets;
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
		RL_OPT_INT(0, "batch-tokens", "N", &o->batch_tokens, 1, 1 << 30,
			   "instead: each step takes the next examples while their tokens total "
			   "at most N (at least one)"),
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
		RL_OPT_SUMMARY(&o->summary),
		RL_OPT_QUIET("no loss curve on stderr"),
		RL_OPT_GROUP("LoRA (with -m; OUT is then a PEFT adapter directory):"),
		RL_OPT_INT(0, "lora", "R", &o->lora, 1, 65536,
			   "train a LoRA adapter of rank R; the model's weights stay as they are"),
		RL_OPT_DOUBLE(0, "alpha", "A", &o->alpha, 1e-9, 1e9,
			      "LoRA alpha: the branch is scaled by A / R (default 16)"),
		RL_OPT_FLAG(0, "rslora", &o->rslora, "scale by A / sqrt(R) instead (rsLoRA)"),
		RL_OPT_DOUBLE(0, "dropout", "P", &o->dropout, 0, 0.99,
			      "dropout on the LoRA branch's input (default 0.05)"),
		RL_OPT_CALL(
			0, "targets", "LIST", on_targets, o,
			"modules to adapt, of q, k, v, o, gate, up, down, qkv, gate_up (default "
			"all seven; on Phi-3 qkv and gate_up are adapted fused)"),
		RL_OPT_CALL(
			0, "precision", "P", on_precision, o,
			"fp32 (default) or bf16: the forward's products with the frozen base "
			"on its stored bf16 weights, inputs rounded to bf16 (faster where the "
			"CPU has bf16 dot products); adapters, backward and optimizer stay fp32"),
		RL_OPT_SIZE(0, "mem", "SIZE", &o->mem,
			    "memory for activations and buffers; beyond it, layers are recomputed "
			    "(default 2G)"),
		RL_OPT_LLONG(0, "checkpoint-every", "N", &o->ckpt_every, 0, 1000000000,
			     "write OUT.ckpt every N steps, 0 for never (default: a tenth of the "
			     "steps)"),
		RL_OPT_FLAG(0, "resume", &o->resume, "go on from OUT.ckpt, the last checkpoint"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-train (-m MODEL | --init random --arch CONFIG.json) -p DATA.jsonl -o OUT\n"
		"         [options]\n"
		"rl-train -m MODEL --lora R -p DATA.jsonl -o ADAPTER [options]",
		"Fine-tunes every parameter of MODEL (or a freshly initialised model) with\n"
		"AdamW on the cross-entropy of the response tokens of DATA (JSON lines\n"
		"{\"prompt\", \"response\"}, templated with the model's chat template, or\n"
		"{\"prompt_ids\", \"response_ids\"}), and writes the result to OUT as a\n"
		"HuggingFace model directory (config.json, model.safetensors, tokenizer\n"
		"files copied). With --lora, trains a LoRA adapter of MODEL instead (the\n"
		"model memory-mapped as it is; adapters and their optimizer state in f32)\n"
		"and writes OUT as a PEFT adapter directory. The loss curve goes to stderr.",
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
	if (o->batch_tokens && o->batch)
		rl_usage("give --batch-size or --batch-tokens, not both");
	if (!o->batch)
		o->batch = 32;
	if (o->lora) {
		if (o->init_random)
			rl_usage("--lora adapts an existing model: give -m MODEL");
		if (o->dtype)
			rl_usage("--dtype goes without --lora (adapters are written in f32)");
	} else {
		const char *lora_only = o->alpha >= 0	     ? "--alpha"
					: o->dropout >= 0    ? "--dropout"
					: o->targets_given   ? "--targets"
					: o->rslora	     ? "--rslora"
					: o->precision_given ? "--precision"
					: o->mem	     ? "--mem"
					: o->ckpt_every >= 0 ? "--checkpoint-every"
					: o->resume	     ? "--resume"
							     : NULL;
		if (lora_only)
			rl_usage("%s goes with --lora R", lora_only);
	}
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

/* Steps of a run: --steps, or --epochs (1) over the data in batches of -b
 * examples, or of --batch-tokens tokens (counted by cutting the epoch's
 * examples in file order: about what a shuffled order gives). */
static long run_steps(const opts *o, const rl_tdata *d)
{
	if (o->steps)
		return (long)o->steps;
	double e = o->epochs > 0 ? o->epochs : 1.0;
	double per_epoch = (double)d->n / o->batch;
	if (o->batch_tokens) {
		long n = 0;
		for (int i = 0, tok = 0; i < d->n; i++) {
			int len = d->start[i + 1] - d->start[i];
			if (tok > 0 && tok + len > o->batch_tokens) {
				n++;
				tok = 0;
			}
			tok += len;
		}
		per_epoch = (double)(n + 1);
	}
	long steps = (long)ceil(e * per_epoch);
	return steps < 1 ? 1 : steps;
}

static int next_batch(rl_sampler *smp, const opts *o, const rl_tbatch **b)
{
	return o->batch_tokens ? rl_sampler_next_tokens(smp, o->batch_tokens, b)
			       : rl_sampler_next(smp, o->batch, b);
}

/* What the loop of either mode reports back. */
typedef struct run {
	long steps, warmup, log_every, first; /* first: step to start from (resume) */
	FILE *logf;
	double secs, loss;
	long tokens;  /* this process's */
	long tokens0; /* before it: the steps a resumed run's checkpoint holds */
} run;

/* One logged step: the TSV line and the stderr curve. */
static void log_step(const opts *o, run *r, long s, double lr, double loss, double gn,
		     double *run_loss, long *run_n, double t0)
{
	*run_loss += loss;
	(*run_n)++;
	double el = rl_now() - t0;
	if (r->logf) {
		fprintf(r->logf, "%ld\t%.6g\t%.6f\t%.6g\t%ld\t%.3f\n", s + 1, lr, loss, gn,
			r->tokens0 + r->tokens, el);
		fflush(r->logf);
	}
	if ((s + 1) % r->log_every == 0 || s + 1 == r->steps) {
		rl_info("step %ld/%ld  loss %.4f  lr %.3g  |g| %.3g  %.1f s  %.1f tokens/s", s + 1,
			r->steps, *run_loss / (double)*run_n, lr, gn, el,
			(double)r->tokens / (el > 0 ? el : 1));
		*run_loss = 0;
		*run_n = 0;
	} else {
		rl_progress("step %ld/%ld loss %.4f", s + 1, r->steps, loss);
	}
	(void)o;
}

static void full_training(const opts *o, rl_tmodel *m, const rl_tdata *data, run *r)
{
	rl_sampler smp;
	rl_tws *ws;
	int rc;
	if ((rc = rl_sampler_init(&smp, data, o->seed)) || (rc = rl_tws_new(&ws)) ||
	    (rc = rl_tws_set_threads(ws, m, o->threads ? o->threads : 1)))
		rl_die_err(rc);
	rl_adamw_hp hp = {.beta1 = o->b1, .beta2 = o->b2, .eps = o->eps, .weight_decay = o->wd};
	double t0 = rl_now(), run_loss = 0;
	long run_n = 0;
	for (long s = 0; s < r->steps; s++) {
		const rl_tbatch *b;
		if ((rc = next_batch(&smp, o, &b)))
			rl_die_err(rc);
		long R = 0;
		for (int t = 0; t < b->start[b->n]; t++)
			R += b->target[t] >= 0;
		double lr = rl_sched_lr(o->sched, o->lr, s, r->steps, r->warmup, o->min_lr);
		double sum;
		long nl;
		rl_tmodel_zero_grad(m);
		if ((rc = rl_tmodel_forward_backward(m, b, 1.0f / (float)R, 1, ws, &sum, &nl)))
			rl_die_err(rc);
		double gn = rl_tmodel_clip_grad(m, o->clip);
		if (!isfinite(gn) && (rc = rl_tmodel_check_grad(m))) /* before it spreads */
			rl_die(rc, "step %ld: %s", s + 1, rl_errmsg());
		rl_tmodel_adamw(m, &hp, lr);
		double loss = sum / (double)nl;
		if (!isfinite(loss))
			rl_die(RL_EDATA, "step %ld: loss is %g (learning rate too high?)", s + 1,
			       loss);
		r->tokens += b->start[b->n];
		r->loss = loss;
		log_step(o, r, s, lr, loss, gn, &run_loss, &run_n, t0);
	}
	rl_progress_end();
	r->secs = rl_now() - t0;
	rl_tws_free(ws);
	rl_sampler_free(&smp);
}

/* ---- LoRA ---- */

/* "<out>.ckpt" */
static char *ckpt_path(const char *out)
{
	size_t n = strlen(out) + 8;
	char *p = rl_malloc(n);
	if (p) {
		snprintf(p, n, "%s", out);
		while (strlen(p) > 1 && p[strlen(p) - 1] == '/')
			p[strlen(p) - 1] = 0;
		strcat(p, ".ckpt");
	}
	return p;
}

/* What decides a LoRA run's course, for its checkpoints: a checkpoint of a
 * run with other settings is refused. */
static cJSON *run_settings(const opts *o, const rl_model *src, const rl_tdata *d, const run *r,
			   const rl_lora_cfg *lc)
{
	char shape[17], hash[17];
	rl_model_shape_id(src, shape);
	XXH3_state_t *st = XXH3_createState();
	if (!st)
		return NULL;
	XXH3_64bits_reset(st);
	XXH3_64bits_update(st, d->ids, (size_t)d->ntok * sizeof *d->ids);
	XXH3_64bits_update(st, d->start, ((size_t)d->n + 1) * sizeof *d->start);
	XXH3_64bits_update(st, d->plen, (size_t)d->n * sizeof *d->plen);
	snprintf(hash, sizeof hash, "%016llx", (unsigned long long)XXH3_64bits_digest(st));
	XXH3_freeState(st);
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "model_shape", shape);
	cJSON_AddStringToObject(j, "data", hash);
	cJSON_AddNumberToObject(j, "steps", (double)r->steps);
	cJSON_AddNumberToObject(j, "batch_size", o->batch_tokens ? 0 : o->batch);
	cJSON_AddNumberToObject(j, "batch_tokens", o->batch_tokens);
	cJSON_AddNumberToObject(j, "lr", o->lr);
	cJSON_AddNumberToObject(j, "schedule", o->sched);
	cJSON_AddNumberToObject(j, "warmup", (double)r->warmup);
	cJSON_AddNumberToObject(j, "min_lr", o->min_lr);
	cJSON_AddNumberToObject(j, "weight_decay", o->wd);
	cJSON_AddNumberToObject(j, "beta1", o->b1);
	cJSON_AddNumberToObject(j, "beta2", o->b2);
	cJSON_AddNumberToObject(j, "eps", o->eps);
	cJSON_AddNumberToObject(j, "clip", o->clip);
	cJSON_AddNumberToObject(j, "seed", (double)o->seed);
	cJSON_AddNumberToObject(j, "r", lc->r);
	cJSON_AddNumberToObject(j, "alpha", lc->alpha);
	cJSON_AddBoolToObject(j, "rslora", lc->rslora);
	cJSON_AddNumberToObject(j, "dropout", lc->dropout);
	cJSON_AddNumberToObject(j, "targets", lc->targets);
	cJSON_AddStringToObject(j, "precision", rl_precision_name(o->precision));
	return j;
}

/* A resumed run's --log keeps the lines of the steps the checkpoint holds. */
static FILE *log_resume(const char *path, long upto)
{
	char *text = NULL;
	size_t len = 0;
	int rc = rl_read_file(path, &text, &len);
	if (rc == RL_EDATA) /* no log yet */
		rl_error_clear();
	else if (rc)
		rl_die_err(rc);
	FILE *f = fopen(path, "w");
	if (!f)
		rl_die(RL_ESYS, "'%s': %s", path, strerror(errno));
	fprintf(f, "step\tlr\tloss\tgrad_norm\ttokens\tseconds\n");
	for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (!nl)
			break; /* a torn last line */
		char *end;
		long step = strtol(line, &end, 10);
		if (end != line && *end == '\t' && step >= 1 && step <= upto)
			fprintf(f, "%.*s\n", (int)(nl - line), line);
	}
	free(text);
	return f;
}

/* Within a LoRA step: which layer (shown on a terminal only). */
typedef struct step_progress {
	long step, steps;
} step_progress;

static void on_layer(void *ctx, int backward, int layer, int n_layers)
{
	const step_progress *p = ctx;
	if (layer == n_layers)
		rl_progress("step %ld/%ld: loss", p->step, p->steps);
	else
		rl_progress("step %ld/%ld: %s layer %d/%d", p->step, p->steps,
			    backward ? "backward" : "forward",
			    backward ? n_layers - layer : layer + 1, n_layers);
}

static void lora_training(const opts *o, const rl_model *src, const char *base_name,
			  const rl_tdata *data, run *r, rl_lmodel *m)
{
	rl_lora_cfg lc;
	rl_lora_cfg_default(&lc);
	lc.r = o->lora;
	lc.alpha = o->alpha >= 0 ? o->alpha : lc.alpha;
	lc.rslora = o->rslora;
	lc.dropout = o->dropout >= 0 ? o->dropout : lc.dropout;
	lc.targets = o->targets;
	int rc = rl_lmodel_init(m, src, &lc, o->seed, o->mem);
	if (rc)
		rl_die_err(rc);
	m->prec = o->precision;
	char kern[160];
	rl_wgemm_describe(o->precision, src->embed->dtype, kern, sizeof kern);
	rl_note("precision %s: forward matrix kernels %s", rl_precision_name(o->precision),
		o->precision == RL_PREC_BF16 ? kern : "OpenBLAS sgemm on widened weights");
	char *ckpt = ckpt_path(o->out);
	cJSON *settings = run_settings(o, src, data, r, &lc);
	if (!ckpt || !settings)
		rl_die_err(RL_ESYS);
	struct stat st;
	int have_ckpt = stat(ckpt, &st) == 0;
	if (o->resume && have_ckpt) {
		if ((rc = rl_lmodel_checkpoint_read(m, ckpt, settings)))
			rl_die_err(rc);
		r->first = m->t;
		rl_info("resuming from '%s' after step %ld of %ld", ckpt, r->first, r->steps);
	} else if (o->resume) {
		rl_info("no checkpoint '%s': starting from the beginning", ckpt);
	} else if (have_ckpt) {
		rl_die(RL_USAGE,
		       "'%s' holds an interrupted run's checkpoint (--resume goes on from it; "
		       "remove it to start over)",
		       ckpt);
	}
	if (r->first > r->steps)
		rl_die(RL_EDATA, "'%s': step %ld is past the run's %ld steps", ckpt, r->first,
		       r->steps);
	if (o->log && o->resume) {
		r->logf = log_resume(o->log, r->first);
	} else if (o->log) {
		if (!(r->logf = fopen(o->log, "w")))
			rl_die(RL_ESYS, "'%s': %s", o->log, strerror(errno));
		fprintf(r->logf, "step\tlr\tloss\tgrad_norm\ttokens\tseconds\n");
	}
	long every = o->ckpt_every >= 0 ? (long)o->ckpt_every : (r->steps + 9) / 10;
	rl_info("LoRA r %d, alpha %g%s, dropout %g: %zu parameters (%.1f MiB with AdamW state) "
		"on %s",
		lc.r, lc.alpha, lc.rslora ? " (rsLoRA)" : "", lc.dropout, m->n,
		(double)m->n * 16 / 1048576.0, src->dir);

	rl_sampler smp;
	if ((rc = rl_sampler_init(&smp, data, o->seed)))
		rl_die_err(rc);
	const rl_tbatch *b;
	for (long s = 0; s < r->first; s++) { /* the data the checkpoint has seen */
		if ((rc = next_batch(&smp, o, &b)))
			rl_die_err(rc);
		r->tokens0 += b->start[b->n];
	}
	rl_adamw_hp hp = {.beta1 = o->b1, .beta2 = o->b2, .eps = o->eps, .weight_decay = o->wd};
	double t0 = rl_now(), run_loss = 0;
	long run_n = 0;
	step_progress sp = {0, r->steps};
	m->progress = on_layer;
	m->progress_ctx = &sp;
	for (long s = r->first; s < r->steps; s++) {
		sp.step = s + 1;
		if ((rc = next_batch(&smp, o, &b)))
			rl_die_err(rc);
		long R = 0;
		for (int t = 0; t < b->start[b->n]; t++)
			R += b->target[t] >= 0;
		double lr = rl_sched_lr(o->sched, o->lr, s, r->steps, r->warmup, o->min_lr);
		double sum;
		long nl;
		rl_lmodel_zero_grad(m);
		if ((rc = rl_lmodel_forward_backward(m, b, 1.0f / (float)R, 1, &sum, &nl)))
			rl_die_err(rc);
		double gn = rl_lmodel_clip_grad(m, o->clip);
		if (!isfinite(gn) && (rc = rl_lmodel_check_grad(m))) /* before it spreads */
			rl_die(rc, "step %ld: %s", s + 1, rl_errmsg());
		rl_lmodel_adamw(m, &hp, lr);
		double loss = sum / (double)nl;
		if (!isfinite(loss))
			rl_die(RL_EDATA, "step %ld: loss is %g (learning rate too high?)", s + 1,
			       loss);
		r->tokens += b->start[b->n];
		r->loss = loss;
		log_step(o, r, s, lr, loss, gn, &run_loss, &run_n, t0);
		if (s == r->first)
			rl_note("step %ld: %d chunk(s), %d layers' activations kept, %d recomputed",
				s + 1, m->chunks, m->kept, m->recomputed);
		if (every && (s + 1) % every == 0 && s + 1 < r->steps &&
		    (rc = rl_lmodel_checkpoint_write(m, ckpt, base_name, settings)))
			rl_die_err(rc);
	}
	rl_progress_end();
	r->secs = rl_now() - t0;
	rl_sampler_free(&smp);
	cJSON_Delete(settings);
	free(ckpt);
}

/* The checkpoint's files and directory, once OUT is written. */
static void remove_checkpoint(const char *out)
{
	char *ckpt = ckpt_path(out);
	DIR *d = ckpt ? opendir(ckpt) : NULL;
	if (!d) {
		free(ckpt);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			char p[4096];
			if (snprintf(p, sizeof p, "%s/%s", ckpt, e->d_name) < (int)sizeof p)
				unlink(p);
		}
	closedir(d);
	if (rmdir(ckpt) != 0)
		rl_warn("'%s': %s (remove it before another run)", ckpt, strerror(errno));
	free(ckpt);
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
	if (o.lora) {
		/* LoRA: real models' GEMMs, one at a time over every thread */
		rl_par_set_threads(o.threads);
		rl_blas_threads(rl_par_threads());
	} else {
		/* Threads: data parallel over a batch's sequences, one BLAS thread
		 * each (the toy world's matrices are too small for BLAS threads to
		 * pay). */
		rl_blas_threads(1);
		rl_par_set_threads(1);
	}

	struct stat st;
	if (!o.force && stat(o.out, &st) == 0)
		rl_die(RL_USAGE, "'%s' exists (use --force to replace it)", o.out);

	/* The model to start from. */
	rl_tmodel m;
	rl_lmodel lm;
	rl_model src;
	int have_src = 0, rc;
	char *tokdir = NULL;
	rl_dtype out_dt = RL_DT_F32;
	const rl_config *cfg = NULL;
	if (o.init_random) {
		char *text;
		size_t len;
		rl_config c;
		if ((rc = rl_read_input(o.arch, &text, &len))) /* may be a pipe */
			rl_die_err(rc);
		rc = rl_config_parse(&c, text, len, o.arch);
		/* initializer_range is not a field of rl_config: read it here. */
		double std = 0.02;
		cJSON *j = NULL;
		if (!rc)
			rc = rl_json_parse(text, len, o.arch, &j); /* as rl_config_parse did */
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
		cfg = &m.cfg;
	} else {
		if ((rc = rl_model_open(&src, o.model, RL_MODEL_READ)))
			rl_die_err(rc);
		have_src = 1;
		if (!o.lora && (rc = rl_tmodel_load(&m, &src)))
			rl_die_err(rc);
		out_dt = src.embed->dtype;
		tokdir = rl_strdup(o.tokdir ? o.tokdir : o.model);
		cfg = &src.cfg;
	}
	if (!tokdir)
		rl_die_err(RL_ESYS);
	if ((rc = rl_output_check_replace(o.out, 1)) || (o.log && (rc = rl_output_check(o.log))))
		rl_die_err(rc); /* now, not after the training */
	if (o.dtype)
		out_dt = strcmp(o.dtype, "f32") == 0	? RL_DT_F32
			 : strcmp(o.dtype, "bf16") == 0 ? RL_DT_BF16
							: RL_DT_F16;

	/* Data. */
	rl_tdata_opts dop = {
		.max_examples = o.n, .vocab_size = cfg->vocab_size, .max_len = cfg->max_position};
	rl_tencode_ctx ectx;
	if ((rc = rl_tencode_open(&ectx, tokdir, o.template)) == RL_OK) {
		dop.encode = rl_tencode;
		dop.encode_ctx = &ectx;
		rl_note("%s", ectx.info.how);
		if (*ectx.info.note)
			rl_info("%s", ectx.info.note);
		if (*ectx.info.warning)
			rl_warn("%s", ectx.info.warning);
	} else if (rc != RL_NO) {
		rl_die_err(rc);
	}
	rl_tdata data;
	if ((rc = rl_tdata_read(&data, o.data, &dop)))
		rl_die_err(rc);
	if (ectx.n_fallback)
		rl_warn("%ld of %d examples: the chat template's generation prompt is not a "
			"prefix of the training text; the loss starts where the two renderings "
			"part (rl-train(1))",
			ectx.n_fallback, data.n);
	run r = {.steps = run_steps(&o, &data)};
	r.warmup = o.warmup >= 0 ? o.warmup : r.steps / 20;
	if (r.warmup > r.steps)
		rl_usage("--warmup %ld exceeds the %ld steps", r.warmup, r.steps);
	r.log_every = o.log_every ? o.log_every : (r.steps >= 20 ? r.steps / 20 : 1);
	char batch[64];
	if (o.batch_tokens)
		snprintf(batch, sizeof batch, "at most %d tokens", o.batch_tokens);
	else
		snprintf(batch, sizeof batch, "%d", o.batch);
	rl_info("%d examples (%lld tokens, %lld in responses), %ld steps of %s", data.n,
		(long long)data.ntok, (long long)data.nlabelled, r.steps, batch);
	if (!o.lora)
		rl_info("%llu parameters", (unsigned long long)rl_tmodel_numel(&m));

	if (o.log && !o.lora) { /* (LoRA's after its checkpoint is looked at) */
		r.logf = fopen(o.log, "w");
		if (!r.logf)
			rl_die(RL_ESYS, "'%s': %s", o.log, strerror(errno));
		fprintf(r.logf, "step\tlr\tloss\tgrad_norm\ttokens\tseconds\n");
	}

	/* Training. */
	const char *base_name = cfg->name_or_path[0] ? cfg->name_or_path : o.model;
	if (o.lora) {
		lora_training(&o, &src, base_name, &data, &r, &lm);
	} else {
		full_training(&o, &m, &data, &r);
	}
	if (r.logf && fclose(r.logf) != 0)
		rl_die(RL_ESYS, "'%s': write error", o.log);

	/* Output: a fresh directory renamed into place, so OUT is never half
	 * written. */
	rl_outdir od;
	if ((rc = rl_outdir_begin(&od, o.out, o.force)))
		rl_die_err(rc);
	if (o.lora) {
		rc = rl_lmodel_save(&lm, od.tmp, base_name);
	} else {
		rc = rl_tmodel_save(&m, od.tmp, out_dt);
		if (!rc)
			rc = rl_model_copy_side_files(tokdir, od.tmp);
	}
	if (rc) {
		rl_outdir_abort(&od);
		rl_die_err(rc);
	}
	if ((rc = rl_outdir_commit(&od)))
		rl_die_err(rc);
	if (o.lora)
		remove_checkpoint(o.out);
	double tps = (double)r.tokens / (r.secs > 0 ? r.secs : 1);
	rl_info("wrote '%s' (%s) after %ld steps in %.1f s (%.0f tokens/s, peak RSS %.2f GiB)",
		o.out, o.lora ? "LoRA adapter, f32" : rl_dtype_name(out_dt), r.steps, r.secs, tps,
		(double)rl_peak_rss() / 1073741824.0);
	if (o.summary) {
		cJSON *j = rl_summary_new("rl-train");
		cJSON_AddNumberToObject(j, "steps", (double)r.steps);
		cJSON_AddNumberToObject(j, "steps_run", (double)(r.steps - r.first));
		cJSON_AddNumberToObject(j, "tokens", (double)r.tokens);
		cJSON_AddNumberToObject(j, "tokens_per_second", tps);
		cJSON_AddNumberToObject(j, "loss", r.loss);
		if (o.lora) {
			cJSON_AddNumberToObject(j, "parameters", (double)lm.n);
			cJSON_AddStringToObject(j, "precision", rl_precision_name(o.precision));
		}
		if ((rc = rl_summary_write(j, o.summary, r.secs)))
			rl_die_err(rc);
	}

	rl_tdata_free(&data);
	rl_tencode_close(&ectx);
	if (o.lora)
		rl_lmodel_free(&lm);
	else
		rl_tmodel_free(&m);
	if (have_src)
		rl_model_close(&src);
	free(tokdir);
	return rl_cli_exit();
}
