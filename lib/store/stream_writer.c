/* stream_writer.c — the stream writer (rl_sw, see stream.h; the format is
 * man/rl-stream.5).
 *
 * Every byte goes through one msgpack_packer write callback, which hashes it
 * (XXH64) and appends it to a 1 MiB buffer; a write of 64 KiB or more (a
 * tensor payload) flushes the buffer and goes straight from the caller's
 * memory to write(2): payloads are never copied. Each 256 KiB slice of a
 * payload is hashed just before it is written, while it is in cache. The
 * first error is sticky: later calls do nothing and rl_sw_close returns it.
 * The checksum covers the exact bytes before the end record.
 */
#define XXH_STATIC_LINKING_ONLY
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/error.h"
#include "core/inputs.h"
#include "core/util.h"
#include "store/stream.h"
#include "store/stream_int.h"

#ifndef RL_VERSION
#define RL_VERSION "unknown"
#endif

#define WBUF (1u << 20)	    /* writer buffer */
#define WDIRECT (64u << 10) /* writes this long bypass the writer buffer */
#define SLICE (256u << 10)  /* hashing interleaved with I/O in slices this big */

struct rl_sw {
	int fd;
	int owned;   /* close fd in rl_sw_close */
	int regular; /* fsync at close */
	char *name;  /* path, or "<stdout>" */
	char *kind, *tool;
	uint8_t *buf;
	size_t used;
	XXH64_state_t xx;
	int hashing;
	msgpack_packer pk;
	uint64_t count;
	int err;
	int header_done;
	size_t chunk_bytes;
	/* the tensor whose chunks are being written */
	int in_tensor;
	char tname[RL_MAX_NAME + 1];
	rl_dtype tdtype;
	int tndim;
	int64_t tshape[RL_MAX_DIMS];
	uint64_t tnumel, tnext;
	/* structure of what is packed (wc_feed): the record in progress */
	char rtype[32];
	int started;		      /* its first byte was packed */
	uint8_t hb[9];		      /* an object header being collected */
	size_t hn;		      /* bytes of it so far */
	rls_mp_head wh;		      /* its decoding */
	uint64_t skip;		      /* payload bytes still to pass over */
	int wdepth;		      /* open maps/arrays */
	uint64_t wleft[RL_MAX_DEPTH]; /* items still expected in each */
};

static int sw_fail(rl_sw *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sw_fail(rl_sw *w, int code, const char *fmt, ...)
{
	if (w->err)
		return w->err;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	w->err = rl_error(code, "%s", msg);
	return w->err;
}

static int write_all(rl_sw *w, const void *p, size_t n)
{
	int rc = rl_write_all(w->fd, p, n, w->name);
	if (rc)
		w->err = rc;
	return rc;
}

static int sw_flush(rl_sw *w)
{
	if (w->err)
		return w->err;
	size_t n = w->used;
	w->used = 0;
	return n ? write_all(w, w->buf, n) : 0;
}

/* Follows the msgpack structure of every packed byte (payloads are skipped
 * in O(1)), so a caller that packs more or fewer pairs than it declared gets
 * an error naming the record here, not a stream its readers call corrupt. */
static int wc_feed(rl_sw *w, const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (w->skip) {
			size_t k = n - i < w->skip ? n - i : (size_t)w->skip;
			w->skip -= k;
			i += k;
			continue;
		}
		if (w->hn == 0) {
			if (w->started && w->wdepth == 0)
				return sw_fail(w, RL_ESYS,
					       "'%s': internal error: more values packed than the "
					       "'%s' record declared",
					       w->name, w->rtype);
			if (rls_mp_first(p[i], &w->wh))
				return sw_fail(w, RL_ESYS,
					       "'%s': internal error: msgpack byte 0x%02x (ext or "
					       "invalid) packed into the '%s' record",
					       w->name, p[i], w->rtype);
		}
		w->hb[w->hn++] = p[i++];
		if (w->hn < w->wh.hl)
			continue;
		if (w->wh.lenbytes)
			rls_mp_len(&w->wh, w->hb + 1);
		w->hn = 0;
		w->skip = w->wh.pl;
		w->started = 1;
		if (w->wdepth > 0)
			w->wleft[w->wdepth - 1]--;
		if (w->wh.container && w->wh.n > 0) {
			if (w->wdepth == RL_MAX_DEPTH)
				return sw_fail(w, RL_ESYS,
					       "'%s': internal error: the '%s' record nests deeper "
					       "than %d",
					       w->name, w->rtype, RL_MAX_DEPTH);
			w->wleft[w->wdepth++] = w->wh.n;
		}
		while (w->wdepth > 0 && w->wleft[w->wdepth - 1] == 0)
			w->wdepth--;
	}
	return 0;
}

/* A new record (type) starts: the previous one must be complete. */
static int wc_boundary(rl_sw *w, const char *type)
{
	if (w->err)
		return w->err;
	if (w->started && (w->wdepth || w->skip || w->hn))
		return sw_fail(w, RL_ESYS,
			       "'%s': internal error: fewer values packed than the '%s' record "
			       "declared",
			       w->name, w->rtype);
	w->started = 0;
	snprintf(w->rtype, sizeof w->rtype, "%s", type);
	return 0;
}

/* The packer's write callback: hash, then buffer or write through. */
static int sw_write(void *data, const char *p, size_t n)
{
	rl_sw *w = data;
	if (w->err)
		return -1;
	if (n == 0) /* an empty payload: p may be NULL */
		return 0;
	if (wc_feed(w, (const uint8_t *)p, n))
		return -1;
	if (n >= WDIRECT) {
		/* hash each slice just before writing it, while it is in cache */
		if (sw_flush(w))
			return -1;
		for (size_t o = 0; o < n; o += SLICE) {
			size_t k = n - o < SLICE ? n - o : SLICE;
			if (w->hashing)
				XXH64_update(&w->xx, p + o, k);
			if (write_all(w, p + o, k))
				return -1;
		}
		return 0;
	}
	if (w->hashing)
		XXH64_update(&w->xx, p, n);
	if (n > WBUF - w->used && sw_flush(w))
		return -1;
	memcpy(w->buf + w->used, p, n);
	w->used += n;
	return 0;
}

static int sw_init(rl_sw **out, int fd, int owned, const char *name, const char *kind,
		   const char *tool)
{
	rl_sw *w = rl_calloc(1, sizeof *w);
	if (!w)
		return RL_ESYS;
	w->fd = fd;
	w->owned = owned;
	w->name = rl_strdup(name);
	w->kind = rl_strdup(kind);
	w->tool = rl_strdup(tool);
	w->buf = rl_malloc(WBUF);
	if (!w->name || !w->kind || !w->tool || !w->buf) {
		free(w->name);
		free(w->kind);
		free(w->tool);
		free(w->buf);
		free(w);
		return RL_ESYS;
	}
	struct stat st;
	w->regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	XXH64_reset(&w->xx, 0);
	w->hashing = 1;
	w->chunk_bytes = RL_CHUNK_BYTES;
	msgpack_packer_init(&w->pk, w, sw_write);
	*out = w;
	return RL_OK;
}

int rl_sw_open(rl_sw **w, const char *path, const char *kind, const char *tool)
{
	*w = NULL;
	int rc = rl_output_check(path);
	if (rc)
		return rc;
	if (strcmp(path, "-") == 0)
		return sw_init(w, STDOUT_FILENO, 0, "<stdout>", kind, tool);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0)
		return rl_error_errno(RL_ESYS, "'%s': cannot create", path);
	if ((rc = sw_init(w, fd, 1, path, kind, tool)))
		close(fd);
	return rc;
}

int rl_sw_open_fd(rl_sw **w, int fd, const char *name, const char *kind, const char *tool)
{
	*w = NULL;
	return sw_init(w, fd, 0, name, kind, tool);
}

msgpack_packer *rl_sw_packer(rl_sw *w)
{
	return &w->pk;
}

uint64_t rl_sw_count(const rl_sw *w)
{
	return w->count;
}

int rl_sw_error(const rl_sw *w)
{
	return w->err;
}

void rl_sw_set_chunk_bytes(rl_sw *w, size_t bytes)
{
	w->chunk_bytes = bytes > RL_CHUNK_BYTES ? RL_CHUNK_BYTES : bytes ? bytes : 1;
}

void rl_pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

void rl_pack_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
	rl_pack_str(pk, key);
	rl_pack_str(pk, val);
}

void rl_pack_kv_int(msgpack_packer *pk, const char *key, int64_t val)
{
	rl_pack_str(pk, key);
	msgpack_pack_int64(pk, val);
}

void rl_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t val)
{
	rl_pack_str(pk, key);
	msgpack_pack_uint64(pk, val);
}

void rl_pack_kv_f64(msgpack_packer *pk, const char *key, double val)
{
	rl_pack_str(pk, key);
	msgpack_pack_double(pk, val);
}

void rl_pack_kv_bool(msgpack_packer *pk, const char *key, int val)
{
	rl_pack_str(pk, key);
	if (val)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

void rl_pack_kv_bin(msgpack_packer *pk, const char *key, const void *data, size_t n)
{
	rl_pack_str(pk, key);
	msgpack_pack_bin_with_body(pk, data, n);
}

int rl_sw_header_begin(rl_sw *w, uint32_t nextra)
{
	if (w->err)
		return w->err;
	if (w->header_done)
		return sw_fail(w, RL_ESYS, "'%s': internal error: stream header written twice",
			       w->name);
	if (wc_boundary(w, "header"))
		return w->err;
	w->header_done = 1;
	msgpack_packer *pk = &w->pk;
	msgpack_pack_map(pk, 6 + (size_t)nextra);
	rl_pack_kv_str(pk, "t", "header");
	rl_pack_kv_str(pk, "magic", RL_STREAM_MAGIC);
	rl_pack_kv_uint(pk, "version", RL_STREAM_VERSION);
	rl_pack_kv_str(pk, "kind", w->kind);
	rl_pack_kv_str(pk, "tool", w->tool);
	rl_pack_kv_str(pk, "tool_version", RL_VERSION);
	return w->err;
}

/* A data record may start here: header written, no tensor half-written. */
static int sw_record_ok(rl_sw *w, const char *type)
{
	if (w->err)
		return w->err;
	if (!w->header_done)
		return sw_fail(w, RL_ESYS, "'%s': internal error: '%s' record before the header",
			       w->name, type);
	if (w->in_tensor)
		return sw_fail(w, RL_ESYS,
			       "'%s': internal error: '%s' record inside tensor '%s' (%" PRIu64
			       " of %" PRIu64 " elements written)",
			       w->name, type, w->tname, w->tnext, w->tnumel);
	return 0;
}

int rl_sw_record_begin(rl_sw *w, const char *type, uint32_t nfields)
{
	int rc = sw_record_ok(w, type);
	if (rc)
		return rc;
	if (!strcmp(type, "header") || !strcmp(type, "end") || !strcmp(type, "tensor"))
		return sw_fail(w, RL_ESYS, "'%s': internal error: record type '%s' is reserved",
			       w->name, type);
	if (wc_boundary(w, type))
		return w->err;
	msgpack_pack_map(&w->pk, 1 + (size_t)nfields);
	rl_pack_kv_str(&w->pk, "t", type);
	w->count++;
	return w->err;
}

int rl_sw_tensor_chunk(rl_sw *w, const char *name, rl_dtype dtype, int ndim, const int64_t *shape,
		       uint64_t offset, const void *data, uint64_t count)
{
	if (w->err)
		return w->err;
	if (!w->in_tensor) {
		int rc = sw_record_ok(w, "tensor");
		if (rc)
			return rc;
	}
	size_t nlen = strlen(name);
	uint64_t numel;
	char sb[256];
	if ((unsigned)dtype >= RL_DT_COUNT || ndim < 0 || ndim > RL_MAX_DIMS || nlen == 0 ||
	    nlen > RL_MAX_NAME || rls_shape_numel(ndim, shape, &numel))
		return sw_fail(w, RL_ESYS, "'%s': internal error: bad tensor '%s'", w->name, name);
	uint64_t esize = rl_dtype_size(dtype);
	if (offset > numel || count > numel - offset || count > RL_CHUNK_BYTES / esize ||
	    (count == 0 && numel != 0))
		return sw_fail(w, RL_ESYS,
			       "'%s': internal error: tensor '%s' %s: bad chunk of %" PRIu64
			       " elements at %" PRIu64,
			       w->name, name, rls_show_shape(sb, sizeof sb, ndim, shape), count,
			       offset);
	if (w->in_tensor) {
		if (strcmp(name, w->tname) || dtype != w->tdtype || ndim != w->tndim ||
		    memcmp(shape, w->tshape, (size_t)ndim * sizeof *shape) || offset != w->tnext)
			return sw_fail(w, RL_ESYS,
				       "'%s': internal error: chunk of '%s' at %" PRIu64
				       " while tensor '%s' expects element %" PRIu64,
				       w->name, name, offset, w->tname, w->tnext);
	} else if (offset != 0) {
		return sw_fail(w, RL_ESYS,
			       "'%s': internal error: tensor '%s' starts at element %" PRIu64,
			       w->name, name, offset);
	}
	if (wc_boundary(w, "tensor"))
		return w->err;
	msgpack_packer *pk = &w->pk;
	msgpack_pack_map(pk, 7);
	rl_pack_kv_str(pk, "t", "tensor");
	rl_pack_str(pk, "name");
	msgpack_pack_str_with_body(pk, name, nlen);
	rl_pack_kv_str(pk, "dtype", rl_dtype_name(dtype));
	rl_pack_str(pk, "shape");
	msgpack_pack_array(pk, (size_t)ndim);
	for (int i = 0; i < ndim; i++)
		msgpack_pack_int64(pk, shape[i]);
	rl_pack_kv_uint(pk, "offset", offset);
	rl_pack_kv_uint(pk, "count", count);
	rl_pack_kv_bin(pk, "data", data, (size_t)(count * esize));
	w->count++;
	w->in_tensor = offset + count < numel;
	if (w->in_tensor) {
		memcpy(w->tname, name, nlen + 1);
		w->tdtype = dtype;
		w->tndim = ndim;
		memcpy(w->tshape, shape, (size_t)ndim * sizeof *shape);
		w->tnumel = numel;
		w->tnext = offset + count;
	}
	return w->err;
}

int rl_sw_tensor(rl_sw *w, const char *name, rl_dtype dtype, int ndim, const int64_t *shape,
		 const void *data, uint64_t numel)
{
	if (w->err)
		return w->err;
	uint64_t n;
	if ((unsigned)dtype >= RL_DT_COUNT || ndim < 0 || ndim > RL_MAX_DIMS ||
	    rls_shape_numel(ndim, shape, &n) || n != numel)
		return sw_fail(w, RL_ESYS,
			       "'%s': internal error: tensor '%s': %" PRIu64
			       " elements do not match its shape",
			       w->name, name, numel);
	size_t esize = rl_dtype_size(dtype);
	uint64_t per = w->chunk_bytes / esize;
	if (per == 0)
		per = 1;
	const uint8_t *p = data;
	uint64_t off = 0;
	do {
		uint64_t c = numel - off < per ? numel - off : per;
		int rc = rl_sw_tensor_chunk(w, name, dtype, ndim, shape, off, p + off * esize, c);
		if (rc)
			return rc;
		off += c;
	} while (off < numel);
	return w->err;
}

static void sw_free(rl_sw *w)
{
	free(w->name);
	free(w->kind);
	free(w->tool);
	free(w->buf);
	free(w);
}

int rl_sw_close(rl_sw *w)
{
	if (!w->err && !w->header_done)
		sw_fail(w, RL_ESYS, "'%s': internal error: stream closed without a header",
			w->name);
	if (!w->err && w->in_tensor)
		sw_fail(w, RL_ESYS,
			"'%s': internal error: stream closed inside tensor '%s' (%" PRIu64
			" of %" PRIu64 " elements written)",
			w->name, w->tname, w->tnext, w->tnumel);
	if (!w->err && !wc_boundary(w, "end")) {
		uint64_t sum = XXH64_digest(&w->xx);
		w->hashing = 0;
		msgpack_pack_map(&w->pk, 3);
		rl_pack_kv_str(&w->pk, "t", "end");
		rl_pack_kv_uint(&w->pk, "records", w->count);
		rl_pack_kv_uint(&w->pk, "checksum", sum);
		sw_flush(w);
	}
	if (!w->err && w->regular && fsync(w->fd) != 0)
		w->err = rl_error_errno(RL_ESYS, "'%s': fsync failed", w->name);
	if (w->owned && close(w->fd) != 0 && !w->err)
		w->err = rl_error_errno(RL_ESYS, "'%s': close failed", w->name);
	int rc = w->err;
	sw_free(w);
	return rc;
}

void rl_sw_abort(rl_sw *w)
{
	if (!w)
		return;
	if (!w->err)
		sw_flush(w);
	if (w->owned)
		close(w->fd);
	sw_free(w);
}
