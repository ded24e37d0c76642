#!/bin/sh
# rl-dump: streams as JSON lines. Golden outputs were rendered by
# tests/gen/gen_stream.py from its own decoding (Python msgpack + xxhash) of
# c-sample.rls (written by lib/store/stream_writer.c) and py-sample.rls (written by Python):
# the reader and the JSON mapping against an independent implementation.
. "$RL_TESTS/lib.sh"
S="$F/stream"

for n in c-sample py-sample; do
	must_pass rl-dump "$S/$n.rls"
	test_cmp "$S/$n.dump.jsonl" "$T/stdout"
	must_pass rl-dump --full "$S/$n.rls"
	test_cmp "$S/$n.full.jsonl" "$T/stdout"
	must_pass rl-dump -s "$S/$n.rls"
	test_cmp "$S/$n.stats.json" "$T/stdout"
	must_pass rl-dump --header "$S/$n.rls"
	head -n 1 "$S/$n.dump.jsonl" >"$T/want"
	test_cmp "$T/want" "$T/stdout"
	# standard input, as "-" and as no argument
	run rl-dump - <"$S/$n.rls"
	[ "$rc" -eq 0 ] || fail "rl-dump - exit $rc"
	test_cmp "$S/$n.dump.jsonl" "$T/stdout"
	cat "$S/$n.rls" | rl-dump -f >"$T/out" || fail "rl-dump from a pipe"
	test_cmp "$S/$n.full.jsonl" "$T/out"
done

# valid JSON, one object per line, for jq
rl-dump --full "$S/c-sample.rls" | jq -c . >"$T/jq" || fail "jq rejects rl-dump --full output"
[ "$(wc -l <"$T/jq")" -eq 29 ] || fail "expected 29 JSON lines"
ok "jq parses every line"

# the man page's EXAMPLES
rl-dump "$S/py-sample.rls" | jq -c 'select(.t == "batch") | .loss' >"$T/out"
printf '%s\n' -0.125 -0.25 -0.375 >"$T/want"
test_cmp "$T/want" "$T/out"
rl-dump --header "$S/py-sample.rls" | jq -r '.model.path + " " + .model.shape_id' >"$T/out"
printf '%s\n' "/models/qwen é fedcba9876543210" >"$T/want"
test_cmp "$T/want" "$T/out"
rl-dump --stats "$S/py-sample.rls" | jq .types.tensor.elements >"$T/out"
echo 305 >"$T/want"
test_cmp "$T/want" "$T/out"
rl-dump --full "$S/py-sample.rls" |
	jq -c 'select(.t == "tensor" and .name == "b") | .data' | jq -s -c add >"$T/out"
echo '[-2,-1,0,1,2]' >"$T/want"
test_cmp "$T/want" "$T/out"

# options
must_pass rl-dump --help
stdout_has "Usage: rl-dump"
must_pass rl-dump --version
stdout_has "rl-dump $(sed -n 's/^VERSION *:= *//p' "$RL_TESTS/../Makefile")"
must_fail 2 rl-dump --bogus
must_fail 2 rl-dump "$S/c-sample.rls" "$S/py-sample.rls"
stderr_has "rl-dump: one input at most (got 2)"
must_fail 2 rl-dump --stats --header "$S/c-sample.rls"

# not a stream: nothing on stdout, exit 3, what it looks like
must_fail 3 rl-dump "$S/c-sample.dump.jsonl"
stderr_has "rl-dump: '$S/c-sample.dump.jsonl' is not a realign stream (it looks like JSON)"
: >"$T/empty"
must_fail 3 rl-dump "$T/empty"
stderr_has "rl-dump: '$T/empty' is not a realign stream (it is empty)"
must_fail 3 rl-dump "$F/safetensors/models/qwen2-tied/model.safetensors"
stderr_has "is not a realign stream (it looks like a safetensors file)"
must_fail 4 rl-dump "$T/missing.rls"
stderr_has "rl-dump: '$T/missing.rls': cannot open: No such file or directory"
must_fail 3 rl-dump "$T"
stderr_has "is a directory, not a stream"

# sets byte OFFSET of FILE to the octal value OCT
poke() {
	printf "\\$3" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
cp "$S/c-sample.rls" "$T/v2.rls"
off=$(grep -obUa version "$T/v2.rls" | head -n 1 | cut -d: -f1)
poke "$T/v2.rls" $((off + 7)) 002
must_fail 3 rl-dump "$T/v2.rls"
stderr_has "rl-dump: '$T/v2.rls': stream format version 2 is not supported (this build reads version 1)"

# truncated: the records before the cut, then the error
head -c 1000 "$S/c-sample.rls" >"$T/cut.rls"
run rl-dump "$T/cut.rls"
[ "$rc" -eq 3 ] || fail "truncated stream: exit $rc"
stderr_has "rl-dump: '$T/cut.rls': truncated stream: cut off inside record 6 at byte 1000"
head -n 6 "$S/c-sample.dump.jsonl" >"$T/want"
test_cmp "$T/want" "$T/stdout"
head -c 2341 "$S/c-sample.rls" | rl-dump -s 2>"$T/err" >"$T/out" && fail "stats of a cut stream"
grep -qF "truncated stream: no end record after 27 records" "$T/err" || fail "$(cat "$T/err")"
[ ! -s "$T/out" ] || fail "--stats printed totals of a truncated stream"
ok "a truncated stream has no totals"

# a changed payload byte: every record printed, the checksum refuses the end
cp "$S/c-sample.rls" "$T/flip.rls"
off=$(grep -obUa note "$T/flip.rls" | tail -n 1 | cut -d: -f1)
poke "$T/flip.rls" $((off + 10)) 116 # "done" -> "Nne"-like change of one byte
run rl-dump "$T/flip.rls"
[ "$rc" -eq 3 ] || fail "corrupt stream: exit $rc"
stderr_has "rl-dump: '$T/flip.rls': corrupt stream: checksum mismatch (the end record says 7adbb2b8423875ac"
[ "$(wc -l <"$T/stdout")" -eq 28 ] || fail "expected the 28 lines before the end record"
ok "records before the damage are printed"

# trailing data after the end record
{ cat "$S/c-sample.rls"; printf x; } >"$T/trail.rls"
run rl-dump "$T/trail.rls"
[ "$rc" -eq 3 ] || fail "trailing data: exit $rc"
stderr_has "rl-dump: '$T/trail.rls': trailing data after the end record at byte 2375"

# a full disk is an error, not a short output
must_fail 4 sh -c "rl-dump '$S/c-sample.rls' >/dev/full"
stderr_has "rl-dump: error writing standard output: No space left on device"
finish
