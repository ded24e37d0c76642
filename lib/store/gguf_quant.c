/* gguf_quant.c — ggml type table and block dequantization to f32.
 *
 * NOTES
 *
 * 1. Bit-exactness. Each function does gguf-py's operations (quants.py's
 *    dequantize_blocks) in its order, in f32: the f16 scales widened exactly
 *    (rl_f16_to_f32 keeps NaN payloads, as numpy's astype does), sub-block
 *    scales formed as d * sc, then d * q, then "- m" or "+ m" as a separate
 *    statement. Separate statements matter: ISO C mode (-std=c11) makes GCC
 *    keep them apart, and clang contracts a*b+c into an FMA only within one
 *    expression, so no compiler fuses them and the rounding stays gguf-py's.
 *    NaN payloads: a product with one NaN operand carries that NaN (quieted)
 *    whatever the operand order; the one sum of two possible NaNs (Q4_1,
 *    Q5_1: d * q + m) pins the first operand's, as numpy's does; a difference
 *    is not commutative, so compilers keep its order.
 * 2. Speed. Blocks are read bytewise (no alignment, endianness-independent);
 *    the inner loops have constant trip counts over 16 or 32 elements with
 *    integer unpacking and one multiply (and subtract), which GCC and clang
 *    vectorize at -O2.
 */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "store/gguf_quant.h"

#define QK_K 256

typedef struct type_info {
	const char *name;
	uint32_t block_size, type_size;
} type_info;

/* gguf-py 0.19's GGML_QUANT_SIZES (constants.py), by id */
static const type_info types[RL_GGML_TYPE_END] = {
	[RL_GGML_F32] = {"F32", 1, 4},
	[RL_GGML_F16] = {"F16", 1, 2},
	[RL_GGML_Q4_0] = {"Q4_0", 32, 2 + 16},
	[RL_GGML_Q4_1] = {"Q4_1", 32, 2 + 2 + 16},
	[RL_GGML_Q5_0] = {"Q5_0", 32, 2 + 4 + 16},
	[RL_GGML_Q5_1] = {"Q5_1", 32, 2 + 2 + 4 + 16},
	[RL_GGML_Q8_0] = {"Q8_0", 32, 2 + 32},
	[RL_GGML_Q8_1] = {"Q8_1", 32, 4 + 4 + 32},
	[RL_GGML_Q2_K] = {"Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4},
	[RL_GGML_Q3_K] = {"Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12},
	[RL_GGML_Q4_K] = {"Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12},
	[RL_GGML_Q5_K] = {"Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12},
	[RL_GGML_Q6_K] = {"Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16},
	[RL_GGML_Q8_K] = {"Q8_K", QK_K, 4 + QK_K + QK_K / 8},
	[RL_GGML_IQ2_XXS] = {"IQ2_XXS", QK_K, 2 + QK_K / 4},
	[RL_GGML_IQ2_XS] = {"IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32},
	[RL_GGML_IQ3_XXS] = {"IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8},
	[RL_GGML_IQ1_S] = {"IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16},
	[RL_GGML_IQ4_NL] = {"IQ4_NL", 32, 2 + 16},
	[RL_GGML_IQ3_S] = {"IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4},
	[RL_GGML_IQ2_S] = {"IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16},
	[RL_GGML_IQ4_XS] = {"IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64},
	[RL_GGML_I8] = {"I8", 1, 1},
	[RL_GGML_I16] = {"I16", 1, 2},
	[RL_GGML_I32] = {"I32", 1, 4},
	[RL_GGML_I64] = {"I64", 1, 8},
	[RL_GGML_F64] = {"F64", 1, 8},
	[RL_GGML_IQ1_M] = {"IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32},
	[RL_GGML_BF16] = {"BF16", 1, 2},
	[RL_GGML_TQ1_0] = {"TQ1_0", QK_K, 2 + 4 * 13},
	[RL_GGML_TQ2_0] = {"TQ2_0", QK_K, 2 + 64},
	[RL_GGML_MXFP4] = {"MXFP4", 32, 1 + 16},
	[RL_GGML_NVFP4] = {"NVFP4", 64, 4 + 32},
	[RL_GGML_Q1_0] = {"Q1_0", 128, 2 + 16},
};

int rl_ggml_type_known(uint32_t type)
{
	return type < RL_GGML_TYPE_END && types[type].name != NULL;
}

const char *rl_ggml_type_name(uint32_t type)
{
	return rl_ggml_type_known(type) ? types[type].name : NULL;
}

uint32_t rl_ggml_block_size(uint32_t type)
{
	return rl_ggml_type_known(type) ? types[type].block_size : 0;
}

uint32_t rl_ggml_type_size(uint32_t type)
{
	return rl_ggml_type_known(type) ? types[type].type_size : 0;
}

static inline float f16_at(const uint8_t *p)
{
	return rl_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

void rl_dequant_f32(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	rl_widen(RL_DT_F32, src, dst, (size_t)nblocks);
}

void rl_dequant_f16(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	rl_widen(RL_DT_F16, src, dst, (size_t)nblocks);
}

void rl_dequant_bf16(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	rl_widen(RL_DT_BF16, src, dst, (size_t)nblocks);
}

/* block_q8_0: f16 d; int8 qs[32]. y = q * d */
void rl_dequant_q8_0(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	const uint8_t *b = src;
	for (uint64_t i = 0; i < nblocks; i++, b += 34, dst += 32) {
		const float d = f16_at(b);
		const int8_t *qs = (const int8_t *)(b + 2);
		for (int j = 0; j < 32; j++)
			dst[j] = (float)qs[j] * d;
	}
}

/* block_q4_0: f16 d; u8 qs[16]: element j in the low nibble of qs[j], j + 16
 * in the high one. y = d * (q - 8) */
void rl_dequant_q4_0(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	const uint8_t *b = src;
	for (uint64_t i = 0; i < nblocks; i++, b += 18, dst += 32) {
		const float d = f16_at(b);
		const uint8_t *qs = b + 2;
		for (int j = 0; j < 16; j++) {
			dst[j] = d * (float)((qs[j] & 0x0F) - 8);
			dst[j + 16] = d * (float)((qs[j] >> 4) - 8);
		}
	}
}

/* a + b, and a itself when a is NaN. IEEE leaves open which NaN a sum of two
 * NaNs carries; x86 (and so numpy) returns the first operand's, but a compiler
 * may swap the operands of a commutative add (clang -O3 -march=native does),
 * so the choice is made explicit. Same value for every other input. */
static inline float nan_first_add(float a, float b)
{
	float s = a + b; /* computed unconditionally: a select, not a branch, vectorizes */
	return isnan(a) ? a : s;
}

/* block_q4_1: f16 d, m; u8 qs[16]. y = d * q + m */
void rl_dequant_q4_1(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	const uint8_t *b = src;
	for (uint64_t i = 0; i < nblocks; i++, b += 20, dst += 32) {
		const float d = f16_at(b), m = f16_at(b + 2);
		const uint8_t *qs = b + 4;
		for (int j = 0; j < 16; j++) {
			float lo = d * (float)(qs[j] & 0x0F);
			float hi = d * (float)(qs[j] >> 4);
			dst[j] = nan_first_add(lo, m);
			dst[j + 16] = nan_first_add(hi, m);
		}
	}
}

/* bit_j[j] = 1 << j: the fifth bit of Q5 element j is qh & bit_j[j]. A mask
 * loaded from a table (not a per-lane variable shift, which plain SSE2 lacks)
 * keeps the element loops vectorized. */
static const uint32_t bit_j[32] = {
	1u << 0,  1u << 1,  1u << 2,  1u << 3,	1u << 4,  1u << 5,  1u << 6,  1u << 7,
	1u << 8,  1u << 9,  1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
	1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
	1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31,
};

/* 16 if bit j of qh is set, else 0 (branch-free: a select vectorizes) */
static inline int q5_high(uint32_t qh, int j)
{
	return -(int)((qh & bit_j[j]) != 0) & 16;
}

static inline uint32_t u32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* block_q5_0: f16 d; u32 qh (bit j: the 5th bit of element j); u8 qs[16].
 * y = d * (q - 16) */
void rl_dequant_q5_0(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	const uint8_t *b = src;
	for (uint64_t i = 0; i < nblocks; i++, b += 22, dst += 32) {
		const float d = f16_at(b);
		const uint32_t qh = u32_at(b + 2);
		const uint8_t *qs = b + 6;
		for (int j = 0; j < 16; j++) {
			dst[j] = d * (float)(((qs[j] & 0x0F) | q5_high(qh, j)) - 16);
			dst[j + 16] = d * (float)(((qs[j] >> 4) | q5_high(qh, j + 16)) - 16);
		}
	}
}

/* block_q5_1: f16 d, m; u32 qh; u8 qs[16]. y = d * q + m */
void rl_dequant_q5_1(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	const uint8_t *b = src;
	for (uint64_t i = 0; i < nblocks; i++, b += 24, dst += 32) {
		const float d = f16_at(b), m = f16_at(b + 2);
		const uint32_t qh = u32_at(b + 4);
		const uint8_t *qs = b + 8;
		for (int j = 0; j < 16; j++) {
			float lo = d * (float)((qs[j] & 0x0F) | q5_high(qh, j));
			float hi = d * (float)((qs[j] >> 4) | q5_high(qh, j + 16));
			dst[j] = nan_first_add(lo, m);
			dst[j + 16] = nan_first_add(hi, m);
		}
	}
}

/* block_q2_K: u8 scales[16] (low nibble: scale, high: min, per 16 elements);
 * u8 qs[64]; f16 d, dmin. Element 128h + 32s + l is bits 2s..2s+1 of
 * qs[32h + l]. y = (d * sc) * q - dmin * m */
void rl_dequant_q2_k(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	const uint8_t *b = src;
	for (uint64_t i = 0; i < nblocks; i++, b += 84, dst += QK_K) {
		const uint8_t *sc = b, *qs = b + 16;
		const float d = f16_at(b + 80), dmin = f16_at(b + 82);
		for (int g = 0; g < 16; g++) {
			const float dl = d * (float)(sc[g] & 0x0F);
			const float ml = dmin * (float)(sc[g] >> 4);
			/* group g: elements 16g .. 16g+15 */
			const int h = g / 8, s = (g / 2) % 4, l0 = (g % 2) * 16;
			const uint8_t *q = qs + 32 * h + l0;
			float *y = dst + 16 * g;
			for (int l = 0; l < 16; l++) {
				float t = dl * (float)((q[l] >> (2 * s)) & 3);
				y[l] = t - ml;
			}
		}
	}
}

/* block_q3_K: u8 hmask[32]; u8 qs[64]; u8 scales[12] (16 6-bit scales); f16 d.
 * Element 128h + 32s + l: low 2 bits from qs[32h + l] >> 2s, and 4 subtracted
 * unless bit (4h + s) of hmask[l] is set. y = (d * (sc - 32)) * q */
void rl_dequant_q3_k(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	const uint8_t *b = src;
	for (uint64_t i = 0; i < nblocks; i++, b += 110, dst += QK_K) {
		const uint8_t *hm = b, *qs = b + 32, *sp = b + 96;
		const float d = f16_at(b + 108);
		for (int g = 0; g < 16; g++) {
			int lo = g < 8 ? sp[g] & 0x0F : sp[g - 8] >> 4;
			int hi = (sp[8 + g % 4] >> (2 * (g / 4))) & 3;
			const float dl = d * (float)((int8_t)(lo | hi << 4) - 32);
			const int h = g / 8, s = (g / 2) % 4, l0 = (g % 2) * 16;
			const int bit = 4 * h + s;
			const uint8_t *q = qs + 32 * h + l0, *m = hm + l0;
			float *y = dst + 16 * g;
			for (int l = 0; l < 16; l++) {
				int v = ((q[l] >> (2 * s)) & 3) - (((m[l] >> bit) & 1) ^ 1) * 4;
				y[l] = dl * (float)v;
			}
		}
	}
}

/* The 6-bit scales and mins of Q4_K and Q5_K (8 of each in 12 bytes). */
static inline void scale_min_k4(const uint8_t *s, uint8_t sc[8], uint8_t mn[8])
{
	for (int j = 0; j < 4; j++) {
		sc[j] = s[j] & 0x3F;
		mn[j] = s[j + 4] & 0x3F;
		sc[j + 4] = (uint8_t)((s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30));
		mn[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30));
	}
}

/* block_q4_K: f16 d, dmin; u8 scales[12]; u8 qs[128]. Sub-block k of 32: the
 * low (k even) or high (k odd) nibbles of qs[32(k/2) ..]. y = (d*sc)*q - dmin*m */
void rl_dequant_q4_k(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	const uint8_t *b = src;
	for (uint64_t i = 0; i < nblocks; i++, b += 144, dst += QK_K) {
		const float d = f16_at(b), dmin = f16_at(b + 2);
		uint8_t sc[8], mn[8];
		scale_min_k4(b + 4, sc, mn);
		const uint8_t *qs = b + 16;
		for (int k = 0; k < 8; k++) {
			const float dl = d * (float)sc[k], ml = dmin * (float)mn[k];
			const uint8_t *q = qs + 32 * (k / 2);
			const int shift = 4 * (k % 2);
			float *y = dst + 32 * k;
			for (int l = 0; l < 32; l++) {
				float t = dl * (float)((q[l] >> shift) & 0x0F);
				y[l] = t - ml;
			}
		}
	}
}

/* block_q5_K: f16 d, dmin; u8 scales[12]; u8 qh[32] (bit k: 5th bit of
 * sub-block k); u8 qs[128] as in Q4_K. y = (d*sc)*q - dmin*m */
void rl_dequant_q5_k(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	const uint8_t *b = src;
	for (uint64_t i = 0; i < nblocks; i++, b += 176, dst += QK_K) {
		const float d = f16_at(b), dmin = f16_at(b + 2);
		uint8_t sc[8], mn[8];
		scale_min_k4(b + 4, sc, mn);
		const uint8_t *qh = b + 16, *qs = b + 48;
		for (int k = 0; k < 8; k++) {
			const float dl = d * (float)sc[k], ml = dmin * (float)mn[k];
			const uint8_t *q = qs + 32 * (k / 2);
			const int shift = 4 * (k % 2);
			float *y = dst + 32 * k;
			for (int l = 0; l < 32; l++) {
				int v = ((q[l] >> shift) & 0x0F) | ((qh[l] >> k) & 1) << 4;
				float t = dl * (float)v;
				y[l] = t - ml;
			}
		}
	}
}

/* block_q6_K: u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d. Group g of 32
 * (h = g/4, r = g%4): low nibble (r < 2) or high nibble of ql[64h + 32(r%2) + l],
 * bits 2r..2r+1 of qh[32h + l] on top. y = (d * sc) * (q - 32) */
void rl_dequant_q6_k(const void *restrict src, float *restrict dst, uint64_t nblocks)
{
	const uint8_t *b = src;
	for (uint64_t i = 0; i < nblocks; i++, b += 210, dst += QK_K) {
		const uint8_t *ql = b, *qh = b + 128;
		const int8_t *sc = (const int8_t *)(b + 192);
		const float d = f16_at(b + 208);
		for (int g = 0; g < 8; g++) {
			const int h = g / 4, r = g % 4;
			const uint8_t *lo = ql + 64 * h + 32 * (r % 2), *hi = qh + 32 * h;
			const int lshift = 4 * (r / 2), hshift = 2 * r;
			const float d0 = d * (float)sc[2 * g], d1 = d * (float)sc[2 * g + 1];
			float *y = dst + 32 * g;
			for (int l = 0; l < 16; l++) {
				int v = ((lo[l] >> lshift) & 0x0F) | ((hi[l] >> hshift) & 3) << 4;
				y[l] = d0 * (float)(v - 32);
			}
			for (int l = 16; l < 32; l++) {
				int v = ((lo[l] >> lshift) & 0x0F) | ((hi[l] >> hshift) & 3) << 4;
				y[l] = d1 * (float)(v - 32);
			}
		}
	}
}

typedef void (*dequant_fn)(const void *, float *, uint64_t);

static dequant_fn dequant_for(uint32_t type)
{
	switch (type) {
	case RL_GGML_F32:
		return rl_dequant_f32;
	case RL_GGML_F16:
		return rl_dequant_f16;
	case RL_GGML_BF16:
		return rl_dequant_bf16;
	case RL_GGML_Q8_0:
		return rl_dequant_q8_0;
	case RL_GGML_Q4_0:
		return rl_dequant_q4_0;
	case RL_GGML_Q4_1:
		return rl_dequant_q4_1;
	case RL_GGML_Q5_0:
		return rl_dequant_q5_0;
	case RL_GGML_Q5_1:
		return rl_dequant_q5_1;
	case RL_GGML_Q2_K:
		return rl_dequant_q2_k;
	case RL_GGML_Q3_K:
		return rl_dequant_q3_k;
	case RL_GGML_Q4_K:
		return rl_dequant_q4_k;
	case RL_GGML_Q5_K:
		return rl_dequant_q5_k;
	case RL_GGML_Q6_K:
		return rl_dequant_q6_k;
	default:
		return NULL;
	}
}

int rl_ggml_can_dequant(uint32_t type)
{
	return dequant_for(type) != NULL;
}

void rl_ggml_dequant(uint32_t type, const void *src, float *dst, uint64_t n)
{
	dequant_fn fn = dequant_for(type);
	if (fn)
		fn(src, dst, n / types[type].block_size);
}
