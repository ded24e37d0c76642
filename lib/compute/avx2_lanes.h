/* avx2_lanes.h — the two small AVX2 helpers the f32 kernels share (wgemm_avx2.c,
 * attn_row.c, ops.c): the mask of a loop's short last vector, and the sum of
 * one vector's lanes in a fixed order. */
#ifndef RL_AVX2_LANES_H
#define RL_AVX2_LANES_H

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Lanes [0, n) of 8 set (all for n >= 8, none for n <= 0): the mask of
 * _mm256_maskload_ps / _mm256_maskstore_ps for a loop's last n floats. */
static inline __attribute__((always_inline, target("avx2"))) __m256i rl_lanes8(int n)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The sum of v's 8 lanes as ((0+4)+(2+6))+((1+5)+(3+7)). */
static inline __attribute__((always_inline, target("avx2"))) float rl_hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}
#endif

#endif
