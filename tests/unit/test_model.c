/* test_model.c — model directories: open, roles, shapes, the method's sets,
 * fingerprints, widening reads, writing single and sharded, and rejection of
 * directories whose index and shards disagree.
 *
 * Independent truths: the tensor list of a model follows from its config by
 * transformers' module structure (restated here by hand, per role); the
 * fixtures under tests/fixtures/safetensors/models/ were saved by
 * transformers' save_pretrained (sharded with a small max_shard_size), and
 * their expected.tsv lists what transformers itself reports (named_parameters,
 * parameter counts, per-tensor sums computed in float64 by torch).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "store/model.h"

static char tmpdir[256];

static char *tpath(const char *name)
{
	static char buf[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static uint32_t rng = 2463534242u;
static uint32_t next32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* A model's tensors built from its config (the truth: transformers' modules). */
typedef struct built {
	rl_st_wtensor *t;
	char **names;
	void **data;
	size_t n;
} built;

static void add(built *b, const char *name, rl_dtype dt, int ndim, const int64_t *shape)
{
	b->t = realloc(b->t, (b->n + 1) * sizeof *b->t);
	b->names = realloc(b->names, (b->n + 1) * sizeof *b->names);
	b->data = realloc(b->data, (b->n + 1) * sizeof *b->data);
	rl_st_wtensor *w = &b->t[b->n];
	memset(w, 0, sizeof *w);
	b->names[b->n] = strdup(name);
	w->name = b->names[b->n];
	w->dtype = dt;
	w->ndim = ndim;
	size_t numel = 1;
	for (int d = 0; d < ndim; d++)
		w->shape[d] = shape[d], numel *= (size_t)shape[d];
	size_t es = rl_dtype_size(dt);
	uint8_t *p = malloc(numel * es + 1);
	for (size_t i = 0; i < numel; i++) {
		float v = (float)((int)(next32() % 2001) - 1000) / 1000.0f;
		if (dt == RL_DT_F32)
			memcpy(p + 4 * i, &v, 4);
		else if (rl_dtype_is_compute(dt)) {
			uint16_t h = dt == RL_DT_BF16 ? rl_f32_to_bf16(v) : rl_f32_to_f16(v);
			memcpy(p + 2 * i, &h, 2);
		} else {
			for (size_t k = 0; k < es; k++)
				p[i * es + k] = (uint8_t)next32();
		}
	}
	b->data[b->n] = p;
	w->data = p;
	b->n++;
}

static void build(built *b, const rl_config *c, rl_dtype dt)
{
	memset(b, 0, sizeof *b);
	int64_t h = c->hidden_size, q = (int64_t)c->n_heads * c->head_dim;
	int64_t kv = (int64_t)c->n_kv_heads * c->head_dim, in = c->intermediate_size;
	char name[128];
	add(b, "model.embed_tokens.weight", dt, 2, (int64_t[]){c->vocab_size, h});
	add(b, "model.norm.weight", dt, 1, (int64_t[]){h});
	if (!c->tie_word_embeddings)
		add(b, "lm_head.weight", dt, 2, (int64_t[]){c->vocab_size, h});
	for (int l = 0; l < c->n_layers; l++) {
#define L(fmt, ...) (snprintf(name, sizeof name, "model.layers.%d." fmt, l), name)
		add(b, L("input_layernorm.weight"), dt, 1, (int64_t[]){h});
		add(b, L("post_attention_layernorm.weight"), dt, 1, (int64_t[]){h});
		add(b, L("self_attn.q_proj.weight"), dt, 2, (int64_t[]){q, h});
		add(b, L("self_attn.k_proj.weight"), dt, 2, (int64_t[]){kv, h});
		add(b, L("self_attn.v_proj.weight"), dt, 2, (int64_t[]){kv, h});
		add(b, L("self_attn.o_proj.weight"), dt, 2, (int64_t[]){h, q});
		if (c->attention_bias) {
			add(b, L("self_attn.q_proj.bias"), dt, 1, (int64_t[]){q});
			add(b, L("self_attn.k_proj.bias"), dt, 1, (int64_t[]){kv});
			add(b, L("self_attn.v_proj.bias"), dt, 1, (int64_t[]){kv});
		}
		if (c->o_bias)
			add(b, L("self_attn.o_proj.bias"), dt, 1, (int64_t[]){h});
		add(b, L("mlp.gate_proj.weight"), dt, 2, (int64_t[]){in, h});
		add(b, L("mlp.up_proj.weight"), dt, 2, (int64_t[]){in, h});
		add(b, L("mlp.down_proj.weight"), dt, 2, (int64_t[]){h, in});
		if (c->mlp_bias) {
			add(b, L("mlp.gate_proj.bias"), dt, 1, (int64_t[]){in});
			add(b, L("mlp.up_proj.bias"), dt, 1, (int64_t[]){in});
			add(b, L("mlp.down_proj.bias"), dt, 1, (int64_t[]){h});
		}
#undef L
	}
}

static void built_free(built *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->names[i]);
		free(b->data[i]);
	}
	free(b->t);
	free(b->names);
	free(b->data);
	memset(b, 0, sizeof *b);
}

static void tiny(rl_config *c, rl_arch arch)
{
	rl_config_defaults(c, arch);
	c->hidden_size = 16;
	c->n_layers = 3;
	c->n_heads = 4;
	c->n_kv_heads = 2;
	c->head_dim = 4;
	c->intermediate_size = 24;
	c->vocab_size = 40;
	c->max_position = 64;
}

static int open_expect(const char *dir, int want, const char *needle)
{
	rl_model m;
	rl_error_clear();
	int rc = rl_model_open(&m, dir, RL_MODEL_READ);
	if (rc == RL_OK)
		rl_model_close(&m);
	int ok = rc == want && (!needle || strstr(rl_errmsg(), needle));
	CHECKF(ok, "%s: rc %d '%s', wanted %d '%s'", dir, rc, rl_errmsg(), want,
	       needle ? needle : "");
	return ok;
}

static void test_open_roles(void)
{
	rl_config c;
	tiny(&c, RL_ARCH_QWEN2); /* q/k/v biases, no o bias */
	c.tie_word_embeddings = 1;
	built b;
	build(&b, &c, RL_DT_BF16);
	const char *dir = tpath("qwen");
	REQUIRE(rl_model_write(dir, &c, b.t, b.n, 0) == RL_OK);
	rl_model m;
	REQUIRE(rl_model_open(&m, dir, RL_MODEL_READ) == RL_OK);
	CHECK_EQ_INT(m.nshards, 1);
	CHECK_EQ_INT(m.ntensors, b.n);
	CHECK(m.cfg.arch == RL_ARCH_QWEN2 && m.cfg.tie_word_embeddings);
	CHECK(m.lm_head == m.embed && m.embed != NULL && m.final_norm != NULL);
	for (size_t i = 1; i < m.ntensors; i++)
		CHECK(strcmp(m.tensors[i - 1].name, m.tensors[i].name) < 0);
	const rl_tensor *t = rl_model_get(&m, 1, RL_R_K_BIAS);
	REQUIRE(t != NULL);
	CHECK_STR(t->name, "model.layers.1.self_attn.k_proj.bias");
	CHECK(t->layer == 1 && t->role == RL_R_K_BIAS && t->ndim == 1 && t->shape[0] == 8);
	CHECK(rl_model_get(&m, 1, RL_R_O_BIAS) == NULL);
	CHECK(rl_model_get(&m, 3, RL_R_Q) == NULL && rl_model_get(&m, -1, RL_R_Q) == NULL);
	CHECK(rl_model_get(&m, 7, RL_R_EMBED) == m.embed);
	CHECK(rl_model_find(&m, "model.layers.2.mlp.down_proj.weight") ==
	      rl_model_get(&m, 2, RL_R_DOWN));
	CHECK(rl_model_find(&m, "nope") == NULL);
	CHECK_STR(rl_role_name(RL_R_Q_BIAS), "q_proj.bias");
	CHECK_STR(rl_role_name(RL_R_MLP_NORM), "post_attention_layernorm.weight");
	CHECK(rl_role_is_candidate(RL_R_DOWN_BIAS) && !rl_role_is_candidate(RL_R_ATTN_NORM) &&
	      !rl_role_is_candidate(RL_R_EMBED));

	/* candidates: layers 0..L-1, q,qb,k,kb,v,vb,o,gate,up,down */
	const rl_tensor *cand[64];
	size_t nc = rl_model_candidates(&m, 2, cand, 64);
	CHECK_EQ_INT(nc, 20);
	static const char *want[] = {"q_proj.weight",	"q_proj.bias",	    "k_proj.weight",
				     "k_proj.bias",	"v_proj.weight",    "v_proj.bias",
				     "o_proj.weight",	"gate_proj.weight", "up_proj.weight",
				     "down_proj.weight"};
	for (size_t i = 0; i < nc && i < 20; i++) {
		CHECK_STR(rl_role_name(cand[i]->role), want[i % 10]);
		CHECK_EQ_INT(cand[i]->layer, (int)i / 10);
	}
	CHECK_EQ_INT(rl_model_candidates(&m, 2, NULL, 0), 20);
	CHECK_EQ_INT(rl_model_candidates(&m, 2, cand, 3), 20);
	CHECK_EQ_INT(rl_model_candidates(&m, 0, cand, 64), 0);
	CHECK_EQ_INT(rl_model_candidates(&m, 4, cand, 64), 0);
	uint64_t per = 16 * 16 + 16 + 2 * (8 * 16 + 8) + 16 * 16 + 3 * 24 * 16;
	CHECK_EQ_INT(rl_model_candidate_numel(&m, 2), 2 * per);
	CHECK_EQ_INT(rl_model_candidate_numel(&m, 3), 3 * per);
	CHECK_EQ_INT(rl_model_param_count(&m), 3 * (per + 2 * 16));
	CHECK_EQ_INT(rl_model_param_count(&m), rl_config_param_count(&m.cfg));
	CHECK_EQ_INT(rl_default_layer_end(32), 21);
	CHECK_EQ_INT(rl_default_layer_end(40), 26);
	CHECK_EQ_INT(rl_default_layer_end(18), 12);
	CHECK_EQ_INT(rl_default_layer_end(28), 18);
	CHECK_EQ_INT(rl_default_layer_end(64), 42);

	/* widening reads: bit-exact against the source bf16 */
	const rl_tensor *up = rl_model_get(&m, 0, RL_R_UP);
	float got[24 * 16];
	REQUIRE(rl_tensor_read_f32(up, 0, up->numel, got) == RL_OK);
	const uint16_t *src = NULL;
	for (size_t i = 0; i < b.n; i++)
		if (strcmp(b.t[i].name, up->name) == 0)
			src = b.t[i].data;
	REQUIRE(src);
	int bad = 0;
	for (uint64_t i = 0; i < up->numel; i++)
		bad += got[i] != rl_bf16_to_f32(src[i]);
	CHECK_EQ_INT(bad, 0);
	float part[5];
	REQUIRE(rl_tensor_read_f32(up, 100, 5, part) == RL_OK);
	CHECK(memcmp(part, got + 100, sizeof part) == 0);
	CHECK(rl_tensor_read_f32(up, up->numel - 2, 3, part) == RL_USAGE);
	CHECK(rl_tensor_read_f32(up, up->numel, 0, part) == RL_OK);
	CHECK(*rl_tensor_elem(up, 3) == ((const uint8_t *)src)[6]);

	char id1[17], h1[17], h2[17];
	rl_model_shape_id(&m, id1);
	CHECK_EQ_INT(strlen(id1), 16);
	rl_model_content_hash(&m, 0, h1);
	rl_model_content_hash(&m, 2, h2);
	CHECK(strcmp(h1, h2) != 0);

	/* the same tensors sharded: same shape id and content hashes */
	const char *sdir = tpath("qwen-sharded");
	REQUIRE(rl_model_write(sdir, &c, b.t, b.n, 2000) == RL_OK);
	rl_model s;
	REQUIRE(rl_model_open(&s, sdir, RL_MODEL_READ) == RL_OK);
	CHECK(s.nshards > 2);
	CHECK_EQ_INT(s.ntensors, m.ntensors);
	char id2[17], h3[17], h4[17];
	rl_model_shape_id(&s, id2);
	rl_model_content_hash(&s, 0, h3);
	rl_model_content_hash(&s, 2, h4);
	CHECK_STR(id1, id2);
	CHECK_STR(h1, h3);
	CHECK_STR(h2, h4);
	CHECK(rl_model_compatible(&m, &s) == RL_OK);
	/* every shard at most 2000 bytes of data unless it holds one tensor alone */
	for (int i = 0; i < s.nshards; i++)
		CHECK(s.shards[i].size - s.shards[i].data_start <= 2000 ||
		      s.shards[i].ntensors == 1);
	rl_model_close(&s);

	/* a changed weight: same shape id, other content hash, still compatible */
	((uint8_t *)b.data[5])[0] ^= 1;
	const char *d2 = tpath("qwen-changed");
	REQUIRE(rl_model_write(d2, &c, b.t, b.n, 0) == RL_OK);
	REQUIRE(rl_model_open(&s, d2, RL_MODEL_READ) == RL_OK);
	rl_model_shape_id(&s, id2);
	rl_model_content_hash(&s, 0, h3);
	CHECK_STR(id1, id2);
	CHECK(strcmp(h1, h3) != 0);
	CHECK(rl_model_compatible(&m, &s) == RL_OK);
	rl_model_close(&s);
	rl_model_close(&m);
	built_free(&b);
}

static void test_compatible(void)
{
	rl_config c;
	tiny(&c, RL_ARCH_LLAMA);
	built b;
	build(&b, &c, RL_DT_F32);
	REQUIRE(rl_model_write(tpath("a"), &c, b.t, b.n, 0) == RL_OK);
	built_free(&b);
	build(&b, &c, RL_DT_BF16);
	REQUIRE(rl_model_write(tpath("b"), &c, b.t, b.n, 0) == RL_OK);
	built_free(&b);
	rl_config c2 = c;
	c2.intermediate_size = 32;
	build(&b, &c2, RL_DT_F32);
	REQUIRE(rl_model_write(tpath("c"), &c2, b.t, b.n, 0) == RL_OK);
	built_free(&b);
	rl_config c3 = c;
	c3.n_layers = 2;
	build(&b, &c3, RL_DT_F32);
	REQUIRE(rl_model_write(tpath("d"), &c3, b.t, b.n, 0) == RL_OK);
	built_free(&b);
	rl_model a, m2;
	REQUIRE(rl_model_open(&a, tpath("a"), RL_MODEL_READ) == RL_OK);
	REQUIRE(rl_model_open(&m2, tpath("b"), RL_MODEL_READ) == RL_OK);
	CHECK(rl_model_compatible(&a, &m2) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "tensor 'lm_head.weight' is F32 in '") != NULL);
	char i1[17], i2[17];
	rl_model_shape_id(&a, i1);
	rl_model_shape_id(&m2, i2);
	CHECK(strcmp(i1, i2) != 0);
	rl_model_close(&m2);
	REQUIRE(rl_model_open(&m2, tpath("c"), RL_MODEL_READ) == RL_OK);
	CHECK(rl_model_compatible(&a, &m2) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "tensor 'model.layers.0.mlp.down_proj.weight' has shape [16, "
				  "24] in '") != NULL);
	rl_model_close(&m2);
	REQUIRE(rl_model_open(&m2, tpath("d"), RL_MODEL_READ) == RL_OK);
	CHECK(rl_model_compatible(&a, &m2) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "tensor 'model.layers.2.input_layernorm.weight' is in '") !=
	      NULL);
	CHECK(rl_model_compatible(&m2, &a) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "but not in '") != NULL);
	rl_model_close(&m2);
	rl_model_close(&a);
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "wb");
	REQUIRE(fp != NULL);
	fputs(text, fp);
	fclose(fp);
}

/* Rejections: each directory differs from a valid one in one way. */
static void test_rejections(void)
{
	rl_config c;
	tiny(&c, RL_ARCH_LLAMA);
	c.n_layers = 1;
	built b;
	build(&b, &c, RL_DT_F16);
	char *d;

	open_expect(tpath("nonexistent"), RL_EDATA, "No such file");
	write_text(tpath("plainfile"), "x");
	open_expect(tpath("plainfile"), RL_EDATA, "not a directory");

	d = tpath("noweights");
	mkdir(d, 0755);
	REQUIRE(rl_config_write(&c, tpath("noweights/config.json")) == RL_OK);
	open_expect(d, RL_EDATA, "no model.safetensors or model.safetensors.index.json");

	d = tpath("noconfig");
	REQUIRE(rl_model_write(d, &c, b.t, b.n, 0) == RL_OK);
	unlink(tpath("noconfig/config.json"));
	open_expect(d, RL_EDATA, "noconfig/config.json': No such file");

	/* a missing tensor, named */
	d = tpath("missing");
	REQUIRE(rl_model_write(d, &c, b.t + 1, b.n - 1, 0) == RL_OK); /* no embed */
	open_expect(d, RL_EDATA, "missing tensor 'model.embed_tokens.weight'");
	/* missing lm_head when untied */
	size_t k = 0;
	rl_st_wtensor *w = malloc(b.n * sizeof *w);
	for (size_t i = 0; i < b.n; i++)
		if (strcmp(b.t[i].name, "lm_head.weight") != 0)
			w[k++] = b.t[i];
	REQUIRE(rl_model_write(tpath("nohead"), &c, w, k, 0) == RL_OK);
	open_expect(tpath("nohead"), RL_EDATA, "missing tensor 'lm_head.weight'");
	/* ...fine when tied (and the config says so) */
	rl_config ct = c;
	ct.tie_word_embeddings = 1;
	REQUIRE(rl_model_write(tpath("tied"), &ct, w, k, 0) == RL_OK);
	open_expect(tpath("tied"), RL_OK, NULL);
	/* tied with a stored lm_head: kept as OTHER, lm_head is the embedding */
	REQUIRE(rl_model_write(tpath("tied2"), &ct, b.t, b.n, 0) == RL_OK);
	rl_model m;
	REQUIRE(rl_model_open(&m, tpath("tied2"), RL_MODEL_READ) == RL_OK);
	CHECK(m.lm_head == m.embed && rl_model_find(&m, "lm_head.weight")->role == RL_R_OTHER);
	rl_model_close(&m);

	/* a wrong shape, named with got and expected */
	for (size_t i = 0; i < b.n; i++)
		w[i] = b.t[i];
	for (size_t i = 0; i < b.n; i++)
		if (strcmp(w[i].name, "model.layers.0.self_attn.k_proj.weight") == 0)
			w[i].shape[0] = 4, w[i].shape[1] = 32;
	REQUIRE(rl_model_write(tpath("shape"), &c, w, b.n, 0) == RL_OK);
	open_expect(tpath("shape"), RL_EDATA,
		    "tensor 'model.layers.0.self_attn.k_proj.weight' has shape [4, 32], "
		    "config.json implies [8, 16]");
	/* a bias the config does not have */
	int64_t bs[1] = {16};
	for (size_t i = 0; i < b.n; i++)
		w[i] = b.t[i];
	w = realloc(w, (b.n + 1) * sizeof *w);
	w[b.n] = (rl_st_wtensor){
		"model.layers.0.self_attn.o_proj.bias", RL_DT_F16, 1, {16}, b.t[1].data};
	(void)bs;
	REQUIRE(rl_model_write(tpath("bias"), &c, w, b.n + 1, 0) == RL_OK);
	open_expect(tpath("bias"), RL_EDATA,
		    "tensor 'model.layers.0.self_attn.o_proj.bias' is present but config.json "
		    "says the model has no o_proj.bias");
	/* a layer beyond num_hidden_layers */
	w[b.n].name = "model.layers.1.input_layernorm.weight";
	REQUIRE(rl_model_write(tpath("layer"), &c, w, b.n + 1, 0) == RL_OK);
	open_expect(tpath("layer"), RL_EDATA,
		    "tensor 'model.layers.1.input_layernorm.weight' belongs to layer 1 but "
		    "config.json has num_hidden_layers 1");
	w[b.n].name = "model.layers.00.input_layernorm.weight";
	REQUIRE(rl_model_write(tpath("layer0"), &c, w, b.n + 1, 0) == RL_OK);
	open_expect(tpath("layer0"), RL_EDATA, "malformed layer number");
	/* unknown names are kept as OTHER; a non-compute dtype is refused for compute */
	uint8_t bytes[6] = {1, 2, 3, 4, 5, 6};
	w[b.n] = (rl_st_wtensor){
		"model.layers.0.self_attn.rotary_emb.inv_freq", RL_DT_I16, 1, {3}, bytes};
	REQUIRE(rl_model_write(tpath("other"), &c, w, b.n + 1, 0) == RL_OK);
	REQUIRE(rl_model_open(&m, tpath("other"), RL_MODEL_READ) == RL_OK);
	const rl_tensor *o = rl_model_find(&m, "model.layers.0.self_attn.rotary_emb.inv_freq");
	REQUIRE(o != NULL);
	CHECK(o->role == RL_R_OTHER && o->layer == 0);
	float f[3];
	CHECK(rl_tensor_read_f32(o, 0, 3, f) == RL_EDATA);
	CHECK(strstr(rl_errmsg(),
		     "tensor 'model.layers.0.self_attn.rotary_emb.inv_freq' has "
		     "dtype I16: realign computes with F32, F16 and BF16 only") != NULL);
	CHECK_EQ_INT(rl_model_param_count(&m), rl_config_param_count(&c));
	rl_model_close(&m);
	free(w);

	/* index and shards disagreeing */
	char sd[512];
	snprintf(sd, sizeof sd, "%s", tpath("sh"));
	REQUIRE(rl_model_write(sd, &c, b.t, b.n, 1200) == RL_OK);
	open_expect(sd, RL_OK, NULL);
	char *text;
	size_t len;
	REQUIRE(rl_read_file(tpath("sh/model.safetensors.index.json"), &text, &len) == RL_OK);
	char idx[512];
	snprintf(idx, sizeof idx, "%s", tpath("sh/model.safetensors.index.json"));
	char of[32]; /* "-of-0000N.safetensors" as the writer named the shards */
	REQUIRE(strstr(text, "-of-") != NULL);
	snprintf(of, sizeof of, "%.21s", strstr(text, "-of-"));
	char entry[160];
	/* a tensor in the index but in another shard than the index says */
	char *mod = strdup(text), *p = strstr(mod, "\"model.norm.weight\": \"model-0000");
	REQUIRE(p);
	p += strlen("\"model.norm.weight\": \"model-0000");
	*p = *p == '1' ? '2' : '1';
	write_text(idx, mod);
	open_expect(sd, RL_EDATA, "tensor 'model.norm.weight' is in '");
	CHECK(strstr(rl_errmsg(), "but the index puts it in '") != NULL);
	free(mod);
	/* a tensor in the index but in no shard */
	mod = malloc(len + 100);
	p = strstr(text, "\"weight_map\": {\n");
	REQUIRE(p);
	size_t at = (size_t)(p - text) + strlen("\"weight_map\": {\n");
	memcpy(mod, text, at);
	snprintf(entry, sizeof entry, "    \"ghost\": \"model-00001%s\",\n", of);
	strcpy(mod + at, entry);
	strcat(mod, text + at);
	write_text(idx, mod);
	open_expect(sd, RL_EDATA, "tensor 'ghost' is missing from '");
	/* a tensor listed twice (cJSON would keep the first) */
	snprintf(entry, sizeof entry, "    \"model.norm.weight\": \"model-00001%s\",\n", of);
	strcpy(mod + at, entry);
	strcat(mod, text + at);
	write_text(idx, mod);
	open_expect(sd, RL_EDATA, "duplicate key \"model.norm.weight\" in \"weight_map\"");
	/* a shard name leaving the directory */
	snprintf(entry, sizeof entry, "    \"x\": \"../model-00001%s\",\n", of);
	strcpy(mod + at, entry);
	strcat(mod, text + at);
	write_text(idx, mod);
	open_expect(sd, RL_EDATA, "must name a file in the model directory");
	/* a tensor in a shard but not in the index */
	p = strstr(text, "    \"model.layers.0.input_layernorm.weight\"");
	REQUIRE(p);
	char *eol = strchr(p, '\n');
	memcpy(mod, text, (size_t)(p - text));
	strcpy(mod + (p - text), eol + 1);
	write_text(idx, mod);
	open_expect(sd, RL_EDATA,
		    "tensor 'model.layers.0.input_layernorm.weight' is not in the index");
	/* a listed shard missing */
	write_text(idx, text);
	open_expect(sd, RL_OK, NULL);
	char sname[64];
	snprintf(sname, sizeof sname, "sh/model-00001%s", of);
	char shard1[512], moved[512], shard2[512];
	snprintf(shard1, sizeof shard1, "%s", tpath(sname));
	snprintf(moved, sizeof moved, "%s", tpath("sh/moved"));
	REQUIRE(rename(shard1, moved) == 0);
	snprintf(sname, sizeof sname, "model-00001%s': No such file", of);
	open_expect(sd, RL_EDATA, sname);
	/* a tensor present in two shards */
	rl_st_file sf;
	REQUIRE(rl_st_open(&sf, moved, RL_ST_READ) == RL_OK);
	rl_st_wtensor two[2];
	memset(two, 0, sizeof two);
	for (size_t i = 0; i < 2 && i < sf.ntensors; i++) {
		two[i].name = sf.tensors[i].name;
		two[i].dtype = sf.tensors[i].dtype;
		two[i].ndim = sf.tensors[i].ndim;
		memcpy(two[i].shape, sf.tensors[i].shape, sizeof two[i].shape);
		two[i].data = sf.map + sf.tensors[i].offset;
	}
	REQUIRE(rl_st_write(shard1, two, sf.ntensors < 2 ? sf.ntensors : 2, NULL, 0) == RL_OK);
	snprintf(sname, sizeof sname, "sh/model-00002%s", of);
	snprintf(shard2, sizeof shard2, "%s", tpath(sname));
	rl_st_file s2;
	REQUIRE(rl_st_open(&s2, shard2, RL_ST_READ) == RL_OK);
	size_t n2 = s2.ntensors;
	rl_st_wtensor *w2 = calloc(n2 + 1, sizeof *w2);
	for (size_t i = 0; i < n2; i++) {
		w2[i].name = s2.tensors[i].name;
		w2[i].dtype = s2.tensors[i].dtype;
		w2[i].ndim = s2.tensors[i].ndim;
		memcpy(w2[i].shape, s2.tensors[i].shape, sizeof w2[i].shape);
		w2[i].data = s2.map + s2.tensors[i].offset;
	}
	w2[n2] = two[0];
	REQUIRE(rl_st_write(tpath("sh/tmp2"), w2, n2 + 1, NULL, 0) == RL_OK);
	rl_st_close(&s2);
	REQUIRE(rename(tpath("sh/tmp2"), shard2) == 0);
	char needle[256];
	snprintf(needle, sizeof needle, "tensor '%s' is in two shards", two[0].name);
	open_expect(sd, RL_EDATA, needle);
	rl_st_close(&sf);
	free(w2);
	/* bad index JSON */
	write_text(idx, "{\"weight_map\": [");
	open_expect(sd, RL_EDATA, "model.safetensors.index.json': malformed JSON");
	write_text(idx, "{\"metadata\": {}}");
	open_expect(sd, RL_EDATA, "no \"weight_map\" object");
	free(mod);
	free(text);
	built_free(&b);
}

/* A sharded write followed by a single write: the single file wins; a sharded
 * write over a single one removes it. */
static void test_rewrite(void)
{
	rl_config c;
	tiny(&c, RL_ARCH_MISTRAL);
	c.sliding_window = 0;
	built b;
	build(&b, &c, RL_DT_F32);
	const char *d = tpath("rw");
	REQUIRE(rl_model_write(d, &c, b.t, b.n, 0) == RL_OK);
	REQUIRE(rl_model_write(d, &c, b.t, b.n, 4000) == RL_OK);
	CHECK(access(tpath("rw/model.safetensors"), F_OK) != 0);
	rl_model m;
	REQUIRE(rl_model_open(&m, d, RL_MODEL_WRITE) == RL_OK);
	CHECK(m.nshards > 1);
	/* in-place change through the shard's descriptor */
	const rl_tensor *t = rl_model_get(&m, 0, RL_R_V);
	float v = 123.5f;
	REQUIRE(rl_st_pwrite(&m.shards[t->shard], t->offset + 4, &v, 4) == RL_OK);
	float got[2];
	REQUIRE(rl_tensor_read_f32(t, 0, 2, got) == RL_OK);
	CHECK(got[1] == 123.5f);
	rl_model_close(&m);
	built_free(&b);
}

/* expected.tsv from transformers: "model<TAB>key<TAB>value..." rows. */
static void test_transformers_models(void)
{
	FILE *fp = fopen(check_fixture("safetensors/models/expected.tsv"), "r");
	REQUIRE(fp != NULL);
	char line[4096];
	rl_model m;
	char cur[256] = "";
	int open = 0, nrows = 0;
	while (fgets(line, sizeof line, fp)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		line[strcspn(line, "\n")] = 0;
		char *save = NULL, *dir = strtok_r(line, "\t", &save);
		char *key = strtok_r(NULL, "\t", &save);
		REQUIRE(dir && key);
		if (strcmp(dir, cur) != 0) {
			if (open)
				rl_model_close(&m);
			open = 0;
			snprintf(cur, sizeof cur, "%s", dir);
			char p[512];
			snprintf(p, sizeof p, "safetensors/models/%s", dir);
			int rc = rl_model_open(&m, check_fixture(p), RL_MODEL_READ);
			CHECKF(rc == RL_OK, "%s: %s", dir, rl_errmsg());
			open = rc == RL_OK;
		}
		if (!open)
			continue;
		nrows++;
		if (strcmp(key, "nshards") == 0) {
			CHECK_EQ_INT(m.nshards, atoi(strtok_r(NULL, "\t", &save)));
		} else if (strcmp(key, "ntensors") == 0) {
			CHECK_EQ_INT(m.ntensors, atoi(strtok_r(NULL, "\t", &save)));
		} else if (strcmp(key, "P") == 0) {
			CHECK_EQ_INT(rl_model_param_count(&m), atoll(strtok_r(NULL, "\t", &save)));
		} else if (strcmp(key, "candidates") == 0) {
			int L = atoi(strtok_r(NULL, "\t", &save));
			CHECK_EQ_INT(rl_model_candidates(&m, L, NULL, 0),
				     atoi(strtok_r(NULL, "\t", &save)));
			CHECK_EQ_INT(rl_model_candidate_numel(&m, L),
				     atoll(strtok_r(NULL, "\t", &save)));
		} else if (strcmp(key, "tied") == 0) {
			CHECK_EQ_INT(m.lm_head == m.embed, atoi(strtok_r(NULL, "\t", &save)));
		} else if (strcmp(key, "tensor") == 0) {
			/* name dtype ndim dims... sum first */
			const char *name = strtok_r(NULL, "\t", &save);
			const char *dt = strtok_r(NULL, "\t", &save);
			int ndim = atoi(strtok_r(NULL, "\t", &save));
			const rl_tensor *t = rl_model_find(&m, name);
			CHECKF(t != NULL, "%s: no tensor %s", dir, name);
			if (!t)
				continue;
			CHECK_STR(rl_dtype_name(t->dtype), dt);
			CHECK_EQ_INT(t->ndim, ndim);
			for (int d = 0; d < ndim; d++)
				CHECK_EQ_INT(t->shape[d < t->ndim ? d : 0],
					     atoll(strtok_r(NULL, "\t", &save)));
			double want_sum = strtod(strtok_r(NULL, "\t", &save), NULL);
			double want_first = strtod(strtok_r(NULL, "\t", &save), NULL);
			float *v = malloc(t->numel * sizeof *v + 4);
			REQUIRE(rl_tensor_read_f32(t, 0, t->numel, v) == RL_OK);
			double s = 0;
			for (uint64_t i = 0; i < t->numel; i++)
				s += v[i];
			/* float64 sums of the same f32 values in another order: 1e-9 relative */
			CHECKF(fabs(s - want_sum) <= 1e-9 * (1 + fabs(want_sum)),
			       "%s %s: sum %.17g vs torch %.17g", dir, name, s, want_sum);
			CHECKF(v[0] == (float)want_first, "%s %s: first %.9g vs %.9g", dir, name,
			       (double)v[0], want_first);
			free(v);
		} else if (strcmp(key, "role") == 0) {
			const char *name = strtok_r(NULL, "\t", &save);
			int layer = atoi(strtok_r(NULL, "\t", &save));
			const char *rn = strtok_r(NULL, "\t", &save);
			const rl_tensor *t = rl_model_find(&m, name);
			CHECKF(t && t->layer == layer && strcmp(rl_role_name(t->role), rn) == 0,
			       "%s: role of %s", dir, name);
		} else {
			CHECKF(0, "unknown key %s", key);
		}
	}
	if (open)
		rl_model_close(&m);
	fclose(fp);
	CHECKF(nrows > 20, "only %d rows from transformers", nrows);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/rl-model.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	REQUIRE(mkdtemp(tmpdir) != NULL);
	test_open_roles();
	test_compatible();
	test_rejections();
	test_rewrite();
	test_transformers_models();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return check_done("test_model");
}
