/* realign_dir.c — paths in a model's .realign folder (see realign_dir.h). */
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "store/realign_dir.h"

void rl_realign_path(char *buf, size_t cap, const char *dir, const char *name)
{
	snprintf(buf, cap, "%s/.realign%s%s", dir, *name ? "/" : "", name);
}

int rl_journal_hot(const char *dir)
{
	char p[PATH_MAX];
	struct stat st;
	rl_realign_path(p, sizeof p, dir, "journal");
	return lstat(p, &st) == 0;
}
