#!/bin/sh
# Every JSON text realign reads follows json.h's rules: cJSON parses only in
# lib/core/json.c (rl_json_parse), or in a file that checks what it parsed
# with rl_json_check (where the caller phrases its own syntax errors).
. "$RL_TESTS/lib.sh"
cd "$RL_TESTS/.."
bad=""
n=0
for f in $(grep -l 'cJSON_Parse' lib/*/*.c tools/*.c); do
	n=$((n + 1))
	[ "$f" = lib/core/json.c ] && continue
	grep -q 'rl_json_check' "$f" || bad="$bad $f"
done
[ -z "$bad" ] || fail "cJSON parses without json.h's rules in:$bad"
ok "$n files parse JSON, all through json.h's rules"
finish
