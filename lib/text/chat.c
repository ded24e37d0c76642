/* chat.c — chat template + tokenizer (see chat.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/jsonl.h"
#include "text/chat.h"
#include "text/chat_source.h"

/* A prompt no template rewrites: control characters that Python's str.strip()
 * keeps and no tokenizer merges with template text around them. */
static const char SENTINEL[] = "\x01\x02\x03";

/* ---- choosing the template ---- */

static int has_jinja_tag(const char *s)
{
	return strstr(s, "{{") || strstr(s, "{%") || strstr(s, "{#");
}

static int parse_jinja(rl_chat *c, const char *src, size_t len, const char *name)
{
	return rl_jinja_parse(src, len, name, &c->jinja);
}

static int template_file(rl_chat *c, const char *path, const rl_chat_source *own)
{
	char *buf;
	size_t len;
	int rc = rl_read_input(path, &buf, &len); /* a user's file: may be a pipe */
	if (rc)
		return rc;
	if (strlen(buf) != len || !rl_utf8_valid(buf, len)) {
		free(buf);
		return rl_error(RL_EDATA, "'%s': a template file must be UTF-8 text", path);
	}
	if (has_jinja_tag(buf)) {
		snprintf(c->info.how, sizeof c->info.how,
			 "template: Jinja file '%.300s' (--template)%s", path,
			 own->text ? ", in place of the model's own" : "");
		rc = parse_jinja(c, buf, len, path);
	} else if (strstr(buf, "{prompt}")) {
		snprintf(c->info.how, sizeof c->info.how,
			 "template: file '%.300s' in the {prompt} format (--template)", path);
		snprintf(c->info.note, sizeof c->info.note,
			 "'%.300s': no Jinja tag: read in the older {prompt} template format",
			 path);
		rc = rl_template_text(path, buf, len, &c->tmpl); /* read once: a pipe */
	} else {
		rc = rl_error(RL_EDATA,
			      "'%s': neither a Jinja template (no {{, {%% or {# tag) nor one with "
			      "{prompt}",
			      path);
	}
	free(buf);
	return rc;
}

static int template_spec(rl_chat *c, const char *spec, const rl_chat_source *own)
{
	int rc = rl_template_builtin(spec, &c->tmpl);
	if (rc != RL_NO) {
		snprintf(c->info.how, sizeof c->info.how, "template: built-in %s (--template)",
			 spec);
		if (!rc && own->text)
			snprintf(c->info.warning, sizeof c->info.warning,
				 "--template %s: realign's built-in copy of the reference's "
				 "template, in place of the model's own ('%.300s')",
				 spec, own->path);
		return rc;
	}
	if (!rl_path_present(spec)) {
		char names[200] = "";
		for (int i = 0; rl_template_names[i]; i++) {
			strcat(names, i ? ", " : "");
			strcat(names, rl_template_names[i]);
		}
		return rl_error(RL_USAGE, "'%s': neither a built-in template (%s) nor a file", spec,
				names);
	}
	return template_file(c, spec, own);
}

static int choose_template(rl_chat *c, const rl_chat_opts *o, const rl_chat_source *own,
			   const char *dir)
{
	if (o->raw) {
		snprintf(c->info.how, sizeof c->info.how,
			 "template: none (--raw: the prompt as it is)");
		return rl_template_raw(&c->tmpl);
	}
	if (o->template_spec)
		return template_spec(c, o->template_spec, own);
	if (!own->text)
		return rl_error(RL_EDATA,
				"'%s': the model has no chat template (no chat_template.jinja, no "
				"chat_template in tokenizer_config.json; use --template FILE|NAME "
				"or --raw)",
				dir ? dir : rl_tok_name(c->tok));
	snprintf(c->info.how, sizeof c->info.how, "template: the model's own, from '%.400s'",
		 own->path);
	char name[600];
	snprintf(name, sizeof name, "%s%s", own->path,
		 strcmp(own->of, "tokenizer_config.json") == 0 ? " chat_template" : "");
	return parse_jinja(c, own->text, own->len, name);
}

/* RL_STRFTIME_NOW=YYYY-MM-DDTHH:MM:SS pins strftime_now's clock. */
static int pin_clock(rl_chat *c)
{
	const char *s = getenv("RL_STRFTIME_NOW");
	if (!s || !*s)
		return RL_OK;
	int y, mo, d, h, mi, se, n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 || s[n] ||
	    mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 || y < 1)
		return rl_error(RL_USAGE,
				"RL_STRFTIME_NOW='%s': expected a local time YYYY-MM-DDTHH:MM:SS",
				s);
	c->now = (struct tm){.tm_year = y - 1900,
			     .tm_mon = mo - 1,
			     .tm_mday = d,
			     .tm_hour = h,
			     .tm_min = mi,
			     .tm_sec = se};
	c->pinned = 1;
	return RL_OK;
}

int rl_chat_init(rl_chat *c, rl_tokenizer *tok, const char *dir, const rl_chat_opts *o)
{
	memset(c, 0, sizeof *c);
	c->tok = tok;
	rl_chat_source own = {0};
	int rc = pin_clock(c);
	if (!rc && dir)
		rc = rl_chat_source_read(dir, &own);
	if (!rc)
		rc = choose_template(c, o, &own, dir);
	if (!rc && !(c->special = own.special ? own.special : cJSON_CreateObject()))
		rc = rl_error(RL_ESYS, "out of memory");
	if (!rc)
		own.special = NULL; /* taken over */
	if (!rc && o->kwargs &&
	    (rl_json_parse(o->kwargs, strlen(o->kwargs), "template keywords", &c->kwargs) ||
	     !cJSON_IsObject(c->kwargs)))
		rc = rl_error(RL_USAGE, "template keywords '%s': not a JSON object", o->kwargs);
	if (!rc && o->kwargs && !c->jinja)
		rc = rl_error(RL_USAGE,
			      "template keywords need a Jinja template (the %s template "
			      "takes none)",
			      c->tmpl.name);
	if (!rc && o->system && !(c->system = rl_strdup(o->system)))
		rc = RL_ESYS;
	rl_chat_source_free(&own);
	if (rc)
		rl_chat_close(c);
	return rc;
}

int rl_chat_open(rl_chat *c, const char *dir, const rl_chat_opts *o)
{
	rl_tokenizer *tok;
	memset(c, 0, sizeof *c);
	int rc = rl_tokenizer_load(dir, &tok);
	return rc ? rc : rl_chat_init(c, tok, dir, o);
}

void rl_chat_close(rl_chat *c)
{
	rl_tokenizer_free(c->tok);
	rl_jinja_free(c->jinja);
	rl_template_free(&c->tmpl);
	cJSON_Delete(c->special);
	cJSON_Delete(c->kwargs);
	free(c->system);
	memset(c, 0, sizeof *c);
}

/* ---- rendering ---- */

/* transformers' message normalisation: members that are null are dropped; the
 * first non-null of reasoning_content, thinking, reasoning is copied to
 * "thinking" (placed first) and "reasoning_content" (placed last). */
static cJSON *normalise_message(const cJSON *m)
{
	static const char *const reasoning[] = {"reasoning_content", "thinking", "reasoning"};
	const cJSON *r = NULL;
	for (int k = 0; k < 3 && !r; k++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, reasoning[k]);
		if (v && !cJSON_IsNull(v))
			r = v;
	}
	cJSON *out = cJSON_CreateObject();
	if (!out)
		return NULL;
	if (r && !cJSON_AddItemToObject(out, "thinking", cJSON_Duplicate(r, 1)))
		goto fail;
	for (const cJSON *e = m->child; e; e = e->next) {
		if (cJSON_IsNull(e) || !e->string)
			continue;
		cJSON *d = cJSON_Duplicate(e, 1);
		if (!d)
			goto fail;
		if (cJSON_GetObjectItemCaseSensitive(out, e->string))
			cJSON_ReplaceItemInObjectCaseSensitive(out, e->string, d);
		else
			cJSON_AddItemToObject(out, e->string, d);
	}
	if (r) {
		cJSON *d = cJSON_Duplicate(r, 1);
		if (!d)
			goto fail;
		if (cJSON_GetObjectItemCaseSensitive(out, "reasoning_content"))
			cJSON_ReplaceItemInObjectCaseSensitive(out, "reasoning_content", d);
		else
			cJSON_AddItemToObject(out, "reasoning_content", d);
	}
	return out;
fail:
	cJSON_Delete(out);
	return NULL;
}

static int normalise_messages(const cJSON *messages, cJSON **out)
{
	*out = NULL;
	if (!cJSON_IsArray(messages))
		return rl_error(RL_EDATA, "\"messages\" must be a list of messages");
	if (!messages->child)
		return rl_error(RL_EDATA, "an empty conversation (\"messages\" has no message)");
	cJSON *a = cJSON_CreateArray();
	if (!a)
		return rl_error(RL_ESYS, "out of memory");
	int k = 0;
	for (const cJSON *m = messages->child; m; m = m->next, k++) {
		if (!cJSON_IsObject(m)) {
			cJSON_Delete(a);
			return rl_error(RL_EDATA, "message %d is not an object", k);
		}
		cJSON *n = normalise_message(m);
		if (!n) {
			cJSON_Delete(a);
			return rl_error(RL_ESYS, "out of memory");
		}
		cJSON_AddItemToArray(a, n);
	}
	*out = a;
	return RL_OK;
}

/* opts.kwargs, then kwargs over them; *out is NULL when both are. */
static int merge_kwargs(const rl_chat *c, const cJSON *kwargs, cJSON **out)
{
	*out = NULL;
	if (kwargs && !cJSON_IsObject(kwargs))
		return rl_error(RL_EDATA, "template keywords must be a JSON object");
	if (!c->kwargs && !kwargs)
		return RL_OK;
	cJSON *m = c->kwargs ? cJSON_Duplicate(c->kwargs, 1) : cJSON_CreateObject();
	for (const cJSON *e = kwargs ? kwargs->child : NULL; m && e; e = e->next) {
		cJSON *d = cJSON_Duplicate(e, 1);
		if (!d) {
			cJSON_Delete(m);
			m = NULL;
			break;
		}
		if (cJSON_GetObjectItemCaseSensitive(m, e->string))
			cJSON_ReplaceItemInObjectCaseSensitive(m, e->string, d);
		else
			cJSON_AddItemToObject(m, e->string, d);
	}
	if (!m)
		return rl_error(RL_ESYS, "out of memory");
	*out = m;
	return RL_OK;
}

/* Renders already normalised messages through the Jinja template. */
static int render_jinja(const rl_chat *c, const cJSON *messages, int gen, const cJSON *kwargs,
			char **text, size_t *len)
{
	cJSON *kw;
	int rc = merge_kwargs(c, kwargs, &kw);
	if (rc)
		return rc;
	cJSON *vars = rl_jinja_chat_vars(messages, gen, c->special, kw);
	cJSON_Delete(kw);
	if (!vars)
		return rl_error(RL_ESYS, "out of memory");
	rl_jinja_opts jo = {.now = c->pinned ? &c->now : NULL};
	rc = rl_jinja_render(c->jinja, vars, &jo, text, len);
	cJSON_Delete(vars);
	return rc;
}

/* Appends {"role": role, "content": the len bytes at content}; content with
 * U+0000 becomes a raw string item (core/jsonl.h), which jinja.h reads whole. */
static int add_message(cJSON *a, const char *role, const char *content, size_t len)
{
	cJSON *m = cJSON_CreateObject(), *v = rl_json_string_item(content, len);
	if (!m || !v || !cJSON_AddStringToObject(m, "role", role) ||
	    !cJSON_AddItemToObject(m, "content", v)) {
		cJSON_Delete(m);
		cJSON_Delete(v);
		return rl_error(RL_ESYS, "out of memory");
	}
	cJSON_AddItemToArray(a, m);
	return RL_OK;
}

/* [system?, user(prompt), assistant(answer)?] */
static int one_turn(const rl_chat *c, const char *prompt, size_t plen, const char *answer,
		    size_t alen, cJSON **out)
{
	cJSON *a = cJSON_CreateArray();
	int rc = a ? RL_OK : rl_error(RL_ESYS, "out of memory");
	if (!rc && c->system)
		rc = add_message(a, "system", c->system, strlen(c->system));
	if (!rc)
		rc = add_message(a, "user", prompt, plen);
	if (!rc && answer)
		rc = add_message(a, "assistant", answer, alen);
	if (rc) {
		cJSON_Delete(a);
		a = NULL;
	}
	*out = a;
	return rc;
}

/* The one-turn text: the generation prompt (answer NULL) or the training text. */
static int turn_text(const rl_chat *c, const char *prompt, size_t plen, const char *answer,
		     size_t alen, char **text, size_t *len)
{
	*text = NULL;
	*len = 0;
	if (!c->jinja)
		return rl_template_render(&c->tmpl, c->system, prompt, plen, answer, alen, text,
					  len, NULL);
	cJSON *m;
	int rc = one_turn(c, prompt, plen, answer, alen, &m);
	if (!rc)
		rc = render_jinja(c, m, !answer, NULL, text, len);
	cJSON_Delete(m);
	return rc;
}

int rl_chat_text(const rl_chat *c, const char *prompt, size_t len, char **text, size_t *text_len)
{
	return turn_text(c, prompt, len, NULL, 0, text, text_len);
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

int rl_chat_render(const rl_chat *c, const cJSON *messages, int add_generation_prompt,
		   const cJSON *kwargs, char **text, size_t *len)
{
	*text = NULL;
	*len = 0;
	if (!c->jinja)
		return rl_error(RL_EDATA,
				"a conversation needs a Jinja chat template (the %s template "
				"takes one prompt)",
				c->tmpl.name ? c->tmpl.name : "chosen");
	cJSON *m;
	int rc = normalise_messages(messages, &m);
	if (!rc)
		rc = render_jinja(c, m, add_generation_prompt, kwargs, text, len);
	cJSON_Delete(m);
	return rc;
}

/* ---- training text ---- */

/* Appends the ids of whole[0..wlen) to ids; *n_prompt: the longest common prefix
 * of its ids and prompt's (see chat.h). */
static int split_encode(const rl_chat *c, const char *prompt, size_t plen, const char *whole,
			size_t wlen, rl_ids *ids, size_t *n_prompt, int *prefix)
{
	rl_ids p = {0};
	size_t mark = ids->n;
	if (prefix)
		*prefix = plen <= wlen && memcmp(prompt, whole, plen) == 0;
	int rc = rl_tok_encode(c->tok, prompt, plen, 0, &p);
	if (!rc)
		rc = rl_tok_encode(c->tok, whole, wlen, 0, ids);
	if (!rc) {
		size_t k = 0;
		while (k < p.n && mark + k < ids->n && p.v[k] == ids->v[mark + k])
			k++;
		*n_prompt = k;
	}
	rl_ids_free(&p);
	return rc;
}

int rl_chat_encode_train(const rl_chat *c, const char *prompt, size_t prompt_len,
			 const char *answer, size_t answer_len, rl_ids *ids, size_t *n_prompt,
			 char **text_out, size_t *text_len, int *prefix)
{
	char *p = NULL, *w = NULL;
	size_t plen, wlen;
	if (text_out)
		*text_out = NULL;
	int rc = turn_text(c, prompt, prompt_len, NULL, 0, &p, &plen);
	if (!rc)
		rc = turn_text(c, prompt, prompt_len, answer, answer_len, &w, &wlen);
	if (!rc)
		rc = split_encode(c, p, plen, w, wlen, ids, n_prompt, prefix);
	free(p);
	if (!rc && text_len)
		*text_len = wlen;
	if (!rc && text_out)
		*text_out = w;
	else
		free(w);
	return rc;
}

int rl_chat_encode_train_messages(const rl_chat *c, const cJSON *messages, const cJSON *kwargs,
				  rl_ids *ids, size_t *n_prompt, char **text_out, size_t *text_len,
				  int *prefix)
{
	char *p = NULL, *w = NULL;
	size_t plen = 0, wlen = 0;
	if (text_out)
		*text_out = NULL;
	const cJSON *last = cJSON_IsArray(messages)
				    ? cJSON_GetArrayItem(messages, cJSON_GetArraySize(messages) - 1)
				    : NULL;
	const cJSON *role = cJSON_GetObjectItemCaseSensitive(last, "role");
	if (!cJSON_IsString(role) || strcmp(role->valuestring, "assistant") != 0)
		return rl_error(RL_EDATA,
				"a training conversation ends with the assistant's answer");
	if (cJSON_GetArraySize(messages) < 2)
		return rl_error(RL_EDATA,
				"a training conversation needs a prompt before the answer");
	cJSON *head = cJSON_Duplicate(messages, 1);
	if (!head)
		return rl_error(RL_ESYS, "out of memory");
	cJSON_DeleteItemFromArray(head, cJSON_GetArraySize(head) - 1);
	int rc = rl_chat_render(c, head, 1, kwargs, &p, &plen);
	if (!rc)
		rc = rl_chat_render(c, messages, 0, kwargs, &w, &wlen);
	if (!rc)
		rc = split_encode(c, p, plen, w, wlen, ids, n_prompt, prefix);
	cJSON_Delete(head);
	free(p);
	if (!rc && text_len)
		*text_len = wlen;
	if (!rc && text_out)
		*text_out = w;
	else
		free(w);
	return rc;
}

/* ---- what generation needs: the tail and the end of turn ---- */

/* The last SENTINEL in the len bytes at text (U+0000 may be among them). */
static const char *last_sentinel(const char *text, size_t len)
{
	const char *found = NULL, *end = text + len;
	for (const char *p = text;
	     (p = memmem(p, (size_t)(end - p), SENTINEL, sizeof SENTINEL - 1)); p++)
		found = p;
	return found;
}

int rl_chat_tail(const rl_chat *c, rl_ids *tail)
{
	char *text;
	size_t len;
	int rc = rl_chat_text(c, SENTINEL, sizeof SENTINEL - 1, &text, &len);
	if (rc)
		return rl_error_prefix(rc,
				       "rendering a sentinel prompt to find the template's tail");
	const char *p = last_sentinel(text, len);
	if (!p) {
		rc = rl_error(RL_EDATA,
			      "the chat template rewrites the prompt's text, so where the prompt "
			      "ends cannot be found (needed to cap prompts)");
	} else {
		p += sizeof SENTINEL - 1;
		rc = rl_tok_encode(c->tok, p, len - (size_t)(p - text), 0, tail);
	}
	free(text);
	return rc;
}

static int add_unique(rl_ids *out, int32_t id)
{
	for (size_t i = 0; i < out->n; i++)
		if (out->v[i] == id)
			return RL_OK;
	return rl_ids_push(out, id);
}

/* The first special token after a sentinel answer, or -1. */
static int end_of_turn(const rl_chat *c, int32_t *id)
{
	*id = -1;
	if (!c->jinja && strcmp(c->tmpl.name, "raw") == 0)
		return RL_OK;
	char *text;
	size_t len;
	int rc = turn_text(c, "Hi", 2, SENTINEL, sizeof SENTINEL - 1, &text, &len);
	if (rc)
		return rl_error_prefix(rc, "rendering a sentinel answer to find the end of turn");
	const char *p = last_sentinel(text, len);
	rl_ids after = {0};
	if (p) {
		p += sizeof SENTINEL - 1;
		rc = rl_tok_encode(c->tok, p, len - (size_t)(p - text), 0, &after);
	}
	for (size_t i = 0; !rc && i < after.n && *id < 0; i++)
		if (rl_tok_is_special(c->tok, after.v[i]))
			*id = after.v[i];
	rl_ids_free(&after);
	free(text);
	return rc;
}

int rl_chat_end_ids(const rl_chat *c, rl_ids *out)
{
	const int32_t *e;
	size_t n = rl_tok_end_ids(c->tok, &e);
	int32_t eot;
	int rc = RL_OK;
	for (size_t i = 0; i < n && !rc; i++)
		rc = add_unique(out, e[i]);
	if (!rc)
		rc = end_of_turn(c, &eot);
	if (!rc && eot >= 0)
		rc = add_unique(out, eot);
	return rc;
}

/* ---- prompt items and files ---- */

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

void rl_chat_lazy_close(rl_chat_lazy *l)
{
	if (l->state == 1)
		rl_chat_close(&l->chat);
	l->state = 0;
}

int rl_chat_prompts_read(rl_prompts *p, const char *path, rl_prompts_opts o, const char *dir,
			 const rl_chat_opts *opts, rl_chat_info *info)
{
	rl_chat_lazy chat = {.dir = dir, .opts = *opts};
	o.encode = rl_chat_lazy_encode_fn;
	o.encode_ctx = &chat;
	int rc = rl_prompts_read(p, path, &o);
	if (info) {
		memset(info, 0, sizeof *info);
		if (chat.state == 1)
			*info = chat.chat.info;
	}
	rl_chat_lazy_close(&chat);
	return rc;
}
