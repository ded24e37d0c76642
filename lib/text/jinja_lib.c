/* jinja_lib.c — the library of lib/text/jinja.c's evaluator: Python's
 * string methods, comparison, attribute and item access (jinja2's order),
 * slices, arithmetic, the builtin functions and methods, tests and filters
 * (see jinja.h for the list). Everything here works on values and a render
 * context; nothing here walks the AST.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "core/error.h"
#include "text/jinja_int.h"

/* ---- errors ------------------------------------------------------------- */

int jx_err(ctx *c, int line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return rl_error(RL_EDATA, "'%s' line %d: %s", c->t->name, line, msg);
}

int jx_nomem(ctx *c)
{
	return c->a.failed ? RL_EDATA : rl_error(RL_ESYS, "out of memory rendering a template");
}

int jx_undef_err(ctx *c, int line, jv u)
{
	return jx_err(c, line, "%.*s", (int)u.u.s.n, u.u.s.p ? u.u.s.p : "undefined");
}

/* an Undefined whose message is printf-formatted into the arena */
jv jx_undef(ctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char *p = ja_strdup(&c->a, msg, strlen(msg));
	return jv_undef(p ? p : "undefined");
}

/* jinja2's object_type_repr */
static const char *type_repr(jv v)
{
	switch (v.k) {
	case JV_NONE:
		return "None";
	case JV_STR:
		return "str object";
	case JV_LIST:
		return v.u.l->tuple ? "tuple object" : "list object";
	case JV_DICT:
		return "dict object";
	case JV_INT:
		return "int object";
	case JV_FLOAT:
		return "float object";
	case JV_BOOL:
		return "bool object";
	case JV_NS:
		return "jinja2.utils.Namespace object";
	default:
		return "object";
	}
}

/* ---- values ------------------------------------------------------------- */

jv jx_func(ctx *c, int id, jv self, const char *name)
{
	jfunc *f = ja_alloc(&c->a, sizeof *f);
	if (!f)
		return jv_undef("out of memory");
	f->id = id;
	f->self = self;
	f->name = name;
	jv v = {.k = JV_FUNC};
	v.u.fn = f;
	return v;
}

/* the items a for loop, |list, join... walk: list/tuple as they are, dict
 * keys, string characters, nothing for Undefined */
int jx_iter(ctx *c, int line, jv v, jlist **out)
{
	jlist *l;
	switch (v.k) {
	case JV_LIST:
		*out = v.u.l;
		return RL_OK;
	case JV_UNDEF:
		if (!(*out = jl_new(&c->a, 0)))
			return jx_nomem(c);
		return RL_OK;
	case JV_DICT:
		if (!(l = jl_new(&c->a, v.u.d->n)))
			return jx_nomem(c);
		for (size_t i = 0; i < v.u.d->n; i++)
			l->v[l->n++] = v.u.d->keys[i];
		*out = l;
		return RL_OK;
	case JV_STR: {
		size_t n = ju_len(v.u.s.p, v.u.s.n);
		if (!(l = jl_new(&c->a, n)))
			return jx_nomem(c);
		for (size_t i = 0; i < v.u.s.n;) {
			size_t adv;
			ju_decode(v.u.s.p + i, v.u.s.n - i, &adv);
			l->v[l->n++] = jv_str(v.u.s.p + i, adv);
			i += adv;
		}
		*out = l;
		return RL_OK;
	}
	default:
		return jx_err(c, line, "'%s' object is not iterable", jv_typename(v));
	}
}

/* ---- Python string helpers ----------------------------------------------- */

static int in_chars(int32_t cp, jv chars)
{
	for (size_t i = 0; i < chars.u.s.n;) {
		size_t adv;
		if (ju_decode(chars.u.s.p + i, chars.u.s.n - i, &adv) == cp)
			return 1;
		i += adv;
	}
	return 0;
}

/* str.strip/lstrip/rstrip: chars a string, or None/absent for whitespace */
static jv py_strip(jv s, const jv *chars, int left, int right)
{
	const char *p = s.u.s.p;
	size_t b = 0, e = s.u.s.n;
	int ws = !chars || chars->k != JV_STR;
	if (left)
		while (b < e) {
			size_t adv;
			int32_t cp = ju_decode(p + b, e - b, &adv);
			if (ws ? !ju_isspace(cp) : !in_chars(cp, *chars))
				break;
			b += adv;
		}
	if (right)
		while (e > b) {
			size_t k = e - 1;
			while (k > b && ((unsigned char)p[k] & 0xC0) == 0x80)
				k--;
			size_t adv;
			int32_t cp = ju_decode(p + k, e - k, &adv);
			if (ws ? !ju_isspace(cp) : !in_chars(cp, *chars))
				break;
			e = k;
		}
	return jv_str(p + b, e - b);
}

static const char *memmem_(const char *h, size_t hn, const char *n, size_t nn)
{
	if (nn == 0)
		return h;
	if (nn > hn)
		return NULL;
	for (size_t i = 0; i + nn <= hn; i++)
		if (h[i] == n[0] && memcmp(h + i, n, nn) == 0)
			return h + i;
	return NULL;
}

static const char *memrmem_(const char *h, size_t hn, const char *n, size_t nn)
{
	if (nn > hn)
		return NULL;
	for (size_t i = hn - nn + 1; i-- > 0;)
		if (memcmp(h + i, n, nn) == 0)
			return h + i;
	return NULL;
}

/* str.split / str.rsplit */
static int py_split(ctx *c, int line, jv s, jv sep, int64_t maxsplit, int right, jv *out)
{
	jlist *l = jl_new(&c->a, 0);
	if (!l)
		return jx_nomem(c);
	const char *p = s.u.s.p;
	size_t n = s.u.s.n;
	int rc = RL_OK;
	if (sep.k == JV_STR) {
		if (sep.u.s.n == 0)
			return jx_err(c, line, "ValueError: empty separator");
		if (!right) {
			size_t i = 0;
			while (!rc) {
				const char *h =
					maxsplit != 0 ? memmem_(p + i, n - i, sep.u.s.p, sep.u.s.n)
						      : NULL;
				if (!h) {
					rc = jl_push(&c->a, l, jv_str(p + i, n - i));
					break;
				}
				rc = jl_push(&c->a, l, jv_str(p + i, (size_t)(h - (p + i))));
				i = (size_t)(h - p) + sep.u.s.n;
				if (maxsplit > 0)
					maxsplit--;
			}
		} else {
			size_t e = n;
			jlist *r = jl_new(&c->a, 0);
			if (!r)
				return jx_nomem(c);
			while (!rc) {
				const char *h =
					maxsplit != 0 ? memrmem_(p, e, sep.u.s.p, sep.u.s.n) : NULL;
				if (!h) {
					rc = jl_push(&c->a, r, jv_str(p, e));
					break;
				}
				size_t at = (size_t)(h - p);
				rc = jl_push(&c->a, r, jv_str(h + sep.u.s.n, e - at - sep.u.s.n));
				e = at;
				if (maxsplit > 0)
					maxsplit--;
			}
			for (size_t i = r->n; !rc && i-- > 0;)
				rc = jl_push(&c->a, l, r->v[i]);
		}
	} else if (sep.k == JV_NONE || sep.k == JV_UNDEF) {
		/* runs of whitespace; no empty strings */
		size_t i = 0;
		if (right) {
			jlist *r = jl_new(&c->a, 0);
			size_t e = n;
			if (!r)
				return jx_nomem(c);
			while (!rc) {
				while (e > 0) { /* skip trailing spaces */
					size_t k = e - 1;
					while (k > 0 && ((unsigned char)p[k] & 0xC0) == 0x80)
						k--;
					size_t adv;
					if (!ju_isspace(ju_decode(p + k, e - k, &adv)))
						break;
					e = k;
				}
				if (e == 0)
					break;
				size_t b = e;
				if (maxsplit == 0) {
					rc = jl_push(&c->a, r, jv_str(p, e));
					break;
				}
				while (b > 0) {
					size_t k = b - 1;
					while (k > 0 && ((unsigned char)p[k] & 0xC0) == 0x80)
						k--;
					size_t adv;
					if (ju_isspace(ju_decode(p + k, b - k, &adv)))
						break;
					b = k;
				}
				rc = jl_push(&c->a, r, jv_str(p + b, e - b));
				e = b;
				if (maxsplit > 0)
					maxsplit--;
			}
			for (size_t k = r->n; !rc && k-- > 0;)
				rc = jl_push(&c->a, l, r->v[k]);
		} else {
			while (!rc) {
				while (i < n) {
					size_t adv;
					if (!ju_isspace(ju_decode(p + i, n - i, &adv)))
						break;
					i += adv;
				}
				if (i >= n)
					break;
				if (maxsplit == 0) {
					rc = jl_push(&c->a, l, jv_str(p + i, n - i));
					break;
				}
				size_t b = i;
				while (i < n) {
					size_t adv;
					if (ju_isspace(ju_decode(p + i, n - i, &adv)))
						break;
					i += adv;
				}
				rc = jl_push(&c->a, l, jv_str(p + b, i - b));
				if (maxsplit > 0)
					maxsplit--;
			}
		}
	} else {
		return jx_err(c, line, "TypeError: must be str or None, not %s", jv_typename(sep));
	}
	if (rc)
		return rc;
	*out = jv_list(l);
	return RL_OK;
}

static int py_replace(ctx *c, jv s, jv old, jv new, int64_t count, jv *out)
{
	jbuf b = {.a = &c->a};
	const char *p = s.u.s.p;
	size_t n = s.u.s.n, i = 0;
	int rc = RL_OK;
	if (old.u.s.n == 0) { /* between every character */
		while (!rc && count != 0) {
			rc = jb_put(&b, new.u.s.p, new.u.s.n);
			if (count > 0)
				count--;
			if (i >= n || rc)
				break;
			size_t adv;
			ju_decode(p + i, n - i, &adv);
			rc = jb_put(&b, p + i, adv);
			i += adv;
		}
		if (!rc && i < n)
			rc = jb_put(&b, p + i, n - i);
	} else {
		while (!rc) {
			const char *h =
				count != 0 ? memmem_(p + i, n - i, old.u.s.p, old.u.s.n) : NULL;
			if (!h) {
				rc = jb_put(&b, p + i, n - i);
				break;
			}
			rc = jb_put(&b, p + i, (size_t)(h - (p + i)));
			if (!rc)
				rc = jb_put(&b, new.u.s.p, new.u.s.n);
			i = (size_t)(h - p) + old.u.s.n;
			if (count > 0)
				count--;
		}
	}
	if (rc)
		return rc;
	*out = jv_str(b.p ? b.p : "", b.n);
	return RL_OK;
}

enum { CASE_UPPER, CASE_LOWER, CASE_TITLE, CASE_CAPITALIZE, CASE_JTITLE };

static int is_cased(int32_t cp)
{
	utf8proc_category_t k = utf8proc_category(cp);
	return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT;
}

/* str.upper/lower/title/capitalize, and jinja2's |title (a word starts after
 * any of "-", whitespace, "(", "{", "[", "<") */
static int py_case(ctx *c, jv s, int mode, jv *out)
{
	jbuf b = {.a = &c->a};
	int rc = RL_OK, prev_cased = 0, word_start = 1, first = 1;
	for (size_t i = 0; !rc && i < s.u.s.n;) {
		size_t adv;
		int32_t cp = ju_decode(s.u.s.p + i, s.u.s.n - i, &adv), m = cp;
		switch (mode) {
		case CASE_UPPER:
			m = utf8proc_toupper(cp);
			break;
		case CASE_LOWER:
			m = utf8proc_tolower(cp);
			break;
		case CASE_TITLE:
			if (is_cased(cp))
				m = prev_cased ? utf8proc_tolower(cp) : utf8proc_totitle(cp);
			prev_cased = is_cased(cp);
			break;
		case CASE_CAPITALIZE:
			m = first ? utf8proc_totitle(cp) : utf8proc_tolower(cp);
			break;
		case CASE_JTITLE: {
			int delim = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' ||
				    ju_isspace(cp);
			if (delim)
				word_start = 1;
			else if (word_start) {
				m = utf8proc_toupper(cp);
				word_start = 0;
			} else {
				m = utf8proc_tolower(cp);
			}
			break;
		}
		}
		first = 0;
		if (m == cp) {
			rc = jb_put(&b, s.u.s.p + i, adv);
		} else {
			char u[4];
			rc = jb_put(&b, u, (size_t)ju_encode(m, u));
		}
		i += adv;
	}
	if (rc)
		return rc;
	*out = jv_str(b.p ? b.p : "", b.n);
	return RL_OK;
}

/* Python str.splitlines */
static int py_splitlines(ctx *c, jv s, int keepends, jlist **out)
{
	jlist *l = jl_new(&c->a, 0);
	if (!l)
		return jx_nomem(c);
	const char *p = s.u.s.p;
	size_t n = s.u.s.n, b = 0, i = 0;
	while (i < n) {
		size_t adv;
		int32_t cp = ju_decode(p + i, n - i, &adv);
		int br = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C ||
			 cp == 0x1D || cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
		if (!br) {
			i += adv;
			continue;
		}
		size_t e = i;
		i += adv;
		if (cp == '\r' && i < n && p[i] == '\n')
			i++;
		if (jl_push(&c->a, l, jv_str(p + b, keepends ? i - b : e - b)))
			return jx_nomem(c);
		b = i;
	}
	if (b < n && jl_push(&c->a, l, jv_str(p + b, n - b)))
		return jx_nomem(c);
	*out = l;
	return RL_OK;
}

/* ---- comparison ---------------------------------------------------------- */

int jx_cmp(ctx *c, int line, jv a, jv b, int *out, const char *op)
{
	if (a.k == JV_UNDEF)
		return jx_undef_err(c, line, a);
	if (b.k == JV_UNDEF)
		return jx_undef_err(c, line, b);
	if (is_num(a) && is_num(b)) {
		if (a.k == JV_FLOAT || b.k == JV_FLOAT) {
			double x = num_f(a), y = num_f(b);
			*out = (x > y) - (x < y);
		} else {
			int64_t x = num_i(a), y = num_i(b);
			*out = (x > y) - (x < y);
		}
		return RL_OK;
	}
	if (a.k == JV_STR && b.k == JV_STR) {
		size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
		int r = memcmp(a.u.s.p, b.u.s.p, n);
		*out = r ? (r > 0) - (r < 0) : (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
		return RL_OK;
	}
	if (a.k == JV_LIST && b.k == JV_LIST) {
		size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
		for (size_t i = 0; i < n; i++) {
			if (jv_eq(a.u.l->v[i], b.u.l->v[i]))
				continue;
			return jx_cmp(c, line, a.u.l->v[i], b.u.l->v[i], out, op);
		}
		*out = (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
		return RL_OK;
	}
	return jx_err(c, line, "TypeError: '%s' not supported between instances of '%s' and '%s'",
		      op, jv_typename(a), jv_typename(b));
}

int jx_contains(ctx *c, int line, jv hay, jv needle, int *out)
{
	switch (hay.k) {
	case JV_STR:
		if (needle.k == JV_UNDEF)
			return jx_undef_err(c, line, needle);
		if (needle.k != JV_STR)
			return jx_err(
				c, line,
				"TypeError: 'in <string>' requires string as left operand, not %s",
				jv_typename(needle));
		*out = memmem_(hay.u.s.p, hay.u.s.n, needle.u.s.p, needle.u.s.n) != NULL;
		return RL_OK;
	case JV_LIST:
		*out = 0;
		for (size_t i = 0; i < hay.u.l->n && !*out; i++)
			*out = jv_eq(hay.u.l->v[i], needle);
		return RL_OK;
	case JV_DICT:
		*out = jd_get(hay.u.d, needle) != NULL;
		return RL_OK;
	case JV_UNDEF:
		*out = 0;
		return RL_OK;
	default:
		return jx_err(c, line, "TypeError: argument of type '%s' is not iterable",
			      jv_typename(hay));
	}
}

/* ---- attribute and item access ------------------------------------------- */

typedef struct mentry {
	const char *name;
	int id;
} mentry;

static const mentry STR_METHODS[] = {
	{"strip", M_STRIP},	  {"lstrip", M_LSTRIP},		{"rstrip", M_RSTRIP},
	{"split", M_SPLIT},	  {"rsplit", M_RSPLIT},		{"startswith", M_STARTSWITH},
	{"endswith", M_ENDSWITH}, {"replace", M_REPLACE},	{"upper", M_UPPER},
	{"lower", M_LOWER},	  {"title", M_TITLE},		{"capitalize", M_CAPITALIZE},
	{"find", M_FIND},	  {"rfind", M_RFIND},		{"count", M_COUNT},
	{"join", M_JOIN},	  {"splitlines", M_SPLITLINES}, {"isdigit", M_ISDIGIT},
	{"isspace", M_ISSPACE},	  {"isalpha", M_ISALPHA},	{"isalnum", M_ISALNUM},
	{"islower", M_ISLOWER},	  {"isupper", M_ISUPPER},	{NULL, 0}};
static const mentry DICT_METHODS[] = {
	{"get", M_GET}, {"items", M_ITEMS}, {"keys", M_KEYS}, {"values", M_VALUES}, {NULL, 0}};
static const mentry LIST_METHODS[] = {{"index", M_LINDEX}, {"count", M_LCOUNT}, {NULL, 0}};
static const char *const DICT_UNSAFE[] = {"update", "pop", "popitem", "setdefault", "clear", NULL};
static const char *const LIST_UNSAFE[] = {"append", "extend", "insert",	 "pop", "remove",
					  "clear",  "sort",   "reverse", NULL};

static int find_method(const mentry *t, const char *s, size_t n)
{
	for (int i = 0; t[i].name; i++)
		if (name_eq(t[i].name, s, n))
			return t[i].id;
	return 0;
}

static int in_names(const char *const *t, const char *s, size_t n)
{
	for (int i = 0; t[i]; i++)
		if (name_eq(t[i], s, n))
			return 1;
	return 0;
}

static int loop_attr(ctx *c, jloop *L, const char *s, size_t n, jv *out)
{
	size_t i = L->i, len = L->items->n;
	if (name_eq("index", s, n))
		*out = jv_int((int64_t)i + 1);
	else if (name_eq("index0", s, n))
		*out = jv_int((int64_t)i);
	else if (name_eq("revindex", s, n))
		*out = jv_int((int64_t)(len - i));
	else if (name_eq("revindex0", s, n))
		*out = jv_int((int64_t)(len - i - 1));
	else if (name_eq("first", s, n))
		*out = jv_bool(i == 0);
	else if (name_eq("last", s, n))
		*out = jv_bool(i + 1 == len);
	else if (name_eq("length", s, n))
		*out = jv_int((int64_t)len);
	else if (name_eq("depth", s, n))
		*out = jv_int(L->depth);
	else if (name_eq("depth0", s, n))
		*out = jv_int(L->depth - 1);
	else if (name_eq("previtem", s, n))
		*out = i > 0 ? L->items->v[i - 1] : jv_undef("there is no previous item");
	else if (name_eq("nextitem", s, n))
		*out = i + 1 < len ? L->items->v[i + 1] : jv_undef("there is no next item");
	else if (name_eq("cycle", s, n)) {
		jv self = {.k = JV_LOOP};
		self.u.loop = L;
		*out = jx_func(c, F_CYCLE, self, "cycle");
	} else
		*out = jx_undef(c, "'LoopContext object' has no attribute '%.*s'", (int)n, s);
	return RL_OK;
}

/* obj.name: jinja2's getattr: the Python attribute (methods), then the item */
int jx_getattr(ctx *c, int line, jv obj, const char *s, size_t n, jv *out)
{
	int id;
	switch (obj.k) {
	case JV_UNDEF:
		return jx_undef_err(c, line, obj);
	case JV_DICT:
		if ((id = find_method(DICT_METHODS, s, n))) {
			*out = jx_func(c, id, obj, DICT_METHODS[0].name);
			return RL_OK;
		}
		if (in_names(DICT_UNSAFE, s, n)) {
			*out = jx_undef(c, "access to attribute '%.*s' of 'dict' object is unsafe.",
					(int)n, s);
			return RL_OK;
		}
		{
			jv *v = jd_gets(obj.u.d, s, n);
			*out = v ? *v
				 : jx_undef(c, "'dict object' has no attribute '%.*s'", (int)n, s);
		}
		return RL_OK;
	case JV_NS: {
		jv *v = jd_gets(obj.u.d, s, n);
		*out = v ? *v
			 : jx_undef(c, "'%s' has no attribute '%.*s'", type_repr(obj), (int)n, s);
		return RL_OK;
	}
	case JV_STR:
		if ((id = find_method(STR_METHODS, s, n))) {
			*out = jx_func(c, id, obj, NULL);
			return RL_OK;
		}
		break;
	case JV_LIST:
		if ((id = find_method(LIST_METHODS, s, n))) {
			*out = jx_func(c, id, obj, NULL);
			return RL_OK;
		}
		if (in_names(LIST_UNSAFE, s, n)) {
			*out = jx_undef(c, "access to attribute '%.*s' of '%s' object is unsafe.",
					(int)n, s, jv_typename(obj));
			return RL_OK;
		}
		break;
	case JV_LOOP:
		return loop_attr(c, obj.u.loop, s, n, out);
	default:
		break;
	}
	*out = jx_undef(c, "'%s' has no attribute '%.*s'", type_repr(obj), (int)n, s);
	return RL_OK;
}

/* obj[key]: the item, then (for a string key) the attribute */
int jx_getitem(ctx *c, int line, jv obj, jv key, jv *out)
{
	if (obj.k == JV_UNDEF)
		return jx_undef_err(c, line, obj);
	if (obj.k == JV_DICT) {
		jv *v = jd_get(obj.u.d, key);
		if (v) {
			*out = *v;
			return RL_OK;
		}
	} else if ((obj.k == JV_LIST || obj.k == JV_STR) && is_intlike(key)) {
		int64_t i = num_i(key);
		size_t len = obj.k == JV_LIST ? obj.u.l->n : ju_len(obj.u.s.p, obj.u.s.n);
		if (i < 0)
			i += (int64_t)len;
		if (i >= 0 && (size_t)i < len) {
			if (obj.k == JV_LIST) {
				*out = obj.u.l->v[i];
			} else {
				size_t off = ju_offset(obj.u.s.p, obj.u.s.n, (size_t)i), adv;
				ju_decode(obj.u.s.p + off, obj.u.s.n - off, &adv);
				*out = jv_str(obj.u.s.p + off, adv);
			}
			return RL_OK;
		}
	} else if (obj.k == JV_LOOP && key.k == JV_STR) {
		return loop_attr(c, obj.u.loop, key.u.s.p, key.u.s.n, out);
	}
	if (key.k == JV_STR && obj.k != JV_DICT)
		return jx_getattr(c, line, obj, key.u.s.p, key.u.s.n, out);
	if (key.k == JV_STR) {
		*out = jx_undef(c, "'%s' has no attribute '%.*s'", type_repr(obj), (int)key.u.s.n,
				key.u.s.p);
		return RL_OK;
	}
	jbuf b = {.a = &c->a};
	if (jv_repr_into(&b, key))
		return jx_nomem(c);
	*out = jx_undef(c, "%s has no element %s", type_repr(obj), b.p ? b.p : "");
	return RL_OK;
}

/* Python slice indices for a sequence of len items */
static int slice_bounds(ctx *c, int line, const jv *parts, size_t len, int64_t *start,
			int64_t *stop, int64_t *step)
{
	*step = 1;
	for (int k = 0; k < 3; k++)
		if (parts[k].k != JV_NONE && !is_intlike(parts[k])) /* an Undefined too */
			return jx_err(c, line, "TypeError: slice indices must be integers or None");
	if (parts[2].k != JV_NONE)
		*step = num_i(parts[2]);
	if (*step == 0)
		return jx_err(c, line, "ValueError: slice step cannot be zero");
	int64_t n = (int64_t)len;
	int64_t lo = *step < 0 ? -1 : 0, hi = *step < 0 ? n - 1 : n;
	for (int k = 0; k < 2; k++) {
		int64_t *dst = k ? stop : start;
		if (parts[k].k == JV_NONE || parts[k].k == JV_UNDEF) {
			*dst = (*step < 0) != k ? hi : lo;
			if (k == 0)
				*dst = *step < 0 ? hi : lo;
			else
				*dst = *step < 0 ? lo : hi;
			continue;
		}
		int64_t v = num_i(parts[k]);
		if (v < 0) {
			v += n;
			if (v < lo)
				v = lo;
		} else if (v > hi) {
			v = hi;
		}
		*dst = v;
	}
	return RL_OK;
}

int jx_slice(ctx *c, int line, jv obj, const jv *parts, jv *out)
{
	if (obj.k == JV_UNDEF)
		return jx_undef_err(c, line, obj);
	if (obj.k != JV_LIST && obj.k != JV_STR) {
		*out = jx_undef(c, "%s has no element slice", type_repr(obj));
		return RL_OK;
	}
	int is_str = obj.k == JV_STR;
	jlist *items = NULL;
	size_t len;
	int rc;
	if (is_str) {
		if ((rc = jx_iter(c, line, obj, &items)))
			return rc;
	} else {
		items = obj.u.l;
	}
	len = items->n;
	int64_t start, stop, step;
	if ((rc = slice_bounds(c, line, parts, len, &start, &stop, &step)))
		return rc;
	jlist *r = jl_new(&c->a, 0);
	if (!r)
		return jx_nomem(c);
	r->tuple = !is_str && obj.u.l->tuple;
	for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
		if (jl_push(&c->a, r, items->v[i]))
			return jx_nomem(c);
	if (!is_str) {
		*out = jv_list(r);
		return RL_OK;
	}
	jbuf b = {.a = &c->a};
	for (size_t i = 0; i < r->n; i++)
		if (jb_put(&b, r->v[i].u.s.p, r->v[i].u.s.n))
			return jx_nomem(c);
	*out = jv_str(b.p ? b.p : "", b.n);
	return RL_OK;
}

/* ---- arithmetic ---------------------------------------------------------- */

int jx_binop(ctx *c, int line, int op, jv a, jv b, jv *out)
{
	static const char *const names[128] = {['+'] = "+",  ['-'] = "-", ['*'] = "*", ['/'] = "/",
					       ['F'] = "//", ['%'] = "%", ['P'] = "**"};
	if (a.k == JV_UNDEF)
		return jx_undef_err(c, line, a);
	if (b.k == JV_UNDEF)
		return jx_undef_err(c, line, b);
	if (is_num(a) && is_num(b)) {
		int fl = a.k == JV_FLOAT || b.k == JV_FLOAT;
		if (op == '/') {
			if (num_f(b) == 0)
				return jx_err(c, line, "ZeroDivisionError: division by zero");
			*out = jv_float(num_f(a) / num_f(b));
			return RL_OK;
		}
		if (fl) {
			double x = num_f(a), y = num_f(b), r = 0;
			switch (op) {
			case '+':
				r = x + y;
				break;
			case '-':
				r = x - y;
				break;
			case '*':
				r = x * y;
				break;
			case 'F':
			case '%':
				if (y == 0)
					return jx_err(c, line, "ZeroDivisionError: float modulo");
				r = op == 'F' ? floor(x / y) : fmod(x, y);
				if (op == '%' && r != 0 && (r < 0) != (y < 0))
					r += y;
				break;
			case 'P':
				r = pow(x, y);
				break;
			}
			*out = jv_float(r);
			return RL_OK;
		}
		int64_t x = num_i(a), y = num_i(b), r = 0;
		int ovf = 0;
		switch (op) {
		case '+':
			ovf = __builtin_add_overflow(x, y, &r);
			break;
		case '-':
			ovf = __builtin_sub_overflow(x, y, &r);
			break;
		case '*':
			ovf = __builtin_mul_overflow(x, y, &r);
			break;
		case 'F':
		case '%':
			if (y == 0)
				return jx_err(c, line,
					      "ZeroDivisionError: integer division or modulo "
					      "by zero");
			if (x == INT64_MIN && y == -1) {
				ovf = op == 'F';
				r = 0;
				break;
			}
			r = op == 'F' ? x / y : x % y;
			if (op == 'F' && (x % y != 0) && ((x < 0) != (y < 0)))
				r--;
			if (op == '%' && r != 0 && ((r < 0) != (y < 0)))
				r += y;
			break;
		case 'P':
			if (y < 0) {
				*out = jv_float(pow((double)x, (double)y));
				return RL_OK;
			}
			r = 1;
			for (int64_t k = 0; k < y && !ovf; k++)
				ovf = __builtin_mul_overflow(r, x, &r);
			break;
		}
		if (ovf)
			return jx_err(c, line, "integer overflow (ints are 64-bit here)");
		*out = jv_int(r);
		return RL_OK;
	}
	if (op == '+' && a.k == JV_STR && b.k == JV_STR) {
		char *p = ja_alloc(&c->a, a.u.s.n + b.u.s.n + 1);
		if (!p)
			return jx_nomem(c);
		memcpy(p, a.u.s.p, a.u.s.n);
		memcpy(p + a.u.s.n, b.u.s.p, b.u.s.n);
		*out = jv_str(p, a.u.s.n + b.u.s.n);
		return RL_OK;
	}
	if (op == '+' && a.k == JV_LIST && b.k == JV_LIST && a.u.l->tuple == b.u.l->tuple) {
		jlist *l = jl_new(&c->a, a.u.l->n + b.u.l->n);
		if (!l)
			return jx_nomem(c);
		for (size_t i = 0; i < a.u.l->n; i++)
			l->v[l->n++] = a.u.l->v[i];
		for (size_t i = 0; i < b.u.l->n; i++)
			l->v[l->n++] = b.u.l->v[i];
		l->tuple = a.u.l->tuple;
		*out = jv_list(l);
		return RL_OK;
	}
	if (op == '*' && (((a.k == JV_STR || a.k == JV_LIST) && is_intlike(b)) ||
			  ((b.k == JV_STR || b.k == JV_LIST) && is_intlike(a)))) {
		jv seq = is_intlike(b) ? a : b;
		int64_t k = is_intlike(b) ? num_i(b) : num_i(a);
		if (k < 0)
			k = 0;
		if (seq.k == JV_STR) {
			jbuf buf = {.a = &c->a};
			for (int64_t i = 0; i < k; i++)
				if (jb_put(&buf, seq.u.s.p, seq.u.s.n))
					return jx_nomem(c);
			*out = jv_str(buf.p ? buf.p : "", buf.n);
		} else {
			jlist *l = jl_new(&c->a, 0);
			if (!l)
				return jx_nomem(c);
			for (int64_t i = 0; i < k; i++)
				for (size_t j = 0; j < seq.u.l->n; j++)
					if (jl_push(&c->a, l, seq.u.l->v[j]))
						return jx_nomem(c);
			*out = jv_list(l);
		}
		return RL_OK;
	}
	if (op == '%' && a.k == JV_STR)
		return jx_err(c, line,
			      "string formatting with %% is not supported by this Jinja subset");
	if (op == '+' && (a.k == JV_STR || a.k == JV_LIST))
		return jx_err(c, line, "TypeError: can only concatenate %s (not \"%s\") to %s",
			      jv_typename(a), jv_typename(b), jv_typename(a));
	return jx_err(c, line, "TypeError: unsupported operand type(s) for %s: '%s' and '%s'",
		      names[op & 127] ? names[op & 127] : "?", jv_typename(a), jv_typename(b));
}

/* ---- calls: arguments ---------------------------------------------------- */

/* binds a call's arguments to params (NULL-terminated); vals[k] is set and
 * have[k] 1 for each given one */
static int bind(ctx *c, int line, const char *fn, const char *const *params, const jargs *a,
		jv *vals, int *have)
{
	size_t np = 0;
	while (params[np])
		np++;
	for (size_t k = 0; k < np; k++)
		have[k] = 0;
	if (a->npos > np)
		return jx_err(c, line, "%s() takes at most %zu argument%s (%zu given)", fn, np,
			      np == 1 ? "" : "s", a->npos);
	for (size_t k = 0; k < a->npos; k++) {
		vals[k] = a->pos[k];
		have[k] = 1;
	}
	for (size_t j = 0; j < a->nkw; j++) {
		size_t k;
		for (k = 0; k < np; k++)
			if (name_eq(params[k], a->kn[j], a->kl[j]))
				break;
		if (k == np)
			return jx_err(c, line, "%s() got an unexpected keyword argument '%.*s'", fn,
				      (int)a->kl[j], a->kn[j]);
		if (have[k])
			return jx_err(c, line, "%s() got multiple values for argument '%s'", fn,
				      params[k]);
		vals[k] = a->kv[j];
		have[k] = 1;
	}
	return RL_OK;
}

static int want_str(ctx *c, int line, jv v, const char *what)
{
	if (v.k == JV_STR)
		return RL_OK;
	if (v.k == JV_UNDEF)
		return jx_undef_err(c, line, v);
	return jx_err(c, line, "TypeError: %s must be str, not %s", what, jv_typename(v));
}

/* Python's index(): an int or a bool, nothing else */
static int want_int(ctx *c, int line, jv v, int64_t *out)
{
	if (!is_intlike(v))
		return jx_err(c, line, "TypeError: '%s' object cannot be interpreted as an integer",
			      jv_typename(v));
	*out = num_i(v);
	return RL_OK;
}

/* ---- builtin functions and methods -------------------------------------- */

static int fn_strftime(ctx *c, int line, jv fmt, jv *out)
{
	if (fmt.k != JV_STR)
		return jx_err(c, line, "TypeError: strftime() argument 1 must be str, not %s",
			      jv_typename(fmt));
	char *f = ja_strdup(&c->a, fmt.u.s.p, fmt.u.s.n);
	if (!f)
		return jx_nomem(c);
	if (!*f) {
		*out = jv_str("", 0);
		return RL_OK;
	}
	for (size_t cap = 256; cap <= 65536; cap *= 4) {
		char *buf = ja_alloc(&c->a, cap);
		if (!buf)
			return jx_nomem(c);
		size_t n = strftime(buf, cap, f, &c->now);
		if (n > 0) {
			*out = jv_str(buf, n);
			return RL_OK;
		}
	}
	*out = jv_str("", 0);
	return RL_OK;
}

static int str_find(jv s, jv sub, int right, int64_t *out)
{
	const char *h = right ? memrmem_(s.u.s.p, s.u.s.n, sub.u.s.p, sub.u.s.n)
			      : memmem_(s.u.s.p, s.u.s.n, sub.u.s.p, sub.u.s.n);
	*out = h ? (int64_t)ju_len(s.u.s.p, (size_t)(h - s.u.s.p)) : -1;
	return RL_OK;
}

static int str_pred(jv s, int id)
{
	int any = 0, has_cased = 0;
	for (size_t i = 0; i < s.u.s.n;) {
		size_t adv;
		int32_t cp = ju_decode(s.u.s.p + i, s.u.s.n - i, &adv);
		utf8proc_category_t k = utf8proc_category(cp);
		int letter = k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
		int number = k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
		any = 1;
		i += adv;
		switch (id) {
		case M_ISDIGIT:
			if (k != UTF8PROC_CATEGORY_ND && k != UTF8PROC_CATEGORY_NO)
				return 0;
			break;
		case M_ISSPACE:
			if (!ju_isspace(cp))
				return 0;
			break;
		case M_ISALPHA:
			if (!letter)
				return 0;
			break;
		case M_ISALNUM:
			if (!letter && !number)
				return 0;
			break;
		case M_ISLOWER:
			if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LT)
				return 0;
			has_cased |= k == UTF8PROC_CATEGORY_LL;
			break;
		case M_ISUPPER:
			if (k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT)
				return 0;
			has_cased |= k == UTF8PROC_CATEGORY_LU;
			break;
		}
	}
	if (id == M_ISLOWER || id == M_ISUPPER)
		return has_cased;
	return any;
}

int jx_call_func(ctx *c, int line, jfunc *fn, const jargs *a, jv *out)
{
	jv v[6];
	int have[6], rc;
	jv self = fn->self;
	switch (fn->id) {
	case F_RANGE: {
		if (a->nkw || a->npos < 1 || a->npos > 3)
			return jx_err(c, line, "range() takes 1 to 3 positional arguments");
		for (size_t k = 0; k < a->npos; k++)
			if (!is_intlike(a->pos[k]))
				return jx_err(c, line,
					      "TypeError: '%s' object cannot be interpreted "
					      "as an integer",
					      jv_typename(a->pos[k]));
		int64_t start = 0, stop, step = 1;
		if (a->npos == 1) {
			stop = num_i(a->pos[0]);
		} else {
			start = num_i(a->pos[0]);
			stop = num_i(a->pos[1]);
			if (a->npos == 3)
				step = num_i(a->pos[2]);
		}
		if (step == 0)
			return jx_err(c, line, "ValueError: range() arg 3 must not be zero");
		double count = step > 0 ? ceil(((double)stop - (double)start) / (double)step)
					: ceil(((double)start - (double)stop) / (double)-step);
		if (count > 100000)
			return jx_err(c, line,
				      "OverflowError: Range too big. The sandbox blocks "
				      "ranges larger than MAX_RANGE (100000).");
		jlist *l = jl_new(&c->a, count > 0 ? (size_t)count : 0);
		if (!l)
			return jx_nomem(c);
		for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
			l->v[l->n++] = jv_int(i);
		*out = jv_list(l);
		return RL_OK;
	}
	case F_DICT:
	case F_NAMESPACE: {
		jdict *d = jd_new(&c->a);
		if (!d)
			return jx_nomem(c);
		if (a->npos > 1 || (a->npos == 1 && a->pos[0].k != JV_DICT))
			return jx_err(c, line, "%s() takes a mapping and keyword arguments",
				      fn->id == F_DICT ? "dict" : "namespace");
		if (a->npos)
			for (size_t i = 0; i < a->pos[0].u.d->n; i++)
				if (jd_set(&c->a, d, a->pos[0].u.d->keys[i],
					   a->pos[0].u.d->vals[i]))
					return jx_nomem(c);
		for (size_t j = 0; j < a->nkw; j++)
			if (jd_set(&c->a, d, jv_str(a->kn[j], a->kl[j]), a->kv[j]))
				return jx_nomem(c);
		out->k = fn->id == F_DICT ? JV_DICT : JV_NS;
		out->u.d = d;
		return RL_OK;
	}
	case F_RAISE: {
		static const char *const p[] = {"message", NULL};
		if ((rc = bind(c, line, "raise_exception", p, a, v, have)))
			return rc;
		jv msg;
		if ((rc = jv_to_str(&c->a, have[0] ? v[0] : jv_none(), &msg)))
			return rc;
		/* the template's words, as transformers raises them; but never an
		 * empty message (fuzz_jinja: one that began with a NUL byte was
		 * empty): NULs shown as \0, no words named as such */
		size_t n = msg.u.s.n, nul = 0;
		for (size_t i = 0; i < n; i++)
			nul += msg.u.s.p[i] == '\0';
		if (n == 0)
			return rl_error(RL_EDATA,
					"the template raised an exception without a "
					"message (raise_exception, line %d)",
					line);
		if (!nul)
			return rl_error(RL_EDATA, "%.*s", (int)n, msg.u.s.p);
		char *t = rl_malloc(n + nul + 1);
		if (!t)
			return jx_nomem(c);
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (msg.u.s.p[i] == '\0')
				t[k++] = '\\', t[k++] = '0';
			else
				t[k++] = msg.u.s.p[i];
		}
		t[k] = '\0';
		rc = rl_error(RL_EDATA, "%s", t);
		free(t);
		return rc;
	}
	case F_STRFTIME: {
		static const char *const p[] = {"format", NULL};
		if ((rc = bind(c, line, "strftime_now", p, a, v, have)))
			return rc;
		if (!have[0])
			return jx_err(c, line, "strftime_now() missing its format");
		return fn_strftime(c, line, v[0], out);
	}
	case F_CYCLE: {
		jloop *L = self.u.loop;
		if (a->npos == 0)
			return jx_err(c, line, "no items for cycling given");
		*out = a->pos[L->i % a->npos];
		return RL_OK;
	}
	case M_STRIP:
	case M_LSTRIP:
	case M_RSTRIP: {
		static const char *const p[] = {"chars", NULL};
		if ((rc = bind(c, line, "strip", p, a, v, have)))
			return rc;
		if (have[0] && v[0].k != JV_STR && v[0].k != JV_NONE)
			return want_str(c, line, v[0], "strip arg");
		*out = py_strip(self, have[0] ? &v[0] : NULL, fn->id != M_RSTRIP,
				fn->id != M_LSTRIP);
		return RL_OK;
	}
	case M_SPLIT:
	case M_RSPLIT: {
		static const char *const p[] = {"sep", "maxsplit", NULL};
		if ((rc = bind(c, line, "split", p, a, v, have)))
			return rc;
		if (have[1] && !is_intlike(v[1]))
			return jx_err(c, line, "TypeError: maxsplit must be an integer");
		return py_split(c, line, self, have[0] ? v[0] : jv_none(),
				have[1] ? num_i(v[1]) : -1, fn->id == M_RSPLIT, out);
	}
	case M_STARTSWITH:
	case M_ENDSWITH: {
		static const char *const p[] = {"prefix", NULL};
		if ((rc = bind(c, line, fn->id == M_STARTSWITH ? "startswith" : "endswith", p, a, v,
			       have)))
			return rc;
		if (!have[0])
			return jx_err(c, line, "TypeError: startswith/endswith takes one argument");
		jlist one = {.n = 1, .v = &v[0]};
		jlist *cands = v[0].k == JV_LIST && v[0].u.l->tuple ? v[0].u.l : &one;
		int hit = 0;
		for (size_t i = 0; i < cands->n && !hit; i++) {
			jv x = cands->v[i];
			if ((rc = want_str(c, line, x, "startswith/endswith argument")))
				return rc;
			if (x.u.s.n <= self.u.s.n)
				hit = memcmp(fn->id == M_STARTSWITH
						     ? self.u.s.p
						     : self.u.s.p + self.u.s.n - x.u.s.n,
					     x.u.s.p, x.u.s.n) == 0;
		}
		*out = jv_bool(hit);
		return RL_OK;
	}
	case M_REPLACE: {
		static const char *const p[] = {"old", "new", "count", NULL};
		if ((rc = bind(c, line, "replace", p, a, v, have)))
			return rc;
		if (!have[0] || !have[1])
			return jx_err(c, line, "TypeError: replace() takes at least 2 arguments");
		if ((rc = want_str(c, line, v[0], "replace() argument 1")) ||
		    (rc = want_str(c, line, v[1], "replace() argument 2")))
			return rc;
		int64_t count = -1;
		if (have[2] && (rc = want_int(c, line, v[2], &count)))
			return rc;
		return py_replace(c, self, v[0], v[1], count, out);
	}
	case M_UPPER:
		return py_case(c, self, CASE_UPPER, out);
	case M_LOWER:
		return py_case(c, self, CASE_LOWER, out);
	case M_TITLE:
		return py_case(c, self, CASE_TITLE, out);
	case M_CAPITALIZE:
		return py_case(c, self, CASE_CAPITALIZE, out);
	case M_FIND:
	case M_RFIND:
	case M_COUNT: {
		static const char *const p[] = {"sub", NULL};
		if ((rc = bind(c, line, "find", p, a, v, have)))
			return rc;
		if (!have[0] || (rc = want_str(c, line, v[0], "argument")))
			return rc ? rc : jx_err(c, line, "TypeError: missing argument");
		int64_t r = 0;
		if (fn->id == M_COUNT) {
			if (v[0].u.s.n == 0) {
				r = (int64_t)ju_len(self.u.s.p, self.u.s.n) + 1;
			} else {
				const char *h = self.u.s.p;
				size_t left = self.u.s.n;
				while ((h = memmem_(h, left, v[0].u.s.p, v[0].u.s.n))) {
					r++;
					h += v[0].u.s.n;
					left = self.u.s.n - (size_t)(h - self.u.s.p);
				}
			}
		} else {
			str_find(self, v[0], fn->id == M_RFIND, &r);
		}
		*out = jv_int(r);
		return RL_OK;
	}
	case M_JOIN: {
		if (a->npos != 1 || a->nkw)
			return jx_err(c, line, "TypeError: join() takes exactly one argument");
		jlist *items;
		if ((rc = jx_iter(c, line, a->pos[0], &items)))
			return rc;
		jbuf b = {.a = &c->a};
		for (size_t i = 0; i < items->n; i++) {
			if (items->v[i].k != JV_STR)
				return jx_err(c, line,
					      "TypeError: sequence item %zu: expected str "
					      "instance, %s found",
					      i, jv_typename(items->v[i]));
			if ((i && jb_put(&b, self.u.s.p, self.u.s.n)) ||
			    jb_put(&b, items->v[i].u.s.p, items->v[i].u.s.n))
				return jx_nomem(c);
		}
		*out = jv_str(b.p ? b.p : "", b.n);
		return RL_OK;
	}
	case M_SPLITLINES: {
		static const char *const p[] = {"keepends", NULL};
		if ((rc = bind(c, line, "splitlines", p, a, v, have)))
			return rc;
		jlist *l;
		if ((rc = py_splitlines(c, self, have[0] && jv_truthy(v[0]), &l)))
			return rc;
		*out = jv_list(l);
		return RL_OK;
	}
	case M_ISDIGIT:
	case M_ISSPACE:
	case M_ISALPHA:
	case M_ISALNUM:
	case M_ISLOWER:
	case M_ISUPPER:
		*out = jv_bool(str_pred(self, fn->id));
		return RL_OK;
	case M_GET: {
		static const char *const p[] = {"key", "default", NULL};
		if ((rc = bind(c, line, "get", p, a, v, have)))
			return rc;
		if (!have[0])
			return jx_err(c, line, "TypeError: get expected at least 1 argument");
		jv *x = jd_get(self.u.d, v[0]);
		*out = x ? *x : have[1] ? v[1] : jv_none();
		return RL_OK;
	}
	case M_ITEMS:
	case M_KEYS:
	case M_VALUES: {
		jdict *d = self.u.d;
		jlist *l = jl_new(&c->a, d->n);
		if (!l)
			return jx_nomem(c);
		for (size_t i = 0; i < d->n; i++) {
			if (fn->id == M_KEYS) {
				l->v[l->n++] = d->keys[i];
			} else if (fn->id == M_VALUES) {
				l->v[l->n++] = d->vals[i];
			} else {
				jlist *t = jl_new(&c->a, 2);
				if (!t)
					return jx_nomem(c);
				t->tuple = 1;
				t->v[0] = d->keys[i];
				t->v[1] = d->vals[i];
				t->n = 2;
				l->v[l->n++] = jv_list(t);
			}
		}
		*out = jv_list(l);
		return RL_OK;
	}
	case M_LINDEX:
	case M_LCOUNT: {
		if (a->npos != 1)
			return jx_err(c, line, "TypeError: index/count takes one argument");
		int64_t k = 0, found = -1;
		for (size_t i = 0; i < self.u.l->n; i++)
			if (jv_eq(self.u.l->v[i], a->pos[0])) {
				k++;
				if (found < 0)
					found = (int64_t)i;
			}
		if (fn->id == M_LINDEX && found < 0)
			return jx_err(c, line, "ValueError: item is not in list");
		*out = jv_int(fn->id == M_LCOUNT ? k : found);
		return RL_OK;
	}
	}
	return jx_err(c, line, "internal: unknown function");
}

/* ---- tests -------------------------------------------------------------- */

static const char *const TESTS[] = {
	"defined",  "undefined", "none",    "boolean",	   "false",    "true",	      "integer",
	"float",    "number",	 "string",  "mapping",	   "iterable", "sequence",    "callable",
	"sameas",   "eq",	 "equalto", "==",	   "ne",       "!=",	      "lt",
	"lessthan", "<",	 "le",	    "<=",	   "gt",       "greaterthan", ">",
	"ge",	    ">=",	 "in",	    "divisibleby", "odd",      "even",	      "lower",
	"upper",    "escaped",	 NULL};

static const char *const FILTERS[] = {
	"abs",	  "attr",	"capitalize", "count",	   "d",	      "default", "dictsort",
	"e",	  "escape",	"first",      "float",	   "indent",  "int",	 "items",
	"join",	  "last",	"length",     "list",	   "lower",   "map",	 "max",
	"min",	  "reject",	"rejectattr", "replace",   "reverse", "round",	 "safe",
	"select", "selectattr", "sort",	      "string",	   "sum",     "title",	 "tojson",
	"trim",	  "unique",	"upper",      "wordcount", NULL};

int rl_jinja__is_filter(const char *s, size_t n)
{
	return in_names(FILTERS, s, n);
}

int rl_jinja__is_test(const char *s, size_t n)
{
	return in_names(TESTS, s, n);
}

/* Python's a % b on numbers (the result takes the divisor's sign) */
static int py_mod(ctx *c, int line, jv a, jv b, double *out)
{
	if (a.k == JV_UNDEF)
		return jx_undef_err(c, line, a);
	if (b.k == JV_UNDEF)
		return jx_undef_err(c, line, b);
	if (!is_num(a) || !is_num(b))
		return jx_err(c, line,
			      "TypeError: unsupported operand type(s) for %%: '%s' and '%s'",
			      jv_typename(a), jv_typename(b));
	if (num_f(b) == 0)
		return jx_err(c, line, "ZeroDivisionError: modulo by zero");
	if (a.k == JV_FLOAT || b.k == JV_FLOAT) {
		double r = fmod(num_f(a), num_f(b));
		*out = r != 0 && (r < 0) != (num_f(b) < 0) ? r + num_f(b) : r;
	} else {
		int64_t x = num_i(a), y = num_i(b);
		int64_t r = y == -1 ? 0 : x % y; /* INT64_MIN % -1 overflows in C */
		*out = (double)(r != 0 && (r < 0) != (y < 0) ? r + y : r);
	}
	return RL_OK;
}

int jx_test(ctx *c, int line, const char *s, size_t n, jv v, const jargs *a, int *out)
{
	jv x = a->npos ? a->pos[0] : jv_undef(NULL);
	int rc, r;
#define T(name) name_eq(name, s, n)
	if (T("defined")) {
		*out = v.k != JV_UNDEF;
	} else if (T("undefined")) {
		*out = v.k == JV_UNDEF;
	} else if (T("none")) {
		*out = v.k == JV_NONE;
	} else if (T("boolean")) {
		*out = v.k == JV_BOOL;
	} else if (T("false")) {
		*out = v.k == JV_BOOL && !v.u.b;
	} else if (T("true")) {
		*out = v.k == JV_BOOL && v.u.b;
	} else if (T("integer")) {
		*out = v.k == JV_INT;
	} else if (T("float")) {
		*out = v.k == JV_FLOAT;
	} else if (T("number")) {
		*out = is_num(v);
	} else if (T("string")) {
		*out = v.k == JV_STR;
	} else if (T("mapping")) {
		*out = v.k == JV_DICT;
	} else if (T("iterable")) {
		*out = v.k == JV_STR || v.k == JV_LIST || v.k == JV_DICT || v.k == JV_UNDEF;
	} else if (T("sequence")) {
		*out = v.k == JV_STR || v.k == JV_LIST || v.k == JV_DICT || v.k == JV_UNDEF;
	} else if (T("callable")) {
		*out = v.k == JV_MACRO || v.k == JV_FUNC;
	} else if (T("sameas")) {
		*out = v.k == x.k &&
		       (v.k == JV_NONE || v.k == JV_UNDEF || (v.k == JV_BOOL && v.u.b == x.u.b) ||
			(v.k == JV_INT && v.u.i == x.u.i) || jv_eq(v, x));
	} else if (T("eq") || T("equalto") || T("==")) {
		*out = jv_eq(v, x);
	} else if (T("ne") || T("!=")) {
		*out = !jv_eq(v, x);
	} else if (T("lt") || T("lessthan") || T("<") || T("le") || T("<=") || T("gt") ||
		   T("greaterthan") || T(">") || T("ge") || T(">=")) {
		if ((rc = jx_cmp(c, line, v, x, &r, "<")))
			return rc;
		*out = T("lt") || T("lessthan") || T("<")      ? r < 0
		       : T("le") || T("<=")		       ? r <= 0
		       : T("gt") || T("greaterthan") || T(">") ? r > 0
							       : r >= 0;
	} else if (T("in")) {
		if ((rc = jx_contains(c, line, x, v, out)))
			return rc;
	} else if (T("divisibleby") || T("odd") || T("even")) {
		/* jinja2: value % num == 0; odd: value % 2 == 1; even: value % 2 == 0 */
		double rem = 0;
		if ((rc = py_mod(c, line, v, T("divisibleby") ? x : jv_int(2), &rem)))
			return rc;
		*out = T("odd") ? rem == 1 : rem == 0;
	} else if (T("lower") || T("upper")) {
		jv conv;
		if ((rc = jv_to_str(&c->a, v, &conv)))
			return rc;
		*out = str_pred(conv, T("lower") ? M_ISLOWER : M_ISUPPER);
	} else if (T("escaped")) {
		*out = 0;
	} else {
		return jx_err(c, line, "no test named '%.*s'", (int)n, s);
	}
#undef T
	return RL_OK;
}

/* ---- filters ------------------------------------------------------------ */

/* jinja2's make_attrgetter: dotted attribute names, each part looked up as an
 * item first (environment.getitem) */
static int attr_get(ctx *c, int line, jv item, jv attr, jv *out)
{
	if (attr.k != JV_STR)
		return jx_getitem(c, line, item, attr, out);
	const char *p = attr.u.s.p;
	size_t n = attr.u.s.n;
	jv cur = item;
	while (1) {
		const char *dot = memchr(p, '.', n);
		size_t k = dot ? (size_t)(dot - p) : n;
		jv key = jv_str(p, k);
		int digits = k > 0;
		for (size_t i = 0; i < k; i++)
			digits &= p[i] >= '0' && p[i] <= '9';
		if (digits)
			key = jv_int(strtoll(p, NULL, 10));
		int rc = jx_getitem(c, line, cur, key, &cur);
		if (rc)
			return rc;
		if (!dot)
			break;
		p = dot + 1;
		n -= k + 1;
	}
	*out = cur;
	return RL_OK;
}

/* select/reject/selectattr/rejectattr */
static int filter_select(ctx *c, int line, jv seq, const jargs *a, int by_attr, int keep, jv *out)
{
	jlist *items, *r;
	int rc;
	if (!(r = jl_new(&c->a, 0)))
		return jx_nomem(c);
	if (!jv_truthy(seq)) { /* jinja2: `if value:` before walking it */
		*out = jv_list(r);
		return RL_OK;
	}
	if ((rc = jx_iter(c, line, seq, &items)))
		return rc;
	size_t first = 0;
	jv attr = jv_none();
	if (by_attr) {
		if (a->npos < 1)
			return jx_err(c, line, "selectattr/rejectattr need an attribute");
		attr = a->pos[first++];
	}
	jv tname = a->npos > first ? a->pos[first] : jv_none();
	if (tname.k != JV_NONE && tname.k != JV_STR)
		return jx_err(c, line, "the test name must be a string");
	jargs ta = {.pos = a->pos + first + 1,
		    .npos = a->npos > first + 1 ? a->npos - first - 1 : 0,
		    .kn = a->kn,
		    .kl = a->kl,
		    .kv = a->kv,
		    .nkw = a->nkw};
	for (size_t i = 0; i < items->n; i++) {
		jv x = items->v[i];
		if (by_attr && (rc = attr_get(c, line, x, attr, &x)))
			return rc;
		int ok;
		if (tname.k == JV_NONE)
			ok = jv_truthy(x);
		else if ((rc = jx_test(c, line, tname.u.s.p, tname.u.s.n, x, &ta, &ok)))
			return rc;
		if (ok == keep && jl_push(&c->a, r, items->v[i]))
			return jx_nomem(c);
	}
	*out = jv_list(r);
	return RL_OK;
}

typedef struct skey {
	jv key, item;
	size_t idx;
} skey;

static int sorted_items(ctx *c, int line, jlist *items, jv attr, int case_sensitive, int reverse,
			int by_value, jlist **out)
{
	skey *k = ja_alloc(&c->a, (items->n + 1) * sizeof *k);
	if (!k)
		return jx_nomem(c);
	for (size_t i = 0; i < items->n; i++) {
		jv key = items->v[i];
		int rc;
		if (by_value >= 0) /* dictsort: item is a (k, v) tuple */
			key = key.u.l->v[by_value];
		else if (attr.k != JV_NONE && (rc = attr_get(c, line, key, attr, &key)))
			return rc;
		if (!case_sensitive && key.k == JV_STR && (rc = py_case(c, key, CASE_LOWER, &key)))
			return rc;
		k[i] = (skey){key, items->v[i], i};
	}
	/* insertion sort: stable, no global comparator state (thread-safe) */
	for (size_t i = 1; i < items->n; i++) {
		skey x = k[i];
		size_t j = i;
		while (j > 0) {
			int r;
			int rc = jx_cmp(c, line, k[j - 1].key, x.key, &r, "<");
			if (rc)
				return rc;
			if (reverse ? r >= 0 : r <= 0)
				break;
			k[j] = k[j - 1];
			j--;
		}
		k[j] = x;
	}
	jlist *r = jl_new(&c->a, items->n);
	if (!r)
		return jx_nomem(c);
	for (size_t i = 0; i < items->n; i++)
		r->v[r->n++] = k[i].item;
	*out = r;
	return RL_OK;
}

/* Python's round(value, precision): an int stays an int (rounded half to
 * even below its units), a float is rounded half to even on its exact
 * binary value (printf's rounding); precision None gives an int */
static int round_common(ctx *c, int line, jv v, jv precision, jv *out)
{
	if (precision.k == JV_NONE) {
		if (is_intlike(v)) {
			*out = jv_int(num_i(v));
			return RL_OK;
		}
		double r = nearbyint(v.u.f);
		if (isnan(r))
			return jx_err(c, line, "ValueError: cannot convert float NaN to integer");
		if (!(fabs(r) < 0x1p63))
			return jx_err(c, line, "OverflowError: round(%g) does not fit 64 bits", r);
		*out = jv_int((int64_t)r);
		return RL_OK;
	}
	int64_t prec;
	int rc;
	if ((rc = want_int(c, line, precision, &prec)))
		return rc;
	if (is_intlike(v)) {
		int64_t x = num_i(v);
		if (prec >= 0 || prec < -19) { /* 10**20 > any int64: every x rounds to 0 */
			*out = jv_int(prec >= 0 ? x : 0);
			return RL_OK;
		}
		uint64_t m = 1, a = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
		for (int64_t k = 0; k < -prec; k++)
			m *= 10;
		uint64_t q = a / m, r = a % m, res;
		if (r > m - r || (r == m - r && (q & 1)))
			q++;
		if (__builtin_mul_overflow(q, m, &res) ||
		    res > (x < 0 ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
			return jx_err(c, line,
				      "OverflowError: round(%" PRId64 ", %" PRId64
				      ") does not fit 64 bits",
				      x, prec);
		*out = jv_int(x < 0 ? (int64_t)(0 - res) : (int64_t)res);
		return RL_OK;
	}
	double x = v.u.f, r;
	if (prec == 0) {
		r = nearbyint(x);
	} else if (prec > 0) {
		/* the integer digits of a float above 2**53 are exact, so a cut-off
		 * tail of fraction zeros changes nothing */
		char buf[512];
		snprintf(buf, sizeof buf, "%.*f", (int)(prec > 300 ? 300 : prec), x);
		r = strtod(buf, NULL);
	} else if (prec < -308) {
		r = copysign(0.0, x);
	} else {
		double scale = pow(10, (double)-prec);
		r = nearbyint(x / scale) * scale;
	}
	*out = jv_float(r);
	return RL_OK;
}

/* jinja2's int filter: int(value, base) for a string, int(value) otherwise;
 * on TypeError or ValueError, int(float(value)); failing that, the default */
static int to_int(ctx *c, int line, jv v, jv dflt, jv base, jv *out)
{
	if (v.k == JV_UNDEF)
		return jx_undef_err(c, line, v);
	if (is_intlike(v)) {
		*out = jv_int(num_i(v));
		return RL_OK;
	}
	double d = NAN;
	if (v.k == JV_FLOAT) {
		if (isinf(v.u.f)) /* int(inf) raises OverflowError, which jinja2 lets through */
			return jx_err(c, line,
				      "OverflowError: cannot convert float infinity to integer");
		d = v.u.f;
	} else if (v.k == JV_STR) {
		jv t = py_strip(v, NULL, 1, 1);
		int64_t x;
		int r = is_intlike(base) ? py_parse_int(&c->a, t.u.s.p, t.u.s.n, num_i(base), &x)
					 : PY_NUM_INVALID;
		if (r == PY_NUM_NOMEM)
			return jx_nomem(c);
		if (r == PY_NUM_OK) {
			*out = jv_int(x);
			return RL_OK;
		}
		if (r == PY_NUM_INVALID) {
			r = py_parse_float(&c->a, t.u.s.p, t.u.s.n, &d);
			if (r == PY_NUM_NOMEM)
				return jx_nomem(c);
			if (r != PY_NUM_OK || isinf(d)) /* here jinja2 catches OverflowError */
				d = NAN;
		}
		if (r == PY_NUM_OVERFLOW)
			return jx_err(c, line, "OverflowError: int('%.*s') does not fit 64 bits",
				      t.u.s.n > 40 ? 40 : (int)t.u.s.n, t.u.s.p);
	}
	if (isnan(d)) {
		*out = dflt;
		return RL_OK;
	}
	if (!(fabs(d) < 0x1p63))
		return jx_err(c, line, "OverflowError: int(%g) does not fit 64 bits", d);
	*out = jv_int((int64_t)d);
	return RL_OK;
}

int jx_filter(ctx *c, int line, const char *s, size_t n, jv v, const jargs *a, jv *out)
{
	jv p[6];
	int have[6], rc;
#define F(name) name_eq(name, s, n)
#define BIND(...)                                                                                  \
	do {                                                                                       \
		static const char *const params_[] = {__VA_ARGS__, NULL};                          \
		if ((rc = bind(c, line, "filter", params_, a, p, have)))                           \
			return rc;                                                                 \
	} while (0)
	if (F("safe")) {
		return jv_to_str(&c->a, v, out);
	}
	if (F("default") || F("d")) {
		BIND("default_value", "boolean");
		int use = v.k == JV_UNDEF || (have[1] && jv_truthy(p[1]) && !jv_truthy(v));
		*out = use ? (have[0] ? p[0] : jv_str("", 0)) : v;
		return RL_OK;
	}
	if (F("tojson")) {
		/* transformers: tojson(x, ensure_ascii=False, indent=None, separators=None,
		 * sort_keys=False) */
		BIND("ensure_ascii", "indent", "separators", "sort_keys");
		jjson_opts o = {.indent = -1};
		o.ensure_ascii = have[0] && jv_truthy(p[0]);
		if (have[1] && p[1].k != JV_NONE) {
			if (is_intlike(p[1])) {
				o.indent = num_i(p[1]) < 0 ? 0 : num_i(p[1]);
			} else if (p[1].k == JV_STR) {
				o.indent_str = p[1].u.s.p;
				o.indent_len = p[1].u.s.n;
			} else {
				return jx_err(c, line, "tojson: indent must be an int or a string");
			}
		}
		if (have[2] && p[2].k != JV_NONE) {
			if (p[2].k != JV_LIST || p[2].u.l->n != 2 || p[2].u.l->v[0].k != JV_STR ||
			    p[2].u.l->v[1].k != JV_STR)
				return jx_err(c, line, "tojson: separators must be two strings");
			o.item_sep = p[2].u.l->v[0].u.s.p;
			o.item_sep_len = p[2].u.l->v[0].u.s.n;
			o.key_sep = p[2].u.l->v[1].u.s.p;
			o.key_sep_len = p[2].u.l->v[1].u.s.n;
		}
		o.sort_keys = have[3] && jv_truthy(p[3]);
		jbuf b = {.a = &c->a};
		if ((rc = jv_json_into(&b, v, &o, 0)))
			return rc == RL_EDATA && !c->a.failed
				       ? jx_err(c, line,
						"TypeError: Object of type %s is not JSON "
						"serializable",
						v.k == JV_UNDEF ? "Undefined" : "this value")
				       : rc;
		*out = jv_str(b.p ? b.p : "", b.n);
		return RL_OK;
	}
	if (F("string")) {
		return jv_to_str(&c->a, v, out);
	}
	if (F("length") || F("count")) {
		switch (v.k) {
		case JV_STR:
			*out = jv_int((int64_t)ju_len(v.u.s.p, v.u.s.n));
			return RL_OK;
		case JV_LIST:
			*out = jv_int((int64_t)v.u.l->n);
			return RL_OK;
		case JV_DICT:
			*out = jv_int((int64_t)v.u.d->n);
			return RL_OK;
		case JV_UNDEF:
			*out = jv_int(0);
			return RL_OK;
		default:
			return jx_err(c, line, "TypeError: object of type '%s' has no len()",
				      jv_typename(v));
		}
	}
	if (F("trim")) {
		BIND("chars");
		jv str;
		if ((rc = jv_to_str(&c->a, v, &str)))
			return rc;
		*out = py_strip(str, have[0] ? &p[0] : NULL, 1, 1);
		return RL_OK;
	}
	if (F("upper") || F("lower") || F("capitalize") || F("title")) {
		jv str;
		if ((rc = jv_to_str(&c->a, v, &str)))
			return rc;
		return py_case(c, str,
			       F("upper")   ? CASE_UPPER
			       : F("lower") ? CASE_LOWER
			       : F("title") ? CASE_JTITLE
					    : CASE_CAPITALIZE,
			       out);
	}
	if (F("replace")) {
		BIND("old", "new", "count");
		jv str;
		if ((rc = jv_to_str(&c->a, v, &str)))
			return rc;
		if (!have[0] || !have[1])
			return jx_err(c, line, "replace needs old and new");
		jv o, nw;
		if ((rc = jv_to_str(&c->a, p[0], &o)) || (rc = jv_to_str(&c->a, p[1], &nw)))
			return rc;
		int64_t count = -1; /* jinja2: None means all */
		if (have[2] && p[2].k != JV_NONE && (rc = want_int(c, line, p[2], &count)))
			return rc;
		return py_replace(c, str, o, nw, count, out);
	}
	if (F("join")) {
		BIND("d", "attribute");
		jlist *items;
		if ((rc = jx_iter(c, line, v, &items)))
			return rc;
		jv sep = jv_str("", 0);
		if (have[0] && (rc = jv_to_str(&c->a, p[0], &sep)))
			return rc;
		jbuf b = {.a = &c->a};
		for (size_t i = 0; i < items->n; i++) {
			jv x = items->v[i];
			if (have[1] && p[1].k != JV_NONE && (rc = attr_get(c, line, x, p[1], &x)))
				return rc;
			if ((i && jb_put(&b, sep.u.s.p, sep.u.s.n)) || jv_str_into(&b, x))
				return jx_nomem(c);
		}
		*out = jv_str(b.p ? b.p : "", b.n);
		return RL_OK;
	}
	if (F("first") || F("last")) {
		jlist *items;
		if ((rc = jx_iter(c, line, v, &items)))
			return rc;
		if (!items->n)
			*out = jv_undef(F("first") ? "No first item, sequence was empty."
						   : "No last item, sequence was empty.");
		else
			*out = items->v[F("first") ? 0 : items->n - 1];
		return RL_OK;
	}
	if (F("list")) {
		jlist *items, *r;
		if ((rc = jx_iter(c, line, v, &items)))
			return rc;
		if (!(r = jl_new(&c->a, items->n)))
			return jx_nomem(c);
		for (size_t i = 0; i < items->n; i++)
			r->v[r->n++] = items->v[i];
		*out = jv_list(r);
		return RL_OK;
	}
	if (F("items")) {
		if (v.k == JV_UNDEF) {
			jlist *r = jl_new(&c->a, 0);
			if (!r)
				return jx_nomem(c);
			*out = jv_list(r);
			return RL_OK;
		}
		if (v.k != JV_DICT)
			return jx_err(c, line,
				      "TypeError: Can only get item pairs from a mapping.");
		jfunc fn = {.id = M_ITEMS, .self = v};
		jargs none = {0};
		return jx_call_func(c, line, &fn, &none, out);
	}
	if (F("dictsort")) {
		BIND("case_sensitive", "by", "reverse");
		if (v.k != JV_DICT)
			return jx_err(c, line, "TypeError: dictsort needs a mapping");
		jfunc fn = {.id = M_ITEMS, .self = v};
		jargs none = {0};
		jv its;
		if ((rc = jx_call_func(c, line, &fn, &none, &its)))
			return rc;
		int by = have[1] && jv_is_str(p[1], "value") ? 1 : 0;
		jlist *r;
		if ((rc = sorted_items(c, line, its.u.l, jv_none(), have[0] && jv_truthy(p[0]),
				       have[2] && jv_truthy(p[2]), by, &r)))
			return rc;
		*out = jv_list(r);
		return RL_OK;
	}
	if (F("sort")) {
		BIND("reverse", "case_sensitive", "attribute");
		jlist *items, *r;
		if ((rc = jx_iter(c, line, v, &items)))
			return rc;
		if ((rc = sorted_items(c, line, items, have[2] ? p[2] : jv_none(),
				       have[1] && jv_truthy(p[1]), have[0] && jv_truthy(p[0]), -1,
				       &r)))
			return rc;
		*out = jv_list(r);
		return RL_OK;
	}
	if (F("reverse")) {
		if (v.k == JV_STR) {
			jlist *items;
			if ((rc = jx_iter(c, line, v, &items)))
				return rc;
			jbuf b = {.a = &c->a};
			for (size_t i = items->n; i-- > 0;)
				if (jb_put(&b, items->v[i].u.s.p, items->v[i].u.s.n))
					return jx_nomem(c);
			*out = jv_str(b.p ? b.p : "", b.n);
			return RL_OK;
		}
		jlist *items, *r;
		if ((rc = jx_iter(c, line, v, &items)))
			return rc;
		if (!(r = jl_new(&c->a, items->n)))
			return jx_nomem(c);
		for (size_t i = items->n; i-- > 0;)
			r->v[r->n++] = items->v[i];
		*out = jv_list(r);
		return RL_OK;
	}
	if (F("unique")) {
		BIND("case_sensitive", "attribute");
		jlist *items, *r;
		if ((rc = jx_iter(c, line, v, &items)))
			return rc;
		jlist *seen = jl_new(&c->a, 0);
		if (!(r = jl_new(&c->a, 0)) || !seen)
			return jx_nomem(c);
		for (size_t i = 0; i < items->n; i++) {
			jv key = items->v[i];
			if (have[1] && (rc = attr_get(c, line, key, p[1], &key)))
				return rc;
			if (!(have[0] && jv_truthy(p[0])) && key.k == JV_STR &&
			    (rc = py_case(c, key, CASE_LOWER, &key)))
				return rc;
			int dup = 0;
			for (size_t j = 0; j < seen->n && !dup; j++)
				dup = jv_eq(seen->v[j], key);
			if (!dup && (jl_push(&c->a, seen, key) || jl_push(&c->a, r, items->v[i])))
				return jx_nomem(c);
		}
		*out = jv_list(r);
		return RL_OK;
	}
	if (F("selectattr") || F("rejectattr"))
		return filter_select(c, line, v, a, 1, F("selectattr"), out);
	if (F("select") || F("reject"))
		return filter_select(c, line, v, a, 0, F("select"), out);
	if (F("map")) {
		jlist *items, *r;
		if (!jv_truthy(v)) /* jinja2: `if value:` before walking it */
			v = jv_undef(NULL);
		if ((rc = jx_iter(c, line, v, &items)))
			return rc;
		if (!(r = jl_new(&c->a, items->n)))
			return jx_nomem(c);
		jv attr = jv_none(), dflt = jv_none();
		int has_dflt = 0;
		for (size_t j = 0; j < a->nkw; j++) {
			if (name_eq("attribute", a->kn[j], a->kl[j]))
				attr = a->kv[j];
			else if (name_eq("default", a->kn[j], a->kl[j])) {
				dflt = a->kv[j];
				has_dflt = 1;
			} else if (attr.k == JV_NONE && a->npos)
				break;
			else
				return jx_err(c, line,
					      "map() got an unexpected keyword argument '%.*s'",
					      (int)a->kl[j], a->kn[j]);
		}
		if (attr.k == JV_NONE && !a->npos)
			return jx_err(c, line, "map needs a filter name or attribute=");
		for (size_t i = 0; i < items->n; i++) {
			jv x = items->v[i];
			if (attr.k != JV_NONE) {
				if ((rc = attr_get(c, line, x, attr, &x)))
					return rc;
				if (x.k == JV_UNDEF && has_dflt)
					x = dflt;
			} else {
				jv fname = a->pos[0];
				if (fname.k != JV_STR)
					return jx_err(c, line,
						      "map: the filter name must be a string");
				jargs fa = {.pos = a->pos + 1,
					    .npos = a->npos - 1,
					    .kn = a->kn,
					    .kl = a->kl,
					    .kv = a->kv,
					    .nkw = a->nkw};
				if ((rc = jx_filter(c, line, fname.u.s.p, fname.u.s.n, x, &fa, &x)))
					return rc;
			}
			r->v[r->n++] = x;
		}
		*out = jv_list(r);
		return RL_OK;
	}
	if (F("int")) {
		BIND("default", "base");
		return to_int(c, line, v, have[0] ? p[0] : jv_int(0), have[1] ? p[1] : jv_int(10),
			      out);
	}
	if (F("float")) {
		BIND("default");
		if (v.k == JV_UNDEF)
			return jx_undef_err(c, line, v);
		if (is_num(v)) {
			*out = jv_float(num_f(v));
			return RL_OK;
		}
		if (v.k == JV_STR) {
			jv t = py_strip(v, NULL, 1, 1);
			double d;
			int r = py_parse_float(&c->a, t.u.s.p, t.u.s.n, &d);
			if (r == PY_NUM_NOMEM)
				return jx_nomem(c);
			if (r == PY_NUM_OK) {
				*out = jv_float(d);
				return RL_OK;
			}
		}
		*out = have[0] ? p[0] : jv_float(0);
		return RL_OK;
	}
	if (F("abs")) {
		if (v.k == JV_FLOAT)
			*out = jv_float(fabs(v.u.f));
		else if (is_intlike(v) && num_i(v) != INT64_MIN)
			*out = jv_int(num_i(v) < 0 ? -num_i(v) : num_i(v));
		else
			return jx_err(c, line, "TypeError: bad operand type for abs(): '%s'",
				      jv_typename(v));
		return RL_OK;
	}
	if (F("round")) {
		BIND("precision", "method");
		jv m = have[1] ? p[1] : jv_cstr("common");
		int ceil_ = jv_is_str(m, "ceil"), floor_ = jv_is_str(m, "floor");
		if (!ceil_ && !floor_ && !jv_is_str(m, "common"))
			return jx_err(c, line,
				      "FilterArgumentError: method must be common, ceil or floor");
		if (v.k == JV_UNDEF)
			return jx_undef_err(c, line, v);
		if (!is_num(v))
			return jx_err(c, line, "TypeError: round needs a number");
		jv prec = have[0] ? p[0] : jv_int(0);
		if (!ceil_ && !floor_)
			return round_common(c, line, v, prec, out);
		/* jinja2: math.ceil/floor(value * 10**precision) / 10**precision */
		if (prec.k == JV_UNDEF)
			return jx_undef_err(c, line, prec);
		if (!is_num(prec))
			return jx_err(
				c, line,
				"TypeError: unsupported operand type(s) for ** or pow(): 'int' "
				"and '%s'",
				jv_typename(prec));
		double scale = pow(10, num_f(prec)), y = num_f(v) * scale;
		if (!isfinite(y))
			return jx_err(c, line, "%s: cannot convert float %s to integer",
				      isnan(y) ? "ValueError" : "OverflowError",
				      isnan(y) ? "NaN" : "infinity");
		/* math.ceil/floor give an int: + 0.0 drops the sign of a -0.0 */
		*out = jv_float(((ceil_ ? ceil(y) : floor(y)) + 0.0) / scale);
		return RL_OK;
	}
	if (F("indent")) {
		BIND("width", "first", "blank");
		jv str, ind;
		if ((rc = jv_to_str(&c->a, v, &str)))
			return rc;
		if (have[0] && p[0].k == JV_STR) {
			ind = p[0];
		} else {
			if (have[0] && p[0].k == JV_UNDEF)
				return jx_undef_err(c, line, p[0]);
			if (have[0] && !is_intlike(p[0]))
				return jx_err(
					c, line,
					"TypeError: can't multiply sequence by non-int of type "
					"'%s'",
					jv_typename(p[0]));
			int64_t w = have[0] ? num_i(p[0]) : 4;
			char *sp = ja_alloc(&c->a, (size_t)(w > 0 ? w : 0) + 1);
			if (!sp)
				return jx_nomem(c);
			memset(sp, ' ', (size_t)(w > 0 ? w : 0));
			ind = jv_str(sp, (size_t)(w > 0 ? w : 0));
		}
		jbuf tmp = {.a = &c->a};
		if (jb_put(&tmp, str.u.s.p, str.u.s.n) || jb_putc(&tmp, '\n'))
			return jx_nomem(c);
		jlist *lines;
		if ((rc = py_splitlines(c, jv_str(tmp.p, tmp.n), 0, &lines)))
			return rc;
		jbuf b = {.a = &c->a};
		int blank = have[2] && jv_truthy(p[2]);
		if (have[1] && jv_truthy(p[1]) && jb_put(&b, ind.u.s.p, ind.u.s.n))
			return jx_nomem(c);
		for (size_t i = 0; i < lines->n; i++) {
			jv l = lines->v[i];
			if (i && jb_putc(&b, '\n'))
				return jx_nomem(c);
			if (i && (blank || l.u.s.n) && jb_put(&b, ind.u.s.p, ind.u.s.n))
				return jx_nomem(c);
			if (jb_put(&b, l.u.s.p, l.u.s.n))
				return jx_nomem(c);
		}
		*out = jv_str(b.p ? b.p : "", b.n);
		return RL_OK;
	}
	if (F("sum")) {
		BIND("attribute", "start");
		jlist *items;
		if ((rc = jx_iter(c, line, v, &items)))
			return rc;
		jv acc = have[1] ? p[1] : jv_int(0);
		for (size_t i = 0; i < items->n; i++) {
			jv x = items->v[i];
			if (have[0] && (rc = attr_get(c, line, x, p[0], &x)))
				return rc;
			if ((rc = jx_binop(c, line, '+', acc, x, &acc)))
				return rc;
		}
		*out = acc;
		return RL_OK;
	}
	if (F("min") || F("max")) {
		BIND("case_sensitive", "attribute");
		jlist *items, *r;
		if ((rc = jx_iter(c, line, v, &items)))
			return rc;
		if (!items->n) {
			*out = jv_undef("No aggregated item, sequence was empty.");
			return RL_OK;
		}
		if ((rc = sorted_items(c, line, items, have[1] ? p[1] : jv_none(),
				       have[0] && jv_truthy(p[0]), 0, -1, &r)))
			return rc;
		*out = r->v[F("min") ? 0 : r->n - 1];
		return RL_OK;
	}
	if (F("wordcount")) {
		jv str;
		if ((rc = jv_to_str(&c->a, v, &str)))
			return rc;
		int64_t k = 0;
		int in = 0;
		for (size_t i = 0; i < str.u.s.n;) {
			size_t adv;
			int32_t cp = ju_decode(str.u.s.p + i, str.u.s.n - i, &adv);
			utf8proc_category_t cat = utf8proc_category(cp);
			int w = cp == '_' ||
				(cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO);
			if (w && !in)
				k++;
			in = w;
			i += adv;
		}
		*out = jv_int(k);
		return RL_OK;
	}
	if (F("escape") || F("e")) {
		jv str;
		if ((rc = jv_to_str(&c->a, v, &str)))
			return rc;
		jbuf b = {.a = &c->a};
		for (size_t i = 0; i < str.u.s.n; i++) {
			char ch = str.u.s.p[i];
			rc = ch == '&'	  ? jb_put(&b, "&amp;", 5)
			     : ch == '<'  ? jb_put(&b, "&lt;", 4)
			     : ch == '>'  ? jb_put(&b, "&gt;", 4)
			     : ch == '"'  ? jb_put(&b, "&#34;", 5)
			     : ch == '\'' ? jb_put(&b, "&#39;", 5)
					  : jb_putc(&b, ch);
			if (rc)
				return jx_nomem(c);
		}
		*out = jv_str(b.p ? b.p : "", b.n);
		return RL_OK;
	}
	if (F("attr")) {
		if (a->npos != 1 || a->pos[0].k != JV_STR)
			return jx_err(c, line, "attr needs an attribute name");
		return jx_getattr(c, line, v, a->pos[0].u.s.p, a->pos[0].u.s.n, out);
	}
#undef BIND
#undef F
	return jx_err(c, line, "no filter named '%.*s'", (int)n, s);
}
