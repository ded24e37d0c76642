/* stream_validate.c — what a stream's bytes may be (rl-stream(5)): the
 * msgpack encoding heads, skim (one record's encoding checked against the
 * limits before msgpack-c sees it), the record structure, and typed access to
 * a record's fields with one-line messages. See stream_int.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/stream.h"
#include "store/stream_int.h"

/* Renders n untrusted bytes for a one-line message: printable ASCII kept,
 * anything else as \xNN, cut after 48 characters. */
const char *rls_show(char *buf, size_t cap, const void *s, size_t n)
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

const char *rls_type_name(msgpack_object_type t)
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
const char *rls_show_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
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
int rls_shape_numel(int ndim, const int64_t *shape, uint64_t *numel)
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

uint64_t rls_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* 0, -1 for the never-used byte 0xc1, -2 for an ext type. */
int rls_mp_first(unsigned b, rls_mp_head *h)
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
void rls_mp_len(rls_mp_head *h, const uint8_t *p)
{
	uint64_t v = rls_be(p, h->lenbytes);
	if (h->container)
		h->n = h->map ? 2 * v : v;
	else
		h->pl = v;
}

/* ---- skim: checks one record's encoding against the limits ---- */

/* Walks complete objects of one record in p[0, avail). RLS_SKIM_DONE: the record is
 * s->off bytes. RLS_SKIM_MORE: *need bytes are needed to go on. RLS_SKIM_BAD: the encoding
 * is invalid or over a limit (message in why; at is the stream offset of p). */
int rls_skim_run(rls_skim *s, const uint8_t *p, size_t avail, uint64_t at, size_t *need, char *why,
		 size_t whycap)
{
	for (;;) {
		size_t off = s->off;
		if (off >= avail) {
			*need = off + 1;
			return RLS_SKIM_MORE;
		}
		unsigned b = p[off];
		rls_mp_head mh;
		int st = rls_mp_first(b, &mh);
		if (st == -1) {
			snprintf(why, whycap, "invalid msgpack byte 0xc1 at byte %" PRIu64,
				 at + off);
			return RLS_SKIM_BAD;
		}
		if (st == -2) {
			snprintf(why, whycap,
				 "msgpack ext type (byte 0x%02x) at byte %" PRIu64
				 ": not allowed in a realign stream",
				 b, at + off);
			return RLS_SKIM_BAD;
		}
		int lenbytes = mh.lenbytes, container = mh.container, map = mh.map;
		uint64_t n = mh.n, pl = mh.pl;
		const char *what = mh.what;
		size_t hl = mh.hl;
		if (off + hl > avail) {
			*need = off + hl;
			return RLS_SKIM_MORE;
		}
		if (lenbytes) {
			rls_mp_len(&mh, p + off + 1);
			n = mh.n;
			pl = mh.pl;
		}
		if ((uint64_t)off + hl + pl > RL_MAX_RECORD) {
			snprintf(why, whycap,
				 "a %" PRIu64 "-byte %s at byte %" PRIu64
				 " goes past the %u-byte record limit",
				 pl, what, at + off, (unsigned)RL_MAX_RECORD);
			return RLS_SKIM_BAD;
		}
		if (container && (n > RL_MAX_OBJECTS || (uint64_t)off + hl + n > RL_MAX_RECORD)) {
			snprintf(why, whycap,
				 "a%s of %" PRIu64 " %s at byte %" PRIu64
				 " goes past the record limits",
				 map ? " map" : "n array", map ? n / 2 : n,
				 map ? "pairs" : "elements", at + off);
			return RLS_SKIM_BAD;
		}
		if (++s->objects > RL_MAX_OBJECTS) {
			snprintf(why, whycap, "record holds more than %u msgpack objects",
				 (unsigned)RL_MAX_OBJECTS);
			return RLS_SKIM_BAD;
		}
		if (container && n > 0 && s->depth == RL_MAX_DEPTH) {
			snprintf(why, whycap,
				 "maps and arrays nested deeper than %d at byte %" PRIu64,
				 RL_MAX_DEPTH, at + off);
			return RLS_SKIM_BAD;
		}
		if (off + hl + pl > avail) {
			*need = off + hl + (size_t)pl;
			return RLS_SKIM_MORE;
		}
		s->off = off + hl + (size_t)pl;
		if (s->depth > 0)
			s->left[s->depth - 1]--;
		if (container && n > 0)
			s->left[s->depth++] = n;
		while (s->depth > 0 && s->left[s->depth - 1] == 0)
			s->depth--;
		if (s->depth == 0)
			return RLS_SKIM_DONE;
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
						where, rls_type_name(kv[i].key.type));
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
					rls_show(sb, sizeof sb, dup->ptr, dup->size));
	}
	return 0;
}

/* A record is a map whose first key is "t" with a string value. */
int rls_check_record(const msgpack_object *o, const char *where)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return rl_error(RL_EDATA, "%s is %s, not a map", where, rls_type_name(o->type));
	if (o->via.map.size == 0 || !rl_obj_streq(&o->via.map.ptr[0].key, "t"))
		return rl_error(RL_EDATA, "%s does not start with a \"t\" key", where);
	if (o->via.map.ptr[0].val.type != MSGPACK_OBJECT_STR)
		return rl_error(RL_EDATA, "%s: \"t\" is %s, not a string", where,
				rls_type_name(o->via.map.ptr[0].val.type));
	return check_obj(o, where);
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
		*rc = rl_error(RL_EDATA, "%s: '%s' is %s, not %s", what, key,
			       rls_type_name(o->type), want);
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
				rls_type_name(o->type));
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
		return rl_error(RL_EDATA, "expected a string, got %s", rls_type_name(o->type));
	if (memchr(o->via.str.ptr, 0, o->via.str.size))
		return rl_error(RL_EDATA, "string '%s' holds a NUL byte",
				rls_show(sb, sizeof sb, o->via.str.ptr, o->via.str.size));
	if (o->via.str.size >= cap)
		return rl_error(RL_EDATA, "string '%s' is longer than %zu bytes",
				rls_show(sb, sizeof sb, o->via.str.ptr, o->via.str.size), cap - 1);
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
				rls_show(sb, sizeof sb, s, len));
	memcpy(c->name, s, len);
	char nb[256]; /* the name as messages show it */
	rls_show(nb, sizeof nb, s, len);
	if ((rc = rl_obj_str(rec, "dtype", what, &s, &len)))
		return rc;
	if (rl_dtype_parse(s, len, &c->dtype))
		return rl_error(RL_EDATA, "%s: tensor '%s': unknown dtype '%s'", what, nb,
				rls_show(sb, sizeof sb, s, len));
	const msgpack_object *sh = rl_obj_get(rec, "shape");
	if (!sh || sh->type != MSGPACK_OBJECT_ARRAY)
		return rl_error(RL_EDATA, "%s: tensor '%s': 'shape' is %s, not an array", what, nb,
				sh ? rls_type_name(sh->type) : "missing");
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
	if (rls_shape_numel(c->ndim, c->shape, &c->numel))
		return rl_error(RL_EDATA, "%s: tensor '%s': shape %s overflows", what, nb,
				rls_show_shape(sb, sizeof sb, c->ndim, c->shape));
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
				rls_show_shape(sb, sizeof sb, c->ndim, c->shape));
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
