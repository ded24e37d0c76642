/* wgemm.c — x · W^T with W in bf16/f16/f32 as stored (see wgemm.h). */
#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compute/ops.h"
#include "compute/wgemm.h"

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
static rl_wgemm_path forced;

void rl_wgemm_set_threads(int n)
{
	threads_set = n;
}

void rl_wgemm_force(rl_wgemm_path p)
{
	forced = p;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl")))
#define KERN_INLINE                                                                                \
	static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl")))

enum { D_BF16, D_F16, D_F32 };

/* Two kernels, both widening blocks of weight rows into an L1 buffer once
 * and meeting every input with them, both summing each output in an order
 * that depends on K only:
 *   dot    (fewer than 16 inputs: decoding a few prompts) vectors along K, 6
 *          weight rows x 4 inputs at a time, 16 partial sums per output
 *          reduced at the end; no lane idles whatever M.
 *   outer  (16 inputs or more) vectors along the inputs: x is transposed
 *          first (xt[k][m], padded to a multiple of 16 with zeros) and RO
 *          weight rows are broadcast one weight at a time against 32 inputs,
 *          a tile of RO x 32 outputs in 24 registers over the whole of K: no
 *          partial sums spilled, no reductions; but lanes idle when M is
 *          not a multiple of 16, hence dot below 16 (tests/bench/wgemm.c). */
#define KC 256 /* the dot kernel's column block: 6 x 256 floats */
#define RO 12  /* the outer kernel's weight rows */
#define KCO 64 /* its column block: RO x 64 floats, with 64 x 32 of xt, in L1 */

/* Widens n weights at p (dtype D) to f32 at dst. */
static TGT void widen_chunk(int D, const uint8_t *p, float *dst, int n)
{
	int k = 0;
	for (; k + 16 <= n; k += 16) {
		__m512 v;
		if (D == D_F32)
			v = _mm512_loadu_ps(p + (size_t)k * 4);
		else if (D == D_F16)
			v = _mm512_cvtph_ps(
				_mm256_loadu_si256((const __m256i *)(p + (size_t)k * 2)));
		else
			v = _mm512_castsi512_ps(
				_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(
							  (const __m256i *)(p + (size_t)k * 2))),
						  16));
		_mm512_store_ps(dst + k, v);
	}
	if (k < n) {
		__mmask16 mask = (__mmask16)((1u << (n - k)) - 1);
		__m512 v;
		if (D == D_F32)
			v = _mm512_maskz_loadu_ps(mask, p + (size_t)k * 4);
		else if (D == D_F16)
			v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p + (size_t)k * 2));
		else
			v = _mm512_castsi512_ps(
				_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(
							  mask, p + (size_t)k * 2)),
						  16));
		_mm512_store_ps(dst + k, v); /* lanes past n are zero */
	}
}

/* acc[o][m] += sum_{k < kl} wf[o][k] x[m][k] for o < RW, m < RX, with wf the
 * widened block (rows of KC floats) and x rows at ldx. The accumulators start
 * at zero (first) or from sums[], and end in sums[] or, after the last block
 * (last), reduced, plus bias[o], in out[m, o]. RW and RX are constants where
 * this is inlined, so acc[][] lives in registers (at most 24 of the 32). */
KERN_INLINE void kern(int RW, int RX, const float *wf, const float *x, int ldx, int kl,
		      __m512 *sums, int first, int last, float *out, int ldo, const float *bias)
{
	__m512 acc[6][4];
#pragma GCC unroll 6
	for (int o = 0; o < RW; o++)
#pragma GCC unroll 6
		for (int m = 0; m < RX; m++)
			acc[o][m] = first ? _mm512_setzero_ps() : sums[o * 4 + m];
	int k = 0;
	for (; k + 16 <= kl; k += 16) {
		__m512 wv[6];
#pragma GCC unroll 6
		for (int o = 0; o < RW; o++)
			wv[o] = _mm512_load_ps(wf + o * KC + k);
#pragma GCC unroll 6
		for (int m = 0; m < RX; m++) {
			__m512 xv = _mm512_loadu_ps(x + (size_t)m * ldx + k);
#pragma GCC unroll 6
			for (int o = 0; o < RW; o++)
				acc[o][m] = _mm512_fmadd_ps(wv[o], xv, acc[o][m]);
		}
	}
	if (k < kl) {
		__mmask16 mask = (__mmask16)((1u << (kl - k)) - 1);
		__m512 wv[6];
#pragma GCC unroll 6
		for (int o = 0; o < RW; o++)
			wv[o] = _mm512_load_ps(wf + o * KC + k);
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
			if (!last) {
				sums[o * 4 + m] = acc[o][m];
				continue;
			}
			float s = _mm512_reduce_add_ps(acc[o][m]);
			out[(size_t)m * ldo + o] = bias ? s + bias[o] : s;
		}
}

typedef void (*kern_fn)(const float *wf, const float *x, int ldx, int kl, __m512 *sums, int first,
			int last, float *out, int ldo, const float *bias);

#define KDEF(RW, RX)                                                                               \
	static TGT void k_##RW##_##RX(const float *wf, const float *x, int ldx, int kl,            \
				      __m512 *sums, int first, int last, float *out, int ldo,      \
				      const float *bias)                                           \
	{                                                                                          \
		kern(RW, RX, wf, x, ldx, kl, sums, first, last, out, ldo, bias);                   \
	}
#define KROW(RW) KDEF(RW, 1) KDEF(RW, 2) KDEF(RW, 3) KDEF(RW, 4)
KROW(1)
KROW(2)
KROW(3)
KROW(4)
KROW(5)
KROW(6)

#define KREF_ROW(RW)                                                                               \
	{                                                                                          \
		k_##RW##_1, k_##RW##_2, k_##RW##_3, k_##RW##_4                                     \
	}
static const kern_fn dot_kernels[6][4] = {KREF_ROW(1), KREF_ROW(2), KREF_ROW(3),
					  KREF_ROW(4), KREF_ROW(5), KREF_ROW(6)};

struct job {
	float *out;
	int ldo;
	const float *x; /* dot: the input rows */
	int ldx;
	const float *xt; /* outer: the input transposed, [K][ldt] */
	int ldt;
	const uint8_t *w;
	int D;
	const float *bias;
	int M, K, n0, n1;
};

/* Rows [n0, n1) of W, 6 at a time; for each, KC columns at a time, widened
 * once and met by every input row (partial sums kept in sums[] between
 * column blocks). */
static TGT void run_dot(const struct job *j)
{
	size_t es = j->D == D_F32 ? 4 : 2, ws = (size_t)j->K * es;
	int mb = (j->M + 3) / 4;
	float wf[6 * KC] __attribute__((aligned(64)));
	__m512 *sums = NULL;
	if (j->K > KC) {
		sums = aligned_alloc(64, sizeof(__m512) * 24 * (size_t)mb);
		if (!sums) { /* no memory for partial sums: the reference loop */
			rl_wgemm_naive(j->out + j->n0, j->ldo, j->x, j->ldx,
				       j->w + (size_t)j->n0 * ws,
				       j->D == D_F32   ? RL_DT_F32
				       : j->D == D_F16 ? RL_DT_F16
						       : RL_DT_BF16,
				       j->bias ? j->bias + j->n0 : NULL, j->M, j->n1 - j->n0, j->K);
			return;
		}
	}
	for (int o = j->n0; o < j->n1; o += 6) {
		int rw = j->n1 - o < 6 ? j->n1 - o : 6;
		for (int kc = 0; kc < j->K; kc += KC) {
			int kl = j->K - kc < KC ? j->K - kc : KC;
			for (int r = 0; r < rw; r++)
				widen_chunk(j->D, j->w + (size_t)(o + r) * ws + (size_t)kc * es,
					    wf + r * KC, kl);
			int first = kc == 0, last = kc + kl == j->K;
			for (int b = 0; b < mb; b++) {
				int m = b * 4, rx = j->M - m < 4 ? j->M - m : 4;
				dot_kernels[rw - 1][rx - 1](
					wf, j->x + (size_t)m * j->ldx + kc, j->ldx, kl,
					sums ? sums + 24 * (size_t)b : NULL, first, last,
					j->out + (size_t)m * j->ldo + o, j->ldo,
					j->bias ? j->bias + o : NULL);
			}
		}
	}
	free(sums);
}

/* out[m0 + m, o + r] = sum_k x[m0 + m, k] w[o + r, k] (+ bias) for r < rw
 * and m < min(16 MV, M - m0); wf is the widening buffer (RO x KCO floats). */
KERN_INLINE void tile(int MV, const struct job *j, int o, int rw, int m0, float *wf)
{
	size_t es = j->D == D_F32 ? 4 : 2, ws = (size_t)j->K * es;
	__m512 acc[RO][2];
#pragma GCC unroll 12
	for (int r = 0; r < RO; r++)
		acc[r][0] = acc[r][1] = _mm512_setzero_ps();
	for (int kc = 0; kc < j->K; kc += KCO) {
		int kl = j->K - kc < KCO ? j->K - kc : KCO;
		for (int r = 0; r < rw; r++)
			widen_chunk(j->D, j->w + (size_t)(o + r) * ws + (size_t)kc * es,
				    wf + r * KCO, kl);
		const float *xt = j->xt + (size_t)kc * j->ldt + m0;
		for (int k = 0; k < kl; k++, xt += j->ldt) {
			__m512 x0 = _mm512_load_ps(xt);
			__m512 x1 = MV > 1 ? _mm512_load_ps(xt + 16) : x0;
#pragma GCC unroll 12
			for (int r = 0; r < RO; r++) {
				__m512 wv = _mm512_set1_ps(wf[r * KCO + k]);
				acc[r][0] = _mm512_fmadd_ps(wv, x0, acc[r][0]);
				if (MV > 1)
					acc[r][1] = _mm512_fmadd_ps(wv, x1, acc[r][1]);
			}
		}
	}
	float t[RO][32] __attribute__((aligned(64)));
#pragma GCC unroll 12
	for (int r = 0; r < RO; r++) {
		_mm512_store_ps(t[r], acc[r][0]);
		if (MV > 1)
			_mm512_store_ps(t[r] + 16, acc[r][1]);
	}
	int nm = j->M - m0 < 16 * MV ? j->M - m0 : 16 * MV;
	for (int m = 0; m < nm; m++) {
		float *out = j->out + (size_t)(m0 + m) * j->ldo + o;
		for (int r = 0; r < rw; r++)
			out[r] = j->bias ? t[r][m] + j->bias[o + r] : t[r][m];
	}
}

static TGT void tile16(const struct job *j, int o, int rw, int m0, float *wf)
{
	tile(1, j, o, rw, m0, wf);
}

static TGT void tile32(const struct job *j, int o, int rw, int m0, float *wf)
{
	tile(2, j, o, rw, m0, wf);
}

/* Rows [n0, n1) of W, RO at a time, against every input, 32 at a time. In
 * the last block the buffer's rows past the weights hold stale values whose
 * sums are not stored. */
static TGT void run_outer(const struct job *j)
{
	float wf[RO * KCO] __attribute__((aligned(64)));
	memset(wf, 0, sizeof wf);
	for (int o = j->n0; o < j->n1; o += RO) {
		int rw = j->n1 - o < RO ? j->n1 - o : RO;
		for (int m0 = 0; m0 < j->M; m0 += 32) {
			if (j->M - m0 > 16)
				tile32(j, o, rw, m0, wf);
			else
				tile16(j, o, rw, m0, wf);
		}
	}
}

static TGT void run_job(const struct job *j)
{
	if (j->xt)
		run_outer(j);
	else
		run_dot(j);
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
	return forced != RL_WGEMM_PORTABLE && cpu_ok();
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
	float *xt = NULL;
	int ldt = (M + 15) / 16 * 16, blk = 6;
	if (forced == RL_WGEMM_OUTER || (forced != RL_WGEMM_DOT && M >= 16)) {
		xt = aligned_alloc(64, sizeof(float) * (size_t)K * (size_t)ldt);
		if (!xt) { /* no memory for the transposed input: the portable path */
			portable(out, ldo, x, ldx, w, dt, bias, M, N, K, scratch);
			return;
		}
		for (int m = 0; m < ldt; m++)
			for (int k = 0; k < K; k++)
				xt[(size_t)k * ldt + m] = m < M ? x[(size_t)m * ldx + k] : 0.0f;
		blk = RO;
	}
	/* Each thread gets at least 48 rows. */
	while (nt > 1 && N / nt < 48)
		nt--;
	struct job jobs[64];
	pthread_t th[64];
	int started[64] = {0};
	int per = (N / nt + blk - 1) / blk * blk;
	for (int t = 0; t < nt; t++) {
		int n0 = t * per, n1 = t == nt - 1 ? N : (t + 1) * per;
		if (n0 > N)
			n0 = N;
		if (n1 > N)
			n1 = N;
		jobs[t] = (struct job){out, ldo, x, ldx, xt, ldt, w, D, bias, M, K, n0, n1};
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
	free(xt);
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
