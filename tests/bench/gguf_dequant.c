/* gguf_dequant.c — dequantization throughput of every type rl_ggml_dequant
 * reads, next to a memcpy of the f32 output's size, measured in the same run.
 *
 *   build/bench/gguf_dequant [M_elements]      (default 16: 64 MiB of f32 out)
 *
 * Two sizes: 256 Ki elements (1 MiB of f32: in cache, the kernels' own speed)
 * and the given size (from memory, what a model import sees).
 * Blocks hold random bytes with their f16 scales set to ordinary normal
 * values (real models have those; subnormal scales would time the CPU's
 * denormal assists instead). Prints, per type, the best of several runs in
 * MB/s of f32 output and of input, the ratio to memcpy of the output's bytes,
 * and the time a 1.5B-parameter model of that type would take on one core.
 * Times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so a shared,
 * loaded machine slows the figures less than wall time would; memory stalls
 * still count. Correctness is tests/unit/test_gguf.c's business (bit-exact vs
 * gguf-py).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dtype.h"
#include "store/gguf_quant.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile float sink;

typedef struct bench_type {
	uint32_t type;
	int nscales;
	int scale_at[2]; /* byte offsets of the f16 scale fields in a block */
} bench_type;

static const bench_type types[] = {
	{RL_GGML_F32, 0, {0}},	  {RL_GGML_F16, 0, {0}},     {RL_GGML_BF16, 0, {0}},
	{RL_GGML_Q8_0, 1, {0}},	  {RL_GGML_Q4_0, 1, {0}},    {RL_GGML_Q4_1, 2, {0, 2}},
	{RL_GGML_Q5_0, 1, {0}},	  {RL_GGML_Q5_1, 2, {0, 2}}, {RL_GGML_Q2_K, 2, {80, 82}},
	{RL_GGML_Q3_K, 1, {108}}, {RL_GGML_Q4_K, 2, {0, 2}}, {RL_GGML_Q5_K, 2, {0, 2}},
	{RL_GGML_Q6_K, 1, {208}},
};

static void run(size_t n)
{
	float *dst = malloc(n * 4);
	uint8_t *src = malloc(n * 4), *big = malloc(n * 4);
	if (!dst || !src || !big) {
		fprintf(stderr, "out of memory\n");
		exit(4);
	}
	memset(big, 1, n * 4);
	memset(dst, 0, n * 4);
	/* repeat small sizes so each timing covers at least 16 Mi elements */
	const int reps = 5, inner = n < (16u << 20) ? (int)((16u << 20) / n) : 1;
	double t_cpy = 1e30;
	for (int r = 0; r < reps; r++) {
		double t0 = now();
		for (int k = 0; k < inner; k++)
			memcpy(dst, big, n * 4);
		double t = (now() - t0) / inner;
		if (t < t_cpy)
			t_cpy = t;
	}
	double out_mb = (double)n * 4 / 1e6;
	printf("%zu elements (%.1f MB of f32), best of %d runs, one core\n", n, out_mb, reps);
	printf("  memcpy of the output's bytes: %8.0f MB/s\n", out_mb / t_cpy);
	printf("  %-5s %10s %10s %9s %14s\n", "type", "MB/s out", "MB/s in", "x memcpy",
	       "1.5B params");
	static uint32_t x = 2463534242u;
	for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
		const bench_type *b = &types[k];
		uint32_t bs = rl_ggml_block_size(b->type), ts = rl_ggml_type_size(b->type);
		size_t nblocks = n / bs, in_bytes = nblocks * ts;
		for (size_t i = 0; i < in_bytes; i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			src[i] = (uint8_t)(x >> 24);
		}
		for (size_t i = 0; i < nblocks; i++) {
			for (int s = 0; s < b->nscales; s++) {
				x ^= x << 13, x ^= x >> 17, x ^= x << 5;
				/* |scale| in [2^-10, 2^-6): the range real weights use */
				uint16_t h = rl_f32_to_f16((float)(x % 1000 + 1) * 1e-5f);
				memcpy(src + i * ts + b->scale_at[s], &h, 2);
			}
		}
		double best = 1e30;
		for (int r = 0; r < reps; r++) {
			double t0 = now();
			for (int rep = 0; rep < inner; rep++)
				rl_ggml_dequant(b->type, src, dst, n);
			double t = (now() - t0) / inner;
			if (t < best)
				best = t;
		}
		sink += dst[n / 3];
		double secs_15b = best * 1.5e9 / (double)n;
		printf("  %-5s %10.0f %10.0f %9.2f %12.2f s\n", rl_ggml_type_name(b->type),
		       out_mb / best, (double)in_bytes / 1e6 / best, t_cpy / best, secs_15b);
	}
	free(dst);
	free(src);
	free(big);
}

int main(int argc, char **argv)
{
	unsigned long m = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
	if (m == 0 || m > 1024) {
		fprintf(stderr, "usage: gguf_dequant [M_elements 1..1024]\n");
		return 2;
	}
	printf("gguf_dequant: MB/s of f32 output and of blocks read\n");
	run((size_t)256 << 10); /* a multiple of every block size */
	run((size_t)m << 20);
	return 0;
}
