/* restore.h — the restore step's plumbing: grad stream -> selection ->
 * select stream -> transaction, and journals -> undo transaction. The tools
 * rl-select, rl-apply and rl-rollback are thin shells over these calls, and
 * rl-rollback's partial rollback is rl_select_grad + rl_apply_selector, the
 * same calls rl-select | rl-apply make.
 *
 * Select stream (kind "select", rl-stream(5)): header with "model" (current,
 * with its state), "target" (with its state), "score", "seed", "budget"
 * {"mode","value"}, "k", "eligible", "considered", "nan_grad", "threshold"
 * (smallest selected score), "layer_end" (from the grad stream, -1 if none),
 * "within" (journal path or nil), "tensors" [{"name","n"}...]; then "sel"
 * records in tensor-name order, each {"name","dtype","numel","n","idx" (n
 * LE u64, ascending), "score" (n LE f32), "cur" and "tgt" (n stored elements
 * of the current and target model)}, at most 2^19 elements per record.
 */
#ifndef RL_RESTORE_H
#define RL_RESTORE_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "method/select.h"
#include "store/journal.h"
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

typedef struct rl_selection {
	rl_selector s;
	const rl_model *cur, *tgt;
	char cur_state[RL_STATE_HEX + 1], tgt_state[RL_STATE_HEX + 1];
	int layer_end; /* from the grad stream header; -1 when none */
	const char *within_path;
	const char *grad_path;
} rl_selection;

/* Loads the elements journal path restored into sel's within lists
 * (rl_selector_within_*); the journal must be for cur's shape. */
int rl_selection_within(rl_selection *sel, const char *path);

/* Reads a grad stream (path, "-" = stdin), feeding every tensor that passes
 * the filter to the selector (tensor id = index in cur's name-sorted list),
 * and finishes the selection. Refuses a stream for another model, a state
 * mismatch when the stream names the current state, and tensors missing from
 * either model or of another shape. sel->s must be initialised with
 * ntensors = cur->ntensors (rl_selection_init). */
int rl_selection_init(rl_selection *sel, const rl_model *cur, const rl_model *tgt,
		      const rl_sel_params *p);
int rl_select_grad(rl_selection *sel, const char *path, const rl_filter *f);
/* Without a grad stream (diff/random only): every candidate of layers
 * [0, layer_end) passing the filter. */
int rl_select_models(rl_selection *sel, int layer_end, const rl_filter *f);
void rl_selection_free(rl_selection *sel);

/* Writes the select stream. */
int rl_select_write(const rl_selection *sel, const char *out, const char *tool,
		    const rl_sel_params *p, const char *budget_mode, double budget_value);

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
