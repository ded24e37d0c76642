/* test_chat.c — the chat pipeline's units: where a model's template and special
 * tokens come from (chat_source.h, transformers' rules), the variables a render
 * sees (messages normalised as transformers does, keywords, tools=None,
 * raise_exception, strftime_now and RL_STRFTIME_NOW), the training split, and
 * for every real family of tests/fixtures/chat/families.json (gen_chat.py:
 * transformers' rendering, the publishers' end-of-turn tokens) the template's
 * tail (what rl-eval keeps when it caps a prompt: Llama 3 and Gemma trim the
 * prompt, Qwen3 rewrites answers) and the end ids; every allocation failing.
 * (Renderings and ids of whole cases through rl-tok: t1003-chat-templates.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "real_tokenizers.h"
#include "text/chat.h"
#include "text/chat_source.h"

static char tmp[] = "/tmp/rl-chat-test.XXXXXX";

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[4300];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	REQUIRE(f != NULL);
	fputs(text, f);
	REQUIRE(fclose(f) == 0);
}

static void remove_file(const char *dir, const char *name)
{
	char p[4300];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	unlink(p);
}

static char *shell(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	REQUIRE(p != NULL);
	static char out[256];
	size_t n = fread(out, 1, sizeof out - 1, p);
	out[n] = 0;
	CHECKF(pclose(p) == 0, "%s", cmd);
	return out;
}

/* dir = tmp/name with the WordLevel fixture tokenizer and config text cfg. */
static const char *wordlevel_dir(const char *name, const char *cfg)
{
	static char dir[4200];
	snprintf(dir, sizeof dir, "%s/%s", tmp, name);
	mkdir(dir, 0755);
	char cmd[13000];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s/tokenizer.json'",
		 check_fixture("tokenizer/wordlevel/tokenizer.json"), dir);
	shell(cmd);
	write_file(dir, "tokenizer_config.json", cfg);
	return dir;
}

/* The text t renders for prompt (with opts o), or NULL when it fails. */
static char *render_prompt(const char *dir, const rl_chat_opts *o, const char *prompt)
{
	rl_chat c;
	if (rl_chat_open(&c, dir, o) != RL_OK)
		return NULL;
	char *text = NULL;
	size_t len;
	if (rl_chat_text(&c, prompt, strlen(prompt), &text, &len) != RL_OK)
		text = NULL;
	rl_chat_close(&c);
	return text;
}

static void check_render(const char *dir, const rl_chat_opts *o, const char *prompt,
			 const char *want)
{
	char *got = render_prompt(dir, o, prompt);
	CHECKF(got && strcmp(got, want) == 0, "'%s' != '%s' (%s)", got ? got : "(failed)", want,
	       rl_errmsg());
	free(got);
}

static void test_source(void)
{
	static const char *const tokens =
		"{{ bos_token }}|{{ eos_token }}|{{ pad_token is defined }}|{{ boi_token }}|{{ "
		"add_bos_token is defined }}|{{ additional_special_tokens is defined }}|{{ "
		"messages[-1].content }}";
	char cfg[2048];
	/* the map: strings and AddedToken objects; null, lists and flags left out */
	snprintf(cfg, sizeof cfg,
		 "{\"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<bos>\", \"lstrip\": "
		 "false}, \"eos_token\": \"<eos>\", \"pad_token\": null, \"boi_token\": \"<sep>\", "
		 "\"add_bos_token\": true, \"additional_special_tokens\": [\"<pad>\"], "
		 "\"chat_template\": \"%s\"}",
		 tokens);
	const char *dir = wordlevel_dir("src", cfg);
	rl_chat_source s;
	REQUIRE(rl_chat_source_read(dir, &s) == RL_OK);
	char *map = cJSON_PrintUnformatted(s.special);
	CHECK_STR(map, "{\"bos_token\":\"<bos>\",\"eos_token\":\"<eos>\",\"boi_token\":\"<sep>\"}");
	free(map);
	CHECK_STR(s.text, tokens);
	CHECK_STR(s.of, "tokenizer_config.json");
	CHECK(strstr(s.path, "/src/tokenizer_config.json") != NULL);
	rl_chat_source_free(&s);
	rl_chat_opts o = {0};
	check_render(dir, &o, "p", "<bos>|<eos>|False|<sep>|False|False|p");
	/* chat_template.jinja beside the config wins over it, as in transformers */
	write_file(dir, "chat_template.jinja", "J {{ bos_token }} {{ messages[0].content }}\n");
	REQUIRE(rl_chat_source_read(dir, &s) == RL_OK);
	CHECK_STR(s.of, "chat_template.jinja");
	rl_chat_source_free(&s);
	check_render(dir, &o, "p", "J <bos> p"); /* the final newline dropped, as jinja2 */
	rl_chat c;
	REQUIRE(rl_chat_open(&c, dir, &o) == RL_OK);
	CHECK(strstr(c.info.how, "the model's own, from '") &&
	      strstr(c.info.how, "/src/chat_template.jinja'"));
	CHECK(!*c.info.note && !*c.info.warning);
	rl_chat_close(&c);
	write_file(dir, "chat_template.jinja", "bad \xff byte {{ x }}");
	CHECK(rl_chat_source_read(dir, &s) == RL_EDATA &&
	      strstr(rl_errmsg(), "chat_template.jinja': not UTF-8 text"));
	remove_file(dir, "chat_template.jinja");
	/* a list: the one named default; none named so is refused */
	write_file(dir, "tokenizer_config.json",
		   "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": "
		   "\"default\", \"template\": \"D{{ messages[0].content }}\"}]}");
	check_render(dir, &o, "p", "Dp");
	write_file(dir, "tokenizer_config.json",
		   "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}]}");
	CHECK(rl_chat_source_read(dir, &s) == RL_EDATA &&
	      strstr(rl_errmsg(), "none is named \"default\""));
	write_file(dir, "tokenizer_config.json", "{\"chat_template\": 3}");
	CHECK(rl_chat_source_read(dir, &s) == RL_EDATA &&
	      strstr(rl_errmsg(), "chat_template must be a string or a list"));
	write_file(dir, "tokenizer_config.json", "{\"bos_token\": 3}");
	CHECK(rl_chat_source_read(dir, &s) == RL_EDATA &&
	      strstr(rl_errmsg(), "bos_token must be a string or {\"content\": ...}"));
	write_file(dir, "tokenizer_config.json", "{\"chat_template\": ");
	CHECK(rl_chat_source_read(dir, &s) == RL_EDATA && strstr(rl_errmsg(), "malformed JSON"));
	/* a legacy special_tokens_map.json overrides the config unless the config has
	 * added_tokens_decoder */
	write_file(dir, "special_tokens_map.json",
		   "{\"eos_token\": {\"content\": \"<pad>\"}, \"additional_special_tokens\": []}");
	write_file(dir, "tokenizer_config.json", "{\"eos_token\": \"<eos>\"}");
	REQUIRE(rl_chat_source_read(dir, &s) == RL_OK);
	CHECK(s.text == NULL && s.path == NULL);
	map = cJSON_PrintUnformatted(s.special);
	CHECK_STR(map, "{\"eos_token\":\"<pad>\"}");
	free(map);
	rl_chat_source_free(&s);
	write_file(dir, "tokenizer_config.json",
		   "{\"eos_token\": \"<eos>\", \"added_tokens_decoder\": {}}");
	REQUIRE(rl_chat_source_read(dir, &s) == RL_OK);
	map = cJSON_PrintUnformatted(s.special);
	CHECK_STR(map, "{\"eos_token\":\"<eos>\"}");
	free(map);
	rl_chat_source_free(&s);
	remove_file(dir, "special_tokens_map.json");
	/* no template at all: the pipeline names the ways out */
	CHECK(rl_chat_open(&c, dir, &o) == RL_EDATA &&
	      strstr(rl_errmsg(), "has no chat template") &&
	      strstr(rl_errmsg(), "--template FILE|NAME or --raw"));
}

static void test_render(void)
{
	const char *dir = wordlevel_dir(
		"render",
		"{\"bos_token\": \"<bos>\", \"chat_template\": \"{{ messages | tojson }}|{{ "
		"add_generation_prompt }}|{{ tools }}|{{ documents }}|{{ "
		"enable_thinking }}|{{ x }}\"}");
	rl_chat c;
	rl_chat_opts o = {.system = "S"};
	check_render(
		dir, &o, "p",
		"[{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": "
		"\"p\"}]|True|None|None||");
	o.system = "";
	check_render(
		dir, &o, "p",
		"[{\"role\": \"system\", \"content\": \"\"}, {\"role\": \"user\", \"content\": "
		"\"p\"}]|True|None|None||");
	/* keywords: the options', then a conversation's over them */
	o = (rl_chat_opts){.kwargs = "[1]"};
	CHECK(rl_chat_open(&c, dir, &o) == RL_USAGE &&
	      strstr(rl_errmsg(), "template keywords '[1]': not a JSON object"));
	o.kwargs = "{\"enable_thinking\": false, \"x\": 1}";
	REQUIRE(rl_chat_open(&c, dir, &o) == RL_OK);
	cJSON *msgs =
		cJSON_Parse("[{\"role\": \"assistant\", \"content\": \"a\", \"tool_calls\": null, "
			    "\"reasoning\": \"r\"}, {\"role\": \"user\", \"thinking\": \"t\", "
			    "\"content\": \"c\", "
			    "\"reasoning_content\": null}]");
	cJSON *kw2 = cJSON_Parse("{\"x\": \"two\", \"add_generation_prompt\": true}");
	char *text;
	size_t len;
	REQUIRE(rl_chat_render(&c, msgs, 0, kw2, &text, &len) == RL_OK);
	/* nulls dropped, reasoning aliased: transformers' _normalize_chat_messages and
	 * _alias_reasoning_fields give exactly this */
	CHECK_STR(text,
		  "[{\"thinking\": \"r\", \"role\": \"assistant\", \"content\": \"a\", "
		  "\"reasoning\": \"r\", \"reasoning_content\": \"r\"}, {\"thinking\": \"t\", "
		  "\"role\": \"user\", \"content\": \"c\", \"reasoning_content\": \"t\"}]|False|"
		  "None|None|False|two");
	CHECK(len == strlen(text));
	free(text);
	cJSON_Delete(kw2);
	static const struct {
		const char *json, *msg;
	} bad[] = {
		{"[]", "an empty conversation"},
		{"{}", "\"messages\" must be a list"},
		{"[{\"role\": \"user\"}, 3]", "message 1 is not an object"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cJSON *m = cJSON_Parse(bad[i].json);
		CHECKF(rl_chat_render(&c, m, 1, NULL, &text, &len) == RL_EDATA && !text &&
			       strstr(rl_errmsg(), bad[i].msg),
		       "%s: %s", bad[i].json, rl_errmsg());
		cJSON_Delete(m);
	}
	cJSON *notobj = cJSON_Parse("[1]");
	CHECK(rl_chat_render(&c, msgs, 1, notobj, &text, &len) == RL_EDATA);
	cJSON_Delete(notobj);
	cJSON_Delete(msgs);
	rl_chat_close(&c);
	/* U+0000 is text: the template sees the whole string (a raw item, jinja.h) */
	dir = wordlevel_dir("nul", "{\"chat_template\": \"{{ messages[0].content | length }} {{ "
				   "messages[0].content | tojson }} {{ messages[0].content }}\"}");
	o = (rl_chat_opts){0};
	REQUIRE(rl_chat_open(&c, dir, &o) == RL_OK);
	REQUIRE(rl_chat_text(&c, "a\0b", 3, &text, &len) == RL_OK);
	static const char nul_want[] = "3 \"a\\u0000b\" a\0b";
	CHECK(len == sizeof nul_want - 1 && memcmp(text, nul_want, len) == 0);
	free(text);
	rl_chat_close(&c);
	/* raise_exception's message is the error */
	dir = wordlevel_dir("raise", "{\"chat_template\": \"{{ raise_exception('No ' + "
				     "messages[0].role + ' turns, please') }}\"}");
	o = (rl_chat_opts){0};
	REQUIRE(rl_chat_open(&c, dir, &o) == RL_OK);
	CHECK(rl_chat_text(&c, "p", 1, &text, &len) == RL_EDATA && text == NULL);
	CHECK_STR(rl_errmsg(), "No user turns, please");
	rl_chat_close(&c);
	/* a construct outside the subset fails at open, naming it and its line */
	dir = wordlevel_dir("subset", "{\"chat_template\": \"x\\n{% include 'other' %}\"}");
	CHECK(rl_chat_open(&c, dir, &o) == RL_EDATA &&
	      strstr(rl_errmsg(), "tokenizer_config.json chat_template' line 2") &&
	      strstr(rl_errmsg(), "include"));
	/* a built-in or a {prompt} file when asked, with a warning or a note */
	o.template_spec = "chatml";
	REQUIRE(rl_chat_open(&c, wordlevel_dir("render", "{\"chat_template\": \"x\"}"), &o) ==
		RL_OK);
	CHECK(strstr(c.info.warning, "built-in copy") && strstr(c.info.how, "built-in chatml"));
	rl_chat_close(&c);
}

static void test_clock(void)
{
	const char *dir = wordlevel_dir(
		"clock", "{\"chat_template\": \"{{ strftime_now('%d %b %Y %A %H:%M:%S') }}\"}");
	rl_chat_opts o = {0};
	/* unpinned: the local clock, as transformers' datetime.now() (the minute
	 * read before or after the render) */
	char before[64], after[64];
	time_t now = time(NULL);
	struct tm tm;
	strftime(before, sizeof before, "%d %b %Y %A %H:%M", localtime_r(&now, &tm));
	char *got = render_prompt(dir, &o, "p");
	now = time(NULL);
	strftime(after, sizeof after, "%d %b %Y %A %H:%M", localtime_r(&now, &tm));
	REQUIRE(got != NULL && strlen(got) > 3);
	got[strlen(got) - 3] = 0; /* the seconds */
	CHECKF(strcmp(got, before) == 0 || strcmp(got, after) == 0,
	       "strftime_now gave '%s', the clock '%s'..'%s'", got, before, after);
	free(got);
	setenv("RL_STRFTIME_NOW", "2024-02-29T23:59:58", 1);
	got = render_prompt(dir, &o, "p");
	CHECK_STR(got, "29 Feb 2024 Thursday 23:59:58");
	free(got);
	static const char *const bad[] = {"2024-02-29", "2024-13-01T00:00:00",
					  "2024-02-29T23:59:58Z", "x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setenv("RL_STRFTIME_NOW", bad[i], 1);
		rl_chat c;
		CHECKF(rl_chat_open(&c, dir, &o) == RL_USAGE &&
			       strstr(rl_errmsg(), "expected a local time YYYY-MM-DDTHH:MM:SS"),
		       "%s", bad[i]);
	}
	unsetenv("RL_STRFTIME_NOW");
}

static void test_train_and_tail(void)
{
	/* the fallback: a generation prompt that is not a prefix of the whole text */
	const char *dir = wordlevel_dir(
		"train",
		"{\"eos_token\": \"<eos>\", \"chat_template\": \"{% for m in messages %}{{ "
		"m.role }} {{ m.content }} {% if m.role == 'assistant' %}<eos> {% endif "
		"%}{% endfor %}{% if add_generation_prompt %}assistant think {% endif "
		"%}\"}");
	rl_chat c;
	rl_chat_opts o = {0};
	REQUIRE(rl_chat_open(&c, dir, &o) == RL_OK);
	rl_ids ids = {0};
	size_t np = 99;
	int prefix = 9;
	char *text;
	REQUIRE(rl_chat_encode_train(&c, "w1 w2", 5, "w3", 2, &ids, &np, &text, NULL, &prefix) ==
		RL_OK);
	CHECK_STR(text, "user w1 w2 assistant w3 <eos> ");
	CHECK(prefix == 0 && np == 4 && ids.n == 6); /* "user w1 w2 assistant" shared */
	free(text);
	rl_ids_free(&ids);
	cJSON *m = cJSON_Parse("[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": "
			       "\"assistant\", \"content\": \"b\"}, {\"role\": \"user\", "
			       "\"content\": \"c\"}]");
	CHECK(rl_chat_encode_train_messages(&c, m, NULL, &ids, &np, NULL, NULL, NULL) == RL_EDATA &&
	      strstr(rl_errmsg(), "ends with the assistant's answer"));
	cJSON_DeleteItemFromArray(m, 2);
	cJSON_DeleteItemFromArray(m, 0);
	CHECK(rl_chat_encode_train_messages(&c, m, NULL, &ids, &np, NULL, NULL, NULL) == RL_EDATA &&
	      strstr(rl_errmsg(), "needs a prompt before the answer"));
	cJSON_Delete(m);
	/* the end of turn: <eos>, the first special token after the answer */
	REQUIRE(rl_chat_end_ids(&c, &ids) == RL_OK);
	CHECK(ids.n == 1 && ids.v[0] == rl_tok_id(c.tok, "<eos>", 5));
	rl_ids_free(&ids);
	/* the tail: after the prompt, tokenized alone */
	REQUIRE(rl_chat_tail(&c, &ids) == RL_OK);
	rl_ids want = {0};
	REQUIRE(rl_tok_encode(c.tok, " assistant think ", 17, 0, &want) == RL_OK);
	CHECK(want.n == 2 && ids.n == 2 && memcmp(ids.v, want.v, 2 * sizeof *ids.v) == 0);
	rl_ids_free(&want);
	rl_ids_free(&ids);
	rl_chat_close(&c);
	/* a template that rewrites the prompt has no tail to find */
	dir = wordlevel_dir("rewrite", "{\"chat_template\": \"{{ messages[0].content[1:] }}\"}");
	REQUIRE(rl_chat_open(&c, dir, &o) == RL_OK);
	CHECK(rl_chat_tail(&c, &ids) == RL_EDATA && strstr(rl_errmsg(), "rewrites the prompt"));
	rl_ids_free(&ids);
	rl_chat_close(&c);
	/* --raw: no tail, no end of turn beyond the tokenizer's */
	o.raw = 1;
	REQUIRE(rl_chat_open(&c, dir, &o) == RL_OK);
	CHECK(rl_chat_tail(&c, &ids) == RL_OK && ids.n == 0);
	CHECK(rl_chat_end_ids(&c, &ids) == RL_OK && ids.n == 0);
	rl_ids_free(&ids);
	rl_chat_close(&c);
}

/* A model directory with the real tokenizer files of folder (real_tokenizers.h:
 * the committed xz copies, else shared/tokenizers); 0, said, when missing. */
static int real_files(const char *folder, const char *dir)
{
	char *json, *cfg;
	size_t len, clen;
	if (!read_real_tokenizer(folder, &json, &len, &cfg, &clen))
		return 0;
	mkdir(dir, 0755);
	write_file(dir, "tokenizer.json", json);
	write_file(dir, "tokenizer_config.json", cfg);
	free(json);
	free(cfg);
	return 1;
}

static int ids_equal(const rl_ids *got, const cJSON *want)
{
	if (!cJSON_IsArray(want) || (size_t)cJSON_GetArraySize(want) != got->n)
		return 0;
	size_t i = 0;
	const cJSON *x;
	cJSON_ArrayForEach(x, want)
	{
		if (x->valuedouble != got->v[i++])
			return 0;
	}
	return 1;
}

static void test_families(void)
{
	char *buf;
	size_t len;
	REQUIRE(rl_read_file(check_fixture("chat/families.json"), &buf, &len) == RL_OK);
	cJSON *root = cJSON_Parse(buf);
	free(buf);
	REQUIRE(root != NULL);
	setenv("RL_STRFTIME_NOW", cJSON_GetObjectItem(root, "now")->valuestring, 1);
	int n = 0;
	const cJSON *f;
	cJSON_ArrayForEach(f, cJSON_GetObjectItem(root, "families"))
	{
		const char *name = cJSON_GetObjectItem(f, "name")->valuestring,
			   *folder = cJSON_GetObjectItem(f, "tokenizer")->valuestring,
			   *how = cJSON_GetObjectItem(f, "how")->valuestring;
		const cJSON *tn = cJSON_GetObjectItem(f, "template");
		char dir[4300], tmpl[4300] = "";
		snprintf(dir, sizeof dir, "%s/fam-%s", tmp, name);
		if (strcmp(how, "gguf") == 0)
			continue; /* rl-import's: t1003 */
		if (!real_files(folder, dir))
			continue;
		if (cJSON_IsString(tn)) {
			char rel[300];
			snprintf(rel, sizeof rel, "jinja/templates/%s.jinja", tn->valuestring);
			snprintf(tmpl, sizeof tmpl, "%s", check_fixture(rel));
		}
		rl_chat_opts o = {0};
		if (strcmp(how, "beside") == 0) {
			REQUIRE(rl_read_file(tmpl, &buf, &len) == RL_OK);
			write_file(dir, "chat_template.jinja", buf);
			free(buf);
		} else if (strcmp(how, "config") == 0) {
			char cfgp[4400];
			snprintf(cfgp, sizeof cfgp, "%s/tokenizer_config.json", dir);
			REQUIRE(rl_read_file(cfgp, &buf, &len) == RL_OK);
			cJSON *cfg = cJSON_Parse(buf);
			free(buf);
			REQUIRE(rl_read_file(tmpl, &buf, &len) == RL_OK);
			/* put in, or replaced: not every tokenizer's config has one */
			cJSON_DeleteItemFromObject(cfg, "chat_template");
			cJSON_AddStringToObject(cfg, "chat_template", buf);
			free(buf);
			char *out = cJSON_Print(cfg);
			write_file(dir, "tokenizer_config.json", out);
			free(out);
			cJSON_Delete(cfg);
		} else if (strcmp(how, "file") == 0) {
			o.template_spec = tmpl;
		}
		rl_chat c;
		REQUIRE(rl_chat_open(&c, dir, &o) == RL_OK);
		rl_ids ids = {0};
		CHECKF(rl_chat_tail(&c, &ids) == RL_OK &&
			       ids_equal(&ids, cJSON_GetObjectItem(f, "tail")),
		       "%s: the template's tail (%zu ids)", name, ids.n);
		rl_ids_free(&ids);
		CHECKF(rl_chat_end_ids(&c, &ids) == RL_OK &&
			       ids_equal(&ids, cJSON_GetObjectItem(f, "end_ids")),
		       "%s: end ids (%zu: %d ...)", name, ids.n, ids.n ? ids.v[0] : -1);
		rl_ids_free(&ids);
		rl_chat_close(&c);
		n++;
	}
	unsetenv("RL_STRFTIME_NOW");
	printf("%d families: tails and end ids as transformers and the publishers say\n", n);
	cJSON_Delete(root);
}

/* Every allocation of an open + renders fails in turn: an error, never a crash
 * or a leak (LeakSanitizer checks the latter). */
static void test_alloc_failures(void)
{
	const char *dir = wordlevel_dir(
		"alloc", "{\"eos_token\": \"<eos>\", \"chat_template\": \"{% for m in messages "
			 "%}{{ m.role }} {{ m.content | trim }} <eos> {% endfor %}{% if "
			 "add_generation_prompt %}assistant {% endif %}\"}");
	int done = 0, failed = 0, k;
	for (k = 1; k < 5000 && !done; k++) {
		rl_fail_alloc_at(k);
		rl_chat c;
		rl_chat_opts o = {.system = "s"};
		int rc = rl_chat_open(&c, dir, &o);
		rl_ids ids = {0};
		size_t np;
		if (!rc)
			rc = rl_chat_encode_train(&c, "w1", 2, "w2", 2, &ids, &np, NULL, NULL,
						  NULL);
		if (!rc)
			rc = rl_chat_tail(&c, &ids);
		if (!rc)
			rc = rl_chat_end_ids(&c, &ids);
		CHECKF(rc == RL_OK || rc == RL_ESYS, "allocation %d: rc %d (%s)", k, rc,
		       rl_errmsg());
		done = rc == RL_OK;
		failed += rc == RL_ESYS;
		rl_ids_free(&ids);
		rl_chat_close(&c); /* a failed open left it empty */
	}
	rl_fail_alloc_at(0);
	/* every allocation before the last one failed in its turn */
	CHECKF(done && failed == k - 2, "%d of %d allocations failed", failed, k - 2);
}

int main(void)
{
	REQUIRE(mkdtemp(tmp) != NULL);
	test_source();
	test_render();
	test_clock();
	test_train_and_tail();
	test_families();
	test_alloc_failures();
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	shell(cmd);
	return check_done("test_chat");
}
