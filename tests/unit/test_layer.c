/* test_layer.c — a decoder layer on random weights: BLAS against the naive
 * backend, the backward against finite differences, last-only mode against
 * the full forward, packing (a sequence alone vs inside a batch), and the KV
 * cache (prefill in two pieces vs at once). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compute/layer.h"
#include "core/error.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((rng >> 11) * 0x1p-53 * 2.0 - 1.0);
}

static void fill(float *p, size_t n, float base, float scale)
{
	for (size_t i = 0; i < n; i++)
		p[i] = base + frand() * scale;
}

static float *fbuf(size_t n)
{
	float *p = calloc(n ? n : 1, sizeof *p);
	REQUIRE(p);
	return p;
}

static double dotd(const float *a, const float *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

typedef struct setup {
	rl_config cfg;
	rl_dims d;
	rl_rope rope;
	rl_layer_w w;
	int nseq, T, lens[4], start[5], *pos;
	rl_seqs s;
} setup;

static void setup_init(setup *u, int nkvh, int plus_one, rl_act act, int window, int bias)
{
	memset(u, 0, sizeof *u);
	rl_config *c = &u->cfg;
	c->hidden_size = 24;
	c->n_layers = 2;
	c->n_heads = 4;
	c->n_kv_heads = nkvh;
	c->head_dim = 6;
	c->intermediate_size = 40;
	c->rms_eps = 1e-5;
	c->rope_theta = 10000;
	c->rope_type = RL_ROPE_DEFAULT;
	c->norm_plus_one = plus_one;
	c->act = act;
	c->sliding_window = window;
	c->attention_bias = bias;
	c->o_bias = bias;
	c->mlp_bias = bias;
	rl_dims_init(&u->d, c);
	REQUIRE(rl_rope_init(&u->rope, c, 64) == RL_OK);
	REQUIRE(rl_layer_w_alloc(&u->w, &u->d) == RL_OK);
	float s = 1.0f / sqrtf((float)u->d.C);
	fill(u->w.mem, u->w.nfloats, 0, s * 1.5f);
	fill(u->w.norm1, u->d.C, plus_one ? 0 : 1, 0.3f);
	fill(u->w.norm2, u->d.C, plus_one ? 0 : 1, 0.3f);
	int lens[3] = {5, 1, 8};
	u->nseq = 3;
	u->T = 0;
	u->start[0] = 0;
	for (int i = 0; i < 3; i++) {
		u->lens[i] = lens[i];
		u->T += lens[i];
		u->start[i + 1] = u->T;
	}
	u->pos = malloc((size_t)u->T * sizeof *u->pos);
	REQUIRE(u->pos);
	for (int i = 0; i < 3; i++)
		for (int t = 0; t < lens[i]; t++)
			u->pos[u->start[i] + t] = t;
	u->s = (rl_seqs){u->nseq, u->T, u->start, u->pos};
}

static void setup_free(setup *u)
{
	rl_rope_free(&u->rope);
	rl_layer_w_free(&u->w);
	free(u->pos);
}

/* forward + backward with dy; returns y[R,C], dx[T,C] and grads (linear + norms) */
typedef struct result {
	float *y, *dx;
	rl_layer_w g;
} result;

static void run_layer(setup *u, const float *x, const float *dy, int flags, int layer, result *r,
		      int with_dx)
{
	int R = flags & RL_LAYER_LAST_ONLY ? u->nseq : u->T;
	rl_layer_act a;
	rl_layer_ws ws;
	REQUIRE(rl_layer_act_alloc(&a, &u->d, u->T, R) == RL_OK);
	REQUIRE(rl_layer_ws_alloc(&ws, &u->d, u->T, R, 8, 8) == RL_OK);
	r->y = fbuf((size_t)R * u->d.C);
	r->dx = with_dx ? fbuf((size_t)u->T * u->d.C) : NULL;
	REQUIRE(rl_layer_w_alloc(&r->g, &u->d) == RL_OK);
	rl_layer_w_zero(&r->g);
	REQUIRE(rl_layer_forward(&u->d, layer, &u->w, &u->rope, &u->s, NULL, x, r->y, &a, &ws,
				 flags) == RL_OK);
	if (dy)
		REQUIRE(rl_layer_backward(&u->d, layer, &u->w, &u->rope, &u->s, &a, dy, r->dx,
					  &r->g, RL_GRAD_LINEAR | RL_GRAD_NORMS, &ws) == RL_OK);
	rl_layer_act_free(&a);
	rl_layer_ws_free(&ws);
}

static void result_free(result *r)
{
	free(r->y);
	free(r->dx);
	rl_layer_w_free(&r->g);
}

/* L(x, w) = <dy, layer(x)>, in double */
static double loss(setup *u, const float *x, const float *dy, int flags)
{
	result r;
	run_layer(u, x, NULL, flags, 0, &r, 0);
	int R = flags & RL_LAYER_LAST_ONLY ? u->nseq : u->T;
	double l = dotd(r.y, dy, (size_t)R * u->d.C);
	result_free(&r);
	return l;
}

static void one_config(int nkvh, int plus_one, rl_act act, int window, int bias)
{
	setup u;
	setup_init(&u, nkvh, plus_one, act, window, bias);
	int C = u.d.C, T = u.T;
	char what[160];
	snprintf(what, sizeof what, "nkvh %d plus_one %d act %d window %d bias %d", nkvh, plus_one,
		 (int)act, window, bias);
	float *x = fbuf((size_t)T * C), *dy = fbuf((size_t)T * C);
	fill(x, (size_t)T * C, 0, 1);
	fill(dy, (size_t)T * C, 0, 1);

	/* BLAS vs naive backend */
	result rb, rn;
	run_layer(&u, x, dy, 0, 0, &rb, 1);
	rl_gemm_set_backend(RL_GEMM_NAIVE);
	run_layer(&u, x, dy, 0, 0, &rn, 1);
	rl_gemm_set_backend(RL_GEMM_BLAS);
	char m[200];
	snprintf(m, sizeof m, "%s: forward blas vs naive", what);
	check_close(m, rb.y, rn.y, (size_t)T * C, 1e-5, 1e-5);
	snprintf(m, sizeof m, "%s: dx blas vs naive", what);
	check_close(m, rb.dx, rn.dx, (size_t)T * C, 1e-5, 1e-4);
	snprintf(m, sizeof m, "%s: grads blas vs naive", what);
	check_close(m, rb.g.mem, rn.g.mem, rb.g.nfloats, 1e-5, 1e-4);

	/* finite differences: dx and a sample of every parameter block */
	for (int probe = 0; probe < 8; probe++) {
		size_t i = ((size_t)probe * 97 + 11) % ((size_t)T * C);
		float old = x[i], h = 1e-2f;
		x[i] = old + h;
		double lp = loss(&u, x, dy, 0);
		x[i] = old - h;
		double lm = loss(&u, x, dy, 0);
		x[i] = old;
		float fd = (float)((lp - lm) / (2 * h));
		snprintf(m, sizeof m, "%s: dx vs finite differences", what);
		check_close(m, &rb.dx[i], &fd, 1, 3e-3, 1e-2);
	}
	static const char *const rname[] = {"q",      "k",	   "v",	      "o",
					    "gate",   "up",	   "down",    "norm1",
					    "norm2",  "q_bias",	   "k_bias",  "v_bias",
					    "o_bias", "gate_bias", "up_bias", "down_bias"};
	static const rl_role roles[] = {
		RL_R_Q,	     RL_R_K,	     RL_R_V,	    RL_R_O,	   RL_R_GATE,	RL_R_UP,
		RL_R_DOWN,   RL_R_ATTN_NORM, RL_R_MLP_NORM, RL_R_Q_BIAS,   RL_R_K_BIAS, RL_R_V_BIAS,
		RL_R_O_BIAS, RL_R_GATE_BIAS, RL_R_UP_BIAS,  RL_R_DOWN_BIAS};
	for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++) {
		size_t n, ng;
		float *p = rl_layer_w_part(&u.w, &u.d, roles[k], &n);
		float *gp = rl_layer_w_part(&rb.g, &u.d, roles[k], &ng);
		CHECK((p == NULL) == (gp == NULL) && n == ng);
		if (!p)
			continue;
		for (int probe = 0; probe < 3; probe++) {
			size_t i = ((size_t)probe * 131 + 7) % n;
			float old = p[i], h = 1e-2f;
			p[i] = old + h;
			double lp = loss(&u, x, dy, 0);
			p[i] = old - h;
			double lm = loss(&u, x, dy, 0);
			p[i] = old;
			float fd = (float)((lp - lm) / (2 * h));
			snprintf(m, sizeof m, "%s: d %s vs finite differences", what, rname[k]);
			check_close(m, &gp[i], &fd, 1, 3e-3, 1e-2);
		}
	}

	/* last-only: outputs are the full forward's last rows; with dy only at the
	 * last rows, the same gradients */
	float *dyl = fbuf((size_t)u.nseq * C), *dyf = fbuf((size_t)T * C);
	fill(dyl, (size_t)u.nseq * C, 0, 1);
	for (int i = 0; i < u.nseq; i++)
		memcpy(dyf + (size_t)(u.start[i + 1] - 1) * C, dyl + (size_t)i * C,
		       (size_t)C * sizeof(float));
	result rl, rf;
	run_layer(&u, x, dyl, RL_LAYER_LAST_ONLY, 0, &rl, 1);
	run_layer(&u, x, dyf, 0, 0, &rf, 1);
	for (int i = 0; i < u.nseq; i++) {
		snprintf(m, sizeof m, "%s: last-only output, sequence %d", what, i);
		check_close(m, rl.y + (size_t)i * C, rf.y + (size_t)(u.start[i + 1] - 1) * C, C,
			    1e-6, 1e-5);
	}
	snprintf(m, sizeof m, "%s: last-only dx", what);
	check_close(m, rl.dx, rf.dx, (size_t)T * C, 1e-6, 1e-4);
	snprintf(m, sizeof m, "%s: last-only grads", what);
	check_close(m, rl.g.mem, rf.g.mem, rl.g.nfloats, 1e-6, 1e-4);

	/* no dx: same weight gradients, norm1's included */
	result r0;
	run_layer(&u, x, dyl, RL_LAYER_LAST_ONLY, 0, &r0, 0);
	snprintf(m, sizeof m, "%s: grads without dx", what);
	check_close(m, r0.g.mem, rl.g.mem, r0.g.nfloats, 0, 0);

	/* packing: sequence 2 alone gives the rows it has inside the batch */
	{
		setup v = u;
		int st[2] = {0, u.lens[2]};
		v.s = (rl_seqs){1, u.lens[2], st, u.pos + u.start[2]};
		v.nseq = 1;
		v.T = u.lens[2];
		result ra;
		run_layer(&v, x + (size_t)u.start[2] * C, NULL, 0, 0, &ra, 0);
		snprintf(m, sizeof m, "%s: sequence alone vs packed", what);
		check_close(m, ra.y, rb.y + (size_t)u.start[2] * C, (size_t)u.lens[2] * C, 1e-6,
			    1e-5);
		result_free(&ra);
	}

	/* KV cache: sequence 2 as a prefill of 5 rows then 3 more rows */
	{
		int len = u.lens[2], a = 5, kvd = u.d.kvd;
		float *kc = fbuf((size_t)len * kvd), *vc = fbuf((size_t)len * kvd);
		float *kp[1] = {kc}, *vp[1] = {vc};
		int past[1] = {0};
		rl_kv kv = {kp, vp, past};
		rl_layer_act kact;
		rl_layer_ws ws;
		REQUIRE(rl_layer_act_alloc(&kact, &u.d, len, len) == RL_OK);
		/* (generation's workspace: the forward's buffers only) */
		REQUIRE(rl_layer_ws_alloc_forward(&ws, &u.d, len, len, len, len) == RL_OK);
		float *y = fbuf((size_t)len * C);
		int st1[2] = {0, a}, st2[2] = {0, len - a};
		rl_seqs s1 = {1, a, st1, u.pos + u.start[2]};
		rl_seqs s2 = {1, len - a, st2, u.pos + u.start[2] + a};
		const float *x2 = x + (size_t)u.start[2] * C;
		REQUIRE(rl_layer_forward(&u.d, 0, &u.w, &u.rope, &s1, &kv, x2, y, &kact, &ws, 0) ==
			RL_OK);
		past[0] = a;
		REQUIRE(rl_layer_forward(&u.d, 0, &u.w, &u.rope, &s2, &kv, x2 + (size_t)a * C,
					 y + (size_t)a * C, &kact, &ws, 0) == RL_OK);
		snprintf(m, sizeof m, "%s: KV cache, prefill then more rows", what);
		check_close(m, y, rb.y + (size_t)u.start[2] * C, (size_t)len * C, 1e-6, 1e-5);
		/* last-only over the cache: one decoding step */
		past[0] = len - 1;
		int st3[2] = {0, 1};
		rl_seqs s3 = {1, 1, st3, u.pos + u.start[2] + len - 1};
		REQUIRE(rl_layer_forward(&u.d, 0, &u.w, &u.rope, &s3, &kv,
					 x2 + (size_t)(len - 1) * C, y, &kact, &ws,
					 RL_LAYER_LAST_ONLY) == RL_OK);
		snprintf(m, sizeof m, "%s: KV cache, one decoding step", what);
		check_close(m, y, rb.y + (size_t)(u.start[3] - 1) * C, C, 1e-6, 1e-5);
		/* which refuses a backward */
		CHECK(rl_layer_backward(&u.d, 0, &u.w, &u.rope, &s3, &kact, y, NULL, NULL, 0,
					&ws) == RL_USAGE);
		CHECK(strstr(rl_errmsg(), "backward without a backward workspace") != NULL);
		free(kc), free(vc), free(y);
		rl_layer_act_free(&kact);
		rl_layer_ws_free(&ws);
	}

	/* the window only applies from window_from on, or where layer_types say */
	if (window) {
		setup v = u;
		v.d.cfg.sliding_window_from = 1;
		result rw0, rw1;
		run_layer(&v, x, NULL, 0, 0, &rw0, 0);
		run_layer(&v, x, NULL, 0, 1, &rw1, 0);
		u.d.cfg.sliding_window = 0;
		result rnw;
		run_layer(&u, x, NULL, 0, 0, &rnw, 0);
		u.d.cfg.sliding_window = window;
		snprintf(m, sizeof m, "%s: no window below window_from", what);
		check_close(m, rw0.y, rnw.y, (size_t)T * C, 0, 0);
		snprintf(m, sizeof m, "%s: window from window_from", what);
		check_close(m, rw1.y, rb.y, (size_t)T * C, 0, 0);
		setup t = u; /* layer_types: sliding, full */
		t.d.cfg.has_layer_types = 1;
		memset(t.d.cfg.sliding_layers, 0, sizeof t.d.cfg.sliding_layers);
		t.d.cfg.sliding_layers[0] = 1;
		result rt0, rt1;
		run_layer(&t, x, NULL, 0, 0, &rt0, 0);
		run_layer(&t, x, NULL, 0, 1, &rt1, 0);
		snprintf(m, sizeof m, "%s: layer_types' sliding layer", what);
		check_close(m, rt0.y, rb.y, (size_t)T * C, 0, 0);
		snprintf(m, sizeof m, "%s: layer_types' full layer", what);
		check_close(m, rt1.y, rnw.y, (size_t)T * C, 0, 0);
		result_free(&rw0), result_free(&rw1), result_free(&rnw);
		result_free(&rt0), result_free(&rt1);
	}

	result_free(&rb), result_free(&rn), result_free(&rl), result_free(&rf), result_free(&r0);
	free(x), free(dy), free(dyl), free(dyf);
	setup_free(&u);
}

static void test_embed_backward(void)
{
	int32_t ids[4] = {2, 0, 2, 1};
	float dx[4 * 2] = {1, 2, 3, 4, 5, 6, 7, 8}, dE[3 * 2] = {0};
	rl_embed_backward(dE, dx, ids, 4, 2, 0.5f, -1);
	float want[6] = {1.5f, 2, 3.5f, 4, 3, 4};
	check_close("embedding backward", dE, want, 6, 0, 0);
	memset(dE, 0, sizeof dE); /* padding_idx 2: its row gets nothing */
	rl_embed_backward(dE, dx, ids, 4, 2, 0.5f, 2);
	float want_pad[6] = {1.5f, 2, 3.5f, 4, 0, 0};
	check_close("embedding backward, padding row", dE, want_pad, 6, 0, 0);
}

int main(void)
{
	char note[128];
	rl_blas_setup(note, sizeof note);
	one_config(2, 0, RL_ACT_SILU, 0, 0);	  /* Llama/Mistral-like GQA */
	one_config(4, 0, RL_ACT_SILU, 3, 1);	  /* MHA, sliding window, all biases */
	one_config(1, 1, RL_ACT_GELU_TANH, 0, 0); /* Gemma-like MQA */
	one_config(2, 0, RL_ACT_GELU, 0, 1);
	test_embed_backward();
	return check_done("test_layer");
}
