/* lowrank.c — the LoRA branch's thin products (see lowrank.h). */
#include <immintrin.h>
#include <stddef.h>

#include "compute/lowrank.h"
#include "core/par.h"

#define AVX512 __attribute__((target("avx512f,avx512dq")))

static int use_simd = -1;

static int simd(void)
{
	if (use_simd < 0) {
		__builtin_cpu_init();
		use_simd = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
	}
	return use_simd;
}

int rl_lowrank_simd(int on)
{
	use_simd = -1;
	if (!on)
		use_simd = 0;
	return simd();
}

/* ---- portable kernels: one row (rowdot, rankr) or one column range ---- */

static void rowdot_row(float *o, float alpha, const float *x, const float *w, int n, int r)
{
	for (int k = 0; k < r; k++) {
		const float *wk = w + (size_t)k * n;
		float s = 0;
		for (int c = 0; c < n; c++)
			s += x[c] * wk[c];
		o[k] = alpha * s;
	}
}

static void rankr_row(float *y, float alpha, const float *u, const float *w, int n, int r)
{
	for (int k = 0; k < r; k++) {
		float a = alpha * u[k];
		const float *wk = w + (size_t)k * n;
		for (int c = 0; c < n; c++)
			y[c] += a * wk[c];
	}
}

static void outer_cols(float *g, float alpha, const float *u, int ldu, const float *x, int ldx,
		       int T, int n, int r, int c0, int c1)
{
	for (int t = 0; t < T; t++) { /* a row of x at a time: it is read in order */
		const float *xt = x + (size_t)t * ldx;
		for (int k = 0; k < r; k++) {
			float a = alpha * u[(size_t)t * ldu + k];
			float *gk = g + (size_t)k * n;
			for (int c = c0; c < c1; c++)
				gk[c] += a * xt[c];
		}
	}
}

/* ---- AVX-512 kernels ---- */

static AVX512 __mmask16 tail_mask(int left)
{
	return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* out[k] = alpha * x . w[k] for KB rows of w from k0: x loaded once per 16
 * columns for all KB accumulators. */
#define ROWDOT_BLOCK(KB)                                                                           \
	static AVX512 void rowdot_##KB(float *o, float alpha, const float *x, const float *w,      \
				       int n)                                                      \
	{                                                                                          \
		__m512 acc[KB];                                                                    \
		_Pragma("GCC unroll 8") for (int k = 0; k < KB; k++) acc[k] = _mm512_setzero_ps(); \
		for (int c = 0; c < n; c += 16) {                                                  \
			__mmask16 m = tail_mask(n - c);                                            \
			__m512 xv = _mm512_maskz_loadu_ps(m, x + c);                               \
			_Pragma("GCC unroll 8") for (int k = 0; k < KB; k++) acc[k] =              \
				_mm512_fmadd_ps(xv,                                                \
						_mm512_maskz_loadu_ps(m, w + (size_t)k * n + c),   \
						acc[k]);                                           \
		}                                                                                  \
		_Pragma("GCC unroll 8") for (int k = 0; k < KB; k++) o[k] =                        \
			alpha * _mm512_reduce_add_ps(acc[k]);                                      \
	}
ROWDOT_BLOCK(8)
ROWDOT_BLOCK(4)
ROWDOT_BLOCK(1)

static AVX512 void rowdot_row_avx512(float *o, float alpha, const float *x, const float *w, int n,
				     int r)
{
	int k = 0;
	for (; k + 8 <= r; k += 8)
		rowdot_8(o + k, alpha, x, w + (size_t)k * n, n);
	for (; k + 4 <= r; k += 4)
		rowdot_4(o + k, alpha, x, w + (size_t)k * n, n);
	for (; k < r; k++)
		rowdot_1(o + k, alpha, x, w + (size_t)k * n, n);
}

/* Four rows of y at once: each w row loaded once for all four. */
static AVX512 void rankr_rows4_avx512(float *y, int ldy, float alpha, const float *u, int ldu,
				      const float *w, int n, int r)
{
	for (int c = 0; c < n; c += 16) {
		__mmask16 m = tail_mask(n - c);
		__m512 a0 = _mm512_maskz_loadu_ps(m, y + c);
		__m512 a1 = _mm512_maskz_loadu_ps(m, y + (size_t)ldy + c);
		__m512 a2 = _mm512_maskz_loadu_ps(m, y + 2 * (size_t)ldy + c);
		__m512 a3 = _mm512_maskz_loadu_ps(m, y + 3 * (size_t)ldy + c);
		for (int k = 0; k < r; k++) {
			__m512 wv = _mm512_maskz_loadu_ps(m, w + (size_t)k * n + c);
			a0 = _mm512_fmadd_ps(_mm512_set1_ps(alpha * u[k]), wv, a0);
			a1 = _mm512_fmadd_ps(_mm512_set1_ps(alpha * u[(size_t)ldu + k]), wv, a1);
			a2 = _mm512_fmadd_ps(_mm512_set1_ps(alpha * u[2 * (size_t)ldu + k]), wv,
					     a2);
			a3 = _mm512_fmadd_ps(_mm512_set1_ps(alpha * u[3 * (size_t)ldu + k]), wv,
					     a3);
		}
		_mm512_mask_storeu_ps(y + c, m, a0);
		_mm512_mask_storeu_ps(y + (size_t)ldy + c, m, a1);
		_mm512_mask_storeu_ps(y + 2 * (size_t)ldy + c, m, a2);
		_mm512_mask_storeu_ps(y + 3 * (size_t)ldy + c, m, a3);
	}
}

static AVX512 void rankr_row_avx512(float *y, float alpha, const float *u, const float *w, int n,
				    int r)
{
	for (int c = 0; c < n; c += 16) {
		__mmask16 m = tail_mask(n - c);
		__m512 a = _mm512_maskz_loadu_ps(m, y + c);
		for (int k = 0; k < r; k++)
			a = _mm512_fmadd_ps(_mm512_set1_ps(alpha * u[k]),
					    _mm512_maskz_loadu_ps(m, w + (size_t)k * n + c), a);
		_mm512_mask_storeu_ps(y + c, m, a);
	}
}

/* g[k, c0..c1) += alpha * sum_t u[t, k] x[t, c0..c1): 16 columns and up to 8
 * rows of g in registers over a block of 16 rows of x, then back into g
 * (which stays in cache). A strip of x walking down all T rows touched a page
 * a row; 16 rows at a time are 16 streams the prefetcher follows. */
static AVX512 void outer_cols_avx512(float *g, float alpha, const float *u, int ldu, const float *x,
				     int ldx, int T, int n, int r, int c0, int c1)
{
	for (int t0 = 0; t0 < T; t0 += 16) {
		int t1 = T - t0 < 16 ? T : t0 + 16;
		for (int c = c0; c < c1; c += 16) {
			__mmask16 m = tail_mask(c1 - c);
			for (int k0 = 0; k0 < r; k0 += 8) {
				int kb = r - k0 < 8 ? r - k0 : 8;
				__m512 acc[8];
				_Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) acc[k] =
					k < kb ? _mm512_maskz_loadu_ps(m,
								       g + (size_t)(k0 + k) * n + c)
					       : _mm512_setzero_ps();
				for (int t = t0; t < t1; t++) {
					__m512 xv =
						_mm512_maskz_loadu_ps(m, x + (size_t)t * ldx + c);
					const float *ut = u + (size_t)t * ldu + k0;
					if (kb == 8) {
						_Pragma("GCC unroll 8") for (int k = 0; k < 8; k++)
							acc[k] = _mm512_fmadd_ps(
								_mm512_set1_ps(alpha * ut[k]), xv,
								acc[k]);
					} else {
						for (int k = 0; k < kb; k++)
							acc[k] = _mm512_fmadd_ps(
								_mm512_set1_ps(alpha * ut[k]), xv,
								acc[k]);
					}
				}
				for (int k = 0; k < kb; k++)
					_mm512_mask_storeu_ps(g + (size_t)(k0 + k) * n + c, m,
							      acc[k]);
			}
		}
	}
}

/* ---- drivers over the thread pool ---- */

typedef struct job {
	float *out;
	int ldo;
	float alpha;
	const float *a; /* x (rowdot, outer) or u (rankr) */
	int lda;
	const float *b; /* w, or u (outer) */
	int ldb;
	int T, n, r;
} job;

static void rowdot_rows(void *ctx, size_t t0, size_t t1)
{
	const job *j = ctx;
	int s = simd();
	for (size_t t = t0; t < t1; t++) {
		float *o = j->out + t * (size_t)j->ldo;
		const float *x = j->a + t * (size_t)j->lda;
		if (s)
			rowdot_row_avx512(o, j->alpha, x, j->b, j->n, j->r);
		else
			rowdot_row(o, j->alpha, x, j->b, j->n, j->r);
	}
}

static void rankr_rows(void *ctx, size_t t0, size_t t1)
{
	const job *j = ctx;
	int s = simd();
	size_t t = t0;
	for (; s && t + 4 <= t1; t += 4)
		rankr_rows4_avx512(j->out + t * (size_t)j->ldo, j->ldo, j->alpha,
				   j->a + t * (size_t)j->lda, j->lda, j->b, j->n, j->r);
	for (; t < t1; t++) {
		float *y = j->out + t * (size_t)j->ldo;
		const float *u = j->a + t * (size_t)j->lda;
		if (s)
			rankr_row_avx512(y, j->alpha, u, j->b, j->n, j->r);
		else
			rankr_row(y, j->alpha, u, j->b, j->n, j->r);
	}
}

/* Column ranges in units of 16 columns. */
static void outer_blocks(void *ctx, size_t b0, size_t b1)
{
	const job *j = ctx;
	int c0 = (int)b0 * 16, c1 = (int)b1 * 16 < j->n ? (int)b1 * 16 : j->n;
	if (simd())
		outer_cols_avx512(j->out, j->alpha, j->b, j->ldb, j->a, j->lda, j->T, j->n, j->r,
				  c0, c1);
	else
		outer_cols(j->out, j->alpha, j->b, j->ldb, j->a, j->lda, j->T, j->n, j->r, c0, c1);
}

void rl_lowrank_rowdot(float *out, int ldo, float alpha, const float *x, int ldx, const float *w,
		       int T, int n, int r)
{
	job j = {out, ldo, alpha, x, ldx, w, n, T, n, r};
	rl_par_for((size_t)T, 8, rowdot_rows, &j);
}

void rl_lowrank_rankr(float *y, int ldy, float alpha, const float *u, int ldu, const float *w,
		      int T, int n, int r)
{
	job j = {y, ldy, alpha, u, ldu, w, n, T, n, r};
	rl_par_for((size_t)T, 8, rankr_rows, &j);
}

void rl_lowrank_outer(float *g, float alpha, const float *u, int ldu, const float *x, int ldx,
		      int T, int n, int r)
{
	job j = {g, n, alpha, x, ldx, u, ldu, T, n, r};
	rl_par_for(((size_t)n + 15) / 16, 4, outer_blocks, &j);
}

/* ---- references ---- */

void rl_lowrank_naive_rowdot(float *out, int ldo, float alpha, const float *x, int ldx,
			     const float *w, int T, int n, int r)
{
	for (int t = 0; t < T; t++)
		for (int k = 0; k < r; k++) {
			double s = 0;
			for (int c = 0; c < n; c++)
				s += (double)x[(size_t)t * ldx + c] * w[(size_t)k * n + c];
			out[(size_t)t * ldo + k] = (float)(alpha * s);
		}
}

void rl_lowrank_naive_rankr(float *y, int ldy, float alpha, const float *u, int ldu, const float *w,
			    int T, int n, int r)
{
	for (int t = 0; t < T; t++)
		for (int c = 0; c < n; c++) {
			double s = 0;
			for (int k = 0; k < r; k++)
				s += (double)u[(size_t)t * ldu + k] * w[(size_t)k * n + c];
			y[(size_t)t * ldy + c] = (float)(y[(size_t)t * ldy + c] + alpha * s);
		}
}

void rl_lowrank_naive_outer(float *g, float alpha, const float *u, int ldu, const float *x, int ldx,
			    int T, int n, int r)
{
	for (int k = 0; k < r; k++)
		for (int c = 0; c < n; c++) {
			double s = 0;
			for (int t = 0; t < T; t++)
				s += (double)u[(size_t)t * ldu + k] * x[(size_t)t * ldx + c];
			g[(size_t)k * n + c] = (float)(g[(size_t)k * n + c] + alpha * s);
		}
}
