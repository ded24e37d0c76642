/* wgemm_avx512.c — rl_wgemm's AVX-512 kernels at precision fp32 (see
 * wgemm.h). Both widen blocks of weight rows into an L1 buffer once and meet
 * every input with them, and sum each output in an order that depends on K
 * only:
 *   dot    (fewer than 16 inputs: decoding a few prompts) vectors along K, 6
 *          weight rows x 4 inputs at a time, 16 partial sums per output
 *          reduced at the end; no lane idles whatever M.
 *   outer  (16 inputs or more) vectors along the inputs: x transposed in
 *          panels of 16 (wgemm_kern.h), RO weight rows broadcast one weight
 *          at a time against 32 inputs, a tile of RO x 32
 *          outputs in 24 registers over the whole of K: no partial sums
 *          spilled, no reductions; but lanes idle when M is not a multiple of
 *          16, hence dot below 16 (tests/bench/wgemm.c).
 */
#include <stdlib.h>
#include <string.h>

#include "compute/wgemm_kern.h"

#ifdef WG_X86
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl")))
#define KERN_INLINE                                                                                \
	static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl")))

#define KC 256 /* the dot kernel's column block: 6 x 256 floats */
#define RO 12  /* the outer kernel's weight rows */
#define KCO 64 /* its column block: RO x 64 floats, with 64 x 32 of xt, in L1 */

/* Widens n weights at p (dtype dt) to f32 at dst (64-byte aligned); lanes
 * past n up to the next multiple of 16 become zero. */
static TGT void widen_chunk(rl_dtype dt, const uint8_t *p, float *dst, int n)
{
	int k = 0;
	for (; k + 16 <= n; k += 16) {
		__m512 v;
		if (dt == RL_DT_F32)
			v = _mm512_loadu_ps(p + (size_t)k * 4);
		else if (dt == RL_DT_F16)
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
		if (dt == RL_DT_F32)
			v = _mm512_maskz_loadu_ps(mask, p + (size_t)k * 4);
		else if (dt == RL_DT_F16)
			v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p + (size_t)k * 2));
		else
			v = _mm512_castsi512_ps(
				_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(
							  mask, p + (size_t)k * 2)),
						  16));
		_mm512_store_ps(dst + k, v);
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

/* Rows [n0, n1) of W, 6 at a time; for each, KC columns at a time, widened
 * once and met by every input row (partial sums kept in sums[] between
 * column blocks). */
static TGT int dot_rows(const wg_call *c, int n0, int n1)
{
	int mb = (c->M + 3) / 4;
	float wf[6 * KC] __attribute__((aligned(64)));
	__m512 *sums = NULL;
	if (c->K > KC && !(sums = aligned_alloc(64, sizeof(__m512) * 24 * (size_t)mb)))
		return -1;
	for (int o = n0; o < n1; o += 6) {
		int rw = n1 - o < 6 ? n1 - o : 6;
		for (int kc = 0; kc < c->K; kc += KC) {
			int kl = c->K - kc < KC ? c->K - kc : KC;
			for (int r = 0; r < rw; r++)
				widen_chunk(c->dt,
					    c->w + (size_t)(o + r) * c->row_bytes +
						    (size_t)kc * rl_dtype_size(c->dt),
					    wf + r * KC, kl);
			int first = kc == 0, last = kc + kl == c->K;
			for (int b = 0; b < mb; b++) {
				int m = b * 4, rx = c->M - m < 4 ? c->M - m : 4;
				dot_kernels[rw - 1][rx - 1](
					wf, c->x + (size_t)m * c->ldx + kc, c->ldx, kl,
					sums ? sums + 24 * (size_t)b : NULL, first, last,
					c->out + (size_t)m * c->ldo + o, c->ldo,
					c->bias ? c->bias + o : NULL);
			}
		}
	}
	free(sums);
	return 0;
}

/* out[m0 + m, o + r] = sum_k x[m0 + m, k] w[o + r, k] (+ bias) for r < rw
 * and m < min(16 MV, M - m0); wf is the widening buffer (RO x KCO floats). */
KERN_INLINE void tile(int MV, const wg_call *c, int o, int rw, int m0, float *wf)
{
	size_t es = rl_dtype_size(c->dt);
	__m512 acc[RO][2];
#pragma GCC unroll 12
	for (int r = 0; r < RO; r++)
		acc[r][0] = acc[r][1] = _mm512_setzero_ps();
	for (int kc = 0; kc < c->K; kc += KCO) {
		int kl = c->K - kc < KCO ? c->K - kc : KCO;
		for (int r = 0; r < rw; r++)
			widen_chunk(c->dt, c->w + (size_t)(o + r) * c->row_bytes + (size_t)kc * es,
				    wf + r * KCO, kl);
		const float *xt = (const float *)c->xp + (size_t)m0 * c->ldp + (size_t)kc * 16;
		size_t next = (size_t)c->ldp * 16; /* the next panel */
		for (int k = 0; k < kl; k++, xt += 16) {
			__m512 x0 = _mm512_load_ps(xt);
			__m512 x1 = MV > 1 ? _mm512_load_ps(xt + next) : x0;
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
	int nm = c->M - m0 < 16 * MV ? c->M - m0 : 16 * MV;
	for (int m = 0; m < nm; m++) {
		float *out = c->out + (size_t)(m0 + m) * c->ldo + o;
		for (int r = 0; r < rw; r++)
			out[r] = c->bias ? t[r][m] + c->bias[o + r] : t[r][m];
	}
}

static TGT void tile16(const wg_call *c, int o, int rw, int m0, float *wf)
{
	tile(1, c, o, rw, m0, wf);
}

static TGT void tile32(const wg_call *c, int o, int rw, int m0, float *wf)
{
	tile(2, c, o, rw, m0, wf);
}

/* Rows [n0, n1) of W, RO at a time, against every input, 32 at a time. In
 * the last block the buffer's rows past the weights hold stale values whose
 * sums are not stored. */
static TGT int outer_rows(const wg_call *c, int n0, int n1)
{
	float wf[RO * KCO] __attribute__((aligned(64)));
	memset(wf, 0, sizeof wf);
	for (int o = n0; o < n1; o += RO) {
		int rw = n1 - o < RO ? n1 - o : RO;
		for (int m0 = 0; m0 < c->M; m0 += 32) {
			if (c->M - m0 > 16)
				tile32(c, o, rw, m0, wf);
			else
				tile16(c, o, rw, m0, wf);
		}
	}
	return 0;
}

static int runs(const rl_cpu *c, rl_dtype dt)
{
	(void)dt;
	return c->avx512;
}

const wg_kernel rl_wk_avx512_dot = {"avx512-dot", WG_PACK_NONE, 6, runs, dot_rows};
const wg_kernel rl_wk_avx512_outer = {"avx512-outer", WG_PACK_F32_T, RO, runs, outer_rows};

#endif
