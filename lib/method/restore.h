/* restore.h — a restore step's transactions: a selection or a select stream
 * applied to the model (rl-apply, and rl-rollback's partial rollback), and
 * journals undone (rl-rollback). Each is one journaled transaction
 * (journal.h); the select stream is selection.h's.
 */
#ifndef RL_RESTORE_H
#define RL_RESTORE_H

#include <stdint.h>

#include "method/selection.h"
#include "store/journal.h"
#include "store/model.h"

/* Applies a finished selection from source (which must be the selection's
 * target model, same state) to tx (partial rollback's path). */
int rl_apply_selector(rl_txn *tx, const rl_selection *sel, const rl_model *src);

/* Reads a select stream and applies it from src into m: checks the stream is
 * for m's shape and state and src's state, and verifies every element's
 * current and source bytes. dry: count only. out: the journal's destination.
 * The select stream is read completely (end record, checksum) before the
 * model changes. */
typedef struct rl_apply_report {
	uint64_t tensors, elements, bytes;
} rl_apply_report;
int rl_apply_select_stream(rl_model *m, const rl_model *src, const char *path, const char *out,
			   int dry, const char *tool, rl_txn_stats *st, rl_apply_report *rep);

/* Undoes journals paths[0..n) (applied in that order) in reverse, as one
 * transaction: the current bytes must be those the last journal touching an
 * element wrote; each element returns to what the first journal touching it
 * found. With force == 0 the model's state must be the last journal's
 * "after" and the journals must chain (each "before" the previous "after").
 * Memory: about 40 bytes per journaled element. */
int rl_rollback_journals(rl_model *m, const char *const *paths, int n, int force, const char *out,
			 const char *tool, rl_txn_stats *st);

#endif
