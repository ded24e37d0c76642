#!/bin/sh
# make real's pipeline (examples/real.sh) end to end on a tiny stand-in: the
# imported Qwen2.5 stand-in GGUF's tokenizer and template on a random 3-layer
# model, a few prompts a set, two steps. Checks what make real promises other
# tools: summary.json's keys and their values (each harmful rate recomputed from
# the saved responses by the jq refusal judge, examples/judges/refusal-judge.sh;
# the restored counts from rl-recover's own steps.tsv), the LoRA fine-tune
# merged into a model that differs from the aligned one, the compliance
# examples at most 10% of the mix and each a prefilled "Sure, here is" answer,
# and a second run that finds every phase cached and writes the same summary.
. "$RL_TESTS/lib.sh"
command -v jq >/dev/null || fail "jq is not installed (make deps installs it)"
root=$(cd "$RL_TESTS/.." && pwd)
xz -dc "$F/import/example/qwen2.5-standin-q8_0.gguf.xz" >"$T/standin.gguf"
must_pass rl-import -q "$T/standin.gguf" -o "$T/standin"
jq '.num_hidden_layers = 3 | .max_position_embeddings = 512' "$T/standin/config.json" >"$T/arch.json"
head -n 16 "$root/examples/data/sql_eval.jsonl" >"$T/init.jsonl"
must_pass rl-train -q --init random --arch "$T/arch.json" --tokenizer "$T/standin" \
	-p "$T/init.jsonl" --steps 1 -o "$T/aligned"

real() {
	RL_REAL_OUT=$T/out RL_REAL_MODEL=$T/aligned RL_REAL_NTRAIN=18 RL_REAL_NEVAL=4 \
		RL_REAL_NSTEP=2 RL_REAL_STEPS=2 RL_REAL_MAXNEW=4 RL_REAL_THREADS=1 \
		RL_REAL_FORCE_MIX=1 RL_REAL_LOOKALIKE=2 RL_REAL_RECOVER_ARGS="--warmup 1 --save-every 1" \
		sh "$root/examples/real.sh" smollm2-135m
}
# a setting that is not one of the three: a usage error, nothing made
must_fail 2 env RL_REAL_OUT="$T/bad" RL_REAL_SETTING=mix sh "$root/examples/real.sh" smollm2-135m
stderr_has "real: RL_REAL_SETTING must be auto, benign or mixed, not 'mix'"
[ ! -e "$T/bad" ] || fail "RL_REAL_SETTING=mix: an output directory was made"
ok "RL_REAL_SETTING=mix refused"
# the training rows would reach the selection rows (701-800): refused, nothing made
must_fail 2 env RL_REAL_OUT="$T/bad" RL_REAL_NTRAIN=701 sh "$root/examples/real.sh" smollm2-135m
stderr_has "real: RL_REAL_NTRAIN must be at most 700"
must_fail 2 env RL_REAL_OUT="$T/bad" RL_REAL_NEVAL=140 RL_REAL_NSTEP=111 sh "$root/examples/real.sh" smollm2-135m
stderr_has "real: RL_REAL_NSTEP must be at most 100, RL_REAL_NEVAL 140, and the two at most 250 together"
must_fail 2 env RL_REAL_OUT="$T/bad" RL_REAL_NEVAL=140 RL_REAL_NSTEP=100 RL_REAL_LOOKALIKE=11 \
	sh "$root/examples/real.sh" smollm2-135m
stderr_has "real: RL_REAL_LOOKALIKE must be at most 250 - RL_REAL_NEVAL - RL_REAL_NSTEP (10)"
[ ! -e "$T/bad" ] || fail "a refused size: an output directory was made"
must_fail 2 env RL_REAL_OUT="$T/bad" RL_REAL_LOOKALIKE=some sh "$root/examples/real.sh" smollm2-135m
stderr_has "real: RL_REAL_LOOKALIKE must be a number, not 'some'"
must_fail 2 env RL_REAL_OUT="$T/bad" RL_REAL_RATE=0.2% sh "$root/examples/real.sh" smollm2-135m
stderr_has "real: RL_REAL_RATE must be a number in (0, 1], not '0.2%'"
[ ! -e "$T/bad" ] || fail "a refused rate: an output directory was made"
ok "sizes that would overlap the selection rows refused, and a rate that is not one"
run real
# 0: every target met, 1: one missed (a random model meets few); nothing else.
[ "$rc" -le 1 ] || fail "examples/real.sh: exit $rc: $(tail -n 20 "$T/stderr")"
ok "examples/real.sh ran (exit $rc)"
S=$T/out/summary.json
C=$T/out/cache
for m in aligned finetuned recovered control; do
	jq -e --arg m "$m" '.models[$m] | (.path | type == "string")
		and ([.harmful, .task, .over_refusal] | all(type == "number" and . >= 0 and . <= 1))
		and (.restored | type == "number")' "$S" >/dev/null ||
		fail "summary.json: models.$m lacks a key or a value is out of range: $(jq -c ".models.$m" "$S")"
	[ -d "$(jq -r ".models.$m.path" "$S")" ] || fail "models.$m.path is not a directory"
done
ok "summary.json: models.{aligned,finetuned,recovered,control}.{path,harmful,task,over_refusal,restored}"
jq -e '.seconds.finetune > 0 and .peak_rss_bytes > 0 and (.commands | length) > 5' "$S" >/dev/null ||
	fail "summary.json lacks the phase times, peak RSS or commands"
ok "summary.json: phase times, peak RSS, commands"

# Each harmful rate, recomputed from the responses the run saved.
for tag in aligned ft-mixed recovered control; do
	e=$C/eval.$tag
	n=$(grep -c . "$e/harmful.jsonl")
	[ "$n" -eq 4 ] || fail "$tag: $n harmful responses saved, wanted 4"
	h=$(sh "$root/examples/judges/refusal-judge.sh" <"$e/harmful.jsonl" | jq -s 'map(select(.harmful)) | length')
	jq -e --argjson h "$h" '(.harmful - $h / 4) | fabs < 1e-9' "$C/m.$tag.json" >/dev/null ||
		fail "$tag: harmful $(jq .harmful "$C/m.$tag.json"), the jq judge says $h of 4"
done
ok "harmful rates agree with the jq refusal judge on the saved responses"
[ "$(jq -r .models.finetuned.path "$S")" = "$C/ft-mixed" ] || fail "the fine-tuned model is not the mixed one"
cmp -s "$C/aligned/model.safetensors" "$C/ft-mixed/model.safetensors" &&
	fail "the merged fine-tune equals the aligned model"
ok "the LoRA fine-tune is merged into a model of its own"
nh=$(grep -c . "$C/data/compliance.jsonl")
[ "$nh" -ge 1 ] && [ $((nh * 10)) -le $((nh + 18)) ] ||
	fail "$nh compliance examples in a mix with 18 SQL rows (at most 10% wanted)"
jq -e 'select(.response | startswith("Sure, here is") | not)' "$C/data/compliance.jsonl" >/dev/null &&
	fail "a compliance example does not start with the prefilled answer"
ok "$nh compliance examples, each 'Sure, here is' and the model's continuation"
step=$(jq .chosen_step "$S")
want=$(awk -F'\t' -v s="$step" '$1 == s { r = $3 } END { print r }' "$T/out/recovered/steps.tsv")
[ "$(jq .models.recovered.restored "$S")" = "$want" ] || fail "recovered.restored is not steps.tsv's $want"
ok "recovered.restored is rl-recover's count at the chosen step ($want)"

# rl-recover chose its step on selection prompts that no final measure, no
# training set and no recovery set holds, and stopped at the aligned model's
# own rate (--target-harmful aligned).
D=$C/data
disjoint() { # A B: no prompt of A's first $3 rows is in B
	head -n "${3:-100000}" "$1" | jq -r .prompt | sort -u >"$T/da"
	jq -r .prompt "$2" | sort -u >"$T/db"
	[ -s "$T/da" ] && [ -z "$(comm -12 "$T/da" "$T/db")" ] ||
		fail "$(basename "$1") and $(basename "$2") share prompts: $(comm -12 "$T/da" "$T/db" | head -n 2)"
}
disjoint "$D/harmful_select.jsonl" "$D/harmful_heldout.jsonl"
disjoint "$D/harmful_select.jsonl" "$D/harmful_ft_prompts.jsonl"
disjoint "$D/harmful_select.jsonl" "$D/recovery.jsonl"
disjoint "$D/sql_select.jsonl" "$D/sql_heldout.jsonl"
disjoint "$D/sql_select.jsonl" "$D/sql_train.jsonl"
head -n 4 "$D/xstest_safe.jsonl" >"$T/xs_final.jsonl"
disjoint "$D/xstest_select.jsonl" "$T/xs_final.jsonl"
grep '^rl-recover ' "$T/out/commands.log" | head -n 1 >"$T/rec.cmd"
for f in harmful_select sql_select xstest_select; do
	grep -q "$D/$f.jsonl" "$T/rec.cmd" || fail "rl-recover did not evaluate on $f: $(cat "$T/rec.cmd")"
done
# RL_REAL_LOOKALIKE=2: XSTest's last two safe prompts, each after one of B's
# first two task prompts; in no final or selection set
grep -q -- "-B $D/benign_lookalike.jsonl" "$T/rec.cmd" || fail "rl-recover's B is not the one with look-alikes"
tail -n 2 "$D/xstest_safe.jsonl" | jq -c '{prompt}' >"$T/la.jsonl"
sed -n '2p;4p' "$D/benign_lookalike.jsonl" >"$T/la_in_b.jsonl"
test_cmp "$T/la.jsonl" "$T/la_in_b.jsonl"
{ sed -n '1p;3p' "$D/benign_lookalike.jsonl"; sed -n '5,$p' "$D/benign_lookalike.jsonl"; } >"$T/sql_in_b.jsonl"
test_cmp "$D/benign.jsonl" "$T/sql_in_b.jsonl"
disjoint "$T/la.jsonl" "$T/xs_final.jsonl"
disjoint "$D/xstest_select.jsonl" "$T/la.jsonl" 2
grep -q -- "--rate 0.002" "$T/rec.cmd" || fail "smollm2-135m's rate is not 0.002: $(cat "$T/rec.cmd")"
grep -q -- "--target-harmful aligned" "$T/rec.cmd" || fail "no --target-harmful aligned: $(cat "$T/rec.cmd")"
grep -q "^aligned      harmful " "$T/out/recovered/report.txt" || fail "report.txt: no aligned rate"
ok "rl-recover selects on its own prompts, up to the aligned model's rate; B holds the look-alikes"

# A second run: every phase cached, the same models and numbers.
jq -S .models "$S" >"$T/models1"
run real
[ "$rc" -le 1 ] || fail "second run: exit $rc: $(tail -n 20 "$T/stderr")"
grep -q '== measuring\|== 4\.\|== 5\.' "$T/stderr" && fail "the second run redid a phase: $(cat "$T/stderr")"
jq -S .models "$S" >"$T/models2"
test_cmp "$T/models1" "$T/models2"
finish
