/* wgemm.c — the decoding GEMM x[M, K] · W[N, K]^T with W in bf16 as stored:
 * rl_wgemm's two AVX-512 kernels (dot, outer) and its automatic choice, next
 * to cblas_sgemm on W already widened to f32 (the reference: no widening
 * counted at all), measured in the same run, at the shapes of decoding a
 * Llama-3.2-1B-shaped model (hidden 2048, MLP 8192) with M prompts in flight.
 *
 *   make bench && build/bench/wgemm [THREADS]        (default 2)
 *
 * Prints the best of several repetitions in GFLOP/s (2 M N K per call). The
 * kernels' outputs are compared with sgemm's (relative to the magnitudes) so
 * a fast wrong kernel cannot win.
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "compute/ops.h"
#include "compute/wgemm.h"
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

/* Best seconds per call of one path (path < 0: sgemm on wf). */
static double best(int path, int M, int N, int K, const float *x, const uint16_t *w,
		   const float *wf, float *out, float *scratch)
{
	double b = 1e30;
	for (int rep = 0; rep < 5; rep++) {
		double t0 = now();
		if (path < 0) {
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K,
				    wf, K, 0.0f, out, N);
		} else {
			rl_wgemm_force((rl_wgemm_path)path);
			rl_wgemm(out, N, x, K, w, RL_DT_BF16, NULL, M, N, K, scratch);
		}
		double t = now() - t0;
		if (t < b)
			b = t;
	}
	rl_wgemm_force(RL_WGEMM_AUTO);
	return b;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2;
	char note[256];
	rl_blas_setup(note, sizeof note);
	rl_blas_threads(threads);
	rl_wgemm_set_threads(threads);
	if (!rl_wgemm_fast()) {
		printf("wgemm: no AVX-512 here: only the portable path, nothing to compare\n");
		return 0;
	}
	static const int shapes[][2] = {{8192, 2048}, {2048, 8192}};
	static const int Ms[] = {1, 4, 8, 16, 24, 32, 64};
	printf("%d threads, OpenBLAS %s; GFLOP/s (best of 5)\n", threads, rl_blas_core());
	printf("%5s %5s %3s  %8s %8s %8s %8s  %s\n", "N", "K", "M", "sgemm32", "dot", "outer",
	       "auto", "auto/sgemm");
	int bad = 0;
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		int N = shapes[s][0], K = shapes[s][1];
		size_t nw = (size_t)N * K;
		uint16_t *w = malloc(nw * 2);
		float *wf = malloc(nw * 4), *x = malloc(sizeof(float) * 64 * (size_t)K),
		      *ref = malloc(sizeof(float) * 64 * (size_t)N),
		      *out = malloc(sizeof(float) * 64 * (size_t)N),
		      *scratch = malloc(sizeof(float) * rl_wgemm_scratch(K));
		if (!w || !wf || !x || !ref || !out || !scratch) {
			fprintf(stderr, "wgemm: out of memory\n");
			return 4;
		}
		for (size_t i = 0; i < nw; i++)
			wf[i] = rnd();
		rl_narrow(RL_DT_BF16, wf, w, nw);
		rl_widen(RL_DT_BF16, w, wf, nw);
		for (size_t i = 0; i < 64 * (size_t)K; i++)
			x[i] = rnd();
		for (size_t a = 0; a < sizeof Ms / sizeof Ms[0]; a++) {
			int M = Ms[a];
			double flop = 2.0 * M * N * K, r[4];
			r[0] = best(-1, M, N, K, x, w, wf, ref, scratch);
			static const rl_wgemm_path p[3] = {RL_WGEMM_DOT, RL_WGEMM_OUTER,
							   RL_WGEMM_AUTO};
			for (int i = 0; i < 3; i++) {
				r[i + 1] = best((int)p[i], M, N, K, x, w, wf, out, scratch);
				for (size_t e = 0; e < (size_t)M * N; e++)
					if (fabsf(out[e] - ref[e]) > 1e-3f * sqrtf((float)K))
						bad++;
			}
			printf("%5d %5d %3d  %8.1f %8.1f %8.1f %8.1f  %.2fx\n", N, K, M,
			       flop / r[0] / 1e9, flop / r[1] / 1e9, flop / r[2] / 1e9,
			       flop / r[3] / 1e9, r[0] / r[3]);
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
