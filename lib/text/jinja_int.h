/* jinja_int.h — internals shared by jinja_parse.c (lexer, parser),
 * jinja_value.c (values, arena, str/repr/JSON, UTF-8), jinja_lib.c (Python
 * semantics: methods, operators, access, filters, tests) and jinja.c (the
 * evaluator and the API). Not a public interface.
 */
#ifndef RL_JINJA_INT_H
#define RL_JINJA_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "text/jinja.h"

/* ---- values ------------------------------------------------------------ */

typedef enum {
	JV_UNDEF, /* jinja2's Undefined; s holds the hint for messages */
	JV_NONE,
	JV_BOOL,
	JV_INT,
	JV_FLOAT,
	JV_STR,
	JV_LIST, /* list or tuple (l->tuple) */
	JV_DICT,
	JV_NS,	  /* namespace(): a dict with attribute assignment */
	JV_MACRO, /* a {% macro %} */
	JV_FUNC,  /* a builtin function or bound method */
	JV_LOOP,  /* the loop variable */
} jkind;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jfunc jfunc;
typedef struct jloop jloop;
typedef struct jmacro jmacro;

typedef struct jv {
	jkind k;
	union {
		int b;
		int64_t i;
		double f;
		struct {
			const char *p; /* not NUL-terminated */
			size_t n;
		} s;
		jlist *l;
		jdict *d; /* JV_DICT and JV_NS */
		jfunc *fn;
		jloop *loop;
		jmacro *m;
	} u;
} jv;

struct jlist {
	size_t n, cap;
	jv *v;
	int tuple;
};

struct jdict {
	size_t n, cap;
	jv *keys, *vals;
};

/* ---- arena: every value of a render lives until the render ends ---------- */

typedef struct jblock jblock;
typedef struct jarena {
	jblock *head;
	size_t used, limit; /* bytes handed out, and the cap */
	int failed;	    /* the cap or malloc failed: an error is recorded */
} jarena;

void *ja_alloc(jarena *a, size_t n);
void ja_free_all(jarena *a);
char *ja_strdup(jarena *a, const char *s, size_t n);

/* growable byte buffer in the arena (or, for the output, plain malloc) */
typedef struct jbuf {
	char *p;
	size_t n, cap;
	jarena *a; /* NULL: malloc'd */
	size_t limit;
	int over; /* exceeded limit */
} jbuf;

int jb_put(jbuf *b, const char *s, size_t n);
int jb_putc(jbuf *b, char c);
int jb_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* constructors */
jv jv_undef(const char *hint);
jv jv_none(void);
jv jv_bool(int b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(const char *p, size_t n);
jv jv_cstr(const char *s);
jlist *jl_new(jarena *a, size_t cap);
int jl_push(jarena *a, jlist *l, jv v);
jv jv_list(jlist *l);
jdict *jd_new(jarena *a);
int jd_set(jarena *a, jdict *d, jv key, jv val);
jv *jd_get(const jdict *d, jv key);
jv *jd_gets(const jdict *d, const char *key, size_t n);

int jv_truthy(jv v);
int jv_eq(jv a, jv b);
int jv_is_str(jv v, const char *s);
const char *jv_typename(jv v); /* Python's: 'str', 'int', 'NoneType', 'list', ... */

/* str(v) appended to b (Python str: None, True, 1.5, [1, 'a'], {'k': 2}) */
int jv_str_into(jbuf *b, jv v);
/* repr(v) (strings quoted as Python quotes them) */
int jv_repr_into(jbuf *b, jv v);
/* str(v) as a value: strings as they are, anything else formatted */
int jv_to_str(jarena *a, jv v, jv *out);

/* json.dumps(v, ensure_ascii, indent (<0 none; indent_str overrides when
 * not NULL), separators (NULL: Python's defaults), sort_keys). RL_EDATA when
 * v holds something JSON cannot say (Undefined, a macro...). */
typedef struct jjson_opts {
	int ensure_ascii;
	long indent; /* -1: None */
	const char *indent_str;
	size_t indent_len;
	const char *item_sep, *key_sep; /* NULL: defaults */
	size_t item_sep_len, key_sep_len;
	int sort_keys;
} jjson_opts;
int jv_json_into(jbuf *b, jv v, const jjson_opts *o, int level);

/* Python float repr */
int jfmt_float(char *buf, size_t cap, double f);

/* UTF-8 helpers: code points in s, byte offset of code point i, decode one */
size_t ju_len(const char *s, size_t n);
size_t ju_offset(const char *s, size_t n, size_t cp);
int32_t ju_decode(const char *s, size_t n, size_t *adv);
int ju_encode(int32_t c, char out[4]);
int ju_isspace(int32_t c); /* Python str.isspace */

/* ---- AST --------------------------------------------------------------- */

typedef enum {
	/* expressions */
	N_LIT,	  /* lit */
	N_NAME,	  /* s */
	N_LIST,	  /* kids */
	N_TUPLE,  /* kids */
	N_DICT,	  /* kids: key, value, key, value... */
	N_ATTR,	  /* a.s */
	N_ITEM,	  /* a[b] */
	N_SLICE,  /* a[kids0:kids1:kids2], NULL for an absent part */
	N_CALL,	  /* a(kids), kw names in names (NULL for positional) */
	N_FILTER, /* a|s(kids) (a NULL in a filter block) */
	N_TEST,	  /* a is s(kids); op 1: negated */
	N_NEG,	  /* -a */
	N_POS,	  /* +a */
	N_NOT,	  /* not a */
	N_AND,	  /* a and b */
	N_OR,	  /* a or b */
	N_BIN,	  /* a op b: op is one of + - * / F(//) % P(**) */
	N_CONCAT, /* kids joined with ~ */
	N_CMP,	  /* a then (ops[i], kids[i]): chained comparison */
	N_COND,	  /* b if a else c (c NULL: undefined) */
	/* statements */
	S_BODY,	       /* kids */
	S_TEXT,	       /* s */
	S_OUT,	       /* {{ a }} */
	S_IF,	       /* a: condition, b: body, c: the elif/else chain (S_IF or S_BODY) */
	S_FOR,	       /* target t, a: iterable, b: body, c: else body, d: filter */
	S_SET,	       /* target t = a */
	S_SETBLOCK,    /* target t = body b, filtered by a (a chain of N_FILTER over NULL) */
	S_MACRO,       /* s(names = defaults kids) body b */
	S_FILTERBLOCK, /* a (N_FILTER chain over NULL) applied to body b */
	S_BREAK,
	S_CONTINUE,
} ntype;

/* comparison ops in N_CMP */
enum { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE, C_IN, C_NOTIN };

typedef struct jnode jnode;
struct jnode {
	ntype type;
	int line;
	int op;
	jnode *a, *b, *c, *d;
	jnode *t; /* assignment target: N_NAME, N_TUPLE of N_NAME, or N_ATTR (namespace) */
	jnode **kids;
	size_t nkids;
	const char **names; /* N_CALL/N_FILTER/N_TEST keyword names, S_MACRO params */
	size_t *name_lens;
	int *ops; /* N_CMP */
	const char *s;
	size_t n;
	jv lit;
	int uses_loopvars; /* S_FOR: the body reads loop.* (always built: cheap) */
};

struct rl_jinja {
	jarena arena; /* the AST and its strings */
	jnode *root;
	char *name;
};

int rl_jinja__parse(rl_jinja *t, const char *src, size_t len);
/* the filters and tests jinja.c implements (the parser refuses others, as
 * jinja2 refuses unknown ones when it compiles) */
int rl_jinja__is_filter(const char *s, size_t n);
int rl_jinja__is_test(const char *s, size_t n);

/* ---- rendering (jinja.c, jinja_lib.c) ----------------------------------- */

typedef struct frame frame;
struct frame {
	struct frame *up;
	jdict *vars;
};

struct jmacro {
	const jnode *def;
	frame *scope;
};

struct jloop {
	jlist *items;
	size_t i;
	int depth;
};

struct jfunc {
	int id;
	jv self;
	const char *name;
};

typedef struct ctx {
	const rl_jinja *t;
	jarena a;
	jbuf *out;
	frame *f;
	int depth, max_depth, loop_depth;
	long iters, max_iters;
	size_t max_output;
	struct tm now;
	jv hole; /* the body text a filter block or block set filters */
} ctx;

typedef struct jargs {
	jv *pos;
	size_t npos;
	const char **kn;
	size_t *kl;
	jv *kv;
	size_t nkw;
} jargs;

/* builtin functions and methods (jfunc.id) */
enum {
	F_RANGE = 1,
	F_DICT,
	F_NAMESPACE,
	F_RAISE,
	F_STRFTIME,
	F_CYCLE,
	/* str methods */
	M_STRIP,
	M_LSTRIP,
	M_RSTRIP,
	M_SPLIT,
	M_RSPLIT,
	M_STARTSWITH,
	M_ENDSWITH,
	M_REPLACE,
	M_UPPER,
	M_LOWER,
	M_TITLE,
	M_CAPITALIZE,
	M_FIND,
	M_RFIND,
	M_COUNT,
	M_JOIN,
	M_SPLITLINES,
	M_ISDIGIT,
	M_ISSPACE,
	M_ISALPHA,
	M_ISALNUM,
	M_ISLOWER,
	M_ISUPPER,
	/* dict methods */
	M_GET,
	M_ITEMS,
	M_KEYS,
	M_VALUES,
	/* list methods */
	M_LINDEX,
	M_LCOUNT,
};

static inline int name_eq(const char *a, const char *s, size_t n)
{
	return strlen(a) == n && memcmp(a, s, n) == 0;
}

/* only int and bool hold an integer: anything else reads 0, never another
 * member of the union (an Undefined's hint pointer once sized an indent) */
static inline int64_t num_i(jv v)
{
	return v.k == JV_INT ? v.u.i : v.k == JV_BOOL ? v.u.b : 0;
}

static inline double num_f(jv v)
{
	return v.k == JV_FLOAT ? v.u.f : (double)num_i(v);
}

static inline int is_num(jv v)
{
	return v.k == JV_INT || v.k == JV_FLOAT || v.k == JV_BOOL;
}

static inline int is_intlike(jv v)
{
	return v.k == JV_INT || v.k == JV_BOOL;
}

/* Python's int(s, base) and float(s) on stripped text (jinja_num.c):
 * PY_NUM_INVALID where Python raises ValueError, PY_NUM_OVERFLOW where its
 * int would not fit 64 bits, PY_NUM_NOMEM when the arena refused a copy */
enum { PY_NUM_OK, PY_NUM_INVALID, PY_NUM_OVERFLOW, PY_NUM_NOMEM };
int py_parse_int(jarena *a, const char *s, size_t n, int64_t base, int64_t *out);
int py_parse_float(jarena *a, const char *s, size_t n, double *out);

/* errors: "'NAME' line N: message" (RL_EDATA); RL_ESYS or the memory
 * limit's RL_EDATA when an allocation failed; an Undefined's own message */
int jx_err(ctx *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int jx_nomem(ctx *c);
int jx_undef_err(ctx *c, int line, jv u);
/* an Undefined carrying a printf-formatted message; a builtin function */
jv jx_undef(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
jv jx_func(ctx *c, int id, jv self, const char *name);
/* the items a for loop walks: a list as it is, dict keys, characters, none
 * for Undefined; an error for anything else */
int jx_iter(ctx *c, int line, jv v, jlist **out);
int jx_getattr(ctx *c, int line, jv obj, const char *s, size_t n, jv *out);
int jx_getitem(ctx *c, int line, jv obj, jv key, jv *out);
int jx_slice(ctx *c, int line, jv obj, const jv *parts, jv *out);
int jx_binop(ctx *c, int line, int op, jv a, jv b, jv *out);
int jx_cmp(ctx *c, int line, jv a, jv b, int *out, const char *op);
int jx_contains(ctx *c, int line, jv hay, jv needle, int *out);
int jx_call_func(ctx *c, int line, jfunc *fn, const jargs *a, jv *out);
int jx_test(ctx *c, int line, const char *s, size_t n, jv v, const jargs *a, int *out);
int jx_filter(ctx *c, int line, const char *s, size_t n, jv v, const jargs *a, jv *out);

#endif
