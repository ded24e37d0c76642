/* wgemm_kern.h — the kernels behind rl_wgemm, one file per instruction set
 * (wgemm_avx2.c, wgemm_avx512.c, wgemm_bf16.c, wgemm_amx.c); wgemm.c packs
 * the input, splits the rows of W among threads and calls them. Internal to
 * lib/compute/wgemm*.c.
 */
#ifndef RL_WGEMM_KERN_H
#define RL_WGEMM_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "core/cpu.h"
#include "core/dtype.h"

/* How a kernel wants its input. The transposed forms are cut into panels of
 * 16 inputs (zeros past M), each panel contiguous over K, so a kernel's
 * inputs for one k are 64 consecutive bytes and a panel streams in order. */
typedef enum wg_pack {
	WG_PACK_NONE,	   /* x as given (f32 rows at ldx) */
	WG_PACK_F32_T,	   /* f32: x[m, k] at xp[(m / 16) * ldp * 16 + k * 16 + m % 16],
				ldp = K (packed with AVX2, as the kernels need) */
	WG_PACK_BF16_ROWS, /* bf16 rows: x[m, k] at xp[m * ldp + k], ldp = K rounded up
			      to 32, zeros past K */
	WG_PACK_BF16_PAIRS /* bf16 pairs along K (VNNI): the 32-bit word
			      xp[(m / 16) * ldp * 16 + q * 16 + m % 16] holds x[m, 2q]
			      (low half) and x[m, 2q + 1]; ldp = K rounded up to 32,
			      halved; zeros past M and K. Packed with AVX-512 only:
			      the kernels that take it need it anyway */
} wg_pack;

/* One call's operands as the kernels see them. */
typedef struct wg_call {
	float *out;
	int ldo;
	const float *x; /* f32 input rows at ldx */
	int ldx;
	const void *xp; /* the packed input (wg_pack), NULL for WG_PACK_NONE */
	int ldp;
	const uint8_t *w; /* row n at w + n * row_bytes */
	rl_dtype dt;
	size_t row_bytes;
	const float *bias;
	int M, K;
} wg_call;

typedef struct wg_kernel {
	const char *name;
	wg_pack pack;
	int block;				   /* rows of W a thread's share is a multiple of */
	int (*runs)(const rl_cpu *c, rl_dtype dt); /* this CPU, these weights */
	/* out[m, n] for every m < M and n0 <= n < n1 (n0 a multiple of block).
	 * Returns 0, or -1 when out of memory (nothing needs undoing: the caller
	 * computes the same rows with the portable path). */
	int (*rows)(const wg_call *c, int n0, int n1);
} wg_kernel;

#if defined(__x86_64__) && defined(__GNUC__)
#define WG_X86 1
#include <immintrin.h>

/* Asks for rows [o, o + rw) of W, columns [k, k + kl), to be brought into
 * the cache ahead of their widening into a kernel's buffer. A block's compute
 * (its widened weights against every input) lasts long enough to hide the
 * memory's latency, which the hardware prefetcher does not: it follows few
 * streams, and a block reads a short run of each of several rows (on
 * Qwen2.5-1.5B at batch 32, a Zen 4 held to AVX2 spent a fifth of its decoding
 * time waiting in the widening). */
static inline void wg_prefetch_block(const wg_call *c, int o, int rw, int k, int kl)
{
	size_t es = rl_dtype_size(c->dt), len = (size_t)kl * es;
	for (int r = 0; r < rw; r++) {
		const char *p =
			(const char *)c->w + (size_t)(o + r) * c->row_bytes + (size_t)k * es;
		for (size_t b = 0; b < len; b += 64)
			_mm_prefetch(p + b, _MM_HINT_T0);
		_mm_prefetch(p + len - 1, _MM_HINT_T0);
	}
}

/* In-register transpose of 16 x 16 32-bit words (r[i] row i in, column i
 * out): the bf16 kernel's packing and the AMX kernel's transposed store. */
static inline __attribute__((always_inline, target("avx512f"))) void wg_transpose16(__m512i r[16])
{
	__m512i t[16];
	for (int i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
	}
	for (int i = 0; i < 16; i += 4) {
		r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
		r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
		r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
		r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
	}
	for (int i = 0; i < 16; i += 8)
		for (int j = 0; j < 4; j++) {
			t[i + j] = _mm512_shuffle_i32x4(r[i + j], r[i + j + 4], 0x88);
			t[i + j + 4] = _mm512_shuffle_i32x4(r[i + j], r[i + j + 4], 0xdd);
		}
	for (int j = 0; j < 8; j++) {
		r[j] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88);
		r[j + 8] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd);
	}
}

/* WG_PACK_F32_T (avx2 CPUs), columns [k0, k1) of every panel. */
void rl_wk_pack_f32_t_avx2(const wg_call *c, float *xp, int k0, int k1);
/* WG_PACK_BF16_PAIRS (avx512 CPUs), the blocks of 16 pairs
 * [b0, b1) of every panel (xp 64-byte aligned). */
void rl_wk_pack_pairs_avx512(const wg_call *c, uint32_t *xp, int b0, int b1);
extern const wg_kernel rl_wk_avx2_dot, rl_wk_avx2_outer, rl_wk_avx512_dot, rl_wk_avx512_outer,
	rl_wk_bf16_dot, rl_wk_bf16_outer, rl_wk_amx;
#endif

#endif
