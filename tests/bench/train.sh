#!/bin/sh
# tests/bench/train.sh — rl-train against PyTorch on the demo's training: the toy
# world's aligned model (0.4M parameters, batches of 64 examples of ~23 tokens,
# lr 3e-3), STEPS steps from the same random init recipe, in the same run:
#   rl-train -t 1 and -t 2 (data-parallel threads, one BLAS thread each);
#   PyTorch (transformers' LlamaForCausalLM + torch.optim.AdamW, the
#   prototype's loop in examples/toy/proto.py) with 1 and 2 threads.
# Prints seconds per step and the final loss of each.
#
#     make && sh tests/bench/train.sh            (STEPS=100 by default)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
STEPS=${STEPS:-100}
OUT=${OUT:-$root/tests/bench/out/train}
PYTHON=${PYTHON:-python3}
PATH="$root/bin:$PATH"
export OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"
rl-toy -q -o "$OUT/world"
echo "== $(date -u +%FT%TZ) $(uname -n): $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $STEPS steps of 64 examples, toy world aligned model"
for t in 1 2; do
	rm -rf "$OUT/m"
	s=$(date +%s.%N)
	rl-train -q --init random --arch "$OUT/world/arch.json" -p "$OUT/world/aligned.jsonl" \
		-o "$OUT/m" --steps "$STEPS" -b 64 --lr 3e-3 -t "$t" --log "$OUT/log$t.tsv"
	e=$(date +%s.%N)
	awk -v a="$s" -v b="$e" -v n="$STEPS" -v t="$t" -v l="$(tail -1 "$OUT/log$t.tsv" | cut -f3)" \
		'BEGIN { printf "rl-train -t %d      %7.4f s/step  (%.1f s)  final loss %s\n", t, (b - a) / n, b - a, l }'
done
for t in 1 2; do
	ROOT=$root "$PYTHON" - "$OUT/world" "$STEPS" "$t" <<'PY' 2>/dev/null
import os, sys, time
import torch
sys.path.insert(0, os.path.join(os.environ["ROOT"], "examples", "toy"))
import proto
world, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
w = proto.World(world)
data = [w.train_ids(x["prompt"], x["response"]) for x in proto.jl(os.path.join(world, "aligned.jsonl"))]
m = proto.make_model(w, 1)
t0 = time.time()
loss = proto.train(m, data, steps, 3e-3, 64, 1, quiet=True)
dt = time.time() - t0
print(f"PyTorch {threads} thread(s) {dt / steps:7.4f} s/step  ({dt:.1f} s)  final loss {loss:.4f}")
PY
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
