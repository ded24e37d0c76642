/* cli.h — what every tool's main() shares.
 *
 * The shape of every tool (copy an existing tools/rl-*.c to start a new one):
 *
 *     int main(int argc, char **argv)
 *     {
 *         rl_cli_init("rl-x", argc, argv);     // program name, SIGPIPE -> EPIPE
 *         struct opts o; parse_args(&o, argc, argv);  // an option table (core/options.h):
 *                                              // --help; usage errors exit 2
 *         ... open inputs ("-" = stdin), loop over records, calling lib/ ...
 *         if (rc) rl_die_err(rc);              // "rl-x: <rl_errmsg()>", exit rc
 *         return rl_cli_exit();                // fflush/ferror/fclose(stdout): a full
 *     }                                        // disk or closed pipe is an error
 *
 * Rules: stdout carries only the tool's stream (or the JSON a tool is asked for);
 * every human-readable byte goes to stderr as "rl-x: message". Progress is shown
 * only when stderr is a terminal and -q was not given.
 */
#ifndef RL_CLI_H
#define RL_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

/* Holds closed descriptors 0-2 with /dev/null (so no file the tool opens
 * becomes its stdin, stdout or stderr; using them still fails), records the
 * program name, ignores SIGPIPE (so a closed pipe becomes EPIPE, reported as
 * an error), and decides whether progress may be shown. Call it first. */
void rl_cli_init(const char *prog, int argc, char **argv);

const char *rl_prog(void);

/* Silences progress and notes (-q). */
void rl_set_quiet(int quiet);
int rl_quiet(void);
/* Verbose notes (-v): rl_note() prints only when verbose. */
void rl_set_verbose(int verbose);
int rl_verbose(void);

/* "rl-x: message" on stderr, then exit(code). */
_Noreturn void rl_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Dies with the library's recorded message. */
_Noreturn void rl_die_err(int code);
/* Usage error: "rl-x: message" and "Try 'rl-x --help'.", exit 2. */
_Noreturn void rl_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "rl-x: warning: message" (always shown, even with -q). */
void rl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "rl-x: message" unless -q (summaries a user wants to see). */
void rl_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "rl-x: message" only with -v. */
void rl_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress line, rewritten in place ("\r"), only when stderr is a terminal
 * and not quiet; rate-limited to a few updates a second. rl_progress_end()
 * finishes the line. */
void rl_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void rl_progress_end(void);
int rl_progress_enabled(void);

/* Flushes and closes stdout, checking for errors; returns the exit status
 * main() should return (RL_OK, or RL_ESYS after printing the error). */
int rl_cli_exit(void);

/* Refuses (exit 2) to write a binary stream to a terminal, like gzip. */
void rl_require_stdout_not_tty(void);

/* Option value parsing: strict, whole-string, range-checked; a bad value is a
 * usage error naming the option. Never clamps silently. */
long long rl_parse_int(const char *opt, const char *s, long long lo, long long hi);
double rl_parse_double(const char *opt, const char *s, double lo, double hi);
/* A size in bytes with an optional K, M, G or T suffix (powers of 1024) and an
 * optional B: "512M", "8G", "1.5GB"; anything else is a usage error. */
uint64_t rl_parse_size(const char *opt, const char *s);

#endif
