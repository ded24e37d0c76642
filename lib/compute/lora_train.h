/* lora_train.h — LoRA fine-tuning of a memory-mapped model (rl-train --lora).
 *
 * The base model stays as it is on disk: its weights are read from the
 * read-only map in their own dtype, one decoder layer at a time widened to
 * f32 for the engine's layer code (layer.h, the same forward and backward as
 * full training) and its file pages dropped from the resident set again. Only
 * the adapters (A [r, in] and B [out, r] of every targeted module of every
 * layer, f32) are allocated, with their gradients and both AdamW moments: 16
 * bytes a LoRA parameter (9.2M parameters, 148 MB, for Qwen2.5-1.5B at r 8).
 * Nothing of the base gets a gradient; the input gradient still flows through
 * every frozen weight (and the branch) down to layer 0.
 *
 * The objective is rl-train's (train.h): the mean next-token cross-entropy
 * over the labelled (response) positions of a packed batch; the final norm
 * and lm_head run on the labelled rows only, a group of rows at a time.
 *
 * Memory is bounded by mem_limit (the working set besides the adapters and
 * the one widened layer): a batch runs in chunks of whole sequences; every
 * layer's input is kept for the backward, and layers' activations too while
 * they fit, the others being recomputed from their input just before their
 * backward (the same dropout masks: they are keyed, lora.h). Chunks change
 * the result only by the order of float sums.
 *
 * Dropout masks are keyed by (seed, step, layer, module, row of the batch,
 * column): a run is reproducible, and a resumed run draws what the
 * uninterrupted one drew.
 *
 * Precision (prec below): fp32 by default, PEFT's fp32 results to rounding.
 *
 * Calling order per optimizer step: rl_lmodel_zero_grad, one or more
 * rl_lmodel_forward_backward, rl_lmodel_clip_grad, rl_lmodel_adamw.
 */
#ifndef RL_LORA_TRAIN_H
#define RL_LORA_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "compute/adamw.h"
#include "compute/layer.h"
#include "compute/lora.h"
#include "compute/train.h"
#include "store/model.h"

typedef struct rl_lora_cfg {
	int r;
	double alpha;
	int rslora;	  /* scale alpha / sqrt(r) instead of alpha / r */
	double dropout;	  /* 0 <= p < 1 */
	unsigned targets; /* bit i: module i (rl_lora_target) */
} rl_lora_cfg;

/* The paper's (and the reference's) adapters: r 8, alpha 16, dropout 0.05,
 * the seven projections of every layer. */
void rl_lora_cfg_default(rl_lora_cfg *c);

/* One PEFT tensor: a module's A or B. */
typedef struct rl_lparam {
	char name[128]; /* "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight" */
	int layer;
	rl_lora_target mod;
	int is_b;
	int64_t shape[2];
	size_t numel;
	float *w, *g, *m, *v; /* into the model's arrays */
} rl_lparam;

typedef struct rl_lws rl_lws; /* buffers, grown on demand */

/* Called before each layer's forward (backward: 1) in each chunk, and once
 * with layer == n_layers before the head: a step on a real model takes
 * minutes. */
typedef void (*rl_lmodel_progress)(void *ctx, int backward, int layer, int n_layers);

typedef struct rl_lmodel {
	const rl_model *base;
	rl_dims d;
	rl_rope rope;
	rl_lora_cfg lc;
	float scale;
	rl_lparam *p; /* per layer, modules q..down, A then B */
	size_t np;
	size_t n;		/* LoRA parameters */
	float *w, *g, *m, *v;	/* [n] each: values, gradients, AdamW moments */
	rl_lora_layer *lw, *lg; /* [n_layers]: views of w and g per layer */
	long t;			/* AdamW steps taken */
	uint64_t seed;		/* dropout masks */
	long calls;		/* forward_backward calls since zero_grad */
	uint64_t mem_limit;	/* bytes for activations and buffers */
	/* RL_PREC_BF16 (set after init): every product with the frozen base
	 * (the layers' matrices and lm_head, forward and input gradients) uses
	 * its stored bf16 matrices, inputs rounded to bf16 (wgemm.h,
	 * wgemm_back.h), as bf16 LoRA training in torch does; the branches, the
	 * gradients and the optimizer stay fp32. Where a matrix is not stored
	 * in bf16, its products are fp32. */
	rl_precision prec;
	int head_checked;		 /* the stored lm_head's finiteness checked (bf16) */
	unsigned char *checked;		 /* [n_layers]: loaded once (RL_W_CHECKED) */
	int min_chunk;			 /* fewest rows a chunk is cut to (256; or the longest
			* sequence) before layers are recomputed instead */
	int kept, recomputed, chunks;	 /* the last call's plan */
	double t_load, t_layers, t_head; /* seconds, cumulative */
	rl_lmodel_progress progress;	 /* NULL: none */
	void *progress_ctx;
	rl_lws *ws;
} rl_lmodel;

/* Adapters for base (every layer, the modules c targets): A initialised as
 * PEFT does from seed (rl_lora_init_a), B zero. The base must outlive m.
 * mem_limit 0: 2 GiB. RL_EDATA when a target's tensor is missing. */
int rl_lmodel_init(rl_lmodel *m, const rl_model *base, const rl_lora_cfg *c, uint64_t seed,
		   uint64_t mem_limit);
void rl_lmodel_free(rl_lmodel *m);

/* The parameter named name (PEFT's tensor name), or NULL. */
rl_lparam *rl_lmodel_find(const rl_lmodel *m, const char *name);

/* Forward and backward over b, as rl_tmodel_forward_backward: *loss_sum over
 * the labelled positions, *n_labelled their count; the gradient of
 * scale * loss_sum ACCUMULATES into g. grad == 0: the loss only (no dropout:
 * evaluation). */
int rl_lmodel_forward_backward(rl_lmodel *m, const rl_tbatch *b, float scale, int grad,
			       double *loss_sum, long *n_labelled);

void rl_lmodel_zero_grad(rl_lmodel *m);
double rl_lmodel_clip_grad(rl_lmodel *m, double max_norm);
/* RL_EDATA naming the first A or B (and its layer and element) whose gradient
 * is not finite (train.h's rl_tmodel_check_grad for adapters). */
int rl_lmodel_check_grad(const rl_lmodel *m);
/* One AdamW step on every A and B (all 2-D: all get weight decay). */
void rl_lmodel_adamw(rl_lmodel *m, const rl_adamw_hp *hp, double lr);

#endif
