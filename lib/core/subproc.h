/* subproc.h — a JSON-lines conversation with an external command (judges,
 * metrics). The command gets one request line per item on its stdin and must
 * answer with one JSON object line per item, in the same order, on its stdout.
 *
 * The exchange never deadlocks on pipes: requests are written and answers read
 * concurrently (non-blocking descriptors under poll()), so a command that
 * answers each line as it comes, one that reads everything first, and one that
 * writes a lot before it reads all work alike. The command's stderr is ours.
 *
 * Failures are RL_EDATA with a message naming the command and the item:
 *   - an answer that is not a JSON object, or not valid UTF-8;
 *   - an answer whose "id" is missing or is not the id of the item expected
 *     next (answers must come in input order; each echoes its item's id);
 *   - the command exiting, or closing its stdout, before answering every item;
 *   - more answers than items; a nonzero exit status or death by a signal even
 *     after all answers came (a judge that failed is not trusted);
 *   - no progress (no byte read or written) for timeout_s seconds, when
 *     timeout_s > 0: the command is killed.
 * A command that cannot be started is RL_ESYS.
 *
 * The command runs in its own process group. Once it has exited, what it
 * wrote is read and no more is waited for (a background process it left
 * may hold the pipe open), and its group is ended: SIGTERM, a short grace,
 * SIGKILL; the same when it is stopped (a failure, the timeout). Nothing it
 * started is left running, unless it left the group itself (setsid).
 */
#ifndef RL_SUBPROC_H
#define RL_SUBPROC_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Called after each answer (done of n) so a tool can show progress. */
typedef void (*rl_exchange_progress)(void *ctx, size_t done, size_t n);

typedef struct rl_exchange {
	const char *cmd;  /* run as /bin/sh -c cmd */
	const char *what; /* "judge", "metric": for messages */
	double timeout_s; /* 0: wait as long as it takes */
	rl_exchange_progress progress;
	void *progress_ctx;
} rl_exchange;

/* Sends requests[i] (one JSON text each, without newline) for the n items
 * whose ids are ids[i], and fills answers[i] with the parsed answer objects
 * (the caller frees each with cJSON_Delete). On failure every answers[i] is
 * NULL. */
int rl_exchange_run(const rl_exchange *x, char *const *requests, const int64_t *ids, size_t n,
		    cJSON **answers);

#endif
