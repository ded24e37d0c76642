/* lora.c — PEFT's low-rank branch of a Linear layer, forward and backward, and
 * its dropout masks (see lora.h). */
#include <math.h>
#include <string.h>

#include "compute/lora.h"
#include "compute/ops.h"
#include "core/par.h"

static const char *const names[RL_LORA_N] = {"q_proj",	  "k_proj",  "v_proj",	 "o_proj",
					     "gate_proj", "up_proj", "down_proj"};
static const char *const short_names[RL_LORA_N] = {"q", "k", "v", "o", "gate", "up", "down"};

const char *rl_lora_target_name(rl_lora_target i)
{
	return (unsigned)i < RL_LORA_N ? names[i] : "?";
}

static int target_index(const char *s, size_t n)
{
	for (int i = 0; i < RL_LORA_N; i++)
		if ((strlen(names[i]) == n && memcmp(s, names[i], n) == 0) ||
		    (strlen(short_names[i]) == n && memcmp(s, short_names[i], n) == 0))
			return i;
	return -1;
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
		int i = target_index(p, n);
		if (i < 0 || (*set & (1u << i))) {
			*bad = p;
			*badlen = n;
			*set = 0;
			return -1;
		}
		*set |= 1u << i;
		if (!e)
			return 0;
		p = e + 1;
	}
}

/* ---- scratch: du of the seven modules, u, and one dropped input ---- */

size_t rl_lora_scratch_floats(int r, int T, int maxin)
{
	return (size_t)T * (size_t)r * (RL_LORA_N + 1) + (size_t)T * (size_t)maxin;
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

/* Element e = row * in + col is kept when half of the hash of pair e / 2 (the
 * low 32 bits for even e, the high for odd) is at least thr. dst = x * keep,
 * or dst += x * keep with add. */
static void drop_rows(void *ctx, size_t t0, size_t t1)
{
	const drop_job *j = ctx;
	for (size_t t = t0; t < t1; t++) {
		uint64_t e0 = ((uint64_t)j->row0 + t) * (uint64_t)j->in;
		float *o = j->dst + t * (size_t)j->ldd;
		const float *x = j->x ? j->x + t * (size_t)j->ldx : NULL;
		for (int c = 0; c < j->in; c++) {
			uint64_t e = e0 + (uint64_t)c;
			uint64_t h = mix64(j->k + (e >> 1) * 0x9e3779b97f4a7c15ull);
			uint32_t u = (uint32_t)(e & 1 ? h >> 32 : h);
			float keep = u >= j->thr ? j->inv : 0.0f;
			float v = x ? x[c] * keep : keep;
			if (j->add)
				o[c] += v;
			else
				o[c] = v;
		}
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
	rl_gemm(RL_N, RL_T, T, r, in, 1.0f, xin, ld, m->a, in, 0.0f, u, r);
	rl_gemm(RL_N, RL_T, T, out, r, lo->scale, u, r, m->b, r, 1.0f, y, ldy);
}

void rl_lora_backward_params(const rl_lora_layer *lo, rl_lora_layer *g, int i, const float *x,
			     int ldx, int T, int in, const float *dy, int ldd, int out)
{
	const rl_lora_mod *m = &lo->m[i];
	if (!m->a)
		return;
	int r = lo->r;
	float *du = du_slot(lo, i, T);
	/* du = dy B * scale [T, r] */
	rl_gemm(RL_N, RL_N, T, r, out, lo->scale, dy, ldd, m->b, r, 0.0f, du, r);
	if (!g || !g->m[i].a)
		return;
	int ld;
	const float *xin = branch_input(lo, i, x, ldx, T, in, &ld);
	float *u = u_buf(lo, T);
	/* u = drop(x) A^T again; dB += dy^T u * scale; dA += du^T drop(x) */
	rl_gemm(RL_N, RL_T, T, r, in, 1.0f, xin, ld, m->a, in, 0.0f, u, r);
	rl_gemm(RL_T, RL_N, out, r, T, lo->scale, dy, ldd, u, r, 1.0f, g->m[i].b, r);
	rl_gemm(RL_T, RL_N, r, in, T, 1.0f, du, r, xin, ld, 1.0f, g->m[i].a, in);
}

void rl_lora_backward_input(const rl_lora_layer *lo, int i, int T, int in, float *dx, int lddx)
{
	const rl_lora_mod *m = &lo->m[i];
	if (!m->a)
		return;
	int r = lo->r;
	const float *du = du_slot(lo, i, T);
	if (lo->p <= 0.0f) {
		rl_gemm(RL_N, RL_N, T, in, r, 1.0f, du, r, m->a, in, 1.0f, dx, lddx);
		return;
	}
	/* dx += drop(du A): the forward's mask, regenerated from the key */
	float *v = xd_buf(lo, T);
	rl_gemm(RL_N, RL_N, T, in, r, 1.0f, du, r, m->a, in, 0.0f, v, in);
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
