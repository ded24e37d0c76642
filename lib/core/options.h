/* options.h — a tool's options declared once, as a table (in the manner of git's
 * parse-options): the table drives getopt_long, the --help text and the usage
 * errors, so no option is parsed without being documented, and tests compare the
 * --help it generates with the man page.
 *
 *     struct opts o = {.batch = 8};
 *     const rl_opt table[] = {
 *             RL_OPT_STRING('m', "model", "DIR", &o.model, "the model directory"),
 *             RL_OPT_INT('b', "batch-size", "N", &o.batch, 1, INT32_MAX,
 *                        "prompts per batch (default 8)"),
 *             RL_OPT_FLAG(0, "dry-run", &o.dry, "change nothing"),
 *             RL_OPT_QUIET("no summary on stderr"),
 *             RL_OPTS_END, // -h/--help, --version, the end
 *     };
 *     const rl_cmd cmd = {"rl-x -m MODEL [options] > OUT.rls", "What rl-x does.", table};
 *     int i = rl_opts_parse(&cmd, argc, argv); // argv[i..argc) are the operands
 *
 * Values are parsed strictly (cli.h: whole string, range-checked, never
 * clamped). An unknown option, a missing argument or a bad value is a usage
 * error naming the option as it was typed (exit 2, "Try 'rl-x --help'.");
 * --help prints the generated text on stdout and exits 0. Options shared by
 * many tools are declared once below (RL_OPT_QUIET, RL_OPT_THREADS, ...; the
 * prompt options in text/chat.h).
 */
#ifndef RL_OPTIONS_H
#define RL_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

typedef enum rl_opt_kind {
	RL_OPTK_END = 0, /* ends the table */
	RL_OPTK_GROUP,	 /* a heading in --help ("Generation:") */
	RL_OPTK_FLAG,	 /* int *: set to 1 */
	RL_OPTK_INT,	 /* int *, in [min, max] */
	RL_OPTK_LLONG,	 /* long long *, in [min, max] */
	RL_OPTK_U64,	 /* uint64_t *, in [min, max] */
	RL_OPTK_DOUBLE,	 /* double *, in [fmin, fmax] */
	RL_OPTK_SIZE,	 /* uint64_t *: bytes, "512M", "8G" (rl_parse_size) */
	RL_OPTK_STRING,	 /* const char **: the argument as given */
	RL_OPTK_CALL,	 /* call(name, arg, ctx); arg is NULL when argname is NULL */
	RL_OPTK_HELP,	 /* prints --help, exits 0 */
	RL_OPTK_VERSION, /* prints "rl-x VERSION", exits 0 */
} rl_opt_kind;

/* name: the option as the user typed it ("-n" or "--max-prompts", a long
 * option spelled out in full), for messages; it lives only during the call.
 * A callback reports a bad argument with rl_usage() (which exits 2). */
typedef void rl_opt_fn(const char *name, const char *arg, void *ctx);

typedef struct rl_opt {
	rl_opt_kind kind;
	int short_name;	       /* 0: long form only */
	const char *long_name; /* NULL: short form only */
	const char *argname;   /* shown in --help; NULL: the option takes no argument */
	const char *help;      /* one sentence; --help wraps it */
	void *dest;
	long long min, max; /* integer kinds */
	double fmin, fmax;  /* RL_OPTK_DOUBLE */
	rl_opt_fn *call;
} rl_opt;

typedef struct rl_cmd {
	const char *usage; /* after "Usage: "; more lines for more forms */
	const char *about; /* what the tool does, already broken into lines */
	const rl_opt *opts;
	const char *epilog; /* printed after the options (NULL: none) */
} rl_cmd;

/* Type-checks a destination: a pointer of another type is a compile error
 * (-Werror: pointer type mismatch in conditional expression). */
#define RL_OPT_DEST_(type, p) ((void *)(1 ? (p) : (type *)0))

#define RL_OPT_END                                                                                 \
	{                                                                                          \
		.kind = RL_OPTK_END                                                                \
	}
#define RL_OPT_GROUP(heading)                                                                      \
	{                                                                                          \
		.kind = RL_OPTK_GROUP, .help = (heading)                                           \
	}
#define RL_OPT_FLAG(s, l, p, h)                                                                    \
	{                                                                                          \
		.kind = RL_OPTK_FLAG, .short_name = (s), .long_name = (l), .help = (h),            \
		.dest = RL_OPT_DEST_(int, p)                                                       \
	}
#define RL_OPT_INT(s, l, a, p, lo, hi, h)                                                          \
	{                                                                                          \
		.kind = RL_OPTK_INT, .short_name = (s), .long_name = (l), .argname = (a),          \
		.help = (h), .dest = RL_OPT_DEST_(int, p), .min = (lo), .max = (hi)                \
	}
#define RL_OPT_LLONG(s, l, a, p, lo, hi, h)                                                        \
	{                                                                                          \
		.kind = RL_OPTK_LLONG, .short_name = (s), .long_name = (l), .argname = (a),        \
		.help = (h), .dest = RL_OPT_DEST_(long long, p), .min = (lo), .max = (hi)          \
	}
#define RL_OPT_U64(s, l, a, p, lo, hi, h)                                                          \
	{                                                                                          \
		.kind = RL_OPTK_U64, .short_name = (s), .long_name = (l), .argname = (a),          \
		.help = (h), .dest = RL_OPT_DEST_(uint64_t, p), .min = (lo), .max = (hi)           \
	}
#define RL_OPT_DOUBLE(s, l, a, p, lo, hi, h)                                                       \
	{                                                                                          \
		.kind = RL_OPTK_DOUBLE, .short_name = (s), .long_name = (l), .argname = (a),       \
		.help = (h), .dest = RL_OPT_DEST_(double, p), .fmin = (lo), .fmax = (hi)           \
	}
#define RL_OPT_SIZE(s, l, a, p, h)                                                                 \
	{                                                                                          \
		.kind = RL_OPTK_SIZE, .short_name = (s), .long_name = (l), .argname = (a),         \
		.help = (h), .dest = RL_OPT_DEST_(uint64_t, p)                                     \
	}
#define RL_OPT_STRING(s, l, a, p, h)                                                               \
	{                                                                                          \
		.kind = RL_OPTK_STRING, .short_name = (s), .long_name = (l), .argname = (a),       \
		.help = (h), .dest = RL_OPT_DEST_(const char *, p)                                 \
	}
#define RL_OPT_CALL(s, l, a, fn, ctx, h)                                                           \
	{                                                                                          \
		.kind = RL_OPTK_CALL, .short_name = (s), .long_name = (l), .argname = (a),         \
		.help = (h), .call = (fn), .dest = (ctx)                                           \
	}

/* The options many tools share, declared once. */
#define RL_OPT_HELP                                                                                \
	{                                                                                          \
		.kind = RL_OPTK_HELP, .short_name = 'h', .long_name = "help", .help = "this help"  \
	}
#define RL_OPT_VERSION                                                                             \
	{                                                                                          \
		.kind = RL_OPTK_VERSION, .long_name = "version", .help = "print the version"       \
	}
/* Every table ends with these: -h/--help, --version and the end. */
#define RL_OPTS_END RL_OPT_HELP, RL_OPT_VERSION, RL_OPT_END
#define RL_OPT_QUIET(h) RL_OPT_CALL('q', "quiet", NULL, rl_opt_set_quiet, NULL, h)
#define RL_OPT_VERBOSE(h) RL_OPT_CALL('v', "verbose", NULL, rl_opt_set_verbose, NULL, h)
#define RL_OPT_MODEL(p, h) RL_OPT_STRING('m', "model", "DIR", p, h)
#define RL_OPT_OUTPUT(s, a, p, h) RL_OPT_STRING(s, "output", a, p, h)
/* Worker threads: 1..4096 (0 in *p: the tool's default). */
#define RL_OPT_THREADS(s, p, h) RL_OPT_INT(s, "threads", "N", p, 1, 4096, h)

/* Callbacks of RL_OPT_QUIET and RL_OPT_VERBOSE (cli.h's rl_set_quiet(1), ...). */
void rl_opt_set_quiet(const char *name, const char *arg, void *ctx);
void rl_opt_set_verbose(const char *name, const char *arg, void *ctx);
/* A file argument for a second output, beside the stream on stdout: ctx is a
 * const char **; "" and "-" are usage errors. */
void rl_opt_file(const char *name, const char *arg, void *ctx);

/* --shard I/N: this run computes part I (1 to N) of N. count 0: not sharded. */
typedef struct rl_shard {
	int index, count;
} rl_shard;
/* Callback of RL_OPT_SHARD: ctx is an rl_shard *; "I/N" with 1 <= I <= N <=
 * 65536, else a usage error. */
void rl_opt_shard(const char *name, const char *arg, void *ctx);
#define RL_OPT_SHARD(p, h)                                                                         \
	RL_OPT_CALL(0, "shard", "I/N", rl_opt_shard, RL_OPT_DEST_(rl_shard, p), h)
/* The units [*u0, *u1) of n (batches, prompt groups) that shard s holds:
 * consecutive, in order, every unit in exactly one of the N shards, their
 * sizes differing by at most one (some empty when n < N). */
void rl_shard_range(const rl_shard *s, int n, int *u0, int *u1);

/* Parses argv[1..] by cmd's table (GNU getopt_long: options and operands may
 * mix, "--" ends the options, a long option may be abbreviated to a unique
 * prefix). Returns the index of the first operand. Exits on --help, --version
 * and usage errors. */
int rl_opts_parse(const rl_cmd *cmd, int argc, char **argv);

/* The --help text: usage, about, the options (grouped, wrapped at 80 columns),
 * the epilog. */
void rl_opts_help(const rl_cmd *cmd, FILE *fp);

#endif
