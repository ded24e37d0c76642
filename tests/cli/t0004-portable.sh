#!/bin/sh
# A user's clone works where it lands: no file names an absolute path of the
# machine the project was developed on (its /work folder: shared data, models,
# notes), and the data the examples need ships in examples/data/ with its
# licence.
. "$RL_TESTS/lib.sh"
cd "$RL_TESTS/.."
# An absolute path starts a word: "$T/work" or "OUT/work" are relative, while
# "${X:-/work/...}" is not.
run grep -rnE '(^|[^A-Za-z0-9_.$}/])/work(/|$|[^A-Za-z0-9_])' \
	--exclude-dir=.git --exclude=.git --exclude-dir=build --exclude-dir=bin --exclude-dir=out \
	--exclude-dir=world --exclude='t0004-portable.sh' .
[ "$rc" -eq 1 ] || fail "machine-specific absolute paths (grep exit $rc): $(head -n 20 "$T/stdout")"
ok "no machine-specific absolute paths"

# The shipped data: every line a JSON object with a prompt (task data also a
# reference response), the row counts examples/data/README.md gives.
for f in beavertails_eval:700:prompt beavertails_recovery64:64:prompt sql_eval:1000:response; do
	name=${f%%:*} rest=${f#*:}
	want=${rest%%:*} field=${rest#*:}
	p=examples/data/$name.jsonl
	n=$(jq -c "select((.prompt | type) == \"string\" and (.$field | type) == \"string\")" "$p" | wc -l)
	[ "$n" -eq "$want" ] && [ "$(wc -l <"$p")" -eq "$want" ] ||
		fail "$p: $n good rows of $(wc -l <"$p"), README says $want"
	grep -qF "\`$name.jsonl\` | $want |" examples/data/README.md || fail "README lacks $name's row"
	ok "$p: $want rows"
done
for f in beavertails_eval beavertails_recovery64 sql_eval; do
	grep -qE "^(.*, )?$f.jsonl" examples/data/LICENSE || fail "examples/data/LICENSE does not name $f"
done
ok "examples/data/LICENSE names every file"
finish
