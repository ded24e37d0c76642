#!/usr/bin/env python3
"""Fixture for the reduced toy world test of rl-recover (tests/cli/t5003-recover.sh).

A smaller toy world (rl-toy: hidden 64, 4 layers, 60 prompts per eval set), its
aligned model trained from scratch and its fine-tuned model, both trained with
PyTorch through transformers' LlamaForCausalLM by the prototype
(examples/toy/proto.py: aligned 400 steps of 64 at lr 3e-3; the gentle
fine-tune, 300 steps of 32 at lr 3e-4), saved in bf16. The test then runs
realign's rl-recover on this pair: the models come from an implementation
independent of rl-train. Prints the prototype's own measurements of both
models (after the bf16 rounding) for the record.

Needs RL_BIN (the tools, for rl-toy); writes tests/fixtures/toy/.
"""
import json
import os
import shutil
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "toy"))
import proto  # noqa: E402

OUT = os.path.join(HERE, "..", "fixtures", "toy")
WORLD_ARGS = ["--eval", "60", "--hidden", "64", "--layers", "4", "--ffn", "128"]


def write_ids(world):
    """train-ids.jsonl: 40 training examples of the world (aligned and
    fine-tuning), each with the ids transformers' apply_chat_template and
    tokenizer give: the golden for rl-train's text path (t5002)."""
    w = proto.World(world)
    subprocess.run([os.path.join(os.environ.get("RL_BIN", "bin"), "rl-toy"), "-q", "-o",
                          os.path.join(OUT, "tmpworld")] + WORLD_ARGS, check=True)
    rows = []
    for f in ["aligned.jsonl", "finetune.jsonl"]:
        rows += proto.jl(os.path.join(OUT, "tmpworld", f))[:20]
    shutil.rmtree(os.path.join(OUT, "tmpworld"))
    with open(os.path.join(OUT, "train-ids.jsonl"), "w") as out:
        for x in rows:
            p, r = w.train_ids(x["prompt"], x["response"])
            out.write(json.dumps({"prompt": x["prompt"], "response": x["response"],
                                  "prompt_ids": p, "response_ids": r}) + "\n")


def main():
    torch.set_num_threads(2)
    if sys.argv[1:] == ["--ids-only"]:
        write_ids(os.path.join(OUT, "world"))
        return
    rl_bin = os.environ.get("RL_BIN", os.path.join(HERE, "..", "..", "bin"))
    world = os.path.join(OUT, "world")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    subprocess.run([os.path.join(rl_bin, "rl-toy"), "-q", "-o", world] + WORLD_ARGS, check=True)
    # The big training sets are not needed by the test: drop them.
    for f in ["aligned.jsonl", "finetune.jsonl"]:
        data = os.path.join(world, f)
        os.rename(data, os.path.join(OUT, f + ".tmp"))
    w = proto.World(world)
    rd = lambda f: proto.jl(os.path.join(OUT, f + ".tmp"))
    aligned = [w.train_ids(x["prompt"], x["response"]) for x in rd("aligned.jsonl")]
    ft = [w.train_ids(x["prompt"], x["response"]) for x in rd("finetune.jsonl")]
    for f in ["aligned.jsonl", "finetune.jsonl"]:
        os.remove(os.path.join(OUT, f + ".tmp"))
    sets = {"harm": proto.jl(os.path.join(world, "eval-harmful.jsonl")),
            "benign": proto.jl(os.path.join(world, "eval-benign.jsonl")),
            "task": proto.jl(os.path.join(world, "eval-task.jsonl"))}

    A = proto.make_model(w, 1)
    proto.train(A, aligned, 400, 3e-3, 64, 1, log="aligned")
    F = proto.make_model(w, 1)
    F.load_state_dict(A.state_dict())
    proto.train(F, ft, 300, 3e-4, 32, 2, log="finetune")
    for name, m in [("aligned", A), ("finetuned", F)]:
        m = m.to(torch.bfloat16).eval()
        d = os.path.join(OUT, name)
        m.save_pretrained(d, safe_serialization=True)
        for f in ["tokenizer.json", "tokenizer_config.json"]:
            shutil.copy(os.path.join(world, f), d)
        r = proto.evaluate(m.float(), w, sets)
        print(f"{name} (bf16): {proto.fmt(r)}")
        with open(os.path.join(d, "proto-eval.json"), "w") as f:
            json.dump({k: v for k, v in r.items() if k != "examples"}, f)
    write_ids(world)


if __name__ == "__main__":
    main()
