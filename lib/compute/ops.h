/* ops.h — the engine's numerical kernels (f32, row-major), forward and backward.
 *
 * Every op has a fast version and, beside it, a naive loop version (rl_*_naive)
 * that is the reference the unit tests compare against. Shapes are stated per
 * function as [rows, cols]; T is a number of tokens (rows), C the hidden size,
 * nh / nkvh the query / key-value heads, hd the head dimension, F the MLP width
 * (intermediate_size).
 * Matrices are row-major; a leading dimension (ld*) is the distance between rows
 * in floats and lets a function work on a column block of a wider matrix (for
 * example q inside a fused [T, q|k|v] projection).
 *
 * Backward functions ACCUMULATE into weight gradients (dw += ..., like llm.c:
 * the caller zeroes them once) and either accumulate into or overwrite input
 * gradients as each function states. None of these functions allocates, fails
 * or prints; scratch space is passed in by the caller.
 *
 * Matrix products: every GEMM in the engine goes through rl_gemm(), one small
 * interface with a process-wide backend (OpenBLAS cblas_sgemm, or the naive
 * loops), so another backend (oneDNN bf16/AMX, cuBLAS) can be added here
 * without touching the layers.
 */
#ifndef RL_OPS_H
#define RL_OPS_H

#include <stddef.h>

#include "store/config.h"

/* ---- matrix products ---- */

typedef enum rl_trans { RL_N = 0, RL_T = 1 } rl_trans;

typedef enum rl_gemm_backend {
	RL_GEMM_BLAS = 0, /* OpenBLAS cblas_sgemm (default) */
	RL_GEMM_NAIVE,	  /* the loop reference (tests) */
} rl_gemm_backend;

/* Process-wide; set it before any thread calls rl_gemm. */
void rl_gemm_set_backend(rl_gemm_backend b);
rl_gemm_backend rl_gemm_get_backend(void);

/* C[m,n] = alpha * op(A)[m,k] · op(B)[k,n] + beta * C[m,n].
 * op(A) is A (stored [m,k], lda >= k) or A^T (A stored [k,m], lda >= m); the
 * same for B ([k,n] or, transposed, [n,k]). With beta == 0, C is only written
 * (its old contents, even NaN, do not matter). */
void rl_gemm(rl_trans ta, rl_trans tb, int m, int n, int k, float alpha, const float *a, int lda,
	     const float *b, int ldb, float beta, float *c, int ldc);
void rl_gemm_naive(rl_trans ta, rl_trans tb, int m, int n, int k, float alpha, const float *a,
		   int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* The vector kernels (SiLU with AVX-512 or AVX2, a decoding step's attention
 * with AVX2) are used where the CPU runs them. For tests, for the whole
 * process: rl_ops_simd(0) falls back to the portable ones, 2 holds SiLU to
 * its AVX2 kernel, 1 undoes either. Returns 1 if the vector kernels asked for
 * are in use (0: the CPU has none, or 0 was asked). */
int rl_ops_simd(int level);

/* Useful floating-point operations done by rl_gemm since the process started
 * (2*m*n*k per call), for the benchmarks' GFLOP/s. Not exact under threads. */
double rl_gemm_flops(void);
/* Wall-clock seconds spent in BLAS GEMM calls (same caveat). */
double rl_gemm_seconds(void);

/* OpenBLAS with DYNAMIC_ARCH falls back to its slowest x86-64 kernels ("Prescott",
 * about 1/5 of the speed) on CPUs it does not know, such as Xeons newer than its
 * release. When OPENBLAS_CORETYPE is not set and the CPU has AVX-512 (or AVX2)
 * but OpenBLAS chose a kernel without it, this re-initialises OpenBLAS with the
 * SkylakeX (or Haswell) kernels. Call once at start, before other threads call
 * BLAS. Writes what it did (or "") to note. Never fails. */
void rl_blas_setup(char *note, size_t cap);
/* OpenBLAS's kernel name ("SkylakeX", ...) or "unknown". */
const char *rl_blas_core(void);
/* OpenBLAS threads (openblas_set_num_threads); n <= 0 leaves the default. */
void rl_blas_threads(int n);
/* OpenBLAS's current thread count. */
int rl_blas_get_threads(void);

/* ---- linear layers: y = x · W^T + b (nn.Linear) ---- */

/* out[T,OC] (ldo) = inp[T,C] (ldi) · w[OC,C]^T + bias[OC] (bias may be NULL). */
void rl_linear_forward(float *out, int ldo, const float *inp, int ldi, const float *w,
		       const float *bias, int T, int C, int OC);
/* From dout[T,OC] (ldd):
 *   dinp[T,C] (lddi) += dout · w      (skipped when dinp is NULL)
 *   dw[OC,C]         += dout^T · inp  (skipped when dw is NULL)
 *   dbias[OC]        += sum_t dout    (skipped when dbias is NULL) */
void rl_linear_backward(float *dinp, int lddi, float *dw, float *dbias, const float *dout, int ldd,
			const float *inp, int ldi, const float *w, int T, int C, int OC);

/* ---- RMSNorm (HuggingFace LlamaRMSNorm / GemmaRMSNorm, computed in f32) ---- */

/* out[T,C] = inp * rstd[t] * g[c], rstd[t] = 1/sqrt(mean_c inp[t,c]^2 + eps),
 * g = w, or 1 + w when plus_one (Gemma). rstd[T] is saved for the backward
 * (NULL: not saved). out may equal inp. */
void rl_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int T, int C,
			float eps, int plus_one);
void rl_rmsnorm_forward_naive(float *out, float *rstd, const float *inp, const float *w, int T,
			      int C, float eps, int plus_one);
/* dinp[T,C] += d(out)/d(inp)^T dout; dw[C] += sum_t dout * inp * rstd (either
 * may be NULL: not computed). rstd from the forward. */
void rl_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
			 const float *w, const float *rstd, int T, int C, int plus_one);
void rl_rmsnorm_backward_naive(float *dinp, float *dw, const float *dout, const float *inp,
			       const float *w, const float *rstd, int T, int C, int plus_one);

/* ---- rotary position embedding (HF rotate_half layout) ---- */

/* Tables for positions 0..max_pos-1: cos/sin[pos * (hd/2) + i] of angle
 * pos * inv_freq[i], computed in f32 exactly as transformers does
 * (inv_freq = 1 / theta^(2i/hd) in f32, scaled per rope type; the angle is the
 * f32 product (float)pos * inv_freq[i]). */
typedef struct rl_rope {
	int hd;	 /* the head's width (its stride in a row) */
	int rot; /* the dims turned, the first rot of each head (Phi-3's
				* partial rotary; else hd) */
	int max_pos;
	float *inv_freq;       /* [rot/2] */
	float *cos, *sin;      /* [max_pos, rot/2] (longrope: times its attention factor) */
	float att;	       /* the attention factor the tables hold (1 but for longrope) */
	struct rl_rope *local; /* Gemma 3: the sliding layers' tables (NULL: the same) */
	struct rl_rope *long_; /* longrope: the long factors' tables, for a forward pass
				* whose last position + 1 exceeds long_from */
	int long_from;
} rl_rope;

/* Builds the tables for c's head_dim, rotary_dim and rope type (default,
 * linear, llama3, longrope), the local ones where c has a rope_local_theta,
 * the long ones for longrope. */
int rl_rope_init(rl_rope *r, const rl_config *c, int max_pos);
void rl_rope_free(rl_rope *r);
/* The tables of one forward pass over a sequence whose last row is at
 * last_pos: r, or longrope's long ones past original_max_position_embeddings
 * (transformers decides per forward call by max(position_ids) + 1). */
const rl_rope *rl_rope_pass(const rl_rope *r, int last_pos);
/* inv_freq[hd/2] for config c (what rl_rope_init uses). */
void rl_rope_inv_freq(const rl_config *c, float *inv_freq);

/* x[T, nh*hd] (ldx) rotated in place, row t at position pos[t] (< max_pos):
 * for i < rot/2, with a = x[i], b = x[i+rot/2]:
 *   x[i] = a*cos - b*sin,  x[i+rot/2] = b*cos + a*sin
 * (dims rot .. hd-1 of each head pass unchanged). */
void rl_rope_forward(float *x, int ldx, const int *pos, int T, int nh, const rl_rope *r);
/* The transpose (inverse rotation) applied in place to a gradient dx. */
void rl_rope_backward(float *dx, int ldx, const int *pos, int T, int nh, const rl_rope *r);
/* Reference: computes each angle from inv_freq, no tables. */
void rl_rope_forward_naive(float *x, int ldx, const int *pos, int T, int nh, const rl_rope *r);

/* The index torch.argmax returns: the first NaN, else the first maximum
 * (0 when n == 0 or every value is -inf). */
int rl_argmax(const float *v, int n);

/* ---- causal self-attention for one sequence, GQA ---- */

/* Query rows are the LAST nq positions of a sequence whose keys/values are the
 * nkv rows k, v: query i sits at position p = nkv - nq + i and attends to keys
 * j <= p, and with window > 0 only to keys with p - j < window (HF's sliding
 * window). nq == nkv is a whole prompt; nq == 1 is the last token only (or one
 * decoding step over a KV cache). Head h uses key/value head h / (nh / nkvh).
 *   q[nq, nh*hd] (ldq), k, v [nkv, nkvh*hd] (ldk), out[nq, nh*hd] (ldo);
 *   lse[nq, nh] (may be NULL): log-sum-exp of each softmax row, for the
 *   backward. scale: HF's head_dim ** -0.5 (Gemma 2/3: query_pre_attn_scalar
 *   ** -0.5). cap > 0: the scaled scores are soft-capped, tanh(s / cap) * cap
 *   (Gemma 2's attn_logit_softcapping), before the mask; 0: not. scratch:
 *   rl_attention_scratch() floats. */
size_t rl_attention_scratch(int nq, int nkv);
void rl_attention_forward(float *out, int ldo, float *lse, const float *q, int ldq, const float *k,
			  const float *v, int ldk, int nq, int nkv, int nh, int nkvh, int hd,
			  int window, float scale, float cap, float *scratch);
/* The kernel rl_attention_forward uses here for a decoding step (nq == 1) at
 * this head_dim: "avx2" or "portable" (attn_row.c; rl-info names it). */
const char *rl_attn_row_kernel(int hd);
void rl_attention_forward_naive(float *out, int ldo, float *lse, const float *q, int ldq,
				const float *k, const float *v, int ldk, int nq, int nkv, int nh,
				int nkvh, int hd, int window, float scale, float cap);
/* From dout[nq, nh*hd] (ldd) and the forward's out and lse, OVERWRITES
 * dq[nq, nh*hd] (lddq) and dk, dv [nkv, nkvh*hd] (lddk). The probabilities
 * are recomputed from q, k and lse (nothing of size nq*nkv is saved). */
void rl_attention_backward(float *dq, int lddq, float *dk, float *dv, int lddk, const float *dout,
			   int ldd, const float *out, int ldo, const float *lse, const float *q,
			   int ldq, const float *k, const float *v, int ldk, int nq, int nkv,
			   int nh, int nkvh, int hd, int window, float scale, float cap,
			   float *scratch);
void rl_attention_backward_naive(float *dq, int lddq, float *dk, float *dv, int lddk,
				 const float *dout, int ldd, const float *q, int ldq,
				 const float *k, const float *v, int ldk, int nq, int nkv, int nh,
				 int nkvh, int hd, int window, float scale, float cap);

/* ---- gated MLP activation (SwiGLU, GeGLU) ---- */

/* gu[T, 2F] holds gate (columns 0..F-1) then up (F..2F-1), as the fused
 * gate|up projection writes them. h[T,F] = act(gate) * up. */
void rl_glu_forward(float *h, const float *gu, int T, int F, rl_act act);
void rl_glu_forward_naive(float *h, const float *gu, int T, int F, rl_act act);
/* dgu[T,2F] = (dh * up * act'(gate), dh * act(gate)), OVERWRITTEN; dgu may
 * be gu itself (in place). */
void rl_glu_backward(float *dgu, const float *dh, const float *gu, int T, int F, rl_act act);
void rl_glu_backward_naive(float *dgu, const float *dh, const float *gu, int T, int F, rl_act act);
/* Scalar activation and its derivative (torch's formulas). */
float rl_act_f(rl_act act, float x);
float rl_act_df(rl_act act, float x);

/* ---- objective: -cos(m, d) ---- */

/* Returns cos(m, d) = m·d / (|m| |d|) (double accumulation) and, when dm is
 * not NULL, writes dm[C] = d(-cos)/dm. */
double rl_neg_cos_backward(const float *m, const float *d, int C, float *dm);

/* ---- logit soft-capping (Gemma 2's final_logit_softcapping) ---- */

/* x[n] = tanh(x / cap) * cap in place, in f32 as transformers computes it. */
void rl_softcap_forward(float *x, size_t n, float cap);
/* dx[n] *= d(capped)/d(x) = 1 - (y / cap)^2, y[n] the capped values. */
void rl_softcap_backward(float *dx, const float *y, size_t n, float cap);

/* ---- small helpers ---- */

/* y[n] += x[n] */
void rl_add_inplace(float *y, const float *x, size_t n);

#endif
