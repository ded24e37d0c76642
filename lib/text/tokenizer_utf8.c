/* tokenizer_utf8.c — UTF-8 decoding and encoding, Rust's lossy conversion and
 * the Unicode character classes tokenizers tests, from its own data
 * (tokenizer_unicode.c). */
#include "core/error.h"
#include "text/tokenizer_int.h"

int tk_utf8_next(const char *str, size_t n, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned c = s[0];
	if (c < 0x80 || n < 2) {
		*cp = c;
		return 1;
	}
	if (c < 0xE0) {
		*cp = (c & 0x1F) << 6 | (s[1] & 0x3F);
		return 2;
	}
	if (c < 0xF0 || n < 4) {
		if (n < 3) {
			*cp = c;
			return 1;
		}
		*cp = (c & 0x0F) << 12 | (s[1] & 0x3F) << 6 | (s[2] & 0x3F);
		return 3;
	}
	*cp = (c & 0x07) << 18 | (s[1] & 0x3F) << 12 | (s[2] & 0x3F) << 6 | (s[3] & 0x3F);
	return 4;
}

int tk_utf8_put(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

unsigned tk_uni(uint32_t cp)
{
	size_t lo = 0, hi = tk_uni_n; /* the last run starting at or before cp */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (tk_uni_start[mid] <= cp)
			lo = mid;
		else
			hi = mid;
	}
	return tk_uni_props[lo];
}

int tk_is_whitespace(uint32_t c)
{
	if (c < 0x80)
		return c == 0x20 || (c >= 0x09 && c <= 0x0D);
	return (tk_uni(c) & TK_U_SPACE) != 0;
}

int tk_is_numeric(uint32_t c)
{
	if (c < 0x80)
		return c >= '0' && c <= '9';
	return (tk_uni(c) & TK_U_NUMERIC) != 0;
}

int tk_is_punct(uint32_t c)
{
	return (tk_uni(c) & TK_U_PUNCT) != 0;
}

int tk_is_mark(uint32_t c)
{
	return (tk_uni(c) & TK_U_MARK) != 0;
}

uint32_t tk_lowercase(uint32_t c)
{
	size_t lo = 0, hi = tk_lower_n;
	while (lo < hi) { /* the first run ending at or after c */
		size_t mid = lo + (hi - lo) / 2;
		if (tk_lower[mid].last < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == tk_lower_n)
		return c;
	const tk_lower_run *r = &tk_lower[lo];
	if (c < r->first || (r->step ? (c - r->first) % r->step : c != r->first))
		return c;
	return (uint32_t)((int32_t)c + r->delta);
}

/* Length of the valid UTF-8 sequence at s, or 0 with *bad = bytes of its maximal
 * invalid subpart (Rust's Utf8Chunks). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
	unsigned c = s[0];
#define AT(i) ((i) < n ? s[i] : 0)
#define CONT(x) ((x) >= 0x80 && (x) <= 0xBF)
	*bad = 1;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return CONT(AT(1)) ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		unsigned d = AT(1);
		int ok = (c == 0xE0 && d >= 0xA0 && d <= 0xBF) ||
			 (c >= 0xE1 && c <= 0xEC && CONT(d)) ||
			 (c == 0xED && d >= 0x80 && d <= 0x9F) || (c >= 0xEE && CONT(d));
		if (!ok)
			return 0;
		*bad = 2;
		return CONT(AT(2)) ? 3 : 0;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		unsigned d = AT(1);
		int ok = (c == 0xF0 && d >= 0x90 && d <= 0xBF) ||
			 (c >= 0xF1 && c <= 0xF3 && CONT(d)) ||
			 (c == 0xF4 && d >= 0x80 && d <= 0x8F);
		if (!ok)
			return 0;
		*bad = 2;
		if (!CONT(AT(2)))
			return 0;
		*bad = 3;
		return CONT(AT(3)) ? 4 : 0;
	}
	return 0;
#undef AT
#undef CONT
}

int tk_utf8_lossy(tk_buf *out, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	if (tk_buf_reserve(out, n))
		return RL_ESYS;
	for (size_t i = 0; i < n;) {
		size_t bad, k = utf8_seq(s + i, n - i, &bad);
		if (k) {
			if (tk_buf_add(out, s + i, k))
				return RL_ESYS;
			i += k;
		} else {
			if (tk_buf_add(out, "\xEF\xBF\xBD", 3))
				return RL_ESYS;
			i += bad;
		}
	}
	return tk_buf_add(out, "", 0);
}
