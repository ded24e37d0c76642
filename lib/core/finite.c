/* finite.c — NaN and Inf in f32 arrays (see finite.h). A finite x gives
 * x * 0 == 0; NaN and infinities give NaN, which compares unequal. */
#include <math.h>

#include "core/finite.h"

static size_t scan(const float *x, size_t i, size_t n)
{
	for (; i < n; i++)
		if (!isfinite(x[i]))
			return i;
	return n;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* SSE2 (every x86-64): 16 floats a step, one branch. */
size_t rl_f32_nonfinite(const float *x, size_t n)
{
	const __m128 zero = _mm_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m128 a = _mm_cmpneq_ps(_mm_mul_ps(_mm_loadu_ps(x + i), zero), zero);
		__m128 b = _mm_cmpneq_ps(_mm_mul_ps(_mm_loadu_ps(x + i + 4), zero), zero);
		__m128 c = _mm_cmpneq_ps(_mm_mul_ps(_mm_loadu_ps(x + i + 8), zero), zero);
		__m128 d = _mm_cmpneq_ps(_mm_mul_ps(_mm_loadu_ps(x + i + 12), zero), zero);
		if (_mm_movemask_ps(_mm_or_ps(_mm_or_ps(a, b), _mm_or_ps(c, d))))
			return scan(x, i, i + 16);
	}
	return scan(x, i, n);
}
#else
size_t rl_f32_nonfinite(const float *x, size_t n)
{
	return scan(x, 0, n);
}
#endif

/* An all-ones exponent is an infinity or a NaN. */
static size_t bf16_scan(const unsigned char *b, size_t i, size_t n)
{
	for (; i < n; i++) /* the high byte of element i: b[2i + 1] */
		if ((((unsigned)b[2 * i + 1] << 8 | b[2 * i]) & 0x7f80) == 0x7f80)
			return i;
	return n;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* SSE2: 32 elements a step, one branch (memory-bound: a layer's weights
 * are checked each time a LoRA step loads them). */
size_t rl_bf16_nonfinite(const void *x, size_t n)
{
	const unsigned char *b = x;
	const __m128i mask = _mm_set1_epi16(0x7f80);
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		const __m128i *p = (const __m128i *)(const void *)(b + 2 * i);
		__m128i e0 = _mm_cmpeq_epi16(_mm_and_si128(_mm_loadu_si128(p), mask), mask);
		__m128i e1 = _mm_cmpeq_epi16(_mm_and_si128(_mm_loadu_si128(p + 1), mask), mask);
		__m128i e2 = _mm_cmpeq_epi16(_mm_and_si128(_mm_loadu_si128(p + 2), mask), mask);
		__m128i e3 = _mm_cmpeq_epi16(_mm_and_si128(_mm_loadu_si128(p + 3), mask), mask);
		if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(e0, e1), _mm_or_si128(e2, e3))))
			return bf16_scan(b, i, i + 32);
	}
	return bf16_scan(b, i, n);
}
#else
size_t rl_bf16_nonfinite(const void *x, size_t n)
{
	return bf16_scan(x, 0, n);
}
#endif
