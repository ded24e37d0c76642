/* lockfile.c — the model directory's writer lock (see lockfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/lockfile.h"

/* Held lock paths, for the exit and signal handlers (a process holds at most
 * a few: one per model it writes). */
#define MAX_HELD 4
static char *held[MAX_HELD];
static int handlers_installed;

static void unlink_held(void)
{
	for (int i = 0; i < MAX_HELD; i++)
		if (held[i])
			unlink(held[i]); /* async-signal-safe */
}

static void on_signal(int sig)
{
	unlink_held();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_handlers(void)
{
	if (handlers_installed)
		return;
	handlers_installed = 1;
	atexit(unlink_held);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		struct sigaction sa, old;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue; /* keep ignored signals ignored (nohup) */
		sigaction(sigs[i], &sa, NULL);
	}
}

static void remember(char *path)
{
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < MAX_HELD; i++)
		if (!held[i]) {
			held[i] = path;
			break;
		}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void forget(const char *path)
{
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < MAX_HELD; i++)
		if (held[i] == path)
			held[i] = NULL;
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* 1 when fd is still the file at path. */
static int same_file(int fd, const char *path)
{
	struct stat a, b;
	if (fstat(fd, &a) != 0 || stat(path, &b) != 0)
		return 0;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static long read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

int rl_lock_acquire(rl_lock *l, const char *dir)
{
	memset(l, 0, sizeof *l);
	l->fd = -1;
	size_t n = strlen(dir) + 32;
	char *sub = rl_malloc(n);
	l->path = rl_malloc(n);
	if (!sub || !l->path) {
		free(sub);
		free(l->path);
		l->path = NULL;
		return RL_ESYS;
	}
	snprintf(sub, n, "%s/.realign", dir);
	snprintf(l->path, n, "%s/.realign/lock", dir);
	if (mkdir(sub, 0755) != 0 && errno != EEXIST) {
		int rc = rl_error_errno(RL_ESYS, "'%s': cannot create", sub);
		free(sub);
		free(l->path);
		l->path = NULL;
		return rc;
	}
	free(sub);
	install_handlers();
	for (int attempt = 0; attempt < 100; attempt++) {
		int fd = open(l->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0) {
			/* Ours. The flock marks it live; if someone took it over
			 * as stale in the instant before, they hold the flock. */
			if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
				close(fd);
				continue;
			}
			char buf[32];
			int len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
			if (write(fd, buf, (size_t)len) != len) {
				int rc = rl_error_errno(RL_ESYS, "'%s': cannot write", l->path);
				unlink(l->path);
				close(fd);
				free(l->path);
				l->path = NULL;
				return rc;
			}
			l->fd = fd;
			remember(l->path);
			return RL_OK;
		}
		if (errno != EEXIST) {
			int rc = rl_error_errno(RL_ESYS, "'%s': cannot create lock", l->path);
			free(l->path);
			l->path = NULL;
			return rc;
		}
		fd = open(l->path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* released meanwhile */
			int rc = rl_error_errno(RL_ESYS, "'%s': cannot open lock", l->path);
			free(l->path);
			l->path = NULL;
			return rc;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			long pid = read_pid(fd);
			close(fd);
			free(l->path);
			l->path = NULL;
			return rl_error(
				RL_NO,
				"'%s': the model is being written by another process (pid %ld)",
				dir, pid);
		}
		if (!same_file(fd, l->path)) {
			close(fd);
			continue;
		}
		/* A dead writer's lock: take it over. */
		char buf[32];
		int len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
		if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
			int rc = rl_error_errno(RL_ESYS, "'%s': cannot write", l->path);
			close(fd);
			free(l->path);
			l->path = NULL;
			return rc;
		}
		l->fd = fd;
		l->stale = 1;
		remember(l->path);
		return RL_OK;
	}
	int rc = rl_error(RL_ESYS, "'%s': lock keeps changing hands", l->path);
	free(l->path);
	l->path = NULL;
	return rc;
}

void rl_lock_release(rl_lock *l)
{
	if (!l->path)
		return;
	/* Unlink while still holding the flock, then close: a waiter that got
	 * the old inode sees it is no longer at the path and starts again. */
	unlink(l->path);
	forget(l->path);
	if (l->fd >= 0)
		close(l->fd);
	free(l->path);
	l->path = NULL;
	l->fd = -1;
}
