/* jinja.h — the Jinja subset that chat templates use, rendered as transformers
 * renders them.
 *
 * Every real model ships its chat template as Jinja (tokenizer_config.json's
 * chat_template, chat_template.jinja, GGUF metadata). transformers renders it
 * with jinja2 in ImmutableSandboxedEnvironment(trim_blocks=True,
 * lstrip_blocks=True, extensions=[loopcontrols]), with its own tojson filter
 * and the globals raise_exception and strftime_now. This module renders the
 * same templates to the same bytes (tests/fixtures/jinja: 37 real templates
 * over 300 conversations, byte-identical to jinja2 3.1).
 *
 *     rl_jinja *t;
 *     if ((rc = rl_jinja_parse(src, len, "chat_template", &t)))
 *             return rc;
 *     cJSON *vars = rl_jinja_chat_vars(messages, 1, special_tokens, NULL);
 *     char *text;
 *     size_t n;
 *     rc = rl_jinja_render(t, vars, NULL, &text, &n);
 *     ...
 *     free(text);
 *     cJSON_Delete(vars);
 *     rl_jinja_free(t);
 *
 * The subset. Statements: if/elif/else, for (tuple targets, `if` filter,
 * else, loop.index/index0/revindex/revindex0/first/last/length/previtem/
 * nextitem/cycle/depth), break and continue, set (names, tuples, namespace
 * attributes, block set with filters), macro (positional and keyword
 * arguments, defaults), filter blocks, raw, transformers' generation tag (its
 * body as it is). Expressions: literals (strings with Python escapes, ints,
 * floats, lists, tuples, dicts), attribute and item access (jinja2's order:
 * a.b tries the attribute, then the item; a['b'] the other way round),
 * slices, calls, filters, tests, `if`-expressions, and/or/not, comparisons
 * (chained), in / not in, + - * / // % **, ~, unary -/+. Values: undefined
 * (jinja2's default Undefined: prints as "", falsy, iterates empty, an error
 * on attribute access, arithmetic or a call), none, bool, 64-bit int, double,
 * string, list, tuple, dict (insertion-ordered), namespace, macro, callable
 * builtins. Python semantics where templates depend on them: truthiness,
 * 1 == 1.0 == true, strings indexed and measured in code points, negative
 * indices and slices, str() and repr() of every value (floats as Python's
 * repr), string methods (strip, lstrip, rstrip, split, rsplit, startswith,
 * endswith, replace, upper, lower, title, capitalize, find, count, join,
 * splitlines, isdigit, isspace, isalpha, isalnum, islower, isupper), dict
 * methods (get, items, keys, values); lists are immutable as in the sandbox
 * (append is refused). Globals: range, dict, namespace, raise_exception,
 * strftime_now. Filters: abs, attr, capitalize, count, d, default, dictsort,
 * e, escape, first, float, indent, int, items, join, last, length, list,
 * lower, map, max, min, reject, rejectattr, replace, reverse, round, safe,
 * select, selectattr, sort, string, sum, title, tojson (transformers': json
 * dumps with ensure_ascii=False, indent, separators, sort_keys), trim,
 * unique, upper, wordcount. Tests: boolean, callable, defined, divisibleby,
 * eq/equalto/==, even, false, float, ge/>=, gt/>, in, integer, iterable,
 * le/<=, lower, lt/<, mapping, ne/!=, none, number, odd, sameas, sequence,
 * string, true, undefined, upper. Whitespace control as jinja2 with
 * trim_blocks and lstrip_blocks, including {%- -%}, {{- -}}, {%+ and +%},
 * and without keep_trailing_newline (one final newline of the template is
 * dropped).
 *
 * Refused, with an error naming the construct and its line: include,
 * import, extends, block, call blocks, with, do, autoescape, recursive
 * loops, *args and **kwargs in calls, unknown filters, tests, functions and
 * tags, string % formatting. Upper/lower/title use utf8proc's simple case
 * mappings (Python's full mappings differ for a few characters such as ß);
 * ints are 64-bit (an overflow is an error, where Python would go on).
 *
 * Errors are RL_EDATA (RL_ESYS for memory): "line N: ..." for a template
 * that does not parse or fails while rendering (undefined attribute, str +
 * None, ...: what jinja2 raises, in its own words where they matter). A
 * template's raise_exception(msg) makes msg itself the error message, as
 * transformers surfaces it.
 *
 * Limits (rl_jinja_opts; 0 picks the default): recursion depth 200 (nested
 * macro calls, expressions and statements), loop iterations 1,000,000 over a
 * whole render, output 16 MiB, working memory 256 MiB; range() is capped at
 * 100,000 items as in jinja2's sandbox. Exceeding one is an RL_EDATA error
 * naming the limit.
 */
#ifndef RL_JINJA_H
#define RL_JINJA_H

#include <cJSON.h>
#include <stddef.h>
#include <time.h>

typedef struct rl_jinja rl_jinja;

typedef struct rl_jinja_opts {
	/* strftime_now's clock: NULL for the current local time (as transformers'
	 * datetime.now()); tests pin it. Only the broken-down fields are read. */
	const struct tm *now;
	int max_depth;	     /* default 200 */
	long max_iterations; /* default 1000000 */
	size_t max_output;   /* bytes, default 16 MiB */
	size_t max_memory;   /* bytes of working memory, default 256 MiB */
} rl_jinja_opts;

/* Parses src (len bytes, UTF-8) once. name is used in messages only (may be
 * NULL). On error *out is NULL and the message names the line. */
int rl_jinja_parse(const char *src, size_t len, const char *name, rl_jinja **out);
void rl_jinja_free(rl_jinja *t);

/* Renders t with vars (a cJSON object: each member a template variable; JSON
 * null is None; a raw item holding a JSON string literal (core/jsonl.h keeps a
 * string with U+0000 so) is that string with its length; a number with an
 * integral value of magnitude up to 2^53 is an int, any other a float: cJSON keeps no trace of "2.0" against "2") into a malloc'd NUL-terminated *out of *len
 * bytes. o may be NULL. t is not modified: one template may be rendered by
 * several threads at once. */
int rl_jinja_render(const rl_jinja *t, const cJSON *vars, const rl_jinja_opts *o, char **out,
		    size_t *len);

/* The variables transformers' apply_chat_template passes: the special-tokens
 * map (an object such as {"bos_token": "<s>", "eos_token": "</s>"}; may be
 * NULL), then the template keywords (an object, e.g. {"enable_thinking":
 * false}; may be NULL), then messages (an array, deep-copied), tools=None,
 * documents=None and add_generation_prompt. A new object (cJSON_Delete it), or
 * NULL when out of memory. */
cJSON *rl_jinja_chat_vars(const cJSON *messages, int add_generation_prompt,
			  const cJSON *special_tokens, const cJSON *kwargs);

#endif
