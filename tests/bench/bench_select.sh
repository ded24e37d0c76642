#!/bin/sh
# bench_select.sh [DIR] — rl-select vs the reference's torch.topk on the same
# 404M-score gradient (2 Llama-2-7B layers, k = 0.2%), then the top-k engine
# alone on 2.5e8 scores (buffer vs heap vs all-in-one-array). Run from the
# repository root after `make bench`. DIR defaults to
# ${XDG_CACHE_HOME:-$HOME/.cache}/realign/models/restore-bench; RL_BENCH_LOCK
# names a lock file the two big processes take (flock) on a shared machine.
set -eu
D=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/realign/models/restore-bench}
B=$(pwd)/bin
lock=${RL_BENCH_LOCK:+flock $RL_BENCH_LOCK}
python3 tests/bench/gen_select_bench.py "$D"
[ -f "$D/grad.rls" ] || build/tests/test_restore grad "$D/cur" "$D/grad.safetensors" "$D/grad.rls"
n=$(python3 -c 'print(2*(4*4096*4096+3*4096*11008))')
k=$(python3 -c "import math; print(math.ceil(0.002*$n))")
echo "load: $(uptime)"
cat "$D/grad.rls" "$D"/cur/model.safetensors "$D"/tgt/model.safetensors "$D/grad.safetensors" >/dev/null
$lock /usr/bin/time -f "rl-select: %e s wall, peak RSS %M KiB" \
	"$B/rl-select" -m "$D/cur" -t "$D/tgt" --count "$k" "$D/grad.rls" -o "$D/sel.rls"
$lock python3 tests/bench/topk_torch.py "$D" "$k"
for m in buffer heap all; do build/bench/bench_topk $m 250000000 0.002; done
for m in buffer heap; do build/bench/bench_topk $m 250000000 0.002 asc; done
