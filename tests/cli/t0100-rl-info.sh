#!/bin/sh
# rl-info: describes valid models as transformers sees them (P, candidates, shards,
# tensors from tests/fixtures/safetensors/models/expected.tsv, written by
# transformers), rejects every case of the malformed corpus with exit 3 and the
# exact golden message, checks its options, and runs the man page's EXAMPLES.
# Given a config.json alone (the real releases' and the cases of
# tests/fixtures/config/expected.tsv, resolved by transformers): P and every
# layer's sliding window as transformers has them, or exit 3 with realign's
# refusal.
. "$RL_TESTS/lib.sh"
cd "$F/safetensors"
command -v jq >/dev/null || fail "jq is not installed (make deps installs it)"

# ---- valid models: figures equal what transformers reported
for m in llama-sharded llama-bias qwen2-tied mistral-f16 gemma-bf16; do
	want() { awk -F'\t' -v m="$m" -v k="$1" '$1 == m && $2 == k { print $3; exit }' \
		models/expected.tsv; }
	must_pass rl-info --json "models/$m"
	[ "$(jq .P "$T/stdout")" = "$(want P)" ] || fail "$m: P $(jq .P "$T/stdout") != $(want P)"
	[ "$(jq .n_shards "$T/stdout")" = "$(want nshards)" ] || fail "$m: shards"
	[ "$(jq .n_tensors "$T/stdout")" = "$(want ntensors)" ] || fail "$m: tensors"
	[ "$(jq '.tie_word_embeddings | if . then 1 else 0 end' "$T/stdout")" = "$(want tied)" ] ||
		fail "$m: tied"
	awk -F'\t' -v m="$m" '$1 == m && $2 == "candidates" { print $3, $4, $5 }' \
		models/expected.tsv >"$T/cands"
	while read -r L n numel; do
		run rl-info --json -L "$L" "models/$m"
		[ "$rc" -eq 0 ] || fail "$m -L $L: exit $rc"
		got=$(jq -r '"\(.n_candidates) \(.candidate_numel)"' "$T/stdout")
		[ "$got" = "$n $numel" ] || fail "$m -L $L: candidates $got, transformers: $n $numel"
	done <"$T/cands"
	ok "$m: P, shards, tensors, tied, candidates as transformers reports"
	run rl-info --json --tensors "models/$m"
	[ "$(jq '.tensors | length' "$T/stdout")" = "$(want ntensors)" ] || fail "$m: --tensors"
	awk -F'\t' -v m="$m" '$1 == m && $2 == "tensor" { print $3 }' models/expected.tsv |
		sort >"$T/want-names"
	jq -r '.tensors[].name' "$T/stdout" | sort >"$T/got-names"
	test_cmp "$T/want-names" "$T/got-names"
done
# default layer_end is floor(2N/3): 2 for 3 layers
must_pass rl-info --json models/llama-sharded
[ "$(jq .layer_end "$T/stdout")" = 2 ] || fail "default layer_end"
[ "$(jq -r .shape_id "$T/stdout" | grep -c '^[0-9a-f]\{16\}$')" = 1 ] || fail "shape_id format"
# text output
must_pass rl-info models/gemma-bf16
stdout_has 'architecture    GemmaForCausalLM (gemma)'
stdout_has 'heads           4 (kv 2, head_dim 8)'
stdout_has 'activation      gelu_tanh'
stdout_has 'embeddings      tied to lm_head, scaled by sqrt(hidden_size)'
stdout_has 'rms_norm_eps    1e-06 (scale 1 + w)'
stdout_has 'layer_end       2 (default floor(2N/3))'
stdout_has 'P               8160 (decoder layers, norms included)'
# the chat template the tools render by default: none, the config's,
# chat_template.jinja beside it (which wins), one realign cannot render, an
# unreadable config
mkdir "$T/ct"
ln -s "$PWD/models/gemma-bf16/"* "$T/ct/"
must_pass rl-info "$T/ct"
stdout_has 'chat_template   none (prompts need --template FILE or --raw)'
must_pass rl-info --json "$T/ct"
[ "$(jq -c .chat_template "$T/stdout")" = null ] || fail "no chat template: $(jq -c .chat_template "$T/stdout")"
printf '{"chat_template": "{{ bos_token }}{%% for m in messages %%}{{ m.content }}{%% endfor %%}"}' \
	>"$T/ct/tokenizer_config.json"
must_pass rl-info "$T/ct"
stdout_has "chat_template   '$T/ct/tokenizer_config.json' (Jinja, 65 bytes)"
must_pass rl-info --json "$T/ct"
[ "$(jq -c .chat_template "$T/stdout")" = "{\"path\":\"$T/ct/tokenizer_config.json\",\"bytes\":65,\"parses\":true}" ] ||
	fail "config chat template: $(jq -c .chat_template "$T/stdout")"
printf '{{ messages }}\n{%% with x = 1 %%}{%% endwith %%}\n' >"$T/ct/chat_template.jinja"
must_pass rl-info "$T/ct"
stdout_has "chat_template   '$T/ct/chat_template.jinja' (Jinja, $(wc -c <"$T/ct/chat_template.jinja") bytes): realign cannot render it: '$T/ct/chat_template.jinja' line 2:"
must_pass rl-info --json "$T/ct"
[ "$(jq .chat_template.parses "$T/stdout")" = false ] || fail "unparseable template"
rm "$T/ct/chat_template.jinja"
printf '{"chat_template": ' >"$T/ct/tokenizer_config.json"
must_pass rl-info "$T/ct"
stdout_has "chat_template   unreadable: '$T/ct/tokenizer_config.json': malformed JSON"
# --hash: deterministic, 16 hex digits, differs between models, shape id unaffected
must_pass rl-info --json --hash models/llama-sharded
h1=$(jq -r .content_hash "$T/stdout")
must_pass rl-info --json --hash models/llama-sharded
[ "$(jq -r .content_hash "$T/stdout")" = "$h1" ] || fail "content hash not deterministic"
must_pass rl-info --json --hash models/mistral-f16
[ "$(jq -r .content_hash "$T/stdout")" != "$h1" ] || fail "content hash collides"
echo "$h1" | grep -q '^[0-9a-f]\{16\}$' || fail "content hash format: $h1"
# a single file
must_pass rl-info --json --tensors official/dtypes.safetensors
[ "$(jq .n_tensors "$T/stdout")" = 15 ] || fail "dtypes.safetensors: n_tensors"
[ "$(jq -r '.tensors[] | select(.name == "f16.cube") | "\(.dtype) \(.shape)"' "$T/stdout")" = \
	"F16 [2,3,2]" ] || fail "dtypes.safetensors: f16.cube"
[ "$(jq -r '.tensors[] | select(.name == "f32.scalar") | .shape | length' "$T/stdout")" = 0 ] ||
	fail "scalar shape"
must_pass rl-info official/with_meta.safetensors
stdout_has 'metadata        note = a "quoted" value'

# ---- a config.json alone
while IFS='	' read -r file rest; do
	case "$file" in '#'*) continue ;; esac
	err=$(printf '%s\n' "$rest" | tr '\t' '\n' | sed -n 's/^error=//p')
	if [ -n "$err" ]; then
		must_fail 3 rl-info "../config/$file"
		stderr_has "$err"
		continue
	fi
	must_pass rl-info --json "../config/$file"
	want() { printf '%s\n' "$rest" | tr '\t' '\n' | sed -n "s/^$1=//p"; }
	[ "$(jq .P "$T/stdout")" = "$(want param_count)" ] ||
		fail "$file: P $(jq .P "$T/stdout"), transformers $(want param_count)"
	[ "$(jq -r '.layer_windows | map(tostring) | join(",")' "$T/stdout")" = "$(want windows)" ] ||
		fail "$file: windows $(jq -c .layer_windows "$T/stdout"), transformers $(want windows)"
done <../config/expected.tsv
ok "config.json files: P and windows as transformers resolves them, refusals exit 3"
must_pass rl-info ../config/qwen3-v5-layer-types.json
stdout_has 'q/k norm        per head'
stdout_has 'sliding_window  256 on layers 0, 2'
stdout_has 'P               172800 (decoder layers, norms included)'
must_fail 2 rl-info --tensors ../config/qwen3-8b.json
# a key realign neither reads nor knows to be harmless is named, not refused
jq '. + {quantization_config: {quant_method: "fp8"}}' ../config/qwen3-8b.json >"$T/q.json"
must_pass rl-info "$T/q.json"
stdout_has 'unread keys     quantization_config (realign does not know them; ignored)'
must_pass rl-info --json ../config/qwen3-8b.json
[ "$(jq -r .unread_keys "$T/stdout")" = "" ] || fail "qwen3-8b: unread keys"
# ---- this CPU and the kernels: as /proc/cpuinfo's flags say (Linux); bf16
# kernels only for bf16 weights, and only where the CPU has bf16 dot products
must_pass rl-info --json models/gemma-bf16
cpu=$(jq -r .cpu "$T/stdout") k32=$(jq -r .kernels.fp32 "$T/stdout") k16=$(jq -r .kernels.bf16 "$T/stdout")
[ -n "$k32" ] && [ -n "$k16" ] || fail "kernels missing"
case "$k32" in *amx* | *bf16-*) fail "fp32 kernels include bf16 ones: $k32" ;; esac
if [ -r /proc/cpuinfo ]; then
	flags=$(grep -m1 '^flags' /proc/cpuinfo)
	has() { echo "$flags" | grep -qw "$1"; }
	if has avx512_bf16; then
		case "$k16" in *bf16-dot*) ;; *) fail "cpuinfo has avx512_bf16, kernels: $k16" ;; esac
	else
		[ "$k16" = "$k32" ] || fail "no avx512_bf16, yet bf16 kernels: $k16"
	fi
	if has avx2 && has fma; then
		case "$cpu" in *avx2*) ;; *) fail "cpuinfo has avx2 and fma; rl-info: $cpu" ;; esac
	fi
	if ! has avx512f; then
		case "$cpu$k32" in *avx512*) fail "no avx512f in cpuinfo: $cpu, $k32" ;; esac
	fi
	if has amx_bf16 && has amx_tile; then
		case "$k16" in *amx*) ;; *) echo "note: AMX in cpuinfo but not usable: $cpu" ;; esac
	fi
fi
# the batch-invariant kernel is the one the choice gives many rows (the last
# one the description names)
for p in fp32 bf16; do
	[ "$(jq -r ".kernels.$p" "$T/stdout" | sed 's/.*, //; s/ (.*//')" = \
		"$(jq -r ".kernels_batch_invariant.$p" "$T/stdout")" ] ||
		fail "$p: batch-invariant kernel $(jq -c . "$T/stdout")"
done
ok "cpu '$cpu'; kernels fp32 '$k32', bf16 '$k16'"
# RL_CPU_MAX caps the kernels at a lesser machine's (cpu.h): none is the
# portable path everywhere; avx2, on a machine with AVX2, is AVX2's kernels at
# both precisions; a value it does not know caps nothing and says so
run env RL_CPU_MAX=none rl-info --json models/gemma-bf16
[ "$(jq -r .kernels.fp32 "$T/stdout")/$(jq -r .kernels.bf16 "$T/stdout")" = portable/portable ] ||
	fail "RL_CPU_MAX=none: $(cat "$T/stdout")"
[ "$(jq -r .cpu "$T/stdout")" = "none (RL_CPU_MAX=none)" ] || fail "RL_CPU_MAX=none: cpu $(jq -r .cpu "$T/stdout")"
[ "$(jq -r .attention_kernel "$T/stdout")" = portable ] || fail "RL_CPU_MAX=none: attention $(jq -r .attention_kernel "$T/stdout")"
case "$cpu" in *avx2*)
	run env RL_CPU_MAX=avx2 rl-info --json models/gemma-bf16
	case "$(jq -r .kernels.fp32 "$T/stdout") $(jq -r .kernels.bf16 "$T/stdout")" in
	*avx512* | *bf16* | *amx* | *portable*) fail "RL_CPU_MAX=avx2: $(jq -c .kernels "$T/stdout")" ;;
	*avx2-dot*avx2-dot*) ;;
	*) fail "RL_CPU_MAX=avx2: $(jq -c .kernels "$T/stdout")" ;;
	esac
	# gemma-bf16's head_dim is a multiple of 8: the AVX2 decoding attention
	[ "$(jq -r '.head_dim % 8' "$T/stdout")/$(jq -r .attention_kernel "$T/stdout")" = 0/avx2 ] ||
		fail "RL_CPU_MAX=avx2: attention $(jq -c '[.head_dim, .attention_kernel]' "$T/stdout")" ;;
esac
run env RL_CPU_MAX=avx3 rl-info --json models/gemma-bf16
[ "$(jq -r .kernels.bf16 "$T/stdout")" = "$k16" ] || fail "RL_CPU_MAX=avx3 changed the kernels"
case "$(jq -r .cpu "$T/stdout")" in *"RL_CPU_MAX=avx3 not known: ignored"*) ;; *)
	fail "RL_CPU_MAX=avx3: cpu $(jq -r .cpu "$T/stdout")" ;; esac
ok "RL_CPU_MAX caps the kernels (none, avx2), the attention kernel too, and names a value it does not know"
must_pass rl-info --json models/mistral-f16
[ "$(jq -r .kernels.bf16 "$T/stdout")" = "$(jq -r .kernels.fp32 "$T/stdout")" ] ||
	fail "f16 weights: bf16 kernels"
must_pass rl-info models/gemma-bf16
stdout_has "kernels bf16    $k16"

# ---- options
must_pass rl-info --help
stdout_has 'Usage: rl-info'
must_pass rl-info --version
# -m MODEL, as every other tool takes it: the same output as the operand
rl-info --json models/llama-sharded >"$T/operand.json"
must_pass rl-info -m models/llama-sharded --json
test_cmp "$T/operand.json" "$T/stdout"
must_pass rl-info --json --tensors --model official/dtypes.safetensors
[ "$(jq .n_tensors "$T/stdout")" = 15 ] || fail "--model FILE.safetensors: n_tensors"
must_fail 2 rl-info -m models/llama-sharded models/qwen2-tied
stderr_has "give the model once"
must_fail 2 rl-info -m
must_fail 2 rl-info
must_fail 2 rl-info models/llama-sharded models/qwen2-tied
must_fail 2 rl-info --bogus models/llama-sharded
must_fail 2 rl-info -L 0 models/llama-sharded
must_fail 2 rl-info -L x models/llama-sharded
must_fail 2 rl-info -L 4 models/llama-sharded
stderr_has "-L 4 exceeds the model's 3 layers"
must_fail 2 rl-info -L 1 official/with_meta.safetensors
must_fail 3 rl-info models/does-not-exist
stderr_has "rl-info: 'models/does-not-exist': No such file or directory"
if [ -w /dev/full ]; then
	must_fail 4 sh -c 'rl-info models/llama-sharded >/dev/full'
fi

# ---- allocation failures: every third rl_* allocation of a sharded open fails
# in turn (1, 4, 7, ...; all of them take ~240 runs, too slow under ASan); each is
# a clean exit 4 with a message (under make SANITIZE=... also no leak and no use
# of a half-built model), until the first n past the last allocation
n=1
while :; do
	run env RL_FAIL_ALLOC=$n rl-info --json --tensors --hash models/llama-sharded
	[ "$rc" -eq 0 ] && break
	[ "$rc" -eq 4 ] || fail "RL_FAIL_ALLOC=$n: exit $rc: $(cat "$T/stderr")"
	[ ! -s "$T/stdout" ] || fail "RL_FAIL_ALLOC=$n: output despite the failure"
	grep -q '^rl-info: ' "$T/stderr" || fail "RL_FAIL_ALLOC=$n: no message"
	n=$((n + 3))
	[ $n -lt 2000 ] || fail "RL_FAIL_ALLOC never stops failing"
done
[ $n -gt 50 ] || fail "only $n allocations: RL_FAIL_ALLOC not honoured?"
ok "allocation failures 1..$((n - 1)): exit 4, no output"

# ---- the man page's EXAMPLES
must_pass sh -c "rl-info --json -L 2 models/llama-sharded | jq '.P, .candidate_numel'"
[ "$(tr '\n' ' ' <"$T/stdout")" = "5856 3840 " ] || fail "man example: $(cat "$T/stdout")"
must_pass rl-info --tensors --hash models/qwen2-tied
stdout_has 'content_hash    '
stdout_has "model.layers.0.self_attn.q_proj.bias	BF16	[16]	model.safetensors	candidate"
must_pass rl-info --tensors official/with_meta.safetensors
stdout_has "w	F32	[3, 3]"

# ---- the malformed corpus: every case exit 3 with its golden message
ls -d bad/files/*.safetensors bad/models/* | sort >"$T/cases"
cat >"$T/golden" <<'GOLDEN'
bad/files/bytes-after-data.safetensors|'bad/files/bytes-after-data.safetensors': 1 bytes after the last tensor (the data section has 13, the tensors cover 12)
bad/files/deep-nesting.safetensors|'bad/files/deep-nesting.safetensors': header: nesting too deep at byte 144
bad/files/duplicate-field.safetensors|'bad/files/duplicate-field.safetensors': tensor 'a': duplicate field 'dtype'
bad/files/duplicate-name.safetensors|'bad/files/duplicate-name.safetensors': duplicate tensor name 'a'
bad/files/empty.safetensors|'bad/files/empty.safetensors': empty file
bad/files/entry-not-object.safetensors|'bad/files/entry-not-object.safetensors': tensor 'a': entry is not a JSON object
bad/files/gap.safetensors|'bad/files/gap.safetensors': tensor 'b': data_offsets [8, 12] leave a gap after byte 4 of the data section
bad/files/header-past-eof.safetensors|'bad/files/header-past-eof.safetensors': header length 1000 exceeds the file (10 bytes): truncated or not a safetensors file
bad/files/header-too-large.safetensors|'bad/files/header-too-large.safetensors': header length 100000001 exceeds the limit of 100000000 bytes (not a safetensors file?)
bad/files/lfs-pointer.safetensors|'bad/files/lfs-pointer.safetensors' is a Git LFS pointer, not the weights: run git lfs pull
bad/files/lone-surrogate.safetensors|'bad/files/lone-surrogate.safetensors': header: lone high surrogate in \u escape at byte 17
bad/files/metadata-duplicate-key.safetensors|'bad/files/metadata-duplicate-key.safetensors': duplicate __metadata__ key 'format'
bad/files/metadata-nested.safetensors|'bad/files/metadata-nested.safetensors': __metadata__ value of 'format' is not a string (__metadata__ maps strings to strings)
bad/files/metadata-not-string.safetensors|'bad/files/metadata-not-string.safetensors': __metadata__ value of 'format' is not a string (__metadata__ maps strings to strings)
bad/files/missing-dtype.safetensors|'bad/files/missing-dtype.safetensors': tensor 'a': missing "dtype"
bad/files/not-from-zero.safetensors|'bad/files/not-from-zero.safetensors': tensor 'a': data_offsets [4, 8] leave a gap after byte 0 of the data section
bad/files/not-json.safetensors|'bad/files/not-json.safetensors': tensor 'a': entry is not a JSON object
bad/files/not-object.safetensors|'bad/files/not-object.safetensors': header is not a JSON object
bad/files/not-utf8.safetensors|'bad/files/not-utf8.safetensors': header is not valid UTF-8
bad/files/nul-in-name.safetensors|'bad/files/nul-in-name.safetensors': header: NUL character in string at byte 17
bad/files/offsets-beyond-u64.safetensors|'bad/files/offsets-beyond-u64.safetensors': tensor 'a': data_offsets: integer out of range at byte 77
bad/files/offsets-reversed.safetensors|'bad/files/offsets-reversed.safetensors': tensor 'a': data_offsets [4, 0] end before they begin
bad/files/offsets-three.safetensors|'bad/files/offsets-three.safetensors': tensor 'a': data_offsets must hold exactly 2 integers
bad/files/overlap.safetensors|'bad/files/overlap.safetensors': tensor 'b': data_offsets [4, 8] overlap 'a'
bad/files/shape-fraction.safetensors|'bad/files/shape-fraction.safetensors': tensor 'a': shape: expected an integer, not a fraction at byte 38
bad/files/shape-negative.safetensors|'bad/files/shape-negative.safetensors': tensor 'a': shape: expected a non-negative integer at byte 37
bad/files/shape-overflow.safetensors|'bad/files/shape-overflow.safetensors': tensor 'a': shape [4294967296, 4294967296] overflows 64 bits
bad/files/short.safetensors|'bad/files/short.safetensors': too small for a safetensors file (3 bytes; the header length alone takes 8)
bad/files/size-mismatch.safetensors|'bad/files/size-mismatch.safetensors': tensor 'a': data_offsets [0, 12] hold 12 bytes but F32 [2, 2] needs 16
bad/files/too-many-dims.safetensors|'bad/files/too-many-dims.safetensors': tensor 'a': more than 8 dimensions
bad/files/trailing-garbage.safetensors|'bad/files/trailing-garbage.safetensors': header: trailing characters after the JSON object at byte 11
bad/files/truncated-data.safetensors|'bad/files/truncated-data.safetensors': tensors need 12 bytes of data but the file has 9: truncated
bad/files/truncated-header.safetensors|'bad/files/truncated-header.safetensors': header length 108 exceeds the file (20 bytes): truncated or not a safetensors file
bad/files/unknown-dtype.safetensors|'bad/files/unknown-dtype.safetensors': tensor 'a': unknown dtype 'INT4'
bad/models/config-bad-type|'bad/models/config-bad-type/config.json': "num_hidden_layers" must be an integer in [1, 1000000]
bad/models/config-duplicate-key|'bad/models/config-duplicate-key/config.json': duplicate key "hidden_size"
bad/models/config-malformed|'bad/models/config-malformed/config.json': malformed JSON near byte 38
bad/models/config-unknown-arch|'bad/models/config-unknown-arch/config.json': unsupported architecture 'GPTNeoXForCausalLM' (realign supports LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GemmaForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Olmo2ForCausalLM, Phi3ForCausalLM)
bad/models/config-yarn-rope|'bad/models/config-yarn-rope/config.json': rope type 'yarn' is not supported (realign supports default, linear, llama3)
bad/models/extra-bias|'bad/models/extra-bias': tensor 'model.layers.0.self_attn.q_proj.bias' is present but config.json says the model has no q_proj.bias (attention_bias/mlp_bias)
bad/models/index-duplicate-key|'bad/models/index-duplicate-key/model.safetensors.index.json': duplicate key "model.embed_tokens.weight" in "weight_map"
bad/models/index-malformed|'bad/models/index-malformed/model.safetensors.index.json': malformed JSON near byte 20
bad/models/index-missing-from-shard|'bad/models/index-missing-from-shard/model.safetensors.index.json': tensor 'model.layers.9.ghost.weight' is missing from 'bad/models/index-missing-from-shard/model-00001-of-00008.safetensors'
bad/models/index-missing-shard-file|'bad/models/index-missing-shard-file/model-00003-of-00008.safetensors': No such file or directory
bad/models/index-not-listed|'bad/models/index-not-listed/model-00002-of-00008.safetensors': tensor 'model.layers.0.self_attn.k_proj.weight' is not in the index 'bad/models/index-not-listed/model.safetensors.index.json'
bad/models/index-path-escape|'bad/models/index-path-escape/model.safetensors.index.json': weight_map entry 'model.embed_tokens.weight' must name a file in the model directory
bad/models/index-two-shards|'bad/models/index-two-shards/model.safetensors.index.json': tensor 'model.embed_tokens.weight' is in two shards, 'bad/models/index-two-shards/model-00001-of-00008.safetensors' and 'bad/models/index-two-shards/model-00002-of-00008.safetensors'
bad/models/index-wrong-shard|'bad/models/index-wrong-shard/model.safetensors.index.json': tensor 'model.embed_tokens.weight' is missing from 'bad/models/index-wrong-shard/model-00002-of-00008.safetensors'
bad/models/layer-beyond-config|'bad/models/layer-beyond-config': tensor 'model.layers.1.input_layernorm.weight' belongs to layer 1 but config.json has num_hidden_layers 1
bad/models/lfs-pointer|'bad/models/lfs-pointer/model.safetensors' is a Git LFS pointer, not the weights: run git lfs pull
bad/models/missing-tensor|'bad/models/missing-tensor': missing tensor 'model.layers.1.mlp.up_proj.weight'
bad/models/no-config|'bad/models/no-config/config.json': No such file or directory
bad/models/no-weights|'bad/models/no-weights': no model.safetensors or model.safetensors.index.json
bad/models/truncated-shard|'bad/models/truncated-shard/model-00002-of-00008.safetensors': tensors need 512 bytes of data but the file has 507: truncated
bad/models/untied-without-lm-head|'bad/models/untied-without-lm-head': missing tensor 'lm_head.weight' (config.json has tie_word_embeddings false)
bad/models/wrong-shape|'bad/models/wrong-shape': tensor 'model.layers.0.mlp.down_proj.weight' has shape [8, 8], config.json implies [8, 12]
GOLDEN
cut -d'|' -f1 "$T/golden" | sort >"$T/golden-cases"
test_cmp "$T/cases" "$T/golden-cases"
while IFS='|' read -r case msg; do
	must_fail 3 rl-info "$case"
	printf 'rl-info: %s\n' "$msg" >"$T/want"
	test_cmp "$T/want" "$T/stderr"
done <"$T/golden"
finish
