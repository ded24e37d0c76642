/* error.h — the suite's exit codes and the library's error channel.
 *
 * Library code never exits and never prints. A failing function records a
 * one-line message with rl_error() (which returns the exit code it was given,
 * so callers write `return rl_error(RL_EDATA, "'%s': truncated", path);`) and
 * passes the code up. Only a tool decides to die, printing "rl-x: <message>".
 *
 * Messages name the subject first, quoted, then the problem, in lowercase:
 *     'model/model.safetensors': header length 12345678901 exceeds the file
 * The message buffer is thread-local; it holds the most recent error only.
 */
#ifndef RL_ERROR_H
#define RL_ERROR_H

#include <stddef.h>

/* One exit-code table for the whole suite (mirrored in every man page). */
enum rl_status {
	RL_OK = 0,    /* success */
	RL_NO = 1,    /* a documented "no" (e.g. a check that found a difference) */
	RL_USAGE = 2, /* bad command line */
	RL_EDATA = 3, /* bad input data: malformed, truncated, wrong kind, mismatched */
	RL_ESYS = 4,  /* system error: I/O, memory, permissions, signals */
};

/* Record a message (printf format) and return code. */
int rl_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Same, with ": strerror(errno)" appended; captures errno before formatting. */
int rl_error_errno(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the current message with "prefix: " (adds context while unwinding). */
int rl_error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append " suffix" to the current message (says what came of the failure,
 * e.g. "(the model was not changed)"). */
int rl_error_suffix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The most recent message ("" when none). */
const char *rl_errmsg(void);

/* Forget the current message. */
void rl_error_clear(void);

/* Allocation that records an RL_ESYS message on failure (never aborts). The
 * *_array forms check n*size for overflow. */
void *rl_malloc(size_t size);
void *rl_calloc(size_t n, size_t size);
void *rl_malloc_array(size_t n, size_t size);
void *rl_realloc_array(void *p, size_t n, size_t size);
char *rl_strdup(const char *s);

/* Test hook for allocation-failure tests: when the environment variable
 * RL_FAIL_ALLOC=N is set, the N-th rl_* allocation (1-based) fails. It is
 * read once, at the first allocation; a test in one process re-arms it with
 * rl_fail_alloc_at(N) (the N-th allocation from now fails; 0: none). */
void rl_fail_alloc_at(long n);

#endif
