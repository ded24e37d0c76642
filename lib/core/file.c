/* file.c — opening the files realign reads (see file.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fault.h"
#include "core/file.h"
#include "core/inputs.h"

static const char *kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a plain file";
}

int rl_path_error(const char *path)
{
	int e = errno;
	struct stat st;
	if (e == ENOENT && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		char to[PATH_MAX];
		ssize_t n = readlink(path, to, sizeof to - 1);
		to[n > 0 ? n : 0] = '\0';
		return rl_error(RL_EDATA,
				"'%s': broken symbolic link (to '%s', which does not exist)", path,
				to);
	}
	errno = e;
	if (e == ENOENT || e == ENOTDIR || e == ELOOP || e == ENAMETOOLONG)
		return rl_error_errno(RL_EDATA, "'%s'", path);
	if (e == ENXIO && stat(path, &st) == 0) /* a socket, a device without a driver */
		return rl_error(RL_EDATA, "'%s': not a regular file (it is %s)", path,
				kind(st.st_mode));
	return rl_error_errno(RL_ESYS, "'%s'", path);
}

int rl_path_present(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int rl_open_regular(const char *path, int write, int *fd)
{
	*fd = -1;
	struct stat st;
	/* Look before opening: opening a device can have effects of its own. */
	if (stat(path, &st) != 0)
		return rl_path_error(path);
	if (!S_ISREG(st.st_mode))
		return rl_error(RL_EDATA, "'%s': not a regular file (it is %s)", path,
				kind(st.st_mode));
	/* O_NONBLOCK: it may have been replaced by a FIFO since */
	int f = open(path, (write ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (f < 0)
		return rl_path_error(path);
	int fl;
	if (fstat(f, &st) != 0 || (fl = fcntl(f, F_GETFL)) < 0) {
		int rc = rl_error_errno(RL_ESYS, "'%s'", path);
		close(f);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(f);
		return rl_error(RL_EDATA, "'%s': not a regular file (it is %s)", path,
				kind(st.st_mode));
	}
	if (fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		int rc = rl_error_errno(RL_ESYS, "'%s'", path);
		close(f);
		return rc;
	}
	rl_input_file(f, path);
	*fd = f;
	return RL_OK;
}

int rl_open_input(const char *path, int *fd)
{
	*fd = -1;
	struct stat st;
	if (stat(path, &st) != 0)
		return rl_path_error(path);
	if (S_ISDIR(st.st_mode))
		return rl_error(RL_EDATA, "'%s': is a directory", path);
	int f = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (f < 0)
		return rl_path_error(path);
	rl_input_file(f, path);
	*fd = f;
	return RL_OK;
}

/* Reads fd to its end into a NUL-terminated buffer; closes fd. */
static int read_all(int fd, const char *path, char **buf, size_t *len)
{
	struct stat st;
	size_t cap = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0
			     ? (size_t)st.st_size + 1
			     : 4096,
	       n = 0;
	char *p = rl_malloc(cap);
	if (!p) {
		close(fd);
		return RL_ESYS;
	}
	for (;;) {
		if (n + 1 == cap) {
			char *q = rl_realloc_array(p, cap, 2);
			if (!q) {
				free(p);
				close(fd);
				return RL_ESYS;
			}
			p = q;
			cap *= 2;
		}
		ssize_t got = read(fd, p + n, cap - n - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int rc = rl_error_errno(errno == EISDIR ? RL_EDATA : RL_ESYS,
						"'%s': read error", path);
			free(p);
			close(fd);
			return rc;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	p[n] = '\0';
	*buf = p;
	*len = n;
	return RL_OK;
}

int rl_read_file(const char *path, char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	int fd, rc = rl_open_regular(path, 0, &fd);
	return rc ? rc : read_all(fd, path, buf, len);
}

int rl_read_input(const char *path, char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	int fd, rc = rl_open_input(path, &fd);
	return rc ? rc : read_all(fd, path, buf, len);
}

int rl_write_text_file(const char *path, const char *text)
{
	size_t plen = strlen(path);
	char *tmp = rl_malloc(plen + 5);
	if (!tmp)
		return RL_ESYS;
	snprintf(tmp, plen + 5, "%s.tmp", path);
	int rc = RL_OK;
	FILE *fp = fopen(tmp, "wb");
	if (!fp) {
		rc = rl_error_errno(RL_ESYS, "'%s'", tmp);
	} else {
		size_t tl = strlen(text);
		int bad = fwrite(text, 1, tl, fp) != tl || fputc('\n', fp) == EOF ||
			  fflush(fp) != 0 || fsync(fileno(fp)) != 0;
		if (fclose(fp) != 0 || bad)
			rc = rl_error_errno(RL_ESYS, "'%s': write", tmp);
		else if (rename(tmp, path) != 0)
			rc = rl_error_errno(RL_ESYS, "'%s': rename to '%s'", tmp, path);
		if (rc)
			unlink(tmp);
	}
	free(tmp);
	return rc;
}

int rl_output_space_check(const char *path, uint64_t bytes)
{
	if (strcmp(path, "-") == 0)
		return RL_OK;
	/* the directory that will hold path */
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	struct statvfs vs;
	if (statvfs(dir, &vs) != 0)
		return RL_OK; /* the open reports a missing directory */
	uint64_t avail = (uint64_t)vs.f_bavail * vs.f_frsize;
	if (rl_fault("space", "statvfs"))
		avail = 0;
	struct stat st;
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1)
		avail += (uint64_t)st.st_size;
	if (avail >= bytes)
		return RL_OK;
	return rl_error(RL_ESYS,
			"'%s': needs about %.2f GiB, the file system holding it has %.2f GiB free",
			path, (double)bytes / (1 << 30), (double)avail / (1 << 30));
}
