/* layer.c — a decoder layer's forward and backward over packed tokens (see layer.h). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compute/layer.h"
#include "core/error.h"
#include "core/par.h"
#include "core/util.h"

static double attn_secs;

double rl_layer_attention_seconds(void)
{
	return attn_secs;
}

void rl_dims_init(rl_dims *d, const rl_config *c)
{
	memset(d, 0, sizeof *d);
	d->C = c->hidden_size;
	d->nh = c->n_heads;
	d->nkvh = c->n_kv_heads;
	d->hd = c->head_dim;
	d->F = c->intermediate_size;
	d->qd = d->nh * d->hd;
	d->kvd = d->nkvh * d->hd;
	d->qkv = d->qd + 2 * d->kvd;
	d->eps = (float)c->rms_eps;
	d->plus_one = c->norm_plus_one;
	d->act = c->act;
	/* HF: self.head_dim ** -0.5, Gemma 2: query_pre_attn_scalar ** -0.5 */
	d->scale = (float)pow(
		c->query_pre_attn_scalar > 0 ? c->query_pre_attn_scalar : (double)d->hd, -0.5);
	d->attn_cap = (float)c->attn_softcap;
	d->norms = c->norms;
	d->q_bias = c->attention_bias;
	d->o_bias = c->o_bias;
	d->mlp_bias = c->mlp_bias;
	d->qk_norm = c->qk_norm;
	d->fused = c->fused_proj;
	if (c->qk_norm == RL_QK_NORM_HEAD) {
		d->qn_rows = d->nh, d->kn_rows = d->nkvh;
		d->qn_width = d->kn_width = d->hd;
	} else if (c->qk_norm == RL_QK_NORM_FULL) {
		d->qn_rows = d->kn_rows = 1;
		d->qn_width = d->qd, d->kn_width = d->kvd;
	}
	d->cfg = *c;
}

int rl_dims_window(const rl_dims *d, int layer)
{
	return rl_config_layer_window(&d->cfg, layer);
}

const rl_rope *rl_dims_rope(const rl_dims *d, const rl_rope *r, int layer)
{
	return r->local && rl_config_layer_sliding(&d->cfg, layer) ? r->local : r;
}

/* ---- weights ---- */

static int w_alloc(rl_layer_w *w, const rl_dims *d, int matrices)
{
	memset(w, 0, sizeof *w);
	size_t C = (size_t)d->C, F = (size_t)d->F;
	size_t nm = matrices ? (size_t)d->qkv * C + C * (size_t)d->qd + 2 * F * C + C * F : 0;
	size_t n = nm + 2 * C;
	/* norm1, norm2 (PRE); norm1..norm4 (SANDWICH); norm2, norm4 (POST) */
	n += d->norms == RL_NORMS_SANDWICH ? 2 * C : 0;
	n += d->q_bias ? (size_t)d->qkv : 0;
	n += d->o_bias ? C : 0;
	n += d->mlp_bias ? 2 * F + C : 0;
	n += d->qk_norm ? (size_t)d->qn_width + (size_t)d->kn_width : 0;
	w->mem = rl_malloc_array(n, sizeof(float));
	if (!w->mem)
		return RL_ESYS;
	w->nfloats = n;
	float *p = w->mem;
	if (matrices) {
		w->wqkv = p, p += (size_t)d->qkv * C;
		w->wo = p, p += C * (size_t)d->qd;
		w->wgu = p, p += 2 * F * C;
		w->wd = p, p += C * F;
	}
	if (d->norms != RL_NORMS_POST)
		w->norm1 = p, p += C;
	w->norm2 = p, p += C;
	if (d->norms == RL_NORMS_SANDWICH)
		w->norm3 = p, p += C;
	if (d->norms != RL_NORMS_PRE)
		w->norm4 = p, p += C;
	if (d->q_bias)
		w->bqkv = p, p += d->qkv;
	if (d->o_bias)
		w->bo = p, p += C;
	if (d->mlp_bias) {
		w->bgu = p, p += 2 * F;
		w->bd = p, p += C;
	}
	if (d->qk_norm) {
		w->qnorm = p, p += d->qn_width;
		w->knorm = p, p += d->kn_width;
	}
	w->layer = -1;
	return RL_OK;
}

int rl_layer_w_alloc(rl_layer_w *w, const rl_dims *d)
{
	return w_alloc(w, d, 1);
}

int rl_layer_w_alloc_vectors(rl_layer_w *w, const rl_dims *d)
{
	return w_alloc(w, d, 0);
}

void rl_layer_w_free(rl_layer_w *w)
{
	free(w->mem);
	memset(w, 0, sizeof *w);
}

void rl_layer_w_zero(rl_layer_w *w)
{
	memset(w->mem, 0, w->nfloats * sizeof(float));
}

/* b + off, or NULL for a w without matrices */
static float *at(float *b, size_t off)
{
	return b ? b + off : NULL;
}

float *rl_layer_w_part(const rl_layer_w *w, const rl_dims *d, rl_role r, size_t *numel)
{
	size_t C = (size_t)d->C, F = (size_t)d->F, qd = (size_t)d->qd, kvd = (size_t)d->kvd;
	float *p = NULL;
	size_t n = 0;
	int matrix = 1; /* cleared below for biases and norms */
	if (d->fused &&
	    (r == RL_R_Q || r == RL_R_K || r == RL_R_V || r == RL_R_GATE || r == RL_R_UP))
		r = RL_R_COUNT; /* stored fused: no such tensor */
	if (!d->fused && (r == RL_R_QKV || r == RL_R_GATE_UP))
		r = RL_R_COUNT;
	switch (r) {
	case RL_R_QKV:
		p = w->wqkv, n = (qd + 2 * kvd) * C;
		break;
	case RL_R_GATE_UP:
		p = w->wgu, n = 2 * F * C;
		break;
	case RL_R_Q:
		p = w->wqkv, n = qd * C;
		break;
	case RL_R_K:
		p = at(w->wqkv, qd * C), n = kvd * C;
		break;
	case RL_R_V:
		p = at(w->wqkv, (qd + kvd) * C), n = kvd * C;
		break;
	case RL_R_O:
		p = w->wo, n = C * qd;
		break;
	case RL_R_GATE:
		p = w->wgu, n = F * C;
		break;
	case RL_R_UP:
		p = at(w->wgu, F * C), n = F * C;
		break;
	case RL_R_DOWN:
		p = w->wd, n = C * F;
		break;
	default:
		matrix = 0;
		break;
	}
	switch (r) {
	case RL_R_Q_BIAS:
		p = w->bqkv, n = qd;
		break;
	case RL_R_K_BIAS:
		p = w->bqkv ? w->bqkv + qd : NULL, n = kvd;
		break;
	case RL_R_V_BIAS:
		p = w->bqkv ? w->bqkv + qd + kvd : NULL, n = kvd;
		break;
	case RL_R_O_BIAS:
		p = w->bo, n = C;
		break;
	case RL_R_GATE_BIAS:
		p = w->bgu, n = F;
		break;
	case RL_R_UP_BIAS:
		p = w->bgu ? w->bgu + F : NULL, n = F;
		break;
	case RL_R_DOWN_BIAS:
		p = w->bd, n = C;
		break;
	case RL_R_ATTN_NORM:
		p = w->norm1, n = C;
		break;
	case RL_R_MLP_NORM:
		p = w->norm2, n = C;
		break;
	case RL_R_PRE_FF_NORM:
		p = w->norm3, n = C;
		break;
	case RL_R_POST_FF_NORM:
		p = w->norm4, n = C;
		break;
	case RL_R_Q_NORM:
		p = w->qnorm, n = (size_t)d->qn_width;
		break;
	case RL_R_K_NORM:
		p = w->knorm, n = (size_t)d->kn_width;
		break;
	default:
		break;
	}
	if (numel)
		*numel = p || matrix ? n : 0;
	return p;
}

/* ---- activations and workspace ---- */

/* q and k before their norm, and their 1/rms, per row (0 without qk_norm) */
static size_t qk_raw_floats(const rl_dims *d)
{
	return d->qk_norm ? (size_t)d->qd + (size_t)d->kvd : 0;
}

static size_t qk_rstd_floats(const rl_dims *d)
{
	return d->qk_norm ? (size_t)d->qn_rows + (size_t)d->kn_rows : 0;
}

/* the attention's and the MLP's outputs before their norms, and their 1/rms */
static size_t post_norm_floats(const rl_dims *d)
{
	return d->norms != RL_NORMS_PRE ? 2 * ((size_t)d->C + 1) : 0;
}

size_t rl_layer_act_floats(const rl_dims *d, int capT, int capR)
{
	size_t T = (size_t)capT, R = (size_t)capR;
	return T * (1 + (size_t)d->qkv + qk_raw_floats(d) + qk_rstd_floats(d)) +
	       R * ((size_t)d->C + 1 + 2 * (size_t)d->F + post_norm_floats(d));
}

int rl_layer_act_alloc(rl_layer_act *a, const rl_dims *d, int capT, int capR)
{
	memset(a, 0, sizeof *a);
	size_t n = rl_layer_act_floats(d, capT, capR);
	a->mem = rl_malloc_array(n, sizeof(float));
	if (!a->mem)
		return RL_ESYS;
	a->nfloats = n;
	a->capT = capT;
	a->capR = capR;
	float *p = a->mem;
	size_t T = (size_t)capT, R = (size_t)capR;
	a->rstd1 = p, p += T;
	a->qkv = p, p += T * (size_t)d->qkv;
	if (d->qk_norm) {
		a->qk_raw = p, p += T * qk_raw_floats(d);
		a->qk_rstd = p, p += T * qk_rstd_floats(d);
	}
	a->xm = p, p += R * (size_t)d->C;
	a->rstd2 = p, p += R;
	a->gu = p, p += R * 2 * (size_t)d->F;
	if (d->norms != RL_NORMS_PRE) {
		a->ao = p, p += R * (size_t)d->C;
		a->rstd_ao = p, p += R;
		a->mo = p, p += R * (size_t)d->C;
		a->rstd_mo = p;
	}
	return RL_OK;
}

void rl_layer_act_free(rl_layer_act *a)
{
	free(a->mem);
	memset(a, 0, sizeof *a);
}

/* The widest input of the layer's matrices (rl_wgemm's scratch is per K). */
static int widest(const rl_dims *d)
{
	int k = d->C > d->F ? d->C : d->F;
	return k > d->qd ? k : d->qd;
}

/* backward: with the buffers only the backward uses (dqkv, dxm, dpost) */
static size_t ws_floats(const rl_dims *d, int capT, int capR, int maxlen, int maxkv, int backward)
{
	size_t T = (size_t)capT, R = (size_t)capR, C = (size_t)d->C, F = (size_t)d->F;
	size_t hq = F > (size_t)d->qd ? F : (size_t)d->qd;
	size_t n = T * C	       /* n1 */
		   + R * C	       /* n2 */
		   + R * (size_t)d->qd /* att */
		   + R * (size_t)d->nh /* lse */
		   + R * hq	       /* h, then datt */
		   + (size_t)rl_par_threads() * rl_attention_scratch(maxlen, maxkv) /* attn */
		   + rl_qk_norm_scratch(d, capT)				    /* qk */
		   + rl_wgemm_scratch(widest(d));				    /* wg */
	if (backward)
		n += (size_t)rl_par_threads() * (size_t)maxlen * (size_t)d->qkv /* dqkv */
		     + R * C							/* dxm */
		     + (d->norms != RL_NORMS_PRE ? R * C : 0);			/* dpost */
	return n;
}

size_t rl_layer_ws_floats(const rl_dims *d, int capT, int capR, int maxlen, int maxkv)
{
	return ws_floats(d, capT, capR, maxlen, maxkv, 1);
}

static int ws_alloc(rl_layer_ws *ws, const rl_dims *d, int capT, int capR, int maxlen, int maxkv,
		    int backward)
{
	memset(ws, 0, sizeof *ws);
	size_t n = ws_floats(d, capT, capR, maxlen, maxkv, backward);
	ws->mem = rl_malloc_array(n, sizeof(float));
	if (!ws->mem)
		return RL_ESYS;
	ws->nfloats = n;
	size_t T = (size_t)capT, R = (size_t)capR, C = (size_t)d->C, F = (size_t)d->F;
	size_t hq = F > (size_t)d->qd ? F : (size_t)d->qd;
	float *p = ws->mem;
	ws->n1 = p, p += T * C;
	ws->n2 = p, p += R * C;
	ws->att = p, p += R * (size_t)d->qd;
	ws->lse = p, p += R * (size_t)d->nh;
	ws->h = p, p += R * hq;
	ws->datt = ws->h; /* h is dead when datt is written */
	ws->nscr = rl_par_threads();
	ws->attn = p, p += (size_t)ws->nscr * rl_attention_scratch(maxlen, maxkv);
	ws->qk = d->qk_norm ? p : NULL;
	p += rl_qk_norm_scratch(d, capT);
	ws->wg = p, p += rl_wgemm_scratch(widest(d));
	if (backward) {
		ws->dqkv = p, p += (size_t)ws->nscr * (size_t)maxlen * (size_t)d->qkv;
		ws->dxm = p, p += R * C;
		ws->dpost = d->norms != RL_NORMS_PRE ? p : NULL;
	}
	ws->capT = capT;
	ws->capR = capR;
	ws->maxlen = maxlen;
	ws->maxkv = maxkv;
	return RL_OK;
}

int rl_layer_ws_alloc(rl_layer_ws *ws, const rl_dims *d, int capT, int capR, int maxlen, int maxkv)
{
	return ws_alloc(ws, d, capT, capR, maxlen, maxkv, 1);
}

int rl_layer_ws_alloc_forward(rl_layer_ws *ws, const rl_dims *d, int capT, int capR, int maxlen,
			      int maxkv)
{
	return ws_alloc(ws, d, capT, capR, maxlen, maxkv, 0);
}

void rl_layer_ws_free(rl_layer_ws *ws)
{
	rl_wback_free(&ws->wb);
	free(ws->mem);
	memset(ws, 0, sizeof *ws);
}

/* ---- q/k norm ---- */

size_t rl_qk_norm_scratch(const rl_dims *d, int T)
{
	return 2 * (size_t)T * qk_raw_floats(d);
}

/* Columns [col, col + w) of rows of x [T, ld] to or from a contiguous [T, w]. */
static void gather_cols(float *dst, const float *x, int ld, int col, int w, int T)
{
	for (int t = 0; t < T; t++)
		memcpy(dst + (size_t)t * w, x + (size_t)t * ld + col, (size_t)w * sizeof(float));
}

static void scatter_cols(float *x, int ld, int col, const float *src, int w, int T)
{
	for (int t = 0; t < T; t++)
		memcpy(x + (size_t)t * ld + col, src + (size_t)t * w, (size_t)w * sizeof(float));
}

void rl_qk_norm_forward(const rl_dims *d, const float *qw, const float *kw, float *qkv, int ld,
			int T, float *raw, float *rstd, float *scratch)
{
	if (!d->qk_norm)
		return;
	size_t nq = (size_t)T * d->qd, nk = (size_t)T * d->kvd;
	float *in = raw ? raw : scratch, *out = scratch + nq + nk;
	gather_cols(in, qkv, ld, 0, d->qd, T);
	gather_cols(in + nq, qkv, ld, d->qd, d->kvd, T);
	/* a token's heads are consecutive rows of qn_width */
	rl_rmsnorm_forward(out, rstd, in, qw, T * d->qn_rows, d->qn_width, d->eps, d->plus_one);
	rl_rmsnorm_forward(out + nq, rstd ? rstd + (size_t)T * d->qn_rows : NULL, in + nq, kw,
			   T * d->kn_rows, d->kn_width, d->eps, d->plus_one);
	scatter_cols(qkv, ld, 0, out, d->qd, T);
	scatter_cols(qkv, ld, d->qd, out + nq, d->kvd, T);
}

void rl_qk_norm_backward(const rl_dims *d, const float *qw, const float *kw, float *dqkv, int ld,
			 int T, const float *raw, const float *rstd, float *dqw, float *dkw,
			 float *scratch)
{
	if (!d->qk_norm)
		return;
	size_t nq = (size_t)T * d->qd, nk = (size_t)T * d->kvd;
	float *dout = scratch, *din = scratch + nq + nk;
	gather_cols(dout, dqkv, ld, 0, d->qd, T);
	gather_cols(dout + nq, dqkv, ld, d->qd, d->kvd, T);
	memset(din, 0, (nq + nk) * sizeof(float));
	rl_rmsnorm_backward(din, dqw, dout, raw, qw, rstd, T * d->qn_rows, d->qn_width,
			    d->plus_one);
	rl_rmsnorm_backward(din + nq, dkw, dout + nq, raw + nq, kw, rstd + (size_t)T * d->qn_rows,
			    T * d->kn_rows, d->kn_width, d->plus_one);
	scatter_cols(dqkv, ld, 0, din, d->qd, T);
	scatter_cols(dqkv, ld, d->qd, din + nq, d->kvd, T);
}

/* ---- RoPE ---- */

/* RoPE (or its inverse) over the rows of every sequence of s; with longrope,
 * each sequence's rows with the tables of its last position. */
static void rope_seqs(float *x, int ld, const rl_seqs *s, int nh, const rl_rope *r, int inverse)
{
	void (*f)(float *, int, const int *, int, int, const rl_rope *) =
		inverse ? rl_rope_backward : rl_rope_forward;
	if (!r->long_) {
		f(x, ld, s->pos, s->T, nh, r);
		return;
	}
	for (int i = 0; i < s->n; i++) {
		int r0 = s->start[i], len = s->start[i + 1] - r0;
		f(x + (size_t)r0 * ld, ld, s->pos + r0, len, nh,
		  rl_rope_pass(r, s->pos[r0 + len - 1]));
	}
}

/* ---- the norm layout ---- */

/* The four places a layer may have an RMSNorm, as blocks of w (a layer's
 * weights or its gradients): before attention, on the attention's output,
 * before the MLP, on the MLP's output. NULL where the layout has none. */
typedef struct norm_slots {
	float *attn_in, *attn_out, *mlp_in, *mlp_out;
} norm_slots;

static norm_slots slots(const rl_dims *d, const rl_layer_w *w)
{
	norm_slots n = {w->norm1, NULL, w->norm2, NULL};
	if (d->norms == RL_NORMS_SANDWICH)
		n = (norm_slots){w->norm1, w->norm2, w->norm3, w->norm4};
	if (d->norms == RL_NORMS_POST)
		n = (norm_slots){NULL, w->norm2, NULL, w->norm4};
	return n;
}

/* ---- forward ---- */

static int check_rows(const rl_seqs *s, const rl_layer_act *a, const rl_layer_ws *ws, int R,
		      const rl_kv *kv)
{
	if (s->T > a->capT || R > a->capR || s->T > ws->capT || R > ws->capR)
		return rl_error(RL_USAGE, "layer: %d rows (%d after attention) exceed the buffers",
				s->T, R);
	for (int i = 0; i < s->n; i++) {
		int len = s->start[i + 1] - s->start[i];
		int nkv = len + (kv ? kv->past[i] : 0);
		if (len <= 0 || len > ws->maxlen || nkv > ws->maxkv)
			return rl_error(RL_USAGE,
					"layer: sequence %d (%d rows) exceeds the buffers", i, len);
	}
	return RL_OK;
}

int rl_dims_lora_width(const rl_dims *d)
{
	int m = d->F > d->qd ? d->F : d->qd;
	m = m > d->C ? m : d->C;
	if (d->fused) /* qkv_proj's and gate_up_proj's outputs */
		m = m > d->qkv ? m : d->qkv, m = m > 2 * d->F ? m : 2 * d->F;
	return m;
}

/* The LoRA branch's scratch must hold T rows of the widest input or output. */
static int check_lora(const rl_dims *d, const rl_lora_layer *lo, int T)
{
	if (!lo)
		return RL_OK;
	if (lo->r < 1 || !lo->scr ||
	    lo->scr_floats < rl_lora_scratch_floats(lo->r, T, rl_dims_lora_width(d)))
		return rl_error(RL_USAGE, "layer: LoRA scratch too small for %d rows", T);
	return RL_OK;
}

/* Attention over every sequence of s into ws->att [R, qd] and ws->lse [R, nh]
 * (queries: all rows, or each sequence's last row in last-only mode). With kv,
 * this call's keys and values are appended to the cache first. */
typedef struct attn_job {
	const rl_dims *d;
	int window;
	const rl_seqs *s;
	const rl_kv *kv;
	const rl_layer_act *a;
	rl_layer_ws *ws;
	const float *dy; /* backward: unused here */
} attn_job;

static void attention_seqs(void *ctx, int idx, size_t i0, size_t i1)
{
	const attn_job *j = ctx;
	const rl_dims *d = j->d;
	const rl_seqs *s = j->s;
	const rl_kv *kv = j->kv;
	const rl_layer_act *a = j->a;
	rl_layer_ws *ws = j->ws;
	int qkv = d->qkv, last_only = a->last_only;
	float *scr = ws->attn + (size_t)idx * rl_attention_scratch(ws->maxlen, ws->maxkv);
	for (size_t i = i0; i < i1; i++) {
		int r0 = s->start[i], len = s->start[i + 1] - r0;
		const float *k = a->qkv + (size_t)r0 * qkv + d->qd, *v = k + d->kvd;
		int ldk = qkv, nkv = len;
		if (kv) {
			float *kc = kv->k[i] + (size_t)kv->past[i] * d->kvd;
			float *vc = kv->v[i] + (size_t)kv->past[i] * d->kvd;
			for (int t = 0; t < len; t++) {
				memcpy(kc + (size_t)t * d->kvd, k + (size_t)t * qkv,
				       (size_t)d->kvd * sizeof(float));
				memcpy(vc + (size_t)t * d->kvd, v + (size_t)t * qkv,
				       (size_t)d->kvd * sizeof(float));
			}
			k = kv->k[i], v = kv->v[i], ldk = d->kvd, nkv = kv->past[i] + len;
		}
		int q0 = last_only ? r0 + len - 1 : r0, nq = last_only ? 1 : len;
		int o0 = last_only ? (int)i : r0;
		rl_attention_forward(ws->att + (size_t)o0 * d->qd, d->qd,
				     ws->lse + (size_t)o0 * d->nh, a->qkv + (size_t)q0 * qkv, qkv,
				     k, v, ldk, nq, nkv, d->nh, d->nkvh, d->hd, j->window, d->scale,
				     d->attn_cap, scr);
	}
}

/* Runs fn over the sequences, spread over the thread pool with OpenBLAS held
 * to one thread meanwhile: concurrent single-threaded BLAS calls are safe,
 * concurrent multi-threaded level-3 calls are not (OpenBLAS issue #5836). */
static void over_sequences(attn_job *j, rl_par_fn_idx fn)
{
	int n = j->s->n, slots = j->ws->nscr;
	int pool = n >= 2 && slots >= 2 && rl_par_threads() >= 2;
	if (!pool && !j->ws->blas_single) {
		fn(j, 0, 0, (size_t)n);
		return;
	}
	int blas = rl_blas_get_threads();
	if (blas > 1)
		rl_blas_threads(1);
	if (pool)
		rl_par_for_idx((size_t)n, ((size_t)n + (size_t)slots - 1) / (size_t)slots, fn, j);
	else
		fn(j, 0, 0, (size_t)n);
	if (blas > 1)
		rl_blas_threads(blas);
}

/* Attention over every sequence of s into ws->att [R, qd] and ws->lse [R, nh]
 * (queries: all rows, or each sequence's last row in last-only mode). With kv,
 * this call's keys and values are appended to the cache first. */
static void attention(const rl_dims *d, int window, const rl_seqs *s, const rl_kv *kv,
		      const rl_layer_act *a, rl_layer_ws *ws)
{
	attn_job j = {d, window, s, kv, a, ws, NULL};
	over_sequences(&j, attention_seqs);
}

/* out[T, OC] (ldo) = x[T, IC] (ldx) W^T + bias with W the stored matrix i
 * (q, k, v, o, gate, up, down) at w's precision (rl_layer_w); ws->wg is
 * rl_wgemm's scratch (its portable path's), never allocated per call. */
static void stored(const rl_layer_w *w, rl_layer_ws *ws, int i, float *out, int ldo, const float *x,
		   int ldx, const float *bias, int T, int IC, int OC)
{
	const rl_tensor *t = w->stored[i];
	rl_wgemm(out, ldo, x, ldx, rl_tensor_elem(t, w->stored_at[i]), t->dtype, bias, T, OC, IC,
		 w->prec, ws->wg);
}

int rl_layer_forward(const rl_dims *d, int layer, const rl_layer_w *w, const rl_rope *rope,
		     const rl_seqs *s, const rl_kv *kv, const float *x, float *y, rl_layer_act *a,
		     rl_layer_ws *ws, int flags)
{
	int last_only = (flags & RL_LAYER_LAST_ONLY) != 0;
	int T = s->T, R = last_only ? s->n : T, C = d->C, qkv = d->qkv;
	int rc = check_rows(s, a, ws, R, kv);
	if (!rc)
		rc = check_lora(d, w->lora, T);
	if (rc)
		return rc;
	/* the stored matrices (as stored), or the f32 copies */
	int as_stored = w->as_stored || (w->prec == RL_PREC_BF16 && w->use_stored);
	for (int i = 0; as_stored && i < 7; i++)
		if (!w->stored[i])
			return rl_error(RL_USAGE, "layer %d: no stored matrices to multiply",
					layer);
	a->T = T;
	a->R = R;
	a->last_only = last_only;
	a->x = x;
	int window = rl_dims_window(d, layer);
	rope = rl_dims_rope(d, rope, layer);
	norm_slots nw = slots(d, w);

	/* n1 = rmsnorm(x); qkv = n1 W^T + b; q/k norms; RoPE on q and k */
	const float *in1 = x;
	if (nw.attn_in) {
		rl_rmsnorm_forward(ws->n1, a->rstd1, x, nw.attn_in, T, C, d->eps, d->plus_one);
		in1 = ws->n1;
	}
	if (as_stored) {
		int q = d->qd, k = d->kvd;
		const float *b = w->bqkv;
		stored(w, ws, 0, a->qkv, qkv, in1, C, b, T, C, q);
		stored(w, ws, 1, a->qkv + q, qkv, in1, C, b ? b + q : NULL, T, C, k);
		stored(w, ws, 2, a->qkv + q + k, qkv, in1, C, b ? b + q + k : NULL, T, C, k);
	} else {
		rl_linear_forward(a->qkv, qkv, in1, C, w->wqkv, w->bqkv, T, C, qkv);
	}
	if (w->lora) {
		/* Phi-3's qkv_proj branch (slot Q) spans all of q, k, v */
		rl_lora_forward(w->lora, RL_LORA_Q, in1, C, T, C, a->qkv, qkv,
				d->fused ? qkv : d->qd);
		rl_lora_forward(w->lora, RL_LORA_K, in1, C, T, C, a->qkv + d->qd, qkv, d->kvd);
		rl_lora_forward(w->lora, RL_LORA_V, in1, C, T, C, a->qkv + d->qd + d->kvd, qkv,
				d->kvd);
	}
	rl_qk_norm_forward(d, w->qnorm, w->knorm, a->qkv, qkv, T, a->qk_raw, a->qk_rstd, ws->qk);
	rope_seqs(a->qkv, qkv, s, d->nh, rope, 0);
	rope_seqs(a->qkv + d->qd, qkv, s, d->nkvh, rope, 0);

	double t0 = rl_now();
	attention(d, window, s, kv, a, ws);
	attn_secs += rl_now() - t0;

	/* xm = x + att Wo^T + bo (x at the output rows), that normed first where
	 * the layout has a norm there (ao: before it) */
	float *ao = nw.attn_out ? a->ao : a->xm;
	if (as_stored)
		stored(w, ws, 3, ao, C, ws->att, d->qd, w->bo, R, d->qd, C);
	else
		rl_linear_forward(ao, C, ws->att, d->qd, w->wo, w->bo, R, d->qd, C);
	if (w->lora)
		rl_lora_forward(w->lora, RL_LORA_O, ws->att, d->qd, R, d->qd, ao, C, C);
	if (nw.attn_out)
		rl_rmsnorm_forward(a->xm, a->rstd_ao, a->ao, nw.attn_out, R, C, d->eps,
				   d->plus_one);
	for (int r = 0; r < R; r++) {
		int src = last_only ? s->start[r + 1] - 1 : r;
		float *o = a->xm + (size_t)r * C;
		const float *xr = x + (size_t)src * C;
		for (int c = 0; c < C; c++)
			o[c] = xr[c] + o[c];
	}

	/* y = xm + (act(g) * u) Wd^T + bd, gu = rmsnorm(xm) [Wg; Wu]^T + b (the
	 * MLP's output normed first where the layout says: mo before it) */
	const float *in2 = a->xm;
	if (nw.mlp_in) {
		rl_rmsnorm_forward(ws->n2, a->rstd2, a->xm, nw.mlp_in, R, C, d->eps, d->plus_one);
		in2 = ws->n2;
	}
	if (as_stored) {
		int F = d->F;
		stored(w, ws, 4, a->gu, 2 * F, in2, C, w->bgu, R, C, F);
		stored(w, ws, 5, a->gu + F, 2 * F, in2, C, w->bgu ? w->bgu + F : NULL, R, C, F);
	} else {
		rl_linear_forward(a->gu, 2 * d->F, in2, C, w->wgu, w->bgu, R, C, 2 * d->F);
	}
	if (w->lora) {
		rl_lora_forward(w->lora, RL_LORA_GATE, in2, C, R, C, a->gu, 2 * d->F,
				d->fused ? 2 * d->F : d->F);
		rl_lora_forward(w->lora, RL_LORA_UP, in2, C, R, C, a->gu + d->F, 2 * d->F, d->F);
	}
	rl_glu_forward(ws->h, a->gu, R, d->F, d->act);
	float *mo = nw.mlp_out ? a->mo : y;
	if (as_stored)
		stored(w, ws, 6, mo, C, ws->h, d->F, w->bd, R, d->F, C);
	else
		rl_linear_forward(mo, C, ws->h, d->F, w->wd, w->bd, R, d->F, C);
	if (w->lora)
		rl_lora_forward(w->lora, RL_LORA_DOWN, ws->h, d->F, R, d->F, mo, C, C);
	if (nw.mlp_out)
		rl_rmsnorm_forward(y, a->rstd_mo, a->mo, nw.mlp_out, R, C, d->eps, d->plus_one);
	rl_add_inplace(y, a->xm, (size_t)R * C);
	return RL_OK;
}

/* ---- backward ---- */

/* out[R, IC] (ldo) = dy[R, OC] (ldy) · W, the input gradient of a product
 * with W [OC, IC]: the f32 copy f, or with bf16b the stored matrices first ..
 * first + n - 1 (rows[] each) stacked (wgemm_back.h). */
static int input_grad(const rl_layer_w *w, rl_layer_ws *ws, int bf16b, int first, int n,
		      const int *rows, const float *f, float *out, int ldo, const float *dy,
		      int ldy, int R, int OC, int IC)
{
	if (!bf16b) {
		rl_gemm(RL_N, RL_N, R, IC, OC, 1.0f, dy, ldy, f, IC, 0.0f, out, ldo);
		return RL_OK;
	}
	rl_wblock b[3];
	for (int i = 0; i < n; i++) {
		const rl_tensor *t = w->stored[first + i];
		b[i].w = rl_tensor_elem(t, w->stored_at[first + i]);
		b[i].rows = rows[i];
	}
	return rl_wgemm_back(out, ldo, dy, ldy, b, n, R, IC, &ws->wb);
}

/* The attention backward of sequences [i0, i1): into this thread's scratch,
 * then over those sequences' q, k, v rows (see rl_layer_backward). */
static void attention_back_seqs(void *ctx, int idx, size_t i0, size_t i1)
{
	const attn_job *j = ctx;
	const rl_dims *d = j->d;
	const rl_seqs *s = j->s;
	const rl_layer_act *a = j->a;
	rl_layer_ws *ws = j->ws;
	int qkv = d->qkv, last_only = a->last_only;
	float *sc = ws->dqkv + (size_t)idx * (size_t)ws->maxlen * (size_t)qkv;
	float *scr = ws->attn + (size_t)idx * rl_attention_scratch(ws->maxlen, ws->maxkv);
	for (size_t i = i0; i < i1; i++) {
		int r0 = s->start[i], len = s->start[i + 1] - r0;
		int nq = last_only ? 1 : len, o0 = last_only ? (int)i : r0;
		const float *q = a->qkv + (size_t)(r0 + len - nq) * qkv;
		const float *k = a->qkv + (size_t)r0 * qkv + d->qd, *v = k + d->kvd;
		float *dk = sc + d->qd, *dv = dk + d->kvd;
		if (last_only)
			for (int t = 0; t < len - 1; t++)
				memset(sc + (size_t)t * qkv, 0, (size_t)d->qd * sizeof(float));
		rl_attention_backward(sc + (size_t)(len - nq) * qkv, qkv, dk, dv, qkv,
				      ws->datt + (size_t)o0 * d->qd, d->qd,
				      ws->att + (size_t)o0 * d->qd, d->qd,
				      ws->lse + (size_t)o0 * d->nh, q, qkv, k, v, qkv, nq, len,
				      d->nh, d->nkvh, d->hd, j->window, d->scale, d->attn_cap, scr);
		memcpy(a->qkv + (size_t)r0 * qkv, sc, (size_t)len * qkv * sizeof(float));
	}
}

int rl_layer_backward(const rl_dims *d, int layer, const rl_layer_w *w, const rl_rope *rope,
		      const rl_seqs *s, const rl_layer_act *a, const float *dy, float *dx,
		      rl_layer_w *g, int want, rl_layer_ws *ws)
{
	int T = a->T, R = a->R, C = d->C, F = d->F, qkv = d->qkv, last_only = a->last_only;
	int rc = check_rows(s, a, ws, R, NULL);
	if (!rc)
		rc = check_lora(d, w->lora, T);
	if (rc)
		return rc;
	if (T != s->T)
		return rl_error(RL_USAGE, "layer backward: %d rows, the forward had %d", s->T, T);
	int lin = (want & RL_GRAD_LINEAR) != 0, norms = (want & RL_GRAD_NORMS) != 0;
	int bf16b = w->bf16_backward && w->prec == RL_PREC_BF16 && w->use_stored;
	if (!ws->dxm || (w->as_stored && !bf16b))
		return rl_error(RL_USAGE, "layer %d: backward without %s", layer,
				ws->dxm ? "the f32 matrices" : "a backward workspace");
	int window = rl_dims_window(d, layer);
	rope = rl_dims_rope(d, rope, layer);
	/* LoRA: A and B gradients from each module's output gradient and input,
	 * taken before the input's buffer turns into its gradient; then the
	 * branch's part of that gradient */
	rl_lora_layer *lo = w->lora, *glo = (want & RL_GRAD_LORA) && g ? g->lora : NULL;

	norm_slots nw = slots(d, w), ng = {NULL, NULL, NULL, NULL};
	if (norms)
		ng = slots(d, g);

	/* MLP: h = act(g) * u recomputed; dm = dy through the output's norm (if
	 * any); dWd += dm^T h; dh = dm Wd */
	rl_glu_forward(ws->h, a->gu, R, F, d->act);
	const float *dm = dy;
	if (nw.mlp_out) {
		memset(ws->dpost, 0, (size_t)R * C * sizeof(float));
		rl_rmsnorm_backward(ws->dpost, ng.mlp_out, dy, a->mo, nw.mlp_out, a->rstd_mo, R, C,
				    d->plus_one);
		dm = ws->dpost;
	}
	if (lin)
		rl_linear_backward(NULL, 0, g->wd, g->bd, dm, C, ws->h, F, w->wd, R, F, C);
	if (lo)
		rl_lora_backward_params(lo, glo, RL_LORA_DOWN, ws->h, F, R, F, dm, C, C);
	int one[1] = {C}; /* dh */
	if ((rc = input_grad(w, ws, bf16b, 6, 1, one, w->wd, ws->h, F, dm, C, R, C, F)))
		return rc;
	if (lo)
		rl_lora_backward_input(lo, RL_LORA_DOWN, R, F, ws->h, F);
	float *dgu = a->gu; /* in place: the act is consumed */
	rl_glu_backward(dgu, ws->h, a->gu, R, F, d->act);
	/* dWgu += dgu^T n2; dn2 = dgu Wgu */
	const float *in2 = a->xm;
	if (nw.mlp_in) {
		rl_rmsnorm_forward(ws->n2, NULL, a->xm, nw.mlp_in, R, C, d->eps, d->plus_one);
		in2 = ws->n2;
	}
	if (lin)
		rl_linear_backward(NULL, 0, g->wgu, g->bgu, dgu, 2 * F, in2, C, w->wgu, R, C,
				   2 * F);
	if (lo) {
		rl_lora_backward_params(lo, glo, RL_LORA_GATE, in2, C, R, C, dgu, 2 * F,
					d->fused ? 2 * F : F);
		rl_lora_backward_params(lo, glo, RL_LORA_UP, in2, C, R, C, dgu + F, 2 * F, F);
	}
	int gu_rows[2] = {F, F};
	if ((rc = input_grad(w, ws, bf16b, 4, 2, gu_rows, w->wgu, ws->n2, C, dgu, 2 * F, R, 2 * F,
			     C)))
		return rc;
	if (lo) {
		rl_lora_backward_input(lo, RL_LORA_GATE, R, C, ws->n2, C);
		rl_lora_backward_input(lo, RL_LORA_UP, R, C, ws->n2, C);
	}
	/* dxm = dy + the MLP input norm's backward */
	memcpy(ws->dxm, dy, (size_t)R * C * sizeof(float));
	if (nw.mlp_in)
		rl_rmsnorm_backward(ws->dxm, ng.mlp_in, ws->n2, a->xm, nw.mlp_in, a->rstd2, R, C,
				    d->plus_one);
	else
		rl_add_inplace(ws->dxm, ws->n2, (size_t)R * C);

	/* attention output, recomputed (cheap next to the GEMMs; saves R x qd floats
	 * per cached layer): dao = dxm through the output's norm (if any);
	 * dWo += dao^T att; datt = dao Wo */
	const float *dao = ws->dxm;
	if (nw.attn_out) {
		memset(ws->dpost, 0, (size_t)R * C * sizeof(float));
		rl_rmsnorm_backward(ws->dpost, ng.attn_out, ws->dxm, a->ao, nw.attn_out, a->rstd_ao,
				    R, C, d->plus_one);
		dao = ws->dpost;
	}
	double t0 = rl_now();
	attention(d, window, s, NULL, a, ws);
	attn_secs += rl_now() - t0;
	if (lin)
		rl_linear_backward(NULL, 0, g->wo, g->bo, dao, C, ws->att, d->qd, w->wo, R, d->qd,
				   C);
	if (lo)
		rl_lora_backward_params(lo, glo, RL_LORA_O, ws->att, d->qd, R, d->qd, dao, C, C);
	if ((rc = input_grad(w, ws, bf16b, 3, 1, one, w->wo, ws->datt, d->qd, dao, C, R, C, d->qd)))
		return rc;
	if (lo)
		rl_lora_backward_input(lo, RL_LORA_O, R, d->qd, ws->datt, d->qd);

	/* attention backward per sequence into a scratch, then over that sequence's
	 * q, k, v rows (no longer needed): dqkv [T, qkv] lives in a->qkv. dq is
	 * zero where no query was kept (last-only). */
	float *dqkv = a->qkv;
	attn_job j = {d, window, s, NULL, a, ws, NULL};
	t0 = rl_now();
	over_sequences(&j, attention_back_seqs);
	attn_secs += rl_now() - t0;
	rope_seqs(dqkv, qkv, s, d->nh, rope, 1);
	rope_seqs(dqkv + d->qd, qkv, s, d->nkvh, rope, 1);
	rl_qk_norm_backward(d, w->qnorm, w->knorm, dqkv, qkv, T, a->qk_raw, a->qk_rstd,
			    norms ? g->qnorm : NULL, norms ? g->knorm : NULL, ws->qk);

	/* dWqkv += dqkv^T n1 */
	const float *in1 = a->x;
	if (nw.attn_in) {
		rl_rmsnorm_forward(ws->n1, NULL, a->x, nw.attn_in, T, C, d->eps, d->plus_one);
		in1 = ws->n1;
	}
	if (lin)
		rl_linear_backward(NULL, 0, g->wqkv, g->bqkv, dqkv, qkv, in1, C, w->wqkv, T, C,
				   qkv);
	if (lo) {
		int q = d->qd, k = d->kvd;
		rl_lora_backward_params(lo, glo, RL_LORA_Q, in1, C, T, C, dqkv, qkv,
					d->fused ? qkv : q);
		rl_lora_backward_params(lo, glo, RL_LORA_K, in1, C, T, C, dqkv + q, qkv, k);
		rl_lora_backward_params(lo, glo, RL_LORA_V, in1, C, T, C, dqkv + q + k, qkv, k);
	}
	if (!dx && !norms)
		return RL_OK; /* nothing below needs the input's gradient */

	/* dn1 = dqkv Wqkv; dx = dxm (residual, at the output rows) + rmsnorm1 backward */
	int qkv_rows[3] = {d->qd, d->kvd, d->kvd};
	if ((rc = input_grad(w, ws, bf16b, 0, 3, qkv_rows, w->wqkv, ws->n1, C, dqkv, qkv, T, qkv,
			     C)))
		return rc;
	for (int i = RL_LORA_Q; lo && i <= RL_LORA_V; i++)
		rl_lora_backward_input(lo, i, T, C, ws->n1, C);
	if (dx) {
		if (last_only) {
			memset(dx, 0, (size_t)T * C * sizeof(float));
			for (int i = 0; i < s->n; i++)
				memcpy(dx + (size_t)(s->start[i + 1] - 1) * C,
				       ws->dxm + (size_t)i * C, (size_t)C * sizeof(float));
		} else {
			memcpy(dx, ws->dxm, (size_t)T * C * sizeof(float));
		}
	}
	if (nw.attn_in)
		rl_rmsnorm_backward(dx, ng.attn_in, ws->n1, a->x, nw.attn_in, a->rstd1, T, C,
				    d->plus_one);
	else if (dx)
		rl_add_inplace(dx, ws->n1, (size_t)T * C);
	return RL_OK;
}

/* ---- embeddings ---- */

void rl_embed_backward(float *dE, const float *dx, const int32_t *ids, int T, int C, float scale,
		       int pad)
{
	for (int t = 0; t < T; t++) {
		if (ids[t] == pad)
			continue;
		float *row = dE + (size_t)ids[t] * C;
		for (int c = 0; c < C; c++)
			row[c] += dx[(size_t)t * C + c] * scale;
	}
}
