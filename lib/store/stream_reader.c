/* stream_reader.c — the stream reader (rl_sr, see stream.h; the format is
 * man/rl-stream.5).
 *
 * NOTES ON THE DESIGN
 * 1. Before msgpack-c sees a record, skim (stream_validate.c) walks its
 *    encoding (resumably, as bytes arrive) and checks every declared length,
 *    element count, the nesting depth and the object count against the
 *    limits. Only then is the record read whole into the buffer and unpacked
 *    (msgpack_unpack into a zone reused per record; strings and bins point
 *    into the buffer). So memory is bounded by RL_MAX_RECORD plus the zone
 *    for RL_MAX_OBJECTS objects, whatever the input claims, and a hostile
 *    length is refused before anything is allocated for it.
 * 2. Reads ask for what the current record still needs (at least 256 KiB, at
 *    most 1 MiB a call), so a big chunk record leaves little behind to move
 *    when the buffer is compacted for the next one, and a big record's bytes
 *    are hashed as each read brings them in, while they are in cache.
 * 3. The checksum covers the exact bytes before the end record: the header
 *    and each data record are hashed once they parse; the end record is not.
 */
#define XXH_STATIC_LINKING_ONLY
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/error.h"
#include "core/inputs.h"
#include "store/stream.h"
#include "store/stream_int.h"

#define RCHUNK (256u << 10) /* smallest read(2) the reader asks for */
#define RSLICE (1u << 20)   /* largest read(2) */
#define EAGER (64u << 10)   /* records needing more are hashed as they arrive */

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

/* Skims the next record into the buffer: 0 with *size set, 1 at a clean end
 * of input (no byte of a new record), or an error code. ctx names the record
 * for messages ("record 5", "header"). */
static int sr_read_raw(rl_sr *r, size_t *size, const char *ctx)
{
	rls_skim s = {0};
	char why[256];
	r->hashed_to = r->base + r->pos;
	r->eager_limit = 0;
	for (;;) {
		size_t need;
		int st = rls_skim_run(&s, r->buf + r->pos, r->len - r->pos, r->base + r->pos, &need,
				      why, sizeof why);
		if (st == RLS_SKIM_DONE) {
			*size = s.off;
			return 0;
		}
		if (st == RLS_SKIM_BAD)
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
	if ((rc = rls_check_record(h, r->where)))
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
				rls_type_name(v->type));
	if (v->via.u64 != RL_STREAM_VERSION)
		return rl_error(RL_EDATA,
				"'%s': stream format version %" PRIu64
				" is not supported (this build reads version %d)",
				r->path, v->via.u64, RL_STREAM_VERSION);
	for (int i = 3; i < 6; i++)
		if (kv[i].val.type != MSGPACK_OBJECT_STR)
			return rl_error(RL_EDATA, "%s: '%s' is %s, not a string", r->where,
					keys[i - 2], rls_type_name(kv[i].val.type));
	const msgpack_object_str *k = &kv[3].val.via.str;
	if (k->size == 0 || k->size > 64 || memchr(k->ptr, 0, k->size))
		return rl_error(RL_EDATA, "%s: bad kind '%s'", r->where,
				rls_show(sb, sizeof sb, k->ptr, k->size));
	r->kind = rl_malloc(k->size + 1u);
	if (!r->kind)
		return RL_ESYS;
	memcpy(r->kind, k->ptr, k->size);
	r->kind[k->size] = '\0';
	if (want_kind && strcmp(r->kind, want_kind))
		return rl_error(RL_EDATA, "'%s' is a %s stream, expected %s", r->path,
				rls_show(sb, sizeof sb, k->ptr, k->size), want_kind);
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
	rl_input_file(fd, path);
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
					r->where, rls_show(sb, sizeof sb, c->name, strlen(c->name)),
					r->tshown, r->tnext, r->tnumel);
		if (c->offset != r->tnext)
			return rl_error(RL_EDATA,
					"%s: tensor '%s' chunk at element %" PRIu64
					", expected %" PRIu64,
					r->where, r->tshown, c->offset, r->tnext);
	} else if (c->offset != 0) {
		return rl_error(RL_EDATA, "%s: tensor '%s' starts at element %" PRIu64 ", not 0",
				r->where, rls_show(sb, sizeof sb, c->name, strlen(c->name)),
				c->offset);
	}
	r->in_tensor = c->offset + c->count < c->numel;
	if (r->in_tensor) {
		memcpy(r->tname, c->name, sizeof r->tname);
		rls_show(r->tshown, sizeof r->tshown, c->name, strlen(c->name));
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
	if ((rc = rls_check_record(&r->obj, r->where)))
		return rc;
	const msgpack_object_str *t = &r->obj.via.map.ptr[0].val.via.str;
	if (t->size == 3 && !memcmp(t->ptr, "end", 3))
		return sr_end(r, size);
	if (t->size == 6 && !memcmp(t->ptr, "header", 6))
		return rl_error(RL_EDATA, "%s is a second header", r->where);
	snprintf(r->where, sizeof r->where, "'%s' record %" PRIu64 " (%s)", r->path, r->count + 1,
		 rls_show(sb, sizeof sb, t->ptr, t->size));
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
