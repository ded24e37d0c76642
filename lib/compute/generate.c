/* generate.c — batched greedy decoding with a KV cache (see generate.h).
 *
 * One step, for the tokens of every sequence in flight packed into T rows
 * (a sequence's rows are consecutive; row t has position pos[t]):
 *
 *   x[T,C]   = embed(tok) (* sqrt(C) for Gemma)
 *   per layer l (norms where the layout has them, layer.h):
 *     h      = rmsnorm(x, attn_norm)
 *     qkv    = [h Wq^T + bq | h Wk^T + bk | h Wv^T + bv]     [T, Q + 2 KV]
 *     q/k norms (layer.h: rl_qk_norm_forward, the engine's)
 *     rope(q part, k part, pos)
 *     cache_k[s][l][len_s ..], cache_v[..] <- the k, v rows of sequence s
 *     att    = attention(q rows of s, cache rows 0 .. len_s + T_s of s)  [T, Q]
 *              within layer l's sliding window (rl_dims_window, the engine's rule)
 *     x     += att Wo^T + bo                (Gemma 2: rmsnorm'd first)
 *     h      = rmsnorm(x, mlp_norm)
 *     x     += act(h Wg^T + bg) * (h Wu^T + bu) Wd^T + bd   (Gemma 2: the same)
 *   last row of each sequence -> rmsnorm(final_norm) -> logits = h lm^T [B, V]
 *   (Gemma 2: soft-capped) -> argmax.
 *
 * Sums into x go through a temporary (out = a W^T + b, then x += out) so the
 * rounding is transformers' (residual + (a W^T + b)).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/generate.h"
#include "compute/layer.h"
#include "compute/ops.h"
#include "compute/wgemm.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/jsonl.h"
#include "core/par.h"

void rl_gen_opts_init(rl_gen_opts *o)
{
	memset(o, 0, sizeof *o);
	o->max_new_tokens = 128;
	o->batch_size = 16;
}

/* A weight matrix [rows, cols], used as the file stores it. */
struct mat {
	const rl_tensor *t;
	int row0, rows, cols; /* rows row0 .. row0 + rows - 1 of t (Phi-3's fused) */
};

struct layer {
	struct mat q, k, v, o, gate, up, down;
	float *bq, *bk, *bv, *bo, *bg, *bu, *bd; /* NULL when absent */
	float *attn_norm, *mlp_norm;
	float *q_norm, *k_norm, *pre_ff_norm, *post_ff_norm; /* NULL when absent */
	/* the layout's four places (layer.h), pointing at the norms above */
	const float *attn_in, *attn_out, *mlp_in, *mlp_out;
};

struct gen {
	const rl_model *m;
	const rl_config *c;
	rl_dims d; /* the layer's per-architecture rules, shared with the engine */
	int C, nh, nkvh, hd, I, V, L, Q, KV;
	struct layer *layers;
	struct mat lm;
	float *final_norm;
	float *scratch; /* rl_wgemm's, for the widest matrix */
	rl_precision prec;
	rl_rope rope;
	float scale, eps, embed_mul;
};

/* A sequence in flight. */
struct slot {
	size_t seq;
	int len;       /* tokens in the cache */
	int cap;       /* cache capacity (tokens) */
	float *k, *v;  /* [L][cap][KV] */
	int n_pending; /* tokens fed this step */
	int *pending;  /* [cap] the tokens fed this step */
	int off;       /* first row in this step's packed rows */
};

/* Step buffers, grown to the largest step. */
struct bufs {
	size_t rows, batch;
	float *x, *h, *qkv, *att, *tmp, *gu, *hh, *qk;
	int *tok, *pos;
	float *scratch;	      /* scratch_slots x scratch_n: attention's, one per thread */
	size_t scratch_n;     /* floats per slot */
	size_t scratch_slots; /* rl_par_threads() */
	float *last, *logits;
};

/* ---- weights ---- */

/* rows row0 .. row0 + rows - 1 of t (rows 0: all of them) */
static void mat_init(struct mat *w, const rl_tensor *t, int row0, int rows)
{
	w->t = t;
	w->row0 = row0;
	w->rows = rows ? rows : (int)t->shape[0];
	w->cols = (int)t->shape[1];
}

/* The first element of w in t. */
static uint64_t mat_first(const struct mat *w)
{
	return (uint64_t)w->row0 * (uint64_t)w->cols;
}

/* A whole small tensor (bias, norm) as f32; NULL tensor -> NULL. */
static int vec_load(const rl_tensor *t, float **out)
{
	*out = NULL;
	if (!t)
		return RL_OK;
	float *p = rl_malloc_array((size_t)t->numel, sizeof(float));
	if (!p)
		return RL_ESYS;
	int rc = rl_tensor_read_f32(t, 0, t->numel, p);
	if (rc) {
		free(p);
		return rc;
	}
	*out = p;
	return RL_OK;
}

/* out[T, rows] (ldo) = x[T, cols] (ldx) w^T + bias, on the stored weights
 * (the kernel is rl_wgemm's choice for T rows at g->prec). */
static void matmul(struct gen *g, float *out, int ldo, const float *x, int ldx, int T,
		   const struct mat *w, const float *bias)
{
	rl_wgemm(out, ldo, x, ldx, rl_tensor_elem(w->t, mat_first(w)), w->t->dtype, bias, T,
		 w->rows, w->cols, g->prec, g->scratch);
}

static void gen_free(struct gen *g)
{
	if (g->layers)
		for (int l = 0; l < g->L; l++) {
			struct layer *y = &g->layers[l];
			float *vs[] = {y->bq,	       y->bk,	  y->bv,     y->bo,
				       y->bg,	       y->bu,	  y->bd,     y->attn_norm,
				       y->mlp_norm,    y->q_norm, y->k_norm, y->pre_ff_norm,
				       y->post_ff_norm};
			for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++)
				free(vs[i]);
		}
	free(g->layers);
	free(g->final_norm);
	free(g->scratch);
	rl_rope_free(&g->rope);
	memset(g, 0, sizeof *g);
}

static int gen_init(struct gen *g, const rl_model *m, const rl_gen_opts *o, int max_len)
{
	memset(g, 0, sizeof *g);
	const rl_config *c = &m->cfg;
	g->m = m;
	g->c = c;
	g->C = c->hidden_size;
	g->nh = c->n_heads;
	g->nkvh = c->n_kv_heads;
	g->hd = c->head_dim;
	g->I = c->intermediate_size;
	g->V = c->vocab_size;
	g->L = c->n_layers;
	g->Q = g->nh * g->hd;
	g->KV = g->nkvh * g->hd;
	g->scale = (float)(1.0 / sqrt((double)g->hd)); /* head_dim ** -0.5 */
	g->eps = (float)c->rms_eps;
	g->embed_mul = c->embed_scale ? (float)sqrt((double)g->C) : 1.0f;
	rl_dims_init(&g->d, c);
	if (!m->embed || !m->final_norm || !m->lm_head)
		return rl_error(RL_EDATA, "'%s': the model lacks embeddings, final norm or lm_head",
				m->dir);
	int rc = rl_rope_init(&g->rope, c, max_len);
	if (rc)
		return rc;
	g->layers = rl_calloc((size_t)g->L, sizeof *g->layers);
	if (!g->layers)
		return RL_ESYS;
	mat_init(&g->lm, m->lm_head, 0, 0);
	if ((rc = vec_load(m->final_norm, &g->final_norm)))
		return rc;
	int maxcols = g->C > g->I ? g->C : g->I; /* the matrices' widest rows */
	if (g->Q > maxcols)
		maxcols = g->Q;
	for (int l = 0; l < g->L; l++) {
		struct layer *y = &g->layers[l];
		rl_role roles[7] = {RL_R_Q, RL_R_K, RL_R_V, RL_R_O, RL_R_GATE, RL_R_UP, RL_R_DOWN};
		int row0[7] = {0}, rows[7] = {0};
		if (c->fused_proj) { /* Phi-3: q, k, v and gate, up are row blocks */
			roles[0] = roles[1] = roles[2] = RL_R_QKV;
			roles[4] = roles[5] = RL_R_GATE_UP;
			row0[1] = g->Q, row0[2] = g->Q + g->KV, row0[5] = g->I;
			rows[0] = g->Q, rows[1] = rows[2] = g->KV, rows[4] = rows[5] = g->I;
		}
		const rl_tensor *t[7];
		for (int i = 0; i < 7; i++)
			if (!(t[i] = rl_model_get(m, l, roles[i])))
				return rl_error(RL_EDATA, "'%s': layer %d lacks %s", m->dir, l,
						rl_role_name(roles[i]));
		struct mat *ms[7] = {&y->q, &y->k, &y->v, &y->o, &y->gate, &y->up, &y->down};
		for (int i = 0; i < 7; i++)
			mat_init(ms[i], t[i], row0[i], rows[i]);
		if ((rc = vec_load(rl_model_get(m, l, RL_R_Q_BIAS), &y->bq)) ||
		    (rc = vec_load(rl_model_get(m, l, RL_R_K_BIAS), &y->bk)) ||
		    (rc = vec_load(rl_model_get(m, l, RL_R_V_BIAS), &y->bv)) ||
		    (rc = vec_load(rl_model_get(m, l, RL_R_O_BIAS), &y->bo)) ||
		    (rc = vec_load(rl_model_get(m, l, RL_R_GATE_BIAS), &y->bg)) ||
		    (rc = vec_load(rl_model_get(m, l, RL_R_UP_BIAS), &y->bu)) ||
		    (rc = vec_load(rl_model_get(m, l, RL_R_DOWN_BIAS), &y->bd)) ||
		    (rc = vec_load(rl_model_get(m, l, RL_R_ATTN_NORM), &y->attn_norm)) ||
		    (rc = vec_load(rl_model_get(m, l, RL_R_MLP_NORM), &y->mlp_norm)) ||
		    (rc = vec_load(rl_model_get(m, l, RL_R_Q_NORM), &y->q_norm)) ||
		    (rc = vec_load(rl_model_get(m, l, RL_R_K_NORM), &y->k_norm)) ||
		    (rc = vec_load(rl_model_get(m, l, RL_R_PRE_FF_NORM), &y->pre_ff_norm)) ||
		    (rc = vec_load(rl_model_get(m, l, RL_R_POST_FF_NORM), &y->post_ff_norm)))
			return rc;
		if ((c->norms != RL_NORMS_POST && !y->attn_norm) || !y->mlp_norm ||
		    (c->norms == RL_NORMS_SANDWICH && !y->pre_ff_norm) ||
		    (c->norms != RL_NORMS_PRE && !y->post_ff_norm))
			return rl_error(RL_EDATA, "'%s': layer %d lacks its norms", m->dir, l);
		y->attn_in = y->attn_norm, y->mlp_in = y->mlp_norm;
		if (c->norms != RL_NORMS_PRE) {
			y->attn_out = y->mlp_norm;
			y->mlp_in = y->pre_ff_norm; /* NULL for POST */
			y->mlp_out = y->post_ff_norm;
		}
	}
	g->prec = o->precision;
	g->scratch = rl_malloc_array(rl_wgemm_scratch(maxcols), sizeof(float));
	return g->scratch ? RL_OK : RL_ESYS;
}

/* ---- step buffers ---- */

static void bufs_free(struct bufs *b)
{
	free(b->x);
	free(b->h);
	free(b->qkv);
	free(b->att);
	free(b->tmp);
	free(b->gu);
	free(b->hh);
	free(b->qk);
	free(b->tok);
	free(b->pos);
	free(b->scratch);
	free(b->last);
	free(b->logits);
	memset(b, 0, sizeof *b);
}

static int grow_f(float **p, size_t n)
{
	float *q = rl_realloc_array(*p, n ? n : 1, sizeof(float));
	if (!q)
		return RL_ESYS;
	*p = q;
	return RL_OK;
}

static int grow_i(int **p, size_t n)
{
	int *q = rl_realloc_array(*p, n ? n : 1, sizeof(int));
	if (!q)
		return RL_ESYS;
	*p = q;
	return RL_OK;
}

/* Room for T packed rows, B sequences and attention over up to nkv keys. */
static int bufs_reserve(struct bufs *b, const struct gen *g, size_t T, size_t B, size_t attn)
{
	int rc = RL_OK;
	if (T > b->rows) {
		size_t n = T + T / 4;
		if ((rc = grow_f(&b->x, n * g->C)) || (rc = grow_f(&b->h, n * g->C)) ||
		    (rc = grow_f(&b->qkv, n * (size_t)(g->Q + 2 * g->KV))) ||
		    (rc = grow_f(&b->att, n * g->Q)) || (rc = grow_f(&b->tmp, n * g->C)) ||
		    (rc = grow_f(&b->gu, n * 2 * (size_t)g->I)) ||
		    (rc = grow_f(&b->hh, n * g->I)) ||
		    (rc = grow_f(&b->qk, rl_qk_norm_scratch(&g->d, (int)n))) ||
		    (rc = grow_i(&b->tok, n)) || (rc = grow_i(&b->pos, n)))
			return rc;
		b->rows = n;
	}
	if (B > b->batch) {
		if ((rc = grow_f(&b->last, B * g->C)) || (rc = grow_f(&b->logits, B * g->V)))
			return rc;
		b->batch = B;
	}
	size_t slots = (size_t)rl_par_threads();
	if (attn > b->scratch_n || slots != b->scratch_slots) {
		size_t n = attn > b->scratch_n ? attn : b->scratch_n;
		if ((rc = grow_f(&b->scratch, n * slots)))
			return rc;
		b->scratch_n = n;
		b->scratch_slots = slots;
	}
	return RL_OK;
}

/* ---- the forward over packed rows ---- */

static int argmax(const float *v, int n)
{
	int best = 0;
	for (int i = 0; i < n; i++) {
		if (isnan(v[i]))
			return i; /* torch.argmax: NaN is the maximum */
		if (v[i] > v[best])
			best = i;
	}
	return best;
}

/* ---- attention ---- */

typedef struct attn_job {
	const struct gen *g;
	const struct bufs *b;
	struct slot **sl;
	int l, window;
} attn_job;

/* Sequences [s0, s1): their new keys and values into their caches, then
 * their queries' attention over them (scratch slot idx). */
static void attn_seqs(void *ctx, int idx, size_t s0, size_t s1)
{
	const attn_job *j = ctx;
	const struct gen *g = j->g;
	const struct bufs *b = j->b;
	int Q = g->Q, KV = g->KV, ldq = Q + 2 * KV, l = j->l;
	float *scratch = b->scratch + (size_t)idx * b->scratch_n;
	for (size_t s = s0; s < s1; s++) {
		struct slot *z = j->sl[s];
		float *kc = z->k + (size_t)l * z->cap * KV, *vc = z->v + (size_t)l * z->cap * KV;
		for (int t = 0; t < z->n_pending; t++) {
			const float *row = b->qkv + (size_t)(z->off + t) * ldq;
			memcpy(kc + (size_t)(z->len + t) * KV, row + Q, sizeof(float) * KV);
			memcpy(vc + (size_t)(z->len + t) * KV, row + Q + KV, sizeof(float) * KV);
		}
		rl_attention_forward(b->att + (size_t)z->off * Q, Q, NULL,
				     b->qkv + (size_t)z->off * ldq, ldq, kc, vc, KV, z->n_pending,
				     z->len + z->n_pending, g->nh, g->nkvh, g->hd, j->window,
				     g->d.scale, g->d.attn_cap, scratch);
	}
}

/* Attention of every sequence in flight, the sequences spread over the
 * core/par.h pool (the one the matrix kernels run on) with OpenBLAS held to
 * one thread meanwhile. Left to itself OpenBLAS threads a prompt's score
 * products (m x n x k above 2^18), and after each such call its worker spins
 * on sched_yield for 2^28 cycles (OpenBLAS's THREAD_TIMEOUT) against the
 * pool's threads, which run the next layer's products: on 2 cores that was
 * a quarter of rl-eval's CPU time, most of it in the kernel. Concurrent
 * single-threaded OpenBLAS calls are safe (layer.c's over_sequences). */
static void attention(const struct gen *g, const struct bufs *b, struct slot **sl, int ns, int l,
		      int window)
{
	attn_job j = {g, b, sl, l, window};
	int blas = rl_blas_get_threads(), slots = (int)b->scratch_slots;
	if (blas > 1)
		rl_blas_threads(1);
	if (ns < 2 || slots < 2)
		attn_seqs(&j, 0, 0, (size_t)ns);
	else
		rl_par_for_idx((size_t)ns, ((size_t)ns + (size_t)slots - 1) / (size_t)slots,
			       attn_seqs, &j);
	if (blas > 1)
		rl_blas_threads(blas);
}

/* Runs the T packed rows of the slots through the model and leaves each
 * slot's last-row logits in b->logits[slot index]. */
static int forward(struct gen *g, struct bufs *b, struct slot **sl, int ns, int T)
{
	const rl_model *m = g->m;
	int C = g->C, Q = g->Q, KV = g->KV, ldq = Q + 2 * KV, I = g->I, rc;
	float *x = b->x, *h = b->h, *qkv = b->qkv, *att = b->att, *tmp = b->tmp;
	for (int t = 0; t < T; t++) {
		if ((rc = rl_tensor_read_f32(m->embed, (uint64_t)b->tok[t] * (uint64_t)C,
					     (uint64_t)C, x + (size_t)t * C)))
			return rc;
		if (g->embed_mul != 1.0f)
			for (int c = 0; c < C; c++)
				x[(size_t)t * C + c] *= g->embed_mul;
	}
	for (int l = 0; l < g->L; l++) {
		struct layer *y = &g->layers[l];
		int window = rl_dims_window(&g->d, l);
		const float *in = x;
		if (y->attn_in) {
			rl_rmsnorm_forward(h, NULL, x, y->attn_in, T, C, g->eps,
					   g->c->norm_plus_one);
			in = h;
		}
		matmul(g, qkv, ldq, in, C, T, &y->q, y->bq);
		matmul(g, qkv + Q, ldq, in, C, T, &y->k, y->bk);
		matmul(g, qkv + Q + KV, ldq, in, C, T, &y->v, y->bv);
		rl_qk_norm_forward(&g->d, y->q_norm, y->k_norm, qkv, ldq, T, NULL, NULL, b->qk);
		const rl_rope *rope = rl_dims_rope(&g->d, &g->rope, l);
		if (rope->long_) { /* longrope: each sequence by its last position */
			for (int s = 0; s < ns; s++) {
				const struct slot *z = sl[s];
				const int *p = b->pos + z->off;
				const rl_rope *r = rl_rope_pass(rope, p[z->n_pending - 1]);
				rl_rope_forward(qkv + (size_t)z->off * ldq, ldq, p, z->n_pending,
						g->nh, r);
				rl_rope_forward(qkv + (size_t)z->off * ldq + Q, ldq, p,
						z->n_pending, g->nkvh, r);
			}
		} else {
			rl_rope_forward(qkv, ldq, b->pos, T, g->nh, rope);
			rl_rope_forward(qkv + Q, ldq, b->pos, T, g->nkvh, rope);
		}
		attention(g, b, sl, ns, l, window);
		matmul(g, tmp, C, att, Q, T, &y->o, y->bo);
		if (y->attn_out)
			rl_rmsnorm_forward(tmp, NULL, tmp, y->attn_out, T, C, g->eps,
					   g->c->norm_plus_one);
		rl_add_inplace(x, tmp, (size_t)T * C);
		in = x;
		if (y->mlp_in) {
			rl_rmsnorm_forward(h, NULL, x, y->mlp_in, T, C, g->eps,
					   g->c->norm_plus_one);
			in = h;
		}
		matmul(g, b->gu, 2 * I, in, C, T, &y->gate, y->bg);
		matmul(g, b->gu + I, 2 * I, in, C, T, &y->up, y->bu);
		rl_glu_forward(b->hh, b->gu, T, I, g->c->act);
		matmul(g, tmp, C, b->hh, I, T, &y->down, y->bd);
		if (y->mlp_out)
			rl_rmsnorm_forward(tmp, NULL, tmp, y->mlp_out, T, C, g->eps,
					   g->c->norm_plus_one);
		rl_add_inplace(x, tmp, (size_t)T * C);
	}
	for (int s = 0; s < ns; s++)
		memcpy(b->last + (size_t)s * C, x + (size_t)(sl[s]->off + sl[s]->n_pending - 1) * C,
		       sizeof(float) * C);
	rl_rmsnorm_forward(b->last, NULL, b->last, g->final_norm, ns, C, g->eps,
			   g->c->norm_plus_one);
	matmul(g, b->logits, g->V, b->last, C, ns, &g->lm, NULL);
	if (g->c->final_softcap > 0)
		rl_softcap_forward(b->logits, (size_t)ns * g->V, (float)g->c->final_softcap);
	return RL_OK;
}

/* ---- the decoding loop ---- */

/* Phi-3's longrope: a sequence growing past original_max_position_embeddings
 * is computed again from its first token, every key with the long factors
 * (Phi3ForCausalLM.prepare_inputs_for_generation drops the cache there), and
 * from then on decodes over a cache of long-factor keys. */
static int longrope_switch(const rl_config *c, const struct slot *z)
{
	int orig = c->rope_original_max_position;
	return c->rope_type == RL_ROPE_LONGROPE && z->len > 0 && z->len <= orig &&
	       z->len + z->n_pending > orig;
}

static void slot_free(struct slot *z)
{
	if (!z)
		return;
	free(z->k);
	free(z->v);
	free(z->pending);
	free(z);
}

/* Bytes of key/value cache for a sequence of cap tokens. */
static uint64_t kv_bytes(const struct gen *g, int cap)
{
	return 2 * (uint64_t)g->L * (uint64_t)cap * (uint64_t)g->KV * sizeof(float);
}

static int is_stop(const rl_gen_opts *o, int tok)
{
	for (int i = 0; i < o->n_stop; i++)
		if (o->stop[i] == tok)
			return 1;
	return 0;
}

/* The number of tokens every prompt begins with, each prompt keeping at least
 * its last token to feed. */
static int shared_prefix_len(const rl_gen_seq *seqs, size_t n)
{
	int p = seqs[0].n_prompt - 1;
	for (size_t i = 1; i < n && p > 0; i++) {
		if (seqs[i].n_prompt - 1 < p)
			p = seqs[i].n_prompt - 1;
		int j = 0;
		while (j < p && seqs[i].prompt[j] == seqs[0].prompt[j])
			j++;
		p = j;
	}
	return p;
}

/* Runs the shared prefix through the model once: pre holds its keys and
 * values ([L][P][KV]) for admissions to copy. */
static int prefix_run(struct gen *g, struct bufs *b, const rl_gen_seq *q, int P, struct slot *pre)
{
	memset(pre, 0, sizeof *pre);
	pre->cap = P;
	size_t cache = (size_t)g->L * (size_t)P * (size_t)g->KV;
	pre->k = rl_malloc_array(cache, sizeof(float));
	pre->v = rl_malloc_array(cache, sizeof(float));
	pre->pending = rl_malloc_array((size_t)P, sizeof(int));
	if (!pre->k || !pre->v || !pre->pending)
		return RL_ESYS;
	memcpy(pre->pending, q->prompt, sizeof(int) * (size_t)P);
	pre->n_pending = P;
	int rc = bufs_reserve(b, g, (size_t)P, 1, rl_attention_scratch(P, P));
	for (int t = 0; !rc && t < P; t++) {
		b->tok[t] = q->prompt[t];
		b->pos[t] = t;
	}
	struct slot *one = pre;
	return rc ? rc : forward(g, b, &one, 1, P);
}

/* A new sequence starts after the shared prefix: its keys and values copied
 * (the cache rows are [layer][position]). */
static void prefix_copy(const struct gen *g, const struct slot *pre, struct slot *z)
{
	size_t row = (size_t)pre->cap * (size_t)g->KV;
	for (int l = 0; l < g->L; l++) {
		memcpy(z->k + (size_t)l * z->cap * g->KV, pre->k + (size_t)l * row,
		       row * sizeof(float));
		memcpy(z->v + (size_t)l * z->cap * g->KV, pre->v + (size_t)l * row,
		       row * sizeof(float));
	}
	z->len = pre->cap;
}

int rl_generate(const rl_model *m, rl_gen_seq *seqs, size_t n, const rl_gen_opts *o)
{
	const rl_config *c = &m->cfg;
	if (o->max_new_tokens < 1 || o->batch_size < 1)
		return rl_error(RL_USAGE, "generate: max_new_tokens and batch_size must be >= 1");
	int max_len = 1;
	for (size_t i = 0; i < n; i++) {
		seqs[i].n_out = 0;
		seqs[i].stopped = 0;
		seqs[i].ended_early = 0;
		if (seqs[i].n_prompt < 1)
			return rl_error(RL_EDATA, "item %zu: empty prompt (no tokens)", i);
		for (int t = 0; t < seqs[i].n_prompt; t++)
			if (seqs[i].prompt[t] < 0 || seqs[i].prompt[t] >= c->vocab_size)
				return rl_error(RL_EDATA,
						"item %zu: token id %d is outside the vocabulary "
						"(%d)",
						i, seqs[i].prompt[t], c->vocab_size);
		if (seqs[i].n_prompt > INT32_MAX / 2 - o->max_new_tokens)
			return rl_error(RL_EDATA, "item %zu: prompt too long", i);
		int len = seqs[i].n_prompt + o->max_new_tokens;
		if (len > max_len)
			max_len = len;
	}
	if (n == 0)
		return RL_OK;
	struct gen g;
	int rc = gen_init(&g, m, o, max_len);
	struct bufs b;
	memset(&b, 0, sizeof b);
	int B = o->batch_size;
	struct slot **sl = rl_calloc((size_t)B, sizeof *sl);
	if (!sl)
		rc = RL_ESYS;
	int ns = 0;
	size_t next = 0, done = 0;
	struct slot pre = {0};
	/* (not with longrope: a prompt's prefix would get the tables of the
	 * prefix's length, transformers' those of the whole prompt's) */
	int P = n > 1 && !o->no_cache && !o->no_shared_prefix && c->rope_type != RL_ROPE_LONGROPE
			? shared_prefix_len(seqs, n)
			: 0;
	if (P < RL_GEN_SHARED_PREFIX_MIN)
		P = 0;
	if (!rc && P)
		rc = prefix_run(&g, &b, &seqs[0], P, &pre);
	uint64_t kv_used = 0;
	uint64_t new_tokens = 0;
	while (!rc && (done < n)) {
		/* Admit prompts into free slots, while their key/value caches fit
		 * the budget (one sequence always runs, whatever its size). */
		while (ns < B && next < n) {
			rl_gen_seq *q = &seqs[next];
			uint64_t need = kv_bytes(&g, q->n_prompt + o->max_new_tokens);
			if (ns > 0 && o->kv_budget_bytes && kv_used + need > o->kv_budget_bytes)
				break;
			struct slot *z = rl_calloc(1, sizeof *z);
			if (!z) {
				rc = RL_ESYS;
				break;
			}
			z->seq = next++;
			z->cap = q->n_prompt + o->max_new_tokens;
			size_t cache = (size_t)g.L * (size_t)z->cap * (size_t)g.KV;
			z->k = rl_malloc_array(cache, sizeof(float));
			z->v = rl_malloc_array(cache, sizeof(float));
			z->pending = rl_malloc_array((size_t)z->cap, sizeof(int));
			if (!z->k || !z->v || !z->pending) {
				slot_free(z);
				rc = RL_ESYS;
				break;
			}
			memcpy(z->pending, q->prompt + P, sizeof(int) * (size_t)(q->n_prompt - P));
			z->n_pending = q->n_prompt - P;
			if (P)
				prefix_copy(&g, &pre, z);
			sl[ns++] = z;
			kv_used += need;
		}
		if (rc)
			break;
		/* Pack the pending tokens. */
		size_t T = 0, attn = 0;
		for (int s = 0; s < ns; s++) {
			struct slot *z = sl[s];
			if (o->no_cache || longrope_switch(c, z)) { /* everything again */
				rl_gen_seq *q = &seqs[z->seq];
				memcpy(z->pending, q->prompt, sizeof(int) * (size_t)q->n_prompt);
				memcpy(z->pending + q->n_prompt, q->out,
				       sizeof(int) * (size_t)q->n_out);
				z->n_pending = q->n_prompt + q->n_out;
				z->len = 0;
			}
			z->off = (int)T;
			T += (size_t)z->n_pending;
			size_t a = rl_attention_scratch(z->n_pending, z->len + z->n_pending);
			attn = a > attn ? a : attn;
		}
		if ((rc = bufs_reserve(&b, &g, T, (size_t)ns, attn)))
			break;
		for (int s = 0; s < ns; s++) {
			struct slot *z = sl[s];
			for (int t = 0; t < z->n_pending; t++) {
				b.tok[z->off + t] = z->pending[t];
				b.pos[z->off + t] = z->len + t;
			}
		}
		if ((rc = forward(&g, &b, sl, ns, (int)T)))
			break;
		/* Pick, record, retire. */
		int kept = 0;
		for (int s = 0; s < ns; s++) {
			struct slot *z = sl[s];
			rl_gen_seq *q = &seqs[z->seq];
			const float *lg = b.logits + (size_t)s * g.V;
			if (q->n_out == 0 && q->first_logits)
				memcpy(q->first_logits, lg, sizeof(float) * (size_t)g.V);
			int tok = argmax(lg, g.V);
			q->out[q->n_out++] = tok;
			new_tokens++;
			z->len += z->n_pending;
			z->pending[0] = tok;
			z->n_pending = 1;
			q->stopped = is_stop(o, tok);
			if (!q->stopped && q->n_out < o->max_new_tokens && o->early_stop)
				q->ended_early = o->early_stop(o->seq_ctx, z->seq, q) == 1;
			if (q->stopped || q->ended_early || q->n_out == o->max_new_tokens) {
				size_t i = z->seq;
				kv_used -= kv_bytes(&g, z->cap);
				slot_free(z);
				done++;
				if (o->finished && !rc)
					rc = o->finished(o->seq_ctx, i, q);
			} else {
				sl[kept++] = z;
			}
		}
		ns = kept;
		if (o->progress)
			o->progress(o->progress_ctx, done, n, new_tokens);
	}
	if (sl)
		for (int s = 0; s < ns; s++)
			slot_free(sl[s]);
	free(sl);
	free(pre.k);
	free(pre.v);
	free(pre.pending);
	bufs_free(&b);
	gen_free(&g);
	return rc;
}

/* ---- stop tokens ---- */

static void add_id(int *ids, int cap, int *n, int id)
{
	for (int i = 0; i < *n; i++)
		if (ids[i] == id)
			return;
	if (*n < cap)
		ids[(*n)++] = id;
}

int rl_gen_stop_tokens(const rl_model *m, int *ids, int cap, int *n)
{
	*n = 0;
	size_t dl = strlen(m->dir);
	char *path = rl_malloc(dl + 32);
	if (!path)
		return RL_ESYS;
	snprintf(path, dl + 32, "%s/generation_config.json", m->dir);
	char *text;
	size_t len;
	int rc = rl_path_present(path) ? rl_read_file(path, &text, &len) : RL_NO;
	if (rc == RL_OK) {
		cJSON *j;
		char *what = rl_malloc(dl + 40);
		rc = what ? RL_OK : RL_ESYS;
		if (what) {
			snprintf(what, dl + 40, "'%s'", path);
			rc = rl_json_parse(text, len, what, &j);
		}
		free(what);
		free(text);
		if (rc) {
			free(path);
			return rc;
		}
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "eos_token_id");
		if (cJSON_IsNumber(e)) {
			add_id(ids, cap, n, (int)e->valuedouble);
		} else if (cJSON_IsArray(e)) {
			const cJSON *x;
			cJSON_ArrayForEach(x, e)
			{
				if (!cJSON_IsNumber(x)) {
					cJSON_Delete(j);
					rc = rl_error(RL_EDATA,
						      "'%s': \"eos_token_id\" holds a non-number",
						      path);
					free(path);
					return rc;
				}
				add_id(ids, cap, n, (int)x->valuedouble);
			}
		}
		cJSON_Delete(j);
	} else if (rc != RL_NO) { /* RL_NO: no generation_config.json, config.json decides */
		free(path);
		return rc;
	}
	free(path);
	for (int i = 0; i < m->cfg.n_eos; i++)
		add_id(ids, cap, n, m->cfg.eos_token_ids[i]);
	return RL_OK;
}
