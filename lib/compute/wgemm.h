/* wgemm.h — out = x · W^T with W kept in its file dtype (bf16, f16 or f32).
 *
 * Decoding multiplies a few rows (one per sequence in flight) by every weight
 * matrix of the model at each step, so the time goes into reading the weights
 * from memory, not into arithmetic. Widening a bf16 model to f32 first doubles
 * the bytes read per step (and the memory held); this kernel reads the stored
 * 2-byte weights once per call, widens them in registers (exactly: bf16 and
 * f16 are subsets of f32) and accumulates in f32 FMAs. Only the order of the
 * additions differs from an f32 GEMM on widened weights.
 *
 * The AVX-512 kernels (chosen at run time when the CPU has AVX-512F/BW/VL)
 * widen a block of weight rows into L1 once and meet every input row with it;
 * "dot" (vectors along K) serves fewer than 16 input rows, "outer" (vectors
 * along the input rows) 16 or more (see wgemm.c); the rows of W are split
 * among the threads. Elsewhere (or without AVX-512), rows of W are widened in
 * blocks and multiplied with rl_gemm. rl_wgemm_naive is the reference.
 */
#ifndef RL_WGEMM_H
#define RL_WGEMM_H

#include <stddef.h>

#include "core/dtype.h"

/* out[M, N] (ldo) = x[M, K] (ldx) · W[N, K]^T + bias[N] (bias may be NULL).
 * W is row-major [N, K] (leading dimension K) in dt (F32, F16 or BF16), at any
 * alignment. scratch: rl_wgemm_scratch(K) floats (the portable path's widened
 * block). */
void rl_wgemm(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
	      const float *bias, int M, int N, int K, float *scratch);
void rl_wgemm_naive(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
		    const float *bias, int M, int N, int K);
size_t rl_wgemm_scratch(int K);

/* Threads for the AVX-512 kernel (default: OpenBLAS's thread count). */
void rl_wgemm_set_threads(int n);
/* 1 when the AVX-512 kernels are used on this CPU. */
int rl_wgemm_fast(void);
/* For tests and benchmarks: one path for every call (AUTO: by M and CPU). */
typedef enum rl_wgemm_path {
	RL_WGEMM_AUTO,
	RL_WGEMM_PORTABLE,
	RL_WGEMM_DOT,
	RL_WGEMM_OUTER
} rl_wgemm_path;
void rl_wgemm_force(rl_wgemm_path p);

#endif
