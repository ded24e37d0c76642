/* fuzz_jinja.c — libFuzzer target for lib/text/jinja.c: the input is a
 * template, parsed and rendered over a small conversation.
 *
 * Besides "no crash, no UB, no leak": a parse or render either succeeds or
 * records a message; a rendering is NUL-terminated at its length and within
 * the output limit; rendering the same template twice gives the same bytes
 * (no state leaks between renders). Limits are small so that loops, deep
 * recursion and string doubling end quickly (a 1 MiB output limit let
 * tojson(indent) over nested loops slow the run from 4,000 to 300 executions
 * a second; 64 KiB still reaches the limit's path).
 *
 * seeds: tests/fixtures/jinja/templates
 * dict: tests/fuzz/jinja.dict
 */
#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "text/jinja.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char VARS[] =
	"{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"messages\": ["
	"{\"role\": \"system\", \"content\": \"Be brief.\"},"
	"{\"role\": \"user\", \"content\": \"Gr\\u00fc\\u00dfe {{ x }} \\ud83c\\udf89\"},"
	"{\"role\": \"assistant\", \"content\": \"<think>a</think> ok \", \"tool_calls\": "
	"[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1.5}}}]},"
	"{\"role\": \"user\", \"content\": \"\"}],"
	"\"tools\": null, \"documents\": null, \"add_generation_prompt\": true, "
	"\"enable_thinking\": false}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static cJSON *vars;
	if (!vars && !(vars = cJSON_Parse(VARS)))
		__builtin_trap();
	rl_jinja *t;
	rl_error_clear();
	if (rl_jinja_parse((const char *)data, size, "fuzz", &t) != 0) {
		if (t || !rl_errmsg()[0])
			__builtin_trap();
		return 0;
	}
	struct tm now = {.tm_year = 125, .tm_mon = 2, .tm_mday = 14, .tm_hour = 9};
	rl_jinja_opts o = {.now = &now,
			   .max_depth = 100,
			   .max_iterations = 20000,
			   .max_output = 64 << 10,
			   .max_memory = 32 << 20};
	char *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	rl_error_clear();
	int ra = rl_jinja_render(t, vars, &o, &a, &na);
	if (ra == 0 && (!a || a[na] != '\0' || na > o.max_output))
		__builtin_trap();
	if (ra != 0 && (a || !rl_errmsg()[0]))
		__builtin_trap();
	int rb = rl_jinja_render(t, vars, &o, &b, &nb);
	if (ra != rb || (ra == 0 && (na != nb || memcmp(a, b, na) != 0)))
		__builtin_trap();
	free(a);
	free(b);
	rl_jinja_free(t);
	return 0;
}
