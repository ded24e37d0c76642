#!/bin/sh
# The restore step on Phi-3's fused tensors (tests/gen/gen_restore.py's
# Phi3ForCausalLM pair): qkv_proj and gate_up_proj are candidates as stored,
# and rl-select | rl-apply restores exactly the elements of them PyTorch's
# implementation of ALGORITHM.md selects, the partial rollback likewise; undoing
# both gives sha256-identical files. rl-grad's own stream names the fused
# tensors and no q, k, v, gate or up.
. "$RL_TESTS/lib.sh"
R="$F/restore_phi3"
H="$RL_TESTBIN/test_restore"
cp -r "$R/finetuned" "$T/work"
sha() { sha256sum "$1/model.safetensors" | cut -d' ' -f1; }
sha_ft=$(sha "$R/finetuned")

must_pass rl-info --json -L 2 "$T/work"
[ "$(jq '[.n_candidates, .candidate_numel]' -c "$T/stdout")" = "[8,41472]" ] ||
	fail "candidates: $(jq '[.n_candidates, .candidate_numel]' -c "$T/stdout")"
must_pass rl-info --tensors -L 2 "$T/work"
grep -c 'candidate$' "$T/stdout" >"$T/n"
[ "$(cat "$T/n")" = 8 ] || fail "$(cat "$T/n") candidate lines"
grep 'candidate$' "$T/stdout" | grep -v 'qkv_proj\|o_proj\|gate_up_proj\|down_proj' &&
	fail "a candidate that is not qkv, o, gate_up or down"
ok "candidates: qkv_proj, o_proj, gate_up_proj, down_proj of layers 0, 1"

must_pass "$H" grad "$T/work" "$R/grad_harmful.safetensors" "$T/gh.rls" 4096
must_pass "$H" grad "$T/work" "$R/grad_benign.safetensors" "$T/gb.rls"
must_pass rl-select -m "$T/work" -t "$R/aligned" --rate 0.002 "$T/gh.rls" -o "$T/sel.rls"
stderr_has "selected 125 of 16337 eligible"
"$H" list "$T/sel.rls" >"$T/sel.txt"
test_cmp "$R/expected_step.txt" "$T/sel.txt"
grep -q 'qkv_proj' "$T/sel.txt" || fail "the selection holds no element of qkv_proj"
rl-apply -m "$T/work" -s "$R/aligned" "$T/sel.rls" >"$T/step.rlj" 2>"$T/err" ||
	fail "rl-apply: $(cat "$T/err")"
"$H" list "$T/step.rlj" >"$T/step.txt"
test_cmp "$R/expected_step.txt" "$T/step.txt"
ok "restore step: PyTorch's 125 elements, fused tensors element by element"

rl-rollback -m "$T/work" -f "$R/finetuned" --grad "$T/gb.rls" --fraction 0.2 "$T/step.rlj" \
	>"$T/rb.rlj" 2>"$T/err" || fail "partial rollback: $(cat "$T/err")"
grep -q "10 of 46 eligible" "$T/err" || fail "partial rollback counts: $(cat "$T/err")"
"$H" list "$T/rb.rlj" >"$T/rb.txt"
test_cmp "$R/expected_rollback.txt" "$T/rb.txt"
must_pass rl-rollback -m "$T/work" "$T/step.rlj" "$T/rb.rlj"
[ "$(sha "$T/work")" = "$sha_ft" ] || fail "apply + partial rollback + undo is not bit-exact"
ok "partial rollback as PyTorch's; undo of both: sha256 identical"

# rl-grad's stream: the fused tensors by their names, whole
printf '{"ids": [5, 9, 14, 3, 22]}\n{"ids": [7, 8, 40, 41]}\n' >"$T/p.jsonl"
must_pass rl-direction -q -m "$T/work" -p "$T/p.jsonl" -L 2 -o "$T/d.rls"
must_pass rl-grad -q -m "$T/work" -p "$T/p.jsonl" -d "$T/d.rls" -o "$T/g.rls"
must_pass rl-dump "$T/g.rls"
for n in self_attn.qkv_proj mlp.gate_up_proj; do
	grep -q "model.layers.1.$n.weight" "$T/stdout" || fail "rl-grad: no $n"
done
grep -Eq '\.(q|k|v|gate|up)_proj' "$T/stdout" &&
	fail "rl-grad names an unfused projection"
ok "rl-grad writes qkv_proj and gate_up_proj"
finish
