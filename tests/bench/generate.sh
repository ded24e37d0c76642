#!/bin/sh
# Greedy generation benchmark, side by side in one run (same model, prompts,
# threads, greedy, no stop token): realign (build/bench/generate) at bf16 (its
# default) and fp32; transformers' generate in float32 and bfloat16; llama.cpp
# on the same weights as GGUF (llama-batched-bench: the same batch, prompt
# length and new tokens; llama-bench pp512: the prefill rate) when
# LLAMA_CPP_BIN is set; and the machine's limits measured in the same run:
# the cores' FMA peak (build/bench/peak: clock x FMA width x ports) and
# OpenBLAS sgemm at the model's MLP shape, decoding and prefill (build/bench/sgemm).
# Needs > 8 GiB.
#
#   make bench && sh tests/bench/generate.sh [MODEL]
#
# MODEL defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/realign/models/llama32-1b-random
# (made when absent: tests/bench/make_model.py llama32-1b, as grad.sh does). Env: THREADS (2), PROMPTS (32), NEW (64), BATCH (32), SKIP_HF=1
# (no transformers), RL_PRECISIONS (realign's runs: "bf16 fp32"; bf16 is needed),
# HF_PRECISIONS (transformers' runs: "fp32 bf16"), HF_SINGLE=1 (transformers
# bf16 once more, one prompt at a time: how often the reference's greedy
# sequences survive a change of batch, the yardstick for realign's), PROMPT_IDS
# (a file of rl-tok output lines: their "ids" are the prompts, the first
# PROMPTS of them, in place of random ids: real chat-templated questions,
# whose greedy choices are rarely near-ties), LLAMA_CPP_BIN (a directory with llama-bench and
# llama-batched-bench, built from llama-cpp-python's sdist), LLAMA_GGUF (GGUF
# files of MODEL, space-separated; tests/bench/gguf_bench_model.py writes them).
# The last lines: realign's rate next to the FMA and sgemm peaks, then
#   generate: realign T1 tok/s, transformers-fp32 T2 tok/s, ratio R
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
model=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/realign/models/llama32-1b-random}
[ -n "${1:-}" ] || [ -f "$model/config.json" ] || python3 "$here/make_model.py" llama32-1b "$model"
threads=${THREADS:-2} n=${PROMPTS:-32} new=${NEW:-64} batch=${BATCH:-32}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rl-genbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# n prompts of 24..72 token ids (the length of a chat-templated question),
# fixed seed, ids from the ordinary vocabulary (below 120000 and the model's
# vocabulary size: SmolLM2 has 49152).
vocab=$("$root/bin/rl-info" --json "$model" | jq -r .vocab_size)
python3 - "$n" "$new" "$vocab" "${PROMPT_IDS:-}" >"$tmp/prompts.json" <<'PY'
import json, random, sys
r = random.Random(7)
n, new, vocab, ids = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
top = min(120000, vocab)
if ids:
    prompts = [json.loads(line)["ids"] for line in open(ids)][:n]
    if len(prompts) < n:
        sys.exit("generate.sh: %s holds %d prompts, PROMPTS is %d" % (ids, len(prompts), n))
else:
    prompts = [[r.randrange(1000, top) for _ in range(r.randint(24, 72))] for _ in range(n)]
print(json.dumps({"max_new_tokens": new, "prompts": prompts}))
PY
npp=$(jq '[.prompts[] | length] | add / length | floor' "$tmp/prompts.json")
echo "== $(date -u +%FT%TZ): load $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; threads $threads"
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-); flags:" \
	"$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512_bf16|amx_bf16|amx_tile)$' | tr '\n' ' ')"
"$root/bin/rl-info" "$model" | grep -E '^(cpu|kernels)'
echo "== $n prompts (mean $npp tokens${PROMPT_IDS:+, from $PROMPT_IDS}), $new new tokens each, batch $batch"

"$root/build/bench/peak" "$threads" | tee "$tmp/peak.txt"
# sgemm at the model's MLP shape: the decoding batch, and a prefill of 512 rows
mlp=$("$root/bin/rl-info" --json "$model" | jq -r '"\(.intermediate_size) \(.hidden_size)"')
OPENBLAS_NUM_THREADS=$threads "$root/build/bench/sgemm" -s 2 "$batch" $mlp 0 1 512 $mlp 0 1 |
	tee "$tmp/sgemm.txt"
for p in ${RL_PRECISIONS:-bf16 fp32}; do
	OPENBLAS_NUM_THREADS=$threads "$root/build/bench/generate" "$model" "$tmp/prompts.json" \
		"$tmp/rl-$p.json" "$batch" "$p"
done
if [ "${SKIP_HF:-0}" != 1 ]; then
	for p in ${HF_PRECISIONS:-fp32 bf16}; do
		python3 "$here/generate_hf.py" "$model" "$tmp/prompts.json" "$tmp/hf-$p.json" \
			"$threads" "$p" 2>&1 | grep -v -i -E "warn|loading"
	done
	if [ "${HF_SINGLE:-0}" = 1 ]; then
		python3 "$here/generate_hf.py" "$model" "$tmp/prompts.json" "$tmp/hf-bf16-single.json" \
			"$threads" bf16 single 2>&1 | grep -v -i -E "warn|loading"
	fi
fi
: >"$tmp/llama.txt"
if [ -n "${LLAMA_CPP_BIN:-}" ]; then
	for g in ${LLAMA_GGUF:-}; do
		# the same batch of sequences, prompt length (the mean) and new tokens
		"$LLAMA_CPP_BIN/llama-batched-bench" -m "$g" -t "$threads" -c $((batch * (npp + new) + 64)) \
			-b 2048 -ub 512 -npp "$npp" -ntg "$new" -npl "$batch" 2>/dev/null |
			awk -v g="$(basename "$g")" -F'|' 'NF > 9 && $2 + 0 > 0 {
				printf "llama.cpp %s batched: %.1f tokens/s (B x TG / T: prefill included; TG alone %.1f)\n",
					g, $4 * $3 / $10, $9 }' | tee -a "$tmp/llama.txt"
		"$LLAMA_CPP_BIN/llama-bench" -m "$g" -t "$threads" -p 512 -n 0 -o csv 2>/dev/null |
			python3 -c '
import csv, sys
for r in csv.DictReader(sys.stdin):
    print("llama.cpp %s pp512: %.1f tokens/s" % (sys.argv[1], float(r["avg_ts"])))
' "$(basename "$g")" | tee -a "$tmp/llama.txt"
	done
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$root/bin/rl-info" --json --tensors "$model" >"$tmp/info.json"
python3 - "$tmp" "$new" <<'PY'
import json, os, re, sys
tmp, new = sys.argv[1], int(sys.argv[2])
def load(name):
    p = os.path.join(tmp, name)
    return json.load(open(p)) if os.path.exists(p) else None
info = json.load(open(os.path.join(tmp, "info.json")))
# multiply-adds per token: every linear weight, and lm_head (the embeddings when tied)
params = sum(t["shape"][0] * t["shape"][1] for t in info["tensors"]
             if t["role"].endswith("_proj.weight") or t["role"] == "lm_head.weight")
if info["tie_word_embeddings"]:
    params += next(t["shape"][0] * t["shape"][1] for t in info["tensors"]
                   if t["role"] == "embed_tokens.weight")
peak = open(os.path.join(tmp, "peak.txt")).read()
fma = float(re.search(r"^peak fma ([0-9.]+)", peak, re.M).group(1))
amx = re.search(r"^AMX tdpbf16ps .*= ([0-9.]+)$", peak, re.M)
sgemm = float(re.search(r"^peak ([0-9.]+)", open(os.path.join(tmp, "sgemm.txt")).read(),
                        re.M).group(1))
runs = [("realign bf16", load("rl-bf16.json")), ("realign fp32", load("rl-fp32.json")),
        ("transformers fp32", load("hf-fp32.json")), ("transformers bf16", load("hf-bf16.json"))]
def same(a, b):
    return sum(x == y for x, y in zip(a["outputs"], b["outputs"]))
print("| run | tokens/s | seconds | CPU seconds | peak RSS | GFLOP/s (2 x %.3g B x tok/s) |"
      % (params / 1e9))
print("| --- | --- | --- | --- | --- | --- |")
for name, r in runs:
    if r:
        print("| %s | %.1f | %.2f | %.2f | %.2f GiB | %.0f |" % (
            name, r["tokens_per_s"], r["seconds"], r["cpu_seconds"], r["peak_rss"] / 2**30,
            2 * params * r["tokens_per_s"] / 1e9))
for line in open(os.path.join(tmp, "llama.txt")):
    print("| " + line.strip() + " | | | | |")
rb, rf, hf, hb = (r for _, r in runs)
print("realign kernels: " + "; ".join("%s %s" % (p, r["kernels"]) for p, r in (("bf16", rb), ("fp32", rf)) if r))
if hf and rf:
    print("identical sequences: realign fp32 vs transformers fp32 %d/%d" % (same(rf, hf), len(rf["outputs"])))
if hb:
    print("identical sequences: realign bf16 vs transformers bf16 %d/%d" % (same(rb, hb), len(rb["outputs"])))
hs = load("hf-bf16-single.json")
if hs:
    print("identical sequences: realign bf16 vs transformers bf16 one prompt at a time %d/%d"
          % (same(rb, hs), len(rb["outputs"])))
if hs and hb:
    print("identical sequences: transformers bf16 batched vs one prompt at a time %d/%d"
          % (same(hb, hs), len(hb["outputs"])))
# what bf16 alone changes, on each side: the yardstick for the line above
if rf:
    print("identical sequences: realign bf16 vs realign fp32 %d/%d" % (same(rb, rf), len(rb["outputs"])))
if hb and hf:
    print("identical sequences: transformers bf16 vs transformers fp32 %d/%d" % (same(hb, hf), len(hb["outputs"])))
if hf:
    print("identical sequences: realign bf16 vs transformers fp32 %d/%d" % (same(rb, hf), len(rb["outputs"])))
g = 2 * params * rb["tokens_per_s"] / 1e9
print("peaks: FMA %.1f GFLOP/s%s; sgemm %.1f GFLOP/s (same run); realign bf16 %.1f GFLOP/s = "
      "%.0f%% of the FMA peak, %.0f%% of sgemm's" % (
          fma, ", AMX %s" % amx.group(1) if amx else "", sgemm, g, 100 * g / fma, 100 * g / sgemm))
if hf:
    print("generate: realign %.1f tok/s, transformers-fp32 %.1f tok/s, ratio %.2f"
          % (rb["tokens_per_s"], hf["tokens_per_s"], rb["tokens_per_s"] / hf["tokens_per_s"]))
else:
    print("generate: realign %.1f tok/s, transformers-fp32 (skipped)" % rb["tokens_per_s"])
PY
