/* attention.c — benchmark: one decoding step's attention (one query row per
 * head against a KV cache of nkv positions, rl_attention_forward with nq == 1)
 * on one thread, as rl_generate runs it per sequence: the portable loops and
 * the AVX2 kernel (attn_row.c), next to a BLAS reference measured in the same
 * run (per head, cblas_sgemv for the scores and for the weighted sum of the
 * values, softmax between: what a BLAS-built engine does).
 *
 *   make bench && build/bench/attention [NKV ...]   (default 64 256 1024)
 *
 * Shapes: Qwen2.5-1.5B (12 heads, 2 KV heads, head_dim 128) and Llama-3.2-1B
 * (32, 8, 64). Prints the best of several repetitions in GFLOP/s
 * (4 nh nkv hd per call) and microseconds per call; every kernel's output is
 * checked against rl_attention_forward_naive (double) so that a fast wrong
 * kernel cannot win.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "compute/attn_row.h"
#include "compute/ops.h"
#include "core/cpu.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static unsigned seed = 1;
static float rnd(void)
{
	seed = seed * 1664525u + 1013904223u;
	return (float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* The BLAS reference: scores by sgemv over the group's keys, softmax, the
 * weighted sum by sgemv over its values. */
static void blas_row(float *out, const float *q, const float *k, const float *v, int ldk, int nkv,
		     int nh, int nkvh, int hd, float scale, float *row)
{
	int rep = nh / nkvh;
	for (int h = 0; h < nh; h++) {
		const float *kg = k + (size_t)(h / rep) * hd, *vg = v + (size_t)(h / rep) * hd;
		cblas_sgemv(CblasRowMajor, CblasNoTrans, nkv, hd, scale, kg, ldk,
			    q + (size_t)h * hd, 1, 0.0f, row, 1);
		float mx = -INFINITY, sum = 0;
		for (int t = 0; t < nkv; t++)
			mx = row[t] > mx ? row[t] : mx;
		for (int t = 0; t < nkv; t++)
			sum += row[t] = expf(row[t] - mx);
		cblas_sgemv(CblasRowMajor, CblasTrans, nkv, hd, 1.0f / sum, vg, ldk, row, 1, 0.0f,
			    out + (size_t)h * hd, 1);
	}
}

typedef struct shape {
	const char *name;
	int nh, nkvh, hd;
} shape;

static int checked(const char *what, const float *got, const float *want, int n)
{
	double worst = 0;
	for (int i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]) / (1e-5 + 1e-5 * fabs((double)want[i]));
		worst = d > worst ? d : worst;
	}
	if (worst > 1 || worst != worst) {
		fprintf(stderr, "attention: %s differs from the double reference\n", what);
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	openblas_set_num_threads(1);
	int nkvs[16] = {64, 256, 1024}, nn = 3;
	if (argc > 1)
		for (nn = 0; nn < argc - 1 && nn < 16; nn++)
			nkvs[nn] = atoi(argv[nn + 1]);
	const shape shapes[] = {{"Qwen2.5-1.5B", 12, 2, 128}, {"Llama-3.2-1B", 32, 8, 64}};
	printf("attention: one decoding step, 1 thread, CPU %s; GFLOP/s (us per call), best of "
	       "several\n",
	       rl_cpu_describe());
	printf("%-13s %5s %16s %16s %16s\n", "shape", "nkv", "blas-sgemv", "portable", "avx2");
	int bad = 0;
	for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
		for (int ni = 0; ni < nn; ni++) {
			const shape *s = &shapes[si];
			int nkv = nkvs[ni], ldk = s->nkvh * s->hd, qd = s->nh * s->hd;
			float *q = malloc(sizeof(float) * qd),
			      *k = malloc(sizeof(float) * nkv * ldk),
			      *v = malloc(sizeof(float) * nkv * ldk),
			      *o = malloc(sizeof(float) * qd), *ref = malloc(sizeof(float) * qd),
			      *row = malloc(sizeof(float) * rl_attention_scratch(1, nkv));
			for (int i = 0; i < qd; i++)
				q[i] = 2 * rnd();
			for (int i = 0; i < nkv * ldk; i++)
				k[i] = 2 * rnd(), v[i] = rnd();
			float scale = 1.0f / sqrtf((float)s->hd);
			rl_attention_forward_naive(ref, qd, NULL, q, qd, k, v, ldk, 1, nkv, s->nh,
						   s->nkvh, s->hd, 0, scale, 0);
			double flops = 4.0 * s->nh * nkv * s->hd, best[3];
			for (int kern = 0; kern < 3; kern++) {
				best[kern] = 0;
				/* at least 0.3 s and 5 calls each: the best call counts */
				double start = now();
				for (int r = 0; r < 5 || now() - start < 0.3; r++) {
					double t0 = now();
					int rc = 0;
					if (kern == 0)
						blas_row(o, q, k, v, ldk, nkv, s->nh, s->nkvh,
							 s->hd, scale, row);
					else if (kern == 1)
						rl_attn_row_portable(o, NULL, q, k, v, ldk, nkv,
								     s->nh, s->nkvh, s->hd, 0,
								     scale, 0, row);
					else
						rc = rl_attn_row_avx2(o, NULL, q, k, v, ldk, nkv,
								      s->nh, s->nkvh, s->hd, 0,
								      scale, 0, row);
					double t = now() - t0;
					if (rc)
						break;
					if (r == 0 &&
					    !checked(kern == 0 ? "blas" : "a kernel", o, ref, qd))
						bad = 1;
					if (best[kern] == 0 || t < best[kern])
						best[kern] = t;
				}
			}
			printf("%-13s %5d", s->name, nkv);
			for (int kern = 0; kern < 3; kern++)
				if (best[kern] > 0)
					printf(" %7.2f (%6.1f)", flops / best[kern] / 1e9,
					       best[kern] * 1e6);
				else
					printf(" %16s", "-");
			printf("\n");
			free(q), free(k), free(v), free(o), free(ref), free(row);
		}
	return bad ? 3 : 0;
}
