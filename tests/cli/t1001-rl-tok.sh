#!/bin/sh
# rl-tok: the whole corpus through the tool equals HuggingFace tokenizers' ids and
# decodes (tests/fixtures/tokenizer/*.golden.jsonl), the templates equal the
# Jinja-verified goldens, --train's n_prompt, the refusals (exit 2/3, message naming
# the file and line, nothing on stdout), and the man page's EXAMPLES.
. "$RL_TESTS/lib.sh"
command -v jq >/dev/null || fail "jq is not installed (make deps installs it)"
command -v xz >/dev/null || fail "xz is not installed (make deps installs it)"
TF="$F/tokenizer"
for m in mistral_v01 qwen2_5; do
	mkdir -p "$T/$m"
	xz -dc "$TF/$m/tokenizer.json.xz" >"$T/$m/tokenizer.json"
	xz -dc "$TF/$m/tokenizer_config.json.xz" >"$T/$m/tokenizer_config.json"
done

# ---- the corpus, raw: ids and decodes as tokenizers gives them
jq -c '{prompt: .s}' "$TF/corpus.jsonl" >"$T/corpus-prompts.jsonl"
for m in mistral_v01 qwen2_5; do
	must_pass rl-tok -m "$T/$m" --raw -p "$T/corpus-prompts.jsonl"
	jq -c .ids "$T/stdout" >"$T/got-ids"
	jq -c .ids "$TF/$m.golden.jsonl" >"$T/want-ids"
	test_cmp "$T/want-ids" "$T/got-ids"
	# decode(encode(s)) = tokenizers' decode (the string itself unless "dec" says otherwise)
	jq -c -n --slurpfile c "$TF/corpus.jsonl" --slurpfile g "$TF/$m.golden.jsonl" \
		'[$c, $g] | transpose[] | {ids: .[1].ids, want: (.[1].dec // .[0].s)}' >"$T/dec-in"
	must_pass rl-tok -m "$T/$m" --decode -p "$T/dec-in"
	jq -c .want "$T/stdout" >"$T/want-dec"
	jq -c .text "$T/stdout" >"$T/got-dec"
	test_cmp "$T/want-dec" "$T/got-dec"
	ok "$m: $(wc -l <"$T/want-ids") corpus strings encode and decode as tokenizers does"
done
# --add-special: the post-processor's BOS for Mistral, nothing for Qwen
echo '{"prompt": "Hi"}' | rl-tok -m "$T/mistral_v01" --raw --add-special >"$T/out"
[ "$(jq -c .ids "$T/out")" = "[1,15359]" ] || fail "--add-special: $(cat "$T/out")"
echo '{"prompt": "Hi"}' | rl-tok -m "$T/qwen2_5" --raw --add-special >"$T/out"
[ "$(jq -c .ids "$T/out")" = "[13048]" ] || fail "--add-special qwen: $(cat "$T/out")"
ok "--add-special follows the post-processor"

# ---- templates: text and ids equal the goldens (Jinja-rendered by transformers)
for tm in "mistral_v01 llama-2" "mistral_v01 mistral" "qwen2_5 chatml" "qwen2_5 qwen2.5"; do
	set -- $tm
	for sys in null '"Be brief."' '""'; do
		jq -c --arg t "$2" --arg m "$1" --argjson s "$sys" \
			'select(.template == $t and .model == $m and .system == $s)' \
			"$TF/templates.jsonl" >"$T/rows"
		[ -s "$T/rows" ] || continue
		jq -c '{prompt}' "$T/rows" >"$T/in"
		if [ "$sys" = null ]; then
			run rl-tok -m "$T/$1" --template "$2" -p "$T/in"
		else
			run rl-tok -m "$T/$1" --template "$2" --system "$(echo "$sys" | jq -r .)" -p "$T/in"
		fi
		[ "$rc" -eq 0 ] || fail "template $2: exit $rc: $(cat "$T/stderr")"
		jq -c '[.text, .ids]' "$T/rows" >"$T/want"
		jq -c '[.text, .ids]' "$T/stdout" >"$T/got"
		test_cmp "$T/want" "$T/got"
		jq -c '{prompt, response: .answer}' "$T/rows" >"$T/train-in"
		if [ "$sys" = null ]; then
			run rl-tok -m "$T/$1" --template "$2" --train -p "$T/train-in"
		else
			run rl-tok -m "$T/$1" --template "$2" --system "$(echo "$sys" | jq -r .)" \
				--train -p "$T/train-in"
		fi
		[ "$rc" -eq 0 ] || fail "template $2 --train: exit $rc: $(cat "$T/stderr")"
		jq -c '[.train_text, .train_ids, .n_prompt]' "$T/rows" >"$T/want"
		jq -c '[.text, .ids, .n_prompt]' "$T/stdout" >"$T/got"
		test_cmp "$T/want" "$T/got"
	done
done
# the model's own Jinja template by default (-v says where from); on a plain
# prompt Qwen2.5's renders what the built-in copy does, which warns that it
# stands in for the model's own
echo '{"prompt": "Hi"}' >"$T/hi.jsonl"
must_pass rl-tok -v -m "$T/qwen2_5" -p "$T/hi.jsonl"
stderr_has "template: the model's own, from '$T/qwen2_5/tokenizer_config.json'"
cp "$T/stdout" "$T/own"
must_pass rl-tok -m "$T/qwen2_5" --template qwen2.5 -p "$T/hi.jsonl"
stderr_has "warning: --template qwen2.5: realign's built-in copy of the reference's template"
test_cmp "$T/own" "$T/stdout"
# a template file with {system}, {prompt} and {answer}
printf 'SYS={system}|Q: {prompt}\nA:{answer}<END>' >"$T/my.tmpl"
must_pass rl-tok -m "$T/qwen2_5" --template "$T/my.tmpl" --system S -p "$T/hi.jsonl"
[ "$(jq -r .text "$T/stdout")" = "$(printf 'SYS=S|Q: Hi\nA:')" ] || fail "file template: $(cat "$T/stdout")"
echo '{"prompt": "Hi", "response": " yes"}' |
	rl-tok -m "$T/qwen2_5" --template "$T/my.tmpl" --train >"$T/out"
[ "$(jq -r .text "$T/out")" = "$(printf 'SYS=|Q: Hi\nA: yes<END>')" ] || fail "file template --train"
ok "template file"
# other fields are kept; {"ids"} items are decoded
printf '{"id": 7, "prompt": "Hi"}\n{"ids": [13048, 151645]}\n' |
	rl-tok -m "$T/qwen2_5" --raw >"$T/out"
[ "$(jq -c '[.id, .text]' "$T/out" | tr '\n' ' ')" = '[7,"Hi"] [null,"Hi<|im_end|>"] ' ] ||
	fail "fields: $(cat "$T/out")"
echo '{"ids": [13048, 151645]}' | rl-tok -m "$T/qwen2_5" --decode --skip-special >"$T/out"
[ "$(jq -r .text "$T/out")" = Hi ] || fail "--skip-special: $(cat "$T/out")"
ok "fields kept, ids decoded, --skip-special"

# ---- refusals: exit code, message, nothing on stdout
must_fail 3 rl-tok -m "$T" -p "$T/hi.jsonl"
stderr_has "tokenizer.json': no tokenizer.json"
must_fail 3 rl-tok -m "$T/mistral_v01" -p "$T/hi.jsonl"
stderr_has "the model has no chat template (no chat_template.jinja, no chat_template in tokenizer_config.json; use --template FILE|NAME or --raw)"
for type in WordPiece Unigram; do
	mkdir -p "$T/$type"
	printf '{"model": {"type": "%s", "vocab": {"a": 0}}}\n' "$type" >"$T/$type/tokenizer.json"
	must_fail 3 rl-tok -m "$T/$type" --raw -p "$T/hi.jsonl"
	stderr_has "unsupported model type '$type'"
done
mkdir -p "$T/bad"
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},\n  "normalizer": {"type": ' \
	>"$T/bad/tokenizer.json"
must_fail 3 rl-tok -m "$T/bad" --raw -p "$T/hi.jsonl"
stderr_has "bad/tokenizer.json': malformed JSON near line 2"
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}' >"$T/bad/tokenizer.json"
must_fail 3 rl-tok -m "$T/bad" --raw -p "$T/hi.jsonl"
stderr_has "BPE model has an empty merges list"
printf '{"prompt": "fine"}\n{"prompt": "broken"\n' >"$T/malformed.jsonl"
must_fail 3 rl-tok -m "$T/mistral_v01" --raw -p "$T/malformed.jsonl"
stderr_has "malformed.jsonl' line 2: malformed JSON"
printf '{"prompt": "fine"}\n\n{"prompt": "bad \377 byte"}\n' >"$T/badutf.jsonl"
must_fail 3 rl-tok -m "$T/mistral_v01" --raw -p "$T/badutf.jsonl"
stderr_has "badutf.jsonl' line 3: invalid UTF-8"
# U+0000 is text: the strings with it encode and decode as tokenizers does
# (unicode.jsonl.xz holds them as code point lists), other fields come back as
# they were; a key with it is refused
for m in mistral_v01 qwen2_5; do
	xz -dc "$TF/unicode.jsonl.xz" | jq -c --arg m "$m" 'select(.tok == $m and (.s | index([0])))' \
		>"$T/nul-rows"
	[ "$(wc -l <"$T/nul-rows")" -ge 10 ] || fail "$m: too few U+0000 rows in unicode.jsonl.xz"
	jq -c '{prompt: (.s | implode), meta: ("x" + (.s | implode))}' "$T/nul-rows" >"$T/nul.jsonl"
	must_pass rl-tok -m "$T/$m" --raw -p "$T/nul.jsonl"
	jq -c '[.prompt, .meta, .ids]' "$T/stdout" >"$T/got"
	jq -c '[(.s | implode), ("x" + (.s | implode)), .ids]' "$T/nul-rows" >"$T/want"
	test_cmp "$T/want" "$T/got"
	jq -c '{ids}' "$T/nul-rows" >"$T/nul-ids.jsonl"
	must_pass rl-tok -m "$T/$m" --decode -p "$T/nul-ids.jsonl"
	jq -c .text "$T/stdout" >"$T/got"
	jq -c '.dec | implode' "$T/nul-rows" >"$T/want"
	test_cmp "$T/want" "$T/got"
	ok "$m: $(wc -l <"$T/nul-rows") strings with U+0000 encode and decode as tokenizers does"
done
printf '{"prompt": "a\\u0000b", "response": "\\u0000"}\n' >"$T/nul-train.jsonl"
must_pass rl-tok -m "$T/qwen2_5" --template chatml --train -p "$T/nul-train.jsonl"
[ "$(jq -c .text "$T/stdout")" = '"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\na\u0000b<|im_end|>\n<|im_start|>assistant\n\u0000<|im_end|>\n"' ] ||
	fail "--train with U+0000: $(cat "$T/stdout")"
printf '{"prompt": "a", "k\\u0000": 1}\n' >"$T/nul-key.jsonl"
must_fail 3 rl-tok -m "$T/mistral_v01" --raw -p "$T/nul-key.jsonl"
stderr_has "nul-key.jsonl' line 1: U+0000 (\\u0000) in a key"
printf '{"text": "no prompt"}\n' >"$T/noprompt.jsonl"
must_fail 3 rl-tok -m "$T/mistral_v01" --raw -p "$T/noprompt.jsonl"
stderr_has "noprompt.jsonl' line 1: no \"prompt\" string"
printf '{"ids": [1, 32000]}\n' >"$T/badid.jsonl"
must_fail 3 rl-tok -m "$T/mistral_v01" --decode -p "$T/badid.jsonl"
stderr_has "line 1: \"ids\" element 1 is not a token id in [0, 32000)"
must_fail 2 rl-tok -m "$T/mistral_v01" --template nosuch -p "$T/hi.jsonl"
stderr_has "'nosuch': neither a built-in template"
must_fail 2 rl-tok -m "$T/qwen2_5" --raw --template chatml
must_fail 2 rl-tok -p "$T/hi.jsonl"
must_fail 2 rl-tok -m "$T/qwen2_5" --skip-special
must_pass rl-tok --help
stdout_has "Usage: rl-tok -m MODEL"

# ---- the man page's EXAMPLES (Qwen2.5-7B-Instruct's tokenizer is Qwen2.5's)
ln -s "$T/qwen2_5" "$T/Qwen2.5-7B-Instruct"
cd "$T"
echo '{"prompt": "How do I bake bread?"}' | rl-tok -m Qwen2.5-7B-Instruct >"$T/ex1"
jq -e '.text | startswith("<|im_start|>system\nYou are Qwen")' "$T/ex1" >/dev/null || fail "example 1"
echo '{"prompt": "How do I bake bread?"}' |
	rl-tok -v -m Qwen2.5-7B-Instruct --template chatml --system '' >"$T/ex2" 2>"$T/ex2err"
jq -e '.text == "<|im_start|>user\nHow do I bake bread?<|im_end|>\n<|im_start|>assistant\n"' \
	"$T/ex2" >/dev/null || fail "example 2"
grep -q "template: built-in chatml (--template)" "$T/ex2err" || fail "example 2 stderr"
rl-tok -m Qwen2.5-7B-Instruct >"$T/ex-conv" <<'EOF'
{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bread?"}], "add_generation_prompt": true}
EOF
jq -e '.text | endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBread?<|im_end|>\n<|im_start|>assistant\n")' \
	"$T/ex-conv" >/dev/null || fail "example: conversation: $(cat "$T/ex-conv")"
echo '{"ids": [151644, 872, 198, 9707]}' |
	rl-tok -m Qwen2.5-7B-Instruct --decode --skip-special >"$T/ex3"
[ "$(jq -r .text "$T/ex3")" = "$(printf 'user\nHello')" ] || fail "example 3: $(cat "$T/ex3")"
printf '{"prompt": "Hi", "response": "Hello!"}\n' >task.jsonl
[ "$(rl-tok -m Qwen2.5-7B-Instruct --train -p task.jsonl | jq .n_prompt)" = 30 ] || fail "example 4"
ok "man page examples"
finish
