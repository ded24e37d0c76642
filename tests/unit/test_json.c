/* test_json.c — the JSON rules (json.h) on hand-made texts: NUL bytes and
 * \u0000 escapes in keys and values, invalid UTF-8 and lone surrogates, each
 * with its byte offset; escapes that only look like \u0000; keys given twice
 * at any depth (and not in 100,000 distinct ones); syntax errors with their
 * offsets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "core/json.h"

/* Parses len bytes (strlen when len is 0) and checks the outcome: want_msg
 * NULL for success, else the message rl_json_parse must give. */
static void expect(const char *text, size_t len, const char *want_msg)
{
	cJSON *v = NULL;
	if (!len)
		len = strlen(text);
	int rc = rl_json_parse(text, len, "'t.json'", &v);
	if (!want_msg) {
		CHECKF(rc == RL_OK && v, "%s: rc %d '%s'", text, rc, rl_errmsg());
	} else {
		CHECKF(rc == RL_EDATA && !v && strcmp(rl_errmsg(), want_msg) == 0,
		       "%s: rc %d '%s', wanted '%s'", text, rc, rl_errmsg(), want_msg);
	}
	cJSON_Delete(v);
}

static void nul(void)
{
	/* the case: a NUL in a config key dropped the setting */
	static const char raw[] = "{\"rms_norm_eps\0x\": 1e-5}";
	expect(raw, sizeof raw - 1, "'t.json': NUL byte at byte 14");
	static const char rawval[] = "{\"a\": \"b\0c\"}";
	expect(rawval, sizeof rawval - 1, "'t.json': NUL byte at byte 8");
	expect("{\"rms_norm_eps\\u0000x\": 1e-5}", 0,
	       "'t.json': U+0000 (\\u0000) in a key at byte 14");
	expect("{\"a\": [1, {\"b\": \"x\\u0000\"}]}", 0,
	       "'t.json': U+0000 (\\u0000) in a string at byte 18");
	/* look-alikes: an escaped backslash before u0000, u0000 outside a string's escape */
	expect("{\"a\\\\u0000\": \"\\\\u0000\"}", 0, NULL);
	expect("{\"a\\\"\\u0000\": 1}", 0, "'t.json': U+0000 (\\u0000) in a key at byte 5");
	expect("{\"u0000\": \"\\u0001\\u00e9\"}", 0, NULL);
	/* kept in values by a caller that keeps U+0000 with its length, never in keys */
	cJSON *v = NULL;
	const char *val = "{\"prompt\": \"a\\u0000b\", \"k\": [\"\\u0000\"]}";
	CHECK_EQ_INT(rl_json_parse_opts(val, strlen(val), "'t'", RL_JSON_NUL_VALUES, &v), RL_OK);
	cJSON_Delete(v);
	const char *key = "{\"prompt\": \"a\\u0000b\", \"k\\u0000\" : 1}";
	CHECK_EQ_INT(rl_json_parse_opts(key, strlen(key), "'t'", RL_JSON_NUL_VALUES, &v), RL_EDATA);
	CHECK_STR(rl_errmsg(), "'t': U+0000 (\\u0000) in a key at byte 25");
}

static void utf8(void)
{
	expect("{\"caf\xc3\xa9\": \"\xe2\x82\xac\"}", 0, NULL);
	expect("{\"a\": \"\xff\"}", 0, "'t.json': not valid UTF-8 at byte 7");
	expect("{\"\xc0\xaf\": 1}", 0, "'t.json': not valid UTF-8 at byte 2");	   /* overlong */
	expect("{\"\xed\xa0\x80\": 1}", 0, "'t.json': not valid UTF-8 at byte 2"); /* surrogate */
	/* surrogate escapes: a pair is one character, a lone half is refused */
	expect("{\"a\": \"\\ud83d\\ude00\"}", 0, NULL);
	expect("{\"a\": \"\\ud83d\"}", 0,
	       "'t.json': lone UTF-16 surrogate \\uD83D in a string at byte 7");
	expect("{\"a\": \"\\ud83dx\\ude00\"}", 0,
	       "'t.json': lone UTF-16 surrogate \\uD83D in a string at byte 7");
	expect("{\"a\": \"\\uDE00\"}", 0,
	       "'t.json': lone UTF-16 surrogate \\uDE00 in a string at byte 7");
}

static void dups(void)
{
	expect("{\"id\": 1, \"harmful\": true, \"harmful\": false}", 0,
	       "'t.json': duplicate key \"harmful\"");
	expect("{\"rope_scaling\": {\"factor\": 2, \"type\": \"linear\", \"factor\": 3}}", 0,
	       "'t.json': duplicate key \"factor\" in \"rope_scaling\"");
	expect("{\"l\": [{\"a\": 1}, {\"a\": 1, \"a\": 2}]}", 0,
	       "'t.json': duplicate key \"a\" in \"l\"");
	expect("[{\"a\": 1, \"b\": {\"a\": 1}}, {\"a\": 2}]", 0, NULL); /* equal keys, other maps */
	/* a weight_map of 100,000 tensors: distinct, then one given twice */
	size_t n = 100000, cap = n * 40 + 64;
	char *big = malloc(cap);
	REQUIRE(big);
	size_t k = (size_t)snprintf(big, cap, "{\"weight_map\": {");
	for (size_t i = 0; i < n; i++)
		k += (size_t)snprintf(big + k, cap - k, "%s\"model.t%zu.weight\": \"s\"",
				      i ? "," : "", i);
	snprintf(big + k, cap - k, "}}");
	expect(big, 0, NULL);
	snprintf(big + k, cap - k, ",\"model.t77777.weight\": \"s\"}}");
	expect(big, 0, "'t.json': duplicate key \"model.t77777.weight\" in \"weight_map\"");
	free(big);
}

static void syntax(void)
{
	expect("{\"a\": 1,}", 0, "'t.json': malformed JSON near byte 8");
	expect("{\"a\": 1} {}", 0, "'t.json': trailing characters after the JSON value at byte 9");
	expect(" {\"a\": 1}\r\n\t ", 0, NULL);
	/* rl_json_check: the text alone, or with the tree a caller parsed */
	const char *t = "{\"a\": 1, \"a\": 2}";
	CHECK_EQ_INT(rl_json_check(t, strlen(t), NULL, "'x'"), RL_OK);
	cJSON *v = cJSON_Parse(t);
	REQUIRE(v);
	CHECK_EQ_INT(rl_json_check(t, strlen(t), v, "judge 'j': answer for item 1"), RL_EDATA);
	CHECK_STR(rl_errmsg(), "judge 'j': answer for item 1: duplicate key \"a\"");
	cJSON_Delete(v);
}

int main(void)
{
	nul();
	utf8();
	dups();
	syntax();
	return check_done("test_json");
}
