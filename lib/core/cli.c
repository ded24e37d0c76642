/* cli.c — the common tool skeleton: messages, progress, option parsing, exit. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/util.h"

static const char *prog = "realign";
static int quiet;
static int verbose;
static int progress_tty;
static int progress_open;
static double progress_last;

/* A descriptor 0-2 closed at start would be the next open()'s: messages or the
 * stream would land in a model file. Each closed one is held by /dev/null,
 * opened the wrong way round (stdin write-only, stdout and stderr read-only)
 * so using it still fails as using a closed descriptor does (EBADF). */
static void hold_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		int got = open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
		if (got != fd)
			_exit(RL_ESYS); /* no /dev/null: nothing safe to open, nowhere to say so */
	}
}

void rl_cli_init(const char *name, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	hold_std_fds();
	prog = name;
	signal(SIGPIPE, SIG_IGN);
	progress_tty = isatty(STDERR_FILENO);
}

const char *rl_prog(void)
{
	return prog;
}

void rl_set_quiet(int q)
{
	quiet = q;
}

int rl_quiet(void)
{
	return quiet;
}

void rl_set_verbose(int v)
{
	verbose = v;
}

int rl_verbose(void)
{
	return verbose;
}

static void end_progress_line(void)
{
	if (progress_open) {
		fputs("\r\033[K", stderr);
		progress_open = 0;
	}
}

static void vmsg(const char *tag, const char *fmt, va_list ap)
{
	end_progress_line();
	fprintf(stderr, "%s: %s", prog, tag);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void rl_die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
	exit(code);
}

void rl_die_err(int code)
{
	end_progress_line();
	fprintf(stderr, "%s: %s\n", prog, rl_errmsg()[0] ? rl_errmsg() : "unknown error");
	exit(code ? code : RL_ESYS);
}

void rl_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", prog);
	exit(RL_USAGE);
}

void rl_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

void rl_info(const char *fmt, ...)
{
	if (quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void rl_note(const char *fmt, ...)
{
	if (!verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

int rl_progress_enabled(void)
{
	return progress_tty && !quiet;
}

void rl_progress(const char *fmt, ...)
{
	if (!rl_progress_enabled())
		return;
	double t = rl_now();
	if (progress_open && t - progress_last < 0.2)
		return;
	progress_last = t;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "\r\033[K%s: ", prog);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
	progress_open = 1;
}

void rl_progress_end(void)
{
	end_progress_line();
}

int rl_cli_exit(void)
{
	end_progress_line();
	int err = 0;
	if (fflush(stdout) != 0 || ferror(stdout))
		err = errno ? errno : EIO;
	if (fclose(stdout) != 0 && !err)
		err = errno ? errno : EIO;
	if (err) {
		fprintf(stderr, "%s: error writing standard output: %s\n", prog, strerror(err));
		return RL_ESYS;
	}
	return RL_OK;
}

void rl_require_stdout_not_tty(void)
{
	if (isatty(STDOUT_FILENO))
		rl_usage("refusing to write a binary stream to a terminal (redirect stdout or use "
			 "-o)");
}

long long rl_parse_int(const char *opt, const char *s, long long lo, long long hi)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno == ERANGE)
		rl_usage("%s: '%s' is not an integer", opt, s);
	if (v < lo || v > hi)
		rl_usage("%s: %lld is out of range [%lld, %lld]", opt, v, lo, hi);
	return v;
}

double rl_parse_double(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || *end || errno == ERANGE || isnan(v))
		rl_usage("%s: '%s' is not a number", opt, s);
	if (v < lo || v > hi)
		rl_usage("%s: %g is out of range [%g, %g]", opt, v, lo, hi);
	return v;
}

uint64_t rl_parse_size(const char *opt, const char *s)
{
	char *end;
	double v = strtod(s, &end);
	double mul = 1;
	if (end == s || v <= 0)
		rl_usage("%s: '%s' is not a size (e.g. 512M, 8G)", opt, s);
	switch (*end) {
	case 'k':
	case 'K':
		mul = 1024.0, end++;
		break;
	case 'm':
	case 'M':
		mul = 1024.0 * 1024, end++;
		break;
	case 'g':
	case 'G':
		mul = 1024.0 * 1024 * 1024, end++;
		break;
	case 't':
	case 'T':
		mul = 1024.0 * 1024 * 1024 * 1024, end++;
		break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v * mul >= 1.8e19 || v * mul < 1)
		rl_usage("%s: '%s' is not a size (e.g. 512M, 8G)", opt, s);
	return (uint64_t)(v * mul);
}
