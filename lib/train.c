/* train.c — f32 training of a decoder model: parameters, forward/backward of
 * the next-token cross-entropy over a packed batch, AdamW (see train.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "loss.h"
#include "train.h"

/* ---- parameters ---- */

static const rl_role layer_roles[] = {
	RL_R_ATTN_NORM, RL_R_Q,	      RL_R_Q_BIAS, RL_R_K,	   RL_R_K_BIAS, RL_R_V,
	RL_R_V_BIAS,	RL_R_O,	      RL_R_O_BIAS, RL_R_MLP_NORM,  RL_R_GATE,	RL_R_GATE_BIAS,
	RL_R_UP,	RL_R_UP_BIAS, RL_R_DOWN,   RL_R_DOWN_BIAS,
};
#define N_LAYER_ROLES (sizeof layer_roles / sizeof *layer_roles)

static size_t role_slot(const rl_config *c, int layer, rl_role r)
{
	return (size_t)(layer < 0 ? c->n_layers : layer) * RL_R_COUNT + (size_t)r;
}

static rl_tparam *P(const rl_tmodel *m, int layer, rl_role r)
{
	return m->role[role_slot(&m->cfg, layer, r)];
}

static int add_param(rl_tmodel *m, int layer, rl_role r)
{
	rl_tparam *p = &m->p[m->np];
	memset(p, 0, sizeof *p);
	p->role = r;
	p->layer = layer;
	int rc = rl_role_tensor_name(layer, r, p->name, sizeof p->name);
	if (rc)
		return rc;
	p->ndim = rl_role_shape(&m->cfg, r, p->shape);
	if (p->ndim < 1)
		return rl_error(RL_EDATA, "'%s': no shape for this role", p->name);
	p->numel = 1;
	for (int i = 0; i < p->ndim; i++) {
		if (p->shape[i] <= 0 || (uint64_t)p->shape[i] > (SIZE_MAX / 16) / p->numel)
			return rl_error(RL_EDATA, "'%s': bad shape", p->name);
		p->numel *= (size_t)p->shape[i];
	}
	p->decay = p->ndim == 2;
	/* One allocation for value, gradient and both moments. */
	p->w = rl_calloc(p->numel, 4 * sizeof(float));
	if (!p->w)
		return RL_ESYS;
	p->g = p->w + p->numel;
	p->m = p->g + p->numel;
	p->v = p->m + p->numel;
	m->role[role_slot(&m->cfg, layer, r)] = p;
	m->np++;
	return RL_OK;
}

int rl_tmodel_init(rl_tmodel *m, const rl_config *c)
{
	memset(m, 0, sizeof *m);
	m->cfg = *c;
	if (c->n_layers < 1 || c->hidden_size < 1 || c->vocab_size < 1 || c->head_dim < 2 ||
	    c->head_dim % 2 || c->n_heads < 1 || c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads ||
	    c->intermediate_size < 1 || c->max_position < 1)
		return rl_error(RL_EDATA, "model config: unsupported shape for training");
	size_t cap = 3 + (size_t)c->n_layers * N_LAYER_ROLES;
	m->p = rl_calloc(cap, sizeof *m->p);
	m->role = rl_calloc((size_t)(c->n_layers + 1) * RL_R_COUNT, sizeof *m->role);
	if (!m->p || !m->role) {
		rl_tmodel_free(m);
		return RL_ESYS;
	}
	int rc = add_param(m, -1, RL_R_EMBED);
	for (int l = 0; l < c->n_layers && !rc; l++)
		for (size_t i = 0; i < N_LAYER_ROLES && !rc; i++)
			if (rl_role_present(c, layer_roles[i]))
				rc = add_param(m, l, layer_roles[i]);
	if (!rc)
		rc = add_param(m, -1, RL_R_FINAL_NORM);
	if (!rc && !c->tie_word_embeddings)
		rc = add_param(m, -1, RL_R_LM_HEAD);
	if (!rc && c->tie_word_embeddings)
		m->role[role_slot(c, -1, RL_R_LM_HEAD)] = P(m, -1, RL_R_EMBED);
	if (!rc)
		rc = rl_rope_init(&m->rope, c, c->max_position);
	if (rc)
		rl_tmodel_free(m);
	return rc;
}

void rl_tmodel_free(rl_tmodel *m)
{
	for (size_t i = 0; m->p && i < m->np; i++)
		free(m->p[i].w);
	free(m->p);
	free(m->role);
	rl_rope_free(&m->rope);
	memset(m, 0, sizeof *m);
}

uint64_t rl_tmodel_numel(const rl_tmodel *m)
{
	uint64_t n = 0;
	for (size_t i = 0; i < m->np; i++)
		n += m->p[i].numel;
	return n;
}

/* splitmix64 and Box-Muller: the same numbers on every machine. */
static uint64_t sm64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double unif(uint64_t *s)
{
	return ((double)(sm64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

void rl_tmodel_randomize(rl_tmodel *m, uint64_t seed, double std)
{
	uint64_t s = seed;
	for (size_t i = 0; i < m->np; i++) {
		rl_tparam *p = &m->p[i];
		if (p->role == RL_R_ATTN_NORM || p->role == RL_R_MLP_NORM ||
		    p->role == RL_R_FINAL_NORM) {
			for (size_t j = 0; j < p->numel; j++)
				p->w[j] = m->cfg.norm_plus_one ? 0.0f : 1.0f;
		} else if (p->ndim == 1) {
			memset(p->w, 0, p->numel * sizeof *p->w);
		} else {
			for (size_t j = 0; j < p->numel; j += 2) {
				double u1 = unif(&s), u2 = unif(&s), r = sqrt(-2.0 * log(u1));
				p->w[j] = (float)(std * r * cos(2 * M_PI * u2));
				if (j + 1 < p->numel)
					p->w[j + 1] = (float)(std * r * sin(2 * M_PI * u2));
			}
		}
		memset(p->m, 0, 2 * p->numel * sizeof(float));
	}
	m->t = 0;
}

int rl_tmodel_load(rl_tmodel *m, const rl_model *src)
{
	int rc = rl_tmodel_init(m, &src->cfg);
	if (rc)
		return rc;
	for (size_t i = 0; i < m->np && !rc; i++) {
		rl_tparam *p = &m->p[i];
		const rl_tensor *t = p->layer < 0 ? (p->role == RL_R_EMBED	  ? src->embed
						     : p->role == RL_R_FINAL_NORM ? src->final_norm
										  : src->lm_head)
						  : rl_model_get(src, p->layer, p->role);
		if (!t)
			rc = rl_error(RL_EDATA, "'%s': model has no tensor '%s'", src->dir,
				      p->name);
		else if (t->numel != p->numel)
			rc = rl_error(RL_EDATA, "'%s': tensor '%s' has %llu elements, expected %zu",
				      src->dir, p->name, (unsigned long long)t->numel, p->numel);
		else
			rc = rl_tensor_read_f32(t, 0, t->numel, p->w);
	}
	if (rc)
		rl_tmodel_free(m);
	return rc;
}

int rl_tmodel_save(const rl_tmodel *m, const char *dir, rl_dtype dt)
{
	if (dt != RL_DT_F32 && dt != RL_DT_BF16 && dt != RL_DT_F16)
		return rl_error(RL_USAGE, "models are written as F32, BF16 or F16");
	rl_config c = m->cfg;
	snprintf(c.torch_dtype, sizeof c.torch_dtype, "%s",
		 dt == RL_DT_F32    ? "float32"
		 : dt == RL_DT_BF16 ? "bfloat16"
				    : "float16");
	rl_st_wtensor *t = rl_calloc(m->np, sizeof *t);
	void **buf = rl_calloc(m->np, sizeof *buf);
	int rc = (!t || !buf) ? RL_ESYS : RL_OK;
	for (size_t i = 0; i < m->np && !rc; i++) {
		const rl_tparam *p = &m->p[i];
		t[i].name = p->name;
		t[i].dtype = dt;
		t[i].ndim = p->ndim;
		for (int d = 0; d < p->ndim; d++)
			t[i].shape[d] = p->shape[d];
		if (dt == RL_DT_F32) {
			t[i].data = p->w;
			continue;
		}
		buf[i] = rl_malloc_array(p->numel, rl_dtype_size(dt));
		if (!buf[i]) {
			rc = RL_ESYS;
			break;
		}
		rl_narrow(dt, p->w, buf[i], p->numel);
		t[i].data = buf[i];
	}
	if (!rc)
		rc = rl_model_write(dir, &c, t, m->np, 0);
	for (size_t i = 0; buf && i < m->np; i++)
		free(buf[i]);
	free(buf);
	free(t);
	return rc;
}

void rl_tmodel_zero_grad(rl_tmodel *m)
{
	for (size_t i = 0; i < m->np; i++)
		memset(m->p[i].g, 0, m->p[i].numel * sizeof(float));
}

double rl_tmodel_clip_grad(rl_tmodel *m, double max_norm)
{
	float **gs = rl_malloc_array(m->np, sizeof *gs);
	size_t *ns = rl_malloc_array(m->np, sizeof *ns);
	double norm = 0;
	if (gs && ns) {
		for (size_t i = 0; i < m->np; i++) {
			gs[i] = m->p[i].g;
			ns[i] = m->p[i].numel;
		}
		norm = rl_clip_grad_norm(gs, ns, m->np, max_norm);
	}
	free(gs);
	free(ns);
	return norm;
}

void rl_tmodel_adamw(rl_tmodel *m, const rl_adamw_hp *hp, double lr)
{
	m->t++;
	for (size_t i = 0; i < m->np; i++) {
		rl_tparam *p = &m->p[i];
		rl_adamw_step(p->w, p->g, p->m, p->v, p->numel, hp, lr, m->t, p->decay);
	}
}

/* ---- activations ---- */

/* Per layer, what the backward pass needs (all [T, .] row-major). */
typedef struct lacts {
	float *xin;	    /* [T,D] layer input */
	float *xn1, *rstd1; /* [T,D], [T] */
	float *qkv;	    /* [T, qd + 2 kd]: q, k (rotated), v */
	float *att, *lse;   /* [T, qd], [T, Hq] */
	float *xmid;	    /* [T,D] after the attention residual */
	float *xn2, *rstd2; /* [T,D], [T] */
	float *gu, *h;	    /* [T, 2F], [T, F] */
} lacts;

struct rl_tws {
	size_t cap; /* floats in buf */
	float *buf;
	size_t icap; /* ints in ibuf */
	int *ibuf;
};

int rl_tws_new(rl_tws **ws)
{
	*ws = rl_calloc(1, sizeof **ws);
	return *ws ? RL_OK : RL_ESYS;
}

void rl_tws_free(rl_tws *ws)
{
	if (!ws)
		return;
	free(ws->buf);
	free(ws->ibuf);
	free(ws);
}

static int ws_reserve(rl_tws *ws, size_t floats, size_t ints)
{
	if (floats > ws->cap) {
		free(ws->buf);
		ws->buf = rl_malloc_array(floats, sizeof(float));
		ws->cap = ws->buf ? floats : 0;
		if (!ws->buf)
			return RL_ESYS;
	}
	if (ints > ws->icap) {
		free(ws->ibuf);
		ws->ibuf = rl_malloc_array(ints, sizeof(int));
		ws->icap = ws->ibuf ? ints : 0;
		if (!ws->ibuf)
			return RL_ESYS;
	}
	return RL_OK;
}

/* Carves n floats off *p. */
static float *take(float **p, size_t n)
{
	float *r = *p;
	*p += n;
	return r;
}

static const float *W(const rl_tmodel *m, int l, rl_role r)
{
	const rl_tparam *p = P(m, l, r);
	return p ? p->w : NULL;
}

static float *G(const rl_tmodel *m, int l, rl_role r)
{
	const rl_tparam *p = P(m, l, r);
	return p ? p->g : NULL;
}

static int window_of(const rl_config *c, int layer)
{
	return c->sliding_window > 0 && layer >= c->sliding_window_from ? c->sliding_window : 0;
}

/* One decoder layer forward: a->xin [T,D] in; xout [T,D] out (may be the next
 * layer's xin). */
static void layer_forward(const rl_tmodel *m, int l, const rl_tbatch *b, const int *pos, int T,
			  lacts *a, float *xout, float *tmp, float *scratch)
{
	const rl_config *c = &m->cfg;
	int D = c->hidden_size, hd = c->head_dim, Hq = c->n_heads, Hkv = c->n_kv_heads;
	int qd = Hq * hd, kd = Hkv * hd, ld = qd + 2 * kd, F = c->intermediate_size;
	float eps = (float)c->rms_eps, scale = 1.0f / sqrtf((float)hd);
	int win = window_of(c, l);

	rl_rmsnorm_forward(a->xn1, a->rstd1, a->xin, W(m, l, RL_R_ATTN_NORM), T, D, eps,
			   c->norm_plus_one);
	rl_linear_forward(a->qkv, ld, a->xn1, D, W(m, l, RL_R_Q), W(m, l, RL_R_Q_BIAS), T, D, qd);
	rl_linear_forward(a->qkv + qd, ld, a->xn1, D, W(m, l, RL_R_K), W(m, l, RL_R_K_BIAS), T, D,
			  kd);
	rl_linear_forward(a->qkv + qd + kd, ld, a->xn1, D, W(m, l, RL_R_V), W(m, l, RL_R_V_BIAS), T,
			  D, kd);
	rl_rope_forward(a->qkv, ld, pos, T, Hq, &m->rope);
	rl_rope_forward(a->qkv + qd, ld, pos, T, Hkv, &m->rope);
	for (int s = 0; s < b->n; s++) {
		int st = b->start[s], n = b->start[s + 1] - st;
		const float *q = a->qkv + (size_t)st * ld;
		rl_attention_forward(a->att + (size_t)st * qd, qd, a->lse + (size_t)st * Hq, q, ld,
				     q + qd, q + qd + kd, ld, n, n, Hq, Hkv, hd, win, scale,
				     scratch);
	}
	rl_linear_forward(tmp, D, a->att, qd, W(m, l, RL_R_O), W(m, l, RL_R_O_BIAS), T, qd, D);
	for (size_t i = 0; i < (size_t)T * D; i++)
		a->xmid[i] = a->xin[i] + tmp[i];
	rl_rmsnorm_forward(a->xn2, a->rstd2, a->xmid, W(m, l, RL_R_MLP_NORM), T, D, eps,
			   c->norm_plus_one);
	rl_linear_forward(a->gu, 2 * F, a->xn2, D, W(m, l, RL_R_GATE), W(m, l, RL_R_GATE_BIAS), T,
			  D, F);
	rl_linear_forward(a->gu + F, 2 * F, a->xn2, D, W(m, l, RL_R_UP), W(m, l, RL_R_UP_BIAS), T,
			  D, F);
	rl_glu_forward(a->h, a->gu, T, F, c->act);
	rl_linear_forward(tmp, D, a->h, F, W(m, l, RL_R_DOWN), W(m, l, RL_R_DOWN_BIAS), T, F, D);
	for (size_t i = 0; i < (size_t)T * D; i++)
		xout[i] = a->xmid[i] + tmp[i];
}

/* One decoder layer backward: dx [T,D] holds d loss / d xout on entry and
 * d loss / d xin on return; parameter gradients accumulate. */
static void layer_backward(const rl_tmodel *m, int l, const rl_tbatch *b, const int *pos, int T,
			   const lacts *a, float *dx, float *dxn, float *dqkv, float *datt,
			   float *dgu, float *dh, float *scratch)
{
	const rl_config *c = &m->cfg;
	int D = c->hidden_size, hd = c->head_dim, Hq = c->n_heads, Hkv = c->n_kv_heads;
	int qd = Hq * hd, kd = Hkv * hd, ld = qd + 2 * kd, F = c->intermediate_size;
	float scale = 1.0f / sqrtf((float)hd);
	int win = window_of(c, l);

	/* MLP: xout = xmid + down(act(gate(xn2)) * up(xn2)) */
	memset(dh, 0, (size_t)T * F * sizeof *dh);
	rl_linear_backward(dh, F, G(m, l, RL_R_DOWN), G(m, l, RL_R_DOWN_BIAS), dx, D, a->h, F,
			   W(m, l, RL_R_DOWN), T, F, D);
	rl_glu_backward(dgu, dh, a->gu, T, F, c->act);
	memset(dxn, 0, (size_t)T * D * sizeof *dxn);
	rl_linear_backward(dxn, D, G(m, l, RL_R_GATE), G(m, l, RL_R_GATE_BIAS), dgu, 2 * F, a->xn2,
			   D, W(m, l, RL_R_GATE), T, D, F);
	rl_linear_backward(dxn, D, G(m, l, RL_R_UP), G(m, l, RL_R_UP_BIAS), dgu + F, 2 * F, a->xn2,
			   D, W(m, l, RL_R_UP), T, D, F);
	rl_rmsnorm_backward(dx, G(m, l, RL_R_MLP_NORM), dxn, a->xmid, W(m, l, RL_R_MLP_NORM),
			    a->rstd2, T, D, c->norm_plus_one);

	/* Attention: xmid = xin + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1))) */
	memset(datt, 0, (size_t)T * qd * sizeof *datt);
	rl_linear_backward(datt, qd, G(m, l, RL_R_O), G(m, l, RL_R_O_BIAS), dx, D, a->att, qd,
			   W(m, l, RL_R_O), T, qd, D);
	for (int s = 0; s < b->n; s++) {
		int st = b->start[s], n = b->start[s + 1] - st;
		const float *q = a->qkv + (size_t)st * ld;
		float *dq = dqkv + (size_t)st * ld;
		rl_attention_backward(dq, ld, dq + qd, dq + qd + kd, ld, datt + (size_t)st * qd, qd,
				      a->att + (size_t)st * qd, qd, a->lse + (size_t)st * Hq, q, ld,
				      q + qd, q + qd + kd, ld, n, n, Hq, Hkv, hd, win, scale,
				      scratch);
	}
	rl_rope_backward(dqkv, ld, pos, T, Hq, &m->rope);
	rl_rope_backward(dqkv + qd, ld, pos, T, Hkv, &m->rope);
	memset(dxn, 0, (size_t)T * D * sizeof *dxn);
	rl_linear_backward(dxn, D, G(m, l, RL_R_Q), G(m, l, RL_R_Q_BIAS), dqkv, ld, a->xn1, D,
			   W(m, l, RL_R_Q), T, D, qd);
	rl_linear_backward(dxn, D, G(m, l, RL_R_K), G(m, l, RL_R_K_BIAS), dqkv + qd, ld, a->xn1, D,
			   W(m, l, RL_R_K), T, D, kd);
	rl_linear_backward(dxn, D, G(m, l, RL_R_V), G(m, l, RL_R_V_BIAS), dqkv + qd + kd, ld,
			   a->xn1, D, W(m, l, RL_R_V), T, D, kd);
	rl_rmsnorm_backward(dx, G(m, l, RL_R_ATTN_NORM), dxn, a->xin, W(m, l, RL_R_ATTN_NORM),
			    a->rstd1, T, D, c->norm_plus_one);
}

int rl_tmodel_forward_backward(rl_tmodel *m, const rl_tbatch *b, float scale, int grad, rl_tws *ws,
			       double *loss_sum, long *n_labelled)
{
	const rl_config *c = &m->cfg;
	int D = c->hidden_size, hd = c->head_dim, Hq = c->n_heads, Hkv = c->n_kv_heads;
	int qd = Hq * hd, kd = Hkv * hd, ld = qd + 2 * kd, F = c->intermediate_size;
	int V = c->vocab_size, NL = c->n_layers;
	*loss_sum = 0;
	*n_labelled = 0;
	if (b->n < 1)
		return RL_OK;
	int T = b->start[b->n], maxlen = 0;
	for (int s = 0; s < b->n; s++) {
		int n = b->start[s + 1] - b->start[s];
		if (n < 1 || n > c->max_position)
			return rl_error(RL_EDATA, "sequence %d: %d tokens (the model takes 1..%d)",
					s, n, c->max_position);
		maxlen = n > maxlen ? n : maxlen;
	}
	int R = 0;
	for (int t = 0; t < T; t++) {
		if (b->ids[t] < 0 || b->ids[t] >= V)
			return rl_error(RL_EDATA, "token id %d out of range (vocab %d)", b->ids[t],
					V);
		if (b->target[t] >= V || b->target[t] < -1)
			return rl_error(RL_EDATA, "target id %d out of range (vocab %d)",
					b->target[t], V);
		R += b->target[t] >= 0;
	}

	/* Workspace layout (floats). */
	size_t TD = (size_t)T * D;
	size_t per_layer = TD * 4 + (size_t)T * (2 + ld + qd + Hq + 3 * (size_t)F);
	size_t scr = rl_attention_scratch(maxlen, maxlen);
	size_t head = (size_t)R * (2 * (size_t)D + 1 + (size_t)V) + TD;
	size_t bwd = TD * 2 + (size_t)T * (ld + qd + 3 * (size_t)F);
	size_t need = per_layer * NL + TD /* final x */ + TD /* tmp */ + scr + head + bwd;
	int rc = ws_reserve(ws, need, (size_t)T + (size_t)R * 2 + 1);
	if (rc)
		return rc;
	float *p = ws->buf;
	lacts *acts = rl_malloc_array((size_t)NL, sizeof *acts);
	if (!acts)
		return RL_ESYS;
	for (int l = 0; l < NL; l++) {
		lacts *a = &acts[l];
		a->xin = take(&p, TD);
		a->xn1 = take(&p, TD);
		a->rstd1 = take(&p, (size_t)T);
		a->qkv = take(&p, (size_t)T * ld);
		a->att = take(&p, (size_t)T * qd);
		a->lse = take(&p, (size_t)T * Hq);
		a->xmid = take(&p, TD);
		a->xn2 = take(&p, TD);
		a->rstd2 = take(&p, (size_t)T);
		a->gu = take(&p, (size_t)T * 2 * F);
		a->h = take(&p, (size_t)T * F);
	}
	float *xfin = take(&p, TD), *tmp = take(&p, TD), *scratch = take(&p, scr);
	int *pos = ws->ibuf, *rows = ws->ibuf + T, *tgt = ws->ibuf + T + R;
	for (int s = 0; s < b->n; s++)
		for (int t = b->start[s]; t < b->start[s + 1]; t++)
			pos[t] = t - b->start[s];

	/* Embedding (Gemma scales by sqrt(hidden) rounded to the compute dtype). */
	const float *E = W(m, -1, RL_R_EMBED);
	float norm = c->embed_scale ? (float)sqrt((double)D) : 1.0f;
	float *x0 = acts[0].xin;
	for (int t = 0; t < T; t++)
		for (int i = 0; i < D; i++)
			x0[(size_t)t * D + i] = E[(size_t)b->ids[t] * D + i] * norm;
	for (int l = 0; l < NL; l++)
		layer_forward(m, l, b, pos, T, &acts[l], l + 1 < NL ? acts[l + 1].xin : xfin, tmp,
			      scratch);

	/* Final norm and lm_head on the labelled rows only. */
	float *xr = take(&p, (size_t)R * D), *xf = take(&p, (size_t)R * D),
	      *rstdf = take(&p, (size_t)R), *logits = take(&p, (size_t)R * V);
	int r = 0;
	for (int t = 0; t < T; t++)
		if (b->target[t] >= 0) {
			rows[r] = t;
			tgt[r] = b->target[t];
			memcpy(xr + (size_t)r * D, xfin + (size_t)t * D, (size_t)D * sizeof *xr);
			r++;
		}
	rl_rmsnorm_forward(xf, rstdf, xr, W(m, -1, RL_R_FINAL_NORM), R, D, (float)c->rms_eps,
			   c->norm_plus_one);
	const float *Wh = W(m, -1, RL_R_LM_HEAD);
	rl_linear_forward(logits, V, xf, D, Wh, NULL, R, D, V);
	*loss_sum = rl_xent(grad ? logits : NULL, logits, tgt, R, V, scale);
	*n_labelled = R;
	if (!grad) {
		free(acts);
		return RL_OK;
	}

	/* Backward. */
	float *dx = take(&p, TD), *dxn = take(&p, TD), *dqkv = take(&p, (size_t)T * ld),
	      *datt = take(&p, (size_t)T * qd), *dgu = take(&p, (size_t)T * 2 * F),
	      *dh = take(&p, (size_t)T * F), *dxf = take(&p, TD); /* dxf: [R,D] */
	memset(dxf, 0, (size_t)R * D * sizeof *dxf);
	rl_linear_backward(dxf, D, G(m, -1, RL_R_LM_HEAD), NULL, logits, V, xf, D, Wh, R, D, V);
	/* d xr: reuse xf's storage (xf is no longer needed). */
	float *dxrow = xf;
	memset(dxrow, 0, (size_t)R * D * sizeof *dxrow);
	rl_rmsnorm_backward(dxrow, G(m, -1, RL_R_FINAL_NORM), dxf, xr, W(m, -1, RL_R_FINAL_NORM),
			    rstdf, R, D, c->norm_plus_one);
	memset(dx, 0, TD * sizeof *dx);
	for (int i = 0; i < R; i++)
		memcpy(dx + (size_t)rows[i] * D, dxrow + (size_t)i * D, (size_t)D * sizeof *dx);
	for (int l = NL - 1; l >= 0; l--)
		layer_backward(m, l, b, pos, T, &acts[l], dx, dxn, dqkv, datt, dgu, dh, scratch);
	float *dE = G(m, -1, RL_R_EMBED);
	for (int t = 0; t < T; t++)
		for (int i = 0; i < D; i++)
			dE[(size_t)b->ids[t] * D + i] += dx[(size_t)t * D + i] * norm;
	free(acts);
	return RL_OK;
}
