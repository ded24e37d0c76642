/* stream_dump.h — stream records as JSON text, for rl-dump(1) and jq.
 *
 * One record is one line: a JSON object with the record's keys in stream
 * order, written compactly ({"t":"batch","index":0}). The mapping (also in
 * rl-dump(1); tests/gen/gen_stream.py implements it independently in Python):
 *   nil, booleans, integers  null, true/false, exact decimal integers
 *   floats                   the shortest of %.15g/%.16g/%.17g that reads back
 *                            as the same double; NaN, +-inf as the strings
 *                            "NaN", "Infinity", "-Infinity"
 *   strings                  JSON strings: \" \\ \b \f \n \r \t, other bytes
 *                            below 0x20 as \u00XX, the rest raw UTF-8; each
 *                            maximal ill-formed UTF-8 subpart becomes U+FFFD
 *                            (what Python's errors="replace" does)
 *   bin                      {"bin":bytes,"head":"<hex of the first 16>"},
 *                            with RL_DUMP_FULL {"bin":bytes,"hex":"<all>"}
 *   arrays, maps             JSON arrays and objects (keys are strings)
 * A "tensor" chunk's "data" is summarised by dtype instead:
 *   F32 F16 BF16 F64         {"min","max","mean","nan","inf","first":[<=4]}:
 *                            min/max/mean over the finite elements (null if
 *                            none), nan/inf counts; elements as %.9g (F64:
 *                            %.17g), which reads back exactly; mean as %.9g
 *   integer dtypes, BOOL     {"min","max","mean","first":[<=4]} (integers)
 *   F8_E4M3, F8_E5M2         as bin
 * and with RL_DUMP_FULL is the array of every element (F8: as bin).
 * The end record's "checksum" is printed as 16 lowercase hex digits.
 */
#ifndef RL_STREAM_DUMP_H
#define RL_STREAM_DUMP_H

#include <stdio.h>

#include "store/stream.h"

enum { RL_DUMP_FULL = 1 };

/* Writes rec (a header, data or end record) as one JSON line. chunk is the
 * parsed chunk when rec is a tensor record (rl_sr_chunk), else NULL. */
void rl_dump_record(FILE *fp, const msgpack_object *rec, const rl_chunk *chunk, int flags);

/* Writes n bytes as a JSON string (quotes included), per the rules above. */
void rl_json_str(FILE *fp, const char *s, size_t n);

/* Per-record-type totals. */
typedef struct rl_dump_type {
	char *type; /* may hold NUL bytes: len counts them */
	size_t len;
	uint64_t records, bytes, elements;
} rl_dump_type;

typedef struct rl_dump_stats {
	rl_dump_type *types; /* in order of first appearance */
	size_t ntypes;
	uint64_t records, tensors;
} rl_dump_stats;

/* Counts a data record of bytes encoded bytes (chunk as for rl_dump_record). */
int rl_dump_stats_add(rl_dump_stats *st, const msgpack_object *rec, const rl_chunk *chunk,
		      uint64_t bytes);
/* One JSON line: {"kind","records","bytes","tensors","types":{type:{"records",
 * "bytes","elements"}}}; total_bytes is the whole stream's size. */
void rl_dump_stats_print(FILE *fp, const rl_dump_stats *st, const char *kind, uint64_t total_bytes);
void rl_dump_stats_free(rl_dump_stats *st);

#endif
