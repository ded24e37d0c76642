/* gguf_hf.h — a GGUF model (llama.cpp's format) seen as a HuggingFace model:
 * its config.json, its tensors under their HF names, and the inverse of what
 * llama.cpp's converter (convert_hf_to_gguf.py) did to their values.
 *
 * Architectures (general.architecture):
 *   llama  -> LlamaForCausalLM. The converter permuted the rows of q and k
 *             (weights and biases) within each head, interleaving the two
 *             rotary halves; they are put back. Mistral models are stored as
 *             llama (the file does not say Mistral) and come back as Llama:
 *             the same computation, except that Mistral 7B v0.1's 4096-token
 *             sliding window is not in the file either.
 *   qwen2  -> Qwen2ForCausalLM (no permutation: NeoX-style rotary).
 *   qwen3  -> Qwen3ForCausalLM (the same, plus blk.N.attn_{q,k}_norm ->
 *             self_attn.{q,k}_norm, as stored).
 *   gemma2 -> Gemma2ForCausalLM: norms as for gemma, and its four of them
 *             (attn_norm, post_attention_norm, ffn_norm ->
 *             pre_feedforward_layernorm, post_ffw_norm); soft-caps and window
 *             from gemma2.{attn,final}_logit_softcapping and
 *             attention.sliding_window, every other layer sliding from layer 0,
 *             and query_pre_attn_scalar as llama.cpp computes the scale (the
 *             file does not hold it): hidden_size / heads for the 46-layer
 *             27B, head_dim otherwise.
 *   gemma3 -> Gemma3ForCausalLM: as gemma2, with q/k norms (w + 1 stored
 *             too); window and final soft-cap from the file, the sliding
 *             layers' RoPE base from rope.freq_base_swa (default 10000); every
 *             sixth layer global and the scale from head_dim (hidden_size /
 *             heads for the 62-layer 27B), as llama.cpp has them.
 *   olmo2  -> Olmo2ForCausalLM: no input norms, blk.N.post_attention_norm ->
 *             post_attention_layernorm, post_ffw_norm ->
 *             post_feedforward_layernorm, attn_{q,k}_norm over the whole
 *             projections, all as stored; a sliding window (OLMo 3) refused.
 *   phi3   -> Phi3ForCausalLM: blk.N.attn_qkv -> self_attn.qkv_proj, ffn_up
 *             (gate and up rows) -> mlp.gate_up_proj, as stored;
 *             rope.dimension_count below head_dim is the partial rotary
 *             factor; attention.sliding_window (0: none) on every layer;
 *             rope_factors_short and rope_factors_long (with
 *             rope.scaling.attn_factor, rope.scaling.original_context_length)
 *             are longrope, and no tensor of the model.
 *   gemma  -> GemmaForCausalLM. The converter stored every RMSNorm weight as
 *             w + 1 (llama.cpp scales by w, transformers by 1 + w); 1 is
 *             subtracted again in f32 (as transformers' Gemma2/3 GGUF loader
 *             does), which gives w back to within an f32 rounding.
 * Names: token_embd -> model.embed_tokens, output_norm -> model.norm, output
 * -> lm_head (absent: tied embeddings), blk.N.attn_norm -> input_layernorm,
 * ffn_norm -> post_attention_layernorm, attn_{q,k,v,output} ->
 * self_attn.{q,k,v,o}_proj, ffn_{gate,up,down} -> mlp.{gate,up,down}_proj,
 * each .weight or .bias; attn_{q,k}_norm -> self_attn.{q,k}_norm. A GGUF 2-D tensor of ne = [a, b] is the HF [b, a].
 *
 * Config: ARCH.block_count, embedding_length, feed_forward_length,
 * attention.head_count, attention.head_count_kv (default: head_count),
 * attention.layer_norm_rms_epsilon, context_length, attention.key_length
 * (head_dim; default embedding_length / head_count), rope.freq_base (default
 * 10000), rope.scaling.type "linear" with rope.scaling.factor; vocab_size is
 * the embedding's row count (ARCH.vocab_size, when present, must agree); tied
 * when output.weight is absent; biases from the tensors present (a bias set
 * the HF class cannot express is refused); bos/eos from tokenizer.ggml.*.
 * Refused with RL_EDATA naming the file and the key or tensor: another
 * architecture, a rotary dimension (rope.dimension_count) other than head_dim,
 * another rope scaling type, a rope_freqs tensor that is not all ones
 * (llama.cpp's form of Llama 3's rope scaling), a tensor with no HF place, a
 * missing or misshapen one.
 */
#ifndef RL_GGUF_HF_H
#define RL_GGUF_HF_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "store/config.h"
#include "store/gguf.h"

typedef enum rl_gguf_xform {
	RL_GX_COPY,	 /* values as stored */
	RL_GX_UNPERMUTE, /* llama q/k: undo the converter's per-head row interleave */
	RL_GX_MINUS_ONE, /* gemma norms: w + 1 stored */
} rl_gguf_xform;

typedef struct rl_gguf_hf_tensor {
	char name[96]; /* the HF name */
	const rl_gguf_tensor *src;
	int ndim;	  /* 1 or 2 */
	int64_t shape[2]; /* HF order ([rows, cols]) */
	rl_gguf_xform xform;
	int n_head; /* heads of q (or kv heads of k) for RL_GX_UNPERMUTE */
} rl_gguf_hf_tensor;

typedef struct rl_gguf_hf {
	rl_config cfg;
	rl_gguf_hf_tensor *t; /* in the GGUF's tensor order */
	size_t n;
	uint64_t numel; /* elements of all tensors */
} rl_gguf_hf;

/* Builds the config and the tensor map of g, checking that every tensor the
 * HF model needs is there with the shape its config implies. */
int rl_gguf_hf_map(const rl_gguf *g, rl_gguf_hf *m);
void rl_gguf_hf_free(rl_gguf_hf *m);

/* Rows of an HF tensor (shape[0]; 1 for a 1-D tensor: its values are one row). */
uint64_t rl_gguf_hf_rows(const rl_gguf_hf_tensor *t);
/* Values per row (shape[1], or shape[0] for a 1-D tensor). */
uint64_t rl_gguf_hf_cols(const rl_gguf_hf_tensor *t);

/* Rows [row0, row0 + nrows) of t in f32, dequantized and transformed, into
 * dst (nrows x cols floats). Reads only the source rows they come from. */
int rl_gguf_hf_read(const rl_gguf_hf_tensor *t, uint64_t row0, uint64_t nrows, float *dst);

/* Writes m as a model directory (rl_model_write_fill: config.json with dtype
 * set, the tensors in dtype as safetensors shards of at most max_shard_bytes,
 * 0 = one file). Each tensor is read, converted in pieces of about 4 MiB and
 * streamed to its shard, and its GGUF pages are released after it, so memory
 * stays bounded whatever the model's size. progress (may be NULL) is called
 * after each piece with the tensor's index and name and the elements done. */
typedef void (*rl_gguf_hf_progress)(void *ctx, size_t tensor, size_t ntensors, const char *name,
				    uint64_t done, uint64_t total);
int rl_gguf_hf_write(const char *dir, const rl_gguf_hf *m, rl_dtype dtype, uint64_t max_shard_bytes,
		     rl_gguf_hf_progress progress, void *ctx);

#endif
