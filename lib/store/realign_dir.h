/* realign_dir.h — the folder realign keeps inside a model directory.
 *
 * Files in <model>/.realign/ (same filesystem as the weights, so a rename is
 * atomic and recovery never depends on the user's copy of the journal):
 *   lock      one writer at a time (lockfile.h)
 *   journal   the hot journal: exists only while a transaction is in flight or
 *             after one was interrupted (journal.h)
 *   last.rlj  the last committed transaction's journal (the commit renames
 *             journal -> last.rlj); a spare copy of the newest undo record
 *   state     the model state sidecar (model_state.h)
 */
#ifndef RL_REALIGN_DIR_H
#define RL_REALIGN_DIR_H

#include <stddef.h>

/* "<dir>/.realign/<name>" into buf (name "" : the folder itself). */
void rl_realign_path(char *buf, size_t cap, const char *dir, const char *name);

/* 1 when dir has a hot journal (an interrupted or running write). */
int rl_journal_hot(const char *dir);

#endif
