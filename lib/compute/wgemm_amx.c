/* wgemm_amx.c — rl_wgemm's AMX kernel (precision bf16, bf16 weights):
 * tdpbf16ps multiplies a 16 x 32 bf16 tile by a 32 x 16 one into 16 x 16 f32
 * sums, 8192 multiply-adds per instruction.
 *
 * The weights need no packing: a tile A of 16 weight rows x 32 columns is
 * loaded straight from the rows (stride: the row's bytes). The input, packed
 * as bf16 pairs in panels of 16 (wgemm_kern.h), is exactly the B operand's
 * layout (row q: the pairs (2q, 2q + 1) of 16 inputs), so C = A B is a 16
 * weights x 16 inputs block of out^T, transposed when stored. Per step of 32
 * columns: two A tiles (32 weight rows), two B tiles (32 inputs), four C
 * tiles: eight tile registers.
 *
 * Blocking: a block of KCB columns of MSB inputs (at most 1 MiB of B) stays
 * in L2 while every 32-row block of the thread's weights passes it, so the
 * weights are read from memory once per MSB inputs; when K exceeds KCB the C
 * tiles wait in a buffer between column blocks (each output still sums its
 * columns in order). A block of fewer than 16 rows, and the last columns
 * when K is not a multiple of 32, are copied into zero-padded tiles first:
 * a tile never reads outside the thread's rows.
 */
#include <stdlib.h>
#include <string.h>

#include "compute/wgemm_kern.h"

#ifdef WG_X86
#include <immintrin.h>

#define TGT __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl")))

#define MSB 256	 /* inputs per block */
#define KCB 2048 /* columns per block: 2048 x 256 bf16 = 1 MiB of B */

/* Tiles 0-3: C (16 x 16 f32); 4, 5: A (16 rows x 32 bf16); 6, 7: B (16
 * pair rows x 16 inputs). */
struct tilecfg {
	uint8_t palette, start_row, reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

/* The compiler does not know that tile loads and stores touch memory. */
#define BARRIER() __asm__ volatile("" ::: "memory")

static TGT void configure(void)
{
	struct tilecfg cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.palette = 1;
	for (int t = 0; t < 8; t++) {
		cfg.rows[t] = 16;
		cfg.colsb[t] = 64;
	}
	/* not _tile_loadconfig: GCC 12's tells the compiler that only the
	 * first 8 bytes are read, and the other stores may be dropped */
	__asm__ volatile("ldtilecfg %0" ::"m"(cfg));
}

/* Copies rows [o, o + rw) x columns [k, k + kl) of W into a zeroed 16 x 32
 * bf16 tile image. */
static void stage(const wg_call *c, int o, int rw, int k, int kl, uint16_t *img)
{
	memset(img, 0, 16 * 64);
	for (int r = 0; r < rw; r++)
		memcpy(img + r * 32, c->w + (size_t)(o + r) * c->row_bytes + (size_t)k * 2,
		       (size_t)kl * 2);
	BARRIER();
}

/* Stores the C tiles of the rows [o, o + 32) x inputs [m0, m0 + 32) block to
 * out (transposed, + bias), or to the partial buffer P (four 1 KiB tiles). The
 * transpose is in registers: element by element it took a fifth of the
 * kernel's time at 128 inputs. */
static TGT void store_c(const wg_call *c, int o, int rw, int m0, int two_a, int two_b, float *P,
			int final)
{
	if (!final) {
		_tile_stored(0, P, 64);
		if (two_b)
			_tile_stored(1, P + 256, 64);
		if (two_a)
			_tile_stored(2, P + 512, 64);
		if (two_a && two_b)
			_tile_stored(3, P + 768, 64);
		BARRIER();
		return;
	}
	float t[4][16][16] __attribute__((aligned(64)));
	_tile_stored(0, t[0], 64);
	if (two_b)
		_tile_stored(1, t[1], 64);
	if (two_a)
		_tile_stored(2, t[2], 64);
	if (two_a && two_b)
		_tile_stored(3, t[3], 64);
	BARRIER();
	int nm = c->M - m0 < 32 ? c->M - m0 : 32;
	for (int q = 0; q < 4; q++) { /* tile q: rows (q >> 1) * 16.., inputs (q & 1) * 16.. */
		int rb = (q >> 1) * 16, mb = (q & 1) * 16;
		int nr = rw - rb < 16 ? rw - rb : 16, nq = nm - mb < 16 ? nm - mb : 16;
		if (nr <= 0 || nq <= 0)
			continue;
		__m512i col[16];
		for (int i = 0; i < 16; i++)
			col[i] = _mm512_load_si512(t[q][i]);
		wg_transpose16(col);
		__mmask16 k = (__mmask16)((1u << nr) - 1);
		__m512 b =
			c->bias ? _mm512_maskz_loadu_ps(k, c->bias + o + rb) : _mm512_setzero_ps();
		for (int j = 0; j < nq; j++) {
			float *out = c->out + (size_t)(m0 + mb + j) * c->ldo + o + rb;
			/* without a bias, as computed (adding 0 would turn -0 into +0) */
			__m512 v = _mm512_castsi512_ps(col[j]);
			_mm512_mask_storeu_ps(out, k, c->bias ? _mm512_add_ps(v, b) : v);
		}
	}
}

/* C for rows [o, o + rw) (rw <= 32) x inputs [m0, m0 + 32) over columns
 * [kc, kc + kl), from zero (first) or P; then stored (store_c). */
static TGT void block(const wg_call *c, int o, int rw, int m0, int kc, int kl, float *P, int first,
		      int final, uint16_t *img)
{
	int two_a = rw > 16, two_b = c->M - m0 > 16;
	if (first) {
		_tile_zero(0);
		_tile_zero(1);
		_tile_zero(2);
		_tile_zero(3);
	} else {
		_tile_loadd(0, P, 64);
		_tile_loadd(1, P + 256, 64);
		_tile_loadd(2, P + 512, 64);
		_tile_loadd(3, P + 768, 64);
	}
	const uint32_t *b0 = (const uint32_t *)c->xp + (size_t)m0 * c->ldp,
		       *b1 = b0 + (size_t)c->ldp * 16;
	const uint8_t *a0 = c->w + (size_t)o * c->row_bytes, *a1 = a0 + 16 * c->row_bytes;
	long stride = (long)c->row_bytes;
	int full0 = rw >= 16, full1 = rw >= 32;
	for (int k = kc; k < kc + kl; k += 32) {
		int kw = c->K - k < 32 ? c->K - k : 32; /* < 32 only at the end of K */
		_tile_loadd(6, b0 + (size_t)k / 2 * 16, 64);
		if (two_b)
			_tile_loadd(7, b1 + (size_t)k / 2 * 16, 64);
		if (full0 && kw == 32) {
			_tile_loadd(4, a0 + (size_t)k * 2, stride);
		} else {
			stage(c, o, rw < 16 ? rw : 16, k, kw, img);
			_tile_loadd(4, img, 64);
		}
		_tile_dpbf16ps(0, 4, 6);
		if (two_b)
			_tile_dpbf16ps(1, 4, 7);
		if (two_a) {
			if (full1 && kw == 32) {
				_tile_loadd(5, a1 + (size_t)k * 2, stride);
			} else {
				stage(c, o + 16, rw - 16, k, kw, img);
				_tile_loadd(5, img, 64);
			}
			_tile_dpbf16ps(2, 5, 6);
			if (two_b)
				_tile_dpbf16ps(3, 5, 7);
		}
	}
	store_c(c, o, rw, m0, two_a, two_b, P, final);
}

static TGT int amx_rows(const wg_call *c, int n0, int n1)
{
	int kp = c->ldp * 2; /* K rounded up to 32 */
	int nkc = (kp + KCB - 1) / KCB, nob = (n1 - n0 + 31) / 32;
	uint16_t img[16 * 32] __attribute__((aligned(64)));
	float *P = NULL; /* [nob][MSB / 32][4][256]: C between column blocks */
	if (nkc > 1 && !(P = aligned_alloc(64, sizeof(float) * 1024 * (size_t)nob * (MSB / 32))))
		return -1;
	configure();
	for (int ms = 0; ms < c->M; ms += MSB) {
		int me = c->M - ms < MSB ? c->M : ms + MSB;
		for (int kc = 0; kc < kp; kc += KCB) {
			int kl = kp - kc < KCB ? kp - kc : KCB;
			int first = kc == 0, final = kc + kl == kp;
			for (int o = n0, ob = 0; o < n1; o += 32, ob++) {
				int rw = n1 - o < 32 ? n1 - o : 32;
				for (int m0 = ms; m0 < me; m0 += 32) {
					float *Pb = P ? P + ((size_t)ob * (MSB / 32) +
							     (size_t)(m0 - ms) / 32) *
									    1024
						      : NULL;
					block(c, o, rw, m0, kc, kl, Pb, first, final, img);
				}
			}
		}
	}
	_tile_release();
	free(P);
	return 0;
}

static int runs(const rl_cpu *c, rl_dtype dt)
{
	return c->amx_bf16 && dt == RL_DT_BF16;
}

const wg_kernel rl_wk_amx = {"amx", WG_PACK_BF16_PAIRS, 32, runs, amx_rows};

#endif
