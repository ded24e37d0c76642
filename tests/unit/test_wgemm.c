/* test_wgemm.c — x · W^T with bf16/f16/f32 weights: both AVX-512 kernels
 * (dot: all 6 x 4 edge shapes; outer: 12-row and 16/32-input edges; K tails,
 * threads, unaligned weights), the automatic choice between them and the
 * portable path against the naive double-accumulating loop.
 *
 * Tolerance |got - want| <= 1e-5 * (1 + sum_k |x_k w_k|): f32 accumulation in
 * another order than the double reference differs by a few ulp of the
 * magnitudes summed, never more. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compute/wgemm.h"
#include "core/dtype.h"
#include "core/error.h"

static uint32_t seed = 12345;
static float rnd(void)
{
	seed = seed * 1664525u + 1013904223u;
	return (float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static int one(int M, int N, int K, rl_dtype dt, int with_bias, int misalign)
{
	size_t es = rl_dtype_size(dt);
	float *x = malloc(sizeof(float) * (size_t)M * (K + 3)),
	      *wf = malloc(sizeof(float) * (size_t)N * K);
	uint8_t *wraw = malloc((size_t)N * K * es + 8), *w = wraw + misalign;
	float *bias = with_bias ? malloc(sizeof(float) * N) : NULL;
	float *got = malloc(sizeof(float) * (size_t)M * (N + 1)),
	      *want = malloc(sizeof(float) * (size_t)M * (N + 1));
	float *mag = malloc(sizeof(float) * (size_t)M * N);
	float *scratch = malloc(sizeof(float) * rl_wgemm_scratch(K));
	int ldx = K + 3, ldo = N + 1;
	for (int i = 0; i < M * ldx; i++)
		x[i] = rnd();
	for (int i = 0; i < N * K; i++)
		wf[i] = rnd();
	rl_narrow(dt, wf, w, (size_t)N * K);
	rl_widen(dt, w, wf, (size_t)N * K); /* the values W really holds */
	if (bias)
		for (int i = 0; i < N; i++)
			bias[i] = rnd();
	for (int m = 0; m < M; m++)
		for (int n = 0; n < N; n++) {
			double s = 0;
			for (int k = 0; k < K; k++)
				s += fabs((double)x[m * ldx + k] * wf[(size_t)n * K + k]);
			mag[m * N + n] = (float)s;
		}
	rl_wgemm_naive(want, ldo, x, ldx, w, dt, bias, M, N, K);
	int bad = 0;
	static const rl_wgemm_path paths[4] = {RL_WGEMM_AUTO, RL_WGEMM_PORTABLE, RL_WGEMM_DOT,
					       RL_WGEMM_OUTER};
	static const char *const path_names[4] = {"auto", "portable", "dot", "outer"};
	for (int pass = 0; pass < 4; pass++) {
		rl_wgemm_force(paths[pass]);
		memset(got, 0, sizeof(float) * (size_t)M * ldo);
		rl_wgemm(got, ldo, x, ldx, w, dt, bias, M, N, K, scratch);
		for (int m = 0; m < M; m++)
			for (int n = 0; n < N; n++) {
				double d = fabs((double)got[m * ldo + n] - want[m * ldo + n]);
				if (d > 1e-5 * (1 + mag[m * N + n]) && bad++ < 3)
					fprintf(stderr,
						"%s M=%d N=%d K=%d %s: [%d,%d] got %g want %g\n",
						rl_dtype_name(dt), M, N, K, path_names[pass], m, n,
						(double)got[m * ldo + n],
						(double)want[m * ldo + n]);
			}
	}
	rl_wgemm_force(RL_WGEMM_AUTO);
	free(x);
	free(wf);
	free(wraw);
	free(bias);
	free(got);
	free(want);
	free(mag);
	free(scratch);
	return bad == 0;
}

int main(void)
{
	static const rl_dtype dts[3] = {RL_DT_BF16, RL_DT_F16, RL_DT_F32};
	/* Every edge shape of the 6 x 4 kernel, K with and without a tail. */
	for (int d = 0; d < 3; d++)
		for (int M = 1; M <= 9; M++)
			for (int N = 1; N <= 13; N += 2)
				for (int K = 1; K <= 49; K += 16)
					CHECK(one(M, N, K, dts[d], (M + N) % 2, (M + K) % 2 * 2));
	/* The outer kernel's edges: 16 and 32 inputs and either side, 12 weight
	 * rows and either side, K around its 64-column blocks. */
	static const int Ms[] = {15, 16, 17, 31, 32, 33, 48, 50};
	static const int Ns[] = {1, 11, 12, 13, 25};
	static const int Ks[] = {1, 63, 64, 65, 130};
	for (int d = 0; d < 3; d++)
		for (size_t a = 0; a < sizeof Ms / sizeof Ms[0]; a++)
			for (size_t b = 0; b < sizeof Ns / sizeof Ns[0]; b++)
				for (size_t c = 0; c < sizeof Ks / sizeof Ks[0]; c++)
					CHECK(one(Ms[a], Ns[b], Ks[c], dts[d], (a + b) % 2,
						  (a + c) % 2 * 2));
	/* Threads split the rows; large K. */
	rl_wgemm_set_threads(2);
	for (int d = 0; d < 3; d++) {
		CHECK(one(5, 301, 257, dts[d], 1, 0));
		CHECK(one(32, 200, 2048, dts[d], 0, 2));
		CHECK(one(40, 203, 1000, dts[d], 1, 1));
	}
	rl_wgemm_set_threads(3);
	CHECK(one(3, 150, 64, RL_DT_BF16, 1, 0));
	rl_wgemm_set_threads(0);
	printf("test_wgemm: AVX-512 kernel %s\n", rl_wgemm_fast() ? "used" : "not available here");
	return check_done("test_wgemm");
}
