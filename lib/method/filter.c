/* filter.c — which candidate tensors a selection considers (see filter.h). */
#include <string.h>

#include "core/error.h"
#include "method/filter.h"

static pcre2_code *compile(const char *pat, int *rc)
{
	int err;
	PCRE2_SIZE off;
	pcre2_code *c = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
	if (!c) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof msg);
		*rc = rl_error(RL_USAGE, "bad regular expression '%s' at offset %zu: %s", pat,
			       (size_t)off, (const char *)msg);
	}
	return c;
}

int rl_filter_init(rl_filter *f, int layer_lo, int layer_hi, const char *include,
		   const char *exclude)
{
	int rc = RL_OK;
	memset(f, 0, sizeof *f);
	f->layer_lo = layer_lo;
	f->layer_hi = layer_hi;
	if (include && !(f->include = compile(include, &rc)))
		return rc;
	if (exclude && !(f->exclude = compile(exclude, &rc))) {
		rl_filter_free(f);
		return rc;
	}
	f->md = pcre2_match_data_create(4, NULL);
	if (!f->md) {
		rl_filter_free(f);
		return rl_error(RL_ESYS, "out of memory");
	}
	return RL_OK;
}

void rl_filter_free(rl_filter *f)
{
	pcre2_code_free(f->include);
	pcre2_code_free(f->exclude);
	pcre2_match_data_free(f->md);
	memset(f, 0, sizeof *f);
}

static int matches(const rl_filter *f, pcre2_code *c, const char *s)
{
	return pcre2_match(c, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, f->md, NULL) >= 0;
}

int rl_filter_pass(const rl_filter *f, const rl_tensor *t)
{
	if (!rl_role_is_candidate(t->role))
		return 0;
	if (f->layer_hi >= 0 && (t->layer < f->layer_lo || t->layer >= f->layer_hi))
		return 0;
	if (f->include && !matches(f, f->include, t->name))
		return 0;
	if (f->exclude && matches(f, f->exclude, t->name))
		return 0;
	return 1;
}
