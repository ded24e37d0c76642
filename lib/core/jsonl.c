/* jsonl.c — JSON-lines reading with line-numbered errors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/jsonl.h"

int rl_jsonl_open(rl_jsonl *j, const char *path)
{
	memset(j, 0, sizeof *j);
	if (strcmp(path, "-") == 0) {
		j->fp = stdin;
		j->path = "<stdin>";
		return RL_OK;
	}
	j->path = path;
	j->fp = fopen(path, "rb");
	if (!j->fp)
		return rl_error_errno(errno == ENOENT ? RL_EDATA : RL_ESYS, "'%s'", path);
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
		const char *end = NULL;
		cJSON *v = cJSON_ParseWithOpts(j->line, &end, 0);
		if (!v)
			return rl_error(RL_EDATA, "'%s' line %ld: malformed JSON", j->path,
					j->lineno);
		if (!blank(end, (size_t)(j->line + n - end))) {
			cJSON_Delete(v);
			return rl_error(RL_EDATA,
					"'%s' line %ld: trailing data after the JSON value",
					j->path, j->lineno);
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

int rl_utf8_valid(const char *str, size_t n)
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
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += len;
	}
	return 1;
}

int rl_read_file(const char *path, char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return rl_error_errno(errno == ENOENT ? RL_EDATA : RL_ESYS, "'%s'", path);
	struct stat st;
	if (fstat(fileno(fp), &st) != 0) {
		fclose(fp);
		return rl_error_errno(RL_ESYS, "'%s'", path);
	}
	if (S_ISDIR(st.st_mode)) {
		fclose(fp);
		return rl_error(RL_EDATA, "'%s': is a directory", path);
	}
	size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
	char *p = rl_malloc(cap);
	if (!p) {
		fclose(fp);
		return RL_ESYS;
	}
	for (;;) {
		size_t got = fread(p + n, 1, cap - n - 1, fp);
		n += got;
		if (got == 0)
			break;
		if (n + 1 == cap) {
			char *q = rl_realloc_array(p, cap, 2);
			if (!q) {
				free(p);
				fclose(fp);
				return RL_ESYS;
			}
			p = q;
			cap *= 2;
		}
	}
	if (ferror(fp)) {
		free(p);
		fclose(fp);
		return rl_error_errno(RL_ESYS, "'%s': read error", path);
	}
	fclose(fp);
	p[n] = '\0';
	*buf = p;
	*len = n;
	return RL_OK;
}

int rl_jsonl_write(FILE *fp, const cJSON *item)
{
	char *s = cJSON_PrintUnformatted(item);
	if (!s)
		return rl_error(RL_ESYS, "out of memory formatting JSON");
	int ok = fputs(s, fp) >= 0 && fputc('\n', fp) != EOF;
	free(s);
	return ok ? RL_OK : rl_error_errno(RL_ESYS, "write error");
}
