/* widen.c — bf16 -> f32 and f16 -> f32 widening throughput (rl_widen) next to
 * a plain memcpy of the same bytes, measured in the same run.
 *
 *   build/bench/widen [MiB_of_input]      (default 64: out of cache)
 *
 * For each size (32 KiB of input: in L1/L2; the given size: from memory) it
 * prints the best of several repetitions in GB/s of INPUT bytes, for memcpy of
 * those input bytes (memcpy(2n)), memcpy of output-sized bytes (memcpy(4n):
 * about the memory traffic of widening), the scalar reference loops
 * (rl_bf16_to_f32 / rl_f16_to_f32 per element) and rl_widen with each kernel
 * this CPU has (portable C, SSE2, AVX2), with the ratios to memcpy. Results are
 * checked bit for bit against the scalar references so a fast wrong kernel
 * cannot win.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dtype.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile uint32_t sink;

/* Best seconds per call over reps calls. */
#define TIME(best, reps, stmt)                                                                     \
	do {                                                                                       \
		best = 1e30;                                                                       \
		for (int r_ = 0; r_ < (reps); r_++) {                                              \
			double t0_ = now();                                                        \
			stmt;                                                                      \
			double t_ = now() - t0_;                                                   \
			if (t_ < best)                                                             \
				best = t_;                                                         \
		}                                                                                  \
	} while (0)

static void scalar_bf16(const uint16_t *s, float *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = rl_bf16_to_f32(s[i]);
}

static void scalar_f16(const uint16_t *s, float *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = rl_f16_to_f32(s[i]);
}

static void run(size_t n, int reps)
{
	uint16_t *src = malloc(n * 2);
	float *dst = malloc(n * 4), *ref = malloc(n * 4);
	uint8_t *big = malloc(n * 4);
	if (!src || !dst || !ref || !big) {
		fprintf(stderr, "out of memory\n");
		exit(4);
	}
	uint32_t x = 12345;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		src[i] = (uint16_t)x;
	}
	memset(dst, 0, n * 4);
	memset(big, 1, n * 4);
	double in = (double)n * 2, t_cpy, t_cpy4, t;
	/* inner repetitions keep small sizes above timer resolution */
	int inner = n < (1u << 20) ? (int)((1u << 24) / n) : 1;
	double g = in * inner / 1e9;
	TIME(t_cpy, reps, for (int k = 0; k < inner; k++) memcpy(dst, src, n * 2));
	TIME(t_cpy4, reps, for (int k = 0; k < inner; k++) memcpy(dst, big, n * 4));
	printf("input %.2f MiB: memcpy(2n) %.2f GB/s, memcpy(4n) %.2f GB/s\n", in / (1 << 20),
	       g / t_cpy, g / t_cpy4);
	static const char *names[] = {"best", "C", "SSE2", "AVX2"};
	int best = rl_widen_impl(0);
	for (rl_dtype dt = RL_DT_F16; dt <= RL_DT_BF16; dt++) {
		if (dt == RL_DT_BF16)
			scalar_bf16(src, ref, n);
		else
			scalar_f16(src, ref, n);
		TIME(t, reps,
		     for (int k = 0; k < inner; k++) dt == RL_DT_BF16 ? scalar_bf16(src, dst, n)
								      : scalar_f16(src, dst, n));
		printf("  %-4s scalar reference loop   %6.2f GB/s (%.2fx memcpy(2n))\n",
		       rl_dtype_name(dt), g / t, t_cpy / t);
		for (int level = RL_WIDEN_C; level <= best; level++) {
			rl_widen_impl(level);
			memset(dst, 0, n * 4);
			TIME(t, reps, for (int k = 0; k < inner; k++) rl_widen(dt, src, dst, n));
			int bad = memcmp(dst, ref, n * 4) != 0;
			printf("  %-4s rl_widen %-4s kernel    %6.2f GB/s (%.2fx memcpy(2n), %.2fx "
			       "memcpy(4n))%s\n",
			       rl_dtype_name(dt), names[level], g / t, t_cpy / t, t_cpy4 / t,
			       bad ? "  MISMATCH vs scalar" : "");
			if (bad)
				exit(1);
		}
		rl_widen_impl(0);
	}
	sink += (uint32_t)dst[n / 2];
	free(src);
	free(dst);
	free(ref);
	free(big);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
	if (mib == 0 || mib > 4096) {
		fprintf(stderr, "usage: widen [MiB_of_input 1..4096]\n");
		return 2;
	}
	printf("widen: GB/s of input bytes, best of repetitions\n");
	run(16384, 20);			   /* 32 KiB of input */
	run(mib << 19, mib > 256 ? 3 : 7); /* mib MiB of input */
	return 0;
}
