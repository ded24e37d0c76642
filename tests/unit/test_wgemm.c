/* test_wgemm.c — x · W^T with bf16/f16/f32 weights: every kernel this CPU
 * can run, forced one at a time, and the automatic choice at both
 * precisions, against the naive double-accumulating loops, on the edge
 * shapes of every kernel (M, N, K around their tiles and blocks, M = 1, K
 * tails, unaligned weights, threads). A kernel the CPU cannot run is skipped
 * with a note (the suite runs on AVX2-only machines too).
 *
 * Bound, independent of the order of the sums: each output is a sum of K
 * products, exact in f32 for bf16 inputs and rounded once per FMA for f32
 * ones; f32 summation of K terms in any order errs by at most about
 * K u sum_k |x_k w_k| (u = 2^-24), and the bias, the reference's final
 * rounding and the kernel's add a few u more:
 *     |got - want| <= (K + 4) u (sum_k |x_k w_k| + |bias|).
 * For the bf16 kernels the reference rounds x to bf16 first (the same
 * rounding the kernels do), so the bound is the same; a kernel that did not
 * round, or missed a column, is off by far more at these K.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compute/wgemm.h"
#include "core/cpu.h"
#include "core/dtype.h"
#include "core/error.h"

static uint32_t seed = 12345;
static float rnd(void)
{
	seed = seed * 1664525u + 1013904223u;
	return (float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static int ran[RL_WK_COUNT]; /* shapes each kernel was checked on */

struct ref {
	float *want, *mag; /* [M, ldo], [M, N] */
};

static void reference(struct ref *r, const float *x, int ldx, const void *w, rl_dtype dt,
		      const float *bias, int M, int N, int K, int ldo, int round)
{
	r->want = malloc(sizeof(float) * (size_t)M * ldo);
	r->mag = malloc(sizeof(float) * (size_t)M * N);
	if (round)
		rl_wgemm_naive_bf16(r->want, ldo, x, ldx, w, dt, bias, M, N, K);
	else
		rl_wgemm_naive(r->want, ldo, x, ldx, w, dt, bias, M, N, K);
	float *wf = malloc(sizeof(float) * (size_t)N * K);
	rl_widen(dt, w, wf, (size_t)N * K);
	for (int m = 0; m < M; m++)
		for (int n = 0; n < N; n++) {
			double s = bias ? fabs(bias[n]) : 0;
			for (int k = 0; k < K; k++) {
				float xv = x[m * ldx + k];
				if (round)
					xv = rl_bf16_to_f32(rl_f32_to_bf16(xv));
				s += fabs((double)xv * wf[(size_t)n * K + k]);
			}
			r->mag[m * N + n] = (float)s;
		}
	free(wf);
}

/* Runs kernel k (RL_WK_AUTO: the automatic choice) at precision prec and
 * checks every output; returns the number of bad outputs. */
static int check_kernel(rl_wgemm_kernel k, rl_precision prec, const float *x, int ldx,
			const void *w, rl_dtype dt, const float *bias, int M, int N, int K, int ldo,
			const struct ref *refs, float *scratch)
{
	float *got = malloc(sizeof(float) * (size_t)M * ldo);
	for (int i = 0; i < M * ldo; i++)
		got[i] = -7.0f; /* the padding column must stay untouched */
	REQUIRE(rl_wgemm_force(k));
	rl_wgemm(got, ldo, x, ldx, w, dt, bias, M, N, K, prec, scratch);
	rl_wgemm_force(RL_WK_AUTO);
	rl_wgemm_kernel used = k == RL_WK_AUTO ? rl_wgemm_pick(prec, dt, M) : k;
	const struct ref *r = &refs[rl_wgemm_kernel_bf16(used)];
	int bad = 0;
	for (int m = 0; m < M; m++) {
		for (int n = 0; n < N; n++) {
			double d = fabs((double)got[m * ldo + n] - r->want[m * ldo + n]);
			double bound = (K + 4) * 0x1p-24 * r->mag[m * N + n];
			if (!(d <= bound) && bad++ < 3)
				fprintf(stderr,
					"%s M=%d N=%d K=%d %s (%s): [%d,%d] got %.9g want %.9g "
					"(bound %.3g)\n",
					rl_dtype_name(dt), M, N, K, rl_wgemm_kernel_name(k),
					rl_wgemm_kernel_name(used), m, n, (double)got[m * ldo + n],
					(double)r->want[m * ldo + n], bound);
		}
		for (int n = N; n < ldo; n++)
			if (got[m * ldo + n] != -7.0f && bad++ < 3)
				fprintf(stderr, "%s M=%d N=%d K=%d %s: wrote past N\n",
					rl_dtype_name(dt), M, N, K, rl_wgemm_kernel_name(k));
	}
	free(got);
	if (k != RL_WK_AUTO)
		ran[k]++;
	return bad;
}

/* Every kernel that runs here on dt, and the automatic choice at both
 * precisions, on one shape. misalign: bytes W is shifted from an aligned
 * address. */
static int one(int M, int N, int K, rl_dtype dt, int with_bias, int misalign)
{
	size_t es = rl_dtype_size(dt);
	int ldx = K + 3, ldo = N + 1;
	float *x = malloc(sizeof(float) * (size_t)M * ldx),
	      *wf = malloc(sizeof(float) * (size_t)N * K);
	uint8_t *wraw = malloc((size_t)N * K * es + 8), *w = wraw + misalign;
	float *bias = with_bias ? malloc(sizeof(float) * N) : NULL;
	float *scratch = malloc(sizeof(float) * rl_wgemm_scratch(K));
	for (int i = 0; i < M * ldx; i++)
		x[i] = rnd();
	for (int i = 0; i < N * K; i++)
		wf[i] = rnd();
	rl_narrow(dt, wf, w, (size_t)N * K);
	if (bias)
		for (int i = 0; i < N; i++)
			bias[i] = rnd();
	struct ref refs[2];
	reference(&refs[0], x, ldx, w, dt, bias, M, N, K, ldo, 0);
	reference(&refs[1], x, ldx, w, dt, bias, M, N, K, ldo, 1);
	int bad = 0;
	for (int k = RL_WK_PORTABLE; k < RL_WK_COUNT; k++)
		if (rl_wgemm_kernel_runs((rl_wgemm_kernel)k, dt))
			bad += check_kernel((rl_wgemm_kernel)k,
					    rl_wgemm_kernel_bf16((rl_wgemm_kernel)k) ? RL_PREC_BF16
										     : RL_PREC_FP32,
					    x, ldx, w, dt, bias, M, N, K, ldo, refs, scratch);
	bad += check_kernel(RL_WK_AUTO, RL_PREC_FP32, x, ldx, w, dt, bias, M, N, K, ldo, refs,
			    scratch);
	bad += check_kernel(RL_WK_AUTO, RL_PREC_BF16, x, ldx, w, dt, bias, M, N, K, ldo, refs,
			    scratch);
	for (int i = 0; i < 2; i++) {
		free(refs[i].want);
		free(refs[i].mag);
	}
	free(x);
	free(wf);
	free(wraw);
	free(bias);
	free(scratch);
	return bad == 0;
}

static const rl_dtype dts[3] = {RL_DT_BF16, RL_DT_F16, RL_DT_F32};

static void shapes(const int *Ms, size_t nM, const int *Ns, size_t nN, const int *Ks, size_t nK)
{
	for (int d = 0; d < 3; d++)
		for (size_t a = 0; a < nM; a++)
			for (size_t b = 0; b < nN; b++)
				for (size_t c = 0; c < nK; c++)
					CHECK(one(Ms[a], Ns[b], Ks[c], dts[d], (a + b) % 2,
						  (int)((a + c + d) % 3)));
}

#define SHAPES(Ms, Ns, Ks)                                                                         \
	shapes(Ms, sizeof Ms / sizeof Ms[0], Ns, sizeof Ns / sizeof Ns[0], Ks,                     \
	       sizeof Ks / sizeof Ks[0])

/* The automatic choice follows the precision and the dtype. */
static void test_pick(void)
{
	const rl_cpu *c = rl_cpu_get();
	for (int M = 1; M <= 600; M += 7) {
		for (int d = 0; d < 3; d++) {
			rl_wgemm_kernel k = rl_wgemm_pick(RL_PREC_FP32, dts[d], M);
			CHECKF(!rl_wgemm_kernel_bf16(k), "fp32 picked %s", rl_wgemm_kernel_name(k));
			CHECK(rl_wgemm_kernel_runs(k, dts[d]));
			k = rl_wgemm_pick(RL_PREC_BF16, dts[d], M);
			CHECK(rl_wgemm_kernel_runs(k, dts[d]));
			if (dts[d] != RL_DT_BF16)
				CHECKF(!rl_wgemm_kernel_bf16(k), "bf16 on %s weights picked %s",
				       rl_dtype_name(dts[d]), rl_wgemm_kernel_name(k));
			else if (c->avx512_bf16)
				CHECKF(rl_wgemm_kernel_bf16(k), "bf16 picked %s",
				       rl_wgemm_kernel_name(k));
		}
		if (c->avx2 && !c->avx512)
			CHECK(rl_wgemm_pick(RL_PREC_FP32, RL_DT_BF16, M) ==
			      (M >= 16 ? RL_WK_AVX2_OUTER : RL_WK_AVX2_DOT));
	}
	char d[256];
	rl_wgemm_describe(RL_PREC_BF16, RL_DT_BF16, d, sizeof d);
	CHECK(strstr(d, rl_wgemm_kernel_name(rl_wgemm_pick(RL_PREC_BF16, RL_DT_BF16, 1))) == d);
	printf("test_wgemm: this CPU: %s; bf16 weights at fp32: ", rl_cpu_describe());
	rl_wgemm_describe(RL_PREC_FP32, RL_DT_BF16, d, sizeof d);
	printf("%s; at bf16: ", d);
	rl_wgemm_describe(RL_PREC_BF16, RL_DT_BF16, d, sizeof d);
	printf("%s\n", d);
	CHECK(rl_precision_parse("bf16", &(rl_precision){0}) == 0);
	rl_precision p = RL_PREC_BF16;
	CHECK(rl_precision_parse("fp32", &p) == 0 && p == RL_PREC_FP32);
	CHECK(rl_precision_parse("f32", &p) == -1);
}

/* Row invariance (wgemm.h): every kernel, forced, gives each output row the
 * same bits whether its input row comes alone or among others, at any
 * position; and in row-invariant mode the automatic choice is one kernel for
 * every row count (the portable path then one row per sgemm). */
static void test_row_invariant(void)
{
	enum { M = 37, N = 45, K = 300 };
	float *x = malloc(sizeof(float) * M * K), *a = malloc(sizeof(float) * M * N),
	      *b = malloc(sizeof(float) * M * N);
	uint16_t *w = malloc(sizeof(uint16_t) * N * K);
	REQUIRE(x && a && b && w);
	for (int i = 0; i < M * K; i++)
		x[i] = rnd();
	for (int i = 0; i < N * K; i++)
		w[i] = rl_f32_to_bf16(rnd());
	for (int k = RL_WK_AUTO; k < RL_WK_COUNT; k++) {
		int invariant_mode = k == RL_WK_AUTO || k == RL_WK_PORTABLE;
		if (k != RL_WK_AUTO &&
		    (!rl_wgemm_kernel_runs(k, RL_DT_BF16) || !rl_wgemm_force((rl_wgemm_kernel)k)))
			continue;
		rl_wgemm_set_row_invariant(invariant_mode);
		for (int prec = RL_PREC_FP32; prec <= RL_PREC_BF16; prec++) {
			rl_wgemm(a, N, x, K, w, RL_DT_BF16, NULL, M, N, K, prec, NULL);
			/* the same rows in slices of 1 to 9 */
			for (int m0 = 0, len = 1; m0 < M; m0 += len, len = len % 9 + 1) {
				int l = m0 + len > M ? M - m0 : len;
				rl_wgemm(b + (size_t)m0 * N, N, x + (size_t)m0 * K, K, w,
					 RL_DT_BF16, NULL, l, N, K, prec, NULL);
			}
			CHECKF(memcmp(a, b, sizeof(float) * M * N) == 0,
			       "%s at %s: a row's bits depend on the rows beside it",
			       k == RL_WK_AUTO ? "the row-invariant choice"
					       : rl_wgemm_kernel_name((rl_wgemm_kernel)k),
			       rl_precision_name((rl_precision)prec));
			if (k == RL_WK_AUTO)
				for (int m = 1; m <= 600; m += 13)
					CHECK(rl_wgemm_pick(prec, RL_DT_BF16, m) ==
					      rl_wgemm_pick(prec, RL_DT_BF16, 1));
		}
		rl_wgemm_set_row_invariant(0);
		rl_wgemm_force(RL_WK_AUTO);
	}
	free(x), free(a), free(b), free(w);
}

int main(void)
{
	test_pick();
	test_row_invariant();
	/* The dot kernels: every edge of their 6 x 4, 4 x 3 tiles, K tails. */
	static const int dM[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, dN[] = {1, 3, 4, 5, 6, 7, 13},
			 dK[] = {1, 17, 33, 49};
	SHAPES(dM, dN, dK);
	/* Their column blocks (256 and 1024), K past them with a tail. */
	static const int bM[] = {1, 5}, bN[] = {7}, bK[] = {257, 1030};
	SHAPES(bM, bN, bK);
	/* The outer kernels and AMX: 16 and 32 inputs and either side, 6, 12,
	 * 16 and 32 weight rows and either side, K around 32 and 64. */
	static const int oM[] = {15, 16, 17, 31, 32, 33, 48, 50},
			 oN[] = {1, 6, 7, 11, 12, 13, 16, 17, 31, 33},
			 oK[] = {1, 31, 32, 33, 64, 65, 130};
	SHAPES(oM, oN, oK);
	/* Input blocks (avx2-outer 128, AMX 256) and AMX's 2048-column blocks. */
	static const int lM[] = {129, 257}, lN[] = {33}, lK[] = {40, 2050};
	SHAPES(lM, lN, lK);
	/* Threads split the rows; large K. */
	rl_wgemm_set_threads(2);
	for (int d = 0; d < 3; d++) {
		CHECK(one(5, 301, 257, dts[d], 1, 0));
		CHECK(one(32, 200, 2048, dts[d], 0, 2));
		CHECK(one(40, 203, 1000, dts[d], 1, 1));
	}
	rl_wgemm_set_threads(3);
	CHECK(one(3, 150, 64, RL_DT_BF16, 1, 0));
	CHECK(one(70, 150, 96, RL_DT_BF16, 1, 1));
	rl_wgemm_set_threads(0);
	for (int k = RL_WK_PORTABLE; k < RL_WK_COUNT; k++) {
		if (ran[k])
			printf("test_wgemm: %-12s %4d shapes\n",
			       rl_wgemm_kernel_name((rl_wgemm_kernel)k), ran[k]);
		else
			printf("test_wgemm: %-12s SKIPPED: this CPU (%s) cannot run it\n",
			       rl_wgemm_kernel_name((rl_wgemm_kernel)k), rl_cpu_describe());
	}
	return check_done("test_wgemm");
}
