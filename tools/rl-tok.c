/* rl-tok — what the model sees: prompts through the chat template and tokenizer.
 *
 * Reads JSON lines ({"prompt": ...} or {"ids": [...]}) and writes each item back
 * with "text" (the templated text) and "ids" (its token ids, as HuggingFace
 * tokenizers gives them); with --decode, {"ids": [...]} items get "text", the
 * decoded ids; with --train, {"prompt", "response"} items become the training text
 * (prompt + answer + end of turn) with "n_prompt", the ids of the prompt part.
 * Other fields of an item are kept. Output is written only when the whole input
 * was read without error, so a bad line leaves stdout empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "core/cli.h"
#include "core/jsonl.h"
#include "core/options.h"
#include "text/chat.h"

struct opts {
	const char *model;
	const char *prompts;
	rl_chat_opts chat;
	int decode, skip_special, train, add_special;
};

static void parse_args(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	o->prompts = "-";
	const rl_opt table[] = {
		RL_OPT_MODEL(&o->model,
			     "model directory with tokenizer.json (and tokenizer_config.json)"),
		RL_OPT_STRING('p', "prompts", "FILE", &o->prompts,
			      "JSON lines to read (default -, stdin)"),
		RL_OPTS_CHAT('t', 's', &o->chat),
		RL_OPT_FLAG(0, "add-special", &o->add_special,
			    "add the tokenizer's BOS/EOS (post-processor) around the text"),
		RL_OPT_FLAG('d', "decode", &o->decode,
			    "{\"ids\": [...]} in, {\"ids\", \"text\"} out"),
		RL_OPT_FLAG(0, "skip-special", &o->skip_special,
			    "with --decode: drop special tokens"),
		RL_OPT_FLAG(0, "train", &o->train,
			    "{\"prompt\", \"response\"} in: training text and ids, n_prompt"),
		RL_OPT_QUIET("no messages but errors"),
		RL_OPT_VERBOSE("say which template is in use and where it comes from"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-tok -m MODEL [--template FILE|NAME | --raw] [--system TEXT] [--template-kwargs "
		"JSON]\n"
		"       [--decode [--skip-special]] [--train] [-p FILE|-]",
		"Turn JSON-lines prompts into the templated text and token ids the model sees.",
		table,
		NULL,
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	if (i != argc)
		rl_usage("unexpected argument '%s'", argv[i]);
	if (!o->model)
		rl_usage("missing -m MODEL");
	if (o->chat.raw && o->chat.template_spec)
		rl_usage("--raw and --template exclude each other");
	if (o->decode && o->train)
		rl_usage("--decode and --train exclude each other");
	if (o->skip_special && !o->decode)
		rl_usage("--skip-special goes with --decode");
	if (o->decode && (o->chat.raw || o->chat.template_spec || o->chat.system ||
			  o->chat.kwargs || o->add_special))
		rl_usage("--decode takes no template options");
	if (o->add_special && !o->chat.raw)
		rl_usage("--add-special goes with --raw (the templates carry their own BOS)");
}

static cJSON *ids_json(const int32_t *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
	return a;
}

static void set(cJSON *item, const char *key, cJSON *v)
{
	if (cJSON_GetObjectItemCaseSensitive(item, key))
		cJSON_ReplaceItemInObjectCaseSensitive(item, key, v);
	else
		cJSON_AddItemToObject(item, key, v);
}

/* item's string field key (U+0000 included: the reader keeps it), malloc'd. */
static int string_field(const cJSON *item, const char *key, const char *path, long line, char **out,
			size_t *len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, key);
	int rc = rl_json_string(v, out, len);
	if (rc == RL_EDATA)
		return rl_error(RL_EDATA, "'%s' line %ld: %s \"%s\" string", path, line,
				v ? "expected a" : "no", key);
	return rc;
}

/* The template keywords of a conversation line: its fields other than
 * "messages", "add_generation_prompt" and the output fields. */
static int conversation_kwargs(const cJSON *item, const char *path, long line, cJSON **out)
{
	static const char *const own[] = {"messages", "add_generation_prompt", "text", "ids",
					  "n_prompt"};
	*out = cJSON_CreateObject();
	if (!*out)
		return rl_error(RL_ESYS, "out of memory");
	for (const cJSON *e = item->child; e; e = e->next) {
		int skip = 0;
		for (size_t k = 0; k < sizeof own / sizeof own[0]; k++)
			skip |= strcmp(e->string, own[k]) == 0;
		if (skip)
			continue;
		if (strcmp(e->string, "prompt") == 0 || strcmp(e->string, "tools") == 0 ||
		    strcmp(e->string, "documents") == 0) {
			cJSON_Delete(*out);
			*out = NULL;
			return rl_error(
				RL_EDATA,
				"'%s' line %ld: \"%s\" with \"messages\" is not supported%s", path,
				line, e->string,
				e->string[0] == 'p' ? ""
						    : " (templates are rendered with "
						      "tools=None, documents=None)");
		}
		cJSON *d = cJSON_Duplicate(e, 1);
		if (!d) {
			cJSON_Delete(*out);
			*out = NULL;
			return rl_error(RL_ESYS, "out of memory");
		}
		cJSON_AddItemToObject(*out, e->string, d);
	}
	return RL_OK;
}

/* A {"messages": [...]} line: the rendering (or, with --train, the training
 * text of a conversation ending with the answer) and its ids. */
static int conversation(const struct opts *o, const rl_chat *c, const cJSON *item, const char *path,
			long line, char **text, size_t *len, rl_ids *ids, size_t *n_prompt,
			int *prefix)
{
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(item, "messages"),
		    *gen = cJSON_GetObjectItemCaseSensitive(item, "add_generation_prompt");
	if (o->chat.system)
		return rl_error(RL_EDATA,
				"'%s' line %ld: --system applies to \"prompt\" lines (a "
				"conversation carries its own system message)",
				path, line);
	if (gen && !cJSON_IsBool(gen))
		return rl_error(RL_EDATA,
				"'%s' line %ld: \"add_generation_prompt\" must be "
				"true or false",
				path, line);
	cJSON *kw;
	int rc = conversation_kwargs(item, path, line, &kw);
	if (rc)
		return rc;
	if (o->train) {
		if (gen && cJSON_IsTrue(gen))
			rc = rl_error(RL_EDATA,
				      "'%s' line %ld: --train renders without the generation "
				      "prompt (\"add_generation_prompt\": true)",
				      path, line);
		if (!rc)
			rc = rl_chat_encode_train_messages(c, msgs, kw, ids, n_prompt, text, len,
							   prefix);
	} else {
		rc = rl_chat_render(c, msgs, cJSON_IsTrue(gen), kw, text, len);
		if (!rc)
			rc = rl_tok_encode(c->tok, *text, *len, 0, ids);
	}
	cJSON_Delete(kw);
	return rc;
}

/* One item: fills "text" and "ids" (and "n_prompt" with --train). *fallbacks
 * counts the training texts split by chat.h's fallback rule. */
static int process(const struct opts *o, const rl_chat *c, cJSON *item, const char *path, long line,
		   long *fallbacks)
{
	rl_ids ids = {0};
	char *text = NULL;
	size_t len = 0, n_prompt = 0;
	int rc = RL_OK, prefix = 1;
	if (!cJSON_IsObject(item))
		return rl_error(RL_EDATA, "'%s' line %ld: expected a JSON object", path, line);
	const cJSON *idv = cJSON_GetObjectItemCaseSensitive(item, "ids");
	if (o->decode || (idv && !o->train)) {
		/* ids -> text */
		if (!idv)
			return rl_error(RL_EDATA, "'%s' line %ld: no \"ids\" to decode", path,
					line);
		rc = rl_chat_item(c, item, path, line, &ids);
		if (!rc)
			rc = rl_tok_decode(c->tok, ids.v, ids.n, o->skip_special, &text, &len);
	} else if (cJSON_GetObjectItemCaseSensitive(item, "messages")) {
		rc = conversation(o, c, item, path, line, &text, &len, &ids, &n_prompt, &prefix);
	} else if (o->train) {
		char *prompt = NULL, *answer = NULL;
		size_t plen, alen;
		if (!(rc = string_field(item, "prompt", path, line, &prompt, &plen)) &&
		    !(rc = string_field(item, "response", path, line, &answer, &alen)))
			rc = rl_chat_encode_train(c, prompt, plen, answer, alen, &ids, &n_prompt,
						  &text, &len, &prefix);
		free(prompt);
		free(answer);
	} else {
		char *prompt = NULL;
		size_t plen;
		if (!(rc = string_field(item, "prompt", path, line, &prompt, &plen))) {
			rc = rl_chat_text(c, prompt, plen, &text, &len);
			if (!rc)
				rc = rl_tok_encode(c->tok, text, len,
						   o->add_special ? RL_TOK_ADD_SPECIAL : 0, &ids);
		}
		free(prompt);
	}
	if (rc && !strstr(rl_errmsg(), " line "))
		rc = rl_error_prefix(rc, "'%s' line %ld", path, line);
	if (!rc) {
		cJSON *t = rl_json_string_item(text, len), *a = ids_json(ids.v, ids.n);
		if (!t || !a) {
			cJSON_Delete(t);
			cJSON_Delete(a);
			rc = rl_error(RL_ESYS, "out of memory");
		} else {
			set(item, "text", t);
			set(item, "ids", a);
			if (o->train)
				set(item, "n_prompt", cJSON_CreateNumber((double)n_prompt));
			*fallbacks += !prefix;
		}
	}
	free(text);
	rl_ids_free(&ids);
	return rc;
}

int main(int argc, char **argv)
{
	rl_cli_init("rl-tok", argc, argv);
	struct opts o;
	parse_args(&o, argc, argv);
	rl_chat c;
	int rc;
	if (o.decode) {
		rl_tokenizer *t;
		rl_chat_opts raw = {.raw = 1};
		if ((rc = rl_tokenizer_load(o.model, &t)) || (rc = rl_chat_init(&c, t, NULL, &raw)))
			rl_die_err(rc);
	} else if ((rc = rl_chat_open(&c, o.model, &o.chat))) {
		rl_die_err(rc);
	} else {
		rl_note("%s", c.info.how);
		if (*c.info.note)
			rl_info("%s", c.info.note);
		if (*c.info.warning)
			rl_warn("%s", c.info.warning);
	}
	rl_jsonl j;
	if ((rc = rl_jsonl_open(&j, o.prompts)))
		rl_die_err(rc);
	j.keep_nul = 1; /* U+0000 is text, as in tokenizers */
	/* everything goes to memory first: a bad line leaves stdout empty */
	char *out = NULL;
	size_t out_len = 0;
	FILE *mem = open_memstream(&out, &out_len);
	if (!mem)
		rl_die(RL_ESYS, "cannot buffer the output");
	long n = 0, fallbacks = 0;
	for (;;) {
		cJSON *item;
		if ((rc = rl_jsonl_next(&j, &item)) || !item)
			break;
		rc = process(&o, &c, item, j.path, j.lineno, &fallbacks);
		if (!rc)
			rc = rl_jsonl_write(mem, item);
		cJSON_Delete(item);
		if (rc)
			break;
		n++;
	}
	rl_jsonl_close(&j);
	rl_chat_close(&c);
	if (fclose(mem) != 0 && !rc)
		rc = rl_error(RL_ESYS, "cannot buffer the output");
	if (rc) {
		free(out);
		rl_die_err(rc);
	}
	if (out_len && fwrite(out, 1, out_len, stdout) != out_len) {
		free(out);
		rl_die(RL_ESYS, "write error on stdout");
	}
	free(out);
	if (fallbacks)
		rl_warn("%ld of %ld training texts: the template's generation prompt is not a "
			"prefix of the whole text; n_prompt counts the ids the two renderings "
			"share "
			"(rl-tok(1))",
			fallbacks, n);
	rl_note("%ld items", n);
	return rl_cli_exit();
}
