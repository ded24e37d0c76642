#!/bin/sh
# rl-recover on a reduced toy world (tests/gen/gen_toy.py: an aligned model and
# a gentle harmful fine-tune of it, trained by PyTorch): the harmful rate
# falls, the task score stays above the bound, the journals give the
# fine-tuned model back bit-exactly, an interrupted run resumes to the same
# result, and rollback mode runs when the task bound demands it.
. "$RL_TESTS/lib.sh"
command -v jq >/dev/null || fail "jq is not installed (make deps installs it)"
fx=$F/toy
w=$fx/world
args="-a $fx/aligned -f $fx/finetuned -H $w/recovery.jsonl -B $w/benign.jsonl
	--eval-harmful $w/eval-harmful.jsonl --eval-task $w/eval-task.jsonl
	--eval-benign $w/eval-benign.jsonl --max-new-tokens 32 --steps 10 --save-every 5"

# shellcheck disable=SC2086
must_pass rl-recover $args -o "$T/rec"
r=$T/rec
[ -s "$r/report.txt" ] || fail "no report"
[ "$(awk -F'\t' 'NR > 1' "$r/steps.tsv" | wc -l)" -eq 11 ] || fail "steps.tsv: $(cat "$r/steps.tsv")"
[ "$(head -1 "$r/steps.tsv")" = "$(printf 'step\tk\trestored\tloss\tharmful\ttask\tseconds\tphase\tbenign')" ] ||
	fail "steps.tsv header"
chosen=$(sed -n 's/^chosen step  //p' "$r/report.txt")
row() { awk -F'\t' -v s="$1" '$1 == s && $8 != "rollback" { print $'"$2"' }' "$r/steps.tsv"; }
fh=$(row 0 5) ft=$(row 0 6) rh=$(row "$chosen" 5) rt=$(row "$chosen" 6)
echo "fine-tuned: harmful $fh task $ft; chosen step $chosen: harmful $rh task $rt"
awk -v f="$fh" 'BEGIN { exit !(f >= 0.5) }' || fail "the fine-tuned model's harmful rate is $fh"
[ "$chosen" -ge 5 ] || fail "chosen step $chosen"
awk -v f="$fh" -v r="$rh" 'BEGIN { exit !(r <= f - 0.4) }' || fail "harmful rate $fh -> $rh"
ok "harmful rate falls: $fh -> $rh"
awk -v f="$ft" -v r="$rt" 'BEGIN { exit !(r > 0.95 * f) }' || fail "task score $ft -> $rt"
ok "task score within the bound: $ft -> $rt"
# k per step is ceil(0.002 * P); restored so far grows by at most k a step.
P=$(rl-info --json "$fx/finetuned" | jq -r .P)
k=$(awk -v p="$P" 'BEGIN { x = 0.002 * p; k = int(x); if (k < x) k++; print k }')
awk -F'\t' -v k="$k" 'NR > 2 { if ($2 != k || $3 - prev > k || $3 <= prev) bad = 1 } NR > 1 { prev = $3 }
	END { exit bad }' "$r/steps.tsv" || fail "k/restored columns: $(cat "$r/steps.tsv")"
ok "k = $k a step"

# --max-new-tokens-task: the task set's answers get their own length, the
# harmful set keeps --max-new-tokens.
# shellcheck disable=SC2086
must_pass rl-recover $args -o "$T/mnt" --steps 1 --warmup 0 --save-every 1 --max-new-tokens-task 7
log=$T/mnt/work/log
grep -q "^+ rl-eval .*eval-task.jsonl .*--max-new-tokens 7 " "$log" ||
	fail "task set: $(grep '^+ rl-eval' "$log" | head -n 2)"
grep -q "^+ rl-eval .*eval-harmful.jsonl .*--max-new-tokens 32 " "$log" ||
	fail "harmful set: $(grep '^+ rl-eval' "$log" | head -n 2)"
# shellcheck disable=SC2086
must_fail 2 rl-recover $args -o "$T/mnt0" --max-new-tokens-task 0
stderr_has "--max-new-tokens-task: expected a positive integer, got '0'"
ok "--max-new-tokens-task"

# rl-recover reads what the tools did from their --summary files, never from
# their stderr: tools that add misleading lines there change nothing.
mkdir "$T/liars"
for tool in rl-grad rl-select rl-apply rl-rollback rl-eval; do
	cat >"$T/liars/$tool" <<EOF
#!/bin/sh
"$(command -v $tool)" "\$@"
rc=\$?
echo "$tool: batch 1/1 (1 prompts): loss 9.5 cos -9.5" >&2
echo "$tool: changed 99999 elements in 1 tensors" >&2
echo "$tool: partial rollback: 99999 of 99999 eligible elements" >&2
exit \$rc
EOF
	chmod +x "$T/liars/$tool"
done
# shellcheck disable=SC2086
must_pass env PATH="$T/liars:$PATH" rl-recover $args -o "$T/liar" --steps 5
awk -F'\t' 'NR <= 7' "$r/steps.tsv" | cut -f 1-6,8,9 >"$T/a"
cut -f 1-6,8,9 "$T/liar/steps.tsv" >"$T/b"
test_cmp "$T/a" "$T/b"
ok "steps.tsv from the summaries alone"

# The chosen model differs from F; undoing the kept journals gives F back,
# bit-exactly ($T/undo keeps the recovered model for the resume test below).
cp -r "$r/model" "$T/undo"
rm -rf "$T/undo/.realign"
cmp -s "$T/undo/model.safetensors" "$fx/finetuned/model.safetensors" && fail "model unchanged"
js=""
i=1
while [ "$i" -le "$chosen" ]; do
	js="$js $r/journals/step-$(printf %02d "$i").rlj"
	i=$((i + 1))
done
# shellcheck disable=SC2086
must_pass rl-rollback -m "$r/model" -j "$T/undo.rlj" $js
cmp -s "$r/model/model.safetensors" "$fx/finetuned/model.safetensors" ||
	fail "rolling back every journal does not give F back"
ok "journals roll back to F bit-exactly"

# An interrupted run resumes to the same result. The interruption: a wrapper
# rl-apply kills rl-recover right after the 3rd restore was applied (before
# the step is committed); then a failing rl-grad on a later call.
real_apply=$(command -v rl-apply)
mkdir "$T/wrap"
cat >"$T/wrap/rl-apply" <<EOF
#!/bin/sh
n=\$(cat "$T/wrap/n" 2>/dev/null || echo 0); n=\$((n + 1)); echo \$n >"$T/wrap/n"
"$real_apply" "\$@" || exit \$?
[ \$n -ne 3 ] || kill -9 \$PPID
EOF
chmod +x "$T/wrap/rl-apply"
# shellcheck disable=SC2086
run env PATH="$T/wrap:$PATH" rl-recover $args -o "$T/res"
[ "$rc" -ne 0 ] || fail "the wrapper did not interrupt rl-recover"
[ -f "$T/res/journals/step-03.rlj" ] || fail "no journal of the interrupted step"
ok "interrupted after the 3rd apply (exit $rc)"
# shellcheck disable=SC2086
must_fail 2 rl-recover $args -o "$T/res"
stderr_has "exists (use --resume"
# shellcheck disable=SC2086
must_fail 2 rl-recover $args -o "$T/res" --resume --rate 0.003
stderr_has "other settings"
# shellcheck disable=SC2086
must_pass rl-recover $args -o "$T/res" --resume
stderr_has "undid the interrupted step 3"
cmp -s "$T/res/model/model.safetensors" "$T/undo/model.safetensors" ||
	fail "resumed run ends in another model"
cut -f 1-6,8,9 "$r/steps.tsv" >"$T/a"
cut -f 1-6,8,9 "$T/res/steps.tsv" >"$T/b"
test_cmp "$T/a" "$T/b"
ok "resumed run: same model, same steps.tsv"

# Rollback mode: a task score the model cannot reach (--task-score) makes the
# warm-up check fail: the run restarts from F with a partial rollback after
# each restore; every saved step then misses the bound, so the answer is F.
# shellcheck disable=SC2086
must_pass rl-recover $args -o "$T/rb" --steps 4 --warmup 2 --save-every 2 --task-score 2
stderr_has "rollback mode"
[ -f "$T/rb/journals/rb-01.rlj" ] || fail "no partial rollback journal"
[ -f "$T/rb/journals/step-01.warmup.rlj" ] || fail "warm-up journals not kept"
grep -q "rollback" "$T/rb/steps.tsv" || fail "no rollback rows"
grep -q "^chosen step  0$" "$T/rb/report.txt" || fail "chosen: $(grep chosen "$T/rb/report.txt")"
cmp -s "$T/rb/model/model.safetensors" "$fx/finetuned/model.safetensors" ||
	fail "answer 0 but the model is not F"
ok "rollback mode; no step within the bound: the model is F again"

# With --save-every below --warmup, a step of the warm-up that misses the
# bound switches to rollback mode there and then (the reference would at the
# warm-up check), rather than ending the run with nothing restored.
# shellcheck disable=SC2086
must_pass rl-recover $args -o "$T/rbe" --steps 3 --warmup 3 --save-every 1 --task-score 2
stderr_has "step 1 of the warm-up: task score"
[ -f "$T/rbe/journals/step-01.warmup.rlj" ] && [ ! -e "$T/rbe/journals/step-02.warmup.rlj" ] ||
	fail "warm-up journals: $(ls "$T/rbe/journals")"
[ "$(awk -F'\t' '$8 == "plain"' "$T/rbe/steps.tsv" | wc -l)" -eq 1 ] &&
	[ "$(awk -F'\t' '$8 == "rollback"' "$T/rbe/steps.tsv" | wc -l)" -ge 1 ] ||
	fail "steps.tsv: $(cat "$T/rbe/steps.tsv")"
grep -q "^mode         rollback$" "$T/rbe/report.txt" || fail "report: $(grep mode "$T/rbe/report.txt")"
ok "a warm-up step under the bound: rollback mode at once"

# --shards N: every gradient as N rl-grad shards added by rl-sum, the same
# bytes as one process at the same -j: the same steps (all but the seconds),
# the same model; in rollback mode the benign gradients too (the same
# rollback journals); every evaluation as N rl-eval shards merged by rl-sum
# (batch-invariant: on this toy model the rates of one process). A shard
# that fails stops the run (exit 4, naming it); --resume runs that shard
# alone and ends as the others would have.
cut_steps() { cut -f1-6,8,9 "$1/steps.tsv"; }
# shellcheck disable=SC2086
must_pass rl-recover $args -o "$T/one" --no-rollback --steps 3 --warmup 0 --save-every 3 -j 1
# shellcheck disable=SC2086
must_pass rl-recover $args -o "$T/sh3" --no-rollback --steps 3 --warmup 0 --save-every 3 -j 1 --shards 3 \
	--launcher env
[ "$(cut_steps "$T/one")" = "$(cut_steps "$T/sh3")" ] ||
	fail "--shards 3: other steps: $(cut_steps "$T/sh3")"
cmp -s "$T/one/model/model.safetensors" "$T/sh3/model/model.safetensors" ||
	fail "--shards 3: another model"
ls "$T/sh3/work" | grep -q 'of-3' && fail "--shards 3: shard files left: $(ls "$T/sh3/work")"
ok "--shards 3: the steps and the model of one process"
cat >"$T/flaky.sh" <<'EOF2'
#!/bin/sh
# fails shard 2 of each tool (rl-eval, rl-grad) the first time it is asked for
case " $* " in *" --shard 2/2 "*)
	[ -f "$0.failed.$1" ] || { : >"$0.failed.$1"; echo "flaky: shard 2 lost" >&2; exit 1; } ;;
esac
exec "$@"
EOF2
rb="--steps 4 --warmup 2 --save-every 2 --task-score 2 -j 1"
# shellcheck disable=SC2086
must_pass rl-recover $args -o "$T/rb1" $rb
# the first evaluation fails, then (resumed) the first gradient
# shellcheck disable=SC2086
must_fail 4 rl-recover $args -o "$T/rb2" $rb --shards 2 --launcher "sh $T/flaky.sh"
stderr_has "evaluation shard(s) 2 of 2 failed"
ls "$T/rb2/work" | grep -q 'eval-00.task.1-of-2$' ||
	fail "the evaluation shard that ran was not kept: $(ls "$T/rb2/work")"
# shellcheck disable=SC2086
must_fail 4 rl-recover $args -o "$T/rb2" $rb --shards 2 --launcher "sh $T/flaky.sh" --resume
stderr_has "gradient shard(s) 2 of 2 failed"
ls "$T/rb2/work" | grep -q '1-of-2$' || fail "the shard that ran was not kept: $(ls "$T/rb2/work")"
# shellcheck disable=SC2086
must_pass rl-recover $args -o "$T/rb2" $rb --shards 2 --launcher "sh $T/flaky.sh" --resume
[ "$(cut_steps "$T/rb1")" = "$(cut_steps "$T/rb2")" ] ||
	fail "--shards 2 (rollback, resumed): other steps: $(cut_steps "$T/rb2")"
# the rollback journals' patches (their headers and summaries name the run's
# own paths and model state ids)
patches() { rl-dump -f "$1" | jq -c 'select(.t == "patch")'; }
for j in "$T"/rb1/journals/rb-*.rlj; do
	[ -s "$j" ] && [ "$(patches "$j")" = "$(patches "$T/rb2/journals/${j##*/}")" ] ||
		fail "rollback journal ${j##*/}: other patches"
done
ok "--shards 2 in rollback mode: a failed shard stops the run, --resume ends it as one process would"
# shellcheck disable=SC2086
must_fail 2 rl-recover $args -o "$T/x" --launcher env
stderr_has "--launcher needs --shards N"

# --target-harmful aligned+D: ALIGNED is measured on the same prompts first
# (its rate checked against rl-eval's, run here on its own); the run stops at
# the first saved step at or below that rate + D, every earlier one above it.
# shellcheck disable=SC2086
must_pass rl-recover $args -o "$T/tgt" --steps 10 --save-every 1 --target-harmful aligned+0.3
must_pass rl-eval -q -m "$fx/aligned" -p "$w/eval-harmful.jsonl" --max-new-tokens 32 \
	-O "$T/a.rls" --summary "$T/a.json"
hA=$(jq -r .harmful_rate "$T/a.json")
grep -q "^aligned      harmful $hA  benign-answered " "$T/tgt/report.txt" ||
	fail "report: $(grep aligned "$T/tgt/report.txt") (rl-eval: $hA)"
g=$(awk -v h="$hA" 'BEGIN { printf "%.10g", h + 0.3 }')
grep -q "target-harmful=aligned+0.3 (= $g)" "$T/tgt/report.txt" || fail "report: no target $g"
tc=$(sed -n 's/^chosen step  //p' "$T/tgt/report.txt")
awk -F'\t' -v g="$g" -v c="$tc" 'NR > 2 { if (($1 < c) != ($5 > g) || $1 > c) bad = 1 }
	END { exit bad || c < 2 }' "$T/tgt/steps.tsv" ||
	fail "chosen step $tc for target $g: $(cat "$T/tgt/steps.tsv")"
ok "--target-harmful aligned+0.3: the aligned rate $hA, stopped at step $tc"
# shellcheck disable=SC2086
must_fail 2 rl-recover $args -o "$T/x" --target-harmful aligned+x
stderr_has "--target-harmful: expected a number"

# The random control restores as many weights and leaves the harmful rate.
# shellcheck disable=SC2086
must_pass rl-recover $args -o "$T/ctl" --score random --no-rollback --steps 5 --metric-drop 0.999
ch=$(awk -F'\t' '$1 == 5 { print $5 }' "$T/ctl/steps.tsv")
awk -v c="$ch" -v r="$rh" 'BEGIN { exit !(c >= r + 0.25) }' || fail "random control harmful $ch"
ok "random control: harmful $ch after 5 steps"

# Usage errors.
# a file system without room for the working copy and two gradients: exit 4
# before OUT is made (so a rerun needs no --resume)
run env RL_FAULT=enospc:space:1 rl-recover $args -o "$T/full"
[ "$rc" -eq 4 ] || fail "full file system: exit $rc: $(cat "$T/stderr")"
stderr_has "needs about"
[ ! -e "$T/full" ] || fail "'$T/full' was made"
ok "rl-recover on a full file system: exit 4, nothing made"
must_fail 2 rl-recover -a "$fx/aligned" -o "$T/x"
must_fail 2 rl-recover $args -o "$T/x" --rate 2
must_fail 2 rl-recover $args -o "$T/x" --score best
must_fail 2 rl-recover $args -o "$T/x" --warmup 30
must_fail 3 rl-recover $args -o "$T/x" -H "$T/nope.jsonl"
must_pass rl-recover --help
stdout_has "Usage: rl-recover"
finish
