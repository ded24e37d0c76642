/* peak.c — the arithmetic peak of this machine's cores, the ceiling the
 * generation and GEMM benchmarks compare their rates with: THREADS threads at
 * once, each running independent multiply-adds from registers only (no
 * memory), for every instruction realign's kernels use that the CPU runs:
 * AVX2 FMA (8 f32 lanes), AVX-512 FMA (16), vdpbf16ps (16 lanes x 2
 * products), AMX tdpbf16ps (16 x 16 x 32 products per instruction).
 *
 *   make bench && build/bench/peak [THREADS]          (default 2)
 *
 * Prints per instruction the measured GFLOP/s (wall clock, all threads; and
 * per second of one thread's CPU time, which a loaded machine does not
 * lower) and the formula it matches: the clock (measured: a chain of
 * dependent adds, one a cycle; /proc/cpuinfo's figure is printed beside) x
 * threads x flop per instruction x instructions per cycle (the per-CPU-second
 * rate rounded to a half: the core's FMA ports; AMX: one tdpbf16ps per 16
 * cycles), and last a line "peak fma G" with the widest f32 FMA's formula
 * value, the FMA peak. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cpu.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define REPS 4000000L

/* Each returns the flop done; 12 independent chains hide the latency. */
__attribute__((target("avx2,fma"))) static double fma256(void)
{
	__m256 a[12], b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-7f);
	for (int i = 0; i < 12; i++)
		a[i] = _mm256_set1_ps((float)i);
	for (long r = 0; r < REPS; r++)
#pragma GCC unroll 12
		for (int i = 0; i < 12; i++)
			a[i] = _mm256_fmadd_ps(a[i], b, c);
	float s = 0, t[8];
	for (int i = 0; i < 12; i++) {
		_mm256_storeu_ps(t, a[i]);
		s += t[0];
	}
	return s == 12345.0f ? 0 : REPS * 12.0 * 16;
}

__attribute__((target("avx512f"))) static double fma512(void)
{
	__m512 a[12], b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-7f);
	for (int i = 0; i < 12; i++)
		a[i] = _mm512_set1_ps((float)i);
	for (long r = 0; r < REPS; r++)
#pragma GCC unroll 12
		for (int i = 0; i < 12; i++)
			a[i] = _mm512_fmadd_ps(a[i], b, c);
	float s = 0;
	for (int i = 0; i < 12; i++)
		s += _mm512_reduce_add_ps(a[i]);
	return s == 12345.0f ? 0 : REPS * 12.0 * 32;
}

__attribute__((target("avx512f,avx512bf16"))) static double dpbf16(void)
{
	__m512 a[24]; /* its latency is longer than an FMA's */
	__m512bh b = (__m512bh)_mm512_set1_epi32(0x3f803f80), c = b;
	for (int i = 0; i < 24; i++)
		a[i] = _mm512_set1_ps((float)i);
	for (long r = 0; r < REPS / 2; r++)
#pragma GCC unroll 24
		for (int i = 0; i < 24; i++)
			a[i] = _mm512_dpbf16_ps(a[i], b, c);
	float s = 0;
	for (int i = 0; i < 24; i++)
		s += _mm512_reduce_add_ps(a[i]);
	return s == 12345.0f ? 0 : REPS / 2 * 24.0 * 64;
}

struct tilecfg {
	uint8_t palette, start_row, reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

__attribute__((target("amx-tile,amx-bf16"))) static double amx(void)
{
	struct tilecfg cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.palette = 1;
	for (int t = 0; t < 8; t++)
		cfg.rows[t] = 16, cfg.colsb[t] = 64;
	/* not _tile_loadconfig: GCC 12's tells the compiler that only the
	 * first 8 bytes are read, and the other stores may be dropped */
	__asm__ volatile("ldtilecfg %0" ::"m"(cfg));
	static const uint16_t ones[16 * 32] __attribute__((aligned(64))) = {0};
	_tile_loadd(4, ones, 64);
	_tile_loadd(5, ones, 64);
	_tile_loadd(6, ones, 64);
	_tile_loadd(7, ones, 64);
	_tile_zero(0);
	_tile_zero(1);
	_tile_zero(2);
	_tile_zero(3);
	long n = REPS / 64;
	for (long r = 0; r < n; r++) {
		_tile_dpbf16ps(0, 4, 6);
		_tile_dpbf16ps(1, 4, 7);
		_tile_dpbf16ps(2, 5, 6);
		_tile_dpbf16ps(3, 5, 7);
	}
	_tile_release();
	return n * 4.0 * 16 * 16 * 32 * 2;
}

struct run {
	double (*fn)(void);
	double flop, cpu;
};

static void *thread(void *p)
{
	struct run *r = p;
	struct timespec a, b;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	r->flop = r->fn();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	r->cpu = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
	return NULL;
}

/* GFLOP/s of fn on n threads at once (wall clock), and per second of CPU
 * time of one thread (what a core gives when the machine is shared). */
static double measure(double (*fn)(void), int n, double *per_cpu)
{
	pthread_t th[64];
	struct run r[64];
	double t0 = now();
	for (int i = 0; i < n; i++) {
		r[i].fn = fn;
		pthread_create(&th[i], NULL, thread, &r[i]);
	}
	double flop = 0, cpu = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		flop += r[i].flop;
		cpu += r[i].cpu;
	}
	*per_cpu = flop / cpu / 1e9;
	return flop / (now() - t0) / 1e9;
}

/* The clock the cores run at (turbo included, which /proc/cpuinfo's figure
 * is not on most VMs): a chain of dependent adds retires one a cycle. */
static double measured_ghz(void)
{
	struct timespec a, b;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	uint64_t x = 1;
	long n = 400000000;
	/* reg-reg: an add of an immediate may be folded at rename (Golden Cove) */
	for (long i = 0; i < n / 8; i++)
		__asm__ volatile("add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\t"
				 "add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0"
				 : "+r"(x));
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	double t = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
	return x == 12345 ? 0 : (double)n / t / 1e9;
}

static double mhz(void)
{
	FILE *fp = fopen("/proc/cpuinfo", "r");
	char line[256];
	double f = 0;
	while (fp && fgets(line, sizeof line, fp))
		if (sscanf(line, "cpu MHz : %lf", &f) == 1)
			break;
	if (fp)
		fclose(fp);
	return f;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2;
	if (n < 1 || n > 64)
		n = 2;
	const rl_cpu *c = rl_cpu_get();
	double ghz = measured_ghz(), fma_peak = 0;
	printf("peak: %d threads, %.2f GHz measured (/proc/cpuinfo says %.2f), CPU %s\n", n, ghz,
	       mhz() / 1000, rl_cpu_describe());
	static const struct {
		const char *name;
		double per_instr; /* flop */
		int need;	  /* 0 avx2, 1 avx512, 2 avx512_bf16, 3 amx */
		int fma;	  /* an f32 FMA */
		double (*fn)(void);
	} t[] = {{"AVX2 FMA", 16, 0, 1, fma256},
		 {"AVX-512 FMA", 32, 1, 1, fma512},
		 {"vdpbf16ps", 64, 2, 0, dpbf16},
		 {"AMX tdpbf16ps", 16384, 3, 0, amx}};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		int ok = t[i].need == 0	  ? c->avx2
			 : t[i].need == 1 ? c->avx512
			 : t[i].need == 2 ? c->avx512_bf16
					  : c->amx_bf16;
		if (!ok) {
			printf("%-14s not on this CPU\n", t[i].name);
			continue;
		}
		double per_cpu, g = measure(t[i].fn, n, &per_cpu);
		double ipc = ghz > 0 ? per_cpu / (ghz * t[i].per_instr) : 0;
		double units = (double)(int)(ipc * 2 + 0.5) / 2; /* halves: AMX is 1/16 */
		if (t[i].need == 3)
			units = 1.0 / 16;
		double formula = ghz * n * t[i].per_instr * units;
		printf("%-14s %8.1f GFLOP/s measured (%.1f a CPU second); %.2f GHz x %d x %.0f "
		       "flop "
		       "x %g/cycle = %.1f\n",
		       t[i].name, g, per_cpu, ghz, n, t[i].per_instr, units, formula);
		if (t[i].fma && formula > fma_peak)
			fma_peak = formula;
	}
	printf("peak fma %.1f GFLOP/s\n", fma_peak);
	return 0;
}

#else
int main(void)
{
	printf("peak: not an x86-64 CPU\npeak fma 0 GFLOP/s\n");
	return 0;
}
#endif
