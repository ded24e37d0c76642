#!/bin/sh
# realign on a real HuggingFace model pair: the exact commands.
#
#   ALIGNED=/models/Llama-2-7b-chat-hf FINETUNED=/models/llama2-7b-chat-sql \
#   TASK_TRAIN=sql_train.jsonl TASK_EVAL=examples/data/sql_eval.jsonl \
#   sh examples/real-model.sh [OUT]
#
# What the models must be: two HuggingFace directories (config.json,
# model*.safetensors, tokenizer.json, tokenizer_config.json) of the same
# architecture and shapes (llama, mistral, qwen2, gemma); a LoRA fine-tune
# merged into full weights first: rl-merge ALIGNED ADAPTER -o FINETUNED (PEFT's
# merge_and_unload, bit for bit). rl-eval -A ADAPTER measures a LoRA fine-tune
# without writing the merged model; rl-train --lora makes one (a PEFT adapter).
# FINETUNED is never modified: rl-recover restores a copy of it in OUT/model.
#
# Data (JSON lines, the reference's format):
#   HARMFUL      recovery set H, {"prompt": ...}; default: the reference's 64
#                BeaverTails prompts, examples/data/beavertails_recovery64.jsonl
#   TASK_TRAIN   the task's training data {"prompt", "response"}: its first 256
#                prompts are the benign set B
#   EVAL_HARMFUL harmful prompts for the harmful rate; default: the 700 of
#                BeaverTails-Evaluation, examples/data/beavertails_eval.jsonl
#                (examples/data/README.md: licences, SAMSum)
#   TASK_EVAL    task prompts with reference answers ("response")
# The chat template is the model's own Jinja template (chat_template.jinja or
# tokenizer_config.json's chat_template), rendered as transformers renders it
# (rl-info names it; rl-tok -m MODEL shows what the model will see; to
# reproduce the paper's Llama-2 rendering, with FastChat's system prompt, pass
# --template llama-2 to rl-recover); the judge is rl-eval's refusal-phrase
# list unless JUDGE_CMD names another (examples/judges/: Llama Guard 3,
# WildGuard behind an OpenAI-compatible server).
#
# What to expect on a 24 GiB, 2-core CPU machine: one restore step measured by
# tests/bench/recover-7b.sh on a random Llama-2-7B-shaped bf16 pair (13.5 GB
# each; P = 6.48e9, k = ceil(0.002 P) = 12.95M weights a step), 2 threads,
# with the machine shared (load 4-6), 16 harmful prompts of 150-200 tokens:
#
#   rl-direction (A, H, L = 21)              295 s    1.7 GiB peak RSS
#   rl-grad | rl-select --rate 0.002         925 s   11.1 GiB
#   rl-apply (journal 155 MB)                 18 s    1.6 GiB
#   rollback mode only: rl-grad on B         326 s    6.3 GiB (16 prompts, 40-120 tokens)
#                       rl-rollback -f        25 s    0.7 GiB
#   rl-rollback of a step (exact)             15 s    1.2 GiB
#   (the reference writes a full copy:        21 s, 13.5 GB a saved step)
#
# On an idle machine the gradient side is about 3x faster: rl-direction 105 s
# (1.7 GiB), rl-grad 347 s (11.1 GiB, 200 GFLOP/s) on the same 16 prompts
# (tests/bench/grad-7b.sh); rl-apply 24 s and rl-rollback 13 s on a selection
# spread over all layers (tests/bench/bench_apply.sh).
#
# Gradient time grows with the prompts' tokens: the reference's 64 prompts
# make a step about 4x the above (about an hour on two loaded cores; fewer
# minutes on more cores: rl-grad -j), so 20 steps take most of a day on such a
# machine. Memory stays under 12 GiB throughout (the engine keeps or
# recomputes activations within --mem-limit). Disk: OUT/model is a full copy
# of FINETUNED, plus, for the reference's accumulated gradient (no rollback),
# two gradient streams of 4 bytes per candidate weight (17 GB each for L = 21
# of a 7B model) — rl-recover keeps only the latest.
# Evaluation (greedy decoding) is the slow part on a CPU: see rl-eval(1) and
# tests/bench/generate.sh; evaluate on a subset (EVAL_LIMIT) or generate on a GPU server and
# score here with rl-eval --responses.
set -eu
[ -n "${RL_BIN:-}" ] && PATH="$RL_BIN:$PATH"
export PATH
OUT=${1:-out/real}
: "${ALIGNED:?set ALIGNED to the aligned model directory}"
: "${FINETUNED:?set FINETUNED to the fine-tuned model directory}"
data=$(cd "$(dirname "$0")" && pwd)/data
HARMFUL=${HARMFUL:-$data/beavertails_recovery64.jsonl}
EVAL_HARMFUL=${EVAL_HARMFUL:-$data/beavertails_eval.jsonl}
: "${TASK_TRAIN:?set TASK_TRAIN to the task training data (JSON lines)}"
: "${TASK_EVAL:?set TASK_EVAL to the task eval data with answers}"
METRIC=${METRIC:-exact}         # exact (SQL), rouge1 (SAMSum), label (classification)
EVAL_LIMIT=${EVAL_LIMIT:-100}   # prompts per eval set on a CPU
THREADS=${THREADS:-2}

# 1. Check both models and that they pair (same shape id).
rl-info "$ALIGNED"
rl-info "$FINETUNED"
a=$(rl-info --json "$ALIGNED" | jq -r .shape_id)
f=$(rl-info --json "$FINETUNED" | jq -r .shape_id)
[ "$a" = "$f" ] || { echo "the models do not pair: shape ids $a and $f" >&2; exit 3; }

# 2. See what the model will be given (first harmful prompt, templated).
head -n 1 "$HARMFUL" | rl-tok -m "$FINETUNED" | jq -r .text

# 3. The benign set B: the first 256 prompts of the task's training data.
mkdir -p "$OUT.data"
head -n 256 "$TASK_TRAIN" >"$OUT.data/benign.jsonl"

# 4. The whole procedure, the reference's defaults (L = floor(2N/3), rate
#    0.002, 20 steps, warm-up 5, save every 5, metric drop 5%, rollback 0.2).
#    Resumable: after an interruption run the same command with --resume.
rl-recover -a "$ALIGNED" -f "$FINETUNED" -o "$OUT" \
	-H "$HARMFUL" -B "$OUT.data/benign.jsonl" \
	--eval-harmful "$EVAL_HARMFUL" --eval-task "$TASK_EVAL" --metric "$METRIC" \
	--eval-limit "$EVAL_LIMIT" -j "$THREADS" ${JUDGE_CMD:+--judge-cmd "$JUDGE_CMD"} \
	${TARGET_HARMFUL:+--target-harmful "$TARGET_HARMFUL"}

# 5. The result: OUT/model (a normal HF directory), OUT/report.txt, OUT/steps.tsv;
#    every step's journal in OUT/journals (rl-rollback takes any step back).
cat "$OUT/report.txt"

# Splitting generation from scoring (a GPU server generates, this machine
# scores): generate responses there for the prompts of EVAL_HARMFUL with the
# same chat template, save them as {"prompt", "response"} lines, then
#   rl-eval --responses responses.jsonl --summary-json
