#!/usr/bin/env python3
"""Templated chat prompts, tokenized by transformers, against rl-tok: for each
{"prompt": ...} line of PROMPTS.jsonl, the ids of
tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
add_generation_prompt=True) on MODEL (a directory rl-import wrote, or any
HuggingFace model directory), and the ids `rl-tok -m MODEL` gives the same
line. Prints one line per differing prompt (its number, the first differing
position, both renderings around it) and a last line
`chat ids: N prompts, D differ`. Exit 1 when any differs.

    chat_ids_hf.py MODEL PROMPTS.jsonl [N]      (rl-tok from $RL_BIN or PATH)

Needs transformers (pip). The rl-import issue's check on real models:
    python3 tests/bench/chat_ids_hf.py ~/.cache/realign/models/qwen2.5-coder-1.5b-instruct \\
        examples/data/beavertails_eval.jsonl 200
"""
import json
import os
import subprocess
import sys

from transformers import AutoTokenizer


def main():
    model, prompts = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else None
    lines = [json.loads(x) for x in open(prompts, encoding="utf-8") if x.strip()][:n]
    tok = AutoTokenizer.from_pretrained(model)
    rl_tok = os.path.join(os.environ["RL_BIN"], "rl-tok") if os.environ.get("RL_BIN") else "rl-tok"
    feed = "".join(json.dumps({"prompt": x["prompt"]}, ensure_ascii=False) + "\n" for x in lines)
    out = subprocess.run([rl_tok, "-m", model], input=feed.encode(), capture_output=True, check=True)
    ours = [json.loads(x)["ids"] for x in out.stdout.decode().splitlines()]
    differ = 0
    for i, (x, got) in enumerate(zip(lines, ours)):
        want = tok.apply_chat_template([{"role": "user", "content": x["prompt"]}],
                                       add_generation_prompt=True, tokenize=True)
        if hasattr(want, "input_ids"):  # transformers 5 returns a BatchEncoding
            want = want["input_ids"]
        if got != want:
            differ += 1
            k = next((j for j, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            print(f"prompt {i}: first difference at token {k}: rl-tok {tok.decode(got[max(0, k - 3):k + 3])!r}"
                  f" transformers {tok.decode(want[max(0, k - 3):k + 3])!r}")
    if len(ours) != len(lines):
        print(f"rl-tok answered {len(ours)} of {len(lines)} prompts")
        differ += abs(len(lines) - len(ours))
    print(f"chat ids: {len(lines)} prompts, {differ} differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
