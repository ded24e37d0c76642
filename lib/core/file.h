/* file.h — opening the files realign reads.
 *
 * Two kinds of input, decided per input and documented in the man pages:
 *
 *   Regular files: everything in a model directory (config.json, the index,
 *   the shards, tokenizer and generation files), the journal and state files
 *   in its .realign directory. They are opened without blocking (O_NONBLOCK:
 *   opening a FIFO that has no writer would wait forever) and refused unless
 *   they are regular files, so a FIFO, device or socket in a model's place is
 *   a clear error (RL_EDATA), never a hang.
 *
 *   Inputs a tool documents it reads as a stream: record streams and JSON
 *   lines (prompts, responses, selections, journals to undo), "-" for stdin,
 *   and the small files a user names on the command line (templates, refusal
 *   lists). These may be pipes and FIFOs (<(...) process substitution): they
 *   are opened as given and may wait for a writer, as cat does. A directory
 *   is refused.
 *
 * For both, a path that does not resolve because it is a symbolic link whose
 * target is missing is named as a broken link (with its target), not as a
 * missing file.
 */
#ifndef RL_FILE_H
#define RL_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Opens path read-only (or read-write when write is 1) as a regular file,
 * never blocking; *fd is blocking again on return. RL_EDATA for a missing
 * file, a broken link or another kind of file; RL_ESYS for other errors. */
int rl_open_regular(const char *path, int write, int *fd);

/* Opens path read-only as an input that may be a pipe (may block until a
 * writer comes). RL_EDATA for a missing file, a broken link or a directory. */
int rl_open_input(const char *path, int *fd);

/* Records the error for path after a failed open() or stat() (errno set):
 * a broken symbolic link is named as such; a missing path is RL_EDATA, other
 * errors (permissions, I/O) RL_ESYS. Returns the code. */
int rl_path_error(const char *path);

/* 1 when path names a directory entry, even a broken symbolic link (so that
 * optional files are read, and a broken one reported, rather than skipped). */
int rl_path_present(const char *path);

/* Reads the regular file path whole into a NUL-terminated buffer (*len
 * excludes the NUL). */
int rl_read_file(const char *path, char **buf, size_t *len);

/* Same for an input that may be a pipe (rl_open_input). */
int rl_read_input(const char *path, char **buf, size_t *len);

/* Writes text and a newline to path through path.tmp, synced, then renamed
 * over path: a reader sees the old file or the whole new one. */
int rl_write_text_file(const char *path, const char *text);

/* Refuses, before any work, an output that cannot fit: RL_ESYS when the file
 * system that will hold path has fewer than bytes free (counting the bytes of
 * a file already at path, which the output replaces). "-" and a file system
 * that cannot be asked pass. Fault class "space" (fault.h) simulates a full
 * file system. An hour of gradient is not spent to fail at its first write. */
int rl_output_space_check(const char *path, uint64_t bytes);

#endif
