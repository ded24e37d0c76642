/* engine.c — the model-facing side of the engine (widening, embeddings, head)
 * and the drivers: h_L over prompt sets, and the layer-by-layer gradient of
 * the -cos objective with its activation-cache / recompute policy. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "compute/engine.h"
#include "core/error.h"
#include "core/finite.h"
#include "core/par.h"
#include "core/util.h"

/* Drops the pages of t's bytes from this process's resident set (a read-only
 * shared file map: they stay in the page cache and come back on next touch). */
static void release_pages(const rl_tensor *t)
{
	long ps = sysconf(_SC_PAGESIZE);
	if (ps <= 0 || !t->data || !t->nbytes)
		return;
	uintptr_t a = (uintptr_t)t->data & ~(uintptr_t)(ps - 1);
	uintptr_t e = ((uintptr_t)t->data + t->nbytes + (uintptr_t)ps - 1) & ~(uintptr_t)(ps - 1);
	madvise((void *)a, e - a, MADV_DONTNEED);
}

typedef struct widen_job {
	const rl_tensor *t;
	float *dst;
	_Atomic int failed; /* a NaN or infinity (the message is the worker's) */
} widen_job;

static void widen_range(void *ctx, size_t i0, size_t i1)
{
	widen_job *j = ctx;
	if (rl_tensor_read_f32(j->t, i0, i1 - i0, j->dst + i0)) /* dtype and range checked */
		j->failed = 1;
}

int rl_layer_w_load(rl_layer_w *w, const rl_dims *d, const rl_model *m, int layer, int flags)
{
	static const rl_role roles[] = {
		RL_R_Q,		RL_R_K,	      RL_R_V,	      RL_R_O,		RL_R_GATE,
		RL_R_UP,	RL_R_DOWN,    RL_R_ATTN_NORM, RL_R_MLP_NORM,	RL_R_Q_BIAS,
		RL_R_K_BIAS,	RL_R_V_BIAS,  RL_R_O_BIAS,    RL_R_GATE_BIAS,	RL_R_UP_BIAS,
		RL_R_DOWN_BIAS, RL_R_Q_NORM,  RL_R_K_NORM,    RL_R_PRE_FF_NORM, RL_R_POST_FF_NORM,
		RL_R_QKV,	RL_R_GATE_UP,
	};
	w->layer = -1;
	/* The seven matrices as stored: q .. down, or Phi-3's fused qkv_proj
	 * and gate_up_proj as row blocks (the layout of rl_layer_w_part). */
	uint64_t C = (uint64_t)d->C, qd = (uint64_t)d->qd, kvd = (uint64_t)d->kvd,
		 F = (uint64_t)d->F;
	memset(w->stored, 0, sizeof w->stored);
	memset(w->stored_at, 0, sizeof w->stored_at);
	for (int i = 0; i < 7; i++)
		w->stored[i] = rl_model_get(m, layer, roles[i]);
	if (d->fused) {
		const rl_tensor *qkv = rl_model_get(m, layer, RL_R_QKV),
				*gu = rl_model_get(m, layer, RL_R_GATE_UP);
		w->stored[0] = w->stored[1] = w->stored[2] = qkv;
		w->stored[4] = w->stored[5] = gu;
		w->stored_at[1] = qd * C, w->stored_at[2] = (qd + kvd) * C;
		w->stored_at[5] = F * C;
	}
	/* At precision bf16 the matrices are used as stored where all are bf16
	 * (else the forward computes in fp32 on their f32 copies). */
	w->use_stored = 1;
	for (int i = 0; i < 7; i++)
		if (!w->stored[i] || w->stored[i]->dtype != RL_DT_BF16)
			w->use_stored = 0;
	w->as_stored = (flags & RL_W_AS_STORED) != 0;
	int skip = w->as_stored || ((flags & RL_W_NO_MATRICES) && w->use_stored);
	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
		size_t n; /* 0: not in the layout */
		float *dst = rl_layer_w_part(w, d, roles[i], &n);
		const rl_tensor *t = rl_model_get(m, layer, roles[i]);
		if (!n && !t)
			continue;
		if (!n || !t || t->numel != n)
			return rl_error(RL_EDATA,
					"'%s': layer %d %s does not match the configuration "
					"(%s, %llu elements, expected %zu)",
					m->dir, layer, rl_role_name(roles[i]),
					t ? "present" : "absent",
					t ? (unsigned long long)t->numel : 0ull, n);
		int matrix = i < 7 || roles[i] == RL_R_QKV || roles[i] == RL_R_GATE_UP;
		if (!dst && !(matrix && skip))
			return rl_error(RL_USAGE,
					"layer %d: %s has no f32 copy to widen into (a w without "
					"matrices needs RL_W_AS_STORED)",
					layer, rl_role_name(roles[i]));
		float dt_check;
		int rc = rl_tensor_read_f32(t, 0, 0, &dt_check); /* checks the dtype */
		if (rc)
			return rc;
		if (matrix && skip) {
			/* used as stored: its finiteness checked there (the message
			 * rl_tensor_read_f32's, of the element found) */
			if (flags & RL_W_CHECKED)
				continue;
			if ((rc = rl_tensor_check_finite(t)))
				return rl_error_prefix(rc, "'%s'", m->dir);
			continue;
		}
		widen_job j = {t, dst, 0};
		rl_par_for(n, 1 << 16, widen_range, &j);
		/* again here, for the message (kept per thread) */
		if (j.failed && (rc = rl_tensor_read_f32(t, 0, n, dst)))
			return rl_error_prefix(rc, "'%s'", m->dir);
		if (flags & RL_W_RELEASE)
			release_pages(t);
	}
	w->layer = layer;
	return RL_OK;
}

void rl_layer_w_release_stored(const rl_layer_w *w)
{
	if (w->prec == RL_PREC_BF16 && w->use_stored)
		for (int i = 0; i < 7; i++)
			if (w->stored[i])
				release_pages(w->stored[i]);
}

/* (when the engine releases pages) */
static void release_stored(const rl_engine *e, const rl_layer_w *w)
{
	if (e->release)
		rl_layer_w_release_stored(w);
}

/* ---- embeddings ---- */

float rl_embed_scale(const rl_config *c)
{
	/* GemmaTextScaledWordEmbedding: torch.tensor(hidden_size ** 0.5) is f32 */
	return c->embed_scale ? (float)sqrt((double)c->hidden_size) : 1.0f;
}

int rl_embed_forward(const rl_model *m, const int32_t *ids, int T, float *x)
{
	const rl_tensor *e = m->embed;
	int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
	float scale = rl_embed_scale(&m->cfg);
	for (int t = 0; t < T; t++) {
		if (ids[t] < 0 || ids[t] >= V)
			return rl_error(RL_EDATA, "token id %d out of range (vocab %d)",
					(int)ids[t], V);
		int rc =
			rl_tensor_read_f32(e, (uint64_t)ids[t] * C, (uint64_t)C, x + (size_t)t * C);
		if (rc)
			return rc;
		if (scale != 1.0f)
			for (int c = 0; c < C; c++)
				x[(size_t)t * C + c] *= scale;
	}
	return RL_OK;
}

/* ---- final norm and lm_head ---- */

static int load_vec(const rl_tensor *t, int n, float *dst, const char *what)
{
	if (!t || t->numel != (uint64_t)n)
		return rl_error(RL_EDATA, "model: %s missing or of the wrong size", what);
	return rl_tensor_read_f32(t, 0, (uint64_t)n, dst);
}

int rl_final_norm_forward(const rl_model *m, const float *x, int n, float *y, float *rstd)
{
	int C = m->cfg.hidden_size;
	float *w = rl_malloc_array((size_t)C, sizeof *w);
	if (!w)
		return RL_ESYS;
	int rc = load_vec(m->final_norm, C, w, "model.norm.weight");
	if (!rc)
		rl_rmsnorm_forward(y, rstd, x, w, n, C, (float)m->cfg.rms_eps,
				   m->cfg.norm_plus_one);
	free(w);
	return rc;
}

int rl_final_norm_backward(const rl_model *m, const float *x, const float *rstd, const float *dy,
			   int n, float *dx, float *dw)
{
	int C = m->cfg.hidden_size;
	float *w = rl_malloc_array((size_t)C, sizeof *w);
	if (!w)
		return RL_ESYS;
	int rc = load_vec(m->final_norm, C, w, "model.norm.weight");
	if (!rc) {
		memset(dx, 0, (size_t)n * C * sizeof *dx);
		rl_rmsnorm_backward(dx, dw, dy, x, w, rstd, n, C, m->cfg.norm_plus_one);
	}
	free(w);
	return rc;
}

int rl_lm_head_forward(const rl_model *m, const float *y, int n, float *logits)
{
	const rl_tensor *h = m->lm_head;
	int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
	if (!h || h->numel != (uint64_t)V * C)
		return rl_error(RL_EDATA, "'%s': lm_head missing or of the wrong size", m->dir);
	int B = (int)((64u << 20) / ((size_t)C * sizeof(float)));
	B = B < 1 ? 1 : B > V ? V : B;
	float *wb = rl_malloc_array((size_t)B * C, sizeof *wb);
	if (!wb)
		return RL_ESYS;
	int rc = RL_OK;
	for (int v0 = 0; v0 < V && !rc; v0 += B) {
		int nb = V - v0 < B ? V - v0 : B;
		rc = rl_tensor_read_f32(h, (uint64_t)v0 * C, (uint64_t)nb * C, wb);
		if (!rc)
			rl_gemm(RL_N, RL_T, n, nb, C, 1.0f, y, C, wb, C, 0.0f, logits + v0, V);
	}
	free(wb);
	if (!rc && m->cfg.final_softcap > 0)
		rl_softcap_forward(logits, (size_t)n * V, (float)m->cfg.final_softcap);
	return rc;
}

/* ---- finiteness ---- */

/* A layer's output rows must be finite: its weights were (rl_tensor_read_f32),
 * so a NaN or infinity here is an overflow in f32. y holds every token's row
 * (T of them), or with last_only one row per prompt. */
static int check_output(const rl_model *m, int l, const float *y, const rl_prompts *p,
			int last_only)
{
	int C = m->cfg.hidden_size;
	size_t rows = last_only ? (size_t)p->n : (size_t)p->ntok;
	size_t bad = rl_f32_nonfinite(y, rows * (size_t)C);
	if (bad == rows * (size_t)C)
		return RL_OK;
	int row = (int)(bad / (size_t)C), prompt = row;
	if (!last_only)
		for (prompt = 0; prompt + 1 < p->n && p->start[prompt + 1] <= row; prompt++)
			;
	return rl_error(RL_EDATA,
			"'%s': layer %d's output is %g for prompt %d (hidden unit %d): the "
			"weights are finite, the computation overflows f32",
			m->dir, l, (double)y[bad], prompt, (int)(bad % (size_t)C));
}

/* A layer's weight gradients must be finite (rl-select would skip NaN
 * elements silently): the tensor and the element named. */
static int check_grads(const rl_model *m, const rl_dims *d, int l, const rl_layer_w *g)
{
	for (int r = 0; r < RL_R_COUNT; r++) {
		size_t n;
		const float *part = rl_layer_w_part(g, d, (rl_role)r, &n);
		const rl_tensor *t = part ? rl_model_get(m, l, (rl_role)r) : NULL;
		size_t bad = t ? rl_f32_nonfinite(part, n) : n;
		if (bad < n)
			return rl_error(
				RL_EDATA,
				"'%s': the gradient of '%s' (layer %d) is %g at element %zu: "
				"the backward overflows f32",
				m->dir, t->name, l, (double)part[bad], bad);
	}
	return RL_OK;
}

/* ---- engine ---- */

uint64_t rl_engine_default_mem(void)
{
	uint64_t phys = rl_phys_mem();
	return phys ? phys / 2 : (uint64_t)4 << 30;
}

int rl_engine_init(rl_engine *e, const rl_model *m, int L, int max_len, const rl_engine_opts *o)
{
	memset(e, 0, sizeof *e);
	const rl_config *c = &m->cfg;
	if (L < 1 || L > c->n_layers)
		return rl_error(RL_USAGE, "layer %d out of range: the model has %d layers (1..%d)",
				L, c->n_layers, c->n_layers);
	if (max_len < 1 || (c->max_position > 0 && max_len > c->max_position))
		return rl_error(RL_EDATA, "a prompt of %d tokens exceeds the model's %d positions",
				max_len, c->max_position);
	e->m = m;
	e->L = L;
	e->max_len = max_len;
	rl_dims_init(&e->d, c);
	e->mem_limit = o && o->mem_limit ? o->mem_limit : rl_engine_default_mem();
	e->release = !(o && o->keep_pages);
	e->prec = o ? o->precision : RL_PREC_FP32;
	return rl_rope_init(&e->rope, c, max_len);
}

void rl_engine_free(rl_engine *e)
{
	rl_rope_free(&e->rope);
	memset(e, 0, sizeof *e);
}

static int *positions(const rl_prompts *p)
{
	int *pos = rl_malloc_array(p->ntok ? (size_t)p->ntok : 1, sizeof *pos);
	if (pos)
		for (int i = 0; i < p->n; i++)
			for (int t = p->start[i]; t < p->start[i + 1]; t++)
				pos[t] = t - p->start[i];
	return pos;
}

int rl_engine_hidden(rl_engine *e, const rl_prompts *p, int chunk_prompts, float *h)
{
	const rl_model *m = e->m;
	const rl_dims *d = &e->d;
	int C = d->C, T = (int)p->ntok, L = e->L;
	if (p->max_len > e->max_len)
		return rl_error(RL_USAGE, "engine prepared for %d tokens, prompt of %d", e->max_len,
				p->max_len);
	int exact = chunk_prompts > 0;
	if (!exact)
		chunk_prompts = p->n;
	/* rows per chunk: what fits in mem_limit beside the two [T, C] buffers and
	 * one layer's weights, between the longest prompt and 16384 */
	uint64_t row =
		(rl_layer_act_floats(d, 1, 1) + rl_layer_ws_floats(d, 1, 1, 0, 0)) * sizeof(float);
	uint64_t wbytes = ((uint64_t)d->qkv * C + (uint64_t)C * d->qd + 3ull * d->F * C) * 4;
	uint64_t fixed = 2ull * T * C * sizeof(float) + wbytes +
			 rl_attention_scratch(p->max_len, p->max_len) * sizeof(float);
	uint64_t rows = e->mem_limit > fixed ? (e->mem_limit - fixed) / row : 0;
	int chunk_tokens = rows > 16384 ? 16384 : (int)rows;
	if (chunk_tokens < p->max_len)
		chunk_tokens = p->max_len;
	/* exact groups: each group of chunk_prompts prompts is one chunk */
	for (int c0 = 0; exact && c0 < p->n; c0 += chunk_prompts) {
		int c1 = c0 + chunk_prompts < p->n ? c0 + chunk_prompts : p->n;
		if (p->start[c1] - p->start[c0] > chunk_tokens)
			chunk_tokens = p->start[c1] - p->start[c0];
	}
	if (chunk_tokens > T)
		chunk_tokens = T;
	/* each chunk of prompts [c0, c1) has at most chunk_prompts prompts and
	 * chunk_tokens rows (or is one prompt) */
	int rc = RL_OK;
	float *X = rl_malloc_array((size_t)T * C, sizeof *X);
	float *Y = rl_malloc_array((size_t)T * C, sizeof *Y);
	int *pos = positions(p), *st = rl_malloc_array((size_t)p->n + 1, sizeof *st);
	rl_layer_act a = {0};
	rl_layer_ws ws = {0};
	rl_layer_w w = {0};
	if (!X || !Y || !pos || !st ||
	    (rc = rl_layer_act_alloc(&a, d, chunk_tokens, chunk_tokens)) ||
	    (rc = rl_layer_ws_alloc(&ws, d, chunk_tokens, chunk_tokens, p->max_len, p->max_len)) ||
	    (rc = rl_layer_w_alloc(&w, d))) {
		rc = rc ? rc : RL_ESYS;
		goto out;
	}
	double t0 = rl_now();
	if ((rc = rl_embed_forward(m, p->ids, T, X)))
		goto out;
	/* at bf16 the forward multiplies the stored matrices: no f32 copies */
	w.prec = e->prec;
	int flags =
		(e->release ? RL_W_RELEASE : 0) | (e->prec == RL_PREC_BF16 ? RL_W_NO_MATRICES : 0);
	for (int l = 0; l < L && !rc; l++) {
		double tl = rl_now();
		if ((rc = rl_layer_w_load(&w, d, m, l, flags)))
			break;
		e->t_load += rl_now() - tl;
		int last = l == L - 1;
		for (int c0 = 0; c0 < p->n && !rc;) {
			int c1 = c0 + 1;
			while (c1 < p->n && c1 - c0 < chunk_prompts &&
			       (exact || p->start[c1 + 1] - p->start[c0] <= chunk_tokens))
				c1++;
			int r0 = p->start[c0];
			for (int i = c0; i <= c1; i++)
				st[i - c0] = p->start[i] - r0;
			rl_seqs s = {c1 - c0, p->start[c1] - r0, st, pos + r0};
			float *y = last ? h + (size_t)c0 * C : Y + (size_t)r0 * C;
			rc = rl_layer_forward(d, l, &w, &e->rope, &s, NULL, X + (size_t)r0 * C, y,
					      &a, &ws, last ? RL_LAYER_LAST_ONLY : 0);
			c0 = c1;
		}
		if (!rc)
			rc = check_output(m, l, last ? h : Y, p, last);
		release_stored(e, &w);
		float *tmp = X;
		X = Y, Y = tmp;
	}
	if (!rc && L == m->cfg.n_layers)
		rc = rl_final_norm_forward(m, h, p->n, h, NULL);
	e->t_forward = rl_now() - t0;
out:
	free(X), free(Y), free(pos), free(st);
	rl_layer_act_free(&a);
	rl_layer_ws_free(&ws);
	rl_layer_w_free(&w);
	return rc;
}

/* ---- gradient ---- */

void rl_grad_end(rl_grad *g)
{
	if (g->xs)
		for (int l = 0; l <= g->e->L; l++)
			free(g->xs[l]);
	free(g->xs);
	if (g->acts)
		for (int i = 0; i < g->e->L * g->nbatch; i++)
			rl_layer_act_free(&g->acts[i]);
	free(g->acts);
	rl_layer_act_free(&g->scratch_act);
	rl_layer_ws_free(&g->ws);
	rl_layer_w_free(&g->w);
	rl_layer_w_free(&g->g);
	rl_layer_w_free(&g->gb);
	free(g->dy), free(g->dx), free(g->ytmp);
	free(g->loss), free(g->cos), free(g->pos), free(g->dembed);
	free(g->bs), free(g->bstart);
	memset(g, 0, sizeof *g);
}

/* Batch b's prompts [*i0, *i1) and rows [*r0, ...). */
static void batch_range(const rl_grad *g, int b, int *i0, int *i1, int *r0)
{
	*i0 = b * g->batch_size;
	*i1 = *i0 + g->batch_size < g->p->n ? *i0 + g->batch_size : g->p->n;
	*r0 = g->p->start[*i0];
}

/* Forward of layer l over batch b into act a (y: the layer's output rows). */
static int forward_batch(rl_grad *g, int l, int b, rl_layer_act *a, float *y_all)
{
	rl_engine *e = g->e;
	int C = e->d.C, i0, i1, r0, last = l == e->L - 1;
	batch_range(g, b, &i0, &i1, &r0);
	float *y = y_all + (size_t)(last ? i0 : r0) * C;
	return rl_layer_forward(&e->d, l, &g->w, &e->rope, &g->bs[b], NULL,
				g->xs[l] + (size_t)r0 * C, y, a, &g->ws,
				last ? RL_LAYER_LAST_ONLY : 0);
}

int rl_grad_begin(rl_grad *g, rl_engine *e, const rl_prompts *p, int batch_size, const float *dir,
		  int want)
{
	memset(g, 0, sizeof *g);
	g->e = e;
	g->p = p;
	g->want = want;
	g->next = -1;
	const rl_model *m = e->m;
	const rl_dims *d = &e->d;
	int C = d->C, T = (int)p->ntok, n = p->n, L = e->L;
	if (batch_size < 1)
		return rl_error(RL_USAGE, "batch size %d must be positive", batch_size);
	if (p->max_len > e->max_len)
		return rl_error(RL_USAGE, "engine prepared for %d tokens, prompt of %d", e->max_len,
				p->max_len);
	g->batch_size = batch_size;
	g->nbatch = (n + batch_size - 1) / batch_size;
	int rc = RL_OK, nb = g->nbatch;
	size_t TC = (size_t)T * C;
	g->loss = rl_calloc((size_t)nb, sizeof *g->loss);
	g->cos = rl_calloc((size_t)nb, sizeof *g->cos);
	g->pos = positions(p);
	g->xs = rl_calloc((size_t)L + 1, sizeof *g->xs);
	g->acts = rl_calloc((size_t)L * nb, sizeof *g->acts);
	g->bs = rl_calloc((size_t)nb, sizeof *g->bs);
	g->bstart = rl_malloc_array((size_t)n + nb, sizeof *g->bstart);
	g->dy = rl_malloc_array(TC, sizeof(float));
	g->dx = rl_malloc_array(TC, sizeof(float));
	g->ytmp = rl_malloc_array(TC, sizeof(float));
	if (!g->loss || !g->cos || !g->pos || !g->xs || !g->acts || !g->bs || !g->bstart ||
	    !g->dy || !g->dx || !g->ytmp)
		goto nomem;
	/* each batch's rows, its sequences' starts counted from its first row */
	int maxT = 0;
	for (int b = 0; b < nb; b++) {
		int i0, i1, r0;
		batch_range(g, b, &i0, &i1, &r0);
		int *st = g->bstart + i0 + b;
		for (int i = i0; i <= i1; i++)
			st[i - i0] = p->start[i] - r0;
		g->bs[b] = (rl_seqs){i1 - i0, p->start[i1] - r0, st, g->pos + r0};
		maxT = g->bs[b].T > maxT ? g->bs[b].T : maxT;
	}
	if ((want & RL_GRAD_EMBED) &&
	    !(g->dembed = rl_calloc((size_t)m->cfg.vocab_size * C, sizeof(float))))
		goto nomem;
	for (int l = 0; l < L; l++)
		if (!(g->xs[l] = rl_malloc_array(TC, sizeof(float))))
			goto nomem;
	if (!(g->xs[L] = rl_malloc_array((size_t)n * C, sizeof(float))))
		goto nomem;
	if ((rc = rl_layer_ws_alloc(&g->ws, d, maxT, maxT, p->max_len, p->max_len)) ||
	    (rc = rl_layer_w_alloc(&g->w, d)) || (rc = rl_layer_w_alloc(&g->g, d)) ||
	    (nb > 1 && !(want & RL_GRAD_PER_BATCH) && (rc = rl_layer_w_alloc(&g->gb, d))) ||
	    (rc = rl_layer_act_alloc(&g->scratch_act, d, maxT, maxT)))
		goto fail;

	/* the activation cache: layer L-1's (last-only, small) always, then layers
	 * 0..L-2 while the budget allows */
	uint64_t act_bytes = (uint64_t)rl_layer_act_floats(d, T, T) * sizeof(float);
	uint64_t base = ((uint64_t)L * TC + (uint64_t)n * C + 3 * TC + g->ws.nfloats +
			 g->w.nfloats + g->g.nfloats + g->gb.nfloats + g->scratch_act.nfloats +
			 rl_layer_act_floats(d, T, n)) *
			sizeof(float);
	uint64_t budget = e->mem_limit > base ? e->mem_limit - base : 0;
	uint64_t fit = budget / act_bytes;
	int keep = fit < (uint64_t)(L - 1) ? (int)fit : L - 1;
	e->kept = keep;
	e->recomputed = L - 1 - keep;
	e->bytes_planned = base + (uint64_t)keep * act_bytes;
	e->t_load = e->t_forward = e->t_backward = 0;

	/* forward, keeping layer inputs (and activations of the first `keep`
	 * layers and of the last), batch by batch within a layer */
	double t0 = rl_now();
	if ((rc = rl_embed_forward(m, p->ids, T, g->xs[0])))
		goto fail;
	g->w.prec = e->prec; /* the backward uses the f32 copies whatever it is */
	for (int l = 0; l < L; l++) {
		double tl = rl_now();
		if ((rc = rl_layer_w_load(&g->w, d, m, l, e->release ? RL_W_RELEASE : 0)))
			goto fail;
		e->t_load += rl_now() - tl;
		int last = l == L - 1;
		for (int b = 0; b < nb; b++) {
			rl_layer_act *a = &g->scratch_act;
			if (l < keep || last) {
				a = &g->acts[(size_t)l * nb + b];
				if ((rc = rl_layer_act_alloc(a, d, g->bs[b].T,
							     last ? g->bs[b].n : g->bs[b].T)))
					goto fail;
			}
			if ((rc = forward_batch(g, l, b, a, last ? g->xs[L] : g->xs[l + 1])))
				goto fail;
		}
		if ((rc = check_output(m, l, last ? g->xs[L] : g->xs[l + 1], p, last)))
			goto fail;
		release_stored(e, &g->w);
	}

	/* h_L (final-normed when L == n_layers), the losses and dLoss/dh_L */
	int normed = L == m->cfg.n_layers;
	float *h = g->xs[L],
	      *buf = rl_malloc_array((size_t)(normed ? 2 * n + 2 : 2) * C, sizeof(float));
	if (!buf)
		goto nomem;
	float *mean = buf, *dm = buf + C, *hn = h, *dh = g->dy, *rstd = g->dx;
	if (normed) {
		hn = buf + 2 * (size_t)C;
		dh = hn + (size_t)n * C;
		rc = rl_final_norm_forward(m, h, n, hn, rstd);
	}
	for (int b = 0; b < nb && !rc; b++) {
		int i0, i1, r0;
		batch_range(g, b, &i0, &i1, &r0);
		for (int c = 0; c < C; c++) {
			double s = 0;
			for (int i = i0; i < i1; i++)
				s += hn[(size_t)i * C + c];
			mean[c] = (float)(s / (i1 - i0));
		}
		double cosv = rl_neg_cos_backward(mean, dir, C, dm);
		g->cos[b] = cosv;
		g->loss[b] = -cosv;
		if (!isfinite(cosv))
			rc = rl_error(
				RL_EDATA,
				"'%s': batch %d: the loss is %g (the direction or the batch's "
				"mean hidden state has no length)",
				m->dir, b, -cosv);
		for (int i = i0; i < i1; i++)
			for (int c = 0; c < C; c++)
				dh[(size_t)i * C + c] = dm[c] / (float)(i1 - i0);
	}
	if (!rc && normed)
		rc = rl_final_norm_backward(m, h, rstd, dh, n, g->dy, NULL);
	free(buf);
	if (rc)
		goto fail;
	e->t_forward = rl_now() - t0;
	g->next = L - 1;
	return RL_OK;
nomem:
	rc = RL_ESYS;
fail:
	rl_grad_end(g);
	return rc;
}

/* Backward of batch b through layer l: its partial ACCUMULATED into `into`
 * (zeroed by the caller), its rows of dx. */
static int backward_batch(rl_grad *g, int l, int b, rl_layer_w *into)
{
	rl_engine *e = g->e;
	const rl_dims *d = &e->d;
	int C = d->C, L = e->L, i0, i1, r0, rc;
	batch_range(g, b, &i0, &i1, &r0);
	rl_layer_act *a = &g->acts[(size_t)l * g->nbatch + b];
	if (!a->mem) {
		a = &g->scratch_act;
		if ((rc = forward_batch(g, l, b, a, g->ytmp)))
			return rc;
	}
	float *dx = l > 0 || g->dembed ? g->dx + (size_t)r0 * C : NULL;
	const float *dy = g->dy + (size_t)(l == L - 1 ? i0 : r0) * C;
	if ((rc = rl_layer_backward(d, l, &g->w, &e->rope, &g->bs[b], a, dy, dx, into,
				    g->want & (RL_GRAD_LINEAR | RL_GRAD_NORMS), &g->ws)))
		return rc;
	rl_layer_act_free(&g->acts[(size_t)l * g->nbatch + b]);
	return check_grads(e->m, d, l, into);
}

/* Loads layer l's weights unless they are there. */
static int layer_begin(rl_grad *g, int l)
{
	rl_engine *e = g->e;
	if (g->w.layer == l)
		return RL_OK;
	double t0 = rl_now();
	int rc = rl_layer_w_load(&g->w, &e->d, e->m, l, e->release ? RL_W_RELEASE : 0);
	e->t_load += rl_now() - t0;
	return rc;
}

/* Every batch of layer l has been backed through: dx becomes the next dy. */
static void layer_end(rl_grad *g, int l)
{
	rl_engine *e = g->e;
	if (l == 0 && g->dembed)
		rl_embed_backward(g->dembed, g->dx, g->p->ids, (int)g->p->ntok, e->d.C,
				  rl_embed_scale(&e->m->cfg), e->m->cfg.pad_token_id);
	float *tmp = g->dy;
	g->dy = g->dx, g->dx = tmp;
	free(g->xs[l + 1]);
	g->xs[l + 1] = NULL;
	g->next = l - 1;
	g->next_b = 0;
	release_stored(e, &g->w); /* every batch's recomputed forward is done */
}

int rl_grad_next(rl_grad *g, int *layer, const rl_layer_w **grads)
{
	*layer = -1;
	*grads = NULL;
	int l = g->next;
	if (l < 0)
		return RL_OK;
	if (g->want & RL_GRAD_PER_BATCH)
		return rl_error(RL_USAGE, "rl_grad_next: the gradient is per batch");
	double t0 = rl_now();
	int rc = layer_begin(g, l);
	/* partial 0 in place, then each later partial added in batch order */
	rl_layer_w_zero(&g->g);
	if (!rc)
		rc = backward_batch(g, l, 0, &g->g);
	for (int b = 1; b < g->nbatch && !rc; b++) {
		rl_layer_w_zero(&g->gb);
		if ((rc = backward_batch(g, l, b, &g->gb)))
			break;
		float *acc = g->g.mem;
		const float *part = g->gb.mem;
		for (size_t i = 0; i < g->g.nfloats; i++)
			acc[i] += part[i];
	}
	if (!rc && g->nbatch > 1)
		rc = check_grads(g->e->m, &g->e->d, l, &g->g);
	if (rc)
		return rc;
	layer_end(g, l);
	g->e->t_backward += rl_now() - t0;
	*layer = l;
	*grads = &g->g;
	return RL_OK;
}

int rl_grad_next_batch(rl_grad *g, int *layer, int *batch, const rl_layer_w **grads)
{
	*layer = -1;
	*batch = -1;
	*grads = NULL;
	int l = g->next, b = g->next_b;
	if (l < 0)
		return RL_OK;
	if (!(g->want & RL_GRAD_PER_BATCH))
		return rl_error(RL_USAGE, "rl_grad_next_batch: the gradient is summed");
	double t0 = rl_now();
	int rc = layer_begin(g, l);
	rl_layer_w_zero(&g->g);
	if (!rc)
		rc = backward_batch(g, l, b, &g->g);
	if (rc)
		return rc;
	if (++g->next_b == g->nbatch)
		layer_end(g, l);
	g->e->t_backward += rl_now() - t0;
	*layer = l;
	*batch = b;
	*grads = &g->g;
	return RL_OK;
}
