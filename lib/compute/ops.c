/* ops.c — f32 kernels of the engine: GEMM interface, linear, RMSNorm, RoPE,
 * attention, gated activations, the cosine objective; each beside its naive
 * loop reference. Formulas follow transformers' modeling code (see ops.h). */
#include <cblas.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/attn_row.h"
#include "compute/avx2_lanes.h"
#include "compute/ops.h"
#include "compute/vexp.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/par.h"
#include "core/util.h"

/* ---- matrix products ---- */

static rl_gemm_backend gemm_backend = RL_GEMM_BLAS;
static double gemm_flops, gemm_secs;

void rl_gemm_set_backend(rl_gemm_backend b)
{
	gemm_backend = b;
}

rl_gemm_backend rl_gemm_get_backend(void)
{
	return gemm_backend;
}

double rl_gemm_flops(void)
{
	return gemm_flops;
}

double rl_gemm_seconds(void)
{
	return gemm_secs;
}

/* Element (i, j) of op(X) for X stored row-major with leading dimension ld. */
static inline float opel(const float *x, int ld, rl_trans t, int i, int j)
{
	return t == RL_N ? x[(size_t)i * ld + j] : x[(size_t)j * ld + i];
}

void rl_gemm_naive(rl_trans ta, rl_trans tb, int m, int n, int k, float alpha, const float *a,
		   int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
	for (int i = 0; i < m; i++) {
		for (int j = 0; j < n; j++) {
			double s = 0;
			for (int p = 0; p < k; p++)
				s += (double)opel(a, lda, ta, i, p) * opel(b, ldb, tb, p, j);
			float *cij = &c[(size_t)i * ldc + j];
			*cij = (float)(alpha * s + (beta == 0 ? 0.0 : (double)beta * *cij));
		}
	}
}

void rl_gemm(rl_trans ta, rl_trans tb, int m, int n, int k, float alpha, const float *a, int lda,
	     const float *b, int ldb, float beta, float *c, int ldc)
{
	if (m <= 0 || n <= 0)
		return;
	gemm_flops += 2.0 * m * n * k;
	if (gemm_backend == RL_GEMM_NAIVE) {
		rl_gemm_naive(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
		return;
	}
	if (k <= 0) {
		for (int i = 0; i < m; i++)
			for (int j = 0; j < n; j++)
				c[(size_t)i * ldc + j] =
					beta == 0 ? 0.0f : beta * c[(size_t)i * ldc + j];
		return;
	}
	double t0 = rl_now();
	cblas_sgemm(CblasRowMajor, ta == RL_T ? CblasTrans : CblasNoTrans,
		    tb == RL_T ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
		    ldc);
	gemm_secs += rl_now() - t0;
}

/* OpenBLAS internals used only when present (DYNAMIC_ARCH builds export them):
 * re-running the kernel selection after setting OPENBLAS_CORETYPE, and the
 * buffer allocator whose first call does OpenBLAS's one-time memory set-up. */
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));
extern void *blas_memory_alloc(int procpos) __attribute__((weak));
extern void blas_memory_free(void *buffer) __attribute__((weak));

const char *rl_blas_core(void)
{
	const char *s = openblas_get_corename();
	return s ? s : "unknown";
}

int rl_blas_get_threads(void)
{
	return openblas_get_num_threads();
}

void rl_blas_threads(int n)
{
	if (n > 0)
		openblas_set_num_threads(n);
}

/* Kernels that use neither AVX2 nor AVX-512. */
static int weak_core(const char *name)
{
	static const char *const weak[] = {"Prescott",	"Core2",  "Penryn",	"Dunnington",
					   "Nehalem",	"Atom",	  "Katmai",	"Coppermine",
					   "Northwood", "Banias", "Athlon",	"Opteron",
					   "Barcelona", "Bobcat", "Sandybridge"};
	for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++)
		if (strcmp(name, weak[i]) == 0)
			return 1;
	return 0;
}

void rl_blas_setup(char *note, size_t cap)
{
	if (cap)
		note[0] = '\0';
	const char *core = rl_blas_core();
	if (getenv("OPENBLAS_CORETYPE") || !gotoblas_dynamic_init || !gotoblas_dynamic_quit ||
	    !weak_core(core))
		return;
	__builtin_cpu_init();
	const char *want = NULL;
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
		want = "SkylakeX";
	else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		want = "Haswell";
	if (!want)
		return;
	char was[32];
	snprintf(was, sizeof was, "%s", core);
	/* OpenBLAS's worker threads, started when the library loaded, each begin
	 * with blas_memory_alloc, whose first call anywhere runs the one-time
	 * memory set-up, and that calls gotoblas_dynamic_init. A worker that
	 * starts late (a loaded machine) and lands between the quit and the init
	 * below re-detects the CPU without OPENBLAS_CORETYPE: the process then
	 * ran on the Prescott kernels, whose sums differ in the last bits (about
	 * one run in 500 here; rl-train's output differed from run to run). So
	 * the set-up is done here first, on this thread (the workers then skip
	 * it), and the switch is checked and tried once more if it did not take. */
	if (blas_memory_alloc && blas_memory_free) {
		void *b = blas_memory_alloc(0);
		if (b)
			blas_memory_free(b);
	}
	for (int attempt = 0; attempt < 2 && strcmp(rl_blas_core(), want) != 0; attempt++) {
		gotoblas_dynamic_quit();
		setenv("OPENBLAS_CORETYPE", want, 1);
		gotoblas_dynamic_init();
		unsetenv("OPENBLAS_CORETYPE");
	}
	if (cap)
		snprintf(note, cap, "OpenBLAS chose '%s' kernels for this CPU; using '%s'", was,
			 rl_blas_core());
}

/* ---- linear ---- */

void rl_linear_forward(float *out, int ldo, const float *inp, int ldi, const float *w,
		       const float *bias, int T, int C, int OC)
{
	rl_gemm(RL_N, RL_T, T, OC, C, 1.0f, inp, ldi, w, C, 0.0f, out, ldo);
	if (bias)
		for (int t = 0; t < T; t++) {
			float *o = out + (size_t)t * ldo;
			for (int j = 0; j < OC; j++)
				o[j] += bias[j];
		}
}

void rl_linear_backward(float *dinp, int lddi, float *dw, float *dbias, const float *dout, int ldd,
			const float *inp, int ldi, const float *w, int T, int C, int OC)
{
	if (dinp)
		rl_gemm(RL_N, RL_N, T, C, OC, 1.0f, dout, ldd, w, C, 1.0f, dinp, lddi);
	if (dw)
		rl_gemm(RL_T, RL_N, OC, C, T, 1.0f, dout, ldd, inp, ldi, 1.0f, dw, C);
	if (dbias)
		for (int t = 0; t < T; t++) {
			const float *d = dout + (size_t)t * ldd;
			for (int j = 0; j < OC; j++)
				dbias[j] += d[j];
		}
}

/* ---- RMSNorm ---- */

typedef struct norm_job {
	float *out, *rstd, *dinp, *dw;
	const float *inp, *w, *dout, *rs;
	int T, C, plus_one;
	float eps;
} norm_job;

static void rmsnorm_rows(void *ctx, size_t t0, size_t t1)
{
	const norm_job *j = ctx;
	int C = j->C;
	const float *w = j->w;
	for (size_t t = t0; t < t1; t++) {
		const float *x = j->inp + t * C;
		float *o = j->out + t * C;
		double ss = 0;
		for (int c = 0; c < C; c++)
			ss += (double)x[c] * x[c];
		float var = (float)(ss / C);
		float r = 1.0f / sqrtf(var + j->eps);
		if (j->rstd)
			j->rstd[t] = r;
		if (j->plus_one)
			for (int c = 0; c < C; c++)
				o[c] = (x[c] * r) * (1.0f + w[c]);
		else
			for (int c = 0; c < C; c++)
				o[c] = w[c] * (x[c] * r);
	}
}

/* transformers: variance = x.pow(2).mean(-1) (f32); x * rsqrt(variance + eps);
 * then weight * that (Llama) or that * (1 + weight) (Gemma). */
void rl_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int T, int C,
			float eps, int plus_one)
{
	norm_job j = {out, rstd, NULL, NULL, inp, w, NULL, NULL, T, C, plus_one, eps};
	rl_par_for((size_t)T, 16, rmsnorm_rows, &j);
}

void rl_rmsnorm_forward_naive(float *out, float *rstd, const float *inp, const float *w, int T,
			      int C, float eps, int plus_one)
{
	for (int t = 0; t < T; t++) {
		double ss = 0;
		for (int c = 0; c < C; c++)
			ss += (double)inp[(size_t)t * C + c] * inp[(size_t)t * C + c];
		double r = 1.0 / sqrt(ss / C + eps);
		if (rstd)
			rstd[t] = (float)r;
		for (int c = 0; c < C; c++) {
			double g = plus_one ? 1.0 + w[c] : w[c];
			out[(size_t)t * C + c] = (float)(inp[(size_t)t * C + c] * r * g);
		}
	}
}

/* y_c = x_c r g_c, r = (mean x^2 + eps)^-1/2:
 * dx_c = r g_c dy_c - (r^3 / C) x_c sum_j dy_j g_j x_j;  dw_c += dy_c x_c r.
 * dx in parallel over rows, dw over columns (no reduction across threads). */
static void rmsnorm_dx_rows(void *ctx, size_t t0, size_t t1)
{
	const norm_job *j = ctx;
	int C = j->C;
	const float *w = j->w;
	for (size_t t = t0; t < t1; t++) {
		const float *x = j->inp + t * C, *dy = j->dout + t * C;
		float *dx = j->dinp + t * C;
		float r = j->rs[t];
		double dot = 0;
		for (int c = 0; c < C; c++) {
			float g = j->plus_one ? 1.0f + w[c] : w[c];
			dot += (double)dy[c] * g * x[c];
		}
		float k = (float)(dot * r * r * r / C);
		for (int c = 0; c < C; c++) {
			float g = j->plus_one ? 1.0f + w[c] : w[c];
			dx[c] += r * g * dy[c] - k * x[c];
		}
	}
}

static void rmsnorm_dw_cols(void *ctx, size_t c0, size_t c1)
{
	const norm_job *j = ctx;
	for (int t = 0; t < j->T; t++) {
		const float *x = j->inp + (size_t)t * j->C, *dy = j->dout + (size_t)t * j->C;
		float r = j->rs[t];
		for (size_t c = c0; c < c1; c++)
			j->dw[c] += dy[c] * (x[c] * r);
	}
}

void rl_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
			 const float *w, const float *rstd, int T, int C, int plus_one)
{
	norm_job j = {NULL, NULL, dinp, dw, inp, w, dout, rstd, T, C, plus_one, 0};
	if (dinp)
		rl_par_for((size_t)T, 16, rmsnorm_dx_rows, &j);
	if (dw)
		rl_par_for((size_t)C, 256, rmsnorm_dw_cols, &j);
}

void rl_rmsnorm_backward_naive(float *dinp, float *dw, const float *dout, const float *inp,
			       const float *w, const float *rstd, int T, int C, int plus_one)
{
	for (int t = 0; t < T; t++) {
		const float *x = inp + (size_t)t * C, *dy = dout + (size_t)t * C;
		/* the Jacobian, column by column: dy_j/dx_c = g_j (r d_jc - x_j x_c r^3 / C) */
		double eps_r = rstd[t];
		for (int c = 0; c < C; c++) {
			double s = 0;
			for (int j = 0; j < C; j++) {
				double g = plus_one ? 1.0 + w[j] : w[j];
				double jac = g * ((j == c ? eps_r : 0.0) -
						  (double)x[j] * x[c] * eps_r * eps_r * eps_r / C);
				s += dy[j] * jac;
			}
			dinp[(size_t)t * C + c] += (float)s;
			if (dw)
				dw[c] += (float)((double)dy[c] * x[c] * eps_r);
		}
	}
}

/* ---- RoPE ---- */

/* transformers' modeling_rope_utils, in f32 like torch:
 *   inv_freq[i] = 1 / theta ** (2i / hd)
 *   linear: inv_freq / factor
 *   llama3: wavelen = 2 pi / inv_freq; > low_freq_wavelen: / factor;
 *           between: (1 - s) * f / factor + s * f with
 *           s = (old_ctx / wavelen - low) / (high - low). */
/* The dims RoPE turns: Phi-3's partial rotary, else the whole head. */
static int rotary_dim(const rl_config *c)
{
	return c->rotary_dim ? c->rotary_dim : c->head_dim;
}

void rl_rope_inv_freq(const rl_config *c, float *inv_freq)
{
	int rot = rotary_dim(c), half = rot / 2;
	float base = (float)c->rope_theta;
	for (int i = 0; i < half; i++) {
		float e = (float)(2 * i) / (float)rot;
		/* longrope: 1 / (ext * base^e), ext the short factors */
		float ext = c->rope_type == RL_ROPE_LONGROPE ? c->rope_short[i] : 1.0f;
		inv_freq[i] = c->rope_type == RL_ROPE_LONGROPE ? 1.0f / (ext * powf(base, e))
							       : 1.0f / powf(base, e);
	}
	if (c->rope_type == RL_ROPE_LINEAR) {
		for (int i = 0; i < half; i++)
			inv_freq[i] /= (float)c->rope_factor;
	} else if (c->rope_type == RL_ROPE_LLAMA3) {
		float factor = (float)c->rope_factor, low = (float)c->rope_low_freq_factor,
		      high = (float)c->rope_high_freq_factor;
		double old_ctx = c->rope_original_max_position;
		double low_wl = old_ctx / c->rope_low_freq_factor;
		double high_wl = old_ctx / c->rope_high_freq_factor;
		for (int i = 0; i < half; i++) {
			float f = inv_freq[i];
			float wl = (float)(2 * M_PI) / f;
			float fl = wl > low_wl ? f / factor : f;
			float s = ((float)old_ctx / wl - low) / (high - low);
			float sm = (1 - s) * fl / factor + s * fl;
			int medium = !(wl < high_wl) && !(wl > low_wl);
			inv_freq[i] = medium ? sm : fl;
		}
	}
}

int rl_rope_init(rl_rope *r, const rl_config *c, int max_pos)
{
	memset(r, 0, sizeof *r);
	int rot = rotary_dim(c);
	if (c->head_dim <= 0 || rot <= 0 || rot % 2 || rot > c->head_dim || max_pos <= 0)
		return rl_error(RL_EDATA,
				"rope: rotary dimension %d must be even, positive and at most "
				"head_dim %d",
				rot, c->head_dim);
	int half = rot / 2;
	r->hd = c->head_dim;
	r->rot = rot;
	r->max_pos = max_pos;
	r->inv_freq = rl_malloc_array((size_t)half, sizeof(float));
	r->cos = rl_malloc_array((size_t)max_pos * half, sizeof(float));
	r->sin = rl_malloc_array((size_t)max_pos * half, sizeof(float));
	if (!r->inv_freq || !r->cos || !r->sin) {
		rl_rope_free(r);
		return RL_ESYS;
	}
	rl_rope_inv_freq(c, r->inv_freq);
	/* transformers: cos(emb) * attention_scaling, in f32 (1 but for longrope) */
	float att = c->rope_type == RL_ROPE_LONGROPE ? (float)c->rope_attn_factor : 1.0f;
	r->att = att;
	for (int p = 0; p < max_pos; p++)
		for (int i = 0; i < half; i++) {
			float ang = (float)p * r->inv_freq[i];
			r->cos[(size_t)p * half + i] = (float)cos((double)ang);
			r->sin[(size_t)p * half + i] = (float)sin((double)ang);
			if (c->rope_type == RL_ROPE_LONGROPE) {
				r->cos[(size_t)p * half + i] *= att;
				r->sin[(size_t)p * half + i] *= att;
			}
		}
	if (c->rope_type == RL_ROPE_LONGROPE) { /* the long factors' tables */
		rl_config lc = *c;
		memcpy(lc.rope_short, c->rope_long, sizeof lc.rope_short);
		lc.rope_local_theta = 0;
		lc.rope_original_max_position = INT_MAX; /* no further level */
		r->long_from = c->rope_original_max_position;
		if (c->rope_original_max_position != INT_MAX) {
			r->long_ = rl_malloc(sizeof *r->long_);
			int rc = r->long_ ? rl_rope_init(r->long_, &lc, max_pos) : RL_ESYS;
			if (rc) {
				rl_rope_free(r);
				return rc;
			}
		}
	}
	if (c->rope_local_theta > 0) { /* default rope, its own base */
		rl_config lc = *c;
		lc.rope_type = RL_ROPE_DEFAULT;
		lc.rope_theta = c->rope_local_theta;
		lc.rope_local_theta = 0;
		r->local = rl_malloc(sizeof *r->local);
		int rc = r->local ? rl_rope_init(r->local, &lc, max_pos) : RL_ESYS;
		if (rc) {
			rl_rope_free(r);
			return rc;
		}
	}
	return RL_OK;
}

const rl_rope *rl_rope_pass(const rl_rope *r, int last_pos)
{
	return r->long_ && last_pos + 1 > r->long_from ? r->long_ : r;
}

void rl_rope_free(rl_rope *r)
{
	if (r->long_) {
		rl_rope_free(r->long_);
		free(r->long_);
	}
	if (r->local) {
		rl_rope_free(r->local);
		free(r->local);
	}
	free(r->inv_freq);
	free(r->cos);
	free(r->sin);
	memset(r, 0, sizeof *r);
}

typedef struct rope_job {
	float *x;
	int ldx, nh, inverse;
	const int *pos;
	const rl_rope *r;
} rope_job;

static void rope_rows(void *ctx, size_t t0, size_t t1)
{
	const rope_job *j = ctx;
	int hd = j->r->hd, half = j->r->rot / 2;
	for (size_t t = t0; t < t1; t++) {
		const float *cs = j->r->cos + (size_t)j->pos[t] * half;
		const float *sn = j->r->sin + (size_t)j->pos[t] * half;
		for (int h = 0; h < j->nh; h++) {
			float *v = j->x + t * j->ldx + (size_t)h * hd;
			if (!j->inverse)
				for (int i = 0; i < half; i++) {
					float a = v[i], b = v[i + half];
					v[i] = a * cs[i] - b * sn[i];
					v[i + half] = b * cs[i] + a * sn[i];
				}
			else
				for (int i = 0; i < half; i++) {
					float da = v[i], db = v[i + half];
					v[i] = da * cs[i] + db * sn[i];
					v[i + half] = db * cs[i] - da * sn[i];
				}
		}
	}
}

void rl_rope_forward(float *x, int ldx, const int *pos, int T, int nh, const rl_rope *r)
{
	rope_job j = {x, ldx, nh, 0, pos, r};
	rl_par_for((size_t)T, 16, rope_rows, &j);
}

void rl_rope_backward(float *dx, int ldx, const int *pos, int T, int nh, const rl_rope *r)
{
	rope_job j = {dx, ldx, nh, 1, pos, r};
	rl_par_for((size_t)T, 16, rope_rows, &j);
}

void rl_rope_forward_naive(float *x, int ldx, const int *pos, int T, int nh, const rl_rope *r)
{
	int hd = r->hd, half = r->rot / 2;
	for (int t = 0; t < T; t++)
		for (int h = 0; h < nh; h++) {
			float *v = x + (size_t)t * ldx + (size_t)h * hd;
			for (int i = 0; i < half; i++) {
				double ang = (double)((float)pos[t] * r->inv_freq[i]);
				double att = r->att, a = v[i], b = v[i + half];
				v[i] = (float)(att * (a * cos(ang) - b * sin(ang)));
				v[i + half] = (float)(att * (b * cos(ang) + a * sin(ang)));
			}
		}
}

/* SiLU rows with AVX-512 or AVX2 where the CPU runs them (rl_cpu_get, so
 * RL_CPU_MAX holds them back): exp by rl_exp256/rl_exp512 (vexp.h), sigmoid
 * by an exact division; both widths give the same bits. Scalar loops
 * elsewhere. rl_ops_simd turns them and the decoding attention's AVX2
 * kernel off, or holds SiLU to AVX2 (tests). */
static int simd_off, simd_no512;

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f,avx512dq")))
#define AVX2 __attribute__((target("avx2,fma")))

static inline AVX512 __m512 sigmoid512(__m512 g)
{
	__m512 one = _mm512_set1_ps(1.0f);
	return _mm512_div_ps(one,
			     _mm512_add_ps(one, rl_exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
}

static inline AVX2 __m256 sigmoid256(__m256 g)
{
	__m256 one = _mm256_set1_ps(1.0f);
	return _mm256_div_ps(one,
			     _mm256_add_ps(one, rl_exp256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

/* o = silu(g) * u for n elements (n % 16 handled with masks) */
static AVX512 void silu_fwd_avx512(float *o, const float *g, const float *u, int n)
{
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
		__m512 gv = _mm512_maskz_loadu_ps(m, g + i), uv = _mm512_maskz_loadu_ps(m, u + i);
		__m512 s = sigmoid512(gv);
		_mm512_mask_storeu_ps(o + i, m, _mm512_mul_ps(_mm512_mul_ps(gv, s), uv));
	}
}

/* dg = d u s (1 + g (1 - s)), du = d g s; dg/du may alias g/u */
static AVX512 void silu_bwd_avx512(float *dg, float *du, const float *d, const float *g,
				   const float *u, int n)
{
	__m512 one = _mm512_set1_ps(1.0f);
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
		__m512 gv = _mm512_maskz_loadu_ps(m, g + i), uv = _mm512_maskz_loadu_ps(m, u + i);
		__m512 dv = _mm512_maskz_loadu_ps(m, d + i);
		__m512 s = sigmoid512(gv);
		__m512 dsilu = _mm512_mul_ps(
			s, _mm512_add_ps(one, _mm512_mul_ps(gv, _mm512_sub_ps(one, s))));
		_mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(dv, _mm512_mul_ps(gv, s)));
		_mm512_mask_storeu_ps(dg + i, m, _mm512_mul_ps(_mm512_mul_ps(dv, uv), dsilu));
	}
}

/* silu_fwd_avx512 at 8 lanes */
static AVX2 void silu_fwd_avx2(float *o, const float *g, const float *u, int n)
{
	for (int i = 0; i < n; i += 8) {
		__m256i m = rl_lanes8(n - i);
		__m256 gv = _mm256_maskload_ps(g + i, m), uv = _mm256_maskload_ps(u + i, m);
		__m256 s = sigmoid256(gv);
		_mm256_maskstore_ps(o + i, m, _mm256_mul_ps(_mm256_mul_ps(gv, s), uv));
	}
}

/* silu_bwd_avx512 at 8 lanes */
static AVX2 void silu_bwd_avx2(float *dg, float *du, const float *d, const float *g, const float *u,
			       int n)
{
	__m256 one = _mm256_set1_ps(1.0f);
	for (int i = 0; i < n; i += 8) {
		__m256i m = rl_lanes8(n - i);
		__m256 gv = _mm256_maskload_ps(g + i, m), uv = _mm256_maskload_ps(u + i, m);
		__m256 dv = _mm256_maskload_ps(d + i, m);
		__m256 s = sigmoid256(gv);
		__m256 dsilu = _mm256_mul_ps(
			s, _mm256_add_ps(one, _mm256_mul_ps(gv, _mm256_sub_ps(one, s))));
		_mm256_maskstore_ps(du + i, m, _mm256_mul_ps(dv, _mm256_mul_ps(gv, s)));
		_mm256_maskstore_ps(dg + i, m, _mm256_mul_ps(_mm256_mul_ps(dv, uv), dsilu));
	}
}

/* Runs a vector SiLU kernel on F elements if the CPU has one: 1, else 0. */
static int silu_fwd_simd(float *o, const float *g, const float *u, int F)
{
	if (simd_off)
		return 0;
	if (rl_cpu_get()->avx512 && !simd_no512)
		silu_fwd_avx512(o, g, u, F);
	else if (rl_cpu_get()->avx2)
		silu_fwd_avx2(o, g, u, F);
	else
		return 0;
	return 1;
}

static int silu_bwd_simd(float *dg, float *du, const float *d, const float *g, const float *u,
			 int F)
{
	if (simd_off)
		return 0;
	if (rl_cpu_get()->avx512 && !simd_no512)
		silu_bwd_avx512(dg, du, d, g, u, F);
	else if (rl_cpu_get()->avx2)
		silu_bwd_avx2(dg, du, d, g, u, F);
	else
		return 0;
	return 1;
}
#else
static int silu_fwd_simd(float *o, const float *g, const float *u, int F)
{
	(void)o, (void)g, (void)u, (void)F;
	return 0;
}

static int silu_bwd_simd(float *dg, float *du, const float *d, const float *g, const float *u,
			 int F)
{
	(void)dg, (void)du, (void)d, (void)g, (void)u, (void)F;
	return 0;
}
#endif

int rl_ops_simd(int level)
{
	const rl_cpu *c = rl_cpu_get();
	simd_off = level == 0, simd_no512 = level == 2;
	return level == 2 ? c->avx2 : level && (c->avx512 || c->avx2);
}

/* ---- attention ---- */

size_t rl_attention_scratch(int nq, int nkv)
{
	/* nq x nkv scores and as many for the backward; a decoding step's
	 * kernel holds the scores of up to 3 heads (attn_row.h) */
	return (size_t)(nq > 1 ? 2 * nq : 3) * (size_t)nkv;
}

/* transformers' attention-logit soft-capping, in f32 as torch does it:
 * tanh(s / cap) * cap (cap 0: none); its derivative is 1 - tanh^2. */
static inline float softcap_f(float s, float cap)
{
	return cap > 0 ? tanhf(s / cap) * cap : s;
}

static inline double softcap_d(double s, double cap)
{
	return cap > 0 ? tanh(s / cap) * cap : s;
}

/* First visible key of query row i (position p = nkv - nq + i). */
static inline int attn_lo(int p, int window)
{
	return window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
}

static void attention_forward_blas(float *out, int ldo, float *lse, const float *q, int ldq,
				   const float *k, const float *v, int ldk, int nq, int nkv, int nh,
				   int nkvh, int hd, int window, float scale, float cap,
				   float *scratch)
{
	int rep = nh / nkvh;
	float *S = scratch; /* [nq, nkv] */
	for (int h = 0; h < nh; h++) {
		int g = h / rep;
		rl_gemm(RL_N, RL_T, nq, nkv, hd, scale, q + (size_t)h * hd, ldq, k + (size_t)g * hd,
			ldk, 0.0f, S, nkv);
		for (int i = 0; i < nq; i++) {
			float *s = S + (size_t)i * nkv;
			int p = nkv - nq + i, lo = attn_lo(p, window);
			float mx = -INFINITY;
			if (cap > 0)
				for (int j = lo; j <= p; j++)
					s[j] = softcap_f(s[j], cap);
			for (int j = lo; j <= p; j++)
				mx = s[j] > mx ? s[j] : mx;
			float sum = 0;
			for (int j = 0; j < lo; j++)
				s[j] = 0;
			for (int j = lo; j <= p; j++) {
				s[j] = expf(s[j] - mx);
				sum += s[j];
			}
			for (int j = p + 1; j < nkv; j++)
				s[j] = 0;
			float inv = 1.0f / sum;
			for (int j = lo; j <= p; j++)
				s[j] *= inv;
			if (lse)
				lse[(size_t)i * nh + h] = mx + logf(sum);
		}
		rl_gemm(RL_N, RL_N, nq, hd, nkv, 1.0f, S, nkv, v + (size_t)g * hd, ldk, 0.0f,
			out + (size_t)h * hd, ldo);
	}
}

void rl_attention_forward_naive(float *out, int ldo, float *lse, const float *q, int ldq,
				const float *k, const float *v, int ldk, int nq, int nkv, int nh,
				int nkvh, int hd, int window, float scale, float cap)
{
	int rep = nh / nkvh;
	for (int h = 0; h < nh; h++) {
		int g = h / rep;
		for (int i = 0; i < nq; i++) {
			int p = nkv - nq + i, lo = attn_lo(p, window);
			const float *qi = q + (size_t)i * ldq + (size_t)h * hd;
			double mx = -INFINITY;
			for (int j = lo; j <= p; j++) {
				double s = 0;
				for (int d = 0; d < hd; d++)
					s += (double)qi[d] *
					     k[(size_t)j * ldk + (size_t)g * hd + d];
				s = softcap_d(s * scale, cap);
				mx = s > mx ? s : mx;
			}
			double sum = 0;
			for (int j = lo; j <= p; j++) {
				double s = 0;
				for (int d = 0; d < hd; d++)
					s += (double)qi[d] *
					     k[(size_t)j * ldk + (size_t)g * hd + d];
				sum += exp(softcap_d(s * scale, cap) - mx);
			}
			float *o = out + (size_t)i * ldo + (size_t)h * hd;
			for (int d = 0; d < hd; d++) {
				double acc = 0;
				for (int j = lo; j <= p; j++) {
					double s = 0;
					for (int e = 0; e < hd; e++)
						s += (double)qi[e] *
						     k[(size_t)j * ldk + (size_t)g * hd + e];
					acc += exp(softcap_d(s * scale, cap) - mx) *
					       v[(size_t)j * ldk + (size_t)g * hd + d];
				}
				o[d] = (float)(acc / sum);
			}
			if (lse)
				lse[(size_t)i * nh + h] = (float)(mx + log(sum));
		}
	}
}

static void attention_backward_blas(float *dq, int lddq, float *dk, float *dv, int lddk,
				    const float *dout, int ldd, const float *out, int ldo,
				    const float *lse, const float *q, int ldq, const float *k,
				    const float *v, int ldk, int nq, int nkv, int nh, int nkvh,
				    int hd, int window, float scale, float cap, float *scratch)
{
	int rep = nh / nkvh;
	float *P = scratch, *dP = scratch + (size_t)nq * nkv; /* [nq, nkv] each */
	for (int h = 0; h < nh; h++) {
		int g = h / rep;
		const float *qh = q + (size_t)h * hd, *kg = k + (size_t)g * hd,
			    *vg = v + (size_t)g * hd, *doh = dout + (size_t)h * hd;
		/* P = softmax(scale Q K^T), recomputed with the saved log-sum-exp */
		rl_gemm(RL_N, RL_T, nq, nkv, hd, scale, qh, ldq, kg, ldk, 0.0f, P, nkv);
		/* dP = dO V^T */
		rl_gemm(RL_N, RL_T, nq, nkv, hd, 1.0f, doh, ldd, vg, ldk, 0.0f, dP, nkv);
		for (int i = 0; i < nq; i++) {
			float *p_ = P + (size_t)i * nkv, *dp = dP + (size_t)i * nkv;
			int p = nkv - nq + i, lo = attn_lo(p, window);
			float l = lse[(size_t)i * nh + h];
			const float *oi = out + (size_t)i * ldo + (size_t)h * hd,
				    *di = doh + (size_t)i * ldd;
			float D = 0;
			for (int d = 0; d < hd; d++)
				D += oi[d] * di[d];
			for (int j = 0; j < nkv; j++) {
				if (j < lo || j > p) {
					p_[j] = 0;
					dp[j] = 0;
				} else if (cap > 0) {
					float t = tanhf(p_[j] / cap);
					p_[j] = expf(t * cap - l);
					dp[j] = p_[j] * (dp[j] - D) * (1 - t * t); /* dS */
				} else {
					p_[j] = expf(p_[j] - l);
					dp[j] = p_[j] * (dp[j] - D); /* dS */
				}
			}
		}
		/* dQ_h = scale dS K_g; dK_g += scale dS^T Q_h; dV_g += P^T dO_h */
		float beta = h % rep == 0 ? 0.0f : 1.0f;
		rl_gemm(RL_N, RL_N, nq, hd, nkv, scale, dP, nkv, kg, ldk, 0.0f, dq + (size_t)h * hd,
			lddq);
		rl_gemm(RL_T, RL_N, nkv, hd, nq, scale, dP, nkv, qh, ldq, beta, dk + (size_t)g * hd,
			lddk);
		rl_gemm(RL_T, RL_N, nkv, hd, nq, 1.0f, P, nkv, doh, ldd, beta, dv + (size_t)g * hd,
			lddk);
	}
}

static void attention_row_backward(float *dq, float *dk, float *dv, int lddk, const float *dout,
				   const float *out, const float *lse, const float *q,
				   const float *k, const float *v, int ldk, int nkv, int nh,
				   int nkvh, int hd, int window, float scale, float cap)
{
	int rep = nh / nkvh, p = nkv - 1, lo = attn_lo(p, window);
	for (int t = 0; t < nkv; t++)
		for (int c = 0; c < nkvh * hd; c++)
			dk[(size_t)t * lddk + c] = dv[(size_t)t * lddk + c] = 0;
	for (int h = 0; h < nh; h++) {
		int g = h / rep;
		const float *qh = q + (size_t)h * hd, *dh = dout + (size_t)h * hd;
		float *dqh = dq + (size_t)h * hd, D = rl_attn_dot(dh, out + (size_t)h * hd, hd);
		for (int d = 0; d < hd; d++)
			dqh[d] = 0;
		for (int t = lo; t <= p; t++) {
			const float *kt = k + (size_t)t * ldk + (size_t)g * hd;
			const float *vt = v + (size_t)t * ldk + (size_t)g * hd;
			float s = rl_attn_dot(qh, kt, hd) * scale, dcap = 1;
			if (cap > 0) {
				float t_ = tanhf(s / cap);
				s = t_ * cap, dcap = 1 - t_ * t_;
			}
			float P = expf(s - lse[h]);
			float dS = P * (rl_attn_dot(dh, vt, hd) - D) * dcap;
			float *dkt = dk + (size_t)t * lddk + (size_t)g * hd;
			float *dvt = dv + (size_t)t * lddk + (size_t)g * hd;
			for (int d = 0; d < hd; d++) {
				dqh[d] += scale * dS * kt[d];
				dkt[d] += scale * dS * qh[d];
				dvt[d] += P * dh[d];
			}
		}
	}
}

void rl_attention_forward(float *out, int ldo, float *lse, const float *q, int ldq, const float *k,
			  const float *v, int ldk, int nq, int nkv, int nh, int nkvh, int hd,
			  int window, float scale, float cap, float *scratch)
{
	if (nq == 1) { /* a decoding step (attn_row.c) */
		if (simd_off || rl_attn_row_avx2(out, lse, q, k, v, ldk, nkv, nh, nkvh, hd, window,
						 scale, cap, scratch))
			rl_attn_row_portable(out, lse, q, k, v, ldk, nkv, nh, nkvh, hd, window,
					     scale, cap, scratch);
	} else
		attention_forward_blas(out, ldo, lse, q, ldq, k, v, ldk, nq, nkv, nh, nkvh, hd,
				       window, scale, cap, scratch);
}

void rl_attention_backward(float *dq, int lddq, float *dk, float *dv, int lddk, const float *dout,
			   int ldd, const float *out, int ldo, const float *lse, const float *q,
			   int ldq, const float *k, const float *v, int ldk, int nq, int nkv,
			   int nh, int nkvh, int hd, int window, float scale, float cap,
			   float *scratch)
{
	if (nq == 1)
		attention_row_backward(dq, dk, dv, lddk, dout, out, lse, q, k, v, ldk, nkv, nh,
				       nkvh, hd, window, scale, cap);
	else
		attention_backward_blas(dq, lddq, dk, dv, lddk, dout, ldd, out, ldo, lse, q, ldq, k,
					v, ldk, nq, nkv, nh, nkvh, hd, window, scale, cap, scratch);
}

void rl_attention_backward_naive(float *dq, int lddq, float *dk, float *dv, int lddk,
				 const float *dout, int ldd, const float *q, int ldq,
				 const float *k, const float *v, int ldk, int nq, int nkv, int nh,
				 int nkvh, int hd, int window, float scale, float cap)
{
	int rep = nh / nkvh;
	for (int j = 0; j < nkv; j++)
		for (int c = 0; c < nkvh * hd; c++) {
			dk[(size_t)j * lddk + c] = 0;
			dv[(size_t)j * lddk + c] = 0;
		}
	for (int h = 0; h < nh; h++) {
		int g = h / rep;
		for (int i = 0; i < nq; i++) {
			int p = nkv - nq + i, lo = attn_lo(p, window);
			const float *qi = q + (size_t)i * ldq + (size_t)h * hd;
			const float *di = dout + (size_t)i * ldd + (size_t)h * hd;
			float *dqi = dq + (size_t)i * lddq + (size_t)h * hd;
			/* scores, probabilities and dP_j = dO_i . v_j, in double */
			double mx = -INFINITY, sum = 0, D = 0;
			for (int j = lo; j <= p; j++) {
				double s = 0;
				for (int d = 0; d < hd; d++)
					s += (double)qi[d] *
					     k[(size_t)j * ldk + (size_t)g * hd + d];
				s = softcap_d(s * scale, cap);
				mx = s > mx ? s : mx;
			}
			for (int j = lo; j <= p; j++) {
				double s = 0;
				for (int d = 0; d < hd; d++)
					s += (double)qi[d] *
					     k[(size_t)j * ldk + (size_t)g * hd + d];
				sum += exp(softcap_d(s * scale, cap) - mx);
			}
			/* D = sum_j P_j dP_j */
			for (int j = lo; j <= p; j++) {
				double s = 0, dp = 0;
				for (int d = 0; d < hd; d++) {
					s += (double)qi[d] *
					     k[(size_t)j * ldk + (size_t)g * hd + d];
					dp += (double)di[d] *
					      v[(size_t)j * ldk + (size_t)g * hd + d];
				}
				D += exp(softcap_d(s * scale, cap) - mx) / sum * dp;
			}
			for (int d = 0; d < hd; d++)
				dqi[d] = 0;
			for (int j = lo; j <= p; j++) {
				const float *kj = k + (size_t)j * ldk + (size_t)g * hd;
				const float *vj = v + (size_t)j * ldk + (size_t)g * hd;
				double s = 0, dp = 0;
				for (int d = 0; d < hd; d++) {
					s += (double)qi[d] * kj[d];
					dp += (double)di[d] * vj[d];
				}
				double c = softcap_d(s * scale, cap);
				double dc = cap > 0 ? 1 - (c / cap) * (c / cap) : 1;
				double P = exp(c - mx) / sum, dS = P * (dp - D) * dc;
				for (int d = 0; d < hd; d++) {
					dqi[d] += (float)(scale * dS * kj[d]);
					dk[(size_t)j * lddk + (size_t)g * hd + d] +=
						(float)(scale * dS * qi[d]);
					dv[(size_t)j * lddk + (size_t)g * hd + d] +=
						(float)(P * di[d]);
				}
			}
		}
	}
}

/* ---- argmax ---- */

/* Eight running maxima
 * (no loop-carried dependence on one, which made a step's argmaxes over a
 * 150k vocabulary a few percent of decoding), then the first index that
 * holds their maximum; NaN fails every comparison, so it is looked for only
 * when one is seen. */
int rl_argmax(const float *v, int n)
{
	float m[8];
	int nan = 0, i = 0;
	for (int j = 0; j < 8; j++)
		m[j] = -INFINITY;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++) {
			nan |= v[i + j] != v[i + j];
			m[j] = v[i + j] > m[j] ? v[i + j] : m[j];
		}
	for (; i < n; i++) {
		nan |= v[i] != v[i];
		m[0] = v[i] > m[0] ? v[i] : m[0];
	}
	float mx = m[0];
	for (int j = 1; j < 8; j++)
		mx = m[j] > mx ? m[j] : mx;
	for (i = 0; i < n; i++)
		if (isnan(v[i]) || (!nan && v[i] == mx))
			return i;
	return 0; /* n == 0, or every value -inf: index 0 as torch */
}

/* ---- logit soft-capping ---- */

void rl_softcap_forward(float *x, size_t n, float cap)
{
	for (size_t i = 0; i < n; i++)
		x[i] = tanhf(x[i] / cap) * cap;
}

void rl_softcap_backward(float *dx, const float *y, size_t n, float cap)
{
	for (size_t i = 0; i < n; i++) {
		float t = y[i] / cap;
		dx[i] *= 1 - t * t;
	}
}

/* ---- activations ---- */

/* torch: silu(x) = x / (1 + exp(-x));
 * gelu tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)));
 * gelu: 0.5 x (1 + erf(x / sqrt(2))). */
#define GELU_BETA 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_KAPPA 0.044715f

float rl_act_f(rl_act act, float x)
{
	switch (act) {
	case RL_ACT_SILU:
		return x / (1.0f + expf(-x));
	case RL_ACT_GELU_TANH: {
		float inner = GELU_BETA * (x + GELU_KAPPA * x * x * x);
		return 0.5f * x * (1.0f + tanhf(inner));
	}
	case RL_ACT_GELU:
		return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
	}
	return 0;
}

float rl_act_df(rl_act act, float x)
{
	switch (act) {
	case RL_ACT_SILU: {
		float s = 1.0f / (1.0f + expf(-x));
		return s * (1.0f + x * (1.0f - s));
	}
	case RL_ACT_GELU_TANH: {
		float x2 = x * x, inner = GELU_BETA * (x + GELU_KAPPA * x2 * x);
		float th = tanhf(inner);
		float left = 0.5f * x, right = 1.0f + th;
		float dleft = 0.5f * right;
		float dright =
			left * (1.0f - th * th) * GELU_BETA * (1.0f + 3.0f * GELU_KAPPA * x2);
		return dleft + dright;
	}
	case RL_ACT_GELU: {
		float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
		float pdf = expf(-0.5f * x * x) * 0.3989422804014327f; /* 1/sqrt(2 pi) */
		return cdf + x * pdf;
	}
	}
	return 0;
}

typedef struct glu_job {
	float *out;
	const float *dh, *gu;
	int F;
	rl_act act;
} glu_job;

static void glu_rows(void *ctx, size_t t0, size_t t1)
{
	const glu_job *j = ctx;
	int F = j->F;
	for (size_t t = t0; t < t1; t++) {
		const float *g = j->gu + t * 2 * F, *u = g + F;
		float *o = j->out + t * F;
		if (j->act == RL_ACT_SILU && silu_fwd_simd(o, g, u, F))
			continue;
		if (j->act == RL_ACT_SILU)
			for (int i = 0; i < F; i++)
				o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
		else
			for (int i = 0; i < F; i++)
				o[i] = rl_act_f(j->act, g[i]) * u[i];
	}
}

void rl_glu_forward(float *h, const float *gu, int T, int F, rl_act act)
{
	glu_job j = {h, NULL, gu, F, act};
	rl_par_for((size_t)T, 4, glu_rows, &j);
}

static double act_d(rl_act act, double x)
{
	switch (act) {
	case RL_ACT_SILU:
		return x / (1 + exp(-x));
	case RL_ACT_GELU_TANH:
		return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
	case RL_ACT_GELU:
		return 0.5 * x * (1 + erf(x / sqrt(2.0)));
	}
	return 0;
}

static double dact_d(rl_act act, double x)
{
	switch (act) {
	case RL_ACT_SILU: {
		double s = 1 / (1 + exp(-x));
		return s + x * s * (1 - s);
	}
	case RL_ACT_GELU_TANH: {
		double b = sqrt(2 / M_PI), u = b * (x + 0.044715 * x * x * x), th = tanh(u);
		return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * b * (1 + 3 * 0.044715 * x * x);
	}
	case RL_ACT_GELU:
		return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
	}
	return 0;
}

void rl_glu_forward_naive(float *h, const float *gu, int T, int F, rl_act act)
{
	for (int t = 0; t < T; t++)
		for (int i = 0; i < F; i++)
			h[(size_t)t * F + i] = (float)(act_d(act, gu[(size_t)t * 2 * F + i]) *
						       gu[(size_t)t * 2 * F + F + i]);
}

static void glu_back_rows(void *ctx, size_t t0, size_t t1)
{
	const glu_job *j = ctx;
	int F = j->F;
	rl_act act = j->act;
	for (size_t t = t0; t < t1; t++) {
		const float *g = j->gu + t * 2 * F, *u = g + F, *d = j->dh + t * F;
		float *dg = j->out + t * 2 * F, *du = dg + F;
		/* gi, ui read before anything is stored: dgu may equal gu */
		if (act == RL_ACT_SILU && silu_bwd_simd(dg, du, d, g, u, F))
			continue;
		if (act == RL_ACT_SILU) {
			for (int i = 0; i < F; i++) {
				float gi = g[i], ui = u[i], s = 1.0f / (1.0f + expf(-gi));
				du[i] = d[i] * (gi * s);
				dg[i] = d[i] * ui * (s * (1.0f + gi * (1.0f - s)));
			}
		} else {
			for (int i = 0; i < F; i++) {
				float gi = g[i], ui = u[i];
				du[i] = d[i] * rl_act_f(act, gi);
				dg[i] = d[i] * ui * rl_act_df(act, gi);
			}
		}
	}
}

void rl_glu_backward(float *dgu, const float *dh, const float *gu, int T, int F, rl_act act)
{
	glu_job j = {dgu, dh, gu, F, act};
	rl_par_for((size_t)T, 4, glu_back_rows, &j);
}

void rl_glu_backward_naive(float *dgu, const float *dh, const float *gu, int T, int F, rl_act act)
{
	for (int t = 0; t < T; t++)
		for (int i = 0; i < F; i++) {
			double g = gu[(size_t)t * 2 * F + i], u = gu[(size_t)t * 2 * F + F + i];
			double d = dh[(size_t)t * F + i];
			dgu[(size_t)t * 2 * F + i] = (float)(d * u * dact_d(act, g));
			dgu[(size_t)t * 2 * F + F + i] = (float)(d * act_d(act, g));
		}
}

/* ---- objective ---- */

double rl_neg_cos_backward(const float *m, const float *d, int C, float *dm)
{
	double md = 0, mm = 0, dd = 0;
	for (int c = 0; c < C; c++) {
		md += (double)m[c] * d[c];
		mm += (double)m[c] * m[c];
		dd += (double)d[c] * d[c];
	}
	double nm = sqrt(mm), nd = sqrt(dd);
	double cosv = md / (nm * nd);
	/* d(-cos)/dm = -(d / (|m||d|) - cos m / |m|^2) */
	if (dm)
		for (int c = 0; c < C; c++)
			dm[c] = (float)(-(d[c] / (nm * nd) - cosv * m[c] / mm));
	return cosv;
}

typedef struct add_job {
	float *y;
	const float *x;
} add_job;

static void add_range(void *ctx, size_t i0, size_t i1)
{
	const add_job *j = ctx;
	for (size_t i = i0; i < i1; i++)
		j->y[i] += j->x[i];
}

void rl_add_inplace(float *y, const float *x, size_t n)
{
	add_job j = {y, x};
	rl_par_for(n, 1 << 16, add_range, &j);
}
