#!/bin/sh
# tests/bench/grad.sh — rl-grad against PyTorch on a random Llama-3.2-1B-shaped
# bf16 model (issue 3): 64 prompts of 40-80 tokens, L = 10, batch size 8, the
# same threads, measured in the same run together with cblas_sgemm's rate at
# the workload's shapes. Prints wall time, peak RSS (both processes), rl-grad's
# GEMM rate next to the sgemm peak, and how far the gradients differ.
#
#     make bench && sh tests/bench/grad.sh
#
# Environment: MODEL (default $CACHE/llama32-1b-random, made by
# make_model.py when absent; CACHE defaults to
# ${XDG_CACHE_HOME:-$HOME/.cache}/realign/models), THREADS (default: all cores), OUT (results dir,
# default tests/bench/out/grad), SKIP_TORCH=1 (rl-grad only).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/realign/models}
MODEL=${MODEL:-$CACHE/llama32-1b-random}
THREADS=${THREADS:-$(nproc)}
OUT=${OUT:-$root/tests/bench/out/grad}
L=${L:-10}
BS=8
PYTHON=${PYTHON:-python3}
BIN="$root/bin"
mkdir -p "$OUT"
[ -f "$MODEL/config.json" ] || "$PYTHON" "$here/make_model.py" llama32-1b "$MODEL"
"$PYTHON" "$here/make_model.py" --prompts 64 40 80 "$OUT/prompts.jsonl"
T=$(tr -cd ',\n' < "$OUT/prompts.jsonl" | wc -c)  # commas + newlines = tokens
export OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"
echo "== $(date -u +%FT%TZ) $(uname -n): $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== model $MODEL, 64 prompts, $T tokens, L=$L, batch $BS, $THREADS threads"

# sgemm at the shapes of the workload: forward (x W^T), input and weight gradients
"$root/build/bench/sgemm" -s 3 "$T" 8192 2048 0 1  "$T" 2048 8192 0 0  8192 2048 "$T" 1 0 \
	| tee "$OUT/sgemm.txt"
peak=$(sed -n 's/^peak \([0-9.]*\).*/\1/p' "$OUT/sgemm.txt")

"$BIN/rl-direction" -q -m "$MODEL" -p "$OUT/prompts.jsonl" -L "$L" -o "$OUT/dir.rls"
# timed: the stream goes to /dev/null (serialised and checksummed, not stored;
# in use it is piped into rl-select); then again into a file, for the
# gradient comparison and the time with the disk write and fsync
/usr/bin/time -v "$BIN/rl-grad" -v -j "$THREADS" -m "$MODEL" -p "$OUT/prompts.jsonl" \
	-d "$OUT/dir.rls" -b "$BS" -o /dev/null 2> "$OUT/rl-grad.err" || {
	cat "$OUT/rl-grad.err"; exit 1; }
grep '^rl-grad' "$OUT/rl-grad.err"
/usr/bin/time -v "$BIN/rl-grad" -q -j "$THREADS" -m "$MODEL" -p "$OUT/prompts.jsonl" \
	-d "$OUT/dir.rls" -b "$BS" -o "$OUT/grad.rls" 2> "$OUT/rl-grad-file.err" || {
	cat "$OUT/rl-grad-file.err"; exit 1; }
wall() {
	sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$1" |
		awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }'
}
rl_wall=$(wall "$OUT/rl-grad.err")
rl_rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/rl-grad.err")
rl_gflops=$(sed -n 's/.*GEMM \([0-9.]*\) GFLOP, \([0-9.]*\) GFLOP\/s.*/\2/p' "$OUT/rl-grad.err")
echo "rl-grad: wall ${rl_wall} s (into a file, fsync included: $(wall "$OUT/rl-grad-file.err") s)," \
	"peak RSS $((rl_rss / 1024)) MiB, GEMM ${rl_gflops} GFLOP/s" \
	"= $(echo "$rl_gflops $peak" | awk '{ printf "%.0f", 100 * $1 / $2 }')% of the sgemm peak ${peak}"
[ "${SKIP_TORCH:-0}" = 1 ] && exit 0

/usr/bin/time -v "$PYTHON" "$here/grad_torch.py" "$MODEL" "$OUT/prompts.jsonl" "$OUT/dir.rls" \
	"$BS" "$THREADS" "$OUT/grad.rls" > "$OUT/torch.json" 2> "$OUT/torch.err" || {
	cat "$OUT/torch.err"; exit 1; }
cat "$OUT/torch.json"
pt_rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/torch.err")
pt_compute=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["compute_s"])' "$OUT/torch.json")
pt_load=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["load_s"])' "$OUT/torch.json")
# sgemm once more (the load may have changed); the peak is the better of the two
"$root/build/bench/sgemm" -s 3 "$T" 8192 2048 0 1  "$T" 2048 8192 0 0  8192 2048 "$T" 1 0 \
	| tee "$OUT/sgemm2.txt"
peak2=$(sed -n 's/^peak \([0-9.]*\).*/\1/p' "$OUT/sgemm2.txt")
peak=$(echo "$peak $peak2" | awk '{ print ($1 > $2 ? $1 : $2) }')
# useful work as the issue counts it: 6 x (parameters of L layers' linear maps) x tokens
useful=$(echo "$T $L" | awk '{ printf "%.1f", 6 * 60817408 * $2 * $1 / 1e9 }')
echo "useful work ${useful} GFLOP: rl-grad $(echo "$useful $rl_wall" | awk '{ printf "%.1f", $1 / $2 }') GFLOP/s," \
	"PyTorch $(echo "$useful $pt_compute" | awk '{ printf "%.1f", $1 / $2 }') GFLOP/s; sgemm peak $peak;" \
	"rl-grad GEMM rate $(echo "$rl_gflops $peak" | awk '{ printf "%.0f", 100 * $1 / $2 }')% of it"
echo "pytorch: compute ${pt_compute} s (+ ${pt_load} s loading), peak RSS $((pt_rss / 1024)) MiB"
echo "speed-up (PyTorch compute / rl-grad whole run): $(echo "$pt_compute $rl_wall" | awk '{ printf "%.2f", $1 / $2 }')x;" \
	"memory (rl-grad / PyTorch peak RSS): $(echo "$rl_rss $pt_rss" | awk '{ printf "%.2f", $1 / $2 }')"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
