/* generate.h — batched greedy decoding with a key/value cache.
 *
 * The whole model runs: embeddings (Gemma: times sqrt(hidden)), every decoder
 * layer, the final norm and lm_head (or the tied embeddings), then argmax.
 * Arithmetic is f32 (at precision bf16 the matrix products round their inputs
 * to bf16, see below), each layer is the engine's own (layer.h:
 * rl_layer_forward with a KV cache, the code the gradient runs), and at
 * precision fp32 the result equals transformers' generate(do_sample=False) in
 * float32 token for token (tests/gen/gen_generate.py), up to float rounding in
 * near-ties.
 *
 * Batching: up to batch_size sequences are in flight. Each step, every
 * sequence in flight contributes its pending tokens — its whole prompt the
 * first time, then the one token it produced — and all those tokens go
 * through the layers together, packed without padding (one GEMM per weight
 * over all of them; attention per sequence over its own cache). A sequence
 * that stops leaves at once and the next prompt takes its place in the next
 * step, so the batch stays full. Which others share its steps changes a
 * sequence's logits by float rounding only (the step's row count picks the
 * GEMM path and kernel); batch vs single is tested: the same ids.
 *
 * Greedy: the highest logit, the lowest id on an exact tie (torch.argmax; a
 * NaN counts as the maximum). A sequence stops after a stop token (kept in
 * out, with stopped = 1) or after max_new_tokens tokens.
 *
 * Weights stay memory-mapped in their file dtype and every matrix product
 * reads them as stored (wgemm.h: bf16 read once, never a whole f32 copy;
 * every matrix and lm_head is checked for NaN and infinity once, at the start),
 * with the kernel rl_wgemm picks for the step's row count on this CPU at the
 * run's precision: fp32 (f32 inputs and sums: equal to transformers float32
 * up to the order of additions) or bf16 (inputs rounded to bf16 before
 * each product, f32 sums: llama.cpp's and torch's bf16 matmuls; on a CPU
 * without bf16 dot products it computes as fp32). A model of any size runs
 * in bounded memory. The key/value cache holds
 * 2 x n_layers x n_kv_heads x head_dim f32 per token of each sequence in
 * flight (its prompt + max_new_tokens, reserved when it enters), and
 * kv_budget_bytes bounds the total: prompts wait for room.
 *
 * Batch invariance (batch_invariant): with it, nothing a sequence computes
 * depends on the other sequences: the matrix kernels are row-invariant
 * (wgemm.h), every other operation is per row or per sequence (attention over
 * the sequence's own cache, OpenBLAS held to one thread there), and the
 * shared prefix (below), whose length depends on the prompt set, is off. The
 * same prompt then gets the same tokens at any batch size, in any company, on
 * one kind of CPU (the kernels are chosen per CPU). Without it, only rounding
 * differs, as said above.
 *
 * Shared prefix: the tokens every prompt begins with (a template's system turn
 * and headers; at least RL_GEN_SHARED_PREFIX_MIN of them, and not a prompt's
 * last token) run through the layers once, before the loop; each sequence
 * starts with their keys and values copied into its cache. As with batching,
 * only rounding can differ from computing them with each prompt.
 */
#define RL_GEN_SHARED_PREFIX_MIN 8
#ifndef RL_GENERATE_H
#define RL_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "compute/wgemm.h"
#include "store/model.h"

typedef struct rl_gen_seq {
	const int *prompt; /* token ids (template applied, special tokens in) */
	int n_prompt;
	int *out; /* [max_new_tokens], filled with the new ids */
	int n_out;
	int stopped;	     /* out ends with a stop token */
	int ended_early;     /* the early_stop hook ended it */
	float *first_logits; /* optional [vocab]: logits of the first new token */
} rl_gen_seq;

/* Per-sequence hooks (ctx is rl_gen_opts.seq_ctx, i the index in seqs):
 * early_stop runs after each new token of a sequence that did not stop by
 * itself; returning 1 ends it there (ended_early = 1), as its budget would.
 * finished runs once per sequence, in the order they finish, when its out is
 * final; a nonzero return (an rl_status) ends the run with that status. */
typedef int (*rl_gen_early_stop)(void *ctx, size_t i, const rl_gen_seq *q);
typedef int (*rl_gen_finished)(void *ctx, size_t i, const rl_gen_seq *q);

/* After each step: sequences finished so far, new tokens so far. */
typedef void (*rl_gen_progress)(void *ctx, size_t done, size_t n, uint64_t new_tokens);

typedef struct rl_gen_opts {
	int max_new_tokens;
	int batch_size;
	const int *stop; /* stop token ids */
	int n_stop;
	rl_precision precision;	  /* of the matrix products (wgemm.h); fp32 */
	uint64_t kv_budget_bytes; /* key/value caches in flight at most this big
				     (a prompt waits for room; one always runs);
				     0: no limit but batch_size */
	int no_cache;		  /* reference mode for tests: no KV cache, every step recomputes
			 every position of every sequence */
	int no_shared_prefix;	  /* compute every prompt's shared prefix again (below) */
	/* Batch-invariant (see above): each sequence's tokens are a function of
	 * its prompt alone, bit for bit, whatever else runs, in which batch or
	 * order (sharded evaluations rest on it): one matrix kernel for every
	 * row count (wgemm.h's row-invariant mode, for the run) and no shared
	 * prefix. */
	int batch_invariant;
	rl_gen_progress progress;
	void *progress_ctx;
	rl_gen_early_stop early_stop; /* NULL: none */
	rl_gen_finished finished;     /* NULL: none */
	void *seq_ctx;
} rl_gen_opts;

void rl_gen_opts_init(rl_gen_opts *o);

/* Generates for the n sequences (out must hold max_new_tokens ids each).
 * RL_EDATA for an empty prompt, a token id outside the vocabulary or a
 * sequence longer than the position tables allow; RL_ESYS when out of
 * memory. */
int rl_generate(const rl_model *m, rl_gen_seq *seqs, size_t n, const rl_gen_opts *o);

/* The stop tokens of a model directory: "eos_token_id" (a number or a list)
 * of generation_config.json when present, plus config.json's. Writes at most
 * cap ids, returns the count (duplicates removed). */
int rl_gen_stop_tokens(const rl_model *m, int *ids, int cap, int *n);

#endif
