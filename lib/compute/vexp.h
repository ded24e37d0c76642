/* vexp.h — exp of 8 or 16 floats at once (AVX2+FMA, AVX-512), for the
 * kernels that need many: SiLU's sigmoid, softmax. The Cephes expf
 * polynomial (relative error about 2e-7; torch's vectorised exp is within an
 * ulp too): x = n ln2 + r with ln2 split in two for an exact reduction, then
 * exp(r) by a degree-6 polynomial, times 2^n. Both widths do the same
 * operations in the same order and give the same bits; inputs are clamped to
 * +-88.376 (results below FLT_MIN become denormals, above FLT_MAX inf). */
#ifndef RL_VEXP_H
#define RL_VEXP_H

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define RL_VEXP_MAX 88.3762626647949f

static inline __attribute__((always_inline, target("avx2,fma"))) __m256 rl_exp256(__m256 x)
{
	x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(RL_VEXP_MAX)),
			  _mm256_set1_ps(-RL_VEXP_MAX));
	__m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
				   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
	__m256 p = _mm256_set1_ps(1.9875691500E-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
	p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	/* times 2^n as 2^(n/2) 2^(n - n/2): each factor a normal float for
	 * |n| <= 128, the first product exact, so one rounding as scalef's */
	__m256i ni = _mm256_cvtps_epi32(n), h = _mm256_srai_epi32(ni, 1);
	__m256 f1 = _mm256_castsi256_ps(
		_mm256_slli_epi32(_mm256_add_epi32(h, _mm256_set1_epi32(127)), 23));
	__m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(
		_mm256_add_epi32(_mm256_sub_epi32(ni, h), _mm256_set1_epi32(127)), 23));
	return _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
}

static inline __attribute__((always_inline, target("avx512f,avx512dq"))) __m512 rl_exp512(__m512 x)
{
	x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(RL_VEXP_MAX)),
			  _mm512_set1_ps(-RL_VEXP_MAX));
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
					_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500E-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_scalef_ps(p, n);
}
#endif

#endif
