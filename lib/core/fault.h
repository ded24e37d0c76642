/* fault.h — fault injection for crash and I/O-error tests (journal.c's I/O).
 *
 * Every durable I/O step of a model transaction (journal writes, model
 * pwrites, fsyncs, renames, unlinks) first calls rl_fault(class). With the
 * environment variable unset this is one branch. RL_FAULT selects a fault:
 *   RL_FAULT=kill:N          SIGKILL this process at the N-th point (1-based)
 *   RL_FAULT=enospc:CLASS:N  the N-th point of CLASS fails with ENOSPC
 *   RL_FAULT=eio:CLASS:N     ... with EIO
 *   RL_FAULT=eio:CLASS:N+    the N-th point of CLASS and every later one fail
 *                            (a failure, then the failure of its recovery)
 * CLASS is one of journal (hot journal and its directory), model (pwrite and
 * fsync of the weight files, and the read-back of a span's bytes before its
 * pwrite), output (the journal copy on stdout / -j), state
 * (the state sidecar, the commit rename), responses (a line of rl-eval's
 * responses log, eval/responses_log.h), space (the free-space check before a
 * large output, file.h: a fault reports a full file system), or any. RL_FAULT_TRACE=FILE appends
 * "N CLASS LABEL" for each point reached, so a test can count the points and
 * then kill at each one.
 */
#ifndef RL_FAULT_H
#define RL_FAULT_H

#include <stddef.h>

/* Returns 0 to go on, or -1 with errno set (ENOSPC, EIO) to simulate a
 * failed call; never returns for kill. label names the step (for traces). */
int rl_fault(const char *cls, const char *label);

/* Durable steps behind their fault point (RL_ESYS with a message on failure):
 * rl_write_all (util.h) at label "write", and fsync(2) of a directory at
 * label "fsync-dir". */
int rl_fault_write_all(int fd, const void *buf, size_t n, const char *what, const char *cls);
int rl_fault_fsync_dir(const char *dir, const char *cls);

#endif
