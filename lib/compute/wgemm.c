/* wgemm.c — x · W^T with W in bf16/f16/f32 as stored (see wgemm.h): the
 * references, the portable path, the choice of kernel, packing the input and
 * splitting the rows of W among threads. The kernels are in wgemm_*.c. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/ops.h"
#include "compute/wgemm.h"
#include "compute/wgemm_kern.h"
#include "core/cpu.h"
#include "core/par.h"

const char *rl_precision_name(rl_precision p)
{
	return p == RL_PREC_BF16 ? "bf16" : "fp32";
}

int rl_precision_parse(const char *s, rl_precision *p)
{
	if (strcmp(s, "fp32") == 0)
		*p = RL_PREC_FP32;
	else if (strcmp(s, "bf16") == 0)
		*p = RL_PREC_BF16;
	else
		return -1;
	return 0;
}

/* ---- references and the portable path ---- */

static float w_at(const void *w, rl_dtype dt, size_t i)
{
	float f;
	rl_widen(dt, (const uint8_t *)w + i * rl_dtype_size(dt), &f, 1);
	return f;
}

static void naive(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
		  const float *bias, int M, int N, int K, int round_x)
{
	for (int m = 0; m < M; m++)
		for (int n = 0; n < N; n++) {
			double s = 0;
			for (int k = 0; k < K; k++) {
				float xv = x[(size_t)m * ldx + k];
				if (round_x)
					xv = rl_bf16_to_f32(rl_f32_to_bf16(xv));
				s += (double)xv * w_at(w, dt, (size_t)n * K + (size_t)k);
			}
			out[(size_t)m * ldo + n] = (float)s + (bias ? bias[n] : 0.0f);
		}
}

void rl_wgemm_naive(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
		    const float *bias, int M, int N, int K)
{
	naive(out, ldo, x, ldx, w, dt, bias, M, N, K, 0);
}

void rl_wgemm_naive_bf16(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
			 const float *bias, int M, int N, int K)
{
	naive(out, ldo, x, ldx, w, dt, bias, M, N, K, 1);
}

static int block_rows(int K)
{
	int r = (int)((1u << 20) / (unsigned)(K > 0 ? K : 1));
	return r < 1 ? 1 : r;
}

size_t rl_wgemm_scratch(int K)
{
	return (size_t)block_rows(K) * (size_t)(K > 0 ? K : 1);
}

/* Widens blocks of rows of W into scratch (NULL: allocated here; without
 * memory, the reference loop) and multiplies them with rl_gemm. */
static int row_invariant; /* rl_wgemm_set_row_invariant */

static void portable(float *out, int ldo, const float *x, int ldx, const uint8_t *w, rl_dtype dt,
		     const float *bias, int M, int N, int K, float *scratch)
{
	if (!scratch) {
		float *own = malloc(sizeof(float) * rl_wgemm_scratch(K));
		if (own)
			portable(out, ldo, x, ldx, w, dt, bias, M, N, K, own);
		else
			naive(out, ldo, x, ldx, w, dt, bias, M, N, K, 0);
		free(own);
		return;
	}
	int R = block_rows(K);
	size_t es = rl_dtype_size(dt);
	for (int r0 = 0; r0 < N; r0 += R) {
		int rr = N - r0 < R ? N - r0 : R;
		rl_widen(dt, w + (size_t)r0 * K * es, scratch, (size_t)rr * K);
		/* row-invariant: one input row per sgemm, whose sums OpenBLAS
		 * may otherwise block by the row count */
		for (int m0 = 0; m0 < M; m0 += row_invariant ? 1 : M)
			rl_linear_forward(out + (size_t)m0 * ldo + r0, ldo, x + (size_t)m0 * ldx,
					  ldx, scratch, bias ? bias + r0 : NULL,
					  row_invariant ? 1 : M, K, rr);
	}
}

/* ---- the kernels and the choice among them ---- */

static int threads_set;
static rl_wgemm_kernel forced;

void rl_wgemm_set_row_invariant(int on)
{
	row_invariant = on;
}

void rl_wgemm_set_threads(int n)
{
	threads_set = n;
}

static const wg_kernel *kernel(rl_wgemm_kernel k)
{
#ifdef WG_X86
	switch (k) {
	case RL_WK_AVX2_DOT:
		return &rl_wk_avx2_dot;
	case RL_WK_AVX2_OUTER:
		return &rl_wk_avx2_outer;
	case RL_WK_AVX512_DOT:
		return &rl_wk_avx512_dot;
	case RL_WK_AVX512_OUTER:
		return &rl_wk_avx512_outer;
	case RL_WK_BF16_DOT:
		return &rl_wk_bf16_dot;
	case RL_WK_BF16_OUTER:
		return &rl_wk_bf16_outer;
	case RL_WK_AMX:
		return &rl_wk_amx;
	default:
		break;
	}
#else
	(void)k;
#endif
	return NULL;
}

const char *rl_wgemm_kernel_name(rl_wgemm_kernel k)
{
	static const char *const names[RL_WK_COUNT] = {"auto",	     "portable",   "avx2-dot",
						       "avx2-outer", "avx512-dot", "avx512-outer",
						       "bf16-dot",   "bf16-outer", "amx"};
	return k >= 0 && k < RL_WK_COUNT ? names[k] : "?";
}

int rl_wgemm_kernel_runs(rl_wgemm_kernel k, rl_dtype dt)
{
	if (dt != RL_DT_F32 && dt != RL_DT_F16 && dt != RL_DT_BF16)
		return k == RL_WK_PORTABLE;
	if (k == RL_WK_PORTABLE)
		return 1;
	const wg_kernel *kn = kernel(k);
	return kn && kn->runs(rl_cpu_get(), dt);
}

int rl_wgemm_kernel_bf16(rl_wgemm_kernel k)
{
	return k == RL_WK_BF16_DOT || k == RL_WK_BF16_OUTER || k == RL_WK_AMX;
}

int rl_wgemm_force(rl_wgemm_kernel k)
{
	if (k != RL_WK_AUTO && !rl_wgemm_kernel_runs(k, RL_DT_BF16) &&
	    !rl_wgemm_kernel_runs(k, RL_DT_F32))
		return 0;
	forced = k;
	return 1;
}

/* The automatic choice (tests/bench/wgemm.c measures the crossovers): the
 * "dot" kernels below 16 rows, where a transposed input would leave lanes
 * idle, the "outer" kernels from 16 rows on; AMX from 4 rows on, where it
 * beats bf16-dot even with most of its 16-input tiles empty (it streams the
 * weights faster: 2-2.5x at 8 rows, measured per CPU second). */
static rl_wgemm_kernel choose(rl_precision prec, rl_dtype dt, int M)
{
	const rl_cpu *c = rl_cpu_get();
	if (prec == RL_PREC_BF16 && dt == RL_DT_BF16) {
		if (c->amx_bf16 && M >= 4)
			return RL_WK_AMX;
		if (c->avx512_bf16)
			return M >= 16 ? RL_WK_BF16_OUTER : RL_WK_BF16_DOT;
	}
	if (c->avx512)
		return M >= 16 ? RL_WK_AVX512_OUTER : RL_WK_AVX512_DOT;
	if (c->avx2)
		return M >= 16 ? RL_WK_AVX2_OUTER : RL_WK_AVX2_DOT;
	return RL_WK_PORTABLE;
}

rl_wgemm_kernel rl_wgemm_pick(rl_precision prec, rl_dtype dt, int M)
{
	if (dt != RL_DT_F32 && dt != RL_DT_F16 && dt != RL_DT_BF16)
		return RL_WK_PORTABLE;
	if (forced != RL_WK_AUTO && rl_wgemm_kernel_runs(forced, dt))
		return forced;
	return choose(prec, dt, row_invariant ? INT32_MAX : M);
}

void rl_wgemm_describe(rl_precision prec, rl_dtype dt, char *buf, size_t cap)
{
	size_t n = 0;
	if (cap)
		buf[0] = '\0';
	int from = 1;
	rl_wgemm_kernel k = rl_wgemm_pick(prec, dt, 1);
	for (int M = 2; M <= 1025 && n < cap; M++) {
		rl_wgemm_kernel k2 = M <= 1024 ? rl_wgemm_pick(prec, dt, M) : RL_WK_AUTO;
		if (k2 == k)
			continue;
		int all = from == 1 && M == 1025;
		if (all)
			n += (size_t)snprintf(buf + n, cap - n, "%s", rl_wgemm_kernel_name(k));
		else if (M == 1025)
			n += (size_t)snprintf(buf + n, cap - n, "%s%s (%d+ rows)",
					      from > 1 ? ", " : "", rl_wgemm_kernel_name(k), from);
		else
			n += (size_t)snprintf(buf + n, cap - n, "%s%s (%d-%d rows)",
					      from > 1 ? ", " : "", rl_wgemm_kernel_name(k), from,
					      M - 1);
		from = M;
		k = k2;
	}
}

/* ---- packing the input ---- */

/* f32 -> bf16, nearest even, NaN kept a NaN: rl_f32_to_bf16, inlined. */
static inline uint32_t to_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	uint32_t r = (u + 0x7FFFu + (u >> 16 & 1u)) >> 16;
	return (u & 0x7FFFFFFFu) > 0x7F800000u ? (u >> 16 | 0x40u) : r;
}

static int round_up(int v, int to)
{
	return (v + to - 1) / to * to;
}

struct pack_job {
	const wg_call *c;
	void *xp;
};

/* Panels of 16 inputs, k in [k0, k1) of each: only the AVX2 and AVX-512
 * kernels take this form. */
static void pack_f32_t(void *ctx, size_t k0, size_t k1)
{
#ifdef WG_X86
	const struct pack_job *p = ctx;
	rl_wk_pack_f32_t_avx2(p->c, p->xp, (int)k0, (int)k1);
#else
	(void)ctx, (void)k0, (void)k1;
#endif
}

static void pack_bf16_rows(void *ctx, size_t m0, size_t m1)
{
	const struct pack_job *p = ctx;
	const wg_call *c = p->c;
	for (size_t m = m0; m < m1; m++) {
		uint16_t *row = (uint16_t *)p->xp + m * (size_t)c->ldp;
		const float *x = c->x + m * (size_t)c->ldx;
		for (int k = 0; k < c->K; k++)
			row[k] = (uint16_t)to_bf16(x[k]);
		for (int k = c->K; k < c->ldp; k++)
			row[k] = 0;
	}
}

/* Panels of 16 inputs, the blocks of 16 pairs [b0, b1) of each: only the
 * AVX-512 kernels (bf16-outer, amx) take this form. */
static void pack_bf16_pairs(void *ctx, size_t b0, size_t b1)
{
#ifdef WG_X86
	const struct pack_job *p = ctx;
	rl_wk_pack_pairs_avx512(p->c, p->xp, (int)b0, (int)b1);
#else
	(void)ctx, (void)b0, (void)b1;
#endif
}

/* Packs c->x as kernel kn wants it into a new buffer (NULL when out of
 * memory), setting c->ldp. */
static void *pack(wg_call *c, const wg_kernel *kn)
{
	struct pack_job p = {c, NULL};
	size_t panels = (size_t)(c->M + 15) / 16, bytes, n, per; /* per: values a unit */
	rl_par_fn fn;
	switch (kn->pack) {
	case WG_PACK_F32_T:
		c->ldp = c->K;
		n = (size_t)c->K;
		per = panels * 16;
		bytes = sizeof(float) * per * n;
		fn = pack_f32_t;
		break;
	case WG_PACK_BF16_ROWS:
		c->ldp = round_up(c->K, 32);
		n = (size_t)c->M;
		per = (size_t)c->ldp;
		bytes = 2 * n * per;
		fn = pack_bf16_rows;
		break;
	case WG_PACK_BF16_PAIRS:
		c->ldp = round_up(c->K, 32) / 2;
		n = (size_t)c->ldp / 16; /* blocks of 16 pairs */
		per = panels * 16 * 32;
		bytes = 4 * panels * 16 * (size_t)c->ldp;
		fn = pack_bf16_pairs;
		break;
	default:
		return NULL;
	}
	p.xp = aligned_alloc(64, (bytes + 63) / 64 * 64);
	if (p.xp)
		rl_par_for(n, (1u << 16) / per + 1, fn, &p); /* small ones in this thread */
	return p.xp;
}

/* ---- running a kernel over the rows of W ---- */

struct run_job {
	const wg_call *c;
	const wg_kernel *kn;
	int per, N;
	char *failed; /* [jobs] */
};

static void run_rows(void *ctx, size_t j0, size_t j1)
{
	const struct run_job *r = ctx;
	for (size_t j = j0; j < j1; j++) {
		int n0 = (int)j * r->per, n1 = n0 + r->per < r->N ? n0 + r->per : r->N;
		if (n0 < n1 && r->kn->rows(r->c, n0, n1) != 0)
			r->failed[j] = 1;
	}
}

void rl_wgemm(float *out, int ldo, const float *x, int ldx, const void *w, rl_dtype dt,
	      const float *bias, int M, int N, int K, rl_precision prec, float *scratch)
{
	if (M <= 0 || N <= 0)
		return;
	const uint8_t *wb = w;
	const wg_kernel *kn = K > 0 ? kernel(rl_wgemm_pick(prec, dt, M)) : NULL;
	if (!kn) {
		portable(out, ldo, x, ldx, wb, dt, bias, M, N, K, scratch);
		return;
	}
	wg_call c = {out, ldo, x, ldx, NULL, 0, wb, dt, (size_t)K * rl_dtype_size(dt), bias, M, K};
	void *xp = NULL;
	if (kn->pack != WG_PACK_NONE && !(c.xp = xp = pack(&c, kn))) {
		portable(out, ldo, x, ldx, wb, dt, bias, M, N, K, scratch);
		return;
	}
	int nt = threads_set > 0 ? threads_set : openblas_get_num_threads();
	if (nt < 1)
		nt = 1;
	if (nt > 64)
		nt = 64;
	/* Each thread gets at least 48 rows, in whole blocks. */
	while (nt > 1 && N / nt < 48)
		nt--;
	char failed[64] = {0};
	struct run_job r = {&c, kn, round_up((N + nt - 1) / nt, kn->block), N, failed};
	rl_par_for((size_t)nt, 1, run_rows, &r);
	for (int t = 0; t < nt; t++) { /* a kernel out of memory: these rows portably */
		int n0 = t * r.per, n1 = n0 + r.per < N ? n0 + r.per : N;
		if (failed[t] && n0 < n1)
			portable(out + n0, ldo, x, ldx, wb + (size_t)n0 * c.row_bytes, dt,
				 bias ? bias + n0 : NULL, M, n1 - n0, K, scratch);
	}
	free(xp);
}
