/* model_files.h — writing a new model directory safely, and the files of a
 * model directory that are not weights.
 *
 * A tool that makes a model (rl-train, rl-merge, rl-import) builds it in a
 * fresh directory beside its final place ("OUT.tmp.PID") and renames it in
 * only when every file is written and synced, so OUT never looks complete
 * while it is not: rl_outdir_begin refuses an existing OUT unless force is
 * set (then the new directory and the old OUT trade places in one
 * renameat2(RENAME_EXCHANGE), or, where that is not supported, the old OUT is
 * moved aside first, and the old one is removed once the new one is in
 * place), rl_outdir_commit renames, rl_outdir_abort removes what was written.
 */
#ifndef RL_MODEL_FILES_H
#define RL_MODEL_FILES_H

/* The non-weight files of a model directory (tokenizer, templates,
 * generation settings), NULL-terminated. */
extern const char *const rl_model_side_files[];

/* Copies those of src that exist into dst (each written, synced). */
int rl_model_copy_side_files(const char *src, const char *dst);

/* Copies a regular file (written, synced). */
int rl_copy_file(const char *from, const char *to);

typedef struct rl_outdir {
	char *final; /* OUT */
	char *tmp;   /* OUT.tmp.PID: where the files go */
	int force;
} rl_outdir;

/* RL_USAGE when final exists and !force; RL_ESYS when tmp cannot be made. */
int rl_outdir_begin(rl_outdir *d, const char *final, int force);
/* Syncs tmp, renames it to final (replacing an old final when forced). */
int rl_outdir_commit(rl_outdir *d);
/* Removes tmp's regular files and tmp (nothing recursive). */
void rl_outdir_abort(rl_outdir *d);

#endif
