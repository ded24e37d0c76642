/* template.h — one-turn templates without Jinja: the reference's built-ins, the
 * older {prompt} file format and raw text (chat.h renders a model's own Jinja
 * template; these serve only when asked for by name, file or --raw).
 *
 * A template renders one user turn with the generation prompt appended (the text
 * ends where the assistant's answer begins), or, for training, the same text
 * followed by the answer and the end-of-turn token. Placeholders {system},
 * {prompt} and {answer} are substituted in one pass (text that contains "{prompt}"
 * is not substituted again).
 *
 * Built-ins, as the reference implementation uses them (ALGORITHM.md):
 *   llama-2         <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{prompt} [/INST]
 *                   (FastChat's default system prompt when none is given; an
 *                   empty --system drops the <<SYS>> block)
 *   llama-3         <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n
 *                   {prompt}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n
 *                   (prompt stripped; a system turn only with --system)
 *   mistral         <s>[INST] {prompt} [/INST]
 *   mistral-tekken  <s>[INST]{prompt}[/INST]            (Mistral NeMo)
 *   chatml          <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n
 *                   <|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n
 *   qwen2.5         chatml with "You are Qwen, created by Alibaba Cloud. You are a
 *                   helpful assistant."
 *   gemma           <bos><start_of_turn>user\n{prompt}<end_of_turn>\n
 *                   <start_of_turn>model\n          (prompt stripped)
 * "Stripped" is Python's str.strip(), as the models' Jinja templates apply |trim.
 *
 * A FILE template is a text file with {prompt} and optionally {system} and
 * {answer}: the generation prompt is the text before {answer} (the whole file
 * without it), the training text the whole file with the answer substituted.
 */
#ifndef RL_TEMPLATE_H
#define RL_TEMPLATE_H

#include <stddef.h>

typedef struct rl_template {
	char *name;	      /* "llama-3", the file path, or "raw" */
	char *with_system;    /* format with {system} and {prompt}, or NULL */
	char *without_system; /* format with {prompt} */
	char *default_system; /* system text when none is given, or NULL */
	char *answer;	      /* training suffix with {answer} ("{answer}<|eot_id|>") */
	int strip;	      /* strip prompt, system and answer */
} rl_template;

/* The built-in names, NULL-terminated. */
extern const char *const rl_template_names[];

/* Fills t with built-in name; RL_NO if there is no such built-in. */
int rl_template_builtin(const char *name, rl_template *t);
/* Reads a FILE template (RL_EDATA if it has no {prompt}). */
int rl_template_file(const char *path, rl_template *t);
/* The same from the file's text, already read: buf (len bytes, NUL-terminated)
 * is left as it was; path names it in messages. */
int rl_template_text(const char *path, char *buf, size_t len, rl_template *t);
/* The raw template: the prompt as it is. */
int rl_template_raw(rl_template *t);

/* Renders prompt (prompt_len bytes) and answer (answer_len bytes, for training;
 * NULL for the generation prompt) into a malloc'd NUL-terminated *text of *len
 * bytes; prompt and answer may hold U+0000. system NULL means the template's
 * default; "" means no system turn. *gen_len (may be NULL) receives the length of
 * the generation-prompt part, a prefix of *text. */
int rl_template_render(const rl_template *t, const char *system, const char *prompt,
		       size_t prompt_len, const char *answer, size_t answer_len, char **text,
		       size_t *len, size_t *gen_len);

void rl_template_free(rl_template *t);

#endif
