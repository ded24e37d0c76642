#!/bin/sh
# tests/bench/lora.sh — rl-train --lora against PEFT + torch fp32 (issue 15):
# a Qwen2.5-1.5B-shaped random bf16 model, r 8, alpha 16, dropout 0.05, the
# seven projections, N (64) examples of about 256 tokens (random ids: prompt
# and response about 128 each), batches of at most BATCH_TOKENS (1024) tokens,
# one epoch, AdamW lr 1e-4 (betas 0.9/0.999, no weight decay, clip 1.0,
# constant), the same threads, one after the other on the same machine.
# tokens/s counts real tokens (PEFT's padding not included) over the training
# loop (model loading excluded on both sides); peak RSS is the process's.
# rl-train's batches come from its shuffled order and its last batch may run
# into a second epoch, so its token count can differ a little from PEFT's
# (which takes the file in order, one epoch): both are printed; rates compare.
#
#     make && sh tests/bench/lora.sh
#
# Environment: MODEL (default ${XDG_CACHE_HOME:-$HOME/.cache}/realign/models/
# qwen25-1.5b-random, made by make_model.py when absent, 2.9 GiB), N,
# BATCH_TOKENS, THREADS (default: all cores), MEM (rl-train --mem, 3G), OUT
# (results, default tests/bench/out/lora), PRECISIONS (rl-train --precision
# runs, default "fp32 bf16"), PEFT_PRECISIONS (PEFT runs: fp32, the default
# and the reference the targets name, and bf16: the base in bfloat16),
# SKIP_PEFT=1.
# PEFT needs about 18 GiB at 1024 tokens a batch (the model in fp32, the
# logits of every position).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/realign/models
MODEL=${MODEL:-$cache/qwen25-1.5b-random}
N=${N:-64}
BATCH_TOKENS=${BATCH_TOKENS:-1024}
THREADS=${THREADS:-$(nproc)}
MEM=${MEM:-3G}
PRECISIONS=${PRECISIONS:-fp32 bf16}
PEFT_PRECISIONS=${PEFT_PRECISIONS:-fp32}
OUT=${OUT:-$root/tests/bench/out/lora}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
[ -f "$MODEL/config.json" ] || "$PYTHON" "$here/make_model.py" qwen25-1.5b "$MODEL"
export OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"

# The examples: the same ids for both sides.
"$PYTHON" - "$N" "$OUT/data.jsonl" <<'EOF'
import json, random, sys
n, out = int(sys.argv[1]), sys.argv[2]
g = random.Random(15)
with open(out, "w") as f:
    for _ in range(n):
        p, r = g.randint(96, 160), g.randint(96, 160)
        f.write(json.dumps({"prompt_ids": [g.randrange(3, 151643) for _ in range(p)],
                            "response_ids": [g.randrange(3, 151643) for _ in range(r)]}) + "\n")
EOF
gib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1073741824 }'; }
size=$(du -sb "$MODEL" | cut -f1)
tokens=$(jq -s 'map(.prompt_ids + .response_ids | length) | add' "$OUT/data.jsonl")
echo "== $(date -u +%FT%TZ) $(uname -n): $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== model $MODEL ($(gib "$size") GiB), $N examples, $tokens tokens, batches of <= $BATCH_TOKENS tokens, $THREADS threads"

# rl-train at each precision (bf16: the forward's products on the stored
# bf16 weights; fp32 is the one PEFT's fp32 run computes as).
for prec in $PRECISIONS; do
	o=$OUT/realign-$prec
	rm -rf "$o" "$o.ckpt"
	"$root/bin/rl-train" -m "$MODEL" --lora 8 --alpha 16 --dropout 0.05 -p "$OUT/data.jsonl" \
		-o "$o" --batch-tokens "$BATCH_TOKENS" --epochs 1 --lr 1e-4 --schedule constant \
		--warmup 0 --weight-decay 0 --beta2 0.999 --clip 1 -t "$THREADS" --mem "$MEM" \
		--precision "$prec" --checkpoint-every 0 --log "$o.tsv" --summary "$o.json" \
		--log-every 1
	echo "realign $prec: $(jq .tokens "$o.json") tokens in $(jq .seconds "$o.json") s," \
		"$(jq .tokens_per_second "$o.json") tokens/s, peak RSS" \
		"$(gib "$(jq .peak_rss_bytes "$o.json")") GiB"
done
[ "${SKIP_PEFT:-0}" = 1 ] && exit 0

# PEFT at each of PEFT_PRECISIONS (fp32: the reference the targets name;
# bf16: the base loaded in bfloat16, torch's own bf16 kernels)
for pp in $PEFT_PRECISIONS; do
	rm -rf "$OUT/peft-$pp"
	PEFT_DTYPE=$pp "$PYTHON" "$here/lora_peft.py" "$MODEL" "$OUT/data.jsonl" "$BATCH_TOKENS" \
		"$THREADS" "$OUT/peft-$pp.json" "$OUT/peft-$pp"
	echo "peft $pp: $(jq .tokens "$OUT/peft-$pp.json") tokens in $(jq .seconds "$OUT/peft-$pp.json") s," \
		"$(jq .tok_s "$OUT/peft-$pp.json") tokens/s, peak RSS" \
		"$(gib "$(jq '.rss_gib * 1073741824' "$OUT/peft-$pp.json")") GiB (load $(jq .load_s "$OUT/peft-$pp.json") s)"
done
for pp in $PEFT_PRECISIONS; do
	t2=$(jq .tok_s "$OUT/peft-$pp.json")
	r2=$(jq '.rss_gib * 1073741824' "$OUT/peft-$pp.json")
	for prec in $PRECISIONS; do
		t1=$(jq .tokens_per_second "$OUT/realign-$prec.json")
		r1=$(jq .peak_rss_bytes "$OUT/realign-$prec.json")
		awk -v t1="$t1" -v t2="$t2" -v r1="$r1" -v r2="$r2" -v s="$size" -v p="$prec" -v q="$pp" 'BEGIN {
			g = 1073741824
			printf "targets (realign %s, peft %s): speed ratio >= 1.5: %s; RSS <= half of PEFT'"'"'s: %s; RSS <= model + 2 GiB (%.2f): %s\n",
				p, q, (t1 / t2 >= 1.5) ? "yes" : "NO", (r1 <= r2 / 2) ? "yes" : "NO", (s + 2 * g) / g,
				(r1 <= s + 2 * g) ? "yes" : "NO"
			printf "lora (realign %s, peft %s): realign %.2f tok/s %.2f GiB, peft %.2f tok/s %.2f GiB, speed ratio %.2f\n",
				p, q, t1, r1 / g, t2, r2 / g, t1 / t2 }'
	done
done
# The last line: realign's last precision (bf16 by default) against PEFT's
# first (fp32 by default), as issue 15 states it.
set -- $PRECISIONS
eval "last=\${$#}"
set -- $PEFT_PRECISIONS
jq -rn --slurpfile a "$OUT/realign-$last.json" --slurpfile b "$OUT/peft-$1.json" '
	($a[0].peak_rss_bytes / 1073741824) as $r1 |
	"lora: realign \($a[0].tokens_per_second * 100 | round / 100) tok/s \($r1 * 100 | round / 100) GiB, peft \($b[0].tok_s * 100 | round / 100) tok/s \($b[0].rss_gib * 100 | round / 100) GiB, speed ratio \($a[0].tokens_per_second / $b[0].tok_s * 100 | round / 100)"'
