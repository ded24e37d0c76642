/* tokenizer_dec.c — decoders: token strings -> text, as tokenizers' decode_chain.
 *
 * A decoder maps a list of strings to a list of strings; a Sequence runs them in
 * order and the final list is concatenated. Lists live in two arenas used in
 * turn. Without a decoder the tokens are joined with single spaces.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/jsonl.h"
#include "core/util.h"
#include "text/tokenizer_int.h"

typedef struct tlist {
	tk_buf arena;
	size_t *off, *len;
	size_t n, cap;
} tlist;

static int tl_add(tlist *l, const char *s, size_t n)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		size_t *o = rl_realloc_array(l->off, cap, sizeof *o);
		if (!o)
			return RL_ESYS;
		l->off = o;
		size_t *k = rl_realloc_array(l->len, cap, sizeof *k);
		if (!k)
			return RL_ESYS;
		l->len = k;
		l->cap = cap;
	}
	l->off[l->n] = l->arena.n;
	l->len[l->n] = n;
	l->n++;
	return tk_buf_add(&l->arena, s, n);
}

/* Appends to the last string of l (which must be the last thing in its arena). */
static int tl_extend(tlist *l, const char *s, size_t n)
{
	l->len[l->n - 1] += n;
	return tk_buf_add(&l->arena, s, n);
}

static const char *tl_str(const tlist *l, size_t i)
{
	return l->arena.p + l->off[i];
}

static void tl_clear(tlist *l)
{
	l->n = 0;
	l->arena.n = 0;
}

static void tl_free(tlist *l)
{
	tk_buf_free(&l->arena);
	free(l->off);
	free(l->len);
}

/* "<0xNN>" -> NN (u8::from_str_radix accepts a leading '+'), or -1. */
static int byte_token(const char *s, size_t n)
{
	if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
		return -1;
	if (s[3] == '+') {
		int v = rl_hexval(s[4]);
		return v;
	}
	int a = rl_hexval(s[3]), b = rl_hexval(s[4]);
	return a < 0 || b < 0 ? -1 : a * 16 + b;
}

static int flush_bytes(tlist *out, tk_buf *bytes)
{
	if (!bytes->n)
		return RL_OK;
	int rc;
	if (rl_utf8_valid(bytes->p, bytes->n)) {
		rc = tl_add(out, bytes->p, bytes->n);
	} else {
		rc = RL_OK;
		for (size_t i = 0; i < bytes->n && !rc; i++)
			rc = tl_add(out, "\xEF\xBF\xBD", 3);
	}
	bytes->n = 0;
	return rc;
}

static int utf8_len_before(const char *s, size_t n)
{
	/* start of the last char in s[0..n) */
	size_t k = n - 1;
	while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
		k--;
	return (int)k;
}

static int dec_one(const rl_tokenizer *t, const tk_dec *d, const tlist *in, tlist *out,
		   pcre2_match_data *md, tk_spans *sp, tk_buf *scratch)
{
	int rc = RL_OK;
	tl_clear(out);
	switch (d->kind) {
	case DC_BYTELEVEL: {
		scratch->n = 0;
		for (size_t i = 0; i < in->n; i++) {
			const char *s = tl_str(in, i);
			size_t n = in->len[i], mark = scratch->n;
			int ok = 1;
			for (size_t k = 0; k < n && ok;) {
				uint32_t cp;
				int l = tk_utf8_next(s + k, n - k, &cp);
				if (cp < 512 && t->bl_byte[cp] >= 0) {
					char b = (char)t->bl_byte[cp];
					if ((rc = tk_buf_add(scratch, &b, 1)))
						return rc;
				} else {
					ok = 0;
				}
				k += (size_t)l;
			}
			if (!ok) {
				scratch->n = mark;
				if ((rc = tk_buf_add(scratch, s, n)))
					return rc;
			}
		}
		tk_buf lossy = {0};
		rc = tk_utf8_lossy(&lossy, scratch->p ? scratch->p : "", scratch->n);
		if (!rc)
			rc = tl_add(out, lossy.p, lossy.n);
		tk_buf_free(&lossy);
		return rc;
	}
	case DC_BYTEFALLBACK:
		scratch->n = 0;
		for (size_t i = 0; i < in->n && !rc; i++) {
			int b = byte_token(tl_str(in, i), in->len[i]);
			if (b >= 0) {
				char c = (char)b;
				rc = tk_buf_add(scratch, &c, 1);
			} else {
				rc = flush_bytes(out, scratch);
				if (!rc)
					rc = tl_add(out, tl_str(in, i), in->len[i]);
			}
		}
		if (!rc)
			rc = flush_bytes(out, scratch);
		return rc;
	case DC_FUSE:
		if ((rc = tl_add(out, "", 0)))
			return rc;
		for (size_t i = 0; i < in->n && !rc; i++)
			rc = tl_extend(out, tl_str(in, i), in->len[i]);
		return rc;
	case DC_STRIP: {
		char c[4];
		size_t cl = (size_t)tk_utf8_put(c, d->ch);
		for (size_t i = 0; i < in->n && !rc; i++) {
			const char *s = tl_str(in, i);
			size_t a = 0, b = in->len[i];
			for (int k = 0; k < d->start && b - a >= cl && memcmp(s + a, c, cl) == 0;
			     k++)
				a += cl;
			for (int k = 0; k < d->stop && b > a; k++) {
				size_t last = (size_t)utf8_len_before(s, b);
				if (last < a || b - last != cl || memcmp(s + last, c, cl) != 0)
					break;
				b = last;
			}
			rc = tl_add(out, s + a, b - a);
		}
		return rc;
	}
	case DC_REPLACE:
		for (size_t i = 0; i < in->n && !rc; i++) {
			const char *s = tl_str(in, i);
			if ((rc = tk_regex_spans(&d->re, md, s, in->len[i], sp)) ||
			    (rc = tl_add(out, "", 0)))
				return rc;
			for (size_t k = 0; k < sp->n && !rc; k++) {
				tk_span x = sp->v[k];
				rc = x.m ? tl_extend(out, d->content, d->content_len)
					 : tl_extend(out, s + x.s, x.e - x.s);
			}
		}
		return rc;
	case DC_METASPACE: {
		char c[4];
		size_t cl = (size_t)tk_utf8_put(c, d->ch);
		for (size_t i = 0; i < in->n && !rc; i++) {
			const char *s = tl_str(in, i);
			size_t n = in->len[i];
			if ((rc = tl_add(out, "", 0)))
				return rc;
			for (size_t k = 0; k < n && !rc;) {
				if (n - k >= cl && memcmp(s + k, c, cl) == 0) {
					if (!(i == 0 && d->scheme != PS_NEVER))
						rc = tl_extend(out, " ", 1);
					k += cl;
				} else {
					rc = tl_extend(out, s + k, 1);
					k++;
				}
			}
		}
		return rc;
	}
	case DC_BPE:
		for (size_t i = 0; i < in->n && !rc; i++) {
			const char *s = tl_str(in, i);
			size_t n = in->len[i], sl = d->content_len;
			const char *rep = i + 1 == in->n ? "" : " ";
			if ((rc = tl_add(out, "", 0)))
				return rc;
			for (size_t k = 0; k < n && !rc;) {
				if (sl && n - k >= sl && memcmp(s + k, d->content, sl) == 0) {
					rc = tl_extend(out, rep, strlen(rep));
					k += sl;
				} else {
					rc = tl_extend(out, s + k, 1);
					k++;
				}
			}
		}
		return rc;
	case DC_WORDPIECE: {
		static const char *const from[] = {" .",  " ?",	     " !",  " ,",   " ' ", " n't",
						   " 'm", " do not", " 's", " 've", " 're"};
		static const char *const to[] = {".",  "?",	 "!",  ",",   "'",  "n't",
						 "'m", " don't", "'s", "'ve", "'re"};
		for (size_t i = 0; i < in->n && !rc; i++) {
			const char *s = tl_str(in, i);
			size_t n = in->len[i];
			scratch->n = 0;
			if (i != 0) {
				if (n >= d->content_len &&
				    memcmp(s, d->content, d->content_len) == 0) {
					s += d->content_len;
					n -= d->content_len;
				} else if ((rc = tk_buf_add(scratch, " ", 1))) {
					return rc;
				}
			}
			if ((rc = tk_buf_add(scratch, s, n)))
				return rc;
			if (d->cleanup) {
				for (size_t r = 0; r < sizeof from / sizeof from[0]; r++) {
					tk_buf nb = {0};
					size_t fl = strlen(from[r]);
					for (size_t k = 0; k < scratch->n && !rc;) {
						if (scratch->n - k >= fl &&
						    memcmp(scratch->p + k, from[r], fl) == 0) {
							rc = tk_buf_add(&nb, to[r], strlen(to[r]));
							k += fl;
						} else {
							rc = tk_buf_add(&nb, scratch->p + k, 1);
							k++;
						}
					}
					tk_buf_free(scratch);
					*scratch = nb;
					if (rc)
						return rc;
				}
			}
			rc = tl_add(out, scratch->p ? scratch->p : "", scratch->n);
		}
		return rc;
	}
	default:
		return rl_error(RL_EDATA, "unknown decoder");
	}
}

int tk_decode_tokens(const rl_tokenizer *t, const char **toks, const size_t *lens, size_t n,
		     tk_buf *out)
{
	tlist a = {0}, b = {0};
	tk_buf scratch = {0};
	tk_spans sp = {0};
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	int rc = md ? RL_OK : rl_error(RL_ESYS, "out of memory");
	for (size_t i = 0; i < n && !rc; i++)
		rc = tl_add(&a, toks[i], lens[i]);
	tlist *in = &a, *o = &b;
	if (t->has_decoder) {
		for (size_t k = 0; k < t->n_decs && !rc; k++) {
			rc = dec_one(t, &t->decs[k], in, o, md, &sp, &scratch);
			tlist *x = in;
			in = o;
			o = x;
		}
	}
	out->n = 0;
	for (size_t i = 0; i < in->n && !rc; i++) {
		if (!t->has_decoder && i > 0)
			rc = tk_buf_add(out, " ", 1);
		if (!rc)
			rc = tk_buf_add(out, tl_str(in, i), in->len[i]);
	}
	if (!rc)
		rc = tk_buf_add(out, "", 0);
	tl_free(&a);
	tl_free(&b);
	tk_buf_free(&scratch);
	free(sp.v);
	if (md)
		pcre2_match_data_free(md);
	return rc;
}

void tk_dec_free(tk_dec *d)
{
	free(d->content);
	tk_regex_free(&d->re);
}
