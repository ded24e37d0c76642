#!/bin/sh
# rl-eval -m: generation end to end on a tiny model with its own tokenizer and
# ChatML template, against transformers (tests/gen/gen_eval_generate.py:
# apply_chat_template, tokenize, cap at 64 tokens keeping the template's tail,
# generate greedily, decode without special tokens).
. "$RL_TESTS/lib.sh"
E="$F/eval"
cd "$T"
gen() { rl-eval -m "$E/tiny" -p "$E/prompts.jsonl" --max-new-tokens 16 --max-prompt-tokens 64 "$@"; }

must_pass gen --judge none -o out.jsonl -O eval.rls
jq -c '.response' out.jsonl >got
jq -c '.response' "$E/expected.jsonl" >want
test_cmp want got
stderr_has "5 items; 73 new tokens in"
must_pass rl-dump eval.rls
jq -c 'select(.t == "item") | [.prompt_tokens, .new_tokens, .truncated]' "$T/stdout" >got-counts
jq -c '[.prompt_tokens, .new_tokens, .truncated]' "$E/expected.jsonl" >want-counts
test_cmp want-counts got-counts
[ "$(jq -c 'select(.t == "header") | [.model.arch, .max_new_tokens, .max_prompt_tokens, .batch_size]' "$T/stdout")" = \
	'["Qwen2ForCausalLM",16,64,32]' ] || fail "generation header"
[ "$(jq -c 'select(.t == "summary") | .new_tokens' "$T/stdout")" = 73 ] || fail "summary new_tokens"
ok "stream: counts, header, summary"

# The batch size changes nothing; neither does naming the detected template.
must_pass gen --judge none -o out1.jsonl -O /dev/null -b 1
test_cmp out.jsonl out1.jsonl
must_pass gen --judge none -o out2.jsonl -O /dev/null -b 2 --template chatml
test_cmp out.jsonl out2.jsonl

# A key/value budget for one sequence at a time: the same responses.
must_pass gen --judge none -o out3.jsonl -O /dev/null --kv-mem 0.001
test_cmp out.jsonl out3.jsonl
must_fail 2 gen --kv-mem 0

# An f32 model computes in f32 at either precision (bf16 rounds the inputs of
# bf16 weights only); -v names the kernels; a precision that is none: exit 2.
must_pass gen --judge none -o out4.jsonl -O /dev/null --precision fp32 -v
test_cmp out.jsonl out4.jsonl
stderr_has "precision fp32 on"
must_pass gen --judge none -o one.jsonl -O /dev/null -n 1 -v
stderr_has "precision bf16 on"
must_fail 2 gen --precision fp16
stderr_has "--precision: expected bf16 or fp32, got 'fp16'"

# Judging generated responses is judging the saved ones.
must_pass gen --summary-json -q
jq -c 'del(.new_tokens, .gen_seconds, .tokens_per_s)' "$T/stdout" >s1
must_pass rl-eval --responses out.jsonl --summary-json -q
test_cmp s1 "$T/stdout"

# -n; --raw feeds the prompt as it is (other ids, other responses).
must_pass gen -n 2 --judge none -o two.jsonl -O /dev/null
head -n 2 out.jsonl >want2
test_cmp want2 two.jsonl
must_pass gen -n 1 --raw --judge none -o raw.jsonl -O /dev/null
[ "$(jq -r .response raw.jsonl)" != "$(head -n 1 out.jsonl | jq -r .response)" ] || fail "--raw"
ok "--raw"

# Errors.
must_fail 2 gen --max-prompt-tokens 3
stderr_has "--max-prompt-tokens 3 leaves no room for a prompt"
must_fail 2 gen --raw --template chatml
must_fail 2 gen --template no-such-template
must_fail 2 rl-eval --responses out.jsonl --template chatml
must_fail 3 rl-eval -m "$T/no-model" -p "$E/prompts.jsonl"
must_fail 3 rl-eval -m "$E/tiny" -p "$RL_TESTS/../README.md"
stderr_has "line 1: malformed JSON"

# The man page's generation example (on the tiny model).
must_pass sh -c "rl-eval -q -m '$E/tiny' -p '$E/prompts.jsonl' -n 3 -o ex.jsonl > ex.rls"
[ "$(wc -l <ex.jsonl)" -eq 3 ] && [ -s ex.rls ] || fail "man page generation example"
ok "man page generation example"
finish
