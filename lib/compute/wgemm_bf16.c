/* wgemm_bf16.c — rl_wgemm's AVX512_BF16 kernels (precision bf16, bf16
 * weights): vdpbf16ps multiplies 32 pairs of bf16 and adds each pair's two
 * products (exact in f32) to one of 16 f32 sums, twice the multiplies of an
 * f32 FMA per instruction and no widening at all: the weights are used as
 * the file stores them. The inputs are rounded to bf16 first (wgemm.c packs
 * them).
 *   dot    (fewer than 16 inputs) vectors along K: 6 weight rows x 4 inputs,
 *          24 accumulators of 16 partial sums, reduced at the end; weights
 *          loaded straight from the row (a masked load at the end of K).
 *   outer  (16 inputs or more) vectors along the inputs: x as bf16 pairs in
 *          panels of 16 (wgemm_kern.h), 12 weight rows broadcast one pair at
 *          a time against 32 inputs: 24 accumulators over the whole of K.
 */
#include <stdlib.h>
#include <string.h>

#include "compute/wgemm_kern.h"

#ifdef WG_X86
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define KERN_INLINE                                                                                \
	static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,"            \
							   "avx512bf16")))

#define KC 1024 /* the dot kernel's column block: 6 rows x 2 KiB */
#define RO 12	/* the outer kernel's weight rows */

KERN_INLINE __m512 dp(__m512 acc, __m512i a, __m512i b)
{
	return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

/* acc[o][m] += sum_{k < kl} w[o][k] x[m][k] for o < RW, m < RX, w rows rb
 * bytes apart, x bf16 rows ldp apart (zeros past K); from zero (first) or
 * sums[], left in sums[] or, after the last block, reduced (+ bias[o]) into
 * out[m, o]. */
KERN_INLINE void kern(int RW, int RX, const uint8_t *w, size_t rb, const uint16_t *x, int ldp,
		      int kl, __m512 *sums, int first, int last, float *out, int ldo,
		      const float *bias)
{
	__m512 acc[6][4];
#pragma GCC unroll 6
	for (int o = 0; o < RW; o++)
#pragma GCC unroll 4
		for (int m = 0; m < RX; m++)
			acc[o][m] = first ? _mm512_setzero_ps() : sums[o * 4 + m];
	for (int k = 0; k < kl; k += 32) {
		__mmask32 mk = kl - k >= 32 ? ~(__mmask32)0 : ((__mmask32)1 << (kl - k)) - 1;
		__m512i wv[6];
#pragma GCC unroll 6
		for (int o = 0; o < RW; o++)
			wv[o] = _mm512_maskz_loadu_epi16(mk, w + (size_t)o * rb + (size_t)k * 2);
#pragma GCC unroll 4
		for (int m = 0; m < RX; m++) {
			__m512i xv = _mm512_loadu_si512(x + (size_t)m * ldp + k);
#pragma GCC unroll 6
			for (int o = 0; o < RW; o++)
				acc[o][m] = dp(acc[o][m], wv[o], xv);
		}
	}
#pragma GCC unroll 6
	for (int o = 0; o < RW; o++)
#pragma GCC unroll 4
		for (int m = 0; m < RX; m++) {
			if (!last) {
				sums[o * 4 + m] = acc[o][m];
				continue;
			}
			float s = _mm512_reduce_add_ps(acc[o][m]);
			out[(size_t)m * ldo + o] = bias ? s + bias[o] : s;
		}
}

typedef void (*kern_fn)(const uint8_t *w, size_t rb, const uint16_t *x, int ldp, int kl,
			__m512 *sums, int first, int last, float *out, int ldo, const float *bias);

#define KDEF(RW, RX)                                                                               \
	static TGT void k_##RW##_##RX(const uint8_t *w, size_t rb, const uint16_t *x, int ldp,     \
				      int kl, __m512 *sums, int first, int last, float *out,       \
				      int ldo, const float *bias)                                  \
	{                                                                                          \
		kern(RW, RX, w, rb, x, ldp, kl, sums, first, last, out, ldo, bias);                \
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

/* Rows [n0, n1) of W, 6 at a time, KC columns at a time (L1-resident for the
 * inputs after the first four). */
static TGT int dot_rows(const wg_call *c, int n0, int n1)
{
	int mb = (c->M + 3) / 4;
	__m512 *sums = NULL;
	if (c->K > KC && !(sums = aligned_alloc(64, sizeof(__m512) * 24 * (size_t)mb)))
		return -1;
	const uint16_t *xp = c->xp;
	for (int o = n0; o < n1; o += 6) {
		int rw = n1 - o < 6 ? n1 - o : 6;
		for (int kc = 0; kc < c->K; kc += KC) {
			int kl = c->K - kc < KC ? c->K - kc : KC;
			int first = kc == 0, last = kc + kl == c->K;
			for (int b = 0; b < mb; b++) {
				int m = b * 4, rx = c->M - m < 4 ? c->M - m : 4;
				dot_kernels[rw - 1][rx - 1](
					c->w + (size_t)o * c->row_bytes + (size_t)kc * 2,
					c->row_bytes, xp + (size_t)m * c->ldp + kc, c->ldp, kl,
					sums ? sums + 24 * (size_t)b : NULL, first, last,
					c->out + (size_t)m * c->ldo + o, c->ldo,
					c->bias ? c->bias + o : NULL);
			}
		}
	}
	free(sums);
	return 0;
}

/* out[m0 + m, o + r] (+ bias) for r < rw and m < min(16 MV, M - m0): the
 * pairs of rows o.. broadcast against the panels at m0. Rows past rw repeat
 * row o (their sums are not stored). */
KERN_INLINE void tile(int MV, const wg_call *c, int o, int rw, int m0)
{
	const uint8_t *wr[RO];
#pragma GCC unroll 12
	for (int r = 0; r < RO; r++)
		wr[r] = c->w + (size_t)(o + (r < rw ? r : 0)) * c->row_bytes;
	__m512 acc[RO][2];
#pragma GCC unroll 12
	for (int r = 0; r < RO; r++)
		acc[r][0] = acc[r][1] = _mm512_setzero_ps();
	const uint32_t *x0p = (const uint32_t *)c->xp + (size_t)m0 * c->ldp,
		       *x1p = x0p + (size_t)c->ldp * 16;
	int qf = c->K / 2;
	for (int q = 0; q <= qf; q++) {
		if (q == qf && !(c->K & 1))
			break;
		__m512i x0 = _mm512_load_si512(x0p + (size_t)q * 16);
		__m512i x1 = MV > 1 ? _mm512_load_si512(x1p + (size_t)q * 16) : x0;
#pragma GCC unroll 12
		for (int r = 0; r < RO; r++) {
			uint32_t pair = 0;
			if (q < qf)
				memcpy(&pair, wr[r] + (size_t)q * 4, 4);
			else /* K odd: the last weight alone, never the next row's first */
				memcpy(&pair, wr[r] + (size_t)q * 4, 2);
			__m512i wv = _mm512_set1_epi32((int)pair);
			acc[r][0] = dp(acc[r][0], wv, x0);
			if (MV > 1)
				acc[r][1] = dp(acc[r][1], wv, x1);
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

static TGT void tile16(const wg_call *c, int o, int rw, int m0)
{
	tile(1, c, o, rw, m0);
}

static TGT void tile32(const wg_call *c, int o, int rw, int m0)
{
	tile(2, c, o, rw, m0);
}

static TGT int outer_rows(const wg_call *c, int n0, int n1)
{
	for (int o = n0; o < n1; o += RO) {
		int rw = n1 - o < RO ? n1 - o : RO;
		for (int m0 = 0; m0 < c->M; m0 += 32) {
			if (c->M - m0 > 16)
				tile32(c, o, rw, m0);
			else
				tile16(c, o, rw, m0);
		}
	}
	return 0;
}

static int runs(const rl_cpu *c, rl_dtype dt)
{
	return c->avx512_bf16 && dt == RL_DT_BF16;
}

/* ---- packing the input as bf16 pairs (WG_PACK_BF16_PAIRS) ---- */

#define PTGT __attribute__((target("avx512f,avx512bw,avx512vl")))

/* f32 -> bf16 bits in the low half of each lane: nearest even, NaN kept a
 * (quiet) NaN, denormals kept; rl_f32_to_bf16 lane by lane. */
static inline __attribute__((always_inline, target("avx512f,avx512bw"))) __m512i
round_bf16(__m512 v)
{
	__m512i u = _mm512_castps_si512(v);
	__m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
	__m512i r = _mm512_srli_epi32(
		_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb), 16);
	__mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
						_mm512_set1_epi32(0x7F800000));
	return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}

PTGT void rl_wk_pack_pairs_avx512(const wg_call *c, uint32_t *xp, int b0, int b1)
{
	/* word i of a row's 32 bf16 (k order) from the low halves of r0 | r1 */
	__m512i idx =
		_mm512_set_epi16(62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38, 36, 34, 32, 30,
				 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
	for (int m0 = 0; m0 < c->M; m0 += 16) {
		uint32_t *panel = xp + (size_t)m0 * c->ldp;
		int nm = c->M - m0 < 16 ? c->M - m0 : 16;
		for (int b = b0; b < b1; b++) { /* 16 pairs: columns 32 b .. 32 b + 31 */
			int k = 32 * b, left = c->K - k;
			__mmask16 l0 = left >= 16 ? 0xFFFF
				       : left > 0 ? (__mmask16)((1u << left) - 1)
						  : 0,
				  l1 = left >= 32  ? 0xFFFF
				       : left > 16 ? (__mmask16)((1u << (left - 16)) - 1)
						   : 0;
			__m512i r[16];
			for (int m = 0; m < 16; m++) {
				if (m >= nm) {
					r[m] = _mm512_setzero_si512();
					continue;
				}
				const float *x = c->x + (size_t)(m0 + m) * c->ldx + k;
				__m512i lo = round_bf16(_mm512_maskz_loadu_ps(l0, x)),
					hi = round_bf16(_mm512_maskz_loadu_ps(l1, x + 16));
				r[m] = _mm512_permutex2var_epi16(lo, idx, hi);
			}
			wg_transpose16(r);
			for (int q = 0; q < 16; q++)
				_mm512_store_si512(panel + ((size_t)b * 16 + q) * 16, r[q]);
		}
	}
}

const wg_kernel rl_wk_bf16_dot = {"bf16-dot", WG_PACK_BF16_ROWS, 6, runs, dot_rows};
const wg_kernel rl_wk_bf16_outer = {"bf16-outer", WG_PACK_BF16_PAIRS, RO, runs, outer_rows};

#endif
