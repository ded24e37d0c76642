#!/bin/sh
# tests/bench/recover-7b.sh — one restore step of rl-recover on a random
# Llama-2-7B-shaped bf16 pair, the figures examples/real-model.sh quotes:
# rl-direction (A, NH prompts of 150-200 tokens, L = 21), then one step as
# rl-recover runs it with the gradient piped (rl-grad | rl-select --rate 0.002),
# rl-apply, the partial rollback's benign gradient and rl-rollback -f, and an
# exact rl-rollback of both journals; wall time and peak RSS of each, next to
# writing a full copy of the model (what the reference does to save a step).
#
#     make && sh tests/bench/recover-7b.sh
#
# Environment: A (default $CACHE/llama2-7b-random, made by make_model.py
# when absent), F (default $CACHE/llama2-7b-random-ft, made by
# make_finetune.py when absent: 13.5 GB more), W (the working copy of F, default
# $CACHE/llama2-7b-random-w: 13.5 GB, removed at the end), CACHE (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/realign/models), THREADS
# (default nproc), OUT. W is restored in place, then rolled back (bit-exact,
# checked against F).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/realign/models}
A=${A:-$CACHE/llama2-7b-random}
F=${F:-$CACHE/llama2-7b-random-ft}
W=${W:-$CACHE/llama2-7b-random-w}
THREADS=${THREADS:-$(nproc)}
NH=${NH:-16} # prompts in H and B (the reference's H has 64: gradient time scales with it)
OUT=${OUT:-$root/tests/bench/out/recover-7b}
PYTHON=${PYTHON:-python3}
PATH="$root/bin:$PATH"
mkdir -p "$OUT"
[ -f "$A/config.json" ] || "$PYTHON" "$here/make_model.py" llama2-7b "$A"
[ -f "$F/config.json" ] || "$PYTHON" "$here/make_finetune.py" "$A" "$F"
"$PYTHON" "$here/make_model.py" --prompts "$NH" 150 200 "$OUT/harmful.jsonl"
"$PYTHON" "$here/make_model.py" --prompts "$NH" 40 120 "$OUT/benign.jsonl"
echo "== $(date -u +%FT%TZ) $(uname -n): $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== A $A, F $F, W $W (a copy of F); $THREADS threads"
sha_before=$(cat "$F"/*.safetensors | sha256sum | cut -c1-16)

timed() { # NAME CMD... : wall time and peak RSS of CMD (pipelines via sh -c)
	name=$1
	shift
	/usr/bin/time -f "%e %M" -o "$OUT/$name.time" "$@" 2>"$OUT/$name.err" ||
		{ cat "$OUT/$name.err"; exit 1; }
	read -r wall rss <"$OUT/$name.time"
	printf '%-34s %8.1f s %8.2f GiB\n' "$name" "$wall" "$(echo "$rss" | awk '{ print $1 / 1048576 }')"
}
rm -rf "$W"
mkdir -p "$W"
timed "copy F to W (the reference saves one a step)" sh -c "cp '$F'/* '$W/' && sync"
echo "== $NH harmful prompts of 150-200 tokens, $NH benign of 40-120"
timed "rl-direction A (H, L=21)" rl-direction -j "$THREADS" -m "$A" -p "$OUT/harmful.jsonl" -L 21 \
	-o "$OUT/dh.rls"
timed "rl-direction F (B, L=21)" rl-direction -j "$THREADS" -m "$F" -p "$OUT/benign.jsonl" -L 21 \
	-o "$OUT/db.rls"
timed "rl-grad | rl-select --rate 0.002" sh -c "rl-grad -j $THREADS -m '$W' -p '$OUT/harmful.jsonl' \
	-d '$OUT/dh.rls' | rl-select -m '$W' -t '$A' --rate 0.002 -o '$OUT/sel.rls'"
timed "rl-apply" rl-apply -m "$W" -s "$A" -j "$OUT/step.rlj" "$OUT/sel.rls"
timed "rl-grad benign (rollback)" rl-grad -j "$THREADS" -m "$W" -p "$OUT/benign.jsonl" \
	-d "$OUT/db.rls" -o "$OUT/bgrad.rls"
timed "rl-rollback -f (partial, 0.2)" rl-rollback -m "$W" -f "$F" --grad "$OUT/bgrad.rls" \
	--fraction 0.2 -j "$OUT/rb.rlj" "$OUT/step.rlj"
rm -f "$OUT/bgrad.rls"
timed "rl-rollback (both journals)" rl-rollback -m "$W" -j "$OUT/undo.rlj" "$OUT/step.rlj" \
	"$OUT/rb.rlj"
sha_after=$(cat "$W"/*.safetensors | sha256sum | cut -c1-16)
rm -rf "$W"
ls -l "$OUT/step.rlj" "$OUT/rb.rlj" "$OUT/sel.rls" | awk '{ printf "%-40s %12d bytes\n", $9, $5 }'
grep -h "^rl-\(select\|apply\|rollback\|grad\):" "$OUT"/*.err | grep -v "batch " | head -20
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$sha_before" = "$sha_after" ] || { echo "FAIL: W not rolled back to F bit-exactly"; exit 1; }
echo "W rolled back to F bit-exactly ($sha_after)"
