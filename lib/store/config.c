/* config.c — config.json as transformers (5.x) reads it, for every architecture
 * realign supports (config.h).
 *
 * Defaults for absent keys are the configuration classes' own (LlamaConfig,
 * MistralConfig, Qwen2Config, GemmaConfig, Qwen3Config, Gemma2Config), including
 * their __post_init__
 * rules; where an explicit null means something else than absence (e.g.
 * Mistral: absent num_key_value_heads is 8, null is num_attention_heads), the
 * difference is kept. Anything that would make transformers compute something
 * realign does not (rope types other than default/linear/llama3, partial
 * rotary factors, unknown activations) is refused rather than ignored.
 *
 * config.json is parsed by rl_json_parse (json.h): UTF-8, no NUL, no key
 * twice (Python's json keeps the LAST of two equal keys and cJSON the first,
 * so a file with duplicates means two different models).
 */
#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "core/inputs.h"
#include "core/json.h"
#include "core/jsonl.h"
#include "store/config.h"

static const struct arch_info {
	rl_arch arch;
	const char *cls, *model_type;
	/* transformers' defaults for absent keys */
	int vocab, hidden, inter, layers, heads;
	int kv_absent; /* 0: = num_attention_heads */
	int head_dim;  /* 0: hidden_size / num_attention_heads */
	int max_pos;
	int bos, eos; /* -1: None */
	int tie;
	int sliding; /* default sliding_window (0: None) */
	const char *act;
} archs[] = {
	{RL_ARCH_LLAMA, "LlamaForCausalLM", "llama", 32000, 4096, 11008, 32, 32, 0, 0, 2048, 1, 2,
	 0, 0, "silu"},
	{RL_ARCH_MISTRAL, "MistralForCausalLM", "mistral", 32000, 4096, 14336, 32, 32, 8, 0,
	 4096 * 32, 1, 2, 0, 4096, "silu"},
	{RL_ARCH_QWEN2, "Qwen2ForCausalLM", "qwen2", 151936, 4096, 22016, 32, 32, 32, 0, 32768, -1,
	 -1, 0, 4096, "silu"},
	{RL_ARCH_GEMMA, "GemmaForCausalLM", "gemma", 256000, 3072, 24576, 28, 16, 16, 256, 8192, 2,
	 1, 1, 0, "gelu_pytorch_tanh"},
	{RL_ARCH_QWEN3, "Qwen3ForCausalLM", "qwen3", 151936, 4096, 22016, 32, 32, 32, 128, 32768,
	 -1, -1, 0, 4096, "silu"},
	{RL_ARCH_GEMMA2, "Gemma2ForCausalLM", "gemma2", 256000, 2304, 9216, 26, 8, 4, 256, 8192, 2,
	 1, 1, 4096, "gelu_pytorch_tanh"},
	{RL_ARCH_GEMMA3, "Gemma3ForCausalLM", "gemma3_text", 262208, 2304, 9216, 26, 8, 4, 256,
	 131072, 2, 1, 1, 4096, "gelu_pytorch_tanh"},
	{RL_ARCH_OLMO2, "Olmo2ForCausalLM", "olmo2", 50304, 4096, 11008, 32, 32, 0, 0, 2048, -1,
	 50279, 0, 0, "silu"},
	{RL_ARCH_PHI3, "Phi3ForCausalLM", "phi3", 32064, 3072, 8192, 32, 32, 0, 0, 4096, 1, 32000,
	 0, 0, "silu"},
};

#define ARCH_LIST                                                                                  \
	"LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GemmaForCausalLM, "               \
	"Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Olmo2ForCausalLM, "               \
	"Phi3ForCausalLM"
#define MODEL_TYPE_LIST "llama, mistral, qwen2, gemma, qwen3, gemma2, gemma3_text, olmo2, phi3"

#define NARCH (sizeof archs / sizeof archs[0])

const char *rl_arch_name(rl_arch a)
{
	for (size_t i = 0; i < NARCH; i++)
		if (archs[i].arch == a)
			return archs[i].cls;
	return "?";
}

/* ---- reading helpers ---- */

/* The member named key, or NULL when absent. JSON null is returned as is. */
static const cJSON *get(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(o, key);
}

static int is_absent(const cJSON *v)
{
	return !v || cJSON_IsNull(v);
}

/* The getters: an absent key leaves *out unchanged (the class default); JSON
 * null is refused like any other wrong type, because transformers' strict
 * dataclasses refuse None for a field not declared Optional. The Optional
 * fields (num_key_value_heads of Llama/Qwen2, head_dim, sliding_window, token
 * ids, rope_scaling) are handled by their callers before these run. */

/* An integer in [lo, hi]. */
static int get_int(const cJSON *o, const char *key, long long lo, long long hi, int *out,
		   const char *path)
{
	const cJSON *v = get(o, key);
	if (!v)
		return RL_OK;
	double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
	if (!cJSON_IsNumber(v) || d != floor(d) || d < (double)lo || d > (double)hi)
		return rl_error(RL_EDATA, "'%s': \"%s\" must be an integer in [%lld, %lld]", path,
				key, lo, hi);
	*out = (int)d;
	return RL_OK;
}

static int get_double(const cJSON *o, const char *key, double lo, double *out, const char *path)
{
	const cJSON *v = get(o, key);
	if (!v)
		return RL_OK;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || !(v->valuedouble >= lo))
		return rl_error(RL_EDATA, "'%s': \"%s\" must be a number >= %g", path, key, lo);
	*out = v->valuedouble;
	return RL_OK;
}

static int get_bool(const cJSON *o, const char *key, int *out, const char *path)
{
	const cJSON *v = get(o, key);
	if (!v)
		return RL_OK;
	if (!cJSON_IsBool(v))
		return rl_error(RL_EDATA, "'%s': \"%s\" must be true or false", path, key);
	*out = cJSON_IsTrue(v) ? 1 : 0;
	return RL_OK;
}

static int parse_act(const char *s, rl_arch arch, rl_act *out)
{
	if (arch == RL_ARCH_GEMMA && strcmp(s, "gelu") == 0) {
		/* GemmaConfig.__post_init__: the official releases say "gelu" but
		 * mean the tanh approximation */
		*out = RL_ACT_GELU_TANH;
		return 0;
	}
	if (strcmp(s, "silu") == 0 || strcmp(s, "swish") == 0)
		*out = RL_ACT_SILU;
	else if (strcmp(s, "gelu") == 0)
		*out = RL_ACT_GELU;
	else if (strcmp(s, "gelu_pytorch_tanh") == 0 || strcmp(s, "gelu_new") == 0)
		*out = RL_ACT_GELU_TANH;
	else
		return -1;
	return 0;
}

/* One RoPE's parameters: the dict rs (rope_scaling or rope_parameters, or
 * one layer type's entry of it; NULL: none) named rs_key, over root's
 * top-level theta_key (else default_theta) and partial_rotary_factor. */
static int parse_rope_spec(rl_config *c, const cJSON *rs, const char *rs_key, const cJSON *root,
			   const char *theta_key, double default_theta, const char *path)
{
	int rc;
	if (!is_absent(rs) && !cJSON_IsObject(rs))
		return rl_error(RL_EDATA, "'%s': \"%s\" must be an object or null", path, rs_key);
	if (is_absent(rs))
		rs = NULL;
	c->rope_theta = default_theta;
	if ((rc = get_double(root, theta_key, 0, &c->rope_theta, path)))
		return rc;
	c->rope_type = RL_ROPE_DEFAULT;
	c->rope_factor = 1.0;
	c->rope_low_freq_factor = 0;
	c->rope_high_freq_factor = 0;
	c->rope_original_max_position = 0;
	double prf = 1.0;
	if ((rc = get_double(root, "partial_rotary_factor", 0, &prf, path)))
		return rc;
	if (!rs)
		goto check;
	for (const cJSON *k = rs->child; k; k = k->next) {
		if (cJSON_IsObject(k))
			return rl_error(RL_EDATA,
					"'%s': per-layer-type \"%s\" ('%s') are not supported",
					path, rs_key, k->string);
	}
	if ((rc = get_double(rs, "rope_theta", 0, &c->rope_theta, path)))
		return rc;
	if ((rc = get_double(rs, "partial_rotary_factor", 0, &prf, path)))
		return rc;
	const cJSON *t = get(rs, "rope_type");
	if (!t)
		t = get(rs, "type");
	const char *type = "default";
	if (t) {
		if (!cJSON_IsString(t))
			return rl_error(RL_EDATA, "'%s': %s: \"rope_type\" must be a string", path,
					rs_key);
		type = t->valuestring;
	}
	if (strcmp(type, "default") == 0) {
		c->rope_type = RL_ROPE_DEFAULT;
	} else if (strcmp(type, "linear") == 0) {
		c->rope_type = RL_ROPE_LINEAR;
		if (!get(rs, "factor"))
			return rl_error(RL_EDATA, "'%s': %s: linear rope needs \"factor\"", path,
					rs_key);
		if ((rc = get_double(rs, "factor", 0, &c->rope_factor, path)))
			return rc;
		if (!(c->rope_factor > 0))
			return rl_error(RL_EDATA, "'%s': %s: \"factor\" must be > 0", path, rs_key);
	} else if (strcmp(type, "llama3") == 0) {
		c->rope_type = RL_ROPE_LLAMA3;
		static const char *need[] = {"factor", "low_freq_factor", "high_freq_factor"};
		for (int i = 0; i < 3; i++)
			if (is_absent(get(rs, need[i])))
				return rl_error(RL_EDATA, "'%s': %s: llama3 rope needs \"%s\"",
						path, rs_key, need[i]);
		if ((rc = get_double(rs, "factor", 0, &c->rope_factor, path)) ||
		    (rc = get_double(rs, "low_freq_factor", 0, &c->rope_low_freq_factor, path)) ||
		    (rc = get_double(rs, "high_freq_factor", 0, &c->rope_high_freq_factor, path)))
			return rc;
		if (!(c->rope_factor > 0) || !(c->rope_low_freq_factor > 0) ||
		    !(c->rope_high_freq_factor > c->rope_low_freq_factor))
			return rl_error(
				RL_EDATA,
				"'%s': %s: llama3 rope needs factor > 0 and high_freq_factor "
				"> low_freq_factor > 0",
				path, rs_key);
		/* a top-level original_max_position_embeddings wins, else the
		 * dict's, else max_position_embeddings (standardize_rope_params) */
		c->rope_original_max_position = c->max_position;
		if ((rc = get_int(rs, "original_max_position_embeddings", 1, INT_MAX,
				  &c->rope_original_max_position, path)) ||
		    (rc = get_int(root, "original_max_position_embeddings", 1, INT_MAX,
				  &c->rope_original_max_position, path)))
			return rc;
	} else {
		return rl_error(RL_EDATA,
				"'%s': rope type '%s' is not supported (realign supports default, "
				"linear, llama3)",
				path, type);
	}
check:
	if (prf != 1.0)
		return rl_error(RL_EDATA, "'%s': partial_rotary_factor %g is not supported", path,
				prf);
	if (!(c->rope_theta > 0))
		return rl_error(RL_EDATA, "'%s': \"rope_theta\" must be > 0", path);
	return RL_OK;
}

static int parse_rope(rl_config *c, const cJSON *root, const char *path)
{
	/* transformers 5: rope_scaling (legacy) wins when set, else rope_parameters */
	const cJSON *rs = get(root, "rope_scaling");
	const char *rs_key = "rope_scaling";
	if (is_absent(rs) || (cJSON_IsObject(rs) && !rs->child)) {
		rs = get(root, "rope_parameters");
		rs_key = "rope_parameters";
	}
	return parse_rope_spec(c, rs, rs_key, root, "rope_theta", 10000.0, path);
}

/* A longrope factor list of n numbers into out. */
static int get_factors(const cJSON *rs, const char *key, int n, float *out, const char *path)
{
	const cJSON *a = get(rs, key);
	if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
		return rl_error(
			RL_EDATA,
			"'%s': rope_scaling: longrope needs \"%s\", a list of rotary_dim / 2 "
			"(%d) numbers",
			path, key, n);
	int i = 0;
	for (const cJSON *e = a->child; e; e = e->next, i++) {
		if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || !(e->valuedouble > 0))
			return rl_error(RL_EDATA, "'%s': rope_scaling: \"%s\"[%d] must be > 0",
					path, key, i);
		out[i] = (float)e->valuedouble;
	}
	return RL_OK;
}

/* Phi-3's RoPE (Phi3Config.convert_rope_params_to_dict, _compute_longrope_
 * parameters): rope_scaling, else rope_parameters; default or longrope ("su",
 * "yarn"); partial_rotary_factor from the dict, else the top level. */
static int parse_phi3_rope(rl_config *c, const cJSON *root, const char *path)
{
	int rc;
	const cJSON *rs = get(root, "rope_scaling");
	if (is_absent(rs) || (cJSON_IsObject(rs) && !rs->child))
		rs = get(root, "rope_parameters");
	if (!is_absent(rs) && !cJSON_IsObject(rs))
		return rl_error(RL_EDATA, "'%s': \"rope_scaling\" must be an object or null", path);
	if (is_absent(rs))
		rs = NULL;
	double prf = 1.0;
	c->rope_theta = 10000.0;
	c->rope_type = RL_ROPE_DEFAULT;
	if ((rc = get_double(root, "rope_theta", 0, &c->rope_theta, path)) ||
	    (rc = get_double(root, "partial_rotary_factor", 0, &prf, path)) ||
	    (rs && (rc = get_double(rs, "rope_theta", 0, &c->rope_theta, path))) ||
	    (rs && (rc = get_double(rs, "partial_rotary_factor", 0, &prf, path))))
		return rc;
	if (!(c->rope_theta > 0))
		return rl_error(RL_EDATA, "'%s': \"rope_theta\" must be > 0", path);
	/* (the product is cast only in range: a huge factor is no int) */
	c->rotary_dim = prf > 0 && prf <= 1 ? (int)(c->head_dim * prf) : 0;
	if (!(prf > 0 && prf <= 1) || c->rotary_dim < 2 || c->rotary_dim % 2)
		return rl_error(RL_EDATA,
				"'%s': partial_rotary_factor %g of head_dim %d gives rotary_dim %d "
				"(it must be even, 2..head_dim)",
				path, prf, c->head_dim, c->rotary_dim);
	const cJSON *t = rs ? get(rs, "rope_type") : NULL;
	if (rs && !t)
		t = get(rs, "type");
	if (t && !cJSON_IsString(t))
		return rl_error(RL_EDATA, "'%s': rope_scaling: \"rope_type\" must be a string",
				path);
	const char *type = t ? t->valuestring : "default";
	if (strcmp(type, "default") == 0)
		return RL_OK;
	if (strcmp(type, "longrope") && strcmp(type, "su") && strcmp(type, "yarn"))
		return rl_error(RL_EDATA,
				"'%s': rope type '%s' is not supported (Phi-3 has default and "
				"longrope)",
				path, type);
	c->rope_type = RL_ROPE_LONGROPE;
	c->rope_n_factors = c->rotary_dim / 2;
	if (c->rope_n_factors > RL_MAX_ROPE_FACTORS)
		return rl_error(RL_EDATA, "'%s': rotary_dim %d is too large", path, c->rotary_dim);
	/* the top-level original_max_position_embeddings wins (standardize_rope_params) */
	if ((rc = get_int(rs, "original_max_position_embeddings", 1, INT_MAX,
			  &c->rope_original_max_position, path)) ||
	    (rc = get_int(root, "original_max_position_embeddings", 1, INT_MAX,
			  &c->rope_original_max_position, path)) ||
	    (rc = get_factors(rs, "short_factor", c->rope_n_factors, c->rope_short, path)) ||
	    (rc = get_factors(rs, "long_factor", c->rope_n_factors, c->rope_long, path)))
		return rc;
	double orig = c->rope_original_max_position;
	c->rope_factor = c->max_position / orig;
	if ((rc = get_double(rs, "factor", 0, &c->rope_factor, path)))
		return rc;
	c->rope_attn_factor = c->rope_factor <= 1 ? 1.0 : sqrt(1 + log(c->rope_factor) / log(orig));
	if ((rc = get_double(rs, "attention_factor", 0, &c->rope_attn_factor, path)))
		return rc;
	return RL_OK;
}

/* Gemma 3's two RoPEs: the global one (full_attention layers; theta default
 * 1e6, rope_scaling applies to it) and the local one (sliding_attention
 * layers; theta rope_local_base_freq, default 1e4, no scaling). transformers 5
 * writes rope_parameters nested by layer type instead. */
static int parse_gemma3_rope(rl_config *c, const cJSON *root, const char *path)
{
	int rc;
	const cJSON *rp = get(root, "rope_parameters"), *rs = get(root, "rope_scaling");
	c->rope_local_theta = 10000.0;
	if (is_absent(rp) || (cJSON_IsObject(rp) && !rp->child)) {
		if ((rc = parse_rope_spec(c, rs, "rope_scaling", root, "rope_theta", 1e6, path)) ||
		    (rc = get_double(root, "rope_local_base_freq", 0, &c->rope_local_theta, path)))
			return rc;
		return c->rope_local_theta > 0
			       ? RL_OK
			       : rl_error(RL_EDATA, "'%s': \"rope_local_base_freq\" must be > 0",
					  path);
	}
	if (!cJSON_IsObject(rp))
		return rl_error(RL_EDATA, "'%s': \"rope_parameters\" must be an object or null",
				path);
	for (const cJSON *k = rp->child; k; k = k->next)
		if (strcmp(k->string, "full_attention") && strcmp(k->string, "sliding_attention"))
			return rl_error(RL_EDATA,
					"'%s': \"rope_parameters\" of Gemma 3 holds one entry per "
					"layer type; '%s' is not one",
					path, k->string);
	if (!is_absent(rs))
		return rl_error(
			RL_EDATA,
			"'%s': both \"rope_scaling\" and per-layer-type \"rope_parameters\"", path);
	if ((rc = parse_rope_spec(c, get(rp, "full_attention"), "rope_parameters.full_attention",
				  root, "rope_theta", 1e6, path)))
		return rc;
	rl_config local = *c;
	const cJSON *sl = get(rp, "sliding_attention");
	if ((rc = parse_rope_spec(&local, sl, "rope_parameters.sliding_attention", root,
				  "rope_local_base_freq", 1e4, path)))
		return rc;
	if (local.rope_type != RL_ROPE_DEFAULT)
		return rl_error(RL_EDATA,
				"'%s': rope_parameters.sliding_attention: rope scaling on the "
				"sliding layers is not supported",
				path);
	c->rope_local_theta = local.rope_theta;
	return RL_OK;
}

/* layer_types: one "full_attention" or "sliding_attention" per layer, in any
 * order, into c->sliding_layers. Any other type is refused by name: realign
 * would not attend as transformers does. */
static int parse_layer_types(rl_config *c, const cJSON *lt, const char *path)
{
	if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->n_layers)
		return rl_error(RL_EDATA,
				"'%s': \"layer_types\" must be an array of num_hidden_layers (%d) "
				"strings",
				path, c->n_layers);
	if (c->n_layers > RL_MAX_LAYER_TYPES)
		return rl_error(RL_EDATA, "'%s': \"layer_types\" of more than %d layers", path,
				RL_MAX_LAYER_TYPES);
	memset(c->sliding_layers, 0, sizeof c->sliding_layers);
	int i = 0;
	for (const cJSON *e = lt->child; e; e = e->next, i++) {
		if (cJSON_IsString(e) && strcmp(e->valuestring, "sliding_attention") == 0)
			c->sliding_layers[i / 8] |= (unsigned char)(1u << (i % 8));
		else if (!cJSON_IsString(e) || strcmp(e->valuestring, "full_attention") != 0)
			return rl_error(RL_EDATA,
					"'%s': \"layer_types\"[%d] '%s' is not supported (realign "
					"supports full_attention, sliding_attention)",
					path, i, cJSON_IsString(e) ? e->valuestring : "?");
	} /* a run of sliding layers to the end is max_window_layers' rule (Qwen2
	 * and Qwen3 write it so) */
	int first = c->n_layers, suffix = c->arch == RL_ARCH_QWEN2 || c->arch == RL_ARCH_QWEN3;
	for (int l = 0; l < c->n_layers; l++) {
		int sl = (c->sliding_layers[l / 8] >> (l % 8)) & 1;
		if (sl && first == c->n_layers)
			first = l;
		if (!sl && first < c->n_layers)
			suffix = 0;
	}
	c->sliding_window_from = first;
	c->has_layer_types = !suffix;
	return RL_OK;
}

/* Gemma's default layer_types: every layer sliding but each period-th. */
static void sliding_pattern(rl_config *c, int period)
{
	memset(c->sliding_layers, 0, sizeof c->sliding_layers);
	for (int l = 0; l < c->n_layers && l < RL_MAX_LAYER_TYPES; l++)
		if ((l + 1) % period)
			c->sliding_layers[l / 8] |= (unsigned char)(1u << (l % 8));
	c->has_layer_types = 1;
	c->sliding_window_from = period > 1 ? 0 : c->n_layers;
}

int rl_config_layer_sliding(const rl_config *c, int layer)
{
	if (layer < 0 || layer >= c->n_layers)
		return 0;
	if (c->has_layer_types)
		return layer < RL_MAX_LAYER_TYPES &&
		       (c->sliding_layers[layer / 8] >> (layer % 8)) & 1;
	return layer >= c->sliding_window_from;
}

int rl_config_layer_window(const rl_config *c, int layer)
{
	return rl_config_layer_sliding(c, layer) ? c->sliding_window : 0;
}

void rl_config_defaults(rl_config *c, rl_arch arch)
{
	memset(c, 0, sizeof *c);
	const struct arch_info *a = &archs[0];
	for (size_t i = 0; i < NARCH; i++)
		if (archs[i].arch == arch)
			a = &archs[i];
	c->arch = a->arch;
	snprintf(c->architecture, sizeof c->architecture, "%s", a->cls);
	snprintf(c->model_type, sizeof c->model_type, "%s", a->model_type);
	c->vocab_size = a->vocab;
	c->hidden_size = a->hidden;
	c->intermediate_size = a->inter;
	c->n_layers = a->layers;
	c->n_heads = a->heads;
	c->n_kv_heads = a->kv_absent ? a->kv_absent : a->heads;
	c->head_dim = a->head_dim ? a->head_dim : a->hidden / a->heads;
	c->max_position = a->max_pos;
	c->rms_eps = 1e-6;
	c->rope_theta = 10000.0;
	c->rope_type = RL_ROPE_DEFAULT;
	c->rope_factor = 1.0;
	c->tie_word_embeddings = a->tie;
	c->attention_bias = a->arch == RL_ARCH_QWEN2;
	c->qk_norm = a->arch == RL_ARCH_QWEN3 ? RL_QK_NORM_HEAD : RL_QK_NORM_NONE;
	c->o_bias = 0;
	c->mlp_bias = 0;
	parse_act(a->act, a->arch, &c->act);
	c->norm_plus_one = c->embed_scale = a->arch == RL_ARCH_GEMMA;
	c->sliding_window = a->arch == RL_ARCH_MISTRAL ? a->sliding : 0;
	c->sliding_window_from = 0;
	c->has_layer_types = 0;
	c->norms = RL_NORMS_PRE;
	c->query_pre_attn_scalar = c->attn_softcap = c->final_softcap = 0;
	c->rope_local_theta = 0;
	if (a->arch == RL_ARCH_GEMMA2 || a->arch == RL_ARCH_GEMMA3) {
		c->norms = RL_NORMS_SANDWICH;
		c->norm_plus_one = c->embed_scale = 1;
		c->query_pre_attn_scalar = 256;
		c->sliding_window = a->sliding;
	}
	if (a->arch == RL_ARCH_GEMMA2) {
		c->attn_softcap = 50;
		c->final_softcap = 30;
		sliding_pattern(c, 2);
	}
	c->rotary_dim = 0; /* head_dim */
	c->rope_attn_factor = 1;
	if (a->arch == RL_ARCH_PHI3) {
		c->fused_proj = 1;
		c->rms_eps = 1e-5;
		c->rope_original_max_position = 4096;
	}
	if (a->arch == RL_ARCH_OLMO2) {
		c->norms = RL_NORMS_POST;
		c->qk_norm = RL_QK_NORM_FULL;
		c->rms_eps = 1e-5;
	}
	if (a->arch == RL_ARCH_GEMMA3) {
		c->qk_norm = RL_QK_NORM_HEAD;
		c->rope_theta = 1e6;
		c->rope_local_theta = 1e4;
		sliding_pattern(c, 6);
	}
	c->bos_token_id = a->bos;
	/* the classes' pad_token_id defaults (Gemma, Gemma 2, Gemma 3: 0; OLMo 2: 1) */
	c->pad_token_id =
		a->arch == RL_ARCH_GEMMA || a->arch == RL_ARCH_GEMMA2 || a->arch == RL_ARCH_GEMMA3
			? 0
		: a->arch == RL_ARCH_OLMO2 ? 1
		: a->arch == RL_ARCH_PHI3  ? 32000
					   : -1;
	c->n_eos = 0;
	if (a->eos >= 0)
		c->eos_token_ids[c->n_eos++] = a->eos;
}

/* An Optional float: absent leaves *out, null is 0 (none), else > 0. */
static int get_optional_positive(const cJSON *o, const char *key, double *out, const char *path)
{
	const cJSON *v = get(o, key);
	if (v && cJSON_IsNull(v)) {
		*out = 0;
		return RL_OK;
	}
	int rc = get_double(o, key, 0, out, path);
	if (!rc && v && !(*out > 0))
		rc = rl_error(RL_EDATA, "'%s': \"%s\" must be > 0 or null", path, key);
	return rc;
}

static int parse_gemma2_layer_types(rl_config *c, const cJSON *root, const char *path)
{
	int rc, period = 2;
	if (c->arch == RL_ARCH_GEMMA3) { /* the releases' sliding_window_pattern */
		period = 6;
		if ((rc = get_int(root, "sliding_window_pattern", 1, INT_MAX, &period, path)))
			return rc;
	}
	const cJSON *sw = get(root, "sliding_window");
	if (sw && cJSON_IsNull(sw))
		c->sliding_window = 0;
	else if ((rc = get_int(root, "sliding_window", 1, INT_MAX, &c->sliding_window, path)))
		return rc;
	const cJSON *lt = get(root, "layer_types");
	if (!is_absent(lt))
		return parse_layer_types(c, lt, path);
	if (c->n_layers > RL_MAX_LAYER_TYPES)
		return rl_error(RL_EDATA, "'%s': more than %d layers", path, RL_MAX_LAYER_TYPES);
	sliding_pattern(c, period);
	return RL_OK;
}

/* Gemma 2's window and its layers (layer_types, or every other layer). */
static int parse_gemma_layers(rl_config *c, const cJSON *root, const char *path)
{
	int rc = parse_gemma2_layer_types(c, root, path);
	if (!rc && !c->sliding_window)
		c->sliding_window_from = 0; /* no layer has a window */
	return rc;
}

/* Gemma 2's and 3's particulars: the score scale, the soft-caps, the window
 * and its layers. */
static int parse_gemma2(rl_config *c, const cJSON *root, const char *path)
{
	int rc;
	if ((rc = get_double(root, "query_pre_attn_scalar", 0, &c->query_pre_attn_scalar, path)))
		return rc;
	if (!(c->query_pre_attn_scalar > 0))
		return rl_error(RL_EDATA, "'%s': \"query_pre_attn_scalar\" must be > 0", path);
	if ((rc = get_optional_positive(root, "attn_logit_softcapping", &c->attn_softcap, path)) ||
	    (rc = get_optional_positive(root, "final_logit_softcapping", &c->final_softcap, path)))
		return rc;
	if (c->arch == RL_ARCH_GEMMA3)
		c->attn_softcap = 0; /* Gemma3Attention never passes it on */
	int bidi = 0;
	const cJSON *bd = get(root, "use_bidirectional_attention");
	if (!is_absent(bd) && (rc = get_bool(root, "use_bidirectional_attention", &bidi, path)))
		return rc;
	if (bidi)
		return rl_error(RL_EDATA,
				"'%s': \"use_bidirectional_attention\" is not supported (realign's "
				"attention is causal)",
				path);
	return parse_gemma_layers(c, root, path);
}

int rl_config_parse(rl_config *c, const char *text, size_t len, const char *path)
{
	int rc;
	memset(c, 0, sizeof *c);
	char what[PATH_MAX + 2];
	snprintf(what, sizeof what, "'%s'", path);
	cJSON *root;
	if ((rc = rl_json_parse(text, len, what, &root)))
		return rc;
	if (!cJSON_IsObject(root)) {
		rc = rl_error(RL_EDATA, "'%s': not a JSON object", path);
		goto out;
	}

	/* architecture: architectures[0], checked against model_type */
	const struct arch_info *a = NULL;
	const cJSON *av = get(root, "architectures");
	const cJSON *mt = get(root, "model_type");
	if (!is_absent(mt) && !cJSON_IsString(mt)) {
		rc = rl_error(RL_EDATA, "'%s': \"model_type\" must be a string", path);
		goto out;
	}
	if (!is_absent(av)) {
		if (!cJSON_IsArray(av) || !av->child || !cJSON_IsString(av->child)) {
			rc = rl_error(
				RL_EDATA,
				"'%s': \"architectures\" must be a non-empty array of strings",
				path);
			goto out;
		}
		const char *name = av->child->valuestring;
		for (size_t i = 0; i < NARCH; i++)
			if (strcmp(archs[i].cls, name) == 0)
				a = &archs[i];
		if (!a) {
			rc = rl_error(
				RL_EDATA,
				"'%s': unsupported architecture '%s' (realign supports " ARCH_LIST
				")",
				path, name);
			goto out;
		}
		if (!is_absent(mt) && strcmp(mt->valuestring, a->model_type) != 0) {
			rc = rl_error(RL_EDATA,
				      "'%s': architecture '%s' does not match model_type '%s'",
				      path, a->cls, mt->valuestring);
			goto out;
		}
	} else if (!is_absent(mt)) {
		for (size_t i = 0; i < NARCH; i++)
			if (strcmp(archs[i].model_type, mt->valuestring) == 0)
				a = &archs[i];
		if (!a) {
			rc = rl_error(RL_EDATA,
				      "'%s': unsupported model_type '%s' (realign "
				      "supports " MODEL_TYPE_LIST ")",
				      path, mt->valuestring);
			goto out;
		}
	} else {
		rc = rl_error(RL_EDATA, "'%s': no \"architectures\" or \"model_type\"", path);
		goto out;
	}
	rl_config_defaults(c, a->arch);

	if ((rc = get_int(root, "vocab_size", 1, INT_MAX, &c->vocab_size, path)) ||
	    (rc = get_int(root, "hidden_size", 1, INT_MAX, &c->hidden_size, path)) ||
	    (rc = get_int(root, "intermediate_size", 1, INT_MAX, &c->intermediate_size, path)) ||
	    (rc = get_int(root, "num_hidden_layers", 1, 1000000, &c->n_layers, path)) ||
	    (rc = get_int(root, "num_attention_heads", 1, INT_MAX, &c->n_heads, path)) ||
	    (rc = get_int(root, "max_position_embeddings", 1, INT_MAX, &c->max_position, path)) ||
	    (rc = get_double(root, "rms_norm_eps", 0, &c->rms_eps, path)))
		goto out;

	/* num_key_value_heads: absent -> the class default; null -> heads where
	 * the field is Optional (Llama, Qwen2, Qwen3: __post_init__), refused
	 * elsewhere */
	const cJSON *kv = get(root, "num_key_value_heads");
	c->n_kv_heads = a->kv_absent ? a->kv_absent : c->n_heads;
	if (kv && cJSON_IsNull(kv) &&
	    (a->arch == RL_ARCH_LLAMA || a->arch == RL_ARCH_QWEN2 || a->arch == RL_ARCH_QWEN3 ||
	     a->arch == RL_ARCH_OLMO2 || a->arch == RL_ARCH_PHI3))
		c->n_kv_heads = c->n_heads;
	else if ((rc = get_int(root, "num_key_value_heads", 1, INT_MAX, &c->n_kv_heads, path)))
		goto out;
	/* head_dim: Gemma's default is 256 and Qwen3's 128 (neither Optional);
	 * the others derive it from hidden_size / num_attention_heads when absent
	 * or null */
	const cJSON *hd = get(root, "head_dim");
	c->head_dim = a->head_dim ? a->head_dim : c->hidden_size / c->n_heads;
	if (!(hd && cJSON_IsNull(hd) && !a->head_dim) &&
	    (rc = get_int(root, "head_dim", 1, INT_MAX, &c->head_dim, path)))
		goto out;
	if (c->head_dim == 0) {
		rc = rl_error(RL_EDATA,
			      "'%s': hidden_size %d / num_attention_heads %d gives head_dim 0",
			      path, c->hidden_size, c->n_heads);
		goto out;
	}
	if ((a->arch == RL_ARCH_LLAMA || a->arch == RL_ARCH_GEMMA2 || a->arch == RL_ARCH_GEMMA3) &&
	    c->hidden_size % c->n_heads != 0) {
		/* LlamaConfig's and Gemma2/3's validate_architecture */
		rc = rl_error(RL_EDATA,
			      "'%s': hidden_size %d is not a multiple of num_attention_heads %d",
			      path, c->hidden_size, c->n_heads);
		goto out;
	}
	if (c->n_heads % c->n_kv_heads != 0) {
		rc = rl_error(RL_EDATA,
			      "'%s': num_attention_heads %d is not a multiple of "
			      "num_key_value_heads %d",
			      path, c->n_heads, c->n_kv_heads);
		goto out;
	}
	if ((long long)c->n_heads * c->head_dim > INT_MAX) {
		rc = rl_error(RL_EDATA, "'%s': num_attention_heads x head_dim is too large", path);
		goto out;
	}
	if (c->head_dim > 4 && c->head_dim % 2) { /* validate_rope: rotary dim must be even */
		rc = rl_error(RL_EDATA, "'%s': head_dim %d is odd (RoPE needs an even dimension)",
			      path, c->head_dim);
		goto out;
	}

	if ((rc = get_bool(root, "tie_word_embeddings", &c->tie_word_embeddings, path)))
		goto out;

	/* biases */
	int ab = 0, mb = 0;
	if (a->arch == RL_ARCH_LLAMA || a->arch == RL_ARCH_GEMMA || a->arch == RL_ARCH_QWEN3 ||
	    a->arch == RL_ARCH_GEMMA2 || a->arch == RL_ARCH_GEMMA3 || a->arch == RL_ARCH_OLMO2) {
		if ((rc = get_bool(root, "attention_bias", &ab, path)))
			goto out;
		c->attention_bias = c->o_bias = ab; /* q, k, v and o alike */
	}
	if (a->arch == RL_ARCH_LLAMA) {
		if ((rc = get_bool(root, "mlp_bias", &mb, path)))
			goto out;
		c->mlp_bias = mb;
	}
	/* Qwen2: q, k, v always biased, o never (set by the defaults); Mistral: none */

	/* activation: hidden_act only (transformers 5 ignores Gemma's
	 * hidden_activation); Gemma 2's MLP reads hidden_activation only */
	const char *act_key = a->arch == RL_ARCH_GEMMA2 || a->arch == RL_ARCH_GEMMA3
				      ? "hidden_activation"
				      : "hidden_act";
	const cJSON *act = get(root, act_key);
	if (act) {
		if (!cJSON_IsString(act) || parse_act(act->valuestring, a->arch, &c->act) != 0) {
			rc = rl_error(RL_EDATA,
				      "'%s': unsupported %s '%s' (realign supports silu, "
				      "gelu, gelu_pytorch_tanh, gelu_new)",
				      path, act_key, cJSON_IsString(act) ? act->valuestring : "?");
			goto out;
		}
	}
	if ((a->arch == RL_ARCH_GEMMA2 || a->arch == RL_ARCH_GEMMA3) &&
	    (rc = parse_gemma2(c, root, path)))
		goto out;

	/* sliding window */
	if (a->arch == RL_ARCH_MISTRAL || a->arch == RL_ARCH_PHI3) {
		/* every layer (Phi3Model masks by config.sliding_window: null none) */
		const cJSON *sw = get(root, "sliding_window");
		if (sw && cJSON_IsNull(sw))
			c->sliding_window = 0;
		else if ((rc = get_int(root, "sliding_window", 1, INT_MAX, &c->sliding_window,
				       path)))
			goto out;
	} else if (a->arch == RL_ARCH_QWEN2 || a->arch == RL_ARCH_QWEN3) {
		/* __post_init__: the window only with use_sliding_window; layer_types
		 * when given, else the layers from max_window_layers on */
		int use = 0, sw = 4096, mwl = 28;
		if ((rc = get_bool(root, "use_sliding_window", &use, path)))
			goto out;
		const cJSON *swv = get(root, "sliding_window");
		if (swv && cJSON_IsNull(swv))
			sw = 0;
		else if ((rc = get_int(root, "sliding_window", 1, INT_MAX, &sw, path)))
			goto out;
		if ((rc = get_int(root, "max_window_layers", 0, INT_MAX, &mwl, path)))
			goto out;
		c->sliding_window = use ? sw : 0;
		c->sliding_window_from = mwl < c->n_layers ? mwl : c->n_layers;
		const cJSON *lt = get(root, "layer_types");
		if (!is_absent(lt) && (rc = parse_layer_types(c, lt, path)))
			goto out;
		int any = 0;
		for (int l = 0; l < c->n_layers && !any; l++)
			any = rl_config_layer_sliding(c, l);
		if (!any)
			c->sliding_window = 0;
		if (!c->sliding_window) {
			c->sliding_window_from = 0;
			c->has_layer_types = 0;
		}
	}

	if ((rc = a->arch == RL_ARCH_GEMMA3 ? parse_gemma3_rope(c, root, path)
		  : a->arch == RL_ARCH_PHI3 ? parse_phi3_rope(c, root, path)
					    : parse_rope(c, root, path)))
		goto out;
	if (c->arch != RL_ARCH_PHI3)
		c->rotary_dim = 0; /* head_dim, whatever head_dim is */

	/* special tokens */
	const cJSON *pad = get(root, "pad_token_id");
	if (pad && cJSON_IsNull(pad))
		c->pad_token_id = -1;
	else if ((rc = get_int(root, "pad_token_id", 0, INT_MAX, &c->pad_token_id, path)))
		goto out;
	if (c->pad_token_id >= c->vocab_size) { /* nn.Embedding refuses such a padding_idx */
		rc = rl_error(RL_EDATA, "'%s': pad_token_id %d is outside the vocabulary (%d)",
			      path, c->pad_token_id, c->vocab_size);
		goto out;
	}
	const cJSON *bos = get(root, "bos_token_id");
	if (bos && cJSON_IsNull(bos))
		c->bos_token_id = -1;
	else if ((rc = get_int(root, "bos_token_id", 0, INT_MAX, &c->bos_token_id, path)))
		goto out;
	const cJSON *eos = get(root, "eos_token_id");
	if (eos && cJSON_IsNull(eos)) {
		c->n_eos = 0;
	} else if (eos && cJSON_IsArray(eos)) {
		c->n_eos = 0;
		for (const cJSON *e = eos->child; e; e = e->next) {
			if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) ||
			    e->valuedouble < 0 || e->valuedouble > INT_MAX) {
				rc = rl_error(
					RL_EDATA,
					"'%s': \"eos_token_id\" must hold non-negative integers",
					path);
				goto out;
			}
			if (c->n_eos == RL_MAX_EOS) {
				rc = rl_error(RL_EDATA, "'%s': more than %d eos_token_id values",
					      path, RL_MAX_EOS);
				goto out;
			}
			c->eos_token_ids[c->n_eos++] = (int)e->valuedouble;
		}
	} else if (eos) {
		int v = 0;
		if ((rc = get_int(root, "eos_token_id", 0, INT_MAX, &v, path)))
			goto out;
		c->n_eos = 1;
		c->eos_token_ids[0] = v;
	}

	const cJSON *dt = get(root, "dtype");
	if (is_absent(dt))
		dt = get(root, "torch_dtype");
	if (cJSON_IsString(dt))
		snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", dt->valuestring);
	const cJSON *np = get(root, "_name_or_path");
	if (cJSON_IsString(np))
		snprintf(c->name_or_path, sizeof c->name_or_path, "%s", np->valuestring);
	rc = RL_OK;
out:
	cJSON_Delete(root);
	return rc;
}

/* Every key rl_config_parse reads, and those known not to change what the
 * model computes. */
static const char *const known_keys[] = {
	/* read */
	"architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size",
	"num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
	"max_position_embeddings", "rms_norm_eps", "hidden_act", "hidden_activation",
	"tie_word_embeddings", "attention_bias", "mlp_bias", "rope_theta", "rope_scaling",
	"rope_parameters", "partial_rotary_factor", "original_max_position_embeddings",
	"rope_local_base_freq", "sliding_window", "use_sliding_window", "max_window_layers",
	"layer_types", "sliding_window_pattern", "query_pre_attn_scalar", "attn_logit_softcapping",
	"final_logit_softcapping", "use_bidirectional_attention", "bos_token_id", "eos_token_id",
	"pad_token_id", "torch_dtype", "dtype", "_name_or_path",
	/* no effect on the computation at inference or on the gradient realign takes */
	"transformers_version", "use_cache", "initializer_range", "attention_dropout", "embd_pdrop",
	"resid_pdrop", "cache_implementation", "auto_map", "pretraining_tp",
	"_sliding_window_pattern", /* written by transformers beside layer_types, unread */
};

int rl_config_unread_keys(const char *text, size_t len, char *out, size_t cap)
{
	if (cap)
		out[0] = 0;
	cJSON *root = NULL;
	if (rl_json_parse(text, len, "config.json", &root) != RL_OK) /* json.h's rules */
		rl_error_clear();
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return 0;
	}
	int n = 0;
	size_t at = 0;
	for (const cJSON *k = root->child; k; k = k->next) {
		int known = 0;
		for (size_t i = 0; i < sizeof known_keys / sizeof known_keys[0] && !known; i++)
			known = strcmp(k->string, known_keys[i]) == 0;
		if (known)
			continue;
		n++;
		size_t need = strlen(k->string) + (at ? 2 : 0);
		if (cap && at + need < cap && !strstr(out, "..."))
			at += (size_t)snprintf(out + at, cap - at, "%s%s", at ? ", " : "",
					       k->string);
		else if (cap && at + 3 < cap && !strstr(out, "..."))
			at += (size_t)snprintf(out + at, cap - at, "...");
	}
	cJSON_Delete(root);
	return n;
}

int rl_config_load(rl_config *c, const char *dir)
{
	size_t n = strlen(dir) + sizeof "/config.json";
	char *path = rl_malloc(n);
	if (!path)
		return RL_ESYS;
	snprintf(path, n, "%s/config.json", dir);
	char *text = NULL;
	size_t len = 0;
	int rc = rl_read_file(path, &text, &len);
	if (rc == RL_OK)
		rc = rl_config_parse(c, text, len, path);
	free(text);
	free(path);
	return rc;
}

uint64_t rl_config_layer_params(const rl_config *c)
{
	uint64_t h = (uint64_t)c->hidden_size, q = (uint64_t)c->n_heads * (uint64_t)c->head_dim;
	uint64_t kv = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim;
	uint64_t in = (uint64_t)c->intermediate_size;
	uint64_t p = h * q + 2 * h * kv + q * h; /* q, k, v, o weights */
	if (c->attention_bias)
		p += q + 2 * kv;
	if (c->o_bias)
		p += h;
	p += 3 * h * in; /* gate, up, down */
	if (c->mlp_bias)
		p += 2 * in + h;
	p += 2 * h; /* input_layernorm, post_attention_layernorm */
	if (c->qk_norm == RL_QK_NORM_HEAD)
		p += 2 * (uint64_t)c->head_dim; /* q_norm, k_norm */
	if (c->qk_norm == RL_QK_NORM_FULL)
		p += q + kv;
	if (c->norms == RL_NORMS_SANDWICH)
		p += 2 * h; /* pre_ and post_feedforward_layernorm */
	return p;
}

uint64_t rl_config_param_count(const rl_config *c)
{
	return (uint64_t)c->n_layers * rl_config_layer_params(c);
}

/* ---- writing ---- */

/* Shortest decimal that reads back as d, always with a '.' or an exponent so
 * Python reads a float (json: "1e-05", "10000.0"). */
static void fmt_float(double d, char *buf, size_t cap)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, cap, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	if (!strpbrk(buf, ".eEn")) {
		size_t l = strlen(buf);
		if (l + 3 <= cap)
			memcpy(buf + l, ".0", 3);
	}
}

static int add_float(cJSON *o, const char *key, double d)
{
	char buf[40];
	fmt_float(d, buf, sizeof buf);
	return cJSON_AddRawToObject(o, key, buf) != NULL;
}

static int add_int(cJSON *o, const char *key, long long v)
{
	char buf[24];
	snprintf(buf, sizeof buf, "%lld", v);
	return cJSON_AddRawToObject(o, key, buf) != NULL;
}

static int add_float_array(cJSON *o, const char *key, const float *v, int n)
{
	cJSON *a = cJSON_AddArrayToObject(o, key);
	int ok = a != NULL;
	for (int i = 0; ok && i < n; i++) {
		char b[40];
		fmt_float((double)v[i], b, sizeof b);
		ok = cJSON_AddItemToArray(a, cJSON_CreateRaw(b));
	}
	return ok;
}

/* Phi-3's partial rotary factor and longrope, as Phi3Config reads them. */
static int add_phi3_rope(cJSON *o, const rl_config *c)
{
	int rot = c->rotary_dim ? c->rotary_dim : c->head_dim, ok = 1;
	if (rot != c->head_dim)
		ok &= add_float(o, "partial_rotary_factor", (double)rot / c->head_dim);
	ok &= add_int(o, "original_max_position_embeddings", c->rope_original_max_position);
	if (c->rope_type != RL_ROPE_LONGROPE)
		return ok;
	cJSON *rs = cJSON_GetObjectItemCaseSensitive(o, "rope_scaling");
	if (rs)
		cJSON_DeleteItemFromObjectCaseSensitive(o, "rope_scaling");
	rs = cJSON_AddObjectToObject(o, "rope_scaling");
	ok &= rs != NULL;
	if (rs) {
		ok &= cJSON_AddStringToObject(rs, "rope_type", "longrope") != NULL;
		ok &= add_float(rs, "factor", c->rope_factor);
		ok &= add_float(rs, "attention_factor", c->rope_attn_factor);
		ok &= add_float_array(rs, "short_factor", c->rope_short, c->rope_n_factors);
		ok &= add_float_array(rs, "long_factor", c->rope_long, c->rope_n_factors);
	}
	return ok;
}

/* null for 0 */
static int add_optional_float(cJSON *o, const char *key, double d)
{
	return d ? add_float(o, key, d) : cJSON_AddNullToObject(o, key) != NULL;
}

static int add_optional_int(cJSON *o, const char *key, long long v)
{
	return v ? add_int(o, key, v) : cJSON_AddNullToObject(o, key) != NULL;
}

static int add_layer_types(cJSON *o, const rl_config *c)
{
	cJSON *a = cJSON_AddArrayToObject(o, "layer_types");
	int ok = a != NULL;
	for (int l = 0; ok && l < c->n_layers; l++)
		ok = cJSON_AddItemToArray(a, cJSON_CreateString(rl_config_layer_sliding(c, l)
									? "sliding_attention"
									: "full_attention"));
	return ok;
}

static const char *act_name(rl_act a)
{
	return a == RL_ACT_SILU ? "silu" : a == RL_ACT_GELU ? "gelu" : "gelu_pytorch_tanh";
}

int rl_config_write(const rl_config *c, const char *path)
{
	int rc = rl_output_check_replace(path, 0);
	if (rc)
		return rc;
	/* refuse what the architecture cannot express */
	int expressible = 1;
	switch (c->arch) {
	case RL_ARCH_LLAMA:
		expressible = c->attention_bias == c->o_bias && !c->norm_plus_one &&
			      !c->embed_scale && !c->sliding_window;
		break;
	case RL_ARCH_MISTRAL:
		expressible = !c->attention_bias && !c->o_bias && !c->mlp_bias &&
			      !c->norm_plus_one && !c->embed_scale && !c->sliding_window_from;
		break;
	case RL_ARCH_QWEN2:
		expressible = c->attention_bias && !c->o_bias && !c->mlp_bias &&
			      !c->norm_plus_one && !c->embed_scale;
		break;
	case RL_ARCH_GEMMA:
		expressible = c->attention_bias == c->o_bias && !c->mlp_bias && c->norm_plus_one &&
			      c->embed_scale && c->act == RL_ACT_GELU_TANH && !c->sliding_window;
		break;
	case RL_ARCH_QWEN3:
		expressible = c->attention_bias == c->o_bias && !c->mlp_bias && !c->norm_plus_one &&
			      !c->embed_scale && c->qk_norm == RL_QK_NORM_HEAD;
		break;
	case RL_ARCH_OLMO2:
		expressible = c->attention_bias == c->o_bias && !c->mlp_bias && !c->norm_plus_one &&
			      !c->embed_scale && !c->sliding_window;
		break;
	case RL_ARCH_PHI3:
		expressible = !c->attention_bias && !c->o_bias && !c->mlp_bias &&
			      !c->norm_plus_one && !c->embed_scale && !c->sliding_window_from &&
			      c->fused_proj;
		break;
	case RL_ARCH_GEMMA2:
	case RL_ARCH_GEMMA3:
		expressible = c->attention_bias == c->o_bias && !c->mlp_bias && c->norm_plus_one &&
			      c->embed_scale && c->query_pre_attn_scalar > 0 &&
			      (c->arch == RL_ARCH_GEMMA2 || !c->attn_softcap);
		break;
	default:
		expressible = 0;
	}
	rl_config arch_default;
	rl_config_defaults(&arch_default, c->arch);
	if (c->qk_norm != arch_default.qk_norm || c->norms != arch_default.norms ||
	    (c->arch != RL_ARCH_GEMMA2 && c->arch != RL_ARCH_GEMMA3 &&
	     (c->attn_softcap || c->final_softcap || c->query_pre_attn_scalar)) ||
	    (c->arch != RL_ARCH_GEMMA3 && c->rope_local_theta) ||
	    (c->arch != RL_ARCH_PHI3 && (c->fused_proj || c->rope_type == RL_ROPE_LONGROPE ||
					 (c->rotary_dim && c->rotary_dim != c->head_dim))))
		expressible = 0;
	if (!expressible)
		return rl_error(RL_USAGE,
				"'%s': this combination of biases, norms, activation and sliding "
				"window cannot be expressed as a %s config",
				path, rl_arch_name(c->arch));
	if (c->n_eos < 0 || c->n_eos > RL_MAX_EOS)
		return rl_error(RL_USAGE, "'%s': bad eos count", path);
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return rl_error(RL_ESYS, "out of memory");
	int ok = 1;
	cJSON *arr = cJSON_AddArrayToObject(o, "architectures");
	ok &= arr && cJSON_AddItemToArray(arr, cJSON_CreateString(rl_arch_name(c->arch)));
	const char *mt = "llama";
	for (size_t i = 0; i < NARCH; i++)
		if (archs[i].arch == c->arch)
			mt = archs[i].model_type;
	ok &= cJSON_AddStringToObject(o, "model_type", mt) != NULL;
	ok &= add_int(o, "vocab_size", c->vocab_size);
	ok &= add_int(o, "hidden_size", c->hidden_size);
	ok &= add_int(o, "intermediate_size", c->intermediate_size);
	ok &= add_int(o, "num_hidden_layers", c->n_layers);
	ok &= add_int(o, "num_attention_heads", c->n_heads);
	ok &= add_int(o, "num_key_value_heads", c->n_kv_heads);
	ok &= add_int(o, "head_dim", c->head_dim);
	ok &= add_int(o, "max_position_embeddings", c->max_position);
	ok &= add_float(o, "rms_norm_eps", c->rms_eps);
	ok &= add_float(o, "rope_theta", c->rope_theta);
	if (c->rope_type == RL_ROPE_DEFAULT) {
		ok &= cJSON_AddNullToObject(o, "rope_scaling") != NULL;
	} else {
		cJSON *rs = cJSON_AddObjectToObject(o, "rope_scaling");
		ok &= rs != NULL;
		if (rs) {
			ok &= cJSON_AddStringToObject(
				      rs, "rope_type",
				      c->rope_type == RL_ROPE_LINEAR ? "linear" : "llama3") != NULL;
			ok &= add_float(rs, "factor", c->rope_factor);
			if (c->rope_type == RL_ROPE_LLAMA3) {
				ok &= add_float(rs, "low_freq_factor", c->rope_low_freq_factor);
				ok &= add_float(rs, "high_freq_factor", c->rope_high_freq_factor);
				ok &= add_int(rs, "original_max_position_embeddings",
					      c->rope_original_max_position);
			}
		}
	}
	ok &= cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_word_embeddings) != NULL;
	int gemma23 = c->arch == RL_ARCH_GEMMA2 || c->arch == RL_ARCH_GEMMA3;
	ok &= cJSON_AddStringToObject(o, gemma23 ? "hidden_activation" : "hidden_act",
				      act_name(c->act)) != NULL;
	if (c->arch == RL_ARCH_LLAMA || c->arch == RL_ARCH_GEMMA || c->arch == RL_ARCH_QWEN3 ||
	    gemma23 || c->arch == RL_ARCH_OLMO2)
		ok &= cJSON_AddBoolToObject(o, "attention_bias", c->attention_bias) != NULL;
	if (c->arch == RL_ARCH_GEMMA3)
		ok &= add_float(o, "rope_local_base_freq", c->rope_local_theta);
	if (gemma23) {
		ok &= add_float(o, "query_pre_attn_scalar", c->query_pre_attn_scalar);
		ok &= add_optional_float(o, "attn_logit_softcapping", c->attn_softcap);
		ok &= add_optional_float(o, "final_logit_softcapping", c->final_softcap);
		ok &= add_optional_int(o, "sliding_window", c->sliding_window);
		ok &= add_layer_types(o, c);
	}
	if (c->arch == RL_ARCH_LLAMA)
		ok &= cJSON_AddBoolToObject(o, "mlp_bias", c->mlp_bias) != NULL;
	if (c->arch == RL_ARCH_MISTRAL || c->arch == RL_ARCH_PHI3) {
		if (c->sliding_window)
			ok &= add_int(o, "sliding_window", c->sliding_window);
		else
			ok &= cJSON_AddNullToObject(o, "sliding_window") != NULL;
	}
	if (c->arch == RL_ARCH_PHI3)
		ok &= add_phi3_rope(o, c);
	if (c->arch == RL_ARCH_QWEN2 || c->arch == RL_ARCH_QWEN3) {
		ok &= cJSON_AddBoolToObject(o, "use_sliding_window", c->sliding_window > 0) != NULL;
		ok &= add_int(o, "sliding_window", c->sliding_window ? c->sliding_window : 4096);
		ok &= add_int(o, "max_window_layers",
			      c->sliding_window ? c->sliding_window_from : c->n_layers);
		if (c->sliding_window && c->has_layer_types)
			ok &= add_layer_types(o, c);
	}
	if (c->pad_token_id >= 0)
		ok &= add_int(o, "pad_token_id", c->pad_token_id);
	else
		ok &= cJSON_AddNullToObject(o, "pad_token_id") != NULL;
	if (c->bos_token_id >= 0)
		ok &= add_int(o, "bos_token_id", c->bos_token_id);
	else
		ok &= cJSON_AddNullToObject(o, "bos_token_id") != NULL;
	if (c->n_eos == 0) {
		ok &= cJSON_AddNullToObject(o, "eos_token_id") != NULL;
	} else if (c->n_eos == 1) {
		ok &= add_int(o, "eos_token_id", c->eos_token_ids[0]);
	} else {
		cJSON *e = cJSON_AddArrayToObject(o, "eos_token_id");
		ok &= e != NULL;
		for (int i = 0; e && i < c->n_eos; i++) {
			char b[24];
			snprintf(b, sizeof b, "%d", c->eos_token_ids[i]);
			ok &= cJSON_AddItemToArray(e, cJSON_CreateRaw(b));
		}
	}
	if (c->torch_dtype[0])
		ok &= cJSON_AddStringToObject(o, "dtype", c->torch_dtype) != NULL;
	char *text = ok ? cJSON_Print(o) : NULL;
	cJSON_Delete(o);
	if (!text)
		return rl_error(RL_ESYS, "out of memory writing '%s'", path);

	rc = rl_write_text_file(path, text); /* temp file + fsync + rename */
	free(text);
	return rc;
}
