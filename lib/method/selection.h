/* selection.h — a restore step's selection: the elements a selector (select.h)
 * keeps from a grad stream, or from the two models alone, and the select
 * stream that carries them to rl-apply. rl-select is a thin shell over these
 * calls; rl-rollback's partial rollback makes its selection with them too.
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
#ifndef RL_SELECTION_H
#define RL_SELECTION_H

#include <stdint.h>

#include "method/filter.h"
#include "method/select.h"
#include "store/model.h"
#include "store/model_state.h"

#define RL_SEL_MAX ((uint64_t)1 << 19) /* elements per "sel" record */

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

#endif
