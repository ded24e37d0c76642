/* tokenizer.c — loading tokenizer.json; added tokens; the encode and decode drivers.
 *
 * Loading validates the whole file before use: every vocabulary id is an integer
 * in [0, 2^31 - 1), every merge names tokens of the vocabulary and so does its
 * concatenation, every component has a known type. An empty merges list is an
 * error (a BPE without merges is a corrupt file, not a tokenizer).
 *
 * Added tokens get their ids as tokenizers' AddedVocabulary::add_tokens gives
 * them: the id of the same string in the model's vocabulary, else the next free id
 * after the vocabulary (the "id" fields in the file are not trusted, as in
 * tokenizers). They are found in the text leftmost-longest, in one pass.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/jsonl.h"
#include "text/tokenizer_int.h"

/* ---- JSON helpers ------------------------------------------------------------------ */
static const cJSON *jget(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return v && !cJSON_IsNull(v) ? v : NULL;
}

static int jbool(const cJSON *o, const char *key, int dflt)
{
	const cJSON *v = jget(o, key);
	if (!v)
		return dflt;
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v);
	return dflt;
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = jget(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jint(const cJSON *v, long long lo, long long hi, long long *out)
{
	if (!cJSON_IsNumber(v))
		return 0;
	double d = v->valuedouble;
	if (!(d >= (double)lo && d <= (double)hi) || d != (double)(long long)d)
		return 0;
	*out = (long long)d;
	return 1;
}

/* Quoted name for json.h's messages. */
static int check_json(const char *text, size_t len, const cJSON *root, const char *name)
{
	size_t n = strlen(name) + 3;
	char *q = rl_malloc(n);
	if (!q)
		return RL_ESYS;
	snprintf(q, n, "'%s'", name);
	int rc = rl_json_check(text, len, root, q);
	free(q);
	return rc;
}

static int parse_json(const char *text, size_t len, const char *name, const char *what, cJSON **out)
{
	*out = cJSON_ParseWithLength(text, len);
	if (*out) {
		int rc = check_json(text, len, *out, name);
		if (rc) {
			cJSON_Delete(*out);
			*out = NULL;
		}
		return rc;
	}
	const char *e = cJSON_GetErrorPtr();
	long line = 1;
	if (e && e >= text && e <= text + len)
		for (const char *p = text; p < e; p++)
			line += *p == '\n';
	return rl_error(RL_EDATA, "'%s': malformed JSON in %s (near line %ld)", name, what, line);
}

static char *dupn(const char *s, size_t n)
{
	char *p = rl_malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

/* First code point of a one-char string, or 0 if s is not exactly one char. */
static uint32_t one_char(const char *s)
{
	if (!s || !*s)
		return 0;
	uint32_t cp;
	size_t n = strlen(s);
	int l = tk_utf8_next(s, n, &cp);
	return (size_t)l == n ? cp : 0;
}

/* ---- components ------------------------------------------------------------------- */
static int parse_pattern(const cJSON *o, tk_regex *re, const char *name, const char *what)
{
	const cJSON *p = jget(o, "pattern");
	const char *lit = jstr(p, "String"), *rx = jstr(p, "Regex");
	if (lit) {
		if (!*lit)
			return rl_error(RL_EDATA, "'%s': %s with an empty pattern", name, what);
		return tk_regex_literal(re, lit, strlen(lit));
	}
	if (rx) {
		int rc = tk_regex_compile(re, rx, strlen(rx), what);
		return rc ? rl_error_prefix(rc, "'%s'", name) : RL_OK;
	}
	return rl_error(RL_EDATA, "'%s': %s without a String or Regex pattern", name, what);
}

static int add_norm(rl_tokenizer *t, const cJSON *o)
{
	const char *type = jstr(o, "type");
	if (!type)
		return rl_error(RL_EDATA, "'%s': normalizer without a type", t->name);
	if (strcmp(type, "Sequence") == 0) {
		const cJSON *l = jget(o, "normalizers"), *x;
		if (!cJSON_IsArray(l))
			return rl_error(RL_EDATA, "'%s': Sequence normalizer without a list",
					t->name);
		cJSON_ArrayForEach(x, l)
		{
			int rc = add_norm(t, x);
			if (rc)
				return rc;
		}
		return RL_OK;
	}
	tk_norm z = {0};
	static const struct {
		const char *name;
		int kind;
	} simple[] = {{"NFC", NZ_NFC},
		      {"NFD", NZ_NFD},
		      {"NFKC", NZ_NFKC},
		      {"NFKD", NZ_NFKD},
		      {"Lowercase", NZ_LOWER},
		      {"StripAccents", NZ_STRIP_ACCENTS},
		      {"ByteLevel", NZ_BYTELEVEL},
		      {"Strip", NZ_STRIP},
		      {"Prepend", NZ_PREPEND},
		      {"Replace", NZ_REPLACE}};
	z.kind = -1;
	for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
		if (strcmp(type, simple[i].name) == 0)
			z.kind = simple[i].kind;
	if (z.kind < 0)
		return rl_error(RL_EDATA, "'%s': unsupported normalizer '%s'", t->name, type);
	int rc = RL_OK;
	if (z.kind == NZ_STRIP) {
		z.left = jbool(o, "strip_left", 1);
		z.right = jbool(o, "strip_right", 1);
	} else if (z.kind == NZ_PREPEND || z.kind == NZ_REPLACE) {
		const char *c = jstr(o, z.kind == NZ_PREPEND ? "prepend" : "content");
		if (!c)
			return rl_error(RL_EDATA, "'%s': %s normalizer without its text", t->name,
					type);
		z.content_len = strlen(c);
		if (!(z.content = dupn(c, z.content_len)))
			return RL_ESYS;
		if (z.kind == NZ_REPLACE)
			rc = parse_pattern(o, &z.re, t->name, "Replace normalizer");
	}
	if (!rc && t->n_norms >= 64)
		rc = rl_error(RL_EDATA, "'%s': too many normalizers", t->name);
	if (!rc) {
		tk_norm *v = rl_realloc_array(t->norms, t->n_norms + 1, sizeof *v);
		if (!v)
			rc = RL_ESYS;
		else {
			t->norms = v;
			t->norms[t->n_norms++] = z;
			return RL_OK;
		}
	}
	tk_norm_free(&z);
	return rc;
}

static int parse_behavior(const cJSON *o, const char *dflt, int *out)
{
	const char *b = jstr(o, "behavior");
	if (!b)
		b = dflt;
	static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
					    "MergedWithNext", "Contiguous"};
	for (int i = 0; i < 5; i++)
		if (strcmp(b, names[i]) == 0 || (i == 1 && strcmp(b, "isolated") == 0)) {
			*out = i;
			return RL_OK;
		}
	return RL_EDATA;
}

static int add_pretok(rl_tokenizer *t, const cJSON *o)
{
	const char *type = jstr(o, "type");
	if (!type)
		return rl_error(RL_EDATA, "'%s': pre-tokenizer without a type", t->name);
	if (strcmp(type, "Sequence") == 0) {
		const cJSON *l = jget(o, "pretokenizers"), *x;
		if (!cJSON_IsArray(l))
			return rl_error(RL_EDATA, "'%s': Sequence pre-tokenizer without a list",
					t->name);
		cJSON_ArrayForEach(x, l)
		{
			int rc = add_pretok(t, x);
			if (rc)
				return rc;
		}
		return RL_OK;
	}
	tk_pretok p = {0};
	int rc = RL_OK;
	if (strcmp(type, "ByteLevel") == 0) {
		p.kind = PT_BYTELEVEL;
		p.add_prefix_space = jbool(o, "add_prefix_space", 1);
		p.use_regex = jbool(o, "use_regex", 1);
	} else if (strcmp(type, "Split") == 0) {
		p.kind = PT_SPLIT;
		p.invert = jbool(o, "invert", 0);
		if (parse_behavior(o, "", &p.behavior))
			return rl_error(RL_EDATA, "'%s': Split with an unknown behavior", t->name);
		rc = parse_pattern(o, &p.re, t->name, "Split pre-tokenizer");
	} else if (strcmp(type, "Metaspace") == 0) {
		p.kind = PT_METASPACE;
		p.ch = one_char(jstr(o, "replacement"));
		if (!p.ch)
			return rl_error(RL_EDATA, "'%s': Metaspace replacement must be one char",
					t->name);
		const char *s = jstr(o, "prepend_scheme");
		p.scheme = PS_ALWAYS;
		if (s && strcmp(s, "first") == 0)
			p.scheme = PS_FIRST;
		else if (s && strcmp(s, "never") == 0)
			p.scheme = PS_NEVER;
		else if (s && strcmp(s, "always") != 0)
			return rl_error(RL_EDATA, "'%s': unknown Metaspace prepend_scheme '%s'",
					t->name, s);
		if (!jbool(o, "add_prefix_space", 1))
			p.scheme = PS_NEVER;
		p.split = jbool(o, "split", 1);
	} else if (strcmp(type, "Whitespace") == 0) {
		p.kind = PT_WHITESPACE;
	} else if (strcmp(type, "WhitespaceSplit") == 0) {
		p.kind = PT_WSPLIT;
	} else if (strcmp(type, "Digits") == 0) {
		p.kind = PT_DIGITS;
		p.individual = jbool(o, "individual_digits", 0);
	} else if (strcmp(type, "Punctuation") == 0) {
		p.kind = PT_PUNCT;
		if (parse_behavior(o, "Isolated", &p.behavior))
			return rl_error(RL_EDATA, "'%s': Punctuation with an unknown behavior",
					t->name);
	} else if (strcmp(type, "CharDelimiterSplit") == 0) {
		p.kind = PT_CHARDELIM;
		p.ch = one_char(jstr(o, "delimiter"));
		if (!p.ch)
			return rl_error(RL_EDATA,
					"'%s': CharDelimiterSplit delimiter must be one char",
					t->name);
	} else {
		return rl_error(RL_EDATA, "'%s': unsupported pre-tokenizer '%s'", t->name, type);
	}
	if (!rc && t->n_pretoks >= 16)
		rc = rl_error(RL_EDATA, "'%s': more than 16 pre-tokenizers", t->name);
	if (!rc) {
		tk_pretok *v = rl_realloc_array(t->pretoks, t->n_pretoks + 1, sizeof *v);
		if (!v)
			rc = RL_ESYS;
		else {
			t->pretoks = v;
			t->pretoks[t->n_pretoks++] = p;
			return RL_OK;
		}
	}
	tk_pretok_free(&p);
	return rc;
}

static int add_dec(rl_tokenizer *t, const cJSON *o)
{
	const char *type = jstr(o, "type");
	if (!type)
		return rl_error(RL_EDATA, "'%s': decoder without a type", t->name);
	if (strcmp(type, "Sequence") == 0) {
		const cJSON *l = jget(o, "decoders"), *x;
		if (!cJSON_IsArray(l))
			return rl_error(RL_EDATA, "'%s': Sequence decoder without a list", t->name);
		cJSON_ArrayForEach(x, l)
		{
			int rc = add_dec(t, x);
			if (rc)
				return rc;
		}
		return RL_OK;
	}
	tk_dec d = {0};
	int rc = RL_OK;
	const char *text = NULL;
	if (strcmp(type, "ByteLevel") == 0) {
		d.kind = DC_BYTELEVEL;
	} else if (strcmp(type, "ByteFallback") == 0) {
		d.kind = DC_BYTEFALLBACK;
	} else if (strcmp(type, "Fuse") == 0) {
		d.kind = DC_FUSE;
	} else if (strcmp(type, "Strip") == 0) {
		long long a = 0, b = 0;
		d.kind = DC_STRIP;
		d.ch = one_char(jstr(o, "content"));
		if (!d.ch || !jint(jget(o, "start"), 0, 1 << 20, &a) ||
		    !jint(jget(o, "stop"), 0, 1 << 20, &b))
			return rl_error(RL_EDATA, "'%s': malformed Strip decoder", t->name);
		d.start = (int)a;
		d.stop = (int)b;
	} else if (strcmp(type, "Replace") == 0) {
		d.kind = DC_REPLACE;
		text = jstr(o, "content");
		if (!text)
			return rl_error(RL_EDATA, "'%s': Replace decoder without content", t->name);
		rc = parse_pattern(o, &d.re, t->name, "Replace decoder");
	} else if (strcmp(type, "Metaspace") == 0) {
		d.kind = DC_METASPACE;
		d.ch = one_char(jstr(o, "replacement"));
		if (!d.ch)
			return rl_error(RL_EDATA, "'%s': Metaspace replacement must be one char",
					t->name);
		const char *s = jstr(o, "prepend_scheme");
		d.scheme = s && strcmp(s, "never") == 0	  ? PS_NEVER
			   : s && strcmp(s, "first") == 0 ? PS_FIRST
							  : PS_ALWAYS;
		if (!jbool(o, "add_prefix_space", 1))
			d.scheme = PS_NEVER;
	} else if (strcmp(type, "BPEDecoder") == 0) {
		d.kind = DC_BPE;
		text = jstr(o, "suffix");
		if (!text)
			text = "</w>";
	} else if (strcmp(type, "WordPiece") == 0) {
		d.kind = DC_WORDPIECE;
		text = jstr(o, "prefix");
		if (!text)
			text = "##";
		d.cleanup = jbool(o, "cleanup", 1);
	} else {
		return rl_error(RL_EDATA, "'%s': unsupported decoder '%s'", t->name, type);
	}
	if (!rc && text) {
		d.content_len = strlen(text);
		if (!(d.content = dupn(text, d.content_len)))
			rc = RL_ESYS;
	}
	if (!rc) {
		tk_dec *v = rl_realloc_array(t->decs, t->n_decs + 1, sizeof *v);
		if (!v)
			rc = RL_ESYS;
		else {
			t->decs = v;
			t->decs[t->n_decs++] = d;
			return RL_OK;
		}
	}
	tk_dec_free(&d);
	return rc;
}

/* Post-processor for RL_TOK_ADD_SPECIAL: prefix and suffix ids around the text. */
static int special_ids(rl_tokenizer *t, const cJSON *specials, const char *name, rl_ids *out)
{
	const cJSON *sp = jget(specials, name), *ids = sp ? jget(sp, "ids") : NULL, *x;
	if (ids && cJSON_IsArray(ids)) {
		cJSON_ArrayForEach(x, ids)
		{
			long long v;
			if (!jint(x, 0, INT32_MAX - 1, &v))
				return RL_EDATA;
			if (rl_ids_push(out, (int32_t)v))
				return RL_ESYS;
		}
		return RL_OK;
	}
	int32_t id = rl_tok_id(t, name, strlen(name));
	if (id < 0)
		return RL_EDATA;
	return rl_ids_push(out, id);
}

static int add_post(rl_tokenizer *t, const cJSON *o)
{
	const char *type = jstr(o, "type");
	if (!type)
		return RL_EDATA;
	if (strcmp(type, "Sequence") == 0) {
		const cJSON *l = jget(o, "processors"), *x;
		if (!cJSON_IsArray(l))
			return RL_EDATA;
		cJSON_ArrayForEach(x, l)
		{
			int rc = add_post(t, x);
			if (rc)
				return rc;
		}
		return RL_OK;
	}
	if (strcmp(type, "ByteLevel") == 0)
		return RL_OK;
	rl_ids pre = {0}, post = {0};
	int rc = RL_OK;
	if (strcmp(type, "TemplateProcessing") == 0) {
		const cJSON *single = jget(o, "single"), *specials = jget(o, "special_tokens"), *x;
		int seen_seq = 0;
		if (!cJSON_IsArray(single))
			return RL_EDATA;
		cJSON_ArrayForEach(x, single)
		{
			const cJSON *st = jget(x, "SpecialToken");
			if (jget(x, "Sequence")) {
				seen_seq = 1;
			} else if (st && jstr(st, "id")) {
				rc = special_ids(t, specials, jstr(st, "id"),
						 seen_seq ? &post : &pre);
				if (rc)
					break;
			} else {
				rc = RL_EDATA;
				break;
			}
		}
	} else if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
		const cJSON *cls = jget(o, "cls"), *sep = jget(o, "sep");
		long long a, b;
		if (!cJSON_IsArray(cls) || !cJSON_IsArray(sep) ||
		    !jint(cJSON_GetArrayItem(cls, 1), 0, INT32_MAX - 1, &a) ||
		    !jint(cJSON_GetArrayItem(sep, 1), 0, INT32_MAX - 1, &b))
			return RL_EDATA;
		rc = rl_ids_push(&pre, (int32_t)a);
		if (!rc)
			rc = rl_ids_push(&post, (int32_t)b);
	} else {
		return RL_EDATA;
	}
	/* this processor wraps what the earlier ones produced */
	if (!rc)
		rc = rl_ids_append(&pre, t->pre.v, t->pre.n);
	if (!rc)
		rc = rl_ids_append(&t->post, post.v, post.n);
	if (!rc) {
		rl_ids_free(&t->pre);
		t->pre = pre;
		pre = (rl_ids){0};
	}
	rl_ids_free(&pre);
	rl_ids_free(&post);
	return rc;
}

/* ---- a JSON scanner for model.vocab and model.merges --------------------------------
 * These two hold up to a million entries (Gemma: 262k tokens, 515k merges); read
 * straight from the text they never become a cJSON tree, which would cost a
 * malloc per node. Every other part of the file is small and goes through cJSON.
 * The scanner is strict where it reads (strings, integers, the two containers)
 * and only balances brackets where it skips. */
typedef struct js {
	const char *p, *end, *base, *name;
} js;

typedef struct js_span {
	const char *p;
	size_t n;
} js_span;

static int js_err(const js *j, const char *what)
{
	long line = 1;
	for (const char *q = j->base; q < j->p && q < j->end; q++)
		line += *q == '\n';
	return rl_error(RL_EDATA, "'%s': malformed JSON near line %ld: %s", j->name, line, what);
}

static void js_ws(js *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
		j->p++;
}

static int js_lit(js *j, char c)
{
	js_ws(j);
	if (j->p >= j->end || *j->p != c)
		return 0;
	j->p++;
	return 1;
}

static int js_hex4(const char *p, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (d < 0)
			return 0;
		*v = *v << 4 | (uint32_t)d;
	}
	return 1;
}

/* Reads a string into out (decoded, not NUL-safe for C strings: use out->n). */
static int js_string(js *j, tk_buf *out)
{
	out->n = 0;
	if (!js_lit(j, '"'))
		return js_err(j, "expected a string");
	for (;;) {
		const char *q = j->p;
		while (q < j->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
			q++;
		if (tk_buf_add(out, j->p, (size_t)(q - j->p)))
			return RL_ESYS;
		j->p = q;
		if (q >= j->end || (unsigned char)*q < 0x20)
			return js_err(j, "unterminated string");
		if (*q == '"') {
			j->p++;
			return RL_OK;
		}
		if (j->end - q < 2)
			return js_err(j, "bad escape");
		char e = q[1], c;
		j->p = q + 2;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			c = e;
			break;
		case 'b':
			c = '\b';
			break;
		case 'f':
			c = '\f';
			break;
		case 'n':
			c = '\n';
			break;
		case 'r':
			c = '\r';
			break;
		case 't':
			c = '\t';
			break;
		case 'u': {
			uint32_t cp, lo;
			if (j->end - j->p < 4 || !js_hex4(j->p, &cp))
				return js_err(j, "bad \\u escape");
			j->p += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
				    !js_hex4(j->p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
					return js_err(j, "lone surrogate in \\u escape");
				j->p += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				return js_err(j, "lone surrogate in \\u escape");
			}
			char u[4];
			if (tk_buf_add(out, u, (size_t)tk_utf8_put(u, cp)))
				return RL_ESYS;
			continue;
		}
		default:
			return js_err(j, "bad escape");
		}
		if (tk_buf_add(out, &c, 1))
			return RL_ESYS;
	}
}

/* An integer written as digits (optionally with a zero fraction, "5.0"). */
static int js_int(js *j, long long lo, long long hi, long long *v)
{
	js_ws(j);
	const char *q = j->p;
	int neg = q < j->end && *q == '-';
	q += neg;
	long long x = 0;
	int nd = 0;
	while (q < j->end && *q >= '0' && *q <= '9' && nd < 18) {
		x = x * 10 + (*q++ - '0');
		nd++;
	}
	if (q < j->end && *q == '.') {
		q++;
		while (q < j->end && *q == '0')
			q++;
	}
	if (!nd ||
	    (q < j->end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E')))
		return js_err(j, "expected an integer id");
	x = neg ? -x : x;
	if (x < lo || x > hi)
		return js_err(j, "id out of range");
	j->p = q;
	*v = x;
	return RL_OK;
}

/* Skips a string without decoding it. */
static int js_skip_string(js *j)
{
	const char *q = j->p + 1;
	while (q < j->end && *q != '"') {
		if ((unsigned char)*q < 0x20)
			break;
		q += *q == '\\' ? 2 : 1;
	}
	if (q >= j->end || *q != '"')
		return js_err(j, "unterminated string");
	j->p = q + 1;
	return RL_OK;
}

/* Skips one value (strings scanned exactly, containers by bracket balance). */
static int js_skip(js *j)
{
	int depth = 0, rc;
	do {
		js_ws(j);
		if (j->p >= j->end)
			return js_err(j, "unexpected end");
		char c = *j->p;
		if (c == '"') {
			if ((rc = js_skip_string(j)))
				return rc;
		} else if (c == '{' || c == '[') {
			depth++;
			j->p++;
		} else if (c == '}' || c == ']') {
			if (--depth < 0)
				return js_err(j, "unbalanced brackets");
			j->p++;
		} else {
			j->p++;
			while (j->p < j->end && !strchr(",:]} \t\r\n\"{[", *j->p))
				j->p++;
		}
		if (depth > 0) {
			js_ws(j);
			while (j->p < j->end && (*j->p == ',' || *j->p == ':')) {
				j->p++;
				js_ws(j);
			}
		}
	} while (depth > 0);
	return RL_OK;
}

/* Iterates the members of an object: calls fn(key, value span) for each. */
typedef int (*js_member_fn)(void *ctx, js *j, const tk_buf *key);

static int js_object(js *j, void *ctx, js_member_fn fn)
{
	tk_buf key = {0};
	int rc = RL_OK;
	if (!js_lit(j, '{'))
		return js_err(j, "expected an object");
	if (js_lit(j, '}'))
		return RL_OK;
	for (;;) {
		if ((rc = js_string(j, &key)))
			break;
		if (!js_lit(j, ':')) {
			rc = js_err(j, "expected ':'");
			break;
		}
		js_ws(j);
		if ((rc = fn(ctx, j, &key)))
			break;
		if (js_lit(j, ','))
			continue;
		if (!js_lit(j, '}'))
			rc = js_err(j, "expected ',' or '}'");
		break;
	}
	tk_buf_free(&key);
	return rc;
}

/* ---- model ------------------------------------------------------------------------ */
static int vocab_member(void *ctx, js *j, const tk_buf *key)
{
	rl_tokenizer *t = ctx;
	long long id = 0;
	int rc = js_int(j, 0, INT32_MAX - 2, &id);
	if (rc)
		return rl_error_prefix(rc, "vocab entry '%.60s'", key->p ? key->p : "");
	if (tk_map_put(&t->vocab, key->p ? key->p : "", key->n, (int32_t)id, 1))
		return RL_ESYS;
	if (id >= t->n_ids)
		t->n_ids = (int32_t)id + 1;
	return RL_OK;
}

static int load_vocab(rl_tokenizer *t, js *j)
{
	if (!j->p)
		return rl_error(RL_EDATA, "'%s': model has no vocab", t->name);
	t->n_ids = 0;
	int rc = js_object(j, t, vocab_member);
	if (rc)
		return rc;
	if (t->n_ids == 0)
		return rl_error(RL_EDATA, "'%s': empty vocabulary", t->name);
	/* the id -> entry table is dense: a vocabulary's ids are 0 .. n-1 in
	 * every real tokenizer; a far larger id would size it by itself
	 * (fuzz_tokenizer: one id 555555517 asked for 2.2 GB) */
	if ((uint64_t)t->n_ids > 2 * (uint64_t)t->vocab.n + 65536)
		return rl_error(RL_EDATA,
				"'%s': vocab id %d among only %zu entries (the ids must be about "
				"0 .. n-1)",
				t->name, (int)(t->n_ids - 1), t->vocab.n);
	t->id_ent = rl_malloc_array((size_t)t->n_ids, sizeof *t->id_ent);
	if (!t->id_ent)
		return RL_ESYS;
	for (int32_t i = 0; i < t->n_ids; i++)
		t->id_ent[i] = -1;
	for (size_t e = 0; e < t->vocab.n; e++)
		t->id_ent[t->vocab.val[e]] = (int32_t)e;
	for (uint32_t cp = 0; cp < 2048; cp++) {
		char u[4];
		int l = tk_utf8_put(u, cp);
		t->small[cp] = tk_map_get(&t->vocab, u, (size_t)l);
	}
	for (int b = 0; b < 256; b++) {
		char s[8];
		snprintf(s, sizeof s, "<0x%02X>", b);
		t->byte_id[b] = tk_map_get(&t->vocab, s, 6);
	}
	return RL_OK;
}

static int merge_ids(rl_tokenizer *t, const char *a, size_t al, const char *b, size_t bl,
		     size_t rank, tk_buf *cat)
{
	int32_t ia = tk_map_get(&t->vocab, a, al), ib = tk_map_get(&t->vocab, b, bl);
	if (ia < 0 || ib < 0)
		return rl_error(RL_EDATA, "'%s': merge %zu: token '%.*s' is not in the vocabulary",
				t->name, rank + 1, (int)(ia < 0 ? al : bl), ia < 0 ? a : b);
	size_t skip = t->prefix_len <= bl ? t->prefix_len : bl;
	cat->n = 0;
	if (tk_buf_add(cat, a, al) || tk_buf_add(cat, b + skip, bl - skip))
		return RL_ESYS;
	int32_t id = tk_map_get(&t->vocab, cat->p, cat->n);
	if (id < 0)
		return rl_error(RL_EDATA, "'%s': merge %zu: '%.*s' is not in the vocabulary",
				t->name, rank + 1, (int)cat->n, cat->p);
	return tk_merge_put(t, ia, ib, (uint32_t)rank, id);
}

/* Counts the elements of the array at j (without moving j). */
static int js_count(js j, size_t *n)
{
	*n = 0;
	if (!js_lit(&j, '['))
		return js_err(&j, "expected a list");
	if (js_lit(&j, ']'))
		return RL_OK;
	for (;;) {
		int rc = js_skip(&j);
		if (rc)
			return rc;
		(*n)++;
		if (js_lit(&j, ','))
			continue;
		if (!js_lit(&j, ']'))
			return js_err(&j, "expected ',' or ']'");
		return RL_OK;
	}
}

static int load_merges(rl_tokenizer *t, js *j)
{
	size_t n;
	int rc;
	if (!j->p)
		return rl_error(RL_EDATA, "'%s': BPE model has no merges list", t->name);
	if ((rc = js_count(*j, &n)))
		return rc;
	if (n == 0)
		return rl_error(RL_EDATA, "'%s': BPE model has an empty merges list", t->name);
	if ((rc = tk_build_merges(t, n)))
		return rc;
	tk_buf a = {0}, b = {0}, cat = {0};
	size_t rank = 0;
	js_lit(j, '[');
	for (;;) {
		js_ws(j);
		if (j->p < j->end && *j->p == '"') {
			if ((rc = js_string(j, &a)))
				break;
			if (!(a.n >= 8 && memcmp(a.p, "#version", 8) == 0)) {
				const char *sp = a.p ? memchr(a.p, ' ', a.n) : NULL;
				if (!sp || memchr(sp + 1, ' ', a.n - (size_t)(sp + 1 - a.p))) {
					rc = rl_error(RL_EDATA,
						      "'%s': merge %zu ('%.60s') is not 'a b'",
						      t->name, rank + 1, a.p ? a.p : "");
					break;
				}
				size_t al = (size_t)(sp - a.p);
				if ((rc = merge_ids(t, a.p, al, sp + 1, a.n - al - 1, rank, &cat)))
					break;
				rank++;
			}
		} else if (js_lit(j, '[')) {
			if ((rc = js_string(j, &a)))
				break;
			if (!js_lit(j, ',')) {
				rc = js_err(j, "a merge pair needs two strings");
				break;
			}
			if ((rc = js_string(j, &b)))
				break;
			if (!js_lit(j, ']')) {
				rc = js_err(j, "a merge pair needs two strings");
				break;
			}
			if ((rc = merge_ids(t, a.p ? a.p : "", a.n, b.p ? b.p : "", b.n, rank,
					    &cat)))
				break;
			rank++;
		} else {
			rc = rl_error(RL_EDATA,
				      "'%s': merge %zu is neither \"a b\" nor [\"a\", \"b\"]",
				      t->name, rank + 1);
			break;
		}
		if (js_lit(j, ','))
			continue;
		if (!js_lit(j, ']'))
			rc = js_err(j, "expected ',' or ']'");
		break;
	}
	tk_buf_free(&a);
	tk_buf_free(&b);
	tk_buf_free(&cat);
	if (!rc && rank == 0)
		rc = rl_error(RL_EDATA, "'%s': BPE model has an empty merges list", t->name);
	return rc;
}

static int opt_text(const cJSON *m, const char *key, char **out, size_t *len)
{
	const char *s = jstr(m, key);
	if (!s)
		return RL_OK;
	*len = strlen(s);
	if (*len == 0) /* "" adds nothing: same as none */
		return RL_OK;
	*out = dupn(s, *len);
	return *out ? RL_OK : RL_ESYS;
}

static int load_model(rl_tokenizer *t, const cJSON *m, js *vocab, js *merges)
{
	if (!cJSON_IsObject(m))
		return rl_error(RL_EDATA, "'%s': no model object", t->name);
	const char *type = jstr(m, "type");
	if (!type)
		type = merges->p ? "BPE" : "(untyped)";
	int rc;
	if (strcmp(type, "BPE") == 0) {
		t->model = MODEL_BPE;
		const cJSON *dropout = jget(m, "dropout");
		if (dropout && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
			return rl_error(RL_EDATA,
					"'%s': BPE dropout is not supported (it must be null)",
					t->name);
		if ((rc = opt_text(m, "continuing_subword_prefix", &t->prefix, &t->prefix_len)) ||
		    (rc = opt_text(m, "end_of_word_suffix", &t->suffix, &t->suffix_len)))
			return rc;
		t->byte_fallback = jbool(m, "byte_fallback", 0);
		t->fuse_unk = jbool(m, "fuse_unk", 0);
		t->ignore_merges = jbool(m, "ignore_merges", 0);
		if ((rc = load_vocab(t, vocab)) || (rc = load_merges(t, merges)))
			return rc;
		const char *unk = jstr(m, "unk_token");
		if (unk) {
			if (!(t->unk_str = rl_strdup(unk)))
				return RL_ESYS;
			t->unk = tk_map_get(&t->vocab, unk, strlen(unk));
		}
		return RL_OK;
	}
	if (strcmp(type, "WordLevel") == 0) {
		t->model = MODEL_WORDLEVEL;
		if ((rc = load_vocab(t, vocab)))
			return rc;
		const char *unk = jstr(m, "unk_token");
		if (!unk)
			unk = "<unk>";
		if (!(t->unk_str = rl_strdup(unk)))
			return RL_ESYS;
		t->unk = tk_map_get(&t->vocab, unk, strlen(unk));
		return RL_OK;
	}
	return rl_error(RL_EDATA,
			"'%s': unsupported model type '%s' (realign reads BPE and WordLevel)",
			t->name, type);
}

/* ---- added tokens --------------------------------------------------------------------- */
static int trie_add(tk_trie *tr, const char *s, size_t n, int32_t added)
{
	if (!tr->v) {
		tr->cap = 64;
		tr->v = rl_malloc_array(tr->cap, sizeof *tr->v);
		if (!tr->v)
			return RL_ESYS;
		tr->v[0] = (tk_trie_node){-1, -1, -1, 0};
		tr->n = 1;
	}
	int32_t node = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = (uint8_t)s[i];
		int32_t c = tr->v[node].child;
		while (c >= 0 && tr->v[c].byte != b)
			c = tr->v[c].sibling;
		if (c < 0) {
			if (tr->n == tr->cap) {
				tk_trie_node *v = rl_realloc_array(tr->v, tr->cap * 2, sizeof *v);
				if (!v)
					return RL_ESYS;
				tr->v = v;
				tr->cap *= 2;
			}
			c = (int32_t)tr->n++;
			tr->v[c] = (tk_trie_node){-1, tr->v[node].child, -1, b};
			tr->v[node].child = c;
		}
		node = c;
	}
	tr->v[node].added = added;
	if (n)
		tr->first[(uint8_t)s[0]] = 1;
	return RL_OK;
}

static int load_added(rl_tokenizer *t, const cJSON *list)
{
	if (!list)
		return RL_OK;
	if (!cJSON_IsArray(list))
		return rl_error(RL_EDATA, "'%s': added_tokens is not a list", t->name);
	size_t n = (size_t)cJSON_GetArraySize(list);
	t->added = rl_calloc(n ? n : 1, sizeof *t->added);
	if (!t->added)
		return RL_ESYS;
	/* AddedVocabulary::add_tokens: next id after the model's vocabulary */
	int32_t vocab_size = (int32_t)t->vocab.n, next = vocab_size;
	tk_map special_set = {0};
	int rc = RL_OK;
	const cJSON *x;
	cJSON_ArrayForEach(x, list)
	{
		const char *c = jstr(x, "content");
		if (!c) {
			rc = rl_error(RL_EDATA, "'%s': added token without content", t->name);
			break;
		}
		if (!*c)
			continue;
		tk_added a = {0};
		a.len = strlen(c);
		a.special = (uint8_t)jbool(x, "special", 0);
		a.single_word = (uint8_t)jbool(x, "single_word", 0);
		a.lstrip = (uint8_t)jbool(x, "lstrip", 0);
		a.rstrip = (uint8_t)jbool(x, "rstrip", 0);
		a.normalized = (uint8_t)jbool(x, "normalized", !a.special);
		int32_t id = tk_map_get(&t->added_map, c, a.len);
		if (id < 0)
			id = tk_map_get(&t->vocab, c, a.len);
		if (id < 0) {
			if (next == INT32_MAX - 1) {
				rc = rl_error(RL_EDATA, "'%s': too many added tokens", t->name);
				break;
			}
			id = next++;
		}
		a.id = id;
		if (!(a.content = dupn(c, a.len))) {
			rc = RL_ESYS;
			break;
		}
		if (a.normalized && t->n_norms) {
			tk_buf nb = {0};
			if ((rc = tk_normalize_string(t, c, a.len, &nb))) {
				free(a.content);
				break;
			}
			if (nb.n != a.len || memcmp(nb.p, c, a.len) != 0) {
				a.norm = nb.p;
				a.norm_len = nb.n;
			} else {
				tk_buf_free(&nb);
			}
		}
		t->added[t->n_added++] = a;
		if ((rc = tk_map_put(&t->added_map, c, a.len, id, 1)))
			break;
		if (a.special && (rc = tk_map_put(&special_set, c, a.len, 1, 0)))
			break;
	}
	if (rc) {
		tk_map_free(&special_set);
		return rc;
	}
	/* ids -> last added token with that id (AddedVocabulary's map by id) */
	int32_t max = t->n_ids - 1;
	for (size_t i = 0; i < t->n_added; i++)
		if (t->added[i].id > max)
			max = t->added[i].id;
	t->n_all = max + 1;
	t->added_of = rl_malloc_array((size_t)t->n_all, sizeof *t->added_of);
	t->special = rl_calloc((size_t)t->n_all, 1);
	if (!t->added_of || !t->special) {
		tk_map_free(&special_set);
		return RL_ESYS;
	}
	for (int32_t i = 0; i < t->n_all; i++)
		t->added_of[i] = -1;
	for (size_t i = 0; i < t->n_added; i++)
		t->added_of[t->added[i].id] = (int32_t)i;
	for (int32_t id = 0; id < t->n_all && !rc; id++) {
		int32_t k = t->added_of[id];
		if (k >= 0) {
			const tk_added *a = &t->added[k];
			if (a->normalized) {
				rc = trie_add(&t->trie_norm, a->norm ? a->norm : a->content,
					      a->norm ? a->norm_len : a->len, k);
				t->has_trie_norm = 1;
			} else {
				rc = trie_add(&t->trie, a->content, a->len, k);
				t->has_trie = 1;
			}
		}
		size_t len;
		const char *s = rl_tok_str(t, id, &len);
		if (s && special_set.n && tk_map_get(&special_set, s, len) >= 0)
			t->special[id] = 1;
	}
	tk_map_free(&special_set);
	return rc;
}

/* 1 if the char starting at s[i] is a word char for single_word (tokenizers asks
 * the regex crate's \w). */
static int word_char_at(const char *s, size_t n, size_t i)
{
	uint32_t cp;
	tk_utf8_next(s + i, n - i, &cp);
	return (tk_uni(cp) & TK_U_RWORD) != 0;
}

static size_t char_start_before(const char *s, size_t i)
{
	size_t k = i - 1;
	while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
		k--;
	return k;
}

/* AddedVocabulary::find_matches: spans with m = 0 for text, m = index + 1 for a
 * token. Matching restarts after each match's own end (even when lstrip/rstrip
 * widened the span or single_word discarded it), as the automaton's iterator does. */
static int find_added(const rl_tokenizer *t, const tk_trie *tr, const char *s, size_t n,
		      int skip_special, tk_spans *out)
{
	out->n = 0;
	size_t start_offset = 0;
	for (size_t i = 0; i < n;) {
		if (!tr->first[(uint8_t)s[i]]) {
			i++;
			continue;
		}
		int32_t node = 0, best = -1;
		size_t best_end = 0;
		for (size_t k = i; k < n; k++) {
			int32_t c = tr->v[node].child;
			while (c >= 0 && tr->v[c].byte != (uint8_t)s[k])
				c = tr->v[c].sibling;
			if (c < 0)
				break;
			node = c;
			if (tr->v[c].added >= 0) {
				best = tr->v[c].added;
				best_end = k + 1;
			}
		}
		if (best < 0) {
			i++;
			continue;
		}
		const tk_added *a = &t->added[best];
		size_t ms = i, me = best_end;
		i = best_end;
		if (skip_special && a->special)
			continue;
		if (a->single_word) {
			int start_space = ms == 0 || !word_char_at(s, n, char_start_before(s, ms));
			int stop_space = me == n || !word_char_at(s, n, me);
			if (!start_space || !stop_space)
				continue;
		}
		if (a->lstrip) {
			size_t ns = ms;
			while (ns > 0) {
				size_t k = char_start_before(s, ns);
				uint32_t cp;
				tk_utf8_next(s + k, ns - k, &cp);
				if (!tk_is_whitespace(cp))
					break;
				ns = k;
			}
			ms = ns > start_offset ? ns : start_offset;
		}
		if (a->rstrip) {
			while (me < n) {
				uint32_t cp;
				int l = tk_utf8_next(s + me, n - me, &cp);
				if (!tk_is_whitespace(cp))
					break;
				me += (size_t)l;
			}
		}
		tk_span text = {start_offset, ms, 0}, tok = {ms, me, best + 1};
		if (start_offset < ms) {
			if (out->n == out->cap) {
				size_t cap = out->cap ? out->cap * 2 : 16;
				tk_span *v = rl_realloc_array(out->v, cap, sizeof *v);
				if (!v)
					return RL_ESYS;
				out->v = v;
				out->cap = cap;
			}
			out->v[out->n++] = text;
		}
		if (out->n == out->cap) {
			size_t cap = out->cap ? out->cap * 2 : 16;
			tk_span *v = rl_realloc_array(out->v, cap, sizeof *v);
			if (!v)
				return RL_ESYS;
			out->v = v;
			out->cap = cap;
		}
		out->v[out->n++] = tok;
		start_offset = me;
	}
	if (start_offset != n) {
		if (out->n == out->cap) {
			size_t cap = out->cap ? out->cap * 2 : 16;
			tk_span *v = rl_realloc_array(out->v, cap, sizeof *v);
			if (!v)
				return RL_ESYS;
			out->v = v;
			out->cap = cap;
		}
		out->v[out->n++] = (tk_span){start_offset, n, 0};
	}
	return RL_OK;
}

/* ---- config files ------------------------------------------------------------------- */
static int32_t config_token(const rl_tokenizer *t, const cJSON *cfg, const char *key)
{
	const cJSON *v = jget(cfg, key);
	const char *s = cJSON_IsString(v) ? v->valuestring : jstr(v, "content");
	return s ? rl_tok_id(t, s, strlen(s)) : -1;
}

static int add_end(rl_tokenizer *t, int32_t id)
{
	if (id < 0)
		return RL_OK;
	for (size_t i = 0; i < t->end.n; i++)
		if (t->end.v[i] == id)
			return RL_OK;
	return rl_ids_push(&t->end, id);
}

static int load_config(rl_tokenizer *t, const char *cfg_text, size_t len, const char *cfg_name)
{
	cJSON *cfg;
	int rc = parse_json(cfg_text, len, cfg_name, "tokenizer_config.json", &cfg);
	if (rc)
		return rc;
	if (!cJSON_IsObject(cfg)) {
		cJSON_Delete(cfg);
		return rl_error(RL_EDATA, "'%s': not a JSON object", cfg_name);
	}
	t->bos = config_token(t, cfg, "bos_token");
	t->eos = config_token(t, cfg, "eos_token");
	cJSON_Delete(cfg);
	return rc;
}

/* ---- loading ------------------------------------------------------------------------ */
static int load_parts(rl_tokenizer *t, const cJSON *root, js *vocab, js *merges);

typedef struct top_ctx {
	cJSON *root, *model;
	js vocab, merges;
} top_ctx;

/* Parses the value at j with cJSON and adds it to obj under key. */
static int add_parsed(cJSON *obj, js *j, const tk_buf *key)
{
	const char *start = j->p;
	int rc = js_skip(j);
	if (rc)
		return rc;
	cJSON *v = cJSON_ParseWithLength(start, (size_t)(j->p - start));
	if (!v) {
		j->p = start;
		return js_err(j, "malformed value");
	}
	if ((rc = check_json(start, (size_t)(j->p - start), v, j->name))) {
		cJSON_Delete(v);
		return rc;
	}
	cJSON_AddItemToObject(obj, key->p ? key->p : "", v);
	return RL_OK;
}

static int model_member(void *ctx, js *j, const tk_buf *key)
{
	top_ctx *c = ctx;
	if (key->n == 5 && memcmp(key->p, "vocab", 5) == 0) {
		c->vocab = *j;
		return js_skip(j);
	}
	if (key->n == 6 && memcmp(key->p, "merges", 6) == 0) {
		c->merges = *j;
		return js_skip(j);
	}
	return add_parsed(c->model, j, key);
}

static int top_member(void *ctx, js *j, const tk_buf *key)
{
	top_ctx *c = ctx;
	if (key->n == 5 && memcmp(key->p, "model", 5) == 0 && !c->model) {
		c->model = cJSON_CreateObject();
		if (!c->model || !cJSON_AddItemToObject(c->root, "model", c->model))
			return rl_error(RL_ESYS, "out of memory");
		return js_object(j, c, model_member);
	}
	return add_parsed(c->root, j, key);
}

static int load_tokenizer(rl_tokenizer *t, const char *json, size_t len)
{
	int rc;
	top_ctx c = {0};
	js j = {json, json + len, json, t->name};
	if (!rl_utf8_valid(json, len))
		return rl_error(RL_EDATA, "'%s': not valid UTF-8", t->name);
	if (!(c.root = cJSON_CreateObject()))
		return rl_error(RL_ESYS, "out of memory");
	rc = js_object(&j, &c, top_member);
	if (!rc) {
		js_ws(&j);
		if (j.p != j.end)
			rc = js_err(&j, "trailing data after the JSON object");
	}
	if (!rc)
		rc = load_parts(t, c.root, &c.vocab, &c.merges);
	cJSON_Delete(c.root);
	return rc;
}

static int load_parts(rl_tokenizer *t, const cJSON *root, js *vocab, js *merges)
{
	int rc;
	if ((rc = load_model(t, jget(root, "model"), vocab, merges)))
		return rc;
	const cJSON *x;
	if ((x = jget(root, "normalizer")) && (rc = add_norm(t, x)))
		return rc;
	if ((x = jget(root, "pre_tokenizer")) && (rc = add_pretok(t, x)))
		return rc;
	if ((x = jget(root, "decoder"))) {
		t->has_decoder = 1;
		if ((rc = add_dec(t, x)))
			return rc;
	}
	tk_bytelevel_init(t);
	if ((rc = tk_builtin_regexes(t)))
		return rc;
	if ((rc = load_added(t, jget(root, "added_tokens"))))
		return rc;
	if (!t->added_of) { /* no added_tokens key */
		t->n_all = t->n_ids;
		t->added_of = rl_malloc_array((size_t)t->n_all, sizeof *t->added_of);
		t->special = rl_calloc((size_t)t->n_all, 1);
		if (!t->added_of || !t->special)
			return RL_ESYS;
		for (int32_t i = 0; i < t->n_all; i++)
			t->added_of[i] = -1;
	}
	t->post_ok = 1;
	if ((x = jget(root, "post_processor")) && add_post(t, x)) {
		rl_error_clear();
		t->post_ok = 0;
		rl_ids_free(&t->pre);
		rl_ids_free(&t->post);
	}
	return RL_OK;
}

int rl_tokenizer_load_mem(const char *json, size_t len, const char *config, size_t config_len,
			  const char *name, rl_tokenizer **out)
{
	*out = NULL;
	rl_tokenizer *t = rl_calloc(1, sizeof *t);
	if (!t)
		return RL_ESYS;
	t->unk = t->bos = t->eos = -1;
	if (pthread_mutex_init(&t->cache_lock, NULL)) {
		free(t);
		return rl_error(RL_ESYS, "cannot create a mutex");
	}
	if (!(t->name = rl_strdup(name ? name : "tokenizer.json"))) {
		rl_tokenizer_free(t);
		return RL_ESYS;
	}
	int rc = load_tokenizer(t, json, len);
	if (!rc && config)
		rc = load_config(t, config, config_len, t->name);
	if (!rc)
		rc = add_end(t, t->eos);
	if (rc) {
		rl_tokenizer_free(t);
		return rc;
	}
	*out = t;
	return RL_OK;
}

static char *join_path(const char *dir, const char *file)
{
	size_t a = strlen(dir), b = strlen(file);
	char *p = rl_malloc(a + b + 2);
	if (p) {
		memcpy(p, dir, a);
		p[a] = '/';
		memcpy(p + a + 1, file, b + 1);
	}
	return p;
}

/* Reads dir/file if it exists: RL_OK with *buf = NULL when it does not. */
static int read_optional(const char *dir, const char *file, char **path, char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	if (!(*path = join_path(dir, file)))
		return RL_ESYS;
	return rl_path_present(*path) ? rl_read_file(*path, buf, len) : RL_OK;
}

static int load_generation_config(rl_tokenizer *t, const char *dir)
{
	char *path, *buf;
	size_t len;
	int rc = read_optional(dir, "generation_config.json", &path, &buf, &len);
	if (!rc && buf) {
		cJSON *g;
		rc = parse_json(buf, len, path, "generation_config.json", &g);
		if (!rc) {
			const cJSON *e = jget(g, "eos_token_id"), *x;
			long long v;
			/* generation_config's ids first, then the config's eos */
			rl_ids old = t->end;
			t->end = (rl_ids){0};
			if (jint(e, 0, INT32_MAX - 1, &v)) {
				rc = add_end(t, (int32_t)v);
			} else if (cJSON_IsArray(e)) {
				cJSON_ArrayForEach(x, e)
				{
					if (!rc && jint(x, 0, INT32_MAX - 1, &v))
						rc = add_end(t, (int32_t)v);
				}
			}
			for (size_t i = 0; i < old.n && !rc; i++)
				rc = add_end(t, old.v[i]);
			rl_ids_free(&old);
			cJSON_Delete(g);
		}
	}
	free(buf);
	free(path);
	return rc;
}

int rl_tokenizer_load(const char *dir, rl_tokenizer **out)
{
	*out = NULL;
	char *tpath = join_path(dir, "tokenizer.json"), *json = NULL, *cpath = NULL, *cfg = NULL;
	size_t len = 0, clen = 0;
	if (!tpath)
		return RL_ESYS;
	int rc = rl_path_present(tpath)
			 ? rl_read_file(tpath, &json, &len)
			 : rl_error(RL_EDATA,
				    "'%s': no tokenizer.json (realign reads HuggingFace "
				    "tokenizer.json files)",
				    tpath);
	if (!rc)
		rc = read_optional(dir, "tokenizer_config.json", &cpath, &cfg, &clen);
	rl_tokenizer *t = NULL;
	if (!rc)
		rc = rl_tokenizer_load_mem(json, len, cfg, clen, tpath, &t);
	if (!rc)
		rc = load_generation_config(t, dir);
	free(tpath);
	free(json);
	free(cpath);
	free(cfg);
	if (rc) {
		rl_tokenizer_free(t);
		return rc;
	}
	*out = t;
	return RL_OK;
}

void rl_tokenizer_free(rl_tokenizer *t)
{
	if (!t)
		return;
	free(t->name);
	tk_map_free(&t->vocab);
	free(t->id_ent);
	free(t->merges);
	free(t->unk_str);
	free(t->prefix);
	free(t->suffix);
	for (size_t i = 0; i < t->n_norms; i++)
		tk_norm_free(&t->norms[i]);
	free(t->norms);
	for (size_t i = 0; i < t->n_pretoks; i++)
		tk_pretok_free(&t->pretoks[i]);
	free(t->pretoks);
	for (size_t i = 0; i < t->n_decs; i++)
		tk_dec_free(&t->decs[i]);
	free(t->decs);
	tk_regex_free(&t->re_bytelevel);
	tk_regex_free(&t->re_whitespace);
	for (size_t i = 0; i < t->n_added; i++) {
		free(t->added[i].content);
		free(t->added[i].norm);
	}
	free(t->added);
	tk_map_free(&t->added_map);
	free(t->trie.v);
	free(t->trie_norm.v);
	free(t->special);
	free(t->added_of);
	rl_ids_free(&t->pre);
	rl_ids_free(&t->post);
	rl_ids_free(&t->end);
	tk_map_free(&t->cache);
	rl_ids_free(&t->cache_ids);
	pthread_mutex_destroy(&t->cache_lock);
	free(t);
}

/* ---- encode ------------------------------------------------------------------------- */
static int encode_segment(tk_state *st, const char *s, size_t n, int orig0)
{
	const rl_tokenizer *t = st->t;
	const char *ns;
	size_t nn;
	int rc = tk_normalize(st, s, n, &ns, &nn);
	if (rc)
		return rc;
	if (!t->has_trie_norm)
		return tk_pretokenize(st, 0, ns, nn, orig0);
	tk_spans sp = {0};
	rc = find_added(t, &t->trie_norm, ns, nn, 0, &sp);
	for (size_t k = 0; k < sp.n && !rc; k++) {
		tk_span x = sp.v[k];
		if (x.m)
			rc = rl_ids_push(st->out, t->added[x.m - 1].id);
		else
			rc = tk_pretokenize(st, 0, ns + x.s, x.e - x.s, orig0 && x.s == 0);
	}
	free(sp.v);
	return rc;
}

int rl_tok_encode(const rl_tokenizer *t, const char *text, size_t len, unsigned flags, rl_ids *out)
{
	if (!rl_utf8_valid(text, len))
		return rl_error(RL_EDATA, "text is not valid UTF-8");
	if ((flags & RL_TOK_ADD_SPECIAL) && !t->post_ok)
		return rl_error(RL_EDATA,
				"'%s': unsupported post_processor: cannot add special tokens",
				t->name);
	tk_state st = {.t = t, .out = out};
	size_t mark = out->n;
	int rc = RL_OK;
	st.md = pcre2_match_data_create(1, NULL);
	if (!st.md)
		return rl_error(RL_ESYS, "out of memory");
	if (flags & RL_TOK_ADD_SPECIAL)
		rc = rl_ids_append(out, t->pre.v, t->pre.n);
	if (!rc && t->has_trie) {
		tk_spans sp = {0};
		rc = find_added(t, &t->trie, text, len, !!(flags & RL_TOK_NO_SPECIAL_SPLIT), &sp);
		for (size_t k = 0; k < sp.n && !rc; k++) {
			tk_span x = sp.v[k];
			if (x.m)
				rc = rl_ids_push(out, t->added[x.m - 1].id);
			else
				rc = encode_segment(&st, text + x.s, x.e - x.s, x.s == 0);
		}
		free(sp.v);
	} else if (!rc && len) {
		rc = encode_segment(&st, text, len, 1);
	}
	if (!rc && (flags & RL_TOK_ADD_SPECIAL))
		rc = rl_ids_append(out, t->post.v, t->post.n);
	tk_state_free(&st);
	if (rc)
		out->n = mark;
	return rc;
}

int rl_tok_pretokenize(const rl_tokenizer *t, const char *text, size_t len, rl_tok_piece_fn fn,
		       void *ctx)
{
	if (!rl_utf8_valid(text, len))
		return rl_error(RL_EDATA, "text is not valid UTF-8");
	tk_state st = {.t = t, .piece_fn = fn, .piece_ctx = ctx};
	st.md = pcre2_match_data_create(1, NULL);
	if (!st.md)
		return rl_error(RL_ESYS, "out of memory");
	const char *ns;
	size_t nn;
	int rc = tk_normalize(&st, text, len, &ns, &nn);
	if (!rc)
		rc = tk_pretokenize(&st, 0, ns, nn, 1);
	tk_state_free(&st);
	return rc;
}

/* ---- decode and lookups ----------------------------------------------------------------- */
int rl_tok_decode(const rl_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
		  char **text, size_t *len)
{
	*text = NULL;
	*len = 0;
	const char **toks = rl_malloc_array(n ? n : 1, sizeof *toks);
	size_t *lens = rl_malloc_array(n ? n : 1, sizeof *lens);
	if (!toks || !lens) {
		free(toks);
		free(lens);
		return RL_ESYS;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l;
		const char *s = rl_tok_str(t, ids[i], &l);
		if (!s || (skip_special && t->special[ids[i]]))
			continue;
		toks[k] = s;
		lens[k++] = l;
	}
	tk_buf out = {0};
	int rc = tk_decode_tokens(t, toks, lens, k, &out);
	free(toks);
	free(lens);
	if (rc) {
		tk_buf_free(&out);
		return rc;
	}
	if (!out.p && tk_buf_add(&out, "", 0))
		return RL_ESYS;
	*text = out.p;
	*len = out.n;
	return RL_OK;
}

int32_t rl_tok_id(const rl_tokenizer *t, const char *token, size_t len)
{
	int32_t id = tk_map_get(&t->added_map, token, len);
	return id >= 0 ? id : tk_map_get(&t->vocab, token, len);
}

const char *rl_tok_str(const rl_tokenizer *t, int32_t id, size_t *len)
{
	if (id < 0 || id >= t->n_all)
		return NULL;
	int32_t a = t->added_of ? t->added_of[id] : -1;
	if (a >= 0) {
		const tk_added *x = &t->added[a];
		*len = x->norm ? x->norm_len : x->len;
		return x->norm ? x->norm : x->content;
	}
	if (id < t->n_ids && t->id_ent[id] >= 0)
		return tk_map_key(&t->vocab, (size_t)t->id_ent[id], len);
	return NULL;
}

int rl_tok_is_special(const rl_tokenizer *t, int32_t id)
{
	return id >= 0 && id < t->n_all && t->special[id];
}

int32_t rl_tok_n_vocab(const rl_tokenizer *t)
{
	return t->n_all;
}

int32_t rl_tok_bos(const rl_tokenizer *t)
{
	return t->bos;
}

int32_t rl_tok_eos(const rl_tokenizer *t)
{
	return t->eos;
}

size_t rl_tok_end_ids(const rl_tokenizer *t, const int32_t **ids)
{
	*ids = t->end.v;
	return t->end.n;
}

const char *rl_tok_model_type(const rl_tokenizer *t)
{
	return t->model == MODEL_BPE ? "BPE" : "WordLevel";
}

const char *rl_tok_name(const rl_tokenizer *t)
{
	return t->name;
}
