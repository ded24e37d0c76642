/* attn_row.c — a decoding step's attention: for each head h, one query q_h
 * against the keys and values of positions lo..p of its group g (GQA):
 *   s_t = softcap(q_h . k_t * scale),  P = softmax(s),  out_h = sum_t P_t v_t.
 * Each sum runs in an order fixed by head_dim and the key's position, never
 * by the batch or the cache's length or alignment: BLAS's GEMV kernels, which
 * served this once, pick their order from the vectors' alignment and made
 * runs differ in the last bits from one start to the next.
 *
 * The AVX2 kernel vectorises all three steps (a decoding step spent a tenth
 * of its time here in scalar loops on Qwen2.5-1.5B at 100 positions) and
 * takes the heads that share a key/value group together, so that each key or
 * value vector loaded serves two or three heads (tests/bench/attention.c
 * measures it): scores lane-wise over d = i mod 8 and then by a fixed tree;
 * exp by rl_exp256; the output by FMAs over t. */
#include <math.h>
#include <stddef.h>

#include "compute/attn_row.h"
#include "compute/ops.h"
#include "core/cpu.h"

static inline float softcap(float s, float cap)
{
	return cap > 0 ? tanhf(s / cap) * cap : s;
}

static inline int first_key(int p, int window)
{
	return window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
}

float rl_attn_dot(const float *a, const float *b, int n)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	int i = 0;
	for (; i + 4 <= n; i += 4) {
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	for (; i < n; i++)
		s0 += a[i] * b[i];
	return (s0 + s1) + (s2 + s3);
}

void rl_attn_row_portable(float *out, float *lse, const float *q, const float *k, const float *v,
			  int ldk, int nkv, int nh, int nkvh, int hd, int window, float scale,
			  float cap, float *row)
{
	int rep = nh / nkvh, p = nkv - 1, lo = first_key(p, window);
	for (int h = 0; h < nh; h++) {
		const float *qh = q + (size_t)h * hd, *kg = k + (size_t)(h / rep) * hd,
			    *vg = v + (size_t)(h / rep) * hd;
		float mx = -INFINITY;
		for (int t = lo; t <= p; t++) {
			row[t] = softcap(rl_attn_dot(qh, kg + (size_t)t * ldk, hd) * scale, cap);
			mx = row[t] > mx ? row[t] : mx;
		}
		float sum = 0;
		for (int t = lo; t <= p; t++) {
			row[t] = expf(row[t] - mx);
			sum += row[t];
		}
		float inv = 1.0f / sum, *o = out + (size_t)h * hd;
		for (int d = 0; d < hd; d++)
			o[d] = 0;
		for (int t = lo; t <= p; t++) {
			float pt = row[t] * inv;
			const float *vt = vg + (size_t)t * ldk;
			for (int d = 0; d < hd; d++)
				o[d] += pt * vt[d];
		}
		if (lse)
			lse[h] = mx + logf(sum);
	}
}

const char *rl_attn_row_kernel(int hd)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (rl_cpu_get()->avx2 && hd % 8 == 0)
		return "avx2";
#endif
	(void)hd;
	return "portable";
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "compute/avx2_lanes.h"
#include "compute/vexp.h"

#define TGT __attribute__((target("avx2,fma")))
#define KERN_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* Lane j < 4: the sum of a[j]'s eight lanes, as ((0+1)+(2+3))+((4+5)+(6+7)). */
KERN_INLINE __m128 hsum4x8(const __m256 a[4])
{
	__m256 u = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
	return _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

/* row[j * ldr + t] = q_j . k_t * scale for the HC heads j of one group (q_j at
 * q + j hd) and t in [t0, t1): four keys against HC heads at a time, so that
 * each key vector loaded meets every head (12 accumulators at HC 3). A short
 * last group of keys repeats its last key in the spare lanes: each (head,
 * key) sum is its own, lane-wise over d = i mod 8 then hsum4x8's tree, so a
 * score depends on neither its group nor HC. */
KERN_INLINE void scores(int HC, float *row, int ldr, const float *q, const float *kg, int ldk,
			int t0, int t1, int hd, float scale)
{
	__m128 sc = _mm_set1_ps(scale);
	for (int t = t0; t < t1; t += 4) {
		int n = t1 - t < 4 ? t1 - t : 4;
		const float *kt[4];
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++)
			kt[j] = kg + (size_t)(t + (j < n ? j : n - 1)) * ldk;
		__m256 a[3][4];
#pragma GCC unroll 3
		for (int h = 0; h < HC; h++)
#pragma GCC unroll 4
			for (int j = 0; j < 4; j++)
				a[h][j] = _mm256_setzero_ps();
		for (int d = 0; d < hd; d += 8) {
			__m256 qv[3];
#pragma GCC unroll 3
			for (int h = 0; h < HC; h++)
				qv[h] = _mm256_loadu_ps(q + (size_t)h * hd + d);
#pragma GCC unroll 4
			for (int j = 0; j < 4; j++) {
				__m256 kv = _mm256_loadu_ps(kt[j] + d);
#pragma GCC unroll 3
				for (int h = 0; h < HC; h++)
					a[h][j] = _mm256_fmadd_ps(qv[h], kv, a[h][j]);
			}
		}
#pragma GCC unroll 3
		for (int h = 0; h < HC; h++) {
			__m128 s = _mm_mul_ps(hsum4x8(a[h]), sc);
			float *r = row + (size_t)h * ldr + t;
			if (n == 4)
				_mm_storeu_ps(r, s);
			else
				_mm_maskstore_ps(r, _mm256_castsi256_si128(rl_lanes8(n)), s);
		}
	}
}

/* row[t] = exp(row[t] - mx) for t in [t0, t1); returns their sum (lane-wise
 * in t order, then the lanes by rl_hsum8's tree). */
KERN_INLINE float exp_sum(float *row, int t0, int t1, float mx)
{
	__m256 m = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
	for (int t = t0; t < t1; t += 8) {
		int n = t1 - t < 8 ? t1 - t : 8;
		__m256i ln = rl_lanes8(n);
		__m256 e = rl_exp256(_mm256_sub_ps(_mm256_maskload_ps(row + t, ln), m));
		e = _mm256_and_ps(e, _mm256_castsi256_ps(ln));
		_mm256_maskstore_ps(row + t, ln, e);
		acc = _mm256_add_ps(acc, e);
	}
	return rl_hsum8(acc);
}

/* Row t0..t1 of one head's scores becomes its probabilities; returns the
 * log-sum-exp. */
KERN_INLINE float softmax(float *row, int t0, int t1, float cap)
{
	float mx = -INFINITY;
	for (int t = t0; t < t1; t++) {
		if (cap > 0)
			row[t] = softcap(row[t], cap);
		mx = row[t] > mx ? row[t] : mx;
	}
	float sum = exp_sum(row, t0, t1, mx);
	__m256 iv = _mm256_set1_ps(1.0f / sum);
	for (int t = t0; t < t1; t += 8) {
		__m256i ln = rl_lanes8(t1 - t);
		_mm256_maskstore_ps(row + t, ln,
				    _mm256_mul_ps(_mm256_maskload_ps(row + t, ln), iv));
	}
	return mx + logf(sum);
}

/* o[j * hd + d] = sum_{t0 <= t < t1} row[j * ldr + t] v_t[d] for the HC heads j
 * (1 or 2) of one group: each value vector loaded meets both heads; every
 * column summed in t order, 32 columns at a time, then 8. */
KERN_INLINE void weighted_sum(int HC, float *o, const float *row, int ldr, const float *vg, int ldk,
			      int t0, int t1, int hd)
{
	int d = 0;
	for (; d + 32 <= hd; d += 32) {
		__m256 a[2][4];
#pragma GCC unroll 2
		for (int h = 0; h < HC; h++)
#pragma GCC unroll 4
			for (int j = 0; j < 4; j++)
				a[h][j] = _mm256_setzero_ps();
		for (int t = t0; t < t1; t++) {
			const float *vt = vg + (size_t)t * ldk + d;
			__m256 vv[4];
#pragma GCC unroll 4
			for (int j = 0; j < 4; j++)
				vv[j] = _mm256_loadu_ps(vt + 8 * j);
#pragma GCC unroll 2
			for (int h = 0; h < HC; h++) {
				__m256 pt = _mm256_broadcast_ss(row + (size_t)h * ldr + t);
#pragma GCC unroll 4
				for (int j = 0; j < 4; j++)
					a[h][j] = _mm256_fmadd_ps(pt, vv[j], a[h][j]);
			}
		}
#pragma GCC unroll 2
		for (int h = 0; h < HC; h++)
#pragma GCC unroll 4
			for (int j = 0; j < 4; j++)
				_mm256_storeu_ps(o + (size_t)h * hd + d + 8 * j, a[h][j]);
	}
	for (; d < hd; d += 8) {
		__m256 a[2];
#pragma GCC unroll 2
		for (int h = 0; h < HC; h++)
			a[h] = _mm256_setzero_ps();
		for (int t = t0; t < t1; t++) {
			__m256 vv = _mm256_loadu_ps(vg + (size_t)t * ldk + d);
#pragma GCC unroll 2
			for (int h = 0; h < HC; h++)
				a[h] = _mm256_fmadd_ps(
					_mm256_broadcast_ss(row + (size_t)h * ldr + t), vv, a[h]);
		}
#pragma GCC unroll 2
		for (int h = 0; h < HC; h++)
			_mm256_storeu_ps(o + (size_t)h * hd + d, a[h]);
	}
}

/* HC heads (1 to 3) of one group, from head h0: scores, softmax, output. */
KERN_INLINE void heads(int HC, float *out, float *lse, const float *q, const float *kg,
		       const float *vg, int ldk, int h0, int lo, int p, int hd, float scale,
		       float cap, float *row, int ldr)
{
	scores(HC, row, ldr, q + (size_t)h0 * hd, kg, ldk, lo, p + 1, hd, scale);
	for (int h = 0; h < HC; h++) {
		float l = softmax(row + (size_t)h * ldr, lo, p + 1, cap);
		if (lse)
			lse[h0 + h] = l;
	}
	float *o = out + (size_t)h0 * hd;
	if (HC == 1)
		weighted_sum(1, o, row, ldr, vg, ldk, lo, p + 1, hd);
	else
		weighted_sum(2, o, row, ldr, vg, ldk, lo, p + 1, hd);
	if (HC == 3)
		weighted_sum(1, o + (size_t)2 * hd, row + (size_t)2 * ldr, ldr, vg, ldk, lo, p + 1,
			     hd);
}

#define HEADS(HC)                                                                                  \
	static TGT void heads_##HC(float *out, float *lse, const float *q, const float *kg,        \
				   const float *vg, int ldk, int h0, int lo, int p, int hd,        \
				   float scale, float cap, float *row, int ldr)                    \
	{                                                                                          \
		heads(HC, out, lse, q, kg, vg, ldk, h0, lo, p, hd, scale, cap, row, ldr);          \
	}
HEADS(1)
HEADS(2)
HEADS(3)

/* The heads of a group taken 3 at a time, but 4 as 2 + 2: every key and value
 * vector loaded is used by two or three heads where the group has them. */
static void row_avx2(float *out, float *lse, const float *q, const float *k, const float *v,
		     int ldk, int nkv, int nh, int nkvh, int hd, int window, float scale, float cap,
		     float *row)
{
	int rep = nh / nkvh, p = nkv - 1, lo = first_key(p, window);
	for (int h0 = 0; h0 < nh;) {
		int g = h0 / rep, left = (g + 1) * rep - h0,
		    hc = left == 4  ? 2
			 : left < 3 ? left
				    : 3;
		const float *kg = k + (size_t)g * hd, *vg = v + (size_t)g * hd;
		(hc == 1 ? heads_1
		 : hc == 2
			 ? heads_2
			 : heads_3)(out, lse, q, kg, vg, ldk, h0, lo, p, hd, scale, cap, row, nkv);
		h0 += hc;
	}
}

int rl_attn_row_avx2(float *out, float *lse, const float *q, const float *k, const float *v,
		     int ldk, int nkv, int nh, int nkvh, int hd, int window, float scale, float cap,
		     float *row)
{
	if (!rl_cpu_get()->avx2 || hd % 8)
		return -1;
	row_avx2(out, lse, q, k, v, ldk, nkv, nh, nkvh, hd, window, scale, cap, row);
	return 0;
}
#else
int rl_attn_row_avx2(float *out, float *lse, const float *q, const float *k, const float *v,
		     int ldk, int nkv, int nh, int nkvh, int hd, int window, float scale, float cap,
		     float *row)
{
	(void)out, (void)lse, (void)q, (void)k, (void)v, (void)ldk, (void)nkv, (void)nh;
	(void)nkvh, (void)hd, (void)window, (void)scale, (void)cap, (void)row;
	return -1;
}
#endif
