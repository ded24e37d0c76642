#!/bin/sh
# rl-train --lora: the first loss is the base model's as torch computed it (B
# starts at zero); training lowers the loss; the output is a PEFT adapter
# directory laid out as PEFT lays out its own (and, where PEFT is installed,
# PeftModel.from_pretrained loads it); a run killed at any checkpoint point and
# resumed ends with the same bytes as an uninterrupted one; bad input is
# refused.
. "$RL_TESTS/lib.sh"
command -v jq >/dev/null || fail "jq is not installed (make deps installs it)"
fx=$F/train/llama
jq -c '.seqs[] | {prompt_ids: .ids[0:.prompt_len], response_ids: .ids[.prompt_len:]}' \
	"$fx/meta.json" >"$T/data.jsonl"
want=$(jq .loss "$fx/meta.json")

# Step 1's loss: the adapter adds nothing yet (B = 0), so it is the base
# model's loss, which torch computed through LlamaForCausalLM.
must_pass rl-train -q -m "$fx" --lora 4 -p "$T/data.jsonl" -o "$T/a1" -b 3 --steps 1 \
	--log "$T/log1"
got=$(awk -F'\t' 'NR == 2 { print $3 }' "$T/log1")
awk -v g="$got" -v w="$want" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= 1e-5 * w) }' ||
	fail "step-1 loss $got, torch says $want"
ok "step-1 loss $got matches torch's $want"

# Training overfits three examples; every step is on stderr.
must_pass rl-train -m "$fx" --lora 8 --alpha 16 --dropout 0 -p "$T/data.jsonl" -o "$T/a2" \
	-b 3 --steps 40 --lr 3e-2 --log "$T/log2" --summary "$T/sum2.json"
stderr_has "rl-train: step 40/40"
stderr_has "LoRA r 8, alpha 16, dropout 0"
last=$(awk -F'\t' 'END { print $3 }' "$T/log2")
awk -v a="$last" -v b="$want" 'BEGIN { exit !(a < b / 2) }' || fail "loss $want -> $last"
ok "loss $want -> $last after 40 steps"
[ "$(jq -r '.tool, .steps, .tokens' "$T/sum2.json" | tr '\n' ' ')" = "rl-train 40 1120 " ] ||
	fail "summary: $(cat "$T/sum2.json")"
ok "summary"

# The output: PEFT's two files, its tensor names, shapes, dtypes and layout
# (the adapter PEFT saved for the same settings, tests/gen/gen_lora_train.py),
# and a config rl-merge's reader takes.
[ "$(ls "$T/a1" | tr '\n' ' ')" = "adapter_config.json adapter_model.safetensors " ] ||
	fail "files: $(ls "$T/a1")"
peft=$F/lora_train/llama
must_pass rl-train -q -m "$peft/base" --lora 4 --alpha 8 -p "$T/data.jsonl" -o "$T/p1" \
	--steps 2
layout() { rl-info --json --tensors "$1" | jq -c '[.tensors[] | [.name, .dtype, .shape, .offset]]'; }
[ "$(layout "$T/p1/adapter_model.safetensors")" = \
	"$(layout "$peft/init/adapter_model.safetensors")" ] || fail "layout differs from PEFT's"
ok "tensors laid out as PEFT's"
jq -e '.peft_type == "LORA" and .r == 4 and .lora_alpha == 8 and .lora_dropout == 0.05 and
	.task_type == "CAUSAL_LM" and (.target_modules | length) == 7 and .bias == "none" and
	.base_model_name_or_path == $b' --arg b "$peft/base" "$T/p1/adapter_config.json" \
	>/dev/null || fail "adapter_config.json: $(cat "$T/p1/adapter_config.json")"
ok "adapter_config.json"
if python3 -c 'import peft, transformers, torch' 2>/dev/null; then
	python3 - "$peft/base" "$T/p1" <<'EOF' >"$T/py.out" 2>&1 || fail "PEFT: $(tail -5 "$T/py.out")"
import sys, torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from peft import PeftModel
base = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
m = PeftModel.from_pretrained(base, sys.argv[2])
want = load_file(sys.argv[2] + "/adapter_model.safetensors")
got = {n.replace(".default", ""): p for n, p in m.named_parameters() if "lora_" in n}
assert set(got) == set(want), (sorted(got)[:3], sorted(want)[:3])
assert all(torch.equal(got[k], want[k]) for k in want)
assert any(want[k].abs().max() > 0 for k in want if "lora_B" in k)
EOF
	ok "PeftModel.from_pretrained loads it unchanged"
else
	ok "# skip: PEFT not installed here"
fi

# Targets, rank, rsLoRA.
must_pass rl-train -q -m "$fx" --lora 2 --alpha 3 --rslora --targets q,v,down \
	-p "$T/data.jsonl" -o "$T/a3" --steps 1
jq -e '.use_rslora and (.target_modules == ["q_proj", "v_proj", "down_proj"])' \
	"$T/a3/adapter_config.json" >/dev/null || fail "targets: $(cat "$T/a3/adapter_config.json")"
[ "$(rl-info --json "$T/a3/adapter_model.safetensors" | jq .n_tensors)" = 12 ] ||
	fail "12 tensors for 3 modules x 2 layers"
ok "targets and rsLoRA"

# Phi-3: the default targets are PEFT's four fused modules (qkv_proj and
# gate_up_proj adapted whole), laid out as PEFT's own adapter for the model;
# a set that splits a fused module is a usage error.
phi=$F/lora_train/phi3
jq -c '.seqs[] | {prompt_ids: .ids[0:.prompt_len], response_ids: .ids[.prompt_len:]}' \
	"$phi/meta.json" >"$T/phi.jsonl"
must_pass rl-train -q -m "$phi/base" --lora 4 --alpha 8 -p "$T/phi.jsonl" -o "$T/phi" --steps 2
[ "$(layout "$T/phi/adapter_model.safetensors")" = \
	"$(layout "$phi/init/adapter_model.safetensors")" ] || fail "Phi-3: layout differs from PEFT's"
jq -e '.target_modules == ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]' \
	"$T/phi/adapter_config.json" >/dev/null || fail "Phi-3: $(cat "$T/phi/adapter_config.json")"
must_pass rl-merge -q "$phi/base" "$T/phi" -o "$T/phi-merged"
ok "Phi-3: qkv_proj, o_proj, gate_up_proj, down_proj as PEFT's; merged"
must_fail 2 rl-train -q -m "$phi/base" --lora 4 --targets q,o -p "$T/phi.jsonl" -o "$T/phi2"
stderr_has "adapt each whole (qkv_proj, gate_up_proj) or not at all"
[ ! -e "$T/phi2" ] || fail "Phi-3: output after a refusal"
ok "Phi-3: q without k and v refused"

# --precision bf16 (tests/unit/test_lora.c checks its gradients): the run
# says so; without --lora it is a usage error.
must_pass rl-train -q -m "$peft/base" --lora 4 --precision bf16 -p "$T/data.jsonl" \
	-o "$T/b16" --steps 2 --summary "$T/b16.json"
[ "$(jq -r .precision "$T/b16.json")" = bf16 ] || fail "bf16: $(cat "$T/b16.json")"
must_fail 2 rl-train -q -m "$peft/base" --precision bf16 -p "$T/data.jsonl" -o "$T/b16f" \
	--steps 1
stderr_has "--precision goes with --lora R"
ok "--precision bf16"

# Deterministic for a seed (dropout included); batches by a token budget;
# --mem changes the plan (chunks, recomputed layers), not the losses beyond
# rounding.
for d in d1 d2; do
	must_pass rl-train -q -m "$fx" --lora 4 -p "$T/data.jsonl" -o "$T/$d" \
		--batch-tokens 20 --steps 4 --seed 9 --log "$T/$d.log"
done
cmp -s "$T/d1/adapter_model.safetensors" "$T/d2/adapter_model.safetensors" ||
	fail "not deterministic"
ok "deterministic for a seed"
must_pass rl-train -q -m "$fx" --lora 4 -p "$T/data.jsonl" -o "$T/d3" --batch-tokens 20 \
	--steps 4 --seed 9 --mem 1K --log "$T/d3.log"
paste "$T/d1.log" "$T/d3.log" | awk -F'\t' 'NR > 1 { d = $3 - $9; if (d < 0) d = -d;
	if ($5 != $11 || d > 1e-5 * $3) bad = 1 } END { exit bad }' ||
	fail "--mem 1K: other losses: $(paste "$T/d1.log" "$T/d3.log")"
ok "--mem 1K (a chunk per sequence, layers recomputed): the same losses"
dl1=$T/d1.log
awk -F'\t' 'NR > 1 && ($5 - p > 20 || $5 == p) { bad = 1 } { p = $5 } END { exit bad }' \
	"$dl1" || fail "a step over 20 tokens: $(cat "$dl1")"
ok "--batch-tokens 20"

# Resume: killed at every checkpoint point (RL_FAULT, core/fault.h), then
# --resume: the adapter and the log's losses are the uninterrupted run's.
train6() { rl-train -q -m "$fx" --lora 4 -p "$T/data.jsonl" --batch-tokens 12 --steps 6 \
	--checkpoint-every 1 --seed 3 "$@"; }
must_pass train6 -o "$T/full" --log "$T/full.log"
RL_FAULT_TRACE="$T/trace"
export RL_FAULT_TRACE
run train6 -o "$T/traced"
unset RL_FAULT_TRACE
points=$(wc -l <"$T/trace")
[ "$(grep -c 'checkpoint written' "$T/trace")" -eq 5 ] || fail "trace: $(cat "$T/trace")"
k=1
while [ "$k" -le "$points" ]; do
	rm -rf "$T/r" "$T/r.ckpt"
	RL_FAULT="kill:$k"
	export RL_FAULT
	run train6 -o "$T/r" --log "$T/r.log"
	unset RL_FAULT
	[ "$rc" -eq 137 ] || fail "kill:$k: exit $rc"
	[ ! -e "$T/r" ] || fail "kill:$k: an output after a kill"
	run train6 -o "$T/r" --log "$T/r.log"
	[ "$rc" -eq 2 ] || [ ! -e "$T/r.ckpt" ] || fail "kill:$k: went on without --resume"
	[ -e "$T/r" ] || must_pass train6 -o "$T/r" --log "$T/r.log" --resume
	cmp -s "$T/full/adapter_model.safetensors" "$T/r/adapter_model.safetensors" ||
		fail "kill:$k: the resumed run's adapter differs"
	[ "$(cut -f 1-5 "$T/r.log")" = "$(cut -f 1-5 "$T/full.log")" ] ||
		fail "kill:$k: log: $(cut -f 1-5 "$T/r.log" | tr '\n\t' '| ')"
	[ ! -e "$T/r.ckpt" ] || fail "kill:$k: checkpoint left behind"
	k=$((k + 1))
done
ok "killed at each of $points points and resumed: the same adapter and losses"
# A checkpoint of another run is refused, naming what differs.
RL_FAULT=kill:4
export RL_FAULT
run train6 -o "$T/o"
unset RL_FAULT
must_fail 3 train6 -o "$T/o" --resume --lr 1e-3
stderr_has "a checkpoint of another run (lr is 0.0003 there, 0.001 here)"
[ ! -e "$T/o" ] || fail "output written after a refusal"
# Its trainer_state.json follows json.h's rules: a key twice is refused (cJSON
# read the first of them).
sed 's/^{/{"step": 0, /' "$T/o.ckpt/trainer_state.json" >"$T/state" &&
	cp "$T/state" "$T/o.ckpt/trainer_state.json"
grep -q '^{"step": 0, ' "$T/o.ckpt/trainer_state.json" || fail "could not plant a key twice"
must_fail 3 train6 -o "$T/o" --resume
stderr_has "trainer_state.json': duplicate key \"step\""
[ ! -e "$T/o" ] || fail "output written after a refusal"

# Bad input and usage errors.
must_fail 3 rl-train -m "$T/nope" --lora 4 -p "$T/data.jsonl" -o "$T/x"
must_fail 2 rl-train -m "$fx" --alpha 4 -p "$T/data.jsonl" -o "$T/x"
stderr_has "--alpha goes with --lora R"
must_fail 2 rl-train -m "$fx" --resume -p "$T/data.jsonl" -o "$T/x"
must_fail 2 rl-train -m "$fx" --lora 4 --targets q,qkv_proj -p "$T/data.jsonl" -o "$T/x"
stderr_has "'qkv_proj' is not one of q, k, v, o, gate, up, down, qkv, gate_up (or their _proj names), or it repeats a module named before it"
must_fail 2 rl-train -m "$fx" --lora 4 --dtype bf16 -p "$T/data.jsonl" -o "$T/x"
must_fail 2 rl-train --init random --arch "$fx/config.json" --lora 4 -p "$T/data.jsonl" -o "$T/x"
must_fail 2 rl-train -m "$fx" --lora 0 -p "$T/data.jsonl" -o "$T/x"
must_fail 2 rl-train -m "$fx" --lora 4 --dropout 1 -p "$T/data.jsonl" -o "$T/x"
must_fail 2 rl-train -m "$fx" --lora 4 -b 4 --batch-tokens 9 -p "$T/data.jsonl" -o "$T/x"
[ ! -e "$T/x" ] || fail "output written after a failure"
finish
