#!/bin/sh
# Greedy generation benchmark: rl_generate (build/bench/generate) against
# transformers' generate (fp32, KV cache, batched), same model, prompts and
# threads, in the same run. Needs > 4 GiB.
#
#   make bench && sh tests/bench/generate.sh [MODEL]
#
# MODEL defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/realign/models/llama3.2-1b-random
# (tests/bench/make_llama1b.py writes it). Env: THREADS (2), PROMPTS (32), NEW (64), BATCH (32).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
model=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/realign/models/llama3.2-1b-random}
threads=${THREADS:-2} n=${PROMPTS:-32} new=${NEW:-64} batch=${BATCH:-32}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rl-genbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# 32 prompts of 24..72 token ids (the length of a chat-templated question),
# fixed seed, ids from the ordinary vocabulary.
python3 - "$n" "$new" >"$tmp/prompts.json" <<'PY'
import json, random, sys
r = random.Random(7)
n, new = int(sys.argv[1]), int(sys.argv[2])
print(json.dumps({"max_new_tokens": new,
                  "prompts": [[r.randrange(1000, 120000) for _ in range(r.randint(24, 72))]
                              for _ in range(n)]}))
PY
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; threads $threads"
OPENBLAS_NUM_THREADS=$threads "$root/build/bench/generate" "$model" "$tmp/prompts.json" \
	"$tmp/rl.json" "$batch"
python3 "$here/generate_hf.py" "$model" "$tmp/prompts.json" "$tmp/hf.json" "$threads" 2>&1 |
	grep -v -i -E "warn|loading"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp/rl.json" "$tmp/hf.json" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
same = sum(x == y for x, y in zip(a["outputs"], b["outputs"]))
pre = sum(next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), len(x))
          for x, y in zip(a["outputs"], b["outputs"]))
print("| | realign | transformers (fp32) |")
print("| --- | --- | --- |")
print("| tokens/s | %.1f | %.1f |" % (a["tokens_per_s"], b["tokens_per_s"]))
print("| seconds (wall) | %.2f | %.2f |" % (a["seconds"], b["seconds"]))
print("| CPU seconds | %.2f | %.2f |" % (a["cpu_seconds"], b["cpu_seconds"]))
print("| peak RSS | %.2f GiB | %.2f GiB |" % (a["peak_rss"] / 2**30, b["peak_rss"] / 2**30))
print("speed-up %.2fx; memory %.2fx; BLAS kernels %s; identical sequences %d/%d, "
      "identical leading tokens %d/%d" % (a["tokens_per_s"] / b["tokens_per_s"],
      a["peak_rss"] / b["peak_rss"], a["blas"], same, len(a["outputs"]), pre,
      sum(len(x) for x in a["outputs"])))
PY
