/* wgemm.h — out = x · W^T with W kept in its file dtype (bf16, f16 or f32).
 *
 * Generation multiplies the rows in flight by every weight matrix of the
 * model at each step. Widening a bf16 model to f32 first doubles the bytes
 * read per step (and the memory held), so the kernels here read the stored
 * 2-byte weights as they are and accumulate in f32. They are chosen at run
 * time from what the CPU and OS can run (core/cpu.h), never from build flags:
 *
 *   kernel        needs          precision  how
 *   portable      -              fp32       blocks of rows widened, OpenBLAS sgemm
 *   avx2-dot      AVX2 FMA F16C  fp32       a block of weights widened into L1, 4
 *                                           rows x 3 inputs of accumulators over K
 *   avx2-outer    AVX2 FMA F16C  fp32       x transposed, 6 weight rows
 *                                           broadcast against 16 inputs
 *   avx512-dot    AVX-512        fp32       as avx2-dot, 6 rows x 4 inputs
 *   avx512-outer  AVX-512        fp32       as avx2-outer, 12 rows x 32 inputs
 *   bf16-dot      AVX512_BF16    bf16       vdpbf16ps along K
 *   bf16-outer    AVX512_BF16    bf16       vdpbf16ps, 12 weight rows x 32 inputs
 *   amx           AMX-BF16       bf16       tdpbf16ps on 16 x 32 tiles, 32 weight
 *                                           rows x 32 inputs per step
 *
 * rl_wgemm_pick says which one a call of M input rows gets (the dot kernels
 * below 16 rows, the others from 16 on, AMX from 4 on; see wgemm.c).
 *
 * Precision fp32: the weights are widened exactly (bf16 and f16 are subsets
 * of f32) and multiplied with f32 FMAs: only the order of the additions
 * differs from an f32 GEMM on widened weights. Precision bf16 (bf16 weights
 * only): the inputs are rounded to bf16 (nearest, ties to even) and the
 * products, exact in f32, are summed in f32, as torch's bf16 matmuls and
 * llama.cpp's BF16 kernels do; that rounding (a relative error of at most
 * 2^-8 per input) is the only difference. With f16 or f32 weights, bf16 runs
 * the fp32 kernels (no f16 dot product sums in f32 on these CPUs).
 *
 * The rows of W are split among threads (rl_wgemm_set_threads; default
 * OpenBLAS's count) on the core/par.h pool. rl_wgemm_naive is the reference.
 */
#ifndef RL_WGEMM_H
#define RL_WGEMM_H

#include <stddef.h>

#include "core/dtype.h"

typedef enum rl_precision {
	RL_PREC_FP32 = 0, /* f32 inputs, f32 products and sums */
	RL_PREC_BF16,	  /* inputs rounded to bf16 (bf16 weights), f32 sums */
} rl_precision;

/* "fp32" / "bf16" <-> the enum; parse returns -1 for anything else. */
const char *rl_precision_name(rl_precision p);
int rl_precision_parse(const char *s, rl_precision *p);

/* out[M, N] (ldo) = x[M, K] (ldx) · W[N, K]^T + bias[N] (bias may be NULL).
 * W is row-major [N, K] (leading dimension K) in dt (F32, F16 or BF16), at any
 * alignment. scratch: rl_wgemm_scratch(K) floats (the portable path's widened
 * block), or NULL (allocated when needed). Never fails: a kernel that cannot
 * get memory for its packed input falls back to the portable path, and that
 * without memory for its block to the reference loop. */
void rl_wgemm(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
	      const float *bias, int M, int N, int K, rl_precision prec, float *scratch);
size_t rl_wgemm_scratch(int K);

/* References: double sums of the exact products; the _bf16 form rounds x to
 * bf16 first (what precision bf16 computes, up to the order of f32 sums). */
void rl_wgemm_naive(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
		    const float *bias, int M, int N, int K);
void rl_wgemm_naive_bf16(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
			 const float *bias, int M, int N, int K);

typedef enum rl_wgemm_kernel {
	RL_WK_AUTO = 0,
	RL_WK_PORTABLE,
	RL_WK_AVX2_DOT,
	RL_WK_AVX2_OUTER,
	RL_WK_AVX512_DOT,
	RL_WK_AVX512_OUTER,
	RL_WK_BF16_DOT,
	RL_WK_BF16_OUTER,
	RL_WK_AMX,
	RL_WK_COUNT
} rl_wgemm_kernel;

/* The kernel rl_wgemm uses for M input rows of dtype dt at precision prec on
 * this machine (RL_WK_AUTO is never returned). */
rl_wgemm_kernel rl_wgemm_pick(rl_precision prec, rl_dtype dt, int M);
/* "avx512-outer", ... ("auto" for RL_WK_AUTO). */
const char *rl_wgemm_kernel_name(rl_wgemm_kernel k);
/* 1 when kernel k can run here on dt weights (bf16 kernels: BF16 only). */
int rl_wgemm_kernel_runs(rl_wgemm_kernel k, rl_dtype dt);
/* 1 when kernel k rounds its inputs to bf16. */
int rl_wgemm_kernel_bf16(rl_wgemm_kernel k);
/* "decode avx512-dot, prefill avx512-outer": what a run at precision prec on
 * dt weights uses for a few rows (M = 1) and for many (M = 512). */
void rl_wgemm_describe(rl_precision prec, rl_dtype dt, char *buf, size_t cap);

/* Row-invariant mode (process-wide; set before the threads start, e.g. for a
 * whole generation run): every call at one precision on one dtype uses the
 * kernel the choice gives many rows, whatever M, and the portable path
 * multiplies one input row at a time. Each output row is then a function of
 * its input row alone, bit for bit, whichever rows share the call: the
 * kernels' sums run over K in an order that does not depend on M (tested in
 * test_wgemm). The cost: the few-row calls run the many-row kernel (nothing
 * for AMX; 2-4x per call below 16 rows for the others). */
void rl_wgemm_set_row_invariant(int on);

/* Threads (default: OpenBLAS's thread count). */
void rl_wgemm_set_threads(int n);
/* For tests and benchmarks: kernel k for every call whose weights it can
 * run, whatever the precision asked (others keep the automatic choice);
 * RL_WK_AUTO undoes it. Returns 0, and changes
 * nothing, when k cannot run on this CPU at all. Not thread-safe. */
int rl_wgemm_force(rl_wgemm_kernel k);

#endif
