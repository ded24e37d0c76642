/* model_state.c — the model state id and its sidecar (see model_state.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fault.h"
#include "core/file.h"
#include "store/model_state.h"
#include "store/realign_dir.h"

void rl_model_state_hex(XXH128_hash_t h, char out[RL_STATE_HEX + 1])
{
	snprintf(out, RL_STATE_HEX + 1, "%016llx%016llx", (unsigned long long)h.high64,
		 (unsigned long long)h.low64);
}

/* The weight files' stat, one line each, in shard order. */
static int stat_text(const rl_model *m, char **out)
{
	size_t cap = 256 * ((size_t)m->nshards + 1), len = 0;
	char *s = rl_malloc(cap);
	if (!s)
		return RL_ESYS;
	s[0] = 0;
	for (int i = 0; i < m->nshards; i++) {
		struct stat st;
		const char *p = m->shards[i].path;
		if (stat(p, &st) != 0) {
			free(s);
			return rl_error_errno(RL_ESYS, "'%s': stat", p);
		}
		const char *base = strrchr(p, '/');
		base = base ? base + 1 : p;
		int n = snprintf(s + len, cap - len, "%.150s %lld %llu %lld.%09ld %lld.%09ld\n",
				 base, (long long)st.st_size, (unsigned long long)st.st_ino,
				 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
				 (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
		if (n < 0 || (size_t)n >= cap - len) {
			free(s);
			return rl_error(RL_ESYS, "stat text overflow");
		}
		len += (size_t)n;
	}
	*out = s;
	return RL_OK;
}

static int read_small(const char *path, char *buf, size_t cap, size_t *len)
{
	if (!rl_path_present(path))
		return RL_NO;
	int fd, rc = rl_open_regular(path, 0, &fd);
	if (rc)
		return rc;
	ssize_t n = read(fd, buf, cap - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return rl_error_errno(RL_ESYS, "'%s': read", path);
	}
	buf[n] = 0;
	*len = (size_t)n;
	return RL_OK;
}

int rl_model_state_locked(const rl_model *m, char out[RL_STATE_HEX + 1])
{
	char *st;
	int rc = stat_text(m, &st);
	if (rc)
		return rc;
	char path[PATH_MAX];
	rl_realign_path(path, sizeof path, m->dir, "state");
	size_t cap = strlen(st) + RL_STATE_HEX + 64, len = 0;
	char *buf = rl_malloc(cap);
	if (!buf) {
		free(st);
		return RL_ESYS;
	}
	rc = read_small(path, buf, cap, &len);
	if (rc == RL_OK && len == RL_STATE_HEX + 1 + strlen(st) && buf[RL_STATE_HEX] == '\n' &&
	    strcmp(buf + RL_STATE_HEX + 1, st) == 0) {
		memcpy(out, buf, RL_STATE_HEX);
		out[RL_STATE_HEX] = 0;
	} else if (rc == RL_OK || rc == RL_NO) {
		/* never written by realign, or written to since: stat-derived */
		char sid[17];
		rl_model_shape_id(m, sid);
		XXH3_state_t *h = XXH3_createState();
		if (!h) {
			free(st);
			free(buf);
			return rl_error(RL_ESYS, "out of memory");
		}
		XXH3_128bits_reset(h);
		XXH3_128bits_update(h, sid, 16);
		XXH3_128bits_update(h, st, strlen(st));
		rl_model_state_hex(XXH3_128bits_digest(h), out);
		XXH3_freeState(h);
		rc = RL_OK;
	}
	free(st);
	free(buf);
	return rc;
}

int rl_model_state(const rl_model *m, char out[RL_STATE_HEX + 1])
{
	if (rl_journal_hot(m->dir))
		return rl_error(
			RL_EDATA,
			"'%s': an interrupted write left a hot journal; run 'rl-rollback -m "
			"%s' to restore the model",
			m->dir, m->dir);
	return rl_model_state_locked(m, out);
}

int rl_model_state_reserve(const rl_model *m)
{
	char tmp[PATH_MAX];
	rl_realign_path(tmp, sizeof tmp, m->dir, "state.tmp");
	size_t n = 256 * ((size_t)m->nshards + 1) + RL_STATE_HEX + 1; /* stat_text's bound */
	char *zeros = rl_calloc(n, 1);
	if (!zeros)
		return RL_ESYS;
	int rc = RL_OK, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || rl_fault("state", "reserve"))
		rc = rl_error_errno(RL_ESYS, "'%s': cannot create", tmp);
	else
		rc = rl_fault_write_all(fd, zeros, n, tmp, "state");
	if (fd >= 0)
		close(fd);
	free(zeros);
	return rc;
}

int rl_model_state_write(const rl_model *m, const char *state)
{
	char *st;
	int rc = stat_text(m, &st);
	if (rc)
		return rc;
	char path[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX];
	rl_realign_path(path, sizeof path, m->dir, "state");
	rl_realign_path(tmp, sizeof tmp, m->dir, "state.tmp");
	rl_realign_path(dir, sizeof dir, m->dir, "");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644); /* over the reserve */
	if (fd < 0) {
		free(st);
		return rl_error_errno(RL_ESYS, "'%s': cannot create", tmp);
	}
	char head[RL_STATE_HEX + 2];
	memcpy(head, state, RL_STATE_HEX);
	head[RL_STATE_HEX] = '\n';
	rc = rl_fault_write_all(fd, head, RL_STATE_HEX + 1, tmp, "state");
	if (!rc)
		rc = rl_fault_write_all(fd, st, strlen(st), tmp, "state");
	off_t len = (off_t)(RL_STATE_HEX + 1 + strlen(st));
	free(st);
	if (!rc && ftruncate(fd, len) != 0)
		rc = rl_error_errno(RL_ESYS, "'%s': truncate", tmp);
	if (!rc && (rl_fault("state", "fsync") || fsync(fd) != 0))
		rc = rl_error_errno(RL_ESYS, "'%s': fsync", tmp);
	close(fd);
	if (!rc && (rl_fault("state", "rename") || rename(tmp, path) != 0))
		rc = rl_error_errno(RL_ESYS, "'%s': rename", tmp);
	if (!rc)
		rc = rl_fault_fsync_dir(dir, "state");
	return rc;
}
