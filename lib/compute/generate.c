/* generate.c — batched greedy decoding with a KV cache (see generate.h).
 *
 * One step, for the tokens of every sequence in flight packed into T rows
 * (a sequence's rows are consecutive; row t has position pos[t]):
 *
 *   x[T,C]   = embed(tok) (* sqrt(C) for Gemma)         rl_embed_forward
 *   per layer l: x = layer_l(x), the engine's own layer (layer.h:
 *     rl_layer_forward), its keys and values appended to each sequence's
 *     cache (rl_kv) and its queries attending over that cache, its matrices
 *     multiplied as stored (RL_W_AS_STORED) at the run's precision
 *     (the last layer in last-only mode: its output at each sequence's
 *     last row only)
 *   those rows -> rmsnorm(final_norm) -> logits = h lm^T [B, V]
 *   (Gemma 2: soft-capped) -> argmax.
 *
 * The gradient (engine.c) and generation run the same layer code, so the
 * per-architecture rules (norm layouts, q/k norms, windows, RoPE variants)
 * exist once.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/engine.h"
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

struct gen {
	const rl_model *m;
	const rl_config *c;
	rl_dims d; /* the layer's per-architecture rules, shared with the engine */
	int C, V, L, KV, max_len;
	rl_layer_w *layers; /* norms and biases; matrices as stored */
	const rl_tensor *lm;
	float *final_norm;
	float *scratch; /* rl_wgemm's, for lm_head */
	rl_precision prec;
	rl_rope rope;
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
	float *x, *y;	  /* [rows, C]: a layer's input and output, swapped per layer */
	int *tok, *pos;	  /* [rows] */
	int *start;	  /* [batch + 1]: each sequence's first row */
	float **kc, **vc; /* [batch]: the sequences' caches at the current layer */
	int *past;	  /* [batch]: tokens already in them */
	rl_layer_act act; /* capT = capR = rows */
	rl_layer_ws ws;
	float *last, *logits;
};

/* ---- weights ---- */

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

static void gen_free(struct gen *g)
{
	if (g->layers)
		for (int l = 0; l < g->L; l++)
			rl_layer_w_free(&g->layers[l]);
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
	g->V = c->vocab_size;
	g->L = c->n_layers;
	g->KV = c->n_kv_heads * c->head_dim;
	g->max_len = max_len;
	g->prec = o->precision;
	rl_dims_init(&g->d, c);
	if (!m->embed || !m->final_norm || !m->lm_head)
		return rl_error(RL_EDATA, "'%s': the model lacks embeddings, final norm or lm_head",
				m->dir);
	if (m->lm_head->numel != (uint64_t)g->V * (uint64_t)g->C)
		return rl_error(RL_EDATA, "'%s': lm_head does not match the configuration", m->dir);
	int rc = rl_rope_init(&g->rope, c, max_len);
	if (rc)
		return rc;
	g->layers = rl_calloc((size_t)g->L, sizeof *g->layers);
	if (!g->layers)
		return RL_ESYS;
	g->lm = m->lm_head;
	if (m->final_norm->numel != (uint64_t)g->C)
		return rl_error(RL_EDATA, "'%s': the final norm does not match the configuration",
				m->dir);
	if ((rc = vec_load(m->final_norm, &g->final_norm)) || (rc = rl_tensor_check_finite(g->lm)))
		return rc;
	for (int l = 0; l < g->L; l++) {
		rl_layer_w *w = &g->layers[l];
		if ((rc = rl_layer_w_alloc_vectors(w, &g->d)))
			return rc;
		w->prec = g->prec;
		if ((rc = rl_layer_w_load(w, &g->d, m, l, RL_W_AS_STORED)))
			return rc;
	}
	g->scratch = rl_malloc_array(rl_wgemm_scratch(g->C), sizeof(float));
	return g->scratch ? RL_OK : RL_ESYS;
}

/* ---- step buffers ---- */

static void bufs_free(struct bufs *b)
{
	free(b->x);
	free(b->y);
	free(b->tok);
	free(b->pos);
	free(b->start);
	free(b->kc);
	free(b->vc);
	free(b->past);
	rl_layer_act_free(&b->act);
	rl_layer_ws_free(&b->ws);
	free(b->last);
	free(b->logits);
	memset(b, 0, sizeof *b);
}

static int grow(void *p, size_t n, size_t size)
{
	void *q = rl_realloc_array(*(void **)p, n ? n : 1, size);
	if (!q)
		return RL_ESYS;
	*(void **)p = q;
	return RL_OK;
}

/* Room for T packed rows, B sequences, and a sequence of up to maxlen rows in
 * one step (attention over up to g->max_len keys). */
static int bufs_reserve(struct bufs *b, const struct gen *g, size_t T, size_t B, int maxlen)
{
	int rc = RL_OK;
	size_t C = (size_t)g->C;
	if (T > b->rows) {
		size_t n = T + T / 4;
		if (n > INT32_MAX)
			return rl_error(RL_USAGE, "generate: %zu rows in one step", T);
		rl_layer_act_free(&b->act);
		if ((rc = grow(&b->x, n * C, sizeof(float))) ||
		    (rc = grow(&b->y, n * C, sizeof(float))) ||
		    (rc = grow(&b->tok, n, sizeof(int))) || (rc = grow(&b->pos, n, sizeof(int))) ||
		    (rc = rl_layer_act_alloc(&b->act, &g->d, (int)n, (int)n)))
			return rc;
		b->rows = n;
	}
	if (B > b->batch) {
		if ((rc = grow(&b->last, B * C, sizeof(float))) ||
		    (rc = grow(&b->logits, B * (size_t)g->V, sizeof(float))) ||
		    (rc = grow(&b->start, B + 1, sizeof(int))) ||
		    (rc = grow(&b->kc, B, sizeof(float *))) ||
		    (rc = grow(&b->vc, B, sizeof(float *))) ||
		    (rc = grow(&b->past, B, sizeof(int))))
			return rc;
		b->batch = B;
	}
	rl_layer_ws *ws = &b->ws;
	if (!ws->mem || (size_t)ws->capT < b->rows || ws->maxlen < maxlen ||
	    ws->nscr != rl_par_threads()) {
		int ml = ws->maxlen > maxlen ? ws->maxlen : maxlen;
		rl_layer_ws_free(ws);
		rc = rl_layer_ws_alloc_forward(ws, &g->d, (int)b->rows, (int)b->rows, ml,
					       g->max_len);
		ws->blas_single = 1; /* layer.h */
	}
	return rc;
}

/* ---- the forward over packed rows ---- */

/* Runs the T packed rows of the slots through the model and leaves each
 * slot's last-row logits in b->logits[slot index]. */
static int forward(struct gen *g, struct bufs *b, struct slot **sl, int ns, int T)
{
	int C = g->C, rc = rl_embed_forward(g->m, b->tok, T, b->x);
	if (rc)
		return rc;
	for (int s = 0; s < ns; s++) {
		b->start[s] = sl[s]->off;
		b->past[s] = sl[s]->len;
	}
	b->start[ns] = T;
	rl_seqs seqs = {ns, T, b->start, b->pos};
	rl_kv kv = {b->kc, b->vc, b->past};
	float *x = b->x, *y = b->y;
	for (int l = 0; l < g->L; l++) {
		for (int s = 0; s < ns; s++) {
			size_t at = (size_t)l * (size_t)sl[s]->cap * (size_t)g->KV;
			b->kc[s] = sl[s]->k + at;
			b->vc[s] = sl[s]->v + at;
		}
		/* the last layer's output only where the logits are taken: each
		 * sequence's last row (its keys and values still for every row) */
		int flags = l == g->L - 1 ? RL_LAYER_LAST_ONLY : 0;
		if ((rc = rl_layer_forward(&g->d, l, &g->layers[l], &g->rope, &seqs, &kv, x, y,
					   &b->act, &b->ws, flags)))
			return rc;
		float *t = x;
		x = y, y = t;
	}
	rl_rmsnorm_forward(b->last, NULL, x, g->final_norm, ns, C, (float)g->c->rms_eps,
			   g->c->norm_plus_one);
	rl_wgemm(b->logits, g->V, b->last, C, rl_tensor_elem(g->lm, 0), g->lm->dtype, NULL, ns,
		 g->V, C, g->prec, g->scratch);
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
	int rc = bufs_reserve(b, g, (size_t)P, 1, P);
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
	if (o->batch_invariant)
		rl_wgemm_set_row_invariant(1);
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
	int P = n > 1 && !o->no_cache && !o->no_shared_prefix && !o->batch_invariant &&
				c->rope_type != RL_ROPE_LONGROPE
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
		size_t T = 0;
		int maxlen = 1;
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
			maxlen = z->n_pending > maxlen ? z->n_pending : maxlen;
		}
		if ((rc = bufs_reserve(&b, &g, T, (size_t)ns, maxlen)))
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
			int tok = rl_argmax(lg, g.V);
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
	if (o->batch_invariant)
		rl_wgemm_set_row_invariant(0);
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
