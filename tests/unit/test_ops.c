/* test_ops.c — every fast kernel against its naive loop reference, and every
 * backward against central finite differences of its forward. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compute/ops.h"
#include "compute/vexp.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/par.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float frand(void) /* uniform in [-1, 1) */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((rng >> 11) * 0x1p-53 * 2.0 - 1.0);
}

static float *rand_buf(size_t n, float scale)
{
	float *p = malloc(n * sizeof *p);
	REQUIRE(p);
	for (size_t i = 0; i < n; i++)
		p[i] = frand() * scale;
	return p;
}

static float *zeros(size_t n)
{
	float *p = calloc(n ? n : 1, sizeof *p);
	REQUIRE(p);
	return p;
}

static double dot(const float *a, const float *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

/* ---- GEMM ---- */

static void test_gemm(void)
{
	static const int dims[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 9, 33}, {64, 48, 80}, {5, 70, 1}};
	for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++)
		for (int ta = 0; ta < 2; ta++)
			for (int tb = 0; tb < 2; tb++)
				for (int bi = 0; bi < 2; bi++) {
					int m = dims[s][0], n = dims[s][1], k = dims[s][2];
					int pad = 3; /* leading dimensions wider than the rows */
					int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad,
					    ldc = n + pad;
					float *a = rand_buf((size_t)(ta ? k : m) * lda, 1);
					float *b = rand_buf((size_t)(tb ? n : k) * ldb, 1);
					float *c1 = rand_buf((size_t)m * ldc, 1);
					float *c2 = malloc((size_t)m * ldc * sizeof *c2);
					REQUIRE(c2);
					memcpy(c2, c1, (size_t)m * ldc * sizeof *c2);
					float beta = bi ? 0.5f : 0.0f;
					if (!bi) /* beta 0 must ignore NaN in C */
						c1[0] = c2[0] = NAN;
					rl_gemm(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, c1,
						ldc);
					rl_gemm_naive(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta,
						      c2, ldc);
					char what[64];
					snprintf(what, sizeof what,
						 "gemm %dx%dx%d ta%d tb%d beta%g", m, n, k, ta, tb,
						 beta);
					check_close(what, c1, c2, (size_t)m * ldc, 1e-5 * sqrt(k),
						    1e-5);
					free(a), free(b), free(c1), free(c2);
				}
	/* the backend switch routes rl_gemm to the naive loops */
	float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4];
	rl_gemm_set_backend(RL_GEMM_NAIVE);
	rl_gemm(RL_N, RL_N, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2);
	rl_gemm_set_backend(RL_GEMM_BLAS);
	float want[4] = {4, 5, 10, 11};
	check_close("gemm naive backend", c, want, 4, 0, 0);
	CHECK(rl_gemm_flops() > 0);
}

/* ---- linear ---- */

static void test_linear(void)
{
	int T = 7, C = 13, OC = 11, ldi = C + 2, ldo = OC + 1;
	float *x = rand_buf((size_t)T * ldi, 1), *w = rand_buf((size_t)OC * C, 1),
	      *b = rand_buf(OC, 1);
	float *y = zeros((size_t)T * ldo), *R = rand_buf((size_t)T * ldo, 1);
	rl_linear_forward(y, ldo, x, ldi, w, b, T, C, OC);
	float ref[7 * 11];
	for (int t = 0; t < T; t++)
		for (int o = 0; o < OC; o++) {
			double s = b[o];
			for (int c = 0; c < C; c++)
				s += (double)x[t * ldi + c] * w[o * C + c];
			ref[t * OC + o] = (float)s;
		}
	float got[7 * 11];
	for (int t = 0; t < T; t++)
		memcpy(got + t * OC, y + t * ldo, OC * sizeof(float));
	check_close("linear forward", got, ref, (size_t)T * OC, 1e-5, 1e-5);

	/* backward: dx += R W, dW += R^T x, db += sum R; against the definitions */
	float *dx = zeros((size_t)T * ldi), *dw = zeros((size_t)OC * C), *db = zeros(OC);
	rl_linear_backward(dx, ldi, dw, db, R, ldo, x, ldi, w, T, C, OC);
	float *rdx = zeros((size_t)T * ldi), *rdw = zeros((size_t)OC * C), *rdb = zeros(OC);
	for (int t = 0; t < T; t++)
		for (int o = 0; o < OC; o++) {
			float r = R[t * ldo + o];
			rdb[o] += r;
			for (int c = 0; c < C; c++) {
				rdx[t * ldi + c] += r * w[o * C + c];
				rdw[o * C + c] += r * x[t * ldi + c];
			}
		}
	check_close("linear dx", dx, rdx, (size_t)T * ldi, 1e-5, 1e-5);
	check_close("linear dw", dw, rdw, (size_t)OC * C, 1e-5, 1e-5);
	check_close("linear db", db, rdb, OC, 1e-5, 1e-5);
	free(x), free(w), free(b), free(y), free(R), free(dx), free(dw), free(db);
	free(rdx), free(rdw), free(rdb);
}

/* ---- RMSNorm ---- */

static void test_rmsnorm(void)
{
	for (int plus_one = 0; plus_one < 2; plus_one++) {
		int T = 5, C = 24;
		float eps = 1e-6f;
		float *x = rand_buf((size_t)T * C, 2), *w = rand_buf(C, 1);
		float *y1 = zeros((size_t)T * C), *y2 = zeros((size_t)T * C);
		float r1[5], r2[5];
		rl_rmsnorm_forward(y1, r1, x, w, T, C, eps, plus_one);
		rl_rmsnorm_forward_naive(y2, r2, x, w, T, C, eps, plus_one);
		check_close("rmsnorm forward", y1, y2, (size_t)T * C, 1e-6, 1e-6);
		check_close("rmsnorm rstd", r1, r2, T, 0, 1e-6);

		float *dy = rand_buf((size_t)T * C, 1);
		float *dx1 = zeros((size_t)T * C), *dx2 = zeros((size_t)T * C);
		float *dw1 = zeros(C), *dw2 = zeros(C);
		rl_rmsnorm_backward(dx1, dw1, dy, x, w, r1, T, C, plus_one);
		rl_rmsnorm_backward_naive(dx2, dw2, dy, x, w, r2, T, C, plus_one);
		check_close("rmsnorm dx", dx1, dx2, (size_t)T * C, 1e-5, 1e-5);
		check_close("rmsnorm dw", dw1, dw2, C, 1e-5, 1e-5);

		/* finite differences of L = <dy, rmsnorm(x)> */
		float *yy = zeros((size_t)T * C);
		for (int probe = 0; probe < 12; probe++) {
			int i = (probe * 37) % (T * C);
			float h = 1e-2f, old = x[i];
			x[i] = old + h;
			rl_rmsnorm_forward_naive(yy, NULL, x, w, T, C, eps, plus_one);
			double lp = dot(dy, yy, (size_t)T * C);
			x[i] = old - h;
			rl_rmsnorm_forward_naive(yy, NULL, x, w, T, C, eps, plus_one);
			double lm = dot(dy, yy, (size_t)T * C);
			x[i] = old;
			float fd = (float)((lp - lm) / (2 * h));
			check_close("rmsnorm dx vs finite differences", &dx1[i], &fd, 1, 2e-3,
				    2e-3);
		}
		for (int c = 0; c < C; c += 5) {
			float h = 1e-2f, old = w[c];
			w[c] = old + h;
			rl_rmsnorm_forward_naive(yy, NULL, x, w, T, C, eps, plus_one);
			double lp = dot(dy, yy, (size_t)T * C);
			w[c] = old - h;
			rl_rmsnorm_forward_naive(yy, NULL, x, w, T, C, eps, plus_one);
			double lm = dot(dy, yy, (size_t)T * C);
			w[c] = old;
			float fd = (float)((lp - lm) / (2 * h));
			check_close("rmsnorm dw vs finite differences", &dw1[c], &fd, 1, 2e-3,
				    2e-3);
		}
		free(x), free(w), free(y1), free(y2), free(dy), free(dx1), free(dx2), free(dw1);
		free(dw2), free(yy);
	}
}

/* ---- RoPE ---- */

/* transformers 5.x _compute_llama3_parameters for theta 500000, head_dim 64,
 * factor 32, low 1, high 4, original 8192 (Llama-3.2's values), printed as hex. */
static const double llama3_inv_freq[32] = {
	0x1.0000000000000p+0,  0x1.53c38c0000000p-1,  0x1.c2ef780000000p-2,  0x1.2b3dc60000000p-2,
	0x1.8d27600000000p-3,  0x1.078d400000000p-3,  0x1.5dc95a0000000p-4,  0x1.d03cce0000000p-5,
	0x1.3411900000000p-5,  0x1.98de920000000p-6,  0x1.0f53860000000p-6,  0x1.681ada0000000p-7,
	0x1.ddee9e0000000p-8,  0x1.3d28040000000p-8,  0x1.a4ee400000000p-9,  0x1.524f360000000p-10,
	0x1.c26c400000000p-12, 0x1.9731ee0000000p-14, 0x1.46831a0000000p-16, 0x1.b159020000000p-17,
	0x1.1f91f00000000p-17, 0x1.7da9e80000000p-18, 0x1.fa8b860000000p-19, 0x1.5024d60000000p-19,
	0x1.be21880000000p-20, 0x1.280d960000000p-20, 0x1.88ec200000000p-21, 0x1.04be680000000p-21,
	0x1.5a0f4e0000000p-22, 0x1.cb4a9a0000000p-23, 0x1.30c94e0000000p-23, 0x1.9483600000000p-24,
};

static void test_rope(void)
{
	rl_config c;
	memset(&c, 0, sizeof c);
	c.head_dim = 64;
	c.rope_theta = 500000;
	c.rope_type = RL_ROPE_LLAMA3;
	c.rope_factor = 32;
	c.rope_low_freq_factor = 1;
	c.rope_high_freq_factor = 4;
	c.rope_original_max_position = 8192;
	float f[32], want[32];
	rl_rope_inv_freq(&c, f);
	for (int i = 0; i < 32; i++)
		want[i] = (float)llama3_inv_freq[i];
	check_close("llama3 inv_freq vs transformers", f, want, 32, 0, 3e-7);

	c.rope_type = RL_ROPE_LINEAR;
	c.rope_theta = 10000;
	c.rope_factor = 4;
	rl_rope_inv_freq(&c, f);
	static const double linear_want[5] = {0x1.0000000000000p-2, 0x1.7ff2220000000p-3,
					      0x1.1feb340000000p-3, 0x1.afd1360000000p-4,
					      0x1.43d1360000000p-4};
	for (int i = 0; i < 5; i++)
		want[i] = (float)linear_want[i];
	check_close("linear inv_freq vs transformers", f, want, 5, 0, 3e-7);

	c.rope_type = RL_ROPE_DEFAULT;
	c.head_dim = 16;
	rl_rope r;
	REQUIRE(rl_rope_init(&r, &c, 100) == RL_OK);
	int T = 6, nh = 3, ld = nh * 16 + 5;
	int pos[6] = {0, 1, 2, 17, 50, 99};
	float *x = rand_buf((size_t)T * ld, 1);
	float *x1 = malloc((size_t)T * ld * sizeof *x1), *x2 = malloc((size_t)T * ld * sizeof *x2);
	REQUIRE(x1 && x2);
	memcpy(x1, x, (size_t)T * ld * sizeof *x);
	memcpy(x2, x, (size_t)T * ld * sizeof *x);
	rl_rope_forward(x1, ld, pos, T, nh, &r);
	rl_rope_forward_naive(x2, ld, pos, T, nh, &r);
	check_close("rope forward", x1, x2, (size_t)T * ld, 1e-6, 1e-6);
	/* position 0 is the identity; padding columns untouched */
	check_close("rope pos 0", x1, x, 16 * nh, 0, 0);
	check_close("rope padding", x1 + nh * 16, x + nh * 16, 5, 0, 0);
	/* backward is the transpose: <R x, y> == <x, R^T y> */
	float *y = rand_buf((size_t)T * ld, 1), *y1 = malloc((size_t)T * ld * sizeof *y1);
	REQUIRE(y1);
	memcpy(y1, y, (size_t)T * ld * sizeof *y);
	rl_rope_backward(y1, ld, pos, T, nh, &r);
	float lhs = (float)dot(x1, y, (size_t)T * ld), rhs = (float)dot(x, y1, (size_t)T * ld);
	check_close("rope backward is the transpose", &lhs, &rhs, 1, 1e-5, 1e-5);
	/* and the inverse: R^T R x == x */
	rl_rope_backward(x1, ld, pos, T, nh, &r);
	check_close("rope inverse", x1, x, (size_t)T * ld, 1e-6, 1e-6);
	rl_rope_free(&r);
	free(x), free(x1), free(x2), free(y), free(y1);
}

/* ---- argmax ---- */

/* The plain loop, as torch.argmax decides: the first NaN, else the first
 * strictly greater value. */
static int argmax_naive(const float *v, int n)
{
	int best = 0;
	for (int i = 0; i < n; i++) {
		if (isnan(v[i]))
			return i;
		if (v[i] > v[best])
			best = i;
	}
	return best;
}

static void test_argmax(void)
{
	enum { N = 203 };
	float v[N];
	for (int trial = 0; trial < 400; trial++) {
		int n = trial % N + (trial > N ? 0 : 1); /* 0 .. N, tails of every length */
		n = n > N ? N : n;
		for (int i = 0; i < n; i++) /* few distinct values: ties everywhere */
			v[i] = (float)((unsigned)(trial * 7919 + i * 104729) % 13) - 6.0f;
		if (trial % 5 == 1 && n > 3) /* a NaN somewhere, a second one after it */
			v[(trial * 31) % n] = NAN, v[n - 1] = NAN;
		if (trial % 7 == 2)
			for (int i = 0; i < n; i++)
				v[i] = -INFINITY;
		if (trial % 11 == 3 && n > 0)
			v[n - 1] = INFINITY;
		CHECKF(rl_argmax(v, n) == argmax_naive(v, n), "argmax trial %d n %d: %d, want %d",
		       trial, n, rl_argmax(v, n), argmax_naive(v, n));
	}
}

/* ---- vector exp (vexp.h) ---- */

#if defined(__x86_64__) && defined(__GNUC__)
static __attribute__((target("avx2,fma"))) void exp_avx2(float *y, const float *x, int n)
{
	for (int i = 0; i < n; i += 8)
		_mm256_storeu_ps(y + i, rl_exp256(_mm256_loadu_ps(x + i)));
}

static __attribute__((target("avx512f,avx512dq"))) void exp_avx512(float *y, const float *x, int n)
{
	for (int i = 0; i < n; i += 16)
		_mm512_storeu_ps(y + i, rl_exp512(_mm512_loadu_ps(x + i)));
}
#endif

/* Against exp in double: within 2^-21 relative where the result is a normal
 * float, 0 or a denormal below FLT_MIN, inf above FLT_MAX; both widths the
 * same bits. */
static void test_vexp(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	const rl_cpu *c = rl_cpu_get();
	if (!c->avx2)
		return;
	enum { N = 4096 };
	float *x = zeros(N), *y = zeros(N), *z = zeros(N);
	for (int i = 0; i < N; i++) /* -100 .. 100, the ends and clamps included */
		x[i] = -100.0f + 200.0f * (float)i / (N - 1);
	x[0] = -88.3762626647949f, x[1] = 88.3762626647949f, x[2] = 0.0f, x[3] = -87.3f;
	x[4] = 88.72f, x[5] = -1e-8f, x[6] = 0.6931472f, x[7] = -0.34657359f;
	exp_avx2(y, x, N);
	for (int i = 0; i < N; i++) {
		double e = exp(fmax(fmin(x[i], RL_VEXP_MAX), -RL_VEXP_MAX));
		double err = fabs((double)y[i] - e);
		CHECKF(e < FLT_MIN ? err <= 1.5e-45 : err <= e * 4.8e-7,
		       "exp256(%.9g) = %.9g, exp %.9g", (double)x[i], (double)y[i], e);
	}
	if (c->avx512) {
		exp_avx512(z, x, N);
		check_close("exp512 and exp256 bit for bit", y, z, N, 0, 0);
	}
	free(x), free(y), free(z);
#endif
}

/* ---- attention ---- */

static void attn_case(int nq, int nkv, int nh, int nkvh, int hd, int window, float cap)
{
	char what[128];
	int ldq = nh * hd + 3, ldk = nkvh * hd + 2, ldo = nh * hd + 1;
	float scale = 1.0f / sqrtf((float)hd);
	float *q = rand_buf((size_t)nq * ldq, 1.5f), *k = rand_buf((size_t)nkv * ldk, 1.5f),
	      *v = rand_buf((size_t)nkv * ldk, 1);
	float *o1 = zeros((size_t)nq * ldo), *o2 = zeros((size_t)nq * ldo);
	float *l1 = zeros((size_t)nq * nh), *l2 = zeros((size_t)nq * nh);
	float *scr = zeros(rl_attention_scratch(nq, nkv));
	rl_attention_forward(o1, ldo, l1, q, ldq, k, v, ldk, nq, nkv, nh, nkvh, hd, window, scale,
			     cap, scr);
	rl_attention_forward_naive(o2, ldo, l2, q, ldq, k, v, ldk, nq, nkv, nh, nkvh, hd, window,
				   scale, cap);
	snprintf(what, sizeof what, "attention nq %d nkv %d nh %d nkvh %d hd %d window %d cap %g",
		 nq, nkv, nh, nkvh, hd, window, (double)cap);
	check_close(what, o1, o2, (size_t)nq * ldo, 1e-5, 1e-5);
	check_close("attention lse", l1, l2, (size_t)nq * nh, 1e-5, 1e-5);

	float *dout = rand_buf((size_t)nq * ldo, 1);
	float *dq1 = zeros((size_t)nq * ldq), *dk1 = rand_buf((size_t)nkv * ldk, 9),
	      *dv1 = rand_buf((size_t)nkv * ldk, 9); /* garbage: must be overwritten */
	float *dq2 = zeros((size_t)nq * ldq), *dk2 = zeros((size_t)nkv * ldk),
	      *dv2 = zeros((size_t)nkv * ldk);
	rl_attention_backward(dq1, ldq, dk1, dv1, ldk, dout, ldo, o1, ldo, l1, q, ldq, k, v, ldk,
			      nq, nkv, nh, nkvh, hd, window, scale, cap, scr);
	rl_attention_backward_naive(dq2, ldq, dk2, dv2, ldk, dout, ldo, q, ldq, k, v, ldk, nq, nkv,
				    nh, nkvh, hd, window, scale, cap);
	/* compare only the real columns (padding of dk/dv is not written) */
	for (int j = 0; j < nkv; j++) {
		memset(dk1 + (size_t)j * ldk + nkvh * hd, 0, 2 * sizeof(float));
		memset(dv1 + (size_t)j * ldk + nkvh * hd, 0, 2 * sizeof(float));
	}
	for (int i = 0; i < nq; i++)
		memset(dq1 + (size_t)i * ldq + nh * hd, 0, 3 * sizeof(float));
	check_close("attention dq", dq1, dq2, (size_t)nq * ldq, 1e-5, 1e-4);
	check_close("attention dk", dk1, dk2, (size_t)nkv * ldk, 1e-5, 1e-4);
	check_close("attention dv", dv1, dv2, (size_t)nkv * ldk, 1e-5, 1e-4);

	/* finite differences of L = <dout, attention(q, k, v)> through the naive forward */
	float *oo = zeros((size_t)nq * ldo);
	float *bufs[3] = {q, k, v}, *grads[3] = {dq2, dk2, dv2};
	const char *names[3] = {"dq", "dk", "dv"};
	size_t sizes[3] = {(size_t)nq * ldq, (size_t)nkv * ldk, (size_t)nkv * ldk};
	int lds[3] = {ldq, ldk, ldk}, widths[3] = {nh * hd, nkvh * hd, nkvh * hd};
	for (int which = 0; which < 3; which++)
		for (int probe = 0; probe < 6; probe++) {
			size_t i = ((size_t)probe * 7919 + which * 31) % sizes[which];
			if ((int)(i % lds[which]) >= widths[which])
				continue;
			float *p = bufs[which], old = p[i], h = 1e-2f;
			p[i] = old + h;
			rl_attention_forward_naive(oo, ldo, NULL, q, ldq, k, v, ldk, nq, nkv, nh,
						   nkvh, hd, window, scale, cap);
			double lp = dot(dout, oo, (size_t)nq * ldo);
			p[i] = old - h;
			rl_attention_forward_naive(oo, ldo, NULL, q, ldq, k, v, ldk, nq, nkv, nh,
						   nkvh, hd, window, scale, cap);
			double lm = dot(dout, oo, (size_t)nq * ldo);
			p[i] = old;
			float fd = (float)((lp - lm) / (2 * h));
			snprintf(what, sizeof what, "attention %s vs finite differences",
				 names[which]);
			check_close(what, &grads[which][i], &fd, 1, 2e-3, 5e-3);
		}
	free(q), free(k), free(v), free(o1), free(o2), free(l1), free(l2), free(scr), free(dout);
	free(dq1), free(dk1), free(dv1), free(dq2), free(dk2), free(dv2), free(oo);
}

static void test_attention(void)
{
	attn_case(24, 24, 4, 2, 64, 0, 0);   /* Llama's head_dim */
	attn_case(1, 1, 2, 1, 8, 0, 0);	     /* one token */
	attn_case(9, 9, 4, 2, 8, 0, 0);	     /* GQA, whole prompt */
	attn_case(9, 9, 3, 3, 6, 0, 0);	     /* MHA */
	attn_case(7, 7, 4, 1, 16, 0, 0);     /* MQA */
	attn_case(1, 12, 4, 2, 8, 0, 0);     /* last token only */
	attn_case(3, 12, 4, 2, 8, 0, 0);     /* a few rows after a cache */
	attn_case(11, 11, 2, 1, 8, 4, 0);    /* sliding window */
	attn_case(1, 11, 2, 2, 8, 3, 0);     /* window, last token */
	attn_case(12, 12, 2, 1, 8, 50, 0);   /* window wider than the prompt */
	attn_case(10, 10, 4, 2, 8, 0, 1.5f); /* soft-capped (a cap the scores reach) */
	attn_case(1, 10, 4, 2, 8, 4, 1.5f);  /* capped, window, last token */
	attn_case(3, 10, 2, 1, 8, 0, 50);    /* Gemma 2's cap */
	/* decoding steps at real head sizes: the AVX2 kernel's 64-column
	 * blocks, its 8-column rest, key groups of 8 with a short last one */
	attn_case(1, 37, 12, 2, 128, 0, 0); /* Qwen2.5-1.5B */
	attn_case(1, 16, 8, 2, 64, 5, 0);   /* SmolLM2, a window */
	attn_case(1, 19, 4, 4, 96, 0, 0);   /* 64 + 32 columns */
	attn_case(1, 30, 4, 1, 256, 0, 30); /* Gemma's head size, capped */
	attn_case(1, 9, 4, 2, 12, 0, 0);    /* head_dim not a multiple of 8 */
}

/* ---- gated activations ---- */

/* SiLU forward and backward held to AVX2 (rl_ops_simd(2), as on an AVX2-only
 * CPU) give the bits the AVX-512 kernels give: rl_exp256 and rl_exp512 do the
 * same operations. Only where the CPU has both. */
static void test_silu_widths(void)
{
	if (!rl_cpu_get()->avx512)
		return;
	int T = 3, F = 37; /* tails of 5 and 5 lanes */
	float *gu = rand_buf((size_t)T * 2 * F, 6), *dh = rand_buf((size_t)T * F, 1);
	float *h2 = zeros((size_t)T * F), *h5 = zeros((size_t)T * F);
	float *d2 = zeros((size_t)T * 2 * F), *d5 = zeros((size_t)T * 2 * F);
	rl_ops_simd(2);
	rl_glu_forward(h2, gu, T, F, RL_ACT_SILU);
	rl_glu_backward(d2, dh, gu, T, F, RL_ACT_SILU);
	rl_ops_simd(1);
	rl_glu_forward(h5, gu, T, F, RL_ACT_SILU);
	rl_glu_backward(d5, dh, gu, T, F, RL_ACT_SILU);
	check_close("silu forward, AVX2 against AVX-512", h2, h5, (size_t)T * F, 0, 0);
	check_close("silu backward, AVX2 against AVX-512", d2, d5, (size_t)T * 2 * F, 0, 0);
	rl_ops_simd(2);
	free(gu), free(dh), free(h2), free(h5), free(d2), free(d5);
}

static void test_glu(void)
{
	rl_act acts[3] = {RL_ACT_SILU, RL_ACT_GELU_TANH, RL_ACT_GELU};
	for (int a = 0; a < 3; a++) {
		int T = 4, F = 19;
		float *gu = rand_buf((size_t)T * 2 * F, 4);
		float *h1 = zeros((size_t)T * F), *h2 = zeros((size_t)T * F);
		rl_glu_forward(h1, gu, T, F, acts[a]);
		rl_glu_forward_naive(h2, gu, T, F, acts[a]);
		check_close("glu forward", h1, h2, (size_t)T * F, 1e-6, 1e-5);
		float *dh = rand_buf((size_t)T * F, 1);
		float *d1 = zeros((size_t)T * 2 * F), *d2 = zeros((size_t)T * 2 * F);
		rl_glu_backward(d1, dh, gu, T, F, acts[a]);
		rl_glu_backward_naive(d2, dh, gu, T, F, acts[a]);
		check_close("glu backward", d1, d2, (size_t)T * 2 * F, 1e-6, 1e-5);
		for (int probe = 0; probe < 10; probe++) {
			size_t i = ((size_t)probe * 13 + 5) % ((size_t)T * 2 * F);
			float old = gu[i], h = 1e-2f;
			gu[i] = old + h;
			rl_glu_forward_naive(h2, gu, T, F, acts[a]);
			double lp = dot(dh, h2, (size_t)T * F);
			gu[i] = old - h;
			rl_glu_forward_naive(h2, gu, T, F, acts[a]);
			double lm = dot(dh, h2, (size_t)T * F);
			gu[i] = old;
			float fd = (float)((lp - lm) / (2 * h));
			check_close("glu vs finite differences", &d1[i], &fd, 1, 2e-3, 5e-3);
		}
		free(gu), free(h1), free(h2), free(dh), free(d1), free(d2);
	}
	/* SiLU over a dense sweep (the vectorised exp included) against double */
	{
		int T = 1, F = 4001;
		float *gu = zeros((size_t)2 * F), *h = zeros((size_t)F), *dh = zeros((size_t)F),
		      *dg = zeros((size_t)2 * F);
		for (int i = 0; i < F; i++) {
			gu[i] = -100.0f + 200.0f * (float)i / (float)(F - 1);
			gu[F + i] = 1.0f;
			dh[i] = 1.0f;
		}
		rl_glu_forward(h, gu, T, F, RL_ACT_SILU);
		rl_glu_backward(dg, dh, gu, T, F, RL_ACT_SILU);
		float *want = zeros((size_t)F), *wantd = zeros((size_t)F);
		for (int i = 0; i < F; i++) {
			double x = gu[i], sg = 1 / (1 + exp(-x));
			want[i] = (float)(x * sg);
			wantd[i] = (float)(sg * (1 + x * (1 - sg)));
		}
		check_close("silu sweep", h, want, (size_t)F, 1e-30, 4e-7);
		/* 1 + g(1 - s) cancels near g = -1.28 (torch's formula too): absolute there */
		check_close("silu derivative sweep", dg, wantd, (size_t)F, 2e-6, 4e-7);
		check_close("silu du sweep", dg + F, want, (size_t)F, 1e-30, 4e-7);
		free(gu), free(h), free(dh), free(dg), free(want), free(wantd);
	}
	/* spot values: torch.nn.functional.silu / gelu(approximate="tanh") / gelu */
	float got[3] = {rl_act_f(RL_ACT_SILU, 1.5f), rl_act_f(RL_ACT_GELU_TANH, 1.5f),
			rl_act_f(RL_ACT_GELU, 1.5f)};
	float want[3] = {1.226361632347107f, 1.3995715379714966f, 1.3997892141342163f};
	check_close("activation values vs torch", got, want, 3, 0, 2e-7);
}

/* ---- objective ---- */

static void test_cos(void)
{
	int C = 17;
	float *m = rand_buf(C, 1), *d = rand_buf(C, 1), *dm = zeros(C);
	double c0 = rl_neg_cos_backward(m, d, C, dm);
	CHECK(c0 >= -1 && c0 <= 1);
	float same = (float)rl_neg_cos_backward(m, m, C, NULL), one = 1;
	check_close("cos(m, m)", &same, &one, 1, 1e-7, 0);
	for (int i = 0; i < C; i++) {
		float old = m[i], h = 1e-3f;
		m[i] = old + h;
		double lp = -rl_neg_cos_backward(m, d, C, NULL);
		m[i] = old - h;
		double lm = -rl_neg_cos_backward(m, d, C, NULL);
		m[i] = old;
		float fd = (float)((lp - lm) / (2 * h));
		check_close("-cos gradient vs finite differences", &dm[i], &fd, 1, 1e-4, 1e-3);
	}
	free(m), free(d), free(dm);
}

/* the parallel paths (rows split over threads) against the naive loops */
static size_t par_hits[1000];

static void par_mark(void *ctx, size_t i0, size_t i1)
{
	(void)ctx;
	for (size_t i = i0; i < i1; i++)
		par_hits[i]++;
}

static void test_parallel(void)
{
	for (int th = 1; th <= 5; th++) {
		rl_par_set_threads(th);
		for (size_t n = 0; n < 1000; n += 37) {
			memset(par_hits, 0, sizeof par_hits);
			rl_par_for(n, 3, par_mark, NULL);
			size_t bad = 0;
			for (size_t i = 0; i < 1000; i++)
				bad += par_hits[i] != (i < n);
			CHECKF(bad == 0, "rl_par_for(%zu) with %d threads: %zu items wrong", n, th,
			       bad);
		}
	}
	rl_par_set_threads(3);
	int T = 301, C = 40, F = 33;
	float *x = rand_buf((size_t)T * C, 2), *w = rand_buf(C, 1), *y1 = zeros((size_t)T * C),
	      *y2 = zeros((size_t)T * C), r1[301], r2[301];
	rl_rmsnorm_forward(y1, r1, x, w, T, C, 1e-6f, 0);
	rl_rmsnorm_forward_naive(y2, r2, x, w, T, C, 1e-6f, 0);
	check_close("parallel rmsnorm", y1, y2, (size_t)T * C, 1e-6, 1e-6);
	float *dx1 = zeros((size_t)T * C), *dx2 = zeros((size_t)T * C), *dw1 = zeros(C),
	      *dw2 = zeros(C);
	rl_rmsnorm_backward(dx1, dw1, y2, x, w, r1, T, C, 0);
	rl_rmsnorm_backward_naive(dx2, dw2, y2, x, w, r2, T, C, 0);
	check_close("parallel rmsnorm dx", dx1, dx2, (size_t)T * C, 1e-5, 1e-5);
	check_close("parallel rmsnorm dw", dw1, dw2, C, 1e-4, 1e-5);
	float *gu = rand_buf((size_t)T * 2 * F, 3), *h1 = zeros((size_t)T * F),
	      *h2 = zeros((size_t)T * F);
	rl_glu_forward(h1, gu, T, F, RL_ACT_SILU);
	rl_glu_forward_naive(h2, gu, T, F, RL_ACT_SILU);
	check_close("parallel glu", h1, h2, (size_t)T * F, 1e-6, 1e-5);
	float *d1 = zeros((size_t)T * 2 * F), *d2 = zeros((size_t)T * 2 * F);
	rl_glu_backward(d1, h2, gu, T, F, RL_ACT_GELU_TANH);
	rl_glu_backward_naive(d2, h2, gu, T, F, RL_ACT_GELU_TANH);
	check_close("parallel glu backward", d1, d2, (size_t)T * 2 * F, 1e-6, 1e-5);
	/* in place, as the layer backward uses it */
	rl_glu_backward(gu, h2, gu, T, F, RL_ACT_GELU_TANH);
	check_close("glu backward in place", gu, d2, (size_t)T * 2 * F, 1e-6, 1e-5);
	rl_config c;
	memset(&c, 0, sizeof c);
	c.head_dim = 8;
	c.rope_theta = 10000;
	rl_rope r;
	REQUIRE(rl_rope_init(&r, &c, T) == RL_OK);
	int *pos = malloc((size_t)T * sizeof *pos);
	REQUIRE(pos);
	for (int t = 0; t < T; t++)
		pos[t] = t;
	memcpy(y1, x, (size_t)T * C * sizeof(float));
	memcpy(y2, x, (size_t)T * C * sizeof(float));
	rl_rope_forward(y1, C, pos, T, 5, &r);
	rl_rope_forward_naive(y2, C, pos, T, 5, &r);
	check_close("parallel rope", y1, y2, (size_t)T * C, 1e-5, 1e-5);
	memcpy(y2, x, (size_t)T * C * sizeof(float));
	rl_add_inplace(y2, x, (size_t)T * C);
	for (size_t i = 0; i < (size_t)T * C; i++)
		y1[i] = 2 * x[i];
	check_close("add in place", y2, y1, (size_t)T * C, 0, 0);
	rl_rope_free(&r);
	free(pos), free(x), free(w), free(y1), free(y2), free(dx1), free(dx2), free(dw1), free(dw2);
	free(gu), free(h1), free(h2), free(d1), free(d2);
	rl_par_set_threads(0);
}

int main(void)
{
	char note[128];
	rl_blas_setup(note, sizeof note);
	test_parallel();
	test_gemm();
	test_linear();
	test_rmsnorm();
	test_rope();
	int simd = rl_ops_simd(1);
	test_argmax();
	test_vexp();
	test_attention();
	test_glu();
	if (rl_ops_simd(2)) { /* SiLU held to AVX2: the same bits as AVX-512's */
		test_glu();
		test_silu_widths();
	}
	if (simd) { /* again with the portable kernels (scalar loops) */
		rl_ops_simd(0);
		test_attention();
		test_glu();
	}
	rl_ops_simd(1);
	test_cos();
	return check_done("test_ops");
}
