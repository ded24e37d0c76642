/* rl-direction — the mean hidden state after L layers at the prompts' last token.
 *
 * Reads a model directory and a JSON-lines prompt file, runs the first L
 * decoder layers over all prompts (packed, no padding) and writes a
 * "direction" stream: the mean over the prompts of h_L at each prompt's last
 * token (transformers' hidden_states[L]), and with --per-prompt every
 * prompt's own vector. With --shard I/N, only the I-th of N runs of whole -b
 * groups of prompts, writing its prompts' vectors ("direction-shard"; rl-sum
 * takes the mean). See rl-direction(1) and rl-stream(5).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/engine.h"
#include "compute/wgemm.h"
#include "core/cli.h"
#include "core/inputs.h"
#include "core/options.h"
#include "core/par.h"
#include "core/util.h"
#include "store/grad_stream.h"
#include "store/model.h"
#include "store/shard_stream.h"
#include "store/stream.h"
#include "store/stream_model.h"
#include "text/chat.h"
#include "text/prompts.h"

struct opts {
	const char *model, *prompts, *out;
	int layer_end;
	int batch;
	int max_prompts;
	int per_prompt;
	int threads;
	uint64_t mem_limit;
	rl_shard shard;
	rl_precision precision;
	rl_chat_opts chat; /* for {"prompt": ...} lines */
};

static void on_precision(const char *name, const char *arg, void *ctx)
{
	if (rl_precision_parse(arg, ctx))
		rl_usage("%s: expected fp32 or bf16, got '%s'", name, arg);
}

static void parse_args(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	o->out = "-";
	const rl_opt table[] = {
		RL_OPT_MODEL(&o->model, "the model directory (HuggingFace safetensors)"),
		RL_OPT_PROMPTS(&o->prompts),
		RL_OPTS_CHAT(0, 0, &o->chat),
		RL_OPT_INT('L', "layer", "N", &o->layer_end, 1, 1000000,
			   "layers to run, 1..n_layers (hidden_states[N])"),
		RL_OPT_INT('n', "max-prompts", "N", &o->max_prompts, 1, INT32_MAX,
			   "use the first N prompts only"),
		RL_OPT_INT('b', "batch-size", "N", &o->batch, 1, INT32_MAX,
			   "prompts per forward chunk (memory only; default: all that fit in "
			   "--mem-limit)"),
		RL_OPT_FLAG(0, "per-prompt", &o->per_prompt,
			    "also write each prompt's vector (\"prompt.<i>\")"),
		RL_OPT_SHARD(&o->shard, "compute part I of N (whole -b groups): the prompts' "
					"vectors, for rl-sum (needs -b)"),
		RL_OPT_SIZE(0, "mem-limit", "SIZE", &o->mem_limit,
			    "working memory budget, e.g. 8G (default: half the RAM)"),
		RL_OPT_CALL(
			0, "precision", "P", on_precision, &o->precision,
			"fp32 (default) or bf16: the layers' matrix products on the stored "
			"weights with inputs rounded to bf16 (faster where the CPU has bf16 dot "
			"products)"),
		RL_OPT_THREADS('j', &o->threads,
			       "threads (default: all cores, or OPENBLAS_NUM_THREADS for BLAS)"),
		RL_OPT_OUTPUT('o', "FILE", &o->out, "write the stream to FILE instead of stdout"),
		RL_OPT_QUIET("no messages but errors"),
		RL_OPT_VERBOSE("timings and details"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-direction -m MODEL -p PROMPTS.jsonl -L LAYER [options] > DIR.rls",
		"Mean hidden state after LAYER layers at the last token of each prompt.",
		table,
		NULL,
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	if (i != argc)
		rl_usage("unexpected argument '%s'", argv[i]);
	if (!o->model)
		rl_usage("missing -m MODEL");
	if (!o->prompts)
		rl_usage("missing -p PROMPTS");
	if (!o->layer_end)
		rl_usage("missing -L LAYER");
	if (o->shard.count && !o->batch)
		rl_usage(
			"--shard needs -b N (the run without --shard and with the same -b N writes "
			"what rl-sum makes of the shards)");
}

/* The stream; a shard's (q: its prompts, the first being i0 of p) holds its
 * prompts' vectors, no direction. */
static int write_stream(const struct opts *o, const rl_model *m, const rl_prompts *p,
			const float *dir, const float *h, const rl_prompts *q, int i0, int g0,
			int g1)
{
	int C = m->cfg.hidden_size;
	rl_sw *w;
	int sharded = o->shard.count > 0;
	int rc = rl_sw_open(&w, o->out, sharded ? "direction-shard" : "direction", "rl-direction");
	if (rc)
		return rc;
	rl_sw_header_begin(w, sharded ? 12 : 6);
	msgpack_packer *pk = rl_sw_packer(w);
	rl_pack_kv_model(pk, "model", m);
	rl_pack_kv_int(pk, "layer_end", o->layer_end);
	rl_pack_kv_int(pk, "n_prompts", p->n);
	rl_pack_kv_str(pk, "prompts", p->path);
	rl_pack_kv_int(pk, "hidden_size", C);
	rl_pack_kv_bool(pk, "final_norm", o->layer_end == m->cfg.n_layers);
	int64_t shape[1] = {C};
	if (sharded) {
		char hex[17];
		rl_pack_kv_shard(pk, &o->shard, (p->n + o->batch - 1) / o->batch, g0, g1);
		rl_hex64(rl_prompts_hash(p), hex);
		rl_pack_kv_str(pk, "prompts_hash", hex);
		rl_pack_kv_int(pk, "batch_size", o->batch);
		rl_pack_kv_bool(pk, "per_prompt", o->per_prompt);
		/* OpenBLAS's sums depend on its thread count, the forward on the precision */
		rl_pack_kv_int(pk, "threads", rl_blas_get_threads());
		rl_pack_kv_str(pk, "precision", rl_precision_name(o->precision));
	} else {
		rc = rl_sw_tensor(w, "direction", RL_DT_F32, 1, shape, dir, (uint64_t)C);
	}
	for (int i = 0; i < q->n && (o->per_prompt || sharded) && !rc; i++) {
		char name[32];
		snprintf(name, sizeof name, "prompt.%d", i0 + i);
		rc = rl_sw_tensor(w, name, RL_DT_F32, 1, shape, h + (size_t)i * C, (uint64_t)C);
	}
	if (rc) {
		rl_sw_abort(w);
		return rc;
	}
	return rl_sw_close(w);
}

int main(int argc, char **argv)
{
	rl_cli_init("rl-direction", argc, argv);
	struct opts o;
	parse_args(&o, argc, argv);
	char note[256];
	rl_blas_setup(note, sizeof note);
	if (note[0])
		rl_note("%s", note);
	rl_blas_threads(o.threads);
	if (o.threads)
		rl_par_set_threads(o.threads);

	rl_model m;
	int rc = rl_model_open(&m, o.model, RL_MODEL_READ);
	if (rc)
		rl_die_err(rc);
	if (o.layer_end > m.cfg.n_layers)
		rl_usage("-L %d exceeds the model's %d layers", o.layer_end, m.cfg.n_layers);
	rl_prompts p;
	if (o.chat.raw && o.chat.template_spec)
		rl_usage("--raw and --template exclude each other");
	/* text prompts: chat template + tokenizer.json, loaded at the first one */
	rl_chat_info how;
	rl_prompts_opts po = {o.max_prompts, m.cfg.vocab_size, m.cfg.max_position, NULL, NULL};
	rc = rl_chat_prompts_read(&p, o.prompts, po, o.model, &o.chat, &how);
	if (*how.how)
		rl_note("%s", how.how);
	if (*how.note)
		rl_info("%s", how.note);
	if (*how.warning)
		rl_warn("%s", how.warning);
	if (rc)
		rl_die_err(rc);
	if (strcmp(o.out, "-") == 0)
		rl_require_stdout_not_tty();
	if ((rc = rl_output_check(o.out))) /* now, not after the forward */
		rl_die_err(rc);

	/* a shard runs groups [g0, g1) of -b prompts */
	int ng = o.batch ? (p.n + o.batch - 1) / o.batch : 1, g0 = 0, g1 = ng, i0 = 0;
	rl_shard_range(&o.shard, ng, &g0, &g1);
	rl_prompts sp = {0};
	const rl_prompts *q = &p;
	if (o.shard.count) {
		i0 = g0 * o.batch;
		int i1 = g1 * o.batch < p.n ? g1 * o.batch : p.n;
		if (g1 > g0 && (rc = rl_prompts_slice(&sp, &p, i0, i1)))
			rl_die_err(rc);
		q = &sp;
		rl_note("shard %d of %d: prompts %d..%d of %d", o.shard.index, o.shard.count, i0,
			i1 - 1, p.n);
	}

	int C = m.cfg.hidden_size;
	rl_engine e = {0};
	rl_engine_opts eo = {o.mem_limit, 0, o.precision};
	char kern[256];
	rl_wgemm_describe(o.precision, m.embed->dtype, kern, sizeof kern);
	rl_note("precision %s: matrix kernels %s", rl_precision_name(o.precision),
		o.precision == RL_PREC_BF16 ? kern : "OpenBLAS sgemm on widened weights");
	float *h = rl_malloc_array((size_t)(q->n ? q->n : 1) * C, sizeof *h);
	float *dir = rl_malloc_array((size_t)C, sizeof *dir);
	if (!h || !dir)
		rl_die_err(RL_ESYS);
	double t0 = rl_now();
	if (q->n) {
		if ((rc = rl_engine_init(&e, &m, o.layer_end, q->max_len, &eo)))
			rl_die_err(rc);
		if ((rc = rl_engine_hidden(&e, q, o.batch, h)))
			rl_die_err(rc);
	}
	for (int c = 0; c < C && q->n; c++) {
		double s = 0;
		for (int i = 0; i < q->n; i++)
			s += h[(size_t)i * C + c];
		dir[c] = (float)(s / q->n);
	}
	rl_info("%d prompts, %" PRId64 " tokens, layer %d of %d: %.2f s", q->n, q->ntok,
		o.layer_end, m.cfg.n_layers, rl_now() - t0);
	rl_note("weights loaded in %.2f s; peak RSS %.2f GiB; OpenBLAS core %s", e.t_load,
		(double)rl_peak_rss() / (1 << 30), rl_blas_core());
	if ((rc = write_stream(&o, &m, &p, dir, h, q, i0, g0, g1)))
		rl_die_err(rc);
	if (q->n)
		rl_engine_free(&e);
	if (q == &sp)
		rl_prompts_free(&sp);
	free(h);
	free(dir);
	rl_prompts_free(&p);
	rl_model_close(&m);
	return rl_cli_exit();
}
