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

/* A LoRA matrix of an adapter's file widened to f32 (malloc'd; NULL when out
 * of memory). */
float *rl_lora_widen(const rl_st_tensor *t, const rl_st_file *f);

/* Rows i0 .. i0+n-1 of base tensor t [rows, cols] merged: read, widened,
 * W + scale * B @ A added (rl_lora_delta_add; A [r, cols], B [rows, r] in
 * f32) and rounded to t's dtype into out (n * cols elements). x: n * cols
 * floats of scratch, d: cols. What rl_merge_write and rl_merge_in_memory
 * compute, block by block. */
int rl_merge_tensor_rows(const rl_tensor *t, const float *A, const float *B, int r, float scale,
			 int i0, int n, float *x, float *d, void *out);
/* The rows of t one block of that takes (8 MiB of f32). */
int rl_merge_rows_per_block(const rl_tensor *t);

/* After each tensor: tensors done, of n; bytes written so far. */
typedef void (*rl_merge_progress)(void *ctx, size_t done, size_t n, uint64_t bytes);

/* Writes the merged model's files into dir (which must exist and be empty:
 * rl_outdir's tmp). ad must have passed rl_adapter_check against base. */
int rl_merge_write(const rl_model *base, const rl_adapter *ad, const char *dir,
		   rl_merge_progress progress, void *ctx);

/* The adapter merged into base in memory, for the tools that read a model
 * for evaluation (-A ADAPTER): each tensor the adapter changes gets a copy in
 * its own dtype, computed block by block as rl_merge_write computes it (the
 * same bits), and base's table then points at the copy, so that base reads
 * exactly as rl_merge_write's output would: generation, hidden states,
 * hashes. The copies live in one memfd mapped shared, like the model's own
 * file map (readers that drop pages after reading them lose nothing); the
 * map's pages of a replaced tensor are dropped once it is merged (never read
 * again). Memory: the replaced tensors' bytes, about the model's size with
 * the paper's seven targets. base must be open RL_MODEL_READ and
 * ad checked against it (rl_adapter_check); keep owns the copies, which base
 * uses until rl_merged_free (call it after the last use of base). On failure
 * base may hold some merged tensors: close it. */
typedef struct rl_merged {
	void *map; /* the merged tensors: a shared memory file's map */
	uint64_t size;
	size_t n; /* tensors merged */
	/* the adapter's settings, for reports */
	int r, rslora;
	double alpha;
	float scale;
	uint64_t params; /* its A and B elements */
} rl_merged;
int rl_merge_in_memory(rl_model *base, const rl_adapter *ad, rl_merged *keep);
void rl_merged_free(rl_merged *k);

/* A tool's -A DIR: opens the adapter in dir, checks it against base
 * (rl_adapter_check; check_name: its base's name too) and merges it in
 * memory. Every refusal is RL_EDATA (an unsupported setting, shapes that do
 * not fit, an unknown module, another base model). */
int rl_merge_adapter_dir(rl_model *base, const char *dir, int check_name, rl_merged *keep);

#endif
