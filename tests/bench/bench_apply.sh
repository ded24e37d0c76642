#!/bin/sh
# bench_apply.sh [DIR] — rl-apply + rl-rollback of a k = 0.2% step (k = ceil(0.002 P),
# random elements of all 32 layers) on a Llama-2-7B-shaped bf16 model, next to
# writing a full copy of the model (what the reference does to save a step):
# wall time, bytes the tools wrote (their summaries) and bytes the disk saw
# (/proc/diskstats of the device holding DIR: approximate on a shared machine).
set -eu
D=${1:-/work/models/restore-7b}
B=$(pwd)/bin
python3 tests/bench/gen_7b.py "$D"
dev=$(df --output=source "$D" | tail -1 | sed 's|/dev/||')
written() { awk -v d="$dev" '$3 == d { printf "%.0f\n", $10 * 512 }' /proc/diskstats; }
echo "load: $(uptime)"
rm -rf "$D/work" "$D/copy"
cp -r "$D/finetuned" "$D/work" && sync
"$B/rl-select" -m "$D/work" -t "$D/aligned" --score random --seed 1 -L 32 --rate 0.002 -o "$D/sel.rls"
sync
w0=$(written); t0=$(date +%s.%N)
"$B/rl-apply" -m "$D/work" -s "$D/aligned" "$D/sel.rls" >"$D/step.rlj"
t1=$(date +%s.%N); w1=$(written)
"$B/rl-rollback" -m "$D/work" "$D/step.rlj" >"$D/undo.rlj"
t2=$(date +%s.%N); w2=$(written)
cp -r "$D/work" "$D/copy" && sync
t3=$(date +%s.%N); w3=$(written)
echo "rl-apply:    $(echo "$t1 - $t0" | bc) s, disk writes $(((w1 - w0) / 1048576)) MiB, journal $(($(wc -c <"$D/step.rlj") / 1048576)) MiB"
echo "rl-rollback: $(echo "$t2 - $t1" | bc) s, disk writes $(((w2 - w1) / 1048576)) MiB"
echo "full copy:   $(echo "$t3 - $t2" | bc) s, disk writes $(((w3 - w2) / 1048576)) MiB, size $(du -sm "$D/copy" | cut -f1) MiB"
cmp "$D/work/model-00002-of-00033.safetensors" "$D/finetuned/model-00002-of-00033.safetensors" &&
	echo "rollback bit-exact (layer 0 shard compared)"
rm -rf "$D/copy"
