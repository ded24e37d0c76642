#!/bin/sh
# -A ADAPTER, where a model is read for evaluation (rl-eval, rl-info): the
# adapter merged in memory as rl-merge merges it, so evaluating MODEL -A
# ADAPTER is evaluating rl-merge's output, bit for bit (the same responses,
# the same content hash); PEFT's own merge (tests/fixtures/lora) agrees too.
# Adapters that do not fit are exit 3 with nothing written.
. "$RL_TESTS/lib.sh"
command -v jq >/dev/null || fail "jq is not installed (make deps installs it)"
E="$F/eval"
cd "$T"

# An adapter of the tiny chat model that changes its answers: trained hard on
# one reply to every prompt.
jq -c '{prompt, response: "Sure: the sea is blue, the sky is wide."}' "$E/prompts.jsonl" >ft.jsonl
must_pass rl-train -q -m "$E/tiny" --lora 4 --alpha 8 --dropout 0 -p ft.jsonl -o ad \
	--steps 30 --lr 5e-2 -b 5
must_pass rl-merge "$E/tiny" ad -o merged

gen() { rl-eval -p "$E/prompts.jsonl" --max-new-tokens 16 --judge none -O /dev/null "$@"; }
must_pass gen -m "$E/tiny" -o base.jsonl
must_pass gen -m merged -o merged.jsonl
must_pass gen -m "$E/tiny" -A ad -o adapted.jsonl
stderr_has "'ad' merged: LoRA r 4, scale 2, 14 tensors"
test_cmp merged.jsonl adapted.jsonl
[ "$(jq -r .response base.jsonl)" != "$(jq -r .response merged.jsonl)" ] ||
	fail "the adapter changed no response: the comparison proves nothing"
ok "rl-eval -A answers as rl-merge's output, which differs from the base's"
# the fine-tune's reply shows (greedy decoding reproduces the trained text)
grep -q "the sea is blue" adapted.jsonl || fail "no trained reply: $(head -c 300 adapted.jsonl)"
ok "the trained reply comes back"

# rl-info: the merged model is what it describes and hashes.
hash() { rl-info --json --hash "$@" | jq -r .content_hash; }
[ "$(hash -A ad "$E/tiny")" = "$(hash merged)" ] || fail "rl-info -A hash"
[ "$(hash -A ad "$E/tiny")" != "$(hash "$E/tiny")" ] || fail "-A changed nothing"
ok "rl-info -A hashes as rl-merge's output"
must_pass rl-info -A ad "$E/tiny"
stdout_has "adapter         ad: LoRA r 4, alpha 8, scale 2, 14 tensors merged (4096 LoRA parameters)"
[ "$(rl-info --json -A ad -m "$E/tiny" | jq -c '.adapter | [.r, .alpha, .rslora, .n_merged]')" = \
	'[4,8,false,14]' ] || fail "rl-info --json adapter"
ok "rl-info --json: the adapter"

# PEFT's merge_and_unload of PEFT's adapters (tests/gen/gen_lora.py), the
# paper's settings on bf16, rsLoRA, q and v on f32: the same content hash.
for c in llama_bf16 llama_rslora qwen2_f32_qv; do
	[ "$(hash -A "$F/lora/$c/adapter" "$F/lora/$c/base")" = "$(hash "$F/lora/$c/merged")" ] ||
		fail "$c: rl-info -A differs from PEFT's merge"
done
ok "rl-info -A equals PEFT's merge_and_unload, three adapters"

# Adapters that do not fit: exit 3, no output. Shapes (another
# architecture's adapter: Gemma's, whose q_proj is wider), unknown modules,
# another base model, an unsupported setting.
L=$F/lora/llama_bf16/base
must_fail 3 rl-info -A "$F/lora_train/gemma/init" "$L"
stderr_has "does not fit the base's"
must_fail 3 rl-info -A "$F/lora/bad/wrong_shape" "$L"
stderr_has "does not fit"
must_fail 3 rl-info -A "$F/lora/bad/unknown_target" "$L"
stderr_has "no tensor"
must_fail 3 rl-info -A "$F/lora/bad/other_base" "$L"
stderr_has "made for 'org/Other-Model-7B'"
must_pass rl-info -q --any-base -A "$F/lora/bad/other_base" "$L"
must_fail 3 rl-info -A "$F/lora/bad/dora" "$L"
stderr_has "DoRA"
must_fail 3 gen -m "$E/tiny" -A "$F/lora/llama_bf16/adapter" -o out.jsonl
stderr_has "the adapter was made for 'base', not for '$E/tiny'"
must_fail 3 gen -m "$E/tiny" -A "$F/lora/llama_bf16/adapter" --any-base -o out.jsonl
stderr_has "does not fit"
must_fail 3 gen -m "$E/tiny" -A "$F/lora/bad/unknown_target" --any-base -o out.jsonl
[ ! -e out.jsonl ] && [ ! -e out.jsonl.partial ] || fail "an output after a refusal"
ok "nothing written"
must_fail 3 gen -m "$E/tiny" -A "$T/nothing" -o out.jsonl

# Usage.
must_fail 2 rl-eval --responses merged.jsonl -A ad
must_fail 2 rl-eval -m "$E/tiny" -p "$E/prompts.jsonl" --any-base
must_fail 2 rl-info --any-base "$E/tiny"
must_fail 2 rl-info -A ad "$E/tiny/model.safetensors"
finish
