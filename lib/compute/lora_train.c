/* lora_train.c — LoRA fine-tuning over a memory-mapped base: the adapters and
 * their optimizer, and the bounded-memory forward/backward (see
 * lora_train.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/engine.h"
#include "compute/lora_train.h"
#include "compute/loss.h"
#include "core/cli.h"
#include "core/error.h"
#include "core/finite.h"
#include "core/par.h"
#include "core/util.h"

void rl_lora_cfg_default(rl_lora_cfg *c)
{
	c->r = 8;
	c->alpha = 16;
	c->rslora = 0;
	c->dropout = 0.05;
	c->targets = (1u << RL_LORA_N) - 1;
}

/* The base's tensor a module adapts (lora.h: on a fused model slot Q is
 * qkv_proj and slot GATE gate_up_proj). */
static rl_role mod_role(const rl_dims *d, int i)
{
	static const rl_role role[RL_LORA_N] = {RL_R_Q,	   RL_R_K,  RL_R_V,   RL_R_O,
						RL_R_GATE, RL_R_UP, RL_R_DOWN};
	if (d->fused && i == RL_LORA_Q)
		return RL_R_QKV;
	if (d->fused && i == RL_LORA_GATE)
		return RL_R_GATE_UP;
	return role[i];
}

static void mod_dims(const rl_dims *d, int i, int *in, int *out)
{
	switch (i) {
	case RL_LORA_Q:
		*in = d->C, *out = d->fused ? d->qkv : d->qd;
		break;
	case RL_LORA_K:
	case RL_LORA_V:
		*in = d->C, *out = d->kvd;
		break;
	case RL_LORA_O:
		*in = d->qd, *out = d->C;
		break;
	case RL_LORA_GATE:
		*in = d->C, *out = d->fused ? 2 * d->F : d->F;
		break;
	case RL_LORA_UP:
		*in = d->C, *out = d->F;
		break;
	default:
		*in = d->F, *out = d->C;
		break;
	}
}

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- buffers ---- */

struct rl_lws {
	int capT, keep;	   /* rows; layers with activations of their own */
	int maxlen;	   /* longest sequence the attention scratch takes */
	int capR;	   /* head rows per group */
	float *X;	   /* [n_layers + 1][capT, C]: layer inputs, then the output */
	rl_layer_act *act; /* [n_layers]: kept activations (mem NULL: recomputed) */
	rl_layer_act sact; /* the others' */
	rl_layer_ws lws;
	rl_layer_w w; /* the widened layer */
	float *lscr;  /* LoRA scratch */
	size_t lscr_floats;
	float *dA, *dB; /* [capT, C] */
	float *head;	/* xr, xf, dxf [capT, C]; rstd [capT]; logits [capR, V] (twice
		      * with a final soft-cap: the capped ones kept); block */
	size_t block_rows;
	int *ibuf; /* pos, rows, tgt [capT] each */
	int *start;
	int cap_start;
};

static void lws_release(rl_lws *ws, int NL)
{
	for (int l = 0; ws->act && l < NL; l++)
		rl_layer_act_free(&ws->act[l]);
	free(ws->act);
	rl_layer_act_free(&ws->sact);
	rl_layer_ws_free(&ws->lws);
	free(ws->X);
	free(ws->lscr);
	free(ws->dA);
	free(ws->head);
	free(ws->ibuf);
	rl_layer_w *w = &ws->w;
	rl_layer_w_free(w);
	int *start = ws->start, cap = ws->cap_start;
	memset(ws, 0, sizeof *ws);
	ws->start = start;
	ws->cap_start = cap;
}

static void lws_free(rl_lws *ws, int NL)
{
	if (!ws)
		return;
	lws_release(ws, NL);
	free(ws->start);
	free(ws);
}

/* Floats of the head's logits for capR rows: with a final soft-cap, the capped
 * logits are kept for its derivative once the cross-entropy overwrote them. */
static size_t logit_floats(const rl_lmodel *m, int capR)
{
	size_t V = (size_t)m->base->cfg.vocab_size;
	return (size_t)capR * V * (m->base->cfg.final_softcap > 0 ? 2 : 1);
}

/* Floats of the buffers for capT rows (capR head rows), keep kept layers. */
static size_t plan_floats(const rl_lmodel *m, int capT, int capR, int keep, int maxlen)
{
	const rl_dims *d = &m->d;
	size_t T = (size_t)capT, C = (size_t)d->C, NL = (size_t)m->base->cfg.n_layers;
	size_t block = ((size_t)4 << 20) / (C * sizeof(float)) + 1;
	return (NL + 1) * T * C + (size_t)(keep + 1) * rl_layer_act_floats(d, capT, capT) +
	       rl_layer_ws_floats(d, capT, capT, maxlen, maxlen) +
	       rl_lora_scratch_floats(m->lc.r, capT, rl_dims_lora_width(d)) + 2 * T * C +
	       3 * T * C + T + logit_floats(m, capR) + block * C;
}

static int lws_reserve(rl_lmodel *m, int capT, int capR, int keep, int maxlen)
{
	rl_lws *ws = m->ws;
	int NL = m->base->cfg.n_layers;
	if (capT <= ws->capT && capR <= ws->capR && keep <= ws->keep && maxlen <= ws->maxlen &&
	    ws->X)
		return RL_OK;
	if (ws->X) { /* grow to cover both plans */
		capT = capT > ws->capT ? capT : ws->capT;
		capR = capR > ws->capR ? capR : ws->capR;
		keep = keep > ws->keep ? keep : ws->keep;
		maxlen = maxlen > ws->maxlen ? maxlen : ws->maxlen;
	}
	lws_release(ws, NL);
	const rl_dims *d = &m->d;
	size_t T = (size_t)capT, C = (size_t)d->C;
	ws->block_rows = ((size_t)4 << 20) / (C * sizeof(float)) + 1;
	ws->lscr_floats = rl_lora_scratch_floats(m->lc.r, capT, rl_dims_lora_width(d));
	ws->X = rl_malloc_array(((size_t)NL + 1) * T * C, sizeof(float));
	ws->act = rl_calloc((size_t)NL, sizeof *ws->act);
	ws->lscr = rl_malloc_array(ws->lscr_floats, sizeof(float));
	ws->dA = rl_malloc_array(2 * T * C, sizeof(float));
	ws->head = rl_malloc_array(3 * T * C + T + logit_floats(m, capR) + ws->block_rows * C,
				   sizeof(float));
	ws->ibuf = rl_malloc_array(3 * T, sizeof(int));
	int rc = (!ws->X || !ws->act || !ws->lscr || !ws->dA || !ws->head || !ws->ibuf) ? RL_ESYS
											: RL_OK;
	if (!rc)
		rc = rl_layer_act_alloc(&ws->sact, d, capT, capT);
	for (int l = NL - 1 - keep; l < NL - 1 && !rc; l++)
		rc = rl_layer_act_alloc(&ws->act[l], d, capT, capT);
	if (!rc)
		rc = rl_layer_ws_alloc(&ws->lws, d, capT, capT, maxlen, maxlen);
	if (!rc)
		rc = rl_layer_w_alloc(&ws->w, d);
	if (rc) {
		lws_release(ws, NL);
		return rc;
	}
	ws->dB = ws->dA + T * C;
	ws->capT = capT;
	ws->capR = capR;
	ws->keep = keep;
	ws->maxlen = maxlen;
	return RL_OK;
}

/* ---- parameters ---- */

int rl_lmodel_init(rl_lmodel *m, const rl_model *base, const rl_lora_cfg *c, uint64_t seed,
		   uint64_t mem_limit)
{
	memset(m, 0, sizeof *m);
	const rl_config *cfg = &base->cfg;
	if (c->r < 1 || !(c->dropout >= 0 && c->dropout < 1) || !(c->targets & 0x7f))
		return rl_error(RL_USAGE, "LoRA: rank >= 1, 0 <= dropout < 1 and a target needed");
	if (rl_lora_targets_fit(c->targets, cfg->fused_proj))
		return rl_error(RL_USAGE,
				"'%s': %s stores q, k, v fused as qkv_proj and gate, up as "
				"gate_up_proj: adapt each whole (qkv_proj, gate_up_proj) or not "
				"at all",
				base->dir, cfg->architecture);
	m->base = base;
	m->lc = *c;
	m->seed = seed;
	m->mem_limit = mem_limit ? mem_limit : (uint64_t)2 << 30;
	m->min_chunk = 256;
	m->scale = (float)(c->rslora ? c->alpha / sqrt((double)c->r) : c->alpha / c->r);
	rl_dims_init(&m->d, cfg);
	int NL = cfg->n_layers, ntarg = 0;
	for (int i = 0; i < RL_LORA_N; i++)
		ntarg += (c->targets >> i) & 1 && rl_lora_slot_used(i, cfg->fused_proj);
	m->p = rl_calloc((size_t)NL * (size_t)ntarg * 2, sizeof *m->p);
	m->lw = rl_calloc(2 * (size_t)NL, sizeof *m->lw);
	m->ws = rl_calloc(1, sizeof *m->ws);
	m->checked = rl_calloc((size_t)NL, 1);
	if (!m->p || !m->lw || !m->ws || !m->checked) {
		rl_lmodel_free(m);
		return RL_ESYS;
	}
	m->lg = m->lw + NL;
	int rc = RL_OK;
	size_t n = 0;
	for (int l = 0; l < NL && !rc; l++)
		for (int i = 0; i < RL_LORA_N && !rc; i++) {
			if (!((c->targets >> i) & 1) || !rl_lora_slot_used(i, cfg->fused_proj))
				continue;
			const rl_tensor *t = rl_model_get(base, l, mod_role(&m->d, i));
			char wname[96];
			rl_role_tensor_name(l, mod_role(&m->d, i), wname, sizeof wname);
			int in, out;
			mod_dims(&m->d, i, &in, &out);
			if (!t || t->ndim != 2 || t->shape[0] != out || t->shape[1] != in) {
				rc = rl_error(RL_EDATA, "'%s': no tensor '%s' [%d, %d] to adapt",
					      base->dir, wname, out, in);
				break;
			}
			size_t wl = strlen(wname) - strlen(".weight");
			for (int ab = 0; ab < 2; ab++) {
				rl_lparam *p = &m->p[m->np++];
				snprintf(p->name, sizeof p->name,
					 "base_model.model.%.*s.lora_%c.weight", (int)wl, wname,
					 ab ? 'B' : 'A');
				p->layer = l;
				p->mod = (rl_lora_target)i;
				p->is_b = ab;
				p->shape[0] = ab ? out : c->r;
				p->shape[1] = ab ? c->r : in;
				p->numel = (size_t)c->r * (size_t)(ab ? out : in);
				n += p->numel;
			}
		}
	if (rc) {
		rl_lmodel_free(m);
		return rc;
	}
	m->n = n;
	m->w = rl_calloc(n, 4 * sizeof(float));
	if (!m->w) {
		rl_lmodel_free(m);
		return RL_ESYS;
	}
	m->g = m->w + n;
	m->m = m->g + n;
	m->v = m->m + n;
	size_t off = 0;
	for (size_t k = 0; k < m->np; k++) {
		rl_lparam *p = &m->p[k];
		p->w = m->w + off, p->g = m->g + off, p->m = m->m + off, p->v = m->v + off;
		off += p->numel;
		rl_lora_layer *lw = &m->lw[p->layer], *lg = &m->lg[p->layer];
		if (p->is_b) {
			lw->m[p->mod].b = p->w;
			lg->m[p->mod].b = p->g;
		} else {
			lw->m[p->mod].a = p->w;
			lg->m[p->mod].a = p->g;
			rl_lora_init_a(p->w, c->r, (int)p->shape[1],
				       mix64(seed ^ mix64((uint64_t)p->layer * 8 + p->mod)));
		}
	}
	for (int l = 0; l < 2 * NL; l++) {
		m->lw[l].r = c->r;
		m->lw[l].scale = m->scale;
		m->lw[l].p = (float)c->dropout;
	}
	rc = rl_rope_init(&m->rope, cfg, cfg->max_position);
	if (rc)
		rl_lmodel_free(m);
	return rc;
}

void rl_lmodel_free(rl_lmodel *m)
{
	if (m->base)
		lws_free(m->ws, m->base->cfg.n_layers);
	free(m->w);
	free(m->p);
	free(m->lw);
	free(m->checked);
	rl_rope_free(&m->rope);
	memset(m, 0, sizeof *m);
}

rl_lparam *rl_lmodel_find(const rl_lmodel *m, const char *name)
{
	for (size_t k = 0; k < m->np; k++)
		if (strcmp(m->p[k].name, name) == 0)
			return &m->p[k];
	return NULL;
}

void rl_lmodel_zero_grad(rl_lmodel *m)
{
	memset(m->g, 0, m->n * sizeof(float));
	m->calls = 0;
}

double rl_lmodel_clip_grad(rl_lmodel *m, double max_norm)
{
	float *g = m->g;
	size_t n = m->n;
	return rl_clip_grad_norm(&g, &n, 1, max_norm);
}

int rl_lmodel_check_grad(const rl_lmodel *m)
{
	for (size_t i = 0; i < m->np; i++) {
		const rl_lparam *p = &m->p[i];
		size_t bad = rl_f32_nonfinite(p->g, p->numel);
		if (bad == p->numel)
			continue;
		return rl_error(
			RL_EDATA,
			"the gradient of '%s' (layer %d) is %g at element %zu (learning rate "
			"too high, or the model overflows f32?)",
			p->name, p->layer, (double)p->g[bad], bad);
	}
	return RL_OK;
}

void rl_lmodel_adamw(rl_lmodel *m, const rl_adamw_hp *hp, double lr)
{
	m->t++;
	rl_adamw_step(m->w, m->g, m->m, m->v, m->n, hp, lr, m->t, 1);
}

/* ---- the head: final norm and lm_head on the labelled rows ---- */

/* Rows of lm_head transposed at a time for the bf16 backward: 16 MiB of
 * scratch at C = 2048 (the whole matrix would be V x C x 2 bytes). */
enum { HEAD_BACK_ROWS = 4096 };

/* head_matmul at precision bf16 on the stored bf16 lm_head: the forward in one
 * product; the backward a block of rows at a time (wgemm_back.h), each
 * block's part added to dx. Its finiteness checked once (the map is
 * read-only). */
static int head_matmul_bf16(rl_lmodel *m, int back, const float *x, float *out, int n)
{
	const rl_tensor *h = m->base->lm_head;
	int C = m->d.C, V = m->base->cfg.vocab_size;
	if (!m->head_checked) {
		int rc = rl_tensor_check_finite(h);
		if (rc)
			return rl_error_prefix(rc, "'%s'", m->base->dir);
		m->head_checked = 1;
	}
	const unsigned char *w = h->data;
	if (!back) {
		rl_wgemm(out, V, x, C, w, RL_DT_BF16, NULL, n, V, C, RL_PREC_BF16, NULL);
		return RL_OK;
	}
	float *part = rl_malloc_array((size_t)n * C, sizeof *part);
	if (!part)
		return RL_ESYS;
	int rc = RL_OK;
	for (int v0 = 0; v0 < V && !rc; v0 += HEAD_BACK_ROWS) {
		int nb = V - v0 < HEAD_BACK_ROWS ? V - v0 : HEAD_BACK_ROWS;
		rl_wblock b = {w + 2 * (size_t)v0 * C, nb};
		rc = rl_wgemm_back(part, C, x + v0, V, &b, 1, n, C, &m->ws->lws.wb);
		if (!rc)
			rl_add_inplace(out, part, (size_t)n * C);
	}
	free(part);
	return rc;
}

/* out[n, V] = x[n, C] lm_head^T (beta 0), or with back: dx[n, C] += dl[n, V]
 * lm_head; lm_head widened ws->block_rows rows at a time (at precision bf16
 * on a bf16 lm_head: head_matmul_bf16). */
static int head_matmul(rl_lmodel *m, int back, const float *x, float *out, int n)
{
	const rl_tensor *h = m->base->lm_head;
	int C = m->d.C, V = m->base->cfg.vocab_size;
	rl_lws *ws = m->ws;
	int B = (int)ws->block_rows;
	float *wb =
		ws->head + 3 * (size_t)ws->capT * C + (size_t)ws->capT + logit_floats(m, ws->capR);
	if (!h || h->numel != (uint64_t)V * (uint64_t)C)
		return rl_error(RL_EDATA, "'%s': lm_head missing or of the wrong size",
				m->base->dir);
	if (m->prec == RL_PREC_BF16 && h->dtype == RL_DT_BF16)
		return head_matmul_bf16(m, back, x, out, n);
	for (int v0 = 0; v0 < V; v0 += B) {
		int nb = V - v0 < B ? V - v0 : B;
		int rc = rl_tensor_read_f32(h, (uint64_t)v0 * C, (uint64_t)nb * C, wb);
		if (rc)
			return rc;
		if (back)
			rl_gemm(RL_N, RL_N, n, C, nb, 1.0f, x + v0, V, wb, C, 1.0f, out, C);
		else
			rl_gemm(RL_N, RL_T, n, nb, C, 1.0f, x, C, wb, C, 0.0f, out + v0, V);
	}
	return RL_OK;
}

/* Loss of the R labelled rows (rows[], tgt[]) of xl [T, C]; with grad, dy
 * [T, C] gets the gradient of scale * loss (zero on other rows). */
static int head(rl_lmodel *m, const float *xl, int T, const int *rows, const int *tgt, int R,
		float scale, int grad, float *dy, double *loss)
{
	rl_lws *ws = m->ws;
	int C = m->d.C, V = m->base->cfg.vocab_size;
	size_t cT = (size_t)ws->capT * C;
	float *xr = ws->head, *xf = xr + cT, *dxf = xf + cT, *rstd = dxf + cT,
	      *lg = rstd + ws->capT, *capped = lg + (size_t)ws->capR * V;
	float cap = (float)m->base->cfg.final_softcap;
	for (int i = 0; i < R; i++)
		memcpy(xr + (size_t)i * C, xl + (size_t)rows[i] * C, (size_t)C * sizeof *xr);
	int rc = rl_final_norm_forward(m->base, xr, R, xf, rstd);
	if (rc)
		return rc;
	if (grad)
		memset(dxf, 0, (size_t)R * C * sizeof *dxf);
	*loss = 0;
	for (int g0 = 0; g0 < R && !rc; g0 += ws->capR) {
		int n = R - g0 < ws->capR ? R - g0 : ws->capR;
		if ((rc = head_matmul(m, 0, xf + (size_t)g0 * C, lg, n)))
			break;
		if (cap > 0) {
			rl_softcap_forward(lg, (size_t)n * V, cap);
			if (grad)
				memcpy(capped, lg, (size_t)n * V * sizeof *capped);
		}
		*loss += rl_xent(grad ? lg : NULL, lg, tgt + g0, n, V, scale);
		if (grad && cap > 0)
			rl_softcap_backward(lg, capped, (size_t)n * V, cap);
		if (grad)
			rc = head_matmul(m, 1, lg, dxf + (size_t)g0 * C, n);
	}
	if (rc || !grad)
		return rc;
	float *dxr = xf; /* xf is dead */
	if ((rc = rl_final_norm_backward(m->base, xr, rstd, dxf, R, dxr, NULL)))
		return rc;
	memset(dy, 0, (size_t)T * C * sizeof *dy);
	for (int i = 0; i < R; i++)
		memcpy(dy + (size_t)rows[i] * C, dxr + (size_t)i * C, (size_t)C * sizeof *dy);
	return RL_OK;
}

/* ---- one chunk of whole sequences ---- */

static int load_layer(rl_lmodel *m, int l)
{
	rl_lws *ws = m->ws;
	if (ws->w.layer == l)
		return RL_OK;
	double t0 = rl_now();
	/* bf16: forward and input gradients on the stored matrices (no f32
	 * copies of them; layer.h), else all on the f32 copies */
	ws->w.prec = m->prec;
	ws->w.bf16_backward = m->prec == RL_PREC_BF16;
	int flags = RL_W_RELEASE | (m->prec == RL_PREC_BF16 ? RL_W_NO_MATRICES : 0);
	if (m->checked[l])
		flags |= RL_W_CHECKED;
	int rc = rl_layer_w_load(&ws->w, &m->d, m->base, l, flags);
	m->checked[l] = !rc;
	m->t_load += rl_now() - t0;
	return rc;
}

/* The chunk's sequences: s->n of them, T rows; ids/target the chunk's. */
static int chunk(rl_lmodel *m, const rl_seqs *s, const int32_t *ids, const int32_t *target,
		 int row0, uint64_t key, float scale, int grad, double *loss, long *nl)
{
	rl_lws *ws = m->ws;
	const rl_dims *d = &m->d;
	int NL = m->base->cfg.n_layers, C = d->C, T = s->T;
	size_t cTC = (size_t)ws->capT * C;
	int *rows = ws->ibuf + ws->capT, *tgt = ws->ibuf + 2 * ws->capT;
	int R = 0;
	for (int t = 0; t < T; t++)
		if (target[t] >= 0) {
			rows[R] = t;
			tgt[R++] = target[t];
		}
	*nl = R;
	*loss = 0;
	for (int l = 0; l < NL; l++) {
		rl_lora_layer *lo = &m->lw[l];
		lo->key = mix64(key + (uint64_t)l);
		lo->row0 = row0;
		lo->p = grad ? (float)m->lc.dropout : 0.0f;
		lo->scr = ws->lscr;
		lo->scr_floats = ws->lscr_floats;
	}
	double t0 = rl_now();
	int rc = rl_embed_forward(m->base, ids, T, ws->X);
	for (int l = 0; l < NL && !rc; l++) {
		if (m->progress)
			m->progress(m->progress_ctx, 0, l, NL);
		if ((rc = load_layer(m, l)))
			break;
		ws->w.lora = &m->lw[l];
		rl_layer_act *a = ws->act[l].mem ? &ws->act[l] : &ws->sact;
		rc = rl_layer_forward(d, l, &ws->w, &m->rope, s, NULL, ws->X + (size_t)l * cTC,
				      ws->X + (size_t)(l + 1) * cTC, a, &ws->lws, 0);
		rl_layer_w_release_stored(&ws->w);
	}
	m->t_layers += rl_now() - t0;
	if (rc)
		return rc;
	t0 = rl_now();
	if (m->progress)
		m->progress(m->progress_ctx, 0, NL, NL);
	float *dy = ws->dA, *dx = ws->dB;
	rc = head(m, ws->X + (size_t)NL * cTC, T, rows, tgt, R, scale, grad, dy, loss);
	m->t_head += rl_now() - t0;
	if (rc || !grad)
		return rc;
	t0 = rl_now();
	rl_layer_w gw;
	memset(&gw, 0, sizeof gw);
	for (int l = NL - 1; l >= 0 && !rc; l--) {
		if (m->progress)
			m->progress(m->progress_ctx, 1, l, NL);
		if ((rc = load_layer(m, l)))
			break;
		ws->w.lora = &m->lw[l];
		gw.lora = &m->lg[l];
		rl_layer_act *a = ws->act[l].mem ? &ws->act[l] : &ws->sact;
		if (!ws->act[l].mem && l != NL - 1 &&
		    (rc = rl_layer_forward(d, l, &ws->w, &m->rope, s, NULL, ws->X + (size_t)l * cTC,
					   ws->X + (size_t)(l + 1) * cTC, a, &ws->lws, 0)))
			break;
		rc = rl_layer_backward(d, l, &ws->w, &m->rope, s, a, dy, l > 0 ? dx : NULL, &gw,
				       RL_GRAD_LORA, &ws->lws);
		rl_layer_w_release_stored(&ws->w);
		float *tmp = dy;
		dy = dx, dx = tmp;
	}
	m->t_layers += rl_now() - t0;
	return rc;
}

/* ---- the batch ---- */

/* The plan: rows per chunk, layers kept, head rows per group, for a batch of
 * T rows whose longest sequence has maxlen rows. */
static void plan(rl_lmodel *m, int T, int maxlen, int *capT, int *keep, int *capR)
{
	const rl_dims *d = &m->d;
	int NL = m->base->cfg.n_layers;
	uint64_t V = (uint64_t)m->base->cfg.vocab_size, lim = m->mem_limit;
	/* logits: at most an eighth of the budget, at least one row */
	uint64_t r = lim / 8 / (V * sizeof(float));
	*capR = r < 1 ? 1 : r > (uint64_t)T ? T : (int)r;
	/* the buffers grow linearly with the rows: the largest chunk with every
	 * layer kept, not below min_chunk rows (or the longest sequence): below
	 * that, layers are recomputed instead */
	uint64_t f0 = plan_floats(m, 0, *capR, NL - 1, maxlen);
	uint64_t f1 = plan_floats(m, 1, *capR, NL - 1, maxlen) - f0;
	uint64_t room = lim / sizeof(float) > f0 ? lim / sizeof(float) - f0 : 0;
	int lo = maxlen > m->min_chunk ? maxlen : m->min_chunk;
	lo = lo > T ? T : lo;
	uint64_t c = room / f1;
	*capT = c >= (uint64_t)T ? T : c > (uint64_t)lo ? (int)c : lo;
	uint64_t per_layer = (uint64_t)rl_layer_act_floats(d, *capT, *capT);
	uint64_t base = plan_floats(m, *capT, *capR, 0, maxlen);
	uint64_t fit = lim / sizeof(float) > base ? (lim / sizeof(float) - base) / per_layer : 0;
	*keep = fit < (uint64_t)(NL - 1) ? (int)fit : NL - 1;
}

int rl_lmodel_forward_backward(rl_lmodel *m, const rl_tbatch *b, float scale, int grad,
			       double *loss_sum, long *n_labelled)
{
	const rl_config *c = &m->base->cfg;
	int V = c->vocab_size;
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
	for (int t = 0; t < T; t++) {
		if (b->ids[t] < 0 || b->ids[t] >= V)
			return rl_error(RL_EDATA, "token id %d out of range (vocab %d)", b->ids[t],
					V);
		if (b->target[t] >= V || b->target[t] < -1)
			return rl_error(RL_EDATA, "target id %d out of range (vocab %d)",
					b->target[t], V);
	}
	int capT, keep, capR;
	plan(m, T, maxlen, &capT, &keep, &capR);
	int rc = lws_reserve(m, capT, capR, grad ? keep : 0, maxlen);
	if (rc)
		return rc;
	rl_lws *ws = m->ws;
	if (ws->cap_start < b->n + 1) {
		free(ws->start);
		ws->start = rl_malloc_array((size_t)b->n + 1, sizeof *ws->start);
		if (!ws->start)
			return RL_ESYS;
		ws->cap_start = b->n + 1;
	}
	uint64_t key = mix64(m->seed ^ mix64((uint64_t)m->t * 1024 + (uint64_t)m->calls));
	m->calls++;
	m->kept = ws->keep + 1 < c->n_layers ? ws->keep + 1 : c->n_layers;
	m->recomputed = grad ? c->n_layers - m->kept : 0;
	m->chunks = 0;
	int *pos = ws->ibuf;
	for (int s0 = 0; s0 < b->n && !rc;) {
		int s1 = s0 + 1;
		while (s1 < b->n && b->start[s1 + 1] - b->start[s0] <= ws->capT)
			s1++;
		int r0 = b->start[s0], n = s1 - s0;
		for (int i = 0; i <= n; i++)
			ws->start[i] = b->start[s0 + i] - r0;
		for (int i = 0; i < n; i++)
			for (int t = ws->start[i]; t < ws->start[i + 1]; t++)
				pos[t] = t - ws->start[i];
		rl_seqs s = {.n = n, .T = ws->start[n], .start = ws->start, .pos = pos};
		double loss;
		long nl;
		rc = chunk(m, &s, b->ids + r0, b->target + r0, r0, key, scale, grad, &loss, &nl);
		*loss_sum += loss;
		*n_labelled += nl;
		m->chunks++;
		s0 = s1;
	}
	return rc;
}
