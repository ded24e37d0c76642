/* attn_row.c — a decoding step's attention: for each head h, one query q_h
 * against the keys and values of positions lo..p of its group g (GQA):
 *   s_t = softcap(q_h . k_t * scale),  P = softmax(s),  out_h = sum_t P_t v_t.
 * Each sum runs in an order fixed by head_dim and the key's position, never
 * by the batch or the cache's length or alignment: BLAS's GEMV kernels, which
 * served this once, pick their order from the vectors' alignment and made
 * runs differ in the last bits from one start to the next.
 *
 * The AVX2 kernel vectorises all three steps (a decoding step spent a tenth
 * of its time here in scalar loops on Qwen2.5-1.5B at 100 positions): eight
 * keys' dot products at once, each lane-wise over d = i mod 8 and then summed
 * by a fixed tree; exp by rl_exp256; out by FMAs over t, 64 columns at a
 * time. */
#include <math.h>
#include <stddef.h>

#include "compute/attn_row.h"
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

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "compute/vexp.h"

#define TGT __attribute__((target("avx2,fma")))
#define KERN_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* Lane j: the sum of a[j]'s eight lanes, as ((0+1)+(2+3))+((4+5)+(6+7)). */
KERN_INLINE __m256 hsum8x8(const __m256 a[8])
{
	__m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
	__m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
	__m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
	return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
			     _mm256_permute2f128_ps(u0, u1, 0x31));
}

KERN_INLINE float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* Lanes [0, n) of 8 set. */
KERN_INLINE __m256i lanes(int n)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* row[t] = q . k_t * scale for t in [t0, t1), eight keys at a time; a short
 * last group repeats its last key in the spare lanes (each lane's sum is its
 * own, so a key's score does not depend on its group). */
KERN_INLINE void scores(float *row, const float *q, const float *kg, int ldk, int t0, int t1,
			int hd, float scale)
{
	__m256 sc = _mm256_set1_ps(scale);
	for (int t = t0; t < t1; t += 8) {
		int n = t1 - t < 8 ? t1 - t : 8;
		const float *kt[8];
		for (int j = 0; j < 8; j++)
			kt[j] = kg + (size_t)(t + (j < n ? j : n - 1)) * ldk;
		__m256 a[8];
		for (int j = 0; j < 8; j++)
			a[j] = _mm256_setzero_ps();
		for (int d = 0; d < hd; d += 8) {
			__m256 qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
			for (int j = 0; j < 8; j++)
				a[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kt[j] + d), a[j]);
		}
		__m256 s = _mm256_mul_ps(hsum8x8(a), sc);
		if (n == 8)
			_mm256_storeu_ps(row + t, s);
		else
			_mm256_maskstore_ps(row + t, lanes(n), s);
	}
}

/* row[t] = exp(row[t] - mx) for t in [t0, t1); returns their sum (lane-wise
 * in t order, then the lanes by hsum's tree). */
KERN_INLINE float exp_sum(float *row, int t0, int t1, float mx)
{
	__m256 m = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
	for (int t = t0; t < t1; t += 8) {
		int n = t1 - t < 8 ? t1 - t : 8;
		__m256i ln = lanes(n);
		__m256 e = rl_exp256(_mm256_sub_ps(_mm256_maskload_ps(row + t, ln), m));
		e = _mm256_and_ps(e, _mm256_castsi256_ps(ln));
		_mm256_maskstore_ps(row + t, ln, e);
		acc = _mm256_add_ps(acc, e);
	}
	return hsum(acc);
}

/* o[0, hd) = sum_{t0 <= t < t1} row[t] v_t, each column summed in t order. */
KERN_INLINE void weighted_sum(float *o, const float *row, const float *vg, int ldk, int t0, int t1,
			      int hd)
{
	int d = 0;
	for (; d + 64 <= hd; d += 64) {
		__m256 a[8];
		for (int j = 0; j < 8; j++)
			a[j] = _mm256_setzero_ps();
		for (int t = t0; t < t1; t++) {
			__m256 pt = _mm256_broadcast_ss(row + t);
			const float *vt = vg + (size_t)t * ldk + d;
#pragma GCC unroll 8
			for (int j = 0; j < 8; j++)
				a[j] = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt + 8 * j), a[j]);
		}
		for (int j = 0; j < 8; j++)
			_mm256_storeu_ps(o + d + 8 * j, a[j]);
	}
	for (; d < hd; d += 8) {
		__m256 a = _mm256_setzero_ps();
		for (int t = t0; t < t1; t++)
			a = _mm256_fmadd_ps(_mm256_broadcast_ss(row + t),
					    _mm256_loadu_ps(vg + (size_t)t * ldk + d), a);
		_mm256_storeu_ps(o + d, a);
	}
}

static TGT void row_avx2(float *out, float *lse, const float *q, const float *k, const float *v,
			 int ldk, int nkv, int nh, int nkvh, int hd, int window, float scale,
			 float cap, float *row)
{
	int rep = nh / nkvh, p = nkv - 1, lo = first_key(p, window);
	for (int h = 0; h < nh; h++) {
		const float *kg = k + (size_t)(h / rep) * hd, *vg = v + (size_t)(h / rep) * hd;
		scores(row, q + (size_t)h * hd, kg, ldk, lo, p + 1, hd, scale);
		float mx = -INFINITY;
		for (int t = lo; t <= p; t++) {
			if (cap > 0)
				row[t] = softcap(row[t], cap);
			mx = row[t] > mx ? row[t] : mx;
		}
		float sum = exp_sum(row, lo, p + 1, mx), inv = 1.0f / sum;
		__m256 iv = _mm256_set1_ps(inv);
		for (int t = lo; t <= p; t += 8) {
			__m256i ln = lanes(p + 1 - t);
			_mm256_maskstore_ps(row + t, ln,
					    _mm256_mul_ps(_mm256_maskload_ps(row + t, ln), iv));
		}
		weighted_sum(out + (size_t)h * hd, row, vg, ldk, lo, p + 1, hd);
		if (lse)
			lse[h] = mx + logf(sum);
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
