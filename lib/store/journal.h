/* journal.h — crash-safe in-place changes to a model, and their undo journals.
 *
 * Every byte realign changes in a model directory goes through a transaction
 * (rl_txn): patches (tensor, sorted element indices, new stored bytes) are
 * first written with the old bytes to a hot journal inside the model
 * directory, which is synced before the model changes; see the numbered
 * invariants at the top of journal.c. The journal also goes to the caller's
 * output (a "journal" stream, rl-stream(5)), the record rl-rollback undoes.
 *
 * The hot journal, last.rlj and the state sidecar live in the model's
 * .realign folder (realign_dir.h); the state ids journals carry are
 * model_state.h's.
 */
#ifndef RL_JOURNAL_H
#define RL_JOURNAL_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

#include "store/model.h"
#include "store/model_state.h"
#include "store/stream.h"

/* ---- transactions ---- */

typedef struct rl_txn rl_txn;

typedef struct rl_txn_opts {
	const char *op;		  /* "apply", "rollback", "partial-rollback" */
	const char *tool;	  /* producing tool, e.g. "rl-apply" */
	const rl_model *source;	  /* where new bytes come from (NULL: none) */
	const char *expect_state; /* refuse unless the model is in this state (NULL: any) */
	int recover;		  /* 1: roll back a hot journal first (rl-rollback);
				     0: refuse when there is one (rl-apply) */
} rl_txn_opts;

typedef struct rl_txn_stats {
	uint64_t tensors, elements;
	uint64_t model_bytes;	/* stored bytes of the elements changed */
	uint64_t model_writes;	/* pwrite calls into the weight files (span.h) */
	uint64_t write_bytes;	/* bytes those calls wrote: model_bytes plus the
				   unchanged bytes between elements of a span */
	uint64_t journal_bytes; /* size of the journal stream */
	int recovered;		/* a hot journal was rolled back first */
	int stale_lock;		/* a dead writer's lock was taken over */
	char before[RL_STATE_HEX + 1], after[RL_STATE_HEX + 1];
} rl_txn_stats;

/* Takes the lock of m's directory and of its weight files (m opened
 * RL_MODEL_WRITE), deals with a hot journal (opts->recover), checks the state,
 * and starts the hot journal. RL_NO when another writer holds a lock; RL_EDATA for a hot journal (when
 * not recovering) or a state mismatch; RL_ESYS for I/O (read-only directory). */
int rl_txn_begin(rl_txn **tx, rl_model *m, const rl_txn_opts *opts);
/* The state the transaction starts from. */
const char *rl_txn_before(const rl_txn *tx);
/* Adds n elements of tensor t: idx strictly ascending (and above any index
 * given earlier for t, which must be the tensor patched last), newb their new
 * stored bytes (n x dtype size). When expect is not NULL the current bytes
 * must equal it (RL_EDATA otherwise: the model changed since). Elements whose
 * new bytes equal the current ones are still journaled (never skipped). */
int rl_txn_patch(rl_txn *tx, const rl_tensor *t, const uint64_t *idx, uint64_t n,
		 const uint8_t *newb, const uint8_t *expect);
/* An exact undo sets the state the model returns to. */
void rl_txn_set_after(rl_txn *tx, const char *state);
/* Finishes and syncs the hot journal, copies it to out ("-" = stdout, a path,
 * or NULL for none), changes the model, syncs it, records the new state and
 * commits. On any error before the commit the model is left (or put back) as
 * it was; if even that fails the hot journal stays for rl-rollback. Frees tx. */
int rl_txn_commit(rl_txn *tx, const char *out, rl_txn_stats *st);
/* Gives up before commit: removes the hot journal, releases the lock. */
void rl_txn_abort(rl_txn *tx);

/* Recovers dir's hot journal, if any, under the lock: a complete journal is
 * rolled back (old bytes restored, synced, state restored), a torn one (the
 * model was never touched) deleted. *what: 0 none, 1 rolled back, 2 torn. */
int rl_txn_recover(rl_model *m, int *what);

/* ---- reading journal streams ---- */

typedef struct rl_jpatch {
	char name[RL_MAX_NAME + 1];
	rl_dtype dtype;
	uint64_t numel, n;
	const uint8_t *idx;  /* n little-endian u64 */
	const uint8_t *oldb; /* n x dtype size */
	const uint8_t *newb; /* n x dtype size */
} rl_jpatch;

typedef struct rl_jr {
	rl_sr *r;
	int fd; /* the descriptor r reads when the journal opened it (-1: none) */
	char op[32];
	char shape_id[17];
	char before[RL_STATE_HEX + 1], after[RL_STATE_HEX + 1];
	uint64_t elements; /* from the summary record */
} rl_jr;

/* Opens a journal stream and reads its header. */
int rl_jr_open(rl_jr *j, const char *path);
/* Next patch into *p (valid until the next call); *p->name == 0 at the end,
 * once the summary and end records are verified. */
int rl_jr_next(rl_jr *j, rl_jpatch *p);
void rl_jr_close(rl_jr *j);
/* Little-endian u64 at p[i] (p need not be aligned: one unaligned load). */
static inline uint64_t rl_le64(const uint8_t *p, uint64_t i)
{
	uint64_t v;
	memcpy(&v, p + i * 8, 8);
	return le64toh(v);
}

#endif
