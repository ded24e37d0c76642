#!/bin/sh
# tests/bench/shard.sh — a 4-shard gradient on 2 local workers against one
# process (issue 17), on grad.sh's random Llama-3.2-1B-shaped bf16 model: 64
# prompts of 40-80 tokens, L = 10, batches of 16 (4 batches: one per shard;
# every shard stream holds one gradient per batch it holds, 2.4 GB here, so
# the shards take the space of 4 gradients, not 1).
#
#   one process:  rl-grad -j 2 ... -o full.rls
#   sharded:      seq 4 | xargs -P 2 (rl-grad -j 1 --shard I/4 ... -o g.I.rls),
#                 then rl-sum g.*.rls -o sum.rls
#
# Prints the wall times (the sharded one with and without rl-sum), each
# shard's, the peak RSS, and checks that sum.rls is the bytes of one process
# with the shards' thread count (rl-grad -j 1: OpenBLAS's sums depend on its
# thread count, so -j 2's stream differs in the last bits; that run is timed
# too). Disk: about 17 GB under OUT at the peak (the model 2.5, the shards
# 9.7, two gradients 4.9); the shard streams are removed at the end.
#
#     make && sh tests/bench/shard.sh
#
# Environment: MODEL (default $CACHE/llama32-1b-random, made by make_model.py
# when absent; CACHE defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/realign/models),
# OUT (results dir, default tests/bench/out/shard), L (default 10), BS (16),
# WORKERS (2), SHARDS (4).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/realign/models}
MODEL=${MODEL:-$CACHE/llama32-1b-random}
OUT=${OUT:-$root/tests/bench/out/shard}
L=${L:-10}
BS=${BS:-16}
WORKERS=${WORKERS:-2}
SHARDS=${SHARDS:-4}
PYTHON=${PYTHON:-python3}
BIN="$root/bin"
mkdir -p "$OUT"
[ -f "$MODEL/config.json" ] || "$PYTHON" "$here/make_model.py" llama32-1b "$MODEL"
"$PYTHON" "$here/make_model.py" --prompts 64 40 80 "$OUT/prompts.jsonl"
T=$(tr -cd ',\n' <"$OUT/prompts.jsonl" | wc -c) # commas + newlines = tokens
unset OPENBLAS_NUM_THREADS OMP_NUM_THREADS
echo "== $(date -u +%FT%TZ) $(uname -n): $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== model $MODEL, 64 prompts, $T tokens, L=$L, batch $BS; $SHARDS shards on $WORKERS workers"

wall() { # seconds from /usr/bin/time -v's output
	sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$1" |
		awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }'
}
rss() { echo $(($(sed -n 's/.*Maximum resident set size (kbytes): //p' "$1") / 1024)); }
now() { date +%s.%N; }

"$BIN/rl-direction" -q -m "$MODEL" -p "$OUT/prompts.jsonl" -L "$L" -o "$OUT/dir.rls"
rm -f "$OUT"/g.*.rls "$OUT/sum.rls" "$OUT/full.rls"

# one process, all threads (the workers' total)
/usr/bin/time -v "$BIN/rl-grad" -q -j "$WORKERS" -m "$MODEL" -p "$OUT/prompts.jsonl" \
	-d "$OUT/dir.rls" -b "$BS" -o "$OUT/full.rls" 2>"$OUT/full.err" || {
	cat "$OUT/full.err"
	exit 1
}
echo "one process (-j $WORKERS): wall $(wall "$OUT/full.err") s, peak RSS $(rss "$OUT/full.err") MiB"
rm -f "$OUT/full.rls"
/usr/bin/time -v "$BIN/rl-grad" -q -j 1 -m "$MODEL" -p "$OUT/prompts.jsonl" \
	-d "$OUT/dir.rls" -b "$BS" -o "$OUT/full.rls" 2>"$OUT/full1.err" || {
	cat "$OUT/full1.err"
	exit 1
}
echo "one process (-j 1): wall $(wall "$OUT/full1.err") s, peak RSS $(rss "$OUT/full1.err") MiB"

# the shards, WORKERS at a time, one thread each, then rl-sum
t0=$(now)
seq "$SHARDS" | xargs -P "$WORKERS" -I{} /usr/bin/time -v -o "$OUT/g.{}.time" \
	"$BIN/rl-grad" -q -j 1 -m "$MODEL" -p "$OUT/prompts.jsonl" -d "$OUT/dir.rls" -b "$BS" \
	--shard "{}/$SHARDS" -o "$OUT/g.{}.rls"
t1=$(now)
/usr/bin/time -v "$BIN/rl-sum" -q -o "$OUT/sum.rls" "$OUT"/g.*.rls 2>"$OUT/sum.err" || {
	cat "$OUT/sum.err"
	exit 1
}
t2=$(now)
for i in $(seq "$SHARDS"); do
	echo "  shard $i/$SHARDS: wall $(wall "$OUT/g.$i.time") s, peak RSS $(rss "$OUT/g.$i.time") MiB," \
		"$(($(stat -c %s "$OUT/g.$i.rls") / 1048576)) MiB written"
done
echo "  rl-sum: wall $(wall "$OUT/sum.err") s, peak RSS $(rss "$OUT/sum.err") MiB"
echo "sharded ($SHARDS shards, $WORKERS workers, -j 1 each): shards $(echo "$t0 $t1" |
	awk '{ printf "%.1f", $2 - $1 }') s, with rl-sum $(echo "$t0 $t2" | awk '{ printf "%.1f", $2 - $1 }') s"
if cmp -s "$OUT/full.rls" "$OUT/sum.rls"; then
	echo "rl-sum's stream and the one process's (-j 1): the same bytes"
else
	echo "rl-sum's stream DIFFERS from the one process's" >&2
	exit 1
fi
rm -f "$OUT"/g.*.rls "$OUT/sum.rls" "$OUT/full.rls"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
