/* test_engine.c — the engine against transformers (tests/gen/gen_engine.py):
 * for random tiny Llama, Llama-3 (bf16, sharded, tied, biases, L = n_layers),
 * Mistral (sliding window, linear RoPE), Qwen2 (bf16, q/k/v biases, tied),
 * Gemma (bf16, MQA, head_dim != C/heads, legacy "gelu") and Qwen3 (per-head
 * q/k norms, head_dim != C/heads, a sliding window from max_window_layers)
 * models:
 *   hidden_states[L] at the last token, the direction, the full model's logits,
 *   the per-batch losses and every gradient torch autograd computed through
 *   transformers' modules (candidates; norms and embeddings where recorded).
 *
 * Tolerances. The fixture stores fp64 results and, per tensor, err32: the
 * largest |torch fp32 - torch fp64| over the tensor, i.e. how far PyTorch's own
 * fp32 computation lands from the exact answer. realign computes in fp32 too,
 * with other summation orders, so its error is of the same size but not the
 * same; each element must satisfy
 *     |got - ref| <= ERR_FACTOR * err32 + FLOOR * max|ref|
 * ERR_FACTOR = 8 leaves room for realign's own rounding (observed ratios
 * max|got - ref| / err32 are printed with -v and stay below ~3); FLOOR = 1e-6
 * covers tensors whose err32 happens to be tiny (a few elements). A real bug
 * (a missing bias, a wrong RoPE frequency, an off-by-one mask) gives errors
 * orders of magnitude above this. The first mismatch is named. Besides, every
 * tensor as a whole: the relative L2 error ||got - ref|| / ||ref|| within
 * 1e-5 for hidden states, the direction and logits, 1e-4 for gradients (the
 * parity figures the architectures are held to; printed with -v).
 *
 * Also: chunked vs whole forward, and the gradient with every layer
 * recomputed (mem_limit of one byte) vs all kept. */
#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compute/engine.h"
#include "compute/wgemm.h"
#include "core/error.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "store/safetensors.h"

#define ERR_FACTOR 8.0
#define FLOOR 1e-6

static int verbose;

typedef struct ref {
	rl_st_file f;
	cJSON *meta;
} ref;

static float *ref_get(ref *r, const char *name, size_t *n)
{
	const rl_st_tensor *t = rl_st_find(&r->f, name);
	if (!t)
		return NULL;
	float *p = malloc(t->nbytes ? t->nbytes : 1);
	REQUIRE(p && t->dtype == RL_DT_F32);
	memcpy(p, r->f.map + t->offset, t->nbytes);
	*n = t->numel;
	return p;
}

static double meta_num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	REQUIRE(cJSON_IsNumber(v));
	return v->valuedouble;
}

/* compares got against the fixture tensor `name`; returns 1 if it matched */
static int compare(ref *r, const char *cs, const char *name, const float *got, size_t n)
{
	size_t rn = 0;
	float *want = ref_get(r, name, &rn);
	char what[256];
	snprintf(what, sizeof what, "%s: %s", cs, name);
	CHECKF(want != NULL, "%s: not in the fixture", what);
	if (!want)
		return 0;
	CHECKF(rn == n, "%s: %zu elements, fixture has %zu", what, n, rn);
	const cJSON *e32 = cJSON_GetObjectItemCaseSensitive(r->meta, "err32");
	double err32 = meta_num(e32, name), mx = 0, worst = 0, se = 0, sr = 0;
	for (size_t i = 0; i < n && i < rn; i++) {
		mx = fabs(want[i]) > mx ? fabs(want[i]) : mx;
		double dlt = fabs((double)got[i] - want[i]);
		worst = dlt > worst ? dlt : worst;
		se += dlt * dlt;
		sr += (double)want[i] * want[i];
	}
	double atol = ERR_FACTOR * err32 + FLOOR * mx;
	int ok = rn == n && check_close(what, got, want, n, atol, 0);
	int grad = strcmp(name, "hidden") && strcmp(name, "logits") && strcmp(name, "direction");
	double rel = sr > 0 ? sqrt(se / sr) : sqrt(se), rmax = grad ? 1e-4 : 1e-5;
	CHECKF(rel <= rmax, "%s: relative L2 error %.3g > %g", what, rel, rmax);
	ok &= rel <= rmax;
	if (verbose)
		fprintf(stderr, "%-60s max|ref| %.3g err32 %.3g worst %.3g ratio %.2f relL2 %.2g\n",
			what, mx, err32, worst, err32 > 0 ? worst / err32 : 0, rel);
	free(want);
	return ok;
}

static void read_prompts(const char *dir, const char *file, const rl_model *m, rl_prompts *p)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	rl_prompts_opts o = {0, m->cfg.vocab_size, m->cfg.max_position, NULL, NULL};
	REQUIRE(rl_prompts_read(p, path, &o) == RL_OK);
}

/* The batches' partials (RL_GRAD_PER_BATCH) added in batch order are the
 * summed gradient bit for bit, and the batches from the second on, alone,
 * give the same partials (what rl-grad --shard and rl-sum rely on). */
static void shard_check(rl_engine *e, const rl_model *m, const rl_prompts *pg, int bs,
			const float *dir, const char *cs)
{
	rl_grad whole, per, tail;
	REQUIRE(rl_grad_begin(&whole, e, pg, bs, dir, RL_GRAD_LINEAR) == RL_OK);
	REQUIRE(rl_grad_begin(&per, e, pg, bs, dir, RL_GRAD_LINEAR | RL_GRAD_PER_BATCH) == RL_OK);
	int nb = per.nbatch;
	REQUIRE(nb >= 2);
	rl_prompts sub;
	REQUIRE(rl_prompts_slice(&sub, pg, bs, pg->n) == RL_OK);
	rl_engine e2;
	REQUIRE(rl_engine_init(&e2, m, e->L, sub.max_len, NULL) == RL_OK);
	REQUIRE(rl_grad_begin(&tail, &e2, &sub, bs, dir, RL_GRAD_LINEAR | RL_GRAD_PER_BATCH) ==
		RL_OK);
	CHECK_EQ_INT(tail.nbatch, nb - 1);
	for (int b = 1; b < nb; b++)
		CHECKF(tail.loss[b - 1] == per.loss[b], "%s: batch %d's loss alone", cs, b);
	float *acc = NULL;
	size_t nf = 0;
	for (;;) {
		int layer, lw, batch, lt, bt;
		const rl_layer_w *gw, *gp, *gt;
		REQUIRE(rl_grad_next(&whole, &lw, &gw) == RL_OK);
		if (lw < 0)
			break;
		for (int b = 0; b < nb; b++) {
			REQUIRE(rl_grad_next_batch(&per, &layer, &batch, &gp) == RL_OK);
			CHECK_EQ_INT(layer, lw);
			CHECK_EQ_INT(batch, b);
			if (!acc) {
				nf = gp->nfloats;
				acc = malloc(nf * sizeof *acc);
				REQUIRE(acc);
			}
			if (b == 0)
				memcpy(acc, gp->mem, nf * sizeof *acc);
			else
				for (size_t i = 0; i < nf; i++)
					acc[i] += gp->mem[i];
			if (b == 0)
				continue;
			REQUIRE(rl_grad_next_batch(&tail, &lt, &bt, &gt) == RL_OK);
			CHECK_EQ_INT(lt, lw);
			CHECK_EQ_INT(bt, b - 1);
			CHECKF(memcmp(gt->mem, gp->mem, nf * sizeof *acc) == 0,
			       "%s: layer %d, batch %d's partial alone differs", cs, lw, b);
		}
		CHECKF(memcmp(acc, gw->mem, nf * sizeof *acc) == 0,
		       "%s: layer %d: the partials added in batch order differ from the gradient",
		       cs, lw);
	}
	int layer, batch;
	const rl_layer_w *gp;
	REQUIRE(rl_grad_next_batch(&per, &layer, &batch, &gp) == RL_OK);
	CHECK_EQ_INT(layer, -1);
	free(acc);
	rl_grad_end(&whole);
	rl_grad_end(&per);
	rl_grad_end(&tail);
	rl_engine_free(&e2);
	rl_prompts_free(&sub);
}

static void test_case(const char *cs)
{
	char dir[4096], path[4096];
	snprintf(dir, sizeof dir, "%s", check_fixture("engine/"));
	strncat(dir, cs, sizeof dir - strlen(dir) - 1);
	ref r;
	snprintf(path, sizeof path, "%s/ref.safetensors", dir);
	REQUIRE(rl_st_open(&r.f, path, RL_ST_READ) == RL_OK);
	char *mtext;
	size_t mlen;
	snprintf(path, sizeof path, "%s/meta.json", dir);
	REQUIRE(rl_read_file(path, &mtext, &mlen) == RL_OK);
	r.meta = cJSON_Parse(mtext);
	free(mtext);
	REQUIRE(r.meta);
	int L = (int)meta_num(r.meta, "L"), bs = (int)meta_num(r.meta, "batch_size");

	rl_model m;
	snprintf(path, sizeof path, "%s/model", dir);
	REQUIRE(rl_model_open(&m, path, RL_MODEL_READ) == RL_OK);
	int C = m.cfg.hidden_size, V = m.cfg.vocab_size, N = m.cfg.n_layers;
	rl_prompts pd, pg;
	read_prompts(dir, "dir.jsonl", &m, &pd);
	read_prompts(dir, "grad.jsonl", &m, &pg);
	int maxlen = pd.max_len > pg.max_len ? pd.max_len : pg.max_len;

	/* hidden states and the direction */
	rl_engine e;
	REQUIRE(rl_engine_init(&e, &m, L, maxlen, NULL) == RL_OK);
	float *h = malloc((size_t)pd.n * C * sizeof *h),
	      *h2 = malloc((size_t)pd.n * C * sizeof *h2);
	REQUIRE(h && h2);
	REQUIRE(rl_engine_hidden(&e, &pd, 0, h) == RL_OK);
	compare(&r, cs, "hidden", h, (size_t)pd.n * C);
	float *dir_ = malloc((size_t)C * sizeof *dir_);
	REQUIRE(dir_);
	for (int c = 0; c < C; c++) {
		double s = 0;
		for (int i = 0; i < pd.n; i++)
			s += h[(size_t)i * C + c];
		dir_[c] = (float)(s / pd.n);
	}
	compare(&r, cs, "direction", dir_, (size_t)C);
	/* chunks of two prompts: the same numbers */
	REQUIRE(rl_engine_hidden(&e, &pd, 2, h2) == RL_OK);
	char what[256];
	snprintf(what, sizeof what, "%s: hidden in chunks vs at once", cs);
	double hmax = 1; /* other GEMM blockings: rounding relative to the largest value */
	for (size_t i = 0; i < (size_t)pd.n * C; i++)
		hmax = fabs(h[i]) > hmax ? fabs(h[i]) : hmax;
	check_close(what, h2, h, (size_t)pd.n * C, 1e-6 * hmax, 1e-5);

	/* the full model's logits at the last token */
	rl_engine ef;
	REQUIRE(rl_engine_init(&ef, &m, N, maxlen, NULL) == RL_OK);
	REQUIRE(rl_engine_hidden(&ef, &pd, 0, h2) == RL_OK);
	float *logits = malloc((size_t)pd.n * V * sizeof *logits);
	REQUIRE(logits);
	REQUIRE(rl_lm_head_forward(&m, h2, pd.n, logits) == RL_OK);
	compare(&r, cs, "logits", logits, (size_t)pd.n * V);
	rl_engine_free(&ef);

	/* gradients, with the fixture's direction */
	size_t dn;
	float *d = ref_get(&r, "direction", &dn);
	REQUIRE(d && dn == (size_t)C);
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(r.meta, "grad_tensors");
	int nref = cJSON_GetArraySize(names), found = 0;
	int want = RL_GRAD_LINEAR | RL_GRAD_NORMS | RL_GRAD_EMBED;
	rl_grad g;
	REQUIRE(rl_grad_begin(&g, &e, &pg, bs, d, want) == RL_OK);
	CHECK_EQ_INT(g.nbatch, (int)meta_num(r.meta, "n_grad") / bs + 1);
	const cJSON *losses = cJSON_GetObjectItemCaseSensitive(r.meta, "losses");
	const cJSON *l32 = cJSON_GetObjectItemCaseSensitive(r.meta, "losses_f32");
	for (int b = 0; b < g.nbatch; b++) {
		double lw = cJSON_GetArrayItem(losses, b)->valuedouble;
		double e32 = fabs(cJSON_GetArrayItem(l32, b)->valuedouble - lw);
		float got = (float)g.loss[b], wf = (float)lw;
		snprintf(what, sizeof what, "%s: loss of batch %d", cs, b);
		check_close(what, &got, &wf, 1, ERR_FACTOR * e32 + 1e-6, 0);
		CHECK(fabs(g.cos[b] + g.loss[b]) < 1e-12);
	}
	/* the same gradient with every layer recomputed */
	rl_engine e2;
	rl_engine_opts tiny = {1, 0, RL_PREC_FP32};
	REQUIRE(rl_engine_init(&e2, &m, L, maxlen, &tiny) == RL_OK);
	rl_grad g2;
	REQUIRE(rl_grad_begin(&g2, &e2, &pg, bs, d, want) == RL_OK);
	CHECK_EQ_INT(e2.recomputed, L - 1);
	CHECK_EQ_INT(e.recomputed, 0);
	static const rl_role roles[] = {
		RL_R_Q,		RL_R_K,	     RL_R_V,	     RL_R_O,	       RL_R_GATE,
		RL_R_UP,	RL_R_DOWN,   RL_R_ATTN_NORM, RL_R_MLP_NORM,    RL_R_Q_BIAS,
		RL_R_K_BIAS,	RL_R_V_BIAS, RL_R_O_BIAS,    RL_R_GATE_BIAS,   RL_R_UP_BIAS,
		RL_R_DOWN_BIAS, RL_R_Q_NORM, RL_R_K_NORM,    RL_R_PRE_FF_NORM, RL_R_POST_FF_NORM,
		RL_R_QKV,	RL_R_GATE_UP};
	for (int expect = L - 1;; expect--) {
		int layer, layer2;
		const rl_layer_w *gw, *gw2;
		REQUIRE(rl_grad_next(&g, &layer, &gw) == RL_OK);
		REQUIRE(rl_grad_next(&g2, &layer2, &gw2) == RL_OK);
		CHECK_EQ_INT(layer, expect < 0 ? -1 : expect);
		CHECK_EQ_INT(layer2, layer);
		if (layer < 0)
			break;
		snprintf(what, sizeof what, "%s: layer %d gradient, recomputed vs kept", cs, layer);
		check_close(what, gw2->mem, gw->mem, gw->nfloats, 0, 1e-6);
		for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++) {
			const rl_tensor *t = rl_model_get(&m, layer, roles[k]);
			size_t n;
			float *part = rl_layer_w_part(gw, &e.d, roles[k], &n);
			CHECK((t == NULL) == (part == NULL));
			if (!t || !part || !rl_st_find(&r.f, t->name))
				continue;
			found++;
			compare(&r, cs, t->name, part, n);
		}
	}
	if (rl_st_find(&r.f, "model.embed_tokens.weight")) {
		found++;
		compare(&r, cs, "model.embed_tokens.weight", g.dembed, (size_t)V * C);
	}
	CHECKF(found == nref, "%s: compared %d gradient tensors, the fixture has %d", cs, found,
	       nref);
	rl_grad_end(&g);
	rl_grad_end(&g2);
	rl_engine_free(&e2);
	shard_check(&e, &m, &pg, bs, d, cs);

	/* a prompt alone gives the hidden state it has inside the set */
	rl_prompts one;
	const int32_t *ids1[1] = {pd.ids + pd.start[3]};
	int len1 = rl_prompt_len(&pd, 3);
	REQUIRE(rl_prompts_from_ids(&one, 1, ids1, &len1) == RL_OK);
	REQUIRE(rl_engine_hidden(&e, &one, 0, h2) == RL_OK);
	snprintf(what, sizeof what, "%s: prompt alone vs packed", cs);
	check_close(what, h2, h + 3 * (size_t)C, (size_t)C, 1e-6, 1e-5);
	rl_prompts_free(&one);

	rl_engine_free(&e);
	free(h), free(h2), free(dir_), free(logits), free(d);
	rl_prompts_free(&pd);
	rl_prompts_free(&pg);
	rl_model_close(&m);
	rl_st_close(&r.f);
	cJSON_Delete(r.meta);
}

/* Precision bf16 against tests/gen/gen_engine_bf16.py (torch, every decoder
 * linear layer's input rounded to bf16): the hidden states, the losses and
 * the candidate gradients, kept and recomputed.
 *
 * Tolerance. Rounding to bf16 is discontinuous: where an f32 activation lies
 * within an ulp of a point halfway between two bf16 values, f32 sums in
 * another order (realign's kernels vs torch) round it the other way, one
 * bf16 ulp (2^-8) apart, and that difference travels on through the layers.
 * So beside the fp32 noise (ERR_FACTOR * err32) each element may be off by a
 * share of shift = max|bf16 reference - fp32 reference| (the whole effect of
 * the rounding on the tensor): FLIP_SHARE of it. And to show that the inputs
 * were rounded at all, realign's result must lie nearer the bf16 reference
 * than the fp32 one does, by a factor 2 in root mean square.
 *
 * On a CPU without bf16 dot products precision bf16 computes as fp32: then
 * the fp32 fixture is the truth, as in test_case (a note says so). */
#define FLIP_SHARE 0.5

static int compare_bf16(ref *r, ref *r32, const char *cs, const char *name, const float *got,
			size_t n)
{
	size_t rn = 0, an = 0;
	float *want = ref_get(r, name, &rn), *alt = ref_get(r32, name, &an);
	char what[256];
	snprintf(what, sizeof what, "%s: %s", cs, name);
	REQUIRE(want && alt && rn == n && an == n);
	const cJSON *e32 = cJSON_GetObjectItemCaseSensitive(r->meta, "err32");
	double err32 = meta_num(e32, name), mx = 0, shift = 0, d_got = 0, d_alt = 0;
	for (size_t i = 0; i < n; i++) {
		mx = fabs(want[i]) > mx ? fabs(want[i]) : mx;
		double s = fabs((double)alt[i] - want[i]);
		shift = s > shift ? s : shift;
		d_got += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
		d_alt += s * s;
	}
	double atol = ERR_FACTOR * err32 + FLIP_SHARE * shift + FLOOR * mx;
	int ok = check_close(what, got, want, n, atol, 0);
	CHECKF(4 * d_got < d_alt, "%s: rms %.3g from the bf16 reference, the fp32 one is %.3g",
	       what, sqrt(d_got / n), sqrt(d_alt / n));
	if (verbose)
		fprintf(stderr, "%-60s shift %.3g rms %.3g (fp32 %.3g)\n", what, shift,
			sqrt(d_got / n), sqrt(d_alt / n));
	free(want);
	free(alt);
	return ok;
}

static void test_case_bf16(const char *cs)
{
	char dir[4096], path[4096];
	snprintf(dir, sizeof dir, "%s", check_fixture("engine/"));
	strncat(dir, cs, sizeof dir - strlen(dir) - 1);
	int hw = rl_wgemm_kernel_bf16(rl_wgemm_pick(RL_PREC_BF16, RL_DT_BF16, 1));
	if (!hw)
		printf("test_engine: %s at bf16: no bf16 dot products here, compared with fp32\n",
		       cs);
	ref r, r32; /* the bf16 and fp32 references */
	const char *files[2][2] = {{"ref_bf16", "meta_bf16"}, {"ref", "meta"}};
	for (int i = 0; i < 2; i++) {
		ref *x = i ? &r32 : &r;
		snprintf(path, sizeof path, "%s/%s.safetensors", dir, files[i][0]);
		REQUIRE(rl_st_open(&x->f, path, RL_ST_READ) == RL_OK);
		char *mtext;
		size_t mlen;
		snprintf(path, sizeof path, "%s/%s.json", dir, files[i][1]);
		REQUIRE(rl_read_file(path, &mtext, &mlen) == RL_OK);
		x->meta = cJSON_Parse(mtext);
		free(mtext);
		REQUIRE(x->meta);
	}
	int L = (int)meta_num(r.meta, "L"), bs = (int)meta_num(r.meta, "batch_size");
	rl_model m;
	snprintf(path, sizeof path, "%s/model", dir);
	REQUIRE(rl_model_open(&m, path, RL_MODEL_READ) == RL_OK);
	int C = m.cfg.hidden_size;
	rl_prompts pd, pg;
	read_prompts(dir, "dir.jsonl", &m, &pd);
	read_prompts(dir, "grad.jsonl", &m, &pg);
	int maxlen = pd.max_len > pg.max_len ? pd.max_len : pg.max_len;
	char what[256];
	snprintf(what, sizeof what, "%s at bf16", cs);

	rl_engine e, e2;
	rl_engine_opts o = {0, 0, RL_PREC_BF16}, tiny = {1, 0, RL_PREC_BF16};
	REQUIRE(rl_engine_init(&e, &m, L, maxlen, &o) == RL_OK);
	float *h = malloc((size_t)pd.n * C * sizeof *h);
	REQUIRE(h);
	REQUIRE(rl_engine_hidden(&e, &pd, 0, h) == RL_OK);
	if (hw)
		compare_bf16(&r, &r32, what, "hidden", h, (size_t)pd.n * C);
	else
		compare(&r32, what, "hidden", h, (size_t)pd.n * C);

	size_t dn;
	float *d = ref_get(&r32, "direction", &dn); /* what both fixtures used */
	REQUIRE(d && dn == (size_t)C);
	rl_grad g, g2;
	REQUIRE(rl_grad_begin(&g, &e, &pg, bs, d, RL_GRAD_LINEAR) == RL_OK);
	REQUIRE(rl_engine_init(&e2, &m, L, maxlen, &tiny) == RL_OK);
	REQUIRE(rl_grad_begin(&g2, &e2, &pg, bs, d, RL_GRAD_LINEAR) == RL_OK);
	const cJSON *losses = cJSON_GetObjectItemCaseSensitive(r.meta, "losses"),
		    *l32 = cJSON_GetObjectItemCaseSensitive(r.meta, "losses_f32"),
		    *lfp = cJSON_GetObjectItemCaseSensitive(r32.meta, "losses");
	for (int b = 0; b < g.nbatch; b++) {
		double lw = cJSON_GetArrayItem(hw ? losses : lfp, b)->valuedouble;
		double e32 = fabs(cJSON_GetArrayItem(l32, b)->valuedouble -
				  cJSON_GetArrayItem(losses, b)->valuedouble);
		double shift = fabs(cJSON_GetArrayItem(lfp, b)->valuedouble -
				    cJSON_GetArrayItem(losses, b)->valuedouble);
		float got = (float)g.loss[b], wf = (float)lw;
		char w2[320];
		snprintf(w2, sizeof w2, "%s: loss of batch %d", what, b);
		check_close(w2, &got, &wf, 1,
			    ERR_FACTOR * e32 + (hw ? FLIP_SHARE * shift : 0) + 1e-6, 0);
	}
	static const rl_role roles[] = {RL_R_Q,	      RL_R_K,	      RL_R_V,	   RL_R_O,
					RL_R_GATE,    RL_R_UP,	      RL_R_DOWN,   RL_R_Q_BIAS,
					RL_R_K_BIAS,  RL_R_V_BIAS,    RL_R_O_BIAS, RL_R_GATE_BIAS,
					RL_R_UP_BIAS, RL_R_DOWN_BIAS, RL_R_QKV,	   RL_R_GATE_UP};
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(r.meta, "grad_tensors");
	int found = 0, nref = cJSON_GetArraySize(names);
	for (;;) {
		int layer, layer2;
		const rl_layer_w *gw, *gw2;
		REQUIRE(rl_grad_next(&g, &layer, &gw) == RL_OK);
		REQUIRE(rl_grad_next(&g2, &layer2, &gw2) == RL_OK);
		CHECK_EQ_INT(layer2, layer);
		if (layer < 0)
			break;
		char w2[320];
		snprintf(w2, sizeof w2, "%s: layer %d gradient, recomputed vs kept", what, layer);
		check_close(w2, gw2->mem, gw->mem, gw->nfloats, 0, 1e-6);
		for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++) {
			const rl_tensor *t = rl_model_get(&m, layer, roles[k]);
			size_t n;
			float *part = rl_layer_w_part(gw, &e.d, roles[k], &n);
			if (!t || !part || !rl_st_find(&r.f, t->name))
				continue;
			found++;
			if (hw)
				compare_bf16(&r, &r32, what, t->name, part, n);
			else
				compare(&r32, what, t->name, part, n);
		}
	}
	CHECKF(found == nref, "%s: compared %d gradient tensors, the fixture has %d", what, found,
	       nref);
	rl_grad_end(&g);
	rl_grad_end(&g2);
	rl_engine_free(&e);
	rl_engine_free(&e2);
	free(h), free(d);
	rl_prompts_free(&pd);
	rl_prompts_free(&pg);
	rl_model_close(&m);
	for (int i = 0; i < 2; i++) {
		rl_st_close(i ? &r32.f : &r.f);
		cJSON_Delete(i ? r32.meta : r.meta);
	}
}

int main(int argc, char **argv)
{
	verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
	char note[128];
	rl_blas_setup(note, sizeof note);
	char *list;
	size_t len;
	REQUIRE(rl_read_file(check_fixture("engine/cases.txt"), &list, &len) == RL_OK);
	int ncase = 0, nbf16 = 0;
	for (char *save = NULL, *cs = strtok_r(list, "\n", &save); cs;
	     cs = strtok_r(NULL, "\n", &save)) {
		test_case(cs);
		ncase++;
		char bf[256];
		snprintf(bf, sizeof bf, "engine/%s/meta_bf16.json", cs);
		FILE *fp = fopen(check_fixture(bf), "r");
		if (fp) {
			fclose(fp);
			test_case_bf16(cs);
			nbf16++;
		}
	}
	free(list);
	CHECK(ncase >= 10);
	CHECK(nbf16 >= 6);
	return check_done("test_engine");
}
