/* test_import.c — GGUF models imported against transformers (tests/gen/gen_import.py).
 *
 * Each case is a tiny random model converted by llama.cpp's convert_hf_to_gguf.py
 * (Llama f32, Llama with every bias and linear RoPE in Q8_0, Mistral f16, Qwen2
 * bf16 split into four files, Gemma f32). The fixture holds every tensor as
 * transformers' GGUF loader gives it (for the split Qwen2 and for Gemma, which
 * that loader cannot read, the original model's tensors as the converter
 * stores them) and the logits of prompts at the last token, computed in fp64 from
 * those tensors rounded to the import dtype. Checked:
 *   - the config: the values transformers reads from the file;
 *   - the tensors: the same names, and every element equal to the reference
 *     rounded to the import dtype, bit for bit (the q/k un-permutation, Gemma's
 *     norm offset and the dequantization all show here);
 *   - the logits: realign's engine on the imported directory, within
 *     8 x err32 + 1e-5 x max|ref| (err32: torch fp32's own distance to fp64);
 *   - shards: the same import cut into shards of 8 KiB gives the same tensors. */
#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "compute/engine.h"
#include "compute/ops.h"
#include "core/error.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "store/gguf_hf.h"
#include "store/safetensors.h"

static char tmpdir[256];

static const cJSON *jget(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	REQUIRE(v != NULL);
	return v;
}

static void check_config(const char *cs, const rl_config *c, const cJSON *want)
{
	struct {
		const char *key;
		double got;
	} f[] = {
		{"hidden_size", c->hidden_size},
		{"intermediate_size", c->intermediate_size},
		{"num_hidden_layers", c->n_layers},
		{"num_attention_heads", c->n_heads},
		{"num_key_value_heads", c->n_kv_heads},
		{"head_dim", c->head_dim},
		{"max_position_embeddings", c->max_position},
		{"rms_norm_eps", c->rms_eps},
		{"rope_theta", c->rope_theta},
		{"vocab_size", c->vocab_size},
		{"tie_word_embeddings", c->tie_word_embeddings},
		{"bos_token_id", c->bos_token_id},
		{"eos_token_id", c->n_eos ? c->eos_token_ids[0] : -1},
	};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		const cJSON *v = jget(want, f[i].key);
		double w = cJSON_IsBool(v) ? cJSON_IsTrue(v) : v->valuedouble;
		CHECKF(fabs(f[i].got - w) <= 1e-6 * fabs(w), "%s: %s = %g, transformers: %g", cs,
		       f[i].key, f[i].got, w);
	}
}

/* Every tensor of the imported model equals the reference rounded to its dtype. */
static void check_tensors(const char *cs, const rl_model *m, const rl_st_file *ref, int tied)
{
	size_t nref = 0;
	for (size_t i = 0; i < ref->ntensors; i++) {
		const rl_st_tensor *r = &ref->tensors[i];
		if (strcmp(r->name, "logits") == 0 ||
		    (tied && strcmp(r->name, "lm_head.weight") == 0))
			continue;
		nref++;
		const rl_tensor *t = rl_model_find(m, r->name);
		CHECKF(t != NULL, "%s: '%s' not imported", cs, r->name);
		if (!t)
			continue;
		CHECKF(t->numel == r->numel, "%s: '%s' has %llu elements, want %llu", cs, r->name,
		       (unsigned long long)t->numel, (unsigned long long)r->numel);
		if (t->numel != r->numel)
			continue;
		float *got = malloc(t->numel * 4), *want = malloc(t->numel * 4);
		void *narrow = malloc(t->numel * 4);
		REQUIRE(got && want && narrow);
		REQUIRE(rl_tensor_read_f32(t, 0, t->numel, got) == RL_OK);
		memcpy(want, ref->map + r->offset, t->numel * 4);
		if (t->dtype != RL_DT_F32) {
			rl_narrow(t->dtype, want, narrow, t->numel);
			rl_widen(t->dtype, narrow, want, t->numel);
		}
		size_t bad = 0;
		for (uint64_t k = 0; k < t->numel; k++)
			bad += memcmp(&got[k], &want[k], 4) != 0;
		CHECKF(bad == 0, "%s: '%s': %zu of %llu elements differ", cs, r->name, bad,
		       (unsigned long long)t->numel);
		free(got), free(want), free(narrow);
	}
	CHECKF(m->ntensors == nref, "%s: %zu tensors imported, the reference has %zu", cs,
	       m->ntensors, nref);
}

static void check_logits(const char *cs, const rl_model *m, const rl_st_file *ref,
			 const cJSON *meta)
{
	const cJSON *prompts = jget(meta, "prompts");
	int n = cJSON_GetArraySize(prompts), V = m->cfg.vocab_size;
	int32_t *ids[8];
	int lens[8];
	REQUIRE(n <= 8);
	for (int i = 0; i < n; i++) {
		const cJSON *p = cJSON_GetArrayItem(prompts, i);
		lens[i] = cJSON_GetArraySize(p);
		ids[i] = malloc((size_t)lens[i] * sizeof **ids);
		for (int k = 0; k < lens[i]; k++)
			ids[i][k] = (int32_t)cJSON_GetArrayItem(p, k)->valuedouble;
	}
	rl_prompts pr;
	REQUIRE(rl_prompts_from_ids(&pr, n, (const int32_t *const *)ids, lens) == RL_OK);
	rl_engine e;
	REQUIRE(rl_engine_init(&e, m, m->cfg.n_layers, pr.max_len, NULL) == RL_OK);
	float *h = malloc((size_t)n * m->cfg.hidden_size * 4), *lg = malloc((size_t)n * V * 4);
	REQUIRE(h && lg);
	REQUIRE(rl_engine_hidden(&e, &pr, 0, h) == RL_OK);
	REQUIRE(rl_lm_head_forward(m, h, n, lg) == RL_OK);
	const rl_st_tensor *r = rl_st_find(ref, "logits");
	REQUIRE(r && r->numel == (uint64_t)n * V);
	const float *want = (const float *)(ref->map + r->offset);
	double mx = 0;
	for (uint64_t k = 0; k < r->numel; k++)
		mx = fabs(want[k]) > mx ? fabs(want[k]) : mx;
	char what[128];
	snprintf(what, sizeof what, "%s: logits", cs);
	check_close(what, lg, want, r->numel, 8 * jget(meta, "err32")->valuedouble + 1e-5 * mx, 0);
	rl_engine_free(&e);
	rl_prompts_free(&pr);
	for (int i = 0; i < n; i++)
		free(ids[i]);
	free(h), free(lg);
}

static void test_case(const char *cs)
{
	char dir[4600], path[4700], out[600];
	snprintf(dir, sizeof dir, "%s%s", check_fixture("import/models/"), cs);
	char *text;
	size_t len;
	snprintf(path, sizeof path, "%s/meta.json", dir);
	REQUIRE(rl_read_file(path, &text, &len) == RL_OK);
	cJSON *meta = cJSON_Parse(text);
	free(text);
	REQUIRE(meta);
	int nfiles = (int)jget(meta, "n_files")->valuedouble;
	if (nfiles > 1) /* any part opens them all: the last one here */
		snprintf(path, sizeof path, "%s/model-%05d-of-%05d.gguf", dir, nfiles, nfiles);
	else
		snprintf(path, sizeof path, "%s/model.gguf", dir);
	rl_gguf g;
	REQUIRE(rl_gguf_open(&g, path) == RL_OK);
	CHECK_EQ_INT(g.nfiles, nfiles);
	rl_gguf_hf hm;
	REQUIRE(rl_gguf_hf_map(&g, &hm) == RL_OK);
	CHECK_STR(hm.cfg.architecture, jget(meta, "architecture")->valuestring);
	check_config(cs, &hm.cfg, jget(meta, "config"));
	const char *dts = jget(meta, "dtype")->valuestring;
	rl_dtype dt = strcmp(dts, "f32") == 0	? RL_DT_F32
		      : strcmp(dts, "f16") == 0 ? RL_DT_F16
						: RL_DT_BF16;
	rl_st_file ref;
	snprintf(path, sizeof path, "%s/expected.safetensors", dir);
	REQUIRE(rl_st_open(&ref, path, RL_ST_READ) == RL_OK);
	for (int sharded = 0; sharded < 2; sharded++) {
		snprintf(out, sizeof out, "%s/%s-%d", tmpdir, cs, sharded);
		REQUIRE(rl_gguf_hf_write(out, &hm, dt, sharded ? 8192 : 0, NULL, NULL) == RL_OK);
		rl_model m;
		REQUIRE(rl_model_open(&m, out, RL_MODEL_READ) == RL_OK);
		CHECK(sharded ? m.nshards > 2 : m.nshards == 1);
		check_tensors(cs, &m, &ref, hm.cfg.tie_word_embeddings);
		if (!sharded)
			check_logits(cs, &m, &ref, meta);
		rl_model_close(&m);
	}
	rl_st_close(&ref);
	rl_gguf_hf_free(&hm);
	rl_gguf_close(&g);
	cJSON_Delete(meta);
}

int main(void)
{
	char note[128];
	rl_blas_setup(note, sizeof note);
	snprintf(tmpdir, sizeof tmpdir, "%s/rl-import.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	REQUIRE(mkdtemp(tmpdir) != NULL);
	char *list;
	size_t len;
	REQUIRE(rl_read_file(check_fixture("import/models/cases.txt"), &list, &len) == RL_OK);
	int ncase = 0;
	for (char *save = NULL, *cs = strtok_r(list, "\n", &save); cs;
	     cs = strtok_r(NULL, "\n", &save)) {
		test_case(cs);
		ncase++;
	}
	free(list);
	CHECK(ncase >= 5);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return check_done("test_import");
}
