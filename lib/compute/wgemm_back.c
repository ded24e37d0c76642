/* wgemm_back.c — dx = dy · W on stored bf16 weights (see wgemm_back.h). */
#include <stdlib.h>
#include <string.h>

#include "compute/wgemm.h"
#include "compute/wgemm_back.h"
#include "core/error.h"
#include "core/par.h"
#include "core/util.h"

/* Tiles of 32 x 32: a tile's 32 source rows and 32 destination rows each
 * stay in L1 while it is copied; inside, 8 x 8 blocks transposed in SSE2
 * registers (every x86-64) where the block is whole. */
enum { TILE = 32 };

typedef struct tr_job {
	uint16_t *dst;
	int ldd, c0;
	const unsigned char *w; /* any alignment: read by memcpy or loadu */
	int rows, K;
} tr_job;

static void tr_scalar(const tr_job *j, int r0, int r1, int k0, int k1)
{
	for (int k = k0; k < k1; k++) {
		uint16_t *d = j->dst + (size_t)k * j->ldd + j->c0;
		for (int r = r0; r < r1; r++)
			memcpy(&d[r], j->w + 2 * ((size_t)r * j->K + k), 2);
	}
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <emmintrin.h>

/* rows r .. r+7, columns k .. k+7 */
static void tr_8x8(const tr_job *j, int r, int k)
{
	const unsigned char *s = j->w + 2 * ((size_t)r * j->K + k);
	size_t K = 2 * (size_t)j->K; /* bytes a row */
	__m128i a0 = _mm_loadu_si128((const __m128i *)(const void *)(s));
	__m128i a1 = _mm_loadu_si128((const __m128i *)(const void *)(s + K));
	__m128i a2 = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * K));
	__m128i a3 = _mm_loadu_si128((const __m128i *)(const void *)(s + 3 * K));
	__m128i a4 = _mm_loadu_si128((const __m128i *)(const void *)(s + 4 * K));
	__m128i a5 = _mm_loadu_si128((const __m128i *)(const void *)(s + 5 * K));
	__m128i a6 = _mm_loadu_si128((const __m128i *)(const void *)(s + 6 * K));
	__m128i a7 = _mm_loadu_si128((const __m128i *)(const void *)(s + 7 * K));
	/* 16-bit, then 32-bit, then 64-bit interleaves */
	__m128i b0 = _mm_unpacklo_epi16(a0, a1), b1 = _mm_unpackhi_epi16(a0, a1);
	__m128i b2 = _mm_unpacklo_epi16(a2, a3), b3 = _mm_unpackhi_epi16(a2, a3);
	__m128i b4 = _mm_unpacklo_epi16(a4, a5), b5 = _mm_unpackhi_epi16(a4, a5);
	__m128i b6 = _mm_unpacklo_epi16(a6, a7), b7 = _mm_unpackhi_epi16(a6, a7);
	__m128i c0 = _mm_unpacklo_epi32(b0, b2), c1 = _mm_unpackhi_epi32(b0, b2);
	__m128i c2 = _mm_unpacklo_epi32(b1, b3), c3 = _mm_unpackhi_epi32(b1, b3);
	__m128i c4 = _mm_unpacklo_epi32(b4, b6), c5 = _mm_unpackhi_epi32(b4, b6);
	__m128i c6 = _mm_unpacklo_epi32(b5, b7), c7 = _mm_unpackhi_epi32(b5, b7);
	uint16_t *d = j->dst + (size_t)k * j->ldd + j->c0 + r;
	size_t L = (size_t)j->ldd;
	_mm_storeu_si128((__m128i *)(void *)(d), _mm_unpacklo_epi64(c0, c4));
	_mm_storeu_si128((__m128i *)(void *)(d + L), _mm_unpackhi_epi64(c0, c4));
	_mm_storeu_si128((__m128i *)(void *)(d + 2 * L), _mm_unpacklo_epi64(c1, c5));
	_mm_storeu_si128((__m128i *)(void *)(d + 3 * L), _mm_unpackhi_epi64(c1, c5));
	_mm_storeu_si128((__m128i *)(void *)(d + 4 * L), _mm_unpacklo_epi64(c2, c6));
	_mm_storeu_si128((__m128i *)(void *)(d + 5 * L), _mm_unpackhi_epi64(c2, c6));
	_mm_storeu_si128((__m128i *)(void *)(d + 6 * L), _mm_unpacklo_epi64(c3, c7));
	_mm_storeu_si128((__m128i *)(void *)(d + 7 * L), _mm_unpackhi_epi64(c3, c7));
}

static void tr_tile(const tr_job *j, int r0, int r1, int k0, int k1)
{
	int r8 = r0 + (r1 - r0) / 8 * 8, k8 = k0 + (k1 - k0) / 8 * 8;
	for (int r = r0; r < r8; r += 8)
		for (int k = k0; k < k8; k += 8)
			tr_8x8(j, r, k);
	tr_scalar(j, r0, r8, k8, k1);
	tr_scalar(j, r8, r1, k0, k1);
}
#else
static void tr_tile(const tr_job *j, int r0, int r1, int k0, int k1)
{
	tr_scalar(j, r0, r1, k0, k1);
}
#endif

/* Destination rows (source columns) of tiles [i0, i1) */
static void tr_range(void *ctx, size_t i0, size_t i1)
{
	const tr_job *j = ctx;
	int k0 = (int)i0 * TILE, k1 = (int)i1 * TILE < j->K ? (int)i1 * TILE : j->K;
	for (int r0 = 0; r0 < j->rows; r0 += TILE) {
		int r1 = r0 + TILE < j->rows ? r0 + TILE : j->rows;
		for (int kb = k0; kb < k1; kb += TILE)
			tr_tile(j, r0, r1, kb, kb + TILE < k1 ? kb + TILE : k1);
	}
}

void rl_bf16_transpose(uint16_t *dst, int ldd, int c0, const void *w, int rows, int K)
{
	tr_job j = {dst, ldd, c0, w, rows, K};
	size_t tiles = ((size_t)K + TILE - 1) / TILE;
	rl_par_for(tiles, 4, tr_range, &j);
}

int rl_wgemm_back(float *out, int ldo, const float *dy, int ldy, const rl_wblock *b, int nb, int M,
		  int K, rl_wback *s)
{
	int N = 0;
	for (int i = 0; i < nb; i++)
		N += b[i].rows;
	size_t need = (size_t)N * (size_t)K;
	if (need > s->cap) {
		free(s->wt);
		s->wt = rl_malloc_array(need, sizeof *s->wt);
		s->cap = s->wt ? need : 0;
		if (!s->wt)
			return RL_ESYS;
	}
	for (int i = 0, c0 = 0; i < nb; c0 += b[i].rows, i++)
		rl_bf16_transpose(s->wt, N, c0, b[i].w, b[i].rows, K);
	rl_wgemm(out, ldo, dy, ldy, s->wt, RL_DT_BF16, NULL, M, K, N, RL_PREC_BF16, NULL);
	return RL_OK;
}

void rl_wback_free(rl_wback *s)
{
	free(s->wt);
	memset(s, 0, sizeof *s);
}
