/* chat_source.h — a model directory's chat template and special tokens, found
 * as transformers finds them.
 *
 * The template: DIR/chat_template.jinja when it exists (transformers lets it
 * replace the config's, as newer versions save it), else tokenizer_config.json's
 * chat_template: a string, or a list of {"name", "template"} of which the one
 * named "default" is used (a list without one is refused, as transformers
 * refuses it). A model without either has no template (text is NULL): not an
 * error here.
 *
 * The special tokens: what apply_chat_template passes to the template as
 * bos_token, eos_token, ... (transformers 5's special_tokens_map): every key of
 * tokenizer_config.json ending in "_token" whose value is a string or an
 * AddedToken object {"content": ...} (bos, eos, unk, sep, pad, cls, mask and
 * model-specific ones such as Gemma 3's boi_token); null is left out. A legacy
 * special_tokens_map.json is read, overriding the config, only when the config
 * has no added_tokens_decoder (transformers' rule). Defaults that a tokenizer
 * class adds without writing them to the config (GemmaTokenizer's mask_token)
 * are not known here; no real chat template reads them.
 */
#ifndef RL_CHAT_SOURCE_H
#define RL_CHAT_SOURCE_H

#include <cJSON.h>
#include <stddef.h>

typedef struct rl_chat_source {
	char *text;	/* the Jinja source (malloc'd, NUL-terminated), NULL: none */
	size_t len;	/* bytes of text */
	char *path;	/* the file it came from (malloc'd), NULL with text */
	const char *of; /* "chat_template.jinja" or "tokenizer_config.json" */
	cJSON *special; /* {"bos_token": "<s>", ...}: never NULL after success */
} rl_chat_source;

/* Reads dir's chat template and special tokens. A malformed tokenizer_config.json
 * or special_tokens_map.json, a chat_template.jinja that is not UTF-8 text, a
 * chat_template of another type or a standard special token (bos_token, ...)
 * that is neither a string nor {"content": ...}: RL_EDATA naming the file. */
int rl_chat_source_read(const char *dir, rl_chat_source *s);
void rl_chat_source_free(rl_chat_source *s);

#endif
