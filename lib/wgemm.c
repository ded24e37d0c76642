/* wgemm.c — x · W^T with W in bf16/f16/f32 as stored (see wgemm.h). */
#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "wgemm.h"

/* ---- reference and portable path ---- */

static float w_at(const void *w, rl_dtype dt, size_t i)
{
	float f;
	rl_widen(dt, (const uint8_t *)w + i * rl_dtype_size(dt), &f, 1);
	return f;
}

void rl_wgemm_naive(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
		    const float *bias, int M, int N, int K)
{
	for (int m = 0; m < M; m++)
		for (int n = 0; n < N; n++) {
			double s = 0;
			for (int k = 0; k < K; k++)
				s += (double)x[(size_t)m * ldx + k] *
				     w_at(w, dt, (size_t)n * K + (size_t)k);
			out[(size_t)m * ldo + n] = (float)s + (bias ? bias[n] : 0.0f);
		}
}

static int block_rows(int K)
{
	int r = (int)((1u << 20) / (unsigned)(K > 0 ? K : 1));
	return r < 1 ? 1 : r;
}

size_t rl_wgemm_scratch(int K)
{
	return (size_t)block_rows(K) * (size_t)(K > 0 ? K : 1);
}

/* Widens blocks of rows of W into scratch and multiplies them with rl_gemm. */
static void portable(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
		     const float *bias, int M, int N, int K, float *scratch)
{
	int R = block_rows(K);
	size_t es = rl_dtype_size(dt);
	for (int r0 = 0; r0 < N; r0 += R) {
		int rr = N - r0 < R ? N - r0 : R;
		rl_widen(dt, (const uint8_t *)w + (size_t)r0 * K * es, scratch, (size_t)rr * K);
		rl_linear_forward(out + r0, ldo, x, ldx, scratch, bias ? bias + r0 : NULL, M, K,
				  rr);
	}
}

/* ---- AVX-512 kernel ---- */

static int threads_set;
static int force_portable;

void rl_wgemm_set_threads(int n)
{
	threads_set = n;
}

void rl_wgemm_force_portable(int on)
{
	force_portable = on;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl")))
#define KERN_INLINE                                                                                \
	static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl")))

enum { D_BF16, D_F16, D_F32 };

/* 16 weights starting at p, widened to f32 (mask: which lanes to load). */
KERN_INLINE __m512 load_w(int D, const uint8_t *p, __mmask16 mask)
{
	if (D == D_F32)
		return _mm512_maskz_loadu_ps(mask, p);
	__m256i h = _mm256_maskz_loadu_epi16(mask, p);
	if (D == D_F16)
		return _mm512_cvtph_ps(h);
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* out[m, o] = sum_k x[m, k] w[o, k] (+ bias[o]) for o < RW, m < RX; RW, RX
 * and D are constants where this is inlined, so acc[][] lives in registers
 * (at most 6 x 4 = 24 of the 32). */
KERN_INLINE void kern(int RW, int RX, int D, const uint8_t *w, size_t ws, const float *x, int ldx,
		      float *out, int ldo, int K, const float *bias)
{
	const size_t es = D == D_F32 ? 4 : 2;
	__m512 acc[6][4];
#pragma GCC unroll 6
	for (int o = 0; o < RW; o++)
#pragma GCC unroll 6
		for (int m = 0; m < RX; m++)
			acc[o][m] = _mm512_setzero_ps();
	int k = 0;
	for (; k + 16 <= K; k += 16) {
		__m512 wv[6];
#pragma GCC unroll 6
		for (int o = 0; o < RW; o++)
			wv[o] = load_w(D, w + o * ws + (size_t)k * es, 0xFFFF);
#pragma GCC unroll 6
		for (int m = 0; m < RX; m++) {
			__m512 xv = _mm512_loadu_ps(x + (size_t)m * ldx + k);
#pragma GCC unroll 6
			for (int o = 0; o < RW; o++)
				acc[o][m] = _mm512_fmadd_ps(wv[o], xv, acc[o][m]);
		}
	}
	if (k < K) {
		__mmask16 mask = (__mmask16)((1u << (K - k)) - 1);
		__m512 wv[6];
#pragma GCC unroll 6
		for (int o = 0; o < RW; o++)
			wv[o] = load_w(D, w + o * ws + (size_t)k * es, mask);
#pragma GCC unroll 6
		for (int m = 0; m < RX; m++) {
			__m512 xv = _mm512_maskz_loadu_ps(mask, x + (size_t)m * ldx + k);
#pragma GCC unroll 6
			for (int o = 0; o < RW; o++)
				acc[o][m] = _mm512_fmadd_ps(wv[o], xv, acc[o][m]);
		}
	}
#pragma GCC unroll 6
	for (int o = 0; o < RW; o++)
#pragma GCC unroll 6
		for (int m = 0; m < RX; m++) {
			float s = _mm512_reduce_add_ps(acc[o][m]);
			out[(size_t)m * ldo + o] = bias ? s + bias[o] : s;
		}
}

typedef void (*kern_fn)(const uint8_t *w, size_t ws, const float *x, int ldx, float *out, int ldo,
			int K, const float *bias);

#define KDEF(RW, RX, D)                                                                            \
	static TGT void k_##RW##_##RX##_##D(const uint8_t *w, size_t ws, const float *x, int ldx,  \
					    float *out, int ldo, int K, const float *bias)         \
	{                                                                                          \
		kern(RW, RX, D, w, ws, x, ldx, out, ldo, K, bias);                                 \
	}
#define KROW(RW, D) KDEF(RW, 1, D) KDEF(RW, 2, D) KDEF(RW, 3, D) KDEF(RW, 4, D)
#define KDT(D) KROW(1, D) KROW(2, D) KROW(3, D) KROW(4, D) KROW(5, D) KROW(6, D)
KDT(D_BF16)
KDT(D_F16)
KDT(D_F32)

#define KREF_ROW(RW, D)                                                                            \
	{                                                                                          \
		k_##RW##_1_##D, k_##RW##_2_##D, k_##RW##_3_##D, k_##RW##_4_##D                     \
	}
#define KREF_DT(D)                                                                                 \
	{                                                                                          \
		KREF_ROW(1, D), KREF_ROW(2, D), KREF_ROW(3, D), KREF_ROW(4, D), KREF_ROW(5, D),    \
			KREF_ROW(6, D)                                                             \
	}
static const kern_fn kernels[3][6][4] = {KREF_DT(D_BF16), KREF_DT(D_F16), KREF_DT(D_F32)};

struct job {
	float *out;
	int ldo;
	const float *x;
	int ldx;
	const uint8_t *w;
	int D;
	const float *bias;
	int M, K, n0, n1;
};

/* Rows [n0, n1) of W: 6 at a time, every input row against them. */
static void run_job(const struct job *j)
{
	size_t es = j->D == D_F32 ? 4 : 2, ws = (size_t)j->K * es;
	for (int o = j->n0; o < j->n1; o += 6) {
		int rw = j->n1 - o < 6 ? j->n1 - o : 6;
		for (int m = 0; m < j->M; m += 4) {
			int rx = j->M - m < 4 ? j->M - m : 4;
			kernels[j->D][rw - 1][rx - 1](j->w + (size_t)o * ws, ws,
						      j->x + (size_t)m * j->ldx, j->ldx,
						      j->out + (size_t)m * j->ldo + o, j->ldo, j->K,
						      j->bias ? j->bias + o : NULL);
		}
	}
}

static void *job_thread(void *p)
{
	run_job(p);
	return NULL;
}

static int cpu_ok(void)
{
	static int ok = -1;
	if (ok < 0) {
		__builtin_cpu_init();
		ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		     __builtin_cpu_supports("avx512vl");
	}
	return ok;
}

int rl_wgemm_fast(void)
{
	return !force_portable && cpu_ok();
}

void rl_wgemm(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
	      const float *bias, int M, int N, int K, float *scratch)
{
	if (M <= 0 || N <= 0)
		return;
	int D = dt == RL_DT_BF16 ? D_BF16 : dt == RL_DT_F16 ? D_F16 : D_F32;
	if (!rl_wgemm_fast() || K <= 0 ||
	    (dt != RL_DT_BF16 && dt != RL_DT_F16 && dt != RL_DT_F32)) {
		portable(out, ldo, x, ldx, w, dt, bias, M, N, K, scratch);
		return;
	}
	int nt = threads_set > 0 ? threads_set : openblas_get_num_threads();
	if (nt < 1)
		nt = 1;
	if (nt > 64)
		nt = 64;
	/* Each thread gets at least 48 rows (8 blocks of 6). */
	while (nt > 1 && N / nt < 48)
		nt--;
	struct job jobs[64];
	pthread_t th[64];
	int started[64] = {0};
	int per = (N / nt + 5) / 6 * 6;
	for (int t = 0; t < nt; t++) {
		int n0 = t * per, n1 = t == nt - 1 ? N : (t + 1) * per;
		if (n0 > N)
			n0 = N;
		if (n1 > N)
			n1 = N;
		jobs[t] = (struct job){out, ldo, x, ldx, w, D, bias, M, K, n0, n1};
	}
	for (int t = 1; t < nt; t++)
		started[t] = pthread_create(&th[t], NULL, job_thread, &jobs[t]) == 0;
	run_job(&jobs[0]);
	for (int t = 1; t < nt; t++) {
		if (started[t])
			pthread_join(th[t], NULL);
		else
			run_job(&jobs[t]); /* no thread: do it here */
	}
}

#else /* not x86-64 */

int rl_wgemm_fast(void)
{
	return 0;
}

void rl_wgemm(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
	      const float *bias, int M, int N, int K, float *scratch)
{
	if (M <= 0 || N <= 0)
		return;
	portable(out, ldo, x, ldx, w, dt, bias, M, N, K, scratch);
}

#endif
