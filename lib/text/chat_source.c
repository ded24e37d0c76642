/* chat_source.c — a model directory's chat template and special tokens (see
 * chat_source.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/jsonl.h"
#include "text/chat_source.h"

static char *join(const char *dir, const char *file)
{
	size_t n = strlen(dir) + strlen(file) + 2;
	char *p = rl_malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, file);
	return p;
}

/* *buf is NULL when the file does not exist (a broken link is an error). */
static int read_optional(const char *path, char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	if (!rl_path_present(path))
		return RL_OK;
	return rl_read_file(path, buf, len);
}

/* dir/file parsed as a JSON object; *out is NULL when the file does not exist. */
static int read_json(const char *dir, const char *file, cJSON **out)
{
	*out = NULL;
	char *path = join(dir, file), *buf;
	size_t len;
	if (!path)
		return RL_ESYS;
	int rc = read_optional(path, &buf, &len);
	if (!rc && buf) {
		size_t n = strlen(path) + 3;
		char *what = rl_malloc(n);
		if (!what)
			rc = RL_ESYS;
		else {
			snprintf(what, n, "'%s'", path);
			rc = rl_json_parse(buf, len, what, out);
			free(what);
		}
		if (!rc && !cJSON_IsObject(*out)) {
			rc = rl_error(RL_EDATA, "'%s': not a JSON object", path);
			cJSON_Delete(*out);
			*out = NULL;
		}
	}
	free(buf);
	free(path);
	return rc;
}

/* The token text of a config value: a string or an AddedToken's content. */
static const char *token_text(const cJSON *v)
{
	if (cJSON_IsString(v))
		return v->valuestring;
	const cJSON *c = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "content") : NULL;
	return cJSON_IsString(c) ? c->valuestring : NULL;
}

static int is_standard(const char *key)
{
	static const char *const names[] = {"bos_token", "eos_token", "unk_token", "sep_token",
					    "pad_token", "cls_token", "mask_token"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(key, names[i]) == 0)
			return 1;
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Sets map[key] from a config value (null removes it, as transformers skips it). */
static int put_token(cJSON *map, const cJSON *v, const char *file)
{
	const char *key = v->string, *text = token_text(v);
	if (!key || !ends_with(key, "_token"))
		return RL_OK;
	if (!text && !cJSON_IsNull(v) && is_standard(key))
		return rl_error(RL_EDATA, "'%s': %s must be a string or {\"content\": ...}", file,
				key);
	cJSON_DeleteItemFromObjectCaseSensitive(map, key);
	if (text && !cJSON_AddStringToObject(map, key, text))
		return rl_error(RL_ESYS, "out of memory");
	return RL_OK;
}

static int special_tokens(const char *dir, const cJSON *cfg, cJSON *map)
{
	int rc = RL_OK;
	for (const cJSON *v = cfg ? cfg->child : NULL; v && !rc; v = v->next)
		rc = put_token(map, v, "tokenizer_config.json");
	if (rc || cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder"))
		return rc;
	cJSON *legacy;
	if ((rc = read_json(dir, "special_tokens_map.json", &legacy)))
		return rc;
	for (const cJSON *v = legacy ? legacy->child : NULL; v && !rc; v = v->next)
		rc = put_token(map, v, "special_tokens_map.json");
	cJSON_Delete(legacy);
	return rc;
}

/* tokenizer_config.json's chat_template: a string, or the list entry named
 * "default". *text is NULL when there is none. */
static int config_template(const cJSON *cfg, const char *path, const char **text)
{
	const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
	*text = NULL;
	if (!ct || cJSON_IsNull(ct))
		return RL_OK;
	if (cJSON_IsString(ct)) {
		*text = ct->valuestring;
		return RL_OK;
	}
	if (!cJSON_IsArray(ct))
		return rl_error(RL_EDATA, "'%s': chat_template must be a string or a list", path);
	const cJSON *x;
	cJSON_ArrayForEach(x, ct)
	{
		const cJSON *nm = cJSON_GetObjectItemCaseSensitive(x, "name"),
			    *tx = cJSON_GetObjectItemCaseSensitive(x, "template");
		if (!cJSON_IsString(nm) || !cJSON_IsString(tx))
			return rl_error(RL_EDATA,
					"'%s': chat_template list entries must be {\"name\", "
					"\"template\"} strings",
					path);
		if (strcmp(nm->valuestring, "default") == 0)
			*text = tx->valuestring;
	}
	if (!*text)
		return rl_error(RL_EDATA,
				"'%s': chat_template lists several templates and none is named "
				"\"default\"",
				path);
	return RL_OK;
}

int rl_chat_source_read(const char *dir, rl_chat_source *s)
{
	memset(s, 0, sizeof *s);
	cJSON *cfg = NULL;
	char *cfg_path = join(dir, "tokenizer_config.json");
	int rc = cfg_path ? RL_OK : RL_ESYS;
	if (!rc)
		rc = read_json(dir, "tokenizer_config.json", &cfg);
	if (!rc && !(s->special = cJSON_CreateObject()))
		rc = rl_error(RL_ESYS, "out of memory");
	if (!rc)
		rc = special_tokens(dir, cfg, s->special);
	if (!rc && !(s->path = join(dir, "chat_template.jinja")))
		rc = RL_ESYS;
	if (!rc)
		rc = read_optional(s->path, &s->text, &s->len);
	if (!rc && s->text) {
		s->of = "chat_template.jinja";
		if (strlen(s->text) != s->len || !rl_utf8_valid(s->text, s->len))
			rc = rl_error(RL_EDATA, "'%s': not UTF-8 text", s->path);
	} else if (!rc) {
		const char *text;
		if (!(rc = config_template(cfg, cfg_path, &text)) && text) {
			s->of = "tokenizer_config.json";
			s->len = strlen(text);
			free(s->path);
			s->path = cfg_path;
			cfg_path = NULL;
			if (!(s->text = rl_strdup(text)))
				rc = RL_ESYS;
		}
	}
	if (!rc && !s->text) {
		free(s->path);
		s->path = NULL;
	}
	cJSON_Delete(cfg);
	free(cfg_path);
	if (rc)
		rl_chat_source_free(s);
	return rc;
}

void rl_chat_source_free(rl_chat_source *s)
{
	free(s->text);
	free(s->path);
	cJSON_Delete(s->special);
	memset(s, 0, sizeof *s);
}
