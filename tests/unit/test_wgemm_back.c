/* test_wgemm_back.c — dx = dy · W on stored bf16 row blocks (wgemm_back.h).
 *
 * The transposition against the element-by-element definition on shapes
 * around its 8 x 8 blocks and 32 x 32 tiles (and blocks stacked at column
 * offsets); the product, with every kernel this CPU can run forced in turn
 * and the automatic choice, against a double sum over the exact products of
 * the inputs as the kernel takes them (dy rounded to bf16 by the bf16
 * kernels, as is by the fp32 ones). Bound as in test_wgemm.c:
 *     |got - want| <= (N + 4) u sum_n |dy_n w_n|,  u = 2^-24.
 * A wrong transposition (a swapped index, a block at the wrong offset) or a
 * missing rounding is off by far more.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compute/wgemm.h"
#include "compute/wgemm_back.h"
#include "core/cpu.h"
#include "core/dtype.h"
#include "core/par.h"

static uint32_t seed = 777;
static float rnd(void)
{
	seed = seed * 1664525u + 1013904223u;
	return (float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static uint16_t *rand_bf16(size_t n)
{
	uint16_t *w = malloc(n * sizeof *w);
	for (size_t i = 0; i < n; i++)
		w[i] = rl_f32_to_bf16(rnd());
	return w;
}

/* W read from a copy shifted by `shift` bytes (a file's mapping need not be
 * 2-byte aligned) */
static void test_transpose(int rows, int K, int ldd, int c0, int shift)
{
	uint16_t *w = rand_bf16((size_t)rows * K);
	unsigned char *ws = malloc((size_t)rows * K * 2 + 1);
	memcpy(ws + shift, w, (size_t)rows * K * 2);
	uint16_t *d = malloc((size_t)K * ldd * sizeof *d);
	for (size_t i = 0; i < (size_t)K * ldd; i++)
		d[i] = 0xBEEF; /* outside the block: untouched */
	rl_bf16_transpose(d, ldd, c0, ws + shift, rows, K);
	free(ws);
	int bad = 0;
	for (int k = 0; k < K; k++)
		for (int c = 0; c < ldd; c++) {
			uint16_t want =
				c >= c0 && c < c0 + rows ? w[(size_t)(c - c0) * K + k] : 0xBEEF;
			bad += d[(size_t)k * ldd + c] != want;
		}
	CHECKF(bad == 0, "transpose rows %d K %d ldd %d c0 %d: %d wrong elements", rows, K, ldd, c0,
	       bad);
	free(w);
	free(d);
}

/* nb blocks of rows[] rows, K columns, M rows of dy; every kernel */
static void test_product(int M, int K, const int *rows, int nb)
{
	int N = 0;
	for (int i = 0; i < nb; i++)
		N += rows[i];
	int ldy = N + 2, ldo = K + 1;
	uint16_t *blk[3];
	rl_wblock b[3];
	for (int i = 0; i < nb; i++) {
		blk[i] = rand_bf16((size_t)rows[i] * K);
		b[i] = (rl_wblock){blk[i], rows[i]};
	}
	float *dy = malloc((size_t)M * ldy * sizeof *dy);
	for (int i = 0; i < M * ldy; i++)
		dy[i] = rnd() * 3.0f;
	/* W stacked, as floats: Wf[n, k] */
	float *Wf = malloc((size_t)N * K * sizeof *Wf);
	for (int i = 0, n0 = 0; i < nb; n0 += rows[i], i++)
		for (int r = 0; r < rows[i]; r++)
			for (int k = 0; k < K; k++)
				Wf[(size_t)(n0 + r) * K + k] =
					rl_bf16_to_f32(blk[i][(size_t)r * K + k]);
	rl_wback s = {0};
	float *got = malloc((size_t)M * ldo * sizeof *got);
	for (int kk = RL_WK_AUTO; kk < RL_WK_COUNT; kk++) {
		rl_wgemm_kernel k = (rl_wgemm_kernel)kk;
		if (k != RL_WK_AUTO && !rl_wgemm_kernel_runs(k, RL_DT_BF16))
			continue;
		for (int i = 0; i < M * ldo; i++)
			got[i] = -7.0f;
		REQUIRE(rl_wgemm_force(k));
		CHECK(rl_wgemm_back(got, ldo, dy, ldy, b, nb, M, K, &s) == 0);
		rl_wgemm_force(RL_WK_AUTO);
		rl_wgemm_kernel used =
			k == RL_WK_AUTO ? rl_wgemm_pick(RL_PREC_BF16, RL_DT_BF16, M) : k;
		int round = rl_wgemm_kernel_bf16(used), bad = 0;
		for (int m = 0; m < M; m++) {
			for (int c = 0; c < K; c++) {
				double want = 0, mag = 0;
				for (int n = 0; n < N; n++) {
					float y = dy[(size_t)m * ldy + n];
					if (round)
						y = rl_bf16_to_f32(rl_f32_to_bf16(y));
					double p = (double)y * Wf[(size_t)n * K + c];
					want += p;
					mag += fabs(p);
				}
				double e = fabs(got[(size_t)m * ldo + c] - want);
				if (!(e <= (N + 4) * 0x1p-24 * mag) && bad++ < 3)
					fprintf(stderr,
						"M %d K %d N %d %s: [%d,%d] got %.9g want %.9g\n",
						M, K, N, rl_wgemm_kernel_name(used), m, c,
						(double)got[(size_t)m * ldo + c], want);
			}
			bad += got[(size_t)m * ldo + K] != -7.0f; /* past K */
		}
		CHECKF(bad == 0, "product M %d K %d N %d, kernel %s: %d bad outputs", M, K, N,
		       rl_wgemm_kernel_name(used), bad);
	}
	rl_wback_free(&s);
	for (int i = 0; i < nb; i++)
		free(blk[i]);
	free(dy);
	free(Wf);
	free(got);
}

int main(void)
{
	/* around the 8 x 8 blocks and 32 x 32 tiles, at column offsets */
	static const int R[] = {1, 7, 8, 9, 31, 32, 33, 70}, KK[] = {1, 5, 8, 16, 33, 65, 100};
	for (size_t i = 0; i < sizeof R / sizeof *R; i++)
		for (size_t j = 0; j < sizeof KK / sizeof *KK; j++) {
			test_transpose(R[i], KK[j], R[i], 0, 0);
			test_transpose(R[i], KK[j], R[i] + 11, 5, 1);
		}
	for (int t = 1; t <= 2; t++) { /* one thread, and tiles split between two */
		rl_par_set_threads(t);
		rl_wgemm_set_threads(t);
		test_transpose(300, 260, 301, 1, 1);
		/* one block (o, down), two (gate, up), three (q, k, v) */
		test_product(3, 40, (const int[]){24}, 1);
		test_product(37, 33, (const int[]){17, 17}, 2);
		test_product(64, 96, (const int[]){64, 16, 16}, 3);
		test_product(130, 70, (const int[]){200, 9, 9}, 3);
	}
	printf("test_wgemm_back: CPU %s\n", rl_cpu_describe());
	return check_done("test_wgemm_back");
}
