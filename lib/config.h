/* config.h — a HuggingFace config.json, parsed into the hyperparameters realign uses.
 *
 * Supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
 * GemmaForCausalLM. Defaults for absent keys follow transformers' configuration
 * classes for that architecture (e.g. head_dim = hidden_size / num_attention_heads,
 * num_key_value_heads = num_attention_heads). Anything else is refused with a
 * message naming the architecture.
 */
#ifndef RL_CONFIG_H
#define RL_CONFIG_H

#include <stddef.h>

typedef enum rl_arch { RL_ARCH_LLAMA, RL_ARCH_MISTRAL, RL_ARCH_QWEN2, RL_ARCH_GEMMA } rl_arch;

typedef enum rl_act {
	RL_ACT_SILU,	  /* x * sigmoid(x) (SwiGLU) */
	RL_ACT_GELU_TANH, /* tanh approximation ("gelu_pytorch_tanh", "gelu_new") */
	RL_ACT_GELU,	  /* exact erf GELU ("gelu") */
} rl_act;

typedef enum rl_rope_type {
	RL_ROPE_DEFAULT,
	RL_ROPE_LINEAR, /* positions divided by factor */
	RL_ROPE_LLAMA3, /* Llama-3.1 frequency-dependent scaling */
} rl_rope_type;

#define RL_MAX_EOS 8

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
	double rope_theta;
	rl_rope_type rope_type;
	double rope_factor;
	double rope_low_freq_factor;
	double rope_high_freq_factor;
	int rope_original_max_position;
	int tie_word_embeddings;
	int attention_bias; /* q/k/v (and o for llama's attention_bias) carry biases */
	int o_bias;	    /* o_proj carries a bias (llama attention_bias; not qwen2) */
	int mlp_bias;	    /* gate/up/down carry biases (llama mlp_bias) */
	rl_act act;
	int norm_plus_one;  /* Gemma: RMSNorm scales by (1 + w) */
	int embed_scale;    /* Gemma: embeddings multiplied by sqrt(hidden_size) */
	int sliding_window; /* 0 when none */
	int bos_token_id;   /* -1 when absent */
	int eos_token_ids[RL_MAX_EOS];
	int n_eos;
	char torch_dtype[16];
} rl_config;

/* Parses config.json text (len bytes) into c; path names the file in messages. */
int rl_config_parse(rl_config *c, const char *text, size_t len, const char *path);
/* Reads and parses <dir>/config.json. */
int rl_config_load(rl_config *c, const char *dir);
/* Writes c as a config.json transformers loads (used by rl-train --init random). */
int rl_config_write(const rl_config *c, const char *path);

#endif
