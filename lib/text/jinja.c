/* jinja.c — the evaluator of lib/text/jinja.h's Jinja subset: statements,
 * expressions, macros, scopes, and the API (the filters, tests, methods and
 * the Python semantics they rest on are in jinja_lib.c).
 *
 * A render owns one arena (jinja_value.c): every value made while rendering
 * lives until the render ends, so values are plain structs copied freely and
 * nothing is reference-counted; the arena's cap is the memory limit. Scopes
 * are frames chained to their parent: a for loop's body gets a fresh frame
 * each iteration (a `set` inside it does not survive the iteration, as in
 * jinja2), a macro call a frame over the scope it was defined in, `if` none.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/jsonl.h"
#include "text/jinja_int.h"

enum { JC_BREAK = 1000, JC_CONT = 1001 };

static int ev(ctx *c, const jnode *n, jv *out);
static int ex(ctx *c, const jnode *n);

static int eval_args(ctx *c, const jnode *n, jargs *a)
{
	memset(a, 0, sizeof *a);
	size_t np = 0, nk = 0;
	for (size_t i = 0; i < n->nkids; i++)
		n->names[i] ? nk++ : np++;
	a->pos = ja_alloc(&c->a, (np + 1) * sizeof *a->pos);
	a->kv = ja_alloc(&c->a, (nk + 1) * sizeof *a->kv);
	a->kn = ja_alloc(&c->a, (nk + 1) * sizeof *a->kn);
	a->kl = ja_alloc(&c->a, (nk + 1) * sizeof *a->kl);
	if (!a->pos || !a->kv || !a->kn || !a->kl)
		return jx_nomem(c);
	for (size_t i = 0; i < n->nkids; i++) {
		jv v;
		int rc = ev(c, n->kids[i], &v);
		if (rc)
			return rc;
		if (n->names[i]) {
			a->kn[a->nkw] = n->names[i];
			a->kl[a->nkw] = n->name_lens[i];
			a->kv[a->nkw++] = v;
		} else {
			a->pos[a->npos++] = v;
		}
	}
	return RL_OK;
}

/* ---- macros ------------------------------------------------------------- */

static int enter(ctx *c, int line)
{
	if (++c->depth > c->max_depth)
		return jx_err(c, line, "recursion deeper than the limit of %d levels",
			      c->max_depth);
	return RL_OK;
}

static int capture(ctx *c, const jnode *body, jv *out)
{
	jbuf b = {.a = &c->a, .limit = c->max_output};
	jbuf *saved = c->out;
	c->out = &b;
	int rc = ex(c, body);
	c->out = saved;
	if (rc)
		return rc;
	*out = jv_str(b.p ? b.p : "", b.n);
	return RL_OK;
}

static int call_macro(ctx *c, int line, jmacro *m, const jargs *a, jv *out)
{
	const jnode *d = m->def;
	int rc;
	if (a->npos > d->nkids)
		return jx_err(c, line, "macro '%.*s' takes not more than %zu argument(s)",
			      (int)d->n, d->s, d->nkids);
	frame f = {.up = m->scope, .vars = jd_new(&c->a)};
	if (!f.vars)
		return jx_nomem(c);
	for (size_t j = 0; j < a->nkw; j++) {
		size_t k;
		for (k = 0; k < d->nkids; k++)
			if (d->name_lens[k] == a->kl[j] &&
			    memcmp(d->names[k], a->kn[j], a->kl[j]) == 0)
				break;
		if (k == d->nkids)
			return jx_err(c, line, "macro '%.*s' has no argument named '%.*s'",
				      (int)d->n, d->s, (int)a->kl[j], a->kn[j]);
		if (k < a->npos)
			return jx_err(c, line,
				      "macro '%.*s' got multiple values for argument '%.*s'",
				      (int)d->n, d->s, (int)a->kl[j], a->kn[j]);
	}
	frame *saved = c->f;
	c->f = &f;
	for (size_t k = 0; k < d->nkids; k++) {
		jv v = jv_undef(NULL);
		int found = 0;
		if (k < a->npos) {
			v = a->pos[k];
			found = 1;
		}
		for (size_t j = 0; !found && j < a->nkw; j++)
			if (d->name_lens[k] == a->kl[j] &&
			    memcmp(d->names[k], a->kn[j], a->kl[j]) == 0) {
				v = a->kv[j];
				found = 1;
			}
		if (!found && d->kids[k]) {
			if ((rc = ev(c, d->kids[k], &v))) {
				c->f = saved;
				return rc;
			}
		} else if (!found) {
			v = jx_undef(c, "parameter '%.*s' was not provided", (int)d->name_lens[k],
				     d->names[k]);
		}
		if (jd_set(&c->a, f.vars, jv_str(d->names[k], d->name_lens[k]), v)) {
			c->f = saved;
			return jx_nomem(c);
		}
	}
	if (!(rc = enter(c, line))) {
		int saved_loops = c->loop_depth;
		c->loop_depth = 0;
		rc = capture(c, d->b, out);
		c->loop_depth = saved_loops;
		c->depth--;
	}
	c->f = saved;
	return rc;
}

static int call_value(ctx *c, int line, jv f, const jargs *a, jv *out)
{
	switch (f.k) {
	case JV_MACRO:
		return call_macro(c, line, f.u.m, a, out);
	case JV_FUNC:
		return jx_call_func(c, line, f.u.fn, a, out);
	case JV_UNDEF:
		return jx_undef_err(c, line, f);
	default:
		return jx_err(c, line, "TypeError: '%s' object is not callable", jv_typename(f));
	}
}

/* ---- expressions ---------------------------------------------------------- */

static int lookup(ctx *c, const char *s, size_t n, jv *out)
{
	for (frame *f = c->f; f; f = f->up) {
		jv *v = jd_gets(f->vars, s, n);
		if (v) {
			*out = *v;
			return RL_OK;
		}
	}
	static const struct {
		const char *name;
		int id;
	} globals[] = {{"range", F_RANGE},	     {"dict", F_DICT},
		       {"namespace", F_NAMESPACE},   {"raise_exception", F_RAISE},
		       {"strftime_now", F_STRFTIME}, {NULL, 0}};
	for (int k = 0; globals[k].name; k++)
		if (name_eq(globals[k].name, s, n)) {
			*out = jx_func(c, globals[k].id, jv_none(), globals[k].name);
			return RL_OK;
		}
	*out = jx_undef(c, "'%.*s' is undefined", (int)n, s);
	return RL_OK;
}

static int ev_inner(ctx *c, const jnode *n, jv *out)
{
	int rc;
	jv a, b;
	switch (n->type) {
	case N_LIT:
		*out = n->lit;
		return RL_OK;
	case N_NAME:
		return lookup(c, n->s, n->n, out);
	case N_LIST:
	case N_TUPLE: {
		jlist *l = jl_new(&c->a, n->nkids);
		if (!l)
			return jx_nomem(c);
		for (size_t i = 0; i < n->nkids; i++) {
			if ((rc = ev(c, n->kids[i], &l->v[i])))
				return rc;
			l->n++;
		}
		l->tuple = n->type == N_TUPLE;
		*out = jv_list(l);
		return RL_OK;
	}
	case N_DICT: {
		jdict *d = jd_new(&c->a);
		if (!d)
			return jx_nomem(c);
		for (size_t i = 0; i + 1 < n->nkids; i += 2) {
			if ((rc = ev(c, n->kids[i], &a)) || (rc = ev(c, n->kids[i + 1], &b)))
				return rc;
			if (a.k == JV_LIST || a.k == JV_DICT || a.k == JV_UNDEF)
				return jx_err(c, n->line, "TypeError: unhashable type: '%s'",
					      jv_typename(a));
			if (jd_set(&c->a, d, a, b))
				return jx_nomem(c);
		}
		out->k = JV_DICT;
		out->u.d = d;
		return RL_OK;
	}
	case N_ATTR:
		if ((rc = ev(c, n->a, &a)))
			return rc;
		return jx_getattr(c, n->line, a, n->s, n->n, out);
	case N_ITEM:
		if ((rc = ev(c, n->a, &a)) || (rc = ev(c, n->b, &b)))
			return rc;
		return jx_getitem(c, n->line, a, b, out);
	case N_SLICE: {
		jv parts[3];
		if ((rc = ev(c, n->a, &a)))
			return rc;
		for (int k = 0; k < 3; k++) {
			parts[k] = jv_none();
			if (n->kids[k] && (rc = ev(c, n->kids[k], &parts[k])))
				return rc;
		}
		return jx_slice(c, n->line, a, parts, out);
	}
	case N_CALL: {
		jargs ar;
		if ((rc = ev(c, n->a, &a)) || (rc = eval_args(c, n, &ar)))
			return rc;
		return call_value(c, n->line, a, &ar, out);
	}
	case N_FILTER: {
		jargs ar;
		if (n->a) {
			if ((rc = ev(c, n->a, &a)))
				return rc;
		} else {
			a = c->hole;
		}
		if ((rc = eval_args(c, n, &ar)))
			return rc;
		return jx_filter(c, n->line, n->s, n->n, a, &ar, out);
	}
	case N_TEST: {
		jargs ar;
		int r;
		if ((rc = ev(c, n->a, &a)) || (rc = eval_args(c, n, &ar)) ||
		    (rc = jx_test(c, n->line, n->s, n->n, a, &ar, &r)))
			return rc;
		*out = jv_bool(n->op ? !r : r);
		return RL_OK;
	}
	case N_NEG:
	case N_POS:
		if ((rc = ev(c, n->a, &a)))
			return rc;
		if (a.k == JV_UNDEF)
			return jx_undef_err(c, n->line, a);
		if (a.k == JV_FLOAT)
			*out = jv_float(n->type == N_NEG ? -a.u.f : a.u.f);
		else if (is_intlike(a) && !(n->type == N_NEG && num_i(a) == INT64_MIN))
			*out = jv_int(n->type == N_NEG ? -num_i(a) : num_i(a));
		else
			return jx_err(c, n->line, "TypeError: bad operand type for unary %c: '%s'",
				      n->type == N_NEG ? '-' : '+', jv_typename(a));
		return RL_OK;
	case N_NOT:
		if ((rc = ev(c, n->a, &a)))
			return rc;
		*out = jv_bool(!jv_truthy(a));
		return RL_OK;
	case N_AND:
	case N_OR:
		if ((rc = ev(c, n->a, &a)))
			return rc;
		if (jv_truthy(a) == (n->type == N_OR)) {
			*out = a;
			return RL_OK;
		}
		return ev(c, n->b, out);
	case N_BIN:
		if ((rc = ev(c, n->a, &a)) || (rc = ev(c, n->b, &b)))
			return rc;
		return jx_binop(c, n->line, n->op, a, b, out);
	case N_CONCAT: {
		jbuf buf = {.a = &c->a};
		for (size_t i = 0; i < n->nkids; i++) {
			if ((rc = ev(c, n->kids[i], &a)))
				return rc;
			if ((rc = jv_str_into(&buf, a)))
				return rc;
		}
		*out = jv_str(buf.p ? buf.p : "", buf.n);
		return RL_OK;
	}
	case N_CMP: {
		if ((rc = ev(c, n->a, &a)))
			return rc;
		int r = 1;
		for (size_t i = 0; i < n->nkids && r; i++) {
			if ((rc = ev(c, n->kids[i], &b)))
				return rc;
			int k, op = n->ops[i];
			switch (op) {
			case C_EQ:
				r = jv_eq(a, b);
				break;
			case C_NE:
				r = !jv_eq(a, b);
				break;
			case C_IN:
			case C_NOTIN:
				if ((rc = jx_contains(c, n->line, b, a, &r)))
					return rc;
				if (op == C_NOTIN)
					r = !r;
				break;
			default: {
				static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
				if ((rc = jx_cmp(c, n->line, a, b, &k, ops[op])))
					return rc;
				r = op == C_LT	 ? k < 0
				    : op == C_LE ? k <= 0
				    : op == C_GT ? k > 0
						 : k >= 0;
			}
			}
			a = b;
		}
		*out = jv_bool(r);
		return RL_OK;
	}
	case N_COND:
		if ((rc = ev(c, n->a, &a)))
			return rc;
		if (jv_truthy(a))
			return ev(c, n->b, out);
		if (n->c)
			return ev(c, n->c, out);
		*out = jx_undef(c,
				"the inline if-expression on line %d evaluated to false and no "
				"else section was defined.",
				n->line);
		return RL_OK;
	default:
		return jx_err(c, n->line, "internal: not an expression");
	}
}

static int ev(ctx *c, const jnode *n, jv *out)
{
	int rc = enter(c, n->line);
	if (!rc)
		rc = ev_inner(c, n, out);
	c->depth--;
	return rc;
}

/* ---- statements ------------------------------------------------------------ */

static int assign(ctx *c, const jnode *t, jv v)
{
	if (t->type == N_NAME)
		return jd_set(&c->a, c->f->vars, jv_str(t->s, t->n), v) ? jx_nomem(c) : RL_OK;
	if (t->type == N_ATTR) {
		jv ns;
		lookup(c, t->a->s, t->a->n, &ns);
		if (ns.k != JV_NS)
			return jx_err(c, t->line,
				      "cannot assign attribute on non-namespace object");
		return jd_set(&c->a, ns.u.d, jv_str(t->s, t->n), v) ? jx_nomem(c) : RL_OK;
	}
	/* a tuple of names */
	jlist *items;
	int rc = jx_iter(c, t->line, v, &items);
	if (rc)
		return rc;
	if (items->n != t->nkids)
		return jx_err(c, t->line,
			      items->n > t->nkids
				      ? "ValueError: too many values to unpack (expected %zu)"
				      : "ValueError: not enough values to unpack (expected %zu)",
			      t->nkids);
	for (size_t i = 0; i < t->nkids; i++)
		if ((rc = assign(c, t->kids[i], items->v[i])))
			return rc;
	return RL_OK;
}

static int ex_for(ctx *c, const jnode *n)
{
	jv it;
	jlist *items;
	int rc;
	if ((rc = ev(c, n->a, &it)) || (rc = jx_iter(c, n->line, it, &items)))
		return rc;
	frame f = {.up = c->f, .vars = jd_new(&c->a)};
	frame *saved = c->f;
	if (!f.vars)
		return jx_nomem(c);
	if (n->d) { /* the loop's `if` filter */
		jlist *kept = jl_new(&c->a, 0);
		if (!kept)
			return jx_nomem(c);
		c->f = &f;
		for (size_t i = 0; i < items->n; i++) {
			jv ok;
			f.vars->n = 0;
			if ((rc = assign(c, n->t, items->v[i])) || (rc = ev(c, n->d, &ok))) {
				c->f = saved;
				return rc;
			}
			if (jv_truthy(ok) && jl_push(&c->a, kept, items->v[i])) {
				c->f = saved;
				return jx_nomem(c);
			}
		}
		c->f = saved;
		items = kept;
	}
	if (items->n == 0)
		return n->c ? ex(c, n->c) : RL_OK;
	jloop *L = ja_alloc(&c->a, sizeof *L);
	if (!L)
		return jx_nomem(c);
	L->items = items;
	L->depth = c->loop_depth + 1;
	jv lv = {.k = JV_LOOP};
	lv.u.loop = L;
	c->f = &f;
	c->loop_depth++;
	rc = RL_OK;
	for (size_t i = 0; i < items->n; i++) {
		if (++c->iters > c->max_iters) {
			rc = jx_err(c, n->line, "loops ran more than the limit of %ld iterations",
				    c->max_iters);
			break;
		}
		L->i = i;
		f.vars->n = 0;
		if ((rc = assign(c, n->t, items->v[i])))
			break;
		if (jd_set(&c->a, f.vars, jv_str("loop", 4), lv)) {
			rc = jx_nomem(c);
			break;
		}
		rc = ex(c, n->b);
		if (rc == JC_CONT)
			rc = RL_OK;
		if (rc == JC_BREAK) {
			rc = RL_OK;
			break;
		}
		if (rc)
			break;
	}
	c->loop_depth--;
	c->f = saved;
	return rc;
}

/* applies a filter chain (N_FILTER nodes over NULL) to the text of a block */
static int filter_chain(ctx *c, const jnode *chain, jv text, jv *out)
{
	if (!chain) {
		*out = text;
		return RL_OK;
	}
	jv saved = c->hole;
	c->hole = text;
	int rc = ev(c, chain, out);
	c->hole = saved;
	return rc;
}

static int ex_inner(ctx *c, const jnode *n)
{
	int rc;
	jv v;
	switch (n->type) {
	case S_BODY:
		for (size_t i = 0; i < n->nkids; i++)
			if ((rc = ex(c, n->kids[i])))
				return rc;
		return RL_OK;
	case S_TEXT:
		return jb_put(c->out, n->s, n->n);
	case S_OUT:
		if ((rc = ev(c, n->a, &v)))
			return rc;
		return jv_str_into(c->out, v);
	case S_IF:
		for (const jnode *b = n; b;) {
			if (b->type != S_IF)
				return ex(c, b);
			if ((rc = ev(c, b->a, &v)))
				return rc;
			if (jv_truthy(v))
				return ex(c, b->b);
			b = b->c;
		}
		return RL_OK;
	case S_FOR:
		return ex_for(c, n);
	case S_SET:
		if ((rc = ev(c, n->a, &v)))
			return rc;
		return assign(c, n->t, v);
	case S_SETBLOCK:
		if ((rc = capture(c, n->b, &v)) || (rc = filter_chain(c, n->a, v, &v)))
			return rc;
		return assign(c, n->t, v);
	case S_FILTERBLOCK:
		if ((rc = capture(c, n->b, &v)) || (rc = filter_chain(c, n->a, v, &v)))
			return rc;
		return jv_str_into(c->out, v);
	case S_MACRO: {
		jmacro *m = ja_alloc(&c->a, sizeof *m);
		if (!m)
			return jx_nomem(c);
		m->def = n;
		m->scope = c->f;
		v.k = JV_MACRO;
		v.u.m = m;
		return jd_set(&c->a, c->f->vars, jv_str(n->s, n->n), v) ? jx_nomem(c) : RL_OK;
	}
	case S_BREAK:
		return JC_BREAK;
	case S_CONTINUE:
		return JC_CONT;
	default:
		return jx_err(c, n->line, "internal: not a statement");
	}
}

static int ex(ctx *c, const jnode *n)
{
	int rc = enter(c, n->line);
	if (!rc)
		rc = ex_inner(c, n);
	c->depth--;
	return rc;
}

/* ---- the API -------------------------------------------------------------- */

int rl_jinja_parse(const char *src, size_t len, const char *name, rl_jinja **out)
{
	*out = NULL;
	rl_jinja *t = calloc(1, sizeof *t);
	if (!t)
		return rl_error(RL_ESYS, "out of memory");
	t->name = rl_strdup(name ? name : "template");
	if (!t->name) {
		free(t);
		return RL_ESYS;
	}
	int rc = rl_jinja__parse(t, src, len);
	if (rc) {
		rl_jinja_free(t);
		return rc;
	}
	*out = t;
	return RL_OK;
}

void rl_jinja_free(rl_jinja *t)
{
	if (!t)
		return;
	ja_free_all(&t->arena);
	free(t->name);
	free(t);
}

#define MAX_JSON_DEPTH 100

static int from_json(ctx *c, const cJSON *j, jv *out, int depth)
{
	if (depth > MAX_JSON_DEPTH)
		return rl_error(RL_EDATA, "template variables nested deeper than %d levels",
				MAX_JSON_DEPTH);
	if (cJSON_IsNull(j)) {
		*out = jv_none();
	} else if (cJSON_IsBool(j)) {
		*out = jv_bool(cJSON_IsTrue(j));
	} else if (cJSON_IsNumber(j)) {
		double d = j->valuedouble;
		if (d == floor(d) && fabs(d) <= 9007199254740992.0)
			*out = jv_int((int64_t)d);
		else
			*out = jv_float(d);
	} else if (cJSON_IsString(j)) {
		*out = jv_cstr(j->valuestring ? j->valuestring : "");
	} else if (cJSON_IsRaw(j)) {
		/* a string holding U+0000, kept as its JSON literal (core/jsonl.h) */
		char *s;
		size_t n;
		int rc = rl_json_string(j, &s, &n);
		if (rc == RL_EDATA)
			return rl_error(RL_EDATA, "template variables: unsupported JSON value");
		if (rc)
			return rc;
		char *p = ja_strdup(&c->a, s, n);
		free(s);
		if (!p)
			return jx_nomem(c);
		*out = jv_str(p, n);
	} else if (cJSON_IsArray(j)) {
		jlist *l = jl_new(&c->a, (size_t)cJSON_GetArraySize(j));
		if (!l)
			return jx_nomem(c);
		for (const cJSON *e = j->child; e; e = e->next) {
			int rc = from_json(c, e, &l->v[l->n], depth + 1);
			if (rc)
				return rc;
			l->n++;
		}
		*out = jv_list(l);
	} else if (cJSON_IsObject(j)) {
		jdict *d = jd_new(&c->a);
		if (!d)
			return jx_nomem(c);
		for (const cJSON *e = j->child; e; e = e->next) {
			jv v;
			int rc = from_json(c, e, &v, depth + 1);
			if (rc)
				return rc;
			if (jd_set(&c->a, d, jv_cstr(e->string ? e->string : ""), v))
				return jx_nomem(c);
		}
		out->k = JV_DICT;
		out->u.d = d;
	} else {
		return rl_error(RL_EDATA, "template variables: unsupported JSON value");
	}
	return RL_OK;
}

int rl_jinja_render(const rl_jinja *t, const cJSON *vars, const rl_jinja_opts *o, char **out,
		    size_t *len)
{
	*out = NULL;
	if (len)
		*len = 0;
	rl_jinja_opts dflt = {0};
	if (!o)
		o = &dflt;
	ctx c = {.t = t};
	c.max_depth = o->max_depth > 0 ? o->max_depth : 200;
	c.max_iters = o->max_iterations > 0 ? o->max_iterations : 1000000;
	c.max_output = o->max_output ? o->max_output : (size_t)16 << 20;
	c.a.limit = o->max_memory ? o->max_memory : (size_t)256 << 20;
	if (o->now) {
		struct tm tmp = *o->now;
		tmp.tm_isdst = 0;
		time_t secs = timegm(&tmp); /* normalises and fills wday/yday */
		gmtime_r(&secs, &c.now);
	} else {
		time_t now = time(NULL);
		localtime_r(&now, &c.now);
	}
	jbuf result = {.limit = c.max_output};
	c.out = &result;
	int rc = RL_OK;
	frame vf = {.up = NULL, .vars = jd_new(&c.a)};
	frame top = {.up = &vf, .vars = jd_new(&c.a)};
	if (!vf.vars || !top.vars)
		rc = jx_nomem(&c);
	if (!rc && vars) {
		if (!cJSON_IsObject(vars))
			rc = rl_error(RL_EDATA, "template variables must be a JSON object");
		for (const cJSON *e = vars->child; !rc && e; e = e->next) {
			jv v;
			if (!(rc = from_json(&c, e, &v, 0)) &&
			    jd_set(&c.a, vf.vars, jv_cstr(e->string ? e->string : ""), v))
				rc = jx_nomem(&c);
		}
	}
	if (!rc) {
		c.f = &top;
		rc = ex(&c, t->root);
		if (rc == JC_BREAK || rc == JC_CONT)
			rc = rl_error(RL_EDATA, "'%s': break or continue outside a loop", t->name);
	}
	ja_free_all(&c.a);
	if (rc) {
		free(result.p);
		return rc;
	}
	if (!result.p && jb_put(&result, "", 0)) {
		free(result.p);
		return RL_ESYS;
	}
	*out = result.p;
	if (len)
		*len = result.n;
	return RL_OK;
}

cJSON *rl_jinja_chat_vars(const cJSON *messages, int add_generation_prompt,
			  const cJSON *special_tokens, const cJSON *kwargs)
{
	cJSON *v = cJSON_CreateObject();
	if (!v)
		return NULL;
	const cJSON *srcs[2] = {special_tokens, kwargs};
	for (int k = 0; k < 2; k++)
		for (const cJSON *e = srcs[k] ? srcs[k]->child : NULL; e; e = e->next) {
			cJSON *d = cJSON_Duplicate(e, 1);
			if (!d) {
				cJSON_Delete(v);
				return NULL;
			}
			cJSON_DeleteItemFromObjectCaseSensitive(v, e->string);
			cJSON_AddItemToObject(v, e->string, d);
		}
	const char *fixed[] = {"messages", "tools", "documents", "add_generation_prompt"};
	for (int k = 0; k < 4; k++)
		cJSON_DeleteItemFromObjectCaseSensitive(v, fixed[k]);
	cJSON *m = messages ? cJSON_Duplicate(messages, 1) : cJSON_CreateArray();
	if (!m || !cJSON_AddItemToObject(v, "messages", m) || !cJSON_AddNullToObject(v, "tools") ||
	    !cJSON_AddNullToObject(v, "documents") ||
	    !cJSON_AddBoolToObject(v, "add_generation_prompt", add_generation_prompt)) {
		cJSON_Delete(v);
		return NULL;
	}
	return v;
}
