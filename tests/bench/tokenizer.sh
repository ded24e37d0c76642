#!/bin/sh
# Tokens per second encoding 1 MB of mixed text with the Llama-3 and Mistral v0.1
# tokenizers: realign (build/bench/tokenizer) next to HuggingFace tokenizers (Rust,
# one thread: RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false), in the same run,
# on the same text, checking that both produce the same ids (checksum).
#
#   make bench && sh tests/bench/tokenizer.sh [REPS]
#
# Modes: "whole" encodes the megabyte as one string; "lines" encodes it line by line
# (about 3500 lines of up to ~1 kB, prompt-sized). Best of REPS (default 3), and the
# first run alone (cold word caches on both sides: "whole" runs first on a freshly
# loaded tokenizer). HF/ours > 1 means HuggingFace is faster.
# Needs python3 with tokenizers; the Llama-3 file comes from shared/tokenizers
# ($RL_SHARED_TOKENIZERS, or shared/tokenizers beside the repository, where CI
# lays it).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
reps=${1:-3}
bench=${RL_BENCH_BIN:-$root/build/bench/tokenizer}
[ -x "$bench" ] || { echo "build it first: make bench" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rl-bench-tok.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

find_model() { # name -> directory with tokenizer.json
	for d in "$root/tests/fixtures/tokenizer/$1"; do
		if [ -f "$d/tokenizer.json.xz" ]; then
			mkdir -p "$tmp/$1"
			xz -dc "$d/tokenizer.json.xz" >"$tmp/$1/tokenizer.json"
			echo "$tmp/$1"
			return
		fi
	done
	for d in "${RL_SHARED_TOKENIZERS:-/nonexistent}" "$root/../shared/tokenizers"; do
		if [ -f "$d/$1/tokenizer.json" ]; then
			echo "$d/$1"
			return
		fi
	done
	echo "no tokenizer.json for $1 (set RL_SHARED_TOKENIZERS)" >&2
	exit 2
}

# 1 MB of mixed text, deterministic: Zipf-distributed English-like words, the
# conformance corpus (many languages, code, digits, emoji), code and numbers.
python3 - "$root/tests/fixtures/tokenizer/corpus.jsonl" "$tmp/text.txt" <<'PY'
import json, random, sys
rng = random.Random(20240607)
corpus = [json.loads(l)["s"] for l in open(sys.argv[1], encoding="utf-8")]
corpus = [s.replace("\n", " ") for s in corpus if s.strip()]
syl = ["the", "an", "in", "re", "con", "ter", "al", "ing", "ed", "tion", "pro", "ex", "com", "ly",
       "ment", "er", "es", "or", "ble", "ca", "di", "po", "la", "mo", "ri", "sa", "te", "vi", "ny"]
words = sorted({"".join(rng.choice(syl) for _ in range(rng.randint(1, 4))) for _ in range(20000)})
weights = [1.0 / (i + 1) for i in range(len(words))]
rng.shuffle(words)
lines, size = [], 0
while size < 1 << 20:
    r = rng.random()
    if r < 0.6:
        n = rng.randint(5, 100)
        ws = rng.choices(words, weights, k=n)
        s = " ".join(w.capitalize() if rng.random() < 0.08 else w for w in ws)
        s += rng.choice([".", "?", "!", ",", ":", "", "'s", " 123.", " (2024)"])
    elif r < 0.85:
        s = " ".join(rng.choice(corpus) for _ in range(rng.randint(1, 3)))
    elif r < 0.95:
        s = "    x_%d = foo(bar[%d], \"%s\") + %d  # %s" % (rng.randint(0, 999), rng.randint(0, 99),
             rng.choice(words), rng.randint(0, 10**6), rng.choice(words))
    else:
        s = " ".join(str(rng.randint(0, 10**rng.randint(1, 12))) for _ in range(rng.randint(3, 20)))
    lines.append(s)
    size += len(s.encode()) + 1
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(lines)[: 1 << 20].rsplit("\n", 1)[0] + "\n")
PY

echo "load: $(uptime | sed 's/.*load average: //')  text: $(wc -c <"$tmp/text.txt") bytes, $(wc -l <"$tmp/text.txt") lines"
printf '%-12s %-6s %9s %12s %12s %8s %12s %12s %8s  %s\n' tokenizer mode tokens "realign t/s" \
	"HF t/s" "HF/ours" "first: ours" "first: HF" "HF/ours" ids
for m in llama3_2 mistral_v01; do
	dir=$(find_model "$m")
	"$bench" "$dir" "$tmp/text.txt" "$reps" >"$tmp/ours.jsonl"
	RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false python3 - "$dir/tokenizer.json" \
		"$tmp/text.txt" "$reps" >"$tmp/hf.jsonl" <<'PY'
import json, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
text = open(sys.argv[2], encoding="utf-8", newline="").read()
reps = int(sys.argv[3])
lines = text.split("\n")
if lines and lines[-1] == "":
    lines.pop()
def fnv(h, ids):
    for i in ids:
        h ^= i
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h
for mode in ["whole", "lines"]:
    best, first, n, h = 1e30, 0, 0, 0
    for r in range(reps):
        t = time.perf_counter()
        if mode == "whole":
            encs = [tok.encode(text, add_special_tokens=False).ids]
        else:
            encs = [tok.encode(l, add_special_tokens=False).ids for l in lines]
        s = time.perf_counter() - t
        first = s if r == 0 else first
        best = min(best, s)
    h = 1469598103934665603
    for ids in encs:
        h = fnv(h, ids)
    n = sum(len(e) for e in encs)
    print(json.dumps({"impl": "hf", "mode": mode, "tokens": n, "seconds": best,
                      "tokens_per_s": n / best, "first_tokens_per_s": n / first,
                      "checksum": "%016x" % h}))
PY
	for mode in whole lines; do
		o=$(grep "\"$mode\"" "$tmp/ours.jsonl")
		h=$(grep "\"$mode\"" "$tmp/hf.jsonl")
		python3 -c '
import json, sys
o, h = json.loads(sys.argv[1]), json.loads(sys.argv[2])
same = "same" if o["checksum"] == h["checksum"] and o["tokens"] == h["tokens"] else "DIFFER"
print("%-12s %-6s %9d %12.0f %12.0f %8.2f %12.0f %12.0f %8.2f  %s" % (sys.argv[3], o["mode"],
      o["tokens"], o["tokens_per_s"], h["tokens_per_s"], h["tokens_per_s"] / o["tokens_per_s"],
      o["first_tokens_per_s"], h["first_tokens_per_s"],
      h["first_tokens_per_s"] / o["first_tokens_per_s"], same))
' "$o" "$h" "$m"
	done
done
