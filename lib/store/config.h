/* config.h — a HuggingFace config.json, parsed into the hyperparameters realign uses.
 *
 * Supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
 * GemmaForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM
 * (model_type gemma3_text: Gemma 3's text-only release; the multimodal
 * Gemma3ForConditionalGeneration is refused), Olmo2ForCausalLM, Phi3ForCausalLM
 * (Phi-3, Phi-3.5, Phi-4 mini). Defaults for absent
 * keys follow transformers' (5.x) configuration classes for that architecture
 * (e.g. head_dim = hidden_size / num_attention_heads, but 256 for Gemma and
 * Gemma 2, 128 for Qwen3; num_key_value_heads = heads for Llama, 8 for
 * Mistral, 32 for Qwen2 and Qwen3, 16 for Gemma, 4 for Gemma 2); an explicit
 * null is refused where transformers' field is not Optional. Anything else is refused with a message naming the
 * architecture. The architecture is architectures[0] (model_type when absent);
 * both present and disagreeing is refused.
 *
 * What the model computes, as transformers does it:
 *   - biases: Llama, Gemma, Gemma 2 and Qwen3 attention_bias puts biases on q,
 *     k, v AND o;
 *     Llama mlp_bias on gate, up, down; Qwen2 always q, k, v (never o); Mistral
 *     none.
 *   - Qwen3: RMSNorm over each head of q and of k (q_norm, k_norm: [head_dim]
 *     weights) after the projections, before RoPE (qk_norm).
 *   - activation: hidden_act only; for Gemma "gelu" means the tanh approximation
 *     (GemmaConfig.__post_init__), and "hidden_activation" is ignored (as in 5.x).
 *     Gemma 2 the other way round: hidden_activation only (default
 *     gelu_pytorch_tanh; "gelu" is the exact GELU), hidden_act ignored.
 *   - Gemma, Gemma 2: RMSNorm scales by (1 + w) and embeddings are multiplied
 *     by sqrt(hidden_size) (norm_plus_one, embed_scale).
 *   - Gemma 2: four norms a layer (RL_NORMS_SANDWICH); attention scores scaled
 *     by query_pre_attn_scalar ** -0.5 (default 256) and soft-capped by
 *     attn_logit_softcapping (50), the logits by final_logit_softcapping (30;
 *     null: none); layer_types default to sliding_attention on even layers;
 *     use_bidirectional_attention is refused.
 *   - Gemma 3: Gemma 2's norms and scale, q/k norms per head (scaling by 1 + w
 *     like every Gemma norm), no attention soft-cap (transformers' Gemma 3
 *     attention never applies attn_logit_softcapping: it is read and unused),
 *     final_logit_softcapping default null; layer_types default to every
 *     sliding_window_pattern-th (6) layer global, the others sliding; two
 *     RoPEs: the global layers' (rope_theta, default 1e6, with rope_scaling)
 *     and the sliding layers' (rope_local_base_freq, default 1e4, unscaled),
 *     or rope_parameters nested by layer type (transformers 5).
 *   - OLMo 2: no norm on the layer's inputs; post_attention_layernorm on the
 *     attention's output and post_feedforward_layernorm on the MLP's
 *     (RL_NORMS_POST); q_norm and k_norm over the whole q and k projections
 *     (RL_QK_NORM_FULL); head_dim read where present (transformers reads it
 *     with getattr), else hidden_size / num_attention_heads.
 *   - Phi-3: q, k, v fused in one qkv_proj, gate and up in one gate_up_proj
 *     (fused_proj: the tensors as stored are what the method scores, selects
 *     and restores, element by element); no biases; sliding_window (null by
 *     default) on every layer; partial_rotary_factor (RoPE on the first
 *     rotary_dim of each head, Phi-4 mini); rope_scaling null or longrope
 *     ("su", "yarn" are its old names): short_factor for sequences up to
 *     original_max_position_embeddings, long_factor beyond (chosen per forward
 *     pass by its last position, as transformers' dynamic update does), cos
 *     and sin times attention_factor (default sqrt(1 + ln(factor) /
 *     ln(original)), factor defaulting to max / original positions).
 *   - rope: "rope_scaling" (4.x) wins when set, else "rope_parameters" (5.x);
 *     rope_theta inside the dict, else at the top level, else 10000; type from
 *     "rope_type" or "type"; llama3 needs factor/low_freq_factor/high_freq_factor,
 *     original_max_position_embeddings defaults to max_position_embeddings;
 *     other rope types and partial_rotary_factor != 1 are refused.
 *   - pad_token_id (default None; Gemma, Gemma 2: 0) is the embedding's
 *     padding_idx: transformers' embedding gradient leaves its row at zero.
 *   - sliding window: Mistral's applies to every layer (null: none); Qwen2's and
 *     Qwen3's only with use_sliding_window, to the layers from max_window_layers
 *     on, or to those layer_types names "sliding_attention" (any order);
 *     Gemma 2's to its layer_types' sliding layers.
 *     rl_config_layer_window() is the one rule every layer loop asks.
 * Duplicate keys anywhere in config.json are refused (Python keeps the last,
 * cJSON the first: the two would read different models).
 */
#ifndef RL_CONFIG_H
#define RL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum rl_arch {
	RL_ARCH_LLAMA,
	RL_ARCH_MISTRAL,
	RL_ARCH_QWEN2,
	RL_ARCH_GEMMA,
	RL_ARCH_QWEN3,
	RL_ARCH_GEMMA2,
	RL_ARCH_GEMMA3,
	RL_ARCH_OLMO2,
	RL_ARCH_PHI3,
} rl_arch;

/* Where a decoder layer's RMSNorms are. */
typedef enum rl_norm_layout {
	RL_NORMS_PRE,	   /* input_layernorm before attention, post_attention_layernorm
			    * before the MLP */
	RL_NORMS_SANDWICH, /* Gemma 2, 3: input_layernorm, then post_attention_layernorm
			    * on the attention's output; pre_feedforward_layernorm, then
			    * post_feedforward_layernorm on the MLP's output */
	RL_NORMS_POST,	   /* OLMo 2: no norm on the inputs; post_attention_layernorm on
			    * the attention's output, post_feedforward_layernorm on the
			    * MLP's */
} rl_norm_layout;

/* RMSNorm on the query and key projections, before RoPE. */
typedef enum rl_qk_norm {
	RL_QK_NORM_NONE,
	RL_QK_NORM_HEAD, /* over each head's head_dim (weights [head_dim]): Qwen3, Gemma 3 */
	RL_QK_NORM_FULL, /* over all of q, and of k (weights [heads * head_dim]): OLMo 2 */
} rl_qk_norm;

typedef enum rl_act {
	RL_ACT_SILU,	  /* x * sigmoid(x) (SwiGLU) */
	RL_ACT_GELU_TANH, /* tanh approximation ("gelu_pytorch_tanh", "gelu_new") */
	RL_ACT_GELU,	  /* exact erf GELU ("gelu") */
} rl_act;

typedef enum rl_rope_type {
	RL_ROPE_DEFAULT,
	RL_ROPE_LINEAR,	  /* positions divided by factor */
	RL_ROPE_LLAMA3,	  /* Llama-3.1 frequency-dependent scaling */
	RL_ROPE_LONGROPE, /* Phi-3: short/long frequency factors, attention factor */
} rl_rope_type;

#define RL_MAX_ROPE_FACTORS 512 /* longrope factors: rotary_dim / 2 of them */

#define RL_MAX_EOS 8
/* layer_types lists at most this many layers (a bit each in rl_config) */
#define RL_MAX_LAYER_TYPES 4096

typedef struct rl_config {
	rl_arch arch;
	char architecture[64]; /* as written, e.g. "LlamaForCausalLM" */
	char model_type[32];   /* "llama", "mistral", "qwen2", "gemma" */
	int hidden_size;
	int n_layers;
	int n_heads;
	int n_kv_heads;
	int head_dim;
	int intermediate_size;
	int vocab_size;
	int max_position; /* max_position_embeddings */
	double rms_eps;
	double rope_theta;	 /* the RoPE of every layer (Gemma 3: of the global ones) */
	double rope_local_theta; /* Gemma 3: the sliding layers' RoPE (default type); 0: none */
	rl_rope_type rope_type;
	double rope_factor;
	double rope_low_freq_factor;
	double rope_high_freq_factor;
	int rope_original_max_position;
	int rotary_dim;	    /* RoPE on the first rotary_dim of each head (0: head_dim) */
	int rope_n_factors; /* longrope: rotary_dim / 2 */
	float rope_short[RL_MAX_ROPE_FACTORS], rope_long[RL_MAX_ROPE_FACTORS];
	double rope_attn_factor; /* longrope: cos and sin multiplied by it */
	int fused_proj;		 /* Phi-3: qkv_proj and gate_up_proj */
	int tie_word_embeddings;
	int attention_bias; /* q/k/v (and o for llama's attention_bias) carry biases */
	int o_bias;	    /* o_proj carries a bias (llama attention_bias; not qwen2) */
	int mlp_bias;	    /* gate/up/down carry biases (llama mlp_bias) */
	rl_act act;
	int norm_plus_one; /* Gemma: RMSNorm scales by (1 + w) */
	int embed_scale;   /* Gemma: embeddings multiplied by sqrt(hidden_size) */
	rl_qk_norm qk_norm;
	rl_norm_layout norms;
	double query_pre_attn_scalar; /* scores scaled by its ** -0.5 (0: head_dim's) */
	double attn_softcap;	      /* attention scores soft-capped (0: not) */
	double final_softcap;	      /* logits soft-capped (0: not) */
	int sliding_window;	      /* 0 when none */
	int sliding_window_from;      /* first layer using the window (Qwen2's max_window_layers);
				  * 0 for Mistral (every layer) */
	int has_layer_types; /* layer_types decides (sliding_layers), not sliding_window_from */
	unsigned char sliding_layers[RL_MAX_LAYER_TYPES / 8]; /* bit l: layer l is
							       * "sliding_attention" */
	int bos_token_id;				      /* -1 when absent */
	int pad_token_id; /* -1 when none: nn.Embedding's padding_idx, whose row gets
			   * no gradient in transformers */
	int eos_token_ids[RL_MAX_EOS];
	int n_eos;
	char torch_dtype[16];
	char name_or_path[256]; /* "_name_or_path" (the hub id it was saved from), or "" */
} rl_config;

/* "LlamaForCausalLM", ... */
const char *rl_arch_name(rl_arch a);

/* c = transformers' defaults for arch (what an empty config.json of that
 * architecture means): a starting point for configs built in code. */
void rl_config_defaults(rl_config *c, rl_arch arch);

/* 1 if layer l is a "sliding_attention" layer, and the window it attends
 * within (0: the whole prefix) -- the per-layer rule of every architecture
 * (Mistral: all layers; Qwen2/3: max_window_layers or layer_types). */
int rl_config_layer_sliding(const rl_config *c, int layer);
int rl_config_layer_window(const rl_config *c, int layer);

/* Parameters of one decoder layer (q,k,v,o,gate,up,down weights, their biases
 * where configured, every norm) and of all of them (P of ALGORITHM.md). */
uint64_t rl_config_layer_params(const rl_config *c);
uint64_t rl_config_param_count(const rl_config *c);

/* Parses config.json text (len bytes) into c; path names the file in messages. */
int rl_config_parse(rl_config *c, const char *text, size_t len, const char *path);
/* The top-level keys of config.json text that realign neither reads nor
 * knows to leave the computation unchanged (initializer_range, use_cache,
 * dropout rates at inference, version strings, ...): comma-separated into out
 * (cap bytes, truncated with "..."); returns how many. Such a key is ignored,
 * as transformers ignores keys its class does not declare; rl-info names
 * them. Malformed text: 0. */
int rl_config_unread_keys(const char *text, size_t len, char *out, size_t cap);
/* Reads and parses <dir>/config.json. */
int rl_config_load(rl_config *c, const char *dir);
/* Writes c as a config.json transformers loads (used by rl-train --init random),
 * via "<path>.tmp" + rename. rl_config_parse of the result gives c back (the
 * architecture, model_type and hyperparameters; torch_dtype as "dtype").
 * RL_USAGE when c holds what its architecture cannot express (e.g. an o_proj
 * bias for Qwen2, exact GELU for Gemma). */
int rl_config_write(const rl_config *c, const char *path);

#endif
