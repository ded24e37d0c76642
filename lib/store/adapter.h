/* adapter.h — a PEFT LoRA adapter directory, read and checked against a base.
 *
 * PEFT's save_pretrained writes adapter_config.json and
 * adapter_model.safetensors; each adapted Linear of the base model
 * ("model.layers.3.self_attn.q_proj") has
 *     base_model.model.<module>.lora_A.weight   [r, in_features]
 *     base_model.model.<module>.lora_B.weight   [out_features, r]
 * and stands for W + scale * B @ A, scale = lora_alpha / r, or
 * lora_alpha / sqrt(r) with use_rslora (rsLoRA).
 *
 * What the config says is checked, never ignored: peft_type must be LORA; a
 * setting that changes the arithmetic and that realign does not implement
 * (use_dora, modules_to_save, bias other than "none", lora_bias,
 * fan_in_fan_out, rank_pattern, alpha_pattern, target_parameters,
 * layer_replication, trainable_token_indices, use_qalora, ...) is refused by
 * name, and so is any key realign does not know whose value is set (not
 * null, false, {} or []), since a future PEFT field may change the math.
 * Keys that only shape training or initialisation (lora_dropout,
 * init_lora_weights, loftq_config, target_modules, ...) are read or skipped.
 * Every lora_A needs its lora_B with the config's rank; other tensors (a
 * lora_embedding_A, a saved base weight) are refused by name. All failures
 * are RL_EDATA naming the adapter's file.
 *
 * Against a base model (rl_adapter_check): every adapted module's weight
 * exists in the base with shape [out, in] matching B's rows and A's columns,
 * and its module name ends in one of target_modules. When both
 * adapter_config's base_model_name_or_path and the base are named (the
 * base's config.json _name_or_path, else its directory name), their last
 * path components must agree, ignoring case: an adapter made for another
 * model is refused (the caller may skip this check).
 */
#ifndef RL_ADAPTER_H
#define RL_ADAPTER_H

#include <stddef.h>

#include "core/options.h"
#include "store/model.h"
#include "store/safetensors.h"

typedef struct rl_lora {
	char *weight;	       /* the base tensor it changes, "model.layers.0.mlp.up_proj.weight" */
	const rl_st_tensor *a; /* [r, in] */
	const rl_st_tensor *b; /* [out, r] */
} rl_lora;

typedef struct rl_adapter {
	char *dir;
	rl_st_file file;
	int r;
	double alpha;
	int rslora;
	float scale;	/* alpha / r, or alpha / sqrt(r) */
	char **targets; /* target_modules (a list); NULL when given as a regex */
	size_t ntargets;
	char *target_regex; /* target_modules given as one string (a regex) */
	char *base_name;    /* base_model_name_or_path, or NULL */
	rl_lora *loras;	    /* sorted by weight name */
	size_t nloras;
} rl_adapter;

/* Reads and checks dir (see above). */
int rl_adapter_open(rl_adapter *a, const char *dir);
void rl_adapter_close(rl_adapter *a);

/* Checks a against base; check_name: also compare the models' names. */
int rl_adapter_check(const rl_adapter *a, const rl_model *base, int check_name);

/* The LoRA pair that changes base tensor name, or NULL. */
const rl_lora *rl_adapter_find(const rl_adapter *a, const char *weight);

/* -A ADAPTER and --any-base, for the tools that read a model for evaluation
 * (method/merge.h: rl_merge_adapter_dir), declared once. */
#define RL_OPT_ADAPTER(p)                                                                          \
	RL_OPT_STRING('A', "adapter", "DIR", p,                                                    \
		      "a PEFT LoRA adapter of the model, merged in memory as rl-merge merges it")
#define RL_OPT_ANY_BASE(p)                                                                         \
	RL_OPT_FLAG(0, "any-base", p,                                                              \
		    "take the adapter even when adapter_config.json names another base model")

/* ---- writing (adapter_write.c) ---- */

/* What adapter_config.json says of an adapter realign trained. */
typedef struct rl_adapter_meta {
	int r;
	double alpha;
	int rslora;
	double dropout;
	const char *const *targets; /* module names ("q_proj", ...) */
	size_t ntargets;
	const char *base_name; /* base_model_name_or_path; NULL: null */
} rl_adapter_meta;

/* Writes dir/adapter_config.json (a PEFT LoraConfig: peft_type LORA,
 * task_type CAUSAL_LM, bias "none", init_lora_weights true, inference_mode
 * true, the settings above; every other field at PEFT's default) and
 * dir/adapter_model.safetensors (the tensors as given: PEFT's names, with
 * metadata {"format": "pt"}), each through a temporary file renamed into
 * place. dir must exist. What it writes is what rl_adapter_open and
 * peft.PeftModel.from_pretrained read. */
int rl_adapter_write(const char *dir, const rl_adapter_meta *m, const rl_st_wtensor *t, size_t n);

#endif
