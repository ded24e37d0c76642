/* tokenizer_text.c — regexes, normalizers and pre-tokenizers.
 *
 * Pre-tokenizers run depth first: each stage splits the string it is given and
 * hands every piece to the next stage, the last stage to the model. tokenizers
 * runs them breadth first (every split through stage 1, then stage 2...), which
 * gives the same pieces because every pre-tokenizer treats its splits one by one.
 * Each stage owns its buffers in tk_state, so nothing is allocated per piece.
 *
 * Regexes: tokenizers compiles its patterns with Oniguruma (Ruby syntax). PCRE2
 * with UTF+UCP agrees on the constructs these files use once Oniguruma's classes
 * are spelled out: \s is White_Space ([\t-\r\x85\p{Z}], without U+180E, which
 * PCRE2's \s has), \w is [\p{L}\p{M}\p{N}\p{Pc}], \h is a hex digit, and ^ $
 * match at line boundaries. The translation is in onig_to_pcre2().
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "text/tokenizer_int.h"

/* ---- regexes ------------------------------------------------------------------------ */
#define WS_CLASS "\\t-\\r\\x{85}\\p{Z}"
#define WORD_CLASS "\\p{L}\\p{M}\\p{N}\\p{Pc}"

static int onig_to_pcre2(const char *p, size_t n, tk_buf *o)
{
	int in_class = 0;
	size_t class_start = 0;
	for (size_t i = 0; i < n;) {
		char c = p[i];
		if (c == '\\' && i + 1 < n) {
			char d = p[i + 1];
			const char *rep = NULL;
			switch (d) {
			case 's':
				rep = in_class ? WS_CLASS : "[" WS_CLASS "]";
				break;
			case 'S':
				rep = in_class ? NULL : "[^" WS_CLASS "]";
				break;
			case 'w':
				rep = in_class ? WORD_CLASS : "[" WORD_CLASS "]";
				break;
			case 'W':
				rep = in_class ? NULL : "[^" WORD_CLASS "]";
				break;
			case 'h':
				rep = in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
				break;
			case 'H':
				rep = in_class ? NULL : "[^0-9a-fA-F]";
				break;
			default:
				break;
			}
			if (rep) {
				if (tk_buf_add(o, rep, strlen(rep)))
					return RL_ESYS;
				i += 2;
				continue;
			}
			if (d == 'u' && i + 5 < n + 0 && i + 6 <= n) {
				int hex = 1;
				for (size_t k = 2; k < 6; k++) {
					char h = p[i + k];
					hex &= (h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
					       (h >= 'A' && h <= 'F');
				}
				if (hex) {
					if (tk_buf_add(o, "\\x{", 3) ||
					    tk_buf_add(o, p + i + 2, 4) || tk_buf_add(o, "}", 1))
						return RL_ESYS;
					i += 6;
					continue;
				}
			}
			uint32_t cp;
			int l = tk_utf8_next(p + i + 1, n - i - 1, &cp);
			if (tk_buf_add(o, p + i, 1 + (size_t)l))
				return RL_ESYS;
			i += 1 + (size_t)l;
			continue;
		}
		if (!in_class && c == '[') {
			in_class = 1;
			if (tk_buf_add(o, p + i, 1))
				return RL_ESYS;
			i++;
			if (i < n && p[i] == '^') {
				if (tk_buf_add(o, "^", 1))
					return RL_ESYS;
				i++;
			}
			class_start = i;
			continue;
		}
		if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') {
			const char *end = memchr(p + i, ']', n - i);
			size_t l = end ? (size_t)(end - (p + i)) + 1 : n - i;
			if (tk_buf_add(o, p + i, l))
				return RL_ESYS;
			i += l;
			continue;
		}
		if (in_class && c == ']' && i != class_start)
			in_class = 0;
		if (tk_buf_add(o, p + i, 1))
			return RL_ESYS;
		i++;
	}
	return tk_buf_add(o, "", 0);
}

static int regex_compile_raw(tk_regex *r, const char *pat, size_t len, const char *what)
{
	int err;
	PCRE2_SIZE off;
	memset(r, 0, sizeof *r);
	r->code = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &err,
				&off, NULL);
	if (!r->code) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof msg);
		return rl_error(RL_EDATA, "%s: regex '%.*s' does not compile: %s at offset %zu",
				what, (int)(len > 200 ? 200 : len), pat, (char *)msg, (size_t)off);
	}
	pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE); /* without JIT it still works */
	return RL_OK;
}

int tk_regex_compile(tk_regex *r, const char *pattern, size_t len, const char *what)
{
	tk_buf b = {0};
	int rc = onig_to_pcre2(pattern, len, &b);
	if (!rc)
		rc = regex_compile_raw(r, b.p, b.n, what);
	tk_buf_free(&b);
	return rc;
}

int tk_regex_literal(tk_regex *r, const char *s, size_t len)
{
	memset(r, 0, sizeof *r);
	r->lit = rl_malloc(len + 1);
	if (!r->lit)
		return RL_ESYS;
	memcpy(r->lit, s, len);
	r->lit[len] = 0;
	r->litlen = len;
	return RL_OK;
}

void tk_regex_free(tk_regex *r)
{
	if (r->code)
		pcre2_code_free(r->code);
	free(r->lit);
	memset(r, 0, sizeof *r);
}

static int span_push(tk_spans *a, size_t s, size_t e, int m)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		tk_span *v = rl_realloc_array(a->v, cap, sizeof *v);
		if (!v)
			return RL_ESYS;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = (tk_span){s, e, m};
	return RL_OK;
}

/* Appends the match (ms, me) to the spans, with the gap before it. */
static int add_match(tk_spans *out, size_t *prev, size_t ms, size_t me)
{
	if (*prev != ms && span_push(out, *prev, ms, 0))
		return RL_ESYS;
	*prev = me;
	return span_push(out, ms, me, 1);
}

int tk_regex_spans(const tk_regex *r, pcre2_match_data *md, const char *s, size_t n, tk_spans *out)
{
	out->n = 0;
	if (n == 0)
		return span_push(out, 0, 0, 0);
	size_t prev = 0;
	if (!r->code) {
		for (size_t i = 0; i + r->litlen <= n;) {
			const char *f = memmem(s + i, n - i, r->lit, r->litlen);
			if (!f)
				break;
			size_t ms = (size_t)(f - s);
			if (add_match(out, &prev, ms, ms + r->litlen))
				return RL_ESYS;
			i = ms + r->litlen;
		}
	} else {
		size_t pos = 0, last_end = SIZE_MAX;
		while (pos <= n) {
			int rc = pcre2_match(r->code, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md,
					     NULL);
			if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
				rc = pcre2_match(r->code, (PCRE2_SPTR)s, n, pos,
						 PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
			if (rc == PCRE2_ERROR_NOMATCH)
				break;
			if (rc < 0) {
				PCRE2_UCHAR msg[256];
				pcre2_get_error_message(rc, msg, sizeof msg);
				return rl_error(RL_EDATA, "regex match failed: %s", (char *)msg);
			}
			PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
			size_t ms = ov[0], me = ov[1];
			if (ms == me && last_end == me) {
				/* onig's find_iter: no empty match right after the last match */
				if (pos >= n)
					break;
				uint32_t cp;
				pos += (size_t)tk_utf8_next(s + pos, n - pos, &cp);
				continue;
			}
			pos = me;
			last_end = me;
			if (add_match(out, &prev, ms, me))
				return RL_ESYS;
		}
	}
	if (prev != n)
		return span_push(out, prev, n, 0);
	return RL_OK;
}

/* Spans of a char predicate: every matching char alone, the runs between merged. */
static int pred_spans(int (*pred)(uint32_t, uint32_t), uint32_t arg, const char *s, size_t n,
		      tk_spans *out)
{
	out->n = 0;
	if (n == 0)
		return span_push(out, 0, 0, 0);
	size_t last = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		int l = tk_utf8_next(s + i, n - i, &cp);
		if (pred(cp, arg)) {
			if (last < i && span_push(out, last, i, 0))
				return RL_ESYS;
			if (span_push(out, i, i + (size_t)l, 1))
				return RL_ESYS;
			last = i + (size_t)l;
		}
		i += (size_t)l;
	}
	if (n > last)
		return span_push(out, last, n, 0);
	return RL_OK;
}

static int pred_ws(uint32_t c, uint32_t arg)
{
	(void)arg;
	return tk_is_whitespace(c);
}
static int pred_num(uint32_t c, uint32_t arg)
{
	(void)arg;
	return tk_is_numeric(c);
}
static int pred_punct(uint32_t c, uint32_t arg)
{
	(void)arg;
	return tk_is_punct(c);
}
static int pred_eq(uint32_t c, uint32_t arg)
{
	return c == arg;
}

/* NormalizedString::split: applies the behaviour; m = 1 marks a removed span. */
static int apply_behavior(const tk_spans *in, int behavior, int invert, tk_spans *out)
{
	out->n = 0;
	int prev = 0;
	if (behavior == B_MERGED_NEXT) {
		for (size_t k = in->n; k-- > 0;) {
			tk_span sp = in->v[k];
			int m = sp.m ^ invert;
			if (m && !prev && out->n)
				out->v[out->n - 1].s = sp.s;
			else if (span_push(out, sp.s, sp.e, 0))
				return RL_ESYS;
			prev = m;
		}
		for (size_t a = 0, b = out->n ? out->n - 1 : 0; a < b; a++, b--) {
			tk_span x = out->v[a];
			out->v[a] = out->v[b];
			out->v[b] = x;
		}
		return RL_OK;
	}
	for (size_t k = 0; k < in->n; k++) {
		tk_span sp = in->v[k];
		int m = sp.m ^ invert;
		switch (behavior) {
		case B_ISOLATED:
			if (span_push(out, sp.s, sp.e, 0))
				return RL_ESYS;
			break;
		case B_REMOVED:
			if (span_push(out, sp.s, sp.e, m))
				return RL_ESYS;
			break;
		case B_CONTIGUOUS:
			if (m == prev && out->n)
				out->v[out->n - 1].e = sp.e;
			else if (span_push(out, sp.s, sp.e, 0))
				return RL_ESYS;
			break;
		case B_MERGED_PREV:
			if (m && !prev && out->n)
				out->v[out->n - 1].e = sp.e;
			else if (span_push(out, sp.s, sp.e, 0))
				return RL_ESYS;
			break;
		default:
			return rl_error(RL_EDATA, "unknown split behaviour");
		}
		prev = m;
	}
	return RL_OK;
}

/* ---- normalizers ---------------------------------------------------------------------- */
static int nz_utf8proc(const char *s, size_t n, int opts, tk_buf *o)
{
	utf8proc_uint8_t *dst = NULL;
	utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
					  (utf8proc_option_t)(UTF8PROC_STABLE | opts));
	if (k < 0)
		return rl_error(RL_EDATA, "unicode normalization failed: %s", utf8proc_errmsg(k));
	int rc = tk_buf_add(o, dst, (size_t)k);
	free(dst);
	return rc;
}

static int nz_one(const rl_tokenizer *t, pcre2_match_data *md, tk_spans *sp, const tk_norm *z,
		  const char *s, size_t n, tk_buf *o)
{
	o->n = 0;
	switch (z->kind) {
	case NZ_NFC:
		return nz_utf8proc(s, n, UTF8PROC_COMPOSE, o);
	case NZ_NFD:
		return nz_utf8proc(s, n, UTF8PROC_DECOMPOSE, o);
	case NZ_NFKC:
		return nz_utf8proc(s, n, UTF8PROC_COMPOSE | UTF8PROC_COMPAT, o);
	case NZ_NFKD:
		return nz_utf8proc(s, n, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, o);
	case NZ_LOWER:
	case NZ_STRIP_ACCENTS:
		if (tk_buf_reserve(o, n + 8))
			return RL_ESYS;
		for (size_t i = 0; i < n;) {
			uint32_t cp;
			int l = tk_utf8_next(s + i, n - i, &cp);
			i += (size_t)l;
			if (z->kind == NZ_STRIP_ACCENTS) {
				if (!tk_is_mark(cp) && tk_buf_add(o, s + i - l, (size_t)l))
					return RL_ESYS;
				continue;
			}
			char u[8];
			int k;
			if (cp == 0x130) { /* the one unconditional multi-char lowercase */
				memcpy(u, "i\xCC\x87", 3);
				k = 3;
			} else {
				k = tk_utf8_put(u,
						(uint32_t)utf8proc_tolower((utf8proc_int32_t)cp));
			}
			if (tk_buf_add(o, u, (size_t)k))
				return RL_ESYS;
		}
		return tk_buf_add(o, "", 0);
	case NZ_STRIP: {
		size_t a = 0, b = n;
		if (z->left)
			while (a < b) {
				uint32_t cp;
				int l = tk_utf8_next(s + a, b - a, &cp);
				if (!tk_is_whitespace(cp))
					break;
				a += (size_t)l;
			}
		if (z->right)
			while (b > a) {
				size_t k = b - 1;
				while (k > a && ((unsigned char)s[k] & 0xC0) == 0x80)
					k--;
				uint32_t cp;
				tk_utf8_next(s + k, b - k, &cp);
				if (!tk_is_whitespace(cp))
					break;
				b = k;
			}
		return tk_buf_add(o, s + a, b - a);
	}
	case NZ_PREPEND:
		if (n && tk_buf_add(o, z->content, z->content_len))
			return RL_ESYS;
		return tk_buf_add(o, s, n);
	case NZ_REPLACE: {
		int rc = tk_regex_spans(&z->re, md, s, n, sp);
		if (rc)
			return rc;
		if (tk_buf_reserve(o, n))
			return RL_ESYS;
		for (size_t k = 0; k < sp->n; k++) {
			tk_span x = sp->v[k];
			if (x.m ? tk_buf_add(o, z->content, z->content_len)
				: tk_buf_add(o, s + x.s, x.e - x.s))
				return RL_ESYS;
		}
		return tk_buf_add(o, "", 0);
	}
	case NZ_BYTELEVEL:
		if (tk_buf_reserve(o, 2 * n))
			return RL_ESYS;
		for (size_t i = 0; i < n; i++)
			if (tk_buf_add(o, t->bl_char[(uint8_t)s[i]], t->bl_len[(uint8_t)s[i]]))
				return RL_ESYS;
		return RL_OK;
	default:
		return rl_error(RL_EDATA, "unknown normalizer");
	}
}

int tk_normalize(tk_state *st, const char *s, size_t n, const char **out, size_t *out_n)
{
	const rl_tokenizer *t = st->t;
	*out = s;
	*out_n = n;
	tk_buf *bufs[2] = {&st->nbuf, &st->nbuf2};
	for (size_t k = 0; k < t->n_norms; k++) {
		tk_buf *o = bufs[k & 1];
		int rc = nz_one(t, st->md, &st->tmp_spans, &t->norms[k], *out, *out_n, o);
		if (rc)
			return rc;
		*out = o->p ? o->p : "";
		*out_n = o->n;
	}
	return RL_OK;
}

int tk_normalize_string(const rl_tokenizer *t, const char *s, size_t n, tk_buf *out)
{
	tk_state st = {.t = t};
	st.md = pcre2_match_data_create(1, NULL);
	if (!st.md)
		return rl_error(RL_ESYS, "out of memory");
	const char *o;
	size_t on;
	int rc = tk_normalize(&st, s, n, &o, &on);
	if (!rc) {
		out->n = 0;
		rc = tk_buf_add(out, o, on);
	}
	tk_state_free(&st);
	return rc;
}

void tk_norm_free(tk_norm *z)
{
	free(z->content);
	tk_regex_free(&z->re);
}

/* ---- pre-tokenizers ------------------------------------------------------------------- */
/* Recurses into each kept span of str (spans with m = 0 and non-empty). */
static int each_piece(tk_state *st, size_t stage, const char *str, const tk_spans *sp, int orig0)
{
	for (size_t k = 0; k < sp->n; k++) {
		tk_span x = sp->v[k];
		if (x.m || x.e == x.s)
			continue;
		int rc = tk_pretokenize(st, stage + 1, str + x.s, x.e - x.s, orig0 && x.s == 0);
		if (rc)
			return rc;
	}
	return RL_OK;
}

static int bytelevel_piece(tk_state *st, size_t stage, const char *s, size_t n, int orig0)
{
	const rl_tokenizer *t = st->t;
	tk_buf *m = &st->stage_buf[stage * 2 + 1];
	m->n = 0;
	if (tk_buf_reserve(m, 2 * n))
		return RL_ESYS;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = (uint8_t)s[i];
		memcpy(m->p + m->n, t->bl_char[b], t->bl_len[b]);
		m->n += t->bl_len[b];
	}
	return tk_pretokenize(st, stage + 1, m->p, m->n, orig0);
}

int tk_pretokenize(tk_state *st, size_t stage, const char *s, size_t n, int orig0)
{
	const rl_tokenizer *t = st->t;
	if (n == 0)
		return RL_OK;
	if (stage == t->n_pretoks)
		return tk_model_piece(st, s, n);
	const tk_pretok *p = &t->pretoks[stage];
	tk_buf *buf = &st->stage_buf[stage * 2];
	tk_spans *sp = &st->stage_spans[stage], *tmp = &st->tmp_spans;
	int rc;
	switch (p->kind) {
	case PT_BYTELEVEL: {
		const char *str = s;
		size_t len = n;
		if (p->add_prefix_space && s[0] != ' ') {
			buf->n = 0;
			if (tk_buf_add(buf, " ", 1) || tk_buf_add(buf, s, n))
				return RL_ESYS;
			str = buf->p;
			len = buf->n;
		}
		if (!p->use_regex)
			return bytelevel_piece(st, stage, str, len, orig0);
		if ((rc = tk_regex_spans(&t->re_bytelevel, st->md, str, len, sp)))
			return rc;
		for (size_t k = 0; k < sp->n; k++) {
			tk_span x = sp->v[k];
			if (x.e > x.s && (rc = bytelevel_piece(st, stage, str + x.s, x.e - x.s,
							       orig0 && x.s == 0)))
				return rc;
		}
		return RL_OK;
	}
	case PT_SPLIT:
		if ((rc = tk_regex_spans(&p->re, st->md, s, n, tmp)) ||
		    (rc = apply_behavior(tmp, p->behavior, p->invert, sp)))
			return rc;
		return each_piece(st, stage, s, sp, orig0);
	case PT_METASPACE: {
		char rep[4];
		int rl = tk_utf8_put(rep, p->ch);
		buf->n = 0;
		if (tk_buf_reserve(buf, n * 3 + 4))
			return RL_ESYS;
		int starts = 0;
		for (size_t i = 0; i < n; i++) {
			if (s[i] == ' ') {
				if (tk_buf_add(buf, rep, (size_t)rl))
					return RL_ESYS;
			} else if (tk_buf_add(buf, s + i, 1)) {
				return RL_ESYS;
			}
		}
		starts = buf->n >= (size_t)rl && memcmp(buf->p, rep, (size_t)rl) == 0;
		if (!starts && (p->scheme == PS_ALWAYS || (p->scheme == PS_FIRST && orig0))) {
			if (tk_buf_reserve(buf, (size_t)rl))
				return RL_ESYS;
			memmove(buf->p + rl, buf->p, buf->n + 1);
			memcpy(buf->p, rep, (size_t)rl);
			buf->n += (size_t)rl;
		}
		if (!p->split)
			return tk_pretokenize(st, stage + 1, buf->p, buf->n, orig0);
		if ((rc = pred_spans(pred_eq, p->ch, buf->p, buf->n, tmp)) ||
		    (rc = apply_behavior(tmp, B_MERGED_NEXT, 0, sp)))
			return rc;
		return each_piece(st, stage, buf->p, sp, orig0);
	}
	case PT_WHITESPACE:
		if ((rc = tk_regex_spans(&t->re_whitespace, st->md, s, n, tmp)) ||
		    (rc = apply_behavior(tmp, B_REMOVED, 1, sp)))
			return rc;
		return each_piece(st, stage, s, sp, orig0);
	case PT_WSPLIT:
		if ((rc = pred_spans(pred_ws, 0, s, n, tmp)) ||
		    (rc = apply_behavior(tmp, B_REMOVED, 0, sp)))
			return rc;
		return each_piece(st, stage, s, sp, orig0);
	case PT_DIGITS:
		if ((rc = pred_spans(pred_num, 0, s, n, tmp)) ||
		    (rc = apply_behavior(tmp, p->individual ? B_ISOLATED : B_CONTIGUOUS, 0, sp)))
			return rc;
		return each_piece(st, stage, s, sp, orig0);
	case PT_PUNCT:
		if ((rc = pred_spans(pred_punct, 0, s, n, tmp)) ||
		    (rc = apply_behavior(tmp, p->behavior, 0, sp)))
			return rc;
		return each_piece(st, stage, s, sp, orig0);
	case PT_CHARDELIM:
		if ((rc = pred_spans(pred_eq, p->ch, s, n, tmp)) ||
		    (rc = apply_behavior(tmp, B_REMOVED, 0, sp)))
			return rc;
		return each_piece(st, stage, s, sp, orig0);
	default:
		return rl_error(RL_EDATA, "unknown pre-tokenizer");
	}
}

void tk_pretok_free(tk_pretok *p)
{
	tk_regex_free(&p->re);
}

/* GPT-2's byte-to-unicode table: printable bytes stand for themselves, the others
 * for U+0100 + n in byte order. */
void tk_bytelevel_init(rl_tokenizer *t)
{
	int n = 0;
	for (int i = 0; i < 512; i++)
		t->bl_byte[i] = -1;
	for (int b = 0; b < 256; b++) {
		int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
		uint32_t cp = printable ? (uint32_t)b : 256u + (uint32_t)n++;
		t->bl_len[b] = (uint8_t)tk_utf8_put(t->bl_char[b], cp);
		t->bl_byte[cp] = (int16_t)b;
	}
}

int tk_builtin_regexes(rl_tokenizer *t)
{
	int need_bl = 0, need_ws = 0;
	for (size_t k = 0; k < t->n_pretoks; k++) {
		need_bl |= t->pretoks[k].kind == PT_BYTELEVEL && t->pretoks[k].use_regex;
		need_ws |= t->pretoks[k].kind == PT_WHITESPACE;
	}
	static const char gpt2[] =
		"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
		"\\s+(?!\\S)|\\s+";
	/* Rust regex's \w (Alphabetic, M, Nd, Pc, Join_Control) and \s (White_Space). */
	static const char ws[] =
		"[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]+|"
		"[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}" WS_CLASS "]+";
	int rc = RL_OK;
	if (need_bl && !t->re_bytelevel.code)
		rc = tk_regex_compile(&t->re_bytelevel, gpt2, sizeof gpt2 - 1, "ByteLevel");
	if (!rc && need_ws && !t->re_whitespace.code)
		rc = regex_compile_raw(&t->re_whitespace, ws, sizeof ws - 1, "Whitespace");
	return rc;
}
