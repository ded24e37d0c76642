#!/bin/sh
# tests/bench/eval-shard.sh — a sharded evaluation against one process (issue
# 17), on a real chat model and the shipped BeaverTails evaluation questions:
#
#   plain:      rl-eval -t W ...                    (the default, batch-dependent)
#   invariant:  rl-eval -t W --batch-invariant ...  (what the shards reproduce)
#   sharded:    seq S | xargs -P W (rl-eval -t 1 --shard I/S ...), rl-sum
#
# Prints each wall time, the cost of batch invariance, and checks that the
# merged stream is the invariant run's (all but the timing fields), and how
# many responses the plain run shares with it. Run it also with
# RL_CPU_MAX=avx2 to see the invariance's cost without AMX.
#
#     make && sh tests/bench/eval-shard.sh [MODEL]
#
# MODEL defaults to $CACHE/smollm2-135m-instruct (examples/real.sh fetches
# it; CACHE = ${XDG_CACHE_HOME:-$HOME/.cache}/realign/models). Environment:
# N (prompts, default 64), NEW (max new tokens, 64), B (batch, 16), WORKERS
# (2), SHARDS (4), PREC (bf16), OUT (tests/bench/out/eval-shard).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/realign/models}
MODEL=${1:-$CACHE/smollm2-135m-instruct}
N=${N:-64}
NEW=${NEW:-64}
B=${B:-16}
WORKERS=${WORKERS:-2}
SHARDS=${SHARDS:-4}
PREC=${PREC:-bf16}
OUT=${OUT:-$root/tests/bench/out/eval-shard}
BIN="$root/bin"
[ -f "$MODEL/config.json" ] || {
	echo "eval-shard.sh: no model at '$MODEL' (make real-small fetches SmolLM2)" >&2
	exit 2
}
mkdir -p "$OUT"
rm -f "$OUT"/*.rls "$OUT"/*.txt
P="$root/examples/data/beavertails_eval.jsonl"
unset OPENBLAS_NUM_THREADS OMP_NUM_THREADS
echo "== $(date -u +%FT%TZ) $(uname -n): $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)," \
	"RL_CPU_MAX=${RL_CPU_MAX:-(none)}"
echo "== model $MODEL, $N prompts x $NEW new tokens, batch $B, $PREC;" \
	"$SHARDS shards on $WORKERS workers"
now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{ printf "%.1f", $1 - $2 }'; }
ev() { "$BIN/rl-eval" -q -m "$MODEL" -p "$P" -n "$N" --max-new-tokens "$NEW" -b "$B" \
	--precision "$PREC" --full-responses "$@"; }
plain() { "$BIN/rl-dump" "$1" | jq -c 'del(.gen_seconds, .tokens_per_s, .checksum)'; }

t0=$(now)
ev -t "$WORKERS" -O "$OUT/plain.rls"
t_plain=$(since "$t0")
t0=$(now)
ev -t "$WORKERS" --batch-invariant -O "$OUT/inv.rls"
t_inv=$(since "$t0")
t0=$(now)
seq "$SHARDS" | xargs -P "$WORKERS" -I{} sh -c \
	'"$0" -q -m "$1" -p "$2" -n "$3" --max-new-tokens "$4" -b "$5" --precision "$6" \
	 --full-responses -t 1 --shard {}/"$7" -O "$8/s.{}.rls"' \
	"$BIN/rl-eval" "$MODEL" "$P" "$N" "$NEW" "$B" "$PREC" "$SHARDS" "$OUT"
t_shards=$(since "$t0")
"$BIN/rl-sum" -q -o "$OUT/sum.rls" "$OUT"/s.*.rls
t_sum=$(since "$t0")
plain "$OUT/inv.rls" | grep -v '"t":"header"' >"$OUT/inv.txt"
plain "$OUT/sum.rls" | grep -v '"t":"header"' >"$OUT/sum.txt"
if cmp -s "$OUT/inv.txt" "$OUT/sum.txt"; then same=yes; else same=NO; fi
resp() { "$BIN/rl-dump" "$1" | jq -c 'select(.t == "item") | .response'; }
resp "$OUT/plain.rls" >"$OUT/plain.resp.txt"
resp "$OUT/inv.rls" >"$OUT/inv.resp.txt"
shared=$(paste -d '\n' "$OUT/plain.resp.txt" "$OUT/inv.resp.txt" |
	awk 'NR % 2 { a = $0; next } { n++; s += (a == $0) } END { print s "/" n }')
rate() { "$BIN/rl-dump" "$1" | jq -r 'select(.t == "summary") | .harmful_rate'; }
echo "plain (-t $WORKERS):            ${t_plain} s, harmful rate $(rate "$OUT/plain.rls")"
echo "batch-invariant (-t $WORKERS):  ${t_inv} s, harmful rate $(rate "$OUT/inv.rls")"
echo "$SHARDS shards on $WORKERS workers:    ${t_shards} s, ${t_sum} s with rl-sum"
echo "merged = batch-invariant run (items, summary): $same; responses plain = invariant: $shared"
rm -f "$OUT"/s.*.rls
[ "$same" = yes ]
