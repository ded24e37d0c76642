/* layer.h — one HuggingFace decoder layer, forward and backward, over packed tokens.
 *
 * The layer (LlamaDecoderLayer and its Mistral/Qwen2/Gemma/Qwen3 variants):
 *
 *     n1  = rmsnorm1(x)                          input_layernorm
 *     qkv = n1 · [Wq; Wk; Wv]^T + [bq; bk; bv]   one fused GEMM
 *     q, k = qk_norm(q), qk_norm(k)              Qwen3: RMSNorm per head
 *     q, k = RoPE(q), RoPE(k)
 *     att = attention(q, k, v)                   per sequence, causal, GQA, the
 *                                                layer's sliding window; Gemma 2:
 *                                                scores soft-capped
 *     xm  = x + att · Wo^T (+ bo)
 *     n2  = rmsnorm2(xm)                         post_attention_layernorm
 *     gu  = n2 · [Wg; Wu]^T (+ b)                one fused GEMM
 *     y   = xm + (act(g) * u) · Wd^T (+ bd)
 *
 * Gemma 2 (RL_NORMS_SANDWICH) norms the attention's output (by
 * post_attention_layernorm) before adding it to x, norms the MLP's input by
 * pre_feedforward_layernorm and its output by post_feedforward_layernorm.
 *
 * Tokens of several sequences (prompts) are packed without padding: a batch is
 * T rows [T, C]; rl_seqs says where each sequence's rows start and each row's
 * position. Attention runs per sequence (rl_attention_forward); every linear
 * map is one GEMM over all T rows.
 *
 * Last-only mode (RL_LAYER_LAST_ONLY): the layer's output is needed only at the
 * last row of each sequence (the method's h_L, or the logits that start a
 * generation). Keys and values are still computed for every row (and written
 * to a KV cache when one is given), but attention, o_proj, the MLP and the
 * output exist for R = n_sequences rows only. Without it R = T.
 *
 * Calling order:
 *   rl_dims_init once per model;
 *   rl_layer_w_alloc once, rl_layer_w_load (engine.h) per layer (widens the
 *     model's bf16/f16/f32 tensors to f32 into the fused layout; at
 *     precision bf16 a forward-only caller widens the norms and biases only);
 *   rl_layer_act_alloc for the rows to come (reusable across layers);
 *   rl_layer_forward(x -> y), saving into act what the backward needs;
 *   rl_layer_backward(dy -> dx, weight gradients += ...), with the SAME act
 *     (kept from the forward, or rebuilt by running the forward again on the
 *     same x: that is all "recompute" means).
 * Ownership: the caller owns every buffer; act->x points at the caller's
 * input (not copied) and must stay unchanged until the backward.
 */
#ifndef RL_LAYER_H
#define RL_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "compute/lora.h"
#include "compute/ops.h"
#include "compute/wgemm.h"
#include "compute/wgemm_back.h"
#include "store/config.h"
#include "store/model.h"

/* Sizes and per-architecture rules of a decoder layer, from a config. */
typedef struct rl_dims {
	int C;	      /* hidden_size */
	int nh;	      /* num_attention_heads */
	int nkvh;     /* num_key_value_heads */
	int hd;	      /* head_dim */
	int F;	      /* intermediate_size */
	int qd;	      /* nh * hd */
	int kvd;      /* nkvh * hd */
	int qkv;      /* qd + 2 kvd: width of the fused projection */
	float eps;    /* rms_norm_eps */
	int plus_one; /* Gemma: norms scale by 1 + w */
	rl_act act;
	float scale;	      /* attention: head_dim ** -0.5 (or query_pre_attn_scalar's) */
	float attn_cap;	      /* attention scores soft-capped (0: not) */
	rl_norm_layout norms; /* where the layer's norms are (config.h) */
	int q_bias, o_bias, mlp_bias;
	rl_qk_norm qk_norm;
	int fused;	       /* Phi-3: q, k, v and gate, up are stored fused (layout below) */
	int qn_rows, qn_width; /* q norm: per token, qn_rows rows of qn_width (nh x hd) */
	int kn_rows, kn_width; /* k norm: nkvh x hd */
	rl_config cfg;	       /* the per-layer rules (rl_dims_window) */
} rl_dims;

void rl_dims_init(rl_dims *d, const rl_config *c);
/* The widest input or output of a module LoRA can adapt: the scratch width
 * rl_lora_scratch_floats needs (Phi-3's fused modules included). */
int rl_dims_lora_width(const rl_dims *d);
/* The sliding window layer l attends within (0: the whole prefix). */
int rl_dims_window(const rl_dims *d, int layer);
/* The RoPE tables of layer l: r's, or its local ones on a sliding layer
 * (Gemma 3). Longrope's choice between its short and long tables is made per
 * sequence and forward pass (rl_rope_pass). */
const rl_rope *rl_dims_rope(const rl_dims *d, const rl_rope *r, int layer);

/* One layer's parameters in f32, fused (HF Linear weights are [out, in]):
 *   wqkv [qkv, C]: rows q_proj (qd), k_proj (kvd), v_proj (kvd); bqkv [qkv]
 *   wo [C, qd]; bo [C]
 *   wgu [2F, C]: rows gate_proj (F), up_proj (F); bgu [2F]
 *   wd [C, F]; bd [C]
 *   norm1 [C] input_layernorm, norm2 [C] post_attention_layernorm
 *   norm3, norm4 [C] pre_ and post_feedforward_layernorm (Gemma 2)
 *   qnorm [qn_width], knorm [kn_width] (Qwen3's q_norm, k_norm)
 * Biases and norms are NULL where the architecture has none. The same struct holds a
 * layer's gradients: each HF tensor's gradient is a contiguous row block (e.g.
 * k_proj's is wqkv + qd*C, [kvd, C]); rl_layer_w_part() names them. Phi-3's
 * qkv_proj and gate_up_proj are stored in exactly these layouts: their parts
 * are wqkv and wgu whole (and there are no separate q, k, v, gate, up). */
typedef struct rl_layer_w {
	float *wqkv, *bqkv, *wo, *bo, *wgu, *bgu, *wd, *bd, *norm1, *norm2, *qnorm, *knorm;
	float *norm3, *norm4; /* Gemma 2: pre_ and post_feedforward_layernorm */
	float *mem;	      /* the one allocation */
	size_t nfloats;
	int layer; /* the model layer loaded (-1: none) */
	/* LoRA adapters of this layer (lora.h; NULL: none), set by the caller:
	 * in the weights, the forward adds their branch and the backward its
	 * part of the input gradient; in the gradients (with RL_GRAD_LORA),
	 * where A's and B's gradients accumulate. */
	rl_lora_layer *lora;
	/* Precision bf16 (wgemm.h; set by the caller, forward only): the
	 * forward multiplies the model's stored q, k, v, o, gate, up, down
	 * matrices (stored, their first elements at stored_at: Phi-3's fused
	 * qkv_proj and gate_up_proj as row blocks; set by rl_layer_w_load) as
	 * stored, its inputs rounded to bf16, instead of the f32 copies above,
	 * the LoRA branch added on top as at fp32; the backward uses the f32
	 * copies unless bf16_backward is set (below). Where the stored matrices
	 * are not all bf16 (use_stored 0: there is no bf16 product to use) the
	 * forward computes in fp32 on the copies, which rl_layer_w_load then
	 * makes whatever the flags. */
	rl_precision prec;
	const rl_tensor *stored[7];
	uint64_t stored_at[7];
	int use_stored;
	/* With prec bf16 and use_stored (set by the caller; LoRA training): the
	 * backward's input gradients dx = dy W also on the stored matrices
	 * (wgemm_back.h: dy rounded to bf16, f32 sums), so that no f32 copy of
	 * the matrices is needed at all (RL_W_NO_MATRICES). Only the input
	 * gradients: RL_GRAD_LINEAR still reads the f32 copies. */
	int bf16_backward;
	/* Set by rl_layer_w_load with RL_W_AS_STORED (generation): the forward
	 * multiplies the stored matrices at prec whatever their dtype (wgemm.h:
	 * fp32 widens them block by block, exactly), and there are no f32
	 * copies (w from rl_layer_w_alloc_vectors); no backward. */
	int as_stored;
} rl_layer_w;

int rl_layer_w_alloc(rl_layer_w *w, const rl_dims *d);
/* The norms and biases only (the matrix pointers NULL): for a w loaded with
 * RL_W_AS_STORED, so that a model's every layer can be held at once. */
int rl_layer_w_alloc_vectors(rl_layer_w *w, const rl_dims *d);
void rl_layer_w_free(rl_layer_w *w);
void rl_layer_w_zero(rl_layer_w *w);
/* The f32 block of w holding role r (a layer role: projections, biases,
 * norms), with its element count; NULL when absent (count 0), or for a matrix
 * of the layout in a w without matrices (rl_layer_w_alloc_vectors: the count
 * is the matrix's). */
float *rl_layer_w_part(const rl_layer_w *w, const rl_dims *d, rl_role r, size_t *numel);

/* Where the rows of a packed batch belong. */
typedef struct rl_seqs {
	int n;		  /* sequences */
	int T;		  /* rows (tokens) in this call */
	const int *start; /* [n + 1]: sequence s has rows start[s] .. start[s+1]-1 */
	const int *pos;	  /* [T]: position of each row (RoPE); consecutive within a sequence */
} rl_seqs;

/* Optional KV cache for one layer (generation): sequence s's keys and values
 * (after RoPE) live in k[s], v[s] as rows [cap, kvd]; past[s] rows are already
 * there. The forward appends this call's rows at row past[s] (the caller
 * guarantees room and that pos of the new rows are past[s], past[s]+1, ...),
 * and queries attend to all past[s] + new rows. The caller advances past[]. */
typedef struct rl_kv {
	float **k, **v;
	const int *past;
} rl_kv;

/* What a forward leaves for the backward (and its scratch when nothing is to
 * be kept). R = rows after attention (T, or n sequences in last-only mode).
 *   x      [T, C]   the layer input (NOT owned: the caller's buffer)
 *   rstd1  [T]      input_layernorm's 1/rms
 *   qkv    [T, qkv] q, k after RoPE; v
 *   qk_raw [T, qd + kvd] q then k before their norm ([T, qd] and [T, kvd]
 *                   blocks; with qk_norm only), qk_rstd their 1/rms
 *   ao, mo [R, C]   the attention's and the MLP's outputs before the norms on
 *                   them (Gemma 2's layout only), rstd_ao, rstd_mo [R]
 *   xm     [R, C]   residual stream after attention
 *   rstd2  [R]
 *   gu     [R, 2F]  gate | up projections (before the activation)
 * The attention output is not kept: the backward recomputes it from qkv (a
 * small cost next to the GEMMs). The backward CONSUMES the act (gu and qkv
 * are overwritten by their gradients); a second backward needs a new forward. */
typedef struct rl_layer_act {
	int T, R, capT, capR;
	int last_only;
	const float *x;
	float *rstd1, *qkv, *qk_raw, *qk_rstd, *xm, *rstd2, *gu;
	float *ao, *rstd_ao, *mo, *rstd_mo;
	float *mem;
	size_t nfloats;
} rl_layer_act;

/* Floats an act for capT rows (capR after attention) takes. */
size_t rl_layer_act_floats(const rl_dims *d, int capT, int capR);
int rl_layer_act_alloc(rl_layer_act *a, const rl_dims *d, int capT, int capR);
void rl_layer_act_free(rl_layer_act *a);

/* Scratch for forward and backward: capT rows, capR rows after attention,
 * sequences up to maxlen rows (keys up to maxkv for the attention scratch). */
typedef struct rl_layer_ws {
	float *n1;    /* [capT, C] n1, then dn1 */
	float *n2;    /* [capR, C] n2, then dn2 */
	float *att;   /* [capR, qd] attention output (o_proj input) */
	float *lse;   /* [capR, nh] its softmax log-sum-exp */
	float *h;     /* [capR, max(F, qd)] h, then dh */
	float *datt;  /* [capR, qd], aliases h (dead by then) */
	float *dqkv;  /* [nscr, maxlen, qkv]: one sequence's per thread (the layer's
		      * goes over act->qkv) */
	float *dxm;   /* [capR, C] */
	float *attn;  /* [nscr] x rl_attention_scratch(maxlen, maxkv) */
	float *qk;    /* [2 capT, qd + kvd] with qk_norm: the norm's scratch */
	float *dpost; /* [capR, C] with norms on the outputs: their gradients */
	float *wg;    /* rl_wgemm_scratch(widest input): the stored matrices' products */
	rl_wback wb;  /* bf16_backward: the transposed matrix (grown on use) */
	float *mem;
	size_t nfloats;
	int capT, capR, maxlen, maxkv;
	int nscr; /* threads the scratch is sized for (rl_par_threads() at alloc) */
	/* Set by the caller: OpenBLAS held to one thread in attention even for a
	 * single sequence (generation, whose steps alternate attention with the
	 * pool's matrix kernels: after a threaded call OpenBLAS's workers spin on
	 * sched_yield for 2^28 cycles, THREAD_TIMEOUT, against the pool's
	 * threads; on 2 cores that was a quarter of rl-eval's CPU time). */
	int blas_single;
} rl_layer_ws;

size_t rl_layer_ws_floats(const rl_dims *d, int capT, int capR, int maxlen, int maxkv);
int rl_layer_ws_alloc(rl_layer_ws *ws, const rl_dims *d, int capT, int capR, int maxlen, int maxkv);
/* A workspace for the forward only (no backward buffers: dqkv, dxm, dpost
 * NULL), as generation needs it. */
int rl_layer_ws_alloc_forward(rl_layer_ws *ws, const rl_dims *d, int capT, int capR, int maxlen,
			      int maxkv);
void rl_layer_ws_free(rl_layer_ws *ws);

enum {
	RL_LAYER_LAST_ONLY = 1, /* forward: outputs only at each sequence's last row */
};

/* Forward of layer `layer` (its index decides the sliding window) over s:
 * x [T, C] -> y [R, C] (y must not alias x). Fills act (act->x = x). kv may be
 * NULL. rope covers every position used. */
int rl_layer_forward(const rl_dims *d, int layer, const rl_layer_w *w, const rl_rope *rope,
		     const rl_seqs *s, const rl_kv *kv, const float *x, float *y, rl_layer_act *act,
		     rl_layer_ws *ws, int flags);

enum {
	RL_GRAD_LINEAR = 1, /* q,k,v,o,gate,up,down weights and biases */
	RL_GRAD_NORMS = 2,  /* norm1 .. norm4, qnorm, knorm */
	RL_GRAD_LORA = 8,   /* the LoRA adapters' A and B (g->lora) */
};

/* Backward through the layer whose forward filled act (no KV cache): from
 * dy [R, C] = dLoss/dy, ACCUMULATES into g the gradients selected by want
 * (g may be NULL when want is 0) and OVERWRITES dx [T, C] = dLoss/dx (dx
 * NULL: not needed, e.g. below layer 0 for rl-grad, which skips that work). */
int rl_layer_backward(const rl_dims *d, int layer, const rl_layer_w *w, const rl_rope *rope,
		      const rl_seqs *s, const rl_layer_act *act, const float *dy, float *dx,
		      rl_layer_w *g, int want, rl_layer_ws *ws);

/* ---- the per-architecture pieces generation shares with the layer ---- */

/* Scratch floats rl_qk_norm_forward / _backward need for T rows. */
size_t rl_qk_norm_scratch(const rl_dims *d, int T);
/* q (columns 0..qd-1) and k (qd..qd+kvd-1) of qkv [T, ld] RMS-normalised in
 * place with weights qw, kw as d->qk_norm says (nothing for RL_QK_NORM_NONE).
 * raw [T, qd + kvd] receives them before the norm and rstd their 1/rms
 * (both NULL: not kept). */
void rl_qk_norm_forward(const rl_dims *d, const float *qw, const float *kw, float *qkv, int ld,
			int T, float *raw, float *rstd, float *scratch);
/* From dqkv [T, ld] holding the gradients after the norm in its q and k
 * columns: replaces them with the gradients before it; dqw, dkw += the
 * weights' gradients (NULL: not wanted). raw and rstd from the forward. */
void rl_qk_norm_backward(const rl_dims *d, const float *qw, const float *kw, float *dqkv, int ld,
			 int T, const float *raw, const float *rstd, float *dqw, float *dkw,
			 float *scratch);

/* Wall-clock seconds spent in attention (forward, recomputation, backward)
 * since the process started: for the benchmarks. */
double rl_layer_attention_seconds(void);

/* ---- embeddings (the lookup from the model is rl_embed_forward, engine.h) ---- */

/* dE[V, C] += scatter of dx[T, C] rows to ids (times the embedding scale),
 * except to the row of pad (nn.Embedding's padding_idx; -1: none). */
void rl_embed_backward(float *dE, const float *dx, const int32_t *ids, int T, int C, float scale,
		       int pad);

#endif
