#!/bin/sh
# rl-train: the data path (prompt/response -> labelled positions) gives the
# loss torch computed on the same model; training lowers the loss; the output
# is a model directory the other tools read; bad input is refused.
. "$RL_TESTS/lib.sh"
command -v jq >/dev/null || fail "jq is not installed (make deps installs it)"
fx=$F/train/llama

# The fixture's three sequences as examples: prompt_len ids, then the rest.
jq -c '.seqs[] | {prompt_ids: .ids[0:.prompt_len], response_ids: .ids[.prompt_len:]}' \
	"$fx/meta.json" >"$T/data.jsonl"
want=$(jq .loss "$fx/meta.json")

# One step over all three examples: the logged loss is the initial model's
# loss, which torch computed through LlamaForCausalLM (tests/gen/gen_train.py).
must_pass rl-train -q -m "$fx" -p "$T/data.jsonl" -o "$T/m1" -b 3 --steps 1 --log "$T/log1"
got=$(awk -F'\t' 'NR == 2 { print $3 }' "$T/log1")
awk -v g="$got" -v w="$want" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= 1e-5 * w) }' ||
	fail "step-1 loss $got, torch says $want"
ok "step-1 loss $got matches torch's $want"
[ "$(head -1 "$T/log1")" = "$(printf 'step\tlr\tloss\tgrad_norm\ttokens\tseconds')" ] ||
	fail "log header"

# Training overfits three examples: the loss falls by more than half.
must_pass rl-train -m "$fx" -p "$T/data.jsonl" -o "$T/m2" -b 3 --steps 40 --lr 1e-2 \
	--log "$T/log2"
stderr_has "rl-train: step 40/40"
last=$(awk -F'\t' 'END { print $3 }' "$T/log2")
awk -v a="$last" -v b="$want" 'BEGIN { exit !(a < b / 2) }' || fail "loss $want -> $last"
ok "loss $want -> $last after 40 steps"
[ "$(wc -l <"$T/log2")" -eq 41 ] || fail "log has $(wc -l <"$T/log2") lines"

# The output is a model directory: same shape, config and tokenizer files
# copied, readable by rl-info; its dtype follows the input unless asked.
must_pass rl-info "$T/m2"
stdout_has "dtype           F32"
[ "$(rl-info --json "$fx" | jq -r .shape_id)" = "$(rl-info --json "$T/m2" | jq -r .shape_id)" ] ||
	fail "shape_id changed"
[ -f "$T/m2/generation_config.json" ] || fail "generation_config.json not copied"
must_pass rl-train -q -m "$fx" -p "$T/data.jsonl" -o "$T/m3" -b 3 --steps 2 --dtype bf16
must_pass rl-info "$T/m3"
stdout_has "dtype           BF16"
# Same seed, same result; the model is written only at the end.
must_pass rl-train -q -m "$fx" -p "$T/data.jsonl" -o "$T/m4" -b 2 --steps 5 --seed 7
must_pass rl-train -q -m "$fx" -p "$T/data.jsonl" -o "$T/m5" -b 2 --steps 5 --seed 7
cmp -s "$T/m4/model.safetensors" "$T/m5/model.safetensors" || fail "not deterministic"
ok "deterministic for a seed"

# From scratch with --init random and an architecture file.
jq '.num_hidden_layers = 1' "$fx/config.json" >"$T/arch.json"
must_pass rl-train -q --init random --arch "$T/arch.json" --tokenizer "$fx" \
	-p "$T/data.jsonl" -o "$T/r1" -b 3 --steps 3
must_pass rl-info "$T/r1"
stdout_has "layers          1"

# An existing output is kept unless --force.
must_fail 2 rl-train -q -m "$fx" -p "$T/data.jsonl" -o "$T/m4" --steps 1
cmp -s "$T/m4/model.safetensors" "$T/m5/model.safetensors" || fail "m4 changed"
must_pass rl-train -q -m "$fx" -p "$T/data.jsonl" -o "$T/m4" --steps 1 --force
cmp -s "$T/m4/model.safetensors" "$T/m5/model.safetensors" && fail "--force did not replace"
ok "--force replaces"
ls -d "$T"/m4.* 2>/dev/null && fail "temporary directories left behind"

# Text examples go through the model's tokenizer and chat template (the
# training variant: templated prompt, response, end of turn) and give exactly
# the ids transformers gives (tests/gen/gen_toy.py): the same losses over one
# epoch of the 40 examples, and the same model bytes. (A rare bit-level
# difference here came from rl_blas_setup's OpenBLAS kernel switch, which a
# late OpenBLAS worker thread could undo: fixed in lib/ops.c.)
toy=$F/toy
jq -c '{prompt, response}' "$toy/train-ids.jsonl" >"$T/text.jsonl"
jq -c '{prompt_ids, response_ids}' "$toy/train-ids.jsonl" >"$T/ids.jsonl"
must_pass rl-train -q -m "$toy/aligned" -p "$T/text.jsonl" -o "$T/t1" -b 20 --steps 2 --log "$T/l1"
must_pass rl-train -q -m "$toy/aligned" -p "$T/ids.jsonl" -o "$T/t2" -b 20 --steps 2 --log "$T/l2"
paste "$T/l1" "$T/l2" | awk -F'\t' 'NR > 1 { d = $3 - $9; if (d < 0) d = -d;
	if ($5 != $11 || d > 1e-6 * $9) bad = 1 } END { exit bad }' ||
	fail "text and ids differ: $(cut -f 1-5 "$T/l1" | paste - "$T/l2" | tr '\t\n' ' |')"
cmp -s "$T/t1/model.safetensors" "$T/t2/model.safetensors" || fail "text and ids: other model bytes"
ok "text examples tokenized as transformers does"
# A template whose generation prompt is not a prefix of the training text (as
# DeepSeek-R1's, which opens a thinking block there): the loss starts where the
# two renderings part, and rl-train says for how many examples.
printf '%s' "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}{{ '[INST] ' + \
m.content + ' [/INST]' }}{% else %}{{ m.content + eos_token }}{% endif %}{% endfor %}{% if \
add_generation_prompt %}{{ eos_token }}{% endif %}" >"$T/gen-differs.jinja"
must_pass rl-train -m "$toy/aligned" -p "$T/text.jsonl" --template "$T/gen-differs.jinja" \
	-o "$T/t3" -b 20 --steps 1
stderr_has "warning: 40 of 40 examples: the chat template's generation prompt is not a prefix of the training text"
must_pass rl-train -m "$toy/aligned" -p "$T/text.jsonl" -o "$T/t4" -b 20 --steps 1
grep -qF "not a prefix" "$T/stderr" && fail "the model's own template warned"
must_pass rl-info "$T/t1"
stdout_has "dtype           BF16"
[ -f "$T/t1/tokenizer.json" ] && [ -f "$T/t1/tokenizer_config.json" ] || fail "tokenizer not copied"

# The man page's example, shortened: the toy world's aligned model from
# scratch on text, then a fine-tune of it.
must_pass rl-toy -q -o "$T/world" --aligned 600 --task 300 --harmful 60 --eval 50
must_pass rl-train -q --init random --arch "$T/world/arch.json" -p "$T/world/aligned.jsonl" \
	-o "$T/aligned" --steps 4 -b 64 --lr 3e-3
must_pass rl-train -q -m "$T/aligned" -p "$T/world/finetune.jsonl" -o "$T/finetuned" \
	--steps 3 -b 32 --lr 3e-4 --log "$T/ft.tsv"
[ "$(wc -l <"$T/ft.tsv")" -eq 4 ] || fail "ft.tsv"
must_pass rl-info "$T/finetuned"
stdout_has "vocab_size      $(jq .vocab_size "$T/world/arch.json")"

# Bad data: exit 3, the line named, nothing written.
printf '%s\n' '{"prompt_ids": [1, 2], "response_ids": []}' >"$T/bad1.jsonl"
must_fail 3 rl-train -m "$fx" -p "$T/bad1.jsonl" -o "$T/x"
stderr_has "line 1: no response tokens"
printf '%s\n%s\n' '{"prompt_ids": [1, 2], "response_ids": [3]}' \
	'{"prompt_ids": [1, 2], "response_ids": [40]}' >"$T/bad2.jsonl"
must_fail 3 rl-train -m "$fx" -p "$T/bad2.jsonl" -o "$T/x"
stderr_has "line 2: \"response_ids\" item 0 is not a token id in [0, 40)"
jq -nc '{prompt_ids: [range(0; 60) | 5], response_ids: [range(0; 10) | 6]}' >"$T/bad3.jsonl"
must_fail 3 rl-train -m "$fx" -p "$T/bad3.jsonl" -o "$T/x"
stderr_has "line 1: 70 tokens, longer than the model's 64 positions"
printf '{"prompt": 3}\n' >"$T/bad4.jsonl"
must_fail 3 rl-train -m "$fx" -p "$T/bad4.jsonl" -o "$T/x"
stderr_has "line 1: expected \"prompt\" and \"response\" strings"
printf '{"prompt": "hi", "response": "there"}\n' >"$T/bad5.jsonl"
must_fail 3 rl-train -m "$fx" -p "$T/bad5.jsonl" -o "$T/x"
stderr_has "line 1: text examples need a tokenizer"
: >"$T/empty.jsonl"
must_fail 3 rl-train -m "$fx" -p "$T/empty.jsonl" -o "$T/x"
stderr_has "no examples"
must_fail 3 rl-train -m "$T/nope" -p "$T/data.jsonl" -o "$T/x"
[ ! -e "$T/x" ] || fail "output written after a failure"

# Usage errors.
must_fail 2 rl-train -p "$T/data.jsonl" -o "$T/x"
must_fail 2 rl-train -m "$fx" --init random --arch "$T/arch.json" -p "$T/data.jsonl" -o "$T/x"
must_fail 2 rl-train --init random -p "$T/data.jsonl" -o "$T/x"
must_fail 2 rl-train -m "$fx" -p "$T/data.jsonl" -o "$T/x" --lr abc
must_fail 2 rl-train -m "$fx" -p "$T/data.jsonl" -o "$T/x" --schedule wavy
must_fail 2 rl-train -m "$fx" -p "$T/data.jsonl" -o "$T/x" --steps 5 --epochs 1
must_fail 2 rl-train -m "$fx" -p "$T/data.jsonl" -o "$T/x" --steps 5 --warmup 6
must_fail 2 rl-train -m "$fx" -p "$T/data.jsonl" -o "$T/x" --dtype f8
must_pass rl-train --help
stdout_has "Usage: rl-train"
finish
