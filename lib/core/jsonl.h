/* jsonl.h — reading JSON-lines files (prompts, task data, judge answers).
 *
 * One JSON value per line; blank lines are skipped; every error names the file
 * and the 1-based line number: "'data.jsonl' line 7: malformed JSON". Lines may
 * be arbitrarily long. Invalid UTF-8 inside a line is an error (RL_EDATA).
 */
#ifndef RL_JSONL_H
#define RL_JSONL_H

#include <cJSON.h>
#include <stdio.h>

typedef struct rl_jsonl {
	FILE *fp;
	int owned;	  /* fp is ours to close (not stdin) */
	const char *path; /* as given; "<stdin>" for "-" */
	char *line;
	size_t cap;
	long lineno;
	int keep_nul; /* set after open: strings with U+0000 kept (see below) */
} rl_jsonl;

/* Opens path ("-" = stdin); it may be a pipe or FIFO (file.h: an input). */
int rl_jsonl_open(rl_jsonl *j, const char *path);
/* Parses the next non-blank line into *item (caller frees with cJSON_Delete).
 * Sets *item = NULL at end of file. */
int rl_jsonl_next(rl_jsonl *j, cJSON **item);
void rl_jsonl_close(rl_jsonl *j);

/* U+0000 in strings. cJSON's strings are C strings: it cuts "a\u0000b" to "a".
 * With keep_nul set, rl_jsonl_next keeps every string value that holds the
 * escape \u0000 as a raw item instead (cJSON_Raw, valuestring = the JSON literal,
 * quotes included), which prints back as it came; a key with it is refused.
 * rl_json_string reads both kinds of item, rl_json_string_item makes the right
 * one for a text. */

/* The text of a string (or raw string) item, decoded with its length, into a
 * malloc'd NUL-terminated *s. RL_EDATA (no message) if item is neither. */
int rl_json_string(const cJSON *item, char **s, size_t *len);

/* An item for the len bytes at s: a string, or a raw string item when s holds
 * U+0000. NULL when out of memory. */
cJSON *rl_json_string_item(const char *s, size_t len);

/* 1 if the n bytes at s are valid UTF-8 (no overlongs, no surrogates). */
int rl_utf8_valid(const char *s, size_t n);
/* The length of the longest valid UTF-8 prefix of the n bytes at s (n when
 * they are all valid): the offset of the first bad byte. */
size_t rl_utf8_prefix(const char *s, size_t n);

/* The shortest of %.15g, %.16g and %.17g of a finite v that reads back as v
 * exactly, in buf (at least 32 bytes). */
void rl_fmt_double(char *buf, double v);

/* Writes a cJSON value as one compact line (UTF-8 kept as is) to fp. Every
 * finite number reads back exactly (rl_fmt_double): cJSON alone prints %.15g
 * whenever that reads back within DBL_EPSILON relative, which can drop the
 * last bit of a loss or a cosine; NaN and infinities print as null, as
 * cJSON's. */
int rl_jsonl_write(FILE *fp, const cJSON *item);

#endif
