/* options.c — option tables: getopt_long driven by the table, --help generated
 * from it. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/options.h"

enum {
	LONG_ONLY = 256, /* getopt's val for a long-only entry: LONG_ONLY + its index */
	HELP_WIDTH = 80, /* lines stay below this */
	MAX_LEFT = 28,	 /* wider option columns start their help on the same line */
	MAX_OPTS = 96,	 /* entries of one table */
};

void rl_opt_set_quiet(const char *name, const char *arg, void *ctx)
{
	(void)name, (void)arg, (void)ctx;
	rl_set_quiet(1);
}

void rl_opt_set_verbose(const char *name, const char *arg, void *ctx)
{
	(void)name, (void)arg, (void)ctx;
	rl_set_verbose(1);
}

void rl_opt_file(const char *name, const char *arg, void *ctx)
{
	if (!*arg || strcmp(arg, "-") == 0)
		rl_usage("%s: give a file (standard output carries the stream)", name);
	*(const char **)ctx = arg;
}

void rl_opt_shard(const char *name, const char *arg, void *ctx)
{
	rl_shard *s = ctx;
	const char *slash = strchr(arg, '/');
	char i[32];
	if (!slash || slash == arg || (size_t)(slash - arg) >= sizeof i)
		rl_usage("%s '%s': give I/N, part I (1 to N) of N", name, arg);
	memcpy(i, arg, (size_t)(slash - arg));
	i[slash - arg] = '\0';
	s->count = (int)rl_parse_int(name, slash + 1, 1, 65536);
	s->index = (int)rl_parse_int(name, i, 1, s->count);
}

void rl_shard_range(const rl_shard *s, int n, int *u0, int *u1)
{
	if (s->count < 1) {
		*u0 = 0, *u1 = n;
		return;
	}
	*u0 = (int)((int64_t)(s->index - 1) * n / s->count);
	*u1 = (int)((int64_t)s->index * n / s->count);
}

static int is_option(const rl_opt *o)
{
	return o->kind != RL_OPTK_GROUP;
}

static int count(const rl_opt *t)
{
	int n = 0;
	while (t[n].kind != RL_OPTK_END)
		n++;
	return n;
}

/* A table that names an option twice would hide the second: refused outright. */
static void check_table(const rl_opt *t, int n)
{
	for (int i = 0; i < n; i++) {
		if (!is_option(&t[i]))
			continue;
		if (!t[i].short_name && !t[i].long_name)
			rl_die(RL_ESYS, "option table: entry %d has no name", i);
		for (int j = 0; j < i; j++) {
			if (!is_option(&t[j]))
				continue;
			if (t[i].short_name && t[i].short_name == t[j].short_name)
				rl_die(RL_ESYS, "option table: -%c declared twice",
				       t[i].short_name);
			if (t[i].long_name && t[j].long_name &&
			    strcmp(t[i].long_name, t[j].long_name) == 0)
				rl_die(RL_ESYS, "option table: --%s declared twice",
				       t[i].long_name);
		}
	}
}

static int find_short(const rl_opt *t, int n, int c)
{
	for (int i = 0; i < n; i++)
		if (is_option(&t[i]) && t[i].short_name == c)
			return i;
	return -1;
}

/* The entry getopt's val stands for (-1: none). */
static int entry_of(const rl_opt *t, int n, int val)
{
	if (val >= LONG_ONLY && val < LONG_ONLY + n)
		return val - LONG_ONLY;
	return val > 0 && val < LONG_ONLY ? find_short(t, n, val) : -1;
}

/* "-m" or "--model", as typed: the long form when argv's word starts with "--". */
static void typed_name(const rl_opt *o, int as_long, char *buf, size_t cap)
{
	if ((as_long && o->long_name) || !o->short_name)
		snprintf(buf, cap, "--%s", o->long_name);
	else
		snprintf(buf, cap, "-%c", o->short_name);
}

static void apply(const rl_cmd *cmd, const rl_opt *o, const char *name, const char *arg)
{
	switch (o->kind) {
	case RL_OPTK_FLAG:
		*(int *)o->dest = 1;
		break;
	case RL_OPTK_INT:
		*(int *)o->dest = (int)rl_parse_int(name, arg, o->min, o->max);
		break;
	case RL_OPTK_LLONG:
		*(long long *)o->dest = rl_parse_int(name, arg, o->min, o->max);
		break;
	case RL_OPTK_U64:
		*(uint64_t *)o->dest = (uint64_t)rl_parse_int(name, arg, o->min, o->max);
		break;
	case RL_OPTK_DOUBLE:
		*(double *)o->dest = rl_parse_double(name, arg, o->fmin, o->fmax);
		break;
	case RL_OPTK_SIZE:
		*(uint64_t *)o->dest = rl_parse_size(name, arg);
		break;
	case RL_OPTK_STRING:
		*(const char **)o->dest = arg;
		break;
	case RL_OPTK_CALL:
		o->call(name, arg, o->dest);
		break;
	case RL_OPTK_HELP:
		rl_opts_help(cmd, stdout);
		exit(rl_cli_exit());
	case RL_OPTK_VERSION:
		printf("%s %s\n", rl_prog(), RL_VERSION);
		exit(rl_cli_exit());
	case RL_OPTK_END:
	case RL_OPTK_GROUP:
		break;
	}
}

/* An unknown long option, or an abbreviation of more than one. */
static _Noreturn void unknown_long(const rl_opt *t, int n, const char *word)
{
	size_t len = strcspn(word + 2, "=");
	char names[256] = "";
	int matches = 0;
	for (int i = 0; i < n; i++) {
		if (!is_option(&t[i]) || !t[i].long_name || strncmp(t[i].long_name, word + 2, len))
			continue;
		size_t k = strlen(names);
		snprintf(names + k, sizeof names - k, "%s--%s", matches++ ? ", " : "",
			 t[i].long_name);
	}
	if (matches > 1)
		rl_usage("option '%.*s' is ambiguous (%s)", (int)len + 2, word, names);
	rl_usage("unknown option '%.*s'", (int)len + 2, word);
}

int rl_opts_parse(const rl_cmd *cmd, int argc, char **argv)
{
	/* getopt's tables, static: exits from here (usage errors, --help, a
	 * callback's) leave nothing allocated */
	static struct option lo[MAX_OPTS + 1];
	static char so[1 + 2 * MAX_OPTS + 1];
	const rl_opt *t = cmd->opts;
	int n = count(t);
	if (n > MAX_OPTS)
		rl_die(RL_ESYS, "option table: %d entries (at most %d)", n, MAX_OPTS);
	check_table(t, n);
	/* ':' first: a missing argument is told apart from an unknown option */
	size_t k = 0, nl = 0;
	so[k++] = ':';
	for (int i = 0; i < n; i++) {
		if (!is_option(&t[i]))
			continue;
		if (t[i].short_name) {
			so[k++] = (char)t[i].short_name;
			if (t[i].argname)
				so[k++] = ':';
		}
		if (t[i].long_name)
			lo[nl++] = (struct option){
				t[i].long_name, t[i].argname ? required_argument : no_argument,
				NULL, t[i].short_name ? t[i].short_name : LONG_ONLY + i};
	}
	so[k] = 0;
	lo[nl] = (struct option){0};
	opterr = 0;
	optind = 0; /* glibc: start afresh (a second parse in one process) */
	for (;;) {
		int li = -1;
		int c = getopt_long(argc, argv, so, lo, &li);
		if (c == -1)
			break;
		const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "";
		int as_long = strncmp(word, "--", 2) == 0;
		char name[80];
		if (c == '?' || c == ':') {
			int e = entry_of(t, n, optopt);
			if (e < 0) {
				if (as_long || !optopt)
					unknown_long(t, n, word);
				rl_usage("unknown option '-%c'", optopt);
			}
			typed_name(&t[e], as_long, name, sizeof name);
			if (c == ':')
				rl_usage("option '%s' needs an argument", name);
			rl_usage("option '%s' takes no argument", name);
		}
		int e = entry_of(t, n, c);
		if (e < 0)
			rl_die(RL_ESYS, "option table: getopt returned %d", c);
		typed_name(&t[e], li >= 0, name, sizeof name);
		apply(cmd, &t[e], name, optarg);
	}
	return optind;
}

/* "  -m, --model DIR" / "      --raw" / "  -n N". */
static int left_column(const rl_opt *o, char *buf, size_t cap)
{
	int k;
	if (o->short_name && o->long_name)
		k = snprintf(buf, cap, "  -%c, --%s", o->short_name, o->long_name);
	else if (o->short_name)
		k = snprintf(buf, cap, "  -%c", o->short_name);
	else
		k = snprintf(buf, cap, "      --%s", o->long_name);
	if (o->argname && k >= 0 && (size_t)k < cap)
		k += snprintf(buf + k, cap - (size_t)k, " %s", o->argname);
	return k < 0 ? 0 : (size_t)k >= cap ? (int)cap - 1 : k;
}

/* Writes text from column `at` (the cursor is there), wrapped below HELP_WIDTH
 * with later lines indented to `indent`. */
static void wrapped(FILE *fp, const char *text, int at, int indent)
{
	int col = at, first = 1; /* first: no word on this line yet */
	for (const char *p = text; *p;) {
		if (*p == ' ') {
			p++;
			continue;
		}
		int w = (int)strcspn(p, " ");
		if (!first && col + 1 + w >= HELP_WIDTH) {
			fprintf(fp, "\n%*s", indent, "");
			col = indent;
			first = 1;
		}
		if (!first) {
			fputc(' ', fp);
			col++;
		}
		fwrite(p, 1, (size_t)w, fp);
		col += w;
		p += w;
		first = 0;
	}
	fputc('\n', fp);
}

void rl_opts_help(const rl_cmd *cmd, FILE *fp)
{
	const rl_opt *t = cmd->opts;
	int n = count(t), width = 0;
	char left[128];
	for (int i = 0; i < n; i++) {
		if (!is_option(&t[i]))
			continue;
		int w = left_column(&t[i], left, sizeof left);
		if (w <= MAX_LEFT && w > width)
			width = w;
	}
	int col = width + 2;
	/* usage: later lines (other forms, continuations) under the first */
	const char *u = cmd->usage;
	fputs("Usage: ", fp);
	for (; *u; u++) {
		fputc(*u, fp);
		if (*u == '\n' && u[1])
			fputs("       ", fp);
	}
	fputc('\n', fp);
	if (cmd->about)
		fprintf(fp, "%s\n", cmd->about);
	fputc('\n', fp);
	for (int i = 0; i < n; i++) {
		if (!is_option(&t[i])) {
			fprintf(fp, "%s\n", t[i].help);
			continue;
		}
		int w = left_column(&t[i], left, sizeof left);
		fputs(left, fp);
		if (w + 2 <= col) {
			fprintf(fp, "%*s", col - w, "");
			wrapped(fp, t[i].help, col, col);
		} else {
			fputs("  ", fp);
			wrapped(fp, t[i].help, w + 2, col);
		}
	}
	if (cmd->epilog)
		fprintf(fp, "\n%s\n", cmd->epilog);
}
