/* inputs.c — the run's inputs and the check of outputs against them (see
 * inputs.h). A process reads a few dozen inputs at most: a list will do.
 * Each input is held open, so that its inode number cannot go to a new file
 * while it is recorded. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/inputs.h"

typedef struct input {
	dev_t dev;
	ino_t ino;
	int dir; /* a model directory (else a file) */
	int fd;	 /* held open */
	char *name;
} input;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static input *inputs;
static size_t ninputs, cap;

/* Never fails the caller: without memory or descriptors the input goes
 * unrecorded. */
static void record(int fd, const struct stat *st, int dir, const char *name)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < ninputs; i++)
		if (inputs[i].dev == st->st_dev && inputs[i].ino == st->st_ino &&
		    inputs[i].dir == dir) {
			pthread_mutex_unlock(&lock);
			return;
		}
	if (ninputs == cap) {
		size_t nc = cap ? 2 * cap : 16;
		input *p = realloc(inputs, nc * sizeof *p);
		if (!p) {
			pthread_mutex_unlock(&lock);
			return;
		}
		inputs = p, cap = nc;
	}
	char *copy = strdup(name);
	int held = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (copy && held >= 0)
		inputs[ninputs++] = (input){st->st_dev, st->st_ino, dir, held, copy};
	else {
		free(copy);
		if (held >= 0)
			close(held);
	}
	pthread_mutex_unlock(&lock);
}

void rl_input_file(int fd, const char *path)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		record(fd, &st, 0, path);
}

void rl_input_dir(const char *dir)
{
	struct stat st;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0)
		record(fd, &st, 1, dir);
	if (fd >= 0)
		close(fd);
}

void rl_input_forget(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < ninputs; i++)
		if (inputs[i].dev == st.st_dev && inputs[i].ino == st.st_ino) {
			free(inputs[i].name);
			close(inputs[i].fd);
			inputs[i--] = inputs[--ninputs];
		}
	pthread_mutex_unlock(&lock);
}

/* The recorded input st is, or NULL. The name is copied to buf. An input
 * counts only while its name still leads to it: one removed since has nothing
 * left to protect, and its inode number may have gone to a new file. */
static const char *find(const struct stat *st, int dir, char *buf, size_t cap_)
{
	const char *hit = NULL;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < ninputs && !hit; i++) {
		struct stat now;
		if (inputs[i].dev == st->st_dev && inputs[i].ino == st->st_ino &&
		    inputs[i].dir == dir && stat(inputs[i].name, &now) == 0 &&
		    now.st_dev == st->st_dev && now.st_ino == st->st_ino) {
			snprintf(buf, cap_, "%s", inputs[i].name);
			hit = buf;
		}
	}
	pthread_mutex_unlock(&lock);
	return hit;
}

/* Where path leads: its longest existing leading part resolved (links,
 * "..", "."), then the rest as written (a directory it would create inside a
 * model's .realign, which may not exist yet, is still seen to be there). */
static int resolve(const char *path, char *out, size_t cap_)
{
	char head[PATH_MAX], real[PATH_MAX];
	if (snprintf(head, sizeof head, "%s", path) >= (int)sizeof head)
		return -1;
	size_t cut = strlen(head);
	for (;;) {
		if (realpath(cut ? head : ".", real)) {
			const char *rest = path + cut;
			while (*rest == '/')
				rest++;
			int n = snprintf(out, cap_, "%s%s%s", strcmp(real, "/") ? real : "",
					 *rest ? "/" : "", rest);
			return n < 0 || (size_t)n >= cap_ ? -1 : 0;
		}
		if (!cut)
			return -1;
		char *slash = strrchr(head, '/');
		cut = slash ? (size_t)(slash - head) : 0;
		head[cut ? cut : (slash ? 1 : 0)] = '\0';
		if (slash == head) /* "/x": the root exists */
			cut = 1;
	}
}

static const char *kind(mode_t m)
{
	return S_ISDIR(m)    ? "a directory"
	       : S_ISFIFO(m) ? "a FIFO"
	       : S_ISCHR(m)  ? "a character device"
	       : S_ISBLK(m)  ? "a block device"
	       : S_ISSOCK(m) ? "a socket"
			     : "a regular file";
}

int rl_output_check_replace(const char *path, int dir)
{
	int rc = rl_output_check(path);
	struct stat st;
	if (rc || lstat(path, &st) != 0 || S_ISLNK(st.st_mode) ||
	    (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)))
		return rc;
	return rl_error(RL_USAGE,
			"'%s' is %s: refusing to replace it with the %s this writes (by rename)",
			path, kind(st.st_mode), dir ? "directory" : "file");
}

int rl_output_check(const char *path)
{
	char name[PATH_MAX];
	struct stat st;
	if (strcmp(path, "-") == 0) {
		if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
		    find(&st, 0, name, sizeof name))
			return rl_error(RL_USAGE,
					"standard output is '%s', an input of this run: refusing "
					"to write over it",
					name);
		return RL_OK;
	}
	if (stat(path, &st) == 0) {
		if (find(&st, 0, name, sizeof name))
			return rl_error(RL_USAGE,
					"'%s' is '%s', an input of this run: refusing to write "
					"over it",
					path, name);
		if (S_ISDIR(st.st_mode) && find(&st, 1, name, sizeof name))
			return rl_error(RL_USAGE,
					"'%s' is the input directory '%s': refusing to "
					"write over it",
					path, name);
	}
	/* inside a model's .realign: some component ".realign" of the resolved
	 * path whose parent is a recorded model directory */
	char full[PATH_MAX];
	if (resolve(path, full, sizeof full) != 0)
		return RL_OK;
	for (char *p = strstr(full, "/.realign"); p; p = strstr(p + 1, "/.realign")) {
		if (p[9] != '/' && p[9] != '\0')
			continue;
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%.*s", p == full ? 1 : (int)(p - full), full);
		if (stat(dir, &st) == 0 && find(&st, 1, name, sizeof name))
			return rl_error(RL_USAGE,
					"'%s' is inside '%s/.realign', the state directory of the "
					"input model: refusing to write there",
					path, name);
	}
	return RL_OK;
}
