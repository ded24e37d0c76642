/* model_state.h — the model state id: which bytes a model directory holds.
 *
 * The id (32 hex digits) names those bytes cheaply. A directory realign never
 * wrote has a stat-derived id: XXH3-128 of its shape id and, per weight file, name, size, inode, mtime and ctime (so
 * any outside write, copy or replacement changes it). Each commit computes
 * after = XXH3-128(before, the patches' names, indices and new bytes) — or,
 * for an exact undo, the state the undone journal started from — and records
 * it in .realign/state together with the weight files' stat after the commit;
 * the recorded id is believed only while those stats still match. Selections
 * and journals carry state ids, and the bytes they expect at each element are
 * verified as well, so a selection made for another state of the model is
 * refused without reading the whole model.
 */
#ifndef RL_MODEL_STATE_H
#define RL_MODEL_STATE_H

#include <xxhash.h>

#include "store/model.h"

#define RL_STATE_HEX 32

/* The state id of m (33 bytes with the NUL). RL_EDATA when a hot journal
 * exists (the bytes are in flux: run rl-rollback -m DIR to recover). */
int rl_model_state(const rl_model *m, char out[RL_STATE_HEX + 1]);

/* The same without the hot-journal check: for the writer holding the lock
 * (journal.c), which deals with a hot journal itself. */
int rl_model_state_locked(const rl_model *m, char out[RL_STATE_HEX + 1]);

/* Makes .realign/state.tmp as large as the sidecar can get, so that writing
 * the state afterwards (and on failure the old one) needs no new space: a
 * transaction calls it while the model is untouched, and a full disk then
 * fails it before it writes the model, not between the model's writes and a
 * recovery. */
int rl_model_state_reserve(const rl_model *m);

/* Records state in .realign/state with the weight files' current stat:
 * written over state.tmp (reserved or new), cut to length, fsync, rename,
 * directory fsync (fault class "state"). On failure state.tmp stays, still
 * reserved. */
int rl_model_state_write(const rl_model *m, const char *state);

/* A state id from its XXH3-128 hash. */
void rl_model_state_hex(XXH128_hash_t h, char out[RL_STATE_HEX + 1]);

#endif
