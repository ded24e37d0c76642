/* json.h — the rules every JSON text realign reads must follow, and the
 * parse that applies them: config.json, the shard index, tokenizer and
 * generation files, JSON lines (prompts, responses), judge and metric answers.
 *
 * cJSON stops a string at a NUL, so a key "rms_norm_eps\u0000x" (or with a raw
 * NUL byte) would silently become "rms_norm_eps" or another key, and of two
 * equal keys it keeps the first where Python keeps the last: one file, two
 * meanings. So, before or after cJSON parses a text:
 *   - its raw bytes are valid UTF-8 and hold no NUL byte;
 *   - no string holds the escape \u0000 (U+0000) or a lone UTF-16 surrogate
 *     escape (\uD800-\uDFFF not in a high-low pair); a caller that keeps
 *     U+0000 in string values with their length (jsonl.h's keep_nul: prompts
 *     for rl-tok) allows it there with RL_JSON_NUL_VALUES, never in a key;
 *   - no object holds a key twice (at any depth).
 * Every violation is RL_EDATA naming the subject and the byte offset (or the
 * key): "'config.json': NUL byte at byte 17", "... duplicate key \"harmful\"".
 *
 * (tokenizer.json's vocab and merges, the bulk of it, are read by the
 * tokenizer's own scanner, which keeps a NUL in a token; the rest of the file
 * goes through these rules.)
 *
 * `what` is the message's subject, already formatted by the caller:
 * "'model/config.json'", "'data.jsonl' line 7", "judge 'cmd': answer for item 3".
 */
#ifndef RL_JSON_H
#define RL_JSON_H

#include <cJSON.h>
#include <stddef.h>

/* Parses the len bytes at text (one JSON value, whitespace around it) into
 * *out (the caller frees it with cJSON_Delete), applying the rules. Syntax
 * errors: "malformed JSON near byte N", "trailing characters after the JSON
 * value at byte N". On error *out is NULL. */
int rl_json_parse(const char *text, size_t len, const char *what, cJSON **out);

/* Flags of rl_json_parse_opts. */
enum { RL_JSON_NUL_VALUES = 1 /* U+0000 allowed in string values (not keys) */ };
int rl_json_parse_opts(const char *text, size_t len, const char *what, int flags, cJSON **out);

/* The rules alone, for callers that parse (and phrase syntax errors)
 * themselves: the raw text, and root (the tree parsed from it; NULL: the text
 * only). */
int rl_json_check(const char *text, size_t len, const cJSON *root, const char *what);

#endif
