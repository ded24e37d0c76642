/* wgemm_avx2.c — rl_wgemm's AVX2 kernels (FMA, F16C; no AVX-512) at
 * precision fp32, for CPUs such as AMD's EPYC before Zen 4. 16 ymm registers
 * of 8 floats; the weights are read in their stored dtype and widened
 * exactly (bf16: a shift; f16: vcvtph2ps) into an L1 buffer that every input
 * then meets:
 *   dot    (fewer than 16 inputs) vectors along K: 4 weight rows x 3 inputs,
 *          12 accumulators of 8 partial sums over K, reduced at the end.
 *   outer  (16 inputs or more) vectors along the inputs: x transposed in
 *          panels of 16 (wgemm_kern.h), 6 weight rows broadcast one weight at
 *          a time against 16 inputs: 12 accumulators, 2 input vectors and a
 *          broadcast in the 16 registers, as OpenBLAS's Haswell sgemm kernel.
 *          128 columns of 6 rows are widened once for up to 128 inputs; the
 *          tile's sums wait in a small buffer between column blocks.
 * Each output is summed in an order that depends on K only.
 */
#include <stdlib.h>
#include <string.h>

#include "compute/wgemm_kern.h"

#ifdef WG_X86
#include <immintrin.h>

#include "compute/avx2_lanes.h"

#define TGT __attribute__((target("avx2,fma,f16c")))
#define KERN_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

#define KC 256 /* the dot kernel's column block: 4 x 256 floats */
#define RO 6   /* the outer kernel's weight rows */
/* its column block: 6 x 128 floats; 256 measured 1 to 5% slower (wgemm bench) */
#define KB 128
#define MS 128 /* inputs met by one widened block */

/* Widens n weights at p (dtype dt) to f32 at dst (32-byte aligned); lanes
 * past n up to the next multiple of 8 become zero. */
static TGT void widen_chunk(rl_dtype dt, const uint8_t *p, float *dst, int n)
{
	size_t es = rl_dtype_size(dt);
	int k = 0;
	for (; k + 8 <= n; k += 8) {
		__m256 v;
		if (dt == RL_DT_F32)
			v = _mm256_loadu_ps((const float *)(p + (size_t)k * 4));
		else if (dt == RL_DT_F16)
			v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + (size_t)k * 2)));
		else
			v = _mm256_castsi256_ps(
				_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(
							  (const __m128i *)(p + (size_t)k * 2))),
						  16));
		_mm256_store_ps(dst + k, v);
	}
	if (k < n) { /* the tail through a zeroed copy: no read past the row */
		uint8_t tmp[32] __attribute__((aligned(32)));
		memset(tmp, 0, sizeof tmp);
		memcpy(tmp, p + (size_t)k * es, (size_t)(n - k) * es);
		widen_chunk(dt, tmp, dst + k, 8);
	}
}

/* acc[o][m] += sum_{k < kl} wf[o][k] x[m][k] for o < RW, m < RX (wf rows of
 * KC floats, x rows at ldx); accumulators from zero (first) or sums[], left
 * in sums[] or, after the last block, reduced (+ bias[o]) into out[m, o].
 * RW, RX are constants where this is inlined: acc in 12 registers. */
KERN_INLINE void kern(int RW, int RX, const float *wf, const float *x, int ldx, int kl,
		      __m256 *sums, int first, int last, float *out, int ldo, const float *bias)
{
	__m256 acc[4][3];
#pragma GCC unroll 4
	for (int o = 0; o < RW; o++)
#pragma GCC unroll 3
		for (int m = 0; m < RX; m++)
			acc[o][m] = first ? _mm256_setzero_ps() : sums[o * 3 + m];
	int k = 0;
	for (; k + 8 <= kl; k += 8) {
		__m256 xv[3];
#pragma GCC unroll 3
		for (int m = 0; m < RX; m++)
			xv[m] = _mm256_loadu_ps(x + (size_t)m * ldx + k);
#pragma GCC unroll 4
		for (int o = 0; o < RW; o++) {
			__m256 wv = _mm256_load_ps(wf + o * KC + k);
#pragma GCC unroll 3
			for (int m = 0; m < RX; m++)
				acc[o][m] = _mm256_fmadd_ps(wv, xv[m], acc[o][m]);
		}
	}
	if (k < kl) {
		__m256i mask = rl_lanes8(kl - k);
		__m256 xv[3];
#pragma GCC unroll 3
		for (int m = 0; m < RX; m++)
			xv[m] = _mm256_maskload_ps(x + (size_t)m * ldx + k, mask);
#pragma GCC unroll 4
		for (int o = 0; o < RW; o++) {
			__m256 wv = _mm256_load_ps(wf + o * KC + k);
#pragma GCC unroll 3
			for (int m = 0; m < RX; m++)
				acc[o][m] = _mm256_fmadd_ps(wv, xv[m], acc[o][m]);
		}
	}
#pragma GCC unroll 4
	for (int o = 0; o < RW; o++)
#pragma GCC unroll 3
		for (int m = 0; m < RX; m++) {
			if (!last) {
				sums[o * 3 + m] = acc[o][m];
				continue;
			}
			float s = rl_hsum8(acc[o][m]);
			out[(size_t)m * ldo + o] = bias ? s + bias[o] : s;
		}
}

typedef void (*kern_fn)(const float *wf, const float *x, int ldx, int kl, __m256 *sums, int first,
			int last, float *out, int ldo, const float *bias);

#define KDEF(RW, RX)                                                                               \
	static TGT void k_##RW##_##RX(const float *wf, const float *x, int ldx, int kl,            \
				      __m256 *sums, int first, int last, float *out, int ldo,      \
				      const float *bias)                                           \
	{                                                                                          \
		kern(RW, RX, wf, x, ldx, kl, sums, first, last, out, ldo, bias);                   \
	}
#define KROW(RW) KDEF(RW, 1) KDEF(RW, 2) KDEF(RW, 3)
KROW(1)
KROW(2)
KROW(3)
KROW(4)

#define KREF_ROW(RW)                                                                               \
	{                                                                                          \
		k_##RW##_1, k_##RW##_2, k_##RW##_3                                                 \
	}
static const kern_fn dot_kernels[4][3] = {KREF_ROW(1), KREF_ROW(2), KREF_ROW(3), KREF_ROW(4)};

/* Prefetches the block that follows the block of rows [o, o + rows) and
 * columns [kc, kc + kb) among rows [., n1): the next columns of the same rows,
 * else the next rows' first columns; while this block computes. */
static void prefetch_next(const wg_call *c, int o, int rows, int kc, int kb, int n1)
{
	if (kc + kb < c->K)
		wg_prefetch_block(c, o, n1 - o < rows ? n1 - o : rows, kc + kb,
				  c->K - kc - kb < kb ? c->K - kc - kb : kb);
	else if (o + rows < n1)
		wg_prefetch_block(c, o + rows, n1 - o - rows < rows ? n1 - o - rows : rows, 0,
				  c->K < kb ? c->K : kb);
}

/* Rows [n0, n1) of W, 4 at a time, KC columns at a time: widened once, met
 * by every input (partial sums in sums[] between column blocks). */
static TGT int dot_rows(const wg_call *c, int n0, int n1)
{
	int mb = (c->M + 2) / 3;
	float wf[4 * KC] __attribute__((aligned(32)));
	__m256 *sums = NULL;
	if (c->K > KC && !(sums = aligned_alloc(32, sizeof(__m256) * 12 * (size_t)mb)))
		return -1;
	size_t es = rl_dtype_size(c->dt);
	for (int o = n0; o < n1; o += 4) {
		int rw = n1 - o < 4 ? n1 - o : 4;
		for (int kc = 0; kc < c->K; kc += KC) {
			int kl = c->K - kc < KC ? c->K - kc : KC;
			for (int r = 0; r < rw; r++)
				widen_chunk(c->dt,
					    c->w + (size_t)(o + r) * c->row_bytes + (size_t)kc * es,
					    wf + r * KC, kl);
			prefetch_next(c, o, 4, kc, KC, n1);
			int first = kc == 0, last = kc + kl == c->K;
			for (int b = 0; b < mb; b++) {
				int m = b * 3, rx = c->M - m < 3 ? c->M - m : 3;
				dot_kernels[rw - 1][rx - 1](
					wf, c->x + (size_t)m * c->ldx + kc, c->ldx, kl,
					sums ? sums + 12 * (size_t)b : NULL, first, last,
					c->out + (size_t)m * c->ldo + o, c->ldo,
					c->bias ? c->bias + o : NULL);
			}
		}
	}
	free(sums);
	return 0;
}

/* sums[r][0..16) (rows MS floats apart) += sum_{k < kl} wf[r][k] x[m0 + .., kc + k]
 * for the 16 inputs of the panel at m0, from zero when first. */
static TGT void tile(const wg_call *c, const float *wf, int kc, int kl, int m0, float *sums,
		     int first)
{
	__m256 acc[RO][2];
#pragma GCC unroll 6
	for (int r = 0; r < RO; r++) {
		acc[r][0] = first ? _mm256_setzero_ps() : _mm256_load_ps(sums + r * MS);
		acc[r][1] = first ? _mm256_setzero_ps() : _mm256_load_ps(sums + r * MS + 8);
	}
	const float *xt = (const float *)c->xp + (size_t)m0 * c->ldp + (size_t)kc * 16;
	for (int k = 0; k < kl; k++, xt += 16) {
		__m256 x0 = _mm256_load_ps(xt), x1 = _mm256_load_ps(xt + 8);
#pragma GCC unroll 6
		for (int r = 0; r < RO; r++) {
			__m256 wv = _mm256_broadcast_ss(wf + r * KB + k);
			acc[r][0] = _mm256_fmadd_ps(wv, x0, acc[r][0]);
			acc[r][1] = _mm256_fmadd_ps(wv, x1, acc[r][1]);
		}
	}
#pragma GCC unroll 6
	for (int r = 0; r < RO; r++) {
		_mm256_store_ps(sums + r * MS, acc[r][0]);
		_mm256_store_ps(sums + r * MS + 8, acc[r][1]);
	}
}

/* Rows [n0, n1) of W, RO at a time, against up to MS inputs at a time. In a
 * last short block of rows, the buffer's rows past the weights hold stale
 * values whose sums are not stored. */
static TGT int outer_rows(const wg_call *c, int n0, int n1)
{
	float wf[RO * KB] __attribute__((aligned(32)));
	float sums[RO * MS] __attribute__((aligned(32)));
	memset(wf, 0, sizeof wf);
	size_t es = rl_dtype_size(c->dt);
	for (int ms = 0; ms < c->M; ms += MS) {
		int me = c->M - ms < MS ? c->M : ms + MS;
		for (int o = n0; o < n1; o += RO) {
			int rw = n1 - o < RO ? n1 - o : RO;
			for (int kc = 0; kc < c->K; kc += KB) {
				int kl = c->K - kc < KB ? c->K - kc : KB;
				for (int r = 0; r < rw; r++)
					widen_chunk(c->dt,
						    c->w + (size_t)(o + r) * c->row_bytes +
							    (size_t)kc * es,
						    wf + r * KB, kl);
				prefetch_next(c, o, RO, kc, KB, n1);
				for (int m0 = ms; m0 < me; m0 += 16)
					tile(c, wf, kc, kl, m0, sums + (m0 - ms), kc == 0);
			}
			for (int m = ms; m < me; m++) {
				float *out = c->out + (size_t)m * c->ldo + o;
				for (int r = 0; r < rw; r++)
					out[r] = sums[r * MS + (m - ms)] +
						 (c->bias ? c->bias[o + r] : 0.0f);
			}
		}
	}
	return 0;
}

static int runs(const rl_cpu *c, rl_dtype dt)
{
	(void)dt;
	return c->avx2;
}

/* ---- packing the input transposed (WG_PACK_F32_T) ---- */

/* In-register transpose of 8 x 8 floats. */
KERN_INLINE void transpose8(__m256 r[8])
{
	__m256 t[8];
	for (int i = 0; i < 8; i += 2) {
		t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
		t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
	}
	for (int i = 0; i < 8; i += 4) {
		r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
		r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
		r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
		r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
	}
	for (int i = 0; i < 4; i++) {
		t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
		t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
	}
	for (int i = 0; i < 8; i++)
		r[i] = t[i];
}

TGT void rl_wk_pack_f32_t_avx2(const wg_call *c, float *xp, int k0, int k1)
{
	for (int m0 = 0; m0 < c->M; m0 += 16) {
		float *panel = xp + (size_t)m0 * c->ldp;
		int nm = c->M - m0 < 16 ? c->M - m0 : 16;
		int k = k0;
		for (; k + 8 <= k1; k += 8)
			for (int h = 0; h < 2; h++) { /* inputs m0 + 8h .. + 7 */
				__m256 r[8];
				for (int i = 0; i < 8; i++) {
					int m = 8 * h + i;
					r[i] = m < nm ? _mm256_loadu_ps(c->x +
									(size_t)(m0 + m) * c->ldx +
									k)
						      : _mm256_setzero_ps();
				}
				transpose8(r); /* r[j]: column k + j of the 8 inputs */
				for (int j = 0; j < 8; j++)
					_mm256_store_ps(panel + (size_t)(k + j) * 16 + 8 * h, r[j]);
			}
		for (; k < k1; k++) {
			float *v = panel + (size_t)k * 16;
			for (int m = 0; m < 16; m++)
				v[m] = m < nm ? c->x[(size_t)(m0 + m) * c->ldx + k] : 0.0f;
		}
	}
}

const wg_kernel rl_wk_avx2_dot = {"avx2-dot", WG_PACK_NONE, 4, runs, dot_rows};
const wg_kernel rl_wk_avx2_outer = {"avx2-outer", WG_PACK_F32_T, RO, runs, outer_rows};

#endif
