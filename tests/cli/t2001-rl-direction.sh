#!/bin/sh
# rl-direction: the man page's examples, and every bad input refused with exit
# 3 (or 2 for usage) and nothing on stdout. Numerical parity with transformers
# through this tool is test_gradtool (it reads the stream back).
. "$RL_TESTS/lib.sh"
E="$F/engine/llama_f32"
cd "$T"
ln -s "$E/model" aligned
ln -s "$E/model" finetuned
cp "$E/dir.jsonl" harmful.jsonl
cp "$E/grad.jsonl" task.jsonl

must_pass rl-direction --help
stdout_has "Usage: rl-direction"
must_pass rl-direction --version

# EXAMPLES of rl-direction(1)
run sh -c 'rl-direction -m aligned -p harmful.jsonl -L 2 > dh.rls'
[ "$rc" -eq 0 ] && [ -s dh.rls ] || fail "example 1: exit $rc: $(cat "$T/stderr")"
ok "example: rl-direction -m aligned -p harmful.jsonl -L 2 > dh.rls"
must_pass rl-direction -m finetuned -p task.jsonl -L 2 -n 256 --per-prompt -o db.rls
[ -s db.rls ] || fail "example 2 wrote nothing"
# the direction is a usable input (rl-grad reads it back)
must_pass rl-grad -q -m finetuned -p task.jsonl -d dh.rls -o g.rls
# chunking and -n change nothing / select prompts
must_pass rl-direction -m aligned -p harmful.jsonl -L 2 -b 1 -o dh1.rls
must_pass rl-direction -m aligned -p harmful.jsonl -L 3 -n 2 -o dh3.rls
must_pass rl-direction -m aligned -p - -L 1 -o dh4.rls < harmful.jsonl

# --precision bf16 (a bf16 model): the layers multiply the stored weights with
# inputs rounded to bf16 where the CPU has bf16 dot products (rl-info's
# kernels say which), else it computes as fp32 (test_engine checks the numbers)
B="$F/engine/qwen2_bf16"
must_pass rl-direction -m "$B/model" -p "$B/dir.jsonl" -L 2 -o d32.rls
must_pass rl-direction -m "$B/model" -p "$B/dir.jsonl" -L 2 --precision bf16 -v -o d16.rls
stderr_has "precision bf16: matrix kernels"
must_pass rl-info --json "$B/model"
k16=$(jq -r .kernels.bf16 "$T/stdout")
if cmp -s d32.rls d16.rls; then same=1; else same=0; fi
case "$k16" in
*amx* | *bf16-*) [ "$same" = 0 ] || fail "bf16 kernels ($k16), yet the fp32 stream" ;;
*) [ "$same" = 1 ] || fail "no bf16 kernels here, yet not the fp32 stream" ;;
esac
ok "--precision bf16 with kernels $k16"
must_fail 2 rl-direction -m aligned -p harmful.jsonl -L 1 --precision f32
stderr_has "--precision: expected fp32 or bf16, got 'f32'"

# usage errors: exit 2
must_fail 2 rl-direction -m aligned -p harmful.jsonl -L 0
stderr_has "-L"
must_fail 2 rl-direction -m aligned -p harmful.jsonl -L 4
stderr_has "exceeds the model's 3 layers"
must_fail 2 rl-direction -m aligned -p harmful.jsonl
stderr_has "missing -L"
must_fail 2 rl-direction -p harmful.jsonl -L 1
must_fail 2 rl-direction -m aligned -p harmful.jsonl -L 1 -b 0
must_fail 2 rl-direction -m aligned -p harmful.jsonl -L 1 --mem-limit 12Q
must_fail 2 rl-direction -m aligned -p harmful.jsonl -L x

# bad data: exit 3, the message names the file and the line
: > empty.jsonl
must_fail 3 rl-direction -m aligned -p empty.jsonl -L 2
stderr_has "'empty.jsonl': no prompts"
printf '{"ids": [1, 2]}\n{"ids": [3,\n{"ids": [4]}\n' > bad.jsonl
must_fail 3 rl-direction -m aligned -p bad.jsonl -L 2
stderr_has "'bad.jsonl' line 2: malformed JSON"
awk 'BEGIN { printf "{\"ids\": [1]}\n{\"ids\": [0"; for (i = 1; i < 65; i++) printf ", %d", i % 60; print "]}" }' > long.jsonl
must_fail 3 rl-direction -m aligned -p long.jsonl -L 2
stderr_has "'long.jsonl' line 2: 65 tokens exceed the model's maximum of 64 positions"
echo '{"ids": [1, 64]}' > vocab.jsonl
must_fail 3 rl-direction -m aligned -p vocab.jsonl -L 2
stderr_has "line 1: token id 64 out of range (vocab 64)"
echo '{"ids": []}' > empty1.jsonl
must_fail 3 rl-direction -m aligned -p empty1.jsonl -L 2
stderr_has "line 1: empty prompt"
echo '{"prompt": "How do I bake bread?"}' > text.jsonl
must_fail 3 rl-direction -m aligned -p text.jsonl -L 2
stderr_has "line 1: 'aligned/tokenizer.json': no tokenizer.json"
must_fail 3 rl-direction -m aligned -p no-such.jsonl -L 2
must_fail 3 rl-direction -m no-such-model -p harmful.jsonl -L 2
finish
