/* rl-info — describe a model directory (or one safetensors file).
 *
 * Reads MODEL_DIR (config.json + model.safetensors or the shards of
 * model.safetensors.index.json), validating all of it, and prints what realign
 * sees: architecture, hyperparameters, P, the candidate tensors for layer_end
 * L, the shape id (and with --hash the content hash). Given a .safetensors
 * file instead, it validates and lists that file; given a .json file, it
 * reads it as a config.json alone (the architecture as realign would run it,
 * P from the configuration); given a GGUF file (any part of a split one), it
 * validates it and says what rl-import would make of it: the configuration,
 * the tensor types, the chat template, without writing anything. Text by
 * default, one JSON object with --json. A model that does not validate is
 * exit 3 with the reason.
 * With -A ADAPTER, a PEFT LoRA adapter is checked against the model and merged
 * into it in memory first (method/merge.h), so that what is described, and
 * hashed, is the fine-tuned model rl-merge would write.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "compute/ops.h"
#include "compute/wgemm.h"
#include "core/cli.h"
#include "core/cpu.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "core/options.h"
#include "method/merge.h"
#include "store/adapter.h"
#include "store/gguf.h"
#include "store/gguf_hf.h"
#include "store/gguf_quant.h"
#include "store/model.h"
#include "text/chat_source.h"
#include "text/jinja.h"
#include "text/tokenizer_gguf.h"

struct opts {
	int layer_end; /* 0: default floor(2N/3) */
	int json;
	int tensors;
	int hash;
	const char *path;
	const char *adapter;
	int any_base;
};

static void parse_args(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	const char *model = NULL;
	const rl_opt table[] = {
		RL_OPT_MODEL(
			&model,
			"the model directory, .safetensors, config.json or .gguf file (or give it "
			"as the operand)"),
		RL_OPT_INT('L', "layer-end", "N", &o->layer_end, 1, 1000000,
			   "layer_end for the candidate set (default floor(2N/3))"),
		RL_OPT_FLAG('j', "json", &o->json, "print one JSON object instead of text"),
		RL_OPT_FLAG('t', "tensors", &o->tensors,
			    "list every tensor (name, dtype, shape, shard, role)"),
		RL_OPT_FLAG(0, "hash", &o->hash,
			    "also print the content hash of all tensors (reads them all)"),
		RL_OPT_ADAPTER(&o->adapter),
		RL_OPT_ANY_BASE(&o->any_base),
		RL_OPT_QUIET("no messages but errors"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-info [-L N] [--json] [--tensors] [--hash] [-A ADAPTER] -m "
		"MODEL_DIR|FILE.safetensors|CONFIG.json|FILE.gguf\n"
		"rl-info [-L N] [--json] [--tensors] [--hash] [-A ADAPTER] "
		"MODEL_DIR|FILE.safetensors|CONFIG.json|FILE.gguf",
		"Describe a model directory (or one safetensors file, one config.json, or a "
		"GGUF file as rl-import would import it), validating all of it.",
		table,
		NULL,
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	if (model && i < argc)
		rl_usage("give the model once: -m %s or the operand '%s'", model, argv[i]);
	if (!model && i == argc)
		rl_usage("missing MODEL_DIR");
	if (i + (model ? 0 : 1) < argc)
		rl_usage("too many arguments");
	o->path = model ? model : argv[i];
	if (o->any_base && !o->adapter)
		rl_usage("--any-base goes with -A ADAPTER");
}

static void shape_text(int ndim, const int64_t *shape, char *buf, size_t cap)
{
	size_t k = (size_t)snprintf(buf, cap, "[");
	for (int d = 0; d < ndim && k < cap; d++)
		k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, d ? ", " : "", shape[d]);
	if (k < cap)
		snprintf(buf + k, cap - k, "]");
}

static cJSON *shape_json(int ndim, const int64_t *shape)
{
	cJSON *a = cJSON_CreateArray();
	for (int d = 0; d < ndim; d++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)shape[d]));
	return a;
}

static const char *act_name(rl_act a)
{
	return a == RL_ACT_SILU ? "silu" : a == RL_ACT_GELU ? "gelu" : "gelu_tanh";
}

static const char *rope_name(rl_rope_type r)
{
	return r == RL_ROPE_LINEAR     ? "linear"
	       : r == RL_ROPE_LLAMA3   ? "llama3"
	       : r == RL_ROPE_LONGROPE ? "longrope"
				       : "default";
}

/* One dtype name when all tensors share it, else "mixed". */
static const char *model_dtype(const rl_model *m)
{
	for (size_t i = 1; i < m->ntensors; i++)
		if (m->tensors[i].dtype != m->tensors[0].dtype)
			return "mixed";
	return m->ntensors ? rl_dtype_name(m->tensors[0].dtype) : "none";
}

static uint64_t total_params(const rl_model *m)
{
	uint64_t s = 0;
	for (size_t i = 0; i < m->ntensors; i++)
		s += m->tensors[i].numel;
	return s;
}

static const char *shard_name(const rl_model *m, int s)
{
	const char *p = m->shards[s].path, *slash = strrchr(p, '/');
	return slash ? slash + 1 : p;
}

/* The chat template the tools render by default (chat_source.h): where it
 * comes from and whether realign parses it; JSON null when the model has none. */
static cJSON *chat_template_json(const char *dir)
{
	rl_chat_source s;
	if (rl_chat_source_read(dir, &s)) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "error", rl_errmsg());
		return j;
	}
	if (!s.text) {
		rl_chat_source_free(&s);
		return cJSON_CreateNull();
	}
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "path", s.path);
	cJSON_AddNumberToObject(j, "bytes", (double)s.len);
	rl_jinja *t;
	int rc = rl_jinja_parse(s.text, s.len, s.path, &t);
	cJSON_AddBoolToObject(j, "parses", !rc);
	if (rc)
		cJSON_AddStringToObject(j, "error", rl_errmsg());
	rl_jinja_free(t);
	rl_chat_source_free(&s);
	return j;
}

static void chat_template_text(const cJSON *j)
{
	const cJSON *path = cJSON_GetObjectItem(j, "path"), *err = cJSON_GetObjectItem(j, "error");
	if (cJSON_IsNull(j))
		printf("chat_template   none (prompts need --template FILE or --raw)\n");
	else if (!path)
		printf("chat_template   unreadable: %s\n", err->valuestring);
	else if (err)
		printf("chat_template   '%s' (Jinja, %.0f bytes): realign cannot render it: %s\n",
		       path->valuestring, cJSON_GetObjectItem(j, "bytes")->valuedouble,
		       err->valuestring);
	else
		printf("chat_template   '%s' (Jinja, %.0f bytes)\n", path->valuestring,
		       cJSON_GetObjectItem(j, "bytes")->valuedouble);
}

static const char *norms_name(rl_norm_layout n)
{
	return n == RL_NORMS_SANDWICH ? "sandwich" : n == RL_NORMS_POST ? "post" : "pre";
}

static const char *qk_norm_name(rl_qk_norm q)
{
	return q == RL_QK_NORM_HEAD ? "per head" : q == RL_QK_NORM_FULL ? "whole q and k" : "none";
}

/* "4096 on layers 0-3, 8-11" style text of the per-layer windows. */
static void windows_text(const rl_config *c, char *buf, size_t cap)
{
	size_t k = (size_t)snprintf(buf, cap, "%d on layers ", c->sliding_window);
	const char *sep = "";
	for (int l = 0; l < c->n_layers && k < cap; l++) {
		if (!rl_config_layer_window(c, l))
			continue;
		int e = l;
		while (e + 1 < c->n_layers && rl_config_layer_window(c, e + 1))
			e++;
		k += (size_t)(e > l ? snprintf(buf + k, cap - k, "%s%d-%d", sep, l, e)
				    : snprintf(buf + k, cap - k, "%s%d", sep, l));
		sep = ", ";
		l = e;
	}
}

/* The architecture and hyperparameters: JSON members into j, or text. */
static void describe_config(const rl_config *c, cJSON *j)
{
	char win[2048] = "";
	if (c->sliding_window)
		windows_text(c, win, sizeof win);
	if (j) {
		cJSON_AddStringToObject(j, "architecture", c->architecture);
		cJSON_AddStringToObject(j, "model_type", c->model_type);
		cJSON_AddNumberToObject(j, "n_layers", c->n_layers);
		cJSON_AddNumberToObject(j, "hidden_size", c->hidden_size);
		cJSON_AddNumberToObject(j, "n_heads", c->n_heads);
		cJSON_AddNumberToObject(j, "n_kv_heads", c->n_kv_heads);
		cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
		cJSON_AddNumberToObject(j, "intermediate_size", c->intermediate_size);
		cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
		cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_position);
		cJSON_AddNumberToObject(j, "rms_norm_eps", c->rms_eps);
		cJSON *r = cJSON_AddObjectToObject(j, "rope");
		cJSON_AddStringToObject(r, "type", rope_name(c->rope_type));
		cJSON_AddNumberToObject(r, "theta", c->rope_theta);
		if (c->rope_type != RL_ROPE_DEFAULT)
			cJSON_AddNumberToObject(r, "factor", c->rope_factor);
		if (c->rope_local_theta > 0)
			cJSON_AddNumberToObject(r, "sliding_layers_theta", c->rope_local_theta);
		cJSON_AddNumberToObject(r, "rotary_dim",
					c->rotary_dim ? c->rotary_dim : c->head_dim);
		if (c->rope_type == RL_ROPE_LONGROPE) {
			cJSON_AddNumberToObject(r, "original_max_position_embeddings",
						c->rope_original_max_position);
			cJSON_AddNumberToObject(r, "attention_factor", c->rope_attn_factor);
		}
		if (c->rope_type == RL_ROPE_LLAMA3) {
			cJSON_AddNumberToObject(r, "low_freq_factor", c->rope_low_freq_factor);
			cJSON_AddNumberToObject(r, "high_freq_factor", c->rope_high_freq_factor);
			cJSON_AddNumberToObject(r, "original_max_position_embeddings",
						c->rope_original_max_position);
		}
		cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tie_word_embeddings);
		cJSON_AddBoolToObject(j, "qkv_bias", c->attention_bias);
		cJSON_AddBoolToObject(j, "o_bias", c->o_bias);
		cJSON_AddBoolToObject(j, "mlp_bias", c->mlp_bias);
		cJSON_AddStringToObject(j, "activation", act_name(c->act));
		cJSON_AddBoolToObject(j, "norm_plus_one", c->norm_plus_one);
		cJSON_AddBoolToObject(j, "embed_scale", c->embed_scale);
		cJSON_AddStringToObject(j, "qk_norm", qk_norm_name(c->qk_norm));
		cJSON_AddStringToObject(j, "norms", norms_name(c->norms));
		cJSON_AddBoolToObject(j, "fused_projections", c->fused_proj);
		cJSON_AddNumberToObject(j, "query_pre_attn_scalar",
					c->query_pre_attn_scalar > 0 ? c->query_pre_attn_scalar
								     : c->head_dim);
		cJSON_AddNumberToObject(j, "attn_logit_softcapping", c->attn_softcap);
		cJSON_AddNumberToObject(j, "final_logit_softcapping", c->final_softcap);
		cJSON_AddNumberToObject(j, "sliding_window", c->sliding_window);
		cJSON_AddNumberToObject(j, "sliding_window_from", c->sliding_window_from);
		cJSON *w = cJSON_AddArrayToObject(j, "layer_windows");
		for (int l = 0; l < c->n_layers; l++)
			cJSON_AddItemToArray(w, cJSON_CreateNumber(rl_config_layer_window(c, l)));
		if (c->bos_token_id >= 0)
			cJSON_AddNumberToObject(j, "bos_token_id", c->bos_token_id);
		else
			cJSON_AddNullToObject(j, "bos_token_id");
		cJSON *eos = cJSON_AddArrayToObject(j, "eos_token_ids");
		for (int i = 0; i < c->n_eos; i++)
			cJSON_AddItemToArray(eos, cJSON_CreateNumber(c->eos_token_ids[i]));
		return;
	}
	printf("architecture    %s (%s)\n", c->architecture, c->model_type);
	printf("layers          %d\n", c->n_layers);
	printf("hidden_size     %d\n", c->hidden_size);
	printf("heads           %d (kv %d, head_dim %d)\n", c->n_heads, c->n_kv_heads, c->head_dim);
	printf("intermediate    %d\n", c->intermediate_size);
	printf("vocab_size      %d\n", c->vocab_size);
	printf("max_position    %d\n", c->max_position);
	printf("rms_norm_eps    %g%s\n", c->rms_eps, c->norm_plus_one ? " (scale 1 + w)" : "");
	printf("rope            %s, theta %g", rope_name(c->rope_type), c->rope_theta);
	if (c->rope_type == RL_ROPE_LINEAR)
		printf(", factor %g", c->rope_factor);
	if (c->rope_type == RL_ROPE_LLAMA3)
		printf(", factor %g, low_freq %g, high_freq %g, original_max %d", c->rope_factor,
		       c->rope_low_freq_factor, c->rope_high_freq_factor,
		       c->rope_original_max_position);
	if (c->rope_type == RL_ROPE_LONGROPE)
		printf(", %d short and long factors, long past %d, factor %g, attention factor %g",
		       c->rope_n_factors, c->rope_original_max_position, c->rope_factor,
		       c->rope_attn_factor);
	if (c->rotary_dim && c->rotary_dim != c->head_dim)
		printf("; on %d of %d dims", c->rotary_dim, c->head_dim);
	if (c->rope_local_theta > 0)
		printf("; sliding layers: default, theta %g", c->rope_local_theta);
	printf("\n");
	printf("activation      %s\n", act_name(c->act));
	printf("biases          %s%s%s%s\n", c->attention_bias ? "q,k,v " : "",
	       c->o_bias ? "o " : "", c->mlp_bias ? "gate,up,down " : "",
	       !c->attention_bias && !c->o_bias && !c->mlp_bias ? "none" : "");
	if (c->qk_norm)
		printf("q/k norm        %s\n", qk_norm_name(c->qk_norm));
	if (c->fused_proj)
		printf("projections     fused: qkv_proj, gate_up_proj (scored and restored as "
		       "stored)\n");
	if (c->norms == RL_NORMS_SANDWICH)
		printf("norms           sandwich (before and after attention and MLP)\n");
	if (c->norms == RL_NORMS_POST)
		printf("norms           post (after attention and MLP only)\n");
	if (c->query_pre_attn_scalar > 0 || c->attn_softcap > 0) {
		printf("attention       scores x %g^-0.5",
		       c->query_pre_attn_scalar > 0 ? c->query_pre_attn_scalar : c->head_dim);
		if (c->attn_softcap > 0)
			printf(", soft-capped at %g", c->attn_softcap);
		printf("\n");
	}
	if (c->final_softcap > 0)
		printf("logits          soft-capped at %g\n", c->final_softcap);
	printf("embeddings      %s%s\n", c->tie_word_embeddings ? "tied to lm_head" : "untied",
	       c->embed_scale ? ", scaled by sqrt(hidden_size)" : "");
	if (c->sliding_window)
		printf("sliding_window  %s\n", win);
}

/* The unread keys of a model directory's config.json (none when unreadable:
 * the model opened, so it was read once). */
static void unread_of_dir(const char *dir, char *out, size_t cap)
{
	char path[4096], *text = NULL;
	size_t len = 0;
	out[0] = 0;
	snprintf(path, sizeof path, "%s/config.json", dir);
	if (rl_read_file(path, &text, &len) == RL_OK)
		rl_config_unread_keys(text, len, out, cap);
	else
		rl_error_clear();
	free(text);
}

/* The dtype the layers' matrices are stored in (what picks the kernels). */
static rl_dtype matrix_dtype(const rl_model *m)
{
	const rl_tensor *t = rl_model_get(m, 0, RL_R_Q);
	if (!t)
		t = rl_model_get(m, 0, RL_R_QKV); /* Phi-3's fused */
	return t ? t->dtype : m->lm_head ? m->lm_head->dtype : RL_DT_F32;
}

static int describe_model(const struct opts *o, const rl_model *m, const rl_merged *ad)
{
	char kern[2][256];
	const char *kinv[2]; /* rl-eval --batch-invariant's one kernel (wgemm.h) */
	for (int p = 0; p < 2; p++) {
		rl_wgemm_describe((rl_precision)p, matrix_dtype(m), kern[p], sizeof kern[p]);
		kinv[p] = rl_wgemm_kernel_name(
			rl_wgemm_pick((rl_precision)p, matrix_dtype(m), INT32_MAX));
	}
	char unread[1024];
	unread_of_dir(m->dir, unread, sizeof unread);
	const rl_config *c = &m->cfg;
	int L = o->layer_end ? o->layer_end : rl_default_layer_end(c->n_layers);
	if (o->layer_end > c->n_layers)
		rl_usage("-L %d exceeds the model's %d layers", o->layer_end, c->n_layers);
	char id[17], hash[17] = "";
	rl_model_shape_id(m, id);
	if (o->hash)
		rl_model_content_hash(m, 0, hash);
	uint64_t P = rl_model_param_count(m);
	size_t ncand = rl_model_candidates(m, L, NULL, 0);
	uint64_t cnumel = rl_model_candidate_numel(m, L);
	if (o->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "path", m->dir);
		describe_config(c, j);
		cJSON_AddStringToObject(j, "unread_keys", unread);
		cJSON_AddStringToObject(j, "dtype", model_dtype(m));
		cJSON_AddNumberToObject(j, "n_shards", m->nshards);
		cJSON_AddNumberToObject(j, "n_tensors", (double)m->ntensors);
		cJSON_AddNumberToObject(j, "n_params", (double)total_params(m));
		cJSON_AddNumberToObject(j, "P", (double)P);
		cJSON_AddNumberToObject(j, "layer_end", L);
		cJSON_AddNumberToObject(j, "n_candidates", (double)ncand);
		cJSON_AddNumberToObject(j, "candidate_numel", (double)cnumel);
		cJSON_AddStringToObject(j, "shape_id", id);
		cJSON_AddStringToObject(j, "cpu", rl_cpu_describe());
		cJSON *k = cJSON_AddObjectToObject(j, "kernels");
		for (int p = 0; p < 2; p++)
			cJSON_AddStringToObject(k, rl_precision_name((rl_precision)p), kern[p]);
		cJSON *ki = cJSON_AddObjectToObject(j, "kernels_batch_invariant");
		for (int p = 0; p < 2; p++)
			cJSON_AddStringToObject(ki, rl_precision_name((rl_precision)p), kinv[p]);
		cJSON_AddStringToObject(j, "attention_kernel", rl_attn_row_kernel(c->head_dim));
		cJSON_AddItemToObject(j, "chat_template", chat_template_json(m->dir));
		if (o->hash)
			cJSON_AddStringToObject(j, "content_hash", hash);
		if (ad) {
			cJSON *a = cJSON_AddObjectToObject(j, "adapter");
			cJSON_AddStringToObject(a, "path", o->adapter);
			cJSON_AddNumberToObject(a, "r", ad->r);
			cJSON_AddNumberToObject(a, "alpha", ad->alpha);
			cJSON_AddNumberToObject(a, "scale", ad->scale);
			cJSON_AddBoolToObject(a, "rslora", ad->rslora);
			cJSON_AddNumberToObject(a, "n_merged", (double)ad->n);
			cJSON_AddNumberToObject(a, "n_params", (double)ad->params);
		}
		if (o->tensors) {
			cJSON *ts = cJSON_AddArrayToObject(j, "tensors");
			for (size_t i = 0; i < m->ntensors; i++) {
				const rl_tensor *t = &m->tensors[i];
				cJSON *e = cJSON_CreateObject();
				cJSON_AddStringToObject(e, "name", t->name);
				cJSON_AddStringToObject(e, "dtype", rl_dtype_name(t->dtype));
				cJSON_AddItemToObject(e, "shape", shape_json(t->ndim, t->shape));
				cJSON_AddStringToObject(e, "shard", shard_name(m, t->shard));
				cJSON_AddNumberToObject(e, "layer", t->layer);
				cJSON_AddStringToObject(e, "role", rl_role_name(t->role));
				cJSON_AddBoolToObject(e, "candidate",
						      rl_role_is_candidate(t->role) &&
							      t->layer < L);
				cJSON_AddItemToArray(ts, e);
			}
		}
		int rc = rl_jsonl_write(stdout, j);
		cJSON_Delete(j);
		return rc;
	}
	printf("path            %s\n", m->dir);
	describe_config(c, NULL);
	if (unread[0])
		printf("unread keys     %s (realign does not know them; ignored)\n", unread);
	printf("dtype           %s\n", model_dtype(m));
	printf("shards          %d\n", m->nshards);
	printf("tensors         %zu (%" PRIu64 " parameters)\n", m->ntensors, total_params(m));
	printf("P               %" PRIu64 " (decoder layers, norms included)\n", P);
	printf("layer_end       %d%s\n", L, o->layer_end ? "" : " (default floor(2N/3))");
	printf("candidates      %zu tensors, %" PRIu64 " elements (%.2f%% of P)\n", ncand, cnumel,
	       P ? 100.0 * (double)cnumel / (double)P : 0.0);
	printf("shape_id        %s\n", id);
	printf("cpu             %s\n", rl_cpu_describe());
	for (int p = 0; p < 2; p++)
		printf("kernels %s    %s (batch-invariant: %s)\n",
		       rl_precision_name((rl_precision)p), kern[p], kinv[p]);
	printf("attention       %s (a decoding step; a prompt's: BLAS)\n",
	       rl_attn_row_kernel(c->head_dim));
	cJSON *ct = chat_template_json(m->dir);
	chat_template_text(ct);
	cJSON_Delete(ct);
	if (o->hash)
		printf("content_hash    %s%s\n", hash, ad ? " (the adapter merged)" : "");
	if (ad)
		printf("adapter         %s: LoRA r %d, alpha %g, scale %g%s, %zu tensors merged "
		       "(%" PRIu64 " LoRA parameters)\n",
		       o->adapter, ad->r, ad->alpha, (double)ad->scale,
		       ad->rslora ? " (rsLoRA)" : "", ad->n, ad->params);
	if (o->tensors) {
		printf("\n");
		for (size_t i = 0; i < m->ntensors; i++) {
			const rl_tensor *t = &m->tensors[i];
			char sh[256];
			shape_text(t->ndim, t->shape, sh, sizeof sh);
			printf("%s\t%s\t%s\t%s%s\n", t->name, rl_dtype_name(t->dtype), sh,
			       shard_name(m, t->shard),
			       rl_role_is_candidate(t->role) && t->layer < L ? "\tcandidate" : "");
		}
	}
	return RL_OK;
}

/* A config.json alone: what realign would run, P from the configuration. */
static int describe_config_file(const struct opts *o, const char *path)
{
	if (o->tensors || o->hash)
		rl_usage("--tensors and --hash apply to model directories");
	char *text = NULL, unread[1024] = "";
	size_t len = 0;
	rl_config c;
	int rc = rl_read_file(path, &text, &len);
	if (!rc)
		rc = rl_config_parse(&c, text, len, path);
	if (!rc)
		rl_config_unread_keys(text, len, unread, sizeof unread);
	free(text);
	if (rc)
		return rc;
	if (o->layer_end > c.n_layers)
		rl_usage("-L %d exceeds the model's %d layers", o->layer_end, c.n_layers);
	int L = o->layer_end ? o->layer_end : rl_default_layer_end(c.n_layers);
	uint64_t P = rl_config_param_count(&c);
	if (o->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "path", path);
		describe_config(&c, j);
		cJSON_AddStringToObject(j, "unread_keys", unread);
		cJSON_AddNumberToObject(j, "P", (double)P);
		cJSON_AddNumberToObject(j, "layer_end", L);
		rc = rl_jsonl_write(stdout, j);
		cJSON_Delete(j);
		return rc;
	}
	printf("path            %s\n", path);
	describe_config(&c, NULL);
	if (unread[0])
		printf("unread keys     %s (realign does not know them; ignored)\n", unread);
	printf("P               %" PRIu64 " (decoder layers, norms included)\n", P);
	printf("layer_end       %d%s\n", L, o->layer_end ? "" : " (default floor(2N/3))");
	return RL_OK;
}

/* 1 if path starts with GGUF's magic. */
static int is_gguf(const char *path)
{
	char magic[4] = {0};
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return 0;
	size_t n = fread(magic, 1, sizeof magic, fp);
	fclose(fp);
	return n == 4 && memcmp(magic, "GGUF", 4) == 0;
}

/* A GGUF file: validated as rl-import reads it, and what it would write. */
static int describe_gguf(const struct opts *o, const char *path)
{
	if (o->hash)
		rl_usage("--hash applies to model directories");
	rl_gguf g;
	rl_gguf_hf m = {0};
	int rc = rl_gguf_open(&g, path);
	if (rc)
		return rc;
	/* The tokenizer files too, as rl-import builds them (in memory). */
	rl_gguf_tok_files tf = {0};
	if ((rc = rl_gguf_hf_map(&g, &m)) ||
	    (rc = rl_gguf_tokenizer(&g, m.cfg.max_position, &tf))) {
		rl_gguf_hf_free(&m);
		rl_gguf_close(&g);
		return rc;
	}
	rl_gguf_tok_files_free(&tf);
	const rl_config *c = &m.cfg;
	if (o->layer_end > c->n_layers)
		rl_usage("-L %d exceeds the model's %d layers", o->layer_end, c->n_layers);
	int L = o->layer_end ? o->layer_end : rl_default_layer_end(c->n_layers);
	uint64_t P = rl_config_param_count(c), bytes = 0;
	/* Tensors and bytes per ggml type, in type-id order. */
	uint64_t count[64] = {0}, tbytes[64] = {0};
	for (size_t i = 0; i < g.ntensors; i++) {
		uint32_t t = g.tensors[i]->type < 64 ? g.tensors[i]->type : 63;
		count[t]++;
		tbytes[t] += g.tensors[i]->nbytes;
		bytes += g.tensors[i]->nbytes;
	}
	/* Optional keys: absent (or not strings) print as absent. */
	char *name = NULL, *tmpl = NULL, *arch = NULL;
	rl_gguf_get_cstr(&g, "general.name", &name);
	rl_gguf_get_cstr(&g, "tokenizer.chat_template", &tmpl);
	rl_gguf_get_cstr(&g, "general.architecture", &arch);
	if (o->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "path", path);
		cJSON_AddNumberToObject(j, "gguf_version", g.files[0].version);
		cJSON_AddNumberToObject(j, "files", (double)g.nfiles);
		if (arch)
			cJSON_AddStringToObject(j, "gguf_architecture", arch);
		if (name)
			cJSON_AddStringToObject(j, "name", name);
		describe_config(c, j);
		cJSON_AddNumberToObject(j, "n_tensors", (double)g.ntensors);
		cJSON_AddNumberToObject(j, "n_params", (double)m.numel);
		cJSON_AddNumberToObject(j, "data_bytes", (double)bytes);
		cJSON *ty = cJSON_AddObjectToObject(j, "tensor_types");
		for (uint32_t t = 0; t < 64; t++)
			if (count[t])
				cJSON_AddNumberToObject(
					ty, rl_ggml_type_name(t) ? rl_ggml_type_name(t) : "?",
					(double)count[t]);
		cJSON_AddNumberToObject(j, "chat_template_bytes", tmpl ? (double)strlen(tmpl) : 0);
		cJSON_AddNumberToObject(j, "P", (double)P);
		cJSON_AddNumberToObject(j, "layer_end", L);
		if (o->tensors) {
			cJSON *ts = cJSON_AddArrayToObject(j, "tensors");
			for (size_t i = 0; i < m.n; i++) {
				const rl_gguf_hf_tensor *t = &m.t[i];
				cJSON *e = cJSON_CreateObject();
				cJSON_AddStringToObject(e, "name", t->name);
				cJSON_AddStringToObject(e, "gguf_name", t->src->name);
				const char *tn = rl_ggml_type_name(t->src->type);
				cJSON_AddStringToObject(e, "type", tn ? tn : "?");
				cJSON_AddItemToObject(e, "shape", shape_json(t->ndim, t->shape));
				cJSON_AddItemToArray(ts, e);
			}
		}
		rc = rl_jsonl_write(stdout, j);
		cJSON_Delete(j);
	} else {
		printf("path            %s%s\n", path, g.nfiles > 1 ? " (a split model)" : "");
		if (g.nfiles > 1)
			printf("files           %zu\n", g.nfiles);
		printf("format          GGUF v%u (import it: rl-import FILE -o DIR)\n",
		       g.files[0].version);
		if (name)
			printf("name            %s\n", name);
		if (arch)
			printf("gguf arch       %s\n", arch);
		describe_config(c, NULL);
		printf("tensors         %zu (%" PRIu64 " parameters), %" PRIu64 " bytes:",
		       g.ntensors, m.numel, bytes);
		for (uint32_t t = 0; t < 64; t++)
			if (count[t])
				printf(" %" PRIu64 " %s (%.1f MiB)", count[t],
				       rl_ggml_type_name(t) ? rl_ggml_type_name(t) : "?",
				       (double)tbytes[t] / 1048576.0);
		printf("\n");
		if (tmpl)
			printf("chat template   %zu bytes (tokenizer.chat_template)\n",
			       strlen(tmpl));
		else
			printf("chat template   none\n");
		printf("P               %" PRIu64 " (decoder layers, norms included)\n", P);
		printf("layer_end       %d%s\n", L, o->layer_end ? "" : " (default floor(2N/3))");
		if (o->tensors) {
			printf("\n");
			for (size_t i = 0; i < m.n; i++) {
				const rl_gguf_hf_tensor *t = &m.t[i];
				char sh[256];
				shape_text(t->ndim, t->shape, sh, sizeof sh);
				const char *tn = rl_ggml_type_name(t->src->type);
				printf("%s\t%s\t%s\t%s\n", t->name, tn ? tn : "?", sh,
				       t->src->name);
			}
		}
	}
	free(name);
	free(tmpl);
	free(arch);
	rl_gguf_hf_free(&m);
	rl_gguf_close(&g);
	return rc;
}

static int describe_file(const struct opts *o, const rl_st_file *f)
{
	if (o->layer_end || o->hash)
		rl_usage("-L and --hash apply to model directories");
	uint64_t data = f->size - f->data_start;
	if (o->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "path", f->path);
		cJSON_AddNumberToObject(j, "header_bytes", (double)(f->data_start - 8));
		cJSON_AddNumberToObject(j, "data_bytes", (double)data);
		cJSON_AddNumberToObject(j, "n_tensors", (double)f->ntensors);
		cJSON *meta = cJSON_AddObjectToObject(j, "metadata");
		for (size_t i = 0; i < f->nmeta; i++)
			cJSON_AddStringToObject(meta, f->meta_keys[i], f->meta_vals[i]);
		if (o->tensors) {
			cJSON *ts = cJSON_AddArrayToObject(j, "tensors");
			for (size_t i = 0; i < f->ntensors; i++) {
				const rl_st_tensor *t = &f->tensors[i];
				cJSON *e = cJSON_CreateObject();
				cJSON_AddStringToObject(e, "name", t->name);
				cJSON_AddStringToObject(e, "dtype", rl_dtype_name(t->dtype));
				cJSON_AddItemToObject(e, "shape", shape_json(t->ndim, t->shape));
				cJSON_AddNumberToObject(e, "offset", (double)t->offset);
				cJSON_AddNumberToObject(e, "nbytes", (double)t->nbytes);
				cJSON_AddItemToArray(ts, e);
			}
		}
		int rc = rl_jsonl_write(stdout, j);
		cJSON_Delete(j);
		return rc;
	}
	printf("path            %s\n", f->path);
	printf("header          %" PRIu64 " bytes\n", f->data_start - 8);
	printf("data            %" PRIu64 " bytes\n", data);
	printf("tensors         %zu\n", f->ntensors);
	for (size_t i = 0; i < f->nmeta; i++)
		printf("metadata        %s = %s\n", f->meta_keys[i], f->meta_vals[i]);
	if (o->tensors) {
		printf("\n");
		for (size_t i = 0; i < f->ntensors; i++) {
			const rl_st_tensor *t = &f->tensors[i];
			char sh[256];
			shape_text(t->ndim, t->shape, sh, sizeof sh);
			printf("%s\t%s\t%s\n", t->name, rl_dtype_name(t->dtype), sh);
		}
	}
	return RL_OK;
}

int main(int argc, char **argv)
{
	rl_cli_init("rl-info", argc, argv);
	struct opts o;
	parse_args(&o, argc, argv);
	struct stat st;
	int rc;
	size_t plen = strlen(o.path);
	if (stat(o.path, &st) == 0 && S_ISREG(st.st_mode) && plen >= 5 &&
	    strcmp(o.path + plen - 5, ".json") == 0) {
		if (o.adapter)
			rl_usage("-A applies to model directories");
		rc = describe_config_file(&o, o.path);
	} else if (stat(o.path, &st) == 0 && S_ISREG(st.st_mode) && is_gguf(o.path)) {
		if (o.adapter)
			rl_usage("-A applies to model directories");
		rc = describe_gguf(&o, o.path);
	} else if (stat(o.path, &st) == 0 && S_ISREG(st.st_mode)) {
		if (o.adapter)
			rl_usage("-A applies to model directories");
		rl_st_file f;
		if ((rc = rl_st_open(&f, o.path, RL_ST_READ)))
			rl_die_err(rc);
		rc = describe_file(&o, &f);
		rl_st_close(&f);
	} else {
		rl_model m;
		if ((rc = rl_model_open(&m, o.path, RL_MODEL_READ)))
			rl_die_err(rc);
		rl_merged ad = {0};
		if (o.adapter && (rc = rl_merge_adapter_dir(&m, o.adapter, !o.any_base, &ad)))
			rl_die_err(rc);
		rc = describe_model(&o, &m, o.adapter ? &ad : NULL);
		rl_model_close(&m);
		rl_merged_free(&ad);
	}
	if (rc)
		rl_die_err(rc);
	return rl_cli_exit();
}
