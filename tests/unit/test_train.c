/* test_train.c — rl-train's numerics against torch autograd and torch.optim.AdamW.
 *
 * Fixtures (tests/gen/gen_train.py): tiny random models of every architecture
 * built with transformers' classes, the gradient of every parameter of the
 * mean next-token cross-entropy over the response positions of three
 * sequences, and the parameters after 3 AdamW steps with gradient clipping.
 *
 * Tolerances: the C side runs in f32 like torch, but sums in other orders
 * (packed GEMMs, flash-style attention backward); observed differences are
 * ~1e-6 relative. Gradients: |got - want| <= 1e-5 * max|want| + 1e-3 |want|
 * per element (the atol scaled to the tensor, since some tensors' gradients
 * are ~1e-1 and others ~1e-4). AdamW: after 3 steps of lr 1e-2 parameters move
 * by up to ~3.5e-2. An element whose gradient is of the order of eps (1e-8)
 * has an update m / (sqrt(v) + eps) that amplifies the last-bit differences
 * of its gradient (seen: 3e-4 on one element of 960), so: every element within
 * 2e-3 (1/17 of the largest step), and at most 1% of a tensor's elements
 * beyond 1e-5 + 1e-4 relative. The loss before each step must match too.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "check.h"
#include "compute/adamw.h"
#include "compute/loss.h"
#include "compute/train.h"
#include "core/error.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "store/model.h"
#include "store/safetensors.h"

static const char *const archs[] = {"llama", "llama3-gqa", "mistral", "qwen2", "gemma",
				    "qwen3", "gemma2",	   "gemma3",  "olmo2", "phi3"};

typedef struct fx {
	cJSON *meta;
	int n;
	int start[8];
	int32_t ids[256], target[256];
} fx;

static void load_meta(fx *f, const char *arch)
{
	char rel[256];
	snprintf(rel, sizeof rel, "train/%s/meta.json", arch);
	char *text;
	size_t len;
	REQUIRE(rl_read_file(check_fixture(rel), &text, &len) == 0);
	f->meta = cJSON_Parse(text);
	free(text);
	REQUIRE(f->meta);
	const cJSON *seqs = cJSON_GetObjectItem(f->meta, "seqs"), *s;
	f->n = 0;
	int t = 0;
	cJSON_ArrayForEach(s, seqs)
	{
		const cJSON *ids = cJSON_GetObjectItem(s, "ids"), *id;
		int plen = cJSON_GetObjectItem(s, "prompt_len")->valueint;
		f->start[f->n++] = t;
		int k = 0, n = cJSON_GetArraySize(ids);
		cJSON_ArrayForEach(id, ids)
		{
			f->ids[t + k] = id->valueint;
			k++;
		}
		/* position j predicts token j+1; labelled when j+1 >= plen */
		for (int j = 0; j < n; j++)
			f->target[t + j] = (j + 1 < n && j + 1 >= plen) ? f->ids[t + j + 1] : -1;
		t += n;
	}
	f->start[f->n] = t;
}

static double jnum(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItem(o, k)->valuedouble;
}

/* Compares every parameter of m (value or gradient) with the tensors of a
 * safetensors fixture. */
static void compare(const char *arch, const char *file, const rl_tmodel *m, int grads)
{
	char rel[256];
	snprintf(rel, sizeof rel, "train/%s/%s", arch, file);
	rl_st_file st;
	REQUIRE(rl_st_open(&st, check_fixture(rel), RL_ST_READ) == 0);
	size_t seen = 0;
	for (size_t i = 0; i < m->np; i++) {
		const rl_tparam *p = &m->p[i];
		const rl_st_tensor *t = rl_st_find(&st, p->name);
		CHECKF(t != NULL, "%s: %s missing from %s", arch, p->name, file);
		if (!t)
			continue;
		seen++;
		CHECK_EQ_INT(t->numel, p->numel);
		float *want = malloc(t->numel * sizeof *want);
		REQUIRE(want);
		rl_widen(t->dtype, st.map + t->offset, want, t->numel);
		const float *got = grads ? p->g : p->w;
		double mx = 0;
		for (size_t j = 0; j < t->numel; j++)
			mx = fmax(mx, fabs(want[j]));
		char what[256];
		snprintf(what, sizeof what, "%s %s %s", arch, grads ? "grad" : "adamw", p->name);
		if (grads)
			check_close(what, got, want, t->numel, 1e-5 * mx + 1e-9, 1e-3);
		else {
			size_t loose = 0;
			for (size_t j = 0; j < t->numel; j++)
				loose += fabs(got[j] - want[j]) > 1e-5 + 1e-4 * fabs(want[j]);
			CHECKF(loose * 100 <= t->numel, "%s: %zu of %zu elements beyond 1e-5", what,
			       loose, (size_t)t->numel);
			check_close(what, got, want, t->numel, 2e-3, 0);
		}
		free(want);
	}
	CHECK_EQ_INT(seen, st.ntensors);
	rl_st_close(&st);
}

static void test_arch(const char *arch)
{
	fx f;
	load_meta(&f, arch);
	char rel[256];
	snprintf(rel, sizeof rel, "train/%s", arch);
	rl_model src;
	REQUIRE(rl_model_open(&src, check_fixture(rel), RL_MODEL_READ) == 0);
	rl_tmodel m;
	REQUIRE(rl_tmodel_load(&m, &src) == 0);
	CHECK_EQ_INT(m.cfg.tie_word_embeddings,
		     cJSON_IsTrue(cJSON_GetObjectItem(f.meta, "tied")) ? 1 : 0);
	rl_tws *ws;
	REQUIRE(rl_tws_new(&ws) == 0);
	rl_tbatch b = {.n = f.n, .start = f.start, .ids = f.ids, .target = f.target};

	/* Loss only, then the gradient of the mean loss. */
	double sum;
	long R;
	REQUIRE(rl_tmodel_forward_backward(&m, &b, 1.0f, 0, ws, &sum, &R) == 0);
	double want = jnum(f.meta, "loss");
	CHECKF(fabs(sum / R - want) <= 1e-5 * fabs(want), "%s loss %.9g want %.9g", arch, sum / R,
	       want);
	rl_tmodel_zero_grad(&m);
	REQUIRE(rl_tmodel_forward_backward(&m, &b, 1.0f / (float)R, 1, ws, &sum, &R) == 0);
	CHECKF(fabs(sum / R - want) <= 1e-5 * fabs(want), "%s loss %.9g want %.9g", arch, sum / R,
	       want);
	compare(arch, "grads.safetensors", &m, 1);

	/* Two and three data-parallel threads give the same gradient. */
	for (int nt = 2; nt <= 3; nt++) {
		REQUIRE(rl_tws_set_threads(ws, &m, nt) == 0);
		rl_tmodel_zero_grad(&m);
		REQUIRE(rl_tmodel_forward_backward(&m, &b, 1.0f / (float)R, 1, ws, &sum, &R) == 0);
		CHECKF(fabs(sum / R - want) <= 1e-5 * fabs(want), "%s %d threads loss", arch, nt);
		compare(arch, "grads.safetensors", &m, 1);
	}
	REQUIRE(rl_tws_set_threads(ws, &m, 1) == 0);

	/* Accumulation: two half-batches add up to the whole. */
	rl_tmodel_zero_grad(&m);
	rl_tbatch b1 = {.n = 1, .start = f.start, .ids = f.ids, .target = f.target};
	int st2[8];
	for (int i = 1; i <= f.n; i++)
		st2[i - 1] = f.start[i] - f.start[1];
	rl_tbatch b2 = {.n = f.n - 1,
			.start = st2,
			.ids = f.ids + f.start[1],
			.target = f.target + f.start[1]};
	double s1, s2;
	long r1, r2;
	REQUIRE(rl_tmodel_forward_backward(&m, &b1, 1.0f / (float)R, 1, ws, &s1, &r1) == 0);
	REQUIRE(rl_tmodel_forward_backward(&m, &b2, 1.0f / (float)R, 1, ws, &s2, &r2) == 0);
	CHECK_EQ_INT(r1 + r2, R);
	CHECKF(fabs((s1 + s2) / R - want) <= 1e-5 * fabs(want), "%s split loss", arch);
	compare(arch, "grads.safetensors", &m, 1);

	/* AdamW: 3 steps from the original weights. */
	rl_tmodel_free(&m);
	REQUIRE(rl_tmodel_load(&m, &src) == 0);
	const cJSON *hpj = cJSON_GetObjectItem(f.meta, "adamw"), *lr;
	rl_adamw_hp hp = {.beta1 = jnum(hpj, "beta1"),
			  .beta2 = jnum(hpj, "beta2"),
			  .eps = jnum(hpj, "eps"),
			  .weight_decay = jnum(hpj, "weight_decay")};
	const cJSON *losses = cJSON_GetObjectItem(hpj, "losses");
	int k = 0;
	cJSON_ArrayForEach(lr, cJSON_GetObjectItem(hpj, "lr"))
	{
		rl_tmodel_zero_grad(&m);
		REQUIRE(rl_tmodel_forward_backward(&m, &b, 1.0f / (float)R, 1, ws, &sum, &R) == 0);
		double wl = cJSON_GetArrayItem(losses, k)->valuedouble;
		CHECKF(fabs(sum / R - wl) <= 1e-4 * fabs(wl),
		       "%s adamw step %d loss %.9g want %.9g", arch, k, sum / R, wl);
		rl_tmodel_clip_grad(&m, jnum(hpj, "clip"));
		rl_tmodel_adamw(&m, &hp, lr->valuedouble);
		k++;
	}
	CHECK_EQ_INT(m.t, 3);
	compare(arch, "adamw.safetensors", &m, 0);

	rl_tws_free(ws);
	rl_tmodel_free(&m);
	rl_model_close(&src);
	cJSON_Delete(f.meta);
}

static void test_xent(void)
{
	enum { N = 5, V = 37 };
	float logits[N * V], d1[N * V], d2[N * V];
	int tgt[N];
	uint32_t s = 7;
	for (int i = 0; i < N * V; i++) {
		s = s * 1664525u + 1013904223u;
		logits[i] = (float)((s >> 8) % 20000) / 1000.0f - 10.0f;
	}
	for (int i = 0; i < N; i++)
		tgt[i] = (i * 11) % V;
	logits[3] = 80.0f; /* a large logit: the max-shift must keep it finite */
	double a = rl_xent(d1, logits, tgt, N, V, 0.5f);
	double b = rl_xent_naive(d2, logits, tgt, N, V, 0.5f);
	CHECKF(fabs(a - b) <= 1e-6 * fabs(b), "xent %.9g vs naive %.9g", a, b);
	check_close("xent grad", d1, d2, N * V, 1e-7, 1e-5);
	/* in place */
	memcpy(d2, logits, sizeof d2);
	double c = rl_xent(d2, d2, tgt, N, V, 0.5f);
	CHECK(c == a);
	check_close("xent in place", d2, d1, N * V, 0, 0);
}

static void test_sched(void)
{
	/* warm-up 0.1, 0.2, ... then cosine from lr to lr * 0.1 */
	CHECK(fabs(rl_sched_lr(RL_SCHED_COSINE, 1.0, 0, 100, 10, 0.1) - 0.1) < 1e-12);
	CHECK(fabs(rl_sched_lr(RL_SCHED_COSINE, 1.0, 9, 100, 10, 0.1) - 1.0) < 1e-12);
	CHECK(fabs(rl_sched_lr(RL_SCHED_COSINE, 1.0, 10, 100, 10, 0.1) - 1.0) < 1e-12);
	CHECK(fabs(rl_sched_lr(RL_SCHED_COSINE, 1.0, 99, 100, 10, 0.1) - 0.1) < 1e-12);
	double mid = rl_sched_lr(RL_SCHED_COSINE, 1.0, 10 + 89 / 2, 100, 10, 0.1);
	CHECK(fabs(mid - (0.1 + 0.9 * 0.5 * (1 + cos(M_PI * 44.0 / 89.0)))) < 1e-12);
	CHECK(fabs(rl_sched_lr(RL_SCHED_LINEAR, 2.0, 99, 100, 0, 0.0)) < 1e-12);
	CHECK(fabs(rl_sched_lr(RL_SCHED_LINEAR, 2.0, 0, 101, 0, 0.0) - 2.0) < 1e-12);
	CHECK(fabs(rl_sched_lr(RL_SCHED_LINEAR, 2.0, 50, 101, 0, 0.0) - 1.0) < 1e-12);
	CHECK(fabs(rl_sched_lr(RL_SCHED_CONSTANT, 2.0, 50, 101, 5, 0.0) - 2.0) < 1e-12);
	rl_sched k;
	CHECK(rl_sched_parse("cosine", &k) == 0 && k == RL_SCHED_COSINE);
	CHECK(rl_sched_parse("nope", &k) == -1);
}

static void test_random_init(void)
{
	rl_model src;
	REQUIRE(rl_model_open(&src, check_fixture("train/gemma"), RL_MODEL_READ) == 0);
	rl_tmodel a, b;
	REQUIRE(rl_tmodel_init(&a, &src.cfg) == 0);
	REQUIRE(rl_tmodel_init(&b, &src.cfg) == 0);
	rl_tmodel_randomize(&a, 5, 0.02);
	rl_tmodel_randomize(&b, 5, 0.02);
	for (size_t i = 0; i < a.np; i++)
		CHECK(memcmp(a.p[i].w, b.p[i].w, a.p[i].numel * sizeof(float)) == 0);
	/* Gemma norms start at 0 (scale 1 + w); weights have std ~0.02 */
	const rl_tparam *e = a.role[(size_t)a.cfg.n_layers * RL_R_COUNT + RL_R_EMBED];
	double ss = 0;
	for (size_t j = 0; j < e->numel; j++)
		ss += (double)e->w[j] * e->w[j];
	double sd = sqrt(ss / (double)e->numel);
	CHECKF(sd > 0.017 && sd < 0.023, "embedding std %g", sd);
	for (size_t i = 0; i < a.np; i++)
		if (a.p[i].role == RL_R_ATTN_NORM)
			CHECK(a.p[i].w[0] == 0.0f);
	rl_tmodel_free(&a);
	rl_tmodel_free(&b);
	rl_model_close(&src);
}

int main(void)
{
	test_xent();
	test_sched();
	for (size_t i = 0; i < sizeof archs / sizeof *archs; i++)
		test_arch(archs[i]);
	test_random_init();
	return check_done("test_train");
}
