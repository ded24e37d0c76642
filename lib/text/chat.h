/* chat.h — a model's prompt pipeline: chat template + tokenizer.
 *
 * What every tool that reads prompts needs: load the tokenizer of a model
 * directory, pick its chat template (--template NAME|FILE, --raw, or detected from
 * tokenizer_config.json's chat_template), and turn a prompt into the ids the model
 * sees: the templated text tokenized with special tokens recognised inside it and
 * no BOS added (the template text carries it), as the reference implementation
 * does.
 *
 *     rl_chat c;
 *     rl_chat_opts o = {.template_spec = NULL, .raw = 0, .system = NULL};
 *     if ((rc = rl_chat_open(&c, model_dir, &o))) rl_die_err(rc);
 *     rl_ids ids = {0};
 *     rc = rl_chat_encode(&c, "How do I bake bread?", 20, &ids);
 *     ...
 *     rl_ids_free(&ids);
 *     rl_chat_close(&c);
 *
 * With lib/prompts.h: pass rl_chat_encode_fn as the encode hook and &c as its
 * context, and {"prompt": ...} lines become templated ids.
 */
#ifndef RL_CHAT_H
#define RL_CHAT_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "core/options.h"
#include "text/prompts.h"
#include "text/template.h"
#include "text/tokenizer.h"

typedef struct rl_chat_opts {
	const char *template_spec; /* built-in name or FILE; NULL: detect from the model */
	int raw;		   /* the prompt as it is, no template */
	const char *system;	   /* system text (NULL: the template's default) */
} rl_chat_opts;

/* The prompt options of every tool that templates prompts (core/options.h),
 * declared once: --template, --raw, --system into the rl_chat_opts c points to;
 * st and ss are the tool's short names for --template and --system (0: none). */
#define RL_OPT_TEMPLATE(st, p)                                                                     \
	RL_OPT_STRING(                                                                             \
		st, "template", "NAME|FILE", p,                                                    \
		"chat template: llama-2, llama-3, mistral, mistral-tekken, chatml, qwen2.5, "      \
		"gemma, or a file with {prompt} (default: detected from the model's "              \
		"chat_template)")
#define RL_OPTS_CHAT(st, ss, c)                                                                    \
	RL_OPT_TEMPLATE(st, &(c)->template_spec),                                                  \
		RL_OPT_FLAG(0, "raw", &(c)->raw, "no template: the prompt text as it is"),         \
		RL_OPT_STRING(ss, "system", "TEXT", &(c)->system,                                  \
			      "system prompt (default: the template's; \"\" for none)")
/* -p FILE of the tools that read prompt files (rl_chat_prompts_read). */
#define RL_OPT_PROMPTS(p)                                                                          \
	RL_OPT_STRING('p', "prompts", "FILE", p,                                                   \
		      "JSON lines {\"ids\": [...]} or {\"prompt\": \"...\"} (\"-\" = stdin); "     \
		      "prompts go through the chat template and tokenizer.json (see rl-tok(1))")

typedef struct rl_chat {
	rl_tokenizer *tok; /* owned */
	rl_template tmpl;
	char *system;  /* NULL: the template's default */
	char how[160]; /* how the template was chosen, for -v notes */
} rl_chat;

/* Loads dir's tokenizer and chooses the template. Without a template option and
 * without a recognisable chat_template: RL_EDATA naming --template and --raw. An
 * unknown NAME that is not a readable file: RL_USAGE. */
int rl_chat_open(rl_chat *c, const char *dir, const rl_chat_opts *o);
/* The same over a loaded tokenizer, which c takes over (freed by rl_chat_close,
 * also on failure). */
int rl_chat_init(rl_chat *c, rl_tokenizer *tok, const rl_chat_opts *o);
void rl_chat_close(rl_chat *c);

/* Templated text of a prompt of len bytes (generation prompt appended), malloc'd.
 * Prompts (and answers below) are byte strings with a length: U+0000 is text. */
int rl_chat_text(const rl_chat *c, const char *prompt, size_t len, char **text, size_t *text_len);
/* Appends the ids of the templated prompt to *ids. */
int rl_chat_encode(const rl_chat *c, const char *prompt, size_t len, rl_ids *ids);

/* Training variant: prompt + answer + end of turn. Appends the ids to *ids and
 * sets *n_prompt to how many of them belong to the prompt: the longest common
 * prefix of the ids of the prompt text alone and of the whole text (equal to the
 * prompt's own ids unless a merge crosses the boundary). text (may be NULL)
 * receives the whole text, malloc'd, and text_len (may be NULL) its length. */
int rl_chat_encode_train(const rl_chat *c, const char *prompt, size_t prompt_len,
			 const char *answer, size_t answer_len, rl_ids *ids, size_t *n_prompt,
			 char **text, size_t *text_len);

/* A JSON-lines prompt item: {"ids": [...]} (used as they are, each checked to be
 * in [0, vocab)) or {"prompt": "..."} (templated and tokenized); "ids" wins when
 * both are present. Errors name path and line: "'p.jsonl' line 3: ...". */
int rl_chat_item(const rl_chat *c, const cJSON *item, const char *path, long line, rl_ids *ids);

/* prompts.h's encode hook: ctx is an rl_chat; *ids is malloc'd. */
int rl_chat_encode_fn(void *ctx, const char *text, size_t len, int32_t **ids, int *n);

/* A pipeline opened on first use, for rl_prompts_read's encode hook: prompt files
 * of ids never load the tokenizer (nor need one); the first {"prompt": ...} line
 * opens it, and a failure to open is reported for that line (and every later
 * one). Zero-initialise, set dir and opts. */
typedef struct rl_chat_lazy {
	const char *dir;
	rl_chat_opts opts;
	rl_chat chat;
	int state; /* 0 not opened, 1 open, -1 failed */
	int rc;
	char err[512];
} rl_chat_lazy;

/* prompts.h's encode hook over an rl_chat_lazy. */
int rl_chat_lazy_encode_fn(void *ctx, const char *text, size_t len, int32_t **ids, int *n);
/* How the template was chosen ("" when the pipeline was never opened). */
const char *rl_chat_lazy_how(const rl_chat_lazy *l);
void rl_chat_lazy_close(rl_chat_lazy *l);

/* rl_prompts_read with text prompts through the model directory dir's chat
 * pipeline (opened only if a line needs it, closed before returning). o's
 * encode hook is replaced. how (how_cap bytes) receives how the template was
 * chosen, "" when no line needed it. */
int rl_chat_prompts_read(rl_prompts *p, const char *path, rl_prompts_opts o, const char *dir,
			 const rl_chat_opts *opts, char *how, size_t how_cap);

/* The ids that end a generated answer: the tokenizer's end ids (generation_config
 * eos_token_id, tokenizer_config eos_token) and the template's end-of-turn token. */
int rl_chat_end_ids(const rl_chat *c, rl_ids *out);

#endif
