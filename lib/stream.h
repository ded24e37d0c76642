/* stream.h — realign's record streams (msgpack), the format tools exchange.
 *
 * A stream is a sequence of msgpack maps, each with a string key "t" naming the
 * record type:
 *   header  {"t":"header", "magic":"realign", "version":1, "kind":K, "tool":T,
 *            "tool_version":V, ...kind-specific keys (models, parameters)}
 *   records {"t":<type>, ...}     kind-specific (see rl-stream(5))
 *   end     {"t":"end", "records":N, "checksum":C}
 * N counts the data records (not header or end); C is the XXH64 (seed 0) of
 * every byte of the stream before the end record. A stream without its end
 * record is truncated; a checksum mismatch is corruption: both are RL_EDATA.
 *
 * Large tensors travel as "tensor" chunk records of at most RL_CHUNK_BYTES of
 * payload: {"t":"tensor", "name", "dtype", "shape":[..], "offset":first element,
 * "count":elements, "data":bin}. A reader never holds more than one record
 * (bounded by RL_MAX_RECORD) in memory, whatever the stream's size.
 *
 * Writing: rl_sw_open, rl_sw_header_begin + packed header pairs, records via
 * rl_sw_record_begin + packed pairs (or rl_sw_tensor), rl_sw_close (writes the
 * end record, flushes, and reports any write error such as EPIPE or ENOSPC).
 */
#ifndef RL_STREAM_H
#define RL_STREAM_H

#include <msgpack.h>
#include <stdint.h>

#include "dtype.h"
#include "safetensors.h"

#define RL_STREAM_MAGIC "realign"
#define RL_STREAM_VERSION 1
#define RL_CHUNK_BYTES (16u << 20)
#define RL_MAX_RECORD ((64u << 20) + (1u << 20))

/* ---- writer ---- */

typedef struct rl_sw rl_sw;

/* Opens path for writing ("-" = stdout). The stream's kind and the producing
 * tool go into the header. */
int rl_sw_open(rl_sw **w, const char *path, const char *kind, const char *tool);
/* Starts the header map with nextra caller-packed key/value pairs to follow. */
int rl_sw_header_begin(rl_sw *w, uint32_t nextra);
/* Starts a data record of type t with nfields caller-packed pairs to follow. */
int rl_sw_record_begin(rl_sw *w, const char *type, uint32_t nfields);
/* The packer to pack keys and values with (valid until rl_sw_close). */
msgpack_packer *rl_sw_packer(rl_sw *w);
/* Writes a tensor (numel elements of dtype at data) as chunk records of type
 * "tensor" with extra caller-supplied nothing; returns an error code. */
int rl_sw_tensor(rl_sw *w, const char *name, rl_dtype dtype, int ndim, const int64_t *shape,
		 const void *data, uint64_t numel);
/* Writes one chunk of a tensor: elements [offset, offset+count). */
int rl_sw_tensor_chunk(rl_sw *w, const char *name, rl_dtype dtype, int ndim, const int64_t *shape,
		       uint64_t offset, const void *data, uint64_t count);
/* Data records written so far. */
uint64_t rl_sw_count(const rl_sw *w);
/* Writes the end record, flushes, fsyncs regular files, closes. Frees w even
 * on error. Returns the first error met while writing (sticky). */
int rl_sw_close(rl_sw *w);
/* Frees w without an end record (a failed tool leaves a detectably truncated
 * stream rather than a complete-looking one). */
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

typedef struct rl_sr rl_sr;

/* Opens path ("-" = stdin) and reads the header, checking magic, version and
 * (when want_kind is not NULL) the kind. */
int rl_sr_open(rl_sr **r, const char *path, const char *want_kind);
/* The header map (valid until rl_sr_close). */
const msgpack_object *rl_sr_header(const rl_sr *r);
const char *rl_sr_kind(const rl_sr *r);
/* The path as given, or "<stdin>": for messages. */
const char *rl_sr_path(const rl_sr *r);
/* Next data record into *rec (valid until the next call). At the end record,
 * verifies count and checksum and sets *rec = NULL. Errors are RL_EDATA
 * (truncation, corruption, bad nesting, oversized record) or RL_ESYS. */
int rl_sr_next(rl_sr *r, const msgpack_object **rec);
/* Record type ("t") of a record. */
const char *rl_rec_type(const msgpack_object *rec, size_t *len);
void rl_sr_close(rl_sr *r);

/* Map access helpers (maps are small: linear search). NULL when absent. */
const msgpack_object *rl_obj_get(const msgpack_object *map, const char *key);
/* Typed getters: return 0 on success, RL_EDATA with a message naming the key
 * and the stream (what) when absent or of the wrong type. */
int rl_obj_str(const msgpack_object *map, const char *key, const char *what, const char **s,
	       size_t *len);
int rl_obj_int(const msgpack_object *map, const char *key, const char *what, int64_t *v);
int rl_obj_uint(const msgpack_object *map, const char *key, const char *what, uint64_t *v);
int rl_obj_f64(const msgpack_object *map, const char *key, const char *what, double *v);
int rl_obj_bin(const msgpack_object *map, const char *key, const char *what, const void **p,
	       size_t *n);
/* Copies a msgpack string into buf (NUL-terminated), failing if it does not fit. */
int rl_obj_strcpy(const msgpack_object *o, char *buf, size_t cap);

/* A parsed "tensor" chunk record. data points into the record (unaligned). */
typedef struct rl_chunk {
	char name[256];
	rl_dtype dtype;
	int ndim;
	int64_t shape[RL_MAX_DIMS];
	uint64_t numel;
	uint64_t offset, count;
	const void *data;
} rl_chunk;
/* Parses and validates a tensor chunk (count x dtype size == payload size,
 * offset + count <= numel). */
int rl_chunk_parse(const msgpack_object *rec, const char *what, rl_chunk *c);

#endif
