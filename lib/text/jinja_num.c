/* jinja_num.c — Python's int(str, base) and float(str), for the int and
 * float filters (see jinja_int.h). strtoll and strtod accept other things
 * (C's octal "010", hex floats, "0x" in base 10) and miss Python's
 * underscores, "0b"/"0o" and non-ASCII digits, so the grammar is checked
 * here first.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "text/jinja_int.h"

static int digit_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A' + 10;
	return 99;
}

/* a prefix 0x/0o/0b (either case) at s: its base, or 0 */
static int prefix_base(const char *s, size_t n)
{
	if (n < 2 || s[0] != '0')
		return 0;
	switch (s[1]) {
	case 'x':
	case 'X':
		return 16;
	case 'o':
	case 'O':
		return 8;
	case 'b':
	case 'B':
		return 2;
	}
	return 0;
}

/* Unicode's decimal digits come in runs of ten, 0 to 9 (a stability
 * policy), so a digit's value is its distance from the run's start, mod 10 */
static int decimal_value(utf8proc_int32_t cp)
{
	int k = 0;
	while (cp - k - 1 >= 0 && utf8proc_category(cp - k - 1) == UTF8PROC_CATEGORY_ND)
		k++;
	return k % 10;
}

/* s as Python's number parsers see it: each decimal digit (category Nd) as
 * its ASCII digit; other non-ASCII characters as 0x7f, which no grammar
 * takes. A string of *len bytes in the arena (its memory limit counts it),
 * or NULL. */
static char *ascii_digits(jarena *a, const char *s, size_t n, size_t *len)
{
	char *t = ja_alloc(a, n + 1);
	if (!t)
		return NULL;
	size_t i = 0, k = 0;
	while (i < n) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t step = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
							 (utf8proc_ssize_t)(n - i), &cp);
		if (step <= 0) {
			t[k++] = 0x7f;
			i++;
		} else {
			t[k++] = cp < 0x80 ? (char)cp
				 : utf8proc_category(cp) == UTF8PROC_CATEGORY_ND
					 ? (char)('0' + decimal_value(cp))
					 : 0x7f;
			i += (size_t)step;
		}
	}
	t[k] = '\0';
	*len = k;
	return t;
}

static int parse_int(const char *s, size_t n, int64_t base, int64_t *out)
{
	if (base != 0 && (base < 2 || base > 36))
		return PY_NUM_INVALID;
	size_t i = 0;
	int neg = 0;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	int pb = prefix_base(s + i, n - i);
	int after_prefix = 0;
	if (pb && (base == 0 || base == pb)) {
		base = pb;
		i += 2;
		after_prefix = 1; /* "0x_1a": one underscore may follow a prefix */
	} else if (base == 0) {
		base = 10;
		/* base 0 refuses a leading zero unless every digit is zero */
		if (i < n && s[i] == '0')
			for (size_t j = i; j < n; j++)
				if (s[j] != '0' && s[j] != '_')
					return PY_NUM_INVALID;
	}
	uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	size_t digits = 0;
	int overflow = 0;
	for (; i < n; i++) {
		if (s[i] == '_') {
			/* only one, and only between digits (or after a prefix) */
			if (i + 1 >= n || s[i + 1] == '_' || (!digits && !after_prefix))
				return PY_NUM_INVALID;
			continue;
		}
		int d = digit_value(s[i]);
		if (d >= base)
			return PY_NUM_INVALID;
		if (mag > (limit - (uint64_t)d) / (uint64_t)base)
			overflow = 1;
		else
			mag = mag * (uint64_t)base + (uint64_t)d;
		digits++;
	}
	if (!digits)
		return PY_NUM_INVALID;
	if (overflow)
		return PY_NUM_OVERFLOW;
	*out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return PY_NUM_OK;
}

/* digits with single underscores between them, at s[*i]: how many digits */
static size_t scan_digits(const char *s, size_t n, size_t *i, int *bad)
{
	size_t digits = 0;
	while (*i < n) {
		if (isdigit((unsigned char)s[*i])) {
			digits++;
			(*i)++;
		} else if (s[*i] == '_' && digits && *i + 1 < n &&
			   isdigit((unsigned char)s[*i + 1])) {
			(*i)++;
		} else {
			break;
		}
	}
	if (*i < n && s[*i] == '_')
		*bad = 1;
	return digits;
}

static int word_is(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

int py_parse_int(jarena *a, const char *s, size_t n, int64_t base, int64_t *out)
{
	size_t len;
	char *t = ascii_digits(a, s, n, &len);
	return t ? parse_int(t, len, base, out) : PY_NUM_NOMEM;
}

/* t (NUL-terminated, n bytes, modified) */
static int parse_float(char *s, size_t n, double *out)
{
	size_t i = 0;
	int neg = 0, bad = 0;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	if (word_is(s + i, n - i, "inf") || word_is(s + i, n - i, "infinity")) {
		*out = neg ? -INFINITY : INFINITY;
		return PY_NUM_OK;
	}
	if (word_is(s + i, n - i, "nan")) {
		*out = NAN;
		return PY_NUM_OK;
	}
	size_t digits = scan_digits(s, n, &i, &bad);
	if (i < n && s[i] == '.') {
		i++;
		digits += scan_digits(s, n, &i, &bad);
	}
	if (!digits || bad)
		return PY_NUM_INVALID;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (!scan_digits(s, n, &i, &bad) || bad)
			return PY_NUM_INVALID;
	}
	if (i != n)
		return PY_NUM_INVALID;
	/* the grammar holds: strtod reads the same number once the underscores go */
	size_t k = 0;
	for (size_t j = 0; j < n; j++)
		if (s[j] != '_')
			s[k++] = s[j];
	s[k] = '\0';
	*out = strtod(s, NULL);
	return PY_NUM_OK;
}

int py_parse_float(jarena *a, const char *s, size_t n, double *out)
{
	size_t len;
	char *t = ascii_digits(a, s, n, &len);
	return t ? parse_float(t, len, out) : PY_NUM_NOMEM;
}
