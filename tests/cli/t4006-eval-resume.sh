#!/bin/sh
# rl-eval -o FILE keeps each finished response in FILE.partial at once; a run
# killed part-way goes on with --resume without redoing those, and ends with
# the same responses and the same stream items as a run never interrupted.
# The refusal judge ends a response once it holds a refusal phrase.
. "$RL_TESTS/lib.sh"
E="$F/eval"
cd "$T"
gen() { rl-eval -m "$E/tiny" -p "$E/prompts.jsonl" --max-new-tokens 16 --max-prompt-tokens 64 -b 2 "$@"; }
items() { rl-dump "$1" | jq -c 'select(.t == "item")'; }

must_pass gen --judge none -o whole.jsonl -O whole.rls
[ ! -e whole.jsonl.partial ] || fail "the log outlived a complete run"
items whole.rls >whole.items

# Killed (SIGKILL) right after the 2nd response reached the log.
set +e
RL_FAULT=kill:2 gen --judge none -o part.jsonl -O part.rls -q 2>/dev/null
rc=$?
set -e
[ "$rc" -eq 137 ] || fail "the fault point did not kill rl-eval (exit $rc)"
[ ! -e part.jsonl ] || fail "FILE written by a run that did not finish"
[ "$(wc -l <part.jsonl.partial)" -eq 2 ] || fail "the log holds $(wc -l <part.jsonl.partial) lines, not 2"
ok "a killed run leaves its finished responses in FILE.partial"

# A torn last line (killed in the middle of a write) is dropped.
printf '{"id": 4, "prompt": "cut' >>part.jsonl.partial
cp part.jsonl.partial kept.partial
must_fail 2 gen --judge none -o part.jsonl -O part.rls
stderr_has "give --resume to go on with it"
cmp -s part.jsonl.partial kept.partial || fail "a refused run changed the log"
must_pass gen --judge none -o part.jsonl -O part.rls --resume
stderr_has "resuming: 2 of 5 responses kept"
test_cmp whole.jsonl part.jsonl
items part.rls >part.items
test_cmp whole.items part.items
[ ! -e part.jsonl.partial ] || fail "the log outlived the resumed run"
ok "resumed: the same responses file and stream items as the whole run"

# Resuming a complete run generates nothing and gives the same again.
must_pass gen --judge none -o part.jsonl -O again.rls --resume
stderr_has "resuming: 5 of 5 responses kept"
items again.rls >again.items
test_cmp whole.items again.items
ok "resuming a complete run"

# A log from another run (other prompts) is refused, not mixed in.
jq -c '.prompt = "something else"' whole.jsonl | head -n 1 >other.jsonl.partial
must_fail 3 gen --judge none -o other.jsonl --resume
stderr_has "item 0's prompt differs from the prompt file's"
must_fail 2 gen --resume
must_fail 2 gen --resume -o -
ok "bad logs and options refused"

# Refusal early stop: with a phrase the tiny model writes, responses end at it;
# the verdicts equal those of whole responses judged afterwards.
first=$(jq -r 'select(.response != "") | .response' whole.jsonl | head -n 1)
word=$(printf '%s' "$first" | cut -c1-4)
printf '%s\n' "$word" >phrases
must_pass gen --refusals phrases -o early.jsonl -O early.rls
must_pass rl-eval --responses whole.jsonl --refusals phrases -O late.rls
rl-dump early.rls | jq -c 'select(.t == "item") | .harmful' >v1
rl-dump late.rls | jq -c 'select(.t == "item") | .harmful' >v2
test_cmp v2 v1
n_early=$(jq -s '[.[] | select(.ended_early)] | length' early.jsonl)
[ "$n_early" -ge 1 ] || fail "no response ended early (phrase '$word')"
jq -r 'select(.ended_early) | .response' early.jsonl | while IFS= read -r r; do
	case "$r" in *"$word"*) ;; *) fail "ended early without the phrase: $r" ;; esac
done
must_pass gen --refusals phrases --full-responses -o full.jsonl -O /dev/null
[ "$(jq -s '[.[] | select(.ended_early)] | length' full.jsonl)" -eq 0 ] || fail "--full-responses"
jq -c .response full.jsonl >r1
jq -c .response whole.jsonl >r2
test_cmp r2 r1
ok "refusal early stop: $n_early responses ended at '$word', verdicts unchanged"
finish
