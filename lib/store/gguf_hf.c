/* gguf_hf.c — GGUF -> HuggingFace names, config and value transforms. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/gguf_hf.h"
#include "store/model.h"

static const char *gguf_path(const rl_gguf *g)
{
	return g->files[0].path;
}

/* "ARCH.suffix" */
static const char *akey(const char *arch, const char *suffix, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s.%s", arch, suffix);
	return buf;
}

/* A u32 key; RL_NO (absent) leaves *out as it is when optional. */
static int get_int(const rl_gguf *g, const char *key, int optional, int lo, int *out)
{
	uint32_t v;
	int rc = rl_gguf_get_u32(g, key, &v);
	if (rc == RL_NO && optional) {
		rl_error_clear();
		return RL_OK;
	}
	if (rc)
		return rc;
	if (v < (uint32_t)lo || v > 1u << 30)
		return rl_error(RL_EDATA, "'%s': '%s' = %u is out of range", gguf_path(g), key, v);
	*out = (int)v;
	return RL_OK;
}

/* The shortest decimal that is the same f32: the value the converter was
 * given (1e-05, not 9.99999974737875e-06), as config.json had it. */
static double shortest(float f)
{
	char b[32];
	for (int p = 1; p < 9; p++) {
		snprintf(b, sizeof b, "%.*g", p, (double)f);
		if ((float)strtod(b, NULL) == f)
			return strtod(b, NULL);
	}
	return f;
}

static int get_float(const rl_gguf *g, const char *key, int optional, double *out)
{
	float v;
	int rc = rl_gguf_get_f32(g, key, &v);
	if (rc == RL_NO && optional) {
		rl_error_clear();
		return RL_OK;
	}
	if (rc)
		return rc;
	if (!isfinite(v) || v <= 0)
		return rl_error(RL_EDATA, "'%s': '%s' = %g is not a positive number", gguf_path(g),
				key, (double)v);
	*out = shortest(v);
	return RL_OK;
}

/* GGUF block-tensor suffix -> HF name within a layer. */
static const struct {
	const char *gguf, *hf;
} layer_names[] = {
	{"attn_norm", "input_layernorm"},    {"ffn_norm", "post_attention_layernorm"},
	{"attn_q", "self_attn.q_proj"},	     {"attn_k", "self_attn.k_proj"},
	{"attn_v", "self_attn.v_proj"},	     {"attn_output", "self_attn.o_proj"},
	{"ffn_gate", "mlp.gate_proj"},	     {"ffn_up", "mlp.up_proj"},
	{"ffn_down", "mlp.down_proj"},	     {"attn_q_norm", "self_attn.q_norm"},
	{"attn_k_norm", "self_attn.k_norm"}, {"post_attention_norm", "post_attention_layernorm"},
	{"attn_qkv", "self_attn.qkv_proj"},  {"post_ffw_norm", "post_feedforward_layernorm"},
};

/* The HF name of a GGUF tensor name; 0 when it has none. Where the layer
 * norms the attention's output (Gemma 2), llama.cpp's ffn_norm is the MLP's
 * pre_feedforward_layernorm. */
static int hf_name(const rl_config *c, const char *name, char *out, size_t cap, int *layer)
{
	static const struct {
		const char *gguf, *hf;
	} top[] = {{"token_embd.weight", "model.embed_tokens.weight"},
		   {"output_norm.weight", "model.norm.weight"},
		   {"output.weight", "lm_head.weight"}};
	*layer = -1;
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
		if (strcmp(name, top[i].gguf) == 0) {
			snprintf(out, cap, "%s", top[i].hf);
			return 1;
		}
	}
	unsigned n;
	int used = 0;
	if (sscanf(name, "blk.%u.%n", &n, &used) != 1 || used == 0 || n > 100000)
		return 0;
	char digits[16];
	snprintf(digits, sizeof digits, "blk.%u.", n);
	if (strncmp(name, digits, strlen(digits)) != 0) /* "blk.01." is not layer 1 */
		return 0;
	const char *rest = name + used, *dot = strrchr(rest, '.');
	if (!dot || (strcmp(dot, ".weight") != 0 && strcmp(dot, ".bias") != 0))
		return 0;
	for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++) {
		size_t len = strlen(layer_names[i].gguf);
		if ((size_t)(dot - rest) == len && strncmp(rest, layer_names[i].gguf, len) == 0) {
			const char *hf = layer_names[i].hf;
			if (c->norms == RL_NORMS_SANDWICH &&
			    strcmp(layer_names[i].gguf, "ffn_norm") == 0)
				hf = "pre_feedforward_layernorm";
			if (c->fused_proj && strcmp(layer_names[i].gguf, "ffn_up") == 0)
				hf = "mlp.gate_up_proj"; /* Phi-3: gate and up rows fused */
			snprintf(out, cap, "model.layers.%u.%s%s", n, hf, dot);
			*layer = (int)n;
			return 1;
		}
	}
	return 0;
}

static int has_tensor(const rl_gguf *g, const char *name)
{
	return rl_gguf_find(g, name) != NULL;
}

/* A rope_freqs tensor of ones changes nothing; anything else is Llama 3's
 * frequency scaling, which this importer does not reconstruct. */
static int check_rope_freqs(const rl_gguf_tensor *t)
{
	float *v = rl_malloc_array(t->numel ? t->numel : 1, sizeof *v);
	if (!v)
		return RL_ESYS;
	int rc = rl_gguf_dequant(t, v);
	for (uint64_t i = 0; rc == RL_OK && i < t->numel; i++)
		if (v[i] != 1.0f)
			rc = rl_error(RL_EDATA,
				      "'%s': tensor 'rope_freqs.weight' holds rotary frequency "
				      "factors (Llama 3 rope scaling), which rl-import does not "
				      "convert back",
				      t->path);
	free(v);
	return rc;
}

/* Gemma 2's soft-caps and window from the file; the score scale as llama.cpp
 * sets it (the file does not hold query_pre_attn_scalar): (hidden_size /
 * heads) for the 46-layer 27B, head_dim otherwise. */
static int read_gemma2(const rl_gguf *g, const char *arch_s, rl_config *c)
{
	char k[128];
	int rc;
	c->attn_softcap = c->final_softcap = 0;
	if ((rc = get_float(g, akey(arch_s, "attn_logit_softcapping", k, sizeof k), 1,
			    &c->attn_softcap)) ||
	    (rc = get_float(g, akey(arch_s, "final_logit_softcapping", k, sizeof k), 1,
			    &c->final_softcap)) ||
	    (rc = get_int(g, akey(arch_s, "attention.sliding_window", k, sizeof k), 1, 1,
			  &c->sliding_window)))
		return rc;
	c->query_pre_attn_scalar =
		c->n_layers == 46 ? (double)(c->hidden_size / c->n_heads) : (double)c->head_dim;
	/* llama.cpp's layers: every other one sliding, from layer 0 */
	memset(c->sliding_layers, 0, sizeof c->sliding_layers);
	if (c->n_layers > RL_MAX_LAYER_TYPES)
		return rl_error(RL_EDATA, "'%s': %d layers", gguf_path(g), c->n_layers);
	for (int l = 0; l < c->n_layers; l += 2)
		c->sliding_layers[l / 8] |= (unsigned char)(1u << (l % 8));
	c->has_layer_types = 1;
	return RL_OK;
}

/* Gemma 3: the window, the final soft-cap and the sliding layers' RoPE base
 * (rope.freq_base_swa, llama.cpp's default 10000) from the file; every sixth
 * layer global, the scale from head_dim (hidden_size / heads for the 62-layer
 * 27B) as llama.cpp has them (the file holds neither). */
static int read_gemma3(const rl_gguf *g, const char *arch_s, rl_config *c)
{
	char k[128];
	int rc;
	int64_t *pat = NULL;
	size_t npat = 0;
	rc = rl_gguf_get_int_array(g, akey(arch_s, "attention.sliding_window_pattern", k, sizeof k),
				   &pat, &npat);
	free(pat);
	if (rc != RL_NO)
		return rc ? rc
			  : rl_error(RL_EDATA,
				     "'%s': '%s' is not supported (llama.cpp's Gemma 3 has every "
				     "sixth layer global)",
				     gguf_path(g), k);
	rl_error_clear();
	c->final_softcap = 0;
	c->sliding_window = 0;
	c->rope_local_theta = 10000;
	if ((rc = get_float(g, akey(arch_s, "final_logit_softcapping", k, sizeof k), 1,
			    &c->final_softcap)) ||
	    (rc = get_int(g, akey(arch_s, "attention.sliding_window", k, sizeof k), 1, 1,
			  &c->sliding_window)) ||
	    (rc = get_float(g, akey(arch_s, "rope.freq_base_swa", k, sizeof k), 1,
			    &c->rope_local_theta)))
		return rc;
	c->query_pre_attn_scalar =
		c->n_layers == 62 ? (double)(c->hidden_size / c->n_heads) : (double)c->head_dim;
	if (c->n_layers > RL_MAX_LAYER_TYPES)
		return rl_error(RL_EDATA, "'%s': %d layers", gguf_path(g), c->n_layers);
	memset(c->sliding_layers, 0, sizeof c->sliding_layers);
	for (int l = 0; l < c->n_layers; l++)
		if ((l + 1) % 6)
			c->sliding_layers[l / 8] |= (unsigned char)(1u << (l % 8));
	c->has_layer_types = 1;
	return RL_OK;
}

/* A rope_factors tensor of n values. */
static int read_factors(const rl_gguf *g, const char *name, int n, float *out)
{
	const rl_gguf_tensor *t = rl_gguf_find(g, name);
	if (!t || t->ndim != 1 || t->numel != (uint64_t)n)
		return rl_error(RL_EDATA, "'%s': '%s' must hold rotary_dim / 2 (%d) factors",
				gguf_path(g), name, n);
	return rl_gguf_dequant(t, out);
}

/* Phi-3: the window (0: none, llama.cpp's mark of a model without one), the
 * original context length, and longrope's factors from rope_factors_short
 * and rope_factors_long with rope.scaling.attn_factor (factor: max over
 * original positions, as transformers defaults it). */
static int read_phi3(const rl_gguf *g, const char *arch_s, rl_config *c)
{
	char k[128];
	int rc;
	c->sliding_window = 0;
	c->rope_original_max_position = c->max_position;
	if ((rc = get_int(g, akey(arch_s, "attention.sliding_window", k, sizeof k), 1, 0,
			  &c->sliding_window)) ||
	    (rc = get_int(g, akey(arch_s, "rope.scaling.original_context_length", k, sizeof k), 1,
			  1, &c->rope_original_max_position)))
		return rc;
	int has_long = rl_gguf_find(g, "rope_factors_long.weight") != NULL,
	    has_short = rl_gguf_find(g, "rope_factors_short.weight") != NULL;
	if (!has_long && !has_short)
		return RL_OK;
	int rot = c->rotary_dim ? c->rotary_dim : c->head_dim;
	c->rope_type = RL_ROPE_LONGROPE;
	c->rope_n_factors = rot / 2;
	if (c->rope_n_factors > RL_MAX_ROPE_FACTORS)
		return rl_error(RL_EDATA, "'%s': rotary dimension %d", gguf_path(g), rot);
	if ((rc = read_factors(g, "rope_factors_short.weight", c->rope_n_factors, c->rope_short)) ||
	    (rc = read_factors(g, "rope_factors_long.weight", c->rope_n_factors, c->rope_long)))
		return rc;
	c->rope_factor = (double)c->max_position / c->rope_original_max_position;
	c->rope_attn_factor = 1;
	return get_float(g, akey(arch_s, "rope.scaling.attn_factor", k, sizeof k), 1,
			 &c->rope_attn_factor);
}

static int read_config(const rl_gguf *g, const char *arch_s, rl_config *c)
{
	const char *path = gguf_path(g);
	char k[128];
	int rc;
	rl_arch arch;
	if (strcmp(arch_s, "llama") == 0)
		arch = RL_ARCH_LLAMA;
	else if (strcmp(arch_s, "qwen2") == 0)
		arch = RL_ARCH_QWEN2;
	else if (strcmp(arch_s, "gemma") == 0)
		arch = RL_ARCH_GEMMA;
	else if (strcmp(arch_s, "qwen3") == 0)
		arch = RL_ARCH_QWEN3;
	else if (strcmp(arch_s, "gemma2") == 0)
		arch = RL_ARCH_GEMMA2;
	else if (strcmp(arch_s, "gemma3") == 0)
		arch = RL_ARCH_GEMMA3;
	else if (strcmp(arch_s, "olmo2") == 0)
		arch = RL_ARCH_OLMO2;
	else if (strcmp(arch_s, "phi3") == 0)
		arch = RL_ARCH_PHI3;
	else
		return rl_error(RL_EDATA,
				"'%s': architecture '%s' is not supported (llama, qwen2, gemma, "
				"qwen3, gemma2, gemma3, olmo2 and phi3 are)",
				path, arch_s);
	rl_config_defaults(c, arch);
	if ((rc = get_int(g, akey(arch_s, "block_count", k, sizeof k), 0, 1, &c->n_layers)) ||
	    (rc = get_int(g, akey(arch_s, "embedding_length", k, sizeof k), 0, 1,
			  &c->hidden_size)) ||
	    (rc = get_int(g, akey(arch_s, "feed_forward_length", k, sizeof k), 0, 1,
			  &c->intermediate_size)) ||
	    (rc = get_int(g, akey(arch_s, "attention.head_count", k, sizeof k), 0, 1, &c->n_heads)))
		return rc;
	c->n_kv_heads = c->n_heads;
	c->head_dim = c->hidden_size / c->n_heads;
	if ((rc = get_int(g, akey(arch_s, "attention.head_count_kv", k, sizeof k), 1, 1,
			  &c->n_kv_heads)) ||
	    (rc = get_int(g, akey(arch_s, "attention.key_length", k, sizeof k), 1, 1,
			  &c->head_dim)) ||
	    (rc = get_int(g, akey(arch_s, "context_length", k, sizeof k), 0, 1,
			  &c->max_position)) ||
	    (rc = get_float(g, akey(arch_s, "attention.layer_norm_rms_epsilon", k, sizeof k), 0,
			    &c->rms_eps)) ||
	    (rc = get_float(g, akey(arch_s, "rope.freq_base", k, sizeof k), 1, &c->rope_theta)))
		return rc;
	if (c->n_heads % c->n_kv_heads)
		return rl_error(RL_EDATA, "'%s': %d heads are not a multiple of %d kv heads", path,
				c->n_heads, c->n_kv_heads);
	int vlen = c->head_dim, rope_dim = c->head_dim;
	if ((rc = get_int(g, akey(arch_s, "attention.value_length", k, sizeof k), 1, 1, &vlen)) ||
	    (rc = get_int(g, akey(arch_s, "rope.dimension_count", k, sizeof k), 1, 1, &rope_dim)))
		return rc;
	if (vlen != c->head_dim)
		return rl_error(RL_EDATA, "'%s': value length %d differs from key length %d", path,
				vlen, c->head_dim);
	if (rope_dim != c->head_dim &&
	    !(arch == RL_ARCH_PHI3 && rope_dim > 0 && rope_dim < c->head_dim && rope_dim % 2 == 0))
		return rl_error(RL_EDATA,
				"'%s': rotary dimension %d is not head_dim %d (partial rotary "
				"embeddings are Phi-3's only)",
				path, rope_dim, c->head_dim);
	if (arch == RL_ARCH_PHI3)
		c->rotary_dim = rope_dim;
	rl_gguf_str st;
	rc = rl_gguf_get_str(g, akey(arch_s, "rope.scaling.type", k, sizeof k), &st);
	if (rc == RL_NO) {
		rl_error_clear();
	} else if (rc) {
		return rc;
	} else if (st.len == 6 && memcmp(st.s, "linear", 6) == 0) {
		c->rope_type = RL_ROPE_LINEAR;
		if ((rc = get_float(g, akey(arch_s, "rope.scaling.factor", k, sizeof k), 0,
				    &c->rope_factor)))
			return rc;
	} else if (!(st.len == 4 && memcmp(st.s, "none", 4) == 0)) {
		return rl_error(RL_EDATA, "'%s': rope scaling '%.*s' is not supported", path,
				(int)(st.len > 32 ? 32 : st.len), st.s);
	}
	const rl_gguf_tensor *emb = rl_gguf_find(g, "token_embd.weight");
	if (!emb || emb->ndim != 2)
		return rl_error(RL_EDATA, "'%s': no 2-D tensor 'token_embd.weight'", path);
	if (emb->ne[1] > (1u << 30))
		return rl_error(RL_EDATA, "'%s': %llu embedding rows", path,
				(unsigned long long)emb->ne[1]);
	c->vocab_size = (int)emb->ne[1];
	int vs = c->vocab_size;
	if ((rc = get_int(g, akey(arch_s, "vocab_size", k, sizeof k), 1, 1, &vs)))
		return rc;
	if (vs != c->vocab_size)
		return rl_error(RL_EDATA, "'%s': vocab_size %d but %d embedding rows", path, vs,
				c->vocab_size);
	c->tie_word_embeddings = !has_tensor(g, "output.weight");
	/* biases, from layer 0 (every layer is checked against the config later) */
	int qb = has_tensor(g, "blk.0.attn_q.bias"), kb = has_tensor(g, "blk.0.attn_k.bias"),
	    vb = has_tensor(g, "blk.0.attn_v.bias"), ob = has_tensor(g, "blk.0.attn_output.bias"),
	    gb = has_tensor(g, "blk.0.ffn_gate.bias"), ub = has_tensor(g, "blk.0.ffn_up.bias"),
	    db = has_tensor(g, "blk.0.ffn_down.bias");
	if (qb != kb || qb != vb || gb != ub || gb != db)
		return rl_error(RL_EDATA, "'%s': biases on only some of q/k/v or gate/up/down",
				path);
	c->attention_bias = qb;
	c->o_bias = ob;
	c->mlp_bias = gb;
	if (arch == RL_ARCH_QWEN2 && (!qb || ob || gb))
		return rl_error(RL_EDATA,
				"'%s': a Qwen2 model has biases on q, k and v only; this file has "
				"other ones",
				path);
	if ((arch == RL_ARCH_LLAMA || arch == RL_ARCH_GEMMA || arch == RL_ARCH_QWEN3 ||
	     arch == RL_ARCH_GEMMA2 || arch == RL_ARCH_GEMMA3 || arch == RL_ARCH_OLMO2) &&
	    qb != ob)
		return rl_error(
			RL_EDATA,
			"'%s': attention biases on q/k/v without o (or o alone) cannot be a "
			"%s",
			path, rl_arch_name(arch));
	if ((arch == RL_ARCH_GEMMA || arch == RL_ARCH_GEMMA2 || arch == RL_ARCH_GEMMA3) && gb)
		return rl_error(RL_EDATA, "'%s': Gemma has no MLP biases", path);
	if (arch == RL_ARCH_GEMMA2 && (rc = read_gemma2(g, arch_s, c)))
		return rc;
	if (arch == RL_ARCH_GEMMA3 && (rc = read_gemma3(g, arch_s, c)))
		return rc;
	if (arch == RL_ARCH_PHI3 && (rc = read_phi3(g, arch_s, c)))
		return rc;
	uint32_t sw;
	if (arch == RL_ARCH_OLMO2 &&
	    (rc = rl_gguf_get_u32(g, akey(arch_s, "attention.sliding_window", k, sizeof k), &sw)) !=
		    RL_NO)
		return rc ? rc
			  : rl_error(RL_EDATA,
				     "'%s': '%s': OLMo 2 has no sliding window (an OLMo 3 file?)",
				     path, k);
	uint32_t id;
	c->bos_token_id = -1;
	c->n_eos = 0;
	/* the embedding's padding_idx: the tokenizer's pad token, if in the vocabulary */
	c->pad_token_id = -1;
	if ((rc = rl_gguf_get_u32(g, "tokenizer.ggml.padding_token_id", &id)) == RL_OK &&
	    id < (uint32_t)c->vocab_size)
		c->pad_token_id = (int)id;
	else if (rc != RL_OK && rc != RL_NO)
		return rc;
	if ((rc = rl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &id)) == RL_OK)
		c->bos_token_id = (int)id;
	else if (rc != RL_NO)
		return rc;
	if ((rc = rl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &id)) == RL_OK)
		c->eos_token_ids[c->n_eos++] = (int)id;
	else if (rc != RL_NO)
		return rc;
	rl_error_clear();
	return RL_OK;
}

static int add_tensor(const rl_config *c, const rl_gguf_tensor *src, const char *name,
		      rl_gguf_hf_tensor *t)
{
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->src = src;
	if (src->ndim == 1) {
		t->ndim = 1;
		t->shape[0] = (int64_t)src->ne[0];
	} else if (src->ndim == 2) {
		t->ndim = 2;
		t->shape[0] = (int64_t)src->ne[1];
		t->shape[1] = (int64_t)src->ne[0];
	} else {
		return rl_error(RL_EDATA, "'%s': tensor '%s' has %d dimensions", src->path,
				src->name, src->ndim);
	}
	if (!rl_ggml_can_dequant(src->type))
		return rl_error(RL_EDATA,
				"'%s': tensor '%s' is of type %s, which rl-import cannot "
				"dequantize",
				src->path, src->name,
				rl_ggml_type_name(src->type) ? rl_ggml_type_name(src->type) : "?");
	t->xform = RL_GX_COPY;
	size_t len = strlen(name);
	if (c->arch == RL_ARCH_LLAMA) {
		if (strstr(name, ".self_attn.q_proj."))
			t->xform = RL_GX_UNPERMUTE, t->n_head = c->n_heads;
		else if (strstr(name, ".self_attn.k_proj."))
			t->xform = RL_GX_UNPERMUTE, t->n_head = c->n_kv_heads;
		if (t->xform == RL_GX_UNPERMUTE && (uint64_t)t->shape[0] % (2u * t->n_head))
			return rl_error(RL_EDATA,
					"'%s': tensor '%s': %lld rows are not whole heads",
					src->path, src->name, (long long)t->shape[0]);
	}
	if ((c->arch == RL_ARCH_GEMMA || c->arch == RL_ARCH_GEMMA2 || c->arch == RL_ARCH_GEMMA3) &&
	    len >= 11 && strcmp(name + len - 11, "norm.weight") == 0)
		t->xform = RL_GX_MINUS_ONE;
	return RL_OK;
}

/* Every role the config implies is present, with the implied shape. */
static int check_roles(const rl_gguf *g, const rl_gguf_hf *m)
{
	const rl_config *c = &m->cfg;
	for (int layer = -1; layer < c->n_layers; layer++) {
		for (int r = RL_R_EMBED; r < RL_R_COUNT; r++) {
			int per_layer = r >= RL_R_ATTN_NORM;
			if ((layer >= 0) != per_layer || !rl_role_present(c, (rl_role)r))
				continue;
			char name[128];
			if (rl_role_tensor_name(layer, (rl_role)r, name, sizeof name))
				return RL_USAGE;
			int64_t want[2];
			int nd = rl_role_shape(c, (rl_role)r, want);
			const rl_gguf_hf_tensor *t = NULL;
			for (size_t i = 0; i < m->n && !t; i++)
				if (strcmp(m->t[i].name, name) == 0)
					t = &m->t[i];
			if (!t)
				return rl_error(RL_EDATA, "'%s': a %s needs '%s', which is missing",
						gguf_path(g), c->architecture, name);
			if (t->ndim != nd || t->shape[0] != want[0] ||
			    (nd == 2 && t->shape[1] != want[1]))
				return rl_error(
					RL_EDATA,
					"'%s': tensor '%s' ('%s') has shape [%lld%s%lld], the "
					"config implies [%lld%s%lld]",
					gguf_path(g), t->src->name, name, (long long)t->shape[0],
					t->ndim == 2 ? ", " : "",
					t->ndim == 2 ? (long long)t->shape[1] : 0LL,
					(long long)want[0], nd == 2 ? ", " : "",
					nd == 2 ? (long long)want[1] : 0LL);
		}
	}
	return RL_OK;
}

int rl_gguf_hf_map(const rl_gguf *g, rl_gguf_hf *m)
{
	memset(m, 0, sizeof *m);
	char *arch = NULL;
	int rc = rl_gguf_get_cstr(g, "general.architecture", &arch);
	if (rc)
		return rc;
	rc = read_config(g, arch, &m->cfg);
	free(arch);
	if (rc)
		return rc;
	m->t = rl_calloc(g->ntensors ? g->ntensors : 1, sizeof *m->t);
	if (!m->t)
		return RL_ESYS;
	for (size_t i = 0; i < g->ntensors; i++) {
		const rl_gguf_tensor *src = g->tensors[i];
		if (strcmp(src->name, "rope_freqs.weight") == 0) {
			if ((rc = check_rope_freqs(src)))
				goto fail;
			continue;
		}
		if (m->cfg.arch == RL_ARCH_PHI3 &&
		    (strcmp(src->name, "rope_factors_long.weight") == 0 ||
		     strcmp(src->name, "rope_factors_short.weight") == 0))
			continue; /* in the config's longrope */
		char name[96];
		int layer;
		if (!hf_name(&m->cfg, src->name, name, sizeof name, &layer)) {
			rc = rl_error(RL_EDATA, "'%s': tensor '%s' has no place in a %s", src->path,
				      src->name, m->cfg.architecture);
			goto fail;
		}
		if (layer >= m->cfg.n_layers) {
			rc = rl_error(RL_EDATA, "'%s': tensor '%s' is beyond the %d layers",
				      src->path, src->name, m->cfg.n_layers);
			goto fail;
		}
		if ((rc = add_tensor(&m->cfg, src, name, &m->t[m->n])))
			goto fail;
		m->numel += src->numel;
		m->n++;
	}
	/* tensors the config does not expect (a bias on layer 3 only) */
	for (size_t i = 0; i < m->n; i++) {
		int layer;
		char dummy[96];
		hf_name(&m->cfg, m->t[i].src->name, dummy, sizeof dummy, &layer);
		int ok = 0;
		for (int r = RL_R_EMBED; r < RL_R_COUNT && !ok; r++) {
			char name[128];
			if ((layer >= 0) != (r >= RL_R_ATTN_NORM) ||
			    !rl_role_present(&m->cfg, (rl_role)r) ||
			    rl_role_tensor_name(layer, (rl_role)r, name, sizeof name))
				continue;
			ok = strcmp(name, m->t[i].name) == 0;
		}
		if (!ok) {
			rc = rl_error(RL_EDATA, "'%s': tensor '%s' does not fit this %s's config",
				      m->t[i].src->path, m->t[i].src->name, m->cfg.architecture);
			goto fail;
		}
	}
	if ((rc = check_roles(g, m)))
		goto fail;
	return RL_OK;
fail:
	rl_gguf_hf_free(m);
	return rc;
}

void rl_gguf_hf_free(rl_gguf_hf *m)
{
	free(m->t);
	memset(m, 0, sizeof *m);
}

uint64_t rl_gguf_hf_rows(const rl_gguf_hf_tensor *t)
{
	return t->ndim == 2 ? (uint64_t)t->shape[0] : 1;
}

uint64_t rl_gguf_hf_cols(const rl_gguf_hf_tensor *t)
{
	return t->ndim == 2 ? (uint64_t)t->shape[1] : (uint64_t)t->shape[0];
}

/* The converter's permute viewed each head's rows as [2][half] and stored
 * them as [half][2]: HF row i * half + j of a head is stored row 2j + i. */
static uint64_t stored_row(uint64_t r, uint64_t per_head)
{
	uint64_t half = per_head / 2, h = r / per_head, w = r % per_head;
	return h * per_head + 2 * (w % half) + w / half;
}

int rl_gguf_hf_read(const rl_gguf_hf_tensor *t, uint64_t row0, uint64_t nrows, float *dst)
{
	uint64_t rows = rl_gguf_hf_rows(t), cols = rl_gguf_hf_cols(t);
	if (row0 > rows || nrows > rows - row0)
		return rl_error(RL_USAGE, "'%s': rows [%llu, +%llu) outside the tensor", t->name,
				(unsigned long long)row0, (unsigned long long)nrows);
	int rc;
	if (t->xform == RL_GX_UNPERMUTE && t->ndim == 2) {
		uint64_t per_head = rows / (uint64_t)t->n_head;
		for (uint64_t r = 0; r < nrows; r++)
			if ((rc = rl_gguf_dequant_rows(t->src, stored_row(row0 + r, per_head), 1,
						       dst + r * cols)))
				return rc;
		return RL_OK;
	}
	if ((rc = rl_gguf_dequant_rows(t->src, row0, nrows, dst)))
		return rc;
	if (t->xform == RL_GX_UNPERMUTE) { /* a bias: one row of values */
		float *tmp = rl_malloc_array(cols, sizeof *tmp);
		if (!tmp)
			return RL_ESYS;
		memcpy(tmp, dst, cols * sizeof *tmp);
		uint64_t per_head = cols / (uint64_t)t->n_head;
		for (uint64_t i = 0; i < cols; i++)
			dst[i] = tmp[stored_row(i, per_head)];
		free(tmp);
	} else if (t->xform == RL_GX_MINUS_ONE) {
		for (uint64_t i = 0; i < nrows * cols; i++)
			dst[i] = dst[i] - 1.0f;
	}
	return RL_OK;
}

#define PIECE_BYTES (4u << 20) /* f32 bytes converted at a time */

struct fill_ctx {
	rl_dtype dtype;
	float *f32;
	void *narrow;
	uint64_t done, total; /* elements */
	size_t ntensors, tensors_done;
	rl_gguf_hf_progress progress;
	void *pctx;
};

static int fill(void *vctx, const rl_st_wtensor *w, rl_st_sink *sink)
{
	struct fill_ctx *ctx = vctx;
	const rl_gguf_hf_tensor *t = w->data;
	uint64_t rows = rl_gguf_hf_rows(t), cols = rl_gguf_hf_cols(t);
	uint64_t step = PIECE_BYTES / 4 / (cols ? cols : 1);
	if (step == 0)
		step = 1;
	for (uint64_t r = 0; r < rows; r += step) {
		uint64_t n = rows - r < step ? rows - r : step;
		int rc = rl_gguf_hf_read(t, r, n, ctx->f32);
		if (rc)
			return rc;
		size_t k = (size_t)(n * cols);
		const void *bytes = ctx->f32;
		if (ctx->dtype != RL_DT_F32) {
			rl_narrow(ctx->dtype, ctx->f32, ctx->narrow, k);
			bytes = ctx->narrow;
		}
		if ((rc = rl_st_sink_write(sink, bytes, k * rl_dtype_size(ctx->dtype))))
			return rc;
		ctx->done += k;
		if (ctx->progress)
			ctx->progress(ctx->pctx, ctx->tensors_done, ctx->ntensors, t->name,
				      ctx->done, ctx->total);
	}
	rl_gguf_release(t->src);
	ctx->tensors_done++;
	return RL_OK;
}

int rl_gguf_hf_write(const char *dir, const rl_gguf_hf *m, rl_dtype dtype, uint64_t max_shard_bytes,
		     rl_gguf_hf_progress progress, void *pctx)
{
	if (dtype != RL_DT_F32 && dtype != RL_DT_F16 && dtype != RL_DT_BF16)
		return rl_error(RL_USAGE, "weights are written as F32, F16 or BF16");
	rl_st_wtensor *w = rl_calloc(m->n ? m->n : 1, sizeof *w);
	struct fill_ctx ctx = {dtype, NULL, NULL, 0, m->numel, m->n, 0, progress, pctx};
	uint64_t widest = 1;
	for (size_t i = 0; i < m->n; i++)
		widest = rl_gguf_hf_cols(&m->t[i]) > widest ? rl_gguf_hf_cols(&m->t[i]) : widest;
	uint64_t piece = widest > PIECE_BYTES / 4 ? widest : PIECE_BYTES / 4;
	ctx.f32 = rl_malloc_array(piece, sizeof(float));
	ctx.narrow = rl_malloc_array(piece, sizeof(float));
	int rc = RL_ESYS;
	if (w && ctx.f32 && ctx.narrow) {
		for (size_t i = 0; i < m->n; i++) {
			w[i].name = m->t[i].name;
			w[i].dtype = dtype;
			w[i].ndim = m->t[i].ndim;
			w[i].shape[0] = m->t[i].shape[0];
			w[i].shape[1] = m->t[i].shape[1];
			w[i].data = &m->t[i]; /* passed through to fill() */
		}
		rl_config c = m->cfg;
		snprintf(c.torch_dtype, sizeof c.torch_dtype, "%s",
			 dtype == RL_DT_BF16  ? "bfloat16"
			 : dtype == RL_DT_F16 ? "float16"
					      : "float32");
		rc = rl_model_write_fill(dir, &c, w, m->n, max_shard_bytes, fill, &ctx);
	}
	free(w);
	free(ctx.f32);
	free(ctx.narrow);
	return rc;
}
