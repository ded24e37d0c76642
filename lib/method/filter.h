/* filter.h — the tensors a selection considers: candidate roles (model.h),
 * a layer range, and include/exclude regexes on the name (rl-select -L,
 * --include, --exclude). */
#ifndef RL_FILTER_H
#define RL_FILTER_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "store/model.h"

typedef struct rl_filter {
	int layer_lo, layer_hi; /* layers [lo, hi); hi < 0: no layer filter */
	pcre2_code *include;	/* NULL: everything */
	pcre2_code *exclude;	/* NULL: nothing */
	pcre2_match_data *md;
} rl_filter;

/* Compiles the regexes (NULL for none); RL_USAGE on a bad pattern. */
int rl_filter_init(rl_filter *f, int layer_lo, int layer_hi, const char *include,
		   const char *exclude);
void rl_filter_free(rl_filter *f);
/* 1 when tensor t passes: a candidate role, in the layer range, included and
 * not excluded by name. */
int rl_filter_pass(const rl_filter *f, const rl_tensor *t);

#endif
