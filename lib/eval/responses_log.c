/* responses_log.c — finished responses appended as they come (see
 * responses_log.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fault.h"
#include "core/file.h"
#include "core/inputs.h"
#include "core/json.h"
#include "core/jsonl.h"
#include "eval/responses_log.h"

static int int_field(const cJSON *o, const char *key, long long lo, long long hi, long long *v)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(x) || x->valuedouble != (double)(long long)x->valuedouble ||
	    x->valuedouble < (double)lo || x->valuedouble > (double)hi)
		return 0;
	*v = (long long)x->valuedouble;
	return 1;
}

/* One line of a log: checked against the run's items, then taken. */
static int take_line(rl_eval *e, const char *field, const char *path, long lineno, const char *s,
		     size_t len, char *seen)
{
	char what[PATH_MAX + 32];
	snprintf(what, sizeof what, "'%s' line %ld", path, lineno);
	cJSON *o = NULL;
	int rc = rl_json_parse(s, len, what, &o);
	if (rc)
		return rc;
	long long id = 0, pt = 0, nt = 0;
	/* the items' ids: a shard holds [u0, u1) */
	long long first = e->shard.count ? e->shard_u0 : 0;
	const cJSON *prompt = o ? cJSON_GetObjectItemCaseSensitive(o, field) : NULL;
	const cJSON *resp = o ? cJSON_GetObjectItemCaseSensitive(o, "response") : NULL;
	const cJSON *trunc = o ? cJSON_GetObjectItemCaseSensitive(o, "truncated") : NULL;
	const cJSON *early = o ? cJSON_GetObjectItemCaseSensitive(o, "ended_early") : NULL;
	if (!cJSON_IsObject(o) || !int_field(o, "id", 0, 1LL << 40, &id) ||
	    !int_field(o, "prompt_tokens", 0, 1LL << 30, &pt) ||
	    !int_field(o, "new_tokens", 0, 1LL << 30, &nt) || !cJSON_IsString(prompt) ||
	    !cJSON_IsString(resp) || !cJSON_IsBool(trunc) || !cJSON_IsBool(early)) {
		rc = rl_error(RL_EDATA, "'%s' line %ld: not a responses log line", path, lineno);
	} else if (id < first || id >= first + (long long)e->n) {
		rc = rl_error(RL_EDATA,
			      "'%s' line %ld: item %lld is not among this run's items %lld..%lld "
			      "(the log belongs to another run or shard)",
			      path, lineno, id, first, first + (long long)e->n - 1);
	} else if (seen[id - first]) {
		rc = rl_error(RL_EDATA, "'%s' line %ld: item %lld given twice", path, lineno, id);
	} else if (strcmp(prompt->valuestring, e->items[id - first].prompt) != 0) {
		rc = rl_error(RL_EDATA,
			      "'%s' line %ld: item %lld's prompt differs from the prompt file's "
			      "(the log belongs to another run)",
			      path, lineno, id);
	} else {
		rl_eval_item *it = &e->items[id - first];
		free(it->response);
		if (!(it->response = rl_strdup(resp->valuestring)))
			rc = RL_ESYS;
		it->prompt_tokens = (int)pt;
		it->new_tokens = (int)nt;
		it->truncated = cJSON_IsTrue(trunc);
		it->ended_early = cJSON_IsTrue(early);
		seen[id - first] = 1;
	}
	cJSON_Delete(o);
	return rc;
}

/* Reads the complete lines of path into e; cuts a torn last line off. */
static int resume_from(rl_eval *e, const char *field, const char *path, size_t *resumed,
		       int cut_torn)
{
	char *buf;
	size_t len;
	int rc = rl_read_file(path, &buf, &len);
	if (rc)
		return rc;
	char *seen = rl_calloc(e->n ? e->n : 1, 1);
	if (!seen) {
		free(buf);
		return RL_ESYS;
	}
	size_t pos = 0, n = 0;
	long lineno = 0;
	while (!rc) {
		char *nl = memchr(buf + pos, '\n', len - pos);
		if (!nl)
			break; /* a torn last line (or none) */
		lineno++;
		size_t l = (size_t)(nl - (buf + pos));
		if (l > 0) {
			rc = take_line(e, field, path, lineno, buf + pos, l, seen);
			n += !rc;
		}
		pos += l + 1;
	}
	if (!rc && pos < len && !cut_torn)
		rc = rl_error(RL_EDATA, "'%s': the last line is cut short", path);
	if (!rc && pos < len && cut_torn && truncate(path, (off_t)pos) != 0)
		rc = rl_error_errno(RL_ESYS, "'%s': cutting off the torn last line", path);
	free(seen);
	free(buf);
	if (!rc && resumed)
		*resumed = n;
	return rc;
}

int rl_responses_log_open(rl_responses_log *l, const char *file, rl_eval *e, int resume,
			  size_t *resumed)
{
	memset(l, 0, sizeof *l);
	l->e = e;
	size_t n = strlen(file);
	if (!(l->path = rl_malloc(n + sizeof ".partial")))
		return RL_ESYS;
	memcpy(l->path, file, n);
	memcpy(l->path + n, ".partial", sizeof ".partial");
	if (resumed)
		*resumed = 0;
	struct stat st;
	int exists = stat(l->path, &st) == 0;
	/* FILE is written by rename at the end: refused now rather than then */
	int rc = rl_output_check_replace(file, 0);
	if (!rc)
		rc = rl_output_check(l->path);
	if (!rc && exists && !resume)
		rc = rl_error(RL_USAGE,
			      "'%s' holds an interrupted run's responses: give --resume to go on "
			      "with it, or remove it",
			      l->path);
	else if (!rc && exists && !S_ISREG(st.st_mode))
		rc = rl_error(RL_EDATA, "'%s': not a regular file", l->path);
	else if (!rc && exists)
		rc = resume_from(e, e->opts.field, l->path, resumed, 1);
	else if (!rc && resume && stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
		rc = resume_from(e, e->opts.field, file, resumed, 0);
		rl_input_forget(file); /* this run's own output, written again at the end */
	}
	if (!rc && !(l->fp = fopen(l->path, "a")))
		rc = rl_error_errno(RL_ESYS, "'%s'", l->path);
	if (rc) {
		free(l->path);
		l->path = NULL;
	}
	return rc;
}

int rl_responses_log_add(rl_responses_log *l, const rl_eval_item *it)
{
	cJSON *o = rl_eval_response_json(l->e, it);
	if (!o)
		return rl_error(RL_ESYS, "out of memory");
	int rc = rl_jsonl_write(l->fp, o);
	cJSON_Delete(o);
	/* Flushed at once: the line survives the process being killed. */
	if (!rc && (fflush(l->fp) != 0 || rl_fault("responses", "log line flushed") != 0))
		rc = rl_error_errno(RL_ESYS, "'%s'", l->path);
	return rc;
}

int rl_responses_log_close(rl_responses_log *l, int remove)
{
	int rc = RL_OK;
	/* a run that failed before its first response keeps nothing to resume:
	 * an empty log would only block the next run */
	struct stat st;
	if (l->fp && fstat(fileno(l->fp), &st) == 0 && st.st_size == 0)
		remove = 1;
	if (l->fp && fclose(l->fp) != 0)
		rc = rl_error_errno(RL_ESYS, "'%s'", l->path);
	if (!rc && remove && l->path && unlink(l->path) != 0 && errno != ENOENT)
		rc = rl_error_errno(RL_ESYS, "'%s'", l->path);
	free(l->path);
	memset(l, 0, sizeof *l);
	return rc;
}
