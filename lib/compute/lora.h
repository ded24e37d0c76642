/* lora.h — the low-rank branch PEFT adds to a Linear layer (LoRA), forward and
 * backward, with its input dropout.
 *
 * An adapted module (q, k, v, o, gate, up or down projection) computes, as
 * PEFT's lora.Linear does,
 *
 *     y = x W^T + b  +  (drop(x) A^T) B^T * scale      A [r, in], B [out, r]
 *
 * W and b stay frozen; only A and B are trained. drop is inverted dropout on
 * the branch's input only (the base product sees x itself): each element is
 * kept with probability 1 - p and then divided by 1 - p, with a fresh mask per
 * module, layer and call (PEFT: one nn.Dropout per adapted module). p = 0 is
 * the identity.
 *
 * Masks are not stored: element (row, col) of module i is kept when a hash of
 * (key, i, row0 + row, col) is at least p * 2^32 (a 64-bit mix per row, a
 * 32-bit finalizer per element) (splitmix64 of a counter: the same
 * mask on every machine, in any thread order, for the same key). The caller
 * picks a key per layer and call; the backward regenerates the forward's mask
 * from the same key, so a layer recomputed for its backward sees the same
 * masks. torch's dropout masks cannot be reproduced, so tests compare with
 * PEFT at p = 0 and check the masks' statistics separately.
 *
 * Initialisation (rl_lora_init_a): PEFT's reset_lora_parameters with
 * init_lora_weights=True: A ~ kaiming_uniform(a = sqrt(5)), i.e. uniform on
 * [-1/sqrt(in), 1/sqrt(in)]; B = 0 (so a new adapter changes nothing).
 */
#ifndef RL_LORA_H
#define RL_LORA_H

#include <stddef.h>
#include <stdint.h>

/* The adaptable modules, in the order of their PEFT names. */
typedef enum rl_lora_target {
	RL_LORA_Q,
	RL_LORA_K,
	RL_LORA_V,
	RL_LORA_O,
	RL_LORA_GATE,
	RL_LORA_UP,
	RL_LORA_DOWN,
	RL_LORA_N
} rl_lora_target;

/* "q_proj", ..., "down_proj". */
const char *rl_lora_target_name(rl_lora_target i);

/* Phi-3 stores q, k, v as one qkv_proj and gate, up as one gate_up_proj, and
 * PEFT adapts those as stored: one branch each, its B spanning the fused
 * rows. On such a model the qkv_proj branch sits in slot RL_LORA_Q (B
 * [qd + 2 kvd, r], rows in q, k, v order as the engine's fused projection)
 * and the gate_up_proj one in RL_LORA_GATE (B [2F, r]); slots K, V and UP
 * stay empty. */
#define RL_LORA_QKV_SET ((1u << RL_LORA_Q) | (1u << RL_LORA_K) | (1u << RL_LORA_V))
#define RL_LORA_GATE_UP_SET ((1u << RL_LORA_GATE) | (1u << RL_LORA_UP))

/* Whether slot i holds a branch on a model stored fused or not. */
int rl_lora_slot_used(rl_lora_target i, int fused);
/* The PEFT module name of slot i: qkv_proj and gate_up_proj when fused. */
const char *rl_lora_module_name(rl_lora_target i, int fused);
/* 0 when the set can be adapted: on a fused model q, k and v come together
 * (qkv_proj) or not at all, and so do gate and up (gate_up_proj). */
int rl_lora_targets_fit(unsigned set, int fused);

/* Parses a comma-separated list of short names (q,k,v,o,gate,up,down) or
 * PEFT module names (q_proj, ...), "all" for the seven, into a bit set
 * (bit i: module i); qkv_proj (qkv) stands for q, k and v, gate_up_proj
 * (gate_up) for gate and up. -1 for an unknown or repeated name (*bad points
 * at it in s, *badlen its length). */
int rl_lora_targets_parse(const char *s, unsigned *set, const char **bad, size_t *badlen);

/* One adapted module: A [r, in] and B [out, r], f32; NULL when not adapted. */
typedef struct rl_lora_mod {
	float *a, *b;
} rl_lora_mod;

/* A layer's adapters (values or, for the backward, their gradients), the
 * branch's settings and its scratch. */
typedef struct rl_lora_layer {
	int r;
	float scale;  /* alpha / r (or alpha / sqrt(r), rsLoRA) */
	float p;      /* dropout probability, 0 <= p < 1 */
	uint64_t key; /* dropout masks of this layer and call */
	int row0;     /* the call's first row in the masks' row numbering */
	rl_lora_mod m[RL_LORA_N];
	float *scr; /* rl_lora_scratch_floats() floats, caller-owned */
	size_t scr_floats;
} rl_lora_layer;

/* Scratch for T rows whose widest adapted input or output has maxw columns. */
size_t rl_lora_scratch_floats(int r, int T, int maxw);

/* xd[T, in] = drop(x) for module i under key, rows numbered from row0 (x: ld
 * ldx); the mask alone when x is NULL (1 / (1 - p) kept, 0 dropped). */
void rl_lora_dropout(float *xd, const float *x, int ldx, int T, int in, float p, uint64_t key,
		     int row0, int i);

/* The masks' AVX-512 kernel (where the CPU has it) or, on = 0, the portable
 * one for the whole process (tests: both give the same masks). Returns 1
 * when the AVX-512 one is in use. */
int rl_lora_simd(int on);

/* y[T, out] (ldy) += (drop(x) A^T) B^T * scale for module i (x [T, in], ldx).
 * Nothing when module i is not adapted. */
void rl_lora_forward(const rl_lora_layer *lo, int i, const float *x, int ldx, int T, int in,
		     float *y, int ldy, int out);

/* Backward of module i, in two halves around the base's own input gradient
 * (whose buffer may hold x until then):
 *   _params: from dy [T, out] (ldd) and the forward's input x, accumulates
 *     g's A and B gradients (g may be NULL: none wanted) and keeps
 *     du = dy B * scale [T, r] in the scratch (slot i);
 *   _input: dx [T, in] (lddx) += drop'(du A), the branch's part of the
 *     input gradient, from that du. */
void rl_lora_backward_params(const rl_lora_layer *lo, rl_lora_layer *g, int i, const float *x,
			     int ldx, int T, int in, const float *dy, int ldd, int out);
void rl_lora_backward_input(const rl_lora_layer *lo, int i, int T, int in, float *dx, int lddx);

/* A [r, in] uniform on [-1/sqrt(in), 1/sqrt(in)] from a splitmix64 stream
 * seeded with seed (kaiming_uniform(a = sqrt(5)), as PEFT initialises it). */
void rl_lora_init_a(float *a, int r, int in, uint64_t seed);

#endif
