/* dtype.c — dtype names and sizes; exact widening and round-to-nearest-even narrowing. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "core/dtype.h"

static const struct {
	const char *name;
	size_t size;
} dtypes[RL_DT_COUNT] = {
	[RL_DT_BOOL] = {"BOOL", 1},	  [RL_DT_U8] = {"U8", 1},
	[RL_DT_I8] = {"I8", 1},		  [RL_DT_F8_E5M2] = {"F8_E5M2", 1},
	[RL_DT_F8_E4M3] = {"F8_E4M3", 1}, [RL_DT_I16] = {"I16", 2},
	[RL_DT_U16] = {"U16", 2},	  [RL_DT_F16] = {"F16", 2},
	[RL_DT_BF16] = {"BF16", 2},	  [RL_DT_I32] = {"I32", 4},
	[RL_DT_U32] = {"U32", 4},	  [RL_DT_F32] = {"F32", 4},
	[RL_DT_F64] = {"F64", 8},	  [RL_DT_I64] = {"I64", 8},
	[RL_DT_U64] = {"U64", 8},
};

size_t rl_dtype_size(rl_dtype dt)
{
	return (unsigned)dt < RL_DT_COUNT ? dtypes[dt].size : 0;
}

const char *rl_dtype_name(rl_dtype dt)
{
	return (unsigned)dt < RL_DT_COUNT ? dtypes[dt].name : "?";
}

int rl_dtype_parse(const char *name, size_t len, rl_dtype *out)
{
	for (int i = 0; i < RL_DT_COUNT; i++) {
		if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, name, len) == 0) {
			*out = (rl_dtype)i;
			return 0;
		}
	}
	return -1;
}

int rl_dtype_is_compute(rl_dtype dt)
{
	return dt == RL_DT_F32 || dt == RL_DT_F16 || dt == RL_DT_BF16;
}

static inline float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static inline uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

float rl_bf16_to_f32(uint16_t h)
{
	return bits_f32((uint32_t)h << 16);
}

float rl_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
	if (exp == 0x1F) /* inf / nan: keep the payload */
		return bits_f32(sign | 0x7F800000u | (man << 13));
	if (exp == 0) {
		if (man == 0)
			return bits_f32(sign);
		/* subnormal: man * 2^-24, exact in f32 */
		float v = (float)man * 0x1p-24f;
		return sign ? -v : v;
	}
	return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t rl_f32_to_bf16(float f)
{
	uint32_t u = f32_bits(f);
	if ((u & 0x7FFFFFFFu) > 0x7F800000u) /* NaN: keep it a (quiet) NaN */
		return (uint16_t)((u >> 16) | 0x0040);
	u += 0x7FFFu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

uint16_t rl_f32_to_f16(float f)
{
	uint32_t u = f32_bits(f);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
	uint32_t a = u & 0x7FFFFFFFu;
	if (a > 0x7F800000u) /* NaN */
		return sign | 0x7E00 | (uint16_t)((a >> 13) & 0x3FF);
	if (a >= 0x477FF000u) /* rounds to >= 65520: infinity */
		return sign | 0x7C00;
	if (a < 0x38800000u) { /* below the smallest normal 2^-14: subnormal or zero */
		/* value * 2^24 rounded to nearest even gives the subnormal mantissa;
		 * the float arithmetic is exact up to the final rounding. */
		float v = bits_f32(a) * 0x1p24f;
		float r = rintf(v); /* default rounding mode: nearest even */
		return sign | (uint16_t)r;
	}
	uint32_t exp = (a >> 23) - 112, man = a & 0x7FFFFFu;
	uint32_t h = (exp << 10) | (man >> 13);
	uint32_t rest = man & 0x1FFFu;
	if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
		h++; /* may carry into the exponent: still correct */
	return sign | (uint16_t)h;
}

/* ---- widening kernels ----
 *
 * The reference is the scalar pair above (rl_bf16_to_f32, rl_f16_to_f32). The
 * kernels below produce the same bits for every input, NaN payloads included
 * (tests/unit/test_widen.c checks all 65536 patterns, every kernel, unaligned
 * sources and every tail length). F16 uses integer arithmetic only (no F16C:
 * vcvtph2ps quiets signalling NaNs, the scalar reference does not):
 *   o = (h & 0x7fff) << 13; o += (127 - 15) << 23;
 *   exponent 31 (inf/NaN): o += (128 - 16) << 23;
 *   exponent 0 (zero/subnormal): o += 1 << 23, then as float o -= 2^-14 (exact);
 *   o |= (h & 0x8000) << 16.
 */

#define F16_MAGIC (113u << 23) /* 2^-14 as f32 bits */

/* Portable C, in blocks the compiler can vectorize. */
static void widen_bf16_c(const uint8_t *s, float *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint16_t h;
		memcpy(&h, s + 2 * i, 2);
		uint32_t u = (uint32_t)h << 16;
		memcpy(d + i, &u, 4);
	}
}

static inline uint32_t f16_bits(uint32_t h)
{
	uint32_t o = (h & 0x7FFFu) << 13, exp = o & (0x7C00u << 13);
	o += (127u - 15u) << 23;
	if (exp == (0x7C00u << 13)) {
		o += (128u - 16u) << 23;
	} else if (exp == 0) {
		o += 1u << 23;
		o = f32_bits(bits_f32(o) - bits_f32(F16_MAGIC));
	}
	return o | ((h & 0x8000u) << 16);
}

static void widen_f16_c(const uint8_t *s, float *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint16_t h;
		memcpy(&h, s + 2 * i, 2);
		uint32_t u = f16_bits(h);
		memcpy(d + i, &u, 4);
	}
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RL_WIDEN_X86 1

/* SSE2 (every x86-64): 8 elements per step. */
static void widen_bf16_sse2(const uint8_t *s, float *d, size_t n)
{
	const __m128i z = _mm_setzero_si128();
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * i));
		_mm_storeu_si128((__m128i *)(void *)(d + i), _mm_unpacklo_epi16(z, h));
		_mm_storeu_si128((__m128i *)(void *)(d + i + 4), _mm_unpackhi_epi16(z, h));
	}
	widen_bf16_c(s + 2 * i, d + i, n - i);
}

static inline __m128i f16x4_sse2(__m128i h)
{
	const __m128i expm = _mm_set1_epi32(0x7C00 << 13);
	__m128i o = _mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x7FFF)), 13);
	__m128i exp = _mm_and_si128(o, expm);
	o = _mm_add_epi32(o, _mm_set1_epi32((127 - 15) << 23));
	__m128i infnan = _mm_cmpeq_epi32(exp, expm);
	o = _mm_add_epi32(o, _mm_and_si128(infnan, _mm_set1_epi32((128 - 16) << 23)));
	__m128i zero = _mm_cmpeq_epi32(exp, _mm_setzero_si128());
	__m128 sub = _mm_sub_ps(_mm_castsi128_ps(_mm_add_epi32(o, _mm_set1_epi32(1 << 23))),
				_mm_castsi128_ps(_mm_set1_epi32((int)F16_MAGIC)));
	o = _mm_or_si128(_mm_and_si128(zero, _mm_castps_si128(sub)), _mm_andnot_si128(zero, o));
	return _mm_or_si128(o, _mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x8000)), 16));
}

static void widen_f16_sse2(const uint8_t *s, float *d, size_t n)
{
	const __m128i z = _mm_setzero_si128();
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * i));
		_mm_storeu_si128((__m128i *)(void *)(d + i), f16x4_sse2(_mm_unpacklo_epi16(h, z)));
		_mm_storeu_si128((__m128i *)(void *)(d + i + 4),
				 f16x4_sse2(_mm_unpackhi_epi16(h, z)));
	}
	widen_f16_c(s + 2 * i, d + i, n - i);
}

/* AVX2: 16 elements per step. */
__attribute__((target("avx2"))) static void widen_bf16_avx2(const uint8_t *s, float *d, size_t n)
{
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * i));
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * i + 16));
		_mm256_storeu_si256((__m256i *)(void *)(d + i),
				    _mm256_slli_epi32(_mm256_cvtepu16_epi32(a), 16));
		_mm256_storeu_si256((__m256i *)(void *)(d + i + 8),
				    _mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16));
	}
	widen_bf16_c(s + 2 * i, d + i, n - i);
}

__attribute__((target("avx2"))) static inline __m256i f16x8_avx2(__m256i h)
{
	const __m256i expm = _mm256_set1_epi32(0x7C00 << 13);
	__m256i o = _mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x7FFF)), 13);
	__m256i exp = _mm256_and_si256(o, expm);
	o = _mm256_add_epi32(o, _mm256_set1_epi32((127 - 15) << 23));
	__m256i infnan = _mm256_cmpeq_epi32(exp, expm);
	o = _mm256_add_epi32(o, _mm256_and_si256(infnan, _mm256_set1_epi32((128 - 16) << 23)));
	__m256i zero = _mm256_cmpeq_epi32(exp, _mm256_setzero_si256());
	__m256 sub =
		_mm256_sub_ps(_mm256_castsi256_ps(_mm256_add_epi32(o, _mm256_set1_epi32(1 << 23))),
			      _mm256_castsi256_ps(_mm256_set1_epi32((int)F16_MAGIC)));
	o = _mm256_blendv_epi8(o, _mm256_castps_si256(sub), zero);
	return _mm256_or_si256(
		o, _mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x8000)), 16));
}

__attribute__((target("avx2"))) static void widen_f16_avx2(const uint8_t *s, float *d, size_t n)
{
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * i));
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * i + 16));
		_mm256_storeu_si256((__m256i *)(void *)(d + i),
				    f16x8_avx2(_mm256_cvtepu16_epi32(a)));
		_mm256_storeu_si256((__m256i *)(void *)(d + i + 8),
				    f16x8_avx2(_mm256_cvtepu16_epi32(b)));
	}
	widen_f16_c(s + 2 * i, d + i, n - i);
}
#endif

static int widen_forced; /* rl_widen_impl(): 0 = best available */

static int widen_best(void)
{
#ifdef RL_WIDEN_X86
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") ? RL_WIDEN_AVX2 : RL_WIDEN_SSE2;
#else
	return RL_WIDEN_C;
#endif
}

int rl_widen_impl(int level)
{
	int best = widen_best();
	widen_forced = level > 0 && level <= best ? level : 0;
	return widen_forced ? widen_forced : best;
}

void rl_widen(rl_dtype dt, const void *src, float *dst, size_t n)
{
	const uint8_t *s = src;
	static _Atomic int best; /* racing first calls store the same value */
	int level = widen_forced;
	if (!level && n >= 16) {
		level = atomic_load_explicit(&best, memory_order_relaxed);
		if (!level) {
			level = widen_best();
			atomic_store_explicit(&best, level, memory_order_relaxed);
		}
	}
	switch (dt) {
	case RL_DT_F32:
		memcpy(dst, src, n * 4);
		break;
	case RL_DT_BF16:
#ifdef RL_WIDEN_X86
		if (level == RL_WIDEN_AVX2)
			widen_bf16_avx2(s, dst, n);
		else if (level == RL_WIDEN_SSE2)
			widen_bf16_sse2(s, dst, n);
		else
#endif
			widen_bf16_c(s, dst, n);
		break;
	case RL_DT_F16:
#ifdef RL_WIDEN_X86
		if (level == RL_WIDEN_AVX2)
			widen_f16_avx2(s, dst, n);
		else if (level == RL_WIDEN_SSE2)
			widen_f16_sse2(s, dst, n);
		else
#endif
			widen_f16_c(s, dst, n);
		break;
	default:
		/* callers check rl_dtype_is_compute first; poison rather than guess */
		for (size_t i = 0; i < n; i++)
			dst[i] = NAN;
		break;
	}
}

void rl_narrow(rl_dtype dt, const float *src, void *dst, size_t n)
{
	uint8_t *d = dst;
	switch (dt) {
	case RL_DT_F32:
		memcpy(dst, src, n * 4);
		break;
	case RL_DT_BF16:
		for (size_t i = 0; i < n; i++) {
			uint16_t h = rl_f32_to_bf16(src[i]);
			memcpy(d + 2 * i, &h, 2);
		}
		break;
	case RL_DT_F16:
		for (size_t i = 0; i < n; i++) {
			uint16_t h = rl_f32_to_f16(src[i]);
			memcpy(d + 2 * i, &h, 2);
		}
		break;
	default:
		break;
	}
}
