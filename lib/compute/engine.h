/* engine.h — running a model's first L decoder layers over prompt sets: the
 * method's hidden states h_L (rl-direction) and the gradient of its objective
 * (rl-grad), plus the model-facing pieces the layers need (widening weights,
 * embeddings, final norm, lm_head) for generation and training to reuse.
 *
 * h_L(x) is transformers' hidden_states[L] at the last token of prompt x: the
 * residual stream after L layers; for L == n_layers transformers puts the
 * FINAL-NORMED state there (its last hidden state), and so does realign.
 *
 * Memory model. Weights stay memory-mapped in their file dtype; one layer at a
 * time is widened to f32 (and its file pages dropped from the resident set
 * again). Prompts are packed without padding and every layer runs over all
 * prompts (the gradient: batch by batch) before the next layer, so a layer's
 * weight gradients are complete when its backward finishes and can be
 * streamed out (rl_grad_next) and freed. Between
 * forward and backward the engine keeps every layer's input (T x C floats) and
 * as many layers' activations as fit in mem_limit; a layer whose activations
 * were not kept is recomputed from its input in the backward.
 *
 * Minimum work: only layers 0..L-1 run; in layer L-1 everything after the
 * keys/values exists for the last token of each prompt only; no input
 * gradient is computed below layer 0.
 */
#ifndef RL_ENGINE_H
#define RL_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "compute/layer.h"
#include "store/model.h"
#include "text/prompts.h"

/* ---- model-facing helpers ---- */

/* Widens layer `layer` of m into w (rl_tensor_read_f32 per tensor) and points
 * w->stored at its seven matrices. Flags: RL_W_RELEASE drops the model's file
 * pages just read from this process's resident set afterwards (they stay in
 * the page cache); RL_W_NO_MATRICES widens the norms and biases only (a
 * forward at precision bf16 needs nothing else), checking the stored
 * matrices for NaN and Inf unless RL_W_CHECKED says an earlier load of this
 * layer did (the map is read-only: a training run loads each layer twice a
 * step). RL_W_AS_STORED (w from rl_layer_w_alloc_vectors; generation): the
 * forward multiplies the stored matrices whatever their dtype, at w->prec;
 * they are checked as with RL_W_NO_MATRICES. */
enum { RL_W_RELEASE = 1, RL_W_NO_MATRICES = 2, RL_W_CHECKED = 4, RL_W_AS_STORED = 8 };
int rl_layer_w_load(rl_layer_w *w, const rl_dims *d, const rl_model *m, int layer, int flags);
/* After a forward at precision bf16 read w's stored matrices from the map:
 * their pages leave the resident set again (nothing otherwise). */
void rl_layer_w_release_stored(const rl_layer_w *w);

/* x[T, C] = embed_tokens[ids[t]], times (float)sqrt(hidden_size) for Gemma
 * (GemmaTextScaledWordEmbedding in an fp32 model). */
int rl_embed_forward(const rl_model *m, const int32_t *ids, int T, float *x);
/* Gemma's embedding multiplier, else 1. */
float rl_embed_scale(const rl_config *c);

/* y[n, C] = model.norm(x) (the final RMSNorm); rstd[n] saved when not NULL. */
int rl_final_norm_forward(const rl_model *m, const float *x, int n, float *y, float *rstd);
/* dx[n, C] = d(final norm)/dx^T dy (overwritten); dw[C] += its weight's
 * gradient when dw is not NULL. x and rstd from the forward. */
int rl_final_norm_backward(const rl_model *m, const float *x, const float *rstd, const float *dy,
			   int n, float *dx, float *dw);
/* logits[n, V] = y[n, C] · lm_head^T (the tied embeddings when tied),
 * lm_head widened a block of rows at a time (bounded memory); soft-capped
 * where the config says (Gemma 2). */
int rl_lm_head_forward(const rl_model *m, const float *y, int n, float *logits);

/* ---- the engine ---- */

typedef struct rl_engine_opts {
	uint64_t mem_limit; /* bytes the engine may use (0: rl_engine_default_mem()) */
	int keep_pages;	    /* 1: do not drop the model's pages after widening */
	/* of the forward's matrix products (layer.h, wgemm.h): fp32, or bf16
	 * (the stored weights, inputs rounded to bf16; rl_engine_hidden then
	 * widens no matrix; the gradient's backward stays f32) */
	rl_precision precision;
} rl_engine_opts;

/* Default memory budget: half the machine's physical memory (4 GiB if unknown). */
uint64_t rl_engine_default_mem(void);

typedef struct rl_engine {
	const rl_model *m;
	rl_dims d;
	int L;	     /* layers to run */
	int max_len; /* longest prompt the RoPE tables cover */
	rl_rope rope;
	uint64_t mem_limit;
	int release;
	rl_precision prec;
	/* statistics of the last run */
	double t_forward, t_backward, t_load; /* seconds */
	int kept, recomputed;		      /* layers whose activations were kept / recomputed */
	uint64_t bytes_planned;		      /* the engine's own working memory */
} rl_engine;

/* Prepares L layers (1 <= L <= n_layers) of m for prompts up to max_len
 * tokens (<= max_position_embeddings). m must outlive e. */
int rl_engine_init(rl_engine *e, const rl_model *m, int L, int max_len, const rl_engine_opts *o);
void rl_engine_free(rl_engine *e);

/* h[n, C]: h_L at the last token of each of p's n prompts. Layer by layer over
 * all prompts (each layer's weights widened once). chunk_prompts > 0: in
 * chunks of exactly chunk_prompts consecutive prompts (the last may be
 * shorter), whatever mem_limit says, so that a prompt's numbers depend on its
 * chunk only (rl-direction --shard); 0: chunks of as many rows as mem_limit
 * allows. The result depends on the chunking only by rounding. */
int rl_engine_hidden(rl_engine *e, const rl_prompts *p, int chunk_prompts, float *h);

/* The gradient of sum_b loss_b, loss_b = -cos(mean_{x in b} h_L(x), dir), over
 * batches b of batch_size consecutive prompts (the last may be shorter), with
 * respect to layers 0..L-1's parameters:
 *
 *     rl_grad g;
 *     rl_grad_begin(&g, e, p, 8, dir, RL_GRAD_LINEAR);  // forward; g.loss[], g.cos[] set
 *     for (;;) {
 *         int layer; const rl_layer_w *gw;
 *         rl_grad_next(&g, &layer, &gw);                 // backward through one layer
 *         if (layer < 0) break;                          // L-1 first, down to 0
 *         ... use gw (rl_layer_w_part) until the next call ...
 *     }
 *     rl_grad_end(&g);
 *
 * Batches are computed apart. Every GEMM, forward and backward, runs over the
 * rows of one batch, so a batch's numbers depend on its own prompts only (not
 * on the other batches, nor on the memory budget): its weight gradients are
 * the batch's PARTIAL, and a layer's gradient is
 *
 *     g = partial_0;  g += partial_1;  g += partial_2; ...   (f32, batch order)
 *
 * as PyTorch's .grad accumulates over backward calls. A set holding batches
 * i..j of a larger set alone computes partials i..j bit for bit as the whole
 * set does (rl-grad --shard, rl-sum).
 *
 * want: RL_GRAD_LINEAR and/or RL_GRAD_NORMS (what rl_layer_backward computes),
 * and RL_GRAD_EMBED: after layer 0, g.dembed [vocab, C] holds the gradient
 * with respect to embed_tokens (the input side only; a tied lm_head is not
 * involved since h_L never reaches it). RL_GRAD_PER_BATCH: the partials are
 * not summed; rl_grad_next_batch yields each (layer, batch) partial. */
enum { RL_GRAD_EMBED = 4, RL_GRAD_PER_BATCH = 16 };

typedef struct rl_grad {
	rl_engine *e;
	const rl_prompts *p;
	int batch_size, nbatch;
	double *loss, *cos; /* [nbatch] */
	int want;
	float *dembed; /* [vocab, C] with RL_GRAD_EMBED, complete after layer 0 */
	/* internal */
	int next;	    /* layer the next call backs through; -1 when done */
	int next_b;	    /* with RL_GRAD_PER_BATCH: the batch the next call backs through */
	int *pos;	    /* [T] */
	float **xs;	    /* [L + 1]: layer inputs [T, C]; xs[L] = outputs [n, C] */
	rl_layer_act *acts; /* [L * nbatch]: kept activations per layer and batch (mem
			     * NULL: recompute) */
	rl_layer_act scratch_act;
	rl_layer_ws ws;
	rl_layer_w w, g, gb; /* weights, the gradient, a batch's partial (summing) */
	float *dy, *dx, *ytmp;
	rl_seqs *bs; /* [nbatch]: each batch's rows */
	int *bstart; /* [n + nbatch]: their starts, from the batch's first row */
} rl_grad;

int rl_grad_begin(rl_grad *g, rl_engine *e, const rl_prompts *p, int batch_size, const float *dir,
		  int want);
/* The next layer's gradient (the sum of its batches' partials); *layer -1
 * when done. Not with RL_GRAD_PER_BATCH. */
int rl_grad_next(rl_grad *g, int *layer, const rl_layer_w **grads);
/* With RL_GRAD_PER_BATCH: the partial of the next (layer, batch): batches 0
 * to nbatch-1 of layer L-1, then of L-2, ... down to 0; *layer -1 when done. */
int rl_grad_next_batch(rl_grad *g, int *layer, int *batch, const rl_layer_w **grads);
void rl_grad_end(rl_grad *g);

#endif
