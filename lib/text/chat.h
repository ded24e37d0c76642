/* chat.h — a model's prompt pipeline: chat template + tokenizer.
 *
 * Every tool that reads prompts goes through here: load a model directory's
 * tokenizer, pick its chat template, and turn a prompt (or a whole conversation)
 * into the text and ids the model sees: what transformers'
 * apply_chat_template(..., tokenize=True) gives.
 *
 *     rl_chat c;
 *     rl_chat_opts o = {0};  // the model's own template
 *     if ((rc = rl_chat_open(&c, model_dir, &o))) rl_die_err(rc);
 *     rl_ids ids = {0};
 *     rc = rl_chat_encode(&c, "How do I bake bread?", 20, &ids);
 *     ...
 *     rl_ids_free(&ids);
 *     rl_chat_close(&c);
 *
 * The template, first that applies:
 *   raw             the prompt as it is, no template (--raw);
 *   FILE            a Jinja chat template rendered in place of the model's
 *                   (--template FILE); a file without any Jinja tag ({{, {% or
 *                   {#) is read in the older {prompt} format (template.h), with a
 *                   note;
 *   NAME            a built-in copy of a template the reference used (template.h:
 *                   llama-2 with FastChat's system prompt, ...), with a warning
 *                   when the model has a template of its own;
 *   the model's     chat_template.jinja or tokenizer_config.json's chat_template
 *                   (chat_source.h). None: RL_EDATA naming --template and --raw.
 * A Jinja template is parsed once when the pipeline opens (a construct outside
 * jinja.h's subset: RL_EDATA naming it and its line) and rendered with the
 * variables transformers passes: messages, add_generation_prompt, tools=None,
 * documents=None, the special tokens (chat_source.h) and template keywords
 * (opts.kwargs, then a conversation's own; RL_USAGE when opts.kwargs is not a
 * JSON object or the template is not Jinja). strftime_now reads the local clock,
 * or RL_STRFTIME_NOW=YYYY-MM-DDTHH:MM:SS (local time) when it is set: tests pin
 * it. A template's raise_exception(msg) fails the render with msg as the message
 * (RL_EDATA).
 *
 * A prompt is the conversation [{"role": "system", "content": system}] (only
 * with opts.system; "" is an empty system message) + [{"role": "user",
 * "content": prompt}] with the generation prompt. Its ids: the text tokenized
 * with the special tokens in it recognised and nothing added, as
 * apply_chat_template tokenizes (add_special_tokens=False) and the reference
 * does: the template writes the BOS where the model wants one.
 *
 * Training text (rl-train, rl-tok --train): the conversation with the answer as
 * its last, assistant turn, without the generation prompt. The loss covers what
 * follows the prompt part: P = the rendering without that turn and with the
 * generation prompt, F = the whole rendering. When P's text is a prefix of F's
 * (every real family's template on plain answers), the prompt part is the
 * longest common prefix of their ids: P's own ids unless a merge crosses the
 * boundary. That is TRL's SFTTrainer's completion mask (prompt ids from
 * add_generation_prompt=True, the rest labelled). When it is not (templates
 * that rewrite the answer turn: DeepSeek-R1's drops the thinking and has
 * "<think>" in its generation prompt), the rule is the same longest common
 * prefix of the ids, so the loss starts where the two renderings part, and
 * *prefix says 0 so that tools can say so (TRL keeps len(ids(P)) and warns,
 * labelling the answer's first tokens as prompt). transformers'
 * return_assistant_tokens_mask needs {% generation %} tags, which no real
 * template in tests/fixtures/jinja has.
 *
 * With lib/prompts.h: pass rl_chat_encode_fn as the encode hook and &c as its
 * context, and {"prompt": ...} lines become templated ids.
 */
#ifndef RL_CHAT_H
#define RL_CHAT_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/options.h"
#include "text/jinja.h"
#include "text/prompts.h"
#include "text/template.h"
#include "text/tokenizer.h"

typedef struct rl_chat_opts {
	const char *template_spec; /* FILE or built-in NAME; NULL: the model's own */
	int raw;		   /* the prompt as it is, no template */
	const char *system;	   /* a system message (NULL: none, the template's default) */
	const char *kwargs; /* template keywords, a JSON object: {"enable_thinking": false} */
} rl_chat_opts;

/* The prompt options of every tool that templates prompts (core/options.h),
 * declared once: --template, --raw, --system, --template-kwargs into the
 * rl_chat_opts c points to; st and ss are the tool's short names for --template
 * and --system (0: none). */
#define RL_OPT_TEMPLATE(st, p)                                                                     \
	RL_OPT_STRING(st, "template", "FILE|NAME", p,                                              \
		      "a Jinja chat template rendered in place of the model's own (a file "        \
		      "without Jinja tags: the older {prompt} format), or a built-in copy of the " \
		      "reference's: llama-2, llama-3, mistral, mistral-tekken, chatml, qwen2.5, "  \
		      "gemma (default: the model's chat_template.jinja or tokenizer_config.json "  \
		      "chat_template)")
#define RL_OPTS_CHAT(st, ss, c)                                                                    \
	RL_OPT_TEMPLATE(st, &(c)->template_spec),                                                  \
		RL_OPT_FLAG(0, "raw", &(c)->raw, "no template: the prompt text as it is"),         \
		RL_OPT_STRING(ss, "system", "TEXT", &(c)->system,                                  \
			      "a system message before each prompt, even \"\" (default: none, "    \
			      "so the template's default)"),                                       \
		RL_OPT_STRING(0, "template-kwargs", "JSON", &(c)->kwargs,                          \
			      "template keywords, a JSON object such as '{\"enable_thinking\": "   \
			      "false}'")
/* -p FILE of the tools that read prompt files (rl_chat_prompts_read). */
#define RL_OPT_PROMPTS(p)                                                                          \
	RL_OPT_STRING('p', "prompts", "FILE", p,                                                   \
		      "JSON lines {\"ids\": [...]} or {\"prompt\": \"...\"} (\"-\" = stdin); "     \
		      "prompts go through the chat template and tokenizer.json (see rl-tok(1))")
/* How the pipeline was set up, for the tools to print. */
typedef struct rl_chat_info {
	char how[512];	   /* which template, from where (-v, rl-info) */
	char note[512];	   /* "" or a note for stderr (a {prompt}-format file) */
	char warning[512]; /* "" or a warning (a built-in in place of the model's own) */
} rl_chat_info;

typedef struct rl_chat {
	rl_tokenizer *tok; /* owned */
	rl_jinja *jinja;   /* the Jinja template, or NULL: tmpl renders */
	rl_template tmpl;  /* built-in, {prompt} file or raw (when jinja is NULL) */
	cJSON *special;	   /* the special-tokens map passed to jinja */
	cJSON *kwargs;	   /* opts.kwargs parsed, or NULL */
	char *system;	   /* NULL: no system message */
	int pinned;	   /* RL_STRFTIME_NOW was set: now is strftime_now's clock */
	struct tm now;
	rl_chat_info info;
} rl_chat;

/* Loads dir's tokenizer and chooses the template (see above). An unknown NAME
 * that is not a readable file: RL_USAGE. */
int rl_chat_open(rl_chat *c, const char *dir, const rl_chat_opts *o);
/* The same over a loaded tokenizer, which c takes over (freed by rl_chat_close,
 * also on failure); the model's own template and special tokens are read from
 * dir (NULL: the model has none). */
int rl_chat_init(rl_chat *c, rl_tokenizer *tok, const char *dir, const rl_chat_opts *o);
void rl_chat_close(rl_chat *c);

/* Templated text of a prompt of len bytes (generation prompt appended), malloc'd.
 * Prompts (and answers below) are byte strings with a length: U+0000 is text. */
int rl_chat_text(const rl_chat *c, const char *prompt, size_t len, char **text, size_t *text_len);
/* Appends the ids of the templated prompt to *ids. */
int rl_chat_encode(const rl_chat *c, const char *prompt, size_t len, rl_ids *ids);

/* A whole conversation through the Jinja template, as apply_chat_template
 * renders it: messages is a non-empty list of objects (members that are null
 * are dropped, reasoning fields aliased, as transformers does; a string with
 * U+0000 is a raw item, as core/jsonl.h keeps it); kwargs (may be
 * NULL) are template keywords over opts.kwargs. RL_EDATA without a Jinja
 * template. *text is malloc'd. */
int rl_chat_render(const rl_chat *c, const cJSON *messages, int add_generation_prompt,
		   const cJSON *kwargs, char **text, size_t *len);

/* Training variant: the prompt (with opts.system) and answer as a user and an
 * assistant turn. Appends the ids to *ids and sets *n_prompt to how many of
 * them belong to the prompt (see above); *prefix (may be NULL) to 1 when the
 * generation prompt's text is a prefix of the whole text, 0 when the fallback
 * applied. text (may be NULL) receives the whole text, malloc'd, and text_len
 * (may be NULL) its length. */
int rl_chat_encode_train(const rl_chat *c, const char *prompt, size_t prompt_len,
			 const char *answer, size_t answer_len, rl_ids *ids, size_t *n_prompt,
			 char **text, size_t *text_len, int *prefix);
/* The same for a conversation whose last message is the assistant's answer. */
int rl_chat_encode_train_messages(const rl_chat *c, const cJSON *messages, const cJSON *kwargs,
				  rl_ids *ids, size_t *n_prompt, char **text, size_t *text_len,
				  int *prefix);

/* The ids of the template text that follows the prompt (the generation prompt
 * and whatever closes the user turn), tokenized alone: what a capped prompt
 * keeps after its first tokens. Found by rendering a sentinel prompt; a
 * template that rewrites the prompt so that it cannot be found: RL_EDATA. */
int rl_chat_tail(const rl_chat *c, rl_ids *tail);

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
void rl_chat_lazy_close(rl_chat_lazy *l);

/* rl_prompts_read with text prompts through the model directory dir's chat
 * pipeline (opened only if a line needs it, closed before returning). o's
 * encode hook is replaced. info (may be NULL) receives how the pipeline was set
 * up, all "" when no line needed it. */
int rl_chat_prompts_read(rl_prompts *p, const char *path, rl_prompts_opts o, const char *dir,
			 const rl_chat_opts *opts, rl_chat_info *info);

/* The ids that end a generated answer: the tokenizer's end ids (generation_config
 * eos_token_id, tokenizer_config eos_token), then the template's end of turn: the
 * first special token of the text that follows an answer (rendered with a
 * sentinel answer: <|eot_id|>, <|im_end|>, <end_of_turn>, </s>, ...). */
int rl_chat_end_ids(const rl_chat *c, rl_ids *out);

#endif
