#!/bin/sh
# Hostile environments lose no data (issue 12): each case a careless user or an
# attacker can set up, and what the tools must do instead of losing data,
# hanging or misleading.
. "$RL_TESTS/lib.sh"
R="$F/restore"
sha() { sha256sum "$1/model.safetensors" | cut -d' ' -f1; }
sha0=$(sha "$R/finetuned")
TOY="$F/toy/aligned" # a model with a tokenizer
fresh() {
	rm -rf "$T/m" && cp -r "$R/finetuned" "$T/m"
	rl-select -q -m "$T/m" -t "$R/aligned" --score random --seed 2 -L 3 --count 30 >"$T/sel.rls"
}

# --- an error that fails its own recovery: both messages, whole ---
# (the second used to be formatted into the buffer holding the first)
fresh
run env RL_FAULT=eio:model:3+ rl-apply -q -m "$T/m" -s "$R/aligned" "$T/sel.rls"
[ "$rc" -eq 4 ] || fail "write and recovery failing: exit $rc: $(cat "$T/stderr")"
[ "$(cat "$T/stderr")" = "rl-apply: '$T/m/model.safetensors': write: Input/output error; restoring the model failed too (run 'rl-rollback -m $T/m'): recovery of '$T/m' failed (run it again): '$T/m/model.safetensors': write: Input/output error" ] ||
	fail "double failure message: $(cat "$T/stderr")"
ok "a write and its recovery failing: one message holding both"
[ -e "$T/m/.realign/journal" ] || fail "the hot journal did not stay for rl-rollback"
must_pass rl-rollback -q -m "$T/m"
[ "$(sha "$T/m")" = "$sha0" ] || fail "rl-rollback -m after a failed recovery: model not restored"
ok "rl-rollback -m restores it afterwards"

# --- 1. closed standard descriptors ---
# The applied model's bytes, for comparison.
fresh
rl-apply -q -m "$T/m" -s "$R/aligned" -j "$T/ref.rlj" "$T/sel.rls"
sha1=$(sha "$T/m")
# stderr closed: the summary used to be written into the first shard opened
fresh
set +e
rl-apply -m "$T/m" -s "$R/aligned" -j "$T/j.rlj" "$T/sel.rls" 2>&-
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "rl-apply 2>&-: exit $rc"
[ "$(sha "$T/m")" = "$sha1" ] || fail "rl-apply 2>&-: the model is not the applied one"
must_pass rl-rollback -q -m "$T/m" "$T/j.rlj"
[ "$(sha "$T/m")" = "$sha0" ] || fail "rl-apply 2>&-: its journal does not undo it"
ok "stderr closed: applied exactly, the journal undoes it"
# stdout closed: the journal used to go into the shard (fd 1); now writing it
# fails as writing to a closed stdout does, before the model is touched
fresh
set +e
rl-apply -m "$T/m" -s "$R/aligned" "$T/sel.rls" >&- 2>"$T/stderr"
rc=$?
set -e
[ "$rc" -eq 4 ] || fail "rl-apply >&-: exit $rc, wanted 4: $(cat "$T/stderr")"
stderr_has "'<stdout>': write error: Bad file descriptor"
[ "$(sha "$T/m")" = "$sha0" ] || fail "rl-apply >&-: model changed"
[ ! -e "$T/m/.realign/journal" ] && [ ! -e "$T/m/.realign/last.rlj" ] ||
	fail "rl-apply >&-: journal left or committed"
ok "stdout closed: exit 4, model unchanged"
# stdin closed: the selection is read from "-", which is no model file
fresh
set +e
rl-apply -m "$T/m" -s "$R/aligned" -j "$T/j.rlj" <&- 2>"$T/stderr"
rc=$?
set -e
[ "$rc" -eq 4 ] || fail "rl-apply <&-: exit $rc, wanted 4: $(cat "$T/stderr")"
stderr_has "Bad file descriptor"
[ "$(sha "$T/m")" = "$sha0" ] || fail "rl-apply <&-: model changed"
ok "stdin closed: exit 4, model unchanged"
# the shell tool holds them for the tools it runs (a stand-in rl-info, the
# first tool rl-recover runs, reports its stdin and stops the run)
mkdir "$T/fake"
cat >"$T/fake/rl-info" <<'SH'
#!/bin/sh
readlink /proc/$$/fd/0 >"$FDREPORT" || echo closed >"$FDREPORT"
exit 3
SH
chmod +x "$T/fake/rl-info"
echo '{"prompt": "p", "response": "r"}' >"$T/p.jsonl"
set +e
FDREPORT="$T/fds" PATH="$T/fake:$PATH" rl-recover -q -a "$R/aligned" -f "$R/finetuned" \
	-o "$T/rec" -H "$T/p.jsonl" -B "$T/p.jsonl" --eval-harmful "$T/p.jsonl" \
	--eval-task "$T/p.jsonl" <&- >&- 2>/dev/null
set -e
[ "$(cat "$T/fds")" = /dev/null ] || fail "rl-recover <&-: its tools' stdin is $(cat "$T/fds")"
ok "rl-recover <&-: its tools get /dev/null as stdin"

# --- 2. outputs onto inputs: refused (exit 2) before anything is written ---
fresh
# a shard of the model as the journal (it used to be truncated at the commit)
must_fail 2 rl-apply -m "$T/m" -s "$R/aligned" -j "$T/m/model.safetensors" "$T/sel.rls"
stderr_has "'$T/m/model.safetensors' is '$T/m/model.safetensors', an input of this run: refusing to write over it"
[ "$(sha "$T/m")" = "$sha0" ] || fail "-j SHARD: the model changed"
# the same file by another name: a symbolic link, a hard link (to the source's shard)
ln -s "$T/m/model.safetensors" "$T/link.rlj"
must_fail 2 rl-apply -m "$T/m" -s "$R/aligned" -j "$T/link.rlj" "$T/sel.rls"
stderr_has "an input of this run"
cp -r "$R/aligned" "$T/a" && ln "$T/a/model.safetensors" "$T/hard.rlj"
sha_a=$(sha "$T/a")
must_fail 2 rl-apply -m "$T/m" -s "$T/a" -j "$T/hard.rlj" "$T/sel.rls"
stderr_has "'$T/hard.rlj' is '$T/a/model.safetensors', an input of this run"
[ "$(sha "$T/a")" = "$sha_a" ] || fail "-j HARDLINK: the source changed"
rm "$T/hard.rlj"
# the model's own state directory
for j in "$T/m/.realign/last.rlj" "$T/m/.realign/step.rlj" "$T/m/./.realign/../.realign/x"; do
	must_fail 2 rl-apply -m "$T/m" -s "$R/aligned" -j "$j" "$T/sel.rls"
	stderr_has "is inside '$T/m/.realign', the state directory of the input model"
done
# standard output appended to a shard
set +e
rl-apply -m "$T/m" -s "$R/aligned" "$T/sel.rls" >>"$T/m/model.safetensors" 2>"$T/stderr"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "stdout >> SHARD: exit $rc: $(cat "$T/stderr")"
stderr_has "standard output is '$T/m/model.safetensors', an input of this run"
[ "$(sha "$T/m")" = "$sha0" ] || fail "stdout >> SHARD: the model changed"
[ ! -e "$T/m/.realign/journal" ] || fail "stdout >> SHARD: hot journal left"
ok "journal outputs onto the model, the source or .realign: refused, nothing changed"
# streams: a journal being undone, a gradient being selected from
rl-apply -q -m "$T/m" -s "$R/aligned" "$T/sel.rls" >"$T/step.rlj"
cp "$T/step.rlj" "$T/step.copy"
must_fail 2 rl-rollback -m "$T/m" -j "$T/step.rlj" "$T/step.rlj"
cmp "$T/step.rlj" "$T/step.copy" || fail "rl-rollback -j JOURNAL: the journal changed"
must_pass rl-rollback -q -m "$T/m" "$T/step.rlj"
"$RL_TESTBIN/test_restore" grad "$T/m" "$R/grad_harmful.safetensors" "$T/gh.rls"
cp "$T/gh.rls" "$T/gh.copy"
must_fail 2 rl-select -m "$T/m" -t "$R/aligned" --count 5 -o "$T/gh.rls" "$T/gh.rls"
cmp "$T/gh.rls" "$T/gh.copy" || fail "rl-select -o GRAD: the gradient changed"
printf '{"ids": [1, 2, 3]}\n' >"$T/ids.jsonl"
cp "$T/m/config.json" "$T/config.copy"
must_fail 2 rl-direction -m "$T/m" -p "$T/ids.jsonl" -L 1 -o "$T/m/config.json"
stderr_has "'$T/m/config.json' is '$T/m/config.json', an input of this run"
cmp "$T/m/config.json" "$T/config.copy" || fail "rl-direction -o CONFIG: config.json changed"
# rl-eval: responses over the model's config, and over a device
TOYC="$T/toyc" && cp -r "$TOY" "$TOYC"
must_fail 2 rl-eval -m "$TOYC" -p "$F/eval/prompts.jsonl" -n 1 --max-new-tokens 2 \
	-o "$TOYC/tokenizer.json" --summary-json
stderr_has "'$TOYC/tokenizer.json' is '$TOYC/tokenizer.json', an input of this run"
mknod "$T/null" c 1 3
printf '{"prompt": "p", "response": "r"}\n' >"$T/one.jsonl"
must_fail 2 rl-eval --responses "$T/one.jsonl" -o "$T/null" --summary-json
stderr_has "'$T/null' is a character device: refusing to replace it"
[ -c "$T/null" ] || fail "rl-eval -o DEVICE replaced the device"
must_fail 2 rl-eval --responses "$T/one.jsonl" --summary "$T/null" -O "$T/e.rls"
stderr_has "'$T/null' is a character device: refusing to replace it"
[ -c "$T/null" ] || fail "--summary DEVICE replaced the device"
# rl-train: OUT is its input model (with --force it used to replace it)
fx="$F/train/llama"
cp -r "$fx" "$T/tm"
jq -c '.seqs[] | {prompt_ids: .ids[0:.prompt_len], response_ids: .ids[.prompt_len:]}' \
	"$fx/meta.json" >"$T/tdata.jsonl"
sha_t=$(sha "$T/tm")
must_fail 2 rl-train -q -m "$T/tm" -p "$T/tdata.jsonl" -o "$T/tm" --force -b 3 --steps 1
stderr_has "'$T/tm' is the input directory '$T/tm'"
must_fail 2 rl-train -q -m "$T/tm" -p "$T/tdata.jsonl" -o "$T/tm/.realign/out" -b 3 --steps 1
must_fail 2 rl-train -q -m "$T/tm" -p "$T/tdata.jsonl" -o "$T/t2" --log "$T/tm/config.json" \
	-b 3 --steps 1
[ "$(sha "$T/tm")" = "$sha_t" ] && [ -f "$T/tm/config.json" ] || fail "rl-train: its input changed"
ok "stream, eval and train outputs onto inputs: refused, inputs intact"
# LoRA: rl-merge's OUT is its adapter or its base (with --force it replaced
# them), rl-train --lora's OUT is its model, rl-eval -A's output is in the adapter
L="$F/lora/llama_bf16"
cp -r "$L/base" "$T/lb" && cp -r "$L/adapter" "$T/ad"
sha_ad=$(sha256sum "$T/ad/adapter_model.safetensors" | cut -d' ' -f1)
sha_lb=$(sha "$T/lb")
must_fail 2 rl-merge "$T/lb" "$T/ad" -o "$T/ad" --force --any-base
stderr_has "'$T/ad' is the input directory '$T/ad': refusing to write over it"
must_fail 2 rl-merge "$T/lb" "$T/ad" -o "$T/lb" --force --any-base
stderr_has "'$T/lb' is the input directory '$T/lb'"
must_fail 2 rl-train -q -m "$T/lb" --lora 4 -p "$T/tdata.jsonl" -o "$T/lb" --force --steps 1
stderr_has "'$T/lb' is the input directory '$T/lb'"
[ "$(sha256sum "$T/ad/adapter_model.safetensors" | cut -d' ' -f1)" = "$sha_ad" ] &&
	[ -f "$T/ad/adapter_config.json" ] && [ "$(sha "$T/lb")" = "$sha_lb" ] ||
	fail "LoRA: an input changed"
ok "rl-merge and rl-train --lora outputs onto their inputs: refused, inputs intact"

# --- 3. linked weight files: refused unless --allow-linked; one writer ---
sel_for() { rl-select -q -m "$1" -t "$R/aligned" --score random --seed 2 -L 3 --count 30; }
rm -rf "$T/m" && cp -r "$R/finetuned" "$T/m"
cp -al "$T/m" "$T/al"
cp -rs "$T/m" "$T/rs"
ln -s "$T/m" "$T/ls"
for w in al rs ls; do
	sel_for "$T/$w" >"$T/$w.rls"
	must_fail 3 rl-apply -m "$T/$w" -s "$R/aligned" "$T/$w.rls"
	must_fail 3 rl-rollback -m "$T/$w"
done
stderr_has "'$T/ls' is a symbolic link to '$T/m': writing it changes that model"
must_fail 3 rl-apply -m "$T/al" -s "$R/aligned" "$T/al.rls"
stderr_has "'$T/al/model.safetensors' has 2 names (a hard link): writing it changes every model that shares it; copy the model (cp -r, which copies the bytes) or give --allow-linked"
must_fail 3 rl-apply -m "$T/rs" -s "$R/aligned" "$T/rs.rls"
stderr_has "'$T/rs/model.safetensors' is a symbolic link to '$T/m/model.safetensors', outside the model"
[ "$(sha "$T/m")" = "$sha0" ] || fail "a linked copy's apply changed the original"
ok "cp -al, cp -rs, ln -s copies: refused, the original untouched"
# a dry run only reads; --allow-linked writes through, as asked
must_pass rl-apply -n -m "$T/al" -s "$R/aligned" "$T/al.rls"
must_pass rl-apply -q --allow-linked -m "$T/al" -s "$R/aligned" -j "$T/al.rlj" "$T/al.rls"
[ "$(sha "$T/m")" = "$sha1" ] || fail "--allow-linked: the shared weights are not the applied ones"
must_pass rl-rollback -q --allow-linked -m "$T/al" "$T/al.rlj"
[ "$(sha "$T/m")" = "$sha0" ] || fail "--allow-linked: rollback"
ok "--allow-linked writes through the link and rolls back"
# the weight files are locked, not only the directory: a writer through the
# other directory is refused while the first holds them
sel_for "$T/al" >"$T/al.rls"
sel_for "$T/m" >"$T/m.rls"
size=$(wc -c <"$T/al.rls")
{ head -c $((size - 40)) "$T/al.rls"; sleep 2; tail -c 40 "$T/al.rls"; } |
	rl-apply -q --allow-linked -m "$T/al" -s "$R/aligned" >"$T/first.rlj" 2>"$T/first.err" &
pid=$!
sleep 1
must_fail 1 rl-apply -q --allow-linked -m "$T/m" -s "$R/aligned" "$T/m.rls"
stderr_has "'$T/m/model.safetensors': the weight file is being written by another process (through another directory that links to it)"
wait "$pid" || fail "the first writer failed: $(cat "$T/first.err")"
[ "$(sha "$T/m")" = "$sha1" ] || fail "the first writer's step is not in the shared weights"
ok "two directories sharing weight files: one writer at a time"

# --- 7. NaN and Inf: refused where they enter, the tensor and layer named ---
# poke FILE TENSOR ELEMENT VALUE: stores VALUE (nan, inf, big: a huge finite
# number) at ELEMENT of TENSOR in the safetensors FILE, in place
poke() {
	hlen=$(od -An -tu8 -N8 "$1" | tr -d ' ')
	set -- "$@" $(dd if="$1" bs=1 skip=8 count="$hlen" 2>/dev/null |
		jq -r --arg t "$2" '.[$t] | "\(.dtype) \(.data_offsets[0])"')
	case $5 in
	BF16) es=2 nan='\300\177' inf='\200\177' big='\177\177' ;;
	F32) es=4 nan='\0\0\300\177' inf='\0\0\200\177' big='\377\377\177\177' ;;
	*) fail "poke: $2 in $1 is '$5'" ;;
	esac
	eval "bytes=\$$4"
	printf "$bytes" | dd of="$1" bs=1 seek=$((8 + hlen + $6 + $3 * es)) conv=notrunc 2>/dev/null
}
cp -r "$R/finetuned" "$T/nan"
poke "$T/nan/model.safetensors" model.layers.1.mlp.up_proj.weight 5 nan
must_fail 3 rl-direction -m "$T/nan" -p "$T/ids.jsonl" -L 2 -o "$T/d.rls"
stderr_has "'$T/nan': 'model.layers.1.mlp.up_proj.weight' (layer 1): element 5 is nan (the weights must be finite)"
# at precision bf16 the matrices are multiplied as stored, not widened: the
# same check, the same message (an infinity in another matrix too)
must_fail 3 rl-direction --precision bf16 -m "$T/nan" -p "$T/ids.jsonl" -L 2 -o "$T/d.rls"
stderr_has "'$T/nan': 'model.layers.1.mlp.up_proj.weight' (layer 1): element 5 is nan (the weights must be finite)"
cp -r "$R/finetuned" "$T/inf"
poke "$T/inf/model.safetensors" model.layers.0.self_attn.k_proj.weight 70 inf
must_fail 3 rl-direction --precision bf16 -m "$T/inf" -p "$T/ids.jsonl" -L 2 -o "$T/d.rls"
stderr_has "'$T/inf': 'model.layers.0.self_attn.k_proj.weight' (layer 0): element 70 is inf (the weights must be finite)"
# LoRA training at bf16 multiplies the layers' matrices and lm_head as stored
# (forward and backward): the same check, the same message, nothing written
printf '{"prompt_ids": [1, 2, 3], "response_ids": [4, 5]}\n' >"$T/lora.jsonl"
must_fail 3 rl-train -m "$T/nan" --lora 2 --precision bf16 -p "$T/lora.jsonl" -o "$T/a-nan" \
	--steps 1 --checkpoint-every 0
stderr_has "'$T/nan': 'model.layers.1.mlp.up_proj.weight' (layer 1): element 5 is nan (the weights must be finite)"
cp -r "$R/finetuned" "$T/nanhead"
poke "$T/nanhead/model.safetensors" lm_head.weight 100 inf
must_fail 3 rl-train -m "$T/nanhead" --lora 2 --precision bf16 -p "$T/lora.jsonl" -o "$T/a-nan" \
	--steps 1 --checkpoint-every 0
stderr_has "'$T/nanhead': 'lm_head.weight': element 100 is inf (the weights must be finite)"
[ ! -e "$T/a-nan" ] || fail "rl-train wrote an adapter from non-finite weights"
# generation multiplies every matrix as stored, at either precision: checked
# when the model is opened, the same message, no responses written
cp -r "$TOY" "$T/evnan"
poke "$T/evnan/model.safetensors" model.layers.1.self_attn.o_proj.weight 9 nan
for prec in fp32 bf16; do
	must_fail 3 rl-eval -q -m "$T/evnan" --precision $prec -p "$F/eval/prompts.jsonl" -n 1 \
		--max-new-tokens 2 -o "$T/evnan.jsonl"
	stderr_has "'$T/evnan': 'model.layers.1.self_attn.o_proj.weight' (layer 1): element 9 is nan (the weights must be finite)"
done
cp -r "$TOY" "$T/evhead"
poke "$T/evhead/model.safetensors" lm_head.weight 11 inf
must_fail 3 rl-eval -q -m "$T/evhead" -p "$F/eval/prompts.jsonl" -n 1 --max-new-tokens 2 \
	-o "$T/evnan.jsonl"
stderr_has "'lm_head.weight': element 11 is inf (the weights must be finite)"
[ ! -e "$T/evnan.jsonl" ] && [ ! -e "$T/evnan.jsonl.partial" ] ||
	fail "rl-eval wrote responses from non-finite weights"
must_pass rl-direction -q -m "$R/finetuned" -p "$T/ids.jsonl" -L 2 -o "$T/d.rls"
must_fail 3 rl-grad -m "$T/nan" -p "$T/ids.jsonl" -d "$T/d.rls"
stderr_has "'model.layers.1.mlp.up_proj.weight' (layer 1): element 5 is nan"
# finite weights so large that a layer's output overflows
cp -r "$R/finetuned" "$T/big"
for i in 0 1 2 3 4 5 6 7 8 9; do
	poke "$T/big/model.safetensors" model.layers.0.mlp.up_proj.weight "$i" big
	poke "$T/big/model.safetensors" model.layers.0.mlp.gate_proj.weight "$i" big
done
must_fail 3 rl-direction -m "$T/big" -p "$T/ids.jsonl" -L 2 -o "$T/dbig.rls"
stderr_has "'$T/big': layer 0's output is"
stderr_has "the weights are finite, the computation overflows f32"
# a gradient stream holding an infinity: refused by tensor, layer and element
cp "$R/grad_harmful.safetensors" "$T/ginf.safetensors"
poke "$T/ginf.safetensors" model.layers.1.self_attn.v_proj.weight 7 inf
"$RL_TESTBIN/test_restore" grad "$T/m" "$T/ginf.safetensors" "$T/ginf.rls"
must_fail 3 rl-select -m "$T/m" -t "$R/aligned" --rate 0.002 "$T/ginf.rls"
stderr_has "the gradient of 'model.layers.1.self_attn.v_proj.weight' (layer 1) is inf at element 7"
# training from a model with a NaN weight
cp -r "$F/train/llama" "$T/tnan"
poke "$T/tnan/model.safetensors" model.layers.0.self_attn.q_proj.weight 3 nan
must_fail 3 rl-train -q -m "$T/tnan" -p "$T/tdata.jsonl" -o "$T/t3" -b 3 --steps 1
stderr_has "'model.layers.0.self_attn.q_proj.weight' (layer 0): element 3 is nan"
must_fail 3 rl-train -q -m "$T/tnan" --lora 4 -p "$T/tdata.jsonl" -o "$T/t3" --steps 1
stderr_has "'model.layers.0.self_attn.q_proj.weight' (layer 0): element 3 is nan"
# finite weights whose training overflows: the first non-finite gradient named
cp -r "$F/train/llama" "$T/tbig"
for i in 0 1 2 3 4 5 6 7 8 9; do
	poke "$T/tbig/model.safetensors" model.layers.0.mlp.up_proj.weight "$i" big
	poke "$T/tbig/model.safetensors" model.layers.0.mlp.gate_proj.weight "$i" big
done
must_fail 3 rl-train -q -m "$T/tbig" -p "$T/tdata.jsonl" -o "$T/t3" -b 3 --steps 1
stderr_has "rl-train: step 1: the gradient of 'model.embed_tokens.weight' is"
must_fail 3 rl-train -q -m "$T/tbig" --lora 4 -p "$T/tdata.jsonl" -o "$T/t3" --steps 1
stderr_has "rl-train: step 1: the gradient of 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' (layer 0) is"
[ ! -e "$T/t3" ] || fail "rl-train wrote an output after a non-finite gradient"
ok "NaN weights, overflowing layers and non-finite gradients: refused, named"

# --- 6. FIFOs and other special files in a model's place: refused, no hang ---
# (timeout turns a hang into a failure of this test)
cp -r "$TOY" "$T/f"
rm "$T/f/config.json" && mkfifo "$T/f/config.json"
must_fail 3 timeout 20 rl-info "$T/f"
stderr_has "config.json': not a regular file (it is a FIFO)"
cp "$TOY/config.json" "$T/f/.config" && rm "$T/f/config.json" && mv "$T/f/.config" "$T/f/config.json"
rm "$T/f/model.safetensors" && mkfifo "$T/f/model.safetensors"
must_fail 3 timeout 20 rl-info "$T/f"
stderr_has "model.safetensors': not a regular file (it is a FIFO)"
must_fail 3 timeout 20 rl-apply -m "$T/f" -s "$TOY" "$T/sel.rls"
stderr_has "model.safetensors': not a regular file (it is a FIFO)"
rm "$T/f/model.safetensors" && ln -s /dev/zero "$T/f/model.safetensors"
must_fail 3 timeout 20 rl-info "$T/f"
stderr_has "model.safetensors': not a regular file (it is a character device)"
rm "$T/f/model.safetensors" && cp "$TOY/model.safetensors" "$T/f/"
for tf in tokenizer.json tokenizer_config.json generation_config.json; do
	mv "$T/f/$tf" "$T/f/.$tf" && mkfifo "$T/f/$tf"
	must_fail 3 timeout 20 rl-eval -m "$T/f" -p "$F/eval/prompts.jsonl" -n 1 --max-new-tokens 2
	stderr_has "$tf': not a regular file (it is a FIFO)"
	rm "$T/f/$tf" && mv "$T/f/.$tf" "$T/f/$tf"
done
# the state and the hot journal in .realign
fresh
mkdir -p "$T/m/.realign" && mkfifo "$T/m/.realign/state"
must_fail 3 timeout 20 rl-select -m "$T/m" -t "$R/aligned" --score random --count 5
stderr_has ".realign/state': not a regular file (it is a FIFO)"
rm "$T/m/.realign/state" && mkfifo "$T/m/.realign/journal"
must_pass timeout 20 rl-rollback -m "$T/m"
stderr_has "removed a torn journal (the model was never touched)"
[ "$(sha "$T/m")" = "$sha0" ] || fail "a FIFO for a hot journal: model changed"
# inputs documented as streams still take pipes: JSON lines, refusal lists
mkfifo "$T/resp.fifo" "$T/ref.fifo"
printf '{"prompt": "p", "response": "No way."}\n{"prompt": "q", "response": "Sure."}\n' >"$T/resp.fifo" &
printf 'no way\n' >"$T/ref.fifo" &
must_pass timeout 20 rl-eval --responses "$T/resp.fifo" --refusals "$T/ref.fifo" --summary-json
[ "$(jq -c '[.harmful, .judged]' "$T/stdout")" = "[1,2]" ] || fail "piped inputs: $(cat "$T/stdout")"
wait
ok "prompts and refusals from FIFOs still read"

# --- 10. broken symbolic links in a model directory: named as such ---
cp -r "$TOY" "$T/d"
mv "$T/d/model.safetensors" "$T/d/.w" && ln -s "$T/gone/model.safetensors" "$T/d/model.safetensors"
must_fail 3 rl-info "$T/d"
stderr_has "model.safetensors': broken symbolic link (to '$T/gone/model.safetensors', which does not exist)"
rm "$T/d/model.safetensors" && mv "$T/d/.w" "$T/d/model.safetensors"
for tf in config.json tokenizer.json tokenizer_config.json generation_config.json; do
	mv "$T/d/$tf" "$T/d/.$tf" && ln -s "../blobs/$tf" "$T/d/$tf"
	must_fail 3 rl-eval -m "$T/d" -p "$F/eval/prompts.jsonl" -n 1 --max-new-tokens 2
	stderr_has "$tf': broken symbolic link (to '../blobs/$tf', which does not exist)"
	rm "$T/d/$tf" && mv "$T/d/.$tf" "$T/d/$tf"
done
ln -s "$T/nowhere" "$T/dlink"
must_fail 3 rl-info "$T/dlink"
stderr_has "dlink': broken symbolic link (to '$T/nowhere', which does not exist)"
# rl-recover copies FINETUNED's files: a broken one is named, not skipped
cp -r "$R/finetuned" "$T/fb" && ln -s missing.json "$T/fb/tokenizer.json"
must_fail 3 rl-recover -q -a "$R/aligned" -f "$T/fb" -o "$T/rec2" -H "$T/p.jsonl" \
	-B "$T/p.jsonl" --eval-harmful "$T/p.jsonl" --eval-task "$T/p.jsonl"
stderr_has "rl-recover: '$T/fb/tokenizer.json': broken symbolic link (to 'missing.json', which does not exist)"

# --- 5. NUL or invalid UTF-8 in any JSON realign reads: exit 3, the byte named ---
# (a NUL in a config.json key dropped the setting: rms_norm_eps took its default)
cp -r "$R/finetuned" "$T/j"
cfg="$T/j/config.json"
cp "$cfg" "$T/config.orig"
sed 's/"rms_norm_eps"/"rms_norm_eps\\u0000x"/' "$T/config.orig" >"$cfg"
grep -q 'rms_norm_eps\\u0000x' "$cfg" || fail "could not plant \\u0000 in config.json"
must_fail 3 rl-info "$T/j"
stderr_has "config.json': U+0000 (\\u0000) in a key at byte"
sed 's/"rms_norm_eps"/"rms_norm_eps@x"/' "$T/config.orig" | tr '@' '\000' >"$cfg"
must_fail 3 rl-info "$T/j"
stderr_has "config.json': NUL byte at byte"
sed 's/"rms_norm_eps"/"rms_norm_eps@"/' "$T/config.orig" | tr '@' '\377' >"$cfg"
must_fail 3 rl-info "$T/j"
stderr_has "config.json': not valid UTF-8 at byte"
cp "$T/config.orig" "$cfg"
# JSON lines: a NUL in a prompt is refused, with its line and byte
printf '{"prompt": "ok", "response": "r"}\n{"prompt": "a\\u0000b", "response": "r"}\n' >"$T/nul.jsonl"
must_fail 3 rl-eval --responses "$T/nul.jsonl"
stderr_has "nul.jsonl' line 2: U+0000 (\\u0000) in a string at byte 13"

# --- 9. a key twice in a judge's answer: refused, as in streams ---
printf '{"prompt": "p", "response": "r"}\n' >"$T/one.jsonl"
must_fail 3 rl-eval --responses "$T/one.jsonl" \
	--judge-cmd 'sed "s/.*/{\"id\": 0, \"harmful\": true, \"harmful\": false}/"'
stderr_has "answer for item 0: duplicate key \"harmful\""

# --- 10. a journal that hits ENOSPC: the model untouched, and the message says so ---
for f in enospc:journal:1 enospc:journal:2 enospc:journal:3 enospc:output:1; do
	fresh
	run env RL_FAULT=$f rl-apply -q -m "$T/m" -s "$R/aligned" -j "$T/j.rlj" "$T/sel.rls"
	[ "$rc" -eq 4 ] || fail "$f: exit $rc, wanted 4: $(cat "$T/stderr")"
	stderr_has "No space left on device (the model was not changed)"
	[ "$(sha "$T/m")" = "$sha0" ] || fail "$f: the model changed"
	[ ! -e "$T/m/.realign/journal" ] && [ ! -e "$T/m/.realign/last.rlj" ] ||
		fail "$f: a journal left or committed"
done
# a real full file system: a tmpfs holding the model and k free pages (the
# lock, the hot journal and the state sidecar need one page each)
mkdir "$T/tmpfs"
if ! mount -t tmpfs -o size=256k tmpfs "$T/tmpfs" 2>/dev/null; then
	echo "# skip: cannot mount a tmpfs here (not root?): real ENOSPC not tried"
else
	trap 'umount "$T/tmpfs" 2>/dev/null || :; rm -rf "$T"' EXIT INT TERM
	cp -r "$R/finetuned" "$T/tmpfs/m"
	sel_for "$T/tmpfs/m" >"$T/tsel.rls"
	dd if=/dev/zero of="$T/tmpfs/fill" bs=4096 2>/dev/null || true
	full=$(wc -c <"$T/tmpfs/fill")
	notchanged=0 restored=0 k=0
	while :; do
		truncate -s $((full - k * 4096)) "$T/tmpfs/fill"
		run rl-apply -q -m "$T/tmpfs/m" -s "$R/aligned" -j "$T/tj.rlj" "$T/tsel.rls"
		[ "$rc" -eq 0 ] && break
		[ "$rc" -eq 4 ] || fail "ENOSPC with $k free pages: exit $rc: $(cat "$T/stderr")"
		stderr_has "No space left on device"
		grep -q "(the model was not changed)" "$T/stderr" && notchanged=$((notchanged + 1))
		grep -q "(the model was restored)" "$T/stderr" && restored=$((restored + 1))
		[ "$(sha "$T/tmpfs/m")" = "$sha0" ] || fail "ENOSPC with $k free pages: the model changed"
		[ ! -e "$T/tmpfs/m/.realign/journal" ] || fail "ENOSPC with $k free pages: journal left"
		k=$((k + 1))
		[ "$k" -le 8 ] || fail "rl-apply still fails with 8 free pages: $(cat "$T/stderr")"
	done
	[ "$notchanged" -ge 1 ] || fail "no real ENOSPC hit the journal ($k pages were needed)"
	[ "$(sha "$T/tmpfs/m")" = "$sha1" ] || fail "tmpfs: the apply that fitted is not the applied model"
	ok "real ENOSPC with 0..$((k - 1)) free pages: model untouched ($notchanged: not changed, $restored: restored), then applied with $k"
	umount "$T/tmpfs"
fi

finish
