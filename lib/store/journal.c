/* journal.c — transactions on a model directory (see journal.h).
 *
 * NOTES ON THE DESIGN OF THE JOURNAL (read these before changing the code)
 *
 * A transaction changes some elements of some tensors of a model in place.
 * Its states, in order:
 *
 *   OPEN      lock held, hot journal being written; model untouched
 *   SYNCED    hot journal complete (end record, checksum) and fsync'ed, its
 *             directory entry fsync'ed; model untouched
 *   WRITING   model bytes being changed (pwrite)
 *   DURABLE   model fsync'ed, state sidecar says "after"
 *   COMMITTED hot journal renamed to last.rlj, directory fsync'ed; lock released
 *
 * Invariants:
 *
 *  1. No byte of a weight file changes before the hot journal holding the
 *     old bytes of every element to be changed is complete and fsync'ed, and
 *     the directory holding it is fsync'ed (so the journal survives a power
 *     loss, not only a process crash). The journal is written in full first
 *     and read back from disk to drive the writes: what is applied is what
 *     was journaled, nothing else.
 *
 *  2. Weight files are changed only by pwrite(2) of spans (span.h), within
 *     the data section, through a descriptor on the same file the read-only
 *     MAP_SHARED view maps. A span runs from a journaled element to a
 *     journaled element of one tensor and covers no page its elements do not
 *     touch. Its bytes that belong to no journaled element are read back from
 *     the file just before (under the lock) and written with the values they
 *     hold, so only journaled elements ever change value, and a span torn
 *     anywhere (kill, short write, power loss) leaves each element old or new
 *     and every other byte as it was: the states recovery (invariant 4)
 *     repairs. Never truncate, never rewrite a whole mapped file (the
 *     official safetensors library once zero-filled files that way), never
 *     create a new file in its place.
 *
 *  3. A hot journal (.realign/journal) exists exactly while a transaction has
 *     not committed. Its presence means the model's bytes may be anywhere
 *     between "before" and "after": readers (rl_model_state) refuse, rl-apply
 *     refuses, rl-rollback (rl_txn_recover) rolls it back. The commit point is
 *     the rename of the hot journal to last.rlj: before it, recovery restores
 *     "before"; after it, the transaction is done.
 *
 *  4. Recovery is idempotent: it writes the old bytes of every journaled
 *     element (whether or not the interrupted writer got to it), fsyncs the
 *     weight files, restores the state sidecar to "before", and only then
 *     deletes the hot journal. A crash during recovery leaves the hot journal
 *     for the next recovery. A torn hot journal (no end record, bad checksum)
 *     cannot have reached SYNCED, so by invariant 1 the model is untouched and
 *     the journal is simply deleted.
 *
 *  5. The state sidecar is written (temp file, fsync, rename, directory
 *     fsync) after the model is durable and before the commit rename, so a
 *     committed transaction always has its "after" state recorded, and an
 *     uncommitted one is rolled back together with the sidecar (invariant 4).
 *     The temp file is made full size while the model is still untouched
 *     (SYNCED), and the sidecar written over it: a full disk fails the
 *     transaction before WRITING (the message says the model was not
 *     changed), never between WRITING and a recovery that needs space.
 *
 *  6. The caller's copy of the journal (stdout or -j FILE) is written and, for
 *     a regular file, fsync'ed while the model is still untouched (SYNCED): a
 *     failure there (EPIPE, ENOSPC) aborts with the model unchanged, and a
 *     committed transaction always has a complete copy. A copy whose
 *     transaction did not commit describes a change that is not in the model;
 *     rl-rollback refuses it, since its state and bytes do not match.
 *
 *  7. One writer at a time: the lock (lockfile.h) is taken before the hot
 *     journal is looked at and released after the commit (or abort). A
 *     writer killed with the lock held leaves a lock nobody flocks; the next
 *     writer takes it over, and then finds the hot journal (invariant 3).
 *     Each weight file is flocked too, so that directories sharing weight
 *     files (written with --allow-linked: model.h) still have one writer.
 *
 *  8. Any error after WRITING began is handled in-process by recovery
 *     (invariant 4); if that fails too, the hot journal stays and the
 *     message says to run rl-rollback -m DIR.
 *
 * Every durable step calls rl_fault() first (fault.h), so tests can kill the
 * process or fail the call at each step and check invariants 1-8.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/error.h"
#include "core/fault.h"
#include "core/file.h"
#include "core/inputs.h"
#include "core/lockfile.h"
#include "core/span.h"
#include "core/util.h"
#include "store/journal.h"
#include "store/model_state.h"
#include "store/realign_dir.h"
#include "store/stream_model.h"

#define PATCH_MAX ((uint64_t)1 << 19) /* elements per journal record (<= 8 MiB) */

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- reading journals ---- */

static int getstr(const msgpack_object *map, const char *key, const char *what, char *buf,
		  size_t cap)
{
	const msgpack_object *o = rl_obj_get(map, key);
	if (!o)
		return rl_error(RL_EDATA, "%s: missing '%s'", what, key);
	return rl_obj_strcpy(o, buf, cap);
}

/* Reads the header of the journal stream j->r (closing it on error). */
static int jr_header(rl_jr *j)
{
	int rc = RL_OK;
	const msgpack_object *h = rl_sr_header(j->r);
	const msgpack_object *mo = rl_obj_get(h, "model");
	const char *what = rl_sr_path(j->r);
	if (!mo || mo->type != MSGPACK_OBJECT_MAP)
		rc = rl_error(RL_EDATA, "'%s': journal header lacks 'model'", what);
	if (!rc)
		rc = getstr(mo, "shape_id", what, j->shape_id, sizeof j->shape_id);
	if (!rc)
		rc = getstr(h, "op", what, j->op, sizeof j->op);
	if (!rc)
		rc = getstr(h, "before", what, j->before, sizeof j->before);
	if (!rc && strlen(j->before) != RL_STATE_HEX)
		rc = rl_error(RL_EDATA, "'%s': bad 'before' state", what);
	if (rc)
		rl_jr_close(j);
	return rc;
}

int rl_jr_open(rl_jr *j, const char *path)
{
	memset(j, 0, sizeof *j);
	j->fd = -1;
	int rc = rl_sr_open(&j->r, path, "journal");
	return rc ? rc : jr_header(j);
}

/* The hot journal: a regular file (anything else in its place, a FIFO, must
 * not hang recovery: it is refused as a torn journal would be). */
static int hot_open(rl_jr *j, const char *path)
{
	memset(j, 0, sizeof *j);
	int rc = rl_open_regular(path, 0, &j->fd);
	if (!rc && (rc = rl_sr_open_fd(&j->r, j->fd, path, "journal")))
		rl_jr_close(j);
	return rc ? rc : jr_header(j);
}

int rl_jr_next(rl_jr *j, rl_jpatch *p)
{
	const msgpack_object *rec;
	memset(p, 0, sizeof *p);
	for (;;) {
		int rc = rl_sr_next(j->r, &rec);
		if (rc)
			return rc;
		const char *what = rl_sr_path(j->r);
		if (!rec) {
			if (!j->after[0])
				return rl_error(RL_EDATA, "'%s': journal has no summary record",
						what);
			return RL_OK;
		}
		size_t tl;
		const char *t = rl_rec_type(rec, &tl);
		if (t && tl == 7 && memcmp(t, "summary", 7) == 0) {
			rc = getstr(rec, "after", what, j->after, sizeof j->after);
			if (!rc && strlen(j->after) != RL_STATE_HEX)
				rc = rl_error(RL_EDATA, "'%s': bad 'after' state", what);
			if (!rc)
				rc = rl_obj_uint(rec, "elements", what, &j->elements);
			if (rc)
				return rc;
			continue;
		}
		if (!t || tl != 5 || memcmp(t, "patch", 5) != 0)
			return rl_error(RL_EDATA, "'%s': unexpected record '%.*s' in a journal",
					what, t ? (int)tl : 1, t ? t : "?");
		if (j->after[0])
			return rl_error(RL_EDATA, "'%s': patch after the summary", what);
		char dt[16];
		const void *ib, *ob, *nb;
		size_t il, ol, nl;
		if ((rc = getstr(rec, "name", what, p->name, sizeof p->name)) ||
		    (rc = getstr(rec, "dtype", what, dt, sizeof dt)) ||
		    (rc = rl_obj_uint(rec, "numel", what, &p->numel)) ||
		    (rc = rl_obj_uint(rec, "n", what, &p->n)) ||
		    (rc = rl_obj_bin(rec, "idx", what, &ib, &il)) ||
		    (rc = rl_obj_bin(rec, "old", what, &ob, &ol)) ||
		    (rc = rl_obj_bin(rec, "new", what, &nb, &nl)))
			return rc;
		if (rl_dtype_parse(dt, strlen(dt), &p->dtype) != 0)
			return rl_error(RL_EDATA, "'%s': unknown dtype '%s'", what, dt);
		size_t es = rl_dtype_size(p->dtype);
		if (p->n > PATCH_MAX || il != p->n * 8 || ol != p->n * es || nl != p->n * es)
			return rl_error(RL_EDATA,
					"'%s': patch of '%s': sizes do not match n = %llu", what,
					p->name, (unsigned long long)p->n);
		p->idx = ib;
		p->oldb = ob;
		p->newb = nb;
		for (uint64_t i = 0; i < p->n; i++)
			if (rl_le64(p->idx, i) >= p->numel ||
			    (i && rl_le64(p->idx, i) <= rl_le64(p->idx, i - 1)))
				return rl_error(RL_EDATA,
						"'%s': patch of '%s': indices out of range or "
						"not ascending",
						what, p->name);
		return RL_OK;
	}
}

void rl_jr_close(rl_jr *j)
{
	rl_sr_close(j->r);
	j->r = NULL;
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
}

/* ---- applying patches to the weight files ---- */

/* Checks a patch against m: tensor present with the same dtype and numel. */
static int patch_tensor(const rl_model *m, const rl_jpatch *p, const char *what,
			const rl_tensor **t)
{
	*t = rl_model_find(m, p->name);
	if (!*t)
		return rl_error(RL_EDATA, "'%s': tensor '%s' is not in '%s'", what, p->name,
				m->dir);
	if ((*t)->dtype != p->dtype || (*t)->numel != p->numel)
		return rl_error(
			RL_EDATA, "'%s': tensor '%s' is %s[%llu] in the journal, %s[%llu] in '%s'",
			what, p->name, rl_dtype_name(p->dtype), (unsigned long long)p->numel,
			rl_dtype_name((*t)->dtype), (unsigned long long)(*t)->numel, m->dir);
	return RL_OK;
}

/* Span writes (span.h): a span's bytes are built in a buffer of at most
 * SPAN_MAX bytes; every KICK_BYTES written to a shard, the range written
 * since the last kick is handed to writeback (sync_file_range), so the disk
 * works while the next spans are built and the final fsync finds little left
 * to do (and the dirty pages of a 13 GB model never pile up to the kernel's
 * throttling limits). */
#define SPAN_MAX ((uint64_t)4 << 20)
#define KICK_BYTES ((uint64_t)64 << 20)

typedef struct shard_io {
	uint8_t touched;
	uint64_t kick_lo, kick_hi, kick_bytes; /* written since the last kick */
} shard_io;

typedef struct span_ctx {
	uint64_t page;
	uint8_t *buf;  /* SPAN_MAX */
	uint64_t *idx; /* PATCH_MAX decoded indices */
	shard_io *io;  /* [nshards] */
	uint64_t *bytes, *writes, *wbytes;
} span_ctx;

/* Starts writeback of what was written to shard s since the last kick.
 * Advisory: an I/O error surfaces in the fsync that follows. */
static void kick(const rl_st_file *f, shard_io *io)
{
	if (io->kick_bytes < KICK_BYTES)
		return;
	(void)sync_file_range(f->fd, (off_t)io->kick_lo, (off_t)(io->kick_hi - io->kick_lo),
			      SYNC_FILE_RANGE_WRITE);
	io->kick_bytes = 0;
}

/* Writes span sp of elements idx[] of tensor t (bytes src, es each) into f:
 * one pwrite; a span of several runs is first read back from the file and the
 * runs laid over it (invariant 2). */
static int write_span(span_ctx *c, rl_st_file *f, shard_io *io, const rl_tensor *t,
		      const rl_span *sp, const uint8_t *src, size_t es)
{
	size_t len = (size_t)(sp->hi - sp->lo);
	const uint8_t *out = src + sp->first * es;
	int rc;
	if (sp->runs > 1) {
		if (rl_fault("model", "pread"))
			return rl_error_errno(RL_ESYS, "'%s': read", f->path);
		if ((rc = rl_st_pread(f, sp->lo, c->buf, len)))
			return rc;
		for (uint64_t i = sp->first; i < sp->end;) {
			uint64_t e = i + 1;
			while (e < sp->end && c->idx[e] == c->idx[i] + (e - i))
				e++;
			memcpy(c->buf + (t->offset + c->idx[i] * es - sp->lo), src + i * es,
			       (size_t)((e - i) * es));
			i = e;
		}
		out = c->buf;
	}
	if (rl_fault("model", sp->runs > 1 ? "pwrite-span" : "pwrite"))
		return rl_error_errno(RL_ESYS, "'%s': write", f->path);
	if ((rc = rl_st_pwrite(f, sp->lo, out, len)))
		return rc;
	if (c->bytes)
		*c->bytes += (sp->end - sp->first) * es;
	if (c->writes)
		(*c->writes)++;
	if (c->wbytes)
		*c->wbytes += len;
	if (!io->kick_bytes || sp->lo < io->kick_lo)
		io->kick_lo = sp->lo;
	if (!io->kick_bytes || sp->hi > io->kick_hi)
		io->kick_hi = sp->hi;
	io->kick_bytes += len;
	kick(f, io);
	return RL_OK;
}

/* Writes the bytes (old or new) of every patch in journal path into m, one
 * pwrite per span (span.h), then fsyncs the touched shards. Counts into st
 * when not NULL: model_bytes (elements' bytes), model_writes, write_bytes. */
static int write_patches(rl_model *m, const char *path, int use_new, rl_txn_stats *st)
{
	rl_jr j;
	rl_jpatch p;
	int rc = hot_open(&j, path);
	if (rc)
		return rc;
	long pg = sysconf(_SC_PAGESIZE);
	span_ctx c = {.page = pg > 0 ? (uint64_t)pg : 4096,
		      .buf = rl_malloc((size_t)SPAN_MAX),
		      .idx = rl_malloc_array(PATCH_MAX, sizeof(uint64_t)),
		      .io = rl_calloc((size_t)m->nshards + 1, sizeof(shard_io)),
		      .bytes = st ? &st->model_bytes : NULL,
		      .writes = st ? &st->model_writes : NULL,
		      .wbytes = st ? &st->write_bytes : NULL};
	if (!c.buf || !c.idx || !c.io)
		rc = RL_ESYS;
	while (!rc && (rc = rl_jr_next(&j, &p)) == 0 && p.name[0]) {
		const rl_tensor *t;
		if ((rc = patch_tensor(m, &p, path, &t)))
			break;
		rl_st_file *f = &m->shards[t->shard];
		shard_io *io = &c.io[t->shard];
		size_t es = rl_dtype_size(t->dtype);
		const uint8_t *src = use_new ? p.newb : p.oldb;
		for (uint64_t i = 0; i < p.n; i++)
			c.idx[i] = rl_le64(p.idx, i);
		io->touched = 1;
		rl_span sp;
		for (uint64_t pos = 0; pos < p.n && !rc; pos = sp.end) {
			rl_span_next(c.idx, p.n, pos, t->offset, es, c.page, SPAN_MAX, &sp);
			rc = write_span(&c, f, io, t, &sp, src, es);
		}
	}
	rl_jr_close(&j);
	for (int s = 0; s < m->nshards && !rc; s++)
		if (c.io[s].touched) {
			if (rl_fault("model", "fsync"))
				rc = rl_error_errno(RL_ESYS, "'%s': fsync", m->shards[s].path);
			else
				rc = rl_st_sync(&m->shards[s]);
		}
	free(c.buf);
	free(c.idx);
	free(c.io);
	return rc;
}

/* ---- locks ---- */

/* The directory's lock (lockfile.h), then each weight file's own (flock):
 * directories that share weight files (rl_model_open's RL_MODEL_LINKED) still
 * have one writer at a time (invariant 7). */
static int lock_model(rl_lock *l, rl_model *m)
{
	int rc = rl_lock_acquire(l, m->dir), s = 0;
	while (!rc && s < m->nshards && flock(m->shards[s].fd, LOCK_EX | LOCK_NB) == 0)
		s++;
	if (rc || s == m->nshards)
		return rc;
	rc = errno == EWOULDBLOCK ? rl_error(RL_NO,
					     "'%s': the weight file is being written by another "
					     "process (through another directory that links to it)",
					     m->shards[s].path)
				  : rl_error_errno(RL_ESYS, "'%s': flock", m->shards[s].path);
	while (s-- > 0)
		flock(m->shards[s].fd, LOCK_UN);
	rl_lock_release(l);
	return rc;
}

static void unlock_model(rl_lock *l, rl_model *m)
{
	for (int s = 0; s < m->nshards; s++)
		flock(m->shards[s].fd, LOCK_UN);
	rl_lock_release(l);
}

/* Recovery under the lock (invariant 4). */
static int recover_locked(rl_model *m, int *what)
{
	char hot[PATH_MAX], dir[PATH_MAX];
	rl_realign_path(hot, sizeof hot, m->dir, "journal");
	rl_realign_path(dir, sizeof dir, m->dir, "");
	*what = 0;
	if (!exists(hot))
		return RL_OK;
	/* Pass 1: is it complete, and does it fit this model? */
	rl_jr j;
	rl_jpatch p;
	int rc = hot_open(&j, hot), mine = 0;
	char sid[17];
	rl_model_shape_id(m, sid);
	if (!rc && strcmp(j.shape_id, sid) != 0) {
		rc = rl_error(RL_EDATA, "'%s': hot journal is for another model (shape %s, not %s)",
			      hot, j.shape_id, sid);
		mine = 1;
	}
	while (!rc && (rc = rl_jr_next(&j, &p)) == 0 && p.name[0]) {
		const rl_tensor *t;
		if ((rc = patch_tensor(m, &p, hot, &t)))
			mine = 1;
	}
	char before[RL_STATE_HEX + 1];
	memcpy(before, j.before, sizeof before);
	if (j.r)
		rl_jr_close(&j);
	if (rc == RL_EDATA && !mine) {
		/* Torn: never reached SYNCED, so the model is untouched (invariant 1). */
		if (rl_fault("journal", "unlink") || unlink(hot) != 0)
			return rl_error_errno(RL_ESYS, "'%s': cannot remove", hot);
		*what = 2;
		return rl_fault_fsync_dir(dir, "journal");
	}
	if (rc)
		return rl_error_prefix(rc, "cannot recover");
	/* Pass 2: put every old byte back, then the state, then drop the journal. */
	if ((rc = write_patches(m, hot, 0, NULL)) || (rc = rl_model_state_write(m, before)))
		return rl_error_prefix(rc, "recovery of '%s' failed (run it again)", m->dir);
	if (rl_fault("journal", "unlink") || unlink(hot) != 0)
		return rl_error_errno(RL_ESYS, "'%s': cannot remove", hot);
	*what = 1;
	return rl_fault_fsync_dir(dir, "journal");
}

int rl_txn_recover(rl_model *m, int *what)
{
	rl_lock l;
	int rc = lock_model(&l, m);
	if (rc)
		return rc;
	rc = recover_locked(m, what);
	unlock_model(&l, m);
	return rc;
}

/* ---- transactions ---- */

struct rl_txn {
	rl_model *m;
	rl_lock lock;
	rl_txn_opts o;
	char hot[PATH_MAX], last[PATH_MAX], dir[PATH_MAX];
	rl_sw *w;
	int hot_fd; /* the hot journal w writes (-1: none) */
	XXH3_state_t *h;
	char before[RL_STATE_HEX + 1], after[RL_STATE_HEX + 1];
	int have_after;
	uint8_t *patched; /* [ntensors]: tensor patched already */
	const rl_tensor *cur;
	uint64_t cur_last;
	uint64_t tensors, elements;
	uint8_t *idxbuf, *oldbuf;
	int recovered, stale;
};

static void txn_free(rl_txn *tx)
{
	if (tx->hot_fd >= 0)
		close(tx->hot_fd);
	if (tx->h)
		XXH3_freeState(tx->h);
	free(tx->patched);
	free(tx->idxbuf);
	free(tx->oldbuf);
	free(tx);
}

int rl_txn_begin(rl_txn **txp, rl_model *m, const rl_txn_opts *o)
{
	*txp = NULL;
	rl_txn *tx = rl_calloc(1, sizeof *tx);
	if (!tx)
		return RL_ESYS;
	tx->m = m;
	tx->o = *o;
	tx->hot_fd = -1;
	rl_realign_path(tx->hot, sizeof tx->hot, m->dir, "journal");
	rl_realign_path(tx->last, sizeof tx->last, m->dir, "last.rlj");
	rl_realign_path(tx->dir, sizeof tx->dir, m->dir, "");
	tx->patched = rl_calloc(m->ntensors + 1, 1);
	tx->idxbuf = rl_malloc_array(PATCH_MAX, 8);
	tx->oldbuf = rl_malloc_array(PATCH_MAX, 8);
	tx->h = XXH3_createState();
	if (!tx->patched || !tx->idxbuf || !tx->oldbuf || !tx->h) {
		txn_free(tx);
		return rl_error(RL_ESYS, "out of memory");
	}
	int rc = lock_model(&tx->lock, m);
	if (rc) {
		txn_free(tx);
		return rc == RL_ESYS ? rl_error_suffix(rc, "(the model was not changed)") : rc;
	}
	tx->stale = tx->lock.stale;
	int recovering = 0; /* the model was written to (put back) here */
	if (exists(tx->hot)) {
		if (!o->recover) {
			rc = rl_error(RL_EDATA,
				      "'%s': an interrupted write left a hot journal; run "
				      "'rl-rollback -m %s' to restore the model first",
				      m->dir, m->dir);
		} else {
			int what;
			recovering = 1;
			rc = recover_locked(m, &what);
			tx->recovered = what;
		}
	}
	if (!rc)
		rc = rl_model_state_locked(m, tx->before);
	if (!rc && o->expect_state && strcmp(o->expect_state, tx->before) != 0)
		rc = rl_error(RL_EDATA,
			      "'%s': the model is in state %s, not %s (it changed since the "
			      "input was made)",
			      m->dir, tx->before, o->expect_state);
	/* Start the hot journal: created exclusively (no other writer can be here,
	 * but a leftover file of any kind must not be silently reused). */
	if (!rc) {
		if (rl_fault("journal", "create"))
			rc = rl_error_errno(RL_ESYS, "'%s': cannot create", tx->hot);
		else if ((tx->hot_fd =
				  open(tx->hot, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
			rc = rl_error_errno(RL_ESYS, "'%s': cannot create", tx->hot);
	}
	/* written through this descriptor: .realign is off limits to outputs
	 * (inputs.h), the journal is realign's own */
	if (!rc && (rc = rl_sw_open_fd(&tx->w, tx->hot_fd, tx->hot, "journal", o->tool)) != 0)
		unlink(tx->hot);
	if (rc) {
		unlock_model(&tx->lock, tx->m);
		txn_free(tx);
		return rc == RL_ESYS && !recovering
			       ? rl_error_suffix(rc, "(the model was not changed)")
			       : rc;
	}
	msgpack_packer *pk = rl_sw_packer(tx->w);
	rl_sw_header_begin(tx->w, 4);
	rl_pack_str(pk, "model");
	rl_pack_model_id(pk, m, NULL);
	rl_pack_kv_str(pk, "op", o->op);
	rl_pack_kv_str(pk, "before", tx->before);
	rl_pack_str(pk, "source");
	if (o->source)
		rl_pack_model_id(pk, o->source, NULL);
	else
		msgpack_pack_nil(pk);
	XXH3_128bits_reset(tx->h);
	XXH3_128bits_update(tx->h, tx->before, RL_STATE_HEX);
	*txp = tx;
	return RL_OK;
}

const char *rl_txn_before(const rl_txn *tx)
{
	return tx->before;
}

void rl_txn_set_after(rl_txn *tx, const char *state)
{
	snprintf(tx->after, sizeof tx->after, "%s", state);
	tx->have_after = 1;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int b = 0; b < 8; b++)
		p[b] = (uint8_t)(v >> (8 * b));
}

int rl_txn_patch(rl_txn *tx, const rl_tensor *t, const uint64_t *idx, uint64_t n,
		 const uint8_t *newb, const uint8_t *expect)
{
	size_t ti = (size_t)(t - tx->m->tensors);
	if (ti >= tx->m->ntensors)
		return rl_error(RL_USAGE, "'%s': not a tensor of '%s'", t->name, tx->m->dir);
	if (t != tx->cur) {
		if (tx->patched[ti])
			return rl_error(RL_EDATA, "'%s': tensor patched twice (not consecutive)",
					t->name);
		tx->patched[ti] = 1;
		tx->cur = t;
		tx->cur_last = 0;
		tx->tensors++;
	}
	size_t es = rl_dtype_size(t->dtype);
	for (uint64_t i = 0; i < n; i++)
		if (idx[i] >= t->numel || (i && idx[i] <= idx[i - 1]))
			return rl_error(RL_EDATA,
					"'%s': element indices out of range or not ascending",
					t->name);
	if (tx->patched[ti] == 2 && n && idx[0] <= tx->cur_last)
		return rl_error(RL_EDATA, "'%s': element indices not ascending", t->name);
	for (uint64_t off = 0; off < n; off += PATCH_MAX) {
		uint64_t c = n - off < PATCH_MAX ? n - off : PATCH_MAX;
		for (uint64_t i = 0; i < c; i++) {
			const uint8_t *cur = rl_tensor_elem(t, idx[off + i]);
			memcpy(tx->oldbuf + i * es, cur, es);
			put_le64(tx->idxbuf + i * 8, idx[off + i]);
		}
		if (expect && memcmp(tx->oldbuf, expect + off * es, (size_t)(c * es)) != 0) {
			for (uint64_t i = 0; i < c; i++)
				if (memcmp(tx->oldbuf + i * es, expect + (off + i) * es, es) != 0)
					return rl_error(RL_EDATA,
							"'%s' element %llu: the model holds other "
							"bytes than expected (it changed since)",
							t->name, (unsigned long long)idx[off + i]);
		}
		if (rl_fault("journal", "record")) {
			rl_error_errno(RL_ESYS, "'%s': write", tx->hot);
			return rl_error_suffix(RL_ESYS, "(the model was not changed)");
		}
		msgpack_packer *pk = rl_sw_packer(tx->w);
		rl_sw_record_begin(tx->w, "patch", 7);
		rl_pack_kv_str(pk, "name", t->name);
		rl_pack_kv_str(pk, "dtype", rl_dtype_name(t->dtype));
		rl_pack_kv_uint(pk, "numel", t->numel);
		rl_pack_kv_uint(pk, "n", c);
		rl_pack_kv_bin(pk, "idx", tx->idxbuf, (size_t)(c * 8));
		rl_pack_kv_bin(pk, "old", tx->oldbuf, (size_t)(c * es));
		rl_pack_kv_bin(pk, "new", newb + off * es, (size_t)(c * es));
		XXH3_128bits_update(tx->h, t->name, strlen(t->name) + 1);
		XXH3_128bits_update(tx->h, tx->idxbuf, (size_t)(c * 8));
		XXH3_128bits_update(tx->h, newb + off * es, (size_t)(c * es));
	}
	if (n) {
		tx->cur_last = idx[n - 1];
		tx->patched[ti] = 2;
	}
	tx->elements += n;
	return RL_OK;
}

void rl_txn_abort(rl_txn *tx)
{
	if (!tx)
		return;
	if (tx->w)
		rl_sw_abort(tx->w);
	unlink(tx->hot);
	unlock_model(&tx->lock, tx->m);
	txn_free(tx);
}

/* Copies the synced hot journal to the caller's output (invariant 6), which
 * must not be an input (inputs.h: a shard given as -j was truncated). */
static int copy_out(const char *hot, const char *out, uint64_t *bytes)
{
	int in, rc = rl_output_check(out);
	if (rc || (rc = rl_open_regular(hot, 0, &in)))
		return rc;
	int to_stdout = strcmp(out, "-") == 0;
	const char *name = to_stdout ? "<stdout>" : out;
	int fd = to_stdout ? STDOUT_FILENO
			   : open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		close(in);
		return rl_error_errno(RL_ESYS, "'%s': cannot create", out);
	}
	fflush(stdout);
	static uint8_t buf[1 << 20];
	for (;;) {
		ssize_t n = read(in, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = rl_error_errno(RL_ESYS, "'%s': read", hot);
			break;
		}
		if (n == 0)
			break;
		if ((rc = rl_fault_write_all(fd, buf, (size_t)n, name, "output")))
			break;
		*bytes += (uint64_t)n;
	}
	struct stat st;
	if (!rc && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (rl_fault("output", "fsync") || fsync(fd) != 0))
		rc = rl_error_errno(RL_ESYS, "'%s': fsync", name);
	close(in);
	if (!to_stdout && close(fd) != 0 && !rc)
		rc = rl_error_errno(RL_ESYS, "'%s': close", out);
	return rc;
}

int rl_txn_commit(rl_txn *tx, const char *out, rl_txn_stats *st)
{
	rl_model *m = tx->m;
	int rc;
	memset(st, 0, sizeof *st);
	st->recovered = tx->recovered;
	st->stale_lock = tx->stale;
	if (!tx->have_after)
		rl_model_state_hex(XXH3_128bits_digest(tx->h), tx->after);
	memcpy(st->before, tx->before, sizeof st->before);
	memcpy(st->after, tx->after, sizeof st->after);
	st->tensors = tx->tensors;
	st->elements = tx->elements;

	/* OPEN -> SYNCED (invariant 1) */
	msgpack_packer *pk = rl_sw_packer(tx->w);
	rl_sw_record_begin(tx->w, "summary", 3);
	rl_pack_kv_str(pk, "after", tx->after);
	rl_pack_kv_uint(pk, "tensors", tx->tensors);
	rl_pack_kv_uint(pk, "elements", tx->elements);
	if (rl_fault("journal", "close")) {
		rc = rl_error_errno(RL_ESYS, "'%s': write", tx->hot);
		rl_sw_abort(tx->w);
	} else {
		rc = rl_sw_close(tx->w); /* fsyncs the hot journal */
	}
	tx->w = NULL;
	if (close(tx->hot_fd) != 0 && !rc)
		rc = rl_error_errno(RL_ESYS, "'%s': close", tx->hot);
	tx->hot_fd = -1;
	if (!rc)
		rc = rl_fault_fsync_dir(tx->dir, "journal");
	/* The caller's copy, model still untouched (invariant 6). */
	if (!rc && out)
		rc = copy_out(tx->hot, out, &st->journal_bytes);
	else if (!rc) {
		struct stat sb;
		if (stat(tx->hot, &sb) == 0)
			st->journal_bytes = (uint64_t)sb.st_size;
	}
	if (!rc)
		rc = rl_model_state_reserve(m);
	if (rc) {
		rl_txn_abort(tx);
		return rl_error_suffix(rc, "(the model was not changed)"); /* say so */
	}
	/* SYNCED -> WRITING -> DURABLE (invariants 2, 5, 8) */
	rc = write_patches(m, tx->hot, 1, st);
	if (!rc)
		rc = rl_model_state_write(m, tx->after);
	if (rc) {
		char msg[1024];
		snprintf(msg, sizeof msg, "%s", rl_errmsg());
		int what;
		if (recover_locked(m, &what) == RL_OK)
			rc = rl_error(rc, "%s (the model was restored)", msg);
		else
			rc = rl_error_prefix(rc,
					     "%s; restoring the model failed too (run "
					     "'rl-rollback -m %s')",
					     msg, m->dir);
		unlock_model(&tx->lock, tx->m);
		txn_free(tx);
		return rc;
	}
	/* DURABLE -> COMMITTED (invariant 3) */
	if (rl_fault("state", "commit") || rename(tx->hot, tx->last) != 0)
		rc = rl_error_errno(RL_ESYS, "'%s': cannot commit (rename)", tx->hot);
	if (!rc)
		rc = rl_fault_fsync_dir(tx->dir, "state");
	if (rc && exists(tx->hot)) {
		char msg[1024];
		snprintf(msg, sizeof msg, "%s", rl_errmsg());
		int what;
		if (recover_locked(m, &what) == RL_OK)
			rc = rl_error(rc, "%s (the model was restored)", msg);
	}
	unlock_model(&tx->lock, tx->m);
	txn_free(tx);
	return rc;
}
