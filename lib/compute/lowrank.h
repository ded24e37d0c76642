/* lowrank.h — the matrix products of a LoRA branch: one factor has only r
 * rows (the rank: 8 in the paper), the other T rows of a packed batch.
 *
 * BLAS is slow at these shapes (OpenBLAS packs the big operand for 8 output
 * columns: 1-10 GFLOP/s where the layer's own GEMMs run at 30-200), and
 * they are memory-bound anyway: each kernel streams the big operand once,
 * the thin one staying in cache. Three shapes cover the branch's six
 * products (lora.c):
 *
 *   rowdot  out[T, r] = alpha * X[T, n] W[r, n]^T        u = x A^T, du = dy B
 *   rankr   Y[T, n]  += alpha * U[T, r] W[r, n]          y += u B^T, dx += du A
 *   outer   G[r, n]  += alpha * U[T, r]^T X[T, n]        dA += du^T x, dB^T += u^T dy
 *
 * Matrices are row-major with leading dimensions (ld*); W and G are dense
 * ([r, n], leading dimension n). The rows (rowdot, rankr) or the columns
 * (outer) are split over the thread pool (core/par.h), so results do not
 * depend on the thread count. AVX-512 kernels where the CPU has them
 * (rl_lowrank_simd(0) turns them off for the process: tests), else portable
 * loops; sums run in other orders than BLAS's (float rounding only).
 * rl_lowrank_naive_* are double-precision references for the tests.
 */
#ifndef RL_LOWRANK_H
#define RL_LOWRANK_H

void rl_lowrank_rowdot(float *out, int ldo, float alpha, const float *x, int ldx, const float *w,
		       int T, int n, int r);
void rl_lowrank_rankr(float *y, int ldy, float alpha, const float *u, int ldu, const float *w,
		      int T, int n, int r);
void rl_lowrank_outer(float *g, float alpha, const float *u, int ldu, const float *x, int ldx,
		      int T, int n, int r);

void rl_lowrank_naive_rowdot(float *out, int ldo, float alpha, const float *x, int ldx,
			     const float *w, int T, int n, int r);
void rl_lowrank_naive_rankr(float *y, int ldy, float alpha, const float *u, int ldu, const float *w,
			    int T, int n, int r);
void rl_lowrank_naive_outer(float *g, float alpha, const float *u, int ldu, const float *x, int ldx,
			    int T, int n, int r);

/* on = 0: the portable loops for the whole process. Returns 1 when the
 * AVX-512 kernels are now in use. */
int rl_lowrank_simd(int on);

#endif
