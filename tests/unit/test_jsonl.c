/* test_jsonl.c — JSON lines with U+0000 in their strings (keep_nul): kept as raw
 * items at any depth, read back with their length, printed back as they came;
 * a key with it refused; text with it made into the right item. Expectations are
 * the JSON escapes' definitions (RFC 8259). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/jsonl.h"

static char path[256];

/* The first item of a one-line file, read with keep_nul as given. */
static int read_line(const char *line, int keep, cJSON **item)
{
	FILE *f = fopen(path, "wb");
	REQUIRE(f);
	fputs(line, f);
	fclose(f);
	rl_jsonl j;
	REQUIRE(rl_jsonl_open(&j, path) == RL_OK);
	j.keep_nul = keep;
	int rc = rl_jsonl_next(&j, item);
	rl_jsonl_close(&j);
	return rc;
}

static void check_text(const cJSON *item, const char *want, size_t want_len)
{
	char *s;
	size_t n;
	CHECK(rl_json_string(item, &s, &n) == RL_OK);
	CHECKF(n == want_len && memcmp(s, want, n) == 0 && s[n] == 0, "got %zu bytes '%s'", n, s);
	free(s);
}

/* rl_jsonl_write's numbers read back bit for bit, where cJSON's own %.15g
 * would not (0.7010862710024172 printed 0.701086271002417, one ulp off: an
 * rl-grad summary's cosine); integers and short decimals print as cJSON's;
 * the item written is left as it was. */
static void test_exact_numbers(void)
{
	const double v[] = {0.7010862710024172,
			    -0.7010862710024172,
			    0.1,
			    1.5,
			    3.0,
			    1e300,
			    4.9e-324,
			    0.30000000000000004,
			    2.0 / 3.0,
			    1234567890123.0};
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < sizeof v / sizeof *v; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
	cJSON_AddItemToArray(a, cJSON_CreateNumber(NAN));
	char *plain = cJSON_PrintUnformatted(a);
	REQUIRE(plain && strstr(plain, "0.701086271002417,")); /* cJSON alone drops the bit */
	free(plain);
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	REQUIRE(mem && rl_jsonl_write(mem, a) == RL_OK && fclose(mem) == 0);
	CHECKF(strncmp(buf, "[0.7010862710024172,-0.7010862710024172,0.1,1.5,3,1e+300,", 57) == 0,
	       "%s", buf);
	CHECKF(strstr(buf, ",1234567890123,null]\n") != NULL, "%s", buf);
	cJSON *back = cJSON_Parse(buf);
	REQUIRE(back && cJSON_GetArraySize(back) == (int)(sizeof v / sizeof *v) + 1);
	for (size_t i = 0; i < sizeof v / sizeof *v; i++)
		CHECKF(cJSON_GetArrayItem(back, (int)i)->valuedouble == v[i],
		       "%.17g read back as %.17g", v[i],
		       cJSON_GetArrayItem(back, (int)i)->valuedouble);
	CHECK(cJSON_IsNumber(cJSON_GetArrayItem(a, 0))); /* a itself untouched */
	free(buf);
	cJSON_Delete(back);
	cJSON_Delete(a);
}

int main(void)
{
	snprintf(path, sizeof path, "%s/rl-jsonl-%d.jsonl",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	/* compact, so that printing it back must give the same bytes */
	static const char line[] =
		"{\"a\":\"x\\u0000y\",\"b\":[\"\\u0000\",{\"c\":\"z\\u0000\"}],\"d\":\"plain\","
		"\"e\":1.5,\"f\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0000\","
		"\"g\":\"\\\\u0000\",\"h\":\"last\\u0000\"}";
	cJSON *it;
	REQUIRE(read_line(line, 1, &it) == RL_OK && it);
	const cJSON *a = cJSON_GetObjectItem(it, "a"), *b = cJSON_GetObjectItem(it, "b");
	CHECK(cJSON_IsRaw(a) && cJSON_IsRaw(cJSON_GetArrayItem(b, 0)));
	CHECK(cJSON_IsRaw(cJSON_GetObjectItem(cJSON_GetArrayItem(b, 1), "c")));
	check_text(a, "x\0y", 3);
	check_text(cJSON_GetArrayItem(b, 0), "\0", 1);
	check_text(cJSON_GetObjectItem(cJSON_GetArrayItem(b, 1), "c"), "z\0", 2);
	check_text(cJSON_GetObjectItem(it, "d"), "plain", 5);
	CHECK(cJSON_GetObjectItem(it, "e")->valuedouble == 1.5);
	check_text(cJSON_GetObjectItem(it, "f"), "\"\\/\b\f\n\r\t\xC3\xA9\xF0\x9F\x98\x80\0", 15);
	/* an escaped backslash before u0000 is no U+0000 */
	CHECK(cJSON_IsString(cJSON_GetObjectItem(it, "g")));
	check_text(cJSON_GetObjectItem(it, "g"), "\\u0000", 6);
	/* the last value is walked in its place */
	CHECK(cJSON_IsRaw(a->next->next->next->next->next->next));
	char *back = cJSON_PrintUnformatted(it);
	CHECK_STR(back, line);
	free(back);
	char *s;
	size_t n;
	CHECK(rl_json_string(cJSON_GetObjectItem(it, "e"), &s, &n) == RL_EDATA && !s);
	CHECK(rl_json_string(cJSON_GetObjectItem(it, "nosuch"), &s, &n) == RL_EDATA);
	cJSON_Delete(it);
	/* without keep_nul the line is refused: cJSON would cut the string (json.h) */
	CHECK(read_line(line, 0, &it) == RL_EDATA && !it);
	CHECKF(strstr(rl_errmsg(), "line 1: U+0000 (\\u0000) in a string at byte 7") != NULL, "%s",
	       rl_errmsg());
	/* a key given twice is refused either way */
	CHECK(read_line("{\"a\": \"x\\u0000\", \"a\": 1}\n", 1, &it) == RL_EDATA && !it);
	CHECKF(strstr(rl_errmsg(), "line 1: duplicate key \"a\"") != NULL, "%s", rl_errmsg());
	/* a key with it is refused, naming the line */
	CHECK(read_line("{\"ok\": 1, \"k\\u0000\": 2}\n", 1, &it) == RL_EDATA && !it);
	CHECKF(strstr(rl_errmsg(), "line 1: U+0000 (\\u0000) in a key") != NULL, "%s", rl_errmsg());
	/* text with U+0000 becomes a raw item printed with cJSON's escapes */
	cJSON *x = rl_json_string_item("a\0\"\\\n\x01\x7F\xC3\xA9", 9);
	REQUIRE(x && cJSON_IsRaw(x));
	CHECK_STR(x->valuestring, "\"a\\u0000\\\"\\\\\\n\\u0001\x7F\xC3\xA9\"");
	check_text(x, "a\0\"\\\n\x01\x7F\xC3\xA9", 9);
	cJSON_Delete(x);
	x = rl_json_string_item("plain\n", 5);
	REQUIRE(x && cJSON_IsString(x));
	CHECK_STR(x->valuestring, "plain");
	cJSON_Delete(x);
	test_exact_numbers();
	unlink(path);
	return check_done("test_jsonl");
}
