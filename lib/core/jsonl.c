/* jsonl.c — JSON-lines reading with line-numbered errors. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/jsonl.h"
#include "core/util.h"

int rl_jsonl_open(rl_jsonl *j, const char *path)
{
	memset(j, 0, sizeof *j);
	if (strcmp(path, "-") == 0) {
		j->fp = stdin;
		j->path = "<stdin>";
		return RL_OK;
	}
	j->path = path;
	int fd, rc = rl_open_input(path, &fd);
	if (rc)
		return rc;
	if (!(j->fp = fdopen(fd, "rb"))) {
		rc = rl_error_errno(RL_ESYS, "'%s'", path);
		close(fd);
		return rc;
	}
	j->owned = 1;
	return RL_OK;
}

static int blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return 0;
	return 1;
}

/* ---- U+0000 in strings ------------------------------------------------------------ */
/* The walk below reads text cJSON has parsed: every literal is well formed. */
static void skip_ws(const char **p, const char *end)
{
	while (*p < end && (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n'))
		(*p)++;
}

/* The end of the string literal whose opening quote is at s. */
static const char *literal_end(const char *s, const char *end)
{
	for (const char *p = s + 1; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return end;
}

static int literal_has_nul(const char *s, const char *e)
{
	for (const char *p = s + 1; p + 1 < e; p++) {
		if (*p != '\\')
			continue;
		if (p[1] == 'u' && e - p >= 6 && memcmp(p + 2, "0000", 4) == 0)
			return 1;
		p++;
	}
	return 0;
}

/* Walks the JSON value at *p beside node, the tree cJSON made of it (members and
 * elements in text order, duplicate keys included), and turns each string
 * holding \u0000 into a raw item of its literal. */
static int keep_nul(cJSON *node, const char **p, const char *end)
{
	skip_ws(p, end);
	if (*p >= end)
		return rl_error(RL_EDATA, "malformed JSON");
	char open = **p;
	if (open == '{' || open == '[') {
		(*p)++;
		for (cJSON *k = node->child; k; k = k->next) {
			skip_ws(p, end);
			if (open == '{') {
				const char *e = literal_end(*p, end);
				if (literal_has_nul(*p, e))
					return rl_error(RL_EDATA, "U+0000 (\\u0000) in a key");
				*p = e;
				skip_ws(p, end);
				*p += *p < end && **p == ':';
			}
			int rc = keep_nul(k, p, end);
			if (rc)
				return rc;
			skip_ws(p, end);
			*p += *p < end && **p == ',';
		}
		skip_ws(p, end);
		*p += *p < end; /* the closing bracket */
		return RL_OK;
	}
	if (open == '"') {
		const char *e = literal_end(*p, end);
		if (literal_has_nul(*p, e)) {
			size_t n = (size_t)(e - *p);
			char *lit = cJSON_malloc(n + 1);
			if (!lit)
				return rl_error(RL_ESYS, "out of memory");
			memcpy(lit, *p, n);
			lit[n] = 0;
			cJSON_free(node->valuestring);
			node->valuestring = lit;
			node->type = cJSON_Raw;
		}
		*p = e;
		return RL_OK;
	}
	while (*p < end && **p != ',' && **p != ']' && **p != '}' && **p != ' ' && **p != '\t' &&
	       **p != '\r' && **p != '\n')
		(*p)++; /* a number, true, false or null */
	return RL_OK;
}

static int hex4(const char *p, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		int d = rl_hexval(p[i]);
		if (d < 0)
			return 0;
		*v = *v << 4 | (uint32_t)d;
	}
	return 1;
}

static size_t put_utf8(char *o, uint32_t c)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xC0 | c >> 6);
		o[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xE0 | c >> 12);
		o[1] = (char)(0x80 | (c >> 6 & 0x3F));
		o[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | c >> 18);
	o[1] = (char)(0x80 | (c >> 12 & 0x3F));
	o[2] = (char)(0x80 | (c >> 6 & 0x3F));
	o[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

int rl_json_string(const cJSON *item, char **s, size_t *len)
{
	*s = NULL;
	*len = 0;
	if (cJSON_IsString(item)) {
		*len = strlen(item->valuestring);
		*s = rl_malloc(*len + 1);
		if (!*s)
			return RL_ESYS;
		memcpy(*s, item->valuestring, *len + 1);
		return RL_OK;
	}
	if (!cJSON_IsRaw(item) || !item->valuestring || item->valuestring[0] != '"')
		return RL_EDATA;
	const char *p = item->valuestring + 1;
	char *o = rl_malloc(strlen(p) + 1); /* escapes only shrink */
	if (!o)
		return RL_ESYS;
	size_t n = 0;
	while (*p && *p != '"') {
		if (*p != '\\') {
			o[n++] = *p++;
			continue;
		}
		char e = p[1];
		p += 2;
		uint32_t cp = 0, lo;
		switch (e) {
		case 'b':
			o[n++] = '\b';
			break;
		case 'f':
			o[n++] = '\f';
			break;
		case 'n':
			o[n++] = '\n';
			break;
		case 'r':
			o[n++] = '\r';
			break;
		case 't':
			o[n++] = '\t';
			break;
		case 'u':
			if (!hex4(p, &cp))
				break;
			p += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF && p[0] == '\\' && p[1] == 'u' &&
			    hex4(p + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			}
			n += put_utf8(o + n, cp);
			break;
		default: /* " \ / */
			o[n++] = e;
		}
	}
	o[n] = 0;
	*s = o;
	*len = n;
	return RL_OK;
}

cJSON *rl_json_string_item(const char *s, size_t len)
{
	int raw = memchr(s, 0, len) != NULL;
	char *buf = malloc(raw ? 6 * len + 3 : len + 1);
	if (!buf)
		return NULL;
	if (!raw) {
		memcpy(buf, s, len);
		buf[len] = 0;
		cJSON *it = cJSON_CreateString(buf);
		free(buf);
		return it;
	}
	/* escaped as cJSON prints strings */
	size_t n = 0;
	buf[n++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *named = c == '"'	? "\\\""
				    : c == '\\' ? "\\\\"
				    : c == '\b' ? "\\b"
				    : c == '\f' ? "\\f"
				    : c == '\n' ? "\\n"
				    : c == '\r' ? "\\r"
				    : c == '\t' ? "\\t"
						: NULL;
		if (named) {
			memcpy(buf + n, named, 2);
			n += 2;
		} else if (c < 0x20) {
			n += (size_t)snprintf(buf + n, 7, "\\u%04x", c);
		} else {
			buf[n++] = (char)c;
		}
	}
	buf[n++] = '"';
	buf[n] = 0;
	cJSON *it = cJSON_CreateRaw(buf);
	free(buf);
	return it;
}

int rl_jsonl_next(rl_jsonl *j, cJSON **item)
{
	*item = NULL;
	for (;;) {
		errno = 0;
		ssize_t n = getline(&j->line, &j->cap, j->fp);
		if (n < 0) {
			if (ferror(j->fp))
				return rl_error_errno(RL_ESYS, "'%s': read error", j->path);
			return RL_OK;
		}
		j->lineno++;
		if (blank(j->line, (size_t)n))
			continue;
		if (memchr(j->line, '\0', (size_t)n))
			return rl_error(RL_EDATA, "'%s' line %ld: NUL byte in a JSON line", j->path,
					j->lineno);
		if (!rl_utf8_valid(j->line, (size_t)n))
			return rl_error(RL_EDATA, "'%s' line %ld: invalid UTF-8", j->path,
					j->lineno);
		char what[PATH_MAX + 32];
		snprintf(what, sizeof what, "'%s' line %ld", j->path, j->lineno);
		cJSON *v;
		int rc = rl_json_parse_opts(j->line, (size_t)n, what,
					    j->keep_nul ? RL_JSON_NUL_VALUES : 0, &v);
		if (rc)
			return rc;
		if (j->keep_nul && memmem(j->line, (size_t)n, "\\u0000", 6)) {
			const char *p = j->line;
			rc = keep_nul(v, &p, j->line + n);
			if (rc) {
				cJSON_Delete(v);
				return rl_error_prefix(rc, "'%s' line %ld", j->path, j->lineno);
			}
		}
		*item = v;
		return RL_OK;
	}
}

void rl_jsonl_close(rl_jsonl *j)
{
	if (j->owned && j->fp)
		fclose(j->fp);
	free(j->line);
	memset(j, 0, sizeof *j);
}

int rl_utf8_valid(const char *s, size_t n)
{
	return rl_utf8_prefix(s, n) == n;
}

size_t rl_utf8_prefix(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		unsigned cp, min;
		if ((c & 0xE0) == 0xC0) {
			len = 2, cp = c & 0x1F, min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3, cp = c & 0x0F, min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return i;
		}
		if (n - i < len)
			return i;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return i;
		i += len;
	}
	return n;
}

void rl_fmt_double(char *buf, double v)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, 32, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* 1 if some finite number under it would not read back from cJSON's text.
 * An int prints with %d (cJSON's own test): exact, and no snprintf for each
 * of rl-tok's ids. */
static int has_inexact(const cJSON *it)
{
	for (; it; it = it->next) {
		double v = it->valuedouble;
		if (cJSON_IsNumber(it) && isfinite(v) &&
		    !(v >= INT_MIN && v <= INT_MAX && v == (double)(int)v)) {
			char buf[32];
			snprintf(buf, sizeof buf, "%1.15g", v);
			if (strtod(buf, NULL) != v)
				return 1;
		}
		if (has_inexact(it->child))
			return 1;
	}
	return 0;
}

/* Turns every finite number under it into a raw item of rl_fmt_double's
 * text; 0, or -1 when out of memory. */
static int exact_numbers(cJSON *it)
{
	for (; it; it = it->next) {
		if (cJSON_IsNumber(it) && isfinite(it->valuedouble)) {
			char buf[32];
			rl_fmt_double(buf, it->valuedouble);
			if (!(it->valuestring = strdup(buf)))
				return -1;
			it->type = cJSON_Raw;
		}
		if (exact_numbers(it->child))
			return -1;
	}
	return 0;
}

int rl_jsonl_write(FILE *fp, const cJSON *item)
{
	cJSON *copy = NULL;
	if (has_inexact(item)) { /* rare: print a copy whose numbers are exact text */
		copy = cJSON_Duplicate(item, 1);
		if (!copy || exact_numbers(copy)) {
			cJSON_Delete(copy);
			return rl_error(RL_ESYS, "out of memory formatting JSON");
		}
	}
	char *s = cJSON_PrintUnformatted(copy ? copy : item);
	cJSON_Delete(copy);
	if (!s)
		return rl_error(RL_ESYS, "out of memory formatting JSON");
	int ok = fputs(s, fp) >= 0 && fputc('\n', fp) != EOF;
	free(s);
	return ok ? RL_OK : rl_error_errno(RL_ESYS, "write error");
}
