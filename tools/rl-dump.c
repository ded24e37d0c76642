/* rl-dump — print any realign stream as JSON lines (header, records, end).
 *
 * Reads one stream (a file or stdin), verifies it as it goes and writes one
 * JSON object per record to stdout; the mapping is in lib/stream_dump.h and
 * rl-dump(1). A corrupt stream: the records read so far, then the error on
 * stderr, exit 3.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/cli.h"
#include "core/options.h"
#include "store/stream.h"
#include "store/stream_dump.h"

struct opts {
	const char *input;
	int full;
	int stats;
	int header;
};

static void parse_args(struct opts *o, int argc, char **argv)
{
	const rl_opt table[] = {
		RL_OPT_FLAG('f', "full", &o->full,
			    "print every tensor element and every bin byte (default: a summary of "
			    "each payload)"),
		RL_OPT_FLAG('s', "stats", &o->stats,
			    "print only per-record-type totals, as one JSON object"),
		RL_OPT_FLAG('H', "header", &o->header,
			    "print only the header (the rest is not read)"),
		RL_OPT_QUIET("no messages but errors"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-dump [OPTION]... [FILE|-]",
		"Print a realign stream (FILE, or standard input) as JSON lines: the header,\n"
		"every record and the end record, verifying the stream as it goes.",
		table,
		"Exit status: 0 ok, 2 usage, 3 bad stream (truncated, corrupt, not a stream),\n"
		"4 system error. See rl-dump(1) and rl-stream(5).",
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	if (o->stats && o->header)
		rl_usage("--stats and --header exclude each other");
	if (argc - i > 1)
		rl_usage("one input at most (got %d)", argc - i);
	o->input = i < argc ? argv[i] : "-";
}

/* Prints what was written so far, then dies with the library's message. */
static _Noreturn void fail(rl_sr *r, rl_dump_stats *st, int rc)
{
	fflush(stdout);
	rl_sr_close(r);
	rl_dump_stats_free(st);
	rl_die_err(rc);
}

int main(int argc, char **argv)
{
	rl_cli_init("rl-dump", argc, argv);
	struct opts o = {0};
	parse_args(&o, argc, argv);
	static char obuf[1 << 16];
	setvbuf(stdout, obuf, _IOFBF, sizeof obuf);

	rl_sr *r;
	rl_dump_stats st = {0};
	int rc = rl_sr_open(&r, o.input, NULL);
	if (rc)
		rl_die_err(rc);
	int flags = o.full ? RL_DUMP_FULL : 0;
	if (!o.stats)
		rl_dump_record(stdout, rl_sr_header(r), NULL, flags);
	if (o.header) {
		rl_sr_close(r);
		return rl_cli_exit();
	}
	const msgpack_object *rec;
	while ((rc = rl_sr_next(r, &rec)) == 0 && rec) {
		if (o.stats)
			rc = rl_dump_stats_add(&st, rec, rl_sr_chunk(r), rl_sr_record_bytes(r));
		else
			rl_dump_record(stdout, rec, rl_sr_chunk(r), flags);
		if (rc)
			fail(r, &st, rc);
		if (ferror(stdout))
			break; /* rl_cli_exit reports it */
		rl_progress("%llu records", (unsigned long long)rl_sr_count(r));
	}
	if (rc)
		fail(r, &st, rc);
	if (!ferror(stdout)) {
		if (o.stats)
			rl_dump_stats_print(stdout, &st, rl_sr_kind(r), rl_sr_bytes(r));
		else
			rl_dump_record(stdout, rl_sr_end(r), NULL, flags);
	}
	rl_sr_close(r);
	rl_dump_stats_free(&st);
	return rl_cli_exit();
}
