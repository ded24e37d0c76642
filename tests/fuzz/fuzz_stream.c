/* fuzz_stream.c — libFuzzer target for the stream reader (and rl-dump's
 * JSON rendering) over arbitrary bytes.
 *
 * Besides "no crash, no UB, no leak": every error message is one line; every
 * chunk handed out lies inside the input and within its tensor; an accepted
 * stream was consumed exactly to its last byte, and no proper prefix of it is
 * accepted too.
 *
 * seeds: tests/fixtures/stream
 * dict: tests/fuzz/stream.dict
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/stream.h"
#include "store/stream_dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

/* Reads the whole stream; 0 when it is accepted. */
static int consume(const uint8_t *data, size_t size, int dump)
{
	rl_sr *r;
	int rc = rl_sr_open_mem(&r, data, size, "fuzz", NULL);
	if (rc)
		return rc;
	if (dump)
		rl_dump_record(devnull, rl_sr_header(r), NULL, 0);
	rl_dump_stats st = {0};
	const msgpack_object *rec;
	while ((rc = rl_sr_next(r, &rec)) == 0 && rec) {
		const rl_chunk *c = rl_sr_chunk(r);
		if (c) {
			const uint8_t *p = c->data;
			uint64_t nbytes = c->count * rl_dtype_size(c->dtype);
			if (c->offset + c->count > c->numel || nbytes > RL_CHUNK_BYTES ||
			    (nbytes && (p < data || p + nbytes > data + size)))
				__builtin_trap();
		}
		if (dump) {
			rl_dump_record(devnull, rec, c, (size & 1) ? RL_DUMP_FULL : 0);
			rl_dump_stats_add(&st, rec, c, rl_sr_record_bytes(r));
		}
	}
	if (rc == 0) {
		if (rl_sr_bytes(r) != size || !rl_sr_end(r))
			__builtin_trap();
		if (dump) {
			rl_dump_record(devnull, rl_sr_end(r), NULL, 0);
			rl_dump_stats_print(devnull, &st, rl_sr_kind(r), rl_sr_bytes(r));
		}
	}
	rl_dump_stats_free(&st);
	rl_sr_close(r);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	int rc = consume(data, size, 1);
	if (strchr(rl_errmsg(), '\n'))
		__builtin_trap();
	if (rc == 0 && size > 0 && consume(data, size - 1, 0) == 0)
		__builtin_trap();
	if (rc != 0 && rc != RL_EDATA)
		__builtin_trap(); /* memory input: nothing but bad data can go wrong */
	return 0;
}
