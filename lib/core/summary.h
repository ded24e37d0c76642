/* summary.h — a tool's closing summary as one JSON object (--summary FILE).
 *
 * A tool that ends with a human summary on stderr also writes it, as numbers,
 * for scripts (rl-recover reads these files, never stderr):
 *
 *     cJSON *j = rl_summary_new("rl-apply");
 *     cJSON_AddNumberToObject(j, "elements", (double)st.elements);
 *     if (o.summary && (rc = rl_summary_write(j, o.summary, rl_now() - t0)))
 *             rl_die_err(rc);
 *
 * Each tool's man page lists its keys. Counts are exact up to 2^53.
 */
#ifndef RL_SUMMARY_H
#define RL_SUMMARY_H

#include <cJSON.h>

#include "core/options.h"

/* {"tool": tool}; NULL when out of memory (rl_summary_write then fails). */
cJSON *rl_summary_new(const char *tool);

/* Adds "seconds" (as given) and "peak_rss_bytes" (this process), then writes
 * j as one line to path through path.tmp renamed into place: a reader finds
 * the whole summary or none. Frees j. */
int rl_summary_write(cJSON *j, const char *path, double seconds);

/* --summary FILE, declared once (options.h); a file, since stdout carries the
 * tool's stream. */
#define RL_OPT_SUMMARY(p)                                                                          \
	RL_OPT_CALL(0, "summary", "FILE", rl_opt_file, p,                                          \
		    "also write the summary as one JSON object to FILE (the keys are in the man "  \
		    "page)")

#endif
