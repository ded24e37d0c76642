/* json.c — the JSON rules and the parse that applies them (see json.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "core/jsonl.h"

static int hex4(const char *s, size_t n, size_t i, unsigned *v)
{
	if (n - i < 4)
		return 0;
	*v = 0;
	for (size_t k = i; k < i + 4; k++) {
		char c = s[k];
		unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
			     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
			     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
						    : 16u;
		if (d > 15)
			return 0;
		*v = *v << 4 | d;
	}
	return 1;
}

/* 1 when the string that ended at s[i] (its closing quote) is a key. */
static int is_key(const char *s, size_t n, size_t i)
{
	for (i++; i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'); i++)
		;
	return i < n && s[i] == ':';
}

/* The raw bytes: UTF-8, no NUL, no \u0000 (unless flags allow it in values)
 * or lone surrogate escape in a string. Malformed escapes are left to the
 * parser. */
static int check_text(const char *s, size_t n, const char *what, int flags)
{
	size_t ok = rl_utf8_prefix(s, n);
	const char *nul = memchr(s, '\0', ok);
	if (nul)
		return rl_error(RL_EDATA, "%s: NUL byte at byte %zu", what, (size_t)(nul - s));
	if (ok < n)
		return rl_error(RL_EDATA, "%s: not valid UTF-8 at byte %zu", what, ok);
	int in_str = 0;
	size_t nul_at = SIZE_MAX; /* the first \u0000 of the current string */
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"') {
			if (in_str && nul_at != SIZE_MAX) {
				int key = is_key(s, n, i);
				if (key || !(flags & RL_JSON_NUL_VALUES))
					return rl_error(RL_EDATA,
							"%s: U+0000 (\\u0000) in a %s at byte %zu",
							what, key ? "key" : "string", nul_at);
			}
			in_str = !in_str;
			nul_at = SIZE_MAX;
			continue;
		}
		if (!in_str || s[i] != '\\')
			continue;
		size_t at = i++;
		unsigned v, lo;
		if (i >= n || s[i] != 'u' || !hex4(s, n, i + 1, &v))
			continue; /* another escape (or a malformed one: the parser's) */
		i += 4;
		if (v == 0 && nul_at == SIZE_MAX)
			nul_at = at; /* a key's or a value's: decided at its end */
		if (v >= 0xDC00 && v <= 0xDFFF)
			return rl_error(RL_EDATA,
					"%s: lone UTF-16 surrogate \\u%04X in a string at byte %zu",
					what, v, at);
		if (v >= 0xD800 && v <= 0xDBFF) {
			if (n - i < 3 || s[i + 1] != '\\' || s[i + 2] != 'u' ||
			    !hex4(s, n, i + 3, &lo) || lo < 0xDC00 || lo > 0xDFFF)
				return rl_error(
					RL_EDATA,
					"%s: lone UTF-16 surrogate \\u%04X in a string at byte %zu",
					what, v, at);
			i += 6;
		}
	}
	return RL_OK;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* No object holds a key twice; parent names the member j is (NULL: the root). */
static int check_keys(const cJSON *j, const char *parent, const char *what)
{
	if (!cJSON_IsObject(j) && !cJSON_IsArray(j))
		return RL_OK;
	size_t n = 0;
	for (const cJSON *c = j->child; c; c = c->next, n++) {
		int rc = check_keys(c, cJSON_IsObject(j) ? c->string : parent, what);
		if (rc)
			return rc;
	}
	if (!cJSON_IsObject(j) || n < 2)
		return RL_OK;
	/* sorted, so that an index of 100k tensors costs n log n, not n^2 */
	const char **keys = rl_malloc_array(n, sizeof *keys);
	if (!keys)
		return RL_ESYS;
	size_t k = 0;
	for (const cJSON *c = j->child; c; c = c->next)
		keys[k++] = c->string ? c->string : "";
	qsort(keys, n, sizeof *keys, cmp_key);
	int rc = RL_OK;
	for (size_t i = 1; i < n && !rc; i++)
		if (strcmp(keys[i - 1], keys[i]) == 0)
			rc = parent ? rl_error(RL_EDATA, "%s: duplicate key \"%s\" in \"%s\"", what,
					       keys[i], parent)
				    : rl_error(RL_EDATA, "%s: duplicate key \"%s\"", what, keys[i]);
	free(keys);
	return rc;
}

int rl_json_check(const char *text, size_t len, const cJSON *root, const char *what)
{
	int rc = check_text(text, len, what, 0);
	return rc || !root ? rc : check_keys(root, NULL, what);
}

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int rl_json_parse(const char *text, size_t len, const char *what, cJSON **out)
{
	return rl_json_parse_opts(text, len, what, 0, out);
}

int rl_json_parse_opts(const char *text, size_t len, const char *what, int flags, cJSON **out)
{
	*out = NULL;
	int rc = check_text(text, len, what, flags);
	if (rc)
		return rc;
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!root) {
		size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
		return rl_error(RL_EDATA, "%s: malformed JSON near byte %zu", what, at);
	}
	for (const char *q = end; q < text + len; q++)
		if (!blank(*q)) {
			cJSON_Delete(root);
			return rl_error(RL_EDATA,
					"%s: trailing characters after the JSON value at byte %zu",
					what, (size_t)(q - text));
		}
	if ((rc = check_keys(root, NULL, what))) {
		cJSON_Delete(root);
		return rc;
	}
	*out = root;
	return RL_OK;
}
