/* rl-grad — the gradient of the method's objective for every candidate weight.
 *
 * Reads a model directory, a JSON-lines prompt file and a direction stream
 * (rl-direction), and writes a "grad" stream: per batch of consecutive prompts
 * the loss -cos(mean h_L, direction) and its cosine, then for every q, k, v, o,
 * gate, up and down weight (and bias) of layers 0..L-1 the gradient of the sum
 * of the batch losses, f32, named and shaped like the model's tensor. L comes
 * from the direction stream. With --add, a previous grad stream is summed in.
 * With --shard I/N, only the I-th of N runs of whole batches, each batch's
 * partial gradient written apart ("grad-shard"; rl-sum adds the shards).
 * See rl-grad(1) and rl-stream(5).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "compute/engine.h"
#include "compute/wgemm.h"
#include "core/cli.h"
#include "core/file.h"
#include "core/inputs.h"
#include "core/options.h"
#include "core/par.h"
#include "core/summary.h"
#include "core/util.h"
#include "store/grad_stream.h"
#include "store/model.h"
#include "store/model_state.h"
#include "store/shard_stream.h"
#include "store/stream.h"
#include "store/stream_model.h"
#include "text/chat.h"
#include "text/prompts.h"

struct opts {
	const char *model, *prompts, *direction, *add, *out, *summary;
	int batch;
	int max_prompts;
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
	o->batch = 8;
	const rl_opt table[] = {
		RL_OPT_MODEL(&o->model, "the model directory (HuggingFace safetensors)"),
		RL_OPT_PROMPTS(&o->prompts),
		RL_OPTS_CHAT(0, 0, &o->chat),
		RL_OPT_STRING('d', "direction", "FILE", &o->direction,
			      "a direction stream (rl-direction); gives L"),
		RL_OPT_INT('b', "batch-size", "N", &o->batch, 1, INT32_MAX,
			   "prompts per batch (default 8)"),
		RL_OPT_INT('n', "max-prompts", "N", &o->max_prompts, 1, INT32_MAX,
			   "use the first N prompts only"),
		RL_OPT_STRING(0, "add", "FILE", &o->add,
			      "sum a previous grad stream (same model, same L) into the output"),
		RL_OPT_SHARD(&o->shard, "compute part I of N (whole batches): each batch's partial "
					"gradient, for rl-sum"),
		RL_OPT_SIZE(0, "mem-limit", "SIZE", &o->mem_limit,
			    "working memory budget, e.g. 8G (default: half the RAM); activations "
			    "beyond it are recomputed"),
		RL_OPT_CALL(
			0, "precision", "P", on_precision, &o->precision,
			"fp32 (default) or bf16: the forward's matrix products on the stored "
			"weights with inputs rounded to bf16 (faster where the CPU has bf16 dot "
			"products); the backward stays fp32"),
		RL_OPT_THREADS('j', &o->threads,
			       "threads (default: all cores, or OPENBLAS_NUM_THREADS for BLAS)"),
		RL_OPT_OUTPUT('o', "FILE", &o->out, "write the stream to FILE instead of stdout"),
		RL_OPT_SUMMARY(&o->summary),
		RL_OPT_QUIET("no messages but errors"),
		RL_OPT_VERBOSE("timings and details"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-grad -m MODEL -p PROMPTS.jsonl -d DIR.rls [options] > GRAD.rls",
		"Gradient of sum_b -cos(mean h_L over batch b, direction) for every candidate\n"
		"weight (q,k,v,o,gate,up,down and biases of layers below L).",
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
	if (!o->direction)
		rl_usage("missing -d DIRECTION");
	if (o->add && strcmp(o->add, "-") == 0 &&
	    (strcmp(o->prompts, "-") == 0 || strcmp(o->direction, "-") == 0))
		rl_usage("only one input can be stdin");
	if (strcmp(o->prompts, "-") == 0 && strcmp(o->direction, "-") == 0)
		rl_usage("only one input can be stdin");
	if (o->shard.count && o->add)
		rl_usage("--add and --shard exclude each other (give --add to rl-sum, which adds "
			 "it to the shards' sum)");
}

/* Candidate roles of a layer in rl-grad's output order. */
static const rl_role out_roles[] = {
	RL_R_Q,	      RL_R_Q_BIAS,  RL_R_K,	 RL_R_K_BIAS,	 RL_R_V,	 RL_R_V_BIAS,
	RL_R_QKV,     RL_R_O,	    RL_R_O_BIAS, RL_R_GATE,	 RL_R_GATE_BIAS, RL_R_UP,
	RL_R_UP_BIAS, RL_R_GATE_UP, RL_R_DOWN,	 RL_R_DOWN_BIAS,
};

/* The stream's size, about: f32 values of the written tensors of layers
 * 0..L-1, once per batch partial in a shard's stream. */
static uint64_t out_bytes(const rl_model *m, int L, int parts)
{
	uint64_t n = 0;
	for (int l = 0; l < L; l++)
		for (size_t k = 0; k < sizeof out_roles / sizeof out_roles[0]; k++) {
			const rl_tensor *t = rl_model_get(m, l, out_roles[k]);
			if (t)
				n += t->numel;
		}
	return n * sizeof(float) * (uint64_t)parts;
}

/* The header; a shard's adds which batches it holds and the identities every
 * shard of one run shares (rl-stream(5)). */
static int write_header(rl_sw *w, const struct opts *o, const rl_model *m, const char *state,
			const rl_prompts *p, const rl_direction *d, int sum_of, int nbatch, int b0,
			int b1)
{
	rl_sw_header_begin(w, o->shard.count ? 12 : 7);
	msgpack_packer *pk = rl_sw_packer(w);
	rl_pack_str(pk, "model"); /* identity and state: rl-select refuses a stale gradient */
	rl_pack_model_id(pk, m, state);
	rl_pack_kv_int(pk, "layer_end", d->layer_end);
	rl_pack_kv_int(pk, "batch_size", o->batch);
	rl_pack_kv_int(pk, "n_prompts", p->n);
	rl_pack_kv_str(pk, "prompts", p->path);
	rl_pack_str(pk, "direction");
	msgpack_pack_map(pk, 4);
	rl_pack_kv_str(pk, "path", d->path);
	rl_pack_kv_int(pk, "n_prompts", d->n_prompts);
	rl_pack_kv_str(pk, "prompts", d->prompts);
	rl_pack_kv_str(pk, "model", d->model_path);
	rl_pack_kv_int(pk, "sum_of", sum_of);
	if (o->shard.count) {
		char hex[17];
		rl_pack_kv_shard(pk, &o->shard, nbatch, b0, b1);
		rl_hex64(rl_prompts_hash(p), hex);
		rl_pack_kv_str(pk, "prompts_hash", hex);
		rl_hex64(XXH64(d->v, (size_t)d->hidden_size * sizeof *d->v, 0), hex);
		rl_pack_kv_str(pk, "direction_hash", hex);
		/* OpenBLAS's sums depend on its thread count, the forward on the precision */
		rl_pack_kv_int(pk, "threads", rl_blas_get_threads());
		rl_pack_kv_str(pk, "precision", rl_precision_name(o->precision));
	}
	return RL_OK;
}

/* The summary as JSON (rl-grad(1) lists the keys): the batches as the
 * stream's batch records hold them, and loss, their sum (the objective). */
static int write_summary(const struct opts *o, const rl_prompts *p, int L, const rl_grad *g,
			 const rl_engine *e, uint64_t values, double seconds, int b0)
{
	cJSON *j = rl_summary_new("rl-grad");
	cJSON *batches = j ? cJSON_AddArrayToObject(j, "batches") : NULL;
	double loss = 0;
	int ok = batches != NULL;
	for (int b = 0; ok && b < g->nbatch; b++) {
		cJSON *r = cJSON_CreateObject();
		int nb = b + 1 < g->nbatch ? o->batch : p->n - b * o->batch;
		ok = r && cJSON_AddItemToArray(batches, r) &&
		     cJSON_AddNumberToObject(r, "index", b0 + b) &&
		     cJSON_AddNumberToObject(r, "n", nb) &&
		     cJSON_AddNumberToObject(r, "loss", g->loss[b]) &&
		     cJSON_AddNumberToObject(r, "cos", g->cos[b]);
		loss += g->loss[b];
	}
	ok = ok && cJSON_AddNumberToObject(j, "layer_end", L) &&
	     cJSON_AddNumberToObject(j, "n_prompts", p->n) &&
	     cJSON_AddNumberToObject(j, "tokens", (double)p->ntok) &&
	     cJSON_AddNumberToObject(j, "batch_size", o->batch) &&
	     cJSON_AddNumberToObject(j, "loss", loss) &&
	     cJSON_AddNumberToObject(j, "values", (double)values) &&
	     cJSON_AddNumberToObject(j, "forward_seconds", e->t_forward) &&
	     cJSON_AddNumberToObject(j, "backward_seconds", e->t_backward);
	if (!ok) {
		cJSON_Delete(j);
		return rl_error(RL_ESYS, "'%s': out of memory", o->summary);
	}
	return rl_summary_write(j, o->summary, seconds);
}

int main(int argc, char **argv)
{
	rl_cli_init("rl-grad", argc, argv);
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
	/* the state the gradient is computed for (refused while a write is in flux) */
	char state[RL_STATE_HEX + 1];
	if ((rc = rl_model_state(&m, state)))
		rl_die_err(rc);
	rl_direction d;
	if ((rc = rl_direction_read(&d, o.direction, &m)))
		rl_die_err(rc);
	int L = d.layer_end;
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
	rl_grad_addend *add = NULL;
	if (o.add && (rc = rl_grad_addend_open(&add, o.add, &m, L)))
		rl_die_err(rc);
	if (strcmp(o.out, "-") == 0)
		rl_require_stdout_not_tty();
	if ((rc = rl_output_check(o.out))) /* now, not after the gradient */
		rl_die_err(rc);

	/* a shard runs batches [b0, b1) of all the prompts' */
	int nball = (p.n + o.batch - 1) / o.batch, b0 = 0, b1 = nball;
	rl_shard_range(&o.shard, nball, &b0, &b1);
	rl_prompts sp = {0};
	const rl_prompts *q = &p;
	if (o.shard.count && b1 > b0) {
		int i1 = b1 * o.batch < p.n ? b1 * o.batch : p.n;
		if ((rc = rl_prompts_slice(&sp, &p, b0 * o.batch, i1)))
			rl_die_err(rc);
		q = &sp;
	}
	if ((rc = rl_output_space_check(o.out, out_bytes(&m, L, o.shard.count ? b1 - b0 : 1))))
		rl_die_err(rc);
	if (o.shard.count)
		rl_note("shard %d of %d: batches %d..%d of %d", o.shard.index, o.shard.count, b0,
			b1 - 1, nball);

	/* forward over the prompts: the losses */
	rl_engine e = {0};
	rl_engine_opts eo = {o.mem_limit, 0, o.precision};
	char kern[256];
	rl_wgemm_describe(o.precision, m.embed->dtype, kern, sizeof kern);
	rl_note("precision %s: forward matrix kernels %s", rl_precision_name(o.precision),
		o.precision == RL_PREC_BF16 ? kern : "OpenBLAS sgemm on widened weights");
	rl_grad g = {0};
	int want = RL_GRAD_LINEAR | (o.shard.count ? RL_GRAD_PER_BATCH : 0);
	double t0 = rl_now();
	if (b1 > b0) {
		if ((rc = rl_engine_init(&e, &m, L, q->max_len, &eo)))
			rl_die_err(rc);
		if ((rc = rl_grad_begin(&g, &e, q, o.batch, d.v, want)))
			rl_die_err(rc);
		rl_note("%d prompts, %" PRId64 " tokens, layer_end %d: forward %.2f s; activations "
			"of %d layers kept, %d recomputed; planned %.2f GiB",
			q->n, q->ntok, L, e.t_forward, e.kept + 1, e.recomputed,
			(double)e.bytes_planned / (1 << 30));
	}
	for (int b = 0; b < g.nbatch; b++) {
		int nb = b + 1 < g.nbatch ? o.batch : q->n - b * o.batch;
		rl_info("batch %d/%d (%d prompts): loss %.6f cos %.6f", b0 + b + 1, nball, nb,
			g.loss[b], g.cos[b]);
	}

	/* the stream: header, batch records, then the tensors layer by layer (a
	 * shard: each batch's partial after a "part" record) */
	rl_sw *w;
	if ((rc = rl_sw_open(&w, o.out, o.shard.count ? "grad-shard" : "grad", "rl-grad")))
		rl_die_err(rc);
	write_header(w, &o, &m, state, &p, &d, 1 + (add ? rl_grad_addend_sum_of(add) : 0), nball,
		     b0, b1);
	msgpack_packer *pk = rl_sw_packer(w);
	for (int b = 0; b < g.nbatch; b++) {
		int nb = b + 1 < g.nbatch ? o.batch : q->n - b * o.batch;
		rl_sw_record_begin(w, "batch", 4);
		rl_pack_kv_int(pk, "index", b0 + b);
		rl_pack_kv_int(pk, "n", nb);
		rl_pack_kv_f64(pk, "loss", g.loss[b]);
		rl_pack_kv_f64(pk, "cos", g.cos[b]);
	}
	uint64_t written = 0;
	while (b1 > b0) {
		int layer, batch = 0;
		const rl_layer_w *gw;
		if ((rc = o.shard.count ? rl_grad_next_batch(&g, &layer, &batch, &gw)
					: rl_grad_next(&g, &layer, &gw)))
			break;
		if (layer < 0)
			break;
		rl_progress("backward: layer %d", layer);
		if (o.shard.count) {
			rl_sw_record_begin(w, "part", 2);
			rl_pack_kv_int(pk, "layer", layer);
			rl_pack_kv_int(pk, "batch", b0 + batch);
		}
		for (size_t k = 0; k < sizeof out_roles / sizeof out_roles[0] && !rc; k++) {
			const rl_tensor *t = rl_model_get(&m, layer, out_roles[k]);
			size_t n;
			float *part = rl_layer_w_part(gw, &e.d, out_roles[k], &n);
			if (!t)
				continue;
			if (!part || n != t->numel) {
				rc = rl_error(RL_EDATA, "'%s': %s has an unexpected shape", m.dir,
					      t->name);
				break;
			}
			if (add && (rc = rl_grad_addend_next(add, t->name, part, n)))
				break;
			rc = rl_sw_tensor(w, t->name, RL_DT_F32, t->ndim, t->shape, part, n);
			written += n;
		}
		if (rc)
			break;
	}
	rl_progress_end();
	if (!rc && add)
		rc = rl_grad_addend_finish(add);
	if (rc) {
		rl_sw_abort(w);
		rl_die_err(rc);
	}
	if ((rc = rl_sw_close(w)))
		rl_die_err(rc);
	double t = rl_now() - t0;
	rl_info("%" PRIu64 " gradient values for layers 0..%d in %.2f s (forward %.2f, backward "
		"%.2f)",
		written, L - 1, t, e.t_forward, e.t_backward);
	if (o.summary && (rc = write_summary(&o, q, L, &g, &e, written, t, b0)))
		rl_die_err(rc);
	rl_note("GEMM %.1f GFLOP, %.1f GFLOP/s over the whole run (%.1f s in GEMM calls, %.1f "
		"GFLOP/s there; %.1f s in attention, GEMMs included); weights widened in %.2f s; "
		"peak RSS %.2f GiB; OpenBLAS core %s",
		rl_gemm_flops() / 1e9, rl_gemm_flops() / 1e9 / t, rl_gemm_seconds(),
		rl_gemm_flops() / 1e9 / (rl_gemm_seconds() > 0 ? rl_gemm_seconds() : 1),
		rl_layer_attention_seconds(), e.t_load, (double)rl_peak_rss() / (1 << 30),
		rl_blas_core());
	if (b1 > b0) {
		rl_grad_end(&g);
		rl_engine_free(&e);
	}
	rl_grad_addend_close(add);
	rl_direction_free(&d);
	if (q == &sp)
		rl_prompts_free(&sp);
	rl_prompts_free(&p);
	rl_model_close(&m);
	return rl_cli_exit();
}
