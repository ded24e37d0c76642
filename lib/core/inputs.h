/* inputs.h — no output lands on an input.
 *
 * A run's inputs are recorded as they are opened: every file read through
 * file.h (model files, configs, tokenizers, the state and journals in
 * .realign; prompts and other user files), every stream read by name, and
 * every model directory (rl_model_open). Before a tool creates or truncates
 * an output, rl_output_check refuses (RL_USAGE) a path that resolves (through
 * symbolic links, hard links, "..", another mount of the same file system) to
 *   - a recorded input file (the same device and inode): `rl-apply -j SHARD`
 *     would truncate the model it is changing;
 *   - a recorded model directory itself (rl-train's OUT replacing its input);
 *   - anything inside a recorded model's state directory <model>/.realign
 *     (its lock, hot journal, last.rlj and state sidecar are realign's own).
 * "-" (standard output) is checked too: `>> model.safetensors` is refused
 * before a byte is written. The library's writers call it (streams, journal
 * copies, rl-eval's saved responses, model directories); tools call it early
 * for outputs they write late, so the refusal comes before the work.
 *
 * Writers that put a new file (or directory) in place by rename also call
 * rl_output_check_replace: renaming over a device or FIFO would replace it
 * (`rl-eval -o /dev/null`, run as root, replaced /dev/null with a file).
 */
#ifndef RL_INPUTS_H
#define RL_INPUTS_H

/* Records the file open on fd (named path in messages) as an input; a
 * descriptor that is not a regular file (a pipe, a terminal) is ignored. */
void rl_input_file(int fd, const char *path);

/* Records dir as an input directory, a model's or an adapter's (and so its
 * .realign as off limits). */
void rl_input_dir(const char *dir);

/* Forgets path as an input: a file the run reads back because it is its own
 * output (rl-eval --resume reading the responses FILE it rewrites). */
void rl_input_forget(const char *path);

/* RL_OK, or RL_USAGE naming the output and the input it would destroy. */
int rl_output_check(const char *path);

/* rl_output_check, and path must be absent or a regular file (a directory
 * when dir is 1): RL_USAGE naming what it is otherwise. */
int rl_output_check_replace(const char *path, int dir);

#endif
