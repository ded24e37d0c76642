/* test_prompts.c — JSON-lines prompt sets: ids, the text hook, -n, and every
 * error naming the file and line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "text/prompts.h"

static char path[256];

static void write_file(const char *text)
{
	FILE *f = fopen(path, "wb");
	REQUIRE(f);
	fputs(text, f);
	fclose(f);
}

static int read_with(const char *text, const rl_prompts_opts *o, rl_prompts *p)
{
	write_file(text);
	return rl_prompts_read(p, path, o);
}

static void fails(const char *text, const rl_prompts_opts *o, const char *msg)
{
	rl_prompts p;
	int rc = read_with(text, o, &p);
	CHECK_EQ_INT(rc, RL_EDATA);
	CHECKF(strstr(rl_errmsg(), msg) != NULL, "message '%s' lacks '%s'", rl_errmsg(), msg);
}

/* a fake tokenizer: one id per byte, "x" fails */
static int encode(void *ctx, const char *text, size_t len, int32_t **ids, int *n)
{
	(void)ctx;
	if (len == 1 && text[0] == 'x')
		return rl_error(RL_EDATA, "cannot encode 'x'");
	*ids = malloc(len ? len * sizeof **ids : 1);
	REQUIRE(*ids);
	for (size_t i = 0; i < len; i++)
		(*ids)[i] = (unsigned char)text[i] % 50;
	*n = (int)len;
	return RL_OK;
}

int main(void)
{
	snprintf(path, sizeof path, "%s/rl-prompts-%d.jsonl",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	rl_prompts_opts o = {0, 50, 8, NULL, NULL};
	rl_prompts p;
	REQUIRE(read_with("{\"ids\": [1, 2, 3]}\n\n{\"ids\": [4], \"response\": \"x\"}\n"
			  "{\"ids\":[5,6]}",
			  &o, &p) == RL_OK);
	CHECK_EQ_INT(p.n, 3);
	CHECK_EQ_INT(p.ntok, 6);
	CHECK_EQ_INT(p.max_len, 3);
	CHECK_EQ_INT(p.start[1], 3);
	CHECK_EQ_INT(p.start[3], 6);
	CHECK_EQ_INT(p.ids[3], 4);
	CHECK_EQ_INT(p.lineno[1], 3);
	CHECK_EQ_INT(rl_prompt_len(&p, 2), 2);
	rl_prompts_free(&p);

	o.max_prompts = 2;
	REQUIRE(read_with("{\"ids\": [1]}\n{\"ids\": [2]}\n{\"ids\": [3]}\nnot json\n", &o, &p) ==
		RL_OK);
	CHECK_EQ_INT(p.n, 2);
	rl_prompts_free(&p);
	o.max_prompts = 0;

	fails("", &o, "no prompts");
	fails("\n  \n", &o, "no prompts");
	fails("{\"ids\": [1]}\n{\"ids\": [2]\n", &o, "line 2: malformed JSON");
	fails("{\"ids\": [1]}\n{\"ids\": []}\n", &o, "line 2: empty prompt");
	fails("{\"ids\": [50]}\n", &o, "line 1: token id 50 out of range (vocab 50)");
	fails("{\"ids\": [-1]}\n", &o, "line 1: \"ids\" element 1 is not a token id");
	fails("{\"ids\": [1, 2.5]}\n", &o, "element 2 is not a token id");
	fails("{\"ids\": \"1 2\"}\n", &o, "\"ids\" must be an array");
	fails("[1, 2]\n", &o, "line 1: expected an object");
	fails("{\"text\": \"hi\"}\n", &o, "no \"ids\" or \"prompt\" key");
	fails("{\"ids\": [1,2,3,4,5,6,7,8,9]}\n", &o,
	      "line 1: 9 tokens exceed the model's maximum of 8 positions");
	fails("{\"prompt\": \"hello\"}\n", &o, "line 1: a text prompt needs a tokenizer");

	/* text prompts through the hook */
	o.encode = encode;
	REQUIRE(read_with("{\"prompt\": \"abc\"}\n{\"ids\": [7], \"prompt\": \"zz\"}\n", &o, &p) ==
		RL_OK);
	CHECK_EQ_INT(p.n, 2);
	CHECK_EQ_INT(p.ntok, 4);
	CHECK_EQ_INT(p.ids[0], 'a' % 50);
	CHECK_EQ_INT(p.ids[3], 7);
	rl_prompts_free(&p);
	fails("{\"prompt\": \"ok\"}\n{\"prompt\": \"x\"}\n", &o, "line 2: cannot encode 'x'");
	fails("{\"prompt\": 3}\n", &o, "\"prompt\" must be a string");

	/* in-memory sets */
	int32_t a[2] = {1, 2}, b[1] = {3};
	const int32_t *ids[2] = {a, b};
	int lens[2] = {2, 1};
	REQUIRE(rl_prompts_from_ids(&p, 2, ids, lens) == RL_OK);
	CHECK_EQ_INT(p.ntok, 3);
	CHECK_EQ_INT(p.ids[2], 3);
	rl_prompts_free(&p);
	unlink(path);
	return check_done("test_prompts");
}
