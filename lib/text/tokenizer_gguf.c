/* tokenizer_gguf.c — tokenizer.json, tokenizer_config.json and
 * generation_config.json from a GGUF's tokenizer metadata. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/error.h"
#include "core/jsonl.h"
#include "text/tokenizer_gguf.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* ---- a growable text buffer that remembers running out of memory ---- */
typedef struct sbuf {
	char *p;
	size_t n, cap;
	int err;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->err = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_int(sbuf *b, long long v)
{
	char t[32];
	snprintf(t, sizeof t, "%lld", v);
	sb_str(b, t);
}

/* A JSON string of n bytes of UTF-8 (validated by the caller). */
static void sb_json(sbuf *b, const char *s, size_t n)
{
	sb_put(b, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_put(b, s + run, i - run);
		run = i + 1;
		char e[8];
		if (c == '"' || c == '\\')
			snprintf(e, sizeof e, "\\%c", c);
		else if (c == '\n')
			snprintf(e, sizeof e, "\\n");
		else if (c == '\t')
			snprintf(e, sizeof e, "\\t");
		else if (c == '\r')
			snprintf(e, sizeof e, "\\r");
		else
			snprintf(e, sizeof e, "\\u%04x", c);
		sb_str(b, e);
	}
	sb_put(b, s + run, n - run);
	sb_put(b, "\"", 1);
}

static void sb_cjson(sbuf *b, const char *s)
{
	sb_json(b, s, strlen(s));
}

/* ---- the metadata ---- */
typedef struct vocab {
	const char *path;
	char *model, *pre;
	rl_gguf_str *tok;
	size_t n;
	int64_t *type; /* n entries (NORMAL when the file has none) */
	float *score;  /* n entries or NULL */
	rl_gguf_str *merges;
	size_t nmerges;
	int64_t bos, eos, unk, pad, eot, eom; /* -1: none */
	int add_bos, add_eos, add_space_prefix;
	rl_gguf_str chat_template; /* s == NULL: none */
	int gemma;
	uint32_t *slot; /* hash table of token ids + 1 (0: empty), size mask + 1 */
	size_t mask;
} vocab;

static void vocab_free(vocab *v)
{
	free(v->model);
	free(v->pre);
	free(v->tok);
	free(v->type);
	free(v->score);
	free(v->merges);
	free(v->slot);
}

static int opt_id(const rl_gguf *g, const char *key, size_t n, int64_t *out)
{
	uint32_t id;
	int rc = rl_gguf_get_u32(g, key, &id);
	*out = -1;
	if (rc == RL_NO) {
		rl_error_clear();
		return RL_OK;
	}
	if (rc)
		return rc;
	if (id >= n)
		return rl_error(RL_EDATA, "'%s': '%s' = %u is not a token id (%zu tokens)",
				g->files[0].path, key, id, n);
	*out = id;
	return RL_OK;
}

static int opt_bool(const rl_gguf *g, const char *key, int dflt, int *out)
{
	int rc = rl_gguf_get_bool(g, key, out);
	if (rc == RL_NO) {
		rl_error_clear();
		*out = dflt;
		return RL_OK;
	}
	return rc;
}

static uint64_t hash(const char *s, size_t n)
{
	return XXH3_64bits(s, n);
}

/* The id of a token string, or -1. */
static int64_t lookup(const vocab *v, const char *s, size_t n)
{
	for (size_t h = hash(s, n) & v->mask;; h = (h + 1) & v->mask) {
		uint32_t e = v->slot[h];
		if (!e)
			return -1;
		const rl_gguf_str *t = &v->tok[e - 1];
		if (t->len == n && memcmp(t->s, s, n) == 0)
			return e - 1;
	}
}

/* Every token valid UTF-8 without NUL, and unique (the hash table is built). */
static int index_tokens(vocab *v)
{
	size_t cap = 16;
	while (cap < 2 * v->n)
		cap *= 2;
	v->slot = rl_calloc(cap, sizeof *v->slot);
	if (!v->slot)
		return RL_ESYS;
	v->mask = cap - 1;
	for (size_t i = 0; i < v->n; i++) {
		const rl_gguf_str *t = &v->tok[i];
		if (!rl_utf8_valid(t->s, t->len) || memchr(t->s, '\0', t->len))
			return rl_error(RL_EDATA, "'%s': token %zu is not UTF-8 text without NUL",
					v->path, i);
		size_t h = hash(t->s, t->len) & v->mask;
		for (; v->slot[h]; h = (h + 1) & v->mask) {
			const rl_gguf_str *o = &v->tok[v->slot[h] - 1];
			if (o->len == t->len && memcmp(o->s, t->s, t->len) == 0)
				return rl_error(
					RL_EDATA,
					"'%s': tokens %u and %zu are the same string '%.*s'",
					v->path, v->slot[h] - 1, i,
					(int)(t->len > 40 ? 40 : t->len), t->s);
		}
		v->slot[h] = (uint32_t)i + 1;
	}
	return RL_OK;
}

static int read_vocab(const rl_gguf *g, vocab *v)
{
	int rc;
	memset(v, 0, sizeof *v);
	v->path = g->files[0].path;
	if ((rc = rl_gguf_get_cstr(g, "tokenizer.ggml.model", &v->model)))
		return rc;
	if ((rc = rl_gguf_get_cstr(g, "tokenizer.ggml.pre", &v->pre)) == RL_NO) {
		rl_error_clear();
		v->pre = NULL;
	} else if (rc) {
		return rc;
	}
	if ((rc = rl_gguf_get_str_array(g, "tokenizer.ggml.tokens", &v->tok, &v->n)))
		return rc;
	if (v->n == 0 || v->n > (1u << 30))
		return rl_error(RL_EDATA, "'%s': %zu tokens", v->path, v->n);
	size_t nt = 0;
	rc = rl_gguf_get_int_array(g, "tokenizer.ggml.token_type", &v->type, &nt);
	if (rc == RL_NO) {
		rl_error_clear();
		v->type = rl_malloc_array(v->n, sizeof *v->type);
		if (!v->type)
			return RL_ESYS;
		for (size_t i = 0; i < v->n; i++)
			v->type[i] = TT_NORMAL;
	} else if (rc) {
		return rc;
	} else if (nt != v->n) {
		return rl_error(RL_EDATA, "'%s': %zu token types for %zu tokens", v->path, nt,
				v->n);
	}
	size_t ns = 0;
	rc = rl_gguf_get_float_array(g, "tokenizer.ggml.scores", &v->score, &ns);
	if (rc == RL_NO)
		rl_error_clear();
	else if (rc)
		return rc;
	else if (ns != v->n)
		return rl_error(RL_EDATA, "'%s': %zu scores for %zu tokens", v->path, ns, v->n);
	rc = rl_gguf_get_str_array(g, "tokenizer.ggml.merges", &v->merges, &v->nmerges);
	if (rc == RL_NO)
		rl_error_clear();
	else if (rc)
		return rc;
	if ((rc = opt_id(g, "tokenizer.ggml.bos_token_id", v->n, &v->bos)) ||
	    (rc = opt_id(g, "tokenizer.ggml.eos_token_id", v->n, &v->eos)) ||
	    (rc = opt_id(g, "tokenizer.ggml.unknown_token_id", v->n, &v->unk)) ||
	    (rc = opt_id(g, "tokenizer.ggml.padding_token_id", v->n, &v->pad)) ||
	    (rc = opt_id(g, "tokenizer.ggml.eot_token_id", v->n, &v->eot)) ||
	    (rc = opt_id(g, "tokenizer.ggml.eom_token_id", v->n, &v->eom)))
		return rc;
	int spm = strcmp(v->model, "llama") == 0;
	if ((rc = opt_bool(g, "tokenizer.ggml.add_bos_token", spm, &v->add_bos)) ||
	    (rc = opt_bool(g, "tokenizer.ggml.add_eos_token", 0, &v->add_eos)) ||
	    (rc = opt_bool(g, "tokenizer.ggml.add_space_prefix", 1, &v->add_space_prefix)))
		return rc;
	if (v->add_bos && v->bos < 0)
		return rl_error(RL_EDATA, "'%s': add_bos_token without a bos_token_id", v->path);
	if (v->add_eos && v->eos < 0)
		return rl_error(RL_EDATA, "'%s': add_eos_token without an eos_token_id", v->path);
	rc = rl_gguf_get_str(g, "tokenizer.chat_template", &v->chat_template);
	if (rc == RL_NO) {
		rl_error_clear();
		v->chat_template.s = NULL;
	} else if (rc) {
		return rc;
	} else if (!rl_utf8_valid(v->chat_template.s, v->chat_template.len)) {
		return rl_error(RL_EDATA, "'%s': tokenizer.chat_template is not UTF-8", v->path);
	}
	char *arch = NULL;
	if (rl_gguf_get_cstr(g, "general.architecture", &arch) == RL_OK)
		v->gemma = strcmp(arch, "gemma") == 0;
	rl_error_clear();
	free(arch);
	return index_tokens(v);
}

/* ---- the pre-tokenizers of byte-level vocabularies ---- */
#define RE_QWEN2                                                                                   \
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "                      \
	"?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3                                                                                  \
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "                 \
	"?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_TEKKEN                                                                                  \
	"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]" \
	"+|"                                                                                       \
	"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]" \
	"*|"                                                                                       \
	"\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct bl_pre {
	const char *names; /* space-separated tokenizer.ggml.pre values */
	const char *normalizer;
	const char *regex; /* Split(regex, Isolated) before ByteLevel(use_regex false) */
	int digits;	   /* Digits(individual) before ByteLevel(use_regex true) */
	int ignore_merges;
	int prefix_flags; /* the decoder's ByteLevel add_prefix_space/trim_offsets: true */
} bl_pre;

static const bl_pre bl_pres[] = {
	{"qwen2 deepseek-r1-qwen", "{\"type\":\"NFC\"}", RE_QWEN2, 0, 0, 0},
	{"llama3 llama-bpe llama-v3", "null", RE_LLAMA3, 0, 1, 1},
	/* DBRX's and OLMo 2's cl100k-style tokenizer: Llama 3's regex, merges
	 * applied to every word (llama.cpp sets no ignore_merges for it) */
	{"dbrx", "null", RE_LLAMA3, 0, 0, 1},
	{"tekken", "null", RE_TEKKEN, 0, 1, 1},
	{"smollm", "null", NULL, 1, 0, 1},
	{"gpt2", "null", NULL, 0, 0, 1},
};

static const bl_pre *find_pre(const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof bl_pres / sizeof bl_pres[0]; i++) {
		for (const char *p = bl_pres[i].names; *p;) {
			const char *sp = strchr(p, ' ');
			size_t len = sp ? (size_t)(sp - p) : strlen(p);
			if (len == n && memcmp(p, name, n) == 0)
				return &bl_pres[i];
			p += len + (sp != NULL);
		}
	}
	return NULL;
}

static void sb_bytelevel(sbuf *b, int add_prefix, int trim, int use_regex)
{
	sb_str(b, "{\"type\":\"ByteLevel\",\"add_prefix_space\":");
	sb_str(b, add_prefix ? "true" : "false");
	sb_str(b, ",\"trim_offsets\":");
	sb_str(b, trim ? "true" : "false");
	sb_str(b, ",\"use_regex\":");
	sb_str(b, use_regex ? "true" : "false");
	sb_str(b, "}");
}

static void sb_tok(sbuf *b, const vocab *v, int64_t id)
{
	sb_json(b, v->tok[id].s, v->tok[id].len);
}

/* TemplateProcessing adding BOS and/or EOS, as transformers' converters write it. */
static void sb_template(sbuf *b, const vocab *v)
{
	for (int pair = 0; pair < 2; pair++) {
		sb_str(b, pair ? ",\"pair\":[" : "\"single\":[");
		int first = 1;
		for (int part = 0; part < 1 + pair; part++) {
			if (v->add_bos) {
				sb_str(b, first ? "" : ",");
				sb_str(b, "{\"SpecialToken\":{\"id\":");
				sb_tok(b, v, v->bos);
				sb_str(b, part ? ",\"type_id\":1}}" : ",\"type_id\":0}}");
				first = 0;
			}
			sb_str(b, first ? "" : ",");
			sb_str(b, part ? "{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}"
				       : "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}");
			first = 0;
			if (v->add_eos) {
				sb_str(b, ",{\"SpecialToken\":{\"id\":");
				sb_tok(b, v, v->eos);
				sb_str(b, part ? ",\"type_id\":1}}" : ",\"type_id\":0}}");
			}
		}
		sb_str(b, "]");
	}
	sb_str(b, ",\"special_tokens\":{");
	int first = 1;
	for (int k = 0; k < 2; k++) {
		int64_t id = k ? v->eos : v->bos;
		if (!(k ? v->add_eos : v->add_bos) || (k && v->add_bos && v->bos == v->eos))
			continue;
		sb_str(b, first ? "" : ",");
		sb_tok(b, v, id);
		sb_str(b, ":{\"id\":");
		sb_tok(b, v, id);
		sb_str(b, ",\"ids\":[");
		sb_int(b, id);
		sb_str(b, "],\"tokens\":[");
		sb_tok(b, v, id);
		sb_str(b, "]}");
		first = 0;
	}
	sb_str(b, "}}");
}

static void sb_added_tokens(sbuf *b, const vocab *v)
{
	sb_str(b, "\"added_tokens\":[");
	int first = 1;
	for (size_t i = 0; i < v->n; i++) {
		int64_t ty = v->type[i];
		if (ty != TT_CONTROL && ty != TT_UNKNOWN && ty != TT_USER)
			continue;
		sb_str(b, first ? "{\"id\":" : ",{\"id\":");
		sb_int(b, (long long)i);
		sb_str(b, ",\"content\":");
		sb_tok(b, v, (int64_t)i);
		sb_str(b, ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
			  "\"normalized\":false,\"special\":");
		sb_str(b, ty == TT_USER ? "false}" : "true}");
		first = 0;
	}
	sb_str(b, "]");
}

static void sb_vocab(sbuf *b, const vocab *v)
{
	sb_str(b, ",\"vocab\":{");
	for (size_t i = 0; i < v->n; i++) {
		if (i)
			sb_str(b, ",");
		sb_tok(b, v, (int64_t)i);
		sb_str(b, ":");
		sb_int(b, (long long)i);
	}
	sb_str(b, "}");
}

static void sb_merge(sbuf *b, int first, const char *l, size_t ln, const char *r, size_t rn)
{
	sb_str(b, first ? "[" : ",[");
	sb_json(b, l, ln);
	sb_str(b, ",");
	sb_json(b, r, rn);
	sb_str(b, "]");
}

static int byte_level_json(const vocab *v, sbuf *b)
{
	const bl_pre *p = v->pre ? find_pre(v->pre) : NULL;
	if (!p)
		return rl_error(RL_EDATA,
				"'%s': pre-tokenizer '%s' is not one rl-import knows (qwen2, "
				"deepseek-r1-qwen, llama3, llama-bpe, llama-v3, dbrx, tekken, "
				"smollm, gpt2)",
				v->path, v->pre ? v->pre : "(none)");
	if (!v->merges)
		return rl_error(RL_EDATA, "'%s': a gpt2 tokenizer without tokenizer.ggml.merges",
				v->path);
	sb_str(b, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,");
	sb_added_tokens(b, v);
	sb_str(b, ",\"normalizer\":");
	sb_str(b, p->normalizer);
	sb_str(b, ",\"pre_tokenizer\":");
	if (p->regex) {
		sb_str(b, "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
			  "\"pattern\":{\"Regex\":");
		sb_cjson(b, p->regex);
		sb_str(b, "},\"behavior\":\"Isolated\",\"invert\":false},");
		sb_bytelevel(b, 0, p->prefix_flags, 0);
		sb_str(b, "]}");
	} else if (p->digits) {
		sb_str(b, "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\","
			  "\"individual_digits\":true},");
		sb_bytelevel(b, 0, 1, 1);
		sb_str(b, "]}");
	} else {
		sb_bytelevel(b, 0, 1, 1);
	}
	sb_str(b, ",\"post_processor\":");
	if (v->add_bos || v->add_eos) {
		sb_str(b, "{\"type\":\"Sequence\",\"processors\":[");
		sb_bytelevel(b, p->prefix_flags, 0, p->prefix_flags);
		sb_str(b, ",{\"type\":\"TemplateProcessing\",");
		sb_template(b, v);
		sb_str(b, "]}");
	} else {
		sb_bytelevel(b, p->prefix_flags, 0, p->prefix_flags);
	}
	sb_str(b, ",\"decoder\":");
	sb_bytelevel(b, p->prefix_flags, p->prefix_flags, p->prefix_flags);
	sb_str(b, ",\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
		  "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,"
		  "\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":");
	sb_str(b, p->ignore_merges ? "true" : "false");
	sb_vocab(b, v);
	sb_str(b, ",\"merges\":[");
	for (size_t i = 0; i < v->nmerges; i++) {
		const rl_gguf_str *m = &v->merges[i];
		const char *sp = m->s ? memchr(m->s, ' ', m->len) : NULL;
		if (!sp || memchr(sp + 1, ' ', m->len - (size_t)(sp + 1 - m->s)) ||
		    !rl_utf8_valid(m->s, m->len))
			return rl_error(RL_EDATA, "'%s': merge %zu is not 'a b' in UTF-8", v->path,
					i);
		size_t ln = (size_t)(sp - m->s);
		sb_merge(b, i == 0, m->s, ln, sp + 1, m->len - ln - 1);
	}
	sb_str(b, "]}}");
	return RL_OK;
}

/* ---- SentencePiece BPE ---- */
typedef struct cand {
	int64_t merged, left, right;
} cand;

static const vocab *sort_v;

/* Best score first, ties (and Gemma: always) in id order. */
static int cmp_score(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	if (sort_v->score && !sort_v->gemma) {
		float sx = sort_v->score[x], sy = sort_v->score[y];
		if (sx != sy)
			return sx > sy ? -1 : 1;
	}
	return (x > y) - (x < y);
}

/* Within one token, its splits in (left id, right id) order. */
static int cmp_split(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	if (x->left != y->left)
		return x->left < y->left ? -1 : 1;
	return (x->right > y->right) - (x->right < y->right);
}

static int spm_merges(const vocab *v, sbuf *b)
{
	int64_t *order = rl_malloc_array(v->n, sizeof *order);
	if (!order)
		return RL_ESYS;
	for (size_t i = 0; i < v->n; i++)
		order[i] = (int64_t)i;
	size_t maxlen = 1;
	for (size_t i = 0; i < v->n; i++)
		maxlen = v->tok[i].len > maxlen ? v->tok[i].len : maxlen;
	cand *local = rl_malloc_array(maxlen, sizeof *local);
	if (!local) {
		free(order);
		return RL_ESYS;
	}
	sort_v = v; /* qsort has no context argument in C11 */
	qsort(order, v->n, sizeof *order, cmp_score);
	int first = 1;
	for (size_t k = 0; k < v->n; k++) {
		const rl_gguf_str *t = &v->tok[order[k]];
		size_t nl = 0;
		/* split at character boundaries, as Python slices strings */
		for (size_t i = 1; i < t->len; i++) {
			if (((unsigned char)t->s[i] & 0xC0) == 0x80)
				continue;
			int64_t l = lookup(v, t->s, i), r = lookup(v, t->s + i, t->len - i);
			if (l >= 0 && r >= 0)
				local[nl++] = (cand){order[k], l, r};
		}
		qsort(local, nl, sizeof *local, cmp_split);
		for (size_t i = 0; i < nl; i++) {
			const rl_gguf_str *l = &v->tok[local[i].left], *r = &v->tok[local[i].right];
			sb_merge(b, first, l->s, l->len, r->s, r->len);
			first = 0;
		}
	}
	free(order);
	free(local);
	return RL_OK;
}

static int spm_json(const vocab *v, sbuf *b)
{
	int has_bytes = 0;
	for (size_t i = 0; i < v->n && !has_bytes; i++)
		has_bytes = v->type[i] == TT_BYTE;
	sb_str(b, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,");
	sb_added_tokens(b, v);
	sb_str(b, ",\"normalizer\":");
	if (v->add_space_prefix)
		sb_str(b, "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\","
			  "\"prepend\":\"\u2581\"},");
	sb_str(b, "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\u2581\"}");
	if (v->add_space_prefix)
		sb_str(b, "]}");
	sb_str(b, ",\"pre_tokenizer\":null,\"post_processor\":");
	if (v->add_bos || v->add_eos) {
		sb_str(b, "{\"type\":\"TemplateProcessing\",");
		sb_template(b, v);
	} else {
		sb_str(b, "null");
	}
	sb_str(b, ",\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\","
		  "\"pattern\":{\"String\":\"\u2581\"},\"content\":\" \"}");
	if (has_bytes)
		sb_str(b, ",{\"type\":\"ByteFallback\"}");
	sb_str(b, ",{\"type\":\"Fuse\"}");
	if (v->add_space_prefix)
		sb_str(b, ",{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}");
	sb_str(b, "]},\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":");
	if (v->unk >= 0)
		sb_tok(b, v, v->unk);
	else
		sb_str(b, "null");
	sb_str(b, ",\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,"
		  "\"fuse_unk\":true,\"byte_fallback\":");
	sb_str(b, has_bytes ? "true" : "false");
	sb_str(b, ",\"ignore_merges\":false");
	sb_vocab(b, v);
	sb_str(b, ",\"merges\":[");
	int rc = spm_merges(v, b);
	sb_str(b, "]}}");
	return rc;
}

/* ---- tokenizer_config.json and generation_config.json ---- */
static void sb_tok_or_null(sbuf *b, const vocab *v, int64_t id)
{
	if (id >= 0)
		sb_tok(b, v, id);
	else
		sb_str(b, "null");
}

static void config_json(const vocab *v, long model_max_length, sbuf *b)
{
	sb_str(b, "{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n  \"add_bos_token\": ");
	sb_str(b, v->add_bos ? "true" : "false");
	sb_str(b, ",\n  \"add_eos_token\": ");
	sb_str(b, v->add_eos ? "true" : "false");
	sb_str(b, ",\n  \"bos_token\": ");
	sb_tok_or_null(b, v, v->bos);
	sb_str(b, ",\n  \"eos_token\": ");
	sb_tok_or_null(b, v, v->eos);
	sb_str(b, ",\n  \"unk_token\": ");
	sb_tok_or_null(b, v, v->unk);
	sb_str(b, ",\n  \"pad_token\": ");
	sb_tok_or_null(b, v, v->pad);
	sb_str(b, ",\n  \"clean_up_tokenization_spaces\": false");
	if (model_max_length > 0) {
		sb_str(b, ",\n  \"model_max_length\": ");
		sb_int(b, model_max_length);
	}
	if (v->chat_template.s) {
		sb_str(b, ",\n  \"chat_template\": ");
		sb_json(b, v->chat_template.s, v->chat_template.len);
	}
	sb_str(b, "\n}\n");
}

static void generation_json(const vocab *v, sbuf *b)
{
	int64_t ends[3];
	int n = 0;
	int64_t cand_ids[3] = {v->eos, v->eot, v->eom};
	for (int i = 0; i < 3; i++) {
		int dup = cand_ids[i] < 0;
		for (int j = 0; j < n && !dup; j++)
			dup = ends[j] == cand_ids[i];
		if (!dup)
			ends[n++] = cand_ids[i];
	}
	sb_str(b, "{\n  \"bos_token_id\": ");
	if (v->bos >= 0)
		sb_int(b, v->bos);
	else
		sb_str(b, "null");
	sb_str(b, ",\n  \"eos_token_id\": ");
	if (n == 0)
		sb_str(b, "null");
	else if (n == 1)
		sb_int(b, ends[0]);
	for (int i = 0; n > 1 && i < n; i++) {
		sb_str(b, i ? ", " : "[");
		sb_int(b, ends[i]);
	}
	sb_str(b, n > 1 ? "]" : "");
	if (v->pad >= 0) {
		sb_str(b, ",\n  \"pad_token_id\": ");
		sb_int(b, v->pad);
	}
	sb_str(b, "\n}\n");
}

int rl_gguf_tokenizer(const rl_gguf *g, long model_max_length, rl_gguf_tok_files *out)
{
	memset(out, 0, sizeof *out);
	vocab v;
	int rc = read_vocab(g, &v);
	sbuf tj = {0}, tc = {0}, gc = {0};
	if (rc)
		goto out;
	if (strcmp(v.model, "gpt2") == 0)
		rc = byte_level_json(&v, &tj);
	else if (strcmp(v.model, "llama") == 0)
		rc = spm_json(&v, &tj);
	else
		rc = rl_error(RL_EDATA,
			      "'%s': tokenizer model '%s' is not supported (gpt2 and llama are)",
			      v.path, v.model);
	if (rc)
		goto out;
	sb_str(&tj, "\n");
	config_json(&v, model_max_length, &tc);
	generation_json(&v, &gc);
	if (tj.err || tc.err || gc.err) {
		rc = rl_error(RL_ESYS, "out of memory building the tokenizer files");
		goto out;
	}
	out->tokenizer_json = tj.p, out->tokenizer_json_len = tj.n;
	out->tokenizer_config = tc.p, out->tokenizer_config_len = tc.n;
	out->generation_config = gc.p, out->generation_config_len = gc.n;
	tj.p = tc.p = gc.p = NULL;
out:
	free(tj.p);
	free(tc.p);
	free(gc.p);
	vocab_free(&v);
	return rc;
}

void rl_gguf_tok_files_free(rl_gguf_tok_files *f)
{
	free(f->tokenizer_json);
	free(f->tokenizer_config);
	free(f->generation_config);
	memset(f, 0, sizeof *f);
}
