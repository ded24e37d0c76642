/* fault.c — RL_FAULT fault injection (see fault.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fault.h"
#include "core/util.h"

static int parsed;
static int action; /* 0 none, 1 kill, 2 errno */
static int fault_errno;
static char fault_cls[16];
static long fault_n;
static int fault_on; /* "N+": every point from the N-th on fails */
static long count_all, count_cls;
static const char *trace;

static void parse(void)
{
	const char *s = getenv("RL_FAULT");
	parsed = 1;
	trace = getenv("RL_FAULT_TRACE");
	if (!s || !*s)
		return;
	if (strncmp(s, "kill:", 5) == 0) {
		action = 1;
		fault_n = strtol(s + 5, NULL, 10);
		strcpy(fault_cls, "any");
		return;
	}
	const char *c = strchr(s, ':');
	const char *c2 = c ? strchr(c + 1, ':') : NULL;
	if (!c || !c2 || (size_t)(c2 - c - 1) >= sizeof fault_cls)
		return;
	if (strncmp(s, "enospc:", 7) == 0)
		fault_errno = ENOSPC;
	else if (strncmp(s, "eio:", 4) == 0)
		fault_errno = EIO;
	else
		return;
	action = 2;
	memcpy(fault_cls, c + 1, (size_t)(c2 - c - 1));
	fault_cls[c2 - c - 1] = 0;
	char *end;
	fault_n = strtol(c2 + 1, &end, 10);
	fault_on = *end == '+';
}

int rl_fault(const char *cls, const char *label)
{
	if (!parsed)
		parse();
	if (!action && !trace)
		return 0;
	long n = ++count_all;
	if (trace) {
		int saved = errno;
		int fd = open(trace, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			char line[128];
			int len = snprintf(line, sizeof line, "%ld %s %s\n", n, cls, label);
			if (len > 0 && write(fd, line, (size_t)len) < 0) {
				/* a trace is best effort */
			}
			close(fd);
		}
		errno = saved;
	}
	if (action == 1 && n == fault_n) {
		kill(getpid(), SIGKILL);
		pause();
	}
	if (action == 2 && (strcmp(fault_cls, "any") == 0 || strcmp(fault_cls, cls) == 0) &&
	    (++count_cls == fault_n || (fault_on && count_cls > fault_n))) {
		errno = fault_errno;
		return -1;
	}
	return 0;
}

int rl_fault_write_all(int fd, const void *buf, size_t n, const char *what, const char *cls)
{
	if (n && rl_fault(cls, "write"))
		return rl_error_errno(RL_ESYS, "'%s': write error", what);
	return rl_write_all(fd, buf, n, what);
}

int rl_fault_fsync_dir(const char *dir, const char *cls)
{
	if (rl_fault(cls, "fsync-dir"))
		return rl_error_errno(RL_ESYS, "'%s': fsync", dir);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return rl_error_errno(RL_ESYS, "'%s': cannot open", dir);
	int rc = fsync(fd);
	close(fd);
	if (rc != 0)
		return rl_error_errno(RL_ESYS, "'%s': fsync", dir);
	return RL_OK;
}
