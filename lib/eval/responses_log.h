/* responses_log.h — the responses of a generation run, kept on disk as each
 * item finishes, so that a killed run loses nothing and --resume goes on.
 *
 * rl-eval -o FILE writes FILE (all responses, in id order) only when the run
 * is complete. Meanwhile every finished item is appended to FILE.partial as
 * one JSON line and flushed before the next step:
 *     {"id": 3, "prompt": "...", "response": "...", "prompt_tokens": 41,
 *      "new_tokens": 17, "truncated": false, "stopped": true,
 *      "ended_early": false}
 * (the prompt field takes the run's prompt field name). Lines appear in the
 * order items finish, not in id order. When FILE has been written the
 * partial file is removed.
 *
 * Resuming reads FILE.partial's complete lines (a torn last line, cut by a
 * kill during a write, is dropped and cut off the file), checks each against
 * the run's items (an id the run has, with the same prompt text, at most
 * once: anything else means the file belongs to another run, RL_EDATA), fills
 * those items' responses and generation counts, and appends what follows.
 * Without resuming, an existing FILE.partial is refused (RL_USAGE): it holds
 * an interrupted run's work, which a fresh run would throw away.
 */
#ifndef RL_RESPONSES_LOG_H
#define RL_RESPONSES_LOG_H

#include <stdio.h>

#include "eval/eval.h"

typedef struct rl_responses_log {
	char *path; /* FILE.partial */
	FILE *fp;   /* open for appending */
	const rl_eval *e;
} rl_responses_log;

/* Opens (creates) FILE.partial for the run e. resume: read it first (see
 * above), or, when there is none but FILE is there (a run that completed),
 * FILE; *resumed receives the number of items filled (may be NULL). */
int rl_responses_log_open(rl_responses_log *l, const char *file, rl_eval *e, int resume,
			  size_t *resumed);
/* Appends item it (its response final) and flushes. */
int rl_responses_log_add(rl_responses_log *l, const rl_eval_item *it);
/* Closes; remove = the run is complete and FILE written: delete the log (an
 * empty log, of a run that failed before its first response, goes too). */
int rl_responses_log_close(rl_responses_log *l, int remove);

#endif
