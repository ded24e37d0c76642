#!/bin/sh
# tests/bench/grad-7b.sh — rl-grad on a random Llama-2-7B-shaped bf16 model
# (issue 3): 16 prompts of 150-200 tokens (a Llama-2 chat template with its
# system prompt is about that long), L = 21. The target is a peak RSS under
# 20 GiB; prints time, RSS and rl-grad's memory plan. Exit 1 if RSS >= 20 GiB.
#
#     make bench && sh tests/bench/grad-7b.sh
#
# (on a machine shared with other memory-hungry work, under a lock its users
# agree on: flock LOCKFILE sh tests/bench/grad-7b.sh)
#
# Environment: MODEL (default $CACHE/llama2-7b-random, made by
# make_model.py when absent: 13.5 GB), THREADS, OUT, MEM_LIMIT (rl-grad's
# --mem-limit; default: its own, half the RAM), CACHE (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/realign/models).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/realign/models}
MODEL=${MODEL:-$CACHE/llama2-7b-random}
THREADS=${THREADS:-$(nproc)}
OUT=${OUT:-$root/tests/bench/out/grad-7b}
PYTHON=${PYTHON:-python3}
BIN="$root/bin"
mkdir -p "$OUT"
[ -f "$MODEL/config.json" ] || "$PYTHON" "$here/make_model.py" llama2-7b "$MODEL"
"$PYTHON" "$here/make_model.py" --prompts 16 150 200 "$OUT/prompts.jsonl"
T=$(tr -cd ',\n' < "$OUT/prompts.jsonl" | wc -c)
echo "== $(date -u +%FT%TZ) $(uname -n): $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== model $MODEL, 16 prompts, $T tokens, L=21, $THREADS threads"
/usr/bin/time -v "$BIN/rl-direction" -v -j "$THREADS" -m "$MODEL" -p "$OUT/prompts.jsonl" -L 21 \
	-o "$OUT/dir.rls" 2> "$OUT/rl-direction.err" || { cat "$OUT/rl-direction.err"; exit 1; }
grep '^rl-direction' "$OUT/rl-direction.err"
set -- -v -j "$THREADS" -m "$MODEL" -p "$OUT/prompts.jsonl" -d "$OUT/dir.rls"
[ -n "${MEM_LIMIT:-}" ] && set -- "$@" --mem-limit "$MEM_LIMIT"
/usr/bin/time -v "$BIN/rl-grad" "$@" -o /dev/null 2> "$OUT/rl-grad.err" || {
	cat "$OUT/rl-grad.err"; exit 1; }
grep '^rl-grad' "$OUT/rl-grad.err"
for tool in rl-direction rl-grad; do
	wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$OUT/$tool.err")
	rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/$tool.err")
	echo "$tool: wall $wall, peak RSS $(echo "$rss" | awk '{ printf "%.2f", $1 / 1048576 }') GiB"
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$rss" -lt $((20 * 1048576)) ] || { echo "FAIL: peak RSS >= 20 GiB"; exit 1; }
