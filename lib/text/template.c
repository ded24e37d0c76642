/* template.c — one-turn chat templates (see template.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "text/template.h"

static const char LLAMA2_SYSTEM[] =
	"You are a helpful, respectful and honest assistant. Always answer as helpfully as "
	"possible, while being safe. Your answers should not include any harmful, unethical, "
	"racist, sexist, toxic, dangerous, or illegal content. Please ensure that your responses "
	"are socially unbiased and positive in nature.\n\nIf a question does not make any sense, "
	"or is not factually coherent, explain why instead of answering something not correct. "
	"If you don't know the answer to a question, please don't share false information.";

static const struct builtin {
	const char *name, *with_system, *without_system, *default_system, *answer;
	int strip;
} builtins[] = {
	{"llama-2", "<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{prompt} [/INST]",
	 "<s>[INST] {prompt} [/INST]", LLAMA2_SYSTEM, " {answer} </s>", 0},
	{"llama-3",
	 "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>"
	 "<|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>"
	 "<|start_header_id|>assistant<|end_header_id|>\n\n",
	 "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>"
	 "<|start_header_id|>assistant<|end_header_id|>\n\n",
	 NULL, "{answer}<|eot_id|>", 1},
	{"mistral", "<s>[INST] {system}\n\n{prompt} [/INST]", "<s>[INST] {prompt} [/INST]", NULL,
	 "{answer}</s>", 0},
	{"mistral-tekken", "<s>[INST]{system}\n\n{prompt}[/INST]", "<s>[INST]{prompt}[/INST]", NULL,
	 "{answer}</s>", 0},
	{"chatml",
	 "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n"
	 "<|im_start|>assistant\n",
	 "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
	 "You are a helpful assistant.", "{answer}<|im_end|>\n", 0},
	{"qwen2.5",
	 "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n"
	 "<|im_start|>assistant\n",
	 "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
	 "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
	 "{answer}<|im_end|>\n", 0},
	{"gemma",
	 "<bos><start_of_turn>user\n{system}\n\n{prompt}<end_of_turn>\n<start_of_turn>model\n",
	 "<bos><start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n", NULL,
	 "{answer}<end_of_turn>\n", 1},
};

const char *const rl_template_names[] = {"llama-2", "llama-3", "mistral", "mistral-tekken",
					 "chatml",  "qwen2.5", "gemma",	  NULL};

static int fill(rl_template *t, const char *name, const char *ws, const char *wo, const char *dflt,
		const char *answer, int strip)
{
	memset(t, 0, sizeof *t);
	t->strip = strip;
	if (!(t->name = rl_strdup(name)) || (ws && !(t->with_system = rl_strdup(ws))) ||
	    !(t->without_system = rl_strdup(wo)) ||
	    (dflt && !(t->default_system = rl_strdup(dflt))) ||
	    (answer && !(t->answer = rl_strdup(answer)))) {
		rl_template_free(t);
		return RL_ESYS;
	}
	return RL_OK;
}

int rl_template_builtin(const char *name, rl_template *t)
{
	for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
		const struct builtin *b = &builtins[i];
		if (strcmp(name, b->name) == 0)
			return fill(t, b->name, b->with_system, b->without_system,
				    b->default_system, b->answer, b->strip);
	}
	return RL_NO;
}

int rl_template_raw(rl_template *t)
{
	return fill(t, "raw", NULL, "{prompt}", NULL, "{answer}", 0);
}

int rl_template_text(const char *path, char *buf, size_t len, rl_template *t)
{
	if (strlen(buf) != len || !rl_utf8_valid(buf, len))
		return rl_error(RL_EDATA, "'%s': a template file must be UTF-8 text", path);
	if (!strstr(buf, "{prompt}"))
		return rl_error(RL_EDATA, "'%s': template has no {prompt} placeholder", path);
	char *ans = strstr(buf, "{answer}");
	const char *answer = ans ? ans : "{answer}";
	if (ans)
		*ans = 0; /* the generation prompt ends where the answer starts */
	/* the file serves with and without a system text ({system} -> "" without) */
	int rc = fill(t, path, buf, buf, NULL, answer == ans ? NULL : "{answer}", 0);
	if (ans) {
		*ans = '{';
		if (!rc && !(t->answer = rl_strdup(ans)))
			rc = RL_ESYS;
	}
	return rc;
}

int rl_template_file(const char *path, rl_template *t)
{
	char *buf;
	size_t len;
	int rc = rl_read_input(path, &buf, &len); /* a user's file: may be a pipe */
	if (rc)
		return rc;
	rc = rl_template_text(path, buf, len, t);
	free(buf);
	return rc;
}

/* Python's str.isspace() for the code points that matter (Unicode White_Space and
 * the C0 separators 0x1C-0x1F, which Python counts as space). */
static size_t space_len(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	if (n >= 1 && ((u[0] >= 0x09 && u[0] <= 0x0D) || (u[0] >= 0x1C && u[0] <= 0x20)))
		return 1;
	if (n >= 2 && u[0] == 0xC2 && (u[1] == 0x85 || u[1] == 0xA0))
		return 2;
	if (n >= 3 && u[0] == 0xE1 && u[1] == 0x9A && u[2] == 0x80) /* U+1680 */
		return 3;
	if (n >= 3 && u[0] == 0xE2 && u[1] == 0x80 &&
	    ((u[2] >= 0x80 && u[2] <= 0x8A) || u[2] == 0xA8 || u[2] == 0xA9 || u[2] == 0xAF))
		return 3;
	if (n >= 3 && u[0] == 0xE2 && u[1] == 0x81 && u[2] == 0x9F) /* U+205F */
		return 3;
	if (n >= 3 && u[0] == 0xE3 && u[1] == 0x80 && u[2] == 0x80) /* U+3000 */
		return 3;
	return 0;
}

static void strip_span(const char *s, size_t *a, size_t *b)
{
	size_t k;
	while (*a < *b && (k = space_len(s + *a, *b - *a)))
		*a += k;
	while (*b > *a) {
		size_t st = *b - 1;
		while (st > *a && ((unsigned char)s[st] & 0xC0) == 0x80)
			st--;
		if (space_len(s + st, *b - st) != *b - st)
			break;
		*b = st;
	}
}

typedef struct sbuf {
	char *p;
	size_t n, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->cap - b->n < n + 1) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->n < n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return rl_error(RL_ESYS, "out of memory");
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
	return RL_OK;
}

static int sb_value(sbuf *b, const char *v, size_t n, int strip)
{
	size_t a = 0, e = n;
	if (strip)
		strip_span(v, &a, &e);
	return sb_add(b, v + a, e - a);
}

/* A value substituted for a {key}: its bytes and length (U+0000 allowed). */
typedef struct tvalue {
	const char *p;
	size_t n;
} tvalue;

/* Substitutes {system}, {prompt}, {answer} in fmt (one pass). */
static int expand(sbuf *b, const char *fmt, const tvalue vals[3], int strip)
{
	static const char *const keys[] = {"{system}", "{prompt}", "{answer}"};
	while (*fmt) {
		const char *next = NULL;
		int which = -1;
		for (int k = 0; k < 3; k++) {
			const char *f = strstr(fmt, keys[k]);
			if (f && (!next || f < next)) {
				next = f;
				which = k;
			}
		}
		if (!next)
			return sb_add(b, fmt, strlen(fmt));
		int rc = sb_add(b, fmt, (size_t)(next - fmt));
		if (!rc)
			rc = sb_value(b, vals[which].p, vals[which].n, strip);
		if (rc)
			return rc;
		fmt = next + strlen(keys[which]);
	}
	return RL_OK;
}

int rl_template_render(const rl_template *t, const char *system, const char *prompt,
		       size_t prompt_len, const char *answer, size_t answer_len, char **text,
		       size_t *len, size_t *gen_len)
{
	*text = NULL;
	*len = 0;
	if (!system)
		system = t->default_system;
	const char *fmt = system && *system && t->with_system ? t->with_system : t->without_system;
	tvalue vals[3] = {{system ? system : "", system ? strlen(system) : 0},
			  {prompt ? prompt : "", prompt ? prompt_len : 0},
			  {answer ? answer : "", answer ? answer_len : 0}};
	sbuf b = {0};
	int rc = expand(&b, fmt, vals, t->strip);
	if (!rc && gen_len)
		*gen_len = b.n;
	if (!rc && answer)
		rc = expand(&b, t->answer ? t->answer : "{answer}", vals, t->strip);
	if (!rc && !b.p)
		rc = sb_add(&b, "", 0);
	if (rc) {
		free(b.p);
		return rc;
	}
	*text = b.p;
	*len = b.n;
	return RL_OK;
}

void rl_template_free(rl_template *t)
{
	free(t->name);
	free(t->with_system);
	free(t->without_system);
	free(t->default_system);
	free(t->answer);
	memset(t, 0, sizeof *t);
}
