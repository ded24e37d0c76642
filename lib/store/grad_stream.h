/* grad_stream.h — the engine's stream kinds, "direction" and "grad" (rl-stream(5)).
 *
 * direction (rl-direction):
 *   header  model {shape_id, arch, n_layers, path}, layer_end, n_prompts,
 *           prompts (the file), hidden_size, final_norm (true when
 *           layer_end == n_layers: h_L is then after the final norm, as in
 *           transformers' hidden_states)
 *   tensor  "direction"  F32 [hidden_size]: the mean of h_L over the prompts
 *   tensor  "prompt.<i>" F32 [hidden_size]: prompt i's h_L (0-based, file
 *           order), only with --per-prompt
 *
 * grad (rl-grad):
 *   header  model, layer_end, batch_size, n_prompts, prompts, direction
 *           {path, n_prompts, prompts, model}, sum_of (1, or 1 + the sum_of
 *           of the stream --add added)
 *   batch   {index, n, loss, cos} per batch, all before the first tensor
 *   tensor  one F32 tensor (chunked) per candidate tensor of layers
 *           0..layer_end-1, named and shaped exactly as the model's tensor;
 *           rl-grad writes them layer by layer from layer_end-1 down to 0,
 *           q, k, v, o, gate, up, down within a layer (each weight before its
 *           bias). Readers must accept any order.
 *
 * Headers carry the model identity of stream_model.h (rl_pack_kv_model). Pairing
 * rules: a direction fits a model with the same architecture, layer count and
 * hidden size (a fine-tune saved in another dtype has another shape_id but the
 * same hidden space); a gradient stream given to --add must come from a model
 * with the same shape_id (rl_sr_check_model) and the same layer_end.
 */
#ifndef RL_GRAD_STREAM_H
#define RL_GRAD_STREAM_H

#include <msgpack.h>

#include "store/model.h"
#include "store/stream.h"

typedef struct rl_direction {
	int layer_end;
	int n_prompts;
	int hidden_size;
	float *v; /* [hidden_size] */
	char path[1024];
	char prompts[1024];
	char model_path[1024];
	char shape_id[17];
} rl_direction;

/* Reads a direction stream and checks it fits m (architecture, n_layers,
 * hidden size; layer_end within m's layers). Messages name the file. */
int rl_direction_read(rl_direction *d, const char *path, const rl_model *m);
void rl_direction_free(rl_direction *d);

/* The addend: a previous grad stream read in lockstep with the tensors being
 * written and added into them (rl-grad --add); its tensors must come in
 * rl-grad's order. */
typedef struct rl_grad_addend rl_grad_addend;

/* Opens path and checks its header: kind grad, m's shape_id, layer_end L.
 * Its batch records are skipped. */
int rl_grad_addend_open(rl_grad_addend **a, const char *path, const rl_model *m, int L);
/* The same against a model shape_id (16 hex digits; whose names its owner in
 * messages) instead of a model: rl-sum, which has the shards' headers only. */
int rl_grad_addend_open_id(rl_grad_addend **a, const char *path, const char *shape_id,
			   const char *whose, int L);
/* The stream's sum_of (1 for a plain rl-grad output). */
int rl_grad_addend_sum_of(const rl_grad_addend *a);
/* Reads the next tensor, which must be `name` with numel elements, adding it
 * into dst[numel]. */
int rl_grad_addend_next(rl_grad_addend *a, const char *name, float *dst, uint64_t numel);
/* Checks nothing but the end record follows (the end record is verified). */
int rl_grad_addend_finish(rl_grad_addend *a);
void rl_grad_addend_close(rl_grad_addend *a);

#endif
