/* train.c — f32 training of a decoder model: parameters, forward/backward of
 * the next-token cross-entropy over a packed batch, AdamW (see train.h). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/engine.h"
#include "compute/layer.h"
#include "compute/loss.h"
#include "compute/train.h"
#include "core/error.h"
#include "core/finite.h"
#include "core/util.h"

/* ---- parameters ---- */

static const rl_role layer_roles[] = {
	RL_R_ATTN_NORM, RL_R_Q,	       RL_R_Q_BIAS,	 RL_R_K,	 RL_R_K_BIAS,
	RL_R_V,		RL_R_V_BIAS,   RL_R_O,		 RL_R_O_BIAS,	 RL_R_Q_NORM,
	RL_R_K_NORM,	RL_R_MLP_NORM, RL_R_PRE_FF_NORM, RL_R_GATE,	 RL_R_GATE_BIAS,
	RL_R_UP,	RL_R_UP_BIAS,  RL_R_DOWN,	 RL_R_DOWN_BIAS, RL_R_POST_FF_NORM,
	RL_R_QKV,	RL_R_GATE_UP,
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

/* Registers parameter (layer, r). Layer roles are views into the layer's
 * fused engine blocks (value, gradient, moments: four rl_layer_w of the same
 * layout); the global ones get an allocation of their own. */
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
	if (layer >= 0) {
		size_t n[4];
		p->w = rl_layer_w_part(&m->lw[layer], &m->d, r, &n[0]);
		p->g = rl_layer_w_part(&m->lg[layer], &m->d, r, &n[1]);
		p->m = rl_layer_w_part(&m->lm[layer], &m->d, r, &n[2]);
		p->v = rl_layer_w_part(&m->lv[layer], &m->d, r, &n[3]);
		if (!p->w || n[0] != p->numel)
			return rl_error(RL_EDATA, "'%s': not in the engine's layer layout",
					p->name);
	} else {
		/* One allocation for value, gradient and both moments. */
		p->w = rl_calloc(p->numel, 4 * sizeof(float));
		if (!p->w)
			return RL_ESYS;
		p->own = 1;
		p->g = p->w + p->numel;
		p->m = p->g + p->numel;
		p->v = p->m + p->numel;
	}
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
	rl_dims_init(&m->d, c);
	size_t cap = 3 + (size_t)c->n_layers * N_LAYER_ROLES, NL = (size_t)c->n_layers;
	m->p = rl_calloc(cap, sizeof *m->p);
	m->role = rl_calloc((size_t)(c->n_layers + 1) * RL_R_COUNT, sizeof *m->role);
	m->lw = rl_calloc(4 * NL, sizeof *m->lw);
	if (!m->p || !m->role || !m->lw) {
		rl_tmodel_free(m);
		return RL_ESYS;
	}
	m->lg = m->lw + NL;
	m->lm = m->lg + NL;
	m->lv = m->lm + NL;
	int rc = RL_OK;
	for (size_t i = 0; i < 4 * NL && !rc; i++) {
		rc = rl_layer_w_alloc(&m->lw[i], &m->d);
		if (!rc)
			rl_layer_w_zero(&m->lw[i]);
	}
	if (!rc)
		rc = add_param(m, -1, RL_R_EMBED);
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
		if (m->p[i].own)
			free(m->p[i].w);
	for (size_t i = 0; m->lw && i < 4 * (size_t)m->cfg.n_layers; i++)
		rl_layer_w_free(&m->lw[i]);
	free(m->lw);
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
static double unif(uint64_t *s)
{
	return ((double)(rl_splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

void rl_tmodel_randomize(rl_tmodel *m, uint64_t seed, double std)
{
	uint64_t s = seed;
	for (size_t i = 0; i < m->np; i++) {
		rl_tparam *p = &m->p[i];
		if (rl_role_is_norm(p->role)) {
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
		memset(p->m, 0, p->numel * sizeof(float));
		memset(p->v, 0, p->numel * sizeof(float));
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

int rl_tmodel_check_grad(const rl_tmodel *m)
{
	for (size_t i = 0; i < m->np; i++) {
		const rl_tparam *p = &m->p[i];
		size_t bad = rl_f32_nonfinite(p->g, p->numel);
		if (bad == p->numel)
			continue;
		char layer[32] = "";
		if (p->layer >= 0)
			snprintf(layer, sizeof layer, " (layer %d)", p->layer);
		return rl_error(RL_EDATA,
				"the gradient of '%s'%s is %g at element %zu (learning rate too "
				"high, or the model overflows f32?)",
				p->name, layer, (double)p->g[bad], bad);
	}
	return RL_OK;
}

void rl_tmodel_adamw(rl_tmodel *m, const rl_adamw_hp *hp, double lr)
{
	m->t++;
	for (size_t i = 0; i < m->np; i++) {
		rl_tparam *p = &m->p[i];
		rl_adamw_step(p->w, p->g, p->m, p->v, p->numel, hp, lr, m->t, p->decay);
	}
}

/* ---- forward and backward ---- */

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

/* Buffers sized for capT rows and sequences up to maxlen, grown on demand. */
/* A data-parallel worker: its own workspace and gradient accumulators. */
typedef struct worker {
	rl_tws *ws;
	rl_layer_w *lg; /* [NL] */
	float *gE, *gF, *gH;
	float *gmem;
	rl_tbatch sub;
	int *start;
	int cap;
	float scale;
	int grad, rc;
	double loss;
	long n;
	const rl_tmodel *m;
	char err[512];
} worker;

struct rl_tws {
	int nthreads;
	worker *w; /* [nthreads - 1]: workers 1..n-1 (worker 0 is the caller) */
	int capT, maxlen, NL;
	rl_layer_act *act; /* [NL] */
	rl_layer_ws lws;
	float *X;	/* [NL + 1][capT, C]: layer inputs, then the last output */
	float *dA, *dB; /* [capT, C] each: dy / dx ping-pong */
	float *head;	/* [capT, 3C + 1 + V]: labelled rows, normed, rstd, logits */
	int *ibuf;	/* [3 capT]: positions, labelled rows, their targets */
	size_t head_floats;
};

int rl_tws_new(rl_tws **ws)
{
	*ws = rl_calloc(1, sizeof **ws);
	if (*ws)
		(*ws)->nthreads = 1;
	return *ws ? RL_OK : RL_ESYS;
}

static void tws_release(rl_tws *ws)
{
	for (int l = 0; ws->act && l < ws->NL; l++)
		rl_layer_act_free(&ws->act[l]);
	free(ws->act);
	rl_layer_ws_free(&ws->lws);
	free(ws->X);
	free(ws->dA);
	free(ws->head);
	free(ws->ibuf);
	ws->act = NULL;
	ws->X = ws->dA = ws->dB = ws->head = NULL;
	ws->ibuf = NULL;
	ws->capT = ws->maxlen = ws->NL = 0;
}

static void workers_free(rl_tws *ws)
{
	for (int i = 0; ws->w && i < ws->nthreads - 1; i++) {
		worker *w = &ws->w[i];
		rl_tws_free(w->ws);
		for (int l = 0; w->lg && l < ws->NL; l++)
			rl_layer_w_free(&w->lg[l]);
		free(w->lg);
		free(w->gmem);
		free(w->start);
	}
	free(ws->w);
	ws->w = NULL;
	ws->nthreads = 1;
}

void rl_tws_free(rl_tws *ws)
{
	if (!ws)
		return;
	workers_free(ws);
	tws_release(ws);
	free(ws);
}

static int tws_reserve(rl_tws *ws, const rl_tmodel *m, int T, int maxlen)
{
	if (T <= ws->capT && maxlen <= ws->maxlen && ws->NL == m->cfg.n_layers)
		return RL_OK;
	int capT = T > ws->capT ? T + T / 4 : ws->capT;
	int ml = maxlen > ws->maxlen ? maxlen : ws->maxlen;
	tws_release(ws);
	const rl_dims *d = &m->d;
	int NL = m->cfg.n_layers, C = d->C, V = m->cfg.vocab_size;
	size_t TC = (size_t)capT * C;
	ws->act = rl_calloc((size_t)NL, sizeof *ws->act);
	ws->X = rl_malloc_array(((size_t)NL + 1) * TC, sizeof(float));
	ws->dA = rl_malloc_array(2 * TC, sizeof(float));
	/* with a final soft-cap, room for the capped logits too */
	ws->head_floats =
		(size_t)capT * (3 * (size_t)C + 1 + (size_t)V * (m->cfg.final_softcap > 0 ? 2 : 1));
	ws->head = rl_malloc_array(ws->head_floats, sizeof(float));
	ws->ibuf = rl_malloc_array(3 * (size_t)capT, sizeof(int));
	int rc = (!ws->act || !ws->X || !ws->dA || !ws->head || !ws->ibuf) ? RL_ESYS : RL_OK;
	ws->NL = NL;
	for (int l = 0; l < NL && !rc; l++)
		rc = rl_layer_act_alloc(&ws->act[l], d, capT, capT);
	if (!rc)
		rc = rl_layer_ws_alloc(&ws->lws, d, capT, capT, ml, ml);
	if (rc) {
		tws_release(ws);
		return rc;
	}
	ws->dB = ws->dA + TC;
	ws->capT = capT;
	ws->maxlen = ml;
	return RL_OK;
}

/* Forward and backward of b, gradients accumulating into lg (per layer), gE,
 * gF, gH (embedding, final norm, lm_head; gH == gE when tied). */
static int fb(const rl_tmodel *m, const rl_tbatch *b, float scale, int grad, rl_tws *ws,
	      rl_layer_w *lg, float *gE, float *gF, float *gH, double *loss_sum, long *n_labelled)
{
	const rl_config *c = &m->cfg;
	const rl_dims *d = &m->d;
	int C = d->C, V = c->vocab_size, NL = c->n_layers;
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
	int rc = tws_reserve(ws, m, T, maxlen);
	if (rc)
		return rc;
	size_t TC = (size_t)T * C;
	int *pos = ws->ibuf, *rows = ws->ibuf + ws->capT, *tgt = ws->ibuf + 2 * ws->capT;
	for (int s = 0; s < b->n; s++)
		for (int t = b->start[s]; t < b->start[s + 1]; t++)
			pos[t] = t - b->start[s];
	rl_seqs seqs = {.n = b->n, .T = T, .start = b->start, .pos = pos};

	/* Embedding (Gemma scales by sqrt(hidden) rounded to f32), then layers:
	 * X[l] is layer l's input, X[NL] the last output. */
	const float *E = W(m, -1, RL_R_EMBED);
	float escale = rl_embed_scale(c);
	float *X = ws->X;
	for (int t = 0; t < T; t++)
		for (int i = 0; i < C; i++)
			X[(size_t)t * C + i] = E[(size_t)b->ids[t] * C + i] * escale;
	for (int l = 0; l < NL && !rc; l++)
		rc = rl_layer_forward(d, l, &m->lw[l], &m->rope, &seqs, NULL, X + (size_t)l * TC,
				      X + (size_t)(l + 1) * TC, &ws->act[l], &ws->lws, 0);
	if (rc)
		return rc;

	/* Final norm and lm_head on the labelled rows only:
	 * xr [R,C] gathered, xf [R,C] normed, rstd [R], logits [R,V]. */
	const float *xl = X + (size_t)NL * TC;
	float *xr = ws->head, *xf = xr + (size_t)R * C, *rstd = xf + (size_t)R * C,
	      *logits = rstd + R, *dxf = logits + (size_t)R * V, *capped = dxf + (size_t)R * C;
	int r = 0;
	for (int t = 0; t < T; t++)
		if (b->target[t] >= 0) {
			rows[r] = t;
			tgt[r] = b->target[t];
			memcpy(xr + (size_t)r * C, xl + (size_t)t * C, (size_t)C * sizeof *xr);
			r++;
		}
	const float *Wf = W(m, -1, RL_R_FINAL_NORM), *Wh = W(m, -1, RL_R_LM_HEAD);
	rl_rmsnorm_forward(xf, rstd, xr, Wf, R, C, d->eps, d->plus_one);
	rl_linear_forward(logits, V, xf, C, Wh, NULL, R, C, V);
	float cap = (float)c->final_softcap;
	if (cap > 0) {
		rl_softcap_forward(logits, (size_t)R * V, cap);
		if (grad) /* kept for the cap's derivative */
			memcpy(capped, logits, (size_t)R * V * sizeof *capped);
	}
	*loss_sum = rl_xent(grad ? logits : NULL, logits, tgt, R, V, scale);
	*n_labelled = R;
	if (!grad)
		return RL_OK;

	/* Backward: dlogits (in logits) -> the cap -> lm_head, final norm -> dy [T,C]. */
	if (cap > 0)
		rl_softcap_backward(logits, capped, (size_t)R * V, cap);
	memset(dxf, 0, (size_t)R * C * sizeof *dxf);
	rl_linear_backward(dxf, C, gH, NULL, logits, V, xf, C, Wh, R, C, V);
	float *dxr = xf; /* xf is dead */
	memset(dxr, 0, (size_t)R * C * sizeof *dxr);
	rl_rmsnorm_backward(dxr, gF, dxf, xr, Wf, rstd, R, C, d->plus_one);
	float *dy = ws->dA, *dx = ws->dB;
	memset(dy, 0, TC * sizeof *dy);
	for (int i = 0; i < R; i++)
		memcpy(dy + (size_t)rows[i] * C, dxr + (size_t)i * C, (size_t)C * sizeof *dy);
	for (int l = NL - 1; l >= 0 && !rc; l--) {
		rc = rl_layer_backward(d, l, &m->lw[l], &m->rope, &seqs, &ws->act[l], dy, dx,
				       &lg[l], RL_GRAD_LINEAR | RL_GRAD_NORMS, &ws->lws);
		float *t = dy;
		dy = dx;
		dx = t;
	}
	if (rc)
		return rc;
	rl_embed_backward(gE, dy, b->ids, T, C, escale, c->pad_token_id);
	return RL_OK;
}

/* ---- data-parallel threads ---- */

int rl_tws_set_threads(rl_tws *ws, const rl_tmodel *m, int n)
{
	workers_free(ws);
	if (n > 64)
		n = 64;
	if (n <= 1)
		return RL_OK;
	ws->w = rl_calloc((size_t)n - 1, sizeof *ws->w);
	if (!ws->w)
		return RL_ESYS;
	ws->nthreads = n;
	ws->NL = m->cfg.n_layers;
	size_t nE = P(m, -1, RL_R_EMBED)->numel, nF = P(m, -1, RL_R_FINAL_NORM)->numel;
	size_t nH = m->cfg.tie_word_embeddings ? 0 : P(m, -1, RL_R_LM_HEAD)->numel;
	for (int i = 0; i < n - 1; i++) {
		worker *w = &ws->w[i];
		int rc = rl_tws_new(&w->ws);
		w->lg = rc ? NULL : rl_calloc((size_t)ws->NL, sizeof *w->lg);
		w->gmem = rl_calloc(nE + nF + nH, sizeof(float));
		if (rc || !w->lg || !w->gmem) {
			workers_free(ws);
			return RL_ESYS;
		}
		for (int l = 0; l < ws->NL && !rc; l++)
			rc = rl_layer_w_alloc(&w->lg[l], &m->d);
		if (rc) {
			workers_free(ws);
			return rc;
		}
		w->gE = w->gmem;
		w->gF = w->gE + nE;
		w->gH = nH ? w->gF + nF : w->gE;
	}
	return RL_OK;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	rl_tmodel *m = (rl_tmodel *)w->m;
	for (int l = 0; l < m->cfg.n_layers && w->grad; l++)
		rl_layer_w_zero(&w->lg[l]);
	if (w->grad) {
		size_t nE = P(m, -1, RL_R_EMBED)->numel, nF = P(m, -1, RL_R_FINAL_NORM)->numel;
		size_t nH = m->cfg.tie_word_embeddings ? 0 : P(m, -1, RL_R_LM_HEAD)->numel;
		memset(w->gmem, 0, (nE + nF + nH) * sizeof(float));
	}
	w->rc = fb(m, &w->sub, w->scale, w->grad, w->ws, w->lg, w->gE, w->gF, w->gH, &w->loss,
		   &w->n);
	if (w->rc)
		snprintf(w->err, sizeof w->err, "%s", rl_errmsg());
	return NULL;
}

int rl_tmodel_forward_backward(rl_tmodel *m, const rl_tbatch *b, float scale, int grad, rl_tws *ws,
			       double *loss_sum, long *n_labelled)
{
	float *gE = G(m, -1, RL_R_EMBED), *gF = G(m, -1, RL_R_FINAL_NORM),
	      *gH = G(m, -1, RL_R_LM_HEAD);
	int nt = ws->nthreads < b->n ? ws->nthreads : b->n;
	if (nt <= 1)
		return fb(m, b, scale, grad, ws, m->lg, gE, gF, gH, loss_sum, n_labelled);

	/* Split the sequences into nt contiguous chunks of about equal tokens;
	 * chunk 0 runs here, the others on their threads. */
	int T = b->start[b->n], cut[65], k = 1;
	cut[0] = 0;
	for (int s = 1; s < b->n && k < nt; s++)
		if ((long)b->start[s] * nt >= (long)T * k)
			cut[k++] = s;
	nt = k;
	cut[nt] = b->n;
	pthread_t th[64];
	int started[64] = {0};
	for (int i = 1; i < nt; i++) {
		worker *w = &ws->w[i - 1];
		int ns = cut[i + 1] - cut[i];
		if (ns + 1 > w->cap) {
			free(w->start);
			w->start = rl_malloc_array((size_t)ns + 1, sizeof *w->start);
			if (!w->start)
				return RL_ESYS;
			w->cap = ns + 1;
		}
		int off = b->start[cut[i]];
		for (int s = 0; s <= ns; s++)
			w->start[s] = b->start[cut[i] + s] - off;
		w->sub = (rl_tbatch){
			.n = ns, .start = w->start, .ids = b->ids + off, .target = b->target + off};
		w->m = m;
		w->scale = scale;
		w->grad = grad;
		started[i] = pthread_create(&th[i], NULL, worker_main, w) == 0;
		if (!started[i])
			worker_main(w);
	}
	rl_tbatch b0 = {.n = cut[1], .start = b->start, .ids = b->ids, .target = b->target};
	int rc = fb(m, &b0, scale, grad, ws, m->lg, gE, gF, gH, loss_sum, n_labelled);
	for (int i = 1; i < nt; i++) {
		worker *w = &ws->w[i - 1];
		if (started[i])
			pthread_join(th[i], NULL);
		if (!rc && w->rc) {
			rc = rl_error(w->rc, "%s", w->err);
			continue;
		}
		*loss_sum += w->loss;
		*n_labelled += w->n;
		if (!grad || rc)
			continue;
		for (int l = 0; l < m->cfg.n_layers; l++)
			rl_add_inplace(m->lg[l].mem, w->lg[l].mem, m->lg[l].nfloats);
		rl_add_inplace(gE, w->gE, P(m, -1, RL_R_EMBED)->numel);
		rl_add_inplace(gF, w->gF, P(m, -1, RL_R_FINAL_NORM)->numel);
		if (!m->cfg.tie_word_embeddings)
			rl_add_inplace(gH, w->gH, P(m, -1, RL_R_LM_HEAD)->numel);
	}
	return rc;
}
