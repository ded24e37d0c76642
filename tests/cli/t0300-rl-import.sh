#!/bin/sh
# rl-import: GGUF models (tests/fixtures/import/, made by llama.cpp's converter)
# become model directories realign reads; real vocabularies (qwen2_5 byte-level,
# mistral_v01 SentencePiece) become tokenizers that give HuggingFace tokenizers'
# ids on the whole conformance corpus, with the chat template byte for byte; a
# split model reads as one; failures leave no DIR and no temporary directory;
# options and refusals. The tensors and logits against transformers are
# test_import's.
. "$RL_TESTS/lib.sh"
command -v jq >/dev/null || fail "jq is not installed (make deps installs it)"
command -v xz >/dev/null || fail "xz is not installed (make deps installs it)"
M="$F/import/models"
TF="$F/tokenizer"

no_leftovers() {
	left=$(find "$T" -maxdepth 1 -name '*.tmp.*' | head -n 1)
	[ -z "$left" ] || fail "temporary directory left behind: $left"
	ok "no temporary directory left"
}

# ---- options
must_pass rl-import --help
stdout_has "Usage: rl-import"
must_pass rl-import --version
must_fail 2 rl-import "$M/llama_f32/model.gguf"
stderr_has "rl-import: missing -o DIR"
must_fail 2 rl-import --dtype f8 "$M/llama_f32/model.gguf" -o "$T/x"
must_fail 2 rl-import --max-shard-size 12Q "$M/llama_f32/model.gguf" -o "$T/x"
must_fail 2 rl-import -o "$T/x"

# ---- a model: what rl-info and rl-tok see
must_pass rl-import -q --dtype f32 "$M/llama_f32/model.gguf" -o "$T/llama"
[ ! -s "$T/stdout" ] || fail "rl-import wrote on stdout"
[ ! -s "$T/stderr" ] || fail "-q: rl-import wrote on stderr: $(cat "$T/stderr")"
for f in config.json generation_config.json tokenizer.json tokenizer_config.json \
	model.safetensors; do
	[ -s "$T/llama/$f" ] || fail "no $f"
done
must_pass rl-info --json "$T/llama"
[ "$(jq -r .architecture "$T/stdout")" = LlamaForCausalLM ] || fail "architecture"
[ "$(jq -r .dtype "$T/stdout")" = F32 ] || fail "dtype $(jq -r .dtype "$T/stdout")"
echo '{"prompt": "the lazy dog"}' >"$T/p.jsonl"
must_pass rl-tok -m "$T/llama" --raw -p "$T/p.jsonl"
[ "$(jq '.ids | length' "$T/stdout")" -gt 0 ] || fail "no ids"
no_leftovers
# without -q: one summary line on stderr (not a terminal: no progress)
must_pass rl-import "$M/gemma_f32/model.gguf" -o "$T/gemma"
stderr_has "rl-import: GemmaForCausalLM: 20 tensors"
must_pass rl-info --json "$T/gemma"
[ "$(jq -r .dtype "$T/stdout")" = BF16 ] || fail "default dtype is bf16"

# ---- DIR exists: refused, untouched; --force replaces it
must_fail 2 rl-import "$M/mistral_f16/model.gguf" -o "$T/llama"
stderr_has "'$T/llama' exists (use --force to replace it)"
must_pass rl-info --json "$T/llama"
[ "$(jq -r .dtype "$T/stdout")" = F32 ] || fail "the refused import changed DIR"
must_pass rl-import -q --force --dtype f16 "$M/mistral_f16/model.gguf" -o "$T/llama"
must_pass rl-info --json "$T/llama"
[ "$(jq -r .dtype "$T/stdout")" = F16 ] || fail "--force did not replace DIR"
no_leftovers

# ---- a split model from any part, and shards
must_pass rl-import -q --max-shard-size 8K "$M/qwen2_split/model-00003-of-00004.gguf" \
	-o "$T/qwen"
must_pass rl-info --json "$T/qwen"
[ "$(jq -r .architecture "$T/stdout")" = Qwen2ForCausalLM ] || fail "qwen architecture"
[ "$(jq .n_shards "$T/stdout")" -gt 2 ] || fail "--max-shard-size 8K: one shard"
[ -s "$T/qwen/model.safetensors.index.json" ] || fail "no shard index"
must_pass rl-import -q "$M/qwen2_split/model-00001-of-00004.gguf" -o "$T/qwen1"
must_pass rl-info --json --hash "$T/qwen1"
h1=$(jq -r .content_hash "$T/stdout")
must_pass rl-info --json --hash "$T/qwen"
[ "$(jq -r .content_hash "$T/stdout")" = "$h1" ] || fail "shards changed the tensors"
# --max-shard-size 0: one file, as the help says
must_pass rl-import -q --max-shard-size 0 "$M/qwen2_split/model-00002-of-00004.gguf" -o "$T/qwen0"
must_pass rl-info --json --hash "$T/qwen0"
[ "$(jq .n_shards "$T/stdout")" -eq 1 ] || fail "--max-shard-size 0: $(jq .n_shards "$T/stdout") shards"
[ "$(jq -r .content_hash "$T/stdout")" = "$h1" ] || fail "--max-shard-size 0 changed the tensors"

# ---- bad data: exit 3, no DIR, no temporary directory
head -c 3000 "$M/llama_f32/model.gguf" >"$T/trunc.gguf"
must_fail 3 rl-import "$T/trunc.gguf" -o "$T/bad"
[ ! -e "$T/bad" ] || fail "a failed import left DIR"
printf 'not a gguf file at all' >"$T/text.gguf"
must_fail 3 rl-import "$T/text.gguf" -o "$T/bad"
cp "$M/qwen2_split/model-00001-of-00004.gguf" "$T/model-00001-of-00004.gguf"
must_fail 3 rl-import "$T/model-00001-of-00004.gguf" -o "$T/bad"
[ ! -e "$T/bad" ] || fail "a failed import left DIR"
no_leftovers

# ---- real vocabularies: the corpus as tokenizers gives it, the template as shipped
jq -c '{prompt: .s}' "$TF/corpus.jsonl" >"$T/corpus.jsonl"
for v in qwen2_5 mistral_v01; do
	xz -dc "$F/import/vocab/$v.gguf.xz" >"$T/$v.gguf"
	must_pass rl-import --vocab-only -q "$T/$v.gguf" -o "$T/tok-$v"
	[ ! -e "$T/tok-$v/config.json" ] || fail "--vocab-only wrote config.json"
	must_pass rl-tok -m "$T/tok-$v" --raw -p "$T/corpus.jsonl"
	jq -c .ids "$T/stdout" >"$T/got-ids"
	jq -c .ids "$TF/$v.golden.jsonl" >"$T/want-ids"
	test_cmp "$T/want-ids" "$T/got-ids"
	xz -dc "$TF/$v/tokenizer_config.json.xz" | jq -j '.chat_template // ""' >"$T/want-tpl"
	jq -j '.chat_template // ""' "$T/tok-$v/tokenizer_config.json" >"$T/got-tpl"
	test_cmp "$T/want-tpl" "$T/got-tpl"
done
must_pass jq -r .bos_token,.eos_token,.add_bos_token "$T/tok-mistral_v01/tokenizer_config.json"
[ "$(tr '\n' ' ' <"$T/stdout")" = "<s> </s> true " ] || fail "mistral_v01 bos/eos"
echo '{"prompt": "Hi"}' | rl-tok -m "$T/tok-mistral_v01" --raw --add-special >"$T/out"
[ "$(jq -c .ids "$T/out")" = "[1,15359]" ] || fail "add_special: $(jq -c .ids "$T/out")"
# a vocabulary alone is not a model
must_fail 3 rl-import "$T/qwen2_5.gguf" -o "$T/bad"
stderr_has "token_embd.weight"
# an unknown pre-tokenizer is refused by name (same length: the file stays valid)
LC_ALL=C sed 's/tokenizer\.ggml\.pre\(.\{12\}\)qwen2/tokenizer.ggml.pre\1qwenX/' \
	"$T/qwen2_5.gguf" >"$T/pre.gguf"
must_fail 3 rl-import --vocab-only "$T/pre.gguf" -o "$T/bad"
stderr_has "pre-tokenizer 'qwenX' is not one rl-import knows"
# ---- rl-info on a GGUF: what rl-import would write, read without writing
# (against rl-info on the directories rl-import wrote; every architecture)
for d in "$M"/*/; do
	g=$(ls "$d"*.gguf | head -n 1)
	n=$(basename "$d")
	must_pass rl-import -q "$g" -o "$T/info-$n"
	if [ "$n" = olmo2_bf16 ]; then
		# OLMo 2's tokenizer (llama.cpp's 'dbrx' pre-tokenizer): the ids
		# llama.cpp's own tokenizer gives (tests/gen/gen_import_dbrx.py)
		jq -c '{prompt}' "$F/import/olmo2_dbrx_ids.jsonl" >"$T/dbrx-p"
		must_pass rl-tok -m "$T/info-$n" --raw -p "$T/dbrx-p"
		jq -c .ids "$T/stdout" >"$T/dbrx-got"
		jq -c .ids "$F/import/olmo2_dbrx_ids.jsonl" >"$T/dbrx-want"
		test_cmp "$T/dbrx-want" "$T/dbrx-got"
	fi
	must_pass rl-info --json "$T/info-$n"
	jq -S 'del(.path, .dtype, .shards, .tensors, .shape_id, .candidates, .candidate_elements,
		.n_tensors, .n_candidates, .candidate_numel, .n_shards, .unread_keys, .chat_template,
		.cpu, .kernels, .kernels_batch_invariant, .attention_kernel)' "$T/stdout" >"$T/want-info"
	must_pass rl-info --json "$g"
	jq -S 'del(.path, .gguf_version, .files, .gguf_architecture, .name, .n_tensors,
		.data_bytes, .tensor_types, .chat_template_bytes)' "$T/stdout" >"$T/got-info"
	test_cmp "$T/want-info" "$T/got-info"
	must_pass rl-info "$g"
	stdout_has "rl-import FILE -o DIR"
done
must_pass rl-info -t --json "$M/qwen2_split/model-00001-of-00004.gguf"
[ "$(jq '.files' "$T/stdout")" = 4 ] || fail "a split model's parts: $(jq .files "$T/stdout")"
jq -r '.tensors[].name' "$T/stdout" | sort >"$T/got-names"
must_pass rl-info -t --json "$T/info-qwen2_split"
jq -r '.tensors[].name' "$T/stdout" | sort >"$T/want-names"
test_cmp "$T/want-names" "$T/got-names"
must_fail 3 rl-info "$T/qwen2_5.gguf"
stderr_has "token_embd.weight"
no_leftovers
finish
