/* error.c — the library's error channel and checked allocation. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static _Thread_local char errbuf[1024];

/* Every message is formatted into a scratch buffer and then copied into
 * errbuf: a caller may pass rl_errmsg() (errbuf itself) as an argument, and
 * vsnprintf's source and destination must not overlap. */
static int vset(int code, const char *fmt, va_list ap, const char *after)
{
	char s[sizeof errbuf];
	int n = vsnprintf(s, sizeof s, fmt, ap);
	if (n < 0)
		s[n = 0] = '\0';
	if (after && after[0] && (size_t)n < sizeof s)
		snprintf(s + n, sizeof s - (size_t)n, "%s%s", n ? ": " : "", after);
	memcpy(errbuf, s, sizeof errbuf);
	return code;
}

int rl_error(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(code, fmt, ap, NULL);
	va_end(ap);
	return code;
}

int rl_error_errno(int code, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vset(code, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
	return code;
}

int rl_error_prefix(int code, const char *fmt, ...)
{
	char old[sizeof errbuf];
	memcpy(old, errbuf, sizeof old);
	va_list ap;
	va_start(ap, fmt);
	vset(code, fmt, ap, old);
	va_end(ap);
	return code;
}

int rl_error_suffix(int code, const char *fmt, ...)
{
	char old[sizeof errbuf];
	memcpy(old, errbuf, sizeof old);
	/* "old suffix": the old message, a space, then the formatted text */
	char s[sizeof errbuf];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(s, sizeof s, fmt, ap);
	va_end(ap);
	if (n < 0)
		s[0] = '\0';
	size_t len = strlen(old);
	if (len && len + 1 < sizeof errbuf) {
		old[len++] = ' ';
		old[len] = '\0';
	}
	if (len < sizeof errbuf - 1)
		snprintf(old + len, sizeof old - len, "%.*s", (int)(sizeof old - 1 - len), s);
	memcpy(errbuf, old, sizeof errbuf);
	return code;
}

const char *rl_errmsg(void)
{
	return errbuf;
}

void rl_error_clear(void)
{
	errbuf[0] = '\0';
}

/* RL_FAIL_ALLOC=N makes the N-th checked allocation fail (allocation-failure
 * tests); read at the first allocation, re-armed by rl_fail_alloc_at. */
static long countdown = -2;

void rl_fail_alloc_at(long n)
{
	countdown = n > 0 ? n : -1;
}

static int alloc_should_fail(void)
{
	if (countdown == -2) {
		const char *s = getenv("RL_FAIL_ALLOC");
		countdown = s ? strtol(s, NULL, 10) : -1;
		if (countdown <= 0)
			countdown = -1;
	}
	if (countdown < 0)
		return 0;
	return --countdown == 0;
}

void *rl_malloc(size_t size)
{
	void *p = alloc_should_fail() ? NULL : malloc(size ? size : 1);
	if (!p)
		rl_error(RL_ESYS, "out of memory allocating %zu bytes", size);
	return p;
}

void *rl_calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		rl_error(RL_ESYS, "allocation size overflow (%zu x %zu)", n, size);
		return NULL;
	}
	void *p = alloc_should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1);
	if (!p)
		rl_error(RL_ESYS, "out of memory allocating %zu x %zu bytes", n, size);
	return p;
}

void *rl_malloc_array(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		rl_error(RL_ESYS, "allocation size overflow (%zu x %zu)", n, size);
		return NULL;
	}
	return rl_malloc(n * size);
}

void *rl_realloc_array(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		rl_error(RL_ESYS, "allocation size overflow (%zu x %zu)", n, size);
		return NULL;
	}
	size_t bytes = n * size;
	void *q = alloc_should_fail() ? NULL : realloc(p, bytes ? bytes : 1);
	if (!q)
		rl_error(RL_ESYS, "out of memory allocating %zu x %zu bytes", n, size);
	return q;
}

char *rl_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = rl_malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}
