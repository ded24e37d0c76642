/* wgemm.c — benchmark: x[M, K] · W[N, K]^T with W in bf16 as stored, every
 * rl_wgemm kernel this CPU runs and the automatic choice at both precisions,
 * next to cblas_sgemm on W already widened to f32 (no widening counted), in
 * the same run, at the shapes of Qwen2.5-1.5B's MLP (gate/up 8960 x 1536,
 * down 1536 x 8960) for M rows in flight (decoding M prompts, or a prefill
 * of M tokens).
 *
 *   make bench && build/bench/wgemm [THREADS [M ...]]   (default 2; 1 8 32 128 512)
 *
 * Prints the best of several repetitions in GFLOP/s (2 M N K per call). Each
 * kernel's output is compared with sgemm's so that a fast wrong kernel
 * cannot win (the bf16 kernels within their rounding of x: 2^-8 relative).
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compute/ops.h"
#include "compute/wgemm.h"
#include "core/cpu.h"
#include "core/dtype.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint32_t seed = 1;
static float rnd(void)
{
	seed = seed * 1664525u + 1013904223u;
	return (float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* Best seconds per call over at least 3 calls and 0.3 s (k < 0: sgemm on
 * wf; k == RL_WK_AUTO: the automatic choice at prec). */
static double best(int k, rl_precision prec, int M, int N, int K, const float *x, const uint16_t *w,
		   const float *wf, float *out, float *scratch)
{
	double b = 1e30, t_all = now();
	if (k >= 0)
		rl_wgemm_force((rl_wgemm_kernel)k);
	for (int rep = 0; rep < 3 || (now() - t_all < 0.3 && rep < 50); rep++) {
		double t0 = now();
		if (k < 0)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K,
				    wf, K, 0.0f, out, N);
		else
			rl_wgemm(out, N, x, K, w, RL_DT_BF16, NULL, M, N, K, prec, scratch);
		double t = now() - t0;
		if (t < b)
			b = t;
	}
	rl_wgemm_force(RL_WK_AUTO);
	return b;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2;
	int Ms[16] = {1, 8, 32, 128, 512}, nM = 5;
	if (argc > 2) {
		nM = 0;
		for (int i = 2; i < argc && nM < 16; i++)
			Ms[nM++] = atoi(argv[i]);
	}
	int maxM = 1;
	for (int i = 0; i < nM; i++)
		maxM = Ms[i] > maxM ? Ms[i] : maxM;
	char note[256];
	rl_blas_setup(note, sizeof note);
	rl_blas_threads(threads);
	rl_wgemm_set_threads(threads);
	/* The columns: sgemm, every kernel that runs on bf16 here, auto x 2. */
	int cols[RL_WK_COUNT + 3], nc = 0;
	cols[nc++] = -1;
	for (int k = RL_WK_PORTABLE; k < RL_WK_COUNT; k++)
		if (rl_wgemm_kernel_runs((rl_wgemm_kernel)k, RL_DT_BF16))
			cols[nc++] = k;
	cols[nc++] = 100 + RL_PREC_FP32;
	cols[nc++] = 100 + RL_PREC_BF16;
	printf("wgemm: %d threads, CPU %s, OpenBLAS %s; GFLOP/s, best of >= 3 calls\n", threads,
	       rl_cpu_describe(), rl_blas_core());
	printf("%5s %5s %4s", "N", "K", "M");
	for (int c = 0; c < nc; c++)
		printf(" %12s", cols[c] < 0	 ? "sgemm(f32)"
				: cols[c] >= 100 ? (cols[c] == 100 ? "auto-fp32" : "auto-bf16")
						 : rl_wgemm_kernel_name((rl_wgemm_kernel)cols[c]));
	printf("\n");
	static const int shapes[][2] = {{8960, 1536}, {1536, 8960}};
	int bad = 0;
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		int N = shapes[s][0], K = shapes[s][1];
		size_t nw = (size_t)N * K;
		uint16_t *w = malloc(nw * 2);
		float *wf = malloc(nw * 4), *x = malloc(sizeof(float) * (size_t)maxM * K),
		      *ref = malloc(sizeof(float) * (size_t)maxM * N),
		      *out = malloc(sizeof(float) * (size_t)maxM * N),
		      *scratch = malloc(sizeof(float) * rl_wgemm_scratch(K));
		if (!w || !wf || !x || !ref || !out || !scratch) {
			fprintf(stderr, "wgemm: out of memory\n");
			return 4;
		}
		for (size_t i = 0; i < nw; i++)
			wf[i] = rnd() * 0.05f;
		rl_narrow(RL_DT_BF16, wf, w, nw);
		rl_widen(RL_DT_BF16, w, wf, nw);
		for (size_t i = 0; i < (size_t)maxM * K; i++)
			x[i] = rnd();
		for (int a = 0; a < nM; a++) {
			int M = Ms[a];
			double flop = 2.0 * M * N * K;
			printf("%5d %5d %4d", N, K, M);
			for (int c = 0; c < nc; c++) {
				int k = cols[c] >= 100 ? RL_WK_AUTO : cols[c];
				rl_precision prec =
					cols[c] == 100 + RL_PREC_BF16 ||
							(k > 0 &&
							 rl_wgemm_kernel_bf16((rl_wgemm_kernel)k))
						? RL_PREC_BF16
						: RL_PREC_FP32;
				double t = best(k, prec, M, N, K, x, w, wf, c ? out : ref, scratch);
				printf(" %12.1f", flop / t / 1e9);
				fflush(stdout);
				if (c == 0)
					continue;
				/* |x w| sums are ~ 0.6 sqrt(K) * 0.05 here */
				float tol =
					(prec == RL_PREC_BF16 ? 1e-2f : 1e-4f) * sqrtf((float)K);
				for (size_t e = 0; e < (size_t)M * N; e++)
					if (!(fabsf(out[e] - ref[e]) <= tol))
						bad++;
			}
			printf("\n");
		}
		free(w);
		free(wf);
		free(x);
		free(ref);
		free(out);
		free(scratch);
	}
	if (bad) {
		fprintf(stderr, "wgemm: %d outputs differ from sgemm's\n", bad);
		return 1;
	}
	return 0;
}
