/* test_tokenizer_conformance.c — our ids and decodes against HuggingFace tokenizers.
 *
 * Truth: tests/fixtures/tokenizer/, written by tests/gen/gen_tokenizer.py with
 * tokenizers' Tokenizer.encode(s, add_special_tokens=False) and decode(ids,
 * skip_special_tokens=False/True). For each of the five real tokenizers (xz copies
 * committed beside the goldens) and every corpus string: ids equal, decode(ids)
 * equal (both skip settings), the first strings also with add_special_tokens=True;
 * random id sequences (partial UTF-8 included) decode equal. Then the pipeline
 * variants (real vocabularies with other normalizers/pre-tokenizers/decoders/added
 * tokens) and a WordLevel tokenizer. Every mismatch is reported; any fails the test.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "real_tokenizers.h"
#include "text/chat.h"
#include "text/tokenizer.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
	char **s;
	size_t *len;
	size_t n;
} corpus;

static corpus read_corpus(void)
{
	corpus c = {0};
	rl_jsonl j;
	REQUIRE(rl_jsonl_open(&j, check_fixture("tokenizer/corpus.jsonl")) == RL_OK);
	cJSON *it;
	while (rl_jsonl_next(&j, &it) == RL_OK && it) {
		const cJSON *s = cJSON_GetObjectItem(it, "s");
		REQUIRE(cJSON_IsString(s));
		c.s = realloc(c.s, (c.n + 1) * sizeof *c.s);
		c.len = realloc(c.len, (c.n + 1) * sizeof *c.len);
		c.s[c.n] = strdup(s->valuestring);
		c.len[c.n] = strlen(s->valuestring);
		c.n++;
		cJSON_Delete(it);
	}
	rl_jsonl_close(&j);
	return c;
}

static void corpus_free(corpus *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->s[i]);
	free(c->s);
	free(c->len);
}

static int ids_equal(const rl_ids *got, const cJSON *want)
{
	if (!cJSON_IsArray(want) || (size_t)cJSON_GetArraySize(want) != got->n)
		return 0;
	size_t i = 0;
	const cJSON *x;
	cJSON_ArrayForEach(x, want) if (got->v[i++] != (int32_t)x->valuedouble) return 0;
	return 1;
}

static void print_ids(const char *what, const int32_t *v, size_t n)
{
	fprintf(stderr, "    %s:", what);
	for (size_t i = 0; i < n && i < 40; i++)
		fprintf(stderr, " %d", v[i]);
	fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

static int32_t *json_ids(const cJSON *a, size_t *n)
{
	*n = (size_t)cJSON_GetArraySize(a);
	int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
	size_t i = 0;
	const cJSON *x;
	cJSON_ArrayForEach(x, a) v[i++] = (int32_t)x->valuedouble;
	return v;
}

static int bad_shown;

/* Checks one string: ids, decode (and skip-special decode when want_skip given). */
static int check_one(const char *who, size_t i, const rl_tokenizer *t, const char *s, size_t len,
		     const cJSON *want_ids, const char *want_dec, const char *want_skip)
{
	rl_ids got = {0};
	int ok = 1;
	int rc = rl_tok_encode(t, s, len, 0, &got);
	if (rc || !ids_equal(&got, want_ids)) {
		ok = 0;
		if (bad_shown++ < 12) {
			fprintf(stderr, "%s: string %zu ids differ (rc %d %s): '%.80s'\n", who, i,
				rc, rc ? rl_errmsg() : "", s);
			print_ids("got ", got.v, got.n);
			size_t wn;
			int32_t *w = json_ids(want_ids, &wn);
			print_ids("want", w, wn);
			free(w);
		}
	}
	size_t wn;
	int32_t *w = json_ids(want_ids, &wn);
	for (int skip = 0; skip < 2; skip++) {
		const char *want = skip ? want_skip : want_dec;
		if (!want)
			continue;
		char *text;
		size_t tl;
		rc = rl_tok_decode(t, w, wn, skip, &text, &tl);
		if (rc || strlen(want) != tl || memcmp(want, text, tl) != 0) {
			ok = 0;
			if (bad_shown++ < 12)
				fprintf(stderr,
					"%s: string %zu decode(skip=%d) differs:\n    got  '%s'\n  "
					"  want '%s'\n",
					who, i, skip, rc ? rl_errmsg() : text, want);
		}
		free(text);
	}
	free(w);
	rl_ids_free(&got);
	return ok;
}

static const char *jstr_or(const cJSON *o, const char *k, const char *dflt)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);
	return cJSON_IsString(v) ? v->valuestring : dflt;
}

static void check_templates(const char *name, rl_tokenizer *t);

static void check_real(const char *name, const corpus *c, const char *json, size_t len,
		       const char *cfg, size_t clen)
{
	double t0 = now();
	rl_tokenizer *t;
	char who[64];
	snprintf(who, sizeof who, "%s", name);
	REQUIRE(rl_tokenizer_load_mem(json, len, cfg, clen, name, &t) == RL_OK);
	double t_load = now() - t0;
	char path[256];
	snprintf(path, sizeof path, "tokenizer/%s.golden.jsonl", name);
	rl_jsonl j;
	REQUIRE(rl_jsonl_open(&j, check_fixture(path)) == RL_OK);
	cJSON *it;
	size_t i = 0, good = 0, nspecial = 0;
	t0 = now();
	while (rl_jsonl_next(&j, &it) == RL_OK && it) {
		REQUIRE(i < c->n);
		const char *s = c->s[i];
		good += check_one(who, i, t, s, c->len[i], cJSON_GetObjectItem(it, "ids"),
				  jstr_or(it, "dec", s), jstr_or(it, "dec_skip", s));
		const cJSON *sp = cJSON_GetObjectItem(it, "ids_special");
		if (sp) {
			rl_ids got = {0};
			int rc = rl_tok_encode(t, s, c->len[i], RL_TOK_ADD_SPECIAL, &got);
			CHECKF(rc == RL_OK && ids_equal(&got, sp),
			       "%s: string %zu with special tokens", name, i);
			rl_ids_free(&got);
			nspecial++;
		}
		cJSON_Delete(it);
		i++;
	}
	rl_jsonl_close(&j);
	double t_enc = now() - t0;
	CHECKF(i == c->n, "%s: golden has %zu lines, corpus %zu", name, i, c->n);
	CHECKF(good == i, "%s: %zu of %zu strings differ", name, i - good, i);
	/* random id sequences */
	snprintf(path, sizeof path, "tokenizer/%s.decode.jsonl", name);
	REQUIRE(rl_jsonl_open(&j, check_fixture(path)) == RL_OK);
	size_t nd = 0, dgood = 0;
	while (rl_jsonl_next(&j, &it) == RL_OK && it) {
		const cJSON *ids = cJSON_GetObjectItem(it, "ids");
		size_t n;
		int32_t *v = json_ids(ids, &n);
		int ok = 1;
		for (int skip = 0; skip < 2; skip++) {
			const char *want = jstr_or(it, skip ? "dec_skip" : "dec", "");
			char *text;
			size_t tl;
			int rc = rl_tok_decode(t, v, n, skip, &text, &tl);
			if (rc || strlen(want) != tl || memcmp(want, text, tl) != 0) {
				ok = 0;
				if (bad_shown++ < 12) {
					fprintf(stderr,
						"%s: decode case %zu (skip=%d) differs:\n    got  "
						"'%s'\n    want '%s'\n",
						name, nd, skip, rc ? rl_errmsg() : text, want);
					print_ids("ids", v, n);
				}
			}
			free(text);
		}
		dgood += ok;
		nd++;
		free(v);
		cJSON_Delete(it);
	}
	rl_jsonl_close(&j);
	CHECKF(dgood == nd, "%s: %zu of %zu decode cases differ", name, nd - dgood, nd);
	printf("%-13s vocab %7d  load %.2fs  %zu strings (%zu with specials) %.3fs  %zu/%zu ok, "
	       "%zu/%zu decodes ok\n",
	       name, rl_tok_n_vocab(t), t_load, i, nspecial, t_enc, good, i, dgood, nd);
	check_templates(name, t);
}

/* The built-in templates (--template NAME) against the goldens of
 * templates.jsonl (Jinja-verified by the generator, except the documented
 * differences). The models' own templates: t1003-chat-templates. Takes over t. */
static void check_templates(const char *name, rl_tokenizer *t)
{
	rl_jsonl j;
	REQUIRE(rl_jsonl_open(&j, check_fixture("tokenizer/templates.jsonl")) == RL_OK);
	cJSON *it;
	size_t n = 0, good = 0;
	while (rl_jsonl_next(&j, &it) == RL_OK && it) {
		if (strcmp(jstr_or(it, "model", ""), name) != 0) {
			cJSON_Delete(it);
			continue;
		}
		const cJSON *sys = cJSON_GetObjectItem(it, "system");
		rl_chat_opts o = {.template_spec = jstr_or(it, "template", ""),
				  .system = cJSON_IsString(sys) ? sys->valuestring : NULL};
		const char *prompt = jstr_or(it, "prompt", ""), *answer = jstr_or(it, "answer", "");
		rl_chat c;
		/* rl_chat takes over the tokenizer: lend it by swapping back afterwards */
		REQUIRE(rl_chat_init(&c, t, NULL, &o) == RL_OK);
		char *text;
		size_t len, np = 0;
		int ok = 1;
		REQUIRE(rl_chat_text(&c, prompt, strlen(prompt), &text, &len) == RL_OK);
		ok &= strcmp(text, jstr_or(it, "text", "")) == 0;
		free(text);
		rl_ids ids = {0}, tids = {0};
		ok &= rl_chat_encode(&c, prompt, strlen(prompt), &ids) == RL_OK &&
		      ids_equal(&ids, cJSON_GetObjectItem(it, "ids"));
		ok &= rl_chat_encode_train(&c, prompt, strlen(prompt), answer, strlen(answer),
					   &tids, &np, &text, NULL, NULL) == RL_OK &&
		      ids_equal(&tids, cJSON_GetObjectItem(it, "train_ids")) &&
		      strcmp(text, jstr_or(it, "train_text", "")) == 0 &&
		      (double)np == cJSON_GetObjectItem(it, "n_prompt")->valuedouble;
		free(text);
		CHECKF(ok, "%s: template %s system %s prompt '%s'", name, o.template_spec,
		       o.system ? o.system : "(default)", jstr_or(it, "prompt", ""));
		good += ok;
		n++;
		rl_ids_free(&ids);
		rl_ids_free(&tids);
		c.tok = NULL; /* keep the tokenizer for the next row */
		rl_chat_close(&c);
		cJSON_Delete(it);
	}
	rl_jsonl_close(&j);
	CHECKF(n > 0 || strcmp(name, "mistral_v01") != 0, "%s: no template rows", name);
	printf("%-13s templates %zu/%zu ok\n", name, good, n);
	rl_tokenizer_free(t);
}

/* obj[key] = a copy of v (replaced or added). */
static void put(cJSON *obj, const char *key, const cJSON *v)
{
	cJSON *d = cJSON_Duplicate(v, 1);
	if (!cJSON_ReplaceItemInObject(obj, key, d))
		cJSON_AddItemToObject(obj, key, d);
}

/* Variant = a base tokenizer.json with the parts named in its spec replaced. */
static void check_variants(const char *base, const corpus *c, const char *json, size_t len)
{
	static const char *const names[] = {"sp_metaspace_first",
					    "sp_metaspace_always_split",
					    "sp_metaspace_never",
					    "sp_nfkc_lower_strip",
					    "sp_nfd_digits_punct",
					    "sp_no_fuse_unk",
					    "sp_fuse_unk",
					    "sp_added_flags",
					    "bl_gpt2",
					    "bl_split_merged",
					    "bl_whitespace_lower",
					    "bl_added_flags"};
	for (size_t v = 0; v < sizeof names / sizeof names[0]; v++) {
		char path[256];
		snprintf(path, sizeof path, "tokenizer/variants/%s.json", names[v]);
		char *spec_text;
		size_t spec_len;
		REQUIRE(rl_read_file(check_fixture(path), &spec_text, &spec_len) == RL_OK);
		cJSON *spec = cJSON_Parse(spec_text);
		free(spec_text);
		REQUIRE(spec != NULL);
		if (strcmp(jstr_or(spec, "base", ""), base) != 0) {
			cJSON_Delete(spec);
			continue;
		}
		cJSON *root = cJSON_ParseWithLength(json, len);
		REQUIRE(root != NULL);
		static const char *const parts[] = {"normalizer", "pre_tokenizer", "decoder"};
		for (int p = 0; p < 3; p++) {
			cJSON *x = cJSON_GetObjectItem(spec, parts[p]);
			if (x)
				put(root, parts[p], x);
		}
		cJSON *model = cJSON_GetObjectItem(root, "model"), *x;
		cJSON_ArrayForEach(x, cJSON_GetObjectItem(spec, "model")) put(model, x->string, x);
		cJSON *added = cJSON_GetObjectItem(root, "added_tokens");
		cJSON_ArrayForEach(x, cJSON_GetObjectItem(spec, "add_tokens"))
			cJSON_AddItemToArray(added, cJSON_Duplicate(x, 1)); /* ids are assigned */
		char *text = cJSON_PrintUnformatted(root);
		cJSON_Delete(root);
		rl_tokenizer *t;
		int rc = rl_tokenizer_load_mem(text, strlen(text), NULL, 0, names[v], &t);
		free(text);
		CHECKF(rc == RL_OK, "variant %s loads: %s", names[v], rl_errmsg());
		if (rc) {
			cJSON_Delete(spec);
			continue;
		}
		rl_jsonl j;
		REQUIRE(rl_jsonl_open(&j, check_fixture("tokenizer/variants.golden.jsonl")) ==
			RL_OK);
		cJSON *it;
		size_t n = 0, good = 0;
		while (rl_jsonl_next(&j, &it) == RL_OK && it) {
			if (strcmp(jstr_or(it, "v", ""), names[v]) == 0) {
				size_t i = (size_t)cJSON_GetObjectItem(it, "i")->valuedouble;
				REQUIRE(i < c->n);
				good += check_one(names[v], i, t, c->s[i], c->len[i],
						  cJSON_GetObjectItem(it, "ids"),
						  jstr_or(it, "dec", c->s[i]), NULL);
				n++;
			}
			cJSON_Delete(it);
		}
		rl_jsonl_close(&j);
		CHECKF(n > 100 && good == n, "variant %s: %zu of %zu strings differ", names[v],
		       n - good, n);
		printf("variant %-26s %zu/%zu ok\n", names[v], good, n);
		rl_tokenizer_free(t);
		cJSON_Delete(spec);
	}
}

static void check_wordlevel(const corpus *c)
{
	rl_tokenizer *t;
	REQUIRE(rl_tokenizer_load(check_fixture("tokenizer/wordlevel"), &t) == RL_OK);
	CHECK_STR(rl_tok_model_type(t), "WordLevel");
	rl_jsonl j;
	REQUIRE(rl_jsonl_open(&j, check_fixture("tokenizer/wordlevel.golden.jsonl")) == RL_OK);
	cJSON *it;
	size_t i = 0, good = 0;
	while (rl_jsonl_next(&j, &it) == RL_OK && it) {
		good += check_one("wordlevel", i, t, c->s[i], c->len[i],
				  cJSON_GetObjectItem(it, "ids"), jstr_or(it, "dec", ""),
				  jstr_or(it, "dec_skip", ""));
		cJSON_Delete(it);
		i++;
	}
	rl_jsonl_close(&j);
	CHECKF(i == c->n && good == i, "wordlevel: %zu of %zu strings differ", i - good, i);
	CHECK_EQ_INT(rl_tok_bos(t), rl_tok_id(t, "<bos>", 5));
	printf("wordlevel     %zu/%zu ok\n", good, i);
	rl_tokenizer_free(t);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	corpus c = read_corpus();
	REQUIRE(c.n >= 300);
	for (size_t k = 0; k < sizeof real_tokenizer_names / sizeof real_tokenizer_names[0]; k++) {
		const char *name = real_tokenizer_names[k];
		if (only && !strstr(name, only))
			continue;
		size_t len, clen;
		char *json, *cfg;
		if (!read_real_tokenizer(name, &json, &len, &cfg, &clen))
			continue;
		check_real(name, &c, json, len, cfg, clen);
		check_variants(name, &c, json, len);
		free(json);
		free(cfg);
	}
	if (!only || strstr("wordlevel", only))
		check_wordlevel(&c);
	corpus_free(&c);
	return check_done("test_tokenizer_conformance");
}
