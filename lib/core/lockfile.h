/* lockfile.h — one writer per model directory (git's lockfile, made crash-proof).
 *
 * The lock is the file <dir>/.realign/lock, created with O_CREAT|O_EXCL and
 * holding "pid\n". The creator also holds flock(LOCK_EX) on it for its whole
 * life, so a lock left behind by a killed writer (SIGKILL cannot be caught) is
 * recognised: nobody holds its flock. Taking over such a stale lock, and
 * every acquisition, ends with the check that the path still names the inode
 * we hold the flock on (another process may have removed and recreated it
 * meanwhile); otherwise we start again.
 *
 * The lock is removed by rl_lock_release, at exit (atexit) and on SIGINT,
 * SIGTERM, SIGHUP and SIGQUIT (the handler unlinks, restores the default
 * action and re-raises). It never protects data by itself: a killed writer
 * leaves a hot journal, which the next writer refuses or recovers (journal.h).
 */
#ifndef RL_LOCKFILE_H
#define RL_LOCKFILE_H

typedef struct rl_lock {
	char *path;
	int fd;
	int stale; /* 1 when acquisition took over a dead writer's lock */
} rl_lock;

/* Creates <dir>/.realign if needed and takes the lock. RL_NO when another
 * live process holds it (message names its pid), RL_ESYS on I/O errors
 * (e.g. a read-only model directory). */
int rl_lock_acquire(rl_lock *l, const char *dir);
/* Removes the lock (no-op when not held). */
void rl_lock_release(rl_lock *l);

#endif
