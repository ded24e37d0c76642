/* chat.c — chat template + tokenizer (see chat.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/file.h"
#include "text/chat.h"

static int choose_template(rl_chat *c, const rl_chat_opts *o)
{
	if (o->raw) {
		snprintf(c->how, sizeof c->how, "template: raw (the prompt as it is)");
		return rl_template_raw(&c->tmpl);
	}
	if (o->template_spec) {
		int rc = rl_template_builtin(o->template_spec, &c->tmpl);
		if (rc != RL_NO) {
			snprintf(c->how, sizeof c->how, "template: %s (built-in, as asked)",
				 o->template_spec);
			return rc;
		}
		if (!rl_path_present(o->template_spec)) {
			char names[200] = "";
			for (int i = 0; rl_template_names[i]; i++) {
				strcat(names, i ? ", " : "");
				strcat(names, rl_template_names[i]);
			}
			return rl_error(RL_USAGE,
					"'%s': neither a built-in template (%s) nor a file",
					o->template_spec, names);
		}
		snprintf(c->how, sizeof c->how, "template: file '%.120s'", o->template_spec);
		return rl_template_file(o->template_spec, &c->tmpl);
	}
	const char *ct = rl_tok_chat_template(c->tok), *name;
	if (!ct)
		return rl_error(RL_EDATA,
				"'%s': no chat_template in the model's tokenizer_config.json "
				"(use --template NAME|FILE or --raw)",
				rl_tok_name(c->tok));
	if (rl_template_detect(ct, &name) != RL_OK)
		return rl_error(RL_EDATA,
				"'%s': chat_template not recognised (use --template NAME|FILE or "
				"--raw)",
				rl_tok_name(c->tok));
	snprintf(c->how, sizeof c->how, "template: %s (detected from the chat_template)", name);
	return rl_template_builtin(name, &c->tmpl);
}

int rl_chat_init(rl_chat *c, rl_tokenizer *tok, const rl_chat_opts *o)
{
	memset(c, 0, sizeof *c);
	c->tok = tok;
	int rc = choose_template(c, o);
	if (!rc && o->system && !(c->system = rl_strdup(o->system)))
		rc = RL_ESYS;
	if (rc)
		rl_chat_close(c);
	return rc;
}

int rl_chat_open(rl_chat *c, const char *dir, const rl_chat_opts *o)
{
	rl_tokenizer *tok;
	memset(c, 0, sizeof *c);
	int rc = rl_tokenizer_load(dir, &tok);
	return rc ? rc : rl_chat_init(c, tok, o);
}

void rl_chat_close(rl_chat *c)
{
	rl_tokenizer_free(c->tok);
	rl_template_free(&c->tmpl);
	free(c->system);
	memset(c, 0, sizeof *c);
}

int rl_chat_text(const rl_chat *c, const char *prompt, size_t len, char **text, size_t *text_len)
{
	return rl_template_render(&c->tmpl, c->system, prompt, len, NULL, 0, text, text_len, NULL);
}

int rl_chat_encode(const rl_chat *c, const char *prompt, size_t prompt_len, rl_ids *ids)
{
	char *text;
	size_t len;
	int rc = rl_chat_text(c, prompt, prompt_len, &text, &len);
	if (rc)
		return rc;
	rc = rl_tok_encode(c->tok, text, len, 0, ids);
	free(text);
	return rc;
}

int rl_chat_encode_train(const rl_chat *c, const char *prompt, size_t prompt_len,
			 const char *answer, size_t answer_len, rl_ids *ids, size_t *n_prompt,
			 char **text_out, size_t *text_len)
{
	char *text;
	size_t len, plen;
	rl_ids p = {0};
	if (text_out)
		*text_out = NULL;
	int rc = rl_template_render(&c->tmpl, c->system, prompt, prompt_len, answer, answer_len,
				    &text, &len, &plen);
	if (rc)
		return rc;
	size_t mark = ids->n;
	rc = rl_tok_encode(c->tok, text, plen, 0, &p);
	if (!rc)
		rc = rl_tok_encode(c->tok, text, len, 0, ids);
	if (!rc) {
		size_t k = 0;
		while (k < p.n && mark + k < ids->n && p.v[k] == ids->v[mark + k])
			k++;
		*n_prompt = k;
	}
	rl_ids_free(&p);
	if (!rc && text_len)
		*text_len = len;
	if (!rc && text_out)
		*text_out = text;
	else
		free(text);
	return rc;
}

int rl_chat_item(const rl_chat *c, const cJSON *item, const char *path, long line, rl_ids *ids)
{
	if (!cJSON_IsObject(item))
		return rl_error(RL_EDATA,
				"'%s' line %ld: expected an object with \"prompt\" or \"ids\"",
				path, line);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, "ids");
	size_t mark = ids->n;
	if (v) {
		const cJSON *x;
		int32_t nv = rl_tok_n_vocab(c->tok);
		if (!cJSON_IsArray(v))
			return rl_error(RL_EDATA,
					"'%s' line %ld: \"ids\" must be a list of token ids", path,
					line);
		int k = 0;
		cJSON_ArrayForEach(x, v)
		{
			double d = cJSON_IsNumber(x) ? x->valuedouble : -1;
			if (!(d >= 0 && d < nv && d == (double)(int32_t)d)) {
				ids->n = mark;
				return rl_error(
					RL_EDATA,
					"'%s' line %ld: \"ids\" element %d is not a token id "
					"in [0, %d)",
					path, line, k, (int)nv);
			}
			int rc = rl_ids_push(ids, (int32_t)d);
			if (rc)
				return rc;
			k++;
		}
		return RL_OK;
	}
	v = cJSON_GetObjectItemCaseSensitive(item, "prompt");
	if (!v)
		return rl_error(RL_EDATA, "'%s' line %ld: no \"prompt\" or \"ids\"", path, line);
	if (!cJSON_IsString(v))
		return rl_error(RL_EDATA, "'%s' line %ld: \"prompt\" must be a string", path, line);
	int rc = rl_chat_encode(c, v->valuestring, strlen(v->valuestring), ids);
	if (rc)
		return rl_error_prefix(rc, "'%s' line %ld", path, line);
	return RL_OK;
}

int rl_chat_encode_fn(void *ctx, const char *text, size_t len, int32_t **ids, int *n)
{
	const rl_chat *c = ctx;
	*ids = NULL;
	*n = 0;
	rl_ids out = {0};
	int rc = rl_chat_encode(c, text, len, &out);
	if (!rc && out.n > (size_t)INT32_MAX)
		rc = rl_error(RL_EDATA, "prompt too long");
	if (rc) {
		rl_ids_free(&out);
		return rc;
	}
	if (!out.v && !(out.v = rl_malloc(sizeof(int32_t)))) /* an empty prompt */
		return RL_ESYS;
	*ids = out.v;
	*n = (int)out.n;
	return RL_OK;
}

int rl_chat_end_ids(const rl_chat *c, rl_ids *out)
{
	const int32_t *e;
	size_t n = rl_tok_end_ids(c->tok, &e);
	int rc = rl_ids_append(out, e, n);
	if (!rc && c->tmpl.eot) {
		int32_t id = rl_tok_id(c->tok, c->tmpl.eot, strlen(c->tmpl.eot));
		int seen = id < 0;
		for (size_t i = 0; i < out->n && !seen; i++)
			seen = out->v[i] == id;
		if (!seen)
			rc = rl_ids_push(out, id);
	}
	return rc;
}

int rl_chat_lazy_encode_fn(void *ctx, const char *text, size_t len, int32_t **ids, int *n)
{
	rl_chat_lazy *l = ctx;
	*ids = NULL;
	*n = 0;
	if (l->state == 0) {
		l->rc = rl_chat_open(&l->chat, l->dir, &l->opts);
		l->state = l->rc ? -1 : 1;
		if (l->rc)
			snprintf(l->err, sizeof l->err, "%s", rl_errmsg());
	}
	if (l->state < 0)
		return rl_error(l->rc, "%s", l->err);
	return rl_chat_encode_fn(&l->chat, text, len, ids, n);
}

const char *rl_chat_lazy_how(const rl_chat_lazy *l)
{
	return l->state == 1 ? l->chat.how : "";
}

void rl_chat_lazy_close(rl_chat_lazy *l)
{
	if (l->state == 1)
		rl_chat_close(&l->chat);
	l->state = 0;
}

int rl_chat_prompts_read(rl_prompts *p, const char *path, rl_prompts_opts o, const char *dir,
			 const rl_chat_opts *opts, char *how, size_t how_cap)
{
	rl_chat_lazy chat = {.dir = dir, .opts = *opts};
	o.encode = rl_chat_lazy_encode_fn;
	o.encode_ctx = &chat;
	int rc = rl_prompts_read(p, path, &o);
	if (how_cap)
		snprintf(how, how_cap, "%s", rl_chat_lazy_how(&chat));
	rl_chat_lazy_close(&chat);
	return rc;
}
