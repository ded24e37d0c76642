#!/bin/sh
# rl-grad: the man page's examples, --add, and refusals: a direction for another
# model, a previous gradient for another model shape or layer_end, streams of
# the wrong kind or truncated, bad prompts. Parity with torch autograd through
# this tool is test_gradtool.
. "$RL_TESTS/lib.sh"
E="$F/engine/llama_f32"
cd "$T"
ln -s "$E/model" aligned
ln -s "$E/model" work
cp "$E/dir.jsonl" harmful.jsonl

must_pass rl-grad --help
stdout_has "Usage: rl-grad"

# EXAMPLES of rl-grad(1)
run sh -c 'rl-direction -m aligned -p harmful.jsonl -L 2 > dh.rls && rl-grad -m work -p harmful.jsonl -d dh.rls > g1.rls'
[ "$rc" -eq 0 ] && [ -s g1.rls ] || fail "example 1: exit $rc: $(cat "$T/stderr")"
ok "example: rl-grad -m work -p harmful.jsonl -d dh.rls > g1.rls"
grep -q "batch 1/1 (5 prompts): loss" "$T/stderr" || fail "no batch loss on stderr: $(cat "$T/stderr")"
ok "the batch loss is reported on stderr"
run sh -c 'rl-grad -m work -p harmful.jsonl -d dh.rls --add g1.rls > g2.rls'
[ "$rc" -eq 0 ] && [ -s g2.rls ] || fail "example 2: exit $rc: $(cat "$T/stderr")"
ok "example: rl-grad ... --add g1.rls > g2.rls"
# -q is quiet; -b, -n, a tiny memory budget (everything recomputed) work
must_pass rl-grad -q -m work -p harmful.jsonl -d dh.rls -b 2 -n 4 --mem-limit 1K -o g3.rls
[ ! -s "$T/stderr" ] || fail "-q printed: $(cat "$T/stderr")"
ok "-q prints nothing"
# --precision bf16: the forward on the stored weights (kept and recomputed
# activations alike); test_engine checks the numbers against torch
B="$F/engine/qwen2_bf16"
must_pass rl-direction -q -m "$B/model" -p "$B/dir.jsonl" -L 2 -o db.rls
must_pass rl-grad -m "$B/model" -p "$B/grad.jsonl" -d db.rls --precision bf16 -v -o gb.rls
stderr_has "precision bf16: forward matrix kernels"
must_pass rl-grad -q -m "$B/model" -p "$B/grad.jsonl" -d db.rls --precision bf16 \
	--mem-limit 1K -o gb1.rls
must_fail 2 rl-grad -m work -p harmful.jsonl -d dh.rls --precision half
stderr_has "--precision: expected fp32 or bf16, got 'half'"

# a full file system is found before the gradient, not at its first write;
# an old output there stays as it was
printf 'old\n' > full.rls
run env RL_FAULT=enospc:space:1 rl-grad -m work -p harmful.jsonl -d dh.rls -o full.rls
[ "$rc" -eq 4 ] || fail "full file system: exit $rc: $(cat "$T/stderr")"
stderr_has "'full.rls': needs about"
stderr_has "GiB free"
! grep -q "forward" "$T/stderr" || fail "the forward ran before the space check: $(cat "$T/stderr")"
[ "$(cat full.rls)" = old ] || fail "full.rls was touched"
ok "a file system without room for the gradient: exit 4 before any work, nothing written"
must_pass rl-grad -q -m work -p harmful.jsonl -d dh.rls -o full.rls
cmp -s full.rls g1.rls || fail "with room, the gradient differs from the first example's"

# a direction for another model (Gemma, same hidden size)
rl-direction -q -m "$F/engine/gemma_bf16/model" -p "$F/engine/gemma_bf16/dir.jsonl" -L 2 -o gemma.rls
must_fail 3 rl-grad -m work -p harmful.jsonl -d gemma.rls
stderr_has "a direction for GemmaForCausalLM"
# --add: another model shape, another layer_end, not a grad stream
rl-direction -q -m "$F/engine/mistral_f32/model" -p "$F/engine/mistral_f32/dir.jsonl" -L 2 -o md.rls
rl-grad -q -m "$F/engine/mistral_f32/model" -p "$F/engine/mistral_f32/grad.jsonl" -d md.rls -o mg.rls
must_fail 3 rl-grad -m work -p harmful.jsonl -d dh.rls --add mg.rls
stderr_has "was made for model"
rl-direction -q -m aligned -p harmful.jsonl -L 1 -o dh1.rls
rl-grad -q -m work -p harmful.jsonl -d dh1.rls -o g1L1.rls
must_fail 3 rl-grad -m work -p harmful.jsonl -d dh.rls --add g1L1.rls
stderr_has "a gradient for layer_end 1, not 2"
must_fail 3 rl-grad -m work -p harmful.jsonl -d dh.rls --add dh.rls
must_fail 3 rl-grad -m work -p harmful.jsonl -d g1.rls
# truncated streams
head -c 300 dh.rls > dh-cut.rls
must_fail 3 rl-grad -m work -p harmful.jsonl -d dh-cut.rls
head -c 20000 g1.rls > g1-cut.rls
run rl-grad -m work -p harmful.jsonl -d dh.rls --add g1-cut.rls -o out.rls
[ "$rc" -eq 3 ] || fail "truncated --add stream: exit $rc"
ok "a truncated --add stream is exit 3"
# bad prompts and usage
: > empty.jsonl
must_fail 3 rl-grad -m work -p empty.jsonl -d dh.rls
stderr_has "no prompts"
printf '{"ids": [1]}\n\n{"ids": [2], \n' > bad.jsonl
must_fail 3 rl-grad -m work -p bad.jsonl -d dh.rls
stderr_has "'bad.jsonl' line 3: malformed JSON"
must_fail 2 rl-grad -m work -p harmful.jsonl -d dh.rls -b 0
must_fail 2 rl-grad -m work -p harmful.jsonl
stderr_has "missing -d"
must_fail 2 rl-grad -m work -p - -d -
finish
