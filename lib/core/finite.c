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

/* An all-ones exponent is an infinity or a NaN. Blocks of 64 without a
 * branch (the compiler vectorizes them), then the element found. */
size_t rl_bf16_nonfinite(const void *x, size_t n)
{
	const unsigned char *b = x; /* the high byte of element i: b[2i + 1] */
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		int any = 0;
		for (size_t k = 0; k < 64; k++) {
			unsigned e = ((unsigned)b[2 * (i + k) + 1] << 8 | b[2 * (i + k)]) & 0x7f80;
			any |= e == 0x7f80;
		}
		if (any)
			break;
	}
	for (; i < n; i++)
		if ((((unsigned)b[2 * i + 1] << 8 | b[2 * i]) & 0x7f80) == 0x7f80)
			return i;
	return n;
}
