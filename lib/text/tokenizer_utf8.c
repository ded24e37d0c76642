/* tokenizer_utf8.c — UTF-8 decoding and encoding, Rust's lossy conversion and
 * the Unicode character classes tokenizers tests (as Rust's char methods do). */
#include <utf8proc.h>

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

int tk_is_whitespace(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
	       c == 0x205F || c == 0x3000;
}

int tk_is_numeric(uint32_t c)
{
	utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
	return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

int tk_is_punct(uint32_t c)
{
	if (c < 0x80)
		return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) ||
		       (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
	utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
	return k == UTF8PROC_CATEGORY_PC || k == UTF8PROC_CATEGORY_PD ||
	       k == UTF8PROC_CATEGORY_PS || k == UTF8PROC_CATEGORY_PE ||
	       k == UTF8PROC_CATEGORY_PI || k == UTF8PROC_CATEGORY_PF || k == UTF8PROC_CATEGORY_PO;
}

int tk_is_mark(uint32_t c)
{
	utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
	return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
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
