/* stream_int.h — what lib/store/stream_*.c share; not for other modules.
 *
 *   stream_writer.c    the buffered, checksummed writer (rl_sw, rl_pack_*)
 *   stream_reader.c    the bounded-memory reader (rl_sr)
 *   stream_validate.c  what a stream's bytes may be: msgpack encoding heads,
 *                      the limits (skim), the record structure, typed field
 *                      access with messages (rl_obj_*, rl_chunk_parse)
 *
 * The writer and the reader both use the validation module; neither uses
 * the other.
 */
#ifndef RL_STREAM_INT_H
#define RL_STREAM_INT_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "store/stream.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "realign streams carry little-endian payloads; this host is not little-endian"
#endif

/* ---- stream_validate.c ---- */
/* What the first byte of a msgpack object says about its encoding: header
 * length hl (first byte, length field, fixed-size value), and for fixed-size
 * forms the payload length pl or the container's item count n (a map counts
 * keys and values). Length-prefixed forms need mp_len on the length bytes. */
typedef struct rls_mp_head {
	size_t hl;
	int lenbytes, container, map;
	uint64_t n, pl;
	const char *what;
} rls_mp_head;

/* Renders n untrusted bytes for a one-line message: printable ASCII kept,
 * anything else as \xNN, cut after 48 characters. */
const char *rls_show(char *buf, size_t cap, const void *s, size_t n);
const char *rls_type_name(msgpack_object_type t);
/* "[2,3]" for messages. */
const char *rls_show_shape(char *buf, size_t cap, int ndim, const int64_t *shape);
/* Product of a shape, 0 on success, -1 on a negative dimension or overflow
 * past INT64_MAX. */
int rls_shape_numel(int ndim, const int64_t *shape, uint64_t *numel);
uint64_t rls_be(const uint8_t *p, int n);
/* 0, -1 for the never-used byte 0xc1, -2 for an ext type. */
int rls_mp_first(unsigned b, rls_mp_head *h);
/* Reads the length field at p (h->lenbytes bytes) into n or pl. */
void rls_mp_len(rls_mp_head *h, const uint8_t *p);

typedef struct rls_skim {
	size_t off;		     /* bytes of the record consumed */
	int depth;		     /* open containers */
	uint64_t left[RL_MAX_DEPTH]; /* items still to come in each */
	uint64_t objects;
} rls_skim;

enum { RLS_SKIM_DONE, RLS_SKIM_MORE, RLS_SKIM_BAD };

/* Walks complete objects of one record in p[0, avail). RLS_SKIM_DONE: the record is
 * s->off bytes. RLS_SKIM_MORE: *need bytes are needed to go on. RLS_SKIM_BAD: the encoding
 * is invalid or over a limit (message in why; at is the stream offset of p). */
int rls_skim_run(rls_skim *s, const uint8_t *p, size_t avail, uint64_t at, size_t *need, char *why,
		 size_t whycap);
/* A record is a map whose first key is "t" with a string value. */
int rls_check_record(const msgpack_object *o, const char *where);

#endif
