/* test_tokenizer_unicode.c — every code point against HuggingFace tokenizers.
 *
 * Truth: tests/fixtures/tokenizer/unicode.jsonl.xz, written by
 * tests/gen/gen_tokenizer_unicode.py with tokenizers (its docstring describes each
 * line; the probe strings below are built as it builds them). tokenizers classes
 * characters by Oniguruma's Unicode 16 tables, normalizes with Unicode 9 data and
 * asks Rust for the rest; realign has PCRE2 (Unicode 14) and utf8proc (Unicode 15)
 * and the reference's own tables (lib/text/tokenizer_unicode.c). For every code
 * point of every plane this checks:
 *   - the pieces the five real tokenizers' normalizer and pre-tokenizer cut it
 *     into, in eight contexts (rl_tok_pretokenize);
 *   - which code points each regex class matches (\p{..}, \s \w \d \h, negated,
 *     in and out of brackets);
 *   - NFC, NFD, NFKC and NFKD in four contexts, and every canonical decomposition
 *     put back together;
 *   - what Digits, Punctuation, WhitespaceSplit, Whitespace, StripAccents and
 *     Lowercase do with it;
 * then the ids and decodes of a sample of code points and of strings with U+0000
 * for the five tokenizers. Every mismatch is counted; the first few are shown.
 */
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "real_tokenizers.h"
#include "text/tokenizer.h"

#define N_CP 0x110000

static int is_surrogate(uint32_t c)
{
	return c >= 0xD800 && c <= 0xDFFF;
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

static size_t next_utf8(const char *str, size_t n, uint32_t *c)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t l = s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
	if (l > n) { /* the library gave out invalid UTF-8 */
		fprintf(stderr, "truncated UTF-8 in a piece\n");
		exit(1);
	}
	*c = l == 1 ? s[0] : s[0] & (0x7F >> l);
	for (size_t k = 1; k < l; k++)
		*c = *c << 6 | (s[k] & 0x3F);
	return l;
}

/* A growable string. */
typedef struct str {
	char *p;
	size_t n, cap;
} str;

static void str_add(str *s, const char *p, size_t n)
{
	if (s->n + n + 1 > s->cap) {
		s->cap = (s->n + n + 1) * 2;
		s->p = realloc(s->p, s->cap);
		REQUIRE(s->p != NULL);
	}
	memcpy(s->p + s->n, p, n);
	s->n += n;
	s->p[s->n] = 0;
}

/* fmt with every "%s" replaced by c (the generator's contexts). */
static void add_context(str *s, const char *fmt, uint32_t c)
{
	char u[4];
	size_t ul = put_utf8(u, c);
	for (const char *f = fmt; *f;) {
		if (f[0] == '%' && f[1] == 's') {
			str_add(s, u, ul);
			f += 2;
		} else {
			str_add(s, f++, 1);
		}
	}
}

static void add_cps(str *s, const cJSON *cps)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, cps)
	{
		char u[4];
		str_add(s, u, put_utf8(u, (uint32_t)x->valuedouble));
	}
}

/* Every code point, surrogates aside, in order: the probe the sets come from. */
static str all_cps(const char *between)
{
	str s = {0};
	size_t bl = strlen(between);
	str_add(&s, between, bl);
	for (uint32_t c = 0; c < N_CP; c++) {
		if (is_surrogate(c))
			continue;
		char u[4];
		str_add(&s, u, put_utf8(u, c));
		str_add(&s, between, bl);
	}
	return s;
}

/* ---- pieces ------------------------------------------------------------------------ */
typedef struct lens {
	size_t v[64];
	size_t n;
} lens;

static int piece_len(void *ctx, const char *piece, size_t len)
{
	(void)piece;
	lens *l = ctx;
	if (l->n < sizeof l->v / sizeof l->v[0])
		l->v[l->n] = len;
	l->n++;
	return RL_OK;
}

static const char *const piece_contexts[] = {"%s",  "a%sb", "A%sb", "%sAb",
					     "%s!", "1%s2", "'%s",  " %s%s"};

static void piece_probe(str *s, uint32_t c)
{
	s->n = 0;
	for (size_t k = 0; k < sizeof piece_contexts / sizeof piece_contexts[0]; k++) {
		if (k)
			str_add(s, "\n", 1);
		add_context(s, piece_contexts[k], c);
	}
}

static void show_lens(const char *what, const lens *l)
{
	fprintf(stderr, " %s", what);
	for (size_t i = 0; i < l->n && i < 64; i++)
		fprintf(stderr, " %zu", l->v[i]);
}

static void check_pieces(const char *name, const rl_tokenizer *t, const cJSON *runs)
{
	size_t bad = 0, n = 0;
	const cJSON *run = runs->child;
	lens want = {.n = 0};
	str s = {0};
	for (uint32_t c = 0; c < N_CP; c++) {
		if (is_surrogate(c))
			continue;
		if (!want.n || c > (uint32_t)cJSON_GetArrayItem(run, 1)->valuedouble) {
			if (want.n)
				run = run->next;
			REQUIRE(run && c == (uint32_t)cJSON_GetArrayItem(run, 0)->valuedouble);
			want.n = 0;
			const cJSON *x;
			cJSON_ArrayForEach(x, cJSON_GetArrayItem(run, 2))
				piece_len(&want, NULL, (size_t)x->valuedouble);
		}
		piece_probe(&s, c);
		lens got = {.n = 0};
		int rc = rl_tok_pretokenize(t, s.p, s.n, piece_len, &got);
		if (rc || got.n != want.n || memcmp(got.v, want.v, got.n * sizeof got.v[0]) != 0) {
			if (bad++ < 5) {
				fprintf(stderr, "%s: U+%04X: pieces of", name, c);
				show_lens("", &got);
				show_lens("; want", &want);
				fprintf(stderr, " %s\n", rc ? rl_errmsg() : "");
			}
		}
		n++;
	}
	free(s.p);
	CHECKF(bad == 0, "%s: %zu of %zu code points are split unlike tokenizers", name, bad, n);
	printf("%-13s pieces of %zu code points in %zu contexts: %zu differ\n", name, n,
	       sizeof piece_contexts / sizeof piece_contexts[0], bad);
}

/* ---- sets of code points -------------------------------------------------------------- */
/* A tokenizer with only this normalizer and pre-tokenizer (JSON text). */
static rl_tokenizer *probe_tokenizer(const char *normalizer, const char *pre_tokenizer)
{
	char json[2048];
	snprintf(json, sizeof json,
		 "{\"version\": \"1.0\", \"added_tokens\": [], \"normalizer\": %s, "
		 "\"pre_tokenizer\": %s, \"post_processor\": null, \"decoder\": null, "
		 "\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"[UNK]\": 0}, "
		 "\"unk_token\": \"[UNK]\"}}",
		 normalizer, pre_tokenizer);
	rl_tokenizer *t;
	int rc = rl_tokenizer_load_mem(json, strlen(json), NULL, 0, "probe", &t);
	CHECKF(rc == RL_OK, "probe tokenizer %s %s: %s", normalizer, pre_tokenizer, rl_errmsg());
	return rc ? NULL : t;
}

typedef struct pieces {
	str *v;
	size_t n, cap;
} pieces;

static int collect(void *ctx, const char *piece, size_t len)
{
	pieces *p = ctx;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 1024;
		p->v = realloc(p->v, p->cap * sizeof *p->v);
		REQUIRE(p->v != NULL);
	}
	p->v[p->n] = (str){0};
	str_add(&p->v[p->n++], piece, len);
	return RL_OK;
}

static void pieces_free(pieces *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].p);
	free(p->v);
	memset(p, 0, sizeof *p);
}

static pieces split(const rl_tokenizer *t, const str *s)
{
	pieces p = {0};
	REQUIRE(rl_tok_pretokenize(t, s->p, s->n, collect, &p) == RL_OK);
	return p;
}

static void set_ranges(uint8_t *set, const cJSON *ranges)
{
	memset(set, 0, N_CP);
	const cJSON *r;
	cJSON_ArrayForEach(r, ranges)
	{
		uint32_t lo = (uint32_t)cJSON_GetArrayItem(r, 0)->valuedouble;
		uint32_t hi = (uint32_t)cJSON_GetArrayItem(r, 1)->valuedouble;
		REQUIRE(lo <= hi && hi < N_CP);
		memset(set + lo, 1, hi - lo + 1);
	}
}

/* got against the ranges of want, over every code point. */
static void compare_sets(const char *what, const uint8_t *got, const cJSON *want)
{
	static uint8_t w[N_CP];
	set_ranges(w, want);
	size_t bad = 0, n = 0;
	for (uint32_t c = 0; c < N_CP; c++) {
		if (is_surrogate(c))
			continue;
		n++;
		if (!got[c] != !w[c] && bad++ < 5)
			fprintf(stderr, "%s: U+%04X is %s, tokenizers says %s\n", what, c,
				got[c] ? "in" : "out", w[c] ? "in" : "out");
	}
	CHECKF(bad == 0, "%s: %zu code points differ", what, bad);
	printf("%-28s %zu code points, %zu differ\n", what, n, bad);
}

/* The code points in no piece: what a split removed. */
static void removed_set(uint8_t *set, const pieces *p)
{
	memset(set, 1, N_CP);
	for (size_t i = 0; i < p->n; i++)
		for (size_t k = 0; k < p->v[i].n;) {
			uint32_t c;
			k += next_utf8(p->v[i].p + k, p->v[i].n - k, &c);
			set[c] = 0;
		}
}

static void check_regex(const char *pattern, const cJSON *ranges)
{
	cJSON *pt = cJSON_CreateObject();
	cJSON_AddStringToObject(pt, "type", "Split");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(pt, "pattern"), "Regex", pattern);
	cJSON_AddStringToObject(pt, "behavior", "Removed");
	cJSON_AddBoolToObject(pt, "invert", 0);
	char *pts = cJSON_PrintUnformatted(pt);
	rl_tokenizer *t = probe_tokenizer("null", pts);
	free(pts);
	cJSON_Delete(pt);
	if (!t)
		return;
	static uint8_t set[N_CP];
	str all = all_cps("");
	pieces p = split(t, &all);
	removed_set(set, &p);
	char what[96];
	snprintf(what, sizeof what, "regex %s", pattern);
	compare_sets(what, set, ranges);
	pieces_free(&p);
	free(all.p);
	rl_tokenizer_free(t);
}

/* Digits and Punctuation: the code points a pre-tokenizer puts alone between 'a's. */
static void check_isolated(const char *what, const char *pre_tokenizer, const cJSON *ranges)
{
	rl_tokenizer *t = probe_tokenizer("null", pre_tokenizer);
	if (!t)
		return;
	static uint8_t set[N_CP];
	memset(set, 0, sizeof set);
	str all = all_cps("a");
	pieces p = split(t, &all);
	for (size_t i = 0; i < p.n; i++) {
		uint32_t c;
		if (next_utf8(p.v[i].p, p.v[i].n, &c) == p.v[i].n && c != 'a')
			set[c] = 1;
	}
	compare_sets(what, set, ranges);
	pieces_free(&p);
	free(all.p);
	rl_tokenizer_free(t);
}

static void check_whitespace_split(const cJSON *ranges)
{
	rl_tokenizer *t = probe_tokenizer("null", "{\"type\": \"WhitespaceSplit\"}");
	if (!t)
		return;
	static uint8_t set[N_CP];
	str all = all_cps("a");
	pieces p = split(t, &all);
	removed_set(set, &p);
	compare_sets("WhitespaceSplit", set, ranges);
	pieces_free(&p);
	free(all.p);
	rl_tokenizer_free(t);
}

/* Whitespace (\w+|[^\w\s]+, regex crate) over " <c>a" for every c: a word char
 * stays with its 'a', a space vanishes. */
static void check_whitespace(const cJSON *word, const cJSON *space)
{
	rl_tokenizer *t = probe_tokenizer("null", "{\"type\": \"Whitespace\"}");
	if (!t)
		return;
	str s = {0};
	for (uint32_t c = 0; c < N_CP; c++)
		if (!is_surrogate(c))
			add_context(&s, " %sa", c);
	pieces p = split(t, &s);
	static uint8_t set[N_CP];
	memset(set, 0, sizeof set);
	for (size_t i = 0; i < p.n; i++) {
		uint32_t c;
		size_t l = next_utf8(p.v[i].p, p.v[i].n, &c);
		if (l + 1 == p.v[i].n && p.v[i].p[l] == 'a')
			set[c] = 1;
	}
	compare_sets("Whitespace: word", set, word);
	removed_set(set, &p);
	compare_sets("Whitespace: space", set, space);
	pieces_free(&p);
	free(s.p);
	rl_tokenizer_free(t);
}

/* The normalizer's output for the whole probe (one piece: no pre-tokenizer). */
static int whole(void *ctx, const char *piece, size_t len)
{
	str_add(ctx, piece, len);
	return RL_OK;
}

static void normalize(const rl_tokenizer *t, const str *in, str *out)
{
	out->n = 0;
	str_add(out, "", 0);
	REQUIRE(rl_tok_pretokenize(t, in->p, in->n, whole, out) == RL_OK);
}

static void check_strip_accents(const cJSON *ranges)
{
	rl_tokenizer *t = probe_tokenizer("{\"type\": \"StripAccents\"}", "null");
	if (!t)
		return;
	str all = all_cps(""), out = {0};
	normalize(t, &all, &out);
	static uint8_t set[N_CP];
	memset(set, 1, sizeof set);
	for (size_t k = 0; k < out.n;) {
		uint32_t c;
		k += next_utf8(out.p + k, out.n - k, &c);
		set[c] = 0;
	}
	compare_sets("StripAccents", set, ranges);
	free(all.p);
	free(out.p);
	rl_tokenizer_free(t);
}

/* Lowercase maps character by character: all of them at once, against the
 * changed ones spliced into the identity. */
static void check_lowercase(const cJSON *changes)
{
	rl_tokenizer *t = probe_tokenizer("{\"type\": \"Lowercase\"}", "null");
	if (!t)
		return;
	str all = all_cps("\n"), want = {0}, got = {0};
	const cJSON *ch = changes->child;
	str_add(&want, "\n", 1);
	for (uint32_t c = 0; c < N_CP; c++) {
		if (is_surrogate(c))
			continue;
		if (ch && (uint32_t)cJSON_GetArrayItem(ch, 0)->valuedouble == c) {
			const char *lc = cJSON_GetArrayItem(ch, 1)->valuestring;
			str_add(&want, lc, strlen(lc));
			ch = ch->next;
		} else {
			char u[4];
			str_add(&want, u, put_utf8(u, c));
		}
		str_add(&want, "\n", 1);
	}
	normalize(t, &all, &got);
	/* line by line: a line is one code point (U+000A's line is empty on both) */
	size_t bad = 0, line = 0, g = 0, w = 0;
	while (g < got.n && w < want.n) {
		const char *ge = memchr(got.p + g, '\n', got.n - g);
		const char *we = memchr(want.p + w, '\n', want.n - w);
		if (!ge || !we)
			break;
		size_t gl = (size_t)(ge - got.p) - g, wl = (size_t)(we - want.p) - w;
		if ((gl != wl || memcmp(got.p + g, want.p + w, gl) != 0) && bad++ < 5)
			fprintf(stderr, "Lowercase: line %zu: got '%.*s', want '%.*s'\n", line,
				(int)gl, got.p + g, (int)wl, want.p + w);
		g += gl + 1;
		w += wl + 1;
		line++;
	}
	bad += g != got.n || w != want.n;
	CHECKF(bad == 0, "Lowercase: %zu code points differ", bad);
	printf("%-28s %d code points changed, %zu differ\n", "Lowercase",
	       cJSON_GetArraySize(changes), bad);
	free(all.p);
	free(want.p);
	free(got.p);
	rl_tokenizer_free(t);
}

/* ---- normalization forms ------------------------------------------------------------- */
static const char *const forms[] = {"NFC", "NFD", "NFKC", "NFKD"};
static const char *const norm_contexts[] = {"%s", "a%s\xCC\xB4", "\xCC\x81%s", "a%s"};

static rl_tokenizer *form_tokenizer(const char *form)
{
	char nz[64];
	snprintf(nz, sizeof nz, "{\"type\": \"%s\"}", form);
	return probe_tokenizer(nz, "null");
}

/* The probe of c in context k and what the reference makes of it. */
static void norm_case(uint32_t c, size_t k, const cJSON *outs, str *in, const char **want,
		      size_t *want_len)
{
	in->n = 0;
	str_add(in, "", 0);
	add_context(in, norm_contexts[k], c);
	const cJSON *o = outs ? cJSON_GetArrayItem(outs, (int)k) : NULL;
	*want = cJSON_IsString(o) ? o->valuestring : in->p;
	*want_len = cJSON_IsString(o) ? strlen(*want) : in->n;
}

/* Every code point in every context: the listed outputs, or the probe itself.
 * Probes go through a batch at a time, joined by "\n", a starter that composes
 * with nothing (so nothing crosses it: the batch's form is its probes' forms
 * joined); a batch that differs is gone through probe by probe. */
static void check_form(int f, const cJSON *const *lines, size_t n_lines)
{
	enum { BATCH = 4096 };
	rl_tokenizer *t = form_tokenizer(forms[f]);
	if (!t)
		return;
	const size_t nk = sizeof norm_contexts / sizeof norm_contexts[0];
	size_t bad = 0, n = 0, li = 0;
	str in = {0}, out = {0}, batch = {0}, want = {0};
	for (uint32_t lo = 0; lo < N_CP; lo += BATCH) {
		uint32_t hi = lo + BATCH < N_CP ? lo + BATCH : N_CP;
		size_t li0 = li, bad0 = bad;
		batch.n = want.n = 0;
		str_add(&batch, "", 0);
		str_add(&want, "", 0);
		for (int pass = 0; pass < 2; pass++) {
			li = li0;
			for (uint32_t c = lo; c < hi; c++) {
				if (is_surrogate(c))
					continue;
				while (li < n_lines &&
				       cJSON_GetObjectItem(lines[li], "cp")->valuedouble < c)
					li++;
				const cJSON *outs =
					li < n_lines && cJSON_GetObjectItem(lines[li], "cp")
									->valuedouble == c
						? cJSON_GetObjectItem(lines[li], "out")
						: NULL;
				for (size_t k = 0; k < nk; k++) {
					const char *w;
					size_t wl;
					norm_case(c, k, outs, &in, &w, &wl);
					if (pass == 0) {
						str_add(&batch, in.p, in.n);
						str_add(&batch, "\n", 1);
						str_add(&want, w, wl);
						str_add(&want, "\n", 1);
						n++;
						continue;
					}
					normalize(t, &in, &out);
					if ((wl != out.n || memcmp(w, out.p, out.n) != 0) &&
					    bad++ < 5)
						fprintf(stderr,
							"%s: U+%04X in context %zu: got '%s', want "
							"'%s'\n",
							forms[f], c, k, out.p, w);
				}
			}
			if (pass == 0) {
				normalize(t, &batch, &out);
				if (out.n == want.n && memcmp(out.p, want.p, out.n) == 0)
					break;
			} else if (bad == bad0 && bad++ < 5) {
				fprintf(stderr,
					"%s: U+%04X..: the batch differs, its probes do not\n",
					forms[f], lo);
			}
		}
	}
	CHECKF(bad == 0, "%s: %zu of %zu probes differ", forms[f], bad, n);
	printf("%-28s %zu probes (%zu listed as changed), %zu differ\n", forms[f], n, n_lines, bad);
	free(in.p);
	free(out.p);
	free(batch.p);
	free(want.p);
	rl_tokenizer_free(t);
}

/* The canonical decompositions: each form of each. */
static void check_recompose(const cJSON *const *lines, size_t n_lines)
{
	for (int f = 0; f < 4; f++) {
		rl_tokenizer *t = form_tokenizer(forms[f]);
		if (!t)
			return;
		size_t bad = 0;
		str in = {0}, out = {0};
		for (size_t i = 0; i < n_lines; i++) {
			const char *s = cJSON_GetObjectItem(lines[i], "norm_in")->valuestring;
			const char *want = cJSON_GetObjectItem(lines[i], forms[f])->valuestring;
			in.n = 0;
			str_add(&in, s, strlen(s));
			normalize(t, &in, &out);
			if ((strlen(want) != out.n || memcmp(want, out.p, out.n) != 0) && bad++ < 5)
				fprintf(stderr, "%s of '%s': got '%s', want '%s'\n", forms[f], s,
					out.p, want);
		}
		CHECKF(bad == 0, "%s: %zu of %zu decompositions differ", forms[f], bad, n_lines);
		printf("%-28s %zu decompositions, %zu differ\n", forms[f], n_lines, bad);
		free(in.p);
		free(out.p);
		rl_tokenizer_free(t);
	}
}

/* ---- ids ------------------------------------------------------------------------------ */
static void check_ids(const char *name, const rl_tokenizer *t, const cJSON *const *lines,
		      size_t n_lines)
{
	size_t bad = 0, n = 0, nul = 0;
	for (size_t i = 0; i < n_lines; i++) {
		if (strcmp(cJSON_GetObjectItem(lines[i], "tok")->valuestring, name) != 0)
			continue;
		str s = {0}, dec = {0};
		str_add(&s, "", 0);
		str_add(&dec, "", 0);
		add_cps(&s, cJSON_GetObjectItem(lines[i], "s"));
		add_cps(&dec, cJSON_GetObjectItem(lines[i], "dec"));
		nul += memchr(s.p, 0, s.n) != NULL;
		rl_ids ids = {0};
		int ok = rl_tok_encode(t, s.p, s.n, 0, &ids) == RL_OK;
		const cJSON *want = cJSON_GetObjectItem(lines[i], "ids");
		ok = ok && (size_t)cJSON_GetArraySize(want) == ids.n;
		for (size_t k = 0; ok && k < ids.n; k++)
			ok = cJSON_GetArrayItem(want, (int)k)->valuedouble == ids.v[k];
		char *text = NULL;
		size_t tl = 0;
		ok = ok && rl_tok_decode(t, ids.v, ids.n, 0, &text, &tl) == RL_OK && tl == dec.n &&
		     memcmp(text, dec.p, tl) == 0;
		if (!ok && bad++ < 5) {
			char *w = cJSON_PrintUnformatted(want);
			fprintf(stderr, "%s: line %zu: ids or decode differ from %s\n", name, i, w);
			free(w);
		}
		n++;
		free(text);
		rl_ids_free(&ids);
		free(s.p);
		free(dec.p);
	}
	CHECKF(n > 0 && bad == 0, "%s: %zu of %zu strings differ", name, bad, n);
	printf("%-13s ids and decodes of %zu strings (%zu with U+0000): %zu differ\n", name, n, nul,
	       bad);
}

/* ---- driver ------------------------------------------------------------------------------ */
typedef struct lines {
	cJSON **v;
	size_t n, cap;
} lines;

static void push(lines *l, cJSON *x)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = realloc(l->v, l->cap * sizeof *l->v);
		REQUIRE(l->v != NULL);
	}
	l->v[l->n++] = x;
}

int main(void)
{
	size_t len;
	char *fx = read_xz(check_fixture("tokenizer/unicode.jsonl.xz"), &len);
	lines all = {0}, norm[4] = {{0}}, recompose = {0}, ids = {0}, pieces_of = {0};
	for (char *p = fx, *e; p < fx + len; p = e + 1) {
		e = memchr(p, '\n', (size_t)(fx + len - p));
		if (!e)
			e = fx + len;
		cJSON *x = cJSON_ParseWithLength(p, (size_t)(e - p));
		REQUIRE(x != NULL);
		push(&all, x);
		const cJSON *f = cJSON_GetObjectItem(x, "norm");
		for (int k = 0; k < 4 && f; k++)
			if (strcmp(f->valuestring, forms[k]) == 0)
				push(&norm[k], x);
		if (cJSON_GetObjectItem(x, "norm_in"))
			push(&recompose, x);
		if (cJSON_GetObjectItem(x, "tok"))
			push(&ids, x);
		if (cJSON_GetObjectItem(x, "pieces"))
			push(&pieces_of, x);
	}
	free(fx);
	for (size_t i = 0; i < all.n; i++) {
		const cJSON *x = all.v[i], *v;
		if ((v = cJSON_GetObjectItem(x, "regex")))
			check_regex(v->valuestring, cJSON_GetObjectItem(x, "ranges"));
		else if ((v = cJSON_GetObjectItem(x, "digits")))
			check_isolated("Digits",
				       "{\"type\": \"Digits\", \"individual_digits\": true}", v);
		else if ((v = cJSON_GetObjectItem(x, "punctuation")))
			check_isolated("Punctuation",
				       "{\"type\": \"Punctuation\", \"behavior\": \"Isolated\"}",
				       v);
		else if ((v = cJSON_GetObjectItem(x, "whitespace_split")))
			check_whitespace_split(v);
		else if ((v = cJSON_GetObjectItem(x, "whitespace")))
			check_whitespace(v, cJSON_GetObjectItem(x, "whitespace_space"));
		else if ((v = cJSON_GetObjectItem(x, "strip_accents")))
			check_strip_accents(v);
		else if ((v = cJSON_GetObjectItem(x, "lowercase")))
			check_lowercase(v);
	}
	for (int f = 0; f < 4; f++)
		check_form(f, (const cJSON *const *)norm[f].v, norm[f].n);
	check_recompose((const cJSON *const *)recompose.v, recompose.n);
	for (size_t k = 0; k < sizeof real_tokenizer_names / sizeof real_tokenizer_names[0]; k++) {
		const char *name = real_tokenizer_names[k];
		size_t jl, cl;
		char *json, *cfg;
		if (!read_real_tokenizer(name, &json, &jl, &cfg, &cl))
			continue;
		rl_tokenizer *t;
		REQUIRE(rl_tokenizer_load_mem(json, jl, cfg, cl, name, &t) == RL_OK);
		free(json);
		free(cfg);
		for (size_t i = 0; i < pieces_of.n; i++)
			if (strcmp(cJSON_GetObjectItem(pieces_of.v[i], "pieces")->valuestring,
				   name) == 0)
				check_pieces(name, t, cJSON_GetObjectItem(pieces_of.v[i], "runs"));
		check_ids(name, t, (const cJSON *const *)ids.v, ids.n);
		rl_tokenizer_free(t);
	}
	for (size_t i = 0; i < all.n; i++)
		cJSON_Delete(all.v[i]);
	free(all.v);
	for (int f = 0; f < 4; f++)
		free(norm[f].v);
	free(recompose.v);
	free(ids.v);
	free(pieces_of.v);
	return check_done("test_tokenizer_unicode");
}
