/* model_files.c — new model directories and side files (model_files.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fault.h"
#include "core/file.h"
#include "core/inputs.h"
#include "core/jsonl.h"
#include "store/model_files.h"

const char *const rl_model_side_files[] = {
	"tokenizer.json",	   "tokenizer_config.json",
	"special_tokens_map.json", "generation_config.json",
	"tokenizer.model",	   "chat_template.jinja",
	"added_tokens.json",	   NULL,
};

int rl_copy_file(const char *from, const char *to)
{
	char *buf;
	size_t len;
	int rc = rl_read_file(from, &buf, &len);
	if (rc)
		return rc;
	FILE *fp = fopen(to, "wb");
	if (!fp) {
		free(buf);
		return rl_error_errno(RL_ESYS, "'%s'", to);
	}
	int bad = fwrite(buf, 1, len, fp) != len;
	bad |= fflush(fp) != 0 || fsync(fileno(fp)) != 0;
	bad |= fclose(fp) != 0;
	free(buf);
	return bad ? rl_error_errno(RL_ESYS, "'%s': write error", to) : RL_OK;
}

int rl_model_copy_side_files(const char *src, const char *dst)
{
	for (const char *const *f = rl_model_side_files; *f; f++) {
		char a[4096], b[4096];
		if (snprintf(a, sizeof a, "%s/%s", src, *f) >= (int)sizeof a ||
		    snprintf(b, sizeof b, "%s/%s", dst, *f) >= (int)sizeof b)
			return rl_error(RL_USAGE, "'%s': path too long", src);
		if (!rl_path_present(a))
			continue; /* absent: skipped; a broken link: rl_copy_file says so */
		int rc = rl_copy_file(a, b);
		if (rc)
			return rc;
	}
	return RL_OK;
}

/* Removes the regular files of dir, then dir (nothing recursive: a directory
 * realign did not make is left alone). */
static void remove_dir_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		char p[4096];
		if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
			continue;
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISREG(st.st_mode))
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static int sync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return rl_error_errno(RL_ESYS, "'%s'", path);
	int bad = fsync(fd) != 0;
	close(fd);
	return bad ? rl_error_errno(RL_ESYS, "'%s': fsync", path) : RL_OK;
}

/* The directory holding path ("." for a plain name). */
static int sync_parent(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return rl_error(RL_USAGE, "'%s': path too long", path);
	char *slash = strrchr(buf, '/');
	if (!slash)
		return sync_path(".");
	if (slash == buf)
		slash[1] = 0;
	else
		*slash = 0;
	return sync_path(buf);
}

int rl_outdir_begin(rl_outdir *d, const char *final, int force)
{
	memset(d, 0, sizeof *d);
	d->force = force;
	int rc = rl_output_check_replace(final, 1); /* not an input, not a device */
	if (rc)
		return rc;
	struct stat st;
	if (!force && lstat(final, &st) == 0)
		return rl_error(RL_USAGE, "'%s' exists (use --force to replace it)", final);
	size_t n = strlen(final) + 32;
	if (!(d->final = rl_strdup(final)) || !(d->tmp = rl_malloc(n))) {
		free(d->final);
		return RL_ESYS;
	}
	for (size_t l = strlen(d->final); l > 1 && d->final[l - 1] == '/'; l--)
		d->final[l - 1] = '\0'; /* "out/" -> "out": the temporary one is a sibling */
	snprintf(d->tmp, n, "%s.tmp.%d", final, (int)getpid());
	if (mkdir(d->tmp, 0755) != 0) {
		rc = rl_error_errno(RL_ESYS, "'%s'", d->tmp);
		free(d->tmp);
		free(d->final);
		d->tmp = d->final = NULL;
		return rc;
	}
	return RL_OK;
}

int rl_outdir_commit(rl_outdir *d)
{
	int rc = sync_path(d->tmp);
	size_t n = strlen(d->final) + 32;
	char *old = rl_malloc(n);
	if (!old)
		rc = rc ? rc : RL_ESYS;
	int replaced = 0;
	struct stat st;
	if (!rc && d->force && lstat(d->final, &st) == 0 && S_ISDIR(st.st_mode) &&
	    rl_fault("state", "exchange directories") == 0 &&
	    renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->final, RENAME_EXCHANGE) == 0) {
		/* one step: final is the new directory, tmp the old one */
		remove_dir_files(d->tmp);
		rc = sync_parent(d->final);
		free(d->tmp);
		d->tmp = NULL;
		free(old);
		free(d->final);
		d->final = NULL;
		return rc;
	}
	if (!rc && d->force && lstat(d->final, &st) == 0) {
		/* no exchange (an older kernel or file system): move the old one
		 * aside first */
		snprintf(old, n, "%s.old.%d", d->final, (int)getpid());
		if (rename(d->final, old) != 0)
			rc = rl_error_errno(RL_ESYS, "'%s'", d->final);
		else
			replaced = 1;
	}
	if (!rc && rename(d->tmp, d->final) != 0) {
		rc = rl_error_errno(RL_ESYS, "'%s'", d->final);
		if (replaced)
			rename(old, d->final);
		replaced = 0;
	}
	if (!rc) {
		if (replaced)
			remove_dir_files(old);
		rc = sync_parent(d->final);
		free(d->tmp);
		d->tmp = NULL;
	}
	free(old);
	if (rc)
		rl_outdir_abort(d);
	free(d->final);
	d->final = NULL;
	return rc;
}

void rl_outdir_abort(rl_outdir *d)
{
	if (d->tmp)
		remove_dir_files(d->tmp);
	free(d->tmp);
	free(d->final);
	memset(d, 0, sizeof *d);
}
