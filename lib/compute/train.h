/* train.h — a decoder model held in f32 for full fine-tuning (rl-train).
 *
 * Every parameter of the model (embeddings, every layer's norms, projections
 * and biases, the final norm, lm_head unless tied) lives in memory as f32,
 * with its gradient and the two AdamW moment buffers: 16 bytes a parameter,
 * meant for small models (the toy world's 0.4M parameters, test models), not
 * for 7B ones.
 *
 * The objective is the next-token cross-entropy over the labelled positions of
 * a packed batch (sequences one after another, no padding): position t of a
 * sequence is labelled when its next token belongs to the response, so the
 * prompt carries no loss (torch's cross_entropy with ignore_index over shifted
 * labels). The decoder layers are the engine's (layer.h: rl_layer_forward /
 * rl_layer_backward over the packed rows, weights in its fused f32 layout,
 * norm gradients included); training adds here the embedding gather and its
 * gradient, the final norm and lm_head evaluated on the labelled rows only,
 * and the softmax cross-entropy (loss.h).
 *
 * Semantics follow transformers' modeling code for llama / mistral / qwen2 /
 * gemma (Gemma: embeddings scaled by sqrt(hidden) rounded to f32, RMSNorm by
 * 1 + w, GELU-tanh GLU, tied lm_head), checked against torch autograd through
 * those classes (tests/gen/gen_train.py).
 *
 * Calling order per optimizer step: rl_tmodel_zero_grad, then one or more
 * rl_tmodel_forward_backward (gradients accumulate), optionally
 * rl_tmodel_clip_grad, then rl_tmodel_adamw.
 */
#ifndef RL_TRAIN_H
#define RL_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "compute/adamw.h"
#include "compute/layer.h"
#include "compute/ops.h"
#include "store/config.h"
#include "store/model.h"

typedef struct rl_tparam {
	char name[96]; /* the HF tensor name */
	rl_role role;
	int layer; /* -1 for embed, final norm, lm_head */
	int ndim;
	int64_t shape[2];
	size_t numel;
	float *w;     /* value */
	float *g;     /* gradient (accumulated) */
	float *m, *v; /* AdamW moments */
	int decay;    /* gets weight decay: 2-D tensors (linear weights, embeddings) */
	int own;      /* w (and g, m, v after it) is this parameter's own allocation */
} rl_tparam;

typedef struct rl_tmodel {
	rl_config cfg;
	rl_tparam *p; /* in HF order: embed, per layer (norms, q,k,v,o, mlp), final norm, lm_head */
	size_t np;
	/* role lookup: layer roles at [layer * RL_R_COUNT + role], the global
	 * ones (embed, final norm, lm_head) at [n_layers * RL_R_COUNT + role];
	 * lm_head points at the embedding when tied. NULL where absent. */
	rl_tparam **role;
	rl_dims d;
	/* per layer, the engine's fused f32 blocks (layer.h) of the values, the
	 * gradients and both moments; the layer params point into them */
	rl_layer_w *lw, *lg, *lm, *lv;
	rl_rope rope;
	long t; /* AdamW steps taken */
} rl_tmodel;

/* Allocates every parameter config c implies (zeroed). */
int rl_tmodel_init(rl_tmodel *m, const rl_config *c);
/* transformers' initialisation (_init_weights): linear and embedding weights
 * ~ N(0, std), biases 0, RMSNorm weights 1 (0 for Gemma's 1 + w), from a
 * deterministic generator seeded with seed. */
void rl_tmodel_randomize(rl_tmodel *m, uint64_t seed, double std);
/* Allocates per src's config and widens every tensor to f32. */
int rl_tmodel_load(rl_tmodel *m, const rl_model *src);
/* Writes an HF model directory: config.json (torch_dtype per dt) and
 * model.safetensors with every parameter in dt (F32 or BF16, narrowed with
 * round-to-nearest-even). */
int rl_tmodel_save(const rl_tmodel *m, const char *dir, rl_dtype dt);
void rl_tmodel_free(rl_tmodel *m);

uint64_t rl_tmodel_numel(const rl_tmodel *m);

/* A packed batch. Sequence i holds ids[start[i] .. start[i+1]-1] at positions
 * 0 .. len-1; target[t] is the token position t must predict (the next token)
 * or -1 for an unlabelled position. */
typedef struct rl_tbatch {
	int n;
	const int *start;      /* [n + 1] */
	const int32_t *ids;    /* [T] */
	const int32_t *target; /* [T] */
} rl_tbatch;

typedef struct rl_tws rl_tws; /* activations and scratch, reused across steps */
int rl_tws_new(rl_tws **ws);
void rl_tws_free(rl_tws *ws);
/* Data parallelism: with n > 1 (at most 64), rl_tmodel_forward_backward
 * splits a batch's sequences into n chunks of about equal tokens, runs them
 * on n threads (each with its own activations and gradient accumulators) and
 * sums the gradients; BLAS should then run one thread per call. The result
 * equals the one-thread result up to the order of float sums. */
int rl_tws_set_threads(rl_tws *ws, const rl_tmodel *m, int n);

/* Forward and backward over b: *loss_sum = sum over labelled positions of the
 * cross-entropy, *n_labelled their count; the gradient of scale * loss_sum
 * ACCUMULATES into every parameter's g. RL_EDATA for an id or target outside
 * the vocabulary or a sequence longer than the model's positions. With
 * grad == 0 only the loss is computed (evaluation). */
int rl_tmodel_forward_backward(rl_tmodel *m, const rl_tbatch *b, float scale, int grad, rl_tws *ws,
			       double *loss_sum, long *n_labelled);

void rl_tmodel_zero_grad(rl_tmodel *m);
/* RL_EDATA naming the first parameter whose gradient holds a NaN or an
 * infinity (its layer, the element), e.g. when rl_tmodel_clip_grad's norm is
 * not finite; RL_OK when every gradient is finite. */
int rl_tmodel_check_grad(const rl_tmodel *m);
/* Global gradient-norm clipping (adamw.h); returns the norm before. */
double rl_tmodel_clip_grad(rl_tmodel *m, double max_norm);
/* One AdamW step on every parameter at learning rate lr (t advances). */
void rl_tmodel_adamw(rl_tmodel *m, const rl_adamw_hp *hp, double lr);

#endif
