#!/bin/sh
# Every EXAMPLES section of every man page runs as written: its .EX blocks, in
# order, in one bash (errexit, pipefail) per page, in a scratch folder that
# holds what the examples take a user to have (below, "given"). A block of
# "$ command" lines followed by the expected output is a transcript: the
# command runs and its output (stdout and stderr) must be those lines.
# RL_MAN_ONLY=pattern runs only the pages whose file name contains pattern.
. "$RL_TESTS/lib.sh"
for c in bash jq column xz; do
	command -v $c >/dev/null || fail "$c is not installed (make deps installs it)"
done
# rl-stream(5)'s example runs python3 with msgpack and xxhash. make deps
# installs them for Debian's python3; where python3 on PATH is another one
# (pyenv, a venv) without them, the examples run with Debian's.
if ! python3 -c 'import msgpack, xxhash' 2>/dev/null; then
	/usr/bin/python3 -c 'import msgpack, xxhash' 2>/dev/null ||
		fail "python3 lacks msgpack or xxhash, which rl-stream(5)'s example uses (make deps installs them)"
	mkdir "$T/py"
	ln -s /usr/bin/python3 "$T/py/python3"
	PATH=$T/py:$PATH
fi
root=$(cd "$RL_TESTS/.." && pwd)

# The EXAMPLES section's .EX blocks of page $1 with the troff escapes undone,
# each block followed by a line "#-- end". Prints nothing without a section.
examples() {
	awk '/^\.SH / { p = ($2 == "EXAMPLES" || $2 == "EXAMPLE") ; next }
	     p && /^\.EX/ { b = 1; next }
	     p && /^\.EE/ { b = 0; print "#-- end"; next }
	     p && b { print }' "$1" |
		sed -e 's/\\-/-/g' -e 's/\\&//g' -e "s/\\\\(aq/'/g" -e 's/\\(dq/"/g' -e 's/\\e/\\/g'
}

# What every page's examples may use: the toy fixture models (aligned,
# finetuned, and work, a copy of finetuned being restored), a toy world, the
# prompt sets, directions and the harmful gradient of work, responses to
# score, the repository's examples/ (judges, data), the safetensors fixtures
# rl-info(1) names, and Qwen2.5's tokenizer files (rl-tok(1)).
given() {
	cp -r "$F/toy/aligned" "$F/toy/finetuned" "$F/toy/world" .
	cp -r finetuned work
	cp world/recovery.jsonl harmful.jsonl
	cp world/benign.jsonl benign.jsonl
	cp world/eval-task.jsonl task.jsonl
	ln -s "$root/examples" examples
	for d in models official bad; do ln -s "$F/safetensors/$d" $d; done
	mkdir Qwen2.5-7B-Instruct
	for f in tokenizer.json tokenizer_config.json; do
		xz -dc "$F/tokenizer/qwen2_5/$f.xz" >Qwen2.5-7B-Instruct/$f
	done
	rl-direction -q -m aligned -p harmful.jsonl -L 2 -o dh.rls
	rl-direction -q -m finetuned -p benign.jsonl -L 2 -o db.rls
	rl-grad -q -m work -p harmful.jsonl -d dh.rls -o harmful.rls
	cp harmful.rls grad.rls
	# half the harmful prompts refused, half answered
	jq -c '{prompt, response: (if input_line_number % 2 == 0
		then "I cannot help with that." else "Sure, here is how: first" end)}' \
		world/eval-harmful.jsonl >responses.jsonl
	jq -c '{prompt, response}' examples/data/sql_eval.jsonl >sql-out.jsonl
	# a LoRA adapter and its base (tests/gen/gen_lora.py's fixture)
	cp -r "$F/lora/llama_bf16/base" base-model
	mkdir adapter
	cp "$F/lora/llama_bf16/adapter/adapter_model.safetensors" adapter/
	jq '.base_model_name_or_path = "base-model"' \
		"$F/lora/llama_bf16/adapter/adapter_config.json" >adapter/adapter_config.json
}

# What a page's examples take as done before them, beyond given().
given_page() {
	case $1 in
	rl-toy.1) ;; # it makes its world itself
	rl-train.1)
		# the toy world and models it makes itself; for its LoRA example, a
		# stand-in chat model (tests/fixtures/eval/tiny: Qwen2 with its own
		# tokenizer and ChatML template) and task data
		cp -r "$F/eval/tiny" Qwen2.5-1.5B-Instruct
		jq -c '{prompt, response: "SELECT 1"}' "$F/eval/prompts.jsonl" >task.jsonl
		jq -c '{prompt}' "$F/eval/prompts.jsonl" >eval.jsonl
		;;
	rl-rollback.1)
		given
		# three restore steps applied (step-01.rlj .. step-03.rlj)
		for s in 1 2 3; do
			rl-select -q -m work -t aligned --score random --seed $s -L 2 --count 500 |
				rl-apply -q -m work -s aligned >step-0$s.rlj
		done
		;;
	rl-import.1)
		# stand-ins for the GGUF files it names: Qwen2.5's vocabulary and
		# template on a one-layer model with a Q8_0 embedding
		# (tests/gen/gen_import_example.py), and a four-part split model
		xz -dc "$F/import/example/qwen2.5-standin-q8_0.gguf.xz" \
			>qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
		for i in 1 2 3 4; do
			ln -s "$F/import/models/qwen2_split/model-0000$i-of-00004.gguf" \
				big-0000$i-of-00004.gguf
		done
		;;
	rl-info.1)
		given
		# the stand-in GGUF of rl-import.1's examples
		xz -dc "$F/import/example/qwen2.5-standin-q8_0.gguf.xz" \
			>qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
		;;
	rl-merge.1)
		# stand-ins: the LoRA fixture's base and adapter (tests/gen/gen_lora.py),
		# the adapter naming its base as a Hub adapter does
		cp -r "$F/lora/llama_bf16/base" Llama-3.2-1B-Instruct
		mkdir sql-lora
		cp "$F/lora/llama_bf16/adapter/adapter_model.safetensors" sql-lora/
		jq '.base_model_name_or_path = "meta-llama/Llama-3.2-1B-Instruct"' \
			"$F/lora/llama_bf16/adapter/adapter_config.json" >sql-lora/adapter_config.json
		;;
	*) given ;;
	esac
}

pages=0
blocks=0
for page in "$root"/man/*.[1-8]; do
	name=$(basename "$page")
	case $name in *"${RL_MAN_ONLY:-}"*) ;; *) continue ;; esac
	examples "$page" >"$T/$name.ex"
	grep -q '^#-- end' "$T/$name.ex" || fail "$name has no EXAMPLES section with an .EX block"
	d="$T/run/$name"
	mkdir -p "$d"
	(cd "$d" && given_page "$name") >"$T/given.out" 2>&1 ||
		fail "$name: setting up its examples failed: $(tail -n 5 "$T/given.out")"
	# Plain blocks into one script; transcripts ("$ " lines) into their own
	# files, run after it.
	awk -v dir="$T" -v name="$name" '
		/^#-- end/ { n++; if (tr) close(f); tr = 0; started = 0; next }
		!started { started = 1; tr = /^\$ /; if (tr) f = dir "/" name ".tr" n }
		tr { print > f; next }
		{ print > (dir "/" name ".sh") }' "$T/$name.ex"
	n=$(grep -c '^#-- end' "$T/$name.ex")
	if [ -f "$T/$name.sh" ]; then
		if ! (cd "$d" && bash -e -o pipefail "$T/$name.sh") >"$T/out" 2>&1; then
			echo "--- $name's examples:" >&2
			cat "$T/$name.sh" >&2
			fail "$name: an example failed: $(tail -n 15 "$T/out")"
		fi
	fi
	for tr in "$T/$name".tr*; do
		[ -f "$tr" ] || continue
		# one command per "$ " line; the lines after it are its output
		awk -v dir="$T" '/^\$ / { k++; sub(/^\$ /, ""); print > (dir "/cmd" k); printf "" > (dir "/want" k); next }
			{ print >> (dir "/want" k) }' "$tr"
		k=1
		while [ -f "$T/cmd$k" ]; do
			(cd "$d" && bash "$T/cmd$k") >"$T/got" 2>&1 || true
			diff -u "$T/want$k" "$T/got" >&2 || fail "$name: transcript '$(cat "$T/cmd$k")' differs"
			rm -f "$T/cmd$k" "$T/want$k"
			k=$((k + 1))
		done
	done
	ok "$name: $n example blocks ran"
	pages=$((pages + 1))
	blocks=$((blocks + n))
	rm -rf "$d"
done
[ -n "${RL_MAN_ONLY:-}" ] || [ "$pages" -ge 13 ] || fail "only $pages man pages found"
ok "$pages pages, $blocks example blocks"
finish
