/* jinja_value.c — the values of lib/text/jinja.c: the arena they live in,
 * Python's str(), repr() and json.dumps() of them, and UTF-8 helpers (see
 * jinja_int.h).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "text/jinja_int.h"

/* ---- arena ------------------------------------------------------------- */

struct jblock {
	jblock *next;
	size_t used, cap;
	max_align_t data[];
};

#define JA_BLOCK (64 * 1024)

void *ja_alloc(jarena *a, size_t n)
{
	if (a->failed)
		return NULL;
	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	if (n == 0)
		n = sizeof(max_align_t);
	jblock *b = a->head;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > JA_BLOCK / 4 ? n : JA_BLOCK;
		if (a->limit && a->used + cap > a->limit) {
			a->failed = 1;
			rl_error(RL_EDATA, "template needs more than its memory limit of %zu bytes",
				 a->limit);
			return NULL;
		}
		jblock *nb = malloc(sizeof *nb + cap);
		if (!nb) {
			a->failed = 1;
			rl_error(RL_ESYS, "out of memory rendering a template");
			return NULL;
		}
		nb->used = 0;
		nb->cap = cap;
		a->used += cap;
		if (cap > JA_BLOCK && b) { /* a big one: keep filling the current block */
			nb->next = b->next;
			b->next = nb;
		} else {
			nb->next = b;
			a->head = nb;
		}
		b = nb;
	}
	void *p = (char *)b->data + b->used;
	b->used += n;
	return p;
}

void ja_free_all(jarena *a)
{
	jblock *b = a->head;
	while (b) {
		jblock *n = b->next;
		free(b);
		b = n;
	}
	a->head = NULL;
	a->used = 0;
}

char *ja_strdup(jarena *a, const char *s, size_t n)
{
	char *p = ja_alloc(a, n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* ---- buffers ----------------------------------------------------------- */

static int jb_grow(jbuf *b, size_t need)
{
	if (b->n + need <= b->cap)
		return RL_OK;
	size_t cap = b->cap ? b->cap * 2 : 256;
	while (cap < b->n + need + 1)
		cap *= 2;
	char *p;
	if (b->a) {
		p = ja_alloc(b->a, cap);
		if (!p)
			return b->a->failed ? RL_EDATA : RL_ESYS;
		if (b->n)
			memcpy(p, b->p, b->n);
	} else {
		p = realloc(b->p, cap);
		if (!p)
			return rl_error(RL_ESYS, "out of memory rendering a template");
	}
	b->p = p;
	b->cap = cap;
	return RL_OK;
}

int jb_put(jbuf *b, const char *s, size_t n)
{
	if (b->limit && b->n + n > b->limit) {
		b->over = 1;
		return rl_error(RL_EDATA, "template output exceeds its limit of %zu bytes",
				b->limit);
	}
	int rc = jb_grow(b, n + 1);
	if (rc)
		return rc;
	if (n)
		memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
	return RL_OK;
}

int jb_putc(jbuf *b, char c)
{
	return jb_put(b, &c, 1);
}

int jb_printf(jbuf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return rl_error(RL_EDATA, "internal: formatted value too long");
	return jb_put(b, tmp, (size_t)n);
}

/* ---- constructors and basics -------------------------------------------- */

jv jv_undef(const char *hint)
{
	jv v = {.k = JV_UNDEF};
	v.u.s.p = hint;
	v.u.s.n = hint ? strlen(hint) : 0;
	return v;
}

jv jv_none(void)
{
	return (jv){.k = JV_NONE};
}

jv jv_bool(int b)
{
	jv v = {.k = JV_BOOL};
	v.u.b = !!b;
	return v;
}

jv jv_int(int64_t i)
{
	jv v = {.k = JV_INT};
	v.u.i = i;
	return v;
}

jv jv_float(double f)
{
	jv v = {.k = JV_FLOAT};
	v.u.f = f;
	return v;
}

jv jv_str(const char *p, size_t n)
{
	jv v = {.k = JV_STR};
	v.u.s.p = p ? p : "";
	v.u.s.n = n;
	return v;
}

jv jv_cstr(const char *s)
{
	return jv_str(s, strlen(s));
}

jlist *jl_new(jarena *a, size_t cap)
{
	jlist *l = ja_alloc(a, sizeof *l);
	if (!l)
		return NULL;
	memset(l, 0, sizeof *l);
	if (cap) {
		l->v = ja_alloc(a, cap * sizeof *l->v);
		if (!l->v)
			return NULL;
		l->cap = cap;
	}
	return l;
}

int jl_push(jarena *a, jlist *l, jv v)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		jv *nv = ja_alloc(a, cap * sizeof *nv);
		if (!nv)
			return a->failed ? RL_EDATA : RL_ESYS;
		if (l->n)
			memcpy(nv, l->v, l->n * sizeof *nv);
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = v;
	return RL_OK;
}

jv jv_list(jlist *l)
{
	jv v = {.k = JV_LIST};
	v.u.l = l;
	return v;
}

jdict *jd_new(jarena *a)
{
	jdict *d = ja_alloc(a, sizeof *d);
	if (d)
		memset(d, 0, sizeof *d);
	return d;
}

jv *jd_get(const jdict *d, jv key)
{
	for (size_t i = 0; i < d->n; i++)
		if (jv_eq(d->keys[i], key))
			return &d->vals[i];
	return NULL;
}

jv *jd_gets(const jdict *d, const char *key, size_t n)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->keys[i].k == JV_STR && d->keys[i].u.s.n == n &&
		    memcmp(d->keys[i].u.s.p, key, n) == 0)
			return &d->vals[i];
	return NULL;
}

int jd_set(jarena *a, jdict *d, jv key, jv val)
{
	jv *old = jd_get(d, key);
	if (old) {
		*old = val;
		return RL_OK;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		jv *nk = ja_alloc(a, cap * sizeof *nk), *nv = ja_alloc(a, cap * sizeof *nv);
		if (!nk || !nv)
			return a->failed ? RL_EDATA : RL_ESYS;
		if (d->n) {
			memcpy(nk, d->keys, d->n * sizeof *nk);
			memcpy(nv, d->vals, d->n * sizeof *nv);
		}
		d->keys = nk;
		d->vals = nv;
		d->cap = cap;
	}
	d->keys[d->n] = key;
	d->vals[d->n] = val;
	d->n++;
	return RL_OK;
}

int jv_truthy(jv v)
{
	switch (v.k) {
	case JV_UNDEF:
	case JV_NONE:
		return 0;
	case JV_BOOL:
		return v.u.b;
	case JV_INT:
		return v.u.i != 0;
	case JV_FLOAT:
		return v.u.f != 0;
	case JV_STR:
		return v.u.s.n != 0;
	case JV_LIST:
		return v.u.l->n != 0;
	case JV_DICT:
		return v.u.d->n != 0;
	default:
		return 1;
	}
}

/* Python ==: numbers across int/float/bool, strings, lists elementwise, dicts
 * by keys and values; undefined equals undefined only. */
int jv_eq(jv a, jv b)
{
	if (is_num(a) && is_num(b)) {
		if (a.k == JV_FLOAT || b.k == JV_FLOAT)
			return num_f(a) == num_f(b);
		return num_i(a) == num_i(b);
	}
	if (a.k != b.k)
		return 0;
	switch (a.k) {
	case JV_UNDEF:
	case JV_NONE:
		return 1;
	case JV_STR:
		return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
	case JV_LIST:
		if (a.u.l->n != b.u.l->n)
			return 0;
		for (size_t i = 0; i < a.u.l->n; i++)
			if (!jv_eq(a.u.l->v[i], b.u.l->v[i]))
				return 0;
		return 1;
	case JV_DICT:
		if (a.u.d->n != b.u.d->n)
			return 0;
		for (size_t i = 0; i < a.u.d->n; i++) {
			jv *o = jd_get(b.u.d, a.u.d->keys[i]);
			if (!o || !jv_eq(a.u.d->vals[i], *o))
				return 0;
		}
		return 1;
	case JV_NS:
		return a.u.d == b.u.d;
	case JV_MACRO:
		return a.u.m == b.u.m;
	case JV_FUNC:
		return a.u.fn == b.u.fn;
	case JV_LOOP:
		return a.u.loop == b.u.loop;
	default:
		return 0;
	}
}

int jv_is_str(jv v, const char *s)
{
	size_t n = strlen(s);
	return v.k == JV_STR && v.u.s.n == n && memcmp(v.u.s.p, s, n) == 0;
}

const char *jv_typename(jv v)
{
	switch (v.k) {
	case JV_UNDEF:
		return "Undefined";
	case JV_NONE:
		return "NoneType";
	case JV_BOOL:
		return "bool";
	case JV_INT:
		return "int";
	case JV_FLOAT:
		return "float";
	case JV_STR:
		return "str";
	case JV_LIST:
		return v.u.l->tuple ? "tuple" : "list";
	case JV_DICT:
		return "dict";
	case JV_NS:
		return "Namespace";
	case JV_MACRO:
		return "Macro";
	case JV_FUNC:
		return "function";
	case JV_LOOP:
		return "LoopContext";
	}
	return "object";
}

/* ---- UTF-8 -------------------------------------------------------------- */

int32_t ju_decode(const char *s, size_t n, size_t *adv)
{
	utf8proc_int32_t c;
	utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &c);
	if (k <= 0) { /* invalid byte: take it as it is */
		*adv = 1;
		return (unsigned char)s[0];
	}
	*adv = (size_t)k;
	return c;
}

int ju_encode(int32_t c, char out[4])
{
	return (int)utf8proc_encode_char(c, (utf8proc_uint8_t *)out);
}

size_t ju_len(const char *s, size_t n)
{
	/* the characters ju_decode steps over (an invalid byte is one), so that
	 * a length always matches an iteration (fuzz_jinja found a string whose
	 * stray continuation bytes made iteration overrun a list sized by the
	 * lead bytes) */
	size_t k = 0;
	for (size_t i = 0; i < n; k++) {
		size_t adv;
		ju_decode(s + i, n - i, &adv);
		i += adv;
	}
	return k;
}

size_t ju_offset(const char *s, size_t n, size_t cp)
{
	size_t i = 0, k = 0;
	while (i < n && k < cp) {
		size_t adv;
		ju_decode(s + i, n - i, &adv);
		i += adv;
		k++;
	}
	return i;
}

int ju_isspace(int32_t c)
{
	if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 ||
	    c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
	    c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000)
		return 1;
	return 0;
}

/* Python's str.isprintable() for one code point */
static int ju_printable(int32_t c)
{
	if (c == ' ')
		return 1;
	utf8proc_category_t cat = utf8proc_category(c);
	switch (cat) {
	case UTF8PROC_CATEGORY_CC:
	case UTF8PROC_CATEGORY_CF:
	case UTF8PROC_CATEGORY_CS:
	case UTF8PROC_CATEGORY_CO:
	case UTF8PROC_CATEGORY_CN:
	case UTF8PROC_CATEGORY_ZL:
	case UTF8PROC_CATEGORY_ZP:
	case UTF8PROC_CATEGORY_ZS:
		return 0;
	default:
		return 1;
	}
}

/* ---- numbers ------------------------------------------------------------ */

/* Python's repr(float): the shortest digits that read back the same, in fixed
 * notation for exponents -4 <= e < 16 (with ".0" when integral), else
 * scientific as d.ddde+XX. */
int jfmt_float(char *buf, size_t cap, double f)
{
	if (isnan(f))
		return snprintf(buf, cap, "nan");
	if (isinf(f))
		return snprintf(buf, cap, f < 0 ? "-inf" : "inf");
	if (f == 0)
		return snprintf(buf, cap, signbit(f) ? "-0.0" : "0.0");
	char e[40];
	int prec;
	for (prec = 1; prec <= 17; prec++) {
		snprintf(e, sizeof e, "%.*e", prec - 1, f);
		if (strtod(e, NULL) == f)
			break;
	}
	/* e is "-d.ddde[+-]XX": split digits and exponent */
	char digits[24];
	int nd = 0, neg = 0;
	const char *p = e;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	for (; *p && *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	int exp = atoi(p + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	char out[64];
	int o = 0;
	if (neg)
		out[o++] = '-';
	if (exp >= -5 + 1 && exp < 16) {
		if (exp < 0) {
			out[o++] = '0';
			out[o++] = '.';
			for (int i = 0; i < -exp - 1; i++)
				out[o++] = '0';
			for (int i = 0; i < nd; i++)
				out[o++] = digits[i];
		} else {
			for (int i = 0; i <= exp; i++)
				out[o++] = i < nd ? digits[i] : '0';
			out[o++] = '.';
			if (nd > exp + 1)
				for (int i = exp + 1; i < nd; i++)
					out[o++] = digits[i];
			else
				out[o++] = '0';
		}
		out[o] = '\0';
	} else {
		out[o++] = digits[0];
		if (nd > 1) {
			out[o++] = '.';
			for (int i = 1; i < nd; i++)
				out[o++] = digits[i];
		}
		o += snprintf(out + o, sizeof out - (size_t)o, "e%c%02d", exp < 0 ? '-' : '+',
			      exp < 0 ? -exp : exp);
	}
	return snprintf(buf, cap, "%s", out);
}

/* ---- str() and repr() --------------------------------------------------- */

static int repr_str(jbuf *b, const char *s, size_t n)
{
	int sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
	char q = sq && !dq ? '"' : '\'';
	int rc = jb_putc(b, q);
	for (size_t i = 0; !rc && i < n;) {
		size_t adv;
		int32_t c = ju_decode(s + i, n - i, &adv);
		if (c == q || c == '\\') {
			char e[2] = {'\\', (char)c};
			rc = jb_put(b, e, 2);
		} else if (c == '\n') {
			rc = jb_put(b, "\\n", 2);
		} else if (c == '\r') {
			rc = jb_put(b, "\\r", 2);
		} else if (c == '\t') {
			rc = jb_put(b, "\\t", 2);
		} else if (c < 0x20 || c == 0x7F) {
			rc = jb_printf(b, "\\x%02x", (unsigned)c);
		} else if (c < 0x7F || ju_printable(c)) {
			rc = jb_put(b, s + i, adv);
		} else if (c <= 0xFF) {
			rc = jb_printf(b, "\\x%02x", (unsigned)c);
		} else if (c <= 0xFFFF) {
			rc = jb_printf(b, "\\u%04x", (unsigned)c);
		} else {
			rc = jb_printf(b, "\\U%08x", (unsigned)c);
		}
		i += adv;
	}
	return rc ? rc : jb_putc(b, q);
}

static int str_or_repr(jbuf *b, jv v, int repr)
{
	char num[64];
	int rc = RL_OK;
	switch (v.k) {
	case JV_UNDEF:
		return repr ? jb_put(b, "Undefined", 9) : RL_OK;
	case JV_NONE:
		return jb_put(b, "None", 4);
	case JV_BOOL:
		return v.u.b ? jb_put(b, "True", 4) : jb_put(b, "False", 5);
	case JV_INT:
		return jb_printf(b, "%lld", (long long)v.u.i);
	case JV_FLOAT:
		jfmt_float(num, sizeof num, v.u.f);
		return jb_put(b, num, strlen(num));
	case JV_STR:
		return repr ? repr_str(b, v.u.s.p, v.u.s.n) : jb_put(b, v.u.s.p, v.u.s.n);
	case JV_LIST:
		rc = jb_putc(b, v.u.l->tuple ? '(' : '[');
		for (size_t i = 0; !rc && i < v.u.l->n; i++) {
			if (i)
				rc = jb_put(b, ", ", 2);
			if (!rc)
				rc = str_or_repr(b, v.u.l->v[i], 1);
		}
		if (!rc && v.u.l->tuple && v.u.l->n == 1)
			rc = jb_putc(b, ',');
		return rc ? rc : jb_putc(b, v.u.l->tuple ? ')' : ']');
	case JV_DICT:
		rc = jb_putc(b, '{');
		for (size_t i = 0; !rc && i < v.u.d->n; i++) {
			if (i)
				rc = jb_put(b, ", ", 2);
			if (!rc)
				rc = str_or_repr(b, v.u.d->keys[i], 1);
			if (!rc)
				rc = jb_put(b, ": ", 2);
			if (!rc)
				rc = str_or_repr(b, v.u.d->vals[i], 1);
		}
		return rc ? rc : jb_putc(b, '}');
	case JV_NS:
		rc = jb_put(b, "<Namespace {", 12);
		for (size_t i = 0; !rc && i < v.u.d->n; i++) {
			if (i)
				rc = jb_put(b, ", ", 2);
			if (!rc)
				rc = str_or_repr(b, v.u.d->keys[i], 1);
			if (!rc)
				rc = jb_put(b, ": ", 2);
			if (!rc)
				rc = str_or_repr(b, v.u.d->vals[i], 1);
		}
		return rc ? rc : jb_put(b, "}>", 2);
	case JV_MACRO:
		return jb_put(b, "<Macro>", 7);
	case JV_FUNC:
		return jb_put(b, "<built-in function>", 19);
	case JV_LOOP:
		return jb_put(b, "<LoopContext>", 13);
	}
	return RL_OK;
}

int jv_str_into(jbuf *b, jv v)
{
	return str_or_repr(b, v, 0);
}

int jv_repr_into(jbuf *b, jv v)
{
	return str_or_repr(b, v, 1);
}

int jv_to_str(jarena *a, jv v, jv *out)
{
	if (v.k == JV_STR) {
		*out = v;
		return RL_OK;
	}
	jbuf b = {.a = a};
	int rc = jv_str_into(&b, v);
	if (rc)
		return rc;
	*out = jv_str(b.p ? b.p : "", b.n);
	return RL_OK;
}

/* ---- json.dumps --------------------------------------------------------- */

static int json_str(jbuf *b, const char *s, size_t n, int ensure_ascii)
{
	int rc = jb_putc(b, '"');
	for (size_t i = 0; !rc && i < n;) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			rc = jb_put(b, e, 2);
			i++;
		} else if (c < 0x20) {
			static const char *const esc[] = {['\b'] = "\\b",
							  ['\f'] = "\\f",
							  ['\n'] = "\\n",
							  ['\r'] = "\\r",
							  ['\t'] = "\\t"};
			if (c < sizeof esc / sizeof *esc && esc[c])
				rc = jb_put(b, esc[c], 2);
			else
				rc = jb_printf(b, "\\u%04x", c);
			i++;
		} else if (c < 0x80 || !ensure_ascii) {
			rc = jb_putc(b, (char)c);
			i++;
		} else {
			size_t adv;
			int32_t cp = ju_decode(s + i, n - i, &adv);
			if (cp >= 0x10000) {
				cp -= 0x10000;
				rc = jb_printf(b, "\\u%04x\\u%04x", 0xD800 + (unsigned)(cp >> 10),
					       0xDC00 + (unsigned)(cp & 0x3FF));
			} else {
				rc = jb_printf(b, "\\u%04x", (unsigned)cp);
			}
			i += adv;
		}
	}
	return rc ? rc : jb_putc(b, '"');
}

static int json_nl(jbuf *b, const jjson_opts *o, int level)
{
	int rc = jb_putc(b, '\n');
	for (int i = 0; !rc && i < level; i++) {
		if (o->indent_str)
			rc = jb_put(b, o->indent_str, o->indent_len);
		else
			for (long k = 0; !rc && k < o->indent; k++)
				rc = jb_putc(b, ' ');
	}
	return rc;
}

static int json_key_cmp(const void *x, const void *y)
{
	const jv *a = *(const jv *const *)x, *b = *(const jv *const *)y;
	size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
	int c = memcmp(a->u.s.p, b->u.s.p, n);
	return c ? c : (a->u.s.n > b->u.s.n) - (a->u.s.n < b->u.s.n);
}

int jv_json_into(jbuf *b, jv v, const jjson_opts *o, int level)
{
	int pretty = o->indent >= 0 || o->indent_str;
	const char *isep = o->item_sep ? o->item_sep : pretty ? "," : ", ";
	size_t isep_n = o->item_sep ? o->item_sep_len : strlen(isep);
	const char *ksep = o->key_sep ? o->key_sep : ": ";
	size_t ksep_n = o->key_sep ? o->key_sep_len : 2;
	char num[64];
	int rc = RL_OK;
	switch (v.k) {
	case JV_NONE:
		return jb_put(b, "null", 4);
	case JV_BOOL:
		return v.u.b ? jb_put(b, "true", 4) : jb_put(b, "false", 5);
	case JV_INT:
		return jb_printf(b, "%lld", (long long)v.u.i);
	case JV_FLOAT:
		if (isnan(v.u.f))
			return jb_put(b, "NaN", 3);
		if (isinf(v.u.f))
			return v.u.f < 0 ? jb_put(b, "-Infinity", 9) : jb_put(b, "Infinity", 8);
		jfmt_float(num, sizeof num, v.u.f);
		return jb_put(b, num, strlen(num));
	case JV_STR:
		return json_str(b, v.u.s.p, v.u.s.n, o->ensure_ascii);
	case JV_LIST:
		if (v.u.l->n == 0)
			return jb_put(b, "[]", 2);
		rc = jb_putc(b, '[');
		for (size_t i = 0; !rc && i < v.u.l->n; i++) {
			if (i)
				rc = jb_put(b, isep, isep_n);
			if (!rc && pretty)
				rc = json_nl(b, o, level + 1);
			if (!rc)
				rc = jv_json_into(b, v.u.l->v[i], o, level + 1);
		}
		if (!rc && pretty)
			rc = json_nl(b, o, level);
		return rc ? rc : jb_putc(b, ']');
	case JV_DICT: {
		jdict *d = v.u.d;
		if (d->n == 0)
			return jb_put(b, "{}", 2);
		/* keys: strings as they are; None, bools and numbers as JSON says them */
		const jv **order = malloc(d->n * sizeof *order);
		if (!order)
			return rl_error(RL_ESYS, "out of memory rendering a template");
		for (size_t i = 0; i < d->n; i++) {
			order[i] = &d->keys[i];
			if (d->keys[i].k != JV_STR && o->sort_keys) {
				free(order);
				return rl_error(RL_EDATA, "tojson: sort_keys needs string keys");
			}
		}
		if (o->sort_keys)
			qsort(order, d->n, sizeof *order, json_key_cmp);
		rc = jb_putc(b, '{');
		for (size_t i = 0; !rc && i < d->n; i++) {
			const jv *k = order[i];
			const jv *val = &d->vals[k - d->keys];
			if (i)
				rc = jb_put(b, isep, isep_n);
			if (!rc && pretty)
				rc = json_nl(b, o, level + 1);
			if (rc)
				break;
			if (k->k == JV_STR) {
				rc = json_str(b, k->u.s.p, k->u.s.n, o->ensure_ascii);
			} else if (k->k == JV_INT || k->k == JV_FLOAT || k->k == JV_BOOL ||
				   k->k == JV_NONE) {
				rc = jb_putc(b, '"');
				if (!rc)
					rc = jv_json_into(b, *k, o, level + 1);
				if (!rc)
					rc = jb_putc(b, '"');
			} else {
				rc = rl_error(RL_EDATA,
					      "tojson: keys must be str, int, float, "
					      "bool or None, not %s",
					      jv_typename(*k));
			}
			if (!rc)
				rc = jb_put(b, ksep, ksep_n);
			if (!rc)
				rc = jv_json_into(b, *val, o, level + 1);
		}
		free(order);
		if (!rc && pretty)
			rc = json_nl(b, o, level);
		return rc ? rc : jb_putc(b, '}');
	}
	default:
		return rl_error(RL_EDATA, "tojson: Object of type %s is not JSON serializable",
				jv_typename(v));
	}
}
