/* stream.c — realign's msgpack record streams: a buffered, checksummed writer
 * and a bounded-memory, validating reader. The format is man/rl-stream.5.
 *
 * NOTES ON THE DESIGN
 * 1. Writer: every byte goes through one msgpack_packer write callback, which
 *    hashes it (XXH64) and appends it to a 1 MiB buffer; a write of 64 KiB or
 *    more (a tensor payload) flushes the buffer and goes straight from the
 *    caller's memory to write(2): payloads are never copied. The first error
 *    is sticky: later calls do nothing and rl_sw_close returns it.
 * 2. Reader: before msgpack-c sees a record, skim() walks its encoding
 *    (resumably, as bytes arrive) and checks every declared length, element
 *    count, the nesting depth and the object count against the limits. Only
 *    then is the record read whole into the buffer and unpacked (msgpack_unpack
 *    into a zone reused per record; strings and bins point into the buffer).
 *    So memory is bounded by RL_MAX_RECORD plus the zone for RL_MAX_OBJECTS
 *    objects, whatever the input claims, and a hostile length is refused
 *    before anything is allocated for it.
 * 3. Reads ask for what the current record still needs (at least 256 KiB, at
 *    most 1 MiB a call), so a big chunk record leaves little behind to move
 *    when the buffer is compacted for the next one, and a big record's bytes
 *    are hashed as each read brings them in, while they are in cache (the
 *    writer likewise hashes each 256 KiB slice of a payload just before
 *    writing it).
 * 4. The checksum covers the exact bytes before the end record: the header
 *    and each data record are hashed once they parse; the end record is not.
 */
#define XXH_STATIC_LINKING_ONLY
#include <errno.h>
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
#include "core/util.h"
#include "store/stream.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "realign streams carry little-endian payloads; this host is not little-endian"
#endif

#ifndef RL_VERSION
#define RL_VERSION "unknown"
#endif

#define WBUF (1u << 20)	    /* writer buffer */
#define WDIRECT (64u << 10) /* writes this long bypass the writer buffer */
#define RCHUNK (256u << 10) /* smallest read(2) the reader asks for */
#define SLICE (256u << 10)  /* hashing interleaved with I/O in slices this big */
#define RSLICE (1u << 20)   /* largest read(2) */
#define EAGER (64u << 10)   /* records needing more are hashed as they arrive */

/* Renders n untrusted bytes for a one-line message: printable ASCII kept,
 * anything else as \xNN, cut after 48 characters. */
static const char *show(char *buf, size_t cap, const void *s, size_t n)
{
	const unsigned char *p = s;
	size_t o = 0;
	for (size_t i = 0; i < n && o + 8 < cap; i++) {
		if (o >= 48) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			buf[o++] = (char)p[i];
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", p[i]);
	}
	buf[o] = '\0';
	return buf;
}

static const char *type_name(msgpack_object_type t)
{
	switch (t) {
	case MSGPACK_OBJECT_NIL:
		return "nil";
	case MSGPACK_OBJECT_BOOLEAN:
		return "a boolean";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return "an integer";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return "a float";
	case MSGPACK_OBJECT_STR:
		return "a string";
	case MSGPACK_OBJECT_BIN:
		return "binary";
	case MSGPACK_OBJECT_ARRAY:
		return "an array";
	case MSGPACK_OBJECT_MAP:
		return "a map";
	default:
		return "an ext value";
	}
}

/* "[2,3]" for messages. */
static const char *show_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
	size_t o = 0;
	buf[o++] = '[';
	for (int i = 0; i < ndim && o + 24 < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%" PRId64, i ? "," : "", shape[i]);
	snprintf(buf + o, cap - o, "]");
	return buf;
}

/* Product of a shape, 0 on success, -1 on a negative dimension or overflow
 * past INT64_MAX. */
static int shape_numel(int ndim, const int64_t *shape, uint64_t *numel)
{
	uint64_t n = 1;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return -1;
		uint64_t d = (uint64_t)shape[i];
		if (d && n > (uint64_t)INT64_MAX / d)
			return -1;
		n *= d;
	}
	*numel = n;
	return 0;
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* What the first byte of a msgpack object says about its encoding: header
 * length hl (first byte, length field, fixed-size value), and for fixed-size
 * forms the payload length pl or the container's item count n (a map counts
 * keys and values). Length-prefixed forms need mp_len on the length bytes. */
typedef struct mp_head {
	size_t hl;
	int lenbytes, container, map;
	uint64_t n, pl;
	const char *what;
} mp_head;

/* 0, -1 for the never-used byte 0xc1, -2 for an ext type. */
static int mp_first(unsigned b, mp_head *h)
{
	int fixed = 0;
	memset(h, 0, sizeof *h);
	h->what = "string";
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
	} else if (b <= 0x8f) {
		h->container = h->map = 1;
		h->n = 2u * (b & 0x0f);
	} else if (b <= 0x9f) {
		h->container = 1;
		h->n = b & 0x0f;
	} else if (b <= 0xbf) {
		h->pl = b & 0x1f;
	} else if (b >= 0xc4 && b <= 0xc6) {
		h->lenbytes = 1 << (b - 0xc4);
		h->what = "bin";
	} else if (b == 0xca || b == 0xcb) {
		fixed = b == 0xca ? 4 : 8;
	} else if (b >= 0xcc && b <= 0xcf) {
		fixed = 1 << (b - 0xcc);
	} else if (b >= 0xd0 && b <= 0xd3) {
		fixed = 1 << (b - 0xd0);
	} else if (b >= 0xd9 && b <= 0xdb) {
		h->lenbytes = 1 << (b - 0xd9);
	} else if (b == 0xdc || b == 0xdd) {
		h->lenbytes = b == 0xdc ? 2 : 4;
		h->container = 1;
	} else if (b == 0xde || b == 0xdf) {
		h->lenbytes = b == 0xde ? 2 : 4;
		h->container = h->map = 1;
	} else {
		return b == 0xc1 ? -1 : -2; /* 0xc7-0xc9, 0xd4-0xd8: ext */
	}
	h->hl = 1 + (size_t)h->lenbytes + (size_t)fixed;
	return 0;
}

/* Reads the length field at p (h->lenbytes bytes) into n or pl. */
static void mp_len(mp_head *h, const uint8_t *p)
{
	uint64_t v = be(p, h->lenbytes);
	if (h->container)
		h->n = h->map ? 2 * v : v;
	else
		h->pl = v;
}

/* ======================================================================
 * Writer
 * ====================================================================== */

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
	mp_head wh;		      /* its decoding */
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
			if (mp_first(p[i], &w->wh))
				return sw_fail(w, RL_ESYS,
					       "'%s': internal error: msgpack byte 0x%02x (ext or "
					       "invalid) packed into the '%s' record",
					       w->name, p[i], w->rtype);
		}
		w->hb[w->hn++] = p[i++];
		if (w->hn < w->wh.hl)
			continue;
		if (w->wh.lenbytes)
			mp_len(&w->wh, w->hb + 1);
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
	if (strcmp(path, "-") == 0)
		return sw_init(w, STDOUT_FILENO, 0, "<stdout>", kind, tool);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0)
		return rl_error_errno(RL_ESYS, "'%s': cannot create", path);
	int rc = sw_init(w, fd, 1, path, kind, tool);
	if (rc)
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
	    nlen > RL_MAX_NAME || shape_numel(ndim, shape, &numel))
		return sw_fail(w, RL_ESYS, "'%s': internal error: bad tensor '%s'", w->name, name);
	uint64_t esize = rl_dtype_size(dtype);
	if (offset > numel || count > numel - offset || count > RL_CHUNK_BYTES / esize ||
	    (count == 0 && numel != 0))
		return sw_fail(w, RL_ESYS,
			       "'%s': internal error: tensor '%s' %s: bad chunk of %" PRIu64
			       " elements at %" PRIu64,
			       w->name, name, show_shape(sb, sizeof sb, ndim, shape), count,
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
	    shape_numel(ndim, shape, &n) || n != numel)
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

/* ======================================================================
 * Reader
 * ====================================================================== */

/* A record kept for the reader's lifetime (header, end): own bytes, own zone. */
typedef struct kept {
	uint8_t *bytes;
	msgpack_zone zone;
	int zone_ok;
	msgpack_object obj;
} kept;

struct rl_sr {
	int fd;
	int owned; /* close fd in rl_sr_close */
	int mem;   /* buf is the caller's memory */
	char *path;
	uint8_t *buf;
	size_t cap, pos, len; /* unread bytes are buf[pos, len) */
	int eof;
	uint64_t base; /* stream offset of buf[0] */
	XXH64_state_t xx;
	/* A big record is hashed as its bytes arrive (still in cache) rather
	 * than once it is whole: xx covers the stream up to hashed_to, which
	 * eager reads advance up to eager_limit (stream offsets). An end record
	 * is never big, so this never hashes one it should not. */
	uint64_t hashed_to, eager_limit;
	msgpack_zone zone;
	int zone_ok;
	msgpack_object obj;
	size_t recsize;
	uint64_t count;
	int err;
	char errmsg[1024];
	int done;
	kept header, end;
	int have_end;
	char *kind;
	rl_chunk chunk;
	int is_chunk;
	/* the tensor whose chunks are being read */
	int in_tensor;
	char tname[RL_MAX_NAME + 1];
	rl_dtype tdtype;
	int tndim;
	int64_t tshape[RL_MAX_DIMS];
	uint64_t tnumel, tnext;
	char tshown[256]; /* tname as messages show it */
	char where[RL_MAX_NAME + 600];
	char *hwhere; /* "'path' header" */
};

/* Records err as the reader's sticky error (the message is already set). */
static int sr_sticky(rl_sr *r, int rc)
{
	if (rc && !r->err) {
		r->err = rc;
		snprintf(r->errmsg, sizeof r->errmsg, "%s", rl_errmsg());
	}
	return rc;
}

/* Makes at least need unread bytes available: 0, 1 at end of input first,
 * or RL_ESYS. need never exceeds RL_MAX_RECORD (skim() guarantees it). */
static int sr_fill(rl_sr *r, size_t need)
{
	while (r->len - r->pos < need) {
		if (r->eof || r->mem)
			return 1;
		if (r->pos + need > r->cap) {
			if (r->pos) {
				memmove(r->buf, r->buf + r->pos, r->len - r->pos);
				r->base += r->pos;
				r->len -= r->pos;
				r->pos = 0;
			}
			if (need > r->cap) {
				size_t ncap = r->cap * 2 > need ? r->cap * 2 : need;
				if (ncap > RL_MAX_RECORD + RCHUNK)
					ncap = RL_MAX_RECORD + RCHUNK;
				uint8_t *nb = rl_realloc_array(r->buf, ncap, 1);
				if (!nb)
					return RL_ESYS;
				r->buf = nb;
				r->cap = ncap;
			}
		}
		size_t room = r->cap - r->len;
		size_t want = need - (r->len - r->pos);
		if (want < RCHUNK)
			want = RCHUNK;
		if (want > room)
			want = room;
		if (want > RSLICE)
			want = RSLICE;
		ssize_t k = read(r->fd, r->buf + r->len, want);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return rl_error_errno(RL_ESYS, "'%s': read error", r->path);
		}
		if (k == 0)
			r->eof = 1;
		r->len += (size_t)k;
		uint64_t upto = r->base + r->len;
		if (upto > r->eager_limit)
			upto = r->eager_limit;
		if (upto > r->hashed_to) {
			XXH64_update(&r->xx, r->buf + (r->hashed_to - r->base),
				     (size_t)(upto - r->hashed_to));
			r->hashed_to = upto;
		}
	}
	return 0;
}

/* ---- skim: checks one record's encoding against the limits ---- */

typedef struct skim {
	size_t off;		     /* bytes of the record consumed */
	int depth;		     /* open containers */
	uint64_t left[RL_MAX_DEPTH]; /* items still to come in each */
	uint64_t objects;
} skim;

enum { SK_DONE, SK_MORE, SK_BAD };

/* Walks complete objects of one record in p[0, avail). SK_DONE: the record is
 * s->off bytes. SK_MORE: *need bytes are needed to go on. SK_BAD: the encoding
 * is invalid or over a limit (message in why; at is the stream offset of p). */
static int skim_run(skim *s, const uint8_t *p, size_t avail, uint64_t at, size_t *need, char *why,
		    size_t whycap)
{
	for (;;) {
		size_t off = s->off;
		if (off >= avail) {
			*need = off + 1;
			return SK_MORE;
		}
		unsigned b = p[off];
		mp_head mh;
		int st = mp_first(b, &mh);
		if (st == -1) {
			snprintf(why, whycap, "invalid msgpack byte 0xc1 at byte %" PRIu64,
				 at + off);
			return SK_BAD;
		}
		if (st == -2) {
			snprintf(why, whycap,
				 "msgpack ext type (byte 0x%02x) at byte %" PRIu64
				 ": not allowed in a realign stream",
				 b, at + off);
			return SK_BAD;
		}
		int lenbytes = mh.lenbytes, container = mh.container, map = mh.map;
		uint64_t n = mh.n, pl = mh.pl;
		const char *what = mh.what;
		size_t hl = mh.hl;
		if (off + hl > avail) {
			*need = off + hl;
			return SK_MORE;
		}
		if (lenbytes) {
			mp_len(&mh, p + off + 1);
			n = mh.n;
			pl = mh.pl;
		}
		if ((uint64_t)off + hl + pl > RL_MAX_RECORD) {
			snprintf(why, whycap,
				 "a %" PRIu64 "-byte %s at byte %" PRIu64
				 " goes past the %u-byte record limit",
				 pl, what, at + off, (unsigned)RL_MAX_RECORD);
			return SK_BAD;
		}
		if (container && (n > RL_MAX_OBJECTS || (uint64_t)off + hl + n > RL_MAX_RECORD)) {
			snprintf(why, whycap,
				 "a%s of %" PRIu64 " %s at byte %" PRIu64
				 " goes past the record limits",
				 map ? " map" : "n array", map ? n / 2 : n,
				 map ? "pairs" : "elements", at + off);
			return SK_BAD;
		}
		if (++s->objects > RL_MAX_OBJECTS) {
			snprintf(why, whycap, "record holds more than %u msgpack objects",
				 (unsigned)RL_MAX_OBJECTS);
			return SK_BAD;
		}
		if (container && n > 0 && s->depth == RL_MAX_DEPTH) {
			snprintf(why, whycap,
				 "maps and arrays nested deeper than %d at byte %" PRIu64,
				 RL_MAX_DEPTH, at + off);
			return SK_BAD;
		}
		if (off + hl + pl > avail) {
			*need = off + hl + (size_t)pl;
			return SK_MORE;
		}
		s->off = off + hl + (size_t)pl;
		if (s->depth > 0)
			s->left[s->depth - 1]--;
		if (container && n > 0)
			s->left[s->depth++] = n;
		while (s->depth > 0 && s->left[s->depth - 1] == 0)
			s->depth--;
		if (s->depth == 0)
			return SK_DONE;
	}
}

/* ---- record validation ---- */

static int str_eq(const msgpack_object_str *x, const msgpack_object_str *y)
{
	return x->size == y->size && !memcmp(x->ptr, y->ptr, x->size);
}

static int key_cmp(const void *a, const void *b)
{
	const msgpack_object_str *x = *(const msgpack_object_str *const *)a;
	const msgpack_object_str *y = *(const msgpack_object_str *const *)b;
	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return memcmp(x->ptr, y->ptr, x->size);
}

/* Map keys are strings, unique within their map (so a stream maps to JSON
 * objects and no reader can see a different value than another). */
static int check_obj(const msgpack_object *o, const char *where)
{
	char sb[256];
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			int rc = check_obj(&o->via.array.ptr[i], where);
			if (rc)
				return rc;
		}
	} else if (o->type == MSGPACK_OBJECT_MAP) {
		uint32_t n = o->via.map.size;
		const msgpack_object_kv *kv = o->via.map.ptr;
		for (uint32_t i = 0; i < n; i++) {
			if (kv[i].key.type != MSGPACK_OBJECT_STR)
				return rl_error(RL_EDATA, "%s: a map key is %s, not a string",
						where, type_name(kv[i].key.type));
			int rc = check_obj(&kv[i].val, where);
			if (rc)
				return rc;
		}
		const msgpack_object_str *dup = NULL;
		if (n <= 16) {
			for (uint32_t i = 0; i < n && !dup; i++)
				for (uint32_t j = i + 1; j < n && !dup; j++)
					if (str_eq(&kv[i].key.via.str, &kv[j].key.via.str))
						dup = &kv[i].key.via.str;
		} else {
			const msgpack_object_str **keys = rl_malloc_array(n, sizeof *keys);
			if (!keys)
				return RL_ESYS;
			for (uint32_t i = 0; i < n; i++)
				keys[i] = &kv[i].key.via.str;
			qsort(keys, n, sizeof *keys, key_cmp);
			for (uint32_t i = 1; i < n && !dup; i++)
				if (!key_cmp(&keys[i - 1], &keys[i]))
					dup = keys[i];
			free(keys);
		}
		if (dup)
			return rl_error(RL_EDATA, "%s: duplicate key '%s'", where,
					show(sb, sizeof sb, dup->ptr, dup->size));
	}
	return 0;
}

/* A record is a map whose first key is "t" with a string value. */
static int check_record(const msgpack_object *o, const char *where)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return rl_error(RL_EDATA, "%s is %s, not a map", where, type_name(o->type));
	if (o->via.map.size == 0 || !rl_obj_streq(&o->via.map.ptr[0].key, "t"))
		return rl_error(RL_EDATA, "%s does not start with a \"t\" key", where);
	if (o->via.map.ptr[0].val.type != MSGPACK_OBJECT_STR)
		return rl_error(RL_EDATA, "%s: \"t\" is %s, not a string", where,
				type_name(o->via.map.ptr[0].val.type));
	return check_obj(o, where);
}

/* Skims the next record into the buffer: 0 with *size set, 1 at a clean end
 * of input (no byte of a new record), or an error code. ctx names the record
 * for messages ("record 5", "header"). */
static int sr_read_raw(rl_sr *r, size_t *size, const char *ctx)
{
	skim s = {0};
	char why[256];
	r->hashed_to = r->base + r->pos;
	r->eager_limit = 0;
	for (;;) {
		size_t need;
		int st = skim_run(&s, r->buf + r->pos, r->len - r->pos, r->base + r->pos, &need,
				  why, sizeof why);
		if (st == SK_DONE) {
			*size = s.off;
			return 0;
		}
		if (st == SK_BAD)
			return rl_error(RL_EDATA, "'%s': corrupt stream: %s: %s", r->path, ctx,
					why);
		if (need > EAGER && !r->mem)
			r->eager_limit = r->base + r->pos + need;
		int rc = sr_fill(r, need);
		if (rc == 1) {
			if (r->len == r->pos)
				return 1;
			return rl_error(
				RL_EDATA,
				"'%s': truncated stream: cut off inside %s at byte %" PRIu64,
				r->path, ctx, r->base + r->len);
		}
		if (rc)
			return rc;
	}
}

/* Hashes the rest of the accepted record of size bytes at buf+pos. */
static void sr_hash_record(rl_sr *r, size_t size)
{
	uint64_t end = r->base + r->pos + size;
	if (end > r->hashed_to)
		XXH64_update(&r->xx, r->buf + (r->hashed_to - r->base),
			     (size_t)(end - r->hashed_to));
	r->hashed_to = end;
}

/* Unpacks size bytes at p into o using zone z (cleared first). */
static int sr_unpack(rl_sr *r, const uint8_t *p, size_t size, msgpack_zone *z, msgpack_object *o,
		     const char *ctx)
{
	msgpack_zone_clear(z);
	size_t off = 0;
	msgpack_unpack_return ur = msgpack_unpack((const char *)p, size, &off, z, o);
	if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
		return rl_error(RL_ESYS, "'%s': out of memory unpacking %s", r->path, ctx);
	if (ur != MSGPACK_UNPACK_SUCCESS || off != size)
		return rl_error(RL_EDATA, "'%s': corrupt stream: %s is not valid msgpack", r->path,
				ctx);
	return 0;
}

/* Copies the current record (size bytes at buf+pos) into k. */
static int keep(rl_sr *r, kept *k, size_t size, const char *ctx)
{
	k->bytes = rl_malloc(size);
	if (!k->bytes)
		return RL_ESYS;
	memcpy(k->bytes, r->buf + r->pos, size);
	if (!msgpack_zone_init(&k->zone, 8192))
		return rl_error(RL_ESYS, "out of memory");
	k->zone_ok = 1;
	return sr_unpack(r, k->bytes, size, &k->zone, &k->obj, ctx);
}

static void kept_free(kept *k)
{
	if (k->zone_ok)
		msgpack_zone_destroy(&k->zone);
	free(k->bytes);
}

/* What the first bytes of a non-stream look like, for the message. */
static const char *describe(const uint8_t *p, size_t n, char *buf, size_t cap)
{
	if (n == 0)
		return "it is empty";
	if (n >= 23 && !memcmp(p, "version https://git-lfs", 23))
		return "it is a Git LFS pointer, not the data: run git lfs pull";
	if (n >= 9 && p[8] == '{' && !p[4] && !p[5] && !p[6] && !p[7])
		return "it looks like a safetensors file";
	if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return "it is gzip-compressed";
	if (n >= 4 && !memcmp(p, "\x28\xb5\x2f\xfd", 4))
		return "it is zstd-compressed";
	if (n >= 4 && !memcmp(p, "PK\x03\x04", 4))
		return "it is a zip archive (a PyTorch checkpoint?)";
	if (n >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5)
		return "it looks like a Python pickle";
	size_t i = 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	if (i < n && (p[i] == '{' || p[i] == '['))
		return "it looks like JSON";
	/* (0x80-0x8f cannot start UTF-8 text: test for a map first) */
	if ((p[0] >= 0x80 && p[0] <= 0x8f) || p[0] == 0xde || p[0] == 0xdf)
		return "it is a msgpack map without a realign header";
	int text = 1;
	for (size_t j = 0; j < n && text; j++)
		if (p[j] < 0x20 && p[j] != '\n' && p[j] != '\t' && p[j] != '\r')
			text = 0;
	if (text)
		return "it looks like text";
	size_t o = (size_t)snprintf(buf, cap, "it starts with bytes");
	for (size_t j = 0; j < n && j < 8; j++)
		o += (size_t)snprintf(buf + o, cap - o, " %02x", p[j]);
	return buf;
}

/* Length of the signature every stream starts with (a map header, then
 * "t":"header"), or 0 if p[0, n) cannot start one; *complete tells whether
 * all of it is there. */
static size_t signature(const uint8_t *p, size_t n, int *complete)
{
	static const uint8_t tail[] = "\xa1t\xa6header";
	size_t mh;
	*complete = 0;
	if (n == 0)
		return 0;
	if (p[0] >= 0x80 && p[0] <= 0x8f)
		mh = 1;
	else if (p[0] == 0xde)
		mh = 3;
	else if (p[0] == 0xdf)
		mh = 5;
	else
		return 0;
	size_t total = mh + sizeof tail - 1;
	for (size_t i = mh; i < n && i < total; i++)
		if (p[i] != tail[i - mh])
			return 0;
	*complete = n >= total;
	return total;
}

static int sr_header(rl_sr *r, const char *want_kind)
{
	char sb[256], db[128];
	/* Ask only for the bytes the decision needs, so a slow producer's short
	 * header is not waited on: the signature, or 64 bytes to describe a
	 * non-stream. */
	int complete, rc = sr_fill(r, 1);
	if (rc > 1)
		return rc;
	size_t sig = signature(r->buf + r->pos, r->len - r->pos, &complete);
	rc = sr_fill(r, sig ? sig : 64);
	if (rc > 1)
		return rc;
	size_t avail = r->len - r->pos;
	if (!signature(r->buf + r->pos, avail, &complete))
		return rl_error(RL_EDATA, "'%s' is not a realign stream (%s)", r->path,
				describe(r->buf + r->pos, avail < 64 ? avail : 64, db, sizeof db));
	if (!complete)
		return rl_error(RL_EDATA,
				"'%s': truncated stream: cut off inside the header at byte %zu",
				r->path, avail);
	size_t size;
	snprintf(r->where, sizeof r->where, "'%s' header", r->path);
	rc = sr_read_raw(r, &size, "the header");
	if (rc)
		return rc == 1 ? RL_EDATA : rc;
	if ((rc = keep(r, &r->header, size, "the header")))
		return rc;
	const msgpack_object *h = &r->header.obj;
	if ((rc = check_record(h, r->where)))
		return rc;
	const msgpack_object_kv *kv = h->via.map.ptr;
	uint32_t n = h->via.map.size;
	if (n < 2 || !rl_obj_streq(&kv[1].key, "magic") || !rl_obj_streq(&kv[1].val, "realign"))
		return rl_error(RL_EDATA,
				"'%s' is not a realign stream (its header lacks the magic)",
				r->path);
	static const char *const keys[] = {"version", "kind", "tool", "tool_version"};
	for (int i = 0; i < 4; i++)
		if (n < 3u + (unsigned)i || !rl_obj_streq(&kv[2 + i].key, keys[i]))
			return rl_error(RL_EDATA, "%s: key %d is not '%s'", r->where, 3 + i,
					keys[i]);
	const msgpack_object *v = &kv[2].val;
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return rl_error(RL_EDATA, "%s: 'version' is %s, not an unsigned integer", r->where,
				type_name(v->type));
	if (v->via.u64 != RL_STREAM_VERSION)
		return rl_error(RL_EDATA,
				"'%s': stream format version %" PRIu64
				" is not supported (this build reads version %d)",
				r->path, v->via.u64, RL_STREAM_VERSION);
	for (int i = 3; i < 6; i++)
		if (kv[i].val.type != MSGPACK_OBJECT_STR)
			return rl_error(RL_EDATA, "%s: '%s' is %s, not a string", r->where,
					keys[i - 2], type_name(kv[i].val.type));
	const msgpack_object_str *k = &kv[3].val.via.str;
	if (k->size == 0 || k->size > 64 || memchr(k->ptr, 0, k->size))
		return rl_error(RL_EDATA, "%s: bad kind '%s'", r->where,
				show(sb, sizeof sb, k->ptr, k->size));
	r->kind = rl_malloc(k->size + 1u);
	if (!r->kind)
		return RL_ESYS;
	memcpy(r->kind, k->ptr, k->size);
	r->kind[k->size] = '\0';
	if (want_kind && strcmp(r->kind, want_kind))
		return rl_error(RL_EDATA, "'%s' is a %s stream, expected %s", r->path,
				show(sb, sizeof sb, k->ptr, k->size), want_kind);
	sr_hash_record(r, size);
	r->recsize = size;
	r->pos += size;
	return 0;
}

static int sr_open_common(rl_sr *r, const char *want_kind, rl_sr **out)
{
	XXH64_reset(&r->xx, 0);
	int rc = r->path ? 0 : RL_ESYS;
	if (!rc && msgpack_zone_init(&r->zone, 8192))
		r->zone_ok = 1;
	else if (!rc)
		rc = rl_error(RL_ESYS, "out of memory");
	if (!rc && !r->mem) {
		r->cap = RCHUNK;
		r->buf = rl_malloc(r->cap);
		if (!r->buf)
			rc = RL_ESYS;
	}
	if (!rc) {
		size_t n = strlen(r->path) + 16;
		r->hwhere = rl_malloc(n);
		if (r->hwhere)
			snprintf(r->hwhere, n, "'%s' header", r->path);
		else
			rc = RL_ESYS;
	}
	if (!rc)
		rc = sr_header(r, want_kind);
	if (rc) {
		rl_sr_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

int rl_sr_open_fd(rl_sr **out, int fd, const char *name, const char *want_kind)
{
	*out = NULL;
	rl_sr *r = rl_calloc(1, sizeof *r);
	if (!r)
		return RL_ESYS;
	r->fd = fd;
	r->path = rl_strdup(name);
	return sr_open_common(r, want_kind, out);
}

int rl_sr_open(rl_sr **out, const char *path, const char *want_kind)
{
	*out = NULL;
	if (strcmp(path, "-") == 0)
		return rl_sr_open_fd(out, STDIN_FILENO, "<stdin>", want_kind);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rl_error_errno(RL_ESYS, "'%s': cannot open", path);
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return rl_error(RL_EDATA, "'%s' is a directory, not a stream", path);
	}
	rl_sr *r = rl_calloc(1, sizeof *r);
	if (!r) {
		close(fd);
		return RL_ESYS;
	}
	r->fd = fd;
	r->owned = 1;
	r->path = rl_strdup(path);
	return sr_open_common(r, want_kind, out);
}

int rl_sr_open_mem(rl_sr **out, const void *buf, size_t len, const char *name,
		   const char *want_kind)
{
	*out = NULL;
	rl_sr *r = rl_calloc(1, sizeof *r);
	if (!r)
		return RL_ESYS;
	r->fd = -1;
	r->mem = 1;
	r->buf = (uint8_t *)(uintptr_t)buf; /* never written through */
	r->cap = r->len = len;
	r->eof = 1;
	r->path = rl_strdup(name);
	return sr_open_common(r, want_kind, out);
}

void rl_sr_close(rl_sr *r)
{
	if (!r)
		return;
	if (r->owned)
		close(r->fd);
	if (!r->mem)
		free(r->buf);
	if (r->zone_ok)
		msgpack_zone_destroy(&r->zone);
	kept_free(&r->header);
	kept_free(&r->end);
	free(r->kind);
	free(r->hwhere);
	free(r->path);
	free(r);
}

const msgpack_object *rl_sr_header(const rl_sr *r)
{
	return &r->header.obj;
}

const char *rl_sr_kind(const rl_sr *r)
{
	return r->kind;
}

const char *rl_sr_path(const rl_sr *r)
{
	return r->path;
}

const char *rl_sr_where(const rl_sr *r)
{
	return r->where;
}

const rl_chunk *rl_sr_chunk(const rl_sr *r)
{
	return r->is_chunk ? &r->chunk : NULL;
}

uint64_t rl_sr_count(const rl_sr *r)
{
	return r->count;
}

size_t rl_sr_record_bytes(const rl_sr *r)
{
	return r->recsize;
}

uint64_t rl_sr_bytes(const rl_sr *r)
{
	return r->base + r->pos;
}

const msgpack_object *rl_sr_end(const rl_sr *r)
{
	return r->have_end ? &r->end.obj : NULL;
}

/* The chunk in r->chunk continues (or starts) a tensor in order. */
static int sr_chunk_order(rl_sr *r)
{
	const rl_chunk *c = &r->chunk;
	char sb[256];
	if (r->in_tensor) {
		if (strcmp(c->name, r->tname) || c->dtype != r->tdtype || c->ndim != r->tndim ||
		    memcmp(c->shape, r->tshape, (size_t)c->ndim * sizeof *c->shape))
			return rl_error(RL_EDATA,
					"%s: tensor '%s' starts inside tensor '%s' (%" PRIu64
					" of %" PRIu64 " elements)",
					r->where, show(sb, sizeof sb, c->name, strlen(c->name)),
					r->tshown, r->tnext, r->tnumel);
		if (c->offset != r->tnext)
			return rl_error(RL_EDATA,
					"%s: tensor '%s' chunk at element %" PRIu64
					", expected %" PRIu64,
					r->where, r->tshown, c->offset, r->tnext);
	} else if (c->offset != 0) {
		return rl_error(RL_EDATA, "%s: tensor '%s' starts at element %" PRIu64 ", not 0",
				r->where, show(sb, sizeof sb, c->name, strlen(c->name)), c->offset);
	}
	r->in_tensor = c->offset + c->count < c->numel;
	if (r->in_tensor) {
		memcpy(r->tname, c->name, sizeof r->tname);
		show(r->tshown, sizeof r->tshown, c->name, strlen(c->name));
		r->tdtype = c->dtype;
		r->tndim = c->ndim;
		memcpy(r->tshape, c->shape, sizeof r->tshape);
		r->tnumel = c->numel;
		r->tnext = c->offset + c->count;
	}
	return 0;
}

struct canon_buf {
	uint8_t *p;
	size_t *len;
};

static int canon_write(void *data, const char *p, size_t n)
{
	struct canon_buf *b = data;
	if (*b->len + n > 64)
		return -1;
	memcpy(b->p + *b->len, p, n);
	*b->len += n;
	return 0;
}

/* The end record: count, checksum, no tensor left open, nothing after it. */
static int sr_end(rl_sr *r, size_t size)
{
	int rc;
	snprintf(r->where, sizeof r->where, "'%s' end record", r->path);
	if ((rc = keep(r, &r->end, size, "the end record")))
		return rc;
	r->pos += size;
	r->recsize = size;
	uint64_t n = 0, sum = 0;
	if ((rc = rl_obj_uint(&r->end.obj, "records", r->where, &n)) ||
	    (rc = rl_obj_uint(&r->end.obj, "checksum", r->where, &sum)))
		return rc;
	uint64_t want = XXH64_digest(&r->xx);
	if (sum != want)
		return rl_error(RL_EDATA,
				"'%s': corrupt stream: checksum mismatch (the end record says "
				"%016" PRIx64 ", the data hashes to %016" PRIx64 ")",
				r->path, sum, want);
	if (n != r->count)
		return rl_error(RL_EDATA,
				"'%s': corrupt stream: the end record counts %" PRIu64
				" records, the stream has %" PRIu64,
				r->path, n, r->count);
	/* One encoding only: a byte changed inside the end record (past the
	 * checksum's reach) must not go unnoticed even where it re-encodes the
	 * same values. */
	uint8_t canon[64];
	size_t clen = 0;
	msgpack_packer pk;
	msgpack_packer_init(&pk, &(struct canon_buf){canon, &clen}, canon_write);
	msgpack_pack_map(&pk, 3);
	rl_pack_kv_str(&pk, "t", "end");
	rl_pack_kv_uint(&pk, "records", n);
	rl_pack_kv_uint(&pk, "checksum", sum);
	if (clen != size || memcmp(canon, r->end.bytes, size))
		return rl_error(RL_EDATA,
				"'%s': corrupt stream: the end record is not in its canonical "
				"encoding",
				r->path);
	if (r->in_tensor)
		return rl_error(RL_EDATA,
				"'%s': corrupt stream: it ends inside tensor '%s' (%" PRIu64
				" of %" PRIu64 " elements)",
				r->path, r->tshown, r->tnext, r->tnumel);
	rc = sr_fill(r, 1);
	if (rc == 0)
		return rl_error(RL_EDATA,
				"'%s': trailing data after the end record at byte %" PRIu64,
				r->path, r->base + r->pos);
	if (rc > 1)
		return rc;
	r->have_end = 1;
	r->done = 1;
	return 0;
}

static int sr_next(rl_sr *r, const msgpack_object **rec)
{
	char ctx[64], sb[256];
	size_t size;
	r->is_chunk = 0;
	snprintf(ctx, sizeof ctx, "record %" PRIu64, r->count + 1);
	snprintf(r->where, sizeof r->where, "'%s' %s", r->path, ctx);
	int rc = sr_read_raw(r, &size, ctx);
	if (rc == 1)
		return rl_error(RL_EDATA,
				"'%s': truncated stream: no end record after %" PRIu64 " records",
				r->path, r->count);
	if (rc)
		return rc;
	const uint8_t *p = r->buf + r->pos;
	if ((rc = sr_unpack(r, p, size, &r->zone, &r->obj, ctx)))
		return rc;
	if ((rc = check_record(&r->obj, r->where)))
		return rc;
	const msgpack_object_str *t = &r->obj.via.map.ptr[0].val.via.str;
	if (t->size == 3 && !memcmp(t->ptr, "end", 3))
		return sr_end(r, size);
	if (t->size == 6 && !memcmp(t->ptr, "header", 6))
		return rl_error(RL_EDATA, "%s is a second header", r->where);
	snprintf(r->where, sizeof r->where, "'%s' record %" PRIu64 " (%s)", r->path, r->count + 1,
		 show(sb, sizeof sb, t->ptr, t->size));
	if (t->size == 6 && !memcmp(t->ptr, "tensor", 6)) {
		if ((rc = rl_chunk_parse(&r->obj, r->where, &r->chunk)) || (rc = sr_chunk_order(r)))
			return rc;
		r->is_chunk = 1;
	} else if (r->in_tensor) {
		return rl_error(RL_EDATA,
				"%s: record inside tensor '%s' (%" PRIu64 " of %" PRIu64
				" elements)",
				r->where, r->tshown, r->tnext, r->tnumel);
	}
	sr_hash_record(r, size);
	r->pos += size;
	r->recsize = size;
	r->count++;
	*rec = &r->obj;
	return 0;
}

int rl_sr_next(rl_sr *r, const msgpack_object **rec)
{
	*rec = NULL;
	if (r->err)
		return rl_error(r->err, "%s", r->errmsg);
	if (r->done)
		return 0;
	return sr_sticky(r, sr_next(r, rec));
}

int rl_sr_hdr_str(const rl_sr *r, const char *key, const char **s, size_t *len)
{
	return rl_obj_str(&r->header.obj, key, r->hwhere, s, len);
}

int rl_sr_hdr_int(const rl_sr *r, const char *key, int64_t *v)
{
	return rl_obj_int(&r->header.obj, key, r->hwhere, v);
}

int rl_sr_hdr_uint(const rl_sr *r, const char *key, uint64_t *v)
{
	return rl_obj_uint(&r->header.obj, key, r->hwhere, v);
}

int rl_sr_hdr_f64(const rl_sr *r, const char *key, double *v)
{
	return rl_obj_f64(&r->header.obj, key, r->hwhere, v);
}

int rl_sr_hdr_bool(const rl_sr *r, const char *key, int *v)
{
	return rl_obj_bool(&r->header.obj, key, r->hwhere, v);
}

/* ---- object access ---- */

int rl_obj_streq(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	       !memcmp(o->via.str.ptr, s, n);
}

const msgpack_object *rl_obj_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (rl_obj_streq(&map->via.map.ptr[i].key, key))
			return &map->via.map.ptr[i].val;
	return NULL;
}

const char *rl_rec_type(const msgpack_object *rec, size_t *len)
{
	const msgpack_object *t = rl_obj_get(rec, "t");
	if (!t || t->type != MSGPACK_OBJECT_STR) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = t->via.str.size;
	return t->via.str.ptr;
}

int rl_rec_is(const msgpack_object *rec, const char *type)
{
	const msgpack_object *t = rl_obj_get(rec, "t");
	return t && rl_obj_streq(t, type);
}

static const msgpack_object *get_typed(const msgpack_object *map, const char *key, const char *what,
				       const char *want, int *rc, int ok1, int ok2, int ok3)
{
	const msgpack_object *o = rl_obj_get(map, key);
	*rc = 0;
	if (!o)
		*rc = rl_error(RL_EDATA, "%s: key '%s' is missing", what, key);
	else if ((int)o->type != ok1 && (int)o->type != ok2 && (int)o->type != ok3)
		*rc = rl_error(RL_EDATA, "%s: '%s' is %s, not %s", what, key, type_name(o->type),
			       want);
	return *rc ? NULL : o;
}

int rl_obj_str(const msgpack_object *map, const char *key, const char *what, const char **s,
	       size_t *len)
{
	int rc;
	const msgpack_object *o =
		get_typed(map, key, what, "a string", &rc, MSGPACK_OBJECT_STR, -1, -1);
	if (o) {
		*s = o->via.str.ptr;
		if (len)
			*len = o->via.str.size;
	}
	return rc;
}

int rl_obj_int(const msgpack_object *map, const char *key, const char *what, int64_t *v)
{
	int rc;
	const msgpack_object *o =
		get_typed(map, key, what, "an integer", &rc, MSGPACK_OBJECT_POSITIVE_INTEGER,
			  MSGPACK_OBJECT_NEGATIVE_INTEGER, -1);
	if (!o)
		return rc;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 > (uint64_t)INT64_MAX)
		return rl_error(RL_EDATA, "%s: '%s' is out of range (%" PRIu64 ")", what, key,
				o->via.u64);
	*v = o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)o->via.u64 : o->via.i64;
	return 0;
}

int rl_obj_uint(const msgpack_object *map, const char *key, const char *what, uint64_t *v)
{
	int rc;
	const msgpack_object *o = get_typed(map, key, what, "an unsigned integer", &rc,
					    MSGPACK_OBJECT_POSITIVE_INTEGER, -1, -1);
	if (o)
		*v = o->via.u64;
	return rc;
}

int rl_obj_f64(const msgpack_object *map, const char *key, const char *what, double *v)
{
	const msgpack_object *o = rl_obj_get(map, key);
	if (!o)
		return rl_error(RL_EDATA, "%s: key '%s' is missing", what, key);
	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*v = o->via.f64;
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*v = (double)o->via.u64;
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*v = (double)o->via.i64;
		return 0;
	default:
		return rl_error(RL_EDATA, "%s: '%s' is %s, not a number", what, key,
				type_name(o->type));
	}
}

int rl_obj_bool(const msgpack_object *map, const char *key, const char *what, int *v)
{
	int rc;
	const msgpack_object *o =
		get_typed(map, key, what, "a boolean", &rc, MSGPACK_OBJECT_BOOLEAN, -1, -1);
	if (o)
		*v = o->via.boolean;
	return rc;
}

int rl_obj_bin(const msgpack_object *map, const char *key, const char *what, const void **p,
	       size_t *n)
{
	int rc;
	const msgpack_object *o =
		get_typed(map, key, what, "binary", &rc, MSGPACK_OBJECT_BIN, -1, -1);
	if (o) {
		*p = o->via.bin.ptr;
		*n = o->via.bin.size;
	}
	return rc;
}

int rl_obj_strcpy(const msgpack_object *o, char *buf, size_t cap)
{
	char sb[256];
	if (o->type != MSGPACK_OBJECT_STR)
		return rl_error(RL_EDATA, "expected a string, got %s", type_name(o->type));
	if (memchr(o->via.str.ptr, 0, o->via.str.size))
		return rl_error(RL_EDATA, "string '%s' holds a NUL byte",
				show(sb, sizeof sb, o->via.str.ptr, o->via.str.size));
	if (o->via.str.size >= cap)
		return rl_error(RL_EDATA, "string '%s' is longer than %zu bytes",
				show(sb, sizeof sb, o->via.str.ptr, o->via.str.size), cap - 1);
	memcpy(buf, o->via.str.ptr, o->via.str.size);
	buf[o->via.str.size] = '\0';
	return 0;
}

int rl_chunk_parse(const msgpack_object *rec, const char *what, rl_chunk *c)
{
	int rc;
	char sb[256];
	const char *s = NULL;
	size_t len = 0;
	memset(c, 0, sizeof *c);
	if ((rc = rl_obj_str(rec, "name", what, &s, &len)))
		return rc;
	if (len == 0 || len > RL_MAX_NAME || memchr(s, 0, len))
		return rl_error(RL_EDATA, "%s: bad tensor name '%s'", what,
				show(sb, sizeof sb, s, len));
	memcpy(c->name, s, len);
	char nb[256]; /* the name as messages show it */
	show(nb, sizeof nb, s, len);
	if ((rc = rl_obj_str(rec, "dtype", what, &s, &len)))
		return rc;
	if (rl_dtype_parse(s, len, &c->dtype))
		return rl_error(RL_EDATA, "%s: tensor '%s': unknown dtype '%s'", what, nb,
				show(sb, sizeof sb, s, len));
	const msgpack_object *sh = rl_obj_get(rec, "shape");
	if (!sh || sh->type != MSGPACK_OBJECT_ARRAY)
		return rl_error(RL_EDATA, "%s: tensor '%s': 'shape' is %s, not an array", what, nb,
				sh ? type_name(sh->type) : "missing");
	if (sh->via.array.size > RL_MAX_DIMS)
		return rl_error(RL_EDATA, "%s: tensor '%s' has %u dimensions (at most %d)", what,
				nb, sh->via.array.size, RL_MAX_DIMS);
	c->ndim = (int)sh->via.array.size;
	for (int i = 0; i < c->ndim; i++) {
		const msgpack_object *d = &sh->via.array.ptr[i];
		if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER || d->via.u64 > (uint64_t)INT64_MAX)
			return rl_error(RL_EDATA, "%s: tensor '%s': bad dimension %d in 'shape'",
					what, nb, i);
		c->shape[i] = (int64_t)d->via.u64;
	}
	if (shape_numel(c->ndim, c->shape, &c->numel))
		return rl_error(RL_EDATA, "%s: tensor '%s': shape %s overflows", what, nb,
				show_shape(sb, sizeof sb, c->ndim, c->shape));
	const void *data;
	size_t nbytes;
	if ((rc = rl_obj_uint(rec, "offset", what, &c->offset)) ||
	    (rc = rl_obj_uint(rec, "count", what, &c->count)) ||
	    (rc = rl_obj_bin(rec, "data", what, &data, &nbytes)))
		return rc;
	if (c->offset > c->numel || c->count > c->numel - c->offset)
		return rl_error(RL_EDATA,
				"%s: tensor '%s': elements [%" PRIu64 ", %" PRIu64 "+%" PRIu64
				") go past its %" PRIu64 " elements (shape %s)",
				what, nb, c->offset, c->offset, c->count, c->numel,
				show_shape(sb, sizeof sb, c->ndim, c->shape));
	if (c->count == 0 && c->numel != 0)
		return rl_error(RL_EDATA, "%s: tensor '%s': empty chunk", what, nb);
	uint64_t esize = rl_dtype_size(c->dtype);
	if (c->count > RL_CHUNK_BYTES / esize)
		return rl_error(RL_EDATA,
				"%s: tensor '%s': chunk of %" PRIu64
				" elements is over the %u-byte chunk limit",
				what, nb, c->count, (unsigned)RL_CHUNK_BYTES);
	if ((uint64_t)nbytes != c->count * esize)
		return rl_error(RL_EDATA,
				"%s: tensor '%s': %zu payload bytes for %" PRIu64
				" %s elements (want %" PRIu64 ")",
				what, nb, nbytes, c->count, rl_dtype_name(c->dtype),
				c->count * esize);
	c->data = data;
	return 0;
}
