#!/bin/sh
# rl-tok renders every family's own Jinja chat template exactly as transformers'
# apply_chat_template(..., tokenize=True) does (tests/gen/gen_chat.py): one-turn
# prompts with and without --system, training texts and their n_prompt, whole
# conversations with template keywords; raise_exception is the error (exit 3);
# the template's origin is named by -v (the config, chat_template.jinja beside it,
# --template FILE); a GGUF file's template through rl-import as transformers
# renders the GGUF file itself. The Llama 3.x and Gemma tokenizers are read from
# shared/tokenizers (not committed, see tests/fixtures/tokenizer/README.md).
. "$RL_TESTS/lib.sh"
command -v jq >/dev/null || fail "jq is not installed (make deps installs it)"
command -v xz >/dev/null || fail "xz is not installed (make deps installs it)"
C="$F/chat"
TF="$F/tokenizer"
RL_STRFTIME_NOW=$(jq -r .now "$C/families.json")
export RL_STRFTIME_NOW

# tokenizer_files FOLDER DIR: the committed xz copies, else shared/tokenizers.
tokenizer_files() {
	mkdir -p "$2"
	if [ -f "$TF/$1/tokenizer.json.xz" ]; then
		xz -dc "$TF/$1/tokenizer.json.xz" >"$2/tokenizer.json"
		xz -dc "$TF/$1/tokenizer_config.json.xz" >"$2/tokenizer_config.json"
		return 0
	fi
	for d in "${RL_SHARED_TOKENIZERS:-}" "$RL_TESTS/../../shared/tokenizers"; do
		if [ -n "$d" ] && [ -f "$d/$1/tokenizer.json" ]; then
			ln -s "$d/$1/tokenizer.json" "$2/tokenizer.json"
			cp "$d/$1/tokenizer_config.json" "$2/tokenizer_config.json"
			return 0
		fi
	done
	return 1
}

# tok FAMILY-ARGS SYSTEM TRAIN INPUT: rl-tok with --system SYSTEM unless it is
# JSON null, --train when TRAIN is true.
tok() {
	args=$1
	sys=$2
	train=$3
	shift 3
	set -- "$@"
	[ "$train" = true ] && set -- --train "$@"
	if [ "$sys" = null ]; then
		run rl-tok $args "$@"
	else
		run rl-tok $args --system "$(printf '%s' "$sys" | jq -r .)" "$@"
	fi
}

checked=0
for fam in $(jq -r '.families[].name' "$C/families.json"); do
	jq -c --arg f "$fam" '.families[] | select(.name == $f)' "$C/families.json" >"$T/meta"
	folder=$(jq -r .tokenizer "$T/meta")
	how=$(jq -r .how "$T/meta")
	tmpl="$F/jinja/templates/$(jq -r .template "$T/meta").jinja"
	D="$T/$fam"
	if [ "$how" = gguf ]; then
		# the GGUF path: rl-import writes the file's tokenizer.chat_template
		xz -dc "$F/$folder" >"$T/$fam.gguf"
		must_pass rl-import --vocab-only -q "$T/$fam.gguf" -o "$D"
	elif ! tokenizer_files "$folder" "$D"; then
		echo "$fam: tokenizer files not found (shared/tokenizers)${RL_TOK_ONLY_COMMITTED:+: NOT CHECKED (RL_TOK_ONLY_COMMITTED is set)}" >&2
		[ -n "${RL_TOK_ONLY_COMMITTED:-}" ] || fail "$fam: real tokenizer files not available"
		continue
	fi
	args="-m $D"
	case $how in
	own | gguf) origin="the model's own, from '$D/tokenizer_config.json'" ;;
	beside)
		cp "$tmpl" "$D/chat_template.jinja"
		origin="the model's own, from '$D/chat_template.jinja'"
		;;
	config)
		jq --rawfile t "$tmpl" '.chat_template = $t' "$D/tokenizer_config.json" >"$T/cfg"
		mv "$T/cfg" "$D/tokenizer_config.json"
		origin="the model's own, from '$D/tokenizer_config.json'"
		;;
	file)
		args="$args --template $tmpl"
		origin="Jinja file '$tmpl' (--template)"
		;;
	esac
	echo '{"prompt": "Hi"}' >"$T/hi.jsonl"
	must_pass rl-tok -v $args -p "$T/hi.jsonl"
	stderr_has "template: $origin"

	for sys in null '"Be brief."' '""'; do
		for train in false true; do
			jq -c --argjson s "$sys" --argjson t "$train" \
				'select(.system == $s and .train == $t and .want.text != null)' \
				"$C/$fam.jsonl" >"$T/rows"
			[ -s "$T/rows" ] || continue
			jq -c .in "$T/rows" >"$T/in"
			tok "$args" "$sys" "$train" -p "$T/in"
			[ "$rc" -eq 0 ] || fail "$fam system $sys train $train: exit $rc: $(cat "$T/stderr")"
			if [ "$train" = true ]; then
				jq -c '[.want.text, .want.ids, .want.n_prompt]' "$T/rows" >"$T/want"
				jq -c '[.text, .ids, .n_prompt]' "$T/stdout" >"$T/got"
				# the fallback split is reported, once
				if jq -e 'select(.want.prefix == false)' "$T/rows" >/dev/null; then
					grep -qF "generation prompt is not a prefix" "$T/stderr" ||
						fail "$fam: no warning about the fallback split"
				fi
			else
				jq -c '[.want.text, .want.ids]' "$T/rows" >"$T/want"
				jq -c '[.text, .ids]' "$T/stdout" >"$T/got"
			fi
			test_cmp "$T/want" "$T/got"
			checked=$((checked + $(wc -l <"$T/want")))
		done
	done
	# raise_exception's message is the error; other failures are exit 3 too
	jq -c 'select(.want.text == null)' "$C/$fam.jsonl" >"$T/bad"
	while IFS= read -r row; do
		printf '%s\n' "$row" | jq -c .in >"$T/in1"
		sys=$(printf '%s\n' "$row" | jq -c .system)
		train=$(printf '%s\n' "$row" | jq -c .train)
		tok "$args" "$sys" "$train" -p "$T/in1"
		[ "$rc" -eq 3 ] || fail "$fam $(cat "$T/in1"): exit $rc, wanted 3"
		[ ! -s "$T/stdout" ] || fail "$fam: a failed render wrote to stdout"
		msg=$(printf '%s\n' "$row" | jq -r '.want.raise // empty')
		if [ -n "$msg" ]; then
			grep -qF "rl-tok: '$T/in1' line 1: $msg" "$T/stderr" ||
				fail "$fam: stderr lacks '$msg': $(cat "$T/stderr")"
		fi
		checked=$((checked + 1))
	done <"$T/bad"
	ok "$fam: every case as transformers renders and tokenizes it"
done
[ "$checked" -gt 0 ] || fail "no case checked"
echo "# $checked cases checked" >&2

# rl-eval on a model imported from GGUF (rl-import(1)'s example stand-in: a
# one-layer Qwen2 with Qwen2.5's vocabulary and chat template as a GGUF file holds
# them) prompts it as transformers renders the GGUF file's template: rl-tok gives
# the fixture's text and ids, rl-eval feeds as many tokens
xz -dc "$F/import/example/qwen2.5-standin-q8_0.gguf.xz" >"$T/standin.gguf"
must_pass rl-import -q "$T/standin.gguf" -o "$T/standin"
jq -c 'select(.system == null and .train == false and .in.prompt != null)' \
	"$C/gguf_qwen2_5.jsonl" >"$T/rows"
jq -c .in "$T/rows" >"$T/in"
must_pass rl-tok -m "$T/standin" -p "$T/in"
jq -c '[.want.text, .want.ids]' "$T/rows" >"$T/want"
jq -c '[.text, .ids]' "$T/stdout" >"$T/got"
test_cmp "$T/want" "$T/got"
must_pass rl-eval -v -m "$T/standin" -p "$T/in" --max-new-tokens 1 --judge none \
	-o "$T/responses.jsonl"
stderr_has "template: the model's own, from '$T/standin/tokenizer_config.json'"
jq -c '.want.ids | length' "$T/rows" >"$T/want"
jq -c .prompt_tokens "$T/responses.jsonl" >"$T/got"
test_cmp "$T/want" "$T/got"

# --template-kwargs: a prompt line with the keywords renders as transformers
# renders the conversation [system, user] with them (Qwen3's enable_thinking)
if [ -f "$T/qwen3/tokenizer.json" ]; then
	jq -c 'select(.in.enable_thinking == false) | .want | [.text, .ids]' "$C/qwen3.jsonl" >"$T/want"
	echo '{"prompt": "Think or not?"}' >"$T/in1"
	must_pass rl-tok -m "$T/qwen3" --template "$F/jinja/templates/qwen3.jinja" --system Sys \
		--template-kwargs '{"enable_thinking": false}' -p "$T/in1"
	jq -c '[.text, .ids]' "$T/stdout" >"$T/got"
	test_cmp "$T/want" "$T/got"
	grep -qF '<think>\n\n</think>' "$T/got" || fail "enable_thinking false: no empty thinking block"
fi
# U+0000 is text through a Jinja template as through the built-ins: Qwen2.5's
# own renders the prompt as the built-in copy does (ids too), a conversation's
# content keeps it
printf '{"prompt": "a\\u0000b"}\n' >"$T/nul.jsonl"
must_pass rl-tok -m "$T/qwen2_5" -p "$T/nul.jsonl"
cp "$T/stdout" "$T/nul-own"
must_pass rl-tok -m "$T/qwen2_5" --template qwen2.5 -p "$T/nul.jsonl"
test_cmp "$T/stdout" "$T/nul-own"
grep -qF 'user\na\u0000b<|im_end|>' "$T/nul-own" || fail "U+0000 prompt: $(cat "$T/nul-own")"
printf '{"messages": [{"role": "user", "content": "c\\u0000"}], "add_generation_prompt": true}\n' \
	>"$T/nul.jsonl"
must_pass rl-tok -m "$T/qwen2_5" -p "$T/nul.jsonl"
grep -qF 'user\nc\u0000<|im_end|>' "$T/stdout" || fail "U+0000 content: $(cat "$T/stdout")"
# --template FILE in the older {prompt} format: still read, with a note
D="$T/qwen2_5"
printf 'Q: {prompt}\nA:' >"$T/old.tmpl"
must_pass rl-tok -m "$D" --template "$T/old.tmpl" -p "$T/hi.jsonl"
stderr_has "old.tmpl': no Jinja tag: read in the older {prompt} template format"
[ "$(jq -r .text "$T/stdout")" = "$(printf 'Q: Hi\nA:')" ] || fail "{prompt} file: $(cat "$T/stdout")"
must_pass rl-tok -q -m "$D" --template "$T/old.tmpl" -p "$T/hi.jsonl"
[ ! -s "$T/stderr" ] || fail "-q printed the note"
# a built-in name renders the reference's copy, with a warning
must_pass rl-tok -m "$D" --template chatml -p "$T/hi.jsonl"
stderr_has "warning: --template chatml: realign's built-in copy of the reference's template, in place of the model's own"

# a template outside the subset: the construct and its line, at open
printf '{%% if x %%}\n{{ x | frobnicate }}\n{%% endif %%}' >"$T/bad.jinja"
must_fail 3 rl-tok -m "$D" --template "$T/bad.jinja" -p "$T/hi.jsonl"
stderr_has "bad.jinja' line 2:"
stderr_has "frobnicate"
# the limits rl-tok(1) documents: each a clear error, exit 3, nothing written
printf '{%% macro f(n) %%}{{ f(n + 1) }}{%% endmacro %%}\n{{ f(0) }}' >"$T/deep.jinja"
must_fail 3 rl-tok -m "$D" --template "$T/deep.jinja" -p "$T/hi.jsonl"
stderr_has "deep.jinja' line 1: recursion deeper than the limit of 200 levels"
printf '{%% for i in range(1001) %%}\n{%% for j in range(1000) %%}{%% endfor %%}{%% endfor %%}' \
	>"$T/loops.jinja"
must_fail 3 rl-tok -m "$D" --template "$T/loops.jinja" -p "$T/hi.jsonl"
stderr_has "loops.jinja' line 2: loops ran more than the limit of 1000000 iterations"
printf '{%% for i in range(17) %%}{{ "x" * 1048576 }}{%% endfor %%}' >"$T/big.jinja"
must_fail 3 rl-tok -m "$D" --template "$T/big.jinja" -p "$T/hi.jsonl"
stderr_has "hi.jsonl' line 1: template output exceeds its limit of 16777216 bytes"
[ ! -s "$T/stdout" ] || fail "a template past its limit wrote to stdout"
printf '{{ "a" ~ raise_exception("no such role") }}' >"$T/raise.jinja"
must_fail 3 rl-tok -m "$D" --template "$T/raise.jinja" -p "$T/hi.jsonl"
stderr_has "hi.jsonl' line 1: no such role"
printf 'no tags, no placeholder' >"$T/neither"
must_fail 3 rl-tok -m "$D" --template "$T/neither" -p "$T/hi.jsonl"
stderr_has "neither a Jinja template"
# conversations: bad shapes, and what only a Jinja template renders
for bad in '{"messages": []}' '{"messages": "Hi"}' '{"messages": ["Hi"]}' \
	'{"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": 1}' \
	'{"messages": [{"role": "user", "content": "Hi"}], "tools": []}'; do
	echo "$bad" >"$T/in1"
	must_fail 3 rl-tok -m "$D" -p "$T/in1"
	stderr_has "in1' line 1: "
done
echo '{"messages": [{"role": "user", "content": "Hi"}]}' >"$T/conv"
must_fail 3 rl-tok -m "$D" --system S -p "$T/conv"
stderr_has "--system applies to \"prompt\" lines"
must_fail 3 rl-tok -m "$D" --raw -p "$T/conv"
stderr_has "a conversation needs a Jinja chat template"
must_fail 3 rl-tok -m "$D" --train -p "$T/conv"
stderr_has "a training conversation ends with the assistant's answer"
for kw in '[1]' '{"a": ' 'x'; do
	must_fail 2 rl-tok -m "$D" --template-kwargs "$kw" -p "$T/hi.jsonl"
	stderr_has "template keywords '$kw': not a JSON object"
done
must_fail 2 rl-tok -m "$D" --raw --template-kwargs '{}' -p "$T/hi.jsonl"
stderr_has "template keywords need a Jinja template (the raw template takes none)"
must_fail 2 rl-tok -m "$D" --template chatml --template-kwargs '{}' -p "$T/hi.jsonl"
must_fail 2 rl-eval --responses "$T/hi.jsonl" --template-kwargs '{}'
RL_STRFTIME_NOW=yesterday must_fail 2 rl-tok -m "$D" -p "$T/hi.jsonl"
stderr_has "RL_STRFTIME_NOW='yesterday': expected a local time YYYY-MM-DDTHH:MM:SS"
finish
