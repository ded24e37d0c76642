/* test_tokenizer.c — tokenizer, template and chat units: the heap BPE against a
 * naive quadratic BPE, refusals with their messages, config files, end ids,
 * templates, prompt items, threads, and every allocation failing in turn.
 * (Conformance with HuggingFace tokenizers: test_tokenizer_conformance.c.)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "text/chat.h"
#include "text/template.h"
#include "text/tokenizer.h"

/* A tiny BPE over the alphabet a..d, merges with ties and chains. */
static const char *const tiny_vocab[] = {"a",  "b",   "c",  "d",   "ab",   "bc",  "abc", "cd",
					 "aa", "aaa", "dd", "bcd", "abcd", "<s>", "</s>"};
static const char *const tiny_merges[][2] = {{"a", "b"},  {"b", "c"},  {"c", "d"},
					     {"a", "a"},  {"ab", "c"}, {"aa", "a"},
					     {"bc", "d"}, {"d", "d"},  {"abc", "d"}};

static char *tiny_json(const char *extra)
{
	static char buf[4096];
	size_t k =
		(size_t)snprintf(buf, sizeof buf, "{\"model\": {\"type\": \"BPE\", \"vocab\": {");
	for (size_t i = 0; i < sizeof tiny_vocab / sizeof *tiny_vocab; i++)
		k += (size_t)snprintf(buf + k, sizeof buf - k, "%s\"%s\": %zu", i ? ", " : "",
				      tiny_vocab[i], i);
	k += (size_t)snprintf(buf + k, sizeof buf - k, "}, \"merges\": [");
	for (size_t i = 0; i < sizeof tiny_merges / sizeof *tiny_merges; i++)
		k += (size_t)snprintf(buf + k, sizeof buf - k, "%s\"%s %s\"", i ? ", " : "",
				      tiny_merges[i][0], tiny_merges[i][1]);
	snprintf(buf + k, sizeof buf - k,
		 "]}, \"added_tokens\": [{\"id\": 13, \"content\": \"<s>\", \"special\": true, "
		 "\"normalized\": false}, {\"id\": 14, \"content\": \"</s>\", \"special\": true, "
		 "\"normalized\": false}]%s}",
		 extra ? extra : "");
	return buf;
}

static int32_t tiny_id(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof tiny_vocab / sizeof *tiny_vocab; i++)
		if (strlen(tiny_vocab[i]) == n && memcmp(tiny_vocab[i], s, n) == 0)
			return (int32_t)i;
	return -1;
}

/* Naive BPE: repeatedly merge the leftmost occurrence of the lowest-rank pair.
 * O(n^2 * merges): the reference the heap version must equal. */
static size_t naive_bpe(const char *s, int32_t *out)
{
	char sym[512][8];
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++) {
		sym[i][0] = s[i];
		sym[i][1] = 0;
	}
	for (;;) {
		size_t best_rank = SIZE_MAX, best_pos = 0;
		for (size_t i = 0; i + 1 < n; i++)
			for (size_t r = 0; r < sizeof tiny_merges / sizeof *tiny_merges; r++)
				if (strcmp(sym[i], tiny_merges[r][0]) == 0 &&
				    strcmp(sym[i + 1], tiny_merges[r][1]) == 0 && r < best_rank) {
					best_rank = r;
					best_pos = i;
				}
		if (best_rank == SIZE_MAX)
			break;
		char merged[8];
		snprintf(merged, sizeof merged, "%s%s", sym[best_pos], sym[best_pos + 1]);
		memcpy(sym[best_pos], merged, sizeof merged);
		memmove(sym[best_pos + 1], sym[best_pos + 2], (n - best_pos - 2) * sizeof sym[0]);
		n--;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = tiny_id(sym[i], strlen(sym[i]));
	return n;
}

static void test_bpe_vs_naive(void)
{
	rl_tokenizer *t;
	const char *j = tiny_json(NULL);
	REQUIRE(rl_tokenizer_load_mem(j, strlen(j), NULL, 0, "tiny", &t) == RL_OK);
	srand(7);
	int bad = 0;
	for (int it = 0; it < 3000; it++) {
		char s[400];
		size_t n = (size_t)(rand() % (it < 2000 ? 12 : 390)) + 1;
		for (size_t i = 0; i < n; i++)
			s[i] = (char)("aabbccdd"[rand() % (it % 3 ? 8 : 4)]);
		s[n] = 0;
		int32_t want[512];
		size_t wn = naive_bpe(s, want);
		rl_ids got = {0};
		REQUIRE(rl_tok_encode(t, s, n, 0, &got) == RL_OK);
		if (got.n != wn || memcmp(got.v, want, wn * sizeof *want) != 0) {
			if (bad++ < 3)
				fprintf(stderr, "BPE differs from the naive loop on '%s'\n", s);
		}
		char *text;
		size_t tl;
		REQUIRE(rl_tok_decode(t, got.v, got.n, 0, &text, &tl) == RL_OK);
		/* no decoder: tokens joined by spaces */
		size_t letters = 0;
		for (size_t i = 0; i < tl; i++)
			letters += text[i] != ' ';
		CHECK(letters == n);
		free(text);
		rl_ids_free(&got);
	}
	CHECKF(bad == 0, "%d of 3000 strings differ from the naive BPE", bad);
	/* special tokens in the text, and RL_TOK_NO_SPECIAL_SPLIT */
	rl_ids ids = {0};
	CHECK(rl_tok_encode(t, "ab<s>cd", 7, 0, &ids) == RL_OK);
	CHECK(ids.n == 3 && ids.v[0] == 4 && ids.v[1] == 13 && ids.v[2] == 7);
	ids.n = 0;
	CHECK(rl_tok_encode(t, "<s>", 3, RL_TOK_NO_SPECIAL_SPLIT, &ids) == RL_OK);
	CHECK(ids.n == 0); /* '<', 's', '>' are not in the vocabulary and there is no unk */
	ids.n = 0;
	CHECK(rl_tok_encode(t, "", 0, 0, &ids) == RL_OK && ids.n == 0);
	CHECK(rl_tok_encode(t, "a\xff", 2, 0, &ids) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "not valid UTF-8") != NULL);
	CHECK(rl_tok_encode(t, "ab", 2, RL_TOK_ADD_SPECIAL, &ids) == RL_OK && ids.n == 1);
	rl_ids_free(&ids);
	/* decode skips specials on request, ids out of range are skipped */
	int32_t in[] = {13, 4, 14, 99999, -1};
	char *text;
	size_t tl;
	REQUIRE(rl_tok_decode(t, in, 5, 1, &text, &tl) == RL_OK);
	CHECK_STR(text, "ab");
	free(text);
	REQUIRE(rl_tok_decode(t, in, 5, 0, &text, &tl) == RL_OK);
	CHECK_STR(text, "<s> ab </s>");
	free(text);
	CHECK(rl_tok_is_special(t, 13) && !rl_tok_is_special(t, 4));
	CHECK_EQ_INT(rl_tok_id(t, "abcd", 4), 12);
	CHECK_EQ_INT(rl_tok_id(t, "zz", 2), -1);
	size_t l;
	CHECK(rl_tok_str(t, 6, &l) && l == 3 && memcmp(rl_tok_str(t, 6, &l), "abc", 3) == 0);
	CHECK(rl_tok_str(t, 15, &l) == NULL);
	CHECK_EQ_INT(rl_tok_n_vocab(t), 15);
	rl_tokenizer_free(t);
}

/* Encoding from several threads at once gives the same ids (the word cache is
 * the only shared mutable state). */
struct thr {
	rl_tokenizer *t;
	int ok;
};

static void *thr_main(void *arg)
{
	struct thr *a = arg;
	a->ok = 1;
	for (int it = 0; it < 400; it++) {
		char s[64];
		size_t n = (size_t)(it % 50) + 1;
		for (size_t i = 0; i < n; i++)
			s[i] = (char)('a' + (int)((i * 7 + (size_t)it) % 4));
		int32_t want[512];
		size_t wn = naive_bpe((s[n] = 0, s), want);
		rl_ids got = {0};
		if (rl_tok_encode(a->t, s, n, 0, &got) || got.n != wn ||
		    memcmp(got.v, want, wn * sizeof *want))
			a->ok = 0;
		rl_ids_free(&got);
	}
	return NULL;
}

static void test_threads(void)
{
	rl_tokenizer *t;
	const char *j = tiny_json(NULL);
	REQUIRE(rl_tokenizer_load_mem(j, strlen(j), NULL, 0, "tiny", &t) == RL_OK);
	pthread_t th[4];
	struct thr a[4];
	for (int i = 0; i < 4; i++) {
		a[i].t = t;
		REQUIRE(pthread_create(&th[i], NULL, thr_main, &a[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(a[i].ok);
	}
	rl_tokenizer_free(t);
}

static void expect_refusal(const char *json, const char *needle)
{
	rl_tokenizer *t = NULL;
	int rc = rl_tokenizer_load_mem(json, strlen(json), NULL, 0, "x/tokenizer.json", &t);
	CHECKF(rc == RL_EDATA && t == NULL && strstr(rl_errmsg(), needle) &&
		       strstr(rl_errmsg(), "x/tokenizer.json"),
	       "refusal '%s': rc %d, message '%s'", needle, rc, rl_errmsg());
	rl_tokenizer_free(t);
}

static void test_refusals(void)
{
	expect_refusal("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}",
		       "unsupported model type 'WordPiece'");
	expect_refusal("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}",
		       "unsupported model type 'Unigram'");
	expect_refusal("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
		       "empty merges list");
	expect_refusal("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "no merges list");
	expect_refusal("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": 7}}",
		       "expected a list");
	expect_refusal("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, "
		       "\"merges\": [\"a b\"]}}",
		       "merge 1: 'ab' is not in the vocabulary");
	expect_refusal("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
		       "\"merges\": [\"a x\"]}}",
		       "merge 1: token 'x' is not in the vocabulary");
	expect_refusal("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"aa\": 1}, "
		       "\"merges\": [\"a a a\"]}}",
		       "is not 'a b'");
	expect_refusal("{\"model\": {\"type\": \"BPE\", \"dropout\": 0.1, \"vocab\": {\"a\": 0, "
		       "\"aa\": 1}, \"merges\": [\"a a\"]}}",
		       "dropout is not supported");
	expect_refusal("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}",
		       "id out of range");
	expect_refusal("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0.5}, \"merges\": []}}",
		       "expected an integer id");
	/* fuzz_tokenizer: a sparse id sized the id table by itself */
	expect_refusal("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 555555517}, "
		       "\"merges\": [\"a b\"]}}",
		       "vocab id 555555517 among only 2 entries");
	expect_refusal("{\"model\": {\"type\": \"BPE\",\n\"vocab\": {\"a\": 0, \"aa\": 1},\n"
		       "\"merges\": [\"a a\"]}, \"normalizer\": {\"type\": \"NFC\",}}",
		       "malformed");
	expect_refusal("{\"model\": {\"type\": \"BPE\",\n\"vocab\": {\"a\" 0}}}",
		       "malformed JSON near line 2");
	const char *base = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"aa\": 1}, "
			   "\"merges\": [[\"a\", \"a\"]]}, ";
	char buf[512];
	snprintf(buf, sizeof buf, "%s\"normalizer\": {\"type\": \"BertNormalizer\"}}", base);
	expect_refusal(buf, "unsupported normalizer 'BertNormalizer'");
	snprintf(buf, sizeof buf, "%s\"normalizer\": {\"type\": \"Precompiled\"}}", base);
	expect_refusal(buf, "unsupported normalizer 'Precompiled'");
	snprintf(buf, sizeof buf, "%s\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}", base);
	expect_refusal(buf, "unsupported pre-tokenizer 'BertPreTokenizer'");
	snprintf(buf, sizeof buf, "%s\"decoder\": {\"type\": \"CTC\"}}", base);
	expect_refusal(buf, "unsupported decoder 'CTC'");
	snprintf(buf, sizeof buf,
		 "%s\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"}, "
		 "\"behavior\": \"Isolated\", \"invert\": false}}",
		 base);
	expect_refusal(buf, "does not compile");
	snprintf(buf, sizeof buf, "%s\"added_tokens\": 3}", base);
	expect_refusal(buf, "added_tokens is not a list");
	expect_refusal("[1, 2]", "expected an object");
	expect_refusal("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\xff\": 0}}}",
		       "not valid UTF-8");
	/* the merges in pair form, and a WordLevel without unk refusing an unknown word */
	const char *wl =
		"{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"hi\": 0, \"there\": 1}, "
		"\"unk_token\": \"<unk>\"}, \"pre_tokenizer\": {\"type\": "
		"\"WhitespaceSplit\"}}";
	rl_tokenizer *t;
	REQUIRE(rl_tokenizer_load_mem(wl, strlen(wl), NULL, 0, "wl", &t) == RL_OK);
	rl_ids ids = {0};
	CHECK(rl_tok_encode(t, "hi  there", 9, 0, &ids) == RL_OK && ids.n == 2 && ids.v[1] == 1);
	CHECK(rl_tok_encode(t, "hi you", 6, 0, &ids) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "'you' is not in the vocabulary and there is no unk token"));
	CHECK(rl_tok_encode(t, "hi", 2, RL_TOK_ADD_SPECIAL, &ids) == RL_OK); /* no processor */
	rl_ids_free(&ids);
	rl_tokenizer_free(t);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	REQUIRE(f != NULL);
	fputs(text, f);
	fclose(f);
}

static void test_model_dir(void)
{
	char dir[] = "/tmp/rl-tok-test.XXXXXX";
	REQUIRE(mkdtemp(dir) != NULL);
	rl_tokenizer *t;
	CHECK(rl_tokenizer_load(dir, &t) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "no tokenizer.json") != NULL);
	write_file(dir, "tokenizer.json", tiny_json(NULL));
	REQUIRE(rl_tokenizer_load(dir, &t) == RL_OK);
	CHECK(rl_tok_eos(t) == -1);
	const int32_t *e;
	CHECK(rl_tok_end_ids(t, &e) == 0);
	rl_tokenizer_free(t);
	write_file(dir, "tokenizer_config.json",
		   "{\"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": "
		   "\"</s>\", \"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}, "
		   "{\"name\": \"default\", \"template\": \"{{ '<|im_start|>' }}\"}]}");
	write_file(dir, "generation_config.json", "{\"eos_token_id\": [3, 14, 3]}");
	REQUIRE(rl_tokenizer_load(dir, &t) == RL_OK);
	CHECK_EQ_INT(rl_tok_bos(t), 13);
	CHECK_EQ_INT(rl_tok_eos(t), 14);
	size_t n = rl_tok_end_ids(t, &e);
	CHECK(n == 2 && e[0] == 3 && e[1] == 14);
	rl_tokenizer_free(t);
	write_file(dir, "generation_config.json", "{\"eos_token_id\": ");
	CHECK(rl_tokenizer_load(dir, &t) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "generation_config.json") != NULL);
	write_file(dir, "generation_config.json", "{}");
	write_file(dir, "tokenizer_config.json", "{\"eos_token\": ");
	CHECK(rl_tokenizer_load(dir, &t) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "tokenizer_config.json") != NULL);
	write_file(dir, "tokenizer_config.json", "{}");
	REQUIRE(rl_tokenizer_load(dir, &t) == RL_OK);
	rl_tokenizer_free(t);
	const char *names[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json"};
	char p[512];
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void test_templates(void)
{
	rl_template t;
	char *text;
	size_t len, plen;
	CHECK(rl_template_builtin("nosuch", &t) == RL_NO);
	/* llama-3 strips like Python's str.strip (\x1c..\x1f count); one-pass substitution */
	REQUIRE(rl_template_builtin("llama-3", &t) == RL_OK);
	static const char odd[] = "\x1c \u3000{system} {answer}\n\t";
	REQUIRE(rl_template_render(&t, NULL, odd, sizeof odd - 1, NULL, 0, &text, &len, &plen) ==
		RL_OK);
	CHECK_STR(text, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{system} "
			"{answer}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
	CHECK(plen == len);
	free(text);
	REQUIRE(rl_template_render(&t, " S ", "p", 1, " a\n", 3, &text, &len, &plen) == RL_OK);
	CHECK(strstr(text, "system<|end_header_id|>\n\nS<|eot_id|>") != NULL);
	CHECK(len > plen && strcmp(text + plen, "a<|eot_id|>") == 0);
	free(text);
	/* U+0000 is text: kept, counted, not whitespace to strip (as in Python) */
	REQUIRE(rl_template_render(&t, "", " \0p\0 ", 5, "\0", 1, &text, &len, &plen) == RL_OK);
	static const char nul_want[] =
		"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
		"\0p\0<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
		"\n\n\0<|eot_id|>";
	CHECK(len == sizeof nul_want - 1 && memcmp(text, nul_want, len) == 0);
	CHECK(plen == len - 1 - strlen("<|eot_id|>")); /* the answer: U+0000, end of turn */
	free(text);
	rl_template_free(&t);
	/* llama-2: default system, "" drops it */
	REQUIRE(rl_template_builtin("llama-2", &t) == RL_OK);
	REQUIRE(rl_template_render(&t, "", " p ", 3, NULL, 0, &text, &len, NULL) == RL_OK);
	CHECK_STR(text, "<s>[INST]  p  [/INST]");
	free(text);
	REQUIRE(rl_template_render(&t, NULL, "p", 1, "a", 1, &text, &len, &plen) == RL_OK);
	CHECK(strncmp(text, "<s>[INST] <<SYS>>\nYou are a helpful, respectful and honest", 58) ==
	      0);
	CHECK_STR(text + plen, " a </s>");
	free(text);
	rl_template_free(&t);
	REQUIRE(rl_template_raw(&t) == RL_OK);
	REQUIRE(rl_template_render(&t, NULL, " x ", 3, "y", 1, &text, &len, &plen) == RL_OK);
	CHECK_STR(text, " x y");
	CHECK(plen == 3);
	free(text);
	rl_template_free(&t);
	/* files */
	char path[] = "/tmp/rl-tmpl-test.XXXXXX";
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	CHECK(write(fd, "no placeholder", 14) == 14);
	close(fd);
	CHECK(rl_template_file(path, &t) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "no {prompt} placeholder") != NULL);
	FILE *f = fopen(path, "w");
	fputs("[{system}] {prompt} => {answer} <eot>", f);
	fclose(f);
	REQUIRE(rl_template_file(path, &t) == RL_OK);
	REQUIRE(rl_template_render(&t, NULL, "q", 1, "a", 1, &text, &len, &plen) == RL_OK);
	CHECK_STR(text, "[] q => a <eot>");
	CHECK(plen == 8);
	free(text);
	rl_template_free(&t);
	unlink(path);
	CHECK(rl_template_file(path, &t) == RL_EDATA);
}

static void test_items(void)
{
	rl_tokenizer *tok;
	const char *j = tiny_json(NULL);
	REQUIRE(rl_tokenizer_load_mem(j, strlen(j), NULL, 0, "tiny", &tok) == RL_OK);
	rl_chat c;
	rl_chat_opts o = {.template_spec = "nosuch-and-no-file"};
	CHECK(rl_chat_init(&c, tok, NULL, &o) == RL_USAGE); /* and tok was freed */
	REQUIRE(rl_tokenizer_load_mem(j, strlen(j), NULL, 0, "tiny", &tok) == RL_OK);
	o.template_spec = NULL;
	CHECK(rl_chat_init(&c, tok, NULL, &o) == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "has no chat template") && strstr(rl_errmsg(), "--raw"));
	REQUIRE(rl_tokenizer_load_mem(j, strlen(j), NULL, 0, "tiny", &tok) == RL_OK);
	o.raw = 1;
	REQUIRE(rl_chat_init(&c, tok, NULL, &o) == RL_OK);
	rl_ids ids = {0};
	cJSON *it = cJSON_Parse("{\"prompt\": \"<s>abcd\"}");
	CHECK(rl_chat_item(&c, it, "p.jsonl", 4, &ids) == RL_OK && ids.n == 3 && ids.v[0] == 13 &&
	      ids.v[1] == 4 && ids.v[2] == 7);
	cJSON_Delete(it);
	it = cJSON_Parse("{\"ids\": [1, 2, 14], \"prompt\": \"ignored\"}");
	CHECK(rl_chat_item(&c, it, "p.jsonl", 4, &ids) == RL_OK && ids.n == 6 && ids.v[5] == 14);
	cJSON_Delete(it);
	static const struct {
		const char *json, *msg;
	} bad[] = {
		{"{\"ids\": [1, 15]}",
		 "'p.jsonl' line 9: \"ids\" element 1 is not a token id in [0, 15)"},
		{"{\"ids\": [1.5]}", "element 0 is not a token id"},
		{"{\"ids\": 3}", "\"ids\" must be a list"},
		{"{\"prompt\": 3}", "'p.jsonl' line 9: \"prompt\" must be a string"},
		{"{\"text\": \"x\"}", "'p.jsonl' line 9: no \"prompt\" or \"ids\""},
		{"[1]", "expected an object"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		it = cJSON_Parse(bad[i].json);
		size_t before = ids.n;
		CHECKF(rl_chat_item(&c, it, "p.jsonl", 9, &ids) == RL_EDATA &&
			       strstr(rl_errmsg(), bad[i].msg) && ids.n == before,
		       "item %s: %s", bad[i].json, rl_errmsg());
		cJSON_Delete(it);
	}
	rl_ids_free(&ids);
	int32_t *v;
	int n;
	CHECK(rl_chat_encode_fn(&c, "abcd<s>", 7, &v, &n) == RL_OK && n == 3 && v[2] == 13);
	free(v);
	CHECK(rl_chat_encode_fn(&c, "", 0, &v, &n) == RL_OK && n == 0);
	free(v);
	/* U+0000 reaches the tokenizer as text */
	rl_ids direct = {0};
	REQUIRE(rl_tok_encode(tok, "ab\0cd", 5, 0, &direct) == RL_OK);
	CHECK(rl_chat_encode_fn(&c, "ab\0cd", 5, &v, &n) == RL_OK && (size_t)n == direct.n &&
	      memcmp(v, direct.v, direct.n * sizeof *v) == 0);
	free(v);
	rl_ids_free(&direct);
	size_t np;
	char *text;
	int prefix = 0;
	CHECK(rl_chat_encode_train(&c, "ab", 2, "cd", 2, &ids, &np, &text, NULL, &prefix) == RL_OK);
	CHECK(ids.n == 2 && ids.v[0] == 4 && ids.v[1] == 7 && np == 1 && prefix == 1);
	free(text);
	CHECK(rl_chat_encode_train(&c, "abc", 3, "d", 1, &ids, &np, NULL, NULL, NULL) == RL_OK);
	/* "abc" alone is [abc]; "abcd" is [ab, cd]: the merge crosses the boundary */
	CHECK(ids.n == 4 && np == 0);
	rl_ids_free(&ids);
	rl_chat_close(&c);
}

/* Every allocation of a load + encode + decode fails in turn: an error, never a
 * crash or a leak (LeakSanitizer checks the latter). */
static void test_alloc_failures(void)
{
	const char *j =
		tiny_json(", \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": "
			  "[{\"type\": \"NFC\"}, {\"type\": \"Replace\", \"pattern\": "
			  "{\"Regex\": \"x+\"}, \"content\": \"a\"}]}, \"pre_tokenizer\": "
			  "{\"type\": \"Metaspace\", \"replacement\": \"d\", \"split\": true}");
	int done = 0, failed = 0;
	for (int k = 1; k < 2000 && !done; k++) {
		rl_fail_alloc_at(k);
		rl_tokenizer *t = NULL;
		int rc = rl_tokenizer_load_mem(j, strlen(j), NULL, 0, "tiny", &t);
		rl_ids ids = {0};
		char *text = NULL;
		size_t tl;
		if (!rc)
			rc = rl_tok_encode(t, "abc xxd abcd", 12, 0, &ids);
		if (!rc)
			rc = rl_tok_decode(t, ids.v, ids.n, 0, &text, &tl);
		CHECKF(rc == RL_OK || rc == RL_ESYS, "allocation %d: rc %d (%s)", k, rc,
		       rl_errmsg());
		done = rc == RL_OK;
		failed += rc == RL_ESYS;
		free(text);
		rl_ids_free(&ids);
		rl_tokenizer_free(t);
	}
	rl_fail_alloc_at(0);
	CHECK(done);
	/* every allocation before the last one failed in its turn */
	CHECKF(failed > 10, "only %d allocations failed", failed);
}

int main(void)
{
	test_bpe_vs_naive();
	test_threads();
	test_refusals();
	test_model_dir();
	test_templates();
	test_items();
	test_alloc_failures();
	return check_done("test_tokenizer");
}
