/* subproc.c — JSON-lines exchange with an external command (see subproc.h).
 *
 * One loop under poll(): while requests remain, write as much as the pipe
 * takes; whenever the command has output, read it and handle complete lines.
 * Neither side can block the other, whatever the command's reading and
 * writing order, because neither write nor read ever blocks here.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/json.h"
#include "core/jsonl.h"
#include "core/subproc.h"
#include "core/util.h"

extern char **environ;

#define MAX_ANSWER_LINE (64u << 20)

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Waits for pid up to limit_s seconds (< 0: forever). Returns 1 when reaped
 * (status in *st), 0 when still running. */
static int wait_for(pid_t pid, int *st, double limit_s)
{
	double t0 = rl_now();
	for (;;) {
		pid_t r = waitpid(pid, st, limit_s < 0 ? 0 : WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1; /* not our child any more: nothing to wait for */
		if (limit_s >= 0 && rl_now() - t0 >= limit_s)
			return 0;
		if (limit_s >= 0)
			sleep_ms(10);
	}
}

/* 1 when pid has exited (not reaped: its process group id stays taken). */
static int exited(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* The command leads its own process group (spawn), where whatever it
 * starts stays unless it moves out (setsid). Ending the group: SIGTERM to all
 * of it while the command, exited or not, is not yet reaped (so the group's
 * id cannot have gone to another process); the command reaped (SIGKILL
 * after a grace if it ignores SIGTERM); then what is left of the group (a
 * background grandchild holding our pipe) gets a short grace and SIGKILL.
 * *st receives the command's wait status. */
static void end_group(pid_t pid, int *st)
{
	kill(-pid, SIGTERM);
	if (!wait_for(pid, st, 2.0)) {
		kill(-pid, SIGKILL);
		wait_for(pid, st, -1);
	}
	for (int i = 0; i < 50 && kill(-pid, 0) == 0; i++)
		sleep_ms(10);
	if (kill(-pid, 0) == 0)
		kill(-pid, SIGKILL);
}

/* Stops the command and everything in its group; always reaps it. */
static void kill_reap(pid_t pid)
{
	int st;
	end_group(pid, &st);
}

/* The command, shortened for messages. */
static void short_cmd(const char *cmd, char out[64])
{
	size_t n = strlen(cmd);
	if (n < 60) {
		memcpy(out, cmd, n + 1);
	} else {
		memcpy(out, cmd, 56);
		memcpy(out + 56, "...", 4);
	}
}

/* A line, shortened and with control bytes shown as '?', for messages. */
static void short_line(const char *s, size_t n, char out[64])
{
	size_t k = n < 48 ? n : 48;
	for (size_t i = 0; i < k; i++)
		out[i] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
	if (n > k) {
		memcpy(out + k, "...", 4);
	} else {
		out[k] = '\0';
	}
}

static int describe_status(char *buf, size_t cap, int st)
{
	if (WIFEXITED(st))
		return snprintf(buf, cap, "exited with status %d", WEXITSTATUS(st));
	if (WIFSIGNALED(st))
		return snprintf(buf, cap, "was killed by signal %d (%s)", WTERMSIG(st),
				strsignal(WTERMSIG(st)));
	return snprintf(buf, cap, "ended (wait status %d)", st);
}

struct ex {
	const rl_exchange *x;
	char cmd[64];
	const int64_t *ids;
	size_t n, got;
	cJSON **answers;
};

/* Handles one complete answer line (without its newline). */
static int on_line(struct ex *e, char *line, size_t len)
{
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
		i++;
	if (i == len)
		return RL_OK; /* blank lines are allowed and ignored */
	char snip[64];
	short_line(line, len, snip);
	if (e->got == e->n)
		return rl_error(RL_EDATA, "%s '%s': more answers than the %zu items: '%s'",
				e->x->what, e->cmd, e->n, snip);
	long long want = (long long)e->ids[e->got];
	if (memchr(line, '\0', len) || !rl_utf8_valid(line, len))
		return rl_error(RL_EDATA, "%s '%s': answer for item %lld is not valid UTF-8",
				e->x->what, e->cmd, want);
	line[len] = '\0';
	const char *end = NULL;
	cJSON *v = cJSON_ParseWithOpts(line, &end, 0);
	if (v && end)
		while (*end == ' ' || *end == '\t' || *end == '\r')
			end++;
	if (!v || !cJSON_IsObject(v) || (end && *end)) {
		cJSON_Delete(v);
		return rl_error(RL_EDATA,
				"%s '%s': answer for item %lld is not a JSON object: '%s'",
				e->x->what, e->cmd, want, snip);
	}
	/* json.h's rules: a key given twice ({"harmful":true,"harmful":false}) would
	 * be read as its first */
	char what[160];
	snprintf(what, sizeof what, "%s '%s': answer for item %lld", e->x->what, e->cmd, want);
	int rc = rl_json_check(line, len, v, what);
	if (rc) {
		cJSON_Delete(v);
		return rc;
	}
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
	if (!cJSON_IsNumber(id) || floor(id->valuedouble) != id->valuedouble) {
		cJSON_Delete(v);
		return rl_error(RL_EDATA,
				"%s '%s': answer for item %lld has no integer \"id\": '%s'",
				e->x->what, e->cmd, want, snip);
	}
	if (id->valuedouble != (double)want) {
		double got = id->valuedouble;
		cJSON_Delete(v);
		return rl_error(RL_EDATA,
				"%s '%s': answered item %.0f where item %lld was expected (answers "
				"must come in input order, one per item)",
				e->x->what, e->cmd, got, want);
	}
	e->answers[e->got++] = v;
	if (e->x->progress)
		e->x->progress(e->x->progress_ctx, e->got, e->n);
	return RL_OK;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Starts /bin/sh -c cmd with stdin from *wfd and stdout into *rfd. */
static int spawn(const char *cmd, pid_t *pid, int *wfd, int *rfd)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1};
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
		int rc = rl_error_errno(RL_ESYS, "pipe");
		if (in[0] >= 0) {
			close(in[0]);
			close(in[1]);
		}
		return rc;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawnattr_init(&at);
	/* The tools ignore SIGPIPE; the command gets the default back. */
	sigset_t def, none;
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setsigmask(&at, &none);
	/* its own process group, so that what it leaves behind can be ended */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
					      POSIX_SPAWN_SETPGROUP);
	char *argv[] = {"sh", "-c", (char *)cmd, NULL};
	int err = posix_spawn(pid, "/bin/sh", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(in[0]);
	close(out[1]);
	if (err) {
		close(in[1]);
		close(out[0]);
		errno = err;
		return rl_error_errno(RL_ESYS, "cannot start '%s'", cmd);
	}
	if (set_nonblock(in[1]) != 0 || set_nonblock(out[0]) != 0) {
		int rc = rl_error_errno(RL_ESYS, "fcntl");
		close(in[1]);
		close(out[0]);
		kill_reap(*pid);
		return rc;
	}
	*wfd = in[1];
	*rfd = out[0];
	return RL_OK;
}

/* Writing to a command that has exited raises SIGPIPE. Library code cannot
 * assume the caller ignores it, so it is blocked in this thread while the
 * exchange runs, and one raised by our writes is consumed before unblocking
 * (a SIGPIPE that was already pending stays pending). */
struct pipe_guard {
	sigset_t old;
	int was_pending;
};

static void guard_on(struct pipe_guard *g)
{
	sigset_t set, pend;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	g->was_pending = sigismember(&pend, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void guard_off(struct pipe_guard *g)
{
	sigset_t set, pend;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	if (!g->was_pending && sigismember(&pend, SIGPIPE) == 1) {
		struct timespec zero = {0, 0};
		sigtimedwait(&set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static int exchange_run(const rl_exchange *x, char *const *requests, const int64_t *ids, size_t n,
			cJSON **answers);

int rl_exchange_run(const rl_exchange *x, char *const *requests, const int64_t *ids, size_t n,
		    cJSON **answers)
{
	struct pipe_guard g;
	guard_on(&g);
	int rc = exchange_run(x, requests, ids, n, answers);
	guard_off(&g);
	return rc;
}

static int exchange_run(const rl_exchange *x, char *const *requests, const int64_t *ids, size_t n,
			cJSON **answers)
{
	for (size_t i = 0; i < n; i++)
		answers[i] = NULL;
	if (n == 0)
		return RL_OK;
	struct ex e = {.x = x, .ids = ids, .n = n, .answers = answers};
	short_cmd(x->cmd, e.cmd);

	/* All requests as one buffer of lines. */
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += strlen(requests[i]) + 1;
	char *wbuf = rl_malloc(total ? total : 1);
	if (!wbuf)
		return RL_ESYS;
	size_t wlen = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(requests[i]);
		memcpy(wbuf + wlen, requests[i], l);
		wlen += l;
		wbuf[wlen++] = '\n';
	}

	pid_t pid;
	int wfd = -1, rfd = -1, rc;
	if ((rc = spawn(x->cmd, &pid, &wfd, &rfd))) {
		free(wbuf);
		return rc;
	}
	size_t woff = 0, rlen = 0, rcap = 1 << 16;
	char *rbuf = rl_malloc(rcap);
	if (!rbuf) {
		rc = RL_ESYS;
		goto fail;
	}
	double last = rl_now();
	while (rfd >= 0) {
		/* Once it has exited, all it wrote is in the pipe: read that, then
		 * stop, though something it left running may hold the pipe open. */
		int gone = exited(pid);
		if (gone && wfd >= 0) {
			close(wfd);
			wfd = -1;
		}
		struct pollfd p[2];
		int np = 0, wi = -1, ri;
		if (wfd >= 0) {
			p[np] = (struct pollfd){.fd = wfd, .events = POLLOUT};
			wi = np++;
		}
		p[np] = (struct pollfd){.fd = rfd, .events = POLLIN};
		ri = np++;
		int pr = poll(p, (nfds_t)np, gone ? 0 : 200);
		if (pr < 0 && errno != EINTR) {
			rc = rl_error_errno(RL_ESYS, "poll");
			goto fail;
		}
		if (pr <= 0)
			for (int i = 0; i < np; i++)
				p[i].revents = 0;
		if (x->timeout_s > 0 && rl_now() - last > x->timeout_s) {
			rc = rl_error(RL_EDATA,
				      "%s '%s': no progress for %g s (answered %zu of %zu items; "
				      "waiting for item %lld); stopped it",
				      x->what, e.cmd, x->timeout_s, e.got, n,
				      (long long)ids[e.got < n ? e.got : n - 1]);
			goto fail;
		}
		if (pr <= 0 && !gone)
			continue;
		if (wi >= 0 && p[wi].revents) {
			size_t chunk = wlen - woff < (1u << 16) ? wlen - woff : (1u << 16);
			ssize_t w = write(wfd, wbuf + woff, chunk);
			if (w > 0) {
				woff += (size_t)w;
				last = rl_now();
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				/* EPIPE: it stopped reading. Its answers (or its
				 * death) decide what happens next. */
				woff = wlen;
			}
			if (woff == wlen) {
				close(wfd);
				wfd = -1;
			}
		}
		ssize_t r = -1;
		if (p[ri].revents) {
			if (rcap - rlen < (1u << 15)) {
				if (rcap >= MAX_ANSWER_LINE) {
					rc = rl_error(
						RL_EDATA,
						"%s '%s': answer for item %lld is longer than "
						"%u MiB",
						x->what, e.cmd,
						(long long)ids[e.got < n ? e.got : n - 1],
						MAX_ANSWER_LINE >> 20);
					goto fail;
				}
				char *nb = rl_realloc_array(rbuf, rcap, 2);
				if (!nb) {
					rc = RL_ESYS;
					goto fail;
				}
				rbuf = nb;
				rcap *= 2;
			}
			r = read(rfd, rbuf + rlen, rcap - rlen - 1);
			if (r < 0 && errno != EAGAIN && errno != EINTR) {
				rc = rl_error_errno(RL_ESYS, "%s '%s': read", x->what, e.cmd);
				goto fail;
			}
			if (r > 0) {
				last = rl_now();
				size_t start = 0, old = rlen;
				rlen += (size_t)r;
				for (size_t i = old; i < rlen; i++)
					if (rbuf[i] == '\n') {
						if ((rc = on_line(&e, rbuf + start, i - start)))
							goto fail;
						start = i + 1;
					}
				memmove(rbuf, rbuf + start, rlen - start);
				rlen -= start;
			}
		}
		if (r == 0 || (gone && r < 0)) { /* the end of its output */
			close(rfd);
			rfd = -1;
			if (rlen) { /* a last line without its newline */
				if ((rc = on_line(&e, rbuf, rlen)))
					goto fail;
				rlen = 0;
			}
		}
	}
	if (wfd >= 0) {
		close(wfd);
		wfd = -1;
	}
	/* Its output is closed: it should be exiting. Once it has, what it
	 * left in its group is ended (while its exit status, not yet reaped,
	 * keeps the group's id from being reused), then it is reaped. */
	int st = 0;
	double grace = e.got < n ? 5.0 : x->timeout_s > 0 ? x->timeout_s : -1;
	double t0 = rl_now();
	while (!exited(pid) && (grace < 0 || rl_now() - t0 < grace))
		sleep_ms(10);
	if (!exited(pid)) {
		kill_reap(pid);
		rc = rl_error(RL_EDATA, "%s '%s': closed its output but did not exit; stopped it",
			      x->what, e.cmd);
		goto done;
	}
	end_group(pid, &st); /* it has exited: the rest of its group is ended */
	char how[96];
	describe_status(how, sizeof how, st);
	if (e.got < n) {
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			snprintf(how, sizeof how, "closed its output");
		rc = rl_error(RL_EDATA,
			      "%s '%s' %s after answering %zu of %zu items (no answer "
			      "for item %lld)",
			      x->what, e.cmd, how, e.got, n, (long long)ids[e.got]);
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		rc = rl_error(RL_EDATA, "%s '%s' %s after answering all %zu items", x->what, e.cmd,
			      how, n);
	}
	goto done;
fail:
	if (wfd >= 0)
		close(wfd);
	wfd = -1;
	if (rfd >= 0)
		close(rfd);
	rfd = -1;
	kill_reap(pid);
done:
	free(wbuf);
	free(rbuf);
	if (rc)
		for (size_t i = 0; i < n; i++) {
			cJSON_Delete(answers[i]);
			answers[i] = NULL;
		}
	return rc;
}
