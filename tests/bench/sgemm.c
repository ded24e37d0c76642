/* sgemm.c — cblas_sgemm GFLOP/s (through rl_gemm) at given shapes, the peak
 * the engine benchmarks compare rl-grad's achieved rate with.
 *
 *     build/bench/sgemm [-s SECONDS] M N K TA TB [M N K TA TB ...]
 *
 * TA/TB are 0 (as stored) or 1 (transposed), row-major as in rl_gemm. Uses
 * OpenBLAS's default threads (set OPENBLAS_NUM_THREADS) after rl_blas_setup,
 * as the tools do. Prints one line per shape and "peak G" for the best. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/ops.h"
#include "core/cli.h"
#include "core/util.h"

int main(int argc, char **argv)
{
	double secs = 3;
	int i = 1;
	if (argc > 2 && strcmp(argv[1], "-s") == 0) {
		secs = atof(argv[2]);
		i = 3;
	}
	if ((argc - i) % 5 != 0 || argc == i) {
		fprintf(stderr, "usage: sgemm [-s SECONDS] M N K TA TB ...\n");
		return 2;
	}
	char note[256];
	rl_blas_setup(note, sizeof note);
	double peak = 0;
	for (; i < argc; i += 5) {
		int m = atoi(argv[i]), n = atoi(argv[i + 1]), k = atoi(argv[i + 2]);
		rl_trans ta = atoi(argv[i + 3]) ? RL_T : RL_N, tb = atoi(argv[i + 4]) ? RL_T : RL_N;
		float *a = malloc((size_t)m * k * sizeof *a),
		      *b = malloc((size_t)k * n * sizeof *b),
		      *c = malloc((size_t)m * n * sizeof *c);
		if (!a || !b || !c)
			return 4;
		for (size_t j = 0; j < (size_t)m * k; j++)
			a[j] = (float)(j % 7) * 0.01f;
		for (size_t j = 0; j < (size_t)k * n; j++)
			b[j] = (float)(j % 5) * 0.01f;
		int lda = ta == RL_N ? k : m, ldb = tb == RL_N ? n : k;
		rl_gemm(ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, n); /* warm up */
		int reps = 0;
		double t0 = rl_now(), t;
		do {
			rl_gemm(ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, n);
			reps++;
			t = rl_now() - t0;
		} while (t < secs);
		double g = 2.0 * m * n * k * reps / t / 1e9;
		printf("sgemm %d x %d x %d %s%s: %.1f GFLOP/s\n", m, n, k, ta ? "T" : "N",
		       tb ? "T" : "N", g);
		peak = g > peak ? g : peak;
		free(a), free(b), free(c);
	}
	printf("peak %.1f GFLOP/s (OpenBLAS %s)\n", peak, rl_blas_core());
	return 0;
}
