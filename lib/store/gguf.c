/* gguf.c — validated, memory-mapped GGUF reader (v2, v3, split models).
 *
 * NOTES ON THE DESIGN
 *
 * 1. Nothing in a file is used before the whole header has been validated, and
 *    nothing is allocated from a count before the count is checked against the
 *    bytes left in the file (each kv takes at least 14 bytes, each tensor info
 *    25, each array element its fixed size, 8 for a string, 12 for an array),
 *    so a hostile count fails fast instead of exhausting memory.
 * 2. Reads go through one cursor that checks every length against the end of
 *    the buffer before touching it; a short read names what was being read,
 *    where, and how many bytes it needed.
 * 3. Layout, as llama.cpp's gguf.cpp requires it: sorted by offset, the first
 *    tensor at 0 and each next one exactly where the previous ends rounded up
 *    to the alignment (its offset is a multiple of the alignment); the last one
 *    ends inside the file, followed by at most its padding. Unlike gguf.cpp the
 *    tensor infos need not be in offset order (that is a writer's choice, not a
 *    hazard).
 * 4. Metadata values are decoded in place: scalars into the union, strings as
 *    (pointer, length) into the map, arrays as (type, count, first element);
 *    arrays are walked once while validating and again on demand.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "store/gguf.h"

#define GGUF_MAGIC "GGUF"
#define LFS_MAGIC "version https://git-lfs.github.com/spec/"
#define MIN_KV_BYTES 14	    /* key length 8, key >= 1, type 4, value >= 1 */
#define MIN_TENSOR_BYTES 25 /* name length 8, name >= 1, n_dims 4, type 4, offset 8 */

static const char *const vtype_names[RL_GGUF_VTYPE_COUNT] = {
	"u8",	"i8",	  "u16",   "i16", "u32", "i32", "f32",
	"bool", "string", "array", "u64", "i64", "f64",
};

static const uint8_t vtype_size[RL_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *rl_gguf_vtype_name(rl_gguf_vtype t)
{
	return (unsigned)t < RL_GGUF_VTYPE_COUNT ? vtype_names[t] : "unknown type";
}

/* "a u32", "an i8", "an f32", "a string": the type with its article, for messages */
static const char *a_vtype(rl_gguf_vtype t)
{
	static const char *const with_article[RL_GGUF_VTYPE_COUNT] = {
		"a u8",	  "an i8",    "a u16",	  "an i16", "a u32",  "an i32", "an f32",
		"a bool", "a string", "an array", "a u64",  "an i64", "an f64",
	};
	return (unsigned)t < RL_GGUF_VTYPE_COUNT ? with_article[t] : "an unknown type";
}

/* ---- cursor ---- */

typedef struct rd {
	const uint8_t *b;
	uint64_t n, i;
	const char *path;
} rd;

static uint64_t le(const uint8_t *p, int nbytes)
{
	uint64_t v = 0;
	for (int k = nbytes - 1; k >= 0; k--)
		v = v << 8 | p[k];
	return v;
}

/* RL_OK if n bytes remain; else a "truncated" error naming what (printf format). */
__attribute__((format(printf, 3, 4))) static int need(const rd *r, uint64_t n, const char *fmt, ...)
{
	if (n <= r->n - r->i)
		return RL_OK;
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return rl_error(RL_EDATA,
			"'%s': truncated: %s at byte %" PRIu64 " needs %" PRIu64 " bytes, %" PRIu64
			" remain",
			r->path, what, r->i, n, r->n - r->i);
}

static uint64_t take(rd *r, int nbytes)
{
	uint64_t v = le(r->b + r->i, nbytes);
	r->i += (uint64_t)nbytes;
	return v;
}

/* ---- metadata values ---- */

typedef struct vctx {
	const char *key; /* for messages */
	int depth;	 /* arrays enclosing this value */
} vctx;

static int read_value(rd *r, rl_gguf_vtype type, rl_gguf_val *out, const vctx *c);

/* Validates an array body (element type, count, elements) at the cursor. */
static int read_array(rd *r, rl_gguf_val *out, const vctx *c)
{
	int rc;
	if ((rc = need(r, 12, "the element type and count of key '%s'", c->key)))
		return rc;
	uint32_t et = (uint32_t)take(r, 4);
	uint64_t count = take(r, 8);
	if (et >= RL_GGUF_VTYPE_COUNT)
		return rl_error(RL_EDATA, "'%s': key '%s': array of unknown value type %" PRIu32,
				r->path, c->key, et);
	if (et == RL_GGUF_ARRAY && c->depth + 1 >= RL_GGUF_MAX_NESTING)
		return rl_error(RL_EDATA, "'%s': key '%s': arrays nested more than %d deep",
				r->path, c->key, RL_GGUF_MAX_NESTING);
	uint64_t min = et == RL_GGUF_STRING ? 8 : et == RL_GGUF_ARRAY ? 12 : vtype_size[et];
	uint64_t left = r->n - r->i;
	if (count > left / min)
		return rl_error(RL_EDATA,
				"'%s': key '%s': array of %" PRIu64 " %s at byte %" PRIu64
				" runs past the end of the file (%" PRIu64 " bytes remain)",
				r->path, c->key, count, vtype_names[et], r->i, left);
	out->type = RL_GGUF_ARRAY;
	out->as.arr.type = (rl_gguf_vtype)et;
	out->as.arr.count = count;
	out->as.arr.elems = r->b + r->i;
	if (et != RL_GGUF_STRING && et != RL_GGUF_ARRAY && et != RL_GGUF_BOOL) {
		r->i += count * min; /* fixed-size elements: every bit pattern is valid */
		return RL_OK;
	}
	vctx inner = {c->key, c->depth + 1};
	for (uint64_t k = 0; k < count; k++) {
		rl_gguf_val v;
		if ((rc = read_value(r, (rl_gguf_vtype)et, &v, &inner)))
			return rc;
	}
	return RL_OK;
}

static int read_value(rd *r, rl_gguf_vtype type, rl_gguf_val *out, const vctx *c)
{
	int rc;
	out->type = type;
	switch (type) {
	case RL_GGUF_STRING: {
		if ((rc = need(r, 8, "a string length in key '%s'", c->key)))
			return rc;
		uint64_t len = take(r, 8);
		if ((rc = need(r, len, "a string in key '%s'", c->key)))
			return rc;
		out->as.s.s = (const char *)r->b + r->i;
		out->as.s.len = len;
		r->i += len;
		return RL_OK;
	}
	case RL_GGUF_ARRAY:
		return read_array(r, out, c);
	case RL_GGUF_BOOL:
		if ((rc = need(r, 1, "the value of key '%s'", c->key)))
			return rc;
		out->as.u = take(r, 1);
		if (out->as.u > 1)
			return rl_error(RL_EDATA,
					"'%s': key '%s': bool value %" PRIu64 " at byte %" PRIu64
					" (must be 0 or 1)",
					r->path, c->key, out->as.u, r->i - 1);
		return RL_OK;
	default: {
		int size = vtype_size[type];
		if ((rc = need(r, (uint64_t)size, "the value of key '%s'", c->key)))
			return rc;
		uint64_t v = take(r, size);
		if (type == RL_GGUF_F32) {
			float f;
			uint32_t u = (uint32_t)v;
			memcpy(&f, &u, 4);
			out->as.f = f;
		} else if (type == RL_GGUF_F64) {
			memcpy(&out->as.f, &v, 8);
		} else if (type == RL_GGUF_I8 || type == RL_GGUF_I16 || type == RL_GGUF_I32 ||
			   type == RL_GGUF_I64) {
			int sh = 64 - 8 * size; /* sign-extend */
			out->as.i = (int64_t)(v << sh) >> sh;
		} else {
			out->as.u = v;
		}
		return RL_OK;
	}
	}
}

void rl_gguf_array_next(const rl_gguf_val *arr, const uint8_t **cursor, rl_gguf_val *out)
{
	/* the array was validated: read within an unbounded window */
	rd r = {.b = *cursor, .n = UINT64_MAX, .i = 0, .path = ""};
	vctx c = {"", 0};
	read_value(&r, arr->as.arr.type, out, &c);
	*cursor += r.i;
}

/* A key or tensor name: non-empty UTF-8 without NUL. what: "key" or "tensor name". */
static int check_name(const rd *r, const char *s, uint64_t len, const char *what, uint64_t index)
{
	if (len == 0)
		return rl_error(RL_EDATA, "'%s': %s %" PRIu64 " is empty", r->path, what, index);
	if (memchr(s, '\0', (size_t)len))
		return rl_error(RL_EDATA, "'%s': %s %" PRIu64 " holds a NUL byte", r->path, what,
				index);
	if (!rl_utf8_valid(s, (size_t)len))
		return rl_error(RL_EDATA, "'%s': %s %" PRIu64 " is not valid UTF-8", r->path, what,
				index);
	return RL_OK;
}

static char *copy_str(const char *s, uint64_t len)
{
	char *c = rl_malloc((size_t)len + 1);
	if (c) {
		memcpy(c, s, (size_t)len);
		c[len] = '\0';
	}
	return c;
}

static int cmp_kv_key(const void *a, const void *b)
{
	return strcmp((*(const rl_gguf_kv *const *)a)->key, (*(const rl_gguf_kv *const *)b)->key);
}

static int cmp_tensor_name(const void *a, const void *b)
{
	return strcmp((*(const rl_gguf_tensor *const *)a)->name,
		      (*(const rl_gguf_tensor *const *)b)->name);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
	const rl_gguf_tensor *x = *(const rl_gguf_tensor *const *)a;
	const rl_gguf_tensor *y = *(const rl_gguf_tensor *const *)b;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static const rl_gguf_kv *file_kv(const rl_gguf_file *f, const char *key)
{
	for (size_t i = 0; i < f->nkv; i++)
		if (strcmp(f->kv[i].key, key) == 0)
			return &f->kv[i];
	return NULL;
}

static int read_kvs(rd *r, rl_gguf_file *f, uint64_t nkv)
{
	int rc;
	uint64_t left = r->n - r->i;
	if (nkv > left / MIN_KV_BYTES)
		return rl_error(RL_EDATA,
				"'%s': metadata count %" PRIu64
				" is more than the file can hold (%" PRIu64
				" bytes remain, a key-value pair takes at least %d)",
				r->path, nkv, left, MIN_KV_BYTES);
	f->kv = rl_calloc(nkv ? (size_t)nkv : 1, sizeof *f->kv);
	if (!f->kv)
		return RL_ESYS;
	for (uint64_t k = 0; k < nkv; k++) {
		if ((rc = need(r, 8, "the length of key %" PRIu64, k)))
			return rc;
		uint64_t len = take(r, 8);
		if ((rc = need(r, len, "key %" PRIu64, k)))
			return rc;
		const char *s = (const char *)r->b + r->i;
		if ((rc = check_name(r, s, len, "key", k)))
			return rc;
		r->i += len;
		rl_gguf_kv *kv = &f->kv[f->nkv];
		if (!(kv->key = copy_str(s, len)))
			return RL_ESYS;
		f->nkv++;
		if ((rc = need(r, 4, "the value type of key '%s'", kv->key)))
			return rc;
		uint32_t type = (uint32_t)take(r, 4);
		if (type >= RL_GGUF_VTYPE_COUNT)
			return rl_error(RL_EDATA, "'%s': key '%s': unknown value type %" PRIu32,
					r->path, kv->key, type);
		vctx c = {kv->key, 0};
		if ((rc = read_value(r, (rl_gguf_vtype)type, &kv->val, &c)))
			return rc;
	}
	/* duplicate keys */
	const rl_gguf_kv **sorted = rl_malloc_array(f->nkv ? f->nkv : 1, sizeof *sorted);
	if (!sorted)
		return RL_ESYS;
	for (size_t k = 0; k < f->nkv; k++)
		sorted[k] = &f->kv[k];
	qsort(sorted, f->nkv, sizeof *sorted, cmp_kv_key);
	for (size_t k = 1; k < f->nkv; k++) {
		if (strcmp(sorted[k - 1]->key, sorted[k]->key) == 0) {
			rc = rl_error(RL_EDATA, "'%s': duplicate key '%s'", r->path,
				      sorted[k]->key);
			free(sorted);
			return rc;
		}
	}
	free(sorted);
	return RL_OK;
}

static int read_alignment(const rd *r, rl_gguf_file *f)
{
	const rl_gguf_kv *kv = file_kv(f, "general.alignment");
	f->alignment = RL_GGUF_DEFAULT_ALIGNMENT;
	if (!kv)
		return RL_OK;
	if (kv->val.type != RL_GGUF_U32)
		return rl_error(RL_EDATA, "'%s': key 'general.alignment' is %s, expected u32",
				r->path, a_vtype(kv->val.type));
	uint64_t a = kv->val.as.u;
	if (a == 0 || (a & (a - 1)) != 0)
		return rl_error(RL_EDATA,
				"'%s': general.alignment %" PRIu64 " is not a power of two",
				r->path, a);
	f->alignment = (uint32_t)a;
	return RL_OK;
}

/* "[4096, 32000]" (GGUF order) for messages */
static void ne_str(const rl_gguf_tensor *t, uint32_t ndim, char *buf, size_t cap)
{
	size_t n = 0;
	n += (size_t)snprintf(buf + n, cap - n, "[");
	for (uint32_t d = 0; d < ndim && n < cap; d++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%" PRIu64, d ? ", " : "", t->ne[d]);
	if (n < cap)
		snprintf(buf + n, cap - n, "]");
}

static int read_tensor_info(rd *r, rl_gguf_file *f, uint64_t k)
{
	int rc;
	rl_gguf_tensor *t = &f->tensors[f->ntensors];
	if ((rc = need(r, 8, "the name length of tensor %" PRIu64, k)))
		return rc;
	uint64_t len = take(r, 8);
	if ((rc = need(r, len, "the name of tensor %" PRIu64, k)))
		return rc;
	const char *s = (const char *)r->b + r->i;
	if ((rc = check_name(r, s, len, "tensor name", k)))
		return rc;
	r->i += len;
	if (!(t->name = copy_str(s, len)))
		return RL_ESYS;
	t->path = f->path;
	f->ntensors++;
	if ((rc = need(r, 4, "the dimension count of tensor '%s'", t->name)))
		return rc;
	uint32_t ndim = (uint32_t)take(r, 4);
	if (ndim > RL_GGUF_MAX_DIMS)
		return rl_error(RL_EDATA, "'%s': tensor '%s': %" PRIu32 " dimensions (at most %d)",
				r->path, t->name, ndim, RL_GGUF_MAX_DIMS);
	t->ndim = (int)ndim;
	if ((rc = need(r, 8 * (uint64_t)ndim, "the dimensions of tensor '%s'", t->name)))
		return rc;
	for (int d = 0; d < RL_GGUF_MAX_DIMS; d++)
		t->ne[d] = d < (int)ndim ? take(r, 8) : 1;
	char sh[128];
	uint64_t numel = 1;
	for (uint32_t d = 0; d < ndim; d++) {
		if (t->ne[d] == 0) {
			ne_str(t, ndim, sh, sizeof sh);
			return rl_error(RL_EDATA,
					"'%s': tensor '%s': dimension %" PRIu32 " of %s is 0",
					r->path, t->name, d, sh);
		}
		if (t->ne[d] > INT64_MAX / numel) {
			ne_str(t, ndim, sh, sizeof sh);
			return rl_error(RL_EDATA, "'%s': tensor '%s': %s elements overflow 63 bits",
					r->path, t->name, sh);
		}
		numel *= t->ne[d];
	}
	t->numel = numel;
	if ((rc = need(r, 12, "the type and offset of tensor '%s'", t->name)))
		return rc;
	t->type = (uint32_t)take(r, 4);
	t->offset = take(r, 8);
	if (!rl_ggml_type_known(t->type))
		return rl_error(RL_EDATA, "'%s': tensor '%s': unknown ggml type %" PRIu32, r->path,
				t->name, t->type);
	uint64_t bs = rl_ggml_block_size(t->type), ts = rl_ggml_type_size(t->type);
	if (t->ne[0] % bs != 0) {
		ne_str(t, ndim, sh, sizeof sh);
		return rl_error(RL_EDATA,
				"'%s': tensor '%s': %s %s: ne[0] %" PRIu64
				" is not a multiple of the block size %" PRIu64,
				r->path, t->name, rl_ggml_type_name(t->type), sh, t->ne[0], bs);
	}
	if (numel / bs > INT64_MAX / ts) {
		ne_str(t, ndim, sh, sizeof sh);
		return rl_error(RL_EDATA, "'%s': tensor '%s': %s %s: byte size overflows 63 bits",
				r->path, t->name, rl_ggml_type_name(t->type), sh);
	}
	t->nbytes = numel / bs * ts;
	if (t->offset % f->alignment != 0)
		return rl_error(RL_EDATA,
				"'%s': tensor '%s': offset %" PRIu64
				" is not a multiple of the alignment %" PRIu32,
				r->path, t->name, t->offset, f->alignment);
	return RL_OK;
}

static uint64_t pad_to(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a; /* callers keep x + a inside 64 bits */
}

/* Layout (note 3); offsets become absolute and data pointers are set. */
static int check_layout(const rd *r, rl_gguf_file *f)
{
	int rc = RL_OK;
	uint64_t a = f->alignment;
	uint64_t hdr_end = r->i;
	if (hdr_end > UINT64_MAX - a)
		return rl_error(RL_EDATA, "'%s': header too large", r->path);
	f->data_start = pad_to(hdr_end, a);
	uint64_t data_len = f->data_start <= r->n ? r->n - f->data_start : 0;
	if (f->ntensors == 0) {
		if (r->n > f->data_start)
			return rl_error(RL_EDATA,
					"'%s': %" PRIu64 " bytes after the header of a file with "
					"no tensors",
					r->path, r->n - f->data_start);
		return RL_OK;
	}
	if (f->data_start > r->n)
		return rl_error(RL_EDATA,
				"'%s': truncated: the data section starts at byte %" PRIu64
				" but the file has %" PRIu64,
				r->path, f->data_start, r->n);
	rl_gguf_tensor **order = rl_malloc_array(f->ntensors, sizeof *order);
	if (!order)
		return RL_ESYS;
	for (size_t k = 0; k < f->ntensors; k++)
		order[k] = &f->tensors[k];
	qsort(order, f->ntensors, sizeof *order, cmp_tensor_offset);
	uint64_t expect = 0; /* where the next tensor must start */
	for (size_t k = 0; k < f->ntensors; k++) {
		rl_gguf_tensor *t = order[k];
		if (t->nbytes > data_len || t->offset > data_len - t->nbytes) {
			rc = rl_error(RL_EDATA,
				      "'%s': truncated: tensor '%s' (%" PRIu64
				      " bytes at data offset %" PRIu64
				      ") runs past the end of the file (%" PRIu64 " data bytes)",
				      r->path, t->name, t->nbytes, t->offset, data_len);
			break;
		}
		if (t->offset < expect) {
			rc = rl_error(
				RL_EDATA,
				"'%s': tensor '%s': offset %" PRIu64
				" overlaps tensor '%s' (data bytes %" PRIu64 " to %" PRIu64 ")",
				r->path, t->name, t->offset, order[k - 1]->name,
				order[k - 1]->offset, order[k - 1]->offset + order[k - 1]->nbytes);
			break;
		}
		if (t->offset > expect) {
			if (k == 0)
				rc = rl_error(RL_EDATA,
					      "'%s': tensor '%s': offset %" PRIu64
					      " leaves a gap at the start of the data section (the "
					      "first tensor starts at 0)",
					      r->path, t->name, t->offset);
			else
				rc = rl_error(
					RL_EDATA,
					"'%s': tensor '%s': offset %" PRIu64
					" leaves a gap after tensor '%s' (expected %" PRIu64 ")",
					r->path, t->name, t->offset, order[k - 1]->name, expect);
			break;
		}
		expect = pad_to(t->offset + t->nbytes, a); /* <= data_len + a - 1: no overflow */
	}
	free(order);
	if (rc)
		return rc;
	if (data_len > expect)
		return rl_error(RL_EDATA,
				"'%s': %" PRIu64 " bytes after the last tensor and its padding",
				r->path, data_len - expect);
	for (size_t k = 0; k < f->ntensors; k++) {
		rl_gguf_tensor *t = &f->tensors[k];
		t->offset += f->data_start;
		t->data = r->b + t->offset;
	}
	return RL_OK;
}

static int check_unique_names(const rd *r, rl_gguf_file *f)
{
	if (f->ntensors < 2)
		return RL_OK;
	rl_gguf_tensor **byname = rl_malloc_array(f->ntensors, sizeof *byname);
	if (!byname)
		return RL_ESYS;
	for (size_t k = 0; k < f->ntensors; k++)
		byname[k] = &f->tensors[k];
	qsort(byname, f->ntensors, sizeof *byname, cmp_tensor_name);
	int rc = RL_OK;
	for (size_t k = 1; k < f->ntensors && !rc; k++)
		if (strcmp(byname[k - 1]->name, byname[k]->name) == 0)
			rc = rl_error(RL_EDATA, "'%s': duplicate tensor name '%s'", r->path,
				      byname[k]->name);
	free(byname);
	return rc;
}

int rl_gguf_parse(rl_gguf_file *f, const uint8_t *buf, size_t len)
{
	int rc;
	f->kv = NULL;
	f->nkv = 0;
	f->tensors = NULL;
	f->ntensors = 0;
	rd r = {.b = buf, .n = len, .i = 0, .path = f->path};
	size_t lfs = strlen(LFS_MAGIC);
	if (len >= lfs && memcmp(buf, LFS_MAGIC, lfs) == 0)
		return rl_error(RL_EDATA,
				"'%s' is a Git LFS pointer, not the model: run git lfs pull",
				f->path);
	if ((rc = need(&r, 4, "the magic")))
		return rc;
	if (memcmp(buf, GGUF_MAGIC, 4) != 0)
		return rl_error(RL_EDATA,
				"'%s': not a GGUF file (magic %02x %02x %02x %02x, expected "
				"\"GGUF\")",
				f->path, buf[0], buf[1], buf[2], buf[3]);
	r.i = 4;
	if ((rc = need(&r, 4, "the version")))
		return rc;
	uint32_t version = (uint32_t)take(&r, 4);
	/* gguf.cpp's test: a byte-swapped small version has zero low bytes */
	if (version != 0 && (version & 0xFFFF) == 0)
		return rl_error(RL_EDATA,
				"'%s': a big-endian GGUF file (version %" PRIu32
				" byte-swapped); only little-endian GGUF is supported",
				f->path, version >> 24 | (version >> 8 & 0xFF00));
	if (version != 2 && version != 3)
		return rl_error(RL_EDATA,
				"'%s': GGUF version %" PRIu32 " is not supported (only 2 and 3)",
				f->path, version);
	f->version = version;
	if ((rc = need(&r, 16, "the tensor and metadata counts")))
		return rc;
	uint64_t ntensors = take(&r, 8), nkv = take(&r, 8);
	if ((rc = read_kvs(&r, f, nkv)))
		goto fail;
	if ((rc = read_alignment(&r, f)))
		goto fail;
	uint64_t left = r.n - r.i;
	if (ntensors > left / MIN_TENSOR_BYTES) {
		rc = rl_error(RL_EDATA,
			      "'%s': tensor count %" PRIu64
			      " is more than the file can hold (%" PRIu64
			      " bytes remain, a tensor info takes at least %d)",
			      f->path, ntensors, left, MIN_TENSOR_BYTES);
		goto fail;
	}
	f->tensors = rl_calloc(ntensors ? (size_t)ntensors : 1, sizeof *f->tensors);
	if (!f->tensors) {
		rc = RL_ESYS;
		goto fail;
	}
	for (uint64_t k = 0; k < ntensors; k++)
		if ((rc = read_tensor_info(&r, f, k)))
			goto fail;
	if ((rc = check_unique_names(&r, f)) || (rc = check_layout(&r, f)))
		goto fail;
	return RL_OK;
fail:
	rl_gguf_file_free(f);
	return rc;
}

void rl_gguf_file_free(rl_gguf_file *f)
{
	for (size_t k = 0; k < f->nkv; k++)
		free(f->kv[k].key);
	free(f->kv);
	for (size_t k = 0; k < f->ntensors; k++)
		free(f->tensors[k].name);
	free(f->tensors);
	f->kv = NULL;
	f->nkv = 0;
	f->tensors = NULL;
	f->ntensors = 0;
}

/* ---- files and split models ---- */

static void file_close(rl_gguf_file *f)
{
	rl_gguf_file_free(f);
	if (f->map)
		munmap((void *)f->map, (size_t)f->size);
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	memset(f, 0, sizeof *f);
	f->fd = -1;
}

static int file_open(rl_gguf_file *f, const char *path)
{
	memset(f, 0, sizeof *f);
	f->fd = -1;
	if (!(f->path = rl_strdup(path)))
		return RL_ESYS;
	int rc;
	if ((rc = rl_open_regular(path, 0, &f->fd))) /* a FIFO must not hang the open */
		goto fail;
	struct stat st;
	if (fstat(f->fd, &st) != 0) {
		rc = rl_error_errno(RL_ESYS, "'%s'", path);
		goto fail;
	}
	if (st.st_size == 0) {
		rc = rl_error(RL_EDATA, "'%s': empty file", path);
		goto fail;
	}
	if ((uint64_t)st.st_size > SIZE_MAX) {
		rc = rl_error(RL_ESYS, "'%s': too large to map", path);
		goto fail;
	}
	f->size = (uint64_t)st.st_size;
	void *m = mmap(NULL, (size_t)f->size, PROT_READ, MAP_SHARED, f->fd, 0);
	if (m == MAP_FAILED) {
		rc = rl_error_errno(RL_ESYS, "'%s': mmap", path);
		goto fail;
	}
	f->map = m;
	if ((rc = rl_gguf_parse(f, f->map, (size_t)f->size)))
		goto fail;
	return RL_OK;
fail:
	file_close(f);
	return rc;
}

/* An integer-valued key of one file: RL_NO if absent. */
static int file_uint(const rl_gguf_file *f, const char *key, uint64_t *out)
{
	const rl_gguf_kv *kv = file_kv(f, key);
	if (!kv)
		return RL_NO;
	const rl_gguf_val *v = &kv->val;
	switch (v->type) {
	case RL_GGUF_U8:
	case RL_GGUF_U16:
	case RL_GGUF_U32:
	case RL_GGUF_U64:
		*out = v->as.u;
		return RL_OK;
	case RL_GGUF_I8:
	case RL_GGUF_I16:
	case RL_GGUF_I32:
	case RL_GGUF_I64:
		if (v->as.i >= 0) {
			*out = (uint64_t)v->as.i;
			return RL_OK;
		}
		return rl_error(RL_EDATA, "'%s': key '%s' is negative (%" PRId64 ")", f->path, key,
				v->as.i);
	default:
		return rl_error(RL_EDATA, "'%s': key '%s' is %s, expected an unsigned integer",
				f->path, key, a_vtype(v->type));
	}
}

/* Splits "DIR/PREFIX-00002-of-00003.gguf" into its prefix, part and count. */
static int split_name(const char *path, size_t *prefix_len, unsigned *part, unsigned *count)
{
	static const char pat[] = "-00000-of-00000.gguf";
	size_t n = strlen(path), pl = sizeof pat - 1;
	if (n <= pl)
		return 0;
	const char *s = path + n - pl;
	unsigned p = 0, c = 0;
	for (size_t k = 0; k < pl; k++) {
		if (pat[k] == '0') {
			if (s[k] < '0' || s[k] > '9')
				return 0;
			if (k < 6)
				p = p * 10 + (unsigned)(s[k] - '0');
			else
				c = c * 10 + (unsigned)(s[k] - '0');
		} else if (s[k] != pat[k]) {
			return 0;
		}
	}
	*prefix_len = n - pl;
	*part = p;
	*count = c;
	return 1;
}

static int open_split(rl_gguf *g, rl_gguf_file *given, unsigned nsplit)
{
	const char *path = given->path;
	size_t plen;
	unsigned part, count;
	if (!split_name(path, &plen, &part, &count) || part < 1 || part > nsplit || count != nsplit)
		return rl_error(RL_EDATA,
				"'%s': split.count is %u but the name is not "
				"PREFIX-<part>-of-%05u.gguf",
				path, nsplit, nsplit);
	g->files = rl_calloc(nsplit, sizeof *g->files);
	if (!g->files)
		return RL_ESYS;
	for (unsigned k = 0; k < nsplit; k++)
		g->files[k].fd = -1;
	g->nfiles = nsplit;
	char *name = rl_malloc(plen + 32);
	if (!name)
		return RL_ESYS;
	int rc = RL_OK;
	for (unsigned k = 1; k <= nsplit && !rc; k++) {
		if (k == part) {
			g->files[k - 1] = *given;
			memset(given, 0, sizeof *given);
			given->fd = -1;
			continue;
		}
		memcpy(name, path, plen);
		snprintf(name + plen, 32, "-%05u-of-%05u.gguf", k, nsplit);
		rc = file_open(&g->files[k - 1], name);
	}
	free(name);
	if (rc)
		return rc;
	uint64_t total = 0, want = 0;
	for (unsigned k = 0; k < nsplit; k++)
		total += g->files[k].ntensors;
	for (unsigned k = 0; k < nsplit; k++) {
		const rl_gguf_file *f = &g->files[k];
		uint64_t no, cnt, tc;
		if ((rc = file_uint(f, "split.no", &no)) == RL_NO)
			return rl_error(RL_EDATA, "'%s': no key 'split.no' in a split model",
					f->path);
		if (rc)
			return rc;
		if (no != k)
			return rl_error(RL_EDATA,
					"'%s': split.no is %" PRIu64
					", expected %u (part %u of %u)",
					f->path, no, k, k + 1, nsplit);
		if ((rc = file_uint(f, "split.count", &cnt)) == RL_NO)
			return rl_error(RL_EDATA, "'%s': no key 'split.count' in a split model",
					f->path);
		if (rc)
			return rc;
		if (cnt != nsplit)
			return rl_error(RL_EDATA,
					"'%s': split.count is %" PRIu64 ", but '%s' says %u",
					f->path, cnt, path, nsplit);
		if ((rc = file_uint(f, "split.tensors.count", &tc)) == RL_NO)
			return rl_error(RL_EDATA,
					"'%s': no key 'split.tensors.count' in a split model",
					f->path);
		if (rc)
			return rc;
		if (k == 0)
			want = tc;
		if (tc != total || tc != want)
			return rl_error(RL_EDATA,
					"'%s': split.tensors.count is %" PRIu64
					", but the %u parts "
					"hold %" PRIu64 " tensors",
					f->path, tc, nsplit, total);
	}
	return RL_OK;
}

int rl_gguf_open(rl_gguf *g, const char *path)
{
	memset(g, 0, sizeof *g);
	rl_gguf_file first;
	int rc = file_open(&first, path);
	if (rc)
		return rc;
	uint64_t nsplit = 0;
	rc = file_uint(&first, "split.count", &nsplit);
	if (rc && rc != RL_NO) {
		file_close(&first);
		return rc;
	}
	if (rc == RL_NO || nsplit <= 1) {
		g->files = rl_malloc(sizeof *g->files);
		if (!g->files) {
			file_close(&first);
			return RL_ESYS;
		}
		g->files[0] = first;
		g->nfiles = 1;
	} else {
		if (nsplit > 99999) {
			rc = rl_error(RL_EDATA, "'%s': split.count %" PRIu64 " is too large", path,
				      nsplit);
			file_close(&first);
			return rc;
		}
		rc = open_split(g, &first, (unsigned)nsplit);
		file_close(&first); /* a no-op once moved into g->files */
		if (rc) {
			rl_gguf_close(g);
			return rc;
		}
	}
	size_t n = 0;
	for (size_t k = 0; k < g->nfiles; k++)
		n += g->files[k].ntensors;
	g->tensors = rl_malloc_array(n ? n : 1, sizeof *g->tensors);
	g->by_name = rl_malloc_array(n ? n : 1, sizeof *g->by_name);
	if (!g->tensors || !g->by_name) {
		rl_gguf_close(g);
		return RL_ESYS;
	}
	for (size_t k = 0; k < g->nfiles; k++)
		for (size_t j = 0; j < g->files[k].ntensors; j++)
			g->tensors[g->ntensors++] = &g->files[k].tensors[j];
	memcpy(g->by_name, g->tensors, n * sizeof *g->tensors);
	qsort(g->by_name, n, sizeof *g->by_name, cmp_tensor_name);
	for (size_t k = 1; k < n; k++) {
		if (strcmp(g->by_name[k - 1]->name, g->by_name[k]->name) == 0) {
			/* within one file this was refused already: two parts */
			const rl_gguf_tensor *a = g->by_name[k - 1], *b = g->by_name[k];
			if (strcmp(a->path, b->path) > 0) { /* name the later part */
				const rl_gguf_tensor *t = a;
				a = b;
				b = t;
			}
			rc = rl_error(RL_EDATA, "'%s': tensor '%s' is also in '%s'", b->path,
				      b->name, a->path);
			rl_gguf_close(g);
			return rc;
		}
	}
	g->kv = g->files[0].kv;
	g->nkv = g->files[0].nkv;
	return RL_OK;
}

void rl_gguf_close(rl_gguf *g)
{
	for (size_t k = 0; k < g->nfiles; k++)
		file_close(&g->files[k]);
	free(g->files);
	free(g->tensors);
	free(g->by_name);
	memset(g, 0, sizeof *g);
}

const rl_gguf_tensor *rl_gguf_find(const rl_gguf *g, const char *name)
{
	size_t lo = 0, hi = g->ntensors;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(g->by_name[mid]->name, name);
		if (c == 0)
			return g->by_name[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- typed metadata getters ---- */

const rl_gguf_val *rl_gguf_get(const rl_gguf *g, const char *key)
{
	for (size_t k = 0; k < g->nkv; k++)
		if (strcmp(g->kv[k].key, key) == 0)
			return &g->kv[k].val;
	return NULL;
}

static const char *model_path(const rl_gguf *g)
{
	return g->nfiles ? g->files[0].path : "";
}

static const rl_gguf_val *lookup(const rl_gguf *g, const char *key, int *rc)
{
	const rl_gguf_val *v = rl_gguf_get(g, key);
	*rc = v ? RL_OK : rl_error(RL_NO, "'%s': no key '%s'", model_path(g), key);
	return v;
}

static int type_error(const rl_gguf *g, const char *key, const rl_gguf_val *v, const char *want)
{
	if (v->type == RL_GGUF_ARRAY)
		return rl_error(RL_EDATA, "'%s': key '%s' is an array of %s, expected %s",
				model_path(g), key, vtype_names[v->as.arr.type], want);
	return rl_error(RL_EDATA, "'%s': key '%s' is %s, expected %s", model_path(g), key,
			a_vtype(v->type), want);
}

static int is_unsigned(rl_gguf_vtype t)
{
	return t == RL_GGUF_U8 || t == RL_GGUF_U16 || t == RL_GGUF_U32 || t == RL_GGUF_U64;
}

static int is_signed(rl_gguf_vtype t)
{
	return t == RL_GGUF_I8 || t == RL_GGUF_I16 || t == RL_GGUF_I32 || t == RL_GGUF_I64;
}

/* An integer value within [lo, hi] (as a signed or unsigned 64-bit range). */
static int int_in(const rl_gguf *g, const char *key, const rl_gguf_val *v, int64_t lo, uint64_t hi,
		  const char *want, int64_t *si, uint64_t *ui)
{
	if (is_unsigned(v->type)) {
		if (v->as.u > hi)
			return rl_error(RL_EDATA, "'%s': key '%s': %" PRIu64 " does not fit %s",
					model_path(g), key, v->as.u, want);
		*ui = v->as.u;
		*si = (int64_t)v->as.u;
		return RL_OK;
	}
	if (is_signed(v->type)) {
		if (v->as.i < lo || (v->as.i > 0 && (uint64_t)v->as.i > hi))
			return rl_error(RL_EDATA, "'%s': key '%s': %" PRId64 " does not fit %s",
					model_path(g), key, v->as.i, want);
		*ui = (uint64_t)v->as.i;
		*si = v->as.i;
		return RL_OK;
	}
	return type_error(g, key, v, want);
}

int rl_gguf_get_str(const rl_gguf *g, const char *key, rl_gguf_str *out)
{
	int rc;
	const rl_gguf_val *v = lookup(g, key, &rc);
	if (rc)
		return rc;
	if (v->type != RL_GGUF_STRING)
		return type_error(g, key, v, "a string");
	*out = v->as.s;
	return RL_OK;
}

int rl_gguf_get_cstr(const rl_gguf *g, const char *key, char **out)
{
	rl_gguf_str s = {0};
	int rc = rl_gguf_get_str(g, key, &s);
	if (rc)
		return rc;
	if (memchr(s.s, '\0', (size_t)s.len))
		return rl_error(RL_EDATA, "'%s': key '%s': the string holds a NUL byte",
				model_path(g), key);
	return (*out = copy_str(s.s, s.len)) ? RL_OK : RL_ESYS;
}

int rl_gguf_get_u32(const rl_gguf *g, const char *key, uint32_t *out)
{
	int rc;
	const rl_gguf_val *v = lookup(g, key, &rc);
	int64_t si;
	uint64_t ui;
	if (rc || (rc = int_in(g, key, v, 0, UINT32_MAX, "u32", &si, &ui)))
		return rc;
	*out = (uint32_t)ui;
	return RL_OK;
}

int rl_gguf_get_u64(const rl_gguf *g, const char *key, uint64_t *out)
{
	int rc;
	const rl_gguf_val *v = lookup(g, key, &rc);
	int64_t si;
	uint64_t ui;
	if (rc || (rc = int_in(g, key, v, 0, UINT64_MAX, "u64", &si, &ui)))
		return rc;
	*out = ui;
	return RL_OK;
}

int rl_gguf_get_i64(const rl_gguf *g, const char *key, int64_t *out)
{
	int rc;
	const rl_gguf_val *v = lookup(g, key, &rc);
	int64_t si;
	uint64_t ui;
	if (rc || (rc = int_in(g, key, v, INT64_MIN, INT64_MAX, "i64", &si, &ui)))
		return rc;
	*out = si;
	return RL_OK;
}

int rl_gguf_get_f32(const rl_gguf *g, const char *key, float *out)
{
	int rc;
	const rl_gguf_val *v = lookup(g, key, &rc);
	if (rc)
		return rc;
	if (v->type != RL_GGUF_F32 && v->type != RL_GGUF_F64)
		return type_error(g, key, v, "f32");
	*out = (float)v->as.f;
	return RL_OK;
}

int rl_gguf_get_bool(const rl_gguf *g, const char *key, int *out)
{
	int rc;
	const rl_gguf_val *v = lookup(g, key, &rc);
	if (rc)
		return rc;
	if (v->type != RL_GGUF_BOOL)
		return type_error(g, key, v, "a bool");
	*out = (int)v->as.u;
	return RL_OK;
}

/* The array at key with elements accepted by ok(); *n its length. */
static const rl_gguf_val *array_of(const rl_gguf *g, const char *key, int (*ok)(rl_gguf_vtype),
				   const char *want, int *rc)
{
	const rl_gguf_val *v = lookup(g, key, rc);
	if (*rc)
		return NULL;
	if (v->type != RL_GGUF_ARRAY || !ok(v->as.arr.type)) {
		*rc = type_error(g, key, v, want);
		return NULL;
	}
	if (v->as.arr.count > SIZE_MAX / 16) {
		*rc = rl_error(RL_ESYS, "'%s': key '%s': array too large", model_path(g), key);
		return NULL;
	}
	return v;
}

static int is_string(rl_gguf_vtype t)
{
	return t == RL_GGUF_STRING;
}

static int is_int(rl_gguf_vtype t)
{
	return is_signed(t) || is_unsigned(t);
}

static int is_float(rl_gguf_vtype t)
{
	return t == RL_GGUF_F32 || t == RL_GGUF_F64;
}

int rl_gguf_get_str_array(const rl_gguf *g, const char *key, rl_gguf_str **out, size_t *n)
{
	int rc;
	const rl_gguf_val *v = array_of(g, key, is_string, "an array of string", &rc);
	if (rc)
		return rc;
	size_t count = (size_t)v->as.arr.count;
	rl_gguf_str *a = rl_malloc_array(count ? count : 1, sizeof *a);
	if (!a)
		return RL_ESYS;
	const uint8_t *cur = v->as.arr.elems;
	for (size_t k = 0; k < count; k++) {
		rl_gguf_val e;
		rl_gguf_array_next(v, &cur, &e);
		a[k] = e.as.s;
	}
	*out = a;
	*n = count;
	return RL_OK;
}

int rl_gguf_get_int_array(const rl_gguf *g, const char *key, int64_t **out, size_t *n)
{
	int rc;
	const rl_gguf_val *v = array_of(g, key, is_int, "an array of integers", &rc);
	if (rc)
		return rc;
	size_t count = (size_t)v->as.arr.count;
	int64_t *a = rl_malloc_array(count ? count : 1, sizeof *a);
	if (!a)
		return RL_ESYS;
	const uint8_t *cur = v->as.arr.elems;
	for (size_t k = 0; k < count; k++) {
		rl_gguf_val e;
		rl_gguf_array_next(v, &cur, &e);
		if (is_unsigned(e.type) && e.as.u > INT64_MAX) {
			free(a);
			return rl_error(RL_EDATA,
					"'%s': key '%s': element %zu (%" PRIu64
					") does not fit i64",
					model_path(g), key, k, e.as.u);
		}
		a[k] = is_unsigned(e.type) ? (int64_t)e.as.u : e.as.i;
	}
	*out = a;
	*n = count;
	return RL_OK;
}

int rl_gguf_get_float_array(const rl_gguf *g, const char *key, float **out, size_t *n)
{
	int rc;
	const rl_gguf_val *v = array_of(g, key, is_float, "an array of f32", &rc);
	if (rc)
		return rc;
	size_t count = (size_t)v->as.arr.count;
	float *a = rl_malloc_array(count ? count : 1, sizeof *a);
	if (!a)
		return RL_ESYS;
	const uint8_t *cur = v->as.arr.elems;
	for (size_t k = 0; k < count; k++) {
		rl_gguf_val e;
		rl_gguf_array_next(v, &cur, &e);
		a[k] = (float)e.as.f;
	}
	*out = a;
	*n = count;
	return RL_OK;
}

/* ---- tensor data ---- */

uint64_t rl_gguf_rows(const rl_gguf_tensor *t)
{
	return t->numel / t->ne[0];
}

int rl_gguf_dequant_rows(const rl_gguf_tensor *t, uint64_t row0, uint64_t nrows, float *dst)
{
	if (!rl_ggml_can_dequant(t->type))
		return rl_error(RL_EDATA,
				"'%s': tensor '%s': type %s cannot be dequantized (realign reads "
				"F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, "
				"Q5_K, Q6_K)",
				t->path, t->name, rl_ggml_type_name(t->type));
	uint64_t rows = rl_gguf_rows(t);
	if (row0 > rows || nrows > rows - row0)
		return rl_error(RL_USAGE,
				"'%s': tensor '%s': rows %" PRIu64 "..%" PRIu64
				" are outside its %" PRIu64 " rows",
				t->path, t->name, row0, row0 + nrows, rows);
	uint64_t row_bytes = t->ne[0] / rl_ggml_block_size(t->type) * rl_ggml_type_size(t->type);
	rl_ggml_dequant(t->type, t->data + row0 * row_bytes, dst, nrows * t->ne[0]);
	return RL_OK;
}

int rl_gguf_dequant(const rl_gguf_tensor *t, float *dst)
{
	return rl_gguf_dequant_rows(t, 0, rl_gguf_rows(t), dst);
}

void rl_gguf_release(const rl_gguf_tensor *t)
{
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t page = pg > 0 ? (uintptr_t)pg : 4096;
	uintptr_t lo = (uintptr_t)t->data / page * page;
	uintptr_t hi = (uintptr_t)(t->data + t->nbytes);
	if (hi > lo)
		madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
