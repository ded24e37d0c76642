#!/bin/sh
# rl-merge against PEFT (tests/gen/gen_lora.py): the merged model's tensors
# are bit-equal to merge_and_unload's in float32 cast to the base's dtype (the
# content hash covers every tensor's name, dtype, shape and bytes), for the
# paper's settings on bf16, rsLoRA, and q/v only on an f32 qwen2 with biases;
# bad adapters are refused by name and leave nothing behind.
. "$RL_TESTS/lib.sh"
L="$F/lora"
cd "$T"
hash_of() { rl-info --hash --json "$1" | jq -r .content_hash; }

for c in llama_bf16 llama_rslora qwen2_f32_qv; do
	must_pass rl-merge "$L/$c/base" "$L/$c/adapter" -o "$c" -q --summary "$c.json"
	want=$(hash_of "$L/$c/merged")
	got=$(hash_of "$c")
	[ "$got" = "$want" ] || fail "$c: merged tensors differ from PEFT's (hash $got, want $want)"
	[ "$(hash_of "$L/$c/base")" != "$got" ] || fail "$c: the merge changed nothing"
	cmp -s "$L/$c/base/config.json" "$c/config.json" || fail "$c: config.json not copied"
	cmp -s "$L/$c/base/generation_config.json" "$c/generation_config.json" ||
		fail "$c: generation_config.json not copied"
	[ "$(ls "$c" | tr '\n' ' ')" = "config.json generation_config.json model.safetensors " ] ||
		fail "$c: unexpected files: $(ls "$c")"
	ok "$c: bit-equal to PEFT's merge"
done
[ "$(jq -c '[.pairs, .r, .scale, .rslora]' llama_bf16.json)" = '[14,8,2,false]' ] || fail "summary"
[ "$(jq -c '[.pairs, .r, .scale, .rslora]' llama_rslora.json)" = '[14,4,4,true]' ] || fail "rsLoRA summary"
[ "$(jq -c '[.pairs, .r, .scale]' qwen2_f32_qv.json)" = '[4,2,2.5]' ] || fail "qwen2 summary"
ok "summaries: pairs, rank, scale"

# The FMA path and glibc's fmaf give the same bits.
RL_FMA=soft must_pass rl-merge "$L/qwen2_f32_qv/base" "$L/qwen2_f32_qv/adapter" -o soft -q
[ "$(hash_of soft)" = "$(hash_of "$L/qwen2_f32_qv/merged")" ] || fail "RL_FMA=soft"
ok "software fmaf path"

# OUT exists: refused, then replaced with --force.
must_fail 2 rl-merge "$L/llama_bf16/base" "$L/llama_bf16/adapter" -o llama_bf16
stderr_has "exists (use --force to replace it)"
must_pass rl-merge "$L/llama_bf16/base" "$L/llama_bf16/adapter" -o llama_bf16 --force -q
[ "$(hash_of llama_bf16)" = "$(hash_of "$L/llama_bf16/merged")" ] || fail "--force"
ok "an existing OUT needs --force"

# Bad adapters: exit 3 naming the problem; no OUT, no temporary directory.
for b in $(jq -r 'keys[]' "$L/bad/expected.json"); do
	msg=$(jq -r --arg b "$b" '.[$b]' "$L/bad/expected.json")
	must_fail 3 rl-merge "$L/llama_bf16/base" "$L/bad/$b" -o "bad-$b"
	stderr_has "$msg"
	[ ! -e "bad-$b" ] || fail "$b: OUT written"
done
[ -z "$(ls -d bad-* 2>/dev/null)" ] || fail "temporary directories left: $(ls -d bad-*)"
ok "bad adapters refused by name: $(jq length "$L/bad/expected.json")"

# --any-base skips only the name check.
must_pass rl-merge "$L/llama_bf16/base" "$L/bad/other_base" -o any --any-base -q
[ "$(hash_of any)" = "$(hash_of "$L/llama_bf16/merged")" ] || fail "--any-base"
must_fail 2 rl-merge "$L/llama_bf16/base" -o x
must_fail 3 rl-merge "$L/llama_bf16/base" "$T/no-such-adapter" -o x
ok "--any-base; usage"
finish
