/* lora.c — PEFT's low-rank branch of a Linear layer, forward and backward, and
 * its dropout masks (see lora.h). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "compute/lora.h"
#include "compute/lowrank.h"
#include "core/par.h"

static const char *const names[RL_LORA_N] = {"q_proj",	  "k_proj",  "v_proj",	 "o_proj",
					     "gate_proj", "up_proj", "down_proj"};
static const char *const short_names[RL_LORA_N] = {"q", "k", "v", "o", "gate", "up", "down"};

const char *rl_lora_target_name(rl_lora_target i)
{
	return (unsigned)i < RL_LORA_N ? names[i] : "?";
}

int rl_lora_slot_used(rl_lora_target i, int fused)
{
	return !fused || (i != RL_LORA_K && i != RL_LORA_V && i != RL_LORA_UP);
}

const char *rl_lora_module_name(rl_lora_target i, int fused)
{
	if (fused && i == RL_LORA_Q)
		return "qkv_proj";
	if (fused && i == RL_LORA_GATE)
		return "gate_up_proj";
	return rl_lora_target_name(i);
}

int rl_lora_targets_fit(unsigned set, int fused)
{
	if (!fused)
		return 0;
	unsigned qkv = set & RL_LORA_QKV_SET, gu = set & RL_LORA_GATE_UP_SET;
	return !((qkv == 0 || qkv == RL_LORA_QKV_SET) && (gu == 0 || gu == RL_LORA_GATE_UP_SET));
}

static int is_name(const char *s, size_t n, const char *name)
{
	return strlen(name) == n && memcmp(s, name, n) == 0;
}

/* The modules a name stands for, as a bit set; 0 when unknown. */
static unsigned target_bits(const char *s, size_t n)
{
	if (is_name(s, n, "qkv_proj") || is_name(s, n, "qkv"))
		return RL_LORA_QKV_SET;
	if (is_name(s, n, "gate_up_proj") || is_name(s, n, "gate_up"))
		return RL_LORA_GATE_UP_SET;
	for (int i = 0; i < RL_LORA_N; i++)
		if (is_name(s, n, names[i]) || is_name(s, n, short_names[i]))
			return 1u << i;
	return 0;
}

int rl_lora_targets_parse(const char *s, unsigned *set, const char **bad, size_t *badlen)
{
	*set = 0;
	*bad = s;
	*badlen = strlen(s);
	if (strcmp(s, "all") == 0) {
		*set = (1u << RL_LORA_N) - 1;
		return 0;
	}
	for (const char *p = s;;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		unsigned bits = target_bits(p, n);
		if (!bits || (*set & bits)) {
			*bad = p;
			*badlen = n;
			*set = 0;
			return -1;
		}
		*set |= bits;
		if (!e)
			return 0;
		p = e + 1;
	}
}

/* ---- scratch: du of the seven modules, u, one dropped input, B^T and its
 * gradient (widths up to maxw: every input and output width is one of the
 * model's C, qd, kvd, F, or a fused module's qd + 2 kvd and 2F) ---- */

size_t rl_lora_scratch_floats(int r, int T, int maxw)
{
	return (size_t)T * (size_t)r * (RL_LORA_N + 1) + (size_t)T * (size_t)maxw +
	       2 * (size_t)r * (size_t)maxw;
}

static float *du_slot(const rl_lora_layer *lo, int i, int T)
{
	return lo->scr + (size_t)i * (size_t)T * (size_t)lo->r;
}

static float *u_buf(const rl_lora_layer *lo, int T)
{
	return lo->scr + (size_t)RL_LORA_N * (size_t)T * (size_t)lo->r;
}

static float *xd_buf(const rl_lora_layer *lo, int T)
{
	return u_buf(lo, T) + (size_t)T * (size_t)lo->r;
}

/* B^T [r, out] and dB^T at the scratch's end: rl_lora_scratch_floats leaves
 * 2 r maxw floats beyond the dropped input's T rows, out <= maxw. */
static float *bt_buf(const rl_lora_layer *lo, int out)
{
	return lo->scr + lo->scr_floats - 2 * (size_t)lo->r * (size_t)out;
}

/* bt[r, out] = b[out, r]^T */
static float *transpose_b(const rl_lora_layer *lo, const float *b, int out)
{
	float *bt = bt_buf(lo, out);
	for (int o = 0; o < out; o++)
		for (int k = 0; k < lo->r; k++)
			bt[(size_t)k * out + o] = b[(size_t)o * lo->r + k];
	return bt;
}

/* ---- dropout masks ---- */

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

typedef struct drop_job {
	float *dst;	/* [T, ldd] */
	const float *x; /* [T, ldx], or NULL: the mask itself */
	int ldx, ldd, in, add, row0;
	uint32_t thr;
	float inv;
	uint64_t k;
} drop_job;

/* Element (row, col) is kept when fmix32(rowkey ^ col * golden) >= thr,
 * rowkey the low half of a 64-bit mix of (module key, row): murmur3's
 * finalizer is a bijection with full avalanche, so the columns of a row get
 * independent-looking draws, and the 32-bit arithmetic vectorizes. Both
 * paths below give the same masks. */
static uint32_t fmix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

static uint32_t row_key(const drop_job *j, size_t t)
{
	return (uint32_t)mix64(j->k + ((uint64_t)j->row0 + t) * 0x9e3779b97f4a7c15ull);
}

static void drop_row(const drop_job *j, size_t t, float *o, const float *x)
{
	uint32_t rk = row_key(j, t);
	for (int c = 0; c < j->in; c++) {
		float keep = fmix32(rk ^ ((uint32_t)c * 0x9e3779b9u)) >= j->thr ? j->inv : 0.0f;
		float v = x ? x[c] * keep : keep;
		o[c] = j->add ? o[c] + v : v;
	}
}

#define AVX512 __attribute__((target("avx512f,avx512dq")))

static AVX512 void drop_row_avx512(const drop_job *j, size_t t, float *o, const float *x)
{
	const __m512i iota =
		_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	const __m512i rk = _mm512_set1_epi32((int)row_key(j, t)),
		      thr = _mm512_set1_epi32((int)j->thr);
	const __m512 inv = _mm512_set1_ps(j->inv), one = _mm512_set1_ps(1.0f);
	for (int c = 0; c < j->in; c += 16) {
		__mmask16 m =
			j->in - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (j->in - c)) - 1);
		__m512i h = _mm512_mullo_epi32(_mm512_add_epi32(_mm512_set1_epi32(c), iota),
					       _mm512_set1_epi32((int)0x9e3779b9u));
		h = _mm512_xor_si512(h, rk);
		h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
		h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0x85ebca6bu));
		h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 13));
		h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0xc2b2ae35u));
		h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
		__mmask16 keep = _mm512_cmpge_epu32_mask(h, thr);
		__m512 xv = x ? _mm512_maskz_loadu_ps(m, x + c) : one;
		__m512 v = _mm512_maskz_mul_ps(keep, xv, inv);
		if (j->add)
			v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, o + c), v);
		_mm512_mask_storeu_ps(o + c, m, v);
	}
}

static int use_simd = -1;

static int have_avx512(void)
{
	if (use_simd < 0) {
		__builtin_cpu_init();
		use_simd = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
	}
	return use_simd;
}

int rl_lora_simd(int on)
{
	use_simd = on ? -1 : 0;
	return have_avx512();
}

static void drop_rows(void *ctx, size_t t0, size_t t1)
{
	const drop_job *j = ctx;
	int simd = have_avx512();
	for (size_t t = t0; t < t1; t++) {
		float *o = j->dst + t * (size_t)j->ldd;
		const float *x = j->x ? j->x + t * (size_t)j->ldx : NULL;
		if (simd)
			drop_row_avx512(j, t, o, x);
		else
			drop_row(j, t, o, x);
	}
}

static void drop_apply(float *dst, int ldd, int add, const float *x, int ldx, int T, int in,
		       float p, uint64_t key, int row0, int i)
{
	double t = ldexp((double)p, 32);
	drop_job j = {.dst = dst,
		      .x = x,
		      .ldx = ldx,
		      .ldd = ldd,
		      .in = in,
		      .add = add,
		      .row0 = row0,
		      .thr = t >= 4294967295.0 ? 0xffffffffu : (uint32_t)t,
		      .inv = (float)(1.0 / (1.0 - (double)p)),
		      .k = mix64(key ^ ((uint64_t)(i + 1) * 0xd1b54a32d192ed03ull))};
	rl_par_for((size_t)T, 16, drop_rows, &j);
}

void rl_lora_dropout(float *xd, const float *x, int ldx, int T, int in, float p, uint64_t key,
		     int row0, int i)
{
	drop_apply(xd, in, 0, x, ldx, T, in, p, key, row0, i);
}

/* The branch's input: x itself without dropout, else drop(x) in the scratch. */
static const float *branch_input(const rl_lora_layer *lo, int i, const float *x, int ldx, int T,
				 int in, int *ld)
{
	if (lo->p <= 0.0f) {
		*ld = ldx;
		return x;
	}
	float *xd = xd_buf(lo, T);
	rl_lora_dropout(xd, x, ldx, T, in, lo->p, lo->key, lo->row0, i);
	*ld = in;
	return xd;
}

/* ---- forward and backward ---- */

void rl_lora_forward(const rl_lora_layer *lo, int i, const float *x, int ldx, int T, int in,
		     float *y, int ldy, int out)
{
	const rl_lora_mod *m = &lo->m[i];
	if (!m->a)
		return;
	int r = lo->r, ld;
	const float *xin = branch_input(lo, i, x, ldx, T, in, &ld);
	float *u = u_buf(lo, T);
	/* u = drop(x) A^T; y += (u B^T) * scale */
	rl_lowrank_rowdot(u, r, 1.0f, xin, ld, m->a, T, in, r);
	rl_lowrank_rankr(y, ldy, lo->scale, u, r, transpose_b(lo, m->b, out), T, out, r);
}

void rl_lora_backward_params(const rl_lora_layer *lo, rl_lora_layer *g, int i, const float *x,
			     int ldx, int T, int in, const float *dy, int ldd, int out)
{
	const rl_lora_mod *m = &lo->m[i];
	if (!m->a)
		return;
	int r = lo->r;
	float *du = du_slot(lo, i, T), *bt = transpose_b(lo, m->b, out);
	/* du = dy B * scale [T, r] */
	rl_lowrank_rowdot(du, r, lo->scale, dy, ldd, bt, T, out, r);
	if (!g || !g->m[i].a)
		return;
	int ld;
	const float *xin = branch_input(lo, i, x, ldx, T, in, &ld);
	float *u = u_buf(lo, T), *dbt = bt + (size_t)r * out;
	/* u = drop(x) A^T again; dB += (u^T dy)^T * scale; dA += du^T drop(x) */
	rl_lowrank_rowdot(u, r, 1.0f, xin, ld, m->a, T, in, r);
	memset(dbt, 0, (size_t)r * out * sizeof *dbt);
	rl_lowrank_outer(dbt, lo->scale, u, r, dy, ldd, T, out, r);
	float *gb = g->m[i].b;
	for (int o = 0; o < out; o++)
		for (int k = 0; k < r; k++)
			gb[(size_t)o * r + k] += dbt[(size_t)k * out + o];
	rl_lowrank_outer(g->m[i].a, 1.0f, du, r, xin, ld, T, in, r);
}

void rl_lora_backward_input(const rl_lora_layer *lo, int i, int T, int in, float *dx, int lddx)
{
	const rl_lora_mod *m = &lo->m[i];
	if (!m->a)
		return;
	int r = lo->r;
	const float *du = du_slot(lo, i, T);
	if (lo->p <= 0.0f) {
		rl_lowrank_rankr(dx, lddx, 1.0f, du, r, m->a, T, in, r);
		return;
	}
	/* dx += drop(du A): the forward's mask, regenerated from the key */
	float *v = xd_buf(lo, T);
	memset(v, 0, (size_t)T * in * sizeof *v);
	rl_lowrank_rankr(v, in, 1.0f, du, r, m->a, T, in, r);
	drop_apply(dx, lddx, 1, v, in, T, in, lo->p, lo->key, lo->row0, i);
}

void rl_lora_init_a(float *a, int r, int in, uint64_t seed)
{
	double bound = 1.0 / sqrt((double)in);
	uint64_t s = seed;
	for (size_t k = 0; k < (size_t)r * (size_t)in; k++) {
		s += 0x9e3779b97f4a7c15ull;
		double u = (double)(mix64(s) >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
		a[k] = (float)((2.0 * u - 1.0) * bound);
	}
}
