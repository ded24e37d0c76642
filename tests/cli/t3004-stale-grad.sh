#!/bin/sh
# A gradient is computed for one state of the model: rl-grad names that state
# in its header ("model"."state", the id rl-select and rl-apply use), and
# rl-select refuses the stream once the model has changed (here by rl-apply),
# exit 3 with nothing on stdout, until the change is undone. rl-grad refuses a
# model left with a hot journal by an interrupted write.
. "$RL_TESTS/lib.sh"
R="$F/restore"
cd "$T"
cp -r "$R/finetuned" work
printf '{"ids": [5, 17, 33, 60, 2]}\n{"ids": [9, 41, 7]}\n{"ids": [88, 3, 12, 70]}\n' >harmful.jsonl
must_pass rl-direction -q -m "$R/aligned" -p harmful.jsonl -L 2 -o dh.rls
must_pass rl-grad -q -m work -p harmful.jsonl -d dh.rls -o g1.rls
state=$(rl-dump --header g1.rls | jq -r .model.state)
echo "$state" | grep -Eq '^[0-9a-f]{32}$' || fail "grad header state: '$state'"
must_pass rl-select -q -m work -t "$R/aligned" --count 20 g1.rls -o sel.rls
[ "$(rl-dump --header sel.rls | jq -r .model.state)" = "$state" ] ||
	fail "the selection names another state than the gradient"
ok "grad header names the state rl-select sees ($state)"

# the model changes: the old gradient is stale
must_pass rl-apply -q -m work -s "$R/aligned" -j step.rlj sel.rls
now=$(rl-dump --header step.rlj | jq -r .before)
[ "$now" = "$state" ] || fail "the step started from $now, not $state"
must_fail 3 rl-select -m work -t "$R/aligned" --count 20 g1.rls
stderr_has "'g1.rls': made for state $state of 'work', which is now in state"
stderr_has "the model changed since"
must_fail 3 rl-select -m work -t "$R/aligned" --count 20 - <g1.rls
# a gradient of the model as it is now is accepted
must_pass rl-grad -q -m work -p harmful.jsonl -d dh.rls -o g2.rls
[ "$(rl-dump --header g2.rls | jq -r .model.state)" != "$state" ] || fail "g2 names the old state"
must_pass rl-select -q -m work -t "$R/aligned" --count 20 g2.rls -o sel2.rls
# after the exact rollback the model is back in the old state: g1 is current again
must_pass rl-rollback -q -m work -j undo.rlj step.rlj
must_pass rl-select -q -m work -t "$R/aligned" --count 20 g1.rls -o sel3.rls
cmp sel.rls sel3.rls || fail "the selection after the rollback differs"
ok "after the rollback the old gradient selects the same elements"

# an interrupted write (killed at its first model write): rl-grad refuses
RL_FAULT_TRACE=trace rl-apply -q -m work -s "$R/aligned" -j step.rlj sel3.rls
rl-rollback -q -m work -j undo.rlj step.rlj
must_pass rl-select -q -m work -t "$R/aligned" --count 20 g1.rls -o sel4.rls
n=$(grep -n ' model ' trace | head -1 | cut -d: -f1)
set +e
RL_FAULT="kill:$n" rl-apply -q -m work -s "$R/aligned" -j step.rlj sel4.rls 2>/dev/null
rc=$?
set -e
[ "$rc" -eq 137 ] || fail "kill at point $n: exit $rc"
must_fail 3 rl-grad -q -m work -p harmful.jsonl -d dh.rls
stderr_has "run 'rl-rollback -m work'"
must_pass rl-rollback -q -m work
must_pass rl-select -q -m work -t "$R/aligned" --count 20 g1.rls -o sel5.rls
finish
