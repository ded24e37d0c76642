#!/bin/sh
# tests/bench/greedy_llamacpp.sh — greedy answers of realign on a model
# rl-import made from a GGUF against llama.cpp's on the GGUF itself (the
# rl-import issue's parity check): the same prompts, templated by rl-tok (the
# ids llama.cpp gets are the ones realign feeds itself), MAXNEW greedy tokens
# each, end tokens stopping both. Prints, for each prompt whose answers differ,
# the first differing token (by the ids of both texts, re-tokenized), how near
# a tie llama.cpp's own choice was there (its top logit minus its second, where
# its generated ids and the re-tokenized ones agree up to that token) against
# the median of that margin over all its tokens, and the texts, then a last
# line `greedy: N prompts, E identical, first differences at tokens ...`.
#
#     sh tests/bench/greedy_llamacpp.sh GGUF MODEL [PROMPTS.jsonl [N [MAXNEW]]]
#
# Defaults: examples/data/beavertails_eval.jsonl, N 32, MAXNEW 32. PYTHON: a
# python3 with llama-cpp-python (built from its PyPI sdist), numpy;
# LLAMA_CPP_LIB_PATH as that package reads it, to use another build of
# libllama (one without AMX where llama.cpp's AMX kernels crash). THREADS
# (default: every CPU), PRECISION (rl-eval --precision, where it has one).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PATH="${RL_BIN:-$root/bin}:$PATH"
[ $# -ge 2 ] || { echo "usage: greedy_llamacpp.sh GGUF MODEL [PROMPTS [N [MAXNEW]]]" >&2; exit 2; }
gguf=$1 model=$2
prompts=${3:-$root/examples/data/beavertails_eval.jsonl}
n=${4:-32} maxnew=${5:-32}
THREADS=${THREADS:-$(nproc)}
PYTHON=${PYTHON:-python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/greedy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 143' INT TERM # the EXIT trap still runs
head -n "$n" "$prompts" | jq -c '{prompt}' >"$tmp/p.jsonl"
rl-tok -m "$model" <"$tmp/p.jsonl" | jq -c '{ids}' >"$tmp/ids.jsonl"
"$PYTHON" "$here/greedy_llamacpp.py" "$gguf" "$tmp/ids.jsonl" "$maxnew" "$THREADS" >"$tmp/llama.jsonl"
rl-eval -q -m "$model" -p "$tmp/p.jsonl" --judge none --full-responses \
	--max-new-tokens "$maxnew" -t "$THREADS" ${PRECISION:+--precision "$PRECISION"} \
	-o "$tmp/realign.jsonl" -O "$tmp/realign.rls"
# realign's responses by id (its file keeps the order they finished in).
jq -c -s 'sort_by(.id)[] | {response}' "$tmp/realign.jsonl" >"$tmp/r.jsonl"
jq -c '{prompt: .response}' "$tmp/r.jsonl" | rl-tok -m "$model" --raw | jq -c .ids >"$tmp/r.ids"
jq -c '{prompt: .text}' "$tmp/llama.jsonl" | rl-tok -m "$model" --raw | jq -c .ids >"$tmp/l.ids"
paste -d '\t' "$tmp/r.ids" "$tmp/l.ids" >"$tmp/pairs"
jq -r -n --rawfile pairs "$tmp/pairs" --slurpfile r "$tmp/r.jsonl" --slurpfile l "$tmp/llama.jsonl" '
	($pairs | split("\n") | map(select(length > 0) | split("\t") | map(fromjson))) as $p
	| [range(0; $p | length) as $i
	   | ($p[$i][0]) as $a | ($p[$i][1]) as $b
	   | if $a == $b then {i: $i, same: true}
	     else {i: $i, same: false,
	           at: (first(range(0; [$a, $b] | map(length) | min) | select($a[.] != $b[.]))
	                // ([$a, $b] | map(length) | min))}
	     end] as $res
	| ([$l[].margins[]] | sort | .[length / 2 | floor]) as $median
	| [$res[] | select(.same | not) | . as $d
	   | ($l[$d.i]) as $li
	   | (if ($li.ids[0:$d.at] == $p[$d.i][1][0:$d.at]) and ($d.at < ($li.margins | length))
	      then $li.margins[$d.at] else null end) as $m
	   | $d + {margin: $m}] as $diffs
	| ($diffs[]
	   | "prompt \(.i): first difference at token \(.at), llama.cpp top-2 margin there \(.margin // "-")\n  realign:   \($r[.i].response | .[0:300] | @json)\n  llama.cpp: \($l[.i].text | .[0:300] | @json)"),
	  "llama.cpp top-2 logit margin: median \($median) over its \([$l[].margins[]] | length) tokens; at the first differences \($diffs | map(.margin) | tostring)",
	  "greedy: \($res | length) prompts, \($res | map(select(.same)) | length) identical, first differences at tokens \($res | map(select(.same | not) | .at) | tostring)"'
