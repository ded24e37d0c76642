#!/bin/sh
# tests/bench/precision.sh — what --precision bf16 changes in the method's
# selection (issue 20): on the Llama-3.2-1B bench shape (aligned: the random
# model; fine-tuned: make_finetune.py's noisy copy), rl-direction and rl-grad
# at fp32 and at bf16 (the forward on the stored weights, inputs rounded to
# bf16), each pair then rl-select at RATE (default 0.002); prints each run's
# wall time and the overlap of the two selections: |bf16 & fp32| / k.
#
#     make bench && sh tests/bench/precision.sh
#
# Environment: ALIGNED (default $CACHE/llama32-1b-random, CACHE being
# ${XDG_CACHE_HOME:-$HOME/.cache}/realign/models), FINETUNED (default
# $CACHE/llama32-1b-ft, made when absent), THREADS (2),
# PROMPTS (64), L (10), RATE (0.002), OUT (default tests/bench/out/precision),
# PROMPT_IDS (rl-tok output lines, e.g. the chat-templated recovery questions
# of a real model, in place of PROMPTS random prompts).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/realign/models}
ALIGNED=${ALIGNED:-$CACHE/llama32-1b-random}
FINETUNED=${FINETUNED:-$CACHE/llama32-1b-ft}
THREADS=${THREADS:-2} L=${L:-10} RATE=${RATE:-0.002} NP=${PROMPTS:-64}
OUT=${OUT:-$root/tests/bench/out/precision}
BIN="$root/bin"
mkdir -p "$OUT"
[ -f "$ALIGNED/config.json" ] || python3 "$here/make_model.py" llama32-1b "$ALIGNED"
[ -f "$FINETUNED/config.json" ] || python3 "$here/make_finetune.py" "$ALIGNED" "$FINETUNED"
if [ -n "${PROMPT_IDS:-}" ]; then
	head -n "$NP" "$PROMPT_IDS" >"$OUT/prompts.jsonl"
else
	python3 "$here/make_model.py" --prompts "$NP" 40 80 "$OUT/prompts.jsonl"
fi
echo "== $(date -u +%FT%TZ): load $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores;" \
	"threads $THREADS; $NP prompts, L=$L, rate $RATE"
"$BIN/rl-info" "$ALIGNED" | grep -E '^(cpu|kernels)'
for p in fp32 bf16; do
	t0=$(date +%s.%N)
	"$BIN/rl-direction" -q -j "$THREADS" -m "$ALIGNED" -p "$OUT/prompts.jsonl" -L "$L" \
		--precision "$p" -o "$OUT/dir-$p.rls"
	t1=$(date +%s.%N)
	"$BIN/rl-grad" -q -j "$THREADS" -m "$FINETUNED" -p "$OUT/prompts.jsonl" \
		-d "$OUT/dir-$p.rls" -b 8 --precision "$p" -o "$OUT/grad-$p.rls"
	t2=$(date +%s.%N)
	"$BIN/rl-select" -q -m "$FINETUNED" -t "$ALIGNED" --rate "$RATE" -o "$OUT/sel-$p.rls" \
		"$OUT/grad-$p.rls"
	echo "$p: rl-direction $(echo "$t1 - $t0" | bc) s, rl-grad $(echo "$t2 - $t1" | bc) s"
done
for p in fp32 bf16; do
	"$BIN/rl-dump" -f "$OUT/sel-$p.rls" >"$OUT/sel-$p.jsonl"
done
python3 - "$OUT/sel-fp32.jsonl" "$OUT/sel-bf16.jsonl" "$RATE" <<'PY'
import json, struct, sys

def chosen(path):
    """(tensor, element) pairs of a select stream ("sel" records, idx: u64 LE)."""
    s = set()
    for line in open(path):
        r = json.loads(line)
        if r.get("t") == "sel":
            raw = bytes.fromhex(r["idx"]["hex"])
            s.update((r["name"], i) for i in struct.unpack("<%dQ" % (len(raw) // 8), raw))
    return s

a, b = chosen(sys.argv[1]), chosen(sys.argv[2])
if not a:
    sys.exit("precision.sh: no selected elements found in %s" % sys.argv[1])
print("selected: fp32 %d, bf16 %d; both %d: overlap %.2f%% at rate %s"
      % (len(a), len(b), len(a & b), 100.0 * len(a & b) / len(a), sys.argv[3]))
PY
