/* wgemm_back.h — the input gradient dx = dy · W of a product y = x · W^T
 * whose W stays in its stored bf16 (LoRA training at precision bf16).
 *
 * The forward multiplies the stored matrix with rl_wgemm; its backward needs
 * W the other way round (contraction over W's rows). W (one or more row
 * blocks: q, k, v of a layer; gate, up) is transposed into a bf16 scratch
 * [K, N] (2 bytes an element, no f32 copy of the layer) and multiplied with
 * rl_wgemm at precision bf16: dy rounded to bf16 (nearest, ties to even),
 * the products exact in f32, summed in f32 — what torch's bf16 matmuls do
 * for a grad_input, except that dx is kept in f32. The transposition reads
 * W once per call (N x K x 2 bytes), a small cost next to the product's
 * 2 M N K flops for M in the hundreds.
 */
#ifndef RL_WGEMM_BACK_H
#define RL_WGEMM_BACK_H

#include <stddef.h>
#include <stdint.h>

/* A row block of W: rows x K bf16 elements, row-major (leading dimension K),
 * at any alignment (a file's mapping). */
typedef struct rl_wblock {
	const void *w;
	int rows;
} rl_wblock;

/* Scratch for the transposed W, grown as needed (free with rl_wback_free). */
typedef struct rl_wback {
	uint16_t *wt;
	size_t cap; /* elements */
} rl_wback;

/* out[M, K] (ldo) = dy[M, N] (ldy) · W[N, K], W the nb row blocks stacked
 * (N = the sum of their rows). RL_ESYS when the scratch cannot grow. */
int rl_wgemm_back(float *out, int ldo, const float *dy, int ldy, const rl_wblock *b, int nb, int M,
		  int K, rl_wback *s);
void rl_wback_free(rl_wback *s);

/* The transposition alone (for tests): dst[k, c0 + r] = w[r, k] for r < rows,
 * k < K, dst of leading dimension ldd. */
void rl_bf16_transpose(uint16_t *dst, int ldd, int c0, const void *w, int rows, int K);

#endif
