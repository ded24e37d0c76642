/* test_options.c — option tables (core/options.h): values parsed into their
 * destinations, operands left in order, every kind of usage error exiting 2
 * with the message naming the option as typed, --help text generated from the
 * table (checked against the text written out by hand), and a table that names
 * an option twice refused. Exits are observed in a forked child. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/cli.h"
#include "core/options.h"

struct vals {
	const char *model, *out;
	int batch, dry, threads, calls;
	long long count;
	uint64_t seed, mem;
	double rate;
	char last_call[64];
};

static void on_pick(const char *name, const char *arg, void *ctx)
{
	struct vals *v = ctx;
	v->calls++;
	snprintf(v->last_call, sizeof v->last_call, "%s=%s", name, arg);
}

static struct vals v;

static const rl_opt table[] = {
	RL_OPT_MODEL(&v.model, "the model directory"),
	RL_OPT_INT('b', "batch-size", "N", &v.batch, 1, 64, "prompts per batch (default 8)"),
	RL_OPT_FLAG('n', "dry-run", &v.dry, "change nothing"),
	RL_OPT_GROUP("Budget:"),
	RL_OPT_LLONG(0, "count", "K", &v.count, 0, (long long)1 << 53, "restore K elements"),
	RL_OPT_DOUBLE(0, "rate", "R", &v.rate, 0, 1, "restore ceil(R * P) elements"),
	RL_OPT_U64('s', "seed", "N", &v.seed, 0, INT64_MAX, "seed"),
	RL_OPT_SIZE(0, "mem-limit", "SIZE", &v.mem,
		    "working memory budget, e.g. 8G (default: half the RAM); activations beyond "
		    "it are recomputed"),
	RL_OPT_CALL(0, "pick", "WHAT", on_pick, &v, "a callback"),
	RL_OPT_THREADS('j', &v.threads, "threads"),
	RL_OPT_OUTPUT('o', "FILE", &v.out, "write the stream to FILE instead of stdout"),
	RL_OPT_STRING(0, "a-very-long-option-name", "ARGUMENT", &v.out, "past the column"),
	RL_OPT_QUIET("no messages but errors"),
	RL_OPTS_END,
};

static const rl_cmd cmd = {"rl-test -m MODEL [options] [FILE...]\n  rl-test --help",
			   "A tool for this test.", table, "See rl-test(1)."};

/* Parses a NULL-terminated argv (after a fresh v); returns the first operand. */
static int parse(char **argv)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	memset(&v, 0, sizeof v);
	v.batch = 8;
	return rl_opts_parse(&cmd, argc, argv);
}

/* Runs parse(argv) in a child: its exit status, its stdout and stderr. */
static int in_child(char **argv, char *out, size_t out_cap, char *err, size_t err_cap)
{
	int po[2], pe[2];
	if (pipe(po) || pipe(pe))
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		parse(argv);
		fflush(NULL);
		_exit(100);
	}
	close(po[1]);
	close(pe[1]);
	size_t no = 0, ne = 0;
	ssize_t r;
	while (no + 1 < out_cap && (r = read(po[0], out + no, out_cap - 1 - no)) > 0)
		no += (size_t)r;
	while (ne + 1 < err_cap && (r = read(pe[0], err + ne, err_cap - 1 - ne)) > 0)
		ne += (size_t)r;
	out[no] = err[ne] = 0;
	close(po[0]);
	close(pe[0]);
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void expect_usage(char **argv, const char *message)
{
	char out[256], err[1024];
	int rc = in_child(argv, out, sizeof out, err, sizeof err);
	char want[512];
	snprintf(want, sizeof want, "rl-test: %s\nTry 'rl-test --help' for more information.\n",
		 message);
	CHECKF(rc == 2, "%s %s: exit %d", argv[1], argv[2] ? argv[2] : "", rc);
	CHECKF(strcmp(err, want) == 0, "stderr '%s', wanted '%s'", err, want);
	CHECKF(!out[0], "stdout '%s'", out);
}

#define ARGV(...) ((char *[]){"rl-test", __VA_ARGS__, NULL})

static const char help_text[] =
	"Usage: rl-test -m MODEL [options] [FILE...]\n"
	"         rl-test --help\n"
	"A tool for this test.\n"
	"\n"
	"  -m, --model DIR       the model directory\n"
	"  -b, --batch-size N    prompts per batch (default 8)\n"
	"  -n, --dry-run         change nothing\n"
	"Budget:\n"
	"      --count K         restore K elements\n"
	"      --rate R          restore ceil(R * P) elements\n"
	"  -s, --seed N          seed\n"
	"      --mem-limit SIZE  working memory budget, e.g. 8G (default: half the RAM);\n"
	"                        activations beyond it are recomputed\n"
	"      --pick WHAT       a callback\n"
	"  -j, --threads N       threads\n"
	"  -o, --output FILE     write the stream to FILE instead of stdout\n"
	"      --a-very-long-option-name ARGUMENT  past the column\n"
	"  -q, --quiet           no messages but errors\n"
	"  -h, --help            this help\n"
	"      --version         print the version\n"
	"\n"
	"See rl-test(1).\n";

int main(void)
{
	rl_cli_init("rl-test", 0, NULL);

	/* values, both spellings, operands in order (GNU permutation), "--" */
	char **a = ARGV("x.rls", "-m", "M", "--batch-size=16", "-n", "--count", "9007199254740992",
			"--rate", "0.25", "-s", "9223372036854775807", "--mem-limit", "1.5G",
			"--pick", "this", "-j4", "--out", "O", "y.rls", "--", "-q");
	int i = parse(a);
	CHECK_STR(v.model, "M");
	CHECK_EQ_INT(v.batch, 16);
	CHECK_EQ_INT(v.dry, 1);
	CHECK(v.count == (long long)1 << 53);
	CHECK(v.rate == 0.25);
	CHECK(v.seed == (uint64_t)INT64_MAX);
	CHECK(v.mem == (uint64_t)3 << 29);
	CHECK_EQ_INT(v.calls, 1);
	CHECK_STR(v.last_call, "--pick=this");
	CHECK_EQ_INT(v.threads, 4);
	CHECK_STR(v.out, "O"); /* "--out": a unique prefix of --output */
	CHECK_EQ_INT(rl_quiet(), 0);
	CHECK_EQ_INT(i, 19);
	CHECK_STR(a[i], "x.rls");
	CHECK_STR(a[i + 1], "y.rls");
	CHECK_STR(a[i + 2], "-q"); /* after "--": an operand */

	/* defaults stay where no option is given; -q through its callback */
	i = parse(ARGV("-qn"));
	CHECK_EQ_INT(v.batch, 8);
	CHECK(v.model == NULL);
	CHECK_EQ_INT(v.dry, 1);
	CHECK_EQ_INT(rl_quiet(), 1);
	CHECK_EQ_INT(i, 2);
	rl_set_quiet(0);

	/* usage errors: exit 2, one line naming the option as typed */
	expect_usage(ARGV("--bogus"), "unknown option '--bogus'");
	expect_usage(ARGV("-x"), "unknown option '-x'");
	expect_usage(ARGV("-nx"), "unknown option '-x'");
	expect_usage(ARGV("--m", "1"), "option '--m' is ambiguous (--model, --mem-limit)");
	expect_usage(ARGV("-m"), "option '-m' needs an argument");
	expect_usage(ARGV("--model"), "option '--model' needs an argument");
	expect_usage(ARGV("--dry-run=yes"), "option '--dry-run' takes no argument");
	expect_usage(ARGV("-b", "0"), "-b: 0 is out of range [1, 64]");
	expect_usage(ARGV("--batch-size", "65"), "--batch-size: 65 is out of range [1, 64]");
	expect_usage(ARGV("--batch-size", "8x"), "--batch-size: '8x' is not an integer");
	expect_usage(ARGV("--batch-size", ""), "--batch-size: '' is not an integer");
	expect_usage(ARGV("--rate", "1.5"), "--rate: 1.5 is out of range [0, 1]");
	expect_usage(ARGV("--rate", "nan"), "--rate: 'nan' is not a number");
	expect_usage(ARGV("-s", "-1"), "-s: -1 is out of range [0, 9223372036854775807]");
	expect_usage(ARGV("--mem-limit", "12Q"),
		     "--mem-limit: '12Q' is not a size (e.g. 512M, 8G)");
	expect_usage(ARGV("-j", "0"), "-j: 0 is out of range [1, 4096]");

	/* --help: the generated text on stdout, exit 0, nothing on stderr */
	char out[4096], err[256];
	int rc = in_child(ARGV("-m", "M", "--help", "--bogus"), out, sizeof out, err, sizeof err);
	CHECK_EQ_INT(rc, 0);
	CHECKF(strcmp(out, help_text) == 0, "--help printed:\n%s", out);
	CHECKF(!err[0], "stderr '%s'", err);
	rc = in_child(ARGV("--version"), out, sizeof out, err, sizeof err);
	CHECK_EQ_INT(rc, 0);
	CHECK_STR(out, "rl-test " RL_VERSION "\n");

	/* every help line stays within 79 columns */
	for (const char *p = help_text; *p;) {
		size_t n = strcspn(p, "\n");
		CHECKF(n < 80, "help line of %zu columns", n);
		p += n + (p[n] == '\n');
	}

	/* a table that names an option twice is refused (exit 4), not half-used */
	static int x;
	static const rl_opt twice[] = {
		RL_OPT_FLAG('x', "one", &x, "one"),
		RL_OPT_FLAG('x', "two", &x, "two"),
		RL_OPT_END,
	};
	static const rl_cmd twice_cmd = {"rl-test", NULL, twice, NULL};
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stderr))
			_exit(9);
		rl_opts_parse(&twice_cmd, 2, ARGV("-x"));
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == RL_ESYS);
	return check_done("test_options");
}
