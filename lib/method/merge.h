/* merge.h — a LoRA adapter merged into its base: the fine-tuned model as a
 * plain model directory, which rl-recover restores like any fine-tune.
 *
 * Every weight W the adapter changes becomes W + scale * B @ A, computed in
 * f32 from the stored W (widened exactly) and rounded once to W's dtype
 * (round to nearest, ties to even): what PEFT's merge_and_unload gives on the
 * model loaded in float32, cast back to the base's dtype, bit for bit. Per
 * element the sum over the rank runs in order (k = 0 .. r-1) with one fused
 * multiply-add a term, as torch's CPU matmul does; then it is scaled, then
 * added (W + (B @ A) * scale, as PEFT writes it).
 * Every other tensor is copied byte for byte; the shards keep the base's
 * names, tensors and index; the side files (tokenizer, templates, generation
 * config) and config.json are copied. Memory: one block of rows at a time.
 */
#ifndef RL_MERGE_H
#define RL_MERGE_H

#include <stdint.h>

#include "store/adapter.h"
#include "store/model.h"

/* w[rows, cols] += scale * (B[rows, r] @ A[r, cols]), f32, in place;
 * scratch holds cols floats. */
void rl_lora_delta_add(float *w, const float *b, const float *a, int rows, int cols, int r,
		       float scale, float *scratch);

/* After each tensor: tensors done, of n; bytes written so far. */
typedef void (*rl_merge_progress)(void *ctx, size_t done, size_t n, uint64_t bytes);

/* Writes the merged model's files into dir (which must exist and be empty:
 * rl_outdir's tmp). ad must have passed rl_adapter_check against base. */
int rl_merge_write(const rl_model *base, const rl_adapter *ad, const char *dir,
		   rl_merge_progress progress, void *ctx);

#endif
