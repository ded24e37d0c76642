/* jinja_parse.c — lexer and parser of lib/text/jinja.h's Jinja subset.
 *
 * The lexer follows jinja2 3.1's (jinja2/lexer.py) under transformers'
 * settings: newlines normalised to \n and one final newline dropped
 * (keep_trailing_newline=False); "{%-"/"{{-"/"{#-" strip all whitespace
 * before the tag, "-%}"/"-}}"/"-#}" all whitespace after it; trim_blocks drops
 * the one newline after "%}" and "#}"; lstrip_blocks drops the spaces and
 * tabs between a line start and "{%" or "{#" ("{%+" keeps them); a tag's end
 * is only an end where brackets balance ("{{ {'a': {'b': 1}} }}"). The parser
 * is jinja2's recursive descent (jinja2/parser.py) with the same precedence:
 * if-else < or < and < not < comparisons < + - < ~ < * / // % < ** < unary
 * < postfix (. [] ()) and filters/tests.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/util.h"
#include "text/jinja_int.h"

typedef enum {
	T_DATA,
	T_VBEGIN,
	T_VEND,
	T_BBEGIN,
	T_BEND,
	T_NAME,
	T_STR,
	T_INT,
	T_FLOAT,
	T_OP,
	T_EOF,
} ttype;

typedef struct tok {
	ttype t;
	int line;
	const char *s; /* name, operator, data or decoded string */
	size_t n;
	int64_t i;
	double f;
} tok;

typedef struct parser {
	rl_jinja *tpl;
	jarena *a;
	tok *toks;
	size_t ntok, cap, pos;
	int loop_depth; /* for break/continue */
	int macro_depth;
	int nest; /* parser recursion, bounded */
} parser;

#define MAX_NEST 500

static int perr(parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int perr(parser *p, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return rl_error(RL_EDATA, "'%s' line %d: %s", p->tpl->name, line, msg);
}

static int nomem(parser *p)
{
	return p->a->failed && rl_errmsg()[0] ? RL_EDATA : rl_error(RL_ESYS, "out of memory");
}

/* ---- lexer -------------------------------------------------------------- */

static int push_tok(parser *p, tok t)
{
	if (p->ntok == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 256;
		tok *nt = realloc(p->toks, cap * sizeof *nt);
		if (!nt)
			return rl_error(RL_ESYS, "out of memory");
		p->toks = nt;
		p->cap = cap;
	}
	p->toks[p->ntok++] = t;
	return RL_OK;
}

/* Python's \s at s[i]: its length in bytes, 0 if not whitespace */
static size_t ws_at(const char *s, size_t n, size_t i)
{
	size_t adv;
	int32_t c = ju_decode(s + i, n - i, &adv);
	return ju_isspace(c) ? adv : 0;
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
	size_t k;
	while (i < n && (k = ws_at(s, n, i)))
		i += k;
	return i;
}

/* length of data with trailing Python whitespace removed */
static size_t rstrip_len(const char *s, size_t n)
{
	size_t i = 0, end = 0;
	while (i < n) {
		size_t k = ws_at(s, n, i);
		if (k) {
			i += k;
		} else {
			size_t adv;
			ju_decode(s + i, n - i, &adv);
			i += adv;
			end = i;
		}
	}
	return end;
}

static int count_nl(const char *s, size_t n)
{
	int k = 0;
	for (size_t i = 0; i < n; i++)
		k += s[i] == '\n';
	return k;
}

/* applies the whitespace control of a tag to the data before it; sign is the
 * tag's '-', '+' or 0; lstrip only for block, comment and raw tags */
static size_t control_data(const char *d, size_t n, char sign, int lstrip_ok, int line_starting)
{
	if (sign == '-')
		return rstrip_len(d, n);
	if (sign == '+' || !lstrip_ok)
		return n;
	size_t l = n;
	while (l > 0 && d[l - 1] != '\n')
		l--;
	if ((l > 0 || line_starting) && l < n && skip_ws(d, n, l) == n)
		return l;
	return n;
}

static int decode_string(parser *p, const char *s, size_t n, int line, tok *t)
{
	char *out = ja_alloc(p->a, n + 1);
	if (!out)
		return nomem(p);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\' || i + 1 >= n) {
			out[o++] = s[i];
			continue;
		}
		char e = s[++i];
		int32_t cp = -1;
		int digits = 0;
		switch (e) {
		case 'n':
			out[o++] = '\n';
			break;
		case 't':
			out[o++] = '\t';
			break;
		case 'r':
			out[o++] = '\r';
			break;
		case '\\':
		case '\'':
		case '"':
			out[o++] = e;
			break;
		case 'a':
			out[o++] = '\a';
			break;
		case 'b':
			out[o++] = '\b';
			break;
		case 'f':
			out[o++] = '\f';
			break;
		case 'v':
			out[o++] = '\v';
			break;
		case '\n':
			break;
		case 'x':
			digits = 2;
			break;
		case 'u':
			digits = 4;
			break;
		case 'U':
			digits = 8;
			break;
		default:
			if (e >= '0' && e <= '7') {
				cp = 0;
				int k = 0;
				while (k < 3 && i < n && s[i] >= '0' && s[i] <= '7') {
					cp = cp * 8 + (s[i] - '0');
					i++;
					k++;
				}
				i--;
			} else {
				out[o++] = '\\';
				out[o++] = e;
			}
		}
		if (digits) {
			uint32_t u =
				0; /* 8 hex digits fill 32 bits (fuzz_jinja: an int overflowed) */
			for (int k = 0; k < digits; k++) {
				char h = i + 1 < n ? s[i + 1] : 0;
				int v = h >= '0' && h <= '9'   ? h - '0'
					: h >= 'a' && h <= 'f' ? h - 'a' + 10
					: h >= 'A' && h <= 'F' ? h - 'A' + 10
							       : -1;
				if (v < 0)
					return perr(p, line, "truncated \\%c escape in a string",
						    e);
				u = u * 16 + (uint32_t)v;
				i++;
			}
			if (u > 0x10FFFF)
				return perr(p, line, "illegal Unicode character in a string");
			cp = (int)u;
		}
		if (cp >= 0) {
			char u[4];
			int k = ju_encode(cp, u);
			memcpy(out + o, u, (size_t)k);
			o += (size_t)k;
		}
	}
	out[o] = '\0';
	t->s = out;
	t->n = o;
	return RL_OK;
}

static const char *const OPS[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
				  "*",	"%",  "~",  "[",  "]",	"(",  ")", "{", "}",
				  ">",	"<",  "=",  ".",  ":",	"|",  ",", ";", NULL};

/* 1 when c is a digit of base (2, 8 or 16). */
static int digit_in(char c, int base)
{
	int v = rl_hexval(c);
	return v >= 0 && v < base;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* digits with single underscores between: returns the end */
static size_t digits_us(const char *s, size_t n, size_t i)
{
	if (i >= n || !is_digit(s[i]))
		return i;
	i++;
	while (i < n) {
		if (is_digit(s[i]))
			i++;
		else if (s[i] == '_' && i + 1 < n && is_digit(s[i + 1]))
			i += 2;
		else
			break;
	}
	return i;
}

static int lex_number(parser *p, const char *s, size_t n, size_t *pos, int line)
{
	size_t i = *pos, d = digits_us(s, n, i), end = d;
	int is_float = 0;
	int after_dot = i > 0 && s[i - 1] == '.';
	if (!after_dot) {
		size_t j = d;
		if (j < n && s[j] == '.' && j + 1 < n && is_digit(s[j + 1])) {
			j = digits_us(s, n, j + 1);
			is_float = 1;
			end = j;
		}
		if (j < n && (s[j] == 'e' || s[j] == 'E')) {
			size_t k = j + 1;
			if (k < n && (s[k] == '+' || s[k] == '-'))
				k++;
			if (k < n && is_digit(s[k])) {
				end = digits_us(s, n, k);
				is_float = 1;
			}
		}
	}
	char buf[128];
	size_t bn = 0;
	tok t = {.line = line};
	if (!is_float && s[i] == '0' && d == i + 1 && i + 1 < n &&
	    strchr("bBoOxX", s[i + 1])) { /* 0b 0o 0x */
		int base = strchr("bB", s[i + 1]) ? 2 : strchr("oO", s[i + 1]) ? 8 : 16;
		size_t j = i + 2;
		while (j < n && (s[j] == '_' || digit_in(s[j], base))) {
			if (s[j] != '_' && bn < sizeof buf - 1)
				buf[bn++] = s[j];
			j++;
		}
		buf[bn] = '\0';
		errno = 0;
		char *e;
		long long v = strtoll(buf, &e, base);
		if (!bn || errno || *e)
			return perr(p, line, "invalid integer literal");
		t.t = T_INT;
		t.i = v;
		*pos = j;
		return push_tok(p, t);
	}
	if (!is_float && s[i] == '0') { /* "0", "0_0": anything else after 0 is a new token */
		end = i + 1;
		while (end + 1 < n && s[end] == '_' && s[end + 1] == '0')
			end += 2;
	}
	for (size_t k = i; k < end; k++)
		if (s[k] != '_' && bn < sizeof buf - 1)
			buf[bn++] = s[k];
	buf[bn] = '\0';
	errno = 0;
	char *e;
	if (is_float) {
		t.t = T_FLOAT;
		t.f = strtod(buf, &e);
	} else {
		t.t = T_INT;
		t.i = strtoll(buf, &e, 10);
		if (errno)
			return perr(p, line, "integer literal out of the 64-bit range");
	}
	*pos = end;
	return push_tok(p, t);
}

/* lexes the inside of {{ }} or {% %} from *pos; stops after the end tag.
 * block: 1 for %}, 0 for }}. Sets *ends_nl when the end's match ends in \n. */
static int lex_tag(parser *p, const char *s, size_t n, size_t *pos, int *line, int block,
		   int *ends_nl)
{
	size_t i = *pos;
	int depth = 0;
	const char close = block ? '%' : '}';
	for (;;) {
		if (i >= n)
			return perr(p, *line, "unexpected end of template: missing '%s'",
				    block ? "%}" : "}}");
		if (depth == 0) {
			size_t e = 0;
			char sign = 0;
			if ((s[i] == '-' || s[i] == '+') && i + 2 < n && s[i + 1] == close &&
			    s[i + 2] == '}' && (s[i] == '-' || block)) {
				sign = s[i];
				e = i + 3;
			} else if (s[i] == close && i + 1 < n && s[i + 1] == '}') {
				e = i + 2;
			}
			if (e) {
				size_t start = e;
				if (sign == '-')
					e = skip_ws(s, n, e);
				else if (!sign && block && e < n && s[e] == '\n')
					e++;
				*ends_nl = e > start ? s[e - 1] == '\n' : 0;
				*line += count_nl(s + i, e - i);
				*pos = e;
				return push_tok(p,
						(tok){.t = block ? T_BEND : T_VEND, .line = *line});
			}
		}
		size_t w = ws_at(s, n, i);
		if (w) {
			*line += s[i] == '\n';
			i += w;
			continue;
		}
		char c = s[i];
		int rc;
		if (is_digit(c)) {
			if ((rc = lex_number(p, s, n, &i, *line)))
				return rc;
			continue;
		}
		if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			size_t j = i + 1;
			while (j < n &&
			       (s[j] == '_' || is_digit(s[j]) || (s[j] >= 'a' && s[j] <= 'z') ||
				(s[j] >= 'A' && s[j] <= 'Z')))
				j++;
			if ((rc = push_tok(
				     p, (tok){.t = T_NAME, .line = *line, .s = s + i, .n = j - i})))
				return rc;
			i = j;
			continue;
		}
		if (c == '\'' || c == '"') {
			size_t j = i + 1;
			while (j < n && s[j] != c) {
				if (s[j] == '\\')
					j++;
				j++;
			}
			if (j >= n)
				return perr(p, *line, "unterminated string");
			tok t = {.t = T_STR, .line = *line};
			if ((rc = decode_string(p, s + i + 1, j - i - 1, *line, &t)))
				return rc;
			if ((rc = push_tok(p, t)))
				return rc;
			*line += count_nl(s + i, j - i);
			i = j + 1;
			continue;
		}
		int k;
		for (k = 0; OPS[k]; k++) {
			size_t on = strlen(OPS[k]);
			if (i + on <= n && memcmp(s + i, OPS[k], on) == 0)
				break;
		}
		if (!OPS[k])
			return perr(p, *line, "unexpected char '%c'", c);
		if (c == '(' || c == '[' || c == '{') {
			depth++;
		} else if (c == ')' || c == ']' || c == '}') {
			if (depth == 0)
				return perr(p, *line, "unexpected '%c'", c);
			depth--;
		}
		if ((rc = push_tok(
			     p, (tok){.t = T_OP, .line = *line, .s = OPS[k], .n = strlen(OPS[k])})))
			return rc;
		i += strlen(OPS[k]);
	}
}

static int push_data(parser *p, const char *s, size_t n, int line)
{
	if (!n)
		return RL_OK;
	return push_tok(p, (tok){.t = T_DATA, .line = line, .s = s, .n = n});
}

/* "{%[-+]? raw [-]?%}" at s+i: its end, or 0 */
static size_t raw_begin(const char *s, size_t n, size_t i, char *sign)
{
	size_t j = i + 2;
	*sign = 0;
	if (j < n && (s[j] == '-' || s[j] == '+'))
		*sign = s[j++];
	j = skip_ws(s, n, j);
	if (j + 3 > n || memcmp(s + j, "raw", 3) != 0)
		return 0;
	j = skip_ws(s, n, j + 3);
	if (j + 3 <= n && memcmp(s + j, "-%}", 3) == 0)
		return skip_ws(s, n, j + 3);
	if (j + 2 <= n && memcmp(s + j, "%}", 2) == 0)
		return j + 2;
	return 0;
}

static int lex(parser *p, const char *s, size_t n)
{
	size_t pos = 0;
	int line = 1, line_starting = 1, rc;
	while (pos < n) {
		size_t q = pos;
		const char *hit = NULL;
		while (q + 1 < n) {
			hit = memchr(s + q, '{', n - q - 1);
			if (!hit)
				break;
			q = (size_t)(hit - s);
			if (s[q + 1] == '{' || s[q + 1] == '%' || s[q + 1] == '#')
				break;
			q++;
			hit = NULL;
		}
		if (!hit) {
			rc = push_data(p, s + pos, n - pos, line);
			return rc ? rc
				  : push_tok(p, (tok){.t = T_EOF,
						      .line = line + count_nl(s + pos, n - pos)});
		}
		char kind = s[q + 1];
		char sign = q + 2 < n && (s[q + 2] == '-' || s[q + 2] == '+') ? s[q + 2] : 0;
		char rsign;
		size_t raw_end = kind == '%' ? raw_begin(s, n, q, &rsign) : 0;
		size_t dn = control_data(s + pos, q - pos, sign, kind != '{', line_starting);
		if ((rc = push_data(p, s + pos, dn, line)))
			return rc;
		line += count_nl(s + pos, q - pos);
		if (raw_end) {
			/* body up to {%[-+]? endraw ...%} */
			size_t b = raw_end, e = b;
			int found = 0;
			while (e + 1 < n) {
				if (s[e] == '{' && s[e + 1] == '%') {
					size_t j = e + 2;
					char es = 0;
					if (j < n && (s[j] == '-' || s[j] == '+'))
						es = s[j++];
					j = skip_ws(s, n, j);
					if (j + 6 <= n && memcmp(s + j, "endraw", 6) == 0) {
						j = skip_ws(s, n, j + 6);
						size_t end = 0;
						if (j + 3 <= n && memcmp(s + j, "+%}", 3) == 0)
							end = j + 3;
						else if (j + 3 <= n && memcmp(s + j, "-%}", 3) == 0)
							end = skip_ws(s, n, j + 3);
						else if (j + 2 <= n && memcmp(s + j, "%}", 2) == 0)
							end = j + 2 +
							      (j + 2 < n && s[j + 2] == '\n');
						if (end) {
							int ls = raw_end > q &&
								 s[raw_end - 1] == '\n';
							size_t bn = control_data(s + b, e - b, es,
										 1, ls);
							if ((rc = push_data(p, s + b, bn, line)))
								return rc;
							line += count_nl(s + q, end - q);
							line_starting = s[end - 1] == '\n';
							pos = end;
							found = 1;
							break;
						}
					}
				}
				e++;
			}
			if (!found)
				return perr(p, line, "missing end of raw directive");
			continue;
		}
		size_t start = q + 2 + (sign ? 1 : 0);
		if (kind == '#') {
			size_t e = start;
			while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}'))
				e++;
			if (e + 1 >= n)
				return perr(p, line, "missing end of comment tag");
			char es = e > start && (s[e - 1] == '-' || s[e - 1] == '+') ? s[e - 1] : 0;
			size_t end = e + 2, after = end;
			if (es == '-')
				end = skip_ws(s, n, end);
			else if (!es && end < n && s[end] == '\n')
				end++;
			line += count_nl(s + q, end - q);
			line_starting = end > after ? s[end - 1] == '\n' : 0;
			pos = end;
			continue;
		}
		if ((rc = push_tok(p, (tok){.t = kind == '%' ? T_BBEGIN : T_VBEGIN, .line = line})))
			return rc;
		pos = start;
		int ends_nl = 0;
		if ((rc = lex_tag(p, s, n, &pos, &line, kind == '%', &ends_nl)))
			return rc;
		line_starting = ends_nl;
	}
	return push_tok(p, (tok){.t = T_EOF, .line = line});
}

/* ---- parser ------------------------------------------------------------- */

static tok *cur(parser *p)
{
	return &p->toks[p->pos];
}

static tok *peek(parser *p, size_t k)
{
	size_t i = p->pos + k < p->ntok ? p->pos + k : p->ntok - 1;
	return &p->toks[i];
}

static int is_op(const tok *t, const char *op)
{
	return t->t == T_OP && t->n == strlen(op) && memcmp(t->s, op, t->n) == 0;
}

static int is_name(const tok *t, const char *name)
{
	return t->t == T_NAME && t->n == strlen(name) && memcmp(t->s, name, t->n) == 0;
}

static const char *tok_desc(const tok *t, char *buf, size_t cap)
{
	switch (t->t) {
	case T_DATA:
		return "template data";
	case T_VBEGIN:
		return "'{{'";
	case T_VEND:
		return "end of print statement";
	case T_BBEGIN:
		return "'{%'";
	case T_BEND:
		return "end of statement block";
	case T_EOF:
		return "end of template";
	case T_INT:
		return "integer";
	case T_FLOAT:
		return "float";
	case T_STR:
		return "string";
	default:
		snprintf(buf, cap, "'%.*s'", (int)(t->n < 40 ? t->n : 40), t->s);
		return buf;
	}
}

static int expect_op(parser *p, const char *op)
{
	if (!is_op(cur(p), op)) {
		char b[64];
		return perr(p, cur(p)->line, "expected '%s', got %s", op,
			    tok_desc(cur(p), b, sizeof b));
	}
	p->pos++;
	return RL_OK;
}

static int expect_t(parser *p, ttype t, const char *what)
{
	if (cur(p)->t != t) {
		char b[64];
		return perr(p, cur(p)->line, "expected %s, got %s", what,
			    tok_desc(cur(p), b, sizeof b));
	}
	p->pos++;
	return RL_OK;
}

static jnode *mk(parser *p, ntype type, int line)
{
	jnode *n = ja_alloc(p->a, sizeof *n);
	if (n) {
		memset(n, 0, sizeof *n);
		n->type = type;
		n->line = line;
	}
	return n;
}

/* a growable node list */
typedef struct nlist {
	jnode **v;
	const char **names;
	size_t *lens;
	int *ops;
	size_t n, cap;
} nlist;

static int nl_push(parser *p, nlist *l, jnode *x, const char *name, size_t len, int op)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		jnode **v = ja_alloc(p->a, cap * sizeof *v);
		const char **names = ja_alloc(p->a, cap * sizeof *names);
		size_t *lens = ja_alloc(p->a, cap * sizeof *lens);
		int *ops = ja_alloc(p->a, cap * sizeof *ops);
		if (!v || !names || !lens || !ops)
			return nomem(p);
		if (l->n) {
			memcpy(v, l->v, l->n * sizeof *v);
			memcpy(names, l->names, l->n * sizeof *names);
			memcpy(lens, l->lens, l->n * sizeof *lens);
			memcpy(ops, l->ops, l->n * sizeof *ops);
		}
		l->v = v;
		l->names = names;
		l->lens = lens;
		l->ops = ops;
		l->cap = cap;
	}
	l->v[l->n] = x;
	l->names[l->n] = name;
	l->lens[l->n] = len;
	l->ops[l->n] = op;
	l->n++;
	return RL_OK;
}

static void nl_into(jnode *n, const nlist *l)
{
	n->kids = l->v;
	n->nkids = l->n;
	n->names = l->names;
	n->name_lens = l->lens;
	n->ops = l->ops;
}

static int parse_expression(parser *p, int with_condexpr, jnode **out);
static int parse_tuple(parser *p, int simplified, int with_condexpr, const char *end_name,
		       int explicit_parens, jnode **out);
static int parse_unary(parser *p, int with_filter, jnode **out);
static int parse_body(parser *p, const char *const *ends, jnode **out);
static int parse_postfix(parser *p, jnode **node);

static int enter(parser *p)
{
	if (++p->nest > MAX_NEST)
		return perr(p, cur(p)->line, "template nested too deeply (more than %d levels)",
			    MAX_NEST);
	return RL_OK;
}

/* call arguments after '(' up to ')': positional and name=value */
static int parse_call_args(parser *p, nlist *args)
{
	int rc = expect_op(p, "(");
	while (!rc && !is_op(cur(p), ")")) {
		if (args->n && (rc = expect_op(p, ",")))
			break;
		if (is_op(cur(p), ")"))
			break;
		if (is_op(cur(p), "*") || is_op(cur(p), "**"))
			return perr(p, cur(p)->line,
				    "*args and **kwargs in calls are not supported");
		const char *name = NULL;
		size_t len = 0;
		if (cur(p)->t == T_NAME && is_op(peek(p, 1), "=")) {
			name = cur(p)->s;
			len = cur(p)->n;
			p->pos += 2;
		} else if (args->n && args->names[args->n - 1]) {
			return perr(p, cur(p)->line,
				    "positional argument follows keyword argument");
		}
		jnode *e;
		if ((rc = parse_expression(p, 1, &e)))
			return rc;
		rc = nl_push(p, args, e, name, len, 0);
	}
	return rc ? rc : expect_op(p, ")");
}

static int parse_primary(parser *p, jnode **out)
{
	tok *t = cur(p);
	int rc;
	jnode *n;
	switch (t->t) {
	case T_NAME:
		if (!(n = mk(p, N_LIT, t->line)))
			return nomem(p);
		if (is_name(t, "true") || is_name(t, "True")) {
			n->lit = jv_bool(1);
		} else if (is_name(t, "false") || is_name(t, "False")) {
			n->lit = jv_bool(0);
		} else if (is_name(t, "none") || is_name(t, "None")) {
			n->lit = jv_none();
		} else {
			n->type = N_NAME;
			n->s = t->s;
			n->n = t->n;
		}
		p->pos++;
		*out = n;
		return RL_OK;
	case T_STR: {
		/* adjacent strings concatenate */
		size_t total = 0, k = p->pos;
		while (p->toks[k].t == T_STR)
			total += p->toks[k++].n;
		char *s = ja_alloc(p->a, total + 1);
		if (!s || !(n = mk(p, N_LIT, t->line)))
			return nomem(p);
		size_t o = 0;
		while (cur(p)->t == T_STR) {
			memcpy(s + o, cur(p)->s, cur(p)->n);
			o += cur(p)->n;
			p->pos++;
		}
		s[o] = '\0';
		n->lit = jv_str(s, o);
		*out = n;
		return RL_OK;
	}
	case T_INT:
	case T_FLOAT:
		if (!(n = mk(p, N_LIT, t->line)))
			return nomem(p);
		n->lit = t->t == T_INT ? jv_int(t->i) : jv_float(t->f);
		p->pos++;
		*out = n;
		return RL_OK;
	case T_OP:
		if (is_op(t, "(")) {
			p->pos++;
			if ((rc = parse_tuple(p, 0, 1, NULL, 1, out)))
				return rc;
			return expect_op(p, ")");
		}
		if (is_op(t, "[") || is_op(t, "{")) {
			int dict = is_op(t, "{");
			const char *close = dict ? "}" : "]";
			if (!(n = mk(p, dict ? N_DICT : N_LIST, t->line)))
				return nomem(p);
			p->pos++;
			nlist items = {0};
			while (!is_op(cur(p), close)) {
				if (items.n && (rc = expect_op(p, ",")))
					return rc;
				if (is_op(cur(p), close))
					break;
				jnode *e;
				if ((rc = parse_expression(p, 1, &e)) ||
				    (rc = nl_push(p, &items, e, NULL, 0, 0)))
					return rc;
				if (dict) {
					if ((rc = expect_op(p, ":")) ||
					    (rc = parse_expression(p, 1, &e)) ||
					    (rc = nl_push(p, &items, e, NULL, 0, 0)))
						return rc;
				}
			}
			p->pos++;
			nl_into(n, &items);
			*out = n;
			return RL_OK;
		}
		break;
	default:
		break;
	}
	char b[64];
	return perr(p, t->line, "unexpected %s", tok_desc(t, b, sizeof b));
}

/* subscript: a[...] with slices */
static int parse_subscript(parser *p, jnode **node)
{
	tok *t = cur(p);
	int rc;
	if (is_op(t, ".")) {
		p->pos++;
		tok *a = cur(p);
		jnode *n;
		if (a->t == T_NAME) {
			if (!(n = mk(p, N_ATTR, a->line)))
				return nomem(p);
			n->a = *node;
			n->s = a->s;
			n->n = a->n;
		} else if (a->t == T_INT) {
			jnode *k = mk(p, N_LIT, a->line);
			if (!k || !(n = mk(p, N_ITEM, a->line)))
				return nomem(p);
			k->lit = jv_int(a->i);
			n->a = *node;
			n->b = k;
		} else {
			char b[64];
			return perr(p, a->line, "expected name or number after '.', got %s",
				    tok_desc(a, b, sizeof b));
		}
		p->pos++;
		*node = n;
		return RL_OK;
	}
	/* '[' */
	p->pos++;
	jnode *parts[3] = {NULL, NULL, NULL};
	int is_slice = 0, k = 0;
	for (;;) {
		if (is_op(cur(p), ":")) {
			if (k >= 2)
				return perr(p, cur(p)->line, "invalid slice");
			is_slice = 1;
			k++;
			p->pos++;
			continue;
		}
		if (is_op(cur(p), "]"))
			break;
		if (is_op(cur(p), ","))
			return perr(p, cur(p)->line, "tuple subscripts are not supported");
		if (parts[k])
			return perr(p, cur(p)->line, "invalid subscript");
		if ((rc = parse_expression(p, 1, &parts[k])))
			return rc;
	}
	p->pos++;
	jnode *n = mk(p, is_slice ? N_SLICE : N_ITEM, t->line);
	if (!n)
		return nomem(p);
	n->a = *node;
	if (is_slice) {
		n->kids = ja_alloc(p->a, 3 * sizeof *n->kids);
		if (!n->kids)
			return nomem(p);
		memcpy(n->kids, parts, sizeof parts);
		n->nkids = 3;
	} else {
		if (!parts[0])
			return perr(p, t->line, "expected an expression in []");
		n->b = parts[0];
	}
	*node = n;
	return RL_OK;
}

static int parse_call(parser *p, jnode **node)
{
	jnode *n = mk(p, N_CALL, cur(p)->line);
	if (!n)
		return nomem(p);
	nlist args = {0};
	int rc = parse_call_args(p, &args);
	if (rc)
		return rc;
	n->a = *node;
	nl_into(n, &args);
	*node = n;
	return RL_OK;
}

static int parse_postfix(parser *p, jnode **node)
{
	int rc = RL_OK;
	while (!rc) {
		if (is_op(cur(p), ".") || is_op(cur(p), "["))
			rc = parse_subscript(p, node);
		else if (is_op(cur(p), "("))
			rc = parse_call(p, node);
		else
			break;
	}
	return rc;
}

static int dotted_name(parser *p, const char **s, size_t *n)
{
	if (cur(p)->t != T_NAME) {
		char b[64];
		return perr(p, cur(p)->line, "expected a name, got %s",
			    tok_desc(cur(p), b, sizeof b));
	}
	*s = cur(p)->s;
	*n = cur(p)->n;
	p->pos++;
	if (is_op(cur(p), "."))
		return perr(p, cur(p)->line, "dotted filter and test names are not supported");
	return RL_OK;
}

/* filters after '|' (or, inline, a filter block's first one) */
static int parse_filter(parser *p, jnode **node, int start_inline)
{
	int rc = RL_OK;
	while (!rc && (is_op(cur(p), "|") || start_inline)) {
		int line = cur(p)->line;
		if (!start_inline)
			p->pos++;
		start_inline = 0;
		jnode *n = mk(p, N_FILTER, line);
		if (!n)
			return nomem(p);
		if ((rc = dotted_name(p, &n->s, &n->n)))
			return rc;
		if (!rl_jinja__is_filter(n->s, n->n))
			return perr(p, line, "no filter named '%.*s'", (int)n->n, n->s);
		nlist args = {0};
		if (is_op(cur(p), "(") && (rc = parse_call_args(p, &args)))
			return rc;
		n->a = *node;
		nl_into(n, &args);
		*node = n;
	}
	return rc;
}

static int parse_test(parser *p, jnode **node)
{
	int line = cur(p)->line, rc;
	p->pos++; /* is */
	int neg = 0;
	if (is_name(cur(p), "not")) {
		neg = 1;
		p->pos++;
	}
	jnode *n = mk(p, N_TEST, line);
	if (!n)
		return nomem(p);
	if ((rc = dotted_name(p, &n->s, &n->n)))
		return rc;
	if (!rl_jinja__is_test(n->s, n->n))
		return perr(p, line, "no test named '%.*s'", (int)n->n, n->s);
	nlist args = {0};
	tok *t = cur(p);
	if (is_op(t, "(")) {
		if ((rc = parse_call_args(p, &args)))
			return rc;
	} else if ((t->t == T_NAME || t->t == T_STR || t->t == T_INT || t->t == T_FLOAT ||
		    is_op(t, "(") || is_op(t, "[") || is_op(t, "{")) &&
		   !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and")) {
		if (is_name(t, "is"))
			return perr(p, t->line, "You cannot chain multiple tests with is");
		jnode *arg;
		if ((rc = parse_primary(p, &arg)) || (rc = parse_postfix(p, &arg)) ||
		    (rc = nl_push(p, &args, arg, NULL, 0, 0)))
			return rc;
	}
	n->a = *node;
	n->op = neg;
	nl_into(n, &args);
	*node = n;
	return RL_OK;
}

static int parse_filter_expr(parser *p, jnode **node)
{
	int rc = RL_OK;
	while (!rc) {
		if (is_op(cur(p), "|"))
			rc = parse_filter(p, node, 0);
		else if (is_name(cur(p), "is"))
			rc = parse_test(p, node);
		else if (is_op(cur(p), "("))
			rc = parse_call(p, node);
		else
			break;
	}
	return rc;
}

static int parse_unary(parser *p, int with_filter, jnode **out)
{
	int rc = enter(p);
	if (rc)
		return rc;
	tok *t = cur(p);
	if (is_op(t, "-") || is_op(t, "+")) {
		p->pos++;
		jnode *n = mk(p, is_op(t, "-") ? N_NEG : N_POS, t->line);
		if (!n)
			return nomem(p);
		if ((rc = parse_unary(p, 0, &n->a)))
			return rc;
		*out = n;
	} else if ((rc = parse_primary(p, out))) {
		return rc;
	}
	if (!(rc = parse_postfix(p, out)) && with_filter)
		rc = parse_filter_expr(p, out);
	p->nest--;
	return rc;
}

static int bin(parser *p, jnode **left, int op, int line, jnode *right)
{
	jnode *n = mk(p, N_BIN, line);
	if (!n)
		return nomem(p);
	n->op = op;
	n->a = *left;
	n->b = right;
	*left = n;
	return RL_OK;
}

static int parse_pow(parser *p, jnode **out)
{
	int rc = parse_unary(p, 1, out);
	while (!rc && is_op(cur(p), "**")) {
		int line = cur(p)->line;
		jnode *r;
		p->pos++;
		if (!(rc = parse_unary(p, 1, &r)))
			rc = bin(p, out, 'P', line, r);
	}
	return rc;
}

static int parse_math2(parser *p, jnode **out)
{
	int rc = parse_pow(p, out);
	for (;;) {
		tok *t = cur(p);
		int op = is_op(t, "*")	  ? '*'
			 : is_op(t, "/")  ? '/'
			 : is_op(t, "//") ? 'F'
			 : is_op(t, "%")  ? '%'
					  : 0;
		if (rc || !op)
			return rc;
		p->pos++;
		jnode *r;
		if (!(rc = parse_pow(p, &r)))
			rc = bin(p, out, op, t->line, r);
	}
}

static int parse_concat(parser *p, jnode **out)
{
	int rc = parse_math2(p, out);
	if (rc || !is_op(cur(p), "~"))
		return rc;
	jnode *n = mk(p, N_CONCAT, cur(p)->line);
	nlist parts = {0};
	if (!n || (rc = nl_push(p, &parts, *out, NULL, 0, 0)))
		return n ? rc : nomem(p);
	while (is_op(cur(p), "~")) {
		p->pos++;
		jnode *r;
		if ((rc = parse_math2(p, &r)) || (rc = nl_push(p, &parts, r, NULL, 0, 0)))
			return rc;
	}
	nl_into(n, &parts);
	*out = n;
	return RL_OK;
}

static int parse_math1(parser *p, jnode **out)
{
	int rc = parse_concat(p, out);
	for (;;) {
		tok *t = cur(p);
		int op = is_op(t, "+") ? '+' : is_op(t, "-") ? '-' : 0;
		if (rc || !op)
			return rc;
		p->pos++;
		jnode *r;
		if (!(rc = parse_concat(p, &r)))
			rc = bin(p, out, op, t->line, r);
	}
}

static int parse_compare(parser *p, jnode **out)
{
	int line = cur(p)->line;
	jnode *first;
	int rc = parse_math1(p, &first);
	if (rc)
		return rc;
	nlist ops = {0};
	for (;;) {
		tok *t = cur(p);
		int op = is_op(t, "==")	    ? C_EQ
			 : is_op(t, "!=")   ? C_NE
			 : is_op(t, "<")    ? C_LT
			 : is_op(t, "<=")   ? C_LE
			 : is_op(t, ">")    ? C_GT
			 : is_op(t, ">=")   ? C_GE
			 : is_name(t, "in") ? C_IN
					    : -1;
		if (op < 0 && is_name(t, "not") && is_name(peek(p, 1), "in")) {
			op = C_NOTIN;
			p->pos++;
		}
		if (op < 0)
			break;
		p->pos++;
		jnode *r;
		if ((rc = parse_math1(p, &r)) || (rc = nl_push(p, &ops, r, NULL, 0, op)))
			return rc;
	}
	if (!ops.n) {
		*out = first;
		return RL_OK;
	}
	jnode *n = mk(p, N_CMP, line);
	if (!n)
		return nomem(p);
	n->a = first;
	nl_into(n, &ops);
	*out = n;
	return RL_OK;
}

static int parse_not(parser *p, jnode **out)
{
	if (is_name(cur(p), "not")) {
		jnode *n = mk(p, N_NOT, cur(p)->line);
		if (!n)
			return nomem(p);
		p->pos++;
		int rc = enter(p);
		if (!rc)
			rc = parse_not(p, &n->a);
		p->nest--;
		*out = n;
		return rc;
	}
	return parse_compare(p, out);
}

static int parse_andor(parser *p, int is_or, jnode **out)
{
	int rc = is_or ? parse_andor(p, 0, out) : parse_not(p, out);
	while (!rc && is_name(cur(p), is_or ? "or" : "and")) {
		jnode *n = mk(p, is_or ? N_OR : N_AND, cur(p)->line);
		if (!n)
			return nomem(p);
		p->pos++;
		n->a = *out;
		rc = is_or ? parse_andor(p, 0, &n->b) : parse_not(p, &n->b);
		*out = n;
	}
	return rc;
}

static int parse_condexpr(parser *p, jnode **out)
{
	int rc = parse_andor(p, 1, out);
	while (!rc && is_name(cur(p), "if")) {
		jnode *n = mk(p, N_COND, cur(p)->line);
		if (!n)
			return nomem(p);
		p->pos++;
		n->b = *out;
		if ((rc = parse_andor(p, 1, &n->a)))
			return rc;
		if (is_name(cur(p), "else")) {
			p->pos++;
			if ((rc = enter(p)) || (rc = parse_condexpr(p, &n->c)))
				return rc;
			p->nest--;
		}
		*out = n;
	}
	return rc;
}

static int parse_expression(parser *p, int with_condexpr, jnode **out)
{
	int rc = enter(p);
	if (!rc)
		rc = with_condexpr ? parse_condexpr(p, out) : parse_andor(p, 1, out);
	p->nest--;
	return rc;
}

static int tuple_end(parser *p, const char *end_name)
{
	tok *t = cur(p);
	return t->t == T_VEND || t->t == T_BEND || is_op(t, ")") || t->t == T_EOF ||
	       (end_name && is_name(t, end_name));
}

static int parse_tuple(parser *p, int simplified, int with_condexpr, const char *end_name,
		       int explicit_parens, jnode **out)
{
	int line = cur(p)->line, rc, is_tuple = 0;
	nlist items = {0};
	for (;;) {
		if (items.n && (rc = expect_op(p, ",")))
			return rc;
		if (tuple_end(p, end_name))
			break;
		jnode *e;
		rc = simplified ? parse_primary(p, &e) : parse_expression(p, with_condexpr, &e);
		if (rc || (rc = nl_push(p, &items, e, NULL, 0, 0)))
			return rc;
		if (is_op(cur(p), ","))
			is_tuple = 1;
		else
			break;
	}
	if (!is_tuple) {
		if (items.n) {
			*out = items.v[0];
			return RL_OK;
		}
		if (!explicit_parens) {
			char b[64];
			return perr(p, cur(p)->line, "expected an expression, got %s",
				    tok_desc(cur(p), b, sizeof b));
		}
	}
	jnode *n = mk(p, N_TUPLE, line);
	if (!n)
		return nomem(p);
	nl_into(n, &items);
	*out = n;
	return RL_OK;
}

/* ---- statements --------------------------------------------------------- */

static int end_block(parser *p)
{
	return expect_t(p, T_BEND, "end of statement block");
}

/* a name, a tuple of names, or (with_ns) name.attr */
static int parse_assign_target(parser *p, const char *end_name, int with_ns, jnode **out)
{
	int line = cur(p)->line, rc;
	if (with_ns && cur(p)->t == T_NAME && is_op(peek(p, 1), ".") && peek(p, 2)->t == T_NAME) {
		jnode *ns = mk(p, N_NAME, line), *n = mk(p, N_ATTR, line);
		if (!ns || !n)
			return nomem(p);
		ns->s = cur(p)->s;
		ns->n = cur(p)->n;
		n->a = ns;
		n->s = peek(p, 2)->s;
		n->n = peek(p, 2)->n;
		p->pos += 3;
		*out = n;
		return RL_OK;
	}
	if ((rc = parse_tuple(p, 1, 0, end_name, 0, out)))
		return rc;
	jnode *t = *out;
	if (t->type == N_NAME)
		return RL_OK;
	if (t->type == N_TUPLE) {
		for (size_t i = 0; i < t->nkids; i++)
			if (t->kids[i]->type != N_NAME)
				return perr(p, line, "can't assign to %s", "this expression");
		return RL_OK;
	}
	return perr(p, line, "can't assign to a %s",
		    t->type == N_LIT ? "literal" : "non-name expression");
}

static const char *const END_IF[] = {"elif", "else", "endif", NULL};
static const char *const END_FOR[] = {"else", "endfor", NULL};
static const char *const END_ENDFOR[] = {"endfor", NULL};
static const char *const END_SET[] = {"endset", NULL};
static const char *const END_MACRO[] = {"endmacro", NULL};
static const char *const END_FILTER[] = {"endfilter", NULL};
static const char *const END_GEN[] = {"endgeneration", NULL};

static int parse_if(parser *p, int line, jnode **out)
{
	jnode *n = mk(p, S_IF, line);
	if (!n)
		return nomem(p);
	int rc;
	if ((rc = parse_tuple(p, 0, 0, NULL, 0, &n->a)) || (rc = end_block(p)) ||
	    (rc = parse_body(p, END_IF, &n->b)))
		return rc;
	*out = n;
	/* now at the name elif / else / endif */
	tok *t = cur(p);
	p->pos++;
	if (is_name(t, "elif"))
		return parse_if(p, t->line, &n->c);
	if (is_name(t, "else")) {
		static const char *const END_ONLY[] = {"endif", NULL};
		if ((rc = end_block(p)) || (rc = parse_body(p, END_ONLY, &n->c)))
			return rc;
		p->pos++;
	}
	return end_block(p);
}

static int parse_for(parser *p, int line, jnode **out)
{
	jnode *n = mk(p, S_FOR, line);
	int rc;
	if (!n)
		return nomem(p);
	if ((rc = parse_assign_target(p, "in", 0, &n->t)))
		return rc;
	if (!is_name(cur(p), "in"))
		return perr(p, cur(p)->line, "expected 'in' in a for loop");
	p->pos++;
	if ((rc = parse_tuple(p, 0, 0, "recursive", 0, &n->a)))
		return rc;
	if (is_name(cur(p), "if")) {
		p->pos++;
		if ((rc = parse_expression(p, 1, &n->d)))
			return rc;
	}
	if (is_name(cur(p), "recursive"))
		return perr(p, cur(p)->line, "recursive loops are not supported");
	if ((rc = end_block(p)))
		return rc;
	p->loop_depth++;
	rc = parse_body(p, END_FOR, &n->b);
	p->loop_depth--;
	if (rc)
		return rc;
	if (is_name(cur(p), "else")) {
		p->pos++;
		if ((rc = end_block(p)) || (rc = parse_body(p, END_ENDFOR, &n->c)))
			return rc;
	}
	p->pos++; /* endfor */
	*out = n;
	return end_block(p);
}

static int parse_set(parser *p, int line, jnode **out)
{
	jnode *n = mk(p, S_SET, line);
	int rc;
	if (!n)
		return nomem(p);
	if ((rc = parse_assign_target(p, NULL, 1, &n->t)))
		return rc;
	if (is_op(cur(p), "=")) {
		p->pos++;
		if ((rc = parse_tuple(p, 0, 1, NULL, 0, &n->a)))
			return rc;
		*out = n;
		return end_block(p);
	}
	n->type = S_SETBLOCK;
	if (is_op(cur(p), "|") && (rc = parse_filter(p, &n->a, 0)))
		return rc;
	if ((rc = end_block(p)) || (rc = parse_body(p, END_SET, &n->b)))
		return rc;
	p->pos++;
	*out = n;
	return end_block(p);
}

static int parse_macro(parser *p, int line, jnode **out)
{
	jnode *n = mk(p, S_MACRO, line);
	int rc;
	if (!n)
		return nomem(p);
	if (cur(p)->t != T_NAME)
		return perr(p, cur(p)->line, "expected a macro name");
	n->s = cur(p)->s;
	n->n = cur(p)->n;
	p->pos++;
	nlist params = {0};
	if ((rc = expect_op(p, "(")))
		return rc;
	while (!is_op(cur(p), ")")) {
		if (params.n && (rc = expect_op(p, ",")))
			return rc;
		if (cur(p)->t != T_NAME)
			return perr(p, cur(p)->line, "expected a parameter name");
		const char *name = cur(p)->s;
		size_t len = cur(p)->n;
		p->pos++;
		jnode *def = NULL;
		if (is_op(cur(p), "=")) {
			p->pos++;
			if ((rc = parse_expression(p, 1, &def)))
				return rc;
		} else if (params.n && params.v[params.n - 1]) {
			return perr(p, cur(p)->line,
				    "non-default argument follows default argument");
		}
		if ((rc = nl_push(p, &params, def, name, len, 0)))
			return rc;
	}
	p->pos++;
	nl_into(n, &params);
	if ((rc = end_block(p)))
		return rc;
	int saved = p->loop_depth;
	p->loop_depth = 0;
	p->macro_depth++;
	rc = parse_body(p, END_MACRO, &n->b);
	p->macro_depth--;
	p->loop_depth = saved;
	if (rc)
		return rc;
	p->pos++;
	if (cur(p)->t == T_NAME) /* {% endmacro name %} */
		p->pos++;
	*out = n;
	return end_block(p);
}

static int parse_statement(parser *p, jnode **out)
{
	tok *t = cur(p);
	int line = t->line, rc;
	if (t->t != T_NAME) {
		char b[64];
		return perr(p, line, "expected a tag name, got %s", tok_desc(t, b, sizeof b));
	}
	if ((rc = enter(p)))
		return rc;
	p->pos++;
	if (is_name(t, "if")) {
		rc = parse_if(p, line, out);
	} else if (is_name(t, "for")) {
		rc = parse_for(p, line, out);
	} else if (is_name(t, "set")) {
		rc = parse_set(p, line, out);
	} else if (is_name(t, "macro")) {
		rc = parse_macro(p, line, out);
	} else if (is_name(t, "break") || is_name(t, "continue")) {
		if (!p->loop_depth)
			return perr(p, line, "'%.*s' outside a loop", (int)t->n, t->s);
		if (!(*out = mk(p, is_name(t, "break") ? S_BREAK : S_CONTINUE, line)))
			return nomem(p);
		rc = end_block(p);
	} else if (is_name(t, "filter")) {
		jnode *n = mk(p, S_FILTERBLOCK, line);
		if (!n)
			return nomem(p);
		if ((rc = parse_filter(p, &n->a, 1)) || (rc = end_block(p)) ||
		    (rc = parse_body(p, END_FILTER, &n->b)))
			return rc;
		p->pos++;
		*out = n;
		rc = end_block(p);
	} else if (is_name(t, "generation")) {
		/* transformers' AssistantTracker tag: inactive, the body as it is */
		if ((rc = end_block(p)) || (rc = parse_body(p, END_GEN, out)))
			return rc;
		p->pos++;
		rc = end_block(p);
	} else {
		static const char *const refused[] = {
			"include", "import", "from",	   "extends", "block",	   "call",
			"with",	   "do",     "autoescape", "trans",   "pluralize", NULL};
		for (int k = 0; refused[k]; k++)
			if (is_name(t, refused[k]))
				return perr(p, line,
					    "'%s' tags are not supported by this Jinja subset",
					    refused[k]);
		return perr(p, line, "Encountered unknown tag '%.*s'", (int)t->n, t->s);
	}
	p->nest--;
	return rc;
}

/* statements until a {% NAME %} with NAME in ends (left at NAME) or the end */
static int parse_body(parser *p, const char *const *ends, jnode **out)
{
	jnode *body = mk(p, S_BODY, cur(p)->line);
	nlist kids = {0};
	int rc;
	if (!body)
		return nomem(p);
	for (;;) {
		tok *t = cur(p);
		jnode *n = NULL;
		if (t->t == T_EOF) {
			if (ends && ends[0]) {
				char want[128] = "";
				for (int k = 0; ends[k]; k++)
					snprintf(want + strlen(want), sizeof want - strlen(want),
						 "%s'%s'", k ? " or " : "", ends[k]);
				return perr(p, t->line, "unexpected end of template, expected %s",
					    want);
			}
			break;
		}
		if (t->t == T_DATA) {
			if (!(n = mk(p, S_TEXT, t->line)))
				return nomem(p);
			n->s = t->s;
			n->n = t->n;
			p->pos++;
		} else if (t->t == T_VBEGIN) {
			if (!(n = mk(p, S_OUT, t->line)))
				return nomem(p);
			p->pos++;
			if ((rc = parse_tuple(p, 0, 1, NULL, 0, &n->a)) ||
			    (rc = expect_t(p, T_VEND, "end of print statement")))
				return rc;
		} else if (t->t == T_BBEGIN) {
			tok *name = peek(p, 1);
			if (ends)
				for (int k = 0; ends[k]; k++)
					if (is_name(name, ends[k])) {
						p->pos++;
						nl_into(body, &kids);
						*out = body;
						return RL_OK;
					}
			static const char *const enders[] = {
				"endif",	 "endfor", "endset", "endmacro", "endfilter",
				"endgeneration", "elif",   "else",   "endraw",	 NULL};
			for (int k = 0; enders[k]; k++)
				if (is_name(name, enders[k]))
					return perr(p, name->line, "Encountered unknown tag '%s'%s",
						    enders[k],
						    ends ? " (not the end this block expects)"
							 : "");
			p->pos++;
			if ((rc = parse_statement(p, &n)))
				return rc;
		} else {
			char b[64];
			return perr(p, t->line, "unexpected %s", tok_desc(t, b, sizeof b));
		}
		if ((rc = nl_push(p, &kids, n, NULL, 0, 0)))
			return rc;
	}
	nl_into(body, &kids);
	*out = body;
	return RL_OK;
}

int rl_jinja__parse(rl_jinja *t, const char *src, size_t len)
{
	parser p = {.tpl = t, .a = &t->arena};
	/* newlines normalised; one trailing newline dropped */
	char *s = ja_alloc(&t->arena, len + 1);
	if (!s)
		return nomem(&p);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (src[i] == '\r') {
			s[n++] = '\n';
			if (i + 1 < len && src[i + 1] == '\n')
				i++;
		} else {
			s[n++] = src[i];
		}
	}
	if (n && s[n - 1] == '\n')
		n--;
	s[n] = '\0';
	int rc = lex(&p, s, n);
	if (!rc)
		rc = parse_body(&p, NULL, &t->root);
	free(p.toks);
	return rc;
}
