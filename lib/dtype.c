/* dtype.c — dtype names and sizes; exact widening and round-to-nearest-even narrowing. */
#include <math.h>
#include <string.h>

#include "dtype.h"

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

void rl_widen(rl_dtype dt, const void *src, float *dst, size_t n)
{
	const uint8_t *s = src;
	switch (dt) {
	case RL_DT_F32:
		memcpy(dst, src, n * 4);
		break;
	case RL_DT_BF16:
		for (size_t i = 0; i < n; i++) {
			uint16_t h;
			memcpy(&h, s + 2 * i, 2);
			uint32_t u = (uint32_t)h << 16;
			memcpy(dst + i, &u, 4);
		}
		break;
	case RL_DT_F16:
		for (size_t i = 0; i < n; i++) {
			uint16_t h;
			memcpy(&h, s + 2 * i, 2);
			dst[i] = rl_f16_to_f32(h);
		}
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
