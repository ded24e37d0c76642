/* summary.c — closing summaries as JSON files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/inputs.h"
#include "core/jsonl.h"
#include "core/summary.h"
#include "core/util.h"

cJSON *rl_summary_new(const char *tool)
{
	cJSON *j = cJSON_CreateObject();
	if (j && !cJSON_AddStringToObject(j, "tool", tool)) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

int rl_summary_write(cJSON *j, const char *path, double seconds)
{
	int rc = rl_output_check_replace(path, 0); /* written by rename: never over a device */
	if (rc) {
		cJSON_Delete(j);
		return rc;
	}
	if (!j || !cJSON_AddNumberToObject(j, "seconds", seconds) ||
	    !cJSON_AddNumberToObject(j, "peak_rss_bytes", (double)rl_peak_rss())) {
		cJSON_Delete(j);
		return rl_error(RL_ESYS, "'%s': out of memory", path);
	}
	size_t n = strlen(path) + 5;
	char *tmp = rl_malloc(n);
	if (!tmp) {
		cJSON_Delete(j);
		return RL_ESYS;
	}
	snprintf(tmp, n, "%s.tmp", path);
	FILE *fp = fopen(tmp, "w");
	if (!fp)
		rc = rl_error_errno(RL_ESYS, "'%s'", tmp);
	if (!rc && (rc = rl_jsonl_write(fp, j)))
		rl_error_prefix(rc, "'%s'", tmp);
	if (fp && fclose(fp) != 0 && !rc)
		rc = rl_error_errno(RL_ESYS, "'%s': write error", tmp);
	if (!rc && rename(tmp, path) != 0)
		rc = rl_error_errno(RL_ESYS, "'%s': cannot rename to '%s'", tmp, path);
	if (rc && fp)
		unlink(tmp);
	free(tmp);
	cJSON_Delete(j);
	return rc;
}
