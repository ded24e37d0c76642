/* stream.h — realign's record streams (msgpack), the format tools exchange.
 * Implemented by stream_writer.c, stream_reader.c and stream_validate.c
 * (stream_int.h says what each holds).
 *
 * The format is specified in man/rl-stream.5; in short, a stream is a sequence
 * of msgpack maps, each with the string key "t" FIRST, naming the record type:
 *   header  {"t":"header", "magic":"realign", "version":1, "kind":K, "tool":T,
 *            "tool_version":V, ...kind-specific keys (models, parameters)}
 *   records {"t":<type>, ...}     kind-specific (see rl-stream(5))
 *   end     {"t":"end", "records":N, "checksum":C}
 * N counts the data records (not header or end); C is the XXH64 (seed 0) of
 * every byte of the stream before the end record. A stream without its end
 * record is truncated; a checksum mismatch is corruption: both are RL_EDATA.
 * Map keys are strings, unique within their map; no msgpack ext types.
 *
 * Large tensors travel as "tensor" chunk records of at most RL_CHUNK_BYTES of
 * payload: {"t":"tensor", "name", "dtype", "shape":[..], "offset":first element,
 * "count":elements, "data":bin (little-endian elements)}. The chunks of one
 * tensor are consecutive records in ascending offset order covering
 * [0, numel) exactly (a 0-element tensor is one chunk of count 0); the reader
 * enforces this, so a tool may consume chunks as they come.
 *
 * Memory: a reader never holds more than one record (at most RL_MAX_RECORD
 * bytes and RL_MAX_OBJECTS msgpack objects, nested at most RL_MAX_DEPTH deep)
 * whatever the stream's size; declared lengths are checked against these
 * limits before anything is allocated or read.
 *
 * Writing (every call after an error is a no-op; the first error is sticky and
 * returned by rl_sw_close):
 *     rl_sw *w;
 *     if ((rc = rl_sw_open(&w, path, "grad", "rl-grad"))) return rc;
 *     rl_sw_header_begin(w, 2);               // 2 caller-packed pairs follow
 *     rl_pack_kv_model(rl_sw_packer(w), "model", m);  // stream_model.h
 *     rl_pack_kv_int(rl_sw_packer(w), "layer_end", L);
 *     rl_sw_record_begin(w, "batch", 1);      // 1 pair follows
 *     rl_pack_kv_f64(rl_sw_packer(w), "loss", loss);
 *     rc = rl_sw_tensor(w, name, RL_DT_F32, ndim, shape, data, numel);
 *     if (rc) { rl_sw_abort(w); return rc; }  // leaves a detectably truncated stream
 *     return rl_sw_close(w);                  // end record, flush, fsync: EPIPE/ENOSPC here
 *
 * Reading:
 *     rl_sr *r; const msgpack_object *rec;
 *     if ((rc = rl_sr_open(&r, path, "grad"))) return rc;  // magic, version, kind checked
 *     while ((rc = rl_sr_next(r, &rec)) == 0 && rec) {
 *         const rl_chunk *c = rl_sr_chunk(r);  // non-NULL for a "tensor" chunk
 *         if (c) ... c->name, c->offset, c->count, c->data (unaligned) ...
 *         else if (rl_rec_is(rec, "batch")) ... rl_obj_f64(rec, "loss", rl_sr_where(r), &x) ...
 *     }
 *     rl_sr_close(r);   // rc != 0: the message names the file and the problem
 * A stream is only complete once rl_sr_next has returned 0 with rec == NULL
 * (end record verified): a tool must not commit results before that.
 */
#ifndef RL_STREAM_H
#define RL_STREAM_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "store/safetensors.h"

#define RL_STREAM_MAGIC "realign"
#define RL_STREAM_VERSION 1
/* Most payload bytes in one tensor chunk. */
#define RL_CHUNK_BYTES (16u << 20)
/* Most bytes in one encoded record (header and end included). */
#define RL_MAX_RECORD ((64u << 20) + (1u << 20))
/* Most msgpack objects (scalars, strings, containers, keys) in one record, and
 * deepest nesting of maps/arrays (the record map itself is depth 1). */
#define RL_MAX_OBJECTS (1u << 20)
#define RL_MAX_DEPTH 16
/* Longest tensor name (bytes, without the NUL). */
#define RL_MAX_NAME 255

/* ---- writer ---- */

typedef struct rl_sw rl_sw;
typedef struct rl_sr rl_sr;

/* Opens path for writing ("-" = stdout), creating or truncating it. The
 * stream's kind and the producing tool go into the header. */
int rl_sw_open(rl_sw **w, const char *path, const char *kind, const char *tool);
/* Same over an open descriptor (not closed by rl_sw_close); name is used in
 * messages. */
int rl_sw_open_fd(rl_sw **w, int fd, const char *name, const char *kind, const char *tool);
/* Starts the header map with nextra caller-packed key/value pairs to follow.
 * Must be the first thing written. */
int rl_sw_header_begin(rl_sw *w, uint32_t nextra);
/* Starts a data record of type t with nfields caller-packed pairs to follow.
 * "header", "end" and "tensor" are reserved (tensors go through rl_sw_tensor). */
int rl_sw_record_begin(rl_sw *w, const char *type, uint32_t nfields);
/* The packer to pack keys and values with (valid until rl_sw_close). */
msgpack_packer *rl_sw_packer(rl_sw *w);
/* Writes a tensor (numel elements of dtype at data, shape's product == numel)
 * as chunk records of type "tensor"; returns an error code. The payload is
 * written straight from data (no copy). */
int rl_sw_tensor(rl_sw *w, const char *name, rl_dtype dtype, int ndim, const int64_t *shape,
		 const void *data, uint64_t numel);
/* Writes one chunk of a tensor: elements [offset, offset+count). Chunks of a
 * tensor must be written consecutively, in order, covering it exactly, each at
 * most RL_CHUNK_BYTES (checked: an error otherwise). */
int rl_sw_tensor_chunk(rl_sw *w, const char *name, rl_dtype dtype, int ndim, const int64_t *shape,
		       uint64_t offset, const void *data, uint64_t count);
/* Data records written so far. */
uint64_t rl_sw_count(const rl_sw *w);
/* The sticky status: 0, or the first error met (a tool may stop early on EPIPE). */
int rl_sw_error(const rl_sw *w);
/* Test hook: split tensors into chunks of at most bytes (>= one element,
 * <= RL_CHUNK_BYTES) instead of RL_CHUNK_BYTES. */
void rl_sw_set_chunk_bytes(rl_sw *w, size_t bytes);
/* Writes the end record, flushes, fsyncs regular files, closes. Frees w even
 * on error. Returns the first error met while writing (sticky). */
int rl_sw_close(rl_sw *w);
/* Flushes what was written and frees w without an end record (a failed tool
 * leaves a detectably truncated stream rather than a complete-looking one).
 * NULL is accepted. */
void rl_sw_abort(rl_sw *w);

/* Packing helpers: a string key then a value. */
void rl_pack_str(msgpack_packer *pk, const char *s);
void rl_pack_kv_str(msgpack_packer *pk, const char *key, const char *val);
void rl_pack_kv_int(msgpack_packer *pk, const char *key, int64_t val);
void rl_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t val);
void rl_pack_kv_f64(msgpack_packer *pk, const char *key, double val);
void rl_pack_kv_bool(msgpack_packer *pk, const char *key, int val);
void rl_pack_kv_bin(msgpack_packer *pk, const char *key, const void *data, size_t n);

/* ---- reader ---- */

typedef struct rl_chunk rl_chunk;

/* Opens path ("-" = stdin) and reads the header, checking magic, version and
 * (when want_kind is not NULL) the kind. On error *r is NULL and the message
 * says what the input looks like when it is not a stream at all. */
int rl_sr_open(rl_sr **r, const char *path, const char *want_kind);
/* Same over an open descriptor (not closed by rl_sr_close). */
int rl_sr_open_fd(rl_sr **r, int fd, const char *name, const char *want_kind);
/* Same over len bytes at buf (not copied: buf must outlive r). For tests and
 * fuzzing. */
int rl_sr_open_mem(rl_sr **r, const void *buf, size_t len, const char *name, const char *want_kind);
/* The header map (valid until rl_sr_close). */
const msgpack_object *rl_sr_header(const rl_sr *r);
const char *rl_sr_kind(const rl_sr *r);
/* The path as given, or "<stdin>": for messages. */
const char *rl_sr_path(const rl_sr *r);
/* "'path' record N" for the current record (N counts data records from 1), or
 * "'path' header": the `what` to give the rl_obj_* getters. Valid until the
 * next call. */
const char *rl_sr_where(const rl_sr *r);
/* Next data record into *rec (valid until the next call). At the end record,
 * verifies count and checksum, that no tensor is left incomplete and that
 * nothing follows, and sets *rec = NULL. Errors are RL_EDATA (truncation,
 * corruption, bad nesting, oversized record) or RL_ESYS; they are sticky. */
int rl_sr_next(rl_sr *r, const msgpack_object **rec);
/* The current record parsed as a tensor chunk (validated, in order), or NULL
 * when it is not a "tensor" record. Valid until the next rl_sr_next. */
const rl_chunk *rl_sr_chunk(const rl_sr *r);
/* Data records returned so far. */
uint64_t rl_sr_count(const rl_sr *r);
/* Encoded size in bytes of the current record (of the header after open). */
size_t rl_sr_record_bytes(const rl_sr *r);
/* Stream bytes consumed so far (header, records, and the end record once read). */
uint64_t rl_sr_bytes(const rl_sr *r);
/* The end record once rl_sr_next has returned it as NULL (else NULL); valid
 * until rl_sr_close. */
const msgpack_object *rl_sr_end(const rl_sr *r);
/* Record type ("t") of a record (not NUL-terminated; NULL if absent). */
const char *rl_rec_type(const msgpack_object *rec, size_t *len);
/* 1 when rec's "t" is type. */
int rl_rec_is(const msgpack_object *rec, const char *type);
/* NULL is accepted. */
void rl_sr_close(rl_sr *r);

/* Header parameters: the typed getters below on rl_sr_header(r), with
 * messages naming "'path' header". */
int rl_sr_hdr_str(const rl_sr *r, const char *key, const char **s, size_t *len);
int rl_sr_hdr_int(const rl_sr *r, const char *key, int64_t *v);
int rl_sr_hdr_uint(const rl_sr *r, const char *key, uint64_t *v);
int rl_sr_hdr_f64(const rl_sr *r, const char *key, double *v);
int rl_sr_hdr_bool(const rl_sr *r, const char *key, int *v);

/* Map access helpers (maps are small: linear search). NULL when absent. */
const msgpack_object *rl_obj_get(const msgpack_object *map, const char *key);
/* Typed getters: return 0 on success, RL_EDATA with a message naming the key
 * and the stream (what, e.g. rl_sr_where(r)) when absent or of the wrong type.
 * rl_obj_int/uint check the value fits; rl_obj_f64 accepts integers too. */
int rl_obj_str(const msgpack_object *map, const char *key, const char *what, const char **s,
	       size_t *len);
int rl_obj_int(const msgpack_object *map, const char *key, const char *what, int64_t *v);
int rl_obj_uint(const msgpack_object *map, const char *key, const char *what, uint64_t *v);
int rl_obj_f64(const msgpack_object *map, const char *key, const char *what, double *v);
int rl_obj_bool(const msgpack_object *map, const char *key, const char *what, int *v);
int rl_obj_bin(const msgpack_object *map, const char *key, const char *what, const void **p,
	       size_t *n);
/* Copies a msgpack string into buf (NUL-terminated), failing (RL_EDATA) if it
 * is not a string, holds a NUL byte, or does not fit. */
int rl_obj_strcpy(const msgpack_object *o, char *buf, size_t cap);
/* 1 when the msgpack string o equals s. */
int rl_obj_streq(const msgpack_object *o, const char *s);

/* A parsed "tensor" chunk record. data points into the record (unaligned). */
struct rl_chunk {
	char name[RL_MAX_NAME + 1];
	rl_dtype dtype;
	int ndim;
	int64_t shape[RL_MAX_DIMS];
	uint64_t numel;
	uint64_t offset, count;
	const void *data;
};
/* Parses and validates a tensor chunk: name a string of 1..RL_MAX_NAME bytes
 * without NUL; dtype known; shape at most RL_MAX_DIMS non-negative integers
 * whose product (numel) does not overflow; offset + count <= numel; count > 0
 * unless numel == 0; payload size == count x dtype size <= RL_CHUNK_BYTES. */
int rl_chunk_parse(const msgpack_object *rec, const char *what, rl_chunk *c);

#endif
