#!/bin/sh
# The restore step end to end on the fixture pair (tests/gen/gen_restore.py):
# rl-select | rl-apply must restore exactly the elements PyTorch's
# implementation of ALGORITHM.md selects, the partial rollback likewise; apply
# then rollback gives sha256-identical files; N steps then one rollback of all;
# and the man pages' examples.
. "$RL_TESTS/lib.sh"
R="$F/restore"
H="$RL_TESTBIN/test_restore"
cp -r "$R/finetuned" "$T/work"
sha_ft=$(sha256sum "$R/finetuned/model.safetensors" | cut -d' ' -f1)
sha() { sha256sum "$1/model.safetensors" | cut -d' ' -f1; }

# PyTorch's gradients as grad streams (small chunks: tensors span several records)
must_pass "$H" grad "$T/work" "$R/grad_harmful.safetensors" "$T/gh.rls" 4096
must_pass "$H" grad "$T/work" "$R/grad_benign.safetensors" "$T/gb.rls"

# --- fidelity: the restore step ---
must_pass rl-select -m "$T/work" -t "$R/aligned" --rate 0.002 "$T/gh.rls" -o "$T/sel.rls"
stderr_has "selected 125 of 16194 eligible"
"$H" list "$T/sel.rls" >"$T/sel.txt"
test_cmp "$R/expected_step.txt" "$T/sel.txt"
# the same from stdin
rl-select -q -m "$T/work" -t "$R/aligned" --rate 0.002 <"$T/gh.rls" >"$T/sel2.rls"
cmp "$T/sel.rls" "$T/sel2.rls" || fail "stdin and file selections differ"
ok "stdin selection identical"
must_pass rl-apply -n -m "$T/work" -s "$R/aligned" "$T/sel.rls"
stderr_has "would change 125 elements"
[ "$(sha "$T/work")" = "$sha_ft" ] || fail "dry run changed the model"
ok "dry run touched nothing"
rl-apply -m "$T/work" -s "$R/aligned" "$T/sel.rls" >"$T/step.rlj" 2>"$T/err" || fail "rl-apply: $(cat "$T/err")"
"$H" list "$T/step.rlj" >"$T/step.txt"
test_cmp "$R/expected_step.txt" "$T/step.txt"
[ ! -e "$T/work/.realign/journal" ] || fail "hot journal left after commit"
cmp "$T/step.rlj" "$T/work/.realign/last.rlj" || fail "last.rlj differs from the journal"
ok "committed: no hot journal, last.rlj kept"

# --- fidelity: the partial rollback (one command) ---
rl-rollback -m "$T/work" -f "$R/finetuned" --grad "$T/gb.rls" --fraction 0.2 "$T/step.rlj" \
	>"$T/rb.rlj" 2>"$T/err" || fail "partial rollback: $(cat "$T/err")"
grep -q "15 of 73 eligible" "$T/err" || fail "partial rollback counts: $(cat "$T/err")"
"$H" list "$T/rb.rlj" >"$T/rb.txt"
test_cmp "$R/expected_rollback.txt" "$T/rb.txt"

# --- round trip: undo both, in the order they were made ---
must_pass rl-rollback -m "$T/work" -j "$T/undo.rlj" "$T/step.rlj" "$T/rb.rlj"
[ "$(sha "$T/work")" = "$sha_ft" ] || fail "apply + partial rollback + undo is not bit-exact"
ok "undo of step + partial rollback: sha256 identical"
# undoing again is refused (the model no longer holds the journal's bytes)
must_fail 3 rl-rollback -m "$T/work" "$T/step.rlj"

# --- the same partial rollback as the rl-select | rl-apply pipeline ---
rl-apply -q -m "$T/work" -s "$R/aligned" "$T/sel.rls" >"$T/step2.rlj"
rl-select -q -m "$T/work" -t "$R/finetuned" --within "$T/step2.rlj" --fraction 0.2 "$T/gb.rls" |
	rl-apply -q -m "$T/work" -s "$R/finetuned" >"$T/rb2.rlj"
"$H" list "$T/rb2.rlj" >"$T/rb2.txt"
test_cmp "$R/expected_rollback.txt" "$T/rb2.txt"
must_pass rl-rollback -m "$T/work" "$T/step2.rlj" "$T/rb2.rlj"
[ "$(sha "$T/work")" = "$sha_ft" ] || fail "pipeline round trip not bit-exact"
ok "pipeline partial rollback = one-command partial rollback"

# --- N steps (diff and random baselines too), then one rollback of all ---
rl-select -q -m "$T/work" -t "$R/aligned" --count 300 "$T/gh.rls" | rl-apply -q -m "$T/work" -s "$R/aligned" >"$T/s1.rlj"
rl-select -q -m "$T/work" -t "$R/aligned" --score diff --layer-end 3 --count 500 |
	rl-apply -q -m "$T/work" -s "$R/aligned" >"$T/s2.rlj"
rl-select -q -m "$T/work" -t "$R/aligned" --score random --seed 7 --layer-end 3 --fraction 0.1 \
	--exclude 'mlp' | rl-apply -q -m "$T/work" -s "$R/aligned" >"$T/s3.rlj"
rl-select -q -m "$T/work" -t "$R/aligned" --threshold 0.001 --layers 1:2 "$T/gh.rls" |
	rl-apply -q -m "$T/work" -s "$R/aligned" >"$T/s4.rlj"
[ "$(sha "$T/work")" != "$sha_ft" ] || fail "four steps changed nothing"
"$H" list "$T/s3.rlj" | grep -q mlp && fail "--exclude mlp selected an mlp tensor"
"$H" list "$T/s4.rlj" | grep -v '^model.layers.1\.' && fail "--layers 1:2 selected outside layer 1"
must_fail 3 rl-rollback -m "$T/work" "$T/s1.rlj" "$T/s3.rlj" "$T/s2.rlj" "$T/s4.rlj"
stderr_has "does not follow"
must_pass rl-rollback -m "$T/work" "$T/s1.rlj" "$T/s2.rlj" "$T/s3.rlj" "$T/s4.rlj"
[ "$(sha "$T/work")" = "$sha_ft" ] || fail "4 steps + rollback of all not bit-exact"
ok "4 steps then one rollback of all: sha256 identical"

# --- the random baseline is a pure function of the seed ---
rl-select -q -m "$T/work" -t "$R/aligned" --score random --seed 3 -L 2 --count 50 -o "$T/r1.rls"
rl-select -q -m "$T/work" -t "$R/aligned" --score random --seed 3 -L 2 --count 50 -o "$T/r2.rls"
rl-select -q -m "$T/work" -t "$R/aligned" --score random --seed 4 -L 2 --count 50 -o "$T/r3.rls"
cmp "$T/r1.rls" "$T/r2.rls" || fail "same seed, different selection"
cmp -s "$T/r1.rls" "$T/r3.rls" && fail "different seeds, same selection"
ok "random: deterministic per seed"
finish
