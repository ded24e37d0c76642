/* model.h — a HuggingFace model directory: config, (sharded) safetensors, roles.
 *
 * A model directory holds config.json and either model.safetensors or shards
 * listed by model.safetensors.index.json (its weight_map is trusted, never a
 * glob; model.safetensors wins when both exist, as in transformers). Every
 * shard is validated and mapped read-only; a tensor named in the index but
 * missing from its shard, present in two shards, or in a shard the index does
 * not put it in, is rejected; shard names in the index must be plain file names.
 *
 * Roles come from the HF names (model.layers.{i}.self_attn.{q,k,v,o}_proj.{weight,bias},
 * model.layers.{i}.mlp.{gate,up,down}_proj.{weight,bias}, input_layernorm,
 * post_attention_layernorm, self_attn.{q,k}_norm, {pre,post}_feedforward_layernorm,
 * model.embed_tokens, model.norm, lm_head). A role is a tensor name: where a
 * norm sits is the architecture's (config.h, rl_norm_layout): Llama's
 * post_attention_layernorm comes before the MLP, Gemma 2's after attention.
 * Every
 * role config.json implies must be present with the implied shape (message:
 * tensor name, got, expected); a role config.json says is absent (a bias
 * without attention_bias), or a layer >= num_hidden_layers, is refused. Other
 * names (e.g. old rotary_emb.inv_freq buffers) are kept as RL_R_OTHER. With
 * tie_word_embeddings, lm_head == embed (a stored lm_head.weight is then
 * RL_R_OTHER: transformers ignores it too).
 *
 * Tensors are addressed by name or by role (layer, q/k/v/o/...), and the method's
 * sets are defined here once:
 *   candidates(L): weights (and biases) of q,k,v,o,gate,up,down of layers 0..L-1
 *      (Phi-3: qkv, o, gate_up, down, the fused tensors as stored);
 *   P: parameters of ALL decoder layers, norms included (no embeddings, final
 *      norm or lm_head) — 6,476,267,520 for Llama-2-7B.
 */
#ifndef RL_MODEL_H
#define RL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "store/config.h"
#include "store/safetensors.h"

typedef enum rl_role {
	RL_R_OTHER = 0, /* a tensor realign has no role for (kept, copied, never computed) */
	RL_R_EMBED,	/* model.embed_tokens.weight */
	RL_R_FINAL_NORM,
	RL_R_LM_HEAD,
	/* per layer: */
	RL_R_ATTN_NORM, /* input_layernorm */
	RL_R_MLP_NORM,	/* post_attention_layernorm */
	RL_R_Q,
	RL_R_K,
	RL_R_V,
	RL_R_O,
	RL_R_Q_BIAS,
	RL_R_K_BIAS,
	RL_R_V_BIAS,
	RL_R_O_BIAS,
	RL_R_GATE,
	RL_R_UP,
	RL_R_DOWN,
	RL_R_GATE_BIAS,
	RL_R_UP_BIAS,
	RL_R_DOWN_BIAS,
	RL_R_Q_NORM,	   /* self_attn.q_norm (Qwen3, Gemma 3: [head_dim]; OLMo 2: [q width]) */
	RL_R_K_NORM,	   /* self_attn.k_norm */
	RL_R_PRE_FF_NORM,  /* pre_feedforward_layernorm (Gemma 2) */
	RL_R_POST_FF_NORM, /* post_feedforward_layernorm (Gemma 2, 3, OLMo 2) */
	RL_R_QKV,	   /* self_attn.qkv_proj: q, k, v rows fused (Phi-3) */
	RL_R_GATE_UP,	   /* mlp.gate_up_proj: gate, up rows fused (Phi-3) */
	RL_R_COUNT
} rl_role;

/* "q_proj.weight" style short names, for messages. */
const char *rl_role_name(rl_role r);
/* 1 for the linear-layer weights and biases the method may restore. */
int rl_role_is_candidate(rl_role r);
/* 1 for an RMSNorm weight (any layer norm, q/k norms, the final norm). */
int rl_role_is_norm(rl_role r);
/* The HuggingFace tensor name of (layer, role), e.g. "model.layers.3.mlp.up_proj.weight"
 * (layer ignored for embed, final norm, lm_head). RL_USAGE if it does not fit cap. */
int rl_role_tensor_name(int layer, rl_role r, char *buf, size_t cap);
/* 1 if a model with config c stores a tensor for role r (biases per
 * attention_bias/o_bias/mlp_bias; lm_head only when not tied). */
int rl_role_present(const rl_config *c, rl_role r);
/* The shape config c implies for role r (HF Linear weights are [out, in]):
 * returns ndim (1 or 2), 0 for RL_R_OTHER. */
int rl_role_shape(const rl_config *c, rl_role r, int64_t shape[2]);
/* The reference's default layer_end: floor(2N/3) (0 for a 1-layer model: no
 * candidates; callers should then ask for an explicit L). */
int rl_default_layer_end(int n_layers);

typedef struct rl_tensor {
	const char *name; /* owned by the shard's rl_st_file */
	rl_dtype dtype;
	int ndim;
	const int64_t *shape;
	uint64_t numel;
	int shard;	 /* index into m->shards */
	uint64_t offset; /* absolute byte offset in its shard */
	uint64_t nbytes;
	const uint8_t *data; /* into the read-only map */
	int layer;	     /* -1 for non-layer tensors */
	rl_role role;
} rl_tensor;

typedef struct rl_model {
	char *dir;
	rl_config cfg;
	rl_st_file *shards;
	int nshards;
	rl_tensor *tensors; /* sorted by name */
	size_t ntensors;
	rl_tensor **by_role; /* [layer * RL_R_COUNT + role], NULL where absent */
	const rl_tensor *embed, *final_norm, *lm_head; /* lm_head == embed when tied */
} rl_model;

/* Modes of rl_model_open: RL_MODEL_LINKED may be added to RL_MODEL_WRITE. */
enum { RL_MODEL_READ = 0, RL_MODEL_WRITE = 1, RL_MODEL_LINKED = 2 };

/* Opens dir (config, index, shards), validating everything, and checks every
 * tensor the architecture needs is present with the right shape. mode
 * RL_MODEL_WRITE opens the shards RL_ST_WRITE (for rl_st_pwrite through
 * m->shards[t->shard]); the maps stay read-only. On failure m is left closed.
 *
 * Writing refuses (RL_EDATA) a model whose weights are shared with another:
 * a weight file with more than one name (a hard link: cp -al), one that is a
 * symbolic link out of dir (cp -rs, ln -s, a HuggingFace cache snapshot), or
 * dir itself a symbolic link (ln -s MODEL COPY): writing it in place would
 * change the other model too, and its lock is another directory's.
 * RL_MODEL_WRITE | RL_MODEL_LINKED writes through them all the same (the
 * user means it: rl-apply --allow-linked); the journal then locks the weight
 * files themselves as well (journal.h). */
int rl_model_open(rl_model *m, const char *dir, int mode);
void rl_model_close(rl_model *m);

const rl_tensor *rl_model_find(const rl_model *m, const char *name);
/* Role lookup: NULL when the model has no such tensor (e.g. biases). */
const rl_tensor *rl_model_get(const rl_model *m, int layer, rl_role role);

/* Candidate tensors for layer_end L (1 <= L <= n_layers; 0 is returned for
 * any other L), in a fixed order (layer, then q,k,v,o,gate,up,down with each
 * weight before its bias). Writes at most cap pointers to out (out may be
 * NULL) and returns the total count. */
size_t rl_model_candidates(const rl_model *m, int L, const rl_tensor **out, size_t cap);
/* Number of candidate elements for L. */
uint64_t rl_model_candidate_numel(const rl_model *m, int L);
/* P: parameter count of all decoder layers, norms included. */
uint64_t rl_model_param_count(const rl_model *m);

/* Same tensor names, shapes and dtypes; the message names the first mismatch. */
int rl_model_compatible(const rl_model *a, const rl_model *b);

/* Identity fingerprint (16 hex digits): XXH3-64 of the architecture, the tensor
 * names, dtypes and shapes (name order). Equal for a model and a fine-tune
 * saved in the same dtype. */
void rl_model_shape_id(const rl_model *m, char out[17]);
/* Content hash (16 hex digits) of the tensors' bytes: all tensors (name order)
 * when L == 0, else the candidates of L (candidate order); each tensor's name,
 * dtype and shape are hashed before its bytes. Reads every byte involved
 * (XXH3-64 streaming over the map). */
void rl_model_content_hash(const rl_model *m, int L, char out[17]);

/* Writes a model directory: config.json and the tensors, as one
 * model.safetensors or, when their total exceeds max_shard_bytes (0 = never),
 * as model-0000i-of-0000n.safetensors shards plus model.safetensors.index.json
 * (transformers' format: {"metadata": {"total_parameters", "total_size"},
 * "weight_map"}, sorted keys, indent 2). Shards are cut the way huggingface_hub
 * cuts them: tensors in the given order, a new shard when the next tensor would
 * overflow the current one, a tensor larger than the limit alone in its own.
 * dir is created if missing; existing files of the same names are replaced
 * atomically (temp file + rename); a sharded write removes a stale
 * model.safetensors (it would shadow the index). */
int rl_model_write(const char *dir, const rl_config *c, const rl_st_wtensor *t, size_t n,
		   uint64_t max_shard_bytes);
/* The same with the tensors' data streamed by fill (rl_st_write_fill): shard
 * by shard, tensor by tensor, in each shard's packing order. */
int rl_model_write_fill(const char *dir, const rl_config *c, const rl_st_wtensor *t, size_t n,
			uint64_t max_shard_bytes, rl_st_fill_fn fill, void *ctx);

/* Widens elements [start, start+n) of a compute-dtype tensor to f32. RL_EDATA
 * naming the tensor and its dtype for a non-compute dtype, or the tensor, its
 * layer and the element for a NaN or infinity (every computation widens its
 * weights here, so none runs on them); RL_USAGE for a range outside the
 * tensor. */
int rl_tensor_read_f32(const rl_tensor *t, uint64_t start, uint64_t n, float *dst);
/* Checks a tensor used as stored (not widened) for NaN and infinity: the
 * message rl_tensor_read_f32's, of the first such element (its dtype's too).
 * BF16 is scanned as stored; F16 and F32 are widened block by block. */
int rl_tensor_check_finite(const rl_tensor *t);
/* Pointer to element i's stored bytes. */
static inline const uint8_t *rl_tensor_elem(const rl_tensor *t, uint64_t i)
{
	return t->data + i * rl_dtype_size(t->dtype);
}
/* Drops the whole pages of elements [first, first + count) of t from this
 * process (the page cache keeps them): a restore step reads each weight once,
 * so a 7B model's pages need not all stay resident, and the page cache, not
 * this process, should keep what the writes need next. Advisory; errors
 * ignored. */
void rl_tensor_drop_pages(const rl_tensor *t, uint64_t first, uint64_t count);

#endif
